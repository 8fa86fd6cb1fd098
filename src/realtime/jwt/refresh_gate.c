/*
 * Rate limit for JWKS refetches triggered by unknown_kid: a token naming a key we do not have
 * is either a rotation we have not seen yet or an attacker's; either way one refetch per
 * interval is enough, and the identity provider must not be hammered on our behalf.
 */
#include <stdint.h>

#include "dr/jwt.h"
#include "dr/util.h"

void dr_jwks_refresh_gate_init(struct dr_jwks_refresh_gate *g, int64_t interval_ms)
{
    atomic_init(&g->last_ms, INT64_MIN);
    g->interval_ms = interval_ms > 0 ? interval_ms : DR_JWKS_REFRESH_INTERVAL_MS;
}

void dr_jwks_refresh_gate_cleanup(struct dr_jwks_refresh_gate *g)
{
    (void)g; /* nothing allocated; kept for the init/cleanup pairing */
}

int dr_jwks_refresh_gate_allow(struct dr_jwks_refresh_gate *g, int64_t now_ms)
{
    int64_t last;

    if (!now_ms) {
        now_ms = dr_mono_ms();
    }
    last = atomic_load_explicit(&g->last_ms, memory_order_acquire);
    do {
        if (last != INT64_MIN && now_ms - last < g->interval_ms) {
            return 0;
        }
    } while (!atomic_compare_exchange_weak_explicit(&g->last_ms, &last, now_ms,
                                                    memory_order_acq_rel, memory_order_acquire));
    return 1;
}
