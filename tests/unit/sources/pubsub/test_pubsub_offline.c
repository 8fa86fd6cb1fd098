/* The Pub/Sub client without the emulator: error mapping, answer parsing, limits, and the wire
 * format checked by a local fake server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/pubsub.h"
#include "dr/util.h"
#include "sources/pubsub/pubsub_internal.h"
#include "testsrv.h"

static void http_errors(void **state)
{
    static const char google404[] =
        "{\n  \"error\": {\n    \"code\": 404,\n    \"message\": \"Resource not found "
        "(resource=projects\\/p\\/topics\\/nope).\",\n    \"status\": \"NOT_FOUND\"\n  }\n}";
    static const char google409[] = "{\"error\":{\"code\":409,\"message\":\"Topic already "
                                    "exists\",\"status\":\"ALREADY_EXISTS\"}}";
    static const char evil[] = "{\"error\":{\"code\":400,\"message\":\"a\\nb\\u0001c\",\"status\":"
                               "\"INVALID_ARGUMENT\"}}";
    char msg[256];

    assert_int_equal(dr__pubsub_http_error(404, google404, strlen(google404), msg, sizeof(msg)),
                     DR_ENOTFOUND);
    assert_string_equal(
        msg, "HTTP 404 NOT_FOUND: Resource not found (resource=projects/p/topics/nope).");
    assert_int_equal(dr__pubsub_http_error(409, google409, strlen(google409), msg, sizeof(msg)),
                     DR_EEXIST);
    assert_string_equal(msg, "HTTP 409 ALREADY_EXISTS: Topic already exists");
    assert_int_equal(dr__pubsub_http_error(400, evil, strlen(evil), msg, sizeof(msg)), DR_EINVAL);
    assert_string_equal(msg, "HTTP 400 INVALID_ARGUMENT: a b c");
    assert_int_equal(dr__pubsub_http_error(404, "Not Found", 9, msg, sizeof(msg)), DR_ENOTFOUND);
    assert_string_equal(msg, "HTTP 404: Not Found");
    assert_int_equal(dr__pubsub_http_error(413, "", 0, msg, sizeof(msg)), DR_ETOOBIG);
    assert_string_equal(msg, "HTTP 413");
    assert_int_equal(dr__pubsub_http_error(429, "{}", 2, msg, sizeof(msg)), DR_EIO);
    assert_int_equal(dr__pubsub_http_error(500, "{}", 2, msg, sizeof(msg)), DR_EIO);
    assert_int_equal(dr__pubsub_http_error(503, "{}", 2, msg, sizeof(msg)), DR_EIO);
    assert_int_equal(dr__pubsub_http_error(408, "{}", 2, msg, sizeof(msg)), DR_EIO);
    assert_int_equal(dr__pubsub_http_error(401, "{}", 2, msg, sizeof(msg)), DR_EAUTH);
    assert_int_equal(dr__pubsub_http_error(403, "{}", 2, msg, sizeof(msg)), DR_EAUTH);
    assert_int_equal(dr__pubsub_http_error(412, "{}", 2, msg, sizeof(msg)), DR_EINVAL);
    assert_int_equal(dr__pubsub_http_error(418, "{}", 2, msg, sizeof(msg)), DR_EINVAL);
    /* a tiny buffer truncates, never overflows */
    assert_int_equal(dr__pubsub_http_error(404, google404, strlen(google404), msg, 12),
                     DR_ENOTFOUND);
    assert_string_equal(msg, "HTTP 404 NO");
}

