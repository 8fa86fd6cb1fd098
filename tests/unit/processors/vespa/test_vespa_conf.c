/* src/processors/vespa/vespa_conf.c: processors.vespa from YAML and the environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/config.h"
#include "dr/err.h"
#include "dr/vespa.h"

static cJSON *yaml(const char *s)
{
    cJSON *j = NULL;
    char err[256];

    assert_int_equal(dr_yaml_to_json(s, strlen(s), &j, err, sizeof(err)), 0);
    return j;
}

static int setup(void **state)
{
    unsetenv("DR_VESPA_URL");
    return 0;
}

static void defaults(void **state)
{
    struct dr_vespa_conf c;
    char err[256] = "";

    assert_int_equal(dr_vespa_conf_load(NULL, &c, err, sizeof(err)), DR_OK);
    assert_null(c.endpoint);
    assert_int_equal(c.enabled, 0); /* no endpoint: operations are skipped */
    assert_string_equal(c.ns, "datarouter");
    assert_int_equal(c.max_in_flight, 64);
    assert_int_equal(c.timeout_ms, 10000);
    assert_int_equal(c.retries, 3);
    assert_int_equal(c.backoff_ms, 100);
    assert_int_equal(c.backoff_max_ms, 2000);
    assert_int_equal(c.http2, 0);
    assert_int_equal(c.max_body, 8388608);
    dr_vespa_conf_cleanup(&c);

    /* "vespa: {}" and "vespa:" (null) mean the same */
    {
        cJSON *j = yaml("endpoint:\n");
        assert_int_equal(dr_vespa_conf_load(j, &c, err, sizeof(err)), DR_OK);
        assert_null(c.endpoint);
        assert_int_equal(c.enabled, 0);
        dr_vespa_conf_cleanup(&c);
        cJSON_Delete(j);
    }
}

static void values(void **state)
{
    cJSON *j = yaml("endpoint: http://127.0.0.1:8080//\n"
                    "namespace: mail\n"
                    "max_in_flight: 128\n"
                    "timeout: 2s\n"
                    "retries: 0\n"
                    "backoff: 25ms\n"
                    "backoff_max: 1m\n"
                    "http2: h2c\n"
                    "max_body: 2048\n");
    struct dr_vespa_conf c;
    char err[256] = "";

    assert_int_equal(dr_vespa_conf_load(j, &c, err, sizeof(err)), DR_OK);
    assert_string_equal(c.endpoint, "http://127.0.0.1:8080");
    assert_int_equal(c.enabled, 1);
    assert_string_equal(c.ns, "mail");
    assert_int_equal(c.max_in_flight, 128);
    assert_int_equal(c.timeout_ms, 2000);
    assert_int_equal(c.retries, 0);
    assert_int_equal(c.backoff_ms, 25);
    assert_int_equal(c.backoff_max_ms, 60000);
    assert_int_equal(c.http2, 2);
    assert_int_equal(c.max_body, 2048);
    dr_vespa_conf_cleanup(&c);
    cJSON_Delete(j);

    /* https defaults to HTTP/2 by ALPN; enabled: false wins over an endpoint */
    j = yaml("endpoint: https://vespa.example/\nenabled: false\n");
    assert_int_equal(dr_vespa_conf_load(j, &c, err, sizeof(err)), DR_OK);
    assert_string_equal(c.endpoint, "https://vespa.example");
    assert_int_equal(c.http2, 1);
    assert_int_equal(c.enabled, 0);
    dr_vespa_conf_cleanup(&c);
    cJSON_Delete(j);
}

static void environment(void **state)
{
    cJSON *j = yaml("endpoint: http://from-file:8080\n");
    struct dr_vespa_conf c;
    char err[256] = "";

    setenv("DR_VESPA_URL", "http://from-env:9090/", 1);
    assert_int_equal(dr_vespa_conf_load(j, &c, err, sizeof(err)), DR_OK);
    assert_string_equal(c.endpoint, "http://from-env:9090");
    assert_int_equal(c.enabled, 1);
    dr_vespa_conf_cleanup(&c);

    assert_int_equal(dr_vespa_conf_load(NULL, &c, err, sizeof(err)), DR_OK);
    assert_string_equal(c.endpoint, "http://from-env:9090");
    dr_vespa_conf_cleanup(&c);

    setenv("DR_VESPA_URL", "", 1); /* empty = not set */
    assert_int_equal(dr_vespa_conf_load(j, &c, err, sizeof(err)), DR_OK);
    assert_string_equal(c.endpoint, "http://from-file:8080");
    dr_vespa_conf_cleanup(&c);
    unsetenv("DR_VESPA_URL");
    cJSON_Delete(j);
}

static void errors(void **state)
{
    static const struct {
        const char *yaml;
        const char *want; /* in the error text */
    } cases[] = {
        {"endpint: http://x\n", "processors.vespa.endpint: unknown key"},
        {"endpoint: ftp://x\n", "processors.vespa.endpoint"},
        {"endpoint: not a url\n", "processors.vespa.endpoint"},
        {"endpoint: http://x/?a=b\n", "processors.vespa.endpoint"},
        {"endpoint: 42\n", "processors.vespa.endpoint: expected a string"},
        {"enabled: true\n", "processors.vespa.endpoint: required"},
        {"enabled: yes please\n", "processors.vespa.enabled"},
        {"namespace: a/b\n", "processors.vespa.namespace"},
        {"max_in_flight: 0\n", "processors.vespa.max_in_flight: must be between 1 and 4096"},
        {"max_in_flight: 2.5\n", "processors.vespa.max_in_flight: expected a whole number"},
        {"max_in_flight: 1e300\n", "processors.vespa.max_in_flight"},
        {"retries: 11\n", "processors.vespa.retries"},
        {"timeout: soon\n", "processors.vespa.timeout: expected a duration"},
        /* a number alone: ms or s? */
        {"backoff: 25\n", "processors.vespa.backoff: give a unit: ms, s, m, h or d"},
        {"timeout: '10'\n", "processors.vespa.timeout: expected a duration"},
        {"timeout: 10ms\n", "processors.vespa.timeout: must be between"},
        {"backoff: 1s\nbackoff_max: 10ms\n", "processors.vespa.backoff_max"},
        {"http2: maybe\n", "processors.vespa.http2"},
        {"- a\n- b\n", "processors.vespa: expected a mapping"},
    };
    struct dr_vespa_conf c;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *j = yaml(cases[i].yaml);
        char err[256] = "";
        int rc = dr_vespa_conf_load(j, &c, err, sizeof(err));
        if (rc != DR_EINVAL || !strstr(err, cases[i].want)) {
            fail_msg("case %zu (%s): rc=%d err=\"%s\"", i, cases[i].yaml, rc, err);
        }
        /* nothing left to free on failure */
        assert_null(c.endpoint);
        assert_null(c.ns);
        cJSON_Delete(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults, setup),
        cmocka_unit_test_setup(values, setup),
        cmocka_unit_test_setup(environment, setup),
        cmocka_unit_test_setup(errors, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
