/*
 * Tests src/processors/calendar/processor.c: process() against a real store, SQLite in a
 * temporary directory and PostgreSQL at $DR_TEST_PG_URL (fails when unset).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/db.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/msg.h"
#include "dr/processor.h"
#include "dr/store.h"
#include "dr/util.h"
#include "unit/store/backend.h"

extern const struct dr_processor dr_processor_calendar;
extern const struct dr_processor dr_processor_meeting_poll;

#define PFX_PROCESSOR dr_processor_calendar
#include "unit/processors/proc_fixture.h"
#include "unit/processors/store_faults.h"

static struct dr_db *DB(void **state)
{
    return dr_store_db(((struct pfx *)*state)->st);
}

static void run_msg(void **state, const char *id, const char *json, int64_t publish_ms,
                    struct dr_result *res)
{
    struct dr_msg *m = dr_msg_create(id, "calendar-updates", json, strlen(json), publish_ms);

    dr_msg_finish(m, "calendar_event", 0);
    dr_result_init(res);
    dr_processor_calendar.process(((struct pfx *)*state)->proc, m, res);
    dr_msg_unref(m);
}

/* The emit to topic with the given JSON field value (parsed; caller deletes), or NULL. */
static cJSON *emit_of(const struct dr_result *res, const char *topic)
{
    for (size_t i = 0; i < res->nemits; i++) {
        if (strcmp(res->emits[i].topic, topic) == 0) {
            cJSON *j = dr_json_parse(res->emits[i].data, res->emits[i].len);
            assert_non_null(j);
            return j;
        }
    }
    return NULL;
}

static int64_t count_where(void **state, const char *sql)
{
    return count_rows(DB(state), sql);
}

static const char request_ics[] =
    "BEGIN:VCALENDAR\\r\\nVERSION:2.0\\r\\nPRODID:-//t//t//EN\\r\\nMETHOD:REQUEST\\r\\n"
    "BEGIN:VEVENT\\r\\nUID:ev-1@example.com\\r\\nSEQUENCE:%d\\r\\nDTSTAMP:20260301T080000Z\\r\\n"
    "DTSTART;TZID=Europe/Berlin:20260302T100000\\r\\nDTEND;TZID=Europe/Berlin:20260302T110000"
    "\\r\\nSUMMARY:%s\\r\\nRRULE:FREQ=WEEKLY;COUNT=4\\r\\n"
    "ORGANIZER:mailto:dana@example.com\\r\\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:kim@example.com"
    "\\r\\nEND:VEVENT\\r\\nEND:VCALENDAR\\r\\n";

static char *ics_msg(int sequence, const char *summary, const char *method)
{
    char ics[2048], *s = dr_xmalloc(4096), *m;

    snprintf(ics, sizeof(ics), request_ics, sequence, summary);
    m = strstr(ics, "REQUEST");
    if (method) {
        char tmp[2048];
        snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(m - ics), ics, method, m + 7);
        snprintf(ics, sizeof(ics), "%s", tmp);
    }
    snprintf(s, 4096,
             "{\"user_id\":\"u1\",\"org_id\":\"o1\",\"calendar_id\":\"primary\","
             "\"operation\":\"upsert\",\"ics\":\"%s\"}",
             ics);
    return s;
}

static void test_ics_request_stored_indexed_notified(void **state)
{
    char *js = ics_msg(1, "Planning", NULL);
    struct dr_result res;
    cJSON *idx, *n;

    run_msg(state, "c1", js, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE user_id = "
                                        "'u1' AND event_id = 'ev-1@example.com' AND deleted = 0 "
                                        "AND summary = 'Planning' AND sequence = 1"),
                     1);
    idx = emit_of(&res, "vespa-index");
    assert_non_null(idx);
    assert_string_equal(dr_json_str(idx, "operation"), "put");
    assert_string_equal(dr_json_str(idx, "doctype"), "calendar_event");
    assert_string_equal(dr_json_str(idx, "docid"), "u1:ev-1@example.com");
    assert_string_equal(dr_json_str(dr_json_pointer(idx, "/fields"), "start"),
                        "2026-03-02T09:00:00Z");
    assert_string_equal(dr_json_str(dr_json_pointer(idx, "/fields"), "rrule"),
                        "FREQ=WEEKLY;COUNT=4");
    cJSON_Delete(idx);
    n = emit_of(&res, "client-notifications");
    assert_non_null(n);
    assert_string_equal(dr_json_str(n, "room"), "user:u1");
    assert_string_equal(dr_json_str(n, "notification_type"), "calendar.updated");
    assert_string_equal(dr_json_str(dr_json_pointer(n, "/data"), "summary"), "Planning");
    cJSON_Delete(n);
    dr_result_cleanup(&res);
    free(js);
}

