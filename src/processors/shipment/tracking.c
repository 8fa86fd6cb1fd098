/*
 * Tracking number validation and the scan of free text for numbers. The format patterns are
 * compiled once (JIT) and shared read-only by all threads; match data is per call. With them a
 * prefilter is built once: which formats a number's first two characters and its length leave
 * possible, so that a candidate runs only those patterns (results as if all were tried).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"
#include "processors/shipment/tracking_int.h"

/* The widest pattern of this module has fewer capture groups than this. */
#define MATCH_PAIRS 40
/* Fewer digits than this never make a tracking number of any format. */
#define MIN_DIGITS 7
#define MIN_CHARS  8
/* Gaps of up to this many spaces join digit groups ("5682 8361 0012 734"). */
#define MAX_GAP 3
/* A serial with at least this many digits, all of them the same, is a placeholder. */
#define DEGENERATE_DIGITS 6

struct compiled {
    pcre2_code *code;
    int serial, check, country; /* group numbers, or -1 */
    uint32_t minlen;            /* shorter numbers cannot match */
};

static struct compiled formats_re[64];

/* Which formats may match a compact number, computed from the patterns at start-up so that
 * dr__validate_compact() runs only those (bit i: dr__formats[i]). A character's class is its
 * index in the candidate alphabet (digits, capitals, '-'), or CLASS_OTHER for any other byte,
 * which rules out no format. by_len[n]: formats that match some string of n characters. */
#define CLASS_OTHER 37
static uint8_t char_class[256];
static uint64_t by_first[CLASS_OTHER + 1];
static uint64_t by_pair[CLASS_OTHER + 1][CLASS_OTHER + 1];
static uint64_t by_len[DR_TRACKING_MAX + 1];
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int init_state; /* 0 not yet, 1 ready */

static int group(pcre2_code *code, const char *name)
{
    int n = pcre2_substring_number_from_name(code, (PCRE2_SPTR)name);
    return n > 0 ? n : -1;
}

static void free_formats(void)
{
    for (size_t i = 0; i < DR_ARRAY_LEN(formats_re); i++) {
        pcre2_code_free(formats_re[i].code);
        formats_re[i].code = NULL;
    }
}

static int compile_formats(void)
{
    if (dr__format_count > sizeof(formats_re) / sizeof(formats_re[0])) {
        return DR_EINVAL;
    }
    for (size_t i = 0; i < dr__format_count; i++) {
        int errcode;
        PCRE2_SIZE erroff;
        pcre2_code *code;

        code = pcre2_compile((PCRE2_SPTR)dr__formats[i].regex, PCRE2_ZERO_TERMINATED,
                             PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOLLAR_ENDONLY, &errcode,
                             &erroff, NULL);
        if (!code) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(errcode, msg, sizeof(msg));
            DR_ERROR("shipment", "pattern does not compile", "format=%s offset=%zu error=\"%s\"",
                     dr__formats[i].id, (size_t)erroff, (const char *)msg);
            return DR_EINVAL;
        }
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
        formats_re[i].code = code;
        formats_re[i].serial = group(code, "SerialNumber");
        formats_re[i].check = group(code, "CheckDigit");
        formats_re[i].country = group(code, "CountryCode");
        if (pcre2_pattern_info(code, PCRE2_INFO_MINLENGTH, &formats_re[i].minlen) != 0) {
            formats_re[i].minlen = 0;
        }
    }
    return DR_OK;
}

/* ---- prefilter ------------------------------------------------------------------------------
 * Lengths a pattern can match, as a bit set (bit 63: 63 or more), read from the pattern text.
 * Understands what the format table uses: literals, classes, escapes of one character, groups,
 * alternation, assertions (zero width) and quantifiers. Anything else yields "any length", which
 * only makes the prefilter let the format through. */

#define LEN_ANY UINT64_MAX

struct len_parser {
    const char *p;
    int bad;
};

