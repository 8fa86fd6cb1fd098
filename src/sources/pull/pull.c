#include "dr/pull.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/pubsub.h"
#include "dr/util.h"

#define DLQ_RETRY_S    10 /* a message whose dead letter the store refused comes back after this */
#define ACK_FLUSH_MS 100
#define ACK_BATCH 1000
#define MAX_BACKOFF_MS 5000

struct sub;
struct finish;
struct receipt;

/* One received message while the router has it. */
struct lease {
    struct sub *sub;
    char *ack_id;
    struct receipt *rc; /* the newest deadline request naming it: on receipt, or an extension */
    struct dr_msg *msg;
    struct finish *finishing; /* its completion (publishes, store writes) is under way */
    int64_t deadline_ms; /* when Pub/Sub would redeliver it */
    struct lease *prev, *next;
};

struct sub {
    struct dr_pull *p;
    char *name;
    char *topic;
    int pulls;        /* in flight */
    int64_t backoff_ms;
    uv_timer_t *retry_timer;
    int ensuring;     /* auto-create under way */
    int failing;      /* its last pull failed or was refused: not ready until one succeeds */
    char **acks;      /* pending ack ids */
    size_t nacks, capacks;
};

struct dr_pull {
    uv_loop_t *loop;
    const struct dr_config *cfg;
    struct dr_store *store;
    struct dr_router *router;
    struct dr_pubsub *ps;
    struct sub *subs;
    size_t nsubs;
    int pulls_per_sub;
    int max_messages;
    int ack_deadline_s;
    int auto_create;
    int max_deliveries;
    int64_t nack_after_ms;
    int stopping;
    int outstanding; /* publishes, acks, store jobs */
    int pool_jobs;   /* of those, jobs on the thread pool: they cannot be cancelled */
    int destroyed;   /* dr_pull_destroy() ran; freed when the last pool job is done */
    struct lease *leases;
    size_t nleases;
    uv_timer_t *lease_timer;
    uv_timer_t *ack_timer;
    int ack_timer_armed;
    struct finish *marks, *marks_tail; /* processed, waiting for their dedup write */
    int marking;                      /* a batched dedup write is under way */
};

static const struct dr_source_ops pull_ops;
static void pull_more(struct sub *s);
static void pool_job_done(struct dr_pull *p);

/* ---------- acks ---------- */

static void on_acked(void *ctx, int err, const char *errmsg, const cJSON *res)
{
    struct dr_pull *p = ctx;
    p->outstanding--;
    if (err) {
        /* The message is redelivered after its deadline: at-least-once, dedup drops it. */
        DR_WARN("pull", "ack failed", "error=\"%s\"", errmsg ? errmsg : dr_strerror(err));
    }
}

static void flush_acks(struct dr_pull *p)
{
    for (size_t i = 0; i < p->nsubs; i++) {
        struct sub *s = &p->subs[i];
        size_t off = 0;
        while (off < s->nacks) {
            size_t n = s->nacks - off > ACK_BATCH ? ACK_BATCH : s->nacks - off;
            if (dr_pubsub_ack(p->ps, s->name, (const char *const *)s->acks + off, n, on_acked,
                              p) == 0) {
                p->outstanding++;
            }
            off += n;
        }
        for (size_t k = 0; k < s->nacks; k++) {
            free(s->acks[k]);
        }
        s->nacks = 0;
    }
}

static void on_ack_timer(uv_timer_t *t)
{
    struct dr_pull *p = t->data;
    p->ack_timer_armed = 0;
    flush_acks(p);
}

static void queue_ack(struct sub *s, const char *ack_id)
{
    struct dr_pull *p = s->p;
    if (!p->ps) {
        return; /* destroyed: the ack timer is gone, Pub/Sub redelivers after the deadline */
    }
    if (s->nacks == s->capacks) {
        s->capacks = s->capacks ? s->capacks * 2 : 64;
        s->acks = dr_xrealloc(s->acks, s->capacks * sizeof(char *));
    }
    s->acks[s->nacks++] = dr_xstrdup(ack_id);
    if (s->nacks >= ACK_BATCH) {
        flush_acks(p);
    } else if (!p->ack_timer_armed) {
        p->ack_timer_armed = 1;
        uv_timer_start(p->ack_timer, on_ack_timer, ACK_FLUSH_MS, 0);
    }
}

static void modack_one(struct sub *s, const char *ack_id, int deadline_s)
{
    const char *ids[1] = {ack_id};
    if (dr_pubsub_modack(s->p->ps, s->name, ids, 1, deadline_s, on_acked, s->p) == 0) {
        s->p->outstanding++;
    }
}

/* ---------- leases ---------- */

/*
 * A modifyAckDeadline that sets the full deadline: the one sent on receipt of one pull's
 * messages, or a lease extension of several. While it is on its way, an ack or a nack of one of
 * them waits for its answer: sent meanwhile (on another connection) it could reach Pub/Sub
 * first, and the deadline, coming after, would lease a nacked message again (back only after
 * the deadline instead of its delay) or name an ack id already acked. A lease follows the newest
 * such request that names it.
 */
struct receipt {
    struct dr_pull *p;
    int refs; /* leases (and undecodable messages) it covers, + 1 while the modack is out */
    int open; /* the modack is on its way */
    struct held *held, *held_tail; /* acks and nacks waiting for its answer, in order */
};

struct held {
    struct held *next;
    struct sub *sub;
    int deadline_s; /* -1: an ack */
    char ack_id[];
};

/* Acks (deadline_s -1) or sets the deadline of the message of ack_id now. */
static void settle_now(struct sub *s, const char *ack_id, int deadline_s)
{
    if (deadline_s < 0) {
        queue_ack(s, ack_id);
    } else {
        modack_one(s, ack_id, deadline_s);
    }
}

/* settle_now(), once rc's modack on receipt (NULL: none) is answered. */
static void settle(struct receipt *rc, struct sub *s, const char *ack_id, int deadline_s)
{
    struct held *h;

    if (!rc || !rc->open) {
        settle_now(s, ack_id, deadline_s);
        return;
    }
    h = dr_xmalloc(sizeof(*h) + strlen(ack_id) + 1);
    h->next = NULL;
    h->sub = s;
    h->deadline_s = deadline_s;
    strcpy(h->ack_id, ack_id);
    if (rc->held_tail) {
        rc->held_tail->next = h;
    } else {
        rc->held = h;
    }
    rc->held_tail = h;
}

static struct receipt *receipt_new(struct dr_pull *p)
{
    struct receipt *rc = dr_xcalloc(1, sizeof(*rc));

