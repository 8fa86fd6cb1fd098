/* Shipment cues (src/processors/email/cues.c): the one-pass scan finds what one strstr() per cue
 * word found, and the body phrases and carrier names count as before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "dr/email.h"
#include "dr/err.h"
#include "dr/shipment.h"
#include "processors/email/email_int.h"
#include "unit/processors/corpus.h"

static int is_word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static int status_rank(enum dr_email_ship_status s)
{
    return s == DR_EMAIL_SHIP_EXCEPTION ? 10 : (int)s;
}

/* The scan as it was: one strstr() per cue word over the NUL-terminated folded text. */
static int reference_cues(const char *folded, int earliest, enum dr_email_ship_status *st)
{
    const char *first = NULL;
    int score = 0;

    for (size_t i = 0; i < dr__email_word_cue_count; i++) {
        const char *w = dr__email_word_cues[i].word;
        const char *hit = strstr(folded, w);
        while (hit && hit > folded && is_word_char((unsigned char)hit[-1])) {
            hit = strstr(hit + 1, w);
        }
        if (!hit) {
            continue;
        }
        score += dr__email_word_cues[i].points;
        if (dr__email_word_cues[i].status == DR_EMAIL_SHIP_NONE) {
            continue;
        }
        if (earliest ? (!first || hit < first)
                     : status_rank(dr__email_word_cues[i].status) > status_rank(*st)) {
            *st = dr__email_word_cues[i].status;
            first = hit;
        }
    }
    return score;
}

static unsigned rnd(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) & 0xFFFFFF;
}

/* Random texts made of cue words, parts of them, glue that does or does not end a word. */
static void same_as_strstr(void **state)
{
    static const char *const glue[] = {" ", "un", "x", "-", ".", "\n", "é", "ó ", "9", ", ", ""};
    unsigned seed = 12345;
    char text[4096];

    (void)state;
    for (int round = 0; round < 3000; round++) {
        size_t n = 0, pieces = 1 + rnd(&seed) % 40;

        for (size_t k = 0; k < pieces; k++) {
            const char *w = dr__email_word_cues[rnd(&seed) % dr__email_word_cue_count].word;
            const char *g = glue[rnd(&seed) % (sizeof(glue) / sizeof(glue[0]))];
            size_t wl = strlen(w), cut = rnd(&seed) % 4 == 0 ? rnd(&seed) % (wl + 1) : wl;
            if (n + strlen(g) + wl + 1 >= sizeof(text)) {
                break;
            }
            memcpy(text + n, g, strlen(g));
            n += strlen(g);
            memcpy(text + n, w, cut); /* sometimes only the start of a word */
            n += cut;
        }
        text[n] = '\0';
        for (int earliest = 0; earliest < 2; earliest++) {
            enum dr_email_ship_status want_st = (enum dr_email_ship_status)(round % 3);
            enum dr_email_ship_status got_st = want_st;
            int want = reference_cues(text, earliest, &want_st);
            int got = dr__email_text_cues(text, n, earliest, &got_st);
            if (want != got || want_st != got_st) {
                fail_msg("round %d earliest %d: score %d vs %d, status %d vs %d", round, earliest,
                         got, want, got_st, want_st);
            }
        }
    }
}

static void edges(void **state)
{
    enum dr_email_ship_status st = DR_EMAIL_SHIP_NONE;

    (void)state;
    /* the scan looks for cue words at word starts, by their first two bytes */
    for (size_t i = 0; i < dr__email_word_cue_count; i++) {
        assert_true(strlen(dr__email_word_cues[i].word) >= 2);
        assert_true(is_word_char((unsigned char)dr__email_word_cues[i].word[0]));
    }
    assert_int_equal(dr__email_text_cues("", 0, 0, &st), 0);
    assert_int_equal(st, DR_EMAIL_SHIP_NONE);
    /* inside a word: nothing; at the very start and the very end: found */
    assert_int_equal(dr__email_text_cues("undelivered", 11, 0, &st), 0);
    assert_int_equal(dr__email_text_cues("delivered", 9, 0, &st), 35);
    assert_int_equal(st, DR_EMAIL_SHIP_DELIVERED);
    st = DR_EMAIL_SHIP_NONE;
    assert_int_equal(dr__email_text_cues("x delivere", 10, 0, &st), 0);
    /* a word counts once however often it occurs */
    assert_int_equal(dr__email_text_cues("parcel parcel", 13, 0, &st), 20);
    /* the length bounds the scan, not the NUL */
    assert_int_equal(dr__email_text_cues("parcel", 5, 0, &st), 0);
    /* earliest: the status named first wins, else the most advanced */
    st = DR_EMAIL_SHIP_NONE;
    dr__email_text_cues("shipped, then delivered", 23, 1, &st);
    assert_int_equal(st, DR_EMAIL_SHIP_SHIPPED);
    st = DR_EMAIL_SHIP_NONE;
    dr__email_text_cues("shipped, then delivered", 23, 0, &st);
    assert_int_equal(st, DR_EMAIL_SHIP_DELIVERED);
}

