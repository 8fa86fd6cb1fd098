/*
 * A tiny HTTP/1.1 server for tests: one accept thread and one thread per connection, plain
 * blocking sockets on 127.0.0.1 and an ephemeral port. Keep-alive, Content-Length request
 * bodies, answers with Content-Length or chunked, delayed answers and answers that never come.
 * The handler fills a ts_resp for each request; calls are serialised by the server's mutex, so
 * handlers may update shared counters without locking.
 */
#ifndef DR_TEST_TESTSRV_H
#define DR_TEST_TESTSRV_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define TS_MAX_CONNS 1024
#define TS_MAX_HEAD  65536

struct ts_req {
    char method[16];
    char path[2048];
    char head[TS_MAX_HEAD]; /* the raw header block */
    char *body;
    size_t body_len;
};

struct ts_resp {
    int status;
    char *body; /* malloc'ed; the server frees it */
    size_t body_len;
    const char *content_type;
    char extra[512]; /* extra header lines, each ending in \r\n */
    int chunked;
    int delay_ms;
    int hang; /* never answer; the connection stays open until the server stops */
};

typedef void (*ts_handler)(const struct ts_req *req, struct ts_resp *resp, void *ud);

struct testsrv {
    int lfd;
    int port;
    ts_handler handler;
    void *ud;
    pthread_t accept_thr;
    pthread_mutex_t mu;
    int stopping;
    int fds[TS_MAX_CONNS];
    pthread_t thr[TS_MAX_CONNS];
    int nconn;      /* connections accepted */
    int nreq;       /* requests answered or being answered */
    int active;     /* requests being handled right now */
    int max_active; /* the most requests handled at once */
};

struct ts_conn {
    struct testsrv *srv;
    int fd;
    int idx;
};

static inline int ts_stopping(struct testsrv *s)
{
    int v;
    pthread_mutex_lock(&s->mu);
    v = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* Copies the value of header name (case-insensitive) into out; 0 if present, -1 if not. */
static inline int ts_header(const struct ts_req *req, const char *name, char *out, size_t outsz)
{
    size_t nlen = strlen(name);
    const char *p = strstr(req->head, "\r\n");

    while (p && p[2] != '\0') {
        const char *line = p + 2;
        const char *eol = strstr(line, "\r\n");
        if (!eol) {
            break;
        }
        if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t n;
            while (*v == ' ') {
                v++;
            }
            n = (size_t)(eol - v);
            if (n >= outsz) {
                n = outsz - 1;
            }
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
        p = eol;
    }
    return -1;
}

static inline int ts_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sleeps up to ms, returning early (-1) when the server stops. */
static inline int ts_wait(struct testsrv *s, int ms)
{
    while (ms > 0) {
        int step = ms < 10 ? ms : 10;
        if (ts_stopping(s)) {
            return -1;
        }
        usleep((useconds_t)step * 1000);
        ms -= step;
    }
    return 0;
}

/* No receive timeout on purpose: a keep-alive connection waits for its client's next request
 * as long as the client keeps it open, and ts_stop() shuts the sockets down, which ends these
 * reads. The tests' own deadlines are on the client side, where an answer is awaited. */
static inline int ts_read_request(int fd, char *buf, size_t *have, struct ts_req *req)
{
    char *end;
    size_t cl = 0;
    char v[32];

    for (;;) {
        buf[*have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end) {
            break;
        }
        if (*have >= TS_MAX_HEAD - 1) {
            return -1;
        }
        ssize_t r = recv(fd, buf + *have, TS_MAX_HEAD - 1 - *have, 0);
        if (r <= 0) {
            return -1;
        }
        *have += (size_t)r;
    }
    size_t hlen = (size_t)(end - buf) + 4;
    memcpy(req->head, buf, hlen);
    req->head[hlen] = '\0';
    if (sscanf(req->head, "%15s %2047s", req->method, req->path) != 2) {
        return -1;
    }
    if (ts_header(req, "Content-Length", v, sizeof(v)) == 0) {
        cl = (size_t)strtoul(v, NULL, 10);
    }
    req->body = malloc(cl + 1);
    req->body_len = cl;
    size_t from_buf = *have - hlen < cl ? *have - hlen : cl;
    memcpy(req->body, buf + hlen, from_buf);
    size_t got = from_buf;
    while (got < cl) {
        ssize_t r = recv(fd, req->body + got, cl - got, 0);
        if (r <= 0) {
            free(req->body);
            req->body = NULL;
            return -1;
        }
        got += (size_t)r;
    }
    req->body[cl] = '\0';
    memmove(buf, buf + hlen + from_buf, *have - hlen - from_buf);
    *have -= hlen + from_buf;
    return 0;
}

static inline int ts_send_resp(int fd, const struct ts_resp *r)
{
    char head[1024];
    int n;

    if (r->chunked) {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n%s\r\n",
                     r->status, r->content_type ? r->content_type : "text/plain", r->extra);
        if (ts_send_all(fd, head, (size_t)n)) {
            return -1;
        }
        for (size_t off = 0; off < r->body_len; off += 4096) {
            size_t len = r->body_len - off < 4096 ? r->body_len - off : 4096;
            n = snprintf(head, sizeof(head), "%zx\r\n", len);
            if (ts_send_all(fd, head, (size_t)n) || ts_send_all(fd, r->body + off, len) ||
                ts_send_all(fd, "\r\n", 2)) {
                return -1;
            }
        }
        return ts_send_all(fd, "0\r\n\r\n", 5);
    }
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", r->status,
                 r->content_type ? r->content_type : "text/plain", r->body_len, r->extra);
    if (ts_send_all(fd, head, (size_t)n)) {
        return -1;
    }
    return r->body_len ? ts_send_all(fd, r->body, r->body_len) : 0;
}

