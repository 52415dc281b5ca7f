/* evhttp's private wiring (see http_wiring.h): what it relies on of libevent's internals, and
 * what is checked where.
 *
 * libevent 2.1 has neither evhttp_set_newreqcb nor a public evhttp_get_request, and evhttp
 * answers some requests itself with an HTML page (400 for a malformed request, 413 for a body over
 * evhttp_set_max_body_size, 417, 501) and then closes the socket at once, unread data and all,
 * which can reset the connection before the client reads the answer. This file relies on three
 * things that evhttp's http.c does, the same from 2.1.9 to 2.1.12:
 *  A. evhttp_get_request_connection calls the evhttp_set_bevcb callback for each accepted socket,
 *     builds the evhttp_connection around the bufferevent it returns, sets the bufferevent's
 *     callbacks with that evhttp_connection as their argument, and then sets the socket, all
 *     before the listener's callback returns. So a work event made active in the bevcb callback
 *     runs after that and before the loop next polls (before any byte is read), and finds the
 *     evhttp_connection as bufferevent_getcb's argument: there the connection is "adopted" and
 *     its close callback set. evhttp gives up on a connection it cannot set up by freeing the
 *     bufferevent, which clears its callbacks; a reference held until adoption keeps it readable.
 *  B. evhttp_connection_free calls an accepted connection's close callback while its socket is
 *     still open, then shuts the socket down for writing and closes it. Our record of the
 *     connection is freed there, and a duplicate of the socket can be kept and drained for a
 *     while (lingering close).
 *  C. evhttp_send_error writes the status line "HTTP/1.x NNN" into the bufferevent's empty output
 *     buffer, then the rest of the page, leaves the writing to the loop, and frees the connection
 *     once the page is written. So a callback on the output buffer notices the page as it begins
 *     (the owner's own answers are flagged while evhttp_send_reply runs), and the work event,
 *     which runs before the socket is next writable, can replace all of it. A socket bufferevent
 *     freezes the start of its output buffer after its first write and unfreezes it only while it
 *     writes, so the page is read with evbuffer_peek (evbuffer_copyout refuses a frozen start)
 *     and taken out between evbuffer_unfreeze and evbuffer_freeze, as evhttp_error_cb itself
 *     does; freezing a start that was not frozen yet changes nothing, the bufferevent unfreezes
 *     it before it writes.
 *
 * Checked where:
 *  - At compile time, below: LIBEVENT_VERSION_NUMBER within the releases that A to C were read
 *    in.
 *  - At every adoption, with a few comparisons: the callback argument's bufferevent, evhttp and
 *    event_base, as evhttp's public accessors give them, are the connection's, and the
 *    bufferevent has a socket. When they are not, the connection is left to evhttp without the
 *    wiring (the owner never sees it: it is not counted and gets evhttp's HTML error pages) and
 *    an error is logged once.
 *  - At start-up, http_wiring_self_check runs this wiring on a private evhttp with one loopback
 *    connection, in about a millisecond. A: the callback argument is the very evhttp_connection
 *    that evhttp_request_get_connection gives for a request on the connection, nothing was read
 *    before adoption, and the socket's peer and the evhttp_connection's peer are the client. B:
 *    the close callback runs after evhttp has written an error page, with the socket still open
 *    and its peer still the client, and the socket is kept for a lingering close. C: after an
 *    answer of the handler's with status 404 came through as it was sent (so the output buffer's
 *    start is frozen), the client reads the replaced 400 page of a malformed request and then the
 *    end of the stream.
 * What no check can do: the adoption check reads the callback argument through evhttp's accessors
 * before anything can confirm that it is an evhttp_connection, so a libevent wired otherwise could
 * make that read go astray. The version guard and the self-check are there so that such a libevent
 * is refused before a client's connection is adopted. */
#include "service/http/http_wiring.h"

#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* 2.1.9 to 2.1.12: the functions of http.c behind A to C are the same in these releases (2.1.9
 * has no AF_UNIX handling in evhttp_get_request_connection, which TCP does not use), tested with
 * 2.1.12 as Debian 12 ships it. Not 2.1.8: its evhttp_connection_free frees the bufferevent before
 * shutting the socket down and then reads it again (libevent commit 6ac2ec25, in 2.1.9), on the
 * closing path that B relies on, and its evhttp_handle_request and evhttp_write_buffer turn reading
 * on and off otherwise while a request is answered. Not 2.2: it has public hooks for all of this
 * (evhttp_set_newreqcb, evhttp_set_errorcb, evhttp_set_max_connections), which should replace this
 * file. */
#if !defined(LIBEVENT_VERSION_NUMBER) || LIBEVENT_VERSION_NUMBER < 0x02010900 ||                   \
    LIBEVENT_VERSION_NUMBER >= 0x02010d00
