#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <glib.h>

#include "dr/buf.h"
#include "dr/config.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/metrics.h"
#include "dr/msg.h"
#include "dr/processor.h"
#include "dr/util.h"

static void buf_limit(void **state)
{
    struct dr_buf b;
    dr_buf_init(&b, 8);
    assert_int_equal(dr_buf_appends(&b, "12345678"), DR_OK);
    assert_int_equal(dr_buf_appendc(&b, 'x'), DR_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    dr_buf_cleanup(&b);
    /* SIZE_MAX: no limit (the capacity must not wrap to 0) */
    dr_buf_init(&b, SIZE_MAX);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(dr_buf_appends(&b, "0123456789"), DR_OK);
    }
    assert_int_equal(b.len, 1000);
    assert_int_equal(b.data[999], '9');
    dr_buf_cleanup(&b);
}

static void buf_json_escape(void **state)
{
    struct dr_buf b;
    dr_buf_init(&b, 1024);
    assert_int_equal(dr_buf_append_json_str(&b, "a\"b\\\n\x01", 6), DR_OK);
    assert_string_equal(b.data, "\"a\\\"b\\\\\\n\\u0001\"");
    dr_buf_reset(&b);
    assert_int_equal(dr_buf_append_json_str(&b, "\b\f\x1f\xc3\xa9/x", 7), DR_OK);
    assert_string_equal(b.data, "\"\\b\\f\\u001f\xc3\xa9/x\"");
    dr_buf_cleanup(&b);
}

static void base64_roundtrip(void **state)
{
    const char *cases[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *enc;
        unsigned char *dec;
        size_t n, m;
        assert_int_equal(dr_base64_encode(cases[i], strlen(cases[i]), &enc, &n), DR_OK);
        assert_string_equal(enc, std[i]);
        assert_int_equal(dr_base64_decode(enc, n, &dec, &m), DR_OK);
        assert_int_equal(m, strlen(cases[i]));
        assert_memory_equal(dec, cases[i], m);
        free(enc);
        free(dec);
    }
}

static void base64_rejects_junk(void **state)
{
    unsigned char *dec = NULL;
    size_t m;
    assert_int_equal(dr_base64_decode("Zm9v!", 5, &dec, &m), DR_EINVAL);
    assert_int_equal(dr_base64_decode("Zm9", 3, &dec, &m), DR_EINVAL);
    assert_int_equal(dr_base64_decode("Zm 9v", 5, &dec, &m), DR_EINVAL);
    assert_int_equal(dr_base64url_decode("_-8", 3, &dec, &m), DR_OK);
    assert_int_equal(m, 2);
    assert_int_equal(dec[0], 0xff);
    free(dec);
}

