/*
 * Delivery status from the wording of carrier and shop emails and carrier events, in English,
 * German, French, Italian, Spanish, Dutch, Polish and Portuguese.
 *
 * Every rule has a strength: 3 for wording that settles the status ("has been delivered"),
 * 2 for the usual wording ("on its way"), 1 for hints ("expected delivery"). The strongest rule
 * found wins; between equals, the one earliest in the text (headlines come before footers),
 * then the first in the table ("will be delivered today" is out for delivery, not delivered:
 * that rule comes first and its match starts earlier). A delivered rule negated by a word
 * shortly before its match ("not", "nicht", "non", "pas", ...) reads as an exception.
 */
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"
#include "processors/shipment/tracking_int.h"

struct rule {
    enum dr_shipment_status status;
    int strength;
    const char *regex;
};

#define RET DR_SHIP_RETURNED
#define EXC DR_SHIP_EXCEPTION
#define DLV DR_SHIP_DELIVERED
#define OFD DR_SHIP_OUT_FOR_DELIVERY
#define TRN DR_SHIP_IN_TRANSIT
#define LBL DR_SHIP_LABEL_CREATED

static const struct rule rules[] = {
    /* out for delivery (before "delivered": "will be delivered today" starts earlier) */
    {OFD, 3,
     "\\b(?:out\\s+for\\s+delivery|(?:will|to)\\s+be\\s+delivered\\s+today"
     "|(?:delivery|arrives?|arriving|coming)\\s+(?:is\\s+)?today|scheduled\\s+for\\s+delivery\\s+"
     "today"
     "|delivery\\s+(?:is\\s+)?(?:scheduled\\s+)?(?:for\\s+)?today|arriving\\s+(?:soon\\s+)?today"
     "|expects?\\s+to\\s+deliver\\s+your\\s+(?:package|parcel|item)\\s+today"
     "|with\\s+(?:your\\s+|the\\s+)?(?:local\\s+)?(?:\\w+\\s+)?courier(?:\\s+for\\s+delivery)?"
     "|driver\\s+is\\s+(?:arriving|on\\s+(?:the|their)\\s+way)"
     "|on\\s+(?:the\\s+)?(?:\\w+\\s+)?vehicle\\s+for\\s+delivery"
     "|in\\s+zustellung|wird\\s+(?:ihnen\\s+)?heute\\s+zugestellt|kommt\\s+heute|heute\\s+"
     "zugestellt"
     "|zustellung\\s+heute|in\\s+der\\s+zustellung"
     "|in\\s+consegna|(?:sar[àa]|verr[àa])\\s+consegnat[oa]\\s+oggi|consegna\\s+(?:prevista\\s+)?"
     "oggi"
     "|en\\s+reparto|sali[óo]\\s+(?:a|para)\\s+(?:reparto|entrega)|(?:se\\s+entregar[áa]|ser[áa]"
     "\\s+entregad[oa])\\s+hoy"
     "|su\\s+entrega\\s+se\\s+realizar[áa]\\s+hoy|en\\s+ruta\\s+de\\s+entrega|llega\\s+hoy"
     "|en\\s+cours\\s+de\\s+livraison|sera\\s+livr[ée]e?\\s+aujourd|livraison\\s+(?:pr[ée]vue\\s+)?"
     "aujourd"
     "|wordt\\s+vandaag\\s+bezorgd|we\\s+staan\\s+vanda(?:ag|vond)|vandaag\\s+bezorgd|bezorger\\s+"
     "is\\s+onderweg"
     "|wydan[aey]\\s+do\\s+dor[ęe]czenia|przekazan[aey]\\s+(?:kurierowi\\s+)?do\\s+dor[ęe]czenia"
     "|dzi[śs]\\s+dor[ęe]czamy|(?:zostanie|b[ęe]dzie)\\s+(?:dzi[śs]|dzisiaj)(?:\\s+do\\s+pa[ńn]"
     "stwa)?\\s+dor[ęe]czon"
     "|kurier\\s+(?:jest\\s+w\\s+drodze|dor[ęe]czy)|prawie\\s+u\\s+ciebie|u\\s+kuriera"
     "|saiu\\s+para\\s+(?:a\\s+)?entrega|em\\s+rota\\s+de\\s+entrega)"},

    /* delivered, including "waiting at the pickup point / locker" */
    {DLV, 3,
     "\\b(?:(?:has|have|had)\\s+been\\s+(?:successfully\\s+)?delivered|(?:was|were|is)\\s+(?:"
     "successfully\\s+)?delivered"
     "|successfully\\s+delivered|we\\s+(?:have\\s+)?delivered|delivered\\s*:"
     "|(?:package|parcel|item|shipment|order)\\s+delivered|delivery\\s+(?:confirmation|complete[d]?"
     ")"
     "|(?:ready|available)\\s+for\\s+(?:pick\\s*-?\\s*up|collection)|(?:wurde|ist)\\s+(?:"
     "erfolgreich\\s+)?zugestellt"
     "|zugestellt\\s*(?::|am\\b)|ist\\s+angekommen|geliefert\\s*:|wurde\\s+geliefert"
     "|(?:abholbereit|liegt\\s+zur\\s+abholung)"
     "|consegna\\s+effettuata|(?:è|e'|e)\\s+stat[oa]\\s+consegnat[oa]|pronto\\s+per\\s+il\\s+ritiro"
     "|(?:ha\\s+sido|fue)\\s+entregad[oa]|entrega\\s+realizada|listo\\s+para\\s+(?:recoger|"
     "recogida)"
     "|(?:a\\s+[ée]t[ée]|est)\\s+livr[ée]e?|colis\\s+livr[ée]|disponible\\s+en\\s+point\\s+relais"
     "|(?:is|werd)\\s+bezorgd|ligt\\s+klaar"
     "|dor[ęe]czon[aoy]|dostarczon[aoy]|dostarczono\\s*:|odebran[aoy]|potwierdzenie\\s+odbioru"
     "|umieszczon[aoy]\\s+w\\s+paczkomacie|czeka\\s+(?:na\\s+ciebie\\s+)?w\\s+paczkomacie|gotow["
     "aey]\\s+do\\s+odbioru"
     "|(?:foi\\s+)?entregue\\b)"},

    /* returned */
    {RET, 3,
     "\\b(?:return(?:ed|ing)?\\s+to\\s+(?:the\\s+)?(?:sender|shipper|seller|merchant|origin)"
     "|being\\s+returned|on\\s+its\\s+way\\s+back\\s+to"
     "|(?:r[üu]cksendung|zur[üu]ck)\\s+(?:an|zum)\\s+(?:den\\s+)?absender|geht\\s+zur[üu]ck"
     "|(?:an|zum)\\s+(?:den\\s+)?absender\\s+zur[üu]ck"
     "|(?:reso|restituit[oa]|rispedit[oa])\\s+al\\s+mittente|in\\s+restituzione"
     "|devuelt[oa]\\s+al\\s+remitente|devoluci[óo]n\\s+al\\s+remitente"
     "|retourn[ée]e?\\s+(?:à|a)\\s+l.exp[ée]diteur|retour\\s+(?:à|a)\\s+l.exp[ée]diteur"
     "|retour\\s+afzender|teruggestuurd\\s+naar\\s+de\\s+afzender"
     "|zwr[óo]con[aoy]\\s+do\\s+nadawcy|zwrot\\s+do\\s+nadawcy"
     "|devolvid[oa]\\s+ao\\s+remetente)"},

    /* exception */
    {EXC, 3,
     "\\b(?:delivery\\s+exception|shipment\\s+exception|exception\\s*:"
     "|unable\\s+to\\s+deliver|could\\s*n[o']t\\s+(?:be\\s+)?deliver(?:ed)?"
     "|couldn.t\\s+deliver|(?:delivery\\s+)?attempt(?:ed)?\\s+(?:delivery|was\\s+made)"
     "|delivery\\s+attempt(?:ed)?\\b|no\\s+access\\s+to\\s+(?:the\\s+)?delivery\\s+location"
     "|notice\\s+left|no\\s+authori[sz]ed\\s+recipient"
     "|we\\s+missed\\s+you|missed\\s+delivery|failed\\s+delivery|delivery\\s+(?:has\\s+)?failed"
     "|delivery\\s+(?:was\\s+)?unsuccessful|running\\s+late|(?:is|are|been|was)\\s+delayed"
     "|delivery\\s+(?:is\\s+)?delayed|new\\s+(?:scheduled\\s+|estimated\\s+)?delivery\\s+date"
     "|action\\s+required|address\\s+(?:issue|problem|correction)|held\\s+(?:at|in)\\s+customs"
     "|(?:lost|damaged)\\s+(?:in\\s+transit|package|parcel|shipment)"
     "|zustellung\\s+nicht\\s+m[öo]glich|nicht\\s+zugestellt\\s+werden|zustellversuch"
     "|verz[öo]ger(?:t|ung)|wir\\s+haben\\s+sie\\s+nicht\\s+angetroffen"
     "|mancata\\s+consegna|consegna\\s+non\\s+riuscita|in\\s+ritardo|ritardo\\s+nella\\s+consegna"
     "|tentativo\\s+di\\s+consegna|giacenza"
     "|entrega\\s+fallida|intento\\s+de\\s+entrega|incidencia|retrasad[oa]|no\\s+se\\s+pudo\\s+"
     "entregar"
     "|[ée]chec\\s+de\\s+(?:la\\s+)?livraison|tentative\\s+de\\s+livraison|retard(?:é|ée)?\\s"
     "|niet\\s+(?:kunnen\\s+)?bezorgd|bezorgpoging|vertraagd|vertraging"
     "|nieudan[aey]\\s+(?:pr[óo]b[aey]\\s+)?dor[ęe]czeni|awizo|op[óo][źz]nien"
     "|problem\\s+z\\s+dor[ęe]czeniem|nie\\s+uda[łl]o\\s+si[ęe]\\s+dor[ęe]czy[ćc]"
     "|tentativa\\s+de\\s+entrega|atrasad[oa])"},

    /* in transit */
    {TRN, 2,
     "\\b(?:(?:has|have|was|were)\\s+(?:been\\s+)?shipped|shipped\\s*:|in\\s+transit"
     "|on\\s+(?:its|the|their)\\s+way|(?:has|have|was|were)\\s+(?:been\\s+)?dispatched|"
     "dispatched\\s*:"
     "|(?:departed|left)\\s+(?:(?:a|the|our)\\s+)?(?:\\w+\\s+){0,2}(?:facility|hub|depot|warehouse)"
     "|arrived\\s+at\\s+(?:(?:a|the|our)\\s+)?(?:\\w+\\s+){0,2}(?:facility|hub|depot|sort)|(?:"
     "has\\s+been\\s+)?picked\\s+up"
     "|(?:will|should)\\s+(?:arrive|be\\s+delivered)|is\\s+coming|accepted\\s+at|shipping\\s+"
     "confirmation|shipment\\s+confirmation"
     "|unterwegs|(?:wurde|ist)\\s+(?:versandt|verschickt|versendet)|auf\\s+dem\\s+weg|versandbest["
     "äa]tigung"
     "|im\\s+(?:paket|start|ziel)zentrum|(?:è\\s+stat[oa]\\s+)?spedit[oa]\\b|in\\s+transito|in\\s+"
     "viaggio|arriver[àa]"
     "|(?:ha\\s+sido\\s+)?enviad[oa]\\b|en\\s+tr[áa]nsito|en\\s+camino|llegar[áa]"
     "|exp[ée]di[ée]e?\\b|en\\s+transit|en\\s+route|en\\s+cours\\s+d.acheminement|arrivera"
     "|verzonden|onderweg|is\\s+verstuurd"
     "|w\\s+drodze|nadan[aoy]\\b|wys[łl]an[aeoy]\\b|w\\s+transporcie|w\\s+doręczeniu"
     "|em\\s+tr[âa]nsito|a\\s+caminho|objeto\\s+postado)"},

    /* label created */
    {LBL, 2,
     "\\b(?:(?:shipping\\s+)?label\\s+(?:has\\s+been\\s+)?created|label\\s+created"
     "|(?:shipment|shipping|order)\\s+information\\s+(?:received|sent)|pre-?shipment"
     "|electronic\\s+(?:shipping\\s+)?(?:info|notification)\\s+received|ready\\s+to\\s+ship"
     "|awaiting\\s+(?:item|collection|pick\\s*-?up\\s+by\\s+carrier)"
     "|sendungsdaten\\s+(?:wurden\\s+)?(?:elektronisch\\s+)?[üu]bermittelt|versandetikett\\s+(?:"
     "wurde\\s+)?erstellt"
     "|etichetta\\s+(?:di\\s+spedizione\\s+)?creata|in\\s+attesa\\s+di\\s+ritiro"
     "|etiqueta\\s+(?:de\\s+env[íi]o\\s+)?creada|pendiente\\s+de\\s+recogida"
     "|[ée]tiquette\\s+(?:d.exp[ée]dition\\s+)?cr[ée]{2}e|colis\\s+en\\s+pr[ée]paration"
     "|label\\s+aangemaakt|zending\\s+(?:is\\s+)?aangemeld|verzendlabel\\s+aangemaakt"
     "|przygotowan[aey]\\s+przez\\s+nadawc[ęe]|etykiet[ay]\\s+(?:zosta[łl]a\\s+)?utworzon"
     "|etiqueta\\s+criada)"},

    /* weaker hints */
    {TRN, 1,
     "\\b(?:expected\\s+delivery|estimated\\s+delivery|arriving\\b|voraussichtliche\\s+zustellung"
     "|consegna\\s+prevista|entrega\\s+(?:prevista|estimada)|livraison\\s+pr[ée]vue"
     "|verwachte\\s+bezorg|przewidywan[aey]\\s+(?:termin|data)\\s+dor[ęe]czenia)"},
    {TRN, 1, "\\b(?:shipped|dispatched|versandt|spedito|enviado|exp[ée]di[ée])\\b"},
    {DLV, 1, "\\b(?:delivered|zugestellt|consegnat[oa]|entregad[oa]|livr[ée]e?|bezorgd)\\b"},
};

