/*
 * The Redis bus (see redis_bus.h): hiredis 0.14 async on the loop thread through its libuv
 * adapter, with the timeouts hiredis lacks.
 *
 * Two connections: `pub` sends PUBLISH (and keep-alives), `sub` is subscribed to three channels:
 *   <channel>            notifications, the JSON of dr_notification_json (with "seq")
 *   <channel>:control    {"type":"gap","instance":..,"since":N,"rooms":[..]} after an outage
 *   <channel>:hb:<id>    this instance's keep-alive (a PUBLISH on pub must come back on sub)
 *
 * Exactly once: each notification is PUBLISHed once, by the instance that stored it, and Redis
 * hands every message once to every subscriber, this instance included. So the only message an
 * instance gets that it has delivered already is the echo of one it published itself (it
 * delivers that one here itself, see Order). Its echoes come back in the order it
 * published them (one connection publishes, the subscription gets messages in the order Redis
 * ran the PUBLISHes), so the seqs published on the current link whose echo is still due, kept
 * in that order, tell an echo apart from anything else without going by seq numbering.
 *
 * That matters because seqs are numbers of one store, and a store can be reset (a new empty
 * database numbers from 1 again). Seqs are store-wide, so one window of seen seqs covers every
 * producer and orders delivery; but a seq that is marked seen and is not an echo due (or a
 * local seq marked seen: a store never hands out a seq twice) proves the store was reset. The
 * window then starts again at that seq instead of dropping the new notifications as duplicates,
 * and the audit (below) starts again from seq 1. An audit that finds the store's newest seq below
 * what it audited before shows a reset too.
 *
 * Order: connections drop an event whose seq is not above the last one sent in its room (that is
 * how resume avoids duplicates), and a client resumes from the last seq it got (or the resume
 * point, below), so the hub must
 * get notifications in seq order: one delivered before a lower one would hide that one from a
 * client that reconnects in between. Redis keeps each publisher's order but interleaves
 * publishers by publish time, not by seq, and a lower seq stored elsewhere can still be on its
 * way when this instance stores a higher one. So every notification, received or stored here,
 * that is above a seq not seen yet waits up to reorder_window for the lower one; after that the
 * gap is taken as a seq that will never come (an insert that lost a race burns one; a lost one
 * is the audit's, below) and delivery goes on. While the link is down, what this instance
 * stores is delivered at once.
 *
 * Outages: while the link is down local delivery goes on and nothing is buffered. Notifications
 * stored elsewhere meanwhile are in the store: on recovery a query lists the seqs above the
 * point where the link was lost, and if one of them was never seen here, the connections in
 * the rooms concerned get {"type":"resync","since":N}. Notifications this instance could not
 * publish are announced on the control channel so the other instances do the same.
 *
 * Audit: a notification can also be stored and never published with the link up, when the
 * instance that stored it dies between its commit and its PUBLISH, or Redis loses a PUBLISH it
 * was sent. No later message tells anyone. So every audit_interval each instance reads the
 * store's newest seq, and at the next audit (reorder_window or more later) looks up the seqs up
 * to that one it has still not seen: those in the store were lost on the way, and the clients in
 * their rooms are told to resync (the others were burned: an insert that lost a race).
 *
 * Resume point (safe_point): a resync frame is lost when its connection dies at that moment,
 * and a client that resumes from the last seq it got would then move past the missing one for
 * good. So the hub puts in each event where the client may resume from: below the lowest seq
 * given up on and not audited yet, or, while the link is down and until the recovery is done,
 * the point where it was lost. When that point moves, the connections lagging behind it get a
 * {"type":"resume"} frame, after any resync it called for.
 */
#include "realtime/redis_bus.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/db.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

#define M_STATE     "dr_realtime_bus_state"
#define M_PUBLISHED "dr_realtime_bus_published_total"
#define M_RECEIVED  "dr_realtime_bus_received_total"
#define M_RECONNECT "dr_realtime_bus_reconnects_total"
#define M_RESYNC    "dr_realtime_bus_resyncs_total"
#define M_GAPS      "dr_realtime_bus_gaps_skipped_total"
#define M_LOST      "dr_realtime_bus_lost_total"

#define SEEN_BITS       (1 << 16) /* seqs remembered below the newest seen */
#define MAX_HELD        10000     /* notifications waiting for a lower seq */
#define MAX_OUTSTANDING 100000    /* PUBLISH commands without an answer yet */
#define MAX_GAP_ROOMS   64        /* rooms named in a resync; more means every connection */
#define CHECK_LIMIT     10000     /* rows the recovery query looks at */
#define AUDIT_MAX       256       /* unseen seqs one audit looks up */
#define AUDIT_SETTLE_MS 1000      /* a mark is audited this long after it was taken, at least */
#define BACKOFF_MIN_MS  100
#define TICK_MIN_MS     10
#define TICK_MAX_MS     250

enum bus_state { BUS_DOWN = 0, BUS_CONNECTING = 1, BUS_UP = 2 };
enum cmd_kind { CMD_AUTH, CMD_PING, CMD_PUBLISH, CMD_HB, CMD_GAP };

/* A notification waiting for a lower seq: from the bus (remote), or stored here. */
struct held {
    int64_t seq;
    int64_t arrived_ms;
    struct dr_notification *n;
    int remote;
};

struct roomset {
    char **v;
    size_t n;
    int all; /* too many to list: every room */
};

/* A store query on the thread pool: the recovery after an outage, or an audit. */
struct check {
    uv_work_t w;
    struct dr_redis_bus *b;
    int audit;
    int64_t since;           /* recovery: every seq above */
    int64_t want[AUDIT_MAX]; /* audit: the unseen seqs to look up */
    size_t nwant;
    int64_t upto;  /* audit: settled up to here once it is done */
    int64_t head;  /* audit: the store's newest seq */
    int64_t *seqs; /* rows found: seq and room */
    char **rooms;
    size_t n, cap;
    int err;
    uint64_t epoch; /* the bus's when the query was made: a reset since voids what it found */
};

/* A first-in first-out list of int64s, grown by doubling. */
struct i64ring {
    int64_t *v;
    size_t cap, head, n;
};

static void ring_push(struct i64ring *r, int64_t x)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        int64_t *v = dr_xmalloc(cap * sizeof(*v));
        for (size_t i = 0; i < r->n; i++) {
            v[i] = r->v[(r->head + i) % r->cap];
        }
        free(r->v);
        r->v = v;
        r->cap = cap;
        r->head = 0;
    }
    r->v[(r->head + r->n) % r->cap] = x;
    r->n++;
}

/* The i-th value from the oldest. */
static int64_t ring_at(const struct i64ring *r, size_t i)
{
    return r->v[(r->head + i) % r->cap];
}

/* Drops the k oldest values. */
static void ring_drop(struct i64ring *r, size_t k)
{
    k = k < r->n ? k : r->n;
    if (k) {
        r->head = (r->head + k) % r->cap;
        r->n -= k;
    }
}

struct dr_redis_bus {
    uv_loop_t *loop;
    struct dr_hub *hub;
    struct dr_db *db;

    /* settings */
    char *host;
    int port;
    char *user;     /* may be NULL */
    char *password; /* may be NULL; never logged */
    char *channel, *ctl_channel, *hb_channel;
    int64_t connect_timeout_ms, command_timeout_ms, ping_interval_ms, backoff_max_ms, reorder_ms,
        audit_ms;
    char instance[33];

