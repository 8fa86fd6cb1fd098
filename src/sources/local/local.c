/*
 * The local source. Three parties:
 *   - the publish handler (loop thread) validates and hands rows to the writer;
 *   - the writer thread group-commits everything it has been given in one transaction, then
 *     posts the results back to the loop;
 *   - the feeder (loop thread) hands committed rows to the router while it has room, and reads
 *     the table in id order when it fell behind (after a restart, or under load).
 */
#include "dr/local.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dr/apikey.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/running.h"
#include "dr/util.h"

#define LOAD_BATCH          2000
#define MAX_PENDING_PUBLISH 200000 /* rows waiting for the writer before publishes get 429 */
#define INLINE_PARSE_MAX    16384  /* publish bodies up to this size are decoded on the loop */
#define REREAD_AFTER_MS     1000   /* after the store failed a completion or a read */

enum op_kind { OP_PUBLISH, OP_COMPLETE, OP_UPDATE, OP_ENQUEUE };

struct op {
    enum op_kind kind;
    struct dr_qmsg *rows; /* inserts */
    size_t nrows;
    int64_t delete_id;     /* OP_COMPLETE: 0 = none */
    struct dr_qupdate upd; /* OP_UPDATE */
    char *upd_error;
    char *dedup_key;            /* OP_COMPLETE when processed */
    struct dr_dead_letter dead; /* OP_COMPLETE when dead (message_id NULL otherwise) */
    int has_dead;
    /* results */
    int err;
    /* continuations */
    struct dr_http_req *req;
    struct dr_msg *msg;
    dr_local_enqueued_cb cb;
    void *cb_ctx;
    struct op *next;
};

/* Queue ids (all > 0) in an open-addressing set; 0 marks a free slot. */
struct id_set {
    int64_t *slot;
    size_t cap; /* a power of two, or 0 */
    size_t n;
};

struct dr_local {
    uv_loop_t *loop;
    const struct dr_config *cfg;
    struct dr_store *store;
    struct dr_router *router;

    pthread_t writer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct op *todo_head, *todo_tail;
    struct op *done_head, *done_tail;
    size_t pending_rows;
    int stop;
    uv_async_t *async; /* its own allocation: freed by its close callback, after the source */
    struct dr_running *running; /* what the router's workers run, for after a crash */

    /* feeder */
    int started;
    int stopping;
    int64_t cursor; /* highest queue id handed to the router (or skipped as done) */
    int backlog;    /* rows with id > cursor may exist in the table only */
    int loading;
    int dropped; /* rows were left to the table since the current load began */
    /* Rows handed to the router and not completed yet: a backlog load, a take-over and the
     * fast path can all come across the same row, and it must run once. */
    struct id_set out;
    /* rows completed while a backlog read was under way: the read may have seen them before
     * their completion was committed, and must not hand them over again */
    struct id_set done_in_read;
    uv_timer_t *lease_timer;
    /* the table is read again from here on (rows the store failed to complete or to read), not
     * before: a failing store would fail them again at once */
    int64_t reread_at_ms;
    uv_timer_t *reread_timer;
    int leasing; /* a renew/take-over pass is under way */
    uv_work_t lease_work;
    struct dr_qmsg *expired;
    size_t nexpired;
    uv_work_t load_work;
    struct dr_qmsg *loaded;
    size_t nloaded;
    int load_err;
};

static const struct dr_source_ops local_ops;
static void parse_payloads(struct dr_qmsg *rows, size_t n);
static void feed_rows(struct dr_local *l, struct dr_qmsg *rows, size_t n);
static void maybe_load(struct dr_local *l);

/* ---------- the set of rows out with the router ---------- */

static size_t id_slot(const struct id_set *s, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 32) & (s->cap - 1);
    while (s->slot[i] && s->slot[i] != id) {
        i = (i + 1) & (s->cap - 1);
    }
    return i;
}

static int id_set_has(const struct id_set *s, int64_t id)
{
    return s->cap && s->slot[id_slot(s, id)] == id;
}

static void id_set_add(struct id_set *s, int64_t id)
{
    if ((s->n + 1) * 4 > s->cap * 3) { /* keep it at most 3/4 full */
        struct id_set bigger = {dr_xcalloc(s->cap ? s->cap * 2 : 64, sizeof(int64_t)),
                                s->cap ? s->cap * 2 : 64, 0};
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slot[i]) {
                id_set_add(&bigger, s->slot[i]);
            }
        }
        free(s->slot);
        *s = bigger;
    }
    size_t i = id_slot(s, id);
    if (!s->slot[i]) {
        s->slot[i] = id;
        s->n++;
    }
}

