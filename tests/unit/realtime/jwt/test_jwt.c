/*
 * JWT verification without node: hostile and malformed tokens, JWKS documents with bad keys,
 * key reloads racing verifies, the refresh gate and the development signer's contract.
 * Valid tokens come from data/fixture.json, made once by jose
 * (node tests/js/tools/sign-tokens.mjs --fixture) for a fixed clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/jwt.h"
#include "dr/util.h"
#include "jwt_test_util.h"

struct fx {
    cJSON *doc;
    const char *secret;
    const cJSON *jwks_a, *jwks_b, *tokens;
    struct dr_jwt_opts opts;
};

static int setup(void **state)
{
    struct fx *f = dr_xcalloc(1, sizeof(*f));

    *state = f;
    f->doc = load_json_file("tests/unit/realtime/jwt/data/fixture.json");
    f->secret = dr_json_str(f->doc, "secret");
    f->jwks_a = cJSON_GetObjectItemCaseSensitive(f->doc, "jwks_a");
    f->jwks_b = cJSON_GetObjectItemCaseSensitive(f->doc, "jwks_b");
    f->tokens = cJSON_GetObjectItemCaseSensitive(f->doc, "tokens");
    f->opts.issuer = dr_json_str(f->doc, "issuer");
    f->opts.audience = dr_json_str(f->doc, "audience");
    if (!f->secret || !f->jwks_a || !f->jwks_b || !f->tokens ||
        dr_json_i64(f->doc, "now", &f->opts.now)) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    cJSON_Delete(f->doc);
    free(f);
    return 0;
}

static const char *tok(const struct fx *f, const char *name)
{
    const char *t = dr_json_str(f->tokens, name);
    if (!t) {
        fail_msg("fixture has no token %s", name);
    }
    return t;
}

/* Verifies; returns the error and leaves the reason in why. */
static int check(const struct dr_jwt_keys *keys, const char *t, size_t len,
                 const struct dr_jwt_opts *opts, char why[DR_JWT_WHY_SIZE])
{
    struct dr_jwt_claims *cl = (struct dr_jwt_claims *)&cl; /* must be reset by verify */
    int err;

    why[0] = '\0';
    err = dr_jwt_verify(keys, t, len, opts, &cl, why, DR_JWT_WHY_SIZE);
    if (err == DR_OK) {
        assert_non_null(cl);
        dr_jwt_claims_destroy(cl);
    } else {
        assert_null(cl);
    }
    return err;
}

static void expect_reason(const struct dr_jwt_keys *keys, const char *t, size_t len,
                          const struct dr_jwt_opts *opts, const char *reason)
{
    char why[DR_JWT_WHY_SIZE];
    int err = check(keys, t, len, opts, why);

    if (err != DR_EAUTH || strcmp(why, reason) != 0) {
        fail_msg("expected %s, got err=%d why=%s", reason, err, why);
    }
}

/* Replaces the signature segment of t with the base64url of sig. */
static char *with_signature(const char *t, const void *sig, size_t siglen)
{
    const char *dot = strrchr(t, '.');
    char *enc = NULL, *out;
    size_t enclen = 0, head = (size_t)(dot - t) + 1;

    assert_int_equal(dr_base64url_encode(sig, siglen, &enc, &enclen), DR_OK);
    out = dr_xmalloc(head + enclen + 1);
    memcpy(out, t, head);
    memcpy(out + head, enc, enclen + 1);
    free(enc);
    return out;
}

static void valid_fixture_tokens(void **state)
{
    struct fx *f = *state;
    struct dr_jwt_keys *keys = make_keys(f->secret, f->jwks_a, NULL);
    static const char *const names[] = {"rs256", "es256", "hs256"};
    char why[DR_JWT_WHY_SIZE];

    assert_non_null(keys);
    assert_int_equal(dr_jwt_keys_jwks_count(keys), 2);
    for (size_t i = 0; i < DR_ARRAY_LEN(names); i++) {
        const char *t = tok(f, names[i]);
        assert_int_equal(check(keys, t, strlen(t), &f->opts, why), DR_OK);
    }
    /* the fixture's clock is long past: defaults use the wall clock */
    expect_reason(keys, tok(f, "rs256"), strlen(tok(f, "rs256")), NULL, "expired");
    dr_jwt_keys_destroy(keys);
}