/* A message's data: what the publish API (and Pub/Sub) takes, no more. */
static void base64_data_either_alphabet(void **state)
{
    static const struct {
        const char *in;
        const char *out; /* NULL: refused */
        size_t len;
    } cases[] = {
        {"Zm8=", "fo", 2},
        {"Zm8", "fo", 2},
        {"-_8", "\xfb\xff", 2},
        {"-_8=", "\xfb\xff", 2},
        {"+/8=", "\xfb\xff", 2},
        {"+/8", NULL, 0},
        {"Zm8==", NULL, 0},
        {"Z", NULL, 0},
        {"Zm 8=", NULL, 0},
        {"-/8=", NULL, 0},
        {"", "", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char *dec = NULL;
        size_t m = 0;
        int rc = dr_base64_data_decode(cases[i].in, strlen(cases[i].in), &dec, &m);
        if (!cases[i].out) {
            assert_int_equal(rc, DR_EINVAL);
            continue;
        }
        assert_int_equal(rc, DR_OK);
        assert_int_equal(m, cases[i].len);
        assert_memory_equal(dec, cases[i].out, m);
        free(dec);
    }
}

static void time_roundtrip(void **state)
{
    int64_t t;
    char out[32];
    assert_int_equal(dr_parse_time("2026-11-27T10:00:00.123Z", &t), DR_OK);
    dr_format_time(t, out);
    assert_string_equal(out, "2026-11-27T10:00:00.123Z");
    assert_int_equal(dr_parse_time("2026-11-27T12:00:00+02:00", &t), DR_OK);
    dr_format_time(t, out);
    assert_string_equal(out, "2026-11-27T10:00:00.000Z");
    assert_int_equal(dr_parse_time("2026-13-27T12:00:00Z", &t), DR_EINVAL);
    assert_int_equal(dr_parse_time("yesterday", &t), DR_EINVAL);
}

/* dr_parse_time() counts days itself: the same seconds as timegm() for every day of
 * 1890..2110, and around every year's end of February (leap years of 1900, 2000, 2400 and
 * the rest) from 0000 to 9999, with the days and seconds past a month's or minute's end the
 * syntax lets through. */
static void time_matches_timegm(void **state)
{
    static const int days_in[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    long checked = 0;

    (void)state;
    for (int y = 0; y <= 9999; y++) {
        for (int mo = 1; mo <= 12; mo++) {
            int every_day = y >= 1890 && y <= 2110;
            if (!every_day && mo != 1 && mo != 2 && mo != 3 && mo != 12) {
                continue;
            }
            for (int d = every_day ? 1 : days_in[mo - 1] - 1; d <= 31; d++) {
                struct tm tm = {.tm_year = y - 1900,
                                .tm_mon = mo - 1,
                                .tm_mday = d,
                                .tm_hour = (d * 7) % 24,
                                .tm_min = (d * 13) % 60,
                                .tm_sec = d == 31 ? 60 : (d * 17) % 60};
                char s[40];
                int64_t t;

                snprintf(s, sizeof(s), "%04d-%02d-%02dT%02d:%02d:%02d.250Z", y, mo, d, tm.tm_hour,
                         tm.tm_min, tm.tm_sec);
                if (dr_parse_time(s, &t) != DR_OK) {
                    fail_msg("%s refused", s);
                }
                if (t != (int64_t)timegm(&tm) * 1000 + 250) {
                    fail_msg("%s: %lld, timegm %lld", s, (long long)t,
                             (long long)timegm(&tm) * 1000 + 250);
                }
                checked++;
            }
        }
    }
    assert_true(checked > 100000);
}

static void json_pointer(void **state)
{
    cJSON *j = cJSON_Parse("{\"a\":{\"b/c\":[1,{\"d~e\":\"x\"}]}}");
    const cJSON *v = dr_json_pointer(j, "/a/b~1c/1/d~0e");
    assert_non_null(v);
    assert_string_equal(v->valuestring, "x");
    assert_null(dr_json_pointer(j, "/a/zz"));
    assert_null(dr_json_pointer(j, "a"));
    assert_null(dr_json_pointer(j, "/a/b~1c/9"));
    cJSON_Delete(j);
}

/* Numbers beyond int64_t's range are refused before any conversion (converting them is
 * undefined). The first body is a generated input: a Pub/Sub pull answer whose deliveryAttempt
 * went through dr_json_i64(). */
static void json_i64_range(void **state)
{
    static const char *const out_of_range[] = {
        "{\"receivedMessages\": [{\"ackId\": \"ack-1\", \"deliveryAttempt\": "
        "66666666666666666666666666666663}]}",
        "{\"v\":9223372036854775807}", /* rounds to 2^63 as a double */
        "{\"v\":-9223372036854780000}",
        "{\"v\":1e300}",
        "{\"v\":-1e300}",
        "{\"v\":1e999}",
        "{\"v\":-1e999}",
        "{\"v\":0.5}"};
    int64_t v = 0;

    for (size_t i = 0; i < DR_ARRAY_LEN(out_of_range); i++) {
        cJSON *j = cJSON_Parse(out_of_range[i]);
        const cJSON *obj =
            i == 0 ? cJSON_GetArrayItem(cJSON_GetObjectItem(j, "receivedMessages"), 0) : j;
        assert_non_null(j);
        assert_int_equal(dr_json_i64(obj, i == 0 ? "deliveryAttempt" : "v", &v), DR_EINVAL);
        cJSON_Delete(j);
    }
    {
        cJSON *j =
            cJSON_Parse("{\"min\":-9223372036854775808,\"big\":9007199254740992,\"s\":\"1\"}");
        assert_int_equal(dr_json_i64(j, "min", &v), DR_OK);
        assert_true(v == INT64_MIN);
        assert_int_equal(dr_json_i64(j, "big", &v), DR_OK);
        assert_true(v == 9007199254740992LL);
        assert_int_equal(dr_json_i64(j, "s", &v), DR_EINVAL);
        assert_int_equal(dr_json_i64(j, "none", &v), DR_ENOTFOUND);
        cJSON_Delete(j);
    }
}

/* A mapping of 100,000 keys (a generated 1.2 MB document) is checked for duplicates in
 * O(n log n): looking each key up among the ones before it took minutes. The duplicate reported
 * is still the first one met when reading. */
static void yaml_many_keys(void **state)
{
    struct dr_buf b;
    cJSON *j = NULL;
    char err[128];
    uint64_t t0;

    dr_buf_init(&b, 4u << 20);
    dr_buf_appends(&b, "x:\n");
    for (int i = 0; i < 100000; i++) {
        dr_buf_printf(&b, "  k%d: 1\n", i);
    }
    t0 = dr_mono_ns();
    assert_int_equal(dr_yaml_to_json(b.data, b.len, &j, err, sizeof(err)), DR_OK);
    assert_true(dr_mono_ns() - t0 < 20ull * 1000 * 1000 * 1000);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "x")), 100000);
    cJSON_Delete(j);
    dr_buf_appends(&b, "  k5: 2\n");
    assert_int_equal(dr_yaml_to_json(b.data, b.len, &j, err, sizeof(err)), DR_EINVAL);
    assert_null(j);
    assert_string_equal(err, "duplicate key 'k5'");
    dr_buf_cleanup(&b);

    static const struct {
        const char *yaml, *err;
    } dup[] = {
        {"a: 1\nb: 2\na: 3\n", "duplicate key 'a'"},
        {"b: 1\na: 1\na: 2\nb: 3\n", "duplicate key 'a'"},
        {"z: 1\nb: 1\nz: 2\nb: 3\n", "duplicate key 'z'"},
        {"o: {p: [ {q: 1, q: 2} ]}\n", "duplicate key 'q'"},
    };
    for (size_t i = 0; i < DR_ARRAY_LEN(dup); i++) {
        assert_int_equal(dr_yaml_to_json(dup[i].yaml, strlen(dup[i].yaml), &j, err, sizeof(err)),
                         DR_EINVAL);
        assert_string_equal(err, dup[i].err);
    }
    assert_int_equal(dr_yaml_to_json("a: {b: 1}\nb: {a: 1, b: 2}\n", 26, &j, err, sizeof(err)),
                     DR_OK);
    cJSON_Delete(j);
}

