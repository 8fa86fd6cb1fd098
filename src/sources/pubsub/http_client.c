/*
 * libcurl multi on libuv. curl tells us which sockets to watch (socket_cb) and when to wake it
 * (timer_cb); libuv tells curl when a socket is ready (poll_cb) or the timer fired (timeout_cb),
 * through curl_multi_socket_action(). Completed transfers are collected by check_done() after
 * every socket_action, so completion callbacks only ever run from a libuv callback: never from
 * inside dr_hc_request() and never from inside a libcurl callback.
 *
 * Lifetime: the client is freed when it is closing and its last libuv handle (the timer, or a
 * socket poll) has finished closing. Until then a callback that destroyed the client can still
 * safely look at hc->closing.
 */
#include "dr/http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"
#include "sources/pubsub/h2c.h"

#define DEFAULT_TIMEOUT_MS   30000L
#define MAX_CONNECT_MS       10000L
#define DEFAULT_MAX_RESPONSE (16u * 1024 * 1024)
#define MAX_CONNECTIONS      256L
#define RETRY_AFTER_MAX      64
#define GRPC_MESSAGE_MAX     512

struct hc_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct dr_hc *hc;
    struct hc_sock *prev, *next;
};

struct dr_hc_call {
    struct dr_hc *hc;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    struct dr_buf resp;
    int toobig;
    char retry_after[RETRY_AFTER_MAX];
    int grpc_status;
    char grpc_message[GRPC_MESSAGE_MAX];
    char errbuf[CURL_ERROR_SIZE];
    dr_hc_cb cb;
    void *ctx;
    struct dr_h2c_call *h2; /* an HTTP/2 request without TLS, made by the peer's dr_h2c */
    struct dr_hc_call *prev, *next;
};

/* HTTP/2 without TLS ("h2c", prior knowledge) goes through nghttp2 (h2c.c), one client per
 * host:port: libcurl 7.88 cannot reuse such a connection. */
struct h2_peer {
    char *authority;
    struct dr_h2c *h2;
    struct h2_peer *next;
};

struct dr_hc {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct dr_hc_call *calls;
    struct hc_sock *socks;
    size_t in_flight;
    int closing;
    int open_handles; /* libuv handles not yet closed */
    char *ca_file;    /* DR_CA_FILE: the CA certificates to trust instead of the system's */
    struct h2_peer *h2_peers;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void maybe_free(struct dr_hc *hc)
{
    if (hc->closing && hc->open_handles == 0) {
        free(hc->ca_file);
        free(hc);
    }
}

static void sock_closed(uv_handle_t *h)
{
    struct hc_sock *sk = h->data;
    struct dr_hc *hc = sk->hc;

    free(sk);
    hc->open_handles--;
    maybe_free(hc);
}

static void sock_close(struct hc_sock *sk)
{
    struct dr_hc *hc = sk->hc;

    if (sk->prev) {
        sk->prev->next = sk->next;
    } else {
        hc->socks = sk->next;
    }
    if (sk->next) {
        sk->next->prev = sk->prev;
    }
    uv_poll_stop(&sk->poll);
    uv_close((uv_handle_t *)&sk->poll, sock_closed);
}

static void timer_closed(uv_handle_t *h)
{
    struct dr_hc *hc = h->data;

    hc->open_handles--;
    maybe_free(hc);
}

static void unlink_call(struct dr_hc_call *c)
{
    struct dr_hc *hc = c->hc;

    if (c->prev) {
        c->prev->next = c->next;
    } else {
        hc->calls = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    hc->in_flight--;
}

static void free_call(struct dr_hc_call *c)
{
    if (!c) {
        return;
    }
    if (c->easy) {
        curl_easy_cleanup(c->easy);
    }
    curl_slist_free_all(c->headers);
    free(c->body);
    dr_buf_cleanup(&c->resp);
    free(c);
}

static int map_result(const struct dr_hc_call *c, CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return DR_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return DR_ETIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return DR_ETOOBIG;
    case CURLE_WRITE_ERROR:
        return c->toobig ? DR_ETOOBIG : DR_EIO;
    default:
        return DR_EIO;
    }
}

/* Removes c from the multi handle, runs its callback with err, frees it. */
static void finish(struct dr_hc_call *c, int err)
{
    struct dr_hc *hc = c->hc;
    struct dr_hc_resp resp = {0};
    double total = 0;

    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &resp.status);
    curl_easy_getinfo(c->easy, CURLINFO_TOTAL_TIME, &total);
    if (hc->multi) {
        curl_multi_remove_handle(hc->multi, c->easy);
    }
    unlink_call(c);
    resp.total_s = total;
    if (err == DR_OK) {
        resp.body = c->resp.data ? c->resp.data : "";
        resp.body_len = c->resp.len;
    } else {
        resp.body = "";
        resp.error = c->errbuf[0] ? c->errbuf : dr_strerror(err);
    }
    resp.retry_after = c->retry_after[0] ? c->retry_after : NULL;
    resp.grpc_status = c->grpc_status;
    resp.grpc_message = c->grpc_message[0] ? c->grpc_message : NULL;
    c->cb(c->ctx, err, &resp);
    free_call(c);
}

