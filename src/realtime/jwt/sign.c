/*
 * HS256 signing of development tokens (the local dashboard's development sign-in). Production
 * tokens come from an identity provider; nothing else in the daemon signs.
 */
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/jwt.h"
#include "dr/util.h"
#include "realtime/jwt/jwt_int.h"

static int append_b64url(struct dr_buf *b, const void *p, size_t n)
{
    char *enc = NULL;
    size_t enclen = 0;
    int err = dr_base64url_encode(p, n, &enc, &enclen);

    if (!err) {
        err = dr_buf_append(b, enc, enclen);
    }
    free(enc);
    return err;
}

int dr_jwt_sign_hs256(const void *secret, size_t secret_len, const cJSON *claims, char **out,
                      size_t *outlen)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    struct dr_buf b;
    char *payload = NULL;
    int err;

    *out = NULL;
    if (!secret || secret_len < DR_JWT_MIN_SECRET || !cJSON_IsObject(claims)) {
        return DR_EINVAL;
    }
    dr_buf_init(&b, DR_JWT_MAX_SIZE);
    payload = cJSON_PrintUnformatted(claims);
    if (!payload) {
        err = DR_ENOMEM;
        goto out;
    }
    if ((err = append_b64url(&b, header, sizeof(header) - 1)) || (err = dr_buf_appendc(&b, '.')) ||
        (err = append_b64url(&b, payload, strlen(payload)))) {
        goto out;
    }
    if (!HMAC(dr__jwt_alg_md(DR__JWT_HS256), secret, (int)secret_len, (unsigned char *)b.data,
              b.len, md, &mdlen)) {
        err = DR_ENOMEM;
        goto out;
    }
    if ((err = dr_buf_appendc(&b, '.')) || (err = append_b64url(&b, md, mdlen))) {
        goto out;
    }
    *out = dr_buf_steal(&b, outlen);
out:
    cJSON_free(payload);
    dr_buf_cleanup(&b);
    return err;
}
