/* Tests src/core/replay_db.c on SQLite and PostgreSQL: a job's row round trip, the cap on
 * running jobs, the bound on finished ones, a cancel through another instance, and the claim of
 * stale jobs: an owner's fresh rows are not taken, stale ones are, and of two instances claiming
 * the same stale rows at once each row goes to one of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/replay_db.h"
#include "dr/err.h"
#include "dr/util.h"
#define FX_STORE /* f->store, another handle on f->url: another instance */
#include "unit/store/backend.h"

#define NSTALE 40

/* A job's row as a start makes it; returned by value, so its filter is relinked by the caller
 * (ROW). */
static struct dr__replay_row row_of(const char *state, const char *topic)
{
    struct dr__replay_row r;

    memset(&r, 0, sizeof(r));
    snprintf(r.state, sizeof(r.state), "%s", state);
    if (topic) {
        snprintf(r.fb.topic, sizeof(r.fb.topic), "%s", topic);
        r.fb.f.topic = r.fb.topic;
    }
    r.fb.f.since_ms = 1000;
    r.fb.f.max_id = 77;
    r.rate = 0.001;
    r.limit = 500;
    r.matched = 40;
    r.started_ms = dr_now_ms();
    r.finished_ms = strcmp(state, "running") == 0 ? 0 : r.started_ms;
    return r;
}

#define ROW(r, state, topic)                                                                       \
    do {                                                                                           \
        (r) = row_of(state, topic);                                                                \
        dr__replay_row_relink(&(r));                                                               \
    } while (0)

static void round_trip(void **state)
{
    struct fx *f = *state;
    struct dr__replay_row r, got;
    int lost = 1;

    ROW(r, "running", "t1");
    assert_int_equal(dr__replay_db_insert(f->obj, &r, "a", 16, 50), DR_OK);
    assert_true(r.id > 0);
    r.fb.f.after_id = 12;
    r.replayed = 3;
    r.skipped = 1;
    snprintf(r.last_error, sizeof(r.last_error), "dead letter 5: bad");
    assert_int_equal(dr__replay_db_update(f->obj, &r, "a", 50, &lost), DR_OK);
    assert_int_equal(lost, 0);
    assert_int_equal(dr__replay_db_get(f->obj, r.id, &got), DR_OK);
    assert_string_equal(got.state, "running");
    assert_string_equal(got.fb.f.topic, "t1");
    assert_ptr_equal(got.fb.f.topic, got.fb.topic);
    assert_null(got.fb.f.processor);
    assert_true(got.rate == 0.001);
    assert_int_equal(got.fb.f.since_ms, 1000);
    assert_int_equal(got.fb.f.max_id, 77);
    assert_int_equal(got.fb.f.after_id, 12);
    assert_int_equal(got.replayed, 3);
    assert_int_equal(got.skipped, 1);
    assert_int_equal(got.limit, 500);
    assert_string_equal(got.last_error, "dead letter 5: bad");
    assert_int_equal(dr__replay_db_get(f->obj, r.id + 1000, &got), DR_ENOTFOUND);
    /* another owner's write is refused: the row is not its */
    assert_int_equal(dr__replay_db_update(f->obj, &r, "b", 50, &lost), DR_OK);
    assert_int_equal(lost, 1);
}

static void caps(void **state)
{
    struct fx *f = *state;
    struct dr__replay_row r, *list = NULL;
    size_t n = 0;

    for (int i = 0; i < 2; i++) {
        ROW(r, "running", NULL);
        assert_int_equal(dr__replay_db_insert(f->obj, &r, i ? "b" : "a", 2, 3), DR_OK);
    }
    /* running jobs of every instance count */
    ROW(r, "running", NULL);
    assert_int_equal(dr__replay_db_insert(f->obj, &r, "c", 2, 3), DR_ETOOBIG);
    /* finished ones do not, and only the newest keep of them stay */
    for (int i = 0; i < 5; i++) {
        ROW(r, "done", NULL);
        assert_int_equal(dr__replay_db_insert(f->obj, &r, "a", 2, 3), DR_OK);
    }
    assert_int_equal(dr__replay_db_list(f->obj, &list, &n), DR_OK);
    assert_int_equal(n, 5); /* 2 running + 3 finished */
    assert_true(list[0].id > list[1].id);
    assert_string_equal(list[0].state, "done");
    assert_int_equal(list[2].id, r.id - 2);
    assert_string_equal(list[3].state, "running");
    free(list);
}

