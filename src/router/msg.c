#include "dr/buf.h"
#include "dr/msg.h"
#include "dr/processor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/json.h"
#include "dr/util.h"

/* payload_ until the data has been parsed (NULL means parsed and not JSON) */
static cJSON unparsed;

static struct dr_msg *create(const char *message_id, const char *topic, unsigned char *data,
                             size_t len, cJSON *payload, int parsed, int64_t publish_time_ms);

struct dr_msg *dr_msg_create_take(const char *message_id, const char *topic,
                                  unsigned char *data, size_t len, int64_t publish_time_ms)
{
    return create(message_id, topic, data, len, NULL, 0, publish_time_ms);
}

struct dr_msg *dr_msg_create_parsed(const char *message_id, const char *topic, unsigned char *data,
                                    size_t len, cJSON *payload, int64_t publish_time_ms)
{
    return create(message_id, topic, data, len, payload, 1, publish_time_ms);
}

static struct dr_msg *create(const char *message_id, const char *topic, unsigned char *data,
                             size_t len, cJSON *payload, int parsed, int64_t publish_time_ms)
{
    struct dr_msg *m = dr_xcalloc(1, sizeof(*m));

    atomic_init(&m->refs, 1);
    m->message_id = dr_xstrdup(message_id);
    m->topic = dr_xstrdup(topic);
    if (!data) {
        data = dr_xcalloc(1, 1);
        len = 0;
    }
    m->data = data;
    m->data_len = len;
    m->publish_time_ms = publish_time_ms;
    atomic_init(&m->payload_, parsed ? payload : &unparsed);
    m->attempt = 1;
    return m;
}

struct dr_msg *dr_msg_create(const char *message_id, const char *topic, const void *data,
                             size_t len, int64_t publish_time_ms)
{
    unsigned char *copy = dr_xmalloc(len + 1);
    if (len) {
        memcpy(copy, data, len);
    }
    copy[len] = '\0';
    return dr_msg_create_take(message_id, topic, copy, len, publish_time_ms);
}

void dr_msg_add_attr_take(struct dr_msg *m, char *key, char *value)
{
    /* grow by powers of two: messages often carry several attributes */
    if (m->nattrs == 0 || (m->nattrs >= 4 && (m->nattrs & (m->nattrs - 1)) == 0)) {
        m->attrs = dr_xrealloc(m->attrs, (m->nattrs ? m->nattrs * 2 : 4) * sizeof(*m->attrs));
    }
    m->attrs[m->nattrs].key = key;
    m->attrs[m->nattrs].value = value ? value : dr_xstrdup("");
    m->nattrs++;
}

void dr_msg_add_attr(struct dr_msg *m, const char *key, const char *value)
{
    dr_msg_add_attr_take(m, dr_xstrdup(key), dr_xstrdup(value ? value : ""));
}

void dr_msg_set_ordering_key(struct dr_msg *m, const char *key)
{
    free(m->ordering_key);
    m->ordering_key = (key && *key) ? dr_xstrdup(key) : NULL;
}

const cJSON *dr_msg_payload(const struct dr_msg *m)
{
    struct dr_msg *w = (struct dr_msg *)m; /* the parse is a cache, not a change */
    cJSON *p = atomic_load_explicit(&w->payload_, memory_order_acquire);
    cJSON *expected = &unparsed;

    if (p != &unparsed) {
        return p;
    }
    p = dr_json_parse((const char *)m->data, m->data_len);
    if (!atomic_compare_exchange_strong_explicit(&w->payload_, &expected, p, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        cJSON_Delete(p); /* another thread parsed it first */
        return expected;
    }
    return p;
}

const char *dr_msg_attr(const struct dr_msg *m, const char *key)
{
    for (size_t i = 0; i < m->nattrs; i++) {
        if (strcmp(m->attrs[i].key, key) == 0) {
            return m->attrs[i].value;
        }
    }
    return NULL;
}

void dr_msg_finish(struct dr_msg *m, const char *default_type, int default_priority)
{
    const char *t = dr_msg_attr(m, "type");
    const char *p = dr_msg_attr(m, "priority");
    int64_t prio;

    if (!t) {
        t = dr_json_str(dr_msg_payload(m), "type");
    }
    if (!t) {
        t = default_type;
    }
    free(m->type);
    m->type = dr_xstrdup(t ? t : "");
    m->priority = default_priority;
    if (p && dr_parse_i64(p, &prio) == 0 && prio >= 0 && prio <= 9) {
        m->priority = (int)prio;
    }
    free(m->traceparent);
    m->traceparent = dr_xstrdup(dr_msg_attr(m, "traceparent"));
}

struct dr_msg *dr_msg_ref(struct dr_msg *m)
{
    atomic_fetch_add(&m->refs, 1);
    return m;
}

void dr_msg_unref(struct dr_msg *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1) {
        return;
    }
    for (size_t i = 0; i < m->nattrs; i++) {
        free(m->attrs[i].key);
        free(m->attrs[i].value);
    }
    free(m->attrs);
    free(m->message_id);
    free(m->topic);
    free(m->type);
    free(m->data);
    if (atomic_load(&m->payload_) != &unparsed) {
        cJSON_Delete(atomic_load(&m->payload_));
    }
    free(m->ordering_key);
    free(m->traceparent);
    free(m->last_error);
    free(m);
}

