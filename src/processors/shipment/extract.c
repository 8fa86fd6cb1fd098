/*
 * dr_shipment_extract(): tracking numbers, carrier, status, merchant and order numbers of a
 * shipping notification. The subject and the body (HTML reduced to text) are read as one text,
 * subject first, so that context in the subject ("FedEx Shipment 6129...") counts too.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/shipment.h"
#include "dr/util.h"
#include "processors/shipment/tracking_int.h"

#define MAX_HITS      512
/* Unbelieved matches remembered for inside_unbelieved() */
#define MAX_UNBELIEVED 4096
#define MAX_SHIPMENTS 50
#define MAX_ORDER_IDS 20
#define MAX_MARKS     4096
#define MAX_CANDS     8
#define MAX_SUBJECT   (64u * 1024)
#define MAX_FROM      1024
/* How far from a number a tracking keyword or a carrier name still vouches for it. */
#define KEYWORD_BEFORE  120
#define CARRIER_BEFORE  200
#define CARRIER_AFTER   80
#define NEGATIVE_BEFORE 32
/* How far before a number its label may start. */
#define LABEL_BEFORE 100

/* ---- carriers: how emails name them --------------------------------------------------------- */

struct carrier {
    const char *code;
    const char *name_re;    /* mentions in text (caseless unless the pattern says otherwise) */
    const char *domains[6]; /* sender domains; "x." matches any label x, "x.com" a suffix */
};

static const struct carrier carriers[] = {
    {"ups", "(?-i:\\bUPS\\b)|\\bunited\\s+parcel\\s+service\\b|\\bups\\.com\\b", {"ups.com"}},
    {"fedex", "\\bfedex\\b|\\bfederal\\s+express\\b", {"fedex.com"}},
    {"usps",
     "\\busps\\b|\\bu\\.\\s?s\\.\\s+postal\\s+service|\\bunited\\s+states\\s+postal",
     {"usps.com", "usps.gov"}},
    {"dhl", "\\bdhl\\b", {"dhl.", "dhlparcel.", "dhl-"}},
    {"amazon", "\\bamazon\\b", {"amazon."}},
    {"ontrac", "\\bontrac\\b", {"ontrac.com"}},
    {"lasership", "\\blasership\\b", {"lasership.com"}},
    {"canada_post",
     "\\bcanada\\s+post\\b|\\bpostes\\s+canada\\b",
     {"canadapost.ca", "postescanada.ca", "canadapost-postescanada.ca"}},
    {"royal_mail", "\\broyal\\s*mail\\b", {"royalmail.com", "royalmail.co.uk"}},
    {"parcelforce", "\\bparcelforce\\b", {"parcelforce.com", "parcelforce.co.uk"}},
    {"purolator", "\\bpurolator\\b", {"purolator.com"}},
    {"canpar", "\\bcanpar\\b", {"canpar.com", "canpar.ca"}},
    {"dpd", "\\bdpd\\b", {"dpd.", "dpdgroup.", "dpdlocal."}},
    {"yodel", "\\byodel\\b", {"yodel.co.uk", "yodel.com"}},
    {"landmark", "\\blandmark\\s+global\\b", {"landmarkglobal.com"}},
    {"old_dominion", "\\bold\\s+dominion\\b|\\bodfl\\b", {"odfl.com"}},
    {"speedee", "\\bspee-?\\s?dee\\b", {"speedeedelivery.com"}},
    {"yunexpress", "\\byun\\s?express\\b|\\byuntrack\\b", {"yunexpress.com", "yuntrack.com"}},
    {"gofo", "\\bgofo\\b", {"gofoexpress.com", "gofo."}},
    {"gls", "\\bgls\\b", {"gls-group.eu", "gls-group.com", "gls-pakete.de", "gls.", "gls-"}},
    {"hermes",
     "\\bhermes\\b|\\bmyhermes\\b",
     {"myhermes.co.uk", "myhermes.de", "hermesworld.com", "hermes-europe."}},
    {"evri", "\\bevri\\b", {"evri.com"}},
    {"inpost", "\\binpost\\b|\\bpaczkomat", {"inpost.", "paczkomaty.pl"}},
    {"poczta_polska", "\\bpoczta\\s+polska\\b", {"poczta-polska.pl", "pocztapolska.pl"}},
    {"auspost", "\\baustralia\\s+post\\b|\\bauspost\\b", {"auspost.com.au"}},
    {"postnl", "\\bpostnl\\b", {"postnl.nl", "postnl."}},
    {"la_poste",
     "\\bcolissimo\\b|\\bla\\s+poste\\b",
     {"laposte.fr", "colissimo.fr", "laposte.info"}},
    {"chronopost", "\\bchronopost\\b", {"chronopost.fr"}},
    {"mondial_relay", "\\bmondial\\s+relay\\b", {"mondialrelay."}},
    {"correos", "\\bcorreos\\b", {"correos.es"}},
    {"seur", "\\bseur\\b", {"seur.com"}},
    {"poste_italiane", "\\bposte\\s+italiane\\b", {"poste.it", "posteitaliane.it"}},
    {"brt", "\\bbrt\\b|\\bbartolini\\b", {"brt.it"}},
    {"bpost", "\\bbpost\\b", {"bpost.be"}},
    {"deutsche_post", "\\bdeutsche\\s+post\\b", {"deutschepost.de"}},
    {"swiss_post", "\\bswiss\\s+post\\b", {"post.ch", "swisspost.ch"}},
    {"tnt", "(?-i:\\bTNT\\b)", {"tnt.com"}},
    {"aramex", "\\baramex\\b", {"aramex.com"}},
    {"an_post", "\\ban\\s+post\\b", {"anpost.ie", "anpost.com"}},
};

#define NCARRIERS (sizeof(carriers) / sizeof(carriers[0]))

/* Shops recognised by their sender domain. */
static const struct {
    const char *domain, *name;
} merchants[] = {
    {"amazon.", "Amazon"},
    {"ebay.", "eBay"},
    {"walmart.", "Walmart"},
    {"target.com", "Target"},
    {"bestbuy.", "Best Buy"},
    {"apple.com", "Apple"},
    {"etsy.", "Etsy"},
    {"aliexpress.", "AliExpress"},
    {"zalando.", "Zalando"},
    {"ikea.", "IKEA"},
    {"allegro.", "Allegro"},
    {"allegromail.", "Allegro"},
    {"johnlewis.", "John Lewis"},
    {"argos.", "Argos"},
    {"asos.", "ASOS"},
    {"shein.", "SHEIN"},
    {"temu.", "Temu"},
    {"costco.", "Costco"},
    {"homedepot.", "The Home Depot"},
    {"lowes.", "Lowe's"},
    {"wayfair.", "Wayfair"},
    {"newegg.", "Newegg"},
    {"nike.", "Nike"},
    {"zara.", "Zara"},
    {"hm.com", "H&M"},
    {"decathlon.", "Decathlon"},
    {"otto.de", "OTTO"},
    {"mediamarkt.", "MediaMarkt"},
    {"chewy.", "Chewy"},
    {"macys.", "Macy's"},
    {"nordstrom.", "Nordstrom"},
    {"sephora.", "Sephora"},
    {"bol.com", "bol.com"},
    {"coolblue.", "Coolblue"},
    {"cdiscount.", "Cdiscount"},
    {"fnac.", "Fnac"},
    {"zooplus.", "zooplus"},
    {"mediaexpert.", "Media Expert"},
    {"x-kom.", "x-kom"},
};

