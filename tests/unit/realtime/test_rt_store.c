/* Tests src/realtime/rt_store.c on SQLite (the store paths on PostgreSQL too): seq assignment,
 * duplicates, a batch with rows the store refuses, catch-up queries, the inbox and its read
 * state (read-all in one transaction, its mark never moving back), the permission rule for
 * context rooms, and (PostgreSQL) seqs becoming visible in order when several instances store at
 * once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/util.h"
#include "realtime/rt_int.h"
#include "store/db_internal.h"
#include "unit/store/backend.h"
#include "unit/store/refuse.h"

/* the database of a test, migrated, on the engine it runs on (unit/store/backend.h); f->url
 * opens another handle on the same tables: another instance */
static int open_migrated(struct fx *f)
{
    int err = dr_db_open(f->url, 2, &f->db);

    if (!err && (err = dr__rt_migrate(f->db)) != DR_OK) {
        dr_db_close(f->db);
    }
    return err;
}

static void close_db(struct fx *f)
{
    dr_db_close(f->db);
}

static int fx_setup(void **state)
{
    return fx_setup_with(state, open_migrated);
}

static int fx_teardown(void **state)
{
    return fx_teardown_with(state, close_db);
}

static struct dr_notification *make(const char *id, const char *user, const char *room)
{
    char json[256];
    struct dr_notification *n = NULL;

    snprintf(json, sizeof(json),
             "{\"notification_id\":\"%s\",\"user_id\":\"%s\",\"room\":\"%s\","
             "\"notification_type\":\"system.t\"}",
             id, user, room);
    assert_int_equal(dr_notification_parse(json, strlen(json), NULL, &n, NULL, 0), DR_OK);
    return n;
}

static int get_count(void *ctx, const struct dr_db_row *row)
{
    *(int64_t *)ctx = dr_db_row_int(row, 0);
    return 0;
}

static int64_t put(struct dr_db *db, const char *id, const char *user, const char *room, int *dup)
{
    struct dr_notification *n = make(id, user, room);
    int64_t seq;

    assert_int_equal(dr__rt_store_put(db, n, dup), DR_OK);
    seq = dr_notification_seq(n);
    dr_notification_unref(n);
    return seq;
}

static void seq_increases_and_duplicates_keep_theirs(void **state)
{
    struct fx *f = *state;
    int dup;
    int64_t a = put(f->db, "a", "u1", "user:u1", &dup);
    assert_false(dup);
    int64_t b = put(f->db, "b", "u2", "user:u2", &dup);
    int64_t c = put(f->db, "c", "u1", "meeting:p", &dup);
    assert_true(a > 0 && b > a && c > b);
    assert_int_equal(put(f->db, "b", "u2", "user:u2", &dup), b);
    assert_true(dup);
}

/* One transaction for many: seqs ascend in the given order, a notification stored before or
 * earlier in the same batch is a duplicate with the first seq, and each carries its seq. */
static void batch_store(void **state)
{
    struct fx *f = *state;
    int dup;
    int64_t old = put(f->db, "old", "u1", "user:u1", &dup);
    struct dr_notification *v[4] = {make("n1", "u1", "user:u1"), make("old", "u1", "user:u1"),
                                    make("n2", "u2", "org:o"), make("n1", "u1", "user:u1")};
    int dups[4] = {-1, -1, -1, -1};

    assert_int_equal(dr__rt_store_put_many(f->db, v, 4, dups), DR_OK);
    assert_int_equal(dups[0], 0);
    assert_int_equal(dups[1], 1);
    assert_int_equal(dups[2], 0);
    assert_int_equal(dups[3], 1);
    assert_true(dr_notification_seq(v[0]) > old);
    assert_int_equal(dr_notification_seq(v[1]), old);
    assert_true(dr_notification_seq(v[2]) > dr_notification_seq(v[0]));
    assert_int_equal(dr_notification_seq(v[3]), dr_notification_seq(v[0]));
    /* stored: a later single store of n2 is a duplicate with the batch's seq */
    assert_int_equal(put(f->db, "n2", "u2", "org:o", &dup), dr_notification_seq(v[2]));
    assert_true(dup);
    for (int i = 0; i < 4; i++) {
        dr_notification_unref(v[i]);
    }
}

/* A batch larger than one multi-row statement: new ones get increasing seqs in batch order
 * across the statements, repeats (of an earlier store, of an earlier one in the batch, in the
 * same statement or in an earlier one) get the seq already stored, and everything reads back. */
static void batch_store_across_statements(void **state)
{
    enum { N = 150 };
    struct fx *f = *state;
    struct dr_notification *v[N];
    int dups[N];
    int dup = 0;
    char id[16];
    int64_t pre = put(f->db, "pre", "u1", "user:u1", &dup);
    char *rooms[] = {"user:u1", "user:u2"};
    struct dr_notification **back;
    size_t n;

    for (int i = 0; i < N; i++) {
        int same = i == 63 ? 0 : i == 64 ? 10 : i == 70 ? 65 : -1;
        if (i == 149) {
            snprintf(id, sizeof(id), "pre");
        } else {
            snprintf(id, sizeof(id), "c%d", same >= 0 ? same : i);
        }
        v[i] = make(id, i % 2 ? "u1" : "u2", i % 2 ? "user:u1" : "user:u2");
        dups[i] = -1;
    }
    assert_int_equal(dr__rt_store_put_many(f->db, v, N, dups), DR_OK);
    int64_t last = pre;
    int fresh = 0;
    for (int i = 0; i < N; i++) {
        int64_t seq = dr_notification_seq(v[i]);
        if (i == 63 || i == 64 || i == 70 || i == 149) {
            int of = i == 63 ? 0 : i == 64 ? 10 : i == 70 ? 65 : -1;
            assert_int_equal(dups[i], 1);
            assert_int_equal(seq, of >= 0 ? dr_notification_seq(v[of]) : pre);
            continue;
        }
        assert_int_equal(dups[i], 0);
        assert_true(seq > last);
        last = seq;
        fresh++;
    }
    assert_int_equal(fresh, N - 4);
    assert_int_equal(dr__rt_store_since(f->db, rooms, 2, pre, 1000, &back, &n, NULL), DR_OK);
    assert_int_equal(n, (size_t)fresh);
    for (size_t k = 0, i = 0; k < n; k++, i++) {
        while (dups[i]) {
            i++;
        }
        assert_int_equal(dr_notification_seq(back[k]), dr_notification_seq(v[i]));
        assert_string_equal(dr_notification_id(back[k]), dr_notification_id(v[i]));
    }
    dr__rt_notifications_free(back, n);
    for (int i = 0; i < N; i++) {
        dr_notification_unref(v[i]);
    }
}

static void exec_ok(struct dr_db *db, const char *sql)
{
    assert_int_equal(dr_db_exec(db, sql, NULL, 0, NULL, NULL, NULL), DR_OK);
}

/* A batch with a stored notification repeated twice and new ones after each: the repeats have
 * the stored seq, the new ones increasing seqs above every earlier one, and each is stored once. */
static void batch_repeats_a_stored_one(void **state)
{
    struct fx *f = *state;
    int dup;
    int64_t old = put(f->db, "old", "u1", "user:u1", &dup);
    int64_t later = put(f->db, "later", "u1", "user:u1", &dup);
    struct dr_notification *v[6] = {make("old", "u1", "user:u1"), make("m1", "u1", "user:u1"),
                                    make("old", "u1", "user:u1"), make("m2", "u1", "user:u1"),
                                    make("m1", "u1", "user:u1"),  make("m3", "u1", "user:u1")};
    int dups[6], errs[6];
    int64_t count = -1;

    assert_int_equal(dr__rt_store_put_batch(f->db, v, 6, dups, errs), 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(errs[i], DR_OK);
        assert_int_equal(dups[i], i == 0 || i == 2 || i == 4);
    }
    assert_int_equal(dr_notification_seq(v[0]), old);
    assert_int_equal(dr_notification_seq(v[2]), old);
    assert_int_equal(dr_notification_seq(v[4]), dr_notification_seq(v[1]));
    assert_true(dr_notification_seq(v[1]) > later);
    assert_true(dr_notification_seq(v[3]) > dr_notification_seq(v[1]));
    assert_true(dr_notification_seq(v[5]) > dr_notification_seq(v[3]));
    assert_int_equal(dr_db_exec(f->db, "SELECT COUNT(*) FROM rt_notifications", NULL, 0, get_count,
                                &count, NULL),
                     DR_OK);
    assert_int_equal(count, 5);
    /* stored: a single store of m2 is a duplicate with the batch's seq */
    assert_int_equal(put(f->db, "m2", "u1", "user:u1", &dup), dr_notification_seq(v[3]));
    assert_true(dup);
    for (int i = 0; i < 6; i++) {
        dr_notification_unref(v[i]);
    }
}

