/* A processed message whose emits cannot be published (the topic is missing: 404) is retried
 * through its retry policy, not nacked for an immediate redelivery, and dead-lettered
 * (emit_failed) once its attempts are used up:
 *   sub-keep  no dead-letter policy (Pub/Sub does not count deliveries): it runs again in the
 *             router after each backoff, three attempts, then a dead letter;
 *   sub-nack  a dead-letter policy, first delivery: handed back to Pub/Sub with its backoff
 *             (1.5 s, so an ack deadline of 2 s), as a processor's retry would be;
 *   sub-last  a dead-letter policy, its last attempt (deliveryAttempt 3 of 3): a dead letter.
 * Pub/Sub is a local fake that delivers one message per subscription (each emits to "missing",
 * which it answers 404) and records what it is told about each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "unit/sources/pull_fixture.h"

static const char *const names[] = {"keep", "nack", "last"};
#define NSUB 3

struct fake {
    int pulls[NSUB];
    int emits[NSUB];    /* publishes to "missing" made for the subscription's message */
    int dead[NSUB];     /* publishes to its dead-letter topic with dr_reason emit_failed */
    int acked[NSUB];    /* its ack id acknowledged */
    int nacked[NSUB];   /* modifyAckDeadline naming it, but the one on receipt (30 s) */
    int deadline[NSUB]; /* the last of those */
};

static int sub_of(const char *s, const char *prefix)
{
    size_t plen = strlen(prefix);
    for (int i = 0; i < NSUB; i++) {
        size_t n = strlen(names[i]);
        if (strncmp(s, prefix, plen) == 0 && strncmp(s + plen, names[i], n) == 0 &&
            (s[plen + n] == ':' || s[plen + n] == '-' || s[plen + n] == '\0' ||
             s[plen + n] == '"')) {
            return i;
        }
    }
    return -1;
}

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct fake *f = ud;
    const char *sub = strstr(req->path, "/subscriptions/sub-");
    cJSON *b = cJSON_Parse(req->body ? req->body : "");
    const cJSON *id;
    int i;

    if (sub && strstr(req->path, ":pull") && (i = sub_of(sub, "/subscriptions/sub-")) >= 0) {
        char body[1024];
        if (f->pulls[i]++ > 0) {
            resp->hang = 1; /* a long poll with nothing more to deliver */
        } else {
            snprintf(body, sizeof(body),
                     "{\"receivedMessages\":[{\"ackId\":\"ack-%s\",%s\"message\":{"
                     "\"messageId\":\"m-%s\",\"data\":\"e30=\",\"attributes\":{"
                     "\"test_emit\":\"missing\"},\"publishTime\":\"2024-01-01T00:00:00Z\"}}]}",
                     names[i],
                     i == 0   ? ""
                     : i == 1 ? "\"deliveryAttempt\":1,"
                              : "\"deliveryAttempt\":3,",
                     names[i]);
            pfx_answer(resp, body);
        }
    } else if (strstr(req->path, "/topics/missing:publish")) {
        /* the emit names its parent in the attribute test_parent */
        for (i = 0; i < NSUB; i++) {
            char want[32];
            snprintf(want, sizeof(want), "m-%s", names[i]);
            if (strstr(req->body, want)) {
                f->emits[i]++;
            }
        }
        resp->status = 404;
        pfx_answer(resp, "{\"error\":{\"code\":404,\"message\":\"Resource not found "
                         "(resource=missing).\",\"status\":\"NOT_FOUND\"}}");
    } else if (strstr(req->path, ":publish") &&
               (i = sub_of(strstr(req->path, "/topics/") ? strstr(req->path, "/topics/") : "",
                           "/topics/topic-")) >= 0) {
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(b, "messages");
        const cJSON *attrs =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(msgs, 0), "attributes");
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(attrs, "dr_reason");
        if (strstr(req->path, "-dlq:publish") && cJSON_IsString(reason) &&
            strcmp(reason->valuestring, "emit_failed") == 0) {
            f->dead[i]++;
        }
        pfx_answer(resp, "{\"messageIds\":[\"d-1\"]}");
    } else if (strstr(req->path, ":modifyAckDeadline") || strstr(req->path, ":acknowledge")) {
        int ack = strstr(req->path, ":acknowledge") != NULL;
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(b, "ackDeadlineSeconds");
        cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(b, "ackIds"))
        {
            i = cJSON_IsString(id) ? sub_of(id->valuestring, "ack-") : -1;
            if (i < 0) {
                continue;
            }
            if (ack) {
                f->acked[i]++;
            } else if (!cJSON_IsNumber(secs) || secs->valueint != 30) {
                f->nacked[i]++;
                /* proto3 JSON leaves a zero out */
                f->deadline[i] = cJSON_IsNumber(secs) ? secs->valueint : 0;
            }
        }
        pfx_answer(resp, "{}");
    } else {
        pfx_answer(resp, "{}");
    }
    cJSON_Delete(b);
}

