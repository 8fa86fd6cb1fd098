/*
 * Reading slot preferences from a free-text poll reply.
 *
 * 1. Lexing: the text becomes tokens (words, numbers, punctuation, symbols such as ✓, and spans
 *    where a slot label appears verbatim).
 * 2. Items: tokens become references to slots (numbers, ranges, labels, mentions built from
 *    weekday/date/time/part-of-day words and matched against each slot's start in its own UTC
 *    offset), answers (yes/no/maybe, from a phrase table), negations, "all"/"none", "except",
 *    list connectors and clause breaks.
 * 3. Pairing, clause by clause: references take the answer that follows them, or an answer that
 *    came first ("yes to 1 and 3"); negation flips the answer; "none" inverts it; "except" gives
 *    the excepted slots the opposite of the whole-poll answer. Later statements override earlier.
 * 4. The comment is the text minus every sub-clause (split at , ; . ! ? and line ends) that held
 *    a preference.
 *
 * Every step is linear in the reply (capped at DR_POLL_REPLY_MAX bytes) times the number of slots.
 */
#include "dr/poll_reply.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/util.h"

#define MAX_WORD   48 /* longer words carry no meaning here */
#define SSET_WORDS ((DR_POLL_MAX_SLOTS + 63) / 64)

struct sset {
    uint64_t w[SSET_WORDS];
};

static void sset_add(struct sset *s, size_t i)
{
    s->w[i / 64] |= (uint64_t)1 << (i % 64);
}

static int sset_has(const struct sset *s, size_t i)
{
    return (s->w[i / 64] >> (i % 64)) & 1;
}

static int sset_empty(const struct sset *s)
{
    for (size_t i = 0; i < SSET_WORDS; i++) {
        if (s->w[i]) {
            return 0;
        }
    }
    return 1;
}

static void sset_or(struct sset *a, const struct sset *b)
{
    for (size_t i = 0; i < SSET_WORDS; i++) {
        a->w[i] |= b->w[i];
    }
}

/* ---- lexing ---------------------------------------------------------------------------- */

enum tk { TK_WORD, TK_NUM, TK_PUNCT, TK_SYM, TK_LABEL, TK_NL };

struct tok {
    enum tk k;
    size_t s, e; /* bytes of the reply */
    long num;    /* TK_NUM (saturated), TK_LABEL: slot index */
    int ndig;
    char c;  /* TK_PUNCT: the character ('-' for dashes); TK_SYM: 'y', 'n', 'm' */
    int adj; /* no space between this token and the previous one */
};

struct lexer {
    const char *t;  /* reply */
    const char *lc; /* ASCII-lowercased copy */
    size_t n;
    struct tok *v;
    size_t nv;
    size_t *label_end; /* per byte: end of the longest slot label starting there, or 0 */
    int *label_slot;
};

static int utf8_letter_lead(unsigned char c)
{
    /* Latin-1 supplement through Cyrillic: letters in every language this parser reads. */
    return c >= 0xc3 && c <= 0xd4;
}

/* Symbols, by UTF-8 bytes, that carry an answer or act as punctuation. */
static const struct {
    const char *bytes;
    char kind; /* 'y' 'n' 'm' answer; '-' dash; '\'' apostrophe; ' ' ignorable */
} symbols[] = {
    {"\xe2\x9c\x93", 'y'},     /* ✓ */
    {"\xe2\x9c\x94", 'y'},     /* ✔ */
    {"\xe2\x98\x91", 'y'},     /* ☑ */
    {"\xe2\x9c\x85", 'y'},     /* ✅ */
    {"\xf0\x9f\x91\x8d", 'y'}, /* 👍 */
    {"\xe2\x9c\x97", 'n'},     /* ✗ */
    {"\xe2\x9c\x98", 'n'},     /* ✘ */
    {"\xe2\x9d\x8c", 'n'},     /* ❌ */
    {"\xe2\x9d\x8e", 'n'},     /* ❎ */
    {"\xf0\x9f\x91\x8e", 'n'}, /* 👎 */
    {"\xf0\x9f\xa4\xb7", 'm'}, /* 🤷 */
    {"\xe2\x80\x93", '-'},     /* – */
    {"\xe2\x80\x94", '-'},     /* — */
    {"\xe2\x80\x99", '\''},    /* ’ */
    {"\xc2\xa0", ' '},         /* no-break space */
    {"\xe2\x80\x8b", ' '},     /* zero-width space */
};

static size_t symbol_at(const char *s, size_t n, char *kind)
{
    for (size_t i = 0; i < DR_ARRAY_LEN(symbols); i++) {
        size_t k = strlen(symbols[i].bytes);
        if (k <= n && memcmp(s, symbols[i].bytes, k) == 0) {
            *kind = symbols[i].kind;
            return k;
        }
    }
    return 0;
}

static int word_char_at(const char *s, size_t n, size_t *adv)
{
    unsigned char c = (unsigned char)s[0];
    char kind;
    if (isalpha(c)) {
        *adv = 1;
        return 1;
    }
    if (utf8_letter_lead(c) && n >= 2 && ((unsigned char)s[1] & 0xc0) == 0x80 &&
        !symbol_at(s, n, &kind)) {
        *adv = 2;
        return 1;
    }
    if (c == 0xe1 && n >= 3 && ((unsigned char)s[1] & 0xc0) == 0x80) {
        *adv = 3; /* Latin extended additional (Vietnamese and friends) */
        return 1;
    }
    return 0;
}

static void push(struct lexer *lx, enum tk k, size_t s, size_t e, int adj)
{
    struct tok *t = &lx->v[lx->nv++];
    memset(t, 0, sizeof(*t));
    t->k = k;
    t->s = s;
    t->e = e;
    t->adj = adj;
}

static void lex(struct lexer *lx)
{
    size_t i = 0;
    int adj = 0;

    while (i < lx->n) {
        unsigned char c = (unsigned char)lx->t[i];
        size_t adv, k;
        char kind;

        if (lx->label_end[i]) {
            push(lx, TK_LABEL, i, lx->label_end[i], adj);
            lx->v[lx->nv - 1].num = lx->label_slot[i];
            i = lx->label_end[i];
            adj = 1;
            continue;
        }
        if (c == '\n') {
            push(lx, TK_NL, i, i + 1, 0);
            i++;
            adj = 0;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            i++;
            adj = 0;
            continue;
        }
        if (isdigit(c)) {
            size_t s = i;
            long v = 0;
            while (i < lx->n && isdigit((unsigned char)lx->t[i])) {
                if (v < 1000000000L) {
                    v = v * 10 + (lx->t[i] - '0');
                }
                i++;
            }
            push(lx, TK_NUM, s, i, adj);
            lx->v[lx->nv - 1].num = v;
            lx->v[lx->nv - 1].ndig = (int)(i - s);
            adj = 1;
            continue;
        }
        if (word_char_at(lx->t + i, lx->n - i, &adv)) {
            size_t s = i;
            i += adv;
            for (;;) {
                if (i < lx->n && word_char_at(lx->t + i, lx->n - i, &adv)) {
                    i += adv;
                } else if (i + 1 < lx->n && lx->t[i] == '\'' &&
                           word_char_at(lx->t + i + 1, lx->n - i - 1, &adv)) {
                    i += 1;
                } else if (i + 3 < lx->n && memcmp(lx->t + i, "\xe2\x80\x99", 3) == 0 &&
                           word_char_at(lx->t + i + 3, lx->n - i - 3, &adv)) {
                    i += 3;
                } else {
                    break;
                }
            }
            push(lx, TK_WORD, s, i, adj);
            adj = 1;
            continue;
        }
        k = symbol_at(lx->t + i, lx->n - i, &kind);
        if (k) {
            if (kind == ' ') {
                adj = 0;
            } else if (kind == '-' || kind == '\'') {
                push(lx, TK_PUNCT, i, i + k, adj);
                lx->v[lx->nv - 1].c = kind;
                adj = 1;
            } else {
                push(lx, TK_SYM, i, i + k, adj);
                lx->v[lx->nv - 1].c = kind;
                adj = 1;
            }
            i += k;
            continue;
        }
        if (c < 0x80) {
            push(lx, TK_PUNCT, i, i + 1, adj);
            lx->v[lx->nv - 1].c = (char)c;
            adj = 1;
        } else {
            adj = 0; /* other UTF-8 (emoji, junk): a separator without meaning */
        }
        i++;
    }
}

/* Token word equals w (lowercase ASCII/UTF-8; "'" in w also matches ’). */
static int tok_is(const struct lexer *lx, const struct tok *t, const char *w)
{
    size_t i = t->s, j = 0;
    if (t->k != TK_WORD) {
        return 0;
    }
    while (i < t->e && w[j]) {
        if (w[j] == '\'' && i + 3 <= t->e && memcmp(lx->t + i, "\xe2\x80\x99", 3) == 0) {
            i += 3;
            j++;
            continue;
        }
        if (lx->lc[i] != w[j]) {
            return 0;
        }
        i++;
        j++;
    }
    return i == t->e && !w[j];
}

