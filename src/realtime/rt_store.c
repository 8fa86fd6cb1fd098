/*
 * The real-time module's tables (migrations 100+) and queries: notifications with their
 * store-wide seq, per-user read state, the inbox, and the one permission rule for context rooms.
 *
 * Read state is per user: rt_reads holds single reads, rt_read_marks a "read everything up to
 * seq" watermark per user (mark-all writes one row however long the inbox is).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

static const char v100_sqlite[] =
    "CREATE TABLE rt_notifications ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " notification_id TEXT NOT NULL UNIQUE,"
    " user_id TEXT,"
    " org_id TEXT,"
    " room TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " body_json TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX rt_notifications_room ON rt_notifications (room, seq);"
    "CREATE INDEX rt_notifications_user ON rt_notifications (user_id, seq);"
    "CREATE INDEX rt_notifications_created ON rt_notifications (created_ms);"
    "CREATE TABLE rt_reads (user_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    " read_ms INTEGER NOT NULL, PRIMARY KEY (user_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE rt_read_marks (user_id TEXT PRIMARY KEY, up_to_seq INTEGER NOT NULL,"
    " read_ms INTEGER NOT NULL) WITHOUT ROWID;";

static const char v100_postgres[] =
    "CREATE TABLE rt_notifications ("
    " seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " notification_id TEXT NOT NULL UNIQUE,"
    " user_id TEXT,"
    " org_id TEXT,"
    " room TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " body_json TEXT NOT NULL,"
    " created_ms BIGINT NOT NULL);"
    "CREATE INDEX rt_notifications_room ON rt_notifications (room, seq);"
    "CREATE INDEX rt_notifications_user ON rt_notifications (user_id, seq);"
    "CREATE INDEX rt_notifications_created ON rt_notifications (created_ms);"
    "CREATE TABLE rt_reads (user_id TEXT NOT NULL, seq BIGINT NOT NULL,"
    " read_ms BIGINT NOT NULL, PRIMARY KEY (user_id, seq));"
    "CREATE TABLE rt_read_marks (user_id TEXT PRIMARY KEY, up_to_seq BIGINT NOT NULL,"
    " read_ms BIGINT NOT NULL);";

/* v101: no query reads notifications by creation time; the index only cost a b-tree write per
 * notification. */
static const char v101[] = "DROP INDEX IF EXISTS rt_notifications_created;";

/*
 * v102 (SQLite): the index by (room, seq) cost the store more than any other part of a row.
 * Rows come in seq order, each room's at its own place in that index, so under traffic to many
 * rooms every insert went down the b-tree to a different leaf and split leaves all over it, and
 * every commit wrote a leaf per room to the WAL: with 100 rooms, a third of the store thread's
 * time per notification and 40 % of the bytes written. Its two readers get an index each that
 * fits them, and each row is in one of the two:
 * - rows of user: and org: rooms, which the inbox reads over all of a user's history, are in
 *   rt_notifications_inbox by (room, seq), as before;
 * - rows of the other rooms (meeting:, shipment:), which only a catch-up reads (seq > since:
 *   mostly a client back after a short break), are in rt_notifications_bucket by (seq / 4096,
 *   room): the rows of each range of 4,096 seqs are together, by room, so new rows go to the
 *   last few leaves; dr__rt_store_since seeks each (range, room) from since's range to the
 *   newest.
 * Both conditions are comparisons: SQLite takes an index condition that calls a function (GLOB,
 * LIKE) for one that may fail, and then keeps a statement journal for every insert, a copy of
 * each page it changes, which cost more than the index. A query repeats the condition of the
 * index it reads (OTHER_ROOM). PostgreSQL's b-tree keeps up: it keeps the index by room.
 * (v103 replaces rt_notifications_inbox with rt_inbox_batches.)
 */
static const char v102_sqlite[] =
    "CREATE INDEX rt_notifications_bucket ON rt_notifications (seq / 4096, room)"
    " WHERE room < 'org:' OR room >= 'org;' AND room < 'user:' OR room >= 'user;';"
    "CREATE INDEX rt_notifications_inbox ON rt_notifications (room, seq)"
    " WHERE room >= 'user:' AND room < 'user;' OR room >= 'org:' AND room < 'org;';"
    "DROP INDEX rt_notifications_room;";
static const char v102_postgres[] = "SELECT 1;";

/*
 * v103 (SQLite): rt_notifications_inbox still cost a leaf per room and a split in the middle of
 * the b-tree for every notification of a user: or org: room (with 100 rooms, a third more time
 * per notification than a meeting: room). rt_inbox_batches replaces it: one row per (room,
 * transaction that stored some of its notifications), holding their seqs as a JSON array, so a
 * batch of 2,048 notifications over 100 rooms inserts 100 short rows instead of 2,048 index
 * entries. A room's rows never overlap in seq (each transaction's seqs are above every seq
 * stored before it), so its rows by last_seq are its seqs in order (last_seq stays the bound of
 * the row's range when that seq is deleted). A trigger takes a deleted notification's seq out of
 * its row, and deletes the row once it holds none, as an index's entry went with its row: every
 * seq there is a stored notification's, so the unread count and read-all need not look each one
 * up, and a store emptied and numbered from 1 again starts without any. The trigger rewrites
 * a row only when its text holds the seq's digits (a scan, not a parse; a longer number that
 * contains them only costs a rewrite that changes nothing), so a purge that took the seqs out
 * of the rows first (purge_inbox_lite) costs no rewrite per row.
 * Existing rows are grouped by (room, seq / 4096).
 */
static const char v103_sqlite[] =
    "CREATE TABLE rt_inbox_batches (room TEXT NOT NULL, last_seq INTEGER NOT NULL,"
    " seqs TEXT NOT NULL, PRIMARY KEY (room, last_seq)) WITHOUT ROWID;"
    "INSERT INTO rt_inbox_batches (room, last_seq, seqs)"
    " SELECT room, MAX(seq), json_group_array(seq) FROM (SELECT n.room, n.seq FROM"
    " rt_notifications n WHERE n.room >= 'user:' AND n.room < 'user;' OR n.room >= 'org:' AND"
    " n.room < 'org;' ORDER BY n.room, n.seq) GROUP BY room, seq / 4096;"
    "DROP INDEX rt_notifications_inbox;"
    "CREATE TRIGGER rt_inbox_batches_deleted AFTER DELETE ON rt_notifications"
    " WHEN OLD.room >= 'user:' AND OLD.room < 'user;' OR OLD.room >= 'org:' AND OLD.room < 'org;'"
    " BEGIN"
    " UPDATE rt_inbox_batches SET seqs = (SELECT json_group_array(j.value) FROM json_each(seqs) j"
    " WHERE j.value <> OLD.seq) WHERE room = OLD.room AND last_seq = (SELECT MIN(b.last_seq)"
    " FROM rt_inbox_batches b WHERE b.room = OLD.room AND b.last_seq >= OLD.seq)"
    " AND instr(seqs, OLD.seq) > 0;"
    " DELETE FROM rt_inbox_batches WHERE room = OLD.room AND last_seq = (SELECT MIN(b.last_seq)"
    " FROM rt_inbox_batches b WHERE b.room = OLD.room AND b.last_seq >= OLD.seq) AND seqs = '[]';"
    " END;";
static const char v103_postgres[] = "SELECT 1;";

/* the seqs of a range of rt_notifications_bucket (its expression, in v102 and in queries) */
#define SEQ_BUCKET   4096
#define SEQ_BUCKET_S "4096"
/* the other rooms: the WHERE of rt_notifications_bucket */
#define OTHER_ROOM "(n.room < 'org:' OR n.room >= 'org;' AND n.room < 'user:' OR n.room >= 'user;')"

static const struct dr_db_migration migrations[] = {
    {100, "realtime notifications and read state", v100_sqlite, v100_postgres},
    {101, "no index on rt_notifications.created_ms", v101, v101},
    {102, "rt_notifications by seq range and room, inbox rooms by room", v102_sqlite,
     v102_postgres},
    {103, "seqs of inbox rooms by room and batch, not an index by room", v103_sqlite,
     v103_postgres},
};

int dr__rt_migrate(struct dr_db *db)
{
    return dr_db_migrate(db, migrations, DR_ARRAY_LEN(migrations));
}

static int get_int(void *ctx, const struct dr_db_row *row)
{
    *(int64_t *)ctx = dr_db_row_int(row, 0);
    return 0;
}