#error "evhttp's wiring is verified with libevent 2.1.9 to 2.1.12 only: see http_wiring.c's notes"
#endif

/* A lingering socket is drained until the client closes it, is quiet this long, or this much time
 * has passed. */
#define HTTP_WIRING_LINGER_QUIET_MS 2000
#define HTTP_WIRING_LINGER_MAX_MS   10000
/* The longest status line kept when an error page is replaced ("HTTP/1.1 413 Payload Too Large"
 * is 30 bytes). */
#define HTTP_WIRING_MAX_STATUS_LINE 128
/* The self-check gives up after this long; it takes about a millisecond. */
#define HTTP_WIRING_PROBE_TIMEOUT_MS 5000

struct http_wiring_conn {
    struct http_wiring *wiring;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until adopted */
    int fd;                          /* -1 until adopted */
    struct evbuffer_cb_entry *input_cb, *output_cb;
    int adopted;      /* evcon is known and its close callback set */
    int queued;       /* on the wiring's work list */
    int replying;     /* an answer of the owner's is going into the output buffer */
    int error_status; /* evhttp queued an error page with this status; 0: none */
    int linger;       /* ends with an error page or a refusal: linger when evhttp frees it */
    void *data;       /* the owner's */
    struct http_wiring_conn *prev, *next;
    struct http_wiring_conn *work_prev, *work_next;
};

/* A closed connection's socket being drained. */
struct http_linger {
    struct http_wiring *wiring;
    int fd;
    struct event *ev;
    double deadline_s;
    struct http_linger *prev, *next;
};

struct http_wiring {
    struct event_base *base;
    struct evhttp *http;
    struct http_wiring_hooks hooks;
    void *opaque;
    int max_lingering;
    struct event *work_ev;
    struct http_wiring_conn *conns; /* every record, adopted or not */
    struct http_wiring_conn *work_head, *work_tail;
    struct http_wiring_conn **conn_by_fd; /* adopted connections by socket */
    size_t conn_by_fd_cap;
    struct http_linger *lingers;
    int nlingers;
    int stopping;  /* in http_wiring_free: no new lingering sockets */
    int quiet;     /* the self-check's: a mismatch is reported by it, not logged */
    char why[160]; /* the first adoption check that failed; "" when none has */
};

static struct timeval http_wiring_timeval(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* --- records and the work list ------------------------------------------------------------------
 */

static void http_wiring_work_push(struct http_wiring *wiring, struct http_wiring_conn *conn)
{
    if (conn->queued)
        return;
    conn->queued = 1;
    conn->work_next = NULL;
    conn->work_prev = wiring->work_tail;
    if (wiring->work_tail)
        wiring->work_tail->work_next = conn;
    else
        wiring->work_head = conn;
    wiring->work_tail = conn;
    event_active(wiring->work_ev, EV_TIMEOUT, 1);
}

static void http_wiring_work_remove(struct http_wiring *wiring, struct http_wiring_conn *conn)
{
    if (!conn->queued)
        return;
    if (conn->work_prev)
        conn->work_prev->work_next = conn->work_next;
    else
        wiring->work_head = conn->work_next;
    if (conn->work_next)
        conn->work_next->work_prev = conn->work_prev;
    else
        wiring->work_tail = conn->work_prev;
    conn->work_prev = conn->work_next = NULL;
    conn->queued = 0;
}

/* Frees the record alone: its bufferevent may be gone. */
static void http_wiring_conn_forget(struct http_wiring *wiring, struct http_wiring_conn *conn)
{
    http_wiring_work_remove(wiring, conn);
    assert(conn->wiring == wiring && (conn->prev != NULL) == (wiring->conns != conn));
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        wiring->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    if (conn->fd >= 0 && (size_t)conn->fd < wiring->conn_by_fd_cap &&
        wiring->conn_by_fd[conn->fd] == conn)
        wiring->conn_by_fd[conn->fd] = NULL;
    free(conn);
}

/* Frees the record of a connection whose bufferevent is still there. */
static void http_wiring_conn_free(struct http_wiring *wiring, struct http_wiring_conn *conn)
{
    if (conn->input_cb)
        evbuffer_remove_cb_entry(bufferevent_get_input(conn->bev), conn->input_cb);
    if (conn->output_cb)
        evbuffer_remove_cb_entry(bufferevent_get_output(conn->bev), conn->output_cb);
    if (!conn->adopted)
        bufferevent_decref(conn->bev); /* the reference taken in http_wiring_new_bufferevent */
    http_wiring_conn_forget(wiring, conn);
}

/* --- lingering close ----------------------------------------------------------------------------
 */

static void http_wiring_linger_end(struct http_linger *linger)
{
    struct http_wiring *wiring = linger->wiring;
    event_free(linger->ev);
    close(linger->fd);
    if (linger->prev)
        linger->prev->next = linger->next;
    else
        wiring->lingers = linger->next;
    if (linger->next)
        linger->next->prev = linger->prev;
    wiring->nlingers--;
    free(linger);
}

static void http_wiring_linger_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_linger *linger = arg;
    if (what & EV_TIMEOUT) {
        http_wiring_linger_end(linger);
        return;
    }
    char sink[16384];
    for (int i = 0; i < 16; i++) { /* then let other connections have a turn */
        ssize_t n = recv(fd, sink, sizeof sink, 0);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        http_wiring_linger_end(linger); /* the client closed, or the socket failed */
        return;
    }
    if (clock_monotonic_s() > linger->deadline_s)
        http_wiring_linger_end(linger);
}

