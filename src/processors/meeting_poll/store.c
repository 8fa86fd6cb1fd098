/*
 * Meeting-poll storage: the definition of each poll, the keys that tie emails and iCalendar
 * replies to it, its participants and their answers.
 *
 * Answers are keyed by (poll, participant, slot) and an update applies only when it is newer by
 * the email's date (ties broken by the source message id), so at-least-once delivery, replays
 * and emails arriving out of order all converge on the same rows. The participant's comment
 * follows the same rule.
 */
#include "dr/poll_store.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dr/err.h"
#include "dr/json.h"
#include "dr/log.h"
#include "dr/store.h"
#include "dr/util.h"
#include "processors/meeting_poll/poll_store_int.h"

/* v200: polls with their definition as JSON (slots are read from it), lookup keys (kind
 * "token" | "msgid" | "uid"), participants, answers. `source` orders equal-time answers the
 * same way on both engines, hence COLLATE "C" on PostgreSQL. */
static const char v200_sqlite[] =
    "CREATE TABLE polls ("
    " poll_id TEXT PRIMARY KEY,"
    " organizer_user_id TEXT NOT NULL,"
    " org_id TEXT,"
    " title TEXT,"
    " message_id TEXT,"
    " reply_token TEXT,"
    " definition TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE TABLE poll_keys ("
    " kind TEXT NOT NULL, key TEXT NOT NULL, poll_id TEXT NOT NULL,"
    " PRIMARY KEY (kind, key)) WITHOUT ROWID;"
    "CREATE INDEX poll_keys_poll ON poll_keys (poll_id);"
    "CREATE TABLE poll_participants ("
    " poll_id TEXT NOT NULL, email TEXT NOT NULL, name TEXT,"
    " responded_ms INTEGER, comment TEXT, comment_ms INTEGER,"
    " PRIMARY KEY (poll_id, email)) WITHOUT ROWID;"
    "CREATE TABLE poll_responses ("
    " poll_id TEXT NOT NULL, participant_email TEXT NOT NULL, slot_id TEXT NOT NULL,"
    " answer TEXT NOT NULL, answered_ms INTEGER NOT NULL, comment TEXT,"
    " source TEXT NOT NULL, updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY (poll_id, participant_email, slot_id)) WITHOUT ROWID";

static const char v200_postgres[] =
    "CREATE TABLE polls ("
    " poll_id TEXT PRIMARY KEY,"
    " organizer_user_id TEXT NOT NULL,"
    " org_id TEXT,"
    " title TEXT,"
    " message_id TEXT,"
    " reply_token TEXT,"
    " definition TEXT NOT NULL,"
    " created_ms BIGINT NOT NULL,"
    " updated_ms BIGINT NOT NULL);"
    "CREATE TABLE poll_keys ("
    " kind TEXT NOT NULL, key TEXT NOT NULL, poll_id TEXT NOT NULL,"
    " PRIMARY KEY (kind, key));"
    "CREATE INDEX poll_keys_poll ON poll_keys (poll_id);"
    "CREATE TABLE poll_participants ("
    " poll_id TEXT NOT NULL, email TEXT NOT NULL, name TEXT,"
    " responded_ms BIGINT, comment TEXT, comment_ms BIGINT,"
    " PRIMARY KEY (poll_id, email));"
    "CREATE TABLE poll_responses ("
    " poll_id TEXT NOT NULL, participant_email TEXT NOT NULL, slot_id TEXT NOT NULL,"
    " answer TEXT NOT NULL, answered_ms BIGINT NOT NULL, comment TEXT,"
    " source TEXT COLLATE \"C\" NOT NULL, updated_ms BIGINT NOT NULL,"
    " PRIMARY KEY (poll_id, participant_email, slot_id))";

/* v201: the message that carried the participant's comment, so a comment with the same email
 * date as the stored one is decided like the answers (the greater source wins) rather than by
 * which was processed first. Comments stored before keep the source of an answer stored with
 * them (same time, same comment) where there is one, else NULL, which any source beats. */
