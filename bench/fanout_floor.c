/*
 * The kernel's floor under a fan-out on this machine: what one room of N subscribers costs when
 * the server does nothing but write() the same small message to N loopback TCP sockets, and the
 * subscribers do nothing but read() it. No framing, no JSON, no store: any real server (and
 * bench_ws_load against it) can only be slower. bench/REALTIME.md compares it with step (a).
 *
 *   bench_fanout_floor [--sockets N] [--rate EV/S] [--duration S] [--bytes B]
 *                      [--writers W] [--readers R] [--pin] [--label X]
 *
 * Each event is written at its timer slot (start + k / rate) to every socket, by W writer
 * threads that split the sockets; the first 8 bytes carry the slot time (CLOCK_MONOTONIC), so a
 * late write counts against the latency (no coordinated omission). R reader threads split the
 * client ends and record, per message, read time - slot time. Both ends set TCP_NODELAY. With
 * --pin the readers run on the last CPU and the writers on the others, so the scheduler cannot
 * put a reader on its writer's core (a reader woken by a write is otherwise often moved there).
 *
 * Output: one line "result key=value ..." with the keys bench_ws_load prints where they mean the
 * same (bench/run-realtime puts both in one table), and the median and maximum time the writers
 * took to write one event to all their sockets.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16

static int nsock = 1000, nwriters = 1, nreaders = 1, msg_bytes = 200;
static double rate = 100, duration = 10;
static const char *label = "floor";
static int pin; /* --pin: readers on the last CPU, writers on the others */
static int *srv_fd, *cli_fd;
static int64_t start_ns;
static long events;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_ms(const int64_t *v, size_t n, double p)
{
    if (!n) {
        return 0;
    }
    size_t i = (size_t)(p / 100 * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

static void pin_to(int readers)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;

    if (!pin || ncpu < 2) {
        return;
    }
    CPU_ZERO(&set);
    if (readers) {
        CPU_SET((int)ncpu - 1, &set);
    } else {
        for (int c = 0; c < ncpu - 1; c++) {
            CPU_SET(c, &set);
        }
    }
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* ---- writers ---- */

struct writer {
    pthread_t th;
    int lo, hi;       /* sockets [lo, hi) */
    int64_t *took_ns; /* per event: first write to last */
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char *msg = xcalloc(1, (size_t)msg_bytes);

    memset(msg, 'x', (size_t)msg_bytes);
    pin_to(0);
    for (long k = 0; k < events; k++) {
        int64_t slot = start_ns + (int64_t)((double)k * 1e9 / rate);
        sleep_until(slot);
        memcpy(msg, &slot, sizeof(slot));
        int64_t t0 = mono_ns();
        for (int i = w->lo; i < w->hi; i++) {
            ssize_t n = write(srv_fd[i], msg, (size_t)msg_bytes);
            if (n != msg_bytes) { /* 200 bytes into an empty socket buffer: never short */
                fprintf(stderr, "write to socket %d: %zd (%s)\n", i, n, strerror(errno));
                exit(1);
            }
        }
        w->took_ns[k] = mono_ns() - t0;
    }
    free(msg);
    return NULL;
}

/* ---- readers ---- */

struct reader {
    pthread_t th;
    int lo, hi;
    int64_t *lat; /* one per delivery */
    size_t n, cap;
    char *pending; /* per socket: a partial message */
    int *have;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    int ep = epoll_create1(0);
    size_t expected = (size_t)(r->hi - r->lo) * (size_t)events;
    struct epoll_event ev[256];
    char buf[64 * 1024];

    pin_to(1);
    for (int i = r->lo; i < r->hi; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cli_fd[i], &e);
    }
    while (r->n < expected) {
        int ne = epoll_wait(ep, ev, 256, 2000);
        if (ne == 0) {
            break; /* nothing for 2 s after the last event: lost deliveries are reported */
        }
        int64_t now = mono_ns();
        for (int e = 0; e < ne; e++) {
            int i = (int)ev[e].data.u32;
            ssize_t got = read(cli_fd[i], buf, sizeof(buf));
            char *p = r->pending + (size_t)(i - r->lo) * (size_t)msg_bytes;
            int *have = &r->have[i - r->lo];
            for (ssize_t off = 0; off < got;) {
                size_t take = (size_t)(msg_bytes - *have);
                if (take > (size_t)(got - off)) {
                    take = (size_t)(got - off);
                }
                memcpy(p + *have, buf + off, take);
                *have += (int)take;
                off += (ssize_t)take;
                if (*have == msg_bytes && r->n < r->cap) {
                    int64_t slot;
                    memcpy(&slot, p, sizeof(slot));
                    r->lat[r->n++] = now - slot;
                    *have = 0;
                }
            }
        }
    }
    close(ep);
    return NULL;
}

/* ---- set-up ---- */

static void connect_all(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);

    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) != 0 || listen(l, 4096) != 0) {
        perror("listen");
        exit(1);
    }
    srv_fd = xcalloc((size_t)nsock, sizeof(int));
    cli_fd = xcalloc((size_t)nsock, sizeof(int));
    for (int i = 0; i < nsock; i++) {
        cli_fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (cli_fd[i] < 0 || connect(cli_fd[i], (struct sockaddr *)&a, sizeof(a)) != 0 ||
            (srv_fd[i] = accept(l, NULL, NULL)) < 0) {
            fprintf(stderr, "connection %d: %s (raise ulimit -n)\n", i, strerror(errno));
            exit(1);
        }
        setsockopt(cli_fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(srv_fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    close(l);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_fanout_floor [--sockets N] [--rate EV/S] [--duration S] "
                    "[--bytes B] [--writers W] [--readers R] [--pin] [--label X]\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sockets", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"bytes", required_argument, NULL, 'b'},
        {"writers", required_argument, NULL, 'w'},
        {"readers", required_argument, NULL, 'R'},
        {"label", required_argument, NULL, 'l'},
        {"pin", no_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            nsock = atoi(optarg);
            break;
        case 'r':
            rate = atof(optarg);
            break;
        case 'd':
            duration = atof(optarg);
            break;
        case 'b':
            msg_bytes = atoi(optarg);
            break;
        case 'w':
            nwriters = atoi(optarg);
            break;
        case 'R':
            nreaders = atoi(optarg);
            break;
        case 'l':
            label = optarg;
            break;
        case 'p':
            pin = 1;
            break;
        default:
            usage();
        }
    }
    if (nsock < 1 || rate <= 0 || duration <= 0 || msg_bytes < 8 || msg_bytes > 65536 ||
        nwriters < 1 || nwriters > MAX_THREADS || nreaders < 1 || nreaders > MAX_THREADS ||
        nwriters > nsock || nreaders > nsock) {
        usage();
    }
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    struct writer w[MAX_THREADS];
    struct reader r[MAX_THREADS];
    size_t delivered = 0, k = 0;

    parse_args(argc, argv);
    events = (long)(rate * duration);
    if (events < 1) {
        events = 1;
    }
    connect_all();
    for (int t = 0; t < nreaders; t++) {
        r[t] = (struct reader){.lo = nsock * t / nreaders, .hi = nsock * (t + 1) / nreaders};
        r[t].cap = (size_t)(r[t].hi - r[t].lo) * (size_t)events;
        r[t].lat = xcalloc(r[t].cap, sizeof(int64_t));
        r[t].pending = xcalloc((size_t)(r[t].hi - r[t].lo), (size_t)msg_bytes);
        r[t].have = xcalloc((size_t)(r[t].hi - r[t].lo), sizeof(int));
        pthread_create(&r[t].th, NULL, reader_main, &r[t]);
    }
    start_ns = mono_ns() + 200000000; /* readers are in epoll_wait by then */
    double cpu0 = cpu_s();
    for (int t = 0; t < nwriters; t++) {
        w[t] = (struct writer){.lo = nsock * t / nwriters, .hi = nsock * (t + 1) / nwriters};
        w[t].took_ns = xcalloc((size_t)events, sizeof(int64_t));
        pthread_create(&w[t].th, NULL, writer_main, &w[t]);
    }
    for (int t = 0; t < nwriters; t++) {
        pthread_join(w[t].th, NULL);
    }
    for (int t = 0; t < nreaders; t++) {
        pthread_join(r[t].th, NULL);
        delivered += r[t].n;
    }
    double cpu = cpu_s() - cpu0;

    int64_t *lat = xcalloc(delivered, sizeof(int64_t));
    int64_t *took = xcalloc((size_t)events * (size_t)nwriters, sizeof(int64_t));
    for (int t = 0; t < nreaders; t++) {
        memcpy(lat + k, r[t].lat, r[t].n * sizeof(int64_t));
        k += r[t].n;
    }
    for (int t = 0; t < nwriters; t++) {
        memcpy(took + (size_t)t * (size_t)events, w[t].took_ns, (size_t)events * sizeof(int64_t));
    }
    qsort(lat, delivered, sizeof(int64_t), cmp_i64);
    qsort(took, (size_t)events * (size_t)nwriters, sizeof(int64_t), cmp_i64);
    size_t nt = (size_t)events * (size_t)nwriters;
    printf(
        "result label=%s target=kernel scenario=floor clients=%d ready=%d rate=%g events=%ld "
        "bytes=%d writers=%d readers=%d pinned=%d expected=%zu delivered=%zu delivered_per_s=%.0f "
        "p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f max_ms=%.3f write_event_p50_ms=%.3f "
        "write_event_max_ms=%.3f cpu_us_per_delivery=%.2f\n",
        label, nsock, nsock, rate, events, msg_bytes, nwriters, nreaders, pin,
        (size_t)nsock * (size_t)events, delivered, (double)delivered / duration,
        pct_ms(lat, delivered, 50), pct_ms(lat, delivered, 95), pct_ms(lat, delivered, 99),
        pct_ms(lat, delivered, 100), pct_ms(took, nt, 50), pct_ms(took, nt, 100),
        delivered ? cpu * 1e6 / (double)delivered : 0);
    return delivered == (size_t)nsock * (size_t)events ? 0 : 1;
}
