/*
 * WebSocket transport (RFC 6455) on wslay's event API: wslay parses client frames (masking,
 * fragmentation, control frames, the size cap with close 1009) and writes control frames;
 * server data frames are encoded here once per broadcast and written as shared bytes. Both go
 * through the connection's one uv_write queue in call order, and wslay always hands over whole
 * frames within one wslay_event_send call, so frames never interleave.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wslay/wslay.h>

#include "dr/err.h"
#include "dr/log.h"
#include "dr/metrics.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

struct ws {
    /* Created on the first need (client bytes, a close): wslay's context is ~9 KB, and an idle
     * connection authenticated by its upgrade request never needs it. */
    wslay_event_context_ptr ctx;
    const char *in; /* bytes being fed to wslay_event_recv */
    size_t inlen;
    int shutting; /* uv_shutdown requested */
    uv_shutdown_t sreq;
};

static void finish(struct rt_conn *c);

/*
 * Fails the connection with 1002 in place of the close wslay has queued: for a frame its frame
 * parser refuses (a fragmented control frame, one over 125 bytes) and for a close body of one
 * byte, wslay queues a close without a status code, which tells the client nothing.
 */
static void fail_protocol(struct rt_conn *c)
{
    static const uint8_t close1002[] = {0x88, 0x02, 0x03, 0xea};
    struct ws *ws = c->tpdata;

    wslay_event_shutdown_write(ws->ctx);
    if (dr__rt_conn_write_raw(c, close1002, sizeof(close1002)) != DR_OK) {
        dr__rt_conn_abort(c);
    }
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct rt_conn *c = user;
    struct ws *ws = c->tpdata;
    size_t n = ws->inlen < len ? ws->inlen : len;

    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->inlen -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct rt_conn *c = user;

    if (dr__rt_conn_write_raw(c, data, len) != DR_OK) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    struct rt_conn *c = user;

    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        if (!dr__utf8_valid(arg->msg, arg->msg_length)) {
            dr_metrics_inc(RT_M_REFUSED, "reason=\"invalid_utf8\"", 1);
            dr__rt_conn_close(c, 1007, "invalid UTF-8 in a text frame");
            return;
        }
        dr__rt_conn_on_message(c, (const char *)arg->msg, arg->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        dr__rt_conn_close(c, 1003, "binary frames are not supported");
        break;
    case WSLAY_CONNECTION_CLOSE:
        if (arg->msg_length == 1 && !wslay_event_get_close_sent(ctx)) {
            fail_protocol(c);
        }
        /* wslay answers the close; the connection stops taking events now */
        if (c->state == RT_CONN_OPEN || c->state == RT_CONN_AUTH) {
            c->state = RT_CONN_CLOSING;
            c->close_deadline_ms = dr_mono_ms() + c->hub->conf->close_timeout_ms;
            dr__hub_detach(c->hub, c);
        }
        break;
    case WSLAY_PING:
        /* wslay answers it; a ping is a client message like any other for the rate limit */
        if (!dr__rt_conn_rate_ok(c)) {
            dr_metrics_inc(RT_M_REFUSED, "reason=\"rate_limited\"", 1);
            dr__rt_conn_close(c, 1008, "message rate limit exceeded");
        }
        break;
    default:
        break; /* a pong only proves liveness */
    }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = on_msg,
};

static int ensure_ctx(struct rt_conn *c)
{
    struct ws *ws = c->tpdata;

    if (ws->ctx) {
        return DR_OK;
    }
    if (wslay_event_context_server_init(&ws->ctx, &ws_callbacks, c) != 0) {
        ws->ctx = NULL;
        return DR_ENOMEM;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, c->hub->conf->max_frame);
    return DR_OK;
}

/* Writes what wslay has queued and ends the TCP connection once the close handshake is done. */
static void flush(struct rt_conn *c)
{
    struct ws *ws = c->tpdata;

    if (c->state == RT_CONN_CLOSED || !ws->ctx) {
        return;
    }
    if (wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0) {
        dr__rt_conn_abort(c);
        return;
    }
    if ((wslay_event_get_close_sent(ws->ctx) || wslay_event_get_close_received(ws->ctx)) &&
        (c->state == RT_CONN_OPEN || c->state == RT_CONN_AUTH)) {
        /* wslay closed on its own (1002 protocol error, 1009 too big) */
        c->state = RT_CONN_CLOSING;
        c->close_deadline_ms = dr_mono_ms() + c->hub->conf->close_timeout_ms;
        dr__hub_detach(c->hub, c);
    }
    if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx)) {
        finish(c);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct rt_conn *c = req->data;
    dr__rt_conn_abort(c);
    dr__rt_conn_unref(c);
}

/* Lets the queued bytes (the close frame) leave, then closes. */
static void finish(struct rt_conn *c)
{
    struct ws *ws = c->tpdata;

    if (ws->shutting || c->state == RT_CONN_CLOSED) {
        return;
    }
    ws->shutting = 1;
    if (c->state != RT_CONN_CLOSING) {
        c->state = RT_CONN_CLOSING;
        c->close_deadline_ms = dr_mono_ms() + c->hub->conf->close_timeout_ms;
        dr__hub_detach(c->hub, c);
    }
    ws->sreq.data = c;
    dr__rt_conn_ref(c);
    if (uv_shutdown(&ws->sreq, (uv_stream_t *)c->tcp, on_shutdown) != 0) {
        dr__rt_conn_unref(c);
        dr__rt_conn_abort(c);
    }
}

