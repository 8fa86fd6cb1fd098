/*
 * dr_publish_parse() against the cJSON-tree implementation it replaced (publish_ref.c): the same
 * return code, error text and rows for hand-written edge cases, generated valid bodies and
 * mutated bodies. Set DR_TEST_SEED to replay one run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/local.h"
#include "dr/store.h"
#include "dr/util.h"

#include "publish_ref.c"

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)(((rng_state * 0x2545f4914f6cdd1dull) >> 32) % n);
}

static int chance(uint32_t percent)
{
    return rnd(100) < percent;
}

static size_t ncompared, nok, nnul, nstrict, nutf8, ndup;
static const char *BAD_JSON = "Invalid JSON payload received.";

static void same_str(const char *what, size_t i, const char *a, const char *b)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
        fail_msg("row %zu %s: new '%s', reference '%s'", i, what, a ? a : "(null)",
                 b ? b : "(null)");
    }
}

static void dump_body(const char *body, size_t len)
{
    fprintf(stderr, "body (%zu bytes): ", len);
    for (size_t i = 0; i < len && i < 600; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c >= 32 && c < 127) {
            fputc(c, stderr);
        } else {
            fprintf(stderr, "\\x%02x", c);
        }
    }
    fputc('\n', stderr);
}

/* A \u0000 escape anywhere in body. */
static int has_nul_escape(const char *body, size_t len)
{
    for (size_t i = 0; i + 6 <= len; i++) {
        if (body[i] == '\\' && body[i + 1] == 'u' && memcmp(body + i + 2, "0000", 4) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Whether the new parser refuses body for a NUL (asked with a buffer that holds the message). */
static int refused_for_nul(const char *body, size_t len)
{
    struct dr_qmsg *rows = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc = dr_publish_parse(body, len, "topic-x", &rows, &n, err, sizeof(err));

    dr_qmsgs_free(rows, n);
    return rc == DR_EINVAL && strcmp(err, DR_PUBLISH_ERR_NUL) == 0;
}

/* Rules the reference did not have: a body that is not UTF-8, and an attributes object that
 * names a key twice, are refused. full_error() is the new parser's whole message. */
static int full_error(const char *body, size_t len, char err[512])
{
    struct dr_qmsg *rows = NULL;
    size_t n = 0;
    int rc = dr_publish_parse(body, len, "topic-x", &rows, &n, err, 512);

    dr_qmsgs_free(rows, n);
    return rc;
}

/* The index of the first message whose attributes name a key twice (as the reference's JSON
 * reader sees the body), or -1. */
static long first_dup_key(const char *body, size_t len)
{
    cJSON *root = dr_json_parse(body, len);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages"), *m;
    long i = 0, found = -1;

    if (!cJSON_IsArray(msgs)) {
        msgs = NULL;
    }
    cJSON_ArrayForEach(m, msgs)
    {
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(m, "attributes"), *a, *b;
        if (!cJSON_IsObject(attrs)) {
            attrs = NULL;
        }
        cJSON_ArrayForEach(a, attrs)
        {
            for (b = attrs->child; b != a; b = b->next) {
                if (strcmp(a->string, b->string) == 0) {
                    found = i;
                    goto out;
                }
            }
        }
        i++;
    }
out:
    cJSON_Delete(root);
    return found;
}

/* Refused under one of the new rules: then the body breaks it. */
static int refused_by_new_rule(const char *body, size_t len)
{
    char err[512] = "";
    const char *at;
    long i;

    if (full_error(body, len, err) != DR_EINVAL) {
        return 0;
    }
    if (strcmp(err, DR_PUBLISH_ERR_UTF8) == 0) {
        assert_false(dr_utf8_valid(body, len));
        nutf8++;
        return 1;
    }
    if (strstr(err, DR_PUBLISH_ERR_DUP_KEY) && (at = strstr(err, "messages[")) != NULL) {
        i = strtol(at + 9, NULL, 10);
        if (first_dup_key(body, len) != i) {
            dump_body(body, len);
            fail_msg("refused for a repeated key in messages[%ld], the first is at %ld", i,
                     first_dup_key(body, len));
        }
        ndup++;
        return 1;
    }
    return 0;
}

/* ---- a strict RFC 8259 validator: the oracle for what the new parser refuses and the
 * reference (cJSON, more lenient) accepted ---- */

static const char *sj_value(const char *p, const char *e, int depth);

static const char *sj_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

static const char *sj_digits(const char *p, const char *e)
{
    const char *q = p;
    while (q < e && *q >= '0' && *q <= '9') {
        q++;
    }
    return q > p ? q : NULL;
}

static const char *sj_string(const char *p, const char *e)
{
    if (p >= e || *p != '"') {
        return NULL;
    }
    for (p++; p < e;) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) {
            return NULL;
        }
        if (c == '"') {
            return p + 1;
        }
        if (c != '\\') {
            p++;
            continue;
        }
        if (p + 1 >= e) {
            return NULL;
        }
        if (strchr("\"\\/bfnrt", p[1]) && p[1]) {
            p += 2;
        } else if (p[1] == 'u' && e - p >= 6 && isxdigit((unsigned char)p[2]) &&
                   isxdigit((unsigned char)p[3]) && isxdigit((unsigned char)p[4]) &&
                   isxdigit((unsigned char)p[5])) {
            p += 6;
        } else {
            return NULL;
        }
    }
    return NULL;
}

static const char *sj_number(const char *p, const char *e)
{
    if (p < e && *p == '-') {
        p++;
    }
    if (p < e && *p == '0') {
        p++;
    } else if (!(p = sj_digits(p, e))) {
        return NULL;
    }
    if (p < e && *p == '.' && !(p = sj_digits(p + 1, e))) {
        return NULL;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) {
            p++;
        }
        p = sj_digits(p, e);
    }
    return p;
}