/* Keeps a duplicate of fd, which evhttp is about to shut down for writing (so the client sees
 * the end of the answer) and close, and drains it. */
static void http_wiring_linger(struct http_wiring *wiring, int fd)
{
    if (fd < 0 || wiring->nlingers >= wiring->max_lingering)
        return;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0)
        return;
    struct http_linger *linger = mem_calloc(1, sizeof *linger);
    linger->wiring = wiring;
    linger->fd = copy;
    linger->deadline_s = clock_monotonic_s() + HTTP_WIRING_LINGER_MAX_MS / 1000.0;
    linger->ev = event_new(wiring->base, copy, EV_READ | EV_PERSIST, http_wiring_linger_cb, linger);
    struct timeval quiet = http_wiring_timeval(HTTP_WIRING_LINGER_QUIET_MS);
    if (!linger->ev || event_add(linger->ev, &quiet) != 0) {
        if (linger->ev)
            event_free(linger->ev);
        close(copy);
        free(linger);
        return;
    }
    linger->next = wiring->lingers;
    if (wiring->lingers)
        wiring->lingers->prev = linger;
    wiring->lingers = linger;
    wiring->nlingers++;
}

/* --- callbacks on evhttp's bufferevent ----------------------------------------------------------
 */

static void http_wiring_input_cb(struct evbuffer *input, const struct evbuffer_cb_info *info,
                                 void *arg)
{
    struct http_wiring_conn *conn = arg;
    struct http_wiring *wiring = conn->wiring;
    if (info->n_added == 0 || !conn->adopted || conn->linger)
        return;
    wiring->hooks.input(conn, input, wiring->opaque);
}

/* Copies up to len bytes from the start of buf into out; returns how many. Unlike
 * evbuffer_copyout, it reads an output buffer whose start is frozen (C). */
static size_t http_wiring_peek(struct evbuffer *buf, char *out, size_t len)
{
    struct evbuffer_iovec extents[4];
    int n = evbuffer_peek(buf, (ev_ssize_t)len, NULL, extents, 4);
    size_t copied = 0;
    for (int i = 0; i < n && i < 4 && copied < len; i++) {
        size_t take = extents[i].iov_len < len - copied ? extents[i].iov_len : len - copied;
        memcpy(out + copied, extents[i].iov_base, take);
        copied += take;
    }
    return copied;
}

/* The status of the answer that the len bytes at text begin with ("HTTP/1.x NNN"), or 0. */
static int http_wiring_status(const char *text, size_t len)
{
    if (len < 12 || strncmp(text, "HTTP/1.", 7) != 0 || text[8] != ' ')
        return 0;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (text[i] < '0' || text[i] > '9')
            return 0;
        status = status * 10 + (text[i] - '0');
    }
    return status;
}

/* Notices an answer that the owner did not write: evhttp's own error page (C). */
static void http_wiring_output_cb(struct evbuffer *output, const struct evbuffer_cb_info *info,
                                  void *arg)
{
    struct http_wiring_conn *conn = arg;
    if (info->n_added == 0 || info->orig_size != 0 || conn->replying || conn->error_status)
        return;
    char line[12];
    size_t len = http_wiring_peek(output, line, sizeof line);
    int status = http_wiring_status(line, len);
    if (status < 400)
        return; /* not an answer, or 100 Continue */
    conn->error_status = status;
    http_wiring_work_push(conn->wiring, conn);
}

/* evhttp's close callback (B): the socket is still open. */
static void http_wiring_closed_cb(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct http_wiring_conn *conn = arg;
    struct http_wiring *wiring = conn->wiring;
    if (conn->linger && !wiring->stopping)
        http_wiring_linger(wiring, conn->fd);
    wiring->hooks.closed(conn, wiring->opaque);
    http_wiring_conn_free(wiring, conn);
}

