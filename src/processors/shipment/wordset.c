/*
 * Word-start prefilter for sets of caseless text patterns (carrier names, status phrases, order
 * and merchant labels). Each of those patterns begins every alternative with \b and a word
 * character, so a match can start only where a word starts. Running each JIT pattern over the
 * whole text tries its whole alternation at every word; instead, one pass lists the word starts
 * whose first bytes (up to KEY_MAX, whole characters) could begin a match of some pattern of
 * the set, and only there is the pattern tried, anchored.
 *
 * "Could begin a match" is decided by PCRE2 itself: a partial match (PCRE2_PARTIAL_HARD) of the
 * anchored pattern against " " + those bytes. Whatever matches in the text also matches, or
 * matches partially, a prefix of itself, so no match is lost; the answers are cached per thread
 * by the bytes. Leading bytes of non-ASCII characters are filtered by the pattern's own start
 * bitmap first, so text in other scripts does not fill the cache.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"
#include "processors/shipment/tracking_int.h"

/* Bytes of a word start that decide whether a pattern may match there. */
#define KEY_MAX 4
/* Entries of each per-thread cache (a power of two). */
#define CACHE_SIZE 2048

struct cache_entry {
    uint64_t key; /* the bytes and their count; 0 = empty */
    uint64_t mask;
};

static _Thread_local struct cache_entry caches[DR__WORDSET_COUNT][CACHE_SIZE];

/* Patterns that may start with two ASCII bytes, shared by all threads and filled as pairs are
 * met (every thread computes the same value). PAIR_KNOWN marks a filled entry. */
#define PAIR_KNOWN (UINT64_C(1) << 63)
static _Atomic uint64_t pairs[DR__WORDSET_COUNT][128][128];

static int word_byte(unsigned char b)
{
    return (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || b == '_';
}

/* Patterns of ws that may match " " + s[0..n), anchored after the space. */
static uint64_t may_begin(const struct dr__wordset *ws, uint64_t among, const char *s, size_t n,
                          pcre2_match_data *md)
{
    char subj[1 + KEY_MAX];
    uint64_t mask = 0;

    subj[0] = ' ';
    memcpy(subj + 1, s, n);
    for (size_t j = 0; j < ws->n; j++) {
        int rc;

        if (!(among & (UINT64_C(1) << j))) {
            continue;
        }
        rc = pcre2_match(ws->anchored[j], (PCRE2_SPTR)subj, 1 + n, 1, PCRE2_PARTIAL_HARD, md, NULL);
        if (rc >= 0 || rc == PCRE2_ERROR_PARTIAL) {
            mask |= UINT64_C(1) << j;
        }
    }
    return mask;
}

int dr__wordset_compile(struct dr__wordset *ws, int id, const char *const *regexes, size_t n,
                        uint32_t options)
{
    pcre2_match_data *md = NULL;
    int err = DR_OK;

    memset(ws, 0, sizeof(*ws));
    if (n > DR__WORDSET_MAX || id < 0 || id >= DR__WORDSET_COUNT) {
        return DR_EINVAL;
    }
    ws->id = id;
    ws->n = n;
    md = pcre2_match_data_create(1, NULL);
    if (!md) {
        return DR_ENOMEM;
    }
    for (size_t j = 0; j < n; j++) {
        int errcode;
        PCRE2_SIZE erroff;
        uint32_t type = 0, unit = 0;
        const uint8_t *bitmap = NULL;
        pcre2_code *probe;

        ws->anchored[j] = pcre2_compile((PCRE2_SPTR)regexes[j], PCRE2_ZERO_TERMINATED,
                                        options | PCRE2_ANCHORED, &errcode, &erroff, NULL);
        if (!ws->anchored[j]) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(errcode, msg, sizeof(msg));
            DR_ERROR("shipment", "pattern does not compile", "offset=%zu error=\"%s\"",
                     (size_t)erroff, (const char *)msg);
            err = DR_EINVAL;
            goto out;
        }
        (void)pcre2_jit_compile(ws->anchored[j], PCRE2_JIT_COMPLETE);
        /* Lead bytes of non-ASCII characters: those PCRE2's own search would try. */
        probe = pcre2_compile((PCRE2_SPTR)regexes[j], PCRE2_ZERO_TERMINATED, options, &errcode,
                              &erroff, NULL);
        if (!probe || pcre2_pattern_info(probe, PCRE2_INFO_FIRSTCODETYPE, &type) != 0) {
            type = 2;
        }
        if (type == 1 && pcre2_pattern_info(probe, PCRE2_INFO_FIRSTCODEUNIT, &unit) != 0) {
            type = 2;
        }
        if (type == 0 && pcre2_pattern_info(probe, PCRE2_INFO_FIRSTBITMAP, &bitmap) != 0) {
            bitmap = NULL;
        }
        for (unsigned b = 0x80; b < 256; b++) {
            int may = 1;
            if (type == 1) {
                may = unit >= 0x80;
            } else if (type == 0 && bitmap) {
                may = (bitmap[b / 8] >> (b % 8)) & 1;
            }
            if (may) {
                ws->first[b] |= UINT64_C(1) << j;
            }
        }
        pcre2_code_free(probe);
    }
    /* ASCII: a word character alone, partially matched. Others never start a word. */
    for (unsigned b = 0; b < 0x80; b++) {
        char ch = (char)b;
        if (word_byte((unsigned char)b)) {
            ws->first[b] = may_begin(ws, ~UINT64_C(0), &ch, 1, md);
        }
    }
    /* The contract above: no pattern may match right after a word character. */
    for (unsigned b = 1; b < 0x80 && !err; b++) {
        char subj[2] = {'a', (char)b};
        for (size_t j = 0; j < n; j++) {
            int rc =
                pcre2_match(ws->anchored[j], (PCRE2_SPTR)subj, 2, 1, PCRE2_PARTIAL_HARD, md, NULL);
            if (rc >= 0 || rc == PCRE2_ERROR_PARTIAL) {
                DR_ERROR("shipment", "pattern may start inside a word", "pattern=%zu byte=%u", j,
                         b);
                err = DR_EINVAL;
                break;
            }
        }
    }
out:
    pcre2_match_data_free(md);
    if (err) {
        dr__wordset_free(ws);
    }
    return err;
}

