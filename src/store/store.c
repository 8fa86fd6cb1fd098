/*
 * dr_store: opening, closing and the object cleanup helpers. The queries live in queue.c,
 * dedup.c and dlq.c; the schema in migrations.c.
 */
#include "dr/store.h"

#include <cjson/cJSON.h>

#include <stdlib.h>

#include "dr/err.h"
#include "dr/util.h"
#include "store/store_internal.h"

int dr_store_open(const char *url, struct dr_store **out)
{
    struct dr_db *db = NULL;
    int err;

    if (!out) {
        return DR_EINVAL;
    }
    *out = NULL;
    err = dr_db_open(url, 0, &db);
    if (err) {
        goto out;
    }
    err = dr_db_migrate(db, dr__store_migrations, dr__store_nmigrations);
    if (err) {
        goto out;
    }
    *out = dr_xcalloc(1, sizeof(**out));
    (*out)->db = db;
    db = NULL;
    err = dr__queue_convert_legacy(*out);
    if (err) {
        dr_store_close(*out);
        *out = NULL;
    }
out:
    dr_db_close(db);
    return err;
}

void dr_store_close(struct dr_store *st)
{
    if (!st) {
        return;
    }
    dr_db_close(st->db);
    free(st->owner);
    free(st);
}

struct dr_db *dr_store_db(struct dr_store *st)
{
    return st ? st->db : NULL;
}

int dr__store_exec(struct dr_store *st, struct dr_db_tx *tx, const char *sql,
                   const struct dr_db_val *params, size_t nparams, dr_db_row_cb cb, void *ctx,
                   int64_t *changes)
{
    if (tx) {
        return dr_db_tx_exec(tx, sql, params, nparams, cb, ctx, changes);
    }
    return dr_db_exec(st->db, sql, params, nparams, cb, ctx, changes);
}

void dr_qmsg_cleanup(struct dr_qmsg *m)
{
    if (!m) {
        return;
    }
    free(m->message_id);
    free(m->topic);
    free(m->attrs_json);
    free(m->data);
    free(m->ordering_key);
    free(m->last_error);
    cJSON_Delete(m->parsed);
    m->parsed = NULL;
    m->parsed_done = 0;
    m->message_id = m->topic = m->attrs_json = m->ordering_key = m->last_error = NULL;
    m->data = NULL;
    m->data_len = 0;
}

void dr_qmsgs_free(struct dr_qmsg *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        dr_qmsg_cleanup(&m[i]);
    }
    free(m);
}

void dr_dead_letter_cleanup(struct dr_dead_letter *d)
{
    if (!d) {
        return;
    }
    free(d->message_id);
    free(d->topic);
    free(d->processor);
    free(d->reason);
    free(d->error);
    free(d->message_json);
    d->message_id = d->topic = d->processor = d->reason = d->error = d->message_json = NULL;
}

void dr_dead_letters_free(struct dr_dead_letter *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++) {
        dr_dead_letter_cleanup(&d[i]);
    }
    free(d);
}