/* evhttp's bufferevent factory: called for each accepted connection just before evhttp builds its
 * evhttp_connection around the bufferevent (A). */
static struct bufferevent *http_wiring_new_bufferevent(struct event_base *base, void *arg)
{
    struct http_wiring *wiring = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    if (!bev)
        return NULL; /* evhttp makes its own, and serves that connection without the wiring */
    struct http_wiring_conn *conn = mem_calloc(1, sizeof *conn);
    conn->wiring = wiring;
    conn->bev = bev;
    conn->fd = -1;
    bufferevent_incref(bev);
    conn->input_cb = evbuffer_add_cb(bufferevent_get_input(bev), http_wiring_input_cb, conn);
    conn->output_cb = evbuffer_add_cb(bufferevent_get_output(bev), http_wiring_output_cb, conn);
    conn->next = wiring->conns;
    if (wiring->conns)
        wiring->conns->prev = conn;
    wiring->conns = conn;
    http_wiring_work_push(wiring, conn);
    return bev;
}

/* --- adoption and error pages -------------------------------------------------------------------
 */

/* Notes that an adoption check failed: kept for the self-check, logged once otherwise. */
static void http_wiring_mismatch(struct http_wiring *wiring, const char *why)
{
    if (wiring->why[0])
        return;
    snprintf(wiring->why, sizeof wiring->why, "%s", why);
    if (!wiring->quiet)
        log_error("http: libevent %s: evhttp's connection wiring is not what tributary assumes "
                  "(%s); connections go on without it: uncounted, with HTML error pages",
                  event_get_version(), why);
}

/* Finds the evhttp_connection of a connection that evhttp has set up (A), sets its close
 * callback and tells the owner. Returns 1, or 0 when conn is gone (given up by evhttp, failing
 * the check, or refused by the owner). */
static int http_wiring_adopt(struct http_wiring *wiring, struct http_wiring_conn *conn)
{
    bufferevent_event_cb eventcb = NULL;
    void *cbarg = NULL;
    bufferevent_getcb(conn->bev, NULL, NULL, &eventcb, &cbarg);
    if (!eventcb || !cbarg) {
        http_wiring_conn_free(wiring, conn); /* evhttp gave up on it */
        return 0;
    }
    struct evhttp_connection *evcon = cbarg;
    const char *why = NULL;
    if (evhttp_connection_get_bufferevent(evcon) != conn->bev)
        why = "the callback argument of an accepted connection's bufferevent is not an "
              "evhttp_connection with that bufferevent";
    else if (evhttp_connection_get_server(evcon) != wiring->http ||
             evhttp_connection_get_base(evcon) != wiring->base)
        why = "the evhttp_connection behind an accepted connection's bufferevent belongs to "
              "another evhttp or event_base";
    else if (bufferevent_getfd(conn->bev) < 0)
        why = "an accepted connection's bufferevent has no socket when the listener's callback "
              "has returned";
    if (why) {
        http_wiring_mismatch(wiring, why);
        http_wiring_conn_free(wiring, conn);
        return 0;
    }
    conn->evcon = evcon;
    conn->fd = bufferevent_getfd(conn->bev);
    conn->adopted = 1;
    evhttp_connection_set_closecb(evcon, http_wiring_closed_cb, conn);
    size_t old_cap = wiring->conn_by_fd_cap;
    mem_grow((void **)&wiring->conn_by_fd, &wiring->conn_by_fd_cap, (size_t)conn->fd + 1,
             sizeof *wiring->conn_by_fd);
    for (size_t i = old_cap; i < wiring->conn_by_fd_cap; i++)
        wiring->conn_by_fd[i] = NULL;
    wiring->conn_by_fd[conn->fd] = conn;
    bufferevent_decref(conn->bev); /* evhttp holds its own reference */
    return wiring->hooks.adopted(conn, wiring->opaque);
}

/* Copies the status line that output starts with into line; returns 0 when output does not start
 * with one (part of the page is on its way). */
static int http_wiring_status_line(struct evbuffer *output, char *line, size_t linesz)
{
    struct evbuffer_ptr eol = evbuffer_search_eol(output, NULL, NULL, EVBUFFER_EOL_CRLF_STRICT);
    if (eol.pos < 12 || (size_t)eol.pos >= linesz ||
        http_wiring_peek(output, line, (size_t)eol.pos) != (size_t)eol.pos)
        return 0;
    line[eol.pos] = '\0';
    return strncmp(line, "HTTP/1.", 7) == 0;
}

