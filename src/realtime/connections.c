/*
 * The admin API's view of this instance's real-time connections (DESIGN §8):
 *   GET    /admin/connections?user=&transport=&after=&limit=   totals and a page, in id order
 *   GET    /admin/connections/{id}                             one connection
 *   DELETE /admin/connections/{id}                             closes it with 4010
 * Protected like every /admin route: an API key with role admin (dr_apikey_authorize).
 *
 * Threads: connections belong to the event loop, and these handlers read and close them
 * directly, without a lock. That is safe because the HTTP server runs its handlers on the same
 * loop as the hub (dr_realtime_register); nothing here may move to dr_http_defer's thread pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/apikey.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

#define PREFIX       "/admin/connections"
#define PAGE_DEFAULT 100
#define PAGE_MAX     1000

static const char *state_name(enum rt_conn_state s)
{
    switch (s) {
    case RT_CONN_AUTH:
        return "waiting_for_auth";
    case RT_CONN_OPEN:
        return "open";
    case RT_CONN_CLOSING:
        return "closing";
    case RT_CONN_CLOSED:
        break;
    }
    return "closed";
}

static void add_time(cJSON *o, const char *name, int64_t epoch_ms)
{
    char ts[32];
    dr_format_time(epoch_ms, ts);
    cJSON_AddStringToObject(o, name, ts);
}

cJSON *dr__rt_connection_json(const struct dr_hub *hub, const struct rt_conn *c)
{
    cJSON *o = cJSON_CreateObject(), *rooms;
    /* the connection keeps monotonic times (and loop time for writes): shown as wall clock */
    int64_t wall = dr_now_ms(), mono = dr_mono_ms(), loop = (int64_t)uv_now(hub->loop);
    int64_t rx = wall - (mono - c->last_rx_ms), tx = wall - (loop - c->last_tx_ms);

    cJSON_AddNumberToObject(o, "id", (double)c->id);
    cJSON_AddStringToObject(o, "transport", c->tp->name);
    cJSON_AddStringToObject(o, "state", state_name(c->state));
    cJSON_AddBoolToObject(o, "authenticated", c->claims != NULL);
    if (c->claims) {
        cJSON_AddStringToObject(o, "user", c->claims->sub);
    } else {
        cJSON_AddNullToObject(o, "user");
    }
    if (c->claims && c->claims->org) {
        cJSON_AddStringToObject(o, "org", c->claims->org);
    } else {
        cJSON_AddNullToObject(o, "org");
    }
    rooms = cJSON_AddArrayToObject(o, "rooms");
    for (size_t i = 0; i < c->nsubs; i++) {
        if (c->subs[i].hroom) { /* a closing connection has left its rooms already */
            cJSON_AddItemToArray(rooms, cJSON_CreateString(c->subs[i].room));
        }
    }
    add_time(o, "connected_at", c->connected_ms);
    add_time(o, "last_activity", rx > tx ? rx : tx);
    add_time(o, "last_received", rx);
    add_time(o, "last_sent", tx);
    cJSON_AddNumberToObject(
        o, "queue_bytes",
        (double)(uv_stream_get_write_queue_size((const uv_stream_t *)c->tcp) + c->cork_bytes));
    cJSON_AddNumberToObject(o, "queue_frames", (double)(c->queued_frames + c->ncork));
    return o;
}

static int matches(const struct rt_conn *c, const struct rt_conn_query *q)
{
    if (c->id <= q->after) {
        return 0;
    }
    if (q->transport >= 0 && (int)c->tp->id != q->transport) {
        return 0;
    }
    return !q->user || (c->claims && strcmp(c->claims->sub, q->user) == 0);
}

cJSON *dr__rt_connections_json(const struct dr_hub *hub, const struct rt_conn_query *q)
{
    cJSON *o = cJSON_CreateObject(), *t, *tp, *arr;
    size_t limit = q->limit ? q->limit : PAGE_DEFAULT, nmatch = 0, shown, nauth = 0, nclosing = 0;
    const struct rt_conn **ring = dr_xcalloc(limit, sizeof(*ring));

    /*
     * The list runs from the newest connection to the oldest, so the matches come in
     * descending id order and the page (the lowest ids above q->after) is the last `limit`
     * of them: a ring of `limit` entries holds it in one walk, whatever the number of
     * connections.
     */
    for (const struct rt_conn *c = hub->conns; c; c = c->next) {
        nauth += c->state == RT_CONN_AUTH;
        nclosing += c->state == RT_CONN_CLOSING;
        if (matches(c, q)) {
            ring[nmatch++ % limit] = c;
        }
    }
    t = cJSON_AddObjectToObject(o, "totals");
    cJSON_AddNumberToObject(t, "connections", (double)hub->nconns);
    tp = cJSON_AddObjectToObject(t, "by_transport");
    cJSON_AddNumberToObject(tp, dr__rt_ws.name, (double)hub->nconns_tp[RT_WS]);
    cJSON_AddNumberToObject(tp, dr__rt_sse.name, (double)hub->nconns_tp[RT_SSE]);
    cJSON_AddNumberToObject(t, "waiting_for_auth", (double)nauth);
    cJSON_AddNumberToObject(t, "closing", (double)nclosing);
    cJSON_AddNumberToObject(t, "users", (double)hub->users.n);
    cJSON_AddNumberToObject(t, "rooms", (double)hub->rooms.n);
    cJSON_AddNumberToObject(t, "max_connections", hub->conf->max_connections);
    cJSON_AddNumberToObject(t, "max_connections_per_user", hub->conf->max_per_user);
    arr = cJSON_AddArrayToObject(o, "connections");
    shown = nmatch < limit ? nmatch : limit;
    for (size_t k = 0; k < shown; k++) {
        cJSON_AddItemToArray(arr, dr__rt_connection_json(hub, ring[(nmatch - 1 - k) % limit]));
    }
    cJSON_AddNumberToObject(o, "count", (double)shown);
    if (nmatch > limit) {
        cJSON_AddNumberToObject(o, "next_after", (double)ring[(nmatch - limit) % limit]->id);
    }
    free(ring);
    return o;
}

