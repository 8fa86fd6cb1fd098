/*
 * bench_load: a load generator for the Pub/Sub-shaped publish API (data-router's local mode, or
 * the Pub/Sub emulator in front of a router in pubsub mode).
 *
 *   bench_load throughput  publish --messages M messages of --size bytes (attribute seq=<n>) in
 *                          batches of --batch over --conns keep-alive connections, as fast as
 *                          allowed; then wait until a progress counter (a Prometheus series on
 *                          --progress-url) has grown by M. Prints the publish-only rate and the
 *                          end-to-end rate (first publish to the last message counted done).
 *   bench_load latency     publish --rate msg/s in batches of --batch, each batch on a timer
 *                          slot; tail the test processor's record file (--record) and match each
 *                          line's seq to its slot: publish->processed latency percentiles.
 *
 * Plain non-blocking sockets and epoll, HTTP/1.1 keep-alive, one request in flight per
 * connection. Only loopback addresses are accepted as targets. Every run is bounded by
 * --timeout. The last line printed is "RESULT key=value ..." for scripts.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS          256
#define MAX_EXTRA_ATTRS    16
#define MAX_BATCH          1000
#define RESP_CAP           (4 * 1024 * 1024) /* a response larger than this is an error */
#define METRICS_EVERY_NS   (20 * 1000000LL)
#define RETRY_AFTER_429_NS (20 * 1000000LL)
#define RECONNECT_LIMIT    50
#define NS                 1000000000LL

enum mode { MODE_THROUGHPUT, MODE_LATENCY };
enum conn_state { C_IDLE, C_CONNECTING, C_BUSY, C_DEAD };
enum req_kind { R_NONE, R_PUBLISH, R_PROGRESS };

struct opts {
    enum mode mode;
    char host[64];
    int port;
    char project[128];
    char topic[128];
    long messages;
    int batch;
    int conns;
    int size;
    char progress_host[64];
    int progress_port;
    char progress_path[256];
    const char *progress_metric;
    long max_backlog;
    double rate;
    double duration;
    double warmup;
    double timeout;
    const char *record;
    const char *seq_prefix;
    int pid;
    const char *extra_attrs[MAX_EXTRA_ATTRS];
    int nextra;
};

struct batch {
    long first; /* seq of its first message */
    int count;
    int64_t due_ns; /* when it was meant to be sent (latency: its timer slot) */
};

struct conn {
    int fd;
    enum conn_state state;
    enum req_kind kind;
    int is_progress; /* talks to --progress-url rather than the publish endpoint */
    char *out;
    size_t outlen, outoff, outcap;
    char *in;
    size_t inlen, incap;
    struct batch b;
    int64_t sent_ns;
    int reconnects;
};

struct stats {
    int64_t *v;
    size_t n, cap;
};

static struct opts o;
static int ep = -1;
static struct conn conns[MAX_CONNS];
static struct conn progress_conn;
static char *b64_payload;
static size_t b64_len;

static long next_seq;         /* next seq to hand to a batch */
static long published_ok;     /* messages the publish endpoint accepted */
static long inflight_msgs;    /* messages in publish requests not yet answered */
static struct batch *retry_q; /* batches to resend (after 429 or a dropped connection) */
static size_t retry_n, retry_cap;
static int64_t retry_not_before;
static long n_429, n_errors, n_reconnects;

static double progress_base = -1, progress_now = -1;
static int64_t progress_last_ns;
static int progress_pending;

static int64_t *due_by_seq;  /* latency: per seq, its slot time */
static int64_t *done_by_seq; /* latency: per seq, when its record line was seen */
static struct stats req_lat; /* publish request round trips */

static volatile sig_atomic_t interrupted;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_load: %s\n", what);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        die("out of memory");
    }
    return q;
}

static void stats_add(struct stats *s, int64_t v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile of sorted values, in milliseconds. */
static double pct_ms(const struct stats *s, double p)
{
    size_t k;
    if (s->n == 0) {
        return 0;
    }
    k = (size_t)(p / 100.0 * (double)s->n + 0.999999);
    if (k < 1) {
        k = 1;
    }
    if (k > s->n) {
        k = s->n;
    }
    return (double)s->v[k - 1] / 1e6;
}

/* ---------- target process sampling (/proc) ---------- */

static long proc_status_kb(int pid, const char *field)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            v = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* utime + stime of pid in clock ticks, or -1. */
static long long proc_cpu_ticks(int pid)
{
    char path[64], buf[2048];
    const char *p;
    unsigned long long ut, st;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    p = strrchr(buf, ')');
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        return -1;
    }
    return (long long)(ut + st);
}

static long rss_peak_kb;

