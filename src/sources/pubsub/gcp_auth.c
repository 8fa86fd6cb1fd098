/*
 * Bearer tokens for Google APIs. Requests queue as waiters and are answered from a zero-delay
 * timer ("kick") or from the metadata fetch's completion, so answers are always asynchronous and
 * many concurrent callers cost one fetch. Signing a JWT takes about a millisecond and happens
 * once per lifetime, so it runs on the loop.
 */
#include "dr/gcp_auth.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/util.h"

#define DEFAULT_LIFETIME_S  3600
#define DEFAULT_MARGIN_S    300
#define DEFAULT_TIMEOUT_MS  10000L
#define MAX_KEY_FILE        (256 * 1024)
#define MAX_METADATA_ANSWER (64 * 1024)
#define DEFAULT_METADATA    "metadata.google.internal"
#define METADATA_TOKEN_PATH "/computeMetadata/v1/instance/service-accounts/default/token"
#define BEARER              "Authorization: Bearer "

struct waiter {
    dr_gcp_auth_cb cb;
    void *ctx;
    struct waiter *next;
};

struct dr_gcp_auth {
    uv_loop_t *loop;
    struct dr_hc *hc;
    enum dr_gcp_auth_mode mode;
    EVP_PKEY *key;
    char *email;
    char *key_id;
    char *audience;
    char *metadata_url;
    int lifetime_s;
    int margin_s;
    long timeout_ms;
    char *header;       /* cached "Authorization: Bearer ..." */
    int64_t refresh_at; /* monotonic ms after which header is renewed */
    struct waiter *waiters;
    struct waiter *delivering; /* being answered right now */
    struct dr_hc_call *fetch;
    uv_timer_t kick;
    int closing;
};

static void kick_closed(uv_handle_t *h)
{
    free(h->data);
}

static void deliver_all(struct dr_gcp_auth *a, int err, const char *header)
{
    /* A private copy: a callback may invalidate the cache or destroy the provider. */
    char *copy = dr_xstrdup(header);

    /* Answer those waiting now; a callback that asks again is answered on a later turn of the
     * loop (no busy loop on a failing metadata server). Pop one at a time: a callback may cancel
     * others, or destroy the provider, which answers the rest with DR_EUNAVAIL. */
    if (!a->delivering) {
        a->delivering = a->waiters;
        a->waiters = NULL;
    }
    while (a->delivering) {
        struct waiter *w = a->delivering;
        a->delivering = w->next;
        w->cb(w->ctx, err, copy);
        free(w);
    }
    if (copy) {
        OPENSSL_cleanse(copy, strlen(copy));
        free(copy);
    }
}

static void forget_token(struct dr_gcp_auth *a)
{
    if (a->header) {
        OPENSSL_cleanse(a->header, strlen(a->header));
        free(a->header);
        a->header = NULL;
    }
}

static int fresh(const struct dr_gcp_auth *a)
{
    return a->header && dr_mono_ms() < a->refresh_at;
}

static int b64url_json(const cJSON *obj, struct dr_buf *out)
{
    char *json = dr_json_print(obj);
    char *enc = NULL;
    size_t n = 0;
    int err = dr_base64url_encode(json, strlen(json), &enc, &n);

    if (err == DR_OK) {
        err = dr_buf_append(out, enc, n);
    }
    free(enc);
    free(json);
    return err;
}

/* Signs a new JWT into a->header. */
static int sign_jwt(struct dr_gcp_auth *a)
{
    cJSON *hdr = cJSON_CreateObject();
    cJSON *claims = cJSON_CreateObject();
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    char *sig64 = NULL;
    size_t siglen = 0, sig64len = 0;
    int64_t now = dr_now_ms() / 1000;
    struct dr_buf b;
    int err = DR_EAUTH;

    dr_buf_init(&b, 64 * 1024);
    if (!hdr || !claims || !md) {
        err = DR_ENOMEM;
        goto out;
    }
    cJSON_AddStringToObject(hdr, "alg", "RS256");
    cJSON_AddStringToObject(hdr, "typ", "JWT");
    cJSON_AddStringToObject(hdr, "kid", a->key_id);
    cJSON_AddStringToObject(claims, "iss", a->email);
    cJSON_AddStringToObject(claims, "sub", a->email);
    cJSON_AddStringToObject(claims, "aud", a->audience);
    cJSON_AddNumberToObject(claims, "iat", (double)now);
    cJSON_AddNumberToObject(claims, "exp", (double)(now + a->lifetime_s));
    if (dr_buf_appends(&b, BEARER) || b64url_json(hdr, &b) || dr_buf_appendc(&b, '.') ||
        b64url_json(claims, &b)) {
        err = DR_ENOMEM;
        goto out;
    }
    {
        const unsigned char *in = (const unsigned char *)b.data + strlen(BEARER);
        size_t inlen = b.len - strlen(BEARER);

        if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, a->key) != 1 ||
            EVP_DigestSign(md, NULL, &siglen, in, inlen) != 1) {
            goto out;
        }
        sig = dr_xmalloc(siglen);
        if (EVP_DigestSign(md, sig, &siglen, in, inlen) != 1) {
            goto out;
        }
    }
    if (dr_base64url_encode(sig, siglen, &sig64, &sig64len) || dr_buf_appendc(&b, '.') ||
        dr_buf_append(&b, sig64, sig64len)) {
        err = DR_ENOMEM;
        goto out;
    }
    forget_token(a);
    a->header = dr_buf_steal(&b, NULL);
    a->refresh_at = dr_mono_ms() + (int64_t)(a->lifetime_s - a->margin_s) * 1000;
    err = DR_OK;
