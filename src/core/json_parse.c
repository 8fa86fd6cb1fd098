/*
 * dr_json_parse(): JSON text into a cJSON tree, fast on long strings.
 *
 * cJSON reads a string byte by byte, twice (once to find its end, once to copy it), which makes
 * a message carrying a 50 KB base64 email cost ~50 µs to parse. This parser finds quotes and
 * backslashes sixteen bytes at a time and copies the runs between them with memcpy, and builds
 * the same tree cJSON_ParseWithLengthOpts(s, len, NULL, 0) would.
 *
 * It takes only what it can decide exactly as cJSON does: RFC 8259 JSON with the four JSON
 * whitespace bytes, numbers of up to 63 characters, nesting up to FAST_DEPTH. Anything else (a
 * byte-order mark, cJSON's other whitespace, a malformed document, ...) is handed to cJSON
 * itself, so what parses and what does not is exactly cJSON's. What cJSON accepts beyond the
 * standard stays accepted: a value followed by anything (the trailing bytes are not looked at),
 * control characters inside strings (kept as they are), invalid UTF-8 (kept as it is).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_int.h"
#include "dr/json.h"
#include "dr/util.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Deeper documents go to cJSON (which allows 1,000 levels): no deep recursion here. */
#define FAST_DEPTH 200
/* cJSON reads at most 63 characters of a number. */
#define NUMBER_MAX 63
/* Documents this short go to cJSON directly: there is nothing to win. */
#define FAST_MIN 256

enum { OK, FAIL, NOMEM };

struct in {
    const char *p, *end;
    int depth;
};

static cJSON *value(struct in *in, int *st);

static void skip_ws(struct in *in)
{
    while (in->p < in->end &&
           (*in->p == ' ' || *in->p == '\n' || *in->p == '\r' || *in->p == '\t')) {
        in->p++;
    }
}

/* The first '"' or '\\' in [p, end), or end. */
static const char *quote_or_backslash(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\');

    for (; end - p >= 16; p += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m =
            (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, b)));
        if (m) {
            return p + __builtin_ctz(m);
        }
    }
#endif
    for (; p < end && *p != '"' && *p != '\\'; p++) {
    }
    return p;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (unsigned)(c - 'A' + 10);
        } else {
            return -1;
        }
    }
    *out = v;
    return 0;
}

/*
 * The \u escape at p (its backslash) as UTF-8 at *o: one UTF-16 unit, or a surrogate pair. A low
 * surrogate alone, or a high one not followed by "\u" and a low one, is invalid (as for cJSON).
 * Returns the bytes of input used, 0 if invalid.
 */
static size_t unicode_escape(const char *p, const char *end, char **o)
{
    unsigned first, second, cp;
    size_t used = 6;

    if (end - p < 6 || hex4(p + 2, &first) != 0 || (first >= 0xDC00 && first <= 0xDFFF)) {
        return 0;
    }
    cp = first;
    if (first >= 0xD800 && first <= 0xDBFF) {
        if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &second) != 0 ||
            second < 0xDC00 || second > 0xDFFF) {
            return 0;
        }
        cp = 0x10000 + (((first & 0x3FF) << 10) | (second & 0x3FF));
        used = 12;
    }
    *o += dr_utf8_encode(cp, *o);
    return used;
}

int dr_json_unescape(const char *in, size_t n, char *out, size_t *outlen)
{
    const char *end = in + n;
    char *o = out;

    while (in < end) {
        const char *bs = memchr(in, '\\', (size_t)(end - in));
        size_t used = 2;

        if (!bs) {
            bs = end;
        }
        memcpy(o, in, (size_t)(bs - in));
        o += bs - in;
        in = bs;
        if (in >= end) {
            break;
        }
        if (end - in < 2) {
            return 0;
        }
        switch (in[1]) {
        case '"':
        case '\\':
        case '/':
            *o++ = in[1];
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u':
            if (!(used = unicode_escape(in, end, &o))) {
                return 0;
            }
            break;
        default:
            return 0;
        }
        in += used;
    }
    *outlen = (size_t)(o - out);
    return 1;
}

/* The string at in->p (its opening quote), decoded into a malloc'ed buffer. */
static char *string(struct in *in, int *st)
{
    const char *start = in->p + 1, *p = start;
    char *out;
    size_t n;

    /* its end: the first quote no backslash escapes */
    for (;;) {
        p = quote_or_backslash(p, in->end);
        if (p >= in->end) {
            *st = FAIL;
            return NULL;
        }
        if (*p == '"') {
            break;
        }
        if (in->end - p < 2) { /* the backslash and what it escapes */
            *st = FAIL;
            return NULL;
        }
        p += 2;
    }
    /* decoding never makes it longer: \uXXXX is 6 bytes for at most 3, a pair 12 for 4 */
    out = malloc((size_t)(p - start) + 1);
    if (!out) {
        *st = NOMEM;
        return NULL;
    }
    if (!dr_json_unescape(start, (size_t)(p - start), out, &n)) {
        free(out);
        *st = FAIL;
        return NULL;
    }
    out[n] = '\0';
    in->p = p + 1;
    return out;
}

static int digit(char c)
{
    return c >= '0' && c <= '9';
}

