/*
 * Reply extraction. The text is split into lines and every line gets a mark:
 *
 *   e  blank                     m  quoted ('>')
 *   s  part of a quote header    f  "---- Forwarded message ----"
 *   t  anything else (presumably the new message)
 *
 * Header patterns run on a window of a few lines starting at the current one, so headers that
 * mail clients wrap over several lines are found. The marks then decide what to drop: a header
 * followed by unquoted text starts the earlier message, which runs to the end; a header or a
 * block of quoted lines followed by more quoted lines is a quotation, and text after it (bottom
 * posting, inline replies) is kept. Signatures are cut from each block of kept text.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "dr/reply.h"

#include <pcre2.h>
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"

/* Longest line that may start a header, and the most lines/bytes a header may span. */
#define HDR_MAX_LINE   1000
#define HDR_MAX_LINES  5
#define HDR_MAX_WINDOW 800
/* A header that shares its line with reply text is looked for in lines up to this long, at no
 * more than this many places per line. */
#define MID_MAX_LINE  300
#define MID_MAX_TRIES 4
/* After this many matches stopped by PCRE2 limits the input is hostile: stop looking for
 * headers in it. */
#define MAX_LIMIT_HITS 16
/* PCRE2 limits for every match: a failed match on a hostile window is just "no header". */
#define MATCH_LIMIT 50000
#define DEPTH_LIMIT 20000

/* Words that open an "On <date>, <who> wrote:" header, by language. */
#define INTRO                                                                                      \
    "(?:On|Le|Am|El|Il(?:[ \\t]+giorno)?|Op|W[ \\t]+dniu|Em|P\xc3\xa5|Den|V\xc3\xa0o|Dne|Dnia|"    \
    "\xd0\x92)"
/* Verbs that close it. */
#define VERB                                                                                       \
    "(?:wrote|sent|a[ \\t]+\xc3\xa9"                                                               \
    "crit|schrieb|escribi\xc3\xb3|escribio|ha[ \\t]+scritto|"                                      \
    "schreef|verzond|geschreven|napisa\xc5\x82|napisa\xc5\x82"                                     \
    "a|pisze|escreveu|skrev|kirjoitti|"                                                            \
    "\xd0\xbd\xd0\xb0\xd0\xbf\xd0\xb8\xd1\x81\xd0\xb0\xd0\xbb(?:\xd0\xb0)?|"                       \
    "\xd0\xbf\xd0\xb8\xd1\x88\xd0\xb5\xd1\x82|\xc4\x91\xc3\xa3[ "                                  \
    "\\t]+vi\xe1\xba\xbft|yazd\xc4\xb1|"                                                           \
    "napsal|\xc3\xadrta)(?:[ \\t]*\\((?:a|\xd0\xb0)\\))?"

/* Capitalised words that start an answer, never a name that signs a message off. */
#define NOT_A_NAME                                                                                 \
    "(?:(?:Mon|Tues?|Wed(?:nes)?|Thu(?:rs?)?|Fri|Sat(?:ur)?|Sun)(?:day)?|Yes|No|Nope|Maybe|Ok|"    \
    "Okay|Sure|Fine|Works?|Perfect|Great|Good)"

enum pat {
    P_ON,         /* [prefix] On <date...>, <who> wrote: (up to HDR_MAX_LINES lines) */
    P_DATE_EMAIL, /* <date> <who> <address>: (Gmail in several languages, Android) */
    P_WHO_FIRST,  /* <who> <address>[, <date>] ... wrote [(<date>)]: (Gmail tr, hu; lines) */
    P_WROTE,      /* <who> wrote: on one line; accepted only with extra evidence */
    P_ORIGINAL,   /* -----Original Message----- and translations */
    P_BEGIN_FWD,  /* Begin forwarded message: */
    P_FWD,        /* ---------- Forwarded message ---------- */
    P_HDR_FIRST,  /* From: / Date: / Sent: that opens an Outlook-style header block */
    P_HDR_ANY,    /* any field of such a block */
    P_SIG_MOBILE, /* Sent from my iPhone, Get Outlook for iOS, ... */
    P_SIG_NAME,   /* -Name, -First Last */
    P_COUNT
};

