/*
 * dr__validate_compact() with the first-characters and length prefilter gives exactly what
 * trying every format gave (tracking_ref.h): same formats, same order, same fields. Inputs: the
 * test numbers of tracking_number_data and mutations of them (a character changed, inserted,
 * dropped or lower-cased, every prefix and suffix), the candidate windows the free-text scan
 * builds from every file of the corpora, and random strings over digits, capitals, '-' and other
 * bytes. Also checks that the prefilter rules out most formats for the corpus windows.
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

#include <glib.h>

#include "unit/processors/corpus.h"
#include "dr/shipment.h"
#include "tracking_ref.h"

#define MAX_FILES 1024
#define MAX_RAW   (256u * 1024)

static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-";
static pcre2_match_data *md_ref, *md_new;
static size_t cases, mismatches, windows, tried;
static uint64_t rng = 0x2545F4914F6CDD1Dull;

static size_t next_rand(size_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (size_t)(rng % n) : 0;
}

static void compare(const char *s, size_t n)
{
    struct dr_tracking_match want[8], got[8];
    size_t iw[8], ig[8], nw, ng;
    char *copy = malloc(n ? n : 1); /* exact size */

    assert_non_null(copy);
    memcpy(copy, s, n);
    nw = ref_validate_compact(copy, n, md_ref, want, iw, 8);
    ng = dr__validate_compact(copy, n, md_new, got, ig, 8);
    cases++;
    int same = nw == ng;
    for (size_t k = 0; same && k < nw; k++) {
        same = iw[k] == ig[k] && strcmp(want[k].number, got[k].number) == 0 &&
               want[k].carrier == got[k].carrier && want[k].format == got[k].format &&
               want[k].format_name == got[k].format_name && want[k].check_pos == got[k].check_pos &&
               strcmp(want[k].country, got[k].country) == 0 &&
               want[k].operator_name == got[k].operator_name;
    }
    if (!same && mismatches++ < 10) {
        print_message("mismatch \"%.*s\": %zu formats, now %zu\n", (int)n, s, nw, ng);
    }
    free(copy);
}

/* The number and its mutations. */
static void mutations(const char *s, size_t n)
{
    char buf[DR_TRACKING_MAX + 2];

    if (n == 0 || n > DR_TRACKING_MAX) {
        return;
    }
    compare(s, n);
    for (size_t k = 1; k < n; k++) {
        compare(s, k);         /* prefix */
        compare(s + k, n - k); /* suffix */
    }
    for (int v = 0; v < 24; v++) {
        size_t at = next_rand(n), m = n;
        memcpy(buf, s, n);
        switch (next_rand(4)) {
        case 0:
            buf[at] = alphabet[next_rand(sizeof(alphabet) - 1)];
            break;
        case 1:
            if (m == DR_TRACKING_MAX) {
                continue;
            }
            memmove(buf + at + 1, buf + at, m - at);
            buf[at] = alphabet[next_rand(sizeof(alphabet) - 1)];
            m++;
            break;
        case 2:
            memmove(buf + at, buf + at + 1, m - at - 1);
            m--;
            break;
        default:
            buf[at] = (char)(buf[at] >= 'A' && buf[at] <= 'Z' ? buf[at] + 32 : 0xC3);
            break;
        }
        compare(buf, m);
    }
}

static int cand_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

/* Windows as the free-text scan builds them: from each token start, tokens of capitals and
 * digits joined across up to three spaces or one hyphen, tried at every token end; the first
 * starts of a text also at every length. */
static void text_windows(const char *t, size_t len)
{
    size_t starts = 0;

    for (size_t p = 0; p < len; p++) {
        char compact[DR_TRACKING_MAX + 1];
        size_t n = 0, q = p;

        if (!cand_char((unsigned char)t[p]) || (p > 0 && cand_char((unsigned char)t[p - 1]))) {
            continue;
        }
        starts++;
        while (q < len && n < DR_TRACKING_MAX) {
            while (q < len && n < DR_TRACKING_MAX && cand_char((unsigned char)t[q])) {
                compact[n++] = t[q++];
                if (starts < 200) {
                    compare(compact, n);
                }
            }
            windows++;
            tried += (size_t)__builtin_popcountll(dr__format_candidates(compact, n));
            compare(compact, n);
            if (q < len && t[q] == '-' && n < DR_TRACKING_MAX) {
                compact[n++] = '-';
                q++;
            } else {
                size_t gap = 0;
                while (q < len && t[q] == ' ' && gap < 4) {
                    q++, gap++;
                }
                if (gap == 0 || gap > 3) {
                    break;
                }
            }
            if (q >= len || !cand_char((unsigned char)t[q])) {
                break;
            }
        }
    }
}

/* Every quoted string of a tracking_number_data file that could be a number, spaces removed. */
static void courier_numbers(const char *t, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char num[DR_TRACKING_MAX + 1];
        size_t n = 0, j = i + 1;
        int ok = 1;

        if (t[i] != '"') {
            continue;
        }
        for (; j < len && t[j] != '"'; j++) {
            if (t[j] == ' ') {
                continue;
            }
            if (n == DR_TRACKING_MAX || !(cand_char((unsigned char)t[j]) || t[j] == '-')) {
                ok = 0;
                continue;
            }
            num[n++] = t[j];
        }
        if (ok && n >= 4) {
            mutations(num, n);
        }
        i = j;
    }
}

static void same_results(void **state)
{
    const char *data = getenv("DR_TEST_DATA");
    static const char *const dirs[] = {"shipment", "email", "replies"};
    char *files[MAX_FILES];
    size_t nfiles = 0;
    char path[1024];

    (void)state;
    assert_non_null(data);
    assert_int_equal(dr_shipment_init(), DR_OK);
    assert_int_equal(ref_compile(), 0);
    md_ref = dr__match_data();
    md_new = dr__match_data();
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", data, dirs[i]);
        corpus_list(path, files, &nfiles, MAX_FILES, MAX_RAW, 0);
    }
    corpus_sort(files, nfiles);
    assert_true(nfiles > 100);
    for (size_t i = 0; i < nfiles; i++) {
        gchar *raw = NULL;
        gsize rawlen = 0;

        if (g_file_get_contents(files[i], &raw, &rawlen, NULL)) {
            if (strstr(files[i], "tracking_number_data")) {
                courier_numbers(raw, rawlen);
            } else {
                text_windows(raw, rawlen);
            }
            g_free(raw);
        }
        free(files[i]);
    }
    print_message("prefilter: %zu windows of the corpora, %.2f of %zu formats tried each\n",
                  windows, (double)tried / (double)windows, dr__format_count);
    assert_true(windows > 10000);
    assert_true(tried < windows * dr__format_count / 4);

    /* random strings, most of digits */
    for (int v = 0; v < 200000; v++) {
        char s[DR_TRACKING_MAX];
        size_t n = 1 + next_rand(DR_TRACKING_MAX);
        for (size_t k = 0; k < n; k++) {
            size_t r = next_rand(100);
            s[k] = r < 70   ? (char)('0' + next_rand(10))
                   : r < 97 ? alphabet[next_rand(sizeof(alphabet) - 1)]
                            : (char)(next_rand(255) + 1);
        }
        compare(s, n);
    }
    print_message("prefilter: %zu cases, %zu mismatches\n", cases, mismatches);
    assert_int_equal(mismatches, 0);
    pcre2_match_data_free(md_ref);
    pcre2_match_data_free(md_new);
    ref_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_results),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dr_shipment_cleanup();
    return rc;
}
