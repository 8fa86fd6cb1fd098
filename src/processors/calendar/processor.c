/*
 * The calendar processor (topic calendar-updates, type calendar_event, DESIGN §5): payload
 * {user_id, org_id, calendar_id, event_id, operation: upsert|delete, event{...} | ics}.
 *
 *   event{}             one event as JSON: uid, summary, start, end, status, rrule, sequence,
 *                       updated; start/end as RFC 3339 strings or {utc|dateTime|date|value}.
 *   ics                 raw iCalendar through dr_ics_parse(): PUBLISH, REQUEST (or no METHOD)
 *                       upsert every VEVENT; ADD upserts each as an instance of its series
 *                       (RFC 5546 3.2.4); CANCEL deletes them; REPLY stores nothing here,
 *                       tells the user, and when its UID belongs to a meeting poll is forwarded
 *                       to meeting-responses as a poll_response_email (the poll reads PARTSTAT);
 *                       REFRESH, COUNTER and DECLINECOUNTER change nothing (3.2.6-3.2.8: only
 *                       the organizer's next REQUEST would) and are acknowledged with a log
 *                       line; any other METHOD is rejected (unsupported_method).
 *
 * Each event is a row of calendar_events keyed by (user_id, event_id). In iCalendar a series is
 * keyed by the payload's event_id when the object holds that one series (one UID), else by its
 * UID, and an overridden instance (RECURRENCE-ID) by "<series key>/<RECURRENCE-ID>": a series and
 * each instance keep their keys whether they come alone or together. A JSON event is keyed by the
 * payload's event_id (else its uid, plus "/recurrence_id" for an instance). An update, a delete
 * or a CANCEL applies only when its (SEQUENCE, updated time) is not older than the row's (a
 * delete without a SEQUENCE: its time), so replays and late deliveries never roll an event back
 * or delete a newer one; a delete leaves a tombstone. An event whose status is cancelled
 * (STATUS:CANCELLED, JSON "cancelled") is deleted as a CANCEL would delete it. The search index
 * gets a put for the current version (remove on delete) and the user a calendar.updated
 * notification on room user:{user_id}. The VEVENTs of one object are all checked first and written
 * in one transaction: all of them apply, or none (and nothing is indexed or notified).
 *
 * Rejections: invalid_payload, invalid_event, invalid_ics (with the parser's reason),
 * unsupported_method (an iCalendar METHOD this processor does not apply), and
 * store_refused when the store refuses the event for good (a constraint or trigger on
 * calendar_events, a value it cannot hold). Other store failures are retried (store_error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/err.h"
#include "dr/ics.h"
#include "dr/index.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/poll_store.h"
#include "dr/processor.h"
#include "dr/store.h"
#include "dr/util.h"

#define COMP       "processor.calendar"
#define MAX_ID     1024
#define MAX_TEXT   (64 * 1024)
#define MAX_EVENTS 500 /* VEVENTs handled from one iCalendar object */
#define POLL_TOPIC "meeting-responses"

/* v400: one row per event the router has seen, deleted ones kept as tombstones so a late
 * update cannot bring them back. It was 210, inside the meeting polls' range, before the
 * calendar had a range of its own: IF NOT EXISTS makes it a no-op where 210 ran, and it takes
 * 210 off the list, which would otherwise read as a newer meeting-poll schema. */
static const char v400_sqlite[] =
    "CREATE TABLE IF NOT EXISTS calendar_events ("
    " user_id TEXT NOT NULL, event_id TEXT NOT NULL, calendar_id TEXT, uid TEXT, summary TEXT,"
    " start_at TEXT, end_at TEXT, status TEXT, rrule TEXT,"
    " sequence INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL,"
    " deleted INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (user_id, event_id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS calendar_events_uid ON calendar_events (uid);"
    "DELETE FROM schema_migrations WHERE version = 210";

static const char v400_postgres[] =
    "CREATE TABLE IF NOT EXISTS calendar_events ("
    " user_id TEXT NOT NULL, event_id TEXT NOT NULL, calendar_id TEXT, uid TEXT, summary TEXT,"
    " start_at TEXT, end_at TEXT, status TEXT, rrule TEXT,"
    " sequence BIGINT NOT NULL DEFAULT 0, updated_ms BIGINT NOT NULL,"
    " deleted INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (user_id, event_id));"
    "CREATE INDEX IF NOT EXISTS calendar_events_uid ON calendar_events (uid);"
    "DELETE FROM schema_migrations WHERE version = 210";

