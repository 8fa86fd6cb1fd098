/*
 * iCalendar (RFC 5545, iTIP RFC 5546) parsing on top of libical, for the calendar-updates topic
 * (DESIGN.md §5) and for meeting-poll replies.
 *
 * Input is checked before libical sees it and the tree libical builds is checked after: any
 * malformed line (libical's X-LIC-ERROR), unbalanced BEGIN/END, control characters, invalid
 * UTF-8 (in a line once unfolded: a fold may split a character), impossible dates or an
 * unresolvable TZID makes the whole object invalid. Two real-world deviations are accepted: an
 * empty TEXT value ("LOCATION:", sent by Google and Outlook) and a DATE written with a trailing Z
 * in RDATE/EXDATE ("RDATE:20131210Z", Google birthdays).
 *
 * Thread-safety: every function here may be called from any thread. libical keeps global state
 * (error state, the builtin time-zone cache, ring buffers), so calls into it are serialised by
 * one lock inside this module; no other module should call libical directly.
 */
#ifndef DR_ICS_H
#define DR_ICS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define DR_ICS_MAX_BYTES      (4u << 20)   /* whole object */
#define DR_ICS_MAX_LINE_BYTES (256u << 10) /* one unfolded content line */
#define DR_ICS_MAX_LINES      65536        /* content lines after unfolding */
#define DR_ICS_MAX_COMPONENTS 4096         /* BEGIN: lines */
#define DR_ICS_MAX_DEPTH      8            /* VCALENDAR > VEVENT > VALARM is 3 */

/*
 * Time zones. libical turns a zone into its transitions year by year, from each observance's
 * DTSTART to the year a time is converted in, under the lock every parse shares; these bound that
 * work (see ics.c). Real VTIMEZONEs have 1 to 60 observances (Outlook 2, the tz database's
 * Europe/London 55), none before 1601 (Windows' start for today's rule).
 */
#define DR_ICS_MAX_TIMEZONES   32   /* VTIMEZONEs in one object, and zones its events use */
#define DR_ICS_MAX_OBSERVANCES 100  /* STANDARD and DAYLIGHT in one VTIMEZONE */
#define DR_ICS_TZ_FIRST_YEAR   1600 /* no observance starts earlier */
#define DR_ICS_TZ_LAST_YEAR    2500 /* no time with a TZID is later (libical stops at 2582) */
#define DR_ICS_MAX_TZ_STEPS    1000 /* transition-years computed for one object (about 25 us each) */

/*
 * Parses one iCalendar object (or several VCALENDARs back to back) of len bytes; text needs no
 * NUL terminator. On success returns DR_OK and *out owns a new object the caller frees with
 * cJSON_Delete():
 *
 *   {"method": "REQUEST" | ... | null,
 *    "events": [{"uid", "sequence", "summary", "description"?, "location"?, "status",
 *                "start": TIME | null, "end": TIME | null, "duration"?,
 *                "organizer": {"email", "name"} | null,
 *                "attendees": [{"email", "name", "partstat", "role", "rsvp"}],
 *                "rrule": ["FREQ=..."], "rdate": [TIME], "exdate": [TIME],
 *                "recurrence_id"?: TIME, "created"?, "last_modified"?}],
 *    "timezones": ["TZID of each VTIMEZONE"]}  (a VTIMEZONE without TZID is ignored)
 *
 *   TIME = {"value": "2026-03-01T10:00:00" | "2026-03-01T09:00:00Z" | "2026-03-01",
 *           "tzid": "Europe/Berlin" | null, "utc": "2026-03-01T09:00:00Z" | null,
 *           "all_day": bool}
 *
 * "utc" is null for all-day and floating times. A TZID is resolved against the object's own
 * VTIMEZONEs first, then libical's builtin (Olson) zones, by name or as libical writes their
 * TZIDs ("/freeassociation.sourceforge.net/Europe/Berlin"). "end" is derived from DURATION when
 * DTEND is absent. Recurrence is returned as rules, never expanded. Emails lose "mailto:" and are
 * lowercased; partstat defaults to NEEDS-ACTION, role to REQ-PARTICIPANT, rsvp to false.
 * uid, summary, status and name are null when absent.
 *
 * An object is refused when its time zones would cost more than the limits above allow: more
 * VTIMEZONEs or observances, an observance starting before DR_ICS_TZ_FIRST_YEAR, an observance
 * RRULE other than the yearly one-month rules real zones use (libical searches a rule that
 * never matches for half a second), a time with a TZID after DR_ICS_TZ_LAST_YEAR, or more than
 * DR_ICS_MAX_TZ_STEPS transition-years to compute (observances are first cut down to the years
 * the object uses). So no object holds the lock for more than a few tens of milliseconds.
 *
 * On failure *out is NULL and the return is DR_EINVAL (malformed: err says which line or
 * property and why), DR_ETOOBIG (a DR_ICS_MAX_* limit) or DR_ENOMEM. err may be NULL; when
 * given it is always NUL-terminated, and email addresses in it are redacted.
 */
int dr_ics_parse(const char *text, size_t len, cJSON **out, char *err, size_t errsz);

/*
 * For an iTIP REPLY: one entry per ATTENDEE of each VEVENT or VTODO,
 *   [{"uid": "...", "attendee": "email", "partstat": "ACCEPTED"}]
 * partstat is the ATTENDEE's PARTSTAT (NEEDS-ACTION when absent): ACCEPTED, TENTATIVE,
 * DECLINED, NEEDS-ACTION, DELEGATED, or for VTODO also IN-PROCESS or COMPLETED.
 * Input is validated exactly as dr_ics_parse() does. *out is owned by the caller (cJSON_Delete).
 * DR_EINVAL when malformed, when METHOD is not REPLY, or when a replying component has no UID;
 * DR_ETOOBIG over a limit. *out is NULL on failure.
 */
int dr_ics_reply_partstats(const char *text, size_t len, cJSON **out);

#endif
