/*
 * The word-start prefilter must find exactly what a plain unanchored PCRE2 search finds, and
 * exactly what the prefilter before the pair table and the one-pass scan (wordset_ref.h) found:
 * the same candidate positions for every pattern and the same matches, on the corpus texts and
 * on random and mutated ones.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <dirent.h>
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
#include "dr/shipment.h"
#include "dr/util.h"
#include "mime_text.h"
#include "processors/shipment/tracking_int.h"
#include "wordset_ref.h"

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

/* ---- the real pattern sets, old against new ----------------------------------------------- */

struct set_pair {
    struct dr__wordset now;
    struct ref_wordset old;
    pcre2_code *plain[DR__WORDSET_MAX];
    size_t n;
};

static struct set_pair sets[2]; /* carrier names etc.; status rules */
static pcre2_match_data *md_a, *md_b, *md_c;
static size_t texts_compared, matches_compared, positions_compared, old_positions;

static void compile_pair(struct set_pair *sp, int id, const char **regexes, size_t n,
                         uint32_t options)
{
    int errcode;
    PCRE2_SIZE erroff;

    sp->n = n;
    assert_int_equal(dr__wordset_compile(&sp->now, id, regexes, n, options), DR_OK);
    assert_int_equal(ref_wordset_compile(&sp->old, id, regexes, n, options), DR_OK);
    for (size_t j = 0; j < n; j++) {
        sp->plain[j] = pcre2_compile((PCRE2_SPTR)regexes[j], PCRE2_ZERO_TERMINATED, options,
                                     &errcode, &erroff, NULL);
        assert_non_null(sp->plain[j]);
        /* as the code before the prefilter ran them */
        assert_int_equal(pcre2_jit_compile(sp->plain[j], PCRE2_JIT_COMPLETE), 0);
    }
}

static int setup_sets(void **state)
{
    const char *regexes[DR__WORDSET_MAX];
    uint32_t options;
    size_t n;

    (void)state;
    n = dr__extract_text_regexes(regexes, DR__WORDSET_MAX, &options);
    assert_true(n > 40 && n <= DR__WORDSET_MAX);
    compile_pair(&sets[0], DR__WORDSET_TEXT, regexes, n, options);
    n = dr__status_regexes(regexes, DR__WORDSET_MAX, &options);
    assert_true(n > 5 && n <= DR__WORDSET_MAX);
    compile_pair(&sets[1], DR__WORDSET_STATUS, regexes, n, options);
    md_a = pcre2_match_data_create(40, NULL);
    md_b = pcre2_match_data_create(40, NULL);
    md_c = pcre2_match_data_create(40, NULL);
    return 0;
}

static int teardown_sets(void **state)
{
    (void)state;
    for (size_t s = 0; s < 2; s++) {
        dr__wordset_free(&sets[s].now);
        ref_wordset_free(&sets[s].old);
        for (size_t j = 0; j < sets[s].n; j++) {
            pcre2_code_free(sets[s].plain[j]);
        }
    }
    pcre2_match_data_free(md_a);
    pcre2_match_data_free(md_b);
    pcre2_match_data_free(md_c);
    dr_shipment_cleanup();
    return 0;
}

/* Every match of pattern j in t[0..to) from from on: new, old and plain PCRE2 agree. */
static void compare_matches(struct set_pair *sp, size_t j, const char *t,
                            const struct dr__wordstarts *now, const struct ref_wordstarts *old,
                            size_t from, size_t to)
{
    size_t c_now = 0, c_old = 0;

    for (;;) {
        int a = dr__wordset_find(&sp->now, j, t, now, &c_now, from, to, md_a);
        int b = ref_wordset_find(&sp->old, j, t, old, &c_old, from, to, md_b);
        int c = pcre2_match(sp->plain[j], (PCRE2_SPTR)t, to, from, 0, md_c, NULL) >= 0;
        PCRE2_SIZE *va, *vb, *vc;

        if (a != b || a != c) {
            PCRE2_SIZE *vx = pcre2_get_ovector_pointer(md_c);
            print_error(
                "pattern %zu from %zu to %zu len %zu: new %d old %d plain %d at %zu-%zu \"%.*s\"\n",
                j, from, to, now->len, a, b, c, c ? (size_t)vx[0] : 0, c ? (size_t)vx[1] : 0,
                c ? (int)(vx[1] - vx[0]) : 0, c ? t + vx[0] : "");
        }
        assert_int_equal(a, b);
        assert_int_equal(a, c);
        if (!a) {
            return;
        }
        va = pcre2_get_ovector_pointer(md_a);
        vb = pcre2_get_ovector_pointer(md_b);
        vc = pcre2_get_ovector_pointer(md_c);
        assert_int_equal(va[0], vb[0]);
        assert_int_equal(va[1], vb[1]);
        assert_int_equal(va[0], vc[0]);
        assert_int_equal(va[1], vc[1]);
        matches_compared++;
        from = va[1] > va[0] ? va[1] : va[0] + 1;
        while (from < to && ((unsigned char)t[from] & 0xC0) == 0x80) {
            from++;
        }
        if (from >= to) {
            return;
        }
    }
}

