/*
 * A client connection, whatever its transport: subscriptions, resume (catch-up from the store
 * while live events are held back), the bounded outbound queue, and the client's commands.
 *
 * Resume without gap or duplicate: a room being resumed is in RT_SUB_CATCHUP; live events for
 * it are buffered. The catch-up query runs on the thread pool (pages of conf->catchup_page rows);
 * each row with seq > the room's last sent seq is written. When the last page is in, the buffer
 * is flushed for those rooms with the same rule and the room goes live. Live events reach the hub
 * only after their row is committed and in seq order (see processor.c), so whatever the query
 * did not see arrives live after the room entered catch-up, and whatever it saw is dropped from
 * the buffer.
 *
 * A since above every stored seq (kept from before the store was reset or restored, or from
 * another deployment) would hide every new event, all of them below it. The first page of a
 * resume reads the store's head first; when since is above it the rooms resume from the head
 * instead (see resume_from_head) and the client is told with a resync frame marked reset.
 *
 * Lifetime: the tcp handle holds a reference until its close callback; each job on the thread
 * pool and each write request holds one. Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/audit.h"
#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

struct wreq {
    uv_write_t w;
    struct rt_conn *c;
    size_t nf;
    struct rt_frame *f[]; /* nf of them, one reference each */
};

/* An idle connection is mostly this struct: kept within the allocator's 512-byte size class
 * (the next is 640), which is a fifth of the memory per idle connection. */
_Static_assert(sizeof(struct rt_conn) <= 512, "struct rt_conn outgrew 512 bytes");

static void start_catchup(struct rt_conn *c);
static void drop_cork(struct rt_conn *c);
static void cu_pump(struct rt_conn *c);

/* ---- lifetime ---- */

struct rt_conn *dr__rt_conn_create(struct dr_hub *hub, const struct rt_transport *tp, uv_tcp_t *tcp)
{
    struct rt_conn *c = dr_xcalloc(1, sizeof(*c));
    int64_t now = dr_mono_ms();

    c->refs = 1;
    c->hub = hub;
    c->tp = tp;
    c->tcp = tcp;
    tcp->data = c;
    c->state = RT_CONN_AUTH;
    c->since = -1;
    c->told = -1;
    c->opened_ms = c->last_rx_ms = c->last_hb_ms = now;
    c->connected_ms = dr_now_ms();
    c->last_tx_ms = (int64_t)uv_now(hub->loop);
    dr_bucket_init(&c->rate, hub->conf->burst);
    if (hub->conf->send_buffer > 0) {
        int sz = hub->conf->send_buffer;
        uv_send_buffer_size((uv_handle_t *)tcp, &sz);
    }
    dr__hub_add_conn(hub, c);
    return c;
}

void dr__rt_conn_ref(struct rt_conn *c)
{
    c->refs++;
}

static void free_catchups(struct rt_catchup *j)
{
    while (j) {
        struct rt_catchup *next = j->next;
        for (size_t i = 0; i < j->nrooms; i++) {
            free(j->rooms[i]);
        }
        free(j->rooms);
        free(j->gens);
        free(j);
        j = next;
    }
}

void dr__rt_conn_unref(struct rt_conn *c)
{
    if (--c->refs > 0) {
        return;
    }
    if (c->tp->cleanup) {
        c->tp->cleanup(c);
    }
    dr_jwt_claims_destroy(c->claims);
    for (size_t i = 0; i < c->nsubs; i++) {
        free(c->subs[i].room);
    }
    free(c->subs);
    for (size_t i = 0; i < c->nbuffered; i++) {
        dr_notification_unref(c->buffered[i]);
    }
    free(c->buffered);
    drop_cork(c);
    free(c->cork);
    free_catchups(c->catchup_head);
    free_catchups(c->cu_job);
    dr__rt_notifications_free(c->cu_rows, c->cu_nrows);
    free(c);
}

static void on_tcp_closed(uv_handle_t *h)
{
    struct rt_conn *c = h->data;
    free(h); /* the hijacked stream's allocation */
    dr__rt_conn_unref(c);
}

void dr__rt_conn_abort(struct rt_conn *c)
{
    if (c->state == RT_CONN_CLOSED) {
        return;
    }
    c->state = RT_CONN_CLOSED;
    dr__hub_remove_conn(c->hub, c);
    uv_close((uv_handle_t *)c->tcp, on_tcp_closed);
}

void dr__rt_conn_close(struct rt_conn *c, int code, const char *reason)
{
    if (c->state == RT_CONN_CLOSING || c->state == RT_CONN_CLOSED) {
        return;
    }
    c->state = RT_CONN_CLOSING;
    c->close_deadline_ms = dr_mono_ms() + c->hub->conf->close_timeout_ms;
    dr__hub_detach(c->hub, c);
    DR_DEBUG("realtime", "closing connection", "conn=%llu code=%d reason=\"%s\"",
             (unsigned long long)c->id, code, reason);
    c->tp->close(c, code, reason);
}

/* ---- writing ---- */

static void on_written(uv_write_t *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    struct rt_conn *c = wr->c;

    c->queued_frames -= wr->nf;
    for (size_t i = 0; i < wr->nf; i++) {
        dr__rt_frame_unref(wr->f[i]);
    }
    free(wr);
    if (status < 0 && status != UV_ECANCELED) {
        dr__rt_conn_abort(c);
    } else if (c->catchup_waiting && c->state == RT_CONN_OPEN &&
               uv_stream_get_write_queue_size((uv_stream_t *)c->tcp) <=
                   c->hub->conf->max_queue_bytes / 2) {
        c->catchup_waiting = 0;
        cu_pump(c);
    }
    dr__rt_conn_unref(c);
}

/* Writes n frames; takes the callers' references. Most writes go out at once, so they are tried
 * synchronously first (one writev); only what the socket did not take goes through uv_write,
 * which also costs a completion callback and an epoll_ctl when it stops watching for POLLOUT. */
