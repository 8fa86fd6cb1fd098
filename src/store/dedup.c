/*
 * Dedup records: a key (message_id or idempotency key) and when it was last processed.
 */
#include "dr/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"
#include "store/store_internal.h"

/* Keeps the latest time when marks arrive out of order (CASE: both engines, unlike MAX/GREATEST) */
static const char sql_mark[] =
    "INSERT INTO dedup (key, seen_ms) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET "
    "seen_ms = CASE WHEN excluded.seen_ms > dedup.seen_ms THEN excluded.seen_ms "
    "ELSE dedup.seen_ms END";

int dr__dedup_mark(struct dr_store *st, struct dr_db_tx *tx, const char *key, int64_t now_ms)
{
    struct dr_db_val p[2] = {DR_DB_TEXTV(key), DR_DB_INTV(now_ms)};

    return dr__store_exec(st, tx, sql_mark, p, DR_ARRAY_LEN(p), NULL, NULL, NULL);
}

/* Batches mark in multi-row statements (dr_db_rows_sql). */
static char *sql_mark_rows[DR_DB_NCHUNKS]; /* built once, kept for the life of the process */
/* and lookups of as many keys in one statement: "key IN ($1, ...) AND seen_ms >= $n+1" */
static char *sql_seen_rows[DR_DB_NCHUNKS];
static pthread_once_t sql_once = PTHREAD_ONCE_INIT;

static void build_sql(void)
{
    for (size_t k = 0; k < DR_DB_NCHUNKS; k++) {
        char suffix[64];

        snprintf(suffix, sizeof(suffix), ") AND seen_ms >= $%zu", dr_db_chunks[k] + 1);
        sql_seen_rows[k] =
            dr_db_rows_sql("SELECT key FROM dedup WHERE key IN (", "?", dr_db_chunks[k], suffix);
        sql_mark_rows[k] = dr_db_rows_sql(
            "INSERT INTO dedup (key, seen_ms) VALUES ", "(?, ?)", dr_db_chunks[k],
            " ON CONFLICT (key) DO UPDATE SET seen_ms = CASE WHEN excluded.seen_ms > "
            "dedup.seen_ms THEN excluded.seen_ms ELSE dedup.seen_ms END");
    }
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int dr__dedup_mark_many(struct dr_store *st, struct dr_db_tx *tx, const char *const *keys, size_t n,
                        int64_t now_ms)
{
    const char **uniq;
    struct dr_db_val p[2 * DR_DB_CHUNK_MAX];
    size_t nu = 0;
    int err = DR_OK;

    if (n == 0) {
        return DR_OK;
    }
    pthread_once(&sql_once, build_sql);
    /* one statement may not update the same row twice (PostgreSQL refuses): drop repeats */
    uniq = dr_xmalloc(n * sizeof(*uniq));
    memcpy(uniq, keys, n * sizeof(*uniq));
    qsort(uniq, n, sizeof(*uniq), cmp_key);
    for (size_t i = 0; i < n; i++) {
        if (nu == 0 || strcmp(uniq[nu - 1], uniq[i]) != 0) {
            uniq[nu++] = uniq[i];
        }
    }
    for (size_t i = 0, k; !err && i < nu; i += dr_db_chunks[k]) {
        k = dr_db_chunk_index(nu - i);
        for (size_t r = 0; r < dr_db_chunks[k]; r++) {
            p[2 * r] = DR_DB_TEXTV(uniq[i + r]);
            p[2 * r + 1] = DR_DB_INTV(now_ms);
        }
        err = dr__store_exec(st, tx, sql_mark_rows[k], p, 2 * dr_db_chunks[k], NULL, NULL, NULL);
    }
    free(uniq);
    return err;
}

static int set_seen(void *ctx, const struct dr_db_row *row)
{
    *(int *)ctx = 1;
    return 0;
}

int dr_store_dedup_seen(struct dr_store *st, const char *key, int64_t since_ms, int *seen)
{
    struct dr_db_val p[2] = {DR_DB_TEXTV(key), DR_DB_INTV(since_ms)};

    if (!seen) {
        return DR_EINVAL;
    }
    *seen = 0;
    if (!st || !key || !*key) {
        return DR_EINVAL;
    }
    return dr_db_exec(st->db, "SELECT 1 FROM dedup WHERE key = $1 AND seen_ms >= $2", p,
                      DR_ARRAY_LEN(p), set_seen, seen, NULL);
}

/* The keys of one lookup statement, and whether each was seen. */
struct seen_many {
    const char *const *keys;
    size_t n;
    int *seen;
};

static int set_seen_key(void *ctx, const struct dr_db_row *row)
{
    struct seen_many *sm = ctx;
    const char *key = dr_db_row_text(row, 0);

    for (size_t i = 0; key && i < sm->n; i++) {
        if (strcmp(sm->keys[i], key) == 0) {
            sm->seen[i] = 1; /* every place the key is at: a batch may repeat one */
        }
    }
    return 0;
}

int dr_store_dedup_seen_many(struct dr_store *st, const char *const *keys, size_t n,
                             int64_t since_ms, int *seen)
{
    const char **k;
    size_t *at, nk = 0;
    int *found;
    struct dr_db_val p[DR_DB_CHUNK_MAX + 1];
    int err = DR_OK;

    if (!st || (n && (!keys || !seen))) {
        return DR_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        seen[i] = 0;
    }
    if (n == 0) {
        return DR_OK;
    }
    pthread_once(&sql_once, build_sql);
    /* the keys to look up (no NULL or empty ones) and where each came from */
    k = dr_xmalloc(n * sizeof(*k));
    at = dr_xmalloc(n * sizeof(*at));
    found = dr_xcalloc(n, sizeof(*found));
    for (size_t i = 0; i < n; i++) {
        if (keys[i] && *keys[i]) {
            k[nk] = keys[i];
            at[nk++] = i;
        }
    }
    for (size_t i = 0, c; !err && i < nk; i += dr_db_chunks[c]) {
        struct seen_many sm;

        c = dr_db_chunk_index(nk - i);
        for (size_t r = 0; r < dr_db_chunks[c]; r++) {
            p[r] = DR_DB_TEXTV(k[i + r]);
        }
        p[dr_db_chunks[c]] = DR_DB_INTV(since_ms);
        sm.keys = k + i;
        sm.n = dr_db_chunks[c];
        sm.seen = found + i;
        err = dr_db_exec(st->db, sql_seen_rows[c], p, dr_db_chunks[c] + 1, set_seen_key, &sm, NULL);
    }
    for (size_t j = 0; !err && j < nk; j++) {
        seen[at[j]] = found[j];
    }
    free(k);
    free(at);
    free(found);
    return err;
}

int dr_store_dedup_mark(struct dr_store *st, const char *key, int64_t now_ms)
{
    if (!st || !key || !*key) {
        return DR_EINVAL;
    }
    return dr__dedup_mark(st, NULL, key, now_ms);
}

int dr_store_dedup_purge(struct dr_store *st, int64_t before_ms, int64_t *purged)
{
    struct dr_db_val p = DR_DB_INTV(before_ms);

    if (purged) {
        *purged = 0;
    }
    if (!st) {
        return DR_EINVAL;
    }
    return dr_db_exec(st->db, "DELETE FROM dedup WHERE seen_ms < $1", &p, 1, NULL, NULL, purged);
}
