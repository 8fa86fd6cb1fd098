/*
 * Tests src/processors/email/index.c: the index operation written as JSON text is byte for byte
 * what the email processor emitted before through cJSON and dr_index_emit() (kept here as the
 * reference), over every email of tests/data/email and the carrier mails, cut and damaged
 * copies of them, payloads with hostile fields (quotes, control bytes, NUL-cut text, long ids,
 * odd labels) and every classification the writer distinguishes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "unit/processors/corpus.h"
#include "dr/email.h"
#include "dr/err.h"
#include "dr/index.h"
#include "dr/json.h"
#include "dr/processor.h"
#include "dr/util.h"
#include "processors/email/classify.h"
#include "processors/email/email_int.h"

/* ---- the reference: the index operation as the processor built it with cJSON ---------- */

static size_t ref_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max) {
        return len;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    return max;
}

static void ref_add_cut(cJSON *o, const char *key, const char *s, size_t len, size_t max)
{
    char *t = dr_xstrndup(s, ref_utf8_cut(s, len, max));

    cJSON_AddStringToObject(o, key, t);
    free(t);
}

static void ref_add_snippet(cJSON *o, const char *text)
{
    char buf[200 * 4 + 1];
    size_t n = 0, chars = 0;
    int space = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            space = n > 0;
            continue;
        }
        if ((*p & 0xC0) != 0x80) {
            if (chars + space >= 200 || n + space + 4 >= sizeof(buf)) {
                break;
            }
            if (space) {
                buf[n++] = ' ';
                chars++;
                space = 0;
            }
            chars++;
        } else if (n + 1 >= sizeof(buf)) {
            break;
        }
        buf[n++] = (char)*p;
    }
    buf[n] = '\0';
    cJSON_AddStringToObject(o, "snippet", buf);
}

static void ref_add_addrs(cJSON *o, const char *key, const struct dr_email_addr_list *l)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);

    for (size_t i = 0; i < l->n && i < 200; i++) {
        if (l->v[i].address) {
            cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i].address));
        }
    }
}

static void ref_add_opt(cJSON *o, const char *key, const char *v)
{
    if (v && *v) {
        cJSON_AddStringToObject(o, key, v);
    }
}

