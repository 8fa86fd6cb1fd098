/*
 * Email classification (classify.h): shipment cues and tracking numbers, meeting-poll replies,
 * calendar parts.
 *
 * Shipments: the sender/subject/body cues (dr_email_shipment_cues) and the tracking numbers
 * dr_shipment_extract() finds in the subject, From and text. Every email is scanned, not only
 * those with cues: a tracking number with a valid check digit forwarded by a friend is still a
 * parcel. A number that fits no carrier format but is labelled as a tracking number in the text
 * counts only when the cues call the email a shipment notification (score at or above
 * DR_EMAIL_SHIPMENT_THRESHOLD): carriers' own emails (GLS, Royal Mail) label numbers of formats
 * without a check digit, and newsletters say "Bestellnummer" too. When the plain text holds no
 * number, the HTML is scored and scanned as well, whatever the text scored: some carriers put the
 * number only into the tracking link, and many senders put a stub ("View it online") into the
 * plain-text part of a multipart/alternative and everything into the HTML.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/buf.h"
#include "dr/err.h"
#include "dr/poll_store.h"
#include "dr/shipment.h"
#include "dr/util.h"
#include "processors/email/classify.h"
#include "processors/email/email_int.h"

#define MAX_MSGIDS 50 /* In-Reply-To plus References tried against stored polls */
#define MAX_TOKENS 8  /* +TOKEN recipients tried */
#define FROM_MAX   1024
/* Rendered text of the HTML body scored for cues: more than the cues read of a body. */
#define HTML_CUES_MAX (16u * 1024)

static int entry_valid(const cJSON *e)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "valid"));
}

static size_t count_accepted(const cJSON *out, int cue_ok, const cJSON **acc, size_t max)
{
    const cJSON *e;
    size_t n = 0;

    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(out, "shipments"))
    {
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(e, "tracking_number");
        if (!cJSON_IsString(tn) || !tn->valuestring[0]) {
            continue;
        }
        if (entry_valid(e) || cue_ok) {
            if (acc && n < max) {
                acc[n] = e;
            }
            n++;
        }
    }
    return n;
}

/* Runs dr_shipment_extract() on text; replaces c->shipment when it found more. */
static int scan(struct dr_email_class *c, const char *subject, const char *from, const char *text,
                size_t len)
{
    cJSON *out = NULL;
    uint64_t t0 = dr_mono_ns();
    int err = dr_shipment_extract(subject, from, text, len, &out);
    int cue_ok = c->cues.score >= DR_EMAIL_SHIPMENT_THRESHOLD;

    c->extract_ns += dr_mono_ns() - t0;
    if (err == DR_ENOMEM) {
        return err;
    }
    if (err) { /* too big to scan: the email is still classified by its cues */
        return DR_OK;
    }
    if (!c->shipment ||
        count_accepted(out, cue_ok, NULL, 0) > count_accepted(c->shipment, cue_ok, NULL, 0)) {
        cJSON_Delete(c->shipment);
        c->shipment = out;
    } else {
        cJSON_Delete(out);
    }
    return DR_OK;
}

/* The cues of em read with the text of its HTML body in place of its plain text: *cues becomes
 * those when they score higher. DR_OK or DR_ENOMEM. */
static int html_cues(const struct dr_email *em, struct dr_email_shipment_cues *cues)
{
    struct dr_email alt = *em; /* shallow: only the body text differs */
    struct dr_email_shipment_cues h;
    struct dr_buf text;
    int err;

    dr_buf_init(&text, HTML_CUES_MAX);
    err = dr__email_html_to_text(em->html, em->html_len, &text);
    if (err == DR_OK || err == DR_ETOOBIG) {
        err = DR_OK;
        alt.text = text.data ? text.data : "";
        alt.text_len = text.len;
        h = dr_email_shipment_cues(&alt);
        if (h.score > cues->score) {
            *cues = h;
        }
    }
    dr_buf_cleanup(&text);
    return err;
}

