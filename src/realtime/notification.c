/*
 * ClientNotification (DESIGN §5): validation of what producers send, the canonical JSON the
 * store keeps, the bus form (with seq) and the event frame clients receive. Two readers make
 * the same notification from a producer's JSON: the fast reader (dr__notification_scan), which
 * reads plain text once, and the cJSON path (dr__notification_from_json), which reads the rest
 * and gives the errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/util.h"
#include "realtime/rt_int.h"

#define ID_MAX      128
#define TYPE_MAX    64
#define ROOM_ID_MAX 128
#define TEXT_MAX    (16 * 1024)

static const char *const room_prefixes[] = {"user:", "org:", "meeting:", "shipment:"};

/* 1 to max bytes, each printable ASCII other than space. */
static int printable_n(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int printable_token(const char *s, size_t max)
{
    return printable_n(s, strlen(s), max);
}

static int room_valid_n(const char *room, size_t n)
{
    for (size_t i = 0; i < DR_ARRAY_LEN(room_prefixes); i++) {
        size_t pl = strlen(room_prefixes[i]);
        if (n >= pl && memcmp(room, room_prefixes[i], pl) == 0) {
            return printable_n(room + pl, n - pl, ROOM_ID_MAX);
        }
    }
    return 0;
}

int dr_room_valid(const char *room)
{
    return room && room_valid_n(room, strlen(room));
}

static int type_valid_n(const char *t, size_t n)
{
    if (n == 0 || n > TYPE_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = t[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

static int type_valid(const char *t)
{
    return type_valid_n(t, strlen(t));
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

/* A string of the text: p NULL when absent (or null). */
struct span {
    const char *p;
    size_t n;
};

static struct span span_of(const char *s)
{
    return (struct span){s, s ? strlen(s) : 0};
}

/* A member: its key (with the separator before it) and the string s, unless s is absent. plain:
 * s has nothing to escape (no '"', '\\' or control byte), so it is written as it is. */
static void put_str(struct dr_buf *b, const char *key, size_t klen, struct span s, int plain,
                    int *err)
{
    if (!s.p || *err) {
        return;
    }
    if (!plain) {
        *err = dr_buf_append(b, key, klen);
        *err = *err ? *err : dr_buf_append_json_str(b, s.p, s.n);
    } else if (!(*err = dr_buf_reserve(b, klen + s.n + 2))) {
        char *o = b->data + b->len;

        memcpy(o, key, klen);
        o += klen;
        *o++ = '"';
        memcpy(o, s.p, s.n);
        o += s.n;
        *o++ = '"';
        *o = '\0';
        b->len = (size_t)(o - b->data);
    }
}

#define KEY(k) k, sizeof(k) - 1

/* A notification and its strings, in one allocation. */
static struct dr_notification *alloc_notification(struct span id, struct span user, struct span org,
                                                  struct span room, struct span type)
{
    const struct span *in[] = {&id, &user, &org, &room, &type};
    size_t need = 0;
    struct dr_notification *n;
    char *o, **out[DR_ARRAY_LEN(in)];

    for (size_t i = 0; i < DR_ARRAY_LEN(in); i++) {
        need += in[i]->p ? in[i]->n + 1 : 0;
    }
    n = dr_xcalloc(1, sizeof(*n) + need);
    atomic_init(&n->refs, 1);
    out[0] = &n->id;
    out[1] = &n->user_id;
    out[2] = &n->org_id;
    out[3] = &n->room;
    out[4] = &n->type;
    o = n->strs;
    for (size_t i = 0; i < DR_ARRAY_LEN(in); i++) {
        if (in[i]->p) {
            memcpy(o, in[i]->p, in[i]->n);
            o[in[i]->n] = '\0';
            *out[i] = o;
            o += in[i]->n + 1;
        }
    }
    return n;
}

/* The canonical body: fixed key order, written straight out in cJSON's format (dr_json_append), so
 * a notification stored twice is stored the same. data: a cJSON object, or the text of one
 * already in that format (data_text), or neither ({}). plain: no string has anything to escape.
 * NULL when it would not fit. */
static struct dr_notification *build(struct span id, struct span user, struct span org,
                                     struct span room, struct span type, struct span title,
                                     struct span message, const cJSON *data, struct span data_text,
                                     const char *ts, int plain)
{
    static const struct span empty = {"", 0};
    struct dr_notification *n;
    struct dr_buf b;
    int err = 0;

    /* escaping grows a string at most six times */
    dr_buf_init(&b, 6 * DR_NOTIFICATION_MAX_BYTES + 1024);
    /* most bodies: no reallocation on the way */
    dr_buf_reserve(&b, 192 + id.n + user.n + org.n + room.n + type.n + title.n + message.n +
                           data_text.n);
    put_str(&b, KEY("{\"notification_id\":"), id, plain, &err);
    put_str(&b, KEY(",\"user_id\":"), user, plain, &err);
    put_str(&b, KEY(",\"org_id\":"), org, plain, &err);
    put_str(&b, KEY(",\"room\":"), room, plain, &err);
    put_str(&b, KEY(",\"notification_type\":"), type, plain, &err);
    put_str(&b, KEY(",\"title\":"), title.p ? title : empty, plain, &err);
    put_str(&b, KEY(",\"message\":"), message.p ? message : empty, plain, &err);
    err = err ? err : dr_buf_append(&b, KEY(",\"data\":"));
    if (!err) {
        err = data          ? dr_json_append(&b, data)
              : data_text.p ? dr_buf_append(&b, data_text.p, data_text.n)
                            : dr_buf_append(&b, KEY("{}"));
    }
    put_str(&b, KEY(",\"timestamp\":"), span_of(ts), plain, &err);
    err = err ? err : dr_buf_append(&b, KEY("}"));
    if (err) {
        dr_buf_cleanup(&b);
        return NULL;
    }
    n = alloc_notification(id, user, org, room, type);
    n->body = dr_buf_steal(&b, &n->body_len);
    return n;
}

/*
 * The fast reader. Most notifications are plain: string members without escapes and a small
 * data object. Through a cJSON tree each member costs a node, a key and a value allocation and
 * each field a search of the members; dr__notification_scan() reads the text once, left to
 * right, and builds the same notification as dr_json_parse() and dr__notification_from_json()
 * do. What it cannot read exactly as they would (an escape, a control byte or invalid UTF-8 in a
 * string, a member it does not know, one given twice, data nested deeper than SCAN_DEPTH, a
 * notification they would refuse) it leaves to them: RT_SCAN_NO, and the caller takes that path,
 * which gives the answer and the error. tests/unit/realtime/test_notification.c holds the two to
 * each other.
 */

#define SCAN_DEPTH 32

enum { F_ID, F_USER, F_ORG, F_ROOM, F_TYPE, F_TITLE, F_MESSAGE, F_TS, F_DATA, F_N };

#define FIELD(key, max)                                                                            \
    {                                                                                              \
        key, sizeof(key) - 1, max                                                                  \
    }

static const struct {
    const char *key;
    size_t len;
    size_t max; /* the longest string opt_str() takes */
} scan_fields[F_N] = {
    [F_ID] = FIELD("notification_id", ID_MAX),
    [F_USER] = FIELD("user_id", ID_MAX),
    [F_ORG] = FIELD("org_id", ID_MAX),
    [F_ROOM] = FIELD("room", ROOM_ID_MAX + 16),
    [F_TYPE] = FIELD("notification_type", TYPE_MAX),
    [F_TITLE] = FIELD("title", TEXT_MAX),
    [F_MESSAGE] = FIELD("message", TEXT_MAX),
    [F_TS] = FIELD("timestamp", 40),
    [F_DATA] = FIELD("data", 0),
};

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    return p;
}

/* The string at p (its opening quote) when it has no escape and no control byte, which
 * dr_buf_append_json_str() writes back unchanged, and is valid UTF-8: its contents in *s and the
 * byte after it returned. NULL for any other. Sixteen bytes at a time; only a string with a byte
 * above ASCII is read a second time, for its UTF-8. */
static const char *plain_string(const char *p, const char *end, struct span *s)
{
    const char *q;
    unsigned high = 0;

    if (p >= end || *p != '"') {
        return NULL;
    }
    q = p + 1;
#ifdef __SSE2__
    const __m128i ctl = _mm_set1_epi8(0x1F), quote = _mm_set1_epi8('"'),
                  bslash = _mm_set1_epi8('\\');

    for (; end - q >= 16; q += 16) {
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)q);
        /* unsigned c <= 0x1F exactly when max(c, 0x1F) is 0x1F */
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(c, ctl), ctl),
                         _mm_or_si128(_mm_cmpeq_epi8(c, quote), _mm_cmpeq_epi8(c, bslash))));
        unsigned h = (unsigned)_mm_movemask_epi8(c); /* the bytes above 0x7F */

        if (m) {
            high |= h & ((1u << __builtin_ctz(m)) - 1);
            q += __builtin_ctz(m);
            break;
        }
        high |= h;
    }