static int found_row(void *ctx, const struct dr_db_row *row)
{
    *(int *)ctx = 1;
    return 0;
}

/* 1 for a room whose notifications are in the inbox (user:, org:) */
static int inbox_room(const char *room)
{
    return strncmp(room, "user:", 5) == 0 || strncmp(room, "org:", 4) == 0;
}

/* rt_inbox_batches rows, built once like the batch inserts (build_put_sql) */
#define INBOX_PARAMS 3
static char *inbox_rows_sql[DR_DB_NCHUNKS];
static pthread_once_t put_once = PTHREAD_ONCE_INIT;
static void build_put_sql(void);

/* Appends seq to the JSON array of seqs b holds ("[" first when b is empty; "]" is the caller's).
 * dr_json_append_i64(): printf cost as much as the insert. */
static int append_seq(struct dr_buf *b, int64_t seq)
{
    int err = dr_buf_appendc(b, b->len ? ',' : '[');

    return err ? err : dr_json_append_i64(b, seq);
}

/* One room's seqs of a transaction, in the order given (increasing). */
struct inbox_group {
    const char *room;
    int64_t last;
    struct dr_buf seqs; /* "[s1,s2,...]" */
};

/*
 * SQLite: the seqs of v's notifications of user: and org: rooms that this transaction stored
 * (dup[i] 0, seq[i] given in increasing order), one rt_inbox_batches row per room, in tx. Rooms
 * are grouped with a hash of their names.
 */
static int put_inbox_lite(struct dr_db_tx *tx, struct dr_notification *const *v, size_t n,
                          const int *dup, const int64_t *seq)
{
    struct dr_db_val p[DR_DB_CHUNK_MAX * INBOX_PARAMS];
    struct inbox_group *g = dr_xcalloc(n, sizeof(*g));
    uint32_t *slots; /* open addressing: index + 1 of a room's group, 0 empty */
    size_t ng = 0, size = 4, mask;
    int err = DR_OK;

    pthread_once(&put_once, build_put_sql);
    while (size < 2 * n) {
        size *= 2;
    }
    mask = size - 1;
    slots = dr_xcalloc(size, sizeof(*slots));
    for (size_t i = 0; i < n && !err; i++) {
        const char *room = v[i]->room;
        size_t h;
        if (dup[i] || !inbox_room(room)) {
            continue;
        }
        for (h = dr_hash_str(room) & mask; slots[h]; h = (h + 1) & mask) {
            if (strcmp(g[slots[h] - 1].room, room) == 0) {
                break;
            }
        }
        if (!slots[h]) {
            slots[h] = (uint32_t)++ng;
            g[ng - 1].room = room;
            dr_buf_init(&g[ng - 1].seqs, n * 21 + 2); /* n seqs of 20 digits at most */
        }
        struct inbox_group *x = &g[slots[h] - 1];
        x->last = seq[i];
        err = append_seq(&x->seqs, seq[i]);
    }
    for (size_t i = 0; i < ng && !err; i++) {
        err = dr_buf_appendc(&g[i].seqs, ']');
    }
    for (size_t i = 0, k; i < ng && !err; i += dr_db_chunks[k]) {
        k = dr_db_chunk_index(ng - i);
        for (size_t r = 0; r < dr_db_chunks[k]; r++) {
            struct inbox_group *x = &g[i + r];
            p[r * INBOX_PARAMS] = DR_DB_TEXTV(x->room);
            p[r * INBOX_PARAMS + 1] = DR_DB_INTV(x->last);
            p[r * INBOX_PARAMS + 2] = DR_DB_TEXTV(x->seqs.data);
        }
        err = dr_db_tx_exec(tx, inbox_rows_sql[k], p, dr_db_chunks[k] * INBOX_PARAMS, NULL, NULL,
                            NULL);
    }
    for (size_t i = 0; i < ng; i++) {
        dr_buf_cleanup(&g[i].seqs);
    }
    free(slots);
    free(g);
    return err;
}

static const char put_sql[] =
    "INSERT INTO rt_notifications (notification_id, user_id, org_id, room, type, body_json,"
    " created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (notification_id) DO NOTHING RETURNING seq";
static const char seq_sql[] = "SELECT seq FROM rt_notifications WHERE notification_id = $1";

/* pg_advisory_xact_lock key of the transactions that store notifications ("drrtseq") */
#define SEQ_LOCK_KEY 0x64727274736571LL

/*
 * Begins a transaction that stores notifications. Readers go by seq: a client resumes with
 * seq > since, the Redis bus's recovery lists seq > where it lost the link, read-all marks up to
 * the newest seq. A reader that saw a seq committed while a lower one was still to commit would
 * move past that one for good. One instance's store thread commits in seq order, but instances
 * on one PostgreSQL draw from one sequence and commit in any order. So on PostgreSQL the
 * transaction takes an advisory lock before it draws a seq: these transactions run one at a
 * time across instances, each draws seqs above every committed one (an identity sequence caches
 * none per session), and the lock is released only once the commit is visible. The cost: one
 * statement per batch (a single store gets a transaction of its own), and instances storing at
 * the same moment wait for each other's commit. Chosen over a table lock, which would also
 * block VACUUM, and over a reader-side watermark (stop below the oldest seq not committed),
 * which needs the writers' transaction ids stored with the rows. SQLite needs nothing: its one
 * writer draws and commits a transaction's seqs before the next transaction starts.
 */
static int begin_put(struct dr_db *db, struct dr_db_tx **tx)
{
    struct dr_db_val key = DR_DB_INTV(SEQ_LOCK_KEY);
    int err = dr_db_begin(db, tx);

    if (err || dr_db_engine(db) != DR_DB_POSTGRES) {
        return err;
    }
    err = dr_db_tx_exec(*tx, "SELECT pg_advisory_xact_lock($1)", &key, 1, NULL, NULL, NULL);
    if (err) {
        dr_db_rollback(*tx);
        *tx = NULL;
    }
    return err;
}

/* One store, in tx when tx is non-NULL, else on its own. *seq gets n's seq. */
static int put_one(struct dr_db *db, struct dr_db_tx *tx, const struct dr_notification *n, int *dup,
                   int64_t *seq)
{
    struct dr_db_val p[7] = {
        DR_DB_TEXTV(n->id),      DR_DB_TEXTV(n->user_id), DR_DB_TEXTV(n->org_id),
        DR_DB_TEXTV(n->room),    DR_DB_TEXTV(n->type),    DR_DB_TEXTV(n->body),
        DR_DB_INTV(dr_now_ms()),
    };
    int err;

    *dup = 0;
    *seq = 0;
    err = tx ? dr_db_tx_exec(tx, put_sql, p, 7, get_int, seq, NULL)
             : dr_db_exec(db, put_sql, p, 7, get_int, seq, NULL);
    if (!err && *seq == 0) {
        *dup = 1;
        err = tx ? dr_db_tx_exec(tx, seq_sql, p, 1, get_int, seq, NULL)
                 : dr_db_exec(db, seq_sql, p, 1, get_int, seq, NULL);
        if (!err && *seq == 0) {
            err = DR_EIO; /* deleted in between (retention): let the caller retry */
        }
    }
    return err;
}

int dr__rt_store_put(struct dr_db *db, struct dr_notification *n, int *dup)
{
    struct dr_db_tx *tx = NULL;
    int64_t seq = 0;
    int lite_inbox = dr_db_engine(db) == DR_DB_SQLITE && inbox_room(n->room);
    int err;

    if (dr_db_engine(db) == DR_DB_POSTGRES || lite_inbox) {
        /* in a transaction of its own, for the lock (begin_put) or with its rt_inbox_batches
         * row */
        err = begin_put(db, &tx);
        if (err) {
            return err;
        }
    }
    err = put_one(db, tx, n, dup, &seq);
    if (!err && lite_inbox && !*dup) {
        err = put_inbox_lite(tx, &n, 1, dup, &seq);
    }
    if (tx && err) {
        dr_db_rollback(tx);
    } else if (tx) {
        err = dr_db_commit(tx);
    }
    if (!err) {
        dr__notification_set_seq(n, seq);
    }
    return err;
}

/* Batches go in multi-row statements (dr_db_rows_sql): one statement per notification costs
 * more than the insert itself. */
#define PUT_PARAMS 7
#define LITE_PARAMS 8

/* built once, kept for the life of the process */
static char *put_rows_sql[DR_DB_NCHUNKS];  /* PostgreSQL */
static char *lite_rows_sql[DR_DB_NCHUNKS]; /* SQLite: seqs given */
static char *lite_ids_sql[DR_DB_NCHUNKS];  /* SQLite: which of these ids are stored */

