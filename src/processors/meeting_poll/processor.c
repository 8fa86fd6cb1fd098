/*
 * The meeting_poll processor (topic meeting-responses, DESIGN §5):
 *   poll_created / poll_updated   store the poll definition (poll_created never overwrites; a
 *                                 poll's organizer and org never change);
 *   poll_response                 structured answers {poll_id, participant_email, responses,
 *                                 comment};
 *   poll_response_email           an email answering a poll: its new text (dr_reply_extract)
 *                                 read by dr_poll_reply_parse, or an iCalendar REPLY's PARTSTATs.
 *                                 It names the mailbox or calendar it arrived in (user_id,
 *                                 org_id), as the email and calendar processors forward it: only
 *                                 the poll organizer's counts (else not_organizer_mailbox), since
 *                                 anyone can write a From or an ATTENDEE into their own mailbox.
 * Answers are stored per (poll, participant, slot); the latest email date wins (store.c), a
 * date after the message's publish time counting as that time. When
 * this message's answers are the participant's current ones, the organizer (room user:{id}) and
 * the poll's room (meeting:{poll_id}) get a meeting.response notification with them; an older
 * email arriving late notifies nobody. A redelivery of a message whose answers are current
 * notifies again: notifications are at least once, like every effect.
 *
 * Rejections (dead letters): invalid_payload, unsupported_type, invalid_poll, invalid_response,
 * invalid_email, invalid_ics, unknown_slot, not_a_participant, not_organizer_mailbox, no_answer,
 * unknown_poll, poll_conflict (a definition that would take another poll's reply_token,
 * message_id or UIDs, or a stored poll's id under another organizer or org: the keys route
 * replies, so they stay with the poll that has them).
 * An answer to a poll that is not stored is retried (reason unknown_poll) until attempt
 * `unknown_poll_attempts` (config, default 3): the poll_created message may be a little behind
 * its first replies when they come from different publishers. Then it is rejected.
 * A poll or answers the store refuses for good (a constraint or trigger, a value it cannot hold)
 * are rejected at once (store_refused); other store failures are retried (store_error). A stored
 * definition that no longer parses is invalid_poll.
 *
 * Config (processors.meeting_poll): unknown_poll_attempts (1-20), reply_local_part (the part
 * before "+TOKEN" of the poll reply address; when set, only such recipients are read as tokens).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/email.h"
#include "dr/err.h"
#include "dr/ics.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/poll_reply.h"
#include "dr/poll_store.h"
#include "dr/processor.h"
#include "dr/reply.h"
#include "dr/store.h"
#include "dr/util.h"
#include "processors/meeting_poll/poll_store_int.h"

#define COMP              "processor.meeting_poll"
#define MAX_COMMENT_BYTES DR_POLL_REPLY_MAX
#define MAX_REFERENCES    50 /* References ids tried when looking the poll up */

struct poll_proc {
    struct dr_store *store;
    int unknown_poll_attempts;
    char *reply_local_part;
};

static int init(const struct dr_proc_env *env, void **state, char *err, size_t errsz)
{
    struct poll_proc *pp;
    int64_t attempts = 3;
    const char *local = env->config ? dr_json_str(env->config, "reply_local_part") : NULL;
    int rc;

    if (!env->store) {
        snprintf(err, errsz, "no store");
        return -1;
    }
    if (env->config && cJSON_GetObjectItemCaseSensitive(env->config, "unknown_poll_attempts")) {
        if (dr_json_i64(env->config, "unknown_poll_attempts", &attempts) || attempts < 1 ||
            attempts > 20) {
            snprintf(err, errsz, "unknown_poll_attempts: must be an integer from 1 to 20");
            return -1;
        }
    }
    rc = dr_poll_store_migrate(env->store);
    if (rc) {
        snprintf(err, errsz, "poll tables: %s", dr_strerror(rc));
        return -1;
    }
    pp = dr_xcalloc(1, sizeof(*pp));
    pp->store = env->store;
    pp->unknown_poll_attempts = (int)attempts;
    pp->reply_local_part = dr_xstrdup(local && *local ? local : NULL);
    *state = pp;
    return 0;
}

