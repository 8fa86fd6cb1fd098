#include "dr/push.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/apikey.h"
#include "dr/err.h"
#include "dr/jwks_source.h"
#include "dr/json.h"
#include "dr/jwt.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/pubsub.h"
#include "dr/util.h"

struct dr_push {
    uv_loop_t *loop;
    const struct dr_config *cfg;
    struct dr_store *store;
    struct dr_local *local;
    struct dr_jwt_keys *keys;
    struct dr_jwks_source *jwks; /* when pubsub.push.jwks is a URL */
};

struct pending {
    struct dr_http_req *req;
    char message_id[160];
};

static const char *topic_for(const struct dr_config *cfg, const char *subscription)
{
    const char *id = strrchr(subscription, '/');
    id = id ? id + 1 : subscription;
    for (size_t i = 0; i < cfg->nsubscriptions; i++) {
        if (strcmp(cfg->subscriptions[i].name, id) == 0) {
            return cfg->subscriptions[i].topic;
        }
    }
    return NULL;
}

int dr_push_claims_ok(const cJSON *claims, const char *service_account)
{
    const char *iss = dr_json_str(claims, "iss");
    const char *email = dr_json_str(claims, "email");

    if (!iss || (strcmp(iss, "https://accounts.google.com") != 0 &&
                 strcmp(iss, "accounts.google.com") != 0)) {
        return 0;
    }
    if (service_account) {
        if (!email || strcasecmp(email, service_account) != 0) {
            return 0;
        }
        if (!dr_json_true(claims, "email_verified")) {
            return 0;
        }
    }
    return 1;
}

int dr_push_message_ok(const char *body, size_t len, const cJSON *m, char *why, size_t whysz)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(m, "data");
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(m, "attributes");
    const cJSON *okey = cJSON_GetObjectItemCaseSensitive(m, "orderingKey");
    const cJSON *a, *b;
    const char *problem;
    int n = 0;

    /* U+0000 would cut a message id or attribute short */
    if ((problem = dr_json_text_problem(body, len))) {
        snprintf(why, whysz, "the body: %s", problem);
        return 0;
    }
    if (data && !cJSON_IsNull(data) && !cJSON_IsString(data)) {
        snprintf(why, whysz, "message.data is not base64");
        return 0;
    }
    if (okey && !cJSON_IsNull(okey) &&
        (!cJSON_IsString(okey) || strlen(okey->valuestring) > DR_PUBSUB_MAX_ORDERING_KEY)) {
        snprintf(why, whysz, "message.orderingKey: a string of at most %d bytes",
                 DR_PUBSUB_MAX_ORDERING_KEY);
        return 0;
    }
    if (!attrs || cJSON_IsNull(attrs)) {
        return 1;
    }
    if (!cJSON_IsObject(attrs)) {
        snprintf(why, whysz, "message.attributes: an object");
        return 0;
    }
    cJSON_ArrayForEach(a, attrs)
    {
        size_t klen = strlen(a->string);
        if (++n > DR_PUBSUB_MAX_ATTRS) {
            snprintf(why, whysz, "message.attributes: at most %d", DR_PUBSUB_MAX_ATTRS);
            return 0;
        }
        if (klen == 0 || klen > DR_PUBSUB_MAX_ATTR_KEY) {
            snprintf(why, whysz, "message.attributes: keys must be 1-%d bytes",
                     DR_PUBSUB_MAX_ATTR_KEY);
            return 0;
        }
        if (!cJSON_IsString(a) || strlen(a->valuestring) > DR_PUBSUB_MAX_ATTR_VALUE) {
            snprintf(why, whysz, "message.attributes[%.*s]: a string of at most %d bytes",
                     (int)(klen > 64 ? 64 : klen), a->string, DR_PUBSUB_MAX_ATTR_VALUE);
            return 0;
        }
        for (b = attrs->child; b != a; b = b->next) {
            if (strcmp(b->string, a->string) == 0) {
                snprintf(why, whysz, "message.attributes: names '%.*s' twice",
                         (int)(klen > 64 ? 64 : klen), a->string);
                return 0;
            }
        }
    }
    return 1;
}

