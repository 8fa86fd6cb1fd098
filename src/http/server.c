#include "dr/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/util.h"

#define MAX_HEADERS 100
/* Responses queued but not yet taken by the client: past this, no further pipelined request is
 * read until the client has read enough of them. */
#define WRITE_HIGH_WATER (1024 * 1024)

struct route {
    char *method;
    char *pattern;
    size_t plen;
    int prefix;
    dr_http_handler fn;
    void *ctx;
};

struct conn;

struct dr_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int listening;
    struct dr_http_limits lim;
    struct route *routes;
    size_t nroutes;
    struct conn *conns;
    size_t nconns;
    int stopping;
    int port;
    void (*observer)(const struct dr_http_req *, int, void *);
    void *observer_ctx;
};

struct header {
    char *name; /* lowercased */
    char *value;
};

struct dr_http_req {
    struct conn *conn; /* NULL once the connection is gone */
    char method[16];
    struct dr_buf url;
    char *path;
    const char *query;
    struct header headers[MAX_HEADERS];
    size_t nheaders;
    size_t header_bytes;
    int last_was_value;
    int headers_done; /* what follows the headers (chunked trailers) is not a header */
    struct dr_buf body;
    struct dr_buf extra_headers;
    int keepalive;
    int upgrade;
    uint64_t t0;
    /* dr_http_defer */
    uv_work_t work;
    void (*work_fn)(void *);
    void (*done_fn)(struct dr_http_req *, void *);
    void *work_arg;
    /* dr_http_on_done */
    dr_http_done_hook hook;
    void *hook_ctx;
};

/* DRAINING: answered, but the client has not read enough of its responses to be read from. */
enum conn_state { READING, HANDLING, DRAINING, CLOSING, HIJACKED };

struct conn {
    uv_tcp_t tcp; /* first: the handle's address is the conn's */
    uv_timer_t *timer; /* separate allocation: it may outlive a hijacked conn */
    struct dr_http_server *srv;
    http_parser parser;
    struct dr_http_req *req;
    enum conn_state state;
    int reject_status;
    const char *reject_why; /* a 400's message (static) */
    char *left;          /* bytes received but not yet parsed */
    size_t leftlen;
    int parsing;      /* conn_parse() is on the stack: an answer given at once goes back to it */
    const char *rest; /* while conn_parse() dispatches: the bytes after the request */
    size_t restlen;
    char peer[64];
    int loopback;
    struct conn *prev, *next;
};

struct write_req {
    uv_write_t w;
    struct conn *conn;
    int close_after;
    char data[];
};

static http_parser_settings settings;
static void conn_close(struct conn *c);
static void conn_parse(struct conn *c, const char *data, size_t len);
static void on_timer_closed(uv_handle_t *h);
static void after_response(struct conn *c);
static void on_timeout(uv_timer_t *t);

/* ---------- requests ---------- */

static struct dr_http_req *req_create(struct conn *c)
{
    struct dr_http_req *r = dr_xcalloc(1, sizeof(*r));
    r->conn = c;
    dr_buf_init(&r->url, c->srv->lim.max_header_bytes);
    dr_buf_init(&r->body, c->srv->lim.max_body_bytes);
    dr_buf_init(&r->extra_headers, 4096);
    r->t0 = dr_mono_ns();
    return r;
}

static void req_free(struct dr_http_req *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    dr_buf_cleanup(&r->url);
    dr_buf_cleanup(&r->body);
    dr_buf_cleanup(&r->extra_headers);
    free(r->path);
    free(r);
}

const char *dr_http_method(const struct dr_http_req *req)
{
    return req->method;
}

const char *dr_http_path(const struct dr_http_req *req)
{
    return req->path ? req->path : "/";
}

const char *dr_http_query(const struct dr_http_req *req)
{
    return req->query ? req->query : "";
}

const char *dr_http_header(const struct dr_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0) {
            return req->headers[i].value;
        }
    }
    return NULL;
}

const char *dr_http_body(const struct dr_http_req *req, size_t *len)
{
    if (len) {
        *len = req->body.len;
    }
    return req->body.data ? req->body.data : "";
}

int dr_http_peer_is_loopback(const struct dr_http_req *req)
{
    return req->conn ? req->conn->loopback : 0;
}

const char *dr_http_peer(const struct dr_http_req *req)
{
    return req->conn ? req->conn->peer : "-";
}

