/*
 * The audit log (DESIGN §8): one line for every request to the admin API, for every action on
 * dead letters and for every access to a user's inbox, on stderr with the other logs, with
 * component "audit". Audit lines are written whatever the log level (dr_log_record()):
 *
 *   {"ts":"...","level":"info","component":"audit","msg":"admin request","actor":"ops",
 *    "method":"DELETE","path":"/admin/dlq/7","status":200,"peer":"10.1.2.3"}
 *   {"ts":"...","level":"info","component":"audit","msg":"inbox access","actor":"alice",
 *    "action":"list","via":"http","status":200,"count":12,"unread_only":0,"limit":50}
 *
 * A line never holds an API key, a token or a notification's content. A user id or query value
 * that is an email address is shortened as dr_log_redact_email() does; query values other than
 * the admin and inbox APIs' own parameters are written as "*". Every string is cut to 256
 * bytes, and bytes that are not UTF-8 become '?'. Thread-safe.
 */
#ifndef DR_AUDIT_H
#define DR_AUDIT_H

#include <stddef.h>

#include "dr/http.h"
#include "dr/log.h"

/*
 * Marks req as an admin API request made by actor: an API key's name, "loopback" (no keys
 * configured), or "anonymous" (no valid key presented). Its line ("admin request": actor,
 * method, path, query, status, peer) is written when req is answered, whatever the answer.
 * actor must live until then (a key's name lives in the config). Loop thread.
 */
void dr_audit_admin(struct dr_http_req *req, const char *actor);

/*
 * An access to sub's inbox ("inbox access"): action is list, unread_count, read or read_all,
 * via is "http" or "ws" (an ack frame), status is the HTTP status of the answer (for "ws", the
 * one the same request over HTTP would have had), extra holds the action's own fields (counts,
 * seqs, the notification id). Any thread.
 */
void dr_audit_inbox(const char *sub, const char *action, const char *via, int status,
                    const struct dr_log_field *extra, size_t nextra);

/*
 * An action on dead letters through the admin API: msg says which ("dead letter discarded",
 * "dead letter replayed", "dead letters replayed by filter", "dead-letter replay job started",
 * "... job cancel", "... job finished"), f its fields (ids, counts, states: never a message's
 * data or attributes). Any thread.
 */
void dr_audit_dlq(const char *msg, const struct dr_log_field *f, size_t n);

/*
 * Writes raw query (as received, percent-encoded) into out as an audit line shows it: each
 * parameter of the admin and inbox APIs (after, limit, user, transport, topic, processor, reason,
 * error, since, until, before, unread) keeps its value unless the value holds an '@'; any other
 * value becomes "*", and so does a parameter whose name is not a short word. Parameters that do
 * not fit in outsz - 1 bytes are left out ("&..." says so). out is always NUL-terminated.
 */
void dr_audit_query(const char *query, char *out, size_t outsz);

#endif
