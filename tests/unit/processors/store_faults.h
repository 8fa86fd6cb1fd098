/*
 * Store failures for processor tests (include after proc_fixture.h): a store that refuses a
 * table's writes for good, and a store that is busy.
 */
#ifndef DR_TEST_STORE_FAULTS_H
#define DR_TEST_STORE_FAULTS_H

#include <stdio.h>

#include "dr/db.h"
#include "dr/store.h"

/*
 * Makes the store refuse every INSERT into table for good, as a constraint or trigger of an
 * operator would (RAISE(ABORT) on SQLite, RAISE EXCEPTION on PostgreSQL): the processor's write
 * fails with an error dr_db_err_permanent() calls permanent. pfx_allow() drops the trigger.
 * table is a constant of the test, never input.
 */
static void pfx_refuse(void **state, const char *table)
{
    struct dr_db *db = dr_store_db(((struct pfx *)*state)->st);
    char sql[512];

    if (dr_db_engine(db) == DR_DB_POSTGRES) {
        assert_int_equal(dr_db_exec(db,
                                    "CREATE OR REPLACE FUNCTION pfx_refuse() RETURNS trigger"
                                    " LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''refused''; END'",
                                    NULL, 0, NULL, NULL, NULL),
                         DR_OK);
        snprintf(sql, sizeof(sql),
                 "CREATE TRIGGER pfx_refuse BEFORE INSERT ON %s FOR EACH ROW"
                 " EXECUTE FUNCTION pfx_refuse()",
                 table);
    } else {
        snprintf(sql, sizeof(sql),
                 "CREATE TRIGGER pfx_refuse BEFORE INSERT ON %s"
                 " BEGIN SELECT RAISE(ABORT, 'refused'); END",
                 table);
    }
    assert_int_equal(dr_db_exec(db, sql, NULL, 0, NULL, NULL, NULL), DR_OK);
}

static void pfx_allow(void **state, const char *table)
{
    struct dr_db *db = dr_store_db(((struct pfx *)*state)->st);
    char sql[256];

    if (dr_db_engine(db) == DR_DB_POSTGRES) {
        snprintf(sql, sizeof(sql), "DROP TRIGGER pfx_refuse ON %s", table);
    } else {
        snprintf(sql, sizeof(sql), "DROP TRIGGER pfx_refuse");
    }
    assert_int_equal(dr_db_exec(db, sql, NULL, 0, NULL, NULL, NULL), DR_OK);
}

/*
 * SQLite only: another connection takes the database's write lock (BEGIN IMMEDIATE), so the
 * processor's writes wait out the busy timeout (5 s) and fail as busy, a transient failure.
 * pfx_unlock() gives the lock back.
 */
static struct dr_db *pfx_lock(void **state, struct dr_db_tx **tx)
{
    struct dr_db *other = NULL;

    assert_int_equal(dr_db_open(((struct pfx *)*state)->fx.url, 1, &other), DR_OK);
    assert_int_equal(dr_db_begin(other, tx), DR_OK);
    return other;
}

static void pfx_unlock(struct dr_db *other, struct dr_db_tx *tx)
{
    dr_db_rollback(tx);
    dr_db_close(other);
}

#endif
