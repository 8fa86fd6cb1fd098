#include "dr/apikey.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dr/audit.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/ratelimit.h"
#include "dr/util.h"

static const char *presented_key(struct dr_http_req *req)
{
    const char *h = dr_http_header(req, "authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        return h + 7;
    }
    return dr_http_header(req, "x-api-key");
}

/* Prometheus label value: backslash, quote and newline escaped. */
static void label_value(const char *s, char *out, size_t outsz)
{
    size_t n = 0;

    for (; *s && n + 3 < outsz; s++) {
        if (*s == '\\' || *s == '"') {
            out[n++] = '\\';
            out[n++] = *s;
        } else if (*s == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
}

/* The key's token bucket: 1 when the request may go on, else answers 429 and returns 0. */
static int within_rate(const struct dr_api_key *k, struct dr_http_req *req)
{
    char labels[200], name[160], secs[32];
    int64_t wait_ms = 0;

    if (!k->limiter || dr_ratelimit_take(k->limiter, dr_mono_ms(), &wait_ms)) {
        return 1;
    }
    label_value(k->name, name, sizeof(name));
    snprintf(labels, sizeof(labels), "key=\"%s\"", name);
    dr_metrics_inc("dr_api_key_rate_limited_total", labels, 1);
    snprintf(secs, sizeof(secs), "%lld", (long long)((wait_ms + 999) / 1000));
    dr_http_add_header(req, "Retry-After", secs);
    dr_http_respond_error(req, 429, "RESOURCE_EXHAUSTED",
                          "API key '%s' is over its rate limit (%g requests/s, burst %g)", k->name,
                          k->rate, k->burst);
    return 0;
}

int dr_apikey_authorize(const struct dr_config *cfg, struct dr_http_req *req, const char *role)
{
    int audited = strcmp(role, "admin") == 0; /* every admin request is in the audit log */
    const char *key;
    char digest[65];
    int ok = 0, role_ok = 0;
    size_t which = 0;

    if (cfg->napi_keys == 0) {
        int loopback = dr_http_peer_is_loopback(req);
        if (audited) {
            dr_audit_admin(req, loopback ? "loopback" : "anonymous");
        }
        if (loopback) {
            return 1;
        }
        dr_http_respond_error(req, 403, "PERMISSION_DENIED",
                              "no API keys are configured: only loopback clients are served");
        return 0;
    }
    if (audited) {
        dr_audit_admin(req, "anonymous"); /* until a key is known */
    }
    key = presented_key(req);
    if (!key || !*key) {
        dr_http_add_header(req, "WWW-Authenticate", "Bearer");
        dr_http_respond_error(req, 401, "UNAUTHENTICATED",
                              "an API key is required (Authorization: Bearer or X-API-Key)");
        return 0;
    }
    dr_sha256_hex(key, strlen(key), digest);
    /* Compare against every key, always, so timing says nothing about which one matched. */
    for (size_t i = 0; i < cfg->napi_keys; i++) {
        int match = dr_ct_equal(digest, 64, cfg->api_keys[i].sha256, 64);
        int has_role = strcmp(cfg->api_keys[i].role, "admin") == 0 ||
                       strcmp(cfg->api_keys[i].role, role) == 0;
        which |= i & ((size_t)0 - (size_t)(match & !ok)); /* the first that matches */
        ok |= match;
        role_ok |= match & has_role;
    }
    if (!ok) {
        DR_WARN("http", "bad api key", "peer=%s path=%s", dr_http_peer(req), dr_http_path(req));
        dr_http_add_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        dr_http_respond_error(req, 401, "UNAUTHENTICATED", "invalid API key");
        return 0;
    }
    if (audited) {
        dr_audit_admin(req, cfg->api_keys[which].name);
    }
    if (!role_ok) {
        dr_http_respond_error(req, 403, "PERMISSION_DENIED", "this API key lacks the %s role",
                              role);
        return 0;
    }
    return within_rate(&cfg->api_keys[which], req);
}
