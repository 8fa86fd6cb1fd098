/*
 * HTTP/2 over plain TCP with nghttp2 (see h2c.h). One "conn" is one TCP connection with its
 * nghttp2 session; the client sends new requests on its current conn and opens another when
 * there is none, or when the server said GOAWAY (the old one finishes its streams, then closes).
 *
 * Callbacks to the caller never run from inside an nghttp2 callback or from inside submit:
 * nghttp2's callbacks only record what happened on the call (status, body, end), and
 * dispatch() hands finished calls to their callbacks from the libuv callback that drove the
 * session. A call is freed only after its stream is closed, because nghttp2 may still read its
 * body until then; a cancelled call just no longer has a callback.
 */
#include "sources/pubsub/h2c.h"

#include <ctype.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"

#define DEFAULT_TIMEOUT_MS   30000L
#define DEFAULT_MAX_RESPONSE (16u * 1024 * 1024)
#define WINDOW               (16 * 1024 * 1024) /* stream and connection receive windows */
#define TICK_MS              250
#define SMALL_TEXT           512

struct conn {
    struct dr_h2c *c;
    uv_getaddrinfo_t gai;
    uv_connect_t connect;
    uv_tcp_t tcp;
    nghttp2_session *session;
    struct addrinfo *addrs; /* resolved, until connected: the ones still to try follow next_addr */
    struct addrinfo *next_addr;
    int resolving;
    int open;    /* connected, session ready */
    int retired; /* no new streams: the server sent GOAWAY */
    int dead;    /* failed or closed; freed when its handle has closed */
    struct conn *next;
};

struct dr_h2c_call {
    struct dr_h2c *c;
    struct conn *conn; /* once submitted on a connection */
    int32_t stream_id; /* 0 until then */
    nghttp2_nv *nva;
    size_t nnv;
    char *strings; /* the header names and values nva points into */
    char *body;
    size_t body_len, body_off;
    struct dr_buf resp;
    long status;
    int grpc_status;
    char grpc_message[SMALL_TEXT];
    char retry_after[64];
    char error[SMALL_TEXT];
    int64_t deadline_ms;
    uint64_t t0_ns;
    int finished; /* err and the fields above are final */
    int err;
    int cancelled; /* no callback; freed when finished */
    dr_hc_cb cb;
    void *ctx;
    struct dr_h2c_call *prev, *next;
};

struct dr_h2c {
    uv_loop_t *loop;
    char *host;
    char *port;
    char *authority;    /* host:port as given */
    char *prefix;       /* "http://host:port/" */
    struct conn *conn;  /* where new requests go; NULL when there is none yet */
    struct conn *conns; /* all connections not yet closed */
    struct dr_h2c_call *calls;
    uv_timer_t timer;
    int open_handles;
    int closing;
};

static void dispatch(struct dr_h2c *c);
static void conn_fail(struct conn *k, const char *why);
static void conn_close(struct conn *k);
static struct conn *conn_new(struct dr_h2c *c);
static void connect_next(struct conn *k, struct addrinfo *ai);

/* ---- calls ---- */

static void unlink_call(struct dr_h2c_call *call)
{
    struct dr_h2c *c = call->c;

    if (call->prev) {
        call->prev->next = call->next;
    } else if (c->calls == call) {
        c->calls = call->next;
    }
    if (call->next) {
        call->next->prev = call->prev;
    }
    call->prev = call->next = NULL;
}

static void free_call(struct dr_h2c_call *call)
{
    free(call->nva);
    free(call->strings);
    free(call->body);
    dr_buf_cleanup(&call->resp);
    free(call);
}

static void finish(struct dr_h2c_call *call, int err, const char *why)
{
    if (call->finished) {
        return;
    }
    call->finished = 1;
    call->err = err;
    if (err && why) {
        snprintf(call->error, sizeof(call->error), "%s", why);
    }
}

