#include "dr/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dr/apikey.h"
#include "dr/audit.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/push.h"
#include "dr/util.h"

#include "core/replay.h"

/* GET /admin/dlq: the most dead letters on one page */
#define LIST_MAX 1000

struct dr_admin {
    const struct dr_config *cfg;
    struct dr_store *store;
    struct dr_router *router;
    struct dr_local *local;
    struct dr_replay_jobs *jobs;
    int stopping;
};

struct dr_admin *dr_admin_create(uv_loop_t *loop, const struct dr_config *cfg,
                                 struct dr_store *store, struct dr_router *router,
                                 struct dr_local *local)
{
    struct dr_admin *a = dr_xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->store = store;
    a->router = router;
    a->local = local;
    {
        /* replay jobs are owned as the local queue's rows are */
        char owner[512];
        dr_instance_name(cfg->port, owner, sizeof(owner));
        a->jobs = dr__replay_jobs_create(loop, store, local, owner);
    }
    return a;
}

void dr_admin_stop(struct dr_admin *a)
{
    if (!a || a->stopping) {
        return;
    }
    a->stopping = 1;
    dr__replay_jobs_stop(a->jobs);
}

void dr_admin_destroy(struct dr_admin *a)
{
    if (!a) {
        return;
    }
    dr__replay_jobs_destroy(a->jobs);
    free(a);
}

cJSON *dr_dead_letter_to_json(const struct dr_dead_letter *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *msg = d->message_json ? cJSON_Parse(d->message_json) : NULL;
    char ts[32];

    cJSON_AddNumberToObject(o, "id", (double)d->id);
    cJSON_AddStringToObject(o, "message_id", d->message_id ? d->message_id : "");
    cJSON_AddStringToObject(o, "topic", d->topic ? d->topic : "");
    if (d->processor) {
        cJSON_AddStringToObject(o, "processor", d->processor);
    } else {
        cJSON_AddNullToObject(o, "processor");
    }
    cJSON_AddStringToObject(o, "reason", d->reason ? d->reason : "");
    cJSON_AddStringToObject(o, "error", d->error ? d->error : "");
    cJSON_AddNumberToObject(o, "attempts", d->attempts);
    dr_format_time(d->first_failure_ms, ts);
    cJSON_AddStringToObject(o, "first_failure", ts);
    dr_format_time(d->last_failure_ms, ts);
    cJSON_AddStringToObject(o, "last_failure", ts);
    dr_format_time(d->created_ms, ts);
    cJSON_AddStringToObject(o, "created", ts);
    cJSON_AddItemToObject(o, "message", msg ? msg : cJSON_CreateNull());
    return o;
}

/* ---- filters from the query string ---- */

static int parse_time_param(const char *v, int64_t *out)
{
    if (dr_parse_time(v, out) == 0) {
        return 0;
    }
    return dr_parse_i64(v, out);
}

/* DR_OK with the value in out, DR_ENOTFOUND when absent, DR_EINVAL (err set) when the value does
 * not fit: dropping it would drop its filter and match everything. */
static int query_value(struct dr_http_req *req, const char *name, char *out, size_t outsz,
                       char *err, size_t errsz)
{
    int rc = dr_http_query_param(req, name, out, outsz);

    if (rc == DR_ETOOBIG) {
        snprintf(err, errsz, "%s: value too long (at most %zu bytes)", name, outsz - 1);
        return DR_EINVAL;
    }
    if (rc == DR_EINVAL) {
        snprintf(err, errsz, "%s: must not hold %%00", name);
        return DR_EINVAL;
    }
    return rc == DR_OK ? DR_OK : DR_ENOTFOUND;
}

