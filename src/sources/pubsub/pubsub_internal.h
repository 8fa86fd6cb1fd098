/*
 * The parts of the Pub/Sub client that need no network, exposed for unit tests.
 */
#ifndef DR_SOURCES_PUBSUB_INTERNAL_H
#define DR_SOURCES_PUBSUB_INTERNAL_H

#include <stddef.h>

#include "dr/buf.h"
#include "dr/pubsub.h"

/*
 * Maps a non-2xx answer to an error (see dr/pubsub.h) and writes a one-line reason into msg
 * ("HTTP 404 NOT_FOUND: Resource not found"), using Google's error object when the body has
 * one. Control characters are replaced and the message is cut to fit msgsz.
 */
int dr__pubsub_http_error(long status, const char *body, size_t len, char *msg, size_t msgsz);

/*
 * Validates msgs against the service's limits and appends the publish request body to out.
 * DR_EINVAL or DR_ETOOBIG with the reason in why; out is then unspecified.
 */
int dr__pubsub_publish_body(const struct dr_pubsub_pub_msg *msgs, size_t n, struct dr_buf *out,
                            char *why, size_t whysz);

/*
 * Parses a pull answer. On DR_OK *msgs is a malloc'ed array of *n messages (NULL when 0) that
 * the caller frees (each with dr_pubsub_msg_free(), then the array). A message that cannot be
 * decoded but has an ackId is returned with m->invalid set; anything else malformed makes the
 * whole answer DR_EIO.
 */
int dr__pubsub_parse_pull(const char *body, size_t len, struct dr_pubsub_msg ***msgs, size_t *n);

/* Checks a topic or subscription argument; writes the full name ("projects/p/topics/t") into out.
 * kind is "topics" or "subscriptions". */
int dr__pubsub_resolve(const char *project, const char *kind, const char *name, char *out,
                       size_t outsz);

/* After parsing a pulled message: logs why it is invalid, if it is, and gives the fields a
 * message must always have ("" for message_id, data and ordering_key) their defaults. */
void dr__pubsub_msg_settle(struct dr_pubsub_msg *m);

/*
 * gRPC (grpc.c). Requests are appended to out as one gRPC frame holding the protobuf message;
 * DR_ETOOBIG when out's limit is reached.
 */
int dr__grpc_pull_request(const char *subscription, int max_messages, int return_immediately,
                          struct dr_buf *out);
/* AcknowledgeRequest when deadline_s < 0, else ModifyAckDeadlineRequest. */
int dr__grpc_ack_request(const char *subscription, const char *const *ack_ids, size_t n,
                         int deadline_s, struct dr_buf *out);
/* PublishRequest for checked msgs (dr_pubsub_publish_check()); DR_ETOOBIG past out's limit. */
int dr__grpc_publish_request(const char *topic, const struct dr_pubsub_pub_msg *msgs, size_t n,
                             struct dr_buf *out);
/* A Publish answer: *ids a malloc'ed NULL-terminated array of *n malloc'ed message ids. DR_EIO
 * when malformed (nothing allocated). */
int dr__grpc_parse_publish(const void *body, size_t len, char ***ids, size_t *n);
/* A Pull answer's body (one frame, or nothing); as dr__pubsub_parse_pull(). */
int dr__grpc_parse_pull(const void *body, size_t len, struct dr_pubsub_msg ***msgs, size_t *n);
/* Maps a non-zero grpc-status to an error and writes a one-line reason into msg
 * ("gRPC NOT_FOUND: Resource not found"); message is the raw (percent-encoded) grpc-message. */
int dr__grpc_error(int status, const char *message, char *msg, size_t msgsz);

#endif