static const struct dr_db_migration migrations[] = {
    {400, "calendar events", v400_sqlite, v400_postgres},
};

struct cal_proc {
    struct dr_store *store;
};

static int init(const struct dr_proc_env *env, void **state, char *err, size_t errsz)
{
    struct cal_proc *cp;
    int rc;

    if (!env->store) {
        snprintf(err, errsz, "no store");
        return -1;
    }
    rc = dr_poll_store_migrate(env->store); /* REPLY lookups by UID */
    if (!rc) {
        rc = dr_db_migrate(dr_store_db(env->store), migrations, DR_ARRAY_LEN(migrations));
    }
    if (rc) {
        snprintf(err, errsz, "calendar tables: %s", dr_strerror(rc));
        return -1;
    }
    cp = dr_xcalloc(1, sizeof(*cp));
    cp->store = env->store;
    *state = cp;
    return 0;
}

static void destroy(void *state)
{
    free(state);
}

/* The common fields of the message. */
struct ctx {
    struct cal_proc *cp;
    const struct dr_msg *msg;
    struct dr_result *res;
    const char *user_id, *org_id, *calendar_id;
    const char *method; /* iTIP METHOD or NULL */
};

/* One event, normalised from JSON or iCalendar. Strings point into the source JSON. */
struct event {
    char event_id[MAX_ID + 1 + 64]; /* an id, "/" and a RECURRENCE-ID */
    const char *uid, *summary, *description, *location, *status;
    char start[64], end[64];
    int all_day;
    char *rrule; /* malloc'ed, ";"-joined rules of an RRULE list, or NULL */
    int64_t sequence;
    int has_sequence; /* a SEQUENCE was given (always, for iCalendar: absent is 0) */
    int64_t updated_ms;
    const cJSON *src; /* the event object (attendees, organizer) */
};

static int str_ok(const cJSON *o, const char *key, size_t max, int required)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!v || cJSON_IsNull(v)) {
        return !required;
    }
    return cJSON_IsString(v) && (!required || v->valuestring[0]) && strlen(v->valuestring) <= max;
}

/* Whether s is an RFC 3339 date ("2026-03-02"), date-time with Z or an offset, or a local
 * date-time without one (a time in the event's zone, or floating). */
static int time_ok(const char *s)
{
    size_t n = strlen(s);
    char buf[72];
    int64_t ms;

    if (n == 10) {
        snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
        return dr_parse_time(buf, &ms) == DR_OK;
    }
    if (dr_parse_time(s, &ms) == DR_OK) {
        return 1;
    }
    /* no zone: only digits (or a fraction) end the text */
    if (n < 19 || n > 60 || s[n - 1] < '0' || s[n - 1] > '9') {
        return 0;
    }
    snprintf(buf, sizeof(buf), "%sZ", s);
    return dr_parse_time(buf, &ms) == DR_OK;
}

/* A time as text: an RFC 3339 / date string, or an object with utc, dateTime, date or value. */
static int time_text(const cJSON *v, char *out, size_t sz, int *all_day)
{
    static const char *const keys[] = {"utc", "dateTime", "date", "value"};
    const char *s = NULL;

    *out = '\0';
    if (!v || cJSON_IsNull(v)) {
        return 0;
    }
    if (cJSON_IsString(v)) {
        s = v->valuestring;
    } else if (cJSON_IsObject(v)) {
        for (size_t i = 0; !s && i < DR_ARRAY_LEN(keys); i++) {
            s = dr_json_str(v, keys[i]);
        }
        *all_day = *all_day || dr_json_true(v, "all_day") || (s && s == dr_json_str(v, "date"));
    }
    if (!s || !*s || strlen(s) >= sz || !time_ok(s)) {
        return -1;
    }
    if (strlen(s) == 10) {
        *all_day = 1;
    }
    snprintf(out, sz, "%s", s);
    return 0;
}

