/*
 * The vespa processor (contract in dr/vespa.h): one operation per message, sent by the calling
 * worker through the shared client and retried in process; what is still failing after that is
 * handed to the router's "vespa" breaker, which parks the queue instead of burning attempts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/util.h"
#include "dr/vespa.h"

#define TRACEPARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */

struct vespa_state {
    struct dr_vespa_conf conf;
    struct dr_vespa_client *client; /* NULL when disabled */
};

static void describe_metrics(void)
{
    dr_metrics_describe("dr_vespa_operations_total", "counter",
                        "Index operations by operation and outcome "
                        "(ok, rejected, failed, skipped, invalid).");
    dr_metrics_describe("dr_vespa_requests_total", "counter",
                        "Requests to /document/v1 by status class (2xx, 4xx, 429, 5xx, error).");
    dr_metrics_describe("dr_vespa_retries_total", "counter", "In-process retries of requests.");
    dr_metrics_describe("dr_vespa_request_seconds", "histogram", "Time per /document/v1 request.");
    dr_metrics_describe("dr_vespa_in_flight", "gauge", "Requests to Vespa on the wire.");
}

static void count_op(const char *operation, const char *outcome)
{
    char labels[96];

    snprintf(labels, sizeof(labels), "operation=\"%s\",outcome=\"%s\"", operation, outcome);
    dr_metrics_inc("dr_vespa_operations_total", labels, 1);
}

static void count_request(const struct dr_vespa_reply *r)
{
    const char *cls = "error";

    if (r->err == DR_OK) {
        if (r->status == 429) {
            cls = "429";
        } else if (r->status >= 200 && r->status < 300) {
            cls = "2xx";
        } else if (r->status >= 400 && r->status < 500) {
            cls = "4xx";
        } else if (r->status >= 500 && r->status < 600) {
            cls = "5xx";
        } else {
            cls = "other";
        }
        dr_metrics_observe("dr_vespa_request_seconds", "", r->seconds);
    }
    {
        char labels[32];
        snprintf(labels, sizeof(labels), "status=\"%s\"", cls);
        dr_metrics_inc("dr_vespa_requests_total", labels, 1);
    }
}

static int init(const struct dr_proc_env *env, void **state, char *err, size_t errsz)
{
    struct vespa_state *st = dr_xcalloc(1, sizeof(*st));
    int rc;

    *state = NULL;
    rc = dr_vespa_conf_load(env->config, &st->conf, err, errsz);
    if (rc) {
        goto out;
    }
    describe_metrics();
    if (st->conf.enabled) {
        rc = dr_vespa_client_create(&st->conf, &st->client);
        if (rc) {
            snprintf(err, errsz, "cannot start the Vespa client: %s", dr_strerror(rc));
            goto out;
        }
        /* The endpoint is not logged: it may carry credentials. */
        DR_INFO("vespa", "feeding Vespa",
                "namespace=%s max_in_flight=%d timeout_ms=%lld retries=%d http2=%d", st->conf.ns,
                st->conf.max_in_flight, (long long)st->conf.timeout_ms, st->conf.retries,
                st->conf.http2);
    } else {
        DR_INFO("vespa", "no Vespa endpoint: index operations are acknowledged as skipped", "%s",
                "");
    }
    *state = st;
    st = NULL;
out:
    if (st) {
        dr_vespa_conf_cleanup(&st->conf);
        free(st);
    }
    return rc ? -1 : 0;
}

static void destroy(void *state)
{
    struct vespa_state *st = state;

    if (!st) {
        return;
    }
    dr_vespa_client_destroy(st->client);
    dr_vespa_conf_cleanup(&st->conf);
    free(st);
}

static int valid_traceparent(const char *s)
{
    if (!s || strlen(s) != TRACEPARENT_LEN) {
        return 0;
    }
    for (; *s; s++) {
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || *s == '-')) {
            return 0;
        }
    }
    return 1;
}

/* "HTTP 503: <Vespa's message>" or "timeout (<transport detail>)". */
static void describe_failure(const struct dr_vespa_reply *r, char *out, size_t outsz)
{
    if (r->err != DR_OK) {
        snprintf(out, outsz, "%s (%s)", dr_strerror(r->err), r->error);
    } else if (*r->message) {
        snprintf(out, outsz, "HTTP %ld: %s", r->status, r->message);
    } else {
        snprintf(out, outsz, "HTTP %ld", r->status);
    }
}

