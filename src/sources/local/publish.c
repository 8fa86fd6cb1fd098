/* Pub/Sub publish request validation, shared by the local source and its tests. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/local.h"
#include "dr/util.h"

#define MAX_MESSAGES 1000
#define MAX_ATTRS 100
#define MAX_ATTR_KEY 256
#define MAX_ATTR_VALUE 1024
#define MAX_ORDERING_KEY 1024

int dr_topic_name_valid(const char *t)
{
    size_t n = strlen(t);
    if (n < 3 || n > 255 || !((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z'))) {
        return 0;
    }
    if (strncmp(t, "goog", 4) == 0) {
        return 0;
    }
    return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+%") == n;
}

int dr_topic_known(const struct dr_config *cfg, const char *topic)
{
    if (dr_config_topic_type(cfg, topic)) {
        return 1;
    }
    for (size_t i = 0; i < cfg->ntopics; i++) {
        if (strcmp(cfg->topics[i].name, topic) == 0) {
            return 1;
        }
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        for (size_t k = 0; k < cfg->routes[i].ntopics; k++) {
            if (strcmp(cfg->routes[i].topics[k], topic) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

void dr_local_new_message_id(char out[32])
{
    static atomic_llong next;
    long long expect = 0;
    /* Seeded from the clock so ids keep increasing across restarts. */
    atomic_compare_exchange_strong(&next, &expect, (long long)dr_now_ms() * 1000000LL);
    snprintf(out, 32, "%lld", atomic_fetch_add(&next, 1));
}

int dr_publish_parse(const char *body, size_t len, const char *topic, struct dr_qmsg **out,
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
    if (count > MAX_MESSAGES) {
        snprintf(err, errsz,
                 "The value for message_count is too large. You passed %zu in the request, but "
                 "the maximum value is %d.",
                 count, MAX_MESSAGES);
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
                if (!cJSON_IsString(data) || dr_base64url_decode(data->valuestring,
                                                                 strlen(data->valuestring),
                                                                 &q->data, &dlen)) {
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
                snprintf(err, errsz, "Invalid value at 'messages[%zu].attributes': expected an "
                                     "object of strings.", i);
                goto out;
            }
            cJSON_ArrayForEach(a, attrs)
            {
                nattrs++;
                if (!cJSON_IsString(a)) {
                    snprintf(err, errsz, "Invalid value at 'messages[%zu].attributes[%s]': "
                                         "attribute values must be strings.", i, a->string);
                    goto out;
                }
                if (strlen(a->string) == 0 || strlen(a->string) > MAX_ATTR_KEY) {
                    snprintf(err, errsz, "messages[%zu]: attribute keys must be 1-%d bytes.", i,
                             MAX_ATTR_KEY);
                    rc = DR_ETOOBIG;
                    goto out;
                }
                if (strncmp(a->string, "goog", 4) == 0) {
                    snprintf(err, errsz, "messages[%zu]: attribute keys must not start with "
                                         "\"goog\".", i);
                    goto out;
                }
                if (strlen(a->valuestring) > MAX_ATTR_VALUE) {
                    snprintf(err, errsz, "messages[%zu]: attribute '%s' is longer than %d bytes.",
                             i, a->string, MAX_ATTR_VALUE);
                    rc = DR_ETOOBIG;
                    goto out;
                }
            }
            if (nattrs > MAX_ATTRS) {
                snprintf(err, errsz, "messages[%zu] has %d attributes; at most %d are allowed.",
                         i, nattrs, MAX_ATTRS);
                rc = DR_ETOOBIG;
                goto out;
            }
            q->attrs_json = dr_json_print(attrs);
        } else {
            q->attrs_json = dr_xstrdup("{}");
        }
        if (q->data_len == 0 && nattrs == 0) {
            snprintf(err, errsz, "Some messages contain no data and no attribute field "
                                 "(messages[%zu]).", i);
            goto out;
        }
        if (okey && !cJSON_IsNull(okey)) {
            if (!cJSON_IsString(okey)) {
                snprintf(err, errsz, "messages[%zu].orderingKey must be a string.", i);
                goto out;
            }
            if (strlen(okey->valuestring) > MAX_ORDERING_KEY) {
                snprintf(err, errsz, "messages[%zu].orderingKey is longer than %d bytes.", i,
                         MAX_ORDERING_KEY);
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
