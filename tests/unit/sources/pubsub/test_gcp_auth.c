#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dr/err.h"
#include "dr/gcp_auth.h"
#include "dr/http_client.h"
#include "dr/json.h"
#include "dr/util.h"
#include "testsrv.h"

#define EMAIL  "router@test-project.iam.gserviceaccount.com"
#define KEY_ID "0123456789abcdef0123456789abcdef01234567"

static EVP_PKEY *rsa_key;
static char dir[64];

/* Writes a service-account file with key (or pem text when key is NULL); returns its path. */
static char *write_sa_file(const char *name, EVP_PKEY *key, const char *pem_text, const char *type)
{
    char *path = malloc(256);
    cJSON *o = cJSON_CreateObject();
    char *pem = NULL;
    FILE *f;

    if (key) {
        BIO *b = BIO_new(BIO_s_mem());
        char *p;
        long n;
        assert_int_equal(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
        n = BIO_get_mem_data(b, &p);
        pem = strndup(p, (size_t)n);
        BIO_free(b);
    } else if (pem_text) {
        pem = strdup(pem_text);
    }
    if (type) {
        cJSON_AddStringToObject(o, "type", type);
    }
    cJSON_AddStringToObject(o, "project_id", "test-project");
    cJSON_AddStringToObject(o, "private_key_id", KEY_ID);
    if (pem) {
        cJSON_AddStringToObject(o, "private_key", pem);
    }
    cJSON_AddStringToObject(o, "client_email", EMAIL);
    char *json = dr_json_print(o);
    snprintf(path, 256, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
    free(json);
    free(pem);
    cJSON_Delete(o);
    return path;
}

static int group_setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/dr-gcp-auth-XXXXXX");
    if (!mkdtemp(dir)) {
        return -1;
    }
    rsa_key = EVP_RSA_gen(2048);
    return rsa_key ? 0 : -1;
}

static int group_teardown(void **state)
{
    char cmd[128];
    EVP_PKEY_free(rsa_key);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

struct got {
    int calls;
    int err;
    char header[4096];
    int has_header;
};

static void on_header(void *ctx, int err, const char *header)
{
    struct got *g = ctx;
    g->calls++;
    g->err = err;
    g->has_header = header != NULL;
    snprintf(g->header, sizeof(g->header), "%s", header ? header : "");
}

static void ask(uv_loop_t *loop, struct dr_gcp_auth *a, struct got *g)
{
    memset(g, 0, sizeof(*g));
    assert_int_equal(dr_gcp_auth_header(a, on_header, g), DR_OK);
    assert_int_equal(g->calls, 0); /* never synchronous */
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(g->calls, 1);
}

static void finish_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static cJSON *decode_part(const char *p, size_t n)
{
    unsigned char *raw;
    size_t rawlen;
    cJSON *j;

    assert_int_equal(dr_base64url_decode(p, n, &raw, &rawlen), DR_OK);
    j = dr_json_parse((const char *)raw, rawlen);
    free(raw);
    assert_non_null(j);
    return j;
}

/* Verifies jwt against the test key: returns 1 if the RS256 signature is valid. */
static int verify_sig(const char *jwt)
{
    const char *dot2 = strrchr(jwt, '.');
    unsigned char *sig;
    size_t siglen;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok;

    assert_non_null(dot2);
    assert_int_equal(dr_base64url_decode(dot2 + 1, strlen(dot2 + 1), &sig, &siglen), DR_OK);
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, rsa_key), 1);
    ok = EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt, (size_t)(dot2 - jwt)) == 1;
    EVP_MD_CTX_free(md);
    free(sig);
    return ok;
}

