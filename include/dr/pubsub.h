/*
 * Google Cloud Pub/Sub REST v1 client on a libuv loop: publish, pull, acknowledge,
 * modifyAckDeadline, and topic / subscription administration.
 *
 * Endpoint: http://$PUBSUB_EMULATOR_HOST when that is set (plain HTTP/1.1, no credentials: the
 * emulator's REST layer speaks nothing else), else https://pubsub.googleapis.com over HTTP/2
 * with a bearer token from dr/gcp_auth.h. Every request carries Content-Type: application/json.
 *
 * Names: a topic or subscription argument is either a bare id ("orders", resolved in the
 * client's project) or a full name ("projects/p/topics/orders"). Ids are 3-255 characters of
 * [A-Za-z0-9-_.~+%], starting with a letter and not with "goog".
 *
 * Calls: every operation validates its input first and, on failure, returns DR_EINVAL or
 * DR_ETOOBIG without sending anything (dr_pubsub_errmsg() says why) and never runs its
 * callback. On DR_OK the callback runs exactly once, later, never from inside the call.
 *
 * Callback errors: DR_EIO for what is worth retrying (network failure, timeout, 408, 429, 5xx,
 * a malformed answer); DR_EINVAL (400, 412 and other 4xx), DR_ENOTFOUND (404), DR_EEXIST (409),
 * DR_EAUTH (401, 403, or no credentials), DR_ETOOBIG (answer above the cap, 413), DR_EUNAVAIL
 * (the client is being destroyed). errmsg is then a readable one-line reason built from Google's
 * {"error":{"code","message","status"}} ("HTTP 404 NOT_FOUND: Resource not found ..."), valid
 * only during the callback; it is NULL on success.
 *
 * Threads: everything, callbacks included, runs on the loop thread that created the client.
 */
#ifndef DR_PUBSUB_H
#define DR_PUBSUB_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dr/gcp_auth.h"
#include "dr/http_client.h"

/* Limits of the real service, enforced before sending (the emulator does not enforce them). */
#define DR_PUBSUB_MAX_PUBLISH_MSGS   1000
#define DR_PUBSUB_MAX_REQUEST_BYTES  10000000 /* the encoded request body */
#define DR_PUBSUB_MAX_ATTRS          100
#define DR_PUBSUB_MAX_ATTR_KEY       256
#define DR_PUBSUB_MAX_ATTR_VALUE     1024
#define DR_PUBSUB_MAX_ORDERING_KEY   1024
#define DR_PUBSUB_MAX_PULL_MSGS      1000
#define DR_PUBSUB_MAX_ACK_DEADLINE_S 600
#define DR_PUBSUB_MIN_SUB_DEADLINE_S 10
#define DR_PUBSUB_MIN_DELIVERIES     5
#define DR_PUBSUB_MAX_DELIVERIES     100

struct dr_pubsub;

struct dr_pubsub_conf {
    const char *project;       /* required */
    const char *emulator_host; /* "host:port"; NULL = $PUBSUB_EMULATOR_HOST; "" = real service */
    const char *endpoint;      /* base URL override ("https://europe-west1-pubsub.googleapis.com")
                                  for the real service; NULL = https://pubsub.googleapis.com */
    struct dr_hc *hc;          /* borrowed, must outlive the client; NULL = the client's own */
    struct dr_gcp_auth *auth;  /* borrowed; NULL = none with the emulator, else from the
                                  environment (dr_gcp_auth_create_from_env), owned */
    long timeout_ms;           /* every call but blocking pulls; 0 = 60 s */
    long pull_timeout_ms;      /* blocking pulls; 0 = 110 s; less than 100 s is raised to 100 s
                                  (the service holds an empty pull up to ~90 s) */
    int http1_only;            /* real service: no HTTP/2 */
    int grpc; /* publish, pull, acknowledge and modifyAckDeadline as gRPC calls (HTTP/2,
                 protobuf) instead of REST (JSON, base64); topic and subscription calls stay REST */
};

struct dr_pubsub_attr {
    const char *key;
    const char *value;
};

/* A message to publish: data may be empty when there is at least one attribute. */
struct dr_pubsub_pub_msg {
    const void *data;
    size_t len;
    const struct dr_pubsub_attr *attrs;
    size_t n_attrs;
    const char *ordering_key; /* NULL or "" = none */
};

/* A received message. All strings are owned by the message and NUL-terminated. */
struct dr_pubsub_msg {
    char *ack_id;
    char *message_id;
    int64_t publish_time_ms; /* 0 if missing */
    unsigned char *data;     /* decoded; NUL-terminated (not counted in len) */
    size_t len;
    struct dr_pubsub_attr *attrs; /* n_attrs entries, owned */
    size_t n_attrs;
    char *ordering_key;   /* "" when none */
    int delivery_attempt; /* 1 on first delivery; 0 when the subscription has no dead-letter or
                             retry policy (the service does not count then) */
    const char *invalid;  /* NULL, or why the message could not be decoded (static text): it
                             still has its ack_id so it can be dead-lettered and acknowledged */
};