static char *join_rrule(const cJSON *r)
{
    const cJSON *it;
    size_t n = 0;
    char *s;

    if (cJSON_IsString(r)) {
        return strlen(r->valuestring) <= MAX_TEXT ? dr_xstrdup(r->valuestring) : NULL;
    }
    cJSON_ArrayForEach(it, (cJSON_IsArray(r) ? r : NULL))
    {
        if (cJSON_IsString(it)) {
            n += strlen(it->valuestring) + 1;
        }
    }
    if (!n || n > MAX_TEXT) {
        return NULL;
    }
    s = dr_xcalloc(1, n + 1);
    cJSON_ArrayForEach(it, r)
    {
        if (cJSON_IsString(it)) {
            if (*s) {
                strcat(s, "\n");
            }
            strcat(s, it->valuestring);
        }
    }
    return s;
}

/*
 * Fills e from an event object (JSON payload or dr_ics_parse output). Its key is event_id when
 * given, else the uid; with per_instance (iCalendar, where event_id names the series) an
 * overridden instance adds "/RECURRENCE-ID" to either. 0, or -1 with a reason.
 */
static int event_from_json(const struct ctx *c, const cJSON *ev, const char *event_id,
                           int per_instance, struct event *e, const char **why)
{
    static const char *const text_keys[] = {"uid", "summary", "description", "location", "status"};
    const char *updated =
        dr_json_str(ev, "updated") ? dr_json_str(ev, "updated") : dr_json_str(ev, "last_modified");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(ev, "sequence");
    const char *uid = dr_json_str(ev, "uid");
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(ev, "recurrence_id");
    char ridtext[64] = "";
    int dummy = 0;

    memset(e, 0, sizeof(*e));
    for (size_t i = 0; i < DR_ARRAY_LEN(text_keys); i++) {
        if (!str_ok(ev, text_keys[i], i == 2 ? MAX_TEXT : MAX_ID, 0)) {
            *why = "uid, summary, description, location and status must be strings within limits";
            return -1;
        }
    }
    e->uid = uid;
    e->summary = dr_json_str(ev, "summary");
    e->description = dr_json_str(ev, "description");
    e->location = dr_json_str(ev, "location");
    e->status = dr_json_str(ev, "status");
    e->src = ev;
    if (time_text(cJSON_GetObjectItemCaseSensitive(ev, "start"), e->start, sizeof(e->start),
                  &e->all_day) ||
        time_text(cJSON_GetObjectItemCaseSensitive(ev, "end"), e->end, sizeof(e->end),
                  &e->all_day) ||
        time_text(rid, ridtext, sizeof(ridtext), &dummy)) {
        *why = "start/end: an RFC 3339 string or {utc|dateTime|date|value}";
        return -1;
    }
    if (seq && !cJSON_IsNull(seq)) {
        if (!cJSON_IsNumber(seq) || seq->valuedouble < 0 || seq->valuedouble > 2147483647.0) {
            *why = "sequence: a non-negative integer";
            return -1;
        }
        e->sequence = (int64_t)seq->valuedouble;
        e->has_sequence = 1;
    }
    e->updated_ms = c->msg->publish_time_ms > 0 ? c->msg->publish_time_ms : dr_now_ms();
    if (updated && dr_parse_time(updated, &e->updated_ms)) {
        *why = "updated: not an RFC 3339 time";
        return -1;
    }
    if (!event_id && !uid) {
        *why = "event_id (or the event's uid) is required";
        return -1;
    }
    if (ridtext[0] && (per_instance || !event_id)) {
        snprintf(e->event_id, sizeof(e->event_id), "%s/%s", event_id ? event_id : uid, ridtext);
    } else {
        snprintf(e->event_id, sizeof(e->event_id), "%s", event_id ? event_id : uid);
    }
    e->rrule = join_rrule(cJSON_GetObjectItemCaseSensitive(ev, "rrule"));
    return 0;
}

struct row_state {
    int found;
    int64_t sequence, updated_ms, deleted;
};

static int take_state(void *ctx, const struct dr_db_row *row)
{
    struct row_state *s = ctx;

    s->found = 1;
    s->sequence = dr_db_row_int(row, 0);
    s->updated_ms = dr_db_row_int(row, 1);
    s->deleted = dr_db_row_int(row, 2);
    return 0;
}

