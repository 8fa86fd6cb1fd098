/*
 * The admin API (role admin): routes, breakers, dead letters (list with filters, show, replay
 * one with an optional edited payload, replay by filter with dry run and rate, discard).
 */
#ifndef DR_ADMIN_H
#define DR_ADMIN_H

#include "dr/config.h"
#include "dr/http.h"
#include "dr/local.h"
#include "dr/router.h"
#include "dr/store.h"

struct dr_admin;

struct dr_admin *dr_admin_create(const struct dr_config *cfg, struct dr_store *store,
                                 struct dr_router *router, struct dr_local *local);
void dr_admin_register(struct dr_admin *a, struct dr_http_server *srv);
void dr_admin_destroy(struct dr_admin *a);

/* Serialises a dead letter as the API shows it (message_json inlined as "message"). */
cJSON *dr_dead_letter_to_json(const struct dr_dead_letter *d);

#endif
