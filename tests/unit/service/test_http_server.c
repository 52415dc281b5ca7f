/* Unit tests for service/http_server over real sockets on 127.0.0.1 (port 0), with a small
 * blocking HTTP/1.1 client: routing, 404/405, bodies, 413, bearer tokens, timeouts, the
 * connection cap, keep-alive, the observer, concurrency, prompt destroy, option checks, and the
 * start-up self-check of libevent's wiring, made to fail by standing in for two libevent calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/http/http_server.h"
#include "service/http/http_wiring.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TOKEN        "s3cret-token"
#define MAX_BODY     1024
#define IO_TIMEOUT_S 10    /* no socket operation of the client waits longer */
#define WAIT_MS      10000 /* the longest anything expected may take */

/* --- a libevent wired otherwise -----------------------------------------------------------------
 *
 * These two definitions stand in for libevent's in the whole test program (the linker resolves a
 * symbol to the program's own definition before a shared library's) and pass through to
 * libevent's, found with dlsym(RTLD_NEXT), unless a case sets wiring_fault. */

enum wiring_fault {
    WIRING_AS_IS,
    WIRING_FOREIGN_CBARG,     /* a bufferevent's callback argument is not its evhttp_connection */
    WIRING_NO_CLOSE_CALLBACK, /* evhttp frees connections without calling their close callback */
};
static atomic_int wiring_fault;

/* What the foreign callback argument points to: zeroes, as no evhttp_connection would hold. */
static _Alignas(64) unsigned char foreign_cbarg[4096];

void bufferevent_getcb(struct bufferevent *bufev, bufferevent_data_cb *readcb_ptr,
                       bufferevent_data_cb *writecb_ptr, bufferevent_event_cb *eventcb_ptr,
                       void **cbarg_ptr)
{
    void (*real)(struct bufferevent *, bufferevent_data_cb *, bufferevent_data_cb *,
                 bufferevent_event_cb *, void **);
    *(void **)&real = dlsym(RTLD_NEXT, "bufferevent_getcb");
    real(bufev, readcb_ptr, writecb_ptr, eventcb_ptr, cbarg_ptr);
    if (atomic_load(&wiring_fault) == WIRING_FOREIGN_CBARG && cbarg_ptr && *cbarg_ptr)
        *cbarg_ptr = foreign_cbarg;
}

void evhttp_connection_set_closecb(struct evhttp_connection *evcon,
                                   void (*cb)(struct evhttp_connection *, void *), void *cbarg)
{
    if (atomic_load(&wiring_fault) == WIRING_NO_CLOSE_CALLBACK)
        return;
    void (*real)(struct evhttp_connection *, void (*)(struct evhttp_connection *, void *), void *);
    *(void **)&real = dlsym(RTLD_NEXT, "evhttp_connection_set_closecb");
    real(evcon, cb, cbarg);
}

/* --- a tiny blocking HTTP client ----------------------------------------------------------------
 */

struct reply {
    int status;
    char head[8192];     /* status line and headers, NUL-terminated */
    unsigned char *body; /* body_len bytes and a NUL */
    size_t body_len;
};

/* Connects to 127.0.0.1:port; returns the socket or -1 with a message in why. */
static int client_connect(int port, char *why, size_t whysz)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whysz, "socket: %s", strerror(errno));
        return -1;
    }
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        snprintf(why, whysz, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int client_send(int fd, const void *data, size_t len, char *why, size_t whysz)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, whysz, "send: %s", n < 0 ? strerror(errno) : "nothing sent");
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends "METHOD PATH HTTP/1.1", Host, the extra header lines (each ending in \r\n), and, when body
 * is not NULL, Content-Length and the body. */
static int client_send_request(int fd, const char *method, const char *path, const char *headers,
                               const void *body, size_t len, char *why, size_t whysz)
{
    if (!headers)
        headers = "";
    size_t size = strlen(method) + strlen(path) + strlen(headers) + 128;
    char *head = mem_alloc(size);
    int n = snprintf(head, size, "%s %s HTTP/1.1\r\nHost: test\r\n%s", method, path, headers);
    if (body)
        n += snprintf(head + n, size - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(head + n, size - (size_t)n, "\r\n");
    int rc = client_send(fd, head, (size_t)n, why, whysz);
    free(head);
    if (rc != 0)
        return -1;
    return body && len > 0 ? client_send(fd, body, len, why, whysz) : 0;
}

/* The value of header name in r (trimmed) copied into out, or NULL when absent. */
static const char *reply_header(const struct reply *r, const char *name, char *out, size_t outsz)
{
    size_t name_len = strlen(name);
    const char *line = strstr(r->head, "\r\n");
    while (line && line[2] != '\0') {
        line += 2;
        const char *end = strstr(line, "\r\n");
        if (!end)
            break;
        if ((size_t)(end - line) > name_len && line[name_len] == ':' &&
            strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1;
            while (*v == ' ')
                v++;
            size_t len = (size_t)(end - v);
            if (len >= outsz)
                len = outsz - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
        line = end;
    }
    return NULL;
}

/* Reads one reply (its body too unless it answers a HEAD request). Returns 0, or -1 with a
 * message in why (the connection closed or failed before a whole reply). */
static int client_read_reply(int fd, int head_request, struct reply *r, char *why, size_t whysz)
{
    memset(r, 0, sizeof *r);
    size_t len = 0;
    while (len < 4 || memcmp(r->head + len - 4, "\r\n\r\n", 4) != 0) {
        if (len + 1 >= sizeof r->head) {
            snprintf(why, whysz, "headers longer than %zu bytes", sizeof r->head);
            return -1;
        }
        ssize_t n = recv(fd, r->head + len, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, whysz, "connection %s after %zu bytes of a reply",
                     n == 0 ? "closed" : strerror(errno), len);
            return -1;
        }
        len++;
    }
    r->head[len] = '\0';
    if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1) {
        snprintf(why, whysz, "not an HTTP status line: %.40s", r->head);
        return -1;
    }
    char value[64];
    size_t body_len = 0;
    if (!head_request && reply_header(r, "Content-Length", value, sizeof value))
        body_len = strtoull(value, NULL, 10);
    r->body = malloc(body_len + 1);
    for (size_t got = 0; got < body_len;) {
        ssize_t n = recv(fd, r->body + got, body_len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, whysz, "connection %s after %zu of %zu body bytes",
                     n == 0 ? "closed" : strerror(errno), got, body_len);
            free(r->body);
            r->body = NULL;
            return -1;
        }
        got += (size_t)n;
    }
    r->body[body_len] = '\0';
    r->body_len = body_len;
    return 0;
}

/* 1 when the server closes fd within timeout_ms (EOF or reset), 0 when it stays open, -1 when
 * data arrives instead. */
static int client_closed(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
        return 1;
    return n > 0 ? -1 : 0;
}

/* Main-thread wrappers that fail the test on a client error. */
static int connect_or_fail(int port)
{
    char why[256];
    int fd = client_connect(port, why, sizeof why);
    if (fd < 0)
        fail_msg("%s", why);
    return fd;
}

