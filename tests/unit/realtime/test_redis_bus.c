/*
 * The Redis bus on a real hub and Redis (DR_TEST_REDIS_URL; skipped without it): the test plays
 * another instance by PUBLISHing notifications on the bus's channel itself, and reads what the
 * hub's connections get. Each test uses a channel of its own: the Redis may be shared.
 */
#include <hiredis/hiredis.h>

#include "dr/config.h"
#include "dr/metrics.h"
#include "realtime/redis_bus.h"
#include "unit/realtime/rt_fixture.h"

#define BUS_UP_TIMEOUT_MS 5000

struct bt {
    struct fx *f;
    struct dr_config cfg;
    struct dr_redis_bus *bus;
    redisContext *rc; /* the other instance */
    char channel[64];
};

/* Sets up with reorder_window reorder and, unless NULL, audit_interval audit. */
static int bt_setup_with(void **state, const char *reorder, const char *audit)
{
    const char *url = getenv("DR_TEST_REDIS_URL");
    struct bt *t = calloc(1, sizeof(*t));
    const char *hp;
    char host[64], err[256], id[33];
    cJSON *redis;
    int port = 0;
    int64_t deadline;

    *state = t;
    if (!url || !*url) {
        return 0; /* each test skips */
    }
    if (fx_setup((void **)&t->f) != 0) {
        return -1;
    }
    hp = strstr(url, "://");
    if (!hp || sscanf(hp + 3, "%63[^:]:%d", host, &port) != 2) {
        return -1;
    }
    t->rc = redisConnect(host, port);
    if (!t->rc || t->rc->err) {
        return -1;
    }
    dr_random_id(id);
    snprintf(t->channel, sizeof(t->channel), "dr:test:%s", id);
    t->cfg.redis_url = (char *)url;
    t->cfg.root = cJSON_CreateObject();
    redis = cJSON_AddObjectToObject(t->cfg.root, "redis");
    cJSON_AddStringToObject(redis, "channel", t->channel);
    cJSON_AddStringToObject(redis, "reorder_window", reorder);
    if (audit) {
        cJSON_AddStringToObject(redis, "audit_interval", audit);
    }
    if (dr__redis_bus_create(&t->f->loop, &t->cfg, &t->f->hub, dr_store_db(t->f->store), &t->bus,
                             err, sizeof(err)) != DR_OK) {
        fprintf(stderr, "bus: %s\n", err);
        return -1;
    }
    dr__redis_bus_start(t->bus);
    deadline = dr_mono_ms() + BUS_UP_TIMEOUT_MS;
    while (!dr__redis_bus_up(t->bus) && dr_mono_ms() < deadline) {
        uv_run(&t->f->loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    return dr__redis_bus_up(t->bus) ? 0 : -1;
}

/* A seq waited for is never given up on: what the tests see does not hang on timing. */
static int bt_setup(void **state)
{
    return bt_setup_with(state, "60s", NULL);
}

/* A missing seq is given up on at once, and no audit looks it up while a test runs. */
static int bt_setup_gaps(void **state)
{
    return bt_setup_with(state, "20ms", "10m");
}

/* A missing seq is given up on at once and looked up by the next audit. */
static int bt_setup_audit(void **state)
{
    return bt_setup_with(state, "20ms", "50ms");
}

static int bt_teardown(void **state)
{
    struct bt *t = *state;

    dr__redis_bus_stop(t->bus);
    if (t->f) {
        fx_teardown((void **)&t->f); /* runs the loop: the bus's handles close */
    }
    dr__redis_bus_destroy(t->bus);
    if (t->rc) {
        redisFree(t->rc);
    }
    cJSON_Delete(t->cfg.root);
    free(t);
    return 0;
}

static struct bt *bt_get(void **state)
{
    struct bt *t = *state;

    if (!t->bus) {
        skip();
    }
    return t;
}

/* A live connection of user u1 (room user:u1); what it gets is read on the returned fd. */
static int open_conn(struct bt *t)
{
    cJSON *c = cJSON_CreateObject();
    struct rt_conn *conn = fx_conn(t->f, &dr__rt_sse);

    cJSON_AddStringToObject(c, "sub", "u1");
    assert_int_equal(dr__rt_conn_authenticated(conn, fx_claims(t->f, c, 3600), -1, NULL, 0), DR_OK);
    assert_int_equal(conn->state, RT_CONN_OPEN);
    return t->f->peers[t->f->npeers - 1];
}

/* A stored notification of room user:u1 with seq; the caller unrefs it. */
static struct dr_notification *note(const char *id, int64_t seq)
{
    char json[256];
    struct dr_notification *n = NULL;

    snprintf(json, sizeof(json),
             "{\"notification_id\":\"%s\",\"room\":\"user:u1\",\"notification_type\":\"t.t\"}", id);
    assert_int_equal(dr_notification_parse(json, strlen(json), id, &n, NULL, 0), DR_OK);
    dr__notification_set_seq(n, seq);
    return n;
}

/* What another instance that stored it would publish. */
static void publish_remote(struct bt *t, const char *id, int64_t seq)
{
    struct dr_notification *n = note(id, seq);
    size_t len;
    const char *json = dr_notification_json(n, &len);
    redisReply *r = redisCommand(t->rc, "PUBLISH %s %b", t->channel, json, len);

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    dr_notification_unref(n);
}

/* What this instance stored itself. */
static void publish_local(struct bt *t, const char *id, int64_t seq)
{
    struct dr_notification *n = note(id, seq);

    dr_hub_publish(&t->f->hub, n);
    dr_notification_unref(n);
}

/* A raw message on the bus's channel, as anyone with access to the Redis may send. */
static void publish_raw(struct bt *t, const char *msg)
{
    redisReply *r = redisCommand(t->rc, "PUBLISH %s %b", t->channel, msg, strlen(msg));

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
}

/* Runs the loop until metric name{labels} is at least min. */
static void wait_metric(struct bt *t, const char *name, const char *labels, double min)
{
    int64_t deadline = dr_mono_ms() + RT_FX_READ_TIMEOUT_MS;

    while (dr_metrics_value(name, labels) < min) {
        if (dr_mono_ms() > deadline) {
            fail_msg("%s{%s} still %g, not %g, after %d ms", name, labels,
                     dr_metrics_value(name, labels), min, RT_FX_READ_TIMEOUT_MS);
        }
        uv_run(&t->f->loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
}

static void run_for(struct bt *t, int64_t ms)
{
    int64_t end = dr_mono_ms() + ms;

    while (dr_mono_ms() < end) {
        uv_run(&t->f->loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
}

/*
 * The store is reset while the instance runs (another instance stores seq 1 again in a new
 * database): the new notifications reach a client that connected after the reset, a client
 * still past them in the old numbering is told to resync, and the echo of what this instance
 * stores in the new numbering is still not delivered twice.
 */
static void remote_seqs_again_after_reset(void **state)
{
    struct bt *t = bt_get(state);
    static char buf[65536];
    int old, fresh;

    old = open_conn(t);
    publish_remote(t, "note-a1", 1);
    publish_remote(t, "note-a2", 2);
    publish_remote(t, "note-a3", 3);
    fx_read_until(t->f, old, buf, sizeof(buf), "note-a3");

    fresh = open_conn(t);
    publish_remote(t, "note-b1", 1);
    publish_remote(t, "note-b2", 2);
    fx_read_until(t->f, fresh, buf, sizeof(buf), "note-b2");
    assert_non_null(strstr(buf, "note-b1"));
    fx_read_until(t->f, old, buf, sizeof(buf), "\"type\":\"resync\"");

    publish_local(t, "note-own3", 3);
    fx_read_until(t->f, fresh, buf, sizeof(buf), "note-own3");
    run_for(t, 300); /* the echo comes back */
    publish_remote(t, "note-b4", 4);
    fx_read_until(t->f, fresh, buf, sizeof(buf), "note-b4");
    assert_null(strstr(buf, "note-own3"));
}

/* The reset shows first in a seq this instance stores: seqs from the bus follow it. */
static void local_seq_again_after_reset(void **state)
{
    struct bt *t = bt_get(state);
    static char buf[65536];
    int fd;

    publish_remote(t, "note-a1", 1);
    publish_remote(t, "note-a2", 2);
    run_for(t, 300);

    fd = open_conn(t);
    publish_local(t, "note-own1", 1);
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-own1");
    run_for(t, 300);
    publish_remote(t, "note-b2", 2);
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-b2");
    assert_null(strstr(buf, "note-own1"));
}

/* Without a reset the echo of this instance's notification is dropped, and a seq is not
 * delivered twice. */
static void echo_delivered_once(void **state)
{
    struct bt *t = bt_get(state);
    static char buf[65536];
    int fd = open_conn(t);

    publish_remote(t, "note-a1", 1);
    publish_local(t, "note-own2", 2);
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-own2");
    run_for(t, 300);
    publish_remote(t, "note-a3", 3);
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-a3");
    assert_null(strstr(buf, "note-own2"));
    assert_null(strstr(buf, "note-a1"));
}

/*
 * A notification stored here while a lower seq stored elsewhere is still on its way waits for
 * that one: delivered first, it would make the connection drop the lower one as a duplicate,
 * and a client that resumes from the last seq it got would never see it.
 */
static void own_waits_for_lower_remote(void **state)
{
    struct bt *t = bt_get(state);
    static char buf[65536];
    int fd = open_conn(t);
    const char *lower, *own;

    publish_remote(t, "note-a1", 1);
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-a1");
    publish_local(t, "note-own3", 3);
    run_for(t, 100);
    publish_remote(t, "note-a2", 2);
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-own3");
    lower = strstr(buf, "note-a2");
    own = strstr(buf, "note-own3");
    assert_non_null(lower);
    assert_true(lower < own);
}

/*
 * A seq given up on may be lost on the way (its instance died before PUBLISH): until an audit
 * has looked it up, the events after it tell the client to resume from below it, not from their
 * own seq. Its resync, if it is lost, goes to the connections in its room then, and one that
 * dies meanwhile takes that resync with it: the client must not have moved past the seq.
 */
static void given_up_seq_holds_the_resume_point(void **state)
{
    struct bt *t = bt_get(state);
    static char buf[65536];
    int fd = open_conn(t);

    publish_remote(t, "note-a1", 1);
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-a1");
    assert_null(strstr(buf, "\"resume\""));
    assert_non_null(strstr(buf, "id: 1\n"));

    publish_remote(t, "note-a3", 3); /* 2 never comes */
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-a3");
    assert_non_null(strstr(buf, "\"seq\":3,"));
    assert_non_null(strstr(buf, "\"resume\":1,"));
    assert_non_null(strstr(buf, "id: 1\n")); /* an EventSource resumes from there too */

    publish_remote(t, "note-a4", 4);
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-a4");
    assert_non_null(strstr(buf, "\"resume\":1,"));
    assert_null(strstr(buf, "\"type\":\"resume\""));
}

/* Stores a notification of room user:u1 with the store's next seq, which must be want. */
static void store_note(struct bt *t, const char *id, int64_t want)
{
    char json[256];
    struct dr_notification *n = NULL;
    int dup = 0;

    snprintf(json, sizeof(json),
             "{\"notification_id\":\"%s\",\"room\":\"user:u1\",\"notification_type\":\"t.t\"}", id);
    assert_int_equal(dr_notification_parse(json, strlen(json), id, &n, NULL, 0), DR_OK);
    assert_int_equal(dr__rt_store_put(dr_store_db(t->f->store), n, &dup), DR_OK);
    assert_int_equal(dr_notification_seq(n), want);
    dr_notification_unref(n);
}

/*
 * Once the audit has found the missing seq in the store, the connection gets its resync, then
 * {"type":"resume"} with the newest seq it was sent: from there on nothing is missing.
 */
static void audit_moves_the_resume_point(void **state)
{
    struct bt *t = bt_get(state);
    static char buf[65536];
    int fd = open_conn(t);
    const char *resync, *resume;

    run_for(t, 200); /* the first recovery query (empty store) is done */
    store_note(t, "note-a1", 1);
    store_note(t, "note-a2", 2);
    store_note(t, "note-a3", 3);
    publish_remote(t, "note-a1", 1);
    publish_remote(t, "note-a3", 3); /* 2 was lost on the way */
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-a3");
    assert_non_null(strstr(buf, "\"resume\":1,"));

    fx_read_until(t->f, fd, buf, sizeof(buf), "\"type\":\"resume\"");
    resync = strstr(buf, "\"type\":\"resync\",\"since\":1}");
    resume = strstr(buf, "id: 3\ndata: {\"type\":\"resume\",\"seq\":3}");
    assert_non_null(resync);
    assert_non_null(resume);
    assert_true(resync < resume);
}

/* Notifications that come over the bus together are fanned out together (one write per
 * connection, the metrics once): every one of them reaches the client, in seq order, and is
 * counted once. */
static void burst_delivered_in_order_and_counted(void **state)
{
    struct bt *t = bt_get(state);
    static char buf[262144];
    const char *p = buf;
    char id[32];
    int fd = open_conn(t);
    double before = dr_metrics_value(RT_M_DELIVERED, "transport=\"sse\"");

    for (int i = 1; i <= 40; i++) {
        snprintf(id, sizeof(id), "burst-%02d", i);
        publish_remote(t, id, i);
    }
    fx_read_until(t->f, fd, buf, sizeof(buf), "burst-40");
    for (int i = 1; i <= 40; i++) {
        snprintf(id, sizeof(id), "\"id\":\"burst-%02d\"", i);
        p = strstr(p, id);
        if (!p) {
            fail_msg("burst-%02d missing or out of order", i);
        }
        p++;
        assert_null(strstr(p, id)); /* once */
    }
    run_for(t, 50);
    assert_true(dr_metrics_value(RT_M_DELIVERED, "transport=\"sse\"") - before == 40);
}

/*
 * A message on the channel that is not a notification, with a seq far above the store's, is
 * dropped before it counts as seen: the audit still looks up the seqs stored and never
 * published, and the connection in its room is told to resync.
 */
static void unreadable_message_leaves_the_audit_on(void **state)
{
    struct bt *t = bt_get(state);
    static char buf[65536];
    int fd = open_conn(t);
    double invalid = dr_metrics_value("dr_realtime_bus_received_total", "outcome=\"invalid\"");
    double gaps = dr_metrics_value("dr_realtime_bus_gaps_skipped_total", "");

    run_for(t, 200); /* the first recovery query (empty store) is done */
    store_note(t, "note-a1", 1);
    publish_remote(t, "note-a1", 1);
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-a1");

    publish_raw(t, "{\"seq\":1000000000000}");
    wait_metric(t, "dr_realtime_bus_received_total", "outcome=\"invalid\"", invalid + 1);
    assert_true(dr_metrics_value("dr_realtime_bus_gaps_skipped_total", "") == gaps);

    store_note(t, "note-a2", 2); /* its instance died before the PUBLISH */
    fx_read_until(t->f, fd, buf, sizeof(buf), "\"type\":\"resync\",\"since\":1}");

    publish_remote(t, "note-a3", 3); /* and the next one is not taken for a store reset */
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-a3");
    assert_true(dr_metrics_value("dr_realtime_bus_gaps_skipped_total", "") == gaps + 1);
}

/* A message with two "seq" keys would be ordered by one and delivered as the other: it is
 * dropped. */
static void two_seqs_dropped(void **state)
{
    struct bt *t = bt_get(state);
    static char buf[65536];
    int fd = open_conn(t);
    double invalid = dr_metrics_value("dr_realtime_bus_received_total", "outcome=\"invalid\"");

    publish_remote(t, "note-a1", 1);
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-a1");
    publish_raw(t, "{\"notification_id\":\"note-two\",\"room\":\"user:u1\","
                   "\"notification_type\":\"t.t\",\"seq\":3,\"seq\":2}");
    wait_metric(t, "dr_realtime_bus_received_total", "outcome=\"invalid\"", invalid + 1);
    publish_remote(t, "note-a2", 2);
    publish_remote(t, "note-a3", 3);
    fx_read_until(t->f, fd, buf, sizeof(buf), "note-a3");
    assert_non_null(strstr(buf, "note-a2"));
    assert_null(strstr(buf, "note-two"));
}

/* Empties the store and starts its numbering again from 1, as a new database would. */
static void reset_store(struct bt *t)
{
    struct dr_db *db = dr_store_db(t->f->store);

    assert_int_equal(dr_db_exec(db, "DELETE FROM rt_notifications", NULL, 0, NULL, NULL, NULL),
                     DR_OK);
    assert_int_equal(dr_db_exec(db, "DELETE FROM sqlite_sequence WHERE name = 'rt_notifications'",
                                NULL, 0, NULL, NULL, NULL),
                     DR_OK);
}

/* The old numbering, 1 to 3 with 2 lost on the way and found by the audit (so it has audited
 * past 2), then the store reset. Reads from fd into buf. */
static void audited_then_reset(struct bt *t, int fd, char *buf, size_t cap)
{
    run_for(t, 200); /* the first recovery query (empty store) is done */
    store_note(t, "note-a1", 1);
    store_note(t, "note-a2", 2);
    store_note(t, "note-a3", 3);
    publish_remote(t, "note-a1", 1);
    publish_remote(t, "note-a3", 3); /* 2 was lost on the way */
    fx_read_until(t->f, fd, buf, cap, "\"type\":\"resume\"");
    assert_non_null(strstr(buf, "\"type\":\"resync\",\"since\":1}"));
    reset_store(t);
}

/*
 * The store is reset, and the first seq of the new numbering, stored by an instance that died
 * before its PUBLISH, never comes: the next one shows the reset. The connection, past it in the
 * old numbering, is told to resync from the start, and the audit, which starts again from 1,
 * finds the lost one.
 */
static void store_reset_shown_by_the_bus(void **state)
{
    struct bt *t = bt_get(state);
    static char buf[65536];
    int fd = open_conn(t);
    double lost = dr_metrics_value("dr_realtime_bus_lost_total", "");

    audited_then_reset(t, fd, buf, sizeof(buf));
    store_note(t, "note-b1", 1); /* never published */
    store_note(t, "note-b2", 2);
    publish_remote(t, "note-b2", 2);
    fx_read_until(t->f, fd, buf, sizeof(buf), "\"type\":\"resync\",\"since\":0}");
    wait_metric(t, "dr_realtime_bus_lost_total", "", lost + 2);
}

/* The same when no seq of the new numbering comes over the bus: the audit finds the store's
 * newest seq below what it audited already, and looks the new numbering up from 1. */
static void store_reset_shown_by_the_audit(void **state)
{
    struct bt *t = bt_get(state);
    static char buf[65536];
    int fd = open_conn(t);
    double lost = dr_metrics_value("dr_realtime_bus_lost_total", "");

    audited_then_reset(t, fd, buf, sizeof(buf));
    store_note(t, "note-b1", 1); /* never published */
    fx_read_until(t->f, fd, buf, sizeof(buf), "\"type\":\"resync\",\"since\":0}");
    assert_true(dr_metrics_value("dr_realtime_bus_lost_total", "") == lost + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(remote_seqs_again_after_reset, bt_setup, bt_teardown),
        cmocka_unit_test_setup_teardown(local_seq_again_after_reset, bt_setup, bt_teardown),
        cmocka_unit_test_setup_teardown(echo_delivered_once, bt_setup, bt_teardown),
        cmocka_unit_test_setup_teardown(burst_delivered_in_order_and_counted, bt_setup,
                                        bt_teardown),
        cmocka_unit_test_setup_teardown(own_waits_for_lower_remote, bt_setup, bt_teardown),
        cmocka_unit_test_setup_teardown(given_up_seq_holds_the_resume_point, bt_setup_gaps,
                                        bt_teardown),
        cmocka_unit_test_setup_teardown(audit_moves_the_resume_point, bt_setup_audit, bt_teardown),
        cmocka_unit_test_setup_teardown(unreadable_message_leaves_the_audit_on, bt_setup_audit,
                                        bt_teardown),
        cmocka_unit_test_setup_teardown(two_seqs_dropped, bt_setup, bt_teardown),
        cmocka_unit_test_setup_teardown(store_reset_shown_by_the_bus, bt_setup_audit, bt_teardown),
        cmocka_unit_test_setup_teardown(store_reset_shown_by_the_audit, bt_setup_audit,
                                        bt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