static void destroy(void *state)
{
    struct poll_proc *pp = state;

    if (pp) {
        free(pp->reply_local_part);
        free(pp);
    }
}

static int64_t msg_time(const struct dr_msg *msg)
{
    return msg->publish_time_ms > 0 ? msg->publish_time_ms : dr_now_ms();
}

static void unknown_poll(const struct poll_proc *pp, const struct dr_msg *msg,
                         struct dr_result *res, const char *poll_id)
{
    if (msg->attempt < pp->unknown_poll_attempts) {
        dr_result_retry(res, "unknown_poll", "poll %s is not stored (yet); attempt %d of %d",
                        poll_id ? poll_id : "(unresolved)", msg->attempt,
                        pp->unknown_poll_attempts);
    } else {
        dr_result_reject(res, "unknown_poll", "no stored poll %s after %d attempts",
                         poll_id ? poll_id : "matches this reply", msg->attempt);
    }
}

/* Loads the poll; on failure the outcome is set and NULL returned. */
static struct dr__poll_rec *load_poll(const struct poll_proc *pp, const struct dr_msg *msg,
                                      struct dr_result *res, const char *poll_id)
{
    struct dr__poll_rec *rec = NULL;
    int err = dr__poll_store_get(dr_store_db(pp->store), poll_id, &rec);

    if (err == DR_ENOTFOUND) {
        unknown_poll(pp, msg, res, poll_id);
    } else if (err == DR_EINVAL) { /* the stored definition, not the store, is at fault */
        dr_result_reject(res, "invalid_poll", "stored definition of poll %s does not parse",
                         poll_id);
    } else if (err == DR_ETOOBIG) { /* stored before the limits were lowered */
        dr_result_reject(res, "invalid_poll",
                         "stored definition of poll %s exceeds the limits (%d slots, %d "
                         "participants)",
                         poll_id, DR_POLL_MAX_SLOTS, DR_POLL_MAX_PARTICIPANTS);
    } else if (err) {
        dr_result_store_failed(res, err, "loading the poll");
    }
    return rec;
}

/* ---- poll definitions ---- */

static int opt_field(const cJSON *o, const char *key, int required)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!v || cJSON_IsNull(v)) {
        return !required;
    }
    return cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) <= DR_POLL_MAX_FIELD;
}

static void on_definition(struct poll_proc *pp, const struct dr_msg *msg, struct dr_result *res,
                          int create_only)
{
    const cJSON *def = dr_msg_payload(msg);
    struct dr_poll *poll = NULL;
    char why[512];
    int changed = 0, err;

    static const char *const optional[] = {"org_id", "title", "message_id", "reply_token",
                                           "event_uid"};
    if (!opt_field(def, "organizer_user_id", 1)) {
        dr_result_reject(res, "invalid_poll", "organizer_user_id: required string of 1-%d bytes",
                         DR_POLL_MAX_FIELD);
        return;
    }
    for (size_t i = 0; i < DR_ARRAY_LEN(optional); i++) {
        if (!opt_field(def, optional[i], 0)) {
            dr_result_reject(res, "invalid_poll", "%s: must be a string of 1-%d bytes", optional[i],
                             DR_POLL_MAX_FIELD);
            return;
        }
    }
    err = dr_poll_from_json(def, &poll);
    if (err == DR_ETOOBIG) {
        dr_result_reject(res, "invalid_poll",
                         "over a limit: %d slots, %d participants, %d bytes "
                         "per field",
                         DR_POLL_MAX_SLOTS, DR_POLL_MAX_PARTICIPANTS, DR_POLL_MAX_FIELD);
        return;
    }
    if (err) {
        dr_result_reject(res, "invalid_poll",
                         "needs poll_id, slots [{slot_id (unique), start (RFC 3339)}] and "
                         "participants [{email}] with valid addresses");
        return;
    }
    err = dr__poll_store_put(dr_store_db(pp->store), def, poll, create_only, dr_now_ms(), &changed,
                             why, sizeof(why));
    if (err == DR_EEXIST) {
        dr_result_reject(res, "poll_conflict", "poll %s refused: %s", poll->poll_id, why);
    } else if (err) {
        dr_result_store_failed(res, err, "storing the poll");
    } else {
        DR_INFO(COMP, create_only ? "poll created" : "poll updated",
                "message_id=%s poll_id=%s slots=%zu participants=%zu changed=%d", msg->message_id,
                poll->poll_id, poll->n_slots, poll->n_participants, changed);
    }
    dr_poll_destroy(poll);
}

