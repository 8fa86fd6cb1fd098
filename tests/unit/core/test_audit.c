/* The audit log's lines (src/core/audit.c: inbox accesses, dead-letter actions) and the field
 * logger under it (src/core/log.c):
 * written whatever the log level, one JSON object per line whatever the values hold, user ids
 * that are addresses shortened, query values other than the APIs' own replaced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dr/audit.h"
#include "dr/log.h"
#include "unit/core/log_capture.h"
#include "dr/util.h"

static const char *field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double number(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void write_inbox_lines(void)
{
    struct dr_log_field extra[] = {DR_LOG_INT("count", 12),
                                   DR_LOG_STR("notification_id", "n-\"1\"\n")};

    dr_log_set_level(DR_LOG_ERROR);
    dr_audit_inbox("alice", "list", "http", 200, extra, 2);
    dr_audit_inbox("bob\" admin=1 x=\"", "read", "ws", 404, NULL, 0);
    dr_audit_inbox("carol.jones@example.com", "read_all", "http", 200, NULL, 0);
    dr_audit_inbox("\xff\xfe-not-utf8", "unread_count", "http", 503, NULL, 0);
    dr_log_set_level(DR_LOG_INFO);
}

static void inbox_lines(void **state)
{
    char *text = capture(write_inbox_lines);
    int n;
    cJSON *arr = lines(text, &n), *o;

    assert_int_equal(n, 4); /* written although the level is error */
    o = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(field(o, "component"), "audit");
    assert_string_equal(field(o, "level"), "info");
    assert_string_equal(field(o, "msg"), "inbox access");
    assert_string_equal(field(o, "actor"), "alice");
    assert_string_equal(field(o, "action"), "list");
    assert_string_equal(field(o, "via"), "http");
    assert_int_equal(number(o, "status"), 200);
    assert_int_equal(number(o, "count"), 12);
    assert_string_equal(field(o, "notification_id"), "n-\"1\"\n");

    /* a sub made to look like more fields is one value */
    o = cJSON_GetArrayItem(arr, 1);
    assert_string_equal(field(o, "actor"), "bob\" admin=1 x=\"");
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "admin"));
    assert_int_equal(number(o, "status"), 404);

    /* an address as a user id is not written in full */
    o = cJSON_GetArrayItem(arr, 2);
    assert_string_equal(field(o, "actor"), "c***@example.com");
    assert_null(strstr(text, "carol.jones"));

    o = cJSON_GetArrayItem(arr, 3);
    assert_string_equal(field(o, "actor"), "?"
                                           "?-not-utf8");
    cJSON_Delete(arr);
    free(text);
}

static void write_dlq_lines(void)
{
    struct dr_log_field f[] = {DR_LOG_INT("id", 7), DR_LOG_STR("message_id", "m-\"7\" edited=0"),
                               DR_LOG_INT("edited", 1)};

    dr_log_set_level(DR_LOG_ERROR);
    dr_audit_dlq("dead letter replayed", f, 3);
    dr_log_set_level(DR_LOG_INFO);
}

static void dlq_lines(void **state)
{
    char *text = capture(write_dlq_lines);
    int n;
    cJSON *arr = lines(text, &n), *o;

    (void)state;
    assert_int_equal(n, 1); /* written although the level is error */
    o = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(field(o, "component"), "audit");
    assert_string_equal(field(o, "level"), "info");
    assert_string_equal(field(o, "msg"), "dead letter replayed");
    assert_int_equal(number(o, "id"), 7);
    assert_string_equal(field(o, "message_id"), "m-\"7\" edited=0");
    assert_int_equal(number(o, "edited"), 1);
    cJSON_Delete(arr);
    free(text);
}

static void write_field_lines(void)
{
    struct dr_log_field f[] = {DR_LOG_STR("a", "x\" b=2"), DR_LOG_INT("n", -7)};

    dr_log_set_level(DR_LOG_WARN);
    dr_log_fields(DR_LOG_INFO, "t", "below the level", f, 2);
    dr_log_fields(DR_LOG_WARN, "t", "at the level", f, 2);
    dr_log_record("t", "a record", f, 1);
    dr_log_set_level(DR_LOG_INFO);
}