static void check_jwt(const char *header, int64_t *iat_out, int lifetime)
{
    const char *prefix = "Authorization: Bearer ";
    const char *jwt, *dot1, *dot2;
    cJSON *h, *c;
    int64_t iat, exp, now = dr_now_ms() / 1000;

    assert_true(strncmp(header, prefix, strlen(prefix)) == 0);
    jwt = header + strlen(prefix);
    dot1 = strchr(jwt, '.');
    assert_non_null(dot1);
    dot2 = strchr(dot1 + 1, '.');
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));
    h = decode_part(jwt, (size_t)(dot1 - jwt));
    c = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    assert_string_equal(dr_json_str(h, "alg"), "RS256");
    assert_string_equal(dr_json_str(h, "typ"), "JWT");
    assert_string_equal(dr_json_str(h, "kid"), KEY_ID);
    assert_string_equal(dr_json_str(c, "iss"), EMAIL);
    assert_string_equal(dr_json_str(c, "sub"), EMAIL);
    assert_string_equal(dr_json_str(c, "aud"), "https://pubsub.googleapis.com/");
    assert_int_equal(dr_json_i64(c, "iat", &iat), DR_OK);
    assert_int_equal(dr_json_i64(c, "exp", &exp), DR_OK);
    assert_true(iat <= now && iat >= now - 5);
    assert_int_equal(exp, iat + lifetime);
    assert_true(verify_sig(jwt));
    /* a tampered claim set must not verify */
    {
        char *bad = strdup(jwt);
        bad[dot1 - jwt + 3] ^= 1;
        assert_false(verify_sig(bad));
        free(bad);
    }
    if (iat_out) {
        *iat_out = iat;
    }
    cJSON_Delete(h);
    cJSON_Delete(c);
}

static void sa_jwt_signature_and_claims(void **state)
{
    uv_loop_t loop;
    struct dr_gcp_auth *a;
    char *path = write_sa_file("sa.json", rsa_key, NULL, "service_account");
    struct dr_gcp_auth_conf conf = {.mode = DR_GCP_AUTH_SA_JWT, .credentials_file = path};
    struct got g1, g2;

    uv_loop_init(&loop);
    assert_int_equal(dr_gcp_auth_create(&loop, NULL, &conf, &a), DR_OK);
    assert_int_equal(dr_gcp_auth_mode(a), DR_GCP_AUTH_SA_JWT);
    ask(&loop, a, &g1);
    assert_int_equal(g1.err, DR_OK);
    check_jwt(g1.header, NULL, 3600);
    ask(&loop, a, &g2); /* cached */
    assert_string_equal(g1.header, g2.header);
    dr_gcp_auth_destroy(a);
    finish_loop(&loop);
    free(path);
}

static void sa_jwt_renewed_before_expiry(void **state)
{
    uv_loop_t loop;
    struct dr_gcp_auth *a;
    char *path = write_sa_file("sa2.json", rsa_key, NULL, NULL);
    struct dr_gcp_auth_conf conf = {.mode = DR_GCP_AUTH_SA_JWT,
                                    .credentials_file = path,
                                    .token_lifetime_s = 2,
                                    .refresh_margin_s = 1};
    struct got g1, g2, g3;
    int64_t iat1, iat3;

    uv_loop_init(&loop);
    assert_int_equal(dr_gcp_auth_create(&loop, NULL, &conf, &a), DR_OK);
    ask(&loop, a, &g1);
    check_jwt(g1.header, &iat1, 2);
    ask(&loop, a, &g2);
    assert_string_equal(g1.header, g2.header);
    usleep(1100 * 1000);
    ask(&loop, a, &g3);
    check_jwt(g3.header, &iat3, 2);
    assert_string_not_equal(g1.header, g3.header);
    assert_true(iat3 > iat1);
    /* invalidate forces a new one */
    dr_gcp_auth_invalidate(a);
    ask(&loop, a, &g2);
    assert_int_equal(g2.err, DR_OK);
    check_jwt(g2.header, NULL, 2);
    dr_gcp_auth_destroy(a);
    finish_loop(&loop);
    free(path);
}