static uint64_t len_sum(uint64_t a, uint64_t b)
{
    uint64_t r = 0;

    for (uint64_t x = a; x; x &= x - 1) {
        unsigned i = (unsigned)__builtin_ctzll(x);
        for (uint64_t y = b; y; y &= y - 1) {
            unsigned j = (unsigned)__builtin_ctzll(y);
            r |= UINT64_C(1) << (i + j < 63 ? i + j : 63);
        }
    }
    return r;
}

static uint64_t len_alt(struct len_parser *lp);

/* One atom: a character, a class, a group or an assertion. */
static uint64_t len_atom(struct len_parser *lp)
{
    const char *p = lp->p;
    uint64_t r;

    switch (*p) {
    case '(':
        p++;
        if (p[0] == '?') {
            int zero = 0;
            if (p[1] == ':') {
                p += 2;
            } else if (p[1] == '=' || p[1] == '!') {
                p += 2;
                zero = 1;
            } else if (p[1] == '<' && (p[2] == '=' || p[2] == '!')) {
                p += 3;
                zero = 1;
            } else if (p[1] == '<') {
                const char *e = strchr(p, '>');
                if (!e) {
                    lp->bad = 1;
                    return LEN_ANY;
                }
                p = e + 1;
            } else {
                lp->bad = 1;
                return LEN_ANY;
            }
            lp->p = p;
            r = len_alt(lp);
            if (*lp->p != ')') {
                lp->bad = 1;
                return LEN_ANY;
            }
            lp->p++;
            return zero ? 1 : r;
        }
        lp->p = p;
        r = len_alt(lp);
        if (*lp->p != ')') {
            lp->bad = 1;
            return LEN_ANY;
        }
        lp->p++;
        return r;
    case '[':
        p++;
        if (*p == '^') {
            p++;
        }
        if (*p == ']') {
            p++;
        }
        while (*p && *p != ']') {
            p += p[0] == '\\' && p[1] ? 2 : 1;
        }
        if (*p != ']') {
            lp->bad = 1;
            return LEN_ANY;
        }
        lp->p = p + 1;
        return 2; /* one character */
    case '\\':
        if (!p[1] || !strchr("dDwWsS.-\\/[](){}?*+|^$", p[1])) {
            lp->bad = 1; /* \b, \z, back references, ...: not worth reading */
            return LEN_ANY;
        }
        lp->p = p + 2;
        return 2;
    case '^':
    case '$':
        lp->p = p + 1;
        return 1;
    case '\0':
    case ')':
    case '|':
    case '*':
    case '+':
    case '?':
    case '{':
        lp->bad = 1;
        return LEN_ANY;
    default:
        if ((unsigned char)*p >= 0x80) {
            lp->bad = 1;
            return LEN_ANY;
        }
        lp->p = p + 1;
        return 2;
    }
}

/* An atom and its quantifier, if any. */
static uint64_t len_piece(struct len_parser *lp)
{
    uint64_t a = len_atom(lp), r, acc;
    unsigned lo, hi;

    if (lp->bad) {
        return LEN_ANY;
    }
    switch (*lp->p) {
    case '?':
        lo = 0, hi = 1;
        lp->p++;
        break;
    case '*':
        lo = 0, hi = 64;
        lp->p++;
        break;
    case '+':
        lo = 1, hi = 64;
        lp->p++;
        break;
    case '{': {
        const char *q = lp->p + 1;
        unsigned long n = 0, m;
        if (*q < '0' || *q > '9') {
            lp->bad = 1;
            return LEN_ANY;
        }
        while (*q >= '0' && *q <= '9') {
            n = n * 10 + (unsigned long)(*q++ - '0');
        }
        m = n;
        if (*q == ',') {
            q++;
            if (*q == '}') {
                m = 64;
            } else {
                for (m = 0; *q >= '0' && *q <= '9'; q++) {
                    m = m * 10 + (unsigned long)(*q - '0');
                }
            }
        }
        if (*q != '}' || m < n || n > 1000 || m > 1000) {
            lp->bad = 1;
            return LEN_ANY;
        }
        lo = n > 64 ? 64 : (unsigned)n;
        hi = m > 64 ? 64 : (unsigned)m;
        lp->p = q + 1;
        break;
    }
    default:
        return a;
    }
    if (*lp->p == '?' || *lp->p == '+') { /* lazy or possessive: same lengths */
        lp->p++;
    }
    r = 0;
    acc = 1; /* a repeated 0 times */
    for (unsigned k = 0; k <= hi; k++) {
        if (k >= lo) {
            r |= acc;
        }
        acc = len_sum(acc, a); /* saturates at bit 63, so 64 rounds reach every length */
    }
    return r;
}

