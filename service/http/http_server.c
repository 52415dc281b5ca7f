/* HTTP server: evhttp on an event_base of its own, run by one thread, with routing, bearer
 * tokens, JSON errors, connection counting and the observability hook.
 *
 * What evhttp does not tell through its public interface (a connection accepted or freed, an
 * error page of its own) comes from http_wiring, which also checks at start-up that the libevent
 * at hand is wired as it assumes (http_server_new refuses to go on otherwise). Through its hooks,
 * all on the HTTP thread:
 *  - adopted: a connection is counted against max_connections, or one beyond the cap is answered
 *    503 and closed at once; closed: the count goes down.
 *  - input: notes when a request begins, to switch between the header and idle timeouts and to
 *    measure latency from the first byte.
 *  - error_page: evhttp's HTML page (400, 413, 417, 501) is replaced by one with the same status
 *    and a JSON body, and reported to the observer as "unmatched". */
#include "service/http/http_server.h"
#include "service/http/http_wiring.h"

#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define HTTP_SERVER_DEFAULT_MAX_BODY_BYTES    ((size_t)1 << 20)
#define HTTP_SERVER_DEFAULT_HEADER_TIMEOUT_MS 10000
#define HTTP_SERVER_DEFAULT_IDLE_TIMEOUT_MS   60000
#define HTTP_SERVER_DEFAULT_MAX_CONNECTIONS   256
/* Request line plus headers; evhttp answers 400 beyond it. */
#define HTTP_SERVER_MAX_HEADER_BYTES (32 * 1024)
#define HTTP_SERVER_LISTEN_BACKLOG   511
/* How long to stop accepting after accept() fails for want of descriptors or memory (the
 * listening socket stays readable, so carrying on would spin). */
#define HTTP_SERVER_ACCEPT_PAUSE_MS 100
/* The longest message put into a JSON error body. */
#define HTTP_SERVER_MAX_MESSAGE 1000

static const struct http_method {
    enum evhttp_cmd_type type;
    const char *name;
} http_server_methods[] = {
    {EVHTTP_REQ_GET, "GET"},         {EVHTTP_REQ_POST, "POST"},   {EVHTTP_REQ_PUT, "PUT"},
    {EVHTTP_REQ_DELETE, "DELETE"},   {EVHTTP_REQ_PATCH, "PATCH"}, {EVHTTP_REQ_HEAD, "HEAD"},
    {EVHTTP_REQ_OPTIONS, "OPTIONS"}, {EVHTTP_REQ_TRACE, "TRACE"},
};
#define HTTP_SERVER_NMETHODS (sizeof http_server_methods / sizeof http_server_methods[0])

struct http_route {
    enum evhttp_cmd_type method;
    char *pattern;
    char *prefix; /* the pattern before {name}, or all of it */
    char *suffix; /* the pattern after {name} ("" when it ends there); NULL: no capture */
    size_t prefix_len, suffix_len;
    int is_protected;
    http_server_handler *handler;
    void *opaque;
};

/* One connection counted against max_connections: what http_server.c tracks of it on top of the
 * wiring's record. */
struct http_conn {
    struct http_server *server;
    struct http_wiring_conn *wired;
    struct evhttp_connection *evcon;
    int in_request;    /* a request has begun and has no answer yet */
    int method_known;  /* method below is settled for the request that has begun */
    int idle_timeouts; /* idle_timeout (1) rather than header_timeout (0) is in force */
    double request_start_s;
    char method[8]; /* of the request that has begun, "-" when not known */
};

struct http_server {
    struct event_base *base;
    struct http_wiring *wiring;      /* owns the evhttp */
    struct evconnlistener *listener; /* owned by the evhttp */
    char *address;
    int port;
    size_t max_body_bytes;
    struct timeval header_timeout, idle_timeout;
    int max_connections;
    char *bearer_token; /* NULL: protected routes are open */
    size_t bearer_token_len;
    http_server_observer *on_request;
    void *opaque;

    struct http_route *routes; /* fixed once started */
    size_t nroutes, routes_cap;

    /* Owned by the HTTP thread while it runs. */
    int open_connections;
    int cap_logged; /* the cap was reached and said so; reset when a slot frees */
    struct event *stop_ev;

    int stop_pipe[2];
    pthread_t thread;
    int started;
    atomic_size_t stat_open;
    atomic_uint_fast64_t stat_refused;
};

struct http_server_request {
    const char *method;
    const char *path;
    const char *query;
    const char *capture;
    const void *body;
    size_t body_len;
    struct evhttp_request *req;
};

struct http_server_response {
    struct evhttp_request *req;
    int is_head;
    int responded;
    int status;
    char *content_type;
};