static void sa_bad_credentials(void **state)
{
    uv_loop_t loop;
    struct dr_gcp_auth *a = (void *)1;
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    char *paths[5];
    char notjson[256];
    FILE *f;

    snprintf(notjson, sizeof(notjson), "%s/notjson.json", dir);
    f = fopen(notjson, "w");
    fputs("{not json", f);
    fclose(f);
    paths[0] = strdup("/nonexistent/sa.json");
    paths[1] = strdup(notjson);
    paths[2] = write_sa_file("ec.json", ec, NULL, "service_account");
    paths[3] = write_sa_file("garbage.json", NULL, "-----BEGIN PRIVATE KEY-----\nAAAA\n", NULL);
    paths[4] = write_sa_file("user.json", rsa_key, NULL, "authorized_user");
    uv_loop_init(&loop);
    for (int i = 0; i < 5; i++) {
        struct dr_gcp_auth_conf conf = {.mode = DR_GCP_AUTH_SA_JWT, .credentials_file = paths[i]};
        assert_int_equal(dr_gcp_auth_create(&loop, NULL, &conf, &a), DR_EINVAL);
        assert_null(a);
        free(paths[i]);
    }
    /* a file without private_key */
    char *nokey = write_sa_file("nokey.json", NULL, NULL, NULL);
    struct dr_gcp_auth_conf conf = {.mode = DR_GCP_AUTH_SA_JWT, .credentials_file = nokey};
    assert_int_equal(dr_gcp_auth_create(&loop, NULL, &conf, &a), DR_EINVAL);
    free(nokey);
    /* lifetime above Google's maximum */
    char *ok = write_sa_file("ok.json", rsa_key, NULL, NULL);
    struct dr_gcp_auth_conf longlife = {
        .mode = DR_GCP_AUTH_SA_JWT, .credentials_file = ok, .token_lifetime_s = 7200};
    assert_int_equal(dr_gcp_auth_create(&loop, NULL, &longlife, &a), DR_EINVAL);
    free(ok);
    EVP_PKEY_free(ec);
    finish_loop(&loop);
}

static void none_mode(void **state)
{
    uv_loop_t loop;
    struct dr_gcp_auth *a;
    struct dr_gcp_auth_conf conf = {.mode = DR_GCP_AUTH_NONE};
    struct got g;

    uv_loop_init(&loop);
    assert_int_equal(dr_gcp_auth_create(&loop, NULL, &conf, &a), DR_OK);
    ask(&loop, a, &g);
    assert_int_equal(g.err, DR_OK);
    assert_false(g.has_header);
    assert_int_equal(dr_gcp_auth_header(a, NULL, NULL), DR_EINVAL);
    dr_gcp_auth_destroy(a);
    finish_loop(&loop);
}

static void from_env(void **state)
{
    uv_loop_t loop;
    struct dr_gcp_auth *a;
    char *path = write_sa_file("env.json", rsa_key, NULL, NULL);
    struct dr_hc *hc;
    char *saved = getenv("PUBSUB_EMULATOR_HOST") ? strdup(getenv("PUBSUB_EMULATOR_HOST")) : NULL;

    uv_loop_init(&loop);
    assert_int_equal(dr_hc_create(&loop, &hc), DR_OK);
    setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1", 1);
    setenv("GOOGLE_APPLICATION_CREDENTIALS", path, 1);
    assert_int_equal(dr_gcp_auth_create_from_env(&loop, hc, &a), DR_OK);
    assert_int_equal(dr_gcp_auth_mode(a), DR_GCP_AUTH_NONE);
    dr_gcp_auth_destroy(a);
    unsetenv("PUBSUB_EMULATOR_HOST");
    assert_int_equal(dr_gcp_auth_create_from_env(&loop, hc, &a), DR_OK);
    assert_int_equal(dr_gcp_auth_mode(a), DR_GCP_AUTH_SA_JWT);
    dr_gcp_auth_destroy(a);
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    assert_int_equal(dr_gcp_auth_create_from_env(&loop, hc, &a), DR_OK);
    assert_int_equal(dr_gcp_auth_mode(a), DR_GCP_AUTH_METADATA);
    dr_gcp_auth_destroy(a);
    if (saved) {
        setenv("PUBSUB_EMULATOR_HOST", saved, 1);
        free(saved);
    }
    dr_hc_destroy(hc);
    finish_loop(&loop);
    free(path);
}

/* ---- metadata server ---- */

enum md_mode { MD_OK, MD_SHORT, MD_500, MD_404, MD_BADJSON, MD_CRLF, MD_NOEXP };

struct md {
    enum md_mode mode;
    int hits;
    int bad_requests; /* wrong path or missing Metadata-Flavor */
};