void dr__wordset_free(struct dr__wordset *ws)
{
    for (size_t j = 0; j < DR__WORDSET_MAX; j++) {
        pcre2_code_free(ws->anchored[j]);
        ws->anchored[j] = NULL;
    }
    ws->n = 0;
}

/* The bytes at t[p..len) that decide a word start: whole characters, at most KEY_MAX bytes. */
static size_t key_len(const char *t, size_t len, size_t p)
{
    size_t k = 0, rest = len - p;

    while (k < rest) {
        unsigned char b = (unsigned char)t[p + k];
        size_t l = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;

        if (k + l > rest) {
            return rest; /* a character cut by the end of the text: the text ends there too */
        }
        if (k + l > KEY_MAX) {
            break;
        }
        k += l;
    }
    return k;
}

/* Adds p to out when a pattern of ws may match at the word start t[p]. */
static int consider(const struct dr__wordset *ws, const char *t, size_t len, size_t p,
                    pcre2_match_data *md, struct dr__wordstarts *out)
{
    struct cache_entry *e;
    unsigned char b = (unsigned char)t[p];
    uint64_t mask, key = 0;
    size_t k;

    if (!ws->first[b]) {
        return DR_OK;
    }
    if (b < 0x80 && p + 1 < len && (unsigned char)t[p + 1] < 0x80) {
        unsigned char b1 = (unsigned char)t[p + 1];
        uint64_t pm = atomic_load_explicit(&pairs[ws->id][b][b1], memory_order_relaxed);

        if (!pm) {
            char two[2] = {(char)b, (char)b1};
            pm = may_begin(ws, ws->first[b], two, 2, md) | PAIR_KNOWN;
            atomic_store_explicit(&pairs[ws->id][b][b1], pm, memory_order_relaxed);
        }
        if (!(pm & ~PAIR_KNOWN)) {
            return DR_OK;
        }
    }
    k = key_len(t, len, p);
    if (k == 0) {
        return DR_OK;
    }
    for (size_t i = 0; i < k; i++) {
        key |= (uint64_t)(unsigned char)t[p + i] << (8 * i);
    }
    key |= (uint64_t)k << 56;
    e = &caches[ws->id][(key * UINT64_C(0x9E3779B97F4A7C15)) >> 53 & (CACHE_SIZE - 1)];
    if (e->key == key) {
        mask = e->mask;
    } else {
        mask = may_begin(ws, ws->first[b], t + p, k, md);
        e->key = key;
        e->mask = mask;
    }
    if (!mask) {
        return DR_OK;
    }
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 64;
        struct dr__wordstart *v = realloc(out->v, cap * sizeof(*v));
        if (!v) {
            return DR_ENOMEM;
        }
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n].pos = p;
    out->v[out->n].mask = mask;
    out->n++;
    return DR_OK;
}

int dr__wordset_scan(const struct dr__wordset *ws, const char *t, size_t len, pcre2_match_data *md,
                     struct dr__wordstarts *out)
{
    int err = DR_OK;

    out->n = 0;
    out->len = len;
    /* Invariant: t[p - 1], when there is one, is not an ASCII word byte. */
    for (size_t p = 0; p < len && !err; p++) {
        unsigned char b = (unsigned char)t[p];

        if (word_byte(b)) {
            size_t q = p + 1;

            err = consider(ws, t, len, p, md, out);
            while (q < len && word_byte((unsigned char)t[q])) {
                q++;
            }
            p = q; /* t[q] follows a word byte: no word starts there */
        } else if (b >= 0xC0) {
            err = consider(ws, t, len, p, md, out);
        }
    }
    return err;
}

int dr__wordset_find(const struct dr__wordset *ws, size_t j, const char *t,
                     const struct dr__wordstarts *at, size_t *cursor, size_t from, size_t to,
                     pcre2_match_data *md)
{
    uint64_t bit = UINT64_C(1) << j;
    size_t i = *cursor, tail = to;

    if (to > at->len) {
        to = at->len;
    }
    /* Shorter than the scanned text: a word start near the new end had its bytes judged with
     * what follows the end; those few positions are tried without the prefilter. */
    if (to < at->len) {
        tail = to >= KEY_MAX ? to - KEY_MAX + 1 : 0;
    }
    for (; i < at->n && at->v[i].pos < tail; i++) {
        size_t p = at->v[i].pos;
        if (p < from || !(at->v[i].mask & bit)) {
            continue;
        }
        if (pcre2_match(ws->anchored[j], (PCRE2_SPTR)t, to, p, 0, md, NULL) >= 0) {
            *cursor = i + 1;
            return 1;
        }
    }
    *cursor = i;
    for (size_t p = tail > from ? tail : from; p < to; p++) {
        unsigned char b = (unsigned char)t[p];
        if (!(ws->first[b] & bit) || (p > 0 && word_byte((unsigned char)t[p - 1]))) {
            continue;
        }
        if (pcre2_match(ws->anchored[j], (PCRE2_SPTR)t, to, p, 0, md, NULL) >= 0) {
            return 1;
        }
    }
    return 0;
}

void dr__wordstarts_cleanup(struct dr__wordstarts *w)
{
    free(w->v);
    memset(w, 0, sizeof(*w));
}