static void build_put_sql(void)
{
    for (size_t k = 0; k < DR_DB_NCHUNKS; k++) {
        put_rows_sql[k] = dr_db_rows_sql("INSERT INTO rt_notifications (notification_id, user_id, "
                                         "org_id, room, type, body_json, created_ms) VALUES ",
                                         "(?, ?, ?, ?, ?, ?, ?)", dr_db_chunks[k],
                                         " ON CONFLICT (notification_id) DO NOTHING RETURNING "
                                         "seq, notification_id");
        lite_rows_sql[k] = dr_db_rows_sql("INSERT OR FAIL INTO rt_notifications (seq, "
                                          "notification_id, user_id, org_id, room, type, "
                                          "body_json, created_ms) VALUES ",
                                          "(?, ?, ?, ?, ?, ?, ?, ?)", dr_db_chunks[k],
                                          " ON CONFLICT (notification_id) DO NOTHING");
        lite_ids_sql[k] = dr_db_rows_sql(
            "SELECT seq, notification_id FROM rt_notifications WHERE notification_id IN (", "?",
            dr_db_chunks[k], ")");
        inbox_rows_sql[k] =
            dr_db_rows_sql("INSERT OR FAIL INTO rt_inbox_batches (room, last_seq, seqs) VALUES ",
                           "(?, ?, ?)", dr_db_chunks[k], "");
    }
}

/* Maps RETURNING (seq, notification_id) rows to the chunk's notifications: a row goes to the
 * first one with that id still without a seq (a later repeat in the chunk was the one skipped).
 * Rows come back in VALUES order, which makes the search O(1). */
struct put_chunk {
    struct dr_notification **v;
    int64_t *seq;
    size_t n, lo;
};

static int take_seqs(void *ctx, const struct dr_db_row *row)
{
    struct put_chunk *c = ctx;
    const char *id = dr_db_row_text(row, 1);

    for (size_t j = c->lo; id && j < c->n; j++) {
        if (c->seq[j] == 0 && strcmp(c->v[j]->id, id) == 0) {
            c->seq[j] = dr_db_row_int(row, 0);
            if (j == c->lo) {
                c->lo++;
            }
            break;
        }
    }
    return 0;
}

/* PostgreSQL: the identity column draws the seqs, RETURNING tells them and which rows were
 * new. */
static int put_many_pg(struct dr_db_tx *tx, struct dr_notification **v, size_t n, int *dup)
{
    struct dr_db_val p[DR_DB_CHUNK_MAX * PUT_PARAMS];
    int64_t seq[DR_DB_CHUNK_MAX];
    int64_t now = dr_now_ms();
    int err = DR_OK;

    for (size_t i = 0, k; i < n && !err; i += dr_db_chunks[k]) {
        k = dr_db_chunk_index(n - i);
        struct put_chunk c = {.v = &v[i], .seq = seq, .n = dr_db_chunks[k]};
        for (size_t r = 0; r < c.n; r++) {
            struct dr_notification *x = v[i + r];
            struct dr_db_val *q = &p[r * PUT_PARAMS];
            q[0] = DR_DB_TEXTV(x->id);
            q[1] = DR_DB_TEXTV(x->user_id);
            q[2] = DR_DB_TEXTV(x->org_id);
            q[3] = DR_DB_TEXTV(x->room);
            q[4] = DR_DB_TEXTV(x->type);
            q[5] = DR_DB_TEXTV(x->body);
            q[6] = DR_DB_INTV(now);
            seq[r] = 0;
        }
        err = dr_db_tx_exec(tx, put_rows_sql[k], p, c.n * PUT_PARAMS, take_seqs, &c, NULL);
        for (size_t r = 0; r < c.n && !err; r++) {
            dup[i + r] = seq[r] == 0;
            if (dup[i + r]) {
                /* stored before (or earlier in this batch): the stored seq is the one */
                struct dr_db_val q[1] = {DR_DB_TEXTV(v[i + r]->id)};
                err = dr_db_tx_exec(tx, seq_sql, q, 1, get_int, &seq[r], NULL);
                if (!err && seq[r] == 0) {
                    err = DR_EIO;
                }
            }
            if (!err) {
                dr__notification_set_seq(v[i + r], seq[r]);
            }
        }
    }
    return err;
}

/*
 * SQLite: the transaction gives the seqs itself. RETURNING cost SQLite about a fifth of the
 * store's time (it keeps the returned rows in a temporary b-tree until the statement ends), so
 * the batch numbers its notifications on from the highest seq ever given (AUTOINCREMENT's
 * counter, which an explicit seq moves on as well), in batch order, and inserts them with their
 * seqs. BEGIN IMMEDIATE holds the database's write lock from the first read to the commit, so no
 * other writer, in this process or another, stores an id or a seq in between.
 *
 * Repeats: one within the batch takes its first occurrence's seq (a hash of the batch's ids).
 * One of a stored notification is skipped by ON CONFLICT; a statement that inserted fewer rows
 * than it had then reads its ids back, and a row stored under another seq than the one it was
 * given is that repeat (its given seq stays unused: seqs increase, with a gap).
 *
 * The insert is INSERT OR FAIL: a plain INSERT may abort halfway (a NOT NULL column), so inside
 * a transaction SQLite would keep a statement journal to undo it, a copy of each page the
 * statement is first to change, which over many rooms is a leaf of the room index per row. FAIL
 * needs none; a failing statement still fails the whole transaction, which is rolled back (and
 * dr__rt_store_put_batch then stores the batch one by one).
 */
struct lite_batch {
    struct dr_notification **v;
    size_t n;
    uint32_t *slots; /* open addressing: index + 1 of an id's first occurrence, 0 empty */
    size_t mask;
    size_t *first; /* first[i]: the first index with v[i]'s id */
    int64_t *seq;  /* seq[i]: the one given, then the one stored */
    int *dup;
    unsigned char *seen; /* seen[i]: read back stored */
};

/* The first index with id, or n when the batch has none. */
static size_t lite_find(const struct lite_batch *b, const char *id)
{
    for (size_t h = dr_hash_str(id) & b->mask;; h = (h + 1) & b->mask) {
        uint32_t j = b->slots[h];
        if (j == 0) {
            return b->n;
        }
        if (strcmp(b->v[j - 1]->id, id) == 0) {
            return j - 1;
        }
    }
}

static void lite_index(struct lite_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        size_t h = dr_hash_str(b->v[i]->id) & b->mask;
        for (;; h = (h + 1) & b->mask) {
            uint32_t j = b->slots[h];
            if (j == 0) {
                b->slots[h] = (uint32_t)(i + 1);
                b->first[i] = i;
                break;
            }
            if (strcmp(b->v[j - 1]->id, b->v[i]->id) == 0) {
                b->first[i] = j - 1;
                break;
            }
        }
    }
}

/* A stored (seq, notification_id) of a statement that skipped some: stored under another seq
 * than the one given, it was there before. */
static int lite_stored(void *ctx, const struct dr_db_row *row)
{
    struct lite_batch *b = ctx;
    const char *id = dr_db_row_text(row, 1);
    size_t j = id ? lite_find(b, id) : b->n;

    if (j < b->n) {
        b->seen[j] = 1;
        if (b->seq[j] != dr_db_row_int(row, 0)) {
            b->seq[j] = dr_db_row_int(row, 0);
            b->dup[j] = 1;
        }
    }
    return 0;
}

static const char lite_top_sql[] =
    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'rt_notifications'), 0),"
    " COALESCE((SELECT MAX(seq) FROM rt_notifications), 0))";