static inline void *ts_conn_main(void *arg)
{
    struct ts_conn *c = arg;
    struct testsrv *s = c->srv;
    static __thread char buf[TS_MAX_HEAD];
    struct ts_req *req = malloc(sizeof(*req));
    size_t have = 0;

    while (!ts_stopping(s)) {
        struct ts_resp resp;
        memset(&resp, 0, sizeof(resp));
        resp.status = 200;
        if (ts_read_request(c->fd, buf, &have, req)) {
            break;
        }
        pthread_mutex_lock(&s->mu);
        s->nreq++;
        s->active++;
        if (s->active > s->max_active) {
            s->max_active = s->active;
        }
        s->handler(req, &resp, s->ud);
        pthread_mutex_unlock(&s->mu);
        free(req->body);
        req->body = NULL;
        int rc = 0;
        if (resp.hang) {
            ts_wait(s, 1 << 30);
            rc = -1;
        } else if (resp.delay_ms && ts_wait(s, resp.delay_ms)) {
            rc = -1;
        }
        if (rc == 0) {
            rc = ts_send_resp(c->fd, &resp);
        }
        free(resp.body);
        pthread_mutex_lock(&s->mu);
        s->active--;
        pthread_mutex_unlock(&s->mu);
        if (rc) {
            break;
        }
    }
    free(req);
    pthread_mutex_lock(&s->mu);
    close(c->fd);
    s->fds[c->idx] = -1;
    pthread_mutex_unlock(&s->mu);
    free(c);
    return NULL;
}

static inline void *ts_accept_main(void *arg)
{
    struct testsrv *s = arg;

    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        pthread_mutex_lock(&s->mu);
        if (s->stopping || s->nconn >= TS_MAX_CONNS) {
            pthread_mutex_unlock(&s->mu);
            close(fd);
            continue;
        }
        struct ts_conn *c = malloc(sizeof(*c));
        c->srv = s;
        c->fd = fd;
        c->idx = s->nconn;
        s->fds[c->idx] = fd;
        pthread_create(&s->thr[c->idx], NULL, ts_conn_main, c);
        s->nconn++;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* Starts the server; 0 on success. */
static inline int ts_start(struct testsrv *s, ts_handler h, void *ud)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int one = 1;

    memset(s, 0, sizeof(*s));
    s->handler = h;
    s->ud = ud;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->lfd < 0) {
        return -1;
    }
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(s->lfd, 512) ||
        getsockname(s->lfd, (struct sockaddr *)&a, &alen)) {
        close(s->lfd);
        return -1;
    }
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->accept_thr, NULL, ts_accept_main, s) ? -1 : 0;
}

static inline void ts_stop(struct testsrv *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    for (int i = 0; i < s->nconn; i++) {
        if (s->fds[i] >= 0) {
            shutdown(s->fds[i], SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&s->mu);
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->accept_thr, NULL);
    close(s->lfd);
    pthread_mutex_lock(&s->mu);
    n = s->nconn;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n; i++) {
        pthread_join(s->thr[i], NULL);
    }
    pthread_mutex_destroy(&s->mu);
}

static inline int ts_count(struct testsrv *s, const int *field)
{
    int v;
    pthread_mutex_lock(&s->mu);
    v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* A URL on the server: out needs 64 + strlen(path) bytes. */
static inline void ts_url(const struct testsrv *s, const char *path, char *out, size_t outsz)
{
    snprintf(out, outsz, "http://127.0.0.1:%d%s", s->port, path);
}

#endif
