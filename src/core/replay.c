/* Dead-letter replay: one dead letter, and paced replay jobs (see core/replay.h). */
#include "core/replay.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/audit.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/util.h"

/* A job step replays what is due within this long, at most STEP_MAX dead letters: short work
 * on the pool, however fast the rate. */
#define STEP_MS  20
#define STEP_MAX 200
/* A job that fell behind (a slow store) catches up on at most this much, not in one burst. */
#define CATCH_UP_MS   1000
#define MAX_RUNNING   16
#define KEEP_FINISHED 50

/* ---- one dead letter ---- */

/* Builds the queue row that replays d; edits from body (data | payload | attributes). */
static int replay_row(const struct dr_dead_letter *d, const cJSON *body, struct dr_qmsg *q,
                      char *err, size_t errsz)
{
    cJSON *m = d->message_json ? cJSON_Parse(d->message_json) : NULL;
    const char *data, *okey;
    const cJSON *attrs;
    int rc = DR_EINVAL;
    size_t n;

    memset(q, 0, sizeof(*q));
    if (!m) {
        snprintf(err, errsz, "the dead letter has no readable original message");
        goto out;
    }
    data = dr_json_str(m, "data");
    attrs = cJSON_GetObjectItemCaseSensitive(m, "attributes");
    okey = dr_json_str(m, "orderingKey");
    if (body) {
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(body, "payload");
        const char *bd = dr_json_str(body, "data");
        const cJSON *ba = cJSON_GetObjectItemCaseSensitive(body, "attributes");
        if (pl) {
            char *s = dr_json_print(pl);
            q->data = (unsigned char *)s;
            q->data_len = strlen(s);
        } else if (bd) {
            if (dr_base64_decode(bd, strlen(bd), &q->data, &n)) {
                snprintf(err, errsz, "data: invalid base64");
                goto out;
            }
            q->data_len = n;
        }
        if (ba) {
            if (!cJSON_IsObject(ba)) {
                snprintf(err, errsz, "attributes: expected an object of strings");
                goto out;
            }
            attrs = ba;
        }
    }
    if (!q->data && data) {
        if (dr_base64_decode(data, strlen(data), &q->data, &n)) {
            snprintf(err, errsz, "stored data is not base64");
            goto out;
        }
        q->data_len = n;
    }
    q->message_id = dr_xstrdup(d->message_id);
    q->topic = dr_xstrdup(d->topic);
    q->attrs_json = attrs ? dr_json_print(attrs) : dr_xstrdup("{}");
    q->ordering_key = (okey && *okey) ? dr_xstrdup(okey) : NULL;
    q->publish_time_ms = dr_now_ms();
    rc = DR_OK;
out:
    if (rc) {
        dr_qmsg_cleanup(q);
    }
    cJSON_Delete(m);
    return rc;
}

int dr__replay_one(struct dr_store *st, const struct dr_dead_letter *d, const cJSON *body,
                   char *err, size_t errsz)
{
    struct dr_qmsg q;
    struct dr_qbatch b;
    int rc;

    rc = replay_row(d, body, &q, err, errsz);
    if (rc) {
        return rc;
    }
    memset(&b, 0, sizeof(b));
    b.inserts = &q;
    b.ninserts = 1;
    b.dlq_take = &d->id;
    b.ndlq_take = 1;
    rc = dr_store_apply(st, &b);
    if (rc && rc != DR_ENOTFOUND) {
        snprintf(err, errsz, "store: %s", dr_strerror(rc));
    }
    dr_qmsg_cleanup(&q);
    return rc;
}

/* Copies a filter, pointing the copy's strings at its own buffers. */
static void filter_buf_copy(struct dr_dlq_filter_buf *dst, const struct dr_dlq_filter_buf *src)
{
    *dst = *src;
    dst->f.topic = src->f.topic ? dst->topic : NULL;
    dst->f.processor = src->f.processor ? dst->processor : NULL;
    dst->f.reason = src->f.reason ? dst->reason : NULL;
    dst->f.error = src->f.error ? dst->error : NULL;
}

/* ---- paced jobs ---- */

enum job_state { JOB_RUNNING, JOB_DONE, JOB_CANCELLED, JOB_FAILED };

static const char *const state_names[] = {"running", "done", "cancelled", "failed"};

struct waiter {
    struct dr_http_req *req;
    struct waiter *next;
};

struct job {
    struct dr_replay_jobs *rj;
    struct job *next; /* newest first */
    int64_t id;
    enum job_state state;
    struct dr_dlq_filter_buf fb; /* fb.f.max_id fixes the set; fb.f.after_id is the cursor */
    double rate;
    int64_t limit;
    int64_t matched, replayed, skipped, errors;
    int64_t started_ms, finished_ms;
    double due; /* loop time (ms) of the next step */
    char last_error[256];
    int stopped_by_shutdown;
    int busy;               /* a step is on the pool: the fields below are the worker's */
    atomic_int cancel;      /* read by the worker between dead letters */
    struct waiter *waiters; /* cancel requests answered when the step lands */
    uv_work_t work;
    int64_t s_budget, s_cursor, s_replayed, s_skipped, s_errors;
    int s_err, s_exhausted;
    char s_error[256];
};

