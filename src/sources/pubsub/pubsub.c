/*
 * Pub/Sub REST v1, and with conf->grpc publish, pull, acknowledge and modifyAckDeadline over gRPC
 * instead (grpc.c). Each call becomes one or more "ops" (an ack of many ids is split into
 * several requests); an op first waits for the credentials header (when there are credentials),
 * then for its HTTP request. Ops that belong to one call share a group that reports to the
 * caller once, when the last op is done. Every op is on the client's list so destroy can cancel
 * it wherever it is waiting.
 */
#include "dr/pubsub.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/util.h"
#include "sources/pubsub/pubsub_internal.h"

#define DEFAULT_ENDPOINT     "https://pubsub.googleapis.com"
#define DEFAULT_TIMEOUT_MS   60000L
#define DEFAULT_PULL_TIMEOUT 110000L
#define MIN_PULL_TIMEOUT     100000L
#define MAX_ANSWER           (4u * 1024 * 1024)
#define MAX_PULL_ANSWER      (64u * 1024 * 1024)
#define ACK_BATCH_IDS        2500
#define ACK_BATCH_BYTES      (500u * 1024)
#define MAX_NAME             512
#define ERRMSG_MAX           512

enum op_kind { OP_DONE, OP_PUBLISH, OP_PULL };

struct group {
    int pending;
    int err;
    char *errmsg;
    dr_pubsub_done_cb cb;
    void *ctx;
};

struct op {
    struct dr_pubsub *ps;
    enum op_kind kind;
    const char *method;
    char *url;
    char *body;
    size_t body_len;
    long timeout_ms;
    size_t max_answer;
    size_t n_published; /* publish: messages sent */
    int grpc;           /* a gRPC call: protobuf body, status in grpc-status */
    int waiting_auth;
    struct dr_hc_call *call;
    struct group *grp; /* OP_DONE */
    dr_pubsub_publish_cb publish_cb;
    dr_pubsub_pull_cb pull_cb;
    void *ctx;
    struct op *prev, *next;
};

struct dr_pubsub {
    uv_loop_t *loop;
    char *project;
    char *base; /* "http://host:port" or "https://pubsub.googleapis.com" */
    int emulator;
    int http2;
    int grpc; /* publish and subscriber calls over gRPC */
    long timeout_ms;
    long pull_timeout_ms;
    struct dr_hc *hc;
    int own_hc;
    struct dr_gcp_auth *auth;
    int own_auth;
    struct op *ops;
    size_t in_flight; /* calls, not ops */
    int closing;
    char errmsg[ERRMSG_MAX];
};

/* ---- helpers without I/O ---- */

static int refuse(struct dr_pubsub *ps, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct dr_pubsub *ps, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ps->errmsg, sizeof(ps->errmsg), fmt, ap);
    va_end(ap);
    return err;
}

/* Why id is not a topic or subscription id (see dr/pubsub.h), into why; 0 when it is one. */
static int id_problem(const char *id, char *why, size_t whysz)
{
    size_t n = strlen(id);

    if (n < 3 || n > 255) {
        snprintf(why, whysz, "must be 3 to 255 characters long, not %zu", n);
        return DR_EINVAL;
    }
    if (!((id[0] >= 'A' && id[0] <= 'Z') || (id[0] >= 'a' && id[0] <= 'z'))) {
        snprintf(why, whysz, "must start with a letter");
        return DR_EINVAL;
    }
    if (strncmp(id, "goog", 4) == 0) {
        snprintf(why, whysz, "must not start with \"goog\"");
        return DR_EINVAL;
    }
    for (const char *p = id; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr("-_.~+%", c))) {
            if (c >= 0x20 && c < 0x7f) {
                snprintf(why, whysz, "'%c' is not allowed: only letters, digits and - _ . ~ + %%",
                         c);
            } else {
                snprintf(why, whysz,
                         "byte 0x%02x is not allowed: only letters, digits and - _ . ~ + %%", c);
            }
            return DR_EINVAL;
        }
    }
    return DR_OK;
}

static int valid_id(const char *id)
{
    char why[128];

    return id_problem(id, why, sizeof(why)) == DR_OK;
}

static int valid_project(const char *p)
{
    size_t n = p ? strlen(p) : 0;

    if (n < 1 || n > 100) {
        return 0;
    }
    for (; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == ':' || c == '_')) {
            return 0;
        }
    }
    return 1;
}

int dr__pubsub_resolve(const char *project, const char *kind, const char *name, char *out,
                       size_t outsz)
{
    char proj[128];
    const char *id = name;

    if (!name) {
        return DR_EINVAL;
    }
    if (strncmp(name, "projects/", 9) == 0) {
        const char *slash = strchr(name + 9, '/');
        size_t plen, klen = strlen(kind);

        if (!slash || (size_t)(slash - name - 9) >= sizeof(proj)) {
            return DR_EINVAL;
        }
        plen = (size_t)(slash - name - 9);
        memcpy(proj, name + 9, plen);
        proj[plen] = '\0';
        if (strncmp(slash + 1, kind, klen) != 0 || slash[1 + klen] != '/') {
            return DR_EINVAL;
        }
        project = proj;
        id = slash + 2 + klen;
    }
    if (!valid_project(project) || !valid_id(id)) {
        return DR_EINVAL;
    }
    if ((size_t)snprintf(out, outsz, "projects/%s/%s/%s", project, kind, id) >= outsz) {
        return DR_EINVAL;
    }
    return DR_OK;
}

int dr_pubsub_name_check(const char *kind, const char *name, char *why, size_t whysz)
{
    const char *id = name;
    size_t klen = strlen(kind);

    if (!name) {
        snprintf(why, whysz, "missing");
        return DR_EINVAL;
    }
    if (strncmp(name, "projects/", 9) == 0) {
        const char *slash = strchr(name + 9, '/');
        char proj[128];
        size_t plen = slash ? (size_t)(slash - name - 9) : 0;

        if (!slash || strncmp(slash + 1, kind, klen) != 0 || slash[1 + klen] != '/') {
            snprintf(why, whysz, "a full name is projects/PROJECT/%s/ID", kind);
            return DR_EINVAL;
        }
        if (plen >= sizeof(proj)) {
            snprintf(why, whysz, "the project id is too long");
            return DR_EINVAL;
        }
        memcpy(proj, name + 9, plen);
        proj[plen] = '\0';
        if (!valid_project(proj)) {
            snprintf(why, whysz, "'%s' is not a project id", proj);
            return DR_EINVAL;
        }
        id = slash + 2 + klen;
    }
    return id_problem(id, why, whysz);
}

