/* Every message a pull brings gets the configured ack deadline on receipt (one
 * modifyAckDeadline for the whole pull), while it is still being processed: the lease is extended
 * from that deadline on, whatever the subscription's own is (10 s when created elsewhere).
 * Pub/Sub is a local fake that delivers three messages in one pull and records the requests
 * naming them; the messages wait in the test processor until the test opens their gate.
 * An ack or a nack of a message is not sent while that modifyAckDeadline is unanswered: sent
 * first, the extension could reach Pub/Sub after the nack and lease the message again (it would
 * come back after the deadline, not at once). */
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

/* nothing_overtakes_receipt: the modifyAckDeadline on receipt is answered after RECEIPT_MS;
 * until then, it counts as not yet applied. ack-0 fails once and goes back to Pub/Sub (a nack
 * with its backoff), ack-1 is processed, ack-2 cannot be decoded (a dead letter): all of it well
 * within RECEIPT_MS. */
#define RECEIPT_MS 800

struct ofake {
    int pulls;
    int64_t receipt_applied_ms; /* when the receipt's modack is answered, 0 before it came */
    char log[NMSG][256];        /* "nack:1 ack early " */
    int settled;
};

static void onote(struct ofake *f, const cJSON *ids, const char *what)
{
    const cJSON *id;
    int early = !f->receipt_applied_ms || dr_mono_ms() < f->receipt_applied_ms;
    cJSON_ArrayForEach(id, ids)
    {
        int k = cJSON_IsString(id) && strncmp(id->valuestring, "ack-", 4) == 0
                    ? atoi(id->valuestring + 4)
                    : -1;
        if (k >= 0 && k < NMSG) {
            size_t n = strlen(f->log[k]);
            snprintf(f->log[k] + n, sizeof(f->log[k]) - n, "%s%s ", what, early ? " early" : "");
            f->settled++;
        }
    }
}

static void ohandler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct ofake *f = ud;
    cJSON *b = cJSON_Parse(req->body ? req->body : "");

    if (strstr(req->path, ":pull")) {
        if (f->pulls++ > 0) {
            resp->hang = 1; /* a long poll with nothing more to deliver */
        } else {
            pfx_answer(resp,
                       "{\"receivedMessages\":["
                       "{\"ackId\":\"ack-0\",\"deliveryAttempt\":1,\"message\":{\"messageId\":"
                       "\"m-0\",\"data\":\"e30=\",\"attributes\":{\"test_fail\":\"transient:1\"},"
                       "\"publishTime\":\"2024-01-01T00:00:00Z\"}},"
                       "{\"ackId\":\"ack-1\",\"deliveryAttempt\":1,\"message\":{\"messageId\":"
                       "\"m-1\",\"data\":\"e30=\",\"publishTime\":\"2024-01-01T00:00:00Z\"}},"
                       "{\"ackId\":\"ack-2\",\"deliveryAttempt\":1,\"message\":{\"messageId\":"
                       "\"m-2\",\"data\":\"%%%%\",\"publishTime\":\"2024-01-01T00:00:00Z\"}}]}");
        }
    } else if (strstr(req->path, ":modifyAckDeadline")) {
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(b, "ackDeadlineSeconds");
        /* proto3 JSON leaves a zero out */
        int d = cJSON_IsNumber(secs) ? secs->valueint : 0;
        if (d == 60 && !f->receipt_applied_ms) {
            f->receipt_applied_ms = dr_mono_ms() + RECEIPT_MS;
            resp->delay_ms = RECEIPT_MS;
        } else {
            char what[32];
            snprintf(what, sizeof(what), "nack:%d", d);
            onote(f, cJSON_GetObjectItemCaseSensitive(b, "ackIds"), what);
        }
        pfx_answer(resp, "{}");
    } else if (strstr(req->path, ":acknowledge")) {
        onote(f, cJSON_GetObjectItemCaseSensitive(b, "ackIds"), "ack");
        pfx_answer(resp, "{}");
    } else {
        pfx_answer(resp, "{}");
    }
    cJSON_Delete(b);
}

static int all_settled(void *arg)
{
    return ((struct ofake *)arg)->settled >= NMSG;
}

static void nothing_overtakes_receipt(void **state)
{
    struct pull_fx fx;
    struct ofake fk;

    (void)state;
    memset(&fk, 0, sizeof(fk));
    pfx_load(&fx, ohandler, &fk,
             "  ack_deadline_seconds: 60\n  nack_after_ms: 0\n"
             "  subscriptions:\n    - {name: sub-a, topic: topic-a}\n",
             "retry: {default: {max_attempts: 5, initial: 10ms, multiplier: 1, max: 10ms, "
             "jitter: 0}}\n"
             "routes:\n  - {name: t, default: true, processors: [test]}\n");
    pfx_start(&fx);
    int ok = pfx_run_until(&fx, all_settled, &fk, 20000);
    pthread_mutex_lock(&fx.srv.mu);
    int want = ok && strcmp(fk.log[0], "nack:1 ") == 0 && strcmp(fk.log[1], "ack ") == 0 &&
               strcmp(fk.log[2], "ack ") == 0;
    char got[1024];
    snprintf(got, sizeof(got), "ack-0: \"%s\", ack-1: \"%s\", ack-2: \"%s\"", fk.log[0], fk.log[1],
             fk.log[2]);
    pthread_mutex_unlock(&fx.srv.mu);
    if (!want) {
        fail_msg("%s; expected ack-0: \"nack:1 \", ack-1: \"ack \", ack-2: \"ack \" (each after "
                 "the modack on receipt was answered, none \"early\")",
                 got);
    }
    pfx_stop(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deadline_set_on_receipt),
        cmocka_unit_test(nothing_overtakes_receipt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
