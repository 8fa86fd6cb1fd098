/*
 * JWT verification, two ways (the first input byte chooses):
 *   even  the rest is a compact token as a client would send it. Nobody but the holder of the
 *         secret can sign, so every such token must be refused, with one of the documented
 *         reasons.
 *   odd   the rest is a header and a claims document separated by a NUL byte; the target signs
 *         them with the HS256 secret, so parsing goes past the signature into the header and
 *         claims checks. An accepted token must say alg "HS256".
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "dr/err.h"
#include "dr/jwt.h"
#include "dr/util.h"
#include "fuzz.h"

static const char secret[] = "fuzz-secret-fuzz-secret-fuzz-secret!";
static struct dr_jwt_keys *keys;

static const char *const reasons[] = {"too_large",       "malformed",     "alg_none",
                                      "alg_not_allowed", "unknown_kid",   "bad_signature",
                                      "expired",         "not_yet_valid", "missing_exp",
                                      "wrong_issuer",    "wrong_audience"};

static int documented(const char *why)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (strcmp(why, reasons[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static void verify(const char *token, size_t len, int must_refuse, const char *header, size_t hlen)
{
    struct dr_jwt_opts opts = {
        .issuer = "https://issuer.example", .audience = "data-router", .now = 1800000000};
    struct dr_jwt_claims *claims = NULL;
    char why[DR_JWT_WHY_SIZE] = "";
    int rc = dr_jwt_verify(keys, token, len, &opts, &claims, why, sizeof(why));

    if (rc != DR_OK) {
        FUZZ_CHECK(rc == DR_EAUTH && claims == NULL, "error %d", rc);
        FUZZ_CHECK(documented(why), "undocumented reason '%s'", why);
        return;
    }
    FUZZ_CHECK(!must_refuse, "a token nobody signed was accepted");
    FUZZ_CHECK(claims != NULL, "accepted without claims"); /* sub is the hub's to require */
    {
        cJSON *h = cJSON_ParseWithLength(header, hlen);
        const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
        FUZZ_CHECK(cJSON_IsString(alg) && strcmp(alg->valuestring, "HS256") == 0,
                   "accepted a header whose alg is not HS256");
        cJSON_Delete(h);
    }
    dr_jwt_claims_destroy(claims);
}

static void signed_token(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    char *h64 = NULL, *p64 = NULL, *s64 = NULL, *tok;
    size_t hl, pl, sl, n;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;

    if (!nul) {
        return;
    }
    if (dr_base64url_encode(data, (size_t)(nul - data), &h64, &hl) ||
        dr_base64url_encode(nul + 1, size - (size_t)(nul - data) - 1, &p64, &pl)) {
        free(h64);
        return;
    }
    n = hl + pl + 2 + 2 * EVP_MAX_MD_SIZE;
    tok = dr_xmalloc(n);
    snprintf(tok, n, "%s.%s", h64, p64);
    FUZZ_CHECK(HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)tok, hl + pl + 1,
                    mac, &maclen),
               "HMAC");
    FUZZ_CHECK(dr_base64url_encode(mac, maclen, &s64, &sl) == DR_OK, "encode");
    snprintf(tok + hl + pl + 1, n - hl - pl - 1, ".%s", s64);
    verify(tok, strlen(tok), 0, (const char *)data, (size_t)(nul - data));
    free(h64);
    free(p64);
    free(s64);
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys) {
        keys = dr_jwt_keys_create();
        FUZZ_CHECK(dr_jwt_keys_set_secret(keys, secret, strlen(secret)) == DR_OK, "secret");
    }
    if (size == 0) {
        return 0;
    }
    if (data[0] % 2 == 0) {
        verify((const char *)data + 1, size - 1, 1, NULL, 0);
    } else {
        signed_token(data + 1, size - 1);
    }
    return 0;
}
