/*
 * Test fixture shared by the store tests: every test function runs once per engine.
 *   SQLite:     a fresh database file in a new temporary directory per test.
 *   PostgreSQL: a fresh schema per test in the database at $DR_TEST_PG_URL (selected through
 *               the URL's search_path option, so tables never collide with other test programs
 *               using the same database). Without DR_TEST_PG_URL every PostgreSQL test FAILS.
 * Include once per test program, after cmocka.h.
 */
#ifndef DR_TEST_STORE_BACKEND_H
#define DR_TEST_STORE_BACKEND_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dr/db.h"
#include "dr/err.h"
#include "dr/util.h"

struct dr_store;

struct backend {
    enum dr_db_engine engine;
    const char *name;
};

static const struct backend backend_sqlite = {DR_DB_SQLITE, "sqlite"};
static const struct backend backend_pg = {DR_DB_POSTGRES, "postgresql"};

struct fx {
    const struct backend *be;
    char url[PATH_MAX + 512];
    char dir[PATH_MAX]; /* SQLite */
    char schema[64];    /* PostgreSQL */
    union {             /* what the test program opened on url */
        void *obj;
        struct dr_db *db;
        struct dr_store *store;
    };
};

static int pg_url_missing_reported;

static const char *pg_base_url(void)
{
    const char *u = getenv("DR_TEST_PG_URL");

    if (!u || !*u) {
        if (!pg_url_missing_reported) {
            fprintf(stderr, "FAIL: DR_TEST_PG_URL is not set, so the PostgreSQL tests cannot run. "
                            "Run them under the harness: scripts/test-env ctest --test-dir "
                            "<build> --output-on-failure\n");
            pg_url_missing_reported = 1;
        }
        return NULL;
    }
    return u;
}

static int pg_admin(const char *sql)
{
    struct dr_db *db = NULL;
    int err = dr_db_open(pg_base_url(), 1, &db);

    if (!err) {
        err = dr_db_exec(db, sql, NULL, 0, NULL, NULL, NULL);
    }
    dr_db_close(db);
    return err;
}

/* Makes a fresh, empty database for one test and fills f->url. 0 on success. */
static int fx_prepare(struct fx *f, const struct backend *be)
{
    static int seq;
    char sql[256];

    memset(f, 0, sizeof(*f));
    f->be = be;
    if (be->engine == DR_DB_SQLITE) {
        snprintf(f->dir, sizeof(f->dir), "/tmp/dr-store-test-XXXXXX");
        if (!mkdtemp(f->dir)) {
            perror("mkdtemp");
            return -1;
        }
        snprintf(f->url, sizeof(f->url), "sqlite:%s/test.db", f->dir);
        return 0;
    }
    const char *base = pg_base_url();
    if (!base) {
        return -1;
    }
    /* the schema name is made here from digits, never from input */
    snprintf(f->schema, sizeof(f->schema), "drt_%ld_%d", (long)getpid(), ++seq);
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
    if (pg_admin(sql)) {
        return -1;
    }
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", f->schema);
    if (pg_admin(sql)) {
        return -1;
    }
    snprintf(f->url, sizeof(f->url), "%s%coptions=-csearch_path%%3D%s", base,
             strchr(base, '?') ? '&' : '?', f->schema);
    return 0;
}

static void fx_release(struct fx *f)
{
    char path[PATH_MAX + 64];
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};

    if (f->be->engine == DR_DB_SQLITE) {
        if (f->dir[0]) {
            for (size_t i = 0; i < DR_ARRAY_LEN(suffixes); i++) {
                snprintf(path, sizeof(path), "%s/test.db%s", f->dir, suffixes[i]);
                unlink(path);
            }
            rmdir(f->dir);
        }
        return;
    }
    if (f->schema[0]) {
        char sql[256];
        snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", f->schema);
        pg_admin(sql);
    }
}

/*
 * The usual setup and teardown of a test program, which passes what it opens on f->url (into
 * f->obj: a dr_db, a dr_store, ...) and how to close it. A failed setup undoes everything itself:
 * cmocka skips the teardown then.
 */
static inline int fx_setup_with(void **state, int (*open)(struct fx *f))
{
    const struct backend *be = *state;
    struct fx *f = dr_xcalloc(1, sizeof(*f));

    if (fx_prepare(f, be)) {
        free(f);
        return -1;
    }
    if (open(f) != DR_OK) {
        fprintf(stderr, "cannot open the %s test database\n", be->name);
        fx_release(f);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int fx_teardown_with(void **state, void (*close)(struct fx *f))
{
    struct fx *f = *state;

    if (f && f->be) {
        close(f);
        fx_release(f);
    }
    free(f);
    return 0;
}

#ifdef FX_STORE
/* A test program that defines FX_STORE before including this file opens a struct dr_store on
 * url (f->store, dr_store_open) and gets its fx_setup and fx_teardown from here. */
#include "dr/store.h"

static int fx_open_store(struct fx *f)
{
    return dr_store_open(f->url, &f->store);
}

static void fx_close_store(struct fx *f)
{
    dr_store_close(f->store);
}

static int fx_setup(void **state)
{
    return fx_setup_with(state, fx_open_store);
}

static int fx_teardown(void **state)
{
    return fx_teardown_with(state, fx_close_store);
}
#endif

/* Runs each test once per engine: X-macro lists expand through these. */
#define ON_SQLITE(fn)                                                                              \
    cmocka_unit_test_prestate_setup_teardown(fn, fx_setup, fx_teardown, (void *)&backend_sqlite),
#define ON_PG(fn)                                                                                  \
    cmocka_unit_test_prestate_setup_teardown(fn, fx_setup, fx_teardown, (void *)&backend_pg),

/* Collects an int column of every row. */
struct ints {
    int64_t v[4096];
    size_t n;
};

static int collect_int(void *ctx, const struct dr_db_row *row)
{
    struct ints *r = ctx;

    if (r->n < DR_ARRAY_LEN(r->v)) {
        r->v[r->n++] = dr_db_row_int(row, 0);
    }
    return 0;
}

static inline int64_t count_rows(struct dr_db *db, const char *sql)
{
    struct ints r = {.n = 0};

    if (dr_db_exec(db, sql, NULL, 0, collect_int, &r, NULL) || r.n != 1) {
        return -1;
    }
    return r.v[0];
}

#endif
