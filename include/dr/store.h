/*
 * The router's durable state on top of dr_db: the local queue, dedup records and dead letters.
 * Later modules (shipments, polls, notifications) add their own tables through the migration
 * list in src/store/migrations.c and their own query files; they reach the database with
 * dr_store_db().
 *
 * Every function blocks (see dr/db.h) and is thread-safe. Returned objects are owned by the
 * caller and freed with the matching _free function.
 */
#ifndef DR_STORE_H
#define DR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "dr/db.h"

struct dr_store;

/* Opens (creating if needed) and migrates. url as dr_db_open(). */
int dr_store_open(const char *url, struct dr_store **out);
void dr_store_close(struct dr_store *st); /* NULL-safe */
struct dr_db *dr_store_db(struct dr_store *st);

/* ---- local queue ---- */
struct dr_qmsg {
    int64_t id;          /* assigned by insert, increasing */
    char *message_id;    /* unique */
    char *topic;
    char *attrs_json;    /* {"k":"v",...} */
    unsigned char *data; /* decoded payload bytes */
    size_t data_len;
    char *ordering_key;  /* NULL if none */
    int64_t publish_time_ms;
    int attempts;        /* attempts made so far */
    int64_t not_before_ms; /* 0 = ready */
    int64_t first_failure_ms; /* 0 = never failed */
    char *last_error;    /* NULL if none */
    /* Not stored: data already parsed as JSON (a cJSON *) by whoever made or loaded the row, so
     * the event loop need not parse it again; NULL when not done or not JSON. Owned. */
    void *parsed;
    int parsed_done; /* 1 when parsed is final (NULL = not JSON) */
    int fresh_id;    /* not stored: message_id was minted by this publish, so it cannot repeat */
};
void dr_qmsg_cleanup(struct dr_qmsg *m);
void dr_qmsgs_free(struct dr_qmsg *m, size_t n);

struct dr_qupdate {
    int64_t id;
    int attempts;
    int64_t not_before_ms;
    int64_t first_failure_ms;
    const char *last_error;
};

struct dr_dead_letter {
    int64_t id;
    char *message_id;
    char *topic;
    char *processor;    /* NULL when no processor was reached (no_route) */
    char *reason;       /* machine code: no_route, rejected, attempts_exhausted, ... */
    char *error;        /* human detail */
    int attempts;
    int64_t first_failure_ms;
    int64_t last_failure_ms;
    int64_t created_ms;
    char *message_json; /* the original message: {"data":base64,"attributes":{},
                           "orderingKey":"","messageId":"","publishTime":""} */
};
void dr_dead_letter_cleanup(struct dr_dead_letter *d);
void dr_dead_letters_free(struct dr_dead_letter *d, size_t n);

/* One group commit: everything in one transaction, all or nothing. Inserts get their id and are
 * skipped (id stays 0) when their message_id is already queued (or appears earlier in the same
 * batch). Any array may be NULL/0. Deletes and updates of ids no longer queued are not errors.
 * Dead letters get id and created_ms (now when 0). Dead letters taken (a replay: their message
 * goes back to the queue in the same commit) must all still exist: when one is gone (replayed or
 * discarded by someone else) the call returns DR_ENOTFOUND and applies nothing, so concurrent
 * replays of one dead letter queue it once. A batch that takes dead letters and has an insert
 * that would be skipped (its message_id is queued) returns DR_EEXIST and applies nothing: the
 * dead letter stays. Input is checked before anything runs (DR_EINVAL:
 * insert without message_id/topic, empty dedup key, dead letter without
 * message_id/topic/reason/message_json). On failure nothing changed, in the database or in b. */
struct dr_qbatch {
    struct dr_qmsg *inserts;
    size_t ninserts;
    const int64_t *deletes; /* queue ids done (acked) */
    size_t ndeletes;
    const struct dr_qupdate *updates; /* retry bookkeeping */
    size_t nupdates;
    const char *const *dedup_keys; /* mark as processed now */
    size_t ndedup;
    struct dr_dead_letter *dead; /* ids assigned on success */
    size_t ndead;
    const int64_t *dlq_take; /* dead letter ids to remove; DR_ENOTFOUND when one is gone */
    size_t ndlq_take;
};
int dr_store_apply(struct dr_store *st, struct dr_qbatch *b);