static int put_many_lite(struct dr_db_tx *tx, struct dr_notification **v, size_t n, int *dup)
{
    struct dr_db_val p[DR_DB_CHUNK_MAX * LITE_PARAMS];
    struct lite_batch b = {.v = v, .n = n, .dup = dup};
    size_t *fresh; /* the indexes in v of first occurrences */
    int64_t top = 0;
    int64_t now = dr_now_ms();
    size_t nfresh = 0, size = 4;
    int err;

    while (size < 2 * n) {
        size *= 2;
    }
    b.mask = size - 1;
    b.slots = dr_xcalloc(size, sizeof(*b.slots));
    b.first = dr_xcalloc(n, sizeof(*b.first));
    b.seq = dr_xcalloc(n, sizeof(*b.seq));
    b.seen = dr_xcalloc(n, sizeof(*b.seen));
    fresh = dr_xcalloc(n, sizeof(*fresh));
    lite_index(&b);
    err = dr_db_tx_exec(tx, lite_top_sql, NULL, 0, get_int, &top, NULL);
    for (size_t i = 0; i < n; i++) {
        dup[i] = b.first[i] != i;
        if (!dup[i]) {
            b.seq[i] = ++top;
            fresh[nfresh++] = i;
        }
    }
    for (size_t i = 0, k; i < nfresh && !err; i += dr_db_chunks[k]) {
        size_t m;
        int64_t added = 0;
        k = dr_db_chunk_index(nfresh - i);
        m = dr_db_chunks[k];
        for (size_t r = 0; r < m; r++) {
            struct dr_notification *x = v[fresh[i + r]];
            struct dr_db_val *q = &p[r * LITE_PARAMS];
            q[0] = DR_DB_INTV(b.seq[fresh[i + r]]);
            q[1] = DR_DB_TEXTV(x->id);
            q[2] = DR_DB_TEXTV(x->user_id);
            q[3] = DR_DB_TEXTV(x->org_id);
            q[4] = DR_DB_TEXTV(x->room);
            q[5] = DR_DB_TEXTV(x->type);
            q[6] = DR_DB_TEXTV(x->body);
            q[7] = DR_DB_INTV(now);
        }
        err = dr_db_tx_exec(tx, lite_rows_sql[k], p, m * LITE_PARAMS, NULL, NULL, &added);
        if (!err && (size_t)added != m) {
            /* some were stored before: which, and under what seq */
            for (size_t r = 0; r < m; r++) {
                p[r] = DR_DB_TEXTV(v[fresh[i + r]]->id);
            }
            err = dr_db_tx_exec(tx, lite_ids_sql[k], p, m, lite_stored, &b, NULL);
            for (size_t r = 0; r < m && !err; r++) {
                if (!b.seen[fresh[i + r]]) {
                    err = DR_EIO; /* not stored, not there before (a trigger's RAISE(IGNORE)) */
                }
            }
        }
    }
    if (!err) {
        err = put_inbox_lite(tx, v, n, dup, b.seq);
    }
    for (size_t i = 0; i < n && !err; i++) {
        if (dup[i] && b.first[i] != i) {
            b.seq[i] = b.seq[b.first[i]]; /* its first occurrence's, final by now */
        }
        dr__notification_set_seq(v[i], b.seq[i]);
    }
    free(fresh);
    free(b.seen);
    free(b.seq);
    free(b.first);
    free(b.slots);
    return err;
}

int dr__rt_store_put_many(struct dr_db *db, struct dr_notification **v, size_t n, int *dup)
{
    struct dr_db_tx *tx;
    int err;

    if (n == 1) {
        return dr__rt_store_put(db, v[0], &dup[0]);
    }
    pthread_once(&put_once, build_put_sql);
    err = begin_put(db, &tx);
    if (err) {
        return err;
    }
    err = dr_db_engine(db) == DR_DB_POSTGRES ? put_many_pg(tx, v, n, dup)
                                             : put_many_lite(tx, v, n, dup);
    if (err) {
        dr_db_rollback(tx);
    } else {
        err = dr_db_commit(tx);
    }
    return err;
}

size_t dr__rt_store_put_batch(struct dr_db *db, struct dr_notification **v, size_t n, int *dup,
                              int *errs)
{
    int err = dr__rt_store_put_many(db, v, n, dup);
    int transient = 0;
    size_t stored = 0;

    if (!err || n == 1 || !dr_db_err_permanent(err)) {
        for (size_t i = 0; i < n; i++) {
            errs[i] = err;
            if (err) {
                dup[i] = 0;
            }
        }
        return err ? 0 : n;
    }
    /* the store refuses some row of the batch: find which, and store the others */
    DR_WARN("realtime", "batch refused, storing one by one", "error=\"%s\" batch=%zu",
            dr_strerror(err), n);
    for (size_t i = 0; i < n; i++) {
        if (transient) {
            /* the store is failing, not this row: it would only wait on it again */
            errs[i] = transient;
            dup[i] = 0;
            continue;
        }
        errs[i] = dr__rt_store_put(db, v[i], &dup[i]);
        if (!errs[i]) {
            stored++;
        } else if (!dr_db_err_permanent(errs[i])) {
            transient = errs[i];
        }
    }
    return stored;
}

struct rows {
    struct dr_notification **v;
    size_t n, cap;
    size_t read;  /* rows the query returned, readable or not */
    int64_t last; /* the seq of the last of them */
};

/* The notification of a (seq, body_json) row, or NULL (logged) when it cannot be read. */
static struct dr_notification *row_notification(const struct dr_db_row *row)
{
    const char *body = dr_db_row_text(row, 1);
    int64_t seq = dr_db_row_int(row, 0);
    struct dr_notification *n = body ? dr__notification_from_row(seq, body, strlen(body)) : NULL;

    if (!n) {
        DR_WARN("realtime", "unreadable stored notification skipped", "seq=%lld", (long long)seq);
    }
    return n;
}

static int collect(void *ctx, const struct dr_db_row *row)
{
    struct rows *r = ctx;
    struct dr_notification *n = row_notification(row);

    r->read++;
    r->last = dr_db_row_int(row, 0);
    if (!n) {
        return 0;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = dr_xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    r->v[r->n++] = n;
    return 0;
}

void dr__rt_notifications_free(struct dr_notification **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dr_notification_unref(v[i]);
    }
    free(v);
}

/* Ranges of rt_notifications_bucket one catch-up query seeks (each in every room asked). */
#define SINCE_BUCKETS 32

static int since_pg(struct dr_db *db, char *const *rooms, size_t nrooms, int64_t since,
                    size_t limit, struct rows *r)
{
    struct dr_buf sql;
    struct dr_db_val *p;
    int err;

    /* only placeholders are generated; every value is a parameter */
    p = dr_xcalloc(nrooms + 2, sizeof(*p));
    dr_buf_init(&sql, 256 + nrooms * 8);
    dr_buf_appends(&sql,
                   "SELECT seq, body_json FROM rt_notifications WHERE seq > $1 AND room IN (");
    p[0] = DR_DB_INTV(since);
    for (size_t i = 0; i < nrooms; i++) {
        dr_buf_printf(&sql, "%s$%zu", i ? ", " : "", i + 2);
        p[i + 1] = DR_DB_TEXTV(rooms[i]);
    }
    dr_buf_printf(&sql, ") ORDER BY seq LIMIT $%zu", nrooms + 2);
    p[nrooms + 1] = DR_DB_INTV(limit);
    err = dr_db_exec(db, sql.data, p, nrooms + 2, collect, r, NULL);
    dr_buf_cleanup(&sql);
    free(p);
    return err;
}

/* SQLite: the rows of one of since_lite's two queries, in seq order; an unreadable one is NULL
 * (it still counts towards the page). */
struct lite_rows {
    int64_t *seq;
    struct dr_notification **v;
    size_t n, cap;
};

static int lite_collect(void *ctx, const struct dr_db_row *row)
{
    struct lite_rows *r = ctx;

    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = dr_xrealloc(r->v, r->cap * sizeof(*r->v));
        r->seq = dr_xrealloc(r->seq, r->cap * sizeof(*r->seq));
    }
    r->seq[r->n] = dr_db_row_int(row, 0);
    r->v[r->n] = row_notification(row);
    r->n++;
    return 0;
}

/* The rooms that are not inbox rooms (user:, org:), as "$first, $first+1, ..." in sql and their
 * values from p[first - 1] on; how many. */
static size_t room_params(struct dr_buf *sql, struct dr_db_val *p, size_t first, char *const *rooms,
                          size_t nrooms)
{
    size_t k = 0;

    for (size_t i = 0; i < nrooms; i++) {
        if (!inbox_room(rooms[i])) {
            dr_buf_printf(sql, "%s$%zu", k ? ", " : "", first + k);
            p[first - 1 + k++] = DR_DB_TEXTV(rooms[i]);
        }
    }
    return k;
}

/* Candidate seqs of a catch-up: those of the rooms' rt_inbox_batches rows in (after, head]. */
struct seq_list {
    int64_t *v;
    size_t n, cap;
    int64_t after, head;
    size_t room_start, want; /* where the room being read began in v, how many it needs */
    int stopped;             /* the room had want: it may have more */
};

#define SEQS_ENOUGH (-1) /* a row callback's "stop here": not an error of enum dr_err */

