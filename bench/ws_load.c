/*
 * Real-time delivery load generator: many WebSocket or SSE subscribers per process (libuv, one
 * loop per receiver thread) plus a publisher thread that POSTs notifications, measuring
 * publish-to-client latency and delivered messages/s. It speaks to data-router (`/ws`,
 * `/events`, JWT in `access_token`, local publish API) and to nginx with Nchan (`/sub/{id}`,
 * `/pub/{id}`) with the same ClientNotification JSON, so both can be compared in one run.
 *
 * Each notification carries data.t_ns (CLOCK_REALTIME when its publish request is written); a
 * subscriber finds "t_ns": in every frame it receives and records now - t_ns.
 *
 * Scenarios:
 *   fanout  --clients N all in one room; --rate events/s for --duration seconds
 *   rooms   --clients N, each in its own room; --events published round-robin as fast as
 *           --pub-conns keep-alive connections allow (--batch messages per data-router request;
 *           --direct: through its publish API, POST /api/v1/publish, not the topic; Nchan with
 *           --ws-publish: one publisher WebSocket per room, its events sent as frames back to
 *           back, WS_PUB_BATCH per write, instead of a POST each)
 *   idle    --clients N connect and stay; memory of --pid (and its children) before and after
 *
 * Output: one line "result key=value ..." on stdout; progress on stderr. Only 127.0.0.1 is
 * used, and every phase has a time limit, so a run always ends by itself.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#define MAX_THREADS      16
#define MAX_PUB_CONNS    256
#define MAX_PIDS         64
#define READ_BUF_BYTES   (64 * 1024)
#define MAX_CONN_BUF     (4 * 1024 * 1024) /* input a subscriber may hold unparsed */
#define MAX_RESP_BYTES   (256 * 1024)
#define HANDSHAKES_AHEAD 64 /* connection attempts in flight per receiver thread */
#define TOKEN_TTL_S      7200

enum target { T_DR, T_NCHAN };
enum transport { TP_WS, TP_SSE };
enum scenario { S_FANOUT, S_ROOMS, S_IDLE };

struct opts {
    enum target target;
    enum transport transport;
    enum scenario scenario;
    int port, pub_port;
    int clients, rooms, threads, pub_conns, batch;
    int direct; /* data-router: POST /api/v1/publish instead of the client-notifications topic */
    int ws_publish; /* Nchan, rooms: publish over one WebSocket per room, not one POST each */
    int meeting;    /* data-router: rooms meeting:bench-N (from the token's rooms claim), which
                       the inbox does not read, instead of org:bench-N */
    double rate, duration, drain, hold, connect_timeout, settle;
    long events;
    int payload;
    pid_t pids[MAX_PIDS];
    int npids;
    const char *label;
    const char *secret;
};

static struct opts o = {
    .target = T_DR,
    .transport = TP_WS,
    .scenario = S_FANOUT,
    .port = 8080,
    .clients = 1000,
    .rooms = 1,
    .threads = 1,
    .pub_conns = 4,
    .batch = 1,
    .rate = 100,
    .duration = 10,
    .drain = 10,
    .hold = 5,
    .connect_timeout = 120,
    .settle = 1,
    .events = 20000,
    .payload = 0,
    .label = "",
};

static char run_tag[32];

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* ---------- growable byte buffer with a cap ---------- */

struct bbuf {
    char *p;
    size_t len, cap;
};

static int bbuf_append(struct bbuf *b, const char *d, size_t n, size_t max)
{
    if (b->len + n > max) {
        return -1;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n) {
            cap *= 2;
        }
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

static void bbuf_consume(struct bbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->p, b->p + n, b->len - n);
        b->len -= n;
    }
}

static void bbuf_free(struct bbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---------- names, tokens, payloads ---------- */

/* The room client idx joins (data-router) and the matching Nchan channel id. */
static void room_of(int idx, char *room, size_t rsz, char *chan, size_t csz)
{
    int r = o.scenario == S_ROOMS ? idx % o.rooms : 0;
    snprintf(room, rsz, o.meeting ? "meeting:bench-%d" : "org:bench-%d", r);
    snprintf(chan, csz, "org_bench-%d", r);
}

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=') {
        len--;
    }
    for (int i = 0; i < len; i++) {
        if (out[i] == '+') {
            out[i] = '-';
        } else if (out[i] == '/') {
            out[i] = '_';
        }
    }
    out[len] = '\0';
    return (size_t)len;
}

/* HS256 token for user bench-u{idx} in org bench-{room}. */
static void make_token(int idx, char *out, size_t outsz)
{
    static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char claims[256], signing[1024], sigb[128];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int r = o.scenario == S_ROOMS ? idx % o.rooms : 0;
    size_t n;

    if (o.meeting) {
        snprintf(claims, sizeof(claims),
                 "{\"sub\":\"bench-u%d\",\"org\":\"bench-%d\",\"rooms\":[\"meeting:bench-%d\"],"
                 "\"exp\":%lld}",
                 idx, r, r, (long long)(time(NULL) + TOKEN_TTL_S));
    } else { /* a room more per connection would count in the idle step's memory */
        snprintf(claims, sizeof(claims), "{\"sub\":\"bench-u%d\",\"org\":\"bench-%d\",\"exp\":%lld}",
                 idx, r, (long long)(time(NULL) + TOKEN_TTL_S));
    }
    n = b64url((const unsigned char *)hdr, strlen(hdr), signing);
    signing[n++] = '.';
    n += b64url((const unsigned char *)claims, strlen(claims), signing + n);
    HMAC(EVP_sha256(), o.secret, (int)strlen(o.secret), (const unsigned char *)signing, n, mac,
         &maclen);
    b64url(mac, maclen, sigb);
    snprintf(out, outsz, "%s.%s", signing, sigb);
}

/* ---------- latency samples ---------- */

struct samples {
    int64_t *v;
    size_t n, cap;
};

