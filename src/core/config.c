#include "dr/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dr/err.h"
#include "dr/gcp_auth.h"
#include "dr/json.h"
#include "dr/local.h"
#include "dr/log.h"
#include "dr/processor.h"
#include "dr/pubsub.h"
#include "dr/ratelimit.h"
#include "dr/realtime.h"
#include "dr/util.h"

#define MAX_CONFIG_BYTES (4 * 1024 * 1024)

/* Validation context: the file name and an error buffer. */
struct vctx {
    const char *file;
    char *err;
    size_t errsz;
    int failed;
};

static int fail(struct vctx *v, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct vctx *v, const char *key, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    if (v->failed) {
        return DR_EINVAL;
    }
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    snprintf(v->err, v->errsz, "%s: %s: %s", v->file, key, reason);
    v->failed = 1;
    return DR_EINVAL;
}

int dr_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    int64_t whole = 0, frac = 0, scale = 1;
    const char *p = s;

    /* digits, then a fraction and a unit, parsed in integers: strtod() would also take "nan",
     * "inf", hex, exponents and white space, and converting a double that does not fit an
     * int64_t is undefined */
    if (!s || *p < '0' || *p > '9') {
        return DR_EINVAL;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > DR_DURATION_MAX_MS) {
            return DR_ETOOBIG;
        }
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        if (p[1] < '0' || p[1] > '9') {
            return DR_EINVAL;
        }
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (scale < 1000000000) { /* digits below a nanosecond do not count */
                frac = frac * 10 + (*p - '0');
                scale *= 10;
            }
        }
    }
    for (size_t i = 0; i < DR_ARRAY_LEN(units); i++) {
        if (strcmp(p, units[i].name) == 0) {
            if (whole > DR_DURATION_MAX_MS / units[i].ms) {
                return DR_ETOOBIG;
            }
            whole = whole * units[i].ms + frac * units[i].ms / scale;
            if (whole > DR_DURATION_MAX_MS) {
                return DR_ETOOBIG;
            }
            *ms = whole;
            return DR_OK;
        }
    }
    if (!*p && whole == 0 && frac == 0) {
        *ms = 0; /* zero is zero in any unit */
        return DR_OK;
    }
    return DR_EINVAL;
}

/* A number without a unit: taken for a duration it would be a guess ("10": ms? s?). */
static int unitless(const char *s)
{
    return *s && strspn(s, "0123456789.") == strlen(s);
}

/* ms in the largest unit that gives a whole number: "36500d", "24h", "250ms". */
static const char *duration_str(int64_t ms, char out[32])
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};

    for (size_t i = 0; ms && i < DR_ARRAY_LEN(units); i++) {
        if (ms % units[i].ms == 0) {
            snprintf(out, 32, "%lld%s", (long long)(ms / units[i].ms), units[i].name);
            return out;
        }
    }
    snprintf(out, 32, "%lldms", (long long)ms);
    return out;
}

/* Typed getters: absent keys keep *out; a wrong type fails naming the key. */
static void get_str(struct vctx *v, const cJSON *obj, const char *key, const char *path,
                    char **out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    char full[256];

    if (!it || cJSON_IsNull(it)) {
        return;
    }
    snprintf(full, sizeof(full), "%s%s%s", path, *path ? "." : "", key);
    if (cJSON_IsNumber(it)) {
        char num[64];
        snprintf(num, sizeof(num), "%.15g", it->valuedouble);
        free(*out);
        *out = dr_xstrdup(num);
        return;
    }
    if (!cJSON_IsString(it)) {
        fail(v, full, "expected a string");
        return;
    }
    free(*out);
    *out = dr_xstrdup(it->valuestring);
}

static void get_int(struct vctx *v, const cJSON *obj, const char *key, const char *path,
                    int64_t min, int64_t max, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    char full[256];
    int64_t n;

    if (!it || cJSON_IsNull(it)) {
        return;
    }
    snprintf(full, sizeof(full), "%s%s%s", path, *path ? "." : "", key);
    /* dr_json_i64() refuses numbers beyond int64_t before converting them */
    if (!cJSON_IsNumber(it) || dr_json_i64(obj, key, &n) != DR_OK) {
        fail(v, full, "expected an integer");
        return;
    }
    if (n < min || n > max) {
        fail(v, full, "must be between %lld and %lld", (long long)min, (long long)max);
        return;
    }
    *out = n;
}

static void get_double(struct vctx *v, const cJSON *obj, const char *key, const char *path,
                       double min, double max, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    char full[256];

    if (!it || cJSON_IsNull(it)) {
        return;
    }
    snprintf(full, sizeof(full), "%s%s%s", path, *path ? "." : "", key);
    if (!cJSON_IsNumber(it) || it->valuedouble < min || it->valuedouble > max) {
        fail(v, full, "expected a number between %g and %g", min, max);
        return;
    }
    *out = it->valuedouble;
}

/* A duration ("30s") from min to max ms (at most DR_DURATION_MAX_MS). */
static void get_duration(struct vctx *v, const cJSON *obj, const char *key, const char *path,
                         int64_t min, int64_t max, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    char full[256], lo[32], hi[32];
    int64_t ms = -1;
    int rc = DR_EINVAL;

    if (!it || cJSON_IsNull(it)) {
        return;
    }
    snprintf(full, sizeof(full), "%s%s%s", path, *path ? "." : "", key);
    if (cJSON_IsNumber(it) && it->valuedouble == 0) {
        rc = DR_OK;
        ms = 0;
    } else if (cJSON_IsNumber(it) && isfinite(it->valuedouble)) {
        /* 10 is neither 10 ms nor 10 s: whichever was meant, the other would be a trap */
        fail(v, full, "give a unit: ms, s, m, h or d, such as 10s (not %.15g)", it->valuedouble);
        return;
    } else if (cJSON_IsNumber(it)) {
        rc = DR_ETOOBIG; /* 1e999 or -.inf */
    } else if (cJSON_IsString(it)) {
        rc = dr_parse_duration(it->valuestring, &ms);
    }
    if (rc == DR_EINVAL && cJSON_IsString(it) && unitless(it->valuestring)) {
        fail(v, full, "give a unit: ms, s, m, h or d, such as 10s (not '%.40s')", it->valuestring);
        return;
    }
    if (rc == DR_EINVAL) {
        if (cJSON_IsString(it)) {
            fail(v, full, "expected a duration such as 250ms, 30s, 5m, 24h, not '%.40s'",
                 it->valuestring);
        } else {
            fail(v, full, "expected a duration such as 250ms, 30s, 5m, 24h");
        }
        return;
    }
    if (rc || ms < min || ms > max) {
        fail(v, full, "out of range: must be from %s to %s", duration_str(min, lo),
             duration_str(max, hi));
        return;
    }
    *out = ms;
}

