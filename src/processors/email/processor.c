/*
 * The email processor (topic email-backfill, type email; DESIGN §5): payload {user_id, org_id,
 * account, provider, email_id, thread_id, received_at} plus either `raw` (base64url RFC 5322, as
 * the Gmail API returns it; standard base64 is accepted too) or the pre-parsed fields (subject,
 * from, to, cc, date, message_id, in_reply_to, references, body_text, body_html).
 *
 * The email is parsed (parse.c, fields.c) and classified (classify.c); what it produces:
 *   shipment-updates    one `shipment_detected` per tracking number (ordering key: the number);
 *   meeting-responses   one `poll_response_email` when it answers a stored poll (ordering key:
 *                       the poll id): the reply's own headers, its text and any iCalendar REPLY
 *                       part as `ics`, in the field names dr_email_from_fields() reads;
 *   calendar-updates    one `calendar_event` per text/calendar part with the part as `ics`; a
 *                       REPLY part of an email that matched a poll goes to the poll only (the
 *                       calendar processor would forward it to the same poll a second time);
 *   vespa-index         a put of the email (doctype "email", docid user_id:email_id);
 *   client-notifications  `email.processed` progress per user, throttled (below).
 *
 * Progress notifications: at most one per user per `progress_interval_ms` (default 1000) per
 * instance, carrying cumulative counts (processed, shipments, poll_replies) since the user's
 * first email on this instance (an entry idle for 10 minutes starts again from zero). A message
 * inside the window only marks the user's counts pending; the next message processed here after
 * the window (for this user or any other: every message sweeps pending users once a window)
 * emits them. The trade-off: a processor can only emit while handling a message, so the counts
 * of a backfill's last second reach the user with the next email this instance processes; when
 * none follows they stay pending (the shipment and poll notifications themselves are never
 * throttled). Counts are per instance and count redeliveries again: progress, not accounting.
 *
 * Rejections: invalid_payload (not an object, user_id or email_id missing, wrong field types,
 * raw not base64url), invalid_email (the parser's reason). Poll lookup failures are retried
 * (store_error). Parser warnings are logged as a count; bodies and addresses never are.
 *
 * Config (processors.email): reply_local_part (see meeting_poll), progress_interval_ms
 * (0 = no progress notifications), index_text_bytes (text indexed per email, default 32768).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dr/email.h"
#include "dr/err.h"
#include "dr/index.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/poll_store.h"
#include "dr/processor.h"
#include "dr/shipment.h"
#include "dr/store.h"
#include "dr/util.h"
#include "processors/email/classify.h"
#include "processors/email/email_int.h"

#define COMP               "processor.email"
#define MAX_ID             512
#define SHIPMENT_TOPIC     "shipment-updates"
#define POLL_TOPIC         "meeting-responses"
#define CALENDAR_TOPIC     "calendar-updates"
#define PROGRESS_MAX_USERS 16384
#define PROGRESS_IDLE_MS   (10 * 60 * 1000)
#define PROGRESS_BUCKETS   1024

/* ---- progress throttle ---- */

struct progress_user {
    struct progress_user *next; /* bucket chain */
    char *user_id;
    char *org_id;
    uint64_t processed, shipments, polls;
    int64_t last_sent_ms, last_seen_ms;
    int pending;
};

struct progress {
    pthread_mutex_t mu;
    struct progress_user *buckets[PROGRESS_BUCKETS];
    size_t n;
    int64_t interval_ms;
    int64_t last_sweep_ms;
};

struct email_proc {
    struct dr_store *store;
    char *reply_local_part;
    size_t index_text_bytes;
    struct progress progress;
};

static unsigned hash_str(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h % PROGRESS_BUCKETS;
}

static void progress_emit(struct progress_user *u, struct dr_result *res, int64_t now)
{
    cJSON *d = cJSON_CreateObject();
    char room[MAX_ID + 8], text[160];

    cJSON_AddNumberToObject(d, "processed", (double)u->processed);
    cJSON_AddNumberToObject(d, "shipments", (double)u->shipments);
    cJSON_AddNumberToObject(d, "poll_replies", (double)u->polls);
    snprintf(text, sizeof(text), "%llu emails processed (%llu shipments, %llu poll replies)",
             (unsigned long long)u->processed, (unsigned long long)u->shipments,
             (unsigned long long)u->polls);
    snprintf(room, sizeof(room), "user:%s", u->user_id);
    dr_result_notify(res, u->user_id, u->org_id, room, "email.processed", "Importing email", text,
                     d);
    cJSON_Delete(d);
    u->last_sent_ms = now;
    u->pending = 0;
}