static struct dr_email_shipment_cues cues_of(const char *subject, const char *body)
{
    cJSON *p = cJSON_CreateObject();
    struct dr_email *em = NULL;
    struct dr_email_shipment_cues c;

    if (subject) {
        cJSON_AddStringToObject(p, "subject", subject);
    }
    cJSON_AddStringToObject(p, "from", "Shop <news@shop.example>");
    cJSON_AddStringToObject(p, "body_text", body);
    assert_int_equal(dr_email_from_fields(p, NULL, &em), DR_OK);
    c = dr_email_shipment_cues(em);
    dr_email_destroy(em);
    cJSON_Delete(p);
    return c;
}

static struct dr_email_shipment_cues cues_from(const char *from, const char *body)
{
    cJSON *p = cJSON_CreateObject();
    struct dr_email *em = NULL;
    struct dr_email_shipment_cues c;

    cJSON_AddStringToObject(p, "subject", "Your order is on its way");
    cJSON_AddStringToObject(p, "from", from);
    cJSON_AddStringToObject(p, "body_text", body);
    assert_int_equal(dr_email_from_fields(p, NULL, &em), DR_OK);
    c = dr_email_shipment_cues(em);
    dr_email_destroy(em);
    cJSON_Delete(p);
    return c;
}

/* The cues' carrier is one of the shipment module's codes or NULL: shops and tracking platforms
 * score as senders but are no carrier. */
static void sender_carriers_are_shipment_codes(void **state)
{
    static const char *const senders[][2] = {
        {"store+12345@shopifyemail.com", NULL},
        {"updates@aftership.com", NULL},
        {"no-reply@narvar.com", NULL},
        {"ebay@ebay.com", NULL},
        {"noreply@notifications.auspost.com", "auspost"},
        {"noreply@colissimo.com", "la_poste"},
        {"noreply@laposte.fr", "la_poste"},
        {"mcinfo@ups.com", "ups"},
        {"shipment-tracking@amazon.com", "amazon"},
    };
    struct dr_email_shipment_cues c;

    (void)state;
    for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
        c = cues_from(senders[i][0], "Hello");
        assert_true(c.sender_score > 0);
        if (!senders[i][1]) {
            if (c.carrier) {
                fail_msg("%s: carrier %s", senders[i][0], c.carrier);
            }
        } else {
            assert_non_null(c.carrier);
            assert_string_equal(c.carrier, senders[i][1]);
            assert_string_equal(dr_shipment_carrier_code(c.carrier), c.carrier);
        }
    }
    /* a shop's mail naming the carrier in its text */
    c = cues_from("store+12345@shopifyemail.com", "Sent with DHL today");
    assert_string_equal(c.carrier, "dhl");
}

static void body_phrases_and_carriers(void **state)
{
    struct dr_email_shipment_cues c;
    char *big;

    (void)state;
    /* a phrase counts anywhere, also glued to a word (where "tracking" is no cue word) */
    c = cues_of(NULL, "Hello\nYOURTRACKING NUMBER is below");
    assert_int_equal(c.body_score, 15);
    c = cues_of(NULL, "Hello\nyour tracking number is below");
    assert_int_equal(c.body_score, 25);
    c = cues_of(NULL, "Hello, nothing to see");
    assert_int_equal(c.body_score, 0);
    assert_null(c.carrier);
    /* carrier names are whole words; the first in the table wins */
    c = cues_of(NULL, "groups of friends");
    assert_null(c.carrier);
    c = cues_of(NULL, "sent with DHL, not UPS.");
    assert_string_equal(c.carrier, "ups");
    assert_int_equal(c.body_score, 5);
    c = cues_of(NULL, "brought by royal mail");
    assert_string_equal(c.carrier, "royal_mail");
    c = cues_of(NULL, "royal mailbox");
    assert_null(c.carrier);
    /* upper case and non-ASCII text fold before the scan */
    c = cues_of("Ihre SENDUNG ist UNTERWEGS", "Paket für Sie: ZUGESTELLT");
    assert_int_equal(c.subject_score, 50);
    assert_int_equal(c.status, DR_EMAIL_SHIP_IN_TRANSIT);
    assert_int_equal(c.body_score, 10);
    c = cues_of("Votre colis a été LIVRÉ", "x");
    assert_int_equal(c.status, DR_EMAIL_SHIP_DELIVERED);
    assert_int_equal(c.subject_score, 60);
    /* only the first 8 KB of the text are read */
    big = malloc(20000);
    memset(big, 'a', 20000);
    memcpy(big + 100, " evri ", 6);
    memcpy(big + 8190, " dpd ", 5);
    big[19999] = '\0';
    c = cues_of(NULL, big);
    assert_string_equal(c.carrier, "evri");
    memset(big + 100, 'a', 6);
    c = cues_of(NULL, big);
    assert_null(c.carrier);
    free(big);
}

/* ---- the 16-byte scan against the byte loop ------------------------------------------------ */

static size_t scans_compared;