static uint64_t len_alt(struct len_parser *lp)
{
    uint64_t r = 0;

    for (;;) {
        uint64_t seq = 1;
        while (*lp->p && *lp->p != '|' && *lp->p != ')' && !lp->bad) {
            seq = len_sum(seq, len_piece(lp));
        }
        if (lp->bad) {
            return LEN_ANY;
        }
        r |= seq;
        if (*lp->p != '|') {
            return r;
        }
        lp->p++;
    }
}

static uint64_t pattern_lengths(const char *regex)
{
    struct len_parser lp = {regex, 0};
    uint64_t r = len_alt(&lp);

    return lp.bad || *lp.p ? LEN_ANY : r;
}

/* 0 when no string starting with s[0..n) can match code (a partial match is a maybe). */
static int may_start(pcre2_code *code, const char *s, size_t n, pcre2_match_data *md)
{
    int rc = pcre2_match(code, (PCRE2_SPTR)s, n, 0, PCRE2_PARTIAL_HARD | PCRE2_NO_JIT, md, NULL);
    return rc != PCRE2_ERROR_NOMATCH;
}

static int build_prefilter(void)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-";
    uint64_t all = dr__format_count == 64 ? UINT64_MAX : (UINT64_C(1) << dr__format_count) - 1;
    pcre2_match_data *md = pcre2_match_data_create(MATCH_PAIRS, NULL);

    if (!md) {
        return DR_ENOMEM;
    }
    memset(char_class, CLASS_OTHER, sizeof(char_class));
    for (int a = 0; a < CLASS_OTHER; a++) {
        char_class[(unsigned char)alphabet[a]] = (uint8_t)a;
    }
    memset(by_len, 0, sizeof(by_len));
    for (int a = 0; a <= CLASS_OTHER; a++) {
        by_first[a] = a == CLASS_OTHER ? all : 0;
        for (int b = 0; b <= CLASS_OTHER; b++) {
            by_pair[a][b] = a == CLASS_OTHER ? all : 0;
        }
    }
    for (size_t i = 0; i < dr__format_count; i++) {
        uint64_t bit = UINT64_C(1) << i, lens = pattern_lengths(dr__formats[i].regex);

        for (size_t n = 0; n <= DR_TRACKING_MAX; n++) {
            by_len[n] |= (lens >> n) & 1 ? bit : 0;
        }
        for (int a = 0; a < CLASS_OTHER; a++) {
            char pair[2] = {alphabet[a], 0};

            if (!may_start(formats_re[i].code, pair, 1, md)) {
                continue;
            }
            by_first[a] |= bit;
            by_pair[a][CLASS_OTHER] |= bit;
            for (int b = 0; b < CLASS_OTHER; b++) {
                pair[1] = alphabet[b];
                if (may_start(formats_re[i].code, pair, 2, md)) {
                    by_pair[a][b] |= bit;
                }
            }
        }
    }
    pcre2_match_data_free(md);
    return DR_OK;
}

