/*
 * Tests the case folding of src/processors/email/cues.c (dr__email_fold_into()): byte for byte
 * what g_utf8_strdown() returns (the reference), over every code point with capital sigma before
 * and after it, generated text mixing ASCII, Latin-1, Greek, Cyrillic, Turkish dotted and
 * dotless i, titlecase letters, combining marks, invalid and truncated UTF-8, cut at every kind
 * of place, and the texts, subjects and raw bytes of the emails in tests/data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "unit/processors/corpus.h"
#include "dr/email.h"
#include "dr/err.h"
#include "dr/util.h"
#include "processors/email/email_int.h"

#define PAD 16 /* zero bytes after every string: glib may copy a few past a truncated sequence */

static size_t compared;

/* s[0..len) folded both ways must agree; s is NUL-terminated and padded. */
static void same(const char *s, size_t len, const char *what)
{
    char *want = g_utf8_strdown(s, (gssize)len);
    size_t wlen = strlen(want), cap = 2 * len + 64, n;
    char *got = dr_xmalloc(cap);

    n = dr__email_fold_into(s, len, got, cap);
    assert_int_not_equal(n, SIZE_MAX);
    if (n != wlen || memcmp(want, got, n) != 0 || got[n] != '\0') {
        size_t k = 0;
        while (k < n && k < wlen && want[k] == got[k]) {
            k++;
        }
        fail_msg("%s (len %zu): fold differs at byte %zu of %zu/%zu", what, len, k, wlen, n);
    }
    /* too small an output is refused, never overrun */
    if (wlen > 0) {
        char small[64];
        size_t cap2 = wlen < sizeof(small) ? wlen : sizeof(small);
        size_t n2 = dr__email_fold_into(s, len, small, cap2);
        assert_true(n2 == SIZE_MAX || (n2 < cap2 && n2 == wlen && memcmp(small, want, n2) == 0));
    }
    compared++;
    g_free(want);
    free(got);
}

static size_t put_utf8(char *o, uint32_t c)
{
    /* surrogates and the like encoded as their bit patterns, as invalid text carries them */
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Every code point, each followed and preceded by capital sigma, in chunks. */
static void every_code_point(void **state)
{
    enum { CHUNK = 4096 };
    char *buf = dr_xcalloc(1, CHUNK * 8 + PAD);

    (void)state;
    for (uint32_t lo = 1; lo < 0x110000; lo += CHUNK) {
        size_t n = 0;
        for (uint32_t c = lo; c < lo + CHUNK && c < 0x110000; c++) {
            n += put_utf8(buf + n, c);
            n += put_utf8(buf + n, 0x3A3);
        }
        buf[n] = '\0';
        same(buf, n, "code points");
        /* each character alone, as the last one */
        if (lo < 0x3000) {
            for (uint32_t c = lo; c < lo + CHUNK && c < 0x3000; c++) {
                char one[8 + PAD] = {0};
                size_t k = put_utf8(one, 0x3A3);
                k += put_utf8(one + k, c);
                same(one, k, "sigma before one character");
                same(one + 2, k - 2, "one character");
            }
        }
    }
    free(buf);
}

static unsigned rnd(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) & 0xFFFFFF;
}