static void id_set_clear(struct id_set *s)
{
    free(s->slot);
    memset(s, 0, sizeof(*s));
}

static void id_set_remove(struct id_set *s, int64_t id)
{
    if (!s->cap) {
        return;
    }
    size_t i = id_slot(s, id), j = i;
    if (!s->slot[i]) {
        return;
    }
    s->slot[i] = 0;
    s->n--;
    /* linear probing: move back every entry after the hole that could not be found past it */
    for (;;) {
        j = (j + 1) & (s->cap - 1);
        if (!s->slot[j]) {
            break;
        }
        int64_t moved = s->slot[j];
        s->slot[j] = 0;
        s->slot[id_slot(s, moved)] = moved;
    }
}

/* ---------- writer thread ---------- */

static void op_free(struct op *o)
{
    if (o->rows) {
        dr_qmsgs_free(o->rows, o->nrows);
    }
    free(o->upd_error);
    free(o->dedup_key);
    if (o->has_dead) {
        dr_dead_letter_cleanup(&o->dead);
    }
    free(o);
}

/* Applies ops as one transaction; when that fails, one by one so a bad op fails alone. */
static void apply_ops(struct dr_local *l, struct op *list)
{
    struct dr_qbatch b;
    size_t nins = 0, ndel = 0, nupd = 0, ndd = 0, ndead = 0;
    struct op *o;
    int err;

    memset(&b, 0, sizeof(b));
    for (o = list; o; o = o->next) {
        nins += o->nrows;
        ndel += o->delete_id != 0;
        nupd += o->kind == OP_UPDATE;
        ndd += o->dedup_key != NULL;
        ndead += o->has_dead;
    }
    b.inserts = nins ? dr_xcalloc(nins, sizeof(*b.inserts)) : NULL;
    int64_t *dels = ndel ? dr_xcalloc(ndel, sizeof(int64_t)) : NULL;
    struct dr_qupdate *upds = nupd ? dr_xcalloc(nupd, sizeof(*upds)) : NULL;
    const char **dd = ndd ? dr_xcalloc(ndd, sizeof(char *)) : NULL;
    b.dead = ndead ? dr_xcalloc(ndead, sizeof(*b.dead)) : NULL;
    for (o = list; o; o = o->next) {
        /* shallow copies: the ops keep ownership */
        for (size_t i = 0; i < o->nrows; i++) {
            b.inserts[b.ninserts++] = o->rows[i];
        }
        if (o->delete_id) {
            dels[b.ndeletes++] = o->delete_id;
        }
        if (o->kind == OP_UPDATE) {
            upds[b.nupdates++] = o->upd;
        }
        if (o->dedup_key) {
            dd[b.ndedup++] = o->dedup_key;
        }
        if (o->has_dead) {
            b.dead[b.ndead++] = o->dead;
        }
    }
    b.deletes = dels;
    b.updates = upds;
    b.dedup_keys = dd;
    err = dr_store_apply(l->store, &b);
    if (!err) {
        /* copy assigned ids back */
        size_t k = 0;
        for (o = list; o; o = o->next) {
            for (size_t i = 0; i < o->nrows; i++) {
                o->rows[i].id = b.inserts[k++].id;
            }
            o->err = 0;
        }
    } else if (list->next) {
        for (o = list; o; o = o->next) {
            struct op *next = o->next;
            o->next = NULL;
            apply_ops(l, o);
            o->next = next;
        }
    } else {
        list->err = err;
        DR_ERROR("local", "store write failed", "error=\"%s\" kind=%d", dr_strerror(err),
                 list->kind);
    }
    free(b.inserts);
    free(dels);
    free(upds);
    free(dd);
    free(b.dead);
}

/* Drops rows whose dedup key was processed within the window: publishes carrying an
 * idempotency key, and every pushed message (Pub/Sub redelivers by message id). */
