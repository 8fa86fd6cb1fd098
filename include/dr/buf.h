/*
 * Growable byte buffer with a hard cap (like curl's dynbuf): every append that would grow the
 * buffer past its cap fails with DR_ETOOBIG and leaves the content as it was. The content is
 * always NUL-terminated (the terminator is not counted in len). Not thread-safe.
 */
#ifndef DR_BUF_H
#define DR_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct dr_buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;   /* allocated bytes */
    size_t limit; /* maximum len */
};

void dr_buf_init(struct dr_buf *b, size_t limit);
void dr_buf_cleanup(struct dr_buf *b); /* frees data; the buffer can be reused after init */
void dr_buf_reset(struct dr_buf *b);   /* len = 0, keeps the allocation */
/* Makes room for n more bytes now (DR_ETOOBIG past the limit), so appends don't reallocate. */
int dr_buf_reserve(struct dr_buf *b, size_t n);
int dr_buf_append(struct dr_buf *b, const void *p, size_t n);
int dr_buf_appends(struct dr_buf *b, const char *s);
int dr_buf_appendc(struct dr_buf *b, char c);
int dr_buf_printf(struct dr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int dr_buf_vprintf(struct dr_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included, escaping as RFC 8259 requires: '"',
 * '\\' and bytes below 0x20 only (short forms where JSON has them, else lowercase \u00xx), the
 * way cJSON prints strings. */
int dr_buf_append_json_str(struct dr_buf *b, const char *s, size_t n);
/* Hands the data to the caller (free()), leaving the buffer empty. Never NULL on success. */
char *dr_buf_steal(struct dr_buf *b, size_t *len);

#endif
