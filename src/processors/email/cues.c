/*
 * Small helpers the classifier needs on a parsed email: plus-address tokens, the recipient
 * set, and a shipment-cue score from sender, subject and the start of the text.
 */
#include <glib.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/err.h"
#include "dr/util.h"
#include "processors/email/email_int.h"

#define MAX_TOKEN 128

int dr_email_plus_token(const char *address, const char *local_prefix, char **token)
{
    const char *at, *plus;
    size_t n;

    *token = NULL;
    if (!address || !(at = strrchr(address, '@'))) {
        return DR_ENOTFOUND;
    }
    plus = memchr(address, '+', (size_t)(at - address));
    if (!plus) {
        return DR_ENOTFOUND;
    }
    if (local_prefix && (strlen(local_prefix) != (size_t)(plus - address) ||
                         strncasecmp(address, local_prefix, (size_t)(plus - address)) != 0)) {
        return DR_ENOTFOUND;
    }
    n = (size_t)(at - plus - 1);
    if (n == 0 || n > MAX_TOKEN) {
        return DR_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = plus[1 + i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '=' || c == '-')) {
            return DR_EINVAL;
        }
    }
    *token = dr_xstrndup(plus + 1, n);
    return DR_OK;
}

static void add_unique(char ***v, size_t *n, const char *addr)
{
    char *low;

    if (!addr || !*addr || !strchr(addr, '@')) {
        return;
    }
    low = g_ascii_strdown(addr, -1);
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*v)[i], low) == 0) {
            g_free(low);
            return;
        }
    }
    *v = dr_xrealloc(*v, (*n + 1) * sizeof(char *));
    (*v)[(*n)++] = dr_xstrdup(low);
    g_free(low);
}

int dr_email_recipients(const struct dr_email *em, char ***addrs, size_t *n)
{
    const struct dr_email_addr_list *lists[] = {&em->to, &em->cc, &em->bcc};
    char **v = NULL;
    size_t k = 0;

    for (size_t l = 0; l < DR_ARRAY_LEN(lists); l++) {
        for (size_t i = 0; i < lists[l]->n; i++) {
            add_unique(&v, &k, lists[l]->v[i].address);
        }
    }
    for (size_t i = 0; i < em->n_headers; i++) {
        if (strcmp(em->headers[i].name, "delivered-to") == 0 ||
            strcmp(em->headers[i].name, "x-original-to") == 0) {
            char *a = dr_xstrdup(em->headers[i].value);
            char *s = a + strspn(a, " <");
            s[strcspn(s, " >")] = '\0';
            add_unique(&v, &k, s);
            free(a);
        }
    }
    *addrs = v;
    *n = k;
    return DR_OK;
}

/* ---- shipment cues ---------------------------------------------------------------------- */

struct domain_cue {
    const char *label;   /* a domain label, matched exactly or as "label-..." */
    const char *carrier; /* the shipment module's carrier code; NULL for shops and platforms */
    int points;
};

static const struct domain_cue domains[] = {
    {"ups", "ups", 50},
    {"fedex", "fedex", 50},
    {"usps", "usps", 50},
    {"dhl", "dhl", 50},
    {"dpd", "dpd", 50},
    {"gls", "gls", 50},
    {"royalmail", "royal_mail", 50},
    {"parcelforce", "parcelforce", 50},
    {"hermes", "hermes", 45},
    {"evri", "evri", 50},
    {"inpost", "inpost", 50},
    {"poczta", "poczta_polska", 45},
    {"canadapost", "canada_post", 50},
    {"auspost", "auspost", 50},
    {"postnl", "postnl", 50},
    {"laposte", "la_poste", 40},
    {"colissimo", "la_poste", 50},
    {"chronopost", "chronopost", 50},
    {"correos", "correos", 45},
    {"poste", "poste_italiane", 35},
    {"brt", "brt", 45},
    {"ontrac", "ontrac", 50},
    {"lasership", "lasership", 50},
    {"purolator", "purolator", 50},
    {"tnt", "tnt", 45},
    {"aramex", "aramex", 50},
    {"yodel", "yodel", 50},
    {"informeddelivery", "usps", 50},
    {"amazon", "amazon", 35},
    {"ebay", NULL, 20},
    {"aliexpress", NULL, 25},
    {"walmart", NULL, 20},
    {"bestbuy", NULL, 20},
    {"zalando", NULL, 25},
    {"etsy", NULL, 15},
    {"shopify", NULL, 15},
    {"shopifyemail", NULL, 15},
    {"narvar", NULL, 40},
    {"aftership", NULL, 40},
    {"parcelsapp", NULL, 30},
    {"shipstation", NULL, 35},
};

