#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/err.h"
#include "dr/http_client.h"
#include "dr/util.h"
#include "testsrv.h"

/* Routes: /status/N, /delay/MS, /hang, /big/N, /bigchunked/N, /echo */
static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    char hdr[256] = "";
    int n;

    if (sscanf(req->path, "/status/%d", &n) == 1) {
        resp->status = n;
        if (n != 204 && n != 304) {
            resp->body = malloc(32);
            resp->body_len = (size_t)snprintf(resp->body, 32, "status %d", n);
        }
        if (n == 429 || n == 503) {
            snprintf(resp->extra, sizeof(resp->extra), "Retry-After: 7\r\n");
        }
    } else if (sscanf(req->path, "/delay/%d", &n) == 1) {
        resp->delay_ms = n;
        resp->body = strdup("late");
        resp->body_len = 4;
    } else if (strcmp(req->path, "/hang") == 0) {
        resp->hang = 1;
    } else if (sscanf(req->path, "/big/%d", &n) == 1 || sscanf(req->path, "/bigchunked/%d", &n)) {
        resp->chunked = strncmp(req->path, "/bigchunked/", 12) == 0;
        resp->body = malloc((size_t)n);
        memset(resp->body, 'x', (size_t)n);
        resp->body_len = (size_t)n;
    } else if (strcmp(req->path, "/echo") == 0) {
        ts_header(req, "X-Test", hdr, sizeof(hdr));
        resp->body = malloc(req->body_len + 512);
        resp->body_len = (size_t)snprintf(resp->body, req->body_len + 512, "%s %s %s", req->method,
                                          hdr, req->body);
    } else {
        resp->status = 404;
    }
}

struct fx {
    uv_loop_t loop;
    struct testsrv srv;
    struct dr_hc *hc;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    if (ts_start(&f->srv, handler, NULL)) {
        return -1;
    }
    if (dr_hc_create(&f->loop, &f->hc)) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    int rc;

    dr_hc_destroy(f->hc);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&f->loop);
    ts_stop(&f->srv);
    free(f);
    assert_int_equal(rc, 0); /* every handle closed */
    return 0;
}

struct res {
    int calls;
    int err;
    long status;
    char body[256];
    size_t body_len;
    char retry_after[16];
};

static void on_resp(void *ctx, int err, const struct dr_hc_resp *resp)
{
    struct res *r = ctx;
    size_t n = resp->body_len < sizeof(r->body) - 1 ? resp->body_len : sizeof(r->body) - 1;

    assert_non_null(resp);
    assert_non_null(resp->body);
    r->calls++;
    r->err = err;
    r->status = resp->status;
    memcpy(r->body, resp->body, n);
    r->body[n] = '\0';
    r->body_len = resp->body_len;
    if (resp->retry_after) {
        snprintf(r->retry_after, sizeof(r->retry_after), "%s", resp->retry_after);
    }
    if (err) {
        assert_non_null(resp->error);
    }
}

static void get(struct fx *f, const char *path, const struct dr_hc_req *tmpl, struct res *r)
{
    char url[256];
    struct dr_hc_req req = {0};

    if (tmpl) {
        req = *tmpl;
    }
    ts_url(&f->srv, path, url, sizeof(url));
    req.url = url;
    memset(r, 0, sizeof(*r));
    assert_int_equal(dr_hc_request(f->hc, &req, on_resp, r), DR_OK);
    assert_int_equal(r->calls, 0); /* never from inside the call */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r->calls, 1);
}

static void status_codes(void **state)
{
    struct fx *f = *state;
    static const int codes[] = {200, 201, 204, 400, 404, 429, 500, 503};
    struct res r;

    for (size_t i = 0; i < DR_ARRAY_LEN(codes); i++) {
        char path[32], want[32];
        snprintf(path, sizeof(path), "/status/%d", codes[i]);
        get(f, path, NULL, &r);
        assert_int_equal(r.err, DR_OK);
        assert_int_equal(r.status, codes[i]);
        if (codes[i] == 204) {
            assert_int_equal(r.body_len, 0);
        } else {
            snprintf(want, sizeof(want), "status %d", codes[i]);
            assert_string_equal(r.body, want);
        }
        if (codes[i] == 429 || codes[i] == 503) {
            assert_string_equal(r.retry_after, "7");
        } else {
            assert_string_equal(r.retry_after, "");
        }
    }
}

static void methods_headers_body(void **state)
{
    struct fx *f = *state;
    static const char *const headers[] = {"X-Test: abc", "Content-Type: text/plain", NULL};
    static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE"};
    struct res r;

    for (size_t i = 0; i < DR_ARRAY_LEN(methods); i++) {
        struct dr_hc_req req = {
            .method = methods[i], .headers = headers, .body = "hello body", .body_len = 10};
        char want[64];
        get(f, "/echo", &req, &r);
        assert_int_equal(r.err, DR_OK);
        assert_int_equal(r.status, 200);
        snprintf(want, sizeof(want), "%s abc hello body", methods[i]);
        assert_string_equal(r.body, want);
    }
    /* POST without a body sends Content-Length: 0 */
    struct dr_hc_req empty = {.method = "POST"};
    get(f, "/echo", &empty, &r);
    assert_string_equal(r.body, "POST  ");

    /* A large body goes through without an Expect: 100-continue stall. */
    size_t big = 300000;
    char *body = malloc(big);
    memset(body, 'b', big);
    struct dr_hc_req large = {.method = "POST", .body = body, .body_len = big, .timeout_ms = 900};
    get(f, "/echo", &large, &r);
    free(body);
    assert_int_equal(r.err, DR_OK);
    assert_true(r.body_len == big + 6);
}

