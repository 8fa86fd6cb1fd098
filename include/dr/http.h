/*
 * HTTP/1.1 server on libuv + http-parser. Runs on one event-loop thread; handlers run there too
 * and must not block (hand blocking work to dr_http_defer or a worker and respond later).
 *
 * Protection against hostile clients: a cap on the bytes of the request line and headers
 * together (431) and on body bytes (413 as soon as Content-Length says so), both answered with a
 * JSON error body, a deadline for a whole request to arrive (408: slowloris), an idle timeout on
 * keep-alive connections, and a cap on open connections (503 then close).
 */
#ifndef DR_HTTP_H
#define DR_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct dr_http_server;
struct dr_http_req;

struct dr_http_limits {
    size_t max_header_bytes;   /* request line (URL) and headers together; default 32 KiB */
    size_t max_body_bytes;     /* default 11 MiB */
    unsigned request_timeout_ms; /* whole request must arrive within; default 10 s */
    unsigned idle_timeout_ms;  /* keep-alive idle; default 60 s */
    unsigned max_connections;  /* default 10000 */
};

/* A handler owns req until it responds (now or later, on the loop thread). */
typedef void (*dr_http_handler)(struct dr_http_req *req, void *ctx);

int dr_http_server_create(uv_loop_t *loop, const struct dr_http_limits *lim,
                          struct dr_http_server **out);
/* host "127.0.0.1" or "0.0.0.0"; port 0 picks a free one (see dr_http_server_port). */
int dr_http_server_listen(struct dr_http_server *srv, const char *host, int port);
int dr_http_server_port(const struct dr_http_server *srv);
/* Stops accepting; open connections finish their current request and close. */
void dr_http_server_stop(struct dr_http_server *srv);
/* Frees everything once all handles have closed (runs the loop's close callbacks). NULL-safe. */
void dr_http_server_destroy(struct dr_http_server *srv);
size_t dr_http_server_connections(const struct dr_http_server *srv);
/* 1 while a request is being handled or an answer is being written (after dr_http_server_stop:
 * what a shutdown waits for before it closes the connections). NULL-safe. */
int dr_http_server_busy(const struct dr_http_server *srv);

/*
 * pattern: an exact path ("/healthz"), or a prefix: a pattern ending in a star matches every path that starts with the rest. method NULL
 * matches any method. First registered match wins. 404/405 with a JSON body otherwise.
 */
int dr_http_route(struct dr_http_server *srv, const char *method, const char *pattern,
                  dr_http_handler fn, void *ctx);
/* Called for every request before routing (e.g. metrics); may be NULL. */
void dr_http_set_observer(struct dr_http_server *srv,
                          void (*fn)(const struct dr_http_req *, int status, void *), void *ctx);

/* Request accessors: valid until the response is sent. */
const char *dr_http_method(const struct dr_http_req *req);
const char *dr_http_path(const struct dr_http_req *req);  /* without the query string */
const char *dr_http_query(const struct dr_http_req *req); /* raw, "" if none */
const char *dr_http_header(const struct dr_http_req *req, const char *name); /* case-insensitive */
const char *dr_http_body(const struct dr_http_req *req, size_t *len);
int dr_http_peer_is_loopback(const struct dr_http_req *req);
const char *dr_http_peer(const struct dr_http_req *req);
uint64_t dr_http_received_ns(const struct dr_http_req *req);
/* Percent-decoded query parameter into out; DR_ENOTFOUND if absent, DR_ETOOBIG if it won't fit,
 * DR_EINVAL if it holds a NUL (%00): a filter cut short there would match what was not asked. */
int dr_http_query_param(const struct dr_http_req *req, const char *name, char *out, size_t outsz);
/*
 * Query parameter name as a whole number from min to max, as dr_parse_int() reads it (digits,
 * a '-' first for a negative number, nothing else), into *out. DR_OK; DR_ENOTFOUND when it is
 * absent; DR_EINVAL when it is there but empty, not such a number, out of range or longer than
 * 63 bytes: err (errsz bytes, always a string) then names it and what it takes, for the caller
 * to answer 400 INVALID_ARGUMENT with. *out is left as it was unless DR_OK, so it may hold the
 * default beforehand.
 */
int dr_http_query_int(const struct dr_http_req *req, const char *name, int64_t min, int64_t max,
                      int64_t *out, char *err, size_t errsz);
/*
 * Query parameter name as a yes or no: 1 into *out for "1", "true" or "yes", 0 for "0", "false"
 * or "no" (as they are, decoded). DR_OK; DR_ENOTFOUND when it is absent; DR_EINVAL when it is
 * there but anything else (empty, or one of them followed by a %00 and more): err (errsz bytes,
 * always a string) then names it, for the caller to answer 400 INVALID_ARGUMENT with. *out is
 * left as it was unless DR_OK.
 */
int dr_http_query_bool(const struct dr_http_req *req, const char *name, int *out, char *err,
                       size_t errsz);

/* Responses (exactly one per request). Content is copied. */
void dr_http_respond(struct dr_http_req *req, int status, const char *content_type,
                     const char *body, size_t len);
void dr_http_respond_json(struct dr_http_req *req, int status, const char *json);
/* The same for a cJSON tree, which it prints and then frees. */
struct cJSON;
void dr_http_respond_cjson(struct dr_http_req *req, int status, struct cJSON *o);
/* {"error":{"code":status,"message":msg,"status":grpc_status}} — Pub/Sub's error shape. */
void dr_http_respond_error(struct dr_http_req *req, int status, const char *grpc_status,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Extra response header for the next respond ("Name: value"), e.g. Retry-After. */
void dr_http_add_header(struct dr_http_req *req, const char *name, const char *value);

/*
 * Calls fn(req, status, ctx) once, when the response to req is given: sent, or dropped because
 * the client has gone (the request's accessors still work then; the peer reads "-"). For records
 * of what a request did, such as the audit log. Not called for a hijacked request. Setting it
 * again replaces it; ctx must live until the response. Loop thread.
 */
typedef void (*dr_http_done_hook)(const struct dr_http_req *req, int status, void *ctx);
void dr_http_on_done(struct dr_http_req *req, dr_http_done_hook fn, void *ctx);

/* Runs work(arg) on the libuv thread pool, then done(req, arg) on the loop thread, which must
 * respond. If the client went away meanwhile, done still runs and its response is dropped. */
int dr_http_defer(struct dr_http_req *req, void (*work)(void *arg),
                  void (*done)(struct dr_http_req *req, void *arg), void *arg);

/*
 * Takes the connection away from HTTP (WebSocket upgrade, Server-Sent Events): the caller gets
 * the stream (already reading stopped) and any bytes received after the request. The server
 * forgets the connection; the caller closes the stream with uv_close and frees it with free()
 * in the close callback. req is freed by this call.
 */
int dr_http_hijack(struct dr_http_req *req, uv_tcp_t **stream, char **extra, size_t *extra_len);

/* A uv_alloc_cb handing out one 64 KiB buffer per thread: for read callbacks that consume what
 * they are given before returning (as the server and the hijacked streams do). */
void dr_http_read_slab(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

#endif
