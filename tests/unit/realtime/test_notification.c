/* Tests src/realtime/notification.c: ClientNotification validation and its encodings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "fuzz/same_notification.h"
#include "realtime/rt_int.h"

static struct dr_notification *parse_ok(const char *json, const char *def)
{
    struct dr_notification *n = NULL;
    char err[128] = "";

    assert_int_equal(dr_notification_parse(json, strlen(json), def, &n, err, sizeof(err)), DR_OK);
    assert_non_null(n);
    return n;
}

static void parse_fails(const char *json, const char *why_part)
{
    struct dr_notification *n = (void *)1;
    char err[128] = "";

    assert_int_not_equal(dr_notification_parse(json, strlen(json), "m1", &n, err, sizeof(err)),
                         DR_OK);
    assert_null(n);
    assert_non_null(strstr(err, why_part));
}

static void valid_notification_round_trips(void **state)
{
    struct dr_notification *n =
        parse_ok("{\"notification_id\":\"n1\",\"user_id\":\"u1\",\"org_id\":\"o1\",\"room\":"
                 "\"shipment:1Z9\","
                 "\"notification_type\":\"shipment.updated\",\"title\":\"T\",\"message\":\"M\","
                 "\"data\":{\"k\":[1,2]},\"timestamp\":\"2026-11-27T10:00:00Z\",\"junk\":1}",
                 NULL);
    cJSON *o;
    char *ev;
    size_t len;

    assert_string_equal(dr_notification_id(n), "n1");
    assert_string_equal(dr_notification_room(n), "shipment:1Z9");
    assert_int_equal(dr_notification_seq(n), 0);
    dr__notification_set_seq(n, 77);
    const char *js = dr_notification_json(n, &len);
    o = dr_json_parse(js, len);
    assert_non_null(o);
    assert_string_equal(dr_json_str(o, "notification_type"), "shipment.updated");
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "junk")); /* only known fields are kept */
    cJSON_Delete(o);

    ev = dr__notification_event_json(n, dr_notification_seq(n), &len);
    o = dr_json_parse(ev, len);
    assert_string_equal(dr_json_str(o, "type"), "event");
    assert_string_equal(dr_json_str(o, "room"), "shipment:1Z9");
    assert_string_equal(dr_json_str(o, "id"), "n1");
    assert_string_equal(dr_json_str(o, "event"), "shipment.updated");
    int64_t seq = 0;
    assert_int_equal(dr_json_i64(o, "seq", &seq), DR_OK);
    assert_int_equal(seq, 77);
    assert_int_equal(dr_json_i64(cJSON_GetObjectItemCaseSensitive(o, "data"), "seq", &seq), DR_OK);
    assert_int_equal(seq, 77);
    cJSON_Delete(o);
    free(ev);

    /* the stored body reloads to the same notification */
    struct dr_notification *r = dr__notification_from_row(77, n->body, n->body_len);
    assert_non_null(r);
    assert_string_equal(r->json, n->json);
    dr_notification_unref(r);
    dr_notification_unref(n);
}

/* The stored body as the cJSON tree it stands for would print: fixed key order, optional ids
 * left out, cJSON's string escaping, data printed as it came. */
static char *reference_body(const char *id, const char *user, const char *org, const char *room,
                            const char *type, const char *title, const char *message,
                            const char *data_json, const char *ts)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    cJSON_AddStringToObject(o, "notification_id", id);
    if (user) {
        cJSON_AddStringToObject(o, "user_id", user);
    }
    if (org) {
        cJSON_AddStringToObject(o, "org_id", org);
    }
    cJSON_AddStringToObject(o, "room", room);
    cJSON_AddStringToObject(o, "notification_type", type);
    cJSON_AddStringToObject(o, "title", title);
    cJSON_AddStringToObject(o, "message", message);
    cJSON_AddItemToObject(o, "data", data_json ? cJSON_Parse(data_json) : cJSON_CreateObject());
    cJSON_AddStringToObject(o, "timestamp", ts);
    s = dr_json_print(o);
    cJSON_Delete(o);
    return s;
}

