/*
 * Internals of the shipment module shared between its files (and its unit tests). Not part of
 * the public contract in dr/shipment.h.
 */
#ifndef DR_SHIPMENT_TRACKING_INT_H
#define DR_SHIPMENT_TRACKING_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "dr/buf.h"
#include "dr/shipment.h"

#ifdef __SSE2__
#include <emmintrin.h>

/* Lanes of u (bytes biased by 0x80, so that signed compares stand in for unsigned ones) whose
 * unbiased byte is in [lo, hi]: 0xFF there, 0 elsewhere. */
static inline __m128i dr__sse_in_range(__m128i u, unsigned char lo, unsigned char hi)
{
    return _mm_and_si128(_mm_cmpgt_epi8(u, _mm_set1_epi8((char)(lo - 1 - 128))),
                         _mm_cmplt_epi8(u, _mm_set1_epi8((char)(hi + 1 - 128))));
}
#endif

/* ---- check digit algorithms (checksum.c) ---------------------------------------------------
 * Each returns the check character the serial calls for ('0'-'9', or 'A'-'Z' for mod 37,36), or
 * -1 when the serial holds a character the algorithm cannot weigh. Serials are upper case. */

/* Weighted sum mod 10 as tracking_number_data defines it: index 0 is "even"; a letter weighs
 * (ord - 3) % 10; reverse weighs from the last character. Check = (10 - sum % 10) % 10. */
int dr__check_mod10(const char *serial, size_t n, int evens, int odds, int reverse);
/* The serial as a decimal number, mod 7 (DHL Express). */
int dr__check_mod7(const char *serial, size_t n);
/* Luhn: double every second digit from the rightmost digit of the serial. */
int dr__check_luhn(const char *serial, size_t n);
/* UPU S10: weights 8 6 4 2 3 5 9 7, mod 11; 10 -> 0, 11 -> 5. */
int dr__check_s10(const char *serial, size_t n);
/* Sum of digit * weight (weights as digits in a string), mod m1, mod m2 (FedEx). */
int dr__check_sum_product(const char *serial, size_t n, const char *weights, int m1, int m2);
/* ISO 7064 MOD 37,36 hybrid, as DPD's parcel label specification computes it. */
int dr__check_mod37_36(const char *serial, size_t n);

/* ---- formats (formats.c) -------------------------------------------------------------------- */

enum dr__checksum {
    DR__CK_NONE,
    DR__CK_MOD10,
    DR__CK_MOD7,
    DR__CK_LUHN,
    DR__CK_S10,
    DR__CK_SUM_PRODUCT,
    DR__CK_MOD37_36
};

/* How much evidence a match needs before free text is trusted to hold it. */
enum dr__trust {
    DR__TRUST_ALWAYS, /* distinctive layout and/or a strong check digit */
    DR__TRUST_SHORT,  /* short form with a letter or a strong check character: a whole token with
                       * no order/phone label, or context */
    /* a tracking keyword or the carrier named nearby, or the email coming from the carrier: no
     * check digit, or all digits with a check digit that catches only one typo in ten (mod 10,
     * mod 7, Luhn, FedEx's sum): IMEIs, card and booking numbers pass those one time in ten */
    DR__TRUST_CONTEXT,
};

struct dr__format {
    const char *id;
    const char *carrier;
    const char *name;
    /* PCRE2 over the number without spaces, anchored at both ends, with the named groups
     * SerialNumber, CheckDigit and (S10) CountryCode. */
    const char *regex;
    const char *url; /* printf-style with one %s, or NULL */
    enum dr__checksum checksum;
    int evens, odds, reverse; /* mod 10 */
    const char *weights;      /* sum-product weights, one digit each */
    int mod1, mod2;
    const char *prepend; /* put this in front of the serial unless the serial starts with it */
    int s10_country;     /* the CountryCode group must name a UPU member */
    enum dr__trust trust;
};

extern const struct dr__format dr__formats[];
extern const size_t dr__format_count;

struct dr__s10_operator {
    const char *code;
    const char *name;
};
extern const struct dr__s10_operator dr__s10_operators[];
extern const size_t dr__s10_operator_count;

/* Operator name of an S10 country code, or NULL. */
const char *dr__s10_operator(const char *cc);
/* Carrier code for the S10 numbers of an issuing country ("GB" -> "royal_mail"), else "s10". */
const char *dr__s10_carrier(const char *cc);
/* The static copy of code when some format's numbers belong to that carrier (S10 countries
 * included, and "s10" itself), else NULL. */
