/* The JSON log lines of src/core/log.c: each line one JSON object whose fields are exactly the
 * ones the format names, whatever the values hold (quotes, backslashes, newlines, '=', spaces,
 * text that looks like more fields, bytes that are not UTF-8, any length). Every line is read
 * back with a JSON parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dr/log.h"
#include "dr/util.h"
#include "unit/core/log_capture.h"

/* o has exactly the fields ts, level, component, msg and those of want (NULL-terminated). */
static void exact_fields(const cJSON *o, const char *const *want)
{
    static const char *const common[] = {"ts", "level", "component", "msg"};
    const cJSON *e;
    size_t nwant = 0;

    while (want[nwant]) {
        nwant++;
    }
    assert_int_equal(cJSON_GetArraySize(o), 4 + (int)nwant);
    cJSON_ArrayForEach(e, o)
    {
        int known = 0;
        for (size_t i = 0; i < 4; i++) {
            known |= strcmp(e->string, common[i]) == 0;
        }
        for (size_t i = 0; i < nwant; i++) {
            known |= strcmp(e->string, want[i]) == 0;
        }
        if (!known) {
            fail_msg("unexpected field %s", e->string);
        }
    }
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v)) {
        fail_msg("%s is not a string", k);
    }
    return v->valuestring;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) {
        fail_msg("%s is not a number", k);
    }
    return v->valuedouble;
}

/* Values from outside made to break the line or to forge fields. */
static const char *const hostile[] = {
    "plain",
    "1st-sub\"\"",
    "a\" admin=\"1",
    "x=1 y=2",
    "back\\slash\\",
    "\\\"",
    "line\nbreak\r\n{\"level\":\"error\"}",
    "} , = \n \\ \" {",
    "\"",
    "=",
    " ",
    "",
    "\t\b\f\x01\x1f",
    "%s %d %n",
    "123",
    "-5",
    "1e3",
    "\"quoted\"",
};
#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

static void write_hostile(void)
{
    for (size_t i = 0; i < NHOSTILE; i++) {
        DR_WARN("local", "message refused", "message_id=%s topic=%s error=\"%s\" attempt=%d",
                hostile[i], hostile[NHOSTILE - 1 - i], hostile[(i + 3) % NHOSTILE], (int)i);
    }
}

static void hostile_values(void **state)
{
    static const char *const want[] = {"message_id", "topic", "error", "attempt", NULL};
    char *text = capture(write_hostile);
    int n;
    cJSON *arr = lines(text, &n);

    (void)state;
    assert_int_equal(n, (int)NHOSTILE);
    for (size_t i = 0; i < NHOSTILE; i++) {
        const cJSON *o = cJSON_GetArrayItem(arr, (int)i);
        exact_fields(o, want);
        assert_string_equal(str(o, "level"), "warn");
        assert_string_equal(str(o, "msg"), "message refused");
        /* %s is a string even when it prints a number */
        assert_string_equal(str(o, "message_id"), hostile[i]);
        assert_string_equal(str(o, "topic"), hostile[NHOSTILE - 1 - i]);
        assert_string_equal(str(o, "error"), hostile[(i + 3) % NHOSTILE]);
        assert_true(num(o, "attempt") == (int)i);
    }
    cJSON_Delete(arr);
    free(text);
}

static void write_types(void)
{
    long long big = 9007199254740993LL;

    DR_ERROR("pull", "pull refused", "subscription=%s error=\"%s\"", "1st-sub",
             "Resource \"1st-sub\" not found");
    DR_INFO("t", "numbers", "a=%d b=%lld c=%zu d=%u e=%ld f=%llu g=%g h=%d", -7, big, (size_t)12,
            3u, -4L, 5ULL, 2.5, 0);
    DR_INFO("t", "length modifiers", "a=%hhd b=%hd c=%jd d=%zd e=%td f=%Lg g=%lu h=%lli i=%o",
            (signed char)-3, (short)-300, (intmax_t)-5000000000, (ssize_t)-6, (ptrdiff_t)-7,
            (long double)0.25, 8UL, -9000000000LL, 8);
    DR_INFO("t", "quoted numbers", "a=\"%d\" b=%s c=%s", 5, "123", "007");
    DR_INFO("t", "mixed", "url=http://%s:%d/ size=%dB pct=100%% p=%.3s q=%.*s w=%5s|%-3s|", "host",
            8080, 12, "abcdef", 2, "xyz", "ab", "c");
    DR_INFO("t", "not JSON numbers", "a=%05d b=%+d c=%x d=%g e=%g f=%c", 42, 3, 255, 1.0 / 0.0,
            0.0 / 0.0, 'z');
    DR_INFO("t", "spaces in the format", "error=\"store: %s (%d)\" next=%s", "busy \"db\"", 5,
            "ok");
    DR_INFO("t", "no fields", "%s", "");
    DR_INFO("t", "a bare word", "oops %d x=%s", 5, "y");
}