static void body_is_canonical(void **state)
{
    (void)state;
    struct dr_notification *n = NULL;
    char err[128];
    /* escapes of every kind, UTF-8, DEL, nested data with arrays, numbers and literals */
    const char *in =
        "{\"notification_id\":\"n\\\"1\",\"user_id\":\"u1\",\"org_id\":\"o1\","
        "\"notification_type\":\"shipment.updated\",\"title\":\"T\\u00e9 \\\\ \\/ \\t\\n\\r\\b\\f"
        "\\u0001\\u001f\x7f\",\"message\":\"m \\u2028 \\ud83d\\ude00\","
        "\"data\":{\"b\":[1,2.5,-3e2,true,false,null,{\"x\":\"\\\"\"}],\"a\":\"\"},"
        "\"timestamp\":\"2026-11-27T05:00:00.000Z\",\"ignored\":1}";

    assert_int_equal(dr_notification_parse(in, strlen(in), NULL, &n, err, sizeof(err)), DR_OK);
    char *want =
        reference_body("n\"1", "u1", "o1", "user:u1", "shipment.updated",
                       "T\xc3\xa9 \\ / \t\n\r\b\f\x01\x1f\x7f", "m \xe2\x80\xa8 \xf0\x9f\x98\x80",
                       "{\"b\":[1,2.5,-3e2,true,false,null,{\"x\":\"\\\"\"}],\"a\":\"\"}",
                       "2026-11-27T05:00:00.000Z");
    assert_string_equal(n->body, want);
    assert_int_equal(n->body_len, strlen(want));
    free(want);
    dr_notification_unref(n);

    /* no user, no org, no data, no title: defaults as before */
    in = "{\"notification_id\":\"n2\",\"room\":\"meeting:p1\",\"notification_type\":\"poll.x\","
         "\"data\":null,\"timestamp\":\"2026-11-27T05:00:00Z\"}";
    assert_int_equal(dr_notification_parse(in, strlen(in), NULL, &n, err, sizeof(err)), DR_OK);
    want = reference_body("n2", NULL, NULL, "meeting:p1", "poll.x", "", "", NULL,
                          "2026-11-27T05:00:00Z");
    assert_string_equal(n->body, want);
    free(want);
    dr_notification_unref(n);
}

static void defaults(void **state)
{
    struct dr_notification *n =
        parse_ok("{\"user_id\":\"bob\",\"notification_type\":\"system.hello\"}", "msg-9");
    assert_string_equal(dr_notification_id(n), "msg-9");      /* the message id */
    assert_string_equal(dr_notification_room(n), "user:bob"); /* from user_id */
    dr_notification_unref(n);
}

static void invalid_notifications(void **state)
{
    parse_fails("not json", "JSON object");
    parse_fails("[1]", "JSON object");
    parse_fails("{\"room\":\"user:a\"}", "notification_type");
    parse_fails("{\"room\":\"user:a\",\"notification_type\":\"bad type!\"}", "notification_type");
    parse_fails("{\"room\":\"lobby\",\"notification_type\":\"a\"}", "room");
    parse_fails("{\"room\":\"user:\",\"notification_type\":\"a\"}", "room");
    parse_fails("{\"room\":\"user:a b\",\"notification_type\":\"a\"}", "room");
    parse_fails("{\"notification_type\":\"a\"}", "room");
    parse_fails("{\"room\":\"user:a\",\"notification_type\":\"a\",\"data\":[1]}", "data");
    parse_fails("{\"room\":\"user:a\",\"notification_type\":\"a\",\"title\":5}", "wrong type");
    parse_fails("{\"room\":\"user:a\",\"notification_type\":\"a\",\"timestamp\":\"yesterday\"}",
                "timestamp");
    parse_fails("{\"room\":\"user:a\",\"notification_type\":\"a\",\"notification_id\":\"a\\nb\"}",
                "notification_id");
}

static void oversized_is_refused(void **state)
{
    size_t n = DR_NOTIFICATION_MAX_BYTES + 10;
    char *big = malloc(n + 1);
    struct dr_notification *out = NULL;
    char err[128];

    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    assert_int_equal(dr_notification_parse(big, n, "m", &out, err, sizeof(err)), DR_ETOOBIG);
    assert_null(out);
    free(big);
}

static void room_names(void **state)
{
    assert_true(dr_room_valid("user:abc"));
    assert_true(dr_room_valid("org:o-1"));
    assert_true(dr_room_valid("meeting:p_1"));
    assert_true(dr_room_valid("shipment:1Z999AA10123456784"));
    assert_false(dr_room_valid(NULL));
    assert_false(dr_room_valid("user"));
    assert_false(dr_room_valid("admin:all"));
    assert_false(dr_room_valid("user:\x7f"));
    char longid[200];
    memset(longid, 'x', sizeof(longid));
    memcpy(longid, "user:", 5);
    longid[5 + 129] = '\0';
    assert_false(dr_room_valid(longid));
    longid[5 + 128] = '\0';
    assert_true(dr_room_valid(longid));
}

