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

#include "unit/sources/pull_fixture.h"

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
        pfx_answer(resp, body);
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
        pfx_answer(resp, "{}");
    } else {
        pfx_answer(resp, "{}");
    }
}

static int all_handed_back(void *arg)
{
    return ((struct fake *)arg)->nmodacks >= (int)NCASES;
}

static void retry_deadline_rounds_up(void **state)
{
    struct pull_fx fx;
    struct fake fk;
    struct dr_buf y;

    memset(&fk, 0, sizeof(fk));
    dr_buf_init(&y, 1 << 16);
    dr_buf_appends(&y, "  subscriptions:\n");
    for (size_t i = 0; i < NCASES; i++) {
        dr_buf_printf(&y, "    - {name: sub-%s, topic: topic-%s}\n", cases[i].name, cases[i].name);
    }
    dr_buf_appends(&y, "topics:\n");
    for (size_t i = 0; i < NCASES; i++) {
        dr_buf_printf(&y, "  topic-%s: {type: t-%s}\n", cases[i].name, cases[i].name);
    }
    dr_buf_appends(&y, "retry:\n  types:\n");
    for (size_t i = 0; i < NCASES; i++) {
        dr_buf_printf(
            &y, "    t-%s: {max_attempts: 5, initial: %s, multiplier: 1, max: %s, jitter: 0}\n",
            cases[i].name, cases[i].delay, cases[i].delay);
    }
    dr_buf_appends(&y, "routes:\n  - {name: t, default: true, processors: [test]}\n");
    pfx_load(&fx, handler, &fk, "  ack_deadline_seconds: 60\n  nack_after_ms: 0\n", y.data);
    dr_buf_cleanup(&y);
    pfx_start(&fx);

    /* each message fails once and is handed back to Pub/Sub with its retry's delay */
    pfx_run_until(&fx, all_handed_back, &fk, 10000);
    pthread_mutex_lock(&fx.srv.mu);
    for (size_t i = 0; i < NCASES; i++) {
        if (fk.receipt[i] != 1 || fk.modacks[i] != 1 || fk.deadline[i] != cases[i].want_s) {
            pthread_mutex_unlock(&fx.srv.mu);
            fail_msg("retry after %s: %d modifyAckDeadline call(s) of 60 s (on receipt), %d "
                     "other(s), the last with %d s; expected one of 60 s and one with %d s",
                     cases[i].delay, fk.receipt[i], fk.modacks[i], fk.deadline[i], cases[i].want_s);
        }
    }
    pthread_mutex_unlock(&fx.srv.mu);
    pfx_stop(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retry_deadline_rounds_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
