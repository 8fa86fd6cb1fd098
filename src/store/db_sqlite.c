/*
 * SQLite engine of dr_db.
 *
 * Concurrency: SQLite allows one writer at a time, so a dr__lite holds exactly one writer
 * connection behind a mutex plus N read-only connections in a pool. Under WAL the readers see
 * the last committed state and never wait for the writer. dr_db_exec() prepares the statement
 * on a reader and runs it there when sqlite3_stmt_readonly() says it cannot write; everything
 * else, and every transaction, runs on the writer. ":memory:" has no readers (each connection
 * would be a different database).
 *
 * Every connection caches its prepared statements keyed by SQL text: the router runs the same
 * few statements at a high rate and preparing costs more than running them.
 */
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"
#include "store/db_internal.h"

#define CACHE_BUCKETS 64
/* statements cached per connection; beyond that they are prepared and finalized per call */
#define CACHE_MAX       256
#define BUSY_TIMEOUT_MS 5000
#define DEFAULT_POOL    4    /* 1 writer + 3 readers */
#define CKPT_PAGES      1000 /* WAL size that asks for a checkpoint (SQLite's own default) */
#define CKPT_GAP_MS     100
#define WAL_MAX_MB      64 /* default of DR_SQLITE_WAL_MAX_MB */

struct cached {
    struct cached *next;
    uint64_t hash;
    char *sql;
    sqlite3_stmt *st;
    int ordered; /* parameter N is named "$N" for every N: bind by index */
};

struct dr__lite_conn {
    sqlite3 *h;
    struct cached *buckets[CACHE_BUCKETS];
    size_t ncached;
    struct dr__lite_conn *next_free;
};

struct dr__lite {
    pthread_mutex_t wmu; /* held from begin to commit/rollback, or for one write statement */
    struct dr__lite_conn writer;
    pthread_mutex_t rmu;
    pthread_cond_t rcv;
    struct dr__lite_conn *readers;
    int nreaders;
    struct dr__lite_conn *free_readers;
    /* background checkpoints (file databases only), see ckpt_main() */
    struct dr__lite_conn ckpt;
    pthread_t ckpt_thread;
    int ckpt_running;
    pthread_mutex_t cmu;
    pthread_cond_t ccv;
    int ckpt_wanted, ckpt_stop;
    int wal_cap_pages; /* past this a checkpoint holds the writer off (DR_SQLITE_WAL_MAX_MB) */
};

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return DR_OK;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
            return DR_EEXIST;
        }
        return DR_EINVAL;
    case SQLITE_NOMEM:
        return DR_ENOMEM;
    case SQLITE_TOOBIG:
        return DR_ETOOBIG;
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return DR_EINVAL;
    default:
        return DR_EIO;
    }
}

static int fail(sqlite3 *h, int rc, const char *what)
{
    char msg[256];
    int err = map_rc(rc);

    dr__db_clean_msg(h ? sqlite3_errmsg(h) : sqlite3_errstr(rc), msg, sizeof(msg));
    if (err == DR_EEXIST) {
        DR_DEBUG("db", "sqlite constraint", "op=%s code=%d error=\"%s\"", what, rc, msg);
    } else {
        DR_WARN("db", "sqlite failure", "op=%s code=%d error=\"%s\"", what, rc, msg);
    }
    return err;
}

/* strpos(haystack, needle): 1-based character position of needle, 0 if absent, NULL if either
 * is NULL. PostgreSQL has it built in; registering it lets substring filters share SQL without
 * LIKE's wildcard escaping and its engine-specific case rules. */
static void fn_strpos(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    const unsigned char *h, *n, *hit;
    int hlen, nlen;
    int64_t pos = 1;

    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
        sqlite3_result_null(cx);
        return;
    }
    h = sqlite3_value_text(argv[0]);
    hlen = sqlite3_value_bytes(argv[0]);
    n = sqlite3_value_text(argv[1]);
    nlen = sqlite3_value_bytes(argv[1]);
    if (!h || !n) {
        sqlite3_result_error_nomem(cx);
        return;
    }
    hit = memmem(h, (size_t)hlen, n, (size_t)nlen);
    if (!hit) {
        sqlite3_result_int64(cx, 0);
        return;
    }
    for (const unsigned char *p = h; p < hit; p++) {
        if ((*p & 0xc0) != 0x80) {
            pos++;
        }
    }
    sqlite3_result_int64(cx, pos);
}