static void md_handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct md *m = ud;
    char flavor[64] = "";
    char *body = malloc(512);

    resp->body = body;
    resp->content_type = "application/json";
    if (strcmp(req->method, "GET") != 0 ||
        strcmp(req->path, "/computeMetadata/v1/instance/service-accounts/default/token") != 0 ||
        ts_header(req, "Metadata-Flavor", flavor, sizeof(flavor)) || strcmp(flavor, "Google")) {
        m->bad_requests++;
        resp->status = 403;
        resp->body_len = (size_t)snprintf(body, 512, "Missing Metadata-Flavor:Google header.");
        return;
    }
    m->hits++;
    resp->delay_ms = 50; /* leaves time for concurrent callers to pile up */
    switch (m->mode) {
    case MD_OK:
    case MD_SHORT:
        resp->body_len = (size_t)snprintf(
            body, 512,
            "{\"access_token\":\"ya29.tok-%d\",\"expires_in\":%d,\"token_type\":\"Bearer\"}",
            m->hits, m->mode == MD_SHORT ? 1 : 3599);
        break;
    case MD_500:
        resp->status = 500;
        break;
    case MD_404:
        resp->status = 404;
        break;
    case MD_BADJSON:
        resp->body_len = (size_t)snprintf(body, 512, "{\"access_token\":");
        break;
    case MD_CRLF:
        resp->body_len = (size_t)snprintf(
            body, 512, "{\"access_token\":\"abc\\r\\nX-Evil: 1\",\"expires_in\":3599}");
        break;
    case MD_NOEXP:
        resp->body_len = (size_t)snprintf(body, 512, "{\"access_token\":\"abc\"}");
        break;
    }
}

struct mdfx {
    uv_loop_t loop;
    struct testsrv srv;
    struct md md;
    struct dr_hc *hc;
    struct dr_gcp_auth *auth;
};

static int md_setup(void **state)
{
    struct mdfx *f = calloc(1, sizeof(*f));
    char host[64];
    struct dr_gcp_auth_conf conf = {.mode = DR_GCP_AUTH_METADATA, .metadata_host = host};

    uv_loop_init(&f->loop);
    if (ts_start(&f->srv, md_handler, &f->md) || dr_hc_create(&f->loop, &f->hc)) {
        return -1;
    }
    snprintf(host, sizeof(host), "127.0.0.1:%d", f->srv.port);
    if (dr_gcp_auth_create(&f->loop, f->hc, &conf, &f->auth)) {
        return -1;
    }
    *state = f;
    return 0;
}

static int md_teardown(void **state)
{
    struct mdfx *f = *state;
    int bad = f->md.bad_requests;

    dr_gcp_auth_destroy(f->auth);
    dr_hc_destroy(f->hc);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    ts_stop(&f->srv);
    free(f);
    assert_int_equal(bad, 0);
    return 0;
}

static void metadata_shared_fetch_and_cache(void **state)
{
    struct mdfx *f = *state;
    struct got g[3];

    memset(g, 0, sizeof(g));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(dr_gcp_auth_header(f->auth, on_header, &g[i]), DR_OK);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].err, DR_OK);
        assert_string_equal(g[i].header, "Authorization: Bearer ya29.tok-1");
    }
    assert_int_equal(ts_count(&f->srv, &f->md.hits), 1);
    ask(&f->loop, f->auth, &g[0]); /* from the cache */
    assert_string_equal(g[0].header, "Authorization: Bearer ya29.tok-1");
    assert_int_equal(ts_count(&f->srv, &f->md.hits), 1);
    dr_gcp_auth_invalidate(f->auth);
    ask(&f->loop, f->auth, &g[0]);
    assert_string_equal(g[0].header, "Authorization: Bearer ya29.tok-2");
    assert_int_equal(ts_count(&f->srv, &f->md.hits), 2);
}

