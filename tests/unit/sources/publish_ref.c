/*
 * The cJSON-tree implementation of dr_publish_parse() that the single-pass parser replaced, kept
 * unchanged as the reference the tests and the micro benchmark compare it with. Included (not
 * linked) by its users, so it stays out of the library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/local.h"
#include "dr/store.h"
#include "dr/util.h"

#define REF_MAX_MESSAGES     1000
#define REF_MAX_ATTRS        100
#define REF_MAX_ATTR_KEY     256
#define REF_MAX_ATTR_VALUE   1024
#define REF_MAX_ORDERING_KEY 1024

static int publish_parse_ref(const char *body, size_t len, const char *topic, struct dr_qmsg **out,
                             size_t *n, char *err, size_t errsz)
{
    cJSON *root = dr_json_parse(body, len);
    const cJSON *msgs, *m;
    struct dr_qmsg *rows = NULL;
    size_t count, i = 0;
    int rc = DR_EINVAL;
    int64_t now = dr_now_ms();

    *out = NULL;
    *n = 0;
    if (!root) {
        snprintf(err, errsz, "Invalid JSON payload received.");
        goto out;
    }
    msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(msgs)) {
        snprintf(err, errsz, "The request must contain a \"messages\" array.");
        goto out;
    }
    count = (size_t)cJSON_GetArraySize(msgs);
    if (count == 0) {
        snprintf(err, errsz, "The request contains no messages.");
        goto out;
    }
    if (count > REF_MAX_MESSAGES) {
        snprintf(err, errsz,
                 "The value for message_count is too large. You passed %zu in the request, but "
                 "the maximum value is %d.",
                 count, REF_MAX_MESSAGES);
        goto out;
    }
    rows = dr_xcalloc(count, sizeof(*rows));
    cJSON_ArrayForEach(m, msgs)
    {
        struct dr_qmsg *q = &rows[i];
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(m, "data");
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(m, "attributes");
        const cJSON *okey = cJSON_GetObjectItemCaseSensitive(m, "orderingKey");
        const cJSON *a;
        char id[32];
        int nattrs = 0;

        if (!cJSON_IsObject(m)) {
            snprintf(err, errsz, "messages[%zu] is not an object.", i);
            goto out;
        }
        if (data && !cJSON_IsNull(data)) {
            size_t dlen;
            if (!cJSON_IsString(data) ||
                dr_base64_decode(data->valuestring, strlen(data->valuestring), &q->data, &dlen)) {
                /* Pub/Sub also accepts the URL-safe alphabet */
                if (!cJSON_IsString(data) ||
                    dr_base64url_decode(data->valuestring, strlen(data->valuestring), &q->data,
                                        &dlen)) {
                    snprintf(err, errsz,
                             "Invalid value at 'messages[%zu].data' (TYPE_BYTES), Base64 "
                             "decoding failed.",
                             i);
                    goto out;
                }
            }
            q->data_len = dlen;
        }
        if (attrs && !cJSON_IsNull(attrs)) {
            if (!cJSON_IsObject(attrs)) {
                snprintf(err, errsz,
                         "Invalid value at 'messages[%zu].attributes': expected an "
                         "object of strings.",
                         i);
                goto out;
            }
            cJSON_ArrayForEach(a, attrs)
            {
                nattrs++;
                if (!cJSON_IsString(a)) {
                    snprintf(err, errsz,
                             "Invalid value at 'messages[%zu].attributes[%s]': "
                             "attribute values must be strings.",
                             i, a->string);
                    goto out;
                }
                if (strlen(a->string) == 0 || strlen(a->string) > REF_MAX_ATTR_KEY) {
                    snprintf(err, errsz, "messages[%zu]: attribute keys must be 1-%d bytes.", i,
                             REF_MAX_ATTR_KEY);
                    rc = DR_ETOOBIG;
                    goto out;
                }
                if (strncmp(a->string, "goog", 4) == 0) {
                    snprintf(err, errsz,
                             "messages[%zu]: attribute keys must not start with "
                             "\"goog\".",
                             i);
                    goto out;
                }
                if (strlen(a->valuestring) > REF_MAX_ATTR_VALUE) {
                    snprintf(err, errsz, "messages[%zu]: attribute '%s' is longer than %d bytes.",
                             i, a->string, REF_MAX_ATTR_VALUE);
                    rc = DR_ETOOBIG;
                    goto out;
                }
            }
            if (nattrs > REF_MAX_ATTRS) {
                snprintf(err, errsz, "messages[%zu] has %d attributes; at most %d are allowed.", i,
                         nattrs, REF_MAX_ATTRS);
                rc = DR_ETOOBIG;
                goto out;
            }
            q->attrs_json = dr_json_print(attrs);
        } else {
            q->attrs_json = dr_xstrdup("{}");
        }
        if (q->data_len == 0 && nattrs == 0) {
            snprintf(err, errsz,
                     "Some messages contain no data and no attribute field "
                     "(messages[%zu]).",
                     i);
            goto out;
        }
        if (okey && !cJSON_IsNull(okey)) {
            if (!cJSON_IsString(okey)) {
                snprintf(err, errsz, "messages[%zu].orderingKey must be a string.", i);
                goto out;
            }
            if (strlen(okey->valuestring) > REF_MAX_ORDERING_KEY) {
                snprintf(err, errsz, "messages[%zu].orderingKey is longer than %d bytes.", i,
                         REF_MAX_ORDERING_KEY);
                rc = DR_ETOOBIG;
                goto out;
            }
            if (*okey->valuestring) {
                q->ordering_key = dr_xstrdup(okey->valuestring);
            }
        }
        {
            const char *ik = cJSON_IsObject(attrs) ? dr_json_str(attrs, "idempotency_key") : NULL;
            if (ik && *ik) {
                /* The same key always maps to the same id: a second publish while the first is
                 * still queued is then a no-op in the queue table. */
                char digest[65];
                dr_sha256_hex(ik, strlen(ik), digest);
                snprintf(id, sizeof(id), "ik-%.24s", digest);
            } else {
                dr_local_new_message_id(id);
                q->fresh_id = 1;
            }
        }
        q->message_id = dr_xstrdup(id);
        q->topic = dr_xstrdup(topic);
        q->publish_time_ms = now;
        i++;
    }
    *out = rows;
    *n = count;
    rows = NULL;
    rc = DR_OK;
out:
    if (rows) {
        dr_qmsgs_free(rows, count);
    }
    cJSON_Delete(root);
    return rc;
}