static void cache_clear(struct dr__lite_conn *c)
{
    for (int i = 0; i < CACHE_BUCKETS; i++) {
        struct cached *e = c->buckets[i];
        while (e) {
            struct cached *next = e->next;
            sqlite3_finalize(e->st);
            free(e->sql);
            free(e);
            e = next;
        }
        c->buckets[i] = NULL;
    }
    c->ncached = 0;
}

/* "$N" without snprintf: apply binds thousands of parameters per batch. */
static void param_name(size_t n, char out[24])
{
    char digits[21];
    size_t k = 0, i = 0;

    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n && k < sizeof(digits));
    out[i++] = '$';
    while (k) {
        out[i++] = digits[--k];
    }
    out[i] = '\0';
}

/* 1 when parameter N is "$N" for every N, as dr/db.h asks: then binding needs no name lookup
 * (sqlite3_bind_parameter_index is a linear search, quadratic over a multi-row insert). */
static int params_ordered(sqlite3_stmt *st)
{
    char name[24];
    int n = sqlite3_bind_parameter_count(st);

    for (int i = 1; i <= n; i++) {
        const char *at = sqlite3_bind_parameter_name(st, i);
        param_name((size_t)i, name);
        if (!at || strcmp(at, name) != 0) {
            return 0;
        }
    }
    return 1;
}

struct prepared {
    sqlite3_stmt *st;
    int temp;    /* not cached: finalize after use */
    int ordered; /* see params_ordered() */
};

/*
 * The prepared statement for sql on c. p->temp is set when the statement is not cached (cache
 * full, or the cached one is still running because a row callback re-entered).
 */
