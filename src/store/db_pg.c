/*
 * PostgreSQL engine of dr_db: a pool of libpq connections (mutex + condvar), opened on first
 * use. Statements go through PQexecParams: integers and text as text parameters, blobs as
 * binary bytea (paramFormats 1), results as text with bytea decoded on demand.
 *
 * A connection found broken (PQstatus != CONNECTION_OK) before or after a statement is reset
 * with PQreset(); the statement that hit the break reports DR_EIO, the next one runs on the
 * new connection. The URL's password never reaches a log line.
 */
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"
#include "store/db_internal.h"

#define BOOLOID       16
#define BYTEAOID      17
#define INT8OID       20
#define DEFAULT_POOL  4
#define MAX_PARAMS    65535 /* protocol limit */
#define INT_TEXT_SIZE 24

struct dr__pg_conn {
    PGconn *c; /* NULL until first use */
    struct dr__pg *owner;
    struct dr__pg_conn *next_free;
};

struct dr__pg {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *url;
    char *password;  /* only to scrub it from libpq's messages */
    char where[256]; /* user@host:port/db for logs */
    struct dr__pg_conn *conns;
    int n;
    struct dr__pg_conn *free;
};

/* Replaces every occurrence of the password with *** and cleans the text for a log field. */
static void scrub(const struct dr__pg *p, const char *in, char *out, size_t outsz)
{
    struct dr_buf b;
    const char *s = in ? in : "";

    dr_buf_init(&b, 4096);
    if (p->password && *p->password) {
        size_t plen = strlen(p->password);
        const char *hit;
        while ((hit = strstr(s, p->password))) {
            dr_buf_append(&b, s, (size_t)(hit - s));
            dr_buf_appends(&b, "***");
            s = hit + plen;
        }
    }
    dr_buf_appends(&b, s);
    dr__db_clean_msg(b.data ? b.data : "", out, outsz);
    dr_buf_cleanup(&b);
}

static void notice_cb(void *arg, const char *message)
{
    struct dr__pg *p = arg;
    char msg[256];

    scrub(p, message, msg, sizeof(msg));
    DR_DEBUG("db", "postgres notice", "text=\"%s\"", msg);
}

static int map_sqlstate(const char *st)
{
    if (!st || strlen(st) != 5) {
        return DR_EIO;
    }
    if (strcmp(st, "23505") == 0) {
        return DR_EEXIST;
    }
    if (strcmp(st, "08P01") == 0) { /* e.g. fewer parameters than the SQL uses */
        return DR_EINVAL;
    }
    if (strcmp(st, "57014") == 0) {
        return DR_ETIMEOUT;
    }
    if (strncmp(st, "23", 2) == 0 || strncmp(st, "22", 2) == 0 || strncmp(st, "42", 2) == 0) {
        return DR_EINVAL;
    }
    /* P0: a trigger or function raised (RAISE EXCEPTION is P0001) and refuses these values, as
     * RAISE(ABORT) does on SQLite (SQLITE_CONSTRAINT_TRIGGER) */
    if (strncmp(st, "P0", 2) == 0) {
        return DR_EINVAL;
    }
    if (strncmp(st, "54", 2) == 0) {
        return DR_ETOOBIG;
    }
    return DR_EIO;
}

static int conn_connect(struct dr__pg *p, struct dr__pg_conn *c)
{
    /* keywords are applied in order and the URL (dbname, expanded) comes last, so these are
     * defaults the URL may override */
    static const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"10", "data-router", p->url, NULL};
    char msg[512];

    c->c = PQconnectdbParams(keys, vals, 1);
    if (c->c && PQstatus(c->c) == CONNECTION_OK) {
        PQsetNoticeProcessor(c->c, notice_cb, p);
        return DR_OK;
    }
    scrub(p, c->c ? PQerrorMessage(c->c) : "out of memory", msg, sizeof(msg));
    DR_ERROR("db", "cannot connect to postgresql", "where=\"%s\" error=\"%s\"", p->where, msg);
    PQfinish(c->c);
    c->c = NULL;
    return DR_EIO;
}

/* After a failure: if the connection is gone, reset it so the next caller gets a live one. */
static void check_broken(struct dr__pg *p, struct dr__pg_conn *c)
{
    char msg[512];

    if (PQstatus(c->c) == CONNECTION_OK) {
        return;
    }
    DR_WARN("db", "postgresql connection lost, reconnecting", "where=\"%s\"", p->where);
    PQreset(c->c);
    if (PQstatus(c->c) != CONNECTION_OK) {
        scrub(p, PQerrorMessage(c->c), msg, sizeof(msg));
        DR_ERROR("db", "postgresql reconnect failed", "where=\"%s\" error=\"%s\"", p->where, msg);
    }
}

