/*
 * processors.vespa: one table holds every key's type, default and bounds, so validation, defaults
 * and the documentation in dr/vespa.h cannot drift apart key by key.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "dr/config.h"
#include "dr/err.h"
#include "dr/util.h"
#include "dr/vespa.h"

enum conf_type { CT_STR, CT_BOOL, CT_INT, CT_I64, CT_DURATION, CT_HTTP2 };

struct conf_entry {
    const char *key;
    enum conf_type type;
    size_t offset;
    const char *def; /* default, as it would be written in YAML; NULL = unset */
    int64_t min, max;
};

#define OFF(f) offsetof(struct dr_vespa_conf, f)

static const struct conf_entry conf_map[] = {
    {"endpoint", CT_STR, OFF(endpoint), NULL, 0, 0},
    {"namespace", CT_STR, OFF(ns), "datarouter", 0, 0},
    {"enabled", CT_BOOL, OFF(enabled), NULL, 0, 1},
    {"max_in_flight", CT_INT, OFF(max_in_flight), "64", 1, 4096},
    {"timeout", CT_DURATION, OFF(timeout_ms), "10s", 100, 600000},
    {"retries", CT_INT, OFF(retries), "3", 0, 10},
    {"backoff", CT_DURATION, OFF(backoff_ms), "100ms", 1, 60000},
    {"backoff_max", CT_DURATION, OFF(backoff_max_ms), "2s", 1, 300000},
    {"http2", CT_HTTP2, OFF(http2), "auto", 0, 0},
    {"max_body", CT_I64, OFF(max_body), "8388608", 1024, 268435456},
};

/* conf_map's keys, for the configuration's check of processors.vespa (dr/processor.h), which
 * runs whether or not a route uses the processor. */
const char *const dr_vespa_conf_keys[] = {"endpoint", "namespace", "enabled", "max_in_flight",
                                          "timeout",  "retries",   "backoff", "backoff_max",
                                          "http2",    "max_body",  NULL};
_Static_assert(DR_ARRAY_LEN(dr_vespa_conf_keys) == DR_ARRAY_LEN(conf_map) + 1,
               "dr_vespa_conf_keys lists conf_map's keys");

#define PREFIX "processors.vespa."

static int set_int(struct dr_vespa_conf *conf, const struct conf_entry *e, int64_t v, char *err,
                   size_t errsz)
{
    char *p = (char *)conf + e->offset;

    if (v < e->min || v > e->max) {
        snprintf(err, errsz, PREFIX "%s: must be between %lld and %lld", e->key, (long long)e->min,
                 (long long)e->max);
        return DR_EINVAL;
    }
    if (e->type == CT_INT) {
        *(int *)p = (int)v;
    } else {
        *(int64_t *)p = v;
    }
    return DR_OK;
}

static int parse_http2(const char *s, int *out)
{
    if (strcmp(s, "auto") == 0) {
        *out = -1; /* resolved from the endpoint's scheme */
    } else if (strcmp(s, "h2c") == 0) {
        *out = 2;
    } else if (strcmp(s, "http1") == 0) {
        *out = 0;
    } else {
        return DR_EINVAL;
    }
    return DR_OK;
}

/* Range-checked before the cast: converting an out-of-range double is undefined. */
static int whole_number(const cJSON *item, int64_t *out)
{
    double d = item->valuedouble;

    if (!(d >= -1e15 && d <= 1e15) || d != (double)(int64_t)d) {
        return 0;
    }
    *out = (int64_t)d;
    return 1;
}

/* Applies one value (from YAML, or the default text when item is NULL). */
static int apply(struct dr_vespa_conf *conf, const struct conf_entry *e, const cJSON *item,
                 char *err, size_t errsz)
{
    char *p = (char *)conf + e->offset;
    const char *text = item ? (cJSON_IsString(item) ? item->valuestring : NULL) : e->def;
    int64_t v;

    switch (e->type) {
    case CT_STR:
        if (!text) {
            snprintf(err, errsz, PREFIX "%s: expected a string", e->key);
            return DR_EINVAL;
        }
        free(*(char **)p);
        *(char **)p = dr_xstrdup(text);
        return DR_OK;
    case CT_BOOL:
        if (!item || !cJSON_IsBool(item)) {
            snprintf(err, errsz, PREFIX "%s: expected true or false", e->key);
            return DR_EINVAL;
        }
        *(int *)p = cJSON_IsTrue(item);
        return DR_OK;
    case CT_INT:
    case CT_I64:
        if (item && cJSON_IsNumber(item)) {
            if (!whole_number(item, &v)) {
                snprintf(err, errsz, PREFIX "%s: expected a whole number", e->key);
                return DR_EINVAL;
            }
        } else if (!text || dr_parse_i64(text, &v)) {
            snprintf(err, errsz, PREFIX "%s: expected a whole number", e->key);
            return DR_EINVAL;
        }
        return set_int(conf, e, v, err, errsz);
    case CT_DURATION:
        if (item && cJSON_IsNumber(item) && item->valuedouble != 0) {
            /* 25 is neither 25 ms nor 25 s: whichever was meant, the other would be a trap */
            snprintf(err, errsz, PREFIX "%s: give a unit: ms, s, m, h or d, such as 250ms", e->key);
            return DR_EINVAL;
        } else if (item && cJSON_IsNumber(item)) {
            v = 0;
        } else if (!text || dr_parse_duration(text, &v)) {
            snprintf(err, errsz, PREFIX "%s: expected a duration such as 250ms, 10s", e->key);
            return DR_EINVAL;
        }
        return set_int(conf, e, v, err, errsz);
    case CT_HTTP2:
        if (!text || parse_http2(text, (int *)p)) {
            snprintf(err, errsz, PREFIX "%s: expected auto, h2c or http1", e->key);
            return DR_EINVAL;
        }
        return DR_OK;
    }
    return DR_EINVAL;
}

