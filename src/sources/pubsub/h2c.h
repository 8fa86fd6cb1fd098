/*
 * HTTP/2 over plain TCP ("h2c", prior knowledge) on a libuv loop, with nghttp2: all requests to
 * one host:port share one connection as concurrent streams. dr_hc (http_client.c) sends its
 * requests with http2 = 2 through it, one client per host:port (the Pub/Sub emulator's gRPC, a
 * Vespa endpoint configured for h2c): libcurl 7.88 cannot reuse such a connection (its second
 * stream fails with "Error in the HTTP2 framing layer"), and a connection per request costs the
 * server more than the request itself. HTTPS stays with libcurl, which multiplexes over TLS.
 *
 * The connection is opened on the first request and again after it failed or the server closed
 * it; requests in flight when it breaks fail with DR_EIO. Everything runs on the loop thread.
 */
#ifndef DR_SOURCES_PUBSUB_H2C_H
#define DR_SOURCES_PUBSUB_H2C_H

#include <uv.h>

#include "dr/http_client.h"

struct dr_h2c;
struct dr_h2c_call;

/* authority is "host[:port]" (a name, an IPv4 address, or "[v6]"; port 80 when absent), as the
 * requests' URLs write it. DR_EINVAL if malformed. */
int dr_h2c_create(uv_loop_t *loop, const char *authority, struct dr_h2c **out);
/* Outstanding callbacks run with DR_EUNAVAIL from inside this call; the memory is released once
 * the loop has closed the handles. NULL-safe. */
void dr_h2c_destroy(struct dr_h2c *c);
/*
 * As dr_hc_submit(): req->url must be http://<the same authority>/path; methods GET, HEAD, POST,
 * PUT, DELETE, PATCH. cb
 * runs exactly once, later, with status, body, grpc_status and grpc_message filled in as dr_hc
 * does. On failure cb never runs.
 */
int dr_h2c_submit(struct dr_h2c *c, const struct dr_hc_req *req, dr_hc_cb cb, void *ctx,
                  struct dr_h2c_call **call);
/* Drops a request whose callback has not run yet (its stream is reset); cb never runs. */
void dr_h2c_cancel(struct dr_h2c_call *call);

#endif