static void types(void **state)
{
    char *text = capture(write_types);
    int n;
    cJSON *arr = lines(text, &n);
    const cJSON *o;

    (void)state;
    assert_int_equal(n, 9);

    /* the reviewer's line: one error field, no "extra" */
    o = cJSON_GetArrayItem(arr, 0);
    exact_fields(o, (const char *const[]){"subscription", "error", NULL});
    assert_string_equal(str(o, "subscription"), "1st-sub");
    assert_string_equal(str(o, "error"), "Resource \"1st-sub\" not found");

    o = cJSON_GetArrayItem(arr, 1);
    exact_fields(o, (const char *const[]){"a", "b", "c", "d", "e", "f", "g", "h", NULL});
    assert_true(num(o, "a") == -7);
    assert_true(num(o, "c") == 12);
    assert_true(num(o, "d") == 3);
    assert_true(num(o, "e") == -4);
    assert_true(num(o, "f") == 5);
    assert_true(num(o, "g") == 2.5);
    assert_true(num(o, "h") == 0);
    /* written with all its digits, as printf writes it */
    assert_non_null(strstr(text, "\"b\":9007199254740993,"));

    o = cJSON_GetArrayItem(arr, 2);
    exact_fields(o, (const char *const[]){"a", "b", "c", "d", "e", "f", "g", "h", "i", NULL});
    assert_true(num(o, "a") == -3);
    assert_true(num(o, "b") == -300);
    assert_true(num(o, "c") == -5000000000.0);
    assert_true(num(o, "d") == -6);
    assert_true(num(o, "e") == -7);
    assert_true(num(o, "f") == 0.25);
    assert_true(num(o, "g") == 8);
    assert_true(num(o, "h") == -9000000000.0);
    assert_string_equal(str(o, "i"), "10");

    o = cJSON_GetArrayItem(arr, 3);
    assert_string_equal(str(o, "a"), "5");
    assert_string_equal(str(o, "b"), "123");
    assert_string_equal(str(o, "c"), "007");

    o = cJSON_GetArrayItem(arr, 4);
    exact_fields(o, (const char *const[]){"url", "size", "pct", "p", "q", "w", NULL});
    assert_string_equal(str(o, "url"), "http://host:8080/");
    assert_string_equal(str(o, "size"), "12B");
    assert_string_equal(str(o, "pct"), "100%");
    assert_string_equal(str(o, "p"), "abc");
    assert_string_equal(str(o, "q"), "xy");
    assert_string_equal(str(o, "w"), "   ab|c  |");

    /* what printf writes but JSON has no number for stays a string */
    o = cJSON_GetArrayItem(arr, 5);
    assert_string_equal(str(o, "a"), "00042");
    assert_string_equal(str(o, "b"), "+3");
    assert_string_equal(str(o, "c"), "ff");
    assert_string_equal(str(o, "d"), "inf");
    assert_non_null(strstr(str(o, "e"), "nan"));
    assert_string_equal(str(o, "f"), "z");

    o = cJSON_GetArrayItem(arr, 6);
    exact_fields(o, (const char *const[]){"error", "next", NULL});
    assert_string_equal(str(o, "error"), "store: busy \"db\" (5)");
    assert_string_equal(str(o, "next"), "ok");

    o = cJSON_GetArrayItem(arr, 7);
    exact_fields(o, (const char *const[]){NULL});

    o = cJSON_GetArrayItem(arr, 8);
    exact_fields(o, (const char *const[]){"x", "extra", NULL});
    assert_string_equal(str(o, "extra"), "oops 5");
    assert_string_equal(str(o, "x"), "y");
    cJSON_Delete(arr);
    free(text);
}

static char *long_value(size_t n, char c)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* formats a caller should not write, through a variable (the compiler checks literal ones) */
static const char *trailing_percent = "a=%d b=100%";

