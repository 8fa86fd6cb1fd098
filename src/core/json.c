#include "dr/json.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/util.h"

const char *dr_json_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

int dr_json_i64(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    double d;

    if (!it) {
        return DR_ENOTFOUND;
    }
    if (!cJSON_IsNumber(it)) {
        return DR_EINVAL;
    }
    d = it->valuedouble;
    /* converting a double outside [-2^63, 2^63) (or NaN) to int64_t is undefined */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != (double)(int64_t)d) {
        return DR_EINVAL;
    }
    *out = (int64_t)d;
    return DR_OK;
}

/* What cJSON skips as white space: every byte up to the space. */
static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' ') {
        p++;
    }
    return p;
}

/* p at a string's opening quote: the byte after its closing one (end if there is none). */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return end;
}

/* p at a value: the byte after it. */
static const char *skip_value(const char *p, const char *end)
{
    size_t depth = 0;

    if (p < end && *p == '"') {
        return skip_string(p, end);
    }
    if (p < end && (*p == '{' || *p == '[')) {
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                continue;
            }
            if (*p == '{' || *p == '[') {
                depth++;
            } else if ((*p == '}' || *p == ']') && --depth == 0) {
                return p + 1;
            }
            p++;
        }
        return end;
    }
    while (p < end && (unsigned char)*p > ' ' && *p != ',' && *p != '}' && *p != ']') {
        p++;
    }
    return p;
}

/* 1 when the string at p (its opening quote) up to q (after its closing one) reads as key, as
 * cJSON decodes it: up to a \u0000, which ends its C string. */
static int key_is(const char *p, const char *q, const char *key)
{
    size_t n, got;
    char stack[64], *buf;
    int same = 0;

    if (q - p < 2 || q[-1] != '"') {
        return 0; /* not closed */
    }
    n = (size_t)(q - p) - 2;
    buf = n < sizeof(stack) ? stack : dr_xmalloc(n + 1);
    if (dr_json_unescape(p + 1, n, buf, &got)) {
        buf[got] = '\0';
        same = strcmp(buf, key) == 0;
    }
    if (buf != stack) {
        free(buf);
    }
    return same;
}

int dr_json_i64_exact(const char *s, size_t len, const char *key, int64_t *out)
{
    const char *end = s + len, *p = skip_space(s, end), *q;
    char digits[24];

    if (p >= end || *p != '{') {
        return DR_EINVAL;
    }
    p = skip_space(p + 1, end);
    while (p < end && *p == '"') {
        q = skip_string(p, end);
        int match = key_is(p, q, key);
        p = skip_space(q, end);
        if (p >= end || *p != ':') {
            return DR_EINVAL;
        }
        p = skip_space(p + 1, end);
        q = skip_value(p, end);
        if (match) {
            size_t n = (size_t)(q - p);
            const char *d = p + (n && *p == '-');
            int64_t v;
            /* digits only, no leading zero: what strtoll() reads whole, sign and all */
            if (d == q || n >= sizeof(digits) || (d[0] == '0' && q - d > 1)) {
                return DR_EINVAL;
            }
            for (const char *c = d; c < q; c++) {
                if (*c < '0' || *c > '9') {
                    return DR_EINVAL;
                }
            }
            memcpy(digits, p, n);
            digits[n] = '\0';
            if (dr_parse_i64(digits, &v) != DR_OK) {
                return DR_EINVAL; /* out of int64_t */
            }
            *out = v;
            return DR_OK;
        }
        p = skip_space(q, end);
        if (p < end && *p == ',') {
            p = skip_space(p + 1, end);
        } else {
            break;
        }
    }
    return p < end && *p == '}' ? DR_ENOTFOUND : DR_EINVAL;
}

int dr_json_true(const cJSON *obj, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

const cJSON *dr_json_pointer(const cJSON *root, const char *ptr)
{
    const cJSON *cur = root;
    char tok[256];

    if (!ptr) {
        return NULL;
    }
    if (!*ptr) {
        return root;
    }
    if (*ptr != '/') {
        return NULL;
    }
    while (cur && *ptr == '/') {
        size_t n = 0;
        ptr++;
        while (*ptr && *ptr != '/') {
            char c = *ptr++;
            if (c == '~') {
                if (*ptr == '0') {
                    c = '~';
                } else if (*ptr == '1') {
                    c = '/';
                } else {
                    return NULL;
                }
                ptr++;
            }
            if (n + 1 >= sizeof(tok)) {
                return NULL;
            }
            tok[n++] = c;
        }
        tok[n] = '\0';
        if (cJSON_IsArray(cur)) {
            int64_t idx;
            if (dr_parse_i64(tok, &idx) || idx < 0 || idx > 1000000) {
                return NULL;
            }
            cur = cJSON_GetArrayItem(cur, (int)idx);
        } else if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        } else {
            return NULL;
        }
    }
    return cur;
}