    rc->p = p;
    return rc;
}

static void receipt_unref(struct receipt *rc)
{
    if (rc && --rc->refs == 0) {
        free(rc); /* nothing is held: that needs it open, and open holds a reference */
    }
}

static void on_deadline_set(void *ctx, int err, const char *errmsg, const cJSON *res)
{
    struct receipt *rc = ctx;
    struct dr_pull *p = rc->p;
    struct held *h = rc->held;

    p->outstanding--;
    if (err && err != DR_EUNAVAIL) {
        /* The deadline before holds (on receipt, the subscription's own, until the first
         * extension): Pub/Sub may redeliver meanwhile, and dedup drops the copy once the message
         * is done. */
        DR_WARN("pull", "ack deadline not set", "error=\"%s\"", errmsg ? errmsg : dr_strerror(err));
    }
    rc->open = 0;
    rc->held = rc->held_tail = NULL;
    while (h) {
        struct held *next = h->next;
        if (err != DR_EUNAVAIL) {
            settle_now(h->sub, h->ack_id, h->deadline_s);
        } /* else the client is going away: Pub/Sub redelivers after the deadline */
        free(h);
        h = next;
    }
    receipt_unref(rc);
}

/* Sets the full ack deadline of the messages of ids; their acks and nacks wait for the answer
 * (struct receipt rc). */
static void set_deadline(struct sub *s, const char **ids, size_t n, struct receipt *rc)
{
    if (dr_pubsub_modack(s->p->ps, s->name, ids, n, s->p->ack_deadline_s, on_deadline_set, rc) ==
        0) {
        s->p->outstanding++;
        rc->open = 1;
        rc->refs++;
    }
}

/*
 * Sets the ack deadline of everything one pull brought to pubsub.ack_deadline_seconds, at once
 * and in one request (as Google's client libraries do on receipt). Leases are extended from
 * that deadline on, and the subscription's own may be shorter: one created elsewhere keeps the
 * 10 s default, and Pub/Sub would redeliver a message before its first extension. Reading the
 * subscription's deadline at start instead would need the right to read the subscription
 * (subscribers often lack it), could be changed afterwards, and would still leave the time the
 * pull's answer spent on the way unaccounted for; a modack on receipt holds whatever the
 * subscription says. An ack or nack of one of the messages waits for its answer (struct
 * receipt), so that it never follows the nack to Pub/Sub.
 */
static void modack_received(struct sub *s, struct dr_pubsub_msg **msgs, size_t n,
                            struct receipt *rc)
{
    const char **ids = dr_xcalloc(n, sizeof(*ids));

    for (size_t i = 0; i < n; i++) {
        ids[i] = msgs[i]->ack_id;
    }
    set_deadline(s, ids, n, rc);
    free(ids);
}

static struct lease *lease_of(struct dr_msg *m)
{
    return m->source_handle;
}

static void lease_drop(struct dr_pull *p, struct lease *l)
{
    if (l->prev) {
        l->prev->next = l->next;
    } else {
        p->leases = l->next;
    }
    if (l->next) {
        l->next->prev = l->prev;
    }
    p->nleases--;
    receipt_unref(l->rc);
    free(l->ack_id);
    free(l);
}

/* Extends the deadline of everything held before Pub/Sub would hand it to someone else. */
static void on_lease_timer(uv_timer_t *t)
{
    struct dr_pull *p = t->data;
    int64_t now = dr_mono_ms();
    int64_t horizon = now + (int64_t)p->ack_deadline_s * 1000 / 2;

    for (size_t i = 0; i < p->nsubs; i++) {
        struct sub *s = &p->subs[i];
        const char **ids = NULL;
        size_t n = 0, cap = 0;
        struct receipt *rc = NULL;
        for (struct lease *l = p->leases; l; l = l->next) {
            if (l->sub != s || l->deadline_ms > horizon) {
                continue;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                ids = dr_xrealloc(ids, cap * sizeof(*ids));
            }
            ids[n++] = l->ack_id;
            l->deadline_ms = now + (int64_t)p->ack_deadline_s * 1000;
            /* its ack or nack from now on waits for this extension (struct receipt) */
            if (!rc) {
                rc = receipt_new(p);
            }
            receipt_unref(l->rc);
            l->rc = rc;
            rc->refs++;
        }
        if (n) {
            set_deadline(s, ids, n, rc);
        }
        free(ids);
    }
}

/* ---------- completion ---------- */

struct finish {
    struct finish *next; /* waiting for the next batched dedup write */
    struct dr_pull *p;
    struct dr_msg *msg;
    int dead;
    struct dr_dead_letter dl;
    char *dedup_key;
    int pending_publishes;
    int failed;
    char *emit_error; /* why the first emit that failed did ("<topic>: <reason>") */
    int err;
    int detached; /* the router let go of msg (destroyed): this holds its own reference */
};

/* f is over: the message's ack or nack is on its way. */
static void finish_done(struct finish *f)
{
    struct dr_pull *p = f->p;

    lease_drop(p, lease_of(f->msg));
    f->msg->source_handle = NULL;
    if (f->detached) {
        dr_msg_unref(f->msg);
    } else {
        dr_router_release(p->router, f->msg);
    }
    dr_dead_letter_cleanup(&f->dl);
    free(f->dedup_key);
    free(f->emit_error);
    free(f);
    for (size_t i = 0; i < p->nsubs; i++) {
        pull_more(&p->subs[i]);
    }
}

static void finish_ack(struct finish *f)
{
    struct lease *l = lease_of(f->msg);

    if (f->failed) {
        /* Its dead letter could not be stored: let Pub/Sub deliver it again, not at once (with
         * the store down it would be processed and refused again as fast as it can go) */
        settle(l->rc, l->sub, l->ack_id, DLQ_RETRY_S);
    } else {
        settle(l->rc, l->sub, l->ack_id, -1);
        double secs = (double)(dr_mono_ns() - (uint64_t)f->msg->received_ns) / 1e9;
        dr_metrics_observe("dr_end_to_end_seconds", "source=\"pubsub\"", secs);
    }
    finish_done(f);
}

/* Dead letters are stored one by one: they are rare. */
static void store_work(uv_work_t *w)
{
    struct finish *f = w->data;
    f->err = dr_store_dlq_put(f->p->store, &f->dl);
}