/* Upserts e unless the row holds a newer version. *current: the row now holds e. */
static int upsert_row(const struct ctx *c, struct dr_db_tx *tx, const struct event *e, int *current)
{
    struct dr_db_val p[11] = {
        DR_DB_TEXTV(c->user_id),
        DR_DB_TEXTV(e->event_id),
        DR_DB_TEXTV(c->calendar_id),
        DR_DB_TEXTV(e->uid),
        DR_DB_TEXTV(e->summary),
        DR_DB_TEXTV(e->start[0] ? e->start : NULL),
        DR_DB_TEXTV(e->end[0] ? e->end : NULL),
        DR_DB_TEXTV(e->status),
        DR_DB_TEXTV(e->rrule),
        DR_DB_INTV(e->sequence),
        DR_DB_INTV(e->updated_ms),
    };
    struct row_state st = {0};
    int err;

    err = dr_db_tx_exec(
        tx,
        "INSERT INTO calendar_events (user_id, event_id, calendar_id, uid, summary, start_at,"
        " end_at, status, rrule, sequence, updated_ms, deleted)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0) "
        "ON CONFLICT (user_id, event_id) DO UPDATE SET calendar_id = excluded.calendar_id,"
        " uid = excluded.uid, summary = excluded.summary, start_at = excluded.start_at,"
        " end_at = excluded.end_at, status = excluded.status, rrule = excluded.rrule,"
        " sequence = excluded.sequence, updated_ms = excluded.updated_ms, deleted = 0 "
        "WHERE calendar_events.sequence < excluded.sequence"
        " OR (calendar_events.sequence = excluded.sequence"
        " AND calendar_events.updated_ms <= excluded.updated_ms"
        " AND calendar_events.deleted = 0)",
        p, DR_ARRAY_LEN(p), NULL, NULL, NULL);
    if (!err) {
        err = dr_db_tx_exec(tx,
                            "SELECT sequence, updated_ms, deleted FROM calendar_events "
                            "WHERE user_id = $1 AND event_id = $2",
                            p, 2, take_state, &st, NULL);
    }
    *current = !err && st.found && !st.deleted && st.sequence == e->sequence &&
               st.updated_ms == e->updated_ms;
    return err;
}

/*
 * Marks the event deleted (a tombstone when it was never seen), unless the row holds a newer
 * version: a higher SEQUENCE, or the same one updated later (RFC 5546 2.1.5: a CANCEL with a
 * lower SEQUENCE is out of date). A delete without a SEQUENCE is ordered by its time alone.
 * *applied: the row is now the delete's tombstone.
 */
static int delete_row(const struct ctx *c, struct dr_db_tx *tx, const struct event *e, int *applied)
{
    struct dr_db_val p[7] = {DR_DB_TEXTV(c->user_id),     DR_DB_TEXTV(e->event_id),
                             DR_DB_TEXTV(c->calendar_id), DR_DB_TEXTV(e->uid),
                             DR_DB_INTV(e->sequence),     DR_DB_INTV(e->updated_ms),
                             DR_DB_INTV(e->has_sequence)};
    int64_t changes = 0;
    int err;

    err = dr_db_tx_exec(tx,
                        "INSERT INTO calendar_events (user_id, event_id, calendar_id, uid, status,"
                        " sequence, updated_ms, deleted)"
                        " VALUES ($1, $2, $3, $4, 'CANCELLED', $5, $6, 1) "
                        "ON CONFLICT (user_id, event_id) DO UPDATE SET status = 'CANCELLED',"
                        " deleted = 1, updated_ms = excluded.updated_ms,"
                        /* the tombstone outranks every version up to the delete's SEQUENCE */
                        " sequence = CASE WHEN excluded.sequence > calendar_events.sequence"
                        " THEN excluded.sequence ELSE calendar_events.sequence END "
                        "WHERE ($7 <> 0 AND (calendar_events.sequence < excluded.sequence"
                        " OR (calendar_events.sequence = excluded.sequence"
                        " AND calendar_events.updated_ms <= excluded.updated_ms)))"
                        " OR ($7 = 0 AND calendar_events.updated_ms <= excluded.updated_ms)",
                        p, DR_ARRAY_LEN(p), NULL, NULL, &changes);
    *applied = !err && changes > 0;
    return err;
}