static int filter_from_query(struct dr_http_req *req, struct dr_dlq_filter_buf *fb, char *err,
                             size_t errsz)
{
    char v[64];
    int64_t limit = 0; /* 0: the store's default */
    int rc;

    memset(fb, 0, sizeof(*fb));
    if ((rc = query_value(req, "topic", fb->topic, sizeof(fb->topic), err, errsz)) == DR_OK) {
        fb->f.topic = fb->topic;
    } else if (rc == DR_EINVAL) {
        return rc;
    }
    if ((rc = query_value(req, "processor", fb->processor, sizeof(fb->processor), err, errsz)) ==
        DR_OK) {
        fb->f.processor = fb->processor;
    } else if (rc == DR_EINVAL) {
        return rc;
    }
    if ((rc = query_value(req, "reason", fb->reason, sizeof(fb->reason), err, errsz)) == DR_OK) {
        fb->f.reason = fb->reason;
    } else if (rc == DR_EINVAL) {
        return rc;
    }
    if ((rc = query_value(req, "error", fb->error, sizeof(fb->error), err, errsz)) == DR_OK) {
        fb->f.error = fb->error;
    } else if (rc == DR_EINVAL) {
        return rc;
    }
    if ((rc = query_value(req, "since", v, sizeof(v), err, errsz)) == DR_EINVAL ||
        (rc == DR_OK && parse_time_param(v, &fb->f.since_ms))) {
        if (rc == DR_OK) {
            snprintf(err, errsz, "since: expected RFC 3339 time or epoch ms");
        }
        return DR_EINVAL;
    }
    if ((rc = query_value(req, "until", v, sizeof(v), err, errsz)) == DR_EINVAL ||
        (rc == DR_OK && parse_time_param(v, &fb->f.until_ms))) {
        if (rc == DR_OK) {
            snprintf(err, errsz, "until: expected RFC 3339 time or epoch ms");
        }
        return DR_EINVAL;
    }
    if (dr_http_query_int(req, "after", 0, INT64_MAX, &fb->f.after_id, err, errsz) == DR_EINVAL ||
        dr_http_query_int(req, "limit", 1, LIST_MAX, &limit, err, errsz) == DR_EINVAL) {
        return DR_EINVAL;
    }
    fb->f.limit = (size_t)limit;
    return DR_OK;
}

/* The first key of obj not in allowed (NULL-terminated), or NULL. A misspelt filter or option
 * must not be dropped: a replay would then take every dead letter, or not be a dry run. */
static const char *unknown_key(const cJSON *obj, const char *const *allowed)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, obj)
    {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], e->string) != 0) {
            i++;
        }
        if (!allowed[i]) {
            return e->string;
        }
    }
    return NULL;
}

