#include "dr/audit.h"

#include <stdio.h>
#include <string.h>

#include "dr/util.h"

#define AUDIT_STR_MAX 256 /* bytes of one string in a line, NUL included */
#define MAX_FIELDS    16

/* The parameters of the admin and inbox APIs: filters and paging, never credentials. */
static const char *const plain_params[] = {
    "after",  "limit", "user",  "transport", "topic",  "processor",
    "reason", "error", "since", "until",     "before", "unread",
};

/* s cut to out's size at a character boundary; bytes of a string that is not UTF-8 become '?'
 * (a percent-decoded path may hold anything, and a log line must stay JSON). */
static void loggable(const char *s, char *out, size_t outsz)
{
    size_t n = dr_utf8_cut(s, strlen(s), outsz - 1);

    memcpy(out, s, n);
    out[n] = '\0';
    if (!dr_utf8_valid(out, n)) {
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)out[i] >= 0x80) {
                out[i] = '?';
            }
        }
    }
}

/* A user id as a line shows it: an id that is an email address is shortened. */
static void loggable_user(const char *sub, char *out, size_t outsz)
{
    char tmp[AUDIT_STR_MAX];

    if (sub && strchr(sub, '@')) {
        dr_log_redact_email(sub, tmp, sizeof(tmp));
        sub = tmp;
    }
    loggable(sub ? sub : "-", out, outsz);
}

/* Writes the line; every string goes through loggable() first. */
static void emit(const char *msg, const struct dr_log_field *f, size_t n)
{
    struct dr_log_field out[MAX_FIELDS];
    char strs[MAX_FIELDS][AUDIT_STR_MAX];

    if (n > MAX_FIELDS) {
        n = MAX_FIELDS;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = f[i];
        if (f[i].str) {
            loggable(f[i].str, strs[i], sizeof(strs[i]));
            out[i].str = strs[i];
        }
    }
    dr_log_record("audit", msg, out, n);
}

static int plain_name(const char *name, size_t len)
{
    for (size_t i = 0; i < DR_ARRAY_LEN(plain_params); i++) {
        if (strlen(plain_params[i]) == len && memcmp(plain_params[i], name, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* A name that says what the parameter is and carries nothing: a short word. */
static int word(const char *s, size_t len)
{
    if (len == 0 || len > 32) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            return 0;
        }
    }
    return 1;
}

static int holds_address(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '@' || (s[i] == '%' && i + 2 < len && s[i + 1] == '4' && s[i + 2] == '0')) {
            return 1;
        }
    }
    return 0;
}

void dr_audit_query(const char *q, char *out, size_t outsz)
{
    size_t n = 0;

    if (!outsz) {
        return;
    }
    out[0] = '\0';
    while (q && *q) {
        const char *amp = strchr(q, '&');
        const char *end = amp ? amp : q + strlen(q);
        const char *eq = memchr(q, '=', (size_t)(end - q));
        size_t klen = (size_t)((eq ? eq : end) - q), vlen = eq ? (size_t)(end - eq - 1) : 0;
        char part[AUDIT_STR_MAX];
        int len;

        if (!word(q, klen)) {
            len = snprintf(part, sizeof(part), "*");
        } else if (!eq) {
            len = snprintf(part, sizeof(part), "%.*s", (int)klen, q);
        } else if (plain_name(q, klen) && !holds_address(eq + 1, vlen)) {
            len = snprintf(part, sizeof(part), "%.*s=%.*s", (int)klen, q, (int)vlen, eq + 1);
        } else {
            len = snprintf(part, sizeof(part), "%.*s=*", (int)klen, q);
        }
        if (len < 0 || (size_t)len >= sizeof(part) || n + (n > 0) + (size_t)len + 4 >= outsz) {
            /* what does not fit whole is left out, and the line says so */
            if (n + 4 < outsz) {
                memcpy(out + n, "&...", 5);
            }
            return;
        }
        if (n > 0) {
            out[n++] = '&';
        }
        memcpy(out + n, part, (size_t)len + 1);
        n += (size_t)len;
        q = amp ? amp + 1 : end;
    }
}

static void on_admin_done(const struct dr_http_req *req, int status, void *actor)
{
    char query[AUDIT_STR_MAX];
    struct dr_log_field f[6] = {
        DR_LOG_STR("actor", actor),
        DR_LOG_STR("method", dr_http_method(req)),
        DR_LOG_STR("path", dr_http_path(req)),
        DR_LOG_INT("status", status),
        DR_LOG_STR("peer", dr_http_peer(req)),
    };
    size_t n = 5;

    dr_audit_query(dr_http_query(req), query, sizeof(query));
    if (query[0]) {
        f[n++] = DR_LOG_STR("query", query);
    }
    emit("admin request", f, n);
}

void dr_audit_admin(struct dr_http_req *req, const char *actor)
{
    dr_http_on_done(req, on_admin_done, (void *)actor);
}

void dr_audit_inbox(const char *sub, const char *action, const char *via, int status,
                    const struct dr_log_field *extra, size_t nextra)
{
    struct dr_log_field f[MAX_FIELDS];
    char actor[AUDIT_STR_MAX];
    size_t n = 0;

    loggable_user(sub, actor, sizeof(actor));
    f[n++] = DR_LOG_STR("actor", actor);
    f[n++] = DR_LOG_STR("action", action);
    f[n++] = DR_LOG_STR("via", via);
    f[n++] = DR_LOG_INT("status", status);
    for (size_t i = 0; i < nextra && n < MAX_FIELDS; i++) {
        f[n++] = extra[i];
    }
    emit("inbox access", f, n);
}

void dr_audit_dlq(const char *msg, const struct dr_log_field *f, size_t n)
{
    emit(msg, f, n);
}