static void progress_free_user(struct progress_user *u)
{
    free(u->user_id);
    free(u->org_id);
    free(u);
}

/* Emits what is due for other users and drops idle entries. Caller holds mu. */
static void progress_sweep(struct progress *p, struct dr_result *res, int64_t now,
                           const struct progress_user *skip, int make_room)
{
    struct progress_user *lru = NULL, **lru_link = NULL;

    for (size_t b = 0; b < PROGRESS_BUCKETS; b++) {
        struct progress_user **link = &p->buckets[b];
        while (*link) {
            struct progress_user *u = *link;
            if (u != skip && u->pending && now - u->last_sent_ms >= p->interval_ms) {
                progress_emit(u, res, now);
            }
            if (u != skip && !u->pending && now - u->last_seen_ms >= PROGRESS_IDLE_MS) {
                *link = u->next;
                progress_free_user(u);
                p->n--;
                continue;
            }
            if (u != skip && (!lru || u->last_seen_ms < lru->last_seen_ms)) {
                lru = u;
                lru_link = link;
            }
            link = &u->next;
        }
    }
    if (make_room && p->n >= PROGRESS_MAX_USERS && lru) {
        if (lru->pending) {
            progress_emit(lru, res, now); /* its counts are not lost */
        }
        *lru_link = lru->next;
        progress_free_user(lru);
        p->n--;
    }
}

static void progress_count(struct progress *p, struct dr_result *res, const char *user_id,
                           const char *org_id, int shipments, int poll)
{
    unsigned h = hash_str(user_id);
    struct progress_user *u;
    int64_t now = dr_mono_ms();

    if (p->interval_ms <= 0) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    for (u = p->buckets[h]; u && strcmp(u->user_id, user_id) != 0; u = u->next) {
    }
    if (!u) {
        if (p->n >= PROGRESS_MAX_USERS) {
            progress_sweep(p, res, now, NULL, 1);
        }
        u = dr_xcalloc(1, sizeof(*u));
        u->user_id = dr_xstrdup(user_id);
        u->last_sent_ms = now - p->interval_ms; /* the first email of a user reports at once */
        u->next = p->buckets[h];
        p->buckets[h] = u;
        p->n++;
    }
    if (org_id && (!u->org_id || strcmp(u->org_id, org_id) != 0)) {
        free(u->org_id);
        u->org_id = dr_xstrdup(org_id);
    }
    u->processed++;
    u->shipments += (uint64_t)shipments;
    u->polls += (uint64_t)poll;
    u->last_seen_ms = now;
    u->pending = 1;
    if (now - u->last_sent_ms >= p->interval_ms) {
        progress_emit(u, res, now);
    }
    if (now - p->last_sweep_ms >= p->interval_ms) {
        p->last_sweep_ms = now;
        progress_sweep(p, res, now, u, 0);
    }
    pthread_mutex_unlock(&p->mu);
}

/* ---- config ---- */

