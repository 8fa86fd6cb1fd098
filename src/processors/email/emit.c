/*
 * The messages the email processor forwards (DESIGN §5): `shipment_detected` per tracking
 * number, `poll_response_email` for a poll reply and `calendar_event` per text/calendar part,
 * written as JSON text directly (dr/jsonw.h). The poll message carries up to 256 KB of the reply's
 * text and the calendar ones a whole iCalendar part, which a cJSON tree would copy twice before
 * printing. The bytes are those the processor printed through cJSON for the same fields: member
 * order, escapes, a member left out when its string is NULL (cJSON_AddStringToObject() adds
 * nothing then). The unit tests hold the two to the same output.
 */
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/jsonw.h"
#include "dr/util.h"
#include "processors/email/classify.h"
#include "processors/email/email_int.h"

#define POLL_MAX_REFERENCES 100

/* Leaves out as it was on failure. */
static int finish(struct jw *w, size_t start)
{
    if (w->err) {
        w->b->len = start;
        if (w->b->data) {
            w->b->data[start] = '\0';
        }
    }
    return w->err;
}

int dr__email_shipment_msg(const struct dr_email_class *cls, const cJSON *entry,
                           const struct dr__email_msg_ids *ids, struct dr_buf *out)
{
    const cJSON *sh = cls->shipment;
    const cJSON *orders = cJSON_GetObjectItemCaseSensitive(sh, "order_ids");
    const cJSON *first = cJSON_GetArrayItem(orders, 0);
    const char *status = dr_json_str(entry, "status");
    struct jw w = {.b = out, .err = DR_OK};
    size_t start = out->len;
    int valid = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(entry, "valid"));

    if (!status || strcmp(status, "unknown") == 0) {
        status = dr_json_str(sh, "status");
    }
    jw_raw(&w, "{", 1);
    jw_str(&w, "type", "shipment_detected");
    jw_str(&w, "user_id", ids->user_id);
    jw_opt(&w, "org_id", ids->org_id);
    jw_str(&w, "tracking_number", dr_json_str(entry, "tracking_number"));
    jw_opt(&w, "carrier", dr__email_class_carrier(cls, entry));
    jw_opt(&w, "status", status);
    jw_str(&w, "source", "email");
    jw_str(&w, "email_id", ids->email_id);
    jw_opt(&w, "merchant", dr_json_str(sh, "merchant"));
    jw_opt(&w, "order_id", cJSON_IsString(first) ? first->valuestring : NULL);
    jw_str(&w, "event_time", ids->event_time);
    jw_key(&w, "validated");
    jw_raw(&w, valid ? "true" : "false", valid ? 4 : 5);
    jw_opt(&w, "tracking_url", dr_json_str(entry, "tracking_url"));
    jw_raw(&w, "}", 1);
    return finish(&w, start);
}

int dr__email_poll_msg(const struct dr_email *em, const struct dr_email_class *cls,
                       const struct dr__email_msg_ids *ids, struct dr_buf *out)
{
    const char *body = em->text ? em->text : em->html_text;
    size_t blen = em->text ? em->text_len : em->html_text_len;
    struct jw w = {.b = out, .err = DR_OK};
    size_t start = out->len;

    jw_raw(&w, "{", 1);
    jw_str(&w, "type", "poll_response_email");
    jw_str(&w, "poll_id", cls->poll_id);
    jw_str(&w, "user_id", ids->user_id);
    jw_opt(&w, "org_id", ids->org_id);
    jw_str(&w, "email_id", ids->email_id);
    if (em->from.address) {
        jw_key(&w, "from");
        jw_raw(&w, "{", 1);
        jw_opt(&w, "name", em->from.name);
        jw_str(&w, "address", em->from.address);
        jw_raw(&w, "}", 1);
    }
    jw_str(&w, "date", ids->event_time);
    jw_opt(&w, "subject", em->subject);
    if (body) {
        /* the whole text part: the poll processor separates the reply from the quote */
        jw_key(&w, "body_text");
        jw_strn(&w, body, dr_utf8_cut(body, blen, DR__EMAIL_POLL_BODY_MAX));
    }
    jw_opt(&w, "message_id", em->message_id);
    jw_opt(&w, "in_reply_to", em->in_reply_to);
    jw_key(&w, "references");
    jw_raw(&w, "[", 1);
    for (size_t i = 0; i < em->n_references && i < POLL_MAX_REFERENCES; i++) {
        jw_elem(&w, em->references[i]);
    }
    jw_raw(&w, "]", 1);
    if (cls->ics_reply) {
        jw_str(&w, "ics", cls->ics_reply->ics);
    }
    jw_str(&w, "source", "email");
    jw_raw(&w, "}", 1);
    return finish(&w, start);
}

int dr__email_calendar_msg(const struct dr_email_calendar *cal, const struct dr__email_msg_ids *ids,
                           struct dr_buf *out)
{
    struct jw w = {.b = out, .err = DR_OK};
    size_t start = out->len;

    jw_raw(&w, "{", 1);
    jw_str(&w, "type", "calendar_event");
    jw_str(&w, "user_id", ids->user_id);
    jw_opt(&w, "org_id", ids->org_id);
    jw_str(&w, "operation", "upsert");
    jw_str(&w, "ics", cal->ics);
    jw_str(&w, "source", "email");
    jw_str(&w, "email_id", ids->email_id);
    jw_raw(&w, "}", 1);
    return finish(&w, start);
}
