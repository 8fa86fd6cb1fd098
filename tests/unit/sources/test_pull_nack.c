/* A retry the pull source hands back to Pub/Sub (its delay at least nack_after_ms, Pub/Sub
 * counting the deliveries) goes out as a modifyAckDeadline that holds the message back for at
 * least that delay: whole seconds rounded up, at most 600. Pub/Sub is a local fake that delivers
 * one message per subscription (deliveryAttempt 1, failing once) and records every
 * modifyAckDeadline it is sent: the one on receipt (the configured 60 s, told from the nack by its
 * deadline, as the two may arrive in either order), and the nack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "dr/config.h"
#include "dr/err.h"
#include "dr/pull.h"
#include "dr/router.h"
#include "dr/store.h"
#include "dr/util.h"
#include "unit/sources/pubsub/testsrv.h"

/* One subscription per retry delay: its topic's type retries after exactly delay (no jitter). */
struct sub_case {
    const char *name; /* subscription sub-NAME, topic topic-NAME, type t-NAME, ack id ack-NAME */
    const char *delay;
    int want_s; /* the ack deadline Pub/Sub must be given */
};

static const struct sub_case cases[] = {
    {"zero", "0ms", 0},       /* no delay asked for: redelivered at once */
    {"short", "10ms", 1},     /* under a second: not 0, which would redeliver at once */
    {"second", "1000ms", 1},  /* whole seconds stay as they are */
    {"partial", "1500ms", 2}, /* rounded up, not down */
    {"long", "700s", 600},    /* Pub/Sub's longest ack deadline */
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

struct fake {
    int pulled[NCASES];
    int receipt[NCASES]; /* modifyAckDeadline calls of 60 s naming the case's ack id */
    int modacks[NCASES]; /* how many others named it */
    int deadline[NCASES];
    int nmodacks; /* of those, in all */
};

static int case_of(const char *s, const char *prefix, size_t plen)
{
    for (size_t i = 0; i < NCASES; i++) {
        size_t n = strlen(cases[i].name);
        if (strncmp(s, prefix, plen) == 0 && strncmp(s + plen, cases[i].name, n) == 0 &&
            (s[plen + n] == ':' || s[plen + n] == '\0')) {
            return (int)i;
        }
    }
    return -1;
}

static void answer(struct ts_resp *resp, char *body)
{
    resp->body = body;
    resp->body_len = strlen(body);
    resp->content_type = "application/json";
}

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct fake *f = ud;
    const char *sub = strstr(req->path, "/subscriptions/");
    int i = sub ? case_of(sub, "/subscriptions/sub-", 19) : -1;
    char body[512];

    if (i >= 0 && strstr(req->path, ":pull")) {
        if (f->pulled[i]++ > 0) {
            resp->hang = 1; /* a long poll with nothing more to deliver */
            return;
        }
        snprintf(body, sizeof(body),
                 "{\"receivedMessages\":[{\"ackId\":\"ack-%s\",\"deliveryAttempt\":1,"
                 "\"message\":{\"messageId\":\"m-%s\",\"data\":\"e30=\","
                 "\"attributes\":{\"test_fail\":\"transient:1\"},"
                 "\"publishTime\":\"2024-01-01T00:00:00Z\"}}]}",
                 cases[i].name, cases[i].name);
        answer(resp, strdup(body));
    } else if (strstr(req->path, ":modifyAckDeadline")) {
        cJSON *b = cJSON_Parse(req->body);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(b, "ackIds");
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(b, "ackDeadlineSeconds");
        const cJSON *id;
        cJSON_ArrayForEach(id, ids)
        {
            int k = cJSON_IsString(id) ? case_of(id->valuestring, "ack-", 4) : -1;
            /* proto3 JSON leaves a zero out */
            int d = cJSON_IsNumber(secs) ? secs->valueint : 0;
            if (k >= 0 && d == 60) {
                f->receipt[k]++;
            } else if (k >= 0) {
                f->modacks[k]++;
                f->deadline[k] = d;
                f->nmodacks++;
            }
        }
        cJSON_Delete(b);
        answer(resp, strdup("{}"));
    } else {
        answer(resp, strdup("{}"));
    }
}

