/*
 * Client authentication: where a request carries its token (Authorization: Bearer, else the
 * access_token query parameter) and how it is verified (the hub's keys, issuer, audience and
 * leeway). Refusals before an upgrade are 401 with a JSON error body and a WWW-Authenticate
 * header; the reason is one of dr_jwt_verify's machine words. Tokens are never logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/err.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

/* 1 if prefix followed by id is a room name (dr_room_valid), however long id is. */
static int forms_room(const char *prefix, const char *id)
{
    size_t pl = strlen(prefix), il = strlen(id);
    char *room = dr_xmalloc(pl + il + 1);
    int ok;

    memcpy(room, prefix, pl);
    memcpy(room + pl, id, il + 1);
    ok = dr_room_valid(room);
    free(room);
    return ok;
}

int dr__rt_verify(struct dr_hub *hub, const char *token, size_t len, struct dr_jwt_claims **out,
                  char *why, size_t whysz)
{
    const char *bad = NULL;

    struct dr_jwt_opts opts = {
        .issuer = hub->conf->issuer,
        .audience = hub->conf->audience,
        .leeway_s = hub->conf->leeway_s,
    };
    int err = dr_jwt_verify(hub->keys, token, len, &opts, out, why, whysz);

    if (err && hub->jwks_src && strcmp(why, "unknown_kid") == 0) {
        dr_jwks_source_unknown_kid(hub->jwks_src); /* keys may have rotated: bounded refetch */
    }

    /* The connection is addressed through user:{sub} and org:{org}: a token whose names cannot
     * form those rooms would connect and never get a notification, so it is refused. */
    if (!err && (!(*out)->sub || !(*out)->sub[0])) {
        bad = "missing_sub";
    } else if (!err && !forms_room("user:", (*out)->sub)) {
        bad = "invalid_sub";
    } else if (!err && (*out)->org && !forms_room("org:", (*out)->org)) {
        bad = "invalid_org";
    }
    if (bad) {
        dr_jwt_claims_destroy(*out);
        *out = NULL;
        snprintf(why, whysz, "%s", bad);
        err = DR_EAUTH;
    }
    return err;
}

int dr__rt_request_token(struct dr_http_req *req, char **token)
{
    const char *h = dr_http_header(req, "Authorization");
    char *buf;
    int err;

    *token = NULL;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        h += 7;
        while (*h == ' ') {
            h++;
        }
        *token = dr_xstrdup(h);
        return DR_OK;
    }
    buf = dr_xmalloc(DR_JWT_MAX_SIZE + 1);
    err = dr_http_query_param(req, "access_token", buf, DR_JWT_MAX_SIZE + 1);
    if (err) {
        free(buf);
        return err;
    }
    *token = buf;
    return DR_OK;
}

static void refuse(struct dr_http_req *req, const char *why)
{
    char labels[64];

    snprintf(labels, sizeof(labels), "reason=\"%s\"", why);
    dr_metrics_inc(RT_M_REFUSED, labels, 1);
    dr_http_add_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    dr_http_add_header(req, "Cache-Control", "no-store");
    dr_http_respond_error(req, 401, "UNAUTHENTICATED", "invalid token: %s", why);
}

int dr__rt_authenticate(struct dr_hub *hub, struct dr_http_req *req, struct dr_jwt_claims **out)
{
    char why[DR_JWT_WHY_SIZE] = "malformed";
    char *token = NULL;
    int err;

    *out = NULL;
    err = dr__rt_request_token(req, &token);
    if (err == DR_ENOTFOUND) {
        dr_metrics_inc(RT_M_REFUSED, "reason=\"no_token\"", 1);
        dr_http_add_header(req, "WWW-Authenticate", "Bearer");
        dr_http_respond_error(req, 401, "UNAUTHENTICATED",
                              "a token is required (Authorization: Bearer or access_token)");
        return DR_EAUTH;
    }
    if (err == DR_ETOOBIG) {
        refuse(req, "too_large");
        return DR_EAUTH;
    }
    if (err) {
        refuse(req, "malformed");
        return DR_EAUTH;
    }
    err = dr__rt_verify(hub, token, strlen(token), out, why, sizeof(why));
    free(token);
    if (err) {
        DR_INFO("realtime", "token refused", "reason=%s", why);
        refuse(req, why);
        return DR_EAUTH;
    }
    return DR_OK;
}
