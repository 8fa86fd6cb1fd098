/* The replay_jobs table: a replay job's durable row (see core/replay_db.h). */
#include "core/replay_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/db.h"
#include "dr/err.h"
#include "dr/util.h"

#define RCOLS                                                                                      \
    "id, state, topic, processor, reason, error, since_ms, until_ms, rate, max_count, matched, "   \
    "last_id, cursor_id, replayed, skipped, errors, last_error, started_ms, finished_ms"

/* Finished rows beyond the newest keep ones (by id, as the API lists them) go. */
static const char sql_trim[] =
    "DELETE FROM replay_jobs WHERE state <> 'running' AND id < (SELECT id FROM replay_jobs "
    "WHERE state <> 'running' ORDER BY id DESC LIMIT 1 OFFSET $1)";

static void copy_text(char *dst, size_t dstsz, const char *src)
{
    snprintf(dst, dstsz, "%s", src ? src : "");
}

static void fill(struct dr__replay_row *r, const struct dr_db_row *row)
{
    struct dr_dlq_filter_buf *fb = &r->fb;
    const char *s;

    memset(r, 0, sizeof(*r));
    r->id = dr_db_row_int(row, 0);
    copy_text(r->state, sizeof(r->state), dr_db_row_text(row, 1));
    if ((s = dr_db_row_text(row, 2))) {
        copy_text(fb->topic, sizeof(fb->topic), s);
        fb->f.topic = fb->topic;
    }
    if ((s = dr_db_row_text(row, 3))) {
        copy_text(fb->processor, sizeof(fb->processor), s);
        fb->f.processor = fb->processor;
    }
    if ((s = dr_db_row_text(row, 4))) {
        copy_text(fb->reason, sizeof(fb->reason), s);
        fb->f.reason = fb->reason;
    }
    if ((s = dr_db_row_text(row, 5))) {
        copy_text(fb->error, sizeof(fb->error), s);
        fb->f.error = fb->error;
    }
    fb->f.since_ms = dr_db_row_int(row, 6);
    fb->f.until_ms = dr_db_row_int(row, 7);
    s = dr_db_row_text(row, 8);
    r->rate = s ? strtod(s, NULL) : 0;
    r->limit = dr_db_row_int(row, 9);
    r->matched = dr_db_row_int(row, 10);
    fb->f.max_id = dr_db_row_int(row, 11);
    fb->f.after_id = dr_db_row_int(row, 12);
    r->replayed = dr_db_row_int(row, 13);
    r->skipped = dr_db_row_int(row, 14);
    r->errors = dr_db_row_int(row, 15);
    copy_text(r->last_error, sizeof(r->last_error), dr_db_row_text(row, 16));
    r->started_ms = dr_db_row_int(row, 17);
    r->finished_ms = dr_db_row_int(row, 18);
}

void dr__replay_row_relink(struct dr__replay_row *r)
{
    struct dr_dlq_filter_buf *fb = &r->fb;

    fb->f.topic = fb->f.topic ? fb->topic : NULL;
    fb->f.processor = fb->f.processor ? fb->processor : NULL;
    fb->f.reason = fb->f.reason ? fb->reason : NULL;
    fb->f.error = fb->f.error ? fb->error : NULL;
}

/* Rows read into a growing array: their filters point into it once it stops moving. */
struct rows {
    struct dr__replay_row *v;
    size_t n, cap;
};

static int add_row(void *ctx, const struct dr_db_row *row)
{
    struct rows *l = ctx;

    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = dr_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    fill(&l->v[l->n++], row);
    return 0;
}

static void relink_all(struct rows *l)
{
    for (size_t i = 0; i < l->n; i++) {
        dr__replay_row_relink(&l->v[i]);
    }
}

static int take_int(void *ctx, const struct dr_db_row *row)
{
    *(int64_t *)ctx = dr_db_row_int(row, 0);
    return 0;
}

int dr__replay_row_running(const struct dr__replay_row *r)
{
    return strcmp(r->state, "running") == 0;
}

/* pg_advisory_xact_lock key of the transactions that start a running job ("drreplay") */
#define REPLAY_START_LOCK 0x64727265706c6179LL

