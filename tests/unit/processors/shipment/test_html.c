/*
 * dr__html_to_text() gives byte for byte what the implementation before run-at-a-time copying
 * gave (html_ref.h), for every file of the corpora (raw and decoded), and for generated variants
 * of them: character references whole and cut, tags splitting words, comments, scripts and
 * styles left open, broken and truncated markup, multi-byte characters at the end of the input.
 * Inputs are exact-size heap copies, so a read past the end shows under ASan.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "unit/processors/corpus.h"
#include "html_ref.h"
#include "mime_text.h"
#include "processors/shipment/tracking_int.h"

#define MAX_FILES 1024
#define MAX_RAW   (256u * 1024)
#define VARIANTS  16

static const char *const pieces[] = {
    "&amp;",
    "&AMP;",
    "&nbsp;",
    "&nbsp",
    "&#160;",
    "&#xA0;",
    "&#x1F4E6;",
    "&#0;",
    "&#xD800;",
    "&#99999999",
    "&#x",
    "&#",
    "&",
    "&lt;b&gt;",
    "&hellip",
    "&trade;",
    "&zwnj;",
    "&unknown;",
    "&#65",
    "<b>",
    "</b>",
    "<br>",
    "<br/>",
    "<p>",
    "</td>",
    "<td >",
    "<TD>",
    "<",
    "< ",
    "<<",
    ">",
    "<!--",
    "-->",
    "<!-- x -->",
    "<script>var a='<p>';",
    "</script>",
    "<style>td{}",
    "</STYLE>",
    "<a href=\"https://x.example/t?n=1Z879E930346834440\">",
    "<a href='http",
    "<a href=https://example.com/track>",
    "</a>",
    "<a>",
    "<a href=\"",
    "<div class=\"a>b\">",
    "<?xml ?>",
    "<!DOCTYPE html>",
    "  ",
    "\t\r\n",
    "\xc2\xa0",
    "\xc3\xa9",
    "\xe2\x80\x94",
    "\xf0\x9f\x93\xa6",
    "\xc3",
    "\xe2\x80",
    "<TABLE>",
    "<blockquote>",
    "<H2>",
    "</h6>",
    "<section>",
    "<tbody>",
    "<title>",
    "<pre>",
    "<center>",
    "<header>",
    "<footer>",
    "<hr>",
    "<ol><li>",
    "<Ul>",
    "<th>",
    "<tr>",
    "<h7>",
    "<divx>",
    "<sectio>",
    "<blockquotes>",
    "<span>",
    "<B>",
    "<P>",
    "<Br>",
    "\xf0\x9f",
    "\xff",
    "\0",
    "Tracking",
    "1Z879E",
    "930346834440",
};

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static size_t cases, mismatches;

static size_t next_rand(size_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (size_t)(rng % n) : 0;
}

static void compare(const char *name, const char *text, size_t len)
{
    char *copy = malloc(len ? len : 1); /* exact size: no terminator to lean on */
    struct dr_buf want, got;
    int ew, eg;

    assert_non_null(copy);
    memcpy(copy, text, len);
    dr_buf_init(&want, 2 * len + 4096);
    dr_buf_init(&got, 2 * len + 4096);
    ew = ref_html_to_text(copy, len, &want);
    eg = dr__html_to_text(copy, len, &got);
    cases++;
    if (ew != eg || want.len != got.len || (want.len && memcmp(want.data, got.data, want.len))) {
        if (mismatches++ < 5) {
            print_message("mismatch %s (len %zu): err %d/%d, %zu/%zu bytes\n", name, len, ew, eg,
                          want.len, got.len);
        }
    }
    dr_buf_cleanup(&want);
    dr_buf_cleanup(&got);
    free(copy);
}

/* Also every cut of the text's last 16 bytes, so markup and characters end with the input. */
static void compare_cuts(const char *name, const char *text, size_t len)
{
    compare(name, text, len);
    for (size_t k = 1; k <= 16 && k <= len; k++) {
        compare(name, text, len - k);
    }
}

static void variants(const char *name, const char *text, size_t len)
{
    for (int v = 0; v < VARIANTS; v++) {
        size_t edits = 1 + next_rand(8), cap = len + edits * 64 + 1;
        char *buf = malloc(cap);
        size_t n = len;

        assert_non_null(buf);
        memcpy(buf, text, len);
        for (size_t e = 0; e < edits; e++) {
            size_t at = next_rand(n + 1);
            if (next_rand(4) == 0 && n > 0) { /* cut the text here */
                n = at;
                continue;
            }
            const char *p = pieces[next_rand(sizeof(pieces) / sizeof(pieces[0]))];
            size_t pl = p[0] ? strlen(p) : 1; /* "\0": one NUL byte */
            memmove(buf + at + pl, buf + at, n - at);
            memcpy(buf + at, p, pl);
            n += pl;
        }
        compare_cuts(name, buf, n);
        free(buf);
    }
}

static void corpus_output_unchanged(void **state)
{
    const char *data = getenv("DR_TEST_DATA");
    static const char *const dirs[] = {"email", "shipment/mail_and_packages", "replies"};
    char *files[MAX_FILES];
    size_t nfiles = 0;
    char path[1024];

    (void)state;
    assert_non_null(data);
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", data, dirs[i]);
        corpus_list(path, files, &nfiles, MAX_FILES, MAX_RAW, 0);
    }
    corpus_sort(files, nfiles);
    assert_true(nfiles > 100);
    for (size_t i = 0; i < nfiles; i++) {
        const char *rel = files[i] + strlen(data) + 1;
        gchar *raw = NULL;
        gsize rawlen = 0;
        struct mime_text m;

        if (g_file_get_contents(files[i], &raw, &rawlen, NULL)) {
            compare_cuts(rel, raw, rawlen);
            variants(rel, raw, rawlen < 8192 ? rawlen : 8192);
            g_free(raw);
        }
        if (mime_text_load(files[i], &m) == 0) {
            compare_cuts(rel, m.body, m.body_len);
            variants(rel, m.body, m.body_len < 8192 ? m.body_len : 8192);
            mime_text_free(&m);
        }
        free(files[i]);
    }
    print_message("html: %zu cases, %zu mismatches\n", cases, mismatches);
    assert_true(cases > 1000);
    assert_int_equal(mismatches, 0);
}

/* Texts made only of the pieces: references, tags and characters next to each other. */
static void pieces_only(void **state)
{
    char buf[512];

    (void)state;
    cases = mismatches = 0;
    for (int v = 0; v < 20000; v++) {
        size_t n = 0;
        while (n < 400) {
            const char *p = pieces[next_rand(sizeof(pieces) / sizeof(pieces[0]))];
            size_t pl = p[0] ? strlen(p) : 1;
            if (n + pl > sizeof(buf)) {
                break;
            }
            memcpy(buf + n, p, pl);
            n += pl;
            if (next_rand(6) == 0) {
                break;
            }
        }
        compare("pieces", buf, n);
    }
    assert_int_equal(mismatches, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corpus_output_unchanged),
        cmocka_unit_test(pieces_only),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mime_text_shutdown();
    return rc;
}