/* ---- answers ---- */

/* Answers by slot index, the last statement about a slot winning. */
struct votes {
    enum dr_poll_answer_value *by_slot;
    size_t n_slots;
};

static void votes_init(struct votes *v, const struct dr_poll *poll)
{
    v->n_slots = poll->n_slots;
    v->by_slot = dr_xcalloc(poll->n_slots + 1, sizeof(*v->by_slot));
}

static int slot_index(const struct dr_poll *poll, const char *slot_id)
{
    for (size_t i = 0; slot_id && i < poll->n_slots; i++) {
        if (strcmp(poll->slots[i].slot_id, slot_id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Everything one answer carries to the store and the notification. */
struct reply {
    const struct dr__poll_rec *rec;
    const struct dr_poll_participant *who;
    int64_t answered_ms;
    const char *source;
    const char *comment;
    const char *via; /* "structured" | "email" | "ics" */
};

static cJSON *answers_json(const struct dr_poll *poll, const struct dr__poll_state *st)
{
    cJSON *arr = cJSON_CreateArray();
    char ts[32];

    /* slot order of the poll; answers to slots no longer in the poll are left out */
    for (size_t i = 0; i < poll->n_slots; i++) {
        for (size_t k = 0; k < st->nrows; k++) {
            const struct dr__poll_answer_row *r = &st->rows[k];
            if (r->slot_id && strcmp(r->slot_id, poll->slots[i].slot_id) == 0) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "slot_id", r->slot_id);
                cJSON_AddStringToObject(o, "answer", r->answer ? r->answer : "");
                dr_format_time(r->answered_ms, ts);
                cJSON_AddStringToObject(o, "answered_at", ts);
                cJSON_AddItemToArray(arr, o);
            }
        }
    }
    return arr;
}

static void notify(struct dr_result *res, const struct reply *rp, const struct dr__poll_state *st)
{
    const struct dr__poll_rec *rec = rp->rec;
    cJSON *data = cJSON_CreateObject();
    cJSON *who = cJSON_CreateObject();
    char room[DR_POLL_MAX_FIELD + 16], title[DR_POLL_MAX_FIELD + 32], text[DR_POLL_MAX_FIELD + 64];
    char ts[32];
    const char *name = rp->who->name ? rp->who->name : rp->who->email;

    cJSON_AddStringToObject(data, "poll_id", rec->poll_id);
    if (rec->title) {
        cJSON_AddStringToObject(data, "title", rec->title);
    }
    cJSON_AddStringToObject(who, "email", rp->who->email);
    if (rp->who->name) {
        cJSON_AddStringToObject(who, "name", rp->who->name);
    }
    cJSON_AddItemToObject(data, "participant", who);
    if (st->responded_ms) {
        dr_format_time(st->responded_ms, ts);
        cJSON_AddStringToObject(data, "responded_at", ts);
    } else {
        cJSON_AddNullToObject(data, "responded_at");
    }
    cJSON_AddItemToObject(data, "answers", answers_json(rec->poll, st));
    if (st->comment) {
        cJSON_AddStringToObject(data, "comment", st->comment);
    } else {
        cJSON_AddNullToObject(data, "comment");
    }
    cJSON_AddStringToObject(data, "via", rp->via);

    snprintf(title, sizeof(title), "New response: %s", rec->title ? rec->title : rec->poll_id);
    snprintf(text, sizeof(text), "%s answered the poll", name);
    snprintf(room, sizeof(room), "user:%s", rec->organizer_user_id);
    dr_result_notify(res, rec->organizer_user_id, rec->org_id, room, "meeting.response", title,
                     text, data);
    snprintf(room, sizeof(room), "meeting:%s", rec->poll_id);
    dr_result_notify(res, NULL, rec->org_id, room, "meeting.response", title, text, data);
    cJSON_Delete(data);
}

/* Stores the answers in v and notifies when they are current. */
static void apply(struct poll_proc *pp, const struct dr_msg *msg, struct dr_result *res,
                  const struct reply *rp, const struct votes *v)
{
    const struct dr_poll *poll = rp->rec->poll;
    struct dr__poll_vote *list = dr_xcalloc(v->n_slots + 1, sizeof(*list));
    struct dr__poll_state st;
    struct dr__poll_apply a = {0};
    char email[DR_POLL_MAX_FIELD + 1], red[128];
    int64_t published = msg_time(msg);
    size_t n = 0;
    int err;

    for (size_t i = 0; i < v->n_slots; i++) {
        if (v->by_slot[i] != DR_POLL_UNANSWERED) {
            list[n].slot_id = poll->slots[i].slot_id;
            list[n].answer = dr_poll_answer_name(v->by_slot[i]);
            n++;
        }
    }
    if (n == 0 && (!rp->comment || !*rp->comment)) {
        dr_result_reject(res, "no_answer", "the reply holds no slot preference and no comment");
        goto out;
    }
    snprintf(email, sizeof(email), "%s", rp->who->email);
    for (char *c = email; *c; c++) {
        *c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
    }
    a.poll_id = rp->rec->poll_id;
    a.email = email;
    a.name = rp->who->name;
    /* The sender sets the Date (answered_at, an iCalendar reply's stamp): one after the message
     * was published would outrank every answer the participant sends later, so it counts as
     * the publish time. */
    a.answered_ms = rp->answered_ms < published ? rp->answered_ms : published;
    a.source = rp->source;
    a.comment = rp->comment;
    a.votes = list;
    a.nvotes = n;
    err = dr__poll_store_answer(dr_store_db(pp->store), &a, &st);
    if (err) {
        dr_result_store_failed(res, err, "storing answers");
        goto out;
    }
    dr_log_redact_email(email, red, sizeof(red));
    DR_INFO(COMP, "answers stored",
            "message_id=%s poll_id=%s participant=%s via=%s slots=%zu changed=%d current=%d",
            msg->message_id, rp->rec->poll_id, red, rp->via, n, st.changed, st.current);
    if (st.changed || st.current) {
        notify(res, rp, &st);
    }
    dr__poll_state_cleanup(&st);
out:
    free(list);
}

static const struct dr_poll_participant *participant(const struct dr__poll_rec *rec,
                                                     const char *sender, struct dr_result *res)
{
    const struct dr_poll_participant *who =
        sender ? dr_poll_find_participant(rec->poll, sender) : NULL;
    char red[128];

    if (!who) {
        dr_log_redact_email(sender ? sender : "", red, sizeof(red));
        dr_result_reject(res, "not_a_participant", "sender %s is not a participant of poll %s",
                         sender ? red : "(none)", rec->poll_id);
    }
    return who;
}

static int parse_answer(const char *s, enum dr_poll_answer_value *out)
{
    static const char *const names[] = {"yes", "no", "maybe"};
    static const enum dr_poll_answer_value vals[] = {DR_POLL_YES, DR_POLL_NO, DR_POLL_MAYBE};

    for (size_t i = 0; s && i < DR_ARRAY_LEN(names); i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = vals[i];
            return 0;
        }
    }
    return -1;
}

static void on_response(struct poll_proc *pp, const struct dr_msg *msg, struct dr_result *res)
{
    const cJSON *pl = dr_msg_payload(msg), *arr, *it;
    const char *poll_id = dr_json_str(pl, "poll_id");
    const char *sender = dr_json_str(pl, "participant_email");
    const char *comment = dr_json_str(pl, "comment");
    const char *at = dr_json_str(pl, "answered_at");
    struct dr__poll_rec *rec = NULL;
    struct votes v = {0};
    struct reply rp = {0};
    char source[512];
    int64_t when = msg_time(msg);

    arr = cJSON_GetObjectItemCaseSensitive(pl, "responses");
    if (!opt_field(pl, "poll_id", 1) || !opt_field(pl, "participant_email", 1)) {
        dr_result_reject(res, "invalid_response", "poll_id and participant_email are required");
        return;
    }
    if ((arr && !cJSON_IsArray(arr)) || cJSON_GetArraySize(arr) > DR_POLL_MAX_SLOTS * 4) {
        dr_result_reject(res, "invalid_response", "responses: an array of at most %d entries",
                         DR_POLL_MAX_SLOTS * 4);
        return;
    }
    if ((cJSON_GetObjectItemCaseSensitive(pl, "comment") &&
         !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(pl, "comment")) && !comment) ||
        (comment && strlen(comment) > MAX_COMMENT_BYTES)) {
        dr_result_reject(res, "invalid_response", "comment: a string of at most %d bytes",
                         MAX_COMMENT_BYTES);
        return;
    }
    if (at && dr_parse_time(at, &when)) {
        dr_result_reject(res, "invalid_response", "answered_at: not an RFC 3339 time");
        return;
    }
    rec = load_poll(pp, msg, res, poll_id);
    if (!rec) {
        return;
    }
    rp.who = participant(rec, sender, res);
    if (!rp.who) {
        goto out;
    }
    votes_init(&v, rec->poll);
    cJSON_ArrayForEach(it, arr)
    {
        enum dr_poll_answer_value val;
        int idx = slot_index(rec->poll, dr_json_str(it, "slot_id"));
        if (!cJSON_IsObject(it) || parse_answer(dr_json_str(it, "answer"), &val)) {
            dr_result_reject(res, "invalid_response",
                             "responses[]: {slot_id, answer: yes|no|maybe} expected");
            goto out;
        }
        if (idx < 0) {
            dr_result_reject(res, "unknown_slot", "poll %s has no such slot_id", rec->poll_id);
            goto out;
        }
        v.by_slot[idx] = val;
    }
    snprintf(source, sizeof(source), "msg:%s", dr_msg_dedup_key(msg));
    rp.rec = rec;
    rp.answered_ms = when;
    rp.source = source;
    rp.comment = comment;
    rp.via = "structured";
    apply(pp, msg, res, &rp, &v);
out:
    free(v.by_slot);
    dr__poll_rec_destroy(rec);
}