#define NRULES (sizeof(rules) / sizeof(rules[0]))
#define RULE_OPTIONS                                                                               \
    (PCRE2_CASELESS | PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_MULTILINE)
/* Longer than any phrase above. */
#define MAX_PHRASE 160

static pcre2_code *codes[NRULES];
static struct dr__wordset rule_set;

static pcre2_code *compile_one(const char *re)
{
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *code;

    code =
        pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, RULE_OPTIONS, &errcode, &erroff, NULL);
    if (!code) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        DR_ERROR("shipment", "status pattern does not compile", "offset=%zu error=\"%s\"",
                 (size_t)erroff, (const char *)msg);
        return NULL;
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    return code;
}

int dr__status_compile(void)
{
    const char *regexes[NRULES];

    for (size_t i = 0; i < NRULES; i++) {
        codes[i] = compile_one(rules[i].regex);
        if (!codes[i]) {
            return DR_EINVAL;
        }
        regexes[i] = rules[i].regex;
    }
    return dr__wordset_compile(&rule_set, DR__WORDSET_STATUS, regexes, NRULES, RULE_OPTIONS);
}

void dr__status_free(void)
{
    for (size_t i = 0; i < NRULES; i++) {
        pcre2_code_free(codes[i]);
        codes[i] = NULL;
    }
    dr__wordset_free(&rule_set);
}

