#include "dr/jwks_source.h"

#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/http_client.h"
#include "dr/log.h"
#include "dr/util.h"

struct dr_jwks_source {
    struct dr_jwt_keys *keys;
    struct dr_hc *hc;
    char *url;
    struct dr_jwks_refresh_gate gate;
    int fetching;
    unsigned loads;
};

int dr_jwks_is_url(const char *s)
{
    return s && (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0);
}

static void on_fetched(void *ctx, int err, const struct dr_hc_resp *resp)
{
    struct dr_jwks_source *src = ctx;

    src->fetching = 0;
    if (err == DR_EUNAVAIL) {
        return; /* shutting down */
    }
    if (err || !resp || resp->status != 200) {
        DR_WARN("jwks", "JWKS fetch failed: keeping the keys we have", "status=%ld error=\"%s\"",
                resp ? resp->status : 0L, dr_strerror(err));
        return;
    }
    if (dr_jwt_keys_load_jwks(src->keys, resp->body, resp->body_len) != DR_OK) {
        DR_WARN("jwks", "JWKS document refused: keeping the keys we have", "bytes=%zu",
                resp->body_len);
        return;
    }
    src->loads++;
    DR_INFO("jwks", "JWKS loaded", "keys=%zu", dr_jwt_keys_jwks_count(src->keys));
}

static void fetch(struct dr_jwks_source *src)
{
    static const char *const hdrs[] = {"Accept: application/json", NULL};
    struct dr_hc_req r = {.method = "GET",
                          .url = src->url,
                          .headers = hdrs,
                          .timeout_ms = 10000,
                          .max_response = DR_JWKS_MAX_SIZE};

    if (src->fetching) {
        return;
    }
    if (dr_hc_request(src->hc, &r, on_fetched, src) == DR_OK) {
        src->fetching = 1;
    }
}

int dr_jwks_source_create(uv_loop_t *loop, struct dr_jwt_keys *keys, const char *url,
                          struct dr_jwks_source **out)
{
    struct dr_jwks_source *src;

    *out = NULL;
    if (!dr_jwks_is_url(url)) {
        return DR_EINVAL;
    }
    src = dr_xcalloc(1, sizeof(*src));
    src->keys = keys;
    src->url = dr_xstrdup(url);
    dr_jwks_refresh_gate_init(&src->gate, 0);
    if (dr_hc_create(loop, &src->hc) != DR_OK) {
        dr_jwks_source_destroy(src);
        return DR_EIO;
    }
    fetch(src);
    *out = src;
    return DR_OK;
}

void dr_jwks_source_unknown_kid(struct dr_jwks_source *src)
{
    /* A fetch in flight (the one at start, say) brings the current keys: asking the gate now
     * would use up the interval's one refetch for nothing and refuse a rotation seen next. */
    if (src && !src->fetching && dr_jwks_refresh_gate_allow(&src->gate, dr_mono_ms())) {
        fetch(src);
    }
}

unsigned dr_jwks_source_loads(const struct dr_jwks_source *src)
{
    return src ? src->loads : 0;
}

void dr_jwks_source_destroy(struct dr_jwks_source *src)
{
    if (!src) {
        return;
    }
    dr_hc_destroy(src->hc);
    dr_jwks_refresh_gate_cleanup(&src->gate);
    free(src->url);
    free(src);
}
