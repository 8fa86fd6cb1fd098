/* src/http/server.c on a real server on its own loop: whole numbers and yes-or-no values from the
 * query string (dr_http_query_int(), dr_http_query_bool(): what a client sends after "n=" or
 * "b=" and what a handler gets from it), and header values as a handler gets them
 * (dr_http_header()). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dr/err.h"
#include "dr/http.h"

#define DEFAULT_VALUE 42
#define DEFAULT_FLAG  7

struct fx {
    uv_loop_t loop;
    uv_timer_t deadline;
    struct dr_http_server *srv;
    int timed_out;
    /* what the handler is asked for and what it got */
    int64_t min, max;
    int calls, rc;
    int64_t value;
    char err[128];
    int brc, flag; /* dr_http_query_bool() for "b" */
    char berr[128];
    char header[128]; /* on_header: the value of X-V, "(none)" without one */
    uv_tcp_t *taken[64]; /* streams on_take took over */
    int ntaken;
};

static void on_query(struct dr_http_req *req, void *ctx)
{
    struct fx *f = ctx;

    f->value = DEFAULT_VALUE;
    f->err[0] = '\0';
    f->rc = dr_http_query_int(req, "n", f->min, f->max, &f->value, f->err, sizeof(f->err));
    f->flag = DEFAULT_FLAG;
    f->berr[0] = '\0';
    f->brc = dr_http_query_bool(req, "b", &f->flag, f->berr, sizeof(f->berr));
    f->calls++;
    dr_http_respond(req, 204, "text/plain", "", 0);
}

static void on_header(struct dr_http_req *req, void *ctx)
{
    struct fx *f = ctx;
    const char *v = dr_http_header(req, "x-v");

    snprintf(f->header, sizeof(f->header), "%s", v ? v : "(none)");
    f->calls++;
    dr_http_respond(req, 204, "text/plain", "", 0);
}

/* Takes the connection over, as the WebSocket and SSE handlers do, and keeps it open. */
static void on_take(struct dr_http_req *req, void *ctx)
{
    struct fx *f = ctx;
    uv_tcp_t *t = NULL;
    char *extra = NULL;
    size_t extra_len = 0;

    if (f->ntaken < 64 && dr_http_hijack(req, &t, &extra, &extra_len) == DR_OK) {
        f->taken[f->ntaken++] = t;
    }
    free(extra);
    f->calls++;
}

static void free_on_close(uv_handle_t *h)
{
    free(h);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &f->deadline);
    f->deadline.data = f;
    if (dr_http_server_create(&f->loop, NULL, &f->srv) != DR_OK ||
        dr_http_route(f->srv, "GET", "/q", on_query, f) != DR_OK ||
        dr_http_route(f->srv, "GET", "/h", on_header, f) != DR_OK ||
        dr_http_route(f->srv, "GET", "/take", on_take, f) != DR_OK ||
        dr_http_server_listen(f->srv, "127.0.0.1", 0) != DR_OK) {
        return -1;
    }
    *state = f;
    return 0;
}

/* setup() with a request timeout of 100 ms and an idle timeout of 20 s */
static int setup_short(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct dr_http_limits lim = {.request_timeout_ms = 100, .idle_timeout_ms = 20000};

    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &f->deadline);
    f->deadline.data = f;
    if (dr_http_server_create(&f->loop, &lim, &f->srv) != DR_OK ||
        dr_http_route(f->srv, "GET", "/h", on_header, f) != DR_OK ||
        dr_http_server_listen(f->srv, "127.0.0.1", 0) != DR_OK) {
        return -1;
    }
    *state = f;
    return 0;
}

