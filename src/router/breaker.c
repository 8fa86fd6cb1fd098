#include <stdio.h>

#include "dr/router.h"

void dr_breaker_init(struct dr_breaker *b, const char *name, int threshold, int64_t open_ms)
{
    snprintf(b->name, sizeof(b->name), "%s", name);
    b->state = DR_BREAKER_CLOSED;
    b->failures = 0;
    b->threshold = threshold > 0 ? threshold : 1;
    b->open_ms = open_ms;
    b->opened_at = 0;
    b->probing = 0;
    b->opens = 0;
}

int dr_breaker_allow(struct dr_breaker *b, int64_t now)
{
    switch (b->state) {
    case DR_BREAKER_CLOSED:
        return 1;
    case DR_BREAKER_OPEN:
        if (now - b->opened_at < b->open_ms) {
            return 0;
        }
        b->state = DR_BREAKER_HALF_OPEN;
        b->probing = 0;
        /* fall through */
    case DR_BREAKER_HALF_OPEN:
        if (b->probing) {
            return 0;
        }
        b->probing = 1;
        return 1;
    }
    return 0;
}

void dr_breaker_success(struct dr_breaker *b)
{
    b->state = DR_BREAKER_CLOSED;
    b->failures = 0;
    b->probing = 0;
}

void dr_breaker_failure(struct dr_breaker *b, int64_t now)
{
    b->probing = 0;
    if (b->state == DR_BREAKER_HALF_OPEN) {
        b->state = DR_BREAKER_OPEN;
        b->opened_at = now;
        b->opens++;
        return;
    }
    if (b->state == DR_BREAKER_OPEN) {
        return;
    }
    if (++b->failures >= b->threshold) {
        b->state = DR_BREAKER_OPEN;
        b->opened_at = now;
        b->opens++;
    }
}

const char *dr_breaker_state_name(enum dr_breaker_state s)
{
    switch (s) {
    case DR_BREAKER_CLOSED:
        return "closed";
    case DR_BREAKER_OPEN:
        return "open";
    case DR_BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}

int64_t dr_breaker_wait_ms(const struct dr_breaker *b, int64_t now)
{
    if (b->state != DR_BREAKER_OPEN) {
        return 0;
    }
    int64_t left = b->open_ms - (now - b->opened_at);
    return left > 0 ? left : 0;
}