/* The emitted data of the reference index operation (caller frees), its docid in docid. */
static char *ref_index_op(const struct dr_email *em, const struct dr_email_class *cls,
                          const cJSON *pl, const char *event_time, size_t text_bytes,
                          char docid[DR_INDEX_DOCID_MAX + 1])
{
    cJSON *f = cJSON_CreateObject(), *labels, *tns, *op;
    const char *text = em->text ? em->text : em->html_text;
    size_t tlen = em->text ? em->text_len : em->html_text_len;
    const char *user_id = dr_json_str(pl, "user_id"), *email_id = dr_json_str(pl, "email_id");
    const cJSON *v;
    char *s;

    cJSON_AddStringToObject(f, "user_id", user_id);
    ref_add_opt(f, "org_id", dr_json_str(pl, "org_id"));
    cJSON_AddStringToObject(f, "email_id", email_id);
    ref_add_opt(f, "thread_id", dr_json_str(pl, "thread_id"));
    ref_add_opt(f, "account", dr_json_str(pl, "account"));
    ref_add_opt(f, "provider", dr_json_str(pl, "provider"));
    ref_add_opt(f, "message_id", em->message_id);
    ref_add_opt(f, "subject", em->subject);
    ref_add_opt(f, "from", em->from.address);
    ref_add_opt(f, "from_name", em->from.name);
    ref_add_addrs(f, "to", &em->to);
    ref_add_addrs(f, "cc", &em->cc);
    cJSON_AddStringToObject(f, "date", event_time);
    if (em->has_date) {
        cJSON_AddNumberToObject(f, "date_ms", (double)em->date_ms);
    }
    if (text) {
        ref_add_snippet(f, text);
        ref_add_cut(f, "text", text, tlen, text_bytes);
    }
    cJSON_AddBoolToObject(f, "has_attachments", em->n_attachments > 0);
    cJSON_AddStringToObject(f, "classification", cls->primary);
    labels = cJSON_AddArrayToObject(f, "labels");
    if (cls->kinds & DR_EMAIL_KIND_SHIPMENT) {
        cJSON_AddItemToArray(labels, cJSON_CreateString("shipment"));
    }
    if (cls->kinds & DR_EMAIL_KIND_POLL_REPLY) {
        cJSON_AddItemToArray(labels, cJSON_CreateString("poll_reply"));
        cJSON_AddStringToObject(f, "poll_id", cls->poll_id);
    }
    if (cls->kinds & DR_EMAIL_KIND_CALENDAR) {
        cJSON_AddItemToArray(labels, cJSON_CreateString("calendar"));
    }
    v = cJSON_GetObjectItemCaseSensitive(pl, "labels");
    if (cJSON_IsArray(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            if (cJSON_IsString(it) && strlen(it->valuestring) <= 256 &&
                cJSON_GetArraySize(labels) < 100) {
                cJSON_AddItemToArray(labels, cJSON_CreateString(it->valuestring));
            }
        }
    }
    if (cls->n_accepted) {
        tns = cJSON_AddArrayToObject(f, "tracking_numbers");
        for (size_t i = 0; i < cls->n_accepted; i++) {
            cJSON_AddItemToArray(
                tns, cJSON_CreateString(dr_json_str(cls->accepted[i], "tracking_number")));
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(cls->shipment, "order_ids");
    if ((cls->kinds & DR_EMAIL_KIND_SHIPMENT) && cJSON_GetArraySize(v) > 0) {
        cJSON_AddItemToObject(f, "order_ids", cJSON_Duplicate(v, 1));
    }

    /* dr_index_emit() */
    op = cJSON_CreateObject();
    assert_int_equal(dr_index_docid(docid, user_id, email_id), DR_OK);
    cJSON_AddStringToObject(op, "operation", "put");
    cJSON_AddStringToObject(op, "doctype", "email");
    cJSON_AddStringToObject(op, "docid", docid);
    cJSON_AddStringToObject(op, "user_id", user_id ? user_id : "");
    cJSON_AddItemToObject(op, "fields", cJSON_Duplicate(f, 1));
    s = dr_json_print(op);
    cJSON_Delete(op);
    cJSON_Delete(f);
    return s;
}

/* ---- comparing ------------------------------------------------------------------------ */

static size_t compared;

static void same(const struct dr_email *em, const struct dr_email_class *cls, const cJSON *pl,
                 const char *event_time, size_t text_bytes, const char *what)
{
    char want_id[DR_INDEX_DOCID_MAX + 1], got_id[DR__EMAIL_DOCID_MAX];
    char *want = ref_index_op(em, cls, pl, event_time, text_bytes, want_id);
    struct dr_buf b;

    dr_buf_init(&b, DR__EMAIL_INDEX_OP_MAX);
    assert_int_equal(dr__email_index_op(em, cls, pl, event_time, text_bytes, &b, got_id), DR_OK);
    if (strcmp(want, b.data) != 0 || strlen(b.data) != b.len || strcmp(want_id, got_id) != 0) {
        size_t k = 0;
        while (want[k] && want[k] == b.data[k]) {
            k++;
        }
        fail_msg("%s: index operation differs at byte %zu:\n want ...%.80s\n got  ...%.80s", what,
                 k, want + (k > 20 ? k - 20 : 0), b.data + (k > 20 ? k - 20 : 0));
    }
    compared++;
    dr_buf_cleanup(&b);
    free(want);
}

static const char *const payloads[] = {
    "{\"user_id\":\"u1\",\"email_id\":\"e1\"}",
    "{\"user_id\":\"u\\\"1\\\\\",\"org_id\":\"o\\n1\",\"email_id\":\"e\\u0001\\t1\","
    "\"thread_id\":\"t1\",\"account\":\"me@example.com\",\"provider\":\"gmail\","
    "\"labels\":[\"INBOX\",7,null,\"\",\"caf\\u00e9 "
    "\\\"x\\\"\",[\"nested\"],{\"a\":1},\"\\u001f\"]}",
    "{\"user_id\":\"u1\",\"org_id\":\"\",\"email_id\":\"e1\",\"thread_id\":\"\",\"labels\":{}}",
};

static void compare_all(const struct dr_email *em, const struct dr_email_class *cls,
                        const char *what)
{
    static const size_t text_bytes[] = {0, 1, 7, 200, 32768, 1 << 20};

    for (size_t p = 0; p < DR_ARRAY_LEN(payloads); p++) {
        cJSON *pl = cJSON_Parse(payloads[p]);
        assert_non_null(pl);
        for (size_t t = 0; t < DR_ARRAY_LEN(text_bytes); t++) {
            same(em, cls, pl, t % 2 ? "2026-03-01T09:00:00Z" : "2026-03-01T09:00:00+01:00",
                 text_bytes[t], what);
        }
        cJSON_Delete(pl);
    }
}

/* Parses raw as process() does and compares the index operations of its classification. */
static void check_raw(const char *raw, size_t len, const char *what)
{
    struct dr_email *em = NULL;
    struct dr_email_class cls;

    if (dr__email_parse_ex(raw, len, NULL, DR__EMAIL_NO_HTML_TEXT, &em) != DR_OK) {
        return; /* rejected: no index operation */
    }
    assert_int_equal(dr__email_classify(em, NULL, &cls), DR_OK);
    compare_all(em, &cls, what);
    /* every label and the poll fields, on the same email */
    cls.kinds |= DR_EMAIL_KIND_POLL_REPLY | DR_EMAIL_KIND_CALENDAR;
    snprintf(cls.poll_id, sizeof(cls.poll_id), "p\"1\x02");
    compare_all(em, &cls, what);
    dr__email_class_cleanup(&cls);
    dr_email_destroy(em);
}

static void visit(const char *path, char *raw, size_t len)
{
    corpus_variants(path, raw, len, check_raw);
}

static void corpora(void **state)
{
    const char *root = getenv("DR_TEST_DATA") ? getenv("DR_TEST_DATA") : "tests/data";
    char dir[1024];

    (void)state;
    dr_email_global_init();
    snprintf(dir, sizeof(dir), "%s/email", root);
    assert_true(corpus_each(dir, 1, visit) > 0);
    snprintf(dir, sizeof(dir), "%s/shipment/mail_and_packages", root);
    assert_true(corpus_each(dir, 1, visit) > 0);
    assert_true(compared > 1000);
}

/* The snippet holds at most 200 characters and never ends inside one, wherever a multi-byte
 * character falls. */
static void snippet_keeps_characters_whole(void **state)
{
    struct dr_email em = {0};
    struct dr_email_class cls = {0};
    char text[1200];

    (void)state;
    cls.primary = "other";
    em.from.address = "f@x";
    for (size_t lead = 195; lead <= 202; lead++) {
        for (int width = 2; width <= 4; width++) {
            static const char *const ch[] = {NULL, NULL, "\xc3\xa9", "\xe2\x82\xac",
                                             "\xf0\x9f\x98\x80"};
            size_t n = 0;
            while (n < lead) {
                text[n++] = 'a';
            }
            for (int k = 0; k < 3; k++) {
                memcpy(text + n, ch[width], (size_t)width);
                n += (size_t)width;
            }
            text[n] = '\0';
            em.text = text;
            em.text_len = n;
            struct dr_buf b;
            char id[DR__EMAIL_DOCID_MAX];
            dr_buf_init(&b, 1 << 20);
            assert_int_equal(dr__email_index_op(&em, &cls, NULL, "t", 32768, &b, id), DR_OK);
            cJSON *o = cJSON_Parse(b.data);
            const char *sn = dr_json_str(cJSON_GetObjectItem(o, "fields"), "snippet");
            assert_non_null(sn);
            assert_true(g_utf8_validate(sn, -1, NULL));
            assert_true(g_utf8_strlen(sn, -1) <= 200);
            assert_true(g_utf8_strlen(sn, -1) >= 197);
            cJSON_Delete(o);
            dr_buf_cleanup(&b);
        }
    }
}

/* Fields the corpora do not reach: built by hand. */
static void hostile_fields(void **state)
{
    static const int64_t dates[] = {
        0, -1, 1772352000000, -62135596800000, 9007199254740993, 1234567890123456789,
        /* where cJSON's number format changes */
        999999999999999, 1000000000000000, -999999999999999, -1000000000000000, 2147483647,
        2147483648, -2147483648, -2147483649};
    struct dr_email_addr to[3] = {{NULL, "a@b"}, {"n", NULL}, {"q\"", "x\\y@z"}};
    struct dr_email em = {0};
    struct dr_email_class cls = {0};
    const cJSON *acc[3];
    char text[600], id[600], pl[1400];
    cJSON *labels = cJSON_CreateArray(), *p;

    (void)state;
    /* text with control bytes, a NUL inside and UTF-8 cut anywhere */
    for (size_t i = 0; i < sizeof(text); i++) {
        text[i] = (char)("a \t\n\r\x01\"\\\xc3\xa9\xe2\x82\xac"[i % 14]);
    }
    text[300] = '\0';
    em.text = text;
    em.text_len = sizeof(text) - 1;
    em.subject = "s\x7f\"";
    em.message_id = "";
    em.from.address = "f@x";
    em.to.v = to;
    em.to.n = 3;
    em.n_attachments = 2;
    cls.primary = "shipment";
    cls.kinds = DR_EMAIL_KIND_SHIPMENT;
    cls.shipment =
        cJSON_Parse("{\"order_ids\":[\"1\",2.5,{\"x\":[true,null]}],"
                    "\"shipments\":[{\"tracking_number\":\"1Z\\\"\"},{\"carrier\":\"x\"},"
                    "{\"tracking_number\":\"\"}]}");
    for (int i = 0; i < 3; i++) {
        acc[i] = cJSON_GetArrayItem(cJSON_GetObjectItem(cls.shipment, "shipments"), i);
    }
    cls.accepted = acc;
    cls.n_accepted = 3;
    for (int i = 0; i < 130; i++) {
        char l[300];
        memset(l, 'l', sizeof(l));
        l[i % 2 ? 256 : 257] = '\0';
        cJSON_AddItemToArray(labels, cJSON_CreateString(i % 3 ? "L" : l));
    }
    /* the longest ids the processor takes (512 bytes each): the docid holds them whole */
    memset(id, 'i', sizeof(id));
    id[512] = '\0';
    snprintf(pl, sizeof(pl), "{\"user_id\":\"%s\",\"email_id\":\"%s\"}", id, id);
    p = cJSON_Parse(pl);
    cJSON_AddItemToObject(p, "labels", labels);
    for (size_t d = 0; d < DR_ARRAY_LEN(dates); d++) {
        em.has_date = d > 0;
        em.date_ms = dates[d];
        for (size_t t = 0; t < 610; t += 1 + t / 8) {
            same(&em, &cls, p, "t", t, "hand-built");
        }
    }
    em.text = NULL;
    em.html_text = text + 301;
    em.html_text_len = strlen(text + 301);
    cJSON_Delete(cls.shipment);
    cls.n_accepted = 0;
    cls.shipment = cJSON_Parse("{\"order_ids\":{\"a\":1}}");
    same(&em, &cls, p, "t", 32768, "hand-built");
    cJSON_Delete(cls.shipment);
    cls.shipment = NULL;
    cls.kinds = 0;
    same(&em, &cls, p, "", 32768, "hand-built");
    cJSON_Delete(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corpora),
        cmocka_unit_test(hostile_fields),
        cmocka_unit_test(snippet_keeps_characters_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