static void get_bool(struct vctx *v, const cJSON *obj, const char *key, const char *path,
                     int *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    char full[256];

    if (!it || cJSON_IsNull(it)) {
        return;
    }
    snprintf(full, sizeof(full), "%s%s%s", path, *path ? "." : "", key);
    if (!cJSON_IsBool(it)) {
        fail(v, full, "expected true or false");
        return;
    }
    *out = cJSON_IsTrue(it);
}

/* A string or a list of strings. */
static void get_strlist(struct vctx *v, const cJSON *it, const char *path, char ***out,
                        size_t *n)
{
    const cJSON *e;
    size_t i = 0;

    if (!it || cJSON_IsNull(it)) {
        return;
    }
    if (cJSON_IsString(it)) {
        *out = dr_xcalloc(1, sizeof(char *));
        (*out)[0] = dr_xstrdup(it->valuestring);
        *n = 1;
        return;
    }
    if (!cJSON_IsArray(it)) {
        fail(v, path, "expected a string or a list of strings");
        return;
    }
    *out = dr_xcalloc((size_t)cJSON_GetArraySize(it) + 1, sizeof(char *));
    cJSON_ArrayForEach(e, it)
    {
        if (!cJSON_IsString(e)) {
            char full[256];
            snprintf(full, sizeof(full), "%s[%zu]", path, i);
            fail(v, full, "expected a string");
            break;
        }
        (*out)[i++] = dr_xstrdup(e->valuestring);
    }
    *n = i;
}

static void check_keys(struct vctx *v, const cJSON *obj, const char *path,
                       const char *const *allowed)
{
    const cJSON *e;

    if (!cJSON_IsObject(obj)) {
        fail(v, *path ? path : "(top level)", "expected a mapping");
        return;
    }
    cJSON_ArrayForEach(e, obj)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++) {
            if (strcmp(e->string, allowed[i]) == 0) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            char full[256];
            snprintf(full, sizeof(full), "%s%s%s", path, *path ? "." : "", e->string);
            fail(v, full, "unknown key");
            return;
        }
    }
}

/* The mapping root.name checked against its keys; NULL when it is absent or empty ("store:" with
 * every setting commented out). */
static const cJSON *section(struct vctx *v, const cJSON *root, const char *name,
                            const char *const *allowed)
{
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, name);

    if (!sec || cJSON_IsNull(sec)) {
        return NULL;
    }
    check_keys(v, sec, name, allowed);
    return cJSON_IsObject(sec) ? sec : NULL;
}

/* 1 when keys (NULL-terminated, or NULL) lists name; *nested: when it lists "name.x" too. */
static int listed(const char *const *keys, const char *name, int *nested)
{
    size_t n = strlen(name);
    int found = 0;

    *nested = 0;
    for (size_t i = 0; keys && keys[i]; i++) {
        if (strncmp(keys[i], name, n) == 0) {
            found |= keys[i][n] == '\0';
            *nested |= keys[i][n] == '.';
        }
    }
    return found;
}

/* A processor's section against its registration's config_keys (dr/processor.h): obj holds
 * settings whose names, after prefix ("" or "a."), are listed; the mapping under a listed key a
 * whose settings are listed too ("a.b") is checked the same way. */
static void check_processor_keys(struct vctx *v, const cJSON *obj, const char *path,
                                 const char *prefix, const char *const *keys)
{
    const cJSON *e;
    char name[256], sub[512];
    int nested;

    if (!cJSON_IsObject(obj)) {
        fail(v, path, "expected a mapping of setting: value");
        return;
    }
    cJSON_ArrayForEach(e, obj)
    {
        snprintf(name, sizeof(name), "%s%s", prefix, e->string);
        snprintf(sub, sizeof(sub), "%s.%s", path, e->string);
        /* a dot in config_keys stands for nesting, never for a setting's own name */
        if (strchr(e->string, '.') || !listed(keys, name, &nested)) {
            fail(v, sub, "unknown key");
            return;
        }
        if (nested && !cJSON_IsNull(e)) {
            snprintf(name, sizeof(name), "%s%s.", prefix, e->string);
            check_processor_keys(v, e, sub, name, keys);
        }
    }
}

static void parse_retry(struct vctx *v, const cJSON *obj, const char *path,
                        struct dr_retry_policy *r)
{
    static const char *const keys[] = {"max_attempts", "initial", "multiplier", "max", "jitter",
                                       NULL};
    int64_t attempts = r->max_attempts;

    check_keys(v, obj, path, keys);
    get_int(v, obj, "max_attempts", path, 1, 1000, &attempts);
    r->max_attempts = (int)attempts;
    get_duration(v, obj, "initial", path, 0, DR_DURATION_MAX_MS, &r->initial_ms);
    get_double(v, obj, "multiplier", path, 1.0, 100.0, &r->multiplier);
    get_duration(v, obj, "max", path, 0, DR_DURATION_MAX_MS, &r->max_ms);
    get_double(v, obj, "jitter", path, 0.0, 1.0, &r->jitter);
    if (!v->failed && r->initial_ms > r->max_ms) {
        /* a type's policy starts from the default's values, so either may be the larger */
        char full[300];
        snprintf(full, sizeof(full), "%s.initial", path);
        fail(v, full, "%lldms is larger than max (%lldms)", (long long)r->initial_ms,
             (long long)r->max_ms);
    }
}