static void drop_seen(struct dr_local *l, struct op *o)
{
    int64_t since = dr_now_ms() - l->cfg->dedup_window_ms;
    const char **keys = dr_xcalloc(o->nrows ? o->nrows : 1, sizeof(*keys));
    cJSON **attrs = dr_xcalloc(o->nrows ? o->nrows : 1, sizeof(*attrs));
    int *seen = dr_xcalloc(o->nrows ? o->nrows : 1, sizeof(*seen));

    for (size_t i = 0; i < o->nrows; i++) {
        struct dr_qmsg *q = &o->rows[i];
        if (o->kind == OP_PUBLISH && strncmp(q->message_id, "ik-", 3) != 0) {
            continue; /* no idempotency key: keys[i] stays NULL, never a duplicate */
        }
        attrs[i] = cJSON_Parse(q->attrs_json);
        const char *ik = dr_json_str(attrs[i], "idempotency_key");
        keys[i] = ik && *ik ? ik : q->message_id;
    }
    /* one lookup for the batch; a failed one keeps every row (effects are idempotent) */
    dr_store_dedup_seen_many(l->store, keys, o->nrows, since, seen);
    for (size_t i = 0; i < o->nrows; i++) {
        if (seen[i]) {
            free(o->rows[i].topic);
            o->rows[i].topic = NULL; /* marks "skip" for the compaction below */
        }
        cJSON_Delete(attrs[i]);
    }
    free(keys);
    free(attrs);
    free(seen);
    size_t k = 0;
    for (size_t i = 0; i < o->nrows; i++) {
        if (o->rows[i].topic) {
            o->rows[k++] = o->rows[i];
        } else {
            dr_qmsg_cleanup(&o->rows[i]);
        }
    }
    o->nrows = k;
}

