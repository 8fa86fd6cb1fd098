/* Tests src/core/json.c: integers written to the unit (dr_json_append_i64, dr_json_add_i64). */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_i64_writes_every_digit),
        cmocka_unit_test(append_i64_past_the_limit),
        cmocka_unit_test(add_i64_prints_every_digit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