/* ---- the fast reader (dr__notification_scan) against the cJSON path it stands in for ---- */

static int slow_path(const char *s, size_t n, const char *def, struct dr_notification **out)
{
    cJSON *o = dr_json_parse(s, n);
    char err[128];
    int rc = dr__notification_from_json(o, def, out, err, sizeof(err));

    cJSON_Delete(o);
    return rc;
}

static int fast_path(const char *s, size_t n, const char *def, struct dr_notification **out)
{
    struct dr_buf scratch;
    const char *p = s;
    int rc;

    dr_buf_init(&scratch, SIZE_MAX);
    rc = dr__notification_scan(&p, s + n, def, 0, &scratch, out);
    dr_buf_cleanup(&scratch);
    return rc;
}

static const char *const plain_inputs[] = {
    "{\"notification_id\":\"n1\",\"user_id\":\"u1\",\"org_id\":\"o1\",\"room\":\"org:o1\","
    "\"notification_type\":\"bench.tick\",\"title\":\"bench\",\"message\":\"\","
    "\"data\":{\"i\":7,\"t_ns\":1795833309088000123},\"timestamp\":\"2026-01-01T00:00:00.000Z\"}",
    /* whitespace anywhere, members in another order, nulls, no room (user:), extra members */
    " {\n\t\"timestamp\" : \"2026-11-27T10:00:00+02:00\" , \"notification_type\":\"a.b-c_d\","
    "\"user_id\":\"u2\", \"room\": null, \"title\": null, \"priority\": [1, {\"x\": null}],"
    "\"data\" : { \"a\" : [ 1 , 2.50 , -0 , 1e3, 12345678901234567890, true, false, null,"
    " 999999999999999, -999999999999999, 1000000000000000, -0.0, 0.1e1,"
    " \"s\", {}, [] ] , \"b\":{\"c\":{\"d\":\"\xc3\xa9t\xc3\xa9\"}} } , "
    "\"notification_id\":\"n2\"} ",
    "{\"user_id\":\"u3\",\"notification_type\":\"t\",\"data\":null,\"timestamp\":"
    "\"2026-02-31T23:59:60.5Z\"}",
    "{\"room\":\"meeting:p1\",\"notification_type\":\"poll.updated\",\"message\":\"a/b <c>\","
    "\"data\":{\"dup\":1,\"dup\":2,\"timestamp\":3},\"extra\":\"x\",\"extra\":4,"
    "\"timestamp\":\"2026-03-01T00:00:00Z\"}",
};

static void scan_reads_plain_notifications(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(plain_inputs) / sizeof(plain_inputs[0]); i++) {
        const char *in = plain_inputs[i];
        struct dr_notification *a = NULL, *b = NULL;

        assert_int_equal(fast_path(in, strlen(in), "def", &a), RT_SCAN_OK);
        assert_int_equal(slow_path(in, strlen(in), "def", &b), DR_OK);
        if (!same_notification(a, b, 1, 0)) {
            fail_msg("input %zu:\n fast %s\n slow %s", i, a->body, b->body);
        }
        dr_notification_unref(a);
        dr_notification_unref(b);
        /* and through the public entry, which tries the fast reader first */
        a = parse_ok(in, "def");
        dr_notification_unref(a);
    }
    /* a default id (the message's) is printable, which allows '"' and '\\': escaped */
    {
        const char *in = "{\"room\":\"org:o\",\"notification_type\":\"t\",\"timestamp\":"
                         "\"2026-01-01T00:00:00Z\"}";
        struct dr_notification *a = NULL, *b = NULL;

        assert_int_equal(fast_path(in, strlen(in), "m\"1\\", &a), RT_SCAN_OK);
        assert_int_equal(slow_path(in, strlen(in), "m\"1\\", &b), DR_OK);
        assert_string_equal(a->body, b->body);
        assert_non_null(strstr(a->body, "\"notification_id\":\"m\\\"1\\\\\""));
        dr_notification_unref(a);
        dr_notification_unref(b);
    }
}

