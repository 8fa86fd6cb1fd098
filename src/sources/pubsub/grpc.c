/*
 * Pub/Sub's subscriber calls over gRPC: Pull, Acknowledge and ModifyAckDeadline as unary calls on
 * HTTP/2. Each message is in gRPC's framing (a flag byte, a 4-byte big-endian length, then the
 * protobuf). The protobuf of google.pubsub.v1 is written and read here: only the fields
 * data-router uses are written; when reading, unknown fields are skipped and every length is
 * checked against what is left of its enclosing message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/util.h"
#include "sources/pubsub/pubsub_internal.h"

enum wire { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* google.pubsub.v1 field numbers */
enum {
    PULL_REQ_SUBSCRIPTION = 1,
    PULL_REQ_RETURN_IMMEDIATELY = 2,
    PULL_REQ_MAX_MESSAGES = 3,
    PUB_REQ_TOPIC = 1,
    PUB_REQ_MESSAGES = 2,
    PUB_RESP_MESSAGE_IDS = 1,
    ACK_REQ_SUBSCRIPTION = 1,
    ACK_REQ_ACK_IDS = 2,
    MODACK_REQ_SUBSCRIPTION = 1,
    MODACK_REQ_DEADLINE = 3,
    MODACK_REQ_ACK_IDS = 4,
    PULL_RESP_RECEIVED = 1,
    RECEIVED_ACK_ID = 1,
    RECEIVED_MESSAGE = 2,
    RECEIVED_DELIVERY_ATTEMPT = 3,
    MSG_DATA = 1,
    MSG_ATTRIBUTES = 2,
    MSG_MESSAGE_ID = 3,
    MSG_PUBLISH_TIME = 4,
    MSG_ORDERING_KEY = 5,
    MAP_KEY = 1,
    MAP_VALUE = 2,
    TS_SECONDS = 1,
    TS_NANOS = 2,
};

#define FRAME_HEADER 5
#define MAX_ATTRS    1000 /* the service allows 100 */

/* ---- writing ---- */

static int put_varint(struct dr_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;

    do {
        tmp[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) {
            tmp[n] |= 0x80;
        }
        n++;
    } while (v);
    return dr_buf_append(b, tmp, n);
}

static int put_tag(struct dr_buf *b, unsigned field, enum wire wt)
{
    return put_varint(b, (uint64_t)field << 3 | wt);
}

static int put_bytes(struct dr_buf *b, unsigned field, const void *p, size_t n)
{
    return put_tag(b, field, WT_LEN) || put_varint(b, n) || dr_buf_append(b, p, n);
}

static int put_str(struct dr_buf *b, unsigned field, const char *s)
{
    return put_bytes(b, field, s, strlen(s));
}

static int put_uint(struct dr_buf *b, unsigned field, uint64_t v)
{
    return put_tag(b, field, WT_VARINT) || put_varint(b, v);
}

/* Reserves the frame header; frame_end() fills it in once the message is written. */
static int frame_begin(struct dr_buf *b, size_t *start)
{
    static const unsigned char zero[FRAME_HEADER];
    *start = b->len;
    return dr_buf_append(b, zero, sizeof(zero));
}

static int frame_end(struct dr_buf *b, size_t start)
{
    size_t n = b->len - start - FRAME_HEADER;
    unsigned char *h = (unsigned char *)b->data + start;

    if (n > UINT32_MAX) {
        return DR_ETOOBIG;
    }
    h[0] = 0; /* not compressed */
    h[1] = (unsigned char)(n >> 24);
    h[2] = (unsigned char)(n >> 16);
    h[3] = (unsigned char)(n >> 8);
    h[4] = (unsigned char)n;
    return DR_OK;
}

int dr__grpc_pull_request(const char *subscription, int max_messages, int return_immediately,
                          struct dr_buf *out)
{
    size_t start;

    if (max_messages < 0) {
        return DR_EINVAL;
    }
    if (frame_begin(out, &start) || put_str(out, PULL_REQ_SUBSCRIPTION, subscription) ||
        (return_immediately && put_uint(out, PULL_REQ_RETURN_IMMEDIATELY, 1)) ||
        put_uint(out, PULL_REQ_MAX_MESSAGES, (uint64_t)max_messages)) {
        return DR_ETOOBIG;
    }
    return frame_end(out, start);
}