#endif
    for (; q < end && *q != '"'; q++) {
        if (*q == '\\' || (unsigned char)*q < 0x20) {
            return NULL;
        }
        high |= (unsigned char)*q & 0x80;
    }
    if (q >= end || *q != '"') {
        return NULL;
    }
    s->p = p + 1;
    s->n = (size_t)(q - p - 1);
    /* invalid UTF-8 is left to the cJSON path, which refuses it with its error */
    if (high && !dr_utf8_valid(s->p, s->n)) {
        return NULL;
    }
    return q + 1;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A number as dr_json_parse() reads one (cJSON's reading of it), written in cJSON's format. */
static const char *canon_number(const char *p, const char *end, struct dr_buf *out)
{
    const char *q = p, *digits;
    char buf[64], *after;
    int whole = 1;

    if (q < end && *q == '-') {
        q++;
    }
    if (q >= end || !is_digit(*q)) {
        return NULL;
    }
    digits = q;
    if (*q == '0') {
        q++;
    } else {
        while (q < end && is_digit(*q)) {
            q++;
        }
    }
    if (q < end && *q == '.') {
        whole = 0;
        if (++q >= end || !is_digit(*q)) {
            return NULL;
        }
        while (q < end && is_digit(*q)) {
            q++;
        }
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        whole = 0;
        q++;
        if (q < end && (*q == '+' || *q == '-')) {
            q++;
        }
        if (q >= end || !is_digit(*q)) {
            return NULL;
        }
        while (q < end && is_digit(*q)) {
            q++;
        }
    }
    if (q - p >= (ptrdiff_t)sizeof(buf) || (q < end && (is_digit(*q) || *q == '+' || *q == '-' ||
                                                        *q == '.' || *q == 'e' || *q == 'E'))) {
        return NULL;
    }
    if (whole && q - digits <= 15) {
        /* an integer below 10^15: cJSON writes its digits back as they are (-0 too) */
        return dr_buf_append(out, p, (size_t)(q - p)) ? NULL : q;
    }
    if (whole && q - digits <= 19) {
        /* below 10^19 < 2^64: exact as an integer, and its conversion rounds as strtod() does
         * (to the nearest double, ties to even) */
        uint64_t u = 0;

        for (const char *c = digits; c < q; c++) {
            u = u * 10 + (uint64_t)(*c - '0');
        }
        return dr_json_append_number(out, *p == '-' ? -(double)u : (double)u) ? NULL : q;
    }
    memcpy(buf, p, (size_t)(q - p));
    buf[q - p] = '\0';
    double d = strtod(buf, &after);
    if (after != buf + (q - p) || dr_json_append_number(out, d)) {
        return NULL;
    }
    return q;
}

static const char *canon_literal(const char *p, const char *end, const char *word,
                                 struct dr_buf *out)
{
    size_t n = strlen(word);

    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0 || dr_buf_append(out, word, n)) {
        return NULL;
    }
    return p + n;
}