static void samples_add(struct samples *s, int64_t x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = x;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_us(const struct samples *s, double p)
{
    size_t i;
    if (s->n == 0) {
        return 0;
    }
    i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
    return (double)s->v[i] / 1000.0;
}

/* ---------- subscribers ---------- */

enum cstate { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_DEAD };
enum chstate { CH_SIZE, CH_DATA, CH_CRLF, CH_END };

struct rx;

struct sub {
    uv_tcp_t tcp; /* first: the handle's memory is the struct's */
    uv_connect_t creq;
    struct rx *rx;
    int idx;
    enum cstate state;
    int ready, chunked;
    enum chstate ch;
    size_t chunk_left;
    struct bbuf in;  /* raw bytes not yet parsed */
    struct bbuf sse; /* SSE stream after de-chunking */
};

struct rx {
    pthread_t th;
    int id;
    uv_loop_t loop;
    uv_async_t stop;
    uv_timer_t kick;
    struct sub **subs;
    int nsubs, next, inflight;
    struct samples lat;
    int64_t last_rx_ns;
    char rbuf[READ_BUF_BYTES];
    atomic_long received;
    atomic_int ready, failed, closed;
    atomic_long other;
};

static struct rx rxs[MAX_THREADS];
static atomic_int stopping;

struct wreq {
    uv_write_t w;
    char data[];
};

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void send_bytes(uv_stream_t *s, const char *d, size_t n)
{
    struct wreq *r = xmalloc(sizeof(*r) + n);
    uv_buf_t b = uv_buf_init(r->data, (unsigned)n);
    memcpy(r->data, d, n);
    if (uv_write(&r->w, s, &b, 1, on_written) != 0) {
        free(r);
    }
}

static void connect_more(struct rx *rx);

static void sub_closed(uv_handle_t *h)
{
    struct sub *c = h->data;
    bbuf_free(&c->in);
    bbuf_free(&c->sse);
}

static void sub_fail(struct sub *c, int counted_failed)
{
    struct rx *rx = c->rx;
    int was_ready = c->ready;

    if (c->state == C_DEAD) {
        return;
    }
    if (!was_ready) {
        rx->inflight--;
    }
    c->state = C_DEAD;
    if (counted_failed && !was_ready) {
        atomic_fetch_add(&rx->failed, 1);
    } else {
        atomic_fetch_add(&rx->closed, 1);
    }
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, sub_closed);
    }
    if (!atomic_load(&stopping)) {
        connect_more(rx);
    }
}

static void sub_ready(struct sub *c)
{
    if (!c->ready) {
        c->ready = 1;
        c->rx->inflight--;
        atomic_fetch_add(&c->rx->ready, 1);
        connect_more(c->rx);
    }
}

/* One complete message (WS text frame or SSE record). */
static void on_message(struct sub *c, const char *p, size_t n)
{
    static const char key[] = "\"t_ns\":";
    const char *k = memmem(p, n, key, sizeof(key) - 1);

    if (k) {
        /* data-router re-prints numbers as doubles (1.7e18 keeps ~256 ns), so read any form */
        char num[40];
        size_t nl = (size_t)(p + n - (k + sizeof(key) - 1));
        int64_t t, now;
        nl = nl < sizeof(num) - 1 ? nl : sizeof(num) - 1;
        memcpy(num, k + sizeof(key) - 1, nl);
        num[nl] = '\0';
        t = (int64_t)strtod(num, NULL);
        now = now_ns();
        samples_add(&c->rx->lat, now - t);
        c->rx->last_rx_ns = now;
        atomic_fetch_add_explicit(&c->rx->received, 1, memory_order_relaxed);
        return;
    }
    if (memmem(p, n, "\"welcome\"", 9)) {
        sub_ready(c);
    } else if (n > 0 && p[0] != ':' && !memmem(p, n, "retry:", 6)) {
        atomic_fetch_add(&c->rx->other, 1);
    }
}

static void sse_feed(struct sub *c, const char *d, size_t n)
{
    size_t off = 0;

    if (bbuf_append(&c->sse, d, n, MAX_CONN_BUF) != 0) {
        sub_fail(c, 0);
        return;
    }
    for (;;) {
        char *e = memmem(c->sse.p + off, c->sse.len - off, "\n\n", 2);
        if (!e) {
            break;
        }
        on_message(c, c->sse.p + off, (size_t)(e - (c->sse.p + off)));
        off = (size_t)(e - c->sse.p) + 2;
    }
    bbuf_consume(&c->sse, off);
}

/* De-chunk what is in c->in into the SSE parser. */
static void chunk_feed(struct sub *c)
{
    size_t off = 0;

    while (off < c->in.len && c->state == C_OPEN) {
        if (c->ch == CH_SIZE) {
            char *e = memmem(c->in.p + off, c->in.len - off, "\r\n", 2);
            if (!e) {
                break;
            }
            c->chunk_left = strtoul(c->in.p + off, NULL, 16);
            off = (size_t)(e - c->in.p) + 2;
            c->ch = c->chunk_left ? CH_DATA : CH_END;
        } else if (c->ch == CH_DATA) {
            size_t take = c->in.len - off < c->chunk_left ? c->in.len - off : c->chunk_left;
            sse_feed(c, c->in.p + off, take);
            off += take;
            c->chunk_left -= take;
            if (c->chunk_left == 0) {
                c->ch = CH_CRLF;
            }
        } else if (c->ch == CH_CRLF) {
            if (c->in.len - off < 2) {
                break;
            }
            off += 2;
            c->ch = CH_SIZE;
        } else {
            sub_fail(c, 0);
            return;
        }
    }
    if (c->state != C_DEAD) {
        bbuf_consume(&c->in, off);
    }
}

/* Parse server frames (unmasked); answer pings with a masked pong. */
static void ws_feed(struct sub *c)
{
    size_t off = 0;

    while (c->state == C_OPEN) {
        const unsigned char *p = (const unsigned char *)c->in.p + off;
        size_t avail = c->in.len - off, hl = 2;
        uint64_t len;
        int op;

        if (avail < 2) {
            break;
        }
        op = p[0] & 0x0f;
        len = p[1] & 0x7f;
        if (len == 126) {
            hl = 4;
            if (avail < hl) {
                break;
            }
            len = ((uint64_t)p[2] << 8) | p[3];
        } else if (len == 127) {
            hl = 10;
            if (avail < hl) {
                break;
            }
            len = 0;
            for (int i = 0; i < 8; i++) {
                len = (len << 8) | p[2 + i];
            }
        }
        if (p[1] & 0x80) {
            hl += 4; /* servers do not mask; tolerate it anyway by skipping the key */
        }
        if (len > MAX_CONN_BUF) {
            sub_fail(c, 0);
            return;
        }
        if (avail < hl + len) {
            break;
        }
        if (op == 0x1 || op == 0x0) {
            on_message(c, (const char *)p + hl, (size_t)len);
        } else if (op == 0x9 && len <= 125) {
            unsigned char pong[2 + 4 + 125];
            pong[0] = 0x8a;
            pong[1] = (unsigned char)(0x80 | len);
            memset(pong + 2, 0, 4); /* a zero mask leaves the payload as it is */
            memcpy(pong + 6, p + hl, (size_t)len);
            send_bytes((uv_stream_t *)&c->tcp, (const char *)pong, 6 + (size_t)len);
        } else if (op == 0x8) {
            off += hl + (size_t)len;
            sub_fail(c, 0);
            return;
        }
        off += hl + (size_t)len;
    }
    bbuf_consume(&c->in, off);
}