/* ---- email replies ---- */

static int email_from_payload(const cJSON *pl, struct dr_email **em, struct dr_result *res)
{
    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(pl, "raw");
    unsigned char *bytes = NULL;
    size_t len = 0;
    int err;

    *em = NULL;
    if (raw && !cJSON_IsNull(raw)) {
        if (!cJSON_IsString(raw)) {
            dr_result_reject(res, "invalid_email", "raw: must be a base64url string");
            return -1;
        }
        err = dr_base64url_decode(raw->valuestring, strlen(raw->valuestring), &bytes, &len);
        if (err) {
            err = dr_base64_decode(raw->valuestring, strlen(raw->valuestring), &bytes, &len);
        }
        if (err) {
            dr_result_reject(res, "invalid_email", "raw: not base64url");
            return -1;
        }
        err = dr_email_parse((const char *)bytes, len, NULL, em);
        free(bytes);
    } else {
        err = dr_email_from_fields(pl, NULL, em);
    }
    if (err) {
        dr_result_reject(res, "invalid_email", "%s", dr_email_error_reason());
        return -1;
    }
    return 0;
}

/* The poll id an email answers; "" when none matches. Returns a dr_err. */
static int resolve_poll(struct poll_proc *pp, const cJSON *pl, const struct dr_email *em, char *out,
                        size_t sz)
{
    const char *id = dr_json_str(pl, "poll_id");
    const char *token = dr_json_str(pl, "reply_token");
    const char *msgids[MAX_REFERENCES + 1];
    char **rcpt = NULL;
    size_t n = 0, nrcpt = 0;
    int err;

    if (id && *id) {
        if (strlen(id) >= sz) {
            return DR_ETOOBIG;
        }
        snprintf(out, sz, "%s", id);
        return DR_OK;
    }
    if (em->in_reply_to) {
        msgids[n++] = em->in_reply_to;
    }
    /* the poll email is usually the root: References lists it first */
    for (size_t i = 0; i < em->n_references && n < MAX_REFERENCES + 1; i++) {
        msgids[n++] = em->references[i];
    }
    err = dr_poll_store_match(pp->store, token, msgids, n, em->subject, out, sz);
    if (err != DR_ENOTFOUND || token) {
        return err;
    }
    /* no token given: the reply address's +TOKEN */
    if (dr_email_recipients(em, &rcpt, &nrcpt)) {
        return DR_ENOMEM;
    }
    for (size_t i = 0; err == DR_ENOTFOUND && i < nrcpt; i++) {
        char *tok = NULL;
        if (dr_email_plus_token(rcpt[i], pp->reply_local_part, &tok) == DR_OK) {
            err = dr_poll_store_match(pp->store, tok, NULL, 0, NULL, out, sz);
        }
        free(tok);
    }
    dr_email_strv_free(rcpt, nrcpt);
    return err;
}

