/*
 * dr_email from the pre-parsed fields of an email-backfill payload (DESIGN.md section 5), so
 * consumers see one shape whether the publisher sent the raw message or its parts.
 */
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/util.h"
#include "processors/email/email_int.h"

/* A string field: absent/null is fine, any other type is an error. */
static int opt_string(const cJSON *p, const char *key, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);

    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        return DR_OK;
    }
    if (!cJSON_IsString(v)) {
        dr__email_set_reason("field \"%s\" must be a string", key);
        return DR_EINVAL;
    }
    *out = v->valuestring;
    return DR_OK;
}

static char *strip_id(const char *s)
{
    size_t n;
    const char *p = dr_msgid_bare(s, &n);

    return n ? dr__email_utf8_dup(p, n, DR_EMAIL_MAX_HEADER, NULL) : NULL;
}

static int add_address_value(struct dr_email *em, struct dr_email_addr_list *l, const cJSON *v,
                             const char *key)
{
    if (cJSON_IsString(v)) {
        dr__email_parse_addresses(em, l, v->valuestring, key);
        return DR_OK;
    }
    if (cJSON_IsObject(v)) {
        const char *name = dr_json_str(v, "name");
        const char *addr = dr_json_str(v, "address");
        if (!addr) {
            addr = dr_json_str(v, "email");
        }
        int err = dr__email_addr_push(l, name, addr);
        if (err == DR_ETOOBIG) {
            dr__email_warn(em, "%s has more than %d addresses; the rest were dropped", key,
                           DR_EMAIL_MAX_ADDRESSES);
        } else if (err == DR_EINVAL) {
            dr__email_warn(em, "%s: an address that is not an addr-spec was left out", key);
        }
        return DR_OK;
    }
    dr__email_set_reason("field \"%s\" must hold strings or {name, address} objects", key);
    return DR_EINVAL;
}

static int addresses(struct dr_email *em, const cJSON *p, const char *key,
                     struct dr_email_addr_list *l)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key), *it;
    int err = DR_OK;

    if (!v || cJSON_IsNull(v)) {
        return DR_OK;
    }
    if (!cJSON_IsArray(v)) {
        return add_address_value(em, l, v, key);
    }
    cJSON_ArrayForEach(it, v)
    {
        err = add_address_value(em, l, it, key);
        if (err || l->n >= DR_EMAIL_MAX_ADDRESSES) {
            break;
        }
    }
    return err;
}

static void push_reference(struct dr_email *em, const char *id)
{
    char *s = strip_id(id);

    if (!s) {
        return;
    }
    if (em->n_references >= DR_EMAIL_MAX_REFERENCES) {
        dr__email_warn(em, "more than %d references; the rest were dropped",
                       DR_EMAIL_MAX_REFERENCES);
        free(s);
        return;
    }
    em->references = dr_xrealloc(em->references, (em->n_references + 1) * sizeof(char *));
    em->references[em->n_references++] = s;
}

static int references(struct dr_email *em, const cJSON *p)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "references"), *it;

    if (!v || cJSON_IsNull(v)) {
        return DR_OK;
    }
    if (cJSON_IsString(v)) {
        /* "<a@x> <b@y>" as in the header */
        char *copy = dr_xstrdup(v->valuestring), *save = NULL;
        for (char *tok = strtok_r(copy, " \t\r\n,", &save); tok;
             tok = strtok_r(NULL, " \t\r\n,", &save)) {
            push_reference(em, tok);
        }
        free(copy);
        return DR_OK;
    }
    if (!cJSON_IsArray(v)) {
        dr__email_set_reason("field \"references\" must be a string or an array of strings");
        return DR_EINVAL;
    }
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it)) {
            dr__email_set_reason("field \"references\" must hold strings");
            return DR_EINVAL;
        }
        push_reference(em, it->valuestring);
    }
    return DR_OK;
}