static void bad_arguments(void **state)
{
    struct fx *f = *state;
    struct dr_jwt_keys *keys = dr_jwt_keys_create();
    struct dr_jwt_claims *cl = (struct dr_jwt_claims *)&cl;
    char why[DR_JWT_WHY_SIZE], tiny[4];

    assert_int_equal(dr_jwt_verify(NULL, "a.b.c", 5, NULL, &cl, why, sizeof(why)), DR_EINVAL);
    assert_null(cl);
    assert_string_equal(why, "invalid_argument");
    assert_int_equal(dr_jwt_verify(keys, NULL, 5, NULL, NULL, why, sizeof(why)), DR_EINVAL);
    /* no why buffer, or a short one: the result is the same and nothing overflows */
    assert_int_equal(dr_jwt_verify(keys, "a.b", 3, NULL, NULL, NULL, 0), DR_EAUTH);
    assert_int_equal(dr_jwt_verify(keys, "a.b", 3, NULL, NULL, tiny, sizeof(tiny)), DR_EAUTH);
    assert_string_equal(tiny, "mal");
    assert_int_equal(dr_jwt_keys_load_jwks(NULL, "{}", 2), DR_EINVAL);
    assert_int_equal(dr_jwt_keys_load_jwks(keys, NULL, 0), DR_EINVAL);
    assert_int_equal(dr_jwt_keys_set_secret(NULL, f->secret, strlen(f->secret)), DR_EINVAL);
    dr_jwt_keys_destroy(keys);
    dr_jwt_keys_destroy(NULL);
    dr_jwt_claims_destroy(NULL);
}

static void malformed_inputs(void **state)
{
    static const struct {
        const char *token;
        size_t len; /* 0 = strlen */
        const char *reason;
    } cases[] = {
        {"", 0, "malformed"},
        {".", 0, "malformed"},
        {"..", 0, "malformed"},
        {"abc", 0, "malformed"},
        {"a.b", 0, "malformed"},
        {"a.b.c.d", 0, "malformed"},
        {"....", 0, "malformed"},
        {"eyJhbGciOiJIUzI1NiJ9..sig", 0, "malformed"},      /* empty payload */
        {".eyJzdWIiOiJ4In0.sig", 0, "malformed"},           /* empty header */
        {"eyJhbGciOiJIUzI1NiJ9\0.e30.AA", 28, "malformed"}, /* NUL inside */
        {"eyJhbGciOiJIUzI1NiJ9.e30.A", 0, "malformed"},     /* 1 char: impossible base64 length */
        {"eyJhbGciOiJIUzI1NiJ9 .e30.AA", 0, "malformed"},
        {"e30.e30.AA", 0, "malformed"},          /* {} header: no alg */
        {"eyJhbGciOjV9.e30.AA", 0, "malformed"}, /* {"alg":5} */
        {"bnVsbA.e30.AA", 0, "malformed"},
        {"eyJhbGciOiJIUzI1NiJ9eA.e30.AA", 0, "malformed"}, /* {"alg":"HS256"}x */
        {"eyJhbGciOiJIUzI1NiJ9IAo.e30.AA", 0, "bad_signature"},
        /* trailing space: fine */                             /* null */
        {"eyJhbGciOiJub25lIn0.e30.", 0, "alg_none"},           /* {"alg":"none"} */
        {"eyJhbGciOiJOb05lIn0.e30.", 0, "alg_none"},           /* {"alg":"NoNe"} */
        {"eyJhbGciOiJIUzI1NiJ9.e30.AA", 0, "bad_signature"},   /* HS256 */
        {"eyJhbGciOiJFZERTQSJ9.e30.AA", 0, "alg_not_allowed"}, /* EdDSA */
        {"eyJhbGciOiJoczI1NiJ9.e30.AA", 0, "alg_not_allowed"}, /* hs256: case matters */
        {"eyJhbGciOiJSUzI1NiJ9.e30.AA", 0, "unknown_kid"},     /* RS256, no JWKS */
    };
    struct fx *f = *state;
    struct dr_jwt_keys *keys = make_keys(f->secret, NULL, NULL);
    char *big = dr_xmalloc(DR_JWT_MAX_SIZE + 2), *deep;
    size_t depth = 5000;

    for (size_t i = 0; i < DR_ARRAY_LEN(cases); i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].token);
        expect_reason(keys, cases[i].token, len, &f->opts, cases[i].reason);
    }
    memset(big, 'a', DR_JWT_MAX_SIZE + 1);
    big[DR_JWT_MAX_SIZE + 1] = '\0';
    expect_reason(keys, big, DR_JWT_MAX_SIZE + 1, &f->opts, "too_large");
    expect_reason(keys, big, DR_JWT_MAX_SIZE, &f->opts, "malformed");
    free(big);

    /* a header nested deeper than any parser should follow */
    deep = dr_xmalloc(2 * depth + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    {
        char *enc = NULL, *t;
        size_t enclen = 0;
        assert_int_equal(dr_base64url_encode(deep, 2 * depth, &enc, &enclen), DR_OK);
        t = dr_xmalloc(enclen + 16);
        snprintf(t, enclen + 16, "%s.e30.AA", enc);
        struct dr_jwt_opts big_ok = f->opts;
        big_ok.max_size = enclen + 16;
        expect_reason(keys, t, strlen(t), &big_ok, "malformed");
        free(t);
        free(enc);
    }
    free(deep);
    dr_jwt_keys_destroy(keys);
}

