/*
 * The HTTP/2 client (h2c.c) when the other side misbehaves: nothing listening, a server that
 * closes at once, one that speaks garbage, one that never answers. Each call ends exactly once
 * with an error, and the next call opens a new connection. Answers from a real server are
 * covered by test_pubsub_emulator.c (its gRPC group).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dr/err.h"
#include "dr/util.h"
#include "sources/pubsub/h2c.h"

enum mode { SILENT, CLOSE, GARBAGE };

struct server {
    int fd;
    int port;
    enum mode mode;
    int accepted;
    int stop;
    pthread_t thread;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    int held[16], nheld = 0;

    while (!s->stop) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) {
            continue;
        }
        __atomic_add_fetch(&s->accepted, 1, __ATOMIC_SEQ_CST);
        if (s->mode == CLOSE) {
            close(c);
        } else if (s->mode == GARBAGE) {
            static const char junk[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
            struct timeval tv = {.tv_sec = 5};
            char buf[256];
            /* a client that sends nothing must not hold this thread, and server_stop() with it */
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            (void)!read(c, buf, sizeof(buf));
            (void)!write(c, junk, sizeof(junk) - 1);
            close(c);
        } else if (nheld < 16) {
            held[nheld++] = c; /* reads nothing, answers nothing */
        } else {
            close(c);
        }
    }
    for (int i = 0; i < nheld; i++) {
        close(held[i]);
    }
    return NULL;
}

static void server_start(struct server *s, enum mode mode)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};

    memset(s, 0, sizeof(*s));
    s->mode = mode;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* accept wakes to see stop */
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* a port nothing listens on: bound, then closed */
static int dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

struct result {
    int calls;
    int err;
    char error[256];
};

static void on_done(void *ctx, int err, const struct dr_hc_resp *resp)
{
    struct result *r = ctx;
    r->calls++;
    r->err = err;
    snprintf(r->error, sizeof(r->error), "%s", resp->error ? resp->error : "");
}

static void never(void *ctx, int err, const struct dr_hc_resp *resp)
{
    fail_msg("a cancelled call's callback ran (err %d)", err);
}