out:
    if (err) {
        DR_ERROR("gcp_auth", "cannot sign token", "err=\"%s\"", dr_strerror(err));
    }
    free(sig);
    free(sig64);
    EVP_MD_CTX_free(md);
    cJSON_Delete(hdr);
    cJSON_Delete(claims);
    dr_buf_cleanup(&b);
    return err;
}

static int token_chars_ok(const char *t)
{
    if (!*t) {
        return 0;
    }
    for (; *t; t++) {
        /* RFC 6750 b64token: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" and "=" */
        if (!((*t >= 'A' && *t <= 'Z') || (*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') ||
              strchr("-._~+/=", *t))) {
            return 0;
        }
    }
    return 1;
}

/* Stores the token from a metadata answer; DR_EAUTH if it is not one. */
static int take_metadata_token(struct dr_gcp_auth *a, const char *body, size_t len)
{
    cJSON *root = dr_json_parse(body, len);
    const char *tok;
    int64_t expires_in = 0;
    int64_t valid_ms;
    struct dr_buf b;
    int err = DR_EAUTH;

    dr_buf_init(&b, 16 * 1024);
    tok = dr_json_str(root, "access_token");
    if (!root || !tok || !token_chars_ok(tok) || dr_json_i64(root, "expires_in", &expires_in) ||
        expires_in <= 0) {
        DR_WARN("gcp_auth", "malformed metadata token answer", "len=%zu", len);
        goto out;
    }
    if (dr_buf_appends(&b, BEARER) || dr_buf_appends(&b, tok)) {
        err = DR_ETOOBIG;
        goto out;
    }
    forget_token(a);
    a->header = dr_buf_steal(&b, NULL);
    valid_ms = expires_in > a->margin_s ? (expires_in - a->margin_s) * 1000 : expires_in * 500;
    a->refresh_at = dr_mono_ms() + valid_ms;
    err = DR_OK;
out:
    cJSON_Delete(root);
    dr_buf_cleanup(&b);
    return err;
}

static void metadata_done(void *ctx, int err, const struct dr_hc_resp *resp)
{
    struct dr_gcp_auth *a = ctx;

    a->fetch = NULL;
    if (err) {
        DR_WARN("gcp_auth", "metadata server unreachable", "err=\"%s\"", dr_strerror(err));
        err = err == DR_EUNAVAIL ? DR_EUNAVAIL : DR_EIO;
    } else if (resp->status == 200) {
        err = take_metadata_token(a, resp->body, resp->body_len);
    } else {
        DR_WARN("gcp_auth", "metadata server refused", "status=%ld", resp->status);
        err = (resp->status == 429 || resp->status >= 500) ? DR_EIO : DR_EAUTH;
    }
    deliver_all(a, err, err ? NULL : a->header);
}

static void start_fetch(struct dr_gcp_auth *a)
{
    static const char *const headers[] = {"Metadata-Flavor: Google", NULL};
    struct dr_hc_req req = {.method = "GET",
                            .url = a->metadata_url,
                            .headers = headers,
                            .timeout_ms = a->timeout_ms,
                            .max_response = MAX_METADATA_ANSWER};
    int err = dr_hc_submit(a->hc, &req, metadata_done, a, &a->fetch);

    if (err) {
        deliver_all(a, err == DR_EUNAVAIL ? DR_EUNAVAIL : DR_EIO, NULL);
    }
}

static void kick_cb(uv_timer_t *t)
{
    struct dr_gcp_auth *a = t->data;
    int err = DR_OK;

    if (a->closing || !a->waiters) {
        return;
    }
    switch (a->mode) {
    case DR_GCP_AUTH_NONE:
        deliver_all(a, DR_OK, NULL);
        break;
    case DR_GCP_AUTH_SA_JWT:
        if (!fresh(a)) {
            err = sign_jwt(a);
        }
        deliver_all(a, err, err ? NULL : a->header);
        break;
    case DR_GCP_AUTH_METADATA:
        if (fresh(a)) {
            deliver_all(a, DR_OK, a->header);
        } else if (!a->fetch) {
            start_fetch(a);
        }
        break;
    }
}

int dr_gcp_auth_header(struct dr_gcp_auth *a, dr_gcp_auth_cb cb, void *ctx)
{
    struct waiter *w, **pp;

    if (!a || !cb) {
        return DR_EINVAL;
    }
    if (a->closing) {
        return DR_EUNAVAIL;
    }
    w = dr_xcalloc(1, sizeof(*w));
    w->cb = cb;
    w->ctx = ctx;
    for (pp = &a->waiters; *pp; pp = &(*pp)->next) {
    }
    *pp = w;
    if (!a->fetch) {
        uv_timer_start(&a->kick, kick_cb, 0, 0);
    }
    return DR_OK;
}

void dr_gcp_auth_cancel(struct dr_gcp_auth *a, dr_gcp_auth_cb cb, void *ctx)
{
    struct waiter **pp;

    if (!a) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        pp = i == 0 ? &a->waiters : &a->delivering;
        while (*pp) {
            struct waiter *w = *pp;
            if (w->cb == cb && w->ctx == ctx) {
                *pp = w->next;
                free(w);
            } else {
                pp = &w->next;
            }
        }
    }
}