static void ct_equal(void **state)
{
    assert_true(dr_ct_equal("abc", 3, "abc", 3));
    assert_false(dr_ct_equal("abc", 3, "abd", 3));
    assert_false(dr_ct_equal("abc", 3, "abcd", 4));
}

/* the milliseconds an id of dr_time_id starts with, or -1 when it is not 32 lowercase hex */
static long long time_id_ms(const char *id)
{
    char ms[13];

    if (strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32) {
        return -1;
    }
    memcpy(ms, id, 12);
    ms[12] = '\0';
    return strtoll(ms, NULL, 16);
}

static void time_id_sorts_by_time(void **state)
{
    char a[33], b[33], r[33];
    int64_t t0 = dr_now_ms();

    dr_time_id(a);
    dr_time_id(b);
    int64_t t1 = dr_now_ms();
    assert_in_range(time_id_ms(a), t0, t1);
    assert_in_range(time_id_ms(b), time_id_ms(a), t1);
    assert_string_not_equal(a, b); /* the same millisecond, different random parts */
    assert_string_not_equal(a + 12, b + 12);
    dr_random_id(r);
    assert_int_equal(strspn(r, "0123456789abcdef"), 32);
    assert_int_equal(strlen(r), 32);
}

/* Notifications from processors get ids that sort by time: the store keeps them unique in a
 * b-tree, where random ids cost a leaf anywhere in it per notification. */
