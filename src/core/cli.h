/* Command-line helpers shared by main.c and the parse/extract tools. */
#ifndef DR_CORE_CLI_H
#define DR_CORE_CLI_H

#include <stdarg.h>
#include <stddef.h>

void dr_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads path ("-" = stdin) up to limit bytes into a malloc'ed NUL-terminated buffer. */
int dr_cli_read_file(const char *path, size_t limit, char **out, size_t *len);
/* parse email|ics|poll-reply, extract shipments|reply. Returns the exit code. */
int dr_cli_tools(const char *cmd, int argc, char **argv);

#endif
