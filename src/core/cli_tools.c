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

int dr_cli_tools(const char *cmd, int argc, char **argv)
{
    dr_cli_error("%s %s: not available in this build", cmd, argc > 0 ? argv[0] : "");
    return 2;
}