/* A row the store skips without an error (a trigger's RAISE(IGNORE)) is neither stored nor a
 * repeat: the batch fails for now (as a lookup of its seq would), and stores nothing. */
static void batch_with_silently_skipped_row(void **state)
{
    struct fx *f = *state;
    struct dr_notification *v[3] = {make("s1", "u1", "user:u1"), make("skip", "u1", "user:u1"),
                                    make("s2", "u1", "user:u1")};
    int dups[3];
    int64_t count = -1;

    exec_ok(f->db, "CREATE TRIGGER skip_one BEFORE INSERT ON rt_notifications"
                   " WHEN NEW.notification_id = 'skip' BEGIN SELECT RAISE(IGNORE); END");
    assert_int_equal(dr__rt_store_put_many(f->db, v, 3, dups), DR_EIO);
    assert_int_equal(dr_db_exec(f->db, "SELECT COUNT(*) FROM rt_notifications", NULL, 0, get_count,
                                &count, NULL),
                     DR_OK);
    assert_int_equal(count, 0);
    for (int i = 0; i < 3; i++) {
        dr_notification_unref(v[i]);
    }
}

/* A seq is never given twice, even once its row is gone: a client may hold it as its since. A
 * batch after the newest row was deleted numbers on above it, and so does a single store after
 * that batch. */
static void seqs_never_reused(void **state)
{
    struct fx *f = *state;
    int dup;
    struct dr_notification *a[2] = {make("a1", "u1", "user:u1"), make("a2", "u1", "user:u1")};
    struct dr_notification *b[2] = {make("b1", "u1", "user:u1"), make("b2", "u1", "user:u1")};
    int dups[2];
    char sql[96];

    assert_int_equal(dr__rt_store_put_many(f->db, a, 2, dups), DR_OK);
    snprintf(sql, sizeof(sql), "DELETE FROM rt_notifications WHERE seq = %lld",
             (long long)dr_notification_seq(a[1]));
    exec_ok(f->db, sql);
    assert_int_equal(dr__rt_store_put_many(f->db, b, 2, dups), DR_OK);
    assert_true(dr_notification_seq(b[0]) > dr_notification_seq(a[1]));
    assert_true(dr_notification_seq(b[1]) > dr_notification_seq(b[0]));
    snprintf(sql, sizeof(sql), "DELETE FROM rt_notifications WHERE seq = %lld",
             (long long)dr_notification_seq(b[1]));
    exec_ok(f->db, sql);
    assert_true(put(f->db, "c1", "u1", "user:u1", &dup) > dr_notification_seq(b[1]));
    for (int i = 0; i < 2; i++) {
        dr_notification_unref(a[i]);
        dr_notification_unref(b[i]);
    }
}

/* A batch of 70 (two multi-row statements) where the store refuses r1 (a trigger) and r2 (a
 * CHECK on PostgreSQL, a second trigger on SQLite): those two fail for good, every other one is
 * stored with its seq in batch order, a repeat included. */
static void batch_with_refused_rows(void **state)
{
    enum { N = 70 };
    struct fx *f = *state;
    struct dr_notification *v[N];
    int dups[N], errs[N];
    int dup = 0;
    char id[16];
    int64_t pre = put(f->db, "pre", "u1", "user:u1", &dup);
    int64_t last = pre;

    refuse_inserts(f->db, "refuse_r1", "rt_notifications", "notification_id", "r1");
    if (dr_db_engine(f->db) == DR_DB_POSTGRES) { /* a CHECK refuses too */
        exec_ok(f->db, "ALTER TABLE rt_notifications ADD CONSTRAINT refuse_r2"
                       " CHECK (notification_id <> 'r2')");
    } else {
        refuse_inserts(f->db, "refuse_r2", "rt_notifications", "notification_id", "r2");
    }
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), i == 5 ? "r1" : i == 66 ? "r2" : i == 40 ? "pre" : "b%d", i);
        v[i] = make(id, "u1", "user:u1");
        dups[i] = errs[i] = -1;
    }
    assert_int_equal(dr__rt_store_put_batch(f->db, v, N, dups, errs), N - 2);
    for (int i = 0; i < N; i++) {
        if (i == 5 || i == 66) {
            assert_int_equal(errs[i], DR_EINVAL);
            assert_true(dr_db_err_permanent(errs[i]));
            continue;
        }
        assert_int_equal(errs[i], DR_OK);
        assert_int_equal(dups[i], i == 40);
        if (i == 40) {
            assert_int_equal(dr_notification_seq(v[i]), pre);
            continue;
        }
        assert_true(dr_notification_seq(v[i]) > last);
        last = dr_notification_seq(v[i]);
    }
    {
        struct dr_db_val p[1] = {DR_DB_INTV(pre)};
        int64_t stored = -1;
        assert_int_equal(dr_db_exec(f->db, "SELECT COUNT(*) FROM rt_notifications WHERE seq > $1",
                                    p, 1, get_count, &stored, NULL),
                         DR_OK);
        assert_int_equal(stored, N - 3);
    }
    for (int i = 0; i < N; i++) {
        dr_notification_unref(v[i]);
    }
}

static void since_filters_rooms_and_pages(void **state)
{
    struct fx *f = *state;
    struct dr_notification **v;
    size_t n;
    int dup;
    int64_t s[6], next;
    char id[8];
    char *rooms[] = {"user:u1", "meeting:p"};

    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof(id), "x%d", i);
        s[i] = put(f->db, id, i % 2 ? "u1" : "u9", i % 3 == 0 ? "meeting:p" : "user:u1", &dup);
    }
    put(f->db, "other", "u2", "user:u2", &dup);
    assert_int_equal(dr__rt_store_since(f->db, rooms, 2, s[1], 3, &v, &n, &next), DR_OK);
    assert_int_equal(n, 3);
    assert_int_equal(next, s[4]); /* a full page: there may be more after it */
    assert_int_equal(dr_notification_seq(v[0]), s[2]);
    assert_int_equal(dr_notification_seq(v[2]), s[4]);
    assert_non_null(strstr(dr_notification_json(v[0], NULL), "\"seq\":"));
    dr__rt_notifications_free(v, n);
    assert_int_equal(dr__rt_store_since(f->db, rooms, 1, s[5], 10, &v, &n, &next), DR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(next, -1);
    dr__rt_notifications_free(v, n);
}

/* The next stored notification gets a seq above to: seqs far apart without storing all those
 * between. */
static void jump_seq(struct dr_db *db, int64_t to)
{
    char sql[160];

    if (dr_db_engine(db) == DR_DB_POSTGRES) {
        snprintf(sql, sizeof(sql),
                 "ALTER TABLE rt_notifications ALTER COLUMN seq RESTART WITH %lld",
                 (long long)to + 1);
    } else {
        snprintf(sql, sizeof(sql),
                 "UPDATE sqlite_sequence SET seq = %lld WHERE name = 'rt_notifications'",
                 (long long)to);
    }
    exec_ok(db, sql);
}

static void expect_since(struct dr_db *db, char **rooms, size_t nrooms, int64_t since, size_t limit,
                         const int64_t *want, size_t nwant, int64_t want_next)
{
    struct dr_notification **v;
    size_t n;
    int64_t next;

    assert_int_equal(dr__rt_store_since(db, rooms, nrooms, since, limit, &v, &n, &next), DR_OK);
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(dr_notification_seq(v[i]), want[i]);
    }
    assert_int_equal(next, want_next);
    dr__rt_notifications_free(v, n);
}

/* A catch-up over seqs far apart (SQLite reads by ranges of 4,096 seqs, 32 ranges a query): rows
 * of the rooms asked, all of them, in seq order, in pages, none of other rooms or at or below
 * since. */
static void since_across_seq_ranges(void **state)
{
    struct fx *f = *state;
    int dup;
    int64_t a1, b1, a2, a3, b2;
    char *ab[] = {"meeting:a", "user:b"};
    char *a[] = {"meeting:a"};

    a1 = put(f->db, "a1", "u1", "meeting:a", &dup);
    jump_seq(f->db, 5000);
    b1 = put(f->db, "b1", "u1", "user:b", &dup);
    put(f->db, "c0", "u1", "meeting:c", &dup);
    jump_seq(f->db, 40 * 4096 + 10); /* more than one query's ranges further */
    a2 = put(f->db, "a2", "u1", "meeting:a", &dup);
    put(f->db, "c1", "u1", "meeting:c", &dup);
    jump_seq(f->db, 200000);
    a3 = put(f->db, "a3", "u1", "meeting:a", &dup);
    b2 = put(f->db, "b2", "u1", "user:b", &dup);
    assert_true(a1 < b1 && b1 < a2 && a2 < a3 && a3 < b2 && b2 > 200000);

    int64_t all[] = {a1, b1, a2, a3, b2};
    expect_since(f->db, ab, 2, 0, 100, all, 5, -1);
    expect_since(f->db, ab, 2, -1, 100, all, 5, -1);
    expect_since(f->db, ab, 2, 0, 2, all, 2, b1);
    expect_since(f->db, ab, 2, b1, 2, &all[2], 2, a3);
    expect_since(f->db, ab, 2, a3, 2, &all[4], 1, -1);
    expect_since(f->db, ab, 2, b2, 2, NULL, 0, -1);
    expect_since(f->db, a, 1, a1, 100, &all[2], 2, -1);
    expect_since(f->db, a, 1, a2 - 1, 1, &all[2], 1, a2);
}

