/*
 * dr_json_parse() against cJSON_ParseWithLengthOpts(s, len, NULL, 0), the parser it stands in
 * for: for every input, both refuse it or both give the same tree (types, numbers to the bit,
 * strings, keys, order). Documents are padded with trailing spaces to the length at which
 * dr_json_parse() uses its own parser (neither parser looks past the value).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/json_int.h"
#include "dr/json.h"

#define PAD 300 /* above the length dr_json_parse() hands to cJSON directly */

static int same(const cJSON *a, const cJSON *b)
{
    for (; a || b; a = a->next, b = b->next) {
        if (!a || !b || a->type != b->type || a->valueint != b->valueint ||
            memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0 ||
            !a->string != !b->string || (a->string && strcmp(a->string, b->string) != 0) ||
            !a->valuestring != !b->valuestring ||
            (a->valuestring && strcmp(a->valuestring, b->valuestring) != 0) ||
            !same(a->child, b->child)) {
            return 0;
        }
    }
    return 1;
}

/* dr_json_print() writes what cJSON_PrintUnformatted() writes. */
static void same_print(const cJSON *item)
{
    char *a = dr_json_print(item), *b = cJSON_PrintUnformatted(item);

    if (!b || strcmp(a, b) != 0) {
        fail_msg("dr_json_print wrote '%.300s', cJSON '%.300s'", a, b ? b : "(nothing)");
    }
    free(a);
    cJSON_free(b);
}

/* Parses s[0..len) both ways; 1 if parsed, 0 if refused; fails the test if they disagree. */
static int check_len(const char *s, size_t len)
{
    cJSON *mine = dr_json_parse(s, len);
    cJSON *ref = cJSON_ParseWithLengthOpts(s, len, NULL, 0);
    int ok = mine ? 1 : 0;

    if (!mine != !ref || (mine && !same(mine, ref))) {
        fprintf(stderr, "disagree on %zu bytes: %.*s\n", len, (int)(len < 400 ? len : 400), s);
        fail_msg("dr_json_parse %s, cJSON %s", mine ? "parsed" : "refused",
                 ref ? "parsed" : "refused");
    }
    if (mine) {
        same_print(mine);
    }
    cJSON_Delete(mine);
    cJSON_Delete(ref);
    return ok;
}

/* s padded with spaces to PAD bytes at least, both ways. */
static int check(const char *s)
{
    size_t n = strlen(s), len = n < PAD ? PAD : n;
    char *b = malloc(len);
    int ok;

    memcpy(b, s, n);
    memset(b + n, ' ', len - n);
    ok = check_len(b, len);
    free(b);
    return ok;
}

static void valid_documents(void **state)
{
    static const char *const docs[] = {
        "{}",
        "[]",
        "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
        " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } ",
        "\"just a string\"",
        "-0",
        "0",
        "[0,-0,1.5,-2.25e-3,1E+10,1e999,-1e999,123456789012345678901234567890,2147483647,"
        "2147483648,-2147483648,-2147483649,0.1,4.9e-324]",
        "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
        "[\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\\uD834\\uDD1E\"]",
        "[\"\\u0000 after a NUL\"]",
        "{\"dup\":1,\"dup\":2}",
        "{\"\":\"empty key\",\"k\":\"\"}",
        "[\"tab\there\",\"raw \x01 control\"]", /* cJSON keeps control characters as they are */
        "[\"caf\xc3\xa9\",\"\xff\xfe invalid UTF-8 kept\"]",
        "{\"a\":1} trailing garbage is not looked at",
        "[1]]",
    };

    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        int nomem;
        cJSON *fast = dr__json_parse_fast(docs[i], strlen(docs[i]), &nomem);

        assert_int_equal(check(docs[i]), 1);
        /* standard JSON is read by the fast parser itself, not handed to cJSON */
        assert_non_null(fast);
        cJSON_Delete(fast);
    }
}

static void invalid_documents(void **state)
{
    static const char *const docs[] = {
        "",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "[01]",
        "[1.]",
        "[.5]",
        "[+1]",
        "[1e]",
        "[-]",
        "[1-2]",
        "[1.5.5]",
        "[0x10]",
        "[tru]",
        "[nul]",
        "[\"unterminated]",
        "[\"bad escape \\x\"]",
        "[\"\\ud800 alone\"]",
        "[\"\\udc00 low first\"]",
        "[\"\\ud800\\u0041 not a pair\"]",
        "[\"\\u12\"]",
        "[\"ends with a backslash\\",
        "{\"a\":1 \"b\":2}",
        "[1 2]",
    };

    /* refused by both, or accepted by both with the same tree: cJSON decides these */
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        check(docs[i]);
    }
    assert_int_equal(check("[1,]"), 0);
    assert_int_equal(check("{\"a\":1,}"), 0);
    assert_int_equal(check("[\"unterminated]"), 0);
    assert_int_equal(check("[\"\\ud800 alone\"]"), 0);
}

