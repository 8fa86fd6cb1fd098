/*
 * Stored meeting polls: the tables of the meeting_poll processor (polls, poll_keys,
 * poll_participants, poll_responses; migrations 200-209) and the lookups other processors need
 * to tie an email or an iCalendar reply to a poll.
 *
 * The tables exist once dr_poll_store_migrate() has run on the store. The meeting_poll and
 * calendar processors do it in their init; another caller that may run without them (the email
 * processor) calls it in its own init. Every function blocks on the database (call it from
 * worker threads, never from the event loop) and is thread-safe.
 */
#ifndef DR_POLL_STORE_H
#define DR_POLL_STORE_H

#include <stddef.h>

struct dr_store;

/* Applies the poll migrations (idempotent; safe when several processors or instances start at
 * once). DR_OK, or the dr_db_migrate() error. */
int dr_poll_store_migrate(struct dr_store *st);

/*
 * Finds the poll an email answers. Tried in this order, first hit wins:
 *   token   the poll's reply_token (the "+TOKEN" of the address the reply was sent to);
 *   msgids  In-Reply-To / References message ids (with or without angle brackets), in the order
 *           given, matched against the poll email's message_id;
 *   subject a "[poll:ID]" tag anywhere in the subject (case-insensitive "poll:"), when a poll
 *           with that id exists.
 * Any of them may be NULL (msgids with n == 0). On success poll_id_out (sz bytes) holds the
 * NUL-terminated poll id. DR_ENOTFOUND when nothing matches, DR_ETOOBIG when the id does not
 * fit in sz, DR_EINVAL for bad arguments, DR_EIO (or another dr_db error) when the store fails;
 * poll_id_out is "" on any failure (when sz > 0).
 */
int dr_poll_store_match(struct dr_store *st, const char *token, const char *const *msgids, size_t n,
                        const char *subject, char *poll_id_out, size_t sz);

/*
 * Finds the poll whose definition named the iCalendar UID uid (the poll's event_uid or a slot's
 * uid). Same results as dr_poll_store_match().
 */
int dr_poll_store_match_uid(struct dr_store *st, const char *uid, char *poll_id_out, size_t sz);

/*
 * Whether a reply that arrived in the mailbox or calendar of user_id (in org org_id, NULL when
 * the message names none) may answer poll poll_id. Replies go to the poll's organizer, so only
 * the organizer's own mailbox or calendar is believed: user_id must be the poll's
 * organizer_user_id and, when the poll names an org, org_id must be that org. Anyone can put a
 * REPLY with a poll's UID in their own calendar, or a forged From in their own mailbox.
 * DR_OK when it may, DR_EAUTH when it may not, DR_ENOTFOUND when no such poll is stored,
 * DR_EINVAL for bad arguments, a dr_db error when the store fails.
 */
int dr_poll_store_check_mailbox(struct dr_store *st, const char *poll_id, const char *user_id,
                                const char *org_id);

#endif