static int date(struct dr_email *em, const cJSON *p)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "date");
    int64_t ms;

    if (!v || cJSON_IsNull(v)) {
        return DR_OK;
    }
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble < -62135596800000.0 || v->valuedouble > 253402300799000.0) {
            dr__email_set_reason("field \"date\" is out of range");
            return DR_EINVAL;
        }
        ms = (int64_t)v->valuedouble;
        dr__email_set_date(em, ms / 1000 - (ms % 1000 < 0), 0);
        em->date_ms = ms;
        return DR_OK;
    }
    if (!cJSON_IsString(v)) {
        dr__email_set_reason("field \"date\" must be a string or epoch milliseconds");
        return DR_EINVAL;
    }
    if (dr_parse_time(v->valuestring, &ms) == DR_OK) {
        /* keep the sender's offset when RFC 3339 carries one */
        const char *s = v->valuestring;
        size_t n = strlen(s);
        int off = 0;
        if (n >= 6 && (s[n - 6] == '+' || s[n - 6] == '-') && s[n - 3] == ':') {
            off = ((s[n - 5] - '0') * 10 + (s[n - 4] - '0')) * 3600 +
                  ((s[n - 2] - '0') * 10 + (s[n - 1] - '0')) * 60;
            off = s[n - 6] == '-' ? -off : off;
        }
        dr__email_set_date(em, ms / 1000 - (ms % 1000 < 0), off);
        em->date_ms = ms;
        return DR_OK;
    }
    if (dr__email_parse_date(em, v->valuestring) != DR_OK) {
        dr__email_warn(em, "unparsable date field");
    }
    return DR_OK;
}

static int body(struct dr_email *em, const cJSON *p, const char *key, size_t max, char **s,
                size_t *len)
{
    const char *v;
    int cut = 0, err = opt_string(p, key, &v);

    if (err || !v) {
        return err;
    }
    *s = dr__email_utf8_dup(v, strlen(v), max, &cut);
    /* same newline convention as parsed messages */
    char *w = *s;
    for (const char *r = *s; *r; r++) {
        if (!(r[0] == '\r' && r[1] == '\n')) {
            *w++ = *r;
        }
    }
    *w = '\0';
    *len = (size_t)(w - *s);
    if (cut) {
        dr__email_warn(em, "%s cut at %zu bytes", key, max);
    }
    return DR_OK;
}

int dr_email_from_fields(const cJSON *payload, const struct dr_email_limits *lim,
                         struct dr_email **out)
{
    struct dr_email_limits defaults;
    struct dr_email *em = NULL;
    struct dr_email_addr_list from = {0};
    const char *s;
    int err;

    *out = NULL;
    dr__email_set_reason(NULL);
    if (!lim) {
        dr_email_limits_init(&defaults);
        lim = &defaults;
    }
    if (!cJSON_IsObject(payload)) {
        dr__email_set_reason("payload must be a JSON object");
        return DR_EINVAL;
    }
    dr__email_gmime_init();
    em = dr_xcalloc(1, sizeof(*em));

    err = opt_string(payload, "subject", &s);
    if (!err && s) {
        em->subject =
            dr__email_clean_line(dr__email_utf8_dup(s, strlen(s), DR_EMAIL_MAX_HEADER, NULL));
    }
    if (!err) {
        err = opt_string(payload, "message_id", &s);
        if (!err && s) {
            em->message_id = strip_id(s);
        }
    }
    if (!err) {
        err = opt_string(payload, "in_reply_to", &s);
        if (!err && s) {
            em->in_reply_to = strip_id(s);
        }
    }
    if (!err) {
        err = addresses(em, payload, "from", &from);
    }
    if (!err && from.n > 0) {
        em->from = from.v[0];
        for (size_t i = 1; i < from.n; i++) {
            free(from.v[i].name);
            free(from.v[i].address);
        }
        from.n = 0;
    }
    if (!err) {
        err = addresses(em, payload, "to", &em->to);
    }
    if (!err) {
        err = addresses(em, payload, "cc", &em->cc);
    }
    if (!err) {
        err = references(em, payload);
    }
    if (!err) {
        err = date(em, payload);
    }
    if (!err) {
        err = body(em, payload, "body_text", lim->max_text_bytes, &em->text, &em->text_len);
    }
    if (!err) {
        err = body(em, payload, "body_html", lim->max_text_bytes, &em->html, &em->html_len);
    }
    if (!err) {
        err = dr__email_finish_bodies(em, lim);
    }
    for (size_t i = 0; i < from.n; i++) {
        free(from.v[i].name);
        free(from.v[i].address);
    }
    free(from.v);
    if (err) {
        if (!dr_email_error_reason()[0]) {
            dr__email_set_reason("%s", dr_strerror(err));
        }
        dr_email_destroy(em);
        return err;
    }
    *out = em;
    return DR_OK;
}