static void *writer_main(void *arg)
{
    struct dr_local *l = arg;

    pthread_mutex_lock(&l->mu);
    for (;;) {
        struct op *list, *o, *tail;
        while (!l->todo_head && !l->stop) {
            pthread_cond_wait(&l->cv, &l->mu);
        }
        if (!l->todo_head && l->stop) {
            break;
        }
        list = l->todo_head;
        l->todo_head = l->todo_tail = NULL;
        pthread_mutex_unlock(&l->mu);

        for (o = list; o; o = o->next) {
            if (o->kind == OP_COMPLETE || o->kind == OP_ENQUEUE) {
                parse_payloads(o->rows, o->nrows); /* emits and pushes: off the loop too */
            }
            if (o->kind == OP_PUBLISH || o->kind == OP_ENQUEUE) {
                /* ids/rows are echoed to the client before dropping: keep a copy of the ids */
                drop_seen(l, o);
            }
        }
        apply_ops(l, list);

        pthread_mutex_lock(&l->mu);
        for (tail = list; tail->next; tail = tail->next) {
        }
        if (l->done_tail) {
            l->done_tail->next = list;
        } else {
            l->done_head = list;
        }
        l->done_tail = tail;
        uv_async_send(l->async);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void submit_op(struct dr_local *l, struct op *o)
{
    pthread_mutex_lock(&l->mu);
    o->next = NULL;
    if (l->todo_tail) {
        l->todo_tail->next = o;
    } else {
        l->todo_head = o;
    }
    l->todo_tail = o;
    l->pending_rows += o->nrows;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* ---------- completions on the loop ---------- */

static void on_async(uv_async_t *a)
{
    struct dr_local *l = a->data;
    struct op *list;

    pthread_mutex_lock(&l->mu);
    list = l->done_head;
    l->done_head = l->done_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (list) {
        struct op *o = list;
        list = o->next;
        pthread_mutex_lock(&l->mu);
        l->pending_rows -= o->nrows <= l->pending_rows ? o->nrows : l->pending_rows;
        pthread_mutex_unlock(&l->mu);
        if (o->kind == OP_PUBLISH && o->req) {
            struct dr_buf *reply = (struct dr_buf *)o->cb_ctx;
            if (o->err) {
                dr_http_respond_error(o->req, 503, "UNAVAILABLE", "could not store messages: %s",
                                      dr_strerror(o->err));
            } else {
                dr_http_respond(o->req, 200, "application/json", reply->data, reply->len);
            }
            dr_buf_cleanup(reply);
            free(reply);
        }
        if (o->kind == OP_ENQUEUE && o->cb) {
            o->cb(o->cb_ctx, o->err);
        }
        if (o->kind == OP_COMPLETE && o->msg) {
            if (o->err) {
                /* Not acked: the row stays, and the table is read again from it a little later
                 * (rows still out with the router are skipped there). */
                DR_ERROR("local", "ack failed, the message runs again",
                         "message_id=%s error=\"%s\"", o->msg->message_id, dr_strerror(o->err));
                if (o->msg->source_id <= l->cursor) {
                    l->cursor = o->msg->source_id - 1;
                }
                l->backlog = 1;
                l->dropped = 1; /* a read under way started past it: it must not end the backlog */
                l->reread_at_ms = dr_mono_ms() + REREAD_AFTER_MS;
            }
            id_set_remove(&l->out, o->msg->source_id); /* done or not, the router let go */
            if (!o->err && l->loading) {
                id_set_add(&l->done_in_read, o->msg->source_id);
            }
            dr_router_release(l->router, o->msg);
        }
        /* Newly committed rows go to the router. */
        if (!o->err && o->nrows && o->kind != OP_UPDATE) {
            feed_rows(l, o->rows, o->nrows);
            o->rows = NULL;
            o->nrows = 0;
        }
        op_free(o);
    }
    maybe_load(l);
}

/* ---------- feeder ---------- */

static struct dr_msg *row_to_msg(struct dr_local *l, struct dr_qmsg *q)
{
    /* the row's payload (and its parse, when done off the loop) moves into the message */
    struct dr_msg *m =
        q->parsed_done
            ? dr_msg_create_parsed(q->message_id, q->topic, q->data, q->data_len, q->parsed,
                                   q->publish_time_ms)
            : dr_msg_create_take(q->message_id, q->topic, q->data, q->data_len, q->publish_time_ms);
    q->parsed = NULL;
    q->parsed_done = 0;
    cJSON *attrs = q->attrs_json ? cJSON_Parse(q->attrs_json) : NULL;
    const cJSON *a;

    cJSON_ArrayForEach(a, attrs)
    {
        if (cJSON_IsString(a)) {
            dr_msg_add_attr(m, a->string, a->valuestring);
        }
    }
    cJSON_Delete(attrs);
    q->data = NULL;
    q->data_len = 0;
    dr_msg_set_ordering_key(m, q->ordering_key);
    m->attempt = q->attempts + 1;
    m->fresh_id = q->fresh_id;
    m->first_failure_ms = q->first_failure_ms;
    m->last_error = q->last_error; /* DR_RUNNING_CRASH_ERROR: see dr_router_submit_after() */
    q->last_error = NULL;
    m->source = l;
    m->source_id = q->id;
    m->received_ns = dr_mono_ns();
    return m;
}

/* Hands a row to the router unless it is out there already. */
static void submit_row_at(struct dr_local *l, struct dr_qmsg *q, int advance)
{
    if (advance && q->id > l->cursor) {
        l->cursor = q->id;
    }
    if (id_set_has(&l->out, q->id)) {
        return;
    }
    id_set_add(&l->out, q->id);

    /* a retry whose time has not come waits in the router, holding its ordering lane: on its
     * own timer here, a later message with its key would run first */
    dr_router_submit_after(l->router, row_to_msg(l, q), &local_ops, l,
                           q->not_before_ms - dr_now_ms());
}

static void submit_row(struct dr_local *l, struct dr_qmsg *q)
{
    submit_row_at(l, q, 1);
}

/* ---------- leases: keep our rows, take over a dead instance's ---------- */

static void lease_work(uv_work_t *w)
{
    struct dr_local *l = w->data;
    int err = dr_store_queue_renew(l->store);
    if (err) {
        DR_WARN("local", "queue lease renewal failed", "error=\"%s\"", dr_strerror(err));
    }
    if (dr_store_queue_claim_expired(l->store, LOAD_BATCH, &l->expired, &l->nexpired) != 0) {
        l->expired = NULL;
        l->nexpired = 0;
    }
}

static void lease_done(uv_work_t *w, int status)
{
    struct dr_local *l = w->data;
    l->leasing = 0;
    if (l->nexpired) {
        DR_INFO("local", "took over queued messages whose owner stopped renewing", "count=%zu",
                l->nexpired);
    }
    for (size_t i = 0; i < l->nexpired && !l->stopping; i++) {
        submit_row_at(l, &l->expired[i], 0);
    }
    dr_qmsgs_free(l->expired, l->nexpired);
    l->expired = NULL;
    l->nexpired = 0;
}

static void on_lease_timer(uv_timer_t *t)
{
    struct dr_local *l = t->data;
    if (l->leasing || l->stopping || !l->started) {
        return;
    }
    l->leasing = 1;
    l->lease_work.data = l;
    uv_queue_work(l->loop, &l->lease_work, lease_work, lease_done);
}

/* Takes ownership of rows. Rows are handed over only in id order with nothing skipped;
 * otherwise the table is read later. */
static void feed_rows(struct dr_local *l, struct dr_qmsg *rows, size_t n)
{
    size_t i = 0;

    if (l->started && !l->stopping && !l->backlog) {
        for (; i < n; i++) {
            if (!rows[i].id) {
                continue; /* duplicate skipped by the insert */
            }
            if (!dr_router_has_room(l->router)) {
                l->backlog = 1;
                break;
            }
            submit_row(l, &rows[i]);
        }
    } else {
        l->backlog = 1;
    }
    if (i < n) {
        l->dropped = 1; /* left in the table: the next load must not think it caught up */
    }
    dr_qmsgs_free(rows, n);
}

static void load_work(uv_work_t *w)
{
    struct dr_local *l = w->data;
    l->load_err = dr_store_queue_load(l->store, l->cursor, LOAD_BATCH, &l->loaded, &l->nloaded);
    if (!l->load_err) {
        parse_payloads(l->loaded, l->nloaded);
    }
}

static void load_done(uv_work_t *w, int status)
{
    struct dr_local *l = w->data;
    l->loading = 0;
    if (l->load_err) {
        DR_ERROR("local", "queue load failed", "error=\"%s\"", dr_strerror(l->load_err));
        id_set_clear(&l->done_in_read);
        l->reread_at_ms = dr_mono_ms() + REREAD_AFTER_MS;
        maybe_load(l);
        return;
    }
    for (size_t i = 0; i < l->nloaded; i++) {
        if (l->stopping) {
            break;
        }
        if (l->loaded[i].id <= l->cursor) {
            continue; /* handed over by the fast path meanwhile */
        }
        if (id_set_has(&l->done_in_read, l->loaded[i].id)) {
            continue; /* read before its completion was committed: done */
        }
        if (!dr_router_has_room(l->router)) {
            break;
        }
        submit_row(l, &l->loaded[i]);
    }
    id_set_clear(&l->done_in_read); /* the next read starts after these commits */
    if (l->nloaded == 0 && !l->dropped) {
        l->backlog = 0;
    }
    dr_qmsgs_free(l->loaded, l->nloaded);
    l->loaded = NULL;
    l->nloaded = 0;
    maybe_load(l);
}

static void on_reread_timer(uv_timer_t *t)
{
    maybe_load(t->data);
}

static void maybe_load(struct dr_local *l)
{
    if (!l->started || l->stopping || !l->backlog || l->loading || !dr_router_has_room(l->router)) {
        return;
    }
    if (l->reread_at_ms) {
        int64_t wait = l->reread_at_ms - dr_mono_ms();
        if (wait > 0) {
            uv_timer_start(l->reread_timer, on_reread_timer, (uint64_t)wait, 0);
            return;
        }
        l->reread_at_ms = 0;
    }
    l->loading = 1;
    l->dropped = 0;
    l->load_work.data = l;
    uv_queue_work(l->loop, &l->load_work, load_work, load_done);
}

static void on_room(void *ctx)
{
    maybe_load(ctx);
}

/* ---------- source callbacks ---------- */

static void emit_rows(struct dr_msg *parent, const struct dr_completion *c, struct op *o)
{
    int64_t now = dr_now_ms();

    o->rows = c->nemits ? dr_xcalloc(c->nemits, sizeof(*o->rows)) : NULL;
    o->nrows = c->nemits;
    for (size_t i = 0; i < c->nemits; i++) {
        const struct dr_emit *e = &c->emits[i];
        struct dr_qmsg *q = &o->rows[i];
        cJSON *attrs = cJSON_CreateObject();
        char id[32];
        int has_trace = 0;

        for (size_t k = 0; k < e->nattrs; k++) {
            cJSON_AddStringToObject(attrs, e->attrs[k].key, e->attrs[k].value);
            has_trace |= strcmp(e->attrs[k].key, "traceparent") == 0;
        }
        if (!has_trace && parent->traceparent) {
            cJSON_AddStringToObject(attrs, "traceparent", parent->traceparent);
        }
        /* Deterministic ids: re-running the parent after a crash emits the same ids, which
         * the queue then ignores. */
        dr_msg_emit_key(parent->message_id, c->emits, i, id);
        q->message_id = dr_xstrdup(id);
        q->topic = dr_xstrdup(e->topic);
        q->attrs_json = dr_json_print(attrs);
        cJSON_Delete(attrs);
        q->data = dr_xmalloc(e->len + 1);
        memcpy(q->data, e->data, e->len);
        q->data[e->len] = '\0';
        q->data_len = e->len;
        q->ordering_key = dr_xstrdup(e->ordering_key);
        q->publish_time_ms = now;
    }
}

static void local_complete(void *source, struct dr_msg *msg, const struct dr_completion *c)
{
    struct dr_local *l = source;
    struct op *o = dr_xcalloc(1, sizeof(*o));

    o->kind = OP_COMPLETE;
    o->delete_id = msg->source_id;
    o->msg = msg;
    if (c->dead) {
        o->has_dead = 1;
        o->dead.message_id = dr_xstrdup(c->dl.message_id);
        o->dead.topic = dr_xstrdup(c->dl.topic);
        o->dead.processor = dr_xstrdup(c->dl.processor);
        o->dead.reason = dr_xstrdup(c->dl.reason);
        o->dead.error = dr_xstrdup(c->dl.error);
        o->dead.attempts = c->dl.attempts;
        o->dead.first_failure_ms = c->dl.first_failure_ms;
        o->dead.last_failure_ms = c->dl.last_failure_ms;
        o->dead.created_ms = c->dl.created_ms;
        o->dead.message_json = dr_xstrdup(c->dl.message_json);
    } else {
        /* A dedup record only matters for an id that can come again (idempotency keys,
         * pushed and emitted messages, replays); an id this instance minted cannot. */
        if (!msg->fresh_id || dr_msg_attr(msg, "idempotency_key")) {
            o->dedup_key = dr_xstrdup(dr_msg_dedup_key(msg));
        }
        emit_rows(msg, c, o);
    }
    submit_op(l, o);
}

static int local_retrying(void *source, struct dr_msg *msg, int64_t delay_ms, const char *error)
{
    struct dr_local *l = source;
    struct op *o = dr_xcalloc(1, sizeof(*o));

    o->kind = OP_UPDATE;
    o->upd.id = msg->source_id;
    o->upd.attempts = msg->attempt - 1;
    o->upd.not_before_ms = dr_now_ms() + delay_ms;
    o->upd.first_failure_ms = msg->first_failure_ms;
    o->upd_error = dr_xstrdup(error);
    o->upd.last_error = o->upd_error;
    submit_op(l, o);
    return 0;
}

static void local_abandon(void *source, struct dr_msg *msg)
{
    /* The row stays in the table: it runs again after the restart. Its id stays in the set of
     * rows out with the router: this comes only from the router's destroy, when the source
     * hands out nothing more (and may be gone already). */
}

static const struct dr_source_ops local_ops = {
    .name = "local",
    .complete = local_complete,
    .retrying = local_retrying,
    .abandon = local_abandon,
};

/* ---------- publish API ---------- */

struct parse_job {
    struct dr_local *l;
    const char *body; /* owned by the request, which outlives the job */
    size_t blen;
    char topic[256];
    struct dr_qmsg *rows;
    size_t n;
    int rc;
    char err[512];
    struct dr_buf *reply;
};

/* Parses the payloads of rows as JSON, off the event loop. */
static void parse_payloads(struct dr_qmsg *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].parsed_done && rows[i].data) {
            rows[i].parsed = dr_json_parse((const char *)rows[i].data, rows[i].data_len);
            rows[i].parsed_done = 1;
        }
    }
}