/* ---- vocabulary ------------------------------------------------------------------------ */

enum itk {
    IT_NONE_,
    IT_REF,
    IT_ANS,
    IT_NEG,
    IT_ALL,
    IT_NOTHING, /* "none", "neither" */
    IT_EXCEPT,
    IT_CONJ,
    IT_BREAK,
    IT_FILL,
    IT_LIGHT,    /* filler that does not separate a reference from its answer */
    IT_SLOTWORD, /* "slot", "option", "#": the next number is a slot number */
    IT_BUT,      /* "but": except after all/none, else a clause break */
    IT_REST,     /* "the others": every slot not answered yet */
};

struct phrase {
    const char *words; /* space-separated, lowercase */
    enum itk k;
    enum dr_poll_answer_value a;
    enum itk k2; /* a second item the phrase stands for, or IT_NONE_ */
};

#define Y DR_POLL_YES
#define N DR_POLL_NO
#define M DR_POLL_MAYBE
#define U DR_POLL_UNANSWERED

/* Longest match wins, so "not sure" beats "not" and "no problem" beats "no". */
static const struct phrase phrases[] = {
    /* greetings and idioms that would otherwise read as answers or times */
    {"good morning", IT_FILL, U, IT_NONE_},
    {"good afternoon", IT_FILL, U, IT_NONE_},
    {"good evening", IT_FILL, U, IT_NONE_},
    {"feel free", IT_FILL, U, IT_NONE_},
    {"at work", IT_FILL, U, IT_NONE_},
    {"no worries", IT_FILL, U, IT_NONE_},
    {"thank you", IT_FILL, U, IT_NONE_},
    {"see you", IT_FILL, U, IT_NONE_},
    {"let me know", IT_FILL, U, IT_NONE_},
    {"no preference", IT_ALL, Y, IT_ANS},
    {"don't mind", IT_ANS, Y, IT_NONE_},
    {"do not mind", IT_ANS, Y, IT_NONE_},
    {"no problem", IT_ANS, Y, IT_NONE_},
    {"not a problem", IT_ANS, Y, IT_NONE_},
    {"no issue", IT_ANS, Y, IT_NONE_},
    {"sounds good", IT_ANS, Y, IT_NONE_},
    {"count me in", IT_ANS, Y, IT_NONE_},
    {"i'm in", IT_ANS, Y, IT_NONE_},
    {"of course", IT_ANS, Y, IT_NONE_},
    {"can do", IT_ANS, Y, IT_NONE_},
    {"can make", IT_ANS, Y, IT_NONE_},
    {"can make it", IT_ANS, Y, IT_NONE_},
    {"can attend", IT_ANS, Y, IT_NONE_},
    {"can come", IT_ANS, Y, IT_NONE_},
    {"ça marche", IT_ANS, Y, IT_NONE_},
    {"ca marche", IT_ANS, Y, IT_NONE_},
    {"me va bien", IT_ANS, Y, IT_NONE_},
    {"me viene bien", IT_ANS, Y, IT_NONE_},
    {"not sure", IT_ANS, M, IT_NONE_},
    {"not certain", IT_ANS, M, IT_NONE_},
    {"not ideal", IT_ANS, M, IT_NONE_},
    {"if needed", IT_ANS, M, IT_NONE_},
    {"if need be", IT_ANS, M, IT_NONE_},
    {"if necessary", IT_ANS, M, IT_NONE_},
    {"if i must", IT_ANS, M, IT_NONE_},
    {"if i have to", IT_ANS, M, IT_NONE_},
    {"at a push", IT_ANS, M, IT_NONE_},
    {"at a pinch", IT_ANS, M, IT_NONE_},
    {"could work", IT_ANS, M, IT_NONE_},
    {"could do", IT_ANS, M, IT_NONE_},
    {"could make it", IT_ANS, M, IT_NONE_},
    {"might work", IT_ANS, M, IT_NONE_},
    {"might be", IT_ANS, M, IT_NONE_},
    {"peut être", IT_ANS, M, IT_NONE_},
    {"peut etre", IT_ANS, M, IT_NONE_},
    {"tal vez", IT_ANS, M, IT_NONE_},
    {"a lo mejor", IT_ANS, M, IT_NONE_},
    {"can't", IT_ANS, N, IT_NONE_},
    {"cannot", IT_ANS, N, IT_NONE_},
    {"can not", IT_ANS, N, IT_NONE_},
    {"couldn't", IT_ANS, N, IT_NONE_},
    {"won't be able", IT_ANS, N, IT_NONE_},
    {"unable", IT_ANS, N, IT_NONE_},
    {"no puedo", IT_ANS, N, IT_NONE_},
    {"kann nicht", IT_ANS, N, IT_NONE_},
    {"geht nicht", IT_ANS, N, IT_NONE_},
    {"passt nicht", IT_ANS, N, IT_NONE_},
    {"pas possible", IT_ANS, N, IT_NONE_},
    {"pas disponible", IT_ANS, N, IT_NONE_},
    {"ne peux pas", IT_ANS, N, IT_NONE_},
    {"none of them", IT_NOTHING, U, IT_NONE_},
    {"none of these", IT_NOTHING, U, IT_NONE_},
    {"none of those", IT_NOTHING, U, IT_NONE_},
    {"none of the", IT_NOTHING, U, IT_NONE_},
    {"all of them", IT_ALL, U, IT_NONE_},
    {"all of these", IT_ALL, U, IT_NONE_},
    {"all of those", IT_ALL, U, IT_NONE_},
    {"all of the", IT_ALL, U, IT_NONE_},
    {"any of them", IT_ALL, U, IT_NONE_},
    {"any of these", IT_ALL, U, IT_NONE_},
    {"any of those", IT_ALL, U, IT_NONE_},
    {"any of the", IT_ALL, U, IT_NONE_},
    {"any time", IT_ALL, U, IT_NONE_},
    {"either one", IT_ALL, U, IT_NONE_},
    {"every one", IT_ALL, U, IT_NONE_},
    {"the others", IT_REST, U, IT_NONE_},
    {"the other ones", IT_REST, U, IT_NONE_},
    {"the other two", IT_REST, U, IT_NONE_},
    {"the other slots", IT_REST, U, IT_NONE_},
    {"the other options", IT_REST, U, IT_NONE_},
    {"the rest", IT_REST, U, IT_NONE_},
    {"all others", IT_REST, U, IT_NONE_},
    {"everything else", IT_REST, U, IT_NONE_},
    {"les autres", IT_REST, U, IT_NONE_},
    {"die anderen", IT_REST, U, IT_NONE_},
    {"los demás", IT_REST, U, IT_NONE_},
    {"los otros", IT_REST, U, IT_NONE_},
    {"except for", IT_EXCEPT, U, IT_NONE_},
    {"apart from", IT_EXCEPT, U, IT_NONE_},
    {"other than", IT_EXCEPT, U, IT_NONE_},
    {"with the exception of", IT_EXCEPT, U, IT_NONE_},
    {"and", IT_CONJ, U, IT_NONE_},
    {"or", IT_CONJ, U, IT_NONE_},
    {"nor", IT_CONJ, U, IT_NONE_},
    {"et", IT_CONJ, U, IT_NONE_},
    {"und", IT_CONJ, U, IT_NONE_},
    {"oder", IT_CONJ, U, IT_NONE_},
    {"ou", IT_CONJ, U, IT_NONE_},
    {"y", IT_CONJ, U, IT_NONE_},
    {"o", IT_CONJ, U, IT_NONE_},
    {"yes", IT_ANS, Y, IT_NONE_},
    {"yep", IT_ANS, Y, IT_NONE_},
    {"yup", IT_ANS, Y, IT_NONE_},
    {"yeah", IT_ANS, Y, IT_NONE_},
    {"yea", IT_ANS, Y, IT_NONE_},
    {"ok", IT_ANS, Y, IT_NONE_},
    {"okay", IT_ANS, Y, IT_NONE_},
    {"sure", IT_ANS, Y, IT_NONE_},
    {"fine", IT_ANS, Y, IT_NONE_},
    {"good", IT_ANS, Y, IT_NONE_},
    {"great", IT_ANS, Y, IT_NONE_},
    {"perfect", IT_ANS, Y, IT_NONE_},
    {"ideal", IT_ANS, Y, IT_NONE_},
    {"works", IT_ANS, Y, IT_NONE_},
    {"work", IT_ANS, Y, IT_NONE_},
    {"working", IT_ANS, Y, IT_NONE_},
    {"suits", IT_ANS, Y, IT_NONE_},
    {"suit", IT_ANS, Y, IT_NONE_},
    {"available", IT_ANS, Y, IT_NONE_},
    {"free", IT_ANS, Y, IT_NONE_},
    {"possible", IT_ANS, Y, IT_NONE_},
    {"can", IT_ANS, Y, IT_NONE_},
    {"definitely", IT_ANS, Y, IT_NONE_},
    {"prefer", IT_ANS, Y, IT_NONE_},
    {"preferred", IT_ANS, Y, IT_NONE_},
    {"preferably", IT_ANS, Y, IT_NONE_},
    {"ideally", IT_ANS, Y, IT_NONE_},
    {"préfère", IT_ANS, Y, IT_NONE_},
    {"prefiero", IT_ANS, Y, IT_NONE_},
    {"lieber", IT_ANS, Y, IT_NONE_},
    {"absolutely", IT_ANS, Y, IT_NONE_},
    {"oui", IT_ANS, Y, IT_NONE_},
    {"d'accord", IT_ANS, Y, IT_NONE_},
    {"parfait", IT_ANS, Y, IT_NONE_},
    {"disponible", IT_ANS, Y, IT_NONE_},
    {"libre", IT_ANS, Y, IT_NONE_},
    {"ja", IT_ANS, Y, IT_NONE_},
    {"passt", IT_ANS, Y, IT_NONE_},
    {"geht", IT_ANS, Y, IT_NONE_},
    {"klar", IT_ANS, Y, IT_NONE_},
    {"sí", IT_ANS, Y, IT_NONE_},
    {"si", IT_ANS, Y, IT_NONE_},
    {"vale", IT_ANS, Y, IT_NONE_},
    {"perfecto", IT_ANS, Y, IT_NONE_},
    {"puedo", IT_ANS, Y, IT_NONE_},
    {"no", IT_ANS, N, IT_NONE_},
    {"nope", IT_ANS, N, IT_NONE_},
    {"nah", IT_ANS, N, IT_NONE_},
    {"busy", IT_ANS, N, IT_NONE_},
    {"unavailable", IT_ANS, N, IT_NONE_},
    {"impossible", IT_ANS, N, IT_NONE_},
    {"conflict", IT_ANS, N, IT_NONE_},
    {"clash", IT_ANS, N, IT_NONE_},
    {"non", IT_ANS, N, IT_NONE_},
    {"nein", IT_ANS, N, IT_NONE_},
    {"indisponible", IT_ANS, N, IT_NONE_},
    {"occupé", IT_ANS, N, IT_NONE_},
    {"occupée", IT_ANS, N, IT_NONE_},
    {"imposible", IT_ANS, N, IT_NONE_},
    {"ocupado", IT_ANS, N, IT_NONE_},
    {"ocupada", IT_ANS, N, IT_NONE_},
    {"maybe", IT_ANS, M, IT_NONE_},
    {"perhaps", IT_ANS, M, IT_NONE_},
    {"possibly", IT_ANS, M, IT_NONE_},
    {"probably", IT_ANS, M, IT_NONE_},
    {"tentative", IT_ANS, M, IT_NONE_},
    {"tentatively", IT_ANS, M, IT_NONE_},
    {"unsure", IT_ANS, M, IT_NONE_},
    {"peut-être", IT_ANS, M, IT_NONE_},
    {"vielleicht", IT_ANS, M, IT_NONE_},
    {"eventuell", IT_ANS, M, IT_NONE_},
    {"evtl", IT_ANS, M, IT_NONE_},
    {"quizás", IT_ANS, M, IT_NONE_},
    {"quizas", IT_ANS, M, IT_NONE_},
    {"quizá", IT_ANS, M, IT_NONE_},
    {"quiza", IT_ANS, M, IT_NONE_},
    {"not", IT_NEG, U, IT_NONE_},
    {"n't", IT_NEG, U, IT_NONE_},
    {"doesn't", IT_NEG, U, IT_NONE_},
    {"don't", IT_NEG, U, IT_NONE_},
    {"isn't", IT_NEG, U, IT_NONE_},
    {"aren't", IT_NEG, U, IT_NONE_},
    {"won't", IT_NEG, U, IT_NONE_},
    {"wont", IT_NEG, U, IT_NONE_},
    {"wouldn't", IT_NEG, U, IT_NONE_},
    {"never", IT_NEG, U, IT_NONE_},
    {"nicht", IT_NEG, U, IT_NONE_},
    {"pas", IT_NEG, U, IT_NONE_},
    {"all", IT_ALL, U, IT_NONE_},
    {"any", IT_ALL, U, IT_NONE_},
    {"anytime", IT_ALL, U, IT_NONE_},
    {"anything", IT_ALL, U, IT_NONE_},
    {"every", IT_ALL, U, IT_NONE_},
    {"everything", IT_ALL, U, IT_NONE_},
    {"each", IT_ALL, U, IT_NONE_},
    {"both", IT_ALL, U, IT_NONE_},
    {"either", IT_ALL, U, IT_NONE_},
    {"whichever", IT_ALL, U, IT_NONE_},
    {"tous", IT_ALL, U, IT_NONE_},
    {"toutes", IT_ALL, U, IT_NONE_},
    {"alle", IT_ALL, U, IT_NONE_},
    {"beide", IT_ALL, U, IT_NONE_},
    {"todos", IT_ALL, U, IT_NONE_},
    {"todas", IT_ALL, U, IT_NONE_},
    {"cualquiera", IT_ALL, U, IT_NONE_},
    {"none", IT_NOTHING, U, IT_NONE_},
    {"neither", IT_NOTHING, U, IT_NONE_},
    {"nothing", IT_NOTHING, U, IT_NONE_},
    {"aucun", IT_NOTHING, U, IT_NONE_},
    {"aucune", IT_NOTHING, U, IT_NONE_},
    {"keiner", IT_NOTHING, U, IT_NONE_},
    {"keine", IT_NOTHING, U, IT_NONE_},
    {"ninguno", IT_NOTHING, U, IT_NONE_},
    {"ninguna", IT_NOTHING, U, IT_NONE_},
    {"except", IT_EXCEPT, U, IT_NONE_},
    {"excluding", IT_EXCEPT, U, IT_NONE_},
    {"sauf", IT_EXCEPT, U, IT_NONE_},
    {"außer", IT_EXCEPT, U, IT_NONE_},
    {"ausser", IT_EXCEPT, U, IT_NONE_},
    {"excepto", IT_EXCEPT, U, IT_NONE_},
    {"salvo", IT_EXCEPT, U, IT_NONE_},
    {"menos", IT_EXCEPT, U, IT_NONE_},
    {"but", IT_BUT, U, IT_NONE_},
    {"however", IT_BREAK, U, IT_NONE_},
    {"although", IT_BREAK, U, IT_NONE_},
    {"though", IT_BREAK, U, IT_NONE_},
    {"mais", IT_BREAK, U, IT_NONE_},
    {"aber", IT_BREAK, U, IT_NONE_},
    {"pero", IT_BREAK, U, IT_NONE_},
    {"slot", IT_SLOTWORD, U, IT_NONE_},
    {"slots", IT_SLOTWORD, U, IT_NONE_},
    {"option", IT_SLOTWORD, U, IT_NONE_},
    {"options", IT_SLOTWORD, U, IT_NONE_},
    {"opt", IT_SLOTWORD, U, IT_NONE_},
    {"choice", IT_SLOTWORD, U, IT_NONE_},
    {"choices", IT_SLOTWORD, U, IT_NONE_},
    {"number", IT_SLOTWORD, U, IT_NONE_},
    {"numbers", IT_SLOTWORD, U, IT_NONE_},
    {"nr", IT_SLOTWORD, U, IT_NONE_},
    {"créneau", IT_SLOTWORD, U, IT_NONE_},
    {"creneau", IT_SLOTWORD, U, IT_NONE_},
    {"termin", IT_SLOTWORD, U, IT_NONE_},
    {"opción", IT_SLOTWORD, U, IT_NONE_},
    {"opcion", IT_SLOTWORD, U, IT_NONE_},
};

