/*
 * The local durable queue and the router's group commit (dr_store_apply).
 *
 * Messages are stored in segments: the messages inserted together (a publish request, the emits
 * of one batch) are encoded into one body row of up to SEG_MAX messages, and a message's id is
 * its segment's id times SEG_MAX plus its index there. Only what changes per message is kept per
 * message, in small rows: queue_state (done, and retry bookkeeping once a message failed) and
 * queue_mid (message_ids that could repeat: emits and pushes, for ON CONFLICT). A segment whose
 * messages are all done is deleted with everything it owns.
 *
 * So a 1 KB message costs one append to a large body and one tiny state row, instead of an
 * insert and a delete in a table with two indexes: far fewer b-tree writes and WAL bytes, and
 * leases and claims work per segment.
 *
 * apply is the hot path: one transaction per batch and cached prepared statements, multi-row
 * where rows are many, so a batch costs one commit plus a few microseconds per message.
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

#define SEG_SHIFT     10
#define SEG_MAX       ((int64_t)1 << SEG_SHIFT) /* messages per segment */
#define SEG_MAX_BYTES (8u << 20)                /* a body grows past this only for one message */
#define SEG_OF(id)    ((id) >> SEG_SHIFT)
#define SEG_LO(seg)   ((seg) << SEG_SHIFT)

/* Done marks, and the repeatable message_ids they free, go in multi-row statements
 * (dr_db_rows_sql). */
static char *sql_done[DR_DB_NCHUNKS]; /* built once, kept for the life of the process */
static char *sql_mid_drop[DR_DB_NCHUNKS];
static char *sql_mid_claim[DR_DB_NCHUNKS]; /* RETURNING the message_ids that were free */
static char *sql_mid_set[DR_DB_NCHUNKS];   /* (message_id, id) pairs */
static pthread_once_t sql_once = PTHREAD_ONCE_INIT;

static void build_sql(void)
{
    for (size_t k = 0; k < DR_DB_NCHUNKS; k++) {
        sql_done[k] = dr_db_rows_sql("INSERT INTO queue_state (id, done) VALUES ", "(?, 1)",
                                     dr_db_chunks[k], " ON CONFLICT (id) DO UPDATE SET done = 1");
        sql_mid_drop[k] =
            dr_db_rows_sql("DELETE FROM queue_mid WHERE id IN (", "?", dr_db_chunks[k], ")");
        sql_mid_claim[k] = dr_db_rows_sql(
            "INSERT INTO queue_mid (message_id, id) VALUES ", "(?, 0)", dr_db_chunks[k],
            " ON CONFLICT (message_id) DO NOTHING RETURNING message_id");
        sql_mid_set[k] =
            dr_db_rows_sql("UPDATE queue_mid SET id = v.column2 FROM (VALUES ", "(?, ?)",
                           dr_db_chunks[k], ") AS v WHERE queue_mid.message_id = v.column1");
    }
}

static const char sql_seg_insert[] =
    "INSERT INTO queue_seg (n, nmid, owner, lease_until) VALUES ($1, $2, $3, $4) RETURNING id";
static const char sql_body_insert[] = "INSERT INTO queue_body (seg, body) VALUES ($1, $2)";
static const char sql_state_insert[] =
    "INSERT INTO queue_state (id, done, attempts, not_before_ms, first_failure_ms, last_error) "
    "VALUES ($1, 0, $2, $3, $4, $5)";
/* retry bookkeeping only for a message still queued and not done */
static const char sql_state_update[] =
    "INSERT INTO queue_state (id, done, attempts, not_before_ms, first_failure_ms, last_error) "
    "SELECT $1, 0, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM queue_seg WHERE id = $6 AND "
    "n > $7) ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, "
    "not_before_ms = excluded.not_before_ms, first_failure_ms = excluded.first_failure_ms, "
    "last_error = excluded.last_error WHERE queue_state.done = 0";
static const char sql_seg_get[] = "SELECT n, nmid FROM queue_seg WHERE id = $1";
static const char sql_seg_ndone[] =
    "SELECT COUNT(*) FROM queue_state WHERE id >= $1 AND id < $2 AND done = 1";
static const char sql_mid_drop_range[] = "DELETE FROM queue_mid WHERE id >= $1 AND id < $2";
static const char sql_state_drop_range[] = "DELETE FROM queue_state WHERE id >= $1 AND id < $2";
static const char sql_body_drop[] = "DELETE FROM queue_body WHERE seg = $1";
static const char sql_seg_drop[] = "DELETE FROM queue_seg WHERE id = $1";

/* ---------- segment bodies ---------- */

/* Per message, little-endian: u32 length + bytes for message_id, topic, attrs_json, ordering key
 * (0xffffffff = none), payload; then i64 publish time and one flags byte (1 = fresh id). */
#define NO_STR 0xffffffffu

static void put_u32(struct dr_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    dr_buf_append(b, x, 4);
}

static void put_bytes(struct dr_buf *b, const void *p, size_t n)
{
    put_u32(b, (uint32_t)n);
    if (n) {
        dr_buf_append(b, p, n);
    }
}