static void store_done(uv_work_t *w, int status)
{
    struct finish *f = w->data;
    struct dr_pull *p = f->p;
    free(w);
    p->outstanding--;
    if (f->err && f->dead) {
        DR_ERROR("pull", "dead letter not stored", "message_id=%s error=\"%s\"",
                 f->msg->message_id, dr_strerror(f->err));
        f->failed = 1;
    }
    /* a failed dedup mark only means a redelivery may run again: effects are idempotent */
    finish_ack(f);
    pool_job_done(p);
}

/* Dedup marks of processed messages go to the store in one transaction per batch (not one per
 * message), then their acks go out. */
struct mark_batch {
    uv_work_t work;
    struct dr_pull *p;
    struct finish *list;
    int err;
};

static void mark_work(uv_work_t *w)
{
    struct mark_batch *mb = (struct mark_batch *)w;
    struct dr_qbatch b;
    size_t n = 0;
    const char **keys;

    for (struct finish *f = mb->list; f; f = f->next) {
        n++;
    }
    keys = dr_xcalloc(n, sizeof(*keys));
    n = 0;
    for (struct finish *f = mb->list; f; f = f->next) {
        keys[n++] = f->dedup_key;
    }
    memset(&b, 0, sizeof(b));
    b.dedup_keys = keys;
    b.ndedup = n;
    mb->err = dr_store_apply(mb->p->store, &b);
    free(keys);
}

static void start_marks(struct dr_pull *p);

static void mark_done(uv_work_t *w, int status)
{
    struct mark_batch *mb = (struct mark_batch *)w;
    struct dr_pull *p = mb->p;
    struct finish *f = mb->list;

    p->outstanding--;
    p->marking = 0;
    if (mb->err) {
        /* only means a redelivery may run again: effects are idempotent */
        DR_WARN("pull", "dedup records not stored", "error=\"%s\"", dr_strerror(mb->err));
    }
    free(mb);
    while (f) {
        struct finish *next = f->next;
        finish_ack(f);
        f = next;
    }
    start_marks(p);
    pool_job_done(p);
}

static void start_marks(struct dr_pull *p)
{
    struct mark_batch *mb;

    if (p->marking || !p->marks) {
        return;
    }
    mb = dr_xcalloc(1, sizeof(*mb));
    mb->p = p;
    mb->list = p->marks;
    p->marks = p->marks_tail = NULL;
    p->marking = 1;
    p->outstanding++;
    p->pool_jobs++;
    uv_queue_work(p->loop, &mb->work, mark_work, mark_done);
}

static void after_publishes(struct finish *f)
{
    struct dr_pull *p = f->p;
    uv_work_t *w;

    if (!f->dead) {
        /* Its emits are out: the next message of its ordering key may run now, not after its
         * dedup write and ack, which a failure would not send round again. */
        if (!f->detached) {
            dr_router_release_lanes(p->router, f->msg);
        }
        f->next = NULL;
        if (p->marks_tail) {
            p->marks_tail->next = f;
        } else {
            p->marks = f;
        }
        p->marks_tail = f;
        start_marks(p);
        return;
    }
    w = dr_xcalloc(1, sizeof(*w));
    w->data = f;
    p->outstanding++;
    p->pool_jobs++;
    uv_queue_work(p->loop, w, store_work, store_done);
}

static void emits_failed(struct finish *f);

/* One of f's publishes, or the guard that covers their start, is over. */
static void publish_over(struct finish *f)
{
    if (--f->pending_publishes > 0) {
        return;
    }
    if (f->failed) {
        emits_failed(f);
    } else {
        after_publishes(f);
    }
}

/* One publish of a finish. */
struct pub {
    struct finish *f;
    char topic[]; /* where it went */
};

/* The first emit that failed says why the message's emits did. */
static void emit_failure(struct finish *f, const char *topic, const char *why)
{
    f->failed = 1;
    if (!f->emit_error) {
        size_t n = strlen(topic) + strlen(why) + 3;
        f->emit_error = dr_xmalloc(n);
        snprintf(f->emit_error, n, "%s: %s", topic, why);
    }
}

static void on_emit_published(void *ctx, int err, const char *errmsg, const char *const *ids,
                              size_t n)
{
    struct pub *pb = ctx;
    struct finish *f = pb->f;
    const char *why = errmsg ? errmsg : dr_strerror(err);

    f->p->outstanding--;
    if (err) {
        if (f->dead) {
            /* the dead letter is still stored in the database */
            DR_WARN("pull", "dead-letter topic publish failed", "message_id=%s error=\"%s\"",
                    f->msg->message_id, why);
        } else {
            DR_WARN("pull", "emit publish failed", "message_id=%s topic=%s error=\"%s\"",
                    f->msg->message_id, pb->topic, why);
            emit_failure(f, pb->topic, why);
        }
    }
    free(pb);
    publish_over(f);
}

/*
 * The message of one publish: attrs, then traceparent and (ikey not NULL) idempotency_key unless
 * attrs have them. a has room for nattrs + 2. Nothing is left out to fit Pub/Sub's limits (100
 * attributes): the client refuses what does not fit, and the caller says so.
 */
static void pub_msg(struct dr_pubsub_pub_msg *m, struct dr_pubsub_attr *a, const void *data,
                    size_t len, const struct dr_attr *attrs, size_t nattrs, const char *okey,
                    const char *traceparent, const char *ikey)
{
    size_t na = 0;
    int has_trace = 0, has_ikey = 0;

    for (size_t i = 0; i < nattrs; i++) {
        a[na].key = attrs[i].key;
        a[na].value = attrs[i].value;
        has_trace |= strcmp(attrs[i].key, "traceparent") == 0;
        has_ikey |= strcmp(attrs[i].key, "idempotency_key") == 0;
        na++;
    }
    /* idempotency_key first: a consumer's dedup needs it; the trace context only where Pub/Sub's
     * limit leaves room for it too */
    if (!has_trace && traceparent &&
        na + 1 + (size_t)(!has_ikey && ikey) <= (size_t)DR_PUBSUB_MAX_ATTRS) {
        a[na].key = "traceparent";
        a[na].value = traceparent;
        na++;
    }
    if (!has_ikey && ikey) {
        a[na].key = "idempotency_key";
        a[na].value = ikey;
        na++;
    }
    memset(m, 0, sizeof(*m));
    m->data = data;
    m->len = len;
    m->attrs = a;
    m->n_attrs = na;
    m->ordering_key = okey;
}

