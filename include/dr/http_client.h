/*
 * Asynchronous outbound HTTP on a libuv loop: libcurl multi driven by uv_poll and uv_timer
 * (curl_multi_socket_action), so many requests are in flight on one thread. Used for Pub/Sub
 * REST, OAuth/metadata tokens, JWKS fetches, Vespa and carrier APIs.
 *
 * Everything here runs on the loop thread that created the client, callbacks included.
 */
#ifndef DR_HTTP_CLIENT_H
#define DR_HTTP_CLIENT_H

#include <stddef.h>
#include <uv.h>

struct dr_hc;
struct dr_hc_call; /* one request in flight; see dr_hc_submit() */

struct dr_hc_req {
    const char *method; /* "GET", "POST", "PUT", "DELETE" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    const void *body;           /* copied; may be NULL */
    size_t body_len;
    long timeout_ms;     /* whole request; 0 = 30 s */
    int http2;           /* 1: HTTP/2 where TLS negotiates it; 2: HTTP/2 at once on http://
                            URLs (h2c, one multiplexed connection per host:port, nghttp2) */
    size_t max_response; /* 0 = 16 MiB; larger bodies fail with DR_ETOOBIG */
};

struct dr_hc_resp {
    long status;      /* 0 when no response was received */
    const char *body; /* NUL-terminated; valid only during the callback */
    size_t body_len;
    const char *retry_after; /* Retry-After header value or NULL */
    double total_s;
    const char *error;        /* when err != DR_OK: libcurl's description (no body, no headers) */
    int grpc_status;          /* gRPC: the grpc-status header or trailer, -1 when none came */
    const char *grpc_message; /* gRPC: grpc-message as received (percent-encoded), or NULL */
};

/*
 * err is DR_OK when an HTTP response arrived (any status), DR_ETIMEOUT, DR_EIO or DR_ETOOBIG,
 * or DR_EUNAVAIL when the client is being destroyed. resp is never NULL; on failure its status
 * is what was received so far (often 0) and its body is empty.
 */
typedef void (*dr_hc_cb)(void *ctx, int err, const struct dr_hc_resp *resp);

/* *out owns a new client bound to loop; DR_EIO if libcurl cannot be initialised. Connections
 * are kept alive and reused between requests to the same host. TLS peers are verified against
 * the system's CA certificates, or against the file named by $DR_CA_FILE when it is set. */
int dr_hc_create(uv_loop_t *loop, struct dr_hc **out);
/*
 * Cancels outstanding requests (their callbacks run with DR_EUNAVAIL, from inside this call)
 * and frees the client once its libuv handles are closed, so the loop must run once more
 * afterwards. Calling it from inside a callback is allowed. NULL-safe.
 */
void dr_hc_destroy(struct dr_hc *hc);
/*
 * Starts a request. On DR_OK cb runs exactly once, later (never from inside this call). On
 * failure (DR_EINVAL: bad method, URL or option; DR_EUNAVAIL: client being destroyed; DR_EIO)
 * cb never runs. The request's strings and body are copied.
 */
int dr_hc_request(struct dr_hc *hc, const struct dr_hc_req *req, dr_hc_cb cb, void *ctx);
/*
 * Like dr_hc_request(), and on success *call identifies the request until its callback starts:
 * pass it to dr_hc_cancel() to drop the request. The caller must forget *call when cb runs.
 */
int dr_hc_submit(struct dr_hc *hc, const struct dr_hc_req *req, dr_hc_cb cb, void *ctx,
                 struct dr_hc_call **call);
/* Drops a request whose callback has not run yet; its callback will never run. */
void dr_hc_cancel(struct dr_hc_call *call);
/* Requests started and not yet completed. */
size_t dr_hc_in_flight(const struct dr_hc *hc);

#endif