/* Scans t with both sets in one pass and each set alone, and compares with the old scan. */
static void compare_text(const char *t, size_t len)
{
    const struct dr__wordset *both[] = {&sets[0].now, &sets[1].now};
    struct dr__wordstarts now[2] = {{0}}, alone = {0};
    size_t cut = len ? next_rand(len + 1) : 0;

    assert_int_equal(dr__wordset_scan_sets(both, 2, t, len, md_a, now), DR_OK);
    for (size_t s = 0; s < 2; s++) {
        struct set_pair *sp = &sets[s];
        struct ref_wordstarts old = {0};

        assert_int_equal(ref_wordset_scan(&sp->old, t, len, md_b, &old), DR_OK);
        assert_int_equal(dr__wordset_scan(&sp->now, t, len, md_a, &alone), DR_OK);
        for (size_t j = 0; j < sp->n; j++) {
            size_t i = 0;

            /* one pass over both sets lists what a scan of the set alone lists */
            assert_int_equal(alone.off[j + 1] - alone.off[j], now[s].off[j + 1] - now[s].off[j]);
            /* every candidate the new prefilter lists, the old one listed too; it may list fewer
             * (its partial matching runs JIT code, which rejects some bytes the interpreter let
             * through, such as a character cut by the end of the text): the matches below must
             * be the same all the same */
            for (size_t k = now[s].off[j]; k < now[s].off[j + 1]; k++) {
                assert_int_equal(alone.pos[k], now[s].pos[k]);
                while (i < old.n &&
                       (old.v[i].pos < now[s].pos[k] || !(old.v[i].mask & (UINT64_C(1) << j)))) {
                    i++;
                }
                if (i == old.n || old.v[i].pos != now[s].pos[k]) {
                    print_error("set %zu pattern %zu: new candidate %zu unknown to the old scan\n",
                                s, j, now[s].pos[k]);
                }
                assert_true(i < old.n && old.v[i].pos == now[s].pos[k]);
                positions_compared++;
            }
            for (size_t m = 0; m < old.n; m++) {
                old_positions += (old.v[m].mask >> j) & 1;
            }
            compare_matches(sp, j, t, &now[s], &old, 0, len);
            /* a shorter subject than the scanned text, from a point inside it */
            compare_matches(sp, j, t, &now[s], &old, cut / 2, cut);
        }
        ref_wordstarts_cleanup(&old);
    }
    dr__wordstarts_cleanup(&now[0]);
    dr__wordstarts_cleanup(&now[1]);
    dr__wordstarts_cleanup(&alone);
    texts_compared++;
}

static const char *const pieces[] = {
    "UPS",
    "ups",
    "FedEx",
    "fedex",
    "DHL",
    "Royal Mail",
    "royalmail",
    "Canada Post",
    "u.s. postal service",
    "Spee-Dee",
    "TNT",
    "An Post",
    "InPost",
    "paczkomat",
    "order",
    "Order #",
    "Bestellung",
    "zamówienie",
    "ORDER NUMBER:",
    "A12-345",
    "123-1234567-1234567",
    "parcel from",
    "package from",
    "ACME Inc.",
    "has been",
    "delivered",
    "DELIVERED",
    "Delivered:",
    "out for delivery",
    "Out For Delivery",
    "will be delivered today",
    "in transit",
    "on its way",
    "returned to sender",
    "delivery exception",
    "label created",
    "zugestellt",
    "wurde zugestellt",
    "in consegna",
    "doręczona",
    "dostarczono:",
    "entregue",
    "livrée",
    "est livré",
    "tracking number",
    "Tracking #",
    "Sendungsnummer",
    "track & trace",
    "AWB",
    "shipment",
    "número de seguimiento",
    "n° de suivi",
    "is",
    "is ready",
    "delivery of your",
    "order is",
    "with your",
    "on the way",
    "arrived at the",
    "no.",
    "1Z879E930346834440",
    "RR123456785GB",
    "4294142591",
    "é",
    "ę",
    "—",
    "\xc2\xa0",
    "日本",
    "\xff",
    "\xe2\x82",
    "_",
    "x",
    "\n",
    " ",
    "  ",
    ",",
    ".",
    ":",
    "&",
    "/",
    "=",
    "?tracknum=",
    "-",
};

