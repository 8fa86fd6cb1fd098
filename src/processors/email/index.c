/*
 * The email's index operation (DESIGN §5, dr/index.h): the put the email processor emits to
 * vespa-index for every email, written as JSON text directly. The email's text (up to
 * index_text_bytes) would otherwise be copied into a cJSON tree, duplicated by dr_index_emit()
 * and printed twice over. The bytes are those dr_index_emit() prints for the same fields:
 * cJSON's member order, its string escapes (dr_buf_append_json_str) and its number format; a
 * string is cut at its first NUL byte, as cJSON's copy of it would be. The unit tests hold the
 * two to the same output.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/jsonw.h"
#include "dr/util.h"
#include "processors/email/classify.h"
#include "processors/email/email_int.h"

#define SNIPPET_CHARS   200
#define MAX_INDEX_ADDRS 200
#define MAX_LABELS      100
#define MAX_LABEL_BYTES 256

/* jw_strn() through dr_buf_append_json_str(): the string s[0..n), up to a NUL byte in it. */
static void jw_text(struct jw *w, const char *s, size_t n)
{
    if (!w->err) {
        w->err = dr_buf_append_json_str(w->b, s, strnlen(s, n));
    }
}

/* Up to SNIPPET_CHARS characters of text with whitespace runs collapsed, NUL-terminated in buf
 * (SNIPPET_CHARS * 4 + 1 bytes), never ending inside a character. Returns its length. */
static size_t snippet(char *buf, const char *text)
{
    size_t n = 0, chars = 0, cap = SNIPPET_CHARS * 4 + 1;
    int space = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            space = n > 0;
            continue;
        }
        if ((*p & 0xC0) != 0x80) {
            /* a character starts: it goes in whole, with the space before it, or not at all */
            if (chars + space >= SNIPPET_CHARS || n + space + 4 >= cap) {
                break;
            }
            if (space) {
                buf[n++] = ' ';
                chars++;
                space = 0;
            }
            chars++;
        } else if (n + 1 >= cap) {
            break;
        }
        buf[n++] = (char)*p;
    }
    buf[n] = '\0';
    return n;
}

/* jw_num(w, key, (double)ms) without a cJSON number: below 10^15 in magnitude cJSON prints an
 * integer's digits ("%d" within int, else "%1.15g", which has no exponent or fraction there). */
static void jw_ms(struct jw *w, const char *key, int64_t ms)
{
    char s[24];
    int n;

    if (ms <= -1000000000000000LL || ms >= 1000000000000000LL) {
        jw_num(w, key, (double)ms);
        return;
    }
    n = snprintf(s, sizeof(s), "%lld", (long long)ms);
    jw_key(w, key);
    jw_raw(w, s, (size_t)n);
}

static void jw_addrs(struct jw *w, const char *key, const struct dr_email_addr_list *l)
{
    jw_key(w, key);
    jw_raw(w, "[", 1);
    for (size_t i = 0; i < l->n && i < MAX_INDEX_ADDRS; i++) {
        jw_elem(w, l->v[i].address);
    }
    jw_raw(w, "]", 1);
}

