/*
 * JWT verification: structure, algorithm and key selection, signature, then claims. The
 * payload is parsed only after its signature verified.
 */
#include <math.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/jwt.h"
#include "dr/util.h"
#include "realtime/jwt/jwt_int.h"

#define ES256_SIG        64 /* raw r||s, RFC 7518 §3.4 */
#define ES256_HALF       32
#define ECDSA_DER_MAX    80                 /* DER of two 33-byte integers plus headers */
#define NUMERIC_DATE_MAX 9007199254740991.0 /* 2^53 - 1: beyond it, seconds lose precision */

enum reason {
    R_OK,
    R_TOO_LARGE,
    R_MALFORMED,
    R_ALG_NONE,
    R_ALG_NOT_ALLOWED,
    R_UNKNOWN_KID,
    R_BAD_SIGNATURE,
    R_EXPIRED,
    R_NOT_YET_VALID,
    R_MISSING_EXP,
    R_WRONG_ISSUER,
    R_WRONG_AUDIENCE,
    R_INTERNAL,
};

static const char *const reason_names[] = {
    [R_OK] = "ok",
    [R_TOO_LARGE] = "too_large",
    [R_MALFORMED] = "malformed",
    [R_ALG_NONE] = "alg_none",
    [R_ALG_NOT_ALLOWED] = "alg_not_allowed",
    [R_UNKNOWN_KID] = "unknown_kid",
    [R_BAD_SIGNATURE] = "bad_signature",
    [R_EXPIRED] = "expired",
    [R_NOT_YET_VALID] = "not_yet_valid",
    [R_MISSING_EXP] = "missing_exp",
    [R_WRONG_ISSUER] = "wrong_issuer",
    [R_WRONG_AUDIENCE] = "wrong_audience",
    [R_INTERNAL] = "internal",
};

/* The three segments of a compact JWS, pointing into the token. */
struct segments {
    const char *hdr, *payload, *sig;
    size_t hdr_len, payload_len, sig_len;
    size_t signed_len; /* header "." payload */
};

static int b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '-' ? 62 : 63;
}

/*
 * A segment's last character may carry bits beyond the data (2 or 4 of them); they must be
 * zero, or one token would have several spellings (a signature re-spelt without a key would
 * slip past anything that remembers tokens by their text).
 */
static int canonical(const char *seg, size_t len)
{
    int unused = len % 4 == 2 ? 0x0f : len % 4 == 3 ? 0x03 : 0;

    return len % 4 != 1 && (len == 0 || !(b64url_value(seg[len - 1]) & unused));
}

/* Exactly three segments of base64url without padding (RFC 7515 §2); only the signature may
 * be empty (and then only alg=none, refused later). */
static enum reason split(const char *t, size_t len, struct segments *s)
{
    const char *dot[2];
    size_t ndots = 0;

    for (size_t i = 0; i < len; i++) {
        if (t[i] == '.') {
            if (ndots == 2) {
                return R_MALFORMED;
            }
            dot[ndots++] = t + i;
        } else if (!b64url_char(t[i])) {
            return R_MALFORMED;
        }
    }
    if (ndots != 2) {
        return R_MALFORMED;
    }
    s->hdr = t;
    s->hdr_len = (size_t)(dot[0] - t);
    s->payload = dot[0] + 1;
    s->payload_len = (size_t)(dot[1] - s->payload);
    s->sig = dot[1] + 1;
    s->sig_len = (size_t)(t + len - s->sig);
    s->signed_len = (size_t)(dot[1] - t);
    if (s->hdr_len == 0 || s->payload_len == 0 || !canonical(s->hdr, s->hdr_len) ||
        !canonical(s->payload, s->payload_len) || !canonical(s->sig, s->sig_len)) {
        return R_MALFORMED;
    }
    return R_OK;
}

/*
 * Whether JSON text holds a NUL, raw or escaped. cJSON ends a string there, so a claim
 * "alice\u0000x" would be read as "alice": the token would speak for another user.
 */
static int has_nul(const char *p, size_t len)
{
    if (memchr(p, '\0', len)) {
        return 1;
    }
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] != '\\') {
            continue;
        }
        if (p[i + 1] == 'u' && i + 5 < len && memcmp(p + i + 2, "0000", 4) == 0) {
            return 1;
        }
        i++; /* the escaped character, which may be a backslash itself */
    }
    return 0;
}

