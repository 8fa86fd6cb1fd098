/*
 * dr_email as JSON: what `data-router parse email` prints and what the email processor
 * publishes. Absent values are JSON null so consumers see a fixed shape.
 */
#include "dr/err.h"
#include "processors/email/email_int.h"

static cJSON *str_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *addr_json(const struct dr_email_addr *a)
{
    cJSON *o = cJSON_CreateObject();

    if (!o || !cJSON_AddItemToObject(o, "name", str_or_null(a->name)) ||
        !cJSON_AddItemToObject(o, "address", str_or_null(a->address))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *addr_list_json(const struct dr_email_addr_list *l)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr && i < l->n; i++) {
        cJSON *o = addr_json(&l->v[i]);
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

static cJSON *strv_json(char *const *v, size_t n)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr && i < n; i++) {
        cJSON *s = cJSON_CreateString(v[i]);
        if (!s || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

/* Adds item to o under key; on failure deletes item and returns 0. */
static int add(cJSON *o, const char *key, cJSON *item)
{
    if (!item) {
        return 0;
    }
    if (!cJSON_AddItemToObject(o, key, item)) {
        cJSON_Delete(item);
        return 0;
    }
    return 1;
}

int dr_email_to_json(const struct dr_email *em, cJSON **out)
{
    cJSON *o = cJSON_CreateObject(), *h, *arr;
    int ok = o != NULL;

    *out = NULL;
    if (!em) {
        cJSON_Delete(o);
        return DR_EINVAL;
    }
    h = cJSON_CreateObject();
    for (size_t i = 0; ok && h && i < em->n_headers; i++) {
        ok = add(h, em->headers[i].name, cJSON_CreateString(em->headers[i].value));
    }
    if (!ok) {
        cJSON_Delete(h);
        h = NULL;
    }
    ok = ok && add(o, "headers", h);
    ok = ok && add(o, "message_id", str_or_null(em->message_id));
    ok = ok && add(o, "in_reply_to", str_or_null(em->in_reply_to));
    ok = ok && add(o, "references", strv_json(em->references, em->n_references));
    ok = ok && add(o, "subject", str_or_null(em->subject));
    ok = ok && add(o, "from",
                   em->from.address || em->from.name ? addr_json(&em->from) : cJSON_CreateNull());
    ok = ok && add(o, "to", addr_list_json(&em->to));
    ok = ok && add(o, "cc", addr_list_json(&em->cc));
    ok = ok && add(o, "reply_to", addr_list_json(&em->reply_to));
    ok = ok && add(o, "date", em->has_date ? cJSON_CreateString(em->date) : cJSON_CreateNull());
    ok = ok && add(o, "date_ms",
                   em->has_date ? cJSON_CreateNumber((double)em->date_ms) : cJSON_CreateNull());
    ok = ok && add(o, "text", str_or_null(em->text));
    ok = ok && add(o, "html_text", str_or_null(em->html_text));

    arr = ok ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; arr && ok && i < em->n_attachments; i++) {
        const struct dr_email_attachment *a = &em->attachments[i];
        cJSON *ao = cJSON_CreateObject();
        ok = ao && add(ao, "filename", str_or_null(a->filename)) &&
             add(ao, "content_type", str_or_null(a->content_type)) &&
             add(ao, "size", cJSON_CreateNumber((double)a->size));
        if (!ok || !cJSON_AddItemToArray(arr, ao)) {
            cJSON_Delete(ao);
            ok = 0;
        }
    }
    if (!ok) {
        cJSON_Delete(arr);
        arr = NULL;
    }
    ok = ok && add(o, "attachments", arr);
    arr = ok ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; arr && ok && i < em->n_calendar; i++) {
        cJSON *co = cJSON_CreateObject();
        ok = co && add(co, "method", str_or_null(em->calendar[i].method)) &&
             add(co, "ics", str_or_null(em->calendar[i].ics));
        if (!ok || !cJSON_AddItemToArray(arr, co)) {
            cJSON_Delete(co);
            ok = 0;
        }
    }
    if (!ok) {
        cJSON_Delete(arr);
        arr = NULL;
    }
    ok = ok && add(o, "calendar", arr);
    ok = ok && add(o, "warnings", strv_json(em->warnings, em->n_warnings));
    if (!ok) {
        cJSON_Delete(o);
        return DR_ENOMEM;
    }
    *out = o;
    return DR_OK;
}