static void test_older_sequence_ignored(void **state)
{
    char *v2 = ics_msg(2, "Moved", NULL), *v1 = ics_msg(1, "Original", NULL);
    struct dr_result res;

    run_msg(state, "c2", v2, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    run_msg(state, "c1", v1, 1772400005000, &res); /* later delivery, older SEQUENCE */
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    assert_int_equal(
        count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE summary = 'Moved'"), 1);
    free(v1);
    free(v2);
}

static void test_cancel_and_delete_remove(void **state)
{
    char *req = ics_msg(1, "Planning", NULL), *cancel = ics_msg(2, "Planning", "CANCEL");
    static const char del[] = "{\"user_id\":\"u1\",\"event_id\":\"e-json\",\"operation\":"
                              "\"delete\"}";
    struct dr_result res;
    cJSON *idx;

    run_msg(state, "c1", req, 1772400000000, &res);
    dr_result_cleanup(&res);
    run_msg(state, "c2", cancel, 1772400001000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    idx = emit_of(&res, "vespa-index");
    assert_non_null(idx);
    assert_string_equal(dr_json_str(idx, "operation"), "remove");
    assert_string_equal(dr_json_str(idx, "docid"), "u1:ev-1@example.com");
    cJSON_Delete(idx);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE deleted = 1 "
                                        "AND status = 'CANCELLED'"),
                     1);
    /* the old REQUEST again: the tombstone holds */
    run_msg(state, "c1-again", req, 1772400000000, &res);
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE deleted = 0"),
                     0);
    run_msg(state, "d1", del, 1772400002000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    idx = emit_of(&res, "vespa-index");
    assert_non_null(idx);
    assert_string_equal(dr_json_str(idx, "operation"), "remove");
    cJSON_Delete(idx);
    dr_result_cleanup(&res);
    free(req);
    free(cancel);
}

static void test_json_event(void **state)
{
    static const char js[] =
        "{\"user_id\":\"u2\",\"calendar_id\":\"work\",\"event_id\":\"g-77\",\"event\":{"
        "\"summary\":\"Standup\",\"start\":{\"dateTime\":\"2026-03-02T09:00:00Z\"},"
        "\"end\":\"2026-03-02T09:15:00Z\",\"status\":\"CONFIRMED\",\"rrule\":[\"FREQ=DAILY\"]}}";
    struct dr_result res;

    run_msg(state, "j1", js, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(res.nemits, 2);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE event_id = "
                                        "'g-77' AND start_at = '2026-03-02T09:00:00Z' AND "
                                        "rrule = 'FREQ=DAILY'"),
                     1);

    /* an all-day date, a zone's local time (as `parse ics` prints it), a UTC offset */
    run_msg(state, "j2",
            "{\"user_id\":\"u2\",\"event_id\":\"g-78\",\"event\":{\"start\":{\"date\":"
            "\"2026-03-02\"},\"end\":{\"value\":\"2026-03-03T10:00:00\",\"tzid\":"
            "\"Europe/Berlin\"},\"recurrence_id\":\"2026-03-02T10:00:00.5+01:00\"}}",
            1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
}

/* ids each within their bounds whose search document id would be too long: refused before
 * anything is written (not stored and then dead-lettered, unindexed) */
static void test_long_docid_refused_before_writing(void **state)
{
    char js[4096], uid[1025], eid[1025];
    struct dr_result res;

    memset(uid, 'v', 1024);
    uid[1024] = '\0';
    memset(eid, 'f', 1024);
    eid[1024] = '\0';
    snprintf(js, sizeof(js),
             "{\"user_id\":\"%s\",\"event_id\":\"%s\",\"event\":{\"summary\":\"x\","
             "\"start\":\"2026-03-02T09:00:00Z\"}}",
             uid, eid);
    run_msg(state, "long", js, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "invalid_payload");
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE summary = 'x'"),
                     0);
}