#define V201_BACKFILL                                                                              \
    "UPDATE poll_participants SET comment_source = (SELECT MAX(r.source) FROM poll_responses r"    \
    " WHERE r.poll_id = poll_participants.poll_id"                                                 \
    " AND r.participant_email = poll_participants.email"                                           \
    " AND r.answered_ms = poll_participants.comment_ms AND r.comment = poll_participants.comment)" \
    " WHERE comment IS NOT NULL"
static const char v201_sqlite[] =
    "ALTER TABLE poll_participants ADD COLUMN comment_source TEXT;" V201_BACKFILL;
static const char v201_postgres[] =
    "ALTER TABLE poll_participants ADD COLUMN comment_source TEXT COLLATE \"C\";" V201_BACKFILL;

static const struct dr_db_migration migrations[] = {
    {200, "meeting polls", v200_sqlite, v200_postgres},
    {201, "poll_participants.comment_source", v201_sqlite, v201_postgres},
};

/* dr_db_migrate() is safe to run concurrently (BEGIN IMMEDIATE on SQLite, an advisory lock on
 * PostgreSQL), so processors that share these tables may all call this from their init. */
int dr_poll_store_migrate(struct dr_store *st)
{
    if (!st) {
        return DR_EINVAL;
    }
    return dr_db_migrate(dr_store_db(st), migrations, DR_ARRAY_LEN(migrations));
}

/* ---- lookups ---- */

struct one_text {
    char *s;
};

static int take_text(void *ctx, const struct dr_db_row *row)
{
    struct one_text *t = ctx;
    const char *v = dr_db_row_text(row, 0);

    if (!t->s && v) {
        t->s = dr_xstrdup(v);
    }
    return 0;
}

/* Looks one key up; DR_ENOTFOUND when absent. */
static int key_lookup(struct dr_db *db, const char *kind, const char *key, char *out, size_t sz)
{
    struct dr_db_val p[2] = {DR_DB_TEXTV(kind), DR_DB_TEXTV(key)};
    struct one_text t = {NULL};
    int err;

    err = dr_db_exec(db, "SELECT poll_id FROM poll_keys WHERE kind = $1 AND key = $2", p, 2,
                     take_text, &t, NULL);
    if (!err && !t.s) {
        err = DR_ENOTFOUND;
    }
    if (!err) {
        if (strlen(t.s) >= sz) {
            err = DR_ETOOBIG;
        } else {
            memcpy(out, t.s, strlen(t.s) + 1);
        }
    }
    free(t.s);
    return err;
}

static char *bare_msgid(const char *s)
{
    size_t n;
    const char *p = dr_msgid_bare(s, &n);

    return dr_xstrndup(p, n);
}

/* The ID of a "[poll:ID]" tag, or NULL. */
static char *subject_tag(const char *subject)
{
    for (const char *p = subject; (p = strchr(p, '[')) != NULL; p++) {
        const char *id = p + 1, *end;
        if (strncasecmp(id, "poll:", 5) != 0) {
            continue;
        }
        id += 5;
        while (*id == ' ') {
            id++;
        }
        end = strchr(id, ']');
        if (!end || end == id || (size_t)(end - id) > DR_POLL_MAX_FIELD) {
            continue;
        }
        return dr_xstrndup(id, (size_t)(end - id));
    }
    return NULL;
}

static int poll_exists(struct dr_db *db, const char *poll_id, int *found)
{
    struct dr_db_val p = DR_DB_TEXTV(poll_id);
    struct one_text t = {NULL};
    int err =
        dr_db_exec(db, "SELECT poll_id FROM polls WHERE poll_id = $1", &p, 1, take_text, &t, NULL);

    *found = t.s != NULL;
    free(t.s);
    return err;
}