static void timeout(void **state)
{
    struct fx *f = *state;
    struct dr_hc_req req = {.timeout_ms = 300};
    struct res r;
    int64_t t0 = dr_mono_ms();

    get(f, "/delay/3000", &req, &r);
    assert_int_equal(r.err, DR_ETIMEOUT);
    assert_true(dr_mono_ms() - t0 < 2000);
    assert_true(dr_mono_ms() - t0 >= 250);

    get(f, "/hang", &req, &r);
    assert_int_equal(r.err, DR_ETIMEOUT);
    assert_int_equal(r.status, 0);
}

static void oversize(void **state)
{
    struct fx *f = *state;
    struct dr_hc_req req = {.max_response = 10000};
    struct res r;

    get(f, "/big/10000", &req, &r); /* exactly at the cap */
    assert_int_equal(r.err, DR_OK);
    assert_int_equal(r.body_len, 10000);
    get(f, "/big/10001", &req, &r); /* Content-Length known up front */
    assert_int_equal(r.err, DR_ETOOBIG);
    get(f, "/bigchunked/100000", &req, &r); /* no length: stopped while reading */
    assert_int_equal(r.err, DR_ETOOBIG);
    assert_int_equal(r.body_len, 0);
    get(f, "/bigchunked/9000", &req, &r);
    assert_int_equal(r.err, DR_OK);
    assert_int_equal(r.body_len, 9000);
}

#define NPAR 200

static void parallel(void **state)
{
    struct fx *f = *state;
    static struct res rs[NPAR];
    char url[128];
    struct dr_hc_req req = {.url = url, .timeout_ms = 20000};
    int64_t t0 = dr_mono_ms();

    ts_url(&f->srv, "/delay/100", url, sizeof(url));
    memset(rs, 0, sizeof(rs));
    for (int i = 0; i < NPAR; i++) {
        assert_int_equal(dr_hc_request(f->hc, &req, on_resp, &rs[i]), DR_OK);
    }
    assert_int_equal(dr_hc_in_flight(f->hc), NPAR);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < NPAR; i++) {
        assert_int_equal(rs[i].calls, 1);
        assert_int_equal(rs[i].err, DR_OK);
        assert_string_equal(rs[i].body, "late");
    }
    assert_int_equal(dr_hc_in_flight(f->hc), 0);
    /* One at a time would take 20 s. */
    assert_true(dr_mono_ms() - t0 < 5000);
    assert_true(ts_count(&f->srv, &f->srv.max_active) >= 50);
}

struct chain {
    struct fx *f;
    int left;
    int ok;
    char url[128];
};

static void chain_next(void *ctx, int err, const struct dr_hc_resp *resp)
{
    struct chain *c = ctx;
    struct dr_hc_req req = {.url = c->url};

    if (err == DR_OK && resp->status == 200) {
        c->ok++;
    }
    if (--c->left > 0) {
        assert_int_equal(dr_hc_request(c->f->hc, &req, chain_next, c), DR_OK);
    }
}

static void keepalive(void **state)
{
    struct fx *f = *state;
    struct chain c = {.f = f, .left = 20};
    struct dr_hc_req req = {.url = c.url};

    ts_url(&f->srv, "/status/200", c.url, sizeof(c.url));
    assert_int_equal(dr_hc_request(f->hc, &req, chain_next, &c), DR_OK);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(c.ok, 20);
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 20);
    assert_int_equal(ts_count(&f->srv, &f->srv.nconn), 1); /* one connection, reused */
}

static void http2_falls_back_on_plain_http(void **state)
{
    struct fx *f = *state;
    struct dr_hc_req req = {.http2 = 1};
    struct res r;

    get(f, "/status/200", &req, &r);
    assert_int_equal(r.err, DR_OK);
    assert_int_equal(r.status, 200);
}

/* HTTP/2 without TLS (prior knowledge) goes through nghttp2 (h2c.c): a server that speaks only
 * HTTP/1.1 fails the request with DR_EIO, reported once. Answers from a real HTTP/2 server are in
 * test_pubsub_emulator.c (its gRPC group). */
static void h2c_against_http1_server(void **state)
{
    struct fx *f = *state;
    struct dr_hc_req req = {.http2 = 2};
    struct res r;

    get(f, "/status/200", &req, &r);
    assert_int_equal(r.err, DR_EIO);
    assert_int_equal(r.status, 0);
}

