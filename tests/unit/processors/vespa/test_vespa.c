/* src/processors/vespa/vespa.c: the processor end to end against a scripted HTTP server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/config.h"
#include "dr/err.h"
#include "dr/metrics.h"
#include "dr/msg.h"
#include "dr/vespa.h"
#include "unit/sources/pubsub/testsrv.h"

#define TRACE "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

/* The server answers statuses[0], statuses[1], ... then 200s, and remembers the last request. */
struct script {
    int statuses[8];
    int n;
    int next;
    const char *retry_after;
    char method[16];
    char path[2048];
    char ctype[128];
    char trace[128];
    char body[4096];
    int hang;
};

static void handler(const struct ts_req *req, struct ts_resp *resp, void *ud)
{
    struct script *s = ud;
    int status = s->next < s->n ? s->statuses[s->next++] : 200;
    char buf[512];

    snprintf(s->method, sizeof(s->method), "%s", req->method);
    snprintf(s->path, sizeof(s->path), "%s", req->path);
    snprintf(s->body, sizeof(s->body), "%s", req->body ? req->body : "");
    if (ts_header(req, "Content-Type", s->ctype, sizeof(s->ctype))) {
        s->ctype[0] = '\0';
    }
    if (ts_header(req, "traceparent", s->trace, sizeof(s->trace))) {
        s->trace[0] = '\0';
    }
    resp->status = status;
    resp->content_type = "application/json";
    resp->hang = s->hang;
    if (status == 200) {
        snprintf(buf, sizeof(buf), "{\"pathId\":\"%s\",\"id\":\"id:x\"}", req->path);
    } else if (status == 400) {
        snprintf(buf, sizeof(buf),
                 "{\"pathId\":\"%s\",\"message\":\"Document type nope does not "
                 "exist\"}",
                 req->path);
    } else {
        snprintf(buf, sizeof(buf), "{\"pathId\":\"%s\",\"message\":\"overloaded\"}", req->path);
    }
    resp->body = strdup(buf);
    resp->body_len = strlen(buf);
    if (s->retry_after && status != 200) {
        snprintf(resp->extra, sizeof(resp->extra), "Retry-After: %s\r\n", s->retry_after);
    }
}

struct fx {
    struct testsrv srv;
    struct script script;
    void *proc;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    unsetenv("DR_VESPA_URL");
    dr_metrics_reset();
    if (ts_start(&f->srv, handler, &f->script)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    dr_processor_vespa.destroy(f->proc);
    ts_stop(&f->srv);
    free(f);
    return 0;
}

/* Starts the processor with extra YAML lines; endpoint = the test server unless told. */
static void start(struct fx *f, const char *extra, int with_endpoint)
{
    char yaml[1024];
    cJSON *section = NULL;
    char err[512] = "";
    struct dr_proc_env env = {.data_dir = "/tmp"};

    if (with_endpoint) {
        snprintf(yaml, sizeof(yaml),
                 "endpoint: http://127.0.0.1:%d\nbackoff: 1ms\nbackoff_max: 5ms\n%s", f->srv.port,
                 extra ? extra : "");
    } else {
        snprintf(yaml, sizeof(yaml), "%s", extra ? extra : "{}");
    }
    assert_int_equal(dr_yaml_to_json(yaml, strlen(yaml), &section, err, sizeof(err)), 0);
    env.config = section;
    if (dr_processor_vespa.init(&env, &f->proc, err, sizeof(err)) != 0) {
        fail_msg("init: %s", err);
    }
    cJSON_Delete(section); /* the processor keeps nothing of it */
}

static struct dr_msg *op_msg(const char *json)
{
    struct dr_msg *m = dr_msg_create("m-1", "vespa-index", json, strlen(json), 0);
    dr_msg_add_attr(m, "traceparent", TRACE);
    dr_msg_finish(m, "index_operation", 0);
    return m;
}

static void run(struct fx *f, const char *json, struct dr_result *res)
{
    struct dr_msg *m = op_msg(json);

    dr_result_init(res);
    dr_processor_vespa.process(f->proc, m, res);
    dr_msg_unref(m);
}

static const char *PUT = "{\"operation\":\"put\",\"doctype\":\"email\",\"docid\":\"u1:m/1\","
                         "\"user_id\":\"u1\",\"fields\":{\"subject\":\"hi\"}}";
static const char *REMOVE = "{\"operation\":\"remove\",\"doctype\":\"email\",\"docid\":\"u1:m1\"}";

static double ops(const char *operation, const char *outcome)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "operation=\"%s\",outcome=\"%s\"", operation, outcome);
    return dr_metrics_value("dr_vespa_operations_total", labels);
}

