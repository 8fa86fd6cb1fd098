/*
 * Reply extraction: separates the new text of an email reply from the quoted conversation below
 * (or around) it and from the sender's signature.
 *
 * Input is plain text (UTF-8 or any ASCII-compatible charset; invalid bytes are tolerated). HTML
 * bodies are converted to text by the email processor before they get here; that conversion must
 * render <blockquote> and gmail_quote/yahoo_quoted/moz-cite-prefix blocks as lines that start with
 * "> ", which is what this module recognises as quoting.
 *
 * What counts as quoted text:
 *   - lines starting with '>' (two or more of them, or any number after a quote header);
 *   - quote headers ("On <date>, <who> wrote:" and its French, German, Spanish, Italian, Dutch,
 *     Polish, Portuguese, Scandinavian, Russian and Vietnamese forms, wrapped over up to five
 *     lines; "<date> <who> <address>:"; "<who> wrote:"), Outlook header blocks
 *     (From:/Sent:/To:/Subject: and their localized forms, plain or bold), "-----Original
 *     Message-----" and its translations, "Begin forwarded message:"; everything from such a
 *     header down is the earlier message;
 *   - a header sharing a line with the reply ("Thanks! On Mon, ... wrote:") is split off.
 * A message that starts by forwarding ("---------- Forwarded message ----------" before any quote)
 * is returned whole: the forwarded text is what the sender meant to send.
 * Text between quoted blocks (inline replies) and below them (bottom posting) is kept.
 *
 * What counts as a signature (removed unless DR_REPLY_KEEP_SIGNATURE): everything from a "-- "
 * or "--" line, an underscore rule, a mobile footer ("Sent from my iPhone", "Get Outlook for
 * iOS", "Von meinem iPhone gesendet", "Envoyé de mon iPhone", ...) or a trailing "-Name" line to
 * the end of its block.
 *
 * Thread-safe; no I/O. Work is linear in the input: patterns run only on bounded windows of
 * short lines, under PCRE2 match limits.
 */
#ifndef DR_REPLY_H
#define DR_REPLY_H

#include <stddef.h>

/* Inputs longer than this are refused with DR_ETOOBIG. */
#define DR_REPLY_MAX_INPUT (4u * 1024u * 1024u)
/* Only the first DR_REPLY_MAX_LINES lines are examined for headers; later lines are classified
 * by their first character only. */
#define DR_REPLY_MAX_LINES 20000u

enum dr_reply_flags {
    DR_REPLY_KEEP_SIGNATURE = 1u << 0, /* remove quotations only */
};

/*
 * Extracts the new text of the reply in text[0..len) (no NUL needed; CRLF and CR line ends are
 * accepted). On success *reply is a malloc'ed NUL-terminated string the caller frees (possibly
 * "", when the message holds nothing but quotation), with surrounding whitespace trimmed and line
 * ends as LF; *quoted (if quoted is not NULL) is 1 when quoted text was found and removed, else 0.
 * On failure *reply is NULL and the error is DR_EINVAL (NULL arguments), DR_ETOOBIG (input over
 * DR_REPLY_MAX_INPUT), DR_ENOMEM or DR_EUNSUPPORTED (the pattern engine failed to start).
 */
int dr_reply_extract(const char *text, size_t len, char **reply, int *quoted);

/* As dr_reply_extract() with flags from enum dr_reply_flags. */
int dr_reply_extract_ex(const char *text, size_t len, unsigned flags, char **reply, int *quoted);

#endif
