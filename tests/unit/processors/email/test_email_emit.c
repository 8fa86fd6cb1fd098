/*
 * Tests src/processors/email/emit.c: the forwarded messages (shipment_detected,
 * poll_response_email, calendar_event) written as JSON text are byte for byte what the email
 * processor printed before through cJSON (kept here as the reference), over every email of
 * tests/data/email and tests/data/shipment, cut and damaged copies of them, and hand-built emails
 * with hostile fields (quotes, control bytes, NUL-cut text, a reply text over 256 KB cut inside
 * a UTF-8 sequence, NULL fields, too many references).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "unit/processors/corpus.h"
#include "dr/email.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/util.h"
#include "processors/email/classify.h"
#include "processors/email/email_int.h"

/* ---- the reference: the messages as the processor built them with cJSON ---------------- */

#define REF_POLL_BODY_MAX (256 * 1024)

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

static void ref_add_opt(cJSON *o, const char *key, const char *v)
{
    if (v && *v) {
        cJSON_AddStringToObject(o, key, v);
    }
}

static char *ref_print(cJSON *o)
{
    char *s = dr_json_print(o);

    cJSON_Delete(o);
    return s;
}

static char *ref_shipment(const struct dr_email_class *cls, const cJSON *e,
                          const struct dr__email_msg_ids *ids)
{
    const cJSON *sh = cls->shipment;
    const cJSON *orders = cJSON_GetObjectItemCaseSensitive(sh, "order_ids");
    const char *merchant = dr_json_str(sh, "merchant");
    const cJSON *first = cJSON_GetArrayItem(orders, 0);
    const char *order_id = cJSON_IsString(first) ? first->valuestring : NULL;
    const char *tn = dr_json_str(e, "tracking_number");
    const char *status = dr_json_str(e, "status");
    cJSON *o = cJSON_CreateObject();

    if (!status || strcmp(status, "unknown") == 0) {
        status = dr_json_str(sh, "status");
    }
    cJSON_AddStringToObject(o, "type", "shipment_detected");
    cJSON_AddStringToObject(o, "user_id", ids->user_id);
    ref_add_opt(o, "org_id", ids->org_id);
    cJSON_AddStringToObject(o, "tracking_number", tn);
    ref_add_opt(o, "carrier", dr__email_class_carrier(cls, e));
    ref_add_opt(o, "status", status);
    cJSON_AddStringToObject(o, "source", "email");
    cJSON_AddStringToObject(o, "email_id", ids->email_id);
    ref_add_opt(o, "merchant", merchant);
    ref_add_opt(o, "order_id", order_id);
    cJSON_AddStringToObject(o, "event_time", ids->event_time);
    cJSON_AddBoolToObject(o, "validated",
                          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "valid")));
    ref_add_opt(o, "tracking_url", dr_json_str(e, "tracking_url"));
    return ref_print(o);
}

static char *ref_poll(const struct dr_email *em, const struct dr_email_class *cls,
                      const struct dr__email_msg_ids *ids)
{
    const char *body = em->text ? em->text : em->html_text;
    size_t blen = em->text ? em->text_len : em->html_text_len;
    cJSON *o = cJSON_CreateObject(), *from, *refs;

    cJSON_AddStringToObject(o, "type", "poll_response_email");
    cJSON_AddStringToObject(o, "poll_id", cls->poll_id);
    cJSON_AddStringToObject(o, "user_id", ids->user_id);
    ref_add_opt(o, "org_id", ids->org_id);
    cJSON_AddStringToObject(o, "email_id", ids->email_id);
    if (em->from.address) {
        from = cJSON_AddObjectToObject(o, "from");
        ref_add_opt(from, "name", em->from.name);
        cJSON_AddStringToObject(from, "address", em->from.address);
    }
    cJSON_AddStringToObject(o, "date", ids->event_time);
    ref_add_opt(o, "subject", em->subject);
    if (body) {
        ref_add_cut(o, "body_text", body, blen, REF_POLL_BODY_MAX);
    }
    ref_add_opt(o, "message_id", em->message_id);
    ref_add_opt(o, "in_reply_to", em->in_reply_to);
    refs = cJSON_AddArrayToObject(o, "references");
    for (size_t i = 0; i < em->n_references && i < 100; i++) {
        cJSON_AddItemToArray(refs, cJSON_CreateString(em->references[i]));
    }
    if (cls->ics_reply) {
        cJSON_AddStringToObject(o, "ics", cls->ics_reply->ics);
    }
    cJSON_AddStringToObject(o, "source", "email");
    return ref_print(o);
}