uint64_t dr_http_received_ns(const struct dr_http_req *req)
{
    return req->t0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Percent-decodes n bytes of s into out (with '+' as space when form is set); *outlen (when
 * not NULL) gets the decoded length, which counts any NUL a %00 made. */
static int pct_decode(const char *s, size_t n, int form, char *out, size_t outsz, size_t *outlen)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n) {
            int h = hexval((unsigned char)s[i + 1]);
            int l = hexval((unsigned char)s[i + 2]);
            if (h >= 0 && l >= 0) {
                c = (char)(h * 16 + l);
                i += 2;
                if (c == '\0' && !form) {
                    return DR_EINVAL; /* a path cut short would name another resource */
                }
            }
        } else if (c == '+' && form) {
            c = ' ';
        }
        if (j + 1 >= outsz) {
            if (outsz) {
                out[j] = '\0'; /* callers that look anyway see a string */
            }
            return DR_ETOOBIG;
        }
        out[j++] = c;
    }
    out[j] = '\0';
    if (outlen) {
        *outlen = j;
    }
    return DR_OK;
}

/* dr_http_query_param(), and the value's decoded length into *len. */
static int query_param(const struct dr_http_req *req, const char *name, char *out, size_t outsz,
                       size_t *len)
{
    const char *q = dr_http_query(req);
    size_t nlen = strlen(name);

    while (*q) {
        const char *amp = strchr(q, '&');
        const char *end = amp ? amp : q + strlen(q);
        const char *eq = memchr(q, '=', (size_t)(end - q));
        const char *kend = eq ? eq : end;
        char key[128];

        if (pct_decode(q, (size_t)(kend - q), 1, key, sizeof(key), NULL) == DR_OK &&
            strlen(key) == nlen && memcmp(key, name, nlen) == 0) {
            if (!eq) {
                if (outsz) {
                    out[0] = '\0';
                }
                *len = 0;
                return DR_OK;
            }
            return pct_decode(eq + 1, (size_t)(end - eq - 1), 1, out, outsz, len);
        }
        q = amp ? amp + 1 : end;
    }
    return DR_ENOTFOUND;
}

int dr_http_query_param(const struct dr_http_req *req, const char *name, char *out, size_t outsz)
{
    size_t len;
    int rc = query_param(req, name, out, outsz, &len);

    /* a %00 would end the string early and hide what follows it */
    return rc == DR_OK && strlen(out) != len ? DR_EINVAL : rc;
}

int dr_http_query_int(const struct dr_http_req *req, const char *name, int64_t min, int64_t max,
                      int64_t *out, char *err, size_t errsz)
{
    char v[64];
    size_t len = 0;
    int rc = query_param(req, name, v, sizeof(v), &len);

    if (rc == DR_ENOTFOUND) {
        return rc;
    }
    if (rc == DR_ETOOBIG) {
        snprintf(err, errsz, "%s: value too long (at most %zu bytes)", name, sizeof(v) - 1);
        return DR_EINVAL;
    }
    /* a %00 would end the string early and hide what follows it */
    if (rc != DR_OK || strlen(v) != len || dr_parse_int(v, min, max, out) != DR_OK) {
        if (max == INT64_MAX) {
            snprintf(err, errsz, "%s: expected a whole number, %lld or more", name, (long long)min);
        } else {
            snprintf(err, errsz, "%s: expected a whole number from %lld to %lld", name,
                     (long long)min, (long long)max);
        }
        return DR_EINVAL;
    }
    return DR_OK;
}

int dr_http_query_bool(const struct dr_http_req *req, const char *name, int *out, char *err,
                       size_t errsz)
{
    static const char *const yes[] = {"1", "true", "yes"}, *const no[] = {"0", "false", "no"};
    char v[8];
    size_t len = 0;
    int rc = query_param(req, name, v, sizeof(v), &len);

    if (rc == DR_ENOTFOUND) {
        return rc;
    }
    /* a %00 would end the string early and hide what follows it */
    if (rc == DR_OK && strlen(v) == len) {
        for (size_t i = 0; i < DR_ARRAY_LEN(yes); i++) {
            if (strcmp(v, yes[i]) == 0) {
                *out = 1;
                return DR_OK;
            }
            if (strcmp(v, no[i]) == 0) {
                *out = 0;
                return DR_OK;
            }
        }
    }
    snprintf(err, errsz, "%s: expected true or false", name);
    return DR_EINVAL;
}

/* ---------- responses ---------- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    }
    return "Status";
}

/* Lingering close: after the last response, send FIN and drain what the client still sends for
 * a moment, so the kernel does not answer unread data with a reset that destroys the response. */
static void on_linger_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0) {
        conn_close((struct conn *)s);
    }
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    struct conn *c = sr->data;
    free(sr);
    if (status < 0 || uv_is_closing((uv_handle_t *)&c->tcp)) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, dr_http_read_slab, on_linger_read);
    uv_timer_start(c->timer, on_linger_timeout, 2000, 0);
}