static void fields(const struct dr_email *em, const struct dr_email_class *cls, const cJSON *pl,
                   const char *event_time, size_t text_bytes, struct jw *w)
{
    const char *text = em->text ? em->text : em->html_text;
    size_t tlen = em->text ? em->text_len : em->html_text_len, nlabels = 0;
    const cJSON *v;

    jw_raw(w, "{", 1);
    jw_str(w, "user_id", dr_json_str(pl, "user_id"));
    jw_opt(w, "org_id", dr_json_str(pl, "org_id"));
    jw_str(w, "email_id", dr_json_str(pl, "email_id"));
    jw_opt(w, "thread_id", dr_json_str(pl, "thread_id"));
    jw_opt(w, "account", dr_json_str(pl, "account"));
    jw_opt(w, "provider", dr_json_str(pl, "provider"));
    jw_opt(w, "message_id", em->message_id);
    jw_opt(w, "subject", em->subject);
    /* the index is product data: full addresses belong there (never in logs) */
    jw_opt(w, "from", em->from.address);
    jw_opt(w, "from_name", em->from.name);
    jw_addrs(w, "to", &em->to);
    jw_addrs(w, "cc", &em->cc);
    jw_str(w, "date", event_time);
    if (em->has_date) {
        jw_ms(w, "date_ms", em->date_ms);
    }
    if (text) {
        char buf[SNIPPET_CHARS * 4 + 1];
        size_t n = snippet(buf, text);

        jw_key(w, "snippet");
        jw_text(w, buf, n);
        jw_key(w, "text");
        jw_text(w, text, dr_utf8_cut(text, tlen, text_bytes));
    }
    jw_key(w, "has_attachments");
    jw_raw(w, em->n_attachments > 0 ? "true" : "false", em->n_attachments > 0 ? 4 : 5);
    jw_str(w, "classification", cls->primary);
    jw_key(w, "labels");
    jw_raw(w, "[", 1);
    if (cls->kinds & DR_EMAIL_KIND_SHIPMENT) {
        jw_elem(w, "shipment");
        nlabels++;
    }
    if (cls->kinds & DR_EMAIL_KIND_POLL_REPLY) {
        jw_elem(w, "poll_reply");
        nlabels++;
    }
    if (cls->kinds & DR_EMAIL_KIND_CALENDAR) {
        jw_elem(w, "calendar");
        nlabels++;
    }
    v = cJSON_GetObjectItemCaseSensitive(pl, "labels"); /* the provider's own labels */
    if (cJSON_IsArray(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            if (cJSON_IsString(it) && strlen(it->valuestring) <= MAX_LABEL_BYTES &&
                nlabels < MAX_LABELS) {
                jw_elem(w, it->valuestring);
                nlabels++;
            }
        }
    }
    jw_raw(w, "]", 1);
    if (cls->kinds & DR_EMAIL_KIND_POLL_REPLY) {
        jw_str(w, "poll_id", cls->poll_id);
    }
    if (cls->n_accepted) {
        jw_key(w, "tracking_numbers");
        jw_raw(w, "[", 1);
        for (size_t i = 0; i < cls->n_accepted; i++) {
            jw_elem(w, dr_json_str(cls->accepted[i], "tracking_number"));
        }
        jw_raw(w, "]", 1);
    }
    v = cJSON_GetObjectItemCaseSensitive(cls->shipment, "order_ids");
    if ((cls->kinds & DR_EMAIL_KIND_SHIPMENT) && cJSON_GetArraySize(v) > 0) {
        jw_json(w, "order_ids", v);
    }
    jw_raw(w, "}", 1);
}

int dr__email_index_op(const struct dr_email *em, const struct dr_email_class *cls, const cJSON *pl,
                       const char *event_time, size_t text_bytes, struct dr_buf *out,
                       char docid[DR__EMAIL_DOCID_MAX])
{
    const char *user_id = dr_json_str(pl, "user_id"), *email_id = dr_json_str(pl, "email_id");
    struct jw w = {.b = out, .err = DR_OK};
    size_t start = out->len;

    if (dr_index_docid(docid, user_id, email_id) != DR_OK) {
        return DR_ETOOBIG;
    }
    {
        /* room for the text and what usually comes with it at once, not by doubling: a hint
         * (the writes below meet the limit, or the lack of memory, as they would without it) */
        size_t tlen = em->text ? em->text_len : em->html_text ? em->html_text_len : 0;
        size_t hint = (tlen < text_bytes ? tlen : text_bytes) + tlen / 16 + 4096;

        if (hint <= out->limit - out->len) {
            (void)dr_buf_reserve(out, hint);
        }
    }
    jw_raw(&w, "{", 1);
    jw_str(&w, "operation", "put");
    jw_str(&w, "doctype", "email");
    jw_str(&w, "docid", docid);
    jw_str(&w, "user_id", user_id ? user_id : "");
    jw_key(&w, "fields");
    fields(em, cls, pl, event_time, text_bytes, &w);
    jw_raw(&w, "}", 1);
    if (w.err) {
        out->len = start;
        if (out->data) {
            out->data[start] = '\0';
        }
    }
    return w.err;
}