static cJSON *index_fields(const struct ctx *c, const struct event *e)
{
    cJSON *f = cJSON_CreateObject();
    cJSON *emails = cJSON_CreateArray();
    const cJSON *att, *org = cJSON_GetObjectItemCaseSensitive(e->src, "organizer");

    cJSON_AddStringToObject(f, "user_id", c->user_id);
    if (c->org_id) {
        cJSON_AddStringToObject(f, "org_id", c->org_id);
    }
    if (c->calendar_id) {
        cJSON_AddStringToObject(f, "calendar_id", c->calendar_id);
    }
    cJSON_AddStringToObject(f, "event_id", e->event_id);
#define ADD_OPT(key, val)                                                                          \
    do {                                                                                           \
        if ((val) && *(val)) {                                                                     \
            cJSON_AddStringToObject(f, key, val);                                                  \
        }                                                                                          \
    } while (0)
    ADD_OPT("uid", e->uid);
    ADD_OPT("summary", e->summary);
    ADD_OPT("description", e->description);
    ADD_OPT("location", e->location);
    ADD_OPT("status", e->status);
    ADD_OPT("start", e->start);
    ADD_OPT("end", e->end);
    ADD_OPT("rrule", e->rrule);
#undef ADD_OPT
    cJSON_AddBoolToObject(f, "all_day", e->all_day);
    if (cJSON_IsObject(org) && dr_json_str(org, "email")) {
        cJSON_AddStringToObject(f, "organizer", dr_json_str(org, "email"));
    } else if (cJSON_IsString(org)) {
        cJSON_AddStringToObject(f, "organizer", org->valuestring);
    }
    cJSON_ArrayForEach(att, cJSON_GetObjectItemCaseSensitive(e->src, "attendees"))
    {
        const char *em = cJSON_IsString(att) ? att->valuestring : dr_json_str(att, "email");
        if (em && cJSON_GetArraySize(emails) < 1000) {
            cJSON_AddItemToArray(emails, cJSON_CreateString(em));
        }
    }
    cJSON_AddItemToObject(f, "attendees", emails);
    return f;
}

static void notify(const struct ctx *c, const char *operation, const char *event_id,
                   const struct event *e, cJSON *extra)
{
    cJSON *d = extra ? extra : cJSON_CreateObject();
    char room[MAX_ID + 8], text[256];
    const char *summary = e && e->summary ? e->summary : NULL;

    cJSON_AddStringToObject(d, "operation", operation);
    if (c->method) {
        cJSON_AddStringToObject(d, "method", c->method);
    }
    if (c->calendar_id) {
        cJSON_AddStringToObject(d, "calendar_id", c->calendar_id);
    }
    cJSON_AddStringToObject(d, "event_id", event_id);
    if (e) {
        if (e->uid) {
            cJSON_AddStringToObject(d, "uid", e->uid);
        }
        if (summary) {
            cJSON_AddStringToObject(d, "summary", summary);
        }
        if (e->start[0]) {
            cJSON_AddStringToObject(d, "start", e->start);
        }
        if (e->end[0]) {
            cJSON_AddStringToObject(d, "end", e->end);
        }
        if (e->status) {
            cJSON_AddStringToObject(d, "status", e->status);
        }
    }
    snprintf(text, sizeof(text), "%.200s %s", summary ? summary : "An event",
             strcmp(operation, "delete") == 0  ? "was cancelled"
             : strcmp(operation, "reply") == 0 ? "got a reply"
                                               : "was updated");
    snprintf(room, sizeof(room), "user:%s", c->user_id);
    dr_result_notify(c->res, c->user_id, c->org_id, room, "calendar.updated", "Calendar updated",
                     text, d);
    cJSON_Delete(d);
}

/* Whether e is a cancellation: STATUS:CANCELLED, or a JSON status "cancelled" (Google
 * Calendar) or "canceled". RFC 5546 3.2.5 gives a CANCEL that status; an event published or
 * sent with it is called off the same way. */
static int is_cancelled(const struct event *e)
{
    return e->status &&
           (strcasecmp(e->status, "cancelled") == 0 || strcasecmp(e->status, "canceled") == 0);
}

/*
 * Writes the n events (upserts, or deletes when deleting or the event is cancelled) in one
 * transaction, so an object's events are all stored or none is; then, for each that took effect
 * (it was not older than the row), an index operation and a notification. -1 when c->res is set
 * to a failure.
 */