/* setup() with a head limit above the HTTP parser's own cap (80 KB) */
static int setup_big_head(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct dr_http_limits lim = {.max_header_bytes = 256 * 1024};

    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &f->deadline);
    f->deadline.data = f;
    if (dr_http_server_create(&f->loop, &lim, &f->srv) != DR_OK ||
        dr_http_route(f->srv, "GET", "/h", on_header, f) != DR_OK ||
        dr_http_server_listen(f->srv, "127.0.0.1", 0) != DR_OK) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    dr_http_server_stop(f->srv);
    for (int i = 0; i < f->ntaken; i++) {
        uv_close((uv_handle_t *)f->taken[i], free_on_close);
    }
    uv_close((uv_handle_t *)&f->deadline, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    dr_http_server_destroy(f->srv);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void on_deadline(uv_timer_t *t)
{
    struct fx *f = t->data;

    f->timed_out = 1;
    uv_stop(&f->loop);
}

/* Sends the request head in pieces, each cut off at a '|' in it, the server reading each piece
 * before the next is sent; then runs the loop until the handler has run (or 5 s have passed). */
static void send_head(struct fx *f, const char *head)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), calls = f->calls;

    assert_true(fd >= 0);
    a.sin_port = htons((uint16_t)dr_http_server_port(f->srv));
    /* the kernel completes the connection from the listen backlog: no loop turn needed */
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    uv_timer_start(&f->deadline, on_deadline, 5000, 0);
    for (const char *p = head; *p;) {
        size_t n = strcspn(p, "|");

        assert_int_equal(send(fd, p, n, 0), (ssize_t)n);
        p += n + (p[n] == '|');
        if (*p) {
            /* a turn or two of the loop: the server accepts, then reads what is there */
            for (int i = 0; i < 3; i++) {
                uv_run(&f->loop, UV_RUN_NOWAIT);
                usleep(2000);
            }
        }
    }
    while (f->calls == calls && !f->timed_out) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&f->deadline);
    close(fd);
    assert_false(f->timed_out);
}

/* Sends GET /q?query and runs the loop until the handler has run. */
static void request(struct fx *f, const char *query)
{
    char head[512];

    snprintf(head, sizeof(head), "GET /q?%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
             query);
    send_head(f, head);
}

static void taken(struct fx *f, const char *query, int64_t want)
{
    request(f, query);
    if (f->rc != DR_OK) {
        fail_msg("%s: rc %d (%s), expected %lld", query, f->rc, f->err, (long long)want);
    }
    assert_int_equal(f->value, want);
}

/* Refused: DR_EINVAL, the default left alone, and an error naming the parameter. */
static void refused(struct fx *f, const char *query, const char *err_part)
{
    request(f, query);
    if (f->rc != DR_EINVAL) {
        fail_msg("%s: rc %d (value %lld), expected DR_EINVAL", query, f->rc, (long long)f->value);
    }
    assert_int_equal(f->value, DEFAULT_VALUE);
    assert_non_null(strstr(f->err, "n: "));
    if (!strstr(f->err, err_part)) {
        fail_msg("%s: error '%s' does not say '%s'", query, f->err, err_part);
    }
}

static void bounded(void **state)
{
    struct fx *f = *state;

    f->min = -5;
    f->max = 1000;
    taken(f, "n=7", 7);
    taken(f, "n=0", 0);
    taken(f, "n=1000", 1000);
    taken(f, "n=-5", -5);
    taken(f, "n=007", 7);
    taken(f, "a=1&n=12&n=13", 12); /* the first one counts */
    taken(f, "%6E=9", 9);          /* the name percent-encoded */
    taken(f, "n=%31%32", 12);

    request(f, "");
    assert_int_equal(f->rc, DR_ENOTFOUND);
    assert_int_equal(f->value, DEFAULT_VALUE);
    request(f, "nn=5&m=1");
    assert_int_equal(f->rc, DR_ENOTFOUND);

    const char *range = "n: expected a whole number from -5 to 1000";
    refused(f, "n=", range);
    refused(f, "n", range);
    refused(f, "n=1001", range);
    refused(f, "n=-6", range);
    refused(f, "n=12abc", range);
    refused(f, "n=+5", range);   /* '+' is a space in a query: " 5" */
    refused(f, "n=%2B5", range); /* "+5" */
    refused(f, "n=%205", range); /* " 5" */
    refused(f, "n=5%20", range);
    refused(f, "n=5%00", range);
    refused(f, "n=0x10", range);
    refused(f, "n=1e3", range);
    refused(f, "n=1.0", range);
    refused(f, "n=-", range);
    refused(f, "n=--1", range);
    refused(f, "n=99999999999999999999", range);
    refused(f, "n=-99999999999999999999", range);
    /* longer than the parameter may be, whatever it holds */
    refused(f, "n=00000000000000000000000000000000000000000000000000000000000000001",
            "n: value too long (at most 63 bytes)");
}