static void close_all(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void retry_deadline_rounds_up(void **state)
{
    char dir[64], yaml[4096], err[512], url[128], cmd[128], host[64];
    struct dr_config *cfg = NULL;
    struct dr_store *st = NULL;
    struct dr_router *r = NULL;
    struct dr_pull *p = NULL;
    struct testsrv srv;
    struct fake fk;
    uv_loop_t loop;
    int n;

    memset(&fk, 0, sizeof(fk));
    assert_int_equal(ts_start(&srv, handler, &fk), 0);
    snprintf(host, sizeof(host), "127.0.0.1:%d", srv.port);
    setenv("PUBSUB_EMULATOR_HOST", host, 1);
    snprintf(dir, sizeof(dir), "/tmp/dr-pull-XXXXXX");
    assert_non_null(mkdtemp(dir));
    n = snprintf(yaml, sizeof(yaml),
                 "data_dir: %s\nmode: pubsub\nworkers: 1\nprocessors: {test: {}}\n"
                 "pubsub:\n  project: p\n  transport: rest\n  pulls_in_flight: 1\n"
                 "  ack_deadline_seconds: 60\n  nack_after_ms: 0\n  subscriptions:\n",
                 dir);
    for (size_t i = 0; i < NCASES; i++) {
        n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "    - {name: sub-%s, topic: topic-%s}\n",
                      cases[i].name, cases[i].name);
    }
    n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "topics:\n");
    for (size_t i = 0; i < NCASES; i++) {
        n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "  topic-%s: {type: t-%s}\n",
                      cases[i].name, cases[i].name);
    }
    n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "retry:\n  types:\n");
    for (size_t i = 0; i < NCASES; i++) {
        n += snprintf(yaml + n, sizeof(yaml) - (size_t)n,
                      "    t-%s: {max_attempts: 5, initial: %s, multiplier: 1, max: %s, "
                      "jitter: 0}\n",
                      cases[i].name, cases[i].delay, cases[i].delay);
    }
    n += snprintf(yaml + n, sizeof(yaml) - (size_t)n,
                  "routes:\n  - {name: t, default: true, processors: [test]}\n");
    assert_true(n > 0 && (size_t)n < sizeof(yaml));
    if (dr_config_load_string(yaml, strlen(yaml), "unit.yaml", &cfg, err, sizeof(err))) {
        fail_msg("%s", err);
    }
    snprintf(url, sizeof(url), "sqlite:%s/q.db", dir);
    assert_int_equal(dr_store_open(url, &st), DR_OK);
    uv_loop_init(&loop);
    assert_int_equal(dr_router_create(&loop, cfg, st, &r, err, sizeof(err)), DR_OK);
    assert_int_equal(dr_pull_create(&loop, cfg, st, r, &p), DR_OK);
    dr_pull_start(p);

    /* each message fails once and is handed back to Pub/Sub with its retry's delay */
    for (int i = 0; i < 1000 && ts_count(&srv, &fk.nmodacks) < (int)NCASES; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    pthread_mutex_lock(&srv.mu);
    for (size_t i = 0; i < NCASES; i++) {
        if (fk.receipt[i] != 1 || fk.modacks[i] != 1 || fk.deadline[i] != cases[i].want_s) {
            pthread_mutex_unlock(&srv.mu);
            fail_msg("retry after %s: %d modifyAckDeadline call(s) of 60 s (on receipt), %d "
                     "other(s), the last with %d s; expected one of 60 s and one with %d s",
                     cases[i].delay, fk.receipt[i], fk.modacks[i], fk.deadline[i], cases[i].want_s);
        }
    }
    pthread_mutex_unlock(&srv.mu);

    dr_pull_stop(p);
    dr_router_drain(r);
    dr_router_destroy(r);
    dr_pull_destroy(p);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retry_deadline_rounds_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
