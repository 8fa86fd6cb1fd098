/* Pub/Sub publish request validation, shared by the local source and its tests. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/buf.h"
#include "dr/json.h"
#include "dr/local.h"
#include "dr/pubsub.h"
#include "dr/store.h"
#include "dr/util.h"

#define MAX_MESSAGES     1000
#define MAX_ATTRS        DR_PUBSUB_MAX_ATTRS
#define MAX_ATTR_KEY     DR_PUBSUB_MAX_ATTR_KEY
#define MAX_ATTR_VALUE   DR_PUBSUB_MAX_ATTR_VALUE
#define MAX_ORDERING_KEY DR_PUBSUB_MAX_ORDERING_KEY

int dr_topic_name_valid(const char *t)
{
    size_t n = strlen(t);
    if (n < 3 || n > 255 || !((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z'))) {
        return 0;
    }
    if (strncmp(t, "goog", 4) == 0) {
        return 0;
    }
    return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+%") == n;
}

int dr_topic_known(const struct dr_config *cfg, const char *topic)
{
    if (dr_config_topic_type(cfg, topic)) {
        return 1;
    }
    for (size_t i = 0; i < cfg->ntopics; i++) {
        if (strcmp(cfg->topics[i].name, topic) == 0) {
            return 1;
        }
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        for (size_t k = 0; k < cfg->routes[i].ntopics; k++) {
            if (strcmp(cfg->routes[i].topics[k], topic) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

void dr_local_new_message_id(char out[32])
{
    static atomic_llong next;
    long long expect = 0;
    /* Seeded from the clock so ids keep increasing across restarts. */
    atomic_compare_exchange_strong(&next, &expect, (long long)dr_now_ms() * 1000000LL);
    snprintf(out, 32, "%lld", atomic_fetch_add(&next, 1));
}

/*
 * The publish body is read in one pass by a scanner specialised for its schema. It accepts
 * strict JSON (RFC 8259) only: whitespace is space, tab, CR and LF; strings hold no raw control
 * bytes and their \u escapes four hex digits; numbers follow the grammar; nothing but whitespace
 * follows the top-level value (a UTF-8 BOM before it is skipped); at most 1000 nested containers.
 * Values mean what cJSON makes of them (the first of duplicate keys wins), and a string holding
 * U+0000 refuses the request instead of being cut short. Everything is validated before an error
 * about the messages is reported, so a malformed body is always "Invalid JSON payload received.".
 */

#define NESTING_LIMIT 1000                /* CJSON_NESTING_LIMIT */
#define MAX_BODY      (64u * 1024 * 1024) /* dr_json_parse's limit */

enum jtype { J_NONE, J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

/* A string literal: its raw bytes lie between the quotes at [start, end). */
struct jstr {
    size_t start, end;
    int esc; /* contains a backslash, so its value differs from the raw bytes */
};

struct jval {
    enum jtype type; /* J_NONE: the key was absent */
    size_t at;       /* offset of the value's first byte */
    struct jstr str; /* when type is J_STRING */
};

/* Scratch bytes reused across strings; never larger than the body. */
struct scratch {
    unsigned char *p;
    size_t cap;
};

struct scan {
    const unsigned char *b;
    size_t len, pos, depth;
    struct scratch tmp; /* escaped keys and data */
    int nul;            /* a string that is used holds U+0000 */
};

struct pp {
    struct scan s;
    const char *topic;
    int64_t now;
    struct dr_qmsg *rows;
    size_t nrows, caprows;
    size_t count;   /* elements of the messages array */
    int have_array; /* the first "messages" member is an array */
    int rc;         /* the first message error; DR_OK while there is none */
    char *err;
    size_t errsz;
    struct scratch key, val; /* an attribute's key and value */
    struct dr_buf attrs;     /* the attributes as printed by cJSON */
};

static unsigned char *scratch_get(struct scratch *t, size_t n)
{
    if (n > t->cap) {
        t->cap = n < 64 ? 64 : n;
        free(t->p);
        t->p = dr_xmalloc(t->cap);
    }
    return t->p;
}

/* RFC 8259 whitespace: space, tab, line feed, carriage return. */
static void skip_ws(struct scan *s)
{
    while (s->pos < s->len) {
        unsigned char c = s->b[s->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            break;
        }
        s->pos++;
    }
}

static int at(const struct scan *s, unsigned char c)
{
    return s->pos < s->len && s->b[s->pos] == c;
}

/* Whether a byte below 0x20 is in [p, p + n): eight bytes at a time (a word has a byte below
 * 0x20 iff (x - 0x20..20) & ~x & 0x80..80 is non-zero). */
static int has_control(const unsigned char *p, size_t n)
{
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        if ((x - 0x2020202020202020ULL) & ~x & 0x8080808080808080ULL) {
            return 1;
        }
    }
    for (; i < n; i++) {
        if (p[i] < 0x20) {
            return 1;
        }
    }
    return 0;
}