/* Runs the callbacks of finished calls and frees them. A callback may submit, cancel, or
 * destroy the client; after a destroy nothing here is touched again. */
static void dispatch(struct dr_h2c *c)
{
    int again = 1;

    while (again && !c->closing) {
        again = 0;
        for (struct dr_h2c_call *call = c->calls; call; call = call->next) {
            struct dr_hc_resp resp = {0};

            if (!call->finished || call->conn) {
                continue; /* running, or its stream not closed yet (nghttp2 may still read it) */
            }
            unlink_call(call);
            if (!call->cancelled) {
                resp.status = call->status;
                resp.body = call->err ? "" : (call->resp.data ? call->resp.data : "");
                resp.body_len = call->err ? 0 : call->resp.len;
                resp.retry_after = call->retry_after[0] ? call->retry_after : NULL;
                resp.grpc_status = call->grpc_status;
                resp.total_s = (double)(dr_mono_ns() - call->t0_ns) / 1e9;
                resp.grpc_message = call->grpc_message[0] ? call->grpc_message : NULL;
                resp.error =
                    call->err ? (call->error[0] ? call->error : dr_strerror(call->err)) : NULL;
                call->cb(call->ctx, call->err, &resp);
            }
            free_call(call);
            again = 1; /* the list may have changed under the callback: start over */
            break;
        }
    }
}

/* ---- nghttp2 callbacks: record only ---- */

static struct dr_h2c_call *stream_call(nghttp2_session *s, int32_t id)
{
    return nghttp2_session_get_stream_user_data(s, id);
}

