/*
 * POST /api/v1/publish: notifications straight to the real-time clients, for a backend that has
 * them ready. The client-notifications topic takes the same notifications through the router
 * (its queue, routes, retries and dead letters); this skips that hop, the way a push server's
 * publish API does, and answers once they are stored.
 *
 *   request   {"notifications":[ClientNotification, ...]}   1 to 1000 of them, at most 10 MB
 *   200       {"notifications":[{"notification_id":..,"seq":N,"duplicate":false}, ...]}
 *
 * Each is validated as the realtime processor validates a message (dr_notification_parse), all
 * or none: a bad one answers 400 naming its index, and nothing is stored. They are stored through
 * the processor's store thread, so their seqs are in order with the routed ones and the hub fans
 * them out after the commit, as it does those. A notification_id stored before answers
 * "duplicate": true with its first seq and is not fanned out again, so publishing again after a
 * failure is safe (a notification without an id gets a new one each time).
 *
 * Errors (Pub/Sub's JSON shape): 400 INVALID_ARGUMENT, 413 for a body over 10 MB, 503
 * UNAVAILABLE with Retry-After when the realtime processor is not running or the store failed for
 * now, 400 FAILED_PRECONDITION when the store refuses one for good. API keys as for the publish
 * API (role service).
 *
 * A large body is read on the thread pool, which hands the notifications to the store thread
 * and is free again at once; a small one (most requests: a notification or a few) is read on the
 * loop, as handing it to the pool and back costs two thread wake-ups, more than reading it. The
 * answer is given by whichever comes last: the read (done, on the loop) or the commit of the last
 * notification (on_stored, on the store thread, which hands the answer to the loop through the
 * hub, after the fan-out of those notifications).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/apikey.h"
#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/store.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

#define PUBLISH_MAX_NOTIFICATIONS 1000
#define PUBLISH_MAX_BYTES         (10 * 1000 * 1000)
/* Bodies up to this size are read on the loop thread, larger ones on the thread pool. */
#define PUBLISH_INLINE_BYTES (16 * 1024)

struct job {
    struct dr_hub *hub;
    struct dr_http_req *req; /* set by done() when it leaves the answer to the commit */
    const char *body;        /* the request's, valid until the answer */
    size_t len;
    uint64_t t0_ns;
    struct dr_notification **ns;
    size_t n;
    int64_t *seqs;
    int *dups;
    int store_err;  /* the first failure, a dr/db.h error */
    size_t pending; /* notifications the store thread has not finished */
    int stored;     /* the store thread finished all of them */
    int waiting;    /* done() ran first: the last commit answers */
    pthread_mutex_t mu;
    int status; /* an error answer when not 0 */
    const char *grpc;
    char msg[256];
};

static void fail(struct job *j, int status, const char *grpc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(struct job *j, int status, const char *grpc, const char *fmt, ...)
{
    va_list ap;

    j->status = status;
    j->grpc = grpc;
    va_start(ap, fmt);
    vsnprintf(j->msg, sizeof(j->msg), fmt, ap);
    va_end(ap);
}

static void answer_later(void *arg);

/* Store thread. */
static void on_stored(void *ctx, size_t i, int err, int dup, int64_t seq)
{
    struct job *j = ctx;
    int post = 0;

    pthread_mutex_lock(&j->mu);
    j->seqs[i] = seq;
    j->dups[i] = dup;
    if (err && !j->store_err) {
        j->store_err = err;
    }
    if (--j->pending == 0) {
        j->stored = 1;
        post = j->waiting;
    }
    pthread_mutex_unlock(&j->mu);
    if (post) {
        dr__hub_call(j->hub, answer_later, j);
    }
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    return p;
}

static const char *expect(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);

    p = skip_ws(p, end);
    return (size_t)(end - p) >= n && memcmp(p, s, n) == 0 ? p + n : NULL;
}

