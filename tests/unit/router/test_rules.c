/* Rule matching, backoff, breaker, envelope parsing, publish validation, config errors. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/config.h"
#include "dr/err.h"
#include "dr/local.h"
#include "dr/msg.h"
#include "dr/router.h"
#include "dr/store.h"
#include "dr/util.h"

static struct dr_config *load(const char *yaml)
{
    struct dr_config *c = NULL;
    char err[512];
    int rc = dr_config_load_string(yaml, strlen(yaml), "t.yaml", &c, err, sizeof(err));
    if (rc) {
        fail_msg("config: %s", err);
    }
    return c;
}

static void expect_config_error(const char *yaml, const char *needle)
{
    struct dr_config *c = NULL;
    char err[512] = "";
    assert_int_not_equal(dr_config_load_string(yaml, strlen(yaml), "bad.yaml", &c, err,
                                               sizeof(err)),
                         DR_OK);
    assert_null(c);
    if (!strstr(err, needle) || strncmp(err, "bad.yaml: ", 10) != 0) {
        fail_msg("error '%s' lacks '%s'", err, needle);
    }
}

static struct dr_msg *mk(const char *topic, const char *data, const char *const *attrs)
{
    struct dr_msg *m = dr_msg_create("1", topic, data, strlen(data), 0);
    for (size_t i = 0; attrs && attrs[i]; i += 2) {
        dr_msg_add_attr(m, attrs[i], attrs[i + 1]);
    }
    dr_msg_finish(m, "deftype", 0);
    return m;
}

static const char routes_yaml[] =
    "processors: {log: {}, test: {}}\n"
    "routes:\n"
    "  - name: by-topic-and-type\n"
    "    match: {topic: [a-topic, b-topic], type: order}\n"
    "    processors: [test]\n"
    "  - name: by-attrs\n"
    "    match:\n"
    "      attributes: {source: gmail, region: {prefix: eu-}, trace: {exists: true}}\n"
    "    processors: [log, test]\n"
    "  - name: by-payload\n"
    "    match:\n"
    "      topic: p-topic\n"
    "      payload: {/status: delivered, /tracking/id: {exists: true}, /n: 3}\n"
    "    processors: [log]\n"
    "  - name: fallback\n"
    "    default: true\n"
    "    match: {topic: [a-topic, b-topic, p-topic, x-topic]}\n"
    "    processors: [log]\n";

static void match_topic_type(void **state)
{
    struct dr_config *c = load(routes_yaml);
    size_t idx[8];
    const char *t1[] = {"type", "order", NULL};
    struct dr_msg *m = mk("b-topic", "{}", t1);
    assert_int_equal(dr_route_match(c, m, idx, 8), 1);
    assert_string_equal(c->routes[idx[0]].name, "by-topic-and-type");
    dr_msg_unref(m);
    /* type from the payload */
    m = mk("a-topic", "{\"type\":\"order\"}", NULL);
    assert_int_equal(dr_route_match(c, m, idx, 8), 1);
    assert_string_equal(c->routes[idx[0]].name, "by-topic-and-type");
    dr_msg_unref(m);
    /* wrong type → default route */
    m = mk("a-topic", "{\"type\":\"refund\"}", NULL);
    assert_int_equal(dr_route_match(c, m, idx, 8), 1);
    assert_string_equal(c->routes[idx[0]].name, "fallback");
    dr_msg_unref(m);
    /* nothing matches, not even the default → no route */
    m = mk("other", "{}", NULL);
    assert_int_equal(dr_route_match(c, m, idx, 8), 0);
    dr_msg_unref(m);
    dr_config_destroy(c);
}

