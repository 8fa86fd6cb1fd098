/*
 * The local source (the default mode): Pub/Sub's publish API served by data-router itself, with
 * messages kept in the store's queue table until they are done. One writer thread group-commits
 * publishes, completions (ack + emits + dedup marks + dead letters) and retry bookkeeping; a
 * restart resumes from the table.
 *
 * Everything here runs on the loop thread except the writer.
 */
#ifndef DR_LOCAL_H
#define DR_LOCAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dr/config.h"
#include "dr/http.h"
#include "dr/router.h"
#include "dr/store.h"

struct dr_local;

int dr_local_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_store *store,
                    struct dr_router *router, struct dr_local **out);
/* Serves POST /v1/projects/{project}/topics/{topic}:publish. */
void dr_local_register(struct dr_local *l, struct dr_http_server *srv);
/* Starts feeding the router from the queue (backlog first). */
void dr_local_start(struct dr_local *l);
/* Rows were added to the queue table behind the source's back (DLQ replay from a worker):
 * read the table again. Loop thread. */
void dr_local_poke(struct dr_local *l);
/* Stops intake and feeding; waits for the writer to flush what it was given. */
void dr_local_stop(struct dr_local *l);
/* 1 while a read of the table is under way (the loop must run until it lands). */
int dr_local_busy(const struct dr_local *l);
void dr_local_destroy(struct dr_local *l); /* NULL-safe; after the router is destroyed */

/* Enqueues messages durably (for DLQ replay); cb runs on the loop thread after the commit. */
typedef void (*dr_local_enqueued_cb)(void *ctx, int err);
int dr_local_enqueue(struct dr_local *l, struct dr_qmsg *msgs, size_t n, dr_local_enqueued_cb cb,
                     void *ctx);

/* 1 if topic is one this instance accepts (configured topics and route topics). */
int dr_topic_known(const struct dr_config *cfg, const char *topic);
/* Pub/Sub's topic-id rules: 3-255 chars, starts with a letter, [A-Za-z0-9-_.~+%], not "goog". */
int dr_topic_name_valid(const char *topic);
/* A new message id: decimal, unique and increasing within this process. */
void dr_local_new_message_id(char out[32]);

/*
 * Validates a Pub/Sub publish body and turns it into queue rows for topic (Pub/Sub's limits:
 * 1-1000 messages, data or attributes required, <= 100 attributes, key <= 256 bytes, value <=
 * 1024 bytes, no "goog" keys, ordering key <= 1024 bytes). A key or string value holding U+0000
 * is refused with DR_PUBLISH_ERR_NUL, a body that is not UTF-8 with DR_PUBLISH_ERR_UTF8, and an
 * attributes object naming a key twice with an error containing DR_PUBLISH_ERR_DUP_KEY. On
 * failure returns DR_EINVAL or DR_ETOOBIG with a message in err; nothing is allocated.
 */
#define DR_PUBLISH_ERR_NUL     "Invalid JSON payload received: strings must not contain U+0000."
#define DR_PUBLISH_ERR_UTF8    "Invalid JSON payload received: the body is not valid UTF-8."
#define DR_PUBLISH_ERR_DUP_KEY "names an attribute key twice"
int dr_publish_parse(const char *body, size_t len, const char *topic, struct dr_qmsg **out,
                     size_t *n, char *err, size_t errsz);

#endif
