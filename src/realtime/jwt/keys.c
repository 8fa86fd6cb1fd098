/*
 * The JWT key set: the HS secret and the JWKS keys, published as immutable reference-counted
 * snapshots so verifies on any thread never wait for a reload and never see half of one.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/util.h"
#include "realtime/jwt/jwt_int.h"

#define RSA_MIN_BITS   2048
#define RSA_MAX_BITS   8192
#define RSA_E_MAX_BITS 64
#define P256_COORD     32 /* bytes of an x or y coordinate */

struct dr_jwt_keys {
    pthread_mutex_t mu; /* guards cur (the pointer, not the snapshot) */
    struct dr__jwt_keyset *cur;
};

static const char *const alg_names[DR__JWT_NALGS] = {"HS256", "HS384", "HS512", "RS256", "ES256"};
static const char *const md_names[DR__JWT_NALGS] = {"SHA256", "SHA384", "SHA512", "SHA256",
                                                    "SHA256"};
static EVP_MD *mds[DR__JWT_NALGS];
static pthread_once_t mds_once = PTHREAD_ONCE_INIT;

/* Fetching a digest by name costs a lookup per call in OpenSSL 3; do it once per process. */
static void fetch_mds(void)
{
    for (int i = 0; i < DR__JWT_NALGS; i++) {
        mds[i] = EVP_MD_fetch(NULL, md_names[i], NULL);
    }
}

enum dr__jwt_alg dr__jwt_alg_parse(const char *name)
{
    for (int i = 0; name && i < DR__JWT_NALGS; i++) {
        if (strcmp(name, alg_names[i]) == 0) {
            return (enum dr__jwt_alg)i;
        }
    }
    return DR__JWT_NALGS;
}

const char *dr__jwt_alg_name(enum dr__jwt_alg alg)
{
    return alg < DR__JWT_NALGS ? alg_names[alg] : "?";
}

const EVP_MD *dr__jwt_alg_md(enum dr__jwt_alg alg)
{
    pthread_once(&mds_once, fetch_mds);
    return alg < DR__JWT_NALGS ? mds[alg] : NULL;
}

static void jwks_free_one(struct dr__jwk *k)
{
    free(k->kid);
    EVP_MD_CTX_free(k->tmpl);
    EVP_PKEY_free(k->pkey);
}

static void jwks_free(struct dr__jwk *jwks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        jwks_free_one(&jwks[i]);
    }
    free(jwks);
}

void dr__jwt_keyset_release(struct dr__jwt_keyset *ks)
{
    if (!ks || atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    for (int i = 0; i <= DR__JWT_HS512; i++) {
        EVP_MAC_CTX_free(ks->hmac[i]);
    }
    if (ks->secret) {
        OPENSSL_cleanse(ks->secret, ks->secret_len);
        free(ks->secret);
    }
    jwks_free(ks->jwks, ks->njwks);
    free(ks);
}

struct dr__jwt_keyset *dr__jwt_keys_acquire(const struct dr_jwt_keys *ckeys)
{
    /* The mutex is the only mutable part of a dr_jwt_keys a verify touches; keys objects are
     * always heap-allocated by dr_jwt_keys_create(), never const-defined. */
    struct dr_jwt_keys *keys = (struct dr_jwt_keys *)ckeys;
    struct dr__jwt_keyset *ks;

    pthread_mutex_lock(&keys->mu);
    ks = keys->cur;
    atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&keys->mu);
    return ks;
}

static EVP_MD_CTX *verify_template(EVP_PKEY *pkey, enum dr__jwt_alg alg)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx && EVP_DigestVerifyInit(ctx, NULL, dr__jwt_alg_md(alg), NULL, pkey) != 1) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
        ERR_clear_error();
    }
    return ctx;
}

/* Gives an unpublished snapshot a copy of secret and the keyed HMAC templates. */
static void keyset_secret(struct dr__jwt_keyset *ks, const void *secret, size_t len)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

    ks->secret = dr_xmalloc(len);
    memcpy(ks->secret, secret, len);
    ks->secret_len = len;
    for (int i = 0; mac && i <= DR__JWT_HS512; i++) {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md_names[i], 0),
            OSSL_PARAM_construct_end(),
        };
        ks->hmac[i] = EVP_MAC_CTX_new(mac);
        if (ks->hmac[i] && EVP_MAC_init(ks->hmac[i], ks->secret, len, params) != 1) {
            EVP_MAC_CTX_free(ks->hmac[i]);
            ks->hmac[i] = NULL;
        }
    }
    EVP_MAC_free(mac);
    ERR_clear_error();
}