static void test_reply_forwarded_to_poll(void **state)
{
    static const char poll[] =
        "{\"poll_id\":\"p-7\",\"organizer_user_id\":\"u1\",\"slots\":[{\"slot_id\":\"a\","
        "\"start\":\"2026-03-02T09:00:00Z\"}],\"participants\":[{\"email\":\"kim@example.com\"}],"
        "\"event_uid\":\"ev-1@example.com\"}";
    char *reply = ics_msg(1, "Planning", "REPLY");
    struct dr_msg *m = dr_msg_create("p", "meeting-responses", poll, strlen(poll), 1);
    struct dr_proc_env env = {.store = ((struct pfx *)*state)->st, .data_dir = "/tmp"};
    struct dr_result res;
    void *pp = NULL;
    char err[128];
    cJSON *fw;

    assert_int_equal(dr_processor_meeting_poll.init(&env, &pp, err, sizeof(err)), 0);
    dr_msg_add_attr(m, "type", "poll_created");
    dr_msg_finish(m, NULL, 0);
    dr_result_init(&res);
    dr_processor_meeting_poll.process(pp, m, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    dr_msg_unref(m);

    run_msg(state, "r1", reply, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    fw = emit_of(&res, "meeting-responses");
    assert_non_null(fw);
    assert_string_equal(dr_json_str(fw, "poll_id"), "p-7");
    assert_string_equal(dr_json_str(fw, "type"), "poll_response_email");
    assert_string_equal(dr_json_str(fw, "from"), "kim@example.com");
    assert_non_null(dr_json_str(fw, "ics"));
    cJSON_Delete(fw);
    assert_null(emit_of(&res, "vespa-index"));
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events"), 0);
    dr_processor_meeting_poll.destroy(pp);
    free(reply);
}

/* Runs one meeting-responses message through the meeting_poll processor pp. */
static void run_poll(void *pp, const char *type, const char *json, struct dr_result *res)
{
    struct dr_msg *m = dr_msg_create("poll-msg", "meeting-responses", json, strlen(json), 1);

    dr_msg_add_attr(m, "type", type);
    dr_msg_finish(m, NULL, 0);
    dr_result_init(res);
    dr_processor_meeting_poll.process(pp, m, res);
    dr_msg_unref(m);
}

/* s with its first "from" replaced by "to" (s is freed). */
static char *replace(char *s, const char *from, const char *to)
{
    char *at = strstr(s, from), *r;

    assert_non_null(at);
    r = dr_xmalloc(strlen(s) + strlen(to) + 1);
    sprintf(r, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    free(s);
    return r;
}

/*
 * Only the poll organizer's calendar answers a poll: a REPLY with the poll's UID in another
 * user's calendar (another org) is that user's event, not forwarded; one in the organizer's
 * calendar is forwarded naming that calendar, and the poll processor stores it.
 */
static void test_reply_in_other_calendar_not_forwarded(void **state)
{
    static const char poll[] =
        "{\"poll_id\":\"p-7\",\"organizer_user_id\":\"u1\",\"org_id\":\"o1\",\"slots\":["
        "{\"slot_id\":\"a\",\"start\":\"2026-03-02T09:00:00Z\"}],\"participants\":["
        "{\"email\":\"Kim@Example.com\"}],\"event_uid\":\"ev-1@example.com\"}";
    struct dr_proc_env env = {.store = ((struct pfx *)*state)->st, .data_dir = "/tmp"};
    char *reply = replace(ics_msg(1, "Planning", "REPLY"), "NEEDS-ACTION", "ACCEPTED");
    char *eve = replace(dr_xstrdup(reply), "\"user_id\":\"u1\",\"org_id\":\"o1\"",
                        "\"user_id\":\"eve\",\"org_id\":\"other-org\"");
    char *colleague = replace(dr_xstrdup(reply), "\"user_id\":\"u1\"", "\"user_id\":\"u2\"");
    char *fwd, err[128];
    struct dr_result res;
    void *pp = NULL;
    cJSON *fw, *n;

    assert_int_equal(dr_processor_meeting_poll.init(&env, &pp, err, sizeof(err)), 0);
    run_poll(pp, "poll_created", poll, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);

    run_msg(state, "eve", eve, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_null(emit_of(&res, "meeting-responses"));
    n = emit_of(&res, "client-notifications"); /* eve still hears of the reply in her calendar */
    assert_non_null(n);
    assert_string_equal(dr_json_str(n, "room"), "user:eve");
    assert_null(dr_json_str(dr_json_pointer(n, "/data"), "poll_id"));
    cJSON_Delete(n);
    dr_result_cleanup(&res);
    run_msg(state, "u2", colleague, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_null(emit_of(&res, "meeting-responses"));
    dr_result_cleanup(&res);

    run_msg(state, "u1", reply, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    fw = emit_of(&res, "meeting-responses");
    assert_non_null(fw);
    assert_string_equal(dr_json_str(fw, "poll_id"), "p-7");
    assert_string_equal(dr_json_str(fw, "user_id"), "u1");
    assert_string_equal(dr_json_str(fw, "org_id"), "o1");
    fwd = dr_json_print(fw);
    cJSON_Delete(fw);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM poll_responses"), 0);
    run_poll(pp, "poll_response_email", fwd, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM poll_responses WHERE poll_id = 'p-7'"
                                        " AND participant_email = 'kim@example.com'"
                                        " AND slot_id = 'a' AND answer = 'yes'"),
                     1);
    dr_processor_meeting_poll.destroy(pp);
    free(fwd);
    free(colleague);
    free(eve);
    free(reply);
}

static void test_bad_input_rejected(void **state)
{
    static const struct {
        const char *json, *reason;
    } cases[] = {
        {"{\"user_id\":\"u1\",\"ics\":\"BEGIN:VCALENDAR\\r\\nBEGIN:VEVENT\\r\\nDTSTART:2026XX"
         "\\r\\nEND:VEVENT\\r\\nEND:VCALENDAR\\r\\n\"}",
         "invalid_ics"},
        {"{\"user_id\":\"u1\",\"ics\":\"hello\"}", "invalid_ics"},
        {"{\"ics\":\"BEGIN:VCALENDAR\\r\\nEND:VCALENDAR\\r\\n\"}", "invalid_event"},
        {"{\"user_id\":\"u1\",\"operation\":\"merge\",\"event_id\":\"x\",\"event\":{}}",
         "invalid_event"},
        {"{\"user_id\":\"u1\",\"event\":{\"summary\":\"no id\"}}", "invalid_event"},
        {"{\"user_id\":\"u1\",\"event_id\":\"x\",\"event\":{\"start\":42}}", "invalid_event"},
        {"{\"user_id\":\"u1\",\"event_id\":\"x\",\"event\":{\"start\":\"yesterday\"}}",
         "invalid_event"},
        {"{\"user_id\":\"u1\",\"event_id\":\"x\",\"event\":{\"start\":\"2026-03-02T09:00:00Z\","
         "\"end\":{\"dateTime\":\"2026-13-02T10:00:00Z\"}}}",
         "invalid_event"},
        {"{\"user_id\":\"u1\",\"event_id\":\"x\",\"event\":{\"start\":{\"date\":\"2026-03-xx\"}}}",
         "invalid_event"},
        {"{\"user_id\":\"u1\",\"event_id\":\"x\",\"event\":{\"summary\":7}}", "invalid_event"},
        {"{\"user_id\":\"u1\"}", "invalid_event"},
        {"[]", "invalid_payload"},
    };
    struct dr_result res;

    for (size_t i = 0; i < DR_ARRAY_LEN(cases); i++) {
        run_msg(state, "bad", cases[i].json, 1, &res);
        if (res.outcome != DR_OUTCOME_REJECT || strcmp(res.reason, cases[i].reason) != 0) {
            fprintf(stderr, "case %zu: %s %s %s\n", i, dr_outcome_name(res.outcome), res.reason,
                    res.error);
        }
        assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
        assert_string_equal(res.reason, cases[i].reason);
        assert_int_equal(res.nemits, 0);
        dr_result_cleanup(&res);
    }
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events"), 0);
}

/* A CANCEL (SEQUENCE 3) processed before an update sent earlier (SEQUENCE 2), as when two
 * workers take them at once or the update is redelivered: the tombstone keeps the CANCEL's
 * SEQUENCE, so the older update does not bring the event back. */
static void test_cancel_outranks_older_update(void **state)
{
    char *v1 = ics_msg(1, "Planning", NULL), *v2 = ics_msg(2, "Moved", NULL),
         *cancel = ics_msg(3, "Planning", "CANCEL");
    struct dr_result res;

    run_msg(state, "c1", v1, 1772400000000, &res);
    dr_result_cleanup(&res);
    run_msg(state, "c3", cancel, 1772400002000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    run_msg(state, "c2", v2, 1772400001000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_null(emit_of(&res, "vespa-index"));
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE deleted = 1 "
                                        "AND sequence = 3"),
                     1);
    free(v1);
    free(v2);
    free(cancel);
}

/* RFC 5546 2.1.5: a CANCEL with a lower SEQUENCE than the stored event is out of date. It and a
 * JSON delete of an older version arrive late (after the newer version) and change nothing. */
static void test_late_delete_ignored(void **state)
{
    char *v2 = ics_msg(2, "Moved", NULL), *cancel1 = ics_msg(1, "Planning", "CANCEL");
    static const char up3[] =
        "{\"user_id\":\"u1\",\"event_id\":\"g-1\",\"event\":{\"summary\":\"Review\","
        "\"start\":\"2026-03-02T09:00:00Z\",\"sequence\":3}}";
    static const char del2[] = "{\"user_id\":\"u1\",\"event_id\":\"g-1\",\"operation\":"
                               "\"delete\",\"event\":{\"sequence\":2}}";
    static const char del[] = "{\"user_id\":\"u1\",\"event_id\":\"g-1\",\"operation\":"
                              "\"delete\"}";
    struct dr_result res;

    run_msg(state, "c2", v2, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    run_msg(state, "c1", cancel1, 1772400005000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE event_id = "
                                        "'ev-1@example.com' AND deleted = 0 AND summary = 'Moved' "
                                        "AND sequence = 2"),
                     1);

    run_msg(state, "j3", up3, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    run_msg(state, "j2", del2, 1772400005000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    /* without a SEQUENCE, a delete sent before the update is late too */
    run_msg(state, "jd-early", del, 1772399999000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE event_id = "
                                        "'g-1' AND deleted = 0 AND summary = 'Review'"),
                     1);
    /* and one sent after it deletes */
    run_msg(state, "jd", del, 1772400009000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(res.nemits, 2);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE event_id = "
                                        "'g-1' AND deleted = 1 AND sequence = 3"),
                     1);
    free(v2);
    free(cancel1);
}

/* A calendar-updates message for user u1 with payload event_id "evt-9" and an iCalendar object
 * of METHOD method holding the VEVENT bodies given (CRLF-joined in JSON). */
static char *series_msg(const char *method, const char *vevents)
{
    char *s = dr_xmalloc(8192);

    snprintf(s, 8192,
             "{\"user_id\":\"u1\",\"event_id\":\"evt-9\",\"operation\":\"upsert\",\"ics\":"
             "\"BEGIN:VCALENDAR\\r\\nVERSION:2.0\\r\\nPRODID:-//t//t//EN\\r\\nMETHOD:%s\\r\\n%s"
             "END:VCALENDAR\\r\\n\"}",
             method, vevents);
    return s;
}

#define SERIES_MASTER(seq, summary)                                                                \
    "BEGIN:VEVENT\\r\\nUID:series-9@example.com\\r\\nSEQUENCE:" seq "\\r\\n"                       \
    "DTSTAMP:20260301T080000Z\\r\\nDTSTART:20260302T090000Z\\r\\nDTEND:20260302T100000Z\\r\\n"     \
    "RRULE:FREQ=WEEKLY;COUNT=6\\r\\nSUMMARY:" summary "\\r\\nEND:VEVENT\\r\\n"
#define SERIES_INSTANCE(seq, summary)                                                              \
    "BEGIN:VEVENT\\r\\nUID:series-9@example.com\\r\\nSEQUENCE:" seq "\\r\\n"                       \
    "DTSTAMP:20260301T080000Z\\r\\nRECURRENCE-ID:20260309T090000Z\\r\\n"                           \
    "DTSTART:20260309T110000Z\\r\\nDTEND:20260309T120000Z\\r\\nSUMMARY:" summary                   \
    "\\r\\nEND:VEVENT\\r\\n"

/*
 * An event whose status is cancelled is a cancellation, as a CANCEL is (RFC 5546 3.2.5 gives it
 * STATUS:CANCELLED): a JSON event with "status": "cancelled" (Google Calendar's API word), or a
 * VEVENT with STATUS:CANCELLED published without METHOD:CANCEL. It removes the event, ordered
 * by SEQUENCE like any update, and the older version sent again does not bring it back.
 */
static void test_cancelled_status_cancels(void **state)
{
    static const char live[] =
        "{\"user_id\":\"u2\",\"event_id\":\"g-5\",\"event\":{\"summary\":\"Review\","
        "\"start\":\"2026-03-02T09:00:00Z\",\"status\":\"confirmed\",\"sequence\":1}}";
    static const char cancelled[] = "{\"user_id\":\"u2\",\"event_id\":\"g-5\",\"event\":{"
                                    "\"status\":\"cancelled\",\"sequence\":2}}";
    char *req = series_msg("REQUEST", SERIES_MASTER("1", "Weekly"));
    char *pub = series_msg("PUBLISH", "BEGIN:VEVENT\\r\\nUID:series-9@example.com\\r\\nSEQUENCE:2"
                                      "\\r\\nDTSTAMP:20260301T090000Z\\r\\nDTSTART:20260302T090000Z"
                                      "\\r\\nSTATUS:CANCELLED\\r\\nEND:VEVENT\\r\\n");
    const char *const first[] = {live, req}, *const cancel[] = {cancelled, pub};
    const char *const key[] = {"g-5", "evt-9"};

    for (size_t i = 0; i < DR_ARRAY_LEN(first); i++) {
        char sql[256], docid[64];
        struct dr_result res;
        cJSON *idx, *n;

        run_msg(state, "live", first[i], 1772400000000, &res);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        dr_result_cleanup(&res);
        run_msg(state, "cancel", cancel[i], 1772400001000, &res);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        idx = emit_of(&res, "vespa-index");
        n = emit_of(&res, "client-notifications");
        snprintf(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM calendar_events WHERE event_id = '%s' AND deleted = 0",
                 key[i]);
        if (count_where(state, sql) != 0) {
            print_message("%s: still a live event after its cancellation; index %s, notified "
                          "%s\n",
                          key[i], idx ? dr_json_str(idx, "operation") : "(none)",
                          n ? dr_json_str(dr_json_pointer(n, "/data"), "operation") : "(none)");
        }
        assert_int_equal(count_where(state, sql), 0);
        assert_non_null(idx);
        assert_string_equal(dr_json_str(idx, "operation"), "remove");
        snprintf(docid, sizeof(docid), "u%c:%s", i ? '1' : '2', key[i]);
        assert_string_equal(dr_json_str(idx, "docid"), docid);
        assert_non_null(n);
        assert_string_equal(dr_json_str(dr_json_pointer(n, "/data"), "operation"), "delete");
        cJSON_Delete(idx);
        cJSON_Delete(n);
        dr_result_cleanup(&res);
        /* the live version again, late: the cancellation holds */
        run_msg(state, "live-again", first[i], 1772400002000, &res);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        assert_int_equal(res.nemits, 0);
        dr_result_cleanup(&res);
        assert_int_equal(count_where(state, sql), 0);
    }
    free(req);
    free(pub);
}

/* RFC 5546 3.2.5: a CANCEL with a RECURRENCE-ID cancels that instance only; the series stays. */
static void test_cancel_one_instance(void **state)
{
    char *req = series_msg("REQUEST", SERIES_MASTER("0", "Weekly")),
         *cancel = series_msg("CANCEL", SERIES_INSTANCE("1", "Weekly"));
    struct dr_result res;
    cJSON *idx;

    run_msg(state, "s1", req, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    run_msg(state, "s2", cancel, 1772400001000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    idx = emit_of(&res, "vespa-index");
    assert_non_null(idx);
    assert_string_equal(dr_json_str(idx, "operation"), "remove");
    assert_string_equal(dr_json_str(idx, "docid"), "u1:evt-9/2026-03-09T09:00:00Z");
    cJSON_Delete(idx);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE event_id = "
                                        "'evt-9' AND deleted = 0 AND summary = 'Weekly'"),
                     1);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE event_id = "
                                        "'evt-9/2026-03-09T09:00:00Z' AND deleted = 1"),
                     1);
    free(req);
    free(cancel);
}

/* A series first sent alone, then with an overridden instance, under the same payload event_id:
 * the series keeps its key (no second, stale copy under its UID) and the instance gets its own. */
static void test_series_keeps_its_key(void **state)
{
    char *v1 = series_msg("REQUEST", SERIES_MASTER("0", "Weekly")),
         *v2 = series_msg("REQUEST", SERIES_MASTER("1", "Weekly v2") SERIES_INSTANCE("1", "Moved"));
    struct dr_result res;

    run_msg(state, "s1", v1, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    run_msg(state, "s2", v2, 1772400001000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE event_id = "
                                        "'evt-9' AND summary = 'Weekly v2' AND sequence = 1"),
                     1);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE event_id = "
                                        "'evt-9/2026-03-09T09:00:00Z' AND summary = 'Moved'"),
                     1);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events"), 2);
    free(v1);
    free(v2);
}

/* RFC 5546 3.2.6-3.2.8: REFRESH, COUNTER and DECLINECOUNTER do not change the event; ADD adds an
 * instance and leaves the series as it is; a METHOD outside iTIP is refused with its reason. */
static void test_methods_that_change_nothing(void **state)
{
    static const struct {
        const char *method, *vevent;
    } ignored[] = {
        {"COUNTER", "BEGIN:VEVENT\\r\\nUID:series-9@example.com\\r\\nSEQUENCE:0\\r\\n"
                    "DTSTAMP:20260301T090000Z\\r\\nDTSTART:20260303T150000Z\\r\\n"
                    "DTEND:20260303T160000Z\\r\\nSUMMARY:Counter\\r\\n"
                    "ATTENDEE;PARTSTAT=TENTATIVE:mailto:kim@example.com\\r\\nEND:VEVENT\\r\\n"},
        {"REFRESH", "BEGIN:VEVENT\\r\\nUID:series-9@example.com\\r\\n"
                    "DTSTAMP:20260301T090000Z\\r\\nATTENDEE:mailto:kim@example.com\\r\\n"
                    "ORGANIZER:mailto:dana@example.com\\r\\nEND:VEVENT\\r\\n"},
        {"DECLINECOUNTER", "BEGIN:VEVENT\\r\\nUID:series-9@example.com\\r\\nSEQUENCE:0\\r\\n"
                           "DTSTAMP:20260301T090000Z\\r\\nEND:VEVENT\\r\\n"},
    };
    static const char unchanged[] =
        "SELECT COUNT(*) FROM calendar_events WHERE event_id = 'evt-9' AND deleted = 0 AND "
        "summary = 'Weekly' AND start_at = '2026-03-02T09:00:00Z'";
    char *req = series_msg("REQUEST", SERIES_MASTER("0", "Weekly")), *m;
    struct dr_result res;

    run_msg(state, "s1", req, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    dr_result_cleanup(&res);
    for (size_t i = 0; i < DR_ARRAY_LEN(ignored); i++) {
        m = series_msg(ignored[i].method, ignored[i].vevent);
        run_msg(state, ignored[i].method, m, 1772400005000 + (int64_t)i, &res);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        assert_int_equal(res.nemits, 0);
        dr_result_cleanup(&res);
        assert_int_equal(count_where(state, unchanged), 1);
        free(m);
    }

    m = series_msg("X-MERGE", SERIES_MASTER("3", "Merged"));
    run_msg(state, "x", m, 1772400009000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "unsupported_method");
    assert_non_null(strstr(res.error, "X-MERGE"));
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    free(m);
    assert_int_equal(count_where(state, unchanged), 1);

    m = series_msg("ADD", "BEGIN:VEVENT\\r\\nUID:series-9@example.com\\r\\nSEQUENCE:0\\r\\n"
                          "DTSTAMP:20260301T090000Z\\r\\nDTSTART:20260420T090000Z\\r\\n"
                          "DTEND:20260420T100000Z\\r\\nSUMMARY:Extra\\r\\nEND:VEVENT\\r\\n");
    run_msg(state, "add", m, 1772400010000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(res.nemits, 2);
    dr_result_cleanup(&res);
    free(m);
    assert_int_equal(count_where(state, unchanged), 1);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE event_id = "
                                        "'evt-9/2026-04-20T09:00:00Z' AND summary = 'Extra'"),
                     1);
    free(req);
}

/* An object of two events is applied whole or not at all: when its second VEVENT is invalid, or
 * the store refuses it, the first is not stored either, and nothing is indexed or notified. */
static void test_object_all_or_nothing(void **state)
{
    char summary[1100], vevents[4096], *bad, *good;
    struct dr_result res;

    memset(summary, 'x', sizeof(summary) - 1);
    summary[sizeof(summary) - 1] = '\0';
    snprintf(vevents, sizeof(vevents),
             "BEGIN:VEVENT\\r\\nUID:a@example.com\\r\\nDTSTAMP:20260301T080000Z\\r\\n"
             "DTSTART:20260302T090000Z\\r\\nSUMMARY:First\\r\\nEND:VEVENT\\r\\n"
             "BEGIN:VEVENT\\r\\nUID:b@example.com\\r\\nDTSTAMP:20260301T080000Z\\r\\n"
             "DTSTART:20260302T100000Z\\r\\nSUMMARY:%s\\r\\nEND:VEVENT\\r\\n",
             summary);
    bad = series_msg("PUBLISH", vevents);
    run_msg(state, "p1", bad, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "invalid_ics");
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events"), 0);

    snprintf(vevents, sizeof(vevents),
             "BEGIN:VEVENT\\r\\nUID:a@example.com\\r\\nDTSTAMP:20260301T080000Z\\r\\n"
             "DTSTART:20260302T090000Z\\r\\nSUMMARY:First\\r\\nEND:VEVENT\\r\\n"
             "BEGIN:VEVENT\\r\\nUID:b@example.com\\r\\nDTSTAMP:20260301T080000Z\\r\\n"
             "DTSTART:20260302T100000Z\\r\\nSUMMARY:Second\\r\\nEND:VEVENT\\r\\n");
    good = series_msg("PUBLISH", vevents);
    refuse_inserts(DB(state), "refuse_b", "calendar_events", "event_id", "b@example.com");
    run_msg(state, "p2", good, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "store_refused");
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events"), 0);

    refuse_inserts_drop(DB(state), "refuse_b", "calendar_events");
    run_msg(state, "p2", good, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(res.nemits, 4);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE deleted = 0"),
                     2);
    free(bad);
    free(good);
}

static const char standup[] =
    "{\"user_id\":\"u2\",\"event_id\":\"g-77\",\"event\":{\"summary\":\"Standup\","
    "\"start\":\"2026-03-02T09:00:00Z\",\"end\":\"2026-03-02T09:15:00Z\"}}";

/* The store refuses the event for good (a trigger that raises): the message is rejected on its
 * first attempt, with nothing emitted and nothing of the event in the error; a delete likewise,
 * and a cancelled event, whose write is a delete and is told as one. Once the trigger is gone the
 * same message is stored. */
static void test_refused_write_rejected(void **state)
{
    static const char del[] = "{\"user_id\":\"u2\",\"event_id\":\"g-78\",\"operation\":"
                              "\"delete\"}";
    static const char cancelled[] =
        "{\"user_id\":\"u2\",\"event_id\":\"g-79\",\"event\":{\"summary\":\"Standup\","
        "\"status\":\"cancelled\",\"start\":\"2026-03-02T09:00:00Z\","
        "\"end\":\"2026-03-02T09:15:00Z\"}}";
    struct dr_result res;

    pfx_refuse(state, "calendar_events");
    run_msg(state, "r1", standup, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "store_refused");
    assert_non_null(strstr(res.error, "storing the event"));
    assert_null(strstr(res.error, "Standup"));
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    run_msg(state, "r2", del, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "store_refused");
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    run_msg(state, "r3", cancelled, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "store_refused");
    assert_non_null(strstr(res.error, "deleting the event"));
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events"), 0);

    pfx_allow(state, "calendar_events");
    run_msg(state, "r1", standup, 1772400000000, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_OK);
    assert_int_equal(res.nemits, 2);
    dr_result_cleanup(&res);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events WHERE event_id = "
                                        "'g-77' AND summary = 'Standup'"),
                     1);
}

