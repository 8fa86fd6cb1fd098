/* The token bucket (src/router/ratelimit.c), driven by the times the test gives it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dr/ratelimit.h"

static void burst_then_refill(void **state)
{
    struct dr_ratelimit *rl = dr_ratelimit_create(2, 3); /* 2/s, 3 at once */
    int64_t retry = 0;

    /* full at the start: the burst goes through at one instant, then nothing */
    for (int i = 0; i < 3; i++) {
        assert_true(dr_ratelimit_take(rl, 1000, &retry));
    }
    assert_false(dr_ratelimit_take(rl, 1000, &retry));
    assert_int_equal(retry, 500); /* one token every 500 ms */
    assert_false(dr_ratelimit_take(rl, 1499, &retry));
    assert_int_equal(retry, 1);
    assert_true(dr_ratelimit_take(rl, 1500, &retry));
    assert_false(dr_ratelimit_take(rl, 1500, NULL));
    /* a long pause refills up to the burst, not beyond */
    for (int i = 0; i < 3; i++) {
        assert_true(dr_ratelimit_take(rl, 60000, &retry));
    }
    assert_false(dr_ratelimit_take(rl, 60000, &retry));
    /* a clock that goes back neither refills nor breaks the bucket */
    assert_false(dr_ratelimit_take(rl, 10, &retry));
    assert_int_equal(retry, 500);
    assert_true(dr_ratelimit_take(rl, 60500, &retry));
    dr_ratelimit_destroy(rl);
    dr_ratelimit_destroy(NULL);
}

static void slow_rates(void **state)
{
    struct dr_ratelimit *rl = dr_ratelimit_create(0.1, 1); /* one request every 10 s */
    int64_t retry = 0;

    assert_true(dr_ratelimit_take(rl, 5, &retry));
    assert_false(dr_ratelimit_take(rl, 5, &retry));
    assert_int_equal(retry, 10000);
    assert_false(dr_ratelimit_take(rl, 2505, &retry));
    assert_int_equal(retry, 7500);
    assert_true(dr_ratelimit_take(rl, 10005, &retry));
    dr_ratelimit_destroy(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_then_refill),
        cmocka_unit_test(slow_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
