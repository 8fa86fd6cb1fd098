/*
 * The shipment processor (topic shipment-updates, DESIGN §5): `shipment_detected` from the email
 * processor and `carrier_status` from carrier webhooks or other services. Payload: user_id,
 * org_id, tracking_number, carrier?, status?, status_detail?, location?, event_time, source,
 * email_id?, merchant?, order_id?.
 *
 * Validation: the carrier is normalised first (dr_shipment_carrier_code(): "UPS" is ups; a carrier
 * the module does not know is kept in lower case). The tracking number (spaces and dashes
 * dropped, upper-cased, 4-40 letters and digits) must pass dr_tracking_validate(), or come from
 * the carrier: a carrier_status message,
 * or a shipment_detected naming its carrier (the email labelled the number as a tracking number,
 * in a format without a check digit). Such numbers are stored as not verified. A
 * shipment_detected naming a carrier whose check digit refutes the number (it has the layout of
 * one of that carrier's formats with a check digit and fails it, see dr_tracking_refuted()) is
 * rejected: a label does not outweigh a wrong check digit.
 * Status strings are normalised (exact names, then the carrier's wording through
 * dr_shipment_status_from_text()); one that says nothing known is stored as unknown with a
 * warning. event_time: RFC 3339 or epoch milliseconds; absent means the publish time.
 *
 * Effects (dr/shipment_store.h): the shipment row and the event, in one transaction. When the
 * shipment is new or its status changed (not on a duplicate event, not on an older event),
 * `shipment.updated` goes to rooms user:{user_id} and shipment:{tracking_number}.
 *
 * Carrier status (off by default; processors.shipment.provider, see dr/shipment_store.h): for a
 * shipment_detected message the provider is asked first, and its events are recorded with the
 * email's. Nothing is stored before it answers, so a retry repeats nothing: 429, 5xx and timeouts
 * are RETRY against the "carrier_api" circuit breaker; a number the provider does not know, a
 * refused key or a malformed answer is logged and the email's own status is used.
 *
 * Rejections: invalid_payload (also for a payload that is not valid UTF-8 or holds U+0000),
 * invalid_tracking_number, and store_refused when the store refuses
 * the shipment or its events for good (a constraint or trigger, a value it cannot hold). Other
 * store failures: RETRY store_error.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/processor.h"
#include "dr/shipment.h"
#include "dr/shipment_store.h"
#include "dr/store.h"
#include "dr/util.h"

#define COMP     "processor.shipment"
#define MAX_ID   512
#define MAX_TEXT 1024
#define MIN_TN   4
#define BREAKER  "carrier_api"

struct ship_proc {
    struct dr_store *store;
    struct dr_carrier_provider *provider; /* NULL: off */
};

static int init(const struct dr_proc_env *env, void **state, char *err, size_t errsz)
{
    struct ship_proc *sp;
    struct dr_carrier_provider *prov = NULL;
    const cJSON *pconf =
        env->config ? cJSON_GetObjectItemCaseSensitive(env->config, "provider") : NULL;
    int rc;

    if (!env->store) {
        snprintf(err, errsz, "no store");
        return -1;
    }
    rc = dr_shipment_store_migrate(env->store);
    if (rc) {
        snprintf(err, errsz, "shipment tables: %s", dr_strerror(rc));
        return -1;
    }
    if (pconf && !cJSON_IsNull(pconf) &&
        dr_carrier_provider_from_config(pconf, &prov, err, errsz)) {
        return -1;
    }
    if (dr_shipment_init()) {
        snprintf(err, errsz, "tracking patterns failed to compile");
        if (prov) {
            prov->destroy(prov);
        }
        return -1;
    }
    sp = dr_xcalloc(1, sizeof(*sp));
    sp->store = env->store;
    sp->provider = prov;
    if (prov) {
        DR_INFO(COMP, "carrier status provider on", "provider=%s", prov->name);
    }
    *state = sp;
    return 0;
}

static void destroy(void *state)
{
    struct ship_proc *sp = state;

    if (sp) {
        if (sp->provider) {
            sp->provider->destroy(sp->provider);
        }
        free(sp);
    }
}

/* Replaces the processor's provider (tests); the previous one is destroyed. */
void dr__shipment_set_provider(void *state, struct dr_carrier_provider *p)
{
    struct ship_proc *sp = state;

    if (sp->provider) {
        sp->provider->destroy(sp->provider);
    }
    sp->provider = p;
}

static int str_ok(const cJSON *o, const char *key, size_t max, int required)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!v || cJSON_IsNull(v)) {
        return !required;
    }
    return cJSON_IsString(v) && (!required || v->valuestring[0]) && strlen(v->valuestring) <= max;
}

