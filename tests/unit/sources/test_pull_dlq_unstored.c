/* A message refused for good whose dead letter the store refuses too goes back to Pub/Sub with a
 * delay, not as a nack that redelivers it at once (with the store down it was processed and
 * refused again as fast as it could go). Pub/Sub is a local fake that delivers one message,
 * held at a gate in the test processor until the store has been made to refuse dead letters,
 * and records every modifyAckDeadline naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "dr/db.h"
#include "unit/sources/pull_fixture.h"

struct fake {
    int pulls;
    int receipt; /* modifyAckDeadline of the configured 60 s */
    int nacks;   /* any other */
    int deadline;
    int acks;
};

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct fake *f = ud;
    cJSON *b = cJSON_Parse(req->body ? req->body : "");

    if (strstr(req->path, ":pull")) {
        if (f->pulls++ > 0) {
            resp->hang = 1;
        } else {
            pfx_answer(resp, "{\"receivedMessages\":[{\"ackId\":\"ack-0\",\"message\":{"
                             "\"messageId\":\"m-0\",\"data\":\"e30=\",\"attributes\":{"
                             "\"test_wait_for\":\"gate\",\"test_fail\":\"permanent\"},"
                             "\"publishTime\":\"2024-01-01T00:00:00Z\"}}]}");
        }
        cJSON_Delete(b);
        return;
    }
    if (strstr(req->path, ":modifyAckDeadline")) {
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(b, "ackDeadlineSeconds");
        int d = cJSON_IsNumber(secs) ? secs->valueint : 0; /* proto3 JSON leaves a zero out */
        if (d == 60) {
            f->receipt++;
        } else {
            f->nacks++;
            f->deadline = d;
        }
    } else if (strstr(req->path, ":acknowledge")) {
        f->acks++;
    }
    pfx_answer(resp, "{}");
    cJSON_Delete(b);
}

static int received(void *arg)
{
    return ((struct fake *)arg)->receipt > 0;
}

static int settled(void *arg)
{
    const struct fake *f = arg;
    return f->nacks > 0 || f->acks > 0;
}

static void unstored_dead_letter_comes_back_later(void **state)
{
    struct pull_fx fx;
    struct fake fk;

    (void)state;
    memset(&fk, 0, sizeof(fk));
    pfx_load(&fx, handler, &fk,
             "  ack_deadline_seconds: 60\n  subscriptions:\n    - {name: sub-a, topic: topic-a}\n",
             "routes:\n  - {name: t, default: true, processors: [test]}\n");
    pfx_start(&fx);
    assert_true(pfx_run_until(&fx, received, &fk, 20000));
    /* the store refuses dead letters from now on */
    assert_int_equal(dr_db_exec(dr_store_db(fx.st),
                                "CREATE TRIGGER refuse BEFORE INSERT ON dead_letters "
                                "BEGIN SELECT RAISE(FAIL, 'refused'); END",
                                NULL, 0, NULL, NULL, NULL),
                     DR_OK);
    pfx_open_gate(&fx, "gate");
    assert_true(pfx_run_until(&fx, settled, &fk, 20000));
    pthread_mutex_lock(&fx.srv.mu);
    if (fk.acks != 0 || fk.nacks != 1 || fk.deadline != 10) {
        pthread_mutex_unlock(&fx.srv.mu);
        fail_msg("acked %d, handed back %d time(s), the last with %d s; expected one hand-back "
                 "with the 10 s delay",
                 fk.acks, fk.nacks, fk.deadline);
    }
    pthread_mutex_unlock(&fx.srv.mu);
    pfx_stop(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unstored_dead_letter_comes_back_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
