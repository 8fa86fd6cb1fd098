/*
 * Word-start prefilter for sets of caseless text patterns (carrier names, status phrases, order
 * and merchant labels). Each of those patterns begins every alternative with \b and a word
 * character, so a match can start only where a word starts. Running each JIT pattern over the
 * whole text tries its whole alternation at every word; instead, one pass lists the word starts
 * whose first bytes (up to KEY_MAX, whole characters) could begin a match of some pattern of
 * the set, and only there is the pattern tried, anchored.
 *
 * "Could begin a match" is decided by PCRE2 itself: a partial match (PCRE2_PARTIAL_HARD, JIT
 * code) of the anchored pattern against " " + those bytes. Whatever matches in the text also
 * matches, or matches partially, a prefix of itself, so no match is lost; the answers are cached
 * per thread by the bytes. Leading bytes of non-ASCII characters are filtered by the pattern's own
 * start bitmap first, so text in other scripts does not fill the cache. Before the cache, the first
 * two bytes of an ASCII word are judged by a table filled at compile time: most words end there.
 * The word starts that pass are judged again by up to LONG_KEY_MAX bytes, through a second cache:
 * "delivery of your" begins no status phrase though "delivery" may, and a pattern tried at every
 * such word costs more than the lookup. One scan serves several sets (the carrier names and the
 * status rules over the same text).
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
#define KEY_MAX 6
/* Bytes that decide it again where the first KEY_MAX left a pattern possible: mostly the next
 * word too ("delivery of" begins no status phrase, "delivery" alone may). */
#define LONG_KEY_MAX 16
/* Entries of each per-thread cache: 2^CACHE_BITS. Long mails hold thousands of distinct words. */
#define CACHE_BITS 12
#define CACHE_SIZE (1u << CACHE_BITS)
/* A key may be kept in any of the 2^WAY_BITS entries of its row, the least recently used one
 * making room: with one entry per key, the words of one mail evicted the common words every mail
 * has ("your", "order", "delivery"), and each miss costs a partial match of every pattern that
 * may begin so, microseconds. */
#define WAY_BITS   2
#define CACHE_WAYS (1u << WAY_BITS)

/* One entry answers for all the sets of a scan: one memory access per word start. */
struct cache_entry {
    uint64_t key;  /* the bytes and their count; 0 = empty */
    uint64_t sets; /* which compilations of which sets */
    uint64_t mask[DR__WORDSET_SCAN_MAX];
};

/* The same for the longer keys of the word starts that pass the first cache. */
struct long_entry {
    uint64_t key[2]; /* the bytes, the first in the lowest byte of key[0] */
    uint64_t meta;   /* the byte count and the sets (as cache_entry.sets) above it; 0 = empty */
    uint64_t mask[DR__WORDSET_SCAN_MAX];
};

static _Thread_local struct cache_entry caches[DR__WORDSET_COUNT][CACHE_SIZE];
static _Thread_local struct long_entry long_caches[DR__WORDSET_COUNT][CACHE_SIZE];

/* Compilations so far: each set's cache keys carry its own number. */
static atomic_uint_fast32_t generations;

enum { OTHER, WORD, LEAD }; /* ASCII word byte; lead byte of a character of 2-4 bytes */
static const uint8_t byte_class[256] = {
    ['0' ... '9'] = WORD, ['A' ... 'Z'] = WORD,   ['_'] = WORD,
    ['a' ... 'z'] = WORD, [0xC0 ... 0xFF] = LEAD,
};

static int word_byte(unsigned char b)
{
    return byte_class[b] == WORD;
}