static int get_stmt(struct dr__lite_conn *c, const char *sql, int quiet, struct prepared *p)
{
    uint64_t hash = dr_hash_str(sql);
    struct cached **slot = &c->buckets[hash % CACHE_BUCKETS];
    const char *tail = NULL;
    int busy_hit = 0;
    int rc;

    memset(p, 0, sizeof(*p));
    for (struct cached *e = *slot; e; e = e->next) {
        if (e->hash == hash && strcmp(e->sql, sql) == 0) {
            if (!sqlite3_stmt_busy(e->st)) {
                p->st = e->st;
                p->ordered = e->ordered;
                return DR_OK;
            }
            busy_hit = 1;
            break;
        }
    }
    rc = sqlite3_prepare_v3(c->h, sql, -1, busy_hit ? 0 : SQLITE_PREPARE_PERSISTENT, &p->st, &tail);
    if (rc != SQLITE_OK) {
        int err = quiet ? map_rc(rc) : fail(c->h, rc, "prepare");
        p->st = NULL;
        return (rc & 0xff) == SQLITE_ERROR ? DR_EINVAL : err;
    }
    if (!p->st) {
        if (!quiet) {
            DR_WARN("db", "empty statement", "engine=sqlite");
        }
        return DR_EINVAL;
    }
    while (tail &&
           (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r' || *tail == ';')) {
        tail++;
    }
    if (tail && *tail) {
        if (!quiet) {
            DR_WARN("db", "several statements in one call", "engine=sqlite");
        }
        sqlite3_finalize(p->st);
        p->st = NULL;
        return DR_EINVAL;
    }
    p->ordered = params_ordered(p->st);
    if (busy_hit || c->ncached >= CACHE_MAX) {
        p->temp = 1;
        return DR_OK;
    }
    struct cached *e = dr_xcalloc(1, sizeof(*e));
    e->hash = hash;
    e->sql = dr_xstrdup(sql);
    e->st = p->st;
    e->ordered = p->ordered;
    e->next = *slot;
    *slot = e;
    c->ncached++;
    return DR_OK;
}

static void put_stmt(struct prepared *p)
{
    if (p->temp) {
        sqlite3_finalize(p->st);
    }
    p->st = NULL;
}

static int bind_params(const struct prepared *p, const struct dr_db_val *params, size_t nparams)
{
    sqlite3_stmt *st = p->st;
    char name[24];

    if ((size_t)sqlite3_bind_parameter_count(st) != nparams) {
        DR_WARN("db", "parameter count mismatch", "engine=sqlite expected=%d given=%zu",
                sqlite3_bind_parameter_count(st), nparams);
        return DR_EINVAL;
    }
    for (size_t i = 0; i < nparams; i++) {
        const struct dr_db_val *v = &params[i];
        int idx = (int)(i + 1);
        int rc;

        if (!p->ordered) {
            param_name(i + 1, name);
            idx = sqlite3_bind_parameter_index(st, name);
            if (idx == 0) {
                DR_WARN("db", "parameter missing from SQL", "engine=sqlite param=%s", name);
                return DR_EINVAL;
            }
        }
        switch (v->type) {
        case DR_DB_NULL:
            rc = sqlite3_bind_null(st, idx);
            break;
        case DR_DB_INT:
            rc = sqlite3_bind_int64(st, idx, v->i);
            break;
        case DR_DB_TEXT:
            if (!v->p) {
                DR_WARN("db", "TEXT parameter without a pointer", "param=%zu", i + 1);
                return DR_EINVAL;
            }
            rc = sqlite3_bind_text64(st, idx, v->p, v->len ? v->len : strlen(v->p), SQLITE_STATIC,
                                     SQLITE_UTF8);
            break;
        case DR_DB_BLOB:
            if (!v->p && v->len) {
                DR_WARN("db", "BLOB parameter without a pointer", "param=%zu", i + 1);
                return DR_EINVAL;
            }
            /* bind_blob(NULL) would bind SQL NULL; an empty blob is a value */
            rc = v->len ? sqlite3_bind_blob64(st, idx, v->p, v->len, SQLITE_STATIC)
                        : sqlite3_bind_zeroblob(st, idx, 0);
            break;
        default:
            DR_WARN("db", "unknown parameter type", "param=%zu type=%d", i + 1, (int)v->type);
            return DR_EINVAL;
        }
        if (rc != SQLITE_OK) {
            return fail(sqlite3_db_handle(st), rc, "bind");
        }
    }
    return DR_OK;
}

static _Atomic(dr__lite_plan_fn) plan_fn;
static void *_Atomic plan_ctx;

void dr__lite_set_plan_hook(dr__lite_plan_fn fn, void *ctx)
{
    atomic_store(&plan_ctx, ctx);
    atomic_store(&plan_fn, fn);
}

/* The plan of sql with params, for the hook (dr__lite_set_plan_hook). */
static void explain(struct dr__lite_conn *c, const char *sql, const struct dr_db_val *params,
                    size_t nparams, dr__lite_plan_fn fn)
{
    struct dr_buf q, plan;
    struct prepared p = {0};

    dr_buf_init(&q, SIZE_MAX);
    dr_buf_init(&plan, SIZE_MAX);
    dr_buf_appends(&q, "EXPLAIN QUERY PLAN ");
    dr_buf_appends(&q, sql);
    if (sqlite3_prepare_v2(c->h, q.data, -1, &p.st, NULL) == SQLITE_OK && p.st) {
        p.ordered = params_ordered(p.st);
        if (bind_params(&p, params, nparams) == DR_OK) {
            while (sqlite3_step(p.st) == SQLITE_ROW) {
                const unsigned char *detail = sqlite3_column_text(p.st, 3);
                dr_buf_appends(&plan, detail ? (const char *)detail : "");
                dr_buf_appendc(&plan, '\n');
            }
        }
    }
    sqlite3_finalize(p.st);
    fn(atomic_load(&plan_ctx), sql, plan.data ? plan.data : "");
    dr_buf_cleanup(&q);
    dr_buf_cleanup(&plan);
}

/* Every parameter is bound again before each run, so bindings are not cleared afterwards. */
static int run(struct dr__lite_conn *c, const struct prepared *p, const struct dr_db_val *params,
               size_t nparams, dr_db_row_cb cb, void *ctx, int64_t *changes)
{
    sqlite3_stmt *st = p->st;
    struct dr_db_row row = {.st = st, .ncols = sqlite3_column_count(st)};
    dr__lite_plan_fn fn = atomic_load(&plan_fn);
    int err, rc;

    if (fn) {
        explain(c, sqlite3_sql(st), params, nparams, fn);
    }
    err = bind_params(p, params, nparams);
    if (err) {
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cb) {
            err = cb(ctx, &row);
            if (err) {
                goto out;
            }
        }
    }
    if (rc != SQLITE_DONE) {
        err = fail(c->h, rc, "step");
        goto out;
    }
    if (changes) {
        *changes = sqlite3_stmt_readonly(st) ? 0 : sqlite3_changes64(c->h);
    }
out:
    sqlite3_reset(st);
    return err;
}