/* The value at p written to out as dr_json_append() writes what dr_json_parse() makes of it;
 * the byte after it, or NULL when it is not one the fast reader takes. */
static const char *canon_value(const char *p, const char *end, struct dr_buf *out, int depth)
{
    struct span s;
    const char *q;

    p = skip_ws(p, end);
    if (p >= end) {
        return NULL;
    }
    switch (*p) {
    case '{':
    case '[': {
        int obj = *p == '{';
        char close = obj ? '}' : ']';

        if (depth >= SCAN_DEPTH || dr_buf_appendc(out, *p)) {
            return NULL;
        }
        p = skip_ws(p + 1, end);
        if (p < end && *p == close) {
            return dr_buf_appendc(out, close) ? NULL : p + 1;
        }
        for (;;) {
            if (obj) {
                q = plain_string(p, end, &s);
                if (!q || dr_buf_append(out, p, (size_t)(q - p))) {
                    return NULL;
                }
                p = skip_ws(q, end);
                if (p >= end || *p != ':' || dr_buf_appendc(out, ':')) {
                    return NULL;
                }
                p++;
            }
            p = canon_value(p, end, out, depth + 1);
            if (!p) {
                return NULL;
            }
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                if (dr_buf_appendc(out, ',')) {
                    return NULL;
                }
                p = skip_ws(p + 1, end);
            } else if (p < end && *p == close) {
                return dr_buf_appendc(out, close) ? NULL : p + 1;
            } else {
                return NULL;
            }
        }
    }
    case '"':
        q = plain_string(p, end, &s);
        return q && !dr_buf_append(out, p, (size_t)(q - p)) ? q : NULL;
    case 't':
        return canon_literal(p, end, "true", out);
    case 'f':
        return canon_literal(p, end, "false", out);
    case 'n':
        return canon_literal(p, end, "null", out);
    default:
        return canon_number(p, end, out);
    }
}