const struct dr__email_word_cue dr__email_word_cues[] = {
    /* English */
    {"out for delivery", DR_EMAIL_SHIP_OUT_FOR_DELIVERY, 40},
    {"delivered", DR_EMAIL_SHIP_DELIVERED, 35},
    {"has shipped", DR_EMAIL_SHIP_SHIPPED, 35},
    {"shipped", DR_EMAIL_SHIP_SHIPPED, 30},
    {"dispatched", DR_EMAIL_SHIP_SHIPPED, 30},
    {"on its way", DR_EMAIL_SHIP_IN_TRANSIT, 25},
    {"on the way", DR_EMAIL_SHIP_IN_TRANSIT, 20},
    {"in transit", DR_EMAIL_SHIP_IN_TRANSIT, 30},
    {"arriving", DR_EMAIL_SHIP_IN_TRANSIT, 20},
    {"expected delivery", DR_EMAIL_SHIP_IN_TRANSIT, 30},
    {"delivery exception", DR_EMAIL_SHIP_EXCEPTION, 35},
    {"delivery attempt", DR_EMAIL_SHIP_EXCEPTION, 30},
    {"shipment", DR_EMAIL_SHIP_NONE, 25},
    {"tracking", DR_EMAIL_SHIP_NONE, 20},
    {"parcel", DR_EMAIL_SHIP_NONE, 20},
    {"package", DR_EMAIL_SHIP_NONE, 15},
    {"delivery", DR_EMAIL_SHIP_NONE, 15},
    {"order confirmation", DR_EMAIL_SHIP_ORDERED, 15},
    {"your order", DR_EMAIL_SHIP_ORDERED, 10},
    /* German */
    {"in zustellung", DR_EMAIL_SHIP_OUT_FOR_DELIVERY, 40},
    {"zugestellt", DR_EMAIL_SHIP_DELIVERED, 35},
    {"versandt", DR_EMAIL_SHIP_SHIPPED, 30},
    {"verschickt", DR_EMAIL_SHIP_SHIPPED, 30},
    {"unterwegs", DR_EMAIL_SHIP_IN_TRANSIT, 25},
    {"sendung", DR_EMAIL_SHIP_NONE, 25},
    {"paket", DR_EMAIL_SHIP_NONE, 20},
    {"lieferung", DR_EMAIL_SHIP_NONE, 15},
    /* Italian */
    {"in consegna", DR_EMAIL_SHIP_OUT_FOR_DELIVERY, 40},
    {"consegnato", DR_EMAIL_SHIP_DELIVERED, 35},
    {"consegnata", DR_EMAIL_SHIP_DELIVERED, 35},
    {"spedito", DR_EMAIL_SHIP_SHIPPED, 30},
    {"spedita", DR_EMAIL_SHIP_SHIPPED, 30},
    {"spedizione", DR_EMAIL_SHIP_NONE, 25},
    {"pacco", DR_EMAIL_SHIP_NONE, 20},
    /* French */
    {"en cours de livraison", DR_EMAIL_SHIP_OUT_FOR_DELIVERY, 40},
    {"livré", DR_EMAIL_SHIP_DELIVERED, 35},
    {"expédié", DR_EMAIL_SHIP_SHIPPED, 30},
    {"colis", DR_EMAIL_SHIP_NONE, 25},
    {"livraison", DR_EMAIL_SHIP_NONE, 15},
    /* Spanish */
    {"en reparto", DR_EMAIL_SHIP_OUT_FOR_DELIVERY, 40},
    {"entregado", DR_EMAIL_SHIP_DELIVERED, 35},
    {"enviado", DR_EMAIL_SHIP_SHIPPED, 25},
    {"paquete", DR_EMAIL_SHIP_NONE, 20},
    {"envío", DR_EMAIL_SHIP_NONE, 15},
    /* Dutch */
    {"bezorgd", DR_EMAIL_SHIP_DELIVERED, 35},
    {"verzonden", DR_EMAIL_SHIP_SHIPPED, 30},
    {"onderweg", DR_EMAIL_SHIP_IN_TRANSIT, 25},
    {"pakket", DR_EMAIL_SHIP_NONE, 20},
    /* Polish */
    {"w doręczeniu", DR_EMAIL_SHIP_OUT_FOR_DELIVERY, 40},
    {"doręczona", DR_EMAIL_SHIP_DELIVERED, 35},
    {"doręczono", DR_EMAIL_SHIP_DELIVERED, 35},
    {"dostarczona", DR_EMAIL_SHIP_DELIVERED, 35},
    {"nadana", DR_EMAIL_SHIP_SHIPPED, 30},
    {"wysłana", DR_EMAIL_SHIP_SHIPPED, 30},
    {"przesyłk", DR_EMAIL_SHIP_NONE, 25},
    {"paczk", DR_EMAIL_SHIP_NONE, 20},
    {"dostaw", DR_EMAIL_SHIP_NONE, 10},
};

