/*
 * A processor under test on a fresh store of one backend (tests/unit/store/backend.h): the
 * cmocka group state is the backend; setup replaces it with a struct pfx, teardown frees it.
 * Define PFX_PROCESSOR (the struct dr_processor under test) before including this file.
 */
#ifndef DR_TEST_PROC_FIXTURE_H
#define DR_TEST_PROC_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "dr/processor.h"
#include "dr/store.h"
#include "dr/util.h"
#include "unit/store/backend.h"

struct pfx {
    struct fx fx;
    struct dr_store *st;
    void *proc;
};

static int fx_setup(void **state)
{
    struct pfx *p = dr_xcalloc(1, sizeof(*p));
    const struct backend *be = *state;
    struct dr_proc_env env = {0};
    char err[256] = "";

    if (fx_prepare(&p->fx, be)) {
        free(p);
        return -1;
    }
    if (dr_store_open(p->fx.url, &p->st) != DR_OK) {
        fprintf(stderr, "cannot open %s test store\n", be->name);
        goto fail;
    }
    env.store = p->st;
    env.data_dir = "/tmp";
    if (PFX_PROCESSOR.init(&env, &p->proc, err, sizeof(err)) != 0) {
        fprintf(stderr, "init: %s\n", err);
        goto fail;
    }
    *state = p;
    return 0;
fail:
    dr_store_close(p->st);
    fx_release(&p->fx);
    free(p);
    return -1;
}

static int fx_teardown(void **state)
{
    struct pfx *p = *state;

    if (p) {
        PFX_PROCESSOR.destroy(p->proc);
        dr_store_close(p->st);
        fx_release(&p->fx);
        free(p);
    }
    return 0;
}

#endif
