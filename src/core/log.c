#include "dr/log.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
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

static int is_integer(const char *s, size_t n)
{
    size_t i = (n > 0 && s[0] == '-') ? 1 : 0;
    if (i == n || n > 18) {
        return 0;
    }
    if (s[i] == '0' && n - i > 1) {
        return 0;
    }
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/* Turns "a=1 b=\"x y\" c=z" into ,"a":1,"b":"x y","c":"z". */
static void append_fields(struct dr_buf *b, const char *kv)
{
    const char *p = kv;

    while (*p) {
        const char *key, *val;
        size_t klen, vlen;
        int quoted = 0;

        while (*p == ' ') {
            p++;
        }
        if (!*p) {
            break;
        }
        key = p;
        while (*p && *p != '=' && *p != ' ') {
            p++;
        }
        klen = (size_t)(p - key);
        if (*p != '=') {
            /* a bare word: keep it rather than lose it */
            dr_buf_appends(b, ",\"extra\":");
            dr_buf_append_json_str(b, key, klen);
            continue;
        }
        p++;
        if (*p == '"') {
            quoted = 1;
            val = ++p;
            while (*p && *p != '"') {
                p++;
            }
            vlen = (size_t)(p - val);
            if (*p) {
                p++;
            }
        } else {
            val = p;
            while (*p && *p != ' ') {
                p++;
            }
            vlen = (size_t)(p - val);
        }
        dr_buf_appendc(b, ',');
        dr_buf_append_json_str(b, key, klen);
        dr_buf_appendc(b, ':');
        if (!quoted && is_integer(val, vlen)) {
            dr_buf_append(b, val, vlen);
        } else {
            dr_buf_append_json_str(b, val, vlen);
        }
    }
}

static void line_begin(struct dr_buf *b, enum dr_log_level lvl, const char *component,
                       const char *msg)
{
    char ts[32];

    dr_buf_init(b, 64 * 1024);
    dr_format_time(dr_now_ms(), ts);
    dr_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts, names[lvl]);
    dr_buf_append_json_str(b, component, strlen(component));
    dr_buf_appends(b, ",\"msg\":");
    dr_buf_append_json_str(b, msg, strlen(msg));
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
    char stackbuf[2048];
    struct dr_buf b;
    va_list ap;

    if ((int)lvl < atomic_load(&min_level)) {
        return;
    }
    line_begin(&b, lvl, component, msg);
    if (kvfmt && *kvfmt) {
        va_start(ap, kvfmt);
        vsnprintf(stackbuf, sizeof(stackbuf), kvfmt, ap);
        va_end(ap);
        append_fields(&b, stackbuf);
    }
    line_end(&b);
}

/* v as a JSON number: the shorter of 15 and 17 significant digits that reads back as v, as
 * cJSON prints numbers; null for NaN and the infinities, which JSON has no number for. */
static void append_real(struct dr_buf *b, double v)
{
    char s[32];

    if (!isfinite(v)) {
        dr_buf_appends(b, "null");
        return;
    }
    snprintf(s, sizeof(s), "%.15g", v);
    if (strtod(s, NULL) != v) {
        snprintf(s, sizeof(s), "%.17g", v);
    }
    dr_buf_appends(b, s);
}

static void log_fields(enum dr_log_level lvl, const char *component, const char *msg,
                       const struct dr_log_field *f, size_t n)
{
    struct dr_buf b;

    line_begin(&b, lvl, component, msg);
    for (size_t i = 0; i < n; i++) {
        dr_buf_appendc(&b, ',');
        dr_buf_append_json_str(&b, f[i].key, strlen(f[i].key));
        dr_buf_appendc(&b, ':');
        if (f[i].str) {
            dr_buf_append_json_str(&b, f[i].str, strlen(f[i].str));
        } else if (f[i].is_real) {
            append_real(&b, f[i].real);
        } else {
            dr_buf_printf(&b, "%lld", f[i].num);
        }
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
