/* Tests src/store/db.c, db_sqlite.c, db_pg.c: the same functions against both engines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "dr/db.h"
#include "dr/err.h"
#include "dr/util.h"
#include "unit/store/backend.h"
#include "unit/store/refuse.h"

static int open_db(struct fx *f)
{
    return dr_db_open(f->url, 0, &f->db);
}

static void close_db(struct fx *f)
{
    dr_db_close(f->db);
}

static int fx_setup(void **state)
{
    return fx_setup_with(state, open_db);
}

static int fx_teardown(void **state)
{
    return fx_teardown_with(state, close_db);
}

static struct dr_db *fx_db(void **state)
{
    return ((struct fx *)*state)->obj;
}

static int is_pg(struct dr_db *db)
{
    return dr_db_engine(db) == DR_DB_POSTGRES;
}

static void make_table(struct dr_db *db)
{
    const char *ddl = is_pg(db) ? "CREATE TABLE t (id BIGINT PRIMARY KEY, i BIGINT, s TEXT, "
                                  "b BYTEA, n TEXT)"
                                : "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, s TEXT, "
                                  "b BLOB, n TEXT)";
    assert_int_equal(dr_db_exec(db, ddl, NULL, 0, NULL, NULL, NULL), DR_OK);
}

struct rowcopy {
    int count;
    int64_t id, i;
    char s[256];
    int s_null, b_null, n_null;
    unsigned char b[70000];
    size_t blen;
};

static int copy_row(void *ctx, const struct dr_db_row *row)
{
    struct rowcopy *r = ctx;
    const char *s = dr_db_row_text(row, 2);
    const void *b;

    r->count++;
    r->id = dr_db_row_int(row, 0);
    r->i = dr_db_row_int(row, 1);
    r->s_null = dr_db_row_is_null(row, 2);
    snprintf(r->s, sizeof(r->s), "%s", s ? s : "");
    r->b_null = dr_db_row_is_null(row, 3);
    b = dr_db_row_blob(row, 3, &r->blen);
    if (b && r->blen <= sizeof(r->b)) {
        memcpy(r->b, b, r->blen);
    }
    r->n_null = dr_db_row_is_null(row, 4) && dr_db_row_text(row, 4) == NULL;
    return 0;
}

static void get_row(struct dr_db *db, int64_t id, struct rowcopy *r)
{
    struct dr_db_val p = DR_DB_INTV(id);

    memset(r, 0, sizeof(*r));
    assert_int_equal(
        dr_db_exec(db, "SELECT id, i, s, b, n FROM t WHERE id = $1", &p, 1, copy_row, r, NULL),
        DR_OK);
}

static void insert(struct dr_db *db, int64_t id, struct dr_db_val i, struct dr_db_val s,
                   struct dr_db_val b, struct dr_db_val n)
{
    struct dr_db_val p[5] = {DR_DB_INTV(id), i, s, b, n};
    int64_t changes = -1;

    assert_int_equal(dr_db_exec(db, "INSERT INTO t (id, i, s, b, n) VALUES ($1, $2, $3, $4, $5)", p,
                                5, NULL, NULL, &changes),
                     DR_OK);
    assert_int_equal(changes, 1);
}

static void params_every_type(void **state)
{
    struct dr_db *db = fx_db(state);
    static const unsigned char blob[] = {0x00, 0x01, 0xff, 0x00, 0x5c, 0x78, 0x27, 0x00};
    static unsigned char big[65536];
    static struct rowcopy r;

    for (size_t k = 0; k < sizeof(big); k++) {
        big[k] = (unsigned char)(k * 7 + (k >> 8)); /* every byte value, zeros included */
    }
    make_table(db);
    insert(db, 1, DR_DB_INTV(INT64_MAX), DR_DB_TEXTV("héllo 'quoted' \"x\" \\"),
           DR_DB_BLOBV(blob, sizeof(blob)), DR_DB_NULLV);
    insert(db, 2, DR_DB_INTV(INT64_MIN), DR_DB_TEXTV(""), DR_DB_BLOBV(NULL, 0), DR_DB_TEXTV(NULL));
    /* TEXT with an explicit length is not read past len */
    insert(db, 3, DR_DB_NULLV, ((struct dr_db_val){.type = DR_DB_TEXT, .p = "abcdef", .len = 3}),
           DR_DB_NULLV, DR_DB_NULLV);
    insert(db, 4, DR_DB_INTV(-1), DR_DB_TEXTV("big"), DR_DB_BLOBV(big, sizeof(big)), DR_DB_NULLV);

    get_row(db, 1, &r);
    assert_int_equal(r.count, 1);
    assert_true(r.i == INT64_MAX);
    assert_string_equal(r.s, "héllo 'quoted' \"x\" \\");
    assert_false(r.b_null);
    assert_int_equal(r.blen, sizeof(blob));
    assert_memory_equal(r.b, blob, sizeof(blob));
    assert_true(r.n_null);

    get_row(db, 2, &r);
    assert_true(r.i == INT64_MIN);
    assert_false(r.s_null); /* empty string is not NULL */
    assert_string_equal(r.s, "");
    assert_false(r.b_null); /* empty blob is not NULL */
    assert_int_equal(r.blen, 0);
    assert_true(r.n_null);

    get_row(db, 3, &r);
    assert_string_equal(r.s, "abc");
    assert_true(r.b_null);
    assert_int_equal(r.blen, 0);

    get_row(db, 4, &r);
    assert_int_equal(r.blen, sizeof(big));
    assert_memory_equal(r.b, big, sizeof(big));

    /* a parameter used twice binds once */
    struct ints ids = {.n = 0};
    struct dr_db_val p = DR_DB_INTV(-1);
    assert_int_equal(dr_db_exec(db, "SELECT id FROM t WHERE i = $1 OR id = -$1 ORDER BY id", &p, 1,
                                collect_int, &ids, NULL),
                     DR_OK);
    assert_int_equal(ids.n, 2);
    assert_int_equal(ids.v[0], 1);
    assert_int_equal(ids.v[1], 4);
}