const size_t dr__email_word_cue_count = DR_ARRAY_LEN(dr__email_word_cues);

/* Phrases that in a body point at a tracking number. */
static const char *const body_phrases[] = {
    "tracking number",    "track your package",   "track your order", "track your shipment",
    "tracking id",        "track & trace",        "sendungsnummer",   "sendungsverfolgung",
    "numero di tracking", "numero di spedizione", "numéro de suivi",  "número de seguimiento",
    "numer przesyłki",    "śledzenie przesyłki",  "trackingnummer",   "out for delivery",
};

static int status_rank(enum dr_email_ship_status s)
{
    /* an exception outranks progress; otherwise later in the journey wins */
    return s == DR_EMAIL_SHIP_EXCEPTION ? 10 : (int)s;
}

static int label_matches(const char *label, size_t n, const char *key)
{
    size_t k = strlen(key);
    return n >= k && strncmp(label, key, k) == 0 && (n == k || label[k] == '-');
}

/* The points of the best-scoring label of the sender's domain; *carrier gets its carrier (NULL
 * for a shop or a tracking platform: they are not carriers). */
static int sender_cue(const char *address, const char **carrier)
{
    const char *at = address ? strrchr(address, '@') : NULL;
    int best = 0;

    if (!at) {
        return 0;
    }
    for (const char *l = at + 1; *l;) {
        size_t n = strcspn(l, ".");
        const char *tld = l[n] ? l + n + 1 : NULL;
        /* the last label is the TLD: "ups" in "mail.ups" of "x@mail.ups" is not a brand */
        if (tld) {
            for (size_t i = 0; i < DR_ARRAY_LEN(domains); i++) {
                if (label_matches(l, n, domains[i].label) && domains[i].points > best) {
                    best = domains[i].points;
                    *carrier = domains[i].carrier;
                }
            }
        }
        l += n;
        if (*l == '.') {
            l++;
        }
    }
    return best;
}

/* Carriers named as a word in the text, in the order they are preferred. */
static const struct {
    const char *word, *carrier;
} carrier_names[] = {{"ups", "ups"},
                     {"fedex", "fedex"},
                     {"usps", "usps"},
                     {"dhl", "dhl"},
                     {"dpd", "dpd"},
                     {"gls", "gls"},
                     {"royal mail", "royal_mail"},
                     {"inpost", "inpost"},
                     {"hermes", "hermes"},
                     {"evri", "evri"}};

#define MAX_WORDS 64

