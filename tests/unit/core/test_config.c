/* Configuration of API keys (src/core/config.c): the optional per-key rate and burst, what is
 * refused, and the token bucket a rate gives the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dr/config.h"
#include "dr/err.h"
#include "dr/ratelimit.h"

#include "config_expect.h"

#define H1 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define H2 "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
#define H3 "fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13"
#define H4 "a4e624d686e03ed2767c0abd85c14426b0b1157d2ce81d27bb4fe4f6f01d688a"

static struct dr_config *load(const char *yaml)
{
    struct dr_config *c = NULL;
    char err[512];

    if (dr_config_load_string(yaml, strlen(yaml), "t.yaml", &c, err, sizeof(err)) != DR_OK) {
        fail_msg("config: %s", err);
    }
    return c;
}

static void key_rates(void **state)
{
    struct dr_config *c =
        load("api_keys:\n"
             "  - {name: free, role: service, sha256: " H1 "}\n"
             "  - {name: capped, role: service, sha256: " H3 ", rate: 5, burst: 20}\n"
             "  - {name: default-burst, role: admin, sha256: " H2 ", rate: 2.5}\n"
             "  - {name: slow, role: admin, sha256: " H4 ", rate: 0.2}\n");

    assert_int_equal(c->napi_keys, 4);
    assert_null(c->api_keys[0].limiter);
    assert_true(c->api_keys[0].rate == 0);
    assert_non_null(c->api_keys[1].limiter);
    assert_true(c->api_keys[1].rate == 5 && c->api_keys[1].burst == 20);
    /* without a burst: a second's worth, at least one */
    assert_true(c->api_keys[2].burst == 3);
    assert_true(c->api_keys[3].burst == 1);
    /* the bucket is the key's: 20 at once, then refused */
    for (int i = 0; i < 20; i++) {
        assert_true(dr_ratelimit_take(c->api_keys[1].limiter, 1000, NULL));
    }
    assert_false(dr_ratelimit_take(c->api_keys[1].limiter, 1000, NULL));
    dr_config_destroy(c);
}

static void key_rate_errors(void **state)
{
    expect_error("api_keys: [{name: a, role: service, sha256: " H1 ", rate: 0}]\n",
                 "api_keys[0].rate");
    expect_error("api_keys: [{name: a, role: service, sha256: " H1 ", rate: -1}]\n",
                 "api_keys[0].rate");
    expect_error("api_keys: [{name: a, role: service, sha256: " H1 ", rate: fast}]\n",
                 "api_keys[0].rate");
    expect_error("api_keys: [{name: a, role: service, sha256: " H1 ", rate: 1, burst: 0.5}]\n",
                 "api_keys[0].burst");
    expect_error("api_keys:\n  - {name: a, role: service, sha256: " H1 "}\n"
                 "  - {name: b, role: service, sha256: " H2 ", burst: 10}\n",
                 "api_keys[1].burst: a burst needs a rate");
    /* a misspelt setting would leave a key unlimited: refused */
    expect_error("api_keys: [{name: a, role: service, sha256: " H1 ", rte: 5}]\n",
                 "api_keys[0].rte: unknown key");
    expect_error("api_keys: [oops]\n", "api_keys[0]: expected a mapping");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_rates),
        cmocka_unit_test(key_rate_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
