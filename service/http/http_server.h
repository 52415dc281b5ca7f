/* A small HTTP/1.1 server on libevent's evhttp, run by a thread of its own: routes with one
 * captured path segment, bearer-token protection, JSON errors, limits on bodies, connections and
 * stalled clients, and a hook that sees every answered request (for metrics). */
#ifndef TRIBUTARY_HTTP_SERVER_H
#define TRIBUTARY_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

/* Called on the HTTP thread once for every request that gets an answer, just after the answer is
 * queued: route is the pattern of the matched route (also for 401, 403 and 405), or "unmatched"
 * (404, and requests that evhttp refused before routing: malformed ones get 400, an oversized
 * body 413, an Expect other than 100-continue 417); method is "GET", "POST", ... or "-" when it
 * is not known; latency_s runs from the request's first byte to its answer. The strings live
 * only for the call. Connections refused for max_connections and clients dropped for a timeout
 * are not requests and are not reported (see http_server_stats). */
typedef void http_server_observer(const char *route, const char *method, int status,
                                  double latency_s, void *opaque);

struct http_server_options {
    /* "host:port": host is a name, an IPv4 address or an IPv6 address in brackets ("[::1]:80");
     * "0.0.0.0" listens on every IPv4 interface; port 0 picks a free port (http_server_port). */
    const char *address;
    /* The longest request body accepted; 0: 1 MiB. A longer one is answered 413 with a JSON
     * error and the connection is closed (what is still in flight is read and discarded). */
    size_t max_body_bytes;
    /* On a new connection, and once a request has begun, a client that sends nothing for this
     * long is dropped without an answer (a pause, not a deadline for the whole request);
     * 0: 10000. */
    int header_timeout_ms;
    /* A kept-alive connection with no new request for this long is closed, and so is one whose
     * client reads nothing of an answer for this long; 0: 60000. */
    int idle_timeout_ms;
    /* Open connections; 0: 256. A connection accepted beyond the cap is answered at once, without
     * waiting for its request, "503 Service Unavailable" with Retry-After: 1, Connection: close
     * and {"error": "too many connections ..."}, and is then closed; what it sent is discarded,
     * never handled. The connections already open are not disturbed. */
    int max_connections;
    /* When neither NULL nor "": routes registered as protected require the header
     * "Authorization: Bearer <token>"; copied. */
    const char *bearer_token;
    http_server_observer *on_request; /* may be NULL */
    void *opaque;                     /* passed to on_request */
};

/* http_server_new, _route, _start and _destroy are called by the thread that owns the server;
 * http_server_port and http_server_stats by any thread. */
struct http_server;

/* What a handler sees of a request; valid only during the handler call. */
struct http_server_request;

/* What a handler answers with; valid only during the handler call. */
struct http_server_response;

/* Handles one request on the HTTP thread; answers with http_server_respond or
 * http_server_respond_error (the last call wins; no call at all is answered 500). It must not
 * block for long: every other client waits meanwhile, and http_server_destroy waits for it. */
typedef void http_server_handler(const struct http_server_request *request,
                                 struct http_server_response *response, void *opaque);

/* Checks first that libevent is wired as this server assumes (http_wiring_self_check: one
 * loopback connection, about a millisecond), then binds and listens on options->address with the
 * options' limits (the options and strings are copied), but serves nothing until
 * http_server_start. Returns the server (free it with http_server_destroy) or NULL with a message
 * in err: TB_USAGE for missing or malformed options (an address that is not host:port), TB_IO
 * when the address cannot be resolved or bound (a port already in use) or when the self-check
 * fails ("libevent <version>: evhttp's connection wiring is not what tributary assumes (...);
 * refusing to start the HTTP server"), TB_NOMEM when libevent cannot allocate. */
struct http_server *http_server_new(const struct http_server_options *options, char *err,
                                    size_t errsz);

/* Returns the port the server listens on (the one picked when the address asked for port 0). */
int http_server_port(const struct http_server *server);

/* Registers handler for method ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
 * "TRACE") on pattern, a path such as "/v1/models" or one with a single captured segment,
 * "/v1/models/{name}/predict", where {name} matches one non-empty segment (no '/'). A path no
 * pattern matches is answered 404; one that matches only with other methods, 405 with an Allow
 * header. A pattern without a capture wins over one with. When is_protected is non-zero and the
 * server has a bearer token, a request without "Authorization: Bearer ..." is answered 401 with
 * WWW-Authenticate, one with another token 403, both before the handler runs (tokens are
 * compared in constant time). Must be called before http_server_start; method and pattern are
 * copied, opaque is passed to the handler. Returns TB_OK, or TB_USAGE with a message for an
 * unknown method, a malformed pattern, a route already registered, or a server already
 * started. */
int http_server_route(struct http_server *server, const char *method, const char *pattern,
                      int is_protected, http_server_handler *handler, void *opaque, char *err,
                      size_t errsz);

/* Starts the server's thread (named "http" in the log), which accepts and answers until
 * http_server_destroy. Returns TB_OK, or TB_USAGE (already started) or TB_IO (no thread) with a
 * message. */
int http_server_start(struct http_server *server, char *err, size_t errsz);

/* Stops the thread promptly (after the handler running, if any), closes every connection and the
 * listening socket, and frees everything; no handler or observer runs after it returns. It joins
 * the HTTP thread, so a handler or the observer must not call it. NULL is a no-op. */
void http_server_destroy(struct http_server *server);

struct http_server_stats {
    size_t open_connections;      /* counted against max_connections now */
    uint64_t refused_connections; /* answered 503 for max_connections so far */
};

/* Fills *stats; may be called from any thread. */
void http_server_stats(const struct http_server *server, struct http_server_stats *stats);

/* --- for handlers ------------------------------------------------------------------------------
 */

/* The method, e.g. "POST". */
const char *http_server_request_method(const struct http_server_request *request);

/* The path as the client sent it (percent-encoding kept), without the query string. */
const char *http_server_request_path(const struct http_server_request *request);

/* The query string without '?', or NULL when there is none. */
const char *http_server_request_query(const struct http_server_request *request);

/* The {name} segment, percent-decoded (a segment that does not decode, or decodes to a NUL, is
 * answered 400 before the handler runs), or NULL when the route has no capture. */
const char *http_server_request_capture(const struct http_server_request *request);

/* The body exactly as received, *len bytes of it (not NUL-terminated; never NULL, also when
 * *len is 0). */
const void *http_server_request_body(const struct http_server_request *request, size_t *len);

/* The value of header name (compared without regard to case), or NULL when it is absent. */
const char *http_server_request_header(const struct http_server_request *request, const char *name);

/* Answers with status (200-599), content_type (NULL: "application/octet-stream") and len bytes of
 * body, which are copied. Content-Length is set; a HEAD request gets the headers only, and 204
 * and 304 never carry a body. */
void http_server_respond(struct http_server_response *response, int status,
                         const char *content_type, const void *body, size_t len);

/* Answers with status and the body {"error": "<message>"} (application/json; the message is
 * formatted like printf, JSON-escaped, and cut at 1000 bytes). */
void http_server_respond_error(struct http_server_response *response, int status, const char *fmt,
                               ...) __attribute__((format(printf, 3, 4)));

/* Adds a header to the answer (e.g. Cache-Control). Returns TB_OK, or TB_USAGE with a message
 * when name is one the server sets itself (Content-Type, Content-Length, Connection,
 * Transfer-Encoding) or the name or value is not a valid header. */
int http_server_response_header(struct http_server_response *response, const char *name,
                                const char *value, char *err, size_t errsz);

#endif
