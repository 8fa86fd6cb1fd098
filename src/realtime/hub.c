/*
 * The hub: which connection is in which room and which connections belong to which user, and
 * the fan-out of stored notifications to them. Loop thread only, except dr_hub_publish, which
 * workers call to hand notifications over through a uv_async.
 *
 * A room's members are an array (fan-out walks it); a connection's subscription points at its
 * room so leaving is a swap-remove. Each broadcast is encoded at most once per transport and the
 * frame is shared by every connection it goes to. Notifications handed over together are fanned
 * out corked: a connection gets all of its frames of the batch in one write.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

static _Atomic(struct dr_hub *) current;

struct dr_hub *dr__hub_current(void)
{
    return atomic_load(&current);
}

void dr__hub_set_current(struct dr_hub *hub)
{
    atomic_store(&current, hub);
}

/* the metrics label of each transport */
static const char *const tp_labels[RT_NTRANSPORTS] = {
    [RT_WS] = "transport=\"ws\"",
    [RT_SSE] = "transport=\"sse\"",
};

static void update_gauges(struct dr_hub *hub)
{
    for (int tp = 0; tp < RT_NTRANSPORTS; tp++) {
        dr_metrics_set(RT_M_CONNS, tp_labels[tp], (double)hub->nconns_tp[tp]);
    }
    dr_metrics_set(RT_M_ROOMS, "", (double)hub->rooms.n);
}

/* ---- hand-off from workers ---- */

/* Gathers the frames written to each connection until the matching uncork() (they nest). */
static void cork(struct dr_hub *hub)
{
    hub->corking++;
}

static void uncork(struct dr_hub *hub)
{
    if (--hub->corking > 0) {
        return;
    }
    while (hub->corked) {
        struct rt_conn *c = hub->corked;
        hub->corked = c->cork_next;
        c->cork_next = NULL;
        c->corked = 0;
        dr__rt_conn_flush_cork(c);
        dr__rt_conn_unref(c);
    }
}

static void record_fanout(struct dr_hub *hub);

void dr__hub_batch_begin(struct dr_hub *hub)
{
    hub->fan_batch++;
    cork(hub);
}

void dr__hub_batch_end(struct dr_hub *hub)
{
    if (--hub->fan_batch == 0) {
        record_fanout(hub);
    }
    uncork(hub);
}

int dr__hub_resync_past(struct dr_hub *hub, const char *room, int64_t seq, int64_t since)
{
    struct rt_hub_room *r = room ? dr__rt_map_get(&hub->rooms, room) : NULL;
    struct rt_conn **snap;
    size_t cnt = r ? r->n : 0;
    int told = 0;
    cJSON *f;

    if (!cnt) {
        return 0;
    }
    /* sending may close a connection, which edits the room's array: walk a snapshot */
    snap = dr_xmalloc(cnt * sizeof(*snap));
    for (size_t i = 0; i < cnt; i++) {
        snap[i] = r->conns[i];
        dr__rt_conn_ref(snap[i]);
    }
    f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "type", "resync");
    dr_json_add_i64(f, "since", since);
    for (size_t i = 0; i < cnt; i++) {
        struct rt_conn *c = snap[i];
        for (size_t k = 0; c->state == RT_CONN_OPEN && k < c->nsubs; k++) {
            struct rt_sub *s = &c->subs[k];
            if (strcmp(s->room, room) == 0 && s->state == RT_SUB_LIVE && s->last_seq >= seq) {
                dr__rt_conn_send_json(c, f);
                told++;
                break;
            }
        }
        dr__rt_conn_unref(c);
    }
    free(snap);
    cJSON_Delete(f);
    return told;
}

/*
 * This instance's notifications come from one store thread in seq order, so a seq not above
 * the last one means the store was reset (an empty database numbers from 1 again): connections
 * that went past it in the old numbering would drop the new notifications as duplicates, and
 * are told to resync instead.
 */
