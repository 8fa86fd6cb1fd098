/*
 * A JWKS document fetched from a URL into a dr_jwt_keys: once at creation, then again when a
 * token names a key id the set does not have (at most once per DR_JWKS_REFRESH_INTERVAL_MS, so
 * a stream of forged kids cannot turn into a stream of fetches). A failed fetch keeps the keys
 * that were there.
 *
 * Loop thread only (the keys themselves may be used for verification on any thread).
 */
#ifndef DR_JWKS_SOURCE_H
#define DR_JWKS_SOURCE_H

#include <uv.h>

#include "dr/jwt.h"

struct dr_jwks_source;

/* 1 when s is an http:// or https:// URL rather than a file path. */
int dr_jwks_is_url(const char *s);
/* Starts the first fetch. keys and url are borrowed / copied; keys must outlive the source. */
int dr_jwks_source_create(uv_loop_t *loop, struct dr_jwt_keys *keys, const char *url,
                          struct dr_jwks_source **out);
/* A verification failed with unknown_kid: refetch, if the gate allows it now. */
void dr_jwks_source_unknown_kid(struct dr_jwks_source *src);
/* Number of documents loaded so far. */
unsigned dr_jwks_source_loads(const struct dr_jwks_source *src);
void dr_jwks_source_destroy(struct dr_jwks_source *src); /* NULL-safe */

#endif
