/*
 * The real-time module: its configuration (one table drives defaults, bounds and key names), key
 * loading, the GET /ws and GET /events entry points (refusals happen here, before any upgrade),
 * and the module's life cycle.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/devtoken.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/util.h"
#include "realtime/redis_bus.h"
#include "realtime/rt_int.h"

struct dr_realtime {
    char *jwks_url;
    struct rt_conf conf;
    struct dr_jwt_keys *keys;
    struct dr_hub hub;
    struct dr_redis_bus *bus; /* NULL without REDIS_URL */
    int stopped;
};

/* ---- configuration ---- */

enum kind { K_UINT, K_SIZE, K_DOUBLE, K_MS, K_INT };

struct conf_key {
    const char *name;
    enum kind kind;
    size_t off;
    double def, min, max;
};

#define OFF(f) offsetof(struct rt_conf, f)
static const struct conf_key conf_keys[] = {
    {"max_connections", K_UINT, OFF(max_connections), 10000, 1, 1e6},
    {"max_connections_per_user", K_UINT, OFF(max_per_user), 10, 1, 1e4},
    {"max_rooms", K_UINT, OFF(max_rooms), 32, 2, 1024},
    {"max_frame_bytes", K_SIZE, OFF(max_frame), 65536, 128, 16 * 1024 * 1024},
    {"max_queue_bytes", K_SIZE, OFF(max_queue_bytes), 1048576, 1024, 256 * 1024 * 1024},
    {"max_buffered", K_UINT, OFF(max_buffered), 1000, 1, 1e6},
    {"rate", K_DOUBLE, OFF(rate), 20, 0.1, 1e5},
    {"burst", K_DOUBLE, OFF(burst), 40, 1, 1e5},
    {"heartbeat", K_MS, OFF(heartbeat_ms), 25000, 50, 3600000},
    {"idle_timeout", K_MS, OFF(idle_timeout_ms), 75000, 100, 86400000},
    {"auth_timeout", K_MS, OFF(auth_timeout_ms), 5000, 50, 600000},
    {"close_timeout", K_MS, OFF(close_timeout_ms), 5000, 50, 600000},
    {"sse_retry", K_MS, OFF(sse_retry_ms), 3000, 0, 3600000},
    {"catchup_page", K_UINT, OFF(catchup_page), 500, 1, 100000},
    {"send_buffer", K_INT, OFF(send_buffer), 0, 0, 64 * 1024 * 1024},
    {"jwt_leeway", K_INT, OFF(leeway_s), 30, 0, DR_JWT_LEEWAY_MAX},
};
static const char *const string_keys[] = {"jwt_secret", "jwt_hs_alg", "jwks", "jwt_issuer",
                                          "jwt_audience"};

static int conf_num(const cJSON *v, enum kind kind, double *out)
{
    int64_t ms;

    /* a duration is a string with its unit (dr_parse_duration), or 0 on its own: a bare number
     * is refused, as everywhere in the configuration (core/config.c) */
    if (cJSON_IsNumber(v) && (kind != K_MS || v->valuedouble == 0)) {
        *out = v->valuedouble;
        return DR_OK;
    }
    if (kind == K_MS && cJSON_IsString(v) && dr_parse_duration(v->valuestring, &ms) == DR_OK) {
        *out = (double)ms;
        return DR_OK;
    }
    return DR_EINVAL;
}

static int load_conf(const cJSON *sec, struct rt_conf *c, char *err, size_t errsz)
{
    const cJSON *e;

    for (size_t i = 0; i < DR_ARRAY_LEN(conf_keys); i++) {
        const struct conf_key *k = &conf_keys[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, k->name);
        double d = k->def;
        char *p = (char *)c + k->off;

        if (v && (conf_num(v, k->kind, &d) != DR_OK || d < k->min || d > k->max)) {
            snprintf(err, errsz, "realtime.%s: must be a %s between %g and %g", k->name,
                     k->kind == K_MS ? "duration (ms)" : "number", k->min, k->max);
            return DR_EINVAL;
        }
        switch (k->kind) {
        case K_UINT:
            *(unsigned *)p = (unsigned)d;
            break;
        case K_SIZE:
            *(size_t *)p = (size_t)d;
            break;
        case K_DOUBLE:
            *(double *)p = d;
            break;
        case K_MS:
            *(int64_t *)p = (int64_t)d;
            break;
        case K_INT:
            *(int *)p = (int)d;
            break;
        }
    }
    cJSON_ArrayForEach(e, sec)
    {
        int known = 0;
        for (size_t i = 0; i < DR_ARRAY_LEN(conf_keys) && !known; i++) {
            known = strcmp(e->string, conf_keys[i].name) == 0;
        }
        for (size_t i = 0; i < DR_ARRAY_LEN(string_keys) && !known; i++) {
            known =
                strcmp(e->string, string_keys[i]) == 0 && (cJSON_IsString(e) || cJSON_IsNull(e));
        }
        if (!known) {
            snprintf(err, errsz, "realtime.%s: unknown key or not a string", e->string);
            return DR_EINVAL;
        }
    }
    if (c->leeway_s == 0) {
        c->leeway_s = DR_JWT_NO_LEEWAY;
    }
    return DR_OK;
}