_Static_assert(DR_ARRAY_LEN(dr__email_word_cues) <= MAX_WORDS, "one bit per cue word");
_Static_assert(DR_ARRAY_LEN(body_phrases) <= 32, "one bit per body phrase");
_Static_assert(DR_ARRAY_LEN(carrier_names) <= 32, "one bit per carrier name");

/* The cue words, body phrases and carrier names by their first two bytes (each is longer than
 * one), so that one pass over a text finds them all (instead of one strstr() per word). */
static struct {
    uint64_t words[2][256]; /* [0]: by the first byte, [1]: by the second */
    uint32_t phrases[2][256];
    uint32_t names[2][256];
    size_t word_len[MAX_WORDS], phrase_len[32], name_len[32];
} cue_index;
static pthread_once_t cue_index_once = PTHREAD_ONCE_INIT;

static void build_cue_index(void)
{
    for (size_t i = 0; i < dr__email_word_cue_count; i++) {
        const unsigned char *w = (const unsigned char *)dr__email_word_cues[i].word;
        cue_index.words[0][w[0]] |= UINT64_C(1) << i;
        cue_index.words[1][w[1]] |= UINT64_C(1) << i;
        cue_index.word_len[i] = strlen(dr__email_word_cues[i].word);
    }
    for (size_t i = 0; i < DR_ARRAY_LEN(body_phrases); i++) {
        const unsigned char *w = (const unsigned char *)body_phrases[i];
        cue_index.phrases[0][w[0]] |= UINT32_C(1) << i;
        cue_index.phrases[1][w[1]] |= UINT32_C(1) << i;
        cue_index.phrase_len[i] = strlen(body_phrases[i]);
    }
    for (size_t i = 0; i < DR_ARRAY_LEN(carrier_names); i++) {
        const unsigned char *w = (const unsigned char *)carrier_names[i].word;
        cue_index.names[0][w[0]] |= UINT32_C(1) << i;
        cue_index.names[1][w[1]] |= UINT32_C(1) << i;
        cue_index.name_len[i] = strlen(carrier_names[i].word);
    }
}

static int is_word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* 1 when s[p..n) starts with w[0..k). */
static int at(const char *s, size_t n, size_t p, const char *w, size_t k)
{
    return k <= n - p && memcmp(s + p, w, k) == 0;
}

#define cue_hits dr__email_cue_hits
_Static_assert(MAX_WORDS == DR__EMAIL_MAX_CUE_WORDS, "one hit per cue word");

/* The cue words and carrier names that may start at the word start p (t[p + 1] is in the text):
 * recorded in h as scan_cues_bytes() records them. */
static void word_start(const char *s, size_t n, size_t p, int body, uint64_t *words_left,
                       struct cue_hits *h)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[p], c1 = u[p + 1];

    for (uint64_t m = cue_index.words[0][c] & cue_index.words[1][c1] & *words_left; m; m &= m - 1) {
        int i = __builtin_ctzll(m);
        if (at(s, n, p, dr__email_word_cues[i].word, cue_index.word_len[i])) {
            h->word[i] = s + p;
            *words_left &= ~(UINT64_C(1) << i);
        }
    }
    for (uint32_t m = body ? cue_index.names[0][c] & cue_index.names[1][c1] & ~h->names : 0; m;
         m &= m - 1) {
        int i = __builtin_ctz(m);
        size_t k = cue_index.name_len[i];
        if (at(s, n, p, carrier_names[i].word, k) && (p + k == n || !is_word_char(u[p + k]))) {
            h->names |= UINT32_C(1) << i;
        }
    }
}

/*
 * Finds the cues in the folded text s[0..n): cue words where a word starts ("undelivered" is not
 * "delivered"; stems may run on to the right), carrier names as whole words, body phrases
 * anywhere. Every cue starts with a word character and is longer than one byte, so the words
 * are looked for at word starts only and everything by its first two bytes. With body unset only
 * the cue words are looked for.
 */
