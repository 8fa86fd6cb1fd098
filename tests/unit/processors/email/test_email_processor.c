/*
 * Tests src/processors/email/processor.c (and classify.c): process() against a real store, SQLite
 * in a temporary directory and PostgreSQL at $DR_TEST_PG_URL (fails when unset).
 *   - the carrier emails of tests/data/shipment/mail_and_packages (expectations.json), sent as
 *     Gmail would (raw, base64url): shipment_detected emits with the expected carrier, status
 *     and tracking numbers, order ids in the index operation;
 *   - a reply to a stored poll (by In-Reply-To and by +TOKEN): poll_response_email, which the
 *     meeting_poll processor then accepts;
 *   - a calendar invitation: calendar_event with the ics;
 *   - malformed input: REJECT with invalid_payload / invalid_email and a reason;
 *   - email.processed progress: throttled, and the pending counts flushed later.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dr/db.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/msg.h"
#include "dr/processor.h"
#include "dr/shipment.h"
#include "dr/store.h"
#include "dr/util.h"
#include "unit/store/backend.h"

extern const struct dr_processor dr_processor_email;
extern const struct dr_processor dr_processor_meeting_poll;

struct pfx {
    struct fx fx;
    struct dr_store *st;
    void *proc;
    void *poll;
};

static void *start_email(struct dr_store *st, const char *conf_json)
{
    struct dr_proc_env env = {.store = st, .data_dir = "/tmp"};
    cJSON *conf = conf_json ? cJSON_Parse(conf_json) : NULL;
    char err[256] = "";
    void *p = NULL;

    env.config = conf;
    if (dr_processor_email.init(&env, &p, err, sizeof(err)) != 0) {
        fprintf(stderr, "email init: %s\n", err);
        p = NULL;
    }
    cJSON_Delete(conf);
    return p;
}

static int fx_setup(void **state)
{
    struct pfx *p = dr_xcalloc(1, sizeof(*p));
    const struct backend *be = *state;
    struct dr_proc_env env = {0};
    char err[256] = "";

    if (fx_prepare(&p->fx, be) || dr_store_open(p->fx.url, &p->st) != DR_OK) {
        fx_release(&p->fx);
        free(p);
        return -1;
    }
    env.store = p->st;
    env.data_dir = "/tmp";
    p->proc = start_email(p->st, "{\"progress_interval_ms\":3600000}");
    if (!p->proc || dr_processor_meeting_poll.init(&env, &p->poll, err, sizeof(err)) != 0) {
        fprintf(stderr, "init: %s\n", err);
        dr_processor_email.destroy(p->proc);
        dr_store_close(p->st);
        fx_release(&p->fx);
        free(p);
        return -1;
    }
    *state = p;
    return 0;
}

static int fx_teardown(void **state)
{
    struct pfx *p = *state;

    if (p) {
        dr_processor_email.destroy(p->proc);
        dr_processor_meeting_poll.destroy(p->poll);
        dr_store_close(p->st);
        fx_release(&p->fx);
        free(p);
    }
    return 0;
}

static void run_on(const struct dr_processor *proc, void *pstate, const char *topic,
                   const char *type, const char *json, struct dr_result *res)
{
    static int seq;
    char id[32];
    struct dr_msg *m;

    snprintf(id, sizeof(id), "m%d", ++seq);
    m = dr_msg_create(id, topic, json, strlen(json), 1772400000000);
    if (type) {
        dr_msg_add_attr(m, "type", type);
    }
    dr_msg_finish(m, type, 0);
    dr_result_init(res);
    proc->process(pstate, m, res);
    dr_msg_unref(m);
}

static void run_email(void *proc, const char *json, struct dr_result *res)
{
    run_on(&dr_processor_email, proc, "email-backfill", "email", json, res);
}

/* An email-backfill payload carrying raw (base64url, no padding) for user. Caller frees. */
static char *payload_raw(const char *user, const char *email_id, const char *raw, size_t len)
{
    cJSON *o = cJSON_CreateObject();
    char *b64 = NULL, *s;
    size_t n;

    assert_int_equal(dr_base64url_encode(raw, len, &b64, &n), DR_OK);
    cJSON_AddStringToObject(o, "user_id", user);
    cJSON_AddStringToObject(o, "org_id", "o1");
    cJSON_AddStringToObject(o, "account", "me@example.com");
    cJSON_AddStringToObject(o, "provider", "gmail");
    cJSON_AddStringToObject(o, "email_id", email_id);
    cJSON_AddStringToObject(o, "thread_id", "t1");
    cJSON_AddStringToObject(o, "received_at", "2026-03-01T10:00:00Z");
    cJSON_AddStringToObject(o, "raw", b64);
    s = dr_json_print(o);
    cJSON_Delete(o);
    free(b64);
    return s;
}