static void send_or_fail(int fd, const char *method, const char *path, const char *headers,
                         const void *body, size_t len)
{
    char why[256];
    if (client_send_request(fd, method, path, headers, body, len, why, sizeof why) != 0)
        fail_msg("%s %s: %s", method, path, why);
}

/* Sends text as it is (a request written out by hand). */
static void raw_send_or_fail(int fd, const char *text)
{
    char why[256];
    if (client_send(fd, text, strlen(text), why, sizeof why) != 0)
        fail_msg("%s", why);
}

static struct reply *read_or_fail(int fd, int head_request)
{
    struct reply *r = mem_alloc(sizeof *r);
    char why[256];
    if (client_read_reply(fd, head_request, r, why, sizeof why) != 0)
        fail_msg("no reply: %s", why);
    return r;
}

static void reply_free(struct reply *r)
{
    if (r)
        free(r->body);
    free(r);
}

/* One request on a new connection, which is then closed. */
static struct reply *request(int port, const char *method, const char *path, const char *headers,
                             const void *body, size_t len)
{
    int fd = connect_or_fail(port);
    send_or_fail(fd, method, path, headers, body, len);
    struct reply *r = read_or_fail(fd, strcmp(method, "HEAD") == 0);
    close(fd);
    return r;
}

static void assert_text_reply(const struct reply *r, int status, const char *body)
{
    if (r->status != status || r->body_len != strlen(body) || strcmp((char *)r->body, body) != 0)
        fail_msg("want %d '%s', got %d '%s'", status, body, r->status, (char *)r->body);
}

/* Checks that r has status, Content-Type application/json and a body {"error": "..."} whose
 * message contains fragment, parsing it with jansson (an independent JSON parser). */
static void assert_json_error(const struct reply *r, int status, const char *fragment)
{
    char type[128];
    if (r->status != status)
        fail_msg("want status %d, got %d: %s", status, r->status, (char *)r->body);
    if (!reply_header(r, "Content-Type", type, sizeof type) ||
        strcmp(type, "application/json") != 0)
        fail_msg("status %d: Content-Type is not application/json:\n%s", status, r->head);
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)r->body, r->body_len, 0, &jerr);
    if (!doc)
        fail_msg("status %d: the body is not JSON (%s): %s", status, jerr.text, (char *)r->body);
    json_t *error = json_object_get(doc, "error");
    if (!json_is_object(doc) || json_object_size(doc) != 1 || !json_is_string(error))
        fail_msg("status %d: the body is not {\"error\": \"...\"}: %s", status, (char *)r->body);
    if (!strstr(json_string_value(error), fragment))
        fail_msg("status %d: error '%s' does not say '%s'", status, json_string_value(error),
                 fragment);
    json_decref(doc);
}