static int field_of(struct span k)
{
    for (int i = 0; i < F_N; i++) {
        if (scan_fields[i].len == k.n && memcmp(scan_fields[i].key, k.p, k.n) == 0) {
            return i;
        }
    }
    return -1;
}

/* The members of the object at p into f (a null one stays absent; seen has a bit for each
 * known member given), data's text canonical in scratch (f[F_DATA] its length); the byte after
 * the object, or NULL. Members it does not know are read (they must be JSON it takes) and left
 * out, as dr__notification_from_json() leaves them. */
static const char *scan_members(const char *p, const char *end, struct span f[F_N], unsigned *seen,
                                struct dr_buf *scratch)
{
    p = skip_ws(p, end);
    if (p >= end || *p != '{') {
        return NULL;
    }
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        return p + 1;
    }
    for (;;) {
        struct span k;
        const char *q = plain_string(p, end, &k);
        int i = q ? field_of(k) : -1;

        if (!q || (i >= 0 && (*seen & (1u << i)))) {
            return NULL;
        }
        p = skip_ws(q, end);
        if (p >= end || *p != ':') {
            return NULL;
        }
        p = skip_ws(p + 1, end);
        if (i >= 0) {
            *seen |= 1u << i;
        }
        if (i < 0) {
            size_t mark = scratch->len;

            if (!(p = canon_value(p, end, scratch, 0))) {
                return NULL;
            }
            scratch->len = mark;
            scratch->data[mark] = '\0';
        } else if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
            p += 4;
        } else if (i == F_DATA) {
            if (p >= end || *p != '{' || !(p = canon_value(p, end, scratch, 0))) {
                return NULL;
            }
            f[F_DATA] = (struct span){"", scratch->len}; /* scratch's text once it is done */
        } else {
            q = plain_string(p, end, &f[i]);
            if (!q || f[i].n > scan_fields[i].max) {
                return NULL;
            }
            p = q;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
        } else if (p < end && *p == '}') {
            return p + 1;
        } else {
            return NULL;
        }
    }
}

int dr__notification_scan(const char **pp, const char *end, const char *default_id, int flags,
                          struct dr_buf *scratch, struct dr_notification **out)
{
    struct span f[F_N] = {{NULL, 0}};
    unsigned seen = 0;
    int plain = 1; /* no string to escape: each came from the text unescaped */
    char idbuf[33], roombuf[ROOM_ID_MAX + 16], tsbuf[48];
    int64_t tms;
    const char *p;