/* Words that sit between a reference and its answer without weakening the link. */
static const char *const light_words[] = {
    "the",   "a",     "an",      "is",    "are",    "be",     "would",  "will",  "for",    "me",
    "us",    "to",    "it",      "that",  "this",   "one",    "ones",   "i",     "i'm",    "im",
    "we",    "we're", "am",      "do",    "does",   "really", "also",   "too",   "just",   "then",
    "so",    "well",  "totally", "fully", "pretty", "very",   "seems",  "looks", "sounds", "should",
    "on",    "at",    "with",    "by",    "of",     "as",     "for",    "both",  "them",   "these",
    "those", "is",    "all",     "day",   "time",   "times",  "date",   "dates", "make",   "you",
    "your",  "my",    "le",      "la",    "les",    "est",    "der",    "die",   "das",    "ist",
    "el",    "es",    "me",      "mir",   "moi",    "pour",   "für",    "para",  "de",     "am",
    "um",    "à",     "a",       "las",   "los",    "slot",   "option", "al",    "du",     "zu",
    "le",    "del",   "en",      "pour",  "y",      "lo",     "mich",   "uns",   "nous",   "m'",
    "still", "again",
};

static const char *const weekdays[7][8] = {
    {"sunday", "sun", "dimanche", "sonntag", "domingo", NULL},
    {"monday", "mon", "lundi", "montag", "lunes", NULL},
    {"tuesday", "tue", "tues", "mardi", "dienstag", "martes", NULL},
    {"wednesday", "wed", "mercredi", "mittwoch", "miércoles", "miercoles", NULL},
    {"thursday", "thu", "thur", "thurs", "jeudi", "donnerstag", "jueves", NULL},
    {"friday", "fri", "vendredi", "freitag", "viernes", NULL},
    {"saturday", "sat", "samedi", "samstag", "sábado", "sabado", NULL},
};

