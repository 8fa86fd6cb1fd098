/*
 * The Pub/Sub push endpoint: POST /pubsub/push with Pub/Sub's push body
 * {"message":{"data","attributes","messageId","publishTime","orderingKey"},"subscription",
 *  "deliveryAttempt"}. The message is written to the local queue first; the answer is 2xx only
 * once it is durable (so Pub/Sub redelivers anything not stored), and a redelivery of a queued
 * or processed message id is acknowledged without running again.
 *
 * With pubsub.push.audience configured, every request must carry Google's OIDC token
 * (Authorization: Bearer): RS256 against Google's JWKS (pubsub.push.jwks: a file or an https
 * URL), iss accounts.google.com, aud = the audience, email = pubsub.push.service_account with
 * email_verified true.
 */
#ifndef DR_PUSH_H
#define DR_PUSH_H

#include <uv.h>

#include "dr/config.h"
#include "dr/http.h"
#include "dr/local.h"
#include "dr/store.h"

struct dr_push;

/* Pushed messages go to local's queue; one that breaks Pub/Sub's limits is dead-lettered in
 * store (reason invalid_message) and acknowledged: refused, Pub/Sub would redeliver it until its
 * retention ran out. */
int dr_push_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_store *store,
                   struct dr_local *local, struct dr_push **out);
void dr_push_register(struct dr_push *p, struct dr_http_server *srv);
void dr_push_destroy(struct dr_push *p); /* NULL-safe */

/*
 * Checks the message object m of a push body (the whole body is body, len bytes) against what
 * Pub/Sub itself lets through: a UTF-8 body without U+0000 in any string, data a base64 string,
 * attributes an object of at most 100 strings naming each key once (key 1-256 bytes, value <=
 * 1024 bytes), an orderingKey string <= 1024 bytes. 1 if acceptable; otherwise 0 with the reason
 * in why. Also holds the edits of a dead-letter replay (data, attributes) to the same limits.
 */
int dr_push_message_ok(const char *body, size_t len, const cJSON *m, char *why, size_t whysz);

/* Checks a verified token's Google-specific claims (exposed for unit tests). 1 if acceptable. */
int dr_push_claims_ok(const cJSON *claims, const char *service_account);

#endif