static void add_seq(struct seq_list *l, int64_t seq)
{
    if (seq <= l->after || seq > l->head) {
        return;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = dr_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = seq;
}

/* One rt_inbox_batches row of the room: its seqs, read from the JSON array of integers that
 * put_inbox_lite and migration 103 write. Stops once the room has want: its later rows hold
 * only higher seqs. */
static int take_batch(void *ctx, const struct dr_db_row *row)
{
    struct seq_list *l = ctx;
    const char *at = dr_db_row_text(row, 0);

    /* "[s1,s2,...]": positive integers, written by dr_json_append_i64() */
    while (at && *at) {
        char *end;
        long long seq = strtoll(at + 1, &end, 10);
        if (end == at + 1) {
            break; /* "]" (or "[]") */
        }
        add_seq(l, (int64_t)seq);
        at = end;
    }
    if (l->n - l->room_start >= l->want) {
        l->stopped = 1;
        return SEQS_ENOUGH;
    }
    return 0;
}

static int cmp_seq(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* a room's rows from after on, in seq order (its rows do not overlap); not bounded by head:
 * last_seq stays when its notification is deleted, so a row may end above the newest seq */
static const char inbox_batches_sql[] = "SELECT seqs FROM rt_inbox_batches WHERE room = $1"
                                        " AND last_seq > $2 ORDER BY last_seq";
/* the stored notifications of a JSON array of seqs */
static const char inbox_notes_sql[] =
    "SELECT n.seq, n.body_json FROM rt_notifications n WHERE n.seq IN"
    " (SELECT j.value FROM json_each($1) j) ORDER BY n.seq";

/*
 * Rows of user: and org: rooms, from rt_inbox_batches: each room's first seqs after since (as
 * many rows of it as hold limit), merged, the first limit of them read from rt_notifications.
 * Seqs whose notifications are gone (deleted) leave the page short: it goes on after the last
 * of them until limit rows or no seq is left. Only seqs up to head (the newest when the
 * catch-up began) are taken: every one of them was committed by then, so the rooms, each read
 * by a statement of its own, agree on what they hold; later ones come with the next page.
 */
static int since_inbox(struct dr_db *db, char *const *rooms, size_t nrooms, int64_t since,
                       size_t limit, int64_t head, struct lite_rows *r)
{
    struct seq_list c = {.after = since, .head = head};
    struct dr_buf arr;
    size_t want = limit;
    int err = DR_OK;

    dr_buf_init(&arr, limit * 21 + 2); /* limit seqs of 20 digits at most */
    while (!err && want > 0) {
        size_t taken, had = r->n;
        c.n = 0;
        c.want = want;
        c.stopped = 0;
        for (size_t i = 0; i < nrooms && !err; i++) {
            struct dr_db_val p[2] = {DR_DB_TEXTV(rooms[i]), DR_DB_INTV(c.after)};
            if (inbox_room(rooms[i])) {
                c.room_start = c.n;
                err = dr_db_exec(db, inbox_batches_sql, p, 2, take_batch, &c, NULL);
                err = err == SEQS_ENOUGH ? DR_OK : err;
            }
        }
        if (err || c.n == 0) {
            break;
        }
        qsort(c.v, c.n, sizeof(*c.v), cmp_seq);
        taken = c.n < want ? c.n : want;
        dr_buf_reset(&arr);
        for (size_t i = 0; i < taken && !err; i++) {
            err = append_seq(&arr, c.v[i]);
        }
        if (!err) {
            err = dr_buf_appendc(&arr, ']');
        }
        if (!err) {
            struct dr_db_val p[1] = {DR_DB_TEXTV(arr.data)};
            err = dr_db_exec(db, inbox_notes_sql, p, 1, lite_collect, r, NULL);
            want -= r->n - had;
        }
        if (!c.stopped && taken == c.n) {
            break; /* every room gave all it has up to head */
        }
        c.after = c.v[taken - 1];
    }
    dr_buf_cleanup(&arr);
    free(c.v);
    return err;
}

/* Rows of the other rooms: rt_notifications_bucket, SINCE_BUCKETS seq ranges at a time, from
 * since's to the newest row's, each seeking every (range, room), until limit rows. A range past
 * the newest stored when this began may hold rows stored since: they come in order too. */
static int since_buckets(struct dr_db *db, char *const *rooms, size_t nrooms, int64_t since,
                         size_t limit, int64_t head, struct lite_rows *r)
{
    struct dr_db_val *p = dr_xcalloc(1 + SINCE_BUCKETS + nrooms + 1, sizeof(*p));
    struct dr_buf sql;
    int64_t b, last;
    size_t k, np;
    int err;

    dr_buf_init(&sql, 512 + nrooms * 8);
    dr_buf_appends(&sql, "SELECT n.seq, n.body_json FROM rt_notifications n INDEXED BY"
                         " rt_notifications_bucket WHERE n.seq / " SEQ_BUCKET_S " IN (");
    for (size_t i = 0; i < SINCE_BUCKETS; i++) {
        dr_buf_printf(&sql, "%s$%zu", i ? ", " : "", i + 2);
    }
    dr_buf_appends(&sql, ") AND n.room IN (");
    k = room_params(&sql, p, SINCE_BUCKETS + 2, rooms, nrooms);
    np = 1 + SINCE_BUCKETS + k + 1;
    dr_buf_printf(&sql, ") AND " OTHER_ROOM " AND n.seq > $1 ORDER BY n.seq LIMIT $%zu", np);
    p[0] = DR_DB_INTV(since);
    err = DR_OK;
    last = head / SEQ_BUCKET;
    for (b = (since < 0 ? 0 : since + 1) / SEQ_BUCKET; k && !err && b <= last && r->n < limit;
         b += SINCE_BUCKETS) {
        for (size_t i = 0; i < SINCE_BUCKETS; i++) {
            /* past the newest: the last range again (IN ignores repeats) */
            p[1 + i] = DR_DB_INTV(b + (int64_t)i <= last ? b + (int64_t)i : last);
        }
        p[np - 1] = DR_DB_INTV(limit - r->n);
        err = dr_db_exec(db, sql.data, p, np, lite_collect, r, NULL);
    }
    dr_buf_cleanup(&sql);
    free(p);
    return err;
}

/* SQLite: the first limit rows of the inbox rooms and of the others, merged by seq. */
static int since_lite(struct dr_db *db, char *const *rooms, size_t nrooms, int64_t since,
                      size_t limit, struct rows *r)
{
    struct lite_rows a = {0}, b = {0};
    size_t i = 0, j = 0;
    int64_t head = 0;
    int err = dr__rt_store_head(db, &head);

    if (!err) {
        err = since_inbox(db, rooms, nrooms, since, limit, head, &a);
    }
    if (!err) {
        err = since_buckets(db, rooms, nrooms, since, limit, head, &b);
    }
    while (!err && r->read < limit && (i < a.n || j < b.n)) {
        struct lite_rows *from = j == b.n || (i < a.n && a.seq[i] < b.seq[j]) ? &a : &b;
        size_t *at = from == &a ? &i : &j;
        struct dr_notification *n = from->v[*at];

        from->v[(*at)++] = NULL;
        r->read++;
        r->last = from->seq[*at - 1];
        if (n) {
            if (r->n == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 16;
                r->v = dr_xrealloc(r->v, r->cap * sizeof(*r->v));
            }
            r->v[r->n++] = n;
        }
    }
    dr__rt_notifications_free(a.v, a.n); /* those not taken (taken ones are NULL) */
    dr__rt_notifications_free(b.v, b.n);
    free(a.seq);
    free(b.seq);
    return err;
}

int dr__rt_store_since(struct dr_db *db, char *const *rooms, size_t nrooms, int64_t since,
                       size_t limit, struct dr_notification ***out, size_t *n, int64_t *next)
{
    struct rows r = {0};
    int err;

    *out = NULL;
    *n = 0;
    if (next) {
        *next = -1;
    }
    if (nrooms == 0) {
        return DR_OK;
    }
    err = dr_db_engine(db) == DR_DB_POSTGRES ? since_pg(db, rooms, nrooms, since, limit, &r)
                                             : since_lite(db, rooms, nrooms, since, limit, &r);
    if (err) {
        dr__rt_notifications_free(r.v, r.n);
    } else {
        *out = r.v;
        *n = r.n;
        if (next && r.read == limit) {
            *next = r.last;
        }
    }
    return err;
}

int dr__rt_store_head(struct dr_db *db, int64_t *head)
{
    *head = 0;
    return dr_db_exec(db, "SELECT COALESCE(MAX(seq), 0) FROM rt_notifications", NULL, 0, get_int,
                      head, NULL);
}

/* ---- inbox ---- */

/* A user's inbox ($1 the user, $2 the user: room, $3 the org: room or NULL): a row's test. On
 * PostgreSQL, with its index by room, the walks over it too; SQLite walks the user index and
 * rt_inbox_batches (inbox_list_lite, and the count's and read-all's own statements). */
#define INBOX_MEMBER_PG "(n.user_id = $1 OR n.room = $2 OR n.room = $3)"
#define ENGINE(db)      (dr_db_engine(db) == DR_DB_SQLITE)
#define READ_MARK  "COALESCE((SELECT m.up_to_seq FROM rt_read_marks m WHERE m.user_id = $1), 0)"
#define IS_READ                                                                                    \
    "(n.seq <= " READ_MARK                                                                         \
    " OR EXISTS (SELECT 1 FROM rt_reads r WHERE r.user_id = $1 AND r.seq = n.seq))"

struct inbox_list {
    struct dr_buf b;
    size_t n;
    int64_t last;
    int failed;
};

static int list_row(void *ctx, const struct dr_db_row *row)
{
    struct inbox_list *l = ctx;
    const char *body = dr_db_row_text(row, 1);
    size_t blen = body ? strlen(body) : 0;

    if (blen < 2) {
        return 0;
    }
    l->last = dr_db_row_int(row, 0);
    if ((l->n++ && dr_buf_appendc(&l->b, ',')) || dr_buf_append(&l->b, body, blen - 1) ||
        dr_buf_printf(&l->b, ",\"seq\":%lld,\"read\":%s}", (long long)l->last,
                      dr_db_row_int(row, 2) ? "true" : "false")) {
        l->failed = 1;
        return 1;
    }
    return 0;
}

static void member_params(struct dr_db_val *p, const char *sub, const char *org, char *uroom,
                          size_t usz, char *oroom, size_t osz)
{
    snprintf(uroom, usz, "user:%s", sub);
    p[0] = DR_DB_TEXTV(sub);
    p[1] = DR_DB_TEXTV(uroom);
    if (org) {
        snprintf(oroom, osz, "org:%s", org);
        p[2] = DR_DB_TEXTV(oroom);
    } else {
        p[2] = DR_DB_NULLV;
    }
}

/* SQLite: a user's inbox below a seq, newest first, in pages of k candidates (inbox_list_lite) */
static const char user_below_sql[] = "SELECT seq FROM rt_notifications WHERE user_id = $1"
                                     " AND seq < $2 ORDER BY seq DESC LIMIT $3";
/* the one row of a room that may hold seqs both at or above b and below it: the first to end at
 * b or above (a room's rows do not overlap) */
static const char inbox_straddle_sql[] = "SELECT seqs FROM rt_inbox_batches WHERE room = $1"
                                         " AND last_seq >= $2 ORDER BY last_seq LIMIT 1";
static const char inbox_below_sql[] = "SELECT seqs FROM rt_inbox_batches WHERE room = $1"
                                      " AND last_seq < $2 ORDER BY last_seq DESC";
static const char list_rows_sql[] =
    "SELECT n.seq, n.body_json, CASE WHEN " IS_READ " THEN 1 ELSE 0 END FROM rt_notifications n"
    " WHERE n.seq IN (SELECT j.value FROM json_each($2) j) ORDER BY n.seq DESC";

static int take_seq(void *ctx, const struct dr_db_row *row)
{
    add_seq(ctx, dr_db_row_int(row, 0));
    return 0;
}

static int cmp_seq_desc(const void *a, const void *b)
{
    return cmp_seq(b, a);
}

/* list_row for the rows of an unread-only list that are unread (read ones are skipped) */
struct list_pick {
    struct inbox_list *l;
    int unread_only;
    size_t limit;
};

/* Rows come newest first: once the page has limit, the rest are the next page's. */
static int pick_row(void *ctx, const struct dr_db_row *row)
{
    struct list_pick *pk = ctx;

    if (pk->l->n >= pk->limit) {
        return SEQS_ENOUGH;
    }
    if (pk->unread_only && dr_db_row_int(row, 2)) {
        return 0;
    }
    return list_row(pk->l, row);
}

/*
 * SQLite: the inbox page, newest first below q->before. Each round takes the k newest seqs below
 * b of each source (the user's own notifications by the user index; each room's rt_inbox_batches
 * rows from the newest down, only as many as hold k), merges them, and reads the k newest of the
 * union: the union's k newest are among its sources' k newest. The next round goes on below the
 * lowest of them, with twice k when read ones were skipped (unread only). A page costs about its
 * own size, however long the history.
 */
static int inbox_list_lite(struct dr_db *db, const struct rt_inbox_q *q, const struct dr_db_val *p,
                           struct inbox_list *l)
{
    struct seq_list c = {0};
    struct list_pick pk = {.l = l, .unread_only = q->unread_only, .limit = q->limit};
    struct dr_buf arr;
    int64_t b = q->before > 0 ? q->before : INT64_MAX;
    size_t k = q->limit;
    int err = DR_OK;

    dr_buf_init(&arr, 64 * 1024 * 1024);
    while (!err && l->n < q->limit && b > 1) {
        size_t had = l->n, taken = 0;
        struct dr_db_val up[3] = {p[0], DR_DB_INTV(b), DR_DB_INTV((int64_t)k)};

        c.n = 0;
        c.after = 0;
        c.head = b - 1;
        err = dr_db_exec(db, user_below_sql, up, 3, take_seq, &c, NULL);
        for (int i = 1; i <= (q->org ? 2 : 1) && !err; i++) {
            struct dr_db_val rp[2] = {p[i], DR_DB_INTV(b)};
            c.room_start = c.n;
            c.want = k;
            err = dr_db_exec(db, inbox_straddle_sql, rp, 2, take_batch, &c, NULL);
            if (!err && c.n - c.room_start < k) {
                err = dr_db_exec(db, inbox_below_sql, rp, 2, take_batch, &c, NULL);
            }
            err = err == SEQS_ENOUGH ? DR_OK : err;
        }
        if (err || c.n == 0) {
            break;
        }
        qsort(c.v, c.n, sizeof(*c.v), cmp_seq_desc);
        dr_buf_reset(&arr);
        for (size_t i = 0; i < c.n && taken < k && !err; i++) {
            if (i > 0 && c.v[i] == c.v[i - 1]) {
                continue; /* the user's own and in a room: once */
            }
            err = append_seq(&arr, c.v[i]);
            taken++;
            b = c.v[i];
        }
        if (!err) {
            err = dr_buf_appendc(&arr, ']');
        }
        if (!err) {
            struct dr_db_val rp[2] = {p[0], DR_DB_TEXTV(arr.data)};
            err = dr_db_exec(db, list_rows_sql, rp, 2, pick_row, &pk, NULL);
            err = err == SEQS_ENOUGH ? DR_OK : err;
        }
        if (!err && l->failed) {
            err = DR_ETOOBIG;
        }
        if (l->n - had < taken && k < 4096) {
            k *= 2; /* read ones skipped, or deleted meanwhile */
        }
    }
    dr_buf_cleanup(&arr);
    free(c.v);
    return err;
}

int dr__rt_inbox_list(struct dr_db *db, const struct rt_inbox_q *q, char **out, size_t *count)
{
    static const char all_sql[] =
        "SELECT n.seq, n.body_json, CASE WHEN " IS_READ " THEN 1 ELSE 0 END FROM rt_notifications"
        " n WHERE " INBOX_MEMBER_PG " AND n.seq < $4 ORDER BY n.seq DESC LIMIT $5";
    static const char unread_sql[] =
        "SELECT n.seq, n.body_json, 0 FROM rt_notifications n WHERE " INBOX_MEMBER_PG
        " AND n.seq < $4 AND NOT " IS_READ " ORDER BY n.seq DESC LIMIT $5";
    char uroom[200], oroom[200];
    struct dr_db_val p[5];
    struct inbox_list l = {0};
    int err;

    *out = NULL;
    member_params(p, q->sub, q->org, uroom, sizeof(uroom), oroom, sizeof(oroom));
    p[3] = DR_DB_INTV(q->before > 0 ? q->before : INT64_MAX);
    p[4] = DR_DB_INTV(q->limit);
    dr_buf_init(&l.b, 64 * 1024 * 1024);
    dr_buf_appends(&l.b, "{\"notifications\":[");
    if (dr_db_engine(db) == DR_DB_SQLITE) {
        err = inbox_list_lite(db, q, p, &l);
    } else {
        err = dr_db_exec(db, q->unread_only ? unread_sql : all_sql, p, 5, list_row, &l, NULL);
    }
    if (!err && l.failed) {
        err = DR_ETOOBIG;
    }
    if (!err) {
        if (l.n == q->limit && l.n > 0) {
            dr_buf_printf(&l.b, "],\"next_before\":%lld}", (long long)l.last);
        } else {
            dr_buf_appends(&l.b, "],\"next_before\":null}");
        }
        *out = dr_buf_steal(&l.b, NULL);
        if (count) {
            *count = l.n;
        }
    }
    dr_buf_cleanup(&l.b);
    return err;
}

int dr__rt_inbox_unread(struct dr_db *db, const char *sub, const char *org, int64_t *count)
{
    /* SQLite: the seqs themselves, above the user's mark (rt_inbox_batches holds only stored
     * ones); a notification both by user_id and by room counts once (UNION) */
    static const char *const sql[2] = {
        "SELECT COUNT(*) FROM rt_notifications n WHERE " INBOX_MEMBER_PG " AND NOT " IS_READ,
        "SELECT COUNT(*) FROM (SELECT u.seq AS seq FROM rt_notifications u WHERE u.user_id = $1"
        " AND u.seq > " READ_MARK " UNION SELECT j.value FROM rt_inbox_batches b,"
        " json_each(b.seqs) j WHERE b.room IN ($2, $3) AND b.last_seq > " READ_MARK
        " AND j.value > " READ_MARK ") n WHERE NOT EXISTS (SELECT 1 FROM rt_reads r"
        " WHERE r.user_id = $1 AND r.seq = n.seq)"};
    char uroom[200], oroom[200];
    struct dr_db_val p[3];

    *count = 0;
    member_params(p, sub, org, uroom, sizeof(uroom), oroom, sizeof(oroom));
    return dr_db_exec(db, sql[ENGINE(db)], p, 3, get_int, count, NULL);
}

struct mark_row {
    int64_t seq;
    char *id;
};

static int mark_found(void *ctx, const struct dr_db_row *row)
{
    struct mark_row *m = ctx;
    m->seq = dr_db_row_int(row, 0);
    free(m->id);
    m->id = dr_xstrdup(dr_db_row_text(row, 1));
    return 0;
}

int dr__rt_inbox_mark(struct dr_db *db, const char *sub, const char *org, const char *id,
                      int64_t *seq, char **id_out)
{
    static const char by_id[] =
        "SELECT n.seq, n.notification_id FROM rt_notifications n WHERE " INBOX_MEMBER_PG
        " AND n.notification_id = $4";
    static const char by_seq[] =
        "SELECT n.seq, n.notification_id FROM rt_notifications n WHERE " INBOX_MEMBER_PG
        " AND n.seq = $4";
    char uroom[200], oroom[200];
    struct dr_db_val p[4];
    struct mark_row m = {0};
    int err;

    if (id_out) {
        *id_out = NULL;
    }
    member_params(p, sub, org, uroom, sizeof(uroom), oroom, sizeof(oroom));
    p[3] = id ? DR_DB_TEXTV(id) : DR_DB_INTV(*seq);
    err = dr_db_exec(db, id ? by_id : by_seq, p, 4, mark_found, &m, NULL);
    if (!err && m.seq == 0) {
        err = DR_ENOTFOUND;
    }
    if (!err) {
        struct dr_db_val ins[3] = {DR_DB_TEXTV(sub), DR_DB_INTV(m.seq), DR_DB_INTV(dr_now_ms())};
        err = dr_db_exec(db,
                         "INSERT INTO rt_reads (user_id, seq, read_ms) VALUES ($1, $2, $3)"
                         " ON CONFLICT (user_id, seq) DO NOTHING",
                         ins, 3, NULL, NULL, NULL);
    }
    if (!err) {
        *seq = m.seq;
        if (id_out) {
            *id_out = m.id;
            m.id = NULL;
        }
    }
    free(m.id);
    return err;
}

/*
 * One transaction: the mark and the end of the single reads under it are stored together or not
 * at all, so an error answered leaves nothing half done. The mark never moves back (a newest seq
 * lower than the mark, once retention deleted rows, leaves it where it is), and *upto is the mark
 * stored (0 when there is none), not the newest seq seen.
 */
int dr__rt_inbox_mark_all(struct dr_db *db, const char *sub, const char *org, int64_t *upto)
{
    /* SQLite: a room's newest seq is in its newest rt_inbox_batches row (a row without any is
     * deleted) */
    static const char *const max_sql[2] = {
        "SELECT MAX(n.seq) FROM rt_notifications n WHERE " INBOX_MEMBER_PG,
        "SELECT MAX(x) FROM (SELECT MAX(u.seq) AS x FROM rt_notifications u WHERE u.user_id = $1"
        " UNION ALL SELECT MAX(j.value) FROM json_each((SELECT seqs FROM rt_inbox_batches"
        " WHERE room = $2 ORDER BY last_seq DESC LIMIT 1)) j"
        " UNION ALL SELECT MAX(j.value) FROM json_each((SELECT seqs FROM rt_inbox_batches"
        " WHERE room = $3 ORDER BY last_seq DESC LIMIT 1)) j)"};
    char uroom[200], oroom[200];
    struct dr_db_val p[3];
    struct dr_db_tx *tx = NULL;
    int64_t max = 0, mark = 0;
    int err;

    *upto = 0;
    member_params(p, sub, org, uroom, sizeof(uroom), oroom, sizeof(oroom));
    err = dr_db_begin(db, &tx);
    if (err) {
        return err;
    }
    err = dr_db_tx_exec(tx, max_sql[ENGINE(db)], p, 3, get_int, &max, NULL);
    if (!err && max > 0) {
        struct dr_db_val up[3] = {DR_DB_TEXTV(sub), DR_DB_INTV(max), DR_DB_INTV(dr_now_ms())};
        err = dr_db_tx_exec(tx,
                            "INSERT INTO rt_read_marks (user_id, up_to_seq, read_ms)"
                            " VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET"
                            " up_to_seq = CASE WHEN excluded.up_to_seq > rt_read_marks.up_to_seq"
                            " THEN excluded.up_to_seq ELSE rt_read_marks.up_to_seq END,"
                            " read_ms = excluded.read_ms RETURNING up_to_seq",
                            up, 3, get_int, &mark, NULL);
    } else if (!err) {
        /* nothing left to read (retention deleted it): the answer is still the mark stored */
        err = dr_db_tx_exec(tx, "SELECT up_to_seq FROM rt_read_marks WHERE user_id = $1", p, 1,
                            get_int, &mark, NULL);
    }
    if (!err && mark > 0) {
        /* single reads at or below the mark say nothing more */
        struct dr_db_val del[2] = {DR_DB_TEXTV(sub), DR_DB_INTV(mark)};
        err = dr_db_tx_exec(tx, "DELETE FROM rt_reads WHERE user_id = $1 AND seq <= $2", del, 2,
                            NULL, NULL, NULL);
    }
    if (err) {
        dr_db_rollback(tx);
        return err;
    }
    err = dr_db_commit(tx);
    if (!err) {
        *upto = mark;
    }
    return err;
}

/* ---- retention ---- */

struct purge_chunk {
    int64_t before_ms;
    int64_t head;   /* the newest seq when the purge began: kept */
    int64_t lo, hi; /* the chunk's seqs to delete: lo..hi, 0 when none */
    int newer;      /* a row new enough was read: the purge ends with this chunk */
};

static int purge_row(void *ctx, const struct dr_db_row *row)
{
    struct purge_chunk *pc = ctx;

    if (dr_db_row_int(row, 0) >= pc->head || dr_db_row_int(row, 1) >= pc->before_ms) {
        pc->newer = 1;
        return SEQS_ENOUGH; /* the rest are newer still */
    }
    if (!pc->lo) {
        pc->lo = dr_db_row_int(row, 0);
    }
    pc->hi = dr_db_row_int(row, 0);
    return 0;
}

struct room_list {
    char **v;
    size_t n, cap;
};

static int take_room(void *ctx, const struct dr_db_row *row)
{
    struct room_list *l = ctx;
    const char *room = dr_db_row_text(row, 0);

    if (room) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 16;
            l->v = dr_xrealloc(l->v, l->cap * sizeof(*l->v));
        }
        l->v[l->n++] = dr_xstrdup(room);
    }
    return 0;
}