static void refused(void **state)
{
    struct fx *f = *state;
    struct res r = {0};
    struct dr_hc_req req = {.url = "http://127.0.0.1:1/", .timeout_ms = 2000};

    assert_int_equal(dr_hc_request(f->hc, &req, on_resp, &r), DR_OK);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, DR_EIO);
    assert_int_equal(r.status, 0);
}

static void bad_args(void **state)
{
    struct fx *f = *state;
    struct res r = {0};
    static const char *const crlf[] = {"X-A: b\r\nX-Injected: 1", NULL};
    static const char *const noname[] = {": value", NULL};
    struct dr_hc_req cases[] = {
        {.url = NULL},
        {.url = "not a url"},
        {.url = "ftp://127.0.0.1/x"},
        {.url = "file:///etc/passwd"},
        {.url = "http://127.0.0.1/", .method = "BREW"},
        {.url = "http://127.0.0.1/", .headers = crlf},
        {.url = "http://127.0.0.1/", .headers = noname},
        {.url = "http://127.0.0.1/", .method = "GET", .body = "x", .body_len = 1},
        {.url = "http://127.0.0.1/", .method = "POST", .body = NULL, .body_len = 5},
        {.url = "http://127.0.0.1/", .http2 = 7},
    };

    for (size_t i = 0; i < DR_ARRAY_LEN(cases); i++) {
        assert_int_equal(dr_hc_request(f->hc, &cases[i], on_resp, &r), DR_EINVAL);
    }
    assert_int_equal(dr_hc_request(f->hc, &cases[1], NULL, &r), DR_EINVAL);
    assert_int_equal(dr_hc_in_flight(f->hc), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 0);
}

static void cancel(void **state)
{
    struct fx *f = *state;
    struct res r1 = {0}, r2 = {0};
    char url[128];
    struct dr_hc_req req = {.url = url};
    struct dr_hc_call *call = NULL;

    ts_url(&f->srv, "/delay/50", url, sizeof(url));
    assert_int_equal(dr_hc_submit(f->hc, &req, on_resp, &r1, &call), DR_OK);
    assert_non_null(call);
    assert_int_equal(dr_hc_request(f->hc, &req, on_resp, &r2), DR_OK);
    dr_hc_cancel(call);
    assert_int_equal(dr_hc_in_flight(f->hc), 1);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r1.calls, 0);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.err, DR_OK);
}

struct destroyer {
    struct fx *f;
    int calls;
    int errs[8];
};

static void count_err(void *ctx, int err, const struct dr_hc_resp *resp)
{
    struct destroyer *d = ctx;
    d->errs[d->calls++] = err;
}

static void destroy_on_timer(uv_timer_t *t)
{
    struct destroyer *d = t->data;
    dr_hc_destroy(d->f->hc);
    d->f->hc = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

static void destroy_cancels(void **state)
{
    struct fx *f = *state;
    struct destroyer d = {.f = f};
    char url[128];
    struct dr_hc_req req = {.url = url};
    uv_timer_t t;

    ts_url(&f->srv, "/hang", url, sizeof(url));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(dr_hc_request(f->hc, &req, count_err, &d), DR_OK);
    }
    uv_timer_init(&f->loop, &t);
    t.data = &d;
    uv_timer_start(&t, destroy_on_timer, 100, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(d.calls, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(d.errs[i], DR_EUNAVAIL);
    }
}

static void destroy_in_cb(void *ctx, int err, const struct dr_hc_resp *resp)
{
    struct destroyer *d = ctx;
    d->errs[d->calls++] = err;
    if (d->calls == 1) {
        struct dr_hc_req req = {.url = "http://127.0.0.1:1/"};
        dr_hc_destroy(d->f->hc);
        /* a destroyed client refuses new work */
        assert_int_equal(dr_hc_request(d->f->hc, &req, count_err, d), DR_EUNAVAIL);
        d->f->hc = NULL;
    }
}

static void destroy_from_callback(void **state)
{
    struct fx *f = *state;
    struct destroyer d = {.f = f};
    char fast[128], slow[128];
    struct dr_hc_req r1 = {.url = fast}, r2 = {.url = slow};

    ts_url(&f->srv, "/status/200", fast, sizeof(fast));
    ts_url(&f->srv, "/hang", slow, sizeof(slow));
    assert_int_equal(dr_hc_request(f->hc, &r2, destroy_in_cb, &d), DR_OK);
    assert_int_equal(dr_hc_request(f->hc, &r1, destroy_in_cb, &d), DR_OK);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(d.calls, 2);
    assert_int_equal(d.errs[0], DR_OK);
    assert_int_equal(d.errs[1], DR_EUNAVAIL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(status_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(methods_headers_body, setup, teardown),
        cmocka_unit_test_setup_teardown(timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(oversize, setup, teardown),
        cmocka_unit_test_setup_teardown(parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(http2_falls_back_on_plain_http, setup, teardown),
        cmocka_unit_test_setup_teardown(h2c_against_http1_server, setup, teardown),
        cmocka_unit_test_setup_teardown(refused, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(destroy_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(destroy_from_callback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
