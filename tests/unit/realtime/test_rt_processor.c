/* The realtime processor on SQLite, through the processor interface: results are finished
 * later from its store thread; notifications are stored in seq order; an invalid payload is
 * rejected at once; a notification whose insert fails is retried alone while the rest of its
 * batch is stored; a store that is gone retries everything; destroy finishes what is queued. */
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

#include "dr/db.h"
#include "dr/err.h"
#include "dr/msg.h"
#include "dr/processor.h"
#include "dr/store.h"
#include "realtime/rt_int.h"

#define N 64

struct slot {
    struct dr_result res;
    struct dr_msg *msg;
    int finished;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int nfinished;

static void on_finish(struct dr_result *r)
{
    struct slot *s = (struct slot *)((char *)r - offsetof(struct slot, res));
    pthread_mutex_lock(&mu);
    s->finished++;
    nfinished++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

struct fx {
    char dir[64];
    struct dr_store *store;
    const struct dr_processor *p;
    void *state;
    struct slot slots[N];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char url[128], err[256];
    struct dr_proc_env env = {0};

    snprintf(f->dir, sizeof(f->dir), "/tmp/dr-rt-proc-XXXXXX");
    if (!mkdtemp(f->dir)) {
        return -1;
    }
    snprintf(url, sizeof(url), "%s/store.db", f->dir);
    if (dr_store_open(url, &f->store) != DR_OK || dr__rt_migrate(dr_store_db(f->store)) != DR_OK) {
        return -1;
    }
    f->p = dr_processor_find("realtime");
    env.store = f->store;
    env.data_dir = f->dir;
    if (!f->p || f->p->init(&env, &f->state, err, sizeof(err)) != 0) {
        return -1;
    }
    nfinished = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    if (f->state) {
        f->p->destroy(f->state);
    }
    for (int i = 0; i < N; i++) {
        dr_result_cleanup(&f->slots[i].res);
        dr_msg_unref(f->slots[i].msg);
    }
    dr_store_close(f->store);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0) {
        /* a leftover temp dir is harmless */
    }
    free(f);
    return 0;
}

/* Runs process() for slot i with a notification for id (or raw text when id is NULL). */
static void run(struct fx *f, int i, const char *id, const char *raw)
{
    char json[256], mid[32];
    struct slot *s = &f->slots[i];

    if (id) {
        snprintf(json, sizeof(json),
                 "{\"notification_id\":\"%s\",\"user_id\":\"u1\",\"room\":\"user:u1\","
                 "\"notification_type\":\"system.t\"}",
                 id);
        raw = json;
    }
    snprintf(mid, sizeof(mid), "m%d", i);
    s->msg = dr_msg_create(mid, "client-notifications", raw, strlen(raw), 0);
    dr_result_init(&s->res);
    s->res.finish_fn = on_finish;
    f->p->process(f->state, s->msg, &s->res);
    if (!s->res.deferred) {
        on_finish(&s->res); /* finished inside process() */
    }
}

static void wait_finished(int n)
{
    pthread_mutex_lock(&mu);
    while (nfinished < n) {
        pthread_cond_wait(&cv, &mu);
    }
    pthread_mutex_unlock(&mu);
}

static int get_int(void *ctx, const struct dr_db_row *row)
{
    *(int64_t *)ctx = dr_db_row_int(row, 0);
    return 0;
}

static int64_t count(struct fx *f, const char *where)
{
    char sql[200];
    int64_t n = -1;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM rt_notifications %s", where);
    assert_int_equal(dr_db_exec(dr_store_db(f->store), sql, NULL, 0, get_int, &n, NULL), DR_OK);
    return n;
}

static void stores_in_order_and_finishes_later(void **state)
{
    struct fx *f = *state;
    char id[32];

    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "n%02d", i);
        run(f, i, id, NULL);
    }
    run(f, 40, NULL, "{\"not\":\"a notification\"}");
    run(f, 41, "n05", NULL); /* a redelivery */
    wait_finished(42);
    for (int i = 0; i < 42; i++) {
        assert_int_equal(f->slots[i].finished, 1);
        if (i == 40) {
            assert_false(f->slots[i].res.deferred); /* rejected at once */
            assert_int_equal(f->slots[i].res.outcome, DR_OUTCOME_REJECT);
            assert_string_equal(f->slots[i].res.reason, "invalid_notification");
        } else {
            assert_true(f->slots[i].res.deferred);
            assert_int_equal(f->slots[i].res.outcome, DR_OUTCOME_OK);
        }
    }
    assert_int_equal(count(f, ""), 40);
    /* seqs follow the order process() was called in */
    assert_int_equal(count(f, "a JOIN rt_notifications b ON a.notification_id < "
                              "b.notification_id AND a.seq > b.seq"),
                     0);
}

static void a_failing_insert_fails_alone(void **state)
{
    struct fx *f = *state;
    char id[32];

    assert_int_equal(dr_db_exec(dr_store_db(f->store),
                                "CREATE TRIGGER poison BEFORE INSERT ON rt_notifications "
                                "WHEN NEW.notification_id = 'poison' "
                                "BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
                                NULL, 0, NULL, NULL, NULL),
                     DR_OK);
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof(id), i == 15 ? "poison" : "ok%02d", i);
        run(f, i, id, NULL);
    }
    wait_finished(30);
    for (int i = 0; i < 30; i++) {
        if (i == 15) {
            assert_int_equal(f->slots[i].res.outcome, DR_OUTCOME_RETRY);
            assert_string_equal(f->slots[i].res.reason, "store_unavailable");
        } else {
            assert_int_equal(f->slots[i].res.outcome, DR_OUTCOME_OK);
        }
    }
    assert_int_equal(count(f, ""), 29);
}

static void a_lost_store_retries_everything(void **state)
{
    struct fx *f = *state;
    char id[32];

    assert_int_equal(
        dr_db_exec(dr_store_db(f->store), "DROP TABLE rt_notifications", NULL, 0, NULL, NULL, NULL),
        DR_OK);
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "gone%d", i);
        run(f, i, id, NULL);
    }
    wait_finished(10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(f->slots[i].res.outcome, DR_OUTCOME_RETRY);
        assert_string_equal(f->slots[i].res.reason, "store_unavailable");
    }
}

static void destroy_finishes_what_is_queued(void **state)
{
    struct fx *f = *state;
    char id[32];

    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "d%02d", i);
        run(f, i, id, NULL);
    }
    f->p->destroy(f->state);
    f->state = NULL;
    pthread_mutex_lock(&mu);
    assert_int_equal(nfinished, N);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < N; i++) {
        assert_int_equal(f->slots[i].finished, 1);
        assert_int_equal(f->slots[i].res.outcome, DR_OUTCOME_OK);
    }
    assert_int_equal(count(f, ""), N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(stores_in_order_and_finishes_later, setup, teardown),
        cmocka_unit_test_setup_teardown(a_failing_insert_fails_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(a_lost_store_retries_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(destroy_finishes_what_is_queued, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
