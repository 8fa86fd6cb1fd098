/*
 * Tests src/processors/meeting_poll/processor.c and store.c: process() against a real store,
 * SQLite in a temporary directory and PostgreSQL at $DR_TEST_PG_URL (fails when unset).
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
#include "dr/poll_reply.h"
#include "dr/poll_store.h"
#include "dr/processor.h"
#include "dr/store.h"
#include "dr/util.h"
#include "unit/store/backend.h"

extern const struct dr_processor dr_processor_meeting_poll;

#define PFX_PROCESSOR dr_processor_meeting_poll
#include "unit/processors/proc_fixture.h"
#include "unit/processors/store_faults.h"

static struct pfx *P(void **state)
{
    return *state;
}

static struct dr_db *DB(void **state)
{
    return dr_store_db(P(state)->st);
}

/* 2026-03-10T00:00:00Z: the publish time of every message, after every Date the tests give (a
 * message is published after the email it carries was written). */
#define PUBLISH_MS 1773100800000

/* Runs one message published at publish_ms through process(); the caller cleans res up. */
static void run_msg_at(void **state, const char *id, const char *type, const char *json,
                       int64_t publish_ms, struct dr_result *res)
{
    struct dr_msg *m = dr_msg_create(id, "meeting-responses", json, strlen(json), publish_ms);

    dr_msg_add_attr(m, "type", type);
    dr_msg_finish(m, "poll_response", 0);
    dr_result_init(res);
    dr_processor_meeting_poll.process(P(state)->proc, m, res);
    dr_msg_unref(m);
}

/* Runs one message through process(); the caller cleans res up. */
static void run_msg(void **state, const char *id, const char *type, const char *json, int attempt,
                    struct dr_result *res)
{
    struct dr_msg *m = dr_msg_create(id, "meeting-responses", json, strlen(json), PUBLISH_MS);

    dr_msg_add_attr(m, "type", type);
    dr_msg_finish(m, "poll_response", 0);
    m->attempt = attempt;
    dr_result_init(res);
    dr_processor_meeting_poll.process(P(state)->proc, m, res);
    dr_msg_unref(m);
}

static void expect_ok(void **state, const char *id, const char *type, const char *json,
                      struct dr_result *res)
{
    run_msg(state, id, type, json, 1, res);
    if (res->outcome != DR_OUTCOME_OK) {
        fprintf(stderr, "%s: %s %s: %s\n", id, dr_outcome_name(res->outcome), res->reason,
                res->error);
    }
    assert_int_equal(res->outcome, DR_OUTCOME_OK);
}

static void expect_reject(void **state, const char *id, const char *type, const char *json,
                          const char *reason)
{
    struct dr_result res;

    run_msg(state, id, type, json, 1, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, reason);
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
}

/* Mon 2 Mar 10:00, Tue 3 Mar 15:00, Wed 4 Mar 09:30 (UTC+1). */
static const char poll_json[] =
    "{\"poll_id\":\"p-42\",\"organizer_user_id\":\"u1\",\"org_id\":\"o1\","
    "\"title\":\"Planning meeting\",\"slots\":["
    "{\"slot_id\":\"a\",\"start\":\"2026-03-02T10:00:00+01:00\","
    "\"end\":\"2026-03-02T11:00:00+01:00\",\"label\":\"Mon 2 Mar, 10:00\"},"
    "{\"slot_id\":\"b\",\"start\":\"2026-03-03T15:00:00+01:00\","
    "\"end\":\"2026-03-03T16:00:00+01:00\",\"label\":\"Tue 3 Mar, 15:00\","
    "\"uid\":\"slot-b@example.com\"},"
    "{\"slot_id\":\"c\",\"start\":\"2026-03-04T09:30:00+01:00\","
    "\"end\":\"2026-03-04T10:30:00+01:00\"}],"
    "\"participants\":[{\"email\":\"Kim.Lee@Example.com\",\"name\":\"Kim\"},"
    "{\"email\":\"sam@example.org\"}],\"message_id\":\"<poll-42@example.com>\","
    "\"reply_token\":\"tok42\",\"event_uid\":\"poll-42-event@example.com\"}";

#define QUOTE                                                                                      \
    "\\n\\nOn Fri, Feb 27, 2026 at 9:00 AM Dana <dana@example.com> wrote:\\n"                      \
    "> Which times work?\\n> 1. Mon 2 Mar, 10:00\\n> 2. Tue 3 Mar, 15:00\\n> 3. Wed\\n"

/* The organizer's mailbox, which a poll_response_email names (user_id, org_id). */
#define MAILBOX "\"user_id\":\"u1\",\"org_id\":\"o1\","

static void create_poll(void **state)
{
    struct dr_result res;

    expect_ok(state, "create-1", "poll_created", poll_json, &res);
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
}

/* poll_response_email with pre-parsed fields. */
static char *email_json(const char *from, const char *date, const char *msgid, const char *body)
{
    char *s = dr_xmalloc(8192);

    snprintf(s, 8192,
             "{" MAILBOX "\"poll_id\":\"p-42\",\"from\":\"%s\",\"date\":\"%s\","
             "\"message_id\":\"%s\","
             "\"subject\":\"Re: Planning meeting\",\"body_text\":\"%s\"}",
             from, date, msgid, body);
    return s;
}

struct answer {
    char slot[32];
    char answer[16];
    int64_t answered_ms;
    char source[128];
};

struct answers {
    struct answer v[16];
    size_t n;
};

static int take_answers(void *ctx, const struct dr_db_row *row)
{
    struct answers *a = ctx;

    if (a->n < DR_ARRAY_LEN(a->v)) {
        struct answer *x = &a->v[a->n++];
        snprintf(x->slot, sizeof(x->slot), "%s", dr_db_row_text(row, 0));
        snprintf(x->answer, sizeof(x->answer), "%s", dr_db_row_text(row, 1));
        x->answered_ms = dr_db_row_int(row, 2);
        snprintf(x->source, sizeof(x->source), "%s", dr_db_row_text(row, 3));
    }
    return 0;
}

