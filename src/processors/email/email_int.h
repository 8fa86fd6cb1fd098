/*
 * Internals shared by the files of the email processor. Not a public interface.
 */
#ifndef DR_EMAIL_INT_H
#define DR_EMAIL_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dr/buf.h"
#include "dr/email.h"
#include "dr/index.h"

struct dr_email_class;

/* At most this many warnings are kept; one more says how many were dropped. */
#define DR_EMAIL_MAX_WARNINGS   64
#define DR_EMAIL_MAX_ADDRESSES  1000 /* per address list */
#define DR_EMAIL_MAX_REFERENCES 100
#define DR_EMAIL_MAX_CALENDAR   16
#define DR_EMAIL_MAX_FORWARDED  8 /* attached messages parsed per message, nested ones included */
#define DR_EMAIL_FORWARD_DEPTH  3 /* forwards of forwards parsed */
#define DR_EMAIL_MAX_HEADER     16384 /* UTF-8 bytes kept of one header value */
#define DR_EMAIL_DEPTH_CEILING  100   /* max_depth is clamped to this: bounds our own stack */

/*
 * Renders HTML (UTF-8) as readable text appended to out: script, style, title and comments
 * dropped, block elements become line breaks, entities decoded, links kept as "text (url)",
 * whitespace collapsed outside <pre>. Returns DR_OK, or DR_ETOOBIG when out reached its limit
 * (out then holds the text up to the limit, cut at a character boundary).
 */
int dr__email_html_to_text(const char *html, size_t len, struct dr_buf *out);

