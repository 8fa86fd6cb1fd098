/*
 * A real hub on its own loop and SQLite store (in a fresh temp dir) with an HS256 key, for
 * tests that drive connections on socket pairs: the test is the client side. Setup puts a
 * struct fx in the cmocka state, teardown stops the hub, closes the clients' ends and frees it.
 * Define RT_FX_MAX_QUEUE_BYTES before including this file to change the outbound queue limit.
 * A read on a client's end never waits longer than RT_FX_READ_TIMEOUT_MS: a connection that
 * does not answer fails its test instead of hanging the suite.
 */
#ifndef DR_TEST_RT_FIXTURE_H
#define DR_TEST_RT_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dr/err.h"
#include "dr/jwt.h"
#include "dr/store.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

#ifndef RT_FX_MAX_QUEUE_BYTES
#define RT_FX_MAX_QUEUE_BYTES (1 << 20)
#endif
#define RT_FX_MAX_PEERS 8
#define RT_FX_READ_TIMEOUT_MS 5000

static const char secret[] = "0123456789abcdef0123456789abcdef-test-secret";

struct fx {
    char dir[64];
    uv_loop_t loop;
    struct dr_store *store;
    struct dr_jwt_keys *keys;
    struct rt_conf conf;
    struct dr_hub hub;
    int peers[RT_FX_MAX_PEERS]; /* the clients' ends of the socket pairs, in opening order */
    size_t npeers;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char url[128];

    snprintf(f->dir, sizeof(f->dir), "/tmp/dr-rt-XXXXXX");
    if (!mkdtemp(f->dir)) {
        return -1;
    }
    snprintf(url, sizeof(url), "%s/store.db", f->dir);
    if (dr_store_open(url, &f->store) != DR_OK || dr__rt_migrate(dr_store_db(f->store)) != DR_OK) {
        return -1;
    }
    uv_loop_init(&f->loop);
    f->keys = dr_jwt_keys_create();
    if (dr_jwt_keys_set_secret(f->keys, secret, strlen(secret)) != DR_OK) {
        return -1;
    }
    f->conf = (struct rt_conf){
        .max_connections = 100,
        .max_per_user = 10,
        .max_rooms = 32,
        .max_frame = 65536,
        .max_queue_bytes = RT_FX_MAX_QUEUE_BYTES,
        .max_buffered = 1000,
        .rate = 1000,
        .burst = 1000,
        .heartbeat_ms = 3600000,
        .idle_timeout_ms = 3600000,
        .auth_timeout_ms = 3600000,
        .close_timeout_ms = 1000,
        .catchup_page = 500,
        .leeway_s = DR_JWT_NO_LEEWAY,
    };
    dr__hub_init(&f->hub, &f->loop, &f->conf, dr_store_db(f->store), f->keys);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    dr__hub_stop(&f->hub);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    dr__hub_cleanup(&f->hub);
    uv_loop_close(&f->loop);
    for (size_t i = 0; i < f->npeers; i++) {
        close(f->peers[i]);
    }
    dr_jwt_keys_destroy(f->keys);
    dr_store_close(f->store);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0) {
        /* a leftover temp dir is harmless */
    }
    free(f);
    return 0;
}

/* The hub's claims for the token of c (its "sub" and the rest) with an exp expires_s from now.
 * Takes c. */
static struct dr_jwt_claims *fx_claims(struct fx *f, cJSON *c, int64_t expires_s)
{
    struct dr_jwt_claims *out = NULL;
    char *tok = NULL, why[DR_JWT_WHY_SIZE];

    cJSON_AddNumberToObject(c, "exp", (double)(dr_now_ms() / 1000 + expires_s));
    assert_int_equal(dr_jwt_sign_hs256(secret, strlen(secret), c, &tok, NULL), DR_OK);
    assert_int_equal(dr__rt_verify(&f->hub, tok, strlen(tok), &out, why, sizeof(why)), DR_OK);
    free(tok);
    cJSON_Delete(c);
    return out;
}

/* A connection of transport tp on one end of a new socket pair, waiting for its auth; the
 * other end is f->peers[f->npeers - 1]. */
static struct rt_conn *fx_conn(struct fx *f, const struct rt_transport *tp)
{
    struct timeval tv = {.tv_sec = RT_FX_READ_TIMEOUT_MS / 1000,
                         .tv_usec = RT_FX_READ_TIMEOUT_MS % 1000 * 1000};
    int sv[2];
    uv_tcp_t *tcp = malloc(sizeof(*tcp));
    struct rt_conn *c;

    assert_true(f->npeers < RT_FX_MAX_PEERS);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* a blocking recv() on the client's end gives up (-1, EAGAIN) rather than wait forever */
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    f->peers[f->npeers++] = sv[1];
    assert_int_equal(uv_tcp_init(&f->loop, tcp), 0);
    assert_int_equal(uv_tcp_open(tcp, sv[0]), 0);
    c = dr__rt_conn_create(&f->hub, tp, tcp);
    c->tpdata = calloc(1, 512); /* the transport's state: zeroed is its initial state */
    return c;
}

/*
 * Reads the client's end fd into buf (cap bytes, always a string) until it holds want, running
 * the hub's loop meanwhile so that what the connection still has queued goes out. Returns the
 * bytes read. Fails the test when the connection ends, buf fills or RT_FX_READ_TIMEOUT_MS pass
 * without want.
 */
static inline size_t fx_read_until(struct fx *f, int fd, char *buf, size_t cap, const char *want)
{
    int64_t deadline = dr_mono_ms() + RT_FX_READ_TIMEOUT_MS;
    size_t got = 0;

    buf[0] = '\0';
    while (!strstr(buf, want)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t r;

        if (got + 1 >= cap || dr_mono_ms() > deadline) {
            fail_msg("no '%s' from the connection within %d ms; it wrote: %.300s", want,
                     RT_FX_READ_TIMEOUT_MS, buf);
        }
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (poll(&p, 1, 10) <= 0) {
            continue;
        }
        r = recv(fd, buf + got, cap - 1 - got, 0);
        if (r <= 0) {
            fail_msg("the connection ended without '%s'; it wrote: %.300s", want, buf);
        }
        got += (size_t)r;
        buf[got] = '\0';
    }
    return got;
}

#endif