static void on_write(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    struct conn *c = wr->conn;

    if (c->state == HIJACKED) {
        /* a response written before the connection was taken over: the connection, and what
         * happens to it when this write failed, are its new owner's */
    } else if (status < 0) {
        conn_close(c);
    } else if (c->state == DRAINING && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        if (c->tcp.write_queue_size <= WRITE_HIGH_WATER / 2) {
            after_response(c);
        } else {
            /* the client is reading: its stall deadline starts again */
            uv_timer_start(c->timer, on_timeout, c->srv->lim.idle_timeout_ms, 0);
        }
    } else if (wr->close_after && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_shutdown_t *sr = dr_xcalloc(1, sizeof(*sr));
        sr->data = c;
        if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
            free(sr);
            conn_close(c);
        }
    }
    free(wr);
}

static void conn_write(struct conn *c, struct dr_buf *out, int close_after)
{
    struct write_req *wr;
    uv_buf_t b;

    wr = dr_xmalloc(sizeof(*wr) + out->len);
    memcpy(wr->data, out->data, out->len);
    wr->conn = c;
    wr->close_after = close_after;
    b = uv_buf_init(wr->data, (unsigned)out->len);
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(wr);
        conn_close(c);
    }
}

void dr_http_respond(struct dr_http_req *req, int status, const char *content_type,
                     const char *body, size_t len)
{
    struct conn *c = req->conn;
    struct dr_buf out;
    int close_after;

    if (req->hook) {
        req->hook(req, status, req->hook_ctx);
    }
    if (!c || c->state == CLOSING) {
        req_free(req);
        return;
    }
    if (c->srv->observer) {
        c->srv->observer(req, status, c->srv->observer_ctx);
    }
    close_after = !req->keepalive || c->srv->stopping || status == 408 || status == 413 ||
                  status == 431 || c->reject_status;
    dr_buf_init(&out, len + 1024 + req->extra_headers.len);
    dr_buf_printf(&out, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", status, reason_phrase(status),
                  len);
    if (content_type) {
        dr_buf_printf(&out, "Content-Type: %s\r\n", content_type);
    }
    if (req->extra_headers.len) {
        dr_buf_append(&out, req->extra_headers.data, req->extra_headers.len);
    }
    dr_buf_appends(&out, close_after ? "Connection: close\r\n\r\n" : "\r\n");
    if (strcmp(req->method, "HEAD") != 0) {
        dr_buf_append(&out, body, len);
    }
    c->req = NULL;
    req_free(req);
    conn_write(c, &out, close_after);
    dr_buf_cleanup(&out);
    if (!close_after) {
        after_response(c);
    } else {
        c->state = CLOSING;
        uv_read_stop((uv_stream_t *)&c->tcp);
        /* a client that never takes the response does not hold the connection forever */
        uv_timer_start(c->timer, on_timeout, c->srv->lim.idle_timeout_ms, 0);
    }
}

void dr_http_respond_json(struct dr_http_req *req, int status, const char *json)
{
    dr_http_respond(req, status, "application/json", json, strlen(json));
}

void dr_http_respond_cjson(struct dr_http_req *req, int status, cJSON *o)
{
    char *s = dr_json_print(o);

    dr_http_respond_json(req, status, s);
    free(s);
    cJSON_Delete(o);
}

void dr_http_respond_error(struct dr_http_req *req, int status, const char *grpc_status,
                           const char *fmt, ...)
{
    char msg[1024];
    struct dr_buf b;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dr_buf_init(&b, 4096);
    dr_buf_printf(&b, "{\"error\":{\"code\":%d,\"message\":", status);
    dr_buf_append_json_str(&b, msg, strlen(msg));
    dr_buf_appends(&b, ",\"status\":");
    dr_buf_append_json_str(&b, grpc_status, strlen(grpc_status));
    dr_buf_appends(&b, "}}");
    dr_http_respond(req, status, "application/json", b.data, b.len);
    dr_buf_cleanup(&b);
}

