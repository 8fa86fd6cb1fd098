/*
 * The Pub/Sub client against the real Google Pub/Sub emulator (PUBSUB_EMULATOR_HOST, started by
 * scripts/test-env). Without it every test fails: nothing here is skipped silently.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/pubsub.h"
#include "dr/util.h"

static uv_loop_t loop;
static struct dr_pubsub *ps;
static char run_id[9];

static int group_setup(void **state)
{
    const char *host = getenv("PUBSUB_EMULATOR_HOST");
    char id[33];

    if (!host || !*host) {
        fprintf(stderr, "PUBSUB_EMULATOR_HOST is not set: these tests need the Pub/Sub emulator; "
                        "run them under scripts/test-env\n");
        return -1;
    }
    dr_random_id(id);
    memcpy(run_id, id, 8);
    run_id[8] = '\0';
    return 0;
}

static int use_grpc; /* the group being run: subscriber calls over REST or gRPC */

static int setup(void **state)
{
    struct dr_pubsub_conf conf = {.project = "dr-test", .grpc = use_grpc};

    uv_loop_init(&loop);
    return dr_pubsub_create(&loop, &conf, &ps) == DR_OK ? 0 : -1;
}

static int teardown(void **state)
{
    dr_pubsub_destroy(ps); /* also cancels blocking pulls still waiting */
    ps = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

static void name(char *out, size_t outsz, const char *what)
{
    snprintf(out, outsz, "t%s-%s", run_id, what);
}

static void wait_for(const int *flag)
{
    int64_t deadline = dr_mono_ms() + 150000;
    while (!*flag) {
        assert_true(dr_mono_ms() < deadline);
        uv_run(&loop, UV_RUN_ONCE);
    }
}

struct done {
    int calls;
    int err;
    char msg[512];
    char res_name[512];
};

static void on_done(void *ctx, int err, const char *errmsg, const cJSON *res)
{
    struct done *d = ctx;
    const char *n = dr_json_str(res, "name");
    d->calls++;
    d->err = err;
    snprintf(d->msg, sizeof(d->msg), "%s", errmsg ? errmsg : "");
    snprintf(d->res_name, sizeof(d->res_name), "%s", n ? n : "");
}

#define SYNC(d, call)                                                                              \
    do {                                                                                           \
        memset(&(d), 0, sizeof(d));                                                                \
        assert_int_equal((call), DR_OK);                                                           \
        wait_for(&(d).calls);                                                                      \
    } while (0)

struct pub {
    int calls;
    int err;
    size_t n;
    char first_id[64];
};

static void on_pub(void *ctx, int err, const char *errmsg, const char *const *ids, size_t n)
{
    struct pub *p = ctx;
    p->calls++;
    p->err = err;
    p->n = n;
    if (n) {
        snprintf(p->first_id, sizeof(p->first_id), "%s", ids[0]);
    }
    if (err) {
        fprintf(stderr, "publish failed: %s\n", errmsg);
    }
}

struct pulled {
    int calls;
    int err;
    char errmsg[512];
    struct dr_pubsub_msg **msgs;
    size_t n;
};

static void on_pull_keep(void *ctx, int err, const char *errmsg, struct dr_pubsub_msg **msgs,
                         size_t n)
{
    struct pulled *p = ctx;
    p->calls++;
    p->err = err;
    snprintf(p->errmsg, sizeof(p->errmsg), "%s", errmsg ? errmsg : "");
    p->n = n;
    p->msgs = NULL;
    if (n) {
        p->msgs = malloc(n * sizeof(*msgs));
        memcpy(p->msgs, msgs, n * sizeof(*msgs));
    }
}

static void free_pulled(struct pulled *p)
{
    for (size_t i = 0; i < p->n; i++) {
        dr_pubsub_msg_free(p->msgs[i]);
    }
    free(p->msgs);
    p->msgs = NULL;
    p->n = 0;
}

static const char *attr(const struct dr_pubsub_msg *m, const char *key)
{
    for (size_t i = 0; i < m->n_attrs; i++) {
        if (strcmp(m->attrs[i].key, key) == 0) {
            return m->attrs[i].value;
        }
    }
    return NULL;
}

static void make_topic_sub(const char *topic, const char *sub, struct dr_pubsub_sub_conf *sc)
{
    struct done d;
    struct dr_pubsub_sub_conf def = {0};

    SYNC(d, dr_pubsub_topic_create(ps, topic, on_done, &d));
    assert_int_equal(d.err, DR_OK);
    if (!sc) {
        sc = &def;
    }
    sc->topic = topic;
    SYNC(d, dr_pubsub_sub_create(ps, sub, sc, on_done, &d));
    if (d.err) {
        fail_msg("subscription create: %s", d.msg);
    }
}

/* A returnImmediately pull: how many messages are waiting right now (and leaves them leased). */
static size_t pull_now(const char *sub)
{
    struct pulled p;
    size_t n;

    SYNC(p, dr_pubsub_pull(ps, sub, 100, 1, on_pull_keep, &p));
    assert_int_equal(p.err, DR_OK);
    n = p.n;
    free_pulled(&p);
    return n;
}

static void topic_admin(void **state)
{
    char topic[64], want[128];
    struct done d;

    name(topic, sizeof(topic), "admin");
    snprintf(want, sizeof(want), "projects/dr-test/topics/%s", topic);
    SYNC(d, dr_pubsub_topic_create(ps, topic, on_done, &d));
    assert_int_equal(d.err, DR_OK);
    assert_string_equal(d.res_name, want);
    SYNC(d, dr_pubsub_topic_create(ps, topic, on_done, &d));
    assert_int_equal(d.err, DR_EEXIST);
    assert_non_null(strstr(d.msg, "409"));
    SYNC(d, dr_pubsub_topic_get(ps, topic, on_done, &d));
    assert_int_equal(d.err, DR_OK);
    assert_string_equal(d.res_name, want);
    SYNC(d, dr_pubsub_topic_delete(ps, topic, on_done, &d));
    assert_int_equal(d.err, DR_OK);
    SYNC(d, dr_pubsub_topic_get(ps, topic, on_done, &d));
    assert_int_equal(d.err, DR_ENOTFOUND);
    assert_non_null(strstr(d.msg, "NOT_FOUND"));
    /* a subscription on a missing topic */
    struct dr_pubsub_sub_conf sc = {.topic = topic};
    SYNC(d, dr_pubsub_sub_create(ps, "nosuchtopic-sub", &sc, on_done, &d));
    assert_int_equal(d.err, DR_ENOTFOUND);
    SYNC(d, dr_pubsub_sub_get(ps, "nosuchsub", on_done, &d));
    assert_int_equal(d.err, DR_ENOTFOUND);
}

/* ---- 1000 messages: publish, pull with several pulls in flight, ack ---- */

#define N_MSGS 1000
#define N_KEYS 10

struct bulk {
    const char *sub;
    int target;
    int received;   /* distinct */
    int duplicates; /* redeliveries seen */
    int order_violations;
    int bad;
    int acks_pending;
    int ack_errors;
    int pulls_active;
    int pull_errors;
    int finished;
    char seen[N_MSGS];
    int last_seq[N_KEYS];
    int check_content;
    int64_t t_done;
};

static void bulk_pull(struct bulk *b);

static void on_bulk_ack(void *ctx, int err, const char *errmsg, const cJSON *res)
{
    struct bulk *b = ctx;
    b->acks_pending--;
    if (err) {
        b->ack_errors++;
        fprintf(stderr, "ack failed: %s\n", errmsg);
    }
    if (b->received >= b->target && b->acks_pending == 0) {
        b->finished = 1;
        b->t_done = dr_mono_ms();
    }
}

static void on_bulk_pull(void *ctx, int err, const char *errmsg, struct dr_pubsub_msg **msgs,
                         size_t n)
{
    struct bulk *b = ctx;
    const char **ids;

    b->pulls_active--;
    if (err) {
        if (err != DR_EUNAVAIL) {
            b->pull_errors++;
            fprintf(stderr, "pull failed: %s\n", errmsg);
        }
        return;
    }
    ids = malloc((n + 1) * sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        struct dr_pubsub_msg *m = msgs[i];
        const char *seq_s = attr(m, "seq");
        int64_t seq;

        ids[i] = m->ack_id;
        if (m->invalid || !seq_s || dr_parse_i64(seq_s, &seq) || seq < 0 || seq >= N_MSGS) {
            b->bad++;
            continue;
        }
        if (b->seen[seq]) {
            b->duplicates++;
            continue;
        }
        b->seen[seq] = 1;
        b->received++;
        if (b->check_content) {
            char want[64], key[16];
            snprintf(want, sizeof(want), "message %d", (int)seq);
            snprintf(key, sizeof(key), "key-%d", (int)(seq % N_KEYS));
            if (m->len != strlen(want) || memcmp(m->data, want, m->len) ||
                strcmp(m->ordering_key, key) || !attr(m, "kind") ||
                strcmp(attr(m, "kind"), "test") || m->publish_time_ms <= 0 || !*m->message_id) {
                b->bad++;
            }
            /* within one key, messages come in publish order */
            if ((int)seq <= b->last_seq[seq % N_KEYS]) {
                b->order_violations++;
            }
            b->last_seq[seq % N_KEYS] = (int)seq;
        }
    }
    if (n) {
        b->acks_pending++;
        assert_int_equal(dr_pubsub_ack(ps, b->sub, ids, n, on_bulk_ack, b), DR_OK);
    }
    free(ids);
    for (size_t i = 0; i < n; i++) {
        dr_pubsub_msg_free(msgs[i]);
    }
    if (b->received < b->target) {
        bulk_pull(b);
    }
}

static void bulk_pull(struct bulk *b)
{
    b->pulls_active++;
    assert_int_equal(dr_pubsub_pull(ps, b->sub, 100, 0, on_bulk_pull, b), DR_OK);
}

static void publish_pull_ack_1000(void **state)
{
    char topic[64], sub[64];
    static struct dr_pubsub_pub_msg msgs[N_MSGS];
    static char data[N_MSGS][32], seqs[N_MSGS][8], keys[N_MSGS][16];
    static struct dr_pubsub_attr attrs[N_MSGS][2];
    struct dr_pubsub_sub_conf sc = {.ack_deadline_s = 60, .enable_message_ordering = 1};
    static struct bulk b;
    struct pub p;

    name(topic, sizeof(topic), "bulk");
    name(sub, sizeof(sub), "bulk-sub");
    make_topic_sub(topic, sub, &sc);
    for (int i = 0; i < N_MSGS; i++) {
        snprintf(data[i], sizeof(data[i]), "message %d", i);
        snprintf(seqs[i], sizeof(seqs[i]), "%d", i);
        snprintf(keys[i], sizeof(keys[i]), "key-%d", i % N_KEYS);
        attrs[i][0] = (struct dr_pubsub_attr){"seq", seqs[i]};
        attrs[i][1] = (struct dr_pubsub_attr){"kind", "test"};
        msgs[i] = (struct dr_pubsub_pub_msg){.data = data[i],
                                             .len = strlen(data[i]),
                                             .attrs = attrs[i],
                                             .n_attrs = 2,
                                             .ordering_key = keys[i]};
    }
    SYNC(p, dr_pubsub_publish(ps, topic, msgs, N_MSGS, on_pub, &p));
    assert_int_equal(p.err, DR_OK);
    assert_int_equal(p.n, N_MSGS);

    memset(&b, 0, sizeof(b));
    b.sub = sub;
    b.target = N_MSGS;
    b.check_content = 1;
    for (int k = 0; k < N_KEYS; k++) {
        b.last_seq[k] = -1;
    }
    for (int i = 0; i < 4; i++) {
        bulk_pull(&b);
    }
    wait_for(&b.finished);
    assert_int_equal(b.received, N_MSGS);
    assert_int_equal(b.bad, 0);
    assert_int_equal(b.duplicates, 0);
    assert_int_equal(b.order_violations, 0);
    assert_int_equal(b.ack_errors, 0);
    assert_int_equal(b.pull_errors, 0);
    for (int i = 0; i < N_MSGS; i++) {
        assert_true(b.seen[i]);
    }
    /* everything acknowledged: nothing left to pull */
    assert_int_equal(pull_now(sub), 0);
}

static void nack_redelivers(void **state)
{
    char topic[64], sub[64];
    struct dr_pubsub_pub_msg m = {.data = "retry me", .len = 8};
    struct pub p;
    struct pulled first, again;
    struct done d;
    char mid[64];

    name(topic, sizeof(topic), "nack");
    name(sub, sizeof(sub), "nack-sub");
    make_topic_sub(topic, sub, NULL);
    SYNC(p, dr_pubsub_publish(ps, topic, &m, 1, on_pub, &p));
    assert_int_equal(p.err, DR_OK);
    SYNC(first, dr_pubsub_pull(ps, sub, 10, 0, on_pull_keep, &first));
    assert_int_equal(first.err, DR_OK);
    assert_int_equal(first.n, 1);
    assert_string_equal(first.msgs[0]->message_id, p.first_id);
    assert_string_equal((char *)first.msgs[0]->data, "retry me");
    snprintf(mid, sizeof(mid), "%s", first.msgs[0]->message_id);
    /* while leased it is not delivered again */
    assert_int_equal(pull_now(sub), 0);
    SYNC(d,
         dr_pubsub_modack(ps, sub, (const char *const *)&first.msgs[0]->ack_id, 1, 0, on_done, &d));
    assert_int_equal(d.err, DR_OK);
    SYNC(again, dr_pubsub_pull(ps, sub, 10, 0, on_pull_keep, &again));
    assert_int_equal(again.err, DR_OK);
    assert_int_equal(again.n, 1);
    assert_string_equal(again.msgs[0]->message_id, mid);
    SYNC(d, dr_pubsub_ack(ps, sub, (const char *const *)&again.msgs[0]->ack_id, 1, on_done, &d));
    assert_int_equal(d.err, DR_OK);
    assert_int_equal(pull_now(sub), 0);
    free_pulled(&first);
    free_pulled(&again);
}

static void dead_letter(void **state)
{
    char topic[64], sub[64], dlq[64], dlq_sub[64];
    struct dr_pubsub_attr a = {"origin", "dlq-test"};
    struct dr_pubsub_pub_msg m = {.data = "poison", .len = 6, .attrs = &a, .n_attrs = 1};
    struct dr_pubsub_sub_conf sc = {.dead_letter_topic = dlq, .max_delivery_attempts = 5};
    struct pub p;
    struct pulled got;
    struct done d;
    int has_dl_attr = 0;

    name(topic, sizeof(topic), "dl");
    name(sub, sizeof(sub), "dl-sub");
    name(dlq, sizeof(dlq), "dl-dlq");
    name(dlq_sub, sizeof(dlq_sub), "dl-dlq-sub");
    make_topic_sub(dlq, dlq_sub, NULL);
    make_topic_sub(topic, sub, &sc);
    SYNC(p, dr_pubsub_publish(ps, topic, &m, 1, on_pub, &p));
    assert_int_equal(p.err, DR_OK);
    for (int attempt = 1; attempt <= 5; attempt++) {
        SYNC(got, dr_pubsub_pull(ps, sub, 10, 0, on_pull_keep, &got));
        assert_int_equal(got.err, DR_OK);
        assert_int_equal(got.n, 1);
        assert_string_equal((char *)got.msgs[0]->data, "poison");
        assert_int_equal(got.msgs[0]->delivery_attempt, attempt);
        SYNC(d, dr_pubsub_modack(ps, sub, (const char *const *)&got.msgs[0]->ack_id, 1, 0, on_done,
                                 &d));
        assert_int_equal(d.err, DR_OK);
        free_pulled(&got);
    }
    /* after the last allowed attempt it is not delivered again: it moves to the DLQ */
    assert_int_equal(pull_now(sub), 0);
    SYNC(got, dr_pubsub_pull(ps, dlq_sub, 10, 0, on_pull_keep, &got));
    assert_int_equal(got.err, DR_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal((char *)got.msgs[0]->data, "poison");
    assert_string_equal(attr(got.msgs[0], "origin"), "dlq-test");
    for (size_t i = 0; i < got.msgs[0]->n_attrs; i++) {
        if (strncmp(got.msgs[0]->attrs[i].key, "CloudPubSubDeadLetterSource", 27) == 0) {
            has_dl_attr = 1;
        }
    }
    assert_true(has_dl_attr);
    SYNC(d, dr_pubsub_ack(ps, dlq_sub, (const char *const *)&got.msgs[0]->ack_id, 1, on_done, &d));
    assert_int_equal(d.err, DR_OK);
    free_pulled(&got);
    assert_int_equal(pull_now(sub), 0);
}

static void limits_refused_before_sending(void **state)
{
    static struct dr_pubsub_pub_msg many[1001];
    struct dr_pubsub_attr long_key = {NULL, "v"};
    char key[300];
    struct dr_pubsub_pub_msg m = {.data = "x", .len = 1, .attrs = &long_key, .n_attrs = 1};
    struct dr_pubsub_sub_conf sc = {
        .topic = "whatever", .dead_letter_topic = "dlq-x", .max_delivery_attempts = 4};
    struct done d = {0};

    for (int i = 0; i < 1001; i++) {
        many[i] = (struct dr_pubsub_pub_msg){.data = "x", .len = 1};
    }
    memset(key, 'k', 257);
    key[257] = '\0';
    long_key.key = key;
    assert_int_equal(dr_pubsub_publish(ps, "whatever", many, 1001, on_pub, NULL), DR_ETOOBIG);
    assert_int_equal(dr_pubsub_publish(ps, "whatever", &m, 1, on_pub, NULL), DR_ETOOBIG);
    assert_int_equal(dr_pubsub_sub_create(ps, "whatever-sub", &sc, on_done, &d), DR_EINVAL);
    assert_int_equal(dr_pubsub_in_flight(ps), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(d.calls, 0);
}

/* ---- throughput ---- */

#define TP_MSGS  20000
#define TP_PULLS 8

struct tp_pub {
    int next;
    int done;
    int errors;
    int in_flight;
    const char *topic;
    struct dr_pubsub_pub_msg *msgs;
};

static void tp_publish_more(struct tp_pub *t);

static void on_tp_pub(void *ctx, int err, const char *errmsg, const char *const *ids, size_t n)
{
    struct tp_pub *t = ctx;
    t->in_flight--;
    if (err) {
        t->errors++;
        fprintf(stderr, "publish failed: %s\n", errmsg);
    }
    t->done += (int)n;
    tp_publish_more(t);
}

static void tp_publish_more(struct tp_pub *t)
{
    while (t->in_flight < 4 && t->next < TP_MSGS) {
        assert_int_equal(dr_pubsub_publish(ps, t->topic, t->msgs + t->next, 1000, on_tp_pub, t),
                         DR_OK);
        t->next += 1000;
        t->in_flight++;
    }
}

struct tp_pulls {
    const char *sub;
    int received;
    int acks_pending;
    int errors;
    int finished;
    int64_t t_done;
};

static void tp_pull(struct tp_pulls *t);

static void on_tp_ack(void *ctx, int err, const char *errmsg, const cJSON *res)
{
    struct tp_pulls *t = ctx;
    t->acks_pending--;
    if (err) {
        t->errors++;
        fprintf(stderr, "ack failed: %s\n", errmsg);
    }
    if (t->received >= TP_MSGS && t->acks_pending == 0 && !t->finished) {
        t->finished = 1;
        t->t_done = dr_mono_ms();
    }
}

static void on_tp_pull(void *ctx, int err, const char *errmsg, struct dr_pubsub_msg **msgs,
                       size_t n)
{
    struct tp_pulls *t = ctx;
    const char **ids;

    if (err) {
        if (err != DR_EUNAVAIL) {
            t->errors++;
            fprintf(stderr, "pull failed: %s\n", errmsg);
        }
        return;
    }
    ids = malloc((n + 1) * sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        ids[i] = msgs[i]->ack_id;
        if (msgs[i]->len != 1024) {
            t->errors++;
        }
    }
    if (n) {
        t->acks_pending++;
        assert_int_equal(dr_pubsub_ack(ps, t->sub, ids, n, on_tp_ack, t), DR_OK);
    }
    for (size_t i = 0; i < n; i++) {
        dr_pubsub_msg_free(msgs[i]);
    }
    free(ids);
    t->received += (int)n;
    if (t->received < TP_MSGS) {
        tp_pull(t);
    }
}

static void tp_pull(struct tp_pulls *t)
{
    assert_int_equal(dr_pubsub_pull(ps, t->sub, 100, 0, on_tp_pull, t), DR_OK);
}

static void pull_ack_throughput(void **state)
{
    char topic[64], sub[64];
    struct dr_pubsub_pub_msg *msgs = calloc(TP_MSGS, sizeof(*msgs));
    struct dr_pubsub_attr *attrs = calloc(TP_MSGS, sizeof(*attrs));
    char(*seqs)[8] = calloc(TP_MSGS, 8);
    char payload[1024];
    struct tp_pub t = {0};
    static struct tp_pulls tp;
    int pub_finished = 0;
    int64_t t0, t1;

    name(topic, sizeof(topic), "tp");
    name(sub, sizeof(sub), "tp-sub");
    make_topic_sub(topic, sub, NULL);
    memset(payload, 'p', sizeof(payload));
    for (int i = 0; i < TP_MSGS; i++) {
        snprintf(seqs[i], 8, "%d", i % N_MSGS);
        attrs[i] = (struct dr_pubsub_attr){"seq", seqs[i]};
        msgs[i] = (struct dr_pubsub_pub_msg){
            .data = payload, .len = sizeof(payload), .attrs = &attrs[i], .n_attrs = 1};
    }
    t.topic = topic;
    t.msgs = msgs;
    t0 = dr_mono_ms();
    tp_publish_more(&t);
    while (!pub_finished) {
        uv_run(&loop, UV_RUN_ONCE);
        pub_finished = t.in_flight == 0 && t.next >= TP_MSGS;
    }
    t1 = dr_mono_ms();
    assert_int_equal(t.errors, 0);
    assert_int_equal(t.done, TP_MSGS);
    print_message("publish: %d msgs of 1 KiB in %lld ms = %.0f msgs/s (4 requests in flight)\n",
                  TP_MSGS, (long long)(t1 - t0), TP_MSGS * 1000.0 / (double)(t1 - t0 + 1));

    memset(&tp, 0, sizeof(tp));
    tp.sub = sub;
    t0 = dr_mono_ms();
    for (int i = 0; i < TP_PULLS; i++) {
        tp_pull(&tp);
    }
    wait_for(&tp.finished);
    t1 = tp.t_done;
    assert_int_equal(tp.errors, 0);
    assert_int_equal(tp.received, TP_MSGS);
    print_message("pull+ack: %d msgs of 1 KiB in %lld ms = %.0f msgs/s (%d pulls in flight, "
                  "maxMessages 100)\n",
                  TP_MSGS, (long long)(t1 - t0), TP_MSGS * 1000.0 / (double)(t1 - t0 + 1),
                  TP_PULLS);
    assert_int_equal(pull_now(sub), 0);
    free(seqs);
    free(attrs);
    free(msgs);
}

/* Errors come back with the service's reason whichever the transport. */
static void call_errors(void **state)
{
    char sub[64];
    const char *bogus = "no-such-ack-id";
    struct pulled got;
    struct done d;

    name(sub, sizeof(sub), "missing-sub");
    SYNC(got, dr_pubsub_pull(ps, sub, 10, 1, on_pull_keep, &got));
    assert_int_equal(got.err, DR_ENOTFOUND);
    assert_non_null(strstr(got.errmsg, use_grpc ? "gRPC NOT_FOUND" : "HTTP 404"));
    free_pulled(&got);
    SYNC(d, dr_pubsub_ack(ps, sub, &bogus, 1, on_done, &d));
    assert_int_not_equal(d.err, DR_OK);
    assert_non_null(strstr(d.msg, use_grpc ? "gRPC " : "HTTP "));
}

int main(void)
{
    const struct CMUnitTest grpc_tests[] = {
        cmocka_unit_test_setup_teardown(call_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(limits_refused_before_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(publish_pull_ack_1000, setup, teardown),
        cmocka_unit_test_setup_teardown(nack_redelivers, setup, teardown),
        cmocka_unit_test_setup_teardown(dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(pull_ack_throughput, setup, teardown),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(call_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(topic_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(limits_refused_before_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(publish_pull_ack_1000, setup, teardown),
        cmocka_unit_test_setup_teardown(nack_redelivers, setup, teardown),
        cmocka_unit_test_setup_teardown(dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(pull_ack_throughput, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("rest", tests, group_setup, NULL);

    use_grpc = 1;
    return failed + cmocka_run_group_tests_name("grpc", grpc_tests, group_setup, NULL);
}