static void sample_target(void)
{
    long rss;
    if (o.pid <= 0) {
        return;
    }
    rss = proc_status_kb(o.pid, "VmRSS");
    if (rss > rss_peak_kb) {
        rss_peak_kb = rss;
    }
}

static double client_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double load1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) {
            l = -1;
        }
        fclose(f);
    }
    return l;
}

/* ---------- request bodies ---------- */

static void b64_encode(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, k = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[k++] = tab[v >> 18 & 63];
        out[k++] = tab[v >> 12 & 63];
        out[k++] = tab[v >> 6 & 63];
        out[k++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[k++] = tab[v >> 18 & 63];
        out[k++] = tab[v >> 12 & 63];
        out[k++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[k++] = '=';
    }
    out[k] = 0;
}

/* A JSON object of exactly o.size bytes (at least a minimal one), base64-encoded once. */
static void make_payload(void)
{
    size_t n = o.size < 32 ? 32 : (size_t)o.size;
    char *raw = xrealloc(NULL, n + 1);
    int head = snprintf(raw, n + 1, "{\"type\":\"test\",\"pad\":\"");

    memset(raw + head, 'x', n - (size_t)head - 2);
    raw[n - 2] = '"';
    raw[n - 1] = '}';
    raw[n] = 0;
    b64_payload = xrealloc(NULL, (n + 2) / 3 * 4 + 1);
    b64_encode((unsigned char *)raw, n, b64_payload);
    b64_len = strlen(b64_payload);
    free(raw);
}

static void out_reserve(struct conn *c, size_t more)
{
    if (c->outlen + more > c->outcap) {
        c->outcap = (c->outlen + more) * 2;
        c->out = xrealloc(c->out, c->outcap);
    }
}

static void out_put(struct conn *c, const char *s, size_t n)
{
    out_reserve(c, n);
    memcpy(c->out + c->outlen, s, n);
    c->outlen += n;
}

static void out_puts(struct conn *c, const char *s)
{
    out_put(c, s, strlen(s));
}

static void build_publish(struct conn *c, const struct batch *b)
{
    char head[512], num[64];
    size_t body_at, body_len;
    int hl;

    c->outlen = c->outoff = 0;
    /* Room for the headers, written last once the body length is known. */
    out_reserve(c, sizeof(head) + (size_t)b->count * (b64_len + 128 + 64 * (size_t)o.nextra));
    c->outlen = sizeof(head);
    body_at = c->outlen;
    out_puts(c, "{\"messages\":[");
    for (int i = 0; i < b->count; i++) {
        out_puts(c, i ? ",{\"data\":\"" : "{\"data\":\"");
        out_put(c, b64_payload, b64_len);
        snprintf(num, sizeof(num), "%ld", b->first + i);
        out_puts(c, "\",\"attributes\":{\"seq\":\"");
        out_puts(c, o.seq_prefix);
        out_puts(c, num);
        out_puts(c, "\"");
        for (int k = 0; k < o.nextra; k++) {
            const char *eq = strchr(o.extra_attrs[k], '=');
            out_puts(c, ",\"");
            out_put(c, o.extra_attrs[k], (size_t)(eq - o.extra_attrs[k]));
            out_puts(c, "\":\"");
            out_puts(c, eq + 1);
            out_puts(c, "\"");
        }
        out_puts(c, "}}");
    }
    out_puts(c, "]}");
    body_len = c->outlen - body_at;
    hl = snprintf(head, sizeof(head),
                  "POST /v1/projects/%s/topics/%s:publish HTTP/1.1\r\nHost: %s:%d\r\n"
                  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                  o.project, o.topic, o.host, o.port, body_len);
    c->outoff = sizeof(head) - (size_t)hl;
    memcpy(c->out + c->outoff, head, (size_t)hl);
}

static void build_progress(struct conn *c)
{
    char head[512];
    int hl = snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", o.progress_path,
                      o.progress_host, o.progress_port);
    c->outlen = c->outoff = 0;
    out_put(c, head, (size_t)hl);
}

/* ---------- connections ---------- */

static int conn_open(struct conn *c)
{
    struct sockaddr_in sa;
    struct epoll_event ev;
    int one = 1;
    const char *host = c->is_progress ? o.progress_host : o.host;
    int port = c->is_progress ? o.progress_port : o.port;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        die("bad host");
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        die("socket");
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->inlen = 0;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        c->state = C_DEAD;
        return -1;
    }
    c->state = C_CONNECTING;
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        die("epoll_ctl");
    }
    return 0;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_DEAD;
    c->inlen = 0;
}