/* Publishes one message for f (pub_msg()); 0, or the client's refusal (dr_pubsub_errmsg()). */
static int publish_one(struct finish *f, const char *topic, const void *data, size_t len,
                       const struct dr_attr *attrs, size_t nattrs, const char *okey,
                       const char *traceparent, const char *ikey)
{
    struct dr_pubsub_attr *a = dr_xcalloc(nattrs + 2, sizeof(*a));
    struct dr_pubsub_pub_msg m;
    struct pub *pb = dr_xmalloc(sizeof(*pb) + strlen(topic) + 1);
    int err;

    pub_msg(&m, a, data, len, attrs, nattrs, okey, traceparent, ikey);
    pb->f = f;
    strcpy(pb->topic, topic);
    err = dr_pubsub_publish(f->p->ps, topic, &m, 1, on_emit_published, pb);
    if (err) {
        free(pb);
    } else {
        f->p->outstanding++;
        f->pending_publishes++;
    }
    free(a); /* the request is built: the client keeps nothing of m */
    return err;
}

/* 1 when Pub/Sub would refuse emit e (with ikey) at every attempt: its topic's name or the
 * message itself (more than 100 attributes, a key or value too long, ...); why says why. */
static int emit_refused(const struct dr_emit *e, const char *traceparent, const char *ikey,
                        char *why, size_t whysz)
{
    struct dr_pubsub_attr *a = dr_xcalloc(e->nattrs + 2, sizeof(*a));
    struct dr_pubsub_pub_msg m;
    int err = dr_pubsub_name_check("topics", e->topic, why, whysz);

    if (!err) {
        pub_msg(&m, a, e->data, e->len, e->attrs, e->nattrs, e->ordering_key, traceparent, ikey);
        err = dr_pubsub_publish_check(&m, 1, why, whysz);
        if (err && strncmp(why, "message 0: ", 11) == 0) {
            memmove(why, why + 11, strlen(why + 11) + 1); /* there is only the one */
        }
    }
    free(a);
    return err != DR_OK;
}

/* f's message is a dead letter: it is published to "<topic><dlq_suffix>" (best effort), then
 * stored, then acked. dl is copied. The caller holds a guard on f's publishes. */
static void start_dead(struct finish *f, const struct dr_dead_letter *dl)
{
    struct dr_pull *p = f->p;
    struct dr_msg *msg = f->msg;
    char topic[512];
    /* the original attributes, every one of them, plus why it died as far as Pub/Sub's limit
     * leaves room (a message may come with 100 of its own; the store keeps the reason anyway) */
    size_t na = msg->nattrs;
    struct dr_attr *attrs = dr_xcalloc(na + 3, sizeof(*attrs));
    const struct dr_attr extra[] = {
        {"dr_reason", dl->reason},
        {"dr_processor", dl->processor ? dl->processor : ""},
        {"dr_source_topic", msg->topic},
    };

    memcpy(attrs, msg->attrs, na * sizeof(*attrs));
    for (size_t i = 0; i < DR_ARRAY_LEN(extra) && na < DR_PUBSUB_MAX_ATTRS; i++) {
        attrs[na++] = extra[i];
    }
    f->dead = 1;
    f->dl.message_id = dr_xstrdup(dl->message_id);
    f->dl.topic = dr_xstrdup(dl->topic);
    f->dl.processor = dr_xstrdup(dl->processor);
    f->dl.reason = dr_xstrdup(dl->reason);
    f->dl.error = dr_xstrdup(dl->error);
    f->dl.attempts = dl->attempts;
    f->dl.first_failure_ms = dl->first_failure_ms;
    f->dl.last_failure_ms = dl->last_failure_ms;
    f->dl.created_ms = dl->created_ms;
    f->dl.message_json = dr_xstrdup(dl->message_json);
    snprintf(topic, sizeof(topic), "%s%s", msg->topic, p->cfg->dlq_suffix);
    if (publish_one(f, topic, msg->data, msg->data_len, attrs, na, NULL, msg->traceparent, NULL) !=
        0) {
        /* no copy on the topic rather than one short of attributes: the store keeps it whole */
        DR_WARN("pull", "dead-letter topic publish refused", "message_id=%s topic=%s error=\"%s\"",
                msg->message_id, topic, dr_pubsub_errmsg(p->ps));
    }
    free(attrs);
}

/* f's processed message is a dead letter (reason, error) instead of having its emits published.
 * The caller holds a guard on f's publishes. */
static void dead_after_processing(struct finish *f, const char *reason, const char *error)
{
    struct dr_pull *p = f->p;
    struct dr_msg *msg = f->msg;
    struct dr_dead_letter dl;
    char *orig = dr_msg_original_json(msg);
    int64_t now = dr_now_ms();
    char labels[320], trace[33];

    if (!msg->first_failure_ms) {
        msg->first_failure_ms = now;
    }
    memset(&dl, 0, sizeof(dl));
    dl.message_id = msg->message_id;
    dl.topic = msg->topic;
    dl.reason = (char *)reason;
    dl.error = (char *)error;
    dl.attempts = msg->attempt;
    dl.first_failure_ms = msg->first_failure_ms;
    dl.last_failure_ms = dl.created_ms = now;
    dl.message_json = orig;
    snprintf(labels, sizeof(labels), "topic=\"%s\",reason=\"%s\"", msg->topic, reason);
    dr_metrics_inc("dr_dead_letters_total", labels, 1);
    dr_msg_trace_id(msg, trace);
    DR_WARN("pull", "dead letter",
            "message_id=%s trace_id=%s topic=%s processor=- reason=%s attempts=%d", msg->message_id,
            trace, msg->topic, reason, msg->attempt);
    if (!f->detached) {
        dr_router_release_lanes(p->router, msg); /* as for any dead letter */
    }
    start_dead(f, &dl);
    free(orig);
}