static int filter_from_json(const cJSON *j, struct dr_dlq_filter_buf *fb, char *err, size_t errsz)
{
    static const char *const keys[] = {"topic", "processor", "reason", "error",
                                       "since", "until",     NULL};
    const size_t room[] = {
        sizeof(fb->topic), sizeof(fb->processor), sizeof(fb->reason), sizeof(fb->error), 64, 64};
    const char *s;
    memset(fb, 0, sizeof(*fb));
    if (!j || cJSON_IsNull(j)) {
        return DR_OK;
    }
    if (!cJSON_IsObject(j)) {
        snprintf(err, errsz, "filter: expected an object");
        return DR_EINVAL;
    }
    if ((s = unknown_key(j, keys))) {
        snprintf(err, errsz,
                 "filter.%.64s: unknown (topic, processor, reason, error, since, until)", s);
        return DR_EINVAL;
    }
    for (size_t i = 0; keys[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (v && !cJSON_IsNull(v) && !cJSON_IsString(v)) {
            snprintf(err, errsz, "filter.%s: expected a string", keys[i]);
            return DR_EINVAL;
        }
        if (v && cJSON_IsString(v) && strlen(v->valuestring) >= room[i]) {
            snprintf(err, errsz, "filter.%s: value too long (at most %zu bytes)", keys[i],
                     room[i] - 1);
            return DR_EINVAL;
        }
    }
    if ((s = dr_json_str(j, "topic"))) {
        snprintf(fb->topic, sizeof(fb->topic), "%s", s);
        fb->f.topic = fb->topic;
    }
    if ((s = dr_json_str(j, "processor"))) {
        snprintf(fb->processor, sizeof(fb->processor), "%s", s);
        fb->f.processor = fb->processor;
    }
    if ((s = dr_json_str(j, "reason"))) {
        snprintf(fb->reason, sizeof(fb->reason), "%s", s);
        fb->f.reason = fb->reason;
    }
    if ((s = dr_json_str(j, "error"))) {
        snprintf(fb->error, sizeof(fb->error), "%s", s);
        fb->f.error = fb->error;
    }
    if ((s = dr_json_str(j, "since")) && parse_time_param(s, &fb->f.since_ms)) {
        snprintf(err, errsz, "filter.since: expected RFC 3339 time");
        return DR_EINVAL;
    }
    if ((s = dr_json_str(j, "until")) && parse_time_param(s, &fb->f.until_ms)) {
        snprintf(err, errsz, "filter.until: expected RFC 3339 time");
        return DR_EINVAL;
    }
    return DR_OK;
}

/* ---- deferred store work ---- */

struct job {
    struct dr_admin *a;
    int kind;
    int64_t id;
    struct dr_dlq_filter_buf fb;
    cJSON *body;
    int dry_run;
    double rate;
    int64_t max;
    /* results */
    int64_t count, last_id; /* J_START: the set the job works through */
    int err;
    char errmsg[256];
    cJSON *out;
    int status;
    int poke;
};

static int64_t id_from_path(const char *path, const char *prefix, const char **rest)
{
    int64_t id = 0;
    const char *p = path + strlen(prefix);
    char buf[32];
    size_t n = strcspn(p, "/");

    if (n == 0 || n >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (dr_parse_int(buf, 1, INT64_MAX, &id)) {
        return -1;
    }
    *rest = p + n;
    return id;
}

enum { J_LIST, J_GET, J_DELETE, J_REPLAY, J_BULK, J_START };

static void job_work(void *arg)
{
    struct job *j = arg;
    struct dr_admin *a = j->a;
    struct dr_dead_letter d, *list = NULL;
    size_t n = 0;

    memset(&d, 0, sizeof(d));
    j->status = 200;
    switch (j->kind) {
    case J_LIST: {
        cJSON *arr;
        j->err = dr_store_dlq_list(a->store, &j->fb.f, &list, &n);
        if (j->err) {
            break;
        }
        j->out = cJSON_CreateObject();
        arr = cJSON_AddArrayToObject(j->out, "dead_letters");
        for (size_t i = 0; i < n; i++) {
            cJSON_AddItemToArray(arr, dr_dead_letter_to_json(&list[i]));
        }
        cJSON_AddNumberToObject(j->out, "count", (double)n);
        if (n && n == (j->fb.f.limit ? j->fb.f.limit : 100)) {
            cJSON_AddNumberToObject(j->out, "next_after", (double)list[n - 1].id);
        }
        dr_dead_letters_free(list, n);
        break;
    }
    case J_GET:
        j->err = dr_store_dlq_get(a->store, j->id, &d);
        if (!j->err) {
            j->out = dr_dead_letter_to_json(&d);
        }
        break;
    case J_DELETE:
        j->err = dr_store_dlq_delete(a->store, j->id);
        if (!j->err) {
            j->out = cJSON_CreateObject();
            cJSON_AddNumberToObject(j->out, "deleted", (double)j->id);
            dr_audit_dlq("dead letter discarded", &DR_LOG_INT("id", j->id), 1);
        }
        break;
    case J_REPLAY:
        j->err = dr_store_dlq_get(a->store, j->id, &d);
        if (!j->err && !a->local) {
            snprintf(j->errmsg, sizeof(j->errmsg), "replay needs the local queue (local mode)");
            j->err = DR_EUNSUPPORTED;
        }
        if (!j->err) {
            j->err = dr__replay_one(a->store, &d, j->body, j->errmsg, sizeof(j->errmsg));
        }
        if (!j->err) {
            j->out = cJSON_CreateObject();
            cJSON_AddNumberToObject(j->out, "replayed", (double)j->id);
            cJSON_AddStringToObject(j->out, "message_id", d.message_id);
            j->poke = 1;
            struct dr_log_field f[] = {DR_LOG_INT("id", j->id),
                                       DR_LOG_STR("message_id", d.message_id),
                                       DR_LOG_INT("edited", j->body != NULL)};
            dr_audit_dlq("dead letter replayed", f, DR_ARRAY_LEN(f));
        }
        break;
    case J_BULK: {
        int64_t matched = 0, taken = 0, replayed = 0, skipped = 0, failed = 0, last_id = 0;
        cJSON *ids;
        /* the set is fixed now: a replayed message that fails again is not taken twice */
        j->err = dr_store_dlq_count_matching(a->store, &j->fb.f, j->max, &matched, &last_id);
        if (j->err) {
            break;
        }
        ids = cJSON_CreateArray();
        j->fb.f.max_id = last_id;
        j->fb.f.limit = 500;
        while (taken < matched) {
            j->err = dr_store_dlq_list(a->store, &j->fb.f, &list, &n);
            if (j->err || n == 0) {
                break;
            }
            for (size_t i = 0; i < n && taken < matched; i++) {
                char e[256];
                int rc;
                taken++;
                j->fb.f.after_id = list[i].id;
                if (j->dry_run) {
                    cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)list[i].id));
                    continue;
                }
                rc = dr__replay_one(a->store, &list[i], NULL, e, sizeof(e));
                if (rc == DR_OK) {
                    replayed++;
                    cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)list[i].id));
                } else if (rc == DR_ENOTFOUND) {
                    skipped++; /* replayed or discarded meanwhile */
                } else {
                    failed++;
                }
            }
            int more = n == 500;
            dr_dead_letters_free(list, n);
            list = NULL;
            if (!more) {
                break;
            }
        }
        j->out = cJSON_CreateObject();
        cJSON_AddBoolToObject(j->out, "dry_run", j->dry_run);
        cJSON_AddNumberToObject(j->out, "matched", (double)matched);
        cJSON_AddNumberToObject(j->out, "replayed", (double)replayed);
        cJSON_AddNumberToObject(j->out, "skipped", (double)skipped);
        cJSON_AddNumberToObject(j->out, "failed", (double)failed);
        cJSON_AddItemToObject(j->out, "ids", ids);
        j->poke = replayed > 0;
        {
            struct dr_log_field f[] = {
                DR_LOG_INT("matched", matched),    DR_LOG_INT("replayed", replayed),
                DR_LOG_INT("skipped", skipped),    DR_LOG_INT("failed", failed),
                DR_LOG_INT("dry_run", j->dry_run),
            };
            dr_audit_dlq("dead letters replayed by filter", f, DR_ARRAY_LEN(f));
        }
        break;
    }
    case J_START:
        /* what the job will work through; its steps run later, paced by the loop */
        j->err = dr_store_dlq_count_matching(a->store, &j->fb.f, j->max, &j->count, &j->last_id);
        break;
    }
    dr_dead_letter_cleanup(&d);
}

