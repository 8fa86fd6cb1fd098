#include "dr/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dr/admin.h"
#include "dr/devtoken.h"
#include "dr/err.h"
#include "dr/http.h"
#include "dr/json.h"
#include "dr/local.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/realtime.h"
#include "dr/pull.h"
#include "dr/push.h"
#include "dr/router.h"
#include "dr/static.h"
#include "dr/store.h"
#include "dr/util.h"
#include "dr/version.h"

struct daemon {
    uv_loop_t *loop;
    struct dr_config *cfg;
    struct dr_store *store;
    struct dr_router *router;
    struct dr_local *local;
    struct dr_pull *pull;
    struct dr_push *push;
    struct dr_http_server *http;
    struct dr_admin *admin;
    struct dr_realtime *rt;
    struct dr_devtoken *devtoken;
    struct dr_static *web;
    uv_signal_t sigterm, sigint;
    uv_timer_t drain_timer;
    int64_t drain_deadline;
    int stopping;
    uv_timer_t retention_timer;
    int retention_running;
};

static void describe_metrics(void)
{
    dr_metrics_describe("dr_messages_received_total", "counter",
                        "Messages taken from a source, by topic.");
    dr_metrics_describe("dr_messages_processed_total", "counter",
                        "Processor runs, by topic, processor and outcome (ok, retry, reject).");
    dr_metrics_describe("dr_processing_seconds", "histogram", "Time a processor took per run.");
    dr_metrics_describe("dr_end_to_end_seconds", "histogram",
                        "From a source receiving a message to its acknowledgement.");
    dr_metrics_describe("dr_retries_total", "counter", "Retries scheduled, by topic.");
    dr_metrics_describe("dr_dead_letters_total", "counter", "Dead letters, by topic and reason.");
    dr_metrics_describe("dr_published_total", "counter", "Messages accepted for publishing.");
    dr_metrics_describe("dr_in_flight_messages", "gauge", "Messages held by the router.");
    dr_metrics_describe("dr_queue_depth", "gauge", "Tasks waiting for a worker.");
    dr_metrics_describe("dr_breaker_state", "gauge",
                        "Circuit breaker state per downstream: 0 closed, 1 open, 2 half-open.");
    dr_metrics_describe("dr_http_requests_total", "counter", "HTTP requests by status class.");
    dr_metrics_describe("dr_http_connections", "gauge", "Open HTTP connections.");
    dr_metrics_describe("dr_api_key_rate_limited_total", "counter",
                        "Requests refused with 429 for being over their API key's rate, by key.");
    dr_metrics_describe("dr_pulled_total", "counter", "Messages pulled from Pub/Sub.");
    dr_metrics_describe("dr_pull_failures_total", "counter",
                        "Pulls from Pub/Sub that failed or were refused, by subscription.");
    dr_metrics_describe("dr_duplicates_total", "counter",
                        "Messages acknowledged without running again (seen within the window).");
    dr_metrics_describe("dr_notifications_purged_total", "counter",
                        "Real-time notifications deleted by retention (retention.notifications).");
}

static void on_healthz(struct dr_http_req *req, void *ctx)
{
    dr_http_respond_json(req, 200, "{\"status\":\"ok\"}");
}

struct ready_job {
    struct daemon *d;
    int err;
};

static void ready_work(void *arg)
{
    struct ready_job *j = arg;
    j->err = dr_db_exec(dr_store_db(j->d->store), "SELECT 1", NULL, 0, NULL, NULL, NULL);
}

static void ready_done(struct dr_http_req *req, void *arg)
{
    struct ready_job *j = arg;
    struct daemon *d = j->d;
    int bus = dr_realtime_bus_up(d->rt);
    int redis_up = bus != 0;
    int pubsub_ok = !d->pull || dr_pull_healthy(d->pull);
    int ready = !d->stopping && !j->err && redis_up && pubsub_ok;
    char body[256];

    snprintf(body, sizeof(body),
             "{\"status\":\"%s\",\"store\":\"%s\",\"redis\":\"%s\",\"pubsub\":\"%s\"}",
             d->stopping ? "stopping" : ready ? "ready" : "unavailable", j->err ? "down" : "ok",
             bus < 0 ? "not configured" : redis_up ? "ok" : "down",
             !d->pull ? "not configured" : pubsub_ok ? "ok" : "failing");
    dr_http_respond_json(req, ready ? 200 : 503, body);
    free(j);
}

