/*
 * Internals shared by the files of the JWT module: algorithms and the immutable key snapshot
 * that every verify works on.
 */
#ifndef DR_REALTIME_JWT_INT_H
#define DR_REALTIME_JWT_INT_H

#include <openssl/evp.h>
#include <stdatomic.h>
#include <stddef.h>

#include "dr/jwt.h"

enum dr__jwt_alg {
    DR__JWT_HS256,
    DR__JWT_HS384,
    DR__JWT_HS512,
    DR__JWT_RS256,
    DR__JWT_ES256,
    DR__JWT_NALGS
};

#define DR__JWT_HS_ALL ((1u << DR__JWT_HS256) | (1u << DR__JWT_HS384) | (1u << DR__JWT_HS512))

/* A usable JWKS key; alg is RS256 for RSA keys and ES256 for EC P-256 keys. */
struct dr__jwk {
    char *kid; /* NULL when the key has none */
    enum dr__jwt_alg alg;
    EVP_PKEY *pkey;
    /* A verify context initialised for pkey and the algorithm's digest: each verify copies it
     * instead of initialising its own, which in OpenSSL 3 costs algorithm fetches. NULL if it
     * could not be made. Never used directly, only as the source of a copy. */
    EVP_MD_CTX *tmpl;
};

/*
 * One version of the keys. Never modified after it is published, so verifies read it without
 * locks; freed when the last reference goes.
 */
struct dr__jwt_keyset {
    atomic_int refs;
    unsigned char *secret; /* NULL when no secret is configured */
    size_t secret_len;
    /* HMAC keyed with the secret, per HS algorithm (NULL if it could not be made): verifies
     * duplicate one instead of re-keying, which costs several digest fetches in OpenSSL 3. */
    EVP_MAC_CTX *hmac[DR__JWT_HS512 + 1];
    unsigned hs_mask; /* bits 1 << DR__JWT_HSxxx the secret may verify */
    struct dr__jwk *jwks;
    size_t njwks;
};

/* "HS256" -> DR__JWT_HS256 ...; DR__JWT_NALGS when not one of ours. Case-sensitive. */
enum dr__jwt_alg dr__jwt_alg_parse(const char *name);
const char *dr__jwt_alg_name(enum dr__jwt_alg alg);
/* The digest of an algorithm (SHA-256/384/512). */
const EVP_MD *dr__jwt_alg_md(enum dr__jwt_alg alg);

/* A new reference to the current snapshot; release it with dr__jwt_keyset_release(). */
struct dr__jwt_keyset *dr__jwt_keys_acquire(const struct dr_jwt_keys *keys);
void dr__jwt_keyset_release(struct dr__jwt_keyset *ks); /* NULL-safe */

#endif
