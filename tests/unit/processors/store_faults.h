/*
 * Store failures for processor tests (include after proc_fixture.h): a store that refuses a
 * table's writes for good, and a store that is busy.
 */
#ifndef DR_TEST_STORE_FAULTS_H
#define DR_TEST_STORE_FAULTS_H

#include <stdio.h>

#include "dr/db.h"
#include "dr/store.h"
#include "unit/store/refuse.h"

/*
 * Makes the store refuse every INSERT into table for good, as a constraint or trigger of an
 * operator would (RAISE(ABORT) on SQLite, RAISE EXCEPTION on PostgreSQL): the processor's write
 * fails with an error dr_db_err_permanent() calls permanent. pfx_allow() drops the trigger.
 * table is a constant of the test, never input.
 */
static void pfx_refuse(void **state, const char *table)
{
    refuse_inserts(dr_store_db(((struct pfx *)*state)->st), "pfx_refuse", table, NULL, NULL);
}

static void pfx_allow(void **state, const char *table)
{
    refuse_inserts_drop(dr_store_db(((struct pfx *)*state)->st), "pfx_refuse", table);
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