/* What cJSON accepts beyond RFC 8259 stays accepted, with the same tree. */
static void cjson_leniencies(void **state)
{
    assert_int_equal(check("\xef\xbb\xbf{\"bom\":1}"), 1);
    assert_int_equal(check("\x01\x02{\"ws\":\"control bytes as whitespace\"}"), 1);
    assert_int_equal(check("[\"\\uZZZZ\"]"), 1); /* cJSON reads a bad hex digit as U+0000 */
    check("[00]");
    check("[-01]");
    check("[1e5e5]");
}

static void deep_nesting(void **state)
{
    char *b = malloc(5000);

    for (int depth = 150; depth <= 1100; depth += 50) {
        memset(b, '[', (size_t)depth);
        memset(b + depth, ']', (size_t)depth);
        check_len(b, (size_t)depth * 2);
    }
    free(b);
}

/* A long string with escapes at every alignment against the 16-byte scan. */
static void long_strings(void **state)
{
    char *b = malloc(200000);

    for (int shift = 0; shift < 40; shift++) {
        size_t n = 0;
        b[n++] = '{';
        memcpy(b + n, "\"raw\":\"", 7);
        n += 7;
        for (int i = 0; i < shift; i++) {
            b[n++] = 'x';
        }
        for (int i = 0; i < 3000; i++) {
            static const char *const pieces[] = {"abcDEF0123-_", "\\\"",    "\\\\",
                                                 "\\n",          "\\u00e9", "\\ud83d\\ude00",
                                                 "\xc3\xa9",     "/"};
            const char *pc = pieces[(i * 7 + shift) % 8];
            memcpy(b + n, pc, strlen(pc));
            n += strlen(pc);
        }
        memcpy(b + n, "\",\"n\":1}", 8);
        n += 8;
        assert_int_equal(check_len(b, n), 1);
        /* cut anywhere inside: refused by both, never read past the end (ASan) */
        for (size_t cut = n - 40; cut < n; cut++) {
            char *c = malloc(cut);
            memcpy(c, b, cut);
            check_len(c, cut);
            free(c);
        }
    }
    free(b);
}

static uint64_t rng = 0x9E3779B97F4A7C15u;

static unsigned next(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void gen(char *b, size_t *n, size_t cap, int depth)
{
    static const char *const atoms[] = {
        "0",
        "-0",
        "1",
        "-12.5e3",
        "1E-2",
        "3.14159",
        "1e400",
        "true",
        "false",
        "null",
        "\"\"",
        "\"s\"",
        "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"a\\\"b\"",
        "\"\\\\\"",
        "\"\\/\"",
        "\"tab\\t\"",
        "123456789012345678901",
    };
    unsigned k = next(depth > 6 ? 2 : 4);

    if (*n + 64 >= cap) {
        return;
    }
    if (k < 2) {
        const char *a = atoms[next(sizeof(atoms) / sizeof(atoms[0]))];
        memcpy(b + *n, a, strlen(a));
        *n += strlen(a);
        return;
    }
    b[(*n)++] = k == 2 ? '[' : '{';
    for (unsigned i = 0, m = next(5); i < m && *n + 64 < cap; i++) {
        if (i) {
            b[(*n)++] = ',';
        }
        if (next(4) == 0) {
            b[(*n)++] = ' ';
        }
        if (k == 3) {
            *n += (size_t)snprintf(b + *n, cap - *n, "\"k%u\":", next(4));
        }
        gen(b, n, cap, depth + 1);
    }
    b[(*n)++] = k == 2 ? ']' : '}';
}

/* Random documents, then the same ones with bytes changed, inserted or removed. */
static void random_and_mutated(void **state)
{
    static const char mut[] = "{}[]\",:\\ u0123456789abcdefEe+-.tfnlrs\x01\xff\t\n";
    char b[4096];
    size_t agree = 0;

    for (int round = 0; round < 20000; round++) {
        size_t n = 0;

        gen(b, &n, sizeof(b) - PAD, 0);
        if (round % 2) {
            for (unsigned m = 1 + next(3); m; m--) {
                size_t at = n ? next((unsigned)n) : 0;
                switch (next(3)) {
                case 0:
                    b[at] = mut[next(sizeof(mut) - 1)];
                    break;
                case 1:
                    memmove(b + at + 1, b + at, n - at);
                    b[at] = mut[next(sizeof(mut) - 1)];
                    n++;
                    break;
                default:
                    if (n) {
                        memmove(b + at, b + at + 1, n - at - 1);
                        n--;
                    }
                }
            }
        }
        memset(b + n, ' ', PAD);
        agree += (size_t)check_len(b, n + PAD);
    }
    assert_true(agree > 10000); /* most stay valid, so the fast path is what was compared */
}

/* Numbers and shapes a parse does not give: built by code, as processors build what they emit. */
static void print_like_cjson(void **state)
{
    static const double nums[] = {
        0, -0.0, 1, -1, 0.1, 1.0 / 3, -2.5, 1e15 - 1, 1e15, -1e15, 1e15 + 1, 2147483647,
        2147483648.0, -2147483648.0, -2147483649.0, 1764236400123.0, 9007199254740991.0,
        9007199254740993.0, 1e21, 1e300, -1e-300, 5e-324, 1.7976931348623157e308, 123456789012345.6,
        0.000001, 1e-7, 100, 1e16, 12345678.875,
        /* whole numbers from 1e15 to 2^64, written without printf */
        1764236400123456789.0, /* nanoseconds since 1970 */
        -1764236400123456789.0, 1e17, 1e17 - 16, 99999999999999984.0, 1e18, 1e19,
        9.2233720368547758e18, 18446744073709549568.0, /* the largest double below 2^64 */
        18446744073709551616.0,                        /* 2^64: printf again */
        1234567890123455.0, 4503599627370497.0, -9007199254740993.0, 123456789012345680.0};
    cJSON *arr = cJSON_CreateArray(), *obj = cJSON_CreateObject(), *n;

    (void)state;
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        n = cJSON_CreateNumber(nums[i]);
        same_print(n);
        cJSON_AddItemToArray(arr, n);
    }
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(NAN));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(INFINITY));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(-INFINITY));
    n = cJSON_CreateNumber(5);
    n->valueint = 7; /* valueint alone changed: cJSON writes valuedouble */
    cJSON_AddItemToArray(arr, n);
    cJSON_AddItemToObject(obj, "nums", arr);
    /* random whole numbers from 1e15 to 2^64, both signs, and every power of two there */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d = (double)(x >> (x % 14));
        if (d < 1e15) {
            continue;
        }
        n = cJSON_CreateNumber(x & 1 ? -d : d);
        same_print(n);
        cJSON_Delete(n);
    }
    for (int e = 49; e < 64; e++) {
        n = cJSON_CreateNumber(ldexp(1, e));
        same_print(n);
        cJSON_Delete(n);
    }
    cJSON_AddStringToObject(obj, "ctl", "a\"b\\c\b\f\n\r\t\x01\x1f/\xc3\xa9\xff");
    cJSON_AddItemToObject(obj, "empty_obj", cJSON_CreateObject());
    cJSON_AddItemToObject(obj, "empty_arr", cJSON_CreateArray());
    cJSON_AddItemToObject(obj, "raw", cJSON_CreateRaw("{\"pre\":[1,2]}"));
    cJSON_AddItemToObject(obj, "k\"ey\n", cJSON_CreateTrue());
    cJSON_AddItemToObject(obj, "f", cJSON_CreateFalse());
    cJSON_AddItemToObject(obj, "z", cJSON_CreateNull());
    cJSON_AddItemToObject(obj, "s", cJSON_CreateString(""));
    same_print(obj);
    cJSON_Delete(obj);
}