static void want_write(struct conn *c, int on)
{
    struct epoll_event ev;
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void requeue(const struct batch *b)
{
    if (retry_n == retry_cap) {
        retry_cap = retry_cap ? retry_cap * 2 : 64;
        retry_q = xrealloc(retry_q, retry_cap * sizeof(*retry_q));
    }
    retry_q[retry_n++] = *b;
}

/* The request on c failed without an answer: give its batch back and reconnect. */
static void conn_failed(struct conn *c)
{
    if (c->kind == R_PUBLISH) {
        inflight_msgs -= c->b.count;
        requeue(&c->b);
        n_errors++;
    } else if (c->kind == R_PROGRESS) {
        progress_pending = 0;
    }
    c->kind = R_NONE;
    conn_close(c);
    if (++c->reconnects > RECONNECT_LIMIT) {
        die("too many connection failures (is the server running?)");
    }
    n_reconnects++;
    conn_open(c);
}

static void flush_out(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                want_write(c, 1);
                return;
            }
            conn_failed(c);
            return;
        }
        c->outoff += (size_t)w;
    }
    want_write(c, 0);
}

static void start_request(struct conn *c, enum req_kind kind, const struct batch *b)
{
    c->kind = kind;
    if (kind == R_PUBLISH) {
        c->b = *b;
        inflight_msgs += b->count;
        build_publish(c, b);
    } else {
        build_progress(c);
    }
    c->sent_ns = now_ns();
    if (c->state == C_IDLE) {
        c->state = C_BUSY;
        flush_out(c);
    }
    /* still connecting: flushed once the connection is up */
}

/* ---------- responses ---------- */

static const char *find_header(const char *h, size_t hlen, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = h; p + nl < h + hlen; p++) {
        if ((p == h || p[-1] == '\n') && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            return p + nl + 1;
        }
    }
    return NULL;
}

/*
 * If c->in holds a whole response, decode its body in place and return the number of bytes it
 * took (>0), 0 when more is needed, -1 when it is malformed.
 */
static long parse_response(struct conn *c, int *status, char **body, size_t *blen)
{
    char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    const char *v;
    size_t hlen;

    if (!end) {
        return c->inlen > 65536 ? -1 : 0;
    }
    hlen = (size_t)(end - c->in) + 4;
    if (c->inlen < 12 || strncmp(c->in, "HTTP/1.", 7) != 0) {
        return -1;
    }
    *status = atoi(c->in + 9);
    v = find_header(c->in, hlen, "Content-Length");
    if (v) {
        size_t cl = strtoul(v, NULL, 10);
        if (c->inlen < hlen + cl) {
            return 0;
        }
        *body = c->in + hlen;
        *blen = cl;
        return (long)(hlen + cl);
    }
    v = find_header(c->in, hlen, "Transfer-Encoding");
    if (v && strstr(v, "chunked") && strstr(v, "chunked") < end) {
        /* De-chunk into a copy once the final chunk is there. */
        size_t pos = hlen, outn = 0;
        char *outb = xrealloc(NULL, c->inlen + 1);
        for (;;) {
            char *eol = memmem(c->in + pos, c->inlen - pos, "\r\n", 2);
            size_t sz;
            if (!eol) {
                free(outb);
                return 0;
            }
            sz = strtoul(c->in + pos, NULL, 16);
            pos = (size_t)(eol - c->in) + 2;
            if (sz == 0) {
                char *fin = memmem(c->in + pos - 2, c->inlen - pos + 2, "\r\n\r\n", 4);
                if (!fin) {
                    free(outb);
                    return 0;
                }
                memcpy(c->in + hlen, outb, outn);
                free(outb);
                *body = c->in + hlen;
                *blen = outn;
                return (long)((size_t)(fin - c->in) + 4);
            }
            if (c->inlen < pos + sz + 2) {
                free(outb);
                return 0;
            }
            memcpy(outb + outn, c->in + pos, sz);
            outn += sz;
            pos += sz + 2;
        }
    }
    return -1; /* bodies delimited by close are not expected from these servers */
}

/*
 * The value of the series named by o.progress_metric: an exact series when it has labels,
 * otherwise the sum of every series of that name. -1 when absent.
 */
static double metric_value(const char *text, size_t len)
{
    const char *m = o.progress_metric;
    size_t ml = strlen(m);
    int exact = strchr(m, '{') != NULL;
    double sum = -1;
    const char *p = text, *e = text + len;

    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        if ((size_t)(le - p) > ml && strncmp(p, m, ml) == 0 &&
            (p[ml] == ' ' || (!exact && p[ml] == '{'))) {
            const char *sp = p + ml;
            if (!exact) {
                while (sp < le && *sp != ' ') {
                    sp++;
                }
            }
            sum = (sum < 0 ? 0 : sum) + strtod(sp, NULL);
        }
        p = le + 1;
    }
    return sum;
}