static int valid_namespace(const char *s)
{
    if (!*s || strlen(s) > 128) {
        return 0;
    }
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            return 0;
        }
    }
    return 1;
}

/* Accepts http(s)://host[:port][/prefix]; drops a trailing '/'. */
static int check_endpoint(struct dr_vespa_conf *conf, char *err, size_t errsz)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *query = NULL;
    size_t n;
    int ok = 0;

    if (u && curl_url_set(u, CURLUPART_URL, conf->endpoint, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK) {
        ok = strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0;
        /* A query or fragment could not be followed by /document/v1/... */
        ok = ok && curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_OK &&
             !strchr(conf->endpoint, '#');
    }
    curl_free(query);
    curl_free(scheme);
    curl_url_cleanup(u);
    if (!ok) {
        snprintf(err, errsz, PREFIX "endpoint: expected an http:// or https:// URL");
        return DR_EINVAL;
    }
    n = strlen(conf->endpoint);
    while (n > 0 && conf->endpoint[n - 1] == '/') {
        conf->endpoint[--n] = '\0';
    }
    return DR_OK;
}

int dr_vespa_conf_load(const cJSON *section, struct dr_vespa_conf *conf, char *err, size_t errsz)
{
    const cJSON *it;
    const char *env = getenv("DR_VESPA_URL");
    int rc = DR_OK;

    memset(conf, 0, sizeof(*conf));
    conf->enabled = -1; /* not said: follows the endpoint */
    for (size_t i = 0; i < DR_ARRAY_LEN(conf_map); i++) {
        if (conf_map[i].def) {
            rc = apply(conf, &conf_map[i], NULL, err, errsz);
            if (rc) {
                goto out;
            }
        }
    }
    if (section && !cJSON_IsObject(section) && !cJSON_IsNull(section)) {
        snprintf(err, errsz, "processors.vespa: expected a mapping");
        rc = DR_EINVAL;
        goto out;
    }
    if (!cJSON_IsObject(section)) {
        section = NULL;
    }
    cJSON_ArrayForEach(it, section)
    {
        const struct conf_entry *e = NULL;
        for (size_t i = 0; i < DR_ARRAY_LEN(conf_map); i++) {
            if (strcmp(conf_map[i].key, it->string) == 0) {
                e = &conf_map[i];
            }
        }
        if (!e) {
            snprintf(err, errsz, PREFIX "%s: unknown key", it->string);
            rc = DR_EINVAL;
            goto out;
        }
        if (e->type == CT_STR && cJSON_IsNull(it)) {
            continue; /* "endpoint:" with nothing after it = none */
        }
        rc = apply(conf, e, it, err, errsz);
        if (rc) {
            goto out;
        }
    }
    if (env && *env) {
        free(conf->endpoint);
        conf->endpoint = dr_xstrdup(env);
    }
    if (conf->endpoint && !*conf->endpoint) {
        free(conf->endpoint);
        conf->endpoint = NULL;
    }
    if (conf->endpoint) {
        rc = check_endpoint(conf, err, errsz);
        if (rc) {
            goto out;
        }
    }
    if (!valid_namespace(conf->ns)) {
        snprintf(err, errsz, PREFIX "namespace: letters, digits, '_', '-' and '.' only");
        rc = DR_EINVAL;
        goto out;
    }
    if (conf->enabled < 0) {
        conf->enabled = conf->endpoint != NULL;
    } else if (conf->enabled && !conf->endpoint) {
        snprintf(err, errsz,
                 PREFIX "endpoint: required when enabled is true (or set DR_VESPA_URL)");
        rc = DR_EINVAL;
        goto out;
    }
    if (conf->backoff_max_ms < conf->backoff_ms) {
        snprintf(err, errsz, PREFIX "backoff_max: must not be less than backoff");
        rc = DR_EINVAL;
        goto out;
    }
    if (conf->http2 < 0) {
        conf->http2 = conf->endpoint && strncmp(conf->endpoint, "https:", 6) == 0 ? 1 : 0;
    }
out:
    if (rc) {
        dr_vespa_conf_cleanup(conf);
    }
    return rc;
}

void dr_vespa_conf_cleanup(struct dr_vespa_conf *conf)
{
    free(conf->endpoint);
    free(conf->ns);
    memset(conf, 0, sizeof(*conf));
}
