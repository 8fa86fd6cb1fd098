/*
 * The admin API (role admin): routes, breakers, dead letters (list with filters, show, replay
 * one with an optional edited payload, replay by filter with dry run, discard). A replay by
 * filter with a rate is a background job (GET to follow it, DELETE to cancel it) paced by a
 * timer on the loop. Everything runs on the loop thread; store work goes to the thread pool.
 */
#ifndef DR_ADMIN_H
#define DR_ADMIN_H

#include "dr/config.h"
#include "dr/http.h"
#include "dr/local.h"
#include "dr/router.h"
#include "dr/store.h"

struct dr_admin;

/* local may be NULL (replays are then refused); it is poked after replays. */
struct dr_admin *dr_admin_create(uv_loop_t *loop, const struct dr_config *cfg,
                                 struct dr_store *store, struct dr_router *router,
                                 struct dr_local *local);
void dr_admin_register(struct dr_admin *a, struct dr_http_server *srv);
/* Shutdown, before the local source is destroyed: running replay jobs stop (cancelled; what
 * they replayed stays replayed), new ones are refused, local is not poked any more.
 * Idempotent; NULL-safe. */
void dr_admin_stop(struct dr_admin *a);
/* After dr_admin_stop() and once the loop has run until the thread pool's work landed and the
 * handles closed. NULL-safe. */
void dr_admin_destroy(struct dr_admin *a);

/* Serialises a dead letter as the API shows it (message_json inlined as "message"). */
cJSON *dr_dead_letter_to_json(const struct dr_dead_letter *d);

#endif