/* "1z 999-aa1..." -> "1Z999AA1..."; -1 when not 4-40 letters and digits. */
/* in upper-cased, without blanks; dashes dropped too unless keep_dash. -1 if anything else is
 * not a letter or digit, or the result is not MIN_TN to DR_TRACKING_MAX characters. */
static int compact_tn(const char *in, int keep_dash, char out[DR_TRACKING_MAX + 1])
{
    size_t n = 0;

    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '\t' || (*p == '-' && !keep_dash)) {
            continue;
        }
        if ((!isalnum((unsigned char)*p) && *p != '-') || n >= DR_TRACKING_MAX) {
            return -1;
        }
        out[n++] = (char)toupper((unsigned char)*p);
    }
    out[n] = '\0';
    return n >= MIN_TN ? 0 : -1;
}

/*
 * The number as it is stored: upper-cased, blanks and dashes dropped ("1Z 999-AA1..." is
 * written many ways), except a number that is valid only with its dashes (LaserShip's 1LS7
 * numbers end in the piece suffix "-1", which the extractor reports).
 */
static int normalise_tn(const char *in, char out[DR_TRACKING_MAX + 1])
{
    char dashed[DR_TRACKING_MAX + 1];
    struct dr_tracking_match m;
    size_t n;

    if (compact_tn(in, 0, out)) {
        return -1;
    }
    if (strchr(in, '-') && dr_tracking_validate(out, &m, 1, &n) != DR_OK &&
        compact_tn(in, 1, dashed) == 0 && dashed[0] != '-' && dashed[strlen(dashed) - 1] != '-' &&
        dr_tracking_validate(dashed, &m, 1, &n) == DR_OK) {
        memcpy(out, dashed, sizeof(dashed));
    }
    return 0;
}

/* The carrier as stored and checked: the module's code ("UPS" -> "ups"), else the name in lower
 * case with blanks and hyphens as underscores ("Acme Freight" -> "acme_freight"), in buf; NULL for
 * a name that is only blanks. */
static const char *carrier_of(const char *name, char buf[64])
{
    const char *code = dr_shipment_carrier_code(name);
    size_t n = 0;

    if (code) {
        return code;
    }
    while (*name == ' ' || *name == '\t') {
        name++;
    }
    for (; *name && n < 63; name++) {
        char c = *name;
        buf[n++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c == ' ' || c == '-' ? '_' : c;
    }
    while (n && buf[n - 1] == '_') {
        n--;
    }
    buf[n] = '\0';
    return n ? buf : NULL;
}

static enum dr_shipment_status status_of(const char *s, int *unrecognised)
{
    enum dr_shipment_status st;

    *unrecognised = 0;
    if (!s || !*s) {
        return DR_SHIP_UNKNOWN;
    }
    if (dr_shipment_status_parse(s, &st) == DR_OK) {
        return st;
    }
    st = dr_shipment_status_from_text(s, strlen(s));
    *unrecognised = st == DR_SHIP_UNKNOWN;
    return st;
}

static int time_of(const cJSON *pl, const struct dr_msg *msg, int64_t *ms)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(pl, "event_time");

    if (!v || cJSON_IsNull(v)) {
        *ms = msg->publish_time_ms > 0 ? msg->publish_time_ms : dr_now_ms();
        return 0;
    }
    if (cJSON_IsString(v)) {
        return dr_parse_time(v->valuestring, ms) ? -1 : 0;
    }
    if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e14) {
        *ms = (int64_t)v->valuedouble;
        return 0;
    }
    return -1;
}