static void notification_ids_sort_by_time(void **state)
{
    struct dr_result res;
    int64_t t0 = dr_now_ms();

    dr_result_init(&res);
    dr_result_notify(&res, "u1", "o1", "user:u1", "t", "title", "message", NULL);
    dr_result_notify(&res, "u1", "o1", "user:u1", "t", "title", "message", NULL);
    int64_t t1 = dr_now_ms();
    assert_int_equal(res.nemits, 2);
    long long prev = t0;
    for (size_t i = 0; i < res.nemits; i++) {
        cJSON *n = cJSON_ParseWithLength(res.emits[i].data, res.emits[i].len);
        assert_non_null(n);
        const char *id = dr_json_str(n, "notification_id");
        assert_non_null(id);
        long long ms = time_id_ms(id);
        assert_in_range(ms, prev, t1);
        prev = ms;
        cJSON_Delete(n);
    }
    dr_result_cleanup(&res);
}

/* The ids of the notifications one result makes, of types[0..n) (NULL: "t"), in order. */
static void notify_ids_of(const struct dr_msg *m, const char *proc, int n, const char *const *types,
                          char ids[][33])
{
    struct dr_result res;

    dr_result_init(&res);
    res.msg = m;
    res.processor = proc;
    for (int i = 0; i < n; i++) {
        dr_result_notify(&res, "u1", "o1", "user:u1", types ? types[i] : "t", "title", "message",
                         NULL);
    }
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_ParseWithLength(res.emits[i].data, res.emits[i].len);
        snprintf(ids[i], 33, "%s", dr_json_str(o, "notification_id"));
        cJSON_Delete(o);
    }
    dr_result_cleanup(&res);
}

static void notify_ids(const struct dr_msg *m, const char *proc, int n, char ids[][33])
{
    notify_ids_of(m, proc, n, NULL, ids);
}

/* A message processed again (redelivered after its notifications were published, before its
 * ack) gives its notifications the same ids, so the store drops the repeats; ids still start
 * with a time (the message's publish time) and differ per message, processor and place. */
static void notification_ids_repeat_for_a_message(void **state)
{
    struct dr_msg m = {0}, other = {0}, big = {0};
    char a[2][33], b[2][33], c[1][33], d[1][33], e[2][33], t[1][33], f[1][33], g[2][33];
    char *long_id = malloc(5001);
    const char *first[] = {"shipment.updated"};
    const char *second[] = {"email.processed", "shipment.updated"};

    m.message_id = "4242";
    m.topic = "shipment-updates";
    m.publish_time_ms = 1795833293553;
    other = m;
    other.message_id = "4243";
    memset(long_id, 'x', 5000);
    long_id[5000] = '\0';
    big = m;
    big.message_id = long_id;

    notify_ids(&m, "shipment", 2, a);
    notify_ids(&m, "shipment", 2, b); /* the same message again */
    assert_string_equal(a[0], b[0]);
    assert_string_equal(a[1], b[1]);
    assert_string_not_equal(a[0], a[1]);
    assert_int_equal(time_id_ms(a[0]), 1795833293553);
    notify_ids(&m, "email", 1, c);
    assert_string_not_equal(a[0], c[0]);
    notify_ids(&other, "shipment", 1, d);
    assert_string_not_equal(a[0], d[0]);
    notify_ids(&big, "shipment", 2, e);
    assert_string_not_equal(e[0], e[1]);
    /* a run with one more notification of another kind first keeps this one's id */
    notify_ids_of(&m, "email", 1, first, f);
    notify_ids_of(&m, "email", 2, second, g);
    assert_string_equal(f[0], g[1]);
    assert_string_not_equal(g[0], g[1]);
    m.topic = "calendar-updates";
    notify_ids(&m, "shipment", 1, t);
    assert_string_not_equal(a[0], t[0]);
    free(long_id);
}

