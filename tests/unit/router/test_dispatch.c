/* The router's scheduling on real worker threads: priorities, ordering lanes, retries,
 * dead letters, no route, results finished later from other threads. Uses the test processor
 * and a recording source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "dr/config.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/router.h"
#include "dr/util.h"

#define MAXREC 256

struct rec {
    char seq[MAXREC][16];
    int dead[MAXREC];
    char reason[MAXREC][64];
    int n;
    int retries;
    struct dr_router *router;
};

static void on_complete(void *source, struct dr_msg *msg, const struct dr_completion *c)
{
    struct rec *r = source;
    const char *seq = dr_msg_attr(msg, "seq");
    snprintf(r->seq[r->n], sizeof(r->seq[0]), "%s", seq ? seq : "?");
    r->dead[r->n] = c->dead;
    snprintf(r->reason[r->n], sizeof(r->reason[0]), "%s", c->dead ? c->dl.reason : "");
    r->n++;
    dr_router_release(r->router, msg);
}

static int on_retrying(void *source, struct dr_msg *msg, int64_t delay, const char *err)
{
    ((struct rec *)source)->retries++;
    return 0;
}

static void on_abandon(void *source, struct dr_msg *msg)
{
}

static const struct dr_source_ops ops = {
    .name = "unit", .complete = on_complete, .retrying = on_retrying, .abandon = on_abandon};

struct fixture {
    char dir[64];
    struct dr_config *cfg;
    uv_loop_t loop;
    struct rec rec;
};

static struct fixture *setup_with(int workers, const char *extra)
{
    struct fixture *f = dr_xcalloc(1, sizeof(*f));
    char yaml[2048], err[512];

    snprintf(f->dir, sizeof(f->dir), "/tmp/dr-dispatch-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(yaml, sizeof(yaml),
             "data_dir: %s\nworkers: %d\n"
             "retry: {default: {max_attempts: 3, initial: 1ms, multiplier: 1, max: 1ms, "
             "jitter: 0}}\n"
             "processors: {test: {}}\n"
             "routes:\n  - {name: t, match: {topic: t}, processors: [test]}\n%s",
             f->dir, workers, extra);
    if (dr_config_load_string(yaml, strlen(yaml), "unit.yaml", &f->cfg, err, sizeof(err))) {
        fail_msg("%s", err);
    }
    uv_loop_init(&f->loop);
    assert_int_equal(dr_router_create(&f->loop, f->cfg, NULL, &f->rec.router, err, sizeof(err)),
                     DR_OK);
    return f;
}

static struct fixture *setup(int workers)
{
    return setup_with(workers, "");
}

static void teardown(struct fixture *f)
{
    char cmd[128];
    dr_router_destroy(f->rec.router);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_loop_close(&f->loop);
    dr_config_destroy(f->cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0) {
        /* a leftover temp dir is harmless */
    }
    free(f);
}

static void submit_deferred(struct fixture *f, const char *topic, const char *seq, const char *key,
                            int prio, const char *fail, const char *defer)
{
    struct dr_msg *m = dr_msg_create(seq, topic, "{}", 2, dr_now_ms());
    char p[4];
    snprintf(p, sizeof(p), "%d", prio);
    dr_msg_add_attr(m, "seq", seq);
    dr_msg_add_attr(m, "priority", p);
    if (fail) {
        dr_msg_add_attr(m, "test_fail", fail);
    }
    if (defer) {
        dr_msg_add_attr(m, "test_defer", defer);
    }
    dr_msg_set_ordering_key(m, key);
    dr_router_submit(f->rec.router, m, &ops, &f->rec);
}

static void submit(struct fixture *f, const char *topic, const char *seq, const char *key, int prio,
                   const char *fail)
{
    submit_deferred(f, topic, seq, key, prio, fail, NULL);
}

/* Creates <data dir>/name: what test_wait_for and test_defer=gate: wait for. */
static void open_gate(struct fixture *f, const char *name)
{
    char path[128];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
}