static int exec_on(struct dr__lite_conn *c, const char *sql, const struct dr_db_val *params,
                   size_t nparams, dr_db_row_cb cb, void *ctx, int64_t *changes)
{
    struct prepared p;
    int err = get_stmt(c, sql, 0, &p);

    if (err) {
        return err;
    }
    err = run(c, &p, params, nparams, cb, ctx, changes);
    put_stmt(&p);
    return err;
}

/* A statement outside dr_db_begin() must not leave a transaction open on a pooled connection. */
static int check_autocommit(struct dr__lite_conn *c, int err)
{
    if (sqlite3_get_autocommit(c->h)) {
        return err;
    }
    sqlite3_exec(c->h, "ROLLBACK", NULL, NULL, NULL);
    DR_WARN("db", "transaction control outside dr_db_begin", "engine=sqlite");
    return err ? err : DR_EINVAL;
}

enum role { ROLE_WRITER, ROLE_READER, ROLE_CHECKPOINTER };

static int conn_open(const char *path, enum role role, struct dr__lite_conn *c)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    char *errmsg = NULL;
    char msg[256];
    int rc, err = DR_OK;
    /* the writer checkpoints nothing itself (wal_autocheckpoint=0): ckpt_main() does it off
     * the commit path. Its page cache holds a large batch without spilling mid-transaction.
     * secure_delete=FAST (Debian builds SQLite with it ON): deleted content is still zeroed
     * inside b-tree pages, but freed pages are not rewritten with zeros, which doubled the
     * bytes written for every queued message; a freed page is overwritten when reused. */
    static const char *const pragmas[] = {
        [ROLE_WRITER] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                        "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
                        "PRAGMA cache_size=-32768; PRAGMA wal_autocheckpoint=0; "
                        "PRAGMA secure_delete=FAST;",
        [ROLE_READER] = "PRAGMA query_only=ON; PRAGMA foreign_keys=ON;",
        [ROLE_CHECKPOINTER] = "PRAGMA synchronous=NORMAL;",
    };

    memset(c, 0, sizeof(*c));
    rc = sqlite3_open_v2(path, &c->h, flags, NULL);
    if (rc != SQLITE_OK) {
        dr__db_clean_msg(c->h ? sqlite3_errmsg(c->h) : sqlite3_errstr(rc), msg, sizeof(msg));
        DR_ERROR("db", "cannot open sqlite database", "path=\"%s\" error=\"%s\"", path, msg);
        err = DR_EIO;
        goto out;
    }
    sqlite3_extended_result_codes(c->h, 1);
    sqlite3_busy_timeout(c->h, BUSY_TIMEOUT_MS);
    rc = sqlite3_exec(c->h, pragmas[role], NULL, NULL, &errmsg);
    if (rc == SQLITE_OK) {
        rc = sqlite3_create_function(c->h, "strpos", 2,
                                     SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                     fn_strpos, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        dr__db_clean_msg(errmsg ? errmsg : sqlite3_errmsg(c->h), msg, sizeof(msg));
        DR_ERROR("db", "cannot set up sqlite database", "path=\"%s\" error=\"%s\"", path, msg);
        err = DR_EIO;
        goto out;
    }
out:
    sqlite3_free(errmsg);
    if (err) {
        sqlite3_close(c->h);
        c->h = NULL;
    }
    return err;
}