    *out = NULL;
    dr_buf_reset(scratch);
    p = scan_members(*pp, end, f, &seen, scratch);
    if (!p) {
        return RT_SCAN_NO;
    }
    if (f[F_DATA].p) {
        f[F_DATA].p = scratch->data; /* data is its first value: later ones were cut off */
    }
    if (!f[F_ID].p) {
        if ((flags & RT_SCAN_TIME_ID) && !(seen & (1u << F_ID))) {
            dr_time_id(idbuf);
            f[F_ID] = (struct span){idbuf, 32};
        } else if (!(flags & RT_SCAN_TIME_ID) && default_id) {
            f[F_ID] = span_of(default_id);
            /* a printable id may hold '"' or '\\' */
            plain = !strchr(default_id, '"') && !strchr(default_id, '\\');
        } else {
            return RT_SCAN_NO;
        }
    }
    if (!printable_n(f[F_ID].p, f[F_ID].n, ID_MAX) ||
        (f[F_USER].p && !printable_n(f[F_USER].p, f[F_USER].n, ID_MAX)) ||
        (f[F_ORG].p && !printable_n(f[F_ORG].p, f[F_ORG].n, ID_MAX))) {
        return RT_SCAN_NO;
    }
    if (!f[F_ROOM].p && f[F_USER].p) {
        int n = snprintf(roombuf, sizeof(roombuf), "user:%.*s", (int)f[F_USER].n, f[F_USER].p);
        f[F_ROOM] = (struct span){roombuf, (size_t)n};
    }
    if (!f[F_ROOM].p || !room_valid_n(f[F_ROOM].p, f[F_ROOM].n) || !f[F_TYPE].p ||
        !type_valid_n(f[F_TYPE].p, f[F_TYPE].n)) {
        return RT_SCAN_NO;
    }
    if (f[F_TS].p) {
        memcpy(tsbuf, f[F_TS].p, f[F_TS].n);
        tsbuf[f[F_TS].n] = '\0';
        if (dr_parse_time(tsbuf, &tms) != DR_OK) {
            return RT_SCAN_NO;
        }
    } else {
        dr_format_time(dr_now_ms(), tsbuf);
    }
    *out = build(f[F_ID], f[F_USER], f[F_ORG], f[F_ROOM], f[F_TYPE], f[F_TITLE], f[F_MESSAGE], NULL,
                 f[F_DATA], tsbuf, plain);
    if (*out && (*out)->body_len > DR_NOTIFICATION_MAX_BYTES) {
        dr_notification_unref(*out);
        *out = NULL;
    }
    if (!*out) {
        return RT_SCAN_NO;
    }
    *pp = p;
    return RT_SCAN_OK;
}

int dr_notification_parse(const char *json, size_t len, const char *default_id,
                          struct dr_notification **out, char *err, size_t errsz)
{
    const char *p = json, *why;
    struct dr_buf scratch;
    cJSON *o;
    int rc;

    *out = NULL;
    if (!json || len > DR_NOTIFICATION_MAX_BYTES) {
        set_err(err, errsz, "notification too large");
        return DR_ETOOBIG;
    }
    dr_buf_init(&scratch, 6 * DR_NOTIFICATION_MAX_BYTES);
    rc = dr__notification_scan(&p, json + len, default_id, 0, &scratch, out);
    dr_buf_cleanup(&scratch);
    if (rc == RT_SCAN_OK && skip_ws(p, json + len) == json + len) {
        return DR_OK;
    }
    dr_notification_unref(*out); /* a value followed by more: dr_json_parse() decides */
    *out = NULL;
    /* the tree would keep invalid UTF-8, which fails each WebSocket client the notification is
     * sent to, and cut a string short at U+0000: refused, the text being what a producer sent */
    why = dr_json_text_problem(json, len);
    if (why) {
        set_err(err, errsz, why);
        return DR_EINVAL;
    }
    o = dr_json_parse_prefix(json, len, &p);
    if (o && skip_ws(p, json + len) != json + len) {
        /* the tree stops at the end of the value: what follows would be dropped unread */
        cJSON_Delete(o);
        set_err(err, errsz, "unexpected data after the JSON object");
        return DR_EINVAL;
    }
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
    *out = build(span_of(id), span_of(user), span_of(org), span_of(room), span_of(type),
                 span_of(title), span_of(message), data, (struct span){NULL, 0}, ts, 0);
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
    dr_json_append_i64(&b, seq);
    dr_buf_appendc(&b, '}');
    n->json = dr_buf_steal(&b, &n->json_len);
}

