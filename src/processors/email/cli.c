/*
 * `data-router parse email [FILE.eml | -]`: prints dr_email_to_json() of the message plus a
 * "classification" field (classify.h). Offline: there is no store, so a reply cue is reported
 * as poll lookup "skipped" rather than matched against stored polls.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/cli.h"
#include "dr/email.h"
#include "dr/err.h"
#include "dr/json.h"
#include "processors/email/classify.h"

int dr_cli_parse_email(int argc, char **argv)
{
    const char *path = dr_cli_one_path(argc, argv);
    struct dr_email_limits lim;
    struct dr_email *em = NULL;
    struct dr_email_class c = {0};
    cJSON *out = NULL;
    char *data = NULL, *json;
    size_t len = 0;
    int err, rc = 1;

    if (!path) {
        dr_cli_error("usage: data-router parse email [FILE.eml|-]");
        return 2;
    }
    dr_email_limits_init(&lim);
    err = dr_cli_read_file(path, lim.max_message_bytes, &data, &len);
    if (err) {
        if (err == DR_ETOOBIG) {
            dr_cli_error("parse email: %s: larger than the %zu-byte message limit", path,
                         lim.max_message_bytes);
        } else {
            dr_cli_error("parse email: cannot read %s", path);
        }
        goto out;
    }
    dr_email_global_init();
    err = dr_email_parse(data, len, &lim, &em);
    if (err) {
        dr_cli_error("parse email: %s",
                     dr_email_error_reason()[0] ? dr_email_error_reason() : dr_strerror(err));
        goto out;
    }
    err = dr__email_classify(em, NULL, &c);
    if (!err) {
        err = dr_email_to_json(em, &out);
    }
    if (err) {
        dr_cli_error("parse email: %s", dr_strerror(err));
        goto out;
    }
    cJSON_AddItemToObject(out, "classification", dr__email_class_to_json(em, &c));
    json = dr_json_print(out);
    printf("%s\n", json);
    free(json);
    rc = 0;
out:
    cJSON_Delete(out);
    dr__email_class_cleanup(&c);
    dr_email_destroy(em);
    free(data);
    return rc;
}