/* Runs before the loop next polls: adopts new connections, hands error pages to the owner. */
static void http_wiring_work_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http_wiring *wiring = arg;
    struct http_wiring_conn *conn;
    while ((conn = wiring->work_head) != NULL) {
        http_wiring_work_remove(wiring, conn);
        if (!conn->adopted && !http_wiring_adopt(wiring, conn))
            continue;
        if (!conn->error_status)
            continue;
        int status = conn->error_status;
        conn->error_status = 0;
        conn->linger = 1; /* evhttp closes after its error pages */
        char line[HTTP_WIRING_MAX_STATUS_LINE];
        if (http_wiring_status_line(bufferevent_get_output(conn->bev), line, sizeof line))
            wiring->hooks.error_page(conn, status, wiring->opaque);
    }
}

/* --- public -------------------------------------------------------------------------------------
 */

struct http_wiring *http_wiring_new(struct event_base *base, int max_lingering,
                                    const struct http_wiring_hooks *hooks, void *opaque, char *err,
                                    size_t errsz)
{
    struct http_wiring *wiring = mem_calloc(1, sizeof *wiring);
    wiring->base = base;
    wiring->hooks = *hooks;
    wiring->opaque = opaque;
    wiring->max_lingering = max_lingering;
    wiring->http = evhttp_new(base);
    wiring->work_ev = event_new(base, -1, 0, http_wiring_work_cb, wiring);
    if (!wiring->http || !wiring->work_ev) {
        tb_fail(err, errsz, TB_NOMEM, "HTTP server: libevent could not make an evhttp");
        goto fail;
    }
    evhttp_set_bevcb(wiring->http, http_wiring_new_bufferevent, wiring);
    return wiring;
fail:
    http_wiring_free(wiring);
    return NULL;
}

struct evhttp *http_wiring_evhttp(const struct http_wiring *wiring)
{
    return wiring->http;
}

void http_wiring_free(struct http_wiring *wiring)
{
    if (!wiring)
        return;
    wiring->stopping = 1;
    for (struct http_linger *linger = wiring->lingers, *next; linger; linger = next) {
        next = linger->next;
        http_wiring_linger_end(linger);
    }
    if (wiring->http)
        evhttp_free(wiring->http); /* the listener, and every connection through the closed cb */
    while (wiring->conns) {
        struct http_wiring_conn *conn = wiring->conns;
        if (conn->adopted) {
            /* evhttp freed it without its close callback: a libevent wired otherwise (B), which
             * the self-check reports. Its bufferevent went with it. */
            wiring->hooks.closed(conn, wiring->opaque);
            http_wiring_conn_forget(wiring, conn);
        } else {
            http_wiring_conn_free(wiring, conn); /* accepted, never adopted */
        }
    }
    if (wiring->work_ev)
        event_free(wiring->work_ev);
    free(wiring->conn_by_fd);
    free(wiring);
}

struct http_wiring_conn *http_wiring_conn_of(const struct http_wiring *wiring,
                                             struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0 || (size_t)fd >= wiring->conn_by_fd_cap)
        return NULL;
    struct http_wiring_conn *conn = wiring->conn_by_fd[fd];
    return conn && conn->evcon == evcon ? conn : NULL;
}

void http_wiring_conn_set_data(struct http_wiring_conn *conn, void *data)
{
    conn->data = data;
}

void *http_wiring_conn_data(const struct http_wiring_conn *conn)
{
    return conn->data;
}

struct evhttp_connection *http_wiring_conn_evcon(const struct http_wiring_conn *conn)
{
    return conn->evcon;
}

void http_wiring_send_reply(struct http_wiring_conn *conn, struct evhttp_request *req, int status)
{
    if (conn)
        conn->replying = 1;
    evhttp_send_reply(req, status, NULL, NULL);
    if (conn)
        conn->replying = 0;
}

void http_wiring_conn_replace_page(struct http_wiring_conn *conn, const char *content_type,
                                   const void *body, size_t len)
{
    struct evbuffer *output = bufferevent_get_output(conn->bev);
    char line[HTTP_WIRING_MAX_STATUS_LINE];
    if (!http_wiring_status_line(output, line, sizeof line))
        return;
    /* Unfrozen only to take the page out, as evhttp_error_cb does (C). */
    evbuffer_unfreeze(output, 1);
    int drained = evbuffer_drain(output, evbuffer_get_length(output));
    evbuffer_freeze(output, 1);
    if (drained != 0)
        return;
    conn->replying = 1;
    evbuffer_add_printf(
        output, "%s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", line,
        content_type, len);
    evbuffer_add(output, body, len);
    conn->replying = 0;
}

void http_wiring_conn_refuse(struct http_wiring_conn *conn, const void *answer, size_t len)
{
    /* Nothing else has been written to the socket, so it goes out before evhttp shuts it. */
    ssize_t sent = send(conn->fd, answer, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)sent;
    conn->linger = 1;
    evhttp_connection_free(conn->evcon); /* runs http_wiring_closed_cb, which frees conn */
}