static const struct {
    const char *re;
    uint32_t opts;
} pat_src[P_COUNT] = {
    /* Blank lines inside the header only before a wrapped "<address>" (Polymail). The window
     * (HDR_MAX_WINDOW) bounds the lazy repeat. */
    [P_ON] = {"\\A[ \\t]*-*[ \\t]*" INTRO
              "[ \\t][^\\n\\d]{0,300}+\\d(?:[^\\n]|\\n(?![ \\t]*\\n)|\\n[ \\t]*\\n(?=[ \\t]*<))"
              "*?" VERB "(?:[ \\t]*:?[ \\t]*-*|[ \\t]+[^\\n]{1,200}?:)[ \\t]*$",
              PCRE2_CASELESS | PCRE2_MULTILINE},
    [P_DATE_EMAIL] =
        {"\\A[ \\t]*(?:[^\\s\\d,]{2,12}\\.?,?[ \\t]+)?"
         "(?:\\d{1,4}[./-]\\d{1,2}[./-]\\d{1,4}|\\d{1,2}\\.?[ \\t]+[^\\s\\d]{3,12}\\.?,?"
         "[ \\t]+\\d{4})[^\\n]{0,200}?(?:\\n[^\\n]{0,200}?){0,2}?"
         "[^\\s<>@\"]+@[^\\s<>@\"]+[ \\t]*>(?:[ \\t]*" VERB ")?[ \\t]*:?[ \\t]*$",
         PCRE2_CASELESS | PCRE2_MULTILINE},
    /* The sender first, the verb last, the date between them or in parentheses after the verb
     * ("Dana <d@example.com>, 2 Mar 2026 Pzt, 09:15 tarihinde şunu yazdı:", "Dana <d@example.com>
     * ezt írta (időpont: 2026. márc. 2., H, 9:15):"), wrapped over lines without a blank one;
     * the <address> and a digit of the date on its line or the next make it a header, not prose
     * naming someone ("loop in Bob <bob@example.com>, he has the list of rooms I sent:").
     * Possessive where a run ends at a character it cannot hold: no backtracking there. */
    [P_WHO_FIRST] = {"\\A[ \\t]*+[^\\n<>]{0,200}+<[^\\s<>@\"]+@[^\\s<>@\"]+>"
                     "(?=[^\\n\\d]{0,300}+\\d|[^\\n]*+\\n[^\\n\\d]{0,300}+\\d)"
                     "(?:[^\\n]|\\n(?![ \\t]*\\n)){0,300}?[ \\t]" VERB
                     "(?:[ \\t]*\\((?:[^()\\n]|\\n(?![ \\t]*\\n)){0,200}\\))?[ \\t]*:[ \\t]*$",
                     PCRE2_CASELESS | PCRE2_MULTILINE},
    [P_WROTE] = {"\\A[ \\t]*-*[ \\t]*[^\\n]{1,200}?[ \\t>]" VERB "[ \\t]*(:?)[ \\t]*(-*)[ \\t]*$",
                 PCRE2_CASELESS | PCRE2_MULTILINE},
    [P_ORIGINAL] =
        {"\\A[ \\t]*-{2,}[ \\t]*(?:Original[ \\t]+Message|Reply[ \\t]+Message|"
         "Urspr\xc3\xbcngliche[ \\t]+Nachricht|Original-Nachricht|Antwort[ \\t]+"
         "Nachricht|Oprindelig[ \\t]+meddelelse|Message[ \\t]+d'origine|Mensaje[ \\t]+"
         "original|Messaggio[ \\t]+originale|Oorspronkelijk[ \\t]+bericht|"
         "Originalmeddelande|Opprinnelig[ \\t]+melding|Alkuper\xc3\xa4inen[ \\t]+viesti|"
         "Wiadomo\xc5\x9b\xc4\x87[ \\t]+oryginalna|P\xc5\xafvodn\xc3\xad[ \\t]+zpr\xc3\xa1va|"
         "Mensagem[ \\t]+original|\xd0\x98\xd1\x81\xd1\x85\xd0\xbe\xd0\xb4\xd0\xbd\xd0\xbe"
         "\xd0\xb5[ \\t]+\xd1\x81\xd0\xbe\xd0\xbe\xd0\xb1\xd1\x89\xd0\xb5\xd0\xbd\xd0\xb8"
         "\xd0\xb5)[ \\t]*-{2,}[ \\t]*$",
         PCRE2_CASELESS | PCRE2_MULTILINE},
    [P_BEGIN_FWD] = {"\\A[ \\t]*(?:Begin[ \\t]+forwarded[ \\t]+message|D\xc3\xa9"
                     "but[ \\t]+du[ \\t]+"
                     "message[ \\t]+r\xc3\xa9"
                     "exp\xc3\xa9"
                     "di\xc3\xa9|Anfang[ \\t]+der[ \\t]+"
                     "weitergeleiteten[ \\t]+Nachricht|Inicio[ \\t]+del[ \\t]+mensaje[ \\t]+"
                     "reenviado|Inizio[ \\t]+messaggio[ \\t]+inoltrato)[ \\t]*:?[ \\t]*$",
                     PCRE2_CASELESS | PCRE2_MULTILINE},
    [P_FWD] = {"\\A[ \\t]*-{2,}[ \\t]*(?:Forwarded[ \\t]+message|Weitergeleitete[ \\t]+Nachricht|"
               "Message[ \\t]+transf\xc3\xa9r\xc3\xa9|Mensaje[ \\t]+reenviado|Messaggio[ \\t]+"
               "inoltrato|Doorgestuurd[ \\t]+bericht)[ \\t]*-{2,}[ \\t]*$",
               PCRE2_CASELESS | PCRE2_MULTILINE},
    [P_HDR_FIRST] =
        {"\\A[ \\t]*[*_]{0,2}(?:From|Von|De|Da|Van|Fra|Fr\xc3\xa5n|Od|\xd0\x9e\xd1\x82|"
         "Date|Datum|Sent|Gesendet|Envoy\xc3\xa9|Inviato|Enviado|Verzonden|Skickat|Sendt|"
         "Wys\xc5\x82\x61no|Fecha)[*_]{0,2}[ \\t]?[*_]{0,2}:",
         PCRE2_CASELESS},
    [P_HDR_ANY] =
        {"\\A[ \\t]*[*_]{0,2}(?:From|Von|De|Da|Van|Fra|Fr\xc3\xa5n|Od|\xd0\x9e\xd1\x82|"
         "Date|Datum|Sent|Gesendet|Envoy\xc3\xa9|Inviato|Enviado|Verzonden|Skickat|Sendt|"
         "Wys\xc5\x82\x61no|Fecha|To|An|\xc3\x80|A|Para|Aan|Till|Til|Do|Cc|Bcc|Kopie|Reply-To|"
         "Subject|Betreff|Objet|Oggetto|Asunto|Onderwerp|\xc3\x84mne|Emne|Temat|Assunto|"
         "\xd0\x9a\xd0\xbe\xd0\xbc\xd1\x83|\xd0\xa2\xd0\xb5\xd0\xbc\xd0\xb0)"
         "[*_]{0,2}[ \\t]?[*_]{0,2}:",
         PCRE2_CASELESS},
    [P_SIG_MOBILE] =
        {"\\A[ \\t]*(?:(?:Sent|Envoy\xc3\xa9|Enviado|Inviato|Verzonden|Gesendet|Skickat|"
         "Sendt)[ \\t]+(?:from|with|via|using|de|desde|da|von|met|vanaf|fr\xc3\xa5n|fra)"
         "(?:[ \\t]+[^\\s,;!?()]+){1,6}|Von[ \\t]+meinem(?:[ \\t]+[^\\s,;!?()]+){1,4}"
         "[ \\t]+gesendet|Get[ \\t]+Outlook[ \\t]+for[ \\t]+(?:iOS|Android)|"
         "\xd0\x9e\xd1\x82\xd0\xbf\xd1\x80\xd0\xb0\xd0\xb2\xd0\xbb\xd0\xb5\xd0\xbd\xd0\xbe"
         "(?:[ \\t]+[^\\s,;!?()]+){1,5})(?:[ \\t]*\\([^()\\n]{0,120}\\))?[ \\t]*$",
         PCRE2_CASELESS},
    /* A name: capitalised words ("-Abhishek Kona"), name particles between them ("- Dan van
     * Dyke"), not an answer ("- Wednesday works", "- Yes") */
    [P_SIG_NAME] = {"\\A[ \\t]*-[ \\t]?(?!" NOT_A_NAME "\\b)[A-Z][^\\s,;:!?]{0,30}"
                    "(?:(?:[ \\t]+(?:van|von|de|der|den|da|di|du|la|le|del|bin|al|ter|ten)){0,2}"
                    "[ \\t]+[A-Z][^\\s,;:!?]{0,30}){0,2}[ \\t]*$",
                    0},
};

