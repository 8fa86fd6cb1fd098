/*
 * Email parsing: an RFC 5322 / MIME message (or the pre-parsed JSON fields of an email-backfill
 * payload) becomes one struct dr_email with decoded headers, addresses, date, the main text and
 * HTML bodies as UTF-8, the attachment list (names and sizes only) and calendar parts.
 *
 * Parsing is built on GMime 3. dr_email_global_init() initialises it once per process; every
 * other function here calls it as needed, so calling it first is optional but makes start-up
 * cost predictable. After that, dr_email_parse() and dr_email_from_fields() may run on several
 * threads at once: each call owns all of its objects.
 *
 * Hostile input never crashes and never grows memory past the limits: too many parts, too deep
 * nesting, over-long bodies and unknown charsets are handled as far as sensible and listed in
 * em->warnings; only input that cannot be an email at all, exceeds max_message_bytes, or is
 * built to make the parser work or allocate out of all proportion (a flood of boundaries or
 * header lines, a header field over 1 MiB, address groups nested thousands deep) fails, with
 * the reason in dr_email_error_reason().
 */
#ifndef DR_EMAIL_H
#define DR_EMAIL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

struct dr_email_limits {
    size_t max_message_bytes; /* raw message larger than this: DR_ETOOBIG (default 25 MiB) */
    size_t max_parts;         /* MIME parts examined per message (each attached message read
                               * counts its own); the rest is skipped with a warning (500);
                               * beyond 8 x max_parts lines starting with "--" the message is
                               * read no further (a warning says where it stopped) */
    size_t max_depth;         /* multipart nesting followed; deeper parts skipped (20) */
    size_t max_text_bytes;    /* UTF-8 bytes kept per body (text, html, html_text, each
                               * calendar part); longer ones are cut with a warning (1 MiB) */
};

/* The defaults above. */
void dr_email_limits_init(struct dr_email_limits *lim);

struct dr_email_addr {
    char *name;    /* display name, RFC 2047 decoded, whitespace collapsed; NULL if none */
    char *address; /* "local@domain", domain lower-cased; NULL for a group-less bare name, and
                    * (with a warning) for an address that is no RFC 5322 addr-spec or that the
                    * field's text does not hold cleanly ("bob@example.com@evil.com") */
};

struct dr_email_addr_list {
    struct dr_email_addr *v; /* group members are flattened into the list */
    size_t n;
};

struct dr_email_header {
    char *name;  /* lower-case, e.g. "list-id" */
    char *value; /* unfolded, RFC 2047 decoded, UTF-8 */
};

struct dr_email_attachment {
    char *filename;     /* decoded (RFC 2231 / 2047); NULL if the part names none */
    char *content_type; /* "type/subtype", lower-case */
    size_t size;        /* decoded size in bytes */
};

struct dr_email_calendar {
    char *method; /* upper-case iTIP METHOD ("REQUEST", "REPLY", ...); NULL if absent */
    char *ics;    /* decoded iCalendar text, UTF-8 */
};

/*
 * Every string is NUL-terminated, valid UTF-8 and owned by the struct; NULL means absent.
 * text/html/html_text may be truncated at max_text_bytes (a warning says so).
 */
struct dr_email {
    struct dr_email_header *headers; /* selected headers (list, auto-reply, mailer, ...) */
    size_t n_headers;
    char *message_id; /* without angle brackets */
    char *in_reply_to;
    char **references;
    size_t n_references;
    char *subject;
    struct dr_email_addr from; /* first From mailbox; both fields NULL if none */
    struct dr_email_addr_list to, cc, bcc, reply_to;
    int has_date;
    int64_t date_ms; /* Unix epoch milliseconds; valid when has_date */
    char date[32];   /* RFC 3339 with the sender's offset: "2003-07-01T10:52:37+02:00" */
    char *text;      /* main plain-text body; HTML-only mail gets its HTML rendered as text */
    size_t text_len;
    char *html; /* main HTML body as sent (charset converted); NULL if there is none */
    size_t html_len;
    char *html_text; /* html rendered as readable text */
    size_t html_text_len;
    struct dr_email_attachment *attachments;
    size_t n_attachments;
    struct dr_email_calendar *calendar;
    size_t n_calendar;
    char **warnings; /* human-readable, one issue each, in the order found */
    size_t n_warnings;
    /* The messages attached whole (message/rfc822, "Forward as attachment"), each parsed as an
     * email of its own (its subject, From, bodies, calendar parts, its own forwarded ones): what
     * they say is theirs, not this email's. At most 8 per message in all, 3 levels deep, read
     * level by level (this email's own before those attached to them); the attachments list
     * names them too. dr_email_destroy() frees them. */
    struct dr_email **forwarded;
    size_t n_forwarded;
};

/*
 * Initialises GMime once per process. Thread-safe and idempotent. GMime keeps its global state
 * until exit (there is no matching shutdown: workers may still be parsing).
 */
void dr_email_global_init(void);