static void conn_close(struct dr__lite_conn *c)
{
    if (!c->h) {
        return;
    }
    cache_clear(c);
    sqlite3_close(c->h);
    c->h = NULL;
}

/* Called by SQLite on the writer's thread after each commit: only signals. */
static int wal_hook(void *arg, sqlite3 *h, const char *db, int pages)
{
    struct dr__lite *l = arg;

    if (pages >= CKPT_PAGES) {
        pthread_mutex_lock(&l->cmu);
        l->ckpt_wanted = 1;
        pthread_cond_signal(&l->ccv);
        pthread_mutex_unlock(&l->cmu);
    }
    return SQLITE_OK;
}

/*
 * Checkpoints run on their own thread and connection so a commit never waits for copying the
 * WAL into the database and its fsync. PASSIVE never blocks the writer or readers; the writer
 * starts the WAL over once a checkpoint has caught up.
 */
static void *ckpt_main(void *arg)
{
    struct dr__lite *l = arg;

    pthread_mutex_lock(&l->cmu);
    for (;;) {
        while (!l->ckpt_wanted && !l->ckpt_stop) {
            pthread_cond_wait(&l->ccv, &l->cmu);
        }
        if (l->ckpt_stop) {
            break;
        }
        l->ckpt_wanted = 0;
        pthread_mutex_unlock(&l->cmu);
        int nlog = 0;
        int rc = sqlite3_wal_checkpoint_v2(l->ckpt.h, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, NULL);
        if (rc == SQLITE_OK && nlog > l->wal_cap_pages) {
            /* Under steady load commits never pause, so a checkpoint never catches up with the
             * WAL and the WAL cannot start over: it would grow for as long as the load lasts.
             * Past the cap, the rest is copied with the writer held off (one short stall), and
             * the next commit starts the WAL from the beginning again. */
            uint64_t t0 = dr_mono_ns();
            pthread_mutex_lock(&l->wmu);
            rc = sqlite3_wal_checkpoint_v2(l->ckpt.h, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
            pthread_mutex_unlock(&l->wmu);
            DR_DEBUG("db", "WAL past its cap: checkpointed with the writer held off",
                     "frames=%d held_us=%llu", nlog,
                     (unsigned long long)((dr_mono_ns() - t0) / 1000));
        }
        if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY) {
            fail(l->ckpt.h, rc, "checkpoint");
        }
        pthread_mutex_lock(&l->cmu);
        /* at most one checkpoint per CKPT_GAP_MS: while the WAL stays above the threshold
         * every commit asks for one, and each costs two fsyncs */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += CKPT_GAP_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!l->ckpt_stop && pthread_cond_timedwait(&l->ccv, &l->cmu, &ts) == 0) {
        }
    }
    pthread_mutex_unlock(&l->cmu);
    return NULL;
}

static int ckpt_start(struct dr__lite *l, const char *path)
{
    int err = conn_open(path, ROLE_CHECKPOINTER, &l->ckpt);

    if (err) {
        return err;
    }
    if (pthread_create(&l->ckpt_thread, NULL, ckpt_main, l) != 0) {
        DR_ERROR("db", "cannot start the checkpoint thread", "engine=sqlite");
        conn_close(&l->ckpt);
        return DR_EIO;
    }
    l->ckpt_running = 1;
    sqlite3_wal_hook(l->writer.h, wal_hook, l);
    return DR_OK;
}

static void ckpt_stop(struct dr__lite *l)
{
    if (l->ckpt_running) {
        sqlite3_wal_hook(l->writer.h, NULL, NULL);
        pthread_mutex_lock(&l->cmu);
        l->ckpt_stop = 1;
        pthread_cond_signal(&l->ccv);
        pthread_mutex_unlock(&l->cmu);
        pthread_join(l->ckpt_thread, NULL);
        l->ckpt_running = 0;
    }
    conn_close(&l->ckpt);
}

