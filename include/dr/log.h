/*
 * Structured logging: one JSON object per line on stderr:
 *   {"ts":"2026-11-27T10:00:00.123Z","level":"info","component":"http","msg":"listening","port":8080}
 * The fields come from a printf-style "key=value key=value" string. A value runs to the next
 * space; wrap it in double quotes to include spaces. Values that look like integers are written
 * as JSON numbers, everything else as strings.
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
