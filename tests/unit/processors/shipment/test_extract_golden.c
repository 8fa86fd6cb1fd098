/*
 * dr_shipment_extract() and dr_shipment_status_from_text() give, for every text of the corpora
 * (tests/data: each email decoded, and its raw source) and thousands of variants of them
 * (spliced carrier names, status phrases and numbers, case flips, cuts inside characters,
 * foreign bytes), exactly the results the implementation before the fast scanners gave. Those
 * results are kept as one hash per case in extract_golden.txt (the "edge:" cases, generated
 * texts with numbers and phrases at the scanners' block edges, as the implementation before the
 * two-level word-start filter gave them); a mismatch prints the case and
 * the JSON. DR_GOLDEN_WRITE=path writes the file instead (only to be done with an implementation
 * whose results are known to be right).
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
#include "dr/err.h"
#include "dr/shipment.h"
#include "mime_text.h"

#define MAX_FILES    1024
#define MAX_RAW      (256u * 1024)
#define VARIANTS     24
#define MAX_VARIANTS (512u * 1024)

static const char *const splices[] = {
    "UPS",
    "ups",
    "FedEx",
    "DHL Express",
    "Royal Mail",
    "royalmail",
    "Canada Post",
    "United States Postal Service",
    "U.S. Postal Service",
    "Poczta Polska",
    "PostNL",
    "Spee-Dee",
    "An Post",
    "TNT",
    "tnt",
    "Your package has been delivered",
    "Out for delivery",
    "OUT FOR DELIVERY",
    "will be delivered today",
    "in transit",
    "Delivered:",
    "delivery exception",
    "returned to sender",
    "Label created",
    "Zugestellt am",
    "in consegna",
    "doręczona",
    "wydana do doręczenia",
    "Tracking number: ",
    "Tracking #",
    "Sendungsnummer ",
    "Order #",
    "Order number: ",
    "order from Example Shop, ",
    "package from ACME Inc. has",
    "1Z879E930346834440",
    "1Z 879E 9303 4683 4440",
    "9274 8931 5085 7730 7776 69",
    "RR123456785GB",
    "61290912345678912345",
    "113-5838173-8241820",
    "4294142591",
    "https://www.ups.com/track?tracknum=1Z879E930346834440",
    "https://example.com/track?trackingNumber=AB12345678",
    "é",
    "—",
    "\xc2\xa0",
    "\xff",
    "\xe2\x82",
    "\n",
    "  ",
};

struct golden {
    char name[512];
    uint64_t hash;
};

static struct golden *want;
static size_t nwant;
static FILE *writing;
static size_t cases, mismatches;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static size_t next_rand(size_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (size_t)(rng % n) : 0;
}

static uint64_t fnv(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 0x100000001B3ull;
    }
    return h;
}

static int cmp_golden(const void *a, const void *b)
{
    return strcmp(((const struct golden *)a)->name, ((const struct golden *)b)->name);
}

static void load_golden(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[700];
    size_t cap = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char *sp = strrchr(line, ' ');
        if (!sp) {
            continue;
        }
        *sp = '\0';
        if (nwant == cap) {
            cap = cap ? cap * 2 : 1024;
            want = realloc(want, cap * sizeof(*want));
            assert_non_null(want);
        }
        snprintf(want[nwant].name, sizeof(want[nwant].name), "%s", line);
        want[nwant].hash = strtoull(sp + 1, NULL, 16);
        nwant++;
    }
    fclose(f);
    qsort(want, nwant, sizeof(*want), cmp_golden);
}

/* Runs both entry points on one text and compares (or records) the result. */
static void check(const char *name, const char *subject, const char *from, const char *text,
                  size_t len)
{
    cJSON *out = NULL;
    char *json = NULL;
    int err = dr_shipment_extract(subject, from, text, len, &out);
    enum dr_shipment_status st = dr_shipment_status_from_text(text, len);
    char head[64];
    uint64_t h;

    snprintf(head, sizeof(head), "err=%d status=%d ", err, (int)st);
    h = fnv(head, strlen(head), 0xCBF29CE484222325ull);
    if (out) {
        json = cJSON_PrintUnformatted(out);
        h = fnv(json, strlen(json), h);
    }
    cases++;
    if (writing) {
        fprintf(writing, "%s %016llx\n", name, (unsigned long long)h);
    } else {
        struct golden key, *g;
        snprintf(key.name, sizeof(key.name), "%s", name);
        g = bsearch(&key, want, nwant, sizeof(*want), cmp_golden);
        if (!g || g->hash != h) {
            print_error("%s: %s (%s)\n", name, head, json ? json : "no result");
            mismatches++;
        }
    }
    free(json);
    cJSON_Delete(out);
}

