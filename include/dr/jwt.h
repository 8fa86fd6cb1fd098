/*
 * JWT (RFC 7519) verification for WebSocket/SSE clients, on OpenSSL 3 directly.
 *
 * Algorithms: HS256/384/512 with one shared secret; RS256 and ES256 with public keys from a
 * JWKS document (RFC 7517). Each key is pinned to one algorithm: the secret verifies only the
 * HS family (optionally one exact HS algorithm), an RSA key only RS256, an EC P-256 key only
 * ES256. alg=none is always refused, and an HS token that names the kid of an RSA/EC key is
 * refused, so a public key can never be used as an HMAC secret.
 *
 * Thread-safety: dr_jwt_verify() may run on any number of threads at once (event loop and
 * workers) while another thread calls dr_jwt_keys_set_secret(), dr_jwt_keys_set_hs_alg() or
 * dr_jwt_keys_load_jwks(): every verify works on an immutable, reference-counted snapshot of
 * the keys taken when it starts. Only dr_jwt_keys_destroy() must not race with anything.
 */
#ifndef DR_JWT_H
#define DR_JWT_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults and caps for struct dr_jwt_opts. */
#define DR_JWT_LEEWAY_DEFAULT 60   /* seconds */
#define DR_JWT_LEEWAY_MAX     60   /* seconds; larger values are capped */
#define DR_JWT_NO_LEEWAY      (-1) /* leeway_s value for exact exp/nbf checks */
#define DR_JWT_MAX_SIZE       8192 /* bytes of compact token */
#define DR_JWT_MIN_SECRET     32   /* bytes; RFC 7518 §3.2: at least the HS256 output size */
#define DR_JWT_WHY_SIZE       32   /* a why buffer of this size holds every reason */
#define DR_JWKS_MAX_SIZE      (1024 * 1024) /* bytes of JWKS document */
#define DR_JWKS_MAX_KEYS      64            /* usable keys per document */

struct dr_jwt_keys;

/*
 * Creates an empty key set: no secret, no JWKS keys, any HS algorithm allowed once a secret is
 * set. Never fails (aborts on out-of-memory). Free with dr_jwt_keys_destroy().
 */
struct dr_jwt_keys *dr_jwt_keys_create(void);

/* NULL-safe. No verify may be running on keys. */
void dr_jwt_keys_destroy(struct dr_jwt_keys *keys);

/*
 * Sets (copies) the HS shared secret; len 0 removes it, after which every HS token is refused
 * with alg_not_allowed. DR_EINVAL when 0 < len < DR_JWT_MIN_SECRET (keys unchanged).
 * The secret is never logged.
 */
int dr_jwt_keys_set_secret(struct dr_jwt_keys *keys, const void *secret, size_t len);

/*
 * Pins the secret to one algorithm: "HS256", "HS384" or "HS512"; NULL or "" allows all three
 * (the default). DR_EINVAL for anything else (keys unchanged).
 */
int dr_jwt_keys_set_hs_alg(struct dr_jwt_keys *keys, const char *alg);

/*
 * Replaces all JWKS keys atomically with the keys of json (len bytes, no NUL needed):
 * {"keys":[{"kty":"RSA","kid":..,"n":..,"e":..}, {"kty":"EC","crv":"P-256","x":..,"y":..}]}.
 *
 * Keys this module cannot use are skipped: "use" other than "sig", "key_ops" without "verify",
 * another kty or crv, or an "alg" other than RS256 (RSA) / ES256 (EC). A usable-looking key that
 * is broken (missing or bad base64url members, RSA modulus below 2048 or above 8192 bits or an
 * even exponent, EC point not on P-256), two keys with the same kid, more than DR_JWKS_MAX_KEYS
 * usable keys, a document over DR_JWKS_MAX_SIZE, malformed JSON or a document with no usable key
 * fail the whole load with DR_EINVAL (or DR_ETOOBIG): the previous keys stay in place and the
 * reason is logged. Verifies running meanwhile finish with the keys they started with.
 */
int dr_jwt_keys_load_jwks(struct dr_jwt_keys *keys, const char *json, size_t len);

/* Number of usable JWKS keys currently loaded. */
size_t dr_jwt_keys_jwks_count(const struct dr_jwt_keys *keys);

struct dr_jwt_opts {
    const char *issuer;   /* when set, "iss" must equal it */
    const char *audience; /* when set, "aud" (string or array of strings) must contain it */
    int leeway_s;         /* clock skew for exp/nbf: 0 = DR_JWT_LEEWAY_DEFAULT, DR_JWT_NO_LEEWAY,
                             or 1..DR_JWT_LEEWAY_MAX (larger values are capped) */
    int64_t now;          /* Unix seconds; 0 = the wall clock (tests set it) */
    size_t max_size;      /* compact token bytes; 0 = DR_JWT_MAX_SIZE */
    int allow_no_exp;     /* accept tokens without "exp" (refused with missing_exp otherwise) */
};