static void check_done(struct dr_hc *hc)
{
    CURLMsg *m;
    int left;

    while (!hc->closing && (m = curl_multi_info_read(hc->multi, &left)) != NULL) {
        struct dr_hc_call *c = NULL;
        CURLcode rc;
        int err;

        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        err = map_result(c, rc);
        if (err) {
            DR_DEBUG("http_client", "request failed", "curl_code=%d err=\"%s\"", (int)rc,
                     dr_strerror(err));
        }
        finish(c, err);
    }
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct hc_sock *sk = h->data;
    struct dr_hc *hc = sk->hc;
    int flags = 0;
    int running;

    if (hc->closing) {
        return;
    }
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
    }
    curl_multi_socket_action(hc->multi, sk->fd, flags, &running);
    check_done(hc);
}

static void timeout_cb(uv_timer_t *t)
{
    struct dr_hc *hc = t->data;
    int running;

    if (hc->closing) {
        return;
    }
    curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(hc);
}

static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    struct dr_hc *hc = userp;

    if (hc->closing) {
        return 0;
    }
    if (timeout_ms < 0) {
        uv_timer_stop(&hc->timer);
    } else {
        /* 0 means "as soon as possible": the next loop iteration, never synchronously. */
        uv_timer_start(&hc->timer, timeout_cb, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

static int socket_fn(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct dr_hc *hc = userp;
    struct hc_sock *sk = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            sock_close(sk);
        }
        return 0;
    }
    if (hc->closing) {
        return 0;
    }
    if (!sk) {
        sk = dr_xcalloc(1, sizeof(*sk));
        if (uv_poll_init_socket(hc->loop, &sk->poll, s) != 0) {
            free(sk);
            return -1;
        }
        sk->fd = s;
        sk->hc = hc;
        sk->poll.data = sk;
        sk->next = hc->socks;
        if (hc->socks) {
            hc->socks->prev = sk;
        }
        hc->socks = sk;
        hc->open_handles++;
        curl_multi_assign(hc->multi, s, sk);
    }
    if (what & CURL_POLL_IN) {
        events |= UV_READABLE;
    }
    if (what & CURL_POLL_OUT) {
        events |= UV_WRITABLE;
    }
    uv_poll_start(&sk->poll, events, poll_cb);
    return 0;
}

int dr_hc_create(uv_loop_t *loop, struct dr_hc **out)
{
    struct dr_hc *hc;

    *out = NULL;
    if (!loop) {
        return DR_EINVAL;
    }
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        return DR_EIO;
    }
    hc = dr_xcalloc(1, sizeof(*hc));
    hc->loop = loop;
    hc->multi = curl_multi_init();
    if (!hc->multi) {
        free(hc);
        return DR_EIO;
    }
    uv_timer_init(loop, &hc->timer);
    hc->timer.data = hc;
    hc->open_handles = 1;
    if (getenv("DR_CA_FILE") && *getenv("DR_CA_FILE")) {
        hc->ca_file = dr_xstrdup(getenv("DR_CA_FILE"));
    }
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(hc->multi, CURLMOPT_MAXCONNECTS, MAX_CONNECTIONS);
    *out = hc;
    return DR_OK;
}

void dr_hc_destroy(struct dr_hc *hc)
{
    if (!hc || hc->closing) {
        return;
    }
    hc->closing = 1;
    /* their calls report DR_EUNAVAIL through h2_done() */
    while (hc->h2_peers) {
        struct h2_peer *p = hc->h2_peers;
        hc->h2_peers = p->next;
        dr_h2c_destroy(p->h2);
        free(p->authority);
        free(p);
    }
    while (hc->calls) {
        finish(hc->calls, DR_EUNAVAIL);
    }
    /* Closing the connections may still report CURL_POLL_REMOVE for their sockets. */
    curl_multi_cleanup(hc->multi);
    hc->multi = NULL;
    while (hc->socks) {
        sock_close(hc->socks);
    }
    uv_timer_stop(&hc->timer);
    uv_close((uv_handle_t *)&hc->timer, timer_closed);
}