static void parse_pull(void **state)
{
    static const char body[] =
        "{\n  \"receivedMessages\": [ {\n    \"ackId\": \"ack-1\",\n    \"message\": {\n"
        "      \"data\": \"aGVsbG8gd29ybGQ=\",\n      \"attributes\": {\"type\": \"email\", "
        "\"seq\": \"7\"},\n      \"messageId\": \"42\",\n      \"publishTime\": "
        "\"2026-11-27T10:00:00.123456789Z\",\n      \"orderingKey\": \"user-1\"\n    },\n"
        "    \"deliveryAttempt\": 3\n  }, {\n    \"ackId\": \"ack-2\",\n    \"message\": {\n"
        "      \"data\": \"!!notbase64\",\n      \"messageId\": \"43\"\n    }\n  }, {\n"
        "    \"ackId\": \"ack-3\",\n    \"message\": {\"attributes\": {\"k\": \"v\"}, "
        "\"messageId\": \"44\"}\n  } ]\n}";
    struct dr_pubsub_msg **msgs;
    size_t n;
    int64_t want;

    assert_int_equal(dr__pubsub_parse_pull(body, strlen(body), &msgs, &n), DR_OK);
    assert_int_equal(n, 3);
    assert_string_equal(msgs[0]->ack_id, "ack-1");
    assert_string_equal(msgs[0]->message_id, "42");
    assert_int_equal(msgs[0]->len, 11);
    assert_string_equal((char *)msgs[0]->data, "hello world");
    assert_int_equal(msgs[0]->n_attrs, 2);
    assert_string_equal(msgs[0]->attrs[0].key, "type");
    assert_string_equal(msgs[0]->attrs[0].value, "email");
    assert_string_equal(msgs[0]->attrs[1].key, "seq");
    assert_string_equal(msgs[0]->attrs[1].value, "7");
    assert_string_equal(msgs[0]->ordering_key, "user-1");
    assert_int_equal(msgs[0]->delivery_attempt, 3);
    assert_int_equal(dr_parse_time("2026-11-27T10:00:00.123Z", &want), DR_OK);
    assert_int_equal(msgs[0]->publish_time_ms, want);
    assert_null(msgs[0]->invalid);
    /* undecodable but still acknowledgeable */
    assert_string_equal(msgs[1]->ack_id, "ack-2");
    assert_non_null(msgs[1]->invalid);
    assert_int_equal(msgs[1]->len, 0);
    /* attributes only, no data */
    assert_null(msgs[2]->invalid);
    assert_int_equal(msgs[2]->len, 0);
    assert_string_equal((char *)msgs[2]->data, "");
    assert_string_equal(msgs[2]->ordering_key, "");
    assert_int_equal(msgs[2]->delivery_attempt, 0);
    for (size_t i = 0; i < n; i++) {
        dr_pubsub_msg_free(msgs[i]);
    }
    free(msgs);

    assert_int_equal(dr__pubsub_parse_pull("{}\n", 3, &msgs, &n), DR_OK);
    assert_int_equal(n, 0);
    assert_null(msgs);
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{\"receivedMessages\":{}}",
        "{\"receivedMessages\":[{\"message\":{\"messageId\":\"1\"}}]}",
        "{\"receivedMessages\":[{\"ackId\":\"a\"},{\"ackId\":7}]}"};
    for (size_t i = 0; i < DR_ARRAY_LEN(bad); i++) {
        assert_int_equal(dr__pubsub_parse_pull(bad[i], strlen(bad[i]), &msgs, &n), DR_EIO);
        assert_null(msgs);
    }
}

static void names(void **state)
{
    char out[512];

    assert_int_equal(dr__pubsub_resolve("p1", "topics", "orders", out, sizeof(out)), DR_OK);
    assert_string_equal(out, "projects/p1/topics/orders");
    assert_int_equal(
        dr__pubsub_resolve("p1", "topics", "projects/other/topics/t-1.x~y+z%", out, sizeof(out)),
        DR_OK);
    assert_string_equal(out, "projects/other/topics/t-1.x~y+z%");
    static const char *const bad[] = {NULL,
                                      "",
                                      "ab",
                                      "1abc",
                                      "googtopic",
                                      "a/b/c",
                                      "with space",
                                      "projects/p/subscriptions/s",
                                      "projects//topics/abc",
                                      "projects/p/topics/",
                                      "abc?x=1",
                                      "abc#",
                                      "t\r\nX: y"};
    for (size_t i = 0; i < DR_ARRAY_LEN(bad); i++) {
        assert_int_equal(dr__pubsub_resolve("p1", "topics", bad[i], out, sizeof(out)), DR_EINVAL);
    }
    char longname[300];
    memset(longname, 'a', 256);
    longname[256] = '\0';
    assert_int_equal(dr__pubsub_resolve("p1", "topics", longname, out, sizeof(out)), DR_EINVAL);
    longname[255] = '\0';
    assert_int_equal(dr__pubsub_resolve("p1", "topics", longname, out, sizeof(out)), DR_OK);
}