static void job_done(struct dr_http_req *req, void *arg)
{
    struct job *j = arg;

    if (j->poke && j->a->local && !j->a->stopping) {
        dr_local_poke(j->a->local);
    }
    if (j->kind == J_START && !j->err) {
        /* the set is counted: the job's row is written, then the request answered */
        dr__replay_jobs_start(j->a->jobs, &j->fb, j->rate, j->max, j->count, j->last_id, req);
    } else if (j->err == DR_ENOTFOUND) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "no dead letter %lld", (long long)j->id);
    } else if (j->err == DR_EINVAL) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "%s", j->errmsg);
    } else if (j->err == DR_EUNSUPPORTED || j->err == DR_EEXIST) {
        dr_http_respond_error(req, 409, "FAILED_PRECONDITION", "%s", j->errmsg);
    } else if (j->err) {
        dr_http_respond_error(req, 503, "UNAVAILABLE", "store: %s", dr_strerror(j->err));
    } else {
        dr_http_respond_cjson(req, 200, j->out);
        j->out = NULL;
    }
    cJSON_Delete(j->out);
    cJSON_Delete(j->body);
    free(j);
}

static void run_job(struct dr_http_req *req, struct job *j)
{
    if (dr_http_defer(req, job_work, job_done, j) != 0) {
        cJSON_Delete(j->body);
        free(j);
        dr_http_respond_error(req, 503, "UNAVAILABLE", "cannot schedule work");
    }
}

/* ---- handlers ---- */

static void on_routes(struct dr_http_req *req, void *ctx)
{
    struct dr_admin *a = ctx;
    char *s;
    if (!dr_apikey_authorize(a->cfg, req, "admin")) {
        return;
    }
    s = dr_router_routes_json(a->router);
    dr_http_respond_json(req, 200, s);
    free(s);
}

