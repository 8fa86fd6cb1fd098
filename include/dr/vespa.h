/*
 * The vespa processor: feeds the index operations of topic `vespa-index` (dr/index.h) to Vespa's
 * /document/v1 API.
 *
 *   put     POST   /document/v1/<namespace>/<doctype>/docid/<docid>?timeout=..
 *                  {"fields":{...}}                       the whole document; replaces it
 *   update  PUT    /document/v1/<namespace>/<doctype>/docid/<docid>?create=true&timeout=..
 *                  {"fields":{"f":{"assign":v},...}}      partial; creates the document if absent
 *   remove  DELETE /document/v1/<namespace>/<doctype>/docid/<docid>?timeout=..
 *
 * The operation message is the one dr_index_emit() writes, plus "update":
 *   {"operation":"put"|"update"|"remove","doctype":"email","docid":"<user_id>:<source_id>",
 *    "user_id":"...","fields":{...}}
 * The docid is percent-encoded as one path segment, so the same docid always names the same
 * document and re-indexing overwrites it.
 *
 * Outcomes: 2xx → OK; 404 on remove → OK (already gone); 400 and other permanent 4xx → REJECT
 * with reason "vespa_rejected" and Vespa's message; 429, 5xx, 401/403 (credentials), timeouts and
 * connection failures are retried in process with exponential backoff, then reported with
 * dr_result_downstream_failed(res, "vespa", ...) so the router's breaker "vespa" pauses the queue.
 *
 * Config (processors.vespa), every key optional:
 *   endpoint       "http://127.0.0.1:8080" (env DR_VESPA_URL wins). None = operations are
 *                  acknowledged as skipped (metric outcome="skipped"), so local mode runs
 *                  without Vespa.
 *   enabled        false = skip even with an endpoint; true without an endpoint = start fails.
 *   namespace      "datarouter"
 *   max_in_flight  64      requests on the wire at once; more wait in a FIFO
 *   timeout        10s     per request (Vespa's own timeout is set a little below it)
 *   retries        3       in-process retries of one attempt
 *   backoff        100ms   first retry delay; doubles per retry, with jitter
 *   backoff_max    2s
 *   http2          auto    auto: HTTP/2 by ALPN over https, HTTP/1.1 keep-alive over http;
 *                          h2c: HTTP/2 with prior knowledge; http1: never HTTP/2
 *   max_body       8388608 bytes of request body; larger operations are rejected
 */
#ifndef DR_VESPA_H
#define DR_VESPA_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dr/buf.h"
#include "dr/processor.h"

#define DR_VESPA_DOWNSTREAM      "vespa"
#define DR_VESPA_REASON_REJECTED "vespa_rejected"

extern const struct dr_processor dr_processor_vespa;

/* ---------- configuration ---------- */

/* The keys above, NULL-terminated: what processors.vespa may hold. */
extern const char *const dr_vespa_conf_keys[];

struct dr_vespa_conf {
    char *endpoint; /* without a trailing '/'; NULL when none is configured */
    char *ns;       /* namespace */
    int enabled;    /* 0 = acknowledge operations as skipped */
    int max_in_flight;
    int64_t timeout_ms;
    int retries;
    int64_t backoff_ms;
    int64_t backoff_max_ms;
    int http2; /* as dr_hc_req.http2: 0 = HTTP/1.1, 1 = ALPN over TLS, 2 = prior knowledge */
    int64_t max_body;
};

/*
 * Reads section (processors.vespa; NULL = all defaults) and the environment (DR_VESPA_URL) into
 * *conf. On failure returns DR_EINVAL with "processors.vespa.<key>: <reason>" in err and *conf
 * holds nothing to free. Unknown keys are errors. Any thread.
 */
int dr_vespa_conf_load(const cJSON *section, struct dr_vespa_conf *conf, char *err, size_t errsz);
void dr_vespa_conf_cleanup(struct dr_vespa_conf *conf);

/* ---------- operations and requests ---------- */

enum dr_vespa_kind {
    DR_VESPA_PUT = 0,
    DR_VESPA_UPDATE,
    DR_VESPA_REMOVE,
};
/* "put", "update", "remove": bounded, usable as a metric label. */
const char *dr_vespa_kind_name(enum dr_vespa_kind k);

struct dr_vespa_op {
    enum dr_vespa_kind kind;
    const char *doctype; /* borrowed from the payload */
    const char *docid;   /* borrowed from the payload */
    const cJSON *fields; /* borrowed; NULL for remove */
};

/*
 * Reads an index operation from a parsed message payload. The op borrows from payload, which
 * must outlive it. DR_EINVAL with a reason in err (no field values quoted) when the payload is
 * not an operation this processor can send.
 */