const char *dr_msg_dedup_key(const struct dr_msg *m)
{
    const char *k = dr_msg_attr(m, "idempotency_key");
    return (k && *k) ? k : m->message_id;
}

void dr_msg_emit_key(const char *parent, const struct dr_emit *emits, size_t i,
                     char out[DR_EMIT_KEY_LEN + 1])
{
    struct dr_buf seed;
    char digest[65];
    size_t nth = 0;

    dr_buf_init(&seed, SIZE_MAX); /* whole: a long key keeps its place */
    dr_buf_appends(&seed, parent);
    dr_buf_appendc(&seed, '/');
    if (emits[i].place) {
        dr_buf_appendc(&seed, 'p');
        dr_buf_appends(&seed, emits[i].place);
    } else {
        for (size_t k = 0; k < i; k++) {
            nth += !emits[k].place;
        }
        dr_buf_printf(&seed, "%zu", nth);
    }
    dr_sha256_hex(seed.data, seed.len, digest);
    dr_buf_cleanup(&seed);
    snprintf(out, DR_EMIT_KEY_LEN + 1, "em-%.24s", digest);
}

void dr_msg_trace_id(const struct dr_msg *m, char out[33])
{
    const char *t = m->traceparent;

    /* version "00" - 32 hex trace id - 16 hex parent id - 2 hex flags */
    if (t && strlen(t) == 55 && t[2] == '-' && t[35] == '-' && t[52] == '-' &&
        strspn(t + 3, "0123456789abcdef") >= 32 &&
        strncmp(t + 3, "00000000000000000000000000000000", 32) != 0) {
        memcpy(out, t + 3, 32);
        out[32] = '\0';
        return;
    }
    out[0] = '-';
    out[1] = '\0';
}

static cJSON *attrs_obj(const struct dr_msg *m)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < m->nattrs; i++) {
        cJSON_AddStringToObject(o, m->attrs[i].key, m->attrs[i].value);
    }
    return o;
}

char *dr_msg_attrs_json(const struct dr_msg *m)
{
    cJSON *o = attrs_obj(m);
    char *s = dr_json_print(o);
    cJSON_Delete(o);
    return s;
}

char *dr_msg_original_json(const struct dr_msg *m)
{
    cJSON *o = cJSON_CreateObject();
    char ts[32], *b64 = NULL, *s;
    size_t n;

    dr_format_time(m->publish_time_ms, ts);
    cJSON_AddStringToObject(o, "messageId", m->message_id);
    cJSON_AddStringToObject(o, "topic", m->topic);
    cJSON_AddStringToObject(o, "publishTime", ts);
    if (dr_base64_encode(m->data, m->data_len, &b64, &n) == 0) {
        cJSON_AddStringToObject(o, "data", b64);
    }
    free(b64);
    cJSON_AddItemToObject(o, "attributes", attrs_obj(m));
    cJSON_AddStringToObject(o, "orderingKey", m->ordering_key ? m->ordering_key : "");
    s = dr_json_print(o);
    cJSON_Delete(o);
    return s;
}

char *dr_msg_envelope_json(const struct dr_msg *m)
{
    cJSON *o = cJSON_CreateObject();
    char ts[32], *s;

    dr_format_time(m->publish_time_ms, ts);
    cJSON_AddStringToObject(o, "message_id", m->message_id);
    cJSON_AddStringToObject(o, "timestamp", ts);
    cJSON_AddStringToObject(o, "source_topic", m->topic);
    cJSON_AddStringToObject(o, "message_type", m->type ? m->type : "");
    if (dr_msg_payload(m)) {
        cJSON_AddItemToObject(o, "payload", cJSON_Duplicate(dr_msg_payload(m), 1));
    } else {
        cJSON_AddNullToObject(o, "payload");
    }
    cJSON_AddItemToObject(o, "metadata", attrs_obj(m));
    cJSON_AddNumberToObject(o, "priority", m->priority);
    cJSON_AddNumberToObject(o, "retry_count", m->attempt - 1);
    if (m->ordering_key) {
        cJSON_AddStringToObject(o, "ordering_key", m->ordering_key);
    }
    if (m->traceparent) {
        cJSON_AddStringToObject(o, "traceparent", m->traceparent);
    }
    s = dr_json_print(o);
    cJSON_Delete(o);
    return s;
}