static const char *sj_container(const char *p, const char *e, int depth, char close)
{
    p = sj_ws(p + 1, e);
    if (p < e && *p == close) {
        return p + 1;
    }
    for (;;) {
        if (close == '}') {
            if (!(p = sj_string(p, e))) {
                return NULL;
            }
            p = sj_ws(p, e);
            if (p >= e || *p != ':') {
                return NULL;
            }
            p = sj_ws(p + 1, e);
        }
        if (!(p = sj_value(p, e, depth + 1))) {
            return NULL;
        }
        p = sj_ws(p, e);
        if (p < e && *p == ',') {
            p = sj_ws(p + 1, e);
            continue;
        }
        return p < e && *p == close ? p + 1 : NULL;
    }
}

static const char *sj_value(const char *p, const char *e, int depth)
{
    if (p >= e) {
        return NULL;
    }
    switch (*p) {
    case '"':
        return sj_string(p, e);
    case '[':
    case '{':
        return depth >= 1000 ? NULL : sj_container(p, e, depth, *p == '[' ? ']' : '}');
    case 't':
        return e - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return e - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return e - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return sj_number(p, e);
    }
}

static int strict_json(const char *body, size_t len)
{
    const char *p = body, *e = body + len;

    if (len >= 5 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3; /* a UTF-8 byte order mark, ignored as by the parser */
    }
    p = sj_value(sj_ws(p, e), e, 0);
    return p && sj_ws(p, e) == e;
}

/* The new parser's error for body, with room for the whole message. */
static int new_error(const char *body, size_t len, char err[512])
{
    struct dr_qmsg *rows = NULL;
    size_t n = 0;
    int rc;

    err[0] = '\0';
    rc = dr_publish_parse(body, len, "topic-x", &rows, &n, err, 512);
    dr_qmsgs_free(rows, n);
    return rc;
}

/* The new parser refuses body as invalid JSON where the reference did not: then body must not
 * be strict JSON. And whatever the new parser reads as JSON must be strict JSON. */
static int refused_not_strict(const char *body, size_t len)
{
    struct dr_qmsg *rows = NULL;
    size_t n = 0;
    char err[512], ref[512] = "";

    if (new_error(body, len, err) != DR_EINVAL || strcmp(err, BAD_JSON) != 0) {
        assert_true(strict_json(body, len));
        return 0;
    }
    publish_parse_ref(body, len, "topic-x", &rows, &n, ref, sizeof(ref));
    dr_qmsgs_free(rows, n);
    if (strcmp(ref, BAD_JSON) == 0) {
        return 0; /* the reference refused it too */
    }
    if (strict_json(body, len)) {
        dump_body(body, len);
        fail_msg("strict JSON refused as invalid");
    }
    return 1;
}

/* Runs both parsers on body and fails on any difference; returns the return code. A body the
 * new parser refuses because a string holds U+0000 (which the reference silently cut off) is
 * checked to hold one and not compared. */