static void on_response(struct conn *c, int status, const char *body, size_t blen)
{
    int64_t t = now_ns();
    enum req_kind kind = c->kind;

    c->kind = R_NONE;
    c->reconnects = 0;
    if (kind == R_PROGRESS) {
        progress_pending = 0;
        progress_last_ns = t;
        if (status == 200) {
            double v = metric_value(body, blen);
            if (v < 0) {
                v = 0; /* a counter not yet incremented is not exported */
            }
            progress_now = v;
            if (progress_base < 0) {
                progress_base = v;
            }
        }
        sample_target();
        return;
    }
    if (kind != R_PUBLISH) {
        return;
    }
    inflight_msgs -= c->b.count;
    if (status == 200) {
        published_ok += c->b.count;
        stats_add(&req_lat, t - c->sent_ns);
        (void)body;
        return;
    }
    if (status == 429 || status == 503) {
        n_429++;
        retry_not_before = t + RETRY_AFTER_429_NS;
        requeue(&c->b);
        return;
    }
    fprintf(stderr, "bench_load: publish answered %d: %.*s\n", status,
            (int)(blen > 300 ? 300 : blen), body);
    die("publish failed");
}

/* Whether the response head in buf (of len bytes) says the server closes the connection. */
static int conn_closing(const char *buf, size_t len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    const char *v = end ? find_header(buf, (size_t)(end - buf) + 2, "Connection") : NULL;
    if (!v) {
        return 0;
    }
    while (*v == ' ') {
        v++;
    }
    return strncasecmp(v, "close", 5) == 0;
}

static void on_readable(struct conn *c)
{
    for (;;) {
        ssize_t r;
        if (c->incap - c->inlen < 65536) {
            if (c->incap >= RESP_CAP) {
                conn_failed(c);
                return;
            }
            c->incap = c->incap ? c->incap * 2 : 131072;
            c->in = xrealloc(c->in, c->incap + 1);
        }
        r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        if (r <= 0) {
            conn_failed(c);
            return;
        }
        c->inlen += (size_t)r;
    }
    for (;;) {
        int status = 0;
        char *body = NULL;
        size_t blen = 0;
        long took = parse_response(c, &status, &body, &blen);
        if (took == 0) {
            return;
        }
        if (took < 0 || c->kind == R_NONE) {
            conn_failed(c);
            return;
        }
        int closing = conn_closing(c->in, (size_t)took);
        on_response(c, status, body, blen);
        memmove(c->in, c->in + took, c->inlen - (size_t)took);
        c->inlen -= (size_t)took;
        if (closing) {
            conn_close(c);
            n_reconnects++;
            conn_open(c);
            return;
        }
        c->state = C_IDLE;
    }
}

static void on_event(struct conn *c, uint32_t events)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (events & (EPOLLERR | EPOLLHUP)) {
            conn_failed(c);
            return;
        }
        if (!(events & EPOLLOUT)) {
            return;
        }
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            conn_failed(c);
            return;
        }
        if (c->kind != R_NONE) {
            c->state = C_BUSY;
            c->sent_ns = now_ns();
            flush_out(c);
        } else {
            c->state = C_IDLE;
            want_write(c, 0);
        }
        return;
    }
    if (events & EPOLLOUT) {
        flush_out(c);
        if (c->fd < 0 || c->state != C_BUSY) {
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(c);
    }
}

/* ---------- latency: the record file ---------- */

static int rec_fd = -1, ino_fd = -1;
static char *rec_buf;
static size_t rec_len, rec_cap;
static long seen_msgs, dup_lines;

static void record_open(void)
{
    rec_fd = open(o.record, O_RDONLY | O_CLOEXEC);
    if (rec_fd < 0) {
        fprintf(stderr, "bench_load: cannot open %s: %s\n", o.record, strerror(errno));
        exit(2);
    }
    lseek(rec_fd, 0, SEEK_END); /* only lines written from now on */
    ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ino_fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        inotify_add_watch(ino_fd, o.record, IN_MODIFY);
        epoll_ctl(ep, EPOLL_CTL_ADD, ino_fd, &ev);
    }
    rec_cap = 1 << 20;
    rec_buf = xrealloc(NULL, rec_cap);
}

static void record_line(const char *l, size_t n, int64_t t)
{
    const char *s = memmem(l, n, "\"seq\":\"", 7);
    size_t pl = strlen(o.seq_prefix);
    char *endp;
    long seq;

    if (!s) {
        return;
    }
    s += 7;
    if ((size_t)(l + n - s) < pl || strncmp(s, o.seq_prefix, pl) != 0) {
        return;
    }
    s += pl;
    if (!isdigit((unsigned char)*s)) {
        return;
    }
    seq = strtol(s, &endp, 10);
    if (*endp != '"' || seq < 0 || seq >= o.messages) {
        return;
    }
    if (done_by_seq[seq]) {
        dup_lines++;
        return;
    }
    done_by_seq[seq] = t;
    seen_msgs++;
}