int dr__replay_db_insert(struct dr_store *st, struct dr__replay_row *r, const char *owner,
                         int max_running, int keep_finished)
{
    static const char sql_running[] = "SELECT COUNT(*) FROM replay_jobs WHERE state = 'running'";
    static const char sql_insert[] =
        "INSERT INTO replay_jobs (state, topic, processor, reason, error, since_ms, until_ms, "
        "rate, max_count, matched, last_id, cursor_id, replayed, skipped, errors, last_error, "
        "started_ms, finished_ms, owner, heartbeat_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
        "$9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) RETURNING id";
    const struct dr_dlq_filter *f = &r->fb.f;
    struct dr_db_tx *tx = NULL;
    int64_t running = 0, id = 0;
    char rate[32];
    const char *ratep = rate;
    int err;

    snprintf(rate, sizeof(rate), "%.17g", r->rate);
    struct dr_db_val p[20] = {
        DR_DB_TEXTV(r->state),     DR_DB_TEXTV(f->topic),
        DR_DB_TEXTV(f->processor), DR_DB_TEXTV(f->reason),
        DR_DB_TEXTV(f->error),     DR_DB_INTV(f->since_ms),
        DR_DB_INTV(f->until_ms),   DR_DB_TEXTV(ratep),
        DR_DB_INTV(r->limit),      DR_DB_INTV(r->matched),
        DR_DB_INTV(f->max_id),     DR_DB_INTV(f->after_id),
        DR_DB_INTV(r->replayed),   DR_DB_INTV(r->skipped),
        DR_DB_INTV(r->errors),     r->last_error[0] ? DR_DB_TEXTV(r->last_error) : DR_DB_NULLV,
        DR_DB_INTV(r->started_ms), DR_DB_INTV(r->finished_ms),
        DR_DB_TEXTV(owner),        DR_DB_INTV(dr_now_ms()),
    };
    struct dr_db_val keep = DR_DB_INTV(keep_finished - 1);

    /* One transaction. On SQLite it holds the only writer, so the count cannot go stale before
     * the insert; on PostgreSQL the starts of every instance take a transaction lock first, so
     * two at once cannot both see room for one more. */
    err = dr_db_begin(dr_store_db(st), &tx);
    if (err) {
        return err;
    }
    if (dr__replay_row_running(r) && dr_db_engine(dr_store_db(st)) == DR_DB_POSTGRES) {
        struct dr_db_val key = DR_DB_INTV(REPLAY_START_LOCK);
        err = dr_db_tx_exec(tx, "SELECT pg_advisory_xact_lock($1)", &key, 1, NULL, NULL, NULL);
    }
    if (!err && dr__replay_row_running(r)) {
        err = dr_db_tx_exec(tx, sql_running, NULL, 0, take_int, &running, NULL);
        if (!err && running >= max_running) {
            err = DR_ETOOBIG;
        }
    }
    if (!err) {
        err = dr_db_tx_exec(tx, sql_insert, p, DR_ARRAY_LEN(p), take_int, &id, NULL);
    }
    if (!err && !dr__replay_row_running(r)) {
        err = dr_db_tx_exec(tx, sql_trim, &keep, 1, NULL, NULL, NULL);
    }
    if (err) {
        dr_db_rollback(tx);
        return err;
    }
    err = dr_db_commit(tx);
    if (!err) {
        r->id = id;
    }
    return err;
}

int dr__replay_db_update(struct dr_store *st, const struct dr__replay_row *r, const char *owner,
                         int keep_finished, int *lost)
{
    static const char sql[] =
        "UPDATE replay_jobs SET cursor_id = $1, replayed = $2, skipped = $3, errors = $4, "
        "last_error = $5, state = $6, finished_ms = $7, heartbeat_ms = $8 "
        "WHERE id = $9 AND owner = $10 AND state = 'running'";
    struct dr_db_val p[10] = {
        DR_DB_INTV(r->fb.f.after_id),
        DR_DB_INTV(r->replayed),
        DR_DB_INTV(r->skipped),
        DR_DB_INTV(r->errors),
        r->last_error[0] ? DR_DB_TEXTV(r->last_error) : DR_DB_NULLV,
        DR_DB_TEXTV(r->state),
        DR_DB_INTV(r->finished_ms),
        DR_DB_INTV(dr_now_ms()),
        DR_DB_INTV(r->id),
        DR_DB_TEXTV(owner),
    };
    struct dr_db_val keep = DR_DB_INTV(keep_finished - 1);
    int64_t changes = 0;
    int err;

    *lost = 0;
    err = dr_db_exec(dr_store_db(st), sql, p, DR_ARRAY_LEN(p), NULL, NULL, &changes);
    if (err) {
        return err;
    }
    *lost = changes == 0;
    if (!*lost && !dr__replay_row_running(r)) {
        /* a failed trim leaves a few rows more until the next job ends */
        (void)dr_db_exec(dr_store_db(st), sql_trim, &keep, 1, NULL, NULL, NULL);
    }
    return DR_OK;
}

int dr__replay_db_owned(struct dr_store *st, int64_t id, const char *owner, int *ours)
{
    static const char sql[] =
        "SELECT COUNT(*) FROM replay_jobs WHERE id = $1 AND owner = $2 AND state = 'running'";
    struct dr_db_val p[2] = {DR_DB_INTV(id), DR_DB_TEXTV(owner)};
    int64_t n = 0;
    int err = dr_db_exec(dr_store_db(st), sql, p, DR_ARRAY_LEN(p), take_int, &n, NULL);

    *ours = !err && n == 1;
    return err;
}