static void cancel_elsewhere(void **state)
{
    struct fx *f = *state;
    struct dr__replay_row r, got;
    int ended = 0, lost = 0, ours = 1;

    ROW(r, "running", NULL);
    assert_int_equal(dr__replay_db_insert(f->obj, &r, "a", 16, 50), DR_OK);
    assert_int_equal(dr__replay_db_cancel(f->obj, r.id, 1234, 50, &got, &ended), DR_OK);
    assert_int_equal(ended, 1);
    assert_string_equal(got.state, "cancelled");
    assert_int_equal(got.finished_ms, 1234);
    /* the owner sees it at its next step */
    assert_int_equal(dr__replay_db_owned(f->obj, r.id, "a", &ours), DR_OK);
    assert_int_equal(ours, 0);
    r.replayed = 9;
    assert_int_equal(dr__replay_db_update(f->obj, &r, "a", 50, &lost), DR_OK);
    assert_int_equal(lost, 1);
    /* a second cancel answers it as it ended */
    assert_int_equal(dr__replay_db_cancel(f->obj, r.id, 9999, 50, &got, &ended), DR_OK);
    assert_int_equal(ended, 0);
    assert_int_equal(got.finished_ms, 1234);
    assert_int_equal(got.replayed, 0);
    assert_int_equal(dr__replay_db_cancel(f->obj, r.id + 1000, 1, 50, &got, &ended), DR_ENOTFOUND);
}

static void claim(void **state)
{
    struct fx *f = *state;
    struct dr__replay_row r, *out = NULL;
    int64_t now = dr_now_ms();
    size_t n = 0;

    ROW(r, "running", "t");
    assert_int_equal(dr__replay_db_insert(f->obj, &r, "a", 16, 50), DR_OK);
    /* fresh: neither another instance nor a takeover at start-up of another owner takes it */
    assert_int_equal(dr__replay_db_claim(f->obj, "b", 0, now, 3000, 16, &out, &n), DR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dr__replay_db_claim(f->obj, "b", 1, now, 3000, 16, &out, &n), DR_OK);
    assert_int_equal(n, 0);
    /* its owner's next run takes it back at once */
    assert_int_equal(dr__replay_db_claim(f->obj, "a", 1, now, 3000, 16, &out, &n), DR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, r.id);
    assert_string_equal(out[0].fb.f.topic, "t");
    assert_ptr_equal(out[0].fb.f.topic, out[0].fb.topic);
    free(out);
    /* stale: another instance takes it, and then it is fresh again */
    assert_int_equal(dr__replay_db_heartbeat(f->obj, "a", now - 10000), DR_OK);
    assert_int_equal(dr__replay_db_claim(f->obj, "b", 0, now, 3000, 16, &out, &n), DR_OK);
    assert_int_equal(n, 1);
    free(out);
    assert_int_equal(dr__replay_db_claim(f->obj, "c", 0, now, 3000, 16, &out, &n), DR_OK);
    assert_int_equal(n, 0);
    /* released by an orderly stop (heartbeat 0): taken at once */
    assert_int_equal(dr__replay_db_heartbeat(f->obj, "b", 0), DR_OK);
    assert_int_equal(dr__replay_db_claim(f->obj, "c", 0, now, 3000, 16, &out, &n), DR_OK);
    assert_int_equal(n, 1);
    free(out);
}

struct claimer {
    const char *url, *owner;
    int64_t now;
    struct dr__replay_row *out;
    size_t n;
    int err;
};

