/*
 * The local durable queue and the router's group commit (dr_store_apply).
 *
 * apply is the hot path: one transaction per batch and one cached prepared statement per kind
 * of change, so a batch costs one commit plus a few microseconds per row on SQLite.
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

#define QCOLS                                                                                      \
    "id, message_id, topic, attrs_json, data, ordering_key, publish_time_ms, attempts, "           \
    "not_before_ms, first_failure_ms, last_error"

/* Inserts and deletes go in multi-row statements of CHUNKS[k] rows (one cached statement per
 * size): a statement per row would cost a round trip each on PostgreSQL, and on SQLite the
 * per-statement cost of RETURNING is as large as the insert itself. */
#define CHUNK_MAX 64
static const size_t chunks[] = {CHUNK_MAX, 16, 4, 1};
#define NCHUNKS    (sizeof(chunks) / sizeof(chunks[0]))
#define INS_PARAMS 12

static char *sql_insert[NCHUNKS]; /* built once, kept for the life of the process */
static char *sql_delete[NCHUNKS];
static pthread_once_t sql_once = PTHREAD_ONCE_INIT;

static void build_sql(void)
{
    for (size_t k = 0; k < NCHUNKS; k++) {
        struct dr_buf b;
        size_t n = 1;

        dr_buf_init(&b, 64 * 1024);
        dr_buf_appends(&b, "INSERT INTO queue (message_id, topic, attrs_json, data, ordering_key, "
                           "publish_time_ms, attempts, not_before_ms, first_failure_ms, "
                           "last_error, owner, lease_until) VALUES ");
        for (size_t r = 0; r < chunks[k]; r++) {
            dr_buf_appends(&b, r ? ", (" : "(");
            for (size_t c = 0; c < INS_PARAMS; c++, n++) {
                dr_buf_printf(&b, c ? ", $%zu" : "$%zu", n);
            }
            dr_buf_appendc(&b, ')');
        }
        dr_buf_appends(&b, " ON CONFLICT (message_id) DO NOTHING RETURNING id, message_id");
        sql_insert[k] = dr_buf_steal(&b, NULL);

        dr_buf_init(&b, 64 * 1024);
        dr_buf_appends(&b, "DELETE FROM queue WHERE id IN (");
        for (size_t r = 0; r < chunks[k]; r++) {
            dr_buf_printf(&b, r ? ", $%zu" : "$%zu", r + 1);
        }
        dr_buf_appendc(&b, ')');
        sql_delete[k] = dr_buf_steal(&b, NULL);
    }
}

/* The largest chunk size that fits in left rows. */
static size_t chunk_index(size_t left)
{
    size_t k = 0;

    while (chunks[k] > left) {
        k++;
    }
    return k;
}

static const char sql_update[] = "UPDATE queue SET attempts = $1, not_before_ms = $2, "
                                 "first_failure_ms = $3, last_error = $4 WHERE id = $5";
static const char sql_load[] = "SELECT " QCOLS " FROM queue WHERE id > $1 ORDER BY id LIMIT $2";

static int check_insert(const struct dr_qmsg *m, size_t i)
{
    if (!m->message_id || !*m->message_id || !m->topic || !*m->topic || (m->data_len && !m->data) ||
        m->attempts < 0) {
        DR_WARN("store", "bad queue insert: message_id, topic and data are required", "index=%zu",
                i);
        return DR_EINVAL;
    }
    return DR_OK;
}

static int check_batch(const struct dr_qbatch *b)
{
    int err = DR_OK;

    if ((b->ninserts && !b->inserts) || (b->ndeletes && !b->deletes) ||
        (b->nupdates && !b->updates) || (b->ndedup && !b->dedup_keys) || (b->ndead && !b->dead)) {
        DR_WARN("store", "bad batch: a count without its array",
                "inserts=%zu deletes=%zu updates=%zu dedup=%zu dead=%zu", b->ninserts, b->ndeletes,
                b->nupdates, b->ndedup, b->ndead);
        return DR_EINVAL;
    }
    for (size_t i = 0; !err && i < b->ninserts; i++) {
        err = check_insert(&b->inserts[i], i);
    }
    for (size_t i = 0; !err && i < b->nupdates; i++) {
        if (b->updates[i].attempts < 0) {
            DR_WARN("store", "bad queue update: negative attempts", "id=%lld",
                    (long long)b->updates[i].id);
            err = DR_EINVAL;
        }
    }
    for (size_t i = 0; !err && i < b->ndedup; i++) {
        if (!b->dedup_keys[i] || !*b->dedup_keys[i]) {
            DR_WARN("store", "bad batch: empty dedup key", "index=%zu", i);
            err = DR_EINVAL;
        }
    }
    for (size_t i = 0; !err && i < b->ndead; i++) {
        err = dr__dlq_check(&b->dead[i]);
    }
    return err;
}