static void parse_work(void *arg)
{
    struct parse_job *pj = arg;

    pj->rc = dr_publish_parse(pj->body, pj->blen, pj->topic, &pj->rows, &pj->n, pj->err,
                              sizeof(pj->err));
    if (pj->rc) {
        return;
    }
    parse_payloads(pj->rows, pj->n);
    pj->reply = dr_xcalloc(1, sizeof(*pj->reply));
    dr_buf_init(pj->reply, 64 + pj->n * 40);
    dr_buf_appends(pj->reply, "{\"messageIds\":[");
    for (size_t i = 0; i < pj->n; i++) {
        dr_buf_printf(pj->reply, "%s\"%s\"", i ? "," : "", pj->rows[i].message_id);
    }
    dr_buf_appends(pj->reply, "]}");
}

static void parse_done(struct dr_http_req *req, void *arg)
{
    struct parse_job *pj = arg;
    struct dr_local *l = pj->l;
    struct op *o;
    int busy;

    if (pj->rc) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "%s", pj->err);
        goto out;
    }
    pthread_mutex_lock(&l->mu);
    busy = l->pending_rows > MAX_PENDING_PUBLISH;
    pthread_mutex_unlock(&l->mu);
    if (busy || l->stopping) {
        dr_http_add_header(req, "Retry-After", "1");
        dr_http_respond_error(req, l->stopping ? 503 : 429,
                              l->stopping ? "UNAVAILABLE" : "RESOURCE_EXHAUSTED",
                              l->stopping ? "shutting down" : "too many messages waiting");
        goto out;
    }
    dr_metrics_inc("dr_published_total", "source=\"local\"", (double)pj->n);
    o = dr_xcalloc(1, sizeof(*o));
    o->kind = OP_PUBLISH;
    o->rows = pj->rows;
    o->nrows = pj->n;
    o->req = req;
    o->cb_ctx = pj->reply;
    pj->rows = NULL;
    pj->reply = NULL;
    submit_op(l, o);
