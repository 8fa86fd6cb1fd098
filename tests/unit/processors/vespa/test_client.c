/* src/processors/vespa/client.c: blocking sends multiplexed by one I/O thread, bounded. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/err.h"
#include "dr/util.h"
#include "dr/vespa.h"
#include "unit/sources/pubsub/testsrv.h"

#define WAIT_MS 60000 /* generous: only ever reached when something is broken */

struct script {
    int delay_ms;
    int hang;
};

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct script *s = ud;

    resp->status = 200;
    resp->content_type = "application/json";
    resp->body = strdup("{\"pathId\":\"/document/v1/ns/t/docid/x\",\"id\":\"id:ns:t::x\"}");
    resp->body_len = strlen(resp->body);
    resp->delay_ms = s->delay_ms;
    resp->hang = s->hang;
}

struct fx {
    struct testsrv srv;
    struct script script;
    struct dr_vespa_conf conf;
    struct dr_vespa_client *client;
    char url[128];
    struct dr_vespa_request req;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (ts_start(&f->srv, handler, &f->script)) {
        free(f);
        return -1;
    }
    ts_url(&f->srv, "/document/v1/ns/t/docid/x", f->url, sizeof(f->url));
    f->req.method = "GET";
    f->req.url = f->url;
    f->conf.timeout_ms = 30000;
    f->conf.max_in_flight = 3;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    dr_vespa_client_destroy(f->client);
    ts_stop(&f->srv);
    free(f);
    return 0;
}

struct sender {
    struct fx *f;
    struct dr_vespa_reply reply;
    int rc;
    pthread_t thr;
};

static void *send_main(void *arg)
{
    struct sender *s = arg;

    s->rc = dr_vespa_client_send(s->f->client, &s->f->req, NULL, &s->reply);
    return NULL;
}

static void *sleep_main(void *arg)
{
    struct sender *s = arg;

    s->rc = dr_vespa_client_sleep(s->f->client, 10 * WAIT_MS);
    return NULL;
}

/* Polls pred until it holds or WAIT_MS passes; the test fails on the latter. */
#define WAIT_FOR(pred)                                                                             \
    do {                                                                                           \
        int64_t until_ = dr_mono_ms() + WAIT_MS;                                                   \
        while (!(pred) && dr_mono_ms() < until_) {                                                 \
            usleep(1000);                                                                          \
        }                                                                                          \
        assert_true(pred);                                                                         \
    } while (0)

static size_t in_flight(struct fx *f)
{
    struct dr_vespa_client_stats st;
    dr_vespa_client_stats(f->client, &st);
    return st.in_flight;
}

static size_t queued(struct fx *f)
{
    struct dr_vespa_client_stats st;
    dr_vespa_client_stats(f->client, &st);
    return st.queued;
}

static void one_request(void **state)
{
    struct fx *f = *state;
    struct dr_vespa_reply r;

    assert_int_equal(dr_vespa_client_create(&f->conf, &f->client), DR_OK);
    assert_int_equal(dr_vespa_client_send(f->client, &f->req, NULL, &r), DR_OK);
    assert_int_equal(r.err, DR_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.message, ""); /* only error answers carry one */
    assert_int_equal(r.retry_after_ms, -1);
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 1);
}

/* 8 senders, 3 slots: 3 on the wire, 5 waiting, and never more than 3 at the server. */
static void bounded_concurrency(void **state)
{
    struct fx *f = *state;
    struct sender s[8];
    struct dr_vespa_client_stats st;

    f->script.delay_ms = 1000;
    assert_int_equal(dr_vespa_client_create(&f->conf, &f->client), DR_OK);
    for (int i = 0; i < 8; i++) {
        s[i].f = f;
        pthread_create(&s[i].thr, NULL, send_main, &s[i]);
    }
    WAIT_FOR(ts_count(&f->srv, &f->srv.active) == 3 && queued(f) == 5);
    assert_int_equal(in_flight(f), 3);
    for (int i = 0; i < 8; i++) {
        pthread_join(s[i].thr, NULL);
        assert_int_equal(s[i].rc, DR_OK);
        assert_int_equal(s[i].reply.status, 200);
    }
    dr_vespa_client_stats(f->client, &st);
    assert_int_equal(st.sent, 8);
    assert_int_equal(st.max_in_flight, 3);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.queued, 0);
    assert_int_equal(ts_count(&f->srv, &f->srv.max_active), 3);
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 8);
    /* keep-alive: connections are reused, not opened per request */
    assert_true(ts_count(&f->srv, &f->srv.nconn) <= 3);
}

/* Destroying the client fails what is on the wire and what waits, and wakes sleepers. */
static void destroy_releases_waiters(void **state)
{
    struct fx *f = *state;
    struct sender s[3];

    f->script.hang = 1;
    f->conf.max_in_flight = 1;
    assert_int_equal(dr_vespa_client_create(&f->conf, &f->client), DR_OK);
    for (int i = 0; i < 2; i++) {
        s[i].f = f;
        pthread_create(&s[i].thr, NULL, send_main, &s[i]);
    }
    s[2].f = f;
    pthread_create(&s[2].thr, NULL, sleep_main, &s[2]);
    WAIT_FOR(ts_count(&f->srv, &f->srv.active) == 1 && queued(f) == 1);
    dr_vespa_client_destroy(f->client);
    f->client = NULL;
    for (int i = 0; i < 3; i++) {
        pthread_join(s[i].thr, NULL);
        assert_int_equal(s[i].rc, DR_EUNAVAIL);
    }
    assert_string_not_equal(s[0].reply.error, "");
}

static void timeout_and_refused(void **state)
{
    struct fx *f = *state;
    struct dr_vespa_reply r;
    struct dr_vespa_request closed = {.method = "GET"};
    char url[64];
    int port;

    f->script.hang = 1;
    f->conf.timeout_ms = 200;
    assert_int_equal(dr_vespa_client_create(&f->conf, &f->client), DR_OK);
    assert_int_equal(dr_vespa_client_send(f->client, &f->req, NULL, &r), DR_ETIMEOUT);
    assert_int_equal(r.status, 0);

    /* a port nobody listens on */
    {
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t alen = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        getsockname(fd, (struct sockaddr *)&a, &alen);
        port = ntohs(a.sin_port);
        close(fd);
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/document/v1/ns/t/docid/x", port);
    closed.url = url;
    assert_int_equal(dr_vespa_client_send(f->client, &closed, NULL, &r), DR_EIO);
    assert_string_not_equal(r.error, "");
    assert_int_equal(in_flight(f), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(one_request, setup, teardown),
        cmocka_unit_test_setup_teardown(bounded_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(destroy_releases_waiters, setup, teardown),
        cmocka_unit_test_setup_teardown(timeout_and_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
