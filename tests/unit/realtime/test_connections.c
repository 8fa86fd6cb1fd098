/* The admin API's view of connections (src/realtime/connections.c) on a real hub: totals,
 * pages in id order, filters, a connection closed by an administrator, and the outbound queue
 * as it fills and drains. Connections sit on socket pairs; the test is the client side. */
#include <errno.h>

/* the queue test fills it with ~3.8 MB */
#define RT_FX_MAX_QUEUE_BYTES (64 << 20)
#include "unit/realtime/rt_fixture.h"

static struct dr_jwt_claims *claims_for(struct fx *f, const char *sub, const char *org)
{
    cJSON *c = cJSON_CreateObject();

    cJSON_AddStringToObject(c, "sub", sub);
    if (org) {
        cJSON_AddStringToObject(c, "org", org);
    }
    return fx_claims(f, c, 3600);
}

/* A connection on one end of a new socket pair; authenticated as sub (with extra rooms) unless
 * sub is NULL, in which case it waits for its auth message. */
static struct rt_conn *open_conn(struct fx *f, const struct rt_transport *tp, const char *sub,
                                 const char *org, char *const *rooms, size_t nrooms)
{
    struct rt_conn *c = fx_conn(f, tp);

    if (sub) {
        assert_int_equal(dr__rt_conn_authenticated(c, claims_for(f, sub, org), -1, rooms, nrooms),
                         DR_OK);
    }
    return c;
}

static const cJSON *item(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    assert_non_null(v);
    return v;
}

