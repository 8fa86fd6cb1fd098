/*
 * CPU cost of storing notifications (dr__rt_store_put_batch), as the realtime store thread does
 * under bench/run-realtime's rooms step: notifications shaped like bench/ws_load's, spread over
 * ROOMS rooms round robin, one publisher user, stored BATCH per transaction.
 *
 *   bench_rt_store_put [URL] [ROWS] [BATCH] [ROOMS] [PREFILL]
 *
 * URL defaults to a fresh SQLite file in a temporary directory (removed afterwards); ROWS
 * 200000, BATCH 2048 (the store thread's most), ROOMS 100, PREFILL 0 (rows stored first, not
 * timed: a store that has been running a while). RT_STORE_SQL: statements ("; "-separated) run
 * after the migrations, for schema experiments; RT_STORE_ROOM the rooms' prefix (meeting:bench-);
 * RT_STORE_IDS=random: random notification ids (32 hex digits, dr_random_id), =time: ids that
 * sort by time (dr_time_id, as the processors and the publish API make them), instead of
 * ws_load's b-TAG-I, which sort nearly in the order they are stored. RT_STORE_INBOX: times the
 * inbox of a user of org bench-0 afterwards (with RT_STORE_ROOM=org:bench-).
 * Prints per notification the calling thread's CPU time and wall time, the whole process's CPU time
 * (with the checkpoints, until the database is closed) and the bytes it wrote (WAL and database
 * file).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dr/err.h"
#include "dr/log.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

static double now_s(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *room_prefix = "meeting:bench-";
static int random_ids; /* 1: dr_random_id, 2: dr_time_id */

static struct dr_notification *make(const char *tag, long i, int rooms)
{
    char json[1024], id[64], err[128];
    int r = (int)(i % rooms);
    struct dr_notification *n = NULL;

    if (random_ids == 1) {
        dr_random_id(id);
    } else if (random_ids == 2) {
        dr_time_id(id);
    } else {
        snprintf(id, sizeof(id), "b-%s-%ld", tag, i);
    }
    int len = snprintf(json, sizeof(json),
                       "{\"notification_id\":\"%s\",\"user_id\":\"bench-pub\","
                       "\"org_id\":\"bench-%d\",\"room\":\"%s%d\","
                       "\"notification_type\":\"bench.tick\",\"title\":\"bench\","
                       "\"message\":\"\",\"data\":{\"i\":%ld,\"t_ns\":%ld},"
                       "\"timestamp\":\"2026-01-01T00:00:00.000Z\"}",
                       id, r, room_prefix, r, i, i * 1000);

    if (dr_notification_parse(json, (size_t)len, NULL, &n, err, sizeof(err)) != DR_OK) {
        fprintf(stderr, "parse: %s\n", err);
        exit(1);
    }
    return n;
}

/* Stores rows [first, first + count) in batches; returns the thread CPU seconds it took. */
static double store(struct dr_db *db, const char *tag, long first, long count, int batch, int rooms,
                    double *wall)
{
    struct dr_notification **v = calloc((size_t)batch, sizeof(*v));
    int *dup = calloc((size_t)batch, sizeof(int)), *errs = calloc((size_t)batch, sizeof(int));
    double cpu = 0, w = 0;

    for (long i = first; i < first + count; i += batch) {
        int n = (int)(first + count - i < batch ? first + count - i : batch);
        for (int k = 0; k < n; k++) {
            v[k] = make(tag, i + k, rooms);
        }
        double c0 = now_s(CLOCK_THREAD_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
        size_t stored = dr__rt_store_put_batch(db, v, (size_t)n, dup, errs);
        cpu += now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
        w += now_s(CLOCK_MONOTONIC) - w0;
        if (stored != (size_t)n) {
            fprintf(stderr, "stored %zu of %d: %s\n", stored, n, dr_strerror(errs[0]));
            exit(1);
        }
        for (int k = 0; k < n; k++) {
            dr_notification_unref(v[k]);
        }
    }
    free(v);
    free(dup);
    free(errs);
    *wall = w;
    return cpu;
}

/* bytes this process has written so far (write, pwrite: the WAL, checkpoints, the database) */
static long long written(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    long long v = 0;

    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "wchar: %lld", &v) == 1) {
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    return v;
}

