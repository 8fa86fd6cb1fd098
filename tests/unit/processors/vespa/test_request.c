/* src/processors/vespa/request.c: index operations → /document/v1 requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/vespa.h"

static struct dr_vespa_conf conf(void)
{
    static char endpoint[] = "http://vespa.test:8080";
    static char ns[] = "datarouter";
    struct dr_vespa_conf c = {.endpoint = endpoint,
                              .ns = ns,
                              .enabled = 1,
                              .max_in_flight = 4,
                              .timeout_ms = 10000,
                              .retries = 3,
                              .backoff_ms = 100,
                              .backoff_max_ms = 2000,
                              .max_body = 1 << 20};
    return c;
}

static cJSON *json(const char *s)
{
    cJSON *j = dr_json_parse(s, strlen(s));
    assert_non_null(j);
    return j;
}

static void parse_ok(void **state)
{
    cJSON *p = json("{\"operation\":\"put\",\"doctype\":\"email\",\"docid\":\"u1:m1\","
                    "\"user_id\":\"u1\",\"fields\":{\"subject\":\"hi\"}}");
    struct dr_vespa_op op;
    char err[128] = "";

    assert_int_equal(dr_vespa_op_parse(p, &op, err, sizeof(err)), DR_OK);
    assert_int_equal(op.kind, DR_VESPA_PUT);
    assert_string_equal(op.doctype, "email");
    assert_string_equal(op.docid, "u1:m1");
    assert_ptr_equal(op.fields, cJSON_GetObjectItemCaseSensitive(p, "fields"));
    cJSON_Delete(p);

    p = json("{\"operation\":\"update\",\"doctype\":\"contact\",\"docid\":\"u1:c1\","
             "\"fields\":{\"name\":\"A\"}}");
    assert_int_equal(dr_vespa_op_parse(p, &op, err, sizeof(err)), DR_OK);
    assert_int_equal(op.kind, DR_VESPA_UPDATE);
    cJSON_Delete(p);

    /* remove needs no fields, and ignores any */
    p = json("{\"operation\":\"remove\",\"doctype\":\"calendar_event\",\"docid\":\"u1:e1\"}");
    assert_int_equal(dr_vespa_op_parse(p, &op, err, sizeof(err)), DR_OK);
    assert_int_equal(op.kind, DR_VESPA_REMOVE);
    assert_null(op.fields);
    cJSON_Delete(p);
}

static void parse_bad(void **state)
{
    static const char *const bad[] = {
        "[1,2]",
        "{\"doctype\":\"email\",\"docid\":\"a\",\"fields\":{}}",
        "{\"operation\":\"upsert\",\"doctype\":\"email\",\"docid\":\"a\",\"fields\":{}}",
        "{\"operation\":\"put\",\"docid\":\"a\",\"fields\":{}}",
        "{\"operation\":\"put\",\"doctype\":\"em/ail\",\"docid\":\"a\",\"fields\":{}}",
        "{\"operation\":\"put\",\"doctype\":\"1email\",\"docid\":\"a\",\"fields\":{}}",
        "{\"operation\":\"put\",\"doctype\":\"\",\"docid\":\"a\",\"fields\":{}}",
        "{\"operation\":\"put\",\"doctype\":\"email\",\"fields\":{}}",
        "{\"operation\":\"put\",\"doctype\":\"email\",\"docid\":\"\",\"fields\":{}}",
        "{\"operation\":\"put\",\"doctype\":\"email\",\"docid\":7,\"fields\":{}}",
        "{\"operation\":\"put\",\"doctype\":\"email\",\"docid\":\"a\"}",
        "{\"operation\":\"update\",\"doctype\":\"email\",\"docid\":\"a\",\"fields\":[1]}",
        "{\"operation\":\"put\",\"doctype\":\"email\",\"docid\":\"a\",\"fields\":{\"\":1}}",
    };
    struct dr_vespa_op op;
    char err[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *p = json(bad[i]);
        err[0] = '\0';
        assert_int_equal(dr_vespa_op_parse(p, &op, err, sizeof(err)), DR_EINVAL);
        assert_true(err[0] != '\0');
        cJSON_Delete(p);
    }
    assert_int_equal(dr_vespa_op_parse(NULL, &op, err, sizeof(err)), DR_EINVAL);

    /* docid length is bounded */
    {
        char *id = malloc(3000);
        cJSON *p = cJSON_CreateObject();
        memset(id, 'x', 2999);
        id[2999] = '\0';
        cJSON_AddStringToObject(p, "operation", "remove");
        cJSON_AddStringToObject(p, "doctype", "email");
        cJSON_AddStringToObject(p, "docid", id);
        assert_int_equal(dr_vespa_op_parse(p, &op, err, sizeof(err)), DR_EINVAL);
        cJSON_Delete(p);
        free(id);
    }
}

static void segment_encoding(void **state)
{
    struct dr_buf b;

    dr_buf_init(&b, 1024);
    assert_int_equal(dr_vespa_append_segment(&b, "u1:msg/1 ?#%&=+\xc3\xbc~._-Az9"), DR_OK);
    assert_string_equal(b.data, "u1%3Amsg%2F1%20%3F%23%25%26%3D%2B%C3%BC~._-Az9");
    dr_buf_cleanup(&b);
}