static size_t make_text(char *buf, size_t cap)
{
    size_t len = 0, words = 1 + next_rand(60);

    for (size_t w = 0; w < words; w++) {
        const char *p = pieces[next_rand(DR_ARRAY_LEN(pieces))];
        size_t pl = strlen(p);
        int glue = next_rand(3) == 0; /* no separator: adjacent words */

        if (len + pl + 2 > cap) {
            break;
        }
        memcpy(buf + len, p, pl);
        len += pl;
        if (!glue) {
            buf[len++] = next_rand(5) ? ' ' : '\n';
        }
    }
    if (len && next_rand(3) == 0) {
        len--; /* may end inside a character or right after a word */
    }
    return len;
}

static void old_and_new_agree_on_random_texts(void **state)
{
    char buf[4096];

    (void)state;
    for (int round = 0; round < 3000; round++) {
        size_t len = make_text(buf, sizeof(buf));
        compare_text(buf, len);
    }
    print_message("random: %zu texts, %zu candidates (old: %zu), %zu matches\n", texts_compared,
                  positions_compared, old_positions, matches_compared);
    assert_true(positions_compared > 10000);
    assert_true(matches_compared > 3000);
}

static void old_and_new_agree_at_the_edges(void **state)
{
    static const char *const texts[] = {
        "delivered",
        "Delivered",
        "DELIVERED",
        "UPS",
        "ups",
        "UPSUPS",
        "UPS UPS",
        "UPS,UPS",
        "delivered delivered delivered",
        "out for delivery",
        "out for deliver",
        "out for",
        "o",
        "",
        " ",
        "é",
        "éUPS",
        "UPSé",
        "ÉDELIVERED delivered",
        "doręczona",
        "doręczon",
        "dor\xc4",
        "zamówienie 12345",
        "Order #A12-345",
        "tracking number: 1Z879E930346834440",
        "\xffUPS\xff",
        "_UPS",
        "UPS_",
        "x\ndelivered\n",
        "Subject delivered\nbody out for delivery",
        "ups\xf0\x9f",         /* a 4-byte character cut by the end after three bytes */
        "dhl\xf0\x9f\x98",     /* ... and one byte later */
        "out\xf0\x9f\x98\x80", /* a whole one right after a word */
    };

    (void)state;
    for (size_t i = 0; i < DR_ARRAY_LEN(texts); i++) {
        compare_text(texts[i], strlen(texts[i]));
    }
    /* words on both sides of the scan's 64-byte blocks, after spaces, letters and UTF-8 */
    for (size_t pad = 56; pad <= 72; pad++) {
        static const char *const fills[] = {" ", "a", "\xc3\xa9", "\xa9"};
        for (size_t f = 0; f < DR_ARRAY_LEN(fills); f++) {
            char text[256];
            size_t n = 0;
            while (n < pad) {
                text[n] = fills[f][n % strlen(fills[f])];
                n++;
            }
            n += (size_t)snprintf(text + n, sizeof(text) - n, "UPS delivered\xc3\xa9UPS");
            compare_text(text, n);
            compare_text(text, pad + 2); /* a cut word at the block edge */
        }
    }
    assert_true(matches_compared > 20);
}

/* Many more distinct word starts than the caches hold, on words the first bytes leave possible
 * (so they reach the caches): their rows fill, evict the least recently used and meet the keys
 * again after that. Each scan still lists what the old one lists and finds the same matches. */