static struct timeval http_server_timeval(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* --- methods, JSON -----------------------------------------------------------------------------
 */

static int http_server_method_index(enum evhttp_cmd_type type)
{
    for (size_t i = 0; i < HTTP_SERVER_NMETHODS; i++)
        if (http_server_methods[i].type == type)
            return (int)i;
    return -1;
}

static const char *http_server_method_name(enum evhttp_cmd_type type)
{
    int i = http_server_method_index(type);
    return i < 0 ? "-" : http_server_methods[i].name;
}

static int http_server_method_parse(const char *name, enum evhttp_cmd_type *type)
{
    for (size_t i = 0; i < HTTP_SERVER_NMETHODS; i++) {
        if (strcmp(name, http_server_methods[i].name) == 0) {
            *type = http_server_methods[i].type;
            return 1;
        }
    }
    return 0;
}

/* The length of the well-formed UTF-8 sequence of two to four bytes at s, or 0. s is
 * NUL-terminated, and a continuation byte is never NUL, so no byte past the end is read. */
static size_t http_server_utf8_length(const unsigned char *s)
{
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
            return 0; /* overlong, or a surrogate */
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
            return 0; /* overlong, or beyond U+10FFFF */
        return 4;
    }
    return 0;
}

/* Appends text as a JSON string; bytes that are not UTF-8 (a path can hold any) become U+FFFD. */
static void http_server_json_string(struct evbuffer *out, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    evbuffer_add(out, "\"", 1);
    while (*s) {
        if (*s == '"' || *s == '\\') {
            char escaped[2] = {'\\', (char)*s};
            evbuffer_add(out, escaped, 2);
            s++;
        } else if (*s < 0x20 || *s == 0x7f) {
            evbuffer_add_printf(out, "\\u%04x", *s);
            s++;
        } else if (*s < 0x80) {
            evbuffer_add(out, s, 1);
            s++;
        } else {
            size_t n = http_server_utf8_length(s);
            if (n > 0) {
                evbuffer_add(out, s, n);
                s += n;
            } else {
                evbuffer_add(out, "\\ufffd", 6);
                s++;
            }
        }
    }
    evbuffer_add(out, "\"", 1);
}

static void http_server_json_error(struct evbuffer *out, const char *message)
{
    evbuffer_add(out, "{\"error\": ", 10);
    http_server_json_string(out, message);
    evbuffer_add(out, "}", 1);
}

static void http_server_observe(struct http_server *server, const char *route, const char *method,
                                int status, double latency_s)
{
    if (server->on_request)
        server->on_request(route, method, status, latency_s > 0 ? latency_s : 0.0, server->opaque);
}

/* --- connections (through the wiring: see http_wiring.h) ---------------------------------------
 */

static void http_server_set_timeouts(struct http_conn *conn, int idle)
{
    if (conn->idle_timeouts == idle)
        return;
    conn->idle_timeouts = idle;
    evhttp_connection_set_timeout_tv(conn->evcon, idle ? &conn->server->idle_timeout
                                                       : &conn->server->header_timeout);
}

/* Notes the method of the request that has begun once its first word is in (input starts with
 * the request: evhttp consumes nothing of a request line before all of it has arrived). */
static void http_server_peek_method(struct http_conn *conn, struct evbuffer *input)
{
    char head[sizeof conn->method + 1];
    ev_ssize_t n = evbuffer_copyout(input, head, sizeof head);
    if (n <= 0)
        return;
    char *space = memchr(head, ' ', (size_t)n);
    if (!space && (size_t)n < sizeof head)
        return; /* not all of the first word yet */
    conn->method_known = 1;
    snprintf(conn->method, sizeof conn->method, "-");
    if (!space)
        return;
    *space = '\0';
    enum evhttp_cmd_type type;
    if (http_server_method_parse(head, &type))
        snprintf(conn->method, sizeof conn->method, "%s", http_server_method_name(type));
}

static void http_server_request_begins(struct http_conn *conn, struct evbuffer *input)
{
    conn->in_request = 1;
    conn->method_known = 0;
    snprintf(conn->method, sizeof conn->method, "-");
    conn->request_start_s = clock_monotonic_s();
    http_server_set_timeouts(conn, 0);
    http_server_peek_method(conn, input);
}

/* Answers a connection beyond max_connections 503 and has it closed. */
static void http_server_refuse(struct http_server *server, struct http_wiring_conn *wired)
{
    atomic_fetch_add(&server->stat_refused, 1);
    if (!server->cap_logged) {
        log_warn("http: %d connections are open, the limit; answering new ones 503",
                 server->max_connections);
        server->cap_logged = 1;
    }
    char body[160], answer[512];
    int body_len = snprintf(body, sizeof body,
                            "{\"error\": \"too many connections: the server holds its limit of %d "
                            "open connections; try again\"}",
                            server->max_connections);
    int len = snprintf(answer, sizeof answer,
                       "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
                       body_len, body);
    http_wiring_conn_refuse(wired, answer, (size_t)len);
}