static void run_until(struct fixture *f, int n)
{
    int64_t deadline = dr_mono_ms() + 30000;
    while (f->rec.n < n && dr_mono_ms() < deadline) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(f->rec.n, n);
    assert_int_equal(dr_router_in_flight(f->rec.router), 0);
}

static void priorities(void **state)
{
    struct fixture *f = setup(1);
    char seq[8];
    /* The single worker is held by a gate message until all the others are queued. */
    struct dr_msg *m = dr_msg_create("gate", "t", "{}", 2, 0);
    dr_msg_add_attr(m, "seq", "gate");
    dr_msg_add_attr(m, "priority", "9");
    dr_msg_add_attr(m, "test_wait_for", "open");
    dr_router_submit(f->rec.router, m, &ops, &f->rec);
    for (int i = 0; i < 9; i++) {
        snprintf(seq, sizeof(seq), "p%d", i);
        submit(f, "t", seq, NULL, i, NULL);
    }
    open_gate(f, "open");
    run_until(f, 10);
    assert_string_equal(f->rec.seq[0], "gate");
    for (int i = 1, want = 8; i < 10; i++, want--) {
        char w[8];
        snprintf(w, sizeof(w), "p%d", want);
        assert_string_equal(f->rec.seq[i], w);
    }
    teardown(f);
}

/* A priority attribute that is not one (a word, out of range) leaves the route's priority. */
static void bad_priority_keeps_the_routes(void **state)
{
    struct fixture *f =
        setup_with(1, "  - {name: hp, match: {topic: hp}, processors: [test], priority: 7}\n");
    struct dr_msg *m = dr_msg_create("gate", "t", "{}", 2, 0);
    static const char *const bad[] = {"high", "10", "-1"};

    dr_msg_add_attr(m, "seq", "gate");
    dr_msg_add_attr(m, "priority", "9");
    dr_msg_add_attr(m, "test_wait_for", "open");
    dr_router_submit(f->rec.router, m, &ops, &f->rec);
    submit(f, "t", "low", NULL, 5, NULL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = dr_msg_create(bad[i], "hp", "{}", 2, 0);
        dr_msg_add_attr(m, "seq", bad[i]);
        dr_msg_add_attr(m, "priority", bad[i]);
        dr_router_submit(f->rec.router, m, &ops, &f->rec);
    }
    open_gate(f, "open");
    run_until(f, 5);
    assert_string_equal(f->rec.seq[0], "gate");
    assert_string_equal(f->rec.seq[4], "low"); /* 5, below the route's 7 */
    teardown(f);
}

static void ordering_lanes(void **state)
{
    struct fixture *f = setup(4);
    char seq[16];
    /* Key A's first message is slow; the rest of A must wait for it, B need not. */
    struct dr_msg *m = dr_msg_create("a0", "t", "{}", 2, 0);
    dr_msg_add_attr(m, "seq", "a0");
    dr_msg_add_attr(m, "test_sleep_ms", "200");
    dr_msg_set_ordering_key(m, "A");
    dr_router_submit(f->rec.router, m, &ops, &f->rec);
    for (int i = 1; i < 20; i++) {
        snprintf(seq, sizeof(seq), "a%d", i);
        submit(f, "t", seq, "A", i % 10, NULL); /* priorities do not reorder a key */
        snprintf(seq, sizeof(seq), "b%d", i);
        submit(f, "t", seq, "B", 0, NULL);
    }
    run_until(f, 39);
    int next_a = 0, next_b = 1;
    for (int i = 0; i < f->rec.n; i++) {
        const char *s = f->rec.seq[i];
        if (s[0] == 'a') {
            assert_int_equal(atoi(s + 1), next_a++);
        } else {
            assert_int_equal(atoi(s + 1), next_b++);
        }
    }
    assert_int_equal(next_a, 20);
    assert_int_equal(next_b, 20);
    teardown(f);
}