static void put_ok(void **state)
{
    struct fx *f = *state;
    struct dr_result res;

    start(f, NULL, 1);
    run(f, PUT, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(res.nemits, 0);
    assert_string_equal(f->script.method, "POST");
    assert_string_equal(f->script.path,
                        "/document/v1/datarouter/email/docid/u1%3Am%2F1?timeout=9000ms");
    assert_string_equal(f->script.body, "{\"fields\":{\"subject\":\"hi\"}}");
    assert_string_equal(f->script.ctype, "application/json");
    assert_string_equal(f->script.trace, TRACE);
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 1);
    assert_int_equal(ops("put", "ok"), 1);
    dr_result_cleanup(&res);
}

static void rejected(void **state)
{
    struct fx *f = *state;
    struct dr_result res;

    f->script.statuses[0] = 400;
    f->script.n = 1;
    start(f, NULL, 1);
    run(f, PUT, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "vespa_rejected");
    assert_non_null(strstr(res.error, "Document type nope does not exist"));
    assert_non_null(strstr(res.error, "400"));
    assert_string_equal(res.downstream, "");
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 1); /* never retried */
    assert_int_equal(ops("put", "rejected"), 1);
    dr_result_cleanup(&res);
}

static void retried_429_then_ok(void **state)
{
    struct fx *f = *state;
    struct dr_result res;

    f->script.statuses[0] = 429;
    f->script.statuses[1] = 429;
    f->script.n = 2;
    f->script.retry_after = "0";
    start(f, "retries: 3\n", 1);
    run(f, PUT, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 3);
    assert_int_equal(dr_metrics_value("dr_vespa_retries_total", ""), 2);
    assert_int_equal(dr_metrics_value("dr_vespa_requests_total", "status=\"429\""), 2);
    assert_int_equal(dr_metrics_value("dr_vespa_requests_total", "status=\"2xx\""), 1);
    dr_result_cleanup(&res);
}

static void unavailable_feeds_breaker(void **state)
{
    struct fx *f = *state;
    struct dr_result res;

    for (int i = 0; i < 8; i++) {
        f->script.statuses[i] = 503;
    }
    f->script.n = 8;
    start(f, "retries: 2\n", 1);
    run(f, PUT, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_RETRY);
    assert_string_equal(res.downstream, "vespa");
    assert_string_equal(res.reason, "downstream_unavailable");
    assert_non_null(strstr(res.error, "HTTP 503"));
    assert_non_null(strstr(res.error, "3 tries"));
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 3); /* 1 + 2 retries */
    assert_int_equal(ops("put", "failed"), 1);
    dr_result_cleanup(&res);
}

/* A Retry-After longer than backoff_max is left to the breaker, and passed on as a hint. */
static void long_retry_after(void **state)
{
    struct fx *f = *state;
    struct dr_result res;

    f->script.statuses[0] = 503;
    f->script.n = 1;
    f->script.retry_after = "30";
    start(f, "retries: 5\n", 1);
    run(f, PUT, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_RETRY);
    assert_string_equal(res.downstream, "vespa");
    assert_int_equal(res.retry_after_ms, 30000);
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 1);
    dr_result_cleanup(&res);
}