/* Signatures of the right algorithm but hostile shape, on otherwise valid tokens. */
static void hostile_signatures(void **state)
{
    struct fx *f = *state;
    struct dr_jwt_keys *keys = make_keys(f->secret, f->jwks_a, NULL);
    unsigned char sig[512];
    /* the P-256 group order n: r or s >= n is invalid */
    static const unsigned char order[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
                                            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                            0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
                                            0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
    struct {
        const char *token;
        size_t siglen;
        int fill; /* -1: r = s = order */
    } cases[] = {
        {"es256", 64, 0x00},  {"es256", 64, 0xff},  {"es256", 64, -1},    {"es256", 63, 0x01},
        {"es256", 65, 0x01},  {"es256", 0, 0},      {"es256", 72, 0x30},  {"rs256", 0, 0},
        {"rs256", 255, 0x01}, {"rs256", 256, 0x00}, {"rs256", 256, 0xff}, {"rs256", 512, 0x01},
        {"hs256", 0, 0},      {"hs256", 31, 0x00},  {"hs256", 32, 0x00},  {"hs256", 64, 0x00},
    };

    assert_non_null(keys);
    for (size_t i = 0; i < DR_ARRAY_LEN(cases); i++) {
        char *t;

        if (cases[i].fill < 0) {
            memcpy(sig, order, 32);
            memcpy(sig + 32, order, 32);
        } else {
            memset(sig, cases[i].fill, cases[i].siglen);
        }
        t = with_signature(tok(f, cases[i].token), sig, cases[i].siglen);
        expect_reason(keys, t, strlen(t), &f->opts, "bad_signature");
        free(t);
    }
    dr_jwt_keys_destroy(keys);
}

/* Random corruption of valid tokens, anywhere: never a crash, always a known reason, never
 * accepted (base64url must be canonical, so not even a re-spelt signature passes). */
static void mutated_tokens(void **state)
{
    static const char *const known[] = {"malformed",      "alg_none",      "alg_not_allowed",
                                        "unknown_kid",    "bad_signature", "expired",
                                        "not_yet_valid",  "missing_exp",   "wrong_issuer",
                                        "wrong_audience", "too_large"};
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                                   "-_.=+/ \"{}";
    static const char *const names[] = {"hs256", "es256", "rs256"};
    struct fx *f = *state;
    struct dr_jwt_keys *keys = make_keys(f->secret, f->jwks_a, NULL);
    size_t rejected = 0, runs = 0;

    for (size_t n = 0; n < DR_ARRAY_LEN(names); n++) {
        const char *orig = tok(f, names[n]);
        size_t len = strlen(orig);
        char *t = dr_xmalloc(len + 1);

        for (int r = 0; r < 600; r++) {
            char why[DR_JWT_WHY_SIZE];
            size_t pos = (size_t)(dr_random_unit() * (double)len);
            int is_known = 0;

            memcpy(t, orig, len + 1);
            t[pos] = alphabet[(size_t)(dr_random_unit() * (sizeof(alphabet) - 1))];
            if (t[pos] == orig[pos]) {
                continue;
            }
            runs++;
            if (check(keys, t, len, &f->opts, why) != DR_EAUTH) {
                fail_msg("%s with byte %zu changed was accepted", names[n], pos);
            }
            for (size_t k = 0; k < DR_ARRAY_LEN(known); k++) {
                is_known |= strcmp(why, known[k]) == 0;
            }
            assert_true(is_known);
            rejected++;
        }
        free(t);
    }
    assert_true(runs > 1000);
    assert_int_equal(rejected, runs);
    dr_jwt_keys_destroy(keys);
}

/* The last character of a segment carries unused bits; setting them must not give a second
 * valid spelling of the same token. */
static void non_canonical_base64(void **state)
{
    struct fx *f = *state;
    struct dr_jwt_keys *keys = make_keys(f->secret, f->jwks_a, NULL);
    static const char *const names[] = {"hs256", "es256", "rs256"};
    char why[DR_JWT_WHY_SIZE];
    size_t tested = 0;

    for (size_t n = 0; n < DR_ARRAY_LEN(names); n++) {
        const char *orig = tok(f, names[n]);
        size_t len = strlen(orig), siglen = strlen(strrchr(orig, '.') + 1);
        char *t = dr_xstrdup(orig);

        assert_int_equal(check(keys, t, len, &f->opts, why), DR_OK);
        if (siglen % 4 == 0) {
            free(t);
            continue; /* no unused bits in this signature's spelling */
        }
        /* 'A' + 1 sets the lowest (always unused) bit of a character worth 0 mod 4 */
        assert_int_equal(strchr("AEIMQUYcgkosw048", t[len - 1]) != NULL, 1);
        t[len - 1] = (char)(t[len - 1] + 1);
        expect_reason(keys, t, len, &f->opts, "malformed");
        tested++;
        free(t);
    }
    assert_true(tested >= 2);
    dr_jwt_keys_destroy(keys);
}

static void secret_and_pinning(void **state)
{
    struct fx *f = *state;
    struct dr_jwt_keys *keys = dr_jwt_keys_create();
    const char *t = tok(f, "hs256");
    char why[DR_JWT_WHY_SIZE];

    assert_int_equal(dr_jwt_keys_set_secret(keys, f->secret, DR_JWT_MIN_SECRET - 1), DR_EINVAL);
    expect_reason(keys, t, strlen(t), &f->opts, "alg_not_allowed"); /* still no secret */
    assert_int_equal(dr_jwt_keys_set_secret(keys, f->secret, strlen(f->secret)), DR_OK);
    assert_int_equal(check(keys, t, strlen(t), &f->opts, why), DR_OK);
    assert_int_equal(dr_jwt_keys_set_hs_alg(keys, "RS256"), DR_EINVAL);
    assert_int_equal(dr_jwt_keys_set_hs_alg(keys, "hs256"), DR_EINVAL);
    assert_int_equal(check(keys, t, strlen(t), &f->opts, why), DR_OK); /* pin unchanged */
    assert_int_equal(dr_jwt_keys_set_hs_alg(keys, "HS384"), DR_OK);
    expect_reason(keys, t, strlen(t), &f->opts, "alg_not_allowed");
    assert_int_equal(dr_jwt_keys_set_hs_alg(keys, "HS256"), DR_OK);
    assert_int_equal(check(keys, t, strlen(t), &f->opts, why), DR_OK);
    /* loading a JWKS keeps the secret and its pin */
    {
        char *j = dr_json_print(f->jwks_a);
        assert_int_equal(dr_jwt_keys_load_jwks(keys, j, strlen(j)), DR_OK);
        free(j);
    }
    assert_int_equal(check(keys, t, strlen(t), &f->opts, why), DR_OK);
    assert_int_equal(dr_jwt_keys_set_hs_alg(keys, NULL), DR_OK);
    assert_int_equal(check(keys, t, strlen(t), &f->opts, why), DR_OK);
    assert_int_equal(dr_jwt_keys_set_secret(keys, NULL, 0), DR_OK); /* removes it */
    expect_reason(keys, t, strlen(t), &f->opts, "alg_not_allowed");
    assert_int_equal(dr_jwt_keys_jwks_count(keys), 2); /* and keeps the JWKS */
    dr_jwt_keys_destroy(keys);
}

/* ---- JWKS documents ---- */

/* A copy of key i of jwks_a (0 = RSA rsa-1, 1 = EC ec-1). */
static cJSON *key_copy(const struct fx *f, int i)
{
    return cJSON_Duplicate(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(f->jwks_a, "keys"), i), 1);
}

