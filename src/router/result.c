#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/db.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/processor.h"
#include "dr/util.h"

const char *dr_outcome_name(enum dr_outcome o)
{
    switch (o) {
    case DR_OUTCOME_OK:
        return "ok";
    case DR_OUTCOME_RETRY:
        return "retry";
    case DR_OUTCOME_REJECT:
        return "reject";
    }
    return "unknown";
}

void dr_result_init(struct dr_result *r)
{
    r->outcome = DR_OUTCOME_OK;
    r->reason[0] = r->error[0] = r->downstream[0] = '\0';
    r->retry_after_ms = 0;
    r->emits = NULL;
    r->nemits = r->cap = 0;
    r->finish_fn = NULL;
    r->deferred = 0;
    r->msg = NULL;
    r->processor = NULL;
    r->notified = NULL;
    r->nnotified = 0;
}

void dr_result_defer(struct dr_result *r)
{
    r->deferred = 1;
}

void dr_result_finish(struct dr_result *r)
{
    if (r->finish_fn) {
        r->finish_fn(r);
    }
}

void dr_result_cleanup(struct dr_result *r)
{
    for (size_t i = 0; i < r->nemits; i++) {
        struct dr_emit *e = &r->emits[i];
        free(e->topic);
        free(e->data);
        free(e->ordering_key);
        free(e->place);
        for (size_t j = 0; j < e->nattrs; j++) {
            free(e->attrs[j].key);
            free(e->attrs[j].value);
        }
        free(e->attrs);
    }
    free(r->emits);
    free(r->notified);
    r->notified = NULL;
    r->nnotified = 0;
    /* not a memset: the text buffers are large and only need to read as empty */
    r->outcome = DR_OUTCOME_OK;
    r->reason[0] = r->error[0] = r->downstream[0] = '\0';
    r->retry_after_ms = 0;
    r->emits = NULL;
    r->nemits = r->cap = 0;
}

static void set(struct dr_result *r, enum dr_outcome o, const char *reason, const char *fmt,
                va_list ap)
{
    r->outcome = o;
    snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
}

void dr_result_retry(struct dr_result *r, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set(r, DR_OUTCOME_RETRY, reason, fmt, ap);
    va_end(ap);
}

void dr_result_reject(struct dr_result *r, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set(r, DR_OUTCOME_REJECT, reason, fmt, ap);
    va_end(ap);
}

void dr_result_store_failed(struct dr_result *r, int err, const char *what)
{
    if (dr_db_err_permanent(err)) {
        dr_result_reject(r, "store_refused", "%s: the store refuses it: %s", what,
                         dr_strerror(err));
    } else {
        dr_result_retry(r, "store_error", "%s: %s", what, dr_strerror(err));
    }
}

void dr_result_downstream_failed(struct dr_result *r, const char *downstream, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set(r, DR_OUTCOME_RETRY, "downstream_unavailable", fmt, ap);
    va_end(ap);
    snprintf(r->downstream, sizeof(r->downstream), "%s", downstream);
}

void dr_result_emit(struct dr_result *r, const char *topic, const char *data, size_t len,
                    const char *ordering_key, const char *const *attrs)
{
    struct dr_emit *e;

    if (r->nemits == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4;
        r->emits = dr_xrealloc(r->emits, r->cap * sizeof(*r->emits));
    }
    e = &r->emits[r->nemits++];
    memset(e, 0, sizeof(*e));
    e->topic = dr_xstrdup(topic);
    e->data = dr_xstrndup(data, len);
    e->len = len;
    e->ordering_key = (ordering_key && *ordering_key) ? dr_xstrdup(ordering_key) : NULL;
    for (size_t i = 0; attrs && attrs[i] && attrs[i + 1]; i += 2) {
        e->attrs = dr_xrealloc(e->attrs, (e->nattrs + 1) * sizeof(*e->attrs));
        e->attrs[e->nattrs].key = dr_xstrdup(attrs[i]);
        e->attrs[e->nattrs].value = dr_xstrdup(attrs[i + 1]);
        e->nattrs++;
    }
}