static int scan_string(struct scan *s, struct jstr *str)
{
    const unsigned char *b = s->b, *q, *bs;
    size_t i;

    if (!at(s, '"')) {
        return 0;
    }
    i = s->pos + 1;
    q = memchr(b + i, '"', s->len - i);
    if (!q) {
        return 0;
    }
    str->start = i;
    if (has_control(b + i, (size_t)(q - (b + i)))) {
        return 0; /* control characters must be escaped */
    }
    bs = memchr(b + i, '\\', (size_t)(q - (b + i)));
    if (!bs) {
        str->end = (size_t)(q - b);
        str->esc = 0;
        s->pos = str->end + 1;
        return 1;
    }
    /* the first quote may be escaped: find the unescaped one, then check the escapes */
    for (i = (size_t)(bs - b); i < s->len && b[i] != '"'; i++) {
        if (b[i] < 0x20) {
            return 0;
        }
        if (b[i] == '\\') {
            if (i + 1 >= s->len) {
                return 0;
            }
            i++;
        }
    }
    if (i >= s->len) {
        return 0;
    }
    str->end = i;
    str->esc = 1;
    {
        size_t olen;
        unsigned char *o = scratch_get(&s->tmp, i - str->start + 1);
        if (!dr_json_unescape((const char *)b + str->start, i - str->start, (char *)o, &olen)) {
            return 0;
        }
    }
    s->pos = i + 1;
    return 1;
}

static int digits(struct scan *s)
{
    size_t start = s->pos;

    while (s->pos < s->len && s->b[s->pos] >= '0' && s->b[s->pos] <= '9') {
        s->pos++;
    }
    return s->pos > start;
}

/* RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(struct scan *s)
{
    if (at(s, '-')) {
        s->pos++;
    }
    if (at(s, '0')) {
        s->pos++;
    } else if (!digits(s)) {
        return 0;
    }
    if (at(s, '.')) {
        s->pos++;
        if (!digits(s)) {
            return 0;
        }
    }
    if (at(s, 'e') || at(s, 'E')) {
        s->pos++;
        if (at(s, '+') || at(s, '-')) {
            s->pos++;
        }
        if (!digits(s)) {
            return 0;
        }
    }
    return 1;
}

/* A scalar or the opening of a container at s->pos; containers are entered, not skipped. */
static int scan_token(struct scan *s, struct jval *v)
{
    size_t left = s->len - s->pos;
    const unsigned char *p = s->b + s->pos;

    v->at = s->pos;
    if (left >= 4 && memcmp(p, "null", 4) == 0) {
        v->type = J_NULL;
        s->pos += 4;
        return 1;
    }
    if (left >= 5 && memcmp(p, "false", 5) == 0) {
        v->type = J_BOOL;
        s->pos += 5;
        return 1;
    }
    if (left >= 4 && memcmp(p, "true", 4) == 0) {
        v->type = J_BOOL;
        s->pos += 4;
        return 1;
    }
    if (left == 0) {
        return 0;
    }
    switch (*p) {
    case '"':
        v->type = J_STRING;
        return scan_string(s, &v->str);
    case '[':
    case '{':
        if (s->depth >= NESTING_LIMIT) {
            return 0;
        }
        s->depth++;
        s->pos++;
        v->type = *p == '[' ? J_ARRAY : J_OBJECT;
        return 1;
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9')) {
            v->type = J_NUMBER;
            return scan_number(s);
        }
        return 0;
    }
}