static void write_odd(void)
{
    dr_log(DR_LOG_INFO, "t", "trailing percent", trailing_percent, 5);
    DR_INFO("t", "huge double", "v=%f w=%d", 1e200, 3);
}

/* A lone '%' ending the format stops the fields (nothing read before the format); a number too
 * long for the conversion buffer is not written as another, shorter number. */
static void odd_formats(void **state)
{
    char *text = capture(write_odd);
    int n;
    cJSON *arr = lines(text, &n);
    const cJSON *o, *v;

    (void)state;
    assert_int_equal(n, 2);
    o = cJSON_GetArrayItem(arr, 0);
    assert_true(num(o, "a") == 5);
    o = cJSON_GetArrayItem(arr, 1);
    v = cJSON_GetObjectItemCaseSensitive(o, "v");
    assert_true(cJSON_IsString(v)); /* cut: 127 of its 201 digits */
    assert_true(num(o, "w") == 3);
    cJSON_Delete(arr);
    free(text);
}

static void write_limits(void)
{
    char *big = long_value(100000, 'a');
    char *quotes = long_value(20000, '"');
    char *ctl = long_value(20000, '\x01');
    /* "é" cut in the middle would not be UTF-8 */
    char utf[4101];

    for (size_t i = 0; i + 2 <= 4100; i += 2) {
        memcpy(utf + i, "\xc3\xa9", 2);
    }
    utf[4100] = '\0';
    DR_INFO("t", "long", "message_id=%s n=%d", big, 1);
    DR_INFO("t", "escaped", "a=%s b=%s c=%s d=%s e=%s f=%s g=%s h=%s i=%s n=%d", ctl, ctl, ctl, ctl,
            ctl, ctl, ctl, ctl, ctl, 2);
    DR_INFO("t", "quotes", "a=\"%s\" n=%d", quotes, 3);
    DR_INFO("t", "utf8", "a=%s", utf);
    DR_INFO("t", "not utf8", "a=%s b=%s", "\xff\xfe-x", "caf\xc3\xa9");
    struct dr_log_field f[] = {DR_LOG_STR("a", big), DR_LOG_STR("b", "\xc3("), DR_LOG_INT("n", 4)};
    dr_log_fields(DR_LOG_INFO, "t", "fields", f, 3);
    free(big);
    free(quotes);
    free(ctl);
}

static void limits(void **state)
{
    char *text = capture(write_limits);
    int n;
    cJSON *arr = lines(text, &n);
    const cJSON *o;
    const char *p, *nl;

    (void)state;
    assert_int_equal(n, 6);
    for (p = text; (nl = strchr(p, '\n')); p = nl + 1) {
        assert_true(nl - p < 64 * 1024);
    }
    o = cJSON_GetArrayItem(arr, 0);
    assert_int_equal(strlen(str(o, "message_id")), 2048 + 3);
    assert_non_null(strstr(str(o, "message_id"), "aaa..."));
    assert_true(num(o, "n") == 1);

    /* fields that would pass the line's limit are left out whole; the rest are exact */
    o = cJSON_GetArrayItem(arr, 1);
    assert_true(cJSON_GetArraySize(o) < 4 + 10);
    assert_true(num(o, "n") == 2);
    assert_int_equal(strlen(str(o, "a")), 2048 + 3);

    o = cJSON_GetArrayItem(arr, 2);
    assert_int_equal(strlen(str(o, "a")), 2048 + 3);
    assert_true(num(o, "n") == 3);

    o = cJSON_GetArrayItem(arr, 3);
    assert_int_equal(strlen(str(o, "a")), 2048 + 3);

    o = cJSON_GetArrayItem(arr, 4);
    assert_string_equal(str(o, "a"), "?\?-x");
    assert_string_equal(str(o, "b"), "caf\xc3\xa9");

    /* dr_log_fields() keeps its strings whole but never breaks the line */
    o = cJSON_GetArrayItem(arr, 5);
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "a"));
    assert_string_equal(str(o, "b"), "?(");
    assert_true(num(o, "n") == 4);
    cJSON_Delete(arr);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hostile_values),
        cmocka_unit_test(types),
        cmocka_unit_test(odd_formats),
        cmocka_unit_test(limits),
    };
    dr_log_set_level(DR_LOG_DEBUG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
