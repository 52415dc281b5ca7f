/* evhttp's private wiring in one place: libevent 2.1 has no public hook for when evhttp accepts or
 * frees a server connection, nor for the HTML error pages it writes itself. This module finds the
 * evhttp_connection behind each bufferevent it makes for evhttp, tells its owner when a
 * connection is set up, receives bytes, gets an error page of evhttp's and is freed, lets the
 * owner replace such a page, and keeps the socket of a connection closed after such a page (or a
 * refusal) draining for a while, so that the client reads the answer rather than a reset
 * (lingering close). http_wiring.c says what of evhttp's internals this relies on, and what is
 * checked where. Everything but http_wiring_self_check runs on the thread that runs the
 * event_base. */
#ifndef TRIBUTARY_HTTP_WIRING_H
#define TRIBUTARY_HTTP_WIRING_H

#include <event2/http.h>

#include <stddef.h>

/* An evhttp with the wiring in place. */
struct http_wiring;

/* One connection evhttp accepted; valid from the adopted hook until the closed hook returns. */
struct http_wiring_conn;

/* What the owner of an http_wiring is told; each hook gets the opaque of http_wiring_new. */
struct http_wiring_hooks {
    /* evhttp has set conn up (its evhttp_connection and socket are known) and has read nothing of
     * it yet. Returns 1 to let evhttp serve it, or 0 after http_wiring_conn_refuse (conn is then
     * gone). */
    int (*adopted)(struct http_wiring_conn *conn, void *opaque);
    /* Bytes arrived on conn; input holds all that evhttp has not consumed yet. Not called once
     * conn is closing (after an error page or a refusal). */
    void (*input)(struct http_wiring_conn *conn, struct evbuffer *input, void *opaque);
    /* evhttp has queued an error page of its own on conn (status 400, 413, 417, 501, ...), none
     * of which is written yet, and closes conn once it is written (conn then lingers; 2.1.12
     * keeps a CONNECT request's connection open, until a timeout). The hook may replace the page
     * with http_wiring_conn_replace_page. */
    void (*error_page)(struct http_wiring_conn *conn, int status, void *opaque);
    /* evhttp is freeing conn, which was adopted (refused ones too); also from within
     * http_wiring_free. conn is gone when the hook returns. */
    void (*closed)(struct http_wiring_conn *conn, void *opaque);
};

/* Checks, on a private evhttp and one loopback connection to it, that the libevent this process
 * runs with is wired as this module assumes (see http_wiring.c); takes about a millisecond and
 * may be called from any thread. Returns TB_OK, or TB_IO with a message in err: "libevent
 * <version>: evhttp's connection wiring is not what tributary assumes (<what differs>)", or one
 * saying why the check could not run (no loopback socket). */
int http_wiring_self_check(char *err, size_t errsz);

/* Creates an evhttp on base, wired for hooks (copied; every hook must be set); at most
 * max_lingering closed sockets drain at once (beyond, they close at once). Configure the evhttp
 * (limits, callbacks, listener) through http_wiring_evhttp, but leave its bufferevent callback
 * (evhttp_set_bevcb) alone. Returns the wiring (free it with http_wiring_free) or NULL with
 * TB_NOMEM's message in err when libevent cannot allocate. */
struct http_wiring *http_wiring_new(struct event_base *base, int max_lingering,
                                    const struct http_wiring_hooks *hooks, void *opaque, char *err,
                                    size_t errsz);

/* The evhttp, owned by the wiring. */
struct evhttp *http_wiring_evhttp(const struct http_wiring *wiring);

/* Stops every lingering socket, frees the evhttp with its listener and connections (the closed
 * hook runs for each adopted one), then the wiring. Must not run inside the event loop of base.
 * NULL is a no-op. */
void http_wiring_free(struct http_wiring *wiring);

/* The adopted connection req arrived on, or NULL when there is none (evhttp set it up without
 * the wiring: see http_wiring.c). */
struct http_wiring_conn *http_wiring_conn_of(const struct http_wiring *wiring,
                                             struct evhttp_request *req);

/* The owner's pointer for conn (NULL until set); the wiring never uses it. */
void http_wiring_conn_set_data(struct http_wiring_conn *conn, void *data);
void *http_wiring_conn_data(const struct http_wiring_conn *conn);

/* The evhttp_connection of conn, for evhttp's public calls (timeouts, its bufferevent). */
struct evhttp_connection *http_wiring_conn_evcon(const struct http_wiring_conn *conn);

/* evhttp_send_reply for a request of the owner's: the answer is not taken for an error page of
 * evhttp's, whatever its status. conn is http_wiring_conn_of(req) and may be NULL. */
void http_wiring_send_reply(struct http_wiring_conn *conn, struct evhttp_request *req, int status);

/* From the error_page hook only: replaces evhttp's page with the same status line, the headers
 * Content-Type: content_type, Content-Length and Connection: close, and len bytes of body (all
 * copied). */
void http_wiring_conn_replace_page(struct http_wiring_conn *conn, const char *content_type,
                                   const void *body, size_t len);

/* From the adopted hook only: writes len bytes of answer straight to the new socket (whose send
 * buffer is empty, so all of it fits unless it is very long), then has evhttp free conn, which
 * lingers; the closed hook runs before this returns. */
void http_wiring_conn_refuse(struct http_wiring_conn *conn, const void *answer, size_t len);

#endif