out:
    if (pj->rows) {
        dr_qmsgs_free(pj->rows, pj->n);
    }
    if (pj->reply) {
        dr_buf_cleanup(pj->reply);
        free(pj->reply);
    }
    free(pj);
}

static void on_publish(struct dr_http_req *req, void *ctx)
{
    struct dr_local *l = ctx;
    const char *path = dr_http_path(req);
    const char *p, *colon;
    char project[256], topic[256];
    size_t blen;
    const char *body;

    if (!dr_apikey_authorize(l->cfg, req, "service")) {
        return;
    }
    /* /v1/projects/{project}/topics/{topic}:publish */
    p = path + strlen("/v1/projects/");
    colon = strrchr(path, ':');
    const char *slash = strchr(p, '/');
    if (!slash || strncmp(slash, "/topics/", 8) != 0 || !colon || colon < slash ||
        strcmp(colon, ":publish") != 0 || (size_t)(slash - p) >= sizeof(project) ||
        (size_t)(colon - slash - 8) >= sizeof(topic)) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "unknown resource %s", path);
        return;
    }
    snprintf(project, sizeof(project), "%.*s", (int)(slash - p), p);
    snprintf(topic, sizeof(topic), "%.*s", (int)(colon - slash - 8), slash + 8);
    if (!dr_topic_name_valid(topic)) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "Invalid [topics] name: (name=%s)",
                              topic);
        return;
    }
    if (!dr_topic_known(l->cfg, topic)) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "Resource not found (resource=%s).", topic);
        return;
    }
    body = dr_http_body(req, &blen);
    if (blen > 10 * 1000 * 1000) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT",
                              "Request payload size exceeds the limit: 10000000 bytes.");
        return;
    }
    /* Decoding a large batch is real work: it runs on the thread pool, not the loop. A small
     * one costs less than the two thread hand-offs, so it is decoded here. */
    struct parse_job *pj = dr_xcalloc(1, sizeof(*pj));
    pj->l = l;
    pj->body = body;
    pj->blen = blen;
    snprintf(pj->topic, sizeof(pj->topic), "%s", topic);
    if (blen <= INLINE_PARSE_MAX) {
        parse_work(pj);
        parse_done(req, pj);
        return;
    }
    if (dr_http_defer(req, parse_work, parse_done, pj) != 0) {
        free(pj);
        dr_http_respond_error(req, 503, "UNAVAILABLE", "cannot schedule the request");
    }
}