static int write_frames(struct rt_conn *c, struct rt_frame **f, size_t n)
{
    uv_buf_t one, *b = n == 1 ? &one : dr_xmalloc(n * sizeof(*b));
    size_t sent = 0; /* frames the socket took whole */
    struct wreq *wr;
    int rc;

    c->last_tx_ms = (int64_t)uv_now(c->hub->loop);
    for (size_t i = 0; i < n; i++) {
        b[i] = uv_buf_init(f[i]->data, (unsigned)f[i]->len);
    }
    rc = uv_try_write((uv_stream_t *)c->tcp, b, (unsigned)n); /* EAGAIN while writes are queued */
    if (rc >= 0) {
        size_t done = (size_t)rc;
        while (sent < n && done >= b[sent].len) {
            done -= b[sent].len;
            sent++;
        }
        if (sent < n) {
            b[sent].base += done;
            b[sent].len -= done;
        }
    } else if (rc != UV_EAGAIN) {
        sent = n; /* nothing more goes to this connection */
    }
    for (size_t i = 0; i < sent; i++) {
        dr__rt_frame_unref(f[i]);
    }
    if (sent == n) {
        if (b != &one) {
            free(b);
        }
        if (rc < 0) {
            dr__rt_conn_abort(c);
            return DR_EIO;
        }
        return DR_OK;
    }
    wr = dr_xmalloc(sizeof(*wr) + (n - sent) * sizeof(wr->f[0]));
    wr->c = c;
    wr->nf = n - sent;
    for (size_t i = sent; i < n; i++) {
        wr->f[i - sent] = f[i];
    }
    rc = uv_write(&wr->w, (uv_stream_t *)c->tcp, b + sent, (unsigned)(n - sent), on_written);
    if (b != &one) {
        free(b); /* libuv copies the buffer array */
    }
    if (rc != 0) {
        for (size_t i = 0; i < wr->nf; i++) {
            dr__rt_frame_unref(wr->f[i]);
        }
        free(wr);
        dr__rt_conn_abort(c);
        return DR_EIO;
    }
    c->refs++;
    c->queued_frames += wr->nf;
    return DR_OK;
}

static void drop_cork(struct rt_conn *c)
{
    for (size_t i = 0; i < c->ncork; i++) {
        dr__rt_frame_unref(c->cork[i]);
    }
    c->ncork = c->cork_bytes = 0;
}

void dr__rt_conn_flush_cork(struct rt_conn *c)
{
    if (!c->ncork) {
        return;
    }
    if (c->state == RT_CONN_CLOSED) {
        drop_cork(c);
        return;
    }
    size_t n = c->ncork;
    c->ncork = c->cork_bytes = 0;
    write_frames(c, c->cork, n);
}

static size_t queued_bytes(const struct rt_conn *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)c->tcp) + c->cork_bytes;
}

/* The client does not read fast enough: it resumes later from its last seq. */
static void close_slow(struct rt_conn *c)
{
    dr_metrics_inc(RT_M_SLOW, "", 1);
    DR_INFO("realtime", "slow client closed", "conn=%llu queued=%zu", (unsigned long long)c->id,
            queued_bytes(c));
    drop_cork(c);
    dr__rt_conn_close(c, 4008, "slow client: outbound queue full");
}

int dr__rt_conn_bound_queue(struct rt_conn *c)
{
    if ((c->state != RT_CONN_OPEN && c->state != RT_CONN_AUTH) ||
        queued_bytes(c) <= c->hub->conf->max_queue_bytes) {
        return 0;
    }
    close_slow(c);
    return 1;
}

static int write_frame(struct rt_conn *c, struct rt_frame *f, int bounded)
{
    if (c->state == RT_CONN_CLOSED) {
        return DR_EUNAVAIL;
    }
    if (bounded && queued_bytes(c) + f->len > c->hub->conf->max_queue_bytes) {
        dr_metrics_inc(RT_M_DROPPED, "reason=\"queue_full\"", 1);
        close_slow(c);
        return DR_ETOOBIG;
    }
    atomic_fetch_add(&f->refs, 1);
    if (c->hub->corking && bounded) {
        if (c->ncork == c->capcork) {
            c->capcork = c->capcork ? c->capcork * 2 : 8;
            c->cork = dr_xrealloc(c->cork, c->capcork * sizeof(*c->cork));
        }
        c->cork[c->ncork++] = f;
        c->cork_bytes += f->len;
        if (!c->corked) {
            c->corked = 1;
            c->refs++; /* the hub's corked list holds one */
            c->cork_next = c->hub->corked;
            c->hub->corked = c;
        }
        return DR_OK;
    }
    dr__rt_conn_flush_cork(c); /* what was gathered goes first */
    if (c->state == RT_CONN_CLOSED) {
        dr__rt_frame_unref(f);
        return DR_EUNAVAIL;
    }
    return write_frames(c, &f, 1);
}

int dr__rt_conn_write(struct rt_conn *c, struct rt_frame *f)
{
    return write_frame(c, f, 1);
}

int dr__rt_conn_write_raw(struct rt_conn *c, const void *data, size_t len)
{
    struct rt_frame *f = dr__rt_frame_create(len);
    int err;

    memcpy(f->data, data, len);
    err = write_frame(c, f, 0);
    dr__rt_frame_unref(f);
    return err;
}

/* seq as the transport's encode takes it: SSE's id: line when >= 0. */
/* A frame of JSON text as it is, numbered seq (-1: none). */
static void send_text_seq(struct rt_conn *c, int64_t seq, const char *json, size_t len)
{
    struct rt_frame *f;

    if (c->state == RT_CONN_CLOSING || c->state == RT_CONN_CLOSED) {
        return;
    }
    f = c->tp->encode(seq, json, len);
    dr__rt_conn_write(c, f);
    dr__rt_frame_unref(f);
}

static void send_json_seq(struct rt_conn *c, int64_t seq, const cJSON *obj)
{
    char *s;

    if (c->state == RT_CONN_CLOSING || c->state == RT_CONN_CLOSED) {
        return;
    }
    s = dr_json_print(obj);
    send_text_seq(c, seq, s, strlen(s));
    free(s);
}

void dr__rt_conn_send_json(struct rt_conn *c, const cJSON *obj)
{
    send_json_seq(c, -1, obj);
}

void dr__rt_conn_send_text(struct rt_conn *c, const char *json, size_t len)
{
    send_text_seq(c, -1, json, len);
}

/* An error frame; with "room" when room is not NULL, so that a client with several requests
 * out knows which one it answers. */