struct dr_pubsub_sub_conf {
    const char *topic;             /* required */
    int ack_deadline_s;            /* 0 = 10; else 10-600 */
    const char *dead_letter_topic; /* NULL = no dead-letter policy */
    int max_delivery_attempts;     /* with dead_letter_topic: 0 = 5; else 5-100 */
    int retry_min_backoff_s;       /* retry policy when either is > 0: 0-600 each, min <= max */
    int retry_max_backoff_s;
    int enable_message_ordering;
    const char *push_endpoint; /* NULL = pull subscription; else an http(s) URL */
    const char *filter;        /* NULL = none */
};

/* ids: the message ids in the order of the published messages, valid during the call. */
typedef void (*dr_pubsub_publish_cb)(void *ctx, int err, const char *errmsg, const char *const *ids,
                                     size_t n_ids);
/*
 * msgs: n messages; each one is handed over to the callback, which frees it with
 * dr_pubsub_msg_free() (the array itself is freed by the client after the callback returns).
 * n may be 0 (nothing was available).
 */
typedef void (*dr_pubsub_pull_cb)(void *ctx, int err, const char *errmsg,
                                  struct dr_pubsub_msg **msgs, size_t n);
/* resource: on success the parsed answer (the topic or subscription for create and get, an
 * empty object otherwise), else NULL; valid during the call. */
typedef void (*dr_pubsub_done_cb)(void *ctx, int err, const char *errmsg, const cJSON *resource);

/* DR_EINVAL (with a logged reason) on a bad project, emulator host or endpoint; whatever
 * creating the HTTP client or the credentials returned. */
int dr_pubsub_create(uv_loop_t *loop, const struct dr_pubsub_conf *conf, struct dr_pubsub **out);
/* Outstanding calls' callbacks run with DR_EUNAVAIL, from inside this call. Owned handles are
 * closed, so the loop must run once more to release them. NULL-safe. */
void dr_pubsub_destroy(struct dr_pubsub *ps);
/*
 * Checks a topic or subscription name as every call here would (kind "topics" or
 * "subscriptions"): a bare id, or a full name "projects/PROJECT/KIND/ID". DR_OK, or DR_EINVAL
 * with a one-line reason in why ("must start with a letter"). Needs no client: for checking
 * configuration before anything is sent. Any thread.
 */
int dr_pubsub_name_check(const char *kind, const char *name, char *why, size_t whysz);
/*
 * Checks n messages as dr_pubsub_publish() does before sending anything (the limits above but
 * the request's size, keys, UTF-8): DR_OK, or DR_EINVAL or DR_ETOOBIG with a one-line reason in
 * why ("message 0: 101 attributes (limit 100)"). A message it refuses is refused whenever it is
 * published. Needs no client. Any thread.
 */
int dr_pubsub_publish_check(const struct dr_pubsub_pub_msg *msgs, size_t n, char *why,
                            size_t whysz);
/* Why the last call on this client was refused (a static or client-owned string, "" if none). */
const char *dr_pubsub_errmsg(const struct dr_pubsub *ps);
/* Calls whose callback has not run yet. */
size_t dr_pubsub_in_flight(const struct dr_pubsub *ps);

/* Publishes 1..1000 messages in one request (see the limits above). */
int dr_pubsub_publish(struct dr_pubsub *ps, const char *topic, const struct dr_pubsub_pub_msg *msgs,
                      size_t n, dr_pubsub_publish_cb cb, void *ctx);
/*
 * Pulls up to max_messages (1-1000; the emulator answers at most 100). With return_immediately
 * the answer comes at once, possibly empty; otherwise it waits until messages arrive or the
 * service gives up (~90 s), so keep several in flight.
 */
int dr_pubsub_pull(struct dr_pubsub *ps, const char *subscription, int max_messages,
                   int return_immediately, dr_pubsub_pull_cb cb, void *ctx);
/* Acknowledges n >= 1 ack ids, split into several requests when large; cb runs once when all
 * are done, with the first error. */
int dr_pubsub_ack(struct dr_pubsub *ps, const char *subscription, const char *const *ack_ids,
                  size_t n, dr_pubsub_done_cb cb, void *ctx);
/* Sets the ack deadline of n >= 1 messages to deadline_s (0-600; 0 = nack: redeliver now),
 * batched like dr_pubsub_ack(). */
int dr_pubsub_modack(struct dr_pubsub *ps, const char *subscription, const char *const *ack_ids,
                     size_t n, int deadline_s, dr_pubsub_done_cb cb, void *ctx);

int dr_pubsub_topic_create(struct dr_pubsub *ps, const char *topic, dr_pubsub_done_cb cb,
                           void *ctx);
int dr_pubsub_topic_get(struct dr_pubsub *ps, const char *topic, dr_pubsub_done_cb cb, void *ctx);
int dr_pubsub_topic_delete(struct dr_pubsub *ps, const char *topic, dr_pubsub_done_cb cb,
                           void *ctx);
int dr_pubsub_sub_create(struct dr_pubsub *ps, const char *subscription,
                         const struct dr_pubsub_sub_conf *conf, dr_pubsub_done_cb cb, void *ctx);
int dr_pubsub_sub_get(struct dr_pubsub *ps, const char *subscription, dr_pubsub_done_cb cb,
                      void *ctx);
int dr_pubsub_sub_delete(struct dr_pubsub *ps, const char *subscription, dr_pubsub_done_cb cb,
                         void *ctx);

/* Frees a received message. NULL-safe. */
void dr_pubsub_msg_free(struct dr_pubsub_msg *m);

#endif