static struct answers answers_of(void **state, const char *email)
{
    struct answers a = {.n = 0};
    struct dr_db_val p[2] = {DR_DB_TEXTV("p-42"), DR_DB_TEXTV(email)};

    assert_int_equal(dr_db_exec(DB(state),
                                "SELECT slot_id, answer, answered_ms, source FROM poll_responses "
                                "WHERE poll_id = $1 AND participant_email = $2 ORDER BY slot_id",
                                p, 2, take_answers, &a, NULL),
                     DR_OK);
    return a;
}

static const char *answer_for(const struct answers *a, const char *slot)
{
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->v[i].slot, slot) == 0) {
            return a->v[i].answer;
        }
    }
    return NULL;
}

static int64_t responded_ms(void **state, const char *email)
{
    struct ints r = {.n = 0};
    struct dr_db_val p[2] = {DR_DB_TEXTV("p-42"), DR_DB_TEXTV(email)};

    assert_int_equal(dr_db_exec(DB(state),
                                "SELECT COALESCE(responded_ms, 0) FROM poll_participants "
                                "WHERE poll_id = $1 AND email = $2",
                                p, 2, collect_int, &r, NULL),
                     DR_OK);
    assert_int_equal(r.n, 1);
    return r.v[0];
}

/* The notification emitted to room, parsed (caller deletes); NULL if none. */
static cJSON *notification(const struct dr_result *res, const char *room)
{
    for (size_t i = 0; i < res->nemits; i++) {
        cJSON *n;
        if (strcmp(res->emits[i].topic, "client-notifications") != 0) {
            continue;
        }
        n = dr_json_parse(res->emits[i].data, res->emits[i].len);
        assert_non_null(n);
        if (dr_json_str(n, "room") && strcmp(dr_json_str(n, "room"), room) == 0) {
            return n;
        }
        cJSON_Delete(n);
    }
    return NULL;
}

static void test_poll_created_stored_once(void **state)
{
    struct dr_result res;
    char *changed = dr_xstrdup(poll_json);
    char *t = strstr(changed, "Planning meeting");

    create_poll(state);
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM polls"), 1);
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM poll_participants"), 2);
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM poll_participants WHERE email = "
                                           "'kim.lee@example.com'"),
                     1);
    /* a second poll_created (replay, or a re-send) changes nothing */
    memcpy(t, "Changed!", 8);
    expect_ok(state, "create-2", "poll_created", changed, &res);
    dr_result_cleanup(&res);
    assert_int_equal(
        count_rows(DB(state), "SELECT COUNT(*) FROM polls WHERE title = 'Planning meeting'"), 1);
    /* poll_updated replaces it */
    expect_ok(state, "update-1", "poll_updated", changed, &res);
    dr_result_cleanup(&res);
    assert_int_equal(
        count_rows(DB(state), "SELECT COUNT(*) FROM polls WHERE title LIKE 'Changed!%'"), 1);
    free(changed);
}

/* poll_json with its first from replaced by to (caller frees). */
static char *poll_with(const char *from, const char *to)
{
    const char *at = strstr(poll_json, from);
    char *s;

    assert_non_null(at);
    s = dr_xmalloc(sizeof(poll_json) + strlen(to));
    sprintf(s, "%.*s%s%s", (int)(at - poll_json), poll_json, to, at + strlen(from));
    return s;
}

/*
 * The keys that route replies (reply_token, message_id, event and slot UIDs) stay with the poll
 * that has them: a definition of another poll (another org) claiming one is refused whole, as
 * is one that reuses a stored poll's id under another organizer. The same poll again
 * (redelivery) is fine.
 */