static void check_local_seq(struct dr_hub *hub, const struct dr_notification *n)
{
    if (n->seq <= hub->local_hi) {
        int told = dr__hub_resync_past(hub, n->room, n->seq, n->seq - 1);
        DR_WARN("realtime", "notification seq not above the last one: the store was reset",
                "seq=%lld last=%lld connections_resynced=%d", (long long)n->seq,
                (long long)hub->local_hi, told);
    }
    hub->local_hi = n->seq;
}

struct hub_call {
    void (*fn)(void *arg);
    void *arg;
    struct hub_call *next;
};

static void run_calls(struct hub_call *c)
{
    while (c) {
        struct hub_call *next = c->next;
        c->fn(c->arg);
        free(c);
        c = next;
    }
}

static struct hub_call *take_calls(struct dr_hub *hub)
{
    struct hub_call *c = hub->calls;

    hub->calls = NULL;
    hub->calls_tail = &hub->calls;
    return c;
}

void dr__hub_call(struct dr_hub *hub, void (*fn)(void *arg), void *arg)
{
    struct hub_call *c = dr_xmalloc(sizeof(*c));

    c->fn = fn;
    c->arg = arg;
    c->next = NULL;
    pthread_mutex_lock(&hub->mu);
    *hub->calls_tail = c;
    hub->calls_tail = &c->next;
    if (!hub->async_closed) {
        uv_async_send(&hub->async);
    }
    pthread_mutex_unlock(&hub->mu);
}

static void drain(uv_async_t *a)
{
    struct dr_hub *hub = a->data;
    struct dr_notification **q;
    struct hub_call *calls;
    size_t n;

    pthread_mutex_lock(&hub->mu);
    q = hub->inq;
    n = hub->ninq;
    hub->inq = NULL;
    hub->ninq = hub->capinq = 0;
    calls = take_calls(hub); /* posted after these notifications: they run after them */
    pthread_mutex_unlock(&hub->mu);
    /* several notifications for the same connections: one write each, not one per event */
    if (n > 1) {
        cork(hub);
    }
    hub->fan_batch++; /* the metrics once for all of them */
    for (size_t i = 0; i < n; i++) {
        if (!hub->stopping) {
            check_local_seq(hub, q[i]);
            if (hub->bus.publish) {
                hub->bus.publish(hub->bus.ctx, q[i]); /* it delivers here too, in seq order */
            } else {
                dr_hub_publish_local(hub, q[i]);
            }
        }
        dr_notification_unref(q[i]);
    }
    if (--hub->fan_batch == 0) {
        record_fanout(hub);
    }
    if (n > 1) {
        uncork(hub);
    }
    free(q);
    run_calls(calls);
}

void dr_hub_publish_many(struct dr_hub *hub, struct dr_notification *const *ns, size_t n)
{
    if (n == 0) {
        return;
    }
    pthread_mutex_lock(&hub->mu);
    if (!hub->async_closed) {
        if (hub->ninq + n > hub->capinq) {
            while (hub->ninq + n > hub->capinq) {
                hub->capinq = hub->capinq ? hub->capinq * 2 : 64;
            }
            hub->inq = dr_xrealloc(hub->inq, hub->capinq * sizeof(*hub->inq));
        }
        for (size_t i = 0; i < n; i++) {
            hub->inq[hub->ninq++] = dr_notification_ref(ns[i]);
        }
        uv_async_send(&hub->async);
    }
    pthread_mutex_unlock(&hub->mu);
}

void dr_hub_publish(struct dr_hub *hub, struct dr_notification *n)
{
    dr_hub_publish_many(hub, &n, 1);
}

/* ---- fan-out ---- */

