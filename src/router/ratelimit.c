#include "dr/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "dr/util.h"

struct dr_ratelimit {
    pthread_mutex_t mu;
    double rate; /* tokens per second */
    double burst;
    struct dr_bucket b;
};

void dr_bucket_init(struct dr_bucket *b, double burst)
{
    b->tokens = burst;
    b->last_ms = -1;
}

int dr_bucket_take(struct dr_bucket *b, double rate, double burst, int64_t now_ms,
                   int64_t *retry_ms)
{
    double per_ms = rate / 1000.0;

    if (b->last_ms >= 0 && now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * per_ms;
        if (b->tokens > burst) {
            b->tokens = burst;
        }
    }
    if (now_ms > b->last_ms) {
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 1;
    }
    if (retry_ms) {
        /* less a hair: 0.998 tokens at 0.002 a ms is 1 ms away, not 1.0000000000000009 */
        double wait = ceil((1.0 - b->tokens) / per_ms - 1e-6);
        *retry_ms = wait < 1 ? 1 : wait > 9.2e15 ? INT64_MAX : (int64_t)wait;
    }
    return 0;
}

struct dr_ratelimit *dr_ratelimit_create(double rate, double burst)
{
    struct dr_ratelimit *rl = dr_xcalloc(1, sizeof(*rl));

    pthread_mutex_init(&rl->mu, NULL);
    rl->rate = rate;
    rl->burst = burst;
    dr_bucket_init(&rl->b, burst);
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
    ok = dr_bucket_take(&rl->b, rl->rate, rl->burst, now_ms, retry_ms);
    pthread_mutex_unlock(&rl->mu);
    return ok;
}