void dr_http_add_header(struct dr_http_req *req, const char *name, const char *value)
{
    /* CR/LF in a value would split the response: refuse it. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) {
        return;
    }
    dr_buf_printf(&req->extra_headers, "%s: %s\r\n", name, value);
}

void dr_http_on_done(struct dr_http_req *req, dr_http_done_hook fn, void *ctx)
{
    req->hook = fn;
    req->hook_ctx = ctx;
}

static void defer_work(uv_work_t *w)
{
    struct dr_http_req *r = w->data;
    r->work_fn(r->work_arg);
}

static void defer_after(uv_work_t *w, int status)
{
    struct dr_http_req *r = w->data;
    r->done_fn(r, r->work_arg);
}

int dr_http_defer(struct dr_http_req *req, void (*work)(void *arg),
                  void (*done)(struct dr_http_req *req, void *arg), void *arg)
{
    uv_loop_t *loop;

    if (!req->conn) {
        return DR_EUNAVAIL;
    }
    loop = req->conn->srv->loop;
    req->work.data = req;
    req->work_fn = work;
    req->done_fn = done;
    req->work_arg = arg;
    return uv_queue_work(loop, &req->work, defer_work, defer_after) ? DR_EIO : DR_OK;
}

int dr_http_hijack(struct dr_http_req *req, uv_tcp_t **stream, char **extra, size_t *extra_len)
{
    struct conn *c = req->conn;
    uv_tcp_t *t;

    if (!c || c->state == CLOSING) {
        return DR_EUNAVAIL;
    }
    /* The conn struct owns the tcp handle at its start; hand over the whole conn allocation
     * after detaching the timer and the server's bookkeeping. */
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(c->timer);
    uv_close((uv_handle_t *)c->timer, on_timer_closed);
    c->timer = NULL;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        c->srv->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->srv->nconns--;
    if (c->rest) {
        /* hijacked while conn_parse() dispatches: what follows the request is still its input */
        *extra = c->restlen ? dr_xmalloc(c->restlen) : NULL;
        if (c->restlen) {
            memcpy(*extra, c->rest, c->restlen);
        }
        *extra_len = c->restlen;
        free(c->left);
    } else {
        *extra = c->left;
        *extra_len = c->leftlen;
    }
    c->left = NULL;
    c->leftlen = 0;
    c->rest = NULL;
    c->restlen = 0;
    c->state = HIJACKED;
    c->req = NULL;
    t = &c->tcp;
    t->data = NULL;
    *stream = t; /* free(t) frees the conn: tcp is its first member */
    req_free(req);
    return DR_OK;
}

/* ---------- connections ---------- */

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void on_tcp_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    free(c->left);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp)) {
        return;
    }
    if (c->req) {
        if (c->state == HANDLING) {
            c->req->conn = NULL; /* a handler owns it; its respond() frees it */
        } else {
            req_free(c->req);
        }
        c->req = NULL;
    }
    c->state = CLOSING;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        c->srv->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->srv->nconns--;
    uv_close((uv_handle_t *)c->timer, on_timer_closed);
    c->timer = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

static void on_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;

    if (c->state == DRAINING || c->state == CLOSING) {
        DR_INFO("http", "client not reading its responses", "peer=%s", c->peer);
        conn_close(c);
        return;
    }
    if (c->state == READING && c->parser.nread == 0 && !c->req) {
        conn_close(c); /* idle keep-alive or never spoke */
        return;
    }
    if (c->state == READING) {
        DR_INFO("http", "request timeout", "peer=%s", c->peer);
        if (!c->req) {
            c->req = req_create(c);
            snprintf(c->req->method, sizeof(c->req->method), "GET");
        }
        c->reject_status = 408;
        c->state = HANDLING;
        dr_http_respond_error(c->req, 408, "DEADLINE_EXCEEDED", "request not received in time");
    }
}

void dr_http_read_slab(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static _Thread_local char slab[65536];
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = (struct conn *)s;

    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0) {
        return;
    }
    if (c->state != READING) {
        /* pipelined bytes while a request is handled: keep them */
        c->left = dr_xrealloc(c->left, c->leftlen + (size_t)n);
        memcpy(c->left + c->leftlen, buf->base, (size_t)n);
        c->leftlen += (size_t)n;
        if (c->leftlen > c->srv->lim.max_body_bytes + c->srv->lim.max_header_bytes) {
            uv_read_stop(s);
        }
        return;
    }
    if (c->leftlen) {
        /* the start of a request kept from before: parse it with what follows */
        char *left = dr_xrealloc(c->left, c->leftlen + (size_t)n);
        size_t leftlen = c->leftlen + (size_t)n;
        memcpy(left + c->leftlen, buf->base, (size_t)n);
        c->left = NULL;
        c->leftlen = 0;
        conn_parse(c, left, leftlen);
        free(left);
        return;
    }
    conn_parse(c, buf->base, (size_t)n);
}

static int route_matches(const struct route *rt, const char *path)
{
    return rt->prefix ? strncmp(path, rt->pattern, rt->plen) == 0 : strcmp(path, rt->pattern) == 0;
}