    /* the link */
    enum bus_state state;
    int started;
    int stopping;
    redisAsyncContext *pub, *sub;
    int pub_ready;
    int sub_acks; /* channels confirmed by SUBSCRIBE */
    uint64_t gen; /* connection attempt; a stale DNS answer is ignored */
    int resolving;
    uint64_t gai_gen;
    uv_getaddrinfo_t gai;
    int64_t deadline_ms; /* connecting: handshake deadline */
    int64_t retry_at_ms;
    int64_t backoff_ms;
    int64_t down_since_ms;
    unsigned attempts;
    int ever_up;
    struct i64ring sent; /* send times of commands on pub, in order */
    int64_t hb_sent_ms; /* keep-alive in flight since (0: none) */
    int64_t hb_last_ms;
    uv_timer_t tick;
    /* notifications that arrive in one turn of the loop go out in one write per connection: a
     * hub batch opened with the first, closed by this check handle after the loop's I/O */
    uv_check_t flush;
    int batching;

    /* seqs PUBLISHed on the current link whose echo has not come back yet, in publish order */
    struct i64ring echo;

    /* seen seqs and reordering */
    uint64_t seen[SEEN_BITS / 64];
    int64_t hi;           /* newest seq seen */
    int64_t next;         /* lowest seq neither seen nor given up on */
    int64_t delivered_hi; /* newest seq handed to the hub (local or received) */
    int64_t reset_hi;     /* delivered_hi when the store was last found reset (0: never) */
    uint64_t epoch;       /* numberings: counts the store resets found */
    struct held *held;
    size_t nheld, capheld;

    /* recovery */
    int64_t gap_since;     /* remote notifications above this may have been missed (-1: none) */
    int64_t dropped_since; /* local ones above this went unpublished (-1: none) */
    struct roomset dropped_rooms;
    struct check *check; /* recovery or audit query in flight */
    /* peers' gap announcements that came during this instance's own recovery: answered with
     * it, in one resync (a client that reconnects on the first of two would miss the second) */
    int64_t peer_since; /* -1: none */
    struct roomset peer_rooms;
    int64_t audited;     /* every seq up to here was seen, looked up or resynced */
    int64_t gap_lo;      /* the lowest seq given up on and not audited yet (0: none) */
    int64_t safe_told;   /* the safe point the hub was last told of */
    int64_t mark;        /* the store's newest seq at the last audit (-1: none yet) */
    int64_t mark_ms, audit_due_ms;
};

/* ---- small helpers ---- */

static void set_state(struct dr_redis_bus *b, enum bus_state s)
{
    b->state = s;
    dr_metrics_set(M_STATE, "", (double)s);
}

static void roomset_add(struct roomset *rs, const char *room)
{
    if (rs->all || !room) {
        return;
    }
    for (size_t i = 0; i < rs->n; i++) {
        if (strcmp(rs->v[i], room) == 0) {
            return;
        }
    }
    if (rs->n == MAX_GAP_ROOMS) {
        rs->all = 1;
        return;
    }
    rs->v = dr_xrealloc(rs->v, (rs->n + 1) * sizeof(*rs->v));
    rs->v[rs->n++] = dr_xstrdup(room);
}

/* Adds src's rooms to dst. */
static void roomset_merge(struct roomset *dst, const struct roomset *src)
{
    dst->all |= src->all;
    for (size_t i = 0; i < src->n; i++) {
        roomset_add(dst, src->v[i]);
    }
}

static void roomset_clear(struct roomset *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        free(rs->v[i]);
    }
    free(rs->v);
    memset(rs, 0, sizeof(*rs));
}

/* ---- seen seqs ---- */

static int seen_get(const struct dr_redis_bus *b, int64_t seq)
{
    uint64_t i;

    if (seq > b->hi) {
        return 0;
    }
    if (seq <= b->hi - SEEN_BITS) {
        return 1; /* older than the window: taken as seen */
    }
    i = (uint64_t)seq % SEEN_BITS;
    return (int)((b->seen[i / 64] >> (i % 64)) & 1);
}

static void seen_bit(struct dr_redis_bus *b, int64_t seq, int on)
{
    uint64_t i = (uint64_t)seq % SEEN_BITS;
    if (on) {
        b->seen[i / 64] |= (uint64_t)1 << (i % 64);
    } else {
        b->seen[i / 64] &= ~((uint64_t)1 << (i % 64));
    }
}

static void seen_set(struct dr_redis_bus *b, int64_t seq)
{
    if (seq <= b->hi - SEEN_BITS) {
        return;
    }
    if (seq > b->hi) {
        if (seq - b->hi >= SEEN_BITS) {
            memset(b->seen, 0, sizeof(b->seen));
        } else {
            for (int64_t s = b->hi + 1; s <= seq; s++) {
                seen_bit(b, s, 0);
            }
        }
        b->hi = seq;
    }
    seen_bit(b, seq, 1);
}

/* The lowest seq in [from, to) not seen, or 0. */
static int64_t first_unseen(const struct dr_redis_bus *b, int64_t from, int64_t to)
{
    if (from <= b->hi - SEEN_BITS) {
        from = b->hi - SEEN_BITS + 1;
    }
    for (int64_t s = from; s < to; s++) {
        if (!seen_get(b, s)) {
            return s;
        }
    }
    return 0;
}

/*
 * The safe point (dr__hub_safe): every seq up to it has been delivered here, or was given up on
 * and then looked up by an audit (a lost one's rooms resynced), or by the recovery after an
 * outage. Below next everything was delivered or given up on; a seq given up on counts once it
 * is audited (gap_lo); while the link is down, and until the recovery is done, it stays where
 * it was when the link was lost, however far local delivery goes.
 */
static int64_t safe_point(const struct dr_redis_bus *b)
{
    int64_t w = b->next - 1;

    if (b->gap_since >= 0 && b->gap_since < w) {
        w = b->gap_since;
    }
    if (b->check && !b->check->audit && b->check->since < w) {
        w = b->check->since;
    }
    if (b->audit_ms > 0 && b->gap_lo > 0 && b->gap_lo - 1 < w) {
        w = b->gap_lo - 1;
    }
    return w;
}

static int64_t bus_safe(void *ctx)
{
    return safe_point(ctx);
}

/* Tells the hub when the safe point moved, so that connections lagging behind it hear. */
static void note_safe(struct dr_redis_bus *b)
{
    int64_t w = safe_point(b);

    if (w != b->safe_told) {
        b->safe_told = w;
        dr__hub_safe_moved(b->hub);
    }
}

static void flush_held(struct dr_redis_bus *b);

/*
 * The store was reset (see the top of this file): its numbering starts again from 1, and seq is
 * the lowest seq not known to be handed out yet. What is held belongs to the old numbering and
 * goes out now; the window restarts just below seq. What was seen or audited was of the old
 * numbering: the new store's seqs below seq were never seen here, and the audit looks them up
 * from 1 (one stored by an instance that died before its PUBLISH would be lost for good).
 * delivered_hi is kept: a connection that went past a seq in the old numbering would drop the
 * new notifications as duplicates, so deliver() tells it to resync from the start of the new
 * numbering instead (resync_late).
 */
static void restart_seqs(struct dr_redis_bus *b, int64_t seq)
{
    flush_held(b);
    memset(b->seen, 0, sizeof(b->seen));
    b->hi = seq - 1;
    b->next = seq;
    b->reset_hi = b->delivered_hi > b->reset_hi ? b->delivered_hi : b->reset_hi;
    b->epoch++;
    b->audited = 0;
    b->mark = -1;
    b->gap_lo = first_unseen(b, 1, seq);
    if (b->gap_since >= 0) {
        b->gap_since = 0; /* an outage is to be checked: every seq of the new store counts */
    }
}