/* Up to limit queued messages with id > after_id in id order (ids are never reused). On success
 * *out (NULL when *n is 0) is freed with dr_qmsgs_free(); data has a NUL after data_len. */
int dr_store_queue_load(struct dr_store *st, int64_t after_id, size_t limit, struct dr_qmsg **out,
                        size_t *n);
int dr_store_queue_count(struct dr_store *st, int64_t *count);

/*
 * Ownership, for several instances sharing one database. Once an owner is set, inserts are
 * claimed by it for lease_ms, dr_store_queue_load() returns (and claims) only rows that are
 * unowned, its own, or whose lease has passed, and dr_store_queue_renew() extends the leases of
 * everything it owns. A stable owner (host and port) lets a restarted instance take its own rows
 * back at once; another instance's rows are taken over when their lease runs out
 * (dr_store_queue_claim_expired, any id). dr_store_queue_release(), at the end of an orderly
 * stop, ends the leases of everything the owner holds (*segments: how many), so that whoever
 * starts next, on another port or host, takes the rows at once, not a lease later.
 */
int dr_store_queue_set_owner(struct dr_store *st, const char *owner, int64_t lease_ms);
int dr_store_queue_renew(struct dr_store *st);
int dr_store_queue_release(struct dr_store *st, int64_t *segments);
int dr_store_queue_claim_expired(struct dr_store *st, size_t limit, struct dr_qmsg **out,
                                 size_t *n);
/* Counts an attempt, with error as its last error, for each of the n queued messages that were
 * being processed when the process died (dr/running.h), in one transaction. Messages done or
 * gone are left alone; *counted (may be NULL) tells how many were not. */
int dr_store_queue_count_crash(struct dr_store *st, const int64_t *ids, size_t n, const char *error,
                               size_t *counted);

/* ---- dedup ---- */
/* 1 in *seen if key was marked at or after since_ms. A mark keeps the latest time given. */
int dr_store_dedup_seen(struct dr_store *st, const char *key, int64_t since_ms, int *seen);
/* dr_store_dedup_seen() for n keys at once, in a few statements: seen[i] for keys[i] (0 for a
 * NULL or empty key). On an error every seen[i] is 0. */
int dr_store_dedup_seen_many(struct dr_store *st, const char *const *keys, size_t n,
                             int64_t since_ms, int *seen);
int dr_store_dedup_mark(struct dr_store *st, const char *key, int64_t now_ms);
int dr_store_dedup_purge(struct dr_store *st, int64_t before_ms, int64_t *purged);

/* ---- dead letters ---- */
struct dr_dlq_filter { /* all set fields must match; NULL or "" = any */
    const char *topic;     /* exact, NULL = any */
    const char *processor; /* exact */
    const char *reason;    /* exact */
    const char *error;     /* substring of error, case-sensitive, no wildcards */
    int64_t since_ms;      /* created_ms >= since (0 = any) */
    int64_t until_ms;      /* created_ms < until (0 = any) */
    int64_t after_id;      /* paging: id > after_id */
    int64_t max_id;        /* id <= max_id (0 = any): a set fixed when a bulk job starts */
    size_t limit;          /* 0 = 100; capped at 1000 */
};
int dr_store_dlq_put(struct dr_store *st, struct dr_dead_letter *d); /* sets d->id */
int dr_store_dlq_list(struct dr_store *st, const struct dr_dlq_filter *f,
                      struct dr_dead_letter **out, size_t *n);
int dr_store_dlq_get(struct dr_store *st, int64_t id, struct dr_dead_letter *out); /* ENOTFOUND */
int dr_store_dlq_delete(struct dr_store *st, int64_t id);                            /* ENOTFOUND */
int dr_store_dlq_count(struct dr_store *st, int64_t *count);
/* How many of the first max dead letters f matches in id order there are (f->limit is not
 * used), and the id of the last of them (0 when none): with that id as max_id, paging through f
 * sees exactly them, minus those removed meanwhile, whatever is dead-lettered later. */
int dr_store_dlq_count_matching(struct dr_store *st, const struct dr_dlq_filter *f, int64_t max,
                                int64_t *count, int64_t *last_id);
int dr_store_dlq_purge(struct dr_store *st, int64_t before_ms, int64_t *purged);

#endif
