/* The word-start prefilter must find exactly what a plain unanchored PCRE2 search finds. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pcre2.h>

#include "dr/err.h"
#include "dr/util.h"
#include "processors/shipment/tracking_int.h"

static const char *const patterns[] = {
    "\\bdelivered\\b",
    "\\bout\\s+for\\s+delivery\\b",
    "\\b(?:zugestellt|consegnat[oa]|doręczon[aey])\\b",
    "\\bshipped\\b|\\bon\\s+its\\s+way\\b",
    "\\b\\d{3}-\\d{7}-\\d{7}\\b",
};

static const char *const words[] = {
    "delivered",
    "undelivered",
    "delivery",
    "out",
    "for",
    "the",
    "package",
    "zugestellt",
    "consegnato",
    "doręczona",
    "shipped",
    "reshipped",
    "on",
    "its",
    "way",
    "123-1234567-1234567",
    "9123-1234567-1234567",
    "x",
    "\n",
    "  ",
    "DELIVERED",
    "Out",
    "wurde",
    "é",
    "—",
};

static uint64_t rng = 88172645463325252ull;
static size_t next_rand(size_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (size_t)(rng % n);
}

static void prefilter_finds_what_pcre2_finds(void **state)
{
    struct dr__wordset ws;
    pcre2_match_data *md = pcre2_match_data_create(16, NULL);
    pcre2_match_data *md2 = pcre2_match_data_create(16, NULL);
    pcre2_code *plain[DR_ARRAY_LEN(patterns)];
    int errcode;
    PCRE2_SIZE erroff;
    size_t compared = 0;

    assert_int_equal(dr__wordset_compile(&ws, DR__WORDSET_TEXT, patterns, DR_ARRAY_LEN(patterns),
                                         PCRE2_CASELESS | PCRE2_UTF | PCRE2_UCP),
                     DR_OK);
    for (size_t j = 0; j < DR_ARRAY_LEN(patterns); j++) {
        plain[j] = pcre2_compile((PCRE2_SPTR)patterns[j], PCRE2_ZERO_TERMINATED,
                                 PCRE2_CASELESS | PCRE2_UTF | PCRE2_UCP, &errcode, &erroff, NULL);
        assert_non_null(plain[j]);
    }
    for (int round = 0; round < 400; round++) {
        char text[2048] = "";
        size_t len = 0;
        struct dr__wordstarts at = {0};

        for (int w = 0; w < 40; w++) {
            const char *word = words[next_rand(DR_ARRAY_LEN(words))];
            const char *sep = next_rand(4) ? " " : (next_rand(2) ? "," : "");
            if (len + strlen(word) + 2 >= sizeof(text)) {
                break;
            }
            len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s", word, sep);
        }
        assert_int_equal(dr__wordset_scan(&ws, text, len, md, &at), DR_OK);
        for (size_t j = 0; j < DR_ARRAY_LEN(patterns); j++) {
            size_t from = 0, cursor = 0;
            for (;;) {
                int a = dr__wordset_find(&ws, j, text, &at, &cursor, from, len, md);
                int b = pcre2_match(plain[j], (PCRE2_SPTR)text, len, from, 0, md2, NULL) >= 0;
                assert_int_equal(a, b);
                if (!a) {
                    break;
                }
                PCRE2_SIZE *va = pcre2_get_ovector_pointer(md);
                PCRE2_SIZE *vb = pcre2_get_ovector_pointer(md2);
                assert_int_equal(va[0], vb[0]);
                assert_int_equal(va[1], vb[1]);
                compared++;
                from = vb[1] > vb[0] ? vb[1] : vb[0] + 1;
                if (from > len) {
                    break;
                }
            }
        }
        dr__wordstarts_cleanup(&at);
    }
    assert_true(compared > 100); /* the texts did contain matches */
    for (size_t j = 0; j < DR_ARRAY_LEN(patterns); j++) {
        pcre2_code_free(plain[j]);
    }
    dr__wordset_free(&ws);
    pcre2_match_data_free(md);
    pcre2_match_data_free(md2);
}

static void patterns_that_match_inside_words_are_refused(void **state)
{
    struct dr__wordset ws;
    const char *const inside[] = {"livered"};

    assert_int_equal(dr__wordset_compile(&ws, DR__WORDSET_TEXT, inside, 1, PCRE2_CASELESS),
                     DR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefilter_finds_what_pcre2_finds),
        cmocka_unit_test(patterns_that_match_inside_words_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