static void parse_route(struct vctx *v, const cJSON *obj, const char *path, struct dr_route *rt)
{
    static const char *const keys[] = {"name", "match", "processors", "default", "priority",
                                       "ordering_key", NULL};
    static const char *const mkeys[] = {"topic", "type", "attributes", "payload", NULL};
    const cJSON *match, *procs, *e;
    char sub[256];
    int64_t prio = -1;

    check_keys(v, obj, path, keys);
    if (v->failed) {
        return;
    }
    get_str(v, obj, "name", path, &rt->name);
    get_bool(v, obj, "default", path, &rt->is_default);
    get_int(v, obj, "priority", path, 0, 9, &prio);
    rt->priority = (int)prio;
    get_str(v, obj, "ordering_key", path, &rt->ordering_pointer);
    if (rt->ordering_pointer && rt->ordering_pointer[0] != '/') {
        snprintf(sub, sizeof(sub), "%s.ordering_key", path);
        fail(v, sub, "expected a JSON pointer such as /tracking_number");
    }
    match = cJSON_GetObjectItemCaseSensitive(obj, "match");
    if (match) {
        const cJSON *attrs, *payload;
        snprintf(sub, sizeof(sub), "%s.match", path);
        check_keys(v, match, sub, mkeys);
        if (v->failed) {
            return;
        }
        snprintf(sub, sizeof(sub), "%s.match.topic", path);
        get_strlist(v, cJSON_GetObjectItemCaseSensitive(match, "topic"), sub, &rt->topics,
                    &rt->ntopics);
        snprintf(sub, sizeof(sub), "%s.match.type", path);
        get_strlist(v, cJSON_GetObjectItemCaseSensitive(match, "type"), sub, &rt->types,
                    &rt->ntypes);
        attrs = cJSON_GetObjectItemCaseSensitive(match, "attributes");
        if (attrs) {
            snprintf(sub, sizeof(sub), "%s.match.attributes", path);
            if (!cJSON_IsObject(attrs)) {
                fail(v, sub, "expected a mapping of attribute: value | {prefix: p} | "
                             "{exists: true}");
                return;
            }
            rt->attrs = dr_xcalloc((size_t)cJSON_GetArraySize(attrs) + 1, sizeof(*rt->attrs));
            cJSON_ArrayForEach(e, attrs)
            {
                struct dr_match_attr *a = &rt->attrs[rt->nattrs++];
                a->key = dr_xstrdup(e->string);
                if (cJSON_IsString(e)) {
                    a->op = DR_ATTR_EXACT;
                    a->value = dr_xstrdup(e->valuestring);
                } else if (cJSON_IsObject(e) && dr_json_str(e, "prefix")) {
                    a->op = DR_ATTR_PREFIX;
                    a->value = dr_xstrdup(dr_json_str(e, "prefix"));
                } else if (cJSON_IsObject(e) && dr_json_true(e, "exists")) {
                    a->op = DR_ATTR_EXISTS;
                } else {
                    char full[300];
                    snprintf(full, sizeof(full), "%s.%s", sub, e->string);
                    fail(v, full, "expected a string, {prefix: p} or {exists: true}");
                    return;
                }
            }
        }
        payload = cJSON_GetObjectItemCaseSensitive(match, "payload");
        if (payload) {
            snprintf(sub, sizeof(sub), "%s.match.payload", path);
            if (!cJSON_IsObject(payload)) {
                fail(v, sub, "expected a mapping of JSON pointer: value | {exists: true}");
                return;
            }
            rt->fields = dr_xcalloc((size_t)cJSON_GetArraySize(payload) + 1, sizeof(*rt->fields));
            cJSON_ArrayForEach(e, payload)
            {
                struct dr_match_field *f = &rt->fields[rt->nfields++];
                f->pointer = dr_xstrdup(e->string);
                if (e->string[0] != '/') {
                    char full[300];
                    snprintf(full, sizeof(full), "%s.%s", sub, e->string);
                    fail(v, full, "keys must be JSON pointers such as /status");
                    return;
                }
                if (cJSON_IsObject(e) && cJSON_GetObjectItemCaseSensitive(e, "exists")) {
                    f->equals = NULL;
                } else if (cJSON_IsObject(e) && cJSON_GetObjectItemCaseSensitive(e, "equals")) {
                    f->equals =
                        cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e, "equals"), 1);
                } else {
                    f->equals = cJSON_Duplicate(e, 1);
                }
            }
        }
    }
    procs = cJSON_GetObjectItemCaseSensitive(obj, "processors");
    snprintf(sub, sizeof(sub), "%s.processors", path);
    if (!procs) {
        fail(v, sub, "missing: a route needs at least one processor");
        return;
    }
    get_strlist(v, procs, sub, &rt->processors, &rt->nprocessors);
    if (!v->failed && rt->nprocessors == 0) {
        fail(v, sub, "a route needs at least one processor");
    }
    for (size_t i = 0; !v->failed && i < rt->nprocessors; i++) {
        if (!dr_processor_find(rt->processors[i])) {
            char full[300];
            snprintf(full, sizeof(full), "%s[%zu]", sub, i);
            fail(v, full, "unknown processor '%s'", rt->processors[i]);
        }
    }
    if (!rt->name) {
        snprintf(sub, sizeof(sub), "route-%p", (void *)rt);
        rt->name = dr_xstrdup(path);
    }
}

/* rate (requests/s) and burst of an api_keys entry; a rate gets the key its token bucket. */
static void parse_key_rate(struct vctx *v, const cJSON *e, const char *path, struct dr_api_key *k)
{
    char full[300];

    if (v->failed || !cJSON_IsObject(e)) {
        return;
    }
    get_double(v, e, "rate", path, 0.001, 1e6, &k->rate);
    get_double(v, e, "burst", path, 1, 1e6, &k->burst);
    if (v->failed) {
        return;
    }
    if (k->burst > 0 && k->rate == 0) {
        snprintf(full, sizeof(full), "%s.burst", path);
        fail(v, full, "a burst needs a rate (requests per second)");
        return;
    }
    if (k->rate > 0) {
        if (k->burst == 0) {
            /* one second's worth, at least one request */
            k->burst = k->rate < 1 ? 1 : ceil(k->rate);
        }
        k->limiter = dr_ratelimit_create(k->rate, k->burst);
    }
}