struct dr_replay_jobs {
    uv_loop_t *loop;
    struct dr_store *st;
    struct dr_local *local;
    uv_timer_t timer;
    struct job *jobs;
    int64_t last_id;
    int stopping;
};

struct dr_replay_jobs *dr__replay_jobs_create(uv_loop_t *loop, struct dr_store *st,
                                              struct dr_local *local)
{
    struct dr_replay_jobs *rj = dr_xcalloc(1, sizeof(*rj));

    rj->loop = loop;
    rj->st = st;
    rj->local = local;
    uv_timer_init(loop, &rj->timer);
    rj->timer.data = rj;
    return rj;
}

static cJSON *filter_json(const struct dr_dlq_filter *f)
{
    cJSON *o = cJSON_CreateObject();
    char ts[32];

    if (f->topic) {
        cJSON_AddStringToObject(o, "topic", f->topic);
    }
    if (f->processor) {
        cJSON_AddStringToObject(o, "processor", f->processor);
    }
    if (f->reason) {
        cJSON_AddStringToObject(o, "reason", f->reason);
    }
    if (f->error) {
        cJSON_AddStringToObject(o, "error", f->error);
    }
    if (f->since_ms > 0) {
        dr_format_time(f->since_ms, ts);
        cJSON_AddStringToObject(o, "since", ts);
    }
    if (f->until_ms > 0) {
        dr_format_time(f->until_ms, ts);
        cJSON_AddStringToObject(o, "until", ts);
    }
    return o;
}

static cJSON *job_json(const struct job *j)
{
    cJSON *o = cJSON_CreateObject();
    char s[64];

    cJSON_AddNumberToObject(o, "id", (double)j->id);
    snprintf(s, sizeof(s), "/admin/dlq/replay/jobs/%lld", (long long)j->id);
    cJSON_AddStringToObject(o, "url", s);
    cJSON_AddStringToObject(o, "state", state_names[j->state]);
    cJSON_AddItemToObject(o, "filter", filter_json(&j->fb.f));
    cJSON_AddNumberToObject(o, "rate", j->rate);
    cJSON_AddNumberToObject(o, "limit", (double)j->limit);
    cJSON_AddNumberToObject(o, "matched", (double)j->matched);
    cJSON_AddNumberToObject(o, "replayed", (double)j->replayed);
    cJSON_AddNumberToObject(o, "skipped", (double)j->skipped);
    cJSON_AddNumberToObject(o, "errors", (double)j->errors);
    dr_format_time(j->started_ms, s);
    cJSON_AddStringToObject(o, "started", s);
    if (j->finished_ms) {
        dr_format_time(j->finished_ms, s);
        cJSON_AddStringToObject(o, "finished", s);
    } else {
        cJSON_AddNullToObject(o, "finished");
    }
    if (j->last_error[0]) {
        cJSON_AddStringToObject(o, "last_error", j->last_error);
    } else {
        cJSON_AddNullToObject(o, "last_error");
    }
    return o;
}

static void respond_job(struct dr_http_req *req, const struct job *j)
{
    dr_http_respond_cjson(req, 200, job_json(j));
}

static struct job *find(const struct dr_replay_jobs *rj, int64_t id)
{
    for (struct job *j = rj->jobs; j; j = j->next) {
        if (j->id == id) {
            return j;
        }
    }
    return NULL;
}

static void job_free(struct job *j)
{
    free(j);
}

/* Drops the oldest finished jobs beyond KEEP_FINISHED (a finished job has no step under way). */
static void forget_old(struct dr_replay_jobs *rj)
{
    struct job **pp = &rj->jobs;
    int kept = 0;

    while (*pp) {
        struct job *j = *pp;
        if (j->state != JOB_RUNNING && ++kept > KEEP_FINISHED) {
            *pp = j->next;
            job_free(j);
            continue;
        }
        pp = &j->next;
    }
}

/* Ends a job that has no step under way and answers those waiting for its cancellation. */
static void finish(struct job *j, enum job_state state)
{
    struct waiter *w;

    j->state = state;
    j->finished_ms = dr_now_ms();
    {
        struct dr_log_field f[] = {
            DR_LOG_INT("job", j->id),
            DR_LOG_STR("state", state_names[state]),
            DR_LOG_INT("matched", j->matched),
            DR_LOG_INT("replayed", j->replayed),
            DR_LOG_INT("skipped", j->skipped),
            DR_LOG_INT("errors", j->errors),
            DR_LOG_INT("shutdown", j->stopped_by_shutdown),
        };
        dr_audit_dlq("dead-letter replay job finished", f, DR_ARRAY_LEN(f));
    }
    while ((w = j->waiters)) {
        j->waiters = w->next;
        respond_job(w->req, j);
        free(w);
    }
}