/*
 * The id of a notification of r to room, of type. Processing the same message again (a
 * redelivery after its notifications were published but before it was acknowledged) must give
 * the same ids, so that the store takes the repeats as duplicates and no client sees one twice:
 * the id is the message's publish time (12 hex digits of Unix milliseconds, as dr_time_id, so the
 * store's index of ids still grows at its end), then 20 hex digits of SHA-256 over the message's
 * topic and id, the processor, room, type and how many notifications to that room of that type
 * the processor made for the message before this one. Counting per room and type keeps the other
 * ids when a run makes one more or one fewer of some kind (a throttled progress notification). A
 * result made outside the router gets a dr_time_id.
 */
static void notification_id(struct dr_result *r, const char *room, const char *type, char out[33])
{
    const struct dr_msg *m = r->msg;
    const char *parts[5];
    char digest[65], nth[24];
    uint64_t key;
    unsigned k = 0;
    struct dr_buf seed;

    if (!m || !m->message_id || !m->topic) {
        dr_time_id(out);
        return;
    }
    key = dr_hash_more(dr_hash_more(DR_HASH_INIT, room, strlen(room) + 1), type, strlen(type));
    for (size_t i = 0; i < r->nnotified; i++) {
        k += r->notified[i] == key;
    }
    r->notified = dr_xrealloc(r->notified, (r->nnotified + 1) * sizeof(*r->notified));
    r->notified[r->nnotified++] = key;
    /* the parts NUL-separated: no two different tuples give the same bytes */
    parts[0] = m->topic;
    parts[1] = m->message_id;
    parts[2] = r->processor ? r->processor : "";
    parts[3] = room;
    parts[4] = type;
    dr_buf_init(&seed, SIZE_MAX);
    for (size_t i = 0; i < DR_ARRAY_LEN(parts); i++) {
        dr_buf_append(&seed, parts[i], strlen(parts[i]) + 1);
    }
    snprintf(nth, sizeof(nth), "%u", k);
    dr_buf_appends(&seed, nth);
    dr_sha256_hex(seed.data, seed.len, digest);
    dr_buf_cleanup(&seed);
    int64_t ms = m->publish_time_ms > 0 ? m->publish_time_ms : dr_now_ms();
    snprintf(out, 33, "%012llx%.20s", (unsigned long long)ms & 0xffffffffffffULL, digest);
}

void dr_result_notify(struct dr_result *r, const char *user_id, const char *org_id,
                      const char *room, const char *type, const char *title, const char *message,
                      const cJSON *data)
{
    cJSON *n = cJSON_CreateObject();
    char id[33], ts[32], *s;
    const char *attrs[] = {"type", "client_notification", NULL};

    notification_id(r, room, type, id);
    dr_format_time(dr_now_ms(), ts);
    cJSON_AddStringToObject(n, "notification_id", id);
    if (user_id) {
        cJSON_AddStringToObject(n, "user_id", user_id);
    }
    if (org_id) {
        cJSON_AddStringToObject(n, "org_id", org_id);
    }
    cJSON_AddStringToObject(n, "room", room);
    cJSON_AddStringToObject(n, "notification_type", type);
    cJSON_AddStringToObject(n, "title", title ? title : "");
    cJSON_AddStringToObject(n, "message", message ? message : "");
    cJSON_AddItemToObject(n, "data", data ? cJSON_Duplicate(data, 1) : cJSON_CreateObject());
    cJSON_AddStringToObject(n, "timestamp", ts);
    s = dr_json_print(n);
    dr_result_emit(r, "client-notifications", s, strlen(s), room, attrs);
    /* whether a run makes a notification can depend on the time (a throttled progress one): its
     * id, not its position, tells it from the message's other emits */
    r->emits[r->nemits - 1].place = dr_xstrdup(id);
    free(s);
    cJSON_Delete(n);
}
