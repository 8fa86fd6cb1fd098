/*
 * `data-router extract shipments [FILE.eml | --text TEXT | -]`: prints what dr_shipment_extract()
 * finds in an email (RFC 5322, parsed by the email module), in plain text given with --text, or,
 * when the input is not an email, in the input as plain text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "dr/buf.h"
#include "dr/email.h"
#include "dr/err.h"
#include "dr/shipment.h"

int dr_cli_extract_shipments(int argc, char **argv)
{
    const char *path = dr_cli_one_path(argc, argv);
    struct dr_email *em = NULL;
    struct dr_buf from;
    char *data = NULL, *json;
    size_t len = 0;
    cJSON *out = NULL;
    int err, rc = 1;

    if (argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        printf("usage: data-router extract shipments [FILE.eml | --text TEXT | -]\n");
        return 0;
    }
    if (argc > 0 && strcmp(argv[0], "--text") == 0) {
        if (argc != 2) {
            dr_cli_error("usage: data-router extract shipments --text TEXT");
            return 2;
        }
        if (strlen(argv[1]) > DR_SHIPMENT_MAX_INPUT) {
            dr_cli_error("extract shipments: the text is too long");
            return 1;
        }
        err = dr_shipment_extract(NULL, NULL, argv[1], strlen(argv[1]), &out);
        if (err) {
            dr_cli_error("extract shipments: %s", dr_strerror(err));
            return 1;
        }
        json = cJSON_PrintUnformatted(out);
        cJSON_Delete(out);
        if (!json) {
            return 1;
        }
        printf("%s\n", json);
        free(json);
        return 0;
    }
    if (!path) {
        dr_cli_error("usage: data-router extract shipments [FILE.eml | --text TEXT | -]");
        return 2;
    }
    dr_buf_init(&from, 4096);
    err = dr_cli_read_file(path, DR_SHIPMENT_MAX_INPUT, &data, &len);
    if (err) {
        if (err == DR_ETOOBIG) {
            dr_cli_error("extract shipments: %s: larger than the %zu-byte input limit", path,
                         (size_t)DR_SHIPMENT_MAX_INPUT);
        } else {
            dr_cli_error("extract shipments: cannot read %s", path);
        }
        goto out;
    }
    dr_email_global_init();
    if (dr_email_parse(data, len, NULL, &em) == DR_OK) {
        const char *body = em->text ? em->text : em->html ? em->html : "";
        size_t blen = em->text ? em->text_len : em->html ? em->html_len : 0;

        if (em->from.address) {
            err = dr_buf_printf(&from, "%s <%s>", em->from.name ? em->from.name : "",
                                em->from.address);
            if (err) {
                dr_buf_reset(&from);
            }
        }
        err = dr_shipment_extract(em->subject, from.len ? from.data : NULL, body, blen, &out);
    } else {
        err = dr_shipment_extract(NULL, NULL, data, len, &out); /* not an email: plain text */
    }
    if (err) {
        dr_cli_error("extract shipments: %s", dr_strerror(err));
        goto out;
    }
    json = cJSON_PrintUnformatted(out);
    if (json) {
        printf("%s\n", json);
        free(json);
        rc = 0;
    }
out:
    cJSON_Delete(out);
    dr_email_destroy(em);
    dr_buf_cleanup(&from);
    free(data);
    return rc;
}