static void record_read(void)
{
    char drain[4096];
    int64_t t = now_ns();

    if (ino_fd >= 0) {
        while (read(ino_fd, drain, sizeof(drain)) > 0) {
        }
    }
    for (;;) {
        ssize_t r;
        size_t start = 0;
        if (rec_cap - rec_len < 65536) {
            rec_cap *= 2;
            rec_buf = xrealloc(rec_buf, rec_cap);
        }
        r = read(rec_fd, rec_buf + rec_len, rec_cap - rec_len);
        if (r <= 0) {
            return;
        }
        rec_len += (size_t)r;
        for (;;) {
            char *nl = memchr(rec_buf + start, '\n', rec_len - start);
            if (!nl) {
                break;
            }
            record_line(rec_buf + start, (size_t)(nl - rec_buf - start), t);
            start = (size_t)(nl - rec_buf) + 1;
        }
        memmove(rec_buf, rec_buf + start, rec_len - start);
        rec_len -= start;
    }
}

/* ---------- the run ---------- */

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void poll_progress(int64_t t)
{
    if (!o.progress_metric || progress_pending || t - progress_last_ns < METRICS_EVERY_NS) {
        return;
    }
    if (progress_conn.state == C_DEAD) {
        conn_open(&progress_conn);
    }
    if (progress_conn.state != C_IDLE && progress_conn.state != C_CONNECTING) {
        return;
    }
    progress_pending = 1;
    start_request(&progress_conn, R_PROGRESS, NULL);
}

static long processed(void)
{
    if (progress_base < 0 || progress_now < 0) {
        return 0;
    }
    return (long)(progress_now - progress_base);
}

/* The next batch to send at time t, or 0 when none is due. */
static int next_batch(int64_t t, int64_t t0, struct batch *b)
{
    if (retry_n > 0) {
        if (t < retry_not_before) {
            return 0;
        }
        *b = retry_q[0];
        memmove(retry_q, retry_q + 1, --retry_n * sizeof(*retry_q));
        return 1;
    }
    if (next_seq >= o.messages) {
        return 0;
    }
    b->first = next_seq;
    b->count = (int)(o.messages - next_seq < o.batch ? o.messages - next_seq : o.batch);
    b->due_ns = t;
    if (o.rate > 0) {
        b->due_ns = t0 + (int64_t)((double)next_seq / o.rate * 1e9);
        if (b->due_ns > t) {
            return 0;
        }
    }
    if (o.max_backlog > 0 &&
        published_ok + inflight_msgs + b->count - processed() > o.max_backlog) {
        return 0;
    }
    next_seq += b->count;
    if (due_by_seq) {
        for (int i = 0; i < b->count; i++) {
            due_by_seq[b->first + i] = b->due_ns;
        }
    }
    return 1;
}

/* How long epoll may sleep before something is due. */
static int wait_ms(int64_t t, int64_t t0)
{
    int64_t until = t + 50 * 1000000LL;
    if (o.progress_metric && !progress_pending) {
        int64_t p = progress_last_ns + METRICS_EVERY_NS;
        until = p < until ? p : until;
    }
    if (retry_n > 0 && retry_not_before < until) {
        until = retry_not_before;
    }
    if (o.rate > 0 && next_seq < o.messages) {
        int64_t d = t0 + (int64_t)((double)next_seq / o.rate * 1e9);
        until = d < until ? d : until;
    }
    if (o.mode == MODE_LATENCY) {
        int64_t d = t + 5 * 1000000LL; /* re-read the record file even if inotify is quiet */
        until = d < until ? d : until;
    }
    if (until <= t) {
        return 0;
    }
    return (int)((until - t + 999999) / 1000000);
}

