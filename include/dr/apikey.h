/*
 * API keys for the publish and admin APIs. Keys are configured as SHA-256 digests; a request
 * presents the key in "Authorization: Bearer <key>" or "X-API-Key: <key>". The digest of what was
 * presented is compared with every configured digest in constant time. With no keys configured,
 * only loopback clients are served.
 */
#ifndef DR_APIKEY_H
#define DR_APIKEY_H

#include "dr/config.h"
#include "dr/http.h"

/* Returns 1 when req may use an API needing role ("service" or "admin"; admin keys may do
 * everything). Otherwise answers 401/403 with a JSON error and returns 0 (req is consumed).
 * A key with a rate (api_keys[].rate, burst) takes a token from its bucket for each request it
 * is allowed to make; when there is none the answer is 429 RESOURCE_EXHAUSTED with Retry-After,
 * counted in dr_api_key_rate_limited_total{key}. A request needing role admin is recorded in the
 * audit log (dr/audit.h) with the key's name, "loopback" or "anonymous", whether it is let
 * through or not. Loop thread (any thread would do: the buckets have their own locks). */
int dr_apikey_authorize(const struct dr_config *cfg, struct dr_http_req *req, const char *role);

#endif