static char *ref_calendar(const struct dr_email_calendar *cal, const struct dr__email_msg_ids *ids)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "type", "calendar_event");
    cJSON_AddStringToObject(o, "user_id", ids->user_id);
    ref_add_opt(o, "org_id", ids->org_id);
    cJSON_AddStringToObject(o, "operation", "upsert");
    cJSON_AddStringToObject(o, "ics", cal->ics);
    cJSON_AddStringToObject(o, "source", "email");
    cJSON_AddStringToObject(o, "email_id", ids->email_id);
    return ref_print(o);
}

/* ---- comparing ------------------------------------------------------------------------ */

static size_t compared;

/* want (freed here) against what b holds after err; b then starts with "x" kept before. */
static void same(char *want, struct dr_buf *b, int err, const char *what)
{
    const char *got = b->data + 1;

    assert_int_equal(err, DR_OK);
    assert_true(b->len >= 1 && b->data[0] == 'x');
    if (strcmp(want, got) != 0 || strlen(got) != b->len - 1) {
        size_t k = 0;
        while (want[k] && want[k] == got[k]) {
            k++;
        }
        fail_msg("%s: message differs at byte %zu:\n want ...%.80s\n got  ...%.80s", what, k,
                 want + (k > 20 ? k - 20 : 0), got + (k > 20 ? k - 20 : 0));
    }
    compared++;
    free(want);
    b->len = 1; /* a message is appended after what out holds */
    b->data[1] = '\0';
}

static const struct dr__email_msg_ids id_sets[] = {
    {"u1", "o1", "e1", "2026-03-01T09:00:00Z"},
    {"u\"1\\", NULL, "e\x01\t1", "2026-03-01T09:00:00+01:00"},
    {"u1", "", "e1", ""},
};

static void compare_all(const struct dr_email *em, struct dr_email_class *cls, const char *what)
{
    struct dr_buf b;

    dr_buf_init(&b, DR__EMAIL_MSG_MAX);
    assert_int_equal(dr_buf_append(&b, "x", 1), DR_OK);
    for (size_t s = 0; s < DR_ARRAY_LEN(id_sets); s++) {
        const struct dr__email_msg_ids *ids = &id_sets[s];
        for (size_t i = 0; i < cls->n_accepted; i++) {
            same(ref_shipment(cls, cls->accepted[i], ids), &b,
                 dr__email_shipment_msg(cls, cls->accepted[i], ids, &b), what);
        }
        same(ref_poll(em, cls, ids), &b, dr__email_poll_msg(em, cls, ids, &b), what);
        for (size_t i = 0; i < em->n_calendar; i++) {
            if (em->calendar[i].ics) {
                same(ref_calendar(&em->calendar[i], ids), &b,
                     dr__email_calendar_msg(&em->calendar[i], ids, &b), what);
            }
        }
    }
    dr_buf_cleanup(&b);
}

/* Parses raw as process() does and compares the messages of its classification. */
static void check_raw(const char *raw, size_t len, const char *what)
{
    struct dr_email *em = NULL;
    struct dr_email_class cls;

    if (dr__email_parse_ex(raw, len, NULL, DR__EMAIL_NO_HTML_TEXT, &em) != DR_OK) {
        return;
    }
    assert_int_equal(dr__email_classify(em, NULL, &cls), DR_OK);
    compare_all(em, &cls, what);
    snprintf(cls.poll_id, sizeof(cls.poll_id), "p\"1\x02");
    if (!cls.ics_reply && em->n_calendar) {
        cls.ics_reply = &em->calendar[0];
    }
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
    snprintf(dir, sizeof(dir), "%s/shipment", root);
    assert_true(corpus_each(dir, 1, visit) > 0);
    assert_true(compared > 500);
}