/* What the fast reader leaves to cJSON: dr_notification_parse() still answers it as before. */
static void scan_leaves_the_rest(void **state)
{
    static const char *const leave[] = {
        "{\"notification_id\":\"n\\u0031\",\"room\":\"org:o\",\"notification_type\":\"t\"}",
        "{\"room\":\"org:o\",\"notification_type\":\"t\",\"title\":\"a\\nb\"}",
        "{\"room\":\"org:o\",\"notification_type\":\"t\",\"data\":{\"k\":\"\\\"q\\\"\"}}",
        "{\"room\":\"org:o\",\"room\":\"org:p\",\"notification_type\":\"t\"}",
        "{\"room\":\"org:o\",\"notification_type\":\"t\",\"title\":\"tab\there\"}",
        "{\"room\":\"org:o\",\"notification_type\":\"t\",\"title\":5}",
        "{\"room\":\"org:o\",\"notification_type\":\"t\",\"data\":[1]}",
        "{\"room\":\"org:o\",\"notification_type\":\"t\",\"data\":{\"n\":01}}",
        "{\"room\":\"org:o\",\"notification_type\":\"t\",\"data\":{\"n\":1,}}",
        "{\"room\":\"bad\",\"notification_type\":\"t\"}",
        "{\"room\":\"org:o\",\"notification_type\":\"t\",\"timestamp\":\"yesterday\"}",
        "{\"room\":\"org:o\",\"notification_type\":\"t\"",
        "{\"room\":\"org:o\",\"notification_type\":\"t\",\"notification_id\":null}",
        "{\"room\":\"org:o\",\"notification_type\":\"t\",\"data\":"
        "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(leave) / sizeof(leave[0]); i++) {
        struct dr_notification *a = (void *)1, *b = NULL;
        int want = slow_path(leave[i], strlen(leave[i]), NULL, &b);

        if (fast_path(leave[i], strlen(leave[i]), NULL, &a) != RT_SCAN_NO || a) {
            fail_msg("input %zu was read by the fast reader: %s", i, leave[i]);
        }
        assert_int_equal(dr_notification_parse(leave[i], strlen(leave[i]), NULL, &a, NULL, 0),
                         want);
        assert_true(want != DR_OK || same_notification(a, b, 0, 0));
        dr_notification_unref(a);
        dr_notification_unref(b);
    }
}

/* Random edits of the plain inputs: whatever the fast reader takes, the cJSON path takes the same
 * way. The edits are the bytes that change JSON's meaning. */
static void scan_agrees_with_cjson_on_edits(void **state)
{
    static const char alphabet[] = "{}[]\",:\\ \t0123456789.eE+-tfnulrsa\x01\x7f\xc3";
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    char buf[1024];
    int fast = 0, total = 0;

    (void)state;
    for (int round = 0; round < 40000; round++) {
        const char *seed = plain_inputs[round % (sizeof(plain_inputs) / sizeof(plain_inputs[0]))];
        size_t n = strlen(seed);
        struct dr_notification *a = NULL, *b = NULL;

        memcpy(buf, seed, n);
        for (int e = 0, edits = 1 + round % 3; e < edits; e++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t at = (size_t)(rng >> 8) % n;
            char c = alphabet[(rng >> 40) % (sizeof(alphabet) - 1)];
            switch ((rng >> 56) % 3) {
            case 0: /* replace */
                buf[at] = c;
                break;
            case 1: /* insert */
                if (n + 1 < sizeof(buf)) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = c;
                    n++;
                }
                break;
            default: /* delete */
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
            }
        }
        total++;
        if (fast_path(buf, n, "def", &a) != RT_SCAN_OK) {
            assert_null(a);
            continue;
        }
        fast++;
        if (slow_path(buf, n, "def", &b) != DR_OK || !same_notification(a, b, 0, 0)) {
            fail_msg("edit %d: fast reader and cJSON differ on %.*s\n fast %s\n slow %s", round,
                     (int)n, buf, a->body, b ? b->body : "(refused)");
        }
        dr_notification_unref(a);
        dr_notification_unref(b);
    }
    /* the edits leave many notifications readable: the comparison above is not empty */
    assert_true(fast > total / 10);
}