/* Variants of text: splices, case flips, cuts and foreign bytes, from the same seed each run. */
static void variants(const char *name, const char *subject, const char *from, const char *text,
                     size_t len)
{
    char *buf;
    size_t cap;

    if (len > MAX_VARIANTS) {
        return;
    }
    cap = len + 4096;
    buf = malloc(cap);
    assert_non_null(buf);
    for (int v = 0; v < VARIANTS; v++) {
        size_t n = len, edits = 1 + next_rand(16);
        char vname[600];

        memcpy(buf, text, len);
        for (size_t e = 0; e < edits; e++) {
            size_t at = next_rand(n + 1), kind = next_rand(4);

            if (kind <= 1) { /* splice, at a word edge half the time */
                const char *s = splices[next_rand(sizeof(splices) / sizeof(splices[0]))];
                size_t sl = strlen(s);
                if (kind == 1) {
                    while (at < n && buf[at] != ' ' && buf[at] != '\n') {
                        at++;
                    }
                }
                if (n + sl + 2 > cap) {
                    continue;
                }
                memmove(buf + at + sl, buf + at, n - at);
                memcpy(buf + at, s, sl);
                n += sl;
            } else if (kind == 2) { /* case flip of a span */
                size_t end = at + next_rand(200);
                for (size_t i = at; i < end && i < n; i++) {
                    char c = buf[i];
                    buf[i] = (char)(c >= 'a' && c <= 'z'   ? c - 32
                                    : c >= 'A' && c <= 'Z' ? c + 32
                                                           : c);
                }
            } else if (next_rand(2)) { /* cut, possibly inside a character */
                n = at;
            } else if (at < n) { /* foreign byte */
                buf[at] = (char)(0x80 + next_rand(128));
            }
        }
        snprintf(vname, sizeof(vname), "%s#%d", name, v);
        check(vname, v % 3 == 0 ? NULL : subject, v % 4 == 0 ? NULL : from, buf, n);
    }
    free(buf);
}

/* Labelled numbers, long runs of digits and capitals, and status phrases on both sides of the
 * 64-byte blocks the scanners read, next to multi-byte characters, and texts cut inside them. */
static void edges(void)
{
    static const char *const before[] = {
        "", " ", "x", "é", "Tracking number: ", "Tracking #", "Sendungsnummer ", "Order number: "};
    static const char *const runs[] = {
        "1Z879E930346834440",
        "AB123456",
        "AB12345",
        "12345a678901",
        "1234567890123456789012345678901234567890",
        "12345678901234567890123456789012345678901",
        "RR123456785GB",
        "9274 8931 5085 7730 7776 69",
        "4294142591",
    };
    static const char *const after[] = {"",
                                        " ",
                                        "é",
                                        "\xc3",
                                        "\xe2\x82",
                                        "x",
                                        " is out for delivery",
                                        " delivery of your",
                                        "\nDelivered"};
    static const char *const fill[] = {" ", "é", "Q"};
    char t[512], name[128];

    for (size_t off = 0; off <= 140; off += 1 + off / 40) {
        for (size_t b = 0; b < sizeof(before) / sizeof(before[0]); b++) {
            for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
                size_t k = (off + b + r) % (sizeof(after) / sizeof(after[0]));
                size_t f = (off + r) % (sizeof(fill) / sizeof(fill[0]));
                size_t len = 0, fl = strlen(fill[f]);
                int n;

                while (len + fl <= off) {
                    memcpy(t + len, fill[f], fl);
                    len += fl;
                }
                n = snprintf(t + len, sizeof(t) - len, "%s%s%s", before[b], runs[r], after[k]);
                len += (size_t)n;
                snprintf(name, sizeof(name), "edge:%zu:%zu:%zu:%zu", off, b, r, k);
                check(name, off % 2 ? "Your parcel is out for delivery" : NULL, NULL, t, len);
                /* and cut inside the run or what follows it */
                snprintf(name, sizeof(name), "edge:%zu:%zu:%zu:%zu:cut", off, b, r, k);
                check(name, off % 3 ? NULL : "Shipped", NULL, t, len - 1 - (off + b) % 6);
            }
        }
    }
}

static void corpus_results_unchanged(void **state)
{
    const char *data = getenv("DR_TEST_DATA"), *src = getenv("DR_SOURCE_DIR");
    const char *out_path = getenv("DR_GOLDEN_WRITE");
    static const char *const dirs[] = {"email", "shipment/mail_and_packages", "replies"};
    char *files[MAX_FILES];
    size_t nfiles = 0;
    char path[1024];

    (void)state;
    assert_non_null(data);
    assert_non_null(src);
    if (out_path) {
        writing = fopen(out_path, "w");
        assert_non_null(writing);
    } else {
        snprintf(path, sizeof(path), "%s/tests/unit/processors/shipment/extract_golden.txt", src);
        load_golden(path);
        assert_true(nwant > 1000);
    }
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", data, dirs[i]);
        corpus_list(path, files, &nfiles, MAX_FILES, MAX_RAW, 1);
    }
    corpus_sort(files, nfiles);
    assert_true(nfiles > 100);
    for (size_t i = 0; i < nfiles; i++) {
        const char *rel = files[i] + strlen(data) + 1;
        char name[600];
        gchar *raw = NULL;
        gsize rawlen = 0;
        struct mime_text m;

        if (g_file_get_contents(files[i], &raw, &rawlen, NULL)) {
            snprintf(name, sizeof(name), "%s:raw", rel);
            check(name, NULL, NULL, raw, rawlen);
            variants(name, "Your order has shipped", "Shop <news@shop.example.com>", raw, rawlen);
            g_free(raw);
        }
        if (mime_text_load(files[i], &m) == 0) {
            snprintf(name, sizeof(name), "%s:text", rel);
            check(name, m.subject, m.from, m.body, m.body_len);
            variants(name, m.subject, m.from, m.body, m.body_len);
            mime_text_free(&m);
        }
        free(files[i]);
    }
    edges();
    if (writing) {
        fclose(writing);
        writing = NULL;
    }
    print_message("golden: %zu cases, %zu mismatches\n", cases, mismatches);
    free(want);
    assert_true(cases > 1000);
    assert_int_equal(mismatches, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corpus_results_unchanged),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dr_shipment_cleanup();
    mime_text_shutdown();
    return rc;
}