static void set_str(cJSON *obj, const char *name, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
    if (value) {
        cJSON_AddStringToObject(obj, name, value);
    }
}

/* Re-encodes member name of key with its decoded bytes transformed by edit. */
static void edit_b64(cJSON *key, const char *name, size_t keep, int flip)
{
    const char *v = dr_json_str(key, name);
    unsigned char *raw = NULL;
    size_t len = 0;
    char *enc = NULL;

    assert_non_null(v);
    assert_int_equal(dr_base64url_decode(v, strlen(v), &raw, &len), DR_OK);
    if (keep && keep < len) {
        len = keep;
    }
    if (flip) {
        raw[len - 1] ^= 0x01;
    }
    assert_int_equal(dr_base64url_encode(raw, len, &enc, NULL), DR_OK);
    set_str(key, name, enc);
    free(raw);
    free(enc);
}

/* Loads {"keys":[k1, k2]} (either may be NULL; consumed) into keys. */
static int load_keys(struct dr_jwt_keys *keys, cJSON *k1, cJSON *k2)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "keys");
    char *text;
    int err;

    if (k1) {
        cJSON_AddItemToArray(arr, k1);
    }
    if (k2) {
        cJSON_AddItemToArray(arr, k2);
    }
    text = dr_json_print(doc);
    err = dr_jwt_keys_load_jwks(keys, text, strlen(text));
    free(text);
    cJSON_Delete(doc);
    return err;
}