uint64_t dr__format_candidates(const char *s, size_t n)
{
    uint64_t m;

    if (n == 0 || n > DR_TRACKING_MAX) {
        return 0;
    }
    m = n == 1 ? by_first[char_class[(unsigned char)s[0]]]
               : by_pair[char_class[(unsigned char)s[0]]][char_class[(unsigned char)s[1]]];
    return m & by_len[n];
}

int dr_shipment_init(void)
{
    int err = DR_OK;

    if (atomic_load_explicit(&init_state, memory_order_acquire) == 1) {
        return DR_OK;
    }
    pthread_mutex_lock(&init_lock);
    if (atomic_load_explicit(&init_state, memory_order_relaxed) != 1) {
        err = compile_formats();
        if (!err) {
            err = build_prefilter();
        }
        if (!err) {
            err = dr__status_compile();
        }
        if (!err) {
            err = dr__extract_compile();
        }
        if (err) {
            free_formats();
            dr__status_free();
            dr__extract_free();
        } else {
            atomic_store_explicit(&init_state, 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&init_lock);
    return err;
}

void dr_shipment_cleanup(void)
{
    pthread_mutex_lock(&init_lock);
    if (atomic_load_explicit(&init_state, memory_order_relaxed) == 1) {
        free_formats();
        dr__status_free();
        dr__extract_free();
        atomic_store_explicit(&init_state, 0, memory_order_release);
    }
    pthread_mutex_unlock(&init_lock);
}

int dr__shipment_ready(void)
{
    return dr_shipment_init();
}

pcre2_match_data *dr__match_data(void)
{
    return pcre2_match_data_create(MATCH_PAIRS, NULL);
}

/* Span of group g in the last match, or 0 when the group did not take part. */
static int group_span(pcre2_match_data *md, int g, size_t *start, size_t *len)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);

    if (g < 0 || (uint32_t)g >= pcre2_get_ovector_count(md) || ov[2 * g] == PCRE2_UNSET) {
        return 0;
    }
    *start = ov[2 * g];
    *len = ov[2 * g + 1] - ov[2 * g];
    return 1;
}

static int checksum_ok(const struct dr__format *f, const char *s, size_t sstart, size_t slen,
                       char check)
{
    char serial[DR_TRACKING_MAX + 8];
    size_t n = 0, plen = f->prepend ? strlen(f->prepend) : 0;
    int want;

    if (slen > DR_TRACKING_MAX) {
        return 0;
    }
    if (plen && (slen < plen || memcmp(s + sstart, f->prepend, plen) != 0)) {
        memcpy(serial, f->prepend, plen);
        n = plen;
    }
    memcpy(serial + n, s + sstart, slen);
    n += slen;

    switch (f->checksum) {
    case DR__CK_MOD10:
        want = dr__check_mod10(serial, n, f->evens, f->odds, f->reverse);
        break;
    case DR__CK_MOD7:
        want = dr__check_mod7(serial, n);
        break;
    case DR__CK_LUHN:
        want = dr__check_luhn(serial, n);
        break;
    case DR__CK_S10:
        want = dr__check_s10(serial, n);
        break;
    case DR__CK_SUM_PRODUCT:
        want = dr__check_sum_product(serial, n, f->weights, f->mod1, f->mod2);
        break;
    case DR__CK_MOD37_36:
        want = dr__check_mod37_36(serial, n);
        break;
    default:
        return 1;
    }
    return want >= 0 && want == check;
}

/* 1 when s[0..n) is one digit repeated ("000000000000"): no carrier issues those, and weighted
 * check digits of all zeros come out right. */
static int one_digit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || s[i] != s[0]) {
            return 0;
        }
    }
    return n > 0;
}

/* 1 for a serial whose digits carry nothing: "1Z" + sixteen zeros, "RR00000000" + check digit +
 * "GB", "00" + fifteen ones + check digit. Many check digit rules accept these (all zeros pass
 * every weighted sum). Applied to formats with a check digit only: for those without one the
 * layout is all there is, and tracking_number_data lists "TBA000000000000" as a valid Amazon
 * number. A serial that is mostly letters is left alone. */