static int conf_int(const cJSON *conf, const char *key, int64_t lo, int64_t hi, int64_t *out,
                    char *err, size_t errsz)
{
    const cJSON *v = conf ? cJSON_GetObjectItemCaseSensitive(conf, key) : NULL;
    int64_t x;

    if (!v || cJSON_IsNull(v)) {
        return 0;
    }
    if (cJSON_IsNumber(v) && v->valuedouble >= (double)lo && v->valuedouble <= (double)hi) {
        x = (int64_t)v->valuedouble;
    } else if (!cJSON_IsString(v) || dr_parse_i64(v->valuestring, &x) || x < lo || x > hi) {
        snprintf(err, errsz, "processors.email.%s: expected an integer in %lld..%lld", key,
                 (long long)lo, (long long)hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int init(const struct dr_proc_env *env, void **state, char *err, size_t errsz)
{
    struct email_proc *ep;
    const char *local = env->config ? dr_json_str(env->config, "reply_local_part") : NULL;
    int64_t interval = 1000, text_bytes = 32768;
    int rc;

    if (conf_int(env->config, "progress_interval_ms", 0, 3600000, &interval, err, errsz) ||
        conf_int(env->config, "index_text_bytes", 0, 1 << 20, &text_bytes, err, errsz)) {
        return -1;
    }
    if (env->store) {
        rc = dr_poll_store_migrate(env->store); /* poll lookups, also without meeting_poll */
        if (rc) {
            snprintf(err, errsz, "poll tables: %s", dr_strerror(rc));
            return -1;
        }
    }
    dr_email_global_init();
    ep = dr_xcalloc(1, sizeof(*ep));
    ep->store = env->store;
    ep->reply_local_part = local && *local ? dr_xstrdup(local) : NULL;
    ep->index_text_bytes = (size_t)text_bytes;
    pthread_mutex_init(&ep->progress.mu, NULL);
    ep->progress.interval_ms = interval;
    ep->progress.last_sweep_ms = dr_mono_ms();
    *state = ep;
    return 0;
}

static void destroy(void *state)
{
    struct email_proc *ep = state;

    if (!ep) {
        return;
    }
    for (size_t b = 0; b < PROGRESS_BUCKETS; b++) {
        while (ep->progress.buckets[b]) {
            struct progress_user *u = ep->progress.buckets[b];
            ep->progress.buckets[b] = u->next;
            progress_free_user(u);
        }
    }
    pthread_mutex_destroy(&ep->progress.mu);
    free(ep->reply_local_part);
    free(ep);
}

/* ---- per message ---- */

struct ctx {
    struct email_proc *ep;
    const struct dr_msg *msg;
    struct dr_result *res;
    const cJSON *pl;
    const char *user_id, *org_id, *email_id;
    const struct dr_email *em;
    const struct dr_email_class *cls;
    char event_time[40]; /* the email's date, else received_at, else publish time */
    struct dr__email_msg_ids ids;
};

static int str_ok(const cJSON *o, const char *key, size_t max, int required)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!v || cJSON_IsNull(v)) {
        return !required;
    }
    return cJSON_IsString(v) && (!required || v->valuestring[0]) && strlen(v->valuestring) <= max;
}

/* The put of the email to the search index (index.c writes it). */
static int emit_index(const struct ctx *c)
{
    const char *attrs[] = {"type", "index_operation", NULL};
    char docid[DR__EMAIL_DOCID_MAX];
    struct dr_buf b;
    int err;

    dr_buf_init(&b, DR__EMAIL_INDEX_OP_MAX);
    err =
        dr__email_index_op(c->em, c->cls, c->pl, c->event_time, c->ep->index_text_bytes, &b, docid);
    if (!err) {
        dr_result_emit(c->res, DR_INDEX_TOPIC, b.data, b.len, docid, attrs);
    }
    dr_buf_cleanup(&b);
    return err;
}

/* One forwarded message per call of write (emit.c), in a buffer reused between them. */
static int emit_msg(const struct ctx *c, struct dr_buf *b, const char *topic, const char *type,
                    const char *ordering_key, int err)
{
    const char *attrs[] = {"type", type, NULL};

    if (!err) {
        dr_result_emit(c->res, topic, b->data, b->len, ordering_key, attrs);
    }
    dr_buf_reset(b);
    return err;
}

/*
 * 1 unless the shipment processor would refuse the number: it passes no carrier's format with its
 * check digit, and no carrier vouches for it (the email's carrier does not when its check digit
 * refutes the number). Those are not forwarded, to be dead-lettered there: the email stays
 * indexed with them marked invalid, and the count is logged.
 */
static int forwardable(const struct dr_email_class *cls, const cJSON *e)
{
    const char *carrier = dr__email_class_carrier(cls, e);

    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "valid"))) {
        return 1;
    }
    return carrier && !dr_tracking_refuted(dr_json_str(e, "tracking_number"), carrier, NULL);
}

/* Forwards the numbers found; *sent of them. */
static int emit_shipments(const struct ctx *c, struct dr_buf *b, size_t *sent)
{
    int err = DR_OK;

    *sent = 0;
    for (size_t i = 0; i < c->cls->n_accepted && !err; i++) {
        const cJSON *e = c->cls->accepted[i];

        if (!forwardable(c->cls, e)) {
            continue;
        }
        (*sent)++;

        err = emit_msg(c, b, SHIPMENT_TOPIC, "shipment_detected", dr_json_str(e, "tracking_number"),
                       dr__email_shipment_msg(c->cls, e, &c->ids, b));
    }
    return err;
}

static int emit_poll(const struct ctx *c, struct dr_buf *b)
{
    return emit_msg(c, b, POLL_TOPIC, "poll_response_email", c->cls->poll_id,
                    dr__email_poll_msg(c->em, c->cls, &c->ids, b));
}