static void pull_complete(void *source, struct dr_msg *msg, const struct dr_completion *c)
{
    struct dr_pull *p = source;
    struct finish *f = dr_xcalloc(1, sizeof(*f));

    f->p = p;
    f->msg = msg;
    f->pending_publishes = 1; /* guard until all are started */
    lease_of(msg)->finishing = f;
    if (c->dead) {
        start_dead(f, &c->dl);
    } else {
        char why[256];
        size_t refused = c->nemits;

        f->dedup_key = dr_xstrdup(dr_msg_dedup_key(msg));
        /* An emit Pub/Sub would refuse at every attempt makes the message a dead letter now,
         * before any of its emits goes out, rather than one published short of attributes. */
        for (size_t i = 0; i < c->nemits && refused == c->nemits; i++) {
            char ikey[DR_EMIT_KEY_LEN + 1];
            dr_msg_emit_key(f->dedup_key, c->emits, i, ikey);
            if (emit_refused(&c->emits[i], msg->traceparent, ikey, why, sizeof(why))) {
                refused = i;
            }
        }
        if (refused < c->nemits) {
            const char *topic = c->emits[refused].topic;
            size_t n = strlen(topic) + strlen(why) + 3;
            char *error = dr_xmalloc(n);
            snprintf(error, n, "%s: %s", topic, why);
            DR_WARN("pull", "emit refused", "message_id=%s topic=%s error=\"%s\"", msg->message_id,
                    topic, why);
            dead_after_processing(f, "emit_refused", error);
            free(error);
            publish_over(f); /* drop the guard */
            return;
        }
        for (size_t i = 0; i < c->nemits; i++) {
            const struct dr_emit *e = &c->emits[i];
            /* A redelivered message processed again emits again: each emit carries a key
             * derived from its parent's, so where it is consumed the repeat is a duplicate (as
             * the local queue's emits have ids derived from their parent's). */
            char ikey[DR_EMIT_KEY_LEN + 1];
            dr_msg_emit_key(f->dedup_key, c->emits, i, ikey);
            if (publish_one(f, e->topic, e->data, e->len, e->attrs, e->nattrs, e->ordering_key,
                            msg->traceparent, ikey) != 0) {
                DR_WARN("pull", "emit refused", "message_id=%s topic=%s error=\"%s\"",
                        msg->message_id, e->topic, dr_pubsub_errmsg(p->ps));
                emit_failure(f, e->topic, dr_pubsub_errmsg(p->ps));
            }
        }
    }
    publish_over(f); /* drop the guard */
}

/* The ack deadline that makes Pub/Sub redeliver a message no sooner than delay_ms from now: whole
 * seconds rounded up, since a deadline of 0 is a nack that redelivers at once (no backoff at
 * all), capped at the longest deadline Pub/Sub takes. */
static int nack_deadline_s(int64_t delay_ms)
{
    if (delay_ms <= 0) {
        return 0;
    }
    if (delay_ms > (int64_t)DR_PUBSUB_MAX_ACK_DEADLINE_S * 1000) {
        return DR_PUBSUB_MAX_ACK_DEADLINE_S;
    }
    return (int)((delay_ms + 999) / 1000);
}

/* Whether a retry of msg (held by the router) after delay_ms goes back to Pub/Sub as a nack with
 * that delay. Long waits do, but only when Pub/Sub counts the deliveries (a dead-letter policy),
 * so the attempt count survives the handover, and never for a message with an ordering key:
 * handed back, it would leave its ordering lane and the next message of its key, maybe pulled
 * already, would run before it. Otherwise it waits in the router, its lane held and its lease
 * extended. */
static int hands_back(const struct dr_pull *p, const struct dr_msg *msg, int64_t delay_ms)
{
    return delay_ms >= p->nack_after_ms && msg->delivery_counted && !dr_router_ordered(msg);
}

static int pull_retrying(void *source, struct dr_msg *msg, int64_t delay_ms, const char *error)
{
    struct dr_pull *p = source;
    struct lease *l = lease_of(msg);

    if (hands_back(p, msg, delay_ms)) {
        settle(l->rc, l->sub, l->ack_id, nack_deadline_s(delay_ms));
        lease_drop(l->sub->p, l);
        msg->source_handle = NULL;
        return 1;
    }
    return 0;
}

/*
 * Processed, but what it emits could not all be published (a topic missing, Pub/Sub refusing or
 * overloaded: 404, 429, 503). That is a failed attempt like a processor's RETRY: it runs again
 * after its retry policy's backoff (handed back to Pub/Sub as a delayed nack, or waiting in the
 * router, as pull_retrying() decides), and once its attempts are used up it is dead-lettered
 * (emit_failed). A nack with no delay made Pub/Sub redeliver it at once, to run and fail again
 * without end; and without a dead-letter policy Pub/Sub does not count deliveries, so only the
 * router's own count, kept while it holds the message, can bound the attempts.
 */
static void emits_failed(struct finish *f)
{
    struct dr_pull *p = f->p;
    struct dr_msg *msg = f->msg;
    struct lease *l = lease_of(msg);
    const struct dr_retry_policy *pol = dr_config_retry(p->cfg, msg->type);
    int64_t now = dr_now_ms();
    int64_t delay;
    char labels[320], trace[33];

    f->failed = 0;
    if (!msg->first_failure_ms) {
        msg->first_failure_ms = now;
    }
    free(msg->last_error);
    msg->last_error = dr_xstrdup(f->emit_error);
    dr_msg_trace_id(msg, trace);
    if (msg->attempt >= pol->max_attempts) {
        f->pending_publishes = 1; /* guard */
        dead_after_processing(f, "emit_failed", f->emit_error);
        publish_over(f);
        return;
    }
    delay = dr_backoff_delay(pol, msg->attempt, dr_random_unit());
    snprintf(labels, sizeof(labels), "topic=\"%s\"", msg->topic);
    dr_metrics_inc("dr_retries_total", labels, 1);
    DR_WARN("pull", "emits not published: retrying",
            "message_id=%s trace_id=%s topic=%s attempt=%d retry_ms=%lld", msg->message_id, trace,
            msg->topic, msg->attempt, (long long)delay);
    msg->attempt++;
    if (f->detached || p->stopping || hands_back(p, msg, delay)) {
        /* Pub/Sub redelivers it after the delay: a long one, or the router is going away */
        settle(l->rc, l->sub, l->ack_id, nack_deadline_s(delay));
        finish_done(f);
        return;
    }
    /* The router runs it again after the delay, under the same lease and in its place in its
     * ordering lanes (held since it was processed): a later message of its key, pulled
     * meanwhile, still waits for it. Its attempt count stays with the message. */
    l->finishing = NULL;
    dr_router_retry_after(p->router, msg, delay);
    dr_dead_letter_cleanup(&f->dl);
    free(f->dedup_key);
    free(f->emit_error);
    free(f);
}

static void pull_abandon(void *source, struct dr_msg *msg)
{
    struct dr_pull *p = source;
    struct lease *l = lease_of(msg);
    if (l && l->finishing) {
        /* Processed, its emits or dead letter still on their way: the completion goes on
         * without the router (which is going away) and keeps the message until it is done. */
        l->finishing->detached = 1;
        dr_msg_ref(msg);
        return;
    }
    if (l) {
        settle(l->rc, l->sub, l->ack_id, 0);
        lease_drop(p, l);
        msg->source_handle = NULL;
    }
}

