/* `parse` and `extract`: offline tools over the processors' parsers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/err.h"

#include "core/cli.h"

void dr_cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("data-router: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int dr_cli_read_file(const char *path, size_t limit, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    struct dr_buf b;
    char chunk[65536];
    size_t n;
    int err = DR_OK;

    if (!f) {
        return DR_ENOTFOUND;
    }
    dr_buf_init(&b, limit);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if ((err = dr_buf_append(&b, chunk, n)) != 0) {
            break;
        }
    }
    if (f != stdin) {
        fclose(f);
    }
    if (err) {
        dr_buf_cleanup(&b);
        return err;
    }
    *out = dr_buf_steal(&b, len);
    return DR_OK;
}

const char *dr_cli_one_path(int argc, char **argv)
{
    if (argc == 0) {
        return "-";
    }
    if (argc > 1 || (argv[0][0] == '-' && argv[0][1])) {
        return NULL;
    }
    return argv[0];
}

int dr_cli_tools(const char *cmd, int argc, char **argv)
{
    static const struct {
        const char *cmd, *what, *usage;
        int (*fn)(int, char **);
    } tools[] = {
        {"parse", "email", "[FILE.eml | -]: the parsed email and its classification as JSON",
         dr_cli_parse_email},
        {"parse", "ics", "[FILE | -]: the iCalendar object as JSON", dr_cli_parse_ics},
        {"parse", "poll-reply",
         "--poll POLL.json [FILE.eml | -]: the poll answers a reply gives, as JSON",
         dr_cli_parse_poll_reply},
        {"extract", "shipments", "[FILE.eml | --text TEXT | -]: tracking numbers and status",
         dr_cli_extract_shipments},
        {"extract", "reply", "[FILE | -]: the new text of a reply, without quotes and signature",
         dr_cli_extract_reply},
    };
    const char *what = argc > 0 ? argv[0] : "";

    for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
        if (strcmp(tools[i].cmd, cmd) == 0 && strcmp(tools[i].what, what) == 0) {
            for (int k = 1; k < argc; k++) {
                if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
                    printf("usage: data-router %s %s %s\n", cmd, what, tools[i].usage);
                    return 0;
                }
            }
            return tools[i].fn(argc - 1, argv + 1);
        }
    }
    dr_cli_error("usage: data-router parse email|ics|poll-reply ... | extract shipments|reply ...");
    return 2;
}