/* A busy store (another connection holds SQLite's write lock) is no fault of the message: it is
 * retried, not rejected. */
static void test_locked_store_retried(void **state)
{
    struct dr_db_tx *tx = NULL;
    struct dr_db *other = pfx_lock(state, &tx);
    struct dr_result res;

    run_msg(state, "l1", standup, 1772400000000, &res);
    pfx_unlock(other, tx);
    assert_int_equal(res.outcome, DR_OUTCOME_RETRY);
    assert_string_equal(res.reason, "store_error");
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
}

/* A database migrated when the calendar's migration was 210 (inside the meeting polls' range):
 * its 400 runs as a no-op on the existing table and takes 210 off the list. */
static void test_old_migration_number_retired(void **state)
{
    struct dr_proc_env env = {.store = ((struct pfx *)*state)->st, .data_dir = "/tmp"};
    void *again = NULL;
    char err[128];

    assert_int_equal(dr_db_exec(DB(state), "DELETE FROM schema_migrations WHERE version = 400",
                                NULL, 0, NULL, NULL, NULL),
                     DR_OK);
    assert_int_equal(dr_db_exec(DB(state),
                                "INSERT INTO schema_migrations (version, name, applied_ms) "
                                "VALUES (210, 'calendar events', 1)",
                                NULL, 0, NULL, NULL, NULL),
                     DR_OK);
    assert_int_equal(dr_db_exec(DB(state),
                                "INSERT INTO calendar_events (user_id, event_id, updated_ms) "
                                "VALUES ('u', 'e', 1)",
                                NULL, 0, NULL, NULL, NULL),
                     DR_OK);
    assert_int_equal(dr_processor_calendar.init(&env, &again, err, sizeof(err)), 0);
    dr_processor_calendar.destroy(again);
    assert_int_equal(
        count_where(state, "SELECT COUNT(*) FROM schema_migrations WHERE version = 210"), 0);
    assert_int_equal(
        count_where(state, "SELECT COUNT(*) FROM schema_migrations WHERE version = 400"), 1);
    assert_int_equal(count_where(state, "SELECT COUNT(*) FROM calendar_events"), 1);
}