/* The wiring's adopted hook: counts the connection against max_connections, or refuses it. */
static int http_server_conn_adopted(struct http_wiring_conn *wired, void *arg)
{
    struct http_server *server = arg;
    if (server->open_connections >= server->max_connections) {
        http_server_refuse(server, wired);
        return 0;
    }
    struct http_conn *conn = mem_calloc(1, sizeof *conn);
    conn->server = server;
    conn->wired = wired;
    conn->evcon = http_wiring_conn_evcon(wired);
    snprintf(conn->method, sizeof conn->method, "-");
    http_wiring_conn_set_data(wired, conn);
    server->open_connections++;
    atomic_store(&server->stat_open, (size_t)server->open_connections);
    return 1;
}

/* The wiring's input hook: notes when a request begins. */
static void http_server_conn_input(struct http_wiring_conn *wired, struct evbuffer *input,
                                   void *arg)
{
    (void)arg;
    struct http_conn *conn = http_wiring_conn_data(wired);
    if (!conn->in_request)
        http_server_request_begins(conn, input);
    else if (!conn->method_known)
        http_server_peek_method(conn, input);
}

/* The wiring's error_page hook: replaces evhttp's HTML page with a JSON one. */
static void http_server_conn_error_page(struct http_wiring_conn *wired, int status, void *arg)
{
    struct http_server *server = arg;
    struct http_conn *conn = http_wiring_conn_data(wired);
    char message[256];
    switch (status) {
    case 400:
        snprintf(message, sizeof message,
                 "malformed request: a bad request line, header or Content-Length, or headers "
                 "over %d bytes",
                 HTTP_SERVER_MAX_HEADER_BYTES);
        break;
    case 413:
        snprintf(message, sizeof message, "request body too large: the limit is %zu bytes",
                 server->max_body_bytes);
        break;
    case 417:
        snprintf(message, sizeof message, "only \"Expect: 100-continue\" is supported");
        break;
    case 501:
        snprintf(message, sizeof message, "method not implemented");
        break;
    default:
        snprintf(message, sizeof message, "request refused");
        break;
    }
    struct evbuffer *body = evbuffer_new();
    if (!body)
        return;
    http_server_json_error(body, message);
    const unsigned char *json = evbuffer_pullup(body, -1);
    if (json)
        http_wiring_conn_replace_page(wired, "application/json", json, evbuffer_get_length(body));
    evbuffer_free(body);
    double latency_s = conn->in_request ? clock_monotonic_s() - conn->request_start_s : 0.0;
    conn->in_request = 0;
    http_server_observe(server, "unmatched", conn->method, status, latency_s);
}

/* The wiring's closed hook: frees the slot, if the connection held one. */
static void http_server_conn_closed(struct http_wiring_conn *wired, void *arg)
{
    struct http_server *server = arg;
    struct http_conn *conn = http_wiring_conn_data(wired);
    if (!conn)
        return; /* refused */
    server->open_connections--;
    server->cap_logged = 0;
    atomic_store(&server->stat_open, (size_t)server->open_connections);
    free(conn);
}

static void http_server_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct http_server *server = arg;
    char drain[16];
    while (read(fd, drain, sizeof drain) > 0) {
    }
    event_base_loopbreak(server->base);
}

static void http_server_resume_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evconnlistener_enable(arg);
}

/* The listener's error callback (its argument is evhttp's, not ours). */
static void http_server_accept_error(struct evconnlistener *listener, void *arg)
{
    (void)arg;
    int saved = errno;
    log_warn("http: accept failed (%s); not accepting for %d ms", strerror(saved),
             HTTP_SERVER_ACCEPT_PAUSE_MS);
    evconnlistener_disable(listener);
    struct timeval pause = http_server_timeval(HTTP_SERVER_ACCEPT_PAUSE_MS);
    if (event_base_once(evconnlistener_get_base(listener), -1, EV_TIMEOUT,
                        http_server_resume_accept, listener, &pause) != 0)
        evconnlistener_enable(listener);
}

/* --- routing ------------------------------------------------------------------------------------
 */

static int http_server_route_matches(const struct http_route *route, const char *path,
                                     size_t path_len, const char **capture, size_t *capture_len)
{
    if (!route->suffix)
        return strcmp(route->pattern, path) == 0;
    if (path_len <= route->prefix_len + route->suffix_len ||
        memcmp(path, route->prefix, route->prefix_len) != 0 ||
        memcmp(path + path_len - route->suffix_len, route->suffix, route->suffix_len) != 0)
        return 0;
    const char *middle = path + route->prefix_len;
    size_t middle_len = path_len - route->prefix_len - route->suffix_len;
    if (memchr(middle, '/', middle_len))
        return 0;
    *capture = middle;
    *capture_len = middle_len;
    return 1;
}

static int http_server_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Returns a NUL-terminated copy of len bytes of s with %XX escapes decoded (the caller frees
 * it), or NULL when an escape is malformed or decodes to a NUL byte. */
static char *http_server_percent_decode(const char *s, size_t len)
{
    char *out = mem_alloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[n++] = s[i];
            continue;
        }
        int high = i + 2 < len ? http_server_hex(s[i + 1]) : -1;
        int low = i + 2 < len ? http_server_hex(s[i + 2]) : -1;
        if (high < 0 || low < 0 || (high == 0 && low == 0))
            goto fail;
        out[n++] = (char)(high * 16 + low);
        i += 2;
    }
    out[n] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