static int all_done(void)
{
    if (published_ok < o.messages) {
        return 0;
    }
    if (o.mode == MODE_LATENCY) {
        return seen_msgs >= o.messages;
    }
    return !o.progress_metric || processed() >= o.messages;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_load throughput|latency [options]\n"
            "  --url http://127.0.0.1:PORT   publish endpoint (loopback only)\n"
            "  --project P --topic T          (bench, test-events)\n"
            "  --messages M                   throughput: total (200000)\n"
            "  --batch B                      messages per request (1000; latency 10)\n"
            "  --conns C                      keep-alive connections (4)\n"
            "  --size S                       payload bytes (1024)\n"
            "  --rate R                       msg/s pacing (latency 1000; throughput 0 = none)\n"
            "  --duration S --warmup S        latency: seconds sent, seconds left out (10, 1)\n"
            "  --record FILE                  latency: the test processor's record file\n"
            "  --progress-url URL             Prometheus text to poll (URL/metrics)\n"
            "  --progress-metric SERIES       counter of processed messages\n"
            "  --max-backlog N                publish only while published-processed < N\n"
            "  --seq-prefix S                 prefix of the seq attribute (\"\")\n"
            "  --attr K=V                     extra attribute on every message (repeatable)\n"
            "  --pid PID                      sample RSS and CPU of this process\n"
            "  --timeout S                    give up after S seconds (120)\n");
    exit(2);
}

static void parse_url(const char *url, char *host, size_t hostsz, int *port, char *path,
                      size_t pathsz)
{
    const char *p = url, *colon, *slash;
    if (strncmp(p, "http://", 7) != 0) {
        die("only http:// URLs are supported");
    }
    p += 7;
    colon = strchr(p, ':');
    slash = strchr(p, '/');
    if (!colon || (slash && slash < colon) || (size_t)(colon - p) >= hostsz) {
        die("URL needs host:port");
    }
    snprintf(host, hostsz, "%.*s", (int)(colon - p), p);
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, hostsz, "127.0.0.1");
    }
    if (strncmp(host, "127.", 4) != 0) {
        die("refusing a non-loopback target: this benchmark only talks to 127.0.0.0/8");
    }
    *port = atoi(colon + 1);
    if (path) {
        snprintf(path, pathsz, "%s", slash ? slash : "/");
    }
}

static void parse_args(int argc, char **argv)
{
    const char *progress_url = NULL;
    int timeout_set = 0;

    if (argc < 2) {
        usage();
    }
    if (strcmp(argv[1], "throughput") == 0) {
        o.mode = MODE_THROUGHPUT;
    } else if (strcmp(argv[1], "latency") == 0) {
        o.mode = MODE_LATENCY;
    } else {
        usage();
    }
    snprintf(o.host, sizeof(o.host), "127.0.0.1");
    o.port = 8080;
    snprintf(o.project, sizeof(o.project), "bench");
    snprintf(o.topic, sizeof(o.topic), "test-events");
    o.messages = 200000;
    o.batch = o.mode == MODE_LATENCY ? 10 : 1000;
    o.conns = 4;
    o.size = 1024;
    o.rate = o.mode == MODE_LATENCY ? 1000 : 0;
    o.duration = 10;
    o.warmup = 1;
    o.timeout = 120;
    o.seq_prefix = "";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
        }
        i++;
        if (strcmp(a, "--url") == 0) {
            parse_url(v, o.host, sizeof(o.host), &o.port, NULL, 0);
        } else if (strcmp(a, "--project") == 0) {
            snprintf(o.project, sizeof(o.project), "%s", v);
        } else if (strcmp(a, "--topic") == 0) {
            snprintf(o.topic, sizeof(o.topic), "%s", v);
        } else if (strcmp(a, "--messages") == 0) {
            o.messages = atol(v);
        } else if (strcmp(a, "--batch") == 0) {
            o.batch = atoi(v);
        } else if (strcmp(a, "--conns") == 0) {
            o.conns = atoi(v);
        } else if (strcmp(a, "--size") == 0) {
            o.size = atoi(v);
        } else if (strcmp(a, "--rate") == 0) {
            o.rate = atof(v);
        } else if (strcmp(a, "--duration") == 0) {
            o.duration = atof(v);
        } else if (strcmp(a, "--warmup") == 0) {
            o.warmup = atof(v);
        } else if (strcmp(a, "--timeout") == 0) {
            o.timeout = atof(v);
            timeout_set = 1;
        } else if (strcmp(a, "--record") == 0) {
            o.record = v;
        } else if (strcmp(a, "--progress-url") == 0) {
            progress_url = v;
        } else if (strcmp(a, "--progress-metric") == 0) {
            o.progress_metric = v;
        } else if (strcmp(a, "--max-backlog") == 0) {
            o.max_backlog = atol(v);
        } else if (strcmp(a, "--seq-prefix") == 0) {
            o.seq_prefix = v;
        } else if (strcmp(a, "--attr") == 0) {
            if (o.nextra == MAX_EXTRA_ATTRS || !strchr(v, '=')) {
                usage();
            }
            o.extra_attrs[o.nextra++] = v;
        } else if (strcmp(a, "--pid") == 0) {
            o.pid = atoi(v);
        } else {
            usage();
        }
    }
    if (o.batch < 1 || o.batch > MAX_BATCH || o.conns < 1 || o.conns > MAX_CONNS || o.size < 0 ||
        o.size > 1000000 || o.timeout <= 0) {
        die("option out of range (batch 1..1000, conns 1..256, size 0..1000000)");
    }
    if (o.mode == MODE_LATENCY) {
        if (!o.record || o.rate <= 0 || o.duration <= 0) {
            die("latency needs --record FILE, --rate > 0 and --duration > 0");
        }
        o.messages = (long)(o.rate * o.duration);
        if (!timeout_set) {
            o.timeout = o.duration + 30;
        }
    }
    if (o.messages < 1 || o.messages > 100000000) {
        die("--messages must be 1..100000000");
    }
    if (o.mode == MODE_THROUGHPUT && o.progress_metric && !progress_url) {
        die("--progress-metric needs --progress-url");
    }
    if (progress_url) {
        parse_url(progress_url, o.progress_host, sizeof(o.progress_host), &o.progress_port,
                  o.progress_path, sizeof(o.progress_path));
        if (!o.progress_metric) {
            o.progress_metric = "dr_messages_processed_total";
        }
    }
}

