/*
 * Dead letters: what the router gave up on, with the reason and the original message, for the
 * admin API to list, inspect, replay and discard.
 */
#include "dr/store.h"

#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"
#include "store/store_internal.h"

#define DCOLS                                                                                      \
    "id, message_id, topic, processor, reason, error, attempts, first_failure_ms, "                \
    "last_failure_ms, created_ms, message_json"

#define LIST_DEFAULT 100
#define LIST_MAX     1000
#define MAX_FILTERS  10

static const char sql_insert[] =
    "INSERT INTO dead_letters (message_id, topic, processor, reason, error, attempts, "
    "first_failure_ms, last_failure_ms, created_ms, message_json) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";

int dr__dlq_check(const struct dr_dead_letter *d)
{
    if (!d || !d->message_id || !*d->message_id || !d->topic || !*d->topic || !d->reason ||
        !*d->reason || !d->message_json || d->attempts < 0) {
        DR_WARN("store", "bad dead letter: message_id, topic, reason and message_json are required",
                "message_id=%s", d && d->message_id ? d->message_id : "-");
        return DR_EINVAL;
    }
    return DR_OK;
}

/* Row callback: the first column as an integer into *(int64_t *)ctx. */
static int take_int(void *ctx, const struct dr_db_row *row)
{
    *(int64_t *)ctx = dr_db_row_int(row, 0);
    return 0;
}

int dr__dlq_insert(struct dr_store *st, struct dr_db_tx *tx, const struct dr_dead_letter *d,
                   int64_t *id, int64_t *created_ms)
{
    int64_t created = d->created_ms > 0 ? d->created_ms : dr_now_ms();
    struct dr_db_val p[10] = {
        DR_DB_TEXTV(d->message_id),      DR_DB_TEXTV(d->topic),          DR_DB_TEXTV(d->processor),
        DR_DB_TEXTV(d->reason),          DR_DB_TEXTV(d->error),          DR_DB_INTV(d->attempts),
        DR_DB_INTV(d->first_failure_ms), DR_DB_INTV(d->last_failure_ms), DR_DB_INTV(created),
        DR_DB_TEXTV(d->message_json),
    };
    int64_t newid = 0;
    int err = dr__store_exec(st, tx, sql_insert, p, DR_ARRAY_LEN(p), take_int, &newid, NULL);

    if (!err) {
        *id = newid;
        *created_ms = created;
    }
    return err;
}

int dr_store_dlq_put(struct dr_store *st, struct dr_dead_letter *d)
{
    int64_t id, created;
    int err;

    if (!st) {
        return DR_EINVAL;
    }
    err = dr__dlq_check(d);
    if (err) {
        return err;
    }
    err = dr__dlq_insert(st, NULL, d, &id, &created);
    if (!err) {
        d->id = id;
        d->created_ms = created;
    }
    return err;
}

static void fill(struct dr_dead_letter *d, const struct dr_db_row *row)
{
    memset(d, 0, sizeof(*d));
    d->id = dr_db_row_int(row, 0);
    d->message_id = dr_xstrdup(dr_db_row_text(row, 1));
    d->topic = dr_xstrdup(dr_db_row_text(row, 2));
    d->processor = dr_xstrdup(dr_db_row_text(row, 3));
    d->reason = dr_xstrdup(dr_db_row_text(row, 4));
    d->error = dr_xstrdup(dr_db_row_text(row, 5));
    d->attempts = (int)dr_db_row_int(row, 6);
    d->first_failure_ms = dr_db_row_int(row, 7);
    d->last_failure_ms = dr_db_row_int(row, 8);
    d->created_ms = dr_db_row_int(row, 9);
    d->message_json = dr_xstrdup(dr_db_row_text(row, 10));
}

struct dlist {
    struct dr_dead_letter *v;
    size_t n, cap;
};

static int list_row(void *ctx, const struct dr_db_row *row)
{
    struct dlist *l = ctx;

    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = dr_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    fill(&l->v[l->n++], row);
    return 0;
}

static int is_set(const char *s)
{
    return s && *s;
}

/* Appends " AND <clause>$k" and its parameter. The clauses are fixed text from this file: only
 * which of them appear varies, so each combination is one cached statement that can use its
 * index (a catch-all "$k IS NULL OR col = $k" could not). */
static void add_filter(struct dr_buf *sql, struct dr_db_val *p, size_t *np, const char *clause,
                       const char *close, struct dr_db_val v)
{
    p[*np] = v;
    (*np)++;
    dr_buf_printf(sql, " AND %s$%zu%s", clause, *np, close);
}

/* "SELECT <cols> FROM dead_letters WHERE ... ORDER BY id LIMIT limit": the first limit dead
 * letters f (NULL = all) matches; p and *np get its parameters. */