/* Personal mail providers: their display names are people, never shops. */
static const char *const freemail[] = {
    "gmail.",   "googlemail.", "yahoo.",  "outlook.", "hotmail.", "live.",       "icloud.",
    "me.com",   "aol.",        "gmx.",    "web.de",   "wp.pl",    "o2.pl",       "onet.",
    "interia.", "libero.",     "orange.", "free.fr",  "proton.",  "protonmail.", "msn.",
};

/* ---- patterns ------------------------------------------------------------------------------- */

/* Words that label a tracking number, in the languages carriers write in. */
static const char keyword_regex[] =
    "(?:\\btracking\\s*(?:number|no\\b\\.?|nr\\b\\.?|num\\b|#|id\\b|code|n°|information)?"
    "|\\btrack\\s*(?:&|and|en|&amp;)\\s*trace(?:\\s*(?:code|number|nummer))?"
    "|\\btrack(?:ing)?\\s*#|\\btrack\\s+(?:your|my|the|this)\\s+(?:parcel|package|item|shipment)"
    "\\??|\\bwaybill(?:\\s*(?:number|no\\b\\.?|#))?|\\bair\\s*waybill|\\bAWB\\b"
    "|\\bconsignment\\s*(?:number|no\\b\\.?)|\\b(?:parcel|package|shipment|item)\\s*(?:number|"
    "no\\b\\.?|#|id\\b)"
    "|\\bshipment\\b|\\bPRO\\s*(?:number|#)"
    "|\\bsendungs(?:verfolgungs)?nummer|\\bsendungs-?nr\\b\\.?|\\btracking-?nummer|\\bpaketnummer"
    "|\\bnumero\\s+(?:di\\s+)?(?:tracciamento|spedizione|tracking)|\\bcodice\\s+(?:di\\s+)?(?:"
    "tracciamento|spedizione|tracking)"
    "|\\blettera\\s+di\\s+vettura"
    "|\\bn[uú]mero\\s+de\\s+(?:seguimiento|env[ií]o|gu[ií]a|rastreo|rastreamento|rastreio|objeto|"
    "pedido\\s+de\\s+env[ií]o)"
    "|\\bc[oó]digo\\s+de\\s+(?:seguimiento|rastreo|rastreamento|rastreio)|\\bn°\\s*de\\s*(?:gu["
    "ií]a|suivi|colis)"
    "|\\bnum[ée]ro\\s+(?:de\\s+)?(?:suivi|colis|d.envoi|de\\s+l.envoi|d.exp[ée]dition)"
    "|\\bzendingnummer|\\bpakketnummer|\\bverzendnummer|\\bbarcode"
    "|\\bnumer\\s+(?:przesy[lł]ki|paczki|nadania|listu\\s+przewozowego|[śs]ledzenia)"
    "|\\b(?:paczk[aięą]|przesy[lł]k[aięą])\\s+(?:o\\s+)?(?:numerze|nr\\b\\.?|numer))";

/* Between a keyword and its number: punctuation and "is", "no.", "number", ... The label
 * pattern is keyword_regex, then this, then the end of the subject given: it is tried on the
 * text that ends where a number starts. */
static const char label_filler[] =
    "[\\s:#.=_\\-]*(?:(?:is|ist|è|es|est|no|nr|n°|number|numer|numero|número|numéro|id)\\b"
    "[\\s:#.=_\\-]*)?"
    "\\z";

/* Tracking links: the number is the value of a tracking parameter (group 1). */
static const char url_regex[] =
    "[?&/"
    "](?:tracknum|tracknums|tracknumbers|trackingnumbers?|tracking_?numbers?|tracking-?id|trknbr"
    "|tlabels|awb|parcelnumbers?|parcelno|piececode|idc|searchvalue|searchfor|trackingid|tn"
    "|inquirynumber|numer|barcode|consignment|sendungsnummer|tracking)=(?-i:([A-Z0-9]{8,40}))(?![A-"
    "Za-z0-9])";

static const char amazon_order_regex[] = "(?<![0-9])([0-9]{3}-[0-9]{7}-[0-9]{7})(?![0-9])";

static const char order_regex[] =
    "\\b(?:order|bestellung|bestellnummer|auftrag(?:snummer)?|ordine|pedido|commande|bestelling"
    "|bestelnummer|zam[óo]wieni[ea]|encomenda)"
    "(?:\\s*(?:number|no\\b\\.?|nr\\b\\.?|num(?:ber|ero|éro)?\\b|n[°º]|id\\b|#|:|=|-))*\\s*#?\\s*"
    "(?-i:([A-Z0-9][A-Z0-9-]{2,30}[A-Z0-9]))(?![A-Za-z0-9-])";

/* Labels that make a short bare number something else than a tracking number. */
static const char negative_regex[] =
    "(?:order|phone|tel\\b|telefon|fax|call|invoice|account|customer|member|zip|postcode|postal\\s+"
    "code"
    "|bestell|ordine|pedido|commande|bestelling|zam[óo]wieni|infolinia|\\+)";

static const char digest_regex[] = "\\bdaily\\s+digest\\b|\\binformed\\s+delivery\\b";

/* "<parcel> from <merchant>" in the languages above; group 1 is the merchant. */
#define MERCHANT_END                                                                               \
    "(?=\\s*[,!:;(]|\\.(?:\\s|$)|\\s*$|\\s+(?:has|have|is|was|were|will|are|arriv|ship|to|on|"     \
    "today"                                                                                        \
    "|tomorrow|zosta|jest|wurde|ist|è|ha|est|a\\s|is\\s|wordt)\\b)"
#define MERCHANT_NAME "(?-i:([A-Z0-9][^\\n<>\"]{1,60}?))"