const char *dr__format_carrier(const char *code);

/* ---- compiled patterns (tracking.c) --------------------------------------------------------- */

/* Runs dr_shipment_init() once; DR_OK when the patterns are ready. */
int dr__shipment_ready(void);

/* Match data big enough for every pattern of this module. NULL on OOM. */
pcre2_match_data *dr__match_data(void);

/* The formats (bit i: dr__formats[i]) that may match the compact number s[0..n), judged by its
 * first two characters and its length: a superset of those that match, in one table look-up. */
uint64_t dr__format_candidates(const char *s, size_t n);

/* Tries every format on a compact number (no spaces, n <= DR_TRACKING_MAX); see
 * dr_tracking_validate(). idx (may be NULL) receives the dr__formats index of each match. */
size_t dr__validate_compact(const char *s, size_t n, pcre2_match_data *md,
                            struct dr_tracking_match *out, size_t *idx, size_t max);

/* A format match found in free text. */
struct dr__hit {
    size_t start, end; /* byte span in the scanned text */
    int single_token;  /* written without spaces */
    size_t format;     /* dr__formats index */
    struct dr_tracking_match m;
};

struct dr__hits {
    struct dr__hit *v;
    size_t n, cap, max;
    int truncated; /* a match was dropped, or a run of groups was not read to its end */
    /* Optional: asked about every match found; 0 drops it, so it takes no room in v. */
    int (*keep)(void *arg, const struct dr__hit *h);
    void *keep_arg;
};

/* What one run of groups may cost dr__scan(): a run is a stretch of tokens without lower-case
 * letters joined by gaps ("1Z 879E 9303 ..."), and no candidate window crosses its ends. Real runs
 * are a few tokens long; a run of hundreds of digit groups is read only this far, and the scan
 * goes on with the next run, so that a number after it is still found and the work stays linear
 * in the text. */
#define DR__RUN_WINDOWS 1024 /* candidate windows tried */
#define DR__RUN_HITS    128  /* matches kept */

/* Bit i of *alnum: t[i] is an ASCII letter or digit; of *lower: a lower-case letter; of *digit: a
 * digit; for t[0..n), n <= 64. */
void dr__block_alnum(const char *t, size_t n, uint64_t *alnum, uint64_t *lower, uint64_t *digit);

/* Finds every format match in text: runs of upper-case letters and digits, alone or in groups
 * separated by up to three spaces. Appends to hits those hits->keep keeps (all without it),
 * bounded by hits->max and, per run of groups, by DR__RUN_WINDOWS and DR__RUN_HITS. DR_ENOMEM
 * only. */
int dr__scan(const char *text, size_t len, pcre2_match_data *md, struct dr__hits *hits);

/* ---- word-start prefilter (wordset.c) ------------------------------------------------------ */

/* Patterns of one set; sets are few and fixed (each has its own per-thread cache). */
#define DR__WORDSET_MAX 63
enum { DR__WORDSET_TEXT, DR__WORDSET_STATUS, DR__WORDSET_COUNT };
/* Sets one scan may serve at once. */
#define DR__WORDSET_SCAN_MAX DR__WORDSET_COUNT

/* Patterns whose every alternative starts with \b and a word character, and that look no further
 * back than \b does: they can match only where a word starts. */
struct dr__wordset {
    int id;
    uint32_t gen; /* 1..0x3FFF: this compilation's cache entries from an earlier one's */
    size_t n;
    pcre2_code *anchored[DR__WORDSET_MAX]; /* each pattern compiled PCRE2_ANCHORED, JIT */
    uint8_t jit[DR__WORDSET_MAX];          /* 1 when pattern j is JIT-compiled */
    uint64_t first[256];                   /* patterns that may match at a word starting so */
    /* A word starting with the ASCII bytes a, b: pair[a - '0'][b] ('0' is the lowest word byte)
     * is 0 when no pattern may match there, else the row of triple whose bit c tells whether
     * some pattern may match at a word starting with a, b and the ASCII byte c. Filled at
     * compile time; small, to stay in cache. */
    uint16_t pair['z' - '0' + 1][128];
    uint8_t (*triple)[128 / 8]; /* row 0 unused */
    uint64_t *pair_mask;        /* by row: the patterns that may begin with the row's two bytes */
    size_t ntriple;
};