static void field_lines(void **state)
{
    char *text = capture(write_field_lines);
    int n;
    cJSON *arr = lines(text, &n), *o;

    assert_int_equal(n, 2);
    o = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(field(o, "msg"), "at the level");
    assert_string_equal(field(o, "level"), "warn");
    assert_string_equal(field(o, "a"), "x\" b=2");
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "b"));
    assert_int_equal(number(o, "n"), -7);
    o = cJSON_GetArrayItem(arr, 1);
    assert_string_equal(field(o, "msg"), "a record");
    assert_string_equal(field(o, "level"), "info");
    cJSON_Delete(arr);
    free(text);
}

static void write_real_lines(void)
{
    struct dr_log_field job[] = {DR_LOG_INT("job", 1795), DR_LOG_INT("matched", 3),
                                 DR_LOG_REAL("rate", 0.001)};
    struct dr_log_field f[] = {
        DR_LOG_REAL("whole", 5),        DR_LOG_REAL("tenth", 0.1), DR_LOG_REAL("third", 1.0 / 3),
        DR_LOG_REAL("tiny", -2.5e-300), DR_LOG_REAL("nan", NAN),   DR_LOG_REAL("inf", -INFINITY),
        DR_LOG_INT("big", INT64_MAX),
    };

    dr_log_set_level(DR_LOG_ERROR);
    dr_audit_dlq("dead-letter replay job started", job, DR_ARRAY_LEN(job));
    dr_log_record("t", "reals", f, DR_ARRAY_LEN(f));
    dr_log_set_level(DR_LOG_INFO);
}

/* Numbers that need not be whole, such as a replay job's rate, are JSON numbers that read back
 * as the same double; what JSON has no number for is null. */
static void real_fields(void **state)
{
    char *text = capture(write_real_lines);
    int n;
    cJSON *arr = lines(text, &n), *o;

    (void)state;
    assert_int_equal(n, 2);
    o = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(field(o, "msg"), "dead-letter replay job started");
    assert_true(number(o, "rate") == 0.001); /* number() fails for a string */
    assert_non_null(strstr(text, ",\"rate\":0.001}"));
    o = cJSON_GetArrayItem(arr, 1);
    assert_non_null(strstr(text, "\"whole\":5,\"tenth\":0.1,"));
    assert_true(number(o, "whole") == 5);
    assert_true(number(o, "tenth") == 0.1);
    assert_true(number(o, "third") == 1.0 / 3);
    assert_true(number(o, "tiny") == -2.5e-300);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "nan")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "inf")));
    assert_non_null(strstr(text, "\"big\":9223372036854775807}"));
    cJSON_Delete(arr);
    free(text);
}

static void expect_query(const char *q, const char *want)
{
    char out[256];
    dr_audit_query(q, out, sizeof(out));
    assert_string_equal(out, want);
}

static void queries(void **state)
{
    char small[24];

    expect_query("", "");
    expect_query("topic=email-backfill&limit=10", "topic=email-backfill&limit=10");
    expect_query("user=alice&transport=ws&after=7", "user=alice&transport=ws&after=7");
    /* anything that is not one of the APIs' parameters keeps its name, not its value */
    expect_query("access_token=eyJhbGciOi.x.y&limit=5", "access_token=*&limit=5");
    expect_query("api_key=s3cret", "api_key=*");
    /* a name that is not a short word may itself be a secret */
    expect_query("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig&limit=1", "*&limit=1");
    expect_query("a%3Db=c", "*");
    /* addresses, plain or percent-encoded, are not written */
    expect_query("user=carol%40example.com&error=x@y", "user=*&error=*");
    expect_query("unread", "unread");
    /* what does not fit is left out, and the line says so */
    dr_audit_query("topic=aaaaaaaaaa&limit=1&after=2", small, sizeof(small));
    assert_string_equal(small, "topic=aaaaaaaaaa&...");
    assert_true(strlen(small) < sizeof(small));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inbox_lines), cmocka_unit_test(dlq_lines), cmocka_unit_test(field_lines),
        cmocka_unit_test(real_fields), cmocka_unit_test(queries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