static int compare_sz(const char *body, size_t len, size_t errsz)
{
    struct dr_qmsg *a = NULL, *b = NULL;
    size_t na = 99, nb = 99;
    char ea[600], eb[600];
    int64_t t0, t1, t2;
    int ra, rb;

    memset(ea, 'x', sizeof(ea));
    memset(eb, 'x', sizeof(eb));
    ea[sizeof(ea) - 1] = eb[sizeof(eb) - 1] = '\0';
    t0 = dr_now_ms();
    ra = dr_publish_parse(body, len, "topic-x", &a, &na, ea, errsz);
    t1 = dr_now_ms();
    if (ra == DR_EINVAL && refused_for_nul(body, len)) {
        /* refused where the reference cut a string at its NUL: there must be one */
        assert_true(has_nul_escape(body, len));
        assert_null(a);
        assert_true(errsz == 0 || strncmp(ea, DR_PUBLISH_ERR_NUL, errsz - 1) == 0);
        nnul++;
        return ra;
    }
    if (ra == DR_EINVAL && refused_by_new_rule(body, len)) {
        assert_null(a);
        return ra;
    }
    if (refused_not_strict(body, len)) {
        assert_int_equal(ra, DR_EINVAL);
        assert_null(a);
        nstrict++;
        return ra;
    }
    rb = publish_parse_ref(body, len, "topic-x", &b, &nb, eb, errsz);
    t2 = dr_now_ms();
    ncompared++;
    if (ra != rb || strcmp(ea, eb) != 0 || na != nb || (a == NULL) != (b == NULL)) {
        dump_body(body, len);
        fail_msg("new rc=%d n=%zu err='%s'; reference rc=%d n=%zu err='%s'", ra, na, ea, rb, nb,
                 eb);
    }
    for (size_t i = 0; i < na; i++) {
        const struct dr_qmsg *x = &a[i], *y = &b[i];
        if (x->data_len != y->data_len || (x->data == NULL) != (y->data == NULL) ||
            (x->data && memcmp(x->data, y->data, x->data_len + 1) != 0)) {
            dump_body(body, len);
            fail_msg("row %zu data differs (%zu vs %zu bytes)", i, x->data_len, y->data_len);
        }
        same_str("attrs_json", i, x->attrs_json, y->attrs_json);
        same_str("ordering_key", i, x->ordering_key, y->ordering_key);
        same_str("topic", i, x->topic, y->topic);
        assert_int_equal(x->fresh_id, y->fresh_id);
        if (x->fresh_id) {
            assert_true(strcmp(x->message_id, y->message_id) < 0 ||
                        strlen(x->message_id) < strlen(y->message_id));
        } else {
            assert_memory_equal(x->message_id, "ik-", 3);
            same_str("message_id", i, x->message_id, y->message_id);
        }
        assert_true(x->publish_time_ms >= t0 && x->publish_time_ms <= t1);
        assert_true(y->publish_time_ms >= t1 && y->publish_time_ms <= t2);
        assert_int_equal(x->id, 0);
        assert_null(x->parsed);
        assert_null(x->last_error);
    }
    if (ra == DR_OK) {
        /* what is accepted keeps the new rules too */
        assert_true(dr_utf8_valid(body, len));
        assert_int_equal(first_dup_key(body, len), -1);
        nok++;
    }
    dr_qmsgs_free(a, na);
    dr_qmsgs_free(b, nb);
    return ra;
}

static int compare(const char *body, size_t len)
{
    return compare_sz(body, len, 512);
}

/* Compares, and checks the result against what Pub/Sub documents for the case. */
static void expect_n(const char *body, size_t len, int want_rc, const char *want_err)
{
    struct dr_qmsg *rows = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc;

    compare(body, len);
    rc = dr_publish_parse(body, len, "topic-x", &rows, &n, err, sizeof(err));
    if (rc != want_rc || (want_err && strcmp(err, want_err) != 0)) {
        dump_body(body, len);
        fail_msg("rc=%d err='%s', want rc=%d err='%s'", rc, err, want_rc, want_err ? want_err : "");
    }
    dr_qmsgs_free(rows, n);
}

#define EXPECT(lit, rc, msg) expect_n(lit, sizeof(lit) - 1, rc, msg)

static const char *NO_ARRAY = "The request must contain a \"messages\" array.";

static void json_syntax(void **state)
{
    (void)state;
    EXPECT("", DR_EINVAL, BAD_JSON);
    EXPECT("   ", DR_EINVAL, BAD_JSON);
    EXPECT("{", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}]", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}]}", DR_OK, NULL);
    /* cJSON ignores whatever follows the top-level value */
    /* nothing but whitespace may follow the body (the reference ignored what did) */
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}]}garbage{[", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}]}{}", DR_EINVAL, BAD_JSON);
    EXPECT("[]x", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}]} \r\n\t ", DR_OK, NULL);
    EXPECT("[] ", DR_EINVAL, "The request must contain a \"messages\" array.");
    EXPECT("\xEF\xBB\xBF{\"messages\":[{\"data\":\"aGk=\"}]}", DR_OK, NULL);
    EXPECT("\xEF\xBB\xBF{}", DR_EINVAL, NO_ARRAY);
    EXPECT("\xEF\xBB\xBF{", DR_EINVAL, BAD_JSON);
    EXPECT(" {\n\"messages\"\t:\r[ {\"data\" : \"aGk=\" } ] } ", DR_OK, NULL);
    /* strict RFC 8259, where cJSON (the reference) was lenient */
    EXPECT("\x01\x1f {\"messages\":[{\"data\":\"aGk=\"}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":\"a\tb\"}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":01}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":-.5}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":1.}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":1e}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":\"\\u12G4\"}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":[-0,0.5,-1.25E-3,1e+2,10]}", DR_OK, NULL);
    EXPECT("[]", DR_EINVAL, NO_ARRAY);
    EXPECT("[{\"messages\":[]}]", DR_EINVAL, NO_ARRAY);
    EXPECT("\"messages\"", DR_EINVAL, NO_ARRAY);
    EXPECT("123", DR_EINVAL, NO_ARRAY);
    EXPECT("-", DR_EINVAL, BAD_JSON);
    EXPECT("null", DR_EINVAL, NO_ARRAY);
    EXPECT("nul", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"},]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":[1e5,-0.5E-3,true,false,null]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":1.2.3}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":0x10}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":nulll}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\"x\":"
           "12345678901234567890123456789012345678901234567890123456789012345678901234567890}",
           DR_OK, NULL);
    /* strings: raw DEL and multi-byte characters pass, escapes follow cJSON; a body that is not
     * UTF-8 is refused whatever holds the bad bytes */
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\x7f\xc3\xa9\xf0\x9f\x98\x80\"}]}", DR_OK,
           NULL);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\x7f\xff\xc3\"}]}", DR_EINVAL,
           DR_PUBLISH_ERR_UTF8);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\xed\xa0\x80\"}]}", DR_EINVAL,
           DR_PUBLISH_ERR_UTF8);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}]} \xc3", DR_EINVAL, DR_PUBLISH_ERR_UTF8);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\\x\"}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\\u12\"}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\\uZZZZ\"}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\\udc00\"}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\\ud800\"}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\\ud800\\u0041\"}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\\ud83d\\ude00\"}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\\u000\\\\\"}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"\\uAB\\\"X\"}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"abc\\", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\":\"abc", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"x\" \"y\"}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",x:1}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}], \"messages\": 5}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}], \"messages\": [}", DR_EINVAL, BAD_JSON);
    /* invalid JSON anywhere wins over any error about the messages */
    EXPECT("{\"messages\":[{\"data\":1}], \"x\": [}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[], \"x\": tru}", DR_EINVAL, BAD_JSON);
}