/* Patterns of ws that may match " " + s[0..n), anchored after the space. */
static uint64_t may_begin(const struct dr__wordset *ws, uint64_t among, const char *s, size_t n,
                          pcre2_match_data *md)
{
    char subj[1 + LONG_KEY_MAX];
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
    ws->gen = (uint32_t)(atomic_fetch_add(&generations, 1) % 0x3FFF) + 1;
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
        /* partial matching (the cache fill) runs JIT code too */
        ws->jit[j] =
            pcre2_jit_compile(ws->anchored[j], PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD) == 0;
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
    /* Two and three ASCII bytes of a word start, judged once here rather than at every word. */
    for (unsigned b = '0'; b <= 'z' && !err; b++) {
        for (unsigned b1 = 0; b1 < 0x80 && ws->first[b] && !err; b1++) {
            char three[3] = {(char)b, (char)b1, 0};
            uint64_t two = may_begin(ws, ws->first[b], three, 2, md), *masks;
            uint8_t(*rows)[128 / 8];

            if (!two) {
                continue;
            }
            rows = realloc(ws->triple, (ws->ntriple + 2) * sizeof(*rows));
            if (rows) {
                ws->triple = rows;
            }
            masks = realloc(ws->pair_mask, (ws->ntriple + 2) * sizeof(*masks));
            if (masks) {
                ws->pair_mask = masks;
            }
            if (!rows || !masks) {
                err = DR_ENOMEM;
                break;
            }
            masks[0] = 0;
            ws->ntriple += ws->ntriple ? 1 : 2;
            memset(rows[ws->ntriple - 1], 0, sizeof(rows[0]));
            masks[ws->ntriple - 1] = two;
            ws->pair[b - '0'][b1] = (uint16_t)(ws->ntriple - 1);
            for (unsigned b2 = 0; b2 < 0x80; b2++) {
                three[2] = (char)b2;
                if (may_begin(ws, ws->first[b], three, 3, md)) {
                    rows[ws->ntriple - 1][b2 / 8] |= (uint8_t)(1u << (b2 % 8));
                }
            }
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
    free(ws->triple);
    ws->triple = NULL;
    free(ws->pair_mask);
    ws->pair_mask = NULL;
    ws->ntriple = 0;
    ws->n = 0;
}

/* The bytes at t[p..len) that decide a word start: whole characters, at most max bytes. */
static size_t key_len(const char *t, size_t len, size_t p, size_t max)
{
    size_t k = 0, rest = len - p;

    while (k < rest) {
        unsigned char b = (unsigned char)t[p + k];
        size_t l = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;

        if (k + l > max) {
            break; /* (checked first: a cut character must not make the key longer) */
        }
        if (k + l > rest) {
            return rest; /* a character cut by the end of the text: the text ends there too */
        }
        k += l;
    }
    return k;
}

/* The key of the word start t[p]: its key_len() bytes, the first in the lowest byte of *key. */
static size_t key_of(const char *t, size_t len, size_t p, uint64_t *key)
{
    size_t k;

    *key = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (len - p >= 8) { /* the usual case: KEY_MAX ASCII bytes, read at once */
        uint64_t v;

        memcpy(&v, t + p, 8);
        v &= (UINT64_C(1) << (8 * KEY_MAX)) - 1;
        if (!(v & (UINT64_C(0x8080808080808080) >> (8 * (8 - KEY_MAX))))) {
            *key = v;
            return KEY_MAX;
        }
    }
#endif
    k = key_len(t, len, p, KEY_MAX);
    for (size_t i = 0; i < k; i++) {
        *key |= (uint64_t)(unsigned char)t[p + i] << (8 * i);
    }
    return k;
}

/* The long key of the word start t[p]: its key_len() bytes up to LONG_KEY_MAX, the first in the
 * lowest byte of key[0], zero after the last. */
static size_t long_key_of(const char *t, size_t len, size_t p, uint64_t key[2])
{
    size_t k;

    if (len - p >= LONG_KEY_MAX) { /* the usual case: ASCII bytes, read at once */
        memcpy(key, t + p, LONG_KEY_MAX);
        if (!((key[0] | key[1]) & UINT64_C(0x8080808080808080))) {
            return LONG_KEY_MAX;
        }
    }
    k = key_len(t, len, p, LONG_KEY_MAX);
    key[0] = key[1] = 0;
    memcpy(key, t + p, k);
    return k;
}

static int push(struct dr__wordstarts *out, size_t p, uint64_t mask, uint64_t mask_short)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 256;
        struct dr__wordstart *v = realloc(out->v, cap * sizeof(*v));
        if (!v) {
            return DR_ENOMEM;
        }
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n].pos = p;
    out->v[out->n].mask = mask;
    out->v[out->n].mask_short = mask_short;
    out->n++;
    return DR_OK;
}

/* The entry of row[0..CACHE_WAYS) that holds key (*hit = 1), else the least recently used one
 * (*hit = 0), moved to the front of the row. */
static struct cache_entry *short_way(struct cache_entry *row, uint64_t key, uint64_t sig, int *hit)
{
    size_t w = 0;