static void arm(struct dr_replay_jobs *rj);

/* Pool thread: up to s_budget dead letters of the set after the cursor. */
static void step_work(uv_work_t *w)
{
    struct job *j = w->data;
    struct dr_store *st = j->rj->st;
    struct dr_dlq_filter f = j->fb.f;
    struct dr_dead_letter *list = NULL;
    size_t n = 0;

    f.after_id = j->s_cursor;
    f.limit = (size_t)j->s_budget;
    j->s_err = dr_store_dlq_list(st, &f, &list, &n);
    if (j->s_err) {
        snprintf(j->s_error, sizeof(j->s_error), "store: %s", dr_strerror(j->s_err));
        return;
    }
    /* the set only shrinks: a short page is its end */
    j->s_exhausted = n < (size_t)j->s_budget;
    for (size_t i = 0; i < n; i++) {
        char e[256];
        int rc;

        if (atomic_load(&j->cancel)) {
            j->s_exhausted = 0;
            break;
        }
        rc = dr__replay_one(st, &list[i], NULL, e, sizeof(e));
        if (rc == DR_OK) {
            j->s_replayed++;
        } else if (rc == DR_ENOTFOUND) {
            j->s_skipped++;
        } else if (rc == DR_EINVAL) {
            /* this dead letter cannot be replayed as it is: it stays, the job goes on */
            j->s_errors++;
            snprintf(j->s_error, sizeof(j->s_error), "dead letter %lld: %s", (long long)list[i].id,
                     e);
        } else {
            j->s_err = rc;
            snprintf(j->s_error, sizeof(j->s_error), "%s", e);
            break;
        }
        j->s_cursor = list[i].id;
    }
    dr_dead_letters_free(list, n);
}

static void step_done(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct dr_replay_jobs *rj = j->rj;
    int64_t attempts = j->s_replayed + j->s_errors;

    j->busy = 0;
    j->replayed += j->s_replayed;
    j->skipped += j->s_skipped;
    j->errors += j->s_errors;
    j->fb.f.after_id = j->s_cursor;
    if (j->s_error[0]) {
        snprintf(j->last_error, sizeof(j->last_error), "%s", j->s_error);
    }
    if (j->s_replayed && rj->local && !rj->stopping) {
        dr_local_poke(rj->local);
    }
    if (j->s_err || status) {
        if (!j->s_err) {
            snprintf(j->last_error, sizeof(j->last_error), "step not run: %s", uv_strerror(status));
        }
        finish(j, JOB_FAILED);
    } else if (atomic_load(&j->cancel)) {
        finish(j, JOB_CANCELLED);
    } else if (j->s_exhausted || j->replayed + j->skipped + j->errors >= j->matched) {
        /* what the set lost meanwhile (replayed or discarded elsewhere) was skipped too */
        if (j->matched > j->replayed + j->errors) {
            j->skipped = j->matched - j->replayed - j->errors;
        }
        finish(j, JOB_DONE);
    } else {
        double now = (double)uv_now(rj->loop);
        j->due += (double)attempts * 1000.0 / j->rate;
        if (j->due < now - CATCH_UP_MS) {
            j->due = now - CATCH_UP_MS;
        }
    }
    if (j->state != JOB_RUNNING) {
        forget_old(rj);
    }
    arm(rj);
}

