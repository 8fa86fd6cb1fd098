#include "dr/buf.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int dr_buf_append_json_str(struct dr_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = b->len, run = 0;
    int err = dr_buf_appendc(b, '"');

    /* runs of bytes that need no escape are appended whole */
    for (size_t i = 0; !err && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e;
        char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
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
