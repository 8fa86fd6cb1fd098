/*
 * The inbox API (JWT like the real-time endpoints):
 *   GET  /api/v1/notifications?unread=&limit=&before=   newest first, paged by seq
 *   GET  /api/v1/notifications/unread-count
 *   POST /api/v1/notifications/{id}/read   (an id may hold '/': sent as %2F)
 *   POST /api/v1/notifications/read-all
 * Store calls run through dr_http_defer; a read is pushed to the user's connections. Every
 * request that reaches the store is in the audit log (dr/audit.h), with its counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/audit.h"
#include "dr/buf.h"
#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

#define PREFIX        "/api/v1/notifications"
#define LIMIT_DEFAULT 50
#define LIMIT_MAX     200
#define ID_MAX        128 /* a notification id's longest (notification.c) */

enum op { OP_LIST, OP_COUNT, OP_MARK, OP_MARK_ALL };

struct job {
    struct dr_hub *hub;
    enum op op;
    struct dr_jwt_claims *claims;
    struct rt_inbox_q q;
    char *id; /* OP_MARK: the notification asked for */
    int64_t n;
    size_t listed;
    char *out;
    int err;
};

static const char *const op_names[] = {
    [OP_LIST] = "list",
    [OP_COUNT] = "unread_count",
    [OP_MARK] = "read",
    [OP_MARK_ALL] = "read_all",
};

static void work(void *arg)
{
    struct job *j = arg;
    const char *sub = j->claims->sub, *org = j->claims->org;

    switch (j->op) {
    case OP_LIST:
        j->err = dr__rt_inbox_list(j->hub->db, &j->q, &j->out, &j->listed);
        break;
    case OP_COUNT:
        j->err = dr__rt_inbox_unread(j->hub->db, sub, org, &j->n);
        break;
    case OP_MARK:
        /* found by its id: the id marked is the one asked for */
        j->err = dr__rt_inbox_mark(j->hub->db, sub, org, j->id, &j->n, NULL);
        break;
    case OP_MARK_ALL:
        j->err = dr__rt_inbox_mark_all(j->hub->db, sub, org, &j->n);
        break;
    }
}

/* What the user asked and got, never what the notifications say. */
static void audit(const struct job *j, int status)
{
    struct dr_log_field f[3];
    size_t n = 0;

    if (j->op == OP_LIST) {
        f[n++] = DR_LOG_INT("unread_only", j->q.unread_only);
        f[n++] = DR_LOG_INT("limit", (long long)j->q.limit);
    } else if (j->op == OP_MARK) {
        f[n++] = DR_LOG_STR("notification_id", j->id);
    }
    if (!j->err) {
        static const char *const counts[] = {
            [OP_LIST] = "count", [OP_COUNT] = "unread", [OP_MARK] = "seq", [OP_MARK_ALL] = "up_to"};
        f[n++] = DR_LOG_INT(counts[j->op], j->op == OP_LIST ? (long long)j->listed : j->n);
    }
    dr_audit_inbox(j->claims->sub, op_names[j->op], "http", status, f, n);
}

static void done(struct dr_http_req *req, void *arg)
{
    struct job *j = arg;
    struct dr_buf b;

    audit(j, j->err == DR_ENOTFOUND ? 404 : j->err ? 503 : 200);
    dr_buf_init(&b, 4096);
    if (j->err == DR_ENOTFOUND) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "no such notification in your inbox");
    } else if (j->err) {
        DR_WARN("realtime", "inbox query failed", "error=\"%s\"", dr_strerror(j->err));
        dr_http_respond_error(req, 503, "UNAVAILABLE", "the store is unavailable, try again");
    } else if (j->op == OP_LIST) {
        dr_http_respond_json(req, 200, j->out);
    } else if (j->op == OP_COUNT) {
        dr_buf_printf(&b, "{\"unread\":%lld}", (long long)j->n);
        dr_http_respond_json(req, 200, b.data);
    } else {
        if (j->op == OP_MARK) {
            dr_buf_appends(&b, "{\"type\":\"read\",\"id\":");
            dr_buf_append_json_str(&b, j->id, strlen(j->id));
            dr_buf_printf(&b, ",\"seq\":%lld}", (long long)j->n);
        } else {
            dr_buf_printf(&b, "{\"type\":\"read\",\"all\":true,\"up_to\":%lld}", (long long)j->n);
        }
        if (!j->hub->stopping) {
            dr__hub_tell_user(j->hub, j->claims->sub, b.data, NULL);
        }
        /* the answer is the same object without its frame type */
        dr_http_respond_json(req, 200, b.data);
    }
    dr_buf_cleanup(&b);
    dr_jwt_claims_destroy(j->claims);
    free(j->id);
    free(j->out);
    free(j);
}

void dr__rt_inbox_route(struct dr_http_req *req, void *ctx)
{
    struct dr_hub *hub = ctx;
    const char *path = dr_http_path(req), *method = dr_http_method(req);
    const char *rest = path + strlen(PREFIX);
    struct dr_jwt_claims *claims = NULL;
    struct job *j;
    char err[128];
    int64_t limit = LIMIT_DEFAULT;
    enum op op;
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int is_post = strcmp(method, "POST") == 0;
    size_t rl = strlen(rest);

    if (strcmp(rest, "") == 0 || strcmp(rest, "/") == 0) {
        op = OP_LIST;
    } else if (strcmp(rest, "/unread-count") == 0) {
        op = OP_COUNT;
    } else if (strcmp(rest, "/read-all") == 0) {
        op = OP_MARK_ALL;
    } else if (rl > 6 && rest[0] == '/' && strcmp(rest + rl - 5, "/read") == 0 &&
               rl - 6 <= ID_MAX) {
        /* The path comes decoded, and an id may hold a '/' (sent as %2F): the id is everything
         * up to the last "/read", so "a/b" and "x/read" can be marked too. */
        op = OP_MARK;
    } else {
        dr_http_respond_error(req, 404, "NOT_FOUND", "no such resource");
        return;
    }
    if (((op == OP_LIST || op == OP_COUNT) && !is_get) ||
        ((op == OP_MARK || op == OP_MARK_ALL) && !is_post)) {
        dr_http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "method not allowed here");
        return;
    }
    if (dr__rt_authenticate(hub, req, &claims) != DR_OK) {
        return;
    }
    j = dr_xcalloc(1, sizeof(*j));
    j->hub = hub;
    j->op = op;
    j->claims = claims;
    j->q.sub = claims->sub;
    j->q.org = claims->org;
    j->q.limit = LIMIT_DEFAULT;
    if (op == OP_MARK) {
        j->id = dr_xstrndup(rest + 1, rl - 6);
    }
    if (op == OP_LIST) {
        if (dr_http_query_bool(req, "unread", &j->q.unread_only, err, sizeof(err)) == DR_EINVAL ||
            dr_http_query_int(req, "limit", 1, LIMIT_MAX, &limit, err, sizeof(err)) == DR_EINVAL ||
            dr_http_query_int(req, "before", 1, INT64_MAX, &j->q.before, err, sizeof(err)) ==
                DR_EINVAL) {
            dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "%s", err);
            goto fail;
        }
        j->q.limit = (size_t)limit;
    }
    if (dr_http_defer(req, work, done, j) != DR_OK) {
        dr_http_respond_error(req, 503, "UNAVAILABLE", "busy, try again");
        goto fail;
    }
    return;
fail:
    dr_jwt_claims_destroy(j->claims);
    free(j->id);
    free(j);
}
