/*
 * Tests src/processors/email/html.c against its previous implementation (html_ref.h): the same
 * text and the same result code for the HTML of every email in tests/data, generated markup
 * (tags and entities in any case, attributes with entities and whitespace, unknown and broken
 * tags) and output limits that cut anywhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "unit/processors/corpus.h"
#include "dr/buf.h"
#include "dr/email.h"
#include "dr/err.h"
#include "dr/util.h"
#include "processors/email/email_int.h"
#include "unit/processors/email/testutil.h"

int ref_html_to_text(const char *html, size_t len, struct dr_buf *out);
#include "html_ref.h"

static size_t compared;

static void same_limit(const char *html, size_t len, size_t limit, const char *what)
{
    struct dr_buf a, b;
    int ea, eb;

    dr_buf_init(&a, limit);
    dr_buf_init(&b, limit);
    ea = ref_html_to_text(html, len, &a);
    eb = dr__email_html_to_text(html, len, &b);
    if (ea != eb || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0)) {
        size_t k = 0;
        while (k < a.len && k < b.len && a.data[k] == b.data[k]) {
            k++;
        }
        fail_msg("%s (limit %zu): result %d/%d, text differs at byte %zu of %zu/%zu", what, limit,
                 ea, eb, k, a.len, b.len);
    }
    compared++;
    dr_buf_cleanup(&a);
    dr_buf_cleanup(&b);
}

static void same(const char *html, size_t len, const char *what)
{
    struct dr_buf a;
    size_t full;

    dr_buf_init(&a, SIZE_MAX);
    (void)ref_html_to_text(html, len, &a);
    full = a.len;
    dr_buf_cleanup(&a);
    same_limit(html, len, SIZE_MAX, what);
    for (size_t l = 0; l <= full + 2 && l < 64; l++) {
        same_limit(html, len, l, what);
    }
    for (size_t l = 64; l <= full + 2; l += l / 7 + 1) {
        same_limit(html, len, l, what);
    }
}

static unsigned rnd(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) & 0xFFFFFF;
}

static void generated(void **state)
{
    static const char *const pieces[] = {
        "<p>",
        "</P>",
        "<DIV class=\"x\">",
        "</div>",
        "<br>",
        "<BR/>",
        "<td>",
        "<TH>",
        "<li>",
        "<a href=\"https://example.com/?a=1&amp;b=2\">",
        "<A HREF='http://x.y/&lt;z&gt;'>",
        "</a>",
        "<img alt=\"caf&eacute; &amp; t&#233;\tx  y\">",
        "<IMG ALT=plain>",
        "<img alt='&Uuml;ber &notanentity; &#x20AC;&#128;'>",
        "<script>x<y</script>",
        "<STYLE>p{}</style>",
        "<title>T</title>",
        "<pre> a  b\n c</pre>",
        "<h1>",
        "<H6>",
        "<hr>",
        "<table><tr><td>",
        "<xyz>",
        "<1abc>",
        "<@x>",
        "< p>",
        "<>",
        "</>",
        "<!-- c -->",
        "&amp;",
        "&AMP;",
        "&nbsp;",
        "&eacute;",
        "&Eacute;",
        "&#65;",
        "&#x41;",
        "&#;",
        "&x",
        "&",
        "&zwnj;",
        "&shy;",
        "text ",
        "more  text",
        "\n",
        "\t",
        "  ",
        "\xc3\xa9",
        "\xe2\x82\xac",
        "<a href=\"mailto:x@y\">mail</a>",
        "<a href=https://u.v/w>u</a>",
        "<svg><g/></svg>",
        "<template>t</template>",
        "<body>",
        "<HTML>",
        "<center>",
        "<Option>o",
        "<textarea>",
        "<a title=\"q\" href=\"https://h/\"",
        ">",
        "\"",
        "'",
        "=",
    };
    char buf[3000];
    unsigned seed = 11;

    (void)state;
    for (int round = 0; round < 3000; round++) {
        size_t n = 0, target = 1 + rnd(&seed) % (round % 20 == 0 ? 2800 : 200);
        while (n < target) {
            const char *p = pieces[rnd(&seed) % DR_ARRAY_LEN(pieces)];
            size_t k = strlen(p);
            if (n + k >= sizeof(buf)) {
                break;
            }
            memcpy(buf + n, p, k);
            n += k;
        }
        buf[n] = '\0';
        if (round % 20 == 0) {
            same(buf, n, "generated");
        } else {
            same_limit(buf, n, SIZE_MAX, "generated");
            same_limit(buf, n, rnd(&seed) % (n + 1), "generated");
        }
    }
}

/* A corpus file's HTML part, and the file itself as markup: whatever it holds. */
static void visit(const char *path, char *raw, size_t len)
{
    struct dr_email *em = NULL;

    if (dr__email_parse_ex(raw, len, NULL, 0, &em) == DR_OK && em->html) {
        same(em->html, em->html_len, path);
    }
    dr_email_destroy(em);
    same_limit(raw, len, SIZE_MAX, path);
}