#define CAL_TESTS(X)                                                                               \
    X(test_ics_request_stored_indexed_notified)                                                    \
    X(test_older_sequence_ignored)                                                                 \
    X(test_cancel_and_delete_remove)                                                               \
    X(test_json_event)                                                                             \
    X(test_long_docid_refused_before_writing)                                                      \
    X(test_reply_forwarded_to_poll)                                                                \
    X(test_reply_in_other_calendar_not_forwarded)                                                  \
    X(test_bad_input_rejected)                                                                     \
    X(test_cancel_outranks_older_update)                                                           \
    X(test_late_delete_ignored)                                                                    \
    X(test_cancel_one_instance)                                                                    \
    X(test_cancelled_status_cancels)                                                               \
    X(test_series_keeps_its_key)                                                                   \
    X(test_methods_that_change_nothing)                                                            \
    X(test_object_all_or_nothing)                                                                  \
    X(test_refused_write_rejected)                                                                 \
    X(test_old_migration_number_retired)

int main(void)
{
    const struct CMUnitTest lite[] = {CAL_TESTS(ON_SQLITE) ON_SQLITE(test_locked_store_retried)};
    const struct CMUnitTest pg[] = {CAL_TESTS(ON_PG)};
    int failed = 0;

    failed += cmocka_run_group_tests_name("calendar processor sqlite", lite, NULL, NULL);
    failed += cmocka_run_group_tests_name("calendar processor postgresql", pg, NULL, NULL);
    return failed ? 1 : 0;
}