/* Compares a token with the expected one in time that depends only on the expected length. */
static int http_server_token_equal(const char *given, size_t given_len, const char *want,
                                   size_t want_len)
{
    volatile unsigned char diff = given_len != want_len;
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)want[i]);
    }
    return diff == 0;
}

/* Returns 1 when the request may go on to the route's handler; otherwise answers it 401 or 403
 * and returns 0. */
static int http_server_authorized(const struct http_server *server, const struct http_route *route,
                                  struct evhttp_request *req, struct http_server_response *response)
{
    if (!route->is_protected || !server->bearer_token)
        return 1;
    const char *value = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    while (value && (*value == ' ' || *value == '\t'))
        value++;
    if (!value || strncasecmp(value, "Bearer", 6) != 0 || (value[6] != ' ' && value[6] != '\t')) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"tributary\"");
        if (value)
            http_server_respond_error(response, 401,
                                      "the Authorization header does not hold a bearer token");
        else
            http_server_respond_error(response, 401,
                                      "this route needs an \"Authorization: Bearer\" token");
        return 0;
    }
    const char *token = value + 7;
    while (*token == ' ' || *token == '\t')
        token++;
    size_t len = strlen(token);
    while (len > 0 && (token[len - 1] == ' ' || token[len - 1] == '\t'))
        len--;
    if (!http_server_token_equal(token, len, server->bearer_token, server->bearer_token_len)) {
        http_server_respond_error(response, 403, "the bearer token is not valid");
        return 0;
    }
    return 1;
}

/* Hands the response to evhttp; returns the status sent. */
static int http_server_send(struct http_conn *conn, struct evhttp_request *req,
                            struct http_server_response *response)
{
    if (response->status < 200 || response->status > 599) {
        log_error("http: a handler answered with status %d; sending 500 instead", response->status);
        http_server_respond_error(response, 500, "the handler gave an invalid status %d",
                                  response->status);
    }
    int status = response->status;
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *body = evhttp_request_get_output_buffer(req);
    evhttp_remove_header(headers, "Content-Type");
    if (evhttp_add_header(headers, "Content-Type", response->content_type) != 0)
        evhttp_add_header(headers, "Content-Type", "application/octet-stream");
    if (status == 204 || status == 304) {
        evbuffer_drain(body, evbuffer_get_length(body));
    } else if (response->is_head) {
        /* evhttp would send the body of a HEAD answer, and without Content-Length. */
        char length[32];
        snprintf(length, sizeof length, "%zu", evbuffer_get_length(body));
        evhttp_add_header(headers, "Content-Length", length);
        evbuffer_drain(body, evbuffer_get_length(body));
    }
    http_wiring_send_reply(conn ? conn->wired : NULL, req, status);
    free(response->content_type);
    response->content_type = NULL;
    return status;
}

/* After an answer: the next request may already be in (pipelined), else the connection idles. */
static void http_server_after_answer(struct http_conn *conn)
{
    if (!conn)
        return;
    conn->in_request = 0;
    struct evbuffer *input = bufferevent_get_input(evhttp_connection_get_bufferevent(conn->evcon));
    if (evbuffer_get_length(input) > 0)
        http_server_request_begins(conn, input);
    else
        http_server_set_timeouts(conn, 1);
}

/* Our record of the connection req arrived on, or NULL when it has none (see http_wiring.c). */
static struct http_conn *http_server_conn_of(struct http_server *server, struct evhttp_request *req)
{
    struct http_wiring_conn *wired = http_wiring_conn_of(server->wiring, req);
    return wired ? http_wiring_conn_data(wired) : NULL;
}

/* Runs a route's handler for a request that matched it (request holds the method, path and
 * query), after the bearer token and the captured segment are checked. */
static void http_server_call(const struct http_server *server, const struct http_route *route,
                             struct http_server_request *request, const char *capture,
                             size_t capture_len, struct http_server_response *response)
{
    char *decoded = NULL;
    if (!http_server_authorized(server, route, request->req, response))
        return; /* answered 401 or 403 */
    if (route->suffix && !(decoded = http_server_percent_decode(capture, capture_len))) {
        http_server_respond_error(response, 400,
                                  "path segment '%.*s' is not valid percent-encoding",
                                  (int)(capture_len < 200 ? capture_len : 200), capture);
        return;
    }
    struct evbuffer *input = evhttp_request_get_input_buffer(request->req);
    request->body_len = evbuffer_get_length(input);
    request->body = request->body_len ? (const void *)evbuffer_pullup(input, -1) : "";
    request->capture = decoded;
    if (!request->body) {
        http_server_respond_error(response, 500, "no memory for the request body");
    } else {
        route->handler(request, response, route->opaque);
        if (!response->responded) {
            log_error("http: the handler of %s %s gave no answer", request->method, route->pattern);
            http_server_respond_error(response, 500, "the handler gave no answer");
        }
    }
    free(decoded);
}