static double num(const cJSON *o, const char *name)
{
    const cJSON *v = item(o, name);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = item(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *list(struct fx *f, uint64_t after, size_t limit, const char *user, int transport)
{
    struct rt_conn_query q = {.after = after, .limit = limit, .user = user, .transport = transport};
    return dr__rt_connections_json(&f->hub, &q);
}

/* The ids of the page, in order, as "1,2,3". */
static void page_ids(const cJSON *page, char *out, size_t outsz)
{
    const cJSON *c;
    size_t n = 0;

    out[0] = '\0';
    cJSON_ArrayForEach(c, item(page, "connections"))
    {
        n += (size_t)snprintf(out + n, outsz - n, "%s%.0f", n ? "," : "", num(c, "id"));
    }
}

/* The page list() gives for after, limit, user and transport holds the n ids want, in order,
 * and names next as next_after (none when next is 0). */
static void expect_page(struct fx *f, uint64_t after, size_t limit, const char *user, int transport,
                        const uint64_t *want, size_t n, uint64_t next)
{
    cJSON *page = list(f, after, limit, user, transport);
    char got[128], ids[128];
    size_t len = 0;

    ids[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(ids + len, sizeof(ids) - len, "%s%llu", i ? "," : "",
                                (unsigned long long)want[i]);
    }
    page_ids(page, got, sizeof(got));
    assert_string_equal(got, ids);
    assert_int_equal(num(page, "count"), n);
    if (next) {
        assert_int_equal(num(page, "next_after"), (double)next);
    } else {
        assert_null(cJSON_GetObjectItemCaseSensitive(page, "next_after"));
    }
    cJSON_Delete(page);
}

static void totals_and_fields(void **state)
{
    struct fx *f = *state;
    char *extra[] = {"meeting:p1"};
    struct rt_conn *a = open_conn(f, &dr__rt_sse, "alice", "acme", NULL, 0);
    struct rt_conn *w = open_conn(f, &dr__rt_ws, NULL, NULL, NULL, 0);
    struct rt_conn *b = open_conn(f, &dr__rt_ws, "bob", NULL, extra, 1);
    cJSON *page = list(f, 0, 0, NULL, -1);
    const cJSON *t = item(page, "totals"), *conns = item(page, "connections"), *c, *rooms;

    assert_true(a->id < w->id && w->id < b->id);
    assert_int_equal(num(t, "connections"), 3);
    assert_int_equal(num(item(t, "by_transport"), "ws"), 2);
    assert_int_equal(num(item(t, "by_transport"), "sse"), 1);
    assert_int_equal(num(t, "waiting_for_auth"), 1);
    assert_int_equal(num(t, "closing"), 0);
    assert_int_equal(num(t, "users"), 2);
    assert_int_equal(num(t, "rooms"), 4); /* user:alice, org:acme, user:bob, meeting:p1 */
    assert_int_equal(num(t, "max_connections"), 100);
    assert_int_equal(num(t, "max_connections_per_user"), 10);
    assert_int_equal(num(page, "count"), 3);
    assert_null(cJSON_GetObjectItemCaseSensitive(page, "next_after"));

    c = cJSON_GetArrayItem(conns, 0);
    assert_int_equal(num(c, "id"), (double)a->id);
    assert_string_equal(str(c, "transport"), "sse");
    assert_string_equal(str(c, "state"), "open");
    assert_true(cJSON_IsTrue(item(c, "authenticated")));
    assert_string_equal(str(c, "user"), "alice");
    assert_string_equal(str(c, "org"), "acme");
    rooms = item(c, "rooms");
    assert_int_equal(cJSON_GetArraySize(rooms), 2);
    assert_string_equal(cJSON_GetArrayItem(rooms, 0)->valuestring, "user:alice");
    assert_string_equal(cJSON_GetArrayItem(rooms, 1)->valuestring, "org:acme");
    for (const char *const *k = (const char *const[]){"connected_at", "last_activity",
                                                      "last_received", "last_sent", NULL};
         *k; k++) {
        int64_t ms;
        assert_int_equal(dr_parse_time(str(c, *k), &ms), DR_OK);
        assert_true(ms > dr_now_ms() - 600000 && ms <= dr_now_ms() + 1000);
    }
    assert_int_equal(num(c, "queue_bytes"), 0);
    assert_int_equal(num(c, "queue_frames"), 0);

    c = cJSON_GetArrayItem(conns, 1);
    assert_string_equal(str(c, "transport"), "ws");
    assert_string_equal(str(c, "state"), "waiting_for_auth");
    assert_false(cJSON_IsTrue(item(c, "authenticated")));
    assert_true(cJSON_IsNull(item(c, "user")));
    assert_true(cJSON_IsNull(item(c, "org")));
    assert_int_equal(cJSON_GetArraySize(item(c, "rooms")), 0);

    c = cJSON_GetArrayItem(conns, 2);
    assert_string_equal(str(c, "user"), "bob");
    assert_true(cJSON_IsNull(item(c, "org")));
    rooms = item(c, "rooms");
    assert_int_equal(cJSON_GetArraySize(rooms), 2);
    assert_string_equal(cJSON_GetArrayItem(rooms, 1)->valuestring, "meeting:p1");
    cJSON_Delete(page);

    assert_ptr_equal(dr__hub_find_conn(&f->hub, w->id), w);
    assert_ptr_equal(dr__hub_find_conn(&f->hub, a->id), a);
    assert_null(dr__hub_find_conn(&f->hub, b->id + 1));
    assert_null(dr__hub_find_conn(&f->hub, 0));
}

static void pages_and_filters(void **state)
{
    struct fx *f = *state;
    uint64_t id[5];
    cJSON *page;

    for (int i = 0; i < 5; i++) {
        id[i] =
            open_conn(f, i == 3 ? &dr__rt_ws : &dr__rt_sse, i % 2 ? "odd" : "even", NULL, NULL, 0)
                ->id;
    }
    /* two at a time, the lowest ids first, each page naming where the next starts */
    expect_page(f, 0, 2, NULL, -1, (uint64_t[]){id[0], id[1]}, 2, id[1]);
    expect_page(f, id[1], 2, NULL, -1, (uint64_t[]){id[2], id[3]}, 2, id[3]);
    expect_page(f, id[3], 2, NULL, -1, (uint64_t[]){id[4]}, 1, 0);
    page = list(f, id[3], 2, NULL, -1);
    assert_int_equal(num(item(page, "totals"), "connections"), 5); /* totals: the instance */
    cJSON_Delete(page);
    /* a page exactly as long as what is left has no next */
    expect_page(f, id[2], 2, NULL, -1, (uint64_t[]){id[3], id[4]}, 2, 0);

    /* filters: by user, by transport, both, and a user with no connection */
    expect_page(f, 0, 0, "odd", -1, (uint64_t[]){id[1], id[3]}, 2, 0);
    expect_page(f, 0, 1, "even", -1, (uint64_t[]){id[0]}, 1, id[0]);
    expect_page(f, 0, 0, NULL, RT_WS, (uint64_t[]){id[3]}, 1, 0);
    expect_page(f, 0, 0, "even", RT_WS, NULL, 0, 0);
    expect_page(f, 0, 0, "nobody", -1, NULL, 0, 0);
}

/* Closed by an administrator: the client is told 4010, the connection leaves its rooms at once
 * and is listed as closing until the close completes, then not at all. */
static void closed_by_admin(void **state)
{
    struct fx *f = *state;
    struct rt_conn *c = open_conn(f, &dr__rt_sse, "carol", "acme", NULL, 0);
    uint64_t id = c->id;
    char buf[4096];
    cJSON *page, *one;

    dr__rt_conn_close(c, RT_CLOSE_ADMIN, "closed by an administrator");
    page = list(f, 0, 0, NULL, -1);
    assert_int_equal(num(item(page, "totals"), "closing"), 1);
    assert_int_equal(num(item(page, "totals"), "rooms"), 0);
    one = cJSON_GetArrayItem(item(page, "connections"), 0);
    assert_string_equal(str(one, "state"), "closing");
    assert_int_equal(cJSON_GetArraySize(item(one, "rooms")), 0);
    cJSON_Delete(page);
    fx_read_until(f, f->peers[0], buf, sizeof(buf), "\"type\":\"close\"");
    assert_non_null(strstr(buf, "\"type\":\"close\",\"code\":4010"));
    while (dr__hub_find_conn(&f->hub, id)) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    page = list(f, 0, 0, NULL, -1);
    assert_int_equal(num(item(page, "totals"), "connections"), 0);
    assert_int_equal(num(page, "count"), 0);
    cJSON_Delete(page);
}

/* Frames the socket did not take are counted in the queue until the client reads them. */
static void queue_fills_and_drains(void **state)
{
    struct fx *f = *state;
    struct rt_conn *c = open_conn(f, &dr__rt_sse, "dave", NULL, NULL, 0);
    static char junk[65536];
    char *payload = malloc(60000);
    cJSON *one;
    int spins = 0;

    memset(payload, 'x', 60000);
    dr__rt_conn_ref(c);
    for (int i = 0; i < 64; i++) { /* ~3.8 MB: more than a socket pair buffers */
        struct rt_frame *fr = dr__rt_frame_create(60000);
        memcpy(fr->data, payload, 60000);
        assert_int_equal(dr__rt_conn_write(c, fr), DR_OK);
        dr__rt_frame_unref(fr);
    }
    one = dr__rt_connection_json(&f->hub, c);
    assert_true(num(one, "queue_frames") > 0);
    assert_true(num(one, "queue_bytes") > 0);
    assert_true(num(one, "queue_bytes") <= 64 * 60000);
    cJSON_Delete(one);
    while (c->queued_frames > 0) {
        while (recv(f->peers[0], junk, sizeof(junk), MSG_DONTWAIT) > 0) {
        }
        uv_run(&f->loop, UV_RUN_NOWAIT);
        assert_true(++spins < 10000000);
    }
    one = dr__rt_connection_json(&f->hub, c);
    assert_int_equal(num(one, "queue_frames"), 0);
    assert_int_equal(num(one, "queue_bytes"), 0);
    assert_string_equal(str(one, "state"), "open");
    cJSON_Delete(one);
    dr__rt_conn_unref(c);
    free(payload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(totals_and_fields, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(pages_and_filters, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(closed_by_admin, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(queue_fills_and_drains, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