/* Maps RETURNING (id, message_id) rows back to the chunk's messages. A row goes to the first
 * message with that message_id still without an id: a later duplicate inside the batch was the
 * one skipped. Rows come back in VALUES order in practice, which makes the search O(1). */
struct ins_chunk {
    const struct dr_qmsg *m;
    int64_t *ids;
    size_t n;
    size_t lo; /* every message before lo has its id or was skipped */
};

static int take_ids(void *ctx, const struct dr_db_row *row)
{
    struct ins_chunk *c = ctx;
    const char *mid = dr_db_row_text(row, 1);

    for (size_t j = c->lo; mid && j < c->n; j++) {
        if (c->ids[j] == 0 && strcmp(c->m[j].message_id, mid) == 0) {
            c->ids[j] = dr_db_row_int(row, 0);
            if (j == c->lo) {
                c->lo++;
            }
            return 0;
        }
    }
    return 0;
}

static int insert_chunk(struct dr_store *st, struct dr_db_tx *tx, size_t k,
                        const struct dr_qmsg *m, int64_t *ids)
{
    int64_t lease_until = st->owner ? dr_now_ms() + st->lease_ms : 0;
    struct dr_db_val p[CHUNK_MAX * INS_PARAMS];
    struct ins_chunk c = {.m = m, .ids = ids, .n = chunks[k]};

    for (size_t r = 0; r < c.n; r++) {
        struct dr_db_val *v = &p[r * INS_PARAMS];
        v[0] = DR_DB_TEXTV(m[r].message_id);
        v[1] = DR_DB_TEXTV(m[r].topic);
        v[2] = DR_DB_TEXTV(m[r].attrs_json ? m[r].attrs_json : "{}");
        v[3] = DR_DB_BLOBV(m[r].data, m[r].data_len);
        v[4] = DR_DB_TEXTV(m[r].ordering_key);
        v[5] = DR_DB_INTV(m[r].publish_time_ms);
        v[6] = DR_DB_INTV(m[r].attempts);
        v[7] = DR_DB_INTV(m[r].not_before_ms);
        v[8] = DR_DB_INTV(m[r].first_failure_ms);
        v[9] = DR_DB_TEXTV(m[r].last_error);
        v[10] = DR_DB_TEXTV(st->owner);
        v[11] = DR_DB_INTV(lease_until);
        ids[r] = 0; /* stays 0 when ON CONFLICT skipped the row */
    }
    return dr_db_tx_exec(tx, sql_insert[k], p, c.n * INS_PARAMS, take_ids, &c, NULL);
}

static int delete_chunk(struct dr_db_tx *tx, size_t k, const int64_t *ids)
{
    struct dr_db_val p[CHUNK_MAX];

    for (size_t r = 0; r < chunks[k]; r++) {
        p[r] = DR_DB_INTV(ids[r]);
    }
    return dr_db_tx_exec(tx, sql_delete[k], p, chunks[k], NULL, NULL, NULL);
}