static void start_step(struct dr_replay_jobs *rj, struct job *j)
{
    int64_t left = j->matched - (j->replayed + j->skipped + j->errors);
    int64_t budget = (int64_t)(j->rate * STEP_MS / 1000.0);
    int rc;

    budget = budget < 1 ? 1 : budget > STEP_MAX ? STEP_MAX : budget;
    j->s_budget = budget < left || left < 1 ? budget : left;
    j->s_cursor = j->fb.f.after_id;
    j->s_replayed = j->s_skipped = j->s_errors = 0;
    j->s_err = j->s_exhausted = 0;
    j->s_error[0] = '\0';
    j->work.data = j;
    j->busy = 1;
    rc = uv_queue_work(rj->loop, &j->work, step_work, step_done);
    if (rc) {
        j->busy = 0;
        snprintf(j->last_error, sizeof(j->last_error), "cannot schedule work: %s", uv_strerror(rc));
        finish(j, JOB_FAILED);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct dr_replay_jobs *rj = t->data;
    double now = (double)uv_now(rj->loop);

    for (struct job *j = rj->jobs; j && !rj->stopping; j = j->next) {
        if (j->state == JOB_RUNNING && !j->busy && j->due <= now) {
            start_step(rj, j);
        }
    }
    arm(rj);
}

/* Sets the timer for the job due first that is waiting for its next step. */
static void arm(struct dr_replay_jobs *rj)
{
    double first = -1, now = (double)uv_now(rj->loop);

    if (uv_is_closing((uv_handle_t *)&rj->timer)) {
        return;
    }
    for (struct job *j = rj->jobs; j && !rj->stopping; j = j->next) {
        if (j->state == JOB_RUNNING && !j->busy && (first < 0 || j->due < first)) {
            first = j->due;
        }
    }
    if (first < 0) {
        uv_timer_stop(&rj->timer);
        return;
    }
    uv_timer_start(&rj->timer, on_tick, first > now ? (uint64_t)(first - now + 0.999) : 0, 0);
}

int dr__replay_jobs_start(struct dr_replay_jobs *rj, const struct dr_dlq_filter_buf *fb,
                          double rate, int64_t limit, int64_t count, int64_t last_id, cJSON **out)
{
    struct job *j;
    int running = 0;

    *out = NULL;
    if (rj->stopping) {
        return DR_EUNAVAIL;
    }
    for (j = rj->jobs; j; j = j->next) {
        running += j->state == JOB_RUNNING;
    }
    if (running >= MAX_RUNNING) {
        return DR_ETOOBIG;
    }
    j = dr_xcalloc(1, sizeof(*j));
    j->rj = rj;
    /* ids from the clock: a client following a job across a restart gets 404, not another job */
    j->id = rj->last_id + 1 > dr_now_ms() ? rj->last_id + 1 : dr_now_ms();
    rj->last_id = j->id;
    filter_buf_copy(&j->fb, fb);
    j->fb.f.max_id = last_id;
    j->fb.f.after_id = 0;
    j->rate = rate;
    j->limit = limit;
    j->matched = count;
    j->started_ms = dr_now_ms();
    j->due = (double)uv_now(rj->loop);
    atomic_init(&j->cancel, 0);
    j->next = rj->jobs;
    rj->jobs = j;
    {
        struct dr_log_field f[] = {DR_LOG_INT("job", j->id), DR_LOG_INT("matched", count),
                                   DR_LOG_REAL("rate", rate)};
        dr_audit_dlq("dead-letter replay job started", f, DR_ARRAY_LEN(f));
    }
    if (count == 0) {
        finish(j, JOB_DONE);
    }
    *out = job_json(j);
    forget_old(rj);
    arm(rj);
    return DR_OK;
}

cJSON *dr__replay_jobs_list(const struct dr_replay_jobs *rj)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "jobs");
    int n = 0;

    for (const struct job *j = rj->jobs; j; j = j->next) {
        cJSON_AddItemToArray(arr, job_json(j));
        n++;
    }
    cJSON_AddNumberToObject(o, "count", n);
    return o;
}

int dr__replay_jobs_get(const struct dr_replay_jobs *rj, int64_t id, cJSON **out)
{
    const struct job *j = find(rj, id);

    *out = j ? job_json(j) : NULL;
    return j ? DR_OK : DR_ENOTFOUND;
}

void dr__replay_jobs_cancel(struct dr_replay_jobs *rj, int64_t id, struct dr_http_req *req)
{
    struct job *j = find(rj, id);
    struct waiter *w;

    if (!j) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "no replay job %lld", (long long)id);
        return;
    }
    if (j->state != JOB_RUNNING) {
        respond_job(req, j);
        return;
    }
    atomic_store(&j->cancel, 1);
    if (!j->busy) {
        finish(j, JOB_CANCELLED);
        respond_job(req, j);
        forget_old(rj);
        arm(rj);
        return;
    }
    w = dr_xcalloc(1, sizeof(*w));
    w->req = req;
    w->next = j->waiters;
    j->waiters = w;
}

void dr__replay_jobs_stop(struct dr_replay_jobs *rj)
{
    if (!rj || rj->stopping) {
        return;
    }
    rj->stopping = 1;
    for (struct job *j = rj->jobs; j; j = j->next) {
        if (j->state != JOB_RUNNING) {
            continue;
        }
        j->stopped_by_shutdown = 1;
        atomic_store(&j->cancel, 1);
        if (!j->busy) {
            finish(j, JOB_CANCELLED);
        }
    }
    if (!uv_is_closing((uv_handle_t *)&rj->timer)) {
        uv_close((uv_handle_t *)&rj->timer, NULL);
    }
}

void dr__replay_jobs_destroy(struct dr_replay_jobs *rj)
{
    if (!rj) {
        return;
    }
    while (rj->jobs) {
        struct job *j = rj->jobs;
        rj->jobs = j->next;
        job_free(j);
    }
    free(rj);
}