static void match_attributes(void **state)
{
    struct dr_config *c = load(routes_yaml);
    size_t idx[8];
    const char *ok[] = {"source", "gmail", "region", "eu-west", "trace", "", NULL};
    const char *bad_prefix[] = {"source", "gmail", "region", "us-east", "trace", "x", NULL};
    const char *missing[] = {"source", "gmail", "region", "eu-west", NULL};
    struct dr_msg *m = mk("x-topic", "{}", ok);
    assert_int_equal(dr_route_match(c, m, idx, 8), 1);
    assert_string_equal(c->routes[idx[0]].name, "by-attrs");
    assert_int_equal(c->routes[idx[0]].nprocessors, 2);
    dr_msg_unref(m);
    m = mk("x-topic", "{}", bad_prefix);
    assert_int_equal(dr_route_match(c, m, idx, 8), 1);
    assert_string_equal(c->routes[idx[0]].name, "fallback");
    dr_msg_unref(m);
    m = mk("x-topic", "{}", missing);
    assert_string_equal(c->routes[idx[dr_route_match(c, m, idx, 8) - 1]].name, "fallback");
    dr_msg_unref(m);
    dr_config_destroy(c);
}

static void match_payload(void **state)
{
    struct dr_config *c = load(routes_yaml);
    size_t idx[8];
    struct dr_msg *m = mk("p-topic", "{\"status\":\"delivered\",\"tracking\":{\"id\":\"1Z\"},\"n\":3}",
                          NULL);
    assert_int_equal(dr_route_match(c, m, idx, 8), 1);
    assert_string_equal(c->routes[idx[0]].name, "by-payload");
    dr_msg_unref(m);
    m = mk("p-topic", "{\"status\":\"delivered\",\"tracking\":{},\"n\":3}", NULL);
    dr_route_match(c, m, idx, 8);
    assert_string_equal(c->routes[idx[0]].name, "fallback");
    dr_msg_unref(m);
    m = mk("p-topic", "{\"status\":\"delivered\",\"tracking\":{\"id\":1},\"n\":4}", NULL);
    dr_route_match(c, m, idx, 8);
    assert_string_equal(c->routes[idx[0]].name, "fallback");
    dr_msg_unref(m);
    /* not JSON at all */
    m = mk("p-topic", "\x01\x02 not json", NULL);
    assert_null(dr_msg_payload(m));
    dr_route_match(c, m, idx, 8);
    assert_string_equal(c->routes[idx[0]].name, "fallback");
    dr_msg_unref(m);
    dr_config_destroy(c);
}

static void *payload_main(void *arg)
{
    return (void *)dr_msg_payload(arg);
}

/* The payload is parsed on first use; threads asking at once all get the same one tree. */
static void payload_parsed_once(void **state)
{
    static const char data[] = "{\"type\":\"t\",\"n\":[1,2,3]}";
    struct dr_msg *m = dr_msg_create("1", "p-topic", data, strlen(data), 0); /* not finished */
    pthread_t t[8];
    void *got[8];

    (void)state;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, payload_main, m), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], &got[i]);
        assert_non_null(got[i]);
        assert_ptr_equal(got[i], got[0]);
    }
    assert_ptr_equal(dr_msg_payload(m), got[0]);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(dr_msg_payload(m), "n")), 3);
    /* the type falls back to the payload's when no attribute names one */
    dr_msg_finish(m, "default", 0);
    assert_string_equal(m->type, "t");
    dr_msg_unref(m);
    /* data that is not JSON stays NULL however often it is asked */
    m = dr_msg_create("2", "p-topic", "{\"unterminated\":", 15, 0);
    assert_null(dr_msg_payload(m));
    assert_null(dr_msg_payload(m));
    dr_msg_finish(m, "default", 0);
    assert_string_equal(m->type, "default");
    dr_msg_unref(m);
    /* a message released without anyone looking at its payload */
    dr_msg_unref(dr_msg_create("3", "p-topic", "{\"never\":1}", 11, 0));
}