int dr_store_apply(struct dr_store *st, struct dr_qbatch *b)
{
    struct dr_db_tx *tx = NULL;
    int64_t *ids = NULL; /* inserts then dead letters, copied out only after commit */
    int64_t *created = NULL;
    size_t nids;
    int err;

    if (!st || !b) {
        return DR_EINVAL;
    }
    err = check_batch(b);
    if (err) {
        return err;
    }
    nids = b->ninserts + b->ndead;
    if (nids + b->ndeletes + b->nupdates + b->ndedup == 0) {
        return DR_OK;
    }
    pthread_once(&sql_once, build_sql);
    ids = dr_xcalloc(nids, sizeof(*ids));
    created = dr_xcalloc(b->ndead, sizeof(*created));
    err = dr_db_begin(st->db, &tx);
    if (err) {
        goto out;
    }
    for (size_t i = 0, k; !err && i < b->ninserts; i += chunks[k]) {
        k = chunk_index(b->ninserts - i);
        err = insert_chunk(st, tx, k, &b->inserts[i], &ids[i]);
    }
    for (size_t i = 0; !err && i < b->nupdates; i++) {
        const struct dr_qupdate *u = &b->updates[i];
        struct dr_db_val p[5] = {DR_DB_INTV(u->attempts), DR_DB_INTV(u->not_before_ms),
                                 DR_DB_INTV(u->first_failure_ms), DR_DB_TEXTV(u->last_error),
                                 DR_DB_INTV(u->id)};
        /* a row already gone (acked by another batch) is not an error */
        err = dr_db_tx_exec(tx, sql_update, p, DR_ARRAY_LEN(p), NULL, NULL, NULL);
    }
    for (size_t i = 0, k; !err && i < b->ndeletes; i += chunks[k]) {
        k = chunk_index(b->ndeletes - i);
        err = delete_chunk(tx, k, &b->deletes[i]);
    }
    if (!err) {
        err = dr__dedup_mark_many(st, tx, b->dedup_keys, b->ndedup, dr_now_ms());
    }
    for (size_t i = 0; !err && i < b->ndead; i++) {
        err = dr__dlq_insert(st, tx, &b->dead[i], &ids[b->ninserts + i], &created[i]);
    }
    if (err) {
        dr_db_rollback(tx);
    } else {
        err = dr_db_commit(tx);
    }
    tx = NULL;
    if (err) {
        DR_WARN("store", "group commit failed",
                "inserts=%zu deletes=%zu updates=%zu dedup=%zu "
                "dead=%zu error=\"%s\"",
                b->ninserts, b->ndeletes, b->nupdates, b->ndedup, b->ndead, dr_strerror(err));
        goto out;
    }
    for (size_t i = 0; i < b->ninserts; i++) {
        b->inserts[i].id = ids[i];
    }
    for (size_t i = 0; i < b->ndead; i++) {
        b->dead[i].id = ids[b->ninserts + i];
        b->dead[i].created_ms = created[i];
    }
out:
    free(ids);
    free(created);
    return err;
}

struct qload {
    struct dr_qmsg *v;
    size_t n, cap;
};

static char *dup_col(const struct dr_db_row *row, int col)
{
    return dr_xstrdup(dr_db_row_text(row, col));
}

static int load_row(void *ctx, const struct dr_db_row *row)
{
    struct qload *q = ctx;
    struct dr_qmsg *m;
    const void *data;
    size_t len;

    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->v = dr_xrealloc(q->v, q->cap * sizeof(*q->v));
    }
    m = &q->v[q->n++];
    memset(m, 0, sizeof(*m));
    m->id = dr_db_row_int(row, 0);
    m->message_id = dup_col(row, 1);
    m->topic = dup_col(row, 2);
    m->attrs_json = dup_col(row, 3);
    data = dr_db_row_blob(row, 4, &len);
    /* one spare byte, NUL, so text payloads can be used as strings */
    m->data = dr_xmalloc(len + 1);
    if (len) {
        memcpy(m->data, data, len);
    }
    m->data[len] = '\0';
    m->data_len = len;
    m->ordering_key = dup_col(row, 5);
    m->publish_time_ms = dr_db_row_int(row, 6);
    m->attempts = (int)dr_db_row_int(row, 7);
    m->not_before_ms = dr_db_row_int(row, 8);
    m->first_failure_ms = dr_db_row_int(row, 9);
    m->last_error = dup_col(row, 10);
    return 0;
}

/* Without an owner: a plain read. With one: the rows are claimed in the same transaction, and
 * rows another live instance holds are skipped. */
static const char sql_claim_select[] =
    "SELECT " QCOLS " FROM queue WHERE id > $1 AND (owner IS NULL OR owner = $2 OR "
    "lease_until < $3) ORDER BY id LIMIT $4";
static const char sql_claim_update[] =
    "UPDATE queue SET owner = $1, lease_until = $2 WHERE id > $3 AND id <= $4 AND "
    "(owner IS NULL OR owner = $1 OR lease_until < $5)";
static const char sql_expired_select[] =
    "SELECT " QCOLS " FROM queue WHERE lease_until < $1 AND (owner IS NULL OR owner <> $2) "
    "ORDER BY id LIMIT $3";
static const char sql_claim_one[] = "UPDATE queue SET owner = $1, lease_until = $2 WHERE id = $3";

static int claim_load(struct dr_store *st, int expired, int64_t after_id, size_t limit,
                      struct qload *q)
{
    struct dr_db_tx *tx = NULL;
    int64_t now = dr_now_ms(), until = now + st->lease_ms;
    int64_t lim = limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
    char sql[1024];
    int pg = dr_db_engine(st->db) == DR_DB_POSTGRES;
    int err = dr_db_begin(st->db, &tx);