static void assert_header(const struct reply *r, const char *name, const char *want)
{
    char value[256];
    if (!reply_header(r, name, value, sizeof value))
        fail_msg("no %s header in:\n%s", name, r->head);
    if (strcmp(value, want) != 0)
        fail_msg("%s is '%s', want '%s'", name, value, want);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* --- what the observer sees ----------------------------------------------------------------------
 */

struct seen {
    char route[64];
    char method[8];
    int status;
    double latency_s;
};

struct recorder {
    pthread_mutex_t lock;
    struct seen *items;
    size_t n, cap;
};

static void observe(const char *route, const char *method, int status, double latency_s,
                    void *opaque)
{
    struct recorder *rec = opaque;
    pthread_mutex_lock(&rec->lock);
    mem_grow((void **)&rec->items, &rec->cap, rec->n + 1, sizeof *rec->items);
    struct seen *s = &rec->items[rec->n++];
    snprintf(s->route, sizeof s->route, "%s", route);
    snprintf(s->method, sizeof s->method, "%s", method);
    s->status = status;
    s->latency_s = latency_s;
    pthread_mutex_unlock(&rec->lock);
}

static size_t recorder_count(struct recorder *rec)
{
    pthread_mutex_lock(&rec->lock);
    size_t n = rec->n;
    pthread_mutex_unlock(&rec->lock);
    return n;
}

/* --- handlers ------------------------------------------------------------------------------------
 */

static void respond_text(struct http_server_response *response, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void respond_text(struct http_server_response *response, int status, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    http_server_respond(response, status, "text/plain", text, strlen(text));
}

static void handle_predict(const struct http_server_request *request,
                           struct http_server_response *response, void *opaque)
{
    (void)opaque;
    size_t len;
    http_server_request_body(request, &len);
    const char *query = http_server_request_query(request);
    respond_text(response, 200, "predict model=%s bytes=%zu query=%s",
                 http_server_request_capture(request), len, query ? query : "(none)");
}

static void handle_model(const struct http_server_request *request,
                         struct http_server_response *response, void *opaque)
{
    respond_text(response, 200, "%s %s %s", (const char *)opaque,
                 http_server_request_method(request), http_server_request_capture(request));
}

static void handle_fixed(const struct http_server_request *request,
                         struct http_server_response *response, void *opaque)
{
    (void)request;
    respond_text(response, 200, "%s", (const char *)opaque);
}

static void handle_echo(const struct http_server_request *request,
                        struct http_server_response *response, void *opaque)
{
    (void)opaque;
    size_t len;
    const void *body = http_server_request_body(request, &len);
    if (!body) {
        http_server_respond_error(response, 500, "body is NULL");
        return;
    }
    http_server_respond(response, 200, NULL, body, len);
}

/* Checks http_server_response_header's refusals, then adds one header. */
static void handle_headers(const struct http_server_request *request,
                           struct http_server_response *response, void *opaque)
{
    (void)opaque;
    char err[256] = "";
    if (http_server_response_header(response, "content-length", "5", err, sizeof err) != TB_USAGE ||
        !strstr(err, "set by the HTTP server")) {
        http_server_respond_error(response, 500, "Content-Length was not refused: %s", err);
        return;
    }
    if (http_server_response_header(response, "X-Bad", "a\r\nInjected: 1", err, sizeof err) !=
        TB_USAGE) {
        http_server_respond_error(response, 500, "a value with CR LF was not refused");
        return;
    }
    if (http_server_response_header(response, "Bad Name", "x", err, sizeof err) != TB_USAGE) {
        http_server_respond_error(response, 500, "a name with a space was not refused");
        return;
    }
    const char *agent = http_server_request_header(request, "x-client");
    if (http_server_response_header(response, "Cache-Control", "no-store", err, sizeof err) !=
        TB_OK) {
        http_server_respond_error(response, 500, "Cache-Control refused: %s", err);
        return;
    }
    respond_text(response, 200, "client=%s", agent ? agent : "(none)");
}

static void handle_error_message(const struct http_server_request *request,
                                 struct http_server_response *response, void *opaque)
{
    (void)opaque;
    http_server_respond_error(response, 422, "bad: %s", http_server_request_capture(request));
}

static void handle_no_answer(const struct http_server_request *request,
                             struct http_server_response *response, void *opaque)
{
    (void)request;
    (void)response;
    (void)opaque;
}

static void handle_no_content(const struct http_server_request *request,
                              struct http_server_response *response, void *opaque)
{
    (void)request;
    (void)opaque;
    http_server_respond(response, 204, "text/plain", "dropped", 7);
}

static const struct route_spec {
    const char *method, *pattern;
    int is_protected;
    http_server_handler *handler;
    const char *opaque;
} routes[] = {
    {"POST", "/v1/models/{name}/predict", 0, handle_predict, NULL},
    {"GET", "/v1/models", 0, handle_fixed, "models"},
    {"GET", "/v1/models/{name}", 0, handle_model, "model"},
    {"DELETE", "/v1/models/{name}", 1, handle_model, "deleted"},
    {"GET", "/v1/models/special", 0, handle_fixed, "special"},
    {"POST", "/echo", 0, handle_echo, NULL},
    {"PUT", "/echo", 0, handle_echo, NULL},
    {"GET", "/v1/health", 0, handle_fixed, "ok"},
    {"HEAD", "/v1/health", 0, handle_fixed, "ok"},
    {"GET", "/admin/reload", 1, handle_fixed, "reloaded"},
    {"GET", "/headers", 0, handle_headers, NULL},
    {"GET", "/v1/errors/{message}", 0, handle_error_message, NULL},
    {"GET", "/broken", 0, handle_no_answer, NULL},
    {"GET", "/empty", 0, handle_no_content, NULL},
};

/* --- fixtures ------------------------------------------------------------------------------------
 */

struct fixture {
    struct http_server *server;
    int port;
    struct recorder rec;
};

static int add_routes(struct http_server *server)
{
    char err[512];
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (http_server_route(server, routes[i].method, routes[i].pattern, routes[i].is_protected,
                              routes[i].handler, (void *)routes[i].opaque, err,
                              sizeof err) != TB_OK) {
            print_error("http_server_route: %s\n", err);
            return -1;
        }
    }
    return 0;
}

static int fixture_start(void **state, struct http_server_options options)
{
    struct fixture *f = mem_calloc(1, sizeof *f);
    pthread_mutex_init(&f->rec.lock, NULL);
    options.address = "127.0.0.1:0";
    options.on_request = observe;
    options.opaque = &f->rec;
    char err[512];
    f->server = http_server_new(&options, err, sizeof err);
    if (!f->server || add_routes(f->server) != 0 ||
        http_server_start(f->server, err, sizeof err) != TB_OK) {
        print_error("cannot start the server: %s\n", err);
        http_server_destroy(f->server);
        free(f);
        return -1;
    }
    f->port = http_server_port(f->server);
    *state = f;
    return 0;
}

static int setup_default(void **state)
{
    struct http_server_options options = {.max_body_bytes = MAX_BODY,
                                          .header_timeout_ms = 5000,
                                          .idle_timeout_ms = 5000,
                                          .max_connections = 64,
                                          .bearer_token = TOKEN};
    return fixture_start(state, options);
}

static int setup_short_timeouts(void **state)
{
    struct http_server_options options = {
        .max_body_bytes = MAX_BODY, .header_timeout_ms = 300, .idle_timeout_ms = 1500};
    return fixture_start(state, options);
}

#define CAP 3
static int setup_capped(void **state)
{
    struct http_server_options options = {.max_body_bytes = MAX_BODY, .max_connections = CAP};
    return fixture_start(state, options);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    http_server_destroy(f->server);
    free(f->rec.items);
    pthread_mutex_destroy(&f->rec.lock);
    free(f);
    return 0;
}

static struct fixture *fixture_of(void **state)
{
    return *state;
}

/* --- cases ---------------------------------------------------------------------------------------
 */

static void test_routing_capture(void **state)
{
    int port = fixture_of(state)->port;
    struct reply *r = request(port, "POST", "/v1/models/pump-7/predict", NULL, "{\"x\":1}", 7);
    assert_text_reply(r, 200, "predict model=pump-7 bytes=7 query=(none)");
    char type[64];
    assert_non_null(reply_header(r, "Content-Type", type, sizeof type));
    assert_string_equal(type, "text/plain");
    assert_header(r, "Content-Length", "41");
    reply_free(r);

    r = request(port, "POST", "/v1/models/pump-7/predict?explain=1&k=2", NULL, "", 0);
    assert_text_reply(r, 200, "predict model=pump-7 bytes=0 query=explain=1&k=2");
    reply_free(r);

    r = request(port, "GET", "/v1/models/my%20model%2Fv2", NULL, NULL, 0);
    assert_text_reply(r, 200, "model GET my model/v2");
    reply_free(r);

    /* A pattern without a capture wins over one with. */
    r = request(port, "GET", "/v1/models/special", NULL, NULL, 0);
    assert_text_reply(r, 200, "special");
    reply_free(r);
    r = request(port, "GET", "/v1/models", NULL, NULL, 0);
    assert_text_reply(r, 200, "models");
    reply_free(r);

    r = request(port, "GET", "/v1/models/bad%zzname", NULL, NULL, 0);
    assert_json_error(r, 400, "not valid percent-encoding");
    reply_free(r);
    r = request(port, "GET", "/v1/models/nul%00byte", NULL, NULL, 0);
    assert_json_error(r, 400, "nul%00byte");
    reply_free(r);

    /* JSON errors escape quotes, backslashes, control bytes, and replace bytes that are not
     * UTF-8; jansson, which checks UTF-8, reads the message back. */
    r = request(port, "GET", "/v1/errors/%22q%5C%0A%FF%C3%A9", NULL, NULL, 0);
    assert_json_error(r, 422, "bad: \"q\\\n\xEF\xBF\xBD\xC3\xA9");
    reply_free(r);

    r = request(port, "GET", "/headers", "X-Client: unit-test\r\n", NULL, 0);
    assert_text_reply(r, 200, "client=unit-test");
    assert_header(r, "Cache-Control", "no-store");
    reply_free(r);

    r = request(port, "GET", "/broken", NULL, NULL, 0);
    assert_json_error(r, 500, "gave no answer");
    reply_free(r);

    /* 204 carries no body even when the handler gives one. */
    r = request(port, "GET", "/empty", NULL, NULL, 0);
    assert_int_equal(r->status, 204);
    assert_int_equal(r->body_len, 0);
    reply_free(r);
}

static void test_unknown_path_404(void **state)
{
    int port = fixture_of(state)->port;
    static const char *const paths[] = {
        "/nope",     "/v1/models/x/predict/extra", "/v1/models//predict", "/v1/models/", "/",
        "/V1/models"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct reply *r = request(port, "POST", paths[i], NULL, "", 0);
        char want[128];
        snprintf(want, sizeof want, "no route for %s", paths[i]);
        assert_json_error(r, 404, want);
        reply_free(r);
    }
}

static void test_wrong_method_405(void **state)
{
    int port = fixture_of(state)->port;
    struct reply *r = request(port, "PUT", "/v1/models/x", NULL, "", 0);
    assert_json_error(r, 405, "method PUT is not allowed on /v1/models/x");
    assert_header(r, "Allow", "GET, DELETE");
    reply_free(r);

    r = request(port, "PATCH", "/v1/models", NULL, "", 0);
    assert_json_error(r, 405, "allowed: GET");
    assert_header(r, "Allow", "GET");
    reply_free(r);

    r = request(port, "GET", "/echo", NULL, NULL, 0);
    assert_json_error(r, 405, "not allowed");
    assert_header(r, "Allow", "POST, PUT");
    reply_free(r);

    r = request(port, "GET", "/v1/models/x/predict", NULL, NULL, 0);
    assert_header(r, "Allow", "POST");
    reply_free(r);
}

static void test_body_passed_exactly(void **state)
{
    int port = fixture_of(state)->port;
    unsigned char binary[MAX_BODY];
    for (size_t i = 0; i < sizeof binary; i++)
        binary[i] = (unsigned char)((i * 131 + 7) % 256); /* every byte value, NULs included */
    size_t sizes[] = {1, 256, 1000, MAX_BODY};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        struct reply *r = request(port, "POST", "/echo", NULL, binary, sizes[s]);
        assert_int_equal(r->status, 200);
        assert_header(r, "Content-Type", "application/octet-stream");
        assert_int_equal(r->body_len, sizes[s]);
        assert_memory_equal(r->body, binary, sizes[s]);
        reply_free(r);
    }

    struct reply *r = request(port, "POST", "/echo", NULL, "", 0);
    assert_int_equal(r->status, 200);
    assert_header(r, "Content-Length", "0");
    assert_int_equal(r->body_len, 0);
    reply_free(r);

    /* A chunked body arrives whole. */
    int fd = connect_or_fail(port);
    const char chunked[] = "PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    raw_send_or_fail(fd, chunked);
    r = read_or_fail(fd, 0);
    assert_text_reply(r, 200, "hello, world");
    reply_free(r);
    close(fd);
}

