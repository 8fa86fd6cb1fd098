/* Every message a pull brings gets the configured ack deadline on receipt (one
 * modifyAckDeadline for the whole pull), while it is still being processed: the lease is extended
 * from that deadline on, whatever the subscription's own is (10 s when created elsewhere).
 * Pub/Sub is a local fake that delivers three messages in one pull and records the requests
 * naming them; the messages wait in the test processor until the test opens their gate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "unit/sources/pull_fixture.h"

#define NMSG 3

struct fake {
    int pulls;
    char log[NMSG][256]; /* per message, what was sent about it: "modack:60 ack " */
    int modack_requests;
    int acked;
};

static void note(struct fake *f, const cJSON *ids, const char *what)
{
    const cJSON *id;
    cJSON_ArrayForEach(id, ids)
    {
        int k = cJSON_IsString(id) && strncmp(id->valuestring, "ack-", 4) == 0
                    ? atoi(id->valuestring + 4)
                    : -1;
        if (k >= 0 && k < NMSG) {
            size_t n = strlen(f->log[k]);
            snprintf(f->log[k] + n, sizeof(f->log[k]) - n, "%s ", what);
            f->acked += strcmp(what, "ack") == 0;
        }
    }
}

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct fake *f = ud;
    cJSON *b = cJSON_Parse(req->body ? req->body : "");

    if (strstr(req->path, ":pull")) {
        if (f->pulls++ > 0) {
            resp->hang = 1; /* a long poll with nothing more to deliver */
        } else {
            char body[2048];
            int n = snprintf(body, sizeof(body), "{\"receivedMessages\":[");
            for (int i = 0; i < NMSG; i++) {
                n += snprintf(body + n, sizeof(body) - (size_t)n,
                              "%s{\"ackId\":\"ack-%d\",\"message\":{\"messageId\":\"m-%d\","
                              "\"data\":\"e30=\",\"attributes\":{\"test_wait_for\":\"gate\"},"
                              "\"publishTime\":\"2024-01-01T00:00:00Z\"}}",
                              i ? "," : "", i, i);
            }
            snprintf(body + n, sizeof(body) - (size_t)n, "]}");
            pfx_answer(resp, body);
        }
    } else if (strstr(req->path, ":modifyAckDeadline")) {
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(b, "ackDeadlineSeconds");
        char what[32];
        /* proto3 JSON leaves a zero out */
        snprintf(what, sizeof(what), "modack:%d", cJSON_IsNumber(secs) ? secs->valueint : 0);
        f->modack_requests++;
        note(f, cJSON_GetObjectItemCaseSensitive(b, "ackIds"), what);
        pfx_answer(resp, "{}");
    } else if (strstr(req->path, ":acknowledge")) {
        note(f, cJSON_GetObjectItemCaseSensitive(b, "ackIds"), "ack");
        pfx_answer(resp, "{}");
    } else {
        pfx_answer(resp, "{}");
    }
    cJSON_Delete(b);
}

static int modacked(void *arg)
{
    return ((struct fake *)arg)->modack_requests > 0;
}

static int all_acked(void *arg)
{
    return ((struct fake *)arg)->acked >= NMSG;
}

static void deadline_set_on_receipt(void **state)
{
    struct pull_fx fx;
    struct fake fk;

    (void)state;
    memset(&fk, 0, sizeof(fk));
    pfx_load(&fx, handler, &fk,
             "  ack_deadline_seconds: 60\n  subscriptions:\n    - {name: sub-a, topic: topic-a}\n",
             "routes:\n  - {name: t, default: true, processors: [test]}\n");
    pfx_start(&fx);

    /* the messages are held in processing (at most 60 s, then they go on) */
    int got = pfx_run_until(&fx, modacked, &fk, 20000);
    pthread_mutex_lock(&fx.srv.mu);
    for (int i = 0; i < NMSG; i++) {
        if (!got || strcmp(fk.log[i], "modack:60 ") != 0) {
            pthread_mutex_unlock(&fx.srv.mu);
            fail_msg("ack-%d, in processing: sent \"%s\"; expected \"modack:60 \" (the configured "
                     "deadline on receipt)",
                     i, fk.log[i]);
        }
    }
    pthread_mutex_unlock(&fx.srv.mu);

    pfx_open_gate(&fx, "gate");
    assert_true(pfx_run_until(&fx, all_acked, &fk, 20000));
    pthread_mutex_lock(&fx.srv.mu);
    for (int i = 0; i < NMSG; i++) {
        if (strcmp(fk.log[i], "modack:60 ack ") != 0) {
            pthread_mutex_unlock(&fx.srv.mu);
            fail_msg("ack-%d: sent \"%s\"; expected \"modack:60 ack \" (the configured deadline on "
                     "receipt, then the ack)",
                     i, fk.log[i]);
        }
    }
    assert_int_equal(fk.modack_requests, 1); /* one for the whole pull */
    pthread_mutex_unlock(&fx.srv.mu);
    pfx_stop(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deadline_set_on_receipt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
