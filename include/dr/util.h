/*
 * Small helpers shared by every module: time, allocation, base64, hashing, ids.
 * All functions are thread-safe.
 */
#ifndef DR_UTIL_H
#define DR_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define DR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation that aborts the process on out-of-memory: used for small fixed-size objects only.
 * Buffers sized by outside input use dr_buf with a limit instead. */
void *dr_xmalloc(size_t n);
void *dr_xcalloc(size_t n, size_t sz);
void *dr_xrealloc(void *p, size_t n);
char *dr_xstrdup(const char *s); /* NULL in, NULL out */
char *dr_xstrndup(const char *s, size_t n);
/* A message id without its angle brackets and surrounding blanks ("<id@host>" and "id@host"
 * name the same message): returns where it starts in s and sets *len. */
const char *dr_msgid_bare(const char *s, size_t *len);

int64_t dr_now_ms(void);   /* wall clock, Unix epoch milliseconds */
int64_t dr_mono_ms(void);  /* monotonic milliseconds */
uint64_t dr_mono_ns(void); /* monotonic nanoseconds */
/* RFC 3339 UTC with milliseconds ("2026-11-27T10:00:00.123Z"); out needs 25 bytes. */
void dr_format_time(int64_t epoch_ms, char out[32]);
/* Parses RFC 3339 (with or without fraction, Z or offset) into epoch ms. DR_EINVAL if bad. */
int dr_parse_time(const char *s, int64_t *epoch_ms);

/* Base64: standard alphabet with padding, or URL-safe (padding optional on decode).
 * Decode ignores no characters: whitespace or junk gives DR_EINVAL. *out is malloc'ed and
 * NUL-terminated (not counted in *outlen). */
int dr_base64_encode(const void *in, size_t len, char **out, size_t *outlen);
int dr_base64url_encode(const void *in, size_t len, char **out, size_t *outlen); /* no padding */
int dr_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);
int dr_base64url_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);
/* The same decoders writing into out, which must hold DR_BASE64_DECODED_MAX(len) bytes (no NUL is
 * added). On DR_EINVAL the content of out is unspecified. */
#define DR_BASE64_DECODED_MAX(len) ((len) / 4 * 3 + 2)
int dr_base64_decode_into(const char *in, size_t len, unsigned char *out, size_t *outlen);
int dr_base64url_decode_into(const char *in, size_t len, unsigned char *out, size_t *outlen);
/* A Pub/Sub message's data as the publish API takes it: the standard alphabet with padding, else
 * the URL-safe one with or without. Otherwise as dr_base64_decode(). */
int dr_base64_data_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);
int dr_base64_data_decode_into(const char *in, size_t len, unsigned char *out, size_t *outlen);

/* SHA-256 of data as 64 lowercase hex characters + NUL. */
void dr_sha256_hex(const void *data, size_t len, char out[65]);
/* Constant-time equality of two byte strings (length is not secret). */
int dr_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* A random 128-bit id as 32 lowercase hex characters + NUL. */
/* This instance's name where it owns rows in a shared store (queue leases, replay jobs):
 * DR_INSTANCE_ID when set, else host:port, so a restart on the same host and port takes its own
 * rows back at once. */
void dr_instance_name(int port, char *out, size_t outsz);
void dr_random_id(char out[33]);
/* An id that sorts by creation time, as 32 lowercase hex characters + NUL: the wall clock in
 * Unix epoch milliseconds (12 digits), then 80 random bits. Ids kept in a b-tree (notification
 * ids) then go to its last leaves instead of one anywhere in it per id. */
void dr_time_id(char out[33]);
/* FNV-1a, 64 bits: fast, for tables and caches, not for keys whose collisions an attacker could
 * aim at. dr_hash_str hashes a NUL-terminated string; dr_hash_more goes on from h over n bytes. */
#define DR_HASH_INIT 1469598103934665603ULL
uint64_t dr_hash_more(uint64_t h, const void *p, size_t n);
uint64_t dr_hash_str(const char *s);
/* Uniform random double in [0, 1) from a thread-local generator. */
double dr_random_unit(void);

/* 1 when s[0..n) is well-formed UTF-8: no overlong forms, no surrogates, nothing above
 * U+10FFFF (NUL bytes are allowed). */
int dr_utf8_valid(const void *s, size_t n);
/* The same, and no NUL byte: what g_utf8_validate() accepts. */
int dr_utf8_valid_text(const void *s, size_t n);
/* Encodes code point cp (<= 0x10FFFF, not a surrogate) as UTF-8 into out; returns 1-4. */
size_t dr_utf8_encode(uint32_t cp, char out[4]);
/* Length of the longest prefix of s (len bytes) of at most max bytes that does not end inside a
 * UTF-8 sequence. */
size_t dr_utf8_cut(const char *s, size_t len, size_t max);

/* Parses a whole decimal string into *out; DR_EINVAL when not all of s is a number in range.
 * As strtoll(), it takes white space and a '+' before the digits. */
int dr_parse_i64(const char *s, int64_t *out);
/*
 * Parses s, a number from outside (a query parameter, say), as a whole number from min to max:
 * decimal digits, with a '-' before them for a negative number, and nothing else (no '+', no
 * white space, nothing after the digits). DR_OK with it in *out; DR_EINVAL for NULL, "", any
 * other text and a number outside [min, max] or int64_t, leaving *out as it was.
 */
int dr_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