static void test_body_too_large_413(void **state)
{
    struct fixture *f = fixture_of(state);
    char want[64];
    snprintf(want, sizeof want, "the limit is %d bytes", MAX_BODY);
    size_t sizes[] = {MAX_BODY + 1, 4 * MAX_BODY, (size_t)4 << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        /* The whole body is sent before the reply is read: the server must drain what it does
         * not want rather than reset the connection under the reply. */
        unsigned char *big = mem_calloc(sizes[s], 1);
        int fd = connect_or_fail(f->port);
        send_or_fail(fd, "POST", "/echo", NULL, big, sizes[s]);
        struct reply *r = read_or_fail(fd, 0);
        assert_json_error(r, 413, want);
        assert_header(r, "Connection", "close");
        assert_int_equal(client_closed(fd, WAIT_MS), 1);
        reply_free(r);
        close(fd);
        free(big);
    }

    /* A chunked body that grows past the limit. */
    int fd = connect_or_fail(f->port);
    const char head[] = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    raw_send_or_fail(fd, head);
    char chunk[600];
    int n = snprintf(chunk, sizeof chunk, "200\r\n");
    memset(chunk + n, 'a', 512);
    memcpy(chunk + n + 512, "\r\n", 3); /* 512 bytes a chunk, 1536 in all */
    for (int i = 0; i < 3; i++)
        raw_send_or_fail(fd, chunk);
    struct reply *r = read_or_fail(fd, 0);
    assert_json_error(r, 413, want);
    reply_free(r);
    assert_int_equal(client_closed(fd, WAIT_MS), 1);
    close(fd);

    /* The observer sees them as unmatched, with the method. */
    pthread_mutex_lock(&f->rec.lock);
    assert_int_equal(f->rec.n, 4);
    for (size_t i = 0; i < f->rec.n; i++) {
        assert_string_equal(f->rec.items[i].route, "unmatched");
        assert_string_equal(f->rec.items[i].method, "POST");
        assert_int_equal(f->rec.items[i].status, 413);
    }
    pthread_mutex_unlock(&f->rec.lock);

    /* The server still answers. */
    r = request(f->port, "GET", "/v1/health", NULL, NULL, 0);
    assert_text_reply(r, 200, "ok");
    reply_free(r);
}

static void test_bearer_token(void **state)
{
    int port = fixture_of(state)->port;
    struct reply *r = request(port, "GET", "/admin/reload", NULL, NULL, 0);
    assert_json_error(r, 401, "Authorization: Bearer");
    assert_header(r, "WWW-Authenticate", "Bearer realm=\"tributary\"");
    reply_free(r);

    /* Another scheme, or "Bearer" with no token (evhttp trims the trailing space): 401. */
    static const char *const not_bearer[] = {"Authorization: Basic dXNlcjpwYXNz\r\n",
                                             "Authorization: Bearer \r\n",
                                             "Authorization: Bearer" TOKEN "\r\n"};
    for (size_t i = 0; i < sizeof not_bearer / sizeof not_bearer[0]; i++) {
        r = request(port, "GET", "/admin/reload", not_bearer[i], NULL, 0);
        assert_json_error(r, 401, "does not hold a bearer token");
        assert_header(r, "WWW-Authenticate", "Bearer realm=\"tributary\"");
        reply_free(r);
    }

    static const char *const wrong[] = {
        "Authorization: Bearer nope\r\n", "Authorization: Bearer s3cret-toke\r\n",
        "Authorization: Bearer s3cret-token2\r\n", "Authorization: Bearer S3CRET-TOKEN\r\n"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        r = request(port, "GET", "/admin/reload", wrong[i], NULL, 0);
        assert_json_error(r, 403, "not valid");
        reply_free(r);
    }

    static const char *const right[] = {"Authorization: Bearer " TOKEN "\r\n",
                                        "authorization: bearer " TOKEN "\r\n",
                                        "Authorization:   Bearer   " TOKEN "  \r\n"};
    for (size_t i = 0; i < sizeof right / sizeof right[0]; i++) {
        r = request(port, "GET", "/admin/reload", right[i], NULL, 0);
        assert_text_reply(r, 200, "reloaded");
        reply_free(r);
    }

    /* Only protected routes ask: the same path family without protection does not. */
    r = request(port, "GET", "/v1/models/a", NULL, NULL, 0);
    assert_text_reply(r, 200, "model GET a");
    reply_free(r);
    r = request(port, "DELETE", "/v1/models/a", NULL, NULL, 0);
    assert_int_equal(r->status, 401);
    reply_free(r);

    /* Without a token, protected routes are open. */
    struct http_server_options options = {.address = "127.0.0.1:0"};
    char err[256];
    struct http_server *open = http_server_new(&options, err, sizeof err);
    assert_non_null(open);
    assert_int_equal(http_server_route(open, "GET", "/admin/reload", 1, handle_fixed,
                                       (void *)"open", err, sizeof err),
                     TB_OK);
    assert_int_equal(http_server_start(open, err, sizeof err), TB_OK);
    r = request(http_server_port(open), "GET", "/admin/reload", NULL, NULL, 0);
    assert_text_reply(r, 200, "open");
    reply_free(r);
    http_server_destroy(open);
}