/* Parses a base64url segment holding a JSON object. */
static enum reason json_segment(const char *seg, size_t len, cJSON **out)
{
    unsigned char *raw = NULL;
    const char *end = NULL;
    size_t rawlen = 0;
    cJSON *obj;

    if (dr_base64url_decode(seg, len, &raw, &rawlen)) {
        return R_MALFORMED;
    }
    if (has_nul((const char *)raw, rawlen)) {
        free(raw);
        return R_MALFORMED;
    }
    /* The whole segment must be the object: cJSON would otherwise ignore trailing bytes. */
    obj = cJSON_ParseWithLengthOpts((const char *)raw, rawlen, &end, 0);
    while (obj && end < (const char *)raw + rawlen && strchr(" \t\r\n", *end) && *end) {
        end++;
    }
    if (obj && end != (const char *)raw + rawlen) {
        cJSON_Delete(obj);
        obj = NULL;
    }
    free(raw);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return R_MALFORMED;
    }
    *out = obj;
    return R_OK;
}

/*
 * 1 when one of names occurs more than once among obj's members. cJSON keeps duplicates and
 * finds the first, while other parsers take the last: a token must not mean two things.
 * Checking only the members we read keeps this linear in the token size.
 */
static int duplicate_member(const cJSON *obj, const char *const *names, size_t nnames)
{
    unsigned seen[16] = {0};
    const cJSON *it;

    cJSON_ArrayForEach(it, obj)
    {
        for (size_t i = 0; i < nnames && i < DR_ARRAY_LEN(seen); i++) {
            if (it->string && strcmp(it->string, names[i]) == 0 && seen[i]++) {
                return 1;
            }
        }
    }
    return 0;
}

static const struct dr__jwk *find_kid(const struct dr__jwt_keyset *ks, const char *kid)
{
    for (size_t i = 0; kid && i < ks->njwks; i++) {
        if (ks->jwks[i].kid && strcmp(ks->jwks[i].kid, kid) == 0) {
            return &ks->jwks[i];
        }
    }
    return NULL;
}

/* Chooses what verifies the token, or why nothing may. *jwk stays NULL for HS algorithms. */
static enum reason select_key(const struct dr__jwt_keyset *ks, enum dr__jwt_alg alg,
                              const char *kid, const struct dr__jwk **jwk)
{
    const struct dr__jwk *k = NULL;

    *jwk = NULL;
    if (alg <= DR__JWT_HS512) {
        /* A kid naming a public key means the signer meant that key: HMAC under it would be
         * the RS/HS confusion attack, whatever our secret is. */
        if (!ks->secret || !(ks->hs_mask & (1u << alg)) || find_kid(ks, kid)) {
            return R_ALG_NOT_ALLOWED;
        }
        return R_OK;
    }
    if (kid) {
        k = find_kid(ks, kid);
        if (!k) {
            return R_UNKNOWN_KID;
        }
        if (k->alg != alg) {
            return R_ALG_NOT_ALLOWED;
        }
    } else {
        for (size_t i = 0; i < ks->njwks; i++) {
            if (ks->jwks[i].alg == alg) {
                if (k) {
                    return R_UNKNOWN_KID; /* ambiguous: the token must name its key */
                }
                k = &ks->jwks[i];
            }
        }
        if (!k) {
            return R_UNKNOWN_KID;
        }
    }
    *jwk = k;
    return R_OK;
}

static enum reason verify_hmac(const struct dr__jwt_keyset *ks, enum dr__jwt_alg alg,
                               const struct segments *s, const unsigned char *sig, size_t siglen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t outlen = 0;
    EVP_MAC_CTX *ctx = ks->hmac[alg] ? EVP_MAC_CTX_dup(ks->hmac[alg]) : NULL;

    if (ctx) {
        int ok = EVP_MAC_update(ctx, (const unsigned char *)s->hdr, s->signed_len) == 1 &&
                 EVP_MAC_final(ctx, md, &outlen, sizeof(md)) == 1;
        EVP_MAC_CTX_free(ctx);
        if (!ok) {
            return R_INTERNAL;
        }
        mdlen = (unsigned int)outlen;
    } else if (!HMAC(dr__jwt_alg_md(alg), ks->secret, (int)ks->secret_len,
                     (const unsigned char *)s->hdr, s->signed_len, md, &mdlen)) {
        return R_INTERNAL;
    }
    return dr_ct_equal(md, mdlen, sig, siglen) ? R_OK : R_BAD_SIGNATURE;
}