static void bad_input_errors(void **state)
{
    struct dr_db *db = fx_db(state);
    struct dr_db_val two[2] = {DR_DB_INTV(1), DR_DB_INTV(2)};
    struct dr_db_val badtext = {.type = DR_DB_TEXT, .p = NULL};
    struct dr_db_val badblob = {.type = DR_DB_BLOB, .p = NULL, .len = 3};
    struct dr_db_val badtype = {.type = (enum dr_db_type)42};
    struct dr_db_tx *tx = NULL;

    make_table(db);
    /* more parameters than the SQL uses: SQLite refuses, PostgreSQL ignores typed extras */
    assert_int_equal(dr_db_exec(db, "SELECT $1", two, 2, NULL, NULL, NULL),
                     is_pg(db) ? DR_OK : DR_EINVAL);
    assert_int_equal(dr_db_exec(db, "SELECT $1, $2", two, 1, NULL, NULL, NULL), DR_EINVAL);
    assert_int_equal(dr_db_exec(db, "SELEKT 1", NULL, 0, NULL, NULL, NULL), DR_EINVAL);
    assert_int_equal(dr_db_exec(db, "SELECT * FROM no_such_table", NULL, 0, NULL, NULL, NULL),
                     DR_EINVAL);
    assert_int_equal(dr_db_exec(db, "SELECT 1; SELECT 2", NULL, 0, NULL, NULL, NULL), DR_EINVAL);
    assert_int_equal(dr_db_exec(db, NULL, NULL, 0, NULL, NULL, NULL), DR_EINVAL);
    assert_int_equal(dr_db_exec(db, "SELECT $1", NULL, 1, NULL, NULL, NULL), DR_EINVAL);
    assert_int_equal(dr_db_exec(NULL, "SELECT 1", NULL, 0, NULL, NULL, NULL), DR_EINVAL);
    assert_int_equal(dr_db_exec(db, "SELECT $1", &badtext, 1, NULL, NULL, NULL), DR_EINVAL);
    assert_int_equal(dr_db_exec(db, "SELECT $1", &badblob, 1, NULL, NULL, NULL), DR_EINVAL);
    assert_int_equal(dr_db_exec(db, "SELECT $1", &badtype, 1, NULL, NULL, NULL), DR_EINVAL);
    /* transaction control belongs to dr_db_begin: refused and nothing stays open */
    assert_int_not_equal(dr_db_exec(db, "BEGIN", NULL, 0, NULL, NULL, NULL), DR_OK);
    assert_int_equal(dr_db_begin(db, &tx), DR_OK);
    dr_db_rollback(tx);
    assert_int_equal(dr_db_begin(NULL, &tx), DR_EINVAL);
    assert_null(tx);
    assert_int_equal(dr_db_commit(NULL), DR_EINVAL);
    dr_db_rollback(NULL);
    /* the connection is still usable after all of that */
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 0);
}

static int stop_after_two(void *ctx, const struct dr_db_row *row)
{
    int *n = ctx;

    return ++*n == 2 ? 77 : 0;
}