/* The plans of the statements the store runs (dr__lite_set_plan_hook): each query by room
 * reads an index, never a walk of rt_notifications. */
struct plans {
    char text[32768]; /* "<sql>\n<plan lines>" of each statement on rt_notifications */
    int statements;
};

static void take_plan(void *ctx, const char *sql, const char *plan)
{
    struct plans *p = ctx;
    size_t used = strlen(p->text);

    if (!strstr(sql, "rt_notifications") && !strstr(sql, "rt_inbox_batches")) {
        return;
    }
    p->statements++;
    snprintf(p->text + used, sizeof(p->text) - used, "%s\n%s", sql, plan);
}

/* 1 when the plan line at (len bytes) scans a subquery's rows that text made before
 * ("MATERIALIZE b" or "CO-ROUTINE b", then "SCAN b"), not a table. */
static int scans_subquery(const char *text, const char *at, size_t len)
{
    static const char *const kinds[] = {"MATERIALIZE", "CO-ROUTINE"};
    char want[80];

    for (size_t i = 0; i < DR_ARRAY_LEN(kinds); i++) {
        if (len - 5 + strlen(kinds[i]) + 2 >= sizeof(want)) {
            continue;
        }
        snprintf(want, sizeof(want), "%s %.*s\n", kinds[i], (int)(len - 5), at + 5);
        if (memmem(text, (size_t)(at - text), want, strlen(want))) {
            return 1;
        }
    }
    return 0;
}

/* A walk of a table in text: a plan line "SCAN <table>" (SQLite also says SCAN for a covering
 * index, "SCAN n USING ... INDEX", for a constant row, for a table-valued function such as
 * json_each, "SCAN j VIRTUAL TABLE", and for a materialized subquery: none of them is a table),
 * or a range of its rowids ("USING INTEGER PRIMARY KEY (rowid<?)"), which for a query by room is
 * the table read from one end. */
static const char *table_walk(const char *text)
{
    for (const char *at = text; at && *at; at = strchr(at, '\n'), at = at ? at + 1 : NULL) {
        const char *eol = strchr(at, '\n');
        size_t len = eol ? (size_t)(eol - at) : strlen(at);
        if ((strncmp(at, "SCAN ", 5) == 0 && !memmem(at, len, " USING ", 7) &&
             !memmem(at, len, " VIRTUAL TABLE", 14) && strncmp(at, "SCAN CONSTANT ROW", 17) != 0 &&
             !scans_subquery(text, at, len)) ||
            memmem(at, len, "(rowid<", 7) || memmem(at, len, "(rowid>", 7)) {
            return at;
        }
    }
    return NULL;
}

static void run_planned(struct plans *p, void (*what)(struct fx *), struct fx *f)
{
    memset(p, 0, sizeof(*p));
    dr__lite_set_plan_hook(take_plan, p);
    what(f);
    dr__lite_set_plan_hook(NULL, NULL);
    assert_true(p->statements > 0);
    if (table_walk(p->text)) {
        fail_msg("a walk of a table:\n%s", p->text);
    }
}

static void catch_up(struct fx *f)
{
    char *rooms[] = {"meeting:a", "user:u1"};
    struct dr_notification **v;
    size_t n;

    assert_int_equal(dr__rt_store_since(f->db, rooms, 2, 0, 10, &v, &n, NULL), DR_OK);
    assert_int_equal(n, 2);
    dr__rt_notifications_free(v, n);
}

static void inbox_list(struct fx *f)
{
    struct rt_inbox_q q = {.sub = "u1", .org = "o", .limit = 10};
    char *out;
    size_t n;

    for (q.unread_only = 0; q.unread_only < 2; q.unread_only++) {
        assert_int_equal(dr__rt_inbox_list(f->db, &q, &out, &n), DR_OK);
        assert_int_equal(n, 2); /* u1's own (user_id) and user:u1's */
        free(out);
    }
}

static void inbox_counts(struct fx *f)
{
    int64_t count = -1, seq = 0, upto = 0;

    assert_int_equal(dr__rt_inbox_unread(f->db, "u1", "o", &count), DR_OK);
    assert_int_equal(count, 2);
    assert_int_equal(dr__rt_inbox_mark(f->db, "u1", "o", "x2", &seq, NULL), DR_OK);
    assert_int_equal(dr__rt_inbox_mark_all(f->db, "u1", "o", &upto), DR_OK);
    assert_int_equal(upto, seq);
}

static void queries_by_room_use_indexes(void **state)
{
    struct fx *f = *state;
    struct plans p;
    int dup;

    put(f->db, "x1", "u1", "meeting:a", &dup);
    put(f->db, "x2", "u2", "user:u1", &dup);
    put(f->db, "x3", "u2", "org:other", &dup);
    run_planned(&p, catch_up, f);
    assert_non_null(strstr(p.text, "rt_notifications_bucket"));
    assert_non_null(
        strstr(p.text, "SEARCH rt_inbox_batches USING PRIMARY KEY (room=? AND last_seq>"));
    run_planned(&p, inbox_list, f);
    assert_non_null(
        strstr(p.text, "SEARCH rt_inbox_batches USING PRIMARY KEY (room=? AND last_seq<?)"));
    assert_non_null(
        strstr(p.text, "SEARCH rt_inbox_batches USING PRIMARY KEY (room=? AND last_seq>?)"));
    assert_non_null(strstr(p.text, "rt_notifications_user"));
    run_planned(&p, inbox_counts, f);
    assert_non_null(strstr(p.text, "SEARCH b USING PRIMARY KEY (room=? AND last_seq>?)"));
    /* read-all takes each room's newest row with one seek, not a lookup per row of the room */
    assert_non_null(strstr(p.text, "SEARCH rt_inbox_batches USING PRIMARY KEY (room=?)"));
    /* the rule itself finds a walk */
    assert_non_null(table_walk("SEARCH m USING PRIMARY KEY (user_id=?)\nSCAN n\n"));
    assert_non_null(table_walk("SEARCH n USING INTEGER PRIMARY KEY (rowid<?)\n"));
    assert_non_null(table_walk("MATERIALIZE c\nSCAN b\n"));
    assert_non_null(table_walk("SCAN rt_inbox_batches\n"));
    assert_null(table_walk("SCAN n USING COVERING INDEX rt_notifications_user\nSCAN CONSTANT ROW"));
    assert_null(table_walk("MATERIALIZE b\nSEARCH x USING PRIMARY KEY (room=?)\nSCAN b\n"
                           "SCAN j VIRTUAL TABLE INDEX 1:\n"));
    assert_null(table_walk("CO-ROUTINE n\nSEARCH x USING PRIMARY KEY (room=?)\nSCAN n\n"));
}

/* Every row of rooms after since, through pages of limit: want in order, then the end. */
static void expect_pages(struct dr_db *db, char **rooms, size_t nrooms, int64_t since, size_t limit,
                         const int64_t *want, size_t nwant)
{
    size_t at = 0;

    for (;;) {
        struct dr_notification **v;
        size_t n;
        int64_t next;
        assert_int_equal(dr__rt_store_since(db, rooms, nrooms, since, limit, &v, &n, &next), DR_OK);
        assert_true(at + n <= nwant);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(dr_notification_seq(v[i]), want[at + i]);
        }
        at += n;
        dr__rt_notifications_free(v, n);
        if (next < 0) {
            break;
        }
        assert_int_equal(n, limit);
        since = next;
    }
    assert_int_equal(at, nwant);
}

struct seqs {
    int64_t v[64];
    size_t n;
};

static int take_seqs(void *ctx, const struct dr_db_row *row)
{
    struct seqs *s = ctx;

    if (s->n < DR_ARRAY_LEN(s->v)) {
        s->v[s->n++] = dr_db_row_int(row, 0);
    }
    return 0;
}