static void test_poll_keys_not_taken_over(void **state)
{
    /* p-42's keys, each with a same-length replacement of another poll's */
    static const char *const keys[][2] = {
        {"tok42", "tokEV"},
        {"<poll-42@", "<poll-EV@"},
        {"slot-b@", "slot-E@"},
        {"poll-42-event@", "poll-EV-event@"},
    };
    char id[64];
    struct dr_result res;

    create_poll(state);
    for (size_t i = 0; i < DR_ARRAY_LEN(keys); i++) {
        /* p-evil of another org that has p-42's key i and keys of its own otherwise */
        char *evil =
            poll_with("\"poll_id\":\"p-42\",\"organizer_user_id\":\"u1\",\"org_id\":\"o1\"",
                      "\"poll_id\":\"p-evil\",\"organizer_user_id\":\"eve\","
                      "\"org_id\":\"other-org\"");
        for (size_t k = 0; k < DR_ARRAY_LEN(keys); k++) {
            if (k != i) {
                memcpy(strstr(evil, keys[k][0]), keys[k][1], strlen(keys[k][1]));
            }
        }
        for (int update = 0; update < 2; update++) {
            run_msg(state, "evil", update ? "poll_updated" : "poll_created", evil, 1, &res);
            if (res.outcome != DR_OUTCOME_REJECT) {
                fprintf(stderr, "takeover of %s: %s %s\n", keys[i][0], dr_outcome_name(res.outcome),
                        res.reason);
            }
            assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
            assert_string_equal(res.reason, "poll_conflict");
            assert_null(strstr(res.error, "tok42")); /* a reply token is never told */
            assert_non_null(strstr(res.error, "p-42"));
            dr_result_cleanup(&res);
        }
        free(evil);
        assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM polls"), 1);
        assert_int_equal(
            count_rows(DB(state), "SELECT COUNT(*) FROM poll_keys WHERE poll_id <> 'p-42'"), 0);
    }
    assert_int_equal(dr_poll_store_match(P(state)->st, "tok42", NULL, 0, NULL, id, sizeof(id)),
                     DR_OK);
    assert_string_equal(id, "p-42");
    {
        const char *ids[] = {"<poll-42@example.com>"};
        assert_int_equal(dr_poll_store_match(P(state)->st, NULL, ids, 1, NULL, id, sizeof(id)),
                         DR_OK);
        assert_string_equal(id, "p-42");
    }
    assert_int_equal(dr_poll_store_match_uid(P(state)->st, "slot-b@example.com", id, sizeof(id)),
                     DR_OK);
    assert_string_equal(id, "p-42");
    assert_int_equal(
        dr_poll_store_match_uid(P(state)->st, "poll-42-event@example.com", id, sizeof(id)), DR_OK);
    assert_string_equal(id, "p-42");

    /* p-42's id under another organizer or org: refused, p-42 stays u1's in o1 */
    {
        char *other_user =
            poll_with("\"organizer_user_id\":\"u1\"", "\"organizer_user_id\":\"eve\"");
        char *other_org = poll_with("\"org_id\":\"o1\"", "\"org_id\":\"other-org\"");
        expect_reject(state, "c-user", "poll_created", other_user, "poll_conflict");
        expect_reject(state, "u-user", "poll_updated", other_user, "poll_conflict");
        expect_reject(state, "c-org", "poll_created", other_org, "poll_conflict");
        expect_reject(state, "u-org", "poll_updated", other_org, "poll_conflict");
        free(other_user);
        free(other_org);
    }
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM polls WHERE poll_id = 'p-42' AND "
                                           "organizer_user_id = 'u1' AND org_id = 'o1'"),
                     1);

    /* the same poll again, created or updated: accepted, its keys still its own */
    expect_ok(state, "create-again", "poll_created", poll_json, &res);
    dr_result_cleanup(&res);
    expect_ok(state, "update-same", "poll_updated", poll_json, &res);
    dr_result_cleanup(&res);
    {
        char *renamed = poll_with("Planning meeting", "Planning meeting (moved)");
        expect_ok(state, "update-title", "poll_updated", renamed, &res);
        dr_result_cleanup(&res);
        free(renamed);
    }
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM poll_keys WHERE poll_id = 'p-42'"),
                     4);

    /* another org's poll with keys of its own: stored */
    {
        char *other =
            poll_with("\"poll_id\":\"p-42\",\"organizer_user_id\":\"u1\",\"org_id\":\"o1\"",
                      "\"poll_id\":\"p-43\",\"organizer_user_id\":\"eve\","
                      "\"org_id\":\"other-org\"");
        for (size_t k = 0; k < DR_ARRAY_LEN(keys); k++) {
            memcpy(strstr(other, keys[k][0]), keys[k][1], strlen(keys[k][1]));
        }
        expect_ok(state, "p-43", "poll_created", other, &res);
        dr_result_cleanup(&res);
        free(other);
    }
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM poll_keys WHERE poll_id = 'p-43'"),
                     4);
}

static void test_match_lookups(void **state)
{
    char id[64];
    const char *ids[] = {"<other@x>", "poll-42@example.com"};

    create_poll(state);
    assert_int_equal(dr_poll_store_match(P(state)->st, "tok42", NULL, 0, NULL, id, sizeof(id)),
                     DR_OK);
    assert_string_equal(id, "p-42");
    assert_int_equal(dr_poll_store_match(P(state)->st, "nope", ids, 2, NULL, id, sizeof(id)),
                     DR_OK);
    assert_string_equal(id, "p-42");
    assert_int_equal(dr_poll_store_match(P(state)->st, NULL, NULL, 0, "Re: [Poll:p-42] Planning",
                                         id, sizeof(id)),
                     DR_OK);
    assert_string_equal(id, "p-42");
    assert_int_equal(dr_poll_store_match(P(state)->st, NULL, ids, 1, "[poll:p-43]", id, sizeof(id)),
                     DR_ENOTFOUND);
    assert_string_equal(id, "");
    assert_int_equal(dr_poll_store_match(P(state)->st, "tok42", NULL, 0, NULL, id, 3), DR_ETOOBIG);
    assert_int_equal(dr_poll_store_match_uid(P(state)->st, "slot-b@example.com", id, sizeof(id)),
                     DR_OK);
    assert_string_equal(id, "p-42");
}

static void test_email_reply_stored_and_notified(void **state)
{
    struct dr_result res;
    struct answers a;
    cJSON *n, *ans;
    char *js = email_json("Kim Lee <kim.lee+polls@EXAMPLE.com>", "2026-02-27T10:00:00Z",
                          "<r1@example.com>", "1 yes, 2 no, 3 maybe. See you!" QUOTE);

    create_poll(state);
    expect_ok(state, "e1", "poll_response_email", js, &res);
    a = answers_of(state, "kim.lee@example.com");
    assert_int_equal(a.n, 3);
    assert_string_equal(answer_for(&a, "a"), "yes");
    assert_string_equal(answer_for(&a, "b"), "no");
    assert_string_equal(answer_for(&a, "c"), "maybe");
    assert_string_equal(a.v[0].source, "email:r1@example.com");
    assert_int_equal(a.v[0].answered_ms, 1772186400000);
    assert_int_equal(responded_ms(state, "kim.lee@example.com"), 1772186400000);

    assert_int_equal(res.nemits, 2);
    n = notification(&res, "user:u1");
    assert_non_null(n);
    assert_string_equal(dr_json_str(n, "notification_type"), "meeting.response");
    assert_string_equal(dr_json_str(n, "user_id"), "u1");
    assert_string_equal(dr_json_str(n, "org_id"), "o1");
    ans = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(n, "data"), "answers");
    assert_int_equal(cJSON_GetArraySize(ans), 3);
    assert_string_equal(dr_json_str(cJSON_GetArrayItem(ans, 1), "answer"), "no");
    assert_string_equal(dr_json_str(dr_json_pointer(n, "/data/participant"), "email"),
                        "Kim.Lee@Example.com");
    assert_string_equal(dr_json_str(dr_json_pointer(n, "/data"), "comment"), "See you!");
    cJSON_Delete(n);
    n = notification(&res, "meeting:p-42");
    assert_non_null(n);
    assert_string_equal(dr_json_str(n, "notification_type"), "meeting.response");
    cJSON_Delete(n);
    dr_result_cleanup(&res);
    free(js);
}