static void run_until(uv_loop_t *loop, const int *flag, int want)
{
    int64_t deadline = dr_mono_ms() + 10000;
    while (*flag < want) {
        assert_true(dr_mono_ms() < deadline);
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static struct dr_hc_req req_to(char *url, size_t urlsz, int port, long timeout_ms)
{
    snprintf(url, urlsz, "http://127.0.0.1:%d/google.pubsub.v1.Subscriber/Pull", port);
    return (struct dr_hc_req){.method = "POST",
                              .url = url,
                              .body = "\0\0\0\0\0",
                              .body_len = 5,
                              .timeout_ms = timeout_ms};
}

static void finish_loop(uv_loop_t *loop, struct dr_h2c *c)
{
    dr_h2c_destroy(c);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void refused(void **state)
{
    uv_loop_t loop;
    struct dr_h2c *c;
    char hp[32], url[128];
    struct result r[2] = {0};
    int port = dead_port();
    struct dr_hc_req req = req_to(url, sizeof(url), port, 5000);

    uv_loop_init(&loop);
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
    assert_int_equal(dr_h2c_create(&loop, hp, &c), DR_OK);
    assert_int_equal(dr_h2c_submit(c, &req, on_done, &r[0], NULL), DR_OK);
    assert_int_equal(dr_h2c_submit(c, &req, on_done, &r[1], NULL), DR_OK);
    assert_int_equal(r[0].calls, 0); /* never from inside submit */
    run_until(&loop, &r[1].calls, 1);
    run_until(&loop, &r[0].calls, 1);
    assert_int_equal(r[0].err, DR_EIO);
    assert_int_equal(r[1].err, DR_EIO);
    assert_true(strlen(r[0].error) > 0);
    finish_loop(&loop, c);
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[1].calls, 1);
}

static void closed_or_garbage(void **state)
{
    for (int mode = CLOSE; mode <= GARBAGE; mode++) {
        uv_loop_t loop;
        struct dr_h2c *c;
        struct server s;
        char hp[32], url[128];
        struct result r[3] = {0};
        struct dr_hc_req req;

        server_start(&s, (enum mode)mode);
        req = req_to(url, sizeof(url), s.port, 5000);
        uv_loop_init(&loop);
        snprintf(hp, sizeof(hp), "127.0.0.1:%d", s.port);
        assert_int_equal(dr_h2c_create(&loop, hp, &c), DR_OK);
        assert_int_equal(dr_h2c_submit(c, &req, on_done, &r[0], NULL), DR_OK);
        assert_int_equal(dr_h2c_submit(c, &req, on_done, &r[1], NULL), DR_OK);
        run_until(&loop, &r[0].calls, 1);
        run_until(&loop, &r[1].calls, 1);
        assert_int_equal(r[0].err, DR_EIO);
        assert_int_equal(r[1].err, DR_EIO);
        /* the next call opens a new connection */
        assert_int_equal(dr_h2c_submit(c, &req, on_done, &r[2], NULL), DR_OK);
        run_until(&loop, &r[2].calls, 1);
        assert_int_equal(r[2].err, DR_EIO);
        assert_true(__atomic_load_n(&s.accepted, __ATOMIC_SEQ_CST) >= 2);
        finish_loop(&loop, c);
        server_stop(&s);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(r[i].calls, 1);
        }
    }
}

static void silent_server(void **state)
{
    uv_loop_t loop;
    struct dr_h2c *c;
    struct server s;
    char hp[32], url[128];
    struct result r = {0}, pending = {0};
    struct dr_hc_req req;
    struct dr_h2c_call *call;
    int64_t t0;

    server_start(&s, SILENT);
    req = req_to(url, sizeof(url), s.port, 600);
    uv_loop_init(&loop);
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", s.port);
    assert_int_equal(dr_h2c_create(&loop, hp, &c), DR_OK);

    /* no answer: the call times out, once */
    t0 = dr_mono_ms();
    assert_int_equal(dr_h2c_submit(c, &req, on_done, &r, NULL), DR_OK);
    run_until(&loop, &r.calls, 1);
    assert_int_equal(r.err, DR_ETIMEOUT);
    assert_true(dr_mono_ms() - t0 >= 600);

    /* a cancelled call never reports */
    assert_int_equal(dr_h2c_submit(c, &req, never, NULL, &call), DR_OK);
    dr_h2c_cancel(call);
    for (int i = 0; i < 50; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(20000);
    }

    /* destroying with a call outstanding reports it as unavailable, from inside destroy */
    req.timeout_ms = 60000;
    assert_int_equal(dr_h2c_submit(c, &req, on_done, &pending, NULL), DR_OK);
    uv_run(&loop, UV_RUN_NOWAIT);
    dr_h2c_destroy(c);
    assert_int_equal(pending.calls, 1);
    assert_int_equal(pending.err, DR_EUNAVAIL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    server_stop(&s);
    assert_int_equal(r.calls, 1);
}

static void bad_arguments(void **state)
{
    uv_loop_t loop;
    struct dr_h2c *c;
    struct result r = {0};
    char url[128];
    struct dr_hc_req req = req_to(url, sizeof(url), 1234, 1000);

    uv_loop_init(&loop);
    assert_int_equal(dr_h2c_create(&loop, "", &c), DR_EINVAL);
    assert_int_equal(dr_h2c_create(&loop, "host:8x", &c), DR_EINVAL);
    assert_int_equal(dr_h2c_create(&loop, "host:", &c), DR_EINVAL);
    assert_int_equal(dr_h2c_create(&loop, "host:80/x", &c), DR_EINVAL);
    assert_int_equal(dr_h2c_create(&loop, "a@host:80", &c), DR_EINVAL);
    assert_int_equal(dr_h2c_create(&loop, "127.0.0.1:1234", &c), DR_OK);
    /* another host, another scheme, a method it does not send, a header with a line break */
    req.url = "http://127.0.0.2:1234/x";
    assert_int_equal(dr_h2c_submit(c, &req, on_done, &r, NULL), DR_EINVAL);
    req.url = "https://127.0.0.1:1234/x";
    assert_int_equal(dr_h2c_submit(c, &req, on_done, &r, NULL), DR_EINVAL);
    req.url = "http://127.0.0.1:12345/x";
    assert_int_equal(dr_h2c_submit(c, &req, on_done, &r, NULL), DR_EINVAL);
    req.url = url;
    req.method = "CONNECT";
    assert_int_equal(dr_h2c_submit(c, &req, on_done, &r, NULL), DR_EINVAL);
    req.method = "POST";
    const char *evil[] = {"x-a: b\r\nx-injected: 1", NULL};
    req.headers = evil;
    assert_int_equal(dr_h2c_submit(c, &req, on_done, &r, NULL), DR_EINVAL);
    finish_loop(&loop, c);
    assert_int_equal(r.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused),
        cmocka_unit_test(closed_or_garbage),
        cmocka_unit_test(silent_server),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
