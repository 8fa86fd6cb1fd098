/* A connection on a real hub and SQLite store, driven through its client messages: a room
 * permission check that needs the store runs on the thread pool while the client's next
 * message (an auth with a fresh token) replaces the connection's claims on the loop. */
#include "dr/db.h"
#include "unit/realtime/rt_fixture.h"

static struct dr_jwt_claims *claims_for(struct fx *f, const char *sub, const char *email)
{
    cJSON *c = cJSON_CreateObject();

    cJSON_AddStringToObject(c, "sub", sub);
    cJSON_AddStringToObject(c, "email", email);
    return fx_claims(f, c, 3600);
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
    struct rt_conn *c = fx_conn(f, &dr__rt_sse);

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
    assert_non_null(c->joins);
    usleep(20000); /* the check is under way, scanning polls */
    on_message(c, auth);
    assert_int_equal(c->state, RT_CONN_OPEN);
    while (c->joins) {
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

/* Reads what the connection wrote so far and counts its event frames. */
static int count_events(struct fx *f, char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t r;
    int events = 0;

    while (got < cap - 1 && (r = recv(f->peers[0], buf + got, cap - 1 - got, MSG_DONTWAIT)) > 0) {
        got += (size_t)r;
    }
    buf[got] = '\0';
    for (const char *p = buf; (p = strstr(p, "\"type\":\"event\"")) != NULL; p++) {
        events++;
    }
    return events;
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
    char sql[128];
    static char buf[65536];

    f->conf.catchup_page = 2;
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof(id), "n%d", i);
        seq[i] = store_one(f, id, "user:user-2");
    }
    snprintf(sql, sizeof(sql), "UPDATE rt_notifications SET body_json = 'x' WHERE seq = %lld",
             (long long)seq[1]);
    exec(f, sql);
    c = fx_conn(f, &dr__rt_sse);
    assert_int_equal(
        dr__rt_conn_authenticated(c, claims_for(f, "user-2", "x@example.com"), 0, NULL, 0), DR_OK);
    dr__rt_conn_ref(c);
    while (c->state == RT_CONN_OPEN && (c->catchup_running || c->cu_job || c->catchup_head)) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(c->state, RT_CONN_OPEN);
    assert_int_equal(count_events(f, buf, sizeof(buf)), 5);
    dr__rt_conn_unref(c);
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

/*
 * A read told to a user's connections: the first one told (the newest) has a full queue and is
 * closed by the telling (4008). The user's older connection is still told.
 */
static void read_reaches_others_when_one_is_closed(void **state)
{
    struct fx *f = *state;
    struct rt_conn *older = open_conn(f, "user-9", "z@example.com");
    struct rt_conn *full = open_conn(f, "user-9", "z@example.com");
    static char buf[65536];
    static char big[65536];

    dr__rt_conn_ref(older);
    dr__rt_conn_ref(full);
    fx_read_until(f, f->peers[0], buf, sizeof(buf), "welcome");
    memset(big, ':', sizeof(big)); /* SSE comment lines */
    big[sizeof(big) - 1] = '\n';
    /* the client of full reads nothing: its socket fills, then libuv queues */
    while (uv_stream_get_write_queue_size((uv_stream_t *)full->tcp) == 0) {
        assert_int_equal(dr__rt_conn_write_raw(full, big, sizeof(big)), DR_OK);
    }
    f->conf.max_queue_bytes = uv_stream_get_write_queue_size((uv_stream_t *)full->tcp) + 1;
    dr__hub_tell_user(&f->hub, "user-9", "{\"type\":\"read\",\"id\":\"n1\",\"seq\":1}", NULL);
    assert_int_not_equal(full->state, RT_CONN_OPEN);
    f->conf.max_queue_bytes = RT_FX_MAX_QUEUE_BYTES;
    fx_read_until(f, f->peers[0], buf, sizeof(buf), "\"type\":\"read\"");
    assert_int_equal(older->state, RT_CONN_OPEN);
    dr__rt_conn_unref(full);
    dr__rt_conn_unref(older);
}

/* A notification numbered seq for room, as the store numbers it; the caller unrefs it. */
static struct dr_notification *numbered(const char *id, const char *room, int64_t seq)
{
    char json[256], why[128];
    struct dr_notification *n = NULL;

