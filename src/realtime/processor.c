/*
 * The `realtime` processor: consumes the client-notifications topic. Each message is validated
 * as a ClientNotification on the worker, then handed to this processor's store thread, which
 * stores whatever has gathered in one transaction (that gives each its seq), hands the new ones
 * to the hub in seq order, and only then finishes their messages (dr_result_defer). One store
 * thread per instance means the hub sees this instance's notifications in seq order and only
 * after their rows are committed: the resume logic in conn.c relies on both, and on the store
 * committing seqs in order across instances too (rt_store.c).
 *
 * A notification the store refuses (a constraint or trigger on rt_notifications, a value the
 * database cannot hold) would be refused on every attempt: it is rejected at once
 * (store_refused), and a batch it was part of is stored again one notification at a time so
 * that it fails alone. Other store failures (busy, locked, connection lost, I/O, out of memory)
 * are retried (store_unavailable).
 *
 * A notification already stored (a redelivery) is not fanned out again: whoever missed it gets
 * it from the store on resume.
 *
 * dr__rt_store_submit() puts notifications from elsewhere (the publish API, publish.c) through
 * the same thread, so that they get their seqs in the same order as routed ones.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/processor.h"
#include "dr/store.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

/* Notifications stored in one transaction at most. A commit writes every b-tree page it dirtied
 * to the WAL, and a batch over many rooms dirties a leaf page per room in each index: on this
 * schema with 100 rooms, 512 per transaction wrote 2.6 KB of WAL per notification, 4,096 wrote
 * 0.8 KB. Under load the store thread is the busiest one, so this sets how many notifications
 * per second reach the hub; when little is waiting, a batch is whatever has gathered, and waits
 * for nothing. */
#define BATCH_MAX 2048

struct item {
    struct dr_notification *n;
    struct dr_result *res; /* a routed message's; NULL for dr__rt_store_submit() */
    const char *message_id;
    dr__rt_stored_cb done; /* dr__rt_store_submit(): called instead of finishing res */
    void *ctx;
    size_t idx;
    struct item *next;
};

struct rt_proc {
    struct dr_db *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct item *head, *tail;
    int stop;
};

/* The running processor's state, for dr__rt_store_submit() (one per process). */
static pthread_mutex_t current_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rt_proc *current;

static void finish(struct item *it, int err, int dup)
{
    int refused = err && dr_db_err_permanent(err);

    if (refused) {
        DR_WARN("realtime", "notification refused by the store", "message_id=%s error=\"%s\"",
                it->message_id, dr_strerror(err));
    } else if (!err) {
        DR_DEBUG("realtime", "notification stored", "message_id=%s seq=%lld duplicate=%d",
                 it->message_id, (long long)it->n->seq, dup);
    }
    if (it->done) {
        it->done(it->ctx, it->idx, err, dup, it->n->seq);
    } else if (refused) {
        dr_result_reject(it->res, "store_refused", "the store refuses the notification: %s",
                         dr_strerror(err));
    } else if (err) {
        dr_result_retry(it->res, "store_unavailable", "storing the notification failed: %s",
                        dr_strerror(err));
    }
    dr_notification_unref(it->n);
    if (!it->done) {
        dr_result_finish(it->res);
    }
    free(it);
}

static const char *const outcome_labels[] = {"outcome=\"stored\"", "outcome=\"duplicate\"",
                                             "outcome=\"refused\""};

static void store_batch(struct rt_proc *rp, struct item **v, size_t n)
{
    struct dr_notification *ns[BATCH_MAX];
    int dup[BATCH_MAX], errs[BATCH_MAX];
    struct dr_hub *hub = dr__hub_current();

    for (size_t i = 0; i < n; i++) {
        ns[i] = v[i]->n;
    }
    struct dr_notification *fresh[BATCH_MAX];
    size_t nfresh = 0, count[3] = {0, 0, 0}; /* stored, duplicate, refused */

    dr__rt_store_put_batch(rp->db, ns, n, dup, errs);
    for (size_t i = 0; i < n; i++) {
        if (!errs[i] && !dup[i]) {
            fresh[nfresh++] = ns[i];
        }
    }
    if (hub) {
        dr_hub_publish_many(hub, fresh, nfresh);
    }
    for (size_t i = 0; i < n; i++) {
        /* a store that failed for now is retried: counted when it is stored or refused */
        if (!errs[i] || dr_db_err_permanent(errs[i])) {
            count[errs[i] ? 2 : dup[i] ? 1 : 0]++;
        }
        finish(v[i], errs[i], dup[i]);
    }
    for (int k = 0; k < 3; k++) {
        if (count[k]) {
            dr_metrics_inc(RT_M_STORED, outcome_labels[k], (double)count[k]);
        }
    }
}