/* --- the self-check -----------------------------------------------------------------------------
 */

#define HTTP_WIRING_PROBE_REQUEST  "GET /self-check HTTP/1.1\r\nHost: localhost\r\n\r\n"
#define HTTP_WIRING_PROBE_ANSWER   "answered by the self-check's handler"
#define HTTP_WIRING_PROBE_GARBAGE  "GARBAGE\r\n\r\n"
#define HTTP_WIRING_PROBE_REPLACED "replaced by the self-check"

/* One run of http_wiring_self_check: a client socket and a private evhttp on one event_base. */
struct http_wiring_probe {
    struct event_base *base;
    struct http_wiring *wiring;
    int client_fd;
    struct sockaddr_storage client_addr; /* the client's own address: the server's peer */
    socklen_t client_addr_len;
    struct event *client_ev;
    struct evbuffer *received;     /* by the client, not yet checked */
    struct http_wiring_conn *conn; /* adopted, until closed */
    int adoptions, inputs, requests, error_pages, closes;
    int answered;  /* the client has read the handler's answer and sent garbage */
    int done;      /* the client has read the error page and the end of the stream */
    char why[200]; /* the first thing found amiss; "" when none */
};

static void http_wiring_probe_fail(struct http_wiring_probe *probe, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void http_wiring_probe_fail(struct http_wiring_probe *probe, const char *fmt, ...)
{
    if (!probe->why[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(probe->why, sizeof probe->why, fmt, ap);
        va_end(ap);
    }
    event_base_loopbreak(probe->base);
}

/* 1 when fd's peer is the probe's client. */
static int http_wiring_probe_peer_is_client(const struct http_wiring_probe *probe, int fd)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0)
        return 0;
    return len == probe->client_addr_len && memcmp(&peer, &probe->client_addr, len) == 0;
}

/* 1 when evcon's peer, as evhttp recorded it, is the probe's client. */
static int http_wiring_probe_evcon_is_client(const struct http_wiring_probe *probe,
                                             struct evhttp_connection *evcon)
{
    char *address = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evcon, &address, &port);
    char want[INET6_ADDRSTRLEN];
    const struct sockaddr *sa = (const struct sockaddr *)&probe->client_addr;
    const void *host = sa->sa_family == AF_INET6
                           ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                           : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    in_port_t want_port = sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                                    : ((const struct sockaddr_in *)sa)->sin_port;
    if (!inet_ntop(sa->sa_family, host, want, sizeof want))
        return 0;
    return address && strcmp(address, want) == 0 && port == ntohs(want_port);
}

static int http_wiring_probe_adopted(struct http_wiring_conn *conn, void *opaque)
{
    struct http_wiring_probe *probe = opaque;
    probe->adoptions++;
    probe->conn = conn;
    if (evbuffer_get_length(bufferevent_get_input(conn->bev)) != 0)
        http_wiring_probe_fail(probe, "evhttp read from a connection before the listener's "
                                      "callback returned");
    else if (!http_wiring_probe_peer_is_client(probe, conn->fd))
        http_wiring_probe_fail(probe, "the socket of an accepted connection's bufferevent is not "
                                      "connected to the client");
    else if (!http_wiring_probe_evcon_is_client(probe, conn->evcon))
        http_wiring_probe_fail(probe, "the evhttp_connection found through the bufferevent's "
                                      "callback argument has another peer than the client");
    return 1;
}

static void http_wiring_probe_input(struct http_wiring_conn *conn, struct evbuffer *input,
                                    void *opaque)
{
    (void)conn;
    (void)input;
    struct http_wiring_probe *probe = opaque;
    probe->inputs++;
}

static void http_wiring_probe_error_page(struct http_wiring_conn *conn, int status, void *opaque)
{
    struct http_wiring_probe *probe = opaque;
    probe->error_pages++;
    if (status != 400)
        http_wiring_probe_fail(probe,
                               "an answer with status %d was taken for an error page of "
                               "evhttp's, where only a 400 page was due",
                               status);
    http_wiring_conn_replace_page(conn, "text/plain", HTTP_WIRING_PROBE_REPLACED,
                                  strlen(HTTP_WIRING_PROBE_REPLACED));
}

static void http_wiring_probe_closed(struct http_wiring_conn *conn, void *opaque)
{
    struct http_wiring_probe *probe = opaque;
    probe->closes++;
    if (conn != probe->conn)
        return;
    probe->conn = NULL;
    if (!http_wiring_probe_peer_is_client(probe, conn->fd))
        http_wiring_probe_fail(probe, "evhttp's close callback ran after the socket was closed");
    else if (probe->wiring->nlingers != 1)
        http_wiring_probe_fail(probe, "the socket was not kept for a lingering close");
}