static pcre2_code *pats[P_COUNT];
static pcre2_match_context *mctx;
static pthread_once_t pats_once = PTHREAD_ONCE_INIT;
static int pats_ok;

static void pats_init(void)
{
    for (int i = 0; i < P_COUNT; i++) {
        int errcode;
        PCRE2_SIZE erroff;
        pats[i] = pcre2_compile((PCRE2_SPTR)pat_src[i].re, PCRE2_ZERO_TERMINATED, pat_src[i].opts,
                                &errcode, &erroff, NULL);
        if (!pats[i]) {
            DR_ERROR("reply", "pattern failed to compile", "pattern=%d offset=%zu code=%d", i,
                     (size_t)erroff, errcode);
            return;
        }
        /* JIT is an optimisation only: the interpreter runs the pattern if it is unavailable. */
        (void)pcre2_jit_compile(pats[i], PCRE2_JIT_COMPLETE);
    }
    mctx = pcre2_match_context_create(NULL);
    if (!mctx) {
        return;
    }
    pcre2_set_match_limit(mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(mctx, DEPTH_LIMIT);
    pats_ok = 1;
}

struct line {
    size_t off;
    size_t len;
    char mark;
};

struct doc {
    char *text; /* normalised: LF line ends, no NUL bytes */
    size_t len;
    struct line *lines;
    size_t n;
    size_t cap;
    pcre2_match_data *md;
    int limit_hits;
};

/* Matches pattern p against s[0..n). Returns 1 and the end offset of the match (and of group 1
 * and 2 when asked), 0 when there is no match (including hitting a limit). */
static int match(struct doc *d, enum pat p, const char *s, size_t n, size_t *end)
{
    int rc;

    if (d->limit_hits >= MAX_LIMIT_HITS) {
        return 0;
    }
    rc = pcre2_match(pats[p], (PCRE2_SPTR)s, n, 0, 0, d->md, mctx);
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        d->limit_hits++;
    }
    if (rc < 0) {
        return 0;
    }
    if (end) {
        *end = pcre2_get_ovector_pointer(d->md)[1];
    }
    return 1;
}