static int emit_calendar(const struct ctx *c, struct dr_buf *b)
{
    int err = DR_OK;

    for (size_t i = 0; i < c->em->n_calendar && !err; i++) {
        const struct dr_email_calendar *cal = &c->em->calendar[i];

        if (!cal->ics || (cal == c->cls->ics_reply && (c->cls->kinds & DR_EMAIL_KIND_POLL_REPLY))) {
            continue;
        }
        err = emit_msg(c, b, CALENDAR_TOPIC, "calendar_event", NULL,
                       dr__email_calendar_msg(cal, &c->ids, b));
    }
    return err;
}

/* The parsed email, and while it is classified what its HTML body is read from on demand. */
struct loaded {
    struct dr_email *em;
    struct dr__email_lazy *lazy; /* NULL unless the HTML body was left unread */
    struct dr_buf bytes;         /* the decoded raw message, which lazy reads from */
};

static int load_html(void *arg)
{
    struct loaded *l = arg;

    return dr__email_lazy_html(l->lazy, l->em);
}

/* Ends what the email's classification needed of l: its parsed message and raw bytes. */
static void loaded_done(struct loaded *l)
{
    dr__email_lazy_free(l->lazy);
    l->lazy = NULL;
    dr__email_scratch_give(DR__EMAIL_SCRATCH_RAW, &l->bytes);
}

/* Parses the payload's email into l (l->bytes dr_buf_init()ed). 0, or -1 with the outcome set. */
static int load_email(const struct dr_msg *msg, struct loaded *l, struct dr_result *res)
{
    static const char *const fields[] = {"subject", "from", "body_text", "body_html", "message_id"};
    const cJSON *pl = dr_msg_payload(msg), *raw = cJSON_GetObjectItemCaseSensitive(pl, "raw");
    struct dr_email **em = &l->em;
    size_t len = 0, i;
    int err;

    *em = NULL;
    if (raw && !cJSON_IsNull(raw)) {
        size_t rlen = cJSON_IsString(raw) ? strlen(raw->valuestring) : 0;
        if (!rlen) {
            dr_result_reject(res, "invalid_payload", "raw: must be a non-empty base64url string");
            return -1;
        }
        /* decoded into this thread's scratch buffer: the parser copies what it keeps, and the
         * HTML body left unread is read from it (kept until loaded_done()) */
        dr__email_scratch_take(DR__EMAIL_SCRATCH_RAW, &l->bytes);
        err = dr_buf_reserve(&l->bytes, DR_BASE64_DECODED_MAX(rlen) + 1);
        if (err) {
            dr_result_retry(res, "out_of_memory", "decoding raw");
            return -1;
        }
        err =
            dr__email_raw_decode_into(raw->valuestring, rlen, (unsigned char *)l->bytes.data, &len);
        if (err) {
            dr_result_reject(res, "invalid_payload", "raw: not base64url (%zu characters)", rlen);
            return -1;
        }
        /* html_text is read only when the email has no text body, the HTML body only when the
         * classification asks for it (load_html()) */
        err = dr__email_parse_lazy(l->bytes.data, len, NULL, DR__EMAIL_NO_HTML_TEXT, em, &l->lazy);
    } else {
        for (i = 0; i < DR_ARRAY_LEN(fields); i++) {
            if (cJSON_GetObjectItemCaseSensitive(pl, fields[i])) {
                break;
            }
        }
        if (i == DR_ARRAY_LEN(fields)) {
            dr_result_reject(res, "invalid_payload",
                             "needs raw or pre-parsed fields (subject, from, body_text, ...)");
            return -1;
        }
        err = dr_email_from_fields(pl, NULL, em);
    }
    if (err == DR_ENOMEM) {
        dr_result_retry(res, "out_of_memory", "parsing the email");
        return -1;
    }
    if (err) {
        dr_result_reject(res, "invalid_email", "%s",
                         dr_email_error_reason()[0] ? dr_email_error_reason() : dr_strerror(err));
        return -1;
    }
    return 0;
}

static void set_event_time(struct ctx *c)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(c->pl, "received_at");
    int64_t ms;

    if (c->em->has_date && c->em->date[0]) {
        snprintf(c->event_time, sizeof(c->event_time), "%s", c->em->date);
        return;
    }
    if (cJSON_IsString(r) && dr_parse_time(r->valuestring, &ms) == DR_OK) {
        dr_format_time(ms, c->event_time);
        return;
    }
    if (cJSON_IsNumber(r) && r->valuedouble > 0 && r->valuedouble < 1e14) {
        dr_format_time((int64_t)r->valuedouble, c->event_time);
        return;
    }
    dr_format_time(c->msg->publish_time_ms > 0 ? c->msg->publish_time_ms : dr_now_ms(),
                   c->event_time);
}