static void scans_same(const char *s, size_t n)
{
    struct dr__email_cue_hits want, got;

    for (int body = 0; body < 2; body++) {
        dr__email_scan_cues(s, n, body, 1, &want);
        dr__email_scan_cues(s, n, body, 0, &got);
        assert_int_equal(got.phrase, want.phrase);
        assert_int_equal(got.names, want.names);
        assert_memory_equal(got.word, want.word, sizeof(want.word));
        scans_compared++;
    }
}

/* Every corpus file lower-cased, whole and cut at every length up to 70 and then sparsely, from
 * several offsets (blocks fall differently). */
static void scan_file(const char *path, char *data, size_t len)
{
    (void)path;
    for (size_t i = 0; i < len; i++) {
        data[i] = (char)(data[i] >= 'A' && data[i] <= 'Z' ? data[i] + 32 : data[i]);
    }
    for (size_t off = 0; off < 4 && off < len; off++) {
        scans_same(data + off, len - off);
        for (size_t n = 0; n + off < len && n < 8192; n += n < 70 ? 1 : 331) {
            scans_same(data + off, n);
        }
    }
}

static void sse2_scan_same_as_bytes(void **state)
{
    static const char *const pieces[] = {"tracking number",
                                         "track your package",
                                         "track & trace",
                                         "sendungsnummer",
                                         "numéro de suivi",
                                         "número de seguimiento",
                                         "śledzenie przesyłki",
                                         "out for delivery",
                                         "ups",
                                         "dhl",
                                         "royal mail",
                                         "evri",
                                         "hermes",
                                         "tr",
                                         "nu",
                                         "ou",
                                         "se",
                                         "\xc5\x9b",
                                         "x",
                                         " ",
                                         "\n",
                                         "-",
                                         "9",
                                         "é",
                                         "\x80",
                                         "\xff",
                                         "un"};
    const char *root = getenv("DR_TEST_DATA") ? getenv("DR_TEST_DATA") : "tests/data";
    static const char *const dirs[] = {"email", "shipment", "replies"};
    unsigned seed = 777;
    char text[600], dir[1024];

    (void)state;
    for (int round = 0; round < 20000; round++) {
        size_t n = 0, count = 1 + rnd(&seed) % 30;

        for (size_t k = 0; k < count; k++) {
            const char *w = rnd(&seed) % 3 == 0
                                ? dr__email_word_cues[rnd(&seed) % dr__email_word_cue_count].word
                                : pieces[rnd(&seed) % (sizeof(pieces) / sizeof(pieces[0]))];
            size_t wl = strlen(w), cut = rnd(&seed) % 5 == 0 ? rnd(&seed) % (wl + 1) : wl;
            if (n + cut + 1 >= sizeof(text)) {
                break;
            }
            memcpy(text + n, w, cut);
            n += cut;
        }
        text[n] = '\0';
        scans_same(text, n);
    }
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(dir, sizeof(dir), "%s/%s", root, dirs[i]);
        assert_true(corpus_each(dir, 1, scan_file) > 0);
    }
    assert_true(scans_compared > 100000);
}

/* The ASCII run of dr__email_fold_into()'s callers, as the byte loop it replaced lowered it. */
static size_t lower_before(const char *s, size_t max, char *out)
{
    size_t len;

    for (len = 0; s[len] && len < max; len++) {
        unsigned char c = (unsigned char)s[len];
        if (c >= 0x80) {
            break;
        }
        out[len] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    return len;
}

/* Every byte value at every place of texts up to 70 bytes (ASCII letters of both cases and
 * punctuation around it), every limit and every readable length: the same run, the same bytes. */
static void ascii_run_lowered_as_before(void **state)
{
    static const char fill[] = "AZaz@[`{09 Mixed CASE text, .-_";
    char text[80], want[80], got[80];
    size_t compared = 0;

    (void)state;
    for (int c = 0; c < 256; c++) {
        for (size_t at = 0; at < 70; at += (c % 7 == 0 ? 1 : 3)) {
            for (size_t len = at + 1; len <= 70; len += 13) {
                for (size_t k = 0; k < len; k++) {
                    text[k] = fill[(k * 7 + (size_t)c) % (sizeof(fill) - 1)];
                }
                text[at] = (char)c;
                text[len] = '\0';
                for (size_t max = 0; max <= len + 1; max += 1 + max / 8) {
                    size_t w = lower_before(text, max, want);

                    for (size_t avail = 0; avail <= len; avail += 1 + avail / 4) {
                        size_t g;

                        memset(got, 0x55, sizeof(got));
                        g = dr__email_lower_ascii(text, avail, max, got);
                        assert_int_equal(g, w);
                        assert_memory_equal(got, want, w);
                        compared++;
                    }
                }
            }
        }
    }
    print_message("%zu runs compared\n", compared);
    assert_true(compared > 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_as_strstr),
        cmocka_unit_test(edges),
        cmocka_unit_test(body_phrases_and_carriers),
        cmocka_unit_test(sender_carriers_are_shipment_codes),
        cmocka_unit_test(sse2_scan_same_as_bytes),
        cmocka_unit_test(ascii_run_lowered_as_before),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