/* Start and end of capture group g of the last match, or 0 when it did not take part. */
static int group(struct doc *d, int g, size_t *so, size_t *eo)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(d->md);
    if (g >= (int)pcre2_get_ovector_count(d->md) || ov[2 * g] == PCRE2_UNSET) {
        return 0;
    }
    *so = ov[2 * g];
    *eo = ov[2 * g + 1];
    return 1;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\f' && s[i] != '\v') {
            /* U+00A0 (no-break space) is common in HTML-converted text. */
            if ((unsigned char)s[i] == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] == 0xa0) {
                i++;
                continue;
            }
            return 0;
        }
    }
    return 1;
}

static const char *line_ptr(const struct doc *d, size_t i)
{
    return d->text + d->lines[i].off;
}

static int add_line(struct doc *d, size_t off, size_t len)
{
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 64;
        struct line *nl = realloc(d->lines, ncap * sizeof(*nl));
        if (!nl) {
            return DR_ENOMEM;
        }
        d->lines = nl;
        d->cap = ncap;
    }
    d->lines[d->n].off = off;
    d->lines[d->n].len = len;
    d->lines[d->n].mark = 't';
    d->n++;
    return DR_OK;
}

static int normalise(struct doc *d, const char *text, size_t len)
{
    size_t o = 0, start = 0;
    int err;

    d->text = malloc(len + 1);
    if (!d->text) {
        return DR_ENOMEM;
    }
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\r') {
            if (i + 1 < len && text[i + 1] == '\n') {
                continue;
            }
            c = '\n';
        } else if (c == '\0') {
            c = ' ';
        }
        d->text[o++] = c;
    }
    d->text[o] = '\0';
    d->len = o;

    /* The last entry may hold many lines when the cap is reached: it is classified by its first
     * character and kept or dropped as one block. */
    for (size_t i = 0; i <= o; i++) {
        if (i == o || (d->text[i] == '\n' && d->n < DR_REPLY_MAX_LINES)) {
            err = add_line(d, start, i - start);
            if (err) {
                return err;
            }
            start = i + 1;
        }
    }
    return DR_OK;
}

