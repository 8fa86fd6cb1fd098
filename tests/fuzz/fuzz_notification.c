/*
 * A notification as a producer publishes it to client-notifications: dr_notification_parse()
 * refuses it naming the field, or returns one whose room name is valid.
 */
#include <string.h>

#include "dr/err.h"
#include "dr/realtime.h"
#include "fuzz.h"
#include "realtime/rt_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dr_notification *n = NULL;
    char err[256] = "";
    int rc = dr_notification_parse((const char *)data, size, size % 2 ? "default-id" : NULL, &n,
                                   err, sizeof(err));

    if (rc != DR_OK) {
        FUZZ_CHECK(n == NULL && err[0], "refused (%d) without a reason", rc);
        return 0;
    }
    FUZZ_CHECK(n != NULL, "accepted without a notification");
    FUZZ_CHECK(dr_room_valid(n->room), "room '%s' is not a valid room name", n->room);
    FUZZ_CHECK(n->id && n->id[0] && n->type && n->type[0], "no id or type");
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