static void handshake_done(struct sub *c)
{
    char *e = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
    const char *want = o.transport == TP_WS ? " 101" : " 200";
    size_t hlen;

    if (!e) {
        return;
    }
    hlen = (size_t)(e - c->in.p) + 4;
    if (c->in.len < 12 || memcmp(c->in.p + 8, want, 4) != 0) {
        if (atomic_load(&c->rx->failed) < 3) {
            const char *eol = memchr(c->in.p, '\r', c->in.len);
            fprintf(stderr, "subscriber %d refused: %.*s\n", c->idx, (int)(eol - c->in.p), c->in.p);
        }
        sub_fail(c, 1);
        return;
    }
    for (char *h = c->in.p; h && h < e; h = memmem(h, (size_t)(e - h), "\r\n", 2)) {
        h += 2;
        if (strncasecmp(h, "transfer-encoding:", 18) == 0 &&
            memmem(h, (size_t)(e - h), "chunked", 7)) {
            c->chunked = 1;
        }
    }
    c->state = C_OPEN;
    c->ch = CH_SIZE;
    bbuf_consume(&c->in, hlen);
    if (o.target == T_NCHAN) {
        sub_ready(c); /* Nchan sends nothing until the first message */
    }
}

static void parse_input(struct sub *c)
{
    if (c->state == C_HANDSHAKE) {
        handshake_done(c);
    }
    if (c->state != C_OPEN || c->in.len == 0) {
        return;
    }
    if (o.transport == TP_WS) {
        ws_feed(c);
    } else if (c->chunked) {
        chunk_feed(c);
    } else {
        sse_feed(c, c->in.p, c->in.len);
        if (c->state != C_DEAD) {
            c->in.len = 0;
        }
    }
}

static void rx_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct sub *c = h->data;
    (void)hint;
    *b = uv_buf_init(c->rx->rbuf, sizeof(c->rx->rbuf));
}

static void on_sub_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct sub *c = s->data;

    if (n < 0) {
        sub_fail(c, 1);
        return;
    }
    if (n == 0 || c->state == C_DEAD) {
        return;
    }
    if (bbuf_append(&c->in, b->base, (size_t)n, MAX_CONN_BUF) != 0) {
        sub_fail(c, 0);
        return;
    }
    parse_input(c);
}

static void on_sub_connect(uv_connect_t *r, int status)
{
    struct sub *c = r->data;
    char token[1200], room[160], chan[160], req[2048];
    int n;

    if (status != 0) {
        if (atomic_load(&c->rx->failed) < 3) {
            fprintf(stderr, "connect: %s\n", uv_strerror(status));
        }
        sub_fail(c, 1);
        return;
    }
    room_of(c->idx, room, sizeof(room), chan, sizeof(chan));
    if (o.target == T_DR) {
        make_token(c->idx, token, sizeof(token));
    }
    if (o.transport == TP_WS) {
        n = snprintf(req, sizeof(req),
                     "GET %s%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     o.target == T_DR ? "/ws?access_token=" : "/sub/",
                     o.target == T_DR ? token : chan, o.port);
    } else {
        n = snprintf(req, sizeof(req),
                     "GET %s%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\n\r\n",
                     o.target == T_DR ? "/events?access_token=" : "/sub/",
                     o.target == T_DR ? token : chan, o.port);
    }
    c->state = C_HANDSHAKE;
    uv_read_start((uv_stream_t *)&c->tcp, rx_alloc, on_sub_read);
    send_bytes((uv_stream_t *)&c->tcp, req, (size_t)n);
}

static void connect_more(struct rx *rx)
{
    struct sockaddr_in a;

    uv_ip4_addr("127.0.0.1", o.port, &a);
    while (rx->inflight < HANDSHAKES_AHEAD && rx->next < rx->nsubs) {
        struct sub *c = rx->subs[rx->next++];
        uv_tcp_init(&rx->loop, &c->tcp);
        c->tcp.data = c;
        c->creq.data = c;
        c->state = C_CONNECTING;
        rx->inflight++;
        if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&a, on_sub_connect) != 0) {
            c->state = C_HANDSHAKE; /* so that sub_fail closes the handle */
            sub_fail(c, 1);
        }
    }
}

static void close_all(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h)) {
        return;
    }
    if (h->type == UV_TCP) {
        struct sub *c = h->data;
        /* a reset leaves no TIME_WAIT behind, so back-to-back runs do not run out of ports */
        if (c && (c->state == C_OPEN || c->state == C_HANDSHAKE) &&
            uv_tcp_close_reset((uv_tcp_t *)h, sub_closed) == 0) {
            return;
        }
        uv_close(h, c ? sub_closed : NULL);
        return;
    }
    uv_close(h, NULL);
}

static void on_rx_stop(uv_async_t *a)
{
    uv_walk(a->loop, close_all, NULL);
}

static void on_kick(uv_timer_t *t)
{
    connect_more(t->data);
}

