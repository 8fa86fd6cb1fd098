/*
 * The gRPC messages of the Pub/Sub subscriber calls: requests compared byte for byte with
 * protobuf's encoding, answers built here with an encoder of the test's own, then broken in
 * every way a hostile or buggy server could break them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/pubsub.h"
#include "sources/pubsub/pubsub_internal.h"

/* ---- a small protobuf writer of the test's own ---- */

struct pbw {
    unsigned char b[8192];
    size_t n;
};

static void w_raw(struct pbw *w, const void *p, size_t n)
{
    assert_true(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_varint(struct pbw *w, uint64_t v)
{
    while (v >= 0x80) {
        unsigned char c = (unsigned char)(v | 0x80);
        w_raw(w, &c, 1);
        v >>= 7;
    }
    unsigned char c = (unsigned char)v;
    w_raw(w, &c, 1);
}

static void w_len(struct pbw *w, unsigned field, const void *p, size_t n)
{
    w_varint(w, (uint64_t)field << 3 | 2);
    w_varint(w, n);
    w_raw(w, p, n);
}

static void w_str(struct pbw *w, unsigned field, const char *s)
{
    w_len(w, field, s, strlen(s));
}

static void w_uint(struct pbw *w, unsigned field, uint64_t v)
{
    w_varint(w, (uint64_t)field << 3);
    w_varint(w, v);
}

static void w_msg(struct pbw *w, unsigned field, const struct pbw *m)
{
    w_len(w, field, m->b, m->n);
}

/* unknown fields of every wire type, which a reader must skip */
static void w_unknown(struct pbw *w)
{
    static const unsigned char i64[8] = {1, 2, 3, 4, 5, 6, 7, 8}, i32[4] = {9, 9, 9, 9};
    w_uint(w, 15, 123456789);
    w_varint(w, 16u << 3 | 1);
    w_raw(w, i64, 8);
    w_varint(w, 17u << 3 | 5);
    w_raw(w, i32, 4);
    w_str(w, 18, "unknown bytes");
}

static void attr(struct pbw *msg, const char *k, const char *v)
{
    struct pbw e = {.n = 0};
    w_str(&e, 1, k);
    w_str(&e, 2, v);
    w_msg(msg, 2, &e);
}

/* A PullResponse frame with two received messages. */
static void sample(struct pbw *frame)
{
    struct pbw resp = {.n = 0}, r1 = {.n = 0}, m1 = {.n = 0}, ts = {.n = 0}, r2 = {.n = 0},
               m2 = {.n = 0};
    static const unsigned char data[] = {'h', 'i', 0, 0xff, '!'};

    w_len(&m1, 1, data, sizeof(data));
    attr(&m1, "kind", "first");
    attr(&m1, "seq", "1");
    attr(&m1, "kind", "replaced"); /* a map: the last value wins */
    w_str(&m1, 3, "mid-1");
    w_uint(&ts, 1, 1700000000);
    w_uint(&ts, 2, 123456789);
    w_unknown(&ts);
    w_msg(&m1, 4, &ts);
    w_str(&m1, 5, "key-ü");
    w_unknown(&m1);
    w_str(&r1, 1, "ack-1");
    w_unknown(&r1);
    w_msg(&r1, 2, &m1);
    w_uint(&r1, 3, 3);
    w_str(&m2, 3, "mid-2"); /* no data, no attributes, no ordering key */
    w_msg(&r2, 2, &m2);     /* message before ack id: order does not matter */
    w_str(&r2, 1, "ack-2");
    w_msg(&resp, 1, &r1);
    w_unknown(&resp);
    w_msg(&resp, 1, &r2);
    frame->n = 0;
    w_raw(frame, "\0", 1);
    unsigned char len[4] = {(unsigned char)(resp.n >> 24), (unsigned char)(resp.n >> 16),
                            (unsigned char)(resp.n >> 8), (unsigned char)resp.n};
    w_raw(frame, len, 4);
    w_raw(frame, resp.b, resp.n);
}

static void free_msgs(struct dr_pubsub_msg **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dr_pubsub_msg_free(msgs[i]);
    }
    free(msgs);
}

static const char *attr_of(const struct dr_pubsub_msg *m, const char *k)
{
    for (size_t i = 0; i < m->n_attrs; i++) {
        if (strcmp(m->attrs[i].key, k) == 0) {
            return m->attrs[i].value;
        }
    }
    return NULL;
}

/* A frame around one ReceivedMessage (given as bytes). */
static void one(struct pbw *frame, const struct pbw *received)
{
    struct pbw resp = {.n = 0};
    w_msg(&resp, 1, received);
    frame->n = 0;
    unsigned char h[5] = {0, (unsigned char)(resp.n >> 24), (unsigned char)(resp.n >> 16),
                          (unsigned char)(resp.n >> 8), (unsigned char)resp.n};
    w_raw(frame, h, 5);
    w_raw(frame, resp.b, resp.n);
}

/* ---- tests ---- */

static void requests(void **state)
{
    static const char sub[] = "projects/proj/subscriptions/sub1";
    const char *ids[] = {"a", "bc"};
    struct dr_buf b;
    struct pbw want = {.n = 0};

    /* PullRequest{subscription=1, max_messages=3}: the bytes the emulator was seen to accept */
    dr_buf_init(&b, 4096);
    assert_int_equal(dr__grpc_pull_request(sub, 100, 0, &b), DR_OK);
    w_raw(&want, "\0\0\0\0\x24", 5);
    w_str(&want, 1, sub);
    w_uint(&want, 3, 100);
    assert_int_equal(b.len, want.n);
    assert_memory_equal(b.data, want.b, want.n);
    dr_buf_cleanup(&b);

    /* return_immediately=2 is sent only when set */
    dr_buf_init(&b, 4096);
    assert_int_equal(dr__grpc_pull_request(sub, 1000, 1, &b), DR_OK);
    want.n = 0;
    w_raw(&want, "\0\0\0\0\x27", 5);
    w_str(&want, 1, sub);
    w_uint(&want, 2, 1);
    w_uint(&want, 3, 1000);
    assert_int_equal(b.len, want.n);
    assert_memory_equal(b.data, want.b, want.n);
    dr_buf_cleanup(&b);

    /* AcknowledgeRequest{subscription=1, ack_ids=2} */
    dr_buf_init(&b, 4096);
    assert_int_equal(dr__grpc_ack_request(sub, ids, 2, -1, &b), DR_OK);
    want.n = 0;
    w_raw(&want, "\0\0\0\0\x29", 5);
    w_str(&want, 1, sub);
    w_str(&want, 2, "a");
    w_str(&want, 2, "bc");
    assert_int_equal(b.len, want.n);
    assert_memory_equal(b.data, want.b, want.n);
    dr_buf_cleanup(&b);

    /* ModifyAckDeadlineRequest{subscription=1, ack_deadline_seconds=3, ack_ids=4}: 0 is sent */
    dr_buf_init(&b, 4096);
    assert_int_equal(dr__grpc_ack_request(sub, ids, 2, 0, &b), DR_OK);
    want.n = 0;
    w_raw(&want, "\0\0\0\0\x2b", 5);
    w_str(&want, 1, sub);
    w_str(&want, 4, "a");
    w_str(&want, 4, "bc");
    w_uint(&want, 3, 0);
    assert_int_equal(b.len, want.n);
    assert_memory_equal(b.data, want.b, want.n);
    dr_buf_cleanup(&b);

    /* a buffer limit is honoured */
    dr_buf_init(&b, 16);
    assert_int_equal(dr__grpc_ack_request(sub, ids, 2, -1, &b), DR_ETOOBIG);
    dr_buf_cleanup(&b);
}

/* PublishRequest{topic=1, messages=2 PubsubMessage{data=1, attributes=2, ordering_key=5}} and
 * PublishResponse{message_ids=1}. */
static void publish(void **state)
{
    static const char topic[] = "projects/proj/topics/top1";
    struct dr_pubsub_attr attrs[2] = {{"kind", "x"}, {"k\xc3\xa9", ""}};
    struct dr_pubsub_pub_msg msgs[3] = {
        {.data = "hi\0!", .len = 4, .attrs = attrs, .n_attrs = 2, .ordering_key = "key-1"},
        {.attrs = attrs, .n_attrs = 1},
        {.data = "x", .len = 1, .ordering_key = ""},
    };
    struct pbw want = {.n = 0}, body = {.n = 0}, m, e;
    struct dr_buf b;
    char **ids;
    size_t n;

    w_str(&body, 1, topic);
    m.n = 0;
    w_len(&m, 1, "hi\0!", 4);
    e.n = 0;
    w_str(&e, 1, "kind");
    w_str(&e, 2, "x");
    w_msg(&m, 2, &e);
    e.n = 0;
    w_str(&e, 1, "k\xc3\xa9");
    w_str(&e, 2, "");
    w_msg(&m, 2, &e);
    w_str(&m, 5, "key-1");
    w_msg(&body, 2, &m);
    m.n = 0;
    e.n = 0;
    w_str(&e, 1, "kind");
    w_str(&e, 2, "x");
    w_msg(&m, 2, &e);
    w_msg(&body, 2, &m);
    m.n = 0;
    w_len(&m, 1, "x", 1);
    w_msg(&body, 2, &m);
    unsigned char h[5] = {0, 0, 0, (unsigned char)(body.n >> 8), (unsigned char)body.n};
    w_raw(&want, h, 5);
    w_raw(&want, body.b, body.n);

    dr_buf_init(&b, 65536);
    assert_int_equal(dr__grpc_publish_request(topic, msgs, 3, &b), DR_OK);
    assert_int_equal(b.len, want.n);
    assert_memory_equal(b.data, want.b, want.n);
    dr_buf_cleanup(&b);
    dr_buf_init(&b, 40); /* the limit is honoured */
    assert_int_equal(dr__grpc_publish_request(topic, msgs, 3, &b), DR_ETOOBIG);
    dr_buf_cleanup(&b);

    /* the answer: ids in order; unknown fields skipped */
    body.n = 0;
    w_str(&body, 1, "11");
    w_uint(&body, 9, 5);
    w_str(&body, 1, "12");
    want.n = 0;
    unsigned char h2[5] = {0, 0, 0, 0, (unsigned char)body.n};
    w_raw(&want, h2, 5);
    w_raw(&want, body.b, body.n);
    assert_int_equal(dr__grpc_parse_publish(want.b, want.n, &ids, &n), DR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "11");
    assert_string_equal(ids[1], "12");
    assert_null(ids[2]);
    for (size_t i = 0; i < n; i++) {
        free(ids[i]);
    }
    free(ids);

    /* refused: no frame, an id that is empty, not UTF-8 or not a string, a cut frame */
    static const char *bad[] = {"", "\xff", NULL};
    assert_int_equal(dr__grpc_parse_publish("", 0, &ids, &n), DR_EIO);
    for (int k = 0; k < 3; k++) {
        body.n = 0;
        w_str(&body, 1, "ok");
        if (bad[k]) {
            w_str(&body, 1, bad[k]);
        } else {
            w_uint(&body, 1, 7);
        }
        want.n = 0;
        unsigned char h3[5] = {0, 0, 0, 0, (unsigned char)body.n};
        w_raw(&want, h3, 5);
        w_raw(&want, body.b, body.n);
        ids = (char **)1;
        assert_int_equal(dr__grpc_parse_publish(want.b, want.n, &ids, &n), DR_EIO);
        assert_null(ids);
        assert_int_equal(dr__grpc_parse_publish(want.b, want.n - 1, &ids, &n), DR_EIO);
    }
}

static void answer(void **state)
{
    struct pbw f;
    struct dr_pubsub_msg **msgs;
    size_t n;

    sample(&f);
    assert_int_equal(dr__grpc_parse_pull(f.b, f.n, &msgs, &n), DR_OK);
    assert_int_equal(n, 2);
    assert_null(msgs[0]->invalid);
    assert_string_equal(msgs[0]->ack_id, "ack-1");
    assert_string_equal(msgs[0]->message_id, "mid-1");
    assert_int_equal(msgs[0]->len, 5);
    assert_memory_equal(msgs[0]->data, "hi\0\xff!", 5);
    assert_int_equal(msgs[0]->data[5], 0);
    assert_int_equal(msgs[0]->n_attrs, 2);
    assert_string_equal(attr_of(msgs[0], "kind"), "replaced");
    assert_string_equal(attr_of(msgs[0], "seq"), "1");
    assert_true(msgs[0]->publish_time_ms == 1700000000123LL);
    assert_string_equal(msgs[0]->ordering_key, "key-ü");
    assert_int_equal(msgs[0]->delivery_attempt, 3);
    assert_null(msgs[1]->invalid);
    assert_string_equal(msgs[1]->ack_id, "ack-2");
    assert_string_equal(msgs[1]->message_id, "mid-2");
    assert_int_equal(msgs[1]->len, 0);
    assert_string_equal((char *)msgs[1]->data, "");
    assert_int_equal(msgs[1]->n_attrs, 0);
    assert_string_equal(msgs[1]->ordering_key, "");
    assert_int_equal(msgs[1]->delivery_attempt, 0);
    assert_true(msgs[1]->publish_time_ms == 0);
    free_msgs(msgs, n);

    /* no body, or an empty message: nothing pulled */
    assert_int_equal(dr__grpc_parse_pull("", 0, &msgs, &n), DR_OK);
    assert_int_equal(n, 0);
    assert_null(msgs);
    assert_int_equal(dr__grpc_parse_pull("\0\0\0\0\0", 5, &msgs, &n), DR_OK);
    assert_int_equal(n, 0);
}

static void refused_answers(void **state)
{
    struct pbw f, r, m;
    struct dr_pubsub_msg **msgs;
    size_t n;
    static const struct {
        const char *what;
        const char *bytes;
        size_t len;
    } raw[] = {
        {"short header", "\0\0\0", 3},
        {"compressed", "\1\0\0\0\0", 5},
        {"length beyond the body", "\0\0\0\0\x09\x0a\x00", 7},
        {"bytes after the frame", "\0\0\0\0\0\0", 6},
        {"truncated varint", "\0\0\0\0\x01\x80", 6},
        {"varint of 11 bytes", "\0\0\0\0\x0c\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 17},
        {"field number 0", "\0\0\0\0\x02\x00\x01", 7},
        {"group wire type", "\0\0\0\0\x01\x0b", 6},
        {"wire type 7", "\0\0\0\0\x02\x0f\x00", 7},
        {"fixed64 cut short", "\0\0\0\0\x03\x09\x01\x02", 8},
        {"nested length beyond its parent", "\0\0\0\0\x04\x0a\x02\x0a\x05", 9},
        {"received_messages as a varint", "\0\0\0\0\x02\x08\x01", 7},
    };

    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        msgs = (void *)1;
        n = 99;
        if (dr__grpc_parse_pull(raw[i].bytes, raw[i].len, &msgs, &n) != DR_EIO) {
            fail_msg("accepted: %s", raw[i].what);
        }
        assert_null(msgs);
        assert_int_equal(n, 0);
    }

    /* a received message without ack id cannot be acknowledged: the whole answer is refused */
    r.n = 0;
    m.n = 0;
    w_str(&m, 3, "mid");
    w_msg(&r, 2, &m);
    one(&f, &r);
    assert_int_equal(dr__grpc_parse_pull(f.b, f.n, &msgs, &n), DR_EIO);
    /* ... nor with an empty one, one that is not UTF-8, or one with a NUL in it */
    static const char *bad_ids[] = {"", "ack\xff", "ack\xc0\x80"};
    for (size_t i = 0; i < 3; i++) {
        r.n = 0;
        w_str(&r, 1, bad_ids[i]);
        w_msg(&r, 2, &m);
        one(&f, &r);
        assert_int_equal(dr__grpc_parse_pull(f.b, f.n, &msgs, &n), DR_EIO);
    }
    r.n = 0;
    w_len(&r, 1, "a\0b", 3);
    one(&f, &r);
    assert_int_equal(dr__grpc_parse_pull(f.b, f.n, &msgs, &n), DR_EIO);
    /* the ack id with the wrong wire type */
    r.n = 0;
    w_uint(&r, 1, 7);
    one(&f, &r);
    assert_int_equal(dr__grpc_parse_pull(f.b, f.n, &msgs, &n), DR_EIO);
}

/* A received message with ack id "ack" around the PubsubMessage bytes m (NULL: none) must parse
 * as one message that is invalid but complete, so it can be dead-lettered and acked. */
static void expect_undecodable(const struct pbw *m, const char *what)
{
    struct pbw f, r = {.n = 0};
    struct dr_pubsub_msg **msgs;
    size_t n;

    w_str(&r, 1, "ack");
    if (m) {
        w_msg(&r, 2, m);
    }
    one(&f, &r);
    assert_int_equal(dr__grpc_parse_pull(f.b, f.n, &msgs, &n), DR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(msgs[0]->ack_id, "ack");
    if (!msgs[0]->invalid || strlen(msgs[0]->invalid) < 6) {
        fail_msg("%s: not marked undecodable with a reason", what);
    }
    assert_non_null(msgs[0]->message_id);
    assert_non_null(msgs[0]->data);
    assert_non_null(msgs[0]->ordering_key);
    free_msgs(msgs, n);
}

static void undecodable_but_ackable(void **state)
{
    struct pbw m, ts = {.n = 0};

    m.n = 0;
    w_str(&m, 3, "mid");
    attr(&m, "k", "\xff\xfe");
    expect_undecodable(&m, "attribute value not UTF-8");

    m.n = 0;
    w_str(&m, 1, "data");
    expect_undecodable(&m, "no message id");

    w_uint(&ts, 1, 1);
    w_uint(&ts, 2, 1000000000);
    m.n = 0;
    w_str(&m, 3, "mid");
    w_msg(&m, 4, &ts);
    expect_undecodable(&m, "publish time nanos out of range");

    m.n = 0;
    w_raw(&m, "\x0a\x7f", 2);
    expect_undecodable(&m, "message bytes not protobuf");

    expect_undecodable(NULL, "no message");

    m.n = 0;
    w_str(&m, 3, "mid");
    w_len(&m, 5, "k\0", 2);
    expect_undecodable(&m, "ordering key with a NUL");
}

/* Every truncation and many byte flips of a valid answer: refused or parsed, never a crash
 * (ASan watches), and what is parsed is complete. */
static void mutations(void **state)
{
    struct pbw f, g;
    struct dr_pubsub_msg **msgs;
    size_t n;
    unsigned seed = 12345;
    int ok = 0, refused = 0;

    sample(&f);
    for (size_t cut = 0; cut < f.n; cut++) {
        assert_int_equal(dr__grpc_parse_pull(f.b, cut, &msgs, &n), cut == 0 ? DR_OK : DR_EIO);
    }
    for (int round = 0; round < 20000; round++) {
        g = f;
        for (int flips = 1 + (int)(seed % 3); flips > 0; flips--) {
            seed = seed * 1103515245u + 12345u;
            size_t at = 5 + (seed >> 8) % (g.n - 5);
            seed = seed * 1103515245u + 12345u;
            g.b[at] = (unsigned char)(seed >> 16);
        }
        if (dr__grpc_parse_pull(g.b, g.n, &msgs, &n) == DR_OK) {
            ok++;
            for (size_t i = 0; i < n; i++) {
                assert_non_null(msgs[i]->ack_id);
                assert_true(*msgs[i]->ack_id);
                assert_non_null(msgs[i]->message_id);
                assert_non_null(msgs[i]->data);
                assert_non_null(msgs[i]->ordering_key);
                for (size_t a = 0; a < msgs[i]->n_attrs; a++) {
                    assert_non_null(msgs[i]->attrs[a].key);
                    assert_non_null(msgs[i]->attrs[a].value);
                }
            }
            free_msgs(msgs, n);
        } else {
            refused++;
            assert_null(msgs);
        }
    }
    /* both outcomes happen, so the loop exercised both paths */
    assert_true(ok > 100);
    assert_true(refused > 100);
}

static void status(void **state)
{
    char msg[128];

    assert_int_equal(dr__grpc_error(5, "Subscription%20does%20not%20exist", msg, sizeof(msg)),
                     DR_ENOTFOUND);
    assert_string_equal(msg, "gRPC NOT_FOUND: Subscription does not exist");
    assert_int_equal(dr__grpc_error(3, "bad", msg, sizeof(msg)), DR_EINVAL);
    assert_int_equal(dr__grpc_error(6, NULL, msg, sizeof(msg)), DR_EEXIST);
    assert_string_equal(msg, "gRPC ALREADY_EXISTS: (no message)");
    assert_int_equal(dr__grpc_error(7, "", msg, sizeof(msg)), DR_EAUTH);
    assert_int_equal(dr__grpc_error(16, "", msg, sizeof(msg)), DR_EAUTH);
    assert_int_equal(dr__grpc_error(12, "", msg, sizeof(msg)), DR_EUNSUPPORTED);
    assert_int_equal(dr__grpc_error(14, "", msg, sizeof(msg)), DR_EIO);
    assert_int_equal(dr__grpc_error(8, "", msg, sizeof(msg)), DR_EIO);
    assert_int_equal(dr__grpc_error(99, "x", msg, sizeof(msg)), DR_EIO);
    assert_string_equal(msg, "gRPC status 99: x");
    /* control characters from the server never reach a log line; bad escapes stay as they are */
    assert_int_equal(dr__grpc_error(13, "a%0Ab%0D%1Bc%zz%4", msg, sizeof(msg)), DR_EIO);
    assert_string_equal(msg, "gRPC INTERNAL: a b  c%zz%4");
    /* a long message is cut to fit */
    char longmsg[1024];
    memset(longmsg, 'x', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    dr__grpc_error(2, longmsg, msg, sizeof(msg));
    assert_int_equal(strlen(msg), sizeof(msg) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests),
        cmocka_unit_test(publish),
        cmocka_unit_test(answer),
        cmocka_unit_test(refused_answers),
        cmocka_unit_test(undecodable_but_ackable),
        cmocka_unit_test(mutations),
        cmocka_unit_test(status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