/* every message acked or handed back */
static int settled(void *arg)
{
    struct fake *f = arg;
    for (int i = 0; i < NSUB; i++) {
        if (!f->acked[i] && !f->nacked[i]) {
            return 0;
        }
    }
    return 1;
}

static void emit_failure_retried_then_dead(void **state)
{
    struct pull_fx fx;
    struct fake fk;
    struct dr_dlq_filter flt;
    struct dr_dead_letter *dls = NULL;
    size_t ndl = 0;
    char got[1024];
    int n = 0;

    (void)state;
    memset(&fk, 0, sizeof(fk));
    pfx_load(&fx, handler, &fk,
             "  nack_after_ms: 0\n  subscriptions:\n"
             "    - {name: sub-keep, topic: topic-keep}\n"
             "    - {name: sub-nack, topic: topic-nack}\n"
             "    - {name: sub-last, topic: topic-last}\n",
             "topics: {topic-keep: {type: t}, topic-nack: {type: n}, topic-last: {type: t}}\n"
             "retry:\n  types:\n"
             "    t: {max_attempts: 3, initial: 10ms, multiplier: 1, max: 10ms, jitter: 0}\n"
             "    n: {max_attempts: 3, initial: 1500ms, multiplier: 1, max: 1500ms, jitter: 0}\n"
             "routes:\n  - {name: t, default: true, processors: [test]}\n");
    pfx_start(&fx);
    int ok = pfx_run_until(&fx, settled, &fk, 20000);

    pthread_mutex_lock(&fx.srv.mu);
    for (int i = 0; i < NSUB; i++) {
        n += snprintf(got + n, sizeof(got) - (size_t)n,
                      "%s: runs %d, acked %d, dead %d, handed back %d (last %d s); ", names[i],
                      fk.emits[i], fk.acked[i], fk.dead[i], fk.nacked[i], fk.deadline[i]);
    }
    int want = ok && fk.emits[0] == 3 && fk.acked[0] == 1 && fk.dead[0] == 1 && fk.nacked[0] == 0 &&
               fk.emits[1] == 1 && fk.acked[1] == 0 && fk.dead[1] == 0 && fk.nacked[1] == 1 &&
               fk.deadline[1] == 2 && fk.emits[2] == 1 && fk.acked[2] == 1 && fk.dead[2] == 1 &&
               fk.nacked[2] == 0;
    pthread_mutex_unlock(&fx.srv.mu);
    if (!want) {
        fail_msg("%sexpected keep: runs 3, acked 1, dead 1, handed back 0; nack: runs 1, acked 0, "
                 "dead 0, handed back 1 (last 2 s); last: runs 1, acked 1, dead 1, handed back 0",
                 got);
    }

    /* both dead letters are in the store: why, and after how many attempts */
    memset(&flt, 0, sizeof(flt));
    flt.reason = "emit_failed";
    assert_int_equal(dr_store_dlq_list(fx.st, &flt, &dls, &ndl), DR_OK);
    assert_int_equal(ndl, 2);
    for (size_t k = 0; k < ndl; k++) {
        assert_true(strcmp(dls[k].message_id, "m-keep") == 0 ||
                    strcmp(dls[k].message_id, "m-last") == 0);
        assert_int_equal(dls[k].attempts, 3);
        if (!strstr(dls[k].error, "missing: HTTP 404 NOT_FOUND")) {
            fail_msg("dead letter %s: error \"%s\"", dls[k].message_id, dls[k].error);
        }
    }
    dr_dead_letters_free(dls, ndl);
    pfx_stop(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(emit_failure_retried_then_dead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