/* evhttp's callback for every complete request. */
static void http_server_handle(struct evhttp_request *req, void *arg)
{
    struct http_server *server = arg;
    struct http_conn *conn = http_server_conn_of(server, req);
    double start_s = conn && conn->in_request ? conn->request_start_s : clock_monotonic_s();
    enum evhttp_cmd_type type = evhttp_request_get_command(req);
    const char *method = http_server_method_name(type);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path)
        path = "/";
    size_t path_len = strlen(path);

    /* The route for the method (a pattern without a capture first), and every method the path
     * has a route for. */
    const struct http_route *chosen = NULL, *matched = NULL;
    const char *capture = NULL;
    size_t capture_len = 0;
    unsigned allowed = 0; /* bit i: http_server_methods[i] */
    for (size_t i = 0; i < server->nroutes; i++) {
        const struct http_route *route = &server->routes[i];
        const char *cap = NULL;
        size_t cap_len = 0;
        if (!http_server_route_matches(route, path, path_len, &cap, &cap_len))
            continue;
        if (!matched || (matched->suffix && !route->suffix))
            matched = route;
        allowed |= 1u << http_server_method_index(route->method);
        if (route->method == type && (!chosen || (chosen->suffix && !route->suffix))) {
            chosen = route;
            capture = cap;
            capture_len = cap_len;
        }
    }

    struct http_server_response response = {.req = req, .is_head = type == EVHTTP_REQ_HEAD};
    const char *route_name = "unmatched";
    if (!matched) {
        http_server_respond_error(&response, 404, "no route for %.200s", path);
    } else if (!chosen) {
        route_name = matched->pattern;
        char allow[96] = "";
        for (size_t i = 0; i < HTTP_SERVER_NMETHODS; i++) {
            if (allowed & (1u << i))
                snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                         allow[0] ? ", " : "", http_server_methods[i].name);
        }
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        http_server_respond_error(&response, 405,
                                  "method %s is not allowed on %.200s (allowed: %s)", method, path,
                                  allow);
    } else {
        route_name = chosen->pattern;
        struct http_server_request request = {
            .method = method,
            .path = path,
            .query = uri ? evhttp_uri_get_query(uri) : NULL,
            .req = req,
        };
        http_server_call(server, chosen, &request, capture, capture_len, &response);
    }
    int status = http_server_send(conn, req, &response);
    http_server_observe(server, route_name, method, status, clock_monotonic_s() - start_s);
    http_server_after_answer(conn);
}

/* Checks a pattern; on success sets *capture_at to the offset of '{' and *suffix_at to the one
 * after '}' (both 0 without a capture). */