void dr__hub_count_delivery(struct dr_hub *hub, enum rt_transport_id tp, uint64_t t0_ns)
{
    double lat = t0_ns ? (double)(dr_mono_ns() - t0_ns) / 1e9 : -1;

    if (!hub->fanning_out) {
        dr_metrics_inc(RT_M_DELIVERED, tp_labels[tp], 1);
        if (lat >= 0) {
            dr_metrics_observe(RT_M_LATENCY, "", lat);
        }
        return;
    }
    hub->fan_delivered[tp]++;
    if (lat >= 0) {
        if (hub->fan_nlat == hub->fan_caplat) {
            hub->fan_caplat = hub->fan_caplat ? hub->fan_caplat * 2 : 256;
            hub->fan_lat = dr_xrealloc(hub->fan_lat, hub->fan_caplat * sizeof(*hub->fan_lat));
        }
        hub->fan_lat[hub->fan_nlat++] = lat;
    }
}

static void record_fanout(struct dr_hub *hub)
{
    for (int tp = 0; tp < RT_NTRANSPORTS; tp++) {
        if (hub->fan_delivered[tp] > 0) {
            dr_metrics_inc(RT_M_DELIVERED, tp_labels[tp], hub->fan_delivered[tp]);
            hub->fan_delivered[tp] = 0;
        }
    }
    dr_metrics_observe_many(RT_M_LATENCY, "", hub->fan_lat, hub->fan_nlat);
    hub->fan_nlat = 0;
}

int64_t dr__hub_safe(struct dr_hub *hub)
{
    return hub->bus.safe ? hub->bus.safe(hub->bus.ctx) : INT64_MAX;
}

void dr__hub_safe_moved(struct dr_hub *hub)
{
    struct rt_conn *c, *next;
    int64_t w;

    if (!hub->lagging) {
        return;
    }
    w = dr__hub_safe(hub);
    hub->lagging = 0;
    for (c = hub->conns; c; c = next) {
        next = c->next;
        if (dr__rt_conn_lagging(c)) {
            dr__rt_conn_ref(c);
            dr__rt_conn_mark(c, w);
            hub->lagging |= dr__rt_conn_lagging(c);
            dr__rt_conn_unref(c); /* only c itself can have left the list */
        }
    }
}

void dr_hub_publish_local(struct dr_hub *hub, struct dr_notification *n)
{
    struct rt_hub_room *r = dr__rt_map_get(&hub->rooms, n->room);
    uint64_t gen = ++hub->fanout_gen;

    if (!r) {
        return;
    }
    if (n->seq > 0 && hub->bus.safe) {
        /* the frames carry where the client may resume from: with a lower seq still missing
         * here, not from this one */
        int64_t w = dr__hub_safe(hub);
        n->behind = w < n->seq ? n->seq - w : 0;
        hub->lagging |= n->behind > 0;
    }
    hub->fanning_out = 1;
    /* deliver may close a connection (full queue), which removes it from this array: walk a
     * snapshot of referenced connections */
    size_t cnt = r->n;
    struct rt_conn **snap = dr_xmalloc((cnt ? cnt : 1) * sizeof(*snap));
    for (size_t i = 0; i < cnt; i++) {
        snap[i] = r->conns[i];
        dr__rt_conn_ref(snap[i]);
    }
    for (size_t i = 0; i < cnt; i++) {
        struct rt_conn *c = snap[i];
        if (c->fanout_gen != gen && c->state == RT_CONN_OPEN) {
            c->fanout_gen = gen;
            for (size_t k = 0; k < c->nsubs; k++) {
                if (c->subs[k].hroom == r) { /* the member of r is the sub joined to it */
                    dr__rt_conn_deliver(c, &c->subs[k], n);
                    break;
                }
            }
        }
        dr__rt_conn_unref(c);
    }
    free(snap);
    hub->fanning_out = 0;
    if (!hub->fan_batch) {
        record_fanout(hub);
    }
}

/*
 * The bus form as dr__notification_set_seq() writes it: a canonical body (what the store keeps)
 * with ,"seq":N before its closing brace. The notification, read without a cJSON tree; NULL for
 * any other text, which dr_hub_receive() reads through one (and writes canonical again).
 */