/* Generated text: pieces of many scripts and broken sequences, cut at random places. */
static void generated(void **state)
{
    static const char *const pieces[] = {
        "A",
        "z",
        "Q",
        " ",
        "\t",
        "\n",
        ".",
        "7",
        "-",
        "Hello World ",
        "ORDER SHIPPED ",
        "\xc3\x80",
        "\xc3\x89",
        "\xc3\x9f",
        "\xc3\xa9",
        "\xc3\x9e",
        "\xc3\xbf",
        "\xc2\xa0",
        "\xc2\xb5",
        "\xc3\x97",
        "\xc3\xb7",
        "\xce\xa3",
        "\xce\xa3\xce\xa3",
        "\xce\x91",
        "\xcf\x82",
        "\xce\xac",
        "\xce\x86",
        "\xce\x8f",
        "\xcf\x92",
        "\xd0\x96",
        "\xd0\x81",
        "\xd1\x88",
        "\xd0\x84",
        "\xd2\x90",
        "\xd3\x80",
        "\xc4\xb0",
        "\xc4\xb1",
        "I",
        "i",
        "\xc7\x85",
        "\xc7\x88",
        "\xc7\xb2",
        "\xcc\x81",
        "\xcc\x87",
        "\xcd\x85",
        "\xe1\xba\x9e",
        "\xe2\x84\xa6",
        "\xe2\x84\xaa",
        "\xe2\x84\xab",
        "\xe1\xbe\x88",
        "\xe1\xbe\xbc",
        "\xe2\x80\x99",
        "\xe2\x80\x9c",
        "\xe2\x82\xac",
        "\xef\xbc\xa1",
        "\xf0\x90\x90\x80",
        "\xf0\x9f\x98\x80",
        "\xc8\xba",
        "\xe2\xb0\x80",
        "\xea\x99\x80",
        "\x80",
        "\xbf",
        "\xc0\x81",
        "\xc1\x81",
        "\xc0\x80",
        "\xc2",
        "\xe2\x82",
        "\xf0\x9f\x98",
        "\xf0\x9f",
        "\xf0",
        "\xe0\x80\xa1",
        "\xed\xa0\x80",
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
        "\xf8\x88\x80\x80\x80",
        "\xfc\x84\x80\x80\x80\x80",
        "\xfe",
        "\xff",
        "\xce",
        "\xd0",
        "\xc3"
        "A",
        "\xe2"
        "AB",
        "\xf0"
        "ABC",
    };
    char buf[4096 + PAD];
    unsigned seed = 7;

    (void)state;
    for (int round = 0; round < 20000; round++) {
        size_t n = 0, len;
        size_t target = 1 + rnd(&seed) % (round % 10 == 0 ? 4000 : 60);

        while (n < target) {
            const char *p = pieces[rnd(&seed) % DR_ARRAY_LEN(pieces)];
            size_t k = strlen(p);
            if (n + k > sizeof(buf) - PAD - 1) {
                break;
            }
            memcpy(buf + n, p, k);
            n += k;
        }
        memset(buf + n, 0, PAD);
        same(buf, n, "generated");
        len = n ? rnd(&seed) % (n + 1) : 0;
        same(buf, len, "generated, cut"); /* bytes after len are not NUL */
        if (n > 1) {
            char *mid = buf + rnd(&seed) % n;
            char keep = *mid;
            *mid = '\0';
            same(buf, n, "generated, NUL inside");
            *mid = keep;
        }
    }
}

/* ---- the corpora ---------------------------------------------------------------------- */

static void same_padded(const char *s, size_t len, const char *what)
{
    char *copy = dr_xcalloc(1, len + PAD);

    memcpy(copy, s, len);
    same(copy, len, what);
    /* cut as the cue scan cuts: 1024 and 8192 bytes */
    if (len > 1024) {
        same(copy, 1024, what);
        same(copy, dr__email_utf8_boundary(copy, 1024), what);
    }
    if (len > 8192) {
        same(copy, dr__email_utf8_boundary(copy, 8192), what);
    }
    free(copy);
}

static void check_file(const char *path, char *raw, size_t len)
{
    struct dr_email *em = NULL;

    for (size_t off = 0; off < len; off += 8192) {
        same(raw + off, len - off < 8192 ? len - off : 8192, path); /* raw bytes, any encoding */
    }
    if (dr__email_parse_ex(raw, len, NULL, 0, &em) == DR_OK) {
        if (em->subject) {
            same_padded(em->subject, strlen(em->subject), path);
        }
        if (em->text) {
            same_padded(em->text, em->text_len, path);
        }
        if (em->html_text) {
            same_padded(em->html_text, em->html_text_len, path);
        }
        dr_email_destroy(em);
    }
}

static void corpora(void **state)
{
    const char *root = getenv("DR_TEST_DATA") ? getenv("DR_TEST_DATA") : "tests/data";
    char dir[1024];
    size_t before = compared;

    (void)state;
    dr_email_global_init();
    snprintf(dir, sizeof(dir), "%s/email", root);
    assert_true(corpus_each(dir, PAD, check_file) > 0);
    snprintf(dir, sizeof(dir), "%s/shipment", root);
    assert_true(corpus_each(dir, PAD, check_file) > 0);
    assert_true(compared - before > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_point),
        cmocka_unit_test(generated),
        cmocka_unit_test(corpora),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