static int apply_events(const struct ctx *c, const struct event *evs, size_t n, int deleting)
{
    struct dr_db_tx *tx = NULL;
    int *took, *del;
    size_t ndel = 0;
    int err;

    /* every search document id first: one that cannot be made rejects the object before
     * anything is written, not after its rows are stored */
    for (size_t i = 0; i < n; i++) {
        char docid[DR_INDEX_DOCID_MAX + 1];
        if (dr_index_docid(docid, c->user_id, evs[i].event_id) != DR_OK) {
            dr_result_reject(c->res, "invalid_payload",
                             "user_id and event id make a search document id longer than %d "
                             "bytes",
                             DR_INDEX_DOCID_MAX);
            return -1;
        }
    }
    took = dr_xcalloc(n, sizeof(*took));
    del = dr_xcalloc(n, sizeof(*del));
    for (size_t i = 0; i < n; i++) {
        del[i] = deleting || is_cancelled(&evs[i]);
        ndel += (size_t)del[i];
    }
    err = dr_db_begin(dr_store_db(c->cp->store), &tx);

    for (size_t i = 0; !err && i < n; i++) {
        err = del[i] ? delete_row(c, tx, &evs[i], &took[i]) : upsert_row(c, tx, &evs[i], &took[i]);
    }
    if (err) {
        dr_db_rollback(tx);
    } else {
        err = dr_db_commit(tx);
    }
    if (err) {
        dr_result_store_failed(c->res, err,
                               ndel == n   ? "deleting the event"
                               : ndel == 0 ? "storing the event"
                                           : "storing and deleting the events");
        free(took);
        free(del);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct event *e = &evs[i];

        if (took[i] && del[i]) {
            dr_index_emit(c->res, "calendar_event", c->user_id, e->event_id, NULL);
            notify(c, "delete", e->event_id, e, NULL);
        } else if (took[i]) {
            cJSON *f = index_fields(c, e);
            dr_index_emit(c->res, "calendar_event", c->user_id, e->event_id, f);
            cJSON_Delete(f);
            notify(c, "upsert", e->event_id, e, NULL);
        }
        DR_INFO(COMP,
                took[i]  ? (del[i] ? "event deleted" : "event stored")
                : del[i] ? "delete older than stored event, skipped"
                         : "event older than stored, skipped",
                "message_id=%s sequence=%lld", c->msg->message_id, (long long)e->sequence);
    }
    free(took);
    free(del);
    return 0;
}

/* A REPLY: tell the user; forward to the poll it answers, if any and this is the calendar of the
 * poll's organizer, naming that calendar (user_id, org_id) as the poll processor requires. */
static int do_reply(const struct ctx *c, const struct event *e, const char *ics, int *forwarded)
{
    const cJSON *att, *atts = cJSON_GetObjectItemCaseSensitive(e->src, "attendees");
    char poll_id[1100];
    cJSON *d = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(d, "attendees");
    int err;

    cJSON_ArrayForEach(att, atts)
    {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "email",
                                dr_json_str(att, "email") ? dr_json_str(att, "email") : "");
        cJSON_AddStringToObject(a, "partstat",
                                dr_json_str(att, "partstat") ? dr_json_str(att, "partstat")
                                                             : "NEEDS-ACTION");
        cJSON_AddItemToArray(list, a);
    }
    err = e->uid && !*forwarded
              ? dr_poll_store_match_uid(c->cp->store, e->uid, poll_id, sizeof(poll_id))
              : DR_ENOTFOUND;
    if (!err) {
        /* only the poll organizer's calendar answers it: anyone can hold a REPLY with its UID */
        err = dr_poll_store_check_mailbox(c->cp->store, poll_id, c->user_id, c->org_id);
        if (err == DR_EAUTH) {
            DR_WARN(COMP, "reply to a poll of another user, not forwarded",
                    "message_id=%s poll_id=%s", c->msg->message_id, poll_id);
            err = DR_ENOTFOUND;
        }
    }
    if (err && err != DR_ENOTFOUND && err != DR_ETOOBIG) {
        cJSON_Delete(d);
        dr_result_store_failed(c->res, err, "looking a poll up by UID");
        return -1;
    }
    if (!err) {
        /* one forward per iCalendar object: the poll reads every VEVENT of it */
        cJSON *fw = cJSON_CreateObject();
        const char *attrs[] = {"type", "poll_response_email", NULL};
        char date[32], *s;
        const char *who = cJSON_GetArraySize(atts) == 1
                              ? dr_json_str(cJSON_GetArrayItem(atts, 0), "email")
                              : NULL;
        cJSON_AddStringToObject(fw, "type", "poll_response_email");
        cJSON_AddStringToObject(fw, "poll_id", poll_id);
        cJSON_AddStringToObject(fw, "user_id", c->user_id);
        if (c->org_id && *c->org_id) {
            cJSON_AddStringToObject(fw, "org_id", c->org_id);
        }
        if (who) {
            cJSON_AddStringToObject(fw, "from", who);
        }
        dr_format_time(e->updated_ms, date);
        cJSON_AddStringToObject(fw, "date", date);
        cJSON_AddStringToObject(fw, "ics", ics);
        cJSON_AddStringToObject(fw, "source", "calendar");
        s = dr_json_print(fw);
        dr_result_emit(c->res, POLL_TOPIC, s, strlen(s), poll_id, attrs);
        free(s);
        cJSON_Delete(fw);
        cJSON_AddStringToObject(d, "poll_id", poll_id);
        *forwarded = 1;
    }
    notify(c, "reply", e->event_id, e, d);
    return 0;
}

