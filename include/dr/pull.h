/*
 * The Pub/Sub pull source (pubsub mode): several long-poll pulls in flight per subscription,
 * only while the router has room; batched acks; lease extension for work in progress; nack with
 * a delay for long retries once Pub/Sub counts deliveries; dedup against the store; dead letters
 * stored and published to "<topic><dlq_suffix>"; emits published to their topics before the
 * parent is acked. Survives the service going away: pulls back off and resume, and with
 * pubsub.auto_create missing topics and subscriptions are created again.
 *
 * Loop thread only.
 */
#ifndef DR_PULL_H
#define DR_PULL_H

#include <uv.h>

#include "dr/config.h"
#include "dr/router.h"
#include "dr/store.h"

struct dr_pull;

int dr_pull_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_store *store,
                   struct dr_router *router, struct dr_pull **out);
void dr_pull_start(struct dr_pull *p);
/* Stops pulling; in-flight work continues and is acked or nacked. */
void dr_pull_stop(struct dr_pull *p);
/* 1 while acks, publishes or store writes are outstanding. */
int dr_pull_busy(const struct dr_pull *p);
/* NULL-safe; after the router is destroyed. Calls to Pub/Sub under way end at once; jobs on the
 * thread pool land later (the loop must run): the source is freed when the last one is done. */
void dr_pull_destroy(struct dr_pull *p);
/* 0 while a subscription cannot pull: its last pull failed or was refused (Pub/Sub unreachable,
 * the subscription missing, credentials that cannot be had). Each such subscription pulls again
 * after a backoff (dr_pull_failures_total{subscription} counts the failures). */
int dr_pull_healthy(const struct dr_pull *p);

#endif