/* The body as {"notifications":[...]} of notifications dr__notification_scan() reads whole, into
 * *ns; -1, nothing kept, for any other (read_tree() reads it then). */
static int read_fast(const char *body, size_t len, struct dr_notification ***out, size_t *nout)
{
    const char *end = body + len, *p = body;
    struct dr_notification **ns = NULL;
    struct dr_buf scratch;
    size_t n = 0, cap = 0;
    int ok = 0;

    dr_buf_init(&scratch, SIZE_MAX);
    p = expect(p, end, "{");
    p = p ? expect(p, end, "\"notifications\"") : NULL;
    p = p ? expect(p, end, ":") : NULL;
    p = p ? expect(p, end, "[") : NULL;
    while (p && n < PUBLISH_MAX_NOTIFICATIONS) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            ns = dr_xrealloc(ns, cap * sizeof(*ns));
        }
        if (dr__notification_scan(&p, end, NULL, RT_SCAN_TIME_ID, &scratch, &ns[n]) != RT_SCAN_OK) {
            break;
        }
        n++;
        p = skip_ws(p, end);
        if (p < end && *p == ']') {
            p = expect(p + 1, end, "}");
            ok = p && skip_ws(p, end) == end;
            break;
        }
        p = p < end && *p == ',' ? p + 1 : NULL;
    }
    dr_buf_cleanup(&scratch);
    if (!ok) {
        dr__rt_notifications_free(ns, n);
        return -1;
    }
    *out = ns;
    *nout = n;
    return 0;
}

/* The byte after the JSON value at p (after whitespace), or NULL. */
static const char *value_end(const char *p, const char *end)
{
    const char *after = NULL;
    cJSON *v = dr_json_parse_prefix(p, (size_t)(end - p), &after);

    cJSON_Delete(v);
    return v ? after : NULL;
}

/* The text of the value of root's member key, the first of that name (the one
 * cJSON_GetObjectItemCaseSensitive() finds), in body, the text root was parsed from; NULL when
 * it cannot be told. */
static const char *member_text(const cJSON *root, const char *key, const char *body,
                               const char *end)
{
    const char *p = skip_ws(body, end);

    if (p >= end || *p++ != '{') {
        return NULL;
    }
    for (const cJSON *m = root->child; m; m = m->next) {
        p = value_end(p, end); /* the key */
        p = p ? skip_ws(p, end) : NULL;
        if (!p || p >= end || *p++ != ':') {
            return NULL;
        }
        if (strcmp(m->string, key) == 0) {
            return skip_ws(p, end);
        }
        p = value_end(p, end);
        p = p ? skip_ws(p, end) : NULL;
        if (!p || p >= end || *p++ != ',') {
            return NULL;
        }
    }
    return NULL;
}

/* The answer for a body dr_json_text_problem() refuses: it names the first notification with
 * the problem, as other errors name theirs, or the body when the problem is outside them. Only
 * on this error: each member and notification is parsed again to find where its text ends. */
static void explain_text(const cJSON *root, const char *body, size_t len, const char *problem,
                         char *why, size_t whysz)
{
    const char *end = body + len, *p = member_text(root, "notifications", body, end), *q;

    if (p && p < end && *p++ == '[') {
        for (size_t i = 0; (q = value_end(p, end)); i++) {
            const char *own;

            p = skip_ws(p, end);
            if ((own = dr_json_text_problem(p, (size_t)(q - p)))) {
                snprintf(why, whysz, "notifications[%zu]: %s", i, own);
                return;
            }
            p = skip_ws(q, end);
            if (p >= end || *p++ != ',') {
                break;
            }
        }
    }
    snprintf(why, whysz, "the body: %s", problem);
}

