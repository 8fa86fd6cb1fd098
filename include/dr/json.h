/*
 * Thin helpers over cJSON (case-sensitive lookups only; ids stay strings).
 * None of them allocate unless they say so. Thread-safe on distinct objects.
 */
#ifndef DR_JSON_H
#define DR_JSON_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "dr/buf.h"

/* The string at key, or NULL if absent or not a string. */
const char *dr_json_str(const cJSON *obj, const char *key);
/* The integer at key into *out; DR_ENOTFOUND if absent, DR_EINVAL if not an integral number. */
int dr_json_i64(const cJSON *obj, const char *key, int64_t *out);
/*
 * The member key of the JSON object text s[0..len) as an exact integer into *out: its value must
 * be written as one (an optional '-' and digits, without a fraction, an exponent or a leading
 * zero) and fit int64_t. DR_ENOTFOUND when s is an object without that member; DR_EINVAL when its
 * value is anything else (a string, null, 1.0, 1e3, 2^63) or s is no object. Of duplicate
 * members the first counts, as for cJSON's lookups. For integers read to the unit (seqs): cJSON,
 * and dr_json_i64() on its tree, keep a number as a double, which holds every integer only up to
 * 2^53. s is expected to be text dr_json_parse() took; what follows the object is not looked at.
 */
int dr_json_i64_exact(const char *s, size_t len, const char *key, int64_t *out);
/* 1 if the key holds true, 0 otherwise. */
int dr_json_true(const cJSON *obj, const char *key);
/* RFC 6901 JSON pointer lookup ("/a/b/0"); NULL if absent or the pointer is malformed. */
const cJSON *dr_json_pointer(const cJSON *root, const char *pointer);
/* Parses exactly len bytes (no NUL needed). NULL on malformed JSON or len > 64 MiB. What follows
 * the first value is not looked at, as by cJSON. */
cJSON *dr_json_parse(const char *s, size_t len);
/* dr_json_parse(), and *end set to the byte after the value when it returns one, for a caller
 * that refuses what follows it. */
cJSON *dr_json_parse_prefix(const char *s, size_t len, const char **end);
/* 1 when the JSON text s[0..n) holds the escape \u0000 (an escaped backslash followed by "u0000"
 * is not one). cJSON and dr_json_parse() decode it into a NUL, which ends the C string it is in:
 * the rest of that string would be lost without a word. */
int dr_json_has_escaped_nul(const char *s, size_t n);
/* Why the strings of the JSON text s[0..n) would not be read whole and as valid text: "invalid
 * UTF-8" (RFC 8259 wants UTF-8; cJSON keeps such bytes, and a WebSocket client fails on them), or
 * "strings must not contain U+0000" (a NUL byte or \u0000, which cut a C string short). NULL
 * when neither. */
const char *dr_json_text_problem(const char *s, size_t n);
/* Decodes the escapes of a JSON string's content in[0..n) (without its quotes) into out, which
 * has room for n bytes: decoding never lengthens. 0 if an escape is invalid (an unknown one, a
 * \u without four hex digits, a lone or reversed surrogate). */
int dr_json_unescape(const char *in, size_t n, char *out, size_t *outlen);
/* A number as cJSON writes it ("%1.15g", or "%1.17g" when 15 digits do not give it back; whole
 * numbers below 1e15 as their digits; NaN and infinities as null), appended to b. */
int dr_json_append_number(struct dr_buf *b, double d);
/* v as all of its decimal digits (a '-' first when negative), appended to b: for integers a
 * reader takes to the unit, such as seqs. dr_json_append_number() writes a double, which holds
 * every integer only up to 2^53, and from 1e15 may write an exponent. DR_ETOOBIG past b's limit. */
int dr_json_append_i64(struct dr_buf *b, int64_t v);
/* Adds the member name to obj with v written as dr_json_append_i64() writes it: a cJSON_Raw item
 * (cJSON's printers and dr_json_print() write its text as is), not a cJSON number, whose double
 * would round v above 2^53. For a tree that is printed, not read. Aborts on OOM. */
void dr_json_add_i64(cJSON *obj, const char *name, int64_t v);
/* Serialises unformatted into b (appending): the text cJSON_PrintUnformatted() gives. */
int dr_json_append(struct dr_buf *b, const cJSON *item);
/* Serialises unformatted into a malloc'ed string; aborts on OOM. */
char *dr_json_print(const cJSON *item);

#endif