static void metadata_short_lived_token_refetched(void **state)
{
    struct mdfx *f = *state;
    struct got g;

    f->md.mode = MD_SHORT; /* expires_in 1 s: renewed after half of it */
    ask(&f->loop, f->auth, &g);
    assert_string_equal(g.header, "Authorization: Bearer ya29.tok-1");
    ask(&f->loop, f->auth, &g);
    assert_string_equal(g.header, "Authorization: Bearer ya29.tok-1");
    usleep(600 * 1000);
    ask(&f->loop, f->auth, &g);
    assert_string_equal(g.header, "Authorization: Bearer ya29.tok-2");
}

static void metadata_errors(void **state)
{
    struct mdfx *f = *state;
    static const struct {
        enum md_mode mode;
        int err;
    } cases[] = {{MD_500, DR_EIO},
                 {MD_404, DR_EAUTH},
                 {MD_BADJSON, DR_EAUTH},
                 {MD_CRLF, DR_EAUTH},
                 {MD_NOEXP, DR_EAUTH}};
    struct got g;

    for (size_t i = 0; i < DR_ARRAY_LEN(cases); i++) {
        f->md.mode = cases[i].mode;
        ask(&f->loop, f->auth, &g);
        assert_int_equal(g.err, cases[i].err);
        assert_false(g.has_header);
    }
    /* recovers once the server does */
    f->md.mode = MD_OK;
    ask(&f->loop, f->auth, &g);
    assert_int_equal(g.err, DR_OK);
    assert_true(g.has_header);
}

static void metadata_unreachable(void **state)
{
    uv_loop_t loop;
    struct dr_hc *hc;
    struct dr_gcp_auth *a;
    struct dr_gcp_auth_conf conf = {
        .mode = DR_GCP_AUTH_METADATA, .metadata_host = "127.0.0.1:1", .timeout_ms = 2000};
    struct dr_gcp_auth_conf bad = {.mode = DR_GCP_AUTH_METADATA, .metadata_host = "x/y@z"};
    struct got g;

    uv_loop_init(&loop);
    assert_int_equal(dr_hc_create(&loop, &hc), DR_OK);
    assert_int_equal(dr_gcp_auth_create(&loop, hc, &bad, &a), DR_EINVAL);
    assert_int_equal(dr_gcp_auth_create(&loop, NULL, &conf, &a), DR_EINVAL); /* needs hc */
    assert_int_equal(dr_gcp_auth_create(&loop, hc, &conf, &a), DR_OK);
    ask(&loop, a, &g);
    assert_int_equal(g.err, DR_EIO);
    dr_gcp_auth_destroy(a);
    dr_hc_destroy(hc);
    finish_loop(&loop);
}

static void metadata_destroy_and_cancel(void **state)
{
    struct mdfx *f = *state;
    struct got g1 = {0}, g2 = {0}, g3 = {0};

    assert_int_equal(dr_gcp_auth_header(f->auth, on_header, &g1), DR_OK);
    assert_int_equal(dr_gcp_auth_header(f->auth, on_header, &g2), DR_OK);
    assert_int_equal(dr_gcp_auth_header(f->auth, on_header, &g3), DR_OK);
    dr_gcp_auth_cancel(f->auth, on_header, &g3);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the fetch starts */
    dr_gcp_auth_destroy(f->auth);
    assert_int_equal(dr_gcp_auth_header(f->auth, on_header, &g3), DR_EUNAVAIL);
    f->auth = NULL;
    assert_int_equal(g1.calls, 1);
    assert_int_equal(g1.err, DR_EUNAVAIL);
    assert_int_equal(g2.calls, 1);
    assert_int_equal(g2.err, DR_EUNAVAIL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(g3.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sa_jwt_signature_and_claims),
        cmocka_unit_test(sa_jwt_renewed_before_expiry),
        cmocka_unit_test(sa_bad_credentials),
        cmocka_unit_test(none_mode),
        cmocka_unit_test(from_env),
        cmocka_unit_test_setup_teardown(metadata_shared_fetch_and_cache, md_setup, md_teardown),
        cmocka_unit_test_setup_teardown(metadata_short_lived_token_refetched, md_setup,
                                        md_teardown),
        cmocka_unit_test_setup_teardown(metadata_errors, md_setup, md_teardown),
        cmocka_unit_test(metadata_unreachable),
        cmocka_unit_test_setup_teardown(metadata_destroy_and_cancel, md_setup, md_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