static void backoff(void **state)
{
    struct dr_retry_policy p = {.max_attempts = 5, .initial_ms = 100, .multiplier = 2,
                                .max_ms = 1000, .jitter = 0};
    assert_int_equal(dr_backoff_delay(&p, 1, 0.5), 100);
    assert_int_equal(dr_backoff_delay(&p, 2, 0.5), 200);
    assert_int_equal(dr_backoff_delay(&p, 4, 0.5), 800);
    assert_int_equal(dr_backoff_delay(&p, 5, 0.5), 1000);
    assert_int_equal(dr_backoff_delay(&p, 60, 0.5), 1000);
    p.jitter = 0.5;
    assert_int_equal(dr_backoff_delay(&p, 1, 0.0), 50);
    assert_int_equal(dr_backoff_delay(&p, 1, 0.999999), 149);
    assert_true(dr_backoff_delay(&p, 10, 0.999) <= 1000);
    /* at the cap the delays still spread, below it: none piles up at max */
    assert_int_equal(dr_backoff_delay(&p, 60, 0.0), 500);
    assert_int_equal(dr_backoff_delay(&p, 60, 0.5), 750);
    for (int i = 0, at_max = 0; i < 1000; i++) {
        int64_t d = dr_backoff_delay(&p, 60, i / 1000.0);
        assert_true(d >= 500 && d <= 1000);
        at_max += d == 1000;
        assert_true(at_max <= 1);
    }
    /* just below the cap: up to max, evenly */
    assert_int_equal(dr_backoff_delay(&p, 4, 0.0), 400);
    assert_int_equal(dr_backoff_delay(&p, 4, 0.5), 700);
}

static void breaker(void **state)
{
    struct dr_breaker b;
    dr_breaker_init(&b, "vespa", 3, 1000);
    assert_true(dr_breaker_allow(&b, 0));
    dr_breaker_failure(&b, 10);
    dr_breaker_failure(&b, 20);
    assert_int_equal(b.state, DR_BREAKER_CLOSED);
    dr_breaker_success(&b); /* success resets the count */
    dr_breaker_failure(&b, 30);
    dr_breaker_failure(&b, 40);
    assert_int_equal(b.state, DR_BREAKER_CLOSED);
    dr_breaker_failure(&b, 50);
    assert_int_equal(b.state, DR_BREAKER_OPEN);
    assert_false(dr_breaker_allow(&b, 500));
    assert_int_equal(dr_breaker_wait_ms(&b, 500), 550);
    assert_true(dr_breaker_allow(&b, 1100)); /* half-open probe */
    assert_int_equal(b.state, DR_BREAKER_HALF_OPEN);
    assert_false(dr_breaker_allow(&b, 1101)); /* one probe at a time */
    dr_breaker_failure(&b, 1200);
    assert_int_equal(b.state, DR_BREAKER_OPEN);
    assert_false(dr_breaker_allow(&b, 1300));
    assert_true(dr_breaker_allow(&b, 2300));
    dr_breaker_success(&b);
    assert_int_equal(b.state, DR_BREAKER_CLOSED);
    assert_int_equal(b.opens, 2);
}