/* The body through a cJSON tree: 0, or -1 with the answer's message in why. */
static int read_tree(const char *body, size_t len, struct dr_notification ***out, size_t *nout,
                     char *why, size_t whysz)
{
    const char *after = NULL, *problem;
    cJSON *root = dr_json_parse_prefix(body, len, &after), *it;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "notifications");
    struct dr_notification **ns = NULL;
    size_t n = 0, i = 0;
    int err = -1;

    if (!cJSON_IsObject(root) || !cJSON_IsArray(list)) {
        snprintf(why, whysz, "expected {\"notifications\":[...]}");
        goto out;
    }
    /* cJSON stops at the end of the value: anything after it would be ignored without a word */
    if (skip_ws(after, body + len) != body + len) {
        snprintf(why, whysz, "unexpected data after the JSON object");
        goto out;
    }
    /* the tree keeps invalid UTF-8 and cuts a string short at U+0000: refused on the text */
    if ((problem = dr_json_text_problem(body, len))) {
        explain_text(root, body, len, problem, why, whysz);
        goto out;
    }
    n = (size_t)cJSON_GetArraySize(list);
    if (n == 0 || n > PUBLISH_MAX_NOTIFICATIONS) {
        snprintf(why, whysz, "notifications: 1 to %d of them", PUBLISH_MAX_NOTIFICATIONS);
        goto out;
    }
    ns = dr_xcalloc(n, sizeof(*ns));
    err = 0;
    cJSON_ArrayForEach(it, list)
    {
        char bad[128] = "", id[33];
        const char *def = NULL;

        if (!cJSON_GetObjectItemCaseSensitive(it, "notification_id")) {
            dr_time_id(id);
            def = id;
        }
        err = dr__notification_from_json(it, def, &ns[i], bad, sizeof(bad));
        if (!err && ns[i]->body_len > DR_NOTIFICATION_MAX_BYTES) {
            snprintf(bad, sizeof(bad), "notification too large");
            err = DR_ETOOBIG;
        }
        if (err) {
            snprintf(why, whysz, "notifications[%zu]: %s", i, bad);
            break;
        }
        i++;
    }
out:
    cJSON_Delete(root);
    if (err) {
        dr__rt_notifications_free(ns, ns ? n : 0);
        return -1;
    }
    *out = ns;
    *nout = n;
    return 0;
}

int dr__rt_publish_read(const char *body, size_t len, int how, struct dr_notification ***ns,
                        size_t *n, char *why, size_t whysz)
{
    *ns = NULL;
    *n = 0;
    if (how != RT_READ_TREE && read_fast(body, len, ns, n) == 0) {
        return 0;
    }
    if (how == RT_READ_FAST) {
        return -2;
    }
    return read_tree(body, len, ns, n, why, whysz);
}

/* Reads the notifications of the body into j->ns; 0, or an error answer set in j. */
static int read_body(struct job *j)
{
    char why[256];

    if (dr__rt_publish_read(j->body, j->len, RT_READ_ANY, &j->ns, &j->n, why, sizeof(why))) {
        fail(j, 400, "INVALID_ARGUMENT", "%s", why);
        return -1;
    }
    for (size_t i = 0; i < j->n; i++) {
        j->ns[i]->t0_ns = j->t0_ns;
    }
    return 0;
}

static void work(void *arg)
{
    struct job *j = arg;
    int err;

    if (read_body(j)) {
        return;
    }
    j->seqs = dr_xcalloc(j->n, sizeof(*j->seqs));
    j->dups = dr_xcalloc(j->n, sizeof(*j->dups));
    j->pending = j->n;
    err = dr__rt_store_submit(j->ns, j->n, on_stored, j);
    if (err) {
        fail(j, 503, "UNAVAILABLE", "the realtime processor is not running");
    }
}

