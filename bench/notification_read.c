/*
 * Micro benchmark of reading notifications as POST /api/v1/publish and the client-notifications
 * topic get them: one body of N notifications shaped like bench/ws_load's (string members, a
 * small data object), read as POST /api/v1/publish reads it (dr__rt_publish_read): by the fast
 * reader and by the cJSON tree it stands in for. Prints the best of several rounds
 * in microseconds per notification.
 *
 *   bench_notification_read [N] [ROUNDS]      (500, 200)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/util.h"
#include "realtime/rt_int.h"

static size_t make_body(char *out, size_t cap, int n)
{
    size_t len = (size_t)snprintf(out, cap, "{\"notifications\":[");

    for (int i = 0; i < n && len < cap; i++) {
        len += (size_t)snprintf(
            out + len, cap - len,
            "%s{\"notification_id\":\"b-run-%d\",\"user_id\":\"bench-pub\",\"org_id\":\"bench-%d\","
            "\"room\":\"org:bench-%d\",\"notification_type\":\"bench.tick\",\"title\":\"bench\","
            "\"message\":\"\",\"data\":{\"i\":%d,\"t_ns\":%" PRId64 "},"
            "\"timestamp\":\"2026-01-01T00:00:00.000Z\"}",
            i ? "," : "", i, i % 100, i % 100, i, (int64_t)1795833309088000000 + i);
    }
    if (len < cap) {
        len += (size_t)snprintf(out + len, cap - len, "]}");
    }
    return len;
}

/* POST /api/v1/publish's reading of the body, the one way or the other */
static int read_with(const char *body, size_t len, int how, struct dr_notification **ns)
{
    struct dr_notification **v = NULL;
    size_t n = 0;
    char why[256];

    if (dr__rt_publish_read(body, len, how, &v, &n, why, sizeof(why)) != 0) {
        fprintf(stderr, "refused (%s): %s\n", how == RT_READ_TREE ? "tree" : "fast", why);
        exit(1);
    }
    memcpy(ns, v, n * sizeof(*v));
    free(v); /* the notifications are the caller's now */
    return (int)n;
}

static int read_tree(const char *body, size_t len, struct dr_notification **ns)
{
    return read_with(body, len, RT_READ_TREE, ns);
}

static int read_fast(const char *body, size_t len, struct dr_notification **ns)
{
    return read_with(body, len, RT_READ_FAST, ns);
}

static double best_us(int (*fn)(const char *, size_t, struct dr_notification **), const char *body,
                      size_t len, int n, int rounds)
{
    struct dr_notification **ns = calloc((size_t)n, sizeof(*ns));
    double best = 1e30;

    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = dr_mono_ns();
        int got = fn(body, len, ns);
        uint64_t t1 = dr_mono_ns();

        if (got != n) {
            fprintf(stderr, "read %d of %d\n", got, n);
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            dr_notification_unref(ns[i]);
        }
        if ((double)(t1 - t0) / 1e3 / n < best) {
            best = (double)(t1 - t0) / 1e3 / n;
        }
    }
    free(ns);
    return best;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 500, rounds = argc > 2 ? atoi(argv[2]) : 200;
    size_t cap = (size_t)n * 512 + 64;
    char *body = malloc(cap);
    size_t len;

    if (n < 1 || rounds < 1 || !body) {
        fprintf(stderr, "usage: bench_notification_read [N] [ROUNDS]\n");
        return 2;
    }
    len = make_body(body, cap, n);
    printf("notifications=%d body_bytes=%zu tree_us_per_notification=%.3f "
           "fast_us_per_notification=%.3f\n",
           n, len, best_us(read_tree, body, len, n, rounds),
           best_us(read_fast, body, len, n, rounds));
    free(body);
    return 0;
}