static void callback_stop_and_changes(void **state)
{
    struct dr_db *db = fx_db(state);
    int64_t changes = -1;
    int n = 0;

    make_table(db);
    for (int i = 1; i <= 5; i++) {
        insert(db, i, DR_DB_INTV(i % 2), DR_DB_TEXTV("x"), DR_DB_NULLV, DR_DB_NULLV);
    }
    assert_int_equal(
        dr_db_exec(db, "SELECT id FROM t ORDER BY id", NULL, 0, stop_after_two, &n, &changes), 77);
    assert_int_equal(n, 2);
    assert_int_equal(
        dr_db_exec(db, "UPDATE t SET s = 'y' WHERE i = 1", NULL, 0, NULL, NULL, &changes), DR_OK);
    assert_int_equal(changes, 3);
    assert_int_equal(dr_db_exec(db, "SELECT id FROM t", NULL, 0, NULL, NULL, &changes), DR_OK);
    assert_int_equal(changes, 0);
    assert_int_equal(dr_db_exec(db, "DELETE FROM t WHERE id > 100", NULL, 0, NULL, NULL, &changes),
                     DR_OK);
    assert_int_equal(changes, 0);
}

static void unique_violation_is_eexist(void **state)
{
    struct dr_db *db = fx_db(state);
    struct dr_db_val p[5] = {DR_DB_INTV(1), DR_DB_NULLV, DR_DB_NULLV, DR_DB_NULLV, DR_DB_NULLV};

    make_table(db);
    insert(db, 1, DR_DB_NULLV, DR_DB_NULLV, DR_DB_NULLV, DR_DB_NULLV);
    assert_int_equal(dr_db_exec(db, "INSERT INTO t (id, i, s, b, n) VALUES ($1, $2, $3, $4, $5)", p,
                                5, NULL, NULL, NULL),
                     DR_EEXIST);
}

/* What the database refuses for the values' sake fails the same way every time: a CHECK, a NOT
 * NULL, a trigger that raises (RAISE(ABORT) on SQLite, RAISE EXCEPTION in PL/pgSQL), a duplicate
 * key. Each is permanent; the failures worth retrying are not. */
static void refusals_are_permanent(void **state)
{
    struct dr_db *db = fx_db(state);
    const char *ins = "INSERT INTO t (id, i, s, b, n) VALUES ($1, $2, $3, $4, $5)";
    struct dr_db_val p[5] = {DR_DB_INTV(1), DR_DB_INTV(-1), DR_DB_TEXTV("a"), DR_DB_NULLV,
                             DR_DB_NULLV};
    static const int transient[] = {DR_OK,       DR_EIO,      DR_ENOMEM,
                                    DR_ETIMEOUT, DR_EUNAVAIL, DR_ENOTFOUND};

    assert_int_equal(dr_db_exec(db,
                                is_pg(db) ? "CREATE TABLE t (id BIGINT PRIMARY KEY,"
                                            " i BIGINT CHECK (i >= 0), s TEXT NOT NULL, b BYTEA,"
                                            " n TEXT)"
                                          : "CREATE TABLE t (id INTEGER PRIMARY KEY,"
                                            " i INTEGER CHECK (i >= 0), s TEXT NOT NULL, b BLOB,"
                                            " n TEXT)",
                                NULL, 0, NULL, NULL, NULL),
                     DR_OK);
    refuse_inserts(db, "refuse_x", "t", "n", "x");
    /* CHECK */
    assert_int_equal(dr_db_exec(db, ins, p, 5, NULL, NULL, NULL), DR_EINVAL);
    /* NOT NULL */
    p[1] = DR_DB_INTV(1);
    p[2] = DR_DB_NULLV;
    assert_int_equal(dr_db_exec(db, ins, p, 5, NULL, NULL, NULL), DR_EINVAL);
    /* the trigger */
    p[2] = DR_DB_TEXTV("a");
    p[4] = DR_DB_TEXTV("x");
    assert_int_equal(dr_db_exec(db, ins, p, 5, NULL, NULL, NULL), DR_EINVAL);
    /* the key */
    p[4] = DR_DB_TEXTV("y");
    assert_int_equal(dr_db_exec(db, ins, p, 5, NULL, NULL, NULL), DR_OK);
    assert_int_equal(dr_db_exec(db, ins, p, 5, NULL, NULL, NULL), DR_EEXIST);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 1);

    assert_true(dr_db_err_permanent(DR_EINVAL));
    assert_true(dr_db_err_permanent(DR_EEXIST));
    assert_true(dr_db_err_permanent(DR_ETOOBIG));
    for (size_t i = 0; i < DR_ARRAY_LEN(transient); i++) {
        assert_false(dr_db_err_permanent(transient[i]));
    }
}