static void report_latency(int64_t t0, double elapsed)
{
    struct stats s = {0};
    int64_t from = t0 + (int64_t)(o.warmup * 1e9);
    long missing = 0;

    for (long i = 0; i < o.messages; i++) {
        if (due_by_seq[i] < from) {
            continue;
        }
        if (!done_by_seq[i]) {
            missing++;
            continue;
        }
        stats_add(&s, done_by_seq[i] - due_by_seq[i]);
    }
    qsort(s.v, s.n, sizeof(*s.v), cmp_i64);
    printf("latency: %zu messages measured (first %.1f s left out), %ld not seen, "
           "%ld duplicate lines\n",
           s.n, o.warmup, missing, dup_lines);
    printf("publish->processed ms: p50 %.2f  p95 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
           pct_ms(&s, 50), pct_ms(&s, 95), pct_ms(&s, 99), pct_ms(&s, 99.9), pct_ms(&s, 100));
    printf("RESULT mode=latency rate=%.0f batch=%d conns=%d size=%d sent=%ld measured=%zu "
           "missing=%ld elapsed_s=%.2f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f p999_ms=%.2f "
           "max_ms=%.2f",
           o.rate, o.batch, o.conns, o.size, published_ok, s.n, missing, elapsed, pct_ms(&s, 50),
           pct_ms(&s, 95), pct_ms(&s, 99), pct_ms(&s, 99.9), pct_ms(&s, 100));
    free(s.v);
}