int dr_poll_store_match(struct dr_store *st, const char *token, const char *const *msgids, size_t n,
                        const char *subject, char *poll_id_out, size_t sz)
{
    struct dr_db *db;
    int err = DR_ENOTFOUND;

    if (!poll_id_out || !sz) {
        return DR_EINVAL;
    }
    *poll_id_out = '\0';
    if (!st || (n && !msgids)) {
        return DR_EINVAL;
    }
    db = dr_store_db(st);
    if (token && *token) {
        err = key_lookup(db, "token", token, poll_id_out, sz);
    }
    for (size_t i = 0; err == DR_ENOTFOUND && i < n; i++) {
        char *id;
        if (!msgids[i] || !*msgids[i]) {
            continue;
        }
        id = bare_msgid(msgids[i]);
        if (*id) {
            err = key_lookup(db, "msgid", id, poll_id_out, sz);
        }
        free(id);
    }
    if (err == DR_ENOTFOUND && subject) {
        char *id = subject_tag(subject);
        int found = 0;
        if (id) {
            err = poll_exists(db, id, &found);
            if (!err && !found) {
                err = DR_ENOTFOUND;
            } else if (!err && strlen(id) >= sz) {
                err = DR_ETOOBIG;
            } else if (!err) {
                memcpy(poll_id_out, id, strlen(id) + 1);
            }
        }
        free(id);
    }
    if (err) {
        *poll_id_out = '\0';
    }
    return err;
}

int dr_poll_store_match_uid(struct dr_store *st, const char *uid, char *poll_id_out, size_t sz)
{
    int err;

    if (!poll_id_out || !sz) {
        return DR_EINVAL;
    }
    *poll_id_out = '\0';
    if (!st || !uid) {
        return DR_EINVAL;
    }
    err = key_lookup(dr_store_db(st), "uid", uid, poll_id_out, sz);
    if (err) {
        *poll_id_out = '\0';
    }
    return err;
}

/* ---- ownership ---- */

static int mailbox_ok(const char *organizer, const char *poll_org, const char *user_id,
                      const char *org_id)
{
    if (!organizer || !user_id || strcmp(organizer, user_id) != 0) {
        return 0;
    }
    return !poll_org || (org_id && strcmp(poll_org, org_id) == 0);
}

int dr__poll_mailbox_ok(const struct dr__poll_rec *r, const char *user_id, const char *org_id)
{
    return r && mailbox_ok(r->organizer_user_id, r->org_id, user_id, org_id);
}

struct owner {
    int found;
    char *organizer, *org;
};

static int take_owner(void *ctx, const struct dr_db_row *row)
{
    struct owner *o = ctx;

    if (!o->found) {
        o->found = 1;
        o->organizer = dr_xstrdup(dr_db_row_text(row, 0));
        o->org = dr_xstrdup(dr_db_row_text(row, 1));
    }
    return 0;
}

int dr_poll_store_check_mailbox(struct dr_store *st, const char *poll_id, const char *user_id,
                                const char *org_id)
{
    struct dr_db_val p = DR_DB_TEXTV(poll_id);
    struct owner o = {0};
    int err;

    if (!st || !poll_id || !user_id) {
        return DR_EINVAL;
    }
    err = dr_db_exec(dr_store_db(st),
                     "SELECT organizer_user_id, org_id FROM polls WHERE poll_id = $1", &p, 1,
                     take_owner, &o, NULL);
    if (!err && !o.found) {
        err = DR_ENOTFOUND;
    } else if (!err && !mailbox_ok(o.organizer, o.org, user_id, org_id)) {
        err = DR_EAUTH;
    }
    free(o.organizer);
    free(o.org);
    return err;
}

/* ---- definitions ---- */

void dr__poll_rec_destroy(struct dr__poll_rec *r)
{
    if (!r) {
        return;
    }
    free(r->poll_id);
    free(r->organizer_user_id);
    free(r->org_id);
    free(r->title);
    cJSON_Delete(r->definition);
    dr_poll_destroy(r->poll);
    free(r);
}

