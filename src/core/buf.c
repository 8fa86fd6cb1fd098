#include "dr/buf.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "dr/err.h"

void dr_buf_init(struct dr_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void dr_buf_cleanup(struct dr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void dr_buf_reset(struct dr_buf *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

static int reserve(struct dr_buf *b, size_t extra)
{
    size_t need, ncap;
    char *p;

    if (extra > b->limit || b->len > b->limit - extra) {
        return DR_ETOOBIG;
    }
    need = b->len + extra + 1;
    if (need <= b->cap) {
        return DR_OK;
    }
    ncap = b->cap ? b->cap : 64;
    while (ncap < need) {
        ncap *= 2;
    }
    if (b->limit < SIZE_MAX && ncap > b->limit + 1) { /* SIZE_MAX: no limit */
        ncap = b->limit + 1;
    }
    p = realloc(b->data, ncap);
    if (!p) {
        return DR_ENOMEM;
    }
    b->data = p;
    b->cap = ncap;
    return DR_OK;
}

int dr_buf_reserve(struct dr_buf *b, size_t n)
{
    return reserve(b, n);
}

int dr_buf_append(struct dr_buf *b, const void *p, size_t n)
{
    int err = reserve(b, n);

    if (err) {
        return err;
    }
    if (n) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return DR_OK;
}

int dr_buf_appends(struct dr_buf *b, const char *s)
{
    return dr_buf_append(b, s, strlen(s));
}

int dr_buf_appendc(struct dr_buf *b, char c)
{
    return dr_buf_append(b, &c, 1);
}

int dr_buf_vprintf(struct dr_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n, err;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return DR_EINVAL;
    }
    err = reserve(b, (size_t)n);
    if (err) {
        return err;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return DR_OK;
}

int dr_buf_printf(struct dr_buf *b, const char *fmt, ...)
{
    va_list ap;
    int err;

    va_start(ap, fmt);
    err = dr_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return err;
}

/* The length of the run at s[0..n) of bytes that JSON strings carry unescaped: not '"', not
 * '\\', not below 0x20. */
static size_t plain_run(const unsigned char *s, size_t n)
{
    size_t i = 0;

#ifdef __SSE2__
    const __m128i ctl = _mm_set1_epi8(0x1F), quote = _mm_set1_epi8('"'),
                  bslash = _mm_set1_epi8('\\');

    for (; i + 16 <= n; i += 16) {
        __m128i c = _mm_loadu_si128((const __m128i *)(s + i));
        /* unsigned c <= 0x1F exactly when max(c, 0x1F) is 0x1F */
        __m128i bad =
            _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(c, ctl), ctl),
                         _mm_or_si128(_mm_cmpeq_epi8(c, quote), _mm_cmpeq_epi8(c, bslash)));
        unsigned m = (unsigned)_mm_movemask_epi8(bad);

        if (m) {
            return i + (size_t)__builtin_ctz(m);
        }
    }
#endif
    for (; i < n && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\'; i++) {
    }
    return i;
}

int dr_buf_append_json_str(struct dr_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = b->len, run = 0;
    int err = dr_buf_appendc(b, '"');

    /* runs of bytes that need no escape are found 16 at a time and appended whole */
    for (size_t i = 0; !err && i < n; i++) {
        unsigned char c;
        const char *e;

        i += plain_run((const unsigned char *)s + i, n - i);
        if (i == n) {
            break;
        }
        c = (unsigned char)s[i];
        err = dr_buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        default:
            e = NULL;
        }
        if (!err) {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            err = e ? dr_buf_append(b, e, 2) : dr_buf_append(b, u, 6);
        }
    }
    if (!err) {
        err = dr_buf_append(b, s + run, n - run);
    }
    if (!err) {
        err = dr_buf_appendc(b, '"');
    }
    if (err) {
        b->len = start;
        if (b->data) {
            b->data[start] = '\0';
        }
    }
    return err;
}

char *dr_buf_steal(struct dr_buf *b, size_t *len)
{
    char *p;

    if (!b->data && dr_buf_append(b, "", 0)) {
        return NULL;
    }
    p = b->data;
    if (len) {
        *len = b->len;
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