static const char *const months[12][8] = {
    {"january", "jan", "janvier", "januar", "enero", NULL},
    {"february", "feb", "février", "fevrier", "februar", "febrero", NULL},
    {"march", "mar", "mars", "märz", "marzo", NULL},
    {"april", "apr", "avril", "abril", NULL},
    {"may", "mai", "mayo", NULL},
    {"june", "jun", "juin", "juni", "junio", NULL},
    {"july", "jul", "juillet", "juli", "julio", NULL},
    {"august", "aug", "août", "aout", "agosto", NULL},
    {"september", "sep", "sept", "septembre", "septiembre", NULL},
    {"october", "oct", "octobre", "oktober", "octubre", NULL},
    {"november", "nov", "novembre", "noviembre", NULL},
    {"december", "dec", "décembre", "decembre", "dezember", "diciembre", NULL},
};

static int find_in(const struct lexer *lx, const struct tok *t, const char *const *list)
{
    for (size_t i = 0; list[i]; i++) {
        if (tok_is(lx, t, list[i])) {
            return 1;
        }
    }
    return 0;
}

static int weekday_of(const struct lexer *lx, const struct tok *t)
{
    for (int d = 0; d < 7; d++) {
        if (find_in(lx, t, weekdays[d])) {
            return d;
        }
    }
    return -1;
}

static int month_of(const struct lexer *lx, const struct tok *t)
{
    for (int m = 0; m < 12; m++) {
        if (find_in(lx, t, months[m])) {
            return m + 1;
        }
    }
    return -1;
}

static int is_light(const struct lexer *lx, const struct tok *t)
{
    for (size_t i = 0; i < DR_ARRAY_LEN(light_words); i++) {
        if (tok_is(lx, t, light_words[i])) {
            return 1;
        }
    }
    return 0;
}

/* The longest phrase starting at token i: its entry and how many tokens it covers. */
static const struct phrase *phrase_at(const struct lexer *lx, size_t i, size_t *ntok)
{
    const struct phrase *best = NULL;
    size_t best_n = 0;

    for (size_t p = 0; p < DR_ARRAY_LEN(phrases); p++) {
        const char *w = phrases[p].words;
        size_t k = 0, j = i;
        int ok = 1;
        while (*w && ok) {
            const char *sp = strchr(w, ' ');
            size_t wl = sp ? (size_t)(sp - w) : strlen(w);
            char word[MAX_WORD + 1];
            /* "n't" glued to the verb ("doesn't") is in the table whole; "can't" too. */
            if (j >= lx->nv || wl > MAX_WORD) {
                ok = 0;
                break;
            }
            memcpy(word, w, wl);
            word[wl] = '\0';
            if (!tok_is(lx, &lx->v[j], word)) {
                /* "peut-être": the dash is a separate token */
                if (j + 1 < lx->nv && lx->v[j].k == TK_PUNCT && lx->v[j].c == '-' &&
                    tok_is(lx, &lx->v[j + 1], word)) {
                    j++;
                } else {
                    ok = 0;
                    break;
                }
            }
            j++;
            k++;
            w = sp ? sp + 1 : w + wl;
        }
        if (ok && k > 0 && j - i > best_n) {
            best = &phrases[p];
            best_n = j - i;
        }
    }
    *ntok = best_n;
    return best;
}

/* ---- slot features ---------------------------------------------------------------------- */

struct slot_info {
    int wday, hour, min, mday, mon;
};

struct mention {
    int wday, hour, min, ampm, mday, mon, part, index; /* -1 when absent */
    int any;
};

static void mention_init(struct mention *m)
{
    m->wday = m->hour = m->min = m->ampm = m->mday = m->mon = m->part = m->index = -1;
    m->any = 0;
}

static int slot_matches(const struct slot_info *si, const struct mention *m)
{
    if (m->wday >= 0 && si->wday != m->wday) {
        return 0;
    }
    if (m->mday >= 0 && si->mday != m->mday) {
        return 0;
    }
    if (m->mon >= 0 && si->mon != m->mon) {
        return 0;
    }
    if (m->hour >= 0) {
        int h = m->hour;
        if (m->ampm == 1 && h < 12) {
            h += 12;
        } else if (m->ampm == 0 && h == 12) {
            h = 0;
        }
        if (m->ampm >= 0 || h > 12) {
            if (si->hour != h) {
                return 0;
            }
        } else if (si->hour != h && si->hour != h + 12) {
            return 0; /* "3" alone may be 3 or 15 */
        }
        if (m->min >= 0 && si->min != m->min) {
            return 0;
        }
    }
    if (m->part == 0 && si->hour >= 12) {
        return 0;
    }
    if (m->part == 1 && (si->hour < 12 || si->hour >= 17)) {
        return 0;
    }
    if (m->part == 2 && si->hour < 17) {
        return 0;
    }
    return 1;
}

/* ---- items and pairing ------------------------------------------------------------------- */

struct item {
    enum itk k;
    size_t s, e; /* bytes */
    enum dr_poll_answer_value a;
    struct sset set;
    int strong; /* IT_REF: a number or mention that is clearly about slots */
};

struct parser {
    const struct dr_poll *poll;
    struct lexer lx;
    struct slot_info *si;
    struct item *it;
    size_t nit;
    enum dr_poll_answer_value *ans;
    char *consumed;                 /* per byte */
    enum dr_poll_answer_value lone; /* last answer given without any reference */
    size_t lone_s, lone_e;
    struct sset all;
};

static void add_item(struct parser *p, enum itk k, size_t s, size_t e)
{
    struct item *it = &p->it[p->nit++];
    memset(it, 0, sizeof(*it));
    it->k = k;
    it->s = s;
    it->e = e;
}

static int is_punct(const struct tok *t, char c)
{
    return t->k == TK_PUNCT && t->c == c;
}

static int tok_word_in(const struct lexer *lx, const struct tok *t, const char *const *ws)
{
    for (size_t i = 0; ws[i]; i++) {
        if (tok_is(lx, t, ws[i])) {
            return 1;
        }
    }
    return 0;
}

static const char *const am_words[] = {"am", "a.m", NULL};
static const char *const pm_words[] = {"pm", "p.m", NULL};
static const char *const hour_words[] = {"h", "uhr", "o'clock", "hrs", "heures", "heure", NULL};
static const char *const ord_words[] = {"st", "nd", "rd", "th", "er", "e", "eme", "ème", NULL};
static const char *const index_nouns[] = {"one", "option", "slot", "choice", NULL};
static const char *const part_words[3][6] = {
    {"morning", "matin", "vormittag", NULL},
    {"afternoon", "lunchtime", "après-midi", "nachmittag", "tarde", NULL},
    {"evening", "soir", "abend", "noche", NULL},
};
static const char *const ordinals[] = {"first",   "second", "third", "fourth", "fifth", "sixth",
                                       "seventh", "eighth", "ninth", "tenth",  NULL};

/*
 * Tries to read a time at token i ("3pm", "15:00", "3.30 pm", "15h30", "noon"); on success fills
 * m and returns the number of tokens used.
 */
static size_t read_time(struct parser *p, size_t i, struct mention *m)
{
    const struct lexer *lx = &p->lx;
    const struct tok *t = &lx->v[i];
    size_t j = i + 1;
    int hour, min = -1, ampm = -1;

    if (tok_is(lx, t, "noon") || tok_is(lx, t, "midday") || tok_is(lx, t, "midi") ||
        tok_is(lx, t, "mittag")) {
        m->hour = 12;
        m->min = 0;
        m->ampm = 1;
        return 1;
    }
    if (t->k != TK_NUM || t->ndig > 4) {
        return 0;
    }
    if (t->ndig == 4 && j < lx->nv && tok_word_in(lx, &lx->v[j], hour_words) == 0) {
        return 0; /* a year, or 1500 without "h" */
    }
    hour = (int)t->num;
    if (t->ndig == 4) {
        min = hour % 100;
        hour /= 100;
    }
    if (j + 1 < lx->nv && (is_punct(&lx->v[j], ':') || is_punct(&lx->v[j], '.')) && lx->v[j].adj &&
        lx->v[j + 1].k == TK_NUM && lx->v[j + 1].adj && lx->v[j + 1].ndig == 2) {
        min = (int)lx->v[j + 1].num;
        j += 2;
    } else if (j + 1 < lx->nv && tok_is(lx, &lx->v[j], "h") && lx->v[j + 1].k == TK_NUM &&
               lx->v[j + 1].adj && lx->v[j + 1].ndig == 2) {
        min = (int)lx->v[j + 1].num;
        j += 2;
    }
    if (j < lx->nv && tok_word_in(lx, &lx->v[j], am_words)) {
        ampm = 0;
        j++;
    } else if (j < lx->nv && tok_word_in(lx, &lx->v[j], pm_words)) {
        ampm = 1;
        j++;
    } else if (j < lx->nv && tok_word_in(lx, &lx->v[j], hour_words)) {
        j++;
    } else if (min < 0) {
        return 0; /* a bare number is not a time */
    }
    /* "a.m." leaves a '.' behind */
    if (ampm >= 0 && j < lx->nv && is_punct(&lx->v[j], '.') && lx->v[j].adj) {
        j++;
    }
    if (hour > 23 || min > 59 || (ampm >= 0 && (hour > 12 || hour == 0))) {
        return 0;
    }
    m->hour = hour;
    m->min = min;
    m->ampm = ampm;
    return j - i;
}

