/*
 * Micro benchmark of dr_publish_parse(): one publish body of 1,000 messages with 1 KB of data
 * and two attributes each, parsed by the single-pass parser and by the cJSON-tree reference it
 * replaced. Prints the best of several rounds in microseconds per message.
 *
 *   bench_publish_parse [rounds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/local.h"
#include "dr/store.h"
#include "dr/util.h"

#include "../tests/unit/sources/publish_ref.c"

#define NMSG       1000
#define DATA_BYTES 1024

typedef int (*parse_fn)(const char *body, size_t len, const char *topic, struct dr_qmsg **out,
                        size_t *n, char *err, size_t errsz);

static double best_us_per_msg(parse_fn fn, const char *body, size_t len, int rounds)
{
    double best = 1e30;

    for (int r = 0; r < rounds; r++) {
        struct dr_qmsg *rows = NULL;
        size_t n = 0;
        char err[256];
        uint64_t t0 = dr_mono_ns();
        int rc = fn(body, len, "bench-topic", &rows, &n, err, sizeof(err));
        uint64_t t1 = dr_mono_ns();
        if (rc || n != NMSG) {
            fprintf(stderr, "parse failed: rc=%d n=%zu %s\n", rc, n, rc ? err : "");
            exit(1);
        }
        dr_qmsgs_free(rows, n);
        if ((double)(t1 - t0) / 1e3 / NMSG < best) {
            best = (double)(t1 - t0) / 1e3 / NMSG;
        }
    }
    return best;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 30;
    unsigned char raw[DATA_BYTES];
    struct dr_buf b;
    double ref, fast;

    if (rounds < 1) {
        rounds = 1;
    }
    dr_buf_init(&b, 16u << 20);
    dr_buf_appends(&b, "{\"messages\":[");
    for (int i = 0; i < NMSG; i++) {
        char *enc;
        size_t elen;
        for (size_t k = 0; k < sizeof(raw); k++) {
            raw[k] = (unsigned char)(dr_random_unit() * 256);
        }
        dr_base64_encode(raw, sizeof(raw), &enc, &elen);
        dr_buf_printf(&b,
                      "%s{\"data\":\"%s\",\"attributes\":{\"source\":\"bench\",\"seq\":\"%d\"},"
                      "\"orderingKey\":\"key-%d\"}",
                      i ? "," : "", enc, i, i % 16);
        free(enc);
    }
    dr_buf_appends(&b, "]}");

    ref = best_us_per_msg(publish_parse_ref, b.data, b.len, rounds);
    fast = best_us_per_msg(dr_publish_parse, b.data, b.len, rounds);
    printf("publish_parse: %d messages of %d bytes (body %zu bytes), best of %d rounds\n", NMSG,
           DATA_BYTES, b.len, rounds);
    printf("  cJSON tree (old):  %6.2f us/message\n", ref);
    printf("  single pass (new): %6.2f us/message\n", fast);
    printf("  speedup:           %6.1fx\n", ref / fast);
    dr_buf_cleanup(&b);
    return 0;
}