/* Re-encodes a raw r||s ES256 signature as the DER ECDSA-Sig-Value OpenSSL verifies. */
static enum reason es256_der(const unsigned char *sig, size_t siglen, unsigned char *der,
                             size_t *derlen)
{
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *sv = NULL;
    unsigned char *p = der;
    enum reason res = R_INTERNAL;
    int n;

    if (siglen != ES256_SIG) {
        return R_BAD_SIGNATURE;
    }
    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, ES256_HALF, NULL);
    sv = BN_bin2bn(sig + ES256_HALF, ES256_HALF, NULL);
    if (!es || !r || !sv || !ECDSA_SIG_set0(es, r, sv)) {
        BN_free(r);
        BN_free(sv);
        goto out;
    }
    n = i2d_ECDSA_SIG(es, NULL);
    if (n <= 0 || n > ECDSA_DER_MAX || i2d_ECDSA_SIG(es, &p) != n) {
        goto out;
    }
    *derlen = (size_t)n;
    res = R_OK;
out:
    ECDSA_SIG_free(es);
    return res;
}

static enum reason verify_pkey(const struct dr__jwk *k, const struct segments *s,
                               const unsigned char *sig, size_t siglen)
{
    unsigned char der[ECDSA_DER_MAX];
    EVP_MD_CTX *mctx = NULL;
    enum reason res;
    int rc;

    if (k->alg == DR__JWT_ES256) {
        res = es256_der(sig, siglen, der, &siglen);
        if (res) {
            return res;
        }
        sig = der;
    } else if (siglen != (size_t)EVP_PKEY_get_size(k->pkey)) {
        return R_BAD_SIGNATURE;
    }
    mctx = EVP_MD_CTX_new();
    if (!mctx || ((!k->tmpl || EVP_MD_CTX_copy_ex(mctx, k->tmpl) != 1) &&
                  EVP_DigestVerifyInit(mctx, NULL, dr__jwt_alg_md(k->alg), NULL, k->pkey) != 1)) {
        res = R_INTERNAL;
        goto out;
    }
    rc = EVP_DigestVerify(mctx, sig, siglen, (const unsigned char *)s->hdr, s->signed_len);
    res = rc == 1 ? R_OK : R_BAD_SIGNATURE;
out:
    EVP_MD_CTX_free(mctx);
    return res;
}

/* ---- claims ---- */

/* A NumericDate (RFC 7519 §2: seconds, possibly fractional) into *out, rounded down. */
static enum reason numeric_date(const cJSON *payload, const char *name, int64_t *out, int *present)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(payload, name);
    double d;

    *present = it != NULL;
    if (!it) {
        return R_OK;
    }
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
        return R_MALFORMED;
    }
    d = floor(it->valuedouble);
    d = d > NUMERIC_DATE_MAX ? NUMERIC_DATE_MAX : d < -NUMERIC_DATE_MAX ? -NUMERIC_DATE_MAX : d;
    *out = (int64_t)d;
    return R_OK;
}

/* A claim that must be a string when present. */
static enum reason opt_str(const cJSON *payload, const char *name, const char **out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(payload, name);

    *out = NULL;
    if (!it) {
        return R_OK;
    }
    if (!cJSON_IsString(it)) {
        return R_MALFORMED;
    }
    *out = it->valuestring;
    return R_OK;
}

/* aud: a string or an array of strings. *match says whether audience (if set) is in it. */
static enum reason audience(const cJSON *payload, const char *want, int *match)
{
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(payload, "aud"), *it;

    *match = 0;
    if (!aud) {
        return R_OK;
    }
    if (cJSON_IsString(aud)) {
        *match = want && strcmp(aud->valuestring, want) == 0;
        return R_OK;
    }
    if (!cJSON_IsArray(aud)) {
        return R_MALFORMED;
    }
    cJSON_ArrayForEach(it, aud)
    {
        if (!cJSON_IsString(it)) {
            return R_MALFORMED;
        }
        *match |= want && strcmp(it->valuestring, want) == 0;
    }
    return R_OK;
}