static const struct dr_source_ops pull_ops = {
    .name = "pubsub",
    .complete = pull_complete,
    .retrying = pull_retrying,
    .abandon = pull_abandon,
    .keeps_lanes = 1, /* until its emits are published: a failed one sends it round again */
};

/* ---------- intake ---------- */

struct intake {
    struct sub *sub;
    struct dr_pubsub_msg **msgs;
    size_t n;
    int *seen;
    int64_t received_ns;
    struct lease **leases; /* taken at receipt: the lease timer covers the dedup wait too */
};

static struct lease *lease_add(struct sub *s, const char *ack_id, struct receipt *rc)
{
    struct dr_pull *p = s->p;
    struct lease *l = dr_xcalloc(1, sizeof(*l));

    l->sub = s;
    l->ack_id = dr_xstrdup(ack_id);
    l->rc = rc;
    rc->refs++;
    l->deadline_ms = dr_mono_ms() + (int64_t)p->ack_deadline_s * 1000;
    l->next = p->leases;
    if (p->leases) {
        p->leases->prev = l;
    }
    p->leases = l;
    p->nleases++;
    return l;
}

static void dedup_work(uv_work_t *w)
{
    struct intake *in = w->data;
    struct dr_pull *p = in->sub->p;
    int64_t since = dr_now_ms() - p->cfg->dedup_window_ms;

    const char **keys = dr_xcalloc(in->n ? in->n : 1, sizeof(*keys));

    for (size_t i = 0; i < in->n; i++) {
        const char *key = in->msgs[i]->message_id;
        for (size_t k = 0; k < in->msgs[i]->n_attrs; k++) {
            if (strcmp(in->msgs[i]->attrs[k].key, "idempotency_key") == 0 &&
                *in->msgs[i]->attrs[k].value) {
                key = in->msgs[i]->attrs[k].value;
            }
        }
        keys[i] = in->msgs[i]->invalid ? NULL : key; /* no key: never a duplicate */
    }
    /* one lookup for the whole pull; a failed one processes them all (effects are idempotent) */
    dr_store_dedup_seen_many(p->store, keys, in->n, since, in->seen);
    free(keys);
}

/* A message that cannot be decoded is stored as a dead letter (on the thread pool: the store
 * blocks), then acked; if storing fails it is left to Pub/Sub's redelivery. */
struct undecodable {
    uv_work_t work;
    struct sub *sub;
    struct dr_dead_letter dl; /* owned strings */
    char *ack_id;
    struct receipt *rc; /* of its pull */
    int err;
};

static void undecodable_work(uv_work_t *w)
{
    struct undecodable *u = (struct undecodable *)w;
    u->err = dr_store_dlq_put(u->sub->p->store, &u->dl);
}

static void undecodable_done(uv_work_t *w, int status)
{
    struct undecodable *u = (struct undecodable *)w;
    struct dr_pull *p = u->sub->p;

    p->outstanding--;
    if (u->err) {
        DR_ERROR("pull", "dead letter not stored", "subscription=%s error=\"%s\"", u->sub->name,
                 dr_strerror(u->err));
    } else {
        settle(u->rc, u->sub, u->ack_id, -1);
    }
    receipt_unref(u->rc);
    dr_dead_letter_cleanup(&u->dl);
    free(u->ack_id);
    free(u);
    pool_job_done(p);
}

static void dead_undecodable(struct sub *s, struct dr_pubsub_msg *m, struct receipt *rc)
{
    struct undecodable *u = dr_xcalloc(1, sizeof(*u));
    cJSON *o = cJSON_CreateObject();
    int64_t now = dr_now_ms();

    cJSON_AddStringToObject(o, "messageId", m->message_id ? m->message_id : "");
    cJSON_AddStringToObject(o, "topic", s->topic);
    u->dl.message_json = dr_json_print(o);
    cJSON_Delete(o);
    u->sub = s;
    u->ack_id = dr_xstrdup(m->ack_id);
    u->rc = rc;
    rc->refs++;
    u->dl.message_id = dr_xstrdup(m->message_id ? m->message_id : "");
    u->dl.topic = dr_xstrdup(s->topic);
    u->dl.reason = dr_xstrdup("undecodable");
    u->dl.error = dr_xstrdup(m->invalid);
    u->dl.attempts = 1;
    u->dl.first_failure_ms = u->dl.last_failure_ms = u->dl.created_ms = now;
    s->p->outstanding++;
    s->p->pool_jobs++;
    uv_queue_work(s->p->loop, &u->work, undecodable_work, undecodable_done);
}

static void dedup_done(uv_work_t *w, int status)
{
    struct intake *in = w->data;
    struct sub *s = in->sub;
    struct dr_pull *p = s->p;

    free(w);
    p->outstanding--;
    for (size_t i = 0; i < in->n; i++) {
        struct dr_pubsub_msg *m = in->msgs[i];
        struct lease *l = in->leases[i];
        if (m->invalid) {
            DR_WARN("pull", "undecodable message", "subscription=%s reason=\"%s\"", s->name,
                    m->invalid);
            dead_undecodable(s, m, l->rc);
            lease_drop(p, l);
        } else if (in->seen[i]) {
            dr_metrics_inc("dr_duplicates_total", "source=\"pubsub\"", 1);
            settle(l->rc, s, m->ack_id, -1);
            lease_drop(p, l);
        } else {
            /* the data and attributes move into the message */
            struct dr_msg *msg =
                dr_msg_create_take(m->message_id, s->topic, m->data, m->len, m->publish_time_ms);
            m->data = NULL;
            for (size_t k = 0; k < m->n_attrs; k++) {
                dr_msg_add_attr_take(msg, (char *)m->attrs[k].key, (char *)m->attrs[k].value);
                m->attrs[k].key = m->attrs[k].value = NULL;
            }
            if (m->delivery_attempt > 0) {
                msg->attempt = m->delivery_attempt;
                msg->delivery_counted = 1;
            }
            dr_msg_set_ordering_key(msg, m->ordering_key);
            msg->received_ns = in->received_ns;
            msg->source = p;
            l->msg = msg;
            msg->source_handle = l;
            if (p->stopping) {
                pull_abandon(p, msg);
                dr_msg_unref(msg);
            } else {
                dr_router_submit(p->router, msg, &pull_ops, p);
            }
        }
        dr_pubsub_msg_free(m);
    }
    free(in->msgs);
    free(in->seen);
    free(in->leases);
    free(in);
    pull_more(s);
    pool_job_done(p);
}