/* After an object's '{' (or a member's ','): the key, the colon and the whitespace after it. */
static int scan_key(struct scan *s, struct jstr *key)
{
    skip_ws(s);
    if (!scan_string(s, key)) {
        return 0;
    }
    skip_ws(s);
    if (!at(s, ':')) {
        return 0;
    }
    s->pos++;
    skip_ws(s);
    return 1;
}

/* Validates the value at s->pos and records its type (and its bytes if a string) in v. Nested
 * containers are walked with an explicit stack so hostile nesting costs no C stack. */
static int scan_value(struct scan *s, struct jval *v)
{
    unsigned char open[NESTING_LIMIT]; /* '[' or '{' per container entered here */
    size_t top = 0;
    struct jval t;
    struct jstr key;

    if (!scan_token(s, v)) {
        return 0;
    }
    if (v->type != J_ARRAY && v->type != J_OBJECT) {
        return 1;
    }
    open[top++] = v->type == J_ARRAY ? '[' : '{';
    skip_ws(s);
    if (at(s, open[0] == '[' ? ']' : '}')) {
        s->pos++;
        s->depth--;
        return 1;
    }
    for (;;) {
        /* expecting a member or an element of the innermost container */
        if (open[top - 1] == '{' && !scan_key(s, &key)) {
            return 0;
        }
        skip_ws(s);
        if (!scan_token(s, &t)) {
            return 0;
        }
        if (t.type == J_ARRAY || t.type == J_OBJECT) {
            open[top++] = t.type == J_ARRAY ? '[' : '{';
            skip_ws(s);
            if (!at(s, t.type == J_ARRAY ? ']' : '}')) {
                continue;
            }
            s->pos++;
            s->depth--;
            top--;
        }
        /* a value ended: close containers until one continues */
        for (;;) {
            skip_ws(s);
            if (at(s, ',')) {
                s->pos++;
                break;
            }
            if (!at(s, open[top - 1] == '[' ? ']' : '}')) {
                return 0;
            }
            s->pos++;
            s->depth--;
            if (--top == 0) {
                return 1;
            }
        }
    }
}

/* The value of str, escapes decoded. A NUL can only come from \u0000 (scan_string refuses raw
 * control bytes); it is noted and the request refused, since a C string would silently lose what
 * follows it (data, attribute values, idempotency keys that then collide). */
static void str_value(struct scan *s, const struct jstr *str, struct scratch *t,
                      const unsigned char **p, size_t *n)
{
    const unsigned char *nul;

    if (!str->esc) {
        *p = s->b + str->start;
        *n = str->end - str->start;
        return;
    }
    unsigned char *o = scratch_get(t, str->end - str->start + 1);
    /* validated by scan_string */
    dr_json_unescape((const char *)s->b + str->start, str->end - str->start, (char *)o, n);
    *p = o;
    nul = memchr(*p, 0, *n);
    if (nul) {
        *n = (size_t)(nul - *p);
        s->nul = 1;
    }
}

static int key_is(struct scan *s, const struct jstr *key, const char *name)
{
    const unsigned char *p;
    size_t n, want = strlen(name);

    if (!key->esc && key->end - key->start != want) {
        return 0;
    }
    str_value(s, key, &s->tmp, &p, &n);
    return n == want && memcmp(p, name, n) == 0;
}

