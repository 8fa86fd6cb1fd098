/*
 * What an email is, for routing its content: a shipment notification, a reply to a known meeting
 * poll, a calendar invitation or reply, or other. Used by the email processor, the
 * `parse email` tool and the pipeline benchmark. Internal to the email processor folder.
 *
 * An email can be several things at once (a poll answer carrying an iCalendar REPLY; a delivery
 * notice with an .ics delivery window); `kinds` has a bit per finding and `primary` names the
 * one the email is listed as: poll_reply, then shipment, then calendar, then other.
 */
#ifndef DR_PROCESSORS_EMAIL_CLASSIFY_H
#define DR_PROCESSORS_EMAIL_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dr/email.h"

struct dr_store;

enum {
    DR_EMAIL_KIND_SHIPMENT = 1u << 0,
    DR_EMAIL_KIND_POLL_REPLY = 1u << 1,
    DR_EMAIL_KIND_CALENDAR = 1u << 2,
};

/* Longest poll id kept; a longer stored id is treated as no match. */
#define DR_EMAIL_POLL_ID_MAX 255

struct dr_email_class_opts {
    struct dr_store *store;       /* NULL: no poll lookup (poll_lookup is "skipped") */
    const char *reply_local_part; /* the part before "+TOKEN" of poll reply addresses, or NULL */
    /* Optional, for an email parsed with dr__email_parse_lazy(): called when the HTML body would
     * be scanned and em->html is NULL, to read it into em->html (html_arg's email is em).
     * DR_OK, or an error classify returns. */
    int (*load_html)(void *html_arg);
    void *html_arg;
};

struct dr_email_class {
    unsigned kinds;
    const char *primary; /* static: "poll_reply", "shipment", "calendar" or "other" */
    struct dr_email_shipment_cues cues;
    /* dr_shipment_extract() output (owned), NULL when the email was not scanned or the scan
     * failed; `accepted` holds the entries of its "shipments" array this email's cues vouch for
     * (numbers that passed their check digit, or numbers the text labels as tracking numbers in
     * an email the cues call a shipment notification). Pointers into `shipment`. */
    cJSON *shipment;
    const cJSON **accepted;
    size_t n_accepted;
    char poll_id[DR_EMAIL_POLL_ID_MAX + 1]; /* "" unless DR_EMAIL_KIND_POLL_REPLY */
    const char *poll_via;                   /* "token", "thread" (ids or subject tag) or NULL */
    const char *poll_lookup; /* "matched", "no_match", "no_cues", "skipped" (no store) */
    const struct dr_email_calendar *ics_reply; /* first METHOD:REPLY part of em, or NULL */
    uint64_t extract_ns;                       /* time spent in dr_shipment_extract() */
};

/*
 * Classifies em. On DR_OK *c owns what it holds (dr__email_class_cleanup() frees it) and points
 * into em for ics_reply, so em must outlive it. Errors: DR_ENOMEM, or the store's error of the
 * poll lookup (DR_EIO and friends: worth retrying); on error *c holds nothing to free.
 * Thread-safe; blocks on the store only when opts->store is set and the email carries a reply
 * cue (a +TOKEN recipient, In-Reply-To/References, or a "[poll:" subject tag).
 */
int dr__email_classify(const struct dr_email *em, const struct dr_email_class_opts *opts,
                       struct dr_email_class *c);
void dr__email_class_cleanup(struct dr_email_class *c); /* NULL-safe; c may be reused after */

/* The classification as a new JSON object (caller deletes):
 *   {"primary","labels":[..],"shipment":{"score","carrier","status","merchant","order_ids",
 *    "tracking_numbers":[{"tracking_number","carrier","status","valid"}]},
 *    "poll":{"lookup","poll_id","via"},"calendar":[{"method"}]} */
cJSON *dr__email_class_to_json(const struct dr_email *em, const struct dr_email_class *c);

/* The carrier of an accepted entry: its own, else the email's carrier hint (or the cues'
 * carrier) unless that carrier's check digit refutes the number (dr_tracking_refuted()), else
 * NULL. Always one of the shipment module's carrier codes (dr_shipment_carrier_code()): a shop or
 * tracking platform is never a carrier. With entry NULL: the email's carrier. */
const char *dr__email_class_carrier(const struct dr_email_class *c, const cJSON *entry);

#endif