static void old_and_new_agree_when_the_caches_overflow(void **state)
{
    static const char *const stems[] = {"deli", "ship", "orde", "trac", "out ", "zuge", "UPS ",
                                        "Fed",  "parc", "pack", "numb", "is r", "dhl ", "on i"};
    static const char *const tails[] = {"vered",        "ped",    "r number", "king",
                                        "for delivery", "stellt", "",         "Ex",
                                        "el from",      "age",    "er",       "eady"};
    char buf[8192];
    size_t before = texts_compared;

    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t saved = rng;

        for (int round = 0; round < 300; round++) {
            size_t len = 0;

            for (int w = 0; w < 120 && len + 40 < sizeof(buf); w++) {
                const char *stem = stems[next_rand(DR_ARRAY_LEN(stems))];
                const char *tail = tails[next_rand(DR_ARRAY_LEN(tails))];

                /* the sixth and later bytes vary: distinct short and long keys */
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%c%c%s%c", stem,
                                        (char)('a' + next_rand(26)), (char)('a' + next_rand(26)),
                                        next_rand(2) ? tail : "", next_rand(4) ? ' ' : '\n');
            }
            compare_text(buf, len);
        }
        rng = saved; /* the same texts again, the caches now holding others */
    }
    assert_int_equal(texts_compared - before, 600);
}

/* The patterns that may begin with " " + s[0..n) by an anchored partial match, as the scan's
 * tables judge a word start. */
static uint64_t begins(const struct dr__wordset *ws, const char *s, size_t n)
{
    char subj[16];
    uint64_t mask = 0;

    subj[0] = ' ';
    memcpy(subj + 1, s, n);
    for (size_t j = 0; j < ws->n; j++) {
        int rc = pcre2_match(ws->anchored[j], (PCRE2_SPTR)subj, 1 + n, 1, PCRE2_PARTIAL_HARD, md_c,
                             NULL);
        mask |= (uint64_t)(rc >= 0 || rc == PCRE2_ERROR_PARTIAL) << j;
    }
    return mask;
}

/* A word start's longer keys are judged among the patterns its first two bytes leave: every
 * pattern that may begin with three or four ASCII bytes (any third, a letter or digit fourth)
 * is among those of its first two, which are those of the first byte that may begin so. */
static void pair_masks_hold_what_longer_keys_may_begin(void **state)
{
    size_t keys = 0, rows = 0;

    (void)state;
    for (size_t st = 0; st < 2; st++) {
        const struct dr__wordset *ws = &sets[st].now;

        for (unsigned b = '0'; b <= 'z'; b++) {
            for (unsigned b1 = 0; b1 < 0x80; b1++) {
                unsigned row = ws->pair[b - '0'][b1];
                char k[4] = {(char)b, (char)b1, 0, 0};

                if (!row) {
                    assert_int_equal(begins(ws, k, 2) & ws->first[b], 0);
                    continue;
                }
                rows++;
                assert_int_equal(ws->pair_mask[row], begins(ws, k, 2) & ws->first[b]);
                for (unsigned b2 = 0; b2 < 0x80; b2++) {
                    k[2] = (char)b2;
                    assert_int_equal(begins(ws, k, 3) & ~ws->pair_mask[row], 0);
                    keys++;
                    if (!(ws->triple[row][b2 / 8] & (1u << (b2 % 8)))) {
                        continue;
                    }
                    for (const char *c = "abcdefghijklmnopqrstuvwxyz0123456789"; *c; c++) {
                        k[3] = *c;
                        assert_int_equal(begins(ws, k, 4) & ~ws->pair_mask[row], 0);
                        keys++;
                    }
                }
            }
        }
    }
    print_message("%zu pairs, %zu longer keys\n", rows, keys);
    assert_true(rows > 100);
}