static void nesting(void **state)
{
    size_t cap = 4200;
    char *b = malloc(cap);

    (void)state;
    /* cJSON accepts 1000 nested containers and refuses 1001, counting the outer ones */
    for (int depth = 995; depth <= 1002; depth++) {
        for (int mode = 0; mode < 3; mode++) {
            size_t n = 0;
            int inner = depth - 4; /* root, messages, the message, the unknown member */
            n += (size_t)snprintf(b + n, cap - n, "{\"messages\":[{\"data\":\"aGk=\",\"x\":");
            for (int k = 0; k <= inner; k++) {
                b[n++] = mode == 0 ? '[' : (k % 2 ? '[' : '{');
                if (mode != 0 && k % 2 == 0) {
                    n += (size_t)snprintf(b + n, cap - n, "\"k\":");
                }
            }
            if (mode == 2) {
                b[n++] = '1';
            }
            for (int k = inner; k >= 0; k--) {
                b[n++] = mode == 0 ? ']' : (k % 2 ? ']' : '}');
            }
            n += (size_t)snprintf(b + n, cap - n, "}]}");
            compare(b, n);
        }
    }
    /* deep nesting at the top level and inside the attributes */
    for (int depth = 998; depth <= 1001; depth++) {
        memset(b, '[', (size_t)depth);
        memset(b + depth, ']', (size_t)depth);
        assert_int_equal(compare(b, 2 * (size_t)depth), DR_EINVAL);
    }
    free(b);
}

