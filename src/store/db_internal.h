/*
 * Internals shared by the dr_db front end (db.c) and its two engines (db_sqlite.c, db_pg.c).
 * Nothing here is part of the public contract in dr/db.h.
 */
#ifndef DR_STORE_DB_INTERNAL_H
#define DR_STORE_DB_INTERNAL_H

#include <stddef.h>

#include "dr/db.h"

struct sqlite3_stmt;
struct pg_result;
struct dr__lite;
struct dr__lite_conn;
struct dr__pg;
struct dr__pg_conn;

struct dr_db {
    enum dr_db_engine engine;
    struct dr__lite *lite;
    struct dr__pg *pg;
};

struct dr_db_tx {
    struct dr_db *db;
    struct dr__lite_conn *lite;
    struct dr__pg_conn *pg;
    int err; /* first failed statement: a poisoned transaction can only roll back */
};

/* One row handed to a dr_db_row_cb. Exactly one of st / res is set. */
struct dr_db_row {
    struct sqlite3_stmt *st;
    struct pg_result *res;
    int rown;
    int ncols;
    unsigned char **blobs; /* PostgreSQL: bytea decoded on demand, freed after the callback */
    size_t *bloblens;
};

/* SQLite engine: path is a file name or ":memory:". */
int dr__lite_open(const char *path, int pool_size, struct dr__lite **out);
void dr__lite_close(struct dr__lite *l);
int dr__lite_exec(struct dr__lite *l, const char *sql, const struct dr_db_val *params,
                  size_t nparams, dr_db_row_cb cb, void *ctx, int64_t *changes);
int dr__lite_begin(struct dr__lite *l, struct dr__lite_conn **c);
int dr__lite_conn_exec(struct dr__lite_conn *c, const char *sql, const struct dr_db_val *params,
                       size_t nparams, dr_db_row_cb cb, void *ctx, int64_t *changes);
int dr__lite_conn_script(struct dr__lite_conn *c, const char *sql);
/* Both end the transaction and give the connection back. */
int dr__lite_commit(struct dr__lite *l, struct dr__lite_conn *c);
void dr__lite_rollback(struct dr__lite *l, struct dr__lite_conn *c);
int dr__lite_row_is_null(const struct dr_db_row *row, int col);
int64_t dr__lite_row_int(const struct dr_db_row *row, int col);
const char *dr__lite_row_text(const struct dr_db_row *row, int col);
const void *dr__lite_row_blob(const struct dr_db_row *row, int col, size_t *len);

/* Tests: while set, every statement run on SQLite is first explained (EXPLAIN QUERY PLAN with
 * the same parameters) and fn gets its SQL and the plan's lines, each ending in '\n'. One hook
 * per process; NULL removes it. */
typedef void (*dr__lite_plan_fn)(void *ctx, const char *sql, const char *plan);
void dr__lite_set_plan_hook(dr__lite_plan_fn fn, void *ctx);

/* PostgreSQL engine: url is a libpq connection URI. */
int dr__pg_open(const char *url, int pool_size, struct dr__pg **out);
void dr__pg_close(struct dr__pg *p);
int dr__pg_exec(struct dr__pg *p, const char *sql, const struct dr_db_val *params, size_t nparams,
                dr_db_row_cb cb, void *ctx, int64_t *changes);
int dr__pg_begin(struct dr__pg *p, struct dr__pg_conn **c);
int dr__pg_conn_exec(struct dr__pg_conn *c, const char *sql, const struct dr_db_val *params,
                     size_t nparams, dr_db_row_cb cb, void *ctx, int64_t *changes);
int dr__pg_conn_script(struct dr__pg_conn *c, const char *sql);
int dr__pg_commit(struct dr__pg *p, struct dr__pg_conn *c);
void dr__pg_rollback(struct dr__pg *p, struct dr__pg_conn *c);
int dr__pg_row_is_null(const struct dr_db_row *row, int col);
int64_t dr__pg_row_int(const struct dr_db_row *row, int col);
const char *dr__pg_row_text(const struct dr_db_row *row, int col);
const void *dr__pg_row_blob(const struct dr_db_row *row, int col, size_t *len);

/* Copies an engine's error text into out for a log field: quotes become ', control characters
 * spaces, truncated to fit. Engine messages carry no parameter values from this module's SQL. */
void dr__db_clean_msg(const char *in, char *out, size_t outsz);

/* Runs several ';'-separated statements without parameters inside tx (migrations). */
int dr__db_tx_script(struct dr_db_tx *tx, const char *sql);

#endif