    snprintf(json, sizeof(json),
             "{\"notification_id\":\"%s\",\"room\":\"%s\",\"notification_type\":\"system.t\"}", id,
             room);
    assert_int_equal(dr_notification_parse(json, strlen(json), id, &n, why, sizeof(why)), DR_OK);
    dr__notification_set_seq(n, seq);
    return n;
}

/* A notification numbered seq for room, handed to the hub as the store thread hands it. */
static void publish_seq(struct fx *f, const char *id, const char *room, int64_t seq)
{
    struct dr_notification *n = numbered(id, room, seq);

    dr_hub_publish(&f->hub, n);
    dr_notification_unref(n);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the hub's hand-off runs on the loop */
}

/*
 * The store was reset under a running instance (an empty database numbers from 1 again): the
 * first notification it stores has a seq the connection already went past, and would be dropped
 * as seen. The connection is told to resync from just below it instead.
 */
static void local_seq_going_back_resyncs(void **state)
{
    struct fx *f = *state;
    struct rt_conn *c = open_conn(f, "user-9", "z@example.com");
    static char buf[65536];
    size_t got = 0;
    ssize_t r;

    dr__rt_conn_ref(c);
    while (c->state == RT_CONN_OPEN && (c->catchup_running || c->cu_job || c->catchup_head)) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    publish_seq(f, "a", "user:user-9", 10);
    publish_seq(f, "b", "user:user-9", 11);
    assert_int_equal(c->subs[0].last_seq, 11);
    publish_seq(f, "c", "user:user-9", 3); /* the reset store's first */
    while ((r = recv(f->peers[0], buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT)) > 0) {
        got += (size_t)r;
    }
    buf[got] = '\0';
    assert_non_null(strstr(buf, "\"seq\":11"));
    assert_non_null(strstr(buf, "\"type\":\"resync\""));
    assert_non_null(strstr(buf, "\"since\":2"));
    /* seqs going up again are delivered as before, without another resync */
    publish_seq(f, "d", "user:user-9", 12);
    got = 0;
    while ((r = recv(f->peers[0], buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT)) > 0) {
        got += (size_t)r;
    }
    buf[got] = '\0';
    assert_non_null(strstr(buf, "\"seq\":12"));
    assert_null(strstr(buf, "resync"));
    dr__rt_conn_unref(c);
}

/* The longest sub a token may have (user:{sub} is still a room name) is indexed whole: the
 * connection's copy of it is as long as that and no longer. */
static void longest_sub_is_indexed(void **state)
{
    struct fx *f = *state;
    char sub[RT_SUB_MAX + 1];
    struct rt_conn *c;

    memset(sub, 's', RT_SUB_MAX);
    sub[RT_SUB_MAX] = '\0';
    c = open_conn(f, sub, "s@example.com");
    assert_string_equal(c->user_key, sub);
    assert_int_equal(dr__hub_user_count(&f->hub, sub), 1);
}

/* A notification numbered seq for room, delivered on the loop as the Redis bus delivers one
 * that came late (after a higher one). */
static void deliver_seq(struct fx *f, const char *id, const char *room, int64_t seq)
{
    struct dr_notification *n = numbered(id, room, seq);

    dr_hub_publish_local(&f->hub, n);
    dr_notification_unref(n);
}

/*
 * A live event held back while a room resumes, then the room left and joined again live (no
 * since) before the catch-up ends: the event is let go, not kept for the new subscription,
 * which never takes it (kept, it counted against max_buffered for the connection's life).
 */
static void held_event_let_go_when_joined_again_live(void **state)
{
    struct fx *f = *state;
    struct rt_conn *c;
    int64_t seq = 0;

    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof(id), "h%d", i);
        seq = store_one(f, id, "user:user-5");
    }
    c = open_conn(f, "user-5", "h@example.com");
    dr__rt_conn_ref(c);
    on_message(c, "{\"type\":\"unsubscribe\",\"room\":\"user:user-5\"}");
    on_message(c, "{\"type\":\"subscribe\",\"room\":\"user:user-5\",\"since\":0}");
    assert_true(c->catchup_running);
    deliver_seq(f, "h-live", "user:user-5", seq + 1);
    assert_int_equal(c->nbuffered, 1);
    on_message(c, "{\"type\":\"unsubscribe\",\"room\":\"user:user-5\"}");
    on_message(c, "{\"type\":\"subscribe\",\"room\":\"user:user-5\"}");
    while (c->state == RT_CONN_OPEN && (c->catchup_running || c->cu_job || c->catchup_head)) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(c->state, RT_CONN_OPEN);
    assert_int_equal(c->nbuffered, 0);
    dr__rt_conn_unref(c);
}

