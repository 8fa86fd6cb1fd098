/*
 * Development tokens for the local dashboard: POST /dev/token {"sub":"alice","org":"acme"}
 * answers {"token":"<HS256 JWT>","token_type":"Bearer","expires_in":28800,...}.
 *
 * Only when all of these hold:
 *   - the daemon runs in local mode;
 *   - no production JWT configuration is set: neither DR_JWT_SECRET / realtime.jwt_secret nor
 *     DR_JWKS / realtime.jwks;
 *   - the client is on a loopback address and its Host header names a loopback host (so a web
 *     page elsewhere cannot reach the endpoint through DNS rebinding).
 * Otherwise the route does not exist (404) or the request is refused (403).
 *
 * The development secret is DR_DEVTOKEN_SECRET_LEN random hex characters generated at the
 * first start and kept in <data_dir>/DR_DEVTOKEN_SECRET_FILE (mode 0600, refused when group or
 * others may read it). The realtime module uses it as its HS secret under the same conditions,
 * so the tokens minted here are accepted by /ws, /events and the inbox API. Tokens carry the
 * configured issuer and audience (DR_JWT_ISSUER / DR_JWT_AUDIENCE or realtime.jwt_issuer /
 * jwt_audience) when set. Neither the secret nor a token is ever logged.
 */
#ifndef DR_DEVTOKEN_H
#define DR_DEVTOKEN_H

#include <stddef.h>

#include "dr/config.h"
#include "dr/http.h"

#define DR_DEVTOKEN_SECRET_FILE "dev-jwt-secret"
#define DR_DEVTOKEN_SECRET_LEN  64    /* hex characters (32 random bytes) */
#define DR_DEVTOKEN_TTL_S       28800 /* lifetime of a development token: 8 h */

struct dr_devtoken;

/* 1 when development tokens apply to cfg (local mode, no production JWT configuration). */
int dr_devtoken_enabled(const struct dr_config *cfg);

/*
 * Reads the development secret from cfg->data_dir, creating the file the first time (0600,
 * exclusive create, so two processes starting at once agree on one secret). out receives
 * DR_DEVTOKEN_SECRET_LEN characters and a NUL (outsz must be larger than that). On failure out
 * is emptied and err says why. Blocks (file system): start-up only. Any thread.
 */
int dr_devtoken_secret(const struct dr_config *cfg, char *out, size_t outsz, char *err,
                       size_t errsz);

/*
 * *out is NULL (and DR_OK returned) when development tokens do not apply. Fails (err says why)
 * when they apply but the secret cannot be read or created. Start-up only.
 */
int dr_devtoken_create(const struct dr_config *cfg, struct dr_devtoken **out, char *err,
                       size_t errsz);

/* Adds POST /dev/token to srv. NULL-safe (nothing is added). */
void dr_devtoken_register(struct dr_devtoken *dt, struct dr_http_server *srv);

/* Wipes the secret from memory. NULL-safe. */
void dr_devtoken_destroy(struct dr_devtoken *dt);

#endif
