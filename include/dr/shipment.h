/*
 * Shipment tracking: find parcel tracking numbers in text, validate each against its carrier's
 * format and check digit, and read the delivery status, merchant and order numbers of a carrier
 * or shop notification email.
 *
 * The carrier rules are compiled into the library (no data files at run time). Every function
 * here is thread-safe: the compiled patterns are shared read-only and each call keeps its own
 * match state. dr_shipment_init() is optional (the first call of any function runs it);
 * dr_shipment_cleanup() is for process shutdown only, when no other thread uses this module.
 */
#ifndef DR_SHIPMENT_H
#define DR_SHIPMENT_H

#include <stddef.h>

#include <cjson/cJSON.h>

enum dr_shipment_status {
    DR_SHIP_UNKNOWN = 0,
    DR_SHIP_LABEL_CREATED,
    DR_SHIP_IN_TRANSIT,
    DR_SHIP_OUT_FOR_DELIVERY,
    DR_SHIP_DELIVERED,
    DR_SHIP_EXCEPTION,
    DR_SHIP_RETURNED
};

/* Longest tracking number handled, in characters (FedEx 34 and the USPS 420+ZIP+IMpb forms). */
#define DR_TRACKING_MAX 40

/* Inputs longer than this are refused with DR_ETOOBIG rather than scanned. */
#define DR_SHIPMENT_MAX_INPUT (8u * 1024 * 1024)

/*
 * One carrier format a number matched. Strings point into static tables (never freed).
 * number is the number without spaces; check_pos is the index in number of its check digit,
 * or -1 for formats that have none (those are accepted in free text only with context, see
 * dr_shipment_extract()).
 */
struct dr_tracking_match {
    char number[DR_TRACKING_MAX + 1];
    const char *carrier;     /* carrier code: "ups", "fedex", "royal_mail", "s10", ... */
    const char *format;      /* format id: "ups", "fedex_12", "usps_impb_c", "s10", ... */
    const char *format_name; /* "FedEx Express (12)" */
    int check_pos;
    char country[3];           /* S10 only: issuing country ("GB"), else "" */
    const char *operator_name; /* S10 only: postal operator ("Royal Mail"), else NULL */
};

/* Compiles the patterns. Idempotent and thread-safe; DR_ENOMEM or DR_EINVAL if that fails. */
int dr_shipment_init(void);
/* Frees the compiled patterns. Call only at shutdown, when no thread uses this module. */
void dr_shipment_cleanup(void);

/*
 * Validates one tracking number (spaces between characters are allowed; letters must be upper
 * case, as carriers print them). Writes up to max matches, one per format whose layout and check
 * digit fit, into out and their count into *n: more than one when the number is ambiguous between
 * carriers. Returns DR_OK when at least one format matched, DR_ENOTFOUND when none did (also for
 * a wrong check digit, a number that is one digit repeated, or a serial whose digits are all the
 * same in a format with a check digit: "000000000000", "1Z0000000000000000"), DR_EINVAL for NULL
 * arguments or a string longer than 4 * DR_TRACKING_MAX.
 */
int dr_tracking_validate(const char *number, struct dr_tracking_match *out, size_t max, size_t *n);

/*
 * Whether the check digit of carrier (a carrier code: "ups", "royal_mail", ..., or a name
 * dr_shipment_carrier_code() reads as one: "UPS") speaks against
 * number, read as dr_tracking_validate() reads it: 1 when number validates as none of carrier's
 * formats but has the layout of one of them that carries a check digit (the check digit is
 * wrong, or the number is a placeholder such as "000000000000"); 0 otherwise, also when carrier
 * has no such format or is unknown (a label naming the carrier may then vouch for the number).
 * *format (may be NULL) gets the static name of that format, or NULL. Any thread.
 */
int dr_tracking_refuted(const char *number, const char *carrier, const char **format);

/*
 * The carrier code this module uses for name: "UPS", " ups", "Royal Mail" and "royal-mail" give
 * "ups" and "royal_mail" (compared without regard to ASCII case, blanks and hyphens read as
 * underscores). A static string, or NULL when name is not a carrier this module knows: shops and
 * tracking platforms ("shopify", "aftership") are not carriers. Any thread.
 */
const char *dr_shipment_carrier_code(const char *name);

/*
 * Writes the carrier's public tracking page for m into buf ("https://...?tracknumbers=..."),
 * NUL-terminated. DR_ENOTFOUND when the format has no tracking page, DR_ETOOBIG when bufsz is
 * too small (buf is then "").
 */
int dr_tracking_url(const struct dr_tracking_match *m, char *buf, size_t bufsz);

/* Static lower-case name ("in_transit", ...). Never NULL. */
const char *dr_shipment_status_name(enum dr_shipment_status s);
/* DR_EINVAL when name is not one of the names above. */
int dr_shipment_status_parse(const char *name, enum dr_shipment_status *out);

/*
 * The delivery status a text announces: a subject line, an email body, or a carrier event such
 * as "Out for delivery" or "Zugestellt". Understands English, German, French, Italian, Spanish,
 * Dutch, Polish and Portuguese carrier wording. Plain text or HTML. DR_SHIP_UNKNOWN when the text
 * names no status (or text is NULL). Negated delivery wording ("was not delivered", "Nicht
 * zugestellt", "Non livré") is DR_SHIP_EXCEPTION, never DR_SHIP_DELIVERED. A text that is only a
 * status name in any case ("Exception", "In transit") is that status.
 */
enum dr_shipment_status dr_shipment_status_from_text(const char *text, size_t len);

/*
 * Reads a shipping notification. subject and from (an RFC 5322 From value, "Name <a@b>") may be
 * NULL; text is the body, plain text or HTML, len bytes (need not be NUL-terminated; any bytes).
 * On success *out is a new object the caller frees with cJSON_Delete():
 *
 *   {"shipments":[{"tracking_number":"1Z...","carrier":"ups","carriers":["ups"],
 *                  "format":"ups","formats":["ups"],"status":"in_transit","valid":true,
 *                  "tracking_url":"https://...","source":"pattern"}, ...],
 *    "merchant":"Amazon"|null, "order_ids":["123-1234567-1234567"],
 *    "carrier_hint":"amazon"|null, "status":"delivered"}
 *
 * valid:true entries passed their format and check digit; carriers lists every carrier the
 * number is valid for (carrier is the likeliest: the one the email comes from, else the first).
 * Formats without a check digit, and short numeric formats whose check digit catches only one
 * typo in ten, are reported from free text only with context (a tracking keyword or the carrier
 * named nearby, or the email coming from that carrier). A number the text labels as a tracking
 * number ("Tracking number: X", "Sendungsnummer X", a carrier tracking link) that fits no format
 * is reported with valid:false, carrier null and source "context". carrier_hint is the carrier
 * the sender, subject or body point to, also when every number is redacted.
 *
 * Errors: DR_EINVAL (text NULL with len > 0, or out NULL), DR_ETOOBIG (len or a header over
 * DR_SHIPMENT_MAX_INPUT), DR_ENOMEM. On error *out is NULL.
 */
int dr_shipment_extract(const char *subject, const char *from, const char *text, size_t len,
                        cJSON **out);

#endif