static void on_breakers(struct dr_http_req *req, void *ctx)
{
    struct dr_admin *a = ctx;
    char *s;
    if (!dr_apikey_authorize(a->cfg, req, "admin")) {
        return;
    }
    s = dr_router_breakers_json(a->router);
    dr_http_respond_json(req, 200, s);
    free(s);
}

/* POST /admin/dlq/replay: {filter, dry_run, rate, limit} into j (J_BULK, or J_START for a paced
 * replay); DR_EINVAL with j->errmsg set. */
static int bulk_from_json(const cJSON *b, struct job *j)
{
    static const char *const keys[] = {"filter", "dry_run", "rate", "limit", NULL};
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, "dry_run");
    const char *bad = unknown_key(b, keys);

    if (bad) {
        snprintf(j->errmsg, sizeof(j->errmsg), "%.64s: unknown (filter, dry_run, rate, limit)",
                 bad);
        return DR_EINVAL;
    }

    if (v && !cJSON_IsBool(v)) {
        snprintf(j->errmsg, sizeof(j->errmsg), "dry_run: expected true or false");
        return DR_EINVAL;
    }
    j->dry_run = cJSON_IsTrue(v);
    v = cJSON_GetObjectItemCaseSensitive(b, "rate");
    if (v && (!cJSON_IsNumber(v) || !(v->valuedouble >= DR_REPLAY_RATE_MIN) ||
              v->valuedouble > DR_REPLAY_RATE_MAX)) {
        snprintf(j->errmsg, sizeof(j->errmsg),
                 "rate: messages per second, from %g to %g (leave it out to replay at full "
                 "speed)",
                 DR_REPLAY_RATE_MIN, DR_REPLAY_RATE_MAX);
        return DR_EINVAL;
    }
    j->rate = v ? v->valuedouble : 0;
    j->max = DR_REPLAY_MAX;
    v = cJSON_GetObjectItemCaseSensitive(b, "limit");
    if (v) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > DR_REPLAY_MAX ||
            v->valuedouble != (double)(int64_t)v->valuedouble) {
            snprintf(j->errmsg, sizeof(j->errmsg), "limit: expected a whole number from 1 to %d",
                     DR_REPLAY_MAX);
            return DR_EINVAL;
        }
        j->max = (int64_t)v->valuedouble;
    }
    if (filter_from_json(cJSON_GetObjectItemCaseSensitive(b, "filter"), &j->fb, j->errmsg,
                         sizeof(j->errmsg))) {
        return DR_EINVAL;
    }
    /* a dry run replays nothing, so there is nothing to pace: it answers at once */
    j->kind = j->rate > 0 && !j->dry_run ? J_START : J_BULK;
    return DR_OK;
}

/* /admin/dlq/replay/jobs[/{id}[/cancel]]: answered from the replay_jobs table (core/replay.c). */
static void on_replay_jobs(struct dr_admin *a, struct dr_http_req *req, const char *path,
                           const char *method)
{
    const char *rest = "";
    int64_t id;

    if (strcmp(path, "/admin/dlq/replay/jobs") == 0 ||
        strcmp(path, "/admin/dlq/replay/jobs/") == 0) {
        if (strcmp(method, "GET") != 0) {
            dr_http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "use GET");
            return;
        }
        dr__replay_jobs_list(a->jobs, req);
        return;
    }
    id = strncmp(path, "/admin/dlq/replay/jobs/", 23) == 0
             ? id_from_path(path, "/admin/dlq/replay/jobs/", &rest)
             : -1;
    if (id < 0 || (strcmp(rest, "") != 0 && strcmp(rest, "/cancel") != 0)) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "no such resource: %s", path);
        return;
    }
    if (strcmp(rest, "") == 0 && strcmp(method, "GET") == 0) {
        dr__replay_jobs_get(a->jobs, id, req);
    } else if ((strcmp(rest, "") == 0 && strcmp(method, "DELETE") == 0) ||
               (strcmp(rest, "/cancel") == 0 && strcmp(method, "POST") == 0)) {
        dr_audit_dlq("dead-letter replay job cancel", &DR_LOG_INT("job", id), 1);
        dr__replay_jobs_cancel(a->jobs, id, req);
    } else {
        dr_http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "%s not allowed on %s", method, path);
    }
}