/* The inbox of "me" in acme in pages of limit (newest first): want, each listed once. */
static void expect_inbox(struct dr_db *db, int unread_only, size_t limit, const int64_t *want,
                         size_t nwant)
{
    struct rt_inbox_q q = {.sub = "me", .org = "acme", .unread_only = unread_only, .limit = limit};
    size_t at = 0;

    for (;;) {
        char *out = NULL;
        size_t listed = 0;
        int64_t next = 0;
        assert_int_equal(dr__rt_inbox_list(db, &q, &out, &listed), DR_OK);
        cJSON *o = dr_json_parse(out, strlen(out));
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "notifications");
        assert_int_equal((size_t)cJSON_GetArraySize(arr), listed);
        assert_true(listed <= limit);
        assert_true(at + listed <= nwant);
        for (size_t i = 0; i < listed; i++) {
            int64_t seq = 0;
            assert_int_equal(dr_json_i64(cJSON_GetArrayItem(arr, (int)i), "seq", &seq), DR_OK);
            assert_int_equal(seq, want[at + i]);
        }
        at += listed;
        int more = dr_json_i64(o, "next_before", &next) == DR_OK;
        cJSON_Delete(o);
        free(out);
        if (!more) {
            break;
        }
        assert_int_equal(listed, limit);
        q.before = next;
    }
    assert_int_equal(at, nwant);
}

static void delete_seq(struct dr_db *db, int64_t seq);

/* A notification of the user's own (user_id) in one of its rooms is listed once; an unread-only
 * page finds the unread ones below many read ones (the SQLite walk widens its rounds). */
static void inbox_once_and_unread_below_read(void **state)
{
    struct fx *f = *state;
    int64_t d[30], seq = 0;
    int dup;

    d[0] = put(f->db, "d0", "me", "user:me", &dup);
    d[1] = put(f->db, "d1", "me", "org:acme", &dup);
    d[2] = put(f->db, "d2", "u1", "user:me", &dup);
    for (size_t limit = 1; limit <= 4; limit++) {
        expect_inbox(f->db, 0, limit, (int64_t[]){d[2], d[1], d[0]}, 3);
    }
    for (int i = 3; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof(id), "d%d", i);
        d[i] = put(f->db, id, "u1", i % 2 ? "org:acme" : "user:me", &dup);
    }
    for (int i = 5; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof(id), "d%d", i);
        assert_int_equal(dr__rt_inbox_mark(f->db, "me", "acme", id, &seq, NULL), DR_OK);
    }
    for (size_t limit = 1; limit <= 6; limit++) {
        expect_inbox(f->db, 1, limit, (int64_t[]){d[4], d[3], d[2], d[1], d[0]}, 5);
    }
}

/* Inbox rooms over several transactions and single stores, a row deleted in the middle: catch-up
 * pages go across the stored batches in seq order and skip the deleted one without ending
 * early; the inbox lists, counts and reads all of them once. */
static void inbox_across_batches(void **state)
{
    struct fx *f = *state;
    struct dr_notification *b1[] = {make("a1", "u1", "user:me"), make("a2", "u1", "org:acme"),
                                    make("a3", "me", "user:x"),  make("a4", "me", "meeting:m"),
                                    make("a5", "u1", "user:me"), make("a6", "u1", "org:other")};
    struct dr_notification *b2[] = {make("b1", "u1", "org:acme"), make("b2", "u1", "user:me"),
                                    make("a5", "u1", "user:me"), make("b3", "u1", "user:me"),
                                    make("b4", "u1", "org:acme")};
    int dups[6];
    int64_t s[12], c1, upto = 0, count = -1;
    char *rooms[] = {"user:me", "org:acme", "meeting:m"};
    char *inbox_rooms[] = {"org:acme", "user:me"};
    int dup;

    assert_int_equal(dr__rt_store_put_many(f->db, b1, 6, dups), DR_OK);
    assert_int_equal(dr__rt_store_put_many(f->db, b2, 5, dups), DR_OK);
    assert_int_equal(dups[2], 1);
    c1 = put(f->db, "c1", "u1", "user:me", &dup);
    for (int i = 0; i < 6; i++) {
        s[i] = dr_notification_seq(b1[i]);
        dr_notification_unref(b1[i]);
    }
    for (int i = 0; i < 5; i++) {
        s[6 + i] = dr_notification_seq(b2[i]);
        dr_notification_unref(b2[i]);
    }
    delete_seq(f->db, s[7]); /* b2 */

    int64_t all[] = {s[0], s[1], s[4], s[6], s[9], s[10], c1};
    int64_t with_meeting[] = {s[0], s[1], s[3], s[4], s[6], s[9], s[10], c1};
    for (size_t limit = 1; limit <= 9; limit++) {
        expect_pages(f->db, inbox_rooms, 2, 0, limit, all, 7);
        expect_pages(f->db, rooms, 3, 0, limit, with_meeting, 8);
    }
    expect_pages(f->db, inbox_rooms, 2, s[6], 2, &all[4], 3);
    expect_pages(f->db, inbox_rooms, 1, s[4], 10, (int64_t[]){s[6], s[10]}, 2);

    /* newest first; a3 and a4 are in it by user_id */
    int64_t inbox[] = {c1, s[10], s[9], s[6], s[4], s[3], s[2], s[1], s[0]};
    for (size_t limit = 1; limit <= 10; limit++) {
        expect_inbox(f->db, 0, limit, inbox, 9);
    }
    assert_int_equal(dr__rt_inbox_unread(f->db, "me", "acme", &count), DR_OK);
    assert_int_equal(count, 9);
    assert_int_equal(dr__rt_inbox_mark(f->db, "me", "acme", "b3", &s[11], NULL), DR_OK);
    assert_int_equal(s[11], s[9]);
    assert_int_equal(dr__rt_inbox_unread(f->db, "me", "acme", &count), DR_OK);
    assert_int_equal(count, 8);
    expect_inbox(f->db, 1, 3, (int64_t[]){c1, s[10], s[6], s[4], s[3], s[2], s[1], s[0]}, 8);
    assert_int_equal(dr__rt_inbox_mark(f->db, "me", "acme", "b2", &s[11], NULL), DR_ENOTFOUND);
    assert_int_equal(dr__rt_inbox_mark(f->db, "me", "acme", "a6", &s[11], NULL), DR_ENOTFOUND);
    assert_int_equal(dr__rt_inbox_mark_all(f->db, "me", "acme", &upto), DR_OK);
    assert_int_equal(upto, c1);
    assert_int_equal(dr__rt_inbox_unread(f->db, "me", "acme", &count), DR_OK);
    assert_int_equal(count, 0);
    expect_inbox(f->db, 1, 3, NULL, 0);

    /* the newest gone (b4, then c1): b1, in b4's row, is still found */
    delete_seq(f->db, s[10]);
    delete_seq(f->db, c1);
    expect_pages(f->db, inbox_rooms, 2, 0, 2, all, 5);
    expect_pages(f->db, inbox_rooms, 2, s[4], 1, &all[3], 2);
}

/* A database of the schema before v102 (an index by (room, seq)) with notifications in it:
 * migrating keeps every one of them readable, by catch-up and in the inbox. */