void dr_gcp_auth_invalidate(struct dr_gcp_auth *a)
{
    if (a) {
        forget_token(a);
    }
}

enum dr_gcp_auth_mode dr_gcp_auth_mode(const struct dr_gcp_auth *a)
{
    return a ? a->mode : DR_GCP_AUTH_NONE;
}

static char *read_small_file(const char *path, size_t limit, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct dr_buf b;
    char chunk[4096];
    size_t n;
    int err = DR_OK;

    if (!f) {
        return NULL;
    }
    dr_buf_init(&b, limit);
    while (err == DR_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        err = dr_buf_append(&b, chunk, n);
    }
    if (ferror(f)) {
        err = DR_EIO;
    }
    fclose(f);
    if (err || !b.data) {
        dr_buf_cleanup(&b);
        return NULL;
    }
    return dr_buf_steal(&b, len);
}

/* Reads the service-account key file at path: on DR_OK *key, *email and *kid are the caller's;
 * on DR_EINVAL *reason says why (never the key). */
static int read_service_account(const char *path, EVP_PKEY **key, char **email_out, char **kid_out,
                                const char **reason)
{
    const char *type, *email, *pem, *kid;
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    BIO *bio = NULL;
    EVP_PKEY *k = NULL;
    int err = DR_EINVAL;

    *reason = NULL;
    text = read_small_file(path, MAX_KEY_FILE, &len);
    if (!text) {
        *reason = "cannot read the file, or it is empty or larger than 256 KiB";
        goto out;
    }
    root = dr_json_parse(text, len);
    if (!root || !cJSON_IsObject(root)) {
        *reason = "not a service-account JSON key (not a JSON object)";
        goto out;
    }
    type = dr_json_str(root, "type");
    email = dr_json_str(root, "client_email");
    pem = dr_json_str(root, "private_key");
    kid = dr_json_str(root, "private_key_id");
    if (type && strcmp(type, "service_account") != 0) {
        *reason = "type is not service_account";
        goto out;
    }
    if (!email || !*email || !pem || !kid || !*kid) {
        *reason = "client_email, private_key and private_key_id are required strings";
        goto out;
    }
    bio = BIO_new_mem_buf(pem, -1);
    k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    if (!k) {
        *reason = "private_key is not a PEM private key";
        goto out;
    }
    if (!EVP_PKEY_is_a(k, "RSA")) {
        *reason = "private_key is not an RSA key";
        goto out;
    }
    *key = k;
    k = NULL;
    *email_out = dr_xstrdup(email);
    *kid_out = dr_xstrdup(kid);
    err = DR_OK;
out:
    EVP_PKEY_free(k);
    BIO_free(bio);
    cJSON_Delete(root);
    if (text) {
        OPENSSL_cleanse(text, len);
        free(text);
    }
    ERR_clear_error(); /* a failed PEM read leaves its reasons queued */
    return err;
}

/* Loads the service-account key; logs the reason (never the key) on failure. */
static int load_service_account(struct dr_gcp_auth *a, const char *path)
{
    const char *reason;
    int err = read_service_account(path, &a->key, &a->email, &a->key_id, &reason);

    if (err) {
        DR_ERROR("gcp_auth", "bad service-account credentials", "path=\"%s\" reason=\"%s\"", path,
                 reason);
    }
    return err;
}