/*
 * SQLite: takes a purge chunk's seqs (every seq up to pc->hi: the chunk holds the oldest rows)
 * out of rt_inbox_batches before the rows go, a statement per room: its rows that end at or
 * below pc->hi, and its first row after them rewritten without them. The trigger then finds
 * nothing to rewrite for each deleted row; one rewrite per row and row of seqs (up to a batch,
 * 2,048) made a purge of inbox rooms forty times slower than of other rooms.
 */
static int purge_inbox_lite(struct dr_db_tx *tx, const struct purge_chunk *pc)
{
    struct room_list rooms = {0};
    struct dr_db_val range[2] = {DR_DB_INTV(pc->lo), DR_DB_INTV(pc->hi)};
    int err = dr_db_tx_exec(tx,
                            "SELECT DISTINCT room FROM rt_notifications WHERE seq >= $1"
                            " AND seq <= $2 AND (room >= 'user:' AND room < 'user;'"
                            " OR room >= 'org:' AND room < 'org;')",
                            range, 2, take_room, &rooms, NULL);

    for (size_t i = 0; i < rooms.n && !err; i++) {
        struct dr_db_val p[2] = {DR_DB_TEXTV(rooms.v[i]), DR_DB_INTV(pc->hi)};
        err = dr_db_tx_exec(tx, "DELETE FROM rt_inbox_batches WHERE room = $1 AND last_seq <= $2",
                            p, 2, NULL, NULL, NULL);
        if (!err) {
            err = dr_db_tx_exec(
                tx,
                "UPDATE rt_inbox_batches SET seqs = (SELECT json_group_array(j.value) FROM"
                " json_each(seqs) j WHERE j.value > $2) WHERE room = $1 AND last_seq ="
                " (SELECT MIN(b.last_seq) FROM rt_inbox_batches b WHERE b.room = $1"
                " AND b.last_seq > $2)",
                p, 2, NULL, NULL, NULL);
        }
    }
    for (size_t i = 0; i < rooms.n; i++) {
        free(rooms.v[i]);
    }
    free(rooms.v);
    return err;
}