/* A new unpublished snapshot with one reference, copying the parts of old not replaced. */
static struct dr__jwt_keyset *keyset_copy(const struct dr__jwt_keyset *old, int copy_secret,
                                          int copy_jwks)
{
    struct dr__jwt_keyset *ks = dr_xcalloc(1, sizeof(*ks));

    atomic_init(&ks->refs, 1);
    ks->hs_mask = old ? old->hs_mask : DR__JWT_HS_ALL;
    if (old && copy_secret && old->secret) {
        keyset_secret(ks, old->secret, old->secret_len);
    }
    if (old && copy_jwks && old->njwks) {
        ks->jwks = dr_xcalloc(old->njwks, sizeof(*ks->jwks));
        for (size_t i = 0; i < old->njwks; i++) {
            ks->jwks[i].kid = dr_xstrdup(old->jwks[i].kid);
            ks->jwks[i].alg = old->jwks[i].alg;
            EVP_PKEY_up_ref(old->jwks[i].pkey);
            ks->jwks[i].pkey = old->jwks[i].pkey;
            ks->jwks[i].tmpl = verify_template(old->jwks[i].pkey, old->jwks[i].alg);
        }
        ks->njwks = old->njwks;
    }
    return ks;
}

/* Publishes ks (taking its reference) and drops the set's reference to the previous one. */
static void publish(struct dr_jwt_keys *keys, struct dr__jwt_keyset *ks)
{
    struct dr__jwt_keyset *old;

    pthread_mutex_lock(&keys->mu);
    old = keys->cur;
    keys->cur = ks;
    pthread_mutex_unlock(&keys->mu);
    dr__jwt_keyset_release(old);
}

struct dr_jwt_keys *dr_jwt_keys_create(void)
{
    struct dr_jwt_keys *keys = dr_xcalloc(1, sizeof(*keys));

    pthread_mutex_init(&keys->mu, NULL);
    keys->cur = keyset_copy(NULL, 0, 0);
    return keys;
}

void dr_jwt_keys_destroy(struct dr_jwt_keys *keys)
{
    if (!keys) {
        return;
    }
    dr__jwt_keyset_release(keys->cur);
    pthread_mutex_destroy(&keys->mu);
    free(keys);
}

/*
 * Writers (set_secret, set_hs_alg, load_jwks) build the next snapshot from the current one, so
 * two writers racing could lose one update; they are serialised by this lock. Verifies never
 * take it.
 */
static pthread_mutex_t writers = PTHREAD_MUTEX_INITIALIZER;

int dr_jwt_keys_set_secret(struct dr_jwt_keys *keys, const void *secret, size_t len)
{
    struct dr__jwt_keyset *cur, *ks;

    if (!keys || (len > 0 && (!secret || len < DR_JWT_MIN_SECRET))) {
        return DR_EINVAL;
    }
    pthread_mutex_lock(&writers);
    cur = dr__jwt_keys_acquire(keys);
    ks = keyset_copy(cur, 0, 1);
    dr__jwt_keyset_release(cur);
    if (len > 0) {
        keyset_secret(ks, secret, len);
    }
    publish(keys, ks);
    pthread_mutex_unlock(&writers);
    return DR_OK;
}

int dr_jwt_keys_set_hs_alg(struct dr_jwt_keys *keys, const char *alg)
{
    struct dr__jwt_keyset *cur, *ks;
    unsigned mask = DR__JWT_HS_ALL;

    if (!keys) {
        return DR_EINVAL;
    }
    if (alg && *alg) {
        enum dr__jwt_alg a = dr__jwt_alg_parse(alg);
        if (a != DR__JWT_HS256 && a != DR__JWT_HS384 && a != DR__JWT_HS512) {
            return DR_EINVAL;
        }
        mask = 1u << a;
    }
    pthread_mutex_lock(&writers);
    cur = dr__jwt_keys_acquire(keys);
    ks = keyset_copy(cur, 1, 1);
    dr__jwt_keyset_release(cur);
    ks->hs_mask = mask;
    publish(keys, ks);
    pthread_mutex_unlock(&writers);
    return DR_OK;
}

size_t dr_jwt_keys_jwks_count(const struct dr_jwt_keys *keys)
{
    struct dr__jwt_keyset *ks;
    size_t n;

    if (!keys) {
        return 0;
    }
    ks = dr__jwt_keys_acquire(keys);
    n = ks->njwks;
    dr__jwt_keyset_release(ks);
    return n;
}

/* ---- JWKS parsing ---- */

enum jwk_result { JWK_USE, JWK_SKIP, JWK_BAD };