    while (w < CACHE_WAYS && (row[w].key != key || row[w].sets != sig)) {
        w++;
    }
    *hit = w < CACHE_WAYS;
    if (!*hit) {
        w = CACHE_WAYS - 1;
    }
    if (w > 0) {
        struct cache_entry e = row[w];

        memmove(row + 1, row, w * sizeof(*row));
        row[0] = e;
    }
    return row;
}

/* The same for the long keys. */
static struct long_entry *long_way(struct long_entry *row, const uint64_t key[2], uint64_t meta,
                                   int *hit)
{
    size_t w = 0;

    while (w < CACHE_WAYS &&
           (row[w].meta != meta || row[w].key[0] != key[0] || row[w].key[1] != key[1])) {
        w++;
    }
    *hit = w < CACHE_WAYS;
    if (!*hit) {
        w = CACHE_WAYS - 1;
    }
    if (w > 0) {
        struct long_entry e = row[w];

        memmove(row + 1, row, w * sizeof(*row));
        row[0] = e;
    }
    return row;
}

/* Adds p to out[s] when a pattern of sets[s] may match at the word start t[p]. sig: which
 * compilations of which sets (dr__wordset_scan_sets()). */
static int consider(const struct dr__wordset *const *sets, size_t nsets, uint64_t sig,
                    const char *t, size_t len, size_t p, pcre2_match_data *md,
                    struct dr__wordstarts *out)
{
    unsigned char b = (unsigned char)t[p];
    unsigned live = 0;                        /* bit s: sets[s] may match here */
    unsigned row[DR__WORDSET_SCAN_MAX] = {0}; /* of the first two bytes, when both are ASCII */
    int pair = 0;
    uint64_t key, lkey[2];
    uint64_t short_mask[DR__WORDSET_SCAN_MAX], mask[DR__WORDSET_SCAN_MAX];
    int any = 0, hit;
    struct cache_entry *e;
    size_t k, kl;

    for (size_t s = 0; s < nsets; s++) {
        live |= (sets[s]->first[b] != 0) << s;
    }
    if (live && b < 0x80 && p + 1 < len && (unsigned char)t[p + 1] < 0x80) {
        unsigned char b1 = (unsigned char)t[p + 1];

        unsigned b2 = p + 2 < len ? (unsigned char)t[p + 2] : 0x80;

        pair = 1;
        for (size_t s = 0; s < nsets; s++) {
            row[s] = sets[s]->pair[b - '0'][b1];
            if (!row[s] || (b2 < 0x80 && !(sets[s]->triple[row[s]][b2 / 8] & (1u << (b2 % 8))))) {
                live &= ~(1u << s);
            }
        }
    }
    if (!live) {
        return DR_OK;
    }
    k = key_of(t, len, p, &key);
    if (k == 0) {
        return DR_OK;
    }
    key |= (uint64_t)k << (8 * KEY_MAX);
    e = short_way(
        &caches[sets[0]->id]
               [(((key ^ sig) * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - CACHE_BITS + WAY_BITS))
                << WAY_BITS],
        key, sig, &hit);
    if (!hit) {
        /* Only the patterns that may begin with the first two bytes can begin with more of them
         * (the tables above rest on the same): far fewer partial matches than by the first. */
        for (size_t s = 0; s < nsets; s++) {
            uint64_t among = !pair ? sets[s]->first[b] : row[s] ? sets[s]->pair_mask[row[s]] : 0;

            e->mask[s] = among ? may_begin(sets[s], among, t + p, k, md) : 0;
        }
        e->key = key;
        e->sets = sig;
    }
    for (size_t s = 0; s < nsets; s++) {
        short_mask[s] = (live & (1u << s)) ? e->mask[s] : 0;
        any |= short_mask[s] != 0;
    }
    if (!any) {
        return DR_OK;
    }
    /* The few word starts left are judged again by up to LONG_KEY_MAX bytes; their first KEY_MAX
     * decided short_mask, so the long key alone decides the answer kept in the cache. */
    memcpy(mask, short_mask, sizeof(mask));
    if ((kl = long_key_of(t, len, p, lkey)) > k) {
        uint64_t meta = (uint64_t)kl | sig << 8;
        struct long_entry *le;

        le = long_way(&long_caches[sets[0]->id]
                                  [(((lkey[0] ^ (lkey[1] * UINT64_C(0xC2B2AE3D27D4EB4F)) ^ meta) *
                                     UINT64_C(0x9E3779B97F4A7C15)) >>
                                    (64 - CACHE_BITS + WAY_BITS))
                                   << WAY_BITS],
                      lkey, meta, &hit);
        if (!hit) {
            for (size_t s = 0; s < nsets; s++) {
                le->mask[s] = short_mask[s] ? may_begin(sets[s], short_mask[s], t + p, kl, md) : 0;
            }
            le->key[0] = lkey[0];
            le->key[1] = lkey[1];
            le->meta = meta;
        }
        memcpy(mask, le->mask, sizeof(mask));
    }
    for (size_t s = 0; s < nsets; s++) {
        int err;

        if (short_mask[s] && (err = push(&out[s], p, mask[s], short_mask[s])) != DR_OK) {
            return err;
        }
    }
    return DR_OK;
}