static int http_server_pattern_parse(const char *pattern, size_t *capture_at, size_t *suffix_at,
                                     char *why, size_t whysz)
{
    *capture_at = *suffix_at = 0;
    if (pattern[0] != '/')
        return tb_fail(why, whysz, TB_USAGE, "a pattern starts with '/'");
    for (size_t i = 0; pattern[i]; i++) {
        unsigned char c = (unsigned char)pattern[i];
        if (c == '{') {
            if (*suffix_at)
                return tb_fail(why, whysz, TB_USAGE, "only one {name} segment is allowed");
            size_t end = i + 1;
            while (pattern[end] && pattern[end] != '}' && pattern[end] != '/')
                end++;
            if (pattern[i - 1] != '/' || pattern[end] != '}' ||
                (pattern[end + 1] != '\0' && pattern[end + 1] != '/'))
                return tb_fail(why, whysz, TB_USAGE, "{name} must be a whole path segment");
            if (end == i + 1)
                return tb_fail(why, whysz, TB_USAGE, "{} needs a name");
            for (size_t k = i + 1; k < end; k++) {
                char n = pattern[k];
                if (!((n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') || (n >= '0' && n <= '9') ||
                      n == '_' || n == '-'))
                    return tb_fail(why, whysz, TB_USAGE,
                                   "a {name} holds only letters, digits, '_' and '-'");
            }
            *capture_at = i;
            *suffix_at = end + 1;
            i = end;
        } else if (c == '}' || c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '%') {
            return tb_fail(why, whysz, TB_USAGE, "character 0x%02x is not allowed in a pattern", c);
        }
    }
    return TB_OK;
}

/* --- public -------------------------------------------------------------------------------------
 */

int http_server_route(struct http_server *server, const char *method, const char *pattern,
                      int is_protected, http_server_handler *handler, void *opaque, char *err,
                      size_t errsz)
{
    if (!server || !method || !pattern || !handler)
        return tb_fail(err, errsz, TB_USAGE,
                       "http_server_route needs a server, a method, a pattern and a handler");
    if (server->started)
        return tb_fail(err, errsz, TB_USAGE,
                       "route %s %s: routes must be registered before http_server_start", method,
                       pattern);
    enum evhttp_cmd_type type;
    if (!http_server_method_parse(method, &type))
        return tb_fail(err, errsz, TB_USAGE,
                       "route %s %s: unknown method '%s' (GET, POST, PUT, DELETE, PATCH, HEAD, "
                       "OPTIONS or TRACE)",
                       method, pattern, method);
    size_t capture_at, suffix_at;
    char why[128];
    if (http_server_pattern_parse(pattern, &capture_at, &suffix_at, why, sizeof why) != TB_OK)
        return tb_fail(err, errsz, TB_USAGE, "route %s %s: %s", method, pattern, why);
    size_t prefix_len = suffix_at ? capture_at : strlen(pattern);
    const char *suffix = suffix_at ? pattern + suffix_at : NULL;
    for (size_t i = 0; i < server->nroutes; i++) {
        const struct http_route *other = &server->routes[i];
        if (other->method == type && other->prefix_len == prefix_len &&
            memcmp(other->prefix, pattern, prefix_len) == 0 && !other->suffix == !suffix &&
            (!suffix || strcmp(other->suffix, suffix) == 0))
            return tb_fail(err, errsz, TB_USAGE, "route %s %s: already registered as %s %s", method,
                           pattern, method, other->pattern);
    }
    mem_grow((void **)&server->routes, &server->routes_cap, server->nroutes + 1,
             sizeof *server->routes);
    struct http_route *route = &server->routes[server->nroutes++];
    route->method = type;
    route->pattern = mem_strdup(pattern);
    route->prefix = mem_strndup(pattern, prefix_len);
    route->prefix_len = prefix_len;
    route->suffix = suffix ? mem_strdup(suffix) : NULL;
    route->suffix_len = suffix ? strlen(suffix) : 0;
    route->is_protected = is_protected != 0;
    route->handler = handler;
    route->opaque = opaque;
    return TB_OK;
}

/* Splits "host:port" into host (without the brackets of an IPv6 address) and port. */
static int http_server_split_address(const char *address, char *host, size_t hostsz, char *port,
                                     size_t portsz, char *err, size_t errsz)
{
    if (!address || !*address)
        return tb_fail(err, errsz, TB_USAGE,
                       "no address to listen on (want host:port, e.g. 127.0.0.1:8080)");
    const char *colon = strrchr(address, ':');
    if (!colon)
        return tb_fail(err, errsz, TB_USAGE, "address '%s' is not host:port (e.g. 127.0.0.1:8080)",
                       address);
    const char *h = address;
    size_t hlen = (size_t)(colon - address);
    if (hlen > 0 && h[0] == '[') {
        if (hlen < 2 || h[hlen - 1] != ']')
            return tb_fail(err, errsz, TB_USAGE,
                           "address '%s': an IPv6 host goes in brackets, e.g. [::1]:8080", address);
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen) || memchr(h, ']', hlen)) {
        return tb_fail(err, errsz, TB_USAGE,
                       "address '%s': an IPv6 host goes in brackets, e.g. [::1]:8080", address);
    }
    if (hlen == 0)
        return tb_fail(err, errsz, TB_USAGE,
                       "address '%s' has no host (0.0.0.0 listens on every interface)", address);
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c <= 0x20 || c >= 0x7f || c == '[' || c == '/')
            return tb_fail(err, errsz, TB_USAGE, "address '%s': the host is not a valid name",
                           address);
    }
    if (hlen >= hostsz)
        return tb_fail(err, errsz, TB_USAGE, "address '%s': the host is too long", address);
    const char *p = colon + 1;
    size_t plen = strlen(p);
    long value = 0;
    for (size_t i = 0; i < plen && plen <= 5; i++) {
        if (p[i] < '0' || p[i] > '9') {
            value = -1;
            break;
        }
        value = value * 10 + (p[i] - '0');
    }
    if (plen == 0 || plen > 5 || value < 0 || value > 65535 || plen >= portsz)
        return tb_fail(err, errsz, TB_USAGE,
                       "address '%s': the port must be a number from 0 to 65535", address);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, p, plen + 1);
    return TB_OK;
}