size_t dr_hc_in_flight(const struct dr_hc *hc)
{
    return hc ? hc->in_flight : 0;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct dr_hc_call *c = ud;

    if (dr_buf_append(&c->resp, p, n) != DR_OK) {
        c->toobig = 1;
        return 0;
    }
    return n;
}

/* The value of header line p (len bytes) if its name is name (with the colon), else NULL; the
 * value's length goes to *vlen without surrounding blanks and the line end. */
static const char *header_value(const char *p, size_t len, const char *name, size_t nlen,
                                size_t *vlen)
{
    const char *v = p + nlen;
    const char *end = p + len;

    if (len < nlen || strncasecmp(p, name, nlen) != 0) {
        return NULL;
    }
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) {
        end--;
    }
    *vlen = (size_t)(end - v);
    return v;
}

static void copy_value(char *dst, size_t dstsz, const char *v, size_t vlen)
{
    if (vlen >= dstsz) {
        vlen = dstsz - 1;
    }
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
}

/* Headers, and with HTTP/2 the trailers after the body (where gRPC puts its status). */
static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    static const char retry[] = "retry-after:", gstatus[] = "grpc-status:",
                      gmessage[] = "grpc-message:";
    struct dr_hc_call *c = ud;
    const char *v;
    size_t vlen;

    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue or similar) */
        c->retry_after[0] = '\0';
        c->grpc_status = -1;
        c->grpc_message[0] = '\0';
    } else if ((v = header_value(p, n, retry, sizeof(retry) - 1, &vlen)) != NULL) {
        copy_value(c->retry_after, sizeof(c->retry_after), v, vlen);
    } else if ((v = header_value(p, n, gstatus, sizeof(gstatus) - 1, &vlen)) != NULL) {
        char num[8];
        int64_t code;
        copy_value(num, sizeof(num), v, vlen);
        c->grpc_status =
            dr_parse_i64(num, &code) == 0 && code >= 0 && code < 1000 ? (int)code : 2; /* UNKNOWN */
    } else if ((v = header_value(p, n, gmessage, sizeof(gmessage) - 1, &vlen)) != NULL) {
        copy_value(c->grpc_message, sizeof(c->grpc_message), v, vlen);
    }
    return n;
}