/* What a verified token says. Strings are NUL-terminated copies; NULL when the claim is absent. */
struct dr_jwt_claims {
    char *sub;
    char *org;    /* "org", else "org_id" */
    char **rooms; /* "rooms": array of nrooms strings */
    size_t nrooms;
    int admin;   /* "role":"admin" or "admin":true */
    int64_t exp; /* 0 when absent */
    int64_t iat; /* 0 when absent */
    char *jti;
    char *iss;
    char alg[8]; /* the verified algorithm, "RS256" ... */
    cJSON *raw;  /* the whole payload, for other claims; owned by the claims */
};

/*
 * Verifies the compact JWS token (len bytes, no NUL needed) against keys and opts (NULL opts =
 * defaults). Returns DR_OK and sets *out (if out is not NULL) to claims the caller frees with
 * dr_jwt_claims_destroy(); or DR_EAUTH, *out NULL, and writes one machine reason into why (if
 * not NULL; DR_JWT_WHY_SIZE bytes suffice):
 *   too_large        the token exceeds opts->max_size
 *   malformed        not three canonical unpadded base64url segments, header/payload not
 *                    exactly one JSON object, a claim of the wrong type, a duplicated header
 *                    member or claim this module reads, or a "crit" header (no extension is
 *                    understood)
 *   alg_none         alg "none" in any letter case
 *   alg_not_allowed  an algorithm outside HS256/384/512, RS256, ES256; HS with no secret, with
 *                    another pinned HS algorithm, or with the kid of a JWKS key; RS256 with an
 *                    EC key's kid or ES256 with an RSA key's kid
 *   unknown_kid      RS256/ES256 whose kid is not loaded (or, without kid, not exactly one
 *                    key of that algorithm): the caller may refetch the JWKS, see
 *                    dr_jwks_refresh_gate
 *   bad_signature    the signature does not verify (includes an ES256 signature that is not
 *                    64 raw r||s bytes, e.g. DER)
 *   expired          now >= exp + leeway
 *   not_yet_valid    now < nbf - leeway
 *   missing_exp      no "exp" and opts->allow_no_exp is not set
 *   wrong_issuer     opts->issuer set and "iss" differs or is absent
 *   wrong_audience   opts->audience set and "aud" does not contain it
 *   internal         OpenSSL failed to run (fails closed)
 * DR_EINVAL (why "invalid_argument") when keys or token is NULL.
 * Thread-safe (see the top of this file). Never logs the token.
 */
int dr_jwt_verify(const struct dr_jwt_keys *keys, const char *token, size_t len,
                  const struct dr_jwt_opts *opts, struct dr_jwt_claims **out, char *why,
                  size_t whysz);

void dr_jwt_claims_destroy(struct dr_jwt_claims *claims); /* NULL-safe */
/* A deep copy of claims, for work that must not share them (freed with dr_jwt_claims_destroy). */
struct dr_jwt_claims *dr_jwt_claims_dup(const struct dr_jwt_claims *claims);

/*
 * Development tokens only (the local dashboard's "sign in with a development token"): signs
 * claims (a JSON object, serialised as is) as an HS256 JWT with header {"alg":"HS256",
 * "typ":"JWT"}. *out is a malloc'ed NUL-terminated token (length in *outlen if not NULL).
 * DR_EINVAL when secret_len < DR_JWT_MIN_SECRET or claims is not an object, DR_ETOOBIG when
 * the token would exceed DR_JWT_MAX_SIZE; *out is NULL on failure. Thread-safe.
 */
int dr_jwt_sign_hs256(const void *secret, size_t secret_len, const cJSON *claims, char **out,
                      size_t *outlen);

/*
 * Bounds how often an unknown_kid may trigger a JWKS refetch. Caller-allocated; lock-free and
 * thread-safe: of several threads asking at once, at most one is allowed per interval.
 */
struct dr_jwks_refresh_gate {
    _Atomic int64_t last_ms; /* monotonic ms of the last allowed refetch; INT64_MIN = never */
    int64_t interval_ms;
};

#define DR_JWKS_REFRESH_INTERVAL_MS 30000

/* interval_ms 0 = DR_JWKS_REFRESH_INTERVAL_MS. The first ask is always allowed. */
void dr_jwks_refresh_gate_init(struct dr_jwks_refresh_gate *g, int64_t interval_ms);
void dr_jwks_refresh_gate_cleanup(struct dr_jwks_refresh_gate *g);

/*
 * 1 if a refetch may start now (and records now as the last refetch), else 0.
 * now_ms: monotonic milliseconds, 0 = dr_mono_ms().
 */
int dr_jwks_refresh_gate_allow(struct dr_jwks_refresh_gate *g, int64_t now_ms);

#endif