int dr_json_has_escaped_nul(const char *s, size_t n)
{
    const char *end = s + n, *p = s;

    /* a backslash starts an escape, so the character after it never starts one */
    while ((p = memchr(p, '\\', (size_t)(end - p))) && end - p >= 2) {
        if (p[1] == 'u' && end - p >= 6 && memcmp(p + 2, "0000", 4) == 0) {
            return 1;
        }
        p += 2;
    }
    return 0;
}

const char *dr_json_text_problem(const char *s, size_t n)
{
    if (!dr_utf8_valid(s, n)) {
        return "invalid UTF-8";
    }
    if (memchr(s, '\0', n) || dr_json_has_escaped_nul(s, n)) {
        return "strings must not contain U+0000";
    }
    return NULL;
}

/*
 * Serialisation: the text cJSON_PrintUnformatted() writes (cJSON 1.7.15), byte for byte,
 * without its intermediate buffer and with whole numbers written directly. cJSON writes every
 * number with sprintf("%1.15g") and reads it back with sscanf() to see whether it needs
 * "%1.17g": for ids, counts and epoch milliseconds that is most of the cost of writing a
 * message.
 */

/* cJSON's compare_double(): equal within the relative precision of a double. */
static int close_enough(double a, double b)
{
    double max = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= max * DBL_EPSILON;
}

static const uint64_t pow10_u64[20] = {1ULL,
                                       10ULL,
                                       100ULL,
                                       1000ULL,
                                       10000ULL,
                                       100000ULL,
                                       1000000ULL,
                                       10000000ULL,
                                       100000000ULL,
                                       1000000000ULL,
                                       10000000000ULL,
                                       100000000000ULL,
                                       1000000000000ULL,
                                       10000000000000ULL,
                                       100000000000000ULL,
                                       1000000000000000ULL,
                                       10000000000000000ULL,
                                       100000000000000000ULL,
                                       1000000000000000000ULL,
                                       10000000000000000000ULL};