/* A line of the earlier message starting with '>' may really be the end of a wrapped link
 * ("<http://...\n>") from the line above. */
static int closes_link(const struct doc *d, size_t i)
{
    const char *p, *s;
    size_t n;

    if (i == 0) {
        return 0;
    }
    s = line_ptr(d, i - 1);
    n = d->lines[i - 1].len;
    p = memmem(s, n, "<http", 5);
    return p && !memchr(p, '>', n - (size_t)(p - s));
}

static int quote_char_at(const struct doc *d, size_t i)
{
    const char *s = line_ptr(d, i);
    size_t n = d->lines[i].len, k = 0;
    while (k < n && (s[k] == ' ' || s[k] == '\t')) {
        k++;
    }
    return k < n && s[k] == '>';
}

/* 1 when s starts with a word that may open an "On ... wrote:" header. */
static int intro_at(const char *s, size_t n)
{
    static const char *const words[] = {"on ",         "le ",     "am ",   "el ",        "il ",
                                        "op ",         "w dniu ", "em ",   "p\xc3\xa5 ", "den ",
                                        "v\xc3\xa0o ", "dne ",    "dnia ", "\xd0\x92 "};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t k = strlen(words[i]);
        if (n > k && strncasecmp(s, words[i], k) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Bytes of the window of lines [i, i + HDR_MAX_LINES) that a header may span. */
static size_t window_len(const struct doc *d, size_t i)
{
    size_t last = i + HDR_MAX_LINES - 1 < d->n ? i + HDR_MAX_LINES - 1 : d->n - 1;
    size_t end = d->lines[last].off + d->lines[last].len;
    size_t n = end - d->lines[i].off;
    return n > HDR_MAX_WINDOW ? HDR_MAX_WINDOW : n;
}

/* Number of lines a match of n bytes starting at line i covers. */
static size_t span_lines(const struct doc *d, size_t i, size_t n)
{
    const char *s = line_ptr(d, i);
    size_t k = 1;
    for (size_t j = 0; j < n; j++) {
        if (s[j] == '\n') {
            k++;
        }
    }
    if (n > 0 && s[n - 1] == '\n') {
        k--;
    }
    return k;
}

static size_t next_nonblank(const struct doc *d, size_t j)
{
    while (j < d->n && is_blank(line_ptr(d, j), d->lines[j].len)) {
        j++;
    }
    return j;
}

/* Splits line i at byte offset at: [0, cut) stays line i, [at, len) becomes line i + 1. */
static int split_line(struct doc *d, size_t i, size_t cut, size_t at)
{
    struct line tail;
    int err;

    tail.off = d->lines[i].off + at;
    tail.len = d->lines[i].len - at;
    tail.mark = 't';
    err = add_line(d, 0, 0);
    if (err) {
        return err;
    }
    memmove(&d->lines[i + 2], &d->lines[i + 1], (d->n - i - 2) * sizeof(d->lines[0]));
    d->lines[i + 1] = tail;
    d->lines[i].len = cut;
    return DR_OK;
}

/*
 * How many lines starting at line i form a quote header (0 if none). May split line i when a
 * header follows reply text on the same line, in which case the header starts at line i + 1.
 */
static int header_at(struct doc *d, size_t i, size_t *nlines, size_t *first)
{
    static const enum pat addr_pats[] = {P_DATE_EMAIL, P_WHO_FIRST};
    const char *s = line_ptr(d, i);
    size_t n = window_len(d, i), end;
    int err;

    *nlines = 0;
    *first = i;
    if (match(d, P_ORIGINAL, s, d->lines[i].len, NULL) ||
        match(d, P_BEGIN_FWD, s, d->lines[i].len, NULL)) {
        *nlines = 1;
        return DR_OK;
    }
    if (match(d, P_HDR_FIRST, s, d->lines[i].len, NULL)) {
        /* An Outlook block: another field within the next two lines, then any further fields. */
        for (size_t j = i + 1; j < d->n && j <= i + 2; j++) {
            if (match(d, P_HDR_ANY, line_ptr(d, j), d->lines[j].len, NULL)) {
                size_t k = j + 1;
                while (k < d->n && k < i + 12 &&
                       match(d, P_HDR_ANY, line_ptr(d, k), d->lines[k].len, NULL)) {
                    k++;
                }
                *nlines = k - i;
                return DR_OK;
            }
        }
    }
    if (match(d, P_ON, s, n, &end)) {
        *nlines = span_lines(d, i, end);
        return DR_OK;
    }
    if (d->lines[i].len <= MID_MAX_LINE) {
        /* "Thanks! On Mon, ... wrote:": reply text and header share the line. */
        size_t tries = 0;
        for (size_t k = 1; k + 2 < d->lines[i].len && tries < MID_MAX_TRIES; k++) {
            size_t cut = k, at = k;
            if (!(s[k - 1] == ' ' || s[k - 1] == '\t' || s[k - 1] == '-') ||
                !intro_at(s + k, d->lines[i].len - k)) {
                continue;
            }
            tries++;
            while (cut > 0 && (s[cut - 1] == ' ' || s[cut - 1] == '\t' || s[cut - 1] == '-')) {
                cut--;
            }
            if (cut == 0 || !match(d, P_ON, s + at, n - at, &end)) {
                continue;
            }
            err = split_line(d, i, cut, at);
            if (err) {
                return err;
            }
            *first = i + 1;
            *nlines = span_lines(d, i + 1, end);
            return DR_OK;
        }
    }
    /* an attribution with the address in it, the date before or after the name */
    for (size_t k = 0; k < DR_ARRAY_LEN(addr_pats); k++) {
        if (match(d, addr_pats[k], s, n, &end)) {
            *nlines = span_lines(d, i, end);
            return DR_OK;
        }
    }
    if (match(d, P_WROTE, s, d->lines[i].len, &end)) {
        /* "<who> wrote:" alone is too weak: it needs an address, dashes around it, or quoted
         * lines right below. */
        size_t cso, ceo, dso, deo;
        int colon = group(d, 1, &cso, &ceo) && ceo > cso;
        int dashes = group(d, 2, &dso, &deo) && deo > dso;
        size_t j = next_nonblank(d, i + 1);
        if (memchr(s, '@', d->lines[i].len) || dashes ||
            (colon && j < d->n && quote_char_at(d, j))) {
            *nlines = 1;
        }
    }
    return DR_OK;
}

/* A horizontal rule line ("-----", "_____", "=====") that often sits above a header. */
static int is_rule(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-' || s[i] == '_' || s[i] == '=' || s[i] == '*') {
            k++;
        } else if (s[i] != ' ' && s[i] != '\t') {
            return 0;
        }
    }
    return k >= 2;
}