static void build_put(void **state)
{
    struct dr_vespa_conf c = conf();
    cJSON *p = json("{\"operation\":\"put\",\"doctype\":\"email\",\"docid\":\"u1:m/1\","
                    "\"fields\":{\"subject\":\"hi \\\"there\\\"\",\"n\":1,\"tags\":[\"a\"]}}");
    struct dr_vespa_op op;
    struct dr_vespa_request req;
    char err[128];

    assert_int_equal(dr_vespa_op_parse(p, &op, err, sizeof(err)), DR_OK);
    assert_int_equal(dr_vespa_request_build(&c, &op, &req), DR_OK);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.url, "http://vespa.test:8080/document/v1/datarouter/email/docid/"
                                 "u1%3Am%2F1?timeout=9000ms");
    assert_string_equal(req.body, "{\"fields\":{\"subject\":\"hi \\\"there\\\"\",\"n\":1,"
                                  "\"tags\":[\"a\"]}}");
    assert_int_equal(req.body_len, strlen(req.body));
    dr_vespa_request_cleanup(&req);
    assert_null(req.url);
    dr_vespa_request_cleanup(&req); /* idempotent */
    cJSON_Delete(p);
}

static void build_update(void **state)
{
    struct dr_vespa_conf c = conf();
    cJSON *p = json("{\"operation\":\"update\",\"doctype\":\"contact\",\"docid\":\"u2:c9\","
                    "\"fields\":{\"name\":\"Ann\",\"emails\":[\"a@x\"],\"meta\":{\"k\":null}}}");
    struct dr_vespa_op op;
    struct dr_vespa_request req;
    char err[128];
    cJSON *body;

    assert_int_equal(dr_vespa_op_parse(p, &op, err, sizeof(err)), DR_OK);
    assert_int_equal(dr_vespa_request_build(&c, &op, &req), DR_OK);
    assert_string_equal(req.method, "PUT");
    assert_string_equal(req.url, "http://vespa.test:8080/document/v1/datarouter/contact/docid/"
                                 "u2%3Ac9?create=true&timeout=9000ms");
    assert_string_equal(req.body, "{\"fields\":{\"name\":{\"assign\":\"Ann\"},"
                                  "\"emails\":{\"assign\":[\"a@x\"]},"
                                  "\"meta\":{\"assign\":{\"k\":null}}}}");
    body = dr_json_parse(req.body, req.body_len);
    assert_non_null(body); /* well-formed JSON */
    cJSON_Delete(body);
    dr_vespa_request_cleanup(&req);
    cJSON_Delete(p);

    /* an empty update is still a well-formed request */
    p = json("{\"operation\":\"update\",\"doctype\":\"contact\",\"docid\":\"u\",\"fields\":{}}");
    assert_int_equal(dr_vespa_op_parse(p, &op, err, sizeof(err)), DR_OK);
    assert_int_equal(dr_vespa_request_build(&c, &op, &req), DR_OK);
    assert_string_equal(req.body, "{\"fields\":{}}");
    dr_vespa_request_cleanup(&req);
    cJSON_Delete(p);
}

static void build_remove(void **state)
{
    struct dr_vespa_conf c = conf();
    static char endpoint[] = "https://proxy.test/vespa";
    static char ns[] = "ns-2.prod";
    cJSON *p = json("{\"operation\":\"remove\",\"doctype\":\"email\",\"docid\":\"u1:m1\","
                    "\"fields\":{\"ignored\":1}}");
    struct dr_vespa_op op;
    struct dr_vespa_request req;
    char err[128];

    c.endpoint = endpoint;
    c.ns = ns;
    c.timeout_ms = 500;
    assert_int_equal(dr_vespa_op_parse(p, &op, err, sizeof(err)), DR_OK);
    assert_int_equal(dr_vespa_request_build(&c, &op, &req), DR_OK);
    assert_string_equal(req.method, "DELETE");
    assert_string_equal(req.url, "https://proxy.test/vespa/document/v1/ns-2.prod/email/docid/"
                                 "u1%3Am1?timeout=450ms");
    assert_null(req.body);
    assert_int_equal(req.body_len, 0);
    dr_vespa_request_cleanup(&req);
    cJSON_Delete(p);
}

static void build_limits(void **state)
{
    struct dr_vespa_conf c = conf();
    cJSON *p = cJSON_CreateObject(), *fields = cJSON_CreateObject();
    char *big = malloc(4096);
    struct dr_vespa_op op;
    struct dr_vespa_request req;
    char err[128];

    memset(big, 'x', 4095);
    big[4095] = '\0';
    cJSON_AddStringToObject(fields, "body", big);
    cJSON_AddStringToObject(p, "operation", "put");
    cJSON_AddStringToObject(p, "doctype", "email");
    cJSON_AddStringToObject(p, "docid", "u1:m1");
    cJSON_AddItemToObject(p, "fields", fields);
    assert_int_equal(dr_vespa_op_parse(p, &op, err, sizeof(err)), DR_OK);
    c.max_body = 4096; /* the body is 4095 + 21 bytes */
    assert_int_equal(dr_vespa_request_build(&c, &op, &req), DR_ETOOBIG);
    assert_null(req.url);
    assert_null(req.body);
    c.max_body = 8192;
    assert_int_equal(dr_vespa_request_build(&c, &op, &req), DR_OK);
    assert_int_equal(req.body_len, 4095 + strlen("{\"fields\":{\"body\":\"\"}}"));
    dr_vespa_request_cleanup(&req);

    c.endpoint = NULL;
    assert_int_equal(dr_vespa_request_build(&c, &op, &req), DR_EINVAL);
    free(big);
    cJSON_Delete(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_ok),         cmocka_unit_test(parse_bad),
        cmocka_unit_test(segment_encoding), cmocka_unit_test(build_put),
        cmocka_unit_test(build_update),     cmocka_unit_test(build_remove),
        cmocka_unit_test(build_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
