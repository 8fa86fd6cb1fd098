/* The local source's lifecycle: destroy leaves nothing registered with the loop that points into
 * freed memory (the loop walks and finishes closing its handles after destroy returns). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/config.h"
#include "dr/err.h"
#include "dr/local.h"
#include "dr/router.h"
#include "dr/store.h"
#include "dr/util.h"

static void touch(uv_handle_t *h, void *arg)
{
    /* what the daemon's close walk does, from instrumented code: reads the handle */
    volatile int type = h->type;
    (void)type;
    (*(int *)arg)++;
}

static void destroy_leaves_no_handle_behind(void **state)
{
    char dir[64], yaml[1024], err[512], url[128], cmd[128];
    struct dr_config *cfg = NULL;
    struct dr_store *st = NULL;
    struct dr_router *r = NULL;
    struct dr_local *l = NULL;
    uv_loop_t loop;
    int n = 0;

    snprintf(dir, sizeof(dir), "/tmp/dr-local-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(yaml, sizeof(yaml),
             "data_dir: %s\nworkers: 1\nprocessors: {test: {}}\n"
             "routes:\n  - {name: t, match: {topic: t}, processors: [test]}\n",
             dir);
    if (dr_config_load_string(yaml, strlen(yaml), "unit.yaml", &cfg, err, sizeof(err))) {
        fail_msg("%s", err);
    }
    snprintf(url, sizeof(url), "sqlite:%s/q.db", dir);
    assert_int_equal(dr_store_open(url, &st), DR_OK);
    uv_loop_init(&loop);
    assert_int_equal(dr_router_create(&loop, cfg, st, &r, err, sizeof(err)), DR_OK);
    assert_int_equal(dr_local_create(&loop, cfg, st, r, &l), DR_OK);
    dr_local_start(l);
    uv_run(&loop, UV_RUN_NOWAIT);
    dr_local_stop(l);
    while (dr_local_busy(l)) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    dr_local_destroy(l);
    uv_walk(&loop, touch, &n);
    assert_true(n > 0); /* the router's handles */
    dr_router_destroy(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    dr_store_close(st);
    dr_config_destroy(cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) {
        /* a leftover temp dir is harmless */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(destroy_leaves_no_handle_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