struct dr__wordstart {
    size_t pos;
    uint64_t mask;       /* patterns that may match here */
    uint64_t mask_short; /* the same judged by the first bytes only (a superset of mask) */
};

/* Candidate positions of one text, in order. Zero-initialise; dr__wordstarts_cleanup(). */
struct dr__wordstarts {
    struct dr__wordstart *v;
    size_t n, cap;
    size_t len; /* length of the scanned text */
    /* The same positions by pattern: those of pattern j are pos[off[j]..off[j + 1]). */
    size_t *pos;
    size_t pos_cap;
    size_t off[DR__WORDSET_MAX + 1];
};

/* Compiles regexes[0..n) (n <= DR__WORDSET_MAX) with options into ws. DR_EINVAL when one does
 * not compile or may match inside a word; ws is then empty. Not thread-safe (init time). */
int dr__wordset_compile(struct dr__wordset *ws, int id, const char *const *regexes, size_t n,
                        uint32_t options);
void dr__wordset_free(struct dr__wordset *ws);

/* Lists in out the word starts of t[0..len) where a pattern of ws may match. md (any size) is
 * scratch. DR_ENOMEM only. Any thread. */
int dr__wordset_scan(const struct dr__wordset *ws, const char *t, size_t len, pcre2_match_data *md,
                     struct dr__wordstarts *out);

/* dr__wordset_scan() of one text for nsets (<= DR__WORDSET_SCAN_MAX) sets of distinct ids in one
 * pass: out[i] for sets[i]. */
int dr__wordset_scan_sets(const struct dr__wordset *const *sets, size_t nsets, const char *t,
                          size_t len, pcre2_match_data *md, struct dr__wordstarts *out);

/* Leftmost match of pattern j in the subject t[0..to) that starts at or after from, as an
 * unanchored pcre2_match() from from would find it: 1 with the match in md, else 0. at comes from
 * dr__wordset_scan() of t (to may be shorter than that text). *cursor (start at 0) lets
 * successive calls with growing from resume where the last stopped. */
int dr__wordset_find(const struct dr__wordset *ws, size_t j, const char *t,
                     const struct dr__wordstarts *at, size_t *cursor, size_t from, size_t to,
                     pcre2_match_data *md);
void dr__wordstarts_cleanup(struct dr__wordstarts *w);

/* ---- text helpers --------------------------------------------------------------------------- */

/* 1 when text looks like HTML markup. */
int dr__looks_html(const char *text, size_t len);
/* Appends the visible text of HTML (and the targets of links) to out. */
int dr__html_to_text(const char *html, size_t len, struct dr_buf *out);

/* ---- status (status.c) ---------------------------------------------------------------------- */

/* Best status in plain text; *strength gets 0 (none) .. 3 (definitive wording). */
enum dr_shipment_status dr__status_scan(const char *text, size_t len, pcre2_match_data *md,
                                        int *strength);
/* The same for t[from..to), read as a text of its own: t[from - 1], when from > 0, must be a line
 * break. at: dr__status_wordset()'s scan of t (t may go on past to), or NULL to search without
 * it. */
enum dr_shipment_status dr__status_scan_at(const char *t, size_t from, size_t to,
                                           const struct dr__wordstarts *at, pcre2_match_data *md,
                                           int *strength);
/* The word-start set of the status rules, for dr__wordset_scan_sets(). */
const struct dr__wordset *dr__status_wordset(void);
/* The status rules' patterns, at most max of them into out, and their compile options: the
 * number of rules. */
size_t dr__status_regexes(const char **out, size_t max, uint32_t *options);
int dr__status_compile(void);
void dr__status_free(void);

/* ---- extraction patterns (extract.c) -------------------------------------------------------- */

int dr__extract_compile(void);
/* 1 when the lower-case sender domain (up to 255 bytes are read) matches a domain key of the
 * carrier and shop tables: "x." or "x-" any label starting so, "x.com" that domain or a
 * subdomain of it. */
int dr__domain_is(const char *domain, const char *key);
/* The patterns of the text word set (carrier names, order, merchant, keyword and label patterns),
 * at most max of them into out, and their compile options: the number of patterns. The strings
 * are static. */
size_t dr__extract_text_regexes(const char **out, size_t max, uint32_t *options);
void dr__extract_free(void);

#endif