/* The environment wins over the YAML (secrets belong in the environment). */
static const char *setting(const cJSON *sec, const char *key, const char *env)
{
    const char *s = getenv(env);
    if (s && *s) {
        return s;
    }
    s = dr_json_str(sec, key);
    return s && *s ? s : NULL;
}

static int load_jwks_file(struct dr_jwt_keys *keys, const char *path, char *err, size_t errsz)
{
    FILE *f;
    char *buf;
    size_t n;
    int rc;

    if (dr_jwks_is_url(path)) {
        return DR_OK; /* fetched once the loop runs (dr_realtime_create) */
    }
    f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "realtime.jwks: cannot open '%s'", path);
        return DR_EIO;
    }
    buf = dr_xmalloc(DR_JWKS_MAX_SIZE + 1);
    n = fread(buf, 1, DR_JWKS_MAX_SIZE + 1, f);
    fclose(f);
    if (n > DR_JWKS_MAX_SIZE) {
        snprintf(err, errsz, "realtime.jwks: '%s' is larger than %d bytes", path, DR_JWKS_MAX_SIZE);
        free(buf);
        return DR_ETOOBIG;
    }
    rc = dr_jwt_keys_load_jwks(keys, buf, n);
    free(buf);
    if (rc) {
        snprintf(err, errsz, "realtime.jwks: '%s' holds no usable key (see the log)", path);
    }
    return rc;
}

static int load_keys(struct dr_realtime *rt, const struct dr_config *cfg, const cJSON *sec,
                     char *err, size_t errsz)
{
    char dev[DR_DEVTOKEN_SECRET_LEN + 1], deverr[256] = "";
    const char *secret = setting(sec, "jwt_secret", "DR_JWT_SECRET");
    const char *alg = setting(sec, "jwt_hs_alg", "DR_JWT_HS_ALG");
    const char *jwks = setting(sec, "jwks", "DR_JWKS");
    const char *iss = setting(sec, "jwt_issuer", "DR_JWT_ISSUER");
    const char *aud = setting(sec, "jwt_audience", "DR_JWT_AUDIENCE");

    rt->keys = dr_jwt_keys_create();
    /* Local development without JWT configuration: accept the dashboard's development tokens
     * (dr/devtoken.h); an unusable secret file only turns them off. */
    if (!secret && !jwks && dr_devtoken_enabled(cfg)) {
        if (dr_devtoken_secret(cfg, dev, sizeof(dev), deverr, sizeof(deverr)) == DR_OK) {
            secret = dev;
        } else {
            DR_WARN("realtime", "development tokens are off", "error=\"%s\"", deverr);
        }
    }
    if (secret && dr_jwt_keys_set_secret(rt->keys, secret, strlen(secret)) != DR_OK) {
        snprintf(err, errsz, "realtime.jwt_secret (DR_JWT_SECRET): must be at least %d bytes",
                 DR_JWT_MIN_SECRET);
        return DR_EINVAL;
    }
    if (alg && dr_jwt_keys_set_hs_alg(rt->keys, alg) != DR_OK) {
        snprintf(err, errsz, "realtime.jwt_hs_alg: '%s' is not HS256, HS384 or HS512", alg);
        return DR_EINVAL;
    }
    if (jwks && load_jwks_file(rt->keys, jwks, err, errsz) != DR_OK) {
        return DR_EINVAL;
    }
    if (dr_jwks_is_url(jwks)) {
        rt->jwks_url = dr_xstrdup(jwks);
    }
    rt->conf.issuer = dr_xstrdup(iss);
    rt->conf.audience = dr_xstrdup(aud);
    if (!secret && !jwks) {
        DR_WARN("realtime", "no JWT keys configured: real-time clients will be refused",
                "hint=\"set DR_JWT_SECRET or DR_JWKS\"");
    }
    explicit_bzero(dev, sizeof(dev));
    return DR_OK;
}