int main(int argc, char **argv)
{
    int64_t t0, t_pub = 0, t_99 = 0, t_end, deadline, last_sample = 0;
    long long cpu0 = -1, cpu1;
    struct epoll_event evs[64];
    struct batch b;
    double elapsed;

    parse_args(argc, argv);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    make_payload();
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        die("epoll_create1");
    }
    if (o.mode == MODE_LATENCY) {
        due_by_seq = calloc((size_t)o.messages, sizeof(*due_by_seq));
        done_by_seq = calloc((size_t)o.messages, sizeof(*done_by_seq));
        if (!due_by_seq || !done_by_seq) {
            die("out of memory");
        }
        record_open();
    }
    for (int i = 0; i < o.conns; i++) {
        conns[i].fd = -1;
        conn_open(&conns[i]);
    }
    progress_conn.fd = -1;
    progress_conn.is_progress = 1;
    progress_conn.state = C_DEAD;

    /* The baseline of the progress counter, before anything is sent. */
    deadline = now_ns() + 10 * NS;
    while (o.progress_metric && progress_base < 0 && !interrupted) {
        int n;
        if (now_ns() > deadline) {
            die("no answer from --progress-url");
        }
        poll_progress(now_ns());
        n = epoll_wait(ep, evs, 64, 20);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr) {
                on_event(evs[i].data.ptr, evs[i].events);
            }
        }
    }

    if (o.pid > 0) {
        cpu0 = proc_cpu_ticks(o.pid);
        sample_target();
    }
    t0 = now_ns();
    deadline = t0 + (int64_t)(o.timeout * 1e9);
    while (!interrupted && !all_done()) {
        int64_t t = now_ns();
        int n;

        if (t > deadline) {
            fprintf(stderr, "bench_load: timed out after %.0f s\n", o.timeout);
            break;
        }
        for (int i = 0; i < o.conns; i++) {
            struct conn *c = &conns[i];
            if (c->state == C_DEAD) {
                conn_open(c);
            }
            if ((c->state == C_IDLE || c->state == C_CONNECTING) && c->kind == R_NONE &&
                next_batch(t, t0, &b)) {
                start_request(c, R_PUBLISH, &b);
            }
        }
        if (!t_pub && published_ok >= o.messages) {
            t_pub = t;
        }
        if (!t_99 && o.progress_metric && processed() * 100 >= o.messages * 99) {
            t_99 = t;
        }
        poll_progress(t);
        if (t - last_sample > 100 * 1000000LL) {
            sample_target();
            last_sample = t;
        }
        n = epoll_wait(ep, evs, 64, wait_ms(t, t0));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr) {
                on_event(evs[i].data.ptr, evs[i].events);
            } else {
                record_read();
            }
        }
        if (o.mode == MODE_LATENCY) {
            record_read();
        }
    }
    t_end = now_ns();
    if (!t_pub && published_ok >= o.messages) {
        t_pub = t_end;
    }
    elapsed = (double)(t_end - t0) / 1e9;
    qsort(req_lat.v, req_lat.n, sizeof(*req_lat.v), cmp_i64);
    sample_target();
    cpu1 = o.pid > 0 ? proc_cpu_ticks(o.pid) : -1;

    printf("target %s:%d topic %s: %ld of %ld messages published (%d B payload, batches of "
           "%d, %d connections), %ld answered 429/503, %ld reconnects\n",
           o.host, o.port, o.topic, published_ok, o.messages, o.size, o.batch, o.conns, n_429,
           n_reconnects);
    printf("publish request round trip ms: p50 %.2f  p99 %.2f  max %.2f\n", pct_ms(&req_lat, 50),
           pct_ms(&req_lat, 99), pct_ms(&req_lat, 100));
    printf("this client: %.2f cores; load average at the end %.2f\n", client_cpu_s() / elapsed,
           load1());
    if (o.pid > 0) {
        double cores = cpu0 >= 0 && cpu1 >= 0
                           ? (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) / elapsed
                           : -1;
        printf("target pid %d: RSS peak %ld KiB, end %ld KiB, HWM %ld KiB, CPU %.2f cores "
               "(%.1f us per message)\n",
               o.pid, rss_peak_kb, proc_status_kb(o.pid, "VmRSS"), proc_status_kb(o.pid, "VmHWM"),
               cores,
               cores >= 0 && published_ok > 0 ? cores * elapsed * 1e6 / (double)published_ok
                                              : -1.0);
    }
    if (o.mode == MODE_LATENCY) {
        report_latency(t0, elapsed);
    } else {
        double pub_s = t_pub ? (double)(t_pub - t0) / 1e9 : 0;
        long done = o.progress_metric ? processed() : published_ok;
        int complete = done >= o.messages && published_ok >= o.messages;
        printf("publish-only: %.0f msg/s (%.2f s)\n", pub_s > 0 ? (double)published_ok / pub_s : 0,
               pub_s);
        if (!t_99) {
            t_99 = t_end;
        }
        printf("end to end: %ld processed in %.2f s = %.0f msg/s%s; the first 99%% in %.2f s = "
               "%.0f msg/s\n",
               done, elapsed, (double)done / elapsed, complete ? "" : " (INCOMPLETE)",
               (double)(t_99 - t0) / 1e9, 0.99 * (double)o.messages / ((double)(t_99 - t0) / 1e9));
        printf("RESULT mode=throughput messages=%ld batch=%d conns=%d size=%d published=%ld "
               "processed=%ld complete=%d publish_s=%.3f publish_rate=%.0f e2e_s=%.3f "
               "e2e_rate=%.0f e2e99_s=%.3f e2e99_rate=%.0f",
               o.messages, o.batch, o.conns, o.size, published_ok, done, complete, pub_s,
               pub_s > 0 ? (double)published_ok / pub_s : 0, elapsed, (double)done / elapsed,
               (double)(t_99 - t0) / 1e9, 0.99 * (double)o.messages / ((double)(t_99 - t0) / 1e9));
    }
    printf(" req_p50_ms=%.2f req_p99_ms=%.2f n429=%ld", pct_ms(&req_lat, 50), pct_ms(&req_lat, 99),
           n_429);
    if (o.pid > 0) {
        double secs =
            cpu0 >= 0 && cpu1 >= 0 ? (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK) : -1.0;
        /* CPU per message does not depend on how much of the machine others were using. */
        printf(" rss_peak_kb=%ld cpu_cores=%.2f cpu_us_per_msg=%.1f", rss_peak_kb,
               secs >= 0 ? secs / elapsed : -1.0,
               secs >= 0 && published_ok > 0 ? secs * 1e6 / (double)published_ok : -1.0);
    }
    printf(" client_cores=%.2f load1=%.2f\n", client_cpu_s() / elapsed, load1());
    return interrupted ? 130 : (all_done() ? 0 : 1);
}