static void on_dlq(struct dr_http_req *req, void *ctx)
{
    struct dr_admin *a = ctx;
    const char *path = dr_http_path(req), *method = dr_http_method(req), *rest = "";
    struct job *j;
    size_t blen;
    const char *body;

    if (!dr_apikey_authorize(a->cfg, req, "admin")) {
        return;
    }
    j = dr_xcalloc(1, sizeof(*j));
    j->a = a;
    body = dr_http_body(req, &blen);
    if (strcmp(path, "/admin/dlq") == 0 || strcmp(path, "/admin/dlq/") == 0) {
        if (strcmp(method, "GET") != 0) {
            free(j);
            dr_http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "use GET");
            return;
        }
        j->kind = J_LIST;
        if (filter_from_query(req, &j->fb, j->errmsg, sizeof(j->errmsg))) {
            dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "%s", j->errmsg);
            free(j);
            return;
        }
        run_job(req, j);
        return;
    }
    if (strncmp(path, "/admin/dlq/replay/jobs", 22) == 0) {
        free(j);
        on_replay_jobs(a, req, path, method);
        return;
    }
    if (strcmp(path, "/admin/dlq/replay") == 0) {
        cJSON *b = blen ? dr_json_parse(body, blen) : cJSON_CreateObject();
        int rc;
        if (strcmp(method, "POST") != 0 || !cJSON_IsObject(b)) {
            cJSON_Delete(b);
            free(j);
            dr_http_respond_error(req, 400, "INVALID_ARGUMENT",
                                  "POST a JSON object {filter, dry_run, rate, limit}");
            return;
        }
        rc = bulk_from_json(b, j);
        cJSON_Delete(b);
        if (rc == DR_OK && !j->dry_run && !a->local) {
            snprintf(j->errmsg, sizeof(j->errmsg), "replay needs the local queue (local mode)");
            rc = DR_EUNSUPPORTED;
        }
        if (rc == DR_EINVAL) {
            dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "%s", j->errmsg);
        } else if (rc) {
            dr_http_respond_error(req, 409, "FAILED_PRECONDITION", "%s", j->errmsg);
        }
        if (rc) {
            free(j);
            return;
        }
        run_job(req, j);
        return;
    }
    /* the route is the prefix "/admin/dlq": "/admin/dlqX5" names nothing */
    j->id = strncmp(path, "/admin/dlq/", 11) == 0 ? id_from_path(path, "/admin/dlq/", &rest) : -1;
    if (j->id < 0) {
        free(j);
        dr_http_respond_error(req, 404, "NOT_FOUND", "no such resource: %s", path);
        return;
    }
    if (strcmp(rest, "") == 0 && strcmp(method, "GET") == 0) {
        j->kind = J_GET;
    } else if (strcmp(rest, "") == 0 && strcmp(method, "DELETE") == 0) {
        j->kind = J_DELETE;
    } else if (strcmp(rest, "/replay") == 0 && strcmp(method, "POST") == 0) {
        j->kind = J_REPLAY;
        if (blen) {
            static const char *const keys[] = {"payload", "data", "attributes", NULL};
            char why[160] = "";
            const char *bad;
            j->body = dr_json_parse(body, blen);
            if (cJSON_IsObject(j->body) && (bad = unknown_key(j->body, keys))) {
                snprintf(why, sizeof(why), "%.64s: unknown", bad);
            } else if (cJSON_IsObject(j->body)) {
                /* the same fields as a pushed message's, held to Pub/Sub's limits */
                dr_push_message_ok(body, blen, j->body, why, sizeof(why));
            }
            if (!cJSON_IsObject(j->body) || *why) {
                cJSON_Delete(j->body);
                free(j);
                dr_http_respond_error(req, 400, "INVALID_ARGUMENT",
                                      "body: a JSON object {payload | data | attributes}%s%s",
                                      *why ? ": " : "", why);
                return;
            }
        }
    } else {
        free(j);
        dr_http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "%s not allowed on %s", method,
                              path);
        return;
    }
    run_job(req, j);
}

void dr_admin_register(struct dr_admin *a, struct dr_http_server *srv)
{
    dr_http_route(srv, "GET", "/admin/routes", on_routes, a);
    dr_http_route(srv, "GET", "/admin/breakers", on_breakers, a);
    dr_http_route(srv, NULL, "/admin/dlq*", on_dlq, a);
}
