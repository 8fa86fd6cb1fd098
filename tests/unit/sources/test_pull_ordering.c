/* A retry of a message with an ordering key stays in the router, even where other retries go
 * back to Pub/Sub as a delayed nack (a dead-letter policy, the delay at least nack_after_ms):
 * handed back, it would leave its ordering lane and the next message of its key, pulled with it,
 * would run first. Pub/Sub is a local fake that delivers, in one pull, two messages of ordering
 * key k1 and two of payload key p1 (the route's ordering_key), the first of each failing once,
 * and records what it is told about each.
 * The same holds for a message processed fine whose emits could not be published: it keeps its
 * lane until its emits are out, so its retry runs before the next message of its key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "unit/sources/pull_fixture.h"

#define NMSG 4

struct fake {
    int pulls;
    int acked[NMSG];
    int nacked[NMSG]; /* modifyAckDeadline naming it, but the one on receipt (30 s) */
    int nacked_deadline[NMSG];
};

static const char pull_answer[] =
    "{\"receivedMessages\":["
    "{\"ackId\":\"ack-0\",\"deliveryAttempt\":1,\"message\":{\"messageId\":\"m-0\","
    "\"data\":\"e30=\",\"orderingKey\":\"k1\",\"attributes\":{\"seq\":\"k1-1\","
    "\"test_fail\":\"transient:1\"},\"publishTime\":\"2024-01-01T00:00:00Z\"}},"
    "{\"ackId\":\"ack-1\",\"deliveryAttempt\":1,\"message\":{\"messageId\":\"m-1\","
    "\"data\":\"e30=\",\"orderingKey\":\"k1\",\"attributes\":{\"seq\":\"k1-2\"},"
    "\"publishTime\":\"2024-01-01T00:00:00Z\"}},"
    /* {"k":"p1"} */
    "{\"ackId\":\"ack-2\",\"deliveryAttempt\":1,\"message\":{\"messageId\":\"m-2\","
    "\"data\":\"eyJrIjoicDEifQ==\",\"attributes\":{\"seq\":\"p1-1\","
    "\"test_fail\":\"transient:1\"},\"publishTime\":\"2024-01-01T00:00:00Z\"}},"
    "{\"ackId\":\"ack-3\",\"deliveryAttempt\":1,\"message\":{\"messageId\":\"m-3\","
    "\"data\":\"eyJrIjoicDEifQ==\",\"attributes\":{\"seq\":\"p1-2\"},"
    "\"publishTime\":\"2024-01-01T00:00:00Z\"}}]}";

static int index_of(const cJSON *id)
{
    if (!cJSON_IsString(id) || strncmp(id->valuestring, "ack-", 4) != 0) {
        return -1;
    }
    int k = atoi(id->valuestring + 4);
    return k >= 0 && k < NMSG ? k : -1;
}

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct fake *f = ud;
    cJSON *b = cJSON_Parse(req->body ? req->body : "");
    const cJSON *id;

    if (strstr(req->path, ":pull")) {
        if (f->pulls++ > 0) {
            resp->hang = 1; /* a long poll with nothing more to deliver */
        } else {
            pfx_answer(resp, pull_answer);
        }
    } else if (strstr(req->path, ":modifyAckDeadline")) {
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(b, "ackDeadlineSeconds");
        cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(b, "ackIds"))
        {
            int k = index_of(id);
            if (k >= 0 && (!cJSON_IsNumber(secs) || secs->valueint != 30)) {
                f->nacked[k]++;
                /* proto3 JSON leaves a zero out */
                f->nacked_deadline[k] = cJSON_IsNumber(secs) ? secs->valueint : 0;
            }
        }
        pfx_answer(resp, "{}");
    } else if (strstr(req->path, ":acknowledge")) {
        cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(b, "ackIds"))
        {
            int k = index_of(id);
            if (k >= 0) {
                f->acked[k]++;
            }
        }
        pfx_answer(resp, "{}");
    } else {
        pfx_answer(resp, "{}");
    }
    cJSON_Delete(b);
}