/* ---------- lifecycle ---------- */

/*
 * The running file, <data_dir>/running-<instance>: messages inside a processor when the process
 * died are counted an attempt here, before anything is loaded, so that one that kills the process
 * every time runs out of attempts and is dead-lettered ("crashed", dr_router_submit_after)
 * instead of taking the service down on every start.
 */
static void open_running(struct dr_local *l, const char *owner)
{
    char path[4096], name[256];
    int64_t *left = NULL;
    size_t nleft = 0, counted = 0;
    size_t k = 0;

    for (const char *c = owner; *c && k + 1 < sizeof(name); c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                 *c == '.' || *c == '-' || *c == '_';
        name[k++] = ok ? *c : '_';
    }
    name[k] = '\0';
    snprintf(path, sizeof(path), "%s/running-%s", l->cfg->data_dir, name);
    int err = dr_running_open(path, dr_router_workers(l->router), &l->running, &left, &nleft);
    if (err) {
        DR_WARN("local", "no running file: a message that crashes the process is not counted",
                "path=\"%s\" error=\"%s\"", path,
                err == DR_EUNAVAIL ? "another process has it open" : dr_strerror(err));
        return;
    }
    if (nleft) {
        err = dr_store_queue_count_crash(l->store, left, nleft, DR_RUNNING_CRASH_ERROR, &counted);
        if (err) {
            /* not counted this time: they run again as they would have */
            DR_ERROR("local", "cannot count the attempts of messages running at a crash",
                     "count=%zu error=\"%s\"", nleft, dr_strerror(err));
        } else {
            DR_WARN("local",
                    "the last process stopped while processing messages: an attempt counted",
                    "running=%zu counted=%zu first_id=%lld", nleft, counted, (long long)left[0]);
        }
    }
    free(left);
    dr_router_set_running(l->router, l->running, &local_ops);
}