static int degenerate_serial(const char *serial, size_t n)
{
    size_t digits = 0;
    char first = 0;

    for (size_t i = 0; i < n; i++) {
        if (serial[i] < '0' || serial[i] > '9') {
            continue;
        }
        if (digits++ == 0) {
            first = serial[i];
        } else if (serial[i] != first) {
            return 0;
        }
    }
    return digits >= DEGENERATE_DIGITS;
}

size_t dr__validate_compact(const char *s, size_t n, pcre2_match_data *md,
                            struct dr_tracking_match *out, size_t *idx, size_t max)
{
    size_t found = 0;

    if (n == 0 || n > DR_TRACKING_MAX || one_digit(s, n)) {
        return 0;
    }
    for (uint64_t may = dr__format_candidates(s, n); may && found < max; may &= may - 1) {
        size_t i = (size_t)__builtin_ctzll(may);
        const struct dr__format *f = &dr__formats[i];
        const struct compiled *c = &formats_re[i];
        size_t sstart, slen, cstart = 0, clen = 0, ccstart, cclen;
        const char *opname = NULL;
        char cc[3] = "";

        if (n < c->minlen || pcre2_match(c->code, (PCRE2_SPTR)s, n, 0, 0, md, NULL) < 0) {
            continue;
        }
        if (!group_span(md, c->serial, &sstart, &slen)) {
            continue;
        }
        if (f->checksum != DR__CK_NONE) {
            if (degenerate_serial(s + sstart, slen) || !group_span(md, c->check, &cstart, &clen) ||
                clen != 1 || !checksum_ok(f, s, sstart, slen, s[cstart])) {
                continue;
            }
        }
        if (f->s10_country) {
            if (!group_span(md, c->country, &ccstart, &cclen) || cclen != 2) {
                continue;
            }
            memcpy(cc, s + ccstart, 2);
            cc[2] = '\0';
            opname = dr__s10_operator(cc);
            if (!opname) {
                continue;
            }
        }
        struct dr_tracking_match *m = &out[found];
        memset(m, 0, sizeof(*m));
        memcpy(m->number, s, n);
        m->number[n] = '\0';
        m->carrier = f->s10_country ? dr__s10_carrier(cc) : f->carrier;
        m->format = f->id;
        m->format_name = f->name;
        m->check_pos = f->checksum != DR__CK_NONE ? (int)cstart : -1;
        memcpy(m->country, cc, sizeof(cc));
        m->operator_name = opname;
        if (idx) {
            idx[found] = i;
        }
        found++;
    }
    return found;
}

int dr_tracking_validate(const char *number, struct dr_tracking_match *out, size_t max, size_t *n)
{
    char compact[DR_TRACKING_MAX + 1];
    size_t len = 0, rawlen;
    pcre2_match_data *md;
    int err;

    if (n) {
        *n = 0;
    }
    if (!number || !out || !n) {
        return DR_EINVAL;
    }
    rawlen = strnlen(number, 4 * DR_TRACKING_MAX + 1);
    if (rawlen > 4 * DR_TRACKING_MAX) {
        return DR_EINVAL;
    }
    for (size_t i = 0; i < rawlen; i++) {
        char c = number[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        }
        if (len == DR_TRACKING_MAX) {
            return DR_ENOTFOUND;
        }
        compact[len++] = c;
    }
    err = dr__shipment_ready();
    if (err) {
        return err;
    }
    md = dr__match_data();
    if (!md) {
        return DR_ENOMEM;
    }
    *n = dr__validate_compact(compact, len, md, out, NULL, max);
    pcre2_match_data_free(md);
    return *n ? DR_OK : DR_ENOTFOUND;
}

/* Carrier of format i for the number its pattern last matched in md: S10 numbers belong to the
 * carrier of their issuing country. */
