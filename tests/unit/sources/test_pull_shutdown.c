/* The pull source shut down the way the daemon does it when the deadline passes with work still
 * under way: the router is destroyed (handing back what it holds), then the source. Pub/Sub is a
 * local fake that delivers one message and never answers a publish. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "dr/config.h"
#include "dr/err.h"
#include "dr/pull.h"
#include "dr/router.h"
#include "dr/store.h"
#include "dr/util.h"
#include "unit/sources/pubsub/testsrv.h"

struct fake {
    int pulls;
    int publishes;
    int answer_publishes; /* else the service stops answering them */
};

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct fake *f = ud;
    static const char one[] =
        "{\"receivedMessages\":[{\"ackId\":\"ack-1\",\"message\":{\"messageId\":\"m1\","
        "\"data\":\"e30=\",\"attributes\":{\"test_emit\":\"topic-out\"},"
        "\"publishTime\":\"2024-01-01T00:00:00Z\"}}]}";

    if (strstr(req->path, ":pull")) {
        if (f->pulls++ == 0) {
            resp->body = strdup(one);
            resp->body_len = strlen(one);
            resp->content_type = "application/json";
        } else {
            resp->hang = 1; /* a long poll with nothing to deliver */
        }
    } else if (strstr(req->path, ":publish")) {
        f->publishes++;
        if (f->answer_publishes) {
            resp->body = strdup("{\"messageIds\":[\"1\"]}");
            resp->body_len = strlen(resp->body);
            resp->content_type = "application/json";
        } else {
            resp->hang = 1; /* the service stopped answering */
        }
    } else {
        resp->body = strdup("{}");
        resp->body_len = 2;
        resp->content_type = "application/json";
    }
}

static void close_all(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

#include "dr/db.h"

/* answer_publishes: the emit is published and the dedup write is held up (another connection
 * holds the database's write lock) when the source is destroyed */
static void run(int answer_publishes)
{
    char dir[64], yaml[2048], err[512], url[128], cmd[128], host[64];
    struct dr_config *cfg = NULL;
    struct dr_store *st = NULL;
    struct dr_router *r = NULL;
    struct dr_pull *p = NULL;
    struct testsrv srv;
    struct fake fk = {.answer_publishes = answer_publishes};
    struct dr_db *locker = NULL;
    struct dr_db_tx *lock = NULL;
    uv_loop_t loop;

    assert_int_equal(ts_start(&srv, handler, &fk), 0);
    snprintf(host, sizeof(host), "127.0.0.1:%d", srv.port);
    setenv("PUBSUB_EMULATOR_HOST", host, 1);
    snprintf(dir, sizeof(dir), "/tmp/dr-pull-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(yaml, sizeof(yaml),
             "data_dir: %s\nmode: pubsub\nworkers: 1\nprocessors: {test: {}}\n"
             "routes:\n  - {name: t, match: {topic: topic-a}, processors: [test]}\n"
             "pubsub:\n  project: p\n  transport: rest\n  pulls_in_flight: 1\n"
             "  subscriptions:\n    - {name: sub-a, topic: topic-a}\n",
             dir);
    if (dr_config_load_string(yaml, strlen(yaml), "unit.yaml", &cfg, err, sizeof(err))) {
        fail_msg("%s", err);
    }
    snprintf(url, sizeof(url), "sqlite:%s/q.db", dir);
    assert_int_equal(dr_store_open(url, &st), DR_OK);
    uv_loop_init(&loop);
    assert_int_equal(dr_router_create(&loop, cfg, st, &r, err, sizeof(err)), DR_OK);
    assert_int_equal(dr_pull_create(&loop, cfg, st, r, &p), DR_OK);
    if (answer_publishes) {
        assert_int_equal(dr_db_open(url, 1, &locker), DR_OK);
        assert_int_equal(dr_db_begin(locker, &lock), DR_OK);
    }
    dr_pull_start(p);

    /* the message is processed and its emit is being published */
    for (int i = 0; i < 1000 && ts_count(&srv, &fk.publishes) == 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    assert_int_equal(ts_count(&srv, &fk.publishes), 1);
    for (int i = 0; i < 50 && answer_publishes; i++) {
        uv_run(&loop, UV_RUN_NOWAIT); /* the answer lands, the dedup write starts */
        usleep(10000);
    }

    /* the daemon's order once the shutdown deadline has passed */
    dr_pull_stop(p);
    dr_router_drain(r);
    assert_true(dr_pull_busy(p));
    dr_router_destroy(r);
    dr_pull_destroy(p);
    if (lock) {
        dr_db_rollback(lock);
        dr_db_close(locker);
    }
    uv_walk(&loop, close_all, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    dr_store_close(st);
    dr_config_destroy(cfg);
    ts_stop(&srv);
    unsetenv("PUBSUB_EMULATOR_HOST");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) {
        /* a leftover temp dir is harmless */
    }
}

static void destroy_with_emit_publish_in_flight(void **state)
{
    run(0);
}

static void destroy_with_dedup_write_in_flight(void **state)
{
    run(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(destroy_with_emit_publish_in_flight),
        cmocka_unit_test(destroy_with_dedup_write_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
