/*
 * Meeting polls: the poll definition (DESIGN §5, meeting-responses poll_created/poll_updated), a
 * participant's answer, and the reading of a free-text email reply into slot preferences.
 *
 * All functions are thread-safe; a struct dr_poll is read-only once built and may be shared by
 * threads.
 */
#ifndef DR_POLL_REPLY_H
#define DR_POLL_REPLY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define DR_POLL_MAX_SLOTS        200
#define DR_POLL_MAX_PARTICIPANTS 5000
#define DR_POLL_MAX_FIELD        1024        /* bytes of any string field of a poll */
#define DR_POLL_REPLY_MAX        (64 * 1024) /* bytes of reply text dr_poll_reply_parse reads */

struct dr_poll_slot {
    char *slot_id;
    char *start; /* RFC 3339 as given */
    char *end;   /* RFC 3339 or NULL */
    char *label; /* NULL when the poll gave none */
    int64_t start_ms;
    int start_offset_min; /* UTC offset written in start, minutes: the poll's local time */
};

struct dr_poll_participant {
    char *email;
    char *name; /* NULL when absent */
};

struct dr_poll {
    char *poll_id;
    char *title; /* NULL when absent */
    struct dr_poll_slot *slots;
    size_t n_slots;
    struct dr_poll_participant *participants;
    size_t n_participants;
};

enum dr_poll_answer_value {
    DR_POLL_UNANSWERED = 0,
    DR_POLL_YES,
    DR_POLL_NO,
    DR_POLL_MAYBE,
};

struct dr_poll_response {
    char *slot_id;
    enum dr_poll_answer_value answer;
};

struct dr_poll_answer {
    char *poll_id;
    char *participant; /* NULL until the caller sets it (malloc'ed; freed by destroy) */
    struct dr_poll_response *responses; /* in the poll's slot order, answered slots only */
    size_t n_responses;
    char *comment; /* never NULL; "" when the reply held nothing but preferences */
};

/*
 * Builds a poll from the poll_created / poll_updated payload: poll_id (string, required), title,
 * slots[{slot_id (required, unique), start (RFC 3339, required), end, label}] (1 to
 * DR_POLL_MAX_SLOTS), participants[{email (required), name}]. Unknown fields are ignored. On
 * success *out owns a new poll freed with dr_poll_destroy(); on failure *out is NULL and the error
 * is DR_EINVAL (missing or malformed field) or DR_ETOOBIG (over a DR_POLL_MAX_* limit).
 */
int dr_poll_from_json(const cJSON *json, struct dr_poll **out);
void dr_poll_destroy(struct dr_poll *poll); /* NULL-safe */

/*
 * The participant whose address matches sender: case-insensitive, ignoring a "+tag" in the
 * local part on either side (john+polls@x.com matches John@X.com), and accepting a sender written
 * as "Name <addr>". NULL when nobody matches. The result points into poll.
 */
const struct dr_poll_participant *dr_poll_find_participant(const struct dr_poll *poll,
                                                           const char *sender);

/*
 * Reads the slot preferences in reply_text (the new text of the reply, see dr/reply.h). On
 * success *out owns a new answer (poll_id copied, participant NULL) freed with
 * dr_poll_answer_destroy(); the answer lists only the slots the reply answered, and the comment
 * is the rest of the text, trimmed. On failure *out is NULL and the error is DR_EINVAL (NULL
 * argument) or DR_ETOOBIG (reply over DR_POLL_REPLY_MAX bytes).
 *
 * Understood: slot numbers ("1 yes, 2 no", "#3 no", "Slot 2 - works", "1: ✓", "1-3 work",
 * "1, 2 and 4 are fine", "yes to 1 and 3"), whole-poll answers ("all work", "none of these
 * work", "any of them", "none except 2", "all but 3"), slot labels and times as the poll wrote
 * them or as derived from the slot start in its own UTC offset ("Tuesday 3pm works",
 * "Tue 15:00 is fine", "the Monday one doesn't work", "Nov 27", "the morning one"), yes/no/maybe
 * words in English, French, German and Spanish, symbols (✓ ✗ 👍 👎), and negation
 * ("doesn't work", "can't do", "not available"). When a later statement contradicts an earlier
 * one, the later one wins. A bare "yes"/"no" answers a poll of one slot.
 */
int dr_poll_reply_parse(const struct dr_poll *poll, const char *reply_text,
                        struct dr_poll_answer **out);
void dr_poll_answer_destroy(struct dr_poll_answer *answer); /* NULL-safe */

/* "yes", "no", "maybe" (NULL for DR_POLL_UNANSWERED). */
const char *dr_poll_answer_name(enum dr_poll_answer_value v);

/*
 * Serialises to {"poll_id","participant","responses":[{"slot_id","answer"}],"comment"}
 * (participant is null when unset). *json is a malloc'ed string. DR_EINVAL on NULL arguments.
 */
int dr_poll_answer_to_json(const struct dr_poll_answer *answer, char **json);

/*
 * Maps an iCalendar PARTSTAT (RFC 5545, case-insensitive): ACCEPTED -> yes, TENTATIVE -> maybe,
 * DECLINED -> no. DR_ENOTFOUND for NEEDS-ACTION, DELEGATED and other values that are no answer;
 * DR_EINVAL for NULL.
 */
int dr_poll_partstat_answer(const char *partstat, enum dr_poll_answer_value *out);

#endif