static void message_rules(void **state)
{
    (void)state;
    EXPECT("{}", DR_EINVAL, NO_ARRAY);
    EXPECT("{\"messages\":{}}", DR_EINVAL, NO_ARRAY);
    EXPECT("{\"messages\":null}", DR_EINVAL, NO_ARRAY);
    EXPECT("{\"messages\":\"[]\"}", DR_EINVAL, NO_ARRAY);
    EXPECT("{\"Messages\":[{\"data\":\"aGk=\"}]}", DR_EINVAL, NO_ARRAY);
    /* the first of duplicate keys decides, as cJSON_GetObjectItemCaseSensitive does */
    EXPECT("{\"messages\":5,\"messages\":[{\"data\":\"aGk=\"}]}", DR_EINVAL, NO_ARRAY);
    EXPECT("{\"x\":{\"messages\":[]},\"messages\":[{\"data\":\"aGk=\"}]}", DR_OK, NULL);
    /* keys end at an escaped NUL like C strings */
    EXPECT("{\"messages\\u0000x\":[{\"data\":\"aGk=\"}]}", DR_EINVAL, DR_PUBLISH_ERR_NUL);
    EXPECT("{\"mess\\u0061ges\":[{\"d\\u0061ta\":\"aGk=\"}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[]}", DR_EINVAL, "The request contains no messages.");
    EXPECT("{\"messages\":[ ]}", DR_EINVAL, "The request contains no messages.");
    EXPECT("{\"messages\":[1]}", DR_EINVAL, "messages[0] is not an object.");
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"},[]]}", DR_EINVAL, "messages[1] is not an object.");
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"},null]}", DR_EINVAL, "messages[1] is not an object.");
    EXPECT("{\"messages\":[{}]}", DR_EINVAL,
           "Some messages contain no data and no attribute field (messages[0]).");
    EXPECT("{\"messages\":[{\"data\":null}]}", DR_EINVAL,
           "Some messages contain no data and no attribute field (messages[0]).");
    EXPECT("{\"messages\":[{\"data\":\"\"}]}", DR_EINVAL,
           "Some messages contain no data and no attribute field (messages[0]).");
    EXPECT("{\"messages\":[{\"data\":\"\",\"attributes\":{\"a\":\"\"}}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"attributes\":{}}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"attributes\":null}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"data\":5}]}", DR_EINVAL,
           "Invalid value at 'messages[0].data' (TYPE_BYTES), Base64 decoding failed.");
    EXPECT("{\"messages\":[{\"data\":\"aGk\"}]}", DR_OK, NULL); /* URL-safe: no padding */
    EXPECT("{\"messages\":[{\"data\":\"-_-_\"}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"data\":\"+/-_\"}]}", DR_EINVAL,
           "Invalid value at 'messages[0].data' (TYPE_BYTES), Base64 decoding failed.");
    EXPECT("{\"messages\":[{\"data\":\"aG k=\"}]}", DR_EINVAL,
           "Invalid value at 'messages[0].data' (TYPE_BYTES), Base64 decoding failed.");
    EXPECT("{\"messages\":[{\"data\":\"a\"}]}", DR_EINVAL,
           "Invalid value at 'messages[0].data' (TYPE_BYTES), Base64 decoding failed.");
    EXPECT("{\"messages\":[{\"data\":\"aGk===\"}]}", DR_EINVAL,
           "Invalid value at 'messages[0].data' (TYPE_BYTES), Base64 decoding failed.");
    EXPECT("{\"messages\":[{\"data\":\"a\\/8=\"}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"data\":\"\\u0061Gk=\"}]}", DR_OK, NULL);
    /* a NUL in a string, escaped or raw, is refused: the reference cut the string there */
    EXPECT("{\"messages\":[{\"data\":\"aGk=\\u0000!!\"}]}", DR_EINVAL, DR_PUBLISH_ERR_NUL);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\0!!\"}]}", DR_EINVAL, BAD_JSON); /* raw: a control */
    EXPECT("{\"messages\":[{\"data\":\"\0aGk=\"}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"orderingKey\":\"k\\u0000\"}]}", DR_EINVAL,
           DR_PUBLISH_ERR_NUL);
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"}],\0\"x\":1}", DR_EINVAL, BAD_JSON); /* no space */
    EXPECT("{\"messages\":[{\"data\":null,\"data\":\"aGk=\"}]}", DR_EINVAL,
           "Some messages contain no data and no attribute field (messages[0]).");
    EXPECT("{\"messages\":[{\"data\":\"aGk=\",\"data\":5}]}", DR_OK, NULL);
    /* order of the checks: data, attributes, emptiness, ordering key */
    EXPECT("{\"messages\":[{\"orderingKey\":5,\"attributes\":5,\"data\":5}]}", DR_EINVAL,
           "Invalid value at 'messages[0].data' (TYPE_BYTES), Base64 decoding failed.");
    EXPECT("{\"messages\":[{\"orderingKey\":5,\"attributes\":5}]}", DR_EINVAL,
           "Invalid value at 'messages[0].attributes': expected an object of strings.");
    EXPECT("{\"messages\":[{\"orderingKey\":5,\"attributes\":[]}]}", DR_EINVAL,
           "Invalid value at 'messages[0].attributes': expected an object of strings.");
    EXPECT("{\"messages\":[{\"orderingKey\":5}]}", DR_EINVAL,
           "Some messages contain no data and no attribute field (messages[0]).");
    EXPECT("{\"messages\":[{\"orderingKey\":5,\"data\":\"aGk=\"}]}", DR_EINVAL,
           "messages[0].orderingKey must be a string.");
    EXPECT("{\"messages\":[{\"orderingKey\":null,\"data\":\"aGk=\"}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"orderingKey\":\"\",\"data\":\"aGk=\"}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"orderingKey\":\"k\\n\\u00e9\",\"data\":\"aGk=\"}]}", DR_OK, NULL);
    /* the first failing message decides */
    EXPECT("{\"messages\":[{\"data\":\"aGk=\"},{\"data\":1},{\"attributes\":1}]}", DR_EINVAL,
           "Invalid value at 'messages[1].data' (TYPE_BYTES), Base64 decoding failed.");
}