static void send_error_in(struct rt_conn *c, const char *code, const char *msg, const char *room)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "error");
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "message", msg);
    if (room) {
        cJSON_AddStringToObject(o, "room", room);
    }
    dr__rt_conn_send_json(c, o);
    cJSON_Delete(o);
}

void dr__rt_conn_send_error(struct rt_conn *c, const char *code, const char *msg)
{
    send_error_in(c, code, msg, NULL);
}

static int job_has_sub(const struct rt_catchup *j, const struct rt_sub *s)
{
    for (size_t k = 0; j && k < j->nrooms; k++) {
        if (j->gens[k] == s->gen && strcmp(j->rooms[k], s->room) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Where c's rooms still catching up have got to, other than s and j's (whose rows go out in seq
 * order together, so a row's seq is where they all are): the lowest, or INT64_MAX. */
static int64_t catchup_floor(const struct rt_conn *c, const struct rt_sub *s,
                             const struct rt_catchup *j)
{
    int64_t lo = INT64_MAX;

    for (size_t i = 0; i < c->nsubs; i++) {
        const struct rt_sub *o = &c->subs[i];
        if (o != s && o->state == RT_SUB_CATCHUP && o->last_seq < lo && !job_has_sub(j, o)) {
            lo = o->last_seq < 0 ? 0 : o->last_seq;
        }
    }
    return lo;
}

/* Sends n to c in s; j is the catch-up n comes from, NULL for a live event. */
static int send_event(struct rt_conn *c, struct rt_sub *s, struct dr_notification *n,
                      const struct rt_catchup *j)
{
    int64_t resume = n->seq - n->behind, floor = catchup_floor(c, s, j);
    struct rt_frame *f = n->frames[c->tp->id];
    int err, own = 0;

    if (floor < resume) {
        /* another room of c is still reading its history below this seq: resumed from here, a
         * client would skip what that room has not sent yet. This frame is c's own. */
        resume = floor;
        own = 1;
    }
    if (!f || own) {
        size_t len;
        char *json = dr__notification_event_json(n, resume, &len);
        f = c->tp->encode(resume, json, len);
        free(json);
        if (!own) {
            n->frames[c->tp->id] = f;
        }
    }
    err = dr__rt_conn_write(c, f);
    if (own) {
        dr__rt_frame_unref(f);
    }
    if (err) {
        return err;
    }
    s->last_seq = n->seq;
    c->told = resume;
    dr__hub_count_delivery(c->hub, c->tp->id, n->t0_ns);
    return DR_OK;
}

/* The newest seq sent in any room of c (a room catching up counts from its since). */
static int64_t sent_hi(const struct rt_conn *c)
{
    int64_t hi = -1;

    for (size_t i = 0; i < c->nsubs; i++) {
        hi = c->subs[i].last_seq > hi ? c->subs[i].last_seq : hi;
    }
    return hi;
}

int dr__rt_conn_lagging(const struct rt_conn *c)
{
    return c->state == RT_CONN_OPEN && c->told < sent_hi(c);
}

void dr__rt_conn_mark(struct rt_conn *c, int64_t w)
{
    int64_t hi = sent_hi(c);
    cJSON *o;

    if (w > hi) {
        w = hi;
    }
    if (c->state != RT_CONN_OPEN || w <= c->told) {
        return;
    }
    for (size_t i = 0; i < c->nsubs; i++) {
        if (c->subs[i].state == RT_SUB_CATCHUP) {
            return; /* w says nothing about its rows yet */
        }
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "resume");
    dr_json_add_i64(o, "seq", w);
    send_json_seq(c, w, o);
    cJSON_Delete(o);
    c->told = w;
}

/* ---- subscriptions ---- */

static struct rt_sub *find_sub(struct rt_conn *c, const char *room)
{
    for (size_t i = 0; i < c->nsubs; i++) {
        if (strcmp(c->subs[i].room, room) == 0) {
            return &c->subs[i];
        }
    }
    return NULL;
}

static struct rt_sub *add_sub(struct rt_conn *c, const char *room, int64_t since)
{
    struct rt_sub *s;

    c->subs = dr_xrealloc(c->subs, (c->nsubs + 1) * sizeof(*c->subs));
    /* the hub's rooms point at connections, not at subs: moving the array is fine */
    s = &c->subs[c->nsubs++];
    memset(s, 0, sizeof(*s));
    s->room = dr_xstrdup(room);
    s->gen = ++c->next_gen;
    s->last_seq = since > 0 ? since : 0;
    s->state = since >= 0 ? RT_SUB_CATCHUP : RT_SUB_LIVE;
    dr__hub_join(c->hub, c, s);
    return s;
}

static void remove_sub(struct rt_conn *c, struct rt_sub *s)
{
    size_t i = (size_t)(s - c->subs);

    dr__hub_leave(c->hub, c, s);
    free(s->room);
    c->subs[i] = c->subs[--c->nsubs];
}

static void send_subscribed(struct rt_conn *c, struct rt_sub *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "subscribed");
    cJSON_AddStringToObject(o, "room", s->room);
    dr_json_add_i64(o, "seq", s->last_seq);
    dr__rt_conn_send_json(c, o);
    cJSON_Delete(o);
}

/* Puts j in the queue: at the front (the job being written goes on), else at the end. */
static void push_catchup(struct rt_conn *c, struct rt_catchup *j, int front)
{
    if (front) {
        j->next = c->catchup_head;
        c->catchup_head = j;
        if (!c->catchup_tail) {
            c->catchup_tail = j;
        }
    } else {
        j->next = NULL;
        if (c->catchup_tail) {
            c->catchup_tail->next = j;
        } else {
            c->catchup_head = j;
        }
        c->catchup_tail = j;
    }
}

/*
 * Queues the catch-up of rooms from since for the subscriptions gens[i] of rooms[i]: at the front
 * for the next page of the job being written, else at the end. check_head for the first page of
 * a resume, whose since comes from the client.
 */
static void queue_catchup(struct rt_conn *c, char *const *rooms, const uint64_t *gens, size_t n,
                          int64_t since, int front, int check_head)
{
    struct rt_catchup *j = dr_xcalloc(1, sizeof(*j));

    j->rooms = dr_xcalloc(n ? n : 1, sizeof(*j->rooms));
    j->gens = dr_xcalloc(n ? n : 1, sizeof(*j->gens));
    for (size_t i = 0; i < n; i++) {
        j->rooms[i] = dr_xstrdup(rooms[i]);
        j->gens[i] = gens[i];
    }
    j->nrooms = n;
    j->since = since;
    j->check_head = check_head;
    push_catchup(c, j, front);
}

/* ---- catch-up ---- */

struct cu_job {
    uv_work_t w;
    struct rt_conn *c;
    struct rt_catchup *j;
    size_t limit;
    struct dr_notification **rows;
    size_t nrows;
    int64_t next; /* the since of the next page, -1 when this one is the last */
    int64_t head; /* the store's newest seq, when ahead */
    int ahead;    /* since is above head: no page read */
    int err;
};

static void cu_work(uv_work_t *w)
{
    struct cu_job *cj = w->data;
    struct dr_db *db = cj->c->hub->db;
    const struct rt_catchup *j = cj->j;

    if (j->check_head && j->since > 0) {
        /* read before the page: whatever commits afterwards is above head (stores commit in seq
         * order) and reaches the client from the page or live */
        cj->err = dr__rt_store_head(db, &cj->head);
        if (cj->err) {
            return;
        }
        if (j->since > cj->head) {
            cj->ahead = 1;
            return;
        }
    }
    cj->err = dr__rt_store_since(db, j->rooms, j->nrooms, j->since, cj->limit, &cj->rows,
                                 &cj->nrows, &cj->next);
}

/*
 * The subscription to room that catch-up j is for: NULL when room is not one of j's, or when the
 * room was left (and maybe joined again, as another subscription) since j was queued. *in_job
 * says whether room is one of j's.
 */
static struct rt_sub *job_sub(struct rt_conn *c, const struct rt_catchup *j, const char *room,
                              int *in_job)
{
    for (size_t k = 0; k < j->nrooms; k++) {
        if (strcmp(j->rooms[k], room) == 0) {
            struct rt_sub *s = find_sub(c, room);
            *in_job = 1;
            return s && s->gen == j->gens[k] ? s : NULL;
        }
    }
    *in_job = 0;
    return NULL;
}

static int by_seq(const void *a, const void *b)
{
    int64_t x = (*(struct dr_notification *const *)a)->seq;
    int64_t y = (*(struct dr_notification *const *)b)->seq;
    return (x > y) - (x < y);
}

/* The rooms of j are complete: deliver what was held back for them and go live. In seq order:
 * live events come in seq order, except one that came late (the Redis bus gave up waiting for
 * it), and sent after a higher one it would be dropped as a duplicate. */
static void finish_rooms(struct rt_conn *c, struct rt_catchup *j)
{
    size_t keep = 0;

    if (c->nbuffered > 1) {
        qsort(c->buffered, c->nbuffered, sizeof(*c->buffered), by_seq);
    }

    for (size_t i = 0; i < c->nbuffered; i++) {
        struct dr_notification *n = c->buffered[i];
        int in_job;
        struct rt_sub *s = job_sub(c, j, n->room, &in_job);
        struct rt_sub *again = !s && in_job ? find_sub(c, n->room) : NULL;
        if (again && again->state == RT_SUB_CATCHUP) {
            in_job = 0; /* held for the room joined again: its own catch-up delivers it */
        }
        /* joined again live (no since): it wants nothing from before, and nothing would ever
         * take the event out of buffered; it is let go below (s is NULL) */
        if (!in_job) {
            c->buffered[keep++] = n;
            continue;
        }
        if (s && c->state == RT_CONN_OPEN && n->seq > s->last_seq) {
            send_event(c, s, n, j);
        } else if (s) {
            dr_metrics_inc(RT_M_DROPPED, "reason=\"duplicate\"", 1);
        }
        dr_notification_unref(n);
    }
    c->nbuffered = keep;
    for (size_t k = 0; k < j->nrooms && c->state == RT_CONN_OPEN; k++) {
        int in_job;
        struct rt_sub *s = job_sub(c, j, j->rooms[k], &in_job);
        if (s && s->state == RT_SUB_CATCHUP) {
            s->state = RT_SUB_LIVE;
            if (s->announce) {
                s->announce = 0;
                send_subscribed(c, s);
            }
        }
    }
    if (dr__rt_conn_lagging(c)) {
        c->hub->lagging = 1;
        dr__rt_conn_mark(c, dr__hub_safe(c->hub));
    }
}

static int queue_full(struct rt_conn *c)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)c->tcp) >
           c->hub->conf->max_queue_bytes / 2;
}