static void migrates_stored_notifications(void **state)
{
    char path[64] = "/tmp/dr-rt-old-XXXXXX";
    struct dr_db *db = NULL;
    int fd = mkstemp(path);
    char p2[80];
    char *rooms[] = {"meeting:m", "user:me"};
    int64_t count = -1;

    close(fd);
    assert_int_equal(dr_db_open(path, 2, &db), DR_OK);
    exec_ok(db, "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL,"
                " applied_ms BIGINT NOT NULL)");
    exec_ok(db, "INSERT INTO schema_migrations VALUES (100, 'v100', 0), (101, 'v101', 0)");
    exec_ok(db, "CREATE TABLE rt_notifications (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                " notification_id TEXT NOT NULL UNIQUE, user_id TEXT, org_id TEXT,"
                " room TEXT NOT NULL, type TEXT NOT NULL, body_json TEXT NOT NULL,"
                " created_ms INTEGER NOT NULL)");
    exec_ok(db, "CREATE INDEX rt_notifications_room ON rt_notifications (room, seq)");
    exec_ok(db, "CREATE INDEX rt_notifications_user ON rt_notifications (user_id, seq)");
    exec_ok(db, "CREATE TABLE rt_reads (user_id TEXT NOT NULL, seq INTEGER NOT NULL,"
                " read_ms INTEGER NOT NULL, PRIMARY KEY (user_id, seq)) WITHOUT ROWID");
    exec_ok(db, "CREATE TABLE rt_read_marks (user_id TEXT PRIMARY KEY, up_to_seq INTEGER NOT NULL,"
                " read_ms INTEGER NOT NULL) WITHOUT ROWID");
    for (int i = 0; i < 4; i++) {
        static const char *const room[] = {"meeting:m", "user:me", "org:acme", "user:other"};
        char id[8], body[256];
        snprintf(id, sizeof(id), "o%d", i + 1);
        snprintf(body, sizeof(body),
                 "{\"notification_id\":\"%s\",\"room\":\"%s\",\"notification_type\":\"t.t\"}", id,
                 room[i]);
        const char *idp = id, *bodyp = body;
        struct dr_db_val p[3] = {DR_DB_TEXTV(idp), DR_DB_TEXTV(room[i]), DR_DB_TEXTV(bodyp)};
        assert_int_equal(dr_db_exec(db,
                                    "INSERT INTO rt_notifications (notification_id, user_id, room,"
                                    " type, body_json, created_ms) VALUES ($1, 'x', $2, 't.t', $3,"
                                    " 0)",
                                    p, 3, NULL, NULL, NULL),
                         DR_OK);
    }
    assert_int_equal(dr__rt_migrate(db), DR_OK);
    assert_int_equal(dr_db_exec(db,
                                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name"
                                " IN ('rt_notifications_bucket', 'rt_notifications_inbox')",
                                NULL, 0, get_count, &count, NULL),
                     DR_OK);
    assert_int_equal(count, 1); /* the inbox's rooms are in rt_inbox_batches (v103) */
    assert_int_equal(dr_db_exec(db,
                                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name"
                                " = 'rt_notifications_room'",
                                NULL, 0, get_count, &count, NULL),
                     DR_OK);
    assert_int_equal(count, 0);

    int64_t want[] = {1, 2};
    expect_since(db, rooms, 2, 0, 10, want, 2, -1);
    assert_int_equal(dr__rt_inbox_unread(db, "me", "acme", &count), DR_OK);
    assert_int_equal(count, 2); /* o2 (user:me) and o3 (org:acme) */
    assert_int_equal(dr__rt_inbox_mark(db, "me", "acme", "o3", &(int64_t){0}, NULL), DR_OK);
    assert_int_equal(dr__rt_inbox_unread(db, "me", "acme", &count), DR_OK);
    assert_int_equal(count, 1);
    dr_db_close(db);
    unlink(path);
    snprintf(p2, sizeof(p2), "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof(p2), "%s-shm", path);
    unlink(p2);
}

/* A database of v102 (inbox rooms in an index by (room, seq)) with notifications of several
 * rooms over many ranges of 4,096 seqs: migrating moves each inbox row into rt_inbox_batches,
 * and catch-up, the inbox and its count read them all, in order. */
static void migrates_v102_inbox_rows(void **state)
{
    char path[64] = "/tmp/dr-rt-102-XXXXXX";
    struct dr_db *db = NULL;
    int fd = mkstemp(path);
    char p2[80];
    char *rooms[] = {"user:me", "org:acme", "meeting:m"};
    struct seqs want = {0}, mine = {0};
    int64_t count = -1;

    (void)state;
    close(fd);
    assert_int_equal(dr_db_open(path, 2, &db), DR_OK);
    exec_ok(db, "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL,"
                " applied_ms BIGINT NOT NULL)");
    exec_ok(db, "INSERT INTO schema_migrations VALUES (100, 'v100', 0), (101, 'v101', 0),"
                " (102, 'v102', 0)");
    exec_ok(db, "CREATE TABLE rt_notifications (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                " notification_id TEXT NOT NULL UNIQUE, user_id TEXT, org_id TEXT,"
                " room TEXT NOT NULL, type TEXT NOT NULL, body_json TEXT NOT NULL,"
                " created_ms INTEGER NOT NULL)");
    exec_ok(db, "CREATE INDEX rt_notifications_user ON rt_notifications (user_id, seq)");
    exec_ok(db, "CREATE INDEX rt_notifications_bucket ON rt_notifications (seq / 4096, room)"
                " WHERE room < 'org:' OR room >= 'org;' AND room < 'user:' OR room >= 'user;'");
    exec_ok(db, "CREATE INDEX rt_notifications_inbox ON rt_notifications (room, seq)"
                " WHERE room >= 'user:' AND room < 'user;' OR room >= 'org:' AND room < 'org;'");
    exec_ok(db, "CREATE TABLE rt_reads (user_id TEXT NOT NULL, seq INTEGER NOT NULL,"
                " read_ms INTEGER NOT NULL, PRIMARY KEY (user_id, seq)) WITHOUT ROWID");
    exec_ok(db, "CREATE TABLE rt_read_marks (user_id TEXT PRIMARY KEY, up_to_seq INTEGER NOT NULL,"
                " read_ms INTEGER NOT NULL) WITHOUT ROWID");
    for (int i = 0; i < 40; i++) {
        static const char *const room[] = {"user:me", "org:acme", "meeting:m", "user:other",
                                           "org:acme"};
        char id[8];
        snprintf(id, sizeof(id), "m%d", i);
        const char *idp = id;
        struct dr_db_val p[3] = {DR_DB_INTV(1 + i * 997), DR_DB_TEXTV(idp),
                                 DR_DB_TEXTV(room[i % 5])};
        assert_int_equal(dr_db_exec(db,
                                    "INSERT INTO rt_notifications (seq, notification_id, user_id,"
                                    " room, type, body_json, created_ms) VALUES ($1, $2, 'x', $3,"
                                    " 't.t', '{\"notification_id\":\"' || $2 || '\",\"room\":\"'"
                                    " || $3 || '\",\"notification_type\":\"t.t\"}', 0)",
                                    p, 3, NULL, NULL, NULL),
                         DR_OK);
    }
    assert_int_equal(dr__rt_migrate(db), DR_OK);
    assert_int_equal(
        dr_db_exec(db, "SELECT COUNT(*) FROM rt_inbox_batches", NULL, 0, get_count, &count, NULL),
        DR_OK);
    assert_true(count > 3); /* rows by (room, range of 4,096 seqs) */
    assert_int_equal(dr_db_exec(db,
                                "SELECT seq FROM rt_notifications WHERE room IN ('user:me',"
                                " 'org:acme', 'meeting:m') ORDER BY seq",
                                NULL, 0, take_seqs, &want, NULL),
                     DR_OK);
    assert_int_equal(want.n, 32);
    for (size_t limit = 1; limit <= 33; limit += 4) {
        expect_pages(db, rooms, 3, 0, limit, want.v, want.n);
    }
    assert_int_equal(dr_db_exec(db,
                                "SELECT seq FROM rt_notifications WHERE room IN ('user:me',"
                                " 'org:acme') ORDER BY seq DESC",
                                NULL, 0, take_seqs, &mine, NULL),
                     DR_OK);
    expect_inbox(db, 0, 5, mine.v, mine.n);
    assert_int_equal(dr__rt_inbox_unread(db, "me", "acme", &count), DR_OK);
    assert_int_equal(count, (int64_t)mine.n);
    /* stored after the migration: on from there */
    int dup;
    int64_t s = put(db, "new", "x", "user:me", &dup);
    assert_true(s > 1 + 39 * 997);
    want.v[want.n++] = s;
    expect_pages(db, rooms, 3, 0, 7, want.v, want.n);
    /* a row goes with the last of its notifications: half of them deleted keeps rows, all none */
    exec_ok(db, "DELETE FROM rt_notifications WHERE seq < 20000");
    expect_pages(db, rooms, 3, 0, 3, &want.v[17], want.n - 17);
    assert_int_equal(
        dr_db_exec(db, "SELECT COUNT(*) FROM rt_inbox_batches", NULL, 0, get_count, &count, NULL),
        DR_OK);
    assert_true(count > 0);
    exec_ok(db, "DELETE FROM rt_notifications");
    assert_int_equal(
        dr_db_exec(db, "SELECT COUNT(*) FROM rt_inbox_batches", NULL, 0, get_count, &count, NULL),
        DR_OK);
    assert_int_equal(count, 0);
    dr_db_close(db);
    unlink(path);
    snprintf(p2, sizeof(p2), "%s-wal", path);
    unlink(p2);
    snprintf(p2, sizeof(p2), "%s-shm", path);
    unlink(p2);
}

static void inbox_read_state(void **state)
{
    struct fx *f = *state;
    int dup;
    int64_t count, seq = 0, upto;
    char *out = NULL, *id = NULL;

    put(f->db, "i1", "me", "user:me", &dup);
    int64_t s2 = put(f->db, "i2", "me", "user:me", &dup);
    put(f->db, "i3", "x", "org:acme", &dup); /* org broadcast: in my inbox */
    put(f->db, "i4", "x", "user:x", &dup);   /* not mine */
    assert_int_equal(dr__rt_inbox_unread(f->db, "me", "acme", &count), DR_OK);
    assert_int_equal(count, 3);
    assert_int_equal(dr__rt_inbox_unread(f->db, "me", NULL, &count), DR_OK);
    assert_int_equal(count, 2);

    assert_int_equal(dr__rt_inbox_mark(f->db, "me", "acme", "i2", &seq, &id), DR_OK);
    assert_int_equal(seq, s2);
    assert_string_equal(id, "i2");
    free(id);
    assert_int_equal(dr__rt_inbox_mark(f->db, "me", "acme", "i4", &seq, NULL), DR_ENOTFOUND);
    assert_int_equal(dr__rt_inbox_unread(f->db, "me", "acme", &count), DR_OK);
    assert_int_equal(count, 2);

    struct rt_inbox_q q = {.sub = "me", .org = "acme", .unread_only = 1, .limit = 10};
    size_t listed = 0;
    assert_int_equal(dr__rt_inbox_list(f->db, &q, &out, &listed), DR_OK);
    cJSON *o = dr_json_parse(out, strlen(out));
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "notifications");
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    assert_int_equal(listed, 2);
    assert_string_equal(dr_json_str(cJSON_GetArrayItem(arr, 0), "notification_id"), "i3");
    assert_false(dr_json_true(cJSON_GetArrayItem(arr, 0), "read"));
    cJSON_Delete(o);
    free(out);

    assert_int_equal(dr__rt_inbox_mark_all(f->db, "me", "acme", &upto), DR_OK);
    assert_true(upto > s2);
    assert_int_equal(dr__rt_inbox_unread(f->db, "me", "acme", &count), DR_OK);
    assert_int_equal(count, 0);
    put(f->db, "i5", "me", "user:me", &dup);
    assert_int_equal(dr__rt_inbox_unread(f->db, "me", "acme", &count), DR_OK);
    assert_int_equal(count, 1);

    q.unread_only = 0;
    q.limit = 2;
    assert_int_equal(dr__rt_inbox_list(f->db, &q, &out, NULL), DR_OK);
    o = dr_json_parse(out, strlen(out));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "notifications")), 2);
    int64_t next = 0;
    assert_int_equal(dr_json_i64(o, "next_before", &next), DR_OK);
    assert_true(next > 0);
    cJSON_Delete(o);
    free(out);
}

