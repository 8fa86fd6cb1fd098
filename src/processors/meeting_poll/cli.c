/*
 * `data-router extract reply [FILE | -]` and
 * `data-router parse poll-reply --poll POLL.json [FILE | -]`: the reply reading of the
 * meeting_poll processor, offline. Input is an RFC 5322 message (a .eml file, or anything that
 * starts with a header block) or plain reply text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "dr/email.h"
#include "dr/err.h"
#include "dr/json.h"
#include "dr/poll_reply.h"
#include "dr/reply.h"

#include "core/cli.h"

#define MAX_INPUT (32u * 1024u * 1024u)
#define MAX_POLL  (4u * 1024u * 1024u)

/* 1 when text starts with an RFC 5322 header field ("Name: value" or "From " mbox line) that is
 * followed, before any blank line, only by more fields or their continuations. */
static int looks_like_email(const char *text, size_t len)
{
    size_t i = 0, fields = 0;

    if (len >= 5 && strncmp(text, "From ", 5) == 0) {
        return 1;
    }
    while (i < len) {
        size_t start = i, colon = 0;
        while (i < len && text[i] != '\n') {
            if (!colon && text[i] == ':') {
                colon = i;
            }
            i++;
        }
        size_t end = i > start && text[i - 1] == '\r' ? i - 1 : i;
        i++;
        if (end == start) {
            return fields > 0; /* the blank line ending the header */
        }
        if (text[start] == ' ' || text[start] == '\t') {
            if (!fields) {
                return 0;
            }
            continue;
        }
        if (!colon || colon == start) {
            return 0;
        }
        for (size_t k = start; k < colon; k++) {
            char c = text[k];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_')) {
                return 0;
            }
        }
        fields++;
    }
    return 0;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* The reply body of path: the text part of an email, or the file itself. *em is set (caller
 * destroys) when the input was an email. Returns 0, or the exit code. */
static int read_body(const char *path, char **buf, const char **body, size_t *len,
                     struct dr_email **em)
{
    size_t n = 0;
    int err = dr_cli_read_file(path, MAX_INPUT, buf, &n);

    *em = NULL;
    if (err) {
        dr_cli_error("%s: %s", path, err == DR_ENOTFOUND ? "cannot open" : dr_strerror(err));
        return 1;
    }
    *body = *buf;
    *len = n;
    if (has_suffix(path, ".eml") || looks_like_email(*buf, n)) {
        err = dr_email_parse(*buf, n, NULL, em);
        if (err) {
            dr_cli_error("%s: not an email: %s", path, dr_email_error_reason());
            return 1;
        }
        *body = (*em)->text ? (*em)->text : (*em)->html_text ? (*em)->html_text : "";
        *len = (*em)->text ? (*em)->text_len : (*em)->html_text ? (*em)->html_text_len : 0;
    }
    return 0;
}

int dr_cli_extract_reply(int argc, char **argv)
{
    const char *path = dr_cli_one_path(argc, argv);
    struct dr_email *em = NULL;
    const char *body;
    char *buf = NULL, *reply = NULL, *out;
    size_t len;
    int quoted = 0, rc, err;
    cJSON *o;

    if (!path) {
        dr_cli_error("usage: data-router extract reply [FILE | -]");
        return 2;
    }
    rc = read_body(path, &buf, &body, &len, &em);
    if (!rc) {
        err = dr_reply_extract(body, len, &reply, &quoted);
        if (err) {
            dr_cli_error("%s: %s", path, dr_strerror(err));
            rc = 1;
        }
    }
    if (!rc) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "reply_text", reply);
        cJSON_AddBoolToObject(o, "quoted", quoted);
        out = dr_json_print(o);
        printf("%s\n", out);
        free(out);
        cJSON_Delete(o);
    }
    free(reply);
    free(buf);
    dr_email_destroy(em);
    return rc;
}

static int load_poll(const char *path, struct dr_poll **poll)
{
    char *buf = NULL;
    size_t n = 0;
    cJSON *js = NULL;
    int err = dr_cli_read_file(path, MAX_POLL, &buf, &n);

    if (err) {
        dr_cli_error("%s: %s", path, err == DR_ENOTFOUND ? "cannot open" : dr_strerror(err));
        return 1;
    }
    js = dr_json_parse(buf, n);
    free(buf);
    if (!js) {
        dr_cli_error("%s: not JSON", path);
        return 1;
    }
    err = dr_poll_from_json(js, poll);
    cJSON_Delete(js);
    if (err) {
        dr_cli_error("%s: not a poll definition (%s): needs poll_id, slots [{slot_id, start}], "
                     "participants [{email}]",
                     path, dr_strerror(err));
        return 1;
    }
    return 0;
}

int dr_cli_parse_poll_reply(int argc, char **argv)
{
    const char *poll_path = NULL, *path = "-", *body;
    struct dr_poll *poll = NULL;
    struct dr_poll_answer *ans = NULL;
    struct dr_email *em = NULL;
    char *buf = NULL, *reply = NULL, *out = NULL;
    size_t len;
    int rc, err, files = 0;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--poll") == 0 && i + 1 < argc) {
            poll_path = argv[++i];
        } else if (strncmp(argv[i], "--poll=", 7) == 0) {
            poll_path = argv[i] + 7;
        } else if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0) {
            path = argv[i];
            files++;
        } else {
            files = 99;
        }
    }
    if (!poll_path || files > 1) {
        dr_cli_error("usage: data-router parse poll-reply --poll POLL.json [FILE.eml | FILE | -]");
        return 2;
    }
    rc = load_poll(poll_path, &poll);
    if (!rc) {
        rc = read_body(path, &buf, &body, &len, &em);
    }
    if (!rc) {
        err = dr_reply_extract(body, len, &reply, NULL);
        if (!err) {
            err = dr_poll_reply_parse(poll, reply, &ans);
        }
        if (err) {
            dr_cli_error("%s: %s", path, dr_strerror(err));
            rc = 1;
        }
    }
    if (!rc && em && !em->from.address) {
        dr_cli_error("%s: invalid_email: no From address that parses cleanly", path);
        rc = 1;
    } else if (!rc && em) {
        if (!dr_poll_find_participant(poll, em->from.address)) {
            dr_cli_error("%s: not_a_participant: the sender is not a participant of poll %s", path,
                         poll->poll_id);
            rc = 1;
        } else {
            ans->participant = strdup(em->from.address);
        }
    }
    if (!rc && dr_poll_answer_to_json(ans, &out) == DR_OK) {
        printf("%s\n", out);
    } else if (!rc) {
        rc = 1;
    }
    free(out);
    dr_poll_answer_destroy(ans);
    free(reply);
    free(buf);
    dr_email_destroy(em);
    dr_poll_destroy(poll);
    return rc;
}