static double process_cpu_s(void)
{
    return now_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* RT_STORE_SINCE=1: the wall time of catch-up pages (dr__rt_store_since, 500 rows at most)
 * for one room and for ten, from 1,000 and from 100,000 seqs back and from the start. */
static void since_times(struct dr_db *db, long stored, int rooms)
{
    static const long back[] = {1000, 100000, 0};
    char names[10][64], *v[10];

    for (int i = 0; i < 10; i++) {
        snprintf(names[i], sizeof(names[i]), "%s%d", room_prefix, i % rooms);
        v[i] = names[i];
    }
    for (size_t b = 0; b < DR_ARRAY_LEN(back); b++) {
        for (int nr = 1; nr <= 10; nr += 9) {
            int64_t since = back[b] && back[b] < stored ? stored - back[b] : 0;
            size_t got = 0;
            double t0 = now_s(CLOCK_MONOTONIC);
            for (int k = 0; k < 20; k++) {
                struct dr_notification **out;
                size_t n;
                if (dr__rt_store_since(db, v, (size_t)nr, since, 500, &out, &n, NULL) != DR_OK) {
                    fprintf(stderr, "since failed\n");
                    exit(1);
                }
                got = n;
                dr__rt_notifications_free(out, n);
            }
            printf("since rooms=%d back=%ld rows=%zu ms=%.2f\n", nr, back[b] ? back[b] : stored,
                   got, (now_s(CLOCK_MONOTONIC) - t0) * 1000 / 20);
        }
    }
}

/* RT_STORE_INBOX: the inbox of a user of org bench-0 (the rooms' prefix being org:bench-): the
 * newest page of 50, a page from the middle of the history, the unread count; best of 20 each. */
static void inbox_times(struct dr_db *db, long total)
{
    const char *what[] = {"list 50 newest", "list 50 from the middle", "unread count"};

    for (int k = 0; k < 3; k++) {
        double best = 1e9;
        for (int r = 0; r < 20; r++) {
            struct rt_inbox_q q = {
                .sub = "reader", .org = "bench-0", .limit = 50, .before = k == 1 ? total / 2 : 0};
            char *out = NULL;
            int64_t count = 0;
            double t0 = now_s(CLOCK_MONOTONIC);
            int err = k < 2 ? dr__rt_inbox_list(db, &q, &out, NULL)
                            : dr__rt_inbox_unread(db, "reader", "bench-0", &count);
            double t = now_s(CLOCK_MONOTONIC) - t0;
            free(out);
            if (err) {
                fprintf(stderr, "%s: %s\n", what[k], dr_strerror(err));
                return;
            }
            best = t < best ? t : best;
        }
        printf("inbox %s: %.3f ms\n", what[k], best * 1e3);
    }
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/dr-rt-store-put.XXXXXX";
    char path[128];
    const char *url = argc > 1 && *argv[1] ? argv[1] : NULL;
    long rows = argc > 2 ? atol(argv[2]) : 200000;
    int batch = argc > 3 ? atoi(argv[3]) : 2048;
    int rooms = argc > 4 ? atoi(argv[4]) : 100;
    long prefill = argc > 5 ? atol(argv[5]) : 0;
    struct dr_db *db = NULL;
    char tag[32];
    double wall, cpu;

    dr_log_set_level(DR_LOG_WARN);
    if (getenv("RT_STORE_IDS")) {
        random_ids = strcmp(getenv("RT_STORE_IDS"), "random") == 0 ? 1
                     : strcmp(getenv("RT_STORE_IDS"), "time") == 0 ? 2
                                                                   : 0;
    }
    if (getenv("RT_STORE_ROOM")) {
        room_prefix = getenv("RT_STORE_ROOM");
    }
    if (rows < 1 || batch < 1 || batch > 4096 || rooms < 1 || prefill < 0 ||
        (url && url[0] == '-')) {
        fprintf(stderr, "usage: %s [URL] [ROWS] [BATCH<=4096] [ROOMS] [PREFILL]\n", argv[0]);
        return 2;
    }
    if (!url) {
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(path, sizeof(path), "%s/dr.db", dir);
        url = path;
    }
    if (dr_db_open(url, 2, &db) != DR_OK || dr__rt_migrate(db) != DR_OK) {
        fprintf(stderr, "cannot open %s\n", url);
        return 1;
    }
    /* RT_STORE_SQL: "; "-separated statements run after the migrations (schema experiments) */
    if (getenv("RT_STORE_SQL")) {
        char *sql = dr_xstrdup(getenv("RT_STORE_SQL"));
        for (char *st = sql, *end; st; st = end) {
            end = strstr(st, "; ");
            if (end) {
                *end = '\0';
                end += 2;
            }
            if (strspn(st, " \n\t;") < strlen(st) &&
                dr_db_exec(db, st, NULL, 0, NULL, NULL, NULL) != DR_OK) {
                fprintf(stderr, "failed: %s\n", st);
                return 1;
            }
        }
        free(sql);
    }
    snprintf(tag, sizeof(tag), "%lx", (long)time(NULL) ^ (long)getpid());
    if (prefill) {
        store(db, tag, 0, prefill, batch, rooms, &wall);
    }
    long long w0 = written();
    double p0 = process_cpu_s();
    cpu = store(db, tag, prefill, rows, batch, rooms, &wall);
    if (getenv("RT_STORE_SINCE")) {
        since_times(db, prefill + rows, rooms);
    }
    if (getenv("RT_STORE_INBOX")) {
        inbox_times(db, prefill + rows);
    }
    /* the checkpoints of what was stored: the background thread's work, counted when done */
    dr_db_close(db);
    double pcpu = process_cpu_s() - p0;
    printf("rows=%ld batch=%d rooms=%d prefill=%ld cpu_us_per_row=%.2f wall_us_per_row=%.2f"
           " process_cpu_us_per_row=%.2f written_bytes_per_row=%.0f\n",
           rows, batch, rooms, prefill, cpu * 1e6 / (double)rows, wall * 1e6 / (double)rows,
           pcpu * 1e6 / (double)rows, (double)(written() - w0) / (double)rows);
    if (url == path) {
        char p[160];
        snprintf(p, sizeof(p), "%s-wal", path);
        unlink(p);
        snprintf(p, sizeof(p), "%s-shm", path);
        unlink(p);
        unlink(path);
        rmdir(dir);
    }
    return 0;
}