/* 1 when the request may go on; otherwise it has been answered. */
static int authorize(struct dr_push *p, struct dr_http_req *req)
{
    const char *h = dr_http_header(req, "authorization");
    struct dr_jwt_opts o = {.audience = p->cfg->push_audience};
    struct dr_jwt_claims *c = NULL;
    char why[DR_JWT_WHY_SIZE] = "";

    if (!p->cfg->push_audience) {
        /* no OIDC: held like the publish API, a service key (a proxy in front may add it), or
         * loopback when no key is configured; open, anyone reaching the port could inject */
        return dr_apikey_authorize(p->cfg, req, "service");
    }
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        dr_http_respond_error(req, 401, "UNAUTHENTICATED", "a Google OIDC token is required");
        return 0;
    }
    if (dr_jwt_verify(p->keys, h + 7, strlen(h + 7), &o, &c, why, sizeof(why)) != 0) {
        if (strcmp(why, "unknown_kid") == 0) {
            dr_jwks_source_unknown_kid(p->jwks); /* Google rotates its keys: bounded refetch */
        }
        DR_WARN("push", "token refused", "reason=%s peer=%s", why, dr_http_peer(req));
        dr_http_respond_error(req, 401, "UNAUTHENTICATED", "token refused: %s", why);
        return 0;
    }
    if (!dr_push_claims_ok(c->raw, p->cfg->push_service_account)) {
        dr_jwt_claims_destroy(c);
        dr_http_respond_error(req, 403, "PERMISSION_DENIED",
                              "token not issued by Google for the expected service account");
        return 0;
    }
    dr_jwt_claims_destroy(c);
    return 1;
}

static void on_durable(void *ctx, int err)
{
    struct pending *pd = ctx;
    if (err) {
        dr_http_respond_error(pd->req, 503, "UNAVAILABLE", "could not store the message");
    } else {
        dr_metrics_inc("dr_published_total", "source=\"push\"", 1);
        dr_http_respond(pd->req, 204, NULL, "", 0);
    }
    free(pd);
}

/* A pushed message that breaks Pub/Sub's limits, stored as a dead letter on the thread pool. Its
 * bytes are not kept (they may not even be text): the dead letter names it and says why. */
struct invalid {
    struct dr_store *store;
    struct dr_dead_letter dl; /* owned strings */
    int err;
};

static void invalid_work(void *arg)
{
    struct invalid *v = arg;
    v->err = dr_store_dlq_put(v->store, &v->dl);
}

static void invalid_done(struct dr_http_req *req, void *arg)
{
    struct invalid *v = arg;

    if (v->err) {
        /* not stored: refused, Pub/Sub delivers it again */
        DR_ERROR("push", "dead letter not stored", "message_id=%s error=\"%s\"", v->dl.message_id,
                 dr_strerror(v->err));
        dr_http_respond_error(req, 503, "UNAVAILABLE", "could not store the dead letter");
    } else {
        char labels[320];
        snprintf(labels, sizeof(labels), "topic=\"%s\",reason=\"invalid_message\"", v->dl.topic);
        dr_metrics_inc("dr_dead_letters_total", labels, 1);
        dr_http_respond(req, 204, NULL, "", 0);
    }
    dr_dead_letter_cleanup(&v->dl);
    free(v);
}

/* Acknowledges a message that breaks the limits once it is a dead letter: answered 400, Pub/Sub
 * would deliver it again until its retention ran out, and lose it then. */
static void dead_letter_invalid(struct dr_push *p, struct dr_http_req *req, const char *topic,
                                const char *mid, const char *why)
{
    struct invalid *v = dr_xcalloc(1, sizeof(*v));
    cJSON *o = cJSON_CreateObject();
    int64_t now = dr_now_ms();

    cJSON_AddStringToObject(o, "messageId", mid);
    cJSON_AddStringToObject(o, "topic", topic);
    v->store = p->store;
    v->dl.message_json = dr_json_print(o);
    cJSON_Delete(o);
    v->dl.message_id = dr_xstrdup(mid);
    v->dl.topic = dr_xstrdup(topic);
    v->dl.reason = dr_xstrdup("invalid_message");
    v->dl.error = dr_xstrdup(why);
    v->dl.attempts = 1;
    v->dl.first_failure_ms = v->dl.last_failure_ms = v->dl.created_ms = now;
    if (dr_http_defer(req, invalid_work, invalid_done, v) != DR_OK) {
        dr_dead_letter_cleanup(&v->dl);
        free(v);
        dr_http_respond_error(req, 503, "UNAVAILABLE", "busy, try again");
    }
}