static void feed(struct vespa_state *st, const struct dr_msg *msg, const struct dr_vespa_op *op,
                 const struct dr_vespa_request *req, const char *const *headers,
                 struct dr_result *res)
{
    const char *kind = dr_vespa_kind_name(op->kind);
    struct dr_vespa_reply reply;
    char why[400];

    for (int n = 0;; n++) {
        int64_t wait = -1;

        dr_vespa_client_send(st->client, req, headers, &reply);
        count_request(&reply);
        switch (dr_vespa_classify(op->kind, reply.err, reply.status)) {
        case DR_VESPA_DONE:
            count_op(kind, "ok");
            return;
        case DR_VESPA_REJECTED:
            /* Vespa's message goes to the dead letter, not to the log: it may quote a value. */
            DR_WARN("vespa", "operation rejected",
                    "message_id=%s operation=%s doctype=%s status=%ld", msg->message_id, kind,
                    op->doctype, reply.status);
            dr_result_reject(res, DR_VESPA_REASON_REJECTED, "vespa answered %ld to %s: %s",
                             reply.status, kind, *reply.message ? reply.message : "(no message)");
            count_op(kind, "rejected");
            return;
        case DR_VESPA_TRANSIENT:
            break;
        }
        describe_failure(&reply, why, sizeof(why));
        if (reply.err != DR_EUNAVAIL && n < st->conf.retries) {
            wait = dr_vespa_backoff_ms(&st->conf, n, dr_random_unit());
            if (reply.retry_after_ms > wait) {
                /* A long Retry-After is the breaker's business, not a worker's nap. */
                wait = reply.retry_after_ms <= st->conf.backoff_max_ms ? reply.retry_after_ms : -1;
            }
        }
        if (wait < 0 || dr_vespa_client_sleep(st->client, wait) != DR_OK) {
            DR_WARN("vespa", "vespa unavailable",
                    "message_id=%s operation=%s doctype=%s tries=%d status=%ld err=\"%s\"",
                    msg->message_id, kind, op->doctype, n + 1, reply.status,
                    dr_strerror(reply.err));
            dr_result_downstream_failed(res, DR_VESPA_DOWNSTREAM,
                                        "vespa %s failed after %d tries: %s", kind, n + 1, why);
            res->retry_after_ms = reply.retry_after_ms > 0 ? reply.retry_after_ms : 0;
            count_op(kind, "failed");
            return;
        }
        DR_DEBUG("vespa", "retrying", "message_id=%s try=%d status=%ld wait_ms=%lld",
                 msg->message_id, n + 1, reply.status, (long long)wait);
        dr_metrics_inc("dr_vespa_retries_total", "", 1);
    }
}

static void process(void *state, const struct dr_msg *msg, struct dr_result *res)
{
    struct vespa_state *st = state;
    struct dr_vespa_op op;
    struct dr_vespa_request req;
    const char *headers[4];
    char trace[16 + TRACEPARENT_LEN];
    char err[256];
    size_t nh = 0;
    int rc;

    if (dr_vespa_op_parse(dr_msg_payload(msg), &op, err, sizeof(err))) {
        dr_result_reject(res, "invalid_operation", "%s", err);
        count_op("unknown", "invalid");
        return;
    }
    if (!st->conf.enabled) {
        count_op(dr_vespa_kind_name(op.kind), "skipped");
        return; /* OK: nothing to index into */
    }
    rc = dr_vespa_request_build(&st->conf, &op, &req);
    if (rc == DR_ETOOBIG) {
        dr_result_reject(res, "operation_too_large", "request body over %lld bytes",
                         (long long)st->conf.max_body);
        count_op(dr_vespa_kind_name(op.kind), "invalid");
        return;
    }
    if (rc) {
        dr_result_retry(res, "internal_error", "cannot build the request: %s", dr_strerror(rc));
        return;
    }
    headers[nh++] = "Accept: application/json";
    if (req.body) {
        headers[nh++] = "Content-Type: application/json";
    }
    if (valid_traceparent(msg->traceparent)) {
        snprintf(trace, sizeof(trace), "traceparent: %s", msg->traceparent);
        headers[nh++] = trace;
    }
    headers[nh] = NULL;
    feed(st, msg, &op, &req, headers, res);
    dr_vespa_request_cleanup(&req);
}

const struct dr_processor dr_processor_vespa = {
    .name = "vespa",
    .description = "feeds vespa-index operations to Vespa's /document/v1 API",
    .config_keys = dr_vespa_conf_keys,
    .init = init,
    .process = process,
    .destroy = destroy,
};
