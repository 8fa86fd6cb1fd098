/*
 * Whether two readings of the same text made the same notification: the fast reader
 * (dr__notification_scan) against the cJSON path, in the unit tests and the fuzz targets. Each
 * path makes a missing timestamp "now" and, for the publish API, a missing id a new one, so the
 * stored bodies are compared up to their timestamp member (the last) unless whole, and from
 * after their id member (the first) when skip_id.
 */
#ifndef DR_TEST_SAME_NOTIFICATION_H
#define DR_TEST_SAME_NOTIFICATION_H

#include <string.h>

#include "realtime/rt_int.h"

static inline int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The part of n's body compared: [*from, *from + return). */
static inline size_t compared_body(const struct dr_notification *n, int whole, int skip_id,
                                   const char **from)
{
    static const char ts[] = ",\"timestamp\":";
    size_t end = n->body_len, start = 0;
    const char *after_id = skip_id ? strstr(n->body, "\",\"") : NULL;

    for (size_t i = n->body_len; !whole && i-- > 0;) {
        if (strncmp(n->body + i, ts, sizeof(ts) - 1) == 0) {
            end = i;
            break;
        }
    }
    if (after_id && (size_t)(after_id - n->body) < end) {
        start = (size_t)(after_id - n->body);
    }
    *from = n->body + start;
    return end - start;
}

static inline int same_notification(const struct dr_notification *a,
                                    const struct dr_notification *b, int whole, int skip_id)
{
    const char *fa, *fb;
    size_t la = compared_body(a, whole, skip_id, &fa), lb = compared_body(b, whole, skip_id, &fb);

    return (skip_id || same_str(a->id, b->id)) && same_str(a->user_id, b->user_id) &&
           same_str(a->org_id, b->org_id) && same_str(a->room, b->room) &&
           same_str(a->type, b->type) && la == lb && memcmp(fa, fb, la) == 0;
}

#endif