/* The slot a VEVENT of a REPLY answers: a slot's uid, the slot_id as UID, or the same start. */
static int event_slot(const struct dr__poll_rec *rec, const cJSON *ev)
{
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(rec->definition, "slots");
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(ev, "recurrence_id");
    const char *uid = dr_json_str(ev, "uid");
    const char *utc;
    int64_t ms;
    const cJSON *s;

    cJSON_ArrayForEach(s, slots)
    {
        const char *suid = dr_json_str(s, "uid");
        if (uid && suid && strcmp(uid, suid) == 0) {
            return slot_index(rec->poll, dr_json_str(s, "slot_id"));
        }
    }
    if (uid && slot_index(rec->poll, uid) >= 0) {
        return slot_index(rec->poll, uid);
    }
    if (!cJSON_IsObject(when)) {
        when = cJSON_GetObjectItemCaseSensitive(ev, "start");
    }
    utc = cJSON_IsObject(when) ? dr_json_str(when, "utc") : NULL;
    if (utc && dr_parse_time(utc, &ms) == DR_OK) {
        for (size_t k = 0; k < rec->poll->n_slots; k++) {
            if (rec->poll->slots[k].start_ms == ms) {
                return (int)k;
            }
        }
    }
    return -1;
}

/* Reads the PARTSTATs of an iTIP REPLY into v. 0, or -1 with the outcome set. */
static int ics_votes(const struct dr__poll_rec *rec, const struct dr_poll_participant *who,
                     const cJSON *cal, struct votes *v, struct dr_result *res)
{
    const cJSON *ev, *att;
    int matched = 0, mismatch = 0, answered = 0;

    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(cal, "events"))
    {
        int idx = event_slot(rec, ev);
        if (idx < 0) {
            continue;
        }
        matched++;
        cJSON_ArrayForEach(att, cJSON_GetObjectItemCaseSensitive(ev, "attendees"))
        {
            enum dr_poll_answer_value val;
            const char *email = dr_json_str(att, "email");
            if (!email || dr_poll_find_participant(rec->poll, email) != who) {
                mismatch++;
                continue;
            }
            if (dr_poll_partstat_answer(dr_json_str(att, "partstat"), &val) == DR_OK) {
                v->by_slot[idx] = val;
                answered++;
            }
        }
    }
    if (answered) {
        return 0;
    }
    if (!matched) {
        dr_result_reject(res, "unknown_slot",
                         "no VEVENT of the iCalendar reply matches a slot "
                         "of poll %s (by uid, slot_id or start)",
                         rec->poll_id);
    } else if (mismatch) {
        dr_result_reject(res, "not_a_participant",
                         "the iCalendar reply's ATTENDEE is not the sender of poll %s",
                         rec->poll_id);
    } else {
        dr_result_reject(res, "no_answer", "the iCalendar reply's PARTSTAT answers nothing");
    }
    return -1;
}