/* A date at token i: "27 Nov", "Nov 27", "27th", "27/11", "11/27". */
static size_t read_date(struct parser *p, size_t i, struct mention *m)
{
    const struct lexer *lx = &p->lx;
    const struct tok *t = &lx->v[i];
    size_t j = i + 1;
    int mon;

    if (t->k == TK_WORD && (mon = month_of(lx, t)) > 0) {
        if (j < lx->nv && lx->v[j].k == TK_NUM && lx->v[j].num >= 1 && lx->v[j].num <= 31 &&
            lx->v[j].ndig <= 2) {
            m->mon = mon;
            m->mday = (int)lx->v[j].num;
            j++;
            if (j < lx->nv && lx->v[j].adj && tok_word_in(lx, &lx->v[j], ord_words)) {
                j++;
            }
            return j - i;
        }
        if (mon == 5) {
            return 0; /* "may" alone is a verb */
        }
        m->mon = mon;
        return 1;
    }
    if (t->k != TK_NUM || t->num < 1 || t->num > 31 || t->ndig > 2) {
        return 0;
    }
    if (j + 1 < lx->nv && is_punct(&lx->v[j], '/') && lx->v[j].adj && lx->v[j + 1].k == TK_NUM &&
        lx->v[j + 1].adj && lx->v[j + 1].ndig <= 2) {
        int a = (int)t->num, b = (int)lx->v[j + 1].num;
        /* day/month unless that is impossible */
        if (b >= 1 && b <= 12) {
            m->mday = a;
            m->mon = b;
        } else if (a <= 12 && b <= 31) {
            m->mday = b;
            m->mon = a;
        } else {
            return 0;
        }
        return 3;
    }
    if (j < lx->nv && lx->v[j].adj && tok_word_in(lx, &lx->v[j], ord_words)) {
        m->mday = (int)t->num;
        j++;
    }
    if (j < lx->nv && (mon = month_of(lx, &lx->v[j])) > 0) {
        m->mday = (int)t->num;
        m->mon = mon;
        j++;
    } else if (j + 1 < lx->nv && tok_is(lx, &lx->v[j], "of") &&
               (mon = month_of(lx, &lx->v[j + 1])) > 0) {
        m->mday = (int)t->num;
        m->mon = mon;
        j += 2;
    }
    return m->mday >= 0 ? j - i : 0;
}

/* Words that may sit inside a mention ("Tuesday at 3pm", "the 27th of Nov"). */
static int mention_glue(const struct lexer *lx, const struct tok *t)
{
    static const char *const glue[] = {"at",   "on", "the", "from", "um",  "à",    "a",    "las",
                                       "le",   "am", "de",  "del",  "of",  "this", "next", "coming",
                                       "this", "en", "el",  "der",  "den", "one",  NULL};
    return (t->k == TK_PUNCT && (t->c == ',' || t->c == '@')) || tok_word_in(lx, t, glue);
}

/* "at" before a time, in the languages read here ("a las" ends in "las"). */
static int at_word(const struct lexer *lx, const struct tok *t)
{
    static const char *const at[] = {"at", "um", "à", "las", NULL};

    return is_punct(t, '@') || tok_word_in(lx, t, at);
}

/*
 * Reads a mention (features that pick slots by their time) at token i. Returns the tokens used
 * (0 if none) and the matching slots in *set.
 */
static size_t read_mention(struct parser *p, size_t i, struct sset *set)
{
    const struct lexer *lx = &p->lx;
    struct mention m;
    size_t j = i, last = i, k;
    int nfeat = 0, has_the = 0, index_ok = 0;

    mention_init(&m);
    if (i > 0 && tok_is(lx, &lx->v[i - 1], "the")) {
        has_the = 1;
    }
    while (j < lx->nv) {
        const struct tok *t = &lx->v[j];
        int d;
        if (lx->v[j].k == TK_NL) {
            break;
        }
        if (t->k == TK_WORD && (d = weekday_of(lx, t)) >= 0 && m.wday < 0) {
            m.wday = d;
            j++;
            /* "Tuesday's" */
            last = j;
            nfeat++;
            continue;
        }
        if (m.hour < 0 && (k = read_time(p, j, &m)) > 0) {
            j += k;
            /* a time range: the end time is part of the same mention */
            if (j + 1 < lx->nv && (is_punct(&lx->v[j], '-') || tok_is(lx, &lx->v[j], "to") ||
                                   tok_is(lx, &lx->v[j], "bis"))) {
                struct mention tmp;
                size_t k2;
                mention_init(&tmp);
                if ((k2 = read_time(p, j + 1, &tmp)) > 0 ||
                    (lx->v[j + 1].k == TK_NUM && lx->v[j + 1].ndig <= 2 && (k2 = 1))) {
                    j += 1 + k2;
                }
            }
            last = j;
            nfeat++;
            continue;
        }
        if (m.hour < 0 && (m.wday >= 0 || m.mday >= 0) && j > i && at_word(lx, &lx->v[j - 1]) &&
            t->k == TK_NUM && t->ndig <= 2 && t->num <= 23 &&
            !(j + 1 < lx->nv && lx->v[j + 1].adj &&
              (lx->v[j + 1].k == TK_WORD || lx->v[j + 1].k == TK_NUM ||
               is_punct(&lx->v[j + 1], ':') || is_punct(&lx->v[j + 1], '/')))) {
            /* "Tuesday at 3": after a day and "at", a bare number is an hour, not slot 3 */
            m.hour = (int)t->num;
            j++;
            last = j;
            nfeat++;
            continue;
        }
        if (m.hour < 0 && t->k == TK_NUM && t->ndig <= 2 && j + 2 < lx->nv &&
            is_punct(&lx->v[j + 1], '-') && lx->v[j + 2].k == TK_NUM) {
            /* "3-4pm": the start hour takes the end's am/pm */
            struct mention tmp;
            mention_init(&tmp);
            if ((k = read_time(p, j + 2, &tmp)) > 0 && tmp.ampm >= 0 && t->num <= 12) {
                m.hour = (int)t->num;
                m.ampm = tmp.ampm;
                if (tmp.hour < m.hour && tmp.ampm == 1) {
                    m.ampm = 0; /* 11-1pm */
                }
                j += 2 + k;
                last = j;
                nfeat++;
                continue;
            }
        }
        if (m.mday < 0 && m.mon < 0 && (k = read_date(p, j, &m)) > 0) {
            j += k;
            last = j;
            nfeat++;
            continue;
        }
        if (m.part < 0) {
            for (int q = 0; q < 3; q++) {
                if (tok_word_in(lx, t, part_words[q])) {
                    m.part = q;
                }
            }
            if (m.part >= 0) {
                j++;
                last = j;
                nfeat++;
                continue;
            }
        }
        if (m.index < 0 && t->k == TK_WORD) {
            for (int q = 0; ordinals[q]; q++) {
                if (tok_is(lx, t, ordinals[q])) {
                    m.index = q;
                }
            }
            if (tok_is(lx, t, "last")) {
                m.index = (int)p->poll->n_slots - 1;
            }
            if (m.index >= 0) {
                j++;
                last = j;
                nfeat++;
                continue;
            }
        }
        if (nfeat > 0 && mention_glue(lx, t) && j + 1 < lx->nv) {
            j++;
            continue;
        }
        break;
    }
    if (nfeat == 0) {
        return 0;
    }
    if (last < lx->nv && tok_word_in(lx, &lx->v[last], index_nouns)) {
        index_ok = 1;
        last++;
    }
    /* A part of day or an ordinal alone needs "the ... one" to be about a slot. */
    if (m.wday < 0 && m.hour < 0 && m.mday < 0 && m.mon < 0 && !has_the && !index_ok) {
        return 0;
    }
    memset(set, 0, sizeof(*set));
    for (size_t s = 0; s < p->poll->n_slots; s++) {
        struct mention mm = m;
        mm.index = -1;
        if (m.index >= 0 && (size_t)m.index != s) {
            continue;
        }
        if (slot_matches(&p->si[s], &mm)) {
            sset_add(set, s);
        }
    }
    /* "the 2nd one" when no slot falls on the 2nd: the second slot */
    if (sset_empty(set) && nfeat == 1 && m.mday >= 1 && m.mon < 0 &&
        (size_t)m.mday <= p->poll->n_slots) {
        sset_add(set, (size_t)m.mday - 1);
    }
    return last - i;
}