int dr__grpc_ack_request(const char *subscription, const char *const *ack_ids, size_t n,
                         int deadline_s, struct dr_buf *out)
{
    unsigned ids_field = deadline_s < 0 ? ACK_REQ_ACK_IDS : MODACK_REQ_ACK_IDS;
    size_t start;

    if (frame_begin(out, &start) || put_str(out, ACK_REQ_SUBSCRIPTION, subscription)) {
        return DR_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        if (put_str(out, ids_field, ack_ids[i])) {
            return DR_ETOOBIG;
        }
    }
    if (deadline_s >= 0 && put_uint(out, MODACK_REQ_DEADLINE, (uint64_t)deadline_s)) {
        return DR_ETOOBIG;
    }
    return frame_end(out, start);
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* The length of a length-delimited field of n bytes (one-byte tag). */
static size_t len_field(size_t n)
{
    return 1 + varint_len(n) + n;
}

int dr__grpc_publish_request(const char *topic, const struct dr_pubsub_pub_msg *msgs, size_t n,
                             struct dr_buf *out)
{
    size_t start;

    if (frame_begin(out, &start) || put_str(out, PUB_REQ_TOPIC, topic)) {
        return DR_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        const struct dr_pubsub_pub_msg *m = &msgs[i];
        size_t oklen = m->ordering_key ? strlen(m->ordering_key) : 0;
        size_t mlen = (m->len ? len_field(m->len) : 0) + (oklen ? len_field(oklen) : 0);

        for (size_t a = 0; a < m->n_attrs; a++) {
            mlen += len_field(len_field(strlen(m->attrs[a].key)) +
                              len_field(strlen(m->attrs[a].value)));
        }
        if (put_tag(out, PUB_REQ_MESSAGES, WT_LEN) || put_varint(out, mlen) ||
            (m->len && put_bytes(out, MSG_DATA, m->data, m->len))) {
            return DR_ETOOBIG;
        }
        for (size_t a = 0; a < m->n_attrs; a++) {
            const char *k = m->attrs[a].key, *v = m->attrs[a].value;
            if (put_tag(out, MSG_ATTRIBUTES, WT_LEN) ||
                put_varint(out, len_field(strlen(k)) + len_field(strlen(v))) ||
                put_str(out, MAP_KEY, k) || put_str(out, MAP_VALUE, v)) {
                return DR_ETOOBIG;
            }
        }
        if (oklen && put_str(out, MSG_ORDERING_KEY, m->ordering_key)) {
            return DR_ETOOBIG;
        }
    }
    return frame_end(out, start);
}

/* ---- reading ---- */

struct pb {
    const unsigned char *p, *end;
};

struct field {
    unsigned num;
    enum wire wt;
    uint64_t v;   /* WT_VARINT */
    struct pb in; /* WT_LEN: the field's bytes */
};

static int get_varint(struct pb *r, uint64_t *v)
{
    uint64_t x = 0;

    for (unsigned shift = 0; shift < 64; shift += 7) {
        unsigned char c;
        if (r->p >= r->end) {
            return -1;
        }
        c = *r->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1; /* longer than 10 bytes */
}

/* The next field of r into f; 1 when there is one, 0 at the end, -1 when malformed. */
static int next_field(struct pb *r, struct field *f)
{
    uint64_t key;

    if (r->p >= r->end) {
        return 0;
    }
    if (get_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
        return -1;
    }
    f->num = (unsigned)(key >> 3);
    f->wt = (enum wire)(key & 7);
    switch (f->wt) {
    case WT_VARINT:
        return get_varint(r, &f->v) ? -1 : 1;
    case WT_I64:
    case WT_I32: {
        size_t n = f->wt == WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n) {
            return -1;
        }
        r->p += n;
        return 1;
    }
    case WT_LEN:
        if (get_varint(r, &f->v) || f->v > (uint64_t)(r->end - r->p)) {
            return -1;
        }
        f->in.p = r->p;
        f->in.end = r->p + f->v;
        r->p += f->v;
        return 1;
    default:
        return -1; /* groups and undefined wire types: not in Pub/Sub's messages */
    }
}

/* A NUL-terminated copy of a string field; NULL when it holds a NUL or is not UTF-8. */
static char *text_copy(const struct pb *in)
{
    size_t n = (size_t)(in->end - in->p);
    char *s;

    if (memchr(in->p, '\0', n) || !dr_utf8_valid(in->p, n)) {
        return NULL;
    }
    s = dr_xmalloc(n + 1);
    memcpy(s, in->p, n);
    s[n] = '\0';
    return s;
}

static const char *parse_timestamp(struct pb in, int64_t *ms)
{
    struct field f = {0};
    uint64_t secs = 0, nanos = 0;
    int rc;

    while ((rc = next_field(&in, &f)) > 0) {
        if (f.num == TS_SECONDS && f.wt == WT_VARINT) {
            secs = f.v;
        } else if (f.num == TS_NANOS && f.wt == WT_VARINT) {
            nanos = f.v;
        } else if (f.num == TS_SECONDS || f.num == TS_NANOS) {
            return "publishTime is malformed";
        }
    }
    /* 0001-01-01 .. 9999-12-31 as Timestamp allows, but before 1970 is not a publish time */
    if (rc < 0 || secs > 253402300799ull || nanos > 999999999) {
        return "publishTime is malformed";
    }
    *ms = (int64_t)secs * 1000 + (int64_t)(nanos / 1000000);
    return NULL;
}

static const char *parse_attribute(struct pb in, struct dr_pubsub_msg *m)
{
    struct field f = {0};
    static const unsigned char none[1];
    struct pb key = {none, none}, value = {none, none};
    char *k, *v;
    int rc;

    while ((rc = next_field(&in, &f)) > 0) {
        if ((f.num == MAP_KEY || f.num == MAP_VALUE) && f.wt != WT_LEN) {
            return "attribute is malformed";
        }
        if (f.num == MAP_KEY) {
            key = f.in;
        } else if (f.num == MAP_VALUE) {
            value = f.in;
        }
    }
    if (rc < 0) {
        return "attribute is malformed";
    }
    k = text_copy(&key);
    v = text_copy(&value);
    if (!k || !v) {
        free(k);
        free(v);
        return "attribute is not UTF-8 text";
    }
    /* a map: a key seen again replaces the value */
    for (size_t i = 0; i < m->n_attrs; i++) {
        if (strcmp(m->attrs[i].key, k) == 0) {
            free(k);
            free((char *)m->attrs[i].value);
            m->attrs[i].value = v;
            return NULL;
        }
    }
    if (m->n_attrs >= MAX_ATTRS) {
        free(k);
        free(v);
        return "too many attributes";
    }
    m->attrs = dr_xrealloc(m->attrs, (m->n_attrs + 1) * sizeof(*m->attrs));
    m->attrs[m->n_attrs].key = k;
    m->attrs[m->n_attrs].value = v;
    m->n_attrs++;
    return NULL;
}

/* Fills m from a PubsubMessage; returns why it is invalid, or NULL. */
static const char *parse_message(struct pb in, struct dr_pubsub_msg *m)
{
    struct field f = {0};
    const char *why;
    int rc;

    while ((rc = next_field(&in, &f)) > 0) {
        if (f.num >= MSG_DATA && f.num <= MSG_ORDERING_KEY && f.wt != WT_LEN) {
            return "message is malformed";
        }
        switch (f.num) {
        case MSG_DATA: {
            size_t n = (size_t)(f.in.end - f.in.p);
            free(m->data);
            m->data = dr_xmalloc(n + 1);
            memcpy(m->data, f.in.p, n);
            m->data[n] = '\0';
            m->len = n;
            break;
        }
        case MSG_ATTRIBUTES:
            if ((why = parse_attribute(f.in, m)) != NULL) {
                return why;
            }
            break;
        case MSG_MESSAGE_ID:
            free(m->message_id);
            if ((m->message_id = text_copy(&f.in)) == NULL) {
                return "messageId is not UTF-8 text";
            }
            break;
        case MSG_PUBLISH_TIME:
            if ((why = parse_timestamp(f.in, &m->publish_time_ms)) != NULL) {
                return why;
            }
            break;
        case MSG_ORDERING_KEY:
            free(m->ordering_key);
            if ((m->ordering_key = text_copy(&f.in)) == NULL) {
                return "orderingKey is not UTF-8 text";
            }
            break;
        default:
            break;
        }
    }
    if (rc < 0) {
        return "message is malformed";
    }
    if (!m->message_id || !*m->message_id) {
        return "messageId missing";
    }
    return NULL;
}

/* One ReceivedMessage; NULL when it cannot be acknowledged (no usable ack id). */
static struct dr_pubsub_msg *parse_received(struct pb in)
{
    struct dr_pubsub_msg *m = dr_xcalloc(1, sizeof(*m));
    struct pb msg = {NULL, NULL};
    struct field f = {0};
    int rc, has_msg = 0;

    while ((rc = next_field(&in, &f)) > 0) {
        if (f.num == RECEIVED_ACK_ID && f.wt == WT_LEN) {
            free(m->ack_id);
            m->ack_id = text_copy(&f.in);
            if (!m->ack_id) {
                break;
            }
        } else if (f.num == RECEIVED_MESSAGE && f.wt == WT_LEN) {
            msg = f.in;
            has_msg = 1;
        } else if (f.num == RECEIVED_DELIVERY_ATTEMPT && f.wt == WT_VARINT) {
            m->delivery_attempt = f.v > 0 && f.v < 1000000 ? (int)f.v : 0;
        } else if (f.num <= RECEIVED_DELIVERY_ATTEMPT) {
            rc = -1;
            break;
        }
    }
    if (rc < 0 || !m->ack_id || !*m->ack_id) {
        dr_pubsub_msg_free(m);
        return NULL;
    }
    m->invalid = has_msg ? parse_message(msg, m) : "message missing";
    dr__pubsub_msg_settle(m);
    return m;
}

/* The protobuf inside a unary answer's single frame. */
static int unframe(const void *body, size_t len, struct pb *out)
{
    const unsigned char *b = body;
    uint32_t n;

    if (len < FRAME_HEADER || b[0] != 0) {
        return DR_EIO; /* short, or compressed although no compression was offered */
    }
    n = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
    if (n != len - FRAME_HEADER) {
        return DR_EIO;
    }
    out->p = b + FRAME_HEADER;
    out->end = out->p + n;
    return DR_OK;
}

int dr__grpc_parse_pull(const void *body, size_t len, struct dr_pubsub_msg ***msgs, size_t *n)
{
    struct dr_pubsub_msg **arr = NULL;
    size_t count = 0, cap = 0;
    struct pb in, scan;
    struct field f = {0};
    int rc;

    *msgs = NULL;
    *n = 0;
    if (len == 0) {
        return DR_OK; /* no message at all: an empty PullResponse */
    }
    if (unframe(body, len, &in)) {
        return DR_EIO;
    }
    scan = in;
    while ((rc = next_field(&scan, &f)) > 0) {
        cap += f.num == PULL_RESP_RECEIVED;
    }
    if (rc < 0) {
        return DR_EIO;
    }
    if (cap) {
        arr = dr_xcalloc(cap, sizeof(*arr));
    }
    while ((rc = next_field(&in, &f)) > 0) {
        struct dr_pubsub_msg *m;
        if (f.num != PULL_RESP_RECEIVED) {
            continue;
        }
        if (f.wt != WT_LEN || (m = parse_received(f.in)) == NULL) {
            rc = -1; /* nothing to acknowledge it with: the whole answer is suspect */
            break;
        }
        arr[count++] = m;
    }
    if (rc < 0) {
        for (size_t i = 0; i < count; i++) {
            dr_pubsub_msg_free(arr[i]);
        }
        free(arr);
        return DR_EIO;
    }
    *msgs = arr;
    *n = count;
    return DR_OK;
}

int dr__grpc_parse_publish(const void *body, size_t len, char ***ids, size_t *n)
{
    struct pb in, scan;
    struct field f = {0};
    size_t cap = 0, count = 0;
    char **arr;
    int rc;

    *ids = NULL;
    *n = 0;
    if (unframe(body, len, &in)) {
        return DR_EIO;
    }
    scan = in;
    while ((rc = next_field(&scan, &f)) > 0) {
        cap += f.num == PUB_RESP_MESSAGE_IDS;
    }
    if (rc < 0) {
        return DR_EIO;
    }
    arr = dr_xcalloc(cap + 1, sizeof(*arr));
    while ((rc = next_field(&in, &f)) > 0) {
        if (f.num != PUB_RESP_MESSAGE_IDS) {
            continue;
        }
        if (f.wt != WT_LEN || (arr[count] = text_copy(&f.in)) == NULL || !*arr[count]) {
            rc = -1;
            count += arr[count] != NULL;
            break;
        }
        count++;
    }
    if (rc < 0) {
        for (size_t i = 0; i < count; i++) {
            free(arr[i]);
        }
        free(arr);
        return DR_EIO;
    }
    *ids = arr;
    *n = count;
    return DR_OK;
}

/* ---- status ---- */

static const char *const code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int dr__grpc_error(int status, const char *message, char *msg, size_t msgsz)
{
    char text[256];
    size_t k = 0;
    int err;

    switch (status) {
    case 3:  /* INVALID_ARGUMENT */
    case 9:  /* FAILED_PRECONDITION */
    case 11: /* OUT_OF_RANGE */
        err = DR_EINVAL;
        break;
    case 5:
        err = DR_ENOTFOUND;
        break;
    case 6:
        err = DR_EEXIST;
        break;
    case 7:  /* PERMISSION_DENIED */
    case 16: /* UNAUTHENTICATED */
        err = DR_EAUTH;
        break;
    case 12:
        err = DR_EUNSUPPORTED;
        break;
    default: /* CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL,
                UNAVAILABLE, DATA_LOSS and codes not known yet: worth retrying */
        err = DR_EIO;
        break;
    }
    /* grpc-message is percent-encoded */
    for (const char *p = message ? message : ""; *p && k + 1 < sizeof(text); p++) {
        if (p[0] == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            text[k++] = (char)(hexval(p[1]) << 4 | hexval(p[2]));
            p += 2;
        } else {
            text[k++] = *p;
        }
    }
    text[k] = '\0';
    k = dr_utf8_cut(text, k, k);
    text[k] = '\0';
    if (status >= 0 && status < (int)DR_ARRAY_LEN(code_names)) {
        snprintf(msg, msgsz, "gRPC %s: %s", code_names[status], *text ? text : "(no message)");
    } else {
        snprintf(msg, msgsz, "gRPC status %d: %s", status, *text ? text : "(no message)");
    }
    for (char *p = msg; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
    return err;
}