static void unbounded(void **state)
{
    struct fx *f = *state;

    f->min = 1;
    f->max = INT64_MAX;
    taken(f, "n=1", 1);
    taken(f, "n=9223372036854775807", INT64_MAX);
    refused(f, "n=9223372036854775808", "n: expected a whole number, 1 or more");
    refused(f, "n=0", "n: expected a whole number, 1 or more");
    refused(f, "n=-1", "n: expected a whole number, 1 or more");

    f->min = INT64_MIN;
    f->max = 0;
    taken(f, "n=-9223372036854775808", INT64_MIN);
    refused(f, "n=-9223372036854775809", "from -9223372036854775808 to 0");
    refused(f, "n=1", "from -9223372036854775808 to 0");
}

static void flag_taken(struct fx *f, const char *query, int want)
{
    request(f, query);
    if (f->brc != DR_OK) {
        fail_msg("%s: rc %d (%s), expected %d", query, f->brc, f->berr, want);
    }
    assert_int_equal(f->flag, want);
}

/* Refused: DR_EINVAL, the default left alone, and an error naming the parameter. */
static void flag_refused(struct fx *f, const char *query)
{
    request(f, query);
    if (f->brc != DR_EINVAL) {
        fail_msg("%s: rc %d (flag %d), expected DR_EINVAL", query, f->brc, f->flag);
    }
    assert_int_equal(f->flag, DEFAULT_FLAG);
    assert_string_equal(f->berr, "b: expected true or false");
}

static void yes_or_no(void **state)
{
    struct fx *f = *state;

    flag_taken(f, "b=true", 1);
    flag_taken(f, "b=1", 1);
    flag_taken(f, "b=yes", 1);
    flag_taken(f, "b=false", 0);
    flag_taken(f, "b=0", 0);
    flag_taken(f, "b=no", 0);
    flag_taken(f, "b=%74rue", 1);
    flag_taken(f, "a=1&b=no&b=yes", 0); /* the first one counts */

    request(f, "n=1");
    assert_int_equal(f->brc, DR_ENOTFOUND);
    assert_int_equal(f->flag, DEFAULT_FLAG);

    flag_refused(f, "b=");
    flag_refused(f, "b");
    flag_refused(f, "b=maybe");
    flag_refused(f, "b=TRUE");
    flag_refused(f, "b=true%00x"); /* cut at the NUL, this would be "true" */
    flag_refused(f, "b=0%00");
    flag_refused(f, "b=true%20");
    flag_refused(f, "b=+true");
    flag_refused(f, "b=truetruetrue");
}

/* What the handler gets for the X-V header line "X-V:" line "\r\n" sent in pieces (cut at '|'). */
static void header_seen(struct fx *f, const char *line, const char *want)
{
    char head[512];

    snprintf(head, sizeof(head),
             "GET /h HTTP/1.1\r\nHost: t\r\nX-V:%s\r\nConnection: close\r\n\r\n", line);
    send_head(f, head);
    if (strcmp(f->header, want) != 0) {
        fail_msg("X-V:%s: the handler got '%s', expected '%s'", line, f->header, want);
    }
}

/* RFC 9110 5.5: the spaces and tabs around a field value are not part of it, however the value
 * arrives; those inside it are. */
static void header_values_trimmed(void **state)
{
    struct fx *f = *state;

    header_seen(f, "Bearer abc", "Bearer abc");
    header_seen(f, " Bearer abc ", "Bearer abc");
    header_seen(f, " Bearer abc\t", "Bearer abc");
    header_seen(f, "\t 10  \t ", "10");
    header_seen(f, " a \t b ", "a \t b");
    header_seen(f, "   ", "");
    header_seen(f, "", "");
    /* in pieces: the trailing whitespace in a piece of its own, or split itself */
    header_seen(f, " Bearer abc|  ", "Bearer abc");
    header_seen(f, " Bearer abc | \t|\t", "Bearer abc");
    header_seen(f, " Bea|rer |abc |", "Bearer abc");
    header_seen(f, " a |b ", "a b");
}