/*
 * A live event in one room while another room of the connection still reads its history: the
 * event names a resume point no higher than that history has got to (a client that resumed
 * from the event's seq would skip the rest of it). Once the history is out, a resume frame
 * moves the point to the newest seq sent.
 */
static void live_event_waits_for_history_in_resume_point(void **state)
{
    struct fx *f = *state;
    char *extra[] = {"meeting:m6"};
    struct rt_conn *c = fx_conn(f, &dr__rt_sse);
    static char buf[65536];
    char want[64];
    const char *live, *history;
    int64_t seq = 0;

    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof(id), "w%d", i);
        seq = store_one(f, id, "user:user-6");
    }
    assert_int_equal(
        dr__rt_conn_authenticated(c, claims_for(f, "user-6", "w@example.com"), -1, extra, 1),
        DR_OK);
    dr__rt_conn_ref(c);
    fx_read_until(f, f->peers[0], buf, sizeof(buf), "welcome");
    on_message(c, "{\"type\":\"unsubscribe\",\"room\":\"user:user-6\"}");
    on_message(c, "{\"type\":\"subscribe\",\"room\":\"user:user-6\",\"since\":0}");
    assert_true(c->catchup_running);
    deliver_seq(f, "w-live", "meeting:m6", seq + 1); /* sent at once, before the history */
    snprintf(want, sizeof(want), "{\"type\":\"resume\",\"seq\":%lld}", (long long)(seq + 1));
    /* in one read: the live event, the history and the resume frame may come in one piece */
    fx_read_until(f, f->peers[0], buf, sizeof(buf), want);
    live = strstr(buf, "id: 0\ndata: {\"type\":\"event\",\"room\":\"meeting:m6\"");
    assert_non_null(live);
    assert_non_null(strstr(live, "\"resume\":0"));
    history = strstr(live, "\"id\":\"w3\"");
    assert_non_null(history);
    assert_true(history < strstr(buf, want)); /* the history came before it */
    dr__rt_conn_unref(c);
}

/*
 * Live events held back while a room resumes are sent in seq order once the catch-up is done,
 * even when they came out of order (the Redis bus delivers a seq it had given up on late): the
 * higher one first would make the connection drop the lower one as already sent.
 */
static void held_back_events_go_out_in_seq_order(void **state)
{
    struct fx *f = *state;
    struct rt_conn *c = fx_conn(f, &dr__rt_sse);
    static char buf[65536];
    int64_t s0 = store_one(f, "h0", "user:user-5");
    int64_t s1 = store_one(f, "h1", "user:user-5");
    char want[4][32];
    const char *p = buf;

    assert_int_equal(
        dr__rt_conn_authenticated(c, claims_for(f, "user-5", "h@example.com"), 0, NULL, 0), DR_OK);
    dr__rt_conn_ref(c);
    assert_int_equal(c->subs[0].state, RT_SUB_CATCHUP); /* its query is on the thread pool */
    deliver_seq(f, "h3", "user:user-5", s1 + 2);
    deliver_seq(f, "h2", "user:user-5", s1 + 1); /* late */
    while (c->state == RT_CONN_OPEN && (c->catchup_running || c->cu_job || c->catchup_head)) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(c->state, RT_CONN_OPEN);
    assert_int_equal(count_events(f, buf, sizeof(buf)), 4);
    snprintf(want[0], sizeof(want[0]), "\"seq\":%lld", (long long)s0);
    snprintf(want[1], sizeof(want[1]), "\"seq\":%lld", (long long)s1);
    snprintf(want[2], sizeof(want[2]), "\"seq\":%lld", (long long)s1 + 1);
    snprintf(want[3], sizeof(want[3]), "\"seq\":%lld", (long long)s1 + 2);
    for (int i = 0; i < 4; i++) {
        p = strstr(p, want[i]);
        assert_non_null(p);
    }
    dr__rt_conn_unref(c);
}

/* Replaces every from in s (in place; to is no longer than from). */
static void replace_all(char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);

    for (char *p = strstr(s, from); p; p = strstr(p + tl, from)) {
        memmove(p + tl, p + fl, strlen(p + fl) + 1);
        memcpy(p, to, tl);
    }
}

/* A bus message that is not in the bus form is read through a cJSON tree: its seq still to the
 * unit (a double holds 2^53 + 1 as 2^53). */