static struct dr_notification *receive_canonical(const char *json, size_t len)
{
    size_t blen = 0;
    int64_t seq = dr__notification_bus_seq(json, len, &blen);
    struct dr_notification *n;
    char *body;

    if (seq <= 0) {
        return NULL;
    }
    body = dr_xmalloc(blen + 1);
    memcpy(body, json, blen - 1);
    body[blen - 1] = '}';
    body[blen] = '\0';
    n = dr__notification_canonical(body, blen);
    free(body);
    if (n) {
        dr__notification_set_seq(n, seq);
    }
    return n;
}

struct dr_notification *dr__hub_read_bus(const char *json, size_t len)
{
    struct dr_notification *n = receive_canonical(json, len);
    cJSON *o;
    int64_t seq = 0;

    if (n) {
        return n;
    }
    o = dr_json_parse(json, len);
    /* the seq to the unit: cJSON keeps numbers as doubles */
    if (o && dr_json_i64_exact(json, len, "seq", &seq) == DR_OK && seq > 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "seq");
    }
    /* a second "seq": the bus form's reading would take the other one */
    if (seq > 0 && !cJSON_GetObjectItemCaseSensitive(o, "seq")) {
        char *body = dr_json_print(o);
        n = dr__notification_from_row(seq, body, strlen(body));
        free(body);
    }
    cJSON_Delete(o);
    return n;
}

int dr_hub_receive(struct dr_hub *hub, const char *json, size_t len)
{
    struct dr_notification *n = dr__hub_read_bus(json, len);

    if (!n) {
        return DR_EINVAL;
    }
    dr_hub_publish_local(hub, n);
    dr_notification_unref(n);
    return DR_OK;
}

void dr_hub_set_bus(struct dr_hub *hub, const struct dr_hub_bus *bus)
{
    if (bus) {
        hub->bus = *bus;
    } else {
        memset(&hub->bus, 0, sizeof(hub->bus));
    }
}

size_t dr_hub_connections(const struct dr_hub *hub)
{
    return hub->nconns;
}

size_t dr_hub_rooms(const struct dr_hub *hub)
{
    return hub->rooms.n;
}

/* ---- membership ---- */

void dr__hub_join(struct dr_hub *hub, struct rt_conn *c, struct rt_sub *s)
{
    struct rt_hub_room *r = dr__rt_map_get(&hub->rooms, s->room);

    if (!r) {
        r = dr_xcalloc(1, sizeof(*r));
        r->name = dr_xstrdup(s->room);
        dr__rt_map_put(&hub->rooms, s->room, r);
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4;
        r->conns = dr_xrealloc(r->conns, r->cap * sizeof(*r->conns));
    }
    r->conns[r->n++] = c;
    s->hroom = r;
    update_gauges(hub);
}

void dr__hub_leave(struct dr_hub *hub, struct rt_conn *c, struct rt_sub *s)
{
    struct rt_hub_room *r = s->hroom;

    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (r->conns[i] == c) {
            r->conns[i] = r->conns[--r->n];
            break;
        }
    }
    s->hroom = NULL;
    if (r->n == 0) {
        dr__rt_map_del(&hub->rooms, r->name);
        free(r->name);
        free(r->conns);
        free(r);
    }
    update_gauges(hub);
}

void dr__hub_add_conn(struct dr_hub *hub, struct rt_conn *c)
{
    /* at the head with the highest id yet: the admin API pages by id along the list */
    c->id = ++hub->next_id;
    c->next = hub->conns;
    if (hub->conns) {
        hub->conns->prev = c;
    }
    hub->conns = c;
    hub->nconns++;
    hub->nconns_tp[c->tp->id]++;
    update_gauges(hub);
}