/* Decodes the base64url member name of jwk; DR_ENOTFOUND if absent, DR_EINVAL if bad. */
static int b64_member(const cJSON *jwk, const char *name, unsigned char **out, size_t *len)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(jwk, name);

    if (!it) {
        return DR_ENOTFOUND;
    }
    if (!cJSON_IsString(it) || !*it->valuestring) {
        return DR_EINVAL;
    }
    return dr_base64url_decode(it->valuestring, strlen(it->valuestring), out, len) ? DR_EINVAL
                                                                                   : DR_OK;
}

/*
 * Imports a public key. EC points are checked to be on the curve; RSA moduli are not tested
 * for primality or small factors (OpenSSL's check takes milliseconds per key and a bad modulus
 * can only make signatures fail to verify).
 */
static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, int check_point)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY_CTX *check = NULL;
    EVP_PKEY *pkey = NULL;

    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        goto out;
    }
    if (!check_point) {
        goto out;
    }
    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!check || EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
out:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static enum jwk_result rsa_key(const cJSON *jwk, EVP_PKEY **pkey, const char **why)
{
    unsigned char *n = NULL, *e = NULL;
    size_t nlen = 0, elen = 0;
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    enum jwk_result res = JWK_BAD;

    if (b64_member(jwk, "n", &n, &nlen) || b64_member(jwk, "e", &e, &elen)) {
        *why = "rsa_n_e_missing_or_not_base64url";
        goto out;
    }
    bn = BN_bin2bn(n, (int)nlen, NULL);
    be = BN_bin2bn(e, (int)elen, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!bn || !be || !bld) {
        *why = "out_of_memory";
        goto out;
    }
    if (BN_num_bits(bn) < RSA_MIN_BITS || BN_num_bits(bn) > RSA_MAX_BITS) {
        *why = "rsa_modulus_size";
        goto out;
    }
    if (!BN_is_odd(be) || BN_num_bits(be) < 2 || BN_num_bits(be) > RSA_E_MAX_BITS) {
        *why = "rsa_exponent";
        goto out;
    }
    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)) {
        *why = "out_of_memory";
        goto out;
    }
    *pkey = pkey_fromdata("RSA", bld, 0);
    if (!*pkey) {
        *why = "rsa_key_rejected";
        goto out;
    }
    res = JWK_USE;
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return res;
}

static enum jwk_result ec_key(const cJSON *jwk, EVP_PKEY **pkey, const char **why)
{
    unsigned char *x = NULL, *y = NULL, point[1 + 2 * P256_COORD];
    size_t xlen = 0, ylen = 0;
    OSSL_PARAM_BLD *bld = NULL;
    enum jwk_result res = JWK_BAD;

    if (b64_member(jwk, "x", &x, &xlen) || b64_member(jwk, "y", &y, &ylen)) {
        *why = "ec_x_y_missing_or_not_base64url";
        goto out;
    }
    if (xlen != P256_COORD || ylen != P256_COORD) {
        *why = "ec_coordinate_length";
        goto out;
    }
    point[0] = 0x04; /* uncompressed SEC 1 point */
    memcpy(point + 1, x, P256_COORD);
    memcpy(point + 1 + P256_COORD, y, P256_COORD);
    bld = OSSL_PARAM_BLD_new();
    if (!bld ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point))) {
        *why = "out_of_memory";
        goto out;
    }
    *pkey = pkey_fromdata("EC", bld, 1);
    if (!*pkey) {
        *why = "ec_point_not_on_curve";
        goto out;
    }
    res = JWK_USE;
out:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return res;
}

/* Whether key_ops (absent = any) allows verify; -1 when key_ops is not an array of strings. */
static int ops_allow_verify(const cJSON *jwk)
{
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(jwk, "key_ops"), *op;
    int found = 0;

    if (!ops) {
        return 1;
    }
    if (!cJSON_IsArray(ops)) {
        return -1;
    }
    cJSON_ArrayForEach(op, ops)
    {
        if (!cJSON_IsString(op)) {
            return -1;
        }
        found |= strcmp(op->valuestring, "verify") == 0;
    }
    return found;
}

/* Classifies one JWK and, when usable, fills k. */
static enum jwk_result parse_jwk(const cJSON *jwk, struct dr__jwk *k, const char **why)
{
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(jwk, "kid");
    const cJSON *use = cJSON_GetObjectItemCaseSensitive(jwk, "use");
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(jwk, "alg");
    const char *kty = dr_json_str(jwk, "kty"), *crv;
    enum jwk_result res;
    int ops;