static void bus_seq_read_exactly(void **state)
{
    const char *t = "{ \"notification_id\" : \"bus-cc\", \"room\":\"user:user-7\", "
                    "\"notification_type\":\"system.t\", \"seq\" : 9007199254740993 }";
    struct dr_notification *n = dr__hub_read_bus(t, strlen(t));

    (void)state;
    assert_non_null(n);
    assert_int_equal(dr_notification_seq(n), 9007199254740993);
    dr_notification_unref(n);
}

/*
 * What the Redis bus brings is read the same however its JSON is written: the canonical bus
 * form (dr_notification_json) without a cJSON tree, any other through one, which writes it
 * canonical again. Both reach the client as the same frame, their ids and seqs aside.
 */
static void bus_forms_are_read_alike(void **state)
{
    struct fx *f = *state;
    struct rt_conn *c = open_conn(f, "user-7", "b@example.com");
    int fd = f->peers[f->npeers - 1];
    static char buf[65536];
    struct dr_notification *n = numbered("bus-aa", "user:user-7", 41);
    const char *ts = strstr(n->body, "\"timestamp\":\"");
    char other[1024], *first, *second;
    size_t len;
    const char *bus = dr_notification_json(n, &len);

    assert_non_null(ts);
    /* the same notification with spaces and an escape, id bus-bb, seq 42 */
    snprintf(other, sizeof(other),
             "{ \"notification_id\" : \"bus-bb\", \"room\":\"user:user-7\", "
             "\"notification_type\":\"system\\u002et\", \"title\":\"\", \"message\":\"\", "
             "\"data\":{ }, %.38s , \"seq\" : 42 }",
             ts);
    assert_int_equal(dr_hub_receive(&f->hub, bus, len), DR_OK);
    assert_int_equal(dr_hub_receive(&f->hub, other, strlen(other)), DR_OK);
    /* not a notification: refused, nothing sent */
    assert_int_equal(dr_hub_receive(&f->hub, "{\"seq\":43}", 10), DR_EINVAL);
    assert_int_equal(dr_hub_receive(&f->hub, "{\"room\":\"user:user-7\",\"seq\":0}", 30),
                     DR_EINVAL);
    fx_read_until(f, fd, buf, sizeof(buf), "\"seq\":42}");
    first = strstr(buf, "\nid: 41\n");
    second = strstr(buf, "\nid: 42\n");
    assert_non_null(first);
    assert_non_null(second);
    assert_null(strstr(buf, "\"seq\":43"));
    second[0] = '\0';
    first++;
    second++;
    /* each event: its id: and data: lines */
    *strchr(strstr(first, "\ndata: ") + 1, '\n') = '\0';
    *strchr(strstr(second, "\ndata: ") + 1, '\n') = '\0';
    replace_all(first, "bus-aa", "ID");
    replace_all(first, "id: 41", "id: S");
    replace_all(first, "\"seq\":41", "\"seq\":S");
    replace_all(second, "bus-bb", "ID");
    replace_all(second, "id: 42", "id: S");
    replace_all(second, "\"seq\":42", "\"seq\":S");
    assert_string_equal(first, second);
    dr_notification_unref(n);
    (void)c;
}

/*
 * Reads the client's end fd on at the end of the string in buf (cap bytes), running the hub's
 * loop meanwhile, until want occurs n times in buf: the answers to n client messages. Fails the
 * test as fx_read_until() does.
 */
static void read_answers(struct fx *f, int fd, char *buf, size_t cap, const char *want, int n)
{
    int64_t deadline = dr_mono_ms() + RT_FX_READ_TIMEOUT_MS;
    size_t got = strlen(buf);

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int seen = 0;
        ssize_t r;

        for (const char *q = buf; (q = strstr(q, want)) != NULL; q++) {
            seen++;
        }
        if (seen >= n) {
            return;
        }
        if (got + 1 >= cap || dr_mono_ms() > deadline) {
            fail_msg("%d of %d '%s' from the connection within %d ms; it wrote: %.600s", seen, n,
                     want, RT_FX_READ_TIMEOUT_MS, buf);
        }
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (poll(&p, 1, 10) <= 0) {
            continue;
        }
        r = recv(fd, buf + got, cap - 1 - got, 0);
        if (r <= 0) {
            fail_msg("the connection ended with %d of %d '%s'; it wrote: %.600s", seen, n, want,
                     buf);
        }
        got += (size_t)r;
        buf[got] = '\0';
    }
}