static void *claim_thread(void *arg)
{
    struct claimer *c = arg;
    struct dr_store *st = NULL;

    c->err = dr_store_open(c->url, &st);
    if (!c->err) {
        c->err = dr__replay_db_claim(st, c->owner, 0, c->now, 3000, NSTALE, &c->out, &c->n);
    }
    dr_store_close(st);
    return NULL;
}

static void claim_race(void **state)
{
    struct fx *f = *state;
    struct claimer c[2];
    pthread_t th[2];
    int64_t now = dr_now_ms();
    int seen[NSTALE + 1] = {0};
    int64_t first = 0;

    for (int i = 0; i < NSTALE; i++) {
        struct dr__replay_row r;
        ROW(r, "running", NULL);
        assert_int_equal(dr__replay_db_insert(f->obj, &r, "dead", NSTALE + 1, 50), DR_OK);
        first = first ? first : r.id;
    }
    assert_int_equal(dr__replay_db_heartbeat(f->obj, "dead", now - 10000), DR_OK);
    for (int i = 0; i < 2; i++) {
        c[i] = (struct claimer){.url = f->url, .owner = i ? "y" : "x", .now = now};
        pthread_create(&th[i], NULL, claim_thread, &c[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].err, DR_OK);
    }
    /* each stale job went to exactly one of them */
    assert_int_equal(c[0].n + c[1].n, NSTALE);
    for (int i = 0; i < 2; i++) {
        for (size_t k = 0; k < c[i].n; k++) {
            int64_t at = c[i].out[k].id - first;
            assert_true(at >= 0 && at < NSTALE);
            assert_int_equal(seen[at]++, 0);
        }
        free(c[i].out);
    }
}

/* Four instances start jobs at once, more than the cap allows: never more than the cap run. */
#define NSTARTERS 4
#define START_CAP 10

struct starter {
    const char *url;
    int ok, full, other;
};

static void *start_thread(void *arg)
{
    struct starter *s = arg;
    struct dr_store *st = NULL;

    if (dr_store_open(s->url, &st) != DR_OK) {
        s->other++;
        return NULL;
    }
    for (int i = 0; i < 8; i++) {
        struct dr__replay_row r;
        ROW(r, "running", NULL);
        int err = dr__replay_db_insert(st, &r, "s", START_CAP, 50);
        s->ok += err == DR_OK;
        s->full += err == DR_ETOOBIG;
        s->other += err != DR_OK && err != DR_ETOOBIG; /* SQLite: busy */
    }
    dr_store_close(st);
    return NULL;
}

static void start_race(void **state)
{
    struct fx *f = *state;
    struct starter s[NSTARTERS] = {0};
    pthread_t th[NSTARTERS];
    struct dr__replay_row *list = NULL;
    size_t n = 0, running = 0;
    int ok = 0;

    for (int i = 0; i < NSTARTERS; i++) {
        s[i].url = f->url;
        pthread_create(&th[i], NULL, start_thread, &s[i]);
    }
    for (int i = 0; i < NSTARTERS; i++) {
        pthread_join(th[i], NULL);
        ok += s[i].ok;
    }
    assert_int_equal(dr__replay_db_list(f->obj, &list, &n), DR_OK);
    for (size_t i = 0; i < n; i++) {
        running += strcmp(list[i].state, "running") == 0;
    }
    free(list);
    assert_int_equal((int)running, ok);
    assert_true(ok <= START_CAP);
    assert_true(ok > 0);
}

/* each test on SQLite and on PostgreSQL */
#define TESTS                                                                                      \
    X(round_trip)                                                                                  \
    X(caps)                                                                                        \
    X(cancel_elsewhere)                                                                            \
    X(claim)                                                                                       \
    X(claim_race)                                                                                  \
    X(start_race)

int main(void)
{
#define X(t) ON_SQLITE(t) ON_PG(t)
    const struct CMUnitTest tests[] = {TESTS};
#undef X
    return cmocka_run_group_tests(tests, NULL, NULL);
}