static void *rx_main(void *arg)
{
    struct rx *rx = arg;

    uv_run(&rx->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---------- publisher ---------- */

struct pconn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    int busy, up, dead;
    struct bbuf req, resp;
    int room;     /* --ws-publish: the room this connection publishes to */
    long ws_next; /* --ws-publish: its next event (events room, room + rooms, ...) */
    int upgraded; /* --ws-publish: 101 received */
    uv_write_t hreq; /* --ws-publish: the upgrade request's write */
};

#define WS_PUB_BATCH 50 /* frames per write on a publisher WebSocket */

static struct {
    uv_loop_t loop;
    uv_timer_t timer;
    uv_async_t stop;
    pthread_t th;
    struct pconn conns[MAX_PUB_CONNS];
    int nconns;
    long next;             /* events handed out */
    atomic_long published; /* events whose request got a 2xx */
    atomic_long errors;
    atomic_int done;
    int64_t t0_mono;
    int64_t first_ns, last_ns;
    char pad[4096];
} pub;

static size_t notification_json(long i, char *out, size_t outsz)
{
    char room[160], chan[160];
    int r = (int)(i % (o.scenario == S_ROOMS ? o.rooms : 1));
    int idx = o.scenario == S_ROOMS ? r : 0;

    room_of(idx, room, sizeof(room), chan, sizeof(chan));
    return (size_t)snprintf(out, outsz,
                            "{\"notification_id\":\"b-%s-%ld\",\"user_id\":\"bench-pub\","
                            "\"org_id\":\"bench-%d\",\"room\":\"%s\","
                            "\"notification_type\":\"bench.tick\",\"title\":\"bench\","
                            "\"message\":\"%s\",\"data\":{\"i\":%ld,\"t_ns\":%" PRId64 "},"
                            "\"timestamp\":\"2026-01-01T00:00:00.000Z\"}",
                            run_tag, i, idx, room, pub.pad, i, now_ns());
}

/* Builds the request for events [first, first + n) into p->req; returns how many it holds
 * (fewer than n only when a publish request could not hold them all). Publisher thread only. */
static int build_request(struct pconn *p, long first, int n)
{
    static char body[16 << 20]; /* 1,000 events with the largest --payload */
    char js[8192], head[512], room[160], chan[160];
    size_t blen = 0;
    int hl, k = n;

    p->req.len = 0;
    if (o.target == T_DR) {
        /* the publish API takes the notifications as they are; the topic, base64 in "data" */
        blen = (size_t)snprintf(body, sizeof(body), "{\"%s\":[",
                                o.direct ? "notifications" : "messages");
        for (k = 0; k < n; k++) {
            size_t jl = notification_json(first + k, js, sizeof(js));
            if (blen + (o.direct ? jl : 4 * (jl / 3 + 1)) + 32 >= sizeof(body)) {
                break;
            }
            if (k) {
                body[blen++] = ',';
            }
            if (o.direct) {
                memcpy(body + blen, js, jl);
                blen += jl;
                continue;
            }
            blen += (size_t)snprintf(body + blen, sizeof(body) - blen, "{\"data\":\"");
            blen += (size_t)EVP_EncodeBlock((unsigned char *)body + blen, (const unsigned char *)js,
                                            (int)jl);
            blen += (size_t)snprintf(body + blen, sizeof(body) - blen, "\"}");
        }
        blen += (size_t)snprintf(body + blen, sizeof(body) - blen, "]}");
        hl = snprintf(head, sizeof(head),
                      "POST %s HTTP/1.1\r\n"
                      "Host: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      o.direct ? "/api/v1/publish"
                               : "/v1/projects/local/topics/client-notifications:publish",
                      o.pub_port, blen);
    } else {
        int r = (int)(first % (o.scenario == S_ROOMS ? o.rooms : 1));
        blen = notification_json(first, body, sizeof(body));
        room_of(o.scenario == S_ROOMS ? r : 0, room, sizeof(room), chan, sizeof(chan));
        hl = snprintf(head, sizeof(head),
                      "POST /pub/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      chan, o.pub_port, blen);
    }
    bbuf_append(&p->req, head, (size_t)hl, SIZE_MAX);
    bbuf_append(&p->req, body, blen, SIZE_MAX);
    return k;
}

static long total_events(void)
{
    if (o.scenario == S_FANOUT) {
        return (long)(o.rate * o.duration + 0.5);
    }
    return o.events;
}

static void pub_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static int pub_send(struct pconn *p)
{
    long total = total_events();
    int n = o.target == T_DR ? o.batch : 1;
    uv_buf_t b;

    if (pub.next >= total || p->busy || !p->up || p->dead) {
        return 0;
    }
    if (pub.next + n > total) {
        n = (int)(total - pub.next);
    }
    n = build_request(p, pub.next, n);
    if (pub.next == 0) {
        pub.first_ns = now_ns();
    }
    pub.next += n;
    p->busy = n;
    b = uv_buf_init(p->req.p, (unsigned)p->req.len);
    if (uv_write(&p->wreq, (uv_stream_t *)&p->tcp, &b, 1, pub_written) != 0) {
        p->dead = 1;
        atomic_fetch_add(&pub.errors, n);
        return 0;
    }
    return 1;
}

static void pub_check_done(void);

/* --ws-publish: the next WS_PUB_BATCH events of p's room as masked text frames (mask 0, which
 * leaves the payload as it is), in one write. A frame counts as published once written. */
static void ws_pub_written(uv_write_t *w, int status);

static int ws_pub_send(struct pconn *p)
{
    char js[8192];
    int n = 0;

    if (p->busy || !p->upgraded || p->dead) {
        return 0;
    }
    p->req.len = 0;
    for (; n < WS_PUB_BATCH && p->ws_next < total_events(); n++, p->ws_next += o.rooms) {
        size_t jl = notification_json(p->ws_next, js, sizeof(js));
        unsigned char h[8] = {0x81};
        size_t hl;
        if (jl < 126) {
            h[1] = (unsigned char)(0x80 | jl);
            hl = 2;
        } else {
            h[1] = 0x80 | 126;
            h[2] = (unsigned char)(jl >> 8);
            h[3] = (unsigned char)jl;
            hl = 4;
        }
        memset(h + hl, 0, 4); /* the masking key */
        bbuf_append(&p->req, (const char *)h, hl + 4, SIZE_MAX);
        bbuf_append(&p->req, js, jl, SIZE_MAX);
    }
    if (n == 0) {
        return 0;
    }
    if (pub.first_ns == 0) {
        pub.first_ns = now_ns();
    }
    p->busy = n;
    uv_buf_t b = uv_buf_init(p->req.p, (unsigned)p->req.len);
    if (uv_write(&p->wreq, (uv_stream_t *)&p->tcp, &b, 1, ws_pub_written) != 0) {
        p->dead = 1;
        atomic_fetch_add(&pub.errors, n);
        p->busy = 0;
        return 0;
    }
    return 1;
}

static void ws_pub_written(uv_write_t *w, int status)
{
    struct pconn *p = w->handle->data;

    if (status < 0) {
        atomic_fetch_add(&pub.errors, p->busy);
        p->dead = 1;
    } else {
        atomic_fetch_add(&pub.published, p->busy);
    }
    p->busy = 0;
    ws_pub_send(p);
    pub_check_done();
}

/* --ws-publish: the upgrade's answer, then whatever Nchan sends on the publisher socket. */
static void ws_pub_read(struct pconn *p)
{
    char *e;

    if (p->upgraded) {
        p->resp.len = 0; /* nothing the publisher needs */
        return;
    }
    e = memmem(p->resp.p, p->resp.len, "\r\n\r\n", 4);
    if (!e) {
        return;
    }
    if (p->resp.len < 12 || atoi(p->resp.p + 9) != 101) {
        fprintf(stderr, "publisher upgrade answered: %.*s\n",
                (int)(p->resp.len < 300 ? p->resp.len : 300), p->resp.p);
        p->dead = 1;
        return;
    }
    p->upgraded = 1;
    p->resp.len = 0;
    ws_pub_send(p);
}

static void pub_check_done(void)
{
    int busy = 0, alive = 0;

    for (int i = 0; i < pub.nconns; i++) {
        busy |= pub.conns[i].busy && !pub.conns[i].dead;
        alive += !pub.conns[i].dead;
    }
    if (alive == 0 && !atomic_load(&pub.done)) {
        fprintf(stderr, "every publisher connection is gone: stopping early\n");
    }
    if (o.ws_publish) {
        long left = 0;
        for (int i = 0; i < pub.nconns; i++) {
            left += !pub.conns[i].dead && pub.conns[i].ws_next < total_events();
        }
        pub.next = left ? 0 : total_events();
    }
    if ((alive == 0 || (pub.next >= total_events() && !busy)) && !atomic_load(&pub.done)) {
        pub.last_ns = now_ns();
        atomic_store(&pub.done, 1);
        uv_timer_stop(&pub.timer);
    }
}

/* A whole response at the front of p->resp: its length, 0 if incomplete. */
static size_t response_len(const struct bbuf *r, int *status)
{
    char *e = memmem(r->p, r->len, "\r\n\r\n", 4);
    size_t hlen, clen = 0;
    int chunked = 0;

    if (!e) {
        return 0;
    }
    hlen = (size_t)(e - r->p) + 4;
    *status = r->len > 12 ? atoi(r->p + 9) : 0;
    for (char *h = r->p; h && h < e; h = memmem(h, (size_t)(e - h), "\r\n", 2)) {
        h += 2;
        if (strncasecmp(h, "content-length:", 15) == 0) {
            clen = strtoul(h + 15, NULL, 10);
        } else if (strncasecmp(h, "transfer-encoding:", 18) == 0 &&
                   memmem(h, (size_t)(e - h), "chunked", 7)) {
            chunked = 1;
        }
    }
    if (!chunked) {
        return r->len >= hlen + clen ? hlen + clen : 0;
    }
    for (size_t off = hlen;;) {
        char *le = memmem(r->p + off, r->len - off, "\r\n", 2);
        size_t sz;
        if (!le) {
            return 0;
        }
        sz = strtoul(r->p + off, NULL, 16);
        off = (size_t)(le - r->p) + 2 + sz + 2;
        if (off > r->len) {
            return 0;
        }
        if (sz == 0) {
            return off;
        }
    }
}

static void pub_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    static char buf[READ_BUF_BYTES];
    *b = uv_buf_init(buf, sizeof(buf));
}

static void pub_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct pconn *p = s->data;
    size_t len;
    int status = 0;

    if (n < 0) {
        if (p->busy) {
            atomic_fetch_add(&pub.errors, p->busy);
        }
        p->busy = 0;
        p->dead = 1;
        uv_read_stop(s);
        pub_check_done();
        return;
    }
    if (bbuf_append(&p->resp, b->base, (size_t)n, MAX_RESP_BYTES) != 0) {
        p->dead = 1;
        return;
    }
    if (o.ws_publish) {
        ws_pub_read(p);
        pub_check_done();
        return;
    }
    while ((len = response_len(&p->resp, &status)) > 0) {
        if (status >= 200 && status < 300) {
            atomic_fetch_add(&pub.published, p->busy);
        } else {
            if (atomic_load(&pub.errors) < 3) {
                fprintf(stderr, "publish answered %d: %.*s\n", status,
                        (int)(p->resp.len < 300 ? p->resp.len : 300), p->resp.p);
            }
            atomic_fetch_add(&pub.errors, p->busy);
        }
        p->busy = 0;
        bbuf_consume(&p->resp, len);
        if (o.scenario == S_ROOMS) {
            pub_send(p);
        }
    }
    pub_check_done();
}

