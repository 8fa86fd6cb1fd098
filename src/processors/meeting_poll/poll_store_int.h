/*
 * The meeting_poll processor's storage (store.c), shared with its processor.c and unit tests.
 * Every function blocks on the database and is thread-safe; see dr/poll_store.h for the tables.
 */
#ifndef DR_MEETING_POLL_STORE_INT_H
#define DR_MEETING_POLL_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dr/db.h"
#include "dr/poll_reply.h"

/* A stored poll as read back. */
struct dr__poll_rec {
    char *poll_id;
    char *organizer_user_id;
    char *org_id;      /* NULL when the definition had none */
    char *title;       /* NULL when the definition had none */
    cJSON *definition; /* the poll_created / poll_updated payload as stored */
    struct dr_poll *poll;
};
void dr__poll_rec_destroy(struct dr__poll_rec *r); /* NULL-safe */

/* 1 when a reply that arrived in user_id's mailbox or calendar (org org_id, may be NULL) may
 * answer r: the rule of dr_poll_store_check_mailbox(). */
int dr__poll_mailbox_ok(const struct dr__poll_rec *r, const char *user_id, const char *org_id);

/*
 * Stores the definition def (already validated: poll was built from it). create_only (for
 * poll_created) leaves an existing poll as it is; otherwise the poll is replaced when its
 * definition differs, together with its lookup keys (reply_token, message_id, event and slot
 * uids) and its participant list (participants no longer listed are dropped; their answers
 * stay). *changed is 1 when anything was written. One transaction: all or nothing.
 * DR_EEXIST, with nothing written and the reason in why (whysz bytes), when the definition would
 * take what belongs to another poll: a key another poll holds, or the poll_id of a poll with
 * another organizer or org (a poll's organizer and org never change). The same definition again
 * is DR_OK with *changed 0.
 */
int dr__poll_store_put(struct dr_db *db, const cJSON *def, const struct dr_poll *poll,
                       int create_only, int64_t now_ms, int *changed, char *why, size_t whysz);

/* DR_ENOTFOUND when no such poll; DR_EINVAL when the stored definition no longer parses. On
 * success *out is freed with dr__poll_rec_destroy(). */
int dr__poll_store_get(struct dr_db *db, const char *poll_id, struct dr__poll_rec **out);

struct dr__poll_vote {
    const char *slot_id;
    const char *answer; /* "yes" | "no" | "maybe" */
};

/* One participant's answers as a message left them. */
struct dr__poll_apply {
    const char *poll_id;
    const char *email;   /* the participant's address as the poll lists it, lower-cased */
    const char *name;    /* may be NULL */
    int64_t answered_ms; /* the email's Date (or the structured message's time) */
    const char *source;  /* the message that carried them ("email:<Message-ID>", "msg:<id>") */
    const char *comment; /* may be NULL or "" */
    const struct dr__poll_vote *votes;
    size_t nvotes;
};

struct dr__poll_answer_row {
    char *slot_id;
    char *answer;
    int64_t answered_ms;
    char *source;
};

/* The participant's state after an answer was applied. */
struct dr__poll_state {
    struct dr__poll_answer_row *rows; /* every stored answer of the participant, by slot_id */
    size_t nrows;
    int64_t responded_ms; /* 0 = has not answered any slot */
    char *comment;        /* the latest comment, NULL if none */
    int64_t comment_ms;
    char *comment_source; /* the message that carried it; NULL if none or not known */
    int changed; /* this message changed something */
    int current; /* some stored answer (or the latest comment) came from this message */
};
void dr__poll_state_cleanup(struct dr__poll_state *s);

/*
 * Applies a's votes: per (poll, participant, slot) the answer with the latest answered_ms wins
 * (equal times: the greater source), so replays and older emails arriving late change nothing.
 * Marks the participant responded (latest time) and keeps the latest comment, by the same rule.
 * One transaction; *out is filled on success (cleanup with dr__poll_state_cleanup()) and zeroed
 * on failure.
 */
int dr__poll_store_answer(struct dr_db *db, const struct dr__poll_apply *a,
                          struct dr__poll_state *out);

#endif