/* Fails the test, showing what the connection wrote, unless buf holds want (has 1) or not (0). */
static void expect_text(const char *buf, const char *want, int has)
{
    if ((strstr(buf, want) != NULL) != has) {
        fail_msg("expected %s'%s'; the connection wrote: %.600s", has ? "" : "no ", want, buf);
    }
}

/*
 * Two subscribes to one meeting room and then a second meeting room, all before the store has
 * answered for any: the first room counts once against max_rooms (3: the user's room and two
 * more), so the second still fits; a third does not.
 */
static void pending_room_counts_once(void **state)
{
    struct fx *f = *state;
    struct rt_conn *c;
    int fd;
    static char buf[65536] = "";

    exec(f, "CREATE TABLE polls (poll_id TEXT, organizer_user_id TEXT)");
    exec(f, "INSERT INTO polls VALUES ('p1', 'user-4'), ('p2', 'user-4'), ('p3', 'user-4')");
    f->conf.max_rooms = 3;
    c = open_conn(f, "user-4", "o@example.com");
    fd = f->peers[f->npeers - 1];
    dr__rt_conn_ref(c);
    on_message(c, "{\"type\":\"subscribe\",\"room\":\"meeting:p1\"}");
    on_message(c, "{\"type\":\"subscribe\",\"room\":\"meeting:p1\"}");
    on_message(c, "{\"type\":\"subscribe\",\"room\":\"meeting:p2\"}");
    on_message(c, "{\"type\":\"subscribe\",\"room\":\"meeting:p3\"}");
    read_answers(f, fd, buf, sizeof(buf), "\"room\":\"meeting:", 4);
    assert_int_equal(c->state, RT_CONN_OPEN);
    expect_text(buf,
                "\"code\":\"too_many_rooms\",\"message\":\"room limit per connection reached\","
                "\"room\":\"meeting:p2\"",
                0);
    expect_text(buf, "{\"type\":\"subscribed\",\"room\":\"meeting:p2\"", 1);
    expect_text(buf, "{\"type\":\"subscribed\",\"room\":\"meeting:p1\"", 1);
    expect_text(buf,
                "\"code\":\"too_many_rooms\",\"message\":\"room limit per connection reached\","
                "\"room\":\"meeting:p3\"",
                1);
    assert_int_equal(c->nsubs, 3);
    dr__rt_conn_unref(c);
}

/*
 * The token is refreshed while the store checks a subscribe (both messages come before the
 * loop runs again, so the check's answer comes after the refresh): the old token's email is
 * old@example.com, the fresh one's new@example.com, and participant is the poll's participant.
 * Returns the connection (referenced) once its answer about meeting:p1 is in buf.
 */
static struct rt_conn *subscribe_across_refresh(struct fx *f, const char *participant, char *buf,
                                                size_t bufsz, int *fd)
{
    char *auth = auth_message("user-5", "new@example.com");
    char sql[256];
    struct rt_conn *c;

    exec(f, "CREATE TABLE poll_participants (poll_id TEXT, email TEXT)");
    snprintf(sql, sizeof(sql), "INSERT INTO poll_participants VALUES ('p1', '%s')", participant);
    exec(f, sql);
    c = open_conn(f, "user-5", "old@example.com");
    *fd = f->peers[f->npeers - 1];
    dr__rt_conn_ref(c);
    on_message(c, "{\"type\":\"subscribe\",\"room\":\"meeting:p1\"}");
    on_message(c, auth);
    free(auth);
    assert_int_equal(c->state, RT_CONN_OPEN); /* the refresh itself loses no joined room */
    read_answers(f, *fd, buf, bufsz, "\"room\":\"meeting:p1\"", 1);
    return c;
}

/* Only the old email was a participant: the join is refused (the error names the room), as the
 * fresh token would have been refused, and the connection closes with 4003. */
static void join_after_refresh_uses_fresh_email_refused(void **state)
{
    struct fx *f = *state;
    static char buf[65536] = "";
    int fd;
    struct rt_conn *c = subscribe_across_refresh(f, "old@example.com", buf, sizeof(buf), &fd);

    expect_text(buf, "\"type\":\"subscribed\"", 0);
    expect_text(buf,
                "{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"not allowed to join this "
                "room\",\"room\":\"meeting:p1\"}",
                1);
    assert_int_not_equal(c->state, RT_CONN_OPEN);
    read_answers(f, fd, buf, sizeof(buf), "\"code\":4003", 1); /* SSE's close record */
    dr__rt_conn_unref(c);
}