static void mark_consumed(struct parser *p, size_t s, size_t e)
{
    if (e > s) {
        memset(p->consumed + s, 1, e - s);
    }
}

static void assign(struct parser *p, const struct sset *set, enum dr_poll_answer_value a, size_t s,
                   size_t e)
{
    for (size_t i = 0; i < p->poll->n_slots; i++) {
        if (sset_has(set, i)) {
            p->ans[i] = a;
        }
    }
    mark_consumed(p, s < e ? s : e, s < e ? e : s);
}

static enum dr_poll_answer_value negate(enum dr_poll_answer_value a)
{
    return a == DR_POLL_NO ? DR_POLL_YES : DR_POLL_NO;
}

/* 1 when an answer starts at token i, after any light words ("no", "I can't", "✓", "?"). */
static int answer_at(const struct parser *p, size_t i)
{
    const struct lexer *lx = &p->lx;
    const struct phrase *ph;
    size_t k;

    while (i < lx->nv && lx->v[i].k == TK_WORD && is_light(lx, &lx->v[i]) &&
           !phrase_at(lx, i, &k)) {
        i++;
    }
    if (i >= lx->nv) {
        return 0;
    }
    if (lx->v[i].k == TK_SYM || is_punct(&lx->v[i], '?')) {
        return 1;
    }
    ph = lx->v[i].k == TK_WORD ? phrase_at(lx, i, &k) : NULL;
    return ph && (ph->k == IT_ANS || ph->k == IT_NEG);
}

/*
 * Whether the '.' at token j, right after a slot number, marks an item of a numbered list
 * ("1. No", "1. no 2. yes 3. no", as poll emails list their slots) rather than ending a
 * sentence: an answer follows the '.', and the number opens a clause or, on a line that holds
 * such a list already (in_list), follows the previous item's answer. Read as a full stop, the
 * answer would land in the next clause and the number alone would read as a yes.
 */
static int list_marker(const struct parser *p, size_t j, int clause_start, int in_list)
{
    const struct lexer *lx = &p->lx;
    size_t prev = p->nit;

    if (j >= lx->nv || !is_punct(&lx->v[j], '.') || !lx->v[j].adj ||
        (j + 1 < lx->nv && lx->v[j + 1].adj)) {
        return 0;
    }
    while (prev > 0 && (p->it[prev - 1].k == IT_CONJ || p->it[prev - 1].k == IT_LIGHT)) {
        prev--; /* "1. no, 2. yes" */
    }
    if (!clause_start && !(in_list && prev > 0 && p->it[prev - 1].k == IT_ANS)) {
        return 0;
    }
    return answer_at(p, j + 1);
}

/* Turns tokens into items. */
static void build_items(struct parser *p)
{
    struct lexer *lx = &p->lx;
    size_t i = 0;
    int clause_start = 1, after_slotword = 0, in_list = 0;

    while (i < lx->nv) {
        struct tok *t = &lx->v[i];
        const struct phrase *ph;
        struct sset set;
        size_t k;

        if (t->k == TK_NL) {
            add_item(p, IT_BREAK, t->s, t->e);
            clause_start = 1;
            in_list = 0;
            i++;
            continue;
        }
        if (t->k == TK_LABEL) {
            add_item(p, IT_REF, t->s, t->e);
            sset_add(&p->it[p->nit - 1].set, (size_t)t->num);
            p->it[p->nit - 1].strong = 1;
            clause_start = 0;
            i++;
            continue;
        }
        if (t->k == TK_SYM) {
            add_item(p, IT_ANS, t->s, t->e);
            p->it[p->nit - 1].a = t->c == 'y'   ? DR_POLL_YES
                                  : t->c == 'n' ? DR_POLL_NO
                                                : DR_POLL_MAYBE;
            i++;
            continue;
        }
        k = read_mention(p, i, &set);
        if (k > 0) {
            if (!sset_empty(&set)) {
                add_item(p, IT_REF, t->s, lx->v[i + k - 1].e);
                p->it[p->nit - 1].set = set;
                p->it[p->nit - 1].strong = 1;
            } else {
                add_item(p, IT_FILL, t->s, lx->v[i + k - 1].e);
            }
            clause_start = 0;
            after_slotword = 0;
            i += k;
            continue;
        }
        /* slot numbers and ranges */
        if (t->k == TK_NUM &&
            !(i + 1 < lx->nv && lx->v[i + 1].adj &&
              (lx->v[i + 1].k == TK_WORD || is_punct(&lx->v[i + 1], ':') ||
               is_punct(&lx->v[i + 1], '/')) &&
              !(is_punct(&lx->v[i + 1], ':') &&
                !(i + 2 < lx->nv && lx->v[i + 2].k == TK_NUM && lx->v[i + 2].adj)))) {
            long a = t->num, b = t->num;
            size_t j = i + 1, end = t->e;
            int strong = after_slotword || clause_start;
            int plausible = t->ndig <= 3;
            /* "1-3", "1 to 3", "1 through 3" */
            if (j + 1 < lx->nv &&
                (is_punct(&lx->v[j], '-') || tok_is(lx, &lx->v[j], "to") ||
                 tok_is(lx, &lx->v[j], "through") || tok_is(lx, &lx->v[j], "thru")) &&
                lx->v[j + 1].k == TK_NUM &&
                !(j + 2 < lx->nv && lx->v[j + 2].adj &&
                  (lx->v[j + 2].k == TK_WORD || is_punct(&lx->v[j + 2], ':')))) {
                b = lx->v[j + 1].num;
                plausible = plausible && lx->v[j + 1].ndig <= 3;
                end = lx->v[j + 1].e;
                j += 2;
                strong = 1;
            }
            if (j < lx->nv && (is_punct(&lx->v[j], ')') || is_punct(&lx->v[j], ':') ||
                               is_punct(&lx->v[j], '=') || is_punct(&lx->v[j], '.'))) {
                strong = 1;
            }
            if (i > 0 && is_punct(&lx->v[i - 1], '#')) {
                strong = 1;
            }
            if (plausible && a >= 1 && b >= a && (size_t)b <= p->poll->n_slots) {
                if (list_marker(p, j, clause_start, in_list)) {
                    end = lx->v[j].e;
                    j++; /* the '.' of "1." belongs to the number, it ends no sentence */
                    in_list = 1;
                }
                add_item(p, IT_REF, t->s, end);
                for (long s = a; s <= b; s++) {
                    sset_add(&p->it[p->nit - 1].set, (size_t)(s - 1));
                }
                p->it[p->nit - 1].strong = strong;
                clause_start = 0;
                after_slotword = 0;
                i = j;
                continue;
            }
        }
        after_slotword = 0;
        if (t->k == TK_WORD && (ph = phrase_at(lx, i, &k)) != NULL) {
            size_t e = lx->v[i + k - 1].e;
            add_item(p, ph->k, t->s, e);
            p->it[p->nit - 1].a = ph->a;
            if (ph->k2 != IT_NONE_) {
                add_item(p, ph->k2, t->s, e);
                p->it[p->nit - 1].a = ph->a;
            }
            if (ph->k == IT_SLOTWORD) {
                after_slotword = 1;
            }
            /* "no good": "no" before a yes-word negates it */
            if (ph->k == IT_ANS && ph->a == DR_POLL_NO && tok_is(lx, t, "no") && i + 1 < lx->nv) {
                size_t k2;
                const struct phrase *nx = phrase_at(lx, i + 1, &k2);
                if (nx && nx->k == IT_ANS && nx->a == DR_POLL_YES && lx->v[i + 1].k == TK_WORD) {
                    p->it[p->nit - 1].k = IT_NEG;
                }
            }
            if (ph->k == IT_BUT || ph->k == IT_BREAK) {
                clause_start = 1;
            } else if (ph->k != IT_CONJ && ph->k != IT_SLOTWORD) {
                clause_start = 0;
            }
            i += k;
            continue;
        }
        if (t->k == TK_PUNCT) {
            switch (t->c) {
            case '.':
            case '!':
            case ';':
                add_item(p, IT_BREAK, t->s, t->e);
                clause_start = 1;
                break;
            case '?':
                add_item(p, IT_ANS, t->s, t->e);
                p->it[p->nit - 1].a = DR_POLL_MAYBE;
                p->it[p->nit - 1].strong = -1; /* only right after a reference */
                add_item(p, IT_BREAK, t->s, t->e);
                clause_start = 1;
                break;
            case ',':
            case '&':
            case '+':
            case '/':
                add_item(p, IT_CONJ, t->s, t->e);
                break;
            case '#':
                after_slotword = 1;
                break;
            default:
                break; /* '-', ':', '(' and friends separate nothing */
            }
            i++;
            continue;
        }
        if (t->k == TK_WORD && is_light(lx, t)) {
            add_item(p, IT_LIGHT, t->s, t->e);
        } else {
            add_item(p, IT_FILL, t->s, t->e);
            clause_start = 0;
        }
        i++;
    }
    add_item(p, IT_BREAK, lx->n, lx->n);
}

