/* Tests src/realtime/notification.c: ClientNotification validation and its encodings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
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

    ev = dr__notification_event_json(n, &len);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_notification_round_trips),
        cmocka_unit_test(body_is_canonical),
        cmocka_unit_test(defaults),
        cmocka_unit_test(invalid_notifications),
        cmocka_unit_test(oversized_is_refused),
        cmocka_unit_test(room_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