static void dispatch(struct conn *c)
{
    struct dr_http_server *srv = c->srv;
    struct dr_http_req *r = c->req;
    const char *path;
    int path_matched = 0;

    c->state = HANDLING;
    uv_timer_stop(c->timer);
    path = dr_http_path(r);
    for (size_t i = 0; i < srv->nroutes; i++) {
        struct route *rt = &srv->routes[i];
        if (!route_matches(rt, path)) {
            continue;
        }
        path_matched = 1;
        if (rt->method && strcmp(rt->method, r->method) != 0 &&
            !(strcmp(rt->method, "GET") == 0 && strcmp(r->method, "HEAD") == 0)) {
            continue;
        }
        rt->fn(r, rt->ctx);
        return;
    }
    if (path_matched) {
        /* RFC 9110 15.5.6: a 405 says which methods the resource has */
        char allow[128] = "";
        size_t n = 0;
        for (size_t i = 0; i < srv->nroutes; i++) {
            struct route *rt = &srv->routes[i];
            int match = route_matches(rt, path);
            const char *m[2] = {rt->method,
                                rt->method && strcmp(rt->method, "GET") == 0 ? "HEAD" : NULL};
            for (int k = 0; match && rt->method && k < 2 && m[k]; k++) {
                char tok[16];
                snprintf(tok, sizeof(tok), "%s%s", n ? ", " : "", m[k]);
                if (!strstr(allow, m[k]) && n + strlen(tok) < sizeof(allow)) {
                    memcpy(allow + n, tok, strlen(tok) + 1);
                    n += strlen(tok);
                }
            }
        }
        dr_http_add_header(r, "Allow", allow);
        dr_http_respond_error(r, 405, "METHOD_NOT_ALLOWED", "method %s not allowed on %s",
                              r->method, path);
    } else {
        dr_http_respond_error(r, 404, "NOT_FOUND", "no such resource: %s", path);
    }
}

static void after_response(struct conn *c)
{
    char *left;
    size_t leftlen;

    if (c->tcp.write_queue_size > WRITE_HIGH_WATER) {
        /* Pipelined requests from a client that does not read the answers would queue
         * responses without bound: wait until it takes them (on_write resumes). */
        c->state = DRAINING;
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_timer_start(c->timer, on_timeout, c->srv->lim.idle_timeout_ms, 0);
        return;
    }
    c->state = READING;
    if (c->parsing) {
        /* answered at once, inside conn_parse(): its loop goes on with the next request, whose
         * first byte starts the request timeout (on_message_begin); until then it is idle */
        uv_timer_start(c->timer, on_timeout, c->srv->lim.idle_timeout_ms, 0);
        return;
    }
    left = c->left;
    leftlen = c->leftlen;
    c->left = NULL;
    c->leftlen = 0;
    uv_timer_start(c->timer, on_timeout, leftlen ? c->srv->lim.request_timeout_ms
                                                   : c->srv->lim.idle_timeout_ms, 0);
    if (leftlen) {
        conn_parse(c, left, leftlen); /* keeps a copy of whatever it does not parse */
    } else if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_read_start((uv_stream_t *)&c->tcp, dr_http_read_slab, on_read);
    }
    free(left);
}

/*
 * Parses data request by request. A request answered at once (the usual case) returns here
 * through after_response() and the next one is parsed in this loop: pipelined requests cost
 * neither stack depth nor a copy of what follows each of them. Whatever is left when the
 * connection stops reading (a request handed off, the client not reading its answers) is copied
 * to c->left once; after_response() parses it when the connection reads again. data may be the
 * caller's buffer (the read slab, or the previous c->left).
 */