static void pub_connected(uv_connect_t *r, int status)
{
    struct pconn *p = r->data;

    if (status != 0) {
        fprintf(stderr, "publisher connect: %s\n", uv_strerror(status));
        p->dead = 1;
        pub_check_done();
        return;
    }
    p->up = 1;
    uv_read_start((uv_stream_t *)&p->tcp, pub_alloc, pub_read);
    if (o.ws_publish) {
        char room[160], chan[160], head[512];
        int hl;
        uv_buf_t hb;
        room_of(p->room, room, sizeof(room), chan, sizeof(chan));
        hl = snprintf(head, sizeof(head),
                      "GET /pub/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n",
                      chan, o.pub_port);
        p->req.len = 0;
        bbuf_append(&p->req, head, (size_t)hl, SIZE_MAX);
        hb = uv_buf_init(p->req.p, (unsigned)p->req.len);
        if (uv_write(&p->hreq, (uv_stream_t *)&p->tcp, &hb, 1, pub_written) != 0) {
            p->dead = 1;
            pub_check_done();
        }
        return;
    }
    if (o.scenario == S_ROOMS) {
        pub_send(p);
    }
}

/* Paced publishing: every tick, hand out what is due on free connections. */
static void pub_tick(uv_timer_t *t)
{
    double el = (double)(mono_ns() - pub.t0_mono) / 1e9;
    long due = (long)(el * o.rate) + 1;
    long total = total_events();

    (void)t;
    if (due > total) {
        due = total;
    }
    for (int i = 0; i < pub.nconns && pub.next < due; i++) {
        pub_send(&pub.conns[i]);
    }
    pub_check_done();
}

static void pub_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void pub_stop_cb(uv_async_t *a)
{
    uv_walk(a->loop, pub_close, NULL);
}