/* Integers are read without strtod() up to 19 digits: the same doubles, written the same way. */
static void scan_numbers_as_cjson(void **state)
{
    static const char *const fixed[] = {"0",
                                        "-0",
                                        "7",
                                        "999999999999999",
                                        "1000000000000000",
                                        "9007199254740992",
                                        "9007199254740993",
                                        "9007199254740995",
                                        "-9007199254740993",
                                        "9223372036854775807",
                                        "9223372036854775808",
                                        "9999999999999999999",
                                        "-9999999999999999999",
                                        "18446744073709551615",
                                        "18446744073709551616",
                                        "1795833309088000123",
                                        "1e15",
                                        "0.5",
                                        "-1.25e-7",
                                        "123456789012345678901234567890"};
    uint64_t rng = 12345;

    (void)state;
    for (int i = 0; i < 20000; i++) {
        char num[32], in[256];
        struct dr_notification *a = NULL, *b = NULL;

        if (i < (int)(sizeof(fixed) / sizeof(fixed[0]))) {
            snprintf(num, sizeof(num), "%s", fixed[i]);
        } else {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            int digits = 15 + (int)(rng % 6); /* 15..20 */
            uint64_t v = rng >> 3;
            snprintf(num, sizeof(num), "%s%llu", rng & 1 ? "-" : "", (unsigned long long)v);
            num[(rng & 1) + (size_t)digits] = '\0';
            if (num[rng & 1] == '0') {
                num[rng & 1] = '1';
            }
        }
        snprintf(in, sizeof(in),
                 "{\"room\":\"org:o\",\"notification_type\":\"t\",\"data\":{\"n\":%s},"
                 "\"timestamp\":\"2026-01-01T00:00:00Z\"}",
                 num);
        assert_int_equal(fast_path(in, strlen(in), "id", &a), RT_SCAN_OK);
        assert_int_equal(slow_path(in, strlen(in), "id", &b), DR_OK);
        if (strcmp(a->body, b->body) != 0) {
            fail_msg("%s: fast %s, cJSON %s", num, a->body, b->body);
        }
        dr_notification_unref(a);
        dr_notification_unref(b);
    }
}

/* A stored row is read without a tree when it is canonical, as the store keeps it, and through
 * one otherwise; the same notification either way, its body as stored. */
static void rows_read_alike(void **state)
{
    static const char spaced[] =
        "{ \"notification_id\": \"r2\", \"room\": \"org:o\", \"notification_type\": \"t\","
        " \"title\": \"\", \"message\": \"\", \"data\": {}, \"timestamp\": "
        "\"2026-01-01T00:00:00.000Z\" }";
    (void)state;
    for (size_t i = 0; i < sizeof(plain_inputs) / sizeof(plain_inputs[0]); i++) {
        struct dr_notification *a = parse_ok(plain_inputs[i], "def"), *b, *c;

        b = dr__notification_canonical(a->body, a->body_len);
        assert_non_null(b);
        c = dr__notification_from_row(77, a->body, a->body_len);
        assert_non_null(c);
        assert_true(same_notification(a, b, 1, 0));
        assert_true(same_notification(a, c, 1, 0));
        assert_int_equal(dr_notification_seq(c), 77);
        dr__notification_set_seq(a, 77);
        assert_string_equal(a->json, c->json);
        dr_notification_unref(a);
        dr_notification_unref(b);
        dr_notification_unref(c);
    }
    /* not canonical: through the tree, kept as stored */
    struct dr_notification *r = dr__notification_from_row(5, spaced, strlen(spaced));
    assert_null(dr__notification_canonical(spaced, strlen(spaced)));
    assert_non_null(r);
    assert_string_equal(r->id, "r2");
    assert_string_equal(r->room, "org:o");
    assert_string_equal(r->body, spaced);
    dr_notification_unref(r);
    /* not a notification */
    assert_null(dr__notification_from_row(6, "{\"room\":\"org:o\"}", 16));
    assert_null(dr__notification_canonical("{\"room\":\"org:o\"}", 16));
    /* stored before such text was refused: not read, so never sent */
    static const char *const bad[] = {
        "{\"notification_id\":\"r3\",\"room\":\"org:o\",\"notification_type\":\"t\","
        "\"title\":\"bad \xff\xfe title\"}",
        "{\"notification_id\":\"r4\",\"room\":\"org:o\",\"notification_type\":\"t\","
        "\"title\":\"Hello\\u0000 hidden\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(dr__notification_from_row(7, bad[i], strlen(bad[i])));
    }
}

/* A notification around member (the text of one or more members), for the cases below. What
 * follows member is long enough for the fast reader's sixteen-byte steps. */
