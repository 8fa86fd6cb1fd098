/*
 * The dr_email object: limits, lifetime, warnings, error reasons, and the normalisation every
 * producer of a dr_email (MIME parser, JSON fields) shares.
 */
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dr/err.h"
#include "dr/util.h"
#include "processors/email/email_int.h"

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static _Thread_local char reason[256];

static void gmime_init_once(void)
{
    g_mime_init();
}

void dr__email_gmime_init(void)
{
    pthread_once(&gmime_once, gmime_init_once);
}

void dr_email_global_init(void)
{
    dr__email_gmime_init();
}

void dr_email_limits_init(struct dr_email_limits *lim)
{
    lim->max_message_bytes = 25u * 1024 * 1024;
    lim->max_parts = 500;
    lim->max_depth = 20;
    lim->max_text_bytes = 1024 * 1024;
}

const char *dr_email_error_reason(void)
{
    return reason;
}

void dr__email_set_reason(const char *fmt, ...)
{
    va_list ap;

    if (!fmt) {
        reason[0] = '\0';
        return;
    }
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
}

void dr__email_warn(struct dr_email *em, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    if (em->n_warnings > DR_EMAIL_MAX_WARNINGS) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < em->n_warnings; i++) {
        if (strcmp(em->warnings[i], msg) == 0) {
            return;
        }
    }
    if (em->n_warnings == DR_EMAIL_MAX_WARNINGS) {
        snprintf(msg, sizeof(msg), "more than %d warnings; the rest were dropped",
                 DR_EMAIL_MAX_WARNINGS);
    }
    em->warnings = dr_xrealloc(em->warnings, (em->n_warnings + 1) * sizeof(char *));
    em->warnings[em->n_warnings++] = dr__email_utf8_dup(msg, strlen(msg), sizeof(msg), NULL);
}

size_t dr__email_utf8_boundary(const char *s, size_t n)
{
    size_t i = n, back = 0;

    /* Step back over continuation bytes to the lead byte of the last sequence. */
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0) {
        return n;
    }
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead < 0x80         ? 1
                  : (lead >> 5) == 6  ? 2
                  : (lead >> 4) == 14 ? 3
                  : (lead >> 3) == 30 ? 4
                                      : 1;
    return (back + 1 >= want) ? n : i - 1;
}

char *dr__email_utf8_dup(const char *s, size_t n, size_t max, int *cut)
{
    const char *end;
    char *tmp = NULL, *r;
    size_t len;

    if (cut) {
        *cut = 0;
    }
    if (!g_utf8_validate(s, (gssize)n, &end) || memchr(s, '\0', n)) {
        /* g_utf8_make_valid replaces invalid bytes with U+FFFD; NULs would end the string. */
        char *nonul = dr_xmalloc(n + 1);
        for (size_t i = 0; i < n; i++) {
            nonul[i] = s[i] ? s[i] : ' ';
        }
        tmp = g_utf8_make_valid(nonul, (gssize)n);
        free(nonul);
        s = tmp;
        n = strlen(tmp);
    }
    len = n;
    if (len > max) {
        len = dr__email_utf8_boundary(s, max);
        if (cut) {
            *cut = 1;
        }
    }
    r = dr_xstrndup(s, len);
    g_free(tmp);
    return r;
}

char *dr__email_clean_line(char *s)
{
    char *w = s, *r = s;
    int sp = 0;

    if (!s) {
        return NULL;
    }
    for (; *r; r++) {
        if (*r == ' ' || *r == '\t' || *r == '\r' || *r == '\n') {
            sp = (w != s);
            continue;
        }
        if (sp) {
            *w++ = ' ';
            sp = 0;
        }
        *w++ = *r;
    }
    *w = '\0';
    if (w == s) {
        free(s);
        return NULL;
    }
    return s;
}

static char *norm_address(const char *a)
{
    char *r, *at;
    size_t n;

    if (!a) {
        return NULL;
    }
    while (*a == ' ' || *a == '\t' || *a == '<') {
        a++;
    }
    n = strlen(a);
    while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t' || a[n - 1] == '>')) {
        n--;
    }
    if (n == 0) {
        return NULL;
    }
    r = dr__email_utf8_dup(a, n, DR_EMAIL_MAX_HEADER, NULL);
    at = strrchr(r, '@');
    if (at) {
        for (char *p = at + 1; *p; p++) {
            if (*p >= 'A' && *p <= 'Z') {
                *p = (char)(*p - 'A' + 'a');
            }
        }
    }
    return r;
}

void dr__email_addr_set(struct dr_email_addr *a, const char *name, const char *address)
{
    a->address = norm_address(address);
    a->name = name ? dr__email_clean_line(
                         dr__email_utf8_dup(name, strlen(name), DR_EMAIL_MAX_HEADER, NULL))
                   : NULL;
    /* A quoted display name keeps its quotes in some producers. */
    if (a->name && strlen(a->name) >= 2 && a->name[0] == '"' &&
        a->name[strlen(a->name) - 1] == '"') {
        size_t l = strlen(a->name);
        memmove(a->name, a->name + 1, l - 2);
        a->name[l - 2] = '\0';
        a->name = dr__email_clean_line(a->name);
    }
}