enum ics_action { ICS_UPSERT, ICS_ADD, ICS_DELETE, ICS_REPLY, ICS_IGNORE, ICS_UNSUPPORTED };

/* What an iTIP METHOD (NULL: none) does to the stored events; *why for ICS_IGNORE. */
static enum ics_action ics_action(const char *method, int deleting, const char **why)
{
    static const struct {
        const char *method, *why;
    } ignored[] = {
        {"REFRESH", "a REFRESH asks the organizer to send the event again"},
        {"COUNTER", "a COUNTER proposes a change only the organizer can make"},
        {"DECLINECOUNTER", "a DECLINECOUNTER leaves the event as the organizer sent it"},
    };

    if (method && strcasecmp(method, "REPLY") == 0) {
        return ICS_REPLY;
    }
    for (size_t i = 0; method && i < DR_ARRAY_LEN(ignored); i++) {
        if (strcasecmp(method, ignored[i].method) == 0) {
            *why = ignored[i].why;
            return ICS_IGNORE;
        }
    }
    if (deleting || (method && strcasecmp(method, "CANCEL") == 0)) {
        return ICS_DELETE;
    }
    if (method && strcasecmp(method, "ADD") == 0) {
        return ICS_ADD;
    }
    if (!method || strcasecmp(method, "PUBLISH") == 0 || strcasecmp(method, "REQUEST") == 0) {
        return ICS_UPSERT;
    }
    return ICS_UNSUPPORTED;
}

static void on_ics(const struct ctx *c0, const char *ics, const char *event_id, int deleting)
{
    struct ctx c = *c0;
    cJSON *cal = NULL, *ev;
    const cJSON *events;
    enum ics_action action;
    char why[512] = "";
    const char *reason = NULL, *first_uid;
    struct event *evs = NULL;
    size_t nevs = 0;
    int err, n, forwarded = 0;

    err = dr_ics_parse(ics, strlen(ics), &cal, why, sizeof(why));
    if (err == DR_ENOMEM) {
        dr_result_retry(c.res, "out_of_memory", "parsing the iCalendar object");
        return;
    }
    if (err) {
        dr_result_reject(c.res, "invalid_ics", "%s", why[0] ? why : dr_strerror(err));
        return;
    }
    c.method = dr_json_str(cal, "method");
    action = ics_action(c.method, deleting, &reason);
    if (action == ICS_UNSUPPORTED) {
        dr_result_reject(c.res, "unsupported_method",
                         "METHOD %.40s: only PUBLISH, REQUEST, ADD, CANCEL, REPLY, REFRESH, "
                         "COUNTER and DECLINECOUNTER are handled",
                         c.method);
        goto out;
    }
    if (action == ICS_IGNORE) {
        DR_INFO(COMP, "iCalendar method changes no event, ignored",
                "message_id=%s method=%s why=%s", c.msg->message_id, c.method, reason);
        goto out;
    }
    events = cJSON_GetObjectItemCaseSensitive(cal, "events");
    n = cJSON_GetArraySize(events);
    if (n == 0 || n > MAX_EVENTS) {
        dr_result_reject(c.res, "invalid_ics", "%s VEVENT", n ? "over 500" : "no");
        goto out;
    }
    /* event_id names a series: of all the VEVENTs, if they share one UID (overridden
     * instances of it); else each series is keyed by its own UID */
    first_uid = dr_json_str(cJSON_GetArrayItem(events, 0), "uid");
    cJSON_ArrayForEach(ev, events)
    {
        const char *uid = dr_json_str(ev, "uid");

        if (n > 1 && (!uid || !first_uid || strcmp(uid, first_uid) != 0)) {
            event_id = NULL;
        }
    }
    /* every VEVENT is checked before anything is written: all of them apply, or none */
    evs = dr_xcalloc((size_t)n, sizeof(*evs));
    cJSON_ArrayForEach(ev, events)
    {
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(ev, "start");

        if (action == ICS_ADD && !cJSON_GetObjectItemCaseSensitive(ev, "recurrence_id") &&
            cJSON_IsObject(start)) {
            /* a new instance: its RECURRENCE-ID is its start (RFC 5545 3.8.4.4) */
            cJSON_AddItemToObject(ev, "recurrence_id", cJSON_Duplicate(start, 1));
        }
        if (event_from_json(&c, ev, event_id, 1, &evs[nevs], &reason)) {
            dr_result_reject(c.res, "invalid_ics", "%s", reason);
            goto out;
        }
        nevs++;
    }
    if (action != ICS_REPLY) {
        (void)apply_events(&c, evs, nevs, action == ICS_DELETE);
        goto out;
    }
    for (size_t i = 0; i < nevs; i++) {
        if (do_reply(&c, &evs[i], ics, &forwarded)) {
            break;
        }
    }
out:
    for (size_t i = 0; i < nevs; i++) {
        free(evs[i].rrule);
    }
    free(evs);
    cJSON_Delete(cal);
}