static void copy_text(char *dst, size_t dstsz, const uint8_t *v, size_t n)
{
    if (n >= dstsz) {
        n = dstsz - 1;
    }
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    struct dr_h2c_call *call;
    char num[16];
    int64_t v;

    if (frame->hd.type != NGHTTP2_HEADERS || (call = stream_call(s, frame->hd.stream_id)) == NULL) {
        return 0;
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        copy_text(num, sizeof(num), value, valuelen);
        call->status = dr_parse_i64(num, &v) == 0 && v >= 100 && v <= 999 ? (long)v : 0;
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        copy_text(num, sizeof(num), value, valuelen);
        call->grpc_status = dr_parse_i64(num, &v) == 0 && v >= 0 && v < 1000 ? (int)v : 2;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        copy_text(call->grpc_message, sizeof(call->grpc_message), value, valuelen);
    } else if (namelen == 11 && memcmp(name, "retry-after", 11) == 0) {
        copy_text(call->retry_after, sizeof(call->retry_after), value, valuelen);
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    struct dr_h2c_call *call = stream_call(s, id);

    if (!call || call->finished) {
        return 0;
    }
    if (dr_buf_append(&call->resp, data, len) != DR_OK) {
        finish(call, DR_ETOOBIG, "answer too large");
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct dr_h2c_call *call = stream_call(s, id);
    char why[64];

    if (!call) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(s, id, NULL);
    call->conn = NULL;
    if (code != NGHTTP2_NO_ERROR) {
        snprintf(why, sizeof(why), "stream reset (HTTP/2 error %u)", code);
        finish(call, DR_EIO, why);
    } else if (call->status == 0) {
        finish(call, DR_EIO, "stream ended without a response");
    } else {
        finish(call, DR_OK, NULL);
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    struct dr_h2c_call *call = src->ptr;
    size_t n = call->body_len - call->body_off;

    if (n > len) {
        n = len;
    }
    memcpy(buf, call->body + call->body_off, n);
    call->body_off += n;
    if (call->body_off == call->body_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

/* ---- connections ---- */

/* One write of what the session had to send: the bytes it owns go with it. */
struct wr {
    uv_write_t w;
    struct conn *k;
    char *data;
};

static void on_written(uv_write_t *w, int status)
{
    struct wr *wr = (struct wr *)w;
    struct conn *k = wr->k;

    free(wr->data);
    free(wr);
    if (status < 0 && !k->dead) {
        conn_fail(k, uv_strerror(status));
        dispatch(k->c);
    }
}

/* Sends whatever the session has to send, gathered into one write. */
static void flush(struct conn *k)
{
    struct dr_buf out;
    const uint8_t *data;
    ssize_t n;

    if (k->dead || !k->open) {
        return;
    }
    dr_buf_init(&out, SIZE_MAX);
    while ((n = nghttp2_session_mem_send(k->session, &data)) > 0) {
        dr_buf_append(&out, data, (size_t)n);
    }
    if (n < 0) {
        dr_buf_cleanup(&out);
        conn_fail(k, nghttp2_strerror((int)n));
        return;
    }
    if (out.len) {
        struct wr *wr = dr_xmalloc(sizeof(*wr));
        uv_buf_t b;
        int rc;

        wr->k = k;
        b.len = out.len;
        wr->data = b.base = dr_buf_steal(&out, NULL);
        rc = uv_write(&wr->w, (uv_stream_t *)&k->tcp, &b, 1, on_written);
        if (rc < 0) {
            free(wr->data);
            free(wr);
            conn_fail(k, uv_strerror(rc));
            return;
        }
    }
    dr_buf_cleanup(&out);
    if (!nghttp2_session_want_read(k->session) && !nghttp2_session_want_write(k->session)) {
        conn_fail(k, "connection closed");
    }
}

static void conn_closed(uv_handle_t *h)
{
    struct conn *k = h->data;
    struct dr_h2c *c = k->c;

    for (struct conn **p = &c->conns; *p; p = &(*p)->next) {
        if (*p == k) {
            *p = k->next;
            break;
        }
    }
    if (k->addrs) {
        uv_freeaddrinfo(k->addrs);
    }
    free(k);
    if (--c->open_handles == 0 && c->closing) {
        free(c);
    }
}

/* Closes a connection without touching the calls. */
static void conn_close(struct conn *k)
{
    k->dead = 1;
    if (k->c->conn == k) {
        k->c->conn = NULL;
    }
    if (k->session) {
        nghttp2_session_del(k->session);
        k->session = NULL;
    }
    if (k->resolving) {
        uv_cancel((uv_req_t *)&k->gai); /* its callback still runs, and closes */
        return;
    }
    uv_close((uv_handle_t *)&k->tcp, conn_closed);
}

/* Ends a connection: its unfinished calls fail with why (calls still waiting for it too, when it
 * never opened). Never from inside an nghttp2 callback. */
static void conn_fail(struct conn *k, const char *why)
{
    struct dr_h2c *c = k->c;

    if (k->dead) {
        return;
    }
    for (struct dr_h2c_call *call = c->calls; call; call = call->next) {
        if (call->conn == k || (!k->open && !call->conn && !call->stream_id)) {
            call->conn = NULL;
            finish(call, DR_EIO, why);
        }
    }
    conn_close(k);
}

static void start_call(struct conn *k, struct dr_h2c_call *call)
{
    nghttp2_data_provider prd = {.source.ptr = call, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(k->session, NULL, call->nva, call->nnv,
                                        call->body ? &prd : NULL, call);

    if (id < 0) {
        finish(call, DR_EIO, nghttp2_strerror(id));
        return;
    }
    call->conn = k;
    call->stream_id = id;
}

static void start_waiting(struct conn *k)
{
    for (struct dr_h2c_call *call = k->c->calls; call; call = call->next) {
        if (!call->finished && !call->conn && !call->stream_id) {
            start_call(k, call);
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    buf->base = dr_xmalloc(65536);
    buf->len = 65536;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *k = s->data;
    struct dr_h2c *c = k->c;

    if (n < 0) {
        conn_fail(k, n == UV_EOF ? "connection closed by the server" : uv_strerror((int)n));
    } else if (n > 0 && !k->dead) {
        ssize_t rv = nghttp2_session_mem_recv(k->session, (const uint8_t *)buf->base, (size_t)n);
        if (rv < 0) {
            conn_fail(k, nghttp2_strerror((int)rv));
        } else {
            if (!k->retired && !nghttp2_session_check_request_allowed(k->session)) {
                k->retired = 1; /* GOAWAY: new requests go to a new connection */
                if (c->conn == k) {
                    c->conn = NULL;
                }
            }
            flush(k);
        }
    }
    free(buf->base);
    dispatch(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *k = req->data;
    nghttp2_session_callbacks *cbs;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW},
    };
    int rc;

    if (k->dead) {
        return;
    }
    if (status < 0) {
        if (k->next_addr) { /* e.g. "localhost" is ::1 first and the server is on 127.0.0.1 */
            struct conn *k2 = conn_new(k->c);
            k2->addrs = k->addrs;
            k->addrs = NULL;
            connect_next(k2, k->next_addr);
            conn_close(k);
            return;
        }
        conn_fail(k, uv_strerror(status));
        dispatch(k->c);
        return;
    }
    if (k->addrs) {
        uv_freeaddrinfo(k->addrs);
        k->addrs = k->next_addr = NULL;
    }
    uv_tcp_nodelay(&k->tcp, 1);
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    rc = nghttp2_session_client_new(&k->session, cbs, k);
    nghttp2_session_callbacks_del(cbs);
    if (rc == 0) {
        rc = nghttp2_submit_settings(k->session, NGHTTP2_FLAG_NONE, settings,
                                     DR_ARRAY_LEN(settings));
    }
    if (rc == 0) {
        rc = nghttp2_session_set_local_window_size(k->session, NGHTTP2_FLAG_NONE, 0, WINDOW);
    }
    if (rc == 0) {
        rc = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
    }
    if (rc != 0) {
        conn_fail(k, "cannot set up the HTTP/2 session");
        dispatch(k->c);
        return;
    }
    k->open = 1;
    start_waiting(k);
    flush(k);
    dispatch(k->c);
}

/* Connects k to ai (k->addrs owns it); on failure k fails with its calls. */
static void connect_next(struct conn *k, struct addrinfo *ai)
{
    int rc;

    k->next_addr = ai->ai_next;
    k->connect.data = k;
    rc = uv_tcp_connect(&k->connect, &k->tcp, ai->ai_addr, on_connect);
    if (rc < 0) {
        conn_fail(k, uv_strerror(rc));
        dispatch(k->c);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct conn *k = req->data;

    k->resolving = 0;
    if (k->dead) { /* failed or destroyed while resolving: the handle was never opened */
        if (res) {
            uv_freeaddrinfo(res);
        }
        uv_close((uv_handle_t *)&k->tcp, conn_closed);
        return;
    }
    if (status < 0 || !res) {
        conn_fail(k, status < 0 ? uv_strerror(status) : "no address");
        dispatch(k->c);
        return;
    }
    k->addrs = res;
    connect_next(k, res);
}

/* A new connection, the client's current one (not yet connected). */
static struct conn *conn_new(struct dr_h2c *c)
{
    struct conn *k = dr_xcalloc(1, sizeof(*k));

    k->c = c;
    uv_tcp_init(c->loop, &k->tcp);
    k->tcp.data = k;
    k->gai.data = k;
    k->next = c->conns;
    c->conns = k;
    c->conn = k;
    c->open_handles++;
    return k;
}

static void ensure_conn(struct dr_h2c *c)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct conn *k;
    int rc;

    if (c->conn) {
        if (c->conn->open) {
            start_waiting(c->conn);
            flush(c->conn);
        }
        return;
    }
    k = conn_new(c);
    k->resolving = 1;
    rc = uv_getaddrinfo(c->loop, &k->gai, on_resolved, c->host, c->port, &hints);
    if (rc < 0) {
        k->resolving = 0;
        conn_fail(k, uv_strerror(rc)); /* the calls' callbacks run on the next tick */
    }
}

/* ---- deadlines ---- */

static void on_tick(uv_timer_t *t)
{
    struct dr_h2c *c = t->data;
    int64_t now = dr_mono_ms();
    int any = 0;

    for (struct dr_h2c_call *call = c->calls; call; call = call->next) {
        if (!call->finished && call->deadline_ms <= now) {
            struct conn *k = call->conn;
            finish(call, DR_ETIMEOUT, "no answer in time");
            if (k && !k->dead && call->stream_id) {
                nghttp2_submit_rst_stream(k->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                          NGHTTP2_CANCEL);
            }
        }
        any |= call->finished;
    }
    for (struct conn *k = c->conns; k; k = k->next) {
        flush(k);
    }
    if (any) {
        dispatch(c);
    }
}

/* ---- API ---- */

static void timer_closed(uv_handle_t *h)
{
    struct dr_h2c *c = h->data;

    if (--c->open_handles == 0 && c->closing) {
        free(c);
    }
}

int dr_h2c_create(uv_loop_t *loop, const char *authority, struct dr_h2c **out)
{
    struct dr_h2c *c;
    const char *colon, *end;
    size_t hlen;

    *out = NULL;
    if (!loop || !authority || !*authority || strpbrk(authority, "/@?# \t\r\n")) {
        return DR_EINVAL;
    }
    end = authority + strlen(authority);
    colon = strrchr(authority, ':');
    if (colon && end[-1] == ']') {
        colon = NULL; /* "[v6]" without a port */
    }
    if (colon &&
        (colon == authority || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))) {
        return DR_EINVAL;
    }
    hlen = colon ? (size_t)(colon - authority) : (size_t)(end - authority);
    c = dr_xcalloc(1, sizeof(*c));
    c->loop = loop;
    if (authority[0] == '[' && hlen >= 2 && authority[hlen - 1] == ']') {
        c->host = dr_xstrndup(authority + 1, hlen - 2);
    } else {
        c->host = dr_xstrndup(authority, hlen);
    }
    c->port = dr_xstrdup(colon ? colon + 1 : "80");
    c->authority = dr_xstrdup(authority);
    c->prefix = dr_xmalloc(strlen(authority) + 9);
    sprintf(c->prefix, "http://%s/", authority);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    uv_timer_start(&c->timer, on_tick, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&c->timer);
    *out = c;
    return DR_OK;
}

void dr_h2c_destroy(struct dr_h2c *c)
{
    if (!c || c->closing) {
        return;
    }
    c->closing = 1;
    while (c->calls) {
        struct dr_h2c_call *call = c->calls;
        unlink_call(call);
        if (!call->cancelled) {
            struct dr_hc_resp resp = {.body = "", .grpc_status = -1, .error = "client destroyed"};
            call->cb(call->ctx, DR_EUNAVAIL, &resp);
        }
        free_call(call);
    }
    for (struct conn *k = c->conns; k; k = k->next) {
        if (!k->dead) {
            k->dead = 1;
            if (k->session) {
                nghttp2_session_del(k->session);
                k->session = NULL;
            }
            if (k->resolving) {
                uv_cancel((uv_req_t *)&k->gai);
            } else {
                uv_close((uv_handle_t *)&k->tcp, conn_closed);
            }
        }
    }
    c->conn = NULL;
    free(c->host);
    free(c->port);
    free(c->authority);
    free(c->prefix);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}

static void add_nv(struct dr_h2c_call *call, const char *name, const char *value)
{
    nghttp2_nv *nv = &call->nva[call->nnv++];

    nv->name = (uint8_t *)name;
    nv->namelen = strlen(name);
    nv->value = (uint8_t *)value;
    nv->valuelen = strlen(value);
    nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* Copies the request line and headers into nghttp2's form (names lower-cased, as HTTP/2 wants). */
static int build_headers(struct dr_h2c *c, struct dr_h2c_call *call, const char *method,
                         const char *path, const char *const *headers)
{
    size_t n = 4, bytes = strlen(method) + strlen(path) + strlen(c->authority) + 64;
    char *p;

    for (const char *const *h = headers; h && *h; h++) {
        n++;
        bytes += strlen(*h) + 2;
    }
    call->nva = dr_xcalloc(n + 1, sizeof(*call->nva));
    call->strings = p = dr_xmalloc(bytes);

    add_nv(call, ":method", method);
    add_nv(call, ":scheme", "http");
    add_nv(call, ":authority", c->authority);
    add_nv(call, ":path", path);
    for (const char *const *h = headers; h && *h; h++) {
        const char *colon = strchr(*h, ':');
        const char *v;
        char *name = p;

        if (!colon || colon == *h || strpbrk(*h, "\r\n")) {
            return DR_EINVAL;
        }
        for (const char *q = *h; q < colon; q++) {
            *p++ = (char)tolower((unsigned char)*q);
        }
        *p++ = '\0';
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++) {
        }
        if (!*v || strcmp(name, "host") == 0 || strcmp(name, "connection") == 0 ||
            strcmp(name, "expect") == 0) {
            p = name; /* empty (curl's "remove this header"), or not allowed in HTTP/2 */
            continue;
        }
        add_nv(call, name, v);
    }
    return DR_OK;
}

static int known_method(const char *m)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};

    for (size_t i = 0; i < DR_ARRAY_LEN(methods); i++) {
        if (strcmp(m, methods[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

int dr_h2c_submit(struct dr_h2c *c, const struct dr_hc_req *req, dr_hc_cb cb, void *ctx,
                  struct dr_h2c_call **out)
{
    struct dr_h2c_call *call;
    const char *method;
    size_t plen;
    int err;

    if (out) {
        *out = NULL;
    }
    if (!c || !req || !cb || !req->url || (req->body_len && !req->body)) {
        return DR_EINVAL;
    }
    if (c->closing) {
        return DR_EUNAVAIL;
    }
    method = req->method ? req->method : "GET";
    plen = strlen(c->prefix) - 1;
    if (strncmp(req->url, c->prefix, plen) != 0 || req->url[plen] != '/' || !known_method(method) ||
        strpbrk(req->url, " \r\n")) {
        return DR_EINVAL;
    }
    call = dr_xcalloc(1, sizeof(*call));
    call->c = c;
    call->cb = cb;
    call->ctx = ctx;
    call->grpc_status = -1;
    dr_buf_init(&call->resp, req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE);
    err = build_headers(c, call, method, req->url + plen, req->headers);
    if (err) {
        free_call(call);
        return err;
    }
    if (req->body_len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
        strcmp(method, "PATCH") == 0) {
        call->body = dr_xmalloc(req->body_len + 1);
        if (req->body_len) {
            memcpy(call->body, req->body, req->body_len);
        }
        call->body_len = req->body_len;
    }
    call->t0_ns = dr_mono_ns();
    call->deadline_ms = dr_mono_ms() + (req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS);
    call->next = c->calls;
    if (c->calls) {
        c->calls->prev = call;
    }
    c->calls = call;
    ensure_conn(c);
    if (out) {
        *out = call;
    }
    return DR_OK;
}

void dr_h2c_cancel(struct dr_h2c_call *call)
{
    struct conn *k;

    if (!call) {
        return;
    }
    call->cancelled = 1;
    k = call->conn;
    if (!call->finished && k && !k->dead && call->stream_id) {
        /* the stream's body may still be read until nghttp2 closes it: freed then */
        nghttp2_submit_rst_stream(k->session, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
        flush(k);
        return;
    }
    if (!call->finished) {
        finish(call, DR_EUNAVAIL, NULL); /* never started: nothing refers to it */
    }
    unlink_call(call);
    free_call(call);
}