/* ---- limits: refused before anything is sent ---- */

static void never_called_pub(void *ctx, int err, const char *errmsg, const char *const *ids,
                             size_t n)
{
    fail_msg("publish callback ran for a refused publish");
}

static void never_called_done(void *ctx, int err, const char *errmsg, const cJSON *res)
{
    fail_msg("callback ran for a refused call");
}

static void never_called_pull(void *ctx, int err, const char *errmsg, struct dr_pubsub_msg **m,
                              size_t n)
{
    fail_msg("pull callback ran for a refused pull");
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void limits(void **state)
{
    uv_loop_t loop;
    struct dr_pubsub *ps;
    /* nothing listens there: any request that went out would fail in its callback */
    struct dr_pubsub_conf conf = {.project = "test-project", .emulator_host = "127.0.0.1:1"};
    static struct dr_pubsub_pub_msg many[1001];
    struct dr_pubsub_attr attrs[101];
    char keys[101][8];
    char *k256 = repeat('k', 256), *k257 = repeat('k', 257);
    char *v1024 = repeat('v', 1024), *v1025 = repeat('v', 1025);
    char *o1024 = repeat('o', 1024), *o1025 = repeat('o', 1025);
    struct dr_buf b;
    char why[256];

    uv_loop_init(&loop);
    assert_int_equal(dr_pubsub_create(&loop, &conf, &ps), DR_OK);
    for (int i = 0; i < 1001; i++) {
        many[i].data = "x";
        many[i].len = 1;
    }
    assert_int_equal(dr_pubsub_publish(ps, "topic-a", many, 1001, never_called_pub, NULL),
                     DR_ETOOBIG);
    assert_non_null(strstr(dr_pubsub_errmsg(ps), "1001 messages"));
    assert_int_equal(dr_pubsub_publish(ps, "topic-a", many, 0, never_called_pub, NULL), DR_EINVAL);
    assert_int_equal(dr_pubsub_publish(ps, "bad/name", many, 1, never_called_pub, NULL), DR_EINVAL);
    assert_int_equal(dr_pubsub_publish(ps, "topic-a", many, 1, NULL, NULL), DR_EINVAL);

    for (int i = 0; i < 101; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        attrs[i].key = keys[i];
        attrs[i].value = "v";
    }
    struct {
        struct dr_pubsub_pub_msg m;
        int err;
    } cases[] = {
        {{.data = "x", .len = 1, .attrs = attrs, .n_attrs = 100}, DR_OK},
        {{.data = "x", .len = 1, .attrs = attrs, .n_attrs = 101}, DR_ETOOBIG},
        {{.data = "x", .len = 1, .attrs = (struct dr_pubsub_attr[]){{k256, "v"}}, .n_attrs = 1},
         DR_OK},
        {{.data = "x", .len = 1, .attrs = (struct dr_pubsub_attr[]){{k257, "v"}}, .n_attrs = 1},
         DR_ETOOBIG},
        {{.data = "x", .len = 1, .attrs = (struct dr_pubsub_attr[]){{"k", v1024}}, .n_attrs = 1},
         DR_OK},
        {{.data = "x", .len = 1, .attrs = (struct dr_pubsub_attr[]){{"k", v1025}}, .n_attrs = 1},
         DR_ETOOBIG},
        {{.data = "x", .len = 1, .ordering_key = o1024}, DR_OK},
        {{.data = "x", .len = 1, .ordering_key = o1025}, DR_ETOOBIG},
        {{.data = NULL, .len = 0}, DR_EINVAL},
        {{.data = NULL, .len = 3}, DR_EINVAL},
        {{.attrs = (struct dr_pubsub_attr[]){{"only", "attrs"}}, .n_attrs = 1}, DR_OK},
        {{.data = "x", .len = 1, .attrs = (struct dr_pubsub_attr[]){{"googx", "v"}}, .n_attrs = 1},
         DR_EINVAL},
        {{.data = "x", .len = 1, .attrs = (struct dr_pubsub_attr[]){{"", "v"}}, .n_attrs = 1},
         DR_EINVAL},
        {{.data = "x", .len = 1, .attrs = (struct dr_pubsub_attr[]){{"k", NULL}}, .n_attrs = 1},
         DR_EINVAL},
        {{.data = "x",
          .len = 1,
          .attrs = (struct dr_pubsub_attr[]){{"k", "\xff\xfe"}},
          .n_attrs = 1},
         DR_EINVAL},
        {{.data = "x",
          .len = 1,
          .attrs = (struct dr_pubsub_attr[]){{"k", "a"}, {"k", "b"}},
          .n_attrs = 2},
         DR_EINVAL},
        {{.data = "x", .len = 1, .ordering_key = "\xc0\xaf"}, DR_EINVAL},
    };
    for (size_t i = 0; i < DR_ARRAY_LEN(cases); i++) {
        dr_buf_init(&b, DR_PUBSUB_MAX_REQUEST_BYTES);
        why[0] = '\0';
        assert_int_equal(dr__pubsub_publish_body(&cases[i].m, 1, &b, why, sizeof(why)),
                         cases[i].err);
        if (cases[i].err) {
            assert_true(why[0] != '\0');
            assert_int_equal(
                dr_pubsub_publish(ps, "topic-a", &cases[i].m, 1, never_called_pub, NULL),
                cases[i].err);
            assert_true(dr_pubsub_errmsg(ps)[0] != '\0');
        } else {
            /* the body is JSON and carries what was given */
            cJSON *j = dr_json_parse(b.data, b.len);
            assert_non_null(j);
            assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "messages")), 1);
            cJSON_Delete(j);
        }
        dr_buf_cleanup(&b);
    }

    /* 10 MB per request, counted once encoded */
    size_t big = 4 * 1000 * 1000;
    char *data = repeat('d', big);
    struct dr_pubsub_pub_msg two[2] = {{.data = data, .len = big}, {.data = data, .len = big}};
    assert_int_equal(dr_pubsub_publish(ps, "topic-a", two, 2, never_called_pub, NULL), DR_ETOOBIG);
    assert_non_null(strstr(dr_pubsub_errmsg(ps), "10000000"));
    dr_buf_init(&b, DR_PUBSUB_MAX_REQUEST_BYTES);
    assert_int_equal(dr__pubsub_publish_body(two, 1, &b, why, sizeof(why)), DR_OK);
    dr_buf_cleanup(&b);
    free(data);

    /* pull, ack, modack and subscription settings */
    const char *ids[] = {"a1"};
    assert_int_equal(dr_pubsub_pull(ps, "sub-a", 0, 1, never_called_pull, NULL), DR_EINVAL);
    assert_int_equal(dr_pubsub_pull(ps, "sub-a", 1001, 1, never_called_pull, NULL), DR_EINVAL);
    assert_int_equal(dr_pubsub_ack(ps, "sub-a", ids, 0, never_called_done, NULL), DR_EINVAL);
    assert_int_equal(dr_pubsub_modack(ps, "sub-a", ids, 1, 601, never_called_done, NULL),
                     DR_EINVAL);
    assert_int_equal(dr_pubsub_modack(ps, "sub-a", ids, 1, -1, never_called_done, NULL), DR_EINVAL);
    const char *empty_id[] = {""};
    assert_int_equal(dr_pubsub_ack(ps, "sub-a", empty_id, 1, never_called_done, NULL), DR_EINVAL);
    struct dr_pubsub_sub_conf bad_subs[] = {
        {.topic = "topic-a", .ack_deadline_s = 9},
        {.topic = "topic-a", .ack_deadline_s = 601},
        {.topic = "topic-a", .dead_letter_topic = "dlq-a", .max_delivery_attempts = 4},
        {.topic = "topic-a", .dead_letter_topic = "dlq-a", .max_delivery_attempts = 101},
        {.topic = "topic-a", .max_delivery_attempts = 5},
        {.topic = "topic-a", .retry_min_backoff_s = 20, .retry_max_backoff_s = 10},
        {.topic = "topic-a", .retry_max_backoff_s = 601},
        {.topic = "topic-a", .push_endpoint = "ftp://x"},
        {.topic = NULL},
        {.topic = "topic-a", .dead_letter_topic = "x"},
    };
    for (size_t i = 0; i < DR_ARRAY_LEN(bad_subs); i++) {
        assert_int_equal(dr_pubsub_sub_create(ps, "sub-a", &bad_subs[i], never_called_done, NULL),
                         DR_EINVAL);
    }
    assert_int_equal(dr_pubsub_in_flight(ps), 0);
    dr_pubsub_destroy(ps);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    free(k256);
    free(k257);
    free(v1024);
    free(v1025);
    free(o1024);
    free(o1025);
}

