/*
 * The routing core. The loop thread owns jobs (one per submitted message) and their outcome;
 * worker threads own nothing but the task they run. Between them sit the ready queues (one per
 * processor and priority), the ordering lanes and the completion list, all under one mutex.
 */
#include "dr/router.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/running.h"
#include "dr/util.h"

#define MAX_FANOUT 16
#define NPRIO      10
#define LANE_SLOTS 4096

struct job;

struct task {
    struct job *job;
    int proc;           /* index into router->procs */
    struct lane *lane;  /* held while the task is unfinished (ordering), or NULL */
    int done;           /* finished OK or rejected */
    int in_process;     /* a worker is inside process() for it (under mu) */
    int finished_early; /* deferred, and finished before process() returned (under mu) */
    struct dr_breaker *probe; /* the half-open breaker this run is the probe of (under mu) */
    int held; /* its lane's turn came while the job was holding: runs when the hold ends */
    struct dr_result res;
    uint64_t t_start;
    struct task *next; /* queue link */
};

struct job {
    struct dr_msg *msg;
    const struct dr_source_ops *ops;
    void *source;
    int ntasks;
    int pending;  /* tasks queued or running in this round */
    int retry;    /* some task asked for a retry this round */
    int rejected; /* index of a rejecting task, or -1 */
    int holding;  /* dr_router_submit_after(): not to run before its timer (under mu) */
    int ordered;  /* it has an ordering key: its tasks run in ordering lanes */
    char *last_error; /* "<processor>: <error>" of the last RETRY, or NULL */
    struct dr_router *router;
    uv_timer_t *timer; /* retry timer, or the hold of dr_router_submit_after() */
    size_t bytes;
    struct job *prev, *next; /* all live jobs */
    struct task tasks[];     /* ntasks of them, usually one */
};

struct fifo {
    struct task *head, *tail;
};

struct lane {
    char *key; /* "<proc>\x1f<ordering key>" */
    int busy;
    struct fifo waiting;
    struct lane *next; /* hash chain */
};

struct proc {
    const struct dr_processor *def;
    void *state;
    struct fifo ready[NPRIO];
    size_t queued;
    struct dr_breaker *breaker;     /* the downstream it last failed on, while paused */
    struct dr_breaker *last_failed; /* the downstream of its last failure, until a success */
    char labels[128];
    /* the label string of the last (topic, outcome) counted: consecutive messages usually match */
    char last_topic[200];
    int last_outcome;
    char last_labels[320];
};

struct dr_router {
    uv_loop_t *loop;
    const struct dr_config *cfg;
    struct dr_store *store;
    struct proc *procs;
    int nprocs;
    pthread_t *threads;
    struct worker *workers;
    int nthreads;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int draining_workers; /* drain: take no new task */
    int running;          /* tasks inside process() or deferred and not yet finished */
    int idle;             /* workers waiting for a task */
    int waking;           /* of those, signalled and not yet running */
    struct lane *lanes[LANE_SLOTS];
    struct task *completed_head, *completed_tail;
    int next_proc; /* round robin */

    uv_async_t *async; /* its own allocation: freed by its close callback, after the router */
    struct job *jobs;
    size_t in_flight;
    size_t in_flight_bytes;
    int was_full;
    void (*room_fn)(void *);
    void *room_ctx;
    int draining;

    struct dr_breaker *breakers;
    size_t nbreakers;
    int **route_procs; /* per route: indices into procs of its processors, -1 terminated */

    /* dr_router_set_running() (under mu): slot i is worker i's, set for running_ops' messages */
    struct dr_running *running_file;
    const struct dr_source_ops *running_ops;
};

struct worker {
    struct dr_router *r;
    size_t idx;
};

/* ---------- queues (caller holds mu) ---------- */

static void fifo_push(struct fifo *f, struct task *t)
{
    t->next = NULL;
    if (f->tail) {
        f->tail->next = t;
    } else {
        f->head = t;
    }
    f->tail = t;
}

static struct task *fifo_pop(struct fifo *f)
{
    struct task *t = f->head;
    if (t) {
        f->head = t->next;
        if (!f->head) {
            f->tail = NULL;
        }
        t->next = NULL;
    }
    return t;
}

static void make_ready(struct dr_router *r, struct task *t)
{
    struct proc *p = &r->procs[t->proc];

    if (t->job->holding) {
        t->held = 1; /* keeps its lane; on_hold_timer() makes it ready */
        return;
    }
    fifo_push(&p->ready[t->job->msg->priority], t);
    p->queued++;
    /* Wake a worker only when one is idle and not already being woken: a busy pool finds the
     * task on its own, and a burst of submits costs one wake-up per idle worker. */
    if (r->idle > r->waking) {
        r->waking++;
        pthread_cond_signal(&r->cv);
    }
}

static unsigned lane_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h % LANE_SLOTS;
}