/* 1 when the next item that matters after i (in the same clause) is a reference. */
static int ref_follows(const struct parser *p, size_t i)
{
    for (size_t j = i + 1; j < p->nit; j++) {
        enum itk k = p->it[j].k;
        if (k == IT_LIGHT || k == IT_CONJ || k == IT_SLOTWORD) {
            continue;
        }
        return k == IT_REF || k == IT_ALL || k == IT_NOTHING || k == IT_REST;
    }
    return 0;
}

/* Pairing state of the clause being read. */
struct clause {
    struct sset pend; /* references waiting for an answer */
    size_t pend_s, pend_e;
    int has_pend, pend_strong, pend_none, pend_dist, pend_answered, pure;
    enum dr_poll_answer_value first; /* an answer waiting for references */
    size_t ans_s, ans_e;
    int first_dist, first_used;
    int neg;
    int has_global;                   /* "all"/"none" seen */
    enum dr_poll_answer_value global; /* what "all"/"none" got */
    struct sset except;
    int in_except, has_except;
    size_t except_s, except_e;
    int pend_global; /* pend holds only what "all"/"any" stood for */
};

static void clause_reset(struct clause *c)
{
    memset(c, 0, sizeof(*c));
    c->pure = 1;
}

static void pend_clear(struct clause *c)
{
    memset(&c->pend, 0, sizeof(c->pend));
    c->has_pend = c->pend_strong = c->pend_none = c->pend_dist = c->pend_answered = 0;
    c->pend_global = 0;
}

/* 1 when item i comes right after "none"/"neither", light words aside. */
static int follows_nothing(const struct parser *p, size_t i)
{
    while (i > 0 && p->it[i - 1].k == IT_LIGHT) {
        i--;
    }
    return i > 0 && p->it[i - 1].k == IT_NOTHING;
}

static void on_ref(struct parser *p, struct clause *c, const struct item *it)
{
    struct sset set = it->k == IT_REF ? it->set : p->all;
    int global = it->k == IT_ALL || it->k == IT_NOTHING;

    if (it->k == IT_REST) {
        memset(&set, 0, sizeof(set));
        for (size_t s = 0; s < p->poll->n_slots; s++) {
            if (p->ans[s] == DR_POLL_UNANSWERED) {
                sset_add(&set, s);
            }
        }
    }
    int none = it->k == IT_NOTHING;
    int limit = (it->strong || it->k != IT_REF) ? 3 : 0;

    if (global) {
        c->has_global = 1;
    }
    if (c->in_except) {
        sset_or(&c->except, &set);
        c->has_except = 1;
        c->except_e = it->e;
        return;
    }
    if (c->has_pend && (c->pend_dist > 0 || c->pend_answered)) {
        pend_clear(c);
    }
    if (c->has_pend && global && !none && !c->pend_global) {
        /* "1 or 2, both work": "both" stands for the slots just named */
        c->pend_strong = 1;
        c->pend_e = it->e;
        return;
    }
    if (c->has_pend && !global && c->pend_global &&
        (!c->pend_none || follows_nothing(p, (size_t)(it - p->it)))) {
        /* "any time on Tuesday": the reference narrows "any"; "neither 1 nor 2", "none on
         * Tuesday": it narrows "none" when it comes right after it */
        memset(&c->pend, 0, sizeof(c->pend));
        c->pend_global = 0;
    }
    if (!c->has_pend) {
        c->pend_global = global;
    }
    if (!c->has_pend) {
        /* a new reference: words before it ("Hmm, 2 works") are not between it and its answer */
        c->pend_s = it->s;
        c->pend_dist = 0;
    }
    sset_or(&c->pend, &set);
    c->pend_e = it->e;
    c->has_pend = 1;
    c->pend_strong = c->pend_strong || it->strong || it->k != IT_REF;
    c->pend_none = c->pend_none || none;
    if (c->first != DR_POLL_UNANSWERED && c->first_dist <= limit) {
        /* "yes to 1 and 3": the answer came first; a later answer may still correct it */
        enum dr_poll_answer_value a = c->pend_none ? DR_POLL_NO : c->first;
        if (c->neg) {
            a = DR_POLL_NO;
        }
        assign(p, &c->pend, a, c->ans_s, it->e);
        if (c->has_global) {
            c->global = a;
        }
        c->pend_answered = 1;
        c->first_used = 1;
        c->first_dist = 0;
    }
}

static void on_answer(struct parser *p, struct clause *c, const struct item *it, size_t i)
{
    enum dr_poll_answer_value a = it->a;
    int limit = c->pend_strong ? 3 : 0;

    if (it->strong == -1) {
        /* '?' means "maybe" only right after a reference ("3?") */
        if (c->has_pend && c->pend_dist == 0 && !c->neg && !c->pend_answered) {
            assign(p, &c->pend, a, c->pend_s, it->e);
            pend_clear(c);
        }
        return;
    }
    if (c->neg) {
        a = negate(a);
        c->neg = 0;
    }
    if (c->in_except && c->has_except) {
        /* "all work except 3": the answer is the whole poll's verb */
        if (c->global != DR_POLL_UNANSWERED && a == c->global) {
            a = c->global == DR_POLL_NO ? DR_POLL_YES : DR_POLL_NO;
        }
        assign(p, &c->except, a, c->except_s, it->e);
        memset(&c->except, 0, sizeof(c->except));
        c->has_except = c->in_except = 0;
        return;
    }
    if (c->has_pend && c->pend_dist <= limit && !(c->pend_answered && ref_follows(p, i))) {
        if (c->pend_none) {
            a = DR_POLL_NO;
        }
        assign(p, &c->pend, a, c->pend_s, it->e);
        if (c->has_global) {
            c->global = a;
        }
        pend_clear(c);
        c->first = DR_POLL_UNANSWERED;
        return;
    }
    pend_clear(c);
    c->first = a;
    c->first_dist = 0;
    c->first_used = 0;
    c->ans_s = it->s;
    c->ans_e = it->e;
}

/* "except"/"but" after "all"/"none": settle the whole poll first, then collect exceptions. */
static void on_except(struct parser *p, struct clause *c, const struct item *it)
{
    if (c->has_pend && !c->pend_answered && c->has_global) {
        enum dr_poll_answer_value a = c->pend_none ? DR_POLL_NO : DR_POLL_YES;
        assign(p, &c->pend, a, c->pend_s, c->pend_e);
        c->global = a;
    }
    pend_clear(c);
    c->in_except = 1;
    c->except_s = it->s;
    c->except_e = it->e;
}

static void on_clause_end(struct parser *p, struct clause *c)
{
    if (c->has_pend && !c->pend_answered) {
        if (c->neg) {
            /* "but not 2" */
            assign(p, &c->pend, DR_POLL_NO, c->pend_s, c->ans_e > c->pend_e ? c->ans_e : c->pend_e);
            c->global = c->has_global ? DR_POLL_NO : c->global;
            c->neg = 0;
        } else if (c->pend_none && c->pure) {
            assign(p, &c->pend, DR_POLL_NO, c->pend_s, c->pend_e);
            c->global = DR_POLL_NO;
        } else if (c->pend_strong && c->pure) {
            /* "1 and 3" or "any of them" with no other words */
            assign(p, &c->pend, DR_POLL_YES, c->pend_s, c->pend_e);
            c->global = c->has_global ? DR_POLL_YES : c->global;
        }
    }
    if (c->in_except && c->has_except) {
        enum dr_poll_answer_value a = c->neg                    ? DR_POLL_NO
                                      : c->global == DR_POLL_NO ? DR_POLL_YES
                                                                : DR_POLL_NO;
        assign(p, &c->except, a, c->except_s, c->except_e);
        c->neg = 0;
    }
    if (c->first != DR_POLL_UNANSWERED && !c->first_used) {
        p->lone = c->first;
        p->lone_s = c->ans_s;
        p->lone_e = c->ans_e;
    } else if (c->neg && c->first == DR_POLL_UNANSWERED && !c->has_pend) {
        p->lone = DR_POLL_NO;
        p->lone_s = c->ans_s;
        p->lone_e = c->ans_e;
    }
    clause_reset(c);
}