/*
 * A response still being written when the connection is taken over (a request, then an upgrade,
 * in one packet) and the client gone at once (RST): the write fails after the takeover. The
 * connection is the new owner's then: the server only frees its write, it does not close a
 * connection it no longer has (it did, and dereferenced the timer the takeover had closed).
 */
static void write_failing_after_takeover(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static const char reqs[] = "GET /h HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /take HTTP/1.1\r\nHost: t\r\n\r\n";
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    a.sin_port = htons((uint16_t)dr_http_server_port(f->srv));
    for (int i = 0; i < 40; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0), calls = f->calls;
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(send(fd, reqs, sizeof(reqs) - 1, 0), (ssize_t)(sizeof(reqs) - 1));
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
        close(fd); /* RST: the server's reads still get what came before it */
        uv_timer_start(&f->deadline, on_deadline, 5000, 0);
        while (f->calls < calls + 2 && !f->timed_out) {
            uv_run(&f->loop, UV_RUN_ONCE);
        }
        uv_timer_stop(&f->deadline);
        /* the write's callback comes on a later turn */
        for (int k = 0; k < 3; k++) {
            uv_run(&f->loop, UV_RUN_NOWAIT);
        }
        if (f->timed_out) {
            break; /* the RST came first and the server never read the requests: fine */
        }
    }
    assert_true(f->ntaken > 0);
}

/* Sends req on a new connection and runs the server until it has answered and closed the
 * connection, or 5 s have passed; what came back, NUL-terminated, in out. */
static void exchange(struct fx *f, const char *req, char *out, size_t outsz)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t n = 0;

    assert_true(fd >= 0);
    a.sin_port = htons((uint16_t)dr_http_server_port(f->srv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    shutdown(fd, SHUT_WR);
    f->timed_out = 0;
    uv_timer_start(&f->deadline, on_deadline, 5000, 0);
    while (!f->timed_out) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        ssize_t k = recv(fd, out + n, outsz - 1 - n, MSG_DONTWAIT);
        if (k == 0) {
            break; /* closed by the server */
        }
        if (k > 0) {
            n += (size_t)k;
        } else {
            usleep(1000);
        }
    }
    uv_timer_stop(&f->deadline);
    out[n] = '\0';
    close(fd);
    assert_false(f->timed_out);
}

static void expect_answer(struct fx *f, const char *req, const char *want, const char *unwanted)
{
    char out[8192];

    exchange(f, req, out, sizeof(out));
    if (strncmp(out, want, strlen(want)) != 0 || (unwanted && strstr(out, unwanted))) {
        fail_msg("%s\n-> got:\n%s\nexpected it to start with '%s'%s%s", req, out, want,
                 unwanted ? " and not to hold " : "", unwanted ? unwanted : "");
    }
}

/* RFC 9112 5.1 and 3.2: a field name with whitespace before its colon, an HTTP/1.1 request
 * without Host or any with two: 400, and nothing after it is read (a proxy in front may have
 * framed the body otherwise). */