/* Enqueues t, or parks it behind the running task of its lane. */
static void enqueue(struct dr_router *r, struct task *t, const char *key)
{
    struct lane *l;
    char *k;
    size_t n;
    unsigned h;

    if (!key) {
        make_ready(r, t);
        return;
    }
    n = strlen(key) + 16;
    k = dr_xmalloc(n);
    snprintf(k, n, "%d\x1f%s", t->proc, key);
    h = lane_hash(k);
    for (l = r->lanes[h]; l; l = l->next) {
        if (strcmp(l->key, k) == 0) {
            break;
        }
    }
    if (!l) {
        l = dr_xcalloc(1, sizeof(*l));
        l->key = k;
        l->next = r->lanes[h];
        r->lanes[h] = l;
        k = NULL;
    }
    free(k);
    t->lane = l;
    if (l->busy) {
        fifo_push(&l->waiting, t);
        return;
    }
    l->busy = 1;
    make_ready(r, t);
}

/* The task's message is finished with this processor: the next one of its key may run. */
static void lane_release(struct dr_router *r, struct task *t)
{
    struct lane *l = t->lane;
    struct task *next;

    if (!l) {
        return;
    }
    t->lane = NULL;
    next = fifo_pop(&l->waiting);
    if (next) {
        make_ready(r, next); /* the lane stays busy, now for next */
        return;
    }
    /* idle: unlink and free */
    unsigned h = lane_hash(l->key);
    struct lane **pp = &r->lanes[h];
    while (*pp && *pp != l) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = l->next;
    }
    free(l->key);
    free(l);
}

/* Picks the next task: processors round robin, highest priority first; paused ones skipped. */
static struct task *pick(struct dr_router *r, int64_t now, int64_t *wait_ms)
{
    *wait_ms = -1;
    for (int i = 0; i < r->nprocs; i++) {
        int pi = (r->next_proc + i) % r->nprocs;
        struct proc *p = &r->procs[pi];
        if (!p->queued) {
            continue;
        }
        if (p->breaker && !dr_breaker_allow(p->breaker, now)) {
            int64_t w = dr_breaker_wait_ms(p->breaker, now);
            if (w <= 0) {
                w = 50; /* half-open with a probe out: look again soon */
            }
            if (*wait_ms < 0 || w < *wait_ms) {
                *wait_ms = w;
            }
            continue;
        }
        for (int prio = NPRIO - 1; prio >= 0; prio--) {
            struct task *t = fifo_pop(&p->ready[prio]);
            if (t) {
                /* allowed through a half-open breaker: this run is its one probe */
                t->probe = p->breaker && p->breaker->state == DR_BREAKER_HALF_OPEN ? p->breaker
                                                                                    : NULL;
                p->queued--;
                r->next_proc = (pi + 1) % r->nprocs;
                return t;
            }
        }
    }
    return NULL;
}

/* Hands a finished task to the loop thread (caller holds mu). */
static void push_completed(struct dr_router *r, struct task *t)
{
    r->running--;
    t->next = NULL;
    if (r->completed_tail) {
        r->completed_tail->next = t;
    } else {
        r->completed_head = t;
    }
    r->completed_tail = t;
    uv_async_send(r->async);
}