/* Writes the current page while the outbound queue has room; on_written calls again. */
static void cu_pump(struct rt_conn *c)
{
    struct rt_catchup *j = c->cu_job;

    if (!j || c->state != RT_CONN_OPEN) {
        return;
    }
    while (c->cu_pos < c->cu_nrows) {
        struct dr_notification *n = c->cu_rows[c->cu_pos];
        struct rt_sub *s;
        int in_job;
        if (queue_full(c)) {
            c->catchup_waiting = 1;
            return;
        }
        c->cu_pos++;
        s = job_sub(c, j, n->room, &in_job);
        if (s && s->state == RT_SUB_CATCHUP && n->seq > s->last_seq) {
            /* a row's seq is where this room may resume from, not the connection's other rooms
             * while a lower seq is still missing here */
            int64_t w = dr__hub_safe(c->hub);
            if (w < n->seq && !n->frames[c->tp->id]) {
                n->behind = n->seq - w;
            }
            send_event(c, s, n, j);
            if (c->state != RT_CONN_OPEN) {
                return;
            }
        }
    }
    if (c->cu_next >= 0) {
        /* more to come: the next page starts after this one (after its last row, even one
         * that could not be read and is not in cu_rows) */
        queue_catchup(c, j->rooms, j->gens, j->nrooms, c->cu_next, 1, 0);
    } else {
        finish_rooms(c, j);
    }
    free_catchups(c->cu_job);
    dr__rt_notifications_free(c->cu_rows, c->cu_nrows);
    c->cu_job = NULL;
    c->cu_rows = NULL;
    c->cu_nrows = c->cu_pos = 0;
    start_catchup(c);
}