static void test_reply_resolved_by_in_reply_to_and_raw(void **state)
{
    static const char raw[] = "From: Sam <sam@example.org>\r\n"
                              "To: Dana <polls+tok42@example.com>\r\n"
                              "Subject: Re: Planning meeting\r\n"
                              "Date: Fri, 27 Feb 2026 12:00:00 +0000\r\n"
                              "Message-ID: <raw-1@example.org>\r\n"
                              "In-Reply-To: <poll-42@example.com>\r\n"
                              "\r\n"
                              "Only the Tuesday one works for me.\r\n";
    char *b64 = NULL, js[2048];
    size_t n;
    struct dr_result res;
    struct answers a;

    create_poll(state);
    assert_int_equal(dr_base64url_encode(raw, strlen(raw), &b64, &n), DR_OK);
    snprintf(js, sizeof(js), "{" MAILBOX "\"raw\":\"%s\"}", b64);
    expect_ok(state, "raw1", "poll_response_email", js, &res);
    dr_result_cleanup(&res);
    a = answers_of(state, "sam@example.org");
    assert_true(a.n >= 1);
    assert_string_equal(answer_for(&a, "b"), "yes");
    free(b64);
}

static void test_ics_reply(void **state)
{
    /* slot b by its uid, slot a by its start time; DECLINED and ACCEPTED */
    static const char js[] =
        "{" MAILBOX "\"poll_id\":\"p-42\",\"from\":\"sam@example.org\","
        "\"date\":\"2026-02-27T11:00:00Z\","
        "\"message_id\":\"<ics-1@example.org>\",\"ics\":\"BEGIN:VCALENDAR\\r\\nVERSION:2.0\\r\\n"
        "PRODID:-//t//t//EN\\r\\nMETHOD:REPLY\\r\\nBEGIN:VEVENT\\r\\nUID:slot-b@example.com\\r\\n"
        "DTSTAMP:20260227T110000Z\\r\\nDTSTART:20260303T140000Z\\r\\n"
        "ATTENDEE;PARTSTAT=DECLINED:mailto:sam@example.org\\r\\nEND:VEVENT\\r\\n"
        "BEGIN:VEVENT\\r\\nUID:whatever@example.com\\r\\nDTSTAMP:20260227T110000Z\\r\\n"
        "DTSTART:20260302T090000Z\\r\\nATTENDEE;PARTSTAT=ACCEPTED:mailto:SAM@example.org\\r\\n"
        "END:VEVENT\\r\\nEND:VCALENDAR\\r\\n\"}";
    struct dr_result res;
    struct answers a;
    cJSON *n;

    create_poll(state);
    expect_ok(state, "ics1", "poll_response_email", js, &res);
    a = answers_of(state, "sam@example.org");
    assert_int_equal(a.n, 2);
    assert_string_equal(answer_for(&a, "a"), "yes");
    assert_string_equal(answer_for(&a, "b"), "no");
    n = notification(&res, "user:u1");
    assert_non_null(n);
    assert_string_equal(dr_json_str(dr_json_pointer(n, "/data"), "via"), "ics");
    cJSON_Delete(n);
    dr_result_cleanup(&res);
}

static void test_bad_ics_rejected(void **state)
{
    static const char js[] =
        "{" MAILBOX "\"poll_id\":\"p-42\",\"from\":\"sam@example.org\","
        "\"ics\":\"BEGIN:VCALENDAR\\r\\n"
        "METHOD:REPLY\\r\\nBEGIN:VEVENT\\r\\nDTSTART:2026XX\\r\\nEND:VCALENDAR\\r\\n\"}";

    create_poll(state);
    expect_reject(state, "ics-bad", "poll_response_email", js, "invalid_ics");
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM poll_responses"), 0);
}

static void test_non_participant_rejected(void **state)
{
    char *js = email_json("Mallory <mallory@evil.example>", "2026-02-27T10:00:00Z",
                          "<m1@evil.example>", "1 yes");
    static const char structured[] = "{\"poll_id\":\"p-42\",\"participant_email\":"
                                     "\"kim.lee@example.net\",\"responses\":[{\"slot_id\":\"a\","
                                     "\"answer\":\"yes\"}]}";

    create_poll(state);
    expect_reject(state, "m1", "poll_response_email", js, "not_a_participant");
    expect_reject(state, "m2", "poll_response", structured, "not_a_participant");
    /* an email without any sender is malformed, not someone else's */
    expect_reject(state, "m3", "poll_response_email",
                  "{" MAILBOX "\"poll_id\":\"p-42\",\"body_text\":\"1 yes\"}", "invalid_email");
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM poll_responses"), 0);
    free(js);
}

/*
 * A reply counts only in the mailbox or calendar of the poll's organizer (u1 in o1): one that
 * arrived anywhere else, with a participant's From or ATTENDEE, is rejected and changes nothing.
 */