int dr__lite_open(const char *path, int pool_size, struct dr__lite **out)
{
    struct dr__lite *l = NULL;
    int memory = strcmp(path, ":memory:") == 0;
    int err;

    *out = NULL;
    if (!*path) {
        DR_ERROR("db", "empty sqlite path", "engine=sqlite");
        return DR_EINVAL;
    }
    if (!sqlite3_threadsafe()) {
        DR_ERROR("db", "sqlite built without thread support", "engine=sqlite");
        return DR_EUNSUPPORTED;
    }
    if (pool_size <= 0) {
        pool_size = DEFAULT_POOL;
    }
    l = dr_xcalloc(1, sizeof(*l));
    pthread_mutex_init(&l->wmu, NULL);
    pthread_mutex_init(&l->rmu, NULL);
    pthread_cond_init(&l->rcv, NULL);
    pthread_mutex_init(&l->cmu, NULL);
    pthread_cond_init(&l->ccv, NULL);
    /* the writer first: it creates the file and switches it to WAL before readers attach */
    err = conn_open(path, ROLE_WRITER, &l->writer);
    if (err) {
        goto out;
    }
    l->nreaders = memory ? 0 : pool_size - 1;
    l->readers = dr_xcalloc((size_t)(l->nreaders ? l->nreaders : 1), sizeof(*l->readers));
    for (int i = 0; i < l->nreaders; i++) {
        err = conn_open(path, ROLE_READER, &l->readers[i]);
        if (err) {
            goto out;
        }
        l->readers[i].next_free = l->free_readers;
        l->free_readers = &l->readers[i];
    }
    if (!memory) {
        const char *cap = getenv("DR_SQLITE_WAL_MAX_MB");
        int64_t mb = WAL_MAX_MB;
        if (cap && (dr_parse_i64(cap, &mb) != 0 || mb < 1 || mb > 1 << 20)) {
            DR_WARN("db", "DR_SQLITE_WAL_MAX_MB is not a size in MiB: using the default",
                    "default=%d", WAL_MAX_MB);
            mb = WAL_MAX_MB;
        }
        l->wal_cap_pages = (int)(mb * 256); /* 4 KiB pages */
        err = ckpt_start(l, path);
        if (err) {
            goto out;
        }
    }
    *out = l;
    l = NULL;
out:
    dr__lite_close(l);
    return err;
}

void dr__lite_close(struct dr__lite *l)
{
    if (!l) {
        return;
    }
    ckpt_stop(l);
    for (int i = 0; l->readers && i < l->nreaders; i++) {
        conn_close(&l->readers[i]);
    }
    conn_close(&l->writer); /* last: closing the last connection checkpoints the WAL */
    free(l->readers);
    pthread_cond_destroy(&l->ccv);
    pthread_mutex_destroy(&l->cmu);
    pthread_cond_destroy(&l->rcv);
    pthread_mutex_destroy(&l->rmu);
    pthread_mutex_destroy(&l->wmu);
    free(l);
}

static struct dr__lite_conn *reader_get(struct dr__lite *l)
{
    struct dr__lite_conn *c;

    pthread_mutex_lock(&l->rmu);
    while (!l->free_readers) {
        pthread_cond_wait(&l->rcv, &l->rmu);
    }
    c = l->free_readers;
    l->free_readers = c->next_free;
    pthread_mutex_unlock(&l->rmu);
    return c;
}

static void reader_put(struct dr__lite *l, struct dr__lite_conn *c)
{
    pthread_mutex_lock(&l->rmu);
    c->next_free = l->free_readers;
    l->free_readers = c;
    pthread_cond_signal(&l->rcv);
    pthread_mutex_unlock(&l->rmu);
}

