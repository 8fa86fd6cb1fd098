/*
 * Tests src/processors/shipment/{processor,store}.c: process() against a real store, SQLite in
 * a temporary directory and PostgreSQL at $DR_TEST_PG_URL (fails when unset).
 *   - events become rows; a repeated event is a duplicate; notifications (rooms user:{id} and
 *     shipment:{number}) only when the shipment is new or its status changed; an older event
 *     never moves the status back, nor a late email after delivery;
 *   - validation: invalid_payload, invalid_tracking_number, status wording normalised;
 *   - the carrier status provider (a fake implementing the interface): its events recorded,
 *     and an unavailable provider gives RETRY against breaker carrier_api with nothing stored;
 *   - the carrier emails of tests/data/shipment through the email processor into shipments;
 *   - a store that refuses the events is REJECT store_refused at once, a busy one RETRY.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dr/db.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/msg.h"
#include "dr/processor.h"
#include "dr/shipment_store.h"
#include "dr/store.h"
#include "dr/util.h"
#include "unit/store/backend.h"

extern const struct dr_processor dr_processor_shipment;
extern const struct dr_processor dr_processor_email;
void dr__shipment_set_provider(void *state, struct dr_carrier_provider *p);

#define PFX_PROCESSOR dr_processor_shipment
#include "unit/processors/proc_fixture.h"
#include "unit/processors/store_faults.h"

static void run_type(void **state, const char *type, const char *json, struct dr_result *res)
{
    static int seq;
    char id[32];
    struct dr_msg *m;

    snprintf(id, sizeof(id), "s%d", ++seq);
    m = dr_msg_create(id, "shipment-updates", json, strlen(json), 1772400000000);
    dr_msg_add_attr(m, "type", type);
    dr_msg_finish(m, "shipment_detected", 0);
    dr_result_init(res);
    dr_processor_shipment.process(((struct pfx *)*state)->proc, m, res);
    dr_msg_unref(m);
}

static struct dr_db *DB(void **state)
{
    return dr_store_db(((struct pfx *)*state)->st);
}

/* Notifications in res: count, and the rooms seen (bit 1 user:u1, bit 2 shipment:TN). */
static int notes(const struct dr_result *res, const char *tn, int *rooms, char *status, size_t sz)
{
    char want[128];
    int n = 0;

    *rooms = 0;
    snprintf(want, sizeof(want), "shipment:%s", tn);
    for (size_t i = 0; i < res->nemits; i++) {
        cJSON *j;
        if (strcmp(res->emits[i].topic, "client-notifications") != 0) {
            continue;
        }
        j = dr_json_parse(res->emits[i].data, res->emits[i].len);
        assert_string_equal(dr_json_str(j, "notification_type"), "shipment.updated");
        if (strcmp(dr_json_str(j, "room"), "user:u1") == 0) {
            *rooms |= 1;
        } else if (strcmp(dr_json_str(j, "room"), want) == 0) {
            *rooms |= 2;
        }
        if (status) {
            snprintf(status, sz, "%s", dr_json_str(dr_json_pointer(j, "/data"), "status"));
        }
        cJSON_Delete(j);
        n++;
    }
    return n;
}

static const char *cur_status(void **state, const char *tn)
{
    static const char *const names[] = {"unknown",          "label_created", "in_transit",
                                        "out_for_delivery", "delivered",     "exception",
                                        "returned"};
    char sql[256];

    for (size_t i = 0; i < DR_ARRAY_LEN(names); i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM shipments WHERE tracking_number = '%s' AND status = '%s'",
                 tn, names[i]);
        if (count_rows(DB(state), sql) == 1) {
            return names[i];
        }
    }
    return "none";
}

static int64_t nevents(void **state, const char *tn)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM shipment_events e JOIN shipments s ON s.id = e.shipment_id "
             "WHERE s.tracking_number = '%s'",
             tn);
    return count_rows(DB(state), sql);
}

#define UPS "1Z879E930346834440"

static char *ev(const char *status, const char *time, const char *source)
{
    char *s = dr_xmalloc(1024);

    snprintf(s, 1024,
             "{\"user_id\":\"u1\",\"org_id\":\"o1\",\"tracking_number\":\"1z 879e9 30346834440\","
             "\"status\":\"%s\",\"event_time\":\"%s\",\"source\":\"%s\",\"merchant\":\"Shop\","
             "\"order_id\":\"A-1\",\"email_id\":\"e1\"}",
             status, time, source);
    return s;
}

