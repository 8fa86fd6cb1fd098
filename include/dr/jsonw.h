/*
 * A small JSON text writer for messages built field by field (the email processor's emits, a
 * notification's stored body) without a cJSON tree: the bytes cJSON prints unformatted for the
 * same tree (member order as written, cJSON's string escapes through dr_buf_append_json_str(),
 * its number format). The first error sticks in err and later calls do nothing. A separator is
 * written unless the container just opened, which the last byte written tells (no value ends
 * with '{' or '[').
 */
#ifndef DR_JSONW_H
#define DR_JSONW_H

#include <string.h>

#include <cjson/cJSON.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"

struct jw {
    struct dr_buf *b;
    int err;
};

static inline void jw_raw(struct jw *w, const char *s, size_t n)
{
    if (!w->err) {
        w->err = dr_buf_append(w->b, s, n);
    }
}

/* A separator unless the container just opened. */
static inline void jw_sep(struct jw *w)
{
    char last = w->b->len ? w->b->data[w->b->len - 1] : '{';

    if (last != '{' && last != '[') {
        jw_raw(w, ",", 1);
    }
}

static inline void jw_key(struct jw *w, const char *key)
{
    jw_sep(w);
    if (!w->err) {
        w->err = dr_buf_append_json_str(w->b, key, strlen(key));
    }
    jw_raw(w, ":", 1);
}

/* The string s[0..n), up to a NUL byte in it. */
static inline void jw_strn(struct jw *w, const char *s, size_t n)
{
    if (!w->err) {
        w->err = dr_buf_append_json_str(w->b, s, strnlen(s, n));
    }
}

static inline void jw_cstr(struct jw *w, const char *s)
{
    if (!w->err) {
        w->err = dr_buf_append_json_str(w->b, s, strlen(s));
    }
}

/* A member; none when s is NULL (cJSON_AddStringToObject() adds nothing then). */
static inline void jw_str(struct jw *w, const char *key, const char *s)
{
    if (!s) {
        return;
    }
    jw_key(w, key);
    jw_cstr(w, s);
}

static inline void jw_opt(struct jw *w, const char *key, const char *s)
{
    if (s && *s) {
        jw_str(w, key, s);
    }
}

/* An array element (NULL is skipped, as cJSON_CreateString(NULL) adds nothing). */
static inline void jw_elem(struct jw *w, const char *s)
{
    if (s) {
        jw_sep(w);
        jw_cstr(w, s);
    }
}

/* A number in cJSON's own format. */
static inline void jw_num(struct jw *w, const char *key, double d)
{
    jw_key(w, key);
    if (!w->err) {
        w->err = dr_json_append_number(w->b, d);
    }
}

static inline void jw_json(struct jw *w, const char *key, const cJSON *v)
{
    jw_key(w, key);
    if (!w->err) {
        w->err = dr_json_append(w->b, v);
    }
}

#endif
