/*
 * Verifies tokens made by an independent implementation (jose, via
 * tests/js/tools/sign-tokens.mjs, with fresh keys on every run): the valid ones for every
 * algorithm and the attack set, each with its expected reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/jwt.h"
#include "dr/util.h"
#include "jwt_test_util.h"

struct suite {
    cJSON *doc;
    struct dr_jwt_keys *full;      /* secret (any HS) + JWKS */
    struct dr_jwt_keys *jwks_only; /* JWKS, no secret */
    struct dr_jwt_keys *hs512;     /* secret pinned to HS512 + JWKS */
    struct dr_jwt_opts opts;
};

static int setup(void **state)
{
    struct suite *s = dr_xcalloc(1, sizeof(*s));
    const cJSON *jwks;
    const char *secret;
    size_t len = 0;
    int status = -1;
    char *out = run_factory("", &status, &len);

    *state = s;
    if (!out || status != 0) {
        fprintf(stderr, "token factory failed (status %d): is node installed?\n", status);
        free(out);
        return -1;
    }
    s->doc = dr_json_parse(out, len);
    free(out);
    secret = dr_json_str(s->doc, "secret");
    jwks = cJSON_GetObjectItemCaseSensitive(s->doc, "jwks");
    if (!secret || !jwks) {
        return -1;
    }
    s->full = make_keys(secret, jwks, NULL);
    s->jwks_only = make_keys(NULL, jwks, NULL);
    s->hs512 = make_keys(secret, jwks, "HS512");
    if (!s->full || !s->jwks_only || !s->hs512) {
        return -1;
    }
    s->opts.issuer = dr_json_str(s->doc, "issuer");
    s->opts.audience = dr_json_str(s->doc, "audience");
    if (dr_json_i64(s->doc, "now", &s->opts.now)) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct suite *s = *state;

    dr_jwt_keys_destroy(s->full);
    dr_jwt_keys_destroy(s->jwks_only);
    dr_jwt_keys_destroy(s->hs512);
    cJSON_Delete(s->doc);
    free(s);
    return 0;
}

static struct dr_jwt_keys *keys_named(struct suite *s, const char *name)
{
    if (strcmp(name, "jwks_only") == 0) {
        return s->jwks_only;
    }
    if (strcmp(name, "hs512") == 0) {
        return s->hs512;
    }
    return s->full;
}

static int str_eq_or_null(const char *got, const cJSON *want)
{
    if (cJSON_IsNull(want) || !want) {
        return got == NULL;
    }
    return got && cJSON_IsString(want) && strcmp(got, want->valuestring) == 0;
}

/* Compares the claims of an accepted token with what the factory put in; prints what differs. */
static int claims_match(const char *name, const struct dr_jwt_claims *cl, const cJSON *want)
{
    const cJSON *rooms = cJSON_GetObjectItemCaseSensitive(want, "rooms");
    int64_t exp = 0;
    int ok = 1;

    if (!str_eq_or_null(cl->sub, cJSON_GetObjectItemCaseSensitive(want, "sub"))) {
        fprintf(stderr, "%s: sub differs\n", name);
        ok = 0;
    }
    if (!str_eq_or_null(cl->org, cJSON_GetObjectItemCaseSensitive(want, "org"))) {
        fprintf(stderr, "%s: org differs\n", name);
        ok = 0;
    }
    if (cl->admin != dr_json_true(want, "admin")) {
        fprintf(stderr, "%s: admin %d differs\n", name, cl->admin);
        ok = 0;
    }
    if (dr_json_i64(want, "exp", &exp) || cl->exp != exp) {
        fprintf(stderr, "%s: exp differs\n", name);
        ok = 0;
    }
    if (!str_eq_or_null(cl->alg, cJSON_GetObjectItemCaseSensitive(want, "alg"))) {
        fprintf(stderr, "%s: alg %s differs\n", name, cl->alg);
        ok = 0;
    }
    if ((size_t)cJSON_GetArraySize(rooms) != cl->nrooms) {
        fprintf(stderr, "%s: %zu rooms\n", name, cl->nrooms);
        ok = 0;
    } else {
        for (size_t i = 0; i < cl->nrooms; i++) {
            if (!str_eq_or_null(cl->rooms[i], cJSON_GetArrayItem(rooms, (int)i))) {
                fprintf(stderr, "%s: room %zu differs\n", name, i);
                ok = 0;
            }
        }
    }
    if (!cJSON_IsObject(cl->raw) || !cJSON_GetObjectItemCaseSensitive(cl->raw, "iat")) {
        fprintf(stderr, "%s: raw claims missing\n", name);
        ok = 0;
    }
    return ok;
}