/* every message is acked or handed back */
static int settled(void *arg)
{
    struct fake *f = arg;
    for (int i = 0; i < NMSG; i++) {
        if (!f->acked[i] && !f->nacked[i]) {
            return 0;
        }
    }
    return 1;
}

/* The seqs the test processor recorded, in order, space-separated, with their attempts. */
static void recorded(const struct pull_fx *fx, char *out, size_t outsz)
{
    char path[128], line[1024];
    FILE *f;
    size_t n = 0;

    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/test-processed.jsonl", fx->dir);
    f = fopen(path, "r");
    if (!f) {
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        cJSON *r = cJSON_Parse(line);
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(r, "seq");
        const cJSON *att = cJSON_GetObjectItemCaseSensitive(r, "attempt");
        if (cJSON_IsString(seq) && cJSON_IsNumber(att) && n < outsz) {
            n += (size_t)snprintf(out + n, outsz - n, "%s%s#%d", n ? " " : "", seq->valuestring,
                                  att->valueint);
        }
        cJSON_Delete(r);
    }
    fclose(f);
}

static void retry_keeps_key_order(void **state)
{
    struct pull_fx fx;
    struct fake fk;
    char order[512];

    (void)state;
    memset(&fk, 0, sizeof(fk));
    pfx_load(&fx, handler, &fk,
             "  nack_after_ms: 0\n  subscriptions:\n    - {name: sub-a, topic: topic-a}\n",
             "topics: {topic-a: {type: t}}\n"
             "retry: {types: {t: {max_attempts: 5, initial: 10ms, multiplier: 1, max: 10ms, "
             "jitter: 0}}}\n"
             "routes:\n  - {name: t, default: true, processors: [test], ordering_key: /k}\n");
    pfx_start(&fx);
    int ok = pfx_run_until(&fx, settled, &fk, 20000);
    recorded(&fx, order, sizeof(order));
    pthread_mutex_lock(&fx.srv.mu);
    for (int i = 0; i < NMSG; i++) {
        if (!ok || fk.acked[i] != 1 || fk.nacked[i] != 0) {
            pthread_mutex_unlock(&fx.srv.mu);
            fail_msg("ack-%d: acked %d, handed back to Pub/Sub %d time(s) (last deadline %d s); "
                     "recorded: %s; expected each acked once, none handed back, and k1-1#2 "
                     "k1-2#1 p1-1#2 p1-2#1 in key order",
                     i, fk.acked[i], fk.nacked[i], fk.nacked_deadline[i], order);
        }
    }
    pthread_mutex_unlock(&fx.srv.mu);
    /* per key, the first ran (its second attempt) before the second */
    const char *k1 = strstr(order, "k1-1#2"), *k2 = strstr(order, "k1-2#1");
    const char *p1 = strstr(order, "p1-1#2"), *p2 = strstr(order, "p1-2#1");
    if (!k1 || !k2 || !p1 || !p2 || k2 < k1 || p2 < p1) {
        fail_msg("recorded: %s; expected k1-1#2 before k1-2#1 and p1-1#2 before p1-2#1", order);
    }
    pfx_stop(&fx);
}

/* emit_retry_keeps_key_order: m-0 (k1-1) emits to "flaky", whose first publish is answered,
 * late, with a 503; m-1 (k1-2) has the same ordering key and emits nothing. */
struct efake {
    int pulls;
    int publishes; /* to "flaky" */
    int acked[2];
    int nacked[2];
};