static void test_reply_in_another_mailbox_rejected(void **state)
{
    static const char *const mailboxes[] = {
        "\"user_id\":\"eve\",\"org_id\":\"other-org\"", /* another org's user */
        "\"user_id\":\"eve\",\"org_id\":\"o1\"",        /* a colleague of the organizer */
        "\"user_id\":\"u1\",\"org_id\":\"other-org\"",  /* the same id in another org */
        "\"user_id\":\"u1\"",                           /* no org, the poll has one */
    };
    static const char ics[] =
        "BEGIN:VCALENDAR\\r\\nVERSION:2.0\\r\\nPRODID:-//t//t//EN\\r\\nMETHOD:REPLY\\r\\n"
        "BEGIN:VEVENT\\r\\nUID:slot-b@example.com\\r\\nDTSTAMP:20260227T110000Z\\r\\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:sam@example.org\\r\\nEND:VEVENT\\r\\nEND:VCALENDAR"
        "\\r\\n";
    char js[2048];
    struct dr_result res;
    struct answers a;

    create_poll(state);
    for (size_t i = 0; i < DR_ARRAY_LEN(mailboxes); i++) {
        snprintf(js, sizeof(js),
                 "{%s,\"poll_id\":\"p-42\",\"from\":\"Kim <kim.lee@example.com>\","
                 "\"date\":\"2026-02-27T10:00:00Z\",\"message_id\":\"<eve-%zu@x>\","
                 "\"body_text\":\"1 yes, 2 yes\"}",
                 mailboxes[i], i);
        expect_reject(state, "eve-mail", "poll_response_email", js, "not_organizer_mailbox");
        snprintf(js, sizeof(js),
                 "{%s,\"poll_id\":\"p-42\",\"from\":\"sam@example.org\","
                 "\"date\":\"2099-01-01T00:00:00Z\",\"ics\":\"%s\",\"source\":\"calendar\"}",
                 mailboxes[i], ics);
        expect_reject(state, "eve-ics", "poll_response_email", js, "not_organizer_mailbox");
    }
    /* a reply by its subject tag alone, no poll_id: the same rule */
    expect_reject(state, "eve-tag", "poll_response_email",
                  "{\"user_id\":\"eve\",\"org_id\":\"other-org\",\"from\":"
                  "\"bob@example.com\",\"subject\":\"Re: [poll:p-42]\",\"body_text\":\"1 yes\"}",
                  "not_organizer_mailbox");
    /* no mailbox named at all */
    expect_reject(state, "anon", "poll_response_email",
                  "{\"poll_id\":\"p-42\",\"from\":\"kim.lee@example.com\",\"body_text\":\"1 yes\"}",
                  "invalid_payload");
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM poll_responses"), 0);
    assert_int_equal(
        count_rows(DB(state),
                   "SELECT COUNT(*) FROM poll_participants WHERE responded_ms IS NOT NULL"),
        0);

    /* the organizer's own mailbox: stored */
    snprintf(js, sizeof(js),
             "{\"user_id\":\"u1\",\"org_id\":\"o1\",\"poll_id\":\"p-42\",\"from\":"
             "\"sam@example.org\",\"date\":\"2026-02-27T11:00:00Z\",\"ics\":\"%s\"}",
             ics);
    expect_ok(state, "u1-ics", "poll_response_email", js, &res);
    dr_result_cleanup(&res);
    a = answers_of(state, "sam@example.org");
    assert_int_equal(a.n, 1);
    assert_string_equal(answer_for(&a, "b"), "yes");
}

/*
 * A From that does not parse cleanly names no sender: GMime read "kim.lee@example.com@evil.com"
 * as Kim's address, and an iCalendar ATTENDEE does not stand in for it.
 */
static void test_malformed_from_rejected(void **state)
{
    static const char *const raws[] = {
        "From: kim.lee@example.com@evil.com\r\nTo: dana@example.com\r\n"
        "Subject: Re: [poll:p-42]\r\nMessage-ID: <bad-1@evil.com>\r\n\r\n1 yes, 2 yes\r\n",
        "From: Kim <kim.lee@example.com> <mallory@evil.com>\r\nTo: dana@example.com\r\n"
        "Subject: Re: [poll:p-42]\r\n\r\n1 yes\r\n",
        "From: kim.lee@example.com@evil.com\r\nTo: dana@example.com\r\n"
        "Subject: Accepted\r\nIn-Reply-To: <poll-42@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/calendar; method=REPLY; charset=utf-8\r\n\r\n"
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nMETHOD:REPLY\r\n"
        "BEGIN:VEVENT\r\nUID:slot-b@example.com\r\nDTSTAMP:20260227T110000Z\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:kim.lee@example.com\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n",
    };
    static const char *const fields[] = {
        "{" MAILBOX "\"poll_id\":\"p-42\",\"from\":\"kim.lee@example.com@evil.com\","
        "\"body_text\":\"1 yes\"}",
        "{" MAILBOX "\"poll_id\":\"p-42\",\"from\":{\"name\":\"Kim\",\"address\":"
        "\"kim.lee@example.com@evil.com\"},\"body_text\":\"1 yes\"}",
    };
    char js[4096], *b64 = NULL;
    size_t n;

    create_poll(state);
    for (size_t i = 0; i < DR_ARRAY_LEN(raws); i++) {
        assert_int_equal(dr_base64url_encode(raws[i], strlen(raws[i]), &b64, &n), DR_OK);
        snprintf(js, sizeof(js), "{" MAILBOX "\"raw\":\"%s\"}", b64);
        free(b64);
        expect_reject(state, "bad-from", "poll_response_email", js, "invalid_email");
    }
    for (size_t i = 0; i < DR_ARRAY_LEN(fields); i++) {
        expect_reject(state, "bad-from", "poll_response_email", fields[i], "invalid_email");
    }
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM poll_responses"), 0);
}

static void test_older_email_after_newer_changes_nothing(void **state)
{
    char *newer =
        email_json("kim.lee@example.com", "2026-02-28T09:00:00Z", "<new@x>", "1 no, 2 yes");
    char *older =
        email_json("kim.lee@example.com", "2026-02-27T09:00:00Z", "<old@x>", "1 yes, 2 no");
    struct dr_result res;
    struct answers before, after;

    create_poll(state);
    expect_ok(state, "new", "poll_response_email", newer, &res);
    dr_result_cleanup(&res);
    before = answers_of(state, "kim.lee@example.com");
    expect_ok(state, "old", "poll_response_email", older, &res);
    assert_int_equal(res.nemits, 0); /* nothing changed: nobody is told */
    dr_result_cleanup(&res);
    after = answers_of(state, "kim.lee@example.com");
    assert_int_equal(after.n, 2);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_string_equal(answer_for(&after, "a"), "no");
    assert_string_equal(answer_for(&after, "b"), "yes");
    assert_int_equal(responded_ms(state, "kim.lee@example.com"), 1772269200000);
    free(newer);
    free(older);
}