/* A subscription's name or topic (kind "subscriptions" or "topics") followed by suffix must be a
 * name Pub/Sub takes: one it refuses would be refused at every pull or publish, at run time. */
static void check_pubsub_name(struct vctx *v, const char *path, const char *key, const char *kind,
                              const char *name, const char *suffix)
{
    char full[300], why[160], *s;

    if (v->failed || !name) {
        return;
    }
    s = dr_xmalloc(strlen(name) + strlen(suffix) + 1);
    strcpy(s, name);
    strcat(s, suffix);
    if (dr_pubsub_name_check(kind, s, why, sizeof(why)) != DR_OK) {
        snprintf(full, sizeof(full), "%s.%s", path, key);
        if (*suffix) {
            fail(v, full,
                 "its dead-letter topic '%.300s' (pubsub.dlq_suffix '%.40s') is not a "
                 "Pub/Sub topic name: %s",
                 s, suffix, why);
        } else {
            fail(v, full, "'%.300s' is not a Pub/Sub %s name: %s", s,
                 strcmp(kind, "topics") == 0 ? "topic" : "subscription", why);
        }
    }
    free(s);
}

static void parse(struct vctx *v, struct dr_config *c, const cJSON *root)
{
    static const char *const top[] = {"mode", "http", "data_dir", "store", "workers", "log_level",
                                      "limits", "dedup", "shutdown", "topics", "retry",
                                      "breakers", "processors", "routes", "api_keys", "pubsub",
                                      "redis", "realtime", "retention", "web_dir", NULL};
    static const char *const http_keys[] = {"host", "port", "request_timeout", NULL};
    static const char *const store_keys[] = {"url", NULL};
    static const char *const limits_keys[] = {"max_in_flight", "max_in_flight_bytes", NULL};
    static const char *const dedup_keys[] = {"window", NULL};
    static const char *const shutdown_keys[] = {"deadline", NULL};
    static const char *const ret_keys[] = {"dead_letters", "notifications", NULL};
    /* read by the Redis bus (src/realtime/redis_bus.c), which only starts with a URL: checked
     * here so that a misspelt setting, or a duration without a unit, stops the start whether
     * or not Redis is used; the durations come after url and channel, and the bus checks
     * their ranges */
    static const char *const redis_keys[] = {"url",
                                             "channel",
                                             "connect_timeout",
                                             "command_timeout",
                                             "ping_interval",
                                             "backoff_max",
                                             "reorder_window",
                                             "audit_interval",
                                             NULL};
    /* the realtime section's durations (src/realtime/realtime.c checks its keys and ranges when
     * it starts; checked here as well so the file and key are named at load, with the rest) */
    static const char *const realtime_durations[] = {
        "heartbeat", "idle_timeout", "auth_timeout", "close_timeout", "sse_retry", NULL};
    const cJSON *sec, *e;
    int64_t i64;
    size_t idx;
    char path[256];

    check_keys(v, root, "", top);
    if (v->failed) {
        return;
    }
    get_str(v, root, "mode", "", &c->mode);
    if (!v->failed && strcmp(c->mode, "local") != 0 && strcmp(c->mode, "pubsub") != 0) {
        fail(v, "mode", "expected local or pubsub, not '%s'", c->mode);
    }
    sec = section(v, root, "http", http_keys);
    if (sec) {
        get_str(v, sec, "host", "http", &c->host);
        i64 = c->port;
        get_int(v, sec, "port", "http", 0, 65535, &i64);
        c->port = (int)i64;
        /* the HTTP server's timers take an unsigned int of ms */
        get_duration(v, sec, "request_timeout", "http", 1, 24 * 3600000, &c->request_timeout_ms);
    }
    get_str(v, root, "data_dir", "", &c->data_dir);
    sec = section(v, root, "store", store_keys);
    if (sec) {
        get_str(v, sec, "url", "store", &c->store_url);
    }
    sec = section(v, root, "redis", redis_keys);
    if (sec) {
        get_str(v, sec, "url", "redis", &c->redis_url);
        for (size_t i = 2; redis_keys[i]; i++) {
            int64_t unused = 0;
            get_duration(v, sec, redis_keys[i], "redis", 0, DR_DURATION_MAX_MS, &unused);
        }
    }
    sec = cJSON_GetObjectItemCaseSensitive(root, "realtime");
    for (size_t i = 0; cJSON_IsObject(sec) && realtime_durations[i]; i++) {
        int64_t unused = 0;
        get_duration(v, sec, realtime_durations[i], "realtime", 0, DR_DURATION_MAX_MS, &unused);
    }
    i64 = c->workers;
    get_int(v, root, "workers", "", 0, 256, &i64);
    c->workers = (int)i64;
    get_str(v, root, "log_level", "", &c->log_level);
    sec = section(v, root, "limits", limits_keys);
    if (sec) {
        get_int(v, sec, "max_in_flight", "limits", 1, 10000000, &c->max_in_flight);
        get_int(v, sec, "max_in_flight_bytes", "limits", 1024, (int64_t)1 << 40,
                &c->max_in_flight_bytes);
    }
    sec = section(v, root, "dedup", dedup_keys);
    if (sec) {
        get_duration(v, sec, "window", "dedup", 0, DR_DURATION_MAX_MS, &c->dedup_window_ms);
    }
    sec = section(v, root, "shutdown", shutdown_keys);
    if (sec) {
        get_duration(v, sec, "deadline", "shutdown", 0, DR_DURATION_MAX_MS,
                     &c->shutdown_deadline_ms);
    }
    sec = cJSON_GetObjectItemCaseSensitive(root, "topics");
    if (sec) {
        if (!cJSON_IsObject(sec)) {
            fail(v, "topics", "expected a mapping of topic: {type: ...}");
            return;
        }
        c->topics = dr_xcalloc((size_t)cJSON_GetArraySize(sec) + 1, sizeof(*c->topics));
        cJSON_ArrayForEach(e, sec)
        {
            static const char *const topic_keys[] = {"type", NULL};
            struct dr_topic_conf *t = &c->topics[c->ntopics++];
            t->name = dr_xstrdup(e->string);
            snprintf(path, sizeof(path), "topics.%.200s", e->string);
            if (!dr_topic_name_valid(e->string)) {
                /* the publish API would refuse every message for it */
                fail(v, path,
                     "not a Pub/Sub topic name (3-255 characters, a letter first, then letters, "
                     "digits and - _ . ~ + %%)");
            }
            check_keys(v, e, path, topic_keys);
            get_str(v, e, "type", path, &t->type);
        }
    }
    sec = cJSON_GetObjectItemCaseSensitive(root, "retry");
    if (sec) {
        const cJSON *types = cJSON_GetObjectItemCaseSensitive(sec, "types");
        static const char *const rkeys[] = {"default", "types", NULL};
        check_keys(v, sec, "retry", rkeys);
        if (cJSON_GetObjectItemCaseSensitive(sec, "default")) {
            parse_retry(v, cJSON_GetObjectItemCaseSensitive(sec, "default"), "retry.default",
                        &c->retry_default);
        }
        if (types && !cJSON_IsObject(types)) {
            fail(v, "retry.types", "expected a mapping of type: {max_attempts, ...}");
            return;
        }
        if (types) {
            c->retry = dr_xcalloc((size_t)cJSON_GetArraySize(types) + 1, sizeof(*c->retry));
            cJSON_ArrayForEach(e, types)
            {
                struct dr_retry_policy *r = &c->retry[c->nretry++];
                *r = c->retry_default;
                r->type = dr_xstrdup(e->string);
                snprintf(path, sizeof(path), "retry.types.%s", e->string);
                parse_retry(v, e, path, r);
            }
        }
    }
    sec = section(v, root, "retention", ret_keys);
    if (sec) {
        get_duration(v, sec, "dead_letters", "retention", 0, DR_DURATION_MAX_MS,
                     &c->dlq_retention_ms);
        get_duration(v, sec, "notifications", "retention", 0, DR_DURATION_MAX_MS,
                     &c->notification_retention_ms);
    }
    sec = cJSON_GetObjectItemCaseSensitive(root, "breakers");
    if (sec) {
        if (!cJSON_IsObject(sec)) {
            fail(v, "breakers", "expected a mapping of name: {failure_threshold, open_for}");
            return;
        }
        c->breakers = dr_xcalloc((size_t)cJSON_GetArraySize(sec) + 1, sizeof(*c->breakers));
        cJSON_ArrayForEach(e, sec)
        {
            struct dr_breaker_conf *b = &c->breakers[c->nbreakers++];
            int64_t th = 5;
            b->name = dr_xstrdup(e->string);
            b->open_ms = 10000;
            static const char *const breaker_keys[] = {"failure_threshold", "open_for", NULL};
            snprintf(path, sizeof(path), "breakers.%.200s", e->string);
            check_keys(v, e, path, breaker_keys);
            get_int(v, e, "failure_threshold", path, 1, 1000000, &th);
            b->failure_threshold = (int)th;
            get_duration(v, e, "open_for", path, 0, DR_DURATION_MAX_MS, &b->open_ms);
        }
    }
    sec = cJSON_GetObjectItemCaseSensitive(root, "processors");
    if (sec) {
        if (!cJSON_IsObject(sec)) {
            fail(v, "processors", "expected a mapping of processor: {settings}");
            return;
        }
        cJSON_ArrayForEach(e, sec)
        {
            const struct dr_processor *p = dr_processor_find(e->string);
            snprintf(path, sizeof(path), "processors.%.200s", e->string);
            if (!p) {
                fail(v, path, "unknown processor");
            } else if (!cJSON_IsNull(e)) {
                check_processor_keys(v, e, path, "", p->config_keys);
            }
        }
    }
    sec = cJSON_GetObjectItemCaseSensitive(root, "routes");
    if (sec) {
        if (!cJSON_IsArray(sec)) {
            fail(v, "routes", "expected a list of routes");
            return;
        }
        c->routes = dr_xcalloc((size_t)cJSON_GetArraySize(sec) + 1, sizeof(*c->routes));
        idx = 0;
        cJSON_ArrayForEach(e, sec)
        {
            snprintf(path, sizeof(path), "routes[%zu]", idx++);
            parse_route(v, e, path, &c->routes[c->nroutes++]);
            if (v->failed) {
                return;
            }
            for (size_t j = 0; c->routes[c->nroutes - 1].is_default && j + 1 < c->nroutes; j++) {
                if (c->routes[j].is_default) {
                    snprintf(path, sizeof(path), "routes[%zu].default", idx - 1);
                    fail(v, path, "routes[%zu] is the default route already", j);
                    return;
                }
            }
            /* the admin API, metrics and logs tell routes apart by name */
            for (size_t j = 0; c->routes[c->nroutes - 1].name && j + 1 < c->nroutes; j++) {
                if (c->routes[j].name &&
                    strcmp(c->routes[j].name, c->routes[c->nroutes - 1].name) == 0) {
                    snprintf(path, sizeof(path), "routes[%zu].name", idx - 1);
                    fail(v, path, "'%s' is already the name of routes[%zu]", c->routes[j].name, j);
                    return;
                }
            }
        }
    }
    sec = cJSON_GetObjectItemCaseSensitive(root, "api_keys");
    if (sec) {
        if (!cJSON_IsArray(sec)) {
            fail(v, "api_keys", "expected a list of {name, role, sha256}");
            return;
        }
        c->api_keys = dr_xcalloc((size_t)cJSON_GetArraySize(sec) + 1, sizeof(*c->api_keys));
        idx = 0;
        cJSON_ArrayForEach(e, sec)
        {
            static const char *const key_keys[] = {"name", "role", "sha256", "rate", "burst", NULL};
            struct dr_api_key *k = &c->api_keys[c->napi_keys++];
            char *hash = NULL;
            snprintf(path, sizeof(path), "api_keys[%zu]", idx++);
            check_keys(v, e, path, key_keys);
            get_str(v, e, "name", path, &k->name);
            get_str(v, e, "role", path, &k->role);
            get_str(v, e, "sha256", path, &hash);
            if (!v->failed && (!k->role || (strcmp(k->role, "service") != 0 &&
                                            strcmp(k->role, "admin") != 0))) {
                char full[300];
                snprintf(full, sizeof(full), "%s.role", path);
                fail(v, full, "expected service or admin");
            }
            if (!v->failed && (!hash || strlen(hash) != 64 ||
                               strspn(hash, "0123456789abcdef") != 64)) {
                char full[300];
                snprintf(full, sizeof(full), "%s.sha256", path);
                fail(v, full, "expected the key's SHA-256 as 64 lowercase hex digits");
            }
            if (hash && !v->failed) {
                memcpy(k->sha256, hash, 65);
            }
            free(hash);
            parse_key_rate(v, e, path, k);
            if (!k->name) {
                k->name = dr_xstrdup(path);
            }
            /* the audit log and the rate metric name the key; a hash decides the role */
            for (size_t j = 0; !v->failed && j + 1 < c->napi_keys; j++) {
                char full[300];
                if (strcmp(c->api_keys[j].name, k->name) == 0) {
                    snprintf(full, sizeof(full), "%s.name", path);
                    fail(v, full, "'%s' is already the name of api_keys[%zu]", k->name, j);
                } else if (strcmp(c->api_keys[j].sha256, k->sha256) == 0) {
                    snprintf(full, sizeof(full), "%s.sha256", path);
                    fail(v, full, "the same key as api_keys[%zu]", j);
                }
            }
            if (v->failed) {
                return;
            }
        }
    }
    sec = cJSON_GetObjectItemCaseSensitive(root, "pubsub");
    if (sec) {
        const cJSON *subs = cJSON_GetObjectItemCaseSensitive(sec, "subscriptions");
        const cJSON *push = cJSON_GetObjectItemCaseSensitive(sec, "push");
        /* read by the pull source; checked here so a value it cannot take stops the start
         * instead of falling back to its default */
        static const char *const ps_keys[] = {"project",
                                              "dlq_suffix",
                                              "transport",
                                              "endpoint",
                                              "subscriptions",
                                              "push",
                                              "pulls_in_flight",
                                              "max_messages",
                                              "ack_deadline_seconds",
                                              "max_delivery_attempts",
                                              "nack_after_ms",
                                              "auto_create",
                                              NULL};
        static const char *const push_keys[] = {"enabled", "audience", "service_account", "jwks",
                                                NULL};
        static const char *const sub_keys[] = {"name", "topic", NULL};
        char *transport = NULL;
        int64_t unused = 0;
        int flag = 0;

        check_keys(v, sec, "pubsub", ps_keys);
        get_int(v, sec, "pulls_in_flight", "pubsub", 1, 64, &unused);
        get_int(v, sec, "max_messages", "pubsub", 1, DR_PUBSUB_MAX_PULL_MSGS, &unused);
        get_int(v, sec, "ack_deadline_seconds", "pubsub", 10, 600, &unused);
        get_int(v, sec, "max_delivery_attempts", "pubsub", 5, 100, &unused);
        get_int(v, sec, "nack_after_ms", "pubsub", 0, 600000, &unused);
        get_bool(v, sec, "auto_create", "pubsub", &flag);
        if (push) {
            check_keys(v, push, "pubsub.push", push_keys);
        }
        if (cJSON_IsArray(subs)) {
            idx = 0;
            cJSON_ArrayForEach(e, subs)
            {
                snprintf(path, sizeof(path), "pubsub.subscriptions[%zu]", idx++);
                check_keys(v, e, path, sub_keys);
            }
        }
        if (v->failed) {
            return;
        }
        get_str(v, sec, "project", "pubsub", &c->project);
        get_str(v, sec, "dlq_suffix", "pubsub", &c->dlq_suffix);
        get_str(v, sec, "transport", "pubsub", &transport);
        get_str(v, sec, "endpoint", "pubsub", &c->pubsub_endpoint);
        if (c->pubsub_endpoint && strncmp(c->pubsub_endpoint, "https://", 8) != 0 &&
            strncmp(c->pubsub_endpoint, "http://", 7) != 0) {
            fail(v, "pubsub.endpoint", "expected an https:// (or http://) URL");
        }
        if (transport && strcmp(transport, "grpc") != 0 && strcmp(transport, "rest") != 0) {
            fail(v, "pubsub.transport", "expected grpc or rest");
        }
        if (transport) {
            c->pubsub_grpc = strcmp(transport, "grpc") == 0;
        }
        free(transport);
        if (subs) {
            if (!cJSON_IsArray(subs)) {
                fail(v, "pubsub.subscriptions", "expected a list of {name, topic}");
                return;
            }
            c->subscriptions =
                dr_xcalloc((size_t)cJSON_GetArraySize(subs) + 1, sizeof(*c->subscriptions));
            idx = 0;
            cJSON_ArrayForEach(e, subs)
            {
                struct dr_subscription_conf *s = &c->subscriptions[c->nsubscriptions++];
                snprintf(path, sizeof(path), "pubsub.subscriptions[%zu]", idx++);
                get_str(v, e, "name", path, &s->name);
                get_str(v, e, "topic", path, &s->topic);
                if (!v->failed && (!s->name || !s->topic)) {
                    fail(v, path, "needs name and topic");
                }
                check_pubsub_name(v, path, "name", "subscriptions", s->name, "");
                check_pubsub_name(v, path, "topic", "topics", s->topic, "");
                /* dead letters are published to <topic><dlq_suffix> */
                check_pubsub_name(v, path, "topic", "topics", s->topic, c->dlq_suffix);
            }
        }
        if (push) {
            get_bool(v, push, "enabled", "pubsub.push", &c->push_enabled);
            get_str(v, push, "audience", "pubsub.push", &c->push_audience);
            get_str(v, push, "service_account", "pubsub.push", &c->push_service_account);
            get_str(v, push, "jwks", "pubsub.push", &c->push_jwks);
            if (!v->failed && c->push_audience && !c->push_jwks) {
                fail(v, "pubsub.push.jwks",
                     "missing: pubsub.push.audience needs Google's JWKS (a file or an URL)");
            }
            if (!v->failed && c->push_jwks && strncmp(c->push_jwks, "https://", 8) != 0 &&
                strncmp(c->push_jwks, "http://", 7) != 0 && access(c->push_jwks, R_OK) != 0) {
                fail(v, "pubsub.push.jwks", "cannot read %s: %s", c->push_jwks, strerror(errno));
            }
            /* Google signs a push token for any subscription pointed at this endpoint, in any
             * project: the audience alone lets anyone's subscription push here. The account the
             * subscription pushes as tells ours apart. */
            if (!v->failed && c->push_audience && !c->push_service_account) {
                fail(v, "pubsub.push.service_account",
                     "missing: with pubsub.push.audience, the service account the subscription "
                     "pushes as (anyone's subscription gets tokens for the audience)");
            }
        }
    }
}