static int valid_url(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    int ok = 0;

    if (!u) {
        return 0;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK) {
        ok = strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0;
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

static int valid_header(const char *h)
{
    const char *colon = strchr(h, ':');

    return colon && colon != h && strpbrk(h, "\r\n") == NULL;
}

static int set_method(CURL *e, const char *method, int has_body)
{
    if (strcmp(method, "GET") == 0) {
        return has_body ? DR_EINVAL : DR_OK;
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return has_body ? DR_EINVAL : DR_OK;
    }
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        return DR_OK;
    }
    if (strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0 ||
        strcmp(method, "PATCH") == 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        return DR_OK;
    }
    return DR_EINVAL;
}

static void link_call(struct dr_hc *hc, struct dr_hc_call *c)
{
    c->next = hc->calls;
    if (hc->calls) {
        hc->calls->prev = c;
    }
    hc->calls = c;
    hc->in_flight++;
}

/* The end of an h2c request: the call leaves the client's list, then its callback runs. */
static void h2_done(void *ctx, int err, const struct dr_hc_resp *resp)
{
    struct dr_hc_call *c = ctx;
    dr_hc_cb cb = c->cb;
    void *cb_ctx = c->ctx;

    c->h2 = NULL;
    unlink_call(c);
    free_call(c);
    cb(cb_ctx, err, resp);
}

static int submit_h2c(struct dr_hc *hc, const struct dr_hc_req *req, dr_hc_cb cb, void *ctx,
                      struct dr_hc_call **call)
{
    const char *a = req->url + 7;
    size_t alen = strcspn(a, "/?#");
    struct h2_peer *p;
    struct dr_hc_call *c;
    int err;

    for (p = hc->h2_peers; p; p = p->next) {
        if (strlen(p->authority) == alen && memcmp(p->authority, a, alen) == 0) {
            break;
        }
    }
    if (!p) {
        p = dr_xcalloc(1, sizeof(*p));
        p->authority = dr_xstrndup(a, alen);
        err = dr_h2c_create(hc->loop, p->authority, &p->h2);
        if (err) {
            free(p->authority);
            free(p);
            return err;
        }
        p->next = hc->h2_peers;
        hc->h2_peers = p;
    }
    c = dr_xcalloc(1, sizeof(*c));
    c->hc = hc;
    c->cb = cb;
    c->ctx = ctx;
    err = dr_h2c_submit(p->h2, req, h2_done, c, &c->h2);
    if (err) {
        free(c);
        return err;
    }
    link_call(hc, c);
    if (call) {
        *call = c;
    }
    return DR_OK;
}

int dr_hc_submit(struct dr_hc *hc, const struct dr_hc_req *req, dr_hc_cb cb, void *ctx,
                 struct dr_hc_call **call)
{
    struct dr_hc_call *c = NULL;
    const char *method;
    long version;
    int err;

    if (call) {
        *call = NULL;
    }
    if (!hc || !req || !cb || !req->url || (req->body_len && !req->body)) {
        return DR_EINVAL;
    }
    if (hc->closing) {
        return DR_EUNAVAIL;
    }
    method = req->method ? req->method : "GET";
    if (!valid_url(req->url)) {
        return DR_EINVAL;
    }
    for (const char *const *h = req->headers; h && *h; h++) {
        if (!valid_header(*h)) {
            return DR_EINVAL;
        }
    }
    if (req->http2 == 2 && strncmp(req->url, "http://", 7) == 0) {
        return submit_h2c(hc, req, cb, ctx, call);
    }
    c = dr_xcalloc(1, sizeof(*c));
    c->hc = hc;
    c->cb = cb;
    c->ctx = ctx;
    c->grpc_status = -1;
    dr_buf_init(&c->resp, req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE);
    c->easy = curl_easy_init();
    if (!c->easy) {
        err = DR_EIO;
        goto out;
    }
    err = set_method(c->easy, method, req->body_len > 0);
    if (err) {
        goto out;
    }
    if (req->body || strcmp(method, "POST") == 0) {
        c->body = dr_xmalloc(req->body_len + 1);
        if (req->body_len) {
            memcpy(c->body, req->body, req->body_len);
        }
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
    }
    for (const char *const *h = req->headers; h && *h; h++) {
        struct curl_slist *n = curl_slist_append(c->headers, *h);
        if (!n) {
            err = DR_ENOMEM;
            goto out;
        }
        c->headers = n;
    }
    /* No "Expect: 100-continue" round trip before large bodies. */
    {
        struct curl_slist *n = curl_slist_append(c->headers, "Expect:");
        if (!n) {
            err = DR_ENOMEM;
            goto out;
        }
        c->headers = n;
    }
    switch (req->http2) {
    case 0:
        version = CURL_HTTP_VERSION_1_1;
        break;
    case 1:
        version = CURL_HTTP_VERSION_2TLS;
        break;
    case 2:
        version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
        break;
    default:
        err = DR_EINVAL;
        goto out;
    }
    curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, version);
    if (req->http2) {
        curl_easy_setopt(c->easy, CURLOPT_PIPEWAIT, 1L);
    }
    {
        long timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
        curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, timeout);
        curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS,
                         timeout < MAX_CONNECT_MS ? timeout : MAX_CONNECT_MS);
    }
    if (hc->ca_file) {
        curl_easy_setopt(c->easy, CURLOPT_CAINFO, hc->ca_file);
    }
    curl_easy_setopt(c->easy, CURLOPT_URL, req->url);
    curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c->easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->resp.limit);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, (char *)c);
    curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "data-router");

    link_call(hc, c);
    if (curl_multi_add_handle(hc->multi, c->easy) != CURLM_OK) {
        unlink_call(c);
        err = DR_EIO;
        goto out;
    }
    if (call) {
        *call = c;
    }
    c = NULL;
out:
    free_call(c);
    return err;
}

int dr_hc_request(struct dr_hc *hc, const struct dr_hc_req *req, dr_hc_cb cb, void *ctx)
{
    return dr_hc_submit(hc, req, cb, ctx, NULL);
}

void dr_hc_cancel(struct dr_hc_call *c)
{
    struct dr_hc *hc;

    if (!c) {
        return;
    }
    hc = c->hc;
    if (c->h2) {
        dr_h2c_cancel(c->h2);
    } else if (hc->multi) {
        curl_multi_remove_handle(hc->multi, c->easy);
    }
    unlink_call(c);
    free_call(c);
}