static cJSON *number(struct in *in, int *st)
{
    const char *p = in->p;
    char buf[NUMBER_MAX + 1], *after;
    double d;
    cJSON *it;

    if (p < in->end && *p == '-') {
        p++;
    }
    if (p >= in->end || !digit(*p)) {
        *st = FAIL;
        return NULL;
    }
    if (*p == '0') {
        p++;
    } else {
        while (p < in->end && digit(*p)) {
            p++;
        }
    }
    if (p < in->end && *p == '.') {
        p++;
        if (p >= in->end || !digit(*p)) {
            *st = FAIL;
            return NULL;
        }
        while (p < in->end && digit(*p)) {
            p++;
        }
    }
    if (p < in->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < in->end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= in->end || !digit(*p)) {
            *st = FAIL;
            return NULL;
        }
        while (p < in->end && digit(*p)) {
            p++;
        }
    }
    /* cJSON reads every character that may belong to a number, then what strtod() takes of
     * them: after a number, such a character must go to cJSON ("01", "1-2", "1.5.5") */
    if (p - in->p > NUMBER_MAX || (p < in->end && (digit(*p) || *p == '+' || *p == '-' ||
                                                   *p == '.' || *p == 'e' || *p == 'E'))) {
        *st = FAIL;
        return NULL;
    }
    memcpy(buf, in->p, (size_t)(p - in->p));
    buf[p - in->p] = '\0';
    d = strtod(buf, &after);
    if (after != buf + (p - in->p)) {
        *st = FAIL; /* a decimal point other than '.' in this locale: cJSON knows */
        return NULL;
    }
    it = cJSON_CreateNumber(d);
    if (!it) {
        *st = NOMEM;
        return NULL;
    }
    in->p = p;
    return it;
}

static int literal(struct in *in, const char *word, size_t n)
{
    if ((size_t)(in->end - in->p) < n || memcmp(in->p, word, n) != 0) {
        return 0;
    }
    in->p += n;
    return 1;
}

/* Objects and arrays: members appended in order, keys owned by their items (as cJSON does). */
static cJSON *container(struct in *in, int *st, int object)
{
    char close = object ? '}' : ']';
    cJSON *c = object ? cJSON_CreateObject() : cJSON_CreateArray();

    if (!c) {
        *st = NOMEM;
        return NULL;
    }
    if (++in->depth > FAST_DEPTH) {
        *st = FAIL;
        goto fail;
    }
    in->p++;
    skip_ws(in);
    if (in->p < in->end && *in->p == close) {
        in->p++;
        in->depth--;
        return c;
    }
    for (;;) {
        char *key = NULL;
        cJSON *v;

        if (object) {
            if (in->p >= in->end || *in->p != '"') {
                *st = FAIL;
                goto fail;
            }
            if (!(key = string(in, st))) {
                goto fail;
            }
            skip_ws(in);
            if (in->p >= in->end || *in->p != ':') {
                free(key);
                *st = FAIL;
                goto fail;
            }
            in->p++;
            skip_ws(in);
        }
        if (!(v = value(in, st))) {
            free(key);
            goto fail;
        }
        v->string = key;
        cJSON_AddItemToArray(c, v);
        skip_ws(in);
        if (in->p < in->end && *in->p == ',') {
            in->p++;
            skip_ws(in);
            continue;
        }
        if (in->p < in->end && *in->p == close) {
            in->p++;
            in->depth--;
            return c;
        }
        *st = FAIL;
        goto fail;
    }
fail:
    cJSON_Delete(c);
    return NULL;
}

static cJSON *value(struct in *in, int *st)
{
    cJSON *it;

    if (in->p >= in->end) {
        *st = FAIL;
        return NULL;
    }
    switch (*in->p) {
    case '{':
        return container(in, st, 1);
    case '[':
        return container(in, st, 0);
    case '"': {
        char *s = string(in, st);
        if (!s) {
            return NULL;
        }
        if (!(it = cJSON_CreateNull())) {
            free(s);
            *st = NOMEM;
            return NULL;
        }
        it->type = cJSON_String;
        it->valuestring = s;
        return it;
    }
    case 't':
        if (literal(in, "true", 4)) {
            if ((it = cJSON_CreateTrue())) {
                it->valueint = 1; /* as cJSON's parser leaves it */
            }
            *st = it ? OK : NOMEM;
            return it;
        }
        break;
    case 'f':
        if (literal(in, "false", 5)) {
            it = cJSON_CreateFalse();
            *st = it ? OK : NOMEM;
            return it;
        }
        break;
    case 'n':
        if (literal(in, "null", 4)) {
            it = cJSON_CreateNull();
            *st = it ? OK : NOMEM;
            return it;
        }
        break;
    default:
        if (*in->p == '-' || digit(*in->p)) {
            return number(in, st);
        }
    }
    *st = FAIL;
    return NULL;
}

/* The fast parser, *end after the value it returns. */
static cJSON *parse_fast(const char *s, size_t len, int *nomem, const char **end)
{
    struct in in = {s, s + len, 0};
    int st = OK;
    cJSON *root;

    skip_ws(&in);
    root = value(&in, &st);
    *nomem = !root && st == NOMEM;
    *end = in.p;
    return root;
}

cJSON *dr__json_parse_fast(const char *s, size_t len, int *nomem)
{
    const char *end;

    return parse_fast(s, len, nomem, &end); /* what follows the value is not looked at */
}

cJSON *dr_json_parse_prefix(const char *s, size_t len, const char **end)
{
    cJSON *root;
    int nomem;

    *end = NULL;
    if (!s || len > 64u * 1024 * 1024) {
        return NULL;
    }
    if (len >= FAST_MIN && ((root = parse_fast(s, len, &nomem, end)) || nomem)) {
        return root;
    }
    return cJSON_ParseWithLengthOpts(s, len, end, 0);
}

cJSON *dr_json_parse(const char *s, size_t len)
{
    const char *end;

    return dr_json_parse_prefix(s, len, &end);
}
