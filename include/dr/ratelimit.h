/*
 * A token bucket (DESIGN §6, rate limits): it fills at `rate` tokens a second up to `burst`
 * and starts full; each request takes one token. The caller says what time it is (monotonic
 * milliseconds), so a bucket's behaviour does not depend on when a test runs. Thread-safe: the
 * bucket has its own lock.
 */
#ifndef DR_RATELIMIT_H
#define DR_RATELIMIT_H

#include <stdint.h>

/* The bucket itself, for a caller that keeps it on one thread: no lock, no allocation. */
struct dr_bucket {
    double tokens;
    int64_t last_ms; /* when tokens was computed; -1 until the first take */
};

/* A full bucket: tokens = burst. */
void dr_bucket_init(struct dr_bucket *b, double burst);
/* As dr_ratelimit_take(), rate in tokens per second. */
int dr_bucket_take(struct dr_bucket *b, double rate, double burst, int64_t now_ms,
                   int64_t *retry_ms);

struct dr_ratelimit;

/* rate > 0 tokens per second, burst >= 1. The caller frees it with dr_ratelimit_destroy(). */
struct dr_ratelimit *dr_ratelimit_create(double rate, double burst);
void dr_ratelimit_destroy(struct dr_ratelimit *rl); /* NULL-safe */

/*
 * Takes a token at now_ms: 1 when there was one. 0 when the bucket is empty, with *retry_ms (may
 * be NULL) set to how long until a token is there (at least 1). Times before the last call
 * count as the last call's time.
 */
int dr_ratelimit_take(struct dr_ratelimit *rl, int64_t now_ms, int64_t *retry_ms);

#endif
