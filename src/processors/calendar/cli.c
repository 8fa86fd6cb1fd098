/* `data-router parse ics [FILE | -]`: dr_ics_parse()'s JSON for an iCalendar object. */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "dr/err.h"
#include "dr/ics.h"
#include "dr/json.h"

#include "core/cli.h"

int dr_cli_parse_ics(int argc, char **argv)
{
    const char *path = dr_cli_one_path(argc, argv);
    char *buf = NULL, *out;
    char why[512] = "";
    size_t len = 0;
    cJSON *cal = NULL;
    int err;

    if (!path) {
        dr_cli_error("usage: data-router parse ics [FILE | -]");
        return 2;
    }
    /* one byte over the parser's limit, so an oversize file is reported as such */
    err = dr_cli_read_file(path, DR_ICS_MAX_BYTES + 1, &buf, &len);
    if (err) {
        dr_cli_error("%s: %s", path,
                     err == DR_ENOTFOUND ? "cannot open"
                     : err == DR_ETOOBIG ? "over the 4 MiB iCalendar limit"
                                         : dr_strerror(err));
        return 1;
    }
    err = dr_ics_parse(buf, len, &cal, why, sizeof(why));
    free(buf);
    if (err) {
        dr_cli_error("%s: invalid iCalendar: %s", path, why[0] ? why : dr_strerror(err));
        return 1;
    }
    out = dr_json_print(cal);
    printf("%s\n", out);
    free(out);
    cJSON_Delete(cal);
    return 0;
}
