/* The realtime processor on SQLite, through the processor interface: results are finished
 * later from its store thread; notifications are stored in seq order; an invalid payload is
 * rejected at once; a notification the store refuses is rejected at once while the rest of its
 * batch is stored and handed to the hub; a locked store retries everything; destroy finishes
 * what is queued. */
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
#include "unit/store/refuse.h"

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
    char url[128];
    struct dr_store *store;
    const struct dr_processor *p;
    void *state;
    struct slot slots[N];
    /* the hub the processor hands stored notifications to; its loop never runs, so what it was
     * handed stays in hub.inq */
    uv_loop_t loop;
    struct rt_conf conf;
    struct dr_hub hub;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256];
    struct dr_proc_env env = {0};

    snprintf(f->dir, sizeof(f->dir), "/tmp/dr-rt-proc-XXXXXX");
    if (!mkdtemp(f->dir)) {
        return -1;
    }
    snprintf(f->url, sizeof(f->url), "%s/store.db", f->dir);
    if (dr_store_open(f->url, &f->store) != DR_OK ||
        dr__rt_migrate(dr_store_db(f->store)) != DR_OK) {
        return -1;
    }
    uv_loop_init(&f->loop);
    f->conf = (struct rt_conf){.heartbeat_ms = 3600000, .auth_timeout_ms = 3600000};
    dr__hub_init(&f->hub, &f->loop, &f->conf, dr_store_db(f->store), NULL);
    dr__hub_set_current(&f->hub);
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
    dr__hub_set_current(NULL);
    dr__hub_stop(&f->hub);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    dr__hub_cleanup(&f->hub);
    uv_loop_close(&f->loop);
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

/* The ids of the notifications handed to the hub, in the order it got them; checks their seqs
 * ascend. */
static size_t handed_to_hub(struct fx *f, char ids[][32], size_t cap)
{
    size_t n = 0;

    pthread_mutex_lock(&f->hub.mu);
    for (size_t i = 0; i < f->hub.ninq && n < cap; i++, n++) {
        snprintf(ids[n], sizeof(ids[n]), "%s", dr_notification_id(f->hub.inq[i]));
        if (i > 0) {
            assert_true(dr_notification_seq(f->hub.inq[i]) >
                        dr_notification_seq(f->hub.inq[i - 1]));
        }
    }
    pthread_mutex_unlock(&f->hub.mu);
    return n;
}

/* The store refuses one notification for good (a trigger that raises): on its first attempt
 * that one is rejected (dead-lettered now, not retried), and the others, however they were
 * batched with it, are stored and handed to the hub. */
static void a_refused_notification_is_rejected_alone(void **state)
{
    struct fx *f = *state;
    char id[32], ids[N][32];

    refuse_inserts(dr_store_db(f->store), "poison", "rt_notifications", "notification_id",
                   "poison");
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof(id), i == 15 ? "poison" : "ok%02d", i);
        run(f, i, id, NULL);
    }
    wait_finished(30);
    for (int i = 0; i < 30; i++) {
        if (i == 15) {
            assert_int_equal(f->slots[i].res.outcome, DR_OUTCOME_REJECT);
            assert_string_equal(f->slots[i].res.reason, "store_refused");
        } else {
            assert_int_equal(f->slots[i].res.outcome, DR_OUTCOME_OK);
        }
    }
    assert_int_equal(count(f, ""), 29);
    assert_int_equal(handed_to_hub(f, ids, N), 29);
    for (int i = 0, k = 0; i < 30; i++) {
        if (i != 15) {
            snprintf(id, sizeof(id), "ok%02d", i);
            assert_string_equal(ids[k++], id);
        }
    }
}

/* Another connection holds the database's write lock: the store is busy, which is no fault of
 * the notifications, so every one of them is retried and none reaches the hub. */
static void a_locked_store_retries_everything(void **state)
{
    struct fx *f = *state;
    struct dr_db *other = NULL;
    struct dr_db_tx *tx = NULL;
    char id[32], ids[N][32];

    assert_int_equal(dr_db_open(f->url, 1, &other), DR_OK);
    assert_int_equal(dr_db_begin(other, &tx), DR_OK); /* BEGIN IMMEDIATE: holds the lock */
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "locked%d", i);
        run(f, i, id, NULL);
    }
    wait_finished(3);
    dr_db_rollback(tx);
    dr_db_close(other);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->slots[i].res.outcome, DR_OUTCOME_RETRY);
        assert_string_equal(f->slots[i].res.reason, "store_unavailable");
    }
    assert_int_equal(count(f, ""), 0);
    assert_int_equal(handed_to_hub(f, ids, N), 0);
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
        cmocka_unit_test_setup_teardown(a_refused_notification_is_rejected_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(a_locked_store_retries_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(destroy_finishes_what_is_queued, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