int dr__lite_exec(struct dr__lite *l, const char *sql, const struct dr_db_val *params,
                  size_t nparams, dr_db_row_cb cb, void *ctx, int64_t *changes)
{
    int err;

    if (l->nreaders > 0) {
        struct dr__lite_conn *c = reader_get(l);
        struct prepared p;
        int readonly = 0;

        /* quiet: what a reader cannot prepare (a TEMP table, a syntax error) the writer retries
         * and reports */
        err = get_stmt(c, sql, 1, &p);
        if (!err) {
            readonly = sqlite3_stmt_readonly(p.st);
            if (readonly) {
                err = run(c, &p, params, nparams, cb, ctx, changes);
                err = check_autocommit(c, err);
            }
            put_stmt(&p);
        }
        reader_put(l, c);
        if (readonly) {
            return err;
        }
    }
    pthread_mutex_lock(&l->wmu);
    err = exec_on(&l->writer, sql, params, nparams, cb, ctx, changes);
    err = check_autocommit(&l->writer, err);
    pthread_mutex_unlock(&l->wmu);
    return err;
}

int dr__lite_begin(struct dr__lite *l, struct dr__lite_conn **c)
{
    int err;

    *c = NULL;
    pthread_mutex_lock(&l->wmu);
    /* IMMEDIATE takes the write lock now: other processes on the file wait in busy_timeout
     * here rather than failing later when a read transaction tries to upgrade */
    err = exec_on(&l->writer, "BEGIN IMMEDIATE", NULL, 0, NULL, NULL, NULL);
    if (err) {
        pthread_mutex_unlock(&l->wmu);
        return err;
    }
    *c = &l->writer;
    return DR_OK;
}

int dr__lite_conn_exec(struct dr__lite_conn *c, const char *sql, const struct dr_db_val *params,
                       size_t nparams, dr_db_row_cb cb, void *ctx, int64_t *changes)
{
    return exec_on(c, sql, params, nparams, cb, ctx, changes);
}

int dr__lite_conn_script(struct dr__lite_conn *c, const char *sql)
{
    char *errmsg = NULL;
    char msg[256];
    int rc = sqlite3_exec(c->h, sql, NULL, NULL, &errmsg);
    int err = DR_OK;

    if (rc != SQLITE_OK) {
        dr__db_clean_msg(errmsg ? errmsg : sqlite3_errmsg(c->h), msg, sizeof(msg));
        DR_WARN("db", "sqlite script failed", "code=%d error=\"%s\"", rc, msg);
        err = (rc & 0xff) == SQLITE_ERROR ? DR_EINVAL : map_rc(rc);
    }
    sqlite3_free(errmsg);
    return err;
}

int dr__lite_commit(struct dr__lite *l, struct dr__lite_conn *c)
{
    int err = exec_on(c, "COMMIT", NULL, 0, NULL, NULL, NULL);

    if (err && !sqlite3_get_autocommit(c->h)) {
        exec_on(c, "ROLLBACK", NULL, 0, NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&l->wmu);
    return err;
}

void dr__lite_rollback(struct dr__lite *l, struct dr__lite_conn *c)
{
    if (!sqlite3_get_autocommit(c->h)) {
        exec_on(c, "ROLLBACK", NULL, 0, NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&l->wmu);
}

static int in_range(const struct dr_db_row *row, int col)
{
    return col >= 0 && col < row->ncols;
}

int dr__lite_row_is_null(const struct dr_db_row *row, int col)
{
    return !in_range(row, col) || sqlite3_column_type(row->st, col) == SQLITE_NULL;
}

int64_t dr__lite_row_int(const struct dr_db_row *row, int col)
{
    return in_range(row, col) ? sqlite3_column_int64(row->st, col) : 0;
}

const char *dr__lite_row_text(const struct dr_db_row *row, int col)
{
    if (dr__lite_row_is_null(row, col)) {
        return NULL;
    }
    return (const char *)sqlite3_column_text(row->st, col);
}

const void *dr__lite_row_blob(const struct dr_db_row *row, int col, size_t *len)
{
    const void *p;

    *len = 0;
    if (dr__lite_row_is_null(row, col)) {
        return NULL;
    }
    p = sqlite3_column_blob(row->st, col);
    *len = (size_t)sqlite3_column_bytes(row->st, col);
    return p ? p : ""; /* an empty blob is a value, not NULL */
}