static const char *const merchant_regexes[] = {
    "\\b(?:parcel|package|order|shipment|delivery|item)s?\\s+from\\s+" MERCHANT_NAME MERCHANT_END,
    "\\b(?:paczk[aięą]|przesy[łl]k[aięą]|zam[óo]wienie)\\s+(?:od|z)\\s+" MERCHANT_NAME MERCHANT_END,
    "\\bnadan[aey]\\s+przez\\s+" MERCHANT_NAME MERCHANT_END,
    "\\b(?:paket|sendung|bestellung|lieferung)\\s+von\\s+" MERCHANT_NAME MERCHANT_END,
    "\\b(?:pacco|spedizione|ordine)\\s+(?:da|di)\\s+" MERCHANT_NAME MERCHANT_END,
    "\\b(?:paquete|pedido|env[íi]o)\\s+de\\s+" MERCHANT_NAME MERCHANT_END,
    "\\b(?:colis|commande)\\s+(?:de|d')\\s*" MERCHANT_NAME MERCHANT_END,
    "\\b(?:pakket|bestelling|zending)\\s+van\\s+" MERCHANT_NAME MERCHANT_END,
};

#define NMERCHANT_RE (sizeof(merchant_regexes) / sizeof(merchant_regexes[0]))

static pcre2_code *url_re, *amazon_order_re, *negative_re, *digest_re;
static pcre2_code *carrier_re[NCARRIERS];
/* Bit i: carrier_re[i] may match a string that starts with this byte; every bit for bytes the
 * table was not computed for. Merchant names start with a capital or a digit. */
static uint64_t carrier_by_first[256];

/* The carrier names, order_regex, merchant_regexes, keyword_regex and the label pattern over the
 * text: one word-start scan finds them all (carrier_re stays for short strings). */
static struct dr__wordset text_set;
#define ORDER_PATTERN     NCARRIERS
#define MERCHANT_PATTERN  (NCARRIERS + 1)
#define KEYWORD_PATTERN   (MERCHANT_PATTERN + NMERCHANT_RE)
#define LABEL_END_PATTERN (KEYWORD_PATTERN + 1)

#define TEXT_OPTIONS (PCRE2_CASELESS | PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF)

static pcre2_code *compile(const char *re)
{
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *code;

    code =
        pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, TEXT_OPTIONS, &errcode, &erroff, NULL);
    if (!code) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        DR_ERROR("shipment", "pattern does not compile", "offset=%zu error=\"%s\"", (size_t)erroff,
                 (const char *)msg);
        return NULL;
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    return code;
}

/* Fills carrier_by_first: a pattern that matches some string starting with byte b matches the
 * one-byte subject b at least partially, so a no-match there rules it out. */