static void tx_commit_rollback_poison(void **state)
{
    struct dr_db *db = fx_db(state);
    struct dr_db_tx *tx = NULL;
    struct dr_db_val p[5] = {DR_DB_INTV(1), DR_DB_INTV(10), DR_DB_TEXTV("a"), DR_DB_NULLV,
                             DR_DB_NULLV};
    const char *ins = "INSERT INTO t (id, i, s, b, n) VALUES ($1, $2, $3, $4, $5)";
    struct ints r = {.n = 0};

    make_table(db);
    /* commit: visible, also to reads made inside the transaction */
    assert_int_equal(dr_db_begin(db, &tx), DR_OK);
    assert_int_equal(dr_db_tx_exec(tx, ins, p, 5, NULL, NULL, NULL), DR_OK);
    assert_int_equal(dr_db_tx_exec(tx, "SELECT i FROM t", NULL, 0, collect_int, &r, NULL), DR_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.v[0], 10);
    assert_int_equal(dr_db_commit(tx), DR_OK);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 1);

    /* rollback: gone */
    p[0] = DR_DB_INTV(2);
    assert_int_equal(dr_db_begin(db, &tx), DR_OK);
    assert_int_equal(dr_db_tx_exec(tx, ins, p, 5, NULL, NULL, NULL), DR_OK);
    dr_db_rollback(tx);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 1);

    /* a failed statement poisons: later statements refuse, commit rolls everything back */
    p[0] = DR_DB_INTV(3);
    assert_int_equal(dr_db_begin(db, &tx), DR_OK);
    assert_int_equal(dr_db_tx_exec(tx, ins, p, 5, NULL, NULL, NULL), DR_OK);
    p[0] = DR_DB_INTV(1);
    assert_int_equal(dr_db_tx_exec(tx, ins, p, 5, NULL, NULL, NULL), DR_EEXIST);
    p[0] = DR_DB_INTV(4);
    assert_int_equal(dr_db_tx_exec(tx, ins, p, 5, NULL, NULL, NULL), DR_EEXIST);
    assert_int_equal(dr_db_commit(tx), DR_EEXIST);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 1);

    /* a callback's stop value is not a failure */
    int n = 0;
    assert_int_equal(dr_db_begin(db, &tx), DR_OK);
    assert_int_equal(
        dr_db_tx_exec(tx, "SELECT 1 UNION ALL SELECT 2", NULL, 0, stop_after_two, &n, NULL), 77);
    p[0] = DR_DB_INTV(5);
    assert_int_equal(dr_db_tx_exec(tx, ins, p, 5, NULL, NULL, NULL), DR_OK);
    assert_int_equal(dr_db_commit(tx), DR_OK);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 2);
}

static const struct dr_db_migration mig_v1v2[] = {
    {1, "m1", "CREATE TABLE m1 (id INTEGER PRIMARY KEY, v TEXT)",
     "CREATE TABLE m1 (id BIGINT PRIMARY KEY, v TEXT)"},
    {2, "m2", "CREATE INDEX m1_v ON m1 (v); CREATE TABLE m2 (x INTEGER)",
     "CREATE INDEX m1_v ON m1 (v); CREATE TABLE m2 (x BIGINT)"},
    {3, "m3", "CREATE TABLE m3 (x INTEGER)", "CREATE TABLE m3 (x BIGINT)"},
    /* second statement fails: the first must not survive */
    {4, "broken", "CREATE TABLE m4 (x INTEGER); INSERT INTO nope VALUES (1)",
     "CREATE TABLE m4 (x BIGINT); INSERT INTO nope VALUES (1)"},
};

static void migrations_idempotent(void **state)
{
    struct fx *f = *state;
    struct dr_db *db = f->obj;
    struct dr_db_val v = DR_DB_TEXTV("kept");
    struct dr_db_migration bad[2] = {mig_v1v2[1], mig_v1v2[0]};

    assert_int_equal(dr_db_migrate(db, mig_v1v2, 2), DR_OK);
    assert_int_equal(
        dr_db_exec(db, "INSERT INTO m1 (id, v) VALUES (1, $1)", &v, 1, NULL, NULL, NULL), DR_OK);
    assert_int_equal(dr_db_migrate(db, mig_v1v2, 2), DR_OK);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM schema_migrations"), 2);

    /* reopen: nothing re-applied, data kept, the next migration applied once */
    dr_db_close(db);
    f->obj = NULL;
    assert_int_equal(dr_db_open(f->url, 0, (struct dr_db **)&f->obj), DR_OK);
    db = f->obj;
    assert_int_equal(dr_db_migrate(db, mig_v1v2, 3), DR_OK);
    assert_int_equal(dr_db_migrate(db, mig_v1v2, 3), DR_OK);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM schema_migrations"), 3);
    assert_int_equal(count_rows(db, "SELECT MAX(version) FROM schema_migrations"), 3);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM m1 WHERE v = 'kept'"), 1);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM m3"), 0);

    /* a failing migration is all or nothing and reports the failure */
    assert_int_not_equal(dr_db_migrate(db, mig_v1v2, 4), DR_OK);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM schema_migrations"), 3);
    assert_int_equal(dr_db_exec(db, "SELECT COUNT(*) FROM m4", NULL, 0, NULL, NULL, NULL),
                     DR_EINVAL);

    /* versions out of order are refused before anything runs */
    assert_int_equal(dr_db_migrate(db, bad, 2), DR_EINVAL);
    assert_int_equal(dr_db_migrate(NULL, mig_v1v2, 1), DR_EINVAL);
}

