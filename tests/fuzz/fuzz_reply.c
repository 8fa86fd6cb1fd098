/*
 * A reply email's text: dr_reply_extract() (quoted text and signatures cut) and
 * dr_poll_reply_parse() against a poll of four slots. The extracted reply is never longer than
 * the input; every answer names one of the poll's slots, once.
 */
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/poll_reply.h"
#include "dr/reply.h"
#include "fuzz.h"

static const char poll_json[] =
    "{\"poll_id\":\"p-42\",\"title\":\"Planning meeting\",\"slots\":["
    "{\"slot_id\":\"a\",\"start\":\"2026-03-02T10:00:00+01:00\",\"end\":\"2026-03-02T11:00:00+01:"
    "00\","
    "\"label\":\"Mon 2 Mar, 10:00\"},"
    "{\"slot_id\":\"b\",\"start\":\"2026-03-03T15:00:00+01:00\",\"label\":\"Tue 3 Mar, 15:00\"},"
    "{\"slot_id\":\"c\",\"start\":\"2026-03-04T09:30:00+01:00\"},"
    "{\"slot_id\":\"d\",\"start\":\"2026-03-06T16:00:00+01:00\",\"label\":\"Friday afternoon\"}],"
    "\"participants\":[{\"email\":\"kim@example.com\"}]}";

static struct dr_poll *poll;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *reply = NULL, *text;
    int quoted = -1, rc;
    struct dr_poll_answer *answer = NULL;

    if (!poll) {
        cJSON *j = cJSON_Parse(poll_json);
        FUZZ_CHECK(j && dr_poll_from_json(j, &poll) == DR_OK, "poll");
        cJSON_Delete(j);
    }
    rc = dr_reply_extract((const char *)data, size, &reply, &quoted);
    if (rc != DR_OK) {
        FUZZ_CHECK(reply == NULL && (rc == DR_ETOOBIG || rc == DR_ENOMEM), "error %d", rc);
    } else {
        FUZZ_CHECK(reply && strlen(reply) <= size, "reply longer than the message");
        FUZZ_CHECK(quoted == 0 || quoted == 1, "quoted %d", quoted);
        free(reply);
    }

    /* the poll-reply parser reads a NUL-terminated text */
    text = malloc(size + 1);
    FUZZ_CHECK(text, "out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    rc = dr_poll_reply_parse(poll, text, &answer);
    if (rc == DR_OK) {
        FUZZ_CHECK(answer && answer->comment, "answer without a comment");
        for (size_t i = 0; i < answer->n_responses; i++) {
            const char *id = answer->responses[i].slot_id;
            FUZZ_CHECK(id && strlen(id) == 1 && strchr("abcd", id[0]), "unknown slot");
            for (size_t k = 0; k < i; k++) {
                FUZZ_CHECK(strcmp(answer->responses[k].slot_id, id) != 0, "slot %s twice", id);
            }
        }
    } else {
        FUZZ_CHECK(answer == NULL, "error %d with an answer", rc);
    }
    dr_poll_answer_destroy(answer);
    free(text);
    return 0;
}