/* "name <address>" of em's From into b (empty when it has none or is over-long). */
static void from_text(const struct dr_email *em, struct dr_buf *b)
{
    dr_buf_init(b, FROM_MAX);
    if (em->from.address &&
        dr_buf_printf(b, "%s <%s>", em->from.name ? em->from.name : "", em->from.address)) {
        dr_buf_reset(b); /* over-long: scan without it */
    }
}

/*
 * The bodies of e scanned for tracking numbers with its subject and From: its plain text, then,
 * when that gave none, its HTML (loaded first by load_html when given and e has none yet), the
 * cues read from the HTML's text too when c->cues do not yet call it a shipment. DR_OK or
 * DR_ENOMEM, or what load_html returns.
 */
static int scan_bodies(struct dr_email_class *c, const struct dr_email *e,
                       int (*load_html)(void *html_arg), void *html_arg)
{
    struct dr_buf from;
    const char *from_s;
    int err;

    from_text(e, &from);
    from_s = from.len ? from.data : NULL;
    err = scan(c, e->subject, from_s, e->text ? e->text : "", e->text ? e->text_len : 0);
    if (!err && !e->html && load_html && !count_accepted(c->shipment, 1, NULL, 0)) {
        err = load_html(html_arg);
    }
    if (!err && e->html && !count_accepted(c->shipment, 1, NULL, 0)) {
        if (c->cues.score < DR_EMAIL_SHIPMENT_THRESHOLD) {
            err = html_cues(e, &c->cues);
        }
        if (!err) {
            err = scan(c, e->subject, from_s, e->html, e->html_len);
        }
    }
    dr_buf_cleanup(&from);
    return err;
}

/* The forwards level levels below em (1: em->forwarded), in order, until one gives a tracking
 * number: each with its own cues (taken when they score higher) and bodies. *seen is set when
 * there is any at that level. DR_OK or DR_ENOMEM. */
static int scan_level(const struct dr_email *em, size_t level, struct dr_email_class *c, int *seen)
{
    int err = DR_OK;

    for (size_t i = 0; !err && i < em->n_forwarded && !count_accepted(c->shipment, 1, NULL, 0);
         i++) {
        const struct dr_email *f = em->forwarded[i];

        if (level > 1) {
            err = scan_level(f, level - 1, c, seen);
        } else {
            struct dr_email_shipment_cues fc = dr_email_shipment_cues(f);

            *seen = 1;
            if (fc.score > c->cues.score) {
                c->cues = fc;
            }
            err = scan_bodies(c, f, NULL, NULL);
        }
    }
    return err;
}

/*
 * The messages em carries attached whole (em->forwarded), breadth first as parse.c reads them:
 * all of em's forwards before their own forwards, until one gives a tracking number. Each is
 * scanned as if it had come alone, with its own subject, From and cues: a carrier's email a
 * friend forwarded is still the carrier's. DR_OK or DR_ENOMEM.
 */
static int scan_forwarded(const struct dr_email *em, struct dr_email_class *c)
{
    int err = DR_OK, seen = 1;

    for (size_t level = 1; !err && seen && !count_accepted(c->shipment, 1, NULL, 0); level++) {
        seen = 0;
        err = scan_level(em, level, c, &seen);
    }
    return err;
}

static int classify_shipment(const struct dr_email *em, const struct dr_email_class_opts *o,
                             struct dr_email_class *c)
{
    size_t n;
    int cue_ok, err;

    c->cues = dr_email_shipment_cues(em);
    err = scan_bodies(c, em, o->load_html, o->html_arg);
    if (!err && !count_accepted(c->shipment, 1, NULL, 0)) {
        err = scan_forwarded(em, c);
    }
    cue_ok = c->cues.score >= DR_EMAIL_SHIPMENT_THRESHOLD;
    if (err) {
        return err;
    }
    n = count_accepted(c->shipment, cue_ok, NULL, 0);
    if (n) {
        c->accepted = calloc(n, sizeof(*c->accepted));
        if (!c->accepted) {
            return DR_ENOMEM;
        }
        c->n_accepted = count_accepted(c->shipment, cue_ok, c->accepted, n);
    }
    if (c->n_accepted || cue_ok) {
        c->kinds |= DR_EMAIL_KIND_SHIPMENT;
    }
    return DR_OK;
}