/* Each module owns a range of 100 versions; a version above a module's last in its range means
 * a newer program migrated the database. The calendar's first migration was 210, inside the
 * meeting polls' range, before it moved to 400, whose migration takes 210 off the list (as the
 * calendar's own does). */
static void schema_ranges(void **state)
{
    struct fx *f = *state;
    struct dr_db *db = f->obj;
    static const struct dr_db_migration polls[] = {
        {200, "p0", "CREATE TABLE p0 (x INTEGER)", "CREATE TABLE p0 (x BIGINT)"},
        {201, "p1", "CREATE TABLE p1 (x INTEGER)", "CREATE TABLE p1 (x BIGINT)"},
        {202, "p2", "CREATE TABLE p2 (x INTEGER)", "CREATE TABLE p2 (x BIGINT)"},
    };
    static const struct dr_db_migration cal_old[] = {
        {210, "cal", "CREATE TABLE cal (x INTEGER)", "CREATE TABLE cal (x BIGINT)"},
    };
    static const struct dr_db_migration cal[] = {
        {400, "cal",
         "CREATE TABLE IF NOT EXISTS cal (x INTEGER); DELETE FROM schema_migrations WHERE "
         "version = 210",
         "CREATE TABLE IF NOT EXISTS cal (x BIGINT); DELETE FROM schema_migrations WHERE "
         "version = 210"},
    };

    assert_int_equal(dr_db_migrate(db, polls, 2), DR_OK);
    assert_int_equal(dr_db_migrate(db, cal_old, 1), DR_OK);
    assert_int_equal(dr_db_schema_newer(db, polls, 2), 210);
    assert_int_equal(dr_db_migrate(db, cal, 1), DR_OK);
    assert_int_equal(dr_db_schema_newer(db, polls, 2), 0);
    assert_int_equal(dr_db_schema_newer(db, cal, 1), 0);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM schema_migrations WHERE version = 400"),
                     1);

    /* a newer program added 202: the older list sees it */
    assert_int_equal(dr_db_migrate(db, polls, 3), DR_OK);
    assert_int_equal(dr_db_schema_newer(db, polls, 2), 202);
    assert_int_equal(dr_db_schema_newer(db, polls, 3), 0);
    assert_int_equal(dr_db_schema_newer(NULL, polls, 2), 0);
}

struct worker {
    struct dr_db *db;
    int base;
    int errors;
};

static void *db_worker(void *arg)
{
    struct worker *w = arg;
    const char *ins = "INSERT INTO t (id, i, s, b, n) VALUES ($1, $2, $3, $4, $5)";

    for (int k = 0; k < 50; k++) {
        struct dr_db_tx *tx = NULL;
        struct ints r = {.n = 0};
        unsigned char blob[3] = {0, (unsigned char)k, 0};
        struct dr_db_val p[5] = {DR_DB_INTV(w->base + k), DR_DB_INTV(k), DR_DB_TEXTV("c"),
                                 DR_DB_BLOBV(blob, 3), DR_DB_NULLV};
        if (dr_db_begin(w->db, &tx) || dr_db_tx_exec(tx, ins, p, 5, NULL, NULL, NULL)) {
            w->errors++;
            dr_db_rollback(tx);
            continue;
        }
        if (dr_db_commit(tx)) {
            w->errors++;
        }
        if (dr_db_exec(w->db, "SELECT COUNT(*) FROM t", NULL, 0, collect_int, &r, NULL) ||
            r.n != 1 || r.v[0] < k + 1) {
            w->errors++;
        }
    }
    return NULL;
}

static void concurrent_use(void **state)
{
    struct dr_db *db = fx_db(state);
    struct worker w[4];
    pthread_t th[4];

    make_table(db);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.db = db, .base = i * 1000};
        assert_int_equal(pthread_create(&th[i], NULL, db_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 200);
}

/* ---- engine-specific ---- */

static int copy_text(void *ctx, const struct dr_db_row *row)
{
    const char *t = dr_db_row_text(row, 0);

    snprintf(ctx, 16, "%s", t ? t : "");
    return 0;
}