int dr__pubsub_http_error(long status, const char *body, size_t len, char *msg, size_t msgsz)
{
    cJSON *root = len ? dr_json_parse(body, len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const char *gstatus = dr_json_str(e, "status");
    const char *gmsg = dr_json_str(e, "message");
    int err;

    if (status == 400 || status == 412) {
        err = DR_EINVAL;
    } else if (status == 401 || status == 403) {
        err = DR_EAUTH;
    } else if (status == 404) {
        err = DR_ENOTFOUND;
    } else if (status == 409) {
        err = DR_EEXIST;
    } else if (status == 413) {
        err = DR_ETOOBIG;
    } else if (status == 408 || status == 429 || status >= 500 || status < 100) {
        err = DR_EIO;
    } else {
        err = DR_EINVAL;
    }
    if (gmsg || gstatus) {
        snprintf(msg, msgsz, "HTTP %ld %s: %s", status, gstatus ? gstatus : "ERROR",
                 gmsg && *gmsg ? gmsg : "(no message)");
    } else if (len && len < 200 && !root) {
        /* The emulator answers some errors in plain text ("Not Found"). */
        snprintf(msg, msgsz, "HTTP %ld: %.*s", status, (int)len, body);
    } else {
        snprintf(msg, msgsz, "HTTP %ld", status);
    }
    for (char *p = msg; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
    cJSON_Delete(root);
    return err;
}

int dr_pubsub_publish_check(const struct dr_pubsub_pub_msg *msgs, size_t n, char *why,
                             size_t whysz)
{
    if (!msgs || n == 0) {
        snprintf(why, whysz, "publish needs at least one message");
        return DR_EINVAL;
    }
    if (n > DR_PUBSUB_MAX_PUBLISH_MSGS) {
        snprintf(why, whysz, "%zu messages in one publish (limit %d)", n,
                 DR_PUBSUB_MAX_PUBLISH_MSGS);
        return DR_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        const struct dr_pubsub_pub_msg *m = &msgs[i];
        const char *ok = m->ordering_key ? m->ordering_key : "";
        size_t oklen = strlen(ok);

        if (m->len && !m->data) {
            snprintf(why, whysz, "message %zu: data is NULL", i);
            return DR_EINVAL;
        }
        if (m->len == 0 && m->n_attrs == 0) {
            snprintf(why, whysz, "message %zu: needs data or at least one attribute", i);
            return DR_EINVAL;
        }
        if (m->n_attrs > DR_PUBSUB_MAX_ATTRS) {
            snprintf(why, whysz, "message %zu: %zu attributes (limit %d)", i, m->n_attrs,
                     DR_PUBSUB_MAX_ATTRS);
            return DR_ETOOBIG;
        }
        if (m->n_attrs && !m->attrs) {
            snprintf(why, whysz, "message %zu: attrs is NULL", i);
            return DR_EINVAL;
        }
        if (oklen > DR_PUBSUB_MAX_ORDERING_KEY) {
            snprintf(why, whysz, "message %zu: ordering key of %zu bytes (limit %d)", i, oklen,
                     DR_PUBSUB_MAX_ORDERING_KEY);
            return DR_ETOOBIG;
        }
        if (!dr_utf8_valid(ok, oklen)) {
            snprintf(why, whysz, "message %zu: ordering key is not UTF-8", i);
            return DR_EINVAL;
        }
        for (size_t a = 0; a < m->n_attrs; a++) {
            const char *k = m->attrs[a].key, *v = m->attrs[a].value;
            size_t klen = k ? strlen(k) : 0, vlen = v ? strlen(v) : 0;

            if (!klen || !v) {
                snprintf(why, whysz, "message %zu: attribute %zu has no key or value", i, a);
                return DR_EINVAL;
            }
            if (klen > DR_PUBSUB_MAX_ATTR_KEY) {
                snprintf(why, whysz, "message %zu: attribute key of %zu bytes (limit %d)", i, klen,
                         DR_PUBSUB_MAX_ATTR_KEY);
                return DR_ETOOBIG;
            }
            if (vlen > DR_PUBSUB_MAX_ATTR_VALUE) {
                snprintf(why, whysz, "message %zu: attribute %.64s value of %zu bytes (limit %d)",
                         i, k, vlen, DR_PUBSUB_MAX_ATTR_VALUE);
                return DR_ETOOBIG;
            }
            if (strncmp(k, "goog", 4) == 0) {
                snprintf(why, whysz, "message %zu: attribute keys starting with goog are reserved",
                         i);
                return DR_EINVAL;
            }
            if (!dr_utf8_valid(k, klen) || !dr_utf8_valid(v, vlen)) {
                snprintf(why, whysz, "message %zu: attribute %zu is not UTF-8", i, a);
                return DR_EINVAL;
            }
            for (size_t b = 0; b < a; b++) {
                if (strcmp(m->attrs[b].key, k) == 0) {
                    snprintf(why, whysz, "message %zu: duplicate attribute %.64s", i, k);
                    return DR_EINVAL;
                }
            }
        }
    }
    return DR_OK;
}

int dr__pubsub_publish_body(const struct dr_pubsub_pub_msg *msgs, size_t n, struct dr_buf *out,
                            char *why, size_t whysz)
{
    int err = dr_pubsub_publish_check(msgs, n, why, whysz);

    if (err) {
        return err;
    }
    err = dr_buf_appends(out, "{\"messages\":[");
    for (size_t i = 0; i < n && !err; i++) {
        const struct dr_pubsub_pub_msg *m = &msgs[i];
        char *b64 = NULL;
        size_t b64len = 0;

        err = dr_buf_appends(out, i ? ",{" : "{");
        if (!err && m->len) {
            /* Checked before encoding so a 100 MB message costs no 133 MB string. */
            if (m->len / 3 * 4 > DR_PUBSUB_MAX_REQUEST_BYTES) {
                err = DR_ETOOBIG;
                break;
            }
            err = dr_base64_encode(m->data, m->len, &b64, &b64len);
            if (!err) {
                err = dr_buf_appends(out, "\"data\":\"");
            }
            if (!err) {
                err = dr_buf_append(out, b64, b64len);
            }
            if (!err) {
                err = dr_buf_appendc(out, '"');
            }
            free(b64);
        }
        if (!err && m->n_attrs) {
            err = dr_buf_appends(out, m->len ? ",\"attributes\":{" : "\"attributes\":{");
            for (size_t a = 0; a < m->n_attrs && !err; a++) {
                const char *k = m->attrs[a].key, *v = m->attrs[a].value;
                err = (a ? dr_buf_appendc(out, ',') : 0) ||
                      dr_buf_append_json_str(out, k, strlen(k)) || dr_buf_appendc(out, ':') ||
                      dr_buf_append_json_str(out, v, strlen(v));
                if (err) {
                    err = DR_ETOOBIG;
                }
            }
            if (!err) {
                err = dr_buf_appendc(out, '}');
            }
        }
        if (!err && m->ordering_key && *m->ordering_key) {
            err = dr_buf_appends(out, ",\"orderingKey\":");
            if (!err) {
                err = dr_buf_append_json_str(out, m->ordering_key, strlen(m->ordering_key));
            }
        }
        if (!err) {
            err = dr_buf_appendc(out, '}');
        }
    }
    if (!err) {
        err = dr_buf_appends(out, "]}");
    }
    if (err == DR_ETOOBIG) {
        snprintf(why, whysz, "publish request above %d bytes once encoded",
                 DR_PUBSUB_MAX_REQUEST_BYTES);
    } else if (err) {
        snprintf(why, whysz, "%s", dr_strerror(err));
    }
    return err;
}

void dr_pubsub_msg_free(struct dr_pubsub_msg *m)
{
    if (!m) {
        return;
    }
    free(m->ack_id);
    free(m->message_id);
    free(m->data);
    for (size_t i = 0; i < m->n_attrs; i++) {
        free((char *)m->attrs[i].key);
        free((char *)m->attrs[i].value);
    }
    free(m->attrs);
    free(m->ordering_key);
    free(m);
}

/* Fills m from a PubsubMessage object; returns the reason it is invalid, or NULL. */
static const char *parse_message(const cJSON *pm, struct dr_pubsub_msg *m)
{
    const char *s;
    const cJSON *attrs, *it;

    if (!cJSON_IsObject(pm)) {
        return "message is not an object";
    }
    s = dr_json_str(pm, "messageId");
    if (!s) {
        return "messageId missing";
    }
    m->message_id = dr_xstrdup(s);
    s = dr_json_str(pm, "publishTime");
    if (s && dr_parse_time(s, &m->publish_time_ms)) {
        return "publishTime is not RFC 3339";
    }
    s = dr_json_str(pm, "data");
    if (s) {
        if (dr_base64_decode(s, strlen(s), &m->data, &m->len)) {
            return "data is not base64";
        }
    } else {
        m->data = (unsigned char *)dr_xstrdup("");
    }
    attrs = cJSON_GetObjectItemCaseSensitive(pm, "attributes");
    if (attrs && !cJSON_IsObject(attrs)) {
        return "attributes is not an object";
    }
    m->attrs = dr_xcalloc((size_t)cJSON_GetArraySize(attrs) + 1, sizeof(*m->attrs));
    cJSON_ArrayForEach(it, attrs)
    {
        if (!cJSON_IsString(it) || !it->string) {
            return "attribute value is not a string";
        }
        m->attrs[m->n_attrs].key = dr_xstrdup(it->string);
        m->attrs[m->n_attrs].value = dr_xstrdup(it->valuestring);
        m->n_attrs++;
    }
    s = dr_json_str(pm, "orderingKey");
    m->ordering_key = dr_xstrdup(s ? s : "");
    return NULL;
}

void dr__pubsub_msg_settle(struct dr_pubsub_msg *m)
{
    if (m->invalid) {
        DR_WARN("pubsub", "undecodable message", "message_id=%s reason=\"%s\"",
                m->message_id ? m->message_id : "-", m->invalid);
    }
    if (!m->message_id) {
        m->message_id = dr_xstrdup("");
    }
    if (!m->data) {
        m->data = (unsigned char *)dr_xstrdup("");
        m->len = 0;
    }
    if (!m->ordering_key) {
        m->ordering_key = dr_xstrdup("");
    }
}

int dr__pubsub_parse_pull(const char *body, size_t len, struct dr_pubsub_msg ***msgs, size_t *n)
{
    cJSON *root = dr_json_parse(body, len);
    const cJSON *rm = cJSON_GetObjectItemCaseSensitive(root, "receivedMessages");
    const cJSON *it;
    struct dr_pubsub_msg **arr = NULL;
    size_t count = 0, cap;
    int err = DR_EIO;

    *msgs = NULL;
    *n = 0;
    if (!cJSON_IsObject(root) || (rm && !cJSON_IsArray(rm))) {
        goto out;
    }
    cap = (size_t)cJSON_GetArraySize(rm);
    if (cap) {
        arr = dr_xcalloc(cap, sizeof(*arr));
    }
    cJSON_ArrayForEach(it, rm)
    {
        const char *ack = dr_json_str(it, "ackId");
        struct dr_pubsub_msg *m;
        int64_t attempt;

        if (!ack || !*ack) {
            goto out; /* nothing to acknowledge it with: the whole answer is suspect */
        }
        m = dr_xcalloc(1, sizeof(*m));
        m->ack_id = dr_xstrdup(ack);
        /* deliveryAttempt sits beside the message, not in it */
        if (dr_json_i64(it, "deliveryAttempt", &attempt) == DR_OK && attempt > 0 &&
            attempt < 1000000) {
            m->delivery_attempt = (int)attempt;
        }
        m->invalid = parse_message(cJSON_GetObjectItemCaseSensitive(it, "message"), m);
        dr__pubsub_msg_settle(m);
        arr[count++] = m;
    }
    *msgs = arr;
    *n = count;
    arr = NULL;
    err = DR_OK;
out:
    if (arr) {
        for (size_t i = 0; i < count; i++) {
            dr_pubsub_msg_free(arr[i]);
        }
        free(arr);
    }
    cJSON_Delete(root);
    return err;
}

/* ---- ops ---- */

static void unlink_op(struct op *op)
{
    struct dr_pubsub *ps = op->ps;

    if (op->prev) {
        op->prev->next = op->next;
    } else {
        ps->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    op->prev = op->next = NULL;
}

static void free_op(struct op *op)
{
    free(op->url);
    free(op->body);
    free(op);
}

static struct op *new_op(struct dr_pubsub *ps, enum op_kind kind, const char *method,
                         const char *path, const char *suffix)
{
    struct op *op = dr_xcalloc(1, sizeof(*op));
    struct dr_buf b;

    op->ps = ps;
    op->kind = kind;
    op->method = method;
    op->timeout_ms = ps->timeout_ms;
    op->max_answer = MAX_ANSWER;
    dr_buf_init(&b, 4096);
    if (dr_buf_printf(&b, "%s/v1/", ps->base)) {
        goto fail;
    }
    /* '%' is allowed in ids but must not start an escape in the URL. */
    for (const char *p = path; *p; p++) {
        if ((*p == '%' ? dr_buf_appends(&b, "%25") : dr_buf_appendc(&b, *p)) != DR_OK) {
            goto fail;
        }
    }
    if (dr_buf_appends(&b, suffix)) {
        goto fail;
    }
    op->url = dr_buf_steal(&b, NULL);
    return op;
fail:
    dr_buf_cleanup(&b);
    free(op);
    return NULL;
}

/* A call of google.pubsub.v1.Subscriber over gRPC: POST {base}/google.pubsub.v1.Subscriber/{rpc}.
 */
static struct op *new_grpc_op(struct dr_pubsub *ps, enum op_kind kind, const char *rpc)
{
    struct op *op = dr_xcalloc(1, sizeof(*op));
    struct dr_buf b;

    op->ps = ps;
    op->kind = kind;
    op->method = "POST";
    op->grpc = 1;
    op->timeout_ms = ps->timeout_ms;
    op->max_answer = MAX_ANSWER;
    dr_buf_init(&b, 4096);
    if (dr_buf_printf(&b, "%s/google.pubsub.v1.%s", ps->base, rpc)) {
        dr_buf_cleanup(&b);
        free(op);
        return NULL;
    }
    op->url = dr_buf_steal(&b, NULL);
    return op;
}

static void group_done(struct group *g, int err, const char *errmsg, const cJSON *resource)
{
    if (err && !g->err) {
        g->err = err;
        g->errmsg = dr_xstrdup(errmsg ? errmsg : dr_strerror(err));
    }
    if (--g->pending > 0) {
        return;
    }
    g->cb(g->ctx, g->err, g->err ? g->errmsg : NULL, g->err ? NULL : resource);
    free(g->errmsg);
    free(g);
}

/* Ends an op: reports to its caller (or group) and frees it. */
static void complete(struct op *op, int err, const char *errmsg, const struct dr_hc_resp *resp)
{
    struct dr_pubsub *ps = op->ps;
    char why[ERRMSG_MAX];

    unlink_op(op);
    if (err && !errmsg) {
        errmsg = dr_strerror(err);
    }
    switch (op->kind) {
    case OP_DONE: {
        cJSON *res = NULL;
        if (!err && op->grpc) {
            res = cJSON_CreateObject(); /* google.protobuf.Empty */
        } else if (!err && resp && resp->body_len) {
            res = dr_json_parse(resp->body, resp->body_len);
            if (!res) {
                err = DR_EIO;
                errmsg = "malformed answer (not JSON)";
            }
        }
        if (op->grp->pending == 1) {
            ps->in_flight--;
        }
        group_done(op->grp, err, errmsg, res);
        cJSON_Delete(res);
        break;
    }
    case OP_PUBLISH: {
        cJSON *root = NULL;
        const char **ids = NULL;
        char **gids = NULL; /* the gRPC answer's ids, NULL-terminated */
        size_t n = 0;

        if (!err && op->grpc) {
            if (dr__grpc_parse_publish(resp->body, resp->body_len, &gids, &n) != DR_OK ||
                n != op->n_published) {
                snprintf(why, sizeof(why), "malformed publish answer (%zu messages sent)",
                         op->n_published);
                err = DR_EIO;
                errmsg = why;
            } else {
                ids = (const char **)gids;
            }
        } else if (!err) {
            const cJSON *arr, *it;
            root = dr_json_parse(resp->body, resp->body_len);
            arr = cJSON_GetObjectItemCaseSensitive(root, "messageIds");
            if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != op->n_published) {
                snprintf(why, sizeof(why), "malformed publish answer (%zu messages sent)",
                         op->n_published);
                err = DR_EIO;
                errmsg = why;
            } else {
                ids = dr_xcalloc(op->n_published + 1, sizeof(*ids));
                cJSON_ArrayForEach(it, arr)
                {
                    if (!cJSON_IsString(it)) {
                        err = DR_EIO;
                        errmsg = "malformed publish answer (id not a string)";
                        break;
                    }
                    ids[n++] = it->valuestring;
                }
            }
        }
        ps->in_flight--;
        op->publish_cb(op->ctx, err, err ? errmsg : NULL, err ? NULL : ids, err ? 0 : n);
        if (gids) {
            for (size_t i = 0; gids[i]; i++) {
                free(gids[i]);
            }
            free(gids);
        } else {
            free(ids);
        }
        cJSON_Delete(root);
        break;
    }
    case OP_PULL: {
        struct dr_pubsub_msg **msgs = NULL;
        size_t n = 0;

        if (!err && (op->grpc ? dr__grpc_parse_pull(resp->body, resp->body_len, &msgs, &n)
                              : dr__pubsub_parse_pull(resp->body, resp->body_len, &msgs, &n))) {
            err = DR_EIO;
            errmsg = "malformed pull answer";
        }
        ps->in_flight--;
        op->pull_cb(op->ctx, err, err ? errmsg : NULL, msgs, n);
        free(msgs);
        break;
    }
    }
    free_op(op);
}

static void on_http(void *ctx, int err, const struct dr_hc_resp *resp)
{
    struct op *op = ctx;
    struct dr_pubsub *ps = op->ps;
    char msg[ERRMSG_MAX];

    op->call = NULL;
    if (err == DR_ETIMEOUT) {
        snprintf(msg, sizeof(msg), "no answer within %ld ms", op->timeout_ms);
        complete(op, DR_EIO, msg, NULL);
    } else if (err == DR_ETOOBIG) {
        snprintf(msg, sizeof(msg), "answer above %zu bytes", op->max_answer);
        complete(op, DR_ETOOBIG, msg, NULL);
    } else if (err) {
        snprintf(msg, sizeof(msg), "%s", resp->error ? resp->error : dr_strerror(err));
        complete(op, err == DR_EUNAVAIL ? DR_EUNAVAIL : DR_EIO, msg, NULL);
    } else if (op->grpc && resp->status == 200) {
        if (resp->grpc_status == 0) {
            complete(op, DR_OK, NULL, resp);
        } else if (resp->grpc_status < 0) {
            complete(op, DR_EIO, "gRPC answer without grpc-status", NULL);
        } else if (resp->grpc_status == 4 && op->kind == OP_PULL) {
            /* DEADLINE_EXCEEDED: a blocking pull the service ended without messages */
            complete(op, DR_OK, NULL, &(struct dr_hc_resp){.status = 200, .body = ""});
        } else {
            err = dr__grpc_error(resp->grpc_status, resp->grpc_message, msg, sizeof(msg));
            if (resp->grpc_status == 16 && ps->auth) { /* UNAUTHENTICATED */
                dr_gcp_auth_invalidate(ps->auth);
            }
            DR_DEBUG("pubsub", "call refused", "grpc_status=%d err=%s", resp->grpc_status,
                     dr_strerror(err));
            complete(op, err, msg, NULL);
        }
    } else if (!op->grpc && resp->status >= 200 && resp->status < 300) {
        complete(op, DR_OK, NULL, resp);
    } else {
        err = dr__pubsub_http_error(resp->status, resp->body, resp->body_len, msg, sizeof(msg));
        if (resp->status == 401 && ps->auth) {
            dr_gcp_auth_invalidate(ps->auth);
        }
        DR_DEBUG("pubsub", "request refused", "status=%ld err=%s", resp->status, dr_strerror(err));
        complete(op, err, msg, NULL);
    }
}

static int send_op(struct op *op, const char *auth_header)
{
    const char *json[] = {"Content-Type: application/json", auth_header, NULL};
    const char *grpc[] = {"Content-Type: application/grpc", "TE: trailers", auth_header, NULL};
    struct dr_hc_req req = {.method = op->method,
                            .url = op->url,
                            .headers = op->grpc ? grpc : json,
                            .body = op->body,
                            .body_len = op->body_len,
                            .timeout_ms = op->timeout_ms,
                            .http2 = op->ps->http2,
                            .max_response = op->max_answer};

    if (op->grpc) {
        /* gRPC needs HTTP/2: negotiated over TLS, or spoken at once without (the emulator) */
        req.http2 = strncmp(op->url, "http://", 7) == 0 ? 2 : 1;
    }

    return dr_hc_submit(op->ps->hc, &req, on_http, op, &op->call);
}

static void on_auth(void *ctx, int err, const char *header)
{
    struct op *op = ctx;

    op->waiting_auth = 0;
    if (err) {
        char msg[128];
        snprintf(msg, sizeof(msg), "no credentials: %s", dr_strerror(err));
        complete(op,
                 err == DR_EUNAVAIL ? DR_EUNAVAIL
                 : err == DR_EIO    ? DR_EIO
                                    : DR_EAUTH,
                 msg, NULL);
        return;
    }
    err = send_op(op, header);
    if (err) {
        complete(op, err == DR_EUNAVAIL ? DR_EUNAVAIL : DR_EIO, "cannot start the request", NULL);
    }
}

/* Queues op; on failure op is freed and not linked. */
static int start_op(struct op *op)
{
    struct dr_pubsub *ps = op->ps;
    int err;

    if (ps->auth && dr_gcp_auth_mode(ps->auth) != DR_GCP_AUTH_NONE) {
        err = dr_gcp_auth_header(ps->auth, on_auth, op);
        op->waiting_auth = err == DR_OK;
    } else {
        err = send_op(op, NULL);
    }
    if (err) {
        free_op(op);
        return err;
    }
    op->next = ps->ops;
    if (ps->ops) {
        ps->ops->prev = op;
    }
    ps->ops = op;
    return DR_OK;
}

/* ---- public API ---- */

static int check_client(struct dr_pubsub *ps)
{
    if (!ps) {
        return DR_EINVAL;
    }
    ps->errmsg[0] = '\0';
    if (ps->closing) {
        return refuse(ps, DR_EUNAVAIL, "client is shutting down");
    }
    return DR_OK;
}

static int resolve(struct dr_pubsub *ps, const char *kind, const char *name, char *out)
{
    if (dr__pubsub_resolve(ps->project, kind, name, out, MAX_NAME)) {
        return refuse(ps, DR_EINVAL, "bad %s name \"%.64s\"",
                      strcmp(kind, "topics") == 0 ? "topic" : "subscription",
                      name ? name : "(null)");
    }
    return DR_OK;
}

/* One request reported through a done callback. */
static int simple_call(struct dr_pubsub *ps, const char *method, const char *path,
                       const char *suffix, char *body, dr_pubsub_done_cb cb, void *ctx)
{
    struct group *g;
    struct op *op;
    int err;

    op = new_op(ps, OP_DONE, method, path, suffix);
    if (!op) {
        free(body);
        return refuse(ps, DR_EINVAL, "name too long");
    }
    op->body = body;
    op->body_len = body ? strlen(body) : 0;
    g = dr_xcalloc(1, sizeof(*g));
    g->pending = 1;
    g->cb = cb;
    g->ctx = ctx;
    op->grp = g;
    err = start_op(op);
    if (err) {
        free(g);
        return refuse(ps, err, "cannot start the request: %s", dr_strerror(err));
    }
    ps->in_flight++;
    return DR_OK;
}

int dr_pubsub_create(uv_loop_t *loop, const struct dr_pubsub_conf *conf, struct dr_pubsub **out)
{
    struct dr_pubsub *ps;
    const char *emu;
    struct dr_buf b;
    int err = DR_EINVAL;

    *out = NULL;
    if (!loop || !conf) {
        return DR_EINVAL;
    }
    if (!valid_project(conf->project)) {
        DR_ERROR("pubsub", "bad project id", "project=\"%.64s\"",
                 conf->project ? conf->project : "");
        return DR_EINVAL;
    }
    emu = conf->emulator_host ? conf->emulator_host : getenv("PUBSUB_EMULATOR_HOST");
    ps = dr_xcalloc(1, sizeof(*ps));
    ps->loop = loop;
    ps->project = dr_xstrdup(conf->project);
    ps->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : DEFAULT_TIMEOUT_MS;
    ps->pull_timeout_ms = conf->pull_timeout_ms > 0 ? conf->pull_timeout_ms : DEFAULT_PULL_TIMEOUT;
    if (ps->pull_timeout_ms < MIN_PULL_TIMEOUT) {
        ps->pull_timeout_ms = MIN_PULL_TIMEOUT;
    }
    dr_buf_init(&b, 1024);
    if (emu && *emu) {
        if (strpbrk(emu, "/@?# \t\r\n")) {
            DR_ERROR("pubsub", "bad emulator host", "host=\"%.64s\"", emu);
            goto out;
        }
        ps->emulator = 1;
        err = dr_buf_printf(&b, "http://%s", emu);
    } else {
        const char *ep = conf->endpoint ? conf->endpoint : DEFAULT_ENDPOINT;
        size_t n = strlen(ep);
        if (strncmp(ep, "https://", 8) != 0 && strncmp(ep, "http://", 7) != 0) {
            DR_ERROR("pubsub", "bad endpoint", "endpoint=\"%.64s\"", ep);
            err = DR_EINVAL;
            goto out;
        }
        while (n > 0 && ep[n - 1] == '/') {
            n--;
        }
        ps->http2 = conf->http1_only ? 0 : 1;
        err = dr_buf_append(&b, ep, n);
    }
    if (err) {
        goto out;
    }
    ps->base = dr_buf_steal(&b, NULL);
    ps->grpc = conf->grpc ? 1 : 0;
    if (conf->hc) {
        ps->hc = conf->hc;
    } else {
        err = dr_hc_create(loop, &ps->hc);
        if (err) {
            goto out;
        }
        ps->own_hc = 1;
    }
    if (conf->auth) {
        ps->auth = conf->auth;
    } else if (!ps->emulator) {
        err = dr_gcp_auth_create_from_env(loop, ps->hc, &ps->auth);
        if (err) {
            goto out;
        }
        ps->own_auth = 1;
    }
    DR_INFO("pubsub", "client ready", "base=%s emulator=%d transport=%s", ps->base, ps->emulator,
            ps->grpc ? "grpc" : "rest");
    *out = ps;
    ps = NULL;
    err = DR_OK;
out:
    dr_buf_cleanup(&b);
    if (ps) {
        if (ps->own_hc) {
            dr_hc_destroy(ps->hc);
        }
        free(ps->base);
        free(ps->project);
        free(ps);
    }
    return err;
}

void dr_pubsub_destroy(struct dr_pubsub *ps)
{
    if (!ps || ps->closing) {
        return;
    }
    ps->closing = 1;
    while (ps->ops) {
        struct op *op = ps->ops;
        if (op->waiting_auth) {
            dr_gcp_auth_cancel(ps->auth, on_auth, op);
            op->waiting_auth = 0;
        }
        if (op->call) {
            dr_hc_cancel(op->call);
            op->call = NULL;
        }
        complete(op, DR_EUNAVAIL, "client destroyed", NULL);
    }
    if (ps->own_auth) {
        dr_gcp_auth_destroy(ps->auth);
    }
    if (ps->own_hc) {
        dr_hc_destroy(ps->hc);
    }
    free(ps->base);
    free(ps->project);
    free(ps);
}

const char *dr_pubsub_errmsg(const struct dr_pubsub *ps)
{
    return ps ? ps->errmsg : "";
}

size_t dr_pubsub_in_flight(const struct dr_pubsub *ps)
{
    return ps ? ps->in_flight : 0;
}

int dr_pubsub_publish(struct dr_pubsub *ps, const char *topic, const struct dr_pubsub_pub_msg *msgs,
                      size_t n, dr_pubsub_publish_cb cb, void *ctx)
{
    char name[MAX_NAME];
    struct dr_buf b;
    struct op *op;
    int err = check_client(ps);

    if (err) {
        return err;
    }
    if (!cb) {
        return refuse(ps, DR_EINVAL, "no callback");
    }
    err = resolve(ps, "topics", topic, name);
    if (err) {
        return err;
    }
    dr_buf_init(&b, DR_PUBSUB_MAX_REQUEST_BYTES);
    if (ps->grpc) {
        err = dr_pubsub_publish_check(msgs, n, ps->errmsg, sizeof(ps->errmsg));
        if (!err && dr__grpc_publish_request(name, msgs, n, &b) != DR_OK) {
            err = refuse(ps, DR_ETOOBIG, "publish request above %d bytes once encoded",
                         DR_PUBSUB_MAX_REQUEST_BYTES);
        }
    } else {
        err = dr__pubsub_publish_body(msgs, n, &b, ps->errmsg, sizeof(ps->errmsg));
    }
    if (err) {
        dr_buf_cleanup(&b);
        return err;
    }
    op = ps->grpc ? new_grpc_op(ps, OP_PUBLISH, "Publisher/Publish")
                  : new_op(ps, OP_PUBLISH, "POST", name, ":publish");
    if (!op) {
        dr_buf_cleanup(&b);
        return refuse(ps, DR_EINVAL, "name too long");
    }
    op->body = dr_buf_steal(&b, &op->body_len);
    op->n_published = n;
    op->publish_cb = cb;
    op->ctx = ctx;
    err = start_op(op);
    if (err) {
        return refuse(ps, err, "cannot start the request: %s", dr_strerror(err));
    }
    ps->in_flight++;
    return DR_OK;
}

int dr_pubsub_pull(struct dr_pubsub *ps, const char *subscription, int max_messages,
                   int return_immediately, dr_pubsub_pull_cb cb, void *ctx)
{
    char name[MAX_NAME];
    struct dr_buf b;
    struct op *op;
    int err = check_client(ps);

    if (err) {
        return err;
    }
    if (!cb) {
        return refuse(ps, DR_EINVAL, "no callback");
    }
    if (max_messages < 1 || max_messages > DR_PUBSUB_MAX_PULL_MSGS) {
        return refuse(ps, DR_EINVAL, "maxMessages %d outside 1-%d", max_messages,
                      DR_PUBSUB_MAX_PULL_MSGS);
    }
    err = resolve(ps, "subscriptions", subscription, name);
    if (err) {
        return err;
    }
    op = ps->grpc ? new_grpc_op(ps, OP_PULL, "Subscriber/Pull")
                  : new_op(ps, OP_PULL, "POST", name, ":pull");
    if (!op) {
        return refuse(ps, DR_EINVAL, "name too long");
    }
    dr_buf_init(&b, 1024);
    if (ps->grpc) {
        dr__grpc_pull_request(name, max_messages, return_immediately, &b);
    } else {
        dr_buf_printf(&b, "{\"maxMessages\":%d,\"returnImmediately\":%s}", max_messages,
                      return_immediately ? "true" : "false");
    }
    op->body = dr_buf_steal(&b, &op->body_len);
    op->max_answer = MAX_PULL_ANSWER;
    op->timeout_ms = return_immediately ? ps->timeout_ms : ps->pull_timeout_ms;
    op->pull_cb = cb;
    op->ctx = ctx;
    err = start_op(op);
    if (err) {
        return refuse(ps, err, "cannot start the request: %s", dr_strerror(err));
    }
    ps->in_flight++;
    return DR_OK;
}

/* The REST body of an acknowledge (deadline_s < 0) or modifyAckDeadline call. */
static int ack_json(const char *const *ids, size_t n, int deadline_s, struct dr_buf *b)
{
    int err = dr_buf_appends(b, "{\"ackIds\":[");

    for (size_t i = 0; !err && i < n; i++) {
        err = (i ? dr_buf_appendc(b, ',') : 0) || dr_buf_append_json_str(b, ids[i], strlen(ids[i]));
    }
    if (!err && deadline_s >= 0) {
        err = dr_buf_printf(b, "],\"ackDeadlineSeconds\":%d}", deadline_s);
    } else if (!err) {
        err = dr_buf_appends(b, "]}");
    }
    return err;
}

/* ack (deadline_s < 0) or modack, in batches. */
static int send_acks(struct dr_pubsub *ps, const char *subscription, const char *const *ids,
                     size_t n, int deadline_s, dr_pubsub_done_cb cb, void *ctx)
{
    char name[MAX_NAME];
    const char *suffix = deadline_s < 0 ? ":acknowledge" : ":modifyAckDeadline";
    struct group *g;
    struct op **ops = NULL;
    size_t nops = 0, i = 0;
    int err = check_client(ps);

    if (err) {
        return err;
    }
    if (!cb) {
        return refuse(ps, DR_EINVAL, "no callback");
    }
    if (!ids || n == 0) {
        return refuse(ps, DR_EINVAL, "no ack ids");
    }
    if (deadline_s > DR_PUBSUB_MAX_ACK_DEADLINE_S) {
        return refuse(ps, DR_EINVAL, "ack deadline %d s outside 0-%d", deadline_s,
                      DR_PUBSUB_MAX_ACK_DEADLINE_S);
    }
    for (size_t k = 0; k < n; k++) {
        if (!ids[k] || !*ids[k] || strlen(ids[k]) > ACK_BATCH_BYTES / 2) {
            return refuse(ps, DR_EINVAL, "ack id %zu is empty or too long", k);
        }
    }
    err = resolve(ps, "subscriptions", subscription, name);
    if (err) {
        return err;
    }
    ops = dr_xcalloc(n, sizeof(*ops));
    /* Build every batch first, so a failure sends nothing. */
    while (i < n) {
        struct dr_buf b;
        size_t first = i, bytes = 64;
        struct op *op = !ps->grpc        ? new_op(ps, OP_DONE, "POST", name, suffix)
                        : deadline_s < 0 ? new_grpc_op(ps, OP_DONE, "Subscriber/Acknowledge")
                                         : new_grpc_op(ps, OP_DONE, "Subscriber/ModifyAckDeadline");

        if (!op) {
            err = refuse(ps, DR_EINVAL, "name too long");
            goto fail;
        }
        ops[nops++] = op;
        while (i < n && i - first < ACK_BATCH_IDS && bytes + strlen(ids[i]) < ACK_BATCH_BYTES) {
            bytes += strlen(ids[i]) + 3;
            i++;
        }
        dr_buf_init(&b, ACK_BATCH_BYTES + 1024);
        err = ps->grpc ? dr__grpc_ack_request(name, ids + first, i - first, deadline_s, &b)
                       : ack_json(ids + first, i - first, deadline_s, &b);
        op->body = dr_buf_steal(&b, &op->body_len);
        if (err) {
            err = refuse(ps, DR_EINVAL, "cannot encode ack ids");
            goto fail;
        }
    }
    g = dr_xcalloc(1, sizeof(*g));
    g->cb = cb;
    g->ctx = ctx;
    g->pending = (int)nops;
    for (size_t k = 0; k < nops; k++) {
        ops[k]->grp = g;
    }
    ps->in_flight++;
    for (size_t k = 0; k < nops; k++) {
        struct op *op = ops[k];
        ops[k] = NULL;
        err = start_op(op);
        if (err) {
            /* Rare (the HTTP client is shutting down): the batches not started count as
             * failed, so the callback still runs exactly once, when the started ones end. */
            g->pending -= (int)(nops - k);
            if (!g->err) {
                g->err = err;
                g->errmsg = dr_xstrdup("cannot start the request");
            }
            for (size_t r = k + 1; r < nops; r++) {
                free_op(ops[r]);
            }
            if (g->pending == 0) {
                ps->in_flight--;
                free(g->errmsg);
                free(g);
                free(ops);
                return refuse(ps, err, "cannot start the request: %s", dr_strerror(err));
            }
            break;
        }
    }
    free(ops);
    return DR_OK;
fail:
    for (size_t k = 0; k < nops; k++) {
        free_op(ops[k]);
    }
    free(ops);
    return err;
}

int dr_pubsub_ack(struct dr_pubsub *ps, const char *subscription, const char *const *ack_ids,
                  size_t n, dr_pubsub_done_cb cb, void *ctx)
{
    return send_acks(ps, subscription, ack_ids, n, -1, cb, ctx);
}

int dr_pubsub_modack(struct dr_pubsub *ps, const char *subscription, const char *const *ack_ids,
                     size_t n, int deadline_s, dr_pubsub_done_cb cb, void *ctx)
{
    if (ps && deadline_s < 0) {
        return refuse(ps, DR_EINVAL, "ack deadline %d s outside 0-%d", deadline_s,
                      DR_PUBSUB_MAX_ACK_DEADLINE_S);
    }
    return send_acks(ps, subscription, ack_ids, n, deadline_s, cb, ctx);
}

static int resource_call(struct dr_pubsub *ps, const char *kind, const char *name,
                         const char *method, char *body, dr_pubsub_done_cb cb, void *ctx)
{
    char full[MAX_NAME];
    int err = check_client(ps);

    if (!err && !cb) {
        err = refuse(ps, DR_EINVAL, "no callback");
    }
    if (!err) {
        err = resolve(ps, kind, name, full);
    }
    if (err) {
        free(body);
        return err;
    }
    return simple_call(ps, method, full, "", body, cb, ctx);
}

int dr_pubsub_topic_create(struct dr_pubsub *ps, const char *topic, dr_pubsub_done_cb cb, void *ctx)
{
    /* No "name" in the body: the emulator never answers when it differs from the URL. */
    return resource_call(ps, "topics", topic, "PUT", dr_xstrdup("{}"), cb, ctx);
}

int dr_pubsub_topic_get(struct dr_pubsub *ps, const char *topic, dr_pubsub_done_cb cb, void *ctx)
{
    return resource_call(ps, "topics", topic, "GET", NULL, cb, ctx);
}

int dr_pubsub_topic_delete(struct dr_pubsub *ps, const char *topic, dr_pubsub_done_cb cb, void *ctx)
{
    return resource_call(ps, "topics", topic, "DELETE", NULL, cb, ctx);
}

static int valid_push_url(const char *u)
{
    return (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0) &&
           strpbrk(u, " \t\r\n\"\\") == NULL && strlen(u) < 2048;
}

int dr_pubsub_sub_create(struct dr_pubsub *ps, const char *subscription,
                         const struct dr_pubsub_sub_conf *conf, dr_pubsub_done_cb cb, void *ctx)
{
    char topic[MAX_NAME], dlq[MAX_NAME];
    int deadline, attempts;
    cJSON *o = NULL;
    char *body;
    int err = check_client(ps);

    if (err) {
        return err;
    }
    if (!conf) {
        return refuse(ps, DR_EINVAL, "no subscription settings");
    }
    deadline = conf->ack_deadline_s ? conf->ack_deadline_s : DR_PUBSUB_MIN_SUB_DEADLINE_S;
    if (deadline < DR_PUBSUB_MIN_SUB_DEADLINE_S || deadline > DR_PUBSUB_MAX_ACK_DEADLINE_S) {
        return refuse(ps, DR_EINVAL, "ackDeadlineSeconds %d outside %d-%d", deadline,
                      DR_PUBSUB_MIN_SUB_DEADLINE_S, DR_PUBSUB_MAX_ACK_DEADLINE_S);
    }
    err = resolve(ps, "topics", conf->topic, topic);
    if (err) {
        return err;
    }
    attempts = conf->max_delivery_attempts ? conf->max_delivery_attempts : DR_PUBSUB_MIN_DELIVERIES;
    if (conf->dead_letter_topic) {
        err = resolve(ps, "topics", conf->dead_letter_topic, dlq);
        if (err) {
            return err;
        }
        if (attempts < DR_PUBSUB_MIN_DELIVERIES || attempts > DR_PUBSUB_MAX_DELIVERIES) {
            return refuse(ps, DR_EINVAL, "maxDeliveryAttempts %d outside %d-%d", attempts,
                          DR_PUBSUB_MIN_DELIVERIES, DR_PUBSUB_MAX_DELIVERIES);
        }
    } else if (conf->max_delivery_attempts) {
        return refuse(ps, DR_EINVAL, "maxDeliveryAttempts without a dead-letter topic");
    }
    if (conf->retry_min_backoff_s < 0 || conf->retry_max_backoff_s < 0 ||
        conf->retry_min_backoff_s > DR_PUBSUB_MAX_ACK_DEADLINE_S ||
        conf->retry_max_backoff_s > DR_PUBSUB_MAX_ACK_DEADLINE_S ||
        (conf->retry_max_backoff_s && conf->retry_min_backoff_s > conf->retry_max_backoff_s)) {
        return refuse(ps, DR_EINVAL, "retry backoff %d-%d s outside 0-600 or min > max",
                      conf->retry_min_backoff_s, conf->retry_max_backoff_s);
    }
    if (conf->push_endpoint && !valid_push_url(conf->push_endpoint)) {
        return refuse(ps, DR_EINVAL, "push endpoint is not an http(s) URL");
    }
    if (conf->filter &&
        (strlen(conf->filter) > 256 * 1024 || !dr_utf8_valid(conf->filter, strlen(conf->filter)))) {
        return refuse(ps, DR_EINVAL, "filter is too long or not UTF-8");
    }

    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "topic", topic);
    cJSON_AddNumberToObject(o, "ackDeadlineSeconds", deadline);
    if (conf->enable_message_ordering) {
        cJSON_AddTrueToObject(o, "enableMessageOrdering");
    }
    if (conf->dead_letter_topic) {
        cJSON *d = cJSON_AddObjectToObject(o, "deadLetterPolicy");
        cJSON_AddStringToObject(d, "deadLetterTopic", dlq);
        cJSON_AddNumberToObject(d, "maxDeliveryAttempts", attempts);
    }
    if (conf->retry_min_backoff_s > 0 || conf->retry_max_backoff_s > 0) {
        cJSON *r = cJSON_AddObjectToObject(o, "retryPolicy");
        char v[16];
        snprintf(v, sizeof(v), "%ds", conf->retry_min_backoff_s);
        cJSON_AddStringToObject(r, "minimumBackoff", v);
        snprintf(v, sizeof(v), "%ds",
                 conf->retry_max_backoff_s ? conf->retry_max_backoff_s
                                           : DR_PUBSUB_MAX_ACK_DEADLINE_S);
        cJSON_AddStringToObject(r, "maximumBackoff", v);
    }
    if (conf->push_endpoint) {
        cJSON *p = cJSON_AddObjectToObject(o, "pushConfig");
        cJSON_AddStringToObject(p, "pushEndpoint", conf->push_endpoint);
    }
    if (conf->filter) {
        cJSON_AddStringToObject(o, "filter", conf->filter);
    }
    body = dr_json_print(o);
    cJSON_Delete(o);
    return resource_call(ps, "subscriptions", subscription, "PUT", body, cb, ctx);
}

int dr_pubsub_sub_get(struct dr_pubsub *ps, const char *subscription, dr_pubsub_done_cb cb,
                      void *ctx)
{
    return resource_call(ps, "subscriptions", subscription, "GET", NULL, cb, ctx);
}

int dr_pubsub_sub_delete(struct dr_pubsub *ps, const char *subscription, dr_pubsub_done_cb cb,
                         void *ctx)
{
    return resource_call(ps, "subscriptions", subscription, "DELETE", NULL, cb, ctx);
}