int dr__replay_db_get(struct dr_store *st, int64_t id, struct dr__replay_row *r)
{
    static const char sql[] = "SELECT " RCOLS " FROM replay_jobs WHERE id = $1";
    struct dr_db_val p = DR_DB_INTV(id);
    struct rows l = {0};
    int err = dr_db_exec(dr_store_db(st), sql, &p, 1, add_row, &l, NULL);

    if (!err && l.n == 0) {
        err = DR_ENOTFOUND;
    }
    if (!err) {
        *r = l.v[0];
        dr__replay_row_relink(r);
    }
    free(l.v);
    return err;
}

int dr__replay_db_list(struct dr_store *st, struct dr__replay_row **out, size_t *n)
{
    static const char sql[] = "SELECT " RCOLS " FROM replay_jobs ORDER BY id DESC";
    struct rows l = {0};
    int err = dr_db_exec(dr_store_db(st), sql, NULL, 0, add_row, &l, NULL);

    if (err) {
        free(l.v);
        l.v = NULL;
        l.n = 0;
    }
    relink_all(&l);
    *out = l.v;
    *n = l.n;
    return err;
}

int dr__replay_db_cancel(struct dr_store *st, int64_t id, int64_t now_ms, int keep_finished,
                         struct dr__replay_row *r, int *ended)
{
    static const char sql[] = "UPDATE replay_jobs SET state = 'cancelled', finished_ms = $1 "
                              "WHERE id = $2 AND state = 'running'";
    struct dr_db_val p[2] = {DR_DB_INTV(now_ms), DR_DB_INTV(id)};
    struct dr_db_val keep = DR_DB_INTV(keep_finished - 1);
    int64_t changes = 0;
    int err = dr_db_exec(dr_store_db(st), sql, p, DR_ARRAY_LEN(p), NULL, NULL, &changes);

    *ended = 0;
    if (err) {
        return err;
    }
    *ended = changes == 1;
    if (changes) {
        (void)dr_db_exec(dr_store_db(st), sql_trim, &keep, 1, NULL, NULL, NULL);
    }
    return dr__replay_db_get(st, id, r);
}

int dr__replay_db_heartbeat(struct dr_store *st, const char *owner, int64_t now_ms)
{
    static const char sql[] =
        "UPDATE replay_jobs SET heartbeat_ms = $1 WHERE owner = $2 AND state = 'running'";
    struct dr_db_val p[2] = {DR_DB_INTV(now_ms), DR_DB_TEXTV(owner)};

    return dr_db_exec(dr_store_db(st), sql, p, DR_ARRAY_LEN(p), NULL, NULL, NULL);
}

int dr__replay_db_claim(struct dr_store *st, const char *owner, int restart, int64_t now_ms,
                        int64_t stale_ms, size_t max, struct dr__replay_row **out, size_t *n)
{
    static const char sql_find[] =
        "SELECT " RCOLS " FROM replay_jobs WHERE state = 'running' AND (heartbeat_ms < $1 OR "
        "owner = $2) ORDER BY id LIMIT $3";
    /* the condition again: of two instances that found the row stale, one updates it */
    static const char sql_take[] =
        "UPDATE replay_jobs SET owner = $1, heartbeat_ms = $2 WHERE id = $3 AND "
        "state = 'running' AND (heartbeat_ms < $4 OR owner = $5)";
    int64_t before = now_ms - stale_ms;
    const char *previous = restart ? owner : NULL; /* NULL: "owner = NULL" matches nothing */
    struct dr_db_val pf[3] = {DR_DB_INTV(before), DR_DB_TEXTV(previous), DR_DB_INTV(max)};
    struct rows found = {0};
    size_t taken = 0;
    int err;

    *out = NULL;
    *n = 0;
    err = dr_db_exec(dr_store_db(st), sql_find, pf, DR_ARRAY_LEN(pf), add_row, &found, NULL);
    for (size_t i = 0; !err && i < found.n; i++) {
        struct dr_db_val pt[5] = {DR_DB_TEXTV(owner), DR_DB_INTV(now_ms), DR_DB_INTV(found.v[i].id),
                                  DR_DB_INTV(before), DR_DB_TEXTV(previous)};
        int64_t changes = 0;
        err = dr_db_exec(dr_store_db(st), sql_take, pt, DR_ARRAY_LEN(pt), NULL, NULL, &changes);
        if (!err && changes == 1) {
            found.v[taken++] = found.v[i];
        }
    }
    found.n = taken;
    relink_all(&found);
    if (taken == 0) {
        free(found.v);
        found.v = NULL;
    }
    /* rows taken before an error are returned: they are this instance's now */
    *out = found.v;
    *n = taken;
    return taken ? DR_OK : err;
}