static enum reason rooms(const cJSON *payload, struct dr_jwt_claims *cl)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(payload, "rooms"), *it;
    size_t n = 0;

    if (!arr) {
        return R_OK;
    }
    if (!cJSON_IsArray(arr)) {
        return R_MALFORMED;
    }
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it)) {
            return R_MALFORMED;
        }
        n++;
    }
    cl->rooms = dr_xcalloc(n, sizeof(*cl->rooms));
    cJSON_ArrayForEach(it, arr)
    {
        cl->rooms[cl->nrooms++] = dr_xstrdup(it->valuestring);
    }
    return R_OK;
}

static int leeway(const struct dr_jwt_opts *opts)
{
    if (!opts || opts->leeway_s == 0) {
        return DR_JWT_LEEWAY_DEFAULT;
    }
    if (opts->leeway_s < 0) {
        return 0;
    }
    return opts->leeway_s > DR_JWT_LEEWAY_MAX ? DR_JWT_LEEWAY_MAX : opts->leeway_s;
}

/* Checks the claims of a verified payload and fills cl with what the router uses. */
static enum reason check_claims(const cJSON *payload, const struct dr_jwt_opts *opts,
                                struct dr_jwt_claims *cl)
{
    static const char *const used[] = {"exp", "nbf", "iat",    "iss",   "aud",  "sub",
                                       "jti", "org", "org_id", "rooms", "role", "admin"};
    const char *sub, *org, *org_id, *jti, *iss, *role;
    const cJSON *admin = cJSON_GetObjectItemCaseSensitive(payload, "admin");
    int64_t now = opts && opts->now ? opts->now : (int64_t)time(NULL), exp = 0, nbf = 0;
    int has_exp, has_nbf, has_iat, aud_match;
    int lw = leeway(opts);
    enum reason r;

    if (duplicate_member(payload, used, DR_ARRAY_LEN(used))) {
        return R_MALFORMED;
    }
    if ((r = numeric_date(payload, "exp", &exp, &has_exp)) ||
        (r = numeric_date(payload, "nbf", &nbf, &has_nbf)) ||
        (r = numeric_date(payload, "iat", &cl->iat, &has_iat)) ||
        (r = opt_str(payload, "sub", &sub)) || (r = opt_str(payload, "org", &org)) ||
        (r = opt_str(payload, "org_id", &org_id)) || (r = opt_str(payload, "jti", &jti)) ||
        (r = opt_str(payload, "iss", &iss)) || (r = opt_str(payload, "role", &role)) ||
        (r = audience(payload, opts ? opts->audience : NULL, &aud_match))) {
        return r;
    }
    if (admin && !cJSON_IsBool(admin)) {
        return R_MALFORMED;
    }
    if (has_exp && now >= exp + lw) {
        return R_EXPIRED;
    }
    if (has_nbf && now < nbf - lw) {
        return R_NOT_YET_VALID;
    }
    if (!has_exp && !(opts && opts->allow_no_exp)) {
        return R_MISSING_EXP;
    }
    if (opts && opts->issuer && (!iss || strcmp(iss, opts->issuer) != 0)) {
        return R_WRONG_ISSUER;
    }
    if (opts && opts->audience && !aud_match) {
        return R_WRONG_AUDIENCE;
    }
    if ((r = rooms(payload, cl))) {
        return r;
    }
    cl->exp = exp;
    cl->sub = dr_xstrdup(sub);
    cl->org = dr_xstrdup(org ? org : org_id);
    cl->jti = dr_xstrdup(jti);
    cl->iss = dr_xstrdup(iss);
    cl->admin = (role && strcmp(role, "admin") == 0) || cJSON_IsTrue(admin);
    return R_OK;
}

void dr_jwt_claims_destroy(struct dr_jwt_claims *cl)
{
    if (!cl) {
        return;
    }
    free(cl->sub);
    free(cl->org);
    for (size_t i = 0; i < cl->nrooms; i++) {
        free(cl->rooms[i]);
    }
    free(cl->rooms);
    free(cl->jti);
    free(cl->iss);
    cJSON_Delete(cl->raw);
    free(cl);
}

struct dr_jwt_claims *dr_jwt_claims_dup(const struct dr_jwt_claims *c)
{
    struct dr_jwt_claims *d = dr_xcalloc(1, sizeof(*d));