static void test_replay_changes_nothing(void **state)
{
    char *js = email_json("kim.lee@example.com", "2026-02-27T09:00:00Z", "<r@x>", "1 yes");
    struct dr_result res;
    struct answers before, after;
    int64_t updated;

    create_poll(state);
    expect_ok(state, "r1", "poll_response_email", js, &res);
    dr_result_cleanup(&res);
    before = answers_of(state, "kim.lee@example.com");
    updated = count_rows(DB(state), "SELECT updated_ms FROM poll_responses");
    /* the same email again under another Pub/Sub id: rows stay as they are */
    expect_ok(state, "r1-again", "poll_response_email", js, &res);
    dr_result_cleanup(&res);
    after = answers_of(state, "kim.lee@example.com");
    assert_int_equal(after.n, 1);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_int_equal(count_rows(DB(state), "SELECT updated_ms FROM poll_responses"), updated);
    free(js);
}

/*
 * A reply dated after it was published (a wrong clock, or a forged Date, answered_at or
 * iCalendar stamp) counts as sent when it was published: it does not outrank the answers its
 * participant sends later. Each way in: Kim answers "1 yes" dated 2099, then "1 no" a day later;
 * the "1 no" stands.
 */
static void test_future_date_does_not_pin_answers(void **state)
{
    static const char ics[] =
        "BEGIN:VCALENDAR\\r\\nVERSION:2.0\\r\\nPRODID:-//t//t//EN\\r\\nMETHOD:REPLY\\r\\n"
        "BEGIN:VEVENT\\r\\nUID:poll-42-event@example.com\\r\\nDTSTAMP:20990101T000000Z\\r\\n"
        "LAST-MODIFIED:20990101T000000Z\\r\\nDTSTART:20260302T090000Z\\r\\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:kim.lee@example.com\\r\\nEND:VEVENT\\r\\n"
        "END:VCALENDAR\\r\\n";
    static const char structured[] =
        "{\"poll_id\":\"p-42\",\"participant_email\":\"kim.lee@example.com\",\"responses\":["
        "{\"slot_id\":\"a\",\"answer\":\"yes\"}],\"answered_at\":\"2099-01-01T00:00:00Z\"}";
    char *later = email_json("kim.lee@example.com", "2026-03-10T12:00:00Z", "<later@x>", "1 no");
    char *email = email_json("kim.lee@example.com", "2099-01-01T00:00:00Z", "<future@x>", "1 yes");
    char pinned[3][4096];

    /* the email's Date; the date a calendar gives the REPLY it forwards; answered_at */
    snprintf(pinned[0], sizeof(pinned[0]), "%s", email);
    snprintf(pinned[1], sizeof(pinned[1]),
             "{" MAILBOX "\"poll_id\":\"p-42\",\"from\":\"kim.lee@example.com\","
             "\"date\":\"2099-01-01T00:00:00Z\",\"ics\":\"%s\",\"source\":\"calendar\"}",
             ics);
    snprintf(pinned[2], sizeof(pinned[2]), "%s", structured);
    create_poll(state);
    for (size_t i = 0; i < DR_ARRAY_LEN(pinned); i++) {
        struct dr_result res;
        struct answers a;

        assert_int_equal(
            dr_db_exec(DB(state), "DELETE FROM poll_responses", NULL, 0, NULL, NULL, NULL), DR_OK);
        run_msg_at(state, "pin", i == 2 ? "poll_response" : "poll_response_email", pinned[i],
                   PUBLISH_MS, &res);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        dr_result_cleanup(&res);
        assert_string_equal(answer_for((a = answers_of(state, "kim.lee@example.com"), &a), "a"),
                            "yes");
        /* a day later, dated after the first was published */
        run_msg_at(state, "later", "poll_response_email", later, PUBLISH_MS + 86400000, &res);
        assert_int_equal(res.outcome, DR_OUTCOME_OK);
        dr_result_cleanup(&res);
        a = answers_of(state, "kim.lee@example.com");
        if (!answer_for(&a, "a") || strcmp(answer_for(&a, "a"), "no") != 0) {
            print_message("way %zu: slot a is \"%s\" answered at %lld after the later \"no\"\n", i,
                          answer_for(&a, "a") ? answer_for(&a, "a") : "(none)",
                          (long long)a.v[0].answered_ms);
        }
        assert_string_equal(answer_for(&a, "a"), "no");
    }
    free(email);
    free(later);
}

struct comment {
    char text[128];
    int64_t ms;
    char source[128];
};

static int take_comment(void *ctx, const struct dr_db_row *row)
{
    struct comment *c = ctx;

    snprintf(c->text, sizeof(c->text), "%s", dr_db_row_text(row, 0) ? dr_db_row_text(row, 0) : "");
    c->ms = dr_db_row_int(row, 1);
    snprintf(c->source, sizeof(c->source), "%s",
             dr_db_row_text(row, 2) ? dr_db_row_text(row, 2) : "");
    return 0;
}

static struct comment comment_of(void **state, const char *email)
{
    struct comment c = {.ms = -1};
    struct dr_db_val p[2] = {DR_DB_TEXTV("p-42"), DR_DB_TEXTV(email)};

    assert_int_equal(dr_db_exec(DB(state),
                                "SELECT comment, comment_ms, comment_source FROM poll_participants"
                                " WHERE poll_id = $1 AND email = $2",
                                p, 2, take_comment, &c, NULL),
                     DR_OK);
    return c;
}

/*
 * Two replies with the same Date, each with answers and a comment: the one with the greater
 * source wins the comment as it wins the answers, in either processing order. Kim's arrive
 * a-then-b, Sam's b-then-a; both end with b's answer and b's comment, and the notification of b
 * processed second carries b's comment.
 */
