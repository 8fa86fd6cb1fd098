/*
 * ClientNotification (DESIGN §5): validation of what producers send, the canonical JSON the
 * store keeps, the bus form (with seq) and the event frame clients receive.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/jsonw.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

#define ID_MAX      128
#define TYPE_MAX    64
#define ROOM_ID_MAX 128
#define TEXT_MAX    (16 * 1024)

static const char *const room_prefixes[] = {"user:", "org:", "meeting:", "shipment:"};

static int printable_token(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char ch = (unsigned char)s[n];
        if (ch <= 0x20 || ch >= 0x7f || n >= max) {
            return 0;
        }
    }
    return n > 0;
}

int dr_room_valid(const char *room)
{
    if (!room) {
        return 0;
    }
    for (size_t i = 0; i < DR_ARRAY_LEN(room_prefixes); i++) {
        size_t pl = strlen(room_prefixes[i]);
        if (strncmp(room, room_prefixes[i], pl) == 0) {
            return printable_token(room + pl, ROOM_ID_MAX);
        }
    }
    return 0;
}

static int type_valid(const char *t)
{
    size_t n = 0;
    for (; t[n]; n++) {
        char ch = t[n];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        if (!ok || n >= TYPE_MAX) {
            return 0;
        }
    }
    return n > 0;
}

struct rt_frame *dr__rt_frame_create(size_t len)
{
    struct rt_frame *f = dr_xmalloc(sizeof(*f) + len);
    atomic_init(&f->refs, 1);
    f->len = len;
    return f;
}

void dr__rt_frame_unref(struct rt_frame *f)
{
    if (f && atomic_fetch_sub(&f->refs, 1) == 1) {
        free(f);
    }
}

static void set_err(char *err, size_t errsz, const char *msg)
{
    if (err && errsz) {
        snprintf(err, errsz, "%s", msg);
    }
}

/* A string member: absent is fine (*out NULL), a non-string or one too long is not. */
static int opt_str(const cJSON *o, const char *key, size_t max, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        return DR_OK;
    }
    if (!cJSON_IsString(v) || strlen(v->valuestring) > max) {
        return DR_EINVAL;
    }
    *out = v->valuestring;
    return DR_OK;
}

/* The canonical body: fixed key order, written straight out in cJSON's format (dr/jsonw.h), so
 * a notification stored twice is stored the same. NULL when it would not fit. */
static struct dr_notification *build(const char *id, const char *user, const char *org,
                                     const char *room, const char *type, const char *title,
                                     const char *message, const cJSON *data, const char *ts)
{
    struct dr_notification *n;
    struct dr_buf b;
    struct jw w = {.b = &b};

    /* escaping grows a string at most six times */
    dr_buf_init(&b, 6 * DR_NOTIFICATION_MAX_BYTES + 1024);
    dr_buf_reserve(&b, 512); /* most bodies: no reallocation on the way */
    jw_raw(&w, "{", 1);
    jw_str(&w, "notification_id", id);
    jw_str(&w, "user_id", user);
    jw_str(&w, "org_id", org);
    jw_str(&w, "room", room);
    jw_str(&w, "notification_type", type);
    jw_str(&w, "title", title ? title : "");
    jw_str(&w, "message", message ? message : "");
    if (data) {
        jw_json(&w, "data", data);
    } else {
        jw_key(&w, "data");
        jw_raw(&w, "{}", 2);
    }
    jw_str(&w, "timestamp", ts);
    jw_raw(&w, "}", 1);
    if (w.err) {
        dr_buf_cleanup(&b);
        return NULL;
    }
    n = dr_xcalloc(1, sizeof(*n));
    atomic_init(&n->refs, 1);
    n->id = dr_xstrdup(id);
    n->user_id = dr_xstrdup(user);
    n->org_id = dr_xstrdup(org);
    n->room = dr_xstrdup(room);
    n->type = dr_xstrdup(type);
    n->body = dr_buf_steal(&b, &n->body_len);
    return n;
}

int dr_notification_parse(const char *json, size_t len, const char *default_id,
                          struct dr_notification **out, char *err, size_t errsz)
{
    cJSON *o;
    int rc;

    *out = NULL;
    if (!json || len > DR_NOTIFICATION_MAX_BYTES) {
        set_err(err, errsz, "notification too large");
        return DR_ETOOBIG;
    }
    o = dr_json_parse(json, len);
    rc = dr__notification_from_json(o, default_id, out, err, errsz);
    cJSON_Delete(o);
    return rc;
}