struct rt_conn *dr__hub_find_conn(const struct dr_hub *hub, uint64_t id)
{
    for (struct rt_conn *c = hub->conns; c && c->id >= id; c = c->next) {
        if (c->id == id) {
            return c;
        }
    }
    return NULL;
}

/* ---- HTTP ---- */

static void on_list(struct dr_hub *hub, struct dr_http_req *req)
{
    struct rt_conn_query q = {.transport = -1};
    char user[160], tp[16], err[128];
    int64_t limit = PAGE_DEFAULT, after = 0;
    int rc;

    if (dr_http_query_int(req, "limit", 1, PAGE_MAX, &limit, err, sizeof(err)) == DR_EINVAL ||
        dr_http_query_int(req, "after", 0, INT64_MAX, &after, err, sizeof(err)) == DR_EINVAL) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "%s", err);
        return;
    }
    q.limit = (size_t)limit;
    q.after = (uint64_t)after;
    rc = dr_http_query_param(req, "user", user, sizeof(user));
    if (rc == DR_ETOOBIG || rc == DR_EINVAL) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "user: at most %zu bytes, no %%00",
                              sizeof(user) - 1);
        return;
    }
    q.user = rc == DR_OK ? user : NULL;
    rc = dr_http_query_param(req, "transport", tp, sizeof(tp));
    if (rc != DR_ENOTFOUND) {
        if (rc == DR_OK && strcmp(tp, dr__rt_ws.name) == 0) {
            q.transport = RT_WS;
        } else if (rc == DR_OK && strcmp(tp, dr__rt_sse.name) == 0) {
            q.transport = RT_SSE;
        } else {
            dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "transport: expected ws or sse");
            return;
        }
    }
    dr_http_respond_cjson(req, 200, dr__rt_connections_json(hub, &q));
}

static void on_one(struct dr_hub *hub, struct dr_http_req *req, const char *method,
                   const char *idstr)
{
    struct rt_conn *c = NULL;
    int64_t id;
    cJSON *o;

    if (dr_parse_int(idstr, 1, INT64_MAX, &id) == DR_OK) {
        c = dr__hub_find_conn(hub, (uint64_t)id);
    }
    if (!c) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "no connection %s", idstr);
        return;
    }
    if (strcmp(method, "DELETE") != 0) {
        dr_http_respond_cjson(req, 200, dr__rt_connection_json(hub, c));
        return;
    }
    if (c->state == RT_CONN_CLOSING) {
        dr_http_respond_error(req, 409, "FAILED_PRECONDITION", "connection %lld is closing already",
                              (long long)id);
        return;
    }
    DR_INFO("realtime", "connection closed by an administrator", "conn=%llu transport=%s",
            (unsigned long long)c->id, c->tp->name);
    dr__rt_conn_close(c, RT_CLOSE_ADMIN, "closed by an administrator");
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "closed", (double)id);
    cJSON_AddNumberToObject(o, "code", RT_CLOSE_ADMIN);
    dr_http_respond_cjson(req, 200, o);
}

void dr__rt_connections_route(struct dr_http_req *req, void *ctx)
{
    struct dr_hub *hub = ctx;
    const char *path = dr_http_path(req), *method = dr_http_method(req);
    const char *rest = path + strlen(PREFIX);
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

    if (!dr_apikey_authorize(hub->cfg, req, "admin")) {
        return;
    }
    if (*rest == '\0') {
        if (!is_get) {
            dr_http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "use GET");
            return;
        }
        on_list(hub, req);
        return;
    }
    /* the route is the prefix "/admin/connections/" */
    if (rest[1] == '\0' || strchr(rest + 1, '/')) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "no such resource: %s", path);
        return;
    }
    if (!is_get && strcmp(method, "DELETE") != 0) {
        dr_http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "use GET or DELETE");
        return;
    }
    on_one(hub, req, method, rest + 1);
}