/* The iCalendar text to read: the payload's "ics", else a REPLY part of the email. */
static const char *find_ics(const cJSON *pl, const struct dr_email *em)
{
    const char *ics = dr_json_str(pl, "ics");

    if (ics && *ics) {
        return ics;
    }
    for (size_t i = 0; i < em->n_calendar; i++) {
        if (em->calendar[i].method && strcmp(em->calendar[i].method, "REPLY") == 0) {
            return em->calendar[i].ics;
        }
    }
    return NULL;
}

static cJSON *parse_reply_ics(const char *ics, struct dr_result *res)
{
    cJSON *cal = NULL;
    char why[256] = "";
    const char *method;
    int err = dr_ics_parse(ics, strlen(ics), &cal, why, sizeof(why));

    if (err) {
        dr_result_reject(res, "invalid_ics", "%s", why[0] ? why : dr_strerror(err));
        return NULL;
    }
    method = dr_json_str(cal, "method");
    if (!method || strcasecmp(method, "REPLY") != 0) {
        dr_result_reject(res, "invalid_ics", "METHOD is %s, a poll answer needs REPLY",
                         method ? method : "absent");
        cJSON_Delete(cal);
        return NULL;
    }
    return cal;
}

static int text_votes(const struct dr__poll_rec *rec, const struct dr_email *em, struct votes *v,
                      char **comment, struct dr_result *res)
{
    const char *body = em->text ? em->text : em->html_text;
    size_t len = em->text ? em->text_len : em->html_text_len;
    struct dr_poll_answer *ans = NULL;
    char *reply = NULL;
    int err;

    *comment = NULL;
    if (!body) {
        dr_result_reject(res, "no_answer", "the email has no text body");
        return -1;
    }
    err = dr_reply_extract(body, len, &reply, NULL);
    if (!err) {
        err = dr_poll_reply_parse(rec->poll, reply, &ans);
    }
    if (err == DR_ETOOBIG) {
        dr_result_reject(res, "invalid_email", "reply text over %d bytes", DR_POLL_REPLY_MAX);
    } else if (err) {
        dr_result_retry(res, "parse_error", "reading the reply: %s", dr_strerror(err));
    }
    for (size_t i = 0; !err && i < ans->n_responses; i++) {
        int idx = slot_index(rec->poll, ans->responses[i].slot_id);
        if (idx >= 0) {
            v->by_slot[idx] = ans->responses[i].answer;
        }
    }
    if (!err) {
        *comment = dr_xstrdup(ans->comment);
    }
    dr_poll_answer_destroy(ans);
    free(reply);
    return err ? -1 : 0;
}