static int has_subject_tag(const char *subject)
{
    return subject && strcasestr(subject, "[poll:") != NULL;
}

static int classify_poll(const struct dr_email *em, const struct dr_email_class_opts *o,
                         struct dr_email_class *c)
{
    const char *msgids[MAX_MSGIDS];
    char *tokens[MAX_TOKENS];
    char **rcpt = NULL;
    size_t nids = 0, ntok = 0, nrcpt = 0;
    int err = DR_ENOTFOUND;

    if (em->in_reply_to) {
        msgids[nids++] = em->in_reply_to;
    }
    for (size_t i = 0; i < em->n_references && nids < MAX_MSGIDS; i++) {
        msgids[nids++] = em->references[i];
    }
    if (dr_email_recipients(em, &rcpt, &nrcpt)) {
        return DR_ENOMEM;
    }
    for (size_t i = 0; i < nrcpt && ntok < MAX_TOKENS; i++) {
        char *tok = NULL;
        if (dr_email_plus_token(rcpt[i], o->reply_local_part, &tok) == DR_OK) {
            tokens[ntok++] = tok;
        }
    }
    dr_email_strv_free(rcpt, nrcpt);
    if (!nids && !ntok && !has_subject_tag(em->subject)) {
        c->poll_lookup = "no_cues";
        return DR_OK;
    }
    if (!o->store) {
        c->poll_lookup = "skipped";
        goto out;
    }
    for (size_t i = 0; i < ntok && err == DR_ENOTFOUND; i++) {
        err =
            dr_poll_store_match(o->store, tokens[i], NULL, 0, NULL, c->poll_id, sizeof(c->poll_id));
        c->poll_via = "token";
    }
    if (err == DR_ENOTFOUND && (nids || has_subject_tag(em->subject))) {
        err = dr_poll_store_match(o->store, NULL, msgids, nids, em->subject, c->poll_id,
                                  sizeof(c->poll_id));
        c->poll_via = "thread";
    }
    if (err == DR_ENOTFOUND || err == DR_ETOOBIG || err == DR_EINVAL) {
        /* DR_EINVAL: an id or token the store cannot hold is no poll's */
        c->poll_lookup = "no_match";
        c->poll_via = NULL;
        c->poll_id[0] = '\0';
        err = DR_OK;
    } else if (!err) {
        c->poll_lookup = "matched";
        c->kinds |= DR_EMAIL_KIND_POLL_REPLY;
    }
out:
    for (size_t i = 0; i < ntok; i++) {
        free(tokens[i]);
    }
    return err == DR_ENOTFOUND ? DR_OK : err;
}

int dr__email_classify(const struct dr_email *em, const struct dr_email_class_opts *opts,
                       struct dr_email_class *c)
{
    static const struct dr_email_class_opts none = {0};
    int err;

    memset(c, 0, sizeof(*c));
    opts = opts ? opts : &none;
    err = classify_shipment(em, opts, c);
    if (!err) {
        err = classify_poll(em, opts, c);
    }
    if (err) {
        dr__email_class_cleanup(c);
        return err;
    }
    for (size_t i = 0; i < em->n_calendar; i++) {
        c->kinds |= DR_EMAIL_KIND_CALENDAR;
        if (!c->ics_reply && em->calendar[i].method && em->calendar[i].ics &&
            strcmp(em->calendar[i].method, "REPLY") == 0) {
            c->ics_reply = &em->calendar[i];
        }
    }
    c->primary = (c->kinds & DR_EMAIL_KIND_POLL_REPLY) ? "poll_reply"
                 : (c->kinds & DR_EMAIL_KIND_SHIPMENT) ? "shipment"
                 : (c->kinds & DR_EMAIL_KIND_CALENDAR) ? "calendar"
                                                       : "other";
    return DR_OK;
}

void dr__email_class_cleanup(struct dr_email_class *c)
{
    if (c) {
        cJSON_Delete(c->shipment);
        free(c->accepted);
        memset(c, 0, sizeof(*c));
    }
}