/* ---- entry points ---- */

static int refuse_busy(struct dr_hub *hub, struct dr_http_req *req)
{
    if (hub->closing) {
        dr_http_respond_error(req, 503, "UNAVAILABLE", "shutting down");
        return 1;
    }
    if (hub->nconns >= hub->conf->max_connections) {
        dr_metrics_inc(RT_M_REFUSED, "reason=\"instance_limit\"", 1);
        dr_http_add_header(req, "Retry-After", "5");
        dr_http_respond_error(req, 503, "UNAVAILABLE", "too many real-time connections");
        return 1;
    }
    return 0;
}

static int refuse_user_limit(struct dr_hub *hub, struct dr_http_req *req,
                             struct dr_jwt_claims *claims)
{
    if (dr__hub_user_count(hub, claims->sub) < hub->conf->max_per_user) {
        return 0;
    }
    dr_metrics_inc(RT_M_REFUSED, "reason=\"per_user_limit\"", 1);
    dr_http_add_header(req, "Retry-After", "5");
    dr_http_respond_error(req, 429, "RESOURCE_EXHAUSTED", "too many connections for this user");
    dr_jwt_claims_destroy(claims);
    return 1;
}

/* since from a query parameter or header value: -1 when absent, -2 when malformed. */
static int64_t parse_since(const char *s)
{
    int64_t v;
    if (!s || !*s) {
        return -1;
    }
    return dr_parse_int(s, 0, INT64_MAX, &v) == DR_OK ? v : -2;
}

/* since from the query string: -1 when absent, -2 when malformed (empty, not a seq, a %00 in
 * it, longer than a seq can be: cut short, it would read as another seq). */
static int64_t query_since(const struct dr_http_req *req)
{
    char err[128];
    int64_t v = -1;
    int rc = dr_http_query_int(req, "since", 0, INT64_MAX, &v, err, sizeof(err));

    return rc == DR_OK ? v : rc == DR_ENOTFOUND ? -1 : -2;
}

static void on_ws(struct dr_http_req *req, void *ctx)
{
    struct dr_hub *hub = ctx;
    struct dr_jwt_claims *claims = NULL;
    char *token = NULL;
    int64_t since;
    int err;

    if (refuse_busy(hub, req)) {
        return;
    }
    since = query_since(req);
    if (since == -2) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "since must be a seq (>= 0)");
        return;
    }
    err = dr__rt_request_token(req, &token);
    if (err != DR_ENOTFOUND) {
        /* a token given with the request is checked before the upgrade */
        if (dr__rt_authenticate(hub, req, &claims) != DR_OK) {
            free(token);
            return;
        }
        if (refuse_user_limit(hub, req, claims)) {
            free(token);
            return;
        }
    }
    free(token);
    dr__ws_start(hub, req, claims, since);
}

struct sse_job {
    struct dr_hub *hub;
    struct dr_jwt_claims *claims;
    int64_t since;
    char **rooms;
    size_t nrooms;
    int allowed;
    const char *refused; /* the room not allowed (one of rooms) */
    int err;
};

static void sse_job_free(struct sse_job *j)
{
    for (size_t i = 0; i < j->nrooms; i++) {
        free(j->rooms[i]);
    }
    free(j->rooms);
    dr_jwt_claims_destroy(j->claims);
    free(j);
}

static void sse_check_work(void *arg)
{
    struct sse_job *j = arg;
    j->allowed = 1;
    for (size_t i = 0; i < j->nrooms && j->allowed && !j->err; i++) {
        j->err = dr__rt_may_join(j->hub->db, j->claims, j->rooms[i], &j->allowed);
        j->refused = j->rooms[i];
    }
}