static void jwks_bad_keys(void **state)
{
    struct fx *f = *state;
    struct dr_jwt_keys *keys = make_keys(NULL, f->jwks_a, NULL);
    const char *rs = tok(f, "rs256");
    char why[DR_JWT_WHY_SIZE];
    cJSON *k;

    assert_non_null(keys);
    /* whole-document failures */
    assert_int_equal(dr_jwt_keys_load_jwks(keys, "not json", 8), DR_EINVAL);
    assert_int_equal(dr_jwt_keys_load_jwks(keys, "[]", 2), DR_EINVAL);
    assert_int_equal(dr_jwt_keys_load_jwks(keys, "{\"keys\":{}}", 11), DR_EINVAL);
    assert_int_equal(dr_jwt_keys_load_jwks(keys, "{\"keys\":[]}", 11), DR_EINVAL);
    assert_int_equal(dr_jwt_keys_load_jwks(keys, "{\"keys\":[1]}", 12), DR_EINVAL);
    assert_int_equal(dr_jwt_keys_load_jwks(keys, "{\"keys\":[{}]}", 13), DR_EINVAL);
    assert_int_equal(dr_jwt_keys_load_jwks(keys, "{\"keys\":[{\"kty\":\"RSA\"}]", 22),
                     DR_EINVAL); /* truncated */
    /* broken RSA keys */
    k = key_copy(f, 0);
    set_str(k, "n", NULL);
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    k = key_copy(f, 0);
    set_str(k, "e", "!!!");
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    k = key_copy(f, 0);
    edit_b64(k, "n", 128, 0); /* 1024-bit modulus */
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    k = key_copy(f, 0);
    set_str(k, "e", "AAE"); /* e = 1 */
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    k = key_copy(f, 0);
    set_str(k, "e", "AQAA"); /* e even */
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    k = key_copy(f, 0);
    cJSON_DeleteItemFromObjectCaseSensitive(k, "kid");
    cJSON_AddNumberToObject(k, "kid", 1);
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    /* broken EC keys */
    k = key_copy(f, 1);
    edit_b64(k, "x", 31, 0);
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    k = key_copy(f, 1);
    edit_b64(k, "y", 0, 1); /* point off the curve */
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    k = key_copy(f, 1);
    set_str(k, "x", "");
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    /* two keys, one kid */
    k = key_copy(f, 1);
    set_str(k, "kid", "rsa-1");
    assert_int_equal(load_keys(keys, key_copy(f, 0), k), DR_EINVAL);
    /* only keys we must not use: nothing usable */
    k = key_copy(f, 0);
    set_str(k, "use", "enc");
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    k = key_copy(f, 1);
    set_str(k, "crv", "P-384");
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    k = key_copy(f, 0);
    set_str(k, "alg", "RS512");
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    k = key_copy(f, 1);
    set_str(k, "alg", "RS256"); /* an EC key claiming RSA's algorithm */
    assert_int_equal(load_keys(keys, k, NULL), DR_EINVAL);
    assert_int_equal(
        dr_jwt_keys_load_jwks(keys, "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", 38),
        DR_EINVAL);

    /* after all that, the first JWKS is still in place */
    assert_int_equal(dr_jwt_keys_jwks_count(keys), 2);
    assert_int_equal(check(keys, rs, strlen(rs), &f->opts, why), DR_OK);

    /* unusable keys next to a usable one are skipped, not fatal */
    k = key_copy(f, 1);
    set_str(k, "use", "enc");
    assert_int_equal(load_keys(keys, key_copy(f, 0), k), DR_OK);
    assert_int_equal(dr_jwt_keys_jwks_count(keys), 1);
    assert_int_equal(check(keys, rs, strlen(rs), &f->opts, why), DR_OK);
    expect_reason(keys, tok(f, "es256"), strlen(tok(f, "es256")), &f->opts, "unknown_kid");
    k = key_copy(f, 1);
    cJSON_AddItemToObject(k, "key_ops", cJSON_CreateStringArray((const char *[]){"verify"}, 1));
    assert_int_equal(load_keys(keys, k, NULL), DR_OK);
    assert_int_equal(check(keys, tok(f, "es256"), strlen(tok(f, "es256")), &f->opts, why), DR_OK);
    k = key_copy(f, 1);
    cJSON_AddItemToObject(k, "key_ops", cJSON_CreateStringArray((const char *[]){"encrypt"}, 1));
    assert_int_equal(load_keys(keys, key_copy(f, 0), k), DR_OK);
    assert_int_equal(dr_jwt_keys_jwks_count(keys), 1);
    /* so are broken or weak keys next to a usable one: the others are still taken */
    k = key_copy(f, 0);
    edit_b64(k, "n", 128, 0); /* 1024-bit modulus */
    assert_int_equal(load_keys(keys, k, key_copy(f, 1)), DR_OK);
    assert_int_equal(dr_jwt_keys_jwks_count(keys), 1);
    assert_int_equal(check(keys, tok(f, "es256"), strlen(tok(f, "es256")), &f->opts, why), DR_OK);
    expect_reason(keys, rs, strlen(rs), &f->opts, "unknown_kid");
    k = key_copy(f, 1);
    edit_b64(k, "y", 0, 1); /* point off the curve */
    assert_int_equal(load_keys(keys, key_copy(f, 0), k), DR_OK);
    assert_int_equal(check(keys, rs, strlen(rs), &f->opts, why), DR_OK);
    dr_jwt_keys_destroy(keys);
}