static void *store_main(void *arg)
{
    struct rt_proc *rp = arg;
    struct item *v[BATCH_MAX];

    pthread_mutex_lock(&rp->mu);
    for (;;) {
        size_t n = 0;
        while (!rp->head && !rp->stop) {
            pthread_cond_wait(&rp->cv, &rp->mu);
        }
        if (!rp->head) {
            break; /* stopped with nothing left */
        }
        while (rp->head && n < BATCH_MAX) {
            v[n++] = rp->head;
            rp->head = rp->head->next;
        }
        if (!rp->head) {
            rp->tail = NULL;
        }
        pthread_mutex_unlock(&rp->mu);
        store_batch(rp, v, n);
        pthread_mutex_lock(&rp->mu);
    }
    pthread_mutex_unlock(&rp->mu);
    return NULL;
}

static int rt_init(const struct dr_proc_env *env, void **state, char *err, size_t errsz)
{
    struct rt_proc *rp = dr_xcalloc(1, sizeof(*rp));
    int e;

    rp->db = dr_store_db(env->store);
    pthread_mutex_init(&rp->mu, NULL);
    pthread_cond_init(&rp->cv, NULL);
    e = pthread_create(&rp->thread, NULL, store_main, rp);
    if (e) {
        snprintf(err, errsz, "starting the notification store thread: %s", strerror(e));
        pthread_mutex_destroy(&rp->mu);
        pthread_cond_destroy(&rp->cv);
        free(rp);
        return -1;
    }
    pthread_setname_np(rp->thread, "dr-rt-store");
    pthread_mutex_lock(&current_mu);
    current = rp;
    pthread_mutex_unlock(&current_mu);
    *state = rp;
    return 0;
}

static void enqueue(struct rt_proc *rp, struct item *first, struct item *last)
{
    pthread_mutex_lock(&rp->mu);
    if (rp->tail) {
        rp->tail->next = first;
    } else {
        rp->head = first;
    }
    rp->tail = last;
    pthread_cond_signal(&rp->cv);
    pthread_mutex_unlock(&rp->mu);
}

int dr__rt_store_submit(struct dr_notification *const *ns, size_t n, dr__rt_stored_cb done,
                        void *ctx)
{
    struct item *first = NULL, *last = NULL;

    if (n == 0) {
        return DR_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        struct item *it = dr_xcalloc(1, sizeof(*it));
        it->n = dr_notification_ref(ns[i]);
        it->message_id = ns[i]->id;
        it->done = done;
        it->ctx = ctx;
        it->idx = i;
        if (last) {
            last->next = it;
        } else {
            first = it;
        }
        last = it;
    }
    /* under current_mu, so that the processor cannot be destroyed in between: its destroy
     * takes current_mu before it stops the thread, which finishes everything queued */
    pthread_mutex_lock(&current_mu);
    if (!current) {
        pthread_mutex_unlock(&current_mu);
        while (first) {
            struct item *next = first->next;
            dr_notification_unref(first->n);
            free(first);
            first = next;
        }
        return DR_EUNAVAIL;
    }
    enqueue(current, first, last);
    pthread_mutex_unlock(&current_mu);
    return DR_OK;
}

static void rt_process(void *state, const struct dr_msg *msg, struct dr_result *res)
{
    struct rt_proc *rp = state;
    struct dr_notification *n = NULL;
    struct item *it;
    char why[128];

    if (dr_notification_parse((const char *)msg->data, msg->data_len, msg->message_id, &n, why,
                              sizeof(why))) {
        dr_metrics_inc(RT_M_STORED, "outcome=\"invalid\"", 1);
        dr_result_reject(res, "invalid_notification", "%s", why);
        return;
    }
    n->t0_ns = (uint64_t)msg->received_ns;
    it = dr_xcalloc(1, sizeof(*it));
    it->n = n;
    it->res = res;
    it->message_id = msg->message_id; /* the message outlives the deferred result */
    dr_result_defer(res);
    enqueue(rp, it, it);
}

/* The store thread finishes everything queued before it exits. */
static void rt_destroy(void *state)
{
    struct rt_proc *rp = state;

    pthread_mutex_lock(&current_mu);
    if (current == rp) {
        current = NULL;
    }
    pthread_mutex_unlock(&current_mu);
    pthread_mutex_lock(&rp->mu);
    rp->stop = 1;
    pthread_cond_signal(&rp->cv);
    pthread_mutex_unlock(&rp->mu);
    pthread_join(rp->thread, NULL);
    pthread_mutex_destroy(&rp->mu);
    pthread_cond_destroy(&rp->cv);
    free(rp);
}

const struct dr_processor dr_processor_realtime = {
    .name = "realtime",
    .description = "Stores client notifications and delivers them to WebSocket/SSE clients",
    .init = rt_init,
    .process = rt_process,
    .destroy = rt_destroy,
};