static const char *layout_carrier(size_t i, const char *s, pcre2_match_data *md)
{
    size_t ccstart, cclen;
    char cc[3];

    if (!dr__formats[i].s10_country) {
        return dr__formats[i].carrier;
    }
    if (!group_span(md, formats_re[i].country, &ccstart, &cclen) || cclen != 2) {
        return NULL;
    }
    memcpy(cc, s + ccstart, 2);
    cc[2] = '\0';
    return dr__s10_carrier(cc);
}

int dr_tracking_refuted(const char *number, const char *carrier, const char **format)
{
    struct dr_tracking_match m[8];
    char compact[DR_TRACKING_MAX + 1];
    size_t len = 0, n = 0;
    pcre2_match_data *md;
    int refuted = 0;

    if (format) {
        *format = NULL;
    }
    if (!number || !carrier || strnlen(number, 4 * DR_TRACKING_MAX + 1) > 4 * DR_TRACKING_MAX ||
        dr__shipment_ready()) {
        return 0;
    }
    /* "UPS" is ups: a label's spelling must not spare a number its carrier's check digit */
    if (dr_shipment_carrier_code(carrier)) {
        carrier = dr_shipment_carrier_code(carrier);
    }
    for (const char *p = number; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            continue;
        }
        if (len == DR_TRACKING_MAX) {
            return 0; /* the layout of no format */
        }
        compact[len++] = *p;
    }
    md = dr__match_data();
    if (!md) {
        return 0;
    }
    n = dr__validate_compact(compact, len, md, m, NULL, DR_ARRAY_LEN(m));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].carrier, carrier) == 0) {
            goto out;
        }
    }
    /* every format, not only the prefilter's candidates: this is the slow path of a rejection */
    for (size_t i = 0; i < dr__format_count && !refuted; i++) {
        const char *c;

        if (dr__formats[i].checksum == DR__CK_NONE ||
            pcre2_match(formats_re[i].code, (PCRE2_SPTR)compact, len, 0, 0, md, NULL) < 0) {
            continue;
        }
        c = layout_carrier(i, compact, md);
        if (c && strcmp(c, carrier) == 0) {
            refuted = 1;
            if (format) {
                *format = dr__formats[i].name;
            }
        }
    }
out:
    pcre2_match_data_free(md);
    return refuted;
}