/* A message submitted to run later (a retry loaded after a restart) holds its key's lane
 * meanwhile: the ones after it with its key wait, other keys do not. */
static void held_message_keeps_its_lane(void **state)
{
    struct fixture *f = setup(2);
    struct dr_msg *m = dr_msg_create("k0", "t", "{}", 2, 0);

    dr_msg_add_attr(m, "seq", "k0");
    dr_msg_set_ordering_key(m, "K");
    dr_router_submit_after(f->rec.router, m, &ops, &f->rec, 1000);
    submit(f, "t", "k1", "K", 0, NULL);
    submit(f, "t", "other", "L", 0, NULL);
    submit(f, "t", "k2", "K", 9, NULL);
    run_until(f, 4);
    assert_string_equal(f->rec.seq[0], "other");
    assert_string_equal(f->rec.seq[1], "k0");
    assert_string_equal(f->rec.seq[2], "k1");
    assert_string_equal(f->rec.seq[3], "k2");
    teardown(f);
}

static void retries_and_dead_letters(void **state)
{
    struct fixture *f = setup(2);
    submit(f, "t", "ok", NULL, 0, NULL);
    submit(f, "t", "transient", "K", 0, "transient:2");
    submit(f, "t", "after", "K", 0, NULL); /* must wait for the retried one */
    submit(f, "t", "exhausted", NULL, 0, "transient:10");
    submit(f, "t", "permanent", NULL, 0, "permanent");
    submit(f, "nowhere", "noroute", NULL, 0, NULL);
    run_until(f, 6);
    int pos_transient = -1, pos_after = -1;
    for (int i = 0; i < f->rec.n; i++) {
        const char *s = f->rec.seq[i];
        if (!strcmp(s, "transient")) {
            pos_transient = i;
            assert_false(f->rec.dead[i]);
        } else if (!strcmp(s, "after")) {
            pos_after = i;
        } else if (!strcmp(s, "exhausted")) {
            assert_true(f->rec.dead[i]);
            assert_string_equal(f->rec.reason[i], "attempts_exhausted");
        } else if (!strcmp(s, "permanent")) {
            assert_true(f->rec.dead[i]);
            assert_string_equal(f->rec.reason[i], "test_permanent");
        } else if (!strcmp(s, "noroute")) {
            assert_true(f->rec.dead[i]);
            assert_string_equal(f->rec.reason[i], "no_route");
        }
    }
    assert_true(pos_transient >= 0 && pos_after > pos_transient);
    assert_int_equal(f->rec.retries, 2 + 2); /* transient: 2, exhausted: 2 then dead at 3 */
    teardown(f);
}

/* Results finished from other threads, before and after process() returned, keep every
 * guarantee: outcomes, retries, dead letters, per-key order; drain counts them as running. */
static void deferred_results(void **state)
{
    struct fixture *f = setup(2);
    char seq[16];

    for (int i = 0; i < 40; i++) {
        snprintf(seq, sizeof(seq), "k%d", i);
        submit_deferred(f, "t", seq, "K", 0, NULL, i % 2 ? "late" : "early");
    }
    submit_deferred(f, "t", "late-transient", NULL, 0, "transient:2", "late");
    submit_deferred(f, "t", "early-permanent", NULL, 0, "permanent", "early");
    submit_deferred(f, "t", "late-permanent", NULL, 0, "permanent", "late");
    run_until(f, 43);
    int next_k = 0;
    for (int i = 0; i < f->rec.n; i++) {
        const char *s = f->rec.seq[i];
        if (s[0] == 'k') {
            assert_int_equal(atoi(s + 1), next_k++); /* the lane waits for a deferred result */
            assert_false(f->rec.dead[i]);
        } else if (!strcmp(s, "late-transient")) {
            assert_false(f->rec.dead[i]);
        } else {
            assert_true(f->rec.dead[i]);
            assert_string_equal(f->rec.reason[i], "test_permanent");
        }
    }
    assert_int_equal(next_k, 40);
    assert_int_equal(f->rec.retries, 2);

    /* A deferred result keeps the router busy until it is finished. */
    submit_deferred(f, "t", "last", NULL, 0, NULL, "gate:finish");
    int64_t deadline = dr_mono_ms() + 30000;
    while (!dr_router_busy(f->rec.router) && dr_mono_ms() < deadline) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_true(dr_router_busy(f->rec.router));
    for (int64_t until = dr_mono_ms() + 50; dr_mono_ms() < until;) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        assert_true(dr_router_busy(f->rec.router));
        assert_int_equal(f->rec.n, 43);
    }
    open_gate(f, "finish");
    run_until(f, 44);
    assert_string_equal(f->rec.seq[43], "last");
    assert_false(dr_router_busy(f->rec.router));
    teardown(f);
}