static int mark_lines(struct doc *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const char *s = line_ptr(d, i);
        size_t n = d->lines[i].len, hl, first;
        int err;

        if (is_blank(s, n)) {
            d->lines[i].mark = 'e';
            continue;
        }
        if (quote_char_at(d, i) && !closes_link(d, i)) {
            d->lines[i].mark = 'm';
            continue;
        }
        d->lines[i].mark = 't';
        if (n > HDR_MAX_LINE || i + 1 >= DR_REPLY_MAX_LINES) {
            continue;
        }
        if (match(d, P_FWD, s, n, NULL)) {
            d->lines[i].mark = 'f';
            continue;
        }
        err = header_at(d, i, &hl, &first);
        if (err) {
            return err;
        }
        if (hl == 0) {
            continue;
        }
        for (size_t k = first; k < first + hl && k < d->n; k++) {
            d->lines[k].mark = 's';
        }
        /* A rule just above the header belongs to it. */
        for (size_t k = first; k-- > 0;) {
            if (d->lines[k].mark == 'e') {
                continue;
            }
            if (d->lines[k].mark == 't' && is_rule(line_ptr(d, k), d->lines[k].len)) {
                d->lines[k].mark = 's';
            }
            break;
        }
        i = first + hl - 1;
    }
    return DR_OK;
}

