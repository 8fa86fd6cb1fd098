/* Pub/Sub takes at most 100 attributes per message. What the pull source publishes never drops
 * attributes to fit:
 *   m-emit  processed, its emit (to "out") carries 100 attributes of the processor's and would
 *           carry the idempotency_key too: it is not published; the message is dead-lettered
 *           at once (emit_refused, saying why) instead;
 *   m-dead  100 attributes, rejected by the processor: its dead letter is stored whole, and its
 *           copy on its dead-letter topic carries every one of its attributes (the dead
 *           letter's own dr_* ones only as far as the limit leaves room: here none);
 *   m-trace processed, has a traceparent, its emit carries 99 attributes of the processor's:
 *           it is published with the idempotency_key (100 in all), the trace context left out.
 * Pub/Sub is a local fake that delivers the three in one pull and records what is published. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "unit/sources/pull_fixture.h"

#define NFILL  99 /* m-dead: test_fail and f0..f98 */
#define NEXTRA 99 /* m-emit's emit: test_parent and e0..e98 */
#define NTRACE 98 /* m-trace's emit: test_parent and e0..e97, and m-trace has a traceparent */

struct fake {
    int pulls;
    int acked[3]; /* ack-emit, ack-dead, ack-trace */
    int out_publishes;
    int out_whole; /* of those, m-trace's with all its processor's attributes, the
                      idempotency_key and no traceparent (100 in all) */
    int dlq_copies;
    int dlq_short; /* of those, missing one of m-dead's attributes */
    int dlq_attrs;
};

static char pull_answer[16384];

static void make_pull_answer(void)
{
    size_t n = 0;

    n += (size_t)snprintf(
        pull_answer + n, sizeof(pull_answer) - n,
        "{\"receivedMessages\":["
        "{\"ackId\":\"ack-emit\",\"message\":{\"messageId\":\"m-emit\",\"data\":\"e30=\","
        "\"attributes\":{\"test_emit\":\"out\",\"test_emit_attrs\":\"%d\"},"
        "\"publishTime\":\"2024-01-01T00:00:00Z\"}},"
        "{\"ackId\":\"ack-trace\",\"message\":{\"messageId\":\"m-trace\",\"data\":\"e30=\","
        "\"attributes\":{\"test_emit\":\"out\",\"test_emit_attrs\":\"%d\",\"traceparent\":"
        "\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"},"
        "\"publishTime\":\"2024-01-01T00:00:00Z\"}},"
        "{\"ackId\":\"ack-dead\",\"message\":{\"messageId\":\"m-dead\",\"data\":\"e30=\","
        "\"attributes\":{\"test_fail\":\"permanent\"",
        NEXTRA, NTRACE);
    for (int i = 0; i < NFILL; i++) {
        n += (size_t)snprintf(pull_answer + n, sizeof(pull_answer) - n, ",\"f%d\":\"v\"", i);
    }
    snprintf(pull_answer + n, sizeof(pull_answer) - n,
             "},\"publishTime\":\"2024-01-01T00:00:00Z\"}}]}");
}

/* 1 when attrs has every key prefix0..prefix<n-1> */
static int has_all(const cJSON *attrs, const char *prefix, int n)
{
    char k[16];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "%s%d", prefix, i);
        if (!cJSON_GetObjectItemCaseSensitive(attrs, k)) {
            return 0;
        }
    }
    return 1;
}

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct fake *f = ud;
    cJSON *b = cJSON_Parse(req->body ? req->body : "");
    const cJSON *id;
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "messages"), 0), "attributes");

    if (strstr(req->path, ":pull")) {
        if (f->pulls++ > 0) {
            resp->hang = 1; /* a long poll with nothing more to deliver */
        } else {
            pfx_answer(resp, pull_answer);
        }
    } else if (strstr(req->path, "/topics/out:publish")) {
        const cJSON *parent = cJSON_GetObjectItemCaseSensitive(attrs, "test_parent");
        f->out_publishes++;
        f->out_whole += cJSON_IsString(parent) && strcmp(parent->valuestring, "m-trace") == 0 &&
                        cJSON_GetObjectItemCaseSensitive(attrs, "idempotency_key") &&
                        !cJSON_GetObjectItemCaseSensitive(attrs, "traceparent") &&
                        has_all(attrs, "e", NTRACE) && cJSON_GetArraySize(attrs) == 100;
        pfx_answer(resp, "{\"messageIds\":[\"o-1\"]}");
    } else if (strstr(req->path, "/topics/topic-a-dlq:publish")) {
        const cJSON *fail = cJSON_GetObjectItemCaseSensitive(attrs, "test_fail");
        if (cJSON_IsString(fail) && strcmp(fail->valuestring, "permanent") == 0) {
            f->dlq_copies++;
            f->dlq_attrs = cJSON_GetArraySize(attrs);
            f->dlq_short += !has_all(attrs, "f", NFILL);
        }
        pfx_answer(resp, "{\"messageIds\":[\"d-1\"]}");
    } else if (strstr(req->path, ":acknowledge")) {
        cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(b, "ackIds"))
        {
            if (cJSON_IsString(id) && strcmp(id->valuestring, "ack-emit") == 0) {
                f->acked[0]++;
            } else if (cJSON_IsString(id) && strcmp(id->valuestring, "ack-dead") == 0) {
                f->acked[1]++;
            } else if (cJSON_IsString(id) && strcmp(id->valuestring, "ack-trace") == 0) {
                f->acked[2]++;
            }
        }
        pfx_answer(resp, "{}");
    } else {
        pfx_answer(resp, "{}");
    }
    cJSON_Delete(b);
}