    if (err) {
        return err;
    }
    if (!expired) {
        struct dr_db_val p[4] = {DR_DB_INTV(after_id), DR_DB_TEXTV(st->owner), DR_DB_INTV(now),
                                 DR_DB_INTV(lim)};
        snprintf(sql, sizeof(sql), "%s%s", sql_claim_select, pg ? " FOR UPDATE SKIP LOCKED" : "");
        err = dr_db_tx_exec(tx, sql, p, 4, load_row, q, NULL);
        if (!err && q->n) {
            struct dr_db_val u[5] = {DR_DB_TEXTV(st->owner), DR_DB_INTV(until),
                                     DR_DB_INTV(after_id), DR_DB_INTV(q->v[q->n - 1].id),
                                     DR_DB_INTV(now)};
            err = dr_db_tx_exec(tx, sql_claim_update, u, 5, NULL, NULL, NULL);
        }
    } else {
        struct dr_db_val p[3] = {DR_DB_INTV(now), DR_DB_TEXTV(st->owner), DR_DB_INTV(lim)};
        snprintf(sql, sizeof(sql), "%s%s", sql_expired_select,
                 pg ? " FOR UPDATE SKIP LOCKED" : "");
        err = dr_db_tx_exec(tx, sql, p, 3, load_row, q, NULL);
        for (size_t i = 0; !err && i < q->n; i++) {
            struct dr_db_val u[3] = {DR_DB_TEXTV(st->owner), DR_DB_INTV(until),
                                     DR_DB_INTV(q->v[i].id)};
            err = dr_db_tx_exec(tx, sql_claim_one, u, 3, NULL, NULL, NULL);
        }
    }
    if (err) {
        dr_db_rollback(tx);
        return err;
    }
    return dr_db_commit(tx);
}

int dr_store_queue_load(struct dr_store *st, int64_t after_id, size_t limit, struct dr_qmsg **out,
                        size_t *n)
{
    struct qload q = {0};
    struct dr_db_val p[2] = {DR_DB_INTV(after_id),
                             DR_DB_INTV(limit > INT64_MAX ? INT64_MAX : (int64_t)limit)};
    int err;

    if (!out || !n) {
        return DR_EINVAL;
    }
    *out = NULL;
    *n = 0;
    if (!st) {
        return DR_EINVAL;
    }
    if (limit == 0) {
        return DR_OK;
    }
    if (st->owner) {
        err = claim_load(st, 0, after_id, limit, &q);
    } else {
        err = dr_db_exec(st->db, sql_load, p, DR_ARRAY_LEN(p), load_row, &q, NULL);
    }
    if (err) {
        dr_qmsgs_free(q.v, q.n);
        return err;
    }
    *out = q.v;
    *n = q.n;
    return DR_OK;
}

int dr_store_queue_set_owner(struct dr_store *st, const char *owner, int64_t lease_ms)
{
    if (!st || !owner || !*owner || lease_ms <= 0) {
        return DR_EINVAL;
    }
    free(st->owner);
    st->owner = dr_xstrdup(owner);
    st->lease_ms = lease_ms;
    return DR_OK;
}

int dr_store_queue_claim_expired(struct dr_store *st, size_t limit, struct dr_qmsg **out,
                                 size_t *n)
{
    struct qload q = {0};
    int err;

    if (!st || !out || !n || !st->owner) {
        return DR_EINVAL;
    }
    *out = NULL;
    *n = 0;
    err = claim_load(st, 1, 0, limit, &q);
    if (err) {
        dr_qmsgs_free(q.v, q.n);
        return err;
    }
    *out = q.v;
    *n = q.n;
    return DR_OK;
}

int dr_store_queue_renew(struct dr_store *st)
{
    struct dr_db_val p[2];

    if (!st || !st->owner) {
        return DR_EINVAL;
    }
    p[0] = DR_DB_INTV(dr_now_ms() + st->lease_ms);
    p[1] = DR_DB_TEXTV(st->owner);
    return dr_db_exec(st->db, "UPDATE queue SET lease_until = $1 WHERE owner = $2", p, 2, NULL,
                      NULL, NULL);
}

static int take_count(void *ctx, const struct dr_db_row *row)
{
    *(int64_t *)ctx = dr_db_row_int(row, 0);
    return 0;
}

int dr_store_queue_count(struct dr_store *st, int64_t *count)
{
    if (!st || !count) {
        return DR_EINVAL;
    }
    *count = 0;
    return dr_db_exec(st->db, "SELECT COUNT(*) FROM queue", NULL, 0, take_count, count, NULL);
}