static void step(void **state, const char *type, const char *status, const char *time,
                 const char *source, int want_notes, const char *want_status)
{
    char *js = ev(status, time, source), st[64] = "";
    struct dr_result res;
    int rooms;

    run_type(state, type, js, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    if (notes(&res, UPS, &rooms, st, sizeof(st)) != want_notes) {
        print_error("%s %s at %s: %d notifications expected\n", type, status, time, want_notes);
        fail();
    }
    if (want_notes) {
        assert_int_equal(rooms, 3);
        assert_string_equal(st, want_status);
    }
    assert_string_equal(cur_status(state, UPS), want_status);
    dr_result_cleanup(&res);
    free(js);
}

static void test_status_lifecycle(void **state)
{
    /* new shipment: stored, both rooms told */
    step(state, "shipment_detected", "in_transit", "2026-03-01T10:00:00Z", "email", 2,
         "in_transit");
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments WHERE user_id = 'u1'"
                                           " AND carrier = 'ups' AND merchant = 'Shop' AND "
                                           "order_id = 'A-1' AND verified = 1"),
                     1);
    /* the same event again: a duplicate, nobody told */
    step(state, "shipment_detected", "in_transit", "2026-03-01T10:00:00Z", "email", 0,
         "in_transit");
    assert_int_equal(nevents(state, UPS), 1);
    /* newer, further: told */
    step(state, "carrier_status", "Out for delivery", "2026-03-02T07:00:00Z", "webhook", 2,
         "out_for_delivery");
    /* older event arriving late: recorded, status kept, nobody told */
    step(state, "carrier_status", "label_created", "2026-02-28T12:00:00Z", "webhook", 0,
         "out_for_delivery");
    assert_int_equal(nevents(state, UPS), 3);
    step(state, "carrier_status", "delivered", "2026-03-02T15:00:00Z", "webhook", 2, "delivered");
    /* a late "shipped" email after the delivery does not move it back */
    step(state, "shipment_detected", "in_transit", "2026-03-02T16:00:00+00:00", "email", 0,
         "delivered");
    assert_int_equal(nevents(state, UPS), 5);
    /* same status, newer time: not a change */
    step(state, "carrier_status", "delivered", "2026-03-02T18:00:00Z", "webhook", 0, "delivered");
}

/* "Not delivered" from a carrier is an exception, not the final delivered: a later event still
 * moves the shipment. */
static void test_not_delivered(void **state)
{
    step(state, "carrier_status", "in_transit", "2026-03-01T10:00:00Z", "webhook", 2, "in_transit");
    step(state, "carrier_status", "Not delivered", "2026-03-02T10:00:00Z", "webhook", 2,
         "exception");
    step(state, "carrier_status", "Delivery Attempted - No Access to Delivery Location",
         "2026-03-02T11:00:00Z", "webhook", 0, "exception");
    step(state, "carrier_status", "On FedEx vehicle for delivery", "2026-03-03T08:00:00Z",
         "webhook", 2, "out_for_delivery");
    step(state, "carrier_status", "Delivered", "2026-03-03T12:00:00Z", "webhook", 2, "delivered");
}

static void expect_reject(void **state, const char *type, const char *json, const char *reason)
{
    struct dr_result res;

    run_type(state, type, json, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, reason);
    assert_true(strlen(res.error) > 0);
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
}

