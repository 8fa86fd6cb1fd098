/*
 * The contacts processor (topic contact-updates, type contact, DESIGN §5): payload
 * {user_id, org_id, contact_id, operation: upsert|delete, contact{...}}. A valid upsert becomes a
 * search-index put of doctype "contact" (docid user_id:contact_id), a delete an index remove.
 * Nothing is stored here: the index is the contact search, and its operations are idempotent
 * and ordered per document (the route's ordering key should be /contact_id).
 *
 * contact{} fields read (all optional, unknown ones ignored and not indexed):
 *   name, display_name, given_name, family_name, middle_name, nickname, company, organization,
 *   title, job_title, department, birthday, notes       strings
 *   emails  [ "a@x.org" | {address|email|value, type|label} ]  valid-looking addresses
 *   phones  [ "+1 555 0100" | {number|value, type|label} ]
 * Anything else is rejected with reason invalid_contact and a detail naming the field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/index.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/processor.h"
#include "dr/util.h"

#define COMP          "processor.contacts"
#define MAX_ID        512
#define MAX_FIELD     1024
#define MAX_NOTES     (16 * 1024)
#define MAX_EMAILS    100
#define MAX_PHONES    100
#define MAX_EMAIL     254
#define MAX_PHONE     64
#define MAX_MSG_BYTES (256 * 1024)

static const char *const name_fields[] = {
    "name",       "display_name", "given_name",   "family_name", "middle_name",
    "nickname",   "company",      "organization", "title",       "job_title",
    "department", "birthday",     "notes",
};

/* Printable UTF-8 text without control characters. */
static int clean_text(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int id_ok(const cJSON *o, const char *key, int required)
{
    const char *s = dr_json_str(o, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!v || cJSON_IsNull(v)) {
        return !required;
    }
    if (!s || !*s || strlen(s) > MAX_ID) {
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* local@domain: no spaces, quotes or angle brackets, one '@', a dotted domain of sane labels. */
static int email_ok(const char *s)
{
    const char *at = strchr(s, '@'), *d;
    size_t n = strlen(s), label = 0;

    if (!at || at == s || strchr(at + 1, '@') || n > MAX_EMAIL || (size_t)(at - s) > 64) {
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || strchr("\"(),:;<>[\\]", *p)) {
            return 0;
        }
    }
    if (s[0] == '.' || at[-1] == '.' || strstr(s, "..")) {
        return 0;
    }
    d = at + 1;
    if (!*d || !strchr(d, '.')) {
        return 0;
    }
    for (const char *p = d;; p++) {
        if (*p == '.' || !*p) {
            if (label == 0 || p[-1] == '-' || p[-(long)label] == '-') {
                return 0;
            }
            label = 0;
            if (!*p) {
                break;
            }
        } else {
            label++;
        }
    }
    return 1;
}

static int phone_ok(const char *s)
{
    int digits = 0;

    if (strlen(s) > MAX_PHONE) {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            digits++;
        } else if (!strchr(" +-().#*/xXetEXT,;", *p)) {
            return 0;
        }
    }
    return digits > 0;
}

/* The value of a list entry: the string itself or the first of keys present. */
static const char *entry_value(const cJSON *it, const char *const *keys, const char **type)
{
    *type = NULL;
    if (cJSON_IsString(it)) {
        return it->valuestring;
    }
    if (!cJSON_IsObject(it)) {
        return NULL;
    }
    *type = dr_json_str(it, "type") ? dr_json_str(it, "type") : dr_json_str(it, "label");
    for (size_t i = 0; keys[i]; i++) {
        if (dr_json_str(it, keys[i])) {
            return dr_json_str(it, keys[i]);
        }
    }
    return NULL;
}

/* Validates contact and builds the index fields; NULL with *why set when invalid. */
static cJSON *contact_fields(const cJSON *pl, const cJSON *contact, char *why, size_t whysz)
{
    static const char *const email_keys[] = {"address", "email", "value", NULL};
    static const char *const phone_keys[] = {"number", "value", NULL};
    const cJSON *emails = cJSON_GetObjectItemCaseSensitive(contact, "emails");
    const cJSON *phones = cJSON_GetObjectItemCaseSensitive(contact, "phones");
    cJSON *f = cJSON_CreateObject(), *elist, *plist, *it;
    const char *type;

    cJSON_AddStringToObject(f, "user_id", dr_json_str(pl, "user_id"));
    if (dr_json_str(pl, "org_id")) {
        cJSON_AddStringToObject(f, "org_id", dr_json_str(pl, "org_id"));
    }
    cJSON_AddStringToObject(f, "contact_id", dr_json_str(pl, "contact_id"));
    for (size_t i = 0; i < DR_ARRAY_LEN(name_fields); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(contact, name_fields[i]);
        size_t max = strcmp(name_fields[i], "notes") == 0 ? MAX_NOTES : MAX_FIELD;
        if (!v || cJSON_IsNull(v)) {
            continue;
        }
        if (!cJSON_IsString(v) || strlen(v->valuestring) > max || !clean_text(v->valuestring)) {
            snprintf(why, whysz,
                     "contact.%s: a string of at most %zu bytes without control "
                     "characters",
                     name_fields[i], max);
            goto bad;
        }
        if (*v->valuestring) {
            cJSON_AddStringToObject(f, name_fields[i], v->valuestring);
        }
    }
    if ((emails && !cJSON_IsNull(emails) && !cJSON_IsArray(emails)) ||
        cJSON_GetArraySize(emails) > MAX_EMAILS) {
        snprintf(why, whysz, "contact.emails: an array of at most %d entries", MAX_EMAILS);
        goto bad;
    }
    if ((phones && !cJSON_IsNull(phones) && !cJSON_IsArray(phones)) ||
        cJSON_GetArraySize(phones) > MAX_PHONES) {
        snprintf(why, whysz, "contact.phones: an array of at most %d entries", MAX_PHONES);
        goto bad;
    }
    elist = cJSON_AddArrayToObject(f, "emails");
    int idx = 0;
    cJSON_ArrayForEach(it, (cJSON_IsArray(emails) ? emails : NULL))
    {
        const char *e = entry_value(it, email_keys, &type);
        char low[MAX_EMAIL + 1];
        if (!e || !email_ok(e)) {
            snprintf(why, whysz, "contact.emails[%d]: not a valid-looking address", idx);
            goto bad;
        }
        snprintf(low, sizeof(low), "%s", e);
        for (char *c = low; *c; c++) {
            *c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
        }
        cJSON_AddItemToArray(elist, cJSON_CreateString(low));
        idx++;
    }
    plist = cJSON_AddArrayToObject(f, "phones");
    idx = 0;
    cJSON_ArrayForEach(it, (cJSON_IsArray(phones) ? phones : NULL))
    {
        const char *p = entry_value(it, phone_keys, &type);
        if (!p || !phone_ok(p)) {
            snprintf(why, whysz, "contact.phones[%d]: not a phone number", idx);
            goto bad;
        }
        cJSON_AddItemToArray(plist, cJSON_CreateString(p));
        idx++;
    }
    return f;
bad:
    cJSON_Delete(f);
    return NULL;
}

static void process(void *state, const struct dr_msg *msg, struct dr_result *res)
{
    const cJSON *pl = dr_msg_payload(msg), *contact;
    const char *op, *user_id, *contact_id;
    char why[256];
    cJSON *fields;

    if (!cJSON_IsObject(pl)) {
        dr_result_reject(res, "invalid_contact", "payload is not a JSON object");
        return;
    }
    if (msg->data_len > MAX_MSG_BYTES) {
        dr_result_reject(res, "invalid_contact", "message over %d bytes", MAX_MSG_BYTES);
        return;
    }
    if (!id_ok(pl, "user_id", 1) || !id_ok(pl, "contact_id", 1) || !id_ok(pl, "org_id", 0)) {
        dr_result_reject(res, "invalid_contact",
                         "user_id and contact_id (required) and org_id: strings of 1-%d bytes",
                         MAX_ID);
        return;
    }
    user_id = dr_json_str(pl, "user_id");
    contact_id = dr_json_str(pl, "contact_id");
    op = dr_json_str(pl, "operation") ? dr_json_str(pl, "operation") : "upsert";
    if (strcmp(op, "delete") == 0) {
        dr_index_emit(res, "contact", user_id, contact_id, NULL);
        DR_INFO(COMP, "contact removed", "message_id=%s", msg->message_id);
        return;
    }
    if (strcmp(op, "upsert") != 0) {
        dr_result_reject(res, "invalid_contact", "operation must be upsert or delete");
        return;
    }
    contact = cJSON_GetObjectItemCaseSensitive(pl, "contact");
    if (!cJSON_IsObject(contact)) {
        dr_result_reject(res, "invalid_contact", "contact: an object is required for upsert");
        return;
    }
    fields = contact_fields(pl, contact, why, sizeof(why));
    if (!fields) {
        dr_result_reject(res, "invalid_contact", "%s", why);
        return;
    }
    dr_index_emit(res, "contact", user_id, contact_id, fields);
    DR_INFO(COMP, "contact indexed", "message_id=%s emails=%d phones=%d", msg->message_id,
            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(fields, "emails")),
            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(fields, "phones")));
    cJSON_Delete(fields);
}

const struct dr_processor dr_processor_contacts = {
    .name = "contacts",
    .description = "contacts: validated, then indexed for search (doctype contact)",
    .process = process,
};
