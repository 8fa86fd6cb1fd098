/*
 * The Redis bus between instances (DESIGN §2, §7): every notification this instance stores is
 * PUBLISHed on a channel; what other instances publish is handed to the local hub, each
 * notification once, in seq order. Redis down: local delivery goes on, the bus reconnects with
 * exponential backoff, and on recovery the clients that may have missed something are told to
 * resync (the `resync` frame, docs/realtime-protocol.md "Between instances").
 *
 * Configuration (`redis:` section; the URL from REDIS_URL wins over redis.url):
 *   url              redis://[[user]:password@]host[:port][/db]
 *   channel          "dr:notifications" (the control and keep-alive channels derive from it)
 *   connect_timeout  2s    TCP connect plus AUTH/SUBSCRIBE handshake
 *   command_timeout  2s    a command (or a keep-alive round trip) without answer drops the link
 *   ping_interval    1s    keep-alive round trip through the subscriber connection
 *   backoff_max      5s    reconnect delay cap (100 ms doubling, jittered)
 *   reorder_window   100ms how long a notification waits for a lower seq still in flight
 *
 * Loop thread only.
 */
#ifndef DR_REDIS_BUS_H
#define DR_REDIS_BUS_H

#include <stddef.h>
#include <uv.h>

#include "dr/config.h"
#include "dr/db.h"
#include "dr/realtime.h"

struct dr_redis_bus;

/*
 * Validates the settings and reads the newest stored seq from db (blocks: call at start-up
 * only). Nothing is started: no handle is created on loop. On failure (bad URL or setting) *out
 * is NULL and err names the key and the reason (never the password).
 */
int dr__redis_bus_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_hub *hub,
                         struct dr_db *db, struct dr_redis_bus **out, char *err, size_t errsz);
/*
 * Attaches the bus to its hub (dr_hub_set_bus; the hub must be initialised) and starts
 * connecting in the background: a Redis that is not there yet is not an error. NULL-safe.
 */
void dr__redis_bus_start(struct dr_redis_bus *b);
/*
 * Detaches from the hub, drops the Redis connections and closes the bus's handles. Idempotent,
 * NULL-safe. The loop must run afterwards so the handles and a store query in flight finish.
 */
void dr__redis_bus_stop(struct dr_redis_bus *b);
/* Frees the bus; after dr__redis_bus_stop and a final uv_run of the loop (or when it was never
 * started). NULL-safe. */
void dr__redis_bus_destroy(struct dr_redis_bus *b);
/* 1 while both Redis connections are up and subscribed. Loop thread. */
int dr__redis_bus_up(const struct dr_redis_bus *b);
/* 1 while the link is up and a notification this instance published has not come back to it
 * (Redis has not run that PUBLISH yet: the other instances may not have it). Loop thread. */
int dr__redis_bus_busy(const struct dr_redis_bus *b);

#endif