static void job_free(struct job *j)
{
    for (size_t i = 0; j->ns && i < j->n; i++) {
        dr_notification_unref(j->ns[i]);
    }
    free(j->ns);
    free(j->seqs);
    free(j->dups);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* Loop thread: the answer, once the notifications are stored (or were refused before). */
static void answer(struct dr_http_req *req, struct job *j)
{
    struct dr_buf out;
    int err;

    if (!j->status && j->store_err && dr_db_err_permanent(j->store_err)) {
        fail(j, 400, "FAILED_PRECONDITION", "the store refuses a notification: %s",
             dr_strerror(j->store_err));
    } else if (!j->status && j->store_err) {
        fail(j, 503, "UNAVAILABLE", "storing the notifications failed: %s",
             dr_strerror(j->store_err));
    }
    if (j->status) {
        if (j->status == 503) {
            dr_http_add_header(req, "Retry-After", "1");
        }
        DR_INFO("realtime", "publish refused", "status=%d reason=\"%s\"", j->status, j->msg);
        dr_http_respond_error(req, j->status, j->grpc, "%s", j->msg);
        job_free(j);
        return;
    }
    /* written straight out: a tree of a thousand members costs more than the request's read */
    dr_buf_init(&out, SIZE_MAX);
    dr_buf_reserve(&out, 32 + j->n * 96);
    err = dr_buf_appends(&out, "{\"notifications\":[");
    for (size_t i = 0; i < j->n && !err; i++) {
        err = dr_buf_appends(&out, i ? ",{\"notification_id\":" : "{\"notification_id\":");
        err = err ? err : dr_buf_append_json_str(&out, j->ns[i]->id, strlen(j->ns[i]->id));
        err = err ? err : dr_buf_appends(&out, ",\"seq\":");
        err = err ? err : dr_json_append_i64(&out, j->seqs[i]);
        err = err ? err
                  : dr_buf_appends(&out,
                                   j->dups[i] ? ",\"duplicate\":true}" : ",\"duplicate\":false}");
    }
    err = err ? err : dr_buf_appends(&out, "]}");
    job_free(j);
    if (err) {
        dr_buf_cleanup(&out);
        dr_http_respond_error(req, 500, "INTERNAL", "out of memory");
        return;
    }
    dr_http_respond(req, 200, "application/json", out.data, out.len);
    dr_buf_cleanup(&out);
}

static void answer_later(void *arg)
{
    struct job *j = arg;

    answer(j->req, j);
}

/* Loop thread, once the pool has read the body: answers now, unless the store thread still
 * has some of the notifications (the last one to finish answers then). */
static void done(struct dr_http_req *req, void *arg)
{
    struct job *j = arg;
    int now;

    pthread_mutex_lock(&j->mu);
    now = j->status || j->stored; /* no status: work() handed them all to the store thread */
    if (!now) {
        j->req = req;
        j->waiting = 1;
    }
    pthread_mutex_unlock(&j->mu);
    if (now) {
        answer(req, j);
    }
}

void dr__rt_publish_route(struct dr_http_req *req, void *ctx)
{
    struct dr_hub *hub = ctx;
    struct job *j;
    size_t len = 0;
    const char *body;

    if (hub->cfg && !dr_apikey_authorize(hub->cfg, req, "service")) {
        return;
    }
    body = dr_http_body(req, &len);
    if (len > PUBLISH_MAX_BYTES) {
        dr_http_respond_error(req, 413, "INVALID_ARGUMENT", "request body larger than %d bytes",
                              PUBLISH_MAX_BYTES);
        return;
    }
    j = dr_xcalloc(1, sizeof(*j));
    j->hub = hub;
    j->body = body ? body : "";
    j->len = len;
    j->t0_ns = dr_http_received_ns(req);
    pthread_mutex_init(&j->mu, NULL);
    if (len <= PUBLISH_INLINE_BYTES) {
        /* read here: a trip through the pool costs more than reading a few notifications */
        work(j);
        done(req, j);
        return;
    }
    if (dr_http_defer(req, work, done, j) != DR_OK) {
        job_free(j);
        dr_http_respond_error(req, 503, "UNAVAILABLE", "the server is shutting down");
    }
}