static void mutate(char *buf, size_t *len, size_t cap)
{
    size_t edits = 1 + next_rand(12);

    for (size_t e = 0; e < edits; e++) {
        size_t at = next_rand(*len + 1), kind = next_rand(4);

        if (kind == 0) {
            const char *p = pieces[next_rand(DR_ARRAY_LEN(pieces))];
            size_t pl = strlen(p);
            if (*len + pl < cap) {
                memmove(buf + at + pl, buf + at, *len - at);
                memcpy(buf + at, p, pl);
                *len += pl;
            }
        } else if (kind == 1) {
            for (size_t i = at; i < at + 80 && i < *len; i++) {
                char c = buf[i];
                buf[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
        } else if (kind == 2 && at < *len) {
            buf[at] = (char)next_rand(256);
        } else {
            *len = at;
        }
    }
}

static void corpus_dir(const char *dir, size_t *files)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char path[1024];
        struct mime_text m;

        if (e->d_name[0] == '.' || strstr(e->d_name, ".json") || strstr(e->d_name, ".md")) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (mime_text_load(path, &m) != 0) {
            continue;
        }
        compare_text(m.body, m.body_len);
        if (m.body_len < (256u << 10)) {
            char *buf = malloc(m.body_len + 4096);
            assert_non_null(buf);
            for (int v = 0; v < 3; v++) {
                size_t len = m.body_len;
                memcpy(buf, m.body, len);
                mutate(buf, &len, m.body_len + 4096);
                compare_text(buf, len);
            }
            free(buf);
        }
        mime_text_free(&m);
        (*files)++;
    }
    closedir(d);
}

static void old_and_new_agree_on_the_corpus(void **state)
{
    static const char *const dirs[] = {
        "shipment/mail_and_packages", "email/carriers",           "email/replies", "email/gmime",
        "email/stalwart/rfc",         "email/stalwart/thirdparty"};
    const char *data = getenv("DR_TEST_DATA");
    size_t files = 0, before = matches_compared;
    char path[1024];

    (void)state;
    assert_non_null(data);
    for (size_t i = 0; i < DR_ARRAY_LEN(dirs); i++) {
        snprintf(path, sizeof(path), "%s/%s", data, dirs[i]);
        corpus_dir(path, &files);
    }
    print_message("corpus: %zu emails, %zu matches\n", files, matches_compared - before);
    assert_true(files > 50);
    assert_true(matches_compared - before > 500);
}

/* The status of a subject and a body read from one scan of both equals that of each alone. */
static void status_from_one_scan_equals_status_of_each_part(void **state)
{
    char buf[4096];
    pcre2_match_data *md = pcre2_match_data_create(40, NULL);
    size_t found = 0;

    (void)state;
    assert_int_equal(dr_shipment_init(), DR_OK);
    for (int round = 0; round < 2000; round++) {
        size_t len = make_text(buf, sizeof(buf) - 1), nl;
        struct dr__wordstarts at = {0};
        const struct dr__wordset *rs = dr__status_wordset();
        int k_old, k_new;
        enum dr_shipment_status s_old, s_new;

        nl = next_rand(len + 1);
        memmove(buf + nl + 1, buf + nl, len - nl);
        buf[nl] = '\n'; /* subject, line break, body */
        len++;
        assert_int_equal(dr__wordset_scan_sets(&rs, 1, buf, len, md, &at), DR_OK);
        s_old = dr__status_scan(buf, nl + 1, md, &k_old);
        s_new = dr__status_scan_at(buf, 0, nl + 1, &at, md, &k_new);
        assert_int_equal(s_old, s_new);
        assert_int_equal(k_old, k_new);
        found += s_old != DR_SHIP_UNKNOWN;
        s_old = dr__status_scan(buf + nl + 1, len - nl - 1, md, &k_old);
        s_new = dr__status_scan_at(buf, nl + 1, len, &at, md, &k_new);
        assert_int_equal(s_old, s_new);
        assert_int_equal(k_old, k_new);
        found += s_old != DR_SHIP_UNKNOWN;
        dr__wordstarts_cleanup(&at);
    }
    assert_true(found > 500);
    pcre2_match_data_free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefilter_finds_what_pcre2_finds),
        cmocka_unit_test(patterns_that_match_inside_words_are_refused),
        cmocka_unit_test(pair_masks_hold_what_longer_keys_may_begin),
        cmocka_unit_test(old_and_new_agree_at_the_edges),
        cmocka_unit_test(old_and_new_agree_on_random_texts),
        cmocka_unit_test(old_and_new_agree_when_the_caches_overflow),
        cmocka_unit_test(old_and_new_agree_on_the_corpus),
        cmocka_unit_test(status_from_one_scan_equals_status_of_each_part),
    };
    int rc = cmocka_run_group_tests(tests, setup_sets, teardown_sets);

    mime_text_shutdown();
    return rc;
}