static char *read_path(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = dr_xmalloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static char *data_file(const char *rel, size_t *len)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", getenv("DR_TEST_DATA"), rel);
    return read_path(path, len);
}

/* Parsed emits to topic (caller deletes the array). */
static cJSON *emits_of(const struct dr_result *res, const char *topic)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; i < res->nemits; i++) {
        if (strcmp(res->emits[i].topic, topic) == 0) {
            cJSON *j = dr_json_parse(res->emits[i].data, res->emits[i].len);
            assert_non_null(j);
            cJSON_AddItemToArray(arr, j);
        }
    }
    return arr;
}

static const cJSON *find_by(const cJSON *arr, const char *key, const char *value)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, arr)
    {
        const char *v = dr_json_str(it, key);
        if (v && strcmp(v, value) == 0) {
            return it;
        }
    }
    return NULL;
}

/* expectations.json labels to the status names the pipeline reports */
static const char *want_status(const char *label)
{
    if (strcmp(label, "shipped") == 0) {
        return "in_transit";
    }
    if (strchr(label, ' ')) {
        return NULL; /* the Informed Delivery digest: letters, not a parcel status */
    }
    return label;
}

static void test_carrier_emails(void **state)
{
    struct pfx *p = *state;
    size_t len;
    char *json = data_file("shipment/mail_and_packages/expectations.json", &len);
    cJSON *exp = cJSON_Parse(json);
    const cJSON *c;
    int cases = 0, tracked = 0, orders = 0, refuted = 0;

    free(json);
    assert_non_null(exp);
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(exp, "cases"))
    {
        const char *fixture = strrchr(dr_json_str(c, "fixture"), '/') + 1;
        const char *carrier = dr_json_str(c, "carrier");
        const char *status = want_status(dr_json_str(c, "status_label"));
        const cJSON *asserted = cJSON_GetObjectItemCaseSensitive(c, "asserted"), *v, *e;
        char rel[512], *raw, *pl;
        struct dr_result res;
        cJSON *ships, *idx;
        const cJSON *fields;

        snprintf(rel, sizeof(rel), "shipment/mail_and_packages/%s", fixture);
        raw = data_file(rel, &len);
        pl = payload_raw("u1", fixture, raw, len);
        run_email(p->proc, pl, &res);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        ships = emits_of(&res, "shipment-updates");
        idx = emits_of(&res, "vespa-index");
        assert_int_equal(cJSON_GetArraySize(idx), 1);
        fields = dr_json_pointer(cJSON_GetArrayItem(idx, 0), "/fields");
        assert_string_equal(dr_json_str(cJSON_GetArrayItem(idx, 0), "doctype"), "email");
        assert_string_equal(dr_json_str(fields, "classification"), "shipment");
        assert_non_null(dr_json_str(fields, "subject"));
        cJSON_ArrayForEach(e, ships)
        {
            /* every emit is complete and carries the email's carrier and status; a number
             * the carrier's check digit refutes (the redacted 1Z2345YY0678901234 of the UPS
             * email) is not forwarded at all: the shipment processor would refuse it */
            assert_string_equal(dr_json_str(e, "type"), "shipment_detected");
            assert_string_equal(dr_json_str(e, "user_id"), "u1");
            assert_string_equal(dr_json_str(e, "source"), "email");
            assert_string_equal(dr_json_str(e, "email_id"), fixture);
            assert_non_null(dr_json_str(e, "event_time"));
            if (dr_tracking_refuted(dr_json_str(e, "tracking_number"), carrier, NULL) &&
                !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "validated"))) {
                print_error("%s: %s forwarded, though %s's check digit refutes it\n", fixture,
                            dr_json_str(e, "tracking_number"), carrier);
                fail();
            } else if (!dr_json_str(e, "carrier") ||
                       strcmp(dr_json_str(e, "carrier"), carrier) != 0) {
                print_error("%s: carrier %s, expected %s\n", fixture, dr_json_str(e, "carrier"),
                            carrier);
                fail();
            }
            if (status) {
                assert_string_equal(dr_json_str(e, "status"), status);
            }
        }
        for (size_t i = 0; i < res.nemits; i++) {
            if (strcmp(res.emits[i].topic, "shipment-updates") == 0) {
                /* ordered per tracking number */
                cJSON *j = dr_json_parse(res.emits[i].data, res.emits[i].len);
                assert_string_equal(res.emits[i].ordering_key, dr_json_str(j, "tracking_number"));
                cJSON_Delete(j);
            }
        }
        /* the refuted ones stay in the indexed email, not forwarded */
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(fields, "tracking_numbers"))
        {
            if (dr_tracking_refuted(v->valuestring, carrier, NULL) &&
                !find_by(ships, "tracking_number", v->valuestring)) {
                refuted++;
            }
        }
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(asserted, "tracking"))
        {
            if (dr_tracking_refuted(v->valuestring, carrier, NULL)) {
                continue; /* upstream asserted the number before it redacted it */
            }
            if (!find_by(ships, "tracking_number", v->valuestring)) {
                print_error("%s: no shipment_detected for %s\n", fixture, v->valuestring);
                fail();
            }
            tracked++;
        }
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(asserted, "amazon_order"))
        {
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(fields, "order_ids");
            assert_string_equal(cJSON_GetArrayItem(ids, 0)->valuestring, v->valuestring);
            orders++;
        }
        cJSON_Delete(ships);
        cJSON_Delete(idx);
        dr_result_cleanup(&res);
        free(pl);
        free(raw);
        cases++;
    }
    cJSON_Delete(exp);
    assert_int_equal(cases, 10);
    assert_int_equal(tracked, 2); /* the 2 other numbers upstream asserted are refuted */
    assert_int_equal(refuted, 3); /* DHL 4212345678, Royal Mail MA038501234GB, UPS 1Z2345... */
    assert_true(orders >= 1);
}