int dr_gcp_credentials_check(const char *path, char *why, size_t whysz)
{
    EVP_PKEY *key = NULL;
    char *email = NULL, *kid = NULL;
    const char *reason = "no file named";
    int err = path && *path ? read_service_account(path, &key, &email, &kid, &reason) : DR_EINVAL;

    if (err) {
        snprintf(why, whysz, "%s", reason);
    }
    EVP_PKEY_free(key);
    free(email);
    free(kid);
    return err;
}

static int valid_host(const char *h)
{
    return *h && strpbrk(h, "/@?# \t\r\n") == NULL;
}

static void free_auth(struct dr_gcp_auth *a)
{
    forget_token(a);
    EVP_PKEY_free(a->key);
    a->key = NULL;
    free(a->email);
    free(a->key_id);
    free(a->audience);
    free(a->metadata_url);
    a->email = a->key_id = a->audience = a->metadata_url = NULL;
}

int dr_gcp_auth_create(uv_loop_t *loop, struct dr_hc *hc, const struct dr_gcp_auth_conf *conf,
                       struct dr_gcp_auth **out)
{
    struct dr_gcp_auth *a;
    int err = DR_EINVAL;

    *out = NULL;
    if (!loop || !conf) {
        return DR_EINVAL;
    }
    a = dr_xcalloc(1, sizeof(*a));
    a->loop = loop;
    a->hc = hc;
    a->mode = conf->mode;
    a->lifetime_s = conf->token_lifetime_s ? conf->token_lifetime_s : DEFAULT_LIFETIME_S;
    a->margin_s = conf->refresh_margin_s ? conf->refresh_margin_s : DEFAULT_MARGIN_S;
    a->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : DEFAULT_TIMEOUT_MS;
    switch (conf->mode) {
    case DR_GCP_AUTH_NONE:
        break;
    case DR_GCP_AUTH_SA_JWT:
        if (!conf->credentials_file || a->lifetime_s < 1 || a->lifetime_s > DEFAULT_LIFETIME_S ||
            a->margin_s < 0 || a->margin_s >= a->lifetime_s) {
            goto out;
        }
        a->audience = dr_xstrdup(conf->audience ? conf->audience : DR_GCP_AUTH_PUBSUB_AUDIENCE);
        err = load_service_account(a, conf->credentials_file);
        if (err) {
            goto out;
        }
        break;
    case DR_GCP_AUTH_METADATA: {
        const char *host = conf->metadata_host ? conf->metadata_host : getenv("GCE_METADATA_HOST");
        struct dr_buf b;

        if (!host || !*host) {
            host = DEFAULT_METADATA;
        }
        if (!hc || !valid_host(host) || a->margin_s < 0) {
            goto out;
        }
        dr_buf_init(&b, 1024);
        if (dr_buf_printf(&b, "http://%s%s", host, METADATA_TOKEN_PATH)) {
            dr_buf_cleanup(&b);
            goto out;
        }
        a->metadata_url = dr_buf_steal(&b, NULL);
        break;
    }
    default:
        goto out;
    }
    uv_timer_init(loop, &a->kick);
    a->kick.data = a;
    *out = a;
    a = NULL;
    err = DR_OK;
out:
    if (a) {
        free_auth(a);
        free(a);
    }
    return err;
}

int dr_gcp_auth_create_from_env(uv_loop_t *loop, struct dr_hc *hc, struct dr_gcp_auth **out)
{
    struct dr_gcp_auth_conf conf = {.mode = DR_GCP_AUTH_METADATA};
    const char *emu = getenv("PUBSUB_EMULATOR_HOST");
    const char *creds = getenv("GOOGLE_APPLICATION_CREDENTIALS");

    if (emu && *emu) {
        conf.mode = DR_GCP_AUTH_NONE;
    } else if (creds && *creds) {
        conf.mode = DR_GCP_AUTH_SA_JWT;
        conf.credentials_file = creds;
    }
    return dr_gcp_auth_create(loop, hc, &conf, out);
}

void dr_gcp_auth_destroy(struct dr_gcp_auth *a)
{
    if (!a || a->closing) {
        return;
    }
    a->closing = 1;
    if (a->fetch) {
        dr_hc_cancel(a->fetch);
        a->fetch = NULL;
    }
    deliver_all(a, DR_EUNAVAIL, NULL); /* the ones being answered, if inside a callback */
    deliver_all(a, DR_EUNAVAIL, NULL); /* the ones still waiting */
    free_auth(a);
    uv_timer_stop(&a->kick);
    uv_close((uv_handle_t *)&a->kick, kick_closed);
}
