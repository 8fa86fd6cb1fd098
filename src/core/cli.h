/* Command-line helpers shared by main.c and the parse/extract tools. */
#ifndef DR_CORE_CLI_H
#define DR_CORE_CLI_H

#include <stdarg.h>
#include <stddef.h>

void dr_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads path ("-" = stdin) up to limit bytes into a malloc'ed NUL-terminated buffer. */
int dr_cli_read_file(const char *path, size_t limit, char **out, size_t *len);
/* The one FILE or "-" a tool takes (argv excludes the tool's name): "-" without one, NULL on a
 * usage error (more than one, or an option). */
const char *dr_cli_one_path(int argc, char **argv);
/* parse email|ics|poll-reply, extract shipments|reply. Returns the exit code. */
int dr_cli_tools(const char *cmd, int argc, char **argv);

/*
 * The tools themselves, one per processor folder (argv excludes "parse email" etc.). Each reads
 * a file or "-" (stdin; also when no file is given), prints one JSON document to stdout and
 * returns 0; 2 on usage errors, 1 when the input cannot be read or parsed (one line on stderr).
 */
int dr_cli_parse_email(int argc, char **argv);       /* src/processors/email/cli.c */
int dr_cli_extract_shipments(int argc, char **argv); /* src/processors/shipment/cli.c */
int dr_cli_extract_reply(int argc, char **argv);     /* src/processors/meeting_poll/cli.c */
int dr_cli_parse_poll_reply(int argc, char **argv);  /* src/processors/meeting_poll/cli.c */
int dr_cli_parse_ics(int argc, char **argv);         /* src/processors/calendar/cli.c */

#endif