static void on_retry_timer(uv_timer_t *t)
{
    pull_more(t->data);
}

/* A pull of s failed or was refused: s pulls again after its backoff (doubling up to
 * MAX_BACKOFF_MS, whatever the cause: a refusal may be passing, as credentials that cannot be
 * had for now) and readiness says it cannot pull until a pull succeeds. */
static void pull_failed(struct sub *s)
{
    struct dr_pull *p = s->p;
    char labels[320];

    s->failing = 1;
    snprintf(labels, sizeof(labels), "subscription=\"%s\"", s->name);
    dr_metrics_inc("dr_pull_failures_total", labels, 1);
    if (!uv_is_active((uv_handle_t *)s->retry_timer) && !p->stopping) {
        uv_timer_start(s->retry_timer, on_retry_timer, (uint64_t)s->backoff_ms, 0);
    }
    s->backoff_ms = s->backoff_ms * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : s->backoff_ms * 2;
}

static void ensure_done(void *ctx, int err, const char *errmsg, const cJSON *res);

static void ensure_sub(struct sub *s)
{
    struct dr_pubsub_sub_conf sc;
    char dlq[512];

    memset(&sc, 0, sizeof(sc));
    sc.topic = s->topic;
    sc.ack_deadline_s = s->p->ack_deadline_s;
    /* Without it Pub/Sub delivers messages of one ordering key in any order, and redelivers one
     * while a later one of its key runs. It cannot be changed once the subscription exists. */
    sc.enable_message_ordering = 1;
    if (s->p->max_deliveries) {
        snprintf(dlq, sizeof(dlq), "%s%s", s->topic, s->p->cfg->dlq_suffix);
        sc.dead_letter_topic = dlq;
        sc.max_delivery_attempts = s->p->max_deliveries;
    }
    if (dr_pubsub_sub_create(s->p->ps, s->name, &sc, ensure_done, s) == 0) {
        s->p->outstanding++;
        s->ensuring = 2;
    } else {
        s->ensuring = 0;
    }
}

static void ensure_done(void *ctx, int err, const char *errmsg, const cJSON *res)
{
    struct sub *s = ctx;
    s->p->outstanding--;
    if (err && err != DR_EEXIST) {
        DR_WARN("pull", "create failed", "subscription=%s error=\"%s\"", s->name,
                errmsg ? errmsg : dr_strerror(err));
    }
    if (s->ensuring == 1) { /* topics done: now the subscription */
        ensure_sub(s);
        return;
    }
    s->ensuring = 0;
    pull_more(s);
}

static void on_topic_created(void *ctx, int err, const char *errmsg, const cJSON *res)
{
    struct sub *s = ctx;
    s->p->outstanding--;
    if (--s->ensuring == 1) {
        ensure_done(s, 0, NULL, NULL);
        s->p->outstanding++; /* balance: ensure_done decrements */
    }
}

/* Creates the topic, its dead-letter topic and the subscription (auto_create). */
static void ensure(struct sub *s)
{
    char dlq[512];
    if (s->ensuring) {
        return;
    }
    s->ensuring = 3;
    snprintf(dlq, sizeof(dlq), "%s%s", s->topic, s->p->cfg->dlq_suffix);
    if (dr_pubsub_topic_create(s->p->ps, s->topic, on_topic_created, s) == 0) {
        s->p->outstanding++;
    } else {
        s->ensuring--;
    }
    if (dr_pubsub_topic_create(s->p->ps, dlq, on_topic_created, s) == 0) {
        s->p->outstanding++;
    } else {
        s->ensuring--;
    }
    if (s->ensuring == 1) {
        s->p->outstanding++;
        ensure_done(s, 0, NULL, NULL);
    }
}

static void on_pulled(void *ctx, int err, const char *errmsg, struct dr_pubsub_msg **msgs,
                      size_t n)
{
    struct sub *s = ctx;
    struct dr_pull *p = s->p;
    uv_work_t *w;
    struct intake *in;
    struct receipt *rc;

    s->pulls--;
    p->outstanding--;
    if (err) {
        if (err == DR_EUNAVAIL) {
            return; /* shutting down */
        }
        DR_WARN("pull", "pull failed", "subscription=%s error=\"%s\" retry_ms=%lld", s->name,
                errmsg ? errmsg : dr_strerror(err), (long long)s->backoff_ms);
        if (err == DR_ENOTFOUND && p->auto_create) {
            ensure(s);
        }
        pull_failed(s);
        return;
    }
    s->backoff_ms = 100;
    s->failing = 0;
    if (n == 0) {
        pull_more(s);
        return;
    }
    dr_metrics_inc("dr_pulled_total", "source=\"pubsub\"", (double)n);
    in = dr_xcalloc(1, sizeof(*in));
    in->sub = s;
    in->n = n;
    in->msgs = dr_xcalloc(n, sizeof(*in->msgs));
    memcpy(in->msgs, msgs, n * sizeof(*msgs));
    in->seen = dr_xcalloc(n, sizeof(int));
    in->received_ns = (int64_t)dr_mono_ns();
    in->leases = dr_xcalloc(n, sizeof(*in->leases));
    rc = receipt_new(p);
    for (size_t i = 0; i < n; i++) {
        in->leases[i] = lease_add(s, msgs[i]->ack_id, rc);
    }
    modack_received(s, msgs, n, rc);
    w = dr_xcalloc(1, sizeof(*w));
    w->data = in;
    p->outstanding++;
    p->pool_jobs++;
    uv_queue_work(p->loop, w, dedup_work, dedup_done);
    pull_more(s);
}

static void pull_more(struct sub *s)
{
    struct dr_pull *p = s->p;

    if (p->stopping || s->ensuring || uv_is_active((uv_handle_t *)s->retry_timer)) {
        return;
    }
    while (s->pulls < p->pulls_per_sub) {
        /* Pull only what there is room for, counting what outstanding pulls may bring. */
        size_t held = dr_router_in_flight(p->router);
        size_t coming = (size_t)(s->pulls + 1) * (size_t)p->max_messages;
        if (held + coming > (size_t)p->cfg->max_in_flight || !dr_router_has_room(p->router)) {
            return;
        }
        int err = dr_pubsub_pull(p->ps, s->name, p->max_messages, 0, on_pulled, s);
        if (err == DR_EUNAVAIL) {
            return; /* the client is going away */
        }
        if (err) {
            /* fields one by one: the reason quotes the name */
            const struct dr_log_field f[] = {DR_LOG_STR("subscription", s->name),
                                             DR_LOG_STR("error", dr_pubsub_errmsg(p->ps)),
                                             DR_LOG_INT("retry_ms", s->backoff_ms)};
            dr_log_fields(DR_LOG_ERROR, "pull", "pull refused", f, sizeof(f) / sizeof(f[0]));
            pull_failed(s);
            return;
        }
        s->pulls++;
        p->outstanding++;
    }
}

