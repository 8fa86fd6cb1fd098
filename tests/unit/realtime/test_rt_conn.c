/* A connection on a real hub and SQLite store, driven through its client messages: a room
 * permission check that needs the store runs on the thread pool while the client's next
 * message (an auth with a fresh token) replaces the connection's claims on the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dr/db.h"
#include "dr/err.h"
#include "dr/jwt.h"
#include "dr/store.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

static const char secret[] = "0123456789abcdef0123456789abcdef-test-secret";

struct fx {
    char dir[64];
    uv_loop_t loop;
    struct dr_store *store;
    struct dr_jwt_keys *keys;
    struct rt_conf conf;
    struct dr_hub hub;
    int peer; /* the client's end of the socket pair */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char url[128];

    snprintf(f->dir, sizeof(f->dir), "/tmp/dr-rt-conn-XXXXXX");
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
        .max_queue_bytes = 1 << 20,
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

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    dr__hub_stop(&f->hub);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    dr__hub_cleanup(&f->hub);
    uv_loop_close(&f->loop);
    if (f->peer > 0) {
        close(f->peer);
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

static struct dr_jwt_claims *claims_for(struct fx *f, const char *sub, const char *email)
{
    cJSON *c = cJSON_CreateObject();
    struct dr_jwt_claims *out = NULL;
    char *tok = NULL, why[DR_JWT_WHY_SIZE];

    cJSON_AddStringToObject(c, "sub", sub);
    cJSON_AddStringToObject(c, "email", email);
    cJSON_AddNumberToObject(c, "exp", (double)(dr_now_ms() / 1000 + 3600));
    assert_int_equal(dr_jwt_sign_hs256(secret, strlen(secret), c, &tok, NULL), DR_OK);
    assert_int_equal(dr__rt_verify(&f->hub, tok, strlen(tok), &out, why, sizeof(why)), DR_OK);
    free(tok);
    cJSON_Delete(c);
    return out;
}

static char *auth_message(const char *sub, const char *email)
{
    cJSON *c = cJSON_CreateObject(), *m = cJSON_CreateObject();
    char *tok = NULL, *s;

    cJSON_AddStringToObject(c, "sub", sub);
    cJSON_AddStringToObject(c, "email", email);
    cJSON_AddNumberToObject(c, "exp", (double)(dr_now_ms() / 1000 + 7200));
    assert_int_equal(dr_jwt_sign_hs256(secret, strlen(secret), c, &tok, NULL), DR_OK);
    cJSON_AddStringToObject(m, "type", "auth");
    cJSON_AddStringToObject(m, "token", tok);
    s = cJSON_PrintUnformatted(m);
    free(tok);
    cJSON_Delete(c);
    cJSON_Delete(m);
    return s;
}

/* An authenticated SSE connection on one end of a socket pair. */
static struct rt_conn *open_conn(struct fx *f, const char *sub, const char *email)
{
    int sv[2];
    uv_tcp_t *tcp = malloc(sizeof(*tcp));
    struct rt_conn *c;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    f->peer = sv[1];
    assert_int_equal(uv_tcp_init(&f->loop, tcp), 0);
    assert_int_equal(uv_tcp_open(tcp, sv[0]), 0);
    c = dr__rt_conn_create(&f->hub, &dr__rt_sse, tcp);
    c->tpdata = calloc(1, 512); /* the transport's state: zeroed is its initial state */
    assert_int_equal(dr__rt_conn_authenticated(c, claims_for(f, sub, email), -1, NULL, 0), DR_OK);
    assert_int_equal(c->state, RT_CONN_OPEN);
    return c;
}

static void exec(struct fx *f, const char *sql)
{
    assert_int_equal(dr_db_exec(dr_store_db(f->store), sql, NULL, 0, NULL, NULL, NULL), DR_OK);
}

static void on_message(struct rt_conn *c, const char *s)
{
    dr__rt_conn_on_message(c, s, strlen(s));
}

/*
 * subscribe meeting:X asks the store (the user is neither organizer nor, by email, a
 * participant: two queries on the thread pool, the first a scan of a large polls table). The
 * token refresh arrives while the first query runs and frees the claims it replaces: the check
 * must not be reading them.
 */
static void refresh_during_permission_check(void **state)
{
    struct fx *f = *state;
    struct rt_conn *c;
    char *auth;

    exec(f, "CREATE TABLE polls (poll_id TEXT, organizer_user_id TEXT)");
    exec(f, "CREATE TABLE poll_participants (poll_id TEXT, email TEXT)");
    exec(f, "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000)"
            " INSERT INTO polls SELECT 'p' || x, 'organizer-' || x FROM n");
    c = open_conn(f, "user-1", "someone@example.com");
    dr__rt_conn_ref(c);
    auth = auth_message("user-1", "someone@example.com");

    on_message(c, "{\"type\":\"subscribe\",\"room\":\"meeting:p-none\"}");
    assert_int_equal(c->pending_joins, 1);
    usleep(20000); /* the check is under way, scanning polls */
    on_message(c, auth);
    assert_int_equal(c->state, RT_CONN_OPEN);
    while (c->pending_joins) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    /* not a participant: refused and closed */
    assert_int_not_equal(c->state, RT_CONN_OPEN);
    free(auth);
    dr__rt_conn_unref(c);
}

static int64_t store_one(struct fx *f, const char *id, const char *room)
{
    char json[256], why[128];
    struct dr_notification *n = NULL;
    int dup;
    int64_t seq;

    snprintf(json, sizeof(json),
             "{\"notification_id\":\"%s\",\"room\":\"%s\",\"notification_type\":\"system.t\"}", id,
             room);
    assert_int_equal(dr_notification_parse(json, strlen(json), id, &n, why, sizeof(why)), DR_OK);
    assert_int_equal(dr__rt_store_put(dr_store_db(f->store), n, &dup), DR_OK);
    seq = dr_notification_seq(n);
    dr_notification_unref(n);
    return seq;
}

/*
 * Resume in pages of 2 over 6 stored notifications of which the second cannot be read: the
 * first page holds one readable row, and the catch-up must still go on to the other pages.
 */
static void resume_goes_past_an_unreadable_row(void **state)
{
    struct fx *f = *state;
    struct rt_conn *c;
    int64_t seq[6];
    char sql[128], buf[65536];
    size_t got = 0;
    ssize_t r;
    int events = 0;

    f->conf.catchup_page = 2;
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof(id), "n%d", i);
        seq[i] = store_one(f, id, "user:user-2");
    }
    snprintf(sql, sizeof(sql), "UPDATE rt_notifications SET body_json = 'x' WHERE seq = %lld",
             (long long)seq[1]);
    exec(f, sql);
    {
        int sv[2];
        uv_tcp_t *tcp = malloc(sizeof(*tcp));
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        f->peer = sv[1];
        assert_int_equal(uv_tcp_init(&f->loop, tcp), 0);
        assert_int_equal(uv_tcp_open(tcp, sv[0]), 0);
        c = dr__rt_conn_create(&f->hub, &dr__rt_sse, tcp);
        c->tpdata = calloc(1, 512);
        assert_int_equal(
            dr__rt_conn_authenticated(c, claims_for(f, "user-2", "x@example.com"), 0, NULL, 0),
            DR_OK);
    }
    dr__rt_conn_ref(c);
    while (c->state == RT_CONN_OPEN && (c->catchup_running || c->cu_job || c->catchup_head)) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(c->state, RT_CONN_OPEN);
    while (got < sizeof(buf) - 1 &&
           (r = recv(f->peer, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT)) > 0) {
        got += (size_t)r;
    }
    buf[got] = '\0';
    for (const char *p = buf; (p = strstr(p, "\"type\":\"event\"")) != NULL; p++) {
        events++;
    }
    assert_int_equal(events, 5);
    dr__rt_conn_unref(c);
}