/* A symmetric JWK must never turn into an HMAC secret. */
static void jwks_oct_key_is_not_a_secret(void **state)
{
    struct fx *f = *state;
    struct dr_jwt_keys *keys = make_keys(NULL, f->jwks_a, NULL);
    cJSON *oct = cJSON_CreateObject();
    char *k = NULL;

    assert_int_equal(dr_base64url_encode(f->secret, strlen(f->secret), &k, NULL), DR_OK);
    cJSON_AddStringToObject(oct, "kty", "oct");
    cJSON_AddStringToObject(oct, "k", k);
    free(k);
    assert_int_equal(load_keys(keys, key_copy(f, 0), oct), DR_OK);
    assert_int_equal(dr_jwt_keys_jwks_count(keys), 1);
    expect_reason(keys, tok(f, "hs256"), strlen(tok(f, "hs256")), &f->opts, "alg_not_allowed");
    dr_jwt_keys_destroy(keys);
}

static void jwks_limits(void **state)
{
    struct fx *f = *state;
    struct dr_jwt_keys *keys = dr_jwt_keys_create();
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "keys");
    char *text, *huge;

    for (int i = 0; i <= DR_JWKS_MAX_KEYS; i++) {
        char kid[16];
        cJSON *k = key_copy(f, 1);
        snprintf(kid, sizeof(kid), "ec-%d", i);
        set_str(k, "kid", kid);
        cJSON_AddItemToArray(arr, k);
    }
    text = dr_json_print(doc);
    assert_int_equal(dr_jwt_keys_load_jwks(keys, text, strlen(text)), DR_EINVAL);
    assert_int_equal(dr_jwt_keys_jwks_count(keys), 0);
    cJSON_DeleteItemFromArray(arr, 0);
    free(text);
    text = dr_json_print(doc);
    assert_int_equal(dr_jwt_keys_load_jwks(keys, text, strlen(text)), DR_OK);
    assert_int_equal(dr_jwt_keys_jwks_count(keys), DR_JWKS_MAX_KEYS);
    free(text);
    cJSON_Delete(doc);

    huge = dr_xmalloc(DR_JWKS_MAX_SIZE + 1);
    memset(huge, ' ', DR_JWKS_MAX_SIZE + 1);
    assert_int_equal(dr_jwt_keys_load_jwks(keys, huge, DR_JWKS_MAX_SIZE + 1), DR_ETOOBIG);
    assert_int_equal(dr_jwt_keys_jwks_count(keys), DR_JWKS_MAX_KEYS);
    free(huge);
    dr_jwt_keys_destroy(keys);
}

/* A kid we do not know yet: unknown_kid, one refetch allowed, the new key then works. */
static void rotation_with_refresh_gate(void **state)
{
    struct fx *f = *state;
    struct dr_jwt_keys *keys = make_keys(NULL, f->jwks_a, NULL);
    const char *t = tok(f, "rs256_rotated");
    struct dr_jwks_refresh_gate gate;
    char why[DR_JWT_WHY_SIZE], *j;

    dr_jwks_refresh_gate_init(&gate, 0);
    expect_reason(keys, t, strlen(t), &f->opts, "unknown_kid");
    assert_int_equal(dr_jwks_refresh_gate_allow(&gate, 1000), 1);
    j = dr_json_print(f->jwks_b);
    assert_int_equal(dr_jwt_keys_load_jwks(keys, j, strlen(j)), DR_OK);
    free(j);
    assert_int_equal(check(keys, t, strlen(t), &f->opts, why), DR_OK);
    /* another unknown kid soon after: no refetch until the interval passed */
    assert_int_equal(dr_jwks_refresh_gate_allow(&gate, 1000 + DR_JWKS_REFRESH_INTERVAL_MS - 1), 0);
    assert_int_equal(dr_jwks_refresh_gate_allow(&gate, 1000 + DR_JWKS_REFRESH_INTERVAL_MS), 1);
    assert_int_equal(dr_jwks_refresh_gate_allow(&gate, 1000 + DR_JWKS_REFRESH_INTERVAL_MS), 0);
    dr_jwks_refresh_gate_cleanup(&gate);

    dr_jwks_refresh_gate_init(&gate, 5);
    assert_int_equal(dr_jwks_refresh_gate_allow(&gate, 0), 1); /* monotonic clock */
    assert_int_equal(dr_jwks_refresh_gate_allow(&gate, 0), 0);
    dr_jwks_refresh_gate_cleanup(&gate);
    dr_jwt_keys_destroy(keys);
}

