/*
 * Test helper: the word-start prefilter as it was before the pair table, the one-pass scan of
 * several sets and the per-pattern position lists (src/processors/shipment/wordset.c at commit
 * 6269669), kept verbatim apart from names as the reference the new one is compared with, and
 * one fix both share: key_len() could return more than KEY_MAX bytes when a character was cut by
 * the end of the text (a stack overflow in may_begin()).
 */
#ifndef TEST_SHIPMENT_WORDSET_REF_H
#define TEST_SHIPMENT_WORDSET_REF_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "processors/shipment/tracking_int.h"

#define REF_MAX  63
#define REF_SETS 2

struct ref_wordset {
    int id;
    size_t n;
    pcre2_code *anchored[REF_MAX];
    uint64_t first[256];
};

struct ref_wordstart {
    size_t pos;
    uint64_t mask;
};

struct ref_wordstarts {
    struct ref_wordstart *v;
    size_t n, cap;
    size_t len;
};

static void ref_wordset_free(struct ref_wordset *ws);

/* Bytes of a word start that decide whether a pattern may match there. */
#define KEY_MAX 4
/* Entries of each per-thread cache (a power of two). */
#define CACHE_SIZE 2048

struct ref_cache_entry {
    uint64_t key; /* the bytes and their count; 0 = empty */
    uint64_t mask;
};

static _Thread_local struct ref_cache_entry caches[REF_SETS][CACHE_SIZE];

/* Patterns that may start with two ASCII bytes, shared by all threads and filled as pairs are
 * met (every thread computes the same value). PAIR_KNOWN marks a filled entry. */
#define PAIR_KNOWN (UINT64_C(1) << 63)
static _Atomic uint64_t pairs[REF_SETS][128][128];

static int word_byte(unsigned char b)
{
    return (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || b == '_';
}

/* Patterns of ws that may match " " + s[0..n), anchored after the space. */
static uint64_t may_begin(const struct ref_wordset *ws, uint64_t among, const char *s, size_t n,
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

static int ref_wordset_compile(struct ref_wordset *ws, int id, const char *const *regexes, size_t n,
                               uint32_t options)
{
    pcre2_match_data *md = NULL;
    int err = DR_OK;

    memset(ws, 0, sizeof(*ws));
    if (n > REF_MAX || id < 0 || id >= REF_SETS) {
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
            (void)msg;
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
                err = DR_EINVAL;
                break;
            }
        }
    }
out:
    pcre2_match_data_free(md);
    if (err) {
        ref_wordset_free(ws);
    }
    return err;
}

static void ref_wordset_free(struct ref_wordset *ws)
{
    for (size_t j = 0; j < REF_MAX; j++) {
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

        if (k + l > KEY_MAX) {
            break; /* (checked first: a cut character must not make the key longer) */
        }
        if (k + l > rest) {
            return rest; /* a character cut by the end of the text: the text ends there too */
        }
        k += l;
    }
    return k;
}

/* Adds p to out when a pattern of ws may match at the word start t[p]. */
static int consider(const struct ref_wordset *ws, const char *t, size_t len, size_t p,
                    pcre2_match_data *md, struct ref_wordstarts *out)
{
    struct ref_cache_entry *e;
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
        struct ref_wordstart *v = realloc(out->v, cap * sizeof(*v));
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

static int ref_wordset_scan(const struct ref_wordset *ws, const char *t, size_t len,
                            pcre2_match_data *md, struct ref_wordstarts *out)
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

static int ref_wordset_find(const struct ref_wordset *ws, size_t j, const char *t,
                            const struct ref_wordstarts *at, size_t *cursor, size_t from, size_t to,
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

static void ref_wordstarts_cleanup(struct ref_wordstarts *w)
{
    free(w->v);
    memset(w, 0, sizeof(*w));
}

#endif
