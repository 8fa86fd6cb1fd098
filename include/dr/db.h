/*
 * One SQL interface over two engines: SQLite (embedded default) and PostgreSQL (libpq).
 *
 * SQL text is shared: parameters are written $1, $2, ... and each must first appear in
 * increasing order (SQLite binds "$N" names by first appearance). Both engines accept
 * ON CONFLICT ... DO NOTHING/UPDATE and RETURNING. Types: integers are BIGINT/INTEGER, text is
 * TEXT, bytes are BLOB (SQLite) / BYTEA (PostgreSQL): DDL differs and lives in per-engine
 * migrations; queries do not. All SQL is parameterised: never format values into SQL text.
 *
 * A dr_db is a small connection pool and is thread-safe; every call blocks, so call it from
 * worker threads or the libuv thread pool, never from the event-loop thread.
 *
 * SQLite: one writer connection behind a mutex (SQLite allows one writer) plus pool_size - 1
 * read-only connections (WAL: readers never wait for the writer). dr_db_exec() runs a statement
 * that cannot write on a reader, anything else on the writer; a transaction holds the writer
 * from begin to commit/rollback. WAL checkpoints run on a background thread. Default pool 4.
 * PostgreSQL: pool_size connections (default 4), opened on first use; a broken connection is
 * reset and the statement that found it broken returns DR_EIO.
 * A thread holding a transaction must not call dr_db_exec() on the same db (it may wait for the
 * connection it holds); row callbacks must not call into the same db either.
 *
 * Errors: DR_EINVAL for bad arguments, SQL errors, parameter count mismatches and values the
 * database refuses (a CHECK or NOT NULL constraint, a trigger that raises, a value the column
 * type cannot hold); DR_EEXIST for a unique/primary-key violation; DR_ETOOBIG for a value over
 * the engine's limits; DR_EIO for storage or connection failures, a busy or locked database
 * (worth retrying); a row callback's non-zero return value is passed through unchanged.
 * dr_db_err_permanent() tells the two kinds apart.
 */
#ifndef DR_DB_H
#define DR_DB_H

#include <stddef.h>
#include <stdint.h>

struct dr_db;
struct dr_db_tx;
struct dr_db_row;

enum dr_db_engine { DR_DB_SQLITE, DR_DB_POSTGRES };
enum dr_db_type { DR_DB_NULL, DR_DB_INT, DR_DB_TEXT, DR_DB_BLOB };

struct dr_db_val {
    enum dr_db_type type;
    int64_t i;
    const void *p; /* TEXT (NUL-terminated when len is 0) or BLOB */
    size_t len;
};

#define DR_DB_NULLV       ((struct dr_db_val){.type = DR_DB_NULL})
#define DR_DB_INTV(x)     ((struct dr_db_val){.type = DR_DB_INT, .i = (int64_t)(x)})
#define DR_DB_TEXTV(s)    ((struct dr_db_val){.type = (s) ? DR_DB_TEXT : DR_DB_NULL, .p = (s)})
#define DR_DB_BLOBV(b, n) ((struct dr_db_val){.type = DR_DB_BLOB, .p = (b), .len = (n)})

/* Called once per result row; return non-zero to stop (that value is returned by exec). */
typedef int (*dr_db_row_cb)(void *ctx, const struct dr_db_row *row);

/*
 * url: "postgresql://..." or "postgres://..." for PostgreSQL; "sqlite:PATH", a plain PATH or
 * ":memory:" for SQLite (WAL, synchronous=NORMAL, busy timeout). pool_size 0 = default.
 * On failure *out is NULL and the error is logged without the password.
 */
int dr_db_open(const char *url, int pool_size, struct dr_db **out);
void dr_db_close(struct dr_db *db); /* NULL-safe; waits for no one: callers must be done */
enum dr_db_engine dr_db_engine(const struct dr_db *db);

