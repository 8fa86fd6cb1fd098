#include "dr/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "dr/util.h"

struct dr_ratelimit {
    pthread_mutex_t mu;
    double rate; /* tokens per millisecond */
    double burst;
    double tokens;
    int64_t last_ms; /* when tokens was computed; -1 until the first take */
};

struct dr_ratelimit *dr_ratelimit_create(double rate, double burst)
{
    struct dr_ratelimit *rl = dr_xcalloc(1, sizeof(*rl));

    pthread_mutex_init(&rl->mu, NULL);
    rl->rate = rate / 1000.0;
    rl->burst = burst;
    rl->tokens = burst;
    rl->last_ms = -1;
    return rl;
}

void dr_ratelimit_destroy(struct dr_ratelimit *rl)
{
    if (!rl) {
        return;
    }
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

int dr_ratelimit_take(struct dr_ratelimit *rl, int64_t now_ms, int64_t *retry_ms)
{
    int ok;

    pthread_mutex_lock(&rl->mu);
    if (rl->last_ms >= 0 && now_ms > rl->last_ms) {
        rl->tokens += (double)(now_ms - rl->last_ms) * rl->rate;
        if (rl->tokens > rl->burst) {
            rl->tokens = rl->burst;
        }
    }
    if (now_ms > rl->last_ms) {
        rl->last_ms = now_ms;
    }
    ok = rl->tokens >= 1.0;
    if (ok) {
        rl->tokens -= 1.0;
    } else if (retry_ms) {
        /* less a hair: 0.998 tokens at 0.002 a ms is 1 ms away, not 1.0000000000000009 */
        double wait = ceil((1.0 - rl->tokens) / rl->rate - 1e-6);
        *retry_ms = wait < 1 ? 1 : wait > 9.2e15 ? INT64_MAX : (int64_t)wait;
    }
    pthread_mutex_unlock(&rl->mu);
    return ok;
}