int dr_local_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_store *store,
                    struct dr_router *router, struct dr_local **out)
{
    struct dr_local *l = dr_xcalloc(1, sizeof(*l));

    l->loop = loop;
    l->cfg = cfg;
    l->store = store;
    l->router = router;
    l->backlog = 1; /* whatever the table holds from before */
    {
        char owner[512];
        const char *lease_env = getenv("DR_QUEUE_LEASE_MS");
        int64_t lease = 120000;
        if (lease_env && dr_parse_i64(lease_env, &lease) != 0) {
            lease = 120000;
        }
        if (lease < 1000) {
            lease = 1000;
        }
        dr_instance_name(cfg->port, owner, sizeof(owner));
        dr_store_queue_set_owner(store, owner, lease);
        open_running(l, owner);
        l->lease_timer = dr_xcalloc(1, sizeof(*l->lease_timer));
        uv_timer_init(loop, l->lease_timer);
        l->lease_timer->data = l;
        uv_timer_start(l->lease_timer, on_lease_timer, (uint64_t)lease / 3, (uint64_t)lease / 3);
    }
    l->reread_timer = dr_xcalloc(1, sizeof(*l->reread_timer));
    uv_timer_init(loop, l->reread_timer);
    l->reread_timer->data = l;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->async = dr_xcalloc(1, sizeof(*l->async));
    uv_async_init(loop, l->async, on_async);
    l->async->data = l;
    pthread_create(&l->writer, NULL, writer_main, l);
    pthread_setname_np(l->writer, "dr-writer");
    dr_router_on_room(router, on_room, l);
    *out = l;
    return DR_OK;
}

void dr_local_register(struct dr_local *l, struct dr_http_server *srv)
{
    dr_http_route(srv, "POST", "/v1/projects/*", on_publish, l);
}

void dr_local_start(struct dr_local *l)
{
    l->started = 1;
    maybe_load(l);
}

int dr_local_enqueue(struct dr_local *l, struct dr_qmsg *msgs, size_t n, dr_local_enqueued_cb cb,
                     void *ctx)
{
    struct op *o = dr_xcalloc(1, sizeof(*o));
    o->kind = OP_ENQUEUE;
    o->rows = msgs;
    o->nrows = n;
    o->cb = cb;
    o->cb_ctx = ctx;
    submit_op(l, o);
    return DR_OK;
}

void dr_local_poke(struct dr_local *l)
{
    l->backlog = 1;
    l->dropped = 1;
    maybe_load(l);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

int dr_local_busy(const struct dr_local *l)
{
    return l->loading || l->leasing;
}

void dr_local_stop(struct dr_local *l)
{
    l->stopping = 1;
}

void dr_local_destroy(struct dr_local *l)
{
    if (!l) {
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->writer, NULL);
    /* Results of the last commits: release nothing (the router is gone), free the ops. */
    while (l->done_head) {
        struct op *o = l->done_head;
        l->done_head = o->next;
        if (o->kind == OP_PUBLISH && o->req) {
            struct dr_buf *reply = (struct dr_buf *)o->cb_ctx;
            dr_buf_cleanup(reply);
            free(reply);
        }
        op_free(o);
    }
    /* the loop finishes the close after this returns: the handle must outlive the source */
    uv_close((uv_handle_t *)l->async, free_handle);
    uv_close((uv_handle_t *)l->lease_timer, free_handle);
    uv_close((uv_handle_t *)l->reread_timer, free_handle);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    id_set_clear(&l->out);
    id_set_clear(&l->done_in_read);
    dr_running_close(l->running); /* the router, and its workers, are gone */
    free(l);
}