static void scan_cues_bytes(const char *s, size_t n, int body, struct cue_hits *h)
{
    const unsigned char *u = (const unsigned char *)s;
    uint64_t words_left = dr__email_word_cue_count == 64
                              ? ~UINT64_C(0)
                              : (UINT64_C(1) << dr__email_word_cue_count) - 1;

    pthread_once(&cue_index_once, build_cue_index);
    memset(h, 0, sizeof(*h));
    for (size_t p = 0; body && p + 1 < n; p++) {
        uint32_t m = cue_index.phrases[0][u[p]] & cue_index.phrases[1][u[p + 1]];
        for (; m; m &= m - 1) {
            int i = __builtin_ctz(m);
            if (at(s, n, p, body_phrases[i], cue_index.phrase_len[i])) {
                h->phrase = 1;
                break;
            }
        }
        if (h->phrase) {
            break;
        }
    }
    for (size_t p = 0; p < n;) {
        while (p < n && !is_word_char(u[p])) {
            p++;
        }
        if (p + 1 >= n) {
            break;
        }
        word_start(s, n, p, body, &words_left, h);
        while (p < n && is_word_char(u[p])) {
            p++;
        }
    }
}

/* Whether a body phrase starts at p (t[p + 1] is in the text). */
static int phrase_at(const char *s, size_t n, size_t p)
{
    const unsigned char *u = (const unsigned char *)s;

    for (uint32_t m = cue_index.phrases[0][u[p]] & cue_index.phrases[1][u[p + 1]]; m; m &= m - 1) {
        int i = __builtin_ctz(m);
        if (at(s, n, p, body_phrases[i], cue_index.phrase_len[i])) {
            return 1;
        }
    }
    return 0;
}

#ifdef __SSE2__
/* The distinct first two bytes of the body phrases: a phrase can start only where one of them
 * stands (the tables above say the same for one position at a time). */
#define MAX_PAIRS 8
static struct {
    unsigned char a[MAX_PAIRS], b[MAX_PAIRS];
    size_t n; /* MAX_PAIRS + 1: too many, the byte loop is used */
} phrase_pairs;

static void build_phrase_pairs(void)
{
    for (size_t i = 0; i < DR_ARRAY_LEN(body_phrases); i++) {
        unsigned char a = (unsigned char)body_phrases[i][0], b = (unsigned char)body_phrases[i][1];
        size_t k = 0;

        while (k < phrase_pairs.n && (phrase_pairs.a[k] != a || phrase_pairs.b[k] != b)) {
            k++;
        }
        if (k == phrase_pairs.n) {
            if (k == MAX_PAIRS) {
                phrase_pairs.n = MAX_PAIRS + 1;
                return;
            }
            phrase_pairs.a[k] = a;
            phrase_pairs.b[k] = b;
            phrase_pairs.n++;
        }
    }
}

/* Bit i: a word byte (a-z, 0-9, any byte from 0x80) at b[i], for 16 bytes. */
static unsigned word_bytes16(const unsigned char *b)
{
    const __m128i bias = _mm_set1_epi8((char)0x80);
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)b);
    __m128i u = _mm_xor_si128(x, bias);
    /* signed compares on bytes biased by 0x80 stand in for unsigned ranges */
    __m128i lower = _mm_and_si128(_mm_cmpgt_epi8(u, _mm_set1_epi8((char)('a' - 1 - 128))),
                                  _mm_cmplt_epi8(u, _mm_set1_epi8((char)('z' + 1 - 128))));
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(u, _mm_set1_epi8((char)('0' - 1 - 128))),
                                  _mm_cmplt_epi8(u, _mm_set1_epi8((char)('9' + 1 - 128))));

    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(lower, digit), x));
}

/* scan_cues_bytes() with the word starts and the places of the phrases' first two bytes found 16
 * bytes at a time; the same checks at the same places, so the same hits. */