int64_t dr__notification_bus_seq(const char *json, size_t len, size_t *body_len)
{
    static const char tail[] = ",\"seq\":";
    const size_t tl = sizeof(tail) - 1;
    size_t i = len ? len - 1 : 0;
    int64_t seq = 0;

    if (len < tl + 3 || json[len - 1] != '}') {
        return 0;
    }
    while (i > 0 && json[i - 1] >= '0' && json[i - 1] <= '9') {
        i--;
    }
    /* 1 to 19 digits without a leading zero, as dr_json_append_i64() writes a seq */
    if (i == len - 1 || len - 1 - i > 19 || json[i] == '0' || i < tl + 2 ||
        memcmp(json + i - tl, tail, tl) != 0) {
        return 0;
    }
    for (size_t k = i; k < len - 1; k++) {
        if (seq > (INT64_MAX - (json[k] - '0')) / 10) {
            return 0; /* above every seq */
        }
        seq = seq * 10 + (json[k] - '0');
    }
    if (body_len) {
        *body_len = i - tl + 1;
    }
    return seq;
}

struct dr_notification *dr__notification_canonical(const char *body, size_t len)
{
    struct dr_notification *n = NULL;
    struct dr_buf scratch;
    const char *p = body;

    dr_buf_init(&scratch, SIZE_MAX);
    if (dr__notification_scan(&p, body + len, NULL, 0, &scratch, &n) != RT_SCAN_OK ||
        p != body + len || n->body_len != len || memcmp(n->body, body, len) != 0) {
        dr_notification_unref(n);
        n = NULL;
    }
    dr_buf_cleanup(&scratch);
    return n;
}

struct dr_notification *dr__notification_from_row(int64_t seq, const char *body, size_t len)
{
    struct dr_notification *n = dr__notification_canonical(body, len);
    cJSON *o;
    const char *id, *room, *type;

    if (n) { /* what the store keeps: read without a tree */
        dr__notification_set_seq(n, seq);
        return n;
    }
    /* stored before such text was refused: sent, it would fail every WebSocket client in the
     * room, on each resume again */
    if (dr_json_text_problem(body, len)) {
        return NULL;
    }
    o = dr_json_parse(body, len);
    id = dr_json_str(o, "notification_id");
    room = dr_json_str(o, "room");
    type = dr_json_str(o, "notification_type");
    if (cJSON_IsObject(o) && id && room && type && len > 1) {
        n = alloc_notification(span_of(id), span_of(dr_json_str(o, "user_id")),
                               span_of(dr_json_str(o, "org_id")), span_of(room), span_of(type));
        n->body = dr_xstrndup(body, len);
        n->body_len = len;
        dr__notification_set_seq(n, seq);
    }
    cJSON_Delete(o);
    return n;
}

char *dr__notification_event_json(const struct dr_notification *n, int64_t resume, size_t *len)
{
    struct dr_buf b;

    dr_buf_init(&b, n->json_len + strlen(n->room) * 2 + strlen(n->id) * 2 + 256);
    dr_buf_reserve(&b, n->json_len + strlen(n->room) + strlen(n->id) + strlen(n->type) + 96);
    dr_buf_appends(&b, "{\"type\":\"event\",\"room\":");
    dr_buf_append_json_str(&b, n->room, strlen(n->room));
    dr_buf_appends(&b, ",\"seq\":");
    dr_json_append_i64(&b, n->seq);
    dr_buf_appends(&b, ",\"id\":");
    dr_buf_append_json_str(&b, n->id, strlen(n->id));
    dr_buf_appends(&b, ",\"event\":");
    dr_buf_append_json_str(&b, n->type, strlen(n->type));
    if (resume < n->seq) {
        dr_buf_appends(&b, ",\"resume\":");
        dr_json_append_i64(&b, resume);
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