/*
 * Seqs grow with time (created_ms) and there is no index by created_ms (v101): the walk reads the
 * oldest rows by seq, the primary key, and ends at the first one new enough (one written with an
 * earlier created_ms after it is kept until then). The newest row stays whatever its age: the
 * store's head (its newest seq) going down reads as a reset store to a resume (a since above it)
 * and to the Redis bus's audit. Each chunk is a transaction of its own, so
 * the store thread's inserts wait for one chunk at most, and a long backlog is never one huge
 * transaction; rows go by plain DELETEs of seq ranges, so triggers on rt_notifications keep what
 * hangs off it right. Then the single reads at or below the highest seq purged go, in chunks as
 * well (rt_reads has no index by seq: one walk of it per chunk, not per chunk of notifications);
 * that takes a read stored meanwhile of a notification just purged too.
 * Read marks stay: a mark above purged seqs still says the same of those left.
 */
int dr_realtime_purge(struct dr_db *db, int64_t before_ms, size_t chunk, int64_t *purged)
{
    struct purge_chunk pc = {.before_ms = before_ms};
    struct dr_db_val lim[1];
    int64_t top = 0, n;
    int err = DR_OK;

    *purged = 0;
    chunk = chunk ? chunk : 1;
    lim[0] = DR_DB_INTV(chunk);
    err = dr__rt_store_head(db, &pc.head);
    while (!err) {
        struct dr_db_tx *tx = NULL;
        n = 0;
        pc.lo = pc.hi = 0;
        err = dr_db_begin(db, &tx);
        if (err) {
            break;
        }
        err =
            dr_db_tx_exec(tx, "SELECT seq, created_ms FROM rt_notifications ORDER BY seq LIMIT $1",
                          lim, 1, purge_row, &pc, NULL);
        err = err == SEQS_ENOUGH ? DR_OK : err;
        if (!err && pc.hi && dr_db_engine(db) == DR_DB_SQLITE) {
            err = purge_inbox_lite(tx, &pc);
        }
        if (!err && pc.hi) {
            struct dr_db_val p[3] = {DR_DB_INTV(pc.lo), DR_DB_INTV(pc.hi), DR_DB_INTV(before_ms)};
            err = dr_db_tx_exec(tx,
                                "DELETE FROM rt_notifications WHERE seq >= $1 AND seq <= $2"
                                " AND created_ms < $3",
                                p, 3, NULL, NULL, &n);
        }
        if (err) {
            dr_db_rollback(tx);
            break;
        }
        err = dr_db_commit(tx);
        if (err) {
            break;
        }
        if (!pc.hi) {
            break;
        }
        *purged += n;
        top = pc.hi;
        if (pc.newer) {
            break;
        }
    }
    while (!err && top > 0) {
        struct dr_db_val p[2] = {DR_DB_INTV(top), DR_DB_INTV(chunk)};
        n = 0;
        err = dr_db_exec(db,
                         "DELETE FROM rt_reads WHERE (user_id, seq) IN"
                         " (SELECT user_id, seq FROM rt_reads WHERE seq <= $1 LIMIT $2)",
                         p, 2, NULL, NULL, &n);
        if (n < (int64_t)chunk) {
            break;
        }
    }
    return err;
}

