/*
 * Small helpers the classifier needs on a parsed email: plus-address tokens, the recipient
 * set, and a shipment-cue score from sender, subject and the start of the text.
 */
#include <glib.h>
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
    const char *label; /* a domain label, matched exactly or as "label-..." */
    const char *carrier;
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
    {"auspost", "australia_post", 50},
    {"postnl", "postnl", 50},
    {"laposte", "la_poste", 40},
    {"colissimo", "colissimo", 50},
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
    {"ebay", "ebay", 20},
    {"aliexpress", "aliexpress", 25},
    {"walmart", "walmart", 20},
    {"bestbuy", "bestbuy", 20},
    {"zalando", "zalando", 25},
    {"etsy", "etsy", 15},
    {"shopify", "shopify", 15},
    {"shopifyemail", "shopify", 15},
    {"narvar", "narvar", 40},
    {"aftership", "aftership", 40},
    {"parcelsapp", "parcelsapp", 30},
    {"shipstation", "shipstation", 35},
};

struct word_cue {
    const char *word; /* lower case UTF-8 */
    enum dr_email_ship_status status;
    int points;
};

static const struct word_cue words[] = {
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

/* Case-folded copy of at most max bytes of s (UTF-8). */
static char *fold(const char *s, size_t max)
{
    size_t n;

    if (!s) {
        return NULL;
    }
    n = strlen(s);
    if (n > max) {
        n = dr__email_utf8_boundary(s, max);
    }
    return g_utf8_strdown(s, (gssize)n);
}

static int is_word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/*
 * Sums the points of the cue words in folded text. The status is the most advanced one named
 * (subjects are short and to the point) or, with earliest set, the first one named (bodies go
 * on to mention later steps: "once delivered, ...").
 */
static int text_cues(const char *folded, int earliest, enum dr_email_ship_status *st)
{
    const char *first = NULL;
    int score = 0;

    for (size_t i = 0; folded && i < DR_ARRAY_LEN(words); i++) {
        const char *hit = strstr(folded, words[i].word);
        while (hit && hit > folded && is_word_char((unsigned char)hit[-1])) {
            /* "undelivered" is not "delivered"; stems may run on to the right */
            hit = strstr(hit + 1, words[i].word);
        }
        if (!hit) {
            continue;
        }
        score += words[i].points;
        if (words[i].status == DR_EMAIL_SHIP_NONE) {
            continue;
        }
        if (earliest ? (!first || hit < first) : status_rank(words[i].status) > status_rank(*st)) {
            *st = words[i].status;
            first = hit;
        }
    }
    return score;
}

struct dr_email_shipment_cues dr_email_shipment_cues(const struct dr_email *em)
{
    struct dr_email_shipment_cues c = {0};
    enum dr_email_ship_status body_st = DR_EMAIL_SHIP_NONE;
    char *subj, *body;

    c.sender_score = sender_cue(em->from.address, &c.carrier);
    subj = fold(em->subject, 1024);
    c.subject_score = text_cues(subj, 0, &c.status);
    if (c.subject_score > 60) {
        c.subject_score = 60;
    }
    body = fold(em->text, 8192);
    for (size_t i = 0; body && i < DR_ARRAY_LEN(body_phrases); i++) {
        if (strstr(body, body_phrases[i])) {
            c.body_score += 15;
            break;
        }
    }
    if (body) {
        int b = text_cues(body, 1, &body_st) > 0 ? 10 : 0;
        c.body_score += b;
        if (c.status == DR_EMAIL_SHIP_NONE) {
            c.status = body_st;
        }
    }
    if (!c.carrier && body) {
        /* a carrier named as a word in the text */
        static const struct {
            const char *word, *carrier;
        } names[] = {{"ups", "ups"},
                     {"fedex", "fedex"},
                     {"usps", "usps"},
                     {"dhl", "dhl"},
                     {"dpd", "dpd"},
                     {"gls", "gls"},
                     {"royal mail", "royal_mail"},
                     {"inpost", "inpost"},
                     {"hermes", "hermes"},
                     {"evri", "evri"}};
        for (size_t i = 0; i < DR_ARRAY_LEN(names) && !c.carrier; i++) {
            const char *w = names[i].word;
            for (const char *h = strstr(body, w); h; h = strstr(h + 1, w)) {
                size_t k = strlen(w);
                if ((h == body || !is_word_char((unsigned char)h[-1])) &&
                    !is_word_char((unsigned char)h[k])) {
                    c.carrier = names[i].carrier;
                    c.body_score += 5;
                    break;
                }
            }
        }
    }
    if (c.body_score > 25) {
        c.body_score = 25;
    }
    c.score = c.sender_score + c.subject_score + c.body_score;
    if (c.score > 100) {
        c.score = 100;
    }
    g_free(subj);
    g_free(body);
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