static void test_validation(void **state)
{
    struct dr_result res;
    int rooms;

    expect_reject(state, "shipment_detected", "\"x\"", "invalid_payload");
    expect_reject(state, "shipment_detected", "{\"tracking_number\":\"" UPS "\"}",
                  "invalid_payload");
    expect_reject(state, "shipment_detected", "{\"user_id\":\"u1\"}", "invalid_payload");
    expect_reject(state, "shipment_detected",
                  "{\"user_id\":\"u1\",\"tracking_number\":\"" UPS "\",\"event_time\":\"soon\"}",
                  "invalid_payload");
    expect_reject(state, "shipment_detected",
                  "{\"user_id\":\"u1\",\"tracking_number\":\"1Z<script>\"}",
                  "invalid_tracking_number");
    /* wrong check digit, nobody vouches */
    expect_reject(state, "shipment_detected",
                  "{\"user_id\":\"u1\",\"tracking_number\":\"1Z879E930346834441\"}",
                  "invalid_tracking_number");
    expect_reject(state, "parcel", "{\"user_id\":\"u1\",\"tracking_number\":\"" UPS "\"}",
                  "invalid_payload");
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments"), 0);

    /* the carrier itself: accepted, not verified by check digit but by source */
    run_type(state, "carrier_status",
             "{\"user_id\":\"u1\",\"tracking_number\":\"GLS90346692444\",\"carrier\":\"gls\","
             "\"status\":\"Zugestellt\",\"event_time\":1772400000000,\"source\":\"gls\"}",
             &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(notes(&res, "GLS90346692444", &rooms, NULL, 0), 2);
    dr_result_cleanup(&res);
    assert_string_equal(cur_status(state, "GLS90346692444"), "delivered");
    /* an email that names the carrier of a number without a check digit: accepted, unverified;
     * a status nobody knows is kept as detail and stored as unknown */
    run_type(state, "shipment_detected",
             "{\"user_id\":\"u1\",\"tracking_number\":\"H01HYA0012345678\",\"carrier\":"
             "\"evri\",\"status\":\"blorp\",\"event_time\":\"2026-03-01T10:00:00Z\"}",
             &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    assert_int_equal(count_rows(DB(state),
                                "SELECT COUNT(*) FROM shipments WHERE tracking_number = "
                                "'H01HYA0012345678' AND verified = 0 AND status = 'unknown' AND "
                                "status_detail = 'blorp'"),
                     1);
}

/* Notified text stays UTF-8: a detail longer than the store's copy is cut at a character
 * boundary, not inside "é"; a payload that is not UTF-8 is rejected before anything is stored. */
static void test_text_stays_utf8(void **state)
{
    char detail[300], js[1024];
    struct dr_result res;
    int rooms, seen = 0;

    memset(detail, 'a', 254);
    memcpy(detail + 254, "\xc3\xa9", 3); /* 254 + 2 bytes: "é" straddles byte 255 */
    snprintf(js, sizeof(js),
             "{\"user_id\":\"u1\",\"tracking_number\":\"" UPS "\",\"status\":\"in_transit\","
             "\"status_detail\":\"%s\",\"location\":\"K\xc3\xb6ln\",\"source\":\"ups\"}",
             detail);
    run_type(state, "carrier_status", js, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(notes(&res, UPS, &rooms, NULL, 0), 2);
    for (size_t i = 0; i < res.nemits; i++) {
        cJSON *j;
        const char *d;

        assert_null(dr_json_text_problem(res.emits[i].data, res.emits[i].len));
        j = dr_json_parse(res.emits[i].data, res.emits[i].len);
        d = dr_json_str(dr_json_pointer(j, "/data"), "status_detail");
        assert_non_null(d);
        assert_int_equal(strlen(d), 254);
        assert_string_equal(dr_json_str(dr_json_pointer(j, "/data"), "location"), "K\xc3\xb6ln");
        cJSON_Delete(j);
        seen++;
    }
    assert_int_equal(seen, 2);
    dr_result_cleanup(&res);

    /* Latin-1 "Köln", a lone continuation byte, an escaped NUL: rejected, nothing stored */
    expect_reject(state, "carrier_status",
                  "{\"user_id\":\"u1\",\"tracking_number\":\"1Z5R89390357567127\","
                  "\"status\":\"in_transit\",\"location\":\"K\xf6ln\",\"source\":\"ups\"}",
                  "invalid_payload");
    run_type(state, "carrier_status",
             "{\"user_id\":\"u1\",\"tracking_number\":\"1Z5R89390357567127\","
             "\"status\":\"in_transit\",\"merchant\":\"\x80\"}",
             &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_non_null(strstr(res.error, "UTF-8"));
    dr_result_cleanup(&res);
    expect_reject(state, "shipment_detected",
                  "{\"user_id\":\"u1\",\"tracking_number\":\"1Z5R89390357567127\","
                  "\"merchant\":\"Shop\\u0000evil\"}",
                  "invalid_payload");
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments WHERE tracking_number "
                                           "= '1Z5R89390357567127'"),
                     0);
}

/* A shipment_detected naming a carrier whose check digit the number fails is rejected, whatever
 * the label said; a label still vouches where that carrier has no check digit to fail. */
static void test_named_carrier_refuted(void **state)
{
    static const char *const refuted[][2] = {
        {"1Z879E930346834441", "ups"}, /* UPS, check digit changed */
        {"1Z 879E9 30346834441", "ups"},
        {"MA038501234GB", "royal_mail"}, /* S10 of GB, wrong check digit */
        {"4212345678", "dhl"},           /* DHL Express, mod 7 fails */
        {"000000000000", "fedex"},       /* passes the FedEx sum, but a placeholder */
        {"000000000000", "purolator"},
        {"1Z0000000000000000", "ups"},
    };
    struct dr_result res;
    char js[512];

    for (size_t i = 0; i < DR_ARRAY_LEN(refuted); i++) {
        snprintf(js, sizeof(js),
                 "{\"user_id\":\"u1\",\"tracking_number\":\"%s\",\"carrier\":\"%s\"}",
                 refuted[i][0], refuted[i][1]);
        run_type(state, "shipment_detected", js, &res);
        if (res.outcome != DR_OUTCOME_REJECT || strcmp(res.reason, "invalid_tracking_number") ||
            !strstr(res.error, "check digit") || !strstr(res.error, refuted[i][1])) {
            print_error("%s as %s: outcome %d %s: %s\n", refuted[i][0], refuted[i][1], res.outcome,
                        res.reason, res.error);
            fail();
        }
        assert_int_equal(res.nemits, 0);
        dr_result_cleanup(&res);
    }
    /* the carrier's name in another case or spelling is the same carrier */
    {
        static const char *const spelled[][2] = {{"1Z5R89390357567128", "UPS"},
                                                 {"1Z5R89390357567128", " Ups "},
                                                 {"MA038501234GB", "Royal Mail"}};
        for (size_t i = 0; i < DR_ARRAY_LEN(spelled); i++) {
            snprintf(js, sizeof(js),
                     "{\"user_id\":\"u1\",\"tracking_number\":\"%s\",\"carrier\":\"%s\"}",
                     spelled[i][0], spelled[i][1]);
            run_type(state, "shipment_detected", js, &res);
            if (res.outcome != DR_OUTCOME_REJECT || strcmp(res.reason, "invalid_tracking_number") ||
                !strstr(res.error, "check digit")) {
                print_error("%s as %s: outcome %d %s: %s\n", spelled[i][0], spelled[i][1],
                            res.outcome, res.reason, res.error);
                fail();
            }
            dr_result_cleanup(&res);
        }
    }
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments"), 0);

    /* the carrier itself reporting the number: its word stands */
    run_type(state, "carrier_status",
             "{\"user_id\":\"u1\",\"tracking_number\":\"1Z879E930346834441\",\"carrier\":"
             "\"ups\",\"status\":\"in_transit\",\"source\":\"ups\"}",
             &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    /* Amazon's short TBA numbers and carriers without check digits: vouched for by the label */
    run_type(state, "shipment_detected",
             "{\"user_id\":\"u1\",\"tracking_number\":\"TBA12345678901\",\"carrier\":"
             "\"amazon\"}",
             &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    run_type(state, "shipment_detected",
             "{\"user_id\":\"u1\",\"tracking_number\":\"90346692444\",\"carrier\":\"gls\"}", &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    /* a valid number under its carrier's name, stored under the carrier's code */
    run_type(state, "shipment_detected",
             "{\"user_id\":\"u1\",\"tracking_number\":\"" UPS "\",\"carrier\":\"UPS\"}", &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    /* a carrier the module does not know: kept, in lower case */
    run_type(state, "carrier_status",
             "{\"user_id\":\"u1\",\"tracking_number\":\"AF123456789\",\"carrier\":"
             "\"Acme Freight\",\"status\":\"in_transit\"}",
             &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments WHERE tracking_number "
                                           "= 'AF123456789' AND carrier = 'acme_freight'"),
                     1);
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments WHERE verified = 0 AND "
                                           "tracking_number IN ('TBA12345678901', '90346692444')"),
                     2);
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments WHERE carrier = 'ups'"),
                     2);
}

/* LaserShip's 1LS7 numbers end in a piece suffix "-1": the extractor reports them with it, and
 * the number is stored as it validates, not with the dash dropped (which no format knows). */
static void test_lasership_piece_suffix(void **state)
{
    struct dr_result res;

    run_type(state, "shipment_detected",
             "{\"user_id\":\"u1\",\"tracking_number\":\"1LS7119013618127-1\",\"carrier\":"
             "\"lasership\"}",
             &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    /* found without a carrier too: the number alone says LaserShip */
    run_type(state, "shipment_detected",
             "{\"user_id\":\"u2\",\"tracking_number\":\"1ls7119013618127-1\"}", &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments WHERE tracking_number = "
                                           "'1LS7119013618127-1' AND verified = 1 AND carrier = "
                                           "'lasership'"),
                     2);
    /* other numbers still lose their dashes and blanks */
    run_type(state, "shipment_detected",
             "{\"user_id\":\"u3\",\"tracking_number\":\"1z-879E9 3034-6834440\"}", &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments WHERE user_id = 'u3' "
                                           "AND tracking_number = '" UPS "' AND verified = 1"),
                     1);
}

/* ---- a fake provider ---- */

struct fake_provider {
    struct dr_carrier_provider base;
    int answer; /* DR_OK, DR_EUNAVAIL, DR_ENOTFOUND */
    int calls;
};

static int fake_fetch(struct dr_carrier_provider *p, const char *tn, const char *carrier,
                      struct dr_carrier_status *out, char *why, size_t whysz)
{
    struct fake_provider *f = (struct fake_provider *)p;

    f->calls++;
    memset(out, 0, sizeof(*out));
    snprintf(why, whysz, "fake answer %d", f->answer);
    if (f->answer == DR_EUNAVAIL) {
        out->retry_after_ms = 1500;
    }
    if (f->answer != DR_OK) {
        return f->answer;
    }
    out->status = DR_SHIP_OUT_FOR_DELIVERY;
    out->events = dr_xcalloc(2, sizeof(*out->events));
    out->n_events = 2;
    out->events[0].status = DR_SHIP_IN_TRANSIT;
    out->events[0].time_ms = 1772300000000;
    out->events[0].location = dr_xstrdup("Louisville, KY");
    out->events[1].status = DR_SHIP_OUT_FOR_DELIVERY;
    out->events[1].time_ms = 1772500000000;
    out->events[1].detail = dr_xstrdup("On the vehicle");
    return DR_OK;
}

static void fake_destroy(struct dr_carrier_provider *p)
{
    (void)p; /* on the test's stack */
}

static void test_provider(void **state)
{
    struct pfx *p = *state;
    struct fake_provider f = {{"fake", fake_fetch, fake_destroy}, DR_EUNAVAIL, 0};
    char *js = ev("in_transit", "2026-03-01T10:00:00Z", "email");
    struct dr_result res;
    int rooms;

    dr__shipment_set_provider(p->proc, &f.base);
    run_type(state, "shipment_detected", js, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_RETRY);
    assert_string_equal(res.downstream, "carrier_api");
    assert_int_equal(res.retry_after_ms, 1500);
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments"), 0);

    f.answer = DR_OK;
    run_type(state, "shipment_detected", js, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(notes(&res, UPS, &rooms, NULL, 0), 2);
    dr_result_cleanup(&res);
    assert_int_equal(nevents(state, UPS), 3);
    assert_string_equal(cur_status(state, UPS), "out_for_delivery");
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipment_events WHERE source = "
                                           "'carrier_api' AND location = 'Louisville, KY'"),
                     1);
    /* webhooks are the carrier already: the provider is not asked */
    run_type(state, "carrier_status", js, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    assert_int_equal(f.calls, 2);
    /* a number the provider does not know: the email's status stands */
    f.answer = DR_ENOTFOUND;
    free(js);
    js = ev("delivered", "2026-03-03T10:00:00Z", "email");
    run_type(state, "shipment_detected", js, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    assert_string_equal(cur_status(state, UPS), "delivered");
    dr__shipment_set_provider(p->proc, NULL);
    free(js);
}

/* The carrier emails through the email processor, then their emits through this one: every
 * forwarded number is accepted. Upstream redacted some of their numbers into ones whose check
 * digit fails the carrier's rule (refuted below): the email processor does not forward those, so
 * they are neither stored nor rejected here. */
static void test_emails_to_shipments(void **state)
{
    struct pfx *p = *state;
    static const char *const files[] = {"dhl_out_for_delivery", "fedex_out_for_delivery",
                                        "gls_delivered",        "royal_mail_uk_delivered",
                                        "ups_out_for_delivery", "usps_out_for_delivery"};
    static const char *const carriers[] = {"dhl", "fedex", "gls", "royal_mail", "ups", "usps"};
    static const char *const statuses[] = {"out_for_delivery", "out_for_delivery",
                                           "delivered",        "delivered",
                                           "out_for_delivery", "out_for_delivery"};
    static const char *const refuted[] = {"4212345678", "MA038501234GB", "1Z2345YY0678901234"};
    struct dr_proc_env env = {.store = p->st, .data_dir = "/tmp"};
    char err[256], path[1024], sql[512];
    void *email = NULL;
    int64_t total = 0;

    assert_int_equal(dr_processor_email.init(&env, &email, err, sizeof(err)), 0);
    for (size_t i = 0; i < DR_ARRAY_LEN(files); i++) {
        FILE *f;
        char *raw, *b64 = NULL, *pl;
        long n;
        size_t blen;
        struct dr_msg *m;
        struct dr_result res;
        int shipments = 0;

        snprintf(path, sizeof(path), "%s/shipment/mail_and_packages/%s.eml", getenv("DR_TEST_DATA"),
                 files[i]);
        f = fopen(path, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        raw = dr_xmalloc((size_t)n);
        assert_int_equal(fread(raw, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        assert_int_equal(dr_base64url_encode(raw, (size_t)n, &b64, &blen), DR_OK);
        pl = dr_xmalloc(blen + 256);
        snprintf(pl, blen + 256, "{\"user_id\":\"u9\",\"email_id\":\"%s\",\"raw\":\"%s\"}",
                 files[i], b64);
        m = dr_msg_create(files[i], "email-backfill", pl, strlen(pl), 1772400000000);
        dr_msg_finish(m, "email", 0);
        dr_result_init(&res);
        dr_processor_email.process(email, m, &res);
        dr_msg_unref(m);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        for (size_t k = 0; k < res.nemits; k++) {
            struct dr_result r2;
            char *data;
            if (strcmp(res.emits[k].topic, "shipment-updates") != 0) {
                continue;
            }
            data = dr_xstrndup(res.emits[k].data, res.emits[k].len);
            {
                cJSON *j = dr_json_parse(res.emits[k].data, res.emits[k].len);
                for (size_t q = 0; q < DR_ARRAY_LEN(refuted); q++) {
                    if (strcmp(dr_json_str(j, "tracking_number"), refuted[q]) == 0) {
                        print_error("%s: %s forwarded\n", files[i], refuted[q]);
                        fail();
                    }
                }
                cJSON_Delete(j);
            }
            run_type(state, "shipment_detected", data, &r2);
            if (r2.outcome != DR_OUTCOME_OK) {
                print_error("%s: %s: %s\n", files[i], r2.reason, r2.error);
                fail();
            }
            shipments++;
            dr_result_cleanup(&r2);
            free(data);
        }
        snprintf(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM shipments WHERE user_id = 'u9' AND carrier = '%s' AND "
                 "status = '%s'",
                 carriers[i], statuses[i]);
        if (count_rows(DB(state), sql) != shipments) {
            print_error("%s: %d shipments expected as %s/%s\n", files[i], shipments, carriers[i],
                        statuses[i]);
            fail();
        }
        total += shipments;
        dr_result_cleanup(&res);
        free(pl);
        free(b64);
        free(raw);
    }
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments WHERE user_id = 'u9'"),
                     total);
    assert_true(total >= 4); /* dhl, fedex, gls, usps */
    dr_processor_email.destroy(email);
}

/* Two workers recording the same number at once. On PostgreSQL a transaction stands in for
 * the first worker: it creates the shipment (in transit) but has not committed when the second
 * one starts recording the same event. The second must wait for it and see its result: the
 * shipment is not new to it and its status did not change, so nothing is notified twice. On
 * SQLite the single writer serializes them anyway. */
struct rec_arg {
    struct dr_store *st;
    struct dr_shipment_event ev;
    struct dr_shipment_change ch;
    int err;
};

static void *record_thread(void *arg)
{
    struct rec_arg *a = arg;

    a->err = dr_shipment_store_record(a->st, &a->ev, 1, &a->ch);
    return NULL;
}

static void test_concurrent_create(void **state)
{
    struct pfx *p = *state;
    struct rec_arg a = {.st = p->st,
                        .ev = {.user_id = "u1",
                               .tracking_number = "TNRACE1",
                               .status = DR_SHIP_IN_TRANSIT,
                               .source = "email",
                               .event_ms = 1000}};
    struct dr_db_tx *tx = NULL;
    pthread_t th;

    if (dr_db_engine(DB(state)) != DR_DB_POSTGRES) {
        skip();
    }
    assert_int_equal(dr_db_begin(DB(state), &tx), DR_OK);
    assert_int_equal(
        dr_db_tx_exec(tx,
                      "INSERT INTO shipments (user_id, tracking_number, status, last_event_at,"
                      " created_at, updated_at) VALUES ('u1', 'TNRACE1', 'in_transit', 1000, 1, 1)",
                      NULL, 0, NULL, NULL, NULL),
        DR_OK);
    assert_int_equal(
        dr_db_tx_exec(tx,
                      "INSERT INTO shipment_events (shipment_id, status, event_at, source,"
                      " created_at) SELECT id, 'in_transit', 1000, 'email', 1 FROM shipments"
                      " WHERE tracking_number = 'TNRACE1'",
                      NULL, 0, NULL, NULL, NULL),
        DR_OK);
    assert_int_equal(pthread_create(&th, NULL, record_thread, &a), 0);
    /* until the second worker waits on the first one's row lock (a state, not a delay) */
    while (count_rows(DB(state), "SELECT COUNT(*) FROM pg_stat_activity WHERE datname ="
                                 " current_database() AND wait_event_type = 'Lock'") == 0) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    assert_int_equal(dr_db_commit(tx), DR_OK);
    pthread_join(th, NULL);
    assert_int_equal(a.err, DR_OK);
    assert_int_equal(a.ch.created, 0);
    assert_int_equal(a.ch.before, DR_SHIP_IN_TRANSIT);
    assert_int_equal(a.ch.after, DR_SHIP_IN_TRANSIT);
    assert_int_equal(a.ch.duplicates, 1);
    assert_int_equal(nevents(state, "TNRACE1"), 1);
}

/* The store refuses the events for good (a trigger that raises on shipment_events): the message
 * is rejected on its first attempt with nothing stored, not even the shipment row its
 * transaction created, and nothing notified. Once the trigger is gone it is recorded. */
static void test_refused_write_rejected(void **state)
{
    char *js = ev("in_transit", "2026-03-01T10:00:00Z", "email");
    struct dr_result res;
    int rooms;

    pfx_refuse(state, "shipment_events");
    run_type(state, "shipment_detected", js, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "store_refused");
    assert_non_null(strstr(res.error, "recording the shipment"));
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM shipments"), 0);

    pfx_allow(state, "shipment_events");
    run_type(state, "shipment_detected", js, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(notes(&res, UPS, &rooms, NULL, 0), 2);
    dr_result_cleanup(&res);
    assert_int_equal(nevents(state, UPS), 1);
    assert_string_equal(cur_status(state, UPS), "in_transit");
    free(js);
}

/* A busy store (another connection holds SQLite's write lock) is retried, not rejected. */
static void test_locked_store_retried(void **state)
{
    char *js = ev("in_transit", "2026-03-01T10:00:00Z", "email");
    struct dr_db_tx *tx = NULL;
    struct dr_db *other = pfx_lock(state, &tx);
    struct dr_result res;

    run_type(state, "shipment_detected", js, &res);
    pfx_unlock(other, tx);
    assert_int_equal(res.outcome, DR_OUTCOME_RETRY);
    assert_string_equal(res.reason, "store_error");
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    free(js);
}

#define TESTS(X)                                                                                   \
    X(test_status_lifecycle)                                                                       \
    X(test_not_delivered)                                                                          \
    X(test_text_stays_utf8)                                                                        \
    X(test_validation)                                                                             \
    X(test_named_carrier_refuted)                                                                  \
    X(test_lasership_piece_suffix)                                                                 \
    X(test_provider)                                                                               \
    X(test_emails_to_shipments)                                                                    \
    X(test_concurrent_create)                                                                      \
    X(test_refused_write_rejected)

int main(void)
{
    const struct CMUnitTest tests[] = {TESTS(ON_SQLITE) ON_SQLITE(test_locked_store_retried)
                                           TESTS(ON_PG)};

    return cmocka_run_group_tests(tests, NULL, NULL);
}