/* user's read mark as stored, 0 without one */
static int64_t stored_mark(struct dr_db *db, const char *user)
{
    struct dr_db_val p[1] = {DR_DB_TEXTV(user)};
    int64_t mark = 0;

    assert_int_equal(dr_db_exec(db, "SELECT up_to_seq FROM rt_read_marks WHERE user_id = $1", p, 1,
                                get_count, &mark, NULL),
                     DR_OK);
    return mark;
}

static void delete_seq(struct dr_db *db, int64_t seq)
{
    struct dr_db_val p[1] = {DR_DB_INTV(seq)};

    assert_int_equal(
        dr_db_exec(db, "DELETE FROM rt_notifications WHERE seq = $1", p, 1, NULL, NULL, NULL),
        DR_OK);
}

/* Read-all twice with a lower newest seq in between (retention deleted the newest, then the
 * rest): the mark stays where it was, and each answer is the mark stored, not the newest seq. */
static void mark_all_never_moves_back(void **state)
{
    struct fx *f = *state;
    int dup;
    int64_t upto = -1;
    int64_t s1 = put(f->db, "k1", "me", "user:me", &dup);
    int64_t s2 = put(f->db, "k2", "me", "user:me", &dup);

    assert_int_equal(dr__rt_inbox_mark_all(f->db, "me", NULL, &upto), DR_OK);
    assert_int_equal(upto, s2);
    assert_int_equal(stored_mark(f->db, "me"), s2);

    delete_seq(f->db, s2);
    assert_int_equal(dr__rt_inbox_mark_all(f->db, "me", NULL, &upto), DR_OK);
    assert_int_equal(upto, s2);
    assert_int_equal(stored_mark(f->db, "me"), s2);

    delete_seq(f->db, s1); /* nothing left in the inbox */
    assert_int_equal(dr__rt_inbox_mark_all(f->db, "me", NULL, &upto), DR_OK);
    assert_int_equal(upto, s2);
    assert_int_equal(stored_mark(f->db, "me"), s2);

    /* a user without a mark and an empty inbox: none */
    assert_int_equal(dr__rt_inbox_mark_all(f->db, "nobody", NULL, &upto), DR_OK);
    assert_int_equal(upto, 0);
    assert_int_equal(stored_mark(f->db, "nobody"), 0);

    int64_t s3 = put(f->db, "k3", "me", "user:me", &dup);
    assert_int_equal(dr__rt_inbox_mark_all(f->db, "me", NULL, &upto), DR_OK);
    assert_int_equal(upto, s3);
    assert_int_equal(stored_mark(f->db, "me"), s3);
}

/* Read-all stores its mark and ends the single reads under it together: when the store refuses
 * the second, the error leaves no mark behind (the inbox reads as before), and the next try
 * stores both. */
static void mark_all_is_all_or_nothing(void **state)
{
    struct fx *f = *state;
    int dup;
    int64_t seq = 0, upto = -1, count = -1;

    put(f->db, "j1", "me", "user:me", &dup);
    int64_t s2 = put(f->db, "j2", "me", "user:me", &dup);
    assert_int_equal(dr__rt_inbox_mark(f->db, "me", NULL, "j1", &seq, NULL), DR_OK);

    refuse_deletes(f->db, "refuse_reads_delete", "rt_reads");
    assert_int_not_equal(dr__rt_inbox_mark_all(f->db, "me", NULL, &upto), DR_OK);
    assert_int_equal(upto, 0);
    assert_int_equal(stored_mark(f->db, "me"), 0);
    assert_int_equal(dr__rt_inbox_unread(f->db, "me", NULL, &count), DR_OK);
    assert_int_equal(count, 1);

    refuse_inserts_drop(f->db, "refuse_reads_delete", "rt_reads");
    assert_int_equal(dr__rt_inbox_mark_all(f->db, "me", NULL, &upto), DR_OK);
    assert_int_equal(upto, s2);
    assert_int_equal(stored_mark(f->db, "me"), s2);
    assert_int_equal(dr__rt_inbox_unread(f->db, "me", NULL, &count), DR_OK);
    assert_int_equal(count, 0);
    assert_int_equal(
        dr_db_exec(f->db, "SELECT COUNT(*) FROM rt_reads", NULL, 0, get_count, &count, NULL),
        DR_OK);
    assert_int_equal(count, 0);
}

static void permission_rule(void **state)
{
    struct fx *f = *state;
    struct dr_jwt_claims c = {0};
    char *rooms[] = {"meeting:granted"};
    int allowed = -1;

    c.sub = "alice";
    c.org = "acme";
    c.raw = cJSON_Parse("{\"email\":\"Alice@Example.com\"}");
    assert_int_equal(dr__rt_may_join_local(&c, "user:alice", &allowed), 0);
    assert_true(allowed);
    assert_int_equal(dr__rt_may_join_local(&c, "user:bob", &allowed), 0);
    assert_false(allowed);
    assert_int_equal(dr__rt_may_join_local(&c, "org:acme", &allowed), 0);
    assert_true(allowed);
    assert_int_equal(dr__rt_may_join_local(&c, "org:other", &allowed), 0);
    assert_false(allowed);
    assert_int_equal(dr__rt_may_join_local(&c, "meeting:p1", &allowed), 1); /* needs the store */

    /* tables not there yet: denied */
    assert_int_equal(dr__rt_may_join(f->db, &c, "meeting:p1", &allowed), DR_OK);
    assert_false(allowed);
    assert_int_equal(dr__rt_may_join(f->db, &c, "shipment:T1", &allowed), DR_OK);
    assert_false(allowed);

    assert_int_equal(dr_db_exec(f->db,
                                "CREATE TABLE polls (poll_id TEXT PRIMARY KEY,"
                                " organizer_user_id TEXT)",
                                NULL, 0, NULL, NULL, NULL),
                     DR_OK);
    dr_db_exec(f->db, "CREATE TABLE poll_participants (poll_id TEXT, email TEXT)", NULL, 0, NULL,
               NULL, NULL);
    dr_db_exec(f->db, "CREATE TABLE shipments (user_id TEXT, tracking_number TEXT)", NULL, 0, NULL,
               NULL, NULL);
    dr_db_exec(f->db, "INSERT INTO polls VALUES ('p1', 'alice'), ('p2', 'bob'), ('p3', 'bob')",
               NULL, 0, NULL, NULL, NULL);
    dr_db_exec(f->db, "INSERT INTO poll_participants VALUES ('p2', 'alice@example.com')", NULL, 0,
               NULL, NULL, NULL);
    dr_db_exec(f->db, "INSERT INTO shipments VALUES ('alice', 'T1'), ('bob', 'T2')", NULL, 0, NULL,
               NULL, NULL);
    assert_int_equal(dr__rt_may_join(f->db, &c, "meeting:p1", &allowed), DR_OK);
    assert_true(allowed); /* organizer */
    assert_int_equal(dr__rt_may_join(f->db, &c, "meeting:p2", &allowed), DR_OK);
    assert_true(allowed); /* participant, email compared case-insensitively */
    assert_int_equal(dr__rt_may_join(f->db, &c, "meeting:p3", &allowed), DR_OK);
    assert_false(allowed);
    assert_int_equal(dr__rt_may_join(f->db, &c, "shipment:T1", &allowed), DR_OK);
    assert_true(allowed);
    assert_int_equal(dr__rt_may_join(f->db, &c, "shipment:T2", &allowed), DR_OK);
    assert_false(allowed);

    /* the token's rooms claim and the admin role */
    c.rooms = rooms;
    c.nrooms = 1;
    assert_int_equal(dr__rt_may_join(f->db, &c, "meeting:granted", &allowed), DR_OK);
    assert_true(allowed);
    c.nrooms = 0;
    c.admin = 1;
    assert_int_equal(dr__rt_may_join(f->db, &c, "shipment:T2", &allowed), DR_OK);
    assert_true(allowed);
    assert_int_equal(dr__rt_may_join(f->db, &c, "nonsense", &allowed), DR_OK);
    assert_false(allowed); /* not a room at all, even for admins */
    cJSON_Delete(c.raw);
}