static int carrier_first_bytes(void)
{
    static const char starts[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    pcre2_match_data *md = dr__match_data();

    if (!md) {
        return DR_ENOMEM;
    }
    memset(carrier_by_first, 0xFF, sizeof(carrier_by_first));
    for (const char *b = starts; *b; b++) {
        uint64_t m = 0;
        for (size_t i = 0; i < NCARRIERS; i++) {
            if (pcre2_match(carrier_re[i], (PCRE2_SPTR)b, 1, 0, PCRE2_PARTIAL_HARD | PCRE2_NO_JIT,
                            md, NULL) != PCRE2_ERROR_NOMATCH) {
                m |= UINT64_C(1) << i;
            }
        }
        carrier_by_first[(unsigned char)*b] = m;
    }
    pcre2_match_data_free(md);
    return DR_OK;
}

/* keyword_regex, then label_filler */
static char label_end_regex[sizeof(keyword_regex) + sizeof(label_filler)];

size_t dr__extract_text_regexes(const char **out, size_t max, uint32_t *options)
{
    const char *words[LABEL_END_PATTERN + 1];
    size_t n = DR_ARRAY_LEN(words);

    memcpy(label_end_regex, keyword_regex, sizeof(keyword_regex) - 1);
    memcpy(label_end_regex + sizeof(keyword_regex) - 1, label_filler, sizeof(label_filler));
    for (size_t i = 0; i < NCARRIERS; i++) {
        words[i] = carriers[i].name_re;
    }
    words[ORDER_PATTERN] = order_regex;
    for (size_t i = 0; i < NMERCHANT_RE; i++) {
        words[MERCHANT_PATTERN + i] = merchant_regexes[i];
    }
    words[KEYWORD_PATTERN] = keyword_regex;
    words[LABEL_END_PATTERN] = label_end_regex;
    memcpy(out, words, (n < max ? n : max) * sizeof(*out));
    *options = TEXT_OPTIONS;
    return n;
}

int dr__extract_compile(void)
{
    const char *words[LABEL_END_PATTERN + 1];
    uint32_t options;
    size_t n = dr__extract_text_regexes(words, DR_ARRAY_LEN(words), &options);

    url_re = compile(url_regex);
    amazon_order_re = compile(amazon_order_regex);
    negative_re = compile(negative_regex);
    digest_re = compile(digest_regex);
    if (!url_re || !amazon_order_re || !negative_re || !digest_re) {
        return DR_EINVAL;
    }
    for (size_t i = 0; i < NCARRIERS; i++) {
        carrier_re[i] = compile(carriers[i].name_re);
        if (!carrier_re[i]) {
            return DR_EINVAL;
        }
    }
    if (carrier_first_bytes() != DR_OK) {
        return DR_ENOMEM;
    }
    return dr__wordset_compile(&text_set, DR__WORDSET_TEXT, words, n, options);
}

void dr__extract_free(void)
{
    pcre2_code **all[] = {&url_re, &amazon_order_re, &negative_re, &digest_re};

    for (size_t i = 0; i < DR_ARRAY_LEN(all); i++) {
        pcre2_code_free(*all[i]);
        *all[i] = NULL;
    }
    for (size_t i = 0; i < NCARRIERS; i++) {
        pcre2_code_free(carrier_re[i]);
        carrier_re[i] = NULL;
    }

    dr__wordset_free(&text_set);
}

/* ---- per-call state ------------------------------------------------------------------------- */

struct mark {
    size_t pos;
    int carrier; /* index into carriers[] */
};

struct ship {
    size_t start, end;
    int valid;
    int from_label;
    size_t n;
    struct dr_tracking_match m[MAX_CANDS];
};

struct span {
    size_t start, end;
};

/* Everything before ships is zeroed per call; ships and orders are written before they are
 * read (up to nships and norders), so the bulk of the struct is left as malloc gave it. */
struct ctx {
    const char *t; /* subject + "\n" + body text */
    size_t len;
    size_t body_off;
    pcre2_match_data *md;
    pcre2_match_data *md2; /* for work done while md holds a match being walked */
    struct mark *marks;    /* grown on demand up to MAX_MARKS */
    size_t nmarks, marks_cap;
    int oom;
    size_t nships;
    size_t norders;
    const char *hint;           /* carrier code */
    const char *sender_carrier; /* carrier of the sender's domain, or NULL */
    int truncated;
    struct span *unbelieved; /* spans of matches not believed that have a check digit */
    size_t nunbelieved, unbelieved_cap;
    struct dr__wordstarts at;      /* of text_set in t */
    struct dr__wordstarts rule_at; /* of the status rules in t */
    struct ship ships[MAX_SHIPMENTS];
    char orders[MAX_ORDER_IDS][40];
};

const char *dr_shipment_carrier_code(const char *name)
{
    char code[64];
    size_t n = 0;

    if (!name) {
        return NULL;
    }
    while (*name == ' ' || *name == '\t') {
        name++;
    }
    for (; *name && n + 1 < sizeof(code); name++) {
        char ch = *name;
        code[n++] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch == ' ' || ch == '-' ? '_' : ch;
    }
    if (*name) {
        return NULL; /* longer than any code */
    }
    while (n && code[n - 1] == '_') {
        n--; /* trailing blanks */
    }
    code[n] = '\0';
    for (size_t i = 0; i < NCARRIERS; i++) {
        if (strcmp(carriers[i].code, code) == 0) {
            return carriers[i].code;
        }
    }
    return dr__format_carrier(code);
}

static int carrier_index(const char *code)
{
    for (size_t i = 0; i < NCARRIERS; i++) {
        if (strcmp(carriers[i].code, code) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* ---- sender --------------------------------------------------------------------------------- */

/* Lower-cased domain of the address in a From value into out ("" when there is none). */
static void sender_domain(const char *from, char *out, size_t outsz)
{
    const char *at = from ? strrchr(from, '@') : NULL;
    size_t n = 0;

    out[0] = '\0';
    if (!at) {
        return;
    }
    for (const char *p = at + 1; *p && *p != '>' && *p != ' ' && *p != '"' && n + 1 < outsz; p++) {
        out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    }
    out[n] = '\0';
}

/* Display name of a From value ("Amazon.com" of "\"Amazon.com\" <a@b>") into out. */
static void sender_name(const char *from, char *out, size_t outsz)
{
    const char *lt = from ? strchr(from, '<') : NULL;
    size_t n = 0;

    out[0] = '\0';
    if (!lt) {
        return;
    }
    for (const char *p = from; p < lt && n + 1 < outsz; p++) {
        if (*p == '"' || ((*p == ' ' || *p == '\t') && n == 0)) {
            continue;
        }
        out[n++] = *p;
    }
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\t')) {
        n--;
    }
    out[n] = '\0';
}

/* A sender domain with where its labels start, so that every key is compared in place. */
struct domain {
    char name[256]; /* lower case; "" when there is none */
    size_t len;
    uint8_t label[256]; /* offsets of the labels: 0 and each byte after a '.' */
    size_t nlabels;
};

static void find_labels(struct domain *d)
{
    d->len = strlen(d->name);
    d->nlabels = 0;
    for (size_t i = 0; i < d->len; i++) { /* len < 256: as many labels at most */
        if (i == 0 || d->name[i - 1] == '.') {
            d->label[d->nlabels++] = (uint8_t)i;
        }
    }
}

static void domain_init(struct domain *d, const char *from)
{
    sender_domain(from, d->name, sizeof(d->name));
    find_labels(d);
}

static int domain_is(const struct domain *d, const char *key)
{
    size_t dl = d->len, kl = strlen(key);

    if (!kl || !dl) {
        return 0;
    }
    if (key[kl - 1] == '.' || key[kl - 1] == '-') {
        /* a label prefix: "dhl." matches dhl.de and mail.dhl.com */
        for (size_t i = 0; i < d->nlabels; i++) {
            if (dl - d->label[i] >= kl && memcmp(d->name + d->label[i], key, kl) == 0) {
                return 1;
            }
        }
        return 0;
    }
    /* the domain itself or a subdomain of it */
    return dl >= kl && memcmp(d->name + dl - kl, key, kl) == 0 &&
           (dl == kl || d->name[dl - kl - 1] == '.');
}

int dr__domain_is(const char *domain, const char *key)
{
    struct domain d;
    size_t n = strnlen(domain, sizeof(d.name) - 1);

    memcpy(d.name, domain, n);
    d.name[n] = '\0';
    find_labels(&d);
    return domain_is(&d, key);
}

static const char *carrier_of_domain(const struct domain *domain)
{
    for (size_t i = 0; i < NCARRIERS; i++) {
        for (size_t k = 0; k < DR_ARRAY_LEN(carriers[i].domains) && carriers[i].domains[k]; k++) {
            if (domain_is(domain, carriers[i].domains[k])) {
                return carriers[i].code;
            }
        }
    }
    return NULL;
}

/* ---- marks: where carrier names are --------------------------------------------------------- */

static int add_mark(struct ctx *c, size_t pos, int carrier)
{
    if (c->nmarks == MAX_MARKS) {
        c->truncated = 1;
        return 0;
    }
    if (c->nmarks == c->marks_cap) {
        size_t cap = c->marks_cap ? 2 * c->marks_cap : 64;
        struct mark *m = realloc(c->marks, cap * sizeof(*m));
        if (!m) {
            c->oom = 1;
            return 0;
        }
        c->marks = m;
        c->marks_cap = cap;
    }
    c->marks[c->nmarks].pos = pos;
    c->marks[c->nmarks].carrier = carrier;
    c->nmarks++;
    return 1;
}

/* Runs code over the whole text, calling fn for every match until fn returns 0. */
static void each_match(struct ctx *c, pcre2_code *code, size_t from, size_t to,
                       int (*fn)(struct ctx *, PCRE2_SIZE *, void *), void *arg)
{
    size_t off = from;

    while (off < to) {
        int rc = pcre2_match(code, (PCRE2_SPTR)c->t, to, off, 0, c->md, NULL);
        PCRE2_SIZE *ov;

        if (rc < 0) {
            break;
        }
        ov = pcre2_get_ovector_pointer(c->md);
        if (!fn(c, ov, arg)) {
            break;
        }
        off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        /* never restart inside a UTF-8 sequence */
        while (off < to && ((unsigned char)c->t[off] & 0xC0) == 0x80) {
            off++;
        }
    }
}

/* each_match() for pattern j of text_set. */
static void each_word_match(struct ctx *c, size_t j, size_t from, size_t to,
                            int (*fn)(struct ctx *, PCRE2_SIZE *, void *), void *arg)
{
    size_t off = from, cursor = 0;

    while (off < to) {
        PCRE2_SIZE *ov;

        if (!dr__wordset_find(&text_set, j, c->t, &c->at, &cursor, off, to, c->md)) {
            break;
        }
        ov = pcre2_get_ovector_pointer(c->md);
        if (!fn(c, ov, arg)) {
            break;
        }
        off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
}

static int on_carrier(struct ctx *c, PCRE2_SIZE *ov, void *arg)
{
    return add_mark(c, ov[0], *(int *)arg);
}

/* A keyword glued to a link ("&shipmentId=", "/tracking/") is a parameter name, not a label:
 * links count only through url_regex. */
static int keyword_in_link(const struct ctx *c, size_t pos)
{
    return pos > 0 && strchr("&?/=._-%", c->t[pos - 1]) != NULL;
}

/* 1 when a tracking keyword (not part of a link) starts in [lo, hi). */
static int keyword_in(struct ctx *c, size_t lo, size_t hi)
{
    size_t cursor = 0;

    while (lo < hi && ((unsigned char)c->t[lo] & 0xC0) == 0x80) {
        lo++;
    }
    while (lo < hi) {
        PCRE2_SIZE *ov;

        if (!dr__wordset_find(&text_set, KEYWORD_PATTERN, c->t, &c->at, &cursor, lo, hi, c->md2)) {
            return 0;
        }
        ov = pcre2_get_ovector_pointer(c->md2);
        if (!keyword_in_link(c, ov[0])) {
            return 1;
        }
        lo = ov[0] + 1;
        while (lo < hi && ((unsigned char)c->t[lo] & 0xC0) == 0x80) {
            lo++;
        }
    }
    return 0;
}

static int cmp_mark(const void *a, const void *b)
{
    const struct mark *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* 1 when a mention of carrier lies in [lo, hi]. */
static int mark_in(const struct ctx *c, int carrier, size_t lo, size_t hi)
{
    size_t a = 0, b = c->nmarks;

    while (a < b) { /* first mark at or after lo */
        size_t mid = (a + b) / 2;
        if (c->marks[mid].pos < lo) {
            a = mid + 1;
        } else {
            b = mid;
        }
    }
    for (size_t i = a; i < c->nmarks && c->marks[i].pos <= hi; i++) {
        if (c->marks[i].carrier == carrier) {
            return 1;
        }
    }
    return 0;
}

/* ---- deciding which format matches to believe ----------------------------------------------- */

static int in_url(const struct ctx *c, size_t start)
{
    size_t p = start, lim = start > 400 ? start - 400 : 0;

    if (start == 0 || !strchr("=/&?%#", c->t[start - 1])) {
        return 0;
    }
    while (p > lim && c->t[p - 1] != ' ' && c->t[p - 1] != '\n' && c->t[p - 1] != '"' &&
           c->t[p - 1] != '<' && c->t[p - 1] != '\t') {
        p--;
    }
    for (size_t i = p; i + 4 <= start; i++) {
        if (memcmp(c->t + i, "http", 4) == 0 || memcmp(c->t + i, "www.", 4) == 0) {
            return 1;
        }
    }
    return 0;
}

static int has_context(struct ctx *c, const struct dr__hit *h)
{
    const char *carrier = h->m.carrier;
    int ci = carrier_index(carrier);
    size_t lo;

    if (c->hint && strcmp(c->hint, carrier) == 0) {
        return 1;
    }
    lo = h->start > KEYWORD_BEFORE ? h->start - KEYWORD_BEFORE : 0;
    if (keyword_in(c, lo, h->start)) {
        return 1;
    }
    lo = h->start > CARRIER_BEFORE ? h->start - CARRIER_BEFORE : 0;
    return ci >= 0 && mark_in(c, ci, lo, h->end + CARRIER_AFTER);
}

static int negative_context(struct ctx *c, size_t start)
{
    size_t lo = start > NEGATIVE_BEFORE ? start - NEGATIVE_BEFORE : 0;

    while (lo < start && ((unsigned char)c->t[lo] & 0xC0) == 0x80) {
        lo++;
    }
    return pcre2_match(negative_re, (PCRE2_SPTR)c->t, start, lo, 0, c->md, NULL) >= 0;
}

/* A check digit that a random number passes one time in ten. */
static int weak_check(enum dr__checksum ck)
{
    return ck == DR__CK_MOD10 || ck == DR__CK_MOD7 || ck == DR__CK_LUHN || ck == DR__CK_SUM_PRODUCT;
}

static int believe(struct ctx *c, const struct dr__hit *h)
{
    const struct dr__format *f = &dr__formats[h->format];
    int digits_only = 1;

    for (const char *p = h->m.number; *p; p++) {
        if (*p < '0' || *p > '9') {
            digits_only = 0;
        }
    }
    /* Numbers inside links count only under a tracking parameter (see url_regex). */
    if ((digits_only || f->trust != DR__TRUST_ALWAYS) && in_url(c, h->start)) {
        return 0;
    }
    /* the formats table says so too (DR__TRUST_CONTEXT); this holds for any row added later */
    if (digits_only && weak_check(f->checksum)) {
        return has_context(c, h);
    }
    switch (f->trust) {
    case DR__TRUST_ALWAYS:
        return 1;
    case DR__TRUST_SHORT:
        if (has_context(c, h)) {
            return 1;
        }
        return h->single_token && !negative_context(c, h->start);
    default:
        return has_context(c, h);
    }
}

/* ---- shipments ------------------------------------------------------------------------------ */

static struct ship *find_ship(struct ctx *c, const char *number)
{
    for (size_t i = 0; i < c->nships; i++) {
        if (strcmp(c->ships[i].m[0].number, number) == 0) {
            return &c->ships[i];
        }
    }
    return NULL;
}

static int overlaps(const struct ship *s, size_t start, size_t end)
{
    return start < s->end && s->start < end;
}

static int cmp_ship_pos(const void *a, const void *b)
{
    const struct ship *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Whether a longer span in unbelieved[0..n) (matches with a check digit that want context the
 * text does not give) holds g: "9274 8931 5085 7730 7776 69", a USPS number, is not believed
 * without USPS context, and then its tail "5085 7730 7776 69" is no 14-digit DHL number. */
static int inside_unbelieved(const struct ship *g, const struct span *unbelieved, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (unbelieved[i].start <= g->start && g->end <= unbelieved[i].end &&
            unbelieved[i].end - unbelieved[i].start > g->end - g->start) {
            return 1;
        }
    }
    return 0;
}

/* dr__scan()'s keep: only believed matches take room among the hits, so that a text full of
 * numbers nobody vouches for does not crowd out a real one. Those with a check digit are noted
 * (inside_unbelieved()). */
static int keep_hit(void *arg, const struct dr__hit *h)
{
    struct ctx *c = arg;
    struct span *last = c->nunbelieved ? &c->unbelieved[c->nunbelieved - 1] : NULL;

    if (believe(c, h)) {
        return 1;
    }
    if (h->m.check_pos < 0 || (last && last->start == h->start && last->end == h->end)) {
        return 0;
    }
    if (c->nunbelieved == c->unbelieved_cap) {
        size_t cap = c->unbelieved_cap ? 2 * c->unbelieved_cap : 64;
        struct span *v;

        if (cap > MAX_UNBELIEVED || !(v = realloc(c->unbelieved, cap * sizeof(*v)))) {
            return 0; /* best effort: a tail may then be reported */
        }
        c->unbelieved = v;
        c->unbelieved_cap = cap;
    }
    c->unbelieved[c->nunbelieved].start = h->start;
    c->unbelieved[c->nunbelieved].end = h->end;
    c->nunbelieved++;
    return 0;
}

/* Groups the hits (all believed, see keep_hit()) by span, keeps the longest of overlapping spans,
 * one per number. taken[i]: 0 not yet looked at, 1 dropped, 2 kept (its span is covered). */
static void collect_hits(struct ctx *c, struct dr__hits *hits)
{
    struct ship *groups;
    size_t ngroups = 0;
    int *taken;

    groups = calloc(hits->n ? hits->n : 1, sizeof(*groups));
    taken = calloc(hits->n ? hits->n : 1, sizeof(*taken));
    if (!groups || !taken) {
        c->truncated = 1;
        goto out;
    }
    for (size_t i = 0; i < hits->n; i++) {
        const struct dr__hit *h = &hits->v[i];
        struct ship *g = ngroups ? &groups[ngroups - 1] : NULL;

        if (!g || g->start != h->start || g->end != h->end) {
            g = &groups[ngroups++];
            g->start = h->start;
            g->end = h->end;
            g->valid = 1;
        }
        if (g->n < MAX_CANDS) {
            g->m[g->n++] = h->m;
        }
    }
    /* longest first; among equals the earliest */
    for (;;) {
        size_t best = (size_t)-1;
        for (size_t i = 0; i < ngroups; i++) {
            size_t len = groups[i].end - groups[i].start;
            if (taken[i]) {
                continue;
            }
            if (best == (size_t)-1 || len > groups[best].end - groups[best].start) {
                best = i;
            }
        }
        if (best == (size_t)-1) {
            break;
        }
        int clash = 0;
        for (size_t k = 0; k < ngroups && !clash; k++) {
            clash = taken[k] == 2 && overlaps(&groups[k], groups[best].start, groups[best].end);
        }
        taken[best] = 1;
        /* no part of a longer number refused for want of context is a number of its own,
         * whatever its own check digit says: a long run holds many windows, and one of them
         * passing a check is chance */
        if (clash || inside_unbelieved(&groups[best], c->unbelieved, c->nunbelieved)) {
            continue;
        }
        /* a repeat of a number still covers its span, so no part of it is read as another */
        taken[best] = 2;
        if (find_ship(c, groups[best].m[0].number)) {
            continue;
        }
        if (c->nships == MAX_SHIPMENTS) {
            c->truncated = 1;
            break;
        }
        c->ships[c->nships++] = groups[best];
    }
    qsort(c->ships, c->nships, sizeof(c->ships[0]), cmp_ship_pos);
out:
    free(groups);
    free(taken);
}

static int is_order_id(const struct ctx *c, const char *s)
{
    for (size_t i = 0; i < c->norders; i++) {
        if (strcmp(c->orders[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Records the number at t[start..start+n) that the text labels as a tracking number. Returns 0
 * when no more can be taken. */
static int add_labelled(struct ctx *c, size_t start, size_t n)
{
    char num[DR_TRACKING_MAX + 1];
    size_t digits = 0;
    struct ship s;

    if (n > DR_TRACKING_MAX) {
        return 1;
    }
    memcpy(num, c->t + start, n);
    num[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        digits += num[i] >= '0' && num[i] <= '9';
    }
    if (digits < 6 || find_ship(c, num) || is_order_id(c, num)) {
        return 1;
    }
    for (size_t i = 0; i < c->nships; i++) {
        if (overlaps(&c->ships[i], start, start + n)) {
            return 1;
        }
    }
    if (c->nships == MAX_SHIPMENTS) {
        c->truncated = 1;
        return 0;
    }
    memset(&s, 0, sizeof(s));
    s.start = start;
    s.end = start + n;
    s.from_label = 1;
    s.n = dr__validate_compact(num, n, c->md2, s.m, NULL, MAX_CANDS);
    s.valid = s.n > 0;
    if (!s.valid) {
        memcpy(s.m[0].number, num, n + 1);
        s.m[0].check_pos = -1;
    }
    c->ships[c->nships++] = s;
    return 1;
}

/* Group 1 of url_re: the value of a tracking parameter. */
static int on_link(struct ctx *c, PCRE2_SIZE *ov, void *arg)
{
    if (pcre2_get_ovector_count(c->md) < 2 || ov[2] == PCRE2_UNSET) {
        return 1;
    }
    return add_labelled(c, ov[2], ov[3] - ov[2]);
}

/* Numbers a keyword labels: every run of 8 to 40 capitals and digits (6 digits or more) right
 * after a keyword. Looking back from the few such runs is much cheaper than looking for the
 * keywords everywhere. */
static void find_labelled(struct ctx *c)
{
    const unsigned char *t = (const unsigned char *)c->t;
    uint64_t carry = 0;

    /* runs of letters and digits 64 bytes at a time, as dr__scan() finds them */
    for (size_t base = 0; base < c->len; base += 64) {
        uint64_t alnum, lower, digit, starts;

        dr__block_alnum(c->t + base, c->len - base < 64 ? c->len - base : 64, &alnum, &lower,
                        &digit);
        starts = alnum & ~(alnum << 1 | carry);
        carry = alnum >> 63;
        for (; starts; starts &= starts - 1) {
            unsigned i = (unsigned)__builtin_ctzll(starts);
            uint64_t rest = ~(alnum >> i); /* 0 only for a block that is one whole run */
            unsigned run = rest ? (unsigned)__builtin_ctzll(rest) : 64;
            size_t p = base + i, q, digits;
            int plain;

            if (i + run < 64) {
                uint64_t in = ((UINT64_C(1) << run) - 1) << i;
                q = p + run;
                plain = !(lower & in);
                digits = plain && run >= 8 && run <= DR_TRACKING_MAX
                             ? (size_t)__builtin_popcountll(digit & in)
                             : 0; /* counted only where it can matter */
            } else {              /* the run may go on in the next block */
                q = p;
                plain = 1;
                digits = 0;
                while (q < c->len &&
                       ((t[q] >= '0' && t[q] <= '9') || (t[q] >= 'A' && t[q] <= 'Z') ||
                        (t[q] >= 'a' && t[q] <= 'z'))) {
                    plain &= !(t[q] >= 'a' && t[q] <= 'z');
                    digits += t[q] >= '0' && t[q] <= '9';
                    q++;
                }
            }
            if (plain && digits >= 6 && q - p >= 8 && q - p <= DR_TRACKING_MAX) {
                size_t lo = p > LABEL_BEFORE ? p - LABEL_BEFORE : 0, cursor = 0;

                while (lo < p && ((unsigned char)c->t[lo] & 0xC0) == 0x80) {
                    lo++;
                }
                if (dr__wordset_find(&text_set, LABEL_END_PATTERN, c->t, &c->at, &cursor, lo, p,
                                     c->md) &&
                    !keyword_in_link(c, pcre2_get_ovector_pointer(c->md)[0]) &&
                    !add_labelled(c, p, q - p)) {
                    return;
                }
            }
        }
    }
}

/* ---- order ids and merchant ----------------------------------------------------------------- */

static void add_order(struct ctx *c, const char *s, size_t n)
{
    size_t digits = 0;

    if (n >= sizeof(c->orders[0])) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        digits += s[i] >= '0' && s[i] <= '9';
    }
    if (digits < 3) {
        return;
    }
    for (size_t i = 0; i < c->norders; i++) {
        if (strlen(c->orders[i]) == n && memcmp(c->orders[i], s, n) == 0) {
            return;
        }
    }
    if (c->norders == MAX_ORDER_IDS) {
        return;
    }
    memcpy(c->orders[c->norders], s, n);
    c->orders[c->norders][n] = '\0';
    c->norders++;
}

static int on_order(struct ctx *c, PCRE2_SIZE *ov, void *arg)
{
    if (ov[2] != PCRE2_UNSET) {
        add_order(c, c->t + ov[2], ov[3] - ov[2]);
    }
    return c->norders < MAX_ORDER_IDS;
}

/* Valid UTF-8 without control characters. */
static int clean_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char b = (unsigned char)s[i];
        size_t k = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;

        if (k == 0 || i + k > n || (k == 1 && b < 0x20)) {
            return 0;
        }
        for (size_t j = 1; j < k; j++) {
            if (((unsigned char)s[i + j] & 0xC0) != 0x80) {
                return 0;
            }
        }
        i += k;
    }
    return 1;
}

static int is_carrier_name(struct ctx *c, const char *s, size_t n)
{
    for (uint64_t may = carrier_by_first[(unsigned char)s[0]]; may; may &= may - 1) {
        size_t i = (size_t)__builtin_ctzll(may);
        if (i >= NCARRIERS) {
            break;
        }
        if (pcre2_match(carrier_re[i], (PCRE2_SPTR)s, n, 0, 0, c->md, NULL) >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
            if (ov[0] == 0 && ov[1] >= n - 1) {
                return 1;
            }
        }
    }
    return 0;
}

static cJSON *merchant_from_text(struct ctx *c, size_t from, size_t to)
{
    for (size_t i = 0; i < NMERCHANT_RE; i++) {
        PCRE2_SIZE *ov;
        size_t s, n, cursor = 0;

        if (!dr__wordset_find(&text_set, MERCHANT_PATTERN + i, c->t, &c->at, &cursor, from, to,
                              c->md)) {
            continue;
        }
        ov = pcre2_get_ovector_pointer(c->md);
        s = ov[2];
        n = ov[3] - ov[2];
        while (n && (c->t[s + n - 1] == ' ' || c->t[s + n - 1] == '.')) {
            n--;
        }
        if (n < 2 || !clean_utf8(c->t + s, n) || is_carrier_name(c, c->t + s, n)) {
            continue;
        }
        char *name = dr_xstrndup(c->t + s, n);
        cJSON *j = cJSON_CreateString(name);
        free(name);
        return j;
    }
    return NULL;
}

static cJSON *merchant_of(struct ctx *c, const char *from, const struct domain *domain, int shippy)
{
    char name[128];
    cJSON *j;

    for (size_t i = 0; i < DR_ARRAY_LEN(merchants); i++) {
        if (domain_is(domain, merchants[i].domain)) {
            return cJSON_CreateString(merchants[i].name);
        }
    }
    j = merchant_from_text(c, 0, c->body_off);
    if (!j) {
        j = merchant_from_text(c, c->body_off, c->len);
    }
    if (j) {
        return j;
    }
    /* A shop writing from its own domain: its display name is the shop. */
    sender_name(from, name, sizeof(name));
    if (!shippy || !name[0] || !domain->len || c->sender_carrier ||
        !clean_utf8(name, strlen(name)) || strchr(name, '@')) {
        return NULL;
    }
    for (size_t i = 0; i < DR_ARRAY_LEN(freemail); i++) {
        if (domain_is(domain, freemail[i])) {
            return NULL;
        }
    }
    return cJSON_CreateString(name);
}

/* ---- carrier hint -----------------------------------------------------------------------------
 */

static const char *hint_of(struct ctx *c)
{
    const char *h = c->sender_carrier;
    size_t counts[NCARRIERS] = {0}, first[NCARRIERS];
    int best = -1;

    if (h) {
        return h;
    }
    for (size_t i = 0; i < c->nmarks; i++) { /* named in the subject */
        if (c->marks[i].pos >= c->body_off) {
            break;
        }
        if (c->marks[i].carrier >= 0) {
            return carriers[c->marks[i].carrier].code;
        }
    }
    for (size_t i = 0; i < c->nmarks; i++) { /* named most often in the body */
        int k = c->marks[i].carrier;
        if (k < 0) {
            continue;
        }
        if (counts[k]++ == 0) {
            first[k] = c->marks[i].pos;
        }
        if (best < 0 || counts[k] > counts[best] ||
            (counts[k] == counts[best] && first[k] < first[best])) {
            best = k;
        }
    }
    return best >= 0 ? carriers[best].code : NULL;
}

/* ---- JSON ----------------------------------------------------------------------------------- */

static int add_unique(cJSON *arr, const char *s)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0) {
            return 0;
        }
    }
    cJSON_AddItemToArray(arr, cJSON_CreateString(s));
    return 1;
}

static cJSON *ship_json(const struct ship *s, const char *hint, const char *status)
{
    cJSON *o = cJSON_CreateObject(), *carr = cJSON_CreateArray(), *fmts = cJSON_CreateArray();
    const struct dr_tracking_match *p = NULL;
    char url[256];

    if (s->valid) {
        p = &s->m[0];
        for (size_t i = 0; hint && i < s->n; i++) {
            if (strcmp(s->m[i].carrier, hint) == 0) {
                p = &s->m[i];
                break;
            }
        }
        add_unique(carr, p->carrier);
        add_unique(fmts, p->format);
        for (size_t i = 0; i < s->n; i++) {
            add_unique(carr, s->m[i].carrier);
            add_unique(fmts, s->m[i].format);
        }
    }
    cJSON_AddStringToObject(o, "tracking_number", s->m[0].number);
    if (p) {
        cJSON_AddStringToObject(o, "carrier", p->carrier);
    } else {
        cJSON_AddNullToObject(o, "carrier");
    }
    cJSON_AddItemToObject(o, "carriers", carr);
    if (p) {
        cJSON_AddStringToObject(o, "format", p->format);
    } else {
        cJSON_AddNullToObject(o, "format");
    }
    cJSON_AddItemToObject(o, "formats", fmts);
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddBoolToObject(o, "valid", s->valid);
    if (p && dr_tracking_url(p, url, sizeof(url)) == DR_OK) {
        cJSON_AddStringToObject(o, "tracking_url", url);
    } else {
        cJSON_AddNullToObject(o, "tracking_url");
    }
    if (p && p->operator_name) {
        cJSON_AddStringToObject(o, "country", p->country);
        cJSON_AddStringToObject(o, "postal_operator", p->operator_name);
    }
    cJSON_AddStringToObject(o, "source", s->from_label ? "context" : "pattern");
    return o;
}

/* ---- status -----------------------------------------------------------------------------------
 */

static enum dr_shipment_status overall_status(struct ctx *c)
{
    enum dr_shipment_status subj, body;
    int ks, kb;

    if (pcre2_match(digest_re, (PCRE2_SPTR)c->t, c->body_off, 0, 0, c->md, NULL) >= 0) {
        return DR_SHIP_UNKNOWN; /* a mail digest: letters, not a parcel status */
    }
    /* the subject ends with a line break: the body reads as a text of its own */
    subj = dr__status_scan_at(c->t, 0, c->body_off, &c->rule_at, c->md, &ks);
    body = dr__status_scan_at(c->t, c->body_off, c->len, &c->rule_at, c->md, &kb);
    if (ks >= 2) {
        return subj;
    }
    if (kb > 0 && kb >= ks) {
        return body;
    }
    return subj;
}

/* ---- entry point ---------------------------------------------------------------------------- */

static int build_text(struct dr_buf *b, const char *subject, const char *text, size_t len,
                      size_t *body_off)
{
    int err = DR_OK;

    if (subject) {
        for (const char *p = subject; *p && !err; p++) { /* one line, whatever the header had */
            err = dr_buf_appendc(b, *p == '\r' || *p == '\n' ? ' ' : *p);
        }
    }
    if (!err) {
        err = dr_buf_appendc(b, '\n');
    }
    *body_off = b->len;
    if (err || len == 0) {
        return err;
    }
    if (dr__looks_html(text, len)) {
        return dr__html_to_text(text, len, b);
    }
    return dr_buf_append(b, text, len);
}

int dr_shipment_extract(const char *subject, const char *from, const char *text, size_t len,
                        cJSON **out)
{
    struct ctx *c = NULL;
    struct dr__hits hits = {.max = MAX_HITS};
    struct dr_buf work;
    struct domain domain;
    const char *status;
    cJSON *root = NULL, *arr;
    int err;

    if (out) {
        *out = NULL;
    }
    if (!out || (!text && len > 0)) {
        return DR_EINVAL;
    }
    if (len > DR_SHIPMENT_MAX_INPUT ||
        (subject && strnlen(subject, MAX_SUBJECT + 1) > MAX_SUBJECT) ||
        (from && strnlen(from, MAX_FROM + 1) > MAX_FROM)) {
        return DR_ETOOBIG;
    }
    err = dr__shipment_ready();
    if (err) {
        return err;
    }
    /* HTML shrinks when reduced to text; link targets are copied once. */
    dr_buf_init(&work, 2 * len + MAX_SUBJECT + 4096);
    c = malloc(sizeof(*c));
    if (!c) {
        err = DR_ENOMEM;
        goto out;
    }
    memset(c, 0, offsetof(struct ctx, ships));
    c->md = dr__match_data();
    c->md2 = dr__match_data();
    if (!c->md || !c->md2) {
        err = DR_ENOMEM;
        goto out;
    }
    err = build_text(&work, subject, text, len, &c->body_off);
    if (err) {
        goto out;
    }
    c->t = work.data ? work.data : "";
    c->len = work.len;
    domain_init(&domain, from);
    c->sender_carrier = domain.len ? carrier_of_domain(&domain) : NULL;

    /* where the carrier names and the status phrases may be */
    {
        const struct dr__wordset *sets[] = {&text_set, dr__status_wordset()};
        struct dr__wordstarts at[2] = {{0}};

        err = dr__wordset_scan_sets(sets, 2, c->t, c->len, c->md, at);
        c->at = at[0];
        c->rule_at = at[1];
        if (err) {
            goto out;
        }
    }
    for (size_t i = 0; i < NCARRIERS; i++) {
        int k = (int)i;
        each_word_match(c, i, 0, c->len, on_carrier, &k);
    }
    if (c->oom) {
        err = DR_ENOMEM;
        goto out;
    }
    if (c->nmarks) {
        qsort(c->marks, c->nmarks, sizeof(*c->marks), cmp_mark);
    }
    c->hint = hint_of(c);

    each_match(c, amazon_order_re, 0, c->len, on_order, NULL);
    each_word_match(c, ORDER_PATTERN, 0, c->len, on_order, NULL);

    hits.keep = keep_hit;
    hits.keep_arg = c;
    err = dr__scan(c->t, c->len, c->md, &hits);
    if (err) {
        goto out;
    }
    c->truncated |= hits.truncated;
    collect_hits(c, &hits);
    find_labelled(c);
    if (memchr(c->t, '=', c->len)) { /* every tracking parameter has one */
        each_match(c, url_re, 0, c->len, on_link, NULL);
    }
    qsort(c->ships, c->nships, sizeof(c->ships[0]), cmp_ship_pos);

    if (!c->hint) {
        for (size_t i = 0; i < c->nships && !c->hint; i++) {
            if (c->ships[i].valid) {
                c->hint = c->ships[i].m[0].carrier;
            }
        }
    }
    status = dr_shipment_status_name(overall_status(c));

    root = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(root, "shipments");
    for (size_t i = 0; i < c->nships; i++) {
        cJSON_AddItemToArray(arr, ship_json(&c->ships[i], c->hint, status));
    }
    {
        int shippy = c->nships || c->norders || strcmp(status, "unknown") != 0;
        cJSON *m = merchant_of(c, from, &domain, shippy);
        cJSON_AddItemToObject(root, "merchant", m ? m : cJSON_CreateNull());
    }
    arr = cJSON_AddArrayToObject(root, "order_ids");
    for (size_t i = 0; i < c->norders; i++) {
        cJSON_AddItemToArray(arr, cJSON_CreateString(c->orders[i]));
    }
    if (c->hint) {
        cJSON_AddStringToObject(root, "carrier_hint", c->hint);
    } else {
        cJSON_AddNullToObject(root, "carrier_hint");
    }
    cJSON_AddStringToObject(root, "status", status);
    if (c->truncated) {
        cJSON_AddTrueToObject(root, "truncated");
    }
    *out = root;
    root = NULL;
out:
    cJSON_Delete(root);
    if (c) {
        pcre2_match_data_free(c->md);
        pcre2_match_data_free(c->md2);
        free(c->marks);
        free(c->unbelieved);
        dr__wordstarts_cleanup(&c->at);
        dr__wordstarts_cleanup(&c->rule_at);
    }
    free(c);
    free(hits.v);
    dr_buf_cleanup(&work);
    return err;
}