/* Writes u's digits ending at end; returns where they start. */
static char *digits(uint64_t u, char *end)
{
    do {
        *--end = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    return end;
}

/* u (ndig > keep digits) rounded to keep significant digits as printf rounds: to nearest, a tie
 * to even. *exp10 gets the power of ten of the first digit. */
static uint64_t round_sig(uint64_t u, int ndig, int keep, int *exp10)
{
    uint64_t div = pow10_u64[ndig - keep], q = u / div, r = u % div;

    if (r > div / 2 || (r == div / 2 && (q & 1))) {
        q++;
    }
    *exp10 = ndig - 1;
    if (q == pow10_u64[keep]) { /* 99...9 rounded up */
        q /= 10;
        (*exp10)++;
    }
    return q;
}

/* What "%1.<keep>g" writes for q (keep digits) times 10^(exp10 - keep + 1) when keep <= exp10
 * <= 99: the digits without their trailing zeros, a point after the first, "e+" and the two
 * digits of the exponent. */
static int append_exp(struct dr_buf *b, int neg, uint64_t q, int exp10)
{
    char tmp[48], *p = tmp, dig[24], *d = digits(q, dig + sizeof(dig));
    char *e = dig + sizeof(dig);

    while (e > d + 1 && e[-1] == '0') {
        e--;
    }
    if (neg) {
        *p++ = '-';
    }
    *p++ = *d++;
    if (d < e) {
        *p++ = '.';
        memcpy(p, d, (size_t)(e - d));
        p += e - d;
    }
    *p++ = 'e';
    *p++ = '+';
    *p++ = (char)('0' + exp10 / 10);
    *p++ = (char)('0' + exp10 % 10);
    return dr_buf_append(b, tmp, (size_t)(p - tmp));
}

int dr_json_append_number(struct dr_buf *b, double d)
{
    char tmp[32];
    int n;

    if (isnan(d) || isinf(d)) {
        return dr_buf_append(b, "null", 4);
    }
    if (fabs(d) < 18446744073709551616.0 && d == floor(d) && !(d == 0 && signbit(d))) {
        /* A whole number below 2^64 (-0 is left to printf, which writes "-0"). Below 1e15
         * "%1.15g" writes its digits, no exponent, no point. From there (nanosecond timestamps)
         * it has an exponent; cJSON keeps it when it reads back close enough, else writes
         * "%1.17g", which is every digit below 1e17 and an exponent above. */
        uint64_t u = (uint64_t)fabs(d), q;
        int neg = d < 0, nd = 16, x;

        if (u >= pow10_u64[15]) {
            while (nd < 20 && u >= pow10_u64[nd]) {
                nd++;
            }
            q = round_sig(u, nd, 15, &x);
            if (close_enough((double)((unsigned __int128)q * pow10_u64[x - 14]), fabs(d))) {
                return append_exp(b, neg, q, x);
            }
            if (nd > 17) {
                q = round_sig(u, nd, 17, &x);
                return append_exp(b, neg, q, x);
            }
        }
        char *p = digits(u, tmp + sizeof(tmp));
        if (neg) {
            *--p = '-';
        }
        return dr_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
    }
    n = snprintf(tmp, sizeof(tmp), "%1.15g", d);
    if (!close_enough(strtod(tmp, NULL), d)) {
        n = snprintf(tmp, sizeof(tmp), "%1.17g", d);
    }
    return n > 0 && (size_t)n < sizeof(tmp) ? dr_buf_append(b, tmp, (size_t)n) : DR_EINVAL;
}

#define I64_TEXT_SIZE 21 /* "-9223372036854775808" and its NUL */

/* v's decimal digits, '-' first when negative, NUL-terminated, at the end of tmp; returns where
 * they start. */
static char *i64_text(int64_t v, char tmp[I64_TEXT_SIZE])
{
    /* the magnitude in unsigned arithmetic: -INT64_MIN is not an int64_t */
    char *p = digits(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, tmp + I64_TEXT_SIZE - 1);

    tmp[I64_TEXT_SIZE - 1] = '\0';
    if (v < 0) {
        *--p = '-';
    }
    return p;
}

int dr_json_append_i64(struct dr_buf *b, int64_t v)
{
    char tmp[I64_TEXT_SIZE], *p = i64_text(v, tmp);

    return dr_buf_append(b, p, (size_t)(tmp + I64_TEXT_SIZE - 1 - p));
}

void dr_json_add_i64(cJSON *obj, const char *name, int64_t v)
{
    char tmp[I64_TEXT_SIZE];

    if (!cJSON_AddRawToObject(obj, name, i64_text(v, tmp))) {
        abort(); /* out of memory */
    }
}

static int append_string(struct dr_buf *b, const char *s)
{
    return s ? dr_buf_append_json_str(b, s, strlen(s)) : dr_buf_append(b, "\"\"", 2);
}

static int append_item(struct dr_buf *b, const cJSON *it)
{
    int err = DR_OK;

    switch (it->type & 0xFF) {
    case cJSON_NULL:
        return dr_buf_append(b, "null", 4);
    case cJSON_False:
        return dr_buf_append(b, "false", 5);
    case cJSON_True:
        return dr_buf_append(b, "true", 4);
    case cJSON_Number:
        return dr_json_append_number(b, it->valuedouble);
    case cJSON_Raw:
        return it->valuestring ? dr_buf_append(b, it->valuestring, strlen(it->valuestring))
                               : DR_EINVAL;
    case cJSON_String:
        return append_string(b, it->valuestring);
    case cJSON_Array:
    case cJSON_Object: {
        int obj = (it->type & 0xFF) == cJSON_Object;

        err = dr_buf_appendc(b, obj ? '{' : '[');
        for (const cJSON *c = it->child; c && !err; c = c->next) {
            if (obj) {
                err = append_string(b, c->string);
                err = err ? err : dr_buf_appendc(b, ':');
            }
            err = err ? err : append_item(b, c);
            if (!err && c->next) {
                err = dr_buf_appendc(b, ',');
            }
        }
        return err ? err : dr_buf_appendc(b, obj ? '}' : ']');
    }
    default:
        return DR_EINVAL; /* cJSON_Invalid: cJSON prints nothing either */
    }
}

int dr_json_append(struct dr_buf *b, const cJSON *item)
{
    size_t start = b->len;
    int err = item ? append_item(b, item) : DR_EINVAL;

    if (err) {
        b->len = start;
        if (b->data) {
            b->data[start] = '\0';
        }
    }
    return err;
}

char *dr_json_print(const cJSON *item)
{
    struct dr_buf b;

    dr_buf_init(&b, SIZE_MAX);
    if (dr_json_append(&b, item)) {
        abort(); /* out of memory, or an item cJSON could not print either */
    }
    return dr_buf_steal(&b, NULL);
}