/*
 * Two instances on one PostgreSQL. Instance A stores a batch and is held up before its commit,
 * after drawing its seqs: its second notification waits on a transaction of the test that
 * inserted the same notification_id and has not committed (it only serves to hold A there).
 * Instance B then stores one notification. A catch-up query at that point must not see B's seq
 * without A's lower ones, or a client resuming from what it saw (like the Redis bus's recovery
 * and read-all) would skip them for good: what it sees must be a prefix of what is stored in
 * the end.
 */
struct put_arg {
    struct dr_db *db;
    struct dr_notification *v[2];
    size_t n;
    int dup[2];
    int err;
    atomic_int done;
};

static void *put_thread(void *arg)
{
    struct put_arg *a = arg;

    a->err = a->n == 1 ? dr__rt_store_put(a->db, a->v[0], a->dup)
                       : dr__rt_store_put_many(a->db, a->v, a->n, a->dup);
    atomic_store(&a->done, 1);
    return NULL;
}

/* Whether a connection named app waits on a lock whose wait_event is LIKE event. */
static int waits_on_lock(struct dr_db *db, const char *app, const char *event)
{
    struct dr_db_val p[2] = {DR_DB_TEXTV(app), DR_DB_TEXTV(event)};
    int64_t n = 0;

    dr_db_exec(db,
               "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1"
               " AND wait_event_type = 'Lock' AND wait_event LIKE $2",
               p, 2, get_count, &n, NULL);
    return n > 0;
}

/* The seqs a catch-up query of both instances' rooms sees now (at most 16). */
static size_t visible_seqs(struct dr_db *db, int64_t *out)
{
    char *rooms[] = {"user:a", "user:b"};
    struct dr_notification **v;
    size_t n;

    assert_int_equal(dr__rt_store_since(db, rooms, 2, 0, 16, &v, &n, NULL), DR_OK);
    for (size_t i = 0; i < n; i++) {
        out[i] = dr_notification_seq(v[i]);
    }
    dr__rt_notifications_free(v, n);
    return n;
}

static void seqs_visible_in_order_across_instances(void **state)
{
    struct fx *f = *state;
    struct put_arg a = {.v = {make("a1", "ua", "user:a"), make("a2", "ua", "user:a")}, .n = 2};
    struct put_arg b = {.v = {make("b1", "ub", "user:b")}, .n = 1};
    char url[1200], app_a[64], app_b[64];
    struct dr_db_tx *blocker = NULL;
    pthread_t ta, tb;
    int64_t seen[16], stored[16], deadline;
    size_t nseen, nstored;
    int a_held, b_held;

    snprintf(app_a, sizeof(app_a), "drrt_a_%ld", (long)getpid());
    snprintf(app_b, sizeof(app_b), "drrt_b_%ld", (long)getpid());
    snprintf(url, sizeof(url), "%s&application_name=%s", f->url, app_a);
    assert_int_equal(dr_db_open(url, 1, &a.db), DR_OK);
    snprintf(url, sizeof(url), "%s&application_name=%s", f->url, app_b);
    assert_int_equal(dr_db_open(url, 1, &b.db), DR_OK);

    /* seq -1 is none of the sequence's and below every since */
    assert_int_equal(dr_db_begin(f->db, &blocker), DR_OK);
    assert_int_equal(dr_db_tx_exec(blocker,
                                   "INSERT INTO rt_notifications (seq, notification_id, user_id,"
                                   " room, type, body_json, created_ms) OVERRIDING SYSTEM VALUE"
                                   " VALUES (-1, 'a2', 'ua', 'user:a', 'system.t', '{}', 0)",
                                   NULL, 0, NULL, NULL, NULL),
                     DR_OK);

    /* waits for states with a generous bound; nothing here depends on how long a step takes */
    assert_int_equal(pthread_create(&ta, NULL, put_thread, &a), 0);
    deadline = dr_mono_ms() + 60000;
    while (!(a_held = waits_on_lock(f->db, app_a, "transactionid")) && !atomic_load(&a.done) &&
           dr_mono_ms() < deadline) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    assert_int_equal(pthread_create(&tb, NULL, put_thread, &b), 0);
    /* until B has stored, or waits (it may not commit while A has not) */
    deadline = dr_mono_ms() + 60000;
    while (!atomic_load(&b.done) && !(b_held = waits_on_lock(f->db, app_b, "%")) &&
           dr_mono_ms() < deadline) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    nseen = visible_seqs(f->db, seen);

    /* let A go on (its a2 is new then), and B after it; clean up before asserting */
    dr_db_rollback(blocker);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    nstored = visible_seqs(f->db, stored);
    dr_db_close(a.db);
    dr_db_close(b.db);

    assert_true(a_held);
    assert_int_equal(a.err, DR_OK);
    assert_int_equal(b.err, DR_OK);
    assert_false(a.dup[0] || a.dup[1] || b.dup[0]);
    assert_int_equal(nstored, 3);
    assert_true(nseen <= nstored);
    for (size_t i = 0; i < nseen; i++) {
        assert_int_equal(seen[i], stored[i]);
    }
    assert_true(dr_notification_seq(b.v[0]) > dr_notification_seq(a.v[1]));
    for (size_t i = 0; i < a.n; i++) {
        dr_notification_unref(a.v[i]);
    }
    dr_notification_unref(b.v[0]);
}

/* ---- retention ---- */

static void set_created(struct dr_db *db, int64_t seq, int64_t ms)
{
    struct dr_db_val p[2] = {DR_DB_INTV(ms), DR_DB_INTV(seq)};

    assert_int_equal(dr_db_exec(db, "UPDATE rt_notifications SET created_ms = $1 WHERE seq = $2", p,
                                2, NULL, NULL, NULL),
                     DR_OK);
}

static int64_t count_of(struct dr_db *db, const char *sql)
{
    int64_t count = -1;

    assert_int_equal(dr_db_exec(db, sql, NULL, 0, get_count, &count, NULL), DR_OK);
    return count;
}

/* Seven notifications created at 100..500, 10000 and 150 (an old one written after a new one),
 * all in the inbox of "me" but p3 (meeting:m), read in part: up to p1 by a read mark, p2 and p6
 * by single reads. */
static void retention_rows(struct dr_db *db, int64_t *s)
{
    static const int64_t created[7] = {100, 200, 300, 400, 500, 10000, 150};
    int dup;
    int64_t seq = 0;
    char id[8];

    for (int i = 0; i < 7; i++) {
        snprintf(id, sizeof(id), "p%d", i + 1);
        s[i] = put(db, id, i == 2 ? "x" : "me", i == 2 ? "meeting:m" : "user:me", &dup);
        set_created(db, s[i], created[i]);
    }
    struct dr_db_val p[3] = {DR_DB_TEXTV("me"), DR_DB_INTV(s[0]), DR_DB_INTV(1)};
    assert_int_equal(dr_db_exec(db,
                                "INSERT INTO rt_read_marks (user_id, up_to_seq, read_ms)"
                                " VALUES ($1, $2, $3)",
                                p, 3, NULL, NULL, NULL),
                     DR_OK);
    assert_int_equal(dr__rt_inbox_mark(db, "me", NULL, "p2", &seq, NULL), DR_OK);
    assert_int_equal(dr__rt_inbox_mark(db, "me", NULL, "p6", &seq, NULL), DR_OK);
}

