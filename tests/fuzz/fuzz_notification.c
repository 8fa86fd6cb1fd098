/*
 * A notification as a producer publishes it to client-notifications: dr_notification_parse()
 * refuses it naming the field, or returns one whose room name is valid and whose stored body is
 * valid UTF-8 without U+0000. And whatever the fast reader (dr__notification_scan) takes, the
 * cJSON path takes the same way: the same fields and the same stored body (up to its timestamp,
 * which is "now" when absent).
 */
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/realtime.h"
#include "fuzz.h"
#include "realtime/rt_int.h"
#include "same_notification.h"

static void fast_reader_agrees(const char *s, size_t n, const char *def)
{
    struct dr_notification *a = NULL, *b = NULL;
    struct dr_buf scratch;
    const char *p = s;
    char err[256];

    dr_buf_init(&scratch, SIZE_MAX);
    if (dr__notification_scan(&p, s + n, def, 0, &scratch, &a) == RT_SCAN_OK) {
        cJSON *o = dr_json_parse(s, n);
        int rc = dr__notification_from_json(o, def, &b, err, sizeof(err));

        cJSON_Delete(o);
        FUZZ_CHECK(rc == DR_OK, "the fast reader took what cJSON refuses");
        FUZZ_CHECK(same_notification(a, b, 0, 0), "the fast reader made %s, cJSON %s", a->body,
                   b->body);
    } else {
        FUZZ_CHECK(a == NULL, "the fast reader refused but made a notification");
    }
    dr_notification_unref(a);
    dr_notification_unref(b);
    dr_buf_cleanup(&scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dr_notification *n = NULL;
    char err[256] = "";
    int rc = dr_notification_parse((const char *)data, size, size % 2 ? "default-id" : NULL, &n,
                                   err, sizeof(err));

    fast_reader_agrees((const char *)data, size, size % 2 ? "default-id" : NULL);
    if (rc != DR_OK) {
        FUZZ_CHECK(n == NULL && err[0], "refused (%d) without a reason", rc);
        return 0;
    }
    FUZZ_CHECK(n != NULL, "accepted without a notification");
    FUZZ_CHECK(dr_room_valid(n->room), "room '%s' is not a valid room name", n->room);
    FUZZ_CHECK(n->id && n->id[0] && n->type && n->type[0], "no id or type");
    /* a WebSocket client takes only UTF-8, and nothing was cut short at a U+0000 */
    FUZZ_CHECK(!dr_json_text_problem(n->body, n->body_len), "stored body: %s",
               dr_json_text_problem(n->body, n->body_len));
    {
        cJSON *body = cJSON_ParseWithLength(n->body, n->body_len);
        FUZZ_CHECK(cJSON_IsObject(body), "stored body is not a JSON object");
        cJSON_Delete(body);
    }
    /* what the bus and a resume send: the body with its seq */
    dr__notification_set_seq(n, 42);
    {
        cJSON *j = cJSON_ParseWithLength(n->json, n->json_len);
        FUZZ_CHECK(cJSON_IsObject(j), "bus form is not a JSON object");
        cJSON_Delete(j);
    }
    dr_notification_unref(n);
    return 0;
}