/* ---- echoes of this instance's own notifications ---- */

static int echo_push(struct dr_redis_bus *b, int64_t seq)
{
    if (b->echo.n >= MAX_OUTSTANDING) {
        return DR_ETOOBIG;
    }
    ring_push(&b->echo, seq);
    return DR_OK;
}

/*
 * 1 when seq is the echo of a notification this instance published, which is then taken off
 * the list. Echoes come in publish order: the ones due before it will not come (their PUBLISH
 * failed) and go too.
 */
static int echo_take(struct dr_redis_bus *b, int64_t seq)
{
    for (size_t i = 0; i < b->echo.n; i++) {
        if (ring_at(&b->echo, i) == seq) {
            ring_drop(&b->echo, i + 1);
            return 1;
        }
    }
    return 0;
}

/* ---- reordering ---- */

/*
 * seq arrives after one as high or higher was delivered here: a connection whose room already
 * went past it drops it as a duplicate. Those connections are told to resync from just below
 * it, or, when what they got may be of a numbering before a store reset, from the start.
 */
static void resync_late(struct dr_redis_bus *b, int64_t seq, const struct held *h)
{
    int64_t since = seq <= b->reset_hi ? 0 : seq - 1;
    int told = dr__hub_resync_past(b->hub, dr_notification_room(h->n), seq, since);

    if (told) {
        dr_metrics_inc(M_RESYNC, "", 1);
        DR_DEBUG("redis_bus", "late notification: clients told to resync",
                 "seq=%lld connections=%d", (long long)seq, told);
    }
}

/* Delivers h here and drops its reference. */
static void deliver(struct dr_redis_bus *b, struct held *h)
{
    if (h->seq <= b->delivered_hi) { /* equal: after a store reset */
        resync_late(b, h->seq, h);
    } else {
        b->delivered_hi = h->seq;
    }
    dr_hub_publish_local(b->hub, h->n);
    if (h->remote) {
        dr_metrics_inc(M_RECEIVED, "outcome=\"delivered\"", 1);
    }
    dr_notification_unref(h->n);
}

/* Moves next past every seq seen, then delivers the held notifications below it in order. */
static void release(struct dr_redis_bus *b)
{
    size_t k = 0;
    struct held *out;

    if (b->next <= b->hi - SEEN_BITS) {
        b->next = b->hi - SEEN_BITS + 1;
    }
    while (b->next <= b->hi && seen_get(b, b->next)) {
        b->next++;
    }
    while (k < b->nheld && b->held[k].seq < b->next) {
        k++;
    }
    if (k == 0) {
        return;
    }
    /* take them off the list first: delivery must not see a half-updated array */
    out = dr_xmalloc(k * sizeof(*out));
    memcpy(out, b->held, k * sizeof(*out));
    memmove(b->held, b->held + k, (b->nheld - k) * sizeof(*b->held));
    b->nheld -= k;
    for (size_t i = 0; i < k; i++) {
        deliver(b, &out[i]);
    }
    free(out);
}

/* Gives up waiting for the seqs below seq. */
static void skip_to(struct dr_redis_bus *b, int64_t seq)
{
    if (seq > b->next) {
        dr_metrics_inc(M_GAPS, "", 1);
        if (b->gap_lo == 0) { /* else a lower one is waiting for its audit already */
            b->gap_lo = first_unseen(b, b->next > b->audited ? b->next : b->audited + 1, seq);
        }
        b->next = seq;
    }
    release(b);
}

/* Holds n (a reference taken), received from the bus when remote, until the seqs below its seq
 * are settled. */