static void conn_parse(struct conn *c, const char *data, size_t len)
{
    c->parsing = 1;
    while (len > 0 && c->state == READING) {
        size_t done = http_parser_execute(&c->parser, &settings, data, len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
        } else if (e != HPE_OK) {
            if (!c->req) {
                c->req = req_create(c);
            }
            snprintf(c->req->method, sizeof(c->req->method), "GET");
            c->state = HANDLING;
            uv_read_stop((uv_stream_t *)&c->tcp);
            if (e == HPE_HEADER_OVERFLOW) {
                /* the parser's own cap (80 KB in one read) met before max_header_bytes was
                 * counted: the same refusal as ours */
                c->reject_status = 431;
                dr_http_respond_error(c->req, 431, "INVALID_ARGUMENT", "request headers too large");
            } else {
                c->reject_status = 400;
                dr_http_respond_error(c->req, 400, "INVALID_ARGUMENT", "malformed HTTP request: %s",
                                      http_errno_description(e));
            }
            len = 0; /* the connection closes: the rest is not read */
            break;
        }
        data += done;
        len -= done;
        if (c->reject_status) {
            int st = c->reject_status;
            c->state = HANDLING;
            uv_read_stop((uv_stream_t *)&c->tcp);
            if (st == 413) {
                dr_http_respond_error(c->req, 413, "INVALID_ARGUMENT",
                                      "request body larger than %zu bytes",
                                      c->srv->lim.max_body_bytes);
            } else if (st == 400) {
                dr_http_respond_error(c->req, 400, "INVALID_ARGUMENT", "malformed HTTP request: %s",
                                      c->reject_why ? c->reject_why : "bad header");
            } else if (st == 501) {
                dr_http_respond_error(c->req, 501, "UNIMPLEMENTED",
                                      "transfer coding not supported: only chunked");
            } else {
                dr_http_respond_error(c->req, 431, "INVALID_ARGUMENT", "request headers too large");
            }
            len = 0;
            break;
        }
        if (c->req && c->state == HANDLING) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->rest = data;
            c->restlen = len;
            dispatch(c);
            if (c->state == HIJACKED) {
                return; /* c belongs to whoever took the connection, the rest with it */
            }
            c->rest = NULL;
            c->restlen = 0;
        } else if (done == 0) {
            break; /* nothing consumed and nothing to answer: wait for more */
        }
    }
    c->parsing = 0;
    if (len > 0 && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        /* in front of anything that arrived meanwhile (nothing does while this loop runs) */
        char *keep = dr_xmalloc(c->leftlen + len);
        memcpy(keep, data, len);
        if (c->leftlen) {
            memcpy(keep + len, c->left, c->leftlen);
        }
        free(c->left);
        c->left = keep;
        c->leftlen += len;
    }
    if (c->state == READING && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_read_start((uv_stream_t *)&c->tcp, dr_http_read_slab, on_read);
    }
}

/* ---------- http-parser callbacks ---------- */

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    req_free(c->req);
    c->req = req_create(c);
    uv_timer_start(c->timer, on_timeout, c->srv->lim.request_timeout_ms, 0);
    return 0;
}

/* Appends a piece of the request to to; one over the buffer's cap stops the parser, and the
 * request is refused with status. */
static int append_or_refuse(http_parser *p, struct dr_buf *to, const char *at, size_t len,
                            int status)
{
    struct conn *c = p->data;
    if (dr_buf_append(to, at, len)) {
        c->reject_status = status;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int header_bytes(struct conn *c, size_t len)
{
    c->req->header_bytes += len;
    if (c->req->header_bytes > c->srv->lim.max_header_bytes) {
        c->reject_status = 431;
        http_parser_pause(&c->parser, 1);
        return -1;
    }
    return 0;
}

/* The URL shares the head's one limit with the headers: a query parameter (an access_token)
 * may be as long as a header, and the handler, not this layer, refuses what it finds too long. */
static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (header_bytes(c, len)) {
        return 0;
    }
    return append_or_refuse(p, &c->req->url, at, len, 431);
}

static void append_str(char **dst, const char *at, size_t len)
{
    size_t old = *dst ? strlen(*dst) : 0;
    *dst = dr_xrealloc(*dst, old + len + 1);
    memcpy(*dst + old, at, len);
    (*dst)[old + len] = '\0';
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct dr_http_req *r = c->req;

    if (header_bytes(c, len) || r->headers_done) {
        return 0;
    }
    if (r->last_was_value || r->nheaders == 0) {
        if (r->nheaders == MAX_HEADERS) {
            c->reject_status = 431;
            http_parser_pause(p, 1);
            return 0;
        }
        r->nheaders++;
        r->last_was_value = 0;
    }
    append_str(&r->headers[r->nheaders - 1].name, at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct dr_http_req *r = c->req;

    if (header_bytes(c, len) || r->nheaders == 0 || r->headers_done) {
        return 0;
    }
    r->last_was_value = 1;
    append_str(&r->headers[r->nheaders - 1].value, at, len);
    return 0;
}

/* RFC 9110 5.5: the SP and HTAB around a field value are not part of it. The parser drops the
 * leading ones but keeps the trailing ones (a value may arrive in pieces, so only the whole value
 * can be trimmed): "Bearer <token> " would name another token, "10 " not be a number. */
static void trim_ows(char *v)
{
    size_t start = strspn(v, " \t"), end = strlen(v);

    while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t')) {
        end--;
    }
    memmove(v, v + start, end - start);
    v[end - start] = '\0';
}

/* RFC 9110 5.6.2: a field name is a token */
static int is_token(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("!#$%&'*+-.^_`|~", ch))) {
            return 0;
        }
    }
    return 1;
}

/*
 * What RFC 9112 makes a server refuse with 400 in a request's head, or NULL:
 * - whitespace (or anything else that is not a token) in a field name (5.1): "Content-Length :"
 *   would frame the body here and be ignored by a proxy in front, or the other way round;
 * - an HTTP/1.1 request without a Host field, or any request with more than one (3.2).
 */