/* A task parked by an open breaker goes back to the queue: a worker may take it again as soon as
 * the breaker lets a probe through (at once with open_for 0), and what that run decides must stand.
 * While the downstream is down no message may complete. */
static void breaker_requeue_keeps_outcome(void **state)
{
    struct fixture *f = setup_with(4, "breakers: {down: {failure_threshold: 1, open_for: 0}}\n");
    char seq[16], path[128];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/downstream-down.down", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    for (int i = 0; i < 8; i++) {
        snprintf(seq, sizeof(seq), "d%d", i);
        submit(f, "t", seq, NULL, 0, "downstream:down");
    }
    for (int64_t until = dr_mono_ms() + 500; dr_mono_ms() < until;) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        assert_int_equal(f->rec.n, 0); /* the downstream is still down */
    }
    assert_int_equal(unlink(path), 0);
    run_until(f, 8);
    for (int i = 0; i < f->rec.n; i++) {
        assert_false(f->rec.dead[i]);
    }
    teardown(f);
}

/* The half-open probe is whatever task of the paused processor comes first. One that fails
 * for a reason of its own (a plain RETRY, no downstream) says nothing about the downstream: the
 * breaker must let the next probe through, not stay half-open with a probe that never returns. */
static void breaker_probe_with_plain_retry(void **state)
{
    struct fixture *f =
        setup_with(1, "breakers: {down: {failure_threshold: 1, open_for: 100ms}}\n");
    char path[128];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/downstream-down.down", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    submit(f, "t", "down", NULL, 0, "downstream:down");
    for (int open = 0; !open;) {
        char *js = dr_router_breakers_json(f->rec.router);
        open = strstr(js, "\"open\"") != NULL;
        free(js);
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    /* first in line when the breaker half-opens: fails once without naming a downstream */
    submit(f, "t", "plain", NULL, 9, "transient:1");
    assert_int_equal(unlink(path), 0);
    int64_t deadline = dr_mono_ms() + 5000;
    while (f->rec.n < 2 && dr_mono_ms() < deadline) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(f->rec.n, 2);
    assert_false(f->rec.dead[0]);
    assert_false(f->rec.dead[1]);
    teardown(f);
}

static int walked;

static void walk_handle(uv_handle_t *h, void *arg)
{
    /* what the daemon's shutdown does with every handle left on the loop */
    walked += h->type == UV_ASYNC;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

/* After destroy the loop may still be walked and run (the daemon closes everything left on it):
 * no handle the router leaves behind may point into freed memory. */
static void destroy_then_walk_loop(void **state)
{
    struct fixture *f = setup(2);

    submit(f, "t", "one", NULL, 0, NULL);
    run_until(f, 1);
    dr_router_destroy(f->rec.router);
    f->rec.router = NULL;
    uv_walk(&f->loop, walk_handle, NULL);
    assert_true(walked >= 1); /* the router's wake-up handle, closing */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    dr_config_destroy(f->cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0) {
        /* a leftover temp dir is harmless */
    }
    free(f);
}

/* A source with keeps_lanes: what it was told, and the messages it has not let go yet. */
struct keeper {
    struct dr_router *router;
    char order[256];
    struct dr_msg *held[4];
    int n;
};

static void keeper_complete(void *source, struct dr_msg *msg, const struct dr_completion *c)
{
    struct keeper *k = source;
    size_t len = strlen(k->order);

    snprintf(k->order + len, sizeof(k->order) - len, "%s%s", len ? " " : "",
             dr_msg_attr(msg, "seq"));
    assert_true(k->n < (int)DR_ARRAY_LEN(k->held)); /* completed more often than submitted */
    k->held[k->n++] = msg;
}

static const struct dr_source_ops keeper_ops = {.name = "keeper",
                                                .complete = keeper_complete,
                                                .retrying = on_retrying,
                                                .abandon = on_abandon,
                                                .keeps_lanes = 1};

static void keeper_run(struct fixture *f, struct keeper *k, int n, int ms)
{
    int64_t deadline = dr_mono_ms() + ms;
    while (k->n < n && dr_mono_ms() < deadline) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

/*
 * With keeps_lanes, a processed message keeps its ordering lane through complete(): the next
 * message of its key waits until the source lets the lane go (dr_router_release_lanes), and a
 * run again (dr_router_retry_after) comes before it. A message of another key is not held.
 */
static void kept_lane_holds_key(void **state)
{
    struct fixture *f = setup(2);
    struct keeper k;
    const char *seqs[] = {"k1-1", "k1-2", "k2-1"}, *keys[] = {"k1", "k1", "k2"};

    (void)state;
    memset(&k, 0, sizeof(k));
    k.router = f->rec.router;
    for (int i = 0; i < 3; i++) {
        struct dr_msg *m = dr_msg_create(seqs[i], "t", "{}", 2, dr_now_ms());
        dr_msg_add_attr(m, "seq", seqs[i]);
        dr_msg_set_ordering_key(m, keys[i]);
        dr_router_submit(f->rec.router, m, &keeper_ops, &k);
    }
    keeper_run(f, &k, 3, 300); /* k1-2 must not come */
    if (strcmp(k.order, "k1-1 k2-1") != 0 && strcmp(k.order, "k2-1 k1-1") != 0) {
        fail_msg("completed: %s; expected k1-1 and k2-1 only (k1-2 waits for k1-1's lane)",
                 k.order);
    }
    struct dr_msg *first =
        strcmp(dr_msg_attr(k.held[0], "seq"), "k1-1") == 0 ? k.held[0] : k.held[1];
    /* its completion failed: it runs again, still before k1-2 */
    dr_router_retry_after(f->rec.router, first, 1);
    keeper_run(f, &k, 3, 5000);
    keeper_run(f, &k, 4, 100); /* k1-2 must not come */
    assert_int_equal(k.n, 3);
    assert_ptr_equal(k.held[2], first);
    dr_router_release_lanes(f->rec.router, first);
    keeper_run(f, &k, 4, 5000);
    assert_int_equal(k.n, 4);
    assert_string_equal(dr_msg_attr(k.held[3], "seq"), "k1-2");
    for (int i = 0; i < 4; i++) {
        if (k.held[i] != first) {
            dr_router_release(f->rec.router, k.held[i]);
        }
    }
    dr_router_release(f->rec.router, first);
    assert_int_equal(dr_router_in_flight(f->rec.router), 0);
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(priorities),
        cmocka_unit_test(bad_priority_keeps_the_routes),
        cmocka_unit_test(ordering_lanes),
        cmocka_unit_test(held_message_keeps_its_lane),
        cmocka_unit_test(retries_and_dead_letters),
        cmocka_unit_test(deferred_results),
        cmocka_unit_test(breaker_requeue_keeps_outcome),
        cmocka_unit_test(destroy_then_walk_loop),
        cmocka_unit_test(breaker_probe_with_plain_retry),
        cmocka_unit_test(kept_lane_holds_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