static void select_first(struct dr_buf *sql, const char *cols, struct dr_db_val *p, size_t *np,
                         const struct dr_dlq_filter *f, int64_t limit)
{
    static const struct dr_dlq_filter none = {0};

    if (!f) {
        f = &none;
    }
    p[0] = DR_DB_INTV(f->after_id);
    *np = 1;
    dr_buf_printf(sql, "SELECT %s FROM dead_letters WHERE id > $1", cols);
    if (f->max_id > 0) {
        add_filter(sql, p, np, "id <= ", "", DR_DB_INTV(f->max_id));
    }
    if (is_set(f->topic)) {
        add_filter(sql, p, np, "topic = ", "", DR_DB_TEXTV(f->topic));
    }
    if (is_set(f->processor)) {
        add_filter(sql, p, np, "processor = ", "", DR_DB_TEXTV(f->processor));
    }
    if (is_set(f->reason)) {
        add_filter(sql, p, np, "reason = ", "", DR_DB_TEXTV(f->reason));
    }
    if (is_set(f->error)) {
        /* strpos: exact substring on both engines (SQLite gets it from db_sqlite.c) */
        add_filter(sql, p, np, "strpos(error, ", ") > 0", DR_DB_TEXTV(f->error));
    }
    if (f->since_ms > 0) {
        add_filter(sql, p, np, "created_ms >= ", "", DR_DB_INTV(f->since_ms));
    }
    if (f->until_ms > 0) {
        add_filter(sql, p, np, "created_ms < ", "", DR_DB_INTV(f->until_ms));
    }
    p[*np] = DR_DB_INTV(limit);
    (*np)++;
    dr_buf_printf(sql, " ORDER BY id LIMIT $%zu", *np);
}

int dr_store_dlq_list(struct dr_store *st, const struct dr_dlq_filter *f,
                      struct dr_dead_letter **out, size_t *n)
{
    struct dr_db_val p[MAX_FILTERS];
    struct dlist l = {0};
    struct dr_buf sql;
    size_t np = 0;
    size_t limit;
    int err;

    if (!out || !n) {
        return DR_EINVAL;
    }
    *out = NULL;
    *n = 0;
    if (!st) {
        return DR_EINVAL;
    }
    limit = !f || f->limit == 0 ? LIST_DEFAULT : f->limit > LIST_MAX ? LIST_MAX : f->limit;
    dr_buf_init(&sql, 1024);
    select_first(&sql, DCOLS, p, &np, f, (int64_t)limit);
    if (!sql.data) {
        err = DR_ENOMEM;
        goto out;
    }
    err = dr_db_exec(st->db, sql.data, p, np, list_row, &l, NULL);
    if (err) {
        goto out;
    }
    *out = l.v;
    *n = l.n;
    l.v = NULL;
    l.n = 0;
out:
    dr_dead_letters_free(l.v, l.n);
    dr_buf_cleanup(&sql);
    return err;
}

struct count_last {
    int64_t count, last_id;
};

static int take_count_last(void *ctx, const struct dr_db_row *row)
{
    struct count_last *c = ctx;
    c->count = dr_db_row_int(row, 0);
    c->last_id = dr_db_row_int(row, 1);
    return 0;
}

int dr_store_dlq_count_matching(struct dr_store *st, const struct dr_dlq_filter *f, int64_t max,
                                int64_t *count, int64_t *last_id)
{
    struct dr_db_val p[MAX_FILTERS];
    struct count_last c = {0};
    struct dr_buf sql;
    size_t np = 0;
    int err;

    if (!st || !count || !last_id || max < 1) {
        return DR_EINVAL;
    }
    *count = 0;
    *last_id = 0;
    dr_buf_init(&sql, 1024);
    dr_buf_appends(&sql, "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM (");
    select_first(&sql, "id", p, &np, f, max);
    dr_buf_appends(&sql, ") AS m");
    if (!sql.data) {
        err = DR_ENOMEM;
        goto out;
    }
    err = dr_db_exec(st->db, sql.data, p, np, take_count_last, &c, NULL);
    if (!err) {
        *count = c.count;
        *last_id = c.last_id;
    }
out:
    dr_buf_cleanup(&sql);
    return err;
}

struct getone {
    struct dr_dead_letter *d;
    int found;
};

static int get_row(void *ctx, const struct dr_db_row *row)
{
    struct getone *g = ctx;

    fill(g->d, row);
    g->found = 1;
    return 0;
}

int dr_store_dlq_get(struct dr_store *st, int64_t id, struct dr_dead_letter *out)
{
    struct dr_dead_letter d;
    struct getone g = {.d = &d};
    struct dr_db_val p = DR_DB_INTV(id);
    int err;

    if (!st || !out) {
        return DR_EINVAL;
    }
    err = dr_db_exec(st->db, "SELECT " DCOLS " FROM dead_letters WHERE id = $1", &p, 1, get_row, &g,
                     NULL);
    if (err) {
        if (g.found) {
            dr_dead_letter_cleanup(&d);
        }
        return err;
    }
    if (!g.found) {
        return DR_ENOTFOUND;
    }
    *out = d;
    return DR_OK;
}

int dr_store_dlq_delete(struct dr_store *st, int64_t id)
{
    struct dr_db_val p = DR_DB_INTV(id);
    int64_t changes = 0;
    int err;

    if (!st) {
        return DR_EINVAL;
    }
    err = dr_db_exec(st->db, "DELETE FROM dead_letters WHERE id = $1", &p, 1, NULL, NULL, &changes);
    if (err) {
        return err;
    }
    return changes ? DR_OK : DR_ENOTFOUND;
}

int dr_store_dlq_count(struct dr_store *st, int64_t *count)
{
    if (!st || !count) {
        return DR_EINVAL;
    }
    *count = 0;
    return dr_db_exec(st->db, "SELECT COUNT(*) FROM dead_letters", NULL, 0, take_int, count,
                      NULL);
}

int dr_store_dlq_purge(struct dr_store *st, int64_t before_ms, int64_t *purged)
{
    struct dr_db_val p = DR_DB_INTV(before_ms);

    if (purged) {
        *purged = 0;
    }
    if (!st) {
        return DR_EINVAL;
    }
    return dr_db_exec(st->db, "DELETE FROM dead_letters WHERE created_ms < $1", &p, 1, NULL, NULL,
                      purged);
}