static const char *head_problem(const http_parser *p, const struct dr_http_req *r)
{
    int hosts = 0;

    for (size_t i = 0; i < r->nheaders; i++) {
        if (!r->headers[i].name || !is_token(r->headers[i].name)) {
            return "a header field name that is not a token (whitespace before the colon?)";
        }
        hosts += strcasecmp(r->headers[i].name, "host") == 0;
    }
    if (hosts > 1) {
        return "more than one Host header";
    }
    const char *te = dr_http_header(r, "transfer-encoding");
    if (te && (p->http_major < 1 || (p->http_major == 1 && p->http_minor == 0))) {
        return "Transfer-Encoding in an HTTP/1.0 request"; /* RFC 9112 6.1: faulty framing */
    }
    if (hosts == 0 && (p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1))) {
        return "an HTTP/1.1 request without a Host header";
    }
    return NULL;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct dr_http_req *r = c->req;
    struct http_parser_url u;
    const char *url;

    r->headers_done = 1;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!r->headers[i].value) {
            r->headers[i].value = dr_xstrdup("");
        }
        trim_ows(r->headers[i].value);
    }
    c->reject_why = head_problem(p, r);
    if (c->reject_why) {
        c->reject_status = 400;
        http_parser_pause(p, 1);
        return 0;
    }
    {
        /* the only transfer coding the server decodes is chunked (RFC 9112 6.1: 501 for one it
         * does not understand); the handler would get a body still gzip'ed, say */
        const char *te = dr_http_header(r, "transfer-encoding");
        if (te && strcasecmp(te, "chunked") != 0) {
            c->reject_status = 501;
            http_parser_pause(p, 1);
            return 0;
        }
    }
    snprintf(r->method, sizeof(r->method), "%s", http_method_str((enum http_method)p->method));
    r->keepalive = http_should_keep_alive(p);
    url = r->url.data ? r->url.data : "/";
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, strlen(url), 0, &u) == 0 && (u.field_set & (1 << UF_PATH))) {
        char *path = dr_xmalloc(u.field_data[UF_PATH].len + 1);
        if (pct_decode(url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len, 0, path,
                       u.field_data[UF_PATH].len + 1, NULL) != DR_OK) {
            path[0] = '\0';
        }
        r->path = path;
        r->query = (u.field_set & (1 << UF_QUERY)) ? url + u.field_data[UF_QUERY].off : "";
    } else {
        r->path = dr_xstrdup("/");
        r->query = "";
    }
    if (p->content_length != ULLONG_MAX && p->content_length > c->srv->lim.max_body_bytes) {
        c->reject_status = 413;
        http_parser_pause(p, 1);
        return 0;
    }
    if (p->content_length != ULLONG_MAX && p->content_length > 0) {
        dr_buf_reserve(&r->body, (size_t)p->content_length); /* one allocation for the body */
    }
    {
        /* Clients that ask first (curl does for large bodies) get the go-ahead at once. */
        const char *expect = dr_http_header(r, "expect");
        int v11 = p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1);
        /* an HTTP/1.0 client gets no 1xx (RFC 9110 15.2) and its Expect is ignored (10.1.1) */
        if (v11 && expect && strcasecmp(expect, "100-continue") == 0) {
            static const char go[] = "HTTP/1.1 100 Continue\r\n\r\n";
            struct dr_buf b;
            dr_buf_init(&b, sizeof(go));
            dr_buf_append(&b, go, sizeof(go) - 1);
            conn_write(c, &b, 0);
            dr_buf_cleanup(&b);
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    return append_or_refuse(p, &c->req->body, at, len, 413);
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->req->upgrade = p->upgrade;
    c->state = HANDLING;
    http_parser_pause(p, 1);
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct dr_http_server *srv = server->data;
    struct conn *c;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);

    if (status < 0) {
        return;
    }
    c = dr_xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->timer = dr_xcalloc(1, sizeof(*c->timer));
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, c->timer);
    c->tcp.data = c;
    c->timer->data = c;
    c->prev = NULL;
    c->next = srv->conns;
    if (srv->conns) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, c->peer, sizeof(c->peer));
            c->loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, c->peer, sizeof(c->peer));
            c->loopback = strcmp(c->peer, "::1") == 0 || strncmp(c->peer, "::ffff:127.", 11) == 0;
        }
    }
    if (srv->nconns > srv->lim.max_connections || srv->stopping) {
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\n\r\n";
        struct dr_buf b;
        dr_buf_init(&b, sizeof(busy));
        dr_buf_append(&b, busy, sizeof(busy) - 1);
        c->state = CLOSING;
        conn_write(c, &b, 1);
        dr_buf_cleanup(&b);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = READING;
    uv_timer_start(c->timer, on_timeout, srv->lim.request_timeout_ms, 0);
    uv_read_start((uv_stream_t *)&c->tcp, dr_http_read_slab, on_read);
}