static void create_rejects_bad_conf(void **state)
{
    uv_loop_t loop;
    struct dr_pubsub *ps = NULL;
    struct dr_pubsub_conf confs[] = {
        {.project = NULL, .emulator_host = "127.0.0.1:1"},
        {.project = "bad/project", .emulator_host = "127.0.0.1:1"},
        {.project = "p", .emulator_host = "host/path"},
        {.project = "p", .emulator_host = "", .endpoint = "ftp://x"},
    };

    uv_loop_init(&loop);
    for (size_t i = 0; i < DR_ARRAY_LEN(confs); i++) {
        assert_int_equal(dr_pubsub_create(&loop, &confs[i], &ps), DR_EINVAL);
        assert_null(ps);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the wire format, against a fake service ---- */

struct wire {
    int requests;
    int bad; /* requests without Content-Type: application/json or bearer token */
    char last_path[256];
    char last_method[16];
    char *last_body;
    char auth[2048];
};

static void wire_handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct wire *w = ud;
    char ct[128] = "";

    w->requests++;
    if (ts_header(req, "Content-Type", ct, sizeof(ct)) || strcmp(ct, "application/json") ||
        ts_header(req, "Authorization", w->auth, sizeof(w->auth)) ||
        strncmp(w->auth, "Bearer ey", 9) != 0) {
        w->bad++;
        fprintf(stderr, "bad request: %s %s ct=%s auth=%.12s\n", req->method, req->path, ct,
                w->auth);
    }
    snprintf(w->last_path, sizeof(w->last_path), "%.255s", req->path);
    snprintf(w->last_method, sizeof(w->last_method), "%s", req->method);
    free(w->last_body);
    w->last_body = strdup(req->body ? req->body : "");
    resp->content_type = "application/json";
    resp->body = malloc(256);
    if (strstr(req->path, "/topics/garbled")) {
        resp->body_len = (size_t)snprintf(resp->body, 256, "{\"messageIds\":");
    } else if (strstr(req->path, ":publish")) {
        resp->body_len = (size_t)snprintf(resp->body, 256, "{\"messageIds\":[\"101\",\"102\"]}");
    } else if (strstr(req->path, "/topics/missing")) {
        resp->status = 404;
        resp->body_len = (size_t)snprintf(resp->body, 256,
                                          "{\"error\":{\"code\":404,\"message\":\"Resource not "
                                          "found\",\"status\":\"NOT_FOUND\"}}");
    } else if (strstr(req->path, "/topics/busy")) {
        resp->status = 429;
        resp->body_len = (size_t)snprintf(resp->body, 256,
                                          "{\"error\":{\"code\":429,\"message\":\"slow "
                                          "down\",\"status\":\"RESOURCE_EXHAUSTED\"}}");
    } else if (strstr(req->path, ":pull")) {
        resp->hang = 1;
    } else {
        resp->body_len = (size_t)snprintf(resp->body, 256, "{}");
    }
}

struct result {
    int calls;
    int err;
    char msg[512];
    char ids[4][16];
    size_t n;
};

static void on_pub(void *ctx, int err, const char *errmsg, const char *const *ids, size_t n)
{
    struct result *r = ctx;
    r->calls++;
    r->err = err;
    snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : "");
    r->n = n;
    for (size_t i = 0; i < n && i < 4; i++) {
        snprintf(r->ids[i], sizeof(r->ids[i]), "%s", ids[i]);
    }
}