static void sse_go(struct dr_http_req *req, struct sse_job *j)
{
    if (j->err) {
        dr_http_respond_error(req, 503, "UNAVAILABLE", "permission check failed, try again");
    } else if (!j->allowed) {
        dr_metrics_inc(RT_M_REFUSED, "reason=\"forbidden\"", 1);
        /* named, so that a client drops that room and not the others it resumes */
        dr_http_respond_error(req, 403, "PERMISSION_DENIED", "not allowed to join %s",
                              j->refused ? j->refused : "a room");
    } else if (refuse_busy(j->hub, req)) {
        /* the claims go with the job */
    } else if (refuse_user_limit(j->hub, req, j->claims)) {
        j->claims = NULL; /* refuse_user_limit freed them */
    } else {
        dr__sse_start(j->hub, req, j->claims, j->since, j->rooms, j->nrooms);
        j->claims = NULL;
    }
    sse_job_free(j);
}

static void sse_check_done(struct dr_http_req *req, void *arg)
{
    sse_go(req, arg);
}

static void on_events(struct dr_http_req *req, void *ctx)
{
    struct dr_hub *hub = ctx;
    struct sse_job *j;
    char *rooms, *save = NULL;
    int need_store = 0;

    if (refuse_busy(hub, req)) {
        return;
    }
    j = dr_xcalloc(1, sizeof(*j));
    j->hub = hub;
    j->since = parse_since(dr_http_header(req, "Last-Event-ID"));
    if (j->since == -1) {
        j->since = query_since(req);
    }
    if (j->since == -2) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "Last-Event-ID/since must be a seq");
        goto fail;
    }
    rooms = dr_xmalloc(8192);
    switch (dr_http_query_param(req, "rooms", rooms, 8192)) {
    case DR_ETOOBIG:
        free(rooms);
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "rooms parameter too long");
        goto fail;
    case DR_EINVAL:
        free(rooms);
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "rooms: must not hold %%00");
        goto fail;
    default:
        break;
    }
    if (dr_http_query_param(req, "rooms", rooms, 8192) == DR_OK) {
        for (char *r = strtok_r(rooms, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
            if (!dr_room_valid(r)) {
                free(rooms);
                dr_http_respond_error(req, 400, "INVALID_ARGUMENT",
                                      "rooms: not a room name (user:, org:, meeting: or "
                                      "shipment: and 1-128 printable ASCII characters, no spaces)");
                goto fail;
            }
            if (j->nrooms >= hub->conf->max_rooms) {
                free(rooms);
                dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "rooms: at most %u",
                                      hub->conf->max_rooms);
                goto fail;
            }
            j->rooms = dr_xrealloc(j->rooms, (j->nrooms + 1) * sizeof(*j->rooms));
            j->rooms[j->nrooms++] = dr_xstrdup(r);
        }
    }
    free(rooms);
    if (dr__rt_authenticate(hub, req, &j->claims) != DR_OK) {
        sse_job_free(j);
        return;
    }
    j->allowed = 1;
    for (size_t i = 0; i < j->nrooms && j->allowed; i++) {
        int allowed;
        if (dr__rt_may_join_local(j->claims, j->rooms[i], &allowed) != 0) {
            need_store = 1;
        } else if (!allowed) {
            j->allowed = 0;
            j->refused = j->rooms[i];
        }
    }
    if (need_store && j->allowed) {
        if (dr_http_defer(req, sse_check_work, sse_check_done, j) != DR_OK) {
            dr_http_respond_error(req, 503, "UNAVAILABLE", "busy, try again");
            goto fail;
        }
        return;
    }
    sse_go(req, j);
    return;
fail:
    sse_job_free(j);
}

/* ---- life cycle ---- */

static void describe_metrics(void)
{
    dr_metrics_describe(RT_M_CONNS, "gauge", "Open real-time connections by transport.");
    dr_metrics_describe(RT_M_ROOMS, "gauge", "Rooms with at least one connection.");
    dr_metrics_describe(RT_M_DELIVERED, "counter", "Events written to clients, by transport.");
    dr_metrics_describe(RT_M_DROPPED, "counter",
                        "Events not written, by reason (duplicate, queue_full, ...).");
    dr_metrics_describe(RT_M_SLOW, "counter", "Connections closed for not reading (4008).");
    dr_metrics_describe(RT_M_LATENCY, "histogram",
                        "From the router receiving a notification to its write to a client.");
    dr_metrics_describe(
        RT_M_STORED, "counter",
        "Client notifications consumed, by outcome (stored, duplicate, invalid, refused).");
    dr_metrics_describe(RT_M_REFUSED, "counter",
                        "Real-time connections or messages refused, by reason.");
}