/* ---------- server ---------- */

int dr_http_server_create(uv_loop_t *loop, const struct dr_http_limits *lim,
                          struct dr_http_server **out)
{
    struct dr_http_server *srv = dr_xcalloc(1, sizeof(*srv));

    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;

    srv->loop = loop;
    srv->lim.max_header_bytes = 32 * 1024;
    srv->lim.max_body_bytes = 11 * 1024 * 1024;
    srv->lim.request_timeout_ms = 10000;
    srv->lim.idle_timeout_ms = 60000;
    srv->lim.max_connections = 10000;
    if (lim) {
        if (lim->max_header_bytes) {
            srv->lim.max_header_bytes = lim->max_header_bytes;
        }
        if (lim->max_body_bytes) {
            srv->lim.max_body_bytes = lim->max_body_bytes;
        }
        if (lim->request_timeout_ms) {
            srv->lim.request_timeout_ms = lim->request_timeout_ms;
        }
        if (lim->idle_timeout_ms) {
            srv->lim.idle_timeout_ms = lim->idle_timeout_ms;
        }
        if (lim->max_connections) {
            srv->lim.max_connections = lim->max_connections;
        }
    }
    *out = srv;
    return DR_OK;
}

int dr_http_server_listen(struct dr_http_server *srv, const char *host, int port)
{
    struct sockaddr_storage addr;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    int rc;

    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
        DR_ERROR("http", "bad listen address", "host=%s", host);
        return DR_EINVAL;
    }
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    srv->listening = 1;
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&srv->listener, 1024, on_connection);
    }
    if (rc != 0) {
        DR_ERROR("http", "cannot listen", "host=%s port=%d error=\"%s\"", host, port,
                 uv_strerror(rc));
        return DR_EIO;
    }
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
    srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return DR_OK;
}

int dr_http_server_port(const struct dr_http_server *srv)
{
    return srv->port;
}

size_t dr_http_server_connections(const struct dr_http_server *srv)
{
    return srv->nconns;
}

int dr_http_server_busy(const struct dr_http_server *srv)
{
    for (const struct conn *c = srv ? srv->conns : NULL; c; c = c->next) {
        /* a handler still to answer, or an answer still to be written (it closes after) */
        if (c->state == HANDLING ||
            (c->state == CLOSING && !uv_is_closing((uv_handle_t *)&c->tcp))) {
            return 1;
        }
    }
    return 0;
}

void dr_http_server_stop(struct dr_http_server *srv)
{
    struct conn *c, *next;

    srv->stopping = 1;
    if (srv->listening && !uv_is_closing((uv_handle_t *)&srv->listener)) {
        uv_close((uv_handle_t *)&srv->listener, NULL);
    }
    for (c = srv->conns; c; c = next) {
        next = c->next;
        if (c->state == READING || c->state == DRAINING) {
            conn_close(c);
        }
    }
}

void dr_http_server_destroy(struct dr_http_server *srv)
{
    struct conn *c, *next;

    if (!srv) {
        return;
    }
    dr_http_server_stop(srv);
    for (c = srv->conns; c; c = next) {
        next = c->next;
        conn_close(c);
    }
    for (size_t i = 0; i < srv->nroutes; i++) {
        free(srv->routes[i].method);
        free(srv->routes[i].pattern);
    }
    free(srv->routes);
    free(srv);
}

int dr_http_route(struct dr_http_server *srv, const char *method, const char *pattern,
                  dr_http_handler fn, void *ctx)
{
    struct route *rt;
    size_t n = strlen(pattern);

    srv->routes = dr_xrealloc(srv->routes, (srv->nroutes + 1) * sizeof(*srv->routes));
    rt = &srv->routes[srv->nroutes++];
    rt->method = dr_xstrdup(method);
    rt->prefix = n > 0 && pattern[n - 1] == '*';
    rt->pattern = dr_xstrndup(pattern, rt->prefix ? n - 1 : n);
    rt->plen = strlen(rt->pattern);
    rt->fn = fn;
    rt->ctx = ctx;
    return DR_OK;
}

void dr_http_set_observer(struct dr_http_server *srv,
                          void (*fn)(const struct dr_http_req *, int status, void *), void *ctx)
{
    srv->observer = fn;
    srv->observer_ctx = ctx;
}