static void remove_404_is_ok(void **state)
{
    struct fx *f = *state;
    struct dr_result res;

    f->script.statuses[0] = 404;
    f->script.statuses[1] = 404;
    f->script.n = 2;
    start(f, "retries: 0\n", 1);
    run(f, REMOVE, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_string_equal(f->script.method, "DELETE");
    assert_string_equal(f->script.ctype, ""); /* no body, no Content-Type */
    assert_string_equal(f->script.body, "");
    dr_result_cleanup(&res);

    /* but a 404 on put means the endpoint is wrong, not the document */
    run(f, PUT, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_RETRY);
    assert_string_equal(res.downstream, "vespa");
    dr_result_cleanup(&res);
}

static void update_request(void **state)
{
    struct fx *f = *state;
    struct dr_result res;

    start(f, "namespace: mail\n", 1);
    run(f,
        "{\"operation\":\"update\",\"doctype\":\"contact\",\"docid\":\"u1:c1\","
        "\"fields\":{\"name\":\"Ann\"}}",
        &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_string_equal(f->script.method, "PUT");
    assert_string_equal(f->script.path,
                        "/document/v1/mail/contact/docid/u1%3Ac1?create=true&timeout=9000ms");
    assert_string_equal(f->script.body, "{\"fields\":{\"name\":{\"assign\":\"Ann\"}}}");
    dr_result_cleanup(&res);
}

static void timeout_feeds_breaker(void **state)
{
    struct fx *f = *state;
    struct dr_result res;

    f->script.hang = 1;
    start(f, "retries: 1\ntimeout: 100ms\n", 1);
    run(f, PUT, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_RETRY);
    assert_string_equal(res.downstream, "vespa");
    assert_non_null(strstr(res.error, "timed out"));
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 2);
    dr_result_cleanup(&res);
}

static void invalid_operation(void **state)
{
    struct fx *f = *state;
    struct dr_result res;

    start(f, NULL, 1);
    run(f, "{\"operation\":\"put\",\"doctype\":\"email\"}", &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "invalid_operation");
    dr_result_cleanup(&res);
    run(f, "not json", &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "invalid_operation");
    dr_result_cleanup(&res);
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 0);
    assert_int_equal(ops("unknown", "invalid"), 2);
}

static void too_large(void **state)
{
    struct fx *f = *state;
    struct dr_result res;
    char *big = malloc(4096);
    char *json = malloc(8192);

    memset(big, 'x', 4095);
    big[4095] = '\0';
    snprintf(json, 8192,
             "{\"operation\":\"put\",\"doctype\":\"email\",\"docid\":\"u:1\","
             "\"fields\":{\"body\":\"%s\"}}",
             big);
    start(f, "max_body: 2048\n", 1);
    run(f, json, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "operation_too_large");
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 0);
    dr_result_cleanup(&res);
    free(big);
    free(json);
}

/* No endpoint: local mode acknowledges operations as skipped and sends nothing. */
static void disabled_skips(void **state)
{
    struct fx *f = *state;
    struct dr_result res;

    start(f, NULL, 0);
    run(f, PUT, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    run(f, REMOVE, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    assert_int_equal(ops("put", "skipped"), 1);
    assert_int_equal(ops("remove", "skipped"), 1);
    assert_int_equal(ts_count(&f->srv, &f->srv.nreq), 0);
}

static void init_rejects_bad_config(void **state)
{
    const char *yaml = "enabled: true\n";
    cJSON *section = NULL;
    char err[512] = "";
    struct dr_proc_env env = {.data_dir = "/tmp"};
    void *st = (void *)1;

    assert_int_equal(dr_yaml_to_json(yaml, strlen(yaml), &section, err, sizeof(err)), 0);
    env.config = section;
    assert_int_not_equal(dr_processor_vespa.init(&env, &st, err, sizeof(err)), 0);
    assert_null(st);
    assert_non_null(strstr(err, "processors.vespa.endpoint"));
    cJSON_Delete(section);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(put_ok),
        T(rejected),
        T(retried_429_then_ok),
        T(unavailable_feeds_breaker),
        T(long_retry_after),
        T(remove_404_is_ok),
        T(update_request),
        T(timeout_feeds_breaker),
        T(invalid_operation),
        T(too_large),
        T(disabled_skips),
        cmocka_unit_test(init_rejects_bad_config),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