/*
 * The client resumed j's rooms from a since above head, the store's newest seq. Its seqs are
 * not this store's, and keeping since would drop every new event as already sent. The rooms
 * resume from head instead, or from just below the lowest live event held back for them (it
 * arrived after they were joined, so it is new to the client, but it may be at or below head),
 * and the client is told so with {"type":"resync","since":from,"reset":true} before any of their
 * events; on SSE the record's id: is from, for an EventSource that reconnects by itself. Takes j.
 */
static void resume_from_head(struct rt_conn *c, struct rt_catchup *j, int64_t head)
{
    int64_t from = head;
    int resumed = 0;
    cJSON *o;

    for (size_t i = 0; i < c->nbuffered; i++) {
        int in_job;
        if (job_sub(c, j, c->buffered[i]->room, &in_job) && c->buffered[i]->seq <= from) {
            from = c->buffered[i]->seq - 1;
        }
    }
    for (size_t k = 0; k < j->nrooms; k++) {
        int in_job;
        struct rt_sub *s = job_sub(c, j, j->rooms[k], &in_job);
        if (s && s->state == RT_SUB_CATCHUP) {
            s->last_seq = from; /* nothing was sent in a room catching up */
            resumed = 1;
        }
    }
    DR_DEBUG("realtime", "resume since above the newest stored seq",
             "conn=%llu since=%lld head=%lld from=%lld", (unsigned long long)c->id,
             (long long)j->since, (long long)head, (long long)from);
    if (resumed) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "resync");
        dr_json_add_i64(o, "since", from);
        cJSON_AddBoolToObject(o, "reset", 1);
        send_json_seq(c, from, o);
        cJSON_Delete(o);
        c->told = from; /* the old numbering's seqs mean nothing now */
    }
    /* the rooms left meanwhile still need finish_rooms to release what was held for them */
    j->since = from;
    j->check_head = 0;
    push_catchup(c, j, 1);
}

static void cu_after(uv_work_t *w, int status)
{
    struct cu_job *cj = w->data;
    struct rt_conn *c = cj->c;

    c->catchup_running = 0;
    if (c->state != RT_CONN_OPEN) {
        goto out;
    }
    if (cj->err) {
        DR_WARN("realtime", "catch-up query failed", "conn=%llu error=\"%s\"",
                (unsigned long long)c->id, dr_strerror(cj->err));
        dr__rt_conn_send_error(c, "resume_failed", "stored notifications are unavailable");
        dr__rt_conn_close(c, 1011, "store unavailable");
        goto out;
    }
    if (cj->ahead) {
        resume_from_head(c, cj->j, cj->head);
        cj->j = NULL;
        start_catchup(c);
        goto out;
    }
    c->cu_job = cj->j;
    c->cu_rows = cj->rows;
    c->cu_nrows = cj->nrows;
    c->cu_pos = 0;
    c->cu_next = cj->next;
    cj->j = NULL;
    cj->rows = NULL;
    cj->nrows = 0;
    cu_pump(c);
out:
    free_catchups(cj->j);
    dr__rt_notifications_free(cj->rows, cj->nrows);
    free(cj);
    dr__rt_conn_unref(c);
}

static void start_catchup(struct rt_conn *c)
{
    struct cu_job *cj;

    if (c->catchup_running || c->cu_job || !c->catchup_head || c->state != RT_CONN_OPEN) {
        return;
    }
    cj = dr_xcalloc(1, sizeof(*cj));
    cj->c = c;
    cj->j = c->catchup_head;
    c->catchup_head = cj->j->next;
    if (!c->catchup_head) {
        c->catchup_tail = NULL;
    }
    cj->j->next = NULL;
    cj->limit = c->hub->conf->catchup_page;
    cj->w.data = cj;
    c->catchup_running = 1;
    c->refs++;
    if (uv_queue_work(c->hub->loop, &cj->w, cu_work, cu_after) != 0) {
        c->catchup_running = 0;
        free_catchups(cj->j);
        free(cj);
        dr__rt_conn_unref(c);
        dr__rt_conn_close(c, 1011, "internal error");
    }
}

/* ---- delivery from the hub ---- */

void dr__rt_conn_deliver(struct rt_conn *c, struct rt_sub *s, struct dr_notification *n)
{
    if (s->state == RT_SUB_CATCHUP) {
        if (c->nbuffered >= c->hub->conf->max_buffered) {
            dr_metrics_inc(RT_M_SLOW, "", 1);
            dr_metrics_inc(RT_M_DROPPED, "reason=\"catchup_buffer_full\"", 1);
            dr__rt_conn_close(c, 4008, "slow client: too many events during resume");
            return;
        }
        c->buffered = dr_xrealloc(c->buffered, (c->nbuffered + 1) * sizeof(*c->buffered));
        c->buffered[c->nbuffered++] = dr_notification_ref(n);
        return;
    }
    if (n->seq <= s->last_seq) {
        dr_metrics_inc(RT_M_DROPPED, "reason=\"duplicate\"", 1);
        return;
    }
    send_event(c, s, n, NULL);
}

/* ---- authentication and joining ---- */