static void on_room(void *ctx)
{
    struct dr_pull *p = ctx;
    for (size_t i = 0; i < p->nsubs; i++) {
        pull_more(&p->subs[i]);
    }
}

/* ---------- lifecycle ---------- */

static int section_int(const cJSON *sec, const char *key, int def, int lo, int hi)
{
    int64_t v;
    if (!sec || dr_json_i64(sec, key, &v) != 0 || v < lo || v > hi) {
        return def;
    }
    return (int)v;
}

int dr_pull_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_store *store,
                   struct dr_router *router, struct dr_pull **out)
{
    struct dr_pull *p = dr_xcalloc(1, sizeof(*p));
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(cfg->root, "pubsub");
    struct dr_pubsub_conf pc;

    *out = NULL;
    if (!cfg->project) {
        DR_ERROR("pull", "pubsub.project (or PUBSUB_PROJECT_ID) is required", "%s", "");
        free(p);
        return DR_EINVAL;
    }
    memset(&pc, 0, sizeof(pc));
    pc.project = cfg->project;
    pc.grpc = cfg->pubsub_grpc;
    pc.endpoint = cfg->pubsub_endpoint;
    if (dr_pubsub_create(loop, &pc, &p->ps) != 0) {
        free(p);
        return DR_EINVAL;
    }
    p->loop = loop;
    p->cfg = cfg;
    p->store = store;
    p->router = router;
    p->pulls_per_sub = section_int(sec, "pulls_in_flight", 4, 1, 64);
    p->max_messages = section_int(sec, "max_messages", 100, 1, DR_PUBSUB_MAX_PULL_MSGS);
    p->ack_deadline_s = section_int(sec, "ack_deadline_seconds", 30, 10, 600);
    p->max_deliveries = section_int(sec, "max_delivery_attempts", 0, 5, 100);
    p->auto_create = sec && dr_json_true(sec, "auto_create");
    p->nack_after_ms = section_int(sec, "nack_after_ms", 10000, 0, 600000);
    p->subs = dr_xcalloc(cfg->nsubscriptions + 1, sizeof(*p->subs));
    for (size_t i = 0; i < cfg->nsubscriptions; i++) {
        struct sub *s = &p->subs[p->nsubs++];
        s->p = p;
        s->name = dr_xstrdup(cfg->subscriptions[i].name);
        s->topic = dr_xstrdup(cfg->subscriptions[i].topic);
        s->backoff_ms = 100;
        s->retry_timer = dr_xcalloc(1, sizeof(*s->retry_timer));
        uv_timer_init(loop, s->retry_timer);
        s->retry_timer->data = s;
    }
    p->lease_timer = dr_xcalloc(1, sizeof(*p->lease_timer));
    uv_timer_init(loop, p->lease_timer);
    p->lease_timer->data = p;
    p->ack_timer = dr_xcalloc(1, sizeof(*p->ack_timer));
    uv_timer_init(loop, p->ack_timer);
    p->ack_timer->data = p;
    dr_router_on_room(router, on_room, p);
    *out = p;
    return DR_OK;
}

void dr_pull_start(struct dr_pull *p)
{
    uint64_t every = (uint64_t)p->ack_deadline_s * 1000 / 4;
    uv_timer_start(p->lease_timer, on_lease_timer, every, every);
    for (size_t i = 0; i < p->nsubs; i++) {
        if (p->auto_create) {
            ensure(&p->subs[i]);
        } else {
            pull_more(&p->subs[i]);
        }
    }
    DR_INFO("pull", "pulling", "subscriptions=%zu pulls_in_flight=%d max_messages=%d", p->nsubs,
            p->pulls_per_sub, p->max_messages);
}

void dr_pull_stop(struct dr_pull *p)
{
    p->stopping = 1;
    for (size_t i = 0; i < p->nsubs; i++) {
        uv_timer_stop(p->subs[i].retry_timer);
    }
}

int dr_pull_healthy(const struct dr_pull *p)
{
    for (size_t i = 0; i < p->nsubs; i++) {
        if (p->subs[i].failing) {
            return 0;
        }
    }
    return 1;
}

int dr_pull_busy(const struct dr_pull *p)
{
    /* blocked long-poll pulls are not worth waiting for */
    int pulls = 0;
    for (size_t i = 0; i < p->nsubs; i++) {
        pulls += p->subs[i].pulls;
    }
    size_t acks = 0;
    for (size_t i = 0; i < p->nsubs; i++) {
        acks += p->subs[i].nacks;
    }
    return p->outstanding - pulls > 0 || acks > 0;
}

static void handle_free(uv_handle_t *h)
{
    free(h);
}

static void pull_free(struct dr_pull *p)
{
    while (p->leases) {
        struct lease *l = p->leases;
        if (l->msg) {
            l->msg->source_handle = NULL;
        }
        lease_drop(p, l);
    }
    for (size_t i = 0; i < p->nsubs; i++) {
        for (size_t k = 0; k < p->subs[i].nacks; k++) {
            free(p->subs[i].acks[k]);
        }
        free(p->subs[i].name);
        free(p->subs[i].topic);
        free(p->subs[i].acks);
    }
    free(p->subs);
    free(p);
}

/* A thread-pool job of p is done (its callback has run). */
static void pool_job_done(struct dr_pull *p)
{
    if (--p->pool_jobs == 0 && p->destroyed) {
        pull_free(p);
    }
}

void dr_pull_destroy(struct dr_pull *p)
{
    if (!p) {
        return;
    }
    p->stopping = 1;
    flush_acks(p);
    /* Calls under way end here (their callbacks run now, with the client refusing more). */
    dr_pubsub_destroy(p->ps);
    p->ps = NULL;
    for (size_t i = 0; i < p->nsubs; i++) {
        uv_close((uv_handle_t *)p->subs[i].retry_timer, handle_free);
    }
    uv_close((uv_handle_t *)p->lease_timer, handle_free);
    uv_close((uv_handle_t *)p->ack_timer, handle_free);
    /* Jobs on the thread pool cannot be called back: the last one to land frees the source. */
    if (p->pool_jobs > 0) {
        p->destroyed = 1;
        return;
    }
    pull_free(p);
}
