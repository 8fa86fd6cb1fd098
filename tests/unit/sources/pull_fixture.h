/*
 * The pull source and the router run on a loop of the test's own against a fake Pub/Sub
 * (testsrv.h, REST): what the tests of src/sources/pull/ share. The handler runs on the fake's
 * threads under its mutex; conditions the test waits for read what it records under that mutex
 * too (pfx_locked).
 */
#ifndef DR_TEST_PULL_FIXTURE_H
#define DR_TEST_PULL_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dr/buf.h"
#include "dr/config.h"
#include "dr/err.h"
#include "dr/pull.h"
#include "dr/router.h"
#include "dr/store.h"
#include "dr/util.h"
#include "unit/sources/pubsub/testsrv.h"

struct pull_fx {
    char dir[64];
    struct dr_config *cfg;
    struct dr_store *st;
    struct dr_router *r;
    struct dr_pull *p;
    struct testsrv srv;
    uv_loop_t loop;
};

/* Starts the fake with handler h (its state ud) and loads the configuration: data_dir, mode
 * pubsub, the REST transport against the fake and one worker, then yaml (more top-level keys;
 * its pubsub section is "pubsub_more", lines indented by two spaces that go into the pubsub
 * section). Nothing runs yet: the test may adjust cfg, then calls pfx_start(). */
static inline void pfx_load(struct pull_fx *fx, ts_handler h, void *ud, const char *pubsub_more,
                            const char *yaml)
{
    char host[64], err[512];
    struct dr_buf b;

    memset(fx, 0, sizeof(*fx));
    assert_int_equal(ts_start(&fx->srv, h, ud), 0);
    snprintf(host, sizeof(host), "127.0.0.1:%d", fx->srv.port);
    setenv("PUBSUB_EMULATOR_HOST", host, 1);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/dr-pull-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    dr_buf_init(&b, 1 << 20);
    dr_buf_printf(&b,
                  "data_dir: %s\nmode: pubsub\nworkers: 1\nprocessors: {test: {}}\n"
                  "pubsub:\n  project: p\n  transport: rest\n  pulls_in_flight: 1\n%s%s",
                  fx->dir, pubsub_more, yaml);
    if (dr_config_load_string(b.data, b.len, "unit.yaml", &fx->cfg, err, sizeof(err))) {
        fail_msg("%s", err);
    }
    dr_buf_cleanup(&b);
}

static inline void pfx_start(struct pull_fx *fx)
{
    char url[128], err[512];

    snprintf(url, sizeof(url), "sqlite:%s/q.db", fx->dir);
    assert_int_equal(dr_store_open(url, &fx->st), DR_OK);
    uv_loop_init(&fx->loop);
    if (dr_router_create(&fx->loop, fx->cfg, fx->st, &fx->r, err, sizeof(err)) != DR_OK) {
        fail_msg("%s", err);
    }
    assert_int_equal(dr_pull_create(&fx->loop, fx->cfg, fx->st, fx->r, &fx->p), DR_OK);
    dr_pull_start(fx->p);
}

/* Runs the loop until done(arg) says 1 (checked under the fake's mutex), or at most max_ms as
 * a guard against a hang: returns done's last answer, so the test fails on what it waited for. */
static inline int pfx_run_until(struct pull_fx *fx, int (*done)(void *), void *arg, int max_ms)
{
    int64_t until = dr_mono_ms() + max_ms;
    int ok = 0;

    for (;;) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        pthread_mutex_lock(&fx->srv.mu);
        ok = done(arg);
        pthread_mutex_unlock(&fx->srv.mu);
        if (ok || dr_mono_ms() > until) {
            return ok;
        }
        usleep(2000);
    }
}

static inline void pfx_close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

/* Stops everything the way the daemon does, and removes the data directory. */
static inline void pfx_stop(struct pull_fx *fx)
{
    char cmd[128];

    dr_pull_stop(fx->p);
    dr_router_drain(fx->r);
    dr_router_destroy(fx->r);
    dr_pull_destroy(fx->p);
    uv_walk(&fx->loop, pfx_close_handle, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    dr_store_close(fx->st);
    dr_config_destroy(fx->cfg);
    ts_stop(&fx->srv);
    unsetenv("PUBSUB_EMULATOR_HOST");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    if (system(cmd) != 0) {
        /* a leftover temp dir is harmless */
    }
}

/* Creates <data_dir>/name: the test processor's messages with test_wait_for=name go on. */
static inline void pfx_open_gate(const struct pull_fx *fx, const char *name)
{
    char path[128];
    FILE *g;

    snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
    g = fopen(path, "w");
    assert_non_null(g);
    fclose(g);
}

/* Copies the body's JSON answer into resp. */
static inline void pfx_answer(struct ts_resp *resp, const char *body)
{
    resp->body = strdup(body);
    resp->body_len = strlen(body);
    resp->content_type = "application/json";
}

#endif
