/*
 * Structured logging: one JSON object per line on stderr:
 *   {"ts":"2026-11-27T10:00:00.123Z","level":"info","component":"http","msg":"listening","port":8080}
 * The fields come from a printf-style format of "key=value" pairs separated by spaces:
 *   DR_WARN("pull", "pull refused", "subscription=%s attempts=%d error=\"%s\"", sub, n, why);
 * The keys, and where each value starts and ends, are read from the format, never from the
 * arguments: a value holds whatever its argument holds (quotes, backslashes, spaces, '=',
 * newlines, bytes that are not UTF-8 become '?') and cannot end the line or add a field. In the
 * format a value runs to the next space, or is wrapped in double quotes to hold spaces of its
 * own text ("error=\"store: %s\""). A value that is one numeric conversion on its own, unquoted
 * (%d, %lld, %zu, %u, %g, ...), is a JSON number; every other one is a JSON string, %s included
 * even when it prints digits (a message_id "123" stays "123"). Words of the format that are not
 * key=value are kept in one "extra" field. A value is cut at 2048 bytes (marked "..."), and a
 * field that would make the line longer than 64 KiB is left out, so each line stays one JSON
 * object. %n is not supported: the fields from there on are left out.
 *
 * Never pass bodies, full email addresses, tokens or secrets (use dr_log_redact_email()).
 * Thread-safe: each line is written with one write(2).
 */
#ifndef DR_LOG_H
#define DR_LOG_H

#include <stddef.h>

enum dr_log_level { DR_LOG_DEBUG, DR_LOG_INFO, DR_LOG_WARN, DR_LOG_ERROR };

void dr_log_set_level(enum dr_log_level lvl);
int dr_log_parse_level(const char *s, enum dr_log_level *out); /* DR_EINVAL if unknown */
void dr_log(enum dr_log_level lvl, const char *component, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * One field of dr_log_fields(): a string when str is not NULL, else the number real when
 * is_real is set (null when it is not finite), else the integer num. Made with the macros
 * below, which leave the other members zero.
 */
struct dr_log_field {
    const char *key;
    const char *str;
    long long num;
    double real;
    int is_real;
};

#define DR_LOG_STR(k, s)  ((struct dr_log_field){.key = (k), .str = (s)})
#define DR_LOG_INT(k, n)  ((struct dr_log_field){.key = (k), .num = (n)})
#define DR_LOG_REAL(k, v) ((struct dr_log_field){.key = (k), .real = (v), .is_real = 1})

/*
 * The same line as dr_log() from fields given one by one. A string is written as a JSON string
 * as given (escaped; not UTF-8: see dr_log()), so text that comes from outside (a user id, a
 * path, a key's name) cannot end the line or add fields of its own.
 */
void dr_log_fields(enum dr_log_level lvl, const char *component, const char *msg,
                   const struct dr_log_field *f, size_t n);
/* dr_log_fields() at level info, written whatever level dr_log_set_level() set: for records
 * that must not be filtered out with the diagnostics (the audit log, dr/audit.h). */
void dr_log_record(const char *component, const char *msg, const struct dr_log_field *f, size_t n);

#define DR_DEBUG(comp, msg, ...) dr_log(DR_LOG_DEBUG, comp, msg, __VA_ARGS__)
#define DR_INFO(comp, msg, ...)  dr_log(DR_LOG_INFO, comp, msg, __VA_ARGS__)
#define DR_WARN(comp, msg, ...)  dr_log(DR_LOG_WARN, comp, msg, __VA_ARGS__)
#define DR_ERROR(comp, msg, ...) dr_log(DR_LOG_ERROR, comp, msg, __VA_ARGS__)

/*
 * Writes a loggable form of an email address into out ("j***@example.com"): the first character
 * of the local part and the domain. out is always NUL-terminated.
 */
void dr_log_redact_email(const char *addr, char *out, size_t outsz);

#endif