int dr__rt_conn_authenticated(struct rt_conn *c, struct dr_jwt_claims *claims, int64_t since,
                              char *const *extra_rooms, size_t nextra)
{
    struct dr_hub *hub = c->hub;
    char room[200];
    char **joined;
    uint64_t *gens;
    size_t njoined = 0, cap, left_out = 0;
    cJSON *o, *arr, *lim;
    int err;

    err = dr__hub_index_user(hub, c, claims->sub);
    if (err) {
        dr_jwt_claims_destroy(claims);
        return err;
    }
    c->claims = claims;
    c->state = RT_CONN_OPEN;
    c->since = since;
    c->told = since > 0 ? since : 0; /* what its rooms' last_seq start from */
    c->last_rx_ms = c->last_hb_ms = dr_mono_ms();
    cap = 2 + claims->nrooms + nextra;
    joined = dr_xcalloc(cap, sizeof(*joined));
    gens = dr_xcalloc(cap, sizeof(*gens));
    for (size_t i = 0; i < cap; i++) {
        const char *r = NULL;
        if (i == 0) {
            snprintf(room, sizeof(room), "user:%s", claims->sub);
            r = room;
        } else if (i == 1) {
            if (claims->org) {
                snprintf(room, sizeof(room), "org:%s", claims->org);
                r = room;
            }
        } else if (i < 2 + claims->nrooms) {
            r = claims->rooms[i - 2];
        } else {
            r = extra_rooms[i - 2 - claims->nrooms];
        }
        if (r && dr_room_valid(r) && !find_sub(c, r)) {
            if (c->nsubs >= hub->conf->max_rooms) {
                left_out++;
                continue;
            }
            add_sub(c, r, since);
            gens[njoined] = c->subs[c->nsubs - 1].gen;
            joined[njoined++] = c->subs[c->nsubs - 1].room;
        }
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "welcome");
    cJSON_AddNumberToObject(o, "connection_id", (double)c->id);
    cJSON_AddStringToObject(o, "user", claims->sub);
    arr = cJSON_AddArrayToObject(o, "rooms");
    for (size_t i = 0; i < njoined; i++) {
        cJSON_AddItemToArray(arr, cJSON_CreateString(joined[i]));
    }
    if (since >= 0) {
        dr_json_add_i64(o, "since", since);
    }
    cJSON_AddNumberToObject(o, "heartbeat_ms", (double)hub->conf->heartbeat_ms);
    lim = cJSON_AddObjectToObject(o, "limits");
    cJSON_AddNumberToObject(lim, "max_rooms", hub->conf->max_rooms);
    cJSON_AddNumberToObject(lim, "max_frame", (double)hub->conf->max_frame);
    cJSON_AddNumberToObject(lim, "rate", hub->conf->rate);
    dr__rt_conn_send_json(c, o);
    cJSON_Delete(o);
    if (left_out) {
        /* said, not silent: the client would otherwise wait for those rooms' events */
        char msg[128];
        snprintf(msg, sizeof(msg), "%zu room(s) not joined: at most %u per connection", left_out,
                 hub->conf->max_rooms);
        dr__rt_conn_send_error(c, "too_many_rooms", msg);
    }
    if (since >= 0 && njoined > 0) {
        queue_catchup(c, joined, gens, njoined, since, 0, 1);
        start_catchup(c);
    }
    free(joined);
    free(gens);
    return DR_OK;
}

/* Adds room with resume from since (-1: live only) and tells the client. */
static void join(struct rt_conn *c, const char *room, int64_t since)
{
    struct rt_sub *s = find_sub(c, room);

    if (s) {
        if (s->state == RT_SUB_LIVE) {
            send_subscribed(c, s);
        } else {
            s->announce = 1;
        }
        return;
    }
    if (c->nsubs >= c->hub->conf->max_rooms) {
        send_error_in(c, "too_many_rooms", "room limit per connection reached", room);
        return;
    }
    s = add_sub(c, room, since);
    if (s->state == RT_SUB_LIVE) {
        send_subscribed(c, s);
        return;
    }
    s->announce = 1;
    queue_catchup(c, &s->room, &s->gen, 1, since, 0, 1);
    start_catchup(c);
}

static const char *claim_email(const struct dr_jwt_claims *cl)
{
    return cl->raw ? dr_json_str(cl->raw, "email") : NULL;
}

/* 1 when a and b have the same email claim, or neither has one: with the same sub, the store
 * grants them the same rooms. */
static int same_email(const struct dr_jwt_claims *a, const struct dr_jwt_claims *b)
{
    const char *ae = claim_email(a), *be = claim_email(b);

    return (!ae && !be) || (ae && be && strcmp(ae, be) == 0);
}

/*
 * A room whose permission the store is checking for a connection (meeting:, shipment:). It
 * takes a place under max_rooms as a joined room does, once however many subscribes for it
 * come while the check runs: they wait for this check and get its answer each, as a subscribe
 * for a room already joined gets "subscribed"; the first one's since counts.
 */
struct rt_join {
    uv_work_t w;
    struct rt_conn *c;
    struct rt_join *next; /* c->joins */
    /* the job's own copy: an auth message with a fresh token replaces (and frees) c->claims on
     * the loop thread while the check runs on the thread pool */
    struct dr_jwt_claims *claims;
    char *room;
    int64_t since;
    unsigned answers; /* subscribes waiting for the check, at least 1 */
    int allowed;
    int err;
};

static struct rt_join *find_join(struct rt_conn *c, const char *room)
{
    for (struct rt_join *jj = c->joins; jj; jj = jj->next) {
        if (strcmp(jj->room, room) == 0) {
            return jj;
        }
    }
    return NULL;
}

/* The rooms c has joined or is being checked for: a room is never both (see on_subscribe). */
static size_t rooms_taken(const struct rt_conn *c)
{
    size_t n = c->nsubs;

    for (const struct rt_join *jj = c->joins; jj; jj = jj->next) {
        n++;
    }
    return n;
}

static void join_work(uv_work_t *w)
{
    struct rt_join *jj = w->data;
    jj->err = dr__rt_may_join(jj->c->hub->db, jj->claims, jj->room, &jj->allowed);
}

static void join_after(uv_work_t *w, int status);

/*
 * A refreshed token (an auth message) may have replaced the claims the check of jj ran on: the
 * join is decided on the connection's claims as they are now, by the rule room_lost() keeps for
 * joined rooms. What they grant by themselves (the rooms claim, admin) is granted. Otherwise the
 * store's answer rests on sub, which a refresh keeps, and on the email claim: when that changed,
 * the store is asked again, for the fresh claims. 1 when it is (jj stays pending).
 */
static int join_redecide(struct rt_join *jj)
{
    struct rt_conn *c = jj->c;
    int allowed;

    if (dr__rt_may_join_local(c->claims, jj->room, &allowed) == 0) {
        jj->err = DR_OK;
        jj->allowed = allowed;
        return 0;
    }
    if (same_email(jj->claims, c->claims)) {
        return 0;
    }
    dr_jwt_claims_destroy(jj->claims);
    jj->claims = dr_jwt_claims_dup(c->claims);
    jj->err = DR_OK;
    jj->allowed = 0;
    if (uv_queue_work(c->hub->loop, &jj->w, join_work, join_after) != 0) {
        jj->err = DR_EIO; /* not checked is not refused: the client may try again */
        return 0;
    }
    return 1;
}