static void every_case_gives_expected_result(void **state)
{
    struct suite *s = *state;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(s->doc, "cases"), *c;
    size_t n = 0, failures = 0, accepted = 0;

    cJSON_ArrayForEach(c, cases)
    {
        const char *name = dr_json_str(c, "name"), *token = dr_json_str(c, "token");
        const char *expect = dr_json_str(c, "expect"), *keys = dr_json_str(c, "keys");
        struct dr_jwt_claims *cl = NULL;
        char why[DR_JWT_WHY_SIZE] = "";
        int err;

        assert_non_null(name);
        assert_non_null(token);
        assert_non_null(expect);
        assert_non_null(keys);
        err = dr_jwt_verify(keys_named(s, keys), token, strlen(token), &s->opts, &cl, why,
                            sizeof(why));
        n++;
        if (strcmp(expect, "ok") == 0) {
            if (err != DR_OK || !cl) {
                fprintf(stderr, "%s: expected ok, got %s\n", name, why);
                failures++;
            } else if (!claims_match(name, cl, cJSON_GetObjectItemCaseSensitive(c, "claims"))) {
                failures++;
            } else {
                accepted++;
            }
        } else if (err != DR_EAUTH || cl || strcmp(why, expect) != 0) {
            fprintf(stderr, "%s: expected %s, got err=%d why=%s\n", name, expect, err, why);
            failures++;
        }
        dr_jwt_claims_destroy(cl);
    }
    fprintf(stderr, "jose cases: %zu checked, %zu accepted, %zu failures\n", n, accepted, failures);
    assert_true(n >= 60);
    assert_true(accepted >= 10);
    assert_int_equal(failures, 0);
}

/* Without an issuer/audience configured, those claims are not checked. */
static void issuer_and_audience_only_when_configured(void **state)
{
    struct suite *s = *state;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(s->doc, "cases"), *c;
    struct dr_jwt_opts opts = {.now = s->opts.now};
    size_t checked = 0;

    cJSON_ArrayForEach(c, cases)
    {
        const char *expect = dr_json_str(c, "expect"), *token = dr_json_str(c, "token");
        char why[DR_JWT_WHY_SIZE] = "";

        if (strcmp(expect, "wrong_issuer") && strcmp(expect, "wrong_audience")) {
            continue;
        }
        assert_int_equal(
            dr_jwt_verify(s->full, token, strlen(token), &opts, NULL, why, sizeof(why)), DR_OK);
        checked++;
    }
    assert_true(checked >= 4);
}

static const char *token_of(struct suite *s, const char *name)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(s->doc, "cases"))
    {
        if (strcmp(dr_json_str(c, "name"), name) == 0) {
            return dr_json_str(c, "token");
        }
    }
    fail_msg("no case %s", name);
    return NULL;
}

/* A valid token checked at the edges of the leeway window, and with the leeway capped. */
static void leeway_edges(void **state)
{
    struct suite *s = *state;
    const char *tok = token_of(s, "hs256_valid");
    struct dr_jwt_claims *cl = NULL;
    struct dr_jwt_opts opts = s->opts;
    char why[DR_JWT_WHY_SIZE];
    int64_t exp;

    assert_int_equal(dr_jwt_verify(s->full, tok, strlen(tok), &opts, &cl, why, sizeof(why)), DR_OK);
    exp = cl->exp;
    dr_jwt_claims_destroy(cl);
    opts.now = exp + DR_JWT_LEEWAY_DEFAULT - 1;
    assert_int_equal(dr_jwt_verify(s->full, tok, strlen(tok), &opts, NULL, why, sizeof(why)),
                     DR_OK);
    opts.now = exp + DR_JWT_LEEWAY_DEFAULT;
    assert_int_equal(dr_jwt_verify(s->full, tok, strlen(tok), &opts, NULL, why, sizeof(why)),
                     DR_EAUTH);
    assert_string_equal(why, "expired");
    opts.leeway_s = 3600; /* capped at DR_JWT_LEEWAY_MAX */
    assert_int_equal(dr_jwt_verify(s->full, tok, strlen(tok), &opts, NULL, why, sizeof(why)),
                     DR_EAUTH);
    assert_string_equal(why, "expired");
    opts.leeway_s = DR_JWT_NO_LEEWAY;
    opts.now = exp;
    assert_int_equal(dr_jwt_verify(s->full, tok, strlen(tok), &opts, NULL, why, sizeof(why)),
                     DR_EAUTH);
    assert_string_equal(why, "expired");
    opts.now = exp - 1;
    assert_int_equal(dr_jwt_verify(s->full, tok, strlen(tok), &opts, NULL, why, sizeof(why)),
                     DR_OK);
}