int dr_vespa_op_parse(const cJSON *payload, struct dr_vespa_op *op, char *err, size_t errsz);

struct dr_vespa_request {
    const char *method; /* static string */
    char *url;          /* owned */
    char *body;         /* owned; NULL for remove */
    size_t body_len;
};

/*
 * Builds the HTTP request for op. On DR_OK *req owns its strings (dr_vespa_request_cleanup()).
 * DR_ETOOBIG when the body exceeds conf->max_body, DR_EINVAL when the endpoint is missing; *req
 * is then empty.
 */
int dr_vespa_request_build(const struct dr_vespa_conf *conf, const struct dr_vespa_op *op,
                           struct dr_vespa_request *req);
void dr_vespa_request_cleanup(struct dr_vespa_request *req); /* NULL-safe, idempotent */

/* Appends s percent-encoded as one URL path segment: only RFC 3986 unreserved characters stay
 * as they are ('/', ':', '%', '?', '#', spaces and non-ASCII bytes are all encoded). */
int dr_vespa_append_segment(struct dr_buf *b, const char *s);

/* ---------- responses ---------- */

enum dr_vespa_verdict {
    DR_VESPA_DONE = 0,  /* applied (or nothing to do) */
    DR_VESPA_REJECTED,  /* Vespa refused the operation itself: retrying cannot help */
    DR_VESPA_TRANSIENT, /* overload, outage, timeout, credentials: worth retrying later */
};

/* err is the dr_hc_cb err (DR_OK when an HTTP answer arrived), status its HTTP status. */
enum dr_vespa_verdict dr_vespa_classify(enum dr_vespa_kind kind, int err, long status);

/*
 * Writes the "message" of Vespa's error body ({"pathId","id","message"}) into out, with control
 * characters replaced and truncated to fit; "" when body has no such message. out always ends
 * with NUL.
 */
void dr_vespa_error_message(const char *body, size_t len, char *out, size_t outsz);

/* Retry-After as delta-seconds → milliseconds; -1 when absent or not delta-seconds. */
int64_t dr_vespa_retry_after_ms(const char *value);

/* Delay before in-process retry number n (0 = the first): backoff_ms * 2^n capped at
 * backoff_max_ms, then scaled into [1/2, 1] by unit (a random number in [0, 1)). */
int64_t dr_vespa_backoff_ms(const struct dr_vespa_conf *conf, int n, double unit);

/* ---------- the client: one I/O thread, many requests in flight ---------- */

struct dr_vespa_client;

struct dr_vespa_reply {
    int err;     /* DR_OK when an HTTP answer arrived; DR_ETIMEOUT, DR_EIO, DR_EUNAVAIL.. */
    long status; /* HTTP status, 0 when none */
    int64_t retry_after_ms; /* -1 when the answer had none */
    double seconds;         /* time on the wire */
    char message[320];      /* Vespa's error message for non-2xx answers, else "" */
    char error[160];        /* transport error text when err != DR_OK */
};

/*
 * Starts the client's I/O thread: a private libuv loop with one libcurl multi handle, so
 * requests from any number of threads share connections and are multiplexed. At most
 * conf->max_in_flight requests are on the wire; the rest wait in submission order. conf is
 * copied. DR_EIO if libcurl or the thread cannot start.
 */
int dr_vespa_client_create(const struct dr_vespa_conf *conf, struct dr_vespa_client **out);
/*
 * Stops the I/O thread. Calls waiting or in flight return DR_EUNAVAIL; sleepers wake; it returns
 * once every one of them has left the client. Must not race with new calls that start after it
 * returns (the router joins its workers first).
 * NULL-safe.
 */
void dr_vespa_client_destroy(struct dr_vespa_client *c);
/*
 * Sends req (with the extra "Name: value" headers, NULL-terminated, or NULL) and blocks the
 * calling thread until the answer, a timeout or the client's end. Returns reply->err. Any thread
 * but the client's own.
 */
int dr_vespa_client_send(struct dr_vespa_client *c, const struct dr_vespa_request *req,
                         const char *const *headers, struct dr_vespa_reply *reply);
/* Sleeps ms, or less when the client is being destroyed (then DR_EUNAVAIL). */
int dr_vespa_client_sleep(struct dr_vespa_client *c, int64_t ms);

struct dr_vespa_client_stats {
    size_t in_flight;     /* on the wire now */
    size_t queued;        /* waiting for a slot */
    size_t max_in_flight; /* the most on the wire at once so far */
    uint64_t sent;        /* requests started */
};
void dr_vespa_client_stats(struct dr_vespa_client *c, struct dr_vespa_client_stats *out);

#endif