static void join_after(uv_work_t *w, int status)
{
    struct rt_join *jj = w->data;
    struct rt_conn *c = jj->c;
    struct rt_join **pp = &c->joins;

    if (c->state == RT_CONN_OPEN && join_redecide(jj)) {
        return;
    }
    while (*pp != jj) {
        pp = &(*pp)->next;
    }
    *pp = jj->next;
    for (unsigned i = 0; i < jj->answers && c->state == RT_CONN_OPEN; i++) {
        if (jj->err) {
            send_error_in(c, "unavailable", "permission check failed, try again", jj->room);
        } else if (!jj->allowed) {
            send_error_in(c, "forbidden", "not allowed to join this room", jj->room);
            dr__rt_conn_close(c, 4003, "forbidden room");
        } else {
            join(c, jj->room, jj->since);
        }
    }
    dr_jwt_claims_destroy(jj->claims);
    free(jj->room);
    free(jj);
    dr__rt_conn_unref(c);
}

/* The since of a client message (its text s[0..len)) into *since, -1 when it has none: DR_OK, or
 * DR_EINVAL when it is not a seq (a whole number from 0, written as one). Read from the text, not
 * from cJSON's double, which rounds a seq above 2^53 to a neighbour. */
static int read_since(const char *s, size_t len, int64_t *since)
{
    int err = dr_json_i64_exact(s, len, "since", since);

    if (err == DR_ENOTFOUND) {
        *since = -1;
        return DR_OK;
    }
    return err == DR_OK && *since >= 0 ? DR_OK : DR_EINVAL;
}

static void on_subscribe(struct rt_conn *c, const cJSON *m, const char *text, size_t len)
{
    const char *room = dr_json_str(m, "room");
    int64_t since = -1;
    int allowed;
    struct rt_join *jj;

    if (!dr_room_valid(room)) {
        dr__rt_conn_send_error(c, "invalid_room",
                               "room must be user:, org:, meeting: or "
                               "shipment: followed by an id");
        return;
    }
    if (read_since(text, len, &since) != DR_OK) {
        dr__rt_conn_send_error(c, "invalid_since", "since must be a non-negative integer");
        return;
    }
    if (find_sub(c, room)) {
        join(c, room, since);
        return;
    }
    if ((jj = find_join(c, room))) {
        jj->answers++;
        return;
    }
    if (rooms_taken(c) >= c->hub->conf->max_rooms) {
        send_error_in(c, "too_many_rooms", "room limit per connection reached", room);
        return;
    }
    if (dr__rt_may_join_local(c->claims, room, &allowed) == 0) {
        if (!allowed) {
            send_error_in(c, "forbidden", "not allowed to join this room", room);
            dr__rt_conn_close(c, 4003, "forbidden room");
            return;
        }
        join(c, room, since);
        return;
    }
    jj = dr_xcalloc(1, sizeof(*jj));
    jj->c = c;
    jj->claims = dr_jwt_claims_dup(c->claims);
    jj->room = dr_xstrdup(room);
    jj->since = since;
    jj->answers = 1;
    jj->w.data = jj;
    jj->next = c->joins;
    c->joins = jj;
    c->refs++;
    if (uv_queue_work(c->hub->loop, &jj->w, join_work, join_after) != 0) {
        join_after(&jj->w, 0);
    }
}

static void on_unsubscribe(struct rt_conn *c, const cJSON *m)
{
    const char *room = dr_json_str(m, "room");
    struct rt_sub *s = room ? find_sub(c, room) : NULL;
    cJSON *o;

    if (!s) {
        send_error_in(c, "not_subscribed", "not subscribed to that room",
                      room && dr_room_valid(room) ? room : NULL);
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "unsubscribed");
    cJSON_AddStringToObject(o, "room", room);
    remove_sub(c, s); /* room points into s: send after building the frame */
    dr__rt_conn_send_json(c, o);
    cJSON_Delete(o);
}

/* ---- ack ---- */

struct ack_job {
    uv_work_t w;
    struct rt_conn *c;
    char *sub;
    char *org;
    char *id;
    int64_t seq;
    int err;
};

static void ack_work(uv_work_t *w)
{
    struct ack_job *aj = w->data;
    char *id = NULL;

    aj->err = dr__rt_inbox_mark(aj->c->hub->db, aj->sub, aj->org, aj->id, &aj->seq, &id);
    if (!aj->err) {
        free(aj->id);
        aj->id = id; /* an ack by seq names no id: the store's */
    }
}

static void ack_after(uv_work_t *w, int status)
{
    struct ack_job *aj = w->data;
    struct rt_conn *c = aj->c;
    struct dr_log_field f[2];
    size_t n = 0;

    /* an ack is the WebSocket's way to mark read: audited like POST .../{id}/read, with the id
     * or seq asked for, and both once the notification is found */
    if (aj->id) {
        f[n++] = DR_LOG_STR("notification_id", aj->id);
    }
    if (!aj->err || !aj->id) {
        f[n++] = DR_LOG_INT("seq", aj->seq);
    }
    dr_audit_inbox(aj->sub, "read", "ws",
                   aj->err == DR_ENOTFOUND ? 404
                   : aj->err               ? 503
                                           : 200,
                   f, n);
    if (aj->err == DR_ENOTFOUND) {
        if (c->state == RT_CONN_OPEN) {
            dr__rt_conn_send_error(c, "not_found", "no such notification in your inbox");
        }
    } else if (aj->err) {
        if (c->state == RT_CONN_OPEN) {
            dr__rt_conn_send_error(c, "unavailable", "could not mark read, try again");
        }
    } else {
        struct dr_buf b;
        dr_buf_init(&b, 1024);
        dr_buf_appends(&b, "{\"type\":\"read\",\"id\":");
        dr_buf_append_json_str(&b, aj->id, strlen(aj->id));
        dr_buf_printf(&b, ",\"seq\":%lld}", (long long)aj->seq);
        dr__hub_tell_user(c->hub, aj->sub, b.data, c);
        dr_buf_cleanup(&b);
    }
    free(aj->sub);
    free(aj->org);
    free(aj->id);
    free(aj);
    dr__rt_conn_unref(c);
}