static void envelope(void **state)
{
    const char *attrs[] = {"priority", "7", "traceparent",
                           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                           "idempotency_key", "abc", NULL};
    struct dr_msg *m = mk("email-backfill", "{\"user_id\":\"u1\"}", attrs);
    char *env;
    assert_string_equal(m->type, "deftype");
    assert_int_equal(m->priority, 7);
    assert_string_equal(dr_msg_dedup_key(m), "abc");
    assert_non_null(m->traceparent);
    char trace[33];
    dr_msg_trace_id(m, trace);
    assert_string_equal(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    env = dr_msg_envelope_json(m);
    assert_non_null(strstr(env, "\"message_type\":\"deftype\""));
    assert_non_null(strstr(env, "\"payload\":{\"user_id\":\"u1\"}"));
    assert_non_null(strstr(env, "\"retry_count\":0"));
    free(env);
    dr_msg_unref(m);
    const char *bad[] = {"priority", "12", NULL};
    m = mk("t", "{}", bad);
    assert_int_equal(m->priority, 0); /* out of range: the default */
    dr_msg_trace_id(m, trace);
    assert_string_equal(trace, "-");
    assert_string_equal(dr_msg_dedup_key(m), "1");
    dr_msg_unref(m);
}

static void expect_publish(const char *body, int want, const char *needle)
{
    struct dr_qmsg *rows = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc = dr_publish_parse(body, strlen(body), "topic-x", &rows, &n, err, sizeof(err));
    assert_int_equal(rc, want);
    if (want) {
        assert_null(rows);
        if (!strstr(err, needle)) {
            fail_msg("'%s' lacks '%s'", err, needle);
        }
    } else {
        dr_qmsgs_free(rows, n);
    }
}

static void publish_validation(void **state)
{
    struct dr_buf b;
    expect_publish("{\"messages\":[{\"data\":\"aGk=\",\"attributes\":{\"a\":\"b\"},"
                   "\"orderingKey\":\"k\"}]}",
                   DR_OK, NULL);
    expect_publish("{\"messages\":[{\"attributes\":{\"only\":\"attrs\"}}]}", DR_OK, NULL);
    expect_publish("{not json", DR_EINVAL, "Invalid JSON");
    expect_publish("{\"messages\":[]}", DR_EINVAL, "no messages");
    expect_publish("{\"messages\":{}}", DR_EINVAL, "messages");
    expect_publish("{\"messages\":[{\"data\":\"***\"}]}", DR_EINVAL, "Base64");
    expect_publish("{\"messages\":[{\"data\":12}]}", DR_EINVAL, "Base64");
    expect_publish("{\"messages\":[{}]}", DR_EINVAL, "no data");
    expect_publish("{\"messages\":[{\"data\":\"aGk=\",\"attributes\":{\"a\":1}}]}", DR_EINVAL,
                   "strings");
    expect_publish("{\"messages\":[{\"data\":\"aGk=\",\"attributes\":{\"googx\":\"1\"}}]}",
                   DR_EINVAL, "goog");
    /* 1001 messages */
    dr_buf_init(&b, 1 << 20);
    dr_buf_appends(&b, "{\"messages\":[");
    for (int i = 0; i < 1001; i++) {
        dr_buf_appends(&b, i ? ",{\"data\":\"aGk=\"}" : "{\"data\":\"aGk=\"}");
    }
    dr_buf_appends(&b, "]}");
    expect_publish(b.data, DR_EINVAL, "maximum value is 1000");
    /* attribute value over 1024 bytes */
    dr_buf_reset(&b);
    dr_buf_appends(&b, "{\"messages\":[{\"data\":\"aGk=\",\"attributes\":{\"k\":\"");
    for (int i = 0; i < 1025; i++) {
        dr_buf_appendc(&b, 'v');
    }
    dr_buf_appends(&b, "\"}}]}");
    expect_publish(b.data, DR_ETOOBIG, "1024");
    /* 101 attributes */
    dr_buf_reset(&b);
    dr_buf_appends(&b, "{\"messages\":[{\"data\":\"aGk=\",\"attributes\":{");
    for (int i = 0; i < 101; i++) {
        dr_buf_printf(&b, "%s\"k%d\":\"v\"", i ? "," : "", i);
    }
    dr_buf_appends(&b, "}}]}");
    expect_publish(b.data, DR_ETOOBIG, "at most 100");
    dr_buf_cleanup(&b);
    assert_true(dr_topic_name_valid("email-backfill"));
    assert_false(dr_topic_name_valid("ab"));
    assert_false(dr_topic_name_valid("9topic"));
    assert_false(dr_topic_name_valid("goog-x"));
    assert_false(dr_topic_name_valid("a/b/c"));
}

static void config_errors(void **state)
{
    expect_config_error("routes:\n  - processors: [emial]\n", "routes[0].processors[0]");
    expect_config_error("routes:\n  - name: x\n", "routes[0].processors");
    expect_config_error("mode: turbo\n", "mode");
    expect_config_error("http: {port: 70000}\n", "http.port");
    expect_config_error("workers: many\n", "workers");
    expect_config_error("dedup: {window: forever}\n", "dedup.window");
    expect_config_error("retry: {default: {jitter: 3}}\n", "retry.default.jitter");
    expect_config_error("unknown_key: 1\n", "unknown_key");
    expect_config_error("routes: [\n", "line");
    expect_config_error("api_keys: [{name: a, role: root, sha256: x}]\n", "api_keys[0].role");
    expect_config_error("routes:\n  - processors: [log]\n    match: {payload: {status: x}}\n",
                        "JSON pointer");
    /* sections keyed by name given as lists (the first is a generated input): refused, not
     * read as keys that are not there */
    expect_config_error("processors: [log]\n", "processors: expected a mapping");
    expect_config_error("breakers: [default]\n", "breakers: expected a mapping");
    expect_config_error("retry: {types: [test]}\n", "retry.types: expected a mapping");
    /* numbers beyond int64_t's range are refused, not converted (the first is a generated
     * input) */
    expect_config_error(
        "dedup:\n  window: 111111111111111111111111111111111111111111111111111111111111"
        "1111111111111111111111111111111111111111111111111\n",
        "dedup.window");
    expect_config_error("dedup: {window: 1e999}\n", "dedup.window");
    expect_config_error("workers: 1e300\n", "workers");
    expect_config_error("http: {port: -1e300}\n", "http.port");
    /* the embedded defaults load */
    struct dr_config *c = NULL;
    char err[256];
    assert_int_equal(dr_config_load(NULL, &c, err, sizeof(err)), DR_OK);
    assert_string_equal(c->mode, "local");
    assert_true(c->nroutes >= 2);
    dr_config_destroy(c);
}

static void durations(void **state)
{
    int64_t ms;
    assert_int_equal(dr_parse_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(dr_parse_duration("1.5s", &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(dr_parse_duration("24h", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_not_equal(dr_parse_duration("5 parsecs", &ms), 0);
    assert_int_not_equal(dr_parse_duration("-1s", &ms), 0);
    assert_int_equal(dr_parse_duration("0.0015s", &ms), 0);
    assert_int_equal(ms, 1);
    assert_int_equal(dr_parse_duration("36500d", &ms), 0);
    assert_int_equal(ms, DR_DURATION_MAX_MS);
    /* zero needs no unit; any other number does */
    assert_int_equal(dr_parse_duration("0", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(dr_parse_duration("0.00", &ms), 0);
    assert_int_equal(ms, 0);
    /* what strtod() reads but is not a duration: refused, *ms untouched */
    static const char *const bad[] = {"10",       "1.5",  "0.5",  "nan", "nanms", "NaN",  "inf",
                                      "infinity", "-inf", "+5s",  " 5s", "5s ",   "1e3s", "0x10s",
                                      "5.s",      ".5s",  "1,5s", "",    "s",     "5ss",  "5 s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = 42;
        if (dr_parse_duration(bad[i], &ms) != DR_EINVAL || ms != 42) {
            fail_msg("'%s' taken as %lld ms", bad[i], (long long)ms);
        }
    }
    /* beyond 100 years, however many digits */
    static const char *const big[] = {"36501d", "1e999s", "9200000000000000ms",
                                      "99999999999999999999999999999999999999h"};
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        ms = 42;
        if (dr_parse_duration(big[i], &ms) == DR_OK || ms != 42) {
            fail_msg("'%s' taken as %lld ms", big[i], (long long)ms);
        }
    }
    assert_int_equal(dr_parse_duration("36501d", &ms), DR_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(match_topic_type),
        cmocka_unit_test(match_attributes),
        cmocka_unit_test(match_payload),
        cmocka_unit_test(backoff),
        cmocka_unit_test(breaker),
        cmocka_unit_test(envelope),
        cmocka_unit_test(publish_validation),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(durations),
        cmocka_unit_test(payload_parsed_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