static void sqlite_pragmas_and_urls(void **state)
{
    struct fx *f = *state;
    struct dr_db *db = f->obj, *mem = NULL, *other = NULL;
    struct dr_db_tx *tx = NULL;
    struct ints r = {.n = 0};
    char url[PATH_MAX + 64];

    assert_int_equal(dr_db_engine(db), DR_DB_SQLITE);
    /* checked on the writer connection (transactions run there) */
    assert_int_equal(dr_db_begin(db, &tx), DR_OK);
    assert_int_equal(dr_db_tx_exec(tx, "PRAGMA synchronous", NULL, 0, collect_int, &r, NULL),
                     DR_OK);
    assert_int_equal(dr_db_tx_exec(tx, "PRAGMA foreign_keys", NULL, 0, collect_int, &r, NULL),
                     DR_OK);
    assert_int_equal(dr_db_tx_exec(tx, "PRAGMA busy_timeout", NULL, 0, collect_int, &r, NULL),
                     DR_OK);
    dr_db_rollback(tx);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.v[0], 1); /* NORMAL */
    assert_int_equal(r.v[1], 1);
    assert_true(r.v[2] > 0);
    char mode[16] = "";
    assert_int_equal(dr_db_exec(db, "PRAGMA journal_mode", NULL, 0, copy_text, mode, NULL), DR_OK);
    assert_string_equal(mode, "wal");
    /* strpos, registered for shared substring SQL */
    r.n = 0;
    assert_int_equal(
        dr_db_exec(db, "SELECT strpos('aé_%xb', '_%x')", NULL, 0, collect_int, &r, NULL), DR_OK);
    assert_int_equal(r.v[0], 3);

    assert_int_equal(dr_db_open(":memory:", 0, &mem), DR_OK);
    make_table(mem);
    insert(mem, 1, DR_DB_INTV(1), DR_DB_NULLV, DR_DB_NULLV, DR_DB_NULLV);
    assert_int_equal(count_rows(mem, "SELECT COUNT(*) FROM t"), 1);
    dr_db_close(mem);

    snprintf(url, sizeof(url), "sqlite://%s/other.db", f->dir);
    assert_int_equal(dr_db_open(url, 2, &other), DR_OK);
    dr_db_close(other);
    snprintf(url, sizeof(url), "%s/other.db", f->dir);
    assert_int_equal(access(url, F_OK), 0);
    assert_int_equal(dr_db_open(url, 1, &other), DR_OK);
    dr_db_close(other);
    unlink(url);
    snprintf(url, sizeof(url), "%s/other.db-wal", f->dir);
    unlink(url);
    snprintf(url, sizeof(url), "%s/other.db-shm", f->dir);
    unlink(url);

    other = (struct dr_db *)1;
    assert_int_equal(dr_db_open("sqlite:/nonexistent-dir/x/y.db", 0, &other), DR_EIO);
    assert_null(other);
    assert_int_equal(dr_db_open("", 0, &other), DR_EINVAL);
    assert_int_equal(dr_db_open(NULL, 0, &other), DR_EINVAL);
}

/* A database another process holds the write lock of: the writer waits out its busy timeout,
 * then fails with an error worth retrying, and succeeds once the lock is gone. */
static void sqlite_locked_is_transient(void **state)
{
    struct fx *f = *state;
    struct dr_db *db = f->obj, *other = NULL;
    struct dr_db_tx *tx = NULL;
    int err;

    make_table(db);
    assert_int_equal(dr_db_open(f->url, 1, &other), DR_OK);
    assert_int_equal(dr_db_begin(other, &tx), DR_OK); /* BEGIN IMMEDIATE: holds the lock */
    err = dr_db_exec(db, "INSERT INTO t (id) VALUES (1)", NULL, 0, NULL, NULL, NULL);
    assert_int_equal(err, DR_EIO);
    assert_false(dr_db_err_permanent(err));
    dr_db_rollback(tx);
    assert_int_equal(dr_db_exec(db, "INSERT INTO t (id) VALUES (1)", NULL, 0, NULL, NULL, NULL),
                     DR_OK);
    dr_db_close(other);
}