static void unindex_user(struct dr_hub *hub, struct rt_conn *c)
{
    if (!c->user_key[0]) {
        return;
    }
    if (c->uprev) {
        c->uprev->unext = c->unext;
    } else if (c->unext) {
        dr__rt_map_put(&hub->users, c->user_key, c->unext);
    } else {
        dr__rt_map_del(&hub->users, c->user_key);
    }
    if (c->unext) {
        c->unext->uprev = c->uprev;
    }
    c->uprev = c->unext = NULL;
    c->user_key[0] = '\0';
}

void dr__hub_detach(struct dr_hub *hub, struct rt_conn *c)
{
    for (size_t i = 0; i < c->nsubs; i++) {
        dr__hub_leave(hub, c, &c->subs[i]);
    }
    unindex_user(hub, c);
}

void dr__hub_remove_conn(struct dr_hub *hub, struct rt_conn *c)
{
    dr__hub_detach(hub, c);
    if (c->prev) {
        c->prev->next = c->next;
    } else if (hub->conns == c) {
        hub->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    hub->nconns--;
    hub->nconns_tp[c->tp->id]--;
    update_gauges(hub);
}

size_t dr__hub_user_count(struct dr_hub *hub, const char *sub)
{
    size_t n = 0;
    for (struct rt_conn *c = dr__rt_map_get(&hub->users, sub); c; c = c->unext) {
        n++;
    }
    return n;
}

int dr__hub_index_user(struct dr_hub *hub, struct rt_conn *c, const char *sub)
{
    struct rt_conn *head;

    if (strlen(sub) >= sizeof(c->user_key)) {
        return DR_EINVAL;
    }
    if (dr__hub_user_count(hub, sub) >= hub->conf->max_per_user) {
        return DR_ETOOBIG;
    }
    head = dr__rt_map_get(&hub->users, sub);
    snprintf(c->user_key, sizeof(c->user_key), "%s", sub);
    c->uprev = NULL;
    c->unext = head;
    if (head) {
        head->uprev = c;
    }
    dr__rt_map_put(&hub->users, sub, c);
    return DR_OK;
}

void dr__hub_tell_user(struct dr_hub *hub, const char *sub, const char *json, struct rt_conn *skip)
{
    struct rt_conn **snap;
    size_t cnt = 0, len = strlen(json);

    /* sending may close a connection (a full queue), which takes it out of the user's list and
     * ends its unext chain: walk a snapshot */
    for (struct rt_conn *c = dr__rt_map_get(&hub->users, sub); c; c = c->unext) {
        cnt++;
    }
    snap = dr_xmalloc((cnt ? cnt : 1) * sizeof(*snap));
    cnt = 0;
    for (struct rt_conn *c = dr__rt_map_get(&hub->users, sub); c; c = c->unext) {
        snap[cnt++] = c;
        dr__rt_conn_ref(c);
    }
    for (size_t i = 0; i < cnt; i++) {
        if (snap[i] != skip && snap[i]->state == RT_CONN_OPEN) {
            /* the text as written: a seq above 2^53 through cJSON's double would change */
            dr__rt_conn_send_text(snap[i], json, len);
        }
        dr__rt_conn_unref(snap[i]);
    }
    free(snap);
}

/* ---- periodic work: heartbeats and deadlines ---- */

static void on_tick(uv_timer_t *t)
{
    struct dr_hub *hub = t->data;
    int64_t now = dr_mono_ms();
    int64_t wall_s = dr_now_ms() / 1000;
    int64_t leeway = hub->conf->leeway_s > 0 ? hub->conf->leeway_s : 0;
    struct rt_conn *c, *next;

    for (c = hub->conns; c; c = next) {
        next = c->next;
        dr__rt_conn_ref(c);
        if (c->state == RT_CONN_CLOSING && c->close_deadline_ms && now >= c->close_deadline_ms) {
            dr__rt_conn_abort(c);
        } else if (c->state == RT_CONN_AUTH && now - c->opened_ms >= hub->conf->auth_timeout_ms) {
            dr__rt_conn_close(c, 4001, "authentication timeout");
        } else if (c->state == RT_CONN_OPEN && c->claims->exp &&
                   wall_s >= c->claims->exp + leeway) {
            dr__rt_conn_close(c, 4001, "token expired");
        } else if (c->state == RT_CONN_OPEN && c->tp->id == RT_WS &&
                   now - c->last_rx_ms >= hub->conf->idle_timeout_ms) {
            dr__rt_conn_close(c, 1001, "idle timeout");
        } else if (c->state == RT_CONN_OPEN && now - c->last_hb_ms >= hub->conf->heartbeat_ms) {
            c->last_hb_ms = now;
            c->tp->heartbeat(c);
        }
        dr__rt_conn_unref(c); /* only c itself can have left the list or been freed */
    }
}

int dr__hub_init(struct dr_hub *hub, uv_loop_t *loop, struct rt_conf *conf, struct dr_db *db,
                 struct dr_jwt_keys *keys)
{
    int64_t tick;

    memset(hub, 0, sizeof(*hub));
    hub->loop = loop;
    hub->conf = conf;
    hub->db = db;
    hub->keys = keys;
    dr__rt_map_init(&hub->rooms);
    dr__rt_map_init(&hub->users);
    pthread_mutex_init(&hub->mu, NULL);
    hub->calls_tail = &hub->calls;
    uv_async_init(loop, &hub->async, drain);
    hub->async.data = hub;
    uv_timer_init(loop, &hub->tick);
    hub->tick.data = hub;
    tick = conf->heartbeat_ms / 4;
    if (conf->auth_timeout_ms / 4 < tick) {
        tick = conf->auth_timeout_ms / 4;
    }
    tick = tick < 20 ? 20 : tick > 1000 ? 1000 : tick;
    uv_timer_start(&hub->tick, on_tick, (uint64_t)tick, (uint64_t)tick);
    uv_unref((uv_handle_t *)&hub->tick);
    update_gauges(hub);
    return DR_OK;
}

void dr__hub_close_clients(struct dr_hub *hub)
{
    struct rt_conn *c, *next;

    hub->closing = 1;
    for (c = hub->conns; c; c = next) {
        next = c->next;
        dr__rt_conn_close(c, 1001, "server shutting down");
        dr__rt_conn_abort(c);
    }
}

int dr__hub_busy(struct dr_hub *hub)
{
    int busy;

    if (hub->stopping) {
        return 0;
    }
    pthread_mutex_lock(&hub->mu);
    busy = hub->ninq > 0 || hub->calls != NULL;
    pthread_mutex_unlock(&hub->mu);
    return busy;
}

void dr__hub_stop(struct dr_hub *hub)
{
    if (hub->stopping) {
        return;
    }
    dr__hub_close_clients(hub);
    hub->stopping = 1;
    pthread_mutex_lock(&hub->mu);
    hub->async_closed = 1;
    pthread_mutex_unlock(&hub->mu);
    uv_close((uv_handle_t *)&hub->async, NULL);
    uv_timer_stop(&hub->tick);
    uv_close((uv_handle_t *)&hub->tick, NULL);
}

void dr__hub_cleanup(struct dr_hub *hub)
{
    /* posted after the hub stopped: every thread that posts has stopped by now */
    pthread_mutex_lock(&hub->mu);
    struct hub_call *calls = take_calls(hub);
    pthread_mutex_unlock(&hub->mu);
    run_calls(calls);
    for (size_t i = 0; i < hub->ninq; i++) {
        dr_notification_unref(hub->inq[i]);
    }
    free(hub->inq);
    free(hub->fan_lat);
    dr__rt_map_cleanup(&hub->rooms);
    dr__rt_map_cleanup(&hub->users);
    pthread_mutex_destroy(&hub->mu);
}