static void scan_cues_sse2(const char *s, size_t n, int body, struct cue_hits *h)
{
    static pthread_once_t pairs_once = PTHREAD_ONCE_INIT;
    const unsigned char *u = (const unsigned char *)s;
    uint64_t words_left = dr__email_word_cue_count == 64
                              ? ~UINT64_C(0)
                              : (UINT64_C(1) << dr__email_word_cue_count) - 1;
    unsigned prev_word = 0;

    pthread_once(&cue_index_once, build_cue_index);
    pthread_once(&pairs_once, build_phrase_pairs);
    if (phrase_pairs.n > MAX_PAIRS) {
        scan_cues_bytes(s, n, body, h);
        return;
    }
    memset(h, 0, sizeof(*h));
    for (size_t base = 0; body && base + 1 < n && !h->phrase; base += 16) {
        unsigned cand = 0;

        if (n - base >= 17) {
            __m128i cur = _mm_loadu_si128((const __m128i *)(const void *)(u + base));
            __m128i next = _mm_loadu_si128((const __m128i *)(const void *)(u + base + 1));
            __m128i m = _mm_setzero_si128();

            for (size_t k = 0; k < phrase_pairs.n; k++) {
                m = _mm_or_si128(
                    m, _mm_and_si128(_mm_cmpeq_epi8(cur, _mm_set1_epi8((char)phrase_pairs.a[k])),
                                     _mm_cmpeq_epi8(next, _mm_set1_epi8((char)phrase_pairs.b[k]))));
            }
            cand = (unsigned)_mm_movemask_epi8(m);
        } else {
            for (size_t p = base; p + 1 < n; p++) {
                cand |= 1u << (p - base);
            }
        }
        for (; cand && !h->phrase; cand &= cand - 1) {
            h->phrase = phrase_at(s, n, base + (size_t)__builtin_ctz(cand));
        }
    }
    for (size_t base = 0; base < n; base += 16) {
        unsigned char pad[16];
        const unsigned char *b = u + base;
        unsigned word, starts;

        if (n - base < 16) {
            memset(pad, 0, sizeof(pad)); /* NUL is no word byte */
            memcpy(pad, b, n - base);
            b = pad;
        }
        word = word_bytes16(b);
        starts = word & ~((word << 1) | prev_word);
        prev_word = word >> 15;
        for (; starts; starts &= starts - 1) {
            size_t p = base + (size_t)__builtin_ctz(starts);

            if (p + 1 >= n) {
                return;
            }
            word_start(s, n, p, body, &words_left, h);
        }
    }
}
#endif

void dr__email_scan_cues(const char *s, size_t n, int body, int bytewise, struct cue_hits *h)
{
#ifdef __SSE2__
    if (!bytewise) {
        scan_cues_sse2(s, n, body, h);
        return;
    }
#endif
    scan_cues_bytes(s, n, body, h);
}

static void scan_cues(const char *s, size_t n, int body, struct cue_hits *h)
{
    dr__email_scan_cues(s, n, body, 0, h);
}

/*
 * Sums the points of the cue words found. The status is the most advanced one named (subjects
 * are short and to the point) or, with earliest set, the first one named (bodies go on to
 * mention later steps: "once delivered, ...").
 */