static void *pub_main(void *arg)
{
    (void)arg;
    uv_run(&pub.loop, UV_RUN_DEFAULT);
    return NULL;
}

static void pub_start(void)
{
    struct sockaddr_in a;

    memset(pub.pad, 'x', (size_t)o.payload);
    pub.pad[o.payload] = '\0';
    uv_loop_init(&pub.loop);
    uv_async_init(&pub.loop, &pub.stop, pub_stop_cb);
    uv_timer_init(&pub.loop, &pub.timer);
    uv_ip4_addr("127.0.0.1", o.pub_port, &a);
    pub.nconns = o.ws_publish ? o.rooms : o.pub_conns;
    for (int i = 0; i < pub.nconns; i++) {
        struct pconn *p = &pub.conns[i];
        p->room = i;
        p->ws_next = i;
        uv_tcp_init(&pub.loop, &p->tcp);
        uv_tcp_nodelay(&p->tcp, 1);
        p->tcp.data = p;
        p->creq.data = p;
        uv_tcp_connect(&p->creq, &p->tcp, (const struct sockaddr *)&a, pub_connected);
    }
    pub.t0_mono = mono_ns();
    if (o.scenario == S_FANOUT) {
        uv_timer_start(&pub.timer, pub_tick, 1, 1);
    }
    pthread_create(&pub.th, NULL, pub_main, NULL);
}

/* ---------- server memory ---------- */

static long proc_kb(pid_t pid, const char *file, const char *key)
{
    char path[64], line[256];
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, strlen(key)) == 0) {
            v = strtol(line + strlen(key), NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* The given processes and their direct children; returns how many were stored. */
static int server_pids(pid_t *all, int max)
{
    int n = 0;
    DIR *d;
    struct dirent *e;

    for (int i = 0; i < o.npids && n < max; i++) {
        all[n++] = o.pids[i];
    }
    d = opendir("/proc");
    while (d && (e = readdir(d)) != NULL && n < max) {
        char path[300], buf[512], *rp;
        FILE *f;
        int ppid = 0;
        if (!isdigit((unsigned char)e->d_name[0])) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (!f) {
            continue;
        }
        if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')) != NULL &&
            sscanf(rp + 2, "%*c %d", &ppid) == 1) {
            for (int i = 0; i < o.npids; i++) {
                if (ppid == o.pids[i]) {
                    all[n++] = (pid_t)atoi(e->d_name);
                    break;
                }
            }
        }
        fclose(f);
    }
    if (d) {
        closedir(d);
    }
    return n;
}

/* RSS and PSS (kB) of the server processes. */
static void server_mem(long *rss, long *pss)
{
    pid_t all[MAX_PIDS * 8];
    int n = server_pids(all, (int)(sizeof(all) / sizeof(all[0])));

    *rss = *pss = 0;
    for (int i = 0; i < n; i++) {
        long r = proc_kb(all[i], "status", "VmRSS:");
        long p = proc_kb(all[i], "smaps_rollup", "Pss:");
        *rss += r > 0 ? r : 0;
        *pss += p > 0 ? p : 0;
    }
}

/* CPU time (clock ticks) of every thread of the server processes. */
#define MAX_TIDS 512
struct cpu_snap {
    int n;
    pid_t tid[MAX_TIDS];
    long ticks[MAX_TIDS];
};

static void server_cpu(struct cpu_snap *s)
{
    pid_t all[MAX_PIDS * 8];
    int np = server_pids(all, (int)(sizeof(all) / sizeof(all[0])));

    s->n = 0;
    for (int i = 0; i < np; i++) {
        char path[64];
        DIR *d;
        struct dirent *e;
        snprintf(path, sizeof(path), "/proc/%d/task", (int)all[i]);
        d = opendir(path);
        while (d && (e = readdir(d)) != NULL && s->n < MAX_TIDS) {
            char sp[320], buf[1024], *rp;
            unsigned long ut = 0, st = 0;
            FILE *f;
            if (!isdigit((unsigned char)e->d_name[0])) {
                continue;
            }
            snprintf(sp, sizeof(sp), "/proc/%d/task/%s/stat", (int)all[i], e->d_name);
            f = fopen(sp, "r");
            if (!f) {
                continue;
            }
            /* after the comm: state ppid pgrp session tty tpgid flags minflt cminflt majflt
             * cmajflt utime stime */
            if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')) != NULL &&
                sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) ==
                    2) {
                s->tid[s->n] = (pid_t)atoi(e->d_name);
                s->ticks[s->n++] = (long)(ut + st);
            }
            fclose(f);
        }
        if (d) {
            closedir(d);
        }
    }
}

/* Total CPU seconds between two snapshots, and those of the busiest thread. */
static void cpu_delta(const struct cpu_snap *a, const struct cpu_snap *b, double *total,
                      double *busiest)
{
    double hz = (double)sysconf(_SC_CLK_TCK);
    long sum = 0, max = 0;

    for (int i = 0; i < b->n; i++) {
        long d = b->ticks[i];
        for (int k = 0; k < a->n; k++) {
            if (a->tid[k] == b->tid[i]) {
                d -= a->ticks[k];
                break;
            }
        }
        sum += d;
        max = d > max ? d : max;
    }
    *total = (double)sum / hz;
    *busiest = (double)max / hz;
}

