#include "dr/log.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/util.h"

static atomic_int min_level = DR_LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void dr_log_set_level(enum dr_log_level lvl)
{
    atomic_store(&min_level, (int)lvl);
}

int dr_log_parse_level(const char *s, enum dr_log_level *out)
{
    for (int i = 0; i < (int)DR_ARRAY_LEN(names); i++) {
        if (s && strcmp(s, names[i]) == 0) {
            *out = (enum dr_log_level)i;
            return DR_OK;
        }
    }
    return DR_EINVAL;
}

/* The longest value a line holds, in bytes before escaping (longer ones are cut, marked "..."),
 * and the longest line: a field that would pass it is left out, so the line stays whole. */
#define LOG_VALUE_MAX 2048
#define LOG_LINE_MAX  (64 * 1024)

/* Appends s as a JSON string; a string that is not UTF-8 has its bytes above 0x7f written as
 * '?', so that the line stays JSON a strict parser reads. */
static int append_str(struct dr_buf *b, const char *s, size_t n)
{
    char *tmp;
    int rc;

    if (dr_utf8_valid(s, n)) {
        return dr_buf_append_json_str(b, s, n);
    }
    tmp = dr_xmalloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        tmp[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    }
    rc = dr_buf_append_json_str(b, tmp, n);
    free(tmp);
    return rc;
}

/* Appends ,"key":value, value a JSON number as it is (num) or a string. A field that does not
 * fit the line is left out whole. */
static void append_field(struct dr_buf *b, const char *key, size_t klen, const char *val,
                         size_t vlen, int num)
{
    size_t start = b->len;
    int rc = dr_buf_appendc(b, ',');

    rc = rc ? rc : append_str(b, key, klen);
    rc = rc ? rc : dr_buf_appendc(b, ':');
    rc = rc ? rc : num ? dr_buf_append(b, val, vlen) : append_str(b, val, vlen);
    if (rc || b->len > LOG_LINE_MAX - 2) { /* room for "}\n" */
        b->len = start;
        if (b->data) {
            b->data[start] = '\0';
        }
    }
}

/* A value being formatted: at most LOG_VALUE_MAX bytes, cut at a character boundary. */
struct value {
    char text[LOG_VALUE_MAX + 4];
    size_t len;
    int cut;
};

static void value_put(struct value *v, const char *s, size_t n)
{
    size_t room = LOG_VALUE_MAX - v->len;

    if (v->cut) {
        return;
    }
    if (n > room) {
        n = dr_utf8_cut(s, n, room);
        v->cut = 1;
    }
    memcpy(v->text + v->len, s, n);
    v->len += n;
    if (v->cut) {
        memcpy(v->text + v->len, "...", 3);
        v->len += 3;
    }
}

/* 1 when s[0..n) is a number as JSON writes one: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number(const char *s, size_t n)
{
    size_t i = 0, d;

    i += i < n && s[i] == '-';
    for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    }
    if (i == d || (s[d] == '0' && i - d > 1)) {
        return 0;
    }
    if (i < n && s[i] == '.') {
        for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
        if (i == d) {
            return 0;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        i += i < n && (s[i] == '+' || s[i] == '-');
        for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        }
        if (i == d) {
            return 0;
        }
    }
    return i == n;
}

/* The end of the conversion specification at p ('%'): flags, width, precision, length, then
 * the conversion character, as C11 7.21.6.1 has them. */
static const char *conv_end(const char *p)
{
    p++;
    p += strspn(p, "-+ #0'");
    p += *p == '*' ? 1 : strspn(p, "0123456789");
    if (*p == '.') {
        p++;
        p += *p == '*' ? 1 : strspn(p, "0123456789");
    }
    p += strspn(p, "hlLjzt");
    return *p ? p + 1 : p;
}

/* Formats one conversion (spec[0..n), from conv_end()) with its argument(s) from ap into v.
 * Returns its conversion character, 0 for one it does not know (nothing consumed). */