/* The HTTP server listens on an address, not a name. */
static int ip_address(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* " (from NAME)" when the environment variable NAME is set: said where its value is refused. */
static const char *from_env(const char *name, const char *note)
{
    const char *s = getenv(name);

    return s && *s ? note : "";
}

/* The environment overrides the file; a value it cannot take fails like the file's would. */
static int env_override(struct vctx *vc, struct dr_config *c)
{
    const char *s;
    int64_t v;

    if ((s = getenv("PORT")) && *s) {
        if (dr_parse_i64(s, &v) != 0 || v < 0 || v > 65535) {
            return fail(vc, "http.port", "PORT: expected a port number from 0 to 65535, not '%s'",
                        s);
        }
        c->port = (int)v;
    }
    if ((s = getenv("DR_HOST")) && *s) {
        free(c->host);
        c->host = dr_xstrdup(s);
    }
    if ((s = getenv("DR_DATA_DIR")) && *s) {
        free(c->data_dir);
        c->data_dir = dr_xstrdup(s);
    }
    if ((s = getenv("DATABASE_URL")) && *s) {
        free(c->store_url);
        c->store_url = dr_xstrdup(s);
    }
    if ((s = getenv("REDIS_URL")) && *s) {
        free(c->redis_url);
        c->redis_url = dr_xstrdup(s);
    }
    if ((s = getenv("DR_LOG_LEVEL")) && *s) {
        free(c->log_level);
        c->log_level = dr_xstrdup(s);
    }
    if ((s = getenv("DR_MODE")) && *s) {
        free(c->mode);
        c->mode = dr_xstrdup(s);
    }
    if ((s = getenv("PUBSUB_PROJECT_ID")) && *s && !c->project) {
        c->project = dr_xstrdup(s);
    }
    return DR_OK;
}

int dr_config_load_string(const char *yaml, size_t len, const char *name, struct dr_config **out,
                          char *err, size_t errsz)
{
    struct dr_config *c = dr_xcalloc(1, sizeof(*c));
    struct vctx v = {.file = name, .err = err, .errsz = errsz};
    char yerr[512];
    cJSON *root = NULL;
    int rc;

    *out = NULL;
    c->source = dr_xstrdup(name);
    c->mode = dr_xstrdup("local");
    c->host = dr_xstrdup("127.0.0.1");
    c->port = 8080;
    c->data_dir = dr_xstrdup("./data");
    c->log_level = dr_xstrdup("info");
    c->max_in_flight = 20000;
    c->max_in_flight_bytes = 256LL * 1024 * 1024;
    c->dedup_window_ms = 24LL * 3600 * 1000;
    c->shutdown_deadline_ms = 10000;
    c->dlq_retention_ms = 30LL * 86400 * 1000;
    c->notification_retention_ms = 30LL * 86400 * 1000;
    c->request_timeout_ms = 10000;
    c->retry_default = (struct dr_retry_policy){
        .max_attempts = 5, .initial_ms = 200, .multiplier = 2, .max_ms = 30000, .jitter = 0.2};
    c->dlq_suffix = dr_xstrdup("-dlq");
    c->pubsub_grpc = 1;

    rc = dr_yaml_to_json(yaml, len, &root, yerr, sizeof(yerr));
    if (rc) {
        snprintf(err, errsz, "%s: %s", name, yerr);
        goto out;
    }
    c->root = root;
    parse(&v, c, root);
    if (v.failed) {
        rc = DR_EINVAL;
        goto out;
    }
    rc = env_override(&v, c);
    if (rc) {
        goto out;
    }
    if (strcmp(c->mode, "local") != 0 && strcmp(c->mode, "pubsub") != 0) {
        fail(&v, "mode", "expected local or pubsub (from DR_MODE), not '%s'", c->mode);
        rc = DR_EINVAL;
        goto out;
    }
    if (!ip_address(c->host)) {
        fail(&v, "http.host", "expected an IP address such as 127.0.0.1 or ::%s, not '%s'",
             from_env("DR_HOST", " (from DR_HOST)"), c->host);
        rc = DR_EINVAL;
        goto out;
    }
    if (dr_log_parse_level(c->log_level, &(enum dr_log_level){DR_LOG_INFO}) != DR_OK) {
        fail(&v, "log_level", "expected debug, info, warn or error%s, not '%s'",
             from_env("DR_LOG_LEVEL", " (from DR_LOG_LEVEL)"), c->log_level);
        rc = DR_EINVAL;
        goto out;
    }
    if (c->store_url && strstr(c->store_url, "://") &&
        strncmp(c->store_url, "postgresql://", 13) != 0 &&
        strncmp(c->store_url, "postgres://", 11) != 0 && strncmp(c->store_url, "sqlite:", 7) != 0) {
        /* anything else would be taken for the path of an SQLite file; only the scheme is
         * quoted, as the rest may hold a password */
        fail(&v, "store.url", "expected postgresql://..., sqlite:PATH or a file path%s, not '%.*s'",
             from_env("DATABASE_URL", " (from DATABASE_URL)"),
             (int)(strstr(c->store_url, "://") - c->store_url + 3), c->store_url);
        rc = DR_EINVAL;
        goto out;
    }
    if (c->redis_url && *c->redis_url) {
        char why[256];
        if (dr_redis_url_check(c->redis_url, why, sizeof(why)) != DR_OK) {
            fail(&v, "redis.url", "%s%s", why, from_env("REDIS_URL", " (from REDIS_URL)"));
            rc = DR_EINVAL;
            goto out;
        }
    }
    if (strcmp(c->mode, "pubsub") == 0 && !from_env("PUBSUB_EMULATOR_HOST", "x")[0] &&
        from_env("GOOGLE_APPLICATION_CREDENTIALS", "x")[0]) {
        /* read once here so that a bad key file is a configuration error, not a failed start */
        char why[256];
        if (dr_gcp_credentials_check(getenv("GOOGLE_APPLICATION_CREDENTIALS"), why, sizeof(why)) !=
            DR_OK) {
            fail(&v, "GOOGLE_APPLICATION_CREDENTIALS", "%s", why);
            rc = DR_EINVAL;
            goto out;
        }
    }
    if (!c->store_url || !*c->store_url) {
        char url[4096];
        free(c->store_url);
        snprintf(url, sizeof(url), "sqlite:%s/data-router.db", c->data_dir);
        c->store_url = dr_xstrdup(url);
    }
    *out = c;
    c = NULL;
out:
    dr_config_destroy(c);
    return rc;
}

int dr_config_load(const char *path, struct dr_config **out, char *err, size_t errsz)
{
    FILE *f;
    char *buf;
    size_t n;
    int rc;

    if (!path) {
        return dr_config_load_string(dr_config_embedded, strlen(dr_config_embedded),
                                     "<embedded config/local.yaml>", out, err, errsz);
    }
    *out = NULL;
    f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "%s: cannot open: %s", path, strerror(errno));
        return DR_EIO;
    }
    buf = dr_xmalloc(MAX_CONFIG_BYTES + 1);
    n = fread(buf, 1, MAX_CONFIG_BYTES + 1, f);
    fclose(f);
    if (n > MAX_CONFIG_BYTES) {
        free(buf);
        snprintf(err, errsz, "%s: larger than %d bytes", path, MAX_CONFIG_BYTES);
        return DR_ETOOBIG;
    }
    rc = dr_config_load_string(buf, n, path, out, err, errsz);
    free(buf);
    if (!rc && !(*out)->root->child) {
        /* e.g. a mounted file that came up empty: the service would route nothing */
        snprintf(err, errsz,
                 "%s: (top level): no settings in the file (leave out --config for the embedded "
                 "defaults)",
                 path);
        dr_config_destroy(*out);
        *out = NULL;
        rc = DR_EINVAL;
    }
    return rc;
}