static void attribute_rules(void **state)
{
    (void)state;
    EXPECT("{\"messages\":[{\"attributes\":{\"a\":1}}]}", DR_EINVAL,
           "Invalid value at 'messages[0].attributes[a]': attribute values must be strings.");
    EXPECT("{\"messages\":[{\"attributes\":{\"a\\u0000b\":null}}]}", DR_EINVAL, DR_PUBLISH_ERR_NUL);
    EXPECT("{\"messages\":[{\"attributes\":{\"\":\"v\"}}]}", DR_ETOOBIG,
           "messages[0]: attribute keys must be 1-256 bytes.");
    EXPECT("{\"messages\":[{\"attributes\":{\"\\u0000\":\"v\"}}]}", DR_EINVAL, DR_PUBLISH_ERR_NUL);
    EXPECT("{\"messages\":[{\"attributes\":{\"googx\":\"v\"}}]}", DR_EINVAL,
           "messages[0]: attribute keys must not start with \"goog\".");
    EXPECT("{\"messages\":[{\"attributes\":{\"goo\":\"v\"}}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"attributes\":{\"goo\\u0000g\":\"v\"}}]}", DR_EINVAL,
           DR_PUBLISH_ERR_NUL);
    EXPECT("{\"messages\":[{\"attributes\":{\"a\":\"x\",\"a\":\"y\"}}]}", DR_EINVAL,
           "Invalid JSON payload received: messages[0].attributes names an attribute key twice.");
    EXPECT("{\"messages\":[{\"attributes\":{\"a\":\"x\",\"b\":\"y\",\"\\u0061\":\"z\"}}]}",
           DR_EINVAL,
           "Invalid JSON payload received: messages[0].attributes names an attribute key twice.");
    EXPECT("{\"messages\":[{\"attributes\":{\"a\":\"x\",\"A\":\"y\",\"a \":\"z\"}}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"attributes\":{\"a\":\"x\"},\"attributes\":5}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"attributes\":{\"q\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f"
           "\\u00e9\\u20ac\\ud83d\\ude00\x7f\xc3\xa9\"}}]}",
           DR_OK, NULL);
    EXPECT("{\"messages\":[{\"attributes\":{\"q\":\"a\x01b\"}}]}", DR_EINVAL, BAD_JSON);
    EXPECT("{\"messages\":[{\"attributes\":{\"\\n\\\"k\":\"v\\u0000tail\"}}]}", DR_EINVAL,
           DR_PUBLISH_ERR_NUL);
    EXPECT("{\"messages\":[{\"attributes\":{\"idempotency_key\":\"abc\"}}]}", DR_OK, NULL);
    EXPECT("{\"messages\":[{\"attributes\":{\"idempotency_key\":\"\",\"idempotency_key\":\"b\"}}]}",
           DR_EINVAL,
           "Invalid JSON payload received: messages[0].attributes names an attribute key twice.");
    EXPECT("{\"messages\":[{\"attributes\":{\"idempotency_key\":\"a\\u0000b\"}}]}", DR_EINVAL,
           DR_PUBLISH_ERR_NUL);
    EXPECT("{\"messages\":[{\"attributes\":{\"idempotency_key\\u0000\":\"ab\"}}]}", DR_EINVAL,
           DR_PUBLISH_ERR_NUL);

    /* lengths: keys 256 / 257, values 1024 / 1025, 100 / 101 attributes, ordering key 1024 */
    struct dr_buf b;
    for (int round = 0; round < 8; round++) {
        dr_buf_init(&b, 1 << 20);
        dr_buf_appends(&b, "{\"messages\":[{\"data\":\"aGk=\",");
        if (round < 2) {
            dr_buf_appends(&b, "\"attributes\":{\"");
            for (int k = 0; k < 256 + round; k++) {
                dr_buf_appendc(&b, 'k');
            }
            dr_buf_appends(&b, "\":\"v\"}");
        } else if (round < 4) {
            dr_buf_appends(&b, "\"attributes\":{\"k\":\"");
            for (int k = 0; k < 1022 + round; k++) {
                dr_buf_appendc(&b, 'v');
            }
            dr_buf_appends(&b, "\"}");
        } else if (round < 6) {
            dr_buf_appends(&b, "\"attributes\":{");
            for (int k = 0; k < 96 + round; k++) {
                dr_buf_printf(&b, "%s\"k%d\":\"v\"", k ? "," : "", k);
            }
            dr_buf_appends(&b, "}");
        } else {
            dr_buf_appends(&b, "\"orderingKey\":\"");
            for (int k = 0; k < 1018 + round; k++) {
                dr_buf_appendc(&b, 'o');
            }
            dr_buf_appends(&b, "\"");
        }
        dr_buf_appends(&b, "}]}");
        assert_int_equal(compare(b.data, b.len), round % 2 ? DR_ETOOBIG : DR_OK);
        dr_buf_cleanup(&b);
    }
    /* a bad attribute is reported before there are too many */
    dr_buf_init(&b, 1 << 20);
    dr_buf_appends(&b, "{\"messages\":[{\"attributes\":{");
    for (int k = 0; k < 150; k++) {
        dr_buf_printf(&b, "%s\"k%d\":\"%s\"", k ? "," : "", k, k == 120 ? "\",\"googk\":\"" : "v");
    }
    dr_buf_appends(&b, "}}]}");
    assert_int_equal(compare(b.data, b.len), DR_EINVAL);
    dr_buf_cleanup(&b);
}

static void message_count(void **state)
{
    struct dr_buf b;

    (void)state;
    for (int count = 999; count <= 1002; count++) {
        for (int bad = 0; bad < 2; bad++) {
            dr_buf_init(&b, 1 << 22);
            dr_buf_appends(&b, "{\"messages\":[");
            for (int k = 0; k < count; k++) {
                /* an early bad message must not hide the count error */
                dr_buf_printf(&b, "%s{\"data\":%s}", k ? "," : "",
                              bad && k == 3 ? "1" : "\"aGk=\"");
            }
            dr_buf_appends(&b, "]}");
            compare(b.data, b.len);
            dr_buf_cleanup(&b);
        }
    }
    EXPECT("{\"messages\":[1,1]}", DR_EINVAL, "messages[0] is not an object.");
}

/* Error messages are cut to errsz exactly as before. */
static void short_error_buffer(void **state)
{
    static const char body[] = "{\"messages\":[{\"attributes\":{\"a\":1}}]}";
    (void)state;
    for (size_t sz = 1; sz < 80; sz++) {
        compare_sz(body, sizeof(body) - 1, sz);
        compare_sz("{", 1, sz);
    }
}