static char format_conv(struct value *v, const char *spec, size_t n, va_list *ap)
{
    char f[32], conv = spec[n - 1], out[128], lm[3] = "";
    int star[2] = {0, 0}, nstar = 0, len;
    size_t lmlen = 0;

    if (n < 2 || n >= sizeof(f) || !strchr("diouxXcspfFeEgGaA%", conv)) {
        return 0;
    }
    memcpy(f, spec, n);
    f[n] = '\0';
    for (size_t i = 1; i < n - 1; i++) {
        if (f[i] == '*') {
            star[nstar++] = va_arg(*ap, int);
        }
    }
    /* the length modifier: "", "h", "hh", "l", "ll", "L", "j", "z" or "t" */
    while (lmlen < n - 2 && lmlen < 2 && strchr("hlLjzt", f[n - 2 - lmlen])) {
        lmlen++;
    }
    memcpy(lm, f + n - 1 - lmlen, lmlen);
    if (conv == '%') {
        value_put(v, "%", 1);
        return conv;
    }
    if (conv == 's') {
        /* not through snprintf(): a string may be longer than out */
        const char *s = va_arg(*ap, const char *);
        const char *dot = strchr(f, '.'), *w = f + 1 + strspn(f + 1, "-+ #0'");
        long width = *w == '*' ? star[0] : strtol(w, NULL, 10);
        size_t slen;
        int left = strchr(f, '-') != NULL;
        if (!s) {
            s = "(null)";
        }
        if (dot && dot[1] == '*') {
            slen = star[nstar - 1] >= 0 ? strnlen(s, (size_t)star[nstar - 1]) : strlen(s);
        } else if (dot) {
            slen = strnlen(s, (size_t)strtoul(dot + 1, NULL, 10));
        } else {
            slen = strlen(s);
        }
        if (width < 0) { /* a negative '*' width is the '-' flag and its value */
            left = 1;
            width = -width;
        }
        for (long i = (long)slen; !left && i < width && i < LOG_VALUE_MAX; i++) {
            value_put(v, " ", 1);
        }
        value_put(v, s, slen);
        for (long i = (long)slen; left && i < width && i < LOG_VALUE_MAX; i++) {
            value_put(v, " ", 1);
        }
        return conv;
    }
#define FORMAT(T)                                                                                  \
    do {                                                                                           \
        T x_ = va_arg(*ap, T);                                                                     \
        len = nstar == 0   ? snprintf(out, sizeof(out), f, x_)                                     \
              : nstar == 1 ? snprintf(out, sizeof(out), f, star[0], x_)                            \
                           : snprintf(out, sizeof(out), f, star[0], star[1], x_);                  \
    } while (0)
    if (strchr("fFeEgGaA", conv)) {
        if (lm[0] == 'L') {
            FORMAT(long double);
        } else {
            FORMAT(double);
        }
    } else if (conv == 'c') {
        FORMAT(int);
    } else if (conv == 'p') {
        FORMAT(void *);
    } else if (strchr("di", conv)) {
        if (strcmp(lm, "ll") == 0) {
            FORMAT(long long);
        } else if (strcmp(lm, "l") == 0) {
            FORMAT(long);
        } else if (strcmp(lm, "j") == 0) {
            FORMAT(intmax_t);
        } else if (strcmp(lm, "z") == 0) {
            FORMAT(ssize_t);
        } else if (strcmp(lm, "t") == 0) {
            FORMAT(ptrdiff_t);
        } else {
            FORMAT(int); /* also hh and h, promoted to int */
        }
    } else {
        if (strcmp(lm, "ll") == 0) {
            FORMAT(unsigned long long);
        } else if (strcmp(lm, "l") == 0) {
            FORMAT(unsigned long);
        } else if (strcmp(lm, "j") == 0) {
            FORMAT(uintmax_t);
        } else if (strcmp(lm, "z") == 0) {
            FORMAT(size_t);
        } else if (strcmp(lm, "t") == 0) {
            FORMAT(ptrdiff_t);
        } else {
            FORMAT(unsigned);
        }
    }
#undef FORMAT
    if (len > 0) {
        value_put(v, out, (size_t)len < sizeof(out) ? (size_t)len : sizeof(out) - 1);
    }
    if (len >= (int)sizeof(out)) {
        v->cut = 1; /* not the whole number: written as a string, not as another number */
    }
    return conv;
}

/* Formats fmt[0..n) (literal text and conversions) into v, taking the arguments from ap.
 * *numeric: the text was one numeric conversion on its own (%d, %lld, %zu, %g, ...). Returns 0,
 * or -1 at a conversion it does not know, after which no argument can be trusted. */
static int format_piece(struct value *v, const char *fmt, size_t n, va_list *ap, int *numeric)
{
    const char *p = fmt, *end = fmt + n;
    int convs = 0, literal = 0;
    char conv = 0;

    while (p < end) {
        if (*p == '%') {
            const char *e = conv_end(p);
            if (e > end || !(conv = format_conv(v, p, (size_t)(e - p), ap))) {
                return -1;
            }
            convs++;
            p = e;
        } else {
            const char *pct = memchr(p, '%', (size_t)(end - p));
            const char *stop = pct ? pct : end;
            value_put(v, p, (size_t)(stop - p));
            literal = 1;
            p = stop;
        }
    }
    *numeric = convs == 1 && !literal && conv && strchr("diufFeEgG", conv);
    return 0;
}

/* Where a piece of kvfmt ends: at stop (a delimiter, '\0' or '"') outside a conversion, whose
 * text may hold ' ' (the flag) or digits. */
static const char *piece_end(const char *p, const char *stops)
{
    while (*p && !strchr(stops, *p)) {
        p = *p == '%' ? conv_end(p) : p + 1;
    }
    return p;
}

/*
 * Appends the fields of kvfmt ("a=%d b=\"%s\" c=%s") with their arguments: the keys and the
 * bounds of each value are read from the format, never from what the arguments hold, so a value
 * with quotes, spaces, '=' or newlines stays one value of its field. Text of the format that is
 * not key=value goes to one "extra" field.
 */