int dr_tracking_url(const struct dr_tracking_match *m, char *buf, size_t bufsz)
{
    const char *fmt = NULL;
    int w;

    if (!m || !buf || bufsz == 0) {
        return DR_EINVAL;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < dr__format_count; i++) {
        if (strcmp(dr__formats[i].id, m->format) == 0) {
            fmt = dr__formats[i].url;
            break;
        }
    }
    if (m->operator_name && strcmp(m->carrier, "royal_mail") == 0) {
        fmt = "https://www.royalmail.com/track-your-item#/tracking-results/%s";
    } else if (m->operator_name && strcmp(m->carrier, "canada_post") == 0) {
        fmt = "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor=%s";
    } else if (m->operator_name && strcmp(m->carrier, "usps") == 0) {
        fmt = "https://tools.usps.com/go/TrackConfirmAction?tLabels=%s";
    }
    if (!fmt) {
        return DR_ENOTFOUND;
    }
    /* The format strings are this file's constants, each with exactly one %s. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    w = snprintf(buf, bufsz, fmt, m->number);
#pragma GCC diagnostic pop
    if (w < 0 || (size_t)w >= bufsz) {
        buf[0] = '\0';
        return DR_ETOOBIG;
    }
    return DR_OK;
}

/* ---- scanning free text --------------------------------------------------------------------- */

static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_upper_or_digit(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

/* End of the token starting at p, and whether it holds a lower-case letter. */
static size_t token_end(const char *t, size_t len, size_t p, int *lower)
{
    *lower = 0;
    while (p < len && is_alnum((unsigned char)t[p])) {
        if (t[p] >= 'a' && t[p] <= 'z') {
            *lower = 1;
        }
        p++;
    }
    return p;
}

/* Length of a gap that may join two groups of one number at p (spaces, tabs, no-break spaces,
 * or one hyphen), 0 if there is none. *hyphen is set for the hyphen. */
static size_t join_gap(const char *t, size_t len, size_t p, int *hyphen)
{
    size_t q = p, spaces = 0;

    *hyphen = 0;
    if (q < len && t[q] == '-') {
        *hyphen = 1;
        q++;
        return q < len && is_upper_or_digit((unsigned char)t[q]) ? 1 : 0;
    }
    while (q < len && spaces < MAX_GAP + 1) {
        if (t[q] == ' ' || t[q] == '\t') {
            q++;
        } else if ((unsigned char)t[q] == 0xC2 && q + 1 < len && (unsigned char)t[q + 1] == 0xA0) {
            q += 2;
        } else {
            break;
        }
        spaces++;
    }
    if (spaces == 0 || spaces > MAX_GAP || q >= len || !is_alnum((unsigned char)t[q])) {
        return 0;
    }
    return q - p;
}

static int push_hit(struct dr__hits *hits, const struct dr__hit *h)
{
    if (hits->n == hits->max) {
        hits->truncated = 1;
        return DR_OK;
    }
    if (hits->n == hits->cap) {
        size_t cap = hits->cap ? hits->cap * 2 : 16;
        struct dr__hit *v = realloc(hits->v, cap * sizeof(*v));
        if (!v) {
            return DR_ENOMEM;
        }
        hits->v = v;
        hits->cap = cap;
    }
    hits->v[hits->n++] = *h;
    return DR_OK;
}

/* What the current run of groups has cost so far (see DR__RUN_WINDOWS). */
struct run {
    size_t end; /* the byte after its last token */
    size_t windows, hits;
};

/* End of the run of groups that starts with the token at p (which has no lower-case letter):
 * the tokens scan_from() may join to it, and those they may join to, and so on. */
static size_t run_end(const char *t, size_t len, size_t p)
{
    for (;;) {
        int lower, hyphen;
        size_t e = token_end(t, len, p, &lower), gap = join_gap(t, len, e, &hyphen);

        if (!gap) {
            return e;
        }
        (void)token_end(t, len, e + gap, &lower);
        if (lower) {
            return e;
        }
        p = e + gap;
    }
}

/* Tries every window that starts with the token at p. */
static int scan_from(const char *t, size_t len, size_t p, pcre2_match_data *md,
                     struct dr__hits *hits, struct run *run)
{
    char compact[DR_TRACKING_MAX + 1];
    size_t n = 0, digits = 0, tokens = 0, q = p;

    for (;;) {
        int lower, hyphen;
        size_t e = token_end(t, len, q, &lower), gap;

        if (lower || n + (e - q) > DR_TRACKING_MAX) {
            break;
        }
        for (size_t i = q; i < e; i++) {
            compact[n++] = t[i];
            digits += t[i] >= '0' && t[i] <= '9';
        }
        tokens++;
        if (n >= MIN_CHARS && digits >= MIN_DIGITS) {
            struct dr_tracking_match m[8];
            size_t idx[8], k;

            if (run->windows == DR__RUN_WINDOWS) {
                hits->truncated = 1;
                return DR_OK;
            }
            run->windows++;
            k = dr__validate_compact(compact, n, md, m, idx, DR_ARRAY_LEN(m));
            for (size_t j = 0; j < k; j++) {
                struct dr__hit h = {
                    .start = p, .end = e, .single_token = tokens == 1, .format = idx[j], .m = m[j]};
                int err;

                if (hits->keep && !hits->keep(hits->keep_arg, &h)) {
                    continue;
                }
                if (run->hits == DR__RUN_HITS) {
                    hits->truncated = 1;
                    return DR_OK;
                }
                run->hits++;
                err = push_hit(hits, &h);
                if (err) {
                    return err;
                }
            }
        }
        gap = join_gap(t, len, e, &hyphen);
        if (!gap) {
            break;
        }
        if (hyphen) {
            if (n + 1 > DR_TRACKING_MAX) {
                break;
            }
            compact[n++] = '-';
        }
        q = e + gap;
    }
    return DR_OK;
}

void dr__block_alnum(const char *t, size_t n, uint64_t *alnum, uint64_t *lower, uint64_t *digit)
{
#ifdef __SSE2__
    char pad[64];
    const char *b = t;
    uint64_t a = 0, l = 0, d = 0;

    if (n < 64) {
        memset(pad, 0, sizeof(pad)); /* NUL is neither */
        memcpy(pad, t, n);
        b = pad;
    }
    for (int i = 0; i < 4; i++) {
        /* signed compares on bytes biased by 0x80 stand in for unsigned ranges */
        const __m128i bias = _mm_set1_epi8((char)0x80);
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + 16 * i));
        __m128i u = _mm_xor_si128(x, bias);
        __m128i dig = dr__sse_in_range(u, '0', '9');
        __m128i upper = dr__sse_in_range(u, 'A', 'Z');
        __m128i small = dr__sse_in_range(u, 'a', 'z');

        a |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(dig, upper), small))
             << (16 * i);
        l |= (uint64_t)(uint16_t)_mm_movemask_epi8(small) << (16 * i);
        d |= (uint64_t)(uint16_t)_mm_movemask_epi8(dig) << (16 * i);
    }
    *alnum = a;
    *lower = l;
    *digit = d;