/* Reads what the connection wrote so far and counts its event frames. */
static int count_events(struct fx *f, char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t r;
    int events = 0;

    while (got < cap - 1 && (r = recv(f->peer, buf + got, cap - 1 - got, MSG_DONTWAIT)) > 0) {
        got += (size_t)r;
    }
    buf[got] = '\0';
    for (const char *p = buf; (p = strstr(p, "\"type\":\"event\"")) != NULL; p++) {
        events++;
    }
    return events;
}

/*
 * A room left and joined again, from an earlier point, while the first join's catch-up is still
 * being read: that catch-up belongs to the subscription that is gone and must neither send its
 * rows to the new one nor mark it live, or the new one would skip what lies between the two
 * points. The four messages arrive before the loop runs again, so the first catch-up is
 * certainly still on the thread pool.
 */
static void rejoin_from_earlier_while_catching_up(void **state)
{
    struct fx *f = *state;
    struct rt_conn *c;
    static char buf[65536];
    int64_t seq[6];

    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof(id), "r%d", i);
        seq[i] = store_one(f, id, "user:user-3");
    }
    c = open_conn(f, "user-3", "y@example.com");
    dr__rt_conn_ref(c);
    {
        char m[160];
        on_message(c, "{\"type\":\"unsubscribe\",\"room\":\"user:user-3\"}");
        snprintf(m, sizeof(m), "{\"type\":\"subscribe\",\"room\":\"user:user-3\",\"since\":%lld}",
                 (long long)seq[3]);
        on_message(c, m);
        assert_true(c->catchup_running);
        on_message(c, "{\"type\":\"unsubscribe\",\"room\":\"user:user-3\"}");
        on_message(c, "{\"type\":\"subscribe\",\"room\":\"user:user-3\",\"since\":0}");
    }
    while (c->state == RT_CONN_OPEN && (c->catchup_running || c->cu_job || c->catchup_head)) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(c->state, RT_CONN_OPEN);
    /* all six, once each and in order, from the second subscription */
    assert_int_equal(count_events(f, buf, sizeof(buf)), 6);
    {
        const char *p = buf;
        for (int i = 0; i < 6; i++) {
            char want[48];
            snprintf(want, sizeof(want), "\"seq\":%lld", (long long)seq[i]);
            p = strstr(p, want);
            assert_non_null(p);
        }
    }
    assert_int_equal(c->nsubs, 1);
    assert_int_equal(c->subs[0].state, RT_SUB_LIVE);
    assert_int_equal(c->subs[0].last_seq, seq[5]);
    dr__rt_conn_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(refresh_during_permission_check, setup, teardown),
        cmocka_unit_test_setup_teardown(resume_goes_past_an_unreadable_row, setup, teardown),
        cmocka_unit_test_setup_teardown(rejoin_from_earlier_while_catching_up, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