/* Appends a warning to em (capped at DR_EMAIL_MAX_WARNINGS, duplicates dropped). */
void dr__email_warn(struct dr_email *em, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records the failure reason for dr_email_error_reason() on this thread; NULL clears it. */
void dr__email_set_reason(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Returns a malloc'ed copy of s[0..n) that is valid UTF-8 (invalid sequences become U+FFFD),
 * without NUL bytes, cut at a character boundary to at most max bytes. *cut is set to 1 when
 * something was cut (may be NULL). Never NULL (aborts on OOM like dr_xmalloc).
 */
char *dr__email_utf8_dup(const char *s, size_t n, size_t max, int *cut);

/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8 sequence. */
size_t dr__email_utf8_boundary(const char *s, size_t n);

/* Trims, collapses internal whitespace runs to one space; NULL when nothing is left. Takes
 * ownership of s. */
char *dr__email_clean_line(char *s);

/* Sets a->name / a->address from raw strings (either may be NULL), normalised. */
void dr__email_addr_set(struct dr_email_addr *a, const char *name, const char *address);

/* 1 when a is an RFC 5322 addr-spec (UTF-8 allowed, RFC 6532): a dot-atom or quoted-string
 * local part, exactly one '@' outside it, a dot-atom domain or a domain literal. */
int dr__email_addr_spec_ok(const char *a);

/* Appends one address to l (name/address normalised); 0, or DR_ETOOBIG past the cap (nothing
 * appended). An address with an '@' that is no addr-spec is left out: DR_EINVAL, the name (if
 * any) appended alone. */
int dr__email_addr_push(struct dr_email_addr_list *l, const char *name, const char *address);

/* Sets em->date / date_ms from a broken-down time and its UTC offset in seconds. */
void dr__email_set_date(struct dr_email *em, int64_t epoch_s, int offset_s);

/* Renders the bodies: html_text from html, and text from html_text when text is NULL. */
int dr__email_finish_bodies(struct dr_email *em, const struct dr_email_limits *lim);

/* dr__email_parse_ex() flag: leave html_text NULL when the email has a text body (no rendering,
 * and no warning about cutting it). For callers that read html_text only in place of text. */
#define DR__EMAIL_NO_HTML_TEXT 1u

/* Internal to parse.c: set by dr__email_parse_lazy(). */
#define DR__EMAIL_LAZY_HTML 2u

/* dr_email_parse() with DR__EMAIL_* flags; same contract otherwise. */
int dr__email_parse_ex(const char *raw, size_t len, const struct dr_email_limits *lim,
                       unsigned flags, struct dr_email **out);

/* An email's HTML body not read yet, and the parsed message it is read from. */
struct dr__email_lazy;

/*
 * dr__email_parse_ex() with DR__EMAIL_NO_HTML_TEXT, which also leaves em->html NULL when the
 * email has a text body: *lazy then holds what dr__email_lazy_html() reads it from (else NULL).
 * raw must stay as it is until *lazy is freed, and *lazy must be freed before em is destroyed
 * (dr__email_lazy_free()). Everything else in em is what dr__email_parse_ex() gives, except the
 * order of the warnings and the warnings of the HTML body until it is read.
 */
int dr__email_parse_lazy(const char *raw, size_t len, const struct dr_email_limits *lim,
                         unsigned flags, struct dr_email **out, struct dr__email_lazy **lazy);

/* Reads the HTML body left unread into em->html (NULL-safe, once: later calls do nothing), as
 * dr__email_parse_ex() reads it, with its warnings. DR_OK or DR_ENOMEM. */
int dr__email_lazy_html(struct dr__email_lazy *lz, struct dr_email *em);

void dr__email_lazy_free(struct dr__email_lazy *lz); /* NULL-safe */

/* dr__email_finish_bodies() honouring DR__EMAIL_NO_HTML_TEXT. */
int dr__email_finish_bodies_ex(struct dr_email *em, const struct dr_email_limits *lim,
                               unsigned flags);

/* The shipment cue words (cues.c): lower-case UTF-8, the status each names, its points. */
struct dr__email_word_cue {
    const char *word;
    enum dr_email_ship_status status;
    int points;
};
extern const struct dr__email_word_cue dr__email_word_cues[];
extern const size_t dr__email_word_cue_count;

#define DR__EMAIL_MAX_CUE_WORDS 64

/* The cues found in a case-folded text (cues.c). */
struct dr__email_cue_hits {
    const char *word[DR__EMAIL_MAX_CUE_WORDS]; /* first occurrence of each cue word at a word
                                                  start, or NULL */
    int phrase;                                /* some body phrase occurs (anywhere) */
    uint32_t names;                            /* carrier names occurring as whole words */
};

/*
 * Finds the cues in the folded text s[0..n): cue words where a word starts, with body also
 * carrier names as whole words and body phrases anywhere. bytewise: a byte at a time (the
 * reference the tests hold the 16-byte scan to), else 16 bytes at a time where SSE2 is; the
 * same hits either way. Thread-safe.
 */
void dr__email_scan_cues(const char *s, size_t n, int body, int bytewise,
                         struct dr__email_cue_hits *h);

/*
 * Writes to out (cap bytes) what g_utf8_strdown(s, len) returns, up to its first NUL byte, and
 * returns that length; SIZE_MAX when it does not fit (out is then undefined). ASCII is folded
 * here, other characters through glib's tables (locale as g_utf8_strdown() sees it without
 * setlocale()). Reads s as glib does: up to len bytes or a NUL byte, a sequence's bytes past len
 * only while they are not NUL. Thread-safe.
 */
size_t dr__email_fold_into(const char *s, size_t len, char *out, size_t cap);

/*
 * Writes to out the ASCII bytes s starts with, upper case letters lowered, up to max of them
 * or the first NUL or non-ASCII byte; returns how many. s may be read up to avail bytes (0: up to
 * the bytes examined), 16 at a time where SSE2 is; out has room for max. Thread-safe.
 */
size_t dr__email_lower_ascii(const char *s, size_t avail, size_t max, char *out);

/*
 * Points of the cue words in the case-folded text folded[0..len): each word counts once, where a
 * word starts. *st gets the most advanced status named, or with earliest set the status named
 * first (left as it was when none is). Thread-safe.
 */
int dr__email_text_cues(const char *folded, size_t len, int earliest,
                        enum dr_email_ship_status *st);

/*
 * Content-Transfer-Encoding decoders (decode.c). The decoded bytes of in[0..len) are appended to
 * out up to its limit; *cut is 1 when more did not fit. DR_OK, or DR_ENOMEM. The output is what
 * GMime's basic filter gives when the part is read through a GMimeStreamFilter, malformed input
 * included (base64: bytes outside the alphabet skipped, the first '=' ends the data after the
 * bytes of its quartet so far, an incomplete quartet at the end dropped; quoted-printable: "=XX"
 * in either case decoded, "=\n" and "=\r\n" soft breaks dropped, any other '=' kept with the
 * two bytes after it, an incomplete escape at the end dropped), except that quoted-printable
 * transport padding goes with its soft break: "=  \r\n" and "=\t\n" are soft breaks, and '='
 * with blanks at the very end is dropped (RFC 2045 6.7; GMime keeps them).
 */
int dr__email_decode_base64(const char *in, size_t len, struct dr_buf *out, int *cut);
int dr__email_decode_qp(const char *in, size_t len, struct dr_buf *out, int *cut);

/* The transfer encodings dr__email_decoded_len() knows. */
enum dr__email_cte {
    DR__EMAIL_CTE_IDENTITY, /* 7bit, 8bit, binary, none: the bytes as they are */
    DR__EMAIL_CTE_BASE64,
    DR__EMAIL_CTE_QP,
};

/* The number of bytes the decoder of cte gives for in[0..len) (what GMime's basic filter, or no
 * filter, writes for the part), without keeping them. */
size_t dr__email_decoded_len(const char *in, size_t len, enum dr__email_cte cte);

/* What a step of the decoders below may carry into the next and write there on top of that
 * step's input: '=', up to 32 blanks and a CR of quoted-printable padding that turned out to be
 * none. */
#define DR__EMAIL_QP_CARRY 34

/* One step of those decoders over in[0..len): out holds at least len + DR__EMAIL_QP_CARRY bytes
 * (quoted-printable; len when it is the first step) or len / 4 * 3 + 3 (base64); state and save
 * start at 0 and carry what a step leaves over to the next. Returns the bytes written. */
size_t dr__email_base64_step(const unsigned char *in, size_t len, unsigned char *out, int *state,
                             uint32_t *save);
size_t dr__email_qp_step(const unsigned char *in, size_t len, unsigned char *out, int *state,
                         uint32_t *save);

#define DR__EMAIL_DOCID_MAX (DR_INDEX_DOCID_MAX + 1) /* dr_index_docid() of user_id, email_id */
/* Bound of an index operation's JSON: well above what its bounded fields escape to */
#define DR__EMAIL_INDEX_OP_MAX ((size_t)256 * 1024 * 1024)

/*
 * Appends to out the index operation (a put of doctype "email") for em as classified by cls,
 * byte for byte what dr_index_emit() prints for the same fields (index.c): pl is the message's
 * payload (user_id, email_id, org_id, thread_id, account, provider, labels), event_time the
 * email's date, text_bytes the bound on the indexed text. docid gets the operation's docid, its
 * ordering key. DR_OK, or DR_ENOMEM / DR_ETOOBIG with out as it was.
 */
int dr__email_index_op(const struct dr_email *em, const struct dr_email_class *cls, const cJSON *pl,
                       const char *event_time, size_t text_bytes, struct dr_buf *out,
                       char docid[DR__EMAIL_DOCID_MAX]);

/* What the messages the email processor forwards say about where they come from. */
struct dr__email_msg_ids {
    const char *user_id, *org_id, *email_id;
    const char *event_time; /* the email's date, else when it was received */
};

#define DR__EMAIL_POLL_BODY_MAX (256 * 1024) /* reply text forwarded to the poll */
/* Bound of a forwarded message's JSON: well above what its bounded fields escape to */
#define DR__EMAIL_MSG_MAX ((size_t)256 * 1024 * 1024)

/*
 * Append to out the JSON of a forwarded message (emit.c), byte for byte what cJSON printed for
 * the same fields: `shipment_detected` for the accepted entry of cls (a member of
 * cls->shipment's tracking numbers), `poll_response_email` for em answering cls->poll_id,
 * `calendar_event` for the part cal (cal->ics not NULL). DR_OK, or DR_ENOMEM / DR_ETOOBIG with
 * out as it was.
 */
int dr__email_shipment_msg(const struct dr_email_class *cls, const cJSON *entry,
                           const struct dr__email_msg_ids *ids, struct dr_buf *out);
int dr__email_poll_msg(const struct dr_email *em, const struct dr_email_class *cls,
                       const struct dr__email_msg_ids *ids, struct dr_buf *out);
int dr__email_calendar_msg(const struct dr_email_calendar *cal, const struct dr__email_msg_ids *ids,
                           struct dr_buf *out);

/* The per-thread scratch buffers (scratch.c), one allocation kept per slot between emails. */
enum dr__email_scratch_slot {
    DR__EMAIL_SCRATCH_RAW,  /* the decoded raw message (processor.c) */
    DR__EMAIL_SCRATCH_PART, /* a part's decoded bytes (parse.c read_text()) */
    DR__EMAIL_SCRATCH_CONV, /* a part converted to UTF-8 (parse.c read_text()) */
    DR__EMAIL_SCRATCH_N
};
#define DR__EMAIL_SCRATCH_KEEP ((size_t)4 * 1024 * 1024) /* largest allocation a slot keeps */

/*
 * Gives the empty, allocation-less buffer b (dr_buf_init()ed, its limit kept) the calling
 * thread's allocation of slot, when it has one (b->data then "", b->cap its size); b is left as
 * it was otherwise. The allocation is b's until given back or handed on (dr_buf_steal() etc.).
 */
void dr__email_scratch_take(enum dr__email_scratch_slot slot, struct dr_buf *b);

/* Ends b as dr_buf_cleanup() does, keeping its allocation for slot when the slot is empty and
 * the allocation at most DR__EMAIL_SCRATCH_KEEP bytes (freed otherwise). */
void dr__email_scratch_give(enum dr__email_scratch_slot slot, struct dr_buf *b);

/* dr__email_raw_decode() into o, which holds DR_BASE64_DECODED_MAX(len) + 1 bytes (NUL-terminated
 * there); *outlen gets the decoded length. DR_OK or DR_EINVAL (o then undefined). */
int dr__email_raw_decode_into(const char *in, size_t len, unsigned char *o, size_t *outlen);

/*
 * Decodes the email processor's raw field in[0..len): what dr_base64url_decode() returns, or
 * when that refuses it, what dr_base64_decode() does (same results, same malloc'ed,
 * NUL-terminated *out), in one pass. DR_OK, DR_EINVAL (in neither alphabet's rules) or
 * DR_ENOMEM.
 */
int dr__email_raw_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);

/*
 * What GMime's boundary checks can cost on raw[0..len): *lines gets the number of lines starting
 * with "--", *bounds the number of "boundary=" (any case) parameters. The parser refuses a
 * message whose product of the two is over its budget.
 */
void dr__email_boundary_work(const char *raw, size_t len, size_t *lines, size_t *bounds);
/* How many ':' raw[0..len) holds, counting stopped once past max (the result is then > max). */
size_t dr__email_count_colons(const char *raw, size_t len, size_t max);

/* Ensures GMime is initialised (pthread_once). */
void dr__email_gmime_init(void);

/* Parses an RFC 5322 address-list string with GMime into l. */
void dr__email_parse_addresses(struct dr_email *em, struct dr_email_addr_list *l, const char *text,
                               const char *what);

/* Parses an RFC 5322 date string; 0 on success. */
int dr__email_parse_date(struct dr_email *em, const char *text);

#endif