static char *lower_dup(const char *s)
{
    char *d = dr_xstrdup(s);

    for (char *p = d; p && *p; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    return d;
}

/* What a kind of key is called in a poll definition, for the reason of a refusal. */
static const char *key_field(const char *kind)
{
    return strcmp(kind, "token") == 0   ? "reply_token"
           : strcmp(kind, "msgid") == 0 ? "message_id"
                                        : "event or slot uid";
}

/*
 * Ties key to poll_id. A key another poll holds stays that poll's: DR_EEXIST, with the reason in
 * why (naming the field and the poll, never the key: a reply token is a secret).
 */
static int put_key(struct dr_db_tx *tx, const char *kind, const char *key, const char *poll_id,
                   char *why, size_t whysz)
{
    struct dr_db_val p[3] = {DR_DB_TEXTV(kind), DR_DB_TEXTV(key), DR_DB_TEXTV(poll_id)};
    struct one_text owner = {NULL};
    int64_t n = 0;
    int err;

    if (!key || !*key) {
        return DR_OK;
    }
    err = dr_db_tx_exec(tx,
                        "INSERT INTO poll_keys (kind, key, poll_id) VALUES ($1, $2, $3) "
                        "ON CONFLICT (kind, key) DO NOTHING",
                        p, 3, NULL, NULL, &n);
    if (err || n > 0) {
        return err;
    }
    err = dr_db_tx_exec(tx, "SELECT poll_id FROM poll_keys WHERE kind = $1 AND key = $2", p, 2,
                        take_text, &owner, NULL);
    if (!err && owner.s && strcmp(owner.s, poll_id) != 0) {
        snprintf(why, whysz, "its %s is already poll %.200s's", key_field(kind), owner.s);
        err = DR_EEXIST;
    }
    free(owner.s);
    return err; /* the same key twice in one definition: already this poll's */
}

static int put_keys(struct dr_db_tx *tx, const cJSON *def, const char *poll_id, char *why,
                    size_t whysz)
{
    struct dr_db_val p = DR_DB_TEXTV(poll_id);
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(def, "slots");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "message_ids");
    const cJSON *it;
    const char *mid = dr_json_str(def, "message_id");
    int err;

    err = dr_db_tx_exec(tx, "DELETE FROM poll_keys WHERE poll_id = $1", &p, 1, NULL, NULL, NULL);
    if (!err) {
        err = put_key(tx, "token", dr_json_str(def, "reply_token"), poll_id, why, whysz);
    }
    if (!err && mid) {
        char *bare = bare_msgid(mid);
        err = put_key(tx, "msgid", bare, poll_id, why, whysz);
        free(bare);
    }
    cJSON_ArrayForEach(it, (cJSON_IsArray(ids) ? ids : NULL))
    {
        if (!err && cJSON_IsString(it)) {
            char *bare = bare_msgid(it->valuestring);
            err = put_key(tx, "msgid", bare, poll_id, why, whysz);
            free(bare);
        }
    }
    if (!err) {
        err = put_key(tx, "uid", dr_json_str(def, "event_uid"), poll_id, why, whysz);
    }
    cJSON_ArrayForEach(it, (cJSON_IsArray(slots) ? slots : NULL))
    {
        if (!err) {
            err = put_key(tx, "uid", dr_json_str(it, "uid"), poll_id, why, whysz);
        }
    }
    return err;
}

struct strs {
    char **v;
    size_t n;
};

static int collect_str(void *ctx, const struct dr_db_row *row)
{
    struct strs *s = ctx;
    const char *v = dr_db_row_text(row, 0);

    if (v) {
        s->v = dr_xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
        s->v[s->n++] = dr_xstrdup(v);
    }
    return 0;
}

static void strs_free(struct strs *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i]);
    }
    free(s->v);
}

static int put_participants(struct dr_db_tx *tx, const struct dr_poll *poll)
{
    struct dr_db_val p[3];
    struct strs have = {0};
    char **lower = dr_xcalloc(poll->n_participants + 1, sizeof(*lower));
    int err = DR_OK;

    for (size_t i = 0; !err && i < poll->n_participants; i++) {
        lower[i] = lower_dup(poll->participants[i].email);
        p[0] = DR_DB_TEXTV(poll->poll_id);
        p[1] = DR_DB_TEXTV(lower[i]);
        p[2] = DR_DB_TEXTV(poll->participants[i].name);
        err = dr_db_tx_exec(tx,
                            "INSERT INTO poll_participants (poll_id, email, name) "
                            "VALUES ($1, $2, $3) "
                            "ON CONFLICT (poll_id, email) DO UPDATE SET name = excluded.name",
                            p, 3, NULL, NULL, NULL);
    }
    if (!err) {
        p[0] = DR_DB_TEXTV(poll->poll_id);
        err = dr_db_tx_exec(tx, "SELECT email FROM poll_participants WHERE poll_id = $1", p, 1,
                            collect_str, &have, NULL);
    }
    for (size_t i = 0; !err && i < have.n; i++) {
        int listed = 0;
        for (size_t k = 0; k < poll->n_participants && !listed; k++) {
            listed = strcmp(have.v[i], lower[k]) == 0;
        }
        if (!listed) {
            p[0] = DR_DB_TEXTV(poll->poll_id);
            p[1] = DR_DB_TEXTV(have.v[i]);
            err =
                dr_db_tx_exec(tx, "DELETE FROM poll_participants WHERE poll_id = $1 AND email = $2",
                              p, 2, NULL, NULL, NULL);
        }
    }
    for (size_t i = 0; i < poll->n_participants; i++) {
        free(lower[i]);
    }
    free(lower);
    strs_free(&have);
    return err;
}

