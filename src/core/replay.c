/* Dead-letter replay: one dead letter, and paced replay jobs kept in the store's replay_jobs
 * table so they are resumed after a restart (see core/replay.h). */
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

#include "core/replay_db.h"

/* A job step replays what is due within this long, at most STEP_MAX dead letters: short work
 * on the pool, however fast the rate. */
#define STEP_MS  20
#define STEP_MAX 200
/* A job that fell behind (a slow store) catches up on at most this much, not in one burst. */
#define CATCH_UP_MS   1000
#define MAX_RUNNING   16
#define KEEP_FINISHED 50
/* A running job's row says every this long that its owner is alive; three times as long without
 * it, another instance takes the job over (DR_REPLAY_HEARTBEAT_MS sets it). */
#define DEFAULT_HEARTBEAT_MS 5000

/* ---- one dead letter ---- */

/* Builds the queue row that replays d; edits from body (data | payload, attributes). data is
 * base64 as the publish API takes it. */
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
        if (pl && cJSON_GetObjectItemCaseSensitive(body, "data")) {
            /* each replaces the message's data: taking either would drop the other unseen */
            snprintf(err, errsz, "payload and data: give one of them, not both");
            goto out;
        }
        if (pl) {
            char *s = dr_json_print(pl);
            q->data = (unsigned char *)s;
            q->data_len = strlen(s);
        } else if (bd) {
            if (dr_base64_data_decode(bd, strlen(bd), &q->data, &n)) {
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
        if (dr_base64_data_decode(data, strlen(data), &q->data, &n)) {
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
    if (rc == DR_EEXIST) {
        snprintf(err, errsz, "a message with id %.128s is queued: replay this one once it has run",
                 d->message_id);
    } else if (rc && rc != DR_ENOTFOUND) {
        snprintf(err, errsz, "store: %s", dr_strerror(rc));
    }
    dr_qmsg_cleanup(&q);
    return rc;
}

/* ---- paced jobs ---- */

/*
 * A job's row in replay_jobs (core/replay_db.c) is the job: the API reads it, and a start-up
 * resumes a running one from its cursor. This instance keeps in memory the jobs it runs (and one
 * that ended while the store could not take its end, until it can), with what a step needs.
 */

struct waiter {
    struct dr_http_req *req;
    struct waiter *next;
};

struct job {
    struct dr_replay_jobs *rj;
    struct job *next;
    struct dr__replay_row r; /* as the API shows it; r.fb.f.after_id is the cursor */
    double due;              /* loop time (ms) of the next step */
    int persisted;           /* an ended job: its end is in the table (then it is forgotten) */
    int busy;                /* a step is on the pool: the fields below are the worker's */
    atomic_int cancel;       /* read by the worker between dead letters */
    struct waiter *waiters;  /* cancel requests answered when the step lands */
    uv_work_t work;
    struct dr__replay_row s_r; /* the row after the step */
    int64_t s_budget, s_replayed, s_errors;
    int s_lost, s_persisted;
};

struct dr_replay_jobs {
    uv_loop_t *loop;
    struct dr_store *st;
    struct dr_local *local;
    char *owner;
    int64_t heartbeat_ms;
    uv_timer_t timer;    /* paces the steps */
    uv_timer_t hb_timer; /* heartbeat, unsaved ends, jobs to take over */
    uv_work_t hb_work;
    int hb_busy, hb_first, hb_beat; /* hb_beat: a job's row needs the heartbeat */
    struct flush *hb_flush;
    struct dr__replay_row *hb_claimed;
    size_t hb_nclaimed;
    struct job *jobs;
    int stopping;
};

static void set_state(struct dr__replay_row *r, const char *state)
{
    snprintf(r->state, sizeof(r->state), "%s", state);
}

/* The job ends failed, with why (why is the end of "%s: %s"), to be saved. */
static void fail_job(struct job *j, const char *what, const char *why)
{
    snprintf(j->r.last_error, sizeof(j->r.last_error), "%s: %s", what, why);
    set_state(&j->r, "failed");
    j->r.finished_ms = dr_now_ms();
    j->persisted = 0;
}

static void row_copy(struct dr__replay_row *dst, const struct dr__replay_row *src)
{
    *dst = *src;
    dr__replay_row_relink(dst);
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

static cJSON *job_json(const struct dr__replay_row *r)
{
    cJSON *o = cJSON_CreateObject();
    char s[64];

    cJSON_AddNumberToObject(o, "id", (double)r->id);
    snprintf(s, sizeof(s), "/admin/dlq/replay/jobs/%lld", (long long)r->id);
    cJSON_AddStringToObject(o, "url", s);
    cJSON_AddStringToObject(o, "state", r->state);
    cJSON_AddItemToObject(o, "filter", filter_json(&r->fb.f));
    cJSON_AddNumberToObject(o, "rate", r->rate);
    cJSON_AddNumberToObject(o, "limit", (double)r->limit);
    cJSON_AddNumberToObject(o, "matched", (double)r->matched);
    cJSON_AddNumberToObject(o, "replayed", (double)r->replayed);
    cJSON_AddNumberToObject(o, "skipped", (double)r->skipped);
    cJSON_AddNumberToObject(o, "errors", (double)r->errors);
    dr_format_time(r->started_ms, s);
    cJSON_AddStringToObject(o, "started", s);
    if (r->finished_ms) {
        dr_format_time(r->finished_ms, s);
        cJSON_AddStringToObject(o, "finished", s);
    } else {
        cJSON_AddNullToObject(o, "finished");
    }
    if (r->last_error[0]) {
        cJSON_AddStringToObject(o, "last_error", r->last_error);
    } else {
        cJSON_AddNullToObject(o, "last_error");
    }
    return o;
}

static void respond_row(struct dr_http_req *req, const struct dr__replay_row *r)
{
    dr_http_respond_cjson(req, 200, job_json(r));
}

static void respond_store_error(struct dr_http_req *req, int err)
{
    dr_http_respond_error(req, 503, "UNAVAILABLE", "store: %s", dr_strerror(err));
}

static struct job *find(const struct dr_replay_jobs *rj, int64_t id)
{
    for (struct job *j = rj->jobs; j; j = j->next) {
        if (j->r.id == id) {
            return j;
        }
    }
    return NULL;
}

/* Forgets j, which has no step under way and no one waiting. */
static void forget(struct dr_replay_jobs *rj, struct job *j)
{
    for (struct job **pp = &rj->jobs; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    }
    free(j);
}

static void answer_waiters(struct job *j, const struct dr__replay_row *r)
{
    struct waiter *w;

    while ((w = j->waiters)) {
        j->waiters = w->next;
        respond_row(w->req, r);
        free(w);
    }
}

static void audit_finished(const struct dr__replay_row *r)
{
    struct dr_log_field f[] = {
        DR_LOG_INT("job", r->id),          DR_LOG_STR("state", r->state),
        DR_LOG_INT("matched", r->matched), DR_LOG_INT("replayed", r->replayed),
        DR_LOG_INT("skipped", r->skipped), DR_LOG_INT("errors", r->errors),
    };
    dr_audit_dlq("dead-letter replay job finished", f, DR_ARRAY_LEN(f));
}

/* A job of this instance ended (j->r says how): those waiting for its cancellation get it, and
 * it is forgotten once the table has its end (else the heartbeat writes it later). */
static void finish(struct dr_replay_jobs *rj, struct job *j)
{
    audit_finished(&j->r);
    answer_waiters(j, &j->r);
    if (j->persisted) {
        forget(rj, j);
    }
}

/* ---- unsaved ends: the rows of ended jobs the table does not have yet ---- */

struct flush {
    struct dr__replay_row *rows;
    int *done;
    size_t n;
};

/* A copy of the unsaved ends for the pool; NULL when there are none. Loop thread. */
static struct flush *flush_take(struct dr_replay_jobs *rj)
{
    struct flush *fl = NULL;
    size_t n = 0;

    for (struct job *j = rj->jobs; j; j = j->next) {
        n += !dr__replay_row_running(&j->r) && !j->persisted;
    }
    if (n == 0) {
        return NULL;
    }
    fl = dr_xcalloc(1, sizeof(*fl));
    fl->rows = dr_xcalloc(n, sizeof(*fl->rows));
    fl->done = dr_xcalloc(n, sizeof(*fl->done));
    for (struct job *j = rj->jobs; j; j = j->next) {
        if (!dr__replay_row_running(&j->r) && !j->persisted) {
            row_copy(&fl->rows[fl->n++], &j->r);
        }
    }
    return fl;
}

/* Pool thread: writes them; one that is not ours any more (cancelled elsewhere) is done too. */
static void flush_work(struct dr_replay_jobs *rj, struct flush *fl)
{
    for (size_t i = 0; fl && i < fl->n; i++) {
        int lost = 0;
        fl->done[i] =
            dr__replay_db_update(rj->st, &fl->rows[i], rj->owner, KEEP_FINISHED, &lost) == DR_OK;
    }
}

/* Loop thread: forgets the jobs whose end was written; frees fl. */
static void flush_done(struct dr_replay_jobs *rj, struct flush *fl)
{
    for (size_t i = 0; fl && i < fl->n; i++) {
        struct job *j = fl->done[i] ? find(rj, fl->rows[i].id) : NULL;
        if (j && !dr__replay_row_running(&j->r) && !j->busy) {
            forget(rj, j);
        }
    }
    if (fl) {
        free(fl->rows);
        free(fl->done);
        free(fl);
    }
}

/* ---- steps ---- */

static void arm(struct dr_replay_jobs *rj);

/*
 * Pool thread: up to s_budget dead letters of the set after the cursor, then the row with the
 * new cursor and counts. A crash between the replays and the row's update leaves the cursor
 * behind them: whoever resumes the job runs those dead letters again, harmlessly, since a dead
 * letter that was replayed is gone (its replay and its removal are one commit): the store lists
 * it no more, or dr__replay_one() answers DR_ENOTFOUND (skipped), so no message is queued twice.
 */
static void step_work(uv_work_t *w)
{
    struct job *j = w->data;
    struct dr_store *st = j->rj->st;
    struct dr__replay_row *r = &j->s_r;
    struct dr_dlq_filter f;
    struct dr_dead_letter *list = NULL;
    size_t n = 0;
    int64_t skipped = 0;
    int err = DR_OK, ours = 1, exhausted = 0;
    char error[256] = "";

    row_copy(r, &j->r);
    if (!atomic_load(&j->cancel)) {
        /* a cancel through another instance (or a takeover) ends the job here */
        err = dr__replay_db_owned(st, r->id, j->rj->owner, &ours);
        if (!err && !ours) {
            j->s_lost = 1;
            (void)dr__replay_db_get(st, r->id, r);
            return;
        }
        if (err) {
            snprintf(error, sizeof(error), "store: %s", dr_strerror(err));
        }
    }
    if (!err && !atomic_load(&j->cancel)) {
        f = r->fb.f;
        f.limit = (size_t)j->s_budget;
        err = dr_store_dlq_list(st, &f, &list, &n);
        if (err) {
            snprintf(error, sizeof(error), "store: %s", dr_strerror(err));
        }
        /* the set only shrinks: a short page is its end */
        exhausted = !err && n < (size_t)j->s_budget;
    }
    for (size_t i = 0; !err && i < n; i++) {
        char e[256];
        int rc;

        if (atomic_load(&j->cancel)) {
            exhausted = 0;
            break;
        }
        rc = dr__replay_one(st, &list[i], NULL, e, sizeof(e));
        if (rc == DR_OK) {
            j->s_replayed++;
        } else if (rc == DR_ENOTFOUND) {
            skipped++;
        } else if (rc == DR_EINVAL || rc == DR_EEXIST) {
            /* this dead letter cannot be replayed as it is, or not now: it stays, the job goes
             * on */
            j->s_errors++;
            snprintf(error, sizeof(error), "dead letter %lld: %s", (long long)list[i].id, e);
        } else {
            err = rc;
            snprintf(error, sizeof(error), "%s", e);
            break;
        }
        r->fb.f.after_id = list[i].id;
    }
    dr_dead_letters_free(list, n);
    r->replayed += j->s_replayed;
    r->skipped += skipped;
    r->errors += j->s_errors;
    if (error[0]) {
        snprintf(r->last_error, sizeof(r->last_error), "%s", error);
    }
    if (err) {
        set_state(r, "failed");
    } else if (atomic_load(&j->cancel)) {
        set_state(r, "cancelled");
    } else if (exhausted || r->replayed + r->skipped + r->errors >= r->matched) {
        /* what the set lost meanwhile (replayed or discarded elsewhere) was skipped too */
        if (r->matched > r->replayed + r->errors) {
            r->skipped = r->matched - r->replayed - r->errors;
        }
        set_state(r, "done");
    }
    if (!dr__replay_row_running(r)) {
        r->finished_ms = dr_now_ms();
    }
    /* not written (the store failed): a running job's next step writes it, an ended one's
     * heartbeat does */
    if (dr__replay_db_update(st, r, j->rj->owner, KEEP_FINISHED, &j->s_lost) == DR_OK) {
        j->s_persisted = !j->s_lost;
        if (j->s_lost) {
            (void)dr__replay_db_get(st, r->id, r);
        }
    }
}

static void step_done(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct dr_replay_jobs *rj = j->rj;
    int64_t attempts = j->s_replayed + j->s_errors;

    j->busy = 0;
    if (j->s_replayed && rj->local && !rj->stopping) {
        dr_local_poke(rj->local);
    }
    if (j->s_lost) {
        /* cancelled through another instance, or taken over: the table has the job */
        struct dr_log_field f[] = {DR_LOG_INT("job", j->r.id), DR_LOG_STR("state", j->s_r.state)};
        dr_log_fields(DR_LOG_INFO, "replay", "replay job ended elsewhere", f, DR_ARRAY_LEN(f));
        answer_waiters(j, &j->s_r);
        forget(rj, j);
        arm(rj);
        return;
    }
    row_copy(&j->r, &j->s_r);
    j->persisted = j->s_persisted;
    if (status && dr__replay_row_running(&j->r)) {
        fail_job(j, "step not run", uv_strerror(status));
    }
    if (!dr__replay_row_running(&j->r)) {
        finish(rj, j);
    } else {
        double now = (double)uv_now(rj->loop);
        j->due += (double)attempts * 1000.0 / j->r.rate;
        if (j->due < now - CATCH_UP_MS) {
            j->due = now - CATCH_UP_MS;
        }
    }
    arm(rj);
}

static void start_step(struct dr_replay_jobs *rj, struct job *j)
{
    int64_t left = j->r.matched - (j->r.replayed + j->r.skipped + j->r.errors);
    int64_t budget = (int64_t)(j->r.rate * STEP_MS / 1000.0);
    int rc;

    budget = budget < 1 ? 1 : budget > STEP_MAX ? STEP_MAX : budget;
    j->s_budget = budget < left || left < 1 ? budget : left;
    j->s_replayed = j->s_errors = 0;
    j->s_lost = j->s_persisted = 0;
    j->work.data = j;
    j->busy = 1;
    rc = uv_queue_work(rj->loop, &j->work, step_work, step_done);
    if (rc) {
        j->busy = 0;
        fail_job(j, "cannot schedule work", uv_strerror(rc));
        finish(rj, j);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct dr_replay_jobs *rj = t->data;
    double now = (double)uv_now(rj->loop);

    for (struct job *j = rj->jobs, *next; j && !rj->stopping; j = next) {
        next = j->next; /* start_step may forget j */
        if (dr__replay_row_running(&j->r) && !j->busy && j->due <= now) {
            start_step(rj, j);
        }
    }
    arm(rj);
}

/* Sets the timer for the job due first that is waiting for its next step. */
static void arm(struct dr_replay_jobs *rj)
{
    double first = -1, now = (double)uv_now(rj->loop);

    if (rj->stopping || uv_is_closing((uv_handle_t *)&rj->timer)) {
        return;
    }
    for (struct job *j = rj->jobs; j; j = j->next) {
        if (dr__replay_row_running(&j->r) && !j->busy && (first < 0 || j->due < first)) {
            first = j->due;
        }
    }
    if (first < 0) {
        uv_timer_stop(&rj->timer);
        return;
    }
    uv_timer_start(&rj->timer, on_tick, first > now ? (uint64_t)(first - now + 0.999) : 0, 0);
}

/* A job of this instance from its row; it is due at once. */
static struct job *adopt(struct dr_replay_jobs *rj, const struct dr__replay_row *r)
{
    struct job *j = dr_xcalloc(1, sizeof(*j));

    j->rj = rj;
    row_copy(&j->r, r);
    j->due = (double)uv_now(rj->loop);
    atomic_init(&j->cancel, 0);
    j->next = rj->jobs;
    rj->jobs = j;
    return j;
}

/* ---- heartbeat: this instance's rows stay fresh, ends are saved, stale jobs are taken ---- */

static void hb_work(uv_work_t *w)
{
    struct dr_replay_jobs *rj = w->data;
    int64_t now = dr_now_ms();
    int err = rj->hb_beat ? dr__replay_db_heartbeat(rj->st, rj->owner, now) : DR_OK;

    if (err) {
        DR_WARN("replay", "replay job heartbeat not written", "error=\"%s\"", dr_strerror(err));
    }
    flush_work(rj, rj->hb_flush);
    rj->hb_claimed = NULL;
    rj->hb_nclaimed = 0;
    if (rj->local) {
        /* at start-up the jobs of this instance's previous run too: nobody runs them now */
        err = dr__replay_db_claim(rj->st, rj->owner, rj->hb_first, now, rj->heartbeat_ms * 3,
                                  MAX_RUNNING, &rj->hb_claimed, &rj->hb_nclaimed);
        if (err) {
            DR_WARN("replay", "replay jobs to resume not read", "error=\"%s\"", dr_strerror(err));
        }
    }
}

static void hb_done(uv_work_t *w, int status)
{
    struct dr_replay_jobs *rj = w->data;

    (void)status;
    rj->hb_busy = 0;
    rj->hb_first = 0;
    flush_done(rj, rj->hb_flush);
    rj->hb_flush = NULL;
    for (size_t i = 0; i < rj->hb_nclaimed; i++) {
        const struct dr__replay_row *r = &rj->hb_claimed[i];
        if (find(rj, r->id)) {
            continue; /* ours already */
        }
        adopt(rj, r);
        {
            struct dr_log_field f[] = {DR_LOG_INT("job", r->id), DR_LOG_INT("matched", r->matched),
                                       DR_LOG_INT("cursor", r->fb.f.after_id)};
            dr_audit_dlq("dead-letter replay job resumed", f, DR_ARRAY_LEN(f));
        }
    }
    free(rj->hb_claimed);
    rj->hb_claimed = NULL;
    rj->hb_nclaimed = 0;
    arm(rj);
}

static void on_heartbeat(uv_timer_t *t)
{
    struct dr_replay_jobs *rj = t->data;

    if (rj->hb_busy || rj->stopping) {
        return;
    }
    rj->hb_flush = flush_take(rj);
    rj->hb_beat = rj->jobs != NULL; /* an idle instance does not write */
    rj->hb_work.data = rj;
    if (uv_queue_work(rj->loop, &rj->hb_work, hb_work, hb_done) == 0) {
        rj->hb_busy = 1;
    } else {
        flush_done(rj, rj->hb_flush);
        rj->hb_flush = NULL;
    }
}

struct dr_replay_jobs *dr__replay_jobs_create(uv_loop_t *loop, struct dr_store *st,
                                              struct dr_local *local, const char *owner)
{
    struct dr_replay_jobs *rj = dr_xcalloc(1, sizeof(*rj));
    const char *hb = getenv("DR_REPLAY_HEARTBEAT_MS");

    rj->loop = loop;
    rj->st = st;
    rj->local = local;
    rj->owner = dr_xstrdup(owner);
    rj->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
    if (hb && (dr_parse_i64(hb, &rj->heartbeat_ms) != 0 || rj->heartbeat_ms < 50)) {
        rj->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
    }
    rj->hb_first = 1;
    uv_timer_init(loop, &rj->timer);
    rj->timer.data = rj;
    uv_timer_init(loop, &rj->hb_timer);
    rj->hb_timer.data = rj;
    /* at once: jobs left running by a previous run resume as soon as the loop runs */
    uv_timer_start(&rj->hb_timer, on_heartbeat, 0, (uint64_t)rj->heartbeat_ms);
    return rj;
}

/* ---- the API ---- */

struct start {
    struct dr_replay_jobs *rj;
    struct dr__replay_row r;
    struct flush *fl;
    int err;
};

static void start_work(void *arg)
{
    struct start *s = arg;

    /* ends not saved yet first: a job that ended holds no slot */
    flush_work(s->rj, s->fl);
    s->err = dr__replay_db_insert(s->rj->st, &s->r, s->rj->owner, MAX_RUNNING, KEEP_FINISHED);
}

static void start_done(struct dr_http_req *req, void *arg)
{
    struct start *s = arg;
    struct dr_replay_jobs *rj = s->rj;
    cJSON *o;

    flush_done(rj, s->fl);
    if (s->err == DR_ETOOBIG) {
        dr_http_respond_error(req, 429, "RESOURCE_EXHAUSTED",
                              "too many replay jobs are running: cancel one or wait for one");
    } else if (s->err) {
        respond_store_error(req, s->err);
    } else {
        struct dr_log_field f[] = {DR_LOG_INT("job", s->r.id), DR_LOG_INT("matched", s->r.matched),
                                   DR_LOG_REAL("rate", s->r.rate)};
        dr_audit_dlq("dead-letter replay job started", f, DR_ARRAY_LEN(f));
        if (dr__replay_row_running(&s->r)) {
            adopt(rj, &s->r);
        } else {
            audit_finished(&s->r);
        }
        o = job_json(&s->r);
        dr_http_add_header(req, "Location", dr_json_str(o, "url"));
        dr_http_respond_cjson(req, 202, o);
        arm(rj);
    }
    free(s);
}

void dr__replay_jobs_start(struct dr_replay_jobs *rj, const struct dr_dlq_filter_buf *fb,
                           double rate, int64_t limit, int64_t count, int64_t last_id,
                           struct dr_http_req *req)
{
    struct start *s;

    if (rj->stopping) {
        dr_http_respond_error(req, 503, "UNAVAILABLE", "shutting down");
        return;
    }
    s = dr_xcalloc(1, sizeof(*s));
    s->rj = rj;
    s->r.fb = *fb;
    dr__replay_row_relink(&s->r);
    s->r.fb.f.max_id = last_id;
    s->r.fb.f.after_id = 0;
    s->r.fb.f.limit = 0;
    s->r.rate = rate;
    s->r.limit = limit;
    s->r.matched = count;
    s->r.started_ms = dr_now_ms();
    set_state(&s->r, "running");
    if (count == 0) {
        set_state(&s->r, "done");
        s->r.finished_ms = s->r.started_ms;
    }
    s->fl = flush_take(rj);
    if (dr_http_defer(req, start_work, start_done, s) != 0) {
        flush_done(rj, s->fl);
        free(s);
        dr_http_respond_error(req, 503, "UNAVAILABLE", "cannot schedule work");
    }
}

/* A read of the table for GET, or a cancel through it. */
struct query {
    struct dr_replay_jobs *rj;
    int64_t id;
    int cancel, ended, err;
    struct dr__replay_row r;
    struct dr__replay_row *rows;
    size_t n;
};

static void query_work(void *arg)
{
    struct query *q = arg;

    if (q->cancel) {
        q->err =
            dr__replay_db_cancel(q->rj->st, q->id, dr_now_ms(), KEEP_FINISHED, &q->r, &q->ended);
    } else if (q->id) {
        q->err = dr__replay_db_get(q->rj->st, q->id, &q->r);
    } else {
        q->err = dr__replay_db_list(q->rj->st, &q->rows, &q->n);
    }
}

/* The row to show of job r: this instance's own when it ended and the table lacks that yet. */
static const struct dr__replay_row *shown(const struct dr_replay_jobs *rj,
                                          const struct dr__replay_row *r)
{
    const struct job *j = find(rj, r->id);

    return j && !dr__replay_row_running(&j->r) ? &j->r : r;
}

static void query_done(struct dr_http_req *req, void *arg)
{
    struct query *q = arg;

    if (q->err == DR_ENOTFOUND) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "no replay job %lld", (long long)q->id);
    } else if (q->err) {
        respond_store_error(req, q->err);
    } else if (q->id) {
        if (q->ended) {
            audit_finished(&q->r);
        }
        respond_row(req, q->cancel ? &q->r : shown(q->rj, &q->r));
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(o, "jobs");
        for (size_t i = 0; i < q->n; i++) {
            cJSON_AddItemToArray(arr, job_json(shown(q->rj, &q->rows[i])));
        }
        cJSON_AddNumberToObject(o, "count", (double)q->n);
        dr_http_respond_cjson(req, 200, o);
    }
    free(q->rows);
    free(q);
}

static void query(struct dr_replay_jobs *rj, int64_t id, int cancel, struct dr_http_req *req)
{
    struct query *q = dr_xcalloc(1, sizeof(*q));

    q->rj = rj;
    q->id = id;
    q->cancel = cancel;
    if (dr_http_defer(req, query_work, query_done, q) != 0) {
        free(q);
        dr_http_respond_error(req, 503, "UNAVAILABLE", "cannot schedule work");
    }
}

void dr__replay_jobs_list(struct dr_replay_jobs *rj, struct dr_http_req *req)
{
    query(rj, 0, 0, req);
}

void dr__replay_jobs_get(struct dr_replay_jobs *rj, int64_t id, struct dr_http_req *req)
{
    const struct job *j = find(rj, id);

    if (j && !dr__replay_row_running(&j->r)) {
        respond_row(req, &j->r);
        return;
    }
    query(rj, id, 0, req);
}

void dr__replay_jobs_cancel(struct dr_replay_jobs *rj, int64_t id, struct dr_http_req *req)
{
    struct job *j = find(rj, id);
    struct waiter *w;

    if (j && !dr__replay_row_running(&j->r)) {
        respond_row(req, &j->r);
        return;
    }
    if (!j || rj->stopping) {
        /* another instance's job, or nobody's: the table ends it, its owner sees that at its
         * next step */
        query(rj, id, 1, req);
        return;
    }
    /* a step (now, if none is under way) ends it and writes the end, then req is answered */
    atomic_store(&j->cancel, 1);
    w = dr_xcalloc(1, sizeof(*w));
    w->req = req;
    w->next = j->waiters;
    j->waiters = w;
    if (!j->busy) {
        start_step(rj, j);
    }
}

void dr__replay_jobs_stop(struct dr_replay_jobs *rj)
{
    if (!rj || rj->stopping) {
        return;
    }
    rj->stopping = 1;
    if (!uv_is_closing((uv_handle_t *)&rj->timer)) {
        uv_close((uv_handle_t *)&rj->timer, NULL);
    }
    if (!uv_is_closing((uv_handle_t *)&rj->hb_timer)) {
        uv_close((uv_handle_t *)&rj->hb_timer, NULL);
    }
}

void dr__replay_jobs_destroy(struct dr_replay_jobs *rj)
{
    struct flush *fl;
    int err;

    if (!rj) {
        return;
    }
    /* ends not saved yet, then the running jobs go to whoever starts next, at once */
    fl = flush_take(rj);
    flush_work(rj, fl);
    flush_done(rj, fl);
    err = dr__replay_db_heartbeat(rj->st, rj->owner, 0);
    if (err) {
        DR_WARN("replay", "replay jobs not released", "error=\"%s\"", dr_strerror(err));
    }
    while (rj->jobs) {
        struct job *j = rj->jobs;
        rj->jobs = j->next;
        free(j);
    }
    free(rj->owner);
    free(rj);
}