void dr__ws_feed(struct rt_conn *c, const char *data, size_t len)
{
    struct ws *ws = c->tpdata;
    int sent_close;

    if (c->state == RT_CONN_CLOSED) {
        return;
    }
    if (ensure_ctx(c) != DR_OK) {
        dr__rt_conn_abort(c);
        return;
    }
    if (!wslay_event_want_read(ws->ctx)) {
        return;
    }
    ws->in = data;
    ws->inlen = len;
    dr__rt_conn_ref(c);
    sent_close = wslay_event_get_close_sent(ws->ctx);
    if (wslay_event_recv(ws->ctx) != 0) {
        /* wslay_event_recv fails only for a frame its parser refuses */
        if (!sent_close && c->state != RT_CONN_CLOSED) {
            fail_protocol(c);
        }
        flush(c);
        finish(c);
    } else {
        flush(c);
        /* wslay's answers (pongs) bypass the queue's bound: a client that pings and never reads
         * would grow it without end */
        dr__rt_conn_bound_queue(c);
    }
    ws->in = NULL;
    ws->inlen = 0;
    dr__rt_conn_unref(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct rt_conn *c = s->data;

    if (n < 0) {
        dr__rt_conn_abort(c);
        return;
    }
    if (n > 0) {
        c->last_rx_ms = dr_mono_ms();
        dr__ws_feed(c, buf->base, (size_t)n);
    }
}

/* ---- the transport table ---- */

static struct rt_frame *ws_encode(int64_t seq, const char *json, size_t len)
{
    return dr__ws_frame(WSLAY_TEXT_FRAME, json, len);
}

static void ws_heartbeat(struct rt_conn *c)
{
    struct ws *ws = c->tpdata;
    struct wslay_event_msg m = {WSLAY_PING, NULL, 0};

    if (!ws->ctx) {
        static const char ping[2] = {(char)0x89, 0x00}; /* FIN + ping, no payload */
        if (dr__rt_conn_write_raw(c, ping, sizeof(ping)) != DR_OK) {
            dr__rt_conn_abort(c);
        }
        return;
    }
    if (wslay_event_queue_msg(ws->ctx, &m) == 0) {
        flush(c);
    }
}

static void ws_close(struct rt_conn *c, int code, const char *reason)
{
    struct ws *ws = c->tpdata;
    size_t rlen = strlen(reason);

    if (rlen > 120) {
        rlen = 120;
    }
    if (ensure_ctx(c) != DR_OK) {
        dr__rt_conn_abort(c);
        return;
    }
    wslay_event_queue_close(ws->ctx, (uint16_t)code, (const uint8_t *)reason, rlen);
    flush(c);
}

static void ws_cleanup(struct rt_conn *c)
{
    struct ws *ws = c->tpdata;
    if (ws) {
        if (ws->ctx) {
            wslay_event_context_free(ws->ctx);
        }
        free(ws);
    }
}

const struct rt_transport dr__rt_ws = {
    .id = RT_WS,
    .name = "ws",
    .encode = ws_encode,
    .heartbeat = ws_heartbeat,
    .close = ws_close,
    .cleanup = ws_cleanup,
};

/* ---- the opening handshake ---- */

static int header_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',') {
            v++;
        }
        size_t n = strcspn(v, ",");
        size_t m = n;
        while (m > 0 && (v[m - 1] == ' ' || v[m - 1] == '\t')) {
            m--;
        }
        if (m == tl && strncasecmp(v, token, tl) == 0) {
            return 1;
        }
        v += n;
    }
    return 0;
}

void dr__ws_start(struct dr_hub *hub, struct dr_http_req *req, struct dr_jwt_claims *claims,
                  int64_t since)
{
    char accept[RT_WS_ACCEPT_SIZE], resp[256];
    const char *ver = dr_http_header(req, "Sec-WebSocket-Version");
    uv_tcp_t *tcp;
    char *extra = NULL;
    size_t extra_len = 0;
    struct rt_conn *c;
    struct ws *ws;
    int n;

    if (!header_has_token(dr_http_header(req, "Upgrade"), "websocket") ||
        !header_has_token(dr_http_header(req, "Connection"), "upgrade")) {
        dr_http_add_header(req, "Upgrade", "websocket");
        dr_http_respond_error(req, 426, "FAILED_PRECONDITION", "a WebSocket upgrade is required");
        goto out;
    }
    if (!ver || strcmp(ver, "13") != 0) {
        dr_http_add_header(req, "Sec-WebSocket-Version", "13");
        dr_http_respond_error(req, 426, "FAILED_PRECONDITION", "WebSocket version 13 required");
        goto out;
    }
    if (dr__ws_accept(dr_http_header(req, "Sec-WebSocket-Key"), accept) != DR_OK) {
        dr_http_respond_error(req, 400, "INVALID_ARGUMENT", "bad Sec-WebSocket-Key");
        goto out;
    }
    if (dr_http_hijack(req, &tcp, &extra, &extra_len) != DR_OK) {
        goto out; /* the client went away */
    }
    c = dr__rt_conn_create(hub, &dr__rt_ws, tcp);
    ws = dr_xcalloc(1, sizeof(*ws));
    c->tpdata = ws;
    n = snprintf(resp, sizeof(resp),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                 accept);
    if (dr__rt_conn_write_raw(c, resp, (size_t)n) != DR_OK) {
        goto out;
    }
    if (claims) {
        int err = dr__rt_conn_authenticated(c, claims, since, NULL, 0);
        claims = NULL;
        if (err) {
            dr__rt_conn_close(c, 4029, "too many connections for this user");
            goto out;
        }
    } else {
        c->since = since;
    }
    uv_read_start((uv_stream_t *)tcp, dr_http_read_slab, on_read);
    if (extra_len) {
        dr__ws_feed(c, extra, extra_len);
    }
out:
    dr_jwt_claims_destroy(claims);
    free(extra);
}