static const char emit_pull_answer[] =
    "{\"receivedMessages\":["
    "{\"ackId\":\"ack-0\",\"message\":{\"messageId\":\"m-0\",\"data\":\"e30=\","
    "\"orderingKey\":\"k1\",\"attributes\":{\"seq\":\"k1-1\",\"test_emit\":\"flaky\"},"
    "\"publishTime\":\"2024-01-01T00:00:00Z\"}},"
    "{\"ackId\":\"ack-1\",\"message\":{\"messageId\":\"m-1\",\"data\":\"e30=\","
    "\"orderingKey\":\"k1\",\"attributes\":{\"seq\":\"k1-2\"},"
    "\"publishTime\":\"2024-01-01T00:00:00Z\"}}]}";

static void emit_handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct efake *f = ud;
    cJSON *b = cJSON_Parse(req->body ? req->body : "");
    const cJSON *id;

    if (strstr(req->path, ":pull")) {
        if (f->pulls++ > 0) {
            resp->hang = 1;
        } else {
            pfx_answer(resp, emit_pull_answer);
        }
    } else if (strstr(req->path, "/topics/flaky:publish")) {
        if (f->publishes++ == 0) {
            /* late enough for m-1 to have run by then, were its lane free */
            resp->delay_ms = 500;
            resp->status = 503;
            pfx_answer(resp, "{\"error\":{\"code\":503,\"message\":\"try again\","
                             "\"status\":\"UNAVAILABLE\"}}");
        } else {
            pfx_answer(resp, "{\"messageIds\":[\"e-1\"]}");
        }
    } else if (strstr(req->path, ":modifyAckDeadline") || strstr(req->path, ":acknowledge")) {
        int ack = strstr(req->path, ":acknowledge") != NULL;
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(b, "ackDeadlineSeconds");
        cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(b, "ackIds"))
        {
            int k = index_of(id);
            if (k < 0 || k > 1) {
                continue;
            }
            if (ack) {
                f->acked[k]++;
            } else if (!cJSON_IsNumber(secs) || secs->valueint != 30) {
                f->nacked[k]++;
            }
        }
        pfx_answer(resp, "{}");
    } else {
        pfx_answer(resp, "{}");
    }
    cJSON_Delete(b);
}

static int both_acked(void *arg)
{
    struct efake *f = arg;
    return f->acked[0] && f->acked[1];
}

static void emit_retry_keeps_key_order(void **state)
{
    struct pull_fx fx;
    struct efake fk;
    char order[512];

    (void)state;
    memset(&fk, 0, sizeof(fk));
    pfx_load(&fx, emit_handler, &fk, "  subscriptions:\n    - {name: sub-a, topic: topic-a}\n",
             "topics: {topic-a: {type: t}}\n"
             "retry: {types: {t: {max_attempts: 5, initial: 10ms, multiplier: 1, max: 10ms, "
             "jitter: 0}}}\n"
             "routes:\n  - {name: t, default: true, processors: [test]}\n");
    pfx_start(&fx);
    int ok = pfx_run_until(&fx, both_acked, &fk, 20000);
    recorded(&fx, order, sizeof(order));
    pthread_mutex_lock(&fx.srv.mu);
    int want = ok && fk.publishes == 2 && fk.acked[0] == 1 && fk.acked[1] == 1 &&
               fk.nacked[0] == 0 && fk.nacked[1] == 0;
    int publishes = fk.publishes, a0 = fk.acked[0], a1 = fk.acked[1], n0 = fk.nacked[0],
        n1 = fk.nacked[1];
    pthread_mutex_unlock(&fx.srv.mu);
    if (!want || strcmp(order, "k1-1#1 k1-1#2 k1-2#1") != 0) {
        fail_msg("recorded: %s; publishes to flaky %d, acked %d/%d, handed back %d/%d; expected "
                 "k1-1#1 k1-1#2 k1-2#1 (the retry of k1-1 before k1-2), 2 publishes, each acked "
                 "once, none handed back",
                 order, publishes, a0, a1, n0, n1);
    }
    pfx_stop(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retry_keeps_key_order),
        cmocka_unit_test(emit_retry_keeps_key_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