static void process(void *state, const struct dr_msg *msg, struct dr_result *res)
{
    const cJSON *pl = dr_msg_payload(msg), *ev;
    const char *op, *event_id, *ics, *reason = NULL;
    struct ctx c = {.cp = state, .msg = msg, .res = res};
    struct event e;
    int deleting;

    if (!cJSON_IsObject(pl)) {
        dr_result_reject(res, "invalid_payload", "payload is not a JSON object");
        return;
    }
    if (!str_ok(pl, "user_id", MAX_ID, 1) || !str_ok(pl, "org_id", MAX_ID, 0) ||
        !str_ok(pl, "calendar_id", MAX_ID, 0) || !str_ok(pl, "event_id", MAX_ID, 0) ||
        !str_ok(pl, "operation", 16, 0) || !str_ok(pl, "ics", DR_ICS_MAX_BYTES, 0)) {
        dr_result_reject(res, "invalid_event",
                         "user_id (required), org_id, calendar_id, event_id, operation and ics "
                         "must be strings within limits");
        return;
    }
    c.user_id = dr_json_str(pl, "user_id");
    c.org_id = dr_json_str(pl, "org_id");
    c.calendar_id = dr_json_str(pl, "calendar_id");
    event_id = dr_json_str(pl, "event_id");
    event_id = event_id && *event_id ? event_id : NULL;
    op = dr_json_str(pl, "operation") ? dr_json_str(pl, "operation") : "upsert";
    if (strcmp(op, "upsert") != 0 && strcmp(op, "delete") != 0) {
        dr_result_reject(res, "invalid_event", "operation must be upsert or delete");
        return;
    }
    deleting = strcmp(op, "delete") == 0;
    ics = dr_json_str(pl, "ics");
    ev = cJSON_GetObjectItemCaseSensitive(pl, "event");
    if (ics && *ics) {
        on_ics(&c, ics, event_id, deleting);
        return;
    }
    if (ev && !cJSON_IsNull(ev) && !cJSON_IsObject(ev)) {
        dr_result_reject(res, "invalid_event", "event must be an object");
        return;
    }
    if (!cJSON_IsObject(ev)) {
        if (deleting && event_id) {
            /* no version to compare: ordered by its time */
            memset(&e, 0, sizeof(e));
            snprintf(e.event_id, sizeof(e.event_id), "%s", event_id);
            e.updated_ms = msg->publish_time_ms > 0 ? msg->publish_time_ms : dr_now_ms();
            (void)apply_events(&c, &e, 1, 1);
        } else {
            dr_result_reject(res, "invalid_event", "needs event{} or ics (or event_id to delete)");
        }
        return;
    }
    if (event_from_json(&c, ev, event_id, 0, &e, &reason)) {
        dr_result_reject(res, "invalid_event", "%s", reason);
        return;
    }
    (void)apply_events(&c, &e, 1, deleting);
    free(e.rrule);
}

const struct dr_processor dr_processor_calendar = {
    .name = "calendar",
    .description = "calendar events (JSON or iCalendar): stored, indexed, users notified",
    .init = init,
    .process = process,
    .destroy = destroy,
};
