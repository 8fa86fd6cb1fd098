/*
 * Parse throughput on 5-50 KB multipart/alternative HTML emails (generated here with a fixed
 * seed, like the newsletters and notifications the router sees) and on the real carrier
 * notifications in tests/data/email/carriers. Prints messages/s and MB/s; asserts that every
 * parse succeeded with both bodies present. Numbers from a sanitizer build are much lower than
 * from a release build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include <cmocka.h>

#include "dr/email.h"
#include "dr/err.h"
#include "dr/util.h"
#include "unit/processors/email/testutil.h"

#define N_SYNTH 46

static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static const char *const words[] = {"order",
                                    "your",
                                    "package",
                                    "the",
                                    "delivery",
                                    "today",
                                    "Stra\xc3\x9f"
                                    "e",
                                    "caf\xc3\xa9",
                                    "track",
                                    "item",
                                    "price",
                                    "shipping",
                                    "account",
                                    "update",
                                    "news",
                                    "offer",
                                    "week"};

/* One message of roughly target bytes: text part, quoted-printable HTML part, small PDF. */
static char *make_message(int idx, size_t target, size_t *len)
{
    uint32_t x = 2463534242u + (uint32_t)idx * 7919u;
    GString *m = g_string_new(""), *html = g_string_new(""), *text = g_string_new("");

    g_string_append_printf(m,
                           "From: \"Shop %d\" <news@shop%d.example>\nTo: user%d@example.org\n"
                           "Subject: =?UTF-8?Q?Your_order_%d_=E2=80=93_update?=\n"
                           "Date: Mon, 24 Nov 2025 10:%02d:00 +0100\n"
                           "Message-ID: <%d.bench@shop.example>\nMIME-Version: 1.0\n"
                           "Content-Type: multipart/mixed; boundary=\"mix%d\"\n\n--mix%d\n"
                           "Content-Type: multipart/alternative; boundary=\"alt%d\"\n\n",
                           idx, idx, idx, idx, idx % 60, idx, idx, idx, idx);
    g_string_append(html, "<html><head><style>td{padding:4px}</style></head><body><table>");
    while (html->len + text->len < target * 3 / 4) {
        g_string_append(html, "<tr><td><p>");
        for (int w = 0; w < 12; w++) {
            const char *wd = words[rnd(&x) % (sizeof(words) / sizeof(words[0]))];
            g_string_append_printf(html, "%s%s", wd, w % 5 == 4 ? " &amp; " : " ");
            g_string_append_printf(text, "%s ", wd);
        }
        g_string_append_printf(html,
                               "</p><a href=\"https://shop.example/t?id=%u\">view</a>"
                               "&nbsp;&#8364;%u</td></tr>\n",
                               rnd(&x), rnd(&x) % 100);
        g_string_append(text, "\n");
    }
    g_string_append(html, "</table></body></html>");
    g_string_append_printf(m,
                           "--alt%d\nContent-Type: text/plain; charset=utf-8\n"
                           "Content-Transfer-Encoding: 8bit\n\n%s\n",
                           idx, text->str);
    g_string_append_printf(m,
                           "--alt%d\nContent-Type: text/html; charset=utf-8\n"
                           "Content-Transfer-Encoding: quoted-printable\n\n",
                           idx);
    /* quoted-printable, 76 columns */
    for (size_t i = 0, col = 0; i < html->len; i++) {
        unsigned char c = (unsigned char)html->str[i];
        if (col >= 72) {
            g_string_append(m, "=\n");
            col = 0;
        }
        if (c == '\n') {
            g_string_append_c(m, '\n');
            col = 0;
        } else if (c == '=' || c >= 0x80) {
            g_string_append_printf(m, "=%02X", c);
            col += 3;
        } else {
            g_string_append_c(m, (char)c);
            col++;
        }
    }
    g_string_append_printf(
        m,
        "\n--alt%d--\n--mix%d\nContent-Type: application/pdf\n"
        "Content-Disposition: attachment; filename=\"invoice-%d.pdf\"\n"
        "Content-Transfer-Encoding: base64\n\n"
        "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==\n"
        "--mix%d--\n",
        idx, idx, idx, idx);
    g_string_free(html, TRUE);
    g_string_free(text, TRUE);
    *len = m->len;
    return g_string_free(m, FALSE);
}

/* Every message in msgs parsed, repeatedly for about seconds; need_html: each must have HTML. */
static void run(const char *label, char **msgs, size_t *lens, int n, int need_html, double seconds)
{
    uint64_t start = dr_mono_ns(), elapsed;
    size_t count = 0, bytes = 0;

    do {
        for (int i = 0; i < n; i++) {
            struct dr_email *em = NULL;
            assert_int_equal(dr_email_parse(msgs[i], lens[i], NULL, &em), DR_OK);
            assert_non_null(em->text);
            assert_true(em->text_len > 0);
            if (need_html) {
                assert_non_null(em->html_text);
                assert_true(em->html_text_len > 0);
            }
            dr_email_destroy(em);
            count++;
            bytes += lens[i];
        }
        elapsed = dr_mono_ns() - start;
    } while ((double)elapsed < seconds * 1e9);
    print_message("%s: %zu messages, %.1f MB in %.2f s: %.0f messages/s, %.1f MB/s\n", label, count,
                  (double)bytes / 1e6, (double)elapsed / 1e9,
                  (double)count / ((double)elapsed / 1e9),
                  (double)bytes / 1e6 / ((double)elapsed / 1e9));
    assert_true(count >= (size_t)n);
}

static void synthetic_html(void **state)
{
    char *msgs[N_SYNTH];
    size_t lens[N_SYNTH], total = 0;

    for (int i = 0; i < N_SYNTH; i++) {
        msgs[i] = make_message(i, 5000 + (size_t)i * 1000, &lens[i]); /* 5 KB .. 50 KB */
        total += lens[i];
    }
    assert_true(lens[0] >= 4000 && lens[N_SYNTH - 1] <= 60000);
    /* sizes measured from the generator, printed so the report can quote them */
    print_message("synthetic set: %d messages, %zu bytes on average\n", N_SYNTH, total / N_SYNTH);
    run("synthetic 5-50 KB multipart HTML", msgs, lens, N_SYNTH, 1, 2.0);
    for (int i = 0; i < N_SYNTH; i++) {
        g_free(msgs[i]);
    }
}

static void carrier_notifications(void **state)
{
    static const char *files[] = {"amazon_delivered",           "amazon_shipped",
                                  "amazon_uk_out_for_delivery", "dhl_out_for_delivery",
                                  "fedex_out_for_delivery",     "informed_delivery",
                                  "royal_mail_uk_delivered"};
    char *msgs[7];
    size_t lens[7];

    for (int i = 0; i < 7; i++) {
        char rel[128];
        snprintf(rel, sizeof(rel), "carriers/%s.eml", files[i]);
        msgs[i] = email_data(rel, &lens[i]);
        assert_non_null(msgs[i]);
    }
    run("carrier notifications (14-81 KB)", msgs, lens, 7, 0, 1.0);
    for (int i = 0; i < 7; i++) {
        free(msgs[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(synthetic_html),
        cmocka_unit_test(carrier_notifications),
    };
    dr_email_global_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
