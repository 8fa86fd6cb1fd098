/*
 * The vespa client: worker threads block on their own request while one I/O thread, running a
 * private libuv loop with one dr_hc (libcurl multi), keeps all of them on the wire at once over
 * shared keep-alive connections (or HTTP/2 streams).
 *
 * A call lives on the sending worker's stack. The worker queues it under mu and wakes the loop;
 * the loop starts queued calls while fewer than max_in_flight are on the wire; the completion
 * callback copies what the worker needs into its reply, marks the call done and signals the
 * call's own condition variable, all under mu. The worker owns the call again once it sees
 * done, so the I/O thread never touches a call after signalling it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "dr/err.h"
#include "dr/http_client.h"
#include "dr/metrics.h"
#include "dr/util.h"
#include "dr/vespa.h"

#define MAX_RESPONSE (64u * 1024) /* /document/v1 answers are a few hundred bytes */

struct call {
    struct dr_vespa_client *client;
    const struct dr_vespa_request *req;
    const char *const *headers;
    struct dr_vespa_reply *reply;
    pthread_cond_t cv;
    int done;
    struct call *next;
};

struct dr_vespa_client {
    long timeout_ms;
    int http2;
    size_t max_in_flight;

    uv_loop_t loop;
    uv_async_t wake;
    struct dr_hc *hc;
    pthread_t thread;

    pthread_mutex_t mu;
    pthread_cond_t sleep_cv; /* CLOCK_MONOTONIC; broadcast when stopping */
    pthread_cond_t idle_cv;  /* signalled when the last caller leaves a stopping client */
    int callers;             /* threads inside send() or sleep(); destroy() waits for none */
    struct call *head, *tail;
    struct dr_vespa_client_stats stats;
    int stopping;
};

/* mu held. Hands the call back to its worker. */
static void complete(struct call *call, int err, const char *error)
{
    call->reply->err = err;
    if (err != DR_OK) {
        snprintf(call->reply->error, sizeof(call->reply->error), "%s",
                 error ? error : dr_strerror(err));
    }
    call->done = 1;
    pthread_cond_signal(&call->cv);
}

/* mu held. A caller of send() or sleep() is about to return. */
static void leave(struct dr_vespa_client *c)
{
    if (--c->callers == 0 && c->stopping) {
        pthread_cond_signal(&c->idle_cv);
    }
}

static void in_flight_metric(const struct dr_vespa_client *c)
{
    dr_metrics_set("dr_vespa_in_flight", "", (double)c->stats.in_flight);
}

static void on_done(void *ctx, int err, const struct dr_hc_resp *resp);

/* mu held, loop thread. Starts queued calls while there is room. */
static void start_queued(struct dr_vespa_client *c)
{
    while (!c->stopping && c->head && c->stats.in_flight < c->max_in_flight) {
        struct call *call = c->head;
        struct dr_hc_req req = {0};
        int err;

        c->head = call->next;
        if (!c->head) {
            c->tail = NULL;
        }
        c->stats.queued--;
        req.method = call->req->method;
        req.url = call->req->url;
        req.headers = call->headers;
        req.body = call->req->body;
        req.body_len = call->req->body_len;
        req.timeout_ms = c->timeout_ms;
        req.http2 = c->http2;
        req.max_response = MAX_RESPONSE;
        err = dr_hc_request(c->hc, &req, on_done, call);
        if (err) {
            complete(call, err, "request could not be started");
            continue;
        }
        c->stats.sent++;
        c->stats.in_flight++;
        if (c->stats.in_flight > c->stats.max_in_flight) {
            c->stats.max_in_flight = c->stats.in_flight;
        }
    }
    in_flight_metric(c);
}

static void on_done(void *ctx, int err, const struct dr_hc_resp *resp)
{
    struct call *call = ctx;
    struct dr_vespa_client *c = call->client;
    struct dr_vespa_reply *r = call->reply;

    pthread_mutex_lock(&c->mu);
    r->status = resp->status;
    r->seconds = resp->total_s;
    r->retry_after_ms = dr_vespa_retry_after_ms(resp->retry_after);
    if (err == DR_OK && (resp->status < 200 || resp->status >= 300)) {
        dr_vespa_error_message(resp->body, resp->body_len, r->message, sizeof(r->message));
    }
    c->stats.in_flight--;
    complete(call, err, resp->error);
    start_queued(c);
    pthread_mutex_unlock(&c->mu);
}