size_t dr__status_regexes(const char **out, size_t max, uint32_t *options)
{
    for (size_t i = 0; i < NRULES && i < max; i++) {
        out[i] = rules[i].regex;
    }
    *options = RULE_OPTIONS;
    return NRULES;
}

const struct dr__wordset *dr__status_wordset(void)
{
    return &rule_set;
}

/* ---- negation ------------------------------------------------------------------------------
 * "was not delivered", "Nicht zugestellt", "n'a pas été livré": a delivered rule whose match a
 * negation comes shortly before says the parcel is not delivered. Carriers word that as an
 * exception (attempted, refused, no access); read as delivered it would end the shipment for good,
 * since the store never moves a delivered shipment back (dr/shipment_store.h). */

/* Words read back from a match, within its clause, for a negation. */
#define NEGATION_WORDS 3

static const char *const negations[] = {
    "not", "never",  "no",    "cannot", "nicht", "nie",   "kein", "keine", "pas",
    "non", "jamais", "nunca", "jamás",  "niet",  "nooit", "geen", "nigdy", "não",
};

/* Lower-cased word w[0..n) (ASCII letters and the Latin-1 capitals) into out; 0 when it does not
 * fit. */
static int fold_word(const char *w, size_t n, char *out, size_t outsz)
{
    if (n >= outsz) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)w[i];
        if (c >= 'A' && c <= 'Z') {
            c += 32;
        } else if (i > 0 && (unsigned char)w[i - 1] == 0xC3 && c >= 0x80 && c <= 0x9E &&
                   c != 0x97) {
            c += 0x20; /* À..Þ -> à..þ */
        }
        out[i] = (char)c;
    }
    out[n] = '\0';
    return 1;
}

