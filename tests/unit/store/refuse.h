/*
 * A database that refuses some writes for good, as an operator's constraint or trigger would:
 * the statement fails with an error dr_db_err_permanent() calls permanent (RAISE(ABORT) on
 * SQLite, RAISE EXCEPTION on PostgreSQL). For tests of how callers treat refusals.
 */
#ifndef DR_TEST_STORE_REFUSE_H
#define DR_TEST_STORE_REFUSE_H

#include <stdio.h>

#include "dr/db.h"
#include "dr/err.h"

/*
 * Refuses every INSERT into table whose column equals value, or every INSERT when column is
 * NULL, through a trigger called name (on PostgreSQL also a function called name). All the
 * arguments are constants of the test, never input. refuse_inserts_drop() takes it away.
 */
static inline void refuse_inserts(struct dr_db *db, const char *name, const char *table,
                                  const char *column, const char *value)
{
    char sql[1024], cond[256] = "";

    if (dr_db_engine(db) == DR_DB_POSTGRES) {
        if (column) {
            snprintf(cond, sizeof(cond), "IF NEW.%s = $v$%s$v$ THEN ", column, value);
        }
        snprintf(sql, sizeof(sql),
                 "CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $f$BEGIN %s"
                 "RAISE EXCEPTION 'refused'; %s RETURN NEW; END$f$",
                 name, cond, column ? "END IF;" : "");
        assert_int_equal(dr_db_exec(db, sql, NULL, 0, NULL, NULL, NULL), DR_OK);
        snprintf(sql, sizeof(sql),
                 "CREATE TRIGGER %s BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION %s()", name,
                 table, name);
    } else {
        if (column) {
            snprintf(cond, sizeof(cond), "WHEN NEW.%s = '%s' ", column, value);
        }
        snprintf(sql, sizeof(sql),
                 "CREATE TRIGGER %s BEFORE INSERT ON %s %sBEGIN SELECT RAISE(ABORT, 'refused'); "
                 "END",
                 name, table, cond);
    }
    assert_int_equal(dr_db_exec(db, sql, NULL, 0, NULL, NULL, NULL), DR_OK);
}

/* Refuses every DELETE of a row of table, through a trigger (and on PostgreSQL a function)
 * called name; refuse_inserts_drop() takes it away too. */
static inline void refuse_deletes(struct dr_db *db, const char *name, const char *table)
{
    char sql[1024];

    if (dr_db_engine(db) == DR_DB_POSTGRES) {
        snprintf(sql, sizeof(sql),
                 "CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $f$BEGIN "
                 "RAISE EXCEPTION 'refused'; END$f$",
                 name);
        assert_int_equal(dr_db_exec(db, sql, NULL, 0, NULL, NULL, NULL), DR_OK);
        snprintf(sql, sizeof(sql),
                 "CREATE TRIGGER %s BEFORE DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s()", name,
                 table, name);
    } else {
        snprintf(sql, sizeof(sql),
                 "CREATE TRIGGER %s BEFORE DELETE ON %s BEGIN SELECT RAISE(ABORT, 'refused'); END",
                 name, table);
    }
    assert_int_equal(dr_db_exec(db, sql, NULL, 0, NULL, NULL, NULL), DR_OK);
}

static inline void refuse_inserts_drop(struct dr_db *db, const char *name, const char *table)
{
    char sql[256];

    if (dr_db_engine(db) == DR_DB_POSTGRES) {
        snprintf(sql, sizeof(sql), "DROP TRIGGER %s ON %s", name, table);
        assert_int_equal(dr_db_exec(db, sql, NULL, 0, NULL, NULL, NULL), DR_OK);
        snprintf(sql, sizeof(sql), "DROP FUNCTION %s()", name);
    } else {
        snprintf(sql, sizeof(sql), "DROP TRIGGER %s", name);
    }
    assert_int_equal(dr_db_exec(db, sql, NULL, 0, NULL, NULL, NULL), DR_OK);
}

#endif