static void on_done(void *ctx, int err, const char *errmsg, const cJSON *res)
{
    struct result *r = ctx;
    r->calls++;
    r->err = err;
    snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : "");
}

static void on_pull(void *ctx, int err, const char *errmsg, struct dr_pubsub_msg **m, size_t n)
{
    struct result *r = ctx;
    r->calls++;
    r->err = err;
    r->n = n;
    snprintf(r->msg, sizeof(r->msg), "%s", errmsg ? errmsg : "");
}

static void wire_format(void **state)
{
    uv_loop_t loop;
    struct testsrv srv;
    struct wire w = {0};
    struct dr_hc *hc;
    struct dr_gcp_auth *auth;
    struct dr_pubsub *ps;
    char endpoint[64], path[256];
    EVP_PKEY *key = EVP_RSA_gen(2048);
    struct result r;

    /* a service-account key file for the JWT */
    snprintf(path, sizeof(path), "/tmp/dr-pubsub-wire-%d.json", (int)getpid());
    {
        BIO *b = BIO_new(BIO_s_mem());
        char *pem;
        long n;
        cJSON *o = cJSON_CreateObject();
        PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
        n = BIO_get_mem_data(b, &pem);
        char *p = strndup(pem, (size_t)n);
        cJSON_AddStringToObject(o, "type", "service_account");
        cJSON_AddStringToObject(o, "private_key_id", "kid1");
        cJSON_AddStringToObject(o, "private_key", p);
        cJSON_AddStringToObject(o, "client_email", "sa@p.iam.gserviceaccount.com");
        char *json = dr_json_print(o);
        FILE *f = fopen(path, "w");
        fputs(json, f);
        fclose(f);
        free(json);
        free(p);
        cJSON_Delete(o);
        BIO_free(b);
    }
    uv_loop_init(&loop);
    assert_int_equal(ts_start(&srv, wire_handler, &w), 0);
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/", srv.port);
    assert_int_equal(dr_hc_create(&loop, &hc), DR_OK);
    struct dr_gcp_auth_conf aconf = {.mode = DR_GCP_AUTH_SA_JWT, .credentials_file = path};
    assert_int_equal(dr_gcp_auth_create(&loop, hc, &aconf, &auth), DR_OK);
    struct dr_pubsub_conf conf = {.project = "proj-1",
                                  .emulator_host = "",
                                  .endpoint = endpoint,
                                  .hc = hc,
                                  .auth = auth,
                                  .timeout_ms = 5000};
    assert_int_equal(dr_pubsub_create(&loop, &conf, &ps), DR_OK);

    struct dr_pubsub_attr attrs[] = {{"type", "email"}, {"quote", "a\"b"}};
    struct dr_pubsub_pub_msg msgs[] = {
        {.data = "hello", .len = 5, .attrs = attrs, .n_attrs = 2, .ordering_key = "u-1"},
        {.data = "\x00\x01\xff", .len = 3}};
    memset(&r, 0, sizeof(r));
    assert_int_equal(dr_pubsub_publish(ps, "orders", msgs, 2, on_pub, &r), DR_OK);
    assert_int_equal(r.calls, 0);
    assert_int_equal(dr_pubsub_in_flight(ps), 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, DR_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.ids[0], "101");
    assert_string_equal(r.ids[1], "102");
    assert_string_equal(w.last_method, "POST");
    assert_string_equal(w.last_path, "/v1/projects/proj-1/topics/orders:publish");
    {
        cJSON *j = dr_json_parse(w.last_body, strlen(w.last_body));
        const cJSON *m0 = dr_json_pointer(j, "/messages/0");
        const cJSON *m1 = dr_json_pointer(j, "/messages/1");
        assert_non_null(m0);
        assert_string_equal(dr_json_str(m0, "data"), "aGVsbG8=");
        assert_string_equal(dr_json_str(dr_json_pointer(m0, "/attributes"), "quote"), "a\"b");
        assert_string_equal(dr_json_str(m0, "orderingKey"), "u-1");
        assert_string_equal(dr_json_str(m1, "data"), "AAH/");
        assert_null(cJSON_GetObjectItem(m1, "orderingKey"));
        cJSON_Delete(j);
    }

    /* errors become readable messages with the right error */
    memset(&r, 0, sizeof(r));
    assert_int_equal(dr_pubsub_topic_get(ps, "missing", on_done, &r), DR_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.err, DR_ENOTFOUND);
    assert_string_equal(r.msg, "HTTP 404 NOT_FOUND: Resource not found");
    assert_string_equal(w.last_method, "GET");
    memset(&r, 0, sizeof(r));
    assert_int_equal(dr_pubsub_topic_delete(ps, "busy", on_done, &r), DR_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.err, DR_EIO);
    assert_string_equal(w.last_method, "DELETE");
    memset(&r, 0, sizeof(r));
    assert_int_equal(dr_pubsub_publish(ps, "garbled", msgs, 2, on_pub, &r), DR_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.err, DR_EIO);
    assert_int_equal(r.n, 0);

    /* subscription body */
    struct dr_pubsub_sub_conf sc = {.topic = "orders",
                                    .ack_deadline_s = 30,
                                    .dead_letter_topic = "projects/other/topics/orders-dlq",
                                    .max_delivery_attempts = 7,
                                    .retry_min_backoff_s = 5,
                                    .retry_max_backoff_s = 60,
                                    .enable_message_ordering = 1,
                                    .push_endpoint = "https://example.com/push"};
    memset(&r, 0, sizeof(r));
    assert_int_equal(dr_pubsub_sub_create(ps, "orders-sub", &sc, on_done, &r), DR_OK);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.err, DR_OK);
    assert_string_equal(w.last_method, "PUT");
    assert_string_equal(w.last_path, "/v1/projects/proj-1/subscriptions/orders-sub");
    {
        cJSON *j = dr_json_parse(w.last_body, strlen(w.last_body));
        int64_t v;
        assert_string_equal(dr_json_str(j, "topic"), "projects/proj-1/topics/orders");
        assert_int_equal(dr_json_i64(j, "ackDeadlineSeconds", &v), DR_OK);
        assert_int_equal(v, 30);
        assert_true(dr_json_true(j, "enableMessageOrdering"));
        assert_string_equal(dr_json_str(dr_json_pointer(j, "/deadLetterPolicy"), "deadLetterTopic"),
                            "projects/other/topics/orders-dlq");
        assert_int_equal(
            dr_json_i64(dr_json_pointer(j, "/deadLetterPolicy"), "maxDeliveryAttempts", &v), DR_OK);
        assert_int_equal(v, 7);
        assert_string_equal(dr_json_str(dr_json_pointer(j, "/retryPolicy"), "minimumBackoff"),
                            "5s");
        assert_string_equal(dr_json_str(dr_json_pointer(j, "/retryPolicy"), "maximumBackoff"),
                            "60s");
        assert_string_equal(dr_json_str(dr_json_pointer(j, "/pushConfig"), "pushEndpoint"),
                            "https://example.com/push");
        cJSON_Delete(j);
    }

    /* a large ack is split into batches; one callback */
    size_t nids = 6000;
    char **ids = malloc(nids * sizeof(*ids));
    for (size_t i = 0; i < nids; i++) {
        ids[i] = malloc(32);
        snprintf(ids[i], 32, "ack-%05zu", i);
    }
    int before = ts_count(&srv, &w.requests);
    memset(&r, 0, sizeof(r));
    assert_int_equal(
        dr_pubsub_modack(ps, "orders-sub", (const char *const *)ids, nids, 0, on_done, &r), DR_OK);
    assert_int_equal(dr_pubsub_in_flight(ps), 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, DR_OK);
    assert_int_equal(ts_count(&srv, &w.requests) - before, 3); /* 2500 + 2500 + 1000 */
    assert_non_null(strstr(w.last_body, "\"ackDeadlineSeconds\":0"));
    for (size_t i = 0; i < nids; i++) {
        free(ids[i]);
    }
    free(ids);

    /* destroy cancels a pull that is still waiting */
    memset(&r, 0, sizeof(r));
    assert_int_equal(dr_pubsub_pull(ps, "orders-sub", 10, 0, on_pull, &r), DR_OK);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    dr_pubsub_destroy(ps);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, DR_EUNAVAIL);

    dr_gcp_auth_destroy(auth);
    dr_hc_destroy(hc);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    ts_stop(&srv);
    assert_int_equal(w.bad, 0); /* every request had Content-Type and a bearer token */
    assert_true(w.requests >= 8);
    free(w.last_body);
    unlink(path);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(http_errors),
        cmocka_unit_test(parse_pull),
        cmocka_unit_test(names),
        cmocka_unit_test(limits),
        cmocka_unit_test(create_rejects_bad_conf),
        cmocka_unit_test(wire_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