static void on_ack(struct rt_conn *c, const cJSON *m, const char *text, size_t len)
{
    const char *id = dr_json_str(m, "id");
    int64_t seq = 0;
    struct ack_job *aj;

    /* the seq to the unit, as since (read_since) */
    if (!id && (dr_json_i64_exact(text, len, "seq", &seq) != DR_OK || seq <= 0)) {
        dr__rt_conn_send_error(c, "invalid_ack", "ack needs an id or a seq");
        return;
    }
    if (id && strlen(id) > 128) {
        dr__rt_conn_send_error(c, "invalid_ack", "id too long");
        return;
    }
    aj = dr_xcalloc(1, sizeof(*aj));
    aj->c = c;
    aj->sub = dr_xstrdup(c->claims->sub);
    aj->org = dr_xstrdup(c->claims->org);
    aj->id = dr_xstrdup(id);
    aj->seq = seq;
    aj->w.data = aj;
    c->refs++;
    if (uv_queue_work(c->hub->loop, &aj->w, ack_work, ack_after) != 0) {
        aj->err = DR_EIO;
        ack_after(&aj->w, 0);
    }
}

/* ---- client messages ---- */

int dr__rt_conn_rate_ok(struct rt_conn *c)
{
    const struct rt_conf *cf = c->hub->conf;
    return dr_bucket_take(&c->rate, cf->rate, cf->burst, dr_mono_ms(), NULL);
}

/*
 * A room of c that the refreshed claims fresh may not grant, or NULL. A room the old claims
 * granted by themselves (its user, its org, the rooms claim, admin) must be granted by the new
 * ones by themselves. One the store granted (organizer, participant by email, owner) still is:
 * that rests on sub, which is the same, and on the email claim, which must then be the same
 * too. A lost room ends the connection (4003) rather than leaving it quietly: the client
 * reconnects with the new token, joins what it grants and resumes from its last seq.
 */
static const char *room_lost(const struct dr_jwt_claims *old, const struct dr_jwt_claims *fresh,
                             const struct rt_conn *c)
{
    int same = same_email(old, fresh);

    for (size_t i = 0; i < c->nsubs; i++) {
        const char *room = c->subs[i].room;
        int was = 0, now = 0;
        int old_decided = dr__rt_may_join_local(old, room, &was) == 0;
        int new_decided = dr__rt_may_join_local(fresh, room, &now) == 0;
        if (new_decided && now) {
            continue;
        }
        if ((old_decided && was) || !same || new_decided) {
            return room;
        }
    }
    return NULL;
}

static void on_auth(struct rt_conn *c, const cJSON *m, const char *text, size_t len)
{
    const char *token = dr_json_str(m, "token");
    struct dr_jwt_claims *claims = NULL;
    char why[DR_JWT_WHY_SIZE] = "malformed";
    char reason[64];
    int64_t since = -1;
    int err;

    if (!token || dr__rt_verify(c->hub, token, strlen(token), &claims, why, sizeof(why))) {
        dr_metrics_inc(RT_M_REFUSED, "reason=\"unauthenticated\"", 1);
        snprintf(reason, sizeof(reason), "unauthenticated: %s", token ? why : "no token");
        dr__rt_conn_close(c, 4001, reason);
        return;
    }
    if (c->state == RT_CONN_OPEN) {
        /* a fresh token for the same user extends the connection */
        const char *lost = NULL;
        if (strcmp(claims->sub, c->claims->sub) != 0) {
            dr_jwt_claims_destroy(claims);
            dr__rt_conn_close(c, 4003, "token for another user");
            return;
        }
        if ((lost = room_lost(c->claims, claims, c))) {
            /* the kind of room only: a user room names its user */
            DR_INFO("realtime", "refreshed token grants fewer rooms", "conn=%llu room_kind=%.*s",
                    (unsigned long long)c->id, (int)strcspn(lost, ":"), lost);
            dr_jwt_claims_destroy(claims);
            dr__rt_conn_close(c, 4003, "token no longer grants a joined room");
            return;
        }
        dr_jwt_claims_destroy(c->claims);
        c->claims = claims;
        return;
    }
    /* Going on live-only would lose what the client asked to get back. */
    if (read_since(text, len, &since) != DR_OK) {
        dr_jwt_claims_destroy(claims);
        dr__rt_conn_send_error(c, "invalid_since", "since must be a non-negative integer");
        dr__rt_conn_close(c, 4001, "unauthenticated: invalid since");
        return;
    }
    if (since < 0) {
        since = c->since;
    }
    err = dr__rt_conn_authenticated(c, claims, since, NULL, 0);
    if (err) {
        dr_metrics_inc(RT_M_REFUSED, "reason=\"per_user_limit\"", 1);
        dr__rt_conn_close(c, 4029, "too many connections for this user");
    }
}

void dr__rt_conn_on_message(struct rt_conn *c, const char *data, size_t len)
{
    cJSON *m;
    const char *type;

    if (c->state != RT_CONN_AUTH && c->state != RT_CONN_OPEN) {
        return;
    }
    if (!dr__rt_conn_rate_ok(c)) {
        dr_metrics_inc(RT_M_REFUSED, "reason=\"rate_limited\"", 1);
        dr__rt_conn_close(c, 1008, "message rate limit exceeded");
        return;
    }
    m = dr_json_parse(data, len);
    type = dr_json_str(m, "type");
    if (!cJSON_IsObject(m) || !type) {
        if (c->state == RT_CONN_AUTH) {
            dr__rt_conn_close(c, 4001, "unauthenticated: expected an auth message");
        } else {
            dr__rt_conn_send_error(c, "invalid_message", "expected a JSON object with a type");
        }
    } else if (strcmp(type, "auth") == 0) {
        on_auth(c, m, data, len);
    } else if (c->state == RT_CONN_AUTH) {
        dr__rt_conn_close(c, 4001, "unauthenticated: expected an auth message");
    } else if (strcmp(type, "subscribe") == 0) {
        on_subscribe(c, m, data, len);
    } else if (strcmp(type, "unsubscribe") == 0) {
        on_unsubscribe(c, m);
    } else if (strcmp(type, "ack") == 0) {
        on_ack(c, m, data, len);
    } else if (strcmp(type, "ping") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "pong");
        dr__rt_conn_send_json(c, o);
        cJSON_Delete(o);
    } else {
        dr__rt_conn_send_error(c, "unknown_type", "unknown message type");
    }
    cJSON_Delete(m);
}