/* evhttp's callback for the client's request: answers 404, which must not be taken for an error
 * page of evhttp's. */
static void http_wiring_probe_request(struct evhttp_request *req, void *opaque)
{
    struct http_wiring_probe *probe = opaque;
    probe->requests++;
    struct http_wiring_conn *conn = http_wiring_conn_of(probe->wiring, req);
    if (!probe->conn)
        http_wiring_probe_fail(probe, "%s",
                               probe->wiring->why[0] ? probe->wiring->why
                                                     : "a request arrived on a connection that "
                                                       "was never adopted");
    else if (evhttp_request_get_connection(req) != probe->conn->evcon || conn != probe->conn)
        http_wiring_probe_fail(probe, "requests arrive on another evhttp_connection than the "
                                      "callback argument of the connection's bufferevent");
    else if (probe->inputs == 0)
        http_wiring_probe_fail(probe, "the input buffer's callback did not see the request");
    evbuffer_add(evhttp_request_get_output_buffer(req), HTTP_WIRING_PROBE_ANSWER,
                 strlen(HTTP_WIRING_PROBE_ANSWER));
    http_wiring_send_reply(conn, req, 404);
}

/* Checks the handler's answer, all of which is in probe->received, then sends the garbage. */
static void http_wiring_probe_check_answer(struct http_wiring_probe *probe)
{
    struct evbuffer_ptr end = evbuffer_search(probe->received, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        return;
    size_t head_len = (size_t)end.pos + 4;
    size_t body_len = strlen(HTTP_WIRING_PROBE_ANSWER);
    if (evbuffer_get_length(probe->received) < head_len + body_len)
        return;
    const char *text = (const char *)evbuffer_pullup(probe->received, -1);
    if (!text) {
        http_wiring_probe_fail(probe, "no memory for the self-check's answer");
        return;
    }
    if (http_wiring_status(text, head_len) != 404 ||
        memcmp(text + head_len, HTTP_WIRING_PROBE_ANSWER, body_len) != 0) {
        http_wiring_probe_fail(probe, "a handler's 404 answer did not reach the client as sent "
                                      "(taken for an error page of evhttp's?)");
        return;
    }
    evbuffer_drain(probe->received, head_len + body_len);
    probe->answered = 1;
    if (send(probe->client_fd, HTTP_WIRING_PROBE_GARBAGE, strlen(HTTP_WIRING_PROBE_GARBAGE),
             MSG_NOSIGNAL) != (ssize_t)strlen(HTTP_WIRING_PROBE_GARBAGE))
        http_wiring_probe_fail(probe, "the client could not send: %s", strerror(errno));
}

/* Checks, at the end of the stream, the replaced error page and that the close callback ran. */
static void http_wiring_probe_check_page(struct http_wiring_probe *probe)
{
    size_t len = evbuffer_get_length(probe->received);
    const char *text = (const char *)evbuffer_pullup(probe->received, -1);
    char want_headers[128];
    snprintf(want_headers, sizeof want_headers,
             "\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
             strlen(HTTP_WIRING_PROBE_REPLACED));
    size_t want_tail = strlen(want_headers) + strlen(HTTP_WIRING_PROBE_REPLACED);
    if (probe->error_pages != 1 || !text || len < want_tail ||
        http_wiring_status(text, len - want_tail) != 400 ||
        memcmp(text + len - want_tail, want_headers, strlen(want_headers)) != 0 ||
        memcmp(text + len - strlen(HTTP_WIRING_PROBE_REPLACED), HTTP_WIRING_PROBE_REPLACED,
               strlen(HTTP_WIRING_PROBE_REPLACED)) != 0)
        http_wiring_probe_fail(probe, "evhttp's 400 page for a malformed request was not seen "
                                      "in the output buffer and replaced before it was sent");
    else if (probe->closes != 1)
        http_wiring_probe_fail(probe, "evhttp's close callback did not run when it closed the "
                                      "connection after an error page");
    probe->done = 1;
    event_base_loopbreak(probe->base);
}

static void http_wiring_probe_client_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct http_wiring_probe *probe = arg;
    for (;;) {
        int n = evbuffer_read(probe->received, fd, -1);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0)
            http_wiring_probe_fail(probe, "the client's connection failed: %s", strerror(errno));
        else if (!probe->answered)
            http_wiring_probe_fail(probe, "the connection closed before the handler's answer");
        else
            http_wiring_probe_check_page(probe);
        return;
    }
    if (!probe->answered)
        http_wiring_probe_check_answer(probe);
}

/* Binds the probe's evhttp to a loopback address and connects the client to it; returns TB_OK
 * or TB_IO with a message. */