#else
    uint64_t a = 0, l = 0, d = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        a |= (uint64_t)is_alnum(c) << i;
        l |= (uint64_t)(c >= 'a' && c <= 'z') << i;
        d |= (uint64_t)(c >= '0' && c <= '9') << i;
    }
    *alnum = a;
    *lower = l;
    *digit = d;
#endif
}

int dr__scan(const char *text, size_t len, pcre2_match_data *md, struct dr__hits *hits)
{
    uint64_t carry = 0;
    struct run cur = {0};

    /* tokens (runs of letters and digits) 64 bytes at a time; only those without a lower-case
     * letter can start a number */
    for (size_t base = 0; base < len; base += 64) {
        uint64_t alnum, lower, digit, starts;

        dr__block_alnum(text + base, len - base < 64 ? len - base : 64, &alnum, &lower, &digit);
        starts = alnum & ~(alnum << 1 | carry);
        carry = alnum >> 63;
        for (; starts; starts &= starts - 1) {
            unsigned i = (unsigned)__builtin_ctzll(starts);
            uint64_t rest = ~(alnum >> i); /* 0 only for a block that is one whole token */
            unsigned run = rest ? (unsigned)__builtin_ctzll(rest) : 64;
            int has_lower;

            if (i + run < 64) {
                has_lower = ((lower >> i) & ((UINT64_C(1) << run) - 1)) != 0;
            } else { /* the token may go on in the next block */
                size_t e = base + i;
                has_lower = 0;
                while (e < len && is_alnum((unsigned char)text[e])) {
                    has_lower |= text[e] >= 'a' && text[e] <= 'z';
                    e++;
                }
            }
            if (!has_lower) {
                size_t p = base + i;
                int err;

                if (p >= cur.end) { /* the first token of a run */
                    cur = (struct run){.end = run_end(text, len, p)};
                } else if (cur.windows == DR__RUN_WINDOWS || cur.hits == DR__RUN_HITS) {
                    continue; /* the rest of a run that has cost what a run may */
                }
                err = scan_from(text, len, p, md, hits, &cur);
                if (err) {
                    return err;
                }
                if (hits->n == hits->max && hits->truncated) {
                    return DR_OK; /* no room left */
                }
            }
        }
    }
    return DR_OK;
}
