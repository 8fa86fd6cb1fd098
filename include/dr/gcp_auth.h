/*
 * Google Cloud credentials for outbound calls (Pub/Sub REST), as an asynchronous provider of
 * the "Authorization: Bearer ..." header on a libuv loop:
 *
 *   none      no header (the Pub/Sub emulator, tests);
 *   sa_jwt    a service-account JSON key file: a self-signed JWT (RS256, no token round trip)
 *             with kid = private_key_id, iss = sub = client_email, aud = the API's audience,
 *             exp = iat + lifetime; regenerated refresh_margin_s before it expires;
 *   metadata  the GCE/GKE/Cloud Run metadata server: GET
 *             http://HOST/computeMetadata/v1/instance/service-accounts/default/token with
 *             Metadata-Flavor: Google; cached until refresh_margin_s before expires_in, and
 *             concurrent callers share one fetch.
 *
 * Everything runs on the loop thread that created the provider, callbacks included. Tokens are
 * never logged.
 */
#ifndef DR_GCP_AUTH_H
#define DR_GCP_AUTH_H

#include <stdint.h>
#include <uv.h>

#include "dr/http_client.h"

struct dr_gcp_auth;

enum dr_gcp_auth_mode {
    DR_GCP_AUTH_NONE,
    DR_GCP_AUTH_SA_JWT,
    DR_GCP_AUTH_METADATA,
};

#define DR_GCP_AUTH_PUBSUB_AUDIENCE "https://pubsub.googleapis.com/"

struct dr_gcp_auth_conf {
    enum dr_gcp_auth_mode mode;
    const char *credentials_file; /* sa_jwt: path of the service-account JSON key */
    const char *audience;         /* sa_jwt: NULL = DR_GCP_AUTH_PUBSUB_AUDIENCE */
    const char *metadata_host;    /* metadata: "host[:port]"; NULL = GCE_METADATA_HOST env,
                                     else metadata.google.internal */
    int token_lifetime_s;         /* sa_jwt: 0 = 3600 (the maximum Google accepts) */
    int refresh_margin_s;         /* 0 = 300: renew this long before expiry */
    long timeout_ms;              /* metadata request; 0 = 10 s */
};

/*
 * Called once per dr_gcp_auth_header() with err DR_OK and header = "Authorization: Bearer ..."
 * (or NULL in mode none), valid only during the call; or with an error: DR_EAUTH (credentials
 * refused or malformed token answer), DR_EIO (metadata server unreachable, 5xx or timeout),
 * DR_EUNAVAIL (the provider is being destroyed).
 */
typedef void (*dr_gcp_auth_cb)(void *ctx, int err, const char *header);

/*
 * Creates a provider. hc is borrowed (metadata mode needs it; it must outlive the provider).
 * In sa_jwt mode the key file is read and parsed here, synchronously, so call this at startup:
 * DR_EINVAL with a logged reason (never the key) when the file is missing or malformed, or the
 * key is not an RSA private key.
 */
int dr_gcp_auth_create(uv_loop_t *loop, struct dr_hc *hc, const struct dr_gcp_auth_conf *conf,
                       struct dr_gcp_auth **out);
/*
 * Picks the mode from the environment, the way Google's client libraries do:
 * PUBSUB_EMULATOR_HOST set → none; GOOGLE_APPLICATION_CREDENTIALS set → sa_jwt with that file;
 * otherwise metadata.
 */
int dr_gcp_auth_create_from_env(uv_loop_t *loop, struct dr_hc *hc, struct dr_gcp_auth **out);
/*
 * Whether path holds a service-account JSON key dr_gcp_auth_create() can use (readable, JSON,
 * type service_account, client_email, private_key_id and an RSA private_key in PEM). DR_OK, or
 * DR_EINVAL with the reason in why: never the file's contents. Blocks (reads the file).
 */
int dr_gcp_credentials_check(const char *path, char *why, size_t whysz);
/* Pending callbacks run with DR_EUNAVAIL (from inside this call); the memory is released once
 * the provider's libuv handle has closed, so the loop must run once more. NULL-safe. */
void dr_gcp_auth_destroy(struct dr_gcp_auth *auth);

enum dr_gcp_auth_mode dr_gcp_auth_mode(const struct dr_gcp_auth *auth);

/*
 * Asks for the header. On DR_OK cb runs exactly once, later (never from inside this call),
 * from the cache when the token is fresh. DR_EINVAL on bad arguments, DR_EUNAVAIL while being
 * destroyed: then cb never runs.
 */
int dr_gcp_auth_header(struct dr_gcp_auth *auth, dr_gcp_auth_cb cb, void *ctx);
/* Drops every pending request made with this cb and ctx: cb will not run for them. */
void dr_gcp_auth_cancel(struct dr_gcp_auth *auth, dr_gcp_auth_cb cb, void *ctx);
/* Forgets the cached token (after the API answered 401), so the next request renews it. */
void dr_gcp_auth_invalidate(struct dr_gcp_auth *auth);

#endif