/* Inbox rows of another user's notifications (so only the rooms' rt_inbox_batches rows put them
 * in the inbox), stored in one batch, the first three old: purged two per transaction, each
 * chunk cuts the batch's rows, which keep exactly the seqs above it. */
static void purge_cuts_batch_rows(void **state)
{
    struct fx *f = *state;
    struct dr_notification *v[6];
    int dups[6];
    int64_t s[6], purged = -1, seq = 0;
    char id[8];

    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof(id), "q%d", i);
        v[i] = make(id, "u9", i % 2 ? "org:acme" : "user:me");
    }
    assert_int_equal(dr__rt_store_put_many(f->db, v, 6, dups), DR_OK);
    for (int i = 0; i < 6; i++) {
        s[i] = dr_notification_seq(v[i]);
        set_created(f->db, s[i], i < 3 ? 100 : 5000);
        dr_notification_unref(v[i]);
    }
    expect_inbox(f->db, 0, 4, (int64_t[]){s[5], s[4], s[3], s[2], s[1], s[0]}, 6);
    assert_int_equal(dr_realtime_purge(f->db, 1000, 2, &purged), DR_OK);
    assert_int_equal(purged, 3);
    expect_inbox(f->db, 0, 2, (int64_t[]){s[5], s[4], s[3]}, 3);
    char *rooms[] = {"user:me", "org:acme"};
    for (size_t limit = 1; limit <= 4; limit++) {
        expect_pages(f->db, rooms, 2, 0, limit, (int64_t[]){s[3], s[4], s[5]}, 3);
    }
    assert_int_equal(dr__rt_inbox_mark_all(f->db, "me", "acme", &seq), DR_OK);
    assert_int_equal(seq, s[5]);
}

/* Only notifications created before the cutoff go, oldest seq first, and the walk ends at the
 * first one new enough (p7, old, after p6, new, stays); single reads of purged seqs go, read
 * marks stay; the inbox and its unread count then hold what is left; seqs are never reused. */
static void purge_old_notifications(void **state)
{
    struct fx *f = *state;
    int64_t s[7], purged = -1, count = -1, head = 0, seq = 0;
    char *out = NULL;
    size_t listed = 0;
    int dup;

    retention_rows(f->db, s);
    assert_int_equal(dr__rt_inbox_unread(f->db, "me", NULL, &count), DR_OK);
    assert_int_equal(count, 3); /* p4, p5, p7 (p1 under the mark, p2 and p6 read, p3 not inbox) */

    assert_int_equal(dr_realtime_purge(f->db, 100, 1000, &purged), DR_OK);
    assert_int_equal(purged, 0); /* created_ms 100 is not before 100 */
    assert_int_equal(dr_realtime_purge(f->db, 1000, 2, &purged), DR_OK);
    assert_int_equal(purged, 5);
    assert_int_equal(count_of(f->db, "SELECT COUNT(*) FROM rt_notifications"), 2);
    assert_int_equal(count_of(f->db, "SELECT MIN(seq) FROM rt_notifications"), s[5]);
    /* p2's read is gone with it, p6's stays; the mark stays */
    assert_int_equal(count_of(f->db, "SELECT COUNT(*) FROM rt_reads"), 1);
    assert_int_equal(count_of(f->db, "SELECT MAX(seq) FROM rt_reads"), s[5]);
    assert_int_equal(stored_mark(f->db, "me"), s[0]);

    assert_int_equal(dr__rt_inbox_unread(f->db, "me", NULL, &count), DR_OK);
    assert_int_equal(count, 1); /* p7 */
    struct rt_inbox_q q = {.sub = "me", .limit = 10};
    assert_int_equal(dr__rt_inbox_list(f->db, &q, &out, &listed), DR_OK);
    assert_int_equal(listed, 2);
    assert_non_null(strstr(out, "\"p6\""));
    assert_non_null(strstr(out, "\"p7\""));
    assert_null(strstr(out, "\"p1\""));
    free(out);
    assert_int_equal(dr__rt_inbox_mark(f->db, "me", NULL, "p2", &seq, NULL), DR_ENOTFOUND);

    /* again: nothing more is old enough before p6 */
    assert_int_equal(dr_realtime_purge(f->db, 1000, 2, &purged), DR_OK);
    assert_int_equal(purged, 0);
    /* everything old: the newest (p7) stays, so the store's head does not go down */
    assert_int_equal(dr_realtime_purge(f->db, INT64_MAX, 1000, &purged), DR_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(dr__rt_store_head(f->db, &head), DR_OK);
    assert_int_equal(head, s[6]);
    assert_true(put(f->db, "p8", "me", "user:me", &dup) > s[6]);
}

/* A client resuming from a since below the oldest notification left gets every one left above
 * it, in seq order, without an error (what was purged is not sent, and nothing says so: see
 * docs/realtime-protocol.md, Retention); its since is not above the head, so no reset either. */
static void catch_up_from_before_the_oldest(void **state)
{
    struct fx *f = *state;
    int64_t s[7], purged = -1, head = 0;
    char *rooms[] = {"user:me", "meeting:m"};

    retention_rows(f->db, s);
    assert_int_equal(dr_realtime_purge(f->db, 1000, 1000, &purged), DR_OK);
    assert_int_equal(purged, 5);
    assert_int_equal(dr__rt_store_head(f->db, &head), DR_OK);
    assert_int_equal(head, s[6]);
    int64_t left[] = {s[5], s[6]};
    expect_since(f->db, rooms, 2, 0, 100, left, 2, -1);
    expect_since(f->db, rooms, 2, s[1], 100, left, 2, -1);
    expect_since(f->db, rooms, 2, s[1], 1, left, 1, s[5]);
    expect_since(f->db, rooms, 2, s[5], 100, &left[1], 1, -1);
}

/* Each chunk is a transaction of its own: a chunk the store refuses to delete (a trigger) leaves
 * the chunks before it deleted and counted, and itself and the rest in place. */
static void purge_commits_each_chunk(void **state)
{
    struct fx *f = *state;
    int64_t s[7], purged = -1;

    retention_rows(f->db, s);
    if (dr_db_engine(f->db) == DR_DB_POSTGRES) {
        exec_ok(f->db, "CREATE FUNCTION keep_p4() RETURNS trigger LANGUAGE plpgsql AS $f$BEGIN"
                       " IF OLD.notification_id = 'p4' THEN RAISE EXCEPTION 'kept'; END IF;"
                       " RETURN OLD; END$f$");
        exec_ok(f->db, "CREATE TRIGGER keep_p4 BEFORE DELETE ON rt_notifications FOR EACH ROW"
                       " EXECUTE FUNCTION keep_p4()");
    } else {
        exec_ok(f->db, "CREATE TRIGGER keep_p4 BEFORE DELETE ON rt_notifications"
                       " WHEN OLD.notification_id = 'p4' BEGIN SELECT RAISE(ABORT, 'kept'); END");
    }
    assert_int_not_equal(dr_realtime_purge(f->db, 1000, 2, &purged), DR_OK);
    assert_int_equal(purged, 2); /* p1, p2 */
    assert_int_equal(count_of(f->db, "SELECT MIN(seq) FROM rt_notifications"), s[2]);
    assert_int_equal(count_of(f->db, "SELECT COUNT(*) FROM rt_notifications"), 5);
}

/* on SQLite and on PostgreSQL */
#define BOTH_ENGINES(X)                                                                            \
    X(seq_increases_and_duplicates_keep_theirs)                                                    \
    X(batch_store)                                                                                 \
    X(batch_store_across_statements)                                                               \
    X(batch_with_refused_rows)                                                                     \
    X(batch_repeats_a_stored_one)                                                                  \
    X(seqs_never_reused)                                                                           \
    X(since_filters_rooms_and_pages)                                                               \
    X(since_across_seq_ranges)                                                                     \
    X(inbox_across_batches)                                                                        \
    X(inbox_once_and_unread_below_read)                                                            \
    X(inbox_read_state)                                                                            \
    X(mark_all_never_moves_back)                                                                   \
    X(mark_all_is_all_or_nothing)                                                                  \
    X(purge_old_notifications)                                                                     \
    X(purge_cuts_batch_rows)                                                                       \
    X(catch_up_from_before_the_oldest)                                                             \
    X(purge_commits_each_chunk)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH_ENGINES(ON_SQLITE) /* and on one engine only: */
        ON_SQLITE(batch_with_silently_skipped_row) ON_SQLITE(queries_by_room_use_indexes)
            ON_SQLITE(permission_rule) ON_PG(seqs_visible_in_order_across_instances)
                BOTH_ENGINES(ON_PG) cmocka_unit_test(migrates_stored_notifications),
        cmocka_unit_test(migrates_v102_inbox_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