static int all_acked(void *arg)
{
    struct fake *f = arg;
    return f->acked[0] && f->acked[1] && f->acked[2];
}

/* The number of attributes of the stored dead letter of message_id, or -1 when there is none
 * with reason; its error goes into err. */
static int stored(struct pull_fx *fx, const char *message_id, const char *reason, char *err,
                  size_t errsz)
{
    struct dr_dlq_filter flt;
    struct dr_dead_letter *dls = NULL;
    size_t ndl = 0;
    int n = -1;

    err[0] = '\0';
    memset(&flt, 0, sizeof(flt));
    flt.reason = reason;
    assert_int_equal(dr_store_dlq_list(fx->st, &flt, &dls, &ndl), DR_OK);
    for (size_t k = 0; k < ndl; k++) {
        if (strcmp(dls[k].message_id, message_id) == 0) {
            cJSON *m = cJSON_Parse(dls[k].message_json);
            n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "attributes"));
            cJSON_Delete(m);
            snprintf(err, errsz, "%s", dls[k].error ? dls[k].error : "");
        }
    }
    dr_dead_letters_free(dls, ndl);
    return n;
}

static void attributes_never_dropped(void **state)
{
    struct pull_fx fx;
    struct fake fk;
    char emit_err[512], dead_err[512], got[1024];

    (void)state;
    make_pull_answer();
    memset(&fk, 0, sizeof(fk));
    pfx_load(&fx, handler, &fk, "  subscriptions:\n    - {name: sub-a, topic: topic-a}\n",
             "routes:\n  - {name: t, default: true, processors: [test]}\n");
    pfx_start(&fx);
    int ok = pfx_run_until(&fx, all_acked, &fk, 20000);
    int emit_dl = stored(&fx, "m-emit", "emit_refused", emit_err, sizeof(emit_err));
    int dead_dl = stored(&fx, "m-dead", "test_permanent", dead_err, sizeof(dead_err));

    pthread_mutex_lock(&fx.srv.mu);
    snprintf(got, sizeof(got),
             "acked %d/%d/%d; out: %d publish(es), %d of m-trace's whole; m-dead's "
             "copies on topic-a-dlq: %d, %d short (last with %d attributes); stored: m-emit "
             "emit_refused %s (\"%s\"), m-dead with %d attributes",
             fk.acked[0], fk.acked[1], fk.acked[2], fk.out_publishes, fk.out_whole, fk.dlq_copies,
             fk.dlq_short, fk.dlq_attrs, emit_dl >= 0 ? "yes" : "no", emit_err, dead_dl);
    int want = ok && fk.acked[0] == 1 && fk.acked[1] == 1 && fk.acked[2] == 1 &&
               fk.out_publishes == 1 && fk.out_whole == 1 && fk.dlq_copies == 1 &&
               fk.dlq_short == 0 && fk.dlq_attrs == NFILL + 1 && emit_dl >= 0 &&
               strstr(emit_err, "out: ") && strstr(emit_err, "101 attributes (limit 100)") &&
               dead_dl == NFILL + 1;
    pthread_mutex_unlock(&fx.srv.mu);
    if (!want) {
        fail_msg("%s; expected each acked once, only m-trace's emit published to out (its "
                 "processor's 99 attributes and the idempotency_key, without the traceparent), "
                 "one copy of m-dead "
                 "with its 100 attributes, m-emit stored as emit_refused (\"out: ... 101 "
                 "attributes (limit 100)\"), m-dead stored with 100 attributes",
                 got);
    }
    pfx_stop(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attributes_never_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