static int word_score(const struct cue_hits *h, int earliest, enum dr_email_ship_status *st)
{
    const char *first = NULL;
    int score = 0;

    for (size_t i = 0; i < dr__email_word_cue_count; i++) {
        const char *hit = h->word[i];

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

int dr__email_text_cues(const char *folded, size_t len, int earliest, enum dr_email_ship_status *st)
{
    struct cue_hits h;

    scan_cues(folded, len, 0, &h);
    return word_score(&h, earliest, st);
}

/*
 * What g_utf8_strdown() gives for each character U+0080..U+07FF on its own (a 2-byte sequence):
 * the bytes and their count, 0 when they do not fit. U+03A3 (capital sigma) depends on the
 * character after it and is never taken from here.
 */
struct low2 {
    unsigned char len;
    char b[7];
};
static struct low2 low2_table[0x800];
static pthread_once_t low2_once = PTHREAD_ONCE_INIT;

static void low2_init(void)
{
    for (unsigned u = 0x80; u < 0x800; u++) {
        char in[3] = {(char)(0xC0 | (u >> 6)), (char)(0x80 | (u & 0x3F)), '\0'};
        char *r = g_utf8_strdown(in, 2);
        size_t n = strlen(r);

        if (n < sizeof(low2_table[u].b)) {
            memcpy(low2_table[u].b, r, n);
            low2_table[u].len = (unsigned char)n;
        }
        g_free(r);
    }
}

static int is_letter(GUnicodeType t)
{
    return t == G_UNICODE_UPPERCASE_LETTER || t == G_UNICODE_LOWERCASE_LETTER ||
           t == G_UNICODE_TITLECASE_LETTER || t == G_UNICODE_MODIFIER_LETTER ||
           t == G_UNICODE_OTHER_LETTER;
}

/* Room one character's lower case always fits in (g_utf8_strdown() writes at most 3 characters
 * for one). */
#define FOLD_CHAR_ROOM 16

size_t dr__email_fold_into(const char *s, size_t len, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    size_t n = 0;

    pthread_once(&low2_once, low2_init);
    /* the walk of g_utf8_strdown(): a character per lead byte, g_utf8_skip[] bytes long, until
     * len bytes or a NUL byte, whatever the bytes in between are */
    while (p < end && *p) {
        unsigned char c = *p;
        const unsigned char *next;
        gunichar u;
        GUnicodeType t;

        if (cap - n < FOLD_CHAR_ROOM) {
            return SIZE_MAX;
        }
        if (c < 0x80) {
            out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            p++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF && (p[1] & 0xC0) == 0x80) {
            unsigned v = ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);

            if (v != 0x3A3 && low2_table[v].len) {
                memcpy(out + n, low2_table[v].b, sizeof(low2_table[v].b));
                n += low2_table[v].len;
                p += 2;
                continue;
            }
        }
        u = g_utf8_get_char((const char *)p);
        next = p + g_utf8_skip[c];
        if (u == 0x3A3) {
            /* final sigma unless a letter follows (inside the len bytes) */
            gunichar low = 0x3C2;
            if (next < end && *next &&
                is_letter(g_unichar_type(g_utf8_get_char((const char *)next)))) {
                low = 0x3C3;
            }
            n += (size_t)g_unichar_to_utf8(low, out + n);
            p = next;
            continue;
        }
        t = g_unichar_type(u);
        if (t == G_UNICODE_UPPERCASE_LETTER || t == G_UNICODE_TITLECASE_LETTER) {
            /* a whole valid sequence (only those decode to a letter): glib maps it alone */
            char *r = g_utf8_strdown((const char *)p, (gssize)(next - p));
            size_t rl = strlen(r);

            if (rl >= cap - n) {
                g_free(r);
                return SIZE_MAX;
            }
            memcpy(out + n, r, rl);
            n += rl;
            g_free(r);
            p = next;
            continue;
        }
        /* copied as it is; a NUL byte among the bytes ends glib's result there */
        for (; p < next; p++) {
            if (!*p) {
                out[n] = '\0';
                return n;
            }
            out[n++] = (char)*p;
        }
    }
    out[n] = '\0';
    return n;
}

size_t dr__email_lower_ascii(const char *s, size_t avail, size_t max, char *out)
{
    size_t len = 0;

#ifdef __SSE2__
    while (len + 16 <= max && len + 16 <= avail) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + len));
        __m128i up;

        /* a NUL or a byte with its high bit set ends the run: the loop below meets it */
        if (_mm_movemask_epi8(_mm_or_si128(x, _mm_cmpeq_epi8(x, _mm_setzero_si128()))) != 0) {
            break;
        }
        up = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('A' - 1)),
                           _mm_cmplt_epi8(x, _mm_set1_epi8('Z' + 1)));
        _mm_storeu_si128((__m128i *)(void *)(out + len),
                         _mm_or_si128(x, _mm_and_si128(up, _mm_set1_epi8(0x20))));
        len += 16;
    }
#else
    (void)avail;