static int http_server_listen(struct http_server *server, const char *address, char *err,
                              size_t errsz)
{
    char host[256], port[8];
    int rc = http_server_split_address(address, host, sizeof host, port, sizeof port, err, errsz);
    if (rc != TB_OK)
        return rc;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int gai = getaddrinfo(host, port, &hints, &found);
    if (gai != 0)
        return tb_fail(err, errsz, TB_IO, "cannot listen on %s: %s", address, gai_strerror(gai));
    int fd = socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    found->ai_protocol);
    if (fd < 0) {
        rc =
            tb_fail(err, errsz, TB_IO, "cannot listen on %s: socket: %s", address, strerror(errno));
        goto done;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, found->ai_addr, found->ai_addrlen) != 0 ||
        listen(fd, HTTP_SERVER_LISTEN_BACKLOG) != 0) {
        rc = tb_fail(err, errsz, TB_IO, "cannot listen on %s: %s", address, strerror(errno));
        goto done;
    }
    /* Zeroed byte by byte: clang's analyzer does not see getsockname write through glibc's
     * transparent-union argument, and with `= {0}` it takes the port for garbage. */
    struct sockaddr_storage bound;
    memset(&bound, 0, sizeof bound);
    socklen_t bound_len = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
        rc = tb_fail(err, errsz, TB_IO, "cannot listen on %s: getsockname: %s", address,
                     strerror(errno));
        goto done;
    }
    server->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                               : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    /* Backlog 0: the socket already listens. */
    server->listener = evconnlistener_new(server->base, NULL, NULL,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!server->listener) {
        rc =
            tb_fail(err, errsz, TB_NOMEM, "cannot listen on %s: libevent has no listener", address);
        goto done;
    }
    fd = -1; /* the listener's now */
    if (!evhttp_bind_listener(http_wiring_evhttp(server->wiring), server->listener)) {
        evconnlistener_free(server->listener);
        server->listener = NULL;
        rc = tb_fail(err, errsz, TB_NOMEM, "cannot listen on %s: evhttp refused the listener",
                     address);
        goto done;
    }
    evconnlistener_set_error_cb(server->listener, http_server_accept_error);
done:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(found);
    return rc;
}

struct http_server *http_server_new(const struct http_server_options *options, char *err,
                                    size_t errsz)
{
    static const struct http_wiring_hooks hooks = {
        .adopted = http_server_conn_adopted,
        .input = http_server_conn_input,
        .error_page = http_server_conn_error_page,
        .closed = http_server_conn_closed,
    };
    struct http_server *server = NULL;
    struct evhttp *http = NULL;
    char why[256];
    if (!options) {
        tb_fail(err, errsz, TB_USAGE, "no HTTP server options");
        return NULL;
    }
    if (options->header_timeout_ms < 0 || options->idle_timeout_ms < 0 ||
        options->max_connections < 0) {
        tb_fail(err, errsz, TB_USAGE,
                "HTTP server: header_timeout_ms (%d), idle_timeout_ms (%d) and max_connections "
                "(%d) must not be negative",
                options->header_timeout_ms, options->idle_timeout_ms, options->max_connections);
        return NULL;
    }
    /* Before anything is bound: a libevent wired otherwise would misbehave only later, under
     * clients. */
    if (http_wiring_self_check(why, sizeof why) != TB_OK) {
        tb_fail(err, errsz, TB_IO, "%s; refusing to start the HTTP server", why);
        return NULL;
    }
    server = mem_calloc(1, sizeof *server);
    server->stop_pipe[0] = server->stop_pipe[1] = -1;
    atomic_init(&server->stat_open, 0);
    atomic_init(&server->stat_refused, 0);
    server->address = mem_strdup(options->address ? options->address : "");
    server->max_body_bytes =
        options->max_body_bytes ? options->max_body_bytes : HTTP_SERVER_DEFAULT_MAX_BODY_BYTES;
    if (server->max_body_bytes > (size_t)SSIZE_MAX)
        server->max_body_bytes = (size_t)SSIZE_MAX;
    server->header_timeout =
        http_server_timeval(options->header_timeout_ms ? options->header_timeout_ms
                                                       : HTTP_SERVER_DEFAULT_HEADER_TIMEOUT_MS);
    server->idle_timeout = http_server_timeval(
        options->idle_timeout_ms ? options->idle_timeout_ms : HTTP_SERVER_DEFAULT_IDLE_TIMEOUT_MS);
    server->max_connections =
        options->max_connections ? options->max_connections : HTTP_SERVER_DEFAULT_MAX_CONNECTIONS;
    if (options->bearer_token && options->bearer_token[0]) {
        server->bearer_token = mem_strdup(options->bearer_token);
        server->bearer_token_len = strlen(server->bearer_token);
    }
    server->on_request = options->on_request;
    server->opaque = options->opaque;

    if (pipe2(server->stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        tb_fail(err, errsz, TB_IO, "HTTP server: pipe: %s", strerror(errno));
        goto fail;
    }
    server->base = event_base_new();
    server->stop_ev = server->base ? event_new(server->base, server->stop_pipe[0],
                                               EV_READ | EV_PERSIST, http_server_stop_cb, server)
                                   : NULL;
    if (!server->stop_ev || event_add(server->stop_ev, NULL) != 0) {
        tb_fail(err, errsz, TB_NOMEM, "HTTP server: libevent could not set up its event loop");
        goto fail;
    }
    /* As many lingering sockets as connections. */
    server->wiring =
        http_wiring_new(server->base, server->max_connections, &hooks, server, err, errsz);
    if (!server->wiring)
        goto fail;
    http = http_wiring_evhttp(server->wiring);
    evhttp_set_max_body_size(http, (ev_ssize_t)server->max_body_bytes);
    evhttp_set_max_headers_size(http, (ev_ssize_t)HTTP_SERVER_MAX_HEADER_BYTES);
    evhttp_set_timeout_tv(http, &server->header_timeout);
    ev_uint16_t methods = 0;
    for (size_t i = 0; i < HTTP_SERVER_NMETHODS; i++)
        methods |= (ev_uint16_t)http_server_methods[i].type;
    evhttp_set_allowed_methods(http, methods); /* others (CONNECT): 501 */
    evhttp_set_gencb(http, http_server_handle, server);
    if (http_server_listen(server, server->address, err, errsz) != TB_OK)
        goto fail;
    return server;
fail:
    http_server_destroy(server);
    return NULL;
}

int http_server_port(const struct http_server *server)
{
    return server->port;
}

static void *http_server_run(void *arg)
{
    struct http_server *server = arg;
    log_set_thread_name("http");
    /* evhttp writes with writev, which raises SIGPIPE when a client has gone; blocked here, the
     * write fails with EPIPE instead, whatever the rest of the process does with the signal. */
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, NULL);
    if (event_base_dispatch(server->base) < 0)
        log_error("http: the event loop failed");
    return NULL;
}