    if (!cJSON_IsObject(jwk) || !kty) {
        *why = "key_without_kty";
        return JWK_BAD;
    }
    if ((kid && !cJSON_IsString(kid)) || (use && !cJSON_IsString(use)) ||
        (alg && !cJSON_IsString(alg))) {
        *why = "kid_use_alg_not_strings";
        return JWK_BAD;
    }
    ops = ops_allow_verify(jwk);
    if (ops < 0) {
        *why = "key_ops_not_string_array";
        return JWK_BAD;
    }
    if ((use && strcmp(use->valuestring, "sig") != 0) || ops == 0) {
        return JWK_SKIP;
    }
    if (strcmp(kty, "RSA") == 0) {
        k->alg = DR__JWT_RS256;
    } else if (strcmp(kty, "EC") == 0) {
        crv = dr_json_str(jwk, "crv");
        if (!crv || strcmp(crv, "P-256") != 0) {
            return JWK_SKIP;
        }
        k->alg = DR__JWT_ES256;
    } else {
        return JWK_SKIP;
    }
    /* The key is pinned to the one algorithm of its type; a key published for another one
     * (RS384, PS256, ...) is not ours to use. */
    if (alg && dr__jwt_alg_parse(alg->valuestring) != k->alg) {
        return JWK_SKIP;
    }
    res = k->alg == DR__JWT_RS256 ? rsa_key(jwk, &k->pkey, why) : ec_key(jwk, &k->pkey, why);
    if (res == JWK_USE) {
        k->kid = kid ? dr_xstrdup(kid->valuestring) : NULL;
        k->tmpl = verify_template(k->pkey, k->alg);
    }
    return res;
}

static int kid_taken(const struct dr__jwk *jwks, size_t n, const char *kid)
{
    for (size_t i = 0; kid && i < n; i++) {
        if (jwks[i].kid && strcmp(jwks[i].kid, kid) == 0) {
            return 1;
        }
    }
    return 0;
}

int dr_jwt_keys_load_jwks(struct dr_jwt_keys *keys, const char *json, size_t len)
{
    struct dr__jwt_keyset *cur = NULL, *ks = NULL;
    struct dr__jwk *jwks = NULL;
    size_t n = 0, loaded, index = 0, skipped = 0;
    const char *why = NULL;
    const cJSON *arr, *jwk;
    cJSON *root = NULL;
    int err = DR_EINVAL;

    if (!keys || !json) {
        return DR_EINVAL;
    }
    if (len > DR_JWKS_MAX_SIZE) {
        why = "document_too_large";
        err = DR_ETOOBIG;
        goto out;
    }
    root = dr_json_parse(json, len);
    arr = cJSON_GetObjectItemCaseSensitive(root, "keys");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(arr)) {
        why = "not_a_jwks_document";
        goto out;
    }
    jwks = dr_xcalloc(DR_JWKS_MAX_KEYS, sizeof(*jwks));
    cJSON_ArrayForEach(jwk, arr)
    {
        struct dr__jwk k = {0};
        enum jwk_result res = parse_jwk(jwk, &k, &why);

        if (res == JWK_BAD) {
            /* one key we cannot take (a weak or broken one) does not cost the others: an
             * identity provider that publishes it beside good keys would otherwise lock every
             * user out. Alone, it leaves no usable key and the document is rejected. */
            DR_WARN("jwt", "jwks key skipped", "reason=%s key_index=%zu", why, index);
            skipped++;
        } else if (res == JWK_SKIP) {
            skipped++;
        } else if (kid_taken(jwks, n, k.kid)) {
            why = "duplicate_kid";
            jwks_free_one(&k);
            goto out;
        } else if (n == DR_JWKS_MAX_KEYS) {
            why = "too_many_keys";
            jwks_free_one(&k);
            goto out;
        } else {
            jwks[n++] = k;
        }
        index++;
    }
    if (n == 0) {
        why = "no_usable_key";
        goto out;
    }
    pthread_mutex_lock(&writers);
    cur = dr__jwt_keys_acquire(keys);
    ks = keyset_copy(cur, 1, 0);
    dr__jwt_keyset_release(cur);
    ks->jwks = jwks;
    ks->njwks = n;
    loaded = n;
    jwks = NULL;
    n = 0;
    publish(keys, ks);
    pthread_mutex_unlock(&writers);
    err = DR_OK;
    DR_INFO("jwt", "jwks loaded", "keys=%zu skipped=%zu", loaded, skipped);
out:
    if (err) {
        DR_WARN("jwt", "jwks rejected, previous keys kept", "reason=%s key_index=%zu", why, index);
        ERR_clear_error();
    }
    jwks_free(jwks, n);
    cJSON_Delete(root);
    return err;
}