    d->sub = dr_xstrdup(c->sub);
    d->org = dr_xstrdup(c->org);
    d->rooms = dr_xcalloc(c->nrooms ? c->nrooms : 1, sizeof(*d->rooms));
    for (size_t i = 0; i < c->nrooms; i++) {
        d->rooms[i] = dr_xstrdup(c->rooms[i]);
    }
    d->nrooms = c->nrooms;
    d->admin = c->admin;
    d->exp = c->exp;
    d->iat = c->iat;
    d->jti = dr_xstrdup(c->jti);
    d->iss = dr_xstrdup(c->iss);
    memcpy(d->alg, c->alg, sizeof(d->alg));
    d->raw = c->raw ? cJSON_Duplicate(c->raw, 1) : NULL;
    return d;
}

/* ---- verify ---- */

static enum reason verify(const struct dr_jwt_keys *keys, const char *token, size_t len,
                          const struct dr_jwt_opts *opts, struct dr_jwt_claims **out)
{
    static const char *const hdr_used[] = {"alg", "kid", "crit"};
    size_t max = opts && opts->max_size ? opts->max_size : DR_JWT_MAX_SIZE;
    struct dr__jwt_keyset *ks = NULL;
    struct dr_jwt_claims *cl = NULL;
    const struct dr__jwk *jwk = NULL;
    cJSON *hdr = NULL, *payload = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    struct segments s;
    const char *algname, *kid = NULL;
    enum dr__jwt_alg alg;
    enum reason r;

    if (len > max) {
        return R_TOO_LARGE;
    }
    if ((r = split(token, len, &s)) || (r = json_segment(s.hdr, s.hdr_len, &hdr))) {
        goto out;
    }
    r = R_MALFORMED;
    algname = dr_json_str(hdr, "alg");
    if (!algname || duplicate_member(hdr, hdr_used, DR_ARRAY_LEN(hdr_used))) {
        goto out;
    }
    if (strcasecmp(algname, "none") == 0) {
        r = R_ALG_NONE;
        goto out;
    }
    /* No JWS extension is implemented, so any critical one must make the token fail
     * (RFC 7515 §4.1.11). */
    if (cJSON_GetObjectItemCaseSensitive(hdr, "crit") || (opt_str(hdr, "kid", &kid) != R_OK)) {
        goto out;
    }
    alg = dr__jwt_alg_parse(algname);
    if (alg == DR__JWT_NALGS) {
        r = R_ALG_NOT_ALLOWED;
        goto out;
    }
    ks = dr__jwt_keys_acquire(keys);
    if ((r = select_key(ks, alg, kid, &jwk))) {
        goto out;
    }
    if (dr_base64url_decode(s.sig, s.sig_len, &sig, &siglen)) {
        r = R_MALFORMED;
        goto out;
    }
    r = jwk ? verify_pkey(jwk, &s, sig, siglen) : verify_hmac(ks, alg, &s, sig, siglen);
    if (r || (r = json_segment(s.payload, s.payload_len, &payload))) {
        goto out;
    }
    cl = dr_xcalloc(1, sizeof(*cl));
    if ((r = check_claims(payload, opts, cl))) {
        goto out;
    }
    snprintf(cl->alg, sizeof(cl->alg), "%s", dr__jwt_alg_name(alg));
    cl->raw = payload;
    payload = NULL;
    if (out) {
        *out = cl;
        cl = NULL;
    }
out:
    dr_jwt_claims_destroy(cl);
    cJSON_Delete(payload);
    cJSON_Delete(hdr);
    free(sig);
    dr__jwt_keyset_release(ks);
    return r;
}

int dr_jwt_verify(const struct dr_jwt_keys *keys, const char *token, size_t len,
                  const struct dr_jwt_opts *opts, struct dr_jwt_claims **out, char *why,
                  size_t whysz)
{
    enum reason r;

    if (out) {
        *out = NULL;
    }
    if (!keys || !token) {
        if (why && whysz) {
            snprintf(why, whysz, "%s", "invalid_argument");
        }
        return DR_EINVAL;
    }
    r = verify(keys, token, len, opts, out);
    if (r == R_BAD_SIGNATURE || r == R_INTERNAL) {
        /* OpenSSL queues errors per thread; leftovers would be blamed on a later call. */
        ERR_clear_error();
    }
    if (why && whysz) {
        snprintf(why, whysz, "%s", reason_names[r]);
    }
    return r == R_OK ? DR_OK : DR_EAUTH;
}
