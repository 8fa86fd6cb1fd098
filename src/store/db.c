/*
 * dr_db front end: picks the engine from the URL, checks arguments, keeps the transaction rule
 * common to both engines (a failed statement poisons the transaction, see dr_db_commit) and
 * runs migrations.
 */
#include "dr/db.h"

#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"
#include "store/db_internal.h"

/* pg_advisory_xact_lock key: instances starting together migrate one at a time ("drmig") */
#define MIGRATE_LOCK_KEY 0x64726d6967LL

void dr__db_clean_msg(const char *in, char *out, size_t outsz)
{
    size_t i = 0;

    if (!outsz) {
        return;
    }
    for (; in && *in && i + 1 < outsz; in++) {
        unsigned char ch = (unsigned char)*in;
        out[i++] = ch == '"' ? '\'' : (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    while (i > 0 && out[i - 1] == ' ') {
        i--;
    }
    out[i] = '\0';
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int dr_db_open(const char *url, int pool_size, struct dr_db **out)
{
    struct dr_db *db;
    const char *path;
    int err;

    if (!out) {
        return DR_EINVAL;
    }
    *out = NULL;
    if (!url || !*url) {
        DR_ERROR("db", "no database url", "engine=-");
        return DR_EINVAL;
    }
    db = dr_xcalloc(1, sizeof(*db));
    if (has_prefix(url, "postgresql://") || has_prefix(url, "postgres://")) {
        db->engine = DR_DB_POSTGRES;
        err = dr__pg_open(url, pool_size, &db->pg);
    } else {
        path = url;
        if (has_prefix(path, "sqlite:")) {
            path += strlen("sqlite:");
            if (has_prefix(path, "//")) { /* sqlite:///abs/path, sqlite://rel/path */
                path += 2;
            }
        }
        db->engine = DR_DB_SQLITE;
        err = dr__lite_open(path, pool_size, &db->lite);
    }
    if (err) {
        free(db);
        return err;
    }
    *out = db;
    return DR_OK;
}

void dr_db_close(struct dr_db *db)
{
    if (!db) {
        return;
    }
    dr__lite_close(db->lite);
    dr__pg_close(db->pg);
    free(db);
}

enum dr_db_engine dr_db_engine(const struct dr_db *db)
{
    return db->engine;
}

int dr_db_err_permanent(int err)
{
    switch (err) {
    case DR_EINVAL:
    case DR_EEXIST:
    case DR_ETOOBIG:
        return 1;
    default:
        return 0;
    }
}

/* Tells a callback's own stop value apart from a statement failure. */
struct tramp {
    dr_db_row_cb cb;
    void *ctx;
    int stopped;
};

static int tramp_cb(void *arg, const struct dr_db_row *row)
{
    struct tramp *t = arg;
    int r = t->cb(t->ctx, row);

    t->stopped = r != 0;
    return r;
}

static int check_args(const char *sql, const struct dr_db_val *params, size_t nparams)
{
    if (!sql || (nparams && !params)) {
        DR_WARN("db", "bad arguments", "sql=%s nparams=%zu", sql ? "set" : "null", nparams);
        return DR_EINVAL;
    }
    return DR_OK;
}

int dr_db_exec(struct dr_db *db, const char *sql, const struct dr_db_val *params, size_t nparams,
               dr_db_row_cb cb, void *ctx, int64_t *changes)
{
    int err;

    if (changes) {
        *changes = 0;
    }
    if (!db) {
        return DR_EINVAL;
    }
    err = check_args(sql, params, nparams);
    if (err) {
        return err;
    }
    if (db->engine == DR_DB_POSTGRES) {
        return dr__pg_exec(db->pg, sql, params, nparams, cb, ctx, changes);
    }
    return dr__lite_exec(db->lite, sql, params, nparams, cb, ctx, changes);
}

int dr_db_begin(struct dr_db *db, struct dr_db_tx **tx)
{
    struct dr_db_tx *t;
    int err;

    if (!tx) {
        return DR_EINVAL;
    }
    *tx = NULL;
    if (!db) {
        return DR_EINVAL;
    }
    t = dr_xcalloc(1, sizeof(*t));
    t->db = db;
    if (db->engine == DR_DB_POSTGRES) {
        err = dr__pg_begin(db->pg, &t->pg);
    } else {
        err = dr__lite_begin(db->lite, &t->lite);
    }
    if (err) {
        free(t);
        return err;
    }
    *tx = t;
    return DR_OK;
}

int dr_db_tx_exec(struct dr_db_tx *tx, const char *sql, const struct dr_db_val *params,
                  size_t nparams, dr_db_row_cb cb, void *ctx, int64_t *changes)
{
    struct tramp t = {.cb = cb, .ctx = ctx};
    dr_db_row_cb rcb = cb ? tramp_cb : NULL;
    int err;

    if (changes) {
        *changes = 0;
    }
    if (!tx) {
        return DR_EINVAL;
    }
    if (tx->err) {
        return tx->err;
    }
    err = check_args(sql, params, nparams);
    if (!err) {
        if (tx->db->engine == DR_DB_POSTGRES) {
            err = dr__pg_conn_exec(tx->pg, sql, params, nparams, rcb, &t, changes);
        } else {
            err = dr__lite_conn_exec(tx->lite, sql, params, nparams, rcb, &t, changes);
        }
    }
    if (err && !t.stopped) {
        tx->err = err;
    }
    return err;
}

int dr__db_tx_script(struct dr_db_tx *tx, const char *sql)
{
    int err;

    if (tx->err) {
        return tx->err;
    }
    if (tx->db->engine == DR_DB_POSTGRES) {
        err = dr__pg_conn_script(tx->pg, sql);
    } else {
        err = dr__lite_conn_script(tx->lite, sql);
    }
    if (err) {
        tx->err = err;
    }
    return err;
}

int dr_db_commit(struct dr_db_tx *tx)
{
    int err;

    if (!tx) {
        return DR_EINVAL;
    }
    if (tx->err) {
        DR_DEBUG("db", "commit of a failed transaction: rolled back", "error=\"%s\"",
                 dr_strerror(tx->err));
        err = tx->err;
        dr_db_rollback(tx);
        return err;
    }
    if (tx->db->engine == DR_DB_POSTGRES) {
        err = dr__pg_commit(tx->db->pg, tx->pg);
    } else {
        err = dr__lite_commit(tx->db->lite, tx->lite);
    }
    free(tx);
    return err;
}

void dr_db_rollback(struct dr_db_tx *tx)
{
    if (!tx) {
        return;
    }
    if (tx->db->engine == DR_DB_POSTGRES) {
        dr__pg_rollback(tx->db->pg, tx->pg);
    } else {
        dr__lite_rollback(tx->db->lite, tx->lite);
    }
    free(tx);
}

int dr_db_row_is_null(const struct dr_db_row *row, int col)
{
    return row->st ? dr__lite_row_is_null(row, col) : dr__pg_row_is_null(row, col);
}

int64_t dr_db_row_int(const struct dr_db_row *row, int col)
{
    return row->st ? dr__lite_row_int(row, col) : dr__pg_row_int(row, col);
}

const char *dr_db_row_text(const struct dr_db_row *row, int col)
{
    return row->st ? dr__lite_row_text(row, col) : dr__pg_row_text(row, col);
}

const void *dr_db_row_blob(const struct dr_db_row *row, int col, size_t *len)
{
    size_t dummy;

    return row->st ? dr__lite_row_blob(row, col, len ? len : &dummy)
                   : dr__pg_row_blob(row, col, len ? len : &dummy);
}

/* ---- migrations ---- */

static const char migrations_ddl[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)";

struct versions {
    int64_t *v;
    size_t n, cap;
};

static int collect_version(void *ctx, const struct dr_db_row *row)
{
    struct versions *vs = ctx;

    if (vs->n == vs->cap) {
        vs->cap = vs->cap ? vs->cap * 2 : 16;
        vs->v = dr_xrealloc(vs->v, vs->cap * sizeof(*vs->v));
    }
    vs->v[vs->n++] = dr_db_row_int(row, 0);
    return 0;
}

static int has_version(const struct versions *vs, int64_t v)
{
    for (size_t i = 0; i < vs->n; i++) {
        if (vs->v[i] == v) {
            return 1;
        }
    }
    return 0;
}

/* Begins a transaction that holds the migration lock (PostgreSQL; SQLite's BEGIN IMMEDIATE is
 * already exclusive between writers). */
static int begin_locked(struct dr_db *db, struct dr_db_tx **tx)
{
    struct dr_db_val key = DR_DB_INTV(MIGRATE_LOCK_KEY);
    int err = dr_db_begin(db, tx);

    if (err || db->engine != DR_DB_POSTGRES) {
        return err;
    }
    err = dr_db_tx_exec(*tx, "SELECT pg_advisory_xact_lock($1)", &key, 1, NULL, NULL, NULL);
    if (err) {
        dr_db_rollback(*tx);
        *tx = NULL;
    }
    return err;
}

static int apply_one(struct dr_db *db, const struct dr_db_migration *m)
{
    const char *sql = db->engine == DR_DB_POSTGRES ? m->postgres_sql : m->sqlite_sql;
    struct dr_db_val params[3] = {DR_DB_INTV(m->version), DR_DB_TEXTV(m->name ? m->name : ""),
                                  DR_DB_INTV(dr_now_ms())};
    struct versions found = {0};
    struct dr_db_tx *tx = NULL;
    int err;

    err = begin_locked(db, &tx);
    if (err) {
        goto out;
    }
    /* another instance may have applied it while we waited for the lock */
    err = dr_db_tx_exec(tx, "SELECT version FROM schema_migrations WHERE version = $1", params, 1,
                        collect_version, &found, NULL);
    if (err || found.n) {
        goto out;
    }
    err = dr__db_tx_script(tx, sql);
    if (!err) {
        err = dr_db_tx_exec(tx,
                            "INSERT INTO schema_migrations (version, name, applied_ms) "
                            "VALUES ($1, $2, $3)",
                            params, 3, NULL, NULL, NULL);
    }
    if (err) {
        DR_ERROR("db", "migration failed", "version=%d name=\"%s\" error=\"%s\"", m->version,
                 m->name ? m->name : "", dr_strerror(err));
        goto out;
    }
    err = dr_db_commit(tx);
    tx = NULL;
    if (!err) {
        DR_INFO("db", "migration applied", "version=%d name=\"%s\"", m->version,
                m->name ? m->name : "");
    }
out:
    if (tx) {
        if (err) {
            dr_db_rollback(tx);
        } else {
            err = dr_db_commit(tx);
        }
    }
    free(found.v);
    return err;
}

/* The newest of done in the range of m[0] (see dr_db_schema_newer()) above m[n-1], or 0. */
static int64_t newest_in_range(const struct versions *done, const struct dr_db_migration *m,
                               size_t n)
{
    int64_t lo = (m[0].version / 100) * 100, hi = lo + 99, latest = 0;

    for (size_t i = 0; i < done->n; i++) {
        if (done->v[i] >= lo && done->v[i] <= hi && done->v[i] > latest) {
            latest = done->v[i];
        }
    }
    return latest > m[n - 1].version ? latest : 0;
}

int64_t dr_db_schema_newer(struct dr_db *db, const struct dr_db_migration *m, size_t n)
{
    struct versions done = {0};
    int64_t latest = 0;

    if (!db || !m || n == 0) {
        return 0;
    }
    if (dr_db_exec(db, "SELECT version FROM schema_migrations ORDER BY version", NULL, 0,
                   collect_version, &done, NULL) == DR_OK) {
        latest = newest_in_range(&done, m, n);
    }
    free(done.v);
    return latest;
}

int dr_db_migrate(struct dr_db *db, const struct dr_db_migration *m, size_t n)
{
    struct versions done = {0};
    struct dr_db_tx *tx = NULL;
    int64_t latest = 0;
    int err = DR_OK;

    if (!db || (n && !m)) {
        return DR_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *sql = db->engine == DR_DB_POSTGRES ? m[i].postgres_sql : m[i].sqlite_sql;
        if (m[i].version <= 0 || (i > 0 && m[i].version <= m[i - 1].version) || !sql) {
            DR_ERROR("db", "bad migration list: versions must increase, sql must be set",
                     "index=%zu version=%d", i, m[i].version);
            return DR_EINVAL;
        }
    }
    err = begin_locked(db, &tx);
    if (!err) {
        dr__db_tx_script(tx, migrations_ddl);
        err = dr_db_commit(tx); /* returns the script's error, if any, after rolling back */
    }
    if (!err) {
        err = dr_db_exec(db, "SELECT version FROM schema_migrations ORDER BY version", NULL, 0,
                         collect_version, &done, NULL);
    }
    for (size_t i = 0; !err && i < n; i++) {
        if (!has_version(&done, m[i].version)) {
            err = apply_one(db, &m[i]);
        }
    }
    if (!err && n) {
        latest = newest_in_range(&done, m, n);
        if (latest) {
            DR_WARN("db", "database schema is newer than this program", "db_version=%lld",
                    (long long)latest);
        }
    }
    free(done.v);
    return err;
}

const size_t dr_db_chunks[DR_DB_NCHUNKS] = {DR_DB_CHUNK_MAX, 16, 4, 1};

size_t dr_db_chunk_index(size_t left)
{
    size_t k = 0;

    while (k + 1 < DR_DB_NCHUNKS && dr_db_chunks[k] > left) {
        k++;
    }
    return k;
}

char *dr_db_rows_sql(const char *prefix, const char *row, size_t nrows, const char *suffix)
{
    struct dr_buf b;
    size_t n = 1;

    /* the limit: every '?' grows to at most "$" and 20 digits */
    dr_buf_init(&b, strlen(prefix) + nrows * (strlen(row) * 21 + 2) + strlen(suffix) + 1);
    dr_buf_appends(&b, prefix);
    for (size_t r = 0; r < nrows; r++) {
        if (r) {
            dr_buf_appends(&b, ", ");
        }
        for (const char *c = row; *c; c++) {
            if (*c == '?') {
                dr_buf_printf(&b, "$%zu", n++);
            } else {
                dr_buf_appendc(&b, *c);
            }
        }
    }
    dr_buf_appends(&b, suffix);
    return dr_buf_steal(&b, NULL);
}