/* Pairs references and answers clause by clause. */
static void pair(struct parser *p)
{
    struct clause c;

    clause_reset(&c);
    for (size_t i = 0; i < p->nit; i++) {
        struct item *it = &p->it[i];
        switch (it->k) {
        case IT_REF:
        case IT_ALL:
        case IT_NOTHING:
        case IT_REST:
            on_ref(p, &c, it);
            break;
        case IT_ANS:
            on_answer(p, &c, it, i);
            break;
        case IT_NEG:
            c.neg = 1;
            if (c.first == DR_POLL_UNANSWERED) {
                c.ans_s = it->s;
                c.ans_e = it->e;
            }
            break;
        case IT_EXCEPT:
            on_except(p, &c, it);
            break;
        case IT_BUT:
            if (c.has_global && !c.in_except) {
                on_except(p, &c, it);
            } else {
                on_clause_end(p, &c);
            }
            break;
        case IT_FILL:
            c.pend_dist++;
            c.first_dist++;
            c.pure = 0;
            break;
        case IT_BREAK:
            on_clause_end(p, &c);
            break;
        default:
            break;
        }
    }
    on_clause_end(p, &c);
}

/* ---- comment ------------------------------------------------------------------------------ */

static int build_comment(struct parser *p, char **out)
{
    const char *t = p->lx.t;
    size_t n = p->lx.n, s = 0;
    struct dr_buf raw, b;
    int err = DR_OK;

    dr_buf_init(&raw, n + 1);
    dr_buf_init(&b, n + 1);
    err = dr_buf_append(&raw, "", 0);
    /* Sub-clauses that held a preference are dropped whole. */
    for (size_t i = 0; i <= n && !err; i++) {
        int cut = i == n || t[i] == '\n' || t[i] == ',' || t[i] == ';' || t[i] == '!' ||
                  t[i] == '?' || (t[i] == '.' && (i + 1 == n || isspace((unsigned char)t[i + 1])));
        if (!cut) {
            continue;
        }
        size_t e = i < n ? i + 1 : n;
        int used = memchr(p->consumed + s, 1, e - s) != NULL;
        if (!used) {
            err = dr_buf_append(&raw, t + s, e - s);
        } else if (t[e - 1] == '\n') {
            err = dr_buf_appendc(&raw, '\n');
        }
        s = e;
    }
    /* Tidy: trim each line, drop leading separators left behind, squeeze blank lines. */
    if (!err) {
        size_t ls = 0;
        int blank_run = 0;
        err = dr_buf_append(&b, "", 0);
        for (size_t i = 0; i <= raw.len && !err; i++) {
            if (i < raw.len && raw.data[i] != '\n') {
                continue;
            }
            size_t a = ls, e = i;
            while (a < e && (isspace((unsigned char)raw.data[a]) || raw.data[a] == ',' ||
                             raw.data[a] == ';' || raw.data[a] == '-')) {
                a++;
            }
            while (e > a && isspace((unsigned char)raw.data[e - 1])) {
                e--;
            }
            if (e == a) {
                blank_run++;
            } else {
                if (b.len > 0) {
                    err = dr_buf_appends(&b, blank_run ? "\n\n" : "\n");
                }
                for (size_t k = a; k < e && !err; k++) {
                    /* squeeze runs of spaces left where a clause was removed */
                    if (raw.data[k] == ' ' && k > a && raw.data[k - 1] == ' ') {
                        continue;
                    }
                    err = dr_buf_appendc(&b, raw.data[k]);
                }
                blank_run = 0;
            }
            ls = i + 1;
        }
    }
    while (!err && b.len > 0 && strchr(",;:-", b.data[b.len - 1])) {
        b.data[--b.len] = '\0';
    }
    if (!err) {
        size_t len;
        *out = dr_buf_steal(&b, &len);
    }
    dr_buf_cleanup(&raw);
    dr_buf_cleanup(&b);
    return err;
}

/* ---- entry point ----------------------------------------------------------------------------- */

static void find_labels(struct parser *p)
{
    struct lexer *lx = &p->lx;
    for (size_t s = 0; s < p->poll->n_slots; s++) {
        const char *label = p->poll->slots[s].label;
        size_t ll;
        char *low;
        const char *at, *hay = lx->lc;
        if (!label || (ll = strlen(label)) < 3) {
            continue;
        }
        low = dr_xstrdup(label);
        for (size_t i = 0; i < ll; i++) {
            low[i] = (char)tolower((unsigned char)low[i]);
        }
        while ((at = memmem(hay, lx->n - (size_t)(hay - lx->lc), low, ll)) != NULL) {
            size_t pos = (size_t)(at - lx->lc), end = pos + ll;
            int left = pos == 0 || !isalnum((unsigned char)lx->lc[pos - 1]);
            int right = end == lx->n || !isalnum((unsigned char)lx->lc[end]);
            if (left && right && end > lx->label_end[pos]) {
                lx->label_end[pos] = end;
                lx->label_slot[pos] = (int)s;
            }
            hay = at + 1;
        }
        free(low);
    }
    /* Overlapping labels: a span inside a longer one is not a label of its own. */
    for (size_t i = 0, reach = 0; i < lx->n; i++) {
        if (lx->label_end[i] && lx->label_end[i] <= reach) {
            lx->label_end[i] = 0;
        } else if (lx->label_end[i] > reach) {
            reach = lx->label_end[i];
        }
    }
}

int dr_poll_reply_parse(const struct dr_poll *poll, const char *reply_text,
                        struct dr_poll_answer **out)
{
    struct parser p;
    struct dr_poll_answer *ans = NULL;
    size_t n;
    char *lc = NULL;
    int err = DR_OK;

    if (out) {
        *out = NULL;
    }
    if (!poll || !reply_text || !out || !poll->poll_id || poll->n_slots > DR_POLL_MAX_SLOTS) {
        return DR_EINVAL;
    }
    n = strnlen(reply_text, DR_POLL_REPLY_MAX + 1);
    if (n > DR_POLL_REPLY_MAX) {
        return DR_ETOOBIG;
    }
    memset(&p, 0, sizeof(p));
    p.poll = poll;
    lc = dr_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        lc[i] = (char)tolower((unsigned char)reply_text[i]);
    }
    lc[n] = '\0';
    p.lx.t = reply_text;
    p.lx.lc = lc;
    p.lx.n = n;
    p.lx.v = dr_xcalloc(n + 1, sizeof(*p.lx.v));
    p.lx.label_end = dr_xcalloc(n + 1, sizeof(*p.lx.label_end));
    p.lx.label_slot = dr_xcalloc(n + 1, sizeof(*p.lx.label_slot));
    p.it = dr_xcalloc(2 * (n + 1) + 1, sizeof(*p.it));
    p.ans = dr_xcalloc(poll->n_slots + 1, sizeof(*p.ans));
    p.consumed = dr_xcalloc(n + 1, 1);
    p.si = dr_xcalloc(poll->n_slots + 1, sizeof(*p.si));
    for (size_t s = 0; s < poll->n_slots; s++) {
        time_t local =
            (time_t)(poll->slots[s].start_ms / 1000) + (time_t)poll->slots[s].start_offset_min * 60;
        struct tm tm;
        gmtime_r(&local, &tm);
        p.si[s].wday = tm.tm_wday;
        p.si[s].hour = tm.tm_hour;
        p.si[s].min = tm.tm_min;
        p.si[s].mday = tm.tm_mday;
        p.si[s].mon = tm.tm_mon + 1;
        sset_add(&p.all, s);
    }

    find_labels(&p);
    lex(&p.lx);
    build_items(&p);
    pair(&p);

    ans = dr_xcalloc(1, sizeof(*ans));
    ans->poll_id = dr_xstrdup(poll->poll_id);
    {
        size_t k = 0;
        for (size_t s = 0; s < poll->n_slots; s++) {
            k += p.ans[s] != DR_POLL_UNANSWERED;
        }
        /* "Yes, see you there" answers a poll of one slot. */
        if (k == 0 && poll->n_slots == 1 && p.lone != DR_POLL_UNANSWERED) {
            p.ans[0] = p.lone;
            mark_consumed(&p, p.lone_s, p.lone_e);
            k = 1;
        }
        ans->responses = dr_xcalloc(k + 1, sizeof(*ans->responses));
        for (size_t s = 0; s < poll->n_slots; s++) {
            if (p.ans[s] != DR_POLL_UNANSWERED) {
                ans->responses[ans->n_responses].slot_id = dr_xstrdup(poll->slots[s].slot_id);
                ans->responses[ans->n_responses].answer = p.ans[s];
                ans->n_responses++;
            }
        }
    }
    err = build_comment(&p, &ans->comment);
    if (err) {
        goto out;
    }
    *out = ans;
    ans = NULL;
out:
    dr_poll_answer_destroy(ans);
    free(lc);
    free(p.lx.v);
    free(p.lx.label_end);
    free(p.lx.label_slot);
    free(p.it);
    free(p.ans);
    free(p.consumed);
    free(p.si);
    return err;
}
