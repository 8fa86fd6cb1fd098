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
 *   test_emit_attrs=N       the emit also carries attributes e0..e<N-1> (at most 1000)
 *   test_crash=N|always     abort() the whole process on the first N attempts (or every one),
 *                           only when the processor's config says {"crash": true}
 *   test_defer=early|late|gate:NAME  finish the result from another thread (dr_result_defer):
 *                           `early` before process() returns, `late` ~5 ms after it returned,
 *                           `gate:NAME` once <data_dir>/NAME exists (at most 60 s)
 * Every successful run appends one JSON line to <data_dir>/test-processed.jsonl (or the
 * `record` file of its config): {"id","key","seq","attempt","topic"} where seq is the "seq"
 * attribute.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int late;        /* deferred results not finished yet */
    int allow_crash; /* config "crash": true */
};

struct deferred {
    struct test_state *st;
    struct dr_result *res;
    int late;
    char gate[4096]; /* a path to wait for, or empty */
};

/* Waits (at most 60 s) until path exists. */
static void wait_file(const char *path)
{
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 60000 && access(path, F_OK) != 0; i++) {
        nanosleep(&ms, NULL);
    }
}

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
    st->allow_crash =
        env->config && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(env->config, "crash"));
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    *state = st;
    return 0;
}

static void destroy(void *state)
{
    struct test_state *st = state;
    if (st) {
        pthread_mutex_lock(&st->mu);
        while (st->late > 0) {
            pthread_cond_wait(&st->cv, &st->mu);
        }
        pthread_mutex_unlock(&st->mu);
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
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

static void *finish_main(void *arg)
{
    struct deferred *d = arg;
    struct test_state *st = d->st;
    int late = d->late;

    if (d->gate[0]) {
        wait_file(d->gate);
    } else if (late) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    dr_result_finish(d->res);
    free(d);
    if (late) {
        pthread_mutex_lock(&st->mu);
        st->late--;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
    }
    return NULL;
}

/* test_defer: hands the already decided result to another thread to finish. */
static void defer(struct test_state *st, struct dr_result *res, int late, const char *gate)
{
    struct deferred *d = dr_xcalloc(1, sizeof(*d));
    pthread_t t;

    d->st = st;
    d->res = res;
    d->late = late;
    if (gate) {
        snprintf(d->gate, sizeof(d->gate), "%s/%s", st->data_dir, gate);
    }
    dr_result_defer(res);
    if (late) {
        pthread_mutex_lock(&st->mu);
        st->late++;
        pthread_mutex_unlock(&st->mu);
    }
    if (pthread_create(&t, NULL, finish_main, d) != 0) {
        finish_main(d); /* finishing on this thread is still a valid deferral */
        return;
    }
    if (late) {
        pthread_detach(t);
    } else {
        pthread_join(t, NULL);
    }
}

static void decide(struct test_state *st, const struct dr_msg *msg, struct dr_result *res);

static void process(void *state, const struct dr_msg *msg, struct dr_result *res)
{
    struct test_state *st = state;
    const char *how = dr_msg_attr(msg, "test_defer");

    decide(st, msg, res);
    if (!how) {
        return;
    }
    if (strcmp(how, "early") == 0 || strcmp(how, "late") == 0) {
        defer(st, res, how[0] == 'l', NULL);
    } else if (strncmp(how, "gate:", 5) == 0 && how[5] && !strchr(how + 5, '/')) {
        defer(st, res, 1, how + 5);
    }
}

static void decide(struct test_state *st, const struct dr_msg *msg, struct dr_result *res)
{
    const char *fail = dr_msg_attr(msg, "test_fail");
    const char *sleep_ms = dr_msg_attr(msg, "test_sleep_ms");
    const char *emit = dr_msg_attr(msg, "test_emit");
    int64_t v;

    const char *wait_for = dr_msg_attr(msg, "test_wait_for");
    if (wait_for && *wait_for && !strchr(wait_for, '/')) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", st->data_dir, wait_for);
        wait_file(path);
    }
    const char *crash = dr_msg_attr(msg, "test_crash");
    if (crash && st->allow_crash &&
        (strcmp(crash, "always") == 0 || (dr_parse_i64(crash, &v) == 0 && msg->attempt <= v))) {
        abort();
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
                dr_result_retry(res, "test_transient", "transient failure %d of %lld", msg->attempt,
                                (long long)v);
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
        const char *more = dr_msg_attr(msg, "test_emit_attrs");
        int64_t n = 0;
        if (more && (dr_parse_i64(more, &n) != 0 || n < 0 || n > 1000)) {
            n = 0;
        }
        /* test_parent, then e0..e<n-1>, each pair a key and its value, NULL-terminated */
        const char **attrs = dr_xcalloc((size_t)n * 2 + 3, sizeof(*attrs));
        char(*keys)[8] = dr_xcalloc((size_t)n + 1, sizeof(*keys));
        attrs[0] = "test_parent";
        attrs[1] = msg->message_id;
        for (int64_t i = 0; i < n; i++) {
            snprintf(keys[i], sizeof(keys[i]), "e%d", (int)i);
            attrs[2 + 2 * i] = keys[i];
            attrs[3 + 2 * i] = "v";
        }
        dr_result_emit(res, emit, (const char *)msg->data, msg->data_len, msg->ordering_key, attrs);
        free(keys);
        free(attrs);
    }
    record(st, msg);
}

static const char *const config_keys[] = {"record", "crash", NULL};

const struct dr_processor dr_processor_test = {
    .name = "test",
    .description = "behaviour steered by test_* attributes; records what it processed",
    .config_keys = config_keys,
    .init = init,
    .process = process,
    .destroy = destroy,
};