/* The other way: the fresh token's email is the participant, the old one's was not. */
static void join_after_refresh_uses_fresh_email_allowed(void **state)
{
    struct fx *f = *state;
    static char buf[65536] = "";
    int fd;
    struct rt_conn *c = subscribe_across_refresh(f, "new@example.com", buf, sizeof(buf), &fd);

    expect_text(buf, "{\"type\":\"subscribed\",\"room\":\"meeting:p1\",\"seq\":0}", 1);
    expect_text(buf, "forbidden", 0);
    assert_int_equal(c->state, RT_CONN_OPEN);
    assert_int_equal(c->nsubs, 2);
    dr__rt_conn_unref(c);
}

/*
 * Seqs above 2^53, where a double stops holding every integer (and a double is what cJSON keeps
 * for a number), reach the client with every digit: welcome's since, a reset resync's, an
 * event's (and its data's), subscribed's, a resync's and a resume frame's. A client compares
 * them to the unit: one rounded up would skip a notification, one written with an exponent is
 * not a seq at all.
 */
static void seqs_above_2_53_written_exactly(void **state)
{
    struct fx *f = *state;
    const int64_t big = 9007199254740993; /* 2^53 + 1 */
    struct rt_conn *c;
    int fd;
    static char buf[65536] = "";

    store_one(f, "s0", "user:user-8");
    exec(f, "UPDATE sqlite_sequence SET seq = 9007199254740992 WHERE name = 'rt_notifications'");
    assert_int_equal(store_one(f, "s1", "user:user-8"), big); /* the store's newest */
    c = fx_conn(f, &dr__rt_sse);
    fd = f->peers[f->npeers - 1];
    /* resumed from above every stored seq: from the newest instead, with a reset resync */
    assert_int_equal(
        dr__rt_conn_authenticated(c, claims_for(f, "user-8", "s@example.com"), big + 4, NULL, 0),
        DR_OK);
    dr__rt_conn_ref(c);
    while (c->state == RT_CONN_OPEN && (c->catchup_running || c->cu_job || c->catchup_head)) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    deliver_seq(f, "s5", "user:user-8", big + 4);
    on_message(c, "{\"type\":\"subscribe\",\"room\":\"user:user-8\"}");
    /* big + 3 came after big + 4 (see local_seq_going_back_resyncs) */
    assert_int_equal(dr__hub_resync_past(&f->hub, "user:user-8", big + 3, big + 2), 1);
    c->told = big; /* as if the event had named a lower resume point */
    dr__rt_conn_mark(c, INT64_MAX);
    read_answers(f, fd, buf, sizeof(buf), "{\"type\":\"resume\"", 1);
    expect_text(buf, "\"rooms\":[\"user:user-8\"],\"since\":9007199254740997,", 1);
    expect_text(buf, "{\"type\":\"resync\",\"since\":9007199254740993,\"reset\":true}", 1);
    expect_text(buf, "{\"type\":\"event\",\"room\":\"user:user-8\",\"seq\":9007199254740997,", 1);
    expect_text(buf, ",\"seq\":9007199254740997}}", 1);
    expect_text(buf, "{\"type\":\"subscribed\",\"room\":\"user:user-8\",\"seq\":9007199254740997}",
                1);
    expect_text(buf, "{\"type\":\"resync\",\"since\":9007199254740995}", 1);
    expect_text(buf, "{\"type\":\"resume\",\"seq\":9007199254740997}", 1);
    dr__rt_conn_unref(c);
}

/*
 * A client's since is read to the unit, also above 2^53, where a double (what cJSON keeps for a
 * number) rounds it: a subscribe from 2^53 + 1 gets what came after it, not 2^53 + 1 again (read
 * as a double it was 2^53). A since not written as an integer (1.0, 1e3) is refused with
 * invalid_since, as one in an auth message is (and the connection closed, 4001).
 */