/* Words that join two clauses: a negation before one says nothing of the other. */
static const char *const conjunctions[] = {"but",  "and", "so",   "aber", "und",
                                           "mais", "et",  "pero", "maar", "ale"};

static int in_list(const char *low, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(low, list[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int is_conjunction(const char *w, size_t n)
{
    char low[8];

    return fold_word(w, n, low, sizeof(low)) &&
           in_list(low, conjunctions, DR_ARRAY_LEN(conjunctions));
}

static int is_negation(const char *w, size_t n, const char *next, size_t next_n)
{
    char low[16], after[8];

    if (!fold_word(w, n, low, sizeof(low))) {
        return 0;
    }
    /* didn't, wasn't, hasn't, couldn't (with ' or U+2019) */
    if ((n > 3 && strcmp(low + n - 3, "n't") == 0) ||
        (n > 5 && strcmp(low + n - 5, "n\xE2\x80\x99t") == 0)) {
        return 1;
    }
    /* "has yet to be delivered" */
    if (strcmp(low, "yet") == 0) {
        return next && fold_word(next, next_n, after, sizeof(after)) && strcmp(after, "to") == 0;
    }
    return in_list(low, negations, DR_ARRAY_LEN(negations));
}

static int word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '\'' || c >= 0x80;
}

/* 1 when one of the NEGATION_WORDS words before t[pos] (not before from) negates what starts at
 * pos. The look-back stops at the end of a clause (a line break, punctuation, "but", "and") and
 * at a word holding a digit ("Parcel No 4711 delivered" names a number). */
static int negated(const char *t, size_t from, size_t pos)
{
    const char *next = NULL;
    size_t next_n = 0, p = pos;

    for (int words = 0; words < NEGATION_WORDS;) {
        size_t end, start;

        while (p > from && (t[p - 1] == ' ' || t[p - 1] == '\t' || t[p - 1] == '-')) {
            p--;
        }
        if (p == from || !word_byte((unsigned char)t[p - 1])) {
            return 0; /* the start of the text, or punctuation: the clause began */
        }
        end = p;
        while (p > from && word_byte((unsigned char)t[p - 1])) {
            p--;
        }
        start = p;
        for (size_t i = start; i < end; i++) {
            if (t[i] >= '0' && t[i] <= '9') {
                return 0;
            }
        }
        if (is_conjunction(t + start, end - start)) {
            return 0;
        }
        if (is_negation(t + start, end - start, next, next_n)) {
            return 1;
        }
        next = t + start;
        next_n = end - start;
        words++;
    }
    return 0;
}

/* Start of the first match of rule i in t[from..limit), or -1. at: the rule set's word starts of
 * t, NULL to search without them (out of memory). */
static long first_match(size_t i, const char *t, size_t from, size_t limit,
                        const struct dr__wordstarts *at, pcre2_match_data *md)
{
    size_t cursor = 0;

    if (at) {
        if (!dr__wordset_find(&rule_set, i, t, at, &cursor, from, limit, md)) {
            return -1;
        }
    } else if (pcre2_match(codes[i], (PCRE2_SPTR)t, limit, from, 0, md, NULL) < 0) {
        return -1;
    }
    return (long)pcre2_get_ovector_pointer(md)[0];
}

enum dr_shipment_status dr__status_scan_at(const char *t, size_t from, size_t to,
                                           const struct dr__wordstarts *at, pcre2_match_data *md,
                                           int *strength)
{
    enum dr_shipment_status best = DR_SHIP_UNKNOWN;
    int best_strength = 0;
    size_t best_pos = 0;

    for (size_t i = 0; i < NRULES; i++) {
        size_t pos, limit = to;
        long found;

        if (rules[i].strength < best_strength) {
            continue;
        }
        /* an equal rule must start before the best so far: no need to read far past it */
        if (rules[i].strength == best_strength && best_strength && best_pos + MAX_PHRASE < to) {
            limit = best_pos + MAX_PHRASE;
        }
        found = first_match(i, t, from, limit, at, md);
        if (found < 0) {
            continue;
        }
        pos = (size_t)found;
        if (rules[i].strength > best_strength || pos < best_pos) {
            /* Later matches of rule i cannot win over its first: only the first is judged. */
            best = rules[i].status == DR_SHIP_DELIVERED && negated(t, from, pos) ? DR_SHIP_EXCEPTION
                                                                                 : rules[i].status;
            best_strength = rules[i].strength;
            best_pos = pos;
        }
    }
    if (strength) {
        *strength = best_strength;
    }
    return best;
}

enum dr_shipment_status dr__status_scan(const char *text, size_t len, pcre2_match_data *md,
                                        int *strength)
{
    struct dr__wordstarts at = {0};
    enum dr_shipment_status s;
    int have_at;

    have_at = dr__wordset_scan(&rule_set, text, len, md, &at) == DR_OK;
    s = dr__status_scan_at(text, 0, len, have_at ? &at : NULL, md, strength);
    dr__wordstarts_cleanup(&at);
    return s;
}

static const char *const names[] = {
    [DR_SHIP_UNKNOWN] = "unknown",       [DR_SHIP_LABEL_CREATED] = "label_created",
    [DR_SHIP_IN_TRANSIT] = "in_transit", [DR_SHIP_OUT_FOR_DELIVERY] = "out_for_delivery",
    [DR_SHIP_DELIVERED] = "delivered",   [DR_SHIP_EXCEPTION] = "exception",
    [DR_SHIP_RETURNED] = "returned",
};

const char *dr_shipment_status_name(enum dr_shipment_status s)
{
    if ((unsigned)s >= DR_ARRAY_LEN(names)) {
        return "unknown";
    }
    return names[s];
}

int dr_shipment_status_parse(const char *name, enum dr_shipment_status *out)
{
    if (!name || !out) {
        return DR_EINVAL;
    }
    for (size_t i = 0; i < DR_ARRAY_LEN(names); i++) {
        if (strcmp(names[i], name) == 0) {
            *out = (enum dr_shipment_status)i;
            return DR_OK;
        }
    }
    return DR_EINVAL;
}

/* A text that is only a status name, in any case, with blanks for underscores ("Exception",
 * "IN TRANSIT"): what carrier events often say. In free text such a word says little ("as a
 * special exception"), so the rules do not look for it. */
static int status_named(const char *text, size_t len, enum dr_shipment_status *out)
{
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
                   text[len - 1] == '\r' || text[len - 1] == '.')) {
        len--;
    }
    while (len && (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')) {
        text++;
        len--;
    }
    for (size_t i = 1; i < DR_ARRAY_LEN(names); i++) {
        size_t k = 0;

        if (strlen(names[i]) != len) {
            continue;
        }
        for (; k < len; k++) {
            char c = text[k] >= 'A' && text[k] <= 'Z' ? (char)(text[k] + 32) : text[k];
            if (c != names[i][k] && !(c == ' ' && names[i][k] == '_')) {
                break;
            }
        }
        if (k == len) {
            *out = (enum dr_shipment_status)i;
            return 1;
        }
    }
    return 0;
}

enum dr_shipment_status dr_shipment_status_from_text(const char *text, size_t len)
{
    enum dr_shipment_status s = DR_SHIP_UNKNOWN;
    struct dr_buf plain;
    pcre2_match_data *md;

    if (!text || len == 0 || len > DR_SHIPMENT_MAX_INPUT || dr__shipment_ready() != DR_OK) {
        return DR_SHIP_UNKNOWN;
    }
    if (status_named(text, len, &s)) {
        return s;
    }
    md = dr__match_data();
    if (!md) {
        return DR_SHIP_UNKNOWN;
    }
    dr_buf_init(&plain, len + 1024);
    if (dr__looks_html(text, len) && dr__html_to_text(text, len, &plain) == DR_OK) {
        s = dr__status_scan(plain.data ? plain.data : "", plain.len, md, NULL);
    } else {
        s = dr__status_scan(text, len, md, NULL);
    }
    dr_buf_cleanup(&plain);
    pcre2_match_data_free(md);
    return s;
}
