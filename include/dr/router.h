/*
 * The routing core: match rules, per-processor priority queues, per-key ordering lanes, a worker
 * pool, retries with backoff, circuit breakers, dead letters.
 *
 * Threads: dr_router_submit and every source callback run on the loop thread; processors run on
 * the router's worker threads.
 *
 * A source submits a message and later hears, on the loop thread, exactly one of:
 *   complete(OK, emits)      processed: make the emits durable, then ack
 *   complete(dead letter)    rejected or out of attempts: store the dead letter, then ack
 *   abandon                  shutting down before it finished: leave it for redelivery
 * and, in between, possibly retrying() calls for bookkeeping (attempt counts, leases).
 */
#ifndef DR_ROUTER_H
#define DR_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dr/config.h"
#include "dr/msg.h"
#include "dr/processor.h"
#include "dr/store.h"

struct dr_router;

struct dr_completion {
    int dead;                 /* 0 = processed */
    struct dr_emit *emits;    /* processed: follow-ups from every processor, in order */
    size_t nemits;
    struct dr_dead_letter dl; /* dead: filled in, strings owned by the completion */
};

struct dr_source_ops {
    const char *name;
    /* Takes ownership of nothing; the completion and msg are valid during the call only. The
     * source must eventually call dr_router_release(router, msg) once its ack is durable, so
     * in-flight accounting stays right. */
    void (*complete)(void *source, struct dr_msg *msg, const struct dr_completion *c);
    /* The message will run again after delay_ms. Return 1 when the source takes the retry over
     * (e.g. nacks with a delay): the router then forgets the message (release is implied). */
    int (*retrying)(void *source, struct dr_msg *msg, int64_t delay_ms, const char *error);
    /* Shutdown: the message did not finish; the router forgets it (release is implied). */
    void (*abandon)(void *source, struct dr_msg *msg);
    /* 1: complete(OK) leaves the message in its ordering lanes (later messages of its keys keep
     * waiting) until the source calls dr_router_release_lanes() or dr_router_release(), or runs
     * it again with dr_router_retry_after(). For a source whose completion can still fail and
     * send the message round again (its emits not published). 0: the lanes are free before
     * complete(OK) is called. Dead letters always free them first. */
    int keeps_lanes;
};

int dr_router_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_store *store,
                     struct dr_router **out, char *err, size_t errsz);
/* Stops the workers (after their current task) and frees the router. Every message still held is
 * abandoned first. NULL-safe. */
void dr_router_destroy(struct dr_router *r);

/* Takes the caller's reference to msg. msg->topic must be set; dr_msg_finish() is applied
 * with the topic's default type and the route's priority. */
void dr_router_submit(struct dr_router *r, struct dr_msg *msg, const struct dr_source_ops *ops,
                      void *source);
/* dr_router_submit(), the message to run no sooner than delay_ms from now (a retry whose time
 * has not come, loaded after a restart). Meanwhile it holds its place in its ordering lanes, as
 * a retry waiting here does: a later message with its key waits behind it. */
void dr_router_submit_after(struct dr_router *r, struct dr_msg *msg,
                            const struct dr_source_ops *ops, void *source, int64_t delay_ms);
/* Drops the router's accounting for a completed message (see complete above), and frees its
 * ordering lanes if it still held them. */
void dr_router_release(struct dr_router *r, struct dr_msg *msg);
/* After complete(OK) with keeps_lanes: the next message of msg's ordering keys may run. The
 * router still accounts for msg until dr_router_release(). No-op when msg holds no lane. Loop
 * thread. */
void dr_router_release_lanes(struct dr_router *r, struct dr_msg *msg);
/* After complete(OK) with keeps_lanes, its lanes still held: msg runs again, through all of its
 * processors, no sooner than delay_ms from now (its completion failed: the emits were not
 * published). It keeps its place in its ordering lanes meanwhile, so it runs before any later
 * message of its keys; msg->attempt is the caller's to advance. The source hears complete or
 * abandon again, as after dr_router_submit(). Loop thread. */
void dr_router_retry_after(struct dr_router *r, struct dr_msg *msg, int64_t delay_ms);
/* 1 when msg, submitted and not yet released, has an ordering key (its own, or its route's from
 * the payload): later messages of its key wait for it. A retry of it keeps that place only while
 * the router holds it, so a source must not take such a retry over. Loop thread. */
int dr_router_ordered(const struct dr_msg *msg);

/* Messages and payload bytes submitted and not yet released. */
size_t dr_router_in_flight(const struct dr_router *r);
/* The number of worker threads (slots a running file needs). */
size_t dr_router_workers(const struct dr_router *r);
struct dr_running;
/* While a worker runs a message submitted with ops, its slot of file (dr/running.h) holds the
 * message's source_id. NULL file: none. The caller keeps file open until the router is
 * destroyed or this is called again. */
void dr_router_set_running(struct dr_router *r, struct dr_running *file,
                           const struct dr_source_ops *ops);
size_t dr_router_in_flight_bytes(const struct dr_router *r);
/* 1 while the in-flight bounds of the config leave room for more. A 0 arms the callback of
 * dr_router_on_room() for when room frees up. */
int dr_router_has_room(struct dr_router *r);
/* Called (on the loop thread) whenever room frees up after having been full. */
void dr_router_on_room(struct dr_router *r, void (*fn)(void *ctx), void *ctx);
/* Stop taking new work: running tasks finish, queued ones stay queued until destroy hands
 * them back to their sources. */
void dr_router_drain(struct dr_router *r);
/* 1 while a task runs or a finished one has not been handled on the loop yet. */
int dr_router_busy(struct dr_router *r);

/* Admin views, JSON text the caller frees. */
char *dr_router_routes_json(const struct dr_router *r);
char *dr_router_breakers_json(struct dr_router *r);

/* ---- pieces exposed for unit tests ---- */
/* Which routes match; returns the number written to idx (max n). A message that matches no
 * non-default route gets the default routes. */
size_t dr_route_match(const struct dr_config *cfg, const struct dr_msg *msg, size_t *idx,
                      size_t n);
int dr_route_matches(const struct dr_route *rt, const struct dr_msg *msg);
/* Delay before attempt number `attempt` + 1, given `attempt` failures so far (>= 1). rand01 in
 * [0,1) supplies the jitter. */
int64_t dr_backoff_delay(const struct dr_retry_policy *p, int attempt, double rand01);

/* Circuit breaker: closed → open after threshold consecutive failures → half-open after open_ms
 * (one probe at a time) → closed on success, open again on failure. Not thread-safe. */
enum dr_breaker_state { DR_BREAKER_CLOSED, DR_BREAKER_OPEN, DR_BREAKER_HALF_OPEN };
struct dr_breaker {
    char name[64];
    enum dr_breaker_state state;
    int failures;
    int threshold;
    int64_t open_ms;
    int64_t opened_at;
    int probing;
    uint64_t opens; /* times it opened */
};
void dr_breaker_init(struct dr_breaker *b, const char *name, int threshold, int64_t open_ms);
/* May a call go through at now? In half-open only one probe at a time is allowed. */
int dr_breaker_allow(struct dr_breaker *b, int64_t now);
void dr_breaker_success(struct dr_breaker *b);
void dr_breaker_failure(struct dr_breaker *b, int64_t now);
const char *dr_breaker_state_name(enum dr_breaker_state s);
/* Milliseconds until a closed call would be allowed (0 when allowed now). */
int64_t dr_breaker_wait_ms(const struct dr_breaker *b, int64_t now);

#endif