static void append_fields(struct dr_buf *b, const char *kvfmt, va_list *ap)
{
    struct value val, extra; /* only len and cut: text is over 2 KB to zero for nothing */
    const char *p = kvfmt;

    extra.len = 0;
    extra.cut = 0;

    while (*p) {
        const char *key, *vs, *ve;
        size_t klen;
        int quoted = 0, numeric = 0, rc = 0;

        while (*p == ' ') {
            p++;
        }
        if (!*p) {
            break;
        }
        key = p;
        p = piece_end(p, " =");
        klen = (size_t)(p - key);
        if (*p != '=') {
            /* a bare word: kept rather than lost */
            if (extra.len) {
                value_put(&extra, " ", 1);
            }
            if (format_piece(&extra, key, klen, ap, &numeric)) {
                break;
            }
            continue;
        }
        p++;
        if (*p == '"') {
            quoted = 1;
            vs = ++p;
            ve = piece_end(p, "\"");
            p = *ve ? ve + 1 : ve;
        } else {
            vs = p;
            ve = p = piece_end(p, " ");
        }
        val.len = 0;
        val.cut = 0;
        if (memchr(key, '%', klen)) {
            /* a key is the format's own text: a conversion in it takes its argument, and the
             * field, which an argument would name, is left out */
            rc = format_piece(&val, key, klen, ap, &numeric);
            val.len = 0;
            rc = rc ? rc : format_piece(&val, vs, (size_t)(ve - vs), ap, &numeric);
            if (rc) {
                break;
            }
            continue;
        }
        if (format_piece(&val, vs, (size_t)(ve - vs), ap, &numeric)) {
            break;
        }
        numeric = numeric && !quoted && !val.cut && json_number(val.text, val.len);
        append_field(b, key, klen, val.text, val.len, numeric);
    }
    if (extra.len) {
        append_field(b, "extra", 5, extra.text, extra.len, 0);
    }
}

static void line_begin(struct dr_buf *b, enum dr_log_level lvl, const char *component,
                       const char *msg)
{
    char ts[32];

    dr_buf_init(b, LOG_LINE_MAX);
    dr_format_time(dr_now_ms(), ts);
    dr_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts, names[lvl]);
    append_str(b, component, strlen(component));
    dr_buf_appends(b, ",\"msg\":");
    append_str(b, msg, strlen(msg));
}

/* Ends the line and writes it with one write(2), so lines of several threads never mix. */
static void line_end(struct dr_buf *b)
{
    dr_buf_appends(b, "}\n");
    if (b->data) {
        ssize_t w = write(STDERR_FILENO, b->data, b->len);
        (void)w;
    }
    dr_buf_cleanup(b);
}

void dr_log(enum dr_log_level lvl, const char *component, const char *msg, const char *kvfmt, ...)
{
    struct dr_buf b;
    va_list ap;

    if ((int)lvl < atomic_load(&min_level)) {
        return;
    }
    line_begin(&b, lvl, component, msg);
    if (kvfmt && *kvfmt) {
        va_start(ap, kvfmt);
        append_fields(&b, kvfmt, &ap);
        va_end(ap);
    }
    line_end(&b);
}

/* v as a JSON number into s: the shorter of 15 and 17 significant digits that reads back as v,
 * as cJSON prints numbers; null for NaN and the infinities, which JSON has no number for. */
static void format_real(double v, char s[32])
{
    if (!isfinite(v)) {
        strcpy(s, "null");
        return;
    }
    snprintf(s, 32, "%.15g", v);
    if (strtod(s, NULL) != v) {
        snprintf(s, 32, "%.17g", v);
    }
}

static void log_fields(enum dr_log_level lvl, const char *component, const char *msg,
                       const struct dr_log_field *f, size_t n)
{
    struct dr_buf b;
    char num[32];

    line_begin(&b, lvl, component, msg);
    for (size_t i = 0; i < n; i++) {
        if (f[i].str) {
            append_field(&b, f[i].key, strlen(f[i].key), f[i].str, strlen(f[i].str), 0);
            continue;
        }
        if (f[i].is_real) {
            format_real(f[i].real, num);
        } else {
            snprintf(num, sizeof(num), "%lld", f[i].num);
        }
        append_field(&b, f[i].key, strlen(f[i].key), num, strlen(num), 1);
    }
    line_end(&b);
}

void dr_log_fields(enum dr_log_level lvl, const char *component, const char *msg,
                   const struct dr_log_field *f, size_t n)
{
    if ((int)lvl >= atomic_load(&min_level)) {
        log_fields(lvl, component, msg, f, n);
    }
}

void dr_log_record(const char *component, const char *msg, const struct dr_log_field *f, size_t n)
{
    log_fields(DR_LOG_INFO, component, msg, f, n);
}

void dr_log_redact_email(const char *addr, char *out, size_t outsz)
{
    const char *at;

    if (!outsz) {
        return;
    }
    if (!addr || !*addr) {
        snprintf(out, outsz, "-");
        return;
    }
    at = strrchr(addr, '@');
    if (!at) {
        snprintf(out, outsz, "%c***", addr[0]);
        return;
    }
    snprintf(out, outsz, "%c***%s", addr[0], at);
}