static void on_wake(uv_async_t *a)
{
    struct dr_vespa_client *c = a->data;

    pthread_mutex_lock(&c->mu);
    if (!c->stopping) {
        start_queued(c);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    while (c->head) {
        struct call *call = c->head;
        c->head = call->next;
        c->stats.queued--;
        complete(call, DR_EUNAVAIL, "vespa client stopping");
    }
    c->tail = NULL;
    /* Closed under mu: a sender that saw stopping == 0 has already called uv_async_send. */
    uv_close((uv_handle_t *)&c->wake, NULL);
    pthread_mutex_unlock(&c->mu);
    /* Fails what is on the wire (on_done runs from inside with DR_EUNAVAIL). */
    dr_hc_destroy(c->hc);
    c->hc = NULL;
}

static void *io_main(void *arg)
{
    struct dr_vespa_client *c = arg;

    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

int dr_vespa_client_create(const struct dr_vespa_conf *conf, struct dr_vespa_client **out)
{
    struct dr_vespa_client *c = dr_xcalloc(1, sizeof(*c));
    pthread_condattr_t ca;
    int err;

    *out = NULL;
    c->timeout_ms = (long)conf->timeout_ms;
    c->http2 = conf->http2;
    c->max_in_flight = conf->max_in_flight > 0 ? (size_t)conf->max_in_flight : 1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->sleep_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&c->idle_cv, NULL);
    if (uv_loop_init(&c->loop) != 0) {
        err = DR_EIO;
        goto fail_loop;
    }
    uv_async_init(&c->loop, &c->wake, on_wake);
    c->wake.data = c;
    err = dr_hc_create(&c->loop, &c->hc);
    if (err) {
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, io_main, c) != 0) {
        dr_hc_destroy(c->hc);
        err = DR_EIO;
        goto fail;
    }
    *out = c;
    return DR_OK;
fail:
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT); /* lets the closed handles finish */
    uv_loop_close(&c->loop);
fail_loop:
    pthread_cond_destroy(&c->idle_cv);
    pthread_cond_destroy(&c->sleep_cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return err;
}

void dr_vespa_client_destroy(struct dr_vespa_client *c)
{
    if (!c) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    uv_async_send(&c->wake);
    pthread_cond_broadcast(&c->sleep_cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    /* The woken callers still need mu to return; the client must outlive them. */
    pthread_mutex_lock(&c->mu);
    while (c->callers > 0) {
        pthread_cond_wait(&c->idle_cv, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    uv_loop_close(&c->loop);
    pthread_cond_destroy(&c->idle_cv);
    pthread_cond_destroy(&c->sleep_cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int dr_vespa_client_send(struct dr_vespa_client *c, const struct dr_vespa_request *req,
                         const char *const *headers, struct dr_vespa_reply *reply)
{
    struct call call = {.client = c, .req = req, .headers = headers, .reply = reply};

    memset(reply, 0, sizeof(*reply));
    reply->retry_after_ms = -1;
    pthread_cond_init(&call.cv, NULL);
    pthread_mutex_lock(&c->mu);
    c->callers++;
    if (c->stopping) {
        complete(&call, DR_EUNAVAIL, "vespa client stopping");
    } else {
        if (c->tail) {
            c->tail->next = &call;
        } else {
            c->head = &call;
        }
        c->tail = &call;
        c->stats.queued++;
        uv_async_send(&c->wake);
    }
    while (!call.done) {
        pthread_cond_wait(&call.cv, &c->mu);
    }
    leave(c);
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&call.cv);
    return reply->err;
}

int dr_vespa_client_sleep(struct dr_vespa_client *c, int64_t ms)
{
    struct timespec ts;
    int rc = DR_OK;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    c->callers++;
    while (!c->stopping) {
        if (pthread_cond_timedwait(&c->sleep_cv, &c->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    if (c->stopping) {
        rc = DR_EUNAVAIL;
    }
    leave(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void dr_vespa_client_stats(struct dr_vespa_client *c, struct dr_vespa_client_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}
