/* Tests src/core/json.c: integers written to the unit (dr_json_append_i64, dr_json_add_i64) and
 * read to the unit (dr_json_i64_exact). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"

/* every digit, where a double would round (above 2^53) or take an exponent (from 1e15) */
static const struct {
    int64_t v;
    const char *text;
} cases[] = {
    {0, "0"},
    {7, "7"},
    {-7, "-7"},
    {999999999999999, "999999999999999"},
    {1000000000000000, "1000000000000000"},
    {9007199254740993, "9007199254740993"},
    {INT64_MAX, "9223372036854775807"},
    {INT64_MIN, "-9223372036854775808"},
};

static void append_i64_writes_every_digit(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dr_buf b;

        dr_buf_init(&b, SIZE_MAX);
        assert_int_equal(dr_buf_appends(&b, "x"), DR_OK);
        assert_int_equal(dr_json_append_i64(&b, cases[i].v), DR_OK);
        assert_int_equal(b.len, 1 + strlen(cases[i].text));
        assert_string_equal(b.data + 1, cases[i].text);
        dr_buf_cleanup(&b);
    }
}

/* A buffer at its limit is left as it was. */
static void append_i64_past_the_limit(void **state)
{
    struct dr_buf b;

    (void)state;
    dr_buf_init(&b, 4);
    assert_int_equal(dr_buf_appends(&b, "ab"), DR_OK);
    assert_int_equal(dr_json_append_i64(&b, 123), DR_ETOOBIG);
    assert_string_equal(b.data, "ab");
    dr_buf_cleanup(&b);
}

/* The member prints as those digits, through dr_json_print() and cJSON's own printer alike. */
static void add_i64_prints_every_digit(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *o = cJSON_CreateObject();
        char want[64], *mine, *theirs;

        cJSON_AddStringToObject(o, "type", "resync");
        dr_json_add_i64(o, "since", cases[i].v);
        snprintf(want, sizeof(want), "{\"type\":\"resync\",\"since\":%s}", cases[i].text);
        mine = dr_json_print(o);
        theirs = cJSON_PrintUnformatted(o);
        assert_string_equal(mine, want);
        assert_string_equal(theirs, want);
        free(mine);
        cJSON_free(theirs);
        cJSON_Delete(o);
    }
}

/* a member read from the text, every digit, where cJSON's double would round it; anything not
 * written as an integer refused */
static void i64_exact_reads_every_digit(void **state)
{
    static const struct {
        const char *text;
        int err;
        int64_t v;
    } rd[] = {
        {"{\"since\":9007199254740993}", DR_OK, INT64_C(9007199254740993)},
        {"{\"since\":9223372036854775807}", DR_OK, INT64_MAX},
        {"{\"since\":-9223372036854775808}", DR_OK, INT64_MIN},
        {" {\"type\":\"s\", \"since\" : 0 } ", DR_OK, 0},
        {"{\"a\":{\"since\":1},\"b\":[\"since\",{\"c\":\"}\\\"\"}],\"since\":42}", DR_OK, 42},
        {"{\"since\":7,\"since\":8}", DR_OK, 7}, /* the first, as cJSON's lookup */
        {"{\"\\u0073ince\":9}", DR_OK, 9},       /* the key as cJSON decodes it */
        {"{\"since\":5}trailing", DR_OK, 5},
        {"{\"since\":9223372036854775808}", DR_EINVAL, 0}, /* above int64_t */
        {"{\"since\":1.0}", DR_EINVAL, 0},
        {"{\"since\":1e3}", DR_EINVAL, 0},
        {"{\"since\":01}", DR_EINVAL, 0},
        {"{\"since\":\"5\"}", DR_EINVAL, 0},
        {"{\"since\":null}", DR_EINVAL, 0},
        {"{\"since\":-}", DR_EINVAL, 0},
        {"{\"since\":[1]}", DR_EINVAL, 0},
        {"[{\"since\":1}]", DR_EINVAL, 0},
        {"{\"sinc\":1,\"a\":{\"since\":1}}", DR_ENOTFOUND, 0},
        {"{}", DR_ENOTFOUND, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rd) / sizeof(rd[0]); i++) {
        int64_t v = -12345;
        int err = dr_json_i64_exact(rd[i].text, strlen(rd[i].text), "since", &v);
        if (err != rd[i].err || (err == DR_OK && v != rd[i].v)) {
            fail_msg("%s: error %d, %lld; expected error %d, %lld", rd[i].text, err, (long long)v,
                     rd[i].err, (long long)rd[i].v);
        }
    }
    /* the text's length, not a NUL, ends it: digits cut short are read as they end */
    {
        const char t[] = "{\"since\":12345}";
        int64_t v = 0;
        assert_int_equal(dr_json_i64_exact(t, 12, "since", &v), DR_OK);
        assert_int_equal(v, 123);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_i64_writes_every_digit),
        cmocka_unit_test(append_i64_past_the_limit),
        cmocka_unit_test(add_i64_prints_every_digit),
        cmocka_unit_test(i64_exact_reads_every_digit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