static void conn_put(struct dr__pg *p, struct dr__pg_conn *c)
{
    pthread_mutex_lock(&p->mu);
    c->next_free = p->free;
    p->free = c;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static int conn_get(struct dr__pg *p, struct dr__pg_conn **out)
{
    struct dr__pg_conn *c;
    int err = DR_OK;

    *out = NULL;
    pthread_mutex_lock(&p->mu);
    while (!p->free) {
        pthread_cond_wait(&p->cv, &p->mu);
    }
    c = p->free;
    p->free = c->next_free;
    pthread_mutex_unlock(&p->mu);

    if (!c->c) {
        err = conn_connect(p, c);
    } else if (PQstatus(c->c) != CONNECTION_OK) {
        check_broken(p, c);
        err = PQstatus(c->c) == CONNECTION_OK ? DR_OK : DR_EIO;
    }
    if (err) {
        conn_put(p, c);
        return err;
    }
    *out = c;
    return DR_OK;
}

static int result_error(struct dr__pg *p, struct dr__pg_conn *c, PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[256];
    int err;

    if (PQstatus(c->c) != CONNECTION_OK) {
        scrub(p, PQerrorMessage(c->c), msg, sizeof(msg));
        DR_WARN("db", "postgresql failure", "op=%s error=\"%s\"", what, msg);
        check_broken(p, c);
        return DR_EIO;
    }
    /* the primary message only: DETAIL may quote the row's values */
    scrub(p, primary ? primary : PQerrorMessage(c->c), msg, sizeof(msg));
    err = map_sqlstate(state);
    if (err == DR_EEXIST) {
        DR_DEBUG("db", "postgresql constraint", "op=%s sqlstate=%s error=\"%s\"", what, state, msg);
    } else {
        DR_WARN("db", "postgresql failure", "op=%s sqlstate=%s error=\"%s\"", what,
                state ? state : "-", msg);
    }
    return err;
}

struct pgparams {
    const char **vals;
    int *lens;
    int *fmts;
    Oid *types;
    char (*ints)[INT_TEXT_SIZE];
    char **copies;
    size_t n;
};

static void params_cleanup(struct pgparams *pp)
{
    for (size_t i = 0; pp->copies && i < pp->n; i++) {
        free(pp->copies[i]);
    }
    free(pp->vals);
    free(pp->lens);
    free(pp->fmts);
    free(pp->types);
    free(pp->ints);
    free(pp->copies);
}

static int params_build(struct pgparams *pp, const struct dr_db_val *params, size_t n)
{
    memset(pp, 0, sizeof(*pp));
    if (n > MAX_PARAMS) {
        DR_WARN("db", "too many parameters", "engine=postgres given=%zu", n);
        return DR_EINVAL;
    }
    if (n == 0) {
        return DR_OK;
    }
    pp->n = n;
    pp->vals = dr_xcalloc(n, sizeof(*pp->vals));
    pp->lens = dr_xcalloc(n, sizeof(*pp->lens));
    pp->fmts = dr_xcalloc(n, sizeof(*pp->fmts));
    pp->types = dr_xcalloc(n, sizeof(*pp->types));
    pp->ints = dr_xcalloc(n, sizeof(*pp->ints));
    pp->copies = dr_xcalloc(n, sizeof(*pp->copies));
    for (size_t i = 0; i < n; i++) {
        const struct dr_db_val *v = &params[i];
        switch (v->type) {
        case DR_DB_NULL:
            break;
        case DR_DB_INT:
            snprintf(pp->ints[i], INT_TEXT_SIZE, "%lld", (long long)v->i);
            pp->vals[i] = pp->ints[i];
            pp->types[i] = INT8OID;
            break;
        case DR_DB_TEXT:
            if (!v->p) {
                DR_WARN("db", "TEXT parameter without a pointer", "param=%zu", i + 1);
                return DR_EINVAL;
            }
            if (v->len) {
                if (memchr(v->p, '\0', v->len)) {
                    DR_WARN("db", "TEXT parameter holds a NUL byte", "param=%zu", i + 1);
                    return DR_EINVAL;
                }
                pp->copies[i] = dr_xstrndup(v->p, v->len);
                pp->vals[i] = pp->copies[i];
            } else {
                pp->vals[i] = v->p;
            }
            /* type left to the server (0) so text may feed any column type */
            break;
        case DR_DB_BLOB:
            if (!v->p && v->len) {
                DR_WARN("db", "BLOB parameter without a pointer", "param=%zu", i + 1);
                return DR_EINVAL;
            }
            if (v->len > INT_MAX) {
                return DR_ETOOBIG;
            }
            pp->vals[i] = v->len ? v->p : "";
            pp->lens[i] = (int)v->len;
            pp->fmts[i] = 1;
            pp->types[i] = BYTEAOID;
            break;
        default:
            DR_WARN("db", "unknown parameter type", "param=%zu type=%d", i + 1, (int)v->type);
            return DR_EINVAL;
        }
    }
    return DR_OK;
}

static void row_free_blobs(struct dr_db_row *row)
{
    for (int i = 0; row->blobs && i < row->ncols; i++) {
        if (row->blobs[i]) {
            PQfreemem(row->blobs[i]);
            row->blobs[i] = NULL;
        }
    }
}

static int exec_on(struct dr__pg_conn *c, const char *sql, const struct dr_db_val *params,
                   size_t nparams, dr_db_row_cb cb, void *ctx, int64_t *changes)
{
    struct dr__pg *p = c->owner;
    struct pgparams pp;
    struct dr_db_row row = {0};
    PGresult *res = NULL;
    ExecStatusType status;
    int err;

    err = params_build(&pp, params, nparams);
    if (err) {
        goto out;
    }
    res = PQexecParams(c->c, sql, (int)nparams, pp.types, pp.vals, pp.lens, pp.fmts, 0);
    status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        err = result_error(p, c, res, "exec");
        goto out;
    }
    if (status == PGRES_TUPLES_OK && cb) {
        int nrows = PQntuples(res);
        row.res = res;
        row.ncols = PQnfields(res);
        row.blobs = dr_xcalloc((size_t)row.ncols + 1, sizeof(*row.blobs));
        row.bloblens = dr_xcalloc((size_t)row.ncols + 1, sizeof(*row.bloblens));
        for (int i = 0; i < nrows && !err; i++) {
            row.rown = i;
            err = cb(ctx, &row);
            row_free_blobs(&row);
        }
        if (err) {
            goto out;
        }
    }
    if (changes) {
        const char *n = PQcmdTuples(res);
        *changes = (strncmp(PQcmdStatus(res), "SELECT", 6) == 0 || !*n) ? 0 : atoll(n);
    }
out:
    free(row.blobs);
    free(row.bloblens);
    PQclear(res);
    params_cleanup(&pp);
    return err;
}