/* Quotation evidence without a header must be at least two quoted lines; one stray '>' line
 * (">>> http://example.com <<<") is text. Quoted lines interrupted by a wrapped link stay
 * quoted. */
static void settle_marks(struct doc *d)
{
    int has_s = 0, has_qq = 0;
    size_t last_m = (size_t)-1;

    for (size_t i = 0; i < d->n; i++) {
        char m = d->lines[i].mark;
        if (m == 's') {
            has_s = 1;
        } else if (m == 'm') {
            if (last_m != (size_t)-1) {
                has_qq = 1;
            }
            last_m = i;
        } else if (m != 'e') {
            last_m = (size_t)-1;
        }
    }
    if (!has_s && !has_qq) {
        for (size_t i = 0; i < d->n; i++) {
            if (d->lines[i].mark == 'm') {
                d->lines[i].mark = 't';
            }
        }
        return;
    }
    for (size_t i = 1; i + 1 < d->n; i++) {
        const char *s = line_ptr(d, i);
        const char *prev = line_ptr(d, i - 1);
        size_t k = 0, j;
        if (d->lines[i].mark != 't' || d->lines[i - 1].mark != 'm') {
            continue;
        }
        while (k < d->lines[i].len && (s[k] == ' ' || s[k] == '\t')) {
            k++;
        }
        j = next_nonblank(d, i + 1);
        if (j < d->n && d->lines[j].mark == 'm' &&
            ((d->lines[i].len - k >= 5 && memcmp(s + k, "(http", 5) == 0) ||
             memmem(prev, d->lines[i - 1].len, "(http", 5))) {
            d->lines[i].mark = 'm';
        }
    }
}

static int is_sig_delim(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    if (n == 2 && s[0] == '-' && s[1] == '-') {
        return 1;
    }
    if (n >= 2) {
        for (size_t i = 0; i < n; i++) {
            if (s[i] != '_') {
                return 0;
            }
        }
        return 1;
    }
    return 0;
}

static int strong_sig(struct doc *d, size_t i)
{
    const char *s = line_ptr(d, i);
    size_t n = d->lines[i].len;
    return is_sig_delim(s, n) || (n <= HDR_MAX_LINE && match(d, P_SIG_MOBILE, s, n, NULL));
}

/* Cuts the signature from the kept lines [a, b): marks its lines 'g'. */
static void cut_signature(struct doc *d, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++) {
        const char *s = line_ptr(d, i);
        size_t n = d->lines[i].len, j;
        int sig = 0;

        if (d->lines[i].mark == 'e') {
            continue;
        }
        if (strong_sig(d, i)) {
            sig = 1;
        } else if (i > a && d->lines[i - 1].mark == 'e' && n <= HDR_MAX_LINE &&
                   match(d, P_SIG_NAME, s, n, NULL)) {
            /* "-Name" only as the last thing in the block, or right above a footer. */
            j = i + 1;
            while (j < b && d->lines[j].mark == 'e') {
                j++;
            }
            sig = j == b || strong_sig(d, j);
        }
        if (sig) {
            for (j = i; j < b; j++) {
                d->lines[j].mark = 'g';
            }
            return;
        }
    }
}

static int assemble(struct doc *d, char **reply)
{
    struct dr_buf b;
    size_t s = 0, e;
    int err = DR_OK, first = 1;
    char *out;

    dr_buf_init(&b, d->len + 1);
    for (size_t i = 0; i < d->n && !err; i++) {
        char m = d->lines[i].mark;
        if (m != 't' && m != 'e' && m != 'f') {
            continue;
        }
        if (!first) {
            err = dr_buf_appendc(&b, '\n');
        }
        if (!err) {
            err = dr_buf_append(&b, line_ptr(d, i), d->lines[i].len);
        }
        first = 0;
    }
    if (err) {
        dr_buf_cleanup(&b);
        return err;
    }
    e = b.len;
    while (s < e && (b.data[s] == ' ' || b.data[s] == '\t' || b.data[s] == '\n')) {
        s++;
    }
    while (e > s && (b.data[e - 1] == ' ' || b.data[e - 1] == '\t' || b.data[e - 1] == '\n')) {
        e--;
    }
    out = malloc(e - s + 1);
    if (!out) {
        dr_buf_cleanup(&b);
        return DR_ENOMEM;
    }
    if (e > s) {
        memcpy(out, b.data + s, e - s);
    }
    out[e - s] = '\0';
    dr_buf_cleanup(&b);
    *reply = out;
    return DR_OK;
}

