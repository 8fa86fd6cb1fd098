/*
 * Processors: one folder under src/processors/ and one line in the table in
 * src/processors/registry.c. The router calls process() on a worker thread, possibly on several
 * threads at once for different messages, so a processor keeps per-message state on the stack
 * and shared state behind its own locks.
 *
 * A processor reports an outcome and what the message produced (emits). The router makes every
 * emit durable before the source message is acknowledged.
 */
#ifndef DR_PROCESSOR_H
#define DR_PROCESSOR_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dr/msg.h"

struct dr_store;

enum dr_outcome {
    DR_OUTCOME_OK = 0,
    DR_OUTCOME_RETRY,  /* transient: back off and try again */
    DR_OUTCOME_REJECT, /* permanent: dead-letter now */
};
const char *dr_outcome_name(enum dr_outcome o);

struct dr_emit {
    char *topic;
    char *data;
    size_t len;
    struct dr_attr *attrs;
    size_t nattrs;
    char *ordering_key;
    char *place; /* what tells it from its message's other emits when the position cannot (a
                  * notification's id), NULL: its position (dr_msg_emit_key) */
};

struct dr_result {
    enum dr_outcome outcome;
    char reason[64];        /* machine-readable, e.g. "invalid_payload", "downstream_unavailable" */
    char error[512];        /* human detail (no bodies, no full addresses) */
    char downstream[64];    /* set with dr_result_downstream_failed: feeds that breaker */
    int64_t retry_after_ms; /* a hint, 0 = the configured backoff */
    struct dr_emit *emits;
    size_t nemits;
    size_t cap;
    /* Deferred completion (dr_result_defer): set by the router, not by processors. */
    void (*finish_fn)(struct dr_result *r);
    int deferred;
    /* What is being processed, set by the router (NULL in tests that make results themselves):
     * notification ids are derived from it (dr_result_notify). */
    const struct dr_msg *msg;
    const char *processor;
    uint64_t *notified; /* a hash of (room, type) of each notification made so far */
    size_t nnotified;
};

/* Everything a processor may use; lives as long as the router. */
struct dr_proc_env {
    struct dr_store *store; /* blocking calls are fine on worker threads */
    const char *data_dir;
    const cJSON *config; /* this processor's section of the YAML (may be NULL) */
};

struct dr_processor {
    const char *name;
    const char *description;
    /* The keys its section (processors.<name>) may hold, NULL-terminated; NULL: none. "a.b"
     * lets the mapping under key a hold b. The configuration refuses any other key, whether or
     * not a route uses the processor, so a misspelt setting stops the start instead of leaving
     * the processor on its default; init() checks the values. */
    const char *const *config_keys;
    /* Optional. *state is passed to process/destroy. Non-zero return stops the start. */
    int (*init)(const struct dr_proc_env *env, void **state, char *err, size_t errsz);
    void (*process)(void *state, const struct dr_msg *msg, struct dr_result *res);
    void (*destroy)(void *state);
};

/* Lookup in the registry table; NULL if unknown. */
const struct dr_processor *dr_processor_find(const char *name);
const struct dr_processor *const *dr_processor_all(size_t *n);

/* Result helpers (format strings must not include bodies or full addresses). */
void dr_result_init(struct dr_result *r);
/*
 * A processor that batches work (e.g. many messages in one database transaction) may finish a
 * message after process() has returned: it calls dr_result_defer(r) inside process(), keeps r,
 * and later, from any thread, sets the outcome on r and calls dr_result_finish(r) exactly once.
 * Until then r and the message stay valid and the message counts as running (drain waits for
 * it). A processor that defers must finish everything it holds in its destroy().
 */
void dr_result_defer(struct dr_result *r);
void dr_result_finish(struct dr_result *r);
void dr_result_cleanup(struct dr_result *r);
void dr_result_retry(struct dr_result *r, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void dr_result_reject(struct dr_result *r, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * The outcome of a store call that failed with err (a dr/db.h error): one the database will
 * give again for the same values (dr_db_err_permanent(): a constraint, a trigger that raises, a
 * value it cannot hold) is REJECT "store_refused", so the message is dead-lettered now rather
 * than after every attempt; any other (busy, locked, connection lost, I/O, out of memory) is
 * RETRY "store_error". what names the work in the error text ("storing the event"): no bodies,
 * no full addresses.
 */
void dr_result_store_failed(struct dr_result *r, int err, const char *what);
/* RETRY that also counts as a failure of the named downstream's circuit breaker. */
void dr_result_downstream_failed(struct dr_result *r, const char *downstream, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds a follow-up message; data copied. attrs: NULL-terminated key, value, key, value... */
void dr_result_emit(struct dr_result *r, const char *topic, const char *data, size_t len,
                    const char *ordering_key, const char *const *attrs);
/* Emits a client notification (DESIGN §5 ClientNotification) to topic client-notifications.
 * data may be NULL; it is not consumed. */
void dr_result_notify(struct dr_result *r, const char *user_id, const char *org_id,
                      const char *room, const char *type, const char *title, const char *message,
                      const cJSON *data);

#endif