/* dr_result_finish() of a deferred result, from any thread. */
static void deferred_finished(struct dr_result *res)
{
    struct task *t = (struct task *)((char *)res - offsetof(struct task, res));
    struct dr_router *r = t->job->router;

    pthread_mutex_lock(&r->mu);
    if (t->in_process) {
        t->finished_early = 1; /* the worker hands it over when process() returns */
    } else {
        push_completed(r, t);
    }
    pthread_mutex_unlock(&r->mu);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct dr_router *r = w->r;

    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        int64_t wait_ms = -1;
        struct task *t = r->draining_workers ? NULL : pick(r, dr_mono_ms(), &wait_ms);
        if (!t) {
            if (wait_ms > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += wait_ms / 1000;
                ts.tv_nsec += (wait_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                r->idle++;
                pthread_cond_timedwait(&r->cv, &r->mu, &ts);
                r->idle--;
            } else {
                r->idle++;
                pthread_cond_wait(&r->cv, &r->mu);
                r->idle--;
            }
            if (r->waking > 0) {
                r->waking--;
            }
            continue;
        }
        r->running++;
        t->in_process = 1;
        t->finished_early = 0;
        int mark = r->running_file && t->job->ops == r->running_ops;
        pthread_mutex_unlock(&r->mu);

        struct proc *p = &r->procs[t->proc];
        dr_result_init(&t->res);
        t->res.finish_fn = deferred_finished;
        t->res.msg = t->job->msg;
        t->res.processor = p->def->name;
        t->t_start = dr_mono_ns();
        if (mark) {
            dr_running_set(r->running_file, w->idx, t->job->msg->source_id);
        }
        p->def->process(p->state, t->job->msg, &t->res);
        if (mark) {
            dr_running_set(r->running_file, w->idx, 0);
        }

        pthread_mutex_lock(&r->mu);
        t->in_process = 0;
        if (!t->res.deferred || t->finished_early) {
            push_completed(r, t);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---------- breakers (loop thread, under mu for the pointer the workers read) ---------- */

static struct dr_breaker *breaker_get(struct dr_router *r, const char *name)
{
    const struct dr_breaker_conf *bc = NULL;
    int threshold = 5;
    int64_t open_ms = 10000;

    for (size_t i = 0; i < r->nbreakers; i++) {
        if (strcmp(r->breakers[i].name, name) == 0) {
            return &r->breakers[i];
        }
    }
    for (size_t i = 0; i < r->cfg->nbreakers; i++) {
        if (strcmp(r->cfg->breakers[i].name, name) == 0) {
            bc = &r->cfg->breakers[i];
        } else if (!bc && strcmp(r->cfg->breakers[i].name, "default") == 0) {
            bc = &r->cfg->breakers[i];
        }
    }
    if (bc) {
        threshold = bc->failure_threshold;
        open_ms = bc->open_ms;
    }
    if (r->nbreakers == 64) {
        return NULL; /* bounded: downstream names come from processors, not from input */
    }
    dr_breaker_init(&r->breakers[r->nbreakers], name, threshold, open_ms);
    return &r->breakers[r->nbreakers++];
}

static void breaker_metric(const struct dr_breaker *b)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "downstream=\"%s\"", b->name);
    dr_metrics_set("dr_breaker_state", labels, (double)b->state);
}

/* ---------- jobs (loop thread) ---------- */

static void job_free(struct dr_router *r, struct job *j);

static void handle_closed(uv_handle_t *h)
{
    free(h);
}

static const char *ordering_key(const struct dr_router *r, const struct dr_msg *m,
                                const struct dr_route *rt, char *buf, size_t bufsz)
{
    const cJSON *v;

    if (m->ordering_key) {
        return m->ordering_key;
    }
    if (rt && rt->ordering_pointer && dr_msg_payload(m)) {
        v = dr_json_pointer(dr_msg_payload(m), rt->ordering_pointer);
        if (cJSON_IsString(v)) {
            snprintf(buf, bufsz, "%s", v->valuestring);
            return buf;
        }
        if (cJSON_IsNumber(v)) {
            snprintf(buf, bufsz, "%.17g", v->valuedouble);
            return buf;
        }
    }
    return NULL;
}

static void complete_dead(struct dr_router *r, struct job *j, const char *processor,
                          const char *reason, const char *error)
{
    struct dr_completion c;
    char *orig = dr_msg_original_json(j->msg);
    int64_t now = dr_now_ms();
    char labels[256];

    memset(&c, 0, sizeof(c));
    c.dead = 1;
    c.dl.message_id = j->msg->message_id;
    c.dl.topic = j->msg->topic;
    c.dl.processor = (char *)processor;
    c.dl.reason = (char *)reason;
    c.dl.error = (char *)error;
    c.dl.attempts = j->msg->attempt;
    c.dl.first_failure_ms = j->msg->first_failure_ms ? j->msg->first_failure_ms : now;
    c.dl.last_failure_ms = now;
    c.dl.created_ms = now;
    c.dl.message_json = orig;
    snprintf(labels, sizeof(labels), "topic=\"%s\",reason=\"%s\"", j->msg->topic, reason);
    dr_metrics_inc("dr_dead_letters_total", labels, 1);
    char trace[33];
    dr_msg_trace_id(j->msg, trace);
    DR_WARN("router", "dead letter",
            "message_id=%s trace_id=%s topic=%s processor=%s reason=%s attempts=%d",
            j->msg->message_id, trace, j->msg->topic, processor ? processor : "-", reason,
            j->msg->attempt);
    j->ops->complete(j->source, j->msg, &c);
    free(orig);
}

static void finish_ok(struct dr_router *r, struct job *j)
{
    struct dr_completion c;
    size_t n = 0, k = 0;

    memset(&c, 0, sizeof(c));
    for (int i = 0; i < j->ntasks; i++) {
        n += j->tasks[i].res.nemits;
    }
    c.emits = n ? dr_xcalloc(n, sizeof(*c.emits)) : NULL;
    for (int i = 0; i < j->ntasks; i++) {
        for (size_t e = 0; e < j->tasks[i].res.nemits; e++) {
            c.emits[k++] = j->tasks[i].res.emits[e];
        }
    }
    c.nemits = k;
    j->ops->complete(j->source, j->msg, &c);
    free(c.emits); /* the emits themselves are freed with the task results */
}

static void job_unlink(struct dr_router *r, struct job *j)
{
    if (j->prev) {
        j->prev->next = j->next;
    } else {
        r->jobs = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    j->prev = j->next = NULL;
}

static void job_free(struct dr_router *r, struct job *j)
{
    for (int i = 0; i < j->ntasks; i++) {
        dr_result_cleanup(&j->tasks[i].res);
    }
    if (j->timer) {
        uv_close((uv_handle_t *)j->timer, handle_closed);
    }
    free(j->last_error);
    free(j);
}

static void release_lanes(struct dr_router *r, struct job *j)
{
    int held = 0;

    /* t->lane changes on the loop thread only: no lock to see that there is nothing to free */
    for (int i = 0; i < j->ntasks; i++) {
        held |= j->tasks[i].lane != NULL;
    }
    if (!held) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < j->ntasks; i++) {
        lane_release(r, &j->tasks[i]);
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_retry_timer(uv_timer_t *t)
{
    struct job *j = t->data;
    struct dr_router *rr = j->router;

    j->pending = 0;
    j->retry = 0;
    pthread_mutex_lock(&rr->mu);
    for (int i = 0; i < j->ntasks; i++) {
        struct task *tk = &j->tasks[i];
        if (tk->done) {
            continue;
        }
        dr_result_cleanup(&tk->res);
        j->pending++;
        make_ready(rr, tk); /* keeps its lane */
    }
    pthread_mutex_unlock(&rr->mu);
}

/* The hold of dr_router_submit_after() is over: the tasks whose lane came free meanwhile run. */
static void on_hold_timer(uv_timer_t *t)
{
    struct job *j = t->data;
    struct dr_router *r = j->router;

    pthread_mutex_lock(&r->mu);
    j->holding = 0;
    for (int i = 0; i < j->ntasks; i++) {
        if (j->tasks[i].held) {
            j->tasks[i].held = 0;
            make_ready(r, &j->tasks[i]);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

static void job_timer(struct dr_router *r, struct job *j)
{
    if (!j->timer) {
        j->timer = dr_xcalloc(1, sizeof(*j->timer));
        uv_timer_init(r->loop, j->timer);
        j->timer->data = j;
    }
}

/* The tasks of j not done yet run again (keeping their lanes) no sooner than delay_ms. */
static void rerun_after(struct dr_router *r, struct job *j, int64_t delay_ms)
{
    job_timer(r, j);
    uv_timer_start(j->timer, on_retry_timer, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

static void retry_job(struct dr_router *r, struct job *j)
{
    const struct dr_retry_policy *pol = dr_config_retry(r->cfg, j->msg->type);
    int64_t now = dr_now_ms();
    int64_t delay;
    char labels[256];

    if (!j->msg->first_failure_ms) {
        j->msg->first_failure_ms = now;
    }
    free(j->msg->last_error);
    j->msg->last_error = dr_xstrdup(j->last_error);
    if (j->msg->attempt >= pol->max_attempts) {
        release_lanes(r, j);
        complete_dead(r, j, NULL, "attempts_exhausted", j->last_error);
        return;
    }
    delay = dr_backoff_delay(pol, j->msg->attempt, dr_random_unit());
    snprintf(labels, sizeof(labels), "topic=\"%s\"", j->msg->topic);
    dr_metrics_inc("dr_retries_total", labels, 1);
    j->msg->attempt++;
    if (j->ops->retrying && j->ops->retrying(j->source, j->msg, delay, j->last_error)) {
        /* the source redelivers later; the router lets go */
        release_lanes(r, j);
        job_unlink(r, j);
        r->in_flight--;
        r->in_flight_bytes -= j->bytes;
        dr_msg_unref(j->msg);
        job_free(r, j);
        return;
    }
    rerun_after(r, j, delay);
}

static void round_done(struct dr_router *r, struct job *j)
{
    if (j->rejected >= 0) {
        struct task *t = &j->tasks[j->rejected];
        const char *reason = *t->res.reason ? t->res.reason : "rejected";
        release_lanes(r, j);
        complete_dead(r, j, r->procs[t->proc].def->name, reason, t->res.error);
        return;
    }
    if (j->retry) {
        retry_job(r, j);
        return;
    }
    if (!j->ops->keeps_lanes) {
        release_lanes(r, j);
    }
    finish_ok(r, j);
}

static void task_done(struct dr_router *r, struct task *t)
{
    struct job *j = t->job;
    struct proc *p = &r->procs[t->proc];
    double secs = (double)(dr_mono_ns() - t->t_start) / 1e9;

    if ((int)t->res.outcome != p->last_outcome || strcmp(p->last_topic, j->msg->topic) != 0) {
        snprintf(p->last_topic, sizeof(p->last_topic), "%s", j->msg->topic);
        p->last_outcome = (int)t->res.outcome;
        snprintf(p->last_labels, sizeof(p->last_labels),
                 "topic=\"%s\",processor=\"%s\",outcome=\"%s\"", j->msg->topic, p->def->name,
                 dr_outcome_name(t->res.outcome));
    }
    dr_metrics_inc("dr_messages_processed_total", p->last_labels, 1);
    dr_metrics_observe("dr_processing_seconds", p->labels, secs);

    if (t->probe) {
        /* The probe is back, whatever it says: a failure of its downstream opens the breaker
         * again and a success closes it (below), but a failure of its own (a plain RETRY, or
         * another downstream) says nothing about this one, and the next task must be let
         * through as the next probe instead of the breaker waiting for this one forever. */
        pthread_mutex_lock(&r->mu);
        t->probe->probing = 0;
        t->probe = NULL;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }

    if (t->res.outcome == DR_OUTCOME_RETRY && *t->res.downstream) {
        struct dr_breaker *b;
        pthread_mutex_lock(&r->mu);
        b = breaker_get(r, t->res.downstream);
        if (b) {
            p->last_failed = b;
            dr_breaker_failure(b, dr_mono_ms());
            breaker_metric(b);
            if (b->state == DR_BREAKER_OPEN) {
                /* Pause the processor instead of burning this message's attempts. The result
                 * is cleared before the task is queued again: from then on a worker may take
                 * it (the breaker lets a probe through once open_for has passed) and write
                 * its next outcome into the same result. */
                p->breaker = b;
                dr_result_cleanup(&t->res);
                make_ready(r, t);
                pthread_mutex_unlock(&r->mu);
                DR_WARN("router", "breaker open", "downstream=%s processor=%s", b->name,
                        p->def->name);
                return;
            }
        }
        pthread_mutex_unlock(&r->mu);
    } else if ((p->breaker || p->last_failed) && t->res.outcome != DR_OUTCOME_RETRY) {
        /* The processor got through: its downstream answers again. Consecutive failures are
         * what open a breaker, so scattered ones do not add up. */
        pthread_mutex_lock(&r->mu);
        struct dr_breaker *b = p->breaker ? p->breaker : p->last_failed;
        dr_breaker_success(b);
        breaker_metric(b);
        p->breaker = NULL;
        p->last_failed = NULL;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }

    switch (t->res.outcome) {
    case DR_OUTCOME_OK:
        t->done = 1;
        break;
    case DR_OUTCOME_REJECT:
        t->done = 1;
        if (j->rejected < 0) {
            j->rejected = (int)(t - j->tasks);
        }
        break;
    case DR_OUTCOME_RETRY:
        j->retry = 1;
        {
            /* on the heap, not in the job: a job small enough for malloc's per-thread cache */
            size_t n = strlen(p->def->name) + 2 + strlen(t->res.error) + 1;
            free(j->last_error);
            j->last_error = dr_xmalloc(n);
            snprintf(j->last_error, n, "%s: %s", p->def->name, t->res.error);
        }
        break;
    }
    if (--j->pending == 0) {
        round_done(r, j);
    }
}

static void on_async(uv_async_t *a)
{
    struct dr_router *r = a->data;
    struct task *list;

    pthread_mutex_lock(&r->mu);
    list = r->completed_head;
    r->completed_head = r->completed_tail = NULL;
    pthread_mutex_unlock(&r->mu);
    while (list) {
        struct task *next = list->next;
        task_done(r, list);
        list = next;
    }
}

/* ---------- public ---------- */

/* 1 when the message's priority attribute is one (0-9): one that is not (a word, out of
 * range) leaves the route's priority, not the lowest. */
static int priority_given(const struct dr_msg *msg)
{
    const char *p = dr_msg_attr(msg, "priority");
    int64_t v;

    return p && dr_parse_i64(p, &v) == 0 && v >= 0 && v <= 9;
}

void dr_router_submit(struct dr_router *r, struct dr_msg *msg, const struct dr_source_ops *ops,
                      void *source)
{
    dr_router_submit_after(r, msg, ops, source, 0);
}

void dr_router_submit_after(struct dr_router *r, struct dr_msg *msg,
                            const struct dr_source_ops *ops, void *source, int64_t delay_ms)
{
    size_t idx[MAX_FANOUT];
    size_t n;
    struct job *j;
    char kbuf[512];
    const struct dr_route *first = NULL;

    dr_msg_finish(msg, dr_config_topic_type(r->cfg, msg->topic), 0);
    n = dr_route_match(r->cfg, msg, idx, MAX_FANOUT);
    if (n && r->cfg->routes[idx[0]].priority >= 0 && !priority_given(msg)) {
        msg->priority = r->cfg->routes[idx[0]].priority;
    }
    {
        /* one topic after another is the common case: keep the last label string */
        static _Thread_local char last_topic[200], last_labels[256];
        if (strcmp(last_topic, msg->topic) != 0) {
            snprintf(last_topic, sizeof(last_topic), "%s", msg->topic);
            snprintf(last_labels, sizeof(last_labels), "topic=\"%s\"", msg->topic);
        }
        dr_metrics_inc("dr_messages_received_total", last_labels, 1);
    }

    /* One task per distinct processor across the matched routes. */
    int procs[MAX_FANOUT], nprocs = 0;
    for (size_t i = 0; i < n; i++) {
        const int *rp = r->route_procs[idx[i]];
        for (; *rp >= 0 && nprocs < MAX_FANOUT; rp++) {
            int dup = 0;
            for (int q = 0; q < nprocs; q++) {
                dup |= procs[q] == *rp;
            }
            if (dup) {
                continue;
            }
            if (!first) {
                first = &r->cfg->routes[idx[i]];
            }
            procs[nprocs++] = *rp;
        }
    }

    j = dr_xcalloc(1, sizeof(*j) + (size_t)nprocs * sizeof(struct task));
    j->msg = msg;
    msg->router_job = j;
    j->router = r;
    j->ops = ops;
    j->source = source;
    j->rejected = -1;
    j->bytes = msg->data_len;
    j->next = r->jobs;
    if (r->jobs) {
        r->jobs->prev = j;
    }
    r->jobs = j;
    r->in_flight++;
    r->in_flight_bytes += j->bytes;

    if (nprocs == 0) {
        complete_dead(r, j, NULL, "no_route", "no route matches this message");
        return;
    }
    if (msg->last_error && strcmp(msg->last_error, DR_RUNNING_CRASH_ERROR) == 0 &&
        msg->attempt > dr_config_retry(r->cfg, msg->type)->max_attempts) {
        /* every attempt it had ended with the process (dr/running.h): not one more */
        msg->attempt--;
        complete_dead(r, j, NULL, "crashed", msg->last_error);
        return;
    }
    for (int i = 0; i < nprocs; i++) {
        j->tasks[i].job = j;
        j->tasks[i].proc = procs[i];
    }
    j->ntasks = nprocs;
    j->pending = j->ntasks;
    {
        const char *key = ordering_key(r, msg, first, kbuf, sizeof(kbuf));
        j->ordered = key != NULL;
        pthread_mutex_lock(&r->mu);
        j->holding = delay_ms > 0;
        for (int i = 0; i < j->ntasks; i++) {
            enqueue(r, &j->tasks[i], key);
        }
        pthread_mutex_unlock(&r->mu);
    }
    if (delay_ms > 0) {
        job_timer(r, j);
        uv_timer_start(j->timer, on_hold_timer, (uint64_t)delay_ms, 0);
    }
}

void dr_router_release(struct dr_router *r, struct dr_msg *msg)
{
    struct job *j = msg->router_job;

    if (!j || j->msg != msg) {
        return;
    }
    msg->router_job = NULL;
    release_lanes(r, j);
    job_unlink(r, j);
    r->in_flight--;
    r->in_flight_bytes -= j->bytes;
    dr_msg_unref(j->msg);
    job_free(r, j);
    if (r->was_full && dr_router_has_room(r)) {
        r->was_full = 0;
        if (r->room_fn) {
            r->room_fn(r->room_ctx);
        }
    }
}

void dr_router_release_lanes(struct dr_router *r, struct dr_msg *msg)
{
    struct job *j = msg->router_job;

    if (j && j->msg == msg) {
        release_lanes(r, j);
    }
}

void dr_router_retry_after(struct dr_router *r, struct dr_msg *msg, int64_t delay_ms)
{
    struct job *j = msg->router_job;

    if (!j || j->msg != msg) {
        return;
    }
    /* every processor runs again: the emits of all of them are made anew (a job completed OK
     * has no rejecting task and no retry pending) */
    for (int i = 0; i < j->ntasks; i++) {
        j->tasks[i].done = 0;
    }
    rerun_after(r, j, delay_ms);
}

int dr_router_ordered(const struct dr_msg *msg)
{
    const struct job *j = msg->router_job;

    return j && j->msg == msg && j->ordered;
}

size_t dr_router_workers(const struct dr_router *r)
{
    return (size_t)r->nthreads;
}

void dr_router_set_running(struct dr_router *r, struct dr_running *file,
                           const struct dr_source_ops *ops)
{
    pthread_mutex_lock(&r->mu);
    r->running_file = file;
    r->running_ops = ops;
    pthread_mutex_unlock(&r->mu);
}

size_t dr_router_in_flight(const struct dr_router *r)
{
    return r->in_flight;
}

size_t dr_router_in_flight_bytes(const struct dr_router *r)
{
    return r->in_flight_bytes;
}

int dr_router_has_room(struct dr_router *r)
{
    int room = (int64_t)r->in_flight < r->cfg->max_in_flight &&
               (int64_t)r->in_flight_bytes < r->cfg->max_in_flight_bytes && !r->draining;
    if (!room) {
        r->was_full = 1; /* so the room callback fires once there is room again */
    }
    return room;
}

void dr_router_on_room(struct dr_router *r, void (*fn)(void *ctx), void *ctx)
{
    r->room_fn = fn;
    r->room_ctx = ctx;
}

static double gauge_in_flight(void *ctx)
{
    return (double)((struct dr_router *)ctx)->in_flight;
}

static double gauge_queued(void *ctx)
{
    struct dr_router *r = ctx;
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->nprocs; i++) {
        n += r->procs[i].queued;
    }
    pthread_mutex_unlock(&r->mu);
    return (double)n;
}

int dr_router_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_store *store,
                     struct dr_router **out, char *err, size_t errsz)
{
    struct dr_router *r = dr_xcalloc(1, sizeof(*r));
    size_t nall;
    const struct dr_processor *const *all = dr_processor_all(&nall);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    *out = NULL;
    r->loop = loop;
    r->cfg = cfg;
    r->store = store;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->breakers = dr_xcalloc(64, sizeof(*r->breakers));
    /* Instantiate only processors some route uses. */
    r->procs = dr_xcalloc(nall, sizeof(*r->procs));
    for (size_t i = 0; i < nall; i++) {
        int used = 0;
        for (size_t k = 0; k < cfg->nroutes && !used; k++) {
            for (size_t q = 0; q < cfg->routes[k].nprocessors; q++) {
                used |= strcmp(cfg->routes[k].processors[q], all[i]->name) == 0;
            }
        }
        if (!used) {
            continue;
        }
        struct proc *p = &r->procs[r->nprocs];
        struct dr_proc_env env = {.store = store,
                                  .data_dir = cfg->data_dir,
                                  .config = dr_config_processor(cfg, all[i]->name)};
        char perr[512] = "";
        p->def = all[i];
        snprintf(p->labels, sizeof(p->labels), "processor=\"%s\"", all[i]->name);
        if (all[i]->init && all[i]->init(&env, &p->state, perr, sizeof(perr)) != 0) {
            snprintf(err, errsz, "processor %s: %s", all[i]->name, perr);
            dr_router_destroy(r);
            return DR_EINVAL;
        }
        r->nprocs++;
    }
    /* Resolve every route's processor names once, not per message. */
    r->route_procs = dr_xcalloc(cfg->nroutes + 1, sizeof(*r->route_procs));
    for (size_t i = 0; i < cfg->nroutes; i++) {
        int k = 0;
        r->route_procs[i] = dr_xcalloc(cfg->routes[i].nprocessors + 1, sizeof(int));
        for (size_t q = 0; q < cfg->routes[i].nprocessors; q++) {
            for (int pi = 0; pi < r->nprocs; pi++) {
                if (strcmp(r->procs[pi].def->name, cfg->routes[i].processors[q]) == 0) {
                    r->route_procs[i][k++] = pi;
                    break;
                }
            }
        }
        r->route_procs[i][k] = -1;
    }
    r->async = dr_xcalloc(1, sizeof(*r->async));
    uv_async_init(loop, r->async, on_async);
    r->async->data = r;
    r->nthreads = cfg->workers > 0 ? cfg->workers : (int)(ncpu > 0 ? ncpu : 2);
    r->threads = dr_xcalloc((size_t)r->nthreads, sizeof(*r->threads));
    r->workers = dr_xcalloc((size_t)r->nthreads, sizeof(*r->workers));
    for (int i = 0; i < r->nthreads; i++) {
        r->workers[i].r = r;
        r->workers[i].idx = (size_t)i;
        pthread_create(&r->threads[i], NULL, worker_main, &r->workers[i]);
        pthread_setname_np(r->threads[i], "dr-worker");
    }
    dr_metrics_gauge_fn("dr_in_flight_messages", "", gauge_in_flight, r);
    dr_metrics_gauge_fn("dr_queue_depth", "", gauge_queued, r);
    *out = r;
    return DR_OK;
}

void dr_router_drain(struct dr_router *r)
{
    r->draining = 1;
    pthread_mutex_lock(&r->mu);
    r->draining_workers = 1;
    pthread_mutex_unlock(&r->mu);
}

int dr_router_busy(struct dr_router *r)
{
    int busy;
    pthread_mutex_lock(&r->mu);
    busy = r->running > 0 || r->completed_head != NULL;
    pthread_mutex_unlock(&r->mu);
    return busy;
}

void dr_router_destroy(struct dr_router *r)
{
    if (!r) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->nthreads; i++) {
        pthread_join(r->threads[i], NULL);
    }
    free(r->threads);
    free(r->workers);
    /* Processors finish what they deferred before the jobs that hold those results go. */
    for (int i = 0; i < r->nprocs; i++) {
        if (r->procs[i].def->destroy) {
            r->procs[i].def->destroy(r->procs[i].state);
        }
    }
    /* Everything still held goes back to its source. */
    while (r->jobs) {
        struct job *j = r->jobs;
        job_unlink(r, j);
        if (j->ops->abandon) {
            j->ops->abandon(j->source, j->msg);
        }
        dr_msg_unref(j->msg);
        job_free(r, j);
    }
    for (int i = 0; i < LANE_SLOTS; i++) {
        while (r->lanes[i]) {
            struct lane *l = r->lanes[i];
            r->lanes[i] = l->next;
            free(l->key);
            free(l);
        }
    }
    if (r->async) {
        /* The loop finishes the close later (the daemon runs it after destroy): the handle must
         * stay valid until then, so it goes with its close callback, not with the router. */
        uv_close((uv_handle_t *)r->async, handle_closed);
    }
    free(r->procs);
    free(r->breakers);
    if (r->route_procs) {
        for (size_t i = 0; i < r->cfg->nroutes; i++) {
            free(r->route_procs[i]);
        }
        free(r->route_procs);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

char *dr_router_routes_json(const struct dr_router *r)
{
    cJSON *arr = cJSON_CreateArray();
    char *s;

    for (size_t i = 0; i < r->cfg->nroutes; i++) {
        const struct dr_route *rt = &r->cfg->routes[i];
        cJSON *o = cJSON_CreateObject(), *m = cJSON_CreateObject(), *procs = cJSON_CreateArray();
        cJSON_AddStringToObject(o, "name", rt->name);
        cJSON_AddBoolToObject(o, "default", rt->is_default);
        if (rt->ntopics) {
            cJSON_AddItemToObject(
                m, "topic",
                cJSON_CreateStringArray((const char *const *)rt->topics, (int)rt->ntopics));
        }
        if (rt->ntypes) {
            cJSON_AddItemToObject(
                m, "type",
                cJSON_CreateStringArray((const char *const *)rt->types, (int)rt->ntypes));
        }
        if (rt->nattrs) {
            cJSON *a = cJSON_AddObjectToObject(m, "attributes");
            for (size_t k = 0; k < rt->nattrs; k++) {
                if (rt->attrs[k].op == DR_ATTR_EXACT) {
                    cJSON_AddStringToObject(a, rt->attrs[k].key, rt->attrs[k].value);
                } else if (rt->attrs[k].op == DR_ATTR_PREFIX) {
                    cJSON *p = cJSON_AddObjectToObject(a, rt->attrs[k].key);
                    cJSON_AddStringToObject(p, "prefix", rt->attrs[k].value);
                } else {
                    cJSON *p = cJSON_AddObjectToObject(a, rt->attrs[k].key);
                    cJSON_AddTrueToObject(p, "exists");
                }
            }
        }
        if (rt->nfields) {
            cJSON *pl = cJSON_AddObjectToObject(m, "payload");
            for (size_t k = 0; k < rt->nfields; k++) {
                if (rt->fields[k].equals) {
                    cJSON_AddItemToObject(pl, rt->fields[k].pointer,
                                          cJSON_Duplicate(rt->fields[k].equals, 1));
                } else {
                    cJSON *p = cJSON_AddObjectToObject(pl, rt->fields[k].pointer);
                    cJSON_AddTrueToObject(p, "exists");
                }
            }
        }
        cJSON_AddItemToObject(o, "match", m);
        for (size_t k = 0; k < rt->nprocessors; k++) {
            cJSON_AddItemToArray(procs, cJSON_CreateString(rt->processors[k]));
        }
        cJSON_AddItemToObject(o, "processors", procs);
        if (rt->priority >= 0) {
            cJSON_AddNumberToObject(o, "priority", rt->priority);
        }
        if (rt->ordering_pointer) {
            cJSON_AddStringToObject(o, "ordering_key", rt->ordering_pointer);
        }
        cJSON_AddItemToArray(arr, o);
    }
    s = dr_json_print(arr);
    cJSON_Delete(arr);
    return s;
}

char *dr_router_breakers_json(struct dr_router *r)
{
    cJSON *arr = cJSON_CreateArray();
    int64_t now = dr_mono_ms();
    char *s;

    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nbreakers; i++) {
        struct dr_breaker *b = &r->breakers[i];
        cJSON *o = cJSON_CreateObject(), *paused = cJSON_CreateArray();
        cJSON_AddStringToObject(o, "name", b->name);
        cJSON_AddStringToObject(o, "state", dr_breaker_state_name(b->state));
        cJSON_AddNumberToObject(o, "consecutive_failures", b->failures);
        cJSON_AddNumberToObject(o, "failure_threshold", b->threshold);
        cJSON_AddNumberToObject(o, "open_for_ms", (double)b->open_ms);
        cJSON_AddNumberToObject(o, "retry_in_ms", (double)dr_breaker_wait_ms(b, now));
        cJSON_AddNumberToObject(o, "times_opened", (double)b->opens);
        for (int k = 0; k < r->nprocs; k++) {
            if (r->procs[k].breaker == b) {
                cJSON_AddItemToArray(paused, cJSON_CreateString(r->procs[k].def->name));
            }
        }
        cJSON_AddItemToObject(o, "paused_processors", paused);
        cJSON_AddItemToArray(arr, o);
    }
    pthread_mutex_unlock(&r->mu);
    s = dr_json_print(arr);
    cJSON_Delete(arr);
    return s;
}