static void put_str(struct dr_buf *b, const char *s)
{
    if (!s) {
        put_u32(b, NO_STR);
        return;
    }
    put_bytes(b, s, strlen(s));
}

static void encode_msg(struct dr_buf *b, const struct dr_qmsg *m)
{
    uint64_t t = (uint64_t)m->publish_time_ms;
    unsigned char x[9];

    put_str(b, m->message_id);
    put_str(b, m->topic);
    put_str(b, m->attrs_json ? m->attrs_json : "{}");
    put_str(b, m->ordering_key);
    put_bytes(b, m->data, m->data_len);
    for (int i = 0; i < 8; i++) {
        x[i] = (unsigned char)(t >> (8 * i));
    }
    x[8] = m->fresh_id ? 1 : 0;
    dr_buf_append(b, x, 9);
}

static size_t encoded_size(const struct dr_qmsg *m)
{
    return 5 * 4 + 9 + strlen(m->message_id) + strlen(m->topic) +
           (m->attrs_json ? strlen(m->attrs_json) : 2) +
           (m->ordering_key ? strlen(m->ordering_key) : 0) + m->data_len;
}

struct reader {
    const unsigned char *p, *end;
    int bad;
};

static uint32_t get_u32(struct reader *r)
{
    if (r->end - r->p < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                 (uint32_t)r->p[3] << 24;
    r->p += 4;
    return v;
}

/* A NUL-terminated copy; NULL for "none" (or on error, with r->bad set). data: one spare NUL
 * byte, so text payloads can be used as strings. */
static char *get_str(struct reader *r, int may_be_null, size_t *len)
{
    uint32_t n = get_u32(r);
    char *s;

    if (r->bad || (n == NO_STR && may_be_null)) {
        return NULL;
    }
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    s = dr_xmalloc((size_t)n + 1);
    if (n) {
        memcpy(s, r->p, n);
    }
    s[n] = '\0';
    r->p += n;
    if (len) {
        *len = n;
    }
    return s;
}

/* Steps over one message without copying it. */
static int skip_msg(struct reader *r)
{
    for (int f = 0; f < 5 && !r->bad; f++) {
        uint32_t n = get_u32(r);
        if (n == NO_STR && f == 3) {
            continue; /* no ordering key */
        }
        if (r->bad || (size_t)(r->end - r->p) < n) {
            r->bad = 1;
            break;
        }
        r->p += n;
    }
    if (r->bad || r->end - r->p < 9) {
        r->bad = 1;
        return DR_EIO;
    }
    r->p += 9;
    return DR_OK;
}

static int decode_msg(struct reader *r, struct dr_qmsg *m)
{
    memset(m, 0, sizeof(*m));
    m->message_id = get_str(r, 0, NULL);
    m->topic = get_str(r, 0, NULL);
    m->attrs_json = get_str(r, 0, NULL);
    m->ordering_key = get_str(r, 1, NULL);
    m->data = (unsigned char *)get_str(r, 0, &m->data_len);
    if (!r->bad && r->end - r->p >= 9) {
        uint64_t t = 0;
        for (int i = 0; i < 8; i++) {
            t |= (uint64_t)r->p[i] << (8 * i);
        }
        m->publish_time_ms = (int64_t)t;
        m->fresh_id = r->p[8] & 1;
        r->p += 9;
    } else {
        r->bad = 1;
    }
    if (r->bad) {
        dr_qmsg_cleanup(m);
        return DR_EIO;
    }
    return DR_OK;
}

/* ---------- apply ---------- */

static int check_insert(const struct dr_qmsg *m, size_t i)
{
    if (!m->message_id || !*m->message_id || !m->topic || !*m->topic || (m->data_len && !m->data) ||
        m->attempts < 0 || m->data_len >= NO_STR) {
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
        (b->nupdates && !b->updates) || (b->ndedup && !b->dedup_keys) || (b->ndead && !b->dead) ||
        (b->ndlq_take && !b->dlq_take)) {
        DR_WARN("store", "bad batch: a count without its array",
                "inserts=%zu deletes=%zu updates=%zu dedup=%zu dead=%zu dlq_take=%zu", b->ninserts,
                b->ndeletes, b->nupdates, b->ndedup, b->ndead, b->ndlq_take);
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

static int take_int(void *ctx, const struct dr_db_row *row)
{
    *(int64_t *)ctx = dr_db_row_int(row, 0);
    return 0;
}

static int has_state(const struct dr_qmsg *m)
{
    return m->attempts || m->not_before_ms || m->first_failure_ms || m->last_error;
}

/* Stores msgs[0..n) (all kept) as one segment; ids[i] gets each message's id. */
static int insert_segment(struct dr_store *st, struct dr_db_tx *tx, const struct dr_qmsg *const *m,
                          size_t n, int64_t *const *ids)
{
    int64_t lease_until = st->owner ? dr_now_ms() + st->lease_ms : 0;
    int64_t seg = 0, nmid = 0;
    struct dr_buf body;
    size_t size = 0;
    int err;

    for (size_t i = 0; i < n; i++) {
        size += encoded_size(m[i]);
        nmid += !m[i]->fresh_id;
    }
    struct dr_db_val p[4] = {DR_DB_INTV(n), DR_DB_INTV(nmid), DR_DB_TEXTV(st->owner),
                             DR_DB_INTV(lease_until)};
    err = dr_db_tx_exec(tx, sql_seg_insert, p, 4, take_int, &seg, NULL);
    if (!err && seg <= 0) {
        err = DR_EIO;
    }
    if (err) {
        return err;
    }
    dr_buf_init(&body, size); /* exactly what the messages encode to: nothing can be cut */
    for (size_t i = 0; i < n; i++) {
        encode_msg(&body, m[i]);
    }
    if (body.len != size) {
        DR_ERROR("store", "queue segment encoding is inconsistent", "want=%zu got=%zu", size,
                 body.len);
        dr_buf_cleanup(&body);
        return DR_EIO;
    }
    struct dr_db_val bp[2] = {DR_DB_INTV(seg), DR_DB_BLOBV(body.data, body.len)};
    err = dr_db_tx_exec(tx, sql_body_insert, bp, 2, NULL, NULL, NULL);
    dr_buf_cleanup(&body);
    struct dr_db_val mp[2 * DR_DB_CHUNK_MAX];
    size_t nm = 0;
    for (size_t i = 0; !err && i < n; i++) {
        int64_t id = SEG_LO(seg) + (int64_t)i;
        *ids[i] = id;
        if (!m[i]->fresh_id) {
            mp[2 * nm] = DR_DB_TEXTV(m[i]->message_id);
            mp[2 * nm + 1] = DR_DB_INTV(id);
            nm++;
        }
        /* the claimed message_ids get their ids, in the largest statements that fit */
        while (!err && nm && (i + 1 == n || nm == DR_DB_CHUNK_MAX)) {
            size_t c = dr_db_chunk_index(nm), rows = dr_db_chunks[c];
            err =
                dr_db_tx_exec(tx, sql_mid_set[c], mp + 2 * (nm - rows), 2 * rows, NULL, NULL, NULL);
            nm -= rows;
        }
        if (!err && has_state(m[i])) {
            struct dr_db_val q[5] = {
                DR_DB_INTV(id), DR_DB_INTV(m[i]->attempts), DR_DB_INTV(m[i]->not_before_ms),
                DR_DB_INTV(m[i]->first_failure_ms), DR_DB_TEXTV(m[i]->last_error)};
            err = dr_db_tx_exec(tx, sql_state_insert, q, 5, NULL, NULL, NULL);
        }
    }
    return err;
}

/* Maps RETURNING message_id rows of a claim to the chunk's messages: a row goes to the first one
 * with that id not yet marked (a later repeat in the chunk was the one skipped). */
struct mid_claim {
    const struct dr_qmsg *msgs;
    const size_t *idx; /* the chunk's messages, as indexes into msgs */
    size_t n;
    char *free_mid;
};

static int take_free_mid(void *ctx, const struct dr_db_row *row)
{
    struct mid_claim *mc = ctx;
    const char *mid = dr_db_row_text(row, 0);

    for (size_t j = 0; mid && j < mc->n; j++) {
        size_t i = mc->idx[j];
        if (!mc->free_mid[i] && strcmp(mc->msgs[i].message_id, mid) == 0) {
            mc->free_mid[i] = 1;
            break;
        }
    }
    return 0;
}

/* Inserts msgs, skipping a message_id that is queued already (or earlier in msgs): its id stays
 * 0. Fresh ids cannot repeat, so only the others are checked. */
static int insert_msgs(struct dr_store *st, struct dr_db_tx *tx, const struct dr_qmsg *msgs,
                       size_t n, int64_t *ids)
{
    const struct dr_qmsg **keep = dr_xcalloc(n ? n : 1, sizeof(*keep));
    int64_t **slot = dr_xcalloc(n ? n : 1, sizeof(*slot));
    size_t nkeep = 0, start = 0, bytes = 0;
    int err = DR_OK;

    char *free_mid = dr_xcalloc(n ? n : 1, 1); /* repeatable ids that were not queued */
    size_t *nf = dr_xcalloc(n ? n : 1, sizeof(*nf));
    size_t nnf = 0;

    for (size_t i = 0; i < n; i++) {
        ids[i] = 0;
        if (!msgs[i].fresh_id) {
            nf[nnf++] = i;
        }
    }
    for (size_t a = 0, c; !err && a < nnf; a += dr_db_chunks[c]) {
        struct dr_db_val p[DR_DB_CHUNK_MAX];
        struct mid_claim mc = {.msgs = msgs, .idx = nf + a, .free_mid = free_mid};
        c = dr_db_chunk_index(nnf - a);
        mc.n = dr_db_chunks[c];
        for (size_t r = 0; r < mc.n; r++) {
            p[r] = DR_DB_TEXTV(msgs[nf[a + r]].message_id);
        }
        err = dr_db_tx_exec(tx, sql_mid_claim[c], p, mc.n, take_free_mid, &mc, NULL);
    }
    for (size_t i = 0; !err && i < n; i++) {
        if (msgs[i].fresh_id || free_mid[i]) {
            keep[nkeep] = &msgs[i];
            slot[nkeep++] = &ids[i];
        }
    }
    free(free_mid);
    free(nf);
    for (size_t i = 0; !err && i < nkeep; i++) {
        bytes += encoded_size(keep[i]);
        if (i + 1 == nkeep || (int64_t)(i + 1 - start) == SEG_MAX ||
            bytes + encoded_size(keep[i + 1]) > SEG_MAX_BYTES) {
            err = insert_segment(st, tx, &keep[start], i + 1 - start, &slot[start]);
            start = i + 1;
            bytes = 0;
        }
    }
    free(keep);
    free(slot);
    return err;
}

/* Deletes segment seg and everything it owns. */
static int drop_segment(struct dr_db_tx *tx, int64_t seg, int64_t nmid)
{
    struct dr_db_val r[2] = {DR_DB_INTV(SEG_LO(seg)), DR_DB_INTV(SEG_LO(seg + 1))};
    struct dr_db_val s[1] = {DR_DB_INTV(seg)};
    int err = dr_db_tx_exec(tx, sql_state_drop_range, r, 2, NULL, NULL, NULL);

    if (!err && nmid) {
        err = dr_db_tx_exec(tx, sql_mid_drop_range, r, 2, NULL, NULL, NULL);
    }
    if (!err) {
        err = dr_db_tx_exec(tx, sql_body_drop, s, 1, NULL, NULL, NULL);
    }
    if (!err) {
        err = dr_db_tx_exec(tx, sql_seg_drop, s, 1, NULL, NULL, NULL);
    }
    return err;
}

struct seg_info {
    int64_t n, nmid;
    int found;
};

static int take_seg(void *ctx, const struct dr_db_row *row)
{
    struct seg_info *s = ctx;
    s->n = dr_db_row_int(row, 0);
    s->nmid = dr_db_row_int(row, 1);
    s->found = 1;
    return 0;
}

/* Drops seg when every message of it is done. */
static int finish_if_done(struct dr_db_tx *tx, int64_t seg, const struct seg_info *si)
{
    struct dr_db_val r[2] = {DR_DB_INTV(SEG_LO(seg)), DR_DB_INTV(SEG_LO(seg + 1))};
    int64_t ndone = 0;
    int err = dr_db_tx_exec(tx, sql_seg_ndone, r, 2, take_int, &ndone, NULL);

    if (!err && ndone >= si->n) {
        err = drop_segment(tx, seg, si->nmid);
    }
    return err;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Marks ids done, one segment at a time; ids of segments or messages gone are ignored. */
static int mark_done(struct dr_db_tx *tx, const int64_t *in, size_t n)
{
    int64_t *ids = dr_xmalloc((n ? n : 1) * sizeof(*ids));
    size_t m = 0;
    int err = DR_OK;

    for (size_t i = 0; i < n; i++) {
        if (in[i] > 0) {
            ids[m++] = in[i];
        }
    }
    qsort(ids, m, sizeof(*ids), cmp_i64);
    for (size_t i = 0; !err && i < m;) {
        int64_t seg = SEG_OF(ids[i]);
        struct seg_info si = {0};
        size_t j = i, k = 0;
        struct dr_db_val p[1] = {DR_DB_INTV(seg)};

        err = dr_db_tx_exec(tx, sql_seg_get, p, 1, take_seg, &si, NULL);
        /* the segment's ids, repeats and ids past its end left out (ON CONFLICT DO UPDATE must
         * not meet the same row twice in one PostgreSQL statement) */
        for (; j < m && SEG_OF(ids[j]) == seg; j++) {
            if (si.found && ids[j] - SEG_LO(seg) < si.n && (k == 0 || ids[i + k - 1] != ids[j])) {
                ids[i + k++] = ids[j];
            }
        }
        for (size_t a = 0, c; !err && a < k; a += dr_db_chunks[c]) {
            struct dr_db_val v[DR_DB_CHUNK_MAX];
            c = dr_db_chunk_index(k - a);
            for (size_t r = 0; r < dr_db_chunks[c]; r++) {
                v[r] = DR_DB_INTV(ids[i + a + r]);
            }
            err = dr_db_tx_exec(tx, sql_done[c], v, dr_db_chunks[c], NULL, NULL, NULL);
            if (!err && si.nmid) {
                /* the message_id may be queued again once this one is done */
                err = dr_db_tx_exec(tx, sql_mid_drop[c], v, dr_db_chunks[c], NULL, NULL, NULL);
            }
        }
        if (!err && k) {
            err = finish_if_done(tx, seg, &si);
        }
        i = j;
    }
    free(ids);
    return err;
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
    if (nids + b->ndeletes + b->nupdates + b->ndedup + b->ndlq_take == 0) {
        return DR_OK;
    }
    pthread_once(&sql_once, build_sql);
    ids = dr_xcalloc(nids ? nids : 1, sizeof(*ids));
    created = dr_xcalloc(b->ndead ? b->ndead : 1, sizeof(*created));
    err = dr_db_begin(st->db, &tx);
    if (err) {
        goto out;
    }
    /* First: on PostgreSQL a concurrent taker of the same dead letter waits here for this
     * transaction and then finds nothing to delete. */
    for (size_t i = 0; !err && i < b->ndlq_take; i++) {
        struct dr_db_val p[1] = {DR_DB_INTV(b->dlq_take[i])};
        int64_t changes = 0;
        err =
            dr_db_tx_exec(tx, "DELETE FROM dead_letters WHERE id = $1", p, 1, NULL, NULL, &changes);
        if (!err && changes == 0) {
            err = DR_ENOTFOUND;
        }
    }
    if (!err && b->ninserts) {
        err = insert_msgs(st, tx, b->inserts, b->ninserts, ids);
    }
    /* a replay whose message id is queued already would take its dead letter and queue nothing:
     * the edit it carries would be lost */
    for (size_t i = 0; !err && b->ndlq_take && i < b->ninserts; i++) {
        if (ids[i] == 0) {
            err = DR_EEXIST;
        }
    }
    for (size_t i = 0; !err && i < b->nupdates; i++) {
        const struct dr_qupdate *u = &b->updates[i];
        struct dr_db_val p[7] = {DR_DB_INTV(u->id),
                                 DR_DB_INTV(u->attempts),
                                 DR_DB_INTV(u->not_before_ms),
                                 DR_DB_INTV(u->first_failure_ms),
                                 DR_DB_TEXTV(u->last_error),
                                 DR_DB_INTV(SEG_OF(u->id)),
                                 DR_DB_INTV(u->id - SEG_LO(SEG_OF(u->id)))};
        /* a message already gone (acked by another batch) is not an error */
        if (u->id > 0) {
            err = dr_db_tx_exec(tx, sql_state_update, p, DR_ARRAY_LEN(p), NULL, NULL, NULL);
        }
    }
    if (!err && b->ndeletes) {
        err = mark_done(tx, b->deletes, b->ndeletes);
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
    if (err == DR_ENOTFOUND || err == DR_EEXIST) {
        goto out; /* a dead letter to take was gone, or its message is queued: the caller's */
    }
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

/* ---------- load and claims ---------- */

struct qload {
    struct dr_qmsg *v;
    size_t n, cap;
};

struct state_row {
    int64_t id;
    int done, attempts;
    int64_t not_before_ms, first_failure_ms;
    char *last_error;
};

struct states {
    struct state_row *v;
    size_t n, cap;
};

static int take_state(void *ctx, const struct dr_db_row *row)
{
    struct states *s = ctx;

    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = dr_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = (struct state_row){
        .id = dr_db_row_int(row, 0),
        .done = dr_db_row_int(row, 1) != 0,
        .attempts = (int)dr_db_row_int(row, 2),
        .not_before_ms = dr_db_row_int(row, 3),
        .first_failure_ms = dr_db_row_int(row, 4),
        .last_error = dr_db_row_text(row, 5) ? dr_xstrdup(dr_db_row_text(row, 5)) : NULL,
    };
    return 0;
}

static void states_free(struct states *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].last_error);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static const char sql_state_range[] =
    "SELECT id, done, attempts, not_before_ms, first_failure_ms, last_error FROM queue_state "
    "WHERE id >= $1 AND id < $2 ORDER BY id";

/* Loading reads segments in rounds of up to LOAD_SEGS: their metadata, the state rows of all of
 * them in one range query, then their bodies in one query, each body expanded as it streams by
 * (the round stops as soon as enough messages were taken). */
#define LOAD_SEGS 64
#define LOAD_FULL 1 /* a row callback's "enough": not an error */

struct seg_meta {
    int64_t id, n, nmid;
    int claim;    /* not ours with a live lease: claim it */
    int all_done; /* nothing of it is left */
};

struct load {
    struct seg_meta seg[LOAD_SEGS];
    size_t nseg, cur; /* cur: the segment the next body belongs to */
    struct states ss;
    size_t k; /* first state row not behind the current message */
    const char *owner;
    int64_t now, after_id;
    size_t limit;
    struct qload *q;
};

static int take_meta(void *ctx, const struct dr_db_row *row)
{
    struct load *ld = ctx;
    struct seg_meta *m = &ld->seg[ld->nseg++];
    const char *owner = dr_db_row_text(row, 3);

    m->id = dr_db_row_int(row, 0);
    m->n = dr_db_row_int(row, 1);
    m->nmid = dr_db_row_int(row, 2);
    m->claim =
        !(owner && ld->owner && strcmp(owner, ld->owner) == 0 && dr_db_row_int(row, 4) >= ld->now);
    m->all_done = 0;
    return 0;
}

/* Appends the messages of a segment's body with id > after_id that are not done, up to limit in
 * all; marks the segment all_done when nothing of it is left. */
static int expand_body(void *ctx, const struct dr_db_row *row)
{
    struct load *ld = ctx;
    int64_t seg = dr_db_row_int(row, 0);
    size_t len;
    const unsigned char *body = dr_db_row_blob(row, 1, &len);
    struct reader rd = {.p = body, .end = body + len};
    struct seg_meta *m;
    size_t ndone = 0;

    while (ld->cur < ld->nseg && ld->seg[ld->cur].id < seg) {
        ld->cur++;
    }
    if (ld->cur == ld->nseg || ld->seg[ld->cur].id != seg) {
        return 0; /* a body of a segment this round did not select */
    }
    m = &ld->seg[ld->cur];
    while (ld->k < ld->ss.n && ld->ss.v[ld->k].id < SEG_LO(seg)) {
        ld->k++;
    }
    for (size_t j = ld->k; j < ld->ss.n && ld->ss.v[j].id < SEG_LO(seg + 1); j++) {
        ndone += ld->ss.v[j].done;
    }
    m->all_done = (int64_t)ndone >= m->n;
    for (int64_t i = 0; i < m->n && ld->q->n < ld->limit; i++) {
        int64_t id = SEG_LO(seg) + i;
        struct dr_qmsg msg;

        while (ld->k < ld->ss.n && ld->ss.v[ld->k].id < id) {
            ld->k++;
        }
        struct state_row *sr =
            ld->k < ld->ss.n && ld->ss.v[ld->k].id == id ? &ld->ss.v[ld->k] : NULL;
        int skip = id <= ld->after_id || (sr && sr->done);
        if (skip ? skip_msg(&rd) != DR_OK : decode_msg(&rd, &msg) != DR_OK) {
            /* the rest of it cannot be read; everything else still can */
            DR_ERROR("store", "queue segment is damaged: its remaining messages are skipped",
                     "segment=%lld index=%lld", (long long)seg, (long long)i);
            m->all_done = 0;
            break;
        }
        if (skip) {
            continue;
        }
        msg.id = id;
        if (sr) {
            msg.attempts = sr->attempts;
            msg.not_before_ms = sr->not_before_ms;
            msg.first_failure_ms = sr->first_failure_ms;
            msg.last_error = sr->last_error;
            sr->last_error = NULL;
        }
        if (ld->q->n == ld->q->cap) {
            ld->q->cap = ld->q->cap ? ld->q->cap * 2 : 16;
            ld->q->v = dr_xrealloc(ld->q->v, ld->q->cap * sizeof(*ld->q->v));
        }
        ld->q->v[ld->q->n++] = msg;
    }
    return ld->q->n < ld->limit ? 0 : LOAD_FULL;
}

/* Without an owner: a plain read. With one: segments are claimed in the same transaction, and
 * segments another live instance holds are skipped. expired: only segments whose lease passed
 * and that are not ours, any id. */
static const char sql_meta[] = "SELECT id, n, nmid, owner, lease_until FROM queue_seg "
                               "WHERE id >= $1 ORDER BY id LIMIT $2";
static const char sql_meta_claim[] =
    "SELECT id, n, nmid, owner, lease_until FROM queue_seg WHERE id >= $1 AND "
    "(owner IS NULL OR owner = $2 OR lease_until < $3) ORDER BY id LIMIT $4";
static const char sql_meta_expired[] =
    "SELECT id, n, nmid, owner, lease_until FROM queue_seg WHERE id >= $1 AND "
    "lease_until < $3 AND (owner IS NULL OR owner <> $2) ORDER BY id LIMIT $4";
static const char sql_bodies[] =
    "SELECT seg, body FROM queue_body WHERE seg >= $1 AND seg <= $2 ORDER BY seg";
static const char sql_seg_claim[] = "UPDATE queue_seg SET owner = $1, lease_until = $2 "
                                    "WHERE id = $3";

enum load_mode { LOAD_PLAIN, LOAD_CLAIM, LOAD_EXPIRED };

static int load_exec(struct dr_store *st, struct dr_db_tx *tx, const char *sql,
                     const struct dr_db_val *p, size_t np, dr_db_row_cb cb, void *ctx)
{
    return tx ? dr_db_tx_exec(tx, sql, p, np, cb, ctx, NULL)
              : dr_db_exec(st->db, sql, p, np, cb, ctx, NULL);
}

static int load_segments(struct dr_store *st, enum load_mode mode, int64_t after_id, size_t limit,
                         struct qload *q)
{
    struct dr_db_tx *tx = NULL;
    struct load *ld = dr_xcalloc(1, sizeof(*ld));
    int64_t cur = mode != LOAD_EXPIRED && after_id > 0 ? SEG_OF(after_id) : 0;
    int pg = dr_db_engine(st->db) == DR_DB_POSTGRES;
    char sql[512];
    int err = DR_OK;

    ld->owner = st->owner;
    ld->now = dr_now_ms();
    ld->after_id = mode == LOAD_EXPIRED ? 0 : after_id;
    ld->limit = limit;
    ld->q = q;
    if (mode != LOAD_PLAIN) {
        err = dr_db_begin(st->db, &tx);
    }
    while (!err && q->n < limit) {
        struct dr_db_val p[4] = {DR_DB_INTV(cur), DR_DB_TEXTV(st->owner), DR_DB_INTV(ld->now),
                                 DR_DB_INTV(LOAD_SEGS)};
        ld->nseg = ld->cur = ld->k = 0;
        if (mode == LOAD_PLAIN) {
            struct dr_db_val pp[2] = {p[0], p[3]};
            err = load_exec(st, tx, sql_meta, pp, 2, take_meta, ld);
        } else {
            snprintf(sql, sizeof(sql), "%s%s",
                     mode == LOAD_CLAIM ? sql_meta_claim : sql_meta_expired,
                     pg ? " FOR UPDATE SKIP LOCKED" : "");
            err = load_exec(st, tx, sql, p, 4, take_meta, ld);
        }
        if (err || ld->nseg == 0) {
            break;
        }
        int64_t first = ld->seg[0].id, last = ld->seg[ld->nseg - 1].id;
        for (size_t i = 0; !err && mode != LOAD_PLAIN && i < ld->nseg; i++) {
            if (ld->seg[i].claim) {
                struct dr_db_val u[3] = {DR_DB_TEXTV(st->owner), DR_DB_INTV(ld->now + st->lease_ms),
                                         DR_DB_INTV(ld->seg[i].id)};
                err = dr_db_tx_exec(tx, sql_seg_claim, u, 3, NULL, NULL, NULL);
            }
        }
        struct dr_db_val r[2] = {DR_DB_INTV(SEG_LO(first)), DR_DB_INTV(SEG_LO(last + 1))};
        if (!err) {
            err = load_exec(st, tx, sql_state_range, r, 2, take_state, &ld->ss);
        }
        struct dr_db_val bp[2] = {DR_DB_INTV(first), DR_DB_INTV(last)};
        if (!err) {
            err = load_exec(st, tx, sql_bodies, bp, 2, expand_body, ld);
            err = err == LOAD_FULL ? DR_OK : err;
        }
        for (size_t i = 0; !err && tx && i < ld->nseg; i++) {
            if (ld->seg[i].all_done) {
                /* left behind when two instances finished its last messages at once */
                err = drop_segment(tx, ld->seg[i].id, ld->seg[i].nmid);
            }
        }
        states_free(&ld->ss);
        cur = last + 1;
    }
    states_free(&ld->ss);
    free(ld);
    if (tx) {
        if (err) {
            dr_db_rollback(tx);
        } else {
            err = dr_db_commit(tx);
        }
    }
    return err;
}

static int load_common(struct dr_store *st, enum load_mode mode, int64_t after_id, size_t limit,
                       struct dr_qmsg **out, size_t *n)
{
    struct qload q = {0};
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
    err = load_segments(st, mode, after_id, limit, &q);
    if (err) {
        dr_qmsgs_free(q.v, q.n);
        return err;
    }
    *out = q.v;
    *n = q.n;
    return DR_OK;
}

int dr_store_queue_load(struct dr_store *st, int64_t after_id, size_t limit, struct dr_qmsg **out,
                        size_t *n)
{
    return load_common(st, st && st->owner ? LOAD_CLAIM : LOAD_PLAIN, after_id, limit, out, n);
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

int dr_store_queue_claim_expired(struct dr_store *st, size_t limit, struct dr_qmsg **out, size_t *n)
{
    if (!st || !out || !n || !st->owner) {
        return DR_EINVAL;
    }
    return load_common(st, LOAD_EXPIRED, 0, limit, out, n);
}

/*
 * Sets lease_until on every segment owner holds. On PostgreSQL the rows are locked in id order
 * first: a plain UPDATE locks them in the order it finds them (heap order, which an earlier
 * update of a row changes), and a transaction of this instance's that finishes segments locks
 * them in id order, so the two could each hold a row the other waits for (deadlock detected).
 */
static int set_lease(struct dr_store *st, int64_t until, int64_t *changes)
{
    struct dr_db_val p[2] = {DR_DB_INTV(until), DR_DB_TEXTV(st->owner)};
    const char *sql = dr_db_engine(st->db) == DR_DB_POSTGRES
                          ? "UPDATE queue_seg SET lease_until = $1 WHERE id IN (SELECT id FROM "
                            "queue_seg WHERE owner = $2 ORDER BY id FOR UPDATE)"
                          : "UPDATE queue_seg SET lease_until = $1 WHERE owner = $2";

    return dr_db_exec(st->db, sql, p, 2, NULL, NULL, changes);
}

int dr_store_queue_renew(struct dr_store *st)
{
    if (!st || !st->owner) {
        return DR_EINVAL;
    }
    return set_lease(st, dr_now_ms() + st->lease_ms, NULL);
}

int dr_store_queue_release(struct dr_store *st, int64_t *segments)
{
    *segments = 0;
    if (!st || !st->owner) {
        return DR_EINVAL;
    }
    return set_lease(st, 0, segments);
}

/* an attempt more for a message still queued and not done (its first failure: now, unless it
 * has one) */
static const char sql_state_crash[] =
    "INSERT INTO queue_state (id, done, attempts, not_before_ms, first_failure_ms, last_error) "
    "SELECT $1, 0, 1, 0, $2, $3 WHERE EXISTS (SELECT 1 FROM queue_seg WHERE id = $4 AND n > $5) "
    "ON CONFLICT (id) DO UPDATE SET attempts = queue_state.attempts + 1, "
    "first_failure_ms = CASE WHEN queue_state.first_failure_ms = 0 THEN excluded.first_failure_ms "
    "ELSE queue_state.first_failure_ms END, last_error = excluded.last_error "
    "WHERE queue_state.done = 0";

int dr_store_queue_count_crash(struct dr_store *st, const int64_t *ids, size_t n, const char *error,
                               size_t *counted)
{
    struct dr_db_tx *tx = NULL;
    size_t c = 0;
    int err;

    if (counted) {
        *counted = 0;
    }
    if (!st || (n && !ids) || !error) {
        return DR_EINVAL;
    }
    err = dr_db_begin(st->db, &tx);
    for (size_t i = 0; !err && i < n; i++) {
        int64_t changes = 0;
        if (ids[i] <= 0) {
            continue;
        }
        struct dr_db_val p[5] = {DR_DB_INTV(ids[i]), DR_DB_INTV(dr_now_ms()), DR_DB_TEXTV(error),
                                 DR_DB_INTV(SEG_OF(ids[i])),
                                 DR_DB_INTV(ids[i] - SEG_LO(SEG_OF(ids[i])))};
        err = dr_db_tx_exec(tx, sql_state_crash, p, DR_ARRAY_LEN(p), NULL, NULL, &changes);
        c += changes > 0;
    }
    if (tx && err) {
        dr_db_rollback(tx);
    } else if (tx) {
        err = dr_db_commit(tx);
    }
    if (!err && counted) {
        *counted = c;
    }
    return err;
}

int dr_store_queue_count(struct dr_store *st, int64_t *count)
{
    if (!st || !count) {
        return DR_EINVAL;
    }
    *count = 0;
    return dr_db_exec(st->db,
                      "SELECT (SELECT COALESCE(SUM(n), 0) FROM queue_seg) - "
                      "(SELECT COUNT(*) FROM queue_state WHERE done = 1)",
                      NULL, 0, take_int, count, NULL);
}

/* ---------- the one-row-per-message table of earlier versions ---------- */

static int take_legacy(void *ctx, const struct dr_db_row *row)
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
    m->message_id = dr_xstrdup(dr_db_row_text(row, 1));
    m->topic = dr_xstrdup(dr_db_row_text(row, 2));
    m->attrs_json = dr_xstrdup(dr_db_row_text(row, 3));
    data = dr_db_row_blob(row, 4, &len);
    m->data = dr_xmalloc(len + 1);
    if (len) {
        memcpy(m->data, data, len);
    }
    m->data[len] = '\0';
    m->data_len = len;
    m->ordering_key = dr_db_row_text(row, 5) ? dr_xstrdup(dr_db_row_text(row, 5)) : NULL;
    m->publish_time_ms = dr_db_row_int(row, 6);
    m->attempts = (int)dr_db_row_int(row, 7);
    m->not_before_ms = dr_db_row_int(row, 8);
    m->first_failure_ms = dr_db_row_int(row, 9);
    m->last_error = dr_db_row_text(row, 10) ? dr_xstrdup(dr_db_row_text(row, 10)) : NULL;
    return 0;
}

int dr__queue_convert_legacy(struct dr_store *st)
{
    for (;;) {
        struct qload q = {0};
        struct dr_db_tx *tx = NULL;
        struct dr_db_val p[1] = {DR_DB_INTV(1000)};
        int err = dr_db_begin(st->db, &tx);
        int64_t *ids = NULL;

        if (err) {
            return err;
        }
        err = dr_db_tx_exec(tx,
                            "SELECT id, message_id, topic, attrs_json, data, ordering_key, "
                            "publish_time_ms, attempts, not_before_ms, first_failure_ms, "
                            "last_error FROM queue ORDER BY id LIMIT $1",
                            p, 1, take_legacy, &q, NULL);
        if (!err && q.n) {
            struct dr_db_val d[1] = {DR_DB_INTV(q.v[q.n - 1].id)};
            ids = dr_xcalloc(q.n, sizeof(*ids));
            err = dr_db_tx_exec(tx, "DELETE FROM queue WHERE id <= $1", d, 1, NULL, NULL, NULL);
            if (!err) {
                err = insert_msgs(st, tx, q.v, q.n, ids);
            }
        }
        if (err) {
            dr_db_rollback(tx);
        } else {
            err = dr_db_commit(tx);
        }
        size_t n = q.n;
        if (!err && n) {
            DR_INFO("store", "moved queued messages into segments", "count=%zu", n);
        }
        free(ids);
        dr_qmsgs_free(q.v, q.n);
        if (err || n == 0) {
            return err;
        }
    }
}