static int http_wiring_probe_connect(struct http_wiring_probe *probe, char *err, size_t errsz)
{
    static const char *const loopbacks[] = {"127.0.0.1", "::1"};
    struct evhttp_bound_socket *bound = NULL;
    for (size_t i = 0; i < sizeof loopbacks / sizeof loopbacks[0] && !bound; i++)
        bound = evhttp_bind_socket_with_handle(probe->wiring->http, loopbacks[i], 0);
    if (!bound)
        return tb_fail(err, errsz, TB_IO, "cannot listen on a loopback address: %s",
                       strerror(errno));
    struct sockaddr_storage server = {0}; /* getsockname's write is invisible to the analyzer */
    socklen_t server_len = sizeof server;
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&server, &server_len) !=
        0)
        return tb_fail(err, errsz, TB_IO, "getsockname: %s", strerror(errno));
    probe->client_fd = socket(server.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe->client_fd < 0)
        return tb_fail(err, errsz, TB_IO, "socket: %s", strerror(errno));
    /* Blocking: on loopback, connect completes in the kernel before anyone accepts. */
    if (connect(probe->client_fd, (struct sockaddr *)&server, server_len) != 0)
        return tb_fail(err, errsz, TB_IO, "connect: %s", strerror(errno));
    probe->client_addr_len = sizeof probe->client_addr;
    if (getsockname(probe->client_fd, (struct sockaddr *)&probe->client_addr,
                    &probe->client_addr_len) != 0 ||
        evutil_make_socket_nonblocking(probe->client_fd) != 0)
        return tb_fail(err, errsz, TB_IO, "client socket: %s", strerror(errno));
    if (send(probe->client_fd, HTTP_WIRING_PROBE_REQUEST, strlen(HTTP_WIRING_PROBE_REQUEST),
             MSG_NOSIGNAL) != (ssize_t)strlen(HTTP_WIRING_PROBE_REQUEST))
        return tb_fail(err, errsz, TB_IO, "send: %s", strerror(errno));
    return TB_OK;
}

int http_wiring_self_check(char *err, size_t errsz)
{
    static const struct http_wiring_hooks hooks = {
        .adopted = http_wiring_probe_adopted,
        .input = http_wiring_probe_input,
        .error_page = http_wiring_probe_error_page,
        .closed = http_wiring_probe_closed,
    };
    struct http_wiring_probe probe = {.client_fd = -1};
    char why[160];
    int rc = TB_OK;
    probe.base = event_base_new();
    probe.received = evbuffer_new();
    if (!probe.base || !probe.received) {
        rc = tb_fail(err, errsz, TB_NOMEM, "cannot run the libevent self-check: no event_base");
        goto done;
    }
    probe.wiring = http_wiring_new(probe.base, 1, &hooks, &probe, err, errsz);
    if (!probe.wiring) {
        rc = TB_NOMEM;
        goto done;
    }
    probe.wiring->quiet = 1;
    evhttp_set_gencb(probe.wiring->http, http_wiring_probe_request, &probe);
    if (http_wiring_probe_connect(&probe, why, sizeof why) != TB_OK) {
        rc = tb_fail(err, errsz, TB_IO, "cannot run the libevent self-check: %s", why);
        goto done;
    }
    probe.client_ev = event_new(probe.base, probe.client_fd, EV_READ | EV_PERSIST,
                                http_wiring_probe_client_cb, &probe);
    struct timeval timeout = http_wiring_timeval(HTTP_WIRING_PROBE_TIMEOUT_MS);
    if (!probe.client_ev || event_add(probe.client_ev, NULL) != 0 ||
        event_base_loopexit(probe.base, &timeout) != 0) {
        rc = tb_fail(err, errsz, TB_NOMEM, "cannot run the libevent self-check: no events");
        goto done;
    }
    if (event_base_dispatch(probe.base) < 0)
        http_wiring_probe_fail(&probe, "the event loop failed");
    if (!probe.why[0] && !probe.done)
        http_wiring_probe_fail(&probe,
                               "no end to a loopback exchange within %d ms: %d adopted, %d "
                               "requests, %d error pages, %d closed",
                               HTTP_WIRING_PROBE_TIMEOUT_MS, probe.adoptions, probe.requests,
                               probe.error_pages, probe.closes);
    if (probe.why[0])
        rc = tb_fail(err, errsz, TB_IO,
                     "libevent %s: evhttp's connection wiring is not what tributary assumes (%s)",
                     event_get_version(), probe.why);
done:
    if (probe.client_ev)
        event_free(probe.client_ev);
    if (probe.client_fd >= 0)
        close(probe.client_fd);
    http_wiring_free(probe.wiring);
    if (probe.received)
        evbuffer_free(probe.received);
    if (probe.base)
        event_base_free(probe.base);
    return rc;
}