static void test_equal_dates_comment_follows_answers(void **state)
{
    static const char date[] = "2026-02-27T09:00:00Z";
    char *kim_a = email_json("kim.lee@example.com", date, "<a-kim@x>", "1 yes. Mornings suit me.");
    char *kim_b = email_json("kim.lee@example.com", date, "<b-kim@x>", "1 no. Afternoons suit me.");
    char *sam_b = email_json("sam@example.org", date, "<b-sam@x>", "1 no. Afternoons suit me.");
    char *sam_a = email_json("sam@example.org", date, "<a-sam@x>", "1 yes. Mornings suit me.");
    const char *emails[] = {"kim.lee@example.com", "sam@example.org"};
    struct dr_result res;
    cJSON *n;

    create_poll(state);
    expect_ok(state, "kim-a", "poll_response_email", kim_a, &res);
    dr_result_cleanup(&res);
    expect_ok(state, "kim-b", "poll_response_email", kim_b, &res);
    n = notification(&res, "user:u1");
    assert_non_null(n);
    assert_string_equal(dr_json_str(dr_json_pointer(n, "/data"), "comment"), "Afternoons suit me.");
    cJSON_Delete(n);
    dr_result_cleanup(&res);
    expect_ok(state, "sam-b", "poll_response_email", sam_b, &res);
    dr_result_cleanup(&res);
    expect_ok(state, "sam-a", "poll_response_email", sam_a, &res);
    assert_int_equal(res.nemits, 0); /* it changed nothing */
    dr_result_cleanup(&res);

    for (size_t i = 0; i < DR_ARRAY_LEN(emails); i++) {
        struct answers a = answers_of(state, emails[i]);
        struct comment c = comment_of(state, emails[i]);
        assert_int_equal(a.n, 1);
        assert_string_equal(answer_for(&a, "a"), "no");
        assert_string_equal(c.text, "Afternoons suit me.");
        assert_int_equal(c.ms, a.v[0].answered_ms);
        assert_string_equal(c.source, a.v[0].source);
    }
    free(kim_a);
    free(kim_b);
    free(sam_b);
    free(sam_a);
}

static void test_structured_response(void **state)
{
    static const char ok[] =
        "{\"poll_id\":\"p-42\",\"participant_email\":\"SAM@example.org\",\"responses\":["
        "{\"slot_id\":\"a\",\"answer\":\"maybe\"},{\"slot_id\":\"c\",\"answer\":\"no\"},"
        "{\"slot_id\":\"a\",\"answer\":\"yes\"}],\"comment\":\"late start please\","
        "\"answered_at\":\"2026-02-27T08:00:00Z\"}";
    static const char bad_slot[] = "{\"poll_id\":\"p-42\",\"participant_email\":"
                                   "\"sam@example.org\",\"responses\":[{\"slot_id\":\"zz\","
                                   "\"answer\":\"yes\"}]}";
    static const char bad_answer[] = "{\"poll_id\":\"p-42\",\"participant_email\":"
                                     "\"sam@example.org\",\"responses\":[{\"slot_id\":\"a\","
                                     "\"answer\":\"perhaps\"}]}";
    static const char no_email[] = "{\"poll_id\":\"p-42\",\"responses\":[]}";
    struct dr_result res;
    struct answers a;
    cJSON *n;

    create_poll(state);
    expect_ok(state, "s1", "poll_response", ok, &res);
    a = answers_of(state, "sam@example.org");
    assert_int_equal(a.n, 2);
    assert_string_equal(answer_for(&a, "a"), "yes"); /* the later statement wins */
    assert_string_equal(answer_for(&a, "c"), "no");
    assert_string_equal(a.v[0].source, "msg:s1");
    n = notification(&res, "meeting:p-42");
    assert_non_null(n);
    assert_string_equal(dr_json_str(dr_json_pointer(n, "/data"), "comment"), "late start please");
    cJSON_Delete(n);
    dr_result_cleanup(&res);
    expect_reject(state, "s2", "poll_response", bad_slot, "unknown_slot");
    expect_reject(state, "s3", "poll_response", bad_answer, "invalid_response");
    expect_reject(state, "s4", "poll_response", no_email, "invalid_response");
}

static void test_unknown_poll_retried_then_rejected(void **state)
{
    static const char js[] = "{\"poll_id\":\"p-404\",\"participant_email\":\"sam@example.org\","
                             "\"responses\":[{\"slot_id\":\"a\",\"answer\":\"yes\"}]}";
    static const char unresolved[] =
        "{" MAILBOX "\"from\":\"sam@example.org\",\"subject\":\"hello\","
        "\"body_text\":\"1 yes\"}";
    struct dr_result res;

    run_msg(state, "u1", "poll_response", js, 1, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_RETRY);
    assert_string_equal(res.reason, "unknown_poll");
    dr_result_cleanup(&res);
    run_msg(state, "u1", "poll_response", js, 3, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "unknown_poll");
    dr_result_cleanup(&res);
    run_msg(state, "u2", "poll_response_email", unresolved, 3, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "unknown_poll");
    dr_result_cleanup(&res);
}

static void test_bad_input_rejected(void **state)
{
    static const char no_slots[] = "{\"poll_id\":\"p-9\",\"organizer_user_id\":\"u\","
                                   "\"slots\":[],\"participants\":[]}";
    static const char no_org[] = "{\"poll_id\":\"p-9\",\"slots\":[{\"slot_id\":\"a\","
                                 "\"start\":\"2026-03-02T10:00:00Z\"}]}";
    static const char bad_raw[] = "{" MAILBOX "\"poll_id\":\"p-42\",\"raw\":\"%%%not base64\"}";
    static const char quoted_only[] =
        "{" MAILBOX "\"poll_id\":\"p-42\",\"from\":\"sam@example.org\","
        "\"body_text\":\"\\n> 1 yes\\n> 2 no\\n\"}";

    expect_reject(state, "b1", "poll_created", no_slots, "invalid_poll");
    expect_reject(state, "b2", "poll_created", no_org, "invalid_poll");
    expect_reject(state, "b3", "poll_created", "[1,2]", "invalid_payload");
    expect_reject(state, "b4", "poll_created", "not json", "invalid_payload");
    expect_reject(state, "b5", "poll_exploded", "{}", "unsupported_type");
    create_poll(state);
    expect_reject(state, "b6", "poll_response_email", bad_raw, "invalid_email");
    expect_reject(state, "b7", "poll_response_email", quoted_only, "no_answer");
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM polls"), 1);
}