static void on_push(struct dr_http_req *req, void *ctx)
{
    struct dr_push *p = ctx;
    size_t blen;
    const char *body = dr_http_body(req, &blen);
    cJSON *root = NULL, *wrapped, *m, *attrs;
    const char *sub, *mid, *data, *okey, *ptime, *topic;
    struct dr_qmsg *q = NULL;
    struct pending *pd;
    size_t dlen = 0;
    char why[160];
    int64_t t;

    if (!authorize(p, req)) {
        return;
    }
    root = dr_json_parse(body, blen);
    m = root ? cJSON_GetObjectItemCaseSensitive(root, "message") : NULL;
    sub = root ? dr_json_str(root, "subscription") : NULL;
    if (!cJSON_IsObject(m) || !sub) {
        /* 400 makes Pub/Sub retry forever; a body that is not a push body never gets better,
         * but the error must be visible: keep 400 and log it. */
        DR_WARN("push", "malformed push body", "peer=%s bytes=%zu", dr_http_peer(req), blen);
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT",
                              "expected {\"message\":{...},\"subscription\":\"...\"}");
        goto out;
    }
    topic = topic_for(p->cfg, sub);
    if (!topic) {
        dr_http_respond_error(req, 404, "NOT_FOUND", "subscription %s is not configured", sub);
        goto out;
    }
    mid = dr_json_str(m, "messageId");
    if (!mid) {
        mid = dr_json_str(m, "message_id");
    }
    if (!mid || !*mid || strlen(mid) > 128) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "message.messageId is required");
        goto out;
    }
    if (!dr_push_message_ok(body, blen, m, why, sizeof(why))) {
        struct dr_log_field f[] = {DR_LOG_STR("message_id", mid), DR_LOG_STR("reason", why),
                                   DR_LOG_STR("peer", dr_http_peer(req))};
        dr_log_fields(DR_LOG_WARN, "push", "push message dead-lettered", f, DR_ARRAY_LEN(f));
        dead_letter_invalid(p, req, topic, mid, why);
        goto out;
    }
    q = dr_xcalloc(1, sizeof(*q));
    data = dr_json_str(m, "data");
    if (data && dr_base64_decode(data, strlen(data), &q->data, &dlen) != 0) {
        DR_WARN("push", "push message dead-lettered", "message_id=%s reason=\"%s\"", mid,
                "message.data is not base64");
        dead_letter_invalid(p, req, topic, mid, "message.data is not base64");
        goto out;
    }
    q->data_len = dlen;
    attrs = cJSON_GetObjectItemCaseSensitive(m, "attributes");
    wrapped = attrs ? cJSON_Duplicate(attrs, 1) : cJSON_CreateObject();
    q->attrs_json = dr_json_print(wrapped);
    cJSON_Delete(wrapped);
    okey = dr_json_str(m, "orderingKey");
    q->ordering_key = okey && *okey ? dr_xstrdup(okey) : NULL;
    ptime = dr_json_str(m, "publishTime");
    q->publish_time_ms = ptime && dr_parse_time(ptime, &t) == 0 ? t : dr_now_ms();
    q->message_id = dr_xstrdup(mid);
    q->topic = dr_xstrdup(topic);
    pd = dr_xcalloc(1, sizeof(*pd));
    pd->req = req;
    snprintf(pd->message_id, sizeof(pd->message_id), "%s", mid);
    dr_local_enqueue(p->local, q, 1, on_durable, pd);
    q = NULL;
out:
    if (q) {
        dr_qmsgs_free(q, 1);
    }
    cJSON_Delete(root);
}

int dr_push_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_store *store,
                   struct dr_local *local, struct dr_push **out)
{
    struct dr_push *p = dr_xcalloc(1, sizeof(*p));

    p->loop = loop;
    p->cfg = cfg;
    p->store = store;
    p->local = local;
    p->keys = dr_jwt_keys_create();
    if (cfg->push_audience) {
        if (!cfg->push_jwks) {
            DR_ERROR("push", "pubsub.push.audience needs pubsub.push.jwks", "%s", "");
            dr_push_destroy(p);
            return DR_EINVAL;
        }
        if (dr_jwks_is_url(cfg->push_jwks)) {
            if (dr_jwks_source_create(loop, p->keys, cfg->push_jwks, &p->jwks) != DR_OK) {
                dr_push_destroy(p);
                return DR_EINVAL;
            }
        } else {
            FILE *f = fopen(cfg->push_jwks, "rb");
            char *buf = dr_xmalloc(DR_JWKS_MAX_SIZE + 1);
            size_t n = f ? fread(buf, 1, DR_JWKS_MAX_SIZE + 1, f) : 0;
            if (f) {
                fclose(f);
            }
            if (!f || dr_jwt_keys_load_jwks(p->keys, buf, n) != 0) {
                DR_ERROR("push", "cannot load the JWKS file", "path=\"%s\"", cfg->push_jwks);
                free(buf);
                dr_push_destroy(p);
                return DR_EINVAL;
            }
            free(buf);
        }
    }
    *out = p;
    return DR_OK;
}

void dr_push_register(struct dr_push *p, struct dr_http_server *srv)
{
    dr_http_route(srv, "POST", "/pubsub/push", on_push, p);
}

void dr_push_destroy(struct dr_push *p)
{
    if (!p) {
        return;
    }
    dr_jwks_source_destroy(p->jwks);
    dr_jwt_keys_destroy(p->keys);
    free(p);
}