/* The keys of a message's emits: em- and SHA-256 of "parent/i", whole however long the parent. */
static void emit_keys(void **state)
{
    char a[DR_EMIT_KEY_LEN + 1], b[DR_EMIT_KEY_LEN + 1], digest[65], want[32];
    char *long_parent = malloc(5001);
    struct dr_emit two[2] = {{0}};

    dr_msg_emit_key("m1", two, 0, a);
    dr_sha256_hex("m1/0", 4, digest);
    snprintf(want, sizeof(want), "em-%.24s", digest);
    assert_string_equal(a, want);
    dr_msg_emit_key("m1", two, 1, b);
    assert_string_not_equal(a, b);
    memset(long_parent, 'p', 5000);
    long_parent[5000] = '\0';
    dr_msg_emit_key(long_parent, two, 0, a);
    dr_msg_emit_key(long_parent, two, 1, b);
    assert_string_not_equal(a, b);
    free(long_parent);
}

/* A message processed again may make one notification fewer (the email processor's progress
 * notification is throttled by time): every other emit keeps its key, so none of them is taken
 * for another's repeat and dropped where it is consumed. */
static void emit_keys_survive_a_missing_notification(void **state)
{
    struct dr_result first, again;
    struct dr_msg m = {.message_id = "m7", .topic = "email-backfill", .publish_time_ms = 1000};
    char k1[5][DR_EMIT_KEY_LEN + 1], k2[4][DR_EMIT_KEY_LEN + 1];

    (void)state;
    dr_result_init(&first);
    dr_result_init(&again);
    first.msg = again.msg = &m;
    first.processor = again.processor = "email";
    /* the first run: a progress notification between the others */
    dr_result_emit(&first, "shipment-updates", "{\"n\":1}", 7, NULL, NULL);
    dr_result_notify(&first, "u1", NULL, "user:u1", "shipment.detected", "t", "m", NULL);
    dr_result_notify(&first, "u1", NULL, "user:u1", "email.processed", "t", "m", NULL);
    dr_result_emit(&first, "search-index", "{\"n\":2}", 7, NULL, NULL);
    dr_result_notify(&first, "u1", NULL, "user:u1", "shipment.detected", "t", "m", NULL);
    /* again, without it */
    dr_result_emit(&again, "shipment-updates", "{\"n\":1}", 7, NULL, NULL);
    dr_result_notify(&again, "u1", NULL, "user:u1", "shipment.detected", "t", "m", NULL);
    dr_result_emit(&again, "search-index", "{\"n\":2}", 7, NULL, NULL);
    dr_result_notify(&again, "u1", NULL, "user:u1", "shipment.detected", "t", "m", NULL);
    assert_int_equal(first.nemits, 5);
    assert_int_equal(again.nemits, 4);
    for (size_t i = 0; i < 5; i++) {
        dr_msg_emit_key("m7", first.emits, i, k1[i]);
    }
    for (size_t i = 0; i < 4; i++) {
        dr_msg_emit_key("m7", again.emits, i, k2[i]);
    }
    assert_string_equal(k2[0], k1[0]); /* shipment-updates */
    assert_string_equal(k2[1], k1[1]); /* the first shipment.detected */
    assert_string_equal(k2[2], k1[3]); /* search-index */
    assert_string_equal(k2[3], k1[4]); /* the second shipment.detected */
    for (size_t i = 0; i < 5; i++) {
        for (size_t j = i + 1; j < 5; j++) {
            assert_string_not_equal(k1[i], k1[j]);
        }
    }
    dr_result_cleanup(&first);
    dr_result_cleanup(&again);
}