/* ---- generated bodies ---- */

static void ws(struct dr_buf *b)
{
    static const char w[] = " \t\r\n";
    while (chance(15)) {
        dr_buf_appendc(b, w[rnd(sizeof(w) - 1)]);
    }
}

/* A JSON string whose value mixes ASCII, escapes, raw and escaped non-ASCII. */
static void gen_string_after(struct dr_buf *b, const char *prefix, size_t maxlen)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "0",
                                         " ",
                                         "-",
                                         "_",
                                         ".",
                                         "/",
                                         "\\/",
                                         "\\\"",
                                         "\\\\",
                                         "\\n",
                                         "\\t",
                                         "\\b",
                                         "\\f",
                                         "\\r",
                                         "\\u0041",
                                         "\\u00e9",
                                         "\\u20AC",
                                         "\\ud83d\\ude00",
                                         "\\u0001",
                                         "\\u001F",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\x7f",
                                         "~",
                                         "'",
                                         "%",
                                         "\\u0000",
                                         "\\u0002"};
    size_t n = rnd((uint32_t)maxlen + 1);

    dr_buf_appendc(b, '"');
    dr_buf_appends(b, prefix);
    for (size_t i = 0; i < n; i++) {
        uint32_t k = rnd(100) < 70 ? rnd(8) : rnd(DR_ARRAY_LEN(pieces));
        if (k == DR_ARRAY_LEN(pieces) - 2 && !chance(10)) {
            k = 0; /* keep NULs rare */
        }
        dr_buf_appends(b, pieces[k]);
    }
    dr_buf_appendc(b, '"');
}

static void gen_string(struct dr_buf *b, size_t maxlen)
{
    gen_string_after(b, "", maxlen);
}

static void gen_junk_value(struct dr_buf *b, int depth)
{
    switch (rnd(depth > 3 ? 6 : 8)) {
    case 0:
        dr_buf_appends(b, "null");
        break;
    case 1:
        dr_buf_appends(b, chance(50) ? "true" : "false");
        break;
    case 2:
        dr_buf_printf(b, "%d", (int)rnd(100000) - 50000);
        break;
    case 3:
        dr_buf_appends(b, "-1.5e+3");
        break;
    case 4:
    case 5:
        gen_string(b, 6);
        break;
    case 6:
        dr_buf_appendc(b, '[');
        for (uint32_t k = 0, n = rnd(4); k < n; k++) {
            if (k) {
                dr_buf_appendc(b, ',');
            }
            ws(b);
            gen_junk_value(b, depth + 1);
            ws(b);
        }
        dr_buf_appendc(b, ']');
        break;
    default:
        dr_buf_appendc(b, '{');
        for (uint32_t k = 0, n = rnd(4); k < n; k++) {
            if (k) {
                dr_buf_appendc(b, ',');
            }
            ws(b);
            gen_string(b, 4);
            ws(b);
            dr_buf_appendc(b, ':');
            gen_junk_value(b, depth + 1);
        }
        dr_buf_appendc(b, '}');
        break;
    }
}

static void gen_data(struct dr_buf *b, size_t maxbytes)
{
    unsigned char raw[4096];
    size_t n = rnd((uint32_t)maxbytes + 1);
    char *enc;
    size_t elen;
    int url = chance(25);

    for (size_t i = 0; i < n; i++) {
        raw[i] = (unsigned char)rnd(256);
    }
    if (url) {
        dr_base64url_encode(raw, n, &enc, &elen);
    } else {
        dr_base64_encode(raw, n, &enc, &elen);
    }
    dr_buf_appendc(b, '"');
    for (size_t i = 0; i < elen; i++) {
        if (enc[i] == '/' && chance(50)) {
            dr_buf_appends(b, "\\/");
        } else {
            dr_buf_appendc(b, enc[i]);
        }
    }
    dr_buf_appendc(b, '"');
    free(enc);
}

static void gen_member_key(struct dr_buf *b, const char *name)
{
    if (chance(3)) {
        /* the same key spelled with an escape */
        dr_buf_printf(b, "\"\\u%04x%s\"", name[0], name + 1);
    } else {
        dr_buf_printf(b, "\"%s\"", name);
    }
}