static void hold(struct dr_redis_bus *b, struct dr_notification *n, int remote)
{
    int64_t seq = dr_notification_seq(n);
    size_t lo = 0, hi = b->nheld;

    if (b->nheld == MAX_HELD) {
        skip_to(b, b->held[0].seq);
    }
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (b->held[mid].seq < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (b->nheld == b->capheld) {
        b->capheld = b->capheld ? b->capheld * 2 : 16;
        b->held = dr_xrealloc(b->held, b->capheld * sizeof(*b->held));
    }
    memmove(b->held + lo + 1, b->held + lo, (b->nheld - lo) * sizeof(*b->held));
    memset(&b->held[lo], 0, sizeof(b->held[lo]));
    b->held[lo].seq = seq;
    b->held[lo].arrived_ms = dr_mono_ms();
    b->held[lo].n = dr_notification_ref(n);
    b->held[lo].remote = remote;
    b->nheld++;
}

static void flush_held(struct dr_redis_bus *b)
{
    while (b->nheld) {
        skip_to(b, b->held[0].seq);
    }
}

/*
 * A message on the notifications channel. It is read first: one that is not a notification
 * (anyone may PUBLISH on the channel) must not count as a seq seen, taken as an echo, waited
 * for or delivered, or its seq, however high, would move the window and the audit with it.
 */
static void on_notification(struct dr_redis_bus *b, const char *json, size_t len)
{
    struct dr_notification *n =
        len <= DR_NOTIFICATION_MAX_BYTES + 64 ? dr__hub_read_bus(json, len) : NULL;
    int64_t seq;

    if (!n) {
        dr_metrics_inc(M_RECEIVED, "outcome=\"invalid\"", 1);
        DR_WARN("redis_bus", "unreadable notification from the bus dropped", "bytes=%zu", len);
        return;
    }
    seq = dr_notification_seq(n);
    if (echo_take(b, seq)) {
        dr_metrics_inc(M_RECEIVED, "outcome=\"duplicate\"", 1);
    } else {
        if (seen_get(b, seq)) {
            DR_WARN("redis_bus",
                    "notification seq seen before: the store was reset, seqs start again",
                    "seq=%lld newest_seen=%lld", (long long)seq, (long long)b->hi);
            restart_seqs(b, seq);
        }
        seen_set(b, seq);
        if (seq < b->next) {
            /* its gap was given up on: late, but better than never */
            struct held late = {.seq = seq, .n = dr_notification_ref(n), .remote = 1};
            deliver(b, &late);
        } else {
            hold(b, n, 1);
            release(b);
        }
    }
    dr_notification_unref(n);
}

/* ---- resync ---- */

static int conn_in_rooms(const struct rt_conn *c, const struct roomset *rs)
{
    if (rs->all) {
        return 1;
    }
    for (size_t i = 0; i < c->nsubs; i++) {
        for (size_t k = 0; k < rs->n; k++) {
            if (strcmp(c->subs[i].room, rs->v[k]) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

/* Tells the connections in rs that they may have missed notifications above since. */
static void resync(struct dr_redis_bus *b, int64_t since, const struct roomset *rs, const char *why)
{
    struct rt_conn *c, *next;
    cJSON *o = cJSON_CreateObject();
    size_t n = 0;

    cJSON_AddStringToObject(o, "type", "resync");
    dr_json_add_i64(o, "since", since);
    for (c = b->hub->conns; c; c = next) {
        next = c->next;
        if (c->state == RT_CONN_OPEN && conn_in_rooms(c, rs)) {
            dr__rt_conn_ref(c);
            dr__rt_conn_send_json(c, o);
            dr__rt_conn_unref(c); /* only c itself can have left the list */
            n++;
        }
    }
    cJSON_Delete(o);
    dr_metrics_inc(M_RESYNC, "", 1);
    DR_INFO("redis_bus", "clients told to resync", "why=%s since=%lld rooms=%s connections=%zu",
            why, (long long)since, rs->all ? "all" : "listed", n);
}

static void on_control(struct dr_redis_bus *b, const char *json, size_t len)
{
    cJSON *o = dr_json_parse(json, len);
    const char *type = dr_json_str(o, "type");
    const char *inst = dr_json_str(o, "instance");
    const cJSON *rooms = cJSON_GetObjectItemCaseSensitive(o, "rooms");
    const cJSON *r;
    struct roomset rs = {0};
    int64_t since;

    /* since to the unit: cJSON keeps numbers as doubles */
    if (!type || strcmp(type, "gap") != 0 || !inst ||
        dr_json_i64_exact(json, len, "since", &since) != DR_OK || since < 0) {
        dr_metrics_inc(M_RECEIVED, "outcome=\"invalid\"", 1);
        goto out;
    }
    if (strcmp(inst, b->instance) == 0) {
        goto out; /* our own announcement */
    }
    rs.all = !cJSON_IsArray(rooms);
    cJSON_ArrayForEach(r, rooms)
    {
        if (cJSON_IsString(r) && dr_room_valid(r->valuestring)) {
            roomset_add(&rs, r->valuestring);
        }
    }
    if (b->gap_since >= 0 || (b->check && !b->check->audit)) {
        /* this instance's own recovery is due or under way: it answers for both */
        if (b->peer_since < 0 || since < b->peer_since) {
            b->peer_since = since;
        }
        roomset_merge(&b->peer_rooms, &rs);
    } else {
        resync(b, since, &rs, "peer_gap");
    }
out:
    roomset_clear(&rs);
    cJSON_Delete(o);
}

/* ---- recovery query ---- */

static int check_row(void *ctx, const struct dr_db_row *row)
{
    struct check *ck = ctx;
    const char *room = dr_db_row_text(row, 1);

    if (ck->n == ck->cap) {
        ck->cap = ck->cap ? ck->cap * 2 : 64;
        ck->seqs = dr_xrealloc(ck->seqs, ck->cap * sizeof(*ck->seqs));
        ck->rooms = dr_xrealloc(ck->rooms, ck->cap * sizeof(*ck->rooms));
    }
    ck->seqs[ck->n] = dr_db_row_int(row, 0);
    ck->rooms[ck->n] = dr_xstrdup(room ? room : "");
    ck->n++;
    return 0;
}

static int get_head(void *ctx, const struct dr_db_row *row)
{
    *(int64_t *)ctx = dr_db_row_int(row, 0);
    return 0;
}

static void audit_work(struct check *ck)
{
    struct dr_db_val p[AUDIT_MAX];
    char *sql;

    ck->err = dr_db_exec(ck->b->db, "SELECT COALESCE(MAX(seq), 0) FROM rt_notifications", NULL, 0,
                         get_head, &ck->head, NULL);
    if (ck->err || ck->nwant == 0) {
        return;
    }
    for (size_t i = 0; i < ck->nwant; i++) {
        p[i] = DR_DB_INTV(ck->want[i]);
    }
    sql = dr_db_rows_sql("SELECT seq, room FROM rt_notifications WHERE seq IN (", "?", ck->nwant,
                         ") ORDER BY seq");
    ck->err = dr_db_exec(ck->b->db, sql, p, ck->nwant, check_row, ck, NULL);
    free(sql);
}

static void check_work(uv_work_t *w)
{
    struct check *ck = w->data;
    struct dr_db_val p[2] = {DR_DB_INTV(ck->since), DR_DB_INTV(CHECK_LIMIT)};

    if (ck->audit) {
        audit_work(ck);
        return;
    }
    ck->err = dr_db_exec(ck->b->db,
                         "SELECT seq, room FROM rt_notifications WHERE seq > $1"
                         " ORDER BY seq LIMIT $2",
                         p, 2, check_row, ck, NULL);
}

static void audit_done(struct dr_redis_bus *b, struct check *ck)
{
    struct roomset rs = {0};
    int64_t now = dr_mono_ms(), lo = 0;
    size_t lost = 0;

    b->audit_due_ms = now + b->audit_ms;
    if (ck->err) {
        DR_WARN("redis_bus", "audit query failed, trying again", "error=\"%s\"",
                dr_strerror(ck->err));
        return;
    }
    if (ck->epoch != b->epoch) {
        return; /* the store was reset meanwhile: the seqs looked up were of the old numbering */
    }
    if (ck->head < b->audited || ck->head < b->mark) {
        /* both were in the store: the reset shows here before a seq of the new numbering came
         * over the bus as one seen before */
        DR_WARN("redis_bus", "the store's newest seq went down: the store was reset",
                "head=%lld audited=%lld mark=%lld", (long long)ck->head, (long long)b->audited,
                (long long)b->mark);
        restart_seqs(b, ck->head + 1);
        note_safe(b);
        return;
    }
    for (size_t i = 0; i < ck->n; i++) {
        if (!seen_get(b, ck->seqs[i])) { /* still: it did not come late meanwhile */
            lo = lost++ ? lo : ck->seqs[i];
            roomset_add(&rs, ck->rooms[i]);
        }
    }
    if (lost) {
        dr_metrics_inc(M_LOST, "", (double)lost);
        DR_WARN("redis_bus", "notifications stored but never received over the bus: resyncing",
                "first_seq=%lld count=%zu", (long long)lo, lost);
        resync(b, lo - 1, &rs, "bus_lost");
    }
    roomset_clear(&rs);
    if (ck->upto > b->audited) {
        b->audited = ck->upto;
    }
    if (b->mark <= b->audited) { /* audited up to the mark: the next one */
        b->mark = ck->head;
        b->mark_ms = now;
    }
    if (b->gap_lo > 0 && b->gap_lo <= b->audited) {
        b->gap_lo = first_unseen(b, b->audited + 1, b->next);
    }
    note_safe(b);
}

static void check_done(uv_work_t *w, int status)
{
    struct check *ck = w->data;
    struct dr_redis_bus *b = ck->b;
    struct roomset rs = {0};
    size_t missed = 0;
    int64_t since = ck->since;

    b->check = NULL;
    if (ck->audit) {
        if (!b->stopping && status == 0) {
            audit_done(b, ck);
        }
    } else if (!b->stopping && status == 0) {
        if (ck->err) {
            rs.all = 1;
            DR_WARN("redis_bus", "recovery query failed: resyncing every client", "error=\"%s\"",
                    dr_strerror(ck->err));
        } else {
            for (size_t i = 0; i < ck->n; i++) {
                if (!seen_get(b, ck->seqs[i])) {
                    missed++;
                    roomset_add(&rs, ck->rooms[i]);
                }
            }
            if (ck->n == CHECK_LIMIT) {
                rs.all = 1; /* there may be more than we looked at */
            }
        }
        if (ck->err || missed || rs.all) {
            DR_INFO("redis_bus", "notifications missed while the bus was down",
                    "since=%lld missed=%zu", (long long)ck->since, missed);
        }
        if (b->peer_since >= 0) {
            /* and what the peers announced meanwhile, in the same resync */
            since = b->peer_since < since ? b->peer_since : since;
            roomset_merge(&rs, &b->peer_rooms);
            b->peer_since = -1;
            roomset_clear(&b->peer_rooms);
        }
        if (ck->err || missed || rs.all || rs.n) {
            resync(b, since, &rs, "bus_outage");
        }
        if (!ck->err && ck->epoch == b->epoch && ck->n > 0 && ck->seqs[ck->n - 1] > b->audited) {
            b->audited = ck->seqs[ck->n - 1]; /* resynced here: no audit of its own */
        }
        /* what is still missing below next (the link came back past it) waits for an audit */
        b->gap_lo = first_unseen(b, b->audited + 1, b->next);
        note_safe(b);
    }
    roomset_clear(&rs);
    for (size_t i = 0; i < ck->n; i++) {
        free(ck->rooms[i]);
    }
    free(ck->rooms);
    free(ck->seqs);
    free(ck);
}

/* Loop thread, link up, no query in flight: looks up the seqs up to the last mark still unseen
 * a while after it was taken, and takes a new mark. The while: the longer of reorder_window and
 * AUDIT_SETTLE_MS, so that a busy loop still handing its own notifications to the bus, or a
 * slow Redis, does not pass for a loss. */
static void start_audit(struct dr_redis_bus *b, int64_t now)
{
    struct check *ck = dr_xcalloc(1, sizeof(*ck));
    int64_t settle = b->reorder_ms > AUDIT_SETTLE_MS ? b->reorder_ms : AUDIT_SETTLE_MS;

    ck->b = b;
    ck->audit = 1;
    ck->epoch = b->epoch;
    ck->upto = b->audited;
    if (b->mark > b->audited && now - b->mark_ms >= settle) {
        int64_t s = b->audited + 1;
        if (s <= b->hi - SEEN_BITS) {
            s = b->hi - SEEN_BITS + 1; /* older ones count as seen (seen_get) */
        }
        for (; s <= b->mark && ck->nwant < AUDIT_MAX; s++) {
            if (!seen_get(b, s)) {
                ck->want[ck->nwant++] = s;
            }
        }
        /* no further than the mark: past it, seqs the store had not handed out yet */
        ck->upto = s - 1 < b->mark ? s - 1 : b->mark;
    }
    ck->w.data = ck;
    if (uv_queue_work(b->loop, &ck->w, check_work, check_done) != 0) {
        free(ck);
        b->audit_due_ms = now + b->audit_ms;
        return;
    }
    b->check = ck;
}

static void start_check(struct dr_redis_bus *b)
{
    struct check *ck;

    if (b->check || b->gap_since < 0) {
        return;
    }
    ck = dr_xcalloc(1, sizeof(*ck));
    ck->b = b;
    ck->epoch = b->epoch;
    ck->since = b->gap_since;
    ck->w.data = ck;
    if (uv_queue_work(b->loop, &ck->w, check_work, check_done) != 0) {
        struct roomset all = {.all = 1};
        resync(b, b->peer_since >= 0 && b->peer_since < ck->since ? b->peer_since : ck->since, &all,
               "bus_outage");
        b->peer_since = -1;
        roomset_clear(&b->peer_rooms);
        free(ck);
    } else {
        b->check = ck;
    }
    b->gap_since = -1;
}

/* ---- commands on the pub connection ---- */

static void on_pub_reply(redisAsyncContext *ac, void *reply, void *privdata);

static int send_cmd(struct dr_redis_bus *b, enum cmd_kind kind, const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (!b->pub || b->sent.n >= MAX_OUTSTANDING) {
        return DR_EUNAVAIL;
    }
    va_start(ap, fmt);
    rc = redisvAsyncCommand(b->pub, on_pub_reply, (void *)(intptr_t)kind, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        return DR_EIO;
    }
    ring_push(&b->sent, dr_mono_ms());
    return DR_OK;
}

/* ---- the link ---- */

static void link_fail(struct dr_redis_bus *b, const char *why, const char *detail);

/* PUBLISHes a notification stored here, or counts it dropped for the announcement. */
static void publish_one(struct dr_redis_bus *b, int64_t seq, const char *json, size_t len)
{
    if (b->state == BUS_UP && echo_push(b, seq) != DR_OK) {
        link_fail(b, "echoes of published notifications not coming back", NULL);
    }
    if (b->state == BUS_UP) {
        /* its echo is a duplicate: this instance delivers it itself */
        if (send_cmd(b, CMD_PUBLISH, "PUBLISH %s %b", b->channel, json, len) == DR_OK) {
            dr_metrics_inc(M_PUBLISHED, "outcome=\"sent\"", 1);
            return;
        }
        b->echo.n--; /* the one just pushed: no echo will come */
    }
    dr_metrics_inc(M_PUBLISHED, "outcome=\"dropped\"", 1);
    if (b->dropped_since < 0 || seq - 1 < b->dropped_since) {
        b->dropped_since = seq - 1;
    }
    if (!b->dropped_rooms.all) {
        cJSON *o = dr_json_parse(json, len);
        const char *room = dr_json_str(o, "room");
        if (room) {
            roomset_add(&b->dropped_rooms, room);
        } else {
            b->dropped_rooms.all = 1;
        }
        cJSON_Delete(o);
    }
}

static void publish_gap(struct dr_redis_bus *b)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    cJSON_AddStringToObject(o, "type", "gap");
    cJSON_AddStringToObject(o, "instance", b->instance);
    dr_json_add_i64(o, "since", b->dropped_since);
    if (!b->dropped_rooms.all) {
        cJSON *arr = cJSON_AddArrayToObject(o, "rooms");
        for (size_t i = 0; i < b->dropped_rooms.n; i++) {
            cJSON_AddItemToArray(arr, cJSON_CreateString(b->dropped_rooms.v[i]));
        }
    }
    s = dr_json_print(o);
    if (send_cmd(b, CMD_GAP, "PUBLISH %s %b", b->ctl_channel, s, strlen(s)) == DR_OK) {
        DR_INFO("redis_bus", "announced notifications not published while the bus was down",
                "since=%lld", (long long)b->dropped_since);
        b->dropped_since = -1;
        roomset_clear(&b->dropped_rooms);
    }
    free(s);
    cJSON_Delete(o);
}

static void go_up(struct dr_redis_bus *b)
{
    int64_t now = dr_mono_ms();

    set_state(b, BUS_UP);
    if (b->ever_up) {
        dr_metrics_inc(M_RECONNECT, "", 1);
        DR_INFO("redis_bus", "redis bus reconnected", "host=%s port=%d attempts=%u down_ms=%lld",
                b->host, b->port, b->attempts, (long long)(now - b->down_since_ms));
    } else {
        DR_INFO("redis_bus", "redis bus up", "host=%s port=%d channel=%s attempts=%u", b->host,
                b->port, b->channel, b->attempts);
    }
    b->ever_up = 1;
    b->attempts = 0;
    b->backoff_ms = BACKOFF_MIN_MS;
    b->hb_last_ms = now;
    b->hb_sent_ms = 0;
    /* what was lost while down is the recovery query's business: do not wait for it */
    b->next = b->hi + 1;
    release(b); /* what arrived while the handshake finished */
    if (b->dropped_since >= 0) {
        publish_gap(b);
    }
    start_check(b);
}

static void maybe_up(struct dr_redis_bus *b)
{
    if (b->state == BUS_CONNECTING && b->pub_ready && b->sub_acks >= 3) {
        go_up(b);
    }
}

static void on_pub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct dr_redis_bus *b = ac->data;
    redisReply *r = reply;
    enum cmd_kind kind = (enum cmd_kind)(intptr_t)privdata;

    if (!b || ac != b->pub) {
        return; /* a connection being dropped */
    }
    ring_drop(&b->sent, 1);
    if (!r) {
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (kind == CMD_AUTH || kind == CMD_PING) {
            link_fail(b, kind == CMD_AUTH ? "authentication refused" : "PING refused", r->str);
        } else {
            dr_metrics_inc(M_PUBLISHED, "outcome=\"error\"", 1);
            DR_WARN("redis_bus", "PUBLISH refused", "error=\"%.200s\"", r->str);
        }
        return;
    }
    if (kind == CMD_PING) {
        b->pub_ready = 1;
        maybe_up(b);
    } else if (kind == CMD_HB && r->type == REDIS_REPLY_INTEGER && r->integer < 1) {
        link_fail(b, "subscription lost", NULL);
    }
}

static void end_batch(struct dr_redis_bus *b)
{
    if (b->batching) {
        b->batching = 0;
        uv_check_stop(&b->flush);
        dr__hub_batch_end(b->hub);
    }
}

static void on_flush(uv_check_t *h)
{
    end_batch(h->data);
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct dr_redis_bus *b = ac->data;
    redisReply *r = reply, *kind, *ch, *payload;

    if (!b || ac != b->sub || !r) {
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        link_fail(b, "subscriber connection refused a command", r->str);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
        return; /* the AUTH answer */
    }
    kind = r->element[0];
    ch = r->element[1];
    payload = r->element[2];
    if (kind->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING) {
        return;
    }
    if (strcasecmp(kind->str, "subscribe") == 0) {
        b->sub_acks++;
        maybe_up(b);
        return;
    }
    if (strcasecmp(kind->str, "message") != 0 || payload->type != REDIS_REPLY_STRING) {
        return;
    }
    if (strcmp(ch->str, b->channel) == 0) {
        if (!b->batching && b->started && !b->stopping) {
            b->batching = 1;
            dr__hub_batch_begin(b->hub);
            uv_check_start(&b->flush, on_flush);
        }
        on_notification(b, payload->str, payload->len);
    } else if (strcmp(ch->str, b->hb_channel) == 0) {
        b->hb_sent_ms = 0;
    } else if (strcmp(ch->str, b->ctl_channel) == 0) {
        on_control(b, payload->str, payload->len);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct dr_redis_bus *b = ac->data;

    if (!b || status == REDIS_OK || (ac != b->pub && ac != b->sub)) {
        return;
    }
    /* hiredis frees ac when this returns */
    if (ac == b->pub) {
        b->pub = NULL;
    } else {
        b->sub = NULL;
    }
    link_fail(b, "connect failed", ac->errstr);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct dr_redis_bus *b = ac->data;

    if (!b || (ac != b->pub && ac != b->sub)) {
        return;
    }
    if (ac == b->pub) {
        b->pub = NULL;
    } else {
        b->sub = NULL;
    }
    link_fail(b, "connection lost", status == REDIS_OK ? "closed" : ac->errstr);
}

static redisAsyncContext *open_ctx(struct dr_redis_bus *b, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, b->port);

    if (!ac) {
        return NULL;
    }
    if (ac->err) {
        DR_DEBUG("redis_bus", "connect failed", "host=%s port=%d error=\"%s\"", b->host, b->port,
                 ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = b;
    if (redisLibuvAttach(ac, b->loop) != REDIS_OK) {
        ac->data = NULL;
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static void open_link(struct dr_redis_bus *b, const char *ip)
{
    int rc = REDIS_OK;

    b->pub = open_ctx(b, ip);
    b->sub = b->pub ? open_ctx(b, ip) : NULL;
    if (!b->pub || !b->sub) {
        link_fail(b, "connect failed", NULL);
        return;
    }
    if (b->password && b->user) {
        send_cmd(b, CMD_AUTH, "AUTH %s %s", b->user, b->password);
        rc = redisAsyncCommand(b->sub, on_sub_reply, NULL, "AUTH %s %s", b->user, b->password);
    } else if (b->password) {
        send_cmd(b, CMD_AUTH, "AUTH %s", b->password);
        rc = redisAsyncCommand(b->sub, on_sub_reply, NULL, "AUTH %s", b->password);
    }
    /* answers come in order: PING answered means AUTH was accepted */
    if (rc != REDIS_OK || send_cmd(b, CMD_PING, "PING") != DR_OK ||
        redisAsyncCommand(b->sub, on_sub_reply, NULL, "SUBSCRIBE %s %s %s", b->channel,
                          b->ctl_channel, b->hb_channel) != REDIS_OK) {
        link_fail(b, "cannot queue the handshake", NULL);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct dr_redis_bus *b = req->data;
    char ip[64] = "";

    b->resolving = 0;
    if (!b->stopping && b->gai_gen == b->gen && b->state == BUS_CONNECTING) {
        if (status == 0 && res && res->ai_family == AF_INET) {
            uv_ip4_name((const struct sockaddr_in *)res->ai_addr, ip, sizeof(ip));
        } else if (status == 0 && res && res->ai_family == AF_INET6) {
            uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, ip, sizeof(ip));
        }
        if (ip[0]) {
            open_link(b, ip);
        } else {
            link_fail(b, "cannot resolve the host", status ? uv_strerror(status) : NULL);
        }
    }
    uv_freeaddrinfo(res);
}

static void start_connect(struct dr_redis_bus *b)
{
    struct in6_addr a6;
    struct in_addr a4;
    struct addrinfo hints;

    set_state(b, BUS_CONNECTING);
    b->gen++;
    b->attempts++;
    b->deadline_ms = dr_mono_ms() + b->connect_timeout_ms;
    b->pub_ready = 0;
    b->sub_acks = 0;
    if (uv_inet_pton(AF_INET, b->host, &a4) == 0 || uv_inet_pton(AF_INET6, b->host, &a6) == 0) {
        open_link(b, b->host);
        return;
    }
    /* hiredis would resolve a name with a blocking getaddrinfo on the loop thread */
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    b->gai.data = b;
    b->gai_gen = b->gen;
    if (uv_getaddrinfo(b->loop, &b->gai, on_resolved, b->host, NULL, &hints) != 0) {
        link_fail(b, "cannot resolve the host", NULL);
        return;
    }
    b->resolving = 1;
}

/*
 * Drops both connections and schedules a new attempt. May run inside a hiredis callback of
 * either connection: redisAsyncFree then only marks it, and hiredis frees it on return.
 */
static void link_fail(struct dr_redis_bus *b, const char *why, const char *detail)
{
    redisAsyncContext *p = b->pub, *s = b->sub;
    int64_t now = dr_mono_ms(), delay;

    b->pub = b->sub = NULL; /* their callbacks, run while freeing, see they are stale */
    if (p) {
        redisAsyncFree(p);
    }
    if (s) {
        redisAsyncFree(s);
    }
    b->gen++;
    ring_drop(&b->sent, b->sent.n);
    ring_drop(&b->echo,
              b->echo.n); /* a new subscription gets no echo of the old link's PUBLISHes */
    b->pub_ready = 0;
    b->sub_acks = 0;
    b->hb_sent_ms = 0;
    if (b->stopping) {
        return;
    }
    if (b->state == BUS_UP) {
        DR_WARN("redis_bus", "redis bus down: local delivery continues, reconnecting",
                "host=%s port=%d reason=\"%s\" detail=\"%.200s\"", b->host, b->port, why,
                detail ? detail : "");
        b->down_since_ms = now;
        if (b->gap_since < 0) {
            /* the recovery looks from the safe point: seqs given up on and not yet audited
             * are checked with the rest */
            b->gap_since = safe_point(b);
        }
        flush_held(b);
    } else if (b->attempts == 1 || b->attempts % 20 == 0) {
        DR_WARN("redis_bus", "redis bus connect failed, retrying",
                "host=%s port=%d attempts=%u reason=\"%s\" detail=\"%.200s\"", b->host, b->port,
                b->attempts, why, detail ? detail : "");
    }
    set_state(b, BUS_DOWN);
    delay = (int64_t)((double)b->backoff_ms * (0.5 + 0.5 * dr_random_unit()));
    b->retry_at_ms = now + delay;
    b->backoff_ms = b->backoff_ms * 2 > b->backoff_max_ms ? b->backoff_max_ms : b->backoff_ms * 2;
}

static void on_tick(uv_timer_t *t)
{
    struct dr_redis_bus *b = t->data;
    int64_t now = dr_mono_ms();

    while (b->nheld && now - b->held[0].arrived_ms >= b->reorder_ms) {
        skip_to(b, b->held[0].seq);
    }
    switch (b->state) {
    case BUS_DOWN:
        if (!b->resolving && now >= b->retry_at_ms) {
            start_connect(b);
        }
        break;
    case BUS_CONNECTING:
        if (now >= b->deadline_ms) {
            link_fail(b, "connect timeout", NULL);
        }
        break;
    case BUS_UP:
        if (b->sent.n && now - ring_at(&b->sent, 0) >= b->command_timeout_ms) {
            link_fail(b, "command timeout", NULL);
        } else if (b->hb_sent_ms && now - b->hb_sent_ms >= b->command_timeout_ms) {
            link_fail(b, "keep-alive timeout", NULL);
        } else if (!b->hb_sent_ms && now - b->hb_last_ms >= b->ping_interval_ms) {
            b->hb_last_ms = now;
            if (send_cmd(b, CMD_HB, "PUBLISH %s ping", b->hb_channel) == DR_OK) {
                b->hb_sent_ms = now;
            }
        }
        if (b->state == BUS_UP && !b->check && b->gap_since >= 0) {
            start_check(b); /* an audit was under way when the link came back */
        } else if (b->state == BUS_UP && b->audit_ms > 0 && !b->check && now >= b->audit_due_ms) {
            start_audit(b, now);
        }
        break;
    }
    note_safe(b);
}

/* ---- the hub's hook ---- */

static void bus_publish(void *ctx, struct dr_notification *n)
{
    struct dr_redis_bus *b = ctx;
    int64_t seq = dr_notification_seq(n);
    size_t len;
    const char *json = dr_notification_json(n, &len);

    if (seq <= 0) {
        dr_hub_publish_local(b->hub, n); /* not stored: nothing to order it by */
        return;
    }
    if (seen_get(b, seq)) {
        DR_WARN("redis_bus", "notification seq seen before: the store was reset, seqs start again",
                "seq=%lld newest_seen=%lld", (long long)seq, (long long)b->hi);
        restart_seqs(b, seq);
    }
    seen_set(b, seq);
    publish_one(b, seq, json, len);
    /* here in seq order too: a client resumes from the last seq it got, so one delivered before
     * a lower one would hide that one (a lower seq was stored first, elsewhere, and is normally
     * on its way). While the link is down nothing comes: what is missed is the recovery's. */
    hold(b, n, 0);
    if (b->state != BUS_UP) {
        skip_to(b, seq);
    } else {
        release(b);
    }
}

/* ---- settings ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* URL userinfo: %XX escapes decoded, anything else kept as is. */
static char *pct_decode(const char *s, size_t len)
{
    char *out = dr_xmalloc(len + 1), *o = out;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static void free_bus(struct dr_redis_bus *b);

static int parse_url(struct dr_redis_bus *b, const char *url, char *err, size_t errsz)
{
    const char *p, *end, *at, *hp, *colon;
    int64_t port = 6379;

    if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(err, errsz, "redis.url: TLS (rediss://) is not supported; use redis://");
        return DR_EUNSUPPORTED;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errsz, "redis.url: expected redis://[[user]:password@]host[:port][/db]");
        return DR_EINVAL;
    }
    p = url + 8;
    end = p + strcspn(p, "/?#");
    at = memrchr(p, '@', (size_t)(end - p));
    if (at) {
        colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p) {
                b->user = pct_decode(p, (size_t)(colon - p));
            }
            b->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        } else {
            b->password = pct_decode(p, (size_t)(at - p));
        }
        if (!b->password[0]) {
            free(b->password);
            b->password = NULL;
        }
        hp = at + 1;
    } else {
        hp = p;
    }
    if (*hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(end - hp));
        if (!rb) {
            snprintf(err, errsz, "redis.url: unterminated [IPv6 address]");
            return DR_EINVAL;
        }
        b->host = dr_xstrndup(hp + 1, (size_t)(rb - hp - 1));
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memrchr(hp, ':', (size_t)(end - hp));
        b->host = dr_xstrndup(hp, (size_t)((colon ? colon : end) - hp));
    }
    if (colon) {
        char buf[16];
        size_t n = (size_t)(end - colon - 1);
        snprintf(buf, sizeof(buf), "%.*s", (int)(n < sizeof(buf) ? n : sizeof(buf) - 1), colon + 1);
        if (n == 0 || n >= sizeof(buf) || dr_parse_i64(buf, &port) != DR_OK || port < 1 ||
            port > 65535) {
            snprintf(err, errsz, "redis.url: the port must be 1..65535");
            return DR_EINVAL;
        }
    }
    if (!b->host[0]) {
        snprintf(err, errsz, "redis.url: no host");
        return DR_EINVAL;
    }
    b->port = (int)port;
    return DR_OK;
}

int dr_redis_url_check(const char *url, char *why, size_t whysz)
{
    struct dr_redis_bus *b = dr_xcalloc(1, sizeof(*b));
    char err[256] = "";
    const char *reason;
    int rc = url ? parse_url(b, url, err, sizeof(err)) : DR_EINVAL;

    if (rc) {
        reason = strncmp(err, "redis.url: ", 11) == 0 ? err + 11 : err;
        snprintf(why, whysz, "%s", *reason ? reason : "not a Redis URL");
    }
    free_bus(b);
    return rc;
}

struct ms_key {
    const char *name;
    size_t off;
    int64_t def, min, max;
};

#define MSOFF(f) offsetof(struct dr_redis_bus, f)
static const struct ms_key ms_keys[] = {
    {"connect_timeout", MSOFF(connect_timeout_ms), 2000, 10, 600000},
    {"command_timeout", MSOFF(command_timeout_ms), 2000, 10, 600000},
    {"ping_interval", MSOFF(ping_interval_ms), 1000, 10, 600000},
    {"backoff_max", MSOFF(backoff_max_ms), 5000, BACKOFF_MIN_MS, 600000},
    {"reorder_window", MSOFF(reorder_ms), 100, 0, 60000},
    {"audit_interval", MSOFF(audit_ms), 1000, 0, 600000},
};

static int load_settings(struct dr_redis_bus *b, const struct dr_config *cfg, char *err,
                         size_t errsz)
{
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(cfg->root, "redis");
    const cJSON *e;
    const char *ch;
    int rc;

    if (sec && !cJSON_IsObject(sec) && !cJSON_IsNull(sec)) {
        snprintf(err, errsz, "redis: must be a mapping");
        return DR_EINVAL;
    }
    sec = cJSON_IsObject(sec) ? sec : NULL;
    cJSON_ArrayForEach(e, sec)
    {
        int known = strcmp(e->string, "url") == 0 || strcmp(e->string, "channel") == 0;
        for (size_t i = 0; i < DR_ARRAY_LEN(ms_keys) && !known; i++) {
            known = strcmp(e->string, ms_keys[i].name) == 0;
        }
        if (!known) {
            snprintf(err, errsz, "redis.%s: unknown key", e->string);
            return DR_EINVAL;
        }
    }
    for (size_t i = 0; i < DR_ARRAY_LEN(ms_keys); i++) {
        const struct ms_key *k = &ms_keys[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, k->name);
        int64_t ms = k->def;
        /* a duration with its unit, or 0 on its own (as core/config.c reads durations) */
        if (v && !(cJSON_IsNumber(v) && v->valuedouble == 0 && (ms = 0, 1)) &&
            !(cJSON_IsString(v) && dr_parse_duration(v->valuestring, &ms) == DR_OK)) {
            ms = -1;
        }
        if (ms < k->min || ms > k->max) {
            snprintf(err, errsz, "redis.%s: must be a duration between %lldms and %lldms", k->name,
                     (long long)k->min, (long long)k->max);
            return DR_EINVAL;
        }
        *(int64_t *)((char *)b + k->off) = ms;
    }
    ch = dr_json_str(sec, "channel");
    if (cJSON_GetObjectItemCaseSensitive(sec, "channel") && (!ch || !*ch || strlen(ch) > 200)) {
        snprintf(err, errsz, "redis.channel: must be a string of 1..200 characters");
        return DR_EINVAL;
    }
    ch = ch ? ch : "dr:notifications";
    if (strpbrk(ch, " \t\r\n")) {
        snprintf(err, errsz, "redis.channel: must not contain spaces");
        return DR_EINVAL;
    }
    rc = parse_url(b, cfg->redis_url, err, errsz);
    if (rc) {
        return rc;
    }
    dr_random_id(b->instance);
    b->channel = dr_xstrdup(ch);
    b->ctl_channel = dr_xmalloc(strlen(ch) + 16);
    sprintf(b->ctl_channel, "%s:control", ch);
    b->hb_channel = dr_xmalloc(strlen(ch) + 8 + sizeof(b->instance));
    sprintf(b->hb_channel, "%s:hb:%s", ch, b->instance);
    return DR_OK;
}

/* ---- life cycle ---- */

static int take_max(void *ctx, const struct dr_db_row *row)
{
    *(int64_t *)ctx = dr_db_row_int(row, 0);
    return 0;
}

static void free_bus(struct dr_redis_bus *b)
{
    for (size_t i = 0; i < b->nheld; i++) {
        dr_notification_unref(b->held[i].n);
    }
    free(b->held);
    free(b->sent.v);
    free(b->echo.v);
    roomset_clear(&b->dropped_rooms);
    roomset_clear(&b->peer_rooms);
    free(b->host);
    free(b->user);
    free(b->password);
    free(b->channel);
    free(b->ctl_channel);
    free(b->hb_channel);
    free(b);
}

int dr__redis_bus_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_hub *hub,
                         struct dr_db *db, struct dr_redis_bus **out, char *err, size_t errsz)
{
    struct dr_redis_bus *b = dr_xcalloc(1, sizeof(*b));
    int64_t max = 0;
    int rc;

    *out = NULL;
    rc = load_settings(b, cfg, err, errsz);
    if (!rc) {
        rc = dr_db_exec(db, "SELECT COALESCE(MAX(seq), 0) FROM rt_notifications", NULL, 0, take_max,
                        &max, NULL);
        if (rc) {
            snprintf(err, errsz, "redis: reading the newest notification seq failed: %s",
                     dr_strerror(rc));
        }
    }
    if (rc) {
        free_bus(b);
        return rc;
    }
    dr_metrics_describe(M_STATE, "gauge", "Redis bus state: 0 down, 1 connecting, 2 up.");
    dr_metrics_describe(M_PUBLISHED, "counter",
                        "Notifications offered to the Redis bus, by outcome (sent, dropped "
                        "while down, error).");
    dr_metrics_describe(M_RECEIVED, "counter",
                        "Notifications received from the Redis bus, by outcome (delivered, "
                        "duplicate, invalid).");
    dr_metrics_describe(M_RECONNECT, "counter", "Redis bus links re-established after a loss.");
    dr_metrics_describe(M_RESYNC, "counter", "Times clients were told to resync after a gap.");
    dr_metrics_describe(M_GAPS, "counter",
                        "Seqs given up on after reorder_window (burned or lost).");
    dr_metrics_describe(M_LOST, "counter",
                        "Notifications found in the store that never came over the bus (the "
                        "audit); their rooms' clients were told to resync.");
    dr_metrics_inc(M_RECONNECT, "", 0);
    dr_metrics_inc(M_RESYNC, "", 0);
    dr_metrics_inc(M_LOST, "", 0);
    b->loop = loop;
    b->hub = hub;
    b->db = db;
    b->hi = max;
    b->delivered_hi = max;
    b->next = max + 1;
    /* until the first subscription, anything stored elsewhere may be missed */
    b->gap_since = max;
    b->audited = max;
    b->safe_told = max;
    b->mark = -1;
    b->peer_since = -1;
    b->dropped_since = -1;
    b->backoff_ms = BACKOFF_MIN_MS;
    *out = b;
    return DR_OK;
}

void dr__redis_bus_start(struct dr_redis_bus *b)
{
    struct dr_hub_bus hook = {.ctx = b, .publish = bus_publish, .safe = bus_safe};
    int64_t tick = b ? b->command_timeout_ms / 10 : 0;

    if (!b) {
        return;
    }
    set_state(b, BUS_DOWN);
    uv_timer_init(b->loop, &b->tick);
    b->tick.data = b;
    if (b->reorder_ms / 2 < tick) {
        tick = b->reorder_ms / 2;
    }
    tick = tick < TICK_MIN_MS ? TICK_MIN_MS : tick > TICK_MAX_MS ? TICK_MAX_MS : tick;
    uv_timer_start(&b->tick, on_tick, 0, (uint64_t)tick);
    uv_unref((uv_handle_t *)&b->tick);
    uv_check_init(b->loop, &b->flush);
    b->flush.data = b;
    uv_unref((uv_handle_t *)&b->flush);
    b->started = 1;
    dr_hub_set_bus(b->hub, &hook);
}

void dr__redis_bus_stop(struct dr_redis_bus *b)
{
    if (!b || b->stopping) {
        return;
    }
    b->stopping = 1;
    if (!b->started) {
        return;
    }
    end_batch(b);
    dr_hub_set_bus(b->hub, NULL);
    link_fail(b, "stopping", NULL);
    if (b->resolving) {
        uv_cancel((uv_req_t *)&b->gai);
    }
    if (b->check) {
        uv_cancel((uv_req_t *)&b->check->w);
    }
    uv_timer_stop(&b->tick);
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_close((uv_handle_t *)&b->flush, NULL);
    set_state(b, BUS_DOWN);
    if (b->ever_up) {
        DR_INFO("redis_bus", "redis bus stopped", "host=%s port=%d", b->host, b->port);
    }
}

void dr__redis_bus_destroy(struct dr_redis_bus *b)
{
    if (!b) {
        return;
    }
    dr__redis_bus_stop(b);
    free_bus(b);
}

int dr__redis_bus_up(const struct dr_redis_bus *b)
{
    return b && b->state == BUS_UP;
}

int dr__redis_bus_busy(const struct dr_redis_bus *b)
{
    return b && !b->stopping && b->state == BUS_UP && b->echo.n > 0;
}