static void free_strs(char **s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i]);
    }
    free(s);
}

void dr_config_destroy(struct dr_config *c)
{
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->nroutes; i++) {
        struct dr_route *r = &c->routes[i];
        free(r->name);
        free_strs(r->topics, r->ntopics);
        free_strs(r->types, r->ntypes);
        free_strs(r->processors, r->nprocessors);
        for (size_t j = 0; j < r->nattrs; j++) {
            free(r->attrs[j].key);
            free(r->attrs[j].value);
        }
        free(r->attrs);
        for (size_t j = 0; j < r->nfields; j++) {
            free(r->fields[j].pointer);
            cJSON_Delete(r->fields[j].equals);
        }
        free(r->fields);
        free(r->ordering_pointer);
    }
    free(c->routes);
    for (size_t i = 0; i < c->nretry; i++) {
        free(c->retry[i].type);
    }
    free(c->retry);
    for (size_t i = 0; i < c->nbreakers; i++) {
        free(c->breakers[i].name);
    }
    free(c->breakers);
    for (size_t i = 0; i < c->napi_keys; i++) {
        free(c->api_keys[i].name);
        free(c->api_keys[i].role);
        dr_ratelimit_destroy(c->api_keys[i].limiter);
    }
    free(c->api_keys);
    for (size_t i = 0; i < c->ntopics; i++) {
        free(c->topics[i].name);
        free(c->topics[i].type);
    }
    free(c->topics);
    for (size_t i = 0; i < c->nsubscriptions; i++) {
        free(c->subscriptions[i].name);
        free(c->subscriptions[i].topic);
    }
    free(c->subscriptions);
    free(c->source);
    free(c->mode);
    free(c->host);
    free(c->data_dir);
    free(c->store_url);
    free(c->redis_url);
    free(c->log_level);
    free(c->project);
    free(c->dlq_suffix);
    free(c->pubsub_endpoint);
    free(c->push_audience);
    free(c->push_service_account);
    free(c->push_jwks);
    cJSON_Delete(c->root);
    free(c);
}

const struct dr_retry_policy *dr_config_retry(const struct dr_config *cfg, const char *type)
{
    for (size_t i = 0; type && i < cfg->nretry; i++) {
        if (strcmp(cfg->retry[i].type, type) == 0) {
            return &cfg->retry[i];
        }
    }
    return &cfg->retry_default;
}

const char *dr_config_topic_type(const struct dr_config *cfg, const char *topic)
{
    for (size_t i = 0; i < cfg->ntopics; i++) {
        if (strcmp(cfg->topics[i].name, topic) == 0) {
            return cfg->topics[i].type;
        }
    }
    return NULL;
}

const cJSON *dr_config_processor(const struct dr_config *cfg, const char *name)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(cfg->root, "processors");
    return p ? cJSON_GetObjectItemCaseSensitive(p, name) : NULL;
}
