/*
 * An ack or nack waits for a lease extension (on_lease_timer()) still on its way, as it does for
 * the modifyAckDeadline sent on receipt. Here the ack deadline is 10 s, the message is processed
 * for 8 s (the lease timer extends it at about 7.5 s) and then fails once: its nack (modack 1 s)
 * must not be sent before Pub/Sub has answered the extension (the fake answers it after 2 s).
 * On another connection it could reach Pub/Sub first, and the extension coming after it would
 * lease the message again for 10 s.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "unit/sources/pull_fixture.h"

#define EXT_MS 2000

struct fake {
    int pulls;
    int modacks_10;          /* modacks of 10 s: the receipt's, then extensions */
    int64_t ext_answered_ms; /* when the first extension is answered; 0 before it is sent */
    char log[256];
    int settled;
};

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct fake *f = ud;
    cJSON *b = cJSON_Parse(req->body ? req->body : "");

    if (strstr(req->path, ":pull")) {
        if (f->pulls++ > 0) {
            resp->hang = 1;
        } else {
            pfx_answer(resp, "{\"receivedMessages\":[{\"ackId\":\"ack-0\",\"deliveryAttempt\":1,"
                             "\"message\":{\"messageId\":\"m-0\",\"data\":\"e30=\","
                             "\"attributes\":{\"test_sleep_ms\":\"8000\","
                             "\"test_fail\":\"transient:1\"},"
                             "\"publishTime\":\"2024-01-01T00:00:00Z\"}}]}");
        }
    } else if (strstr(req->path, ":modifyAckDeadline")) {
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(b, "ackDeadlineSeconds");
        int d = cJSON_IsNumber(secs) ? secs->valueint : 0;
        size_t n = strlen(f->log);
        if (d == 10 && f->modacks_10++ == 1) {
            f->ext_answered_ms = dr_mono_ms() + EXT_MS;
            resp->delay_ms = EXT_MS;
            snprintf(f->log + n, sizeof(f->log) - n, "extension ");
        } else if (d == 10) {
            snprintf(f->log + n, sizeof(f->log) - n, "modack:10 ");
        } else {
            int early = f->ext_answered_ms && dr_mono_ms() < f->ext_answered_ms;
            snprintf(f->log + n, sizeof(f->log) - n, "nack:%d%s ", d,
                     early ? " (extension unanswered)" : "");
            f->settled++;
        }
        pfx_answer(resp, "{}");
    } else {
        pfx_answer(resp, "{}");
    }
    cJSON_Delete(b);
}

static int settled(void *arg)
{
    return ((struct fake *)arg)->settled > 0;
}

static void nack_waits_for_extension(void **state)
{
    struct pull_fx fx;
    struct fake fk;
    char got[512];

    (void)state;
    memset(&fk, 0, sizeof(fk));
    pfx_load(&fx, handler, &fk,
             "  ack_deadline_seconds: 10\n  nack_after_ms: 0\n"
             "  subscriptions:\n    - {name: sub-a, topic: topic-a}\n",
             "retry: {default: {max_attempts: 5, initial: 10ms, multiplier: 1, max: 10ms, "
             "jitter: 0}}\n"
             "routes:\n  - {name: t, default: true, processors: [test]}\n");
    pfx_start(&fx);
    int ok = pfx_run_until(&fx, settled, &fk, 20000);
    pthread_mutex_lock(&fx.srv.mu);
    snprintf(got, sizeof(got), "sent: \"%s\"", fk.log);
    int want = ok && strcmp(fk.log, "modack:10 extension nack:1 ") == 0;
    pthread_mutex_unlock(&fx.srv.mu);
    pfx_stop(&fx);
    if (!want) {
        fail_msg("%s; expected the receipt's deadline, one extension, then the nack after the "
                 "extension's answer (\"modack:10 extension nack:1 \")",
                 got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nack_waits_for_extension),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