static void test_header_timeout_drops_stalled_client(void **state)
{
    struct fixture *f = fixture_of(state);
    /* Half a request line, then nothing. */
    int fd = connect_or_fail(f->port);
    raw_send_or_fail(fd, "GET /v1/hea");
    double start = clock_monotonic_s();
    assert_int_equal(client_closed(fd, WAIT_MS), 1);
    double waited = clock_monotonic_s() - start;
    close(fd);
    if (waited < 0.15)
        fail_msg("dropped after %.3f s, before the 0.3 s header timeout", waited);

    /* A new connection that sends nothing at all. */
    fd = connect_or_fail(f->port);
    start = clock_monotonic_s();
    assert_int_equal(client_closed(fd, WAIT_MS), 1);
    waited = clock_monotonic_s() - start;
    close(fd);
    if (waited < 0.15)
        fail_msg("dropped after %.3f s, before the 0.3 s header timeout", waited);

    /* Pauses shorter than the timeout are fine: it is about silence, not the whole request. */
    fd = connect_or_fail(f->port);
    raw_send_or_fail(fd, "GET /v1/he");
    sleep_ms(150);
    raw_send_or_fail(fd, "alth HTTP/1.1\r\n");
    sleep_ms(150);
    raw_send_or_fail(fd, "Host: t\r\n\r\n");
    struct reply *r = read_or_fail(fd, 0);
    assert_text_reply(r, 200, "ok");
    reply_free(r);
    close(fd);

    assert_int_equal(recorder_count(&f->rec), 1); /* dropped clients are not requests */
}

static void test_idle_timeout_closes_kept_alive_connection(void **state)
{
    int port = fixture_of(state)->port;
    int fd = connect_or_fail(port);
    send_or_fail(fd, "GET", "/v1/health", NULL, NULL, 0);
    struct reply *r = read_or_fail(fd, 0);
    assert_text_reply(r, 200, "ok");
    reply_free(r);
    /* Idle for longer than the header timeout (0.3 s), within the idle one (1.5 s). */
    sleep_ms(700);
    send_or_fail(fd, "GET", "/v1/models/a", NULL, NULL, 0);
    r = read_or_fail(fd, 0);
    assert_text_reply(r, 200, "model GET a");
    reply_free(r);
    double start = clock_monotonic_s();
    assert_int_equal(client_closed(fd, WAIT_MS), 1);
    double waited = clock_monotonic_s() - start;
    close(fd);
    if (waited < 1.0)
        fail_msg("closed after %.3f s of idling, before the 1.5 s idle timeout", waited);
}

static void wait_open_connections(struct http_server *server, size_t want)
{
    struct http_server_stats stats;
    int64_t deadline = clock_monotonic_ms() + WAIT_MS;
    do {
        http_server_stats(server, &stats);
        if (stats.open_connections == want)
            return;
        sleep_ms(10);
    } while (clock_monotonic_ms() < deadline);
    fail_msg("%zu open connections, want %zu", stats.open_connections, want);
}

static void test_max_connections(void **state)
{
    struct fixture *f = fixture_of(state);
    int kept[CAP];
    for (int i = 0; i < CAP; i++) {
        kept[i] = connect_or_fail(f->port);
        send_or_fail(kept[i], "GET", "/v1/health", NULL, NULL, 0);
        struct reply *r = read_or_fail(kept[i], 0);
        assert_text_reply(r, 200, "ok");
        reply_free(r);
    }
    wait_open_connections(f->server, CAP);

    /* One more: answered 503 at once, without sending anything, then closed. */
    int extra = connect_or_fail(f->port);
    struct reply *r = read_or_fail(extra, 0);
    assert_json_error(r, 503, "too many connections");
    assert_header(r, "Connection", "close");
    assert_header(r, "Retry-After", "1");
    reply_free(r);
    assert_int_equal(client_closed(extra, WAIT_MS), 1);
    close(extra);

    /* One more that sends a request: its request is not handled. */
    extra = connect_or_fail(f->port);
    send_or_fail(extra, "POST", "/echo", NULL, "lost", 4);
    r = read_or_fail(extra, 0);
    assert_json_error(r, 503, "limit of 3 open connections");
    reply_free(r);
    assert_int_equal(client_closed(extra, WAIT_MS), 1);
    close(extra);

    struct http_server_stats stats;
    http_server_stats(f->server, &stats);
    assert_int_equal(stats.refused_connections, 2);
    assert_int_equal(stats.open_connections, CAP);

    /* The first ones still work. */
    for (int i = 0; i < CAP; i++) {
        send_or_fail(kept[i], "GET", "/v1/models/k", NULL, NULL, 0);
        r = read_or_fail(kept[i], 0);
        assert_text_reply(r, 200, "model GET k");
        reply_free(r);
    }

    /* A slot that frees is taken again. */
    close(kept[0]);
    wait_open_connections(f->server, CAP - 1);
    kept[0] = connect_or_fail(f->port);
    send_or_fail(kept[0], "GET", "/v1/health", NULL, NULL, 0);
    r = read_or_fail(kept[0], 0);
    assert_text_reply(r, 200, "ok");
    reply_free(r);
    for (int i = 0; i < CAP; i++)
        close(kept[i]);
    wait_open_connections(f->server, 0);
    assert_int_equal(recorder_count(&f->rec), 2 * CAP + 1);
}

static void test_keep_alive(void **state)
{
    struct fixture *f = fixture_of(state);
    int fd = connect_or_fail(f->port);
    send_or_fail(fd, "GET", "/v1/models/a", NULL, NULL, 0);
    struct reply *r = read_or_fail(fd, 0);
    assert_text_reply(r, 200, "model GET a");
    assert_null(reply_header(r, "Connection", (char[16]){0}, 16));
    reply_free(r);
    send_or_fail(fd, "POST", "/echo", NULL, "second", 6);
    r = read_or_fail(fd, 0);
    assert_text_reply(r, 200, "second");
    reply_free(r);

    /* HEAD: headers only, with the length of the GET body; the connection goes on. */
    send_or_fail(fd, "HEAD", "/v1/health", NULL, NULL, 0);
    r = read_or_fail(fd, 1);
    assert_int_equal(r->status, 200);
    assert_header(r, "Content-Length", "2");
    reply_free(r);

    /* Two requests in one write (pipelined) are answered in order. */
    const char two[] = "GET /v1/models/c HTTP/1.1\r\nHost: t\r\n\r\n"
                       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz";
    raw_send_or_fail(fd, two);
    r = read_or_fail(fd, 0);
    assert_text_reply(r, 200, "model GET c");
    reply_free(r);
    r = read_or_fail(fd, 0);
    assert_text_reply(r, 200, "xyz");
    reply_free(r);

    assert_int_equal(client_closed(fd, 100), 0);
    struct http_server_stats stats;
    http_server_stats(f->server, &stats);
    assert_int_equal(stats.open_connections, 1);

    /* "Connection: close" from the client is honoured. */
    send_or_fail(fd, "GET", "/v1/health", "Connection: close\r\n", NULL, 0);
    r = read_or_fail(fd, 0);
    assert_text_reply(r, 200, "ok");
    assert_header(r, "Connection", "close");
    reply_free(r);
    assert_int_equal(client_closed(fd, WAIT_MS), 1);
    close(fd);
}