/* Multi-row statement helpers: sizes largest first, parameters numbered across rows. */
static void multi_row_sql(void **state)
{
    (void)state;
    char *sql = dr_db_rows_sql("INSERT INTO x (a, b) VALUES ", "(?, 1, ?)", 3, " RETURNING a");

    assert_string_equal(sql, "INSERT INTO x (a, b) VALUES ($1, 1, $2), ($3, 1, $4), ($5, 1, $6) "
                             "RETURNING a");
    free(sql);
    /* the widest in use: 64 rows of 7 parameters, nothing cut */
    sql = dr_db_rows_sql("V ", "(?, ?, ?, ?, ?, ?, ?)", DR_DB_CHUNK_MAX, ";");
    assert_non_null(strstr(sql, "V ($1, $2, $3, $4, $5, $6, $7), ($8, "));
    assert_non_null(strstr(sql, ", ($442, $443, $444, $445, $446, $447, $448);"));
    free(sql);
    sql = dr_db_rows_sql("SELECT ", "?", 1, "");
    assert_string_equal(sql, "SELECT $1");
    free(sql);
    assert_int_equal(dr_db_chunks[dr_db_chunk_index(1000)], DR_DB_CHUNK_MAX);
    assert_int_equal(dr_db_chunks[dr_db_chunk_index(63)], 16);
    assert_int_equal(dr_db_chunks[dr_db_chunk_index(16)], 16);
    assert_int_equal(dr_db_chunks[dr_db_chunk_index(5)], 4);
    assert_int_equal(dr_db_chunks[dr_db_chunk_index(3)], 1);
    assert_int_equal(dr_db_chunks[dr_db_chunk_index(1)], 1);
    /* any n is covered exactly by taking the largest size that fits, again and again */
    for (size_t n = 1; n < 300; n++) {
        size_t left = n;
        while (left) {
            size_t c = dr_db_chunks[dr_db_chunk_index(left)];
            assert_true(c <= left);
            left -= c;
        }
    }
}

/* A row of t holding only a blob, in tx. */
static void insert_blob(struct dr_db_tx *tx, int64_t id, const void *blob, size_t len)
{
    struct dr_db_val p[5] = {DR_DB_INTV(id), DR_DB_NULLV, DR_DB_NULLV, DR_DB_BLOBV(blob, len),
                             DR_DB_NULLV};

    assert_int_equal(dr_db_tx_exec(tx, "INSERT INTO t (id, i, s, b, n) VALUES ($1, $2, $3, $4, $5)",
                                   p, 5, NULL, NULL, NULL),
                     DR_OK);
}

/* Commits never checkpoint themselves: the background checkpointer must copy the WAL into the
 * database file once it passes its threshold, while the writer goes on. */
static void sqlite_background_checkpoint(void **state)
{
    struct fx *f = *state;
    struct dr_db *db = f->obj;
    static unsigned char blob[4096];
    char path[PATH_MAX + 32];
    struct stat sb;
    off_t before;

    make_table(db);
    snprintf(path, sizeof(path), "%s/test.db", f->dir);
    assert_int_equal(stat(path, &sb), 0);
    before = sb.st_size;
    for (int batch = 0; batch < 3; batch++) {
        struct dr_db_tx *tx = NULL;
        assert_int_equal(dr_db_begin(db, &tx), DR_OK);
        for (int i = 0; i < 500; i++) {
            insert_blob(tx, batch * 1000 + i, blob, sizeof(blob));
        }
        assert_int_equal(dr_db_commit(tx), DR_OK);
    }
    for (int waited = 0; waited < 100; waited++) {
        assert_int_equal(stat(path, &sb), 0);
        if (sb.st_size > before + 4 * 1024 * 1024) {
            break;
        }
        usleep(50 * 1000);
    }
    assert_true(sb.st_size > before + 4 * 1024 * 1024);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 1500);
}

/* Under steady load a checkpoint never catches up with the WAL, which then could never start
 * over; past DR_SQLITE_WAL_MAX_MB the checkpointer holds the writer off once so it does. The
 * writer here commits 64 KiB every 2 ms until 48 MiB went through the WAL: the file must stay
 * far below that. */
static void sqlite_wal_stays_bounded(void **state)
{
    struct fx *f = *state;
    struct dr_db *db = NULL;
    static unsigned char blob[4096];
    char url[PATH_MAX + 32], wal[PATH_MAX + 32];
    struct stat sb;

    snprintf(url, sizeof(url), "sqlite:%s/wal.db", f->dir);
    snprintf(wal, sizeof(wal), "%s/wal.db-wal", f->dir);
    setenv("DR_SQLITE_WAL_MAX_MB", "1", 1);
    assert_int_equal(dr_db_open(url, 0, &db), DR_OK);
    unsetenv("DR_SQLITE_WAL_MAX_MB");
    make_table(db);
    for (int64_t id = 0; id < 48 * 256; id += 16) {
        struct dr_db_tx *tx = NULL;
        assert_int_equal(dr_db_begin(db, &tx), DR_OK);
        for (int64_t i = id; i < id + 16; i++) {
            insert_blob(tx, i, blob, sizeof(blob));
        }
        /* rows two commits old go: the database itself stays small */
        struct dr_db_val d[1] = {DR_DB_INTV(id - 32)};
        assert_int_equal(dr_db_tx_exec(tx, "DELETE FROM t WHERE id < $1", d, 1, NULL, NULL, NULL),
                         DR_OK);
        assert_int_equal(dr_db_commit(tx), DR_OK);
        usleep(2000);
    }
    assert_int_equal(stat(wal, &sb), 0);
    assert_true(sb.st_size < 24 * 1024 * 1024);
    assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 48);
    dr_db_close(db);
}