/* 1 when err, returned by a call of this API, says the same statement with the same values will
 * fail again however often it runs (DR_EINVAL, DR_EEXIST, DR_ETOOBIG): the caller should give
 * up on those values rather than retry. 0 for DR_OK and for failures worth retrying (DR_EIO:
 * connection lost, busy or locked, I/O, disk full; DR_ENOMEM; DR_ETIMEOUT; DR_EUNAVAIL), and for
 * any other value, such as a row callback's own. Pure; any thread. */
int dr_db_err_permanent(int err);

/* One statement outside a transaction (autocommit). changes (may be NULL) gets rows affected by
 * INSERT/UPDATE/DELETE (0 for a query). BEGIN/COMMIT here is refused: use dr_db_begin(). */
int dr_db_exec(struct dr_db *db, const char *sql, const struct dr_db_val *params, size_t nparams,
               dr_db_row_cb cb, void *ctx, int64_t *changes);

/*
 * Multi-row statements: a batch of n rows goes in statements of dr_db_chunks[k] rows, largest
 * first (dr_db_chunk_index), with one SQL text per size built once (a statement per row costs a
 * round trip on PostgreSQL and, on SQLite, about as much as the row itself).
 * dr_db_rows_sql() makes "prefix ROW, ROW, ... suffix" for nrows rows, where each '?' of row
 * becomes the next parameter: "(?, 1)" twice gives "($1, 1), ($2, 1)". Free the result.
 */
#define DR_DB_CHUNK_MAX 64
#define DR_DB_NCHUNKS   4
extern const size_t dr_db_chunks[DR_DB_NCHUNKS]; /* 64, 16, 4, 1 */
size_t dr_db_chunk_index(size_t left);           /* the largest size <= left (left >= 1) */
char *dr_db_rows_sql(const char *prefix, const char *row, size_t nrows, const char *suffix);

/* Transactions hold one pooled connection until commit or rollback (both free tx).
 * A statement that fails (other than by its callback's return value) poisons the transaction on
 * both engines: later statements return that error without running, and dr_db_commit() rolls
 * back and returns it. */
int dr_db_begin(struct dr_db *db, struct dr_db_tx **tx);
int dr_db_tx_exec(struct dr_db_tx *tx, const char *sql, const struct dr_db_val *params,
                  size_t nparams, dr_db_row_cb cb, void *ctx, int64_t *changes);
int dr_db_commit(struct dr_db_tx *tx);
void dr_db_rollback(struct dr_db_tx *tx); /* NULL-safe */

/* Row access; col is 0-based. Text/blob pointers are valid only inside the callback. A column
 * out of range reads as NULL. dr_db_row_blob() returns NULL (len 0) for SQL NULL and a non-NULL
 * pointer for an empty blob; on PostgreSQL it decodes bytea. */
int dr_db_row_is_null(const struct dr_db_row *row, int col);
int64_t dr_db_row_int(const struct dr_db_row *row, int col);
const char *dr_db_row_text(const struct dr_db_row *row, int col); /* NULL if NULL */
const void *dr_db_row_blob(const struct dr_db_row *row, int col, size_t *len);

/* Versioned migrations: applied in order inside one transaction each, recorded in
 * schema_migrations(version). sql may hold several statements separated by ';'. Versions must
 * increase through the array (else DR_EINVAL before anything runs). Applied versions are
 * skipped, so calling it on every start is cheap; PostgreSQL instances starting together take an
 * advisory lock so each migration runs once. A failing migration leaves no trace of itself. */
struct dr_db_migration {
    int version;
    const char *name;
    const char *sqlite_sql;
    const char *postgres_sql;
};
int dr_db_migrate(struct dr_db *db, const struct dr_db_migration *m, size_t n);
/* Modules own version ranges of 100 (store 1-99, realtime 100-199, meeting polls 200-299,
 * shipments 300-399, calendar 400-499). The newest version applied in the range of m[0] above
 * m[n-1]: the database was migrated by a newer program. 0 when there is none (or on error). */
int64_t dr_db_schema_newer(struct dr_db *db, const struct dr_db_migration *m, size_t n);

#endif
