/*
 * Internals of the store module shared by store.c, queue.c, dedup.c and dlq.c.
 */
#ifndef DR_STORE_STORE_INTERNAL_H
#define DR_STORE_STORE_INTERNAL_H

#include <stddef.h>

#include "dr/db.h"
#include "dr/store.h"

struct dr_store {
    struct dr_db *db;
    char *owner;      /* this instance, for queue claims; NULL = no claims */
    int64_t lease_ms; /* how long a claim lasts without renewal */
};

/* The whole schema, oldest first (migrations.c). Append; never edit an applied entry. */
extern const struct dr_db_migration dr__store_migrations[];
extern const size_t dr__store_nmigrations;

/* dr_db_tx_exec() when tx is set, else dr_db_exec() on the store's database. */
int dr__store_exec(struct dr_store *st, struct dr_db_tx *tx, const char *sql,
                   const struct dr_db_val *params, size_t nparams, dr_db_row_cb cb, void *ctx,
                   int64_t *changes);

/* Checks the fields a dead letter must have; DR_EINVAL (logged) when one is missing. */
int dr__dlq_check(const struct dr_dead_letter *d);
/* Inserts d (in tx when set); *id and *created_ms get what was stored. d is not modified. */
int dr__dlq_insert(struct dr_store *st, struct dr_db_tx *tx, const struct dr_dead_letter *d,
                   int64_t *id, int64_t *created_ms);
/* Marks key as seen at now_ms (in tx when set). */
int dr__dedup_mark(struct dr_store *st, struct dr_db_tx *tx, const char *key, int64_t now_ms);
/* Marks n keys (repeats allowed) as seen at now_ms in multi-row statements. */
int dr__dedup_mark_many(struct dr_store *st, struct dr_db_tx *tx, const char *const *keys, size_t n,
                        int64_t now_ms);

/* Moves rows of the one-row-per-message queue table (schema v1/v2) into segments. */
int dr__queue_convert_legacy(struct dr_store *st);

#endif
