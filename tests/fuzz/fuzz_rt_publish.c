/*
 * The real-time publish API's body (POST /api/v1/publish): dr__rt_publish_read() either refuses
 * with a reason and nothing kept, or returns 1-1000 notifications with valid rooms and stored
 * bodies of valid UTF-8 without U+0000. Whatever body the fast reader takes, the cJSON tree reads
 * the same way: as many notifications, each with the same room, type, user, org and stored body
 * (the id aside when the body has none, since each read makes a new one; and up to the timestamp,
 * "now" when absent).
 */
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/realtime.h"
#include "fuzz.h"
#include "realtime/rt_int.h"
#include "same_notification.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dr_notification **a = NULL, **b = NULL;
    size_t na = 0, nb = 0;
    char why[256] = "";
    int rc = dr__rt_publish_read((const char *)data, size, RT_READ_ANY, &a, &na, why, sizeof(why));

    if (rc != 0) {
        FUZZ_CHECK(a == NULL && na == 0, "refused but kept %zu", na);
        FUZZ_CHECK(why[0] != '\0', "refused without a reason");
    } else {
        FUZZ_CHECK(na >= 1 && na <= 1000, "%zu notifications", na);
        for (size_t i = 0; i < na; i++) {
            FUZZ_CHECK(dr_room_valid(a[i]->room), "room '%s'", a[i]->room);
            FUZZ_CHECK(!dr_json_text_problem(a[i]->body, a[i]->body_len), "stored body: %s",
                       dr_json_text_problem(a[i]->body, a[i]->body_len));
        }
    }
    dr__rt_notifications_free(a, na);

    if (dr__rt_publish_read((const char *)data, size, RT_READ_FAST, &a, &na, why, sizeof(why))) {
        return 0;
    }
    FUZZ_CHECK(
        dr__rt_publish_read((const char *)data, size, RT_READ_TREE, &b, &nb, why, sizeof(why)) == 0,
        "the fast reader took a body the tree refuses: %s", why);
    FUZZ_CHECK(na == nb, "%zu notifications fast, %zu through the tree", na, nb);
    for (size_t i = 0; i < na; i++) {
        FUZZ_CHECK(same_notification(a[i], b[i], 0, 1), "notification %zu: fast %s, tree %s", i,
                   a[i]->body, b[i]->body);
    }
    dr__rt_notifications_free(a, na);
    dr__rt_notifications_free(b, nb);
    return 0;
}