/* A statement outside dr_db_begin() must not leave a transaction open on a pooled connection. */
static int check_idle(struct dr__pg_conn *c, int err)
{
    PGTransactionStatusType ts = PQtransactionStatus(c->c);

    if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR) {
        return err;
    }
    PQclear(PQexec(c->c, "ROLLBACK"));
    DR_WARN("db", "transaction control outside dr_db_begin", "engine=postgres");
    return err ? err : DR_EINVAL;
}

int dr__pg_open(const char *url, int pool_size, struct dr__pg **out)
{
    struct dr__pg *p = NULL;
    PQconninfoOption *opts = NULL;
    const char *user = "", *host = "", *port = "", *db = "";
    char *perr = NULL;
    int err = DR_OK;

    *out = NULL;
    if (!PQisthreadsafe()) {
        DR_ERROR("db", "libpq built without thread support", "engine=postgres");
        return DR_EUNSUPPORTED;
    }
    opts = PQconninfoParse(url, &perr);
    if (!opts) {
        /* libpq quotes the offending part of the URL, which may be the password: keep only
         * the text before the quote */
        char msg[256];
        char *q = perr ? strchr(perr, '"') : NULL;
        if (q) {
            *q = '\0';
        }
        dr__db_clean_msg(perr ? perr : "out of memory", msg, sizeof(msg));
        DR_ERROR("db", "invalid postgresql url", "error=\"%s\"", msg);
        err = DR_EINVAL;
        goto out;
    }
    p = dr_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->url = dr_xstrdup(url);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val) {
            continue;
        }
        if (strcmp(o->keyword, "password") == 0) {
            p->password = dr_xstrdup(o->val);
        } else if (strcmp(o->keyword, "user") == 0) {
            user = o->val;
        } else if (strcmp(o->keyword, "host") == 0) {
            host = o->val;
        } else if (strcmp(o->keyword, "port") == 0) {
            port = o->val;
        } else if (strcmp(o->keyword, "dbname") == 0) {
            db = o->val;
        }
    }
    snprintf(p->where, sizeof(p->where), "%s@%s:%s/%s", user, host, port, db);
    p->n = pool_size > 0 ? pool_size : DEFAULT_POOL;
    p->conns = dr_xcalloc((size_t)p->n, sizeof(*p->conns));
    for (int i = p->n - 1; i >= 0; i--) {
        p->conns[i].owner = p;
        p->conns[i].next_free = p->free;
        p->free = &p->conns[i];
    }
    /* connect one now so a wrong URL fails at start rather than at the first query */
    err = conn_connect(p, &p->conns[0]);
    if (err) {
        goto out;
    }
    *out = p;
    p = NULL;