/* Groups the positions of w by pattern (w->pos, w->off). */
static int index_by_pattern(const struct dr__wordset *ws, struct dr__wordstarts *w)
{
    size_t count[DR__WORDSET_MAX + 1] = {0}, total = 0;

    for (size_t i = 0; i < w->n; i++) {
        for (uint64_t m = w->v[i].mask; m; m &= m - 1) {
            count[__builtin_ctzll(m)]++;
        }
    }
    for (size_t j = 0; j <= ws->n && j <= DR__WORDSET_MAX; j++) {
        w->off[j] = total;
        total += j < ws->n ? count[j] : 0;
    }
    for (size_t j = ws->n + 1; j <= DR__WORDSET_MAX; j++) {
        w->off[j] = total;
    }
    if (total > w->pos_cap) {
        size_t cap = total * 2;
        size_t *pos = realloc(w->pos, cap * sizeof(*pos));
        if (!pos) {
            return DR_ENOMEM;
        }
        w->pos = pos;
        w->pos_cap = cap;
    }
    memset(count, 0, sizeof(count));
    for (size_t i = 0; i < w->n; i++) {
        for (uint64_t m = w->v[i].mask; m; m &= m - 1) {
            size_t j = (size_t)__builtin_ctzll(m);
            w->pos[w->off[j] + count[j]++] = w->v[i].pos;
        }
    }
    return DR_OK;
}

/* Bit i of *word: t[i] is an ASCII word byte; of *lead: t[i] starts a character of 2-4 bytes;
 * for t[0..n), n <= 64. */
static void block_classes(const char *t, size_t n, uint64_t *word, uint64_t *lead)
{
#ifdef __SSE2__
    char pad[64];
    const char *b = t;
    uint64_t w = 0, l = 0;

    if (n < 64) {
        memset(pad, 0, sizeof(pad)); /* NUL is no word byte */
        memcpy(pad, t, n);
        b = pad;
    }
    for (int i = 0; i < 4; i++) {
        /* signed compares on bytes biased by 0x80 stand in for unsigned ranges */
        const __m128i bias = _mm_set1_epi8((char)0x80);
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * i));
        __m128i u = _mm_xor_si128(x, bias);
        __m128i low = _mm_xor_si128(_mm_or_si128(x, _mm_set1_epi8(0x20)), bias);
        __m128i digit = dr__sse_in_range(u, '0', '9');
        __m128i alpha = dr__sse_in_range(low, 'a', 'z');
        __m128i under = _mm_cmpeq_epi8(x, _mm_set1_epi8('_'));
        __m128i high = _mm_cmpgt_epi8(u, _mm_set1_epi8((char)(0xBF - 128)));

        w |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(digit, alpha), under))
             << (16 * i);
        l |= (uint64_t)(uint16_t)_mm_movemask_epi8(high) << (16 * i);
    }
    *word = w;
    *lead = l;
#else
    uint64_t w = 0, l = 0;

    for (size_t i = 0; i < n; i++) {
        int cls = byte_class[(unsigned char)t[i]];
        w |= (uint64_t)(cls == WORD) << i;
        l |= (uint64_t)(cls == LEAD) << i;
    }
    *word = w;
    *lead = l;
#endif
}