static void process(void *state, const struct dr_msg *msg, struct dr_result *res)
{
    struct email_proc *ep = state;
    struct ctx c = {.ep = ep, .msg = msg, .res = res, .pl = dr_msg_payload(msg)};
    struct loaded l = {0};
    struct dr_email_class_opts opts = {.store = ep->store,
                                       .reply_local_part = ep->reply_local_part,
                                       .load_html = load_html,
                                       .html_arg = &l};
    struct dr_email_class cls = {0};
    struct dr_email *em = NULL;
    struct dr_buf b = {0};
    size_t nship = 0;
    int err;

    if (!cJSON_IsObject(c.pl)) {
        dr_result_reject(res, "invalid_payload", "payload is not a JSON object");
        return;
    }
    if (!str_ok(c.pl, "user_id", MAX_ID, 1) || !str_ok(c.pl, "email_id", MAX_ID, 1)) {
        dr_result_reject(res, "invalid_payload",
                         "user_id and email_id: non-empty strings of at "
                         "most 512 bytes are required");
        return;
    }
    if (!str_ok(c.pl, "org_id", MAX_ID, 0) || !str_ok(c.pl, "account", MAX_ID, 0) ||
        !str_ok(c.pl, "provider", MAX_ID, 0) || !str_ok(c.pl, "thread_id", MAX_ID, 0)) {
        dr_result_reject(res, "invalid_payload",
                         "org_id, account, provider and thread_id must be strings of at most "
                         "512 bytes");
        return;
    }
    c.user_id = dr_json_str(c.pl, "user_id");
    c.org_id = dr_json_str(c.pl, "org_id");
    c.email_id = dr_json_str(c.pl, "email_id");
    dr_buf_init(&l.bytes, SIZE_MAX);
    if (load_email(msg, &l, res)) {
        loaded_done(&l);
        DR_INFO(COMP, "email rejected", "message_id=%s reason=%s", msg->message_id, res->reason);
        return;
    }
    em = l.em;
    c.em = em;
    err = dr__email_classify(em, &opts, &cls);
    loaded_done(&l); /* before anything that may leave em */
    if (err == DR_ENOMEM) {
        dr_result_retry(res, "out_of_memory", "classifying the email");
        goto out;
    }
    if (err) {
        dr_result_retry(res, "store_error", "looking up meeting polls: %s", dr_strerror(err));
        goto out;
    }
    c.cls = &cls;
    set_event_time(&c);
    c.ids.user_id = c.user_id;
    c.ids.org_id = c.org_id;
    c.ids.email_id = c.email_id;
    c.ids.event_time = c.event_time;
    dr_buf_init(&b, DR__EMAIL_MSG_MAX);
    if (emit_shipments(&c, &b, &nship) ||
        ((cls.kinds & DR_EMAIL_KIND_POLL_REPLY) && emit_poll(&c, &b)) || emit_calendar(&c, &b)) {
        dr_result_retry(res, "out_of_memory", "writing the forwarded messages");
        goto out;
    }
    if ((err = emit_index(&c)) == DR_ETOOBIG) {
        dr_result_reject(res, "invalid_payload",
                         "user_id and email_id make a search document id longer than %d bytes",
                         DR_INDEX_DOCID_MAX);
        goto out;
    } else if (err) {
        dr_result_retry(res, "out_of_memory", "writing the index operation");
        goto out;
    }
    progress_count(&ep->progress, res, c.user_id, c.org_id, (int)nship,
                   (cls.kinds & DR_EMAIL_KIND_POLL_REPLY) != 0);
    DR_INFO(COMP, "email processed",
            "message_id=%s class=%s shipments=%zu unverifiable_numbers=%zu poll=%s "
            "calendar_parts=%zu warnings=%zu",
            msg->message_id, cls.primary, nship, cls.n_accepted - nship,
            cls.poll_lookup ? cls.poll_lookup : "-", em->n_calendar, em->n_warnings);
out:
    dr_buf_cleanup(&b);
    dr__email_class_cleanup(&cls);
    dr_email_destroy(em);
}

static const char *const config_keys[] = {"reply_local_part", "progress_interval_ms",
                                          "index_text_bytes", NULL};

const struct dr_processor dr_processor_email = {
    .name = "email",
    .description = "emails: parsed, classified (shipment, poll reply, calendar), indexed; "
                   "shipments, poll replies and calendar parts forwarded",
    .config_keys = config_keys,
    .init = init,
    .process = process,
    .destroy = destroy,
};
