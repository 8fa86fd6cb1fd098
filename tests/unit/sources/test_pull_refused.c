/* A pull the client refuses at run time does not stop its subscription for good: it is tried
 * again after a backoff, counted in dr_pull_failures_total, and the source is not ready while a
 * subscription cannot pull, even when the others pull fine. A subscription name the
 * configuration check refuses (set after the check) stands in for any refusal: the client
 * refuses every pull of it before sending anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dr/metrics.h"
#include "unit/sources/pull_fixture.h"

struct fake {
    int pulls_ok; /* pulls of sub-ok */
    int acked;    /* ack-ok acknowledged */
};

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct fake *f = ud;

    if (strstr(req->path, "/subscriptions/sub-ok:pull")) {
        if (f->pulls_ok++ > 0) {
            resp->hang = 1; /* a long poll with nothing more to deliver */
            return;
        }
        pfx_answer(resp, "{\"receivedMessages\":[{\"ackId\":\"ack-ok\",\"message\":{"
                         "\"messageId\":\"m-ok\",\"data\":\"e30=\","
                         "\"publishTime\":\"2024-01-01T00:00:00Z\"}}]}");
    } else if (strstr(req->path, ":acknowledge")) {
        f->acked += strstr(req->body, "ack-ok") != NULL;
        pfx_answer(resp, "{}");
    } else {
        pfx_answer(resp, "{}");
    }
}

#define BAD_LABELS "subscription=\"1st-bad\""

/* the good subscription's message is acknowledged and the bad one was refused three times */
static int settled(void *arg)
{
    struct fake *f = arg;
    return f->acked > 0 && dr_metrics_value("dr_pull_failures_total", BAD_LABELS) >= 3;
}

static void refused_pull_retried(void **state)
{
    struct pull_fx fx;
    struct fake fk;

    (void)state;
    memset(&fk, 0, sizeof(fk));
    pfx_load(&fx, handler, &fk,
             "  subscriptions:\n    - {name: sub-ok, topic: topic-ok}\n"
             "    - {name: sub-bad, topic: topic-bad}\n",
             "routes:\n  - {name: t, default: true, processors: [test]}\n");
    free(fx.cfg->subscriptions[1].name);
    fx.cfg->subscriptions[1].name = dr_xstrdup("1st-bad");
    pfx_start(&fx);

    int ok = pfx_run_until(&fx, settled, &fk, 20000);
    double failures = dr_metrics_value("dr_pull_failures_total", BAD_LABELS);
    int healthy = dr_pull_healthy(fx.p);
    if (!ok || healthy) {
        fail_msg("sub-ok acked: %d; pulls of 1st-bad refused and counted: %.0f (expected retries, "
                 "at least 3); ready: %d (expected 0: 1st-bad cannot pull)",
                 fk.acked, failures, healthy);
    }
    pfx_stop(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_pull_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