static void notify(const struct ship_proc *sp, struct dr_result *res,
                   const struct dr_shipment_event *ev, const struct dr_shipment_change *ch,
                   const char *tracking_url)
{
    cJSON *d = cJSON_CreateObject();
    char room[MAX_ID + 16], text[512], when[32];
    const char *status = dr_shipment_status_name(ch->after);
    const char *carrier = ch->carrier[0] ? ch->carrier : NULL;

    (void)sp;
    cJSON_AddStringToObject(d, "tracking_number", ev->tracking_number);
    if (carrier) {
        cJSON_AddStringToObject(d, "carrier", carrier);
    }
    cJSON_AddStringToObject(d, "status", status);
    cJSON_AddStringToObject(d, "previous_status",
                            ch->created ? "none" : dr_shipment_status_name(ch->before));
    cJSON_AddBoolToObject(d, "new_shipment", ch->created);
#define ADD_OPT(key, val)                                                                          \
    do {                                                                                           \
        if ((val)[0]) {                                                                            \
            cJSON_AddStringToObject(d, key, val);                                                  \
        }                                                                                          \
    } while (0)
    ADD_OPT("status_detail", ch->status_detail);
    ADD_OPT("location", ch->location);
    ADD_OPT("merchant", ch->merchant);
    ADD_OPT("order_id", ch->order_id);
#undef ADD_OPT
    if (ch->last_event_ms) {
        dr_format_time(ch->last_event_ms, when);
        cJSON_AddStringToObject(d, "event_time", when);
    }
    if (tracking_url) {
        cJSON_AddStringToObject(d, "tracking_url", tracking_url);
    }
    cJSON_AddStringToObject(d, "source", ev->source);
    snprintf(text, sizeof(text), "%s%s%.200s %s", carrier ? carrier : "", carrier ? " " : "",
             ev->tracking_number,
             ch->created && ch->after == DR_SHIP_UNKNOWN ? "is being tracked" : status);
    snprintf(room, sizeof(room), "user:%s", ev->user_id);
    dr_result_notify(res, ev->user_id, ev->org_id, room, "shipment.updated", "Shipment updated",
                     text, d);
    snprintf(room, sizeof(room), "shipment:%s", ev->tracking_number);
    dr_result_notify(res, ev->user_id, ev->org_id, room, "shipment.updated", "Shipment updated",
                     text, d);
    cJSON_Delete(d);
}

/* Asks the provider. 0 with *cs filled (maybe empty), or -1 with the outcome set. */
static int ask_provider(struct ship_proc *sp, const struct dr_msg *msg, const char *tn,
                        const char *carrier, struct dr_carrier_status *cs, struct dr_result *res)
{
    char why[256];
    int err = sp->provider->fetch(sp->provider, tn, carrier, cs, why, sizeof(why));

    if (err == DR_EUNAVAIL) {
        dr_result_downstream_failed(res, BREAKER, "carrier status: %s", why);
        res->retry_after_ms = cs->retry_after_ms;
        return -1;
    }
    if (err) {
        DR_WARN(COMP, "carrier status not used", "message_id=%s error=\"%s\" detail=\"%s\"",
                msg->message_id, dr_strerror(err), why);
        memset(cs, 0, sizeof(*cs));
    }
    return 0;
}