static void corpora(void **state)
{
    const char *root = getenv("DR_TEST_DATA") ? getenv("DR_TEST_DATA") : "tests/data";
    char dir[1024];
    size_t before = compared;

    (void)state;
    dr_email_global_init();
    snprintf(dir, sizeof(dir), "%s/email", root);
    assert_true(corpus_each(dir, 1, visit) > 0);
    snprintf(dir, sizeof(dir), "%s/shipment", root);
    assert_true(corpus_each(dir, 1, visit) > 0);
    assert_true(compared - before > 1000);
}

/* An HTML part whose markup renders to no text leaves the HTML text absent or a terminated
 * string, never an unterminated allocation. */
static void markup_without_text(void **state)
{
    static const char *const bodies[] = {"<div><img src=\"a.png\"></div>", "<p></p>", "<br><br>",
                                         "<style>p{}</style>", "<div>\n</div>x"};
    char raw[512];

    (void)state;
    dr_email_global_init();
    for (size_t i = 0; i < DR_ARRAY_LEN(bodies); i++) {
        struct dr_email *em = NULL;
        int n = snprintf(raw, sizeof(raw),
                         "From: a@b\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
                         "Content-Type: text/html; charset=utf-8\r\n\r\n%s\r\n",
                         bodies[i]);

        assert_int_equal(dr_email_parse(raw, (size_t)n, NULL, &em), DR_OK);
        if (em->html_text) {
            assert_int_equal(strlen(em->html_text), em->html_text_len);
        }
        if (em->text) {
            assert_int_equal(strlen(em->text), em->text_len);
        }
        dr_email_destroy(em);
    }
}

/* Generated regression input (tests/data/regress/email/href_at_end.html): a link target cut by
 * the end of the input, given without a NUL after it, is not read past its end. */
static void href_at_end(void **state)
{
    size_t n = 0;
    char *file = email_data("../regress/email/href_at_end.html", &n);
    static const char *const more[] = {"<a href=\"http://", "<a href=\"https://e.x/\">t</a",
                                       "<a href=h", "<a href=\"HTTPS://e.example/\">t</a>"};
    struct dr_buf b;
    char *exact;

    (void)state;
    assert_non_null(file);
    for (size_t k = 0; k <= DR_ARRAY_LEN(more); k++) {
        const char *html = k ? more[k - 1] : file;
        size_t len = k ? strlen(html) : n;

        exact = malloc(len); /* no terminator: the converter must stay within len */
        assert_non_null(exact);
        memcpy(exact, html, len);
        dr_buf_init(&b, SIZE_MAX);
        assert_int_equal(dr__email_html_to_text(exact, len, &b), DR_OK);
        if (k == DR_ARRAY_LEN(more)) {
            assert_non_null(strstr(b.data, "HTTPS://e.example/")); /* a kept link */
        }
        dr_buf_cleanup(&b);
        free(exact);
    }
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generated),
        cmocka_unit_test(corpora),
        cmocka_unit_test(markup_without_text),
        cmocka_unit_test(href_at_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