static void fail_msg(struct pp *pp, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_msg(struct pp *pp, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(pp->err, pp->errsz, fmt, ap);
    va_end(ap);
    pp->rc = rc;
}

static int take_data(struct pp *pp, const struct jstr *str, struct dr_qmsg *q)
{
    const unsigned char *p;
    unsigned char *o;
    size_t n, dlen;

    str_value(&pp->s, str, &pp->s.tmp, &p, &n);
    o = malloc(DR_BASE64_DECODED_MAX(n) + 1);
    if (!o) {
        return DR_ENOMEM;
    }
    if (dr_base64_data_decode_into((const char *)p, n, o, &dlen)) {
        free(o);
        return DR_EINVAL;
    }
    o[dlen] = '\0';
    q->data = o;
    q->data_len = dlen;
    return DR_OK;
}

/* Checks the attributes object at offset `where` (already validated) in cJSON's member order and
 * prints it into pp->attrs; *ik is set from the first "idempotency_key". */
static int take_attrs(struct pp *pp, size_t where, size_t i, int *nattrs, char ik[32])
{
    struct scan *s = &pp->s;
    size_t saved = s->pos, depth = s->depth;
    size_t key_at[MAX_ATTRS + 1], key_len[MAX_ATTRS + 1]; /* each key as printed into pp->attrs */
    int rc = DR_OK, seen_ik = 0;

    dr_buf_reset(&pp->attrs);
    dr_buf_appendc(&pp->attrs, '{');
    s->pos = where + 1;
    skip_ws(s);
    if (!at(s, '}')) {
        for (;;) {
            struct jstr key;
            struct jval v;
            const unsigned char *kp, *vp;
            size_t kn, vn;

            scan_key(s, &key);
            scan_value(s, &v);
            (*nattrs)++;
            str_value(s, &key, &pp->key, &kp, &kn);
            if (v.type != J_STRING) {
                fail_msg(pp, DR_EINVAL,
                         "Invalid value at 'messages[%zu].attributes[%.*s]': attribute values "
                         "must be strings.",
                         i, (int)kn, (const char *)kp);
                rc = DR_EINVAL;
                goto out;
            }
            if (kn == 0 || kn > MAX_ATTR_KEY) {
                fail_msg(pp, DR_ETOOBIG, "messages[%zu]: attribute keys must be 1-%d bytes.", i,
                         MAX_ATTR_KEY);
                rc = DR_ETOOBIG;
                goto out;
            }
            if (kn >= 4 && memcmp(kp, "goog", 4) == 0) {
                fail_msg(pp, DR_EINVAL,
                         "messages[%zu]: attribute keys must not start with "
                         "\"goog\".",
                         i);
                rc = DR_EINVAL;
                goto out;
            }
            str_value(s, &v.str, &pp->val, &vp, &vn);
            if (vn > MAX_ATTR_VALUE) {
                fail_msg(pp, DR_ETOOBIG, "messages[%zu]: attribute '%.*s' is longer than %d bytes.",
                         i, (int)kn, (const char *)kp, MAX_ATTR_VALUE);
                rc = DR_ETOOBIG;
                goto out;
            }
            if (!seen_ik && kn == 15 && memcmp(kp, "idempotency_key", 15) == 0) {
                seen_ik = 1;
                if (vn) {
                    /* The same key always maps to the same id: a second publish while the first
                     * is still queued is then a no-op in the queue table. */
                    char digest[65];
                    dr_sha256_hex(vp, vn, digest);
                    snprintf(ik, 32, "ik-%.24s", digest);
                }
            }
            if (*nattrs > 1) {
                dr_buf_appendc(&pp->attrs, ',');
            }
            if (*nattrs <= MAX_ATTRS) {
                key_at[*nattrs - 1] = pp->attrs.len;
            }
            dr_buf_append_json_str(&pp->attrs, (const char *)kp, kn);
            if (*nattrs <= MAX_ATTRS) {
                key_len[*nattrs - 1] = pp->attrs.len - key_at[*nattrs - 1];
            }
            dr_buf_appendc(&pp->attrs, ':');
            dr_buf_append_json_str(&pp->attrs, (const char *)vp, vn);
            skip_ws(s);
            if (!at(s, ',')) {
                break;
            }
            s->pos++;
        }
    }
    dr_buf_appendc(&pp->attrs, '}');
    if (*nattrs > MAX_ATTRS) {
        fail_msg(pp, DR_ETOOBIG, "messages[%zu] has %d attributes; at most %d are allowed.", i,
                 *nattrs, MAX_ATTRS);
        rc = DR_ETOOBIG;
        goto out;
    }
    /* a map: one value per key (the same key always prints the same) */
    for (int a = 1; a < *nattrs; a++) {
        for (int b = 0; b < a; b++) {
            if (key_len[a] == key_len[b] &&
                memcmp(pp->attrs.data + key_at[a], pp->attrs.data + key_at[b], key_len[a]) == 0) {
                fail_msg(pp, DR_EINVAL,
                         "Invalid JSON payload received: messages[%zu].attributes %s.", i,
                         DR_PUBLISH_ERR_DUP_KEY);
                rc = DR_EINVAL;
                goto out;
            }
        }
    }
out:
    s->pos = saved;
    s->depth = depth;
    return rc;
}

/* Turns message i, whose members data, attrs and okey were found, into a row, applying the
 * checks in the order Pub/Sub's messages name them. */
static void take_message(struct pp *pp, size_t i, const struct jval *data, const struct jval *attrs,
                         const struct jval *okey)
{
    struct dr_qmsg *q;
    char id[32] = "";
    int nattrs = 0;

    if (pp->nrows == pp->caprows) {
        pp->caprows = pp->caprows ? pp->caprows * 2 : 16;
        pp->rows = dr_xrealloc(pp->rows, pp->caprows * sizeof(*pp->rows));
    }
    q = &pp->rows[pp->nrows++];
    memset(q, 0, sizeof(*q));
    if (data->type != J_NONE && data->type != J_NULL) {
        if (data->type != J_STRING || take_data(pp, &data->str, q)) {
            fail_msg(pp, DR_EINVAL,
                     "Invalid value at 'messages[%zu].data' (TYPE_BYTES), Base64 decoding failed.",
                     i);
            return;
        }
    }
    if (attrs->type != J_NONE && attrs->type != J_NULL) {
        if (attrs->type != J_OBJECT) {
            fail_msg(pp, DR_EINVAL,
                     "Invalid value at 'messages[%zu].attributes': expected an "
                     "object of strings.",
                     i);
            return;
        }
        if (take_attrs(pp, attrs->at, i, &nattrs, id)) {
            return;
        }
        q->attrs_json = dr_xstrndup(pp->attrs.data, pp->attrs.len);
    } else {
        q->attrs_json = dr_xstrdup("{}");
    }
    if (q->data_len == 0 && nattrs == 0) {
        fail_msg(pp, DR_EINVAL,
                 "Some messages contain no data and no attribute field "
                 "(messages[%zu]).",
                 i);
        return;
    }
    if (okey->type != J_NONE && okey->type != J_NULL) {
        const unsigned char *p;
        size_t n;
        if (okey->type != J_STRING) {
            fail_msg(pp, DR_EINVAL, "messages[%zu].orderingKey must be a string.", i);
            return;
        }
        str_value(&pp->s, &okey->str, &pp->val, &p, &n);
        if (n > MAX_ORDERING_KEY) {
            fail_msg(pp, DR_ETOOBIG, "messages[%zu].orderingKey is longer than %d bytes.", i,
                     MAX_ORDERING_KEY);
            return;
        }
        if (n) {
            q->ordering_key = dr_xstrndup((const char *)p, n);
        }
    }
    if (!*id) {
        dr_local_new_message_id(id);
        q->fresh_id = 1;
    }
    q->message_id = dr_xstrdup(id);
    q->topic = dr_xstrdup(pp->topic);
    q->publish_time_ms = pp->now;
}

/* One element of the messages array, at s->pos. */
static int scan_message(struct pp *pp)
{
    struct scan *s = &pp->s;
    struct jval data = {0}, attrs = {0}, okey = {0}, other;
    size_t i = pp->count++;
    int live = pp->rc == DR_OK && pp->count <= MAX_MESSAGES;

    if (!at(s, '{') || !live) {
        if (!scan_value(s, &other)) {
            return 0;
        }
        if (live) {
            fail_msg(pp, DR_EINVAL, "messages[%zu] is not an object.", i);
        }
        return 1;
    }
    if (!scan_token(s, &other)) {
        return 0; /* too deep */
    }
    skip_ws(s);
    if (!at(s, '}')) {
        for (;;) {
            struct jstr key;
            struct jval *v = &other;
            if (!scan_key(s, &key)) {
                return 0;
            }
            if (data.type == J_NONE && key_is(s, &key, "data")) {
                v = &data;
            } else if (attrs.type == J_NONE && key_is(s, &key, "attributes")) {
                v = &attrs;
            } else if (okey.type == J_NONE && key_is(s, &key, "orderingKey")) {
                v = &okey;
            }
            if (!scan_value(s, v)) {
                return 0;
            }
            skip_ws(s);
            if (!at(s, ',')) {
                break;
            }
            s->pos++;
        }
        if (!at(s, '}')) {
            return 0;
        }
    }
    s->pos++;
    s->depth--;
    take_message(pp, i, &data, &attrs, &okey);
    return 1;
}

static int scan_messages(struct pp *pp)
{
    struct scan *s = &pp->s;
    struct jval v;

    if (!scan_token(s, &v)) {
        return 0;
    }
    skip_ws(s);
    if (!at(s, ']')) {
        for (;;) {
            skip_ws(s);
            if (!scan_message(pp)) {
                return 0;
            }
            skip_ws(s);
            if (!at(s, ',')) {
                break;
            }
            s->pos++;
        }
        if (!at(s, ']')) {
            return 0;
        }
    }
    s->pos++;
    s->depth--;
    return 1;
}

static int scan_body(struct pp *pp)
{
    struct scan *s = &pp->s;
    struct jval v;
    int seen = 0;

    if (s->len >= 5 && memcmp(s->b, "\xEF\xBB\xBF", 3) == 0) {
        s->pos = 3;
    }
    skip_ws(s);
    if (!at(s, '{')) {
        /* valid or not, there is no "messages" member */
        if (!scan_value(s, &v)) {
            return 0;
        }
        skip_ws(s);
        return s->pos == s->len; /* nothing may follow the top-level value */
    }
    if (!scan_token(s, &v)) {
        return 0;
    }
    skip_ws(s);
    if (!at(s, '}')) {
        for (;;) {
            struct jstr key;
            if (!scan_key(s, &key)) {
                return 0;
            }
            if (!seen && key_is(s, &key, "messages")) {
                seen = 1;
                if (at(s, '[')) {
                    pp->have_array = 1;
                    if (!scan_messages(pp)) {
                        return 0;
                    }
                } else if (!scan_value(s, &v)) {
                    return 0;
                }
            } else if (!scan_value(s, &v)) {
                return 0;
            }
            skip_ws(s);
            if (!at(s, ',')) {
                break;
            }
            s->pos++;
        }
        if (!at(s, '}')) {
            return 0;
        }
    }
    s->pos++; /* the closing brace */
    skip_ws(s);
    return s->pos == s->len; /* nothing may follow the top-level value */
}

int dr_publish_parse(const char *body, size_t len, const char *topic, struct dr_qmsg **out,
                     size_t *n, char *err, size_t errsz)
{
    struct pp pp = {0};
    int rc = DR_EINVAL;

    *out = NULL;
    *n = 0;
    pp.s.b = (const unsigned char *)body;
    pp.s.len = len;
    pp.topic = topic;
    pp.now = dr_now_ms();
    pp.err = err;
    pp.errsz = errsz;
    /* an attribute printed by cJSON is at most 6 bytes per byte of the body */
    dr_buf_init(&pp.attrs, len > MAX_BODY ? 0 : 6 * len + 16);
    if (body && len > 0 && len <= MAX_BODY && !dr_utf8_valid(body, len)) {
        snprintf(err, errsz, "%s", DR_PUBLISH_ERR_UTF8);
        goto out;
    }
    if (!body || len == 0 || len > MAX_BODY || !scan_body(&pp)) {
        snprintf(err, errsz, "Invalid JSON payload received.");
        goto out;
    }
    if (pp.s.nul) {
        snprintf(err, errsz, "%s", DR_PUBLISH_ERR_NUL);
        goto out;
    }
    if (!pp.have_array) {
        snprintf(err, errsz, "The request must contain a \"messages\" array.");
        goto out;
    }
    if (pp.count == 0) {
        snprintf(err, errsz, "The request contains no messages.");
        goto out;
    }
    if (pp.count > MAX_MESSAGES) {
        snprintf(err, errsz,
                 "The value for message_count is too large. You passed %zu in the request, but "
                 "the maximum value is %d.",
                 pp.count, MAX_MESSAGES);
        goto out;
    }
    rc = pp.rc;
    if (rc) {
        goto out; /* err holds the message's error */
    }
    *out = pp.rows;
    *n = pp.nrows;
    pp.rows = NULL;
out:
    if (pp.rows) {
        dr_qmsgs_free(pp.rows, pp.nrows);
    }
    free(pp.s.tmp.p);
    free(pp.key.p);
    free(pp.val.p);
    dr_buf_cleanup(&pp.attrs);
    return rc;
}