int dr_realtime_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_store *store,
                       struct dr_realtime **out, char *err, size_t errsz)
{
    struct dr_realtime *rt = dr_xcalloc(1, sizeof(*rt));
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(cfg->root, "realtime");
    int rc;

    *out = NULL;
    if (sec && !cJSON_IsObject(sec) && !cJSON_IsNull(sec)) {
        snprintf(err, errsz, "realtime: must be a mapping");
        rc = DR_EINVAL;
        goto fail;
    }
    rc = load_conf(cJSON_IsObject(sec) ? sec : NULL, &rt->conf, err, errsz);
    if (!rc) {
        rc = load_keys(rt, cfg, cJSON_IsObject(sec) ? sec : NULL, err, errsz);
    }
    if (!rc && (rc = dr__rt_migrate(dr_store_db(store))) != DR_OK) {
        snprintf(err, errsz, "realtime: migrating the store failed: %s", dr_strerror(rc));
    }
    if (!rc && cfg->redis_url && *cfg->redis_url) {
        rc = dr__redis_bus_create(loop, cfg, &rt->hub, dr_store_db(store), &rt->bus, err, errsz);
    }
    if (rc) {
        goto fail;
    }
    describe_metrics();
    dr__hub_init(&rt->hub, loop, &rt->conf, dr_store_db(store), rt->keys);
    rt->hub.rt = rt;
    rt->hub.cfg = cfg;
    if (rt->jwks_url && dr_jwks_source_create(loop, rt->keys, rt->jwks_url,
                                              &rt->hub.jwks_src) != DR_OK) {
        DR_WARN("realtime", "cannot fetch the JWKS URL", "%s", "");
    }
    dr__hub_set_current(&rt->hub);
    dr__redis_bus_start(rt->bus);
    *out = rt;
    return DR_OK;
fail:
    dr_jwt_keys_destroy(rt->keys);
    free(rt->jwks_url);
    free(rt->conf.issuer);
    free(rt->conf.audience);
    free(rt);
    return rc;
}

void dr_realtime_register(struct dr_realtime *rt, struct dr_http_server *srv)
{
    dr_http_route(srv, "GET", "/ws", on_ws, &rt->hub);
    dr_http_route(srv, "GET", "/events", on_events, &rt->hub);
    dr_http_route(srv, "POST", "/api/v1/publish", dr__rt_publish_route, &rt->hub);
    dr_http_route(srv, NULL, "/api/v1/notifications", dr__rt_inbox_route, &rt->hub);
    dr_http_route(srv, NULL, "/api/v1/notifications/*", dr__rt_inbox_route, &rt->hub);
    dr_http_route(srv, NULL, "/admin/connections", dr__rt_connections_route, &rt->hub);
    dr_http_route(srv, NULL, "/admin/connections/*", dr__rt_connections_route, &rt->hub);
}

void dr_realtime_close_clients(struct dr_realtime *rt)
{
    if (rt && !rt->stopped) {
        dr__hub_close_clients(&rt->hub);
    }
}

int dr_realtime_busy(struct dr_realtime *rt)
{
    if (!rt || rt->stopped) {
        return 0;
    }
    return dr__hub_busy(&rt->hub) || dr__redis_bus_busy(rt->bus);
}

void dr_realtime_stop(struct dr_realtime *rt)
{
    if (!rt || rt->stopped) {
        return;
    }
    rt->stopped = 1;
    dr_jwks_source_destroy(rt->hub.jwks_src);
    rt->hub.jwks_src = NULL;
    dr__redis_bus_stop(rt->bus);
    if (dr__hub_current() == &rt->hub) {
        dr__hub_set_current(NULL);
    }
    dr__hub_stop(&rt->hub);
}

void dr_realtime_destroy(struct dr_realtime *rt)
{
    if (!rt) {
        return;
    }
    dr_realtime_stop(rt);
    dr__redis_bus_destroy(rt->bus);
    dr__hub_cleanup(&rt->hub);
    dr_jwt_keys_destroy(rt->keys);
    free(rt->jwks_url);
    free(rt->conf.issuer);
    free(rt->conf.audience);
    free(rt);
}

struct dr_hub *dr_realtime_hub(struct dr_realtime *rt)
{
    return &rt->hub;
}

int dr_realtime_bus_up(const struct dr_realtime *rt)
{
    if (!rt || !rt->bus) {
        return -1;
    }
    return dr__redis_bus_up(rt->bus);
}
