/*
 * The test processor: behaviour steered by attributes, so every delivery guarantee can be
 * exercised end to end.
 *   test_fail=transient:N   RETRY on the first N attempts, then OK
 *   test_fail=permanent     REJECT
 *   test_fail=downstream:NAME  RETRY that counts against breaker NAME while the file
 *                           <data_dir>/downstream-NAME.down exists
 *   test_sleep_ms=M         sleep M ms (at most 60 s) before answering
 *   test_wait_for=NAME      wait (at most 60 s) until <data_dir>/NAME exists: lets a test hold
 *                           a worker until it has queued everything else
 *   test_emit=TOPIC         emit a copy of the message to TOPIC (attribute test_parent set)
 * Every successful run appends one JSON line to <data_dir>/test-processed.jsonl (or the
 * `record` file of its config): {"id","key","seq","attempt","topic"} where seq is the "seq"
 * attribute.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dr/buf.h"
#include "dr/json.h"
#include "dr/processor.h"
#include "dr/util.h"

struct test_state {
    int fd;
    char *data_dir;
};

static int init(const struct dr_proc_env *env, void **state, char *err, size_t errsz)
{
    struct test_state *st = dr_xcalloc(1, sizeof(*st));
    const char *record = env->config ? dr_json_str(env->config, "record") : NULL;
    char path[4096];

    if (record) {
        snprintf(path, sizeof(path), "%s", record);
    } else {
        snprintf(path, sizeof(path), "%s/test-processed.jsonl", env->data_dir);
    }
    st->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (st->fd < 0) {
        snprintf(err, errsz, "cannot open %s: %s", path, strerror(errno));
        free(st);
        return -1;
    }
    st->data_dir = dr_xstrdup(env->data_dir);
    *state = st;
    return 0;
}

static void destroy(void *state)
{
    struct test_state *st = state;
    if (st) {
        close(st->fd);
        free(st->data_dir);
        free(st);
    }
}

static void record(struct test_state *st, const struct dr_msg *msg)
{
    struct dr_buf b;
    const char *seq = dr_msg_attr(msg, "seq");

    dr_buf_init(&b, 8192);
    dr_buf_appends(&b, "{\"id\":");
    dr_buf_append_json_str(&b, msg->message_id, strlen(msg->message_id));
    dr_buf_appends(&b, ",\"key\":");
    if (msg->ordering_key) {
        dr_buf_append_json_str(&b, msg->ordering_key, strlen(msg->ordering_key));
    } else {
        dr_buf_appends(&b, "null");
    }
    dr_buf_appends(&b, ",\"seq\":");
    if (seq) {
        dr_buf_append_json_str(&b, seq, strlen(seq));
    } else {
        dr_buf_appends(&b, "null");
    }
    dr_buf_printf(&b, ",\"attempt\":%d,\"topic\":", msg->attempt);
    dr_buf_append_json_str(&b, msg->topic, strlen(msg->topic));
    dr_buf_appends(&b, "}\n");
    if (write(st->fd, b.data, b.len) < 0) {
        /* recording is best effort; the outcome stands */
    }
    dr_buf_cleanup(&b);
}

static void process(void *state, const struct dr_msg *msg, struct dr_result *res)
{
    struct test_state *st = state;
    const char *fail = dr_msg_attr(msg, "test_fail");
    const char *sleep_ms = dr_msg_attr(msg, "test_sleep_ms");
    const char *emit = dr_msg_attr(msg, "test_emit");
    int64_t v;

    const char *wait_for = dr_msg_attr(msg, "test_wait_for");
    if (wait_for && *wait_for && !strchr(wait_for, '/')) {
        char path[4096];
        struct timespec ms = {0, 1000000};
        snprintf(path, sizeof(path), "%s/%s", st->data_dir, wait_for);
        for (int i = 0; i < 60000 && access(path, F_OK) != 0; i++) {
            nanosleep(&ms, NULL);
        }
    }
    if (sleep_ms && dr_parse_i64(sleep_ms, &v) == 0 && v > 0) {
        struct timespec ts;
        if (v > 60000) {
            v = 60000;
        }
        ts.tv_sec = (time_t)(v / 1000);
        ts.tv_nsec = (long)(v % 1000) * 1000000L;
        nanosleep(&ts, NULL);
    }
    if (fail) {
        if (strcmp(fail, "permanent") == 0) {
            dr_result_reject(res, "test_permanent", "permanent failure requested");
            return;
        }
        if (strncmp(fail, "transient:", 10) == 0 && dr_parse_i64(fail + 10, &v) == 0) {
            if (msg->attempt <= v) {
                dr_result_retry(res, "test_transient", "transient failure %d of %lld",
                                msg->attempt, (long long)v);
                return;
            }
        } else if (strncmp(fail, "downstream:", 11) == 0) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/downstream-%s.down", st->data_dir, fail + 11);
            if (access(path, F_OK) == 0) {
                dr_result_downstream_failed(res, fail + 11, "downstream %s is down", fail + 11);
                return;
            }
        } else {
            dr_result_reject(res, "invalid_test_fail", "unknown test_fail value");
            return;
        }
    }
    if (emit && *emit) {
        const char *attrs[] = {"test_parent", msg->message_id, NULL};
        dr_result_emit(res, emit, (const char *)msg->data, msg->data_len, msg->ordering_key,
                       attrs);
    }
    record(st, msg);
}

const struct dr_processor dr_processor_test = {
    .name = "test",
    .description = "behaviour steered by test_* attributes; records what it processed",
    .init = init,
    .process = process,
    .destroy = destroy,
};