/* The name an instance owns rows under: DR_INSTANCE_ID, else host:port. */
static void instance_name(void **state)
{
    char name[512];

    (void)state;
    setenv("DR_INSTANCE_ID", "edge-3", 1);
    dr_instance_name(8080, name, sizeof(name));
    assert_string_equal(name, "edge-3");
    unsetenv("DR_INSTANCE_ID");
    dr_instance_name(8080, name, sizeof(name));
    assert_true(strlen(name) > 5);
    assert_string_equal(name + strlen(name) - 5, ":8080");
}

static void metrics_render(void **state)
{
    char *text;
    dr_metrics_reset();
    dr_metrics_describe("t_described_total", "counter", "A described counter.");
    dr_metrics_inc("t_described_total", "topic=\"a\"", 2);
    dr_metrics_inc("t_undescribed_total", "", 1);
    dr_metrics_observe("t_seconds", "", 0.003);
    const double many[] = {0.0001, 0.004, 20.0};
    dr_metrics_observe_many("t_seconds", "", many, 3);
    dr_metrics_observe_many("t_seconds", "", many, 0);
    text = dr_metrics_render();
    assert_non_null(
        strstr(text, "# TYPE t_described_total counter\nt_described_total{topic=\"a\"} 2\n"));
    assert_non_null(strstr(text, "t_undescribed_total{} 1\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{le=\"0.005\"} 3\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{le=\"10\"} 3\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(text, "t_seconds_count{} 4\n"));
    free(text);
    dr_metrics_reset();
}

static void msgid_bare(void **state)
{
    size_t n;
    const char *p = dr_msgid_bare(" \t<a.b@host>\t ", &n);
    assert_int_equal(n, 8);
    assert_memory_equal(p, "a.b@host", 8);
    p = dr_msgid_bare("a.b@host", &n);
    assert_int_equal(n, 8);
    assert_memory_equal(p, "a.b@host", 8);
    p = dr_msgid_bare(" <> ", &n);
    assert_int_equal(n, 0);
    p = dr_msgid_bare("", &n);
    assert_int_equal(n, 0);
}

/* dr_utf8_valid() against GLib's validator (same rules; GLib also refuses NUL, which no input
 * here has): every sequence of 1-3 bytes and the 4-byte ones around their limits, alone, after
 * 7 and after 9 ASCII bytes (so the eight-byte ASCII steps end on either side of them), and
 * followed by ASCII. */
static void utf8_valid(void **state)
{
    unsigned char buf[32];
    static const size_t pre_lens[] = {0, 7, 9};
    long checked = 0;

    for (size_t pl = 0; pl < 3; pl++) {
        size_t pre = pre_lens[pl];
        memset(buf, 'a', sizeof(buf));
        for (uint32_t v = 1; v < (1u << 24); v++) {
            size_t len = v < 0x100 ? 1 : v < 0x10000 ? 2 : 3;
            unsigned char *q = buf + pre;
            if ((v & 0xff) == 0 || (len > 1 && ((v >> 8) & 0xff) == 0) ||
                (len > 2 && (v >> 16) == 0)) {
                continue; /* no NUL bytes */
            }
            for (size_t k = 0; k < len; k++) {
                q[k] = (unsigned char)(v >> (8 * (len - 1 - k)));
            }
            /* three-byte sequences only with a lead byte of 0xe0-0xf4 or ASCII/continuation:
             * the rest are refused at their first byte, which the 1-2 byte cases cover */
            if (len == 3 && pre == 9 && q[0] < 0xc0) {
                continue;
            }
            if ((dr_utf8_valid(buf, pre + len) != 0) !=
                (g_utf8_validate_len((const char *)buf, pre + len, NULL) != 0)) {
                fail_msg("disagree at %06x after %zu ASCII bytes", v, pre);
            }
            memset(q + len, 'b', 10);
            if ((dr_utf8_valid(buf, pre + len + 10) != 0) !=
                (g_utf8_validate_len((const char *)buf, pre + len + 10, NULL) != 0)) {
                fail_msg("disagree at %06x + ASCII after %zu ASCII bytes", v, pre);
            }
            memset(q, 'a', len + 10);
            checked++;
        }
        /* four bytes: every lead byte with continuations at and around their limits */
        static const unsigned char conts[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0, 0xff};
        for (unsigned lead = 0xe0; lead <= 0xff; lead++) {
            for (size_t a = 0; a < sizeof(conts); a++) {
                for (size_t b = 0; b < sizeof(conts); b++) {
                    for (size_t c = 0; c < sizeof(conts); c++) {
                        unsigned char *q = buf + pre;
                        q[0] = (unsigned char)lead;
                        q[1] = conts[a] ? conts[a] : 'x';
                        q[2] = conts[b] ? conts[b] : 'x';
                        q[3] = conts[c] ? conts[c] : 'x';
                        assert_int_equal(dr_utf8_valid(buf, pre + 4) != 0,
                                         g_utf8_validate_len((const char *)buf, pre + 4, NULL) !=
                                             0);
                        memset(q, 'a', 4);
                    }
                }
            }
        }
    }
    assert_true(checked > 30000000);
    assert_true(dr_utf8_valid("", 0));
    assert_true(dr_utf8_valid("a\0b", 3));              /* NUL is a character here */
    assert_false(dr_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(dr_utf8_valid("\xed\xa0\x80", 3));     /* a surrogate */
    assert_false(dr_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(dr_utf8_valid("abcdefgh\xc3", 9));     /* cut short */
}

/* dr_buf_append_json_str() as it was, a byte at a time: the reference of json_str_matches_ref. */
static int json_str_ref(struct dr_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = b->len, run = 0;
    int err = dr_buf_appendc(b, '"');

    for (size_t i = 0; !err && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e;
        char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        err = dr_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        default:
            e = NULL;
        }
        if (!err) {
            err = e ? dr_buf_append(b, e, 2) : dr_buf_append(b, u, 6);
        }
    }
    if (!err) {
        err = dr_buf_append(b, s + run, n - run);
    }
    if (!err) {
        err = dr_buf_appendc(b, '"');
    }
    if (err) {
        b->len = start;
        if (b->data) {
            b->data[start] = '\0';
        }
    }
    return err;
}

/* dr_buf_append_json_str() (runs found 16 bytes at a time) against the byte loop it replaced: the
 * same bytes, outcome and buffer
 * for every byte value at every place of the first blocks, runs of every length around the
 * 16-byte steps, and every limit up to the whole escaped text. */
static void json_str_same(const char *s, size_t n, size_t limit, const char *prefix)
{
    struct dr_buf want, got;
    int we, ge;

    dr_buf_init(&want, limit);
    dr_buf_init(&got, limit);
    if (prefix) {
        dr_buf_appends(&want, prefix);
        dr_buf_appends(&got, prefix);
    }
    we = json_str_ref(&want, s, n);
    ge = dr_buf_append_json_str(&got, s, n);
    assert_int_equal(ge, we);
    assert_int_equal(got.len, want.len);
    if (want.data) {
        assert_non_null(got.data);
        assert_memory_equal(got.data, want.data, want.len + 1);
    }
    dr_buf_cleanup(&want);
    dr_buf_cleanup(&got);
}

static void json_str_matches_ref(void **state)
{
    char s[80];

    (void)state;
    for (int c = 0; c < 256; c++) {
        for (size_t at = 0; at < 40; at++) {
            memset(s, 'a', sizeof(s));
            s[at] = (char)c;
            json_str_same(s, 40, SIZE_MAX, NULL);
            json_str_same(s, at + 1, SIZE_MAX, "x");
        }
    }
    for (size_t n = 0; n < sizeof(s); n++) {
        for (size_t i = 0; i < sizeof(s); i++) {
            s[i] = "abc\n\"d\\\x01\xc3\xa9 \x7f\x1f\x80"[(i * 7 + n) % 14];
        }
        for (size_t limit = 0; limit < 3 * n + 8; limit++) {
            json_str_same(s, n, limit, NULL);
            json_str_same(s, n, limit + 2, "ab");
        }
    }
}

static void utf8_encode(void **state)
{
    char u[4];
    assert_int_equal(dr_utf8_encode('A', u), 1);
    assert_memory_equal(u, "A", 1);
    assert_int_equal(dr_utf8_encode(0xE9, u), 2);
    assert_memory_equal(u, "\xc3\xa9", 2);
    assert_int_equal(dr_utf8_encode(0x20AC, u), 3);
    assert_memory_equal(u, "\xe2\x82\xac", 3);
    assert_int_equal(dr_utf8_encode(0x1F600, u), 4);
    assert_memory_equal(u, "\xf0\x9f\x98\x80", 4);
}

static void parse_int(void **state)
{
    /* what a client may send instead of a number */
    static const char *const refused[] = {
        "",
        "12abc", /* something after the digits */
        "+5",    /* strtoll() would take these */
        " 5",
        "5 ",
        "\t5",
        "5\n",
        "-",
        "--1",
        "+-1",
        "-+1",
        "0x10", /* other notations */
        "1e3",
        "1.0",
        "١", /* digits of other scripts */
        "５",
        "99999999999999999999", /* beyond int64_t */
        "-99999999999999999999",
        "9223372036854775808",
        "-9223372036854775809",
    };
    int64_t v;

    (void)state;
    assert_int_equal(dr_parse_int("0", 0, 10, &v), DR_OK);
    assert_int_equal(v, 0);
    assert_int_equal(dr_parse_int("007", 0, 10, &v), DR_OK);
    assert_int_equal(v, 7);
    assert_int_equal(dr_parse_int("-3", -5, 10, &v), DR_OK);
    assert_int_equal(v, -3);
    assert_int_equal(dr_parse_int("9223372036854775807", 0, INT64_MAX, &v), DR_OK);
    assert_int_equal(v, INT64_MAX);
    assert_int_equal(dr_parse_int("-9223372036854775808", INT64_MIN, 0, &v), DR_OK);
    assert_int_equal(v, INT64_MIN);

    /* refused, and *out left as it was */
    for (size_t i = 0; i < DR_ARRAY_LEN(refused); i++) {
        v = 77;
        if (dr_parse_int(refused[i], INT64_MIN, INT64_MAX, &v) != DR_EINVAL || v != 77) {
            fail_msg("'%s' was taken as %lld", refused[i], (long long)v);
        }
    }
    v = 77;
    assert_int_equal(dr_parse_int(NULL, 0, 10, &v), DR_EINVAL);
    /* in int64_t but out of the range asked for: "-1" where only 0 and up may come */
    assert_int_equal(dr_parse_int("-1", 0, 10, &v), DR_EINVAL);
    assert_int_equal(dr_parse_int("11", 0, 10, &v), DR_EINVAL);
    assert_int_equal(dr_parse_int("0", 1, 10, &v), DR_EINVAL);
    assert_int_equal(v, 77);
    assert_int_equal(dr_parse_int("10", 0, 10, &v), DR_OK);
    assert_int_equal(v, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_limit),
        cmocka_unit_test(buf_json_escape),
        cmocka_unit_test(base64_roundtrip),
        cmocka_unit_test(base64_rejects_junk),
        cmocka_unit_test(base64_data_either_alphabet),
        cmocka_unit_test(time_roundtrip),
        cmocka_unit_test(time_matches_timegm),
        cmocka_unit_test(json_pointer),
        cmocka_unit_test(json_i64_range),
        cmocka_unit_test(yaml_many_keys),
        cmocka_unit_test(ct_equal),
        cmocka_unit_test(msgid_bare),
        cmocka_unit_test(utf8_encode),
        cmocka_unit_test(metrics_render),
        cmocka_unit_test(utf8_valid),
        cmocka_unit_test(json_str_matches_ref),
        cmocka_unit_test(parse_int),
        cmocka_unit_test(time_id_sorts_by_time),
        cmocka_unit_test(notification_ids_sort_by_time),
        cmocka_unit_test(notification_ids_repeat_for_a_message),
        cmocka_unit_test(emit_keys),
        cmocka_unit_test(instance_name),
        cmocka_unit_test(emit_keys_survive_a_missing_notification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