static void process(void *state, const struct dr_msg *msg, struct dr_result *res)
{
    struct ship_proc *sp = state;
    const cJSON *pl = dr_msg_payload(msg);
    const char *type = msg->type ? msg->type : "shipment_detected";
    const char *status_text, *carrier, *refuted_by = NULL, *problem;
    struct dr_tracking_match m[4];
    struct dr_carrier_status cs = {0};
    struct dr_shipment_event *evs = NULL;
    struct dr_shipment_change ch;
    char tn[DR_TRACKING_MAX + 1], url[512], carrier_buf[64];
    const char *tracking_url = NULL;
    size_t nm = 0, nev = 0;
    int carrier_msg, verified, unrecognised, err;
    int64_t ms;

    if (!cJSON_IsObject(pl)) {
        dr_result_reject(res, "invalid_payload", "payload is not a JSON object");
        return;
    }
    /* what is stored is notified later: text that is not UTF-8 would be refused then, after
     * the shipment had been stored */
    if (msg->data && (problem = dr_json_text_problem((const char *)msg->data, msg->data_len))) {
        dr_result_reject(res, "invalid_payload", "payload: %s", problem);
        return;
    }
    if (strcmp(type, "shipment_detected") != 0 && strcmp(type, "carrier_status") != 0) {
        dr_result_reject(res, "invalid_payload",
                         "type %.64s: expected shipment_detected or carrier_status", type);
        return;
    }
    carrier_msg = strcmp(type, "carrier_status") == 0;
    if (!str_ok(pl, "user_id", MAX_ID, 1) ||
        !str_ok(pl, "tracking_number", 4 * DR_TRACKING_MAX, 1)) {
        dr_result_reject(res, "invalid_payload",
                         "user_id and tracking_number: non-empty strings are required");
        return;
    }
    if (!str_ok(pl, "org_id", MAX_ID, 0) || !str_ok(pl, "carrier", 63, 0) ||
        !str_ok(pl, "status", MAX_TEXT, 0) || !str_ok(pl, "status_detail", MAX_TEXT, 0) ||
        !str_ok(pl, "location", MAX_TEXT, 0) || !str_ok(pl, "source", 64, 0) ||
        !str_ok(pl, "email_id", MAX_ID, 0) || !str_ok(pl, "merchant", MAX_TEXT, 0) ||
        !str_ok(pl, "order_id", 127, 0)) {
        dr_result_reject(res, "invalid_payload",
                         "org_id, carrier, status, status_detail, location, source, email_id, "
                         "merchant and order_id must be strings within limits");
        return;
    }
    if (time_of(pl, msg, &ms)) {
        dr_result_reject(res, "invalid_payload",
                         "event_time: expected RFC 3339 or epoch milliseconds");
        return;
    }
    if (normalise_tn(dr_json_str(pl, "tracking_number"), tn)) {
        dr_result_reject(res, "invalid_tracking_number",
                         "tracking_number: expected 4-40 letters and digits");
        return;
    }
    carrier = dr_json_str(pl, "carrier");
    carrier = carrier && *carrier ? carrier_of(carrier, carrier_buf) : NULL;
    if (!carrier_msg && carrier && dr_tracking_refuted(tn, carrier, &refuted_by)) {
        dr_result_reject(res, "invalid_tracking_number",
                         "%s has the layout of %s but fails its check digit: not a %.63s number",
                         tn, refuted_by, carrier);
        return;
    }
    verified = dr_tracking_validate(tn, m, DR_ARRAY_LEN(m), &nm) == DR_OK;
    if (verified) {
        size_t pick = 0;
        for (size_t i = 0; carrier && i < nm; i++) {
            if (strcmp(m[i].carrier, carrier) == 0) {
                pick = i;
            }
        }
        carrier = carrier ? carrier : m[pick].carrier;
        if (dr_tracking_url(&m[pick], url, sizeof(url)) == DR_OK) {
            tracking_url = url;
        }
    } else if (!carrier_msg && !carrier) {
        dr_result_reject(res, "invalid_tracking_number",
                         "%s fits no carrier's format or check digit, and no carrier vouches "
                         "for it",
                         tn);
        return;
    }
    status_text = dr_json_str(pl, "status");
    evs = dr_xcalloc(1 + 200, sizeof(*evs));
    evs[0] = (struct dr_shipment_event){
        .user_id = dr_json_str(pl, "user_id"),
        .org_id = dr_json_str(pl, "org_id"),
        .tracking_number = tn,
        .carrier = carrier,
        .merchant = dr_json_str(pl, "merchant"),
        .order_id = dr_json_str(pl, "order_id"),
        .status = status_of(status_text, &unrecognised),
        .status_detail = dr_json_str(pl, "status_detail"),
        .location = dr_json_str(pl, "location"),
        .source = dr_json_str(pl, "source") ? dr_json_str(pl, "source")
                  : carrier_msg             ? "carrier"
                                            : "email",
        .email_id = dr_json_str(pl, "email_id"),
        .event_ms = ms,
        .verified = verified || carrier_msg,
    };
    if (unrecognised) {
        DR_WARN(COMP, "status not recognised, stored as unknown", "message_id=%s", msg->message_id);
        if (!evs[0].status_detail) {
            evs[0].status_detail = status_text;
        }
    }
    nev = 1;
    if (sp->provider && !carrier_msg) {
        if (ask_provider(sp, msg, tn, carrier, &cs, res)) {
            goto out;
        }
        for (size_t i = 0; i < cs.n_events && nev < 201; i++) {
            struct dr_shipment_event *e = &evs[nev++];
            *e = evs[0];
            e->status = cs.events[i].status;
            e->status_detail = cs.events[i].detail ? cs.events[i].detail : cs.events[i].status_text;
            e->location = cs.events[i].location;
            e->source = "carrier_api";
            e->email_id = NULL;
            e->event_ms = cs.events[i].time_ms;
            e->verified = 1;
        }
    }
    err = dr_shipment_store_record(sp->store, evs, nev, &ch);
    if (err) {
        dr_result_store_failed(res, err, "recording the shipment");
        goto out;
    }
    if (ch.created || ch.before != ch.after) {
        notify(sp, res, &evs[0], &ch, tracking_url);
    }
    DR_INFO(COMP, "shipment event",
            "message_id=%s shipment_id=%lld status=%s previous=%s new=%d events=%zu "
            "duplicates=%zu verified=%d",
            msg->message_id, (long long)ch.shipment_id, dr_shipment_status_name(ch.after),
            dr_shipment_status_name(ch.before), ch.created, ch.inserted, ch.duplicates,
            evs[0].verified);
out:
    dr_carrier_status_cleanup(&cs);
    free(evs);
}

static const char *const config_keys[] = {
    "provider",       "provider.url",        "provider.api_key",     "provider.rate_per_sec",
    "provider.burst", "provider.timeout_ms", "provider.max_wait_ms", NULL};

const struct dr_processor dr_processor_shipment = {
    .name = "shipment",
    .description = "shipment events (from emails and carriers): stored per user and tracking "
                   "number, status changes notified",
    .config_keys = config_keys,
    .init = init,
    .process = process,
    .destroy = destroy,
};