static void on_readyz(struct dr_http_req *req, void *ctx)
{
    struct ready_job *j = dr_xcalloc(1, sizeof(*j));
    j->d = ctx;
    if (dr_http_defer(req, ready_work, ready_done, j)) {
        free(j);
        dr_http_respond_json(req, 503, "{\"status\":\"unavailable\"}");
    }
}

static void on_metrics(struct dr_http_req *req, void *ctx)
{
    struct daemon *d = ctx;
    char *s;
    dr_metrics_set("dr_http_connections", "", (double)dr_http_server_connections(d->http));
    s = dr_metrics_render();
    dr_http_respond(req, 200, "text/plain; version=0.0.4", s, strlen(s));
    free(s);
}

static void on_version(struct dr_http_req *req, void *ctx)
{
    struct daemon *d = ctx;
    char body[256];
    snprintf(body, sizeof(body), "{\"name\":\"data-router\",\"version\":\"%s\",\"mode\":\"%s\"}",
             DR_VERSION, d->cfg->mode);
    dr_http_respond_json(req, 200, body);
}

static void http_observer(const struct dr_http_req *req, int status, void *ctx)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "code=\"%dxx\"", status / 100);
    dr_metrics_inc("dr_http_requests_total", labels, 1);
}

/* ---- retention: dedup records past their window, dead letters and notifications past theirs */

/* notifications deleted per transaction: the store thread's inserts wait for one chunk at most */
#define NOTIFICATION_PURGE_CHUNK 1000

struct retention {
    uv_work_t work;
    struct daemon *d;
    int64_t dedup_before, dlq_before, notifications_before;
};

static void retention_work(uv_work_t *w)
{
    struct retention *r = (struct retention *)w;
    int64_t n1 = 0, n2 = 0, n3 = 0;
    dr_store_dedup_purge(r->d->store, r->dedup_before, &n1);
    if (r->dlq_before > 0) {
        dr_store_dlq_purge(r->d->store, r->dlq_before, &n2);
    }
    if (r->notifications_before > 0) {
        int err = dr_realtime_purge(dr_store_db(r->d->store), r->notifications_before,
                                    NOTIFICATION_PURGE_CHUNK, &n3);
        if (err) {
            DR_WARN("retention", "notification purge failed", "purged=%lld error=\"%s\"",
                    (long long)n3, dr_strerror(err));
        }
        if (n3) {
            dr_metrics_inc("dr_notifications_purged_total", "", (double)n3);
        }
    }
    if (n1 || n2 || n3) {
        DR_INFO("retention", "purged", "dedup_records=%lld dead_letters=%lld notifications=%lld",
                (long long)n1, (long long)n2, (long long)n3);
    }
}

static void retention_done(uv_work_t *w, int status)
{
    struct retention *r = (struct retention *)w;
    r->d->retention_running = 0;
    free(r);
}

static void on_retention_tick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    struct retention *r;
    int64_t now = dr_now_ms();

    if (d->retention_running || d->stopping) {
        return;
    }
    r = dr_xcalloc(1, sizeof(*r));
    r->d = d;
    r->dedup_before = now - d->cfg->dedup_window_ms;
    r->dlq_before = d->cfg->dlq_retention_ms > 0 ? now - d->cfg->dlq_retention_ms : 0;
    r->notifications_before =
        d->cfg->notification_retention_ms > 0 ? now - d->cfg->notification_retention_ms : 0;
    d->retention_running = 1;
    uv_queue_work(d->loop, &r->work, retention_work, retention_done);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

/* Requests being answered, and notifications on their way to the other instances. */
static int answering(struct daemon *d)
{
    return dr_http_server_busy(d->http) || dr_realtime_busy(d->rt);
}

/* What a shutdown waits for: messages in the router, acks and dead letters under way, and
 * answering(). */
static int draining(struct daemon *d)
{
    return dr_router_busy(d->router) || (d->pull && dr_pull_busy(d->pull)) || answering(d);
}