/* ---------- driver ---------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_ws_load --target dr|nchan --transport ws|sse --scenario "
            "fanout|rooms|idle\n"
            "  --port N (subscribers) --pub-port N (default: --port) --clients N --rooms N\n"
            "  --rate EV/S --duration S (fanout)   --events N --pub-conns N --batch N --direct "
            "(rooms)\n"
            "  --ws-publish (rooms, nchan: a publisher WebSocket per room)\n"
            "  --meeting-rooms (rooms, dr: meeting:bench-N rooms, not org:bench-N)\n"
            "  --hold S --pid PID (idle; repeatable, children included)\n"
            "  --threads N --payload BYTES --drain S --connect-timeout S --settle S --label X\n"
            "  DR_JWT_SECRET must be set for --target dr\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    static const struct option lo[] = {
        {"target", 1, 0, 't'},
        {"transport", 1, 0, 'T'},
        {"scenario", 1, 0, 's'},
        {"port", 1, 0, 'p'},
        {"pub-port", 1, 0, 'P'},
        {"clients", 1, 0, 'c'},
        {"rooms", 1, 0, 'r'},
        {"rate", 1, 0, 'R'},
        {"duration", 1, 0, 'd'},
        {"events", 1, 0, 'e'},
        {"pub-conns", 1, 0, 'C'},
        {"batch", 1, 0, 'b'},
        {"hold", 1, 0, 'h'},
        {"pid", 1, 0, 'i'},
        {"threads", 1, 0, 'j'},
        {"payload", 1, 0, 'y'},
        {"drain", 1, 0, 'D'},
        {"connect-timeout", 1, 0, 'o'},
        {"settle", 1, 0, 'S'},
        {"label", 1, 0, 'l'},
        {"direct", 0, 0, 'x'},
        {"ws-publish", 0, 0, 'W'},
        {"meeting-rooms", 0, 0, 'M'},
        {0, 0, 0, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 't':
            o.target = strcmp(optarg, "nchan") == 0 ? T_NCHAN : T_DR;
            break;
        case 'T':
            o.transport = strcmp(optarg, "sse") == 0 ? TP_SSE : TP_WS;
            break;
        case 's':
            o.scenario = strcmp(optarg, "rooms") == 0  ? S_ROOMS
                         : strcmp(optarg, "idle") == 0 ? S_IDLE
                                                       : S_FANOUT;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 'P':
            o.pub_port = atoi(optarg);
            break;
        case 'c':
            o.clients = atoi(optarg);
            break;
        case 'r':
            o.rooms = atoi(optarg);
            break;
        case 'R':
            o.rate = atof(optarg);
            break;
        case 'd':
            o.duration = atof(optarg);
            break;
        case 'e':
            o.events = atol(optarg);
            break;
        case 'C':
            o.pub_conns = atoi(optarg);
            break;
        case 'b':
            o.batch = atoi(optarg);
            break;
        case 'x':
            o.direct = 1;
            break;
        case 'W':
            o.ws_publish = 1;
            break;
        case 'M':
            o.meeting = 1;
            break;
        case 'h':
            o.hold = atof(optarg);
            break;
        case 'i':
            if (o.npids < MAX_PIDS) {
                o.pids[o.npids++] = (pid_t)atoi(optarg);
            }
            break;
        case 'j':
            o.threads = atoi(optarg);
            break;
        case 'y':
            o.payload = atoi(optarg);
            break;
        case 'D':
            o.drain = atof(optarg);
            break;
        case 'o':
            o.connect_timeout = atof(optarg);
            break;
        case 'S':
            o.settle = atof(optarg);
            break;
        case 'l':
            o.label = optarg;
            break;
        default:
            usage();
        }
    }
    if (!o.pub_port) {
        o.pub_port = o.port;
    }
    if (o.scenario != S_ROOMS) {
        o.rooms = 1;
    }
    if (o.clients < 1 || o.clients > 200000 || o.rooms < 1 || o.threads < 1 ||
        o.threads > MAX_THREADS || o.pub_conns < 1 || o.pub_conns > MAX_PUB_CONNS || o.batch < 1 ||
        o.batch > 1000 || o.rate <= 0 || o.duration <= 0 || o.duration > 600 || o.events < 1 ||
        o.events > 10000000 || o.payload < 0 || o.payload >= (int)sizeof(pub.pad) || o.hold > 600 ||
        o.drain > 600 ||
        (o.ws_publish &&
         (o.target != T_NCHAN || o.scenario != S_ROOMS || o.rooms > MAX_PUB_CONNS))) {
        usage();
    }
    o.secret = getenv("DR_JWT_SECRET");
    if (o.target == T_DR && (!o.secret || strlen(o.secret) < 32)) {
        fprintf(stderr, "DR_JWT_SECRET (>= 32 bytes) is required for --target dr\n");
        exit(2);
    }
}

static long sum_atomic_long(size_t off)
{
    long s = 0;
    for (int i = 0; i < o.threads; i++) {
        s += atomic_load((atomic_long *)((char *)&rxs[i] + off));
    }
    return s;
}

static int sum_atomic_int(size_t off)
{
    int s = 0;
    for (int i = 0; i < o.threads; i++) {
        s += atomic_load((atomic_int *)((char *)&rxs[i] + off));
    }
    return s;
}

#define RX_SUM_L(f) sum_atomic_long(offsetof(struct rx, f))
#define RX_SUM_I(f) sum_atomic_int(offsetof(struct rx, f))

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    struct sub *subs;
    long rss0 = 0, pss0 = 0, rss1 = 0, pss1 = 0, expected = 0, received;
    int64_t t_conn0, t_conn, last_change;
    long last_received = -1;
    struct samples all = {0};
    static struct cpu_snap cpu0, cpu1;
    double cpu_s = 0, cpu_busy_s = 0;
    struct rusage ru0, ru1;
    int64_t t_win = 0;
    char load[64] = "";
    FILE *la;

    parse_args(argc, argv);
    snprintf(run_tag, sizeof(run_tag), "%d-%lld", (int)getpid(), (long long)time(NULL));
    if (o.npids) {
        server_mem(&rss0, &pss0);
    }

    subs = calloc((size_t)o.clients, sizeof(*subs));
    if (!subs) {
        return 2;
    }
    t_conn0 = mono_ns();
    for (int t = 0; t < o.threads; t++) {
        struct rx *rx = &rxs[t];
        rx->id = t;
        uv_loop_init(&rx->loop);
        uv_async_init(&rx->loop, &rx->stop, on_rx_stop);
        rx->subs = xmalloc(((size_t)o.clients / (size_t)o.threads + 1) * sizeof(*rx->subs));
        for (int i = t; i < o.clients; i += o.threads) {
            subs[i].idx = i;
            subs[i].rx = rx;
            rx->subs[rx->nsubs++] = &subs[i];
        }
        uv_timer_init(&rx->loop, &rx->kick);
        rx->kick.data = rx;
        uv_timer_start(&rx->kick, on_kick, 0, 0);
    }
    for (int t = 0; t < o.threads; t++) {
        pthread_create(&rxs[t].th, NULL, rx_main, &rxs[t]);
    }
    /* all subscribers joined (or refused), within the limit */
    while (RX_SUM_I(ready) + RX_SUM_I(failed) < o.clients &&
           (double)(mono_ns() - t_conn0) / 1e9 < o.connect_timeout) {
        sleep_s(0.01);
    }
    t_conn = mono_ns() - t_conn0;
    fprintf(stderr, "%s: %d subscribers ready, %d refused in %.2f s\n", o.label, RX_SUM_I(ready),
            RX_SUM_I(failed), (double)t_conn / 1e9);
    sleep_s(o.settle);

    if (o.scenario == S_IDLE) {
        sleep_s(o.hold);
        if (o.npids) {
            server_mem(&rss1, &pss1);
        }
    } else {
        long total = total_events();
        int per_room = o.clients / o.rooms;
        expected = o.scenario == S_FANOUT ? total * RX_SUM_I(ready) : 0;
        if (o.scenario == S_ROOMS) {
            /* each event goes to the clients of its room; rooms fill round-robin */
            for (int r = 0; r < o.rooms; r++) {
                long ev = total / o.rooms + (r < total % o.rooms ? 1 : 0);
                expected += ev * (per_room + (r < o.clients % o.rooms ? 1 : 0));
            }
            expected = expected * RX_SUM_I(ready) / o.clients;
        }
        if (o.npids) {
            server_cpu(&cpu0);
        }
        getrusage(RUSAGE_SELF, &ru0);
        t_win = mono_ns();
        pub_start();
        while (!atomic_load(&pub.done)) {
            sleep_s(0.005);
            if ((double)(mono_ns() - pub.t0_mono) / 1e9 > o.duration + 120 + o.events / 1000.0) {
                fprintf(stderr, "publisher did not finish in time\n");
                break;
            }
        }
        last_change = mono_ns();
        while ((received = RX_SUM_L(received)) < expected) {
            if (received != last_received) {
                last_received = received;
                last_change = mono_ns();
            }
            if ((double)(mono_ns() - last_change) / 1e9 > o.drain) {
                break;
            }
            sleep_s(0.002);
        }
        if (o.npids) {
            server_mem(&rss1, &pss1);
            server_cpu(&cpu1);
            cpu_delta(&cpu0, &cpu1, &cpu_s, &cpu_busy_s);
        }
        getrusage(RUSAGE_SELF, &ru1);
        t_win = mono_ns() - t_win;
    }
    la = fopen("/proc/loadavg", "r");
    if (la) {
        char *sp;
        if (fgets(load, sizeof(load), la) && (sp = strchr(load, ' ')) != NULL &&
            (sp = strchr(sp + 1, ' ')) != NULL && (sp = strchr(sp + 1, ' ')) != NULL) {
            *sp = '\0';
            for (char *q = load; *q; q++) {
                *q = *q == ' ' ? '/' : *q;
            }
        }
        fclose(la);
    }

    atomic_store(&stopping, 1);
    if (o.scenario != S_IDLE) {
        uv_async_send(&pub.stop);
        pthread_join(pub.th, NULL);
    }
    for (int t = 0; t < o.threads; t++) {
        uv_async_send(&rxs[t].stop);
    }
    for (int t = 0; t < o.threads; t++) {
        pthread_join(rxs[t].th, NULL);
        for (size_t k = 0; k < rxs[t].lat.n; k++) {
            samples_add(&all, rxs[t].lat.v[k]);
        }
    }
    qsort(all.v, all.n, sizeof(*all.v), cmp_i64);

    {
        int64_t last_rx = pub.first_ns;
        double span, pub_span;

        for (int t = 0; t < o.threads; t++) {
            last_rx = rxs[t].last_rx_ns > last_rx ? rxs[t].last_rx_ns : last_rx;
        }
        pub_span = pub.first_ns && pub.last_ns > pub.first_ns
                       ? (double)(pub.last_ns - pub.first_ns) / 1e9
                       : 0;
        /* delivered/s from the first publish to the last receipt */
        span = (double)(last_rx - pub.first_ns) / 1e9;
        printf("result label=%s target=%s transport=%s scenario=%s clients=%d ready=%d "
               "refused=%d closed=%d rooms=%d connect_s=%.2f",
               o.label, o.target == T_DR ? "data-router" : "nchan",
               o.transport == TP_WS ? "ws" : "sse",
               o.scenario == S_FANOUT  ? "fanout"
               : o.scenario == S_ROOMS ? "rooms"
                                       : "idle",
               o.clients, RX_SUM_I(ready), RX_SUM_I(failed), RX_SUM_I(closed), o.rooms,
               (double)t_conn / 1e9);
        if (o.scenario != S_IDLE) {
            printf(" events=%ld published=%ld pub_errors=%ld expected=%ld delivered=%zu "
                   "other_frames=%ld publish_s=%.3f publish_per_s=%.0f delivered_per_s=%.0f "
                   "p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f max_ms=%.3f",
                   total_events(), atomic_load(&pub.published), atomic_load(&pub.errors), expected,
                   all.n, RX_SUM_L(other), pub_span,
                   pub_span > 0 ? (double)atomic_load(&pub.published) / pub_span : 0,
                   span > 0 ? (double)all.n / span : 0, pct_us(&all, 50) / 1000,
                   pct_us(&all, 95) / 1000, pct_us(&all, 99) / 1000, pct_us(&all, 100) / 1000);
        }
        if (o.scenario != S_IDLE) {
            printf(" gen_cpu_s=%.2f", (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
                                               ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                                          (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
                                                   ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) /
                                              1e6);
        }
        if (o.npids) {
            int conns = RX_SUM_I(ready);
            printf(" rss_before_kb=%ld rss_after_kb=%ld pss_before_kb=%ld pss_after_kb=%ld", rss0,
                   rss1, pss0, pss1);
            if (o.scenario != S_IDLE) {
                printf(" window_s=%.2f", (double)t_win / 1e9);
                printf(" server_cpu_s=%.2f busiest_thread_cpu_s=%.2f cpu_us_per_delivery=%.2f",
                       cpu_s, cpu_busy_s, all.n ? cpu_s * 1e6 / (double)all.n : 0);
            }
            if (o.scenario == S_IDLE && conns > 0) {
                printf(" rss_per_conn_bytes=%.0f pss_per_conn_bytes=%.0f",
                       (double)(rss1 - rss0) * 1024 / conns, (double)(pss1 - pss0) * 1024 / conns);
            }
        }
        printf(" load=%s\n", load);
    }
    free(all.v);
    for (int t = 0; t < o.threads; t++) {
        free(rxs[t].lat.v);
        free(rxs[t].subs);
        uv_loop_close(&rxs[t].loop);
    }
    free(subs);
    return 0;
}