/* The oversized token verifies when the caller raises the size limit: too_large is the limit,
 * not something else wrong with the token. */
static void size_limit_is_configurable(void **state)
{
    struct suite *s = *state;
    const char *tok = token_of(s, "oversized");
    struct dr_jwt_opts opts = s->opts;
    char why[DR_JWT_WHY_SIZE];

    opts.max_size = strlen(tok);
    assert_int_equal(dr_jwt_verify(s->full, tok, strlen(tok), &opts, NULL, why, sizeof(why)),
                     DR_OK);
    opts.max_size = strlen(tok) - 1;
    assert_int_equal(dr_jwt_verify(s->full, tok, strlen(tok), &opts, NULL, why, sizeof(why)),
                     DR_EAUTH);
    assert_string_equal(why, "too_large");
}

/* A token without exp is refused unless the caller opts in. */
static void missing_exp_opt_in(void **state)
{
    struct suite *s = *state;
    const char *tok = token_of(s, "missing_exp");
    struct dr_jwt_opts opts = s->opts;
    struct dr_jwt_claims *cl = NULL;
    char why[DR_JWT_WHY_SIZE];

    opts.allow_no_exp = 1;
    assert_int_equal(dr_jwt_verify(s->full, tok, strlen(tok), &opts, &cl, why, sizeof(why)), DR_OK);
    assert_int_equal(cl->exp, 0);
    assert_string_equal(cl->sub, "u");
    dr_jwt_claims_destroy(cl);
}

/* The development signer's output must satisfy an independent verifier (jose); nothing here
 * feeds it to our own verifier. */
static void dev_token_verified_by_jose(void **state)
{
    struct suite *s = *state;
    const char *secret = dr_json_str(s->doc, "secret");
    cJSON *claims = cJSON_CreateObject(), *res;
    char *token = NULL, *out, args[4096];
    size_t len = 0;
    int status = -1;

    cJSON_AddStringToObject(claims, "sub", "dev-user");
    cJSON_AddNumberToObject(claims, "exp", (double)(s->opts.now + 3600));
    assert_int_equal(dr_jwt_sign_hs256(secret, strlen(secret), claims, &token, &len), DR_OK);
    assert_int_equal(len, strlen(token));
    snprintf(args, sizeof(args), "--verify-hs256 %s %s", secret, token);
    out = run_factory(args, &status, &len);
    assert_non_null(out);
    assert_int_equal(status, 0);
    res = dr_json_parse(out, len);
    free(out);
    assert_string_equal(dr_json_str(cJSON_GetObjectItemCaseSensitive(res, "header"), "alg"),
                        "HS256");
    assert_string_equal(dr_json_str(cJSON_GetObjectItemCaseSensitive(res, "payload"), "sub"),
                        "dev-user");
    cJSON_Delete(res);

    /* and jose refuses it under another secret */
    snprintf(args, sizeof(args), "--verify-hs256 %s %s",
             "another-secret-another-secret-another-secret", token);
    out = run_factory(args, &status, &len);
    free(out);
    assert_int_not_equal(status, 0);
    free(token);
    cJSON_Delete(claims);
}

/* Verify cost per algorithm; printed for the record, every verify must succeed. */
static void verify_speed(void **state)
{
    static const struct {
        const char *name;
        int rounds;
    } algs[] = {{"hs256_valid", 20000},
                {"hs384_valid", 20000},
                {"hs512_valid", 20000},
                {"rs256_valid", 4000},
                {"es256_valid", 4000}};
    struct suite *s = *state;

    for (size_t i = 0; i < DR_ARRAY_LEN(algs); i++) {
        const char *tok = token_of(s, algs[i].name);
        size_t len = strlen(tok);
        int ok = 0;
        uint64_t t0 = dr_mono_ns();

        for (int r = 0; r < algs[i].rounds; r++) {
            ok += dr_jwt_verify(s->full, tok, len, &s->opts, NULL, NULL, 0) == DR_OK;
        }
        fprintf(stderr, "verify %s: %.2f us/token\n", algs[i].name,
                (double)(dr_mono_ns() - t0) / 1000.0 / algs[i].rounds);
        assert_int_equal(ok, algs[i].rounds);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_case_gives_expected_result),
        cmocka_unit_test(issuer_and_audience_only_when_configured),
        cmocka_unit_test(leeway_edges),
        cmocka_unit_test(size_limit_is_configurable),
        cmocka_unit_test(missing_exp_opt_in),
        cmocka_unit_test(dev_token_verified_by_jose),
        cmocka_unit_test(verify_speed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