/* RFC 5322 atext, plus the UTF-8 bytes RFC 6532 allows. */
static int atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80 || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* The end of the dot-atom at p ("a.b", no empty part), or NULL if there is none. */
static const char *dot_atom_end(const char *p)
{
    for (;;) {
        const char *w = p;
        while (atext((unsigned char)*p)) {
            p++;
        }
        if (p == w) {
            return NULL;
        }
        if (*p != '.') {
            return p;
        }
        p++;
    }
}

/* The end of the quoted-string at p, or NULL. */
static const char *quoted_end(const char *p)
{
    if (*p++ != '"') {
        return NULL;
    }
    for (; *p && *p != '"'; p++) {
        if (*p == '\\') {
            p++;
        }
        if (*p == '\0' || *p == '\r' || *p == '\n') {
            return NULL;
        }
    }
    return *p == '"' ? p + 1 : NULL;
}

/* The end of the domain literal ("[192.0.2.1]") at p, or NULL. */
static const char *literal_end(const char *p)
{
    if (*p++ != '[') {
        return NULL;
    }
    while (*p > ' ' && *p != '[' && *p != ']' && *p != '\\') {
        p++;
    }
    return *p == ']' ? p + 1 : NULL;
}

int dr__email_addr_spec_ok(const char *a)
{
    const char *p = a && *a == '"' ? quoted_end(a) : a ? dot_atom_end(a) : NULL;

    if (!p || *p != '@') {
        return 0;
    }
    p++;
    p = *p == '[' ? literal_end(p) : dot_atom_end(p);
    return p && *p == '\0';
}

int dr__email_addr_push(struct dr_email_addr_list *l, const char *name, const char *address)
{
    struct dr_email_addr a;
    int err = DR_OK;

    if (l->n >= DR_EMAIL_MAX_ADDRESSES) {
        return DR_ETOOBIG;
    }
    dr__email_addr_set(&a, name, address);
    if (a.address && strchr(a.address, '@') && !dr__email_addr_spec_ok(a.address)) {
        free(a.address); /* "bob@example.com@evil.com" is nobody's address */
        a.address = NULL;
        err = DR_EINVAL;
    }
    if (!a.name && !a.address) {
        return err;
    }
    l->v = dr_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = a;
    return err;
}

void dr__email_set_date(struct dr_email *em, int64_t epoch_s, int offset_s)
{
    time_t local = (time_t)(epoch_s + offset_s);
    struct tm tm;
    int off = offset_s < 0 ? -offset_s : offset_s;
    char tmp[64];

    if (!gmtime_r(&local, &tm)) {
        return;
    }
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, offset_s < 0 ? '-' : '+',
             off / 3600, (off / 60) % 60);
    if (strlen(tmp) >= sizeof(em->date)) {
        return; /* a year beyond 9999 is not a date anyone sent */
    }
    memcpy(em->date, tmp, strlen(tmp) + 1);
    em->date_ms = epoch_s * 1000;
    em->has_date = 1;
}

int dr__email_finish_bodies(struct dr_email *em, const struct dr_email_limits *lim)
{
    return dr__email_finish_bodies_ex(em, lim, 0);
}

int dr__email_finish_bodies_ex(struct dr_email *em, const struct dr_email_limits *lim,
                               unsigned flags)
{
    if (em->html && !em->html_text && !(em->text && (flags & DR__EMAIL_NO_HTML_TEXT))) {
        struct dr_buf b;
        int err;

        dr_buf_init(&b, lim->max_text_bytes);
        err = dr__email_html_to_text(em->html, em->html_len, &b);
        if (err == DR_ETOOBIG) {
            dr__email_warn(em, "HTML text cut at %zu bytes", lim->max_text_bytes);
        } else if (err) {
            dr_buf_cleanup(&b);
            return err;
        }
        em->html_text = dr_buf_steal(&b, &em->html_text_len);
        if (!em->html_text) {
            dr_buf_cleanup(&b);
            return DR_ENOMEM;
        }
    }
    if (!em->text && em->html_text) {
        em->text = dr_xstrndup(em->html_text, em->html_text_len);
        em->text_len = em->html_text_len;
    }
    return DR_OK;
}

static void addr_list_free(struct dr_email_addr_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].address);
    }
    free(l->v);
}

void dr_email_strv_free(char **v, size_t n)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

void dr_email_destroy(struct dr_email *em)
{
    if (!em) {
        return;
    }
    for (size_t i = 0; i < em->n_headers; i++) {
        free(em->headers[i].name);
        free(em->headers[i].value);
    }
    free(em->headers);
    free(em->message_id);
    free(em->in_reply_to);
    dr_email_strv_free(em->references, em->n_references);
    free(em->subject);
    free(em->from.name);
    free(em->from.address);
    addr_list_free(&em->to);
    addr_list_free(&em->cc);
    addr_list_free(&em->bcc);
    addr_list_free(&em->reply_to);
    free(em->text);
    free(em->html);
    free(em->html_text);
    for (size_t i = 0; i < em->n_attachments; i++) {
        free(em->attachments[i].filename);
        free(em->attachments[i].content_type);
    }
    free(em->attachments);
    for (size_t i = 0; i < em->n_calendar; i++) {
        free(em->calendar[i].method);
        free(em->calendar[i].ics);
    }
    free(em->calendar);
    dr_email_strv_free(em->warnings, em->n_warnings);
    for (size_t i = 0; i < em->n_forwarded; i++) {
        dr_email_destroy(em->forwarded[i]);
    }
    free(em->forwarded);
    free(em);
}