static void on_drain_tick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    int busy = draining(d);

    if (busy && dr_mono_ms() < d->drain_deadline) {
        return;
    }
    if (busy) {
        DR_WARN("daemon", "shutdown deadline passed: unfinished work is handed back", "held=%zu",
                dr_router_in_flight(d->router));
    }
    uv_timer_stop(t);
    uv_stop(d->loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;

    if (d->stopping) {
        DR_WARN("daemon", "second signal: stopping now", "signal=%d", signum);
        uv_stop(d->loop);
        return;
    }
    d->stopping = 1;
    DR_INFO("daemon", "shutting down", "signal=%d in_flight=%zu deadline_ms=%lld", signum,
            dr_router_in_flight(d->router), (long long)d->cfg->shutdown_deadline_ms);
    dr_http_server_stop(d->http);
    dr_admin_stop(d->admin);
    dr_realtime_close_clients(d->rt);
    if (d->local) {
        dr_local_stop(d->local);
    }
    if (d->pull) {
        dr_pull_stop(d->pull);
    }
    dr_router_drain(d->router);
    d->drain_deadline = dr_mono_ms() + d->cfg->shutdown_deadline_ms;
    uv_timer_init(d->loop, &d->drain_timer);
    d->drain_timer.data = d;
    uv_timer_start(&d->drain_timer, on_drain_tick, 0, 20);
}

static int make_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        return -1;
    }
    return 0;
}