/* ---- threads ---- */

#define GATE_THREADS 8

struct gate_arg {
    struct dr_jwks_refresh_gate *gate;
    pthread_barrier_t *start;
    int allowed;
};

static void *gate_thread(void *p)
{
    struct gate_arg *a = p;

    pthread_barrier_wait(a->start);
    for (int i = 0; i < 1000; i++) {
        a->allowed += dr_jwks_refresh_gate_allow(a->gate, 50000 + i);
    }
    return NULL;
}

static void refresh_gate_one_winner(void **state)
{
    struct dr_jwks_refresh_gate gate;
    struct gate_arg args[GATE_THREADS];
    pthread_t th[GATE_THREADS];
    pthread_barrier_t start;
    int total = 0;

    dr_jwks_refresh_gate_init(&gate, 0);
    pthread_barrier_init(&start, NULL, GATE_THREADS);
    for (int i = 0; i < GATE_THREADS; i++) {
        args[i] = (struct gate_arg){.gate = &gate, .start = &start};
        assert_int_equal(pthread_create(&th[i], NULL, gate_thread, &args[i]), 0);
    }
    for (int i = 0; i < GATE_THREADS; i++) {
        pthread_join(th[i], NULL);
        total += args[i].allowed;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(total, 1);
}

#define VERIFY_THREADS 3
#define RELOADS        20

struct race {
    struct fx *f;
    struct dr_jwt_keys *keys;
    atomic_int stop;
    atomic_int unexpected;
    atomic_int rotated_ok, rotated_unknown;
    atomic_int rounds;
};

static void *verifier(void *p)
{
    struct race *r = p;
    static const char *const always[] = {"rs256", "es256", "hs256"};
    const char *rot = tok(r->f, "rs256_rotated");

    for (int i = 0; !atomic_load(&r->stop); i++) {
        char why[DR_JWT_WHY_SIZE];
        const char *t = tok(r->f, always[i % 3]);
        struct dr_jwt_claims *cl = NULL;

        if (dr_jwt_verify(r->keys, t, strlen(t), &r->f->opts, &cl, why, sizeof(why)) != DR_OK ||
            !cl || strcmp(cl->sub, "user-42") != 0) {
            fprintf(stderr, "%s during reload: %s\n", always[i % 3], why);
            atomic_fetch_add(&r->unexpected, 1);
        }
        dr_jwt_claims_destroy(cl);
        if (dr_jwt_verify(r->keys, rot, strlen(rot), &r->f->opts, NULL, why, sizeof(why)) ==
            DR_OK) {
            atomic_fetch_add(&r->rotated_ok, 1);
        } else if (strcmp(why, "unknown_kid") == 0) {
            atomic_fetch_add(&r->rotated_unknown, 1);
        } else {
            fprintf(stderr, "rotated during reload: %s\n", why);
            atomic_fetch_add(&r->unexpected, 1);
        }
        atomic_fetch_add(&r->rounds, 1);
    }
    return NULL;
}

static void concurrent_verify_while_reloading(void **state)
{
    struct fx *f = *state;
    struct race r = {.f = f, .keys = make_keys(f->secret, f->jwks_a, NULL)};
    char *ja = dr_json_print(f->jwks_a), *jb = dr_json_print(f->jwks_b);
    pthread_t th[VERIFY_THREADS];
    int reloads = 0;

    assert_non_null(r.keys);
    atomic_init(&r.stop, 0);
    atomic_init(&r.unexpected, 0);
    atomic_init(&r.rotated_ok, 0);
    atomic_init(&r.rotated_unknown, 0);
    atomic_init(&r.rounds, 0);
    for (int i = 0; i < VERIFY_THREADS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, verifier, &r), 0);
    }
    /* at least RELOADS reloads, and on until the verifiers have seen both key versions (they
     * may not be scheduled at all during the first ones on a busy machine) */
    int64_t deadline = dr_mono_ms() + 60000;
    while (reloads < RELOADS ||
           ((atomic_load(&r.rotated_ok) == 0 || atomic_load(&r.rotated_unknown) == 0) &&
            dr_mono_ms() < deadline)) {
        const char *j = reloads % 2 ? ja : jb;
        assert_int_equal(dr_jwt_keys_load_jwks(r.keys, j, strlen(j)), DR_OK);
        assert_int_equal(dr_jwt_keys_set_secret(r.keys, f->secret, strlen(f->secret)), DR_OK);
        assert_int_equal(dr_jwt_keys_set_hs_alg(r.keys, reloads % 3 ? "HS256" : NULL), DR_OK);
        reloads++;
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < VERIFY_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    fprintf(stderr, "reloads=%d rounds=%d rotated ok=%d unknown_kid=%d\n", reloads,
            atomic_load(&r.rounds), atomic_load(&r.rotated_ok), atomic_load(&r.rotated_unknown));
    assert_int_equal(atomic_load(&r.unexpected), 0);
    assert_int_equal(atomic_load(&r.rotated_ok) + atomic_load(&r.rotated_unknown),
                     atomic_load(&r.rounds));
    /* both key versions were seen while reloading */
    assert_true(atomic_load(&r.rotated_ok) > 0);
    assert_true(atomic_load(&r.rotated_unknown) > 0);
    free(ja);
    free(jb);
    dr_jwt_keys_destroy(r.keys);
}

