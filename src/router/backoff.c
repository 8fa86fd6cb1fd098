#include "dr/router.h"

int64_t dr_backoff_delay(const struct dr_retry_policy *p, int attempt, double rand01)
{
    double d = (double)p->initial_ms;

    for (int i = 1; i < attempt && d < (double)p->max_ms; i++) {
        d *= p->multiplier;
    }
    if (d > (double)p->max_ms) {
        d = (double)p->max_ms;
    }
    /* Spread retries of many messages that failed together: ±jitter around the delay. */
    d *= 1.0 + p->jitter * (2.0 * rand01 - 1.0);
    if (d > (double)p->max_ms) {
        d = (double)p->max_ms;
    }
    return d < 0 ? 0 : (int64_t)d;
}