static void on_email(struct poll_proc *pp, const struct dr_msg *msg, struct dr_result *res)
{
    const cJSON *pl = dr_msg_payload(msg);
    struct dr_email *em = NULL;
    struct dr__poll_rec *rec = NULL;
    struct votes v = {0};
    struct reply rp = {0};
    cJSON *cal = NULL;
    char poll_id[DR_POLL_MAX_FIELD + 1], source[1024];
    char *comment = NULL;
    const char *ics, *sender;
    int err;

    if (!opt_field(pl, "user_id", 1) || !opt_field(pl, "org_id", 0)) {
        dr_result_reject(res, "invalid_payload",
                         "user_id (required: whose mailbox or calendar the reply arrived in) and "
                         "org_id must be strings of 1-%d bytes",
                         DR_POLL_MAX_FIELD);
        return;
    }
    if (email_from_payload(pl, &em, res)) {
        return;
    }
    err = resolve_poll(pp, pl, em, poll_id, sizeof(poll_id));
    if (err == DR_ENOTFOUND || err == DR_ETOOBIG) {
        unknown_poll(pp, msg, res, NULL);
        goto out;
    }
    if (err) {
        dr_result_store_failed(res, err, "looking the poll up");
        goto out;
    }
    rec = load_poll(pp, msg, res, poll_id);
    if (!rec) {
        goto out;
    }
    if (!dr__poll_mailbox_ok(rec, dr_json_str(pl, "user_id"), dr_json_str(pl, "org_id"))) {
        dr_result_reject(res, "not_organizer_mailbox",
                         "the reply arrived in the mailbox or calendar of another user or org, "
                         "not that of poll %s's organizer",
                         rec->poll_id);
        goto out;
    }
    ics = find_ics(pl, em);
    if (ics && !(cal = parse_reply_ics(ics, res))) {
        goto out;
    }
    /* The From only: an iCalendar reply's ATTENDEE is the sender's own word (ics_votes()
     * holds it to the From), and a From that does not parse cleanly is no address at all. */
    sender = em->from.address;
    if (!sender) {
        dr_result_reject(res, "invalid_email", "no sender: no From address that parses cleanly");
        goto out;
    }
    rp.who = participant(rec, sender, res);
    if (!rp.who) {
        goto out;
    }
    votes_init(&v, rec->poll);
    if (cal ? ics_votes(rec, rp.who, cal, &v, res) : text_votes(rec, em, &v, &comment, res)) {
        goto out;
    }
    if (em->message_id) {
        snprintf(source, sizeof(source), "email:%s", em->message_id);
    } else {
        snprintf(source, sizeof(source), "msg:%s", dr_msg_dedup_key(msg));
    }
    rp.rec = rec;
    rp.answered_ms = em->has_date ? em->date_ms : msg_time(msg);
    rp.source = source;
    rp.comment = comment;
    rp.via = cal ? "ics" : "email";
    apply(pp, msg, res, &rp, &v);
out:
    free(comment);
    free(v.by_slot);
    cJSON_Delete(cal);
    dr__poll_rec_destroy(rec);
    dr_email_destroy(em);
}

static void process(void *state, const struct dr_msg *msg, struct dr_result *res)
{
    struct poll_proc *pp = state;
    const char *type = msg->type ? msg->type : "";

    if (!cJSON_IsObject(dr_msg_payload(msg))) {
        dr_result_reject(res, "invalid_payload", "payload is not a JSON object");
        return;
    }
    if (strcmp(type, "poll_created") == 0) {
        on_definition(pp, msg, res, 1);
    } else if (strcmp(type, "poll_updated") == 0) {
        on_definition(pp, msg, res, 0);
    } else if (strcmp(type, "poll_response") == 0) {
        on_response(pp, msg, res);
    } else if (strcmp(type, "poll_response_email") == 0) {
        on_email(pp, msg, res);
    } else {
        dr_result_reject(res, "unsupported_type", "meeting_poll does not handle type %.64s", type);
    }
}

static const char *const config_keys[] = {"reply_local_part", "unknown_poll_attempts", NULL};

const struct dr_processor dr_processor_meeting_poll = {
    .name = "meeting_poll",
    .description = "meeting polls: definitions, structured and email answers, results",
    .config_keys = config_keys,
    .init = init,
    .process = process,
    .destroy = destroy,
};