static void since_read_exactly(void **state)
{
    struct fx *f = *state;
    const int64_t big = 9007199254740993; /* 2^53 + 1 */
    cJSON *cl = cJSON_CreateObject();
    struct rt_conn *c, *c2;
    int fd, fd2;
    char *auth, msg[4096];
    static char buf[65536] = "", buf2[16384] = "";

    store_one(f, "x0", "meeting:p9");
    exec(f, "UPDATE sqlite_sequence SET seq = 9007199254740991 WHERE name = 'rt_notifications'");
    assert_int_equal(store_one(f, "x1", "meeting:p9"), big - 1);
    assert_int_equal(store_one(f, "x2", "meeting:p9"), big);
    assert_int_equal(store_one(f, "x3", "meeting:p9"), big + 1);
    cJSON_AddStringToObject(cl, "sub", "user-9");
    cJSON_AddStringToObject(cl, "email", "x@example.com");
    cJSON_AddTrueToObject(cl, "admin"); /* joins any room */
    c = fx_conn(f, &dr__rt_sse);
    fd = f->peers[f->npeers - 1];
    assert_int_equal(dr__rt_conn_authenticated(c, fx_claims(f, cl, 3600), -1, NULL, 0), DR_OK);
    dr__rt_conn_ref(c);

    on_message(c, "{\"type\":\"subscribe\",\"room\":\"meeting:p9\",\"since\":9007199254740993}");
    read_answers(f, fd, buf, sizeof(buf), "{\"type\":\"subscribed\",\"room\":\"meeting:p9\"", 1);
    expect_text(buf, "\"seq\":9007199254740994,", 1);
    expect_text(buf, "\"seq\":9007199254740993,", 0);

    on_message(c, "{\"type\":\"subscribe\",\"room\":\"meeting:p8\",\"since\":1.0}");
    on_message(c, "{\"type\":\"subscribe\",\"room\":\"meeting:p8\",\"since\":1e3}");
    read_answers(f, fd, buf, sizeof(buf), "\"invalid_since\"", 2);
    expect_text(buf, "{\"type\":\"subscribed\",\"room\":\"meeting:p8\"", 0);

    /* an ack's seq too: 2^53 + 3 is read as 2^53 + 4 through a double, another notification */
    assert_int_equal(store_one(f, "x4", "user:user-9"), big + 2);
    assert_int_equal(store_one(f, "x5", "user:user-9"), big + 3);
    cJSON *cl3 = cJSON_CreateObject();
    cJSON_AddStringToObject(cl3, "sub", "user-9");
    cJSON_AddStringToObject(cl3, "email", "x@example.com");
    struct rt_conn *c3 = fx_conn(f, &dr__rt_sse);
    int fd3 = f->peers[f->npeers - 1];
    static char buf3[16384] = "";
    assert_int_equal(dr__rt_conn_authenticated(c3, fx_claims(f, cl3, 3600), -1, NULL, 0), DR_OK);
    on_message(c, "{\"type\":\"ack\",\"seq\":9007199254740995}");
    read_answers(f, fd3, buf3, sizeof(buf3), "{\"type\":\"read\"", 1);
    expect_text(buf3, "{\"type\":\"read\",\"id\":\"x4\",\"seq\":9007199254740995}", 1);
    on_message(c, "{\"type\":\"ack\",\"seq\":5e0}");
    read_answers(f, fd, buf, sizeof(buf), "\"invalid_ack\"", 1);
    dr__rt_conn_unref(c);

    /* an auth message's since is read the same way */
    c2 = fx_conn(f, &dr__rt_sse);
    fd2 = f->peers[f->npeers - 1];
    dr__rt_conn_ref(c2);
    auth = auth_message("user-9", "x@example.com");
    snprintf(msg, sizeof(msg), "%.*s,\"since\":2.0}", (int)strlen(auth) - 1, auth);
    on_message(c2, msg);
    read_answers(f, fd2, buf2, sizeof(buf2), "\"invalid_since\"", 1);
    free(auth);
    dr__rt_conn_unref(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(refresh_during_permission_check, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(resume_goes_past_an_unreadable_row, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(rejoin_from_earlier_while_catching_up, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(local_seq_going_back_resyncs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(longest_sub_is_indexed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(bus_forms_are_read_alike, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(held_event_let_go_when_joined_again_live, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(live_event_waits_for_history_in_resume_point, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(read_reaches_others_when_one_is_closed, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(held_back_events_go_out_in_seq_order, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(pending_room_counts_once, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(join_after_refresh_uses_fresh_email_refused, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(join_after_refresh_uses_fresh_email_allowed, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(seqs_above_2_53_written_exactly, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(since_read_exactly, fx_setup, fx_teardown),
        cmocka_unit_test(bus_seq_read_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
