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
    /* Spread retries of many messages that failed together: evenly over ±jitter around the
     * delay, the part above max left out. Cutting the draws above max down to it instead would
     * send half the retries at max at the same moment. */
    double lo = d * (1.0 - p->jitter), hi = d * (1.0 + p->jitter);
    if (hi > (double)p->max_ms) {
        hi = (double)p->max_ms;
    }
    d = lo + (hi - lo) * rand01;
    return d < 0 ? 0 : (int64_t)d;
}
