/*
 * The message envelope (DESIGN §5): what every source builds and every processor reads.
 * A dr_msg is immutable once submitted to the router, reference-counted, and may be read by
 * several worker threads at once (fan-out routes).
 */
#ifndef DR_MSG_H
#define DR_MSG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dr/buf.h"

struct dr_attr {
    char *key;
    char *value;
};

struct dr_msg {
    atomic_int refs;
    char *message_id;
    int64_t publish_time_ms;
    char *topic;          /* source_topic */
    char *type;           /* message_type: attribute "type", else payload "type", else topic default */
    unsigned char *data;  /* raw bytes as published (NUL-terminated, not counted) */
    size_t data_len;
    _Atomic(cJSON *) payload_; /* read through dr_msg_payload(): parsed on first use */
    struct dr_attr *attrs;
    size_t nattrs;
    int priority;         /* 0-9, higher first */
    int attempt;          /* 1 on first delivery; retry_count = attempt - 1 */
    char *ordering_key;   /* NULL when none */
    char *traceparent;    /* W3C traceparent or NULL */
    int64_t first_failure_ms;
    char *last_error;
    /* source bookkeeping, opaque to processors */
    void *source;
    void *source_handle;
    int64_t source_id;
    int64_t received_ns; /* monotonic, when the source got it */
    void *router_job;     /* the router's bookkeeping while it holds the message */
    int delivery_counted; /* the source counts deliveries (Pub/Sub with a dead-letter policy) */
    int fresh_id;         /* the id was minted for this message and can never be delivered again */
};

/* Creates a message owning copies of everything given. refs = 1. */
struct dr_msg *dr_msg_create(const char *message_id, const char *topic, const void *data,
                             size_t len, int64_t publish_time_ms);
/* The same, taking ownership of data: a malloc'ed buffer of len bytes plus a NUL. */
struct dr_msg *dr_msg_create_take(const char *message_id, const char *topic, unsigned char *data,
                                  size_t len, int64_t publish_time_ms);
/* The same with the payload parsed elsewhere (payload owned; NULL when data is not JSON). */
struct dr_msg *dr_msg_create_parsed(const char *message_id, const char *topic, unsigned char *data,
                                    size_t len, cJSON *payload, int64_t publish_time_ms);
void dr_msg_add_attr(struct dr_msg *m, const char *key, const char *value);
/* The same, taking ownership of key and value (malloc'ed strings; value NULL means ""). */
void dr_msg_add_attr_take(struct dr_msg *m, char *key, char *value);
void dr_msg_set_ordering_key(struct dr_msg *m, const char *key);
/* Derives type, priority and traceparent from attributes/payload (call after attrs are set).
 * default_type may be NULL; default_priority used when no valid "priority" attribute. */
void dr_msg_finish(struct dr_msg *m, const char *default_type, int default_priority);
const char *dr_msg_attr(const struct dr_msg *m, const char *key); /* NULL if absent */
/*
 * The data parsed as JSON, NULL when it is not JSON. Parsed on the first call (from any thread;
 * concurrent first calls agree on one tree), so a message nobody looks into is never parsed.
 */
const cJSON *dr_msg_payload(const struct dr_msg *m);
struct dr_msg *dr_msg_ref(struct dr_msg *m);
void dr_msg_unref(struct dr_msg *m); /* NULL-safe */
/* Key used for dedup: the idempotency_key attribute if present, else the message_id. */
const char *dr_msg_dedup_key(const struct dr_msg *m);
/* The key of emits[i], emitted for a message whose key is parent: "em-" and 24 hex digits of
 * SHA-256 over "parent/" and the emit's place: its own (dr_emit.place, a notification's id) when
 * it has one, else its index among the emits without one. Processing the message again emits the
 * same keys, even when that run makes one notification more or fewer, so where the emits are
 * consumed the repeats are duplicates (the local queue's ids, Pub/Sub's idempotency_key). */
#define DR_EMIT_KEY_LEN 27
struct dr_emit;
void dr_msg_emit_key(const char *parent, const struct dr_emit *emits, size_t i,
                     char out[DR_EMIT_KEY_LEN + 1]);
/* The W3C trace id (32 hex digits) of the message's traceparent into out, or "-" when it has
 * none or it is malformed. */
void dr_msg_trace_id(const struct dr_msg *m, char out[33]);
/* The attributes as a JSON object string ({"k":"v"}); caller frees. */
char *dr_msg_attrs_json(const struct dr_msg *m);
/* The original message in Pub/Sub's shape, for dead letters:
 * {"messageId","publishTime","data"(base64),"attributes",{..},"orderingKey"}. Caller frees. */
char *dr_msg_original_json(const struct dr_msg *m);
/* The envelope as JSON for logs and the `log` processor (payload inlined). Caller frees. */
char *dr_msg_envelope_json(const struct dr_msg *m);

#endif