/* ---- permission ---- */

int dr__rt_may_join_local(const struct dr_jwt_claims *c, const char *room, int *allowed)
{
    *allowed = 0;
    if (!dr_room_valid(room)) {
        return 0; /* decided: no */
    }
    if (c->admin) {
        *allowed = 1;
        return 0;
    }
    for (size_t i = 0; i < c->nrooms; i++) {
        if (c->rooms[i] && strcmp(c->rooms[i], room) == 0) {
            *allowed = 1;
            return 0;
        }
    }
    if (strncmp(room, "user:", 5) == 0) {
        *allowed = c->sub && strcmp(room + 5, c->sub) == 0;
        return 0;
    }
    if (strncmp(room, "org:", 4) == 0) {
        *allowed = c->org && strcmp(room + 4, c->org) == 0;
        return 0;
    }
    return 1; /* meeting:/shipment: need the store */
}

static int table_exists(struct dr_db *db, const char *name)
{
    struct dr_db_val p[1] = {DR_DB_TEXTV(name)};
    int found = 0;

    if (dr_db_engine(db) == DR_DB_SQLITE) {
        dr_db_exec(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1", p, 1,
                   found_row, &found, NULL);
    } else {
        dr_db_exec(db,
                   "SELECT 1 FROM information_schema.tables WHERE table_name = $1"
                   " AND table_schema = ANY (current_schemas(false))",
                   p, 1, found_row, &found, NULL);
    }
    return found;
}

int dr__rt_may_join(struct dr_db *db, const struct dr_jwt_claims *c, const char *room, int *allowed)
{
    const char *email = c->raw ? dr_json_str(c->raw, "email") : NULL;
    int err = DR_OK;

    if (dr__rt_may_join_local(c, room, allowed) == 0 || !c->sub) {
        return DR_OK;
    }
    if (strncmp(room, "meeting:", 8) == 0) {
        struct dr_db_val p[2] = {DR_DB_TEXTV(room + 8), DR_DB_TEXTV(c->sub)};
        if (table_exists(db, "polls")) {
            err =
                dr_db_exec(db, "SELECT 1 FROM polls WHERE poll_id = $1 AND organizer_user_id = $2",
                           p, 2, found_row, allowed, NULL);
        }
        if (!err && !*allowed && email && table_exists(db, "poll_participants")) {
            p[1] = DR_DB_TEXTV(email);
            err = dr_db_exec(db,
                             "SELECT 1 FROM poll_participants WHERE poll_id = $1"
                             " AND lower(email) = lower($2)",
                             p, 2, found_row, allowed, NULL);
        }
    } else if (strncmp(room, "shipment:", 9) == 0 && table_exists(db, "shipments")) {
        struct dr_db_val p[2] = {DR_DB_TEXTV(room + 9), DR_DB_TEXTV(c->sub)};
        err = dr_db_exec(db, "SELECT 1 FROM shipments WHERE tracking_number = $1 AND user_id = $2",
                         p, 2, found_row, allowed, NULL);
    }
    if (err) {
        *allowed = 0;
    }
    return err;
}