#endif
    for (; len < max && s[len]; len++) {
        unsigned char c = (unsigned char)s[len];
        if (c >= 0x80) {
            break;
        }
        out[len] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    return len;
}

/*
 * Case-folded s, at most max bytes of it (UTF-8), as g_utf8_strdown() folds it in any locale but
 * the Turkic and Lithuanian ones (this program never calls setlocale()): in buf (cap bytes, at
 * least max + 1) when it fits, else a g_malloc'ed string that the caller g_free()s. *n gets the
 * length; NULL when s is NULL. avail: how many bytes of s may be read at once (0 when unknown).
 */
static char *fold(const char *s, size_t avail, size_t max, char *buf, size_t cap, size_t *n)
{
    size_t len;

    if (!s) {
        return NULL;
    }
    len = dr__email_lower_ascii(s, avail, max, buf);
    if (!s[len] || len == max) { /* ASCII: an ASCII cut is a character boundary */
        buf[len] = '\0';
        *n = len;
        return buf;
    }
    len += strnlen(s + len, max - len);
    if (s[len] && len == max) {
        len = dr__email_utf8_boundary(s, max);
    }
    *n = dr__email_fold_into(s, len, buf, cap);
    if (*n != SIZE_MAX) {
        return buf;
    }
    buf = g_utf8_strdown(s, (gssize)len);
    *n = strlen(buf);
    return buf;
}

#define SUBJECT_MAX 1024
#define BODY_MAX    8192

struct dr_email_shipment_cues dr_email_shipment_cues(const struct dr_email *em)
{
    struct dr_email_shipment_cues c = {0};
    enum dr_email_ship_status body_st = DR_EMAIL_SHIP_NONE;
    char subj_buf[2 * SUBJECT_MAX + FOLD_CHAR_ROOM], body_buf[2 * BODY_MAX + FOLD_CHAR_ROOM];
    char *subj, *body;
    size_t subj_len = 0, body_len = 0;
    struct cue_hits h;

    c.sender_score = sender_cue(em->from.address, &c.carrier);
    subj = fold(em->subject, 0, SUBJECT_MAX, subj_buf, sizeof(subj_buf), &subj_len);
    if (subj) {
        scan_cues(subj, subj_len, 0, &h);
        c.subject_score = word_score(&h, 0, &c.status);
    }
    if (c.subject_score > 60) {
        c.subject_score = 60;
    }
    body = fold(em->text, em->text_len, BODY_MAX, body_buf, sizeof(body_buf), &body_len);
    if (body) {
        scan_cues(body, body_len, 1, &h);
        if (h.phrase) {
            c.body_score += 15;
        }
        c.body_score += word_score(&h, 1, &body_st) > 0 ? 10 : 0;
        if (c.status == DR_EMAIL_SHIP_NONE) {
            c.status = body_st;
        }
        if (!c.carrier && h.names) {
            c.carrier = carrier_names[__builtin_ctz(h.names)].carrier;
            c.body_score += 5;
        }
    }
    if (c.body_score > 25) {
        c.body_score = 25;
    }
    c.score = c.sender_score + c.subject_score + c.body_score;
    if (c.score > 100) {
        c.score = 100;
    }
    if (subj != subj_buf) {
        g_free(subj);
    }
    if (body != body_buf) {
        g_free(body);
    }
    return c;
}

const char *dr_email_ship_status_name(enum dr_email_ship_status st)
{
    switch (st) {
    case DR_EMAIL_SHIP_NONE:
        return "none";
    case DR_EMAIL_SHIP_ORDERED:
        return "ordered";
    case DR_EMAIL_SHIP_SHIPPED:
        return "shipped";
    case DR_EMAIL_SHIP_IN_TRANSIT:
        return "in_transit";
    case DR_EMAIL_SHIP_OUT_FOR_DELIVERY:
        return "out_for_delivery";
    case DR_EMAIL_SHIP_DELIVERED:
        return "delivered";
    case DR_EMAIL_SHIP_EXCEPTION:
        return "exception";
    }
    return "none";
}