/* A shipment email from a shop nobody scores: the valid UPS number alone makes it one. */
static void test_valid_number_in_plain_email(void **state)
{
    struct pfx *p = *state;
    static const char raw[] = "From: Kim <kim@example.org>\r\nTo: me@example.com\r\n"
                              "Subject: the parcel\r\nDate: Sun, 01 Mar 2026 09:00:00 +0100\r\n"
                              "Message-ID: <k1@example.org>\r\n\r\n"
                              "Sent it this morning, it is 1Z879E930346834440 with UPS.\r\n";
    char *pl = payload_raw("u2", "e-plain", raw, strlen(raw));
    struct dr_result res;
    cJSON *ships;
    const cJSON *e;

    run_email(p->proc, pl, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    ships = emits_of(&res, "shipment-updates");
    assert_int_equal(cJSON_GetArraySize(ships), 1);
    e = cJSON_GetArrayItem(ships, 0);
    assert_string_equal(dr_json_str(e, "tracking_number"), "1Z879E930346834440");
    assert_string_equal(dr_json_str(e, "carrier"), "ups");
    assert_string_equal(dr_json_str(e, "event_time"), "2026-03-01T09:00:00+01:00");
    assert_true(dr_json_true(e, "validated"));
    cJSON_Delete(ships);
    dr_result_cleanup(&res);
    free(pl);
}

/* A plain-text part that is only a stub and the notice in the HTML part: the HTML is scanned
 * although the stub scores nothing. */
static void test_number_only_in_html(void **state)
{
    struct pfx *p = *state;
    static const char raw[] =
        "From: Example Shop <news@example-shop.com>\r\nTo: me@example.com\r\n"
        "Subject: An update from Example Shop\r\nDate: Sun, 01 Mar 2026 09:00:00 +0100\r\n"
        "Message-ID: <h1@example-shop.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nView it online\r\n"
        "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<html><body><p>Good news: your order has shipped with UPS.</p>"
        "<p>Tracking number: 1Z5R89390357567127</p></body></html>\r\n"
        "--b--\r\n";
    char *pl = payload_raw("u2", "e-html", raw, strlen(raw));
    struct dr_result res;
    cJSON *ships;
    const cJSON *e;

    run_email(p->proc, pl, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    ships = emits_of(&res, "shipment-updates");
    assert_int_equal(cJSON_GetArraySize(ships), 1);
    e = cJSON_GetArrayItem(ships, 0);
    assert_string_equal(dr_json_str(e, "tracking_number"), "1Z5R89390357567127");
    assert_string_equal(dr_json_str(e, "carrier"), "ups");
    assert_string_equal(dr_json_str(e, "status"), "in_transit");
    cJSON_Delete(ships);
    dr_result_cleanup(&res);
    free(pl);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The tracking numbers of the shipment_detected emits in res, space-separated, sorted. */
static void shipped_numbers(const struct dr_result *res, char *out, size_t size)
{
    cJSON *ships = emits_of(res, "shipment-updates");
    const char *v[64];
    size_t n = 0, at = 0;
    const cJSON *e;

    cJSON_ArrayForEach(e, ships)
    {
        if (n < DR_ARRAY_LEN(v)) {
            v[n++] = dr_json_str(e, "tracking_number");
        }
    }
    qsort(v, n, sizeof(*v), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n && at < size; i++) {
        at += (size_t)snprintf(out + at, size - at, "%s%s", i ? " " : "", v[i]);
    }
    cJSON_Delete(ships);
}

/* raw wrapped depth times as a message/rfc822 attachment of a friend's "see attached" email,
 * as "Forward as attachment" sends it. Caller frees. */
static char *forward_as_attachment(const char *raw, size_t len, int depth, size_t *out_len)
{
    char *cur = dr_xmalloc(len + 1);
    size_t n = len;

    memcpy(cur, raw, len);
    cur[len] = '\0';
    for (int d = 0; d < depth; d++) {
        static const char head[] =
            "From: Kim <kim@example.org>\r\nTo: me@example.com\r\nSubject: Fwd: my parcel\r\n"
            "Date: Sun, 01 Mar 2026 09:00:00 +0100\r\nMessage-ID: <fwd%d@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"fwd%d\"\r\n\r\n"
            "--fwd%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attached "
            "email.\r\n--fwd%d\r\nContent-Type: message/rfc822\r\n"
            "Content-Disposition: attachment; filename=\"parcel.eml\"\r\n\r\n";
        size_t cap = n + sizeof(head) + 128;
        char *next = dr_xmalloc(cap);
        int k = snprintf(next, cap, head, d, d, d, d);

        memcpy(next + k, cur, n);
        k += (int)n;
        k += snprintf(next + k, cap - (size_t)k, "\r\n--fwd%d--\r\n", d);
        free(cur);
        cur = next;
        n = (size_t)k;
    }
    *out_len = n;
    return cur;
}

/*
 * A carrier's email forwarded as an attachment (message/rfc822) by a friend: its tracking
 * numbers are found as in the carrier's email itself, the carrier's From vouching for them as it
 * does there. Forwards of forwards are read a few levels deep, not without end: a thousand
 * nested forwards cost no more than a few.
 */
static void test_forwarded_as_attachment(void **state)
{
    static const char *const fixtures[] = {"usps_out_for_delivery.eml", "dhl_out_for_delivery.eml",
                                           "fedex_out_for_delivery.eml"};
    struct pfx *p = *state;
    struct dr_result res;

    for (size_t i = 0; i < DR_ARRAY_LEN(fixtures); i++) {
        char rel[256], direct[1024], fwd[1024], *raw, *wrapped, *pl;
        size_t len, wlen;

        snprintf(rel, sizeof(rel), "shipment/mail_and_packages/%s", fixtures[i]);
        raw = data_file(rel, &len);
        pl = payload_raw("u3", "direct", raw, len);
        run_email(p->proc, pl, &res);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        shipped_numbers(&res, direct, sizeof(direct));
        dr_result_cleanup(&res);
        free(pl);
        assert_true(direct[0] != '\0');

        for (int depth = 1; depth <= 2; depth++) {
            wrapped = forward_as_attachment(raw, len, depth, &wlen);
            pl = payload_raw("u3", "forwarded", wrapped, wlen);
            run_email(p->proc, pl, &res);
            assert_int_equal(res.outcome, DR_OUTCOME_OK);
            shipped_numbers(&res, fwd, sizeof(fwd));
            if (strcmp(direct, fwd) != 0) {
                print_message("%s forwarded %d deep: shipments [%s], sent directly [%s]\n",
                              fixtures[i], depth, fwd, direct);
            }
            assert_string_equal(fwd, direct);
            dr_result_cleanup(&res);
            free(pl);
            free(wrapped);
        }
        free(raw);
    }

    /* a forward of a forward ... a thousand deep: processed, the number inside beyond the few
     * levels read, so no shipment */
    {
        static const char inner[] = "From: UPS <mcinfo@ups.com>\r\nSubject: UPS Update\r\n\r\n"
                                    "Tracking Number: 1Z879E930346834440\r\n";
        size_t wlen;
        char *wrapped = forward_as_attachment(inner, strlen(inner), 1000, &wlen);
        char *pl = payload_raw("u3", "bomb", wrapped, wlen);
        cJSON *ships;

        run_email(p->proc, pl, &res);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        ships = emits_of(&res, "shipment-updates");
        assert_int_equal(cJSON_GetArraySize(ships), 0);
        cJSON_Delete(ships);
        dr_result_cleanup(&res);
        free(pl);
        free(wrapped);
    }
}

/* Emails attached to a forward are read breadth first, as they were parsed: a carrier's email
 * attached directly gives its number before one attached inside another attached email, whatever
 * their order. */
static void test_forwarded_breadth_first(void **state)
{
    static const char raw[] =
        "From: Kim <kim@example.org>\r\nTo: me@example.com\r\nSubject: Fwd: parcels\r\n"
        "Message-ID: <bfs@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"top\"\r\n\r\n"
        "--top\r\nContent-Type: text/plain\r\n\r\nSee the attached emails.\r\n"
        "--top\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: Lee <lee@example.org>\r\nSubject: Fwd: mine\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n"
        "--in\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n"
        "--in\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: UPS <mcinfo@ups.com>\r\nSubject: UPS Update\r\n\r\n"
        "Tracking Number: 1Z879E930346834440\r\n"
        "--in--\r\n"
        "--top\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: UPS <mcinfo@ups.com>\r\nSubject: UPS Update\r\n\r\n"
        "Tracking Number: 1Z5R89390357567127\r\n"
        "--top--\r\n";
    struct pfx *p = *state;
    struct dr_result res;
    char got[256];
    char *pl = payload_raw("u3", "bfs", raw, strlen(raw));

    run_email(p->proc, pl, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    shipped_numbers(&res, got, sizeof(got));
    if (strcmp(got, "1Z5R89390357567127") != 0) {
        print_message("shipments [%s]\n", got);
    }
    assert_string_equal(got, "1Z5R89390357567127");
    dr_result_cleanup(&res);
    free(pl);
}

/* A number the email labels but no format knows is forwarded only under a carrier the shipment
 * module knows, spelled its way: a shop platform sending is no carrier. */
static void test_sender_carrier_codes(void **state)
{
    struct pfx *p = *state;
    static const char *const senders[][2] = {
        {"Example Store <store+12345@shopifyemail.com>", NULL},
        {"Example Store <updates@aftership.com>", NULL},
        {"Australia Post <noreply@notifications.auspost.com>", "auspost"},
        {"Colissimo <noreply@notification.colissimo.com>", "la_poste"},
    };

    for (size_t i = 0; i < DR_ARRAY_LEN(senders); i++) {
        char raw[1024], id[32], *pl;
        struct dr_result res;
        cJSON *ships;

        snprintf(raw, sizeof(raw),
                 "From: %s\r\nTo: me@example.com\r\nSubject: Your order is on its way\r\n"
                 "Date: Sun, 01 Mar 2026 09:00:00 +0100\r\nMessage-ID: <c%zu@example.com>\r\n\r\n"
                 "Your parcel has shipped.\r\nTracking number: ZZ9876543210A\r\n",
                 senders[i][0], i);
        snprintf(id, sizeof(id), "e-carrier-%zu", i);
        pl = payload_raw("u2", id, raw, strlen(raw));
        run_email(p->proc, pl, &res);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        ships = emits_of(&res, "shipment-updates");
        if (!senders[i][1]) {
            if (cJSON_GetArraySize(ships) != 0) {
                fail_msg("%s: forwarded with carrier %s", senders[i][0],
                         dr_json_str(cJSON_GetArrayItem(ships, 0), "carrier"));
            }
        } else {
            assert_int_equal(cJSON_GetArraySize(ships), 1);
            assert_string_equal(dr_json_str(cJSON_GetArrayItem(ships, 0), "carrier"),
                                senders[i][1]);
        }
        cJSON_Delete(ships);
        dr_result_cleanup(&res);
        free(pl);
    }
}

/* An ordinary email with numbers that pass a weak check digit (DHL's mod 7, FedEx's sum, an
 * IMEI, a gift card): no tracking number, not a shipment, nothing forwarded. */
static void test_bare_numbers_no_shipment(void **state)
{
    struct pfx *p = *state;
    static const char raw[] = "From: Kim <kim@example.org>\r\nTo: me@example.com\r\n"
                              "Subject: see you on Friday\r\n"
                              "Date: Sun, 01 Mar 2026 09:00:00 +0100\r\n"
                              "Message-ID: <k2@example.org>\r\n\r\n"
                              "Hi, your booking reference is 1234567891 and the code for the "
                              "bridge is 987654321010.\r\nMy new phone (IMEI 354720198603958) "
                              "works, thanks for the gift card 6006 4762 0075 3293!\r\n";
    char *pl = payload_raw("u2", "e-bare", raw, strlen(raw));
    struct dr_result res;
    cJSON *ships, *idx;
    const cJSON *fields;

    run_email(p->proc, pl, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    ships = emits_of(&res, "shipment-updates");
    assert_int_equal(cJSON_GetArraySize(ships), 0);
    idx = emits_of(&res, "vespa-index");
    fields = dr_json_pointer(cJSON_GetArrayItem(idx, 0), "/fields");
    assert_string_equal(dr_json_str(fields, "classification"), "other");
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(fields, "tracking_numbers")), 0);
    cJSON_Delete(ships);
    cJSON_Delete(idx);
    dr_result_cleanup(&res);
    free(pl);
}

/* An ordinary reply: other, indexed, nothing forwarded. */
static void test_ordinary_reply(void **state)
{
    struct pfx *p = *state;
    size_t len;
    char *raw = data_file("email/replies/gmail.eml", &len);
    char *pl = payload_raw("u3", "e-reply", raw, len);
    struct dr_result res;
    cJSON *idx;

    run_email(p->proc, pl, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    for (size_t i = 0; i < res.nemits; i++) {
        assert_true(strcmp(res.emits[i].topic, "vespa-index") == 0 ||
                    strcmp(res.emits[i].topic, "client-notifications") == 0);
    }
    idx = emits_of(&res, "vespa-index");
    assert_string_equal(
        dr_json_str(dr_json_pointer(cJSON_GetArrayItem(idx, 0), "/fields"), "classification"),
        "other");
    assert_string_equal(dr_json_str(cJSON_GetArrayItem(idx, 0), "docid"), "u3:e-reply");
    cJSON_Delete(idx);
    dr_result_cleanup(&res);
    free(pl);
    free(raw);
}

static const char poll_def[] =
    "{\"poll_id\":\"p-1\",\"organizer_user_id\":\"u-org\",\"org_id\":\"o1\",\"title\":\"Planning\","
    "\"slots\":[{\"slot_id\":\"a\",\"start\":\"2026-03-02T10:00:00+01:00\","
    "\"end\":\"2026-03-02T11:00:00+01:00\",\"label\":\"Mon 2 Mar, 10:00\"},"
    "{\"slot_id\":\"b\",\"start\":\"2026-03-03T15:00:00+01:00\","
    "\"end\":\"2026-03-03T16:00:00+01:00\",\"label\":\"Tue 3 Mar, 15:00\"}],"
    "\"participants\":[{\"email\":\"kim@example.org\",\"name\":\"Kim\"}],"
    "\"message_id\":\"<poll-1@example.com>\",\"reply_token\":\"tok1\"}";

static void create_poll(struct pfx *p)
{
    struct dr_result res;

    run_on(&dr_processor_meeting_poll, p->poll, "meeting-responses", "poll_created", poll_def,
           &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
}

static void check_poll_reply(struct pfx *p, const char *raw, const char *email_id,
                             const char *want_answer_b)
{
    char *pl = payload_raw("u-org", email_id, raw, strlen(raw));
    struct dr_result res, res2;
    cJSON *polls, *idx;
    const cJSON *e;
    char *s;

    run_email(p->proc, pl, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    polls = emits_of(&res, "meeting-responses");
    assert_int_equal(cJSON_GetArraySize(polls), 1);
    e = cJSON_GetArrayItem(polls, 0);
    assert_string_equal(dr_json_str(e, "poll_id"), "p-1");
    assert_string_equal(dr_json_str(dr_json_pointer(e, "/from"), "address"), "kim@example.org");
    assert_non_null(dr_json_str(e, "body_text"));
    idx = emits_of(&res, "vespa-index");
    assert_string_equal(
        dr_json_str(dr_json_pointer(cJSON_GetArrayItem(idx, 0), "/fields"), "poll_id"), "p-1");
    cJSON_Delete(idx);
    /* what the email processor forwards, the poll processor reads */
    s = dr_json_print(e);
    run_on(&dr_processor_meeting_poll, p->poll, "meeting-responses", "poll_response_email", s,
           &res2);
    assert_int_equal(res2.outcome, DR_OUTCOME_OK);
    free(s);
    {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM poll_responses WHERE poll_id = 'p-1' AND slot_id = 'b' "
                 "AND answer = '%s'",
                 want_answer_b);
        assert_int_equal(count_rows(dr_store_db(p->st), sql), 1);
    }
    dr_result_cleanup(&res2);
    cJSON_Delete(polls);
    dr_result_cleanup(&res);
    free(pl);
}

static void test_poll_reply_by_thread_and_token(void **state)
{
    struct pfx *p = *state;
    static const char by_thread[] =
        "From: Kim <kim@example.org>\r\nTo: dana@example.com\r\nSubject: Re: Planning\r\n"
        "Date: Fri, 27 Feb 2026 10:00:00 +0000\r\nMessage-ID: <kim-1@example.org>\r\n"
        "In-Reply-To: <poll-1@example.com>\r\nReferences: <poll-1@example.com>\r\n\r\n"
        "1 yes, 2 no\r\n\r\nOn Thu, Feb 26, 2026 at 9:00 AM Dana wrote:\r\n> Which times?\r\n";
    static const char by_token[] =
        "From: Kim <kim@example.org>\r\nTo: polls+tok1@example.com\r\nSubject: Planning\r\n"
        "Date: Fri, 27 Feb 2026 11:00:00 +0000\r\nMessage-ID: <kim-2@example.org>\r\n\r\n"
        "Tuesday works, Monday does not\r\n";

    create_poll(p);
    check_poll_reply(p, by_thread, "e-poll-1", "no");
    check_poll_reply(p, by_token, "e-poll-2", "yes");
}

static void test_calendar_invitation(void **state)
{
    struct pfx *p = *state;
    size_t len;
    char *raw = data_file("email/calendar/simple-mime.txt", &len);
    char *pl = payload_raw("u4", "e-cal", raw, len);
    struct dr_result res;
    cJSON *cals;
    const cJSON *e;

    run_email(p->proc, pl, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    cals = emits_of(&res, "calendar-updates");
    assert_true(cJSON_GetArraySize(cals) >= 1);
    e = cJSON_GetArrayItem(cals, 0);
    assert_string_equal(dr_json_str(e, "user_id"), "u4");
    assert_string_equal(dr_json_str(e, "operation"), "upsert");
    assert_non_null(strstr(dr_json_str(e, "ics"), "BEGIN:VCALENDAR"));
    cJSON_Delete(cals);
    dr_result_cleanup(&res);
    free(pl);
    free(raw);
}

static void expect_reject(void *proc, const char *json, const char *reason)
{
    struct dr_result res;

    run_email(proc, json, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, reason);
    assert_true(strlen(res.error) > 0);
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
}

static void test_malformed_rejected(void **state)
{
    struct pfx *p = *state;
    char *pl;

    expect_reject(p->proc, "[1,2]", "invalid_payload");
    expect_reject(p->proc, "{\"email_id\":\"e\",\"raw\":\"RnJvbTogYQ\"}", "invalid_payload");
    expect_reject(p->proc, "{\"user_id\":\"u\",\"raw\":\"RnJvbTogYQ\"}", "invalid_payload");
    expect_reject(p->proc, "{\"user_id\":\"u\",\"email_id\":\"e\",\"raw\":\"not base64!\"}",
                  "invalid_payload");
    expect_reject(p->proc, "{\"user_id\":\"u\",\"email_id\":\"e\",\"raw\":42}", "invalid_payload");
    expect_reject(p->proc, "{\"user_id\":\"u\",\"email_id\":\"e\"}", "invalid_payload");
    expect_reject(p->proc, "{\"user_id\":\"u\",\"email_id\":\"e\",\"subject\":7}", "invalid_email");
    /* base64 of bytes with no header at all */
    pl = payload_raw("u", "e", "\x01\x02\x03 no header here", 18);
    expect_reject(p->proc, pl, "invalid_email");
    free(pl);
}

static void test_preparsed_fields(void **state)
{
    struct pfx *p = *state;
    static const char pl[] =
        "{\"user_id\":\"u5\",\"email_id\":\"e5\",\"subject\":\"Your parcel is out for delivery\","
        "\"from\":\"UPS <mcinfo@ups.com>\",\"date\":\"2026-03-01T08:00:00Z\","
        "\"body_text\":\"Tracking number: 1Z8V92A70367203024. Out for delivery today.\"}";
    struct dr_result res;
    cJSON *ships;

    run_email(p->proc, pl, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    ships = emits_of(&res, "shipment-updates");
    assert_non_null(find_by(ships, "tracking_number", "1Z8V92A70367203024"));
    assert_string_equal(dr_json_str(cJSON_GetArrayItem(ships, 0), "status"), "out_for_delivery");
    cJSON_Delete(ships);
    dr_result_cleanup(&res);
}

static int count_progress(const struct dr_result *res, const char *room, double *processed)
{
    int n = 0;

    for (size_t i = 0; i < res->nemits; i++) {
        cJSON *j;
        if (strcmp(res->emits[i].topic, "client-notifications") != 0) {
            continue;
        }
        j = dr_json_parse(res->emits[i].data, res->emits[i].len);
        if (strcmp(dr_json_str(j, "notification_type"), "email.processed") == 0 &&
            strcmp(dr_json_str(j, "room"), room) == 0) {
            n++;
            *processed = cJSON_GetObjectItemCaseSensitive(dr_json_pointer(j, "/data"), "processed")
                             ->valuedouble;
        }
        cJSON_Delete(j);
    }
    return n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_progress_throttled(void **state)
{
    struct pfx *p = *state;
    static const char pl[] = "{\"user_id\":\"%s\",\"email_id\":\"e%d\",\"subject\":\"hello\","
                             "\"body_text\":\"hi\"}";
    char buf[256];
    struct dr_result res;
    double processed = 0;
    int total = 0;
    void *fast;

    /* a one-hour window: the first email reports, the next nine only count */
    for (int i = 0; i < 10; i++) {
        snprintf(buf, sizeof(buf), pl, "tu", i);
        run_email(p->proc, buf, &res);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        total += count_progress(&res, "user:tu", &processed);
        dr_result_cleanup(&res);
    }
    assert_int_equal(total, 1);

    /* a 20 ms window: counts pending after a burst reach the user with the next message after
     * the window, whoever it is for (here another user's) */
    fast = start_email(p->st, "{\"progress_interval_ms\":20}");
    assert_non_null(fast);
    for (int i = 0; i < 5; i++) {
        snprintf(buf, sizeof(buf), pl, "ua", i);
        run_email(fast, buf, &res);
        count_progress(&res, "user:ua", &processed);
        dr_result_cleanup(&res);
    }
    sleep_ms(40);
    snprintf(buf, sizeof(buf), pl, "ub", 99);
    run_email(fast, buf, &res);
    processed = 0;
    assert_int_equal(count_progress(&res, "user:ua", &processed), 1);
    assert_int_equal((int)processed, 5);
    assert_int_equal(count_progress(&res, "user:ub", &processed), 1);
    dr_result_cleanup(&res);
    dr_processor_email.destroy(fast);
}

#define TESTS(X)                                                                                   \
    X(test_carrier_emails)                                                                         \
    X(test_valid_number_in_plain_email)                                                            \
    X(test_bare_numbers_no_shipment)                                                               \
    X(test_number_only_in_html)                                                                    \
    X(test_forwarded_as_attachment)                                                                \
    X(test_forwarded_breadth_first)                                                                \
    X(test_sender_carrier_codes)                                                                   \
    X(test_ordinary_reply)                                                                         \
    X(test_poll_reply_by_thread_and_token)                                                         \
    X(test_calendar_invitation)                                                                    \
    X(test_malformed_rejected)                                                                     \
    X(test_preparsed_fields)                                                                       \
    X(test_progress_throttled)

int main(void)
{
    const struct CMUnitTest tests[] = {TESTS(ON_SQLITE) TESTS(ON_PG)};

    return cmocka_run_group_tests(tests, NULL, NULL);
}