static int get_pid(void *ctx, const struct dr_db_row *row)
{
    *(int64_t *)ctx = dr_db_row_int(row, 0);
    return 0;
}

static void pg_reconnects(void **state)
{
    struct fx *f = *state;
    struct dr_db *db = NULL, *admin = f->obj;
    int64_t pid = 0, pid2 = 0;
    struct dr_db_val p;
    struct ints r = {.n = 0};

    assert_int_equal(dr_db_open(f->url, 1, &db), DR_OK);
    assert_int_equal(dr_db_exec(db, "SELECT pg_backend_pid()", NULL, 0, get_pid, &pid, NULL),
                     DR_OK);
    assert_true(pid > 0);
    p = DR_DB_INTV(pid);
    assert_int_equal(dr_db_exec(admin, "SELECT pg_terminate_backend(CAST($1 AS INTEGER), 5000)", &p,
                                1, collect_int, &r, NULL),
                     DR_OK);
    assert_int_equal(r.v[0], 1);
    /* the statement that finds the connection dead reports it; the next one reconnects */
    assert_int_equal(dr_db_exec(db, "SELECT 1", NULL, 0, NULL, NULL, NULL), DR_EIO);
    assert_int_equal(dr_db_exec(db, "SELECT pg_backend_pid()", NULL, 0, get_pid, &pid2, NULL),
                     DR_OK);
    assert_true(pid2 > 0 && pid2 != pid);
    dr_db_close(db);
}

/* ---- engine-independent ---- */

static char *capture_stderr_of_open(const char *url, int *err)
{
    char path[] = "/tmp/dr-store-log-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    struct dr_db *db = NULL;
    char *text = dr_xcalloc(1, 65536);
    ssize_t n;

    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    *err = dr_db_open(url, 1, &db);
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, text, 65535);
    assert_true(n > 0);
    close(fd);
    unlink(path);
    assert_null(db);
    return text;
}

static void password_never_logged(void **state)
{
    int err;
    char *log = capture_stderr_of_open(
        "postgresql://router:Zq9-secret-pw@127.0.0.1:1/db?connect_timeout=2", &err);

    assert_int_equal(err, DR_EIO);
    assert_non_null(strstr(log, "cannot connect to postgresql"));
    assert_non_null(strstr(log, "router@127.0.0.1:1/db"));
    assert_null(strstr(log, "Zq9-secret-pw"));
    free(log);

    log = capture_stderr_of_open("postgres://router:Zq9-secret-pw%zz@127.0.0.1:1/db", &err);
    assert_int_equal(err, DR_EINVAL);
    assert_non_null(strstr(log, "invalid postgresql url"));
    assert_null(strstr(log, "Zq9-secret-pw"));
    free(log);
}

#define DB_TESTS(X)                                                                                \
    X(params_every_type)                                                                           \
    X(bad_input_errors)                                                                            \
    X(callback_stop_and_changes)                                                                   \
    X(unique_violation_is_eexist)                                                                  \
    X(refusals_are_permanent)                                                                      \
    X(tx_commit_rollback_poison)                                                                   \
    X(migrations_idempotent)                                                                       \
    X(schema_ranges)                                                                               \
    X(concurrent_use)

int main(void)
{
    const struct CMUnitTest common[] = {
        cmocka_unit_test(password_never_logged),
    };
    const struct CMUnitTest lite[] = {
        DB_TESTS(ON_SQLITE) ON_SQLITE(sqlite_pragmas_and_urls) ON_SQLITE(sqlite_locked_is_transient)
            ON_SQLITE(sqlite_background_checkpoint) ON_SQLITE(sqlite_wal_stays_bounded)
                cmocka_unit_test(multi_row_sql)};
    const struct CMUnitTest pg[] = {DB_TESTS(ON_PG) ON_PG(pg_reconnects)};
    int failed = 0;

    failed += cmocka_run_group_tests_name("db common", common, NULL, NULL);
    failed += cmocka_run_group_tests_name("db sqlite", lite, NULL, NULL);
    failed += cmocka_run_group_tests_name("db postgresql", pg, NULL, NULL);
    return failed ? 1 : 0;
}