int dr__wordset_scan_sets(const struct dr__wordset *const *sets, size_t nsets, const char *t,
                          size_t len, pcre2_match_data *md, struct dr__wordstarts *out)
{
    int err = DR_OK;
    uint64_t sig = 0, prev_word = 0;

    if (nsets == 0 || nsets > DR__WORDSET_SCAN_MAX) {
        return DR_EINVAL;
    }
    /* which compilations of which sets: 14 bits of each generation */
    for (size_t s = 0; s < nsets; s++) {
        sig |= (uint64_t)(sets[s]->gen & 0x3FFF) << (14 * s);
    }
    for (size_t s = 0; s < nsets; s++) {
        out[s].n = 0;
        out[s].len = len;
    }
    /* A word may start at an ASCII word byte or a lead byte that no ASCII word byte precedes. */
    for (size_t base = 0; base < len && !err; base += 64) {
        uint64_t word, lead, starts;

        block_classes(t + base, len - base < 64 ? len - base : 64, &word, &lead);
        starts = (word | lead) & ~(word << 1 | prev_word);
        prev_word = word >> 63;
        for (; starts && !err; starts &= starts - 1) {
            err =
                consider(sets, nsets, sig, t, len, base + (size_t)__builtin_ctzll(starts), md, out);
        }
    }
    for (size_t s = 0; s < nsets && !err; s++) {
        err = index_by_pattern(sets[s], &out[s]);
    }
    return err;
}

int dr__wordset_scan(const struct dr__wordset *ws, const char *t, size_t len, pcre2_match_data *md,
                     struct dr__wordstarts *out)
{
    return dr__wordset_scan_sets(&ws, 1, t, len, md, out);
}

/* Anchored match of pattern j at p in t[0..to). */
static int match_at(const struct dr__wordset *ws, size_t j, const char *t, size_t to, size_t p,
                    pcre2_match_data *md)
{
    if (ws->jit[j]) {
        return pcre2_jit_match(ws->anchored[j], (PCRE2_SPTR)t, to, p, 0, md, NULL) >= 0;
    }
    return pcre2_match(ws->anchored[j], (PCRE2_SPTR)t, to, p, 0, md, NULL) >= 0;
}

int dr__wordset_find(const struct dr__wordset *ws, size_t j, const char *t,
                     const struct dr__wordstarts *at, size_t *cursor, size_t from, size_t to,
                     pcre2_match_data *md)
{
    uint64_t bit = UINT64_C(1) << j;
    size_t i = *cursor, nv = at->off[j + 1] - at->off[j], tail, near;
    const size_t *v = nv ? at->pos + at->off[j] : NULL;

    if (to > at->len) {
        to = at->len;
    }
    tail = near = to;
    /* Shorter than the scanned text: a word start near the new end had its bytes judged with
     * what follows the end. Those whose first KEY_MAX bytes end before it are tried as their
     * first KEY_MAX bytes alone decided; the last few without the prefilter. */
    if (to < at->len) {
        tail = to >= LONG_KEY_MAX ? to - LONG_KEY_MAX + 1 : 0;
        near = to >= KEY_MAX ? to - KEY_MAX + 1 : 0;
    }
    if (i < nv && v[i] < from) { /* first position at or after from */
        size_t a = i, b = nv;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (v[mid] < from) {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        i = a;
    }
    for (; i < nv && v[i] < tail; i++) {
        if (v[i] >= from && match_at(ws, j, t, to, v[i], md)) {
            *cursor = i + 1;
            return 1;
        }
    }
    *cursor = i;
    if ((tail > from ? tail : from) < near) {
        size_t lo = tail > from ? tail : from, a = 0, b = at->n;

        while (a < b) { /* first word start at or after lo */
            size_t mid = a + (b - a) / 2;
            if (at->v[mid].pos < lo) {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        for (; a < at->n && at->v[a].pos < near; a++) {
            if ((at->v[a].mask_short & bit) && match_at(ws, j, t, to, at->v[a].pos, md)) {
                return 1;
            }
        }
    }
    for (size_t p = near > from ? near : from; p < to; p++) {
        unsigned char b = (unsigned char)t[p];
        if (!(ws->first[b] & bit) || (p > 0 && word_byte((unsigned char)t[p - 1]))) {
            continue;
        }
        if (match_at(ws, j, t, to, p, md)) {
            return 1;
        }
    }
    return 0;
}

void dr__wordstarts_cleanup(struct dr__wordstarts *w)
{
    free(w->v);
    free(w->pos);
    memset(w, 0, sizeof(*w));
}