int dr_daemon_run(struct dr_config *cfg)
{
    struct daemon d;
    struct dr_http_limits lim = {0};
    char err[512] = "";
    int rc = 1;
    enum dr_log_level lvl;

    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    /* The thread pool runs request decoding, store reads and writes for the HTTP APIs and the
     * steps of replay jobs: more than libuv's default 4 threads, unless the operator chose. */
    setenv("UV_THREADPOOL_SIZE", "8", 0);
    d.loop = uv_default_loop();
    signal(SIGPIPE, SIG_IGN);
    if (dr_log_parse_level(cfg->log_level, &lvl) == 0) {
        dr_log_set_level(lvl);
    }
    describe_metrics();
    if (make_dirs(cfg->data_dir) != 0) {
        DR_ERROR("daemon", "cannot create data directory", "dir=\"%s\" error=\"%s\"",
                 cfg->data_dir, strerror(errno));
        return 1;
    }
    if (dr_store_open(cfg->store_url, &d.store) != 0) {
        DR_ERROR("daemon", "cannot open the store", "backend=%s",
                 strncmp(cfg->store_url, "postgres", 8) == 0 ? "postgresql" : "sqlite");
        return 1;
    }
    /* before the router: the realtime processor hands notifications to this hub */
    if (dr_realtime_create(d.loop, cfg, d.store, &d.rt, err, sizeof(err)) != 0) {
        DR_ERROR("daemon", "cannot start real-time delivery", "error=\"%s\"", err);
        goto out;
    }
    if (dr_router_create(d.loop, cfg, d.store, &d.router, err, sizeof(err)) != 0) {
        /* a processor refused its configuration: a configuration error like any other */
        fprintf(stderr, "data-router: config error: %s: %s\n", cfg->source, err);
        rc = 2;
        goto out;
    }
    lim.request_timeout_ms = (unsigned)cfg->request_timeout_ms;
    dr_http_server_create(d.loop, &lim, &d.http);
    dr_http_set_observer(d.http, http_observer, &d);
    dr_http_route(d.http, "GET", "/healthz", on_healthz, &d);
    dr_http_route(d.http, "GET", "/readyz", on_readyz, &d);
    dr_http_route(d.http, "GET", "/metrics", on_metrics, &d);
    dr_http_route(d.http, "GET", "/version", on_version, &d);
    /* The local queue also holds pushed messages and dead-letter replays in pubsub mode. */
    dr_local_create(d.loop, cfg, d.store, d.router, &d.local);
    if (strcmp(cfg->mode, "local") == 0) {
        dr_local_register(d.local, d.http);
    } else {
        if (cfg->nsubscriptions && dr_pull_create(d.loop, cfg, d.store, d.router, &d.pull) != 0) {
            goto out;
        }
        if (cfg->push_enabled) {
            if (dr_push_create(d.loop, cfg, d.store, d.local, &d.push) != 0) {
                goto out;
            }
            dr_push_register(d.push, d.http);
        }
    }
    d.admin = dr_admin_create(d.loop, cfg, d.store, d.router, d.local);
    dr_admin_register(d.admin, d.http);
    dr_realtime_register(d.rt, d.http);
    if (dr_devtoken_create(cfg, &d.devtoken, err, sizeof(err)) != 0) {
        DR_WARN("daemon", "development sign-in is off", "error=\"%s\"", err);
    }
    dr_devtoken_register(d.devtoken, d.http);
    if (dr_static_create(cfg, &d.web, err, sizeof(err)) != 0) {
        DR_ERROR("daemon", "cannot serve the dashboard", "error=\"%s\"", err);
        goto out;
    }
    dr_static_register(d.web, d.http); /* last: GET / */
    if (dr_http_server_listen(d.http, cfg->host, cfg->port) != 0) {
        goto out;
    }
    if (d.local) {
        dr_local_start(d.local);
    }
    if (d.pull) {
        dr_pull_start(d.pull);
    }
    uv_timer_init(d.loop, &d.retention_timer);
    d.retention_timer.data = &d;
    uv_timer_start(&d.retention_timer, on_retention_tick, 10000, 600000);
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    DR_INFO("daemon", "listening",
            "url=http://%s:%d mode=%s version=%s config=\"%s\" data_dir=\"%s\"", cfg->host,
            dr_http_server_port(d.http), cfg->mode, DR_VERSION, cfg->source, cfg->data_dir);
    uv_run(d.loop, UV_RUN_DEFAULT);
    rc = 0;
out:
    /* Order: let a table read in progress land, stop the workers (the router hands back what it
     * holds), flush the writer, then close handles and let deferred work finish. */
    dr_admin_stop(d.admin); /* before the local source goes: replay jobs poke it */
    if (d.local) {
        dr_local_stop(d.local);
        while (dr_local_busy(d.local)) {
            uv_run(d.loop, UV_RUN_ONCE);
        }
    }
    if (d.pull) {
        /* acks, dead-letter publishes and store writes under way land first (bounded) */
        int64_t until = dr_mono_ms() + 5000;
        dr_pull_stop(d.pull);
        while (dr_pull_busy(d.pull) && dr_mono_ms() < until) {
            uv_run(d.loop, UV_RUN_NOWAIT);
        }
    }
    dr_router_destroy(d.router);
    {
        /* what the router's last messages stored goes out on the bus, and the answers to the
         * requests under way are written (bounded: a deadline that passed gets 2 s more) */
        int64_t until = dr_mono_ms() + 2000;
        if (d.drain_deadline > until) {
            until = d.drain_deadline;
        }
        while (answering(&d) && dr_mono_ms() < until) {
            uv_run(d.loop, UV_RUN_NOWAIT);
            if (answering(&d)) {
                uv_sleep(5);
            }
        }
    }
    dr_realtime_stop(d.rt); /* after the router: no processor hands it anything any more */
    dr_pull_destroy(d.pull);
    dr_push_destroy(d.push);
    int owns_queue = d.local != NULL; /* its rows are leased to this instance */
    dr_local_destroy(d.local);
    dr_http_server_destroy(d.http);
    uv_walk(d.loop, close_walk, NULL);
    uv_run(d.loop, UV_RUN_DEFAULT);
    dr_admin_destroy(d.admin);
    dr_static_destroy(d.web);
    dr_devtoken_destroy(d.devtoken);
    dr_realtime_destroy(d.rt);
    if (owns_queue) {
        /* the last writer (a replay step, a commit) has landed: whoever starts next, with
         * another owner, takes what is left at once */
        int64_t segs = 0;
        int rerr = dr_store_queue_release(d.store, &segs);
        if (rerr) {
            DR_WARN("daemon", "queue leases not released", "error=\"%s\"", dr_strerror(rerr));
        } else if (segs) {
            DR_INFO("daemon", "queue leases released", "segments=%lld", (long long)segs);
        }
    }
    dr_store_close(d.store);
    uv_loop_close(d.loop);
    DR_INFO("daemon", "stopped", "exit=%d", rc);
    return rc;
}