int http_server_start(struct http_server *server, char *err, size_t errsz)
{
    if (server->started)
        return tb_fail(err, errsz, TB_USAGE, "the HTTP server on %s is already started",
                       server->address);
    int rc = pthread_create(&server->thread, NULL, http_server_run, server);
    if (rc != 0)
        return tb_fail(err, errsz, TB_IO, "cannot start the HTTP thread: %s", strerror(rc));
    server->started = 1;
    log_info("http: listening on %s (port %d), %zu routes", server->address, server->port,
             server->nroutes);
    return TB_OK;
}

void http_server_destroy(struct http_server *server)
{
    if (!server)
        return;
    if (server->started) {
        char byte = 1;
        ssize_t n;
        do {
            n = write(server->stop_pipe[1], &byte, 1);
        } while (n < 0 && errno == EINTR);
        pthread_join(server->thread, NULL);
    }
    /* Lingering sockets, the listener and every connection (the closed hook frees our records). */
    http_wiring_free(server->wiring);
    if (server->stop_ev)
        event_free(server->stop_ev);
    if (server->base)
        event_base_free(server->base);
    for (int i = 0; i < 2; i++)
        if (server->stop_pipe[i] >= 0)
            close(server->stop_pipe[i]);
    for (size_t i = 0; i < server->nroutes; i++) {
        free(server->routes[i].suffix);
        free(server->routes[i].prefix);
        free(server->routes[i].pattern);
    }
    free(server->routes);
    free(server->bearer_token);
    free(server->address);
    free(server);
}

void http_server_stats(const struct http_server *server, struct http_server_stats *stats)
{
    stats->open_connections = atomic_load(&server->stat_open);
    stats->refused_connections = atomic_load(&server->stat_refused);
}

/* --- for handlers ------------------------------------------------------------------------------
 */

const char *http_server_request_method(const struct http_server_request *request)
{
    return request->method;
}

const char *http_server_request_path(const struct http_server_request *request)
{
    return request->path;
}

const char *http_server_request_query(const struct http_server_request *request)
{
    return request->query;
}

const char *http_server_request_capture(const struct http_server_request *request)
{
    return request->capture;
}

const void *http_server_request_body(const struct http_server_request *request, size_t *len)
{
    *len = request->body_len;
    return request->body;
}

const char *http_server_request_header(const struct http_server_request *request, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(request->req), name);
}

void http_server_respond(struct http_server_response *response, int status,
                         const char *content_type, const void *body, size_t len)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(response->req);
    evbuffer_drain(out, evbuffer_get_length(out));
    if (len > 0 && evbuffer_add(out, body, len) != 0)
        log_error("http: no memory for an answer of %zu bytes", len);
    free(response->content_type);
    response->content_type = mem_strdup(content_type ? content_type : "application/octet-stream");
    response->status = status;
    response->responded = 1;
}

void http_server_respond_error(struct http_server_response *response, int status, const char *fmt,
                               ...)
{
    char message[HTTP_SERVER_MAX_MESSAGE + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    struct evbuffer *out = evhttp_request_get_output_buffer(response->req);
    evbuffer_drain(out, evbuffer_get_length(out));
    http_server_json_error(out, message);
    free(response->content_type);
    response->content_type = mem_strdup("application/json");
    response->status = status;
    response->responded = 1;
}

int http_server_response_header(struct http_server_response *response, const char *name,
                                const char *value, char *err, size_t errsz)
{
    static const char *const reserved[] = {"Content-Type", "Content-Length", "Connection",
                                           "Transfer-Encoding"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return tb_fail(err, errsz, TB_USAGE, "header %s is set by the HTTP server", name);
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == ':')
            return tb_fail(err, errsz, TB_USAGE, "'%s' is not a valid header name", name);
    if (!*name ||
        evhttp_add_header(evhttp_request_get_output_headers(response->req), name, value) != 0)
        return tb_fail(err, errsz, TB_USAGE, "header %s: the name or value is not valid", name);
    return TB_OK;
}
