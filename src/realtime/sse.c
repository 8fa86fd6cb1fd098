/*
 * Server-Sent Events transport: one long HTTP response of text/event-stream records. Events
 * carry "id: <seq>" so an EventSource reconnects with Last-Event-ID; heartbeats are comment
 * lines. The client never sends anything after its request: reading only detects the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

struct sse {
    int shutting;
    uv_shutdown_t sreq;
};

static struct rt_frame *sse_encode(int64_t seq, const char *json, size_t len)
{
    return dr__sse_frame(seq, json, len);
}

static void sse_heartbeat(struct rt_conn *c)
{
    static const char ping[] = ": ping\n\n";
    struct rt_frame *f = dr__rt_frame_create(sizeof(ping) - 1);

    memcpy(f->data, ping, sizeof(ping) - 1);
    dr__rt_conn_write(c, f);
    dr__rt_frame_unref(f);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct rt_conn *c = req->data;
    dr__rt_conn_abort(c);
    dr__rt_conn_unref(c);
}

static void sse_close(struct rt_conn *c, int code, const char *reason)
{
    struct sse *s = c->tpdata;
    struct dr_buf b;

    if (s->shutting) {
        return;
    }
    /* EventSource has no close codes: say why in a last record, then end the stream */
    dr_buf_init(&b, 512);
    dr_buf_printf(&b, "data: {\"type\":\"close\",\"code\":%d,\"reason\":", code);
    dr_buf_append_json_str(&b, reason, strlen(reason));
    dr_buf_appends(&b, "}\n\n");
    dr__rt_conn_write_raw(c, b.data, b.len);
    dr_buf_cleanup(&b);
    if (c->state == RT_CONN_CLOSED) {
        return;
    }
    s->shutting = 1;
    s->sreq.data = c;
    dr__rt_conn_ref(c);
    if (uv_shutdown(&s->sreq, (uv_stream_t *)c->tcp, on_shutdown) != 0) {
        dr__rt_conn_unref(c);
        dr__rt_conn_abort(c);
    }
}

static void sse_cleanup(struct rt_conn *c)
{
    free(c->tpdata);
}

const struct rt_transport dr__rt_sse = {
    .id = RT_SSE,
    .name = "sse",
    .encode = sse_encode,
    .heartbeat = sse_heartbeat,
    .close = sse_close,
    .cleanup = sse_cleanup,
};

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct rt_conn *c = st->data;

    if (n < 0) {
        dr__rt_conn_abort(c); /* the client went away */
    }
    /* anything the client sends is ignored */
}

void dr__sse_start(struct dr_hub *hub, struct dr_http_req *req, struct dr_jwt_claims *claims,
                   int64_t since, char **rooms, size_t nrooms)
{
    char head[512];
    uv_tcp_t *tcp;
    char *extra = NULL;
    size_t extra_len = 0;
    struct rt_conn *c;
    int n;

    if (dr_http_hijack(req, &tcp, &extra, &extra_len) != DR_OK) {
        dr_jwt_claims_destroy(claims);
        return;
    }
    free(extra);
    c = dr__rt_conn_create(hub, &dr__rt_sse, tcp);
    c->tpdata = dr_xcalloc(1, sizeof(struct sse));
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                 "Connection: close\r\n\r\nretry: %lld\n\n",
                 (long long)hub->conf->sse_retry_ms);
    if (dr__rt_conn_write_raw(c, head, (size_t)n) != DR_OK) {
        dr_jwt_claims_destroy(claims);
        return;
    }
    if (dr__rt_conn_authenticated(c, claims, since, rooms, nrooms) != DR_OK) {
        dr__rt_conn_close(c, 4029, "too many connections for this user");
        return;
    }
    uv_read_start((uv_stream_t *)tcp, dr_http_read_slab, on_read);
}