out:
    PQconninfoFree(opts);
    PQfreemem(perr);
    dr__pg_close(p);
    return err;
}

void dr__pg_close(struct dr__pg *p)
{
    if (!p) {
        return;
    }
    for (int i = 0; p->conns && i < p->n; i++) {
        PQfinish(p->conns[i].c);
    }
    free(p->conns);
    if (p->password) {
        memset(p->password, 0, strlen(p->password));
    }
    free(p->password);
    free(p->url);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int dr__pg_exec(struct dr__pg *p, const char *sql, const struct dr_db_val *params, size_t nparams,
                dr_db_row_cb cb, void *ctx, int64_t *changes)
{
    struct dr__pg_conn *c;
    int err = conn_get(p, &c);

    if (err) {
        return err;
    }
    err = exec_on(c, sql, params, nparams, cb, ctx, changes);
    err = check_idle(c, err);
    conn_put(p, c);
    return err;
}

static int simple(struct dr__pg_conn *c, const char *op, const char *sql, const char *want_status)
{
    PGresult *res = PQexec(c->c, sql);
    int err = DR_OK;

    if (!res ||
        (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)) {
        err = result_error(c->owner, c, res, op);
    } else if (want_status && strcmp(PQcmdStatus(res), want_status) != 0) {
        /* COMMIT of a failed transaction answers ROLLBACK */
        DR_WARN("db", "postgresql transaction rolled back", "status=%s", PQcmdStatus(res));
        err = DR_EIO;
    }
    PQclear(res);
    return err;
}

int dr__pg_begin(struct dr__pg *p, struct dr__pg_conn **c)
{
    struct dr__pg_conn *conn;
    int err = conn_get(p, &conn);

    *c = NULL;
    if (err) {
        return err;
    }
    err = simple(conn, "begin", "BEGIN", NULL);
    if (err) {
        conn_put(p, conn);
        return err;
    }
    *c = conn;
    return DR_OK;
}

int dr__pg_conn_exec(struct dr__pg_conn *c, const char *sql, const struct dr_db_val *params,
                     size_t nparams, dr_db_row_cb cb, void *ctx, int64_t *changes)
{
    return exec_on(c, sql, params, nparams, cb, ctx, changes);
}

int dr__pg_conn_script(struct dr__pg_conn *c, const char *sql)
{
    return simple(c, "script", sql, NULL);
}

int dr__pg_commit(struct dr__pg *p, struct dr__pg_conn *c)
{
    int err = simple(c, "commit", "COMMIT", "COMMIT");

    err = check_idle(c, err);
    conn_put(p, c);
    return err;
}

void dr__pg_rollback(struct dr__pg *p, struct dr__pg_conn *c)
{
    if (PQstatus(c->c) == CONNECTION_OK && PQtransactionStatus(c->c) != PQTRANS_IDLE) {
        PQclear(PQexec(c->c, "ROLLBACK"));
    }
    conn_put(p, c);
}

static int in_range(const struct dr_db_row *row, int col)
{
    return col >= 0 && col < row->ncols;
}

int dr__pg_row_is_null(const struct dr_db_row *row, int col)
{
    return !in_range(row, col) || PQgetisnull(row->res, row->rown, col);
}

int64_t dr__pg_row_int(const struct dr_db_row *row, int col)
{
    const char *v;

    if (dr__pg_row_is_null(row, col)) {
        return 0;
    }
    v = PQgetvalue(row->res, row->rown, col);
    if (PQftype(row->res, col) == BOOLOID) {
        return v[0] == 't';
    }
    return strtoll(v, NULL, 10);
}

const char *dr__pg_row_text(const struct dr_db_row *row, int col)
{
    if (dr__pg_row_is_null(row, col)) {
        return NULL;
    }
    return PQgetvalue(row->res, row->rown, col);
}

const void *dr__pg_row_blob(const struct dr_db_row *row, int col, size_t *len)
{
    *len = 0;
    if (dr__pg_row_is_null(row, col)) {
        return NULL;
    }
    if (PQftype(row->res, col) != BYTEAOID) {
        *len = (size_t)PQgetlength(row->res, row->rown, col);
        return PQgetvalue(row->res, row->rown, col);
    }
    if (!row->blobs[col]) {
        row->blobs[col] = PQunescapeBytea(
            (const unsigned char *)PQgetvalue(row->res, row->rown, col), &row->bloblens[col]);
        if (!row->blobs[col]) {
            return NULL;
        }
    }
    *len = row->bloblens[col];
    return row->blobs[col];
}
