/*
 * The real-time publish API's body (POST /api/v1/publish): dr__rt_publish_read() either refuses
 * with a reason and nothing kept, or returns 1-1000 notifications with valid rooms. Whatever
 * body the fast reader takes, the cJSON tree reads the same way: as many notifications, each
 * with the same room, type, user, org and stored body (the id aside when the body has none,
 * since each read makes a new one; and up to the timestamp, "now" when absent).
 */
#include <string.h>

#include "dr/err.h"
#include "dr/realtime.h"
#include "fuzz.h"
#include "realtime/rt_int.h"

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The body from its second member on, up to its last ",\"timestamp\":" member. */
static const char *middle(const struct dr_notification *n, size_t *len)
{
    const char *from = strstr(n->body, "\",\"");
    const char *to = NULL;

    for (const char *t = from; t && (t = strstr(t + 1, ",\"timestamp\":\"")) != NULL;) {
        to = t;
    }
    if (!from || !to || to < from) {
        *len = 0;
        return n->body;
    }
    *len = (size_t)(to - from);
    return from;
}

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
        size_t la, lb;
        const char *ma = middle(a[i], &la), *mb = middle(b[i], &lb);

        FUZZ_CHECK(str_eq(a[i]->room, b[i]->room) && str_eq(a[i]->type, b[i]->type) &&
                       str_eq(a[i]->user_id, b[i]->user_id) && str_eq(a[i]->org_id, b[i]->org_id) &&
                       la == lb && memcmp(ma, mb, la) == 0,
                   "notification %zu: fast %s, tree %s", i, a[i]->body, b[i]->body);
    }
    dr__rt_notifications_free(a, na);
    dr__rt_notifications_free(b, nb);
    return 0;
}