static void test_malformed_requests(void **state)
{
    struct fixture *f = fixture_of(state);
    static const struct {
        const char *what, *bytes;
        int status;
        const char *fragment;
    } cases[] = {
        {"garbage", "GARBAGE\r\n\r\n", 400, "malformed request"},
        {"unknown method", "BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", 501, "not implemented"},
        {"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", 501,
         "not implemented"},
        {"bad Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n", 400,
         "malformed request"},
        {"header line without a colon", "GET /v1/health HTTP/1.1\r\nHost t\r\n\r\n", 400,
         "malformed request"},
        {"unsupported Expect",
         "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n"
         "Content-Length: 2\r\n\r\nhi",
         417, "100-continue"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = connect_or_fail(f->port);
        raw_send_or_fail(fd, cases[i].bytes);
        struct reply *r = read_or_fail(fd, 0);
        if (r->status != cases[i].status)
            fail_msg("%s: want %d, got %d", cases[i].what, cases[i].status, r->status);
        assert_json_error(r, cases[i].status, cases[i].fragment);
        reply_free(r);
        assert_int_equal(client_closed(fd, WAIT_MS), 1);
        close(fd);
    }

    /* Headers over the limit. */
    size_t big = 40 * 1024;
    char *headers = mem_alloc(big + 64);
    int n = snprintf(headers, big + 64, "X-Big: ");
    memset(headers + n, 'h', big);
    memcpy(headers + n + big, "\r\n", 3);
    int fd = connect_or_fail(f->port);
    send_or_fail(fd, "GET", "/v1/health", headers, NULL, 0);
    struct reply *r = read_or_fail(fd, 0);
    assert_json_error(r, 400, "headers over 32768 bytes");
    reply_free(r);
    close(fd);
    free(headers);

    r = request(f->port, "GET", "/v1/health", NULL, NULL, 0);
    assert_text_reply(r, 200, "ok");
    reply_free(r);
}

/* evhttp's pages on a connection that has had an answer already: libevent keeps the start of the
 * output buffer frozen after its first write, which the JSON rewrite must get past. */
static void test_errors_after_kept_alive_answer(void **state)
{
    struct fixture *f = fixture_of(state);
    char limit[64];
    snprintf(limit, sizeof limit, "the limit is %d bytes", MAX_BODY);
    static const struct {
        const char *what, *bytes;
        int status;
        const char *fragment;
    } cases[] = {
        {"garbage", "GARBAGE\r\n\r\n", 400, "malformed request"},
        {"unknown method", "BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", 501, "not implemented"},
        {"a body over the limit", "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n",
         413, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = connect_or_fail(f->port);
        for (int k = 0; k < 2; k++) {
            send_or_fail(fd, "GET", "/v1/health", NULL, NULL, 0);
            struct reply *r = read_or_fail(fd, 0);
            assert_text_reply(r, 200, "ok");
            reply_free(r);
        }
        raw_send_or_fail(fd, cases[i].bytes);
        struct reply *r = read_or_fail(fd, 0);
        if (r->status != cases[i].status)
            fail_msg("%s: want %d, got %d", cases[i].what, cases[i].status, r->status);
        assert_json_error(r, cases[i].status, cases[i].fragment ? cases[i].fragment : limit);
        assert_header(r, "Connection", "close");
        reply_free(r);
        assert_int_equal(client_closed(fd, WAIT_MS), 1);
        close(fd);
    }
    assert_int_equal(recorder_count(&f->rec), 3 * 2 + 3);
}

static void test_observer_sees_every_request(void **state)
{
    struct fixture *f = fixture_of(state);
    reply_free(request(f->port, "POST", "/v1/models/m1/predict", NULL, "{}", 2));
    reply_free(request(f->port, "GET", "/nope", NULL, NULL, 0));
    reply_free(request(f->port, "PUT", "/v1/models/m1", NULL, "", 0));
    reply_free(request(f->port, "GET", "/admin/reload", NULL, NULL, 0));
    reply_free(request(f->port, "GET", "/admin/reload", "Authorization: Bearer x\r\n", NULL, 0));
    reply_free(
        request(f->port, "GET", "/admin/reload", "Authorization: Bearer " TOKEN "\r\n", NULL, 0));
    reply_free(request(f->port, "GET", "/v1/models/special", NULL, NULL, 0));
    char big[MAX_BODY + 1] = {0};
    reply_free(request(f->port, "PUT", "/echo", NULL, big, sizeof big));
    int fd = connect_or_fail(f->port);
    raw_send_or_fail(fd, "NONSENSE\r\n\r\n");
    reply_free(read_or_fail(fd, 0));
    close(fd);

    static const struct seen want[] = {
        {"/v1/models/{name}/predict", "POST", 200, 0},
        {"unmatched", "GET", 404, 0},
        {"/v1/models/{name}", "PUT", 405, 0},
        {"/admin/reload", "GET", 401, 0},
        {"/admin/reload", "GET", 403, 0},
        {"/admin/reload", "GET", 200, 0},
        {"/v1/models/special", "GET", 200, 0},
        {"unmatched", "PUT", 413, 0},
        {"unmatched", "-", 400, 0},
    };
    /* The observer runs before the answer is written, so all of them are in. */
    pthread_mutex_lock(&f->rec.lock);
    size_t n = f->rec.n;
    pthread_mutex_unlock(&f->rec.lock);
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        const struct seen *got = &f->rec.items[i];
        if (strcmp(got->route, want[i].route) != 0 || strcmp(got->method, want[i].method) != 0 ||
            got->status != want[i].status)
            fail_msg("request %zu: saw (%s, %s, %d), want (%s, %s, %d)", i, got->route, got->method,
                     got->status, want[i].route, want[i].method, want[i].status);
        if (!(got->latency_s >= 0 && got->latency_s < 5))
            fail_msg("request %zu: latency %g s", i, got->latency_s);
    }
}

#define THREADS             8
#define REQUESTS_PER_THREAD 200
#define REQUESTS_PER_CONN   25

struct worker {
    pthread_t thread;
    int port, index;
    int answered;
    char why[256];
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    int fd = -1;
    for (int i = 0; i < REQUESTS_PER_THREAD; i++) {
        if (i % REQUESTS_PER_CONN == 0) {
            if (fd >= 0)
                close(fd);
            fd = client_connect(w->port, w->why, sizeof w->why);
            if (fd < 0)
                return NULL;
        }
        char body[64];
        int len = snprintf(body, sizeof body, "thread %d request %d", w->index, i);
        struct reply r;
        if (client_send_request(fd, "POST", "/echo", NULL, body, (size_t)len, w->why,
                                sizeof w->why) != 0 ||
            client_read_reply(fd, 0, &r, w->why, sizeof w->why) != 0)
            break;
        int ok =
            r.status == 200 && r.body_len == (size_t)len && memcmp(r.body, body, (size_t)len) == 0;
        if (!ok)
            snprintf(w->why, sizeof w->why, "request %d: got %d '%s'", i, r.status, (char *)r.body);
        free(r.body);
        if (!ok)
            break;
        w->answered++;
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    struct fixture *f = fixture_of(state);
    struct worker workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (struct worker){.port = f->port, .index = t};
        assert_int_equal(pthread_create(&workers[t].thread, NULL, worker_run, &workers[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(workers[t].thread, NULL);
    for (int t = 0; t < THREADS; t++)
        if (workers[t].answered != REQUESTS_PER_THREAD)
            fail_msg("thread %d: %d of %d answered: %s", t, workers[t].answered,
                     REQUESTS_PER_THREAD, workers[t].why);
    assert_int_equal(recorder_count(&f->rec), THREADS * REQUESTS_PER_THREAD);
    pthread_mutex_lock(&f->rec.lock);
    for (size_t i = 0; i < f->rec.n; i++) {
        assert_string_equal(f->rec.items[i].route, "/echo");
        assert_int_equal(f->rec.items[i].status, 200);
    }
    pthread_mutex_unlock(&f->rec.lock);
}

static void test_destroy_with_clients_connected(void **state)
{
    struct fixture *f = fixture_of(state);
    int fds[6];
    /* Kept alive after a request. */
    fds[0] = connect_or_fail(f->port);
    send_or_fail(fds[0], "GET", "/v1/health", NULL, NULL, 0);
    reply_free(read_or_fail(fds[0], 0));
    /* In the middle of a body. */
    fds[1] = connect_or_fail(f->port);
    raw_send_or_fail(fds[1], "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab");
    /* In the middle of a request line. */
    fds[2] = connect_or_fail(f->port);
    raw_send_or_fail(fds[2], "GET /v1/mo");
    /* Connected, silent. */
    fds[3] = connect_or_fail(f->port);
    /* Answered 413 while still sending: its socket lingers. */
    fds[4] = connect_or_fail(f->port);
    raw_send_or_fail(fds[4],
                     "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9999999\r\n\r\nabc");
    struct reply *r = read_or_fail(fds[4], 0);
    assert_int_equal(r->status, 413);
    reply_free(r);
    /* Pipelined requests, the second one waiting. */
    fds[5] = connect_or_fail(f->port);
    raw_send_or_fail(fds[5], "GET /v1/health HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/he");
    reply_free(read_or_fail(fds[5], 0));
    wait_open_connections(f->server, 5);

    double start = clock_monotonic_s();
    http_server_destroy(f->server);
    f->server = NULL;
    double took = clock_monotonic_s() - start;
    if (took > 2.0)
        fail_msg("destroy took %.3f s", took);
    for (int i = 0; i < 6; i++) {
        if (client_closed(fds[i], WAIT_MS) != 1)
            fail_msg("connection %d is still open after destroy", i);
        close(fds[i]);
    }
    /* Nothing listens any more. */
    char why[256];
    int fd = client_connect(f->port, why, sizeof why);
    assert_int_equal(fd, -1);
}

static void test_new_refuses_bad_options(void **state)
{
    (void)state;
    static const struct {
        const char *address, *message;
    } bad[] = {
        {NULL, "no address to listen on"},
        {"", "no address to listen on"},
        {"127.0.0.1", "address '127.0.0.1' is not host:port"},
        {"127.0.0.1:", "port must be a number from 0 to 65535"},
        {"127.0.0.1:http", "port must be a number from 0 to 65535"},
        {"127.0.0.1:65536", "port must be a number from 0 to 65535"},
        {"127.0.0.1:-1", "port must be a number from 0 to 65535"},
        {"127.0.0.1:123456", "port must be a number from 0 to 65535"},
        {":8080", "has no host"},
        {"::1:8080", "an IPv6 host goes in brackets"},
        {"[::1:8080", "an IPv6 host goes in brackets"},
        {"local host:80", "the host is not a valid name"},
    };
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct http_server_options options = {.address = bad[i].address};
        snprintf(err, sizeof err, "(untouched)");
        struct http_server *server = http_server_new(&options, err, sizeof err);
        if (server) {
            http_server_destroy(server);
            fail_msg("address '%s' was accepted", bad[i].address ? bad[i].address : "(NULL)");
        }
        if (!strstr(err, bad[i].message))
            fail_msg("address '%s': message '%s' does not say '%s'",
                     bad[i].address ? bad[i].address : "(NULL)", err, bad[i].message);
    }

    struct http_server_options negative = {.address = "127.0.0.1:0", .max_connections = -1};
    assert_null(http_server_new(&negative, err, sizeof err));
    assert_non_null(strstr(err, "must not be negative"));
    assert_null(http_server_new(NULL, err, sizeof err));

    /* A port already in use. */
    struct http_server_options first = {.address = "127.0.0.1:0"};
    struct http_server *a = http_server_new(&first, err, sizeof err);
    assert_non_null(a);
    char address[64], want[128];
    snprintf(address, sizeof address, "127.0.0.1:%d", http_server_port(a));
    snprintf(want, sizeof want, "cannot listen on %s: %s", address, strerror(EADDRINUSE));
    struct http_server_options second = {.address = address};
    struct http_server *b = http_server_new(&second, err, sizeof err);
    if (b) {
        http_server_destroy(b);
        http_server_destroy(a);
        fail_msg("a second server on %s was accepted", address);
    }
    http_server_destroy(a);
    if (strcmp(err, want) != 0)
        fail_msg("message '%s', want '%s'", err, want);
    /* Once the first is gone, the port is free again. */
    b = http_server_new(&second, err, sizeof err);
    if (!b)
        fail_msg("%s is not free after destroy: %s", address, err);
    http_server_destroy(b);
}

static void test_route_refuses_bad_patterns(void **state)
{
    struct fixture *f = fixture_of(state);
    static const struct {
        const char *method, *pattern, *message;
    } bad[] = {
        {"FETCH", "/x", "unknown method 'FETCH'"},
        {"get", "/x", "unknown method 'get'"},
        {"CONNECT", "/x", "unknown method 'CONNECT'"},
        {"GET", "x", "a pattern starts with '/'"},
        {"GET", "", "a pattern starts with '/'"},
        {"GET", "/a/{}", "{} needs a name"},
        {"GET", "/a/{x}/{y}", "only one {name} segment"},
        {"GET", "/a/b{x}", "{name} must be a whole path segment"},
        {"GET", "/a/{x}b", "{name} must be a whole path segment"},
        {"GET", "/a/{x", "{name} must be a whole path segment"},
        {"GET", "/a/{x.y}", "a {name} holds only letters"},
        {"GET", "/a b", "character 0x20 is not allowed"},
        {"GET", "/a?b", "character 0x3f is not allowed"},
        {"GET", "/a}", "character 0x7d is not allowed"},
        {"POST", "/v1/models/{other}/predict",
         "already registered as POST /v1/models/{name}/predict"},
        {"GET", "/v1/models", "already registered"},
    };
    char err[512];
    struct http_server_options options = {.address = "127.0.0.1:0"};
    struct http_server *server = http_server_new(&options, err, sizeof err);
    assert_non_null(server);
    assert_int_equal(add_routes(server), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(err, sizeof err, "(untouched)");
        int rc = http_server_route(server, bad[i].method, bad[i].pattern, 0, handle_echo, NULL, err,
                                   sizeof err);
        if (rc != TB_USAGE || !strstr(err, bad[i].message)) {
            http_server_destroy(server);
            fail_msg("%s %s: rc %d, message '%s', want '%s'", bad[i].method, bad[i].pattern, rc,
                     err, bad[i].message);
        }
    }
    /* Same pattern, another method: fine. */
    assert_int_equal(http_server_route(server, "PATCH", "/v1/models/{id}", 0, handle_echo, NULL,
                                       err, sizeof err),
                     TB_OK);
    http_server_destroy(server);

    /* The fixture's server is started: too late for routes. */
    assert_int_equal(
        http_server_route(f->server, "GET", "/late", 0, handle_echo, NULL, err, sizeof err),
        TB_USAGE);
    assert_non_null(strstr(err, "before http_server_start"));
    assert_int_equal(http_server_start(f->server, err, sizeof err), TB_USAGE);
    assert_non_null(strstr(err, "already started"));
}

/* The number of descriptors the process has open. */
static int open_descriptors(void)
{
    DIR *dir = opendir("/proc/self/fd");
    assert_non_null(dir);
    int n = 0;
    for (struct dirent *entry; (entry = readdir(dir)) != NULL;)
        n += entry->d_name[0] != '.';
    closedir(dir);
    return n;
}

static void test_self_check_passes(void **state)
{
    (void)state;
    char err[512] = "(untouched)";
    int before = open_descriptors();
    double start = clock_monotonic_s();
    int rc = http_wiring_self_check(err, sizeof err);
    double took = clock_monotonic_s() - start;
    if (rc != TB_OK)
        fail_msg("the self-check failed on this libevent: %s", err);
    assert_string_equal(err, "(untouched)");
    if (took > 1.0)
        fail_msg("the self-check took %.3f s", took);
    assert_int_equal(open_descriptors(), before);
}

static void test_self_check_refuses_other_wiring(void **state)
{
    (void)state;
    static const struct {
        enum wiring_fault fault;
        const char *says;
    } faults[] = {
        {WIRING_FOREIGN_CBARG, "the callback argument of an accepted connection's bufferevent is "
                               "not an evhttp_connection with that bufferevent"},
        {WIRING_NO_CLOSE_CALLBACK, "evhttp's close callback did not run"},
    };
    struct http_server_options options = {.address = "127.0.0.1:0"};
    char err[512];
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        snprintf(err, sizeof err, "(untouched)");
        atomic_store(&wiring_fault, faults[i].fault);
        struct http_server *server = http_server_new(&options, err, sizeof err);
        atomic_store(&wiring_fault, WIRING_AS_IS);
        if (server) {
            http_server_destroy(server);
            fail_msg("fault %d: the server started", faults[i].fault);
        }
        if (!strstr(err, "evhttp's connection wiring is not what tributary assumes") ||
            !strstr(err, faults[i].says) || !strstr(err, "; refusing to start the HTTP server"))
            fail_msg("fault %d: message '%s' does not say '%s'", faults[i].fault, err,
                     faults[i].says);
    }
    /* As libevent is, the same options start a server that answers. */
    struct http_server *server = http_server_new(&options, err, sizeof err);
    if (!server)
        fail_msg("%s", err);
    assert_int_equal(
        http_server_route(server, "GET", "/v1/health", 0, handle_fixed, "ok", err, sizeof err),
        TB_OK);
    assert_int_equal(http_server_start(server, err, sizeof err), TB_OK);
    struct reply *r = request(http_server_port(server), "GET", "/v1/health", NULL, NULL, 0);
    assert_text_reply(r, 200, "ok");
    reply_free(r);
    http_server_destroy(server);
}

#define CASE(name, fn, setup)                                                                      \
    {                                                                                              \
        name, fn, setup, teardown, NULL                                                            \
    }

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the client's writes to closed sockets fail, not kill */
    const struct CMUnitTest tests[] = {
        CASE("routing: a captured segment reaches the handler, decoded", test_routing_capture,
             setup_default),
        CASE("routing: an unknown path is 404 with a JSON error", test_unknown_path_404,
             setup_default),
        CASE("routing: a known path with another method is 405 with Allow", test_wrong_method_405,
             setup_default),
        CASE("body: passed through exactly, binary, empty and chunked", test_body_passed_exactly,
             setup_default),
        CASE("body: over max_body_bytes is 413 with a JSON error, then a clean close",
             test_body_too_large_413, setup_default),
        CASE("auth: protected routes 401 without a token, 403 with a wrong one, 200 with it",
             test_bearer_token, setup_default),
        CASE("timeouts: a client that stalls mid-request is dropped",
             test_header_timeout_drops_stalled_client, setup_short_timeouts),
        CASE("timeouts: a kept-alive connection idle too long is closed",
             test_idle_timeout_closes_kept_alive_connection, setup_short_timeouts),
        CASE("connections: beyond max_connections 503 and close, the others keep working",
             test_max_connections, setup_capped),
        CASE("keep-alive: several requests on one connection, HEAD and pipelining", test_keep_alive,
             setup_default),
        CASE("malformed requests get JSON errors", test_malformed_requests, setup_default),
        CASE("malformed requests after a kept-alive answer get JSON errors too",
             test_errors_after_kept_alive_answer, setup_default),
        CASE("observer: sees the route, method and status of each request",
             test_observer_sees_every_request, setup_default),
        CASE("concurrency: 8 threads x 200 requests all answered", test_concurrent_clients,
             setup_default),
        CASE("destroy: prompt with clients connected in every state",
             test_destroy_with_clients_connected, setup_default),
        CASE("new: malformed addresses and a port in use are refused with messages",
             test_new_refuses_bad_options, setup_default),
        CASE("route: bad methods, patterns and late routes are refused with messages",
             test_route_refuses_bad_patterns, setup_default),
        NAMED_CASE("self-check: passes on this libevent, in well under a second, leaking nothing",
                   test_self_check_passes, NULL),
        NAMED_CASE("self-check: a libevent wired otherwise is refused with a message",
                   test_self_check_refuses_other_wiring, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