/*
 * Parses raw[0..len) as an RFC 5322 message. lim may be NULL (defaults). On success *out owns
 * a new dr_email (free with dr_email_destroy()); on failure *out is NULL and the reason is
 * available from dr_email_error_reason() on the same thread:
 *   DR_ETOOBIG  len > max_message_bytes, or a MIME structure built to make parsing slow
 *               (lines starting with "--" times declared boundaries over a fixed budget),
 *               or an address field with over 10,000 ':' (groups nested in groups, which
 *               GMime parses recursively); dr_email_from_fields() drops such a field
 *               with a warning instead
 *   DR_EINVAL   empty input, or no header field could be found (not an email)
 *   DR_ENOMEM   allocation failed
 * Thread-safe; does not block on I/O.
 */
int dr_email_parse(const char *raw, size_t len, const struct dr_email_limits *lim,
                   struct dr_email **out);

/*
 * Builds a dr_email from an email-backfill payload's pre-parsed fields: subject, from, to, cc,
 * date, message_id, in_reply_to, references, body_text, body_html (all optional). Addresses may
 * be RFC 5322 strings ("Ann <a@x.org>, b@y.org"), arrays of such strings, or objects / arrays of
 * objects {name, address}; references a string or an array of strings; date RFC 3339, RFC 5322,
 * or epoch milliseconds. A field of the wrong JSON type gives DR_EINVAL. Same ownership, limits
 * and thread-safety as dr_email_parse().
 */
int dr_email_from_fields(const cJSON *payload, const struct dr_email_limits *lim,
                         struct dr_email **out);

/*
 * The reason of the last failed dr_email_parse() / dr_email_from_fields() on this thread, or ""
 * when the last call succeeded. Static storage per thread; valid until the next call there.
 */
const char *dr_email_error_reason(void);

/* NULL-safe. */
void dr_email_destroy(struct dr_email *em);

/*
 * Serialises em as
 *   {"headers":{...},"message_id","in_reply_to","references":[],"subject",
 *    "from":{"name","address"},"to":[...],"cc":[...],"reply_to":[...],"date","date_ms",
 *    "text","html_text","attachments":[{"filename","content_type","size"}],
 *    "calendar":[{"method","ics"}],"warnings":[...]}
 * with JSON null for absent values. *out is a new cJSON object the caller deletes.
 * DR_ENOMEM on allocation failure (then *out is NULL).
 */
int dr_email_to_json(const struct dr_email *em, cJSON **out);

/*
 * The "+TOKEN" of an address's local part: "poll+Ab3_x@example.com" gives "Ab3_x". When
 * local_prefix is not NULL the part before '+' must equal it (case-insensitive). On success
 * *token is a malloc'ed string the caller frees. DR_ENOTFOUND if the address has no such
 * token, DR_EINVAL if the token is empty, longer than 128 bytes, or has characters outside
 * [A-Za-z0-9._=-]. Thread-safe.
 */
int dr_email_plus_token(const char *address, const char *local_prefix, char **token);

/*
 * Every recipient address of em, lower-cased and without duplicates: To, Cc, Bcc, then the
 * Delivered-To and X-Original-To headers. *addrs is a malloc'ed array of malloc'ed strings;
 * free it with dr_email_strv_free(). Returns DR_OK (possibly with *n == 0) or DR_ENOMEM.
 */
int dr_email_recipients(const struct dr_email *em, char ***addrs, size_t *n);
void dr_email_strv_free(char **v, size_t n);

enum dr_email_ship_status {
    DR_EMAIL_SHIP_NONE = 0,
    DR_EMAIL_SHIP_ORDERED,
    DR_EMAIL_SHIP_SHIPPED,
    DR_EMAIL_SHIP_IN_TRANSIT,
    DR_EMAIL_SHIP_OUT_FOR_DELIVERY,
    DR_EMAIL_SHIP_DELIVERED,
    DR_EMAIL_SHIP_EXCEPTION
};

struct dr_email_shipment_cues {
    int score;           /* 0..100; >= DR_EMAIL_SHIPMENT_THRESHOLD suggests a shipment email */
    int sender_score;    /* part of score from the sender's domain */
    int subject_score;   /* part from subject keywords */
    int body_score;      /* part from the first few KB of text */
    /* static carrier code of the sender's domain, else of a carrier the text names, as the
     * shipment module spells it ("ups", "royal_mail", "auspost"; see dr_shipment_carrier_code());
     * NULL when neither: shops and tracking platforms (Shopify, AfterShip) score, but are no
     * carrier */
    const char *carrier;
    enum dr_email_ship_status status; /* the most advanced status a keyword names */
};

#define DR_EMAIL_SHIPMENT_THRESHOLD 40

/* Scores sender domain and subject (and, weakly, the start of the text) for carrier and
 * retailer cues in English, German, Italian, French, Spanish, Dutch and Polish. Pure function
 * of em; thread-safe. */
struct dr_email_shipment_cues dr_email_shipment_cues(const struct dr_email *em);

/* Static name of a status ("shipped", "out_for_delivery", ...; "none"). */
const char *dr_email_ship_status_name(enum dr_email_ship_status st);

#endif