static void gen_message(struct dr_buf *b, size_t maxdata)
{
    int order[6];
    int n = 0;

    for (int k = 0; k < 6; k++) {
        if ((k < 3 && chance(90)) || (k >= 3 && chance(15))) {
            order[n++] = k;
        }
    }
    for (int k = n - 1; k > 0; k--) {
        int j = (int)rnd((uint32_t)k + 1), t = order[k];
        order[k] = order[j];
        order[j] = t;
    }
    dr_buf_appendc(b, '{');
    for (int k = 0; k < n; k++) {
        if (k) {
            dr_buf_appendc(b, ',');
        }
        ws(b);
        switch (order[k]) {
        case 0:
        case 3: /* 3: a duplicate */
            gen_member_key(b, "data");
            ws(b);
            dr_buf_appendc(b, ':');
            ws(b);
            if (chance(5)) {
                dr_buf_appends(b, "null");
            } else {
                gen_data(b, maxdata);
            }
            break;
        case 1:
            gen_member_key(b, "attributes");
            dr_buf_appendc(b, ':');
            ws(b);
            if (chance(4)) {
                dr_buf_appends(b, "null");
                break;
            }
            dr_buf_appendc(b, '{');
            for (uint32_t a = 0, na = rnd(6); a < na; a++) {
                if (a) {
                    dr_buf_appendc(b, ',');
                }
                ws(b);
                if (chance(20)) {
                    dr_buf_appends(b, "\"idempotency_key\"");
                } else {
                    /* mostly valid keys: not empty, no "goog" */
                    gen_string_after(b, chance(97) ? "k" : "", 8);
                }
                ws(b);
                dr_buf_appendc(b, ':');
                ws(b);
                gen_string(b, 24);
            }
            dr_buf_appendc(b, '}');
            break;
        case 2:
            gen_member_key(b, "orderingKey");
            dr_buf_appendc(b, ':');
            gen_string(b, 10);
            break;
        default:
            gen_string(b, 6);
            dr_buf_appendc(b, ':');
            gen_junk_value(b, 0);
            break;
        }
        ws(b);
    }
    dr_buf_appendc(b, '}');
}

static void gen_body(struct dr_buf *b, size_t maxmsgs, size_t maxdata)
{
    size_t n = 1 + rnd((uint32_t)maxmsgs);

    ws(b);
    dr_buf_appendc(b, '{');
    if (chance(10)) {
        dr_buf_appends(b, "\"before\":");
        gen_junk_value(b, 0);
        dr_buf_appendc(b, ',');
    }
    dr_buf_appends(b, "\"messages\":");
    ws(b);
    dr_buf_appendc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) {
            dr_buf_appendc(b, ',');
        }
        ws(b);
        gen_message(b, maxdata);
        ws(b);
    }
    dr_buf_appendc(b, ']');
    if (chance(10)) {
        dr_buf_appends(b, ",\"after\":");
        gen_junk_value(b, 0);
    }
    dr_buf_appendc(b, '}');
    ws(b);
}

static void generated_bodies(void **state)
{
    struct dr_buf b;
    size_t ok0 = nok;

    (void)state;
    for (int i = 0; i < 3000; i++) {
        dr_buf_init(&b, 1 << 24);
        gen_body(&b, i % 100 == 0 ? 1000 : 8, i % 10 == 0 ? 3000 : 300);
        compare(b.data, b.len);
        dr_buf_cleanup(&b);
    }
    print_message("%zu of 3000 generated bodies were accepted\n", nok - ok0);
    assert_true(nok - ok0 > 1000); /* the generator mostly makes valid bodies */
}

static void mutated_bodies(void **state)
{
    static const char inserts[] = "\"[]{}\\,:0-e./u \x01";
    struct dr_buf b;
    size_t ok0 = nok, n0 = ncompared;

    (void)state;
    for (int i = 0; i < 30000; i++) {
        char *s;
        size_t len, cap;

        dr_buf_init(&b, 1 << 22);
        gen_body(&b, 4, 40);
        cap = b.len * 2 + 16;
        s = malloc(cap);
        memcpy(s, b.data, b.len);
        len = b.len;
        for (uint32_t m = 0, nm = 1 + rnd(3); m < nm; m++) {
            size_t at = len ? rnd((uint32_t)len) : 0;
            switch (rnd(5)) {
            case 0: /* flip bits of one byte */
                if (len) {
                    s[at] = (char)(s[at] ^ (1 << rnd(8)));
                }
                break;
            case 1: /* truncate */
                len = at;
                break;
            case 2: /* insert a structural byte */
                if (len + 1 < cap) {
                    memmove(s + at + 1, s + at, len - at);
                    s[at] = inserts[rnd(sizeof(inserts) - 1)];
                    len++;
                }
                break;
            case 3: /* delete a byte */
                if (len) {
                    memmove(s + at, s + at + 1, len - at - 1);
                    len--;
                }
                break;
            default: /* a random byte */
                if (len) {
                    s[at] = (char)rnd(256);
                }
                break;
            }
        }
        compare(s, len);
        free(s);
        dr_buf_cleanup(&b);
    }
    print_message("%zu mutated bodies compared, %zu accepted, %zu refused for a NUL, %zu as "
                  "not strict JSON, %zu as not UTF-8, %zu for a repeated attribute key\n",
                  ncompared - n0, nok - ok0, nnul, nstrict, nutf8, ndup);
    assert_true(nok - ok0 > 100);
}

int main(void)
{
    const char *seed = getenv("DR_TEST_SEED");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_syntax),      cmocka_unit_test(nesting),
        cmocka_unit_test(message_rules),    cmocka_unit_test(attribute_rules),
        cmocka_unit_test(message_count),    cmocka_unit_test(short_error_buffer),
        cmocka_unit_test(generated_bodies), cmocka_unit_test(mutated_bodies),
    };

    rng_state = seed ? strtoull(seed, NULL, 10) : (uint64_t)dr_mono_ns();
    if (!rng_state) {
        rng_state = 1;
    }
    fprintf(stderr, "DR_TEST_SEED=%llu\n", (unsigned long long)rng_state);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