const char *dr__email_class_carrier(const struct dr_email_class *c, const cJSON *entry)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, "carrier");
    const cJSON *tn = cJSON_GetObjectItemCaseSensitive(entry, "tracking_number");
    const char *guess = NULL;

    if (cJSON_IsString(v) && v->valuestring[0]) {
        return v->valuestring;
    }
    v = cJSON_GetObjectItemCaseSensitive(c->shipment, "carrier_hint");
    if (cJSON_IsString(v) && v->valuestring[0]) {
        guess = v->valuestring;
    } else {
        guess = c->cues.carrier;
    }
    /* only a carrier the shipment module knows, under its code, may vouch for a number */
    guess = dr_shipment_carrier_code(guess);
    /* the email's carrier vouches for a number only where its check digit does not refute it */
    if (guess && cJSON_IsString(tn) && dr_tracking_refuted(tn->valuestring, guess, NULL)) {
        return NULL;
    }
    return guess;
}

static void add_str_or_null(cJSON *o, const char *key, const char *v)
{
    if (v) {
        cJSON_AddStringToObject(o, key, v);
    } else {
        cJSON_AddNullToObject(o, key);
    }
}

cJSON *dr__email_class_to_json(const struct dr_email *em, const struct dr_email_class *c)
{
    cJSON *o = cJSON_CreateObject(), *labels = cJSON_AddArrayToObject(o, "labels");
    cJSON *sh = cJSON_AddObjectToObject(o, "shipment"), *poll = cJSON_AddObjectToObject(o, "poll");
    cJSON *cal = cJSON_AddArrayToObject(o, "calendar"), *list;
    const cJSON *v;

    cJSON_AddStringToObject(o, "primary", c->primary ? c->primary : "other");
    if (c->kinds & DR_EMAIL_KIND_POLL_REPLY) {
        cJSON_AddItemToArray(labels, cJSON_CreateString("poll_reply"));
    }
    if (c->kinds & DR_EMAIL_KIND_SHIPMENT) {
        cJSON_AddItemToArray(labels, cJSON_CreateString("shipment"));
    }
    if (c->kinds & DR_EMAIL_KIND_CALENDAR) {
        cJSON_AddItemToArray(labels, cJSON_CreateString("calendar"));
    }
    cJSON_AddNumberToObject(sh, "score", c->cues.score);
    add_str_or_null(sh, "carrier", dr__email_class_carrier(c, NULL));
    v = cJSON_GetObjectItemCaseSensitive(c->shipment, "status");
    add_str_or_null(sh, "status", cJSON_IsString(v) ? v->valuestring : NULL);
    v = cJSON_GetObjectItemCaseSensitive(c->shipment, "merchant");
    add_str_or_null(sh, "merchant", cJSON_IsString(v) ? v->valuestring : NULL);
    v = cJSON_GetObjectItemCaseSensitive(c->shipment, "order_ids");
    cJSON_AddItemToObject(sh, "order_ids", v ? cJSON_Duplicate(v, 1) : cJSON_CreateArray());
    list = cJSON_AddArrayToObject(sh, "tracking_numbers");
    for (size_t i = 0; i < c->n_accepted; i++) {
        cJSON *t = cJSON_CreateObject();
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(c->accepted[i], "status");
        cJSON_AddStringToObject(
            t, "tracking_number",
            cJSON_GetObjectItemCaseSensitive(c->accepted[i], "tracking_number")->valuestring);
        add_str_or_null(t, "carrier", dr__email_class_carrier(c, c->accepted[i]));
        add_str_or_null(t, "status", cJSON_IsString(st) ? st->valuestring : NULL);
        cJSON_AddBoolToObject(t, "valid", entry_valid(c->accepted[i]));
        cJSON_AddItemToArray(list, t);
    }
    add_str_or_null(poll, "lookup", c->poll_lookup);
    add_str_or_null(poll, "poll_id", c->poll_id[0] ? c->poll_id : NULL);
    add_str_or_null(poll, "via", c->poll_via);
    for (size_t i = 0; i < em->n_calendar; i++) {
        cJSON *p = cJSON_CreateObject();
        add_str_or_null(p, "method", em->calendar[i].method);
        cJSON_AddItemToArray(cal, p);
    }
    return o;
}