/* A copy shares nothing with its original: the original freed, the copy reads the same. */
static void claims_dup_is_deep(void **state)
{
    struct dr_jwt_claims *c = dr_xcalloc(1, sizeof(*c)), *d;

    (void)state;
    c->sub = dr_xstrdup("user-42");
    c->org = dr_xstrdup("acme");
    c->nrooms = 2;
    c->rooms = dr_xcalloc(2, sizeof(*c->rooms));
    c->rooms[0] = dr_xstrdup("meeting:p1");
    c->rooms[1] = dr_xstrdup("shipment:1Z");
    c->admin = 1;
    c->exp = 2000000000;
    c->iat = 1700000000;
    c->jti = dr_xstrdup("j-1");
    memcpy(c->alg, "ES256", 6);
    static const char raw[] = "{\"sub\":\"user-42\",\"email\":\"a@example.com\"}";
    c->raw = dr_json_parse(raw, sizeof(raw) - 1);
    assert_non_null(c->raw);
    d = dr_jwt_claims_dup(c);
    dr_jwt_claims_destroy(c);
    assert_string_equal(d->sub, "user-42");
    assert_string_equal(d->org, "acme");
    assert_int_equal(d->nrooms, 2);
    assert_string_equal(d->rooms[1], "shipment:1Z");
    assert_int_equal(d->admin, 1);
    assert_int_equal(d->exp, 2000000000);
    assert_int_equal(d->iat, 1700000000);
    assert_string_equal(d->jti, "j-1");
    assert_null(d->iss);
    assert_string_equal(d->alg, "ES256");
    assert_string_equal(dr_json_str(d->raw, "email"), "a@example.com");
    dr_jwt_claims_destroy(d);
}

/* ---- development signer (its tokens are checked by jose in test_jwt_jose.c) ---- */

static void dev_signer_contract(void **state)
{
    struct fx *f = *state;
    cJSON *claims = cJSON_CreateObject(), *arr = cJSON_CreateArray(), *hdr;
    char *t = (char *)"unchanged", *dot;
    unsigned char *raw = NULL;
    size_t len = 0, rawlen = 0;

    assert_int_equal(dr_jwt_sign_hs256("short", 5, claims, &t, &len), DR_EINVAL);
    assert_null(t);
    assert_int_equal(dr_jwt_sign_hs256(f->secret, strlen(f->secret), arr, &t, &len), DR_EINVAL);
    cJSON_AddStringToObject(claims, "sub", "dev");
    assert_int_equal(dr_jwt_sign_hs256(f->secret, strlen(f->secret), claims, &t, &len), DR_OK);
    /* shape only: compact form, the header we promise, a 32-byte MAC */
    dot = strchr(t, '.');
    assert_non_null(dot);
    assert_int_equal(dr_base64url_decode(t, (size_t)(dot - t), &raw, &rawlen), DR_OK);
    hdr = dr_json_parse((const char *)raw, rawlen);
    assert_string_equal(dr_json_str(hdr, "alg"), "HS256");
    assert_string_equal(dr_json_str(hdr, "typ"), "JWT");
    cJSON_Delete(hdr);
    free(raw);
    dot = strrchr(t, '.');
    assert_int_equal(dr_base64url_decode(dot + 1, strlen(dot + 1), &raw, &rawlen), DR_OK);
    assert_int_equal(rawlen, 32);
    free(raw);
    free(t);
    cJSON_Delete(claims);
    cJSON_Delete(arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_fixture_tokens),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(malformed_inputs),
        cmocka_unit_test(hostile_signatures),
        cmocka_unit_test(mutated_tokens),
        cmocka_unit_test(non_canonical_base64),
        cmocka_unit_test(secret_and_pinning),
        cmocka_unit_test(jwks_bad_keys),
        cmocka_unit_test(jwks_oct_key_is_not_a_secret),
        cmocka_unit_test(jwks_limits),
        cmocka_unit_test(rotation_with_refresh_gate),
        cmocka_unit_test(refresh_gate_one_winner),
        cmocka_unit_test(concurrent_verify_while_reloading),
        cmocka_unit_test(dev_signer_contract),
        cmocka_unit_test(claims_dup_is_deep),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