/* dr_json_parse_prefix() ends where the value ends, short (cJSON) or long (the fast parser). */
static void prefix_end(void **state)
{
    char long_doc[600];
    const char *end = NULL;
    cJSON *v;

    (void)state;
    v = dr_json_parse_prefix(" {\"a\":[1,\"]\"]} \ngarbage", 24, &end);
    assert_non_null(v);
    assert_string_equal(end, " \ngarbage");
    cJSON_Delete(v);
    snprintf(long_doc, sizeof(long_doc), "{\"s\":\"%0500d\\\"}\"}{}", 0);
    v = dr_json_parse_prefix(long_doc, strlen(long_doc), &end);
    assert_non_null(v);
    assert_string_equal(end, "{}");
    cJSON_Delete(v);
}

/* The text checks the readers of notifications and push messages share. */
#define LIT(s) s, sizeof(s) - 1
static void text_problems(void **state)
{
    (void)state;
    assert_null(dr_json_text_problem(LIT("{\"a\":\"caf\xc3\xa9\"}")));
    assert_string_equal(dr_json_text_problem(LIT("{\"a\":\"\xff\"}")), "invalid UTF-8");
    assert_string_equal(dr_json_text_problem(LIT("{\"a\":\"\0\"}")),
                        "strings must not contain U+0000");
    assert_true(dr_json_has_escaped_nul(LIT("\"a\\u0000\"")));
    assert_true(dr_json_has_escaped_nul(LIT("\"\\\\\\u0000\""))); /* \\ then \u0000 */
    assert_false(dr_json_has_escaped_nul(LIT("\"\\\\u0000\"")));  /* \\ then the text u0000 */
    assert_false(dr_json_has_escaped_nul(LIT("\"\\u000\"")));     /* cut short */
    assert_false(dr_json_has_escaped_nul(LIT("\\u000")));
    assert_false(dr_json_has_escaped_nul(LIT("\\")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_documents),  cmocka_unit_test(invalid_documents),
        cmocka_unit_test(cjson_leniencies), cmocka_unit_test(deep_nesting),
        cmocka_unit_test(long_strings),     cmocka_unit_test(random_and_mutated),
        cmocka_unit_test(print_like_cjson), cmocka_unit_test(prefix_end),
        cmocka_unit_test(text_problems),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