#define WITH(member) "{" member ",\"room\":\"org:o\",\"notification_type\":\"t\"}"

/* The text as given to dr_notification_parse() (the client-notifications topic) is refused with
 * why_part, and the fast reader leaves it to the cJSON path (which gives that error). */
static void refused_as(const char *json, size_t len, const char *why_part)
{
    struct dr_notification *n = (void *)1;
    char err[128] = "";

    if (fast_path(json, len, "m1", &n) != RT_SCAN_NO || n) {
        fail_msg("the fast reader took %.*s", (int)len, json);
    }
    assert_int_not_equal(dr_notification_parse(json, len, "m1", &n, err, sizeof(err)), DR_OK);
    assert_null(n);
    if (!strstr(err, why_part)) {
        fail_msg("%.*s refused with \"%s\", not \"%s\"", (int)len, json, err, why_part);
    }
}

/* A WebSocket client fails the connection on a text frame that is not UTF-8 (RFC 6455 §8.1), and
 * a resume would send the notification again: one with invalid UTF-8 anywhere is refused. */
static void invalid_utf8_is_refused(void **state)
{
    static const char *const bad[] = {
        WITH("\"title\":\"bad \xff\xfe title\""),
        WITH("\"title\":\"the byte past sixteen \xff\""),       /* after a whole step */
        WITH("\"message\":\"caf\xc3\""),                        /* cut short at the end */
        WITH("\"message\":\"caf\xc3 au lait\""),                /* a lead byte, no continuation */
        WITH("\"title\":\"\x80\""),                             /* a continuation byte alone */
        WITH("\"title\":\"\xc0\xaf\""),                         /* overlong '/' */
        WITH("\"title\":\"\xe0\x80\xaf\""),                     /* overlong, three bytes */
        WITH("\"title\":\"\xed\xa0\x80\""),                     /* the surrogate U+D800 */
        WITH("\"title\":\"\xf4\x90\x80\x80\""),                 /* above U+10FFFF */
        WITH("\"data\":{\"k\":\"\xff\"}"),                      /* a data value */
        WITH("\"data\":{\"a\":[\"ok\",{\"b\":\"\xe2\x82\"}]}"), /* nested in data */
        WITH("\"data\":{\"\xed\xbf\xbf\":1}"),                  /* a data key */
        WITH("\"x\xfe\":1"),                                    /* the key of a member not kept */
        WITH("\"extra\":\"\xc3\xa9\xc3\""),                     /* the value of one */
        /* through the escapes path too: cJSON keeps the bytes */
        WITH("\"title\":\"a\\n\xff\""),
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        refused_as(bad[i], strlen(bad[i]), "invalid UTF-8");
    }
}

/* Valid UTF-8 is read by the fast reader as before, kept byte for byte. */
static void valid_utf8_is_read_fast(void **state)
{
    static const char in[] = WITH(
        "\"title\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 over sixteen bytes \xc3\xa9\","
        "\"message\":\"\xef\xbf\xbd\xf4\x8f\xbf\xbf\","
        "\"data\":{\"\xc3\xa9t\xc3\xa9\":\"\xe2\x80\xa8\"},\"timestamp\":\"2026-01-01T00:00:00Z\"");
    struct dr_notification *a = NULL, *b = NULL;

    (void)state;
    assert_int_equal(fast_path(in, strlen(in), "id", &a), RT_SCAN_OK);
    assert_int_equal(slow_path(in, strlen(in), "id", &b), DR_OK);
    assert_string_equal(a->body, b->body);
    assert_non_null(strstr(a->body, "\"title\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 over"));
    dr_notification_unref(a);
    dr_notification_unref(b);
    a = parse_ok(in, "id");
    dr_notification_unref(a);
}