/* Fields the corpora do not reach: built by hand. */
static void hostile_fields(void **state)
{
    static const size_t body_lens[] = {
        0, 1, 300, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 256 * 1024 + 2, 300 * 1024};
    size_t big = 300 * 1024 + 1;
    char *text = dr_xmalloc(big);
    char *refs[130];
    char ics[] = "BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nSUMMARY:\"q\"\\\x01\xc3\xa9\r\nEND:VCALENDAR";
    struct dr_email_calendar cal[2] = {{0}, {0}};
    struct dr_email em = {0};
    struct dr_email_class cls = {0};
    const cJSON *acc[4];

    (void)state;
    /* text with control bytes and UTF-8 sequences that the 256 KB cut lands inside */
    for (size_t i = 0; i < big - 1; i++) {
        text[i] = (char)("a \t\n\r\x01\"\\\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"[i % 18]);
    }
    text[big - 1] = '\0';
    for (size_t i = 0; i < DR_ARRAY_LEN(refs); i++) {
        refs[i] = i % 7 == 3 ? NULL : "<r\"@x>";
    }
    cal[0].ics = ics;
    cal[1].ics = NULL;
    em.subject = "s\x7f\"";
    em.message_id = "";
    em.in_reply_to = "<a@b>";
    em.from.address = "f@x";
    em.from.name = "N \"q\"";
    em.references = refs;
    em.calendar = cal;
    em.n_calendar = 1;
    cls.primary = "shipment";
    cls.kinds = DR_EMAIL_KIND_SHIPMENT | DR_EMAIL_KIND_POLL_REPLY;
    snprintf(cls.poll_id, sizeof(cls.poll_id), "poll\\1");
    cls.shipment = cJSON_Parse(
        "{\"status\":\"in_transit\",\"merchant\":\"M\\\"\",\"carrier\":\"ups\","
        "\"order_ids\":[2.5,\"o1\"],\"tracking_numbers\":[{\"tracking_number\":\"1Z\\\"\","
        "\"status\":\"unknown\",\"valid\":true,\"tracking_url\":\"https://x/?a=1&b\"},"
        "{\"carrier\":\"x\",\"valid\":1},{\"tracking_number\":\"\",\"status\":\"\"},"
        "{\"tracking_number\":\"T\",\"status\":\"delivered\",\"carrier\":\"\"}]}");
    for (int i = 0; i < 4; i++) {
        acc[i] = cJSON_GetArrayItem(cJSON_GetObjectItem(cls.shipment, "tracking_numbers"), i);
    }
    cls.accepted = acc;
    cls.n_accepted = 4;
    for (size_t l = 0; l < DR_ARRAY_LEN(body_lens); l++) {
        em.n_references = l * 20;
        em.text = l % 2 ? text : NULL;
        em.html_text = l % 2 ? NULL : text;
        em.text_len = em.html_text_len = body_lens[l];
        cls.ics_reply = l % 3 == 0 ? NULL : &cal[l % 3 - 1];
        em.from.address = l == 2 ? NULL : "f@x";
        compare_all(&em, &cls, "hand-built");
        text[body_lens[l] / 2] = '\0'; /* a NUL inside the text cuts it */
        compare_all(&em, &cls, "hand-built, NUL inside");
        text[body_lens[l] / 2] = 'a';
    }
    em.n_calendar = 2;
    em.text = em.html_text = NULL;
    cJSON_Delete(cls.shipment);
    cls.shipment = NULL;
    cls.n_accepted = 0;
    compare_all(&em, &cls, "hand-built, no text");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corpora),
        cmocka_unit_test(hostile_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