static const char sam_yes[] = "{\"poll_id\":\"p-42\",\"participant_email\":\"sam@example.org\","
                              "\"responses\":[{\"slot_id\":\"a\",\"answer\":\"yes\"}]}";

/* The store refuses a poll, then answers, for good (a trigger that raises): each message is
 * rejected on its first attempt, nothing of it stored or notified and no address in the error.
 * Once the trigger is gone the same messages are stored. A stored definition that no longer
 * parses is still invalid_poll, not a store refusal. */
static void test_refused_write_rejected(void **state)
{
    struct dr_result res;
    struct answers a;
    cJSON *n;

    pfx_refuse(state, "polls");
    run_msg(state, "create-1", "poll_created", poll_json, 1, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "store_refused");
    assert_non_null(strstr(res.error, "storing the poll"));
    dr_result_cleanup(&res);
    assert_int_equal(count_rows(DB(state), "SELECT COUNT(*) FROM polls"), 0);
    pfx_allow(state, "polls");
    create_poll(state);

    pfx_refuse(state, "poll_responses");
    run_msg(state, "r1", "poll_response", sam_yes, 1, &res);
    assert_int_equal(res.outcome, DR_OUTCOME_REJECT);
    assert_string_equal(res.reason, "store_refused");
    assert_non_null(strstr(res.error, "storing answers"));
    assert_null(strstr(res.error, "sam"));
    assert_int_equal(res.nemits, 0);
    dr_result_cleanup(&res);
    assert_int_equal(answers_of(state, "sam@example.org").n, 0);
    pfx_allow(state, "poll_responses");
    expect_ok(state, "r1", "poll_response", sam_yes, &res);
    n = notification(&res, "meeting:p-42");
    assert_non_null(n);
    cJSON_Delete(n);
    dr_result_cleanup(&res);
    a = answers_of(state, "sam@example.org");
    assert_int_equal(a.n, 1);
    assert_string_equal(answer_for(&a, "a"), "yes");

    assert_int_equal(
        dr_db_exec(DB(state), "UPDATE polls SET definition = '{}'", NULL, 0, NULL, NULL, NULL),
        DR_OK);
    expect_reject(state, "r2", "poll_response", sam_yes, "invalid_poll");

    /* a stored definition over the limits (they were lowered after it was stored) is the
     * definition's fault too: invalid_poll, not a store refusal */
    {
        struct dr_buf def;
        struct dr_db_val p[1];

        dr_buf_init(&def, SIZE_MAX);
        dr_buf_appends(&def, "{\"poll_id\":\"p-42\",\"organizer_user_id\":\"u1\",\"org_id\":\"o1\","
                             "\"title\":\"Too many slots\",\"slots\":[");
        for (int i = 0; i <= DR_POLL_MAX_SLOTS; i++) {
            dr_buf_printf(&def,
                          "%s{\"slot_id\":\"s%d\",\"start\":\"2026-03-02T10:00:00+01:00\","
                          "\"end\":\"2026-03-02T11:00:00+01:00\"}",
                          i ? "," : "", i);
        }
        dr_buf_appends(&def, "],\"participants\":[{\"email\":\"sam@example.org\"}]}");
        p[0] = DR_DB_TEXTV(def.data);
        assert_int_equal(
            dr_db_exec(DB(state), "UPDATE polls SET definition = $1", p, 1, NULL, NULL, NULL),
            DR_OK);
        dr_buf_cleanup(&def);
        expect_reject(state, "r3", "poll_response", sam_yes, "invalid_poll");
    }
}

/* A busy store (another connection holds SQLite's write lock) is retried, not rejected. */
static void test_locked_store_retried(void **state)
{
    struct dr_db_tx *tx = NULL;
    struct dr_db *other = pfx_lock(state, &tx);
    struct dr_result res;

    run_msg(state, "create-1", "poll_created", poll_json, 1, &res);
    pfx_unlock(other, tx);
    assert_int_equal(res.outcome, DR_OUTCOME_RETRY);
    assert_string_equal(res.reason, "store_error");
    dr_result_cleanup(&res);
}

#define POLL_TESTS(X)                                                                              \
    X(test_poll_created_stored_once)                                                               \
    X(test_match_lookups)                                                                          \
    X(test_poll_keys_not_taken_over)                                                               \
    X(test_email_reply_stored_and_notified)                                                        \
    X(test_reply_resolved_by_in_reply_to_and_raw)                                                  \
    X(test_ics_reply)                                                                              \
    X(test_bad_ics_rejected)                                                                       \
    X(test_non_participant_rejected)                                                               \
    X(test_reply_in_another_mailbox_rejected)                                                      \
    X(test_malformed_from_rejected)                                                                \
    X(test_older_email_after_newer_changes_nothing)                                                \
    X(test_replay_changes_nothing)                                                                 \
    X(test_future_date_does_not_pin_answers)                                                       \
    X(test_equal_dates_comment_follows_answers)                                                    \
    X(test_structured_response)                                                                    \
    X(test_unknown_poll_retried_then_rejected)                                                     \
    X(test_bad_input_rejected)                                                                     \
    X(test_refused_write_rejected)

int main(void)
{
    const struct CMUnitTest lite[] = {POLL_TESTS(ON_SQLITE) ON_SQLITE(test_locked_store_retried)};
    const struct CMUnitTest pg[] = {POLL_TESTS(ON_PG)};
    int failed = 0;

    failed += cmocka_run_group_tests_name("meeting_poll processor sqlite", lite, NULL, NULL);
    failed += cmocka_run_group_tests_name("meeting_poll processor postgresql", pg, NULL, NULL);
    return failed ? 1 : 0;
}