static void head_framing_refused(void **state)
{
    struct fx *f = *state;

    expect_answer(f,
                  "POST /h HTTP/1.1\r\nHost: t\r\nContent-Length : 33\r\n\r\n"
                  "GET /h HTTP/1.1\r\nHost: t\r\n\r\n",
                  "HTTP/1.1 400", "HTTP/1.1 204");
    expect_answer(f,
                  "POST /h HTTP/1.1\r\nHost: t\r\nTransfer-Encoding\t: chunked\r\n\r\n"
                  "0\r\n\r\n",
                  "HTTP/1.1 400", "HTTP/1.1 204");
    expect_answer(f, "GET /h HTTP/1.1\r\nHost : t\r\n\r\n", "HTTP/1.1 400", NULL);
    expect_answer(f, "GET /h HTTP/1.1\r\nConnection: close\r\n\r\n", "HTTP/1.1 400", NULL);
    expect_answer(f, "GET /h HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
                  "HTTP/1.1 400", NULL);
    expect_answer(f, "GET /h HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", "HTTP/1.1 400", NULL);
    /* RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing; a coding other than
     * chunked is not understood (the handler would get the body still coded) */
    expect_answer(f, "POST /h HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                  "HTTP/1.1 400", "HTTP/1.1 204");
    expect_answer(f,
                  "POST /h HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                  "2\r\nab\r\n0\r\n\r\n",
                  "HTTP/1.1 501 Not Implemented", "HTTP/1.1 204");
    /* what stays accepted */
    expect_answer(f, "GET /h HTTP/1.0\r\n\r\n", "HTTP/1.1 204", NULL);
    expect_answer(f,
                  "GET /h HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n"
                  "Connection: close\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                  "HTTP/1.1 204", NULL);
    expect_answer(f, "GET /h HTTP/1.1\r\nhOsT: t\r\nConnection: close\r\n\r\n", "HTTP/1.1 204",
                  NULL);
}

/* A head past the HTTP parser's own cap is refused as one past max_header_bytes is: 431, not
 * a 400 for a malformed request (which it was, or not, depending on how the bytes arrived). */
static void parser_header_cap_is_431(void **state)
{
    struct fx *f = *state;
    size_t n = 100 * 1024;
    char *req = malloc(n + 64);

    strcpy(req, "GET /h HTTP/1.1\r\nHost: t\r\nX-Big: ");
    size_t at = strlen(req);
    memset(req + at, 'a', n);
    strcpy(req + at + n, "\r\n\r\n");
    expect_answer(f, req, "HTTP/1.1 431", NULL);
    free(req);
}

/* RFC 9110 10.1.1 and 15.2: an HTTP/1.0 client's Expect is ignored, and it gets no 1xx. */
static void no_continue_for_http10(void **state)
{
    struct fx *f = *state;

    expect_answer(f, "GET /h HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
                  "HTTP/1.1 204", "100 Continue");
    expect_answer(f,
                  "GET /h HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
                  "Connection: close\r\n\r\nab",
                  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204", NULL);
}

/* RFC 9110 15.5.6: a 405 names the methods the resource has. */
static void method_not_allowed_says_allow(void **state)
{
    struct fx *f = *state;
    char out[8192];

    exchange(f, "DELETE /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", out, sizeof(out));
    assert_true(strncmp(out, "HTTP/1.1 405", 12) == 0);
    if (!strstr(out, "\r\nAllow: GET, HEAD\r\n")) {
        fail_msg("no Allow: GET, HEAD in\n%s", out);
    }
}

/* A kept-alive connection waiting for its next request is idle: the idle timeout applies, not
 * the request timeout (which starts with the request's first byte). */
static void keepalive_waits_the_idle_timeout(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static const char req[] = "GET /h HTTP/1.1\r\nHost: t\r\n\r\n";
    int fd = socket(AF_INET, SOCK_STREAM, 0), calls = f->calls;
    char buf[4096];

    a.sin_port = htons((uint16_t)dr_http_server_port(f->srv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    uv_timer_start(&f->deadline, on_deadline, 5000, 0);
    while (f->calls == calls && !f->timed_out) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&f->deadline);
    assert_false(f->timed_out);
    /* four request timeouts later */
    f->timed_out = 0;
    uv_timer_start(&f->deadline, on_deadline, 400, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    ssize_t k = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_true(k > 0);
    buf[k] = '\0';
    assert_true(strncmp(buf, "HTTP/1.1 204", 12) == 0);
    k = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (k >= 0) {
        buf[k > 0 ? k : 0] = '\0';
        fail_msg("the server ended an idle kept-alive connection: %zd bytes: %s", k, buf);
    }
    /* and it still serves it */
    calls = f->calls;
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    f->timed_out = 0;
    uv_timer_start(&f->deadline, on_deadline, 5000, 0);
    while (f->calls == calls && !f->timed_out) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&f->deadline);
    assert_false(f->timed_out);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(unbounded, setup, teardown),
        cmocka_unit_test_setup_teardown(yes_or_no, setup, teardown),
        cmocka_unit_test_setup_teardown(header_values_trimmed, setup, teardown),
        cmocka_unit_test_setup_teardown(write_failing_after_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(head_framing_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(parser_header_cap_is_431, setup_big_head, teardown),
        cmocka_unit_test_setup_teardown(no_continue_for_http10, setup, teardown),
        cmocka_unit_test_setup_teardown(method_not_allowed_says_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(keepalive_waits_the_idle_timeout, setup_short, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