/* cJSON ends a string at U+0000: "Hello\u0000 hidden" would be stored as "Hello". */
static void nul_is_refused(void **state)
{
    static const char *const bad[] = {
        WITH("\"title\":\"Hello\\u0000 hidden\""),
        WITH("\"message\":\"\\u0000\""),
        WITH("\"data\":{\"k\":\"a\\u0000b\"}"),
        WITH("\"data\":{\"a\\u0000b\":1}"),
        WITH("\"title\":\"\\\\\\u0000\""), /* an escaped backslash, then \u0000 */
        WITH("\"extra\":\"\\u0000\""),
    };
    static const char raw[] = WITH("\"title\":\"a\0b\""); /* a NUL byte, not escaped */
    struct dr_notification *n;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        refused_as(bad[i], strlen(bad[i]), "strings must not contain U+0000");
    }
    refused_as(raw, sizeof(raw) - 1, "strings must not contain U+0000");

    /* an escaped backslash followed by the text u0000 is six characters, kept */
    n = parse_ok(WITH("\"title\":\"\\\\u0000 kept\",\"data\":{\"k\\\\u0000\":\"\\\\u0000\"}"), "m");
    assert_non_null(strstr(n->body, "\"title\":\"\\\\u0000 kept\""));
    assert_non_null(strstr(n->body, "\"data\":{\"k\\\\u0000\":\"\\\\u0000\"}"));
    dr_notification_unref(n);
}

/* The topic's text is one JSON object: what follows it would be dropped unread. Spaces after
 * it are nothing. */
static void nothing_after_the_object(void **state)
{
    static const char *const bad[] = {
        WITH("\"title\":\"x\"") "garbage", WITH("\"title\":\"x\"") " {}",
        WITH("\"title\":\"a\\u00e9\"") "x", /* an escape: read through the tree */
    };
    struct dr_notification *n;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[128] = "";
        n = (void *)1;
        assert_int_equal(dr_notification_parse(bad[i], strlen(bad[i]), "m1", &n, err, sizeof(err)),
                         DR_EINVAL);
        assert_null(n);
        assert_string_equal(err, "unexpected data after the JSON object");
    }
    n = parse_ok(WITH("\"title\":\"a\\u00e9\"") " \n", "m");
    dr_notification_unref(n);
}

/*
 * A seq is written with every digit, in the bus form and in the event frame (its seq and resume),
 * also where a double would round it (above 2^53) or give it an exponent (from 1e15), and the
 * bus form reads back to the same seq, up to the largest.
 */
static void seqs_written_exactly(void **state)
{
    static const int64_t seqs[] = {
        1, 999999999999999, 1000000000000000, 1234567890123450, 9007199254740993, INT64_MAX};
    (void)state;
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        struct dr_notification *n = parse_ok(plain_inputs[0], "def");
        char want[64], *ev;
        size_t len;

        dr__notification_set_seq(n, seqs[i]);
        snprintf(want, sizeof(want), ",\"seq\":%lld}", (long long)seqs[i]);
        if (n->json_len < strlen(want) || strcmp(n->json + n->json_len - strlen(want), want) != 0) {
            fail_msg("the bus form of seq %lld ends %.40s", (long long)seqs[i],
                     n->json + (n->json_len > 40 ? n->json_len - 40 : 0));
        }
        assert_int_equal(dr__notification_bus_seq(n->json, n->json_len, NULL), seqs[i]);
        ev = dr__notification_event_json(n, seqs[i] - 1, &len);
        snprintf(want, sizeof(want), ",\"seq\":%lld,\"id\":", (long long)seqs[i]);
        if (!strstr(ev, want)) {
            fail_msg("no '%s' in the event %s", want, ev);
        }
        snprintf(want, sizeof(want), ",\"resume\":%lld,", (long long)(seqs[i] - 1));
        if (!strstr(ev, want)) {
            fail_msg("no '%s' in the event %s", want, ev);
        }
        free(ev);
        dr_notification_unref(n);
    }
    /* digits above every seq are not one */
    static const char over[] = "{\"a\":1,\"seq\":9223372036854775808}";
    assert_int_equal(dr__notification_bus_seq(over, strlen(over), NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_after_the_object),
        cmocka_unit_test(valid_notification_round_trips),
        cmocka_unit_test(body_is_canonical),
        cmocka_unit_test(defaults),
        cmocka_unit_test(invalid_notifications),
        cmocka_unit_test(oversized_is_refused),
        cmocka_unit_test(room_names),
        cmocka_unit_test(scan_reads_plain_notifications),
        cmocka_unit_test(scan_leaves_the_rest),
        cmocka_unit_test(scan_agrees_with_cjson_on_edits),
        cmocka_unit_test(scan_numbers_as_cjson),
        cmocka_unit_test(rows_read_alike),
        cmocka_unit_test(invalid_utf8_is_refused),
        cmocka_unit_test(valid_utf8_is_read_fast),
        cmocka_unit_test(nul_is_refused),
        cmocka_unit_test(seqs_written_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
