/*
 * Group-commit throughput of dr_store_apply().
 *
 *   bench_store_apply [URL] [ROUNDS]
 *
 * URL defaults to a fresh SQLite file in a temporary directory (removed afterwards); any
 * dr_db_open() URL works, e.g. a PostgreSQL one. Each round applies one batch of 1000 inserts of
 * 1 KiB, then one batch deleting those 1000, then a mixed batch (500 inserts, 500 deletes, 500
 * dedup marks, 10 dead letters). Prints min / median / p90 / max wall time per batch kind and
 * the rate, and the median CPU time of the calling thread (on a shared machine wall time also
 * counts time spent waiting for a core).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dr/err.h"
#include "dr/log.h"
#include "dr/store.h"
#include "dr/util.h"

#define BATCH      1000
#define DATA_SIZE  1024
#define BACKLOG    20000
#define MAX_ROUNDS 1000

struct series {
    const char *name;
    double ms[MAX_ROUNDS];
    double cpu_ms[MAX_ROUNDS];
    int n;
};

static double thread_cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(struct series *s, int rows)
{
    double med, p90;

    qsort(s->ms, (size_t)s->n, sizeof(double), cmp_double);
    qsort(s->cpu_ms, (size_t)s->n, sizeof(double), cmp_double);
    med = s->ms[s->n / 2];
    p90 = s->ms[(s->n * 9) / 10 < s->n ? (s->n * 9) / 10 : s->n - 1];
    printf("%-24s wall: min %6.2f  median %6.2f  p90 %6.2f  max %6.2f ms  %7.0f rows/s"
           "  | cpu median %6.2f ms\n",
           s->name, s->ms[0], med, p90, s->ms[s->n - 1], rows / (med / 1000.0),
           s->cpu_ms[s->n / 2]);
}

/* Applies b; records wall and CPU time in s when s is set. */
static void apply(struct dr_store *st, struct dr_qbatch *b, struct series *s)
{
    double c0 = thread_cpu_ms();
    uint64_t t0 = dr_mono_ns();
    int err = dr_store_apply(st, b);
    double wall = (double)(dr_mono_ns() - t0) / 1e6;

    if (err) {
        fprintf(stderr, "apply failed: %s\n", dr_strerror(err));
        exit(1);
    }
    if (s) {
        s->ms[s->n] = wall;
        s->cpu_ms[s->n] = thread_cpu_ms() - c0;
        s->n++;
    }
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/dr-bench-store-XXXXXX";
    char url[512];
    const char *use_url = argc > 1 && *argv[1] ? argv[1] : NULL;
    int rounds = argc > 2 ? atoi(argv[2]) : 30;
    struct dr_store *st = NULL;
    static struct dr_qmsg msgs[BATCH];
    static char mids[BATCH][40];
    static const char *keys[BATCH];
    static int64_t ids[BATCH];
    static unsigned char data[DATA_SIZE];
    static struct dr_dead_letter dead[10];
    static struct series ins = {.name = "1000 inserts x 1 KiB"};
    static struct series del = {.name = "1000 deletes"};
    static struct series mix = {.name = "mixed 500+500+500+10"};
    int64_t seq = 0;

    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: %s [URL] [ROUNDS 1..%d]\n", argv[0], MAX_ROUNDS);
        return 2;
    }
    dr_log_set_level(DR_LOG_WARN);
    if (!use_url) {
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(url, sizeof(url), "sqlite:%s/bench.db", dir);
        use_url = url;
    }
    if (dr_store_open(use_url, &st)) {
        fprintf(stderr, "cannot open the store\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (unsigned char)(i * 31 + 7);
    }
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < BATCH; i++) {
            snprintf(mids[i], sizeof(mids[i]), "bench-%lld", (long long)seq++);
            msgs[i] = (struct dr_qmsg){.message_id = mids[i],
                                       .topic = "email-backfill",
                                       .attrs_json = "{\"type\":\"email\"}",
                                       .data = data,
                                       .data_len = sizeof(data),
                                       .publish_time_ms = dr_now_ms()};
        }
        struct dr_qbatch b = {.inserts = msgs, .ninserts = BATCH};
        apply(st, &b, &ins);
        for (int i = 0; i < BATCH; i++) {
            ids[i] = msgs[i].id;
        }
        struct dr_qbatch d = {.deletes = ids, .ndeletes = BATCH};
        apply(st, &d, &del);

        /* mixed: half new messages, acking the other half of a fresh batch, dedup, DLQ */
        for (int i = 0; i < BATCH; i++) {
            snprintf(mids[i], sizeof(mids[i]), "bench-%lld", (long long)seq++);
            msgs[i].message_id = mids[i];
            keys[i] = mids[i];
        }
        struct dr_qbatch pre = {.inserts = msgs + BATCH / 2, .ninserts = BATCH / 2};
        apply(st, &pre, NULL);
        for (int i = 0; i < BATCH / 2; i++) {
            ids[i] = msgs[BATCH / 2 + i].id;
        }
        for (int i = 0; i < 10; i++) {
            dead[i] = (struct dr_dead_letter){.message_id = mids[i],
                                              .topic = "email-backfill",
                                              .processor = "email",
                                              .reason = "rejected",
                                              .error = "bench",
                                              .message_json = "{}"};
        }
        struct dr_qbatch m = {.inserts = msgs,
                              .ninserts = BATCH / 2,
                              .deletes = ids,
                              .ndeletes = BATCH / 2,
                              .dedup_keys = keys + BATCH / 2,
                              .ndedup = BATCH / 2,
                              .dead = dead,
                              .ndead = 10};
        apply(st, &m, &mix);
        for (int i = 0; i < BATCH / 2; i++) {
            ids[i] = msgs[i].id;
        }
        struct dr_qbatch clean = {.deletes = ids, .ndeletes = BATCH / 2};
        apply(st, &clean, NULL);
    }
    /* a backlog of one-message segments (one publish or emit each), read back the way the local
     * source does after a restart: pages of 2,000 after the last id handed over */
    for (int i = 0; i < BACKLOG; i++) {
        snprintf(mids[0], sizeof(mids[0]), "bench-%lld", (long long)seq++);
        msgs[0].message_id = mids[0];
        struct dr_qbatch one = {.inserts = msgs, .ninserts = 1};
        apply(st, &one, NULL);
    }
    double t0 = (double)dr_mono_ns() / 1e9, c0 = thread_cpu_ms() / 1e3;
    size_t loaded = 0;
    int64_t after = 0;
    for (;;) {
        struct dr_qmsg *out = NULL;
        size_t n = 0;
        if (dr_store_queue_load(st, after, 2000, &out, &n) || n == 0) {
            break;
        }
        after = out[n - 1].id;
        loaded += n;
        dr_qmsgs_free(out, n);
    }
    double load_s = (double)dr_mono_ns() / 1e9 - t0, load_cpu = thread_cpu_ms() / 1e3 - c0;
    printf("store apply on %s, %d rounds\n", use_url == url ? "SQLite (temp file)" : use_url,
           rounds);
    printf("backlog load: %zu one-message segments in %.3f s (%.1f us each, %.1f us CPU)\n", loaded,
           load_s, load_s * 1e6 / (double)(loaded ? loaded : 1),
           load_cpu * 1e6 / (double)(loaded ? loaded : 1));
    report(&ins, BATCH);
    report(&del, BATCH);
    report(&mix, BATCH + BATCH / 2 + 10);
    dr_store_close(st);
    if (use_url == url) {
        const char *suffix[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            char path[600];
            snprintf(path, sizeof(path), "%s/bench.db%s", dir, suffix[i]);
            unlink(path);
        }
        rmdir(dir);
    }
    return 0;
}