/* Decides which lines are dropped: marks them 'q'. Returns 1 when anything was dropped. */
static int drop_quotes(struct doc *d)
{
    int dropped = 0;
    size_t i = 0;

    while (i < d->n) {
        char m = d->lines[i].mark, prev;
        size_t j;
        if (m == 's') {
            j = i;
            while (j < d->n && (d->lines[j].mark == 's' || d->lines[j].mark == 'e')) {
                j++;
            }
            if (j < d->n && d->lines[j].mark != 'm') {
                /* Header followed by unquoted text: the earlier message runs to the end. */
                for (j = i; j < d->n; j++) {
                    d->lines[j].mark = 'q';
                }
                return 1;
            }
        } else if (m != 'm') {
            i++;
            continue;
        }
        for (j = i, prev = m; j < d->n; j++) {
            char mj = d->lines[j].mark;
            if (mj == 'm' || mj == 's') {
                if (mj == 's' && prev != 's') {
                    break; /* a new header: handled on the next turn */
                }
                prev = mj;
                d->lines[j].mark = 'q';
            } else if (mj == 'e') {
                prev = mj;
                d->lines[j].mark = 'q';
            } else {
                break;
            }
        }
        dropped = 1;
        i = j;
    }
    return dropped;
}

int dr_reply_extract_ex(const char *text, size_t len, unsigned flags, char **reply, int *quoted)
{
    struct doc d = {0};
    int err, dropped = 0;

    if (reply) {
        *reply = NULL;
    }
    if (quoted) {
        *quoted = 0;
    }
    if (!reply || (!text && len > 0)) {
        return DR_EINVAL;
    }
    if (len > DR_REPLY_MAX_INPUT) {
        return DR_ETOOBIG;
    }
    pthread_once(&pats_once, pats_init);
    if (!pats_ok) {
        return DR_EUNSUPPORTED;
    }
    d.md = pcre2_match_data_create(4, NULL);
    if (!d.md) {
        return DR_ENOMEM;
    }
    err = normalise(&d, text ? text : "", len);
    if (err) {
        goto out;
    }
    err = mark_lines(&d);
    if (err) {
        goto out;
    }
    settle_marks(&d);

    /* A message that forwards something before quoting anything is a forward, not a reply. */
    for (size_t i = 0; i < d.n; i++) {
        char m = d.lines[i].mark;
        if (m == 'f') {
            for (size_t k = 0; k < d.n; k++) {
                d.lines[k].mark = 't';
            }
            flags |= DR_REPLY_KEEP_SIGNATURE;
            break;
        }
        if (m == 's' || m == 'm') {
            dropped = drop_quotes(&d);
            break;
        }
    }
    if (!(flags & DR_REPLY_KEEP_SIGNATURE)) {
        size_t a = 0;
        while (a < d.n) {
            size_t b;
            if (d.lines[a].mark != 't' && d.lines[a].mark != 'e') {
                a++;
                continue;
            }
            b = a;
            while (b < d.n && (d.lines[b].mark == 't' || d.lines[b].mark == 'e')) {
                b++;
            }
            cut_signature(&d, a, b);
            a = b;
        }
    }
    err = assemble(&d, reply);
    if (!err && quoted) {
        *quoted = dropped;
    }
out:
    pcre2_match_data_free(d.md);
    free(d.lines);
    free(d.text);
    return err;
}

int dr_reply_extract(const char *text, size_t len, char **reply, int *quoted)
{
    return dr_reply_extract_ex(text, len, 0, reply, quoted);
}