static int same_str(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

/* A poll's organizer and org are fixed when it is created (update_sql holds them too). */
static int same_owner(const struct owner *o, const char *organizer, const char *org)
{
    return same_str(o->organizer, organizer) && same_str(o->org, org);
}

int dr__poll_store_put(struct dr_db *db, const cJSON *def, const struct dr_poll *poll,
                       int create_only, int64_t now_ms, int *changed, char *why, size_t whysz)
{
    static const char insert_sql[] =
        "INSERT INTO polls (poll_id, organizer_user_id, org_id, title, message_id, reply_token,"
        " definition, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ";
    static const char create_sql[] = "ON CONFLICT (poll_id) DO NOTHING";
    /* a poll keeps its organizer and org: an update naming others changes nothing (refused below)
     */
    static const char update_sql[] =
        "ON CONFLICT (poll_id) DO UPDATE SET title = excluded.title,"
        " message_id = excluded.message_id, reply_token = excluded.reply_token,"
        " definition = excluded.definition, updated_ms = excluded.updated_ms"
        " WHERE polls.definition <> excluded.definition"
        " AND polls.organizer_user_id = excluded.organizer_user_id"
        " AND (polls.org_id = excluded.org_id OR (polls.org_id IS NULL AND excluded.org_id IS "
        "NULL))";
    char sql[sizeof(insert_sql) + sizeof(update_sql)];
    char *text = dr_json_print(def);
    const char *organizer = dr_json_str(def, "organizer_user_id");
    const char *org = dr_json_str(def, "org_id");
    struct dr_db_val p[8] = {
        DR_DB_TEXTV(poll->poll_id),
        DR_DB_TEXTV(organizer),
        DR_DB_TEXTV(org),
        DR_DB_TEXTV(poll->title),
        DR_DB_TEXTV(dr_json_str(def, "message_id")),
        DR_DB_TEXTV(dr_json_str(def, "reply_token")),
        DR_DB_TEXTV(text),
        DR_DB_INTV(now_ms),
    };
    struct dr_db_tx *tx = NULL;
    struct owner o = {0};
    int64_t n = 0;
    int err;

    *changed = 0;
    if (whysz) {
        *why = '\0';
    }
    snprintf(sql, sizeof(sql), "%s%s", insert_sql, create_only ? create_sql : update_sql);
    err = dr_db_begin(db, &tx);
    if (!err) {
        err = dr_db_tx_exec(tx, sql, p, DR_ARRAY_LEN(p), NULL, NULL, &n);
    }
    if (!err && n == 0) {
        /* stored already: the same poll again (a redelivery, a re-send), or another's id */
        err = dr_db_tx_exec(tx, "SELECT organizer_user_id, org_id FROM polls WHERE poll_id = $1", p,
                            1, take_owner, &o, NULL);
        if (!err && o.found && !same_owner(&o, organizer, org)) {
            snprintf(why, whysz, "poll %.200s exists with another organizer or org", poll->poll_id);
            err = DR_EEXIST;
        }
    }
    if (!err && n > 0) {
        err = put_keys(tx, def, poll->poll_id, why, whysz);
        if (!err) {
            err = put_participants(tx, poll);
        }
    }
    if (tx) {
        if (err) {
            dr_db_rollback(tx);
        } else {
            err = dr_db_commit(tx);
        }
    }
    if (!err) {
        *changed = n > 0;
    }
    free(o.organizer);
    free(o.org);
    free(text);
    return err;
}

/* What take_poll() returns to stop after the row: not a DR_E* code (1 is DR_ENOMEM), so a store
 * failure is never taken for a row that was found. */
#define POLL_ROW 1000

static int take_poll(void *ctx, const struct dr_db_row *row)
{
    struct dr__poll_rec *r = ctx;

    r->organizer_user_id = dr_xstrdup(dr_db_row_text(row, 0));
    r->org_id = dr_xstrdup(dr_db_row_text(row, 1));
    r->title = dr_xstrdup(dr_db_row_text(row, 2));
    r->definition = dr_json_parse(dr_db_row_text(row, 3) ? dr_db_row_text(row, 3) : "",
                                  dr_db_row_text(row, 3) ? strlen(dr_db_row_text(row, 3)) : 0);
    return POLL_ROW; /* one row */
}

int dr__poll_store_get(struct dr_db *db, const char *poll_id, struct dr__poll_rec **out)
{
    struct dr__poll_rec *r = dr_xcalloc(1, sizeof(*r));
    struct dr_db_val p = DR_DB_TEXTV(poll_id);
    int err;

    *out = NULL;
    err = dr_db_exec(db,
                     "SELECT organizer_user_id, org_id, title, definition FROM polls "
                     "WHERE poll_id = $1",
                     &p, 1, take_poll, r, NULL);
    if (err == POLL_ROW) {
        err = r->definition ? dr_poll_from_json(r->definition, &r->poll) : DR_EINVAL;
    } else if (!err) {
        err = DR_ENOTFOUND;
    }
    if (!err) {
        r->poll_id = dr_xstrdup(poll_id);
        *out = r;
        r = NULL;
    }
    dr__poll_rec_destroy(r);
    return err;
}

/* ---- answers ---- */

void dr__poll_state_cleanup(struct dr__poll_state *s)
{
    for (size_t i = 0; i < s->nrows; i++) {
        free(s->rows[i].slot_id);
        free(s->rows[i].answer);
        free(s->rows[i].source);
    }
    free(s->rows);
    free(s->comment);
    free(s->comment_source);
    memset(s, 0, sizeof(*s));
}

static int take_answer(void *ctx, const struct dr_db_row *row)
{
    struct dr__poll_state *s = ctx;
    struct dr__poll_answer_row *r;

    if (s->nrows >= DR_POLL_MAX_SLOTS * 4) {
        return 0; /* answers to slots long removed from the poll: not worth reading */
    }
    s->rows = dr_xrealloc(s->rows, (s->nrows + 1) * sizeof(*s->rows));
    r = &s->rows[s->nrows++];
    r->slot_id = dr_xstrdup(dr_db_row_text(row, 0));
    r->answer = dr_xstrdup(dr_db_row_text(row, 1));
    r->answered_ms = dr_db_row_int(row, 2);
    r->source = dr_xstrdup(dr_db_row_text(row, 3));
    return 0;
}

static int take_participant(void *ctx, const struct dr_db_row *row)
{
    struct dr__poll_state *s = ctx;

    s->responded_ms = dr_db_row_is_null(row, 0) ? 0 : dr_db_row_int(row, 0);
    free(s->comment);
    s->comment = dr_xstrdup(dr_db_row_text(row, 1));
    s->comment_ms = dr_db_row_is_null(row, 2) ? 0 : dr_db_row_int(row, 2);
    free(s->comment_source);
    s->comment_source = dr_xstrdup(dr_db_row_text(row, 3));
    return 0;
}

int dr__poll_store_answer(struct dr_db *db, const struct dr__poll_apply *a,
                          struct dr__poll_state *out)
{
    const char *comment = a->comment && *a->comment ? a->comment : NULL;
    struct dr_db_tx *tx = NULL;
    struct dr_db_val p[8];
    int64_t n = 0, total = 0;
    int64_t now = dr_now_ms();
    int err;

    memset(out, 0, sizeof(*out));
    err = dr_db_begin(db, &tx);
    if (err) {
        return err;
    }
    for (size_t i = 0; !err && i < a->nvotes; i++) {
        p[0] = DR_DB_TEXTV(a->poll_id);
        p[1] = DR_DB_TEXTV(a->email);
        p[2] = DR_DB_TEXTV(a->votes[i].slot_id);
        p[3] = DR_DB_TEXTV(a->votes[i].answer);
        p[4] = DR_DB_INTV(a->answered_ms);
        p[5] = DR_DB_TEXTV(comment);
        p[6] = DR_DB_TEXTV(a->source);
        p[7] = DR_DB_INTV(now);
        err = dr_db_tx_exec(
            tx,
            "INSERT INTO poll_responses (poll_id, participant_email, slot_id, answer, answered_ms,"
            " comment, source, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (poll_id, participant_email, slot_id) DO UPDATE SET"
            " answer = excluded.answer, answered_ms = excluded.answered_ms,"
            " comment = excluded.comment, source = excluded.source,"
            " updated_ms = excluded.updated_ms "
            "WHERE poll_responses.answered_ms < excluded.answered_ms"
            " OR (poll_responses.answered_ms = excluded.answered_ms"
            " AND poll_responses.source < excluded.source)",
            p, 8, NULL, NULL, &n);
        total += n;
    }
    if (!err) {
        p[0] = DR_DB_TEXTV(a->poll_id);
        p[1] = DR_DB_TEXTV(a->email);
        p[2] = DR_DB_TEXTV(a->name);
        err = dr_db_tx_exec(tx,
                            "INSERT INTO poll_participants (poll_id, email, name) "
                            "VALUES ($1, $2, $3) ON CONFLICT (poll_id, email) DO NOTHING",
                            p, 3, NULL, NULL, NULL);
    }
    if (!err && a->nvotes) {
        p[0] = DR_DB_INTV(a->answered_ms);
        p[1] = DR_DB_TEXTV(a->poll_id);
        p[2] = DR_DB_TEXTV(a->email);
        err = dr_db_tx_exec(tx,
                            "UPDATE poll_participants SET responded_ms = $1 "
                            "WHERE poll_id = $2 AND email = $3"
                            " AND (responded_ms IS NULL OR responded_ms < $1)",
                            p, 3, NULL, NULL, &n);
        total += n;
    }
    if (!err && comment) {
        p[0] = DR_DB_TEXTV(comment);
        p[1] = DR_DB_INTV(a->answered_ms);
        p[2] = DR_DB_TEXTV(a->source);
        p[3] = DR_DB_TEXTV(a->poll_id);
        p[4] = DR_DB_TEXTV(a->email);
        err = dr_db_tx_exec(tx,
                            "UPDATE poll_participants SET comment = $1, comment_ms = $2,"
                            " comment_source = $3 WHERE poll_id = $4 AND email = $5"
                            " AND (comment_ms IS NULL OR comment_ms < $2 OR (comment_ms = $2"
                            " AND (comment_source IS NULL OR comment_source < $3)))",
                            p, 5, NULL, NULL, &n);
        total += n;
    }
    if (!err) {
        p[0] = DR_DB_TEXTV(a->poll_id);
        p[1] = DR_DB_TEXTV(a->email);
        err = dr_db_tx_exec(tx,
                            "SELECT slot_id, answer, answered_ms, source FROM poll_responses "
                            "WHERE poll_id = $1 AND participant_email = $2 ORDER BY slot_id",
                            p, 2, take_answer, out, NULL);
    }
    if (!err) {
        err = dr_db_tx_exec(tx,
                            "SELECT responded_ms, comment, comment_ms, comment_source"
                            " FROM poll_participants WHERE poll_id = $1 AND email = $2",
                            p, 2, take_participant, out, NULL);
    }
    if (err) {
        dr_db_rollback(tx);
    } else {
        err = dr_db_commit(tx);
    }
    if (err) {
        dr__poll_state_cleanup(out);
        return err;
    }
    out->changed = total > 0;
    for (size_t i = 0; i < out->nrows && !out->current; i++) {
        out->current = out->rows[i].source && strcmp(out->rows[i].source, a->source) == 0;
    }
    if (!out->current && comment && out->comment_source) {
        out->current = strcmp(out->comment_source, a->source) == 0;
    }
    return DR_OK;
}