int dr__notification_from_json(const cJSON *o, const char *default_id, struct dr_notification **out,
                               char *err, size_t errsz)
{
    const char *id, *user, *org, *room, *type, *title, *message, *ts;
    const cJSON *data;
    char roombuf[ROOM_ID_MAX + 16], tsbuf[32];
    int64_t tms;

    *out = NULL;
    if (!cJSON_IsObject(o)) {
        set_err(err, errsz, "not a JSON object");
        return DR_EINVAL;
    }
    if (opt_str(o, "notification_id", ID_MAX, &id) || opt_str(o, "user_id", ID_MAX, &user) ||
        opt_str(o, "org_id", ID_MAX, &org) || opt_str(o, "room", ROOM_ID_MAX + 16, &room) ||
        opt_str(o, "notification_type", TYPE_MAX, &type) || opt_str(o, "title", TEXT_MAX, &title) ||
        opt_str(o, "message", TEXT_MAX, &message) || opt_str(o, "timestamp", 40, &ts)) {
        set_err(err, errsz, "a field has the wrong type or is too long");
        return DR_EINVAL;
    }
    if (!id) {
        id = default_id;
    }
    if (!id || !printable_token(id, ID_MAX)) {
        set_err(err, errsz, "notification_id missing or not printable");
        return DR_EINVAL;
    }
    if ((user && !printable_token(user, ID_MAX)) || (org && !printable_token(org, ID_MAX))) {
        set_err(err, errsz, "user_id/org_id not printable");
        return DR_EINVAL;
    }
    if (!room && user) {
        snprintf(roombuf, sizeof(roombuf), "user:%s", user);
        room = roombuf;
    }
    if (!dr_room_valid(room)) {
        set_err(err, errsz, "room missing or invalid");
        return DR_EINVAL;
    }
    if (!type || !type_valid(type)) {
        set_err(err, errsz, "notification_type missing or invalid");
        return DR_EINVAL;
    }
    data = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (data && !cJSON_IsNull(data) && !cJSON_IsObject(data)) {
        set_err(err, errsz, "data must be an object");
        return DR_EINVAL;
    }
    if (cJSON_IsNull(data)) {
        data = NULL;
    }
    if (ts && dr_parse_time(ts, &tms) != DR_OK) {
        set_err(err, errsz, "timestamp is not RFC 3339");
        return DR_EINVAL;
    }
    if (!ts) {
        dr_format_time(dr_now_ms(), tsbuf);
        ts = tsbuf;
    }
    *out = build(id, user, org, room, type, title, message, data, ts);
    if (!*out) {
        set_err(err, errsz, "notification too large");
        return DR_ETOOBIG;
    }
    return DR_OK;
}

void dr__notification_set_seq(struct dr_notification *n, int64_t seq)
{
    struct dr_buf b;

    n->seq = seq;
    free(n->json);
    /* body is a JSON object: splice "seq" in before its closing brace */
    dr_buf_init(&b, n->body_len + 64);
    dr_buf_reserve(&b, n->body_len + 32);
    dr_buf_append(&b, n->body, n->body_len - 1);
    dr_buf_appends(&b, ",\"seq\":");
    dr_json_append_number(&b, (double)seq); /* seqs stay far below 2^53 */
    dr_buf_appendc(&b, '}');
    n->json = dr_buf_steal(&b, &n->json_len);
}

struct dr_notification *dr__notification_from_row(int64_t seq, const char *body, size_t len)
{
    struct dr_notification *n = NULL;
    cJSON *o = dr_json_parse(body, len);
    const char *id = dr_json_str(o, "notification_id");
    const char *room = dr_json_str(o, "room");
    const char *type = dr_json_str(o, "notification_type");

    if (cJSON_IsObject(o) && id && room && type && len > 1) {
        n = dr_xcalloc(1, sizeof(*n));
        atomic_init(&n->refs, 1);
        n->id = dr_xstrdup(id);
        n->user_id = dr_xstrdup(dr_json_str(o, "user_id"));
        n->org_id = dr_xstrdup(dr_json_str(o, "org_id"));
        n->room = dr_xstrdup(room);
        n->type = dr_xstrdup(type);
        n->body = dr_xstrndup(body, len);
        n->body_len = len;
        dr__notification_set_seq(n, seq);
    }
    cJSON_Delete(o);
    return n;
}

char *dr__notification_event_json(const struct dr_notification *n, size_t *len)
{
    struct dr_buf b;

    dr_buf_init(&b, n->json_len + strlen(n->room) * 2 + strlen(n->id) * 2 + 256);
    dr_buf_reserve(&b, n->json_len + strlen(n->room) + strlen(n->id) + strlen(n->type) + 96);
    dr_buf_appends(&b, "{\"type\":\"event\",\"room\":");
    dr_buf_append_json_str(&b, n->room, strlen(n->room));
    dr_buf_appends(&b, ",\"seq\":");
    dr_json_append_number(&b, (double)n->seq);
    dr_buf_appends(&b, ",\"id\":");
    dr_buf_append_json_str(&b, n->id, strlen(n->id));
    dr_buf_appends(&b, ",\"event\":");
    dr_buf_append_json_str(&b, n->type, strlen(n->type));
    if (n->behind > 0) {
        dr_buf_appends(&b, ",\"resume\":");
        dr_json_append_number(&b, (double)(n->seq - n->behind));
    }
    dr_buf_appends(&b, ",\"data\":");
    dr_buf_append(&b, n->json, n->json_len);
    dr_buf_appendc(&b, '}');
    return dr_buf_steal(&b, len);
}

struct dr_notification *dr_notification_ref(struct dr_notification *n)
{
    atomic_fetch_add(&n->refs, 1);
    return n;
}

void dr_notification_unref(struct dr_notification *n)
{
    if (!n || atomic_fetch_sub(&n->refs, 1) != 1) {
        return;
    }
    for (int i = 0; i < RT_NTRANSPORTS; i++) {
        dr__rt_frame_unref(n->frames[i]);
    }
    free(n->id);
    free(n->user_id);
    free(n->org_id);
    free(n->room);
    free(n->type);
    free(n->body);
    free(n->json);
    free(n);
}

int64_t dr_notification_seq(const struct dr_notification *n)
{
    return n->seq;
}

const char *dr_notification_room(const struct dr_notification *n)
{
    return n->room;
}

const char *dr_notification_id(const struct dr_notification *n)
{
    return n->id;
}

const char *dr_notification_json(const struct dr_notification *n, size_t *len)
{
    if (len) {
        *len = n->json ? n->json_len : n->body_len;
    }
    return n->json ? n->json : n->body;
}
