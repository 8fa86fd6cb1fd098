/*
 * The shipment tables (dr/shipment_store.h): migrations 300-309 and recording tracking events.
 * Times are Unix epoch milliseconds in BIGINT/INTEGER columns.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "dr/db.h"
#include "dr/err.h"
#include "dr/shipment_store.h"
#include "dr/store.h"
#include "dr/util.h"

static const char v300_sqlite[] =
    "CREATE TABLE shipments ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user_id TEXT NOT NULL, org_id TEXT, tracking_number TEXT NOT NULL,"
    " carrier TEXT, status TEXT NOT NULL DEFAULT 'unknown', status_detail TEXT, location TEXT,"
    " merchant TEXT, order_id TEXT, verified INTEGER NOT NULL DEFAULT 0,"
    " last_event_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " UNIQUE (user_id, tracking_number));"
    "CREATE INDEX shipments_tracking ON shipments (tracking_number);"
    "CREATE TABLE shipment_events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " shipment_id INTEGER NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,"
    " status TEXT NOT NULL, event_at INTEGER NOT NULL, location TEXT, detail TEXT,"
    " source TEXT NOT NULL, email_id TEXT, created_at INTEGER NOT NULL,"
    " UNIQUE (shipment_id, status, event_at))";

static const char v300_postgres[] =
    "CREATE TABLE shipments ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " user_id TEXT NOT NULL, org_id TEXT, tracking_number TEXT NOT NULL,"
    " carrier TEXT, status TEXT NOT NULL DEFAULT 'unknown', status_detail TEXT, location TEXT,"
    " merchant TEXT, order_id TEXT, verified INTEGER NOT NULL DEFAULT 0,"
    " last_event_at BIGINT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
    " UNIQUE (user_id, tracking_number));"
    "CREATE INDEX shipments_tracking ON shipments (tracking_number);"
    "CREATE TABLE shipment_events ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " shipment_id BIGINT NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,"
    " status TEXT NOT NULL, event_at BIGINT NOT NULL, location TEXT, detail TEXT,"
    " source TEXT NOT NULL, email_id TEXT, created_at BIGINT NOT NULL,"
    " UNIQUE (shipment_id, status, event_at))";

static const struct dr_db_migration migrations[] = {
    {300, "shipments and tracking events", v300_sqlite, v300_postgres},
};

int dr_shipment_store_migrate(struct dr_store *st)
{
    if (!st) {
        return DR_EINVAL;
    }
    return dr_db_migrate(dr_store_db(st), migrations, DR_ARRAY_LEN(migrations));
}

int dr_shipment_status_rank(enum dr_shipment_status s)
{
    switch (s) {
    case DR_SHIP_LABEL_CREATED:
        return 1;
    case DR_SHIP_IN_TRANSIT:
        return 2;
    case DR_SHIP_OUT_FOR_DELIVERY:
    case DR_SHIP_EXCEPTION:
        return 3;
    case DR_SHIP_DELIVERED:
        return 4;
    case DR_SHIP_RETURNED:
        return 5;
    default:
        return 0;
    }
}

static int terminal(enum dr_shipment_status s)
{
    return s == DR_SHIP_DELIVERED || s == DR_SHIP_RETURNED;
}

struct row {
    int found;
    int64_t id;
    enum dr_shipment_status status;
    int has_last;
    int64_t last_ms;
    char carrier[64], merchant[256], order_id[128], detail[256], location[256];
};

/* The column's text cut to sz - 1 bytes at a character boundary, so that what is notified stays
 * valid UTF-8; "" for NULL or for text that is not UTF-8 (rows written before payloads were
 * checked). */
static void copy_col(const struct dr_db_row *r, int col, char *out, size_t sz)
{
    const char *s = dr_db_row_text(r, col);
    size_t n = s ? dr_utf8_cut(s, strlen(s), sz - 1) : 0;

    if (!dr_utf8_valid_text(s, n)) {
        n = 0;
    }
    memcpy(out, s ? s : "", n);
    out[n] = '\0';
}

static int take_row(void *ctx, const struct dr_db_row *r)
{
    struct row *w = ctx;
    const char *status = dr_db_row_text(r, 1);

    w->found = 1;
    w->id = dr_db_row_int(r, 0);
    if (!status || dr_shipment_status_parse(status, &w->status)) {
        w->status = DR_SHIP_UNKNOWN;
    }
    w->has_last = !dr_db_row_is_null(r, 2);
    w->last_ms = dr_db_row_int(r, 2);
    copy_col(r, 3, w->carrier, sizeof(w->carrier));
    copy_col(r, 4, w->merchant, sizeof(w->merchant));
    copy_col(r, 5, w->order_id, sizeof(w->order_id));
    copy_col(r, 6, w->detail, sizeof(w->detail));
    copy_col(r, 7, w->location, sizeof(w->location));
    return 0;
}

static int load(struct dr_db_tx *tx, const char *user_id, const char *tn, struct row *w)
{
    struct dr_db_val p[2] = {DR_DB_TEXTV(user_id), DR_DB_TEXTV(tn)};

    memset(w, 0, sizeof(*w));
    return dr_db_tx_exec(tx,
                         "SELECT id, status, last_event_at, carrier, merchant, order_id,"
                         " status_detail, location FROM shipments"
                         " WHERE user_id = $1 AND tracking_number = $2",
                         p, DR_ARRAY_LEN(p), take_row, w, NULL);
}

/* Whether ev moves the shipment's status (w is the shipment before it). */
static int advances(const struct row *w, const struct dr_shipment_event *ev)
{
    if (ev->status == DR_SHIP_UNKNOWN) {
        return 0;
    }
    if (w->has_last && ev->event_ms < w->last_ms) {
        return 0; /* older than what the shipment shows */
    }
    if (w->has_last && ev->event_ms == w->last_ms &&
        dr_shipment_status_rank(ev->status) <= dr_shipment_status_rank(w->status)) {
        return 0;
    }
    if (ev->source && strcmp(ev->source, "email") == 0 && terminal(w->status) &&
        !terminal(ev->status)) {
        return 0; /* a late "shipped" email after the delivery */
    }
    return 1;
}

static int record_one(struct dr_db_tx *tx, const struct dr_shipment_event *ev, int64_t now,
                      struct row *w, struct dr_shipment_change *out)
{
    const char *status = dr_shipment_status_name(ev->status);
    int64_t changes = 0;
    int err;

    {
        struct dr_db_val p[] = {DR_DB_TEXTV(ev->user_id),         DR_DB_TEXTV(ev->org_id),
                                DR_DB_TEXTV(ev->tracking_number), DR_DB_TEXTV(ev->carrier),
                                DR_DB_TEXTV(ev->merchant),        DR_DB_TEXTV(ev->order_id),
                                DR_DB_INTV(ev->verified ? 1 : 0), DR_DB_INTV(now)};
        err = dr_db_tx_exec(tx,
                            "INSERT INTO shipments (user_id, org_id, tracking_number, carrier,"
                            " merchant, order_id, verified, created_at, updated_at)"
                            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
                            " ON CONFLICT (user_id, tracking_number) DO UPDATE SET"
                            " org_id = COALESCE(shipments.org_id, excluded.org_id),"
                            " carrier = COALESCE(shipments.carrier, excluded.carrier),"
                            " merchant = COALESCE(shipments.merchant, excluded.merchant),"
                            " order_id = COALESCE(shipments.order_id, excluded.order_id),"
                            " verified = CASE WHEN excluded.verified > shipments.verified"
                            " THEN excluded.verified ELSE shipments.verified END",
                            p, DR_ARRAY_LEN(p), NULL, NULL, NULL);
    }
    if (!err) {
        err = load(tx, ev->user_id, ev->tracking_number, w);
    }
    if (!err && !w->found) {
        err = DR_EIO;
    }
    if (err) {
        return err;
    }
    {
        struct dr_db_val p[] = {DR_DB_INTV(w->id),
                                DR_DB_TEXTV(status),
                                DR_DB_INTV(ev->event_ms),
                                DR_DB_TEXTV(ev->location),
                                DR_DB_TEXTV(ev->status_detail),
                                DR_DB_TEXTV(ev->source),
                                DR_DB_TEXTV(ev->email_id),
                                DR_DB_INTV(now)};
        err = dr_db_tx_exec(tx,
                            "INSERT INTO shipment_events (shipment_id, status, event_at, location,"
                            " detail, source, email_id, created_at)"
                            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                            " ON CONFLICT (shipment_id, status, event_at) DO NOTHING",
                            p, DR_ARRAY_LEN(p), NULL, NULL, &changes);
    }
    if (err) {
        return err;
    }
    if (changes == 0) {
        out->duplicates++;
        return DR_OK;
    }
    out->inserted++;
    if (advances(w, ev)) {
        struct dr_db_val p[] = {
            DR_DB_INTV(w->id),         DR_DB_TEXTV(status),      DR_DB_TEXTV(ev->status_detail),
            DR_DB_TEXTV(ev->location), DR_DB_INTV(ev->event_ms), DR_DB_INTV(now)};
        err = dr_db_tx_exec(tx,
                            "UPDATE shipments SET status = $2, status_detail = $3, location = $4,"
                            " last_event_at = $5, updated_at = $6 WHERE id = $1",
                            p, DR_ARRAY_LEN(p), NULL, NULL, NULL);
    } else if (!w->has_last || ev->event_ms > w->last_ms) {
        /* newer but says nothing new (unknown, or an email after delivery): keep the time */
        struct dr_db_val p[] = {DR_DB_INTV(w->id), DR_DB_INTV(ev->event_ms), DR_DB_INTV(now),
                                DR_DB_TEXTV(ev->status_detail), DR_DB_TEXTV(ev->location)};
        err = dr_db_tx_exec(tx,
                            "UPDATE shipments SET last_event_at = $2, updated_at = $3,"
                            " status_detail = CASE WHEN status = 'unknown'"
                            " THEN COALESCE($4, status_detail) ELSE status_detail END,"
                            " location = CASE WHEN status = 'unknown'"
                            " THEN COALESCE($5, location) ELSE location END"
                            " WHERE id = $1",
                            p, DR_ARRAY_LEN(p), NULL, NULL, NULL);
    }
    return err;
}

/*
 * Creates the shipment row or locks the existing one before anything is read from it, so that
 * "new" and "status before" describe what this transaction changed. Without it a worker recording
 * the same number as another, uncommitted one (PostgreSQL, READ COMMITTED) read the shipment
 * before that one committed: it called the shipment new (or kept its old status) although the
 * other worker had already created it or moved it, and the change was notified twice.
 * The INSERT waits for a concurrent creator to finish; the UPDATE waits for any concurrent writer
 * and holds the row until commit. (SQLite: one writer at a time, both are plain writes.)
 */
static int lock_or_create(struct dr_db_tx *tx, const struct dr_shipment_event *ev, int64_t now,
                          int *created)
{
    struct dr_db_val p[] = {DR_DB_TEXTV(ev->user_id), DR_DB_TEXTV(ev->tracking_number),
                            DR_DB_INTV(now)};
    int64_t n = 0;
    int err;

    *created = 0;
    err = dr_db_tx_exec(tx,
                        "INSERT INTO shipments (user_id, tracking_number, created_at, updated_at)"
                        " VALUES ($1, $2, $3, $3)"
                        " ON CONFLICT (user_id, tracking_number) DO NOTHING",
                        p, DR_ARRAY_LEN(p), NULL, NULL, &n);
    if (!err && n > 0) {
        *created = 1;
        return DR_OK;
    }
    if (!err) {
        err = dr_db_tx_exec(tx,
                            "UPDATE shipments SET updated_at = updated_at"
                            " WHERE user_id = $1 AND tracking_number = $2",
                            p, 2, NULL, NULL, NULL);
    }
    return err;
}

int dr_shipment_store_record(struct dr_store *st, const struct dr_shipment_event *ev, size_t n,
                             struct dr_shipment_change *out)
{
    struct dr_db_tx *tx = NULL;
    struct row w;
    int64_t now = dr_now_ms();
    int err;

    if (!st || !ev || !n || !out) {
        return DR_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        if (!ev[i].user_id || !ev[i].tracking_number || !ev[i].source ||
            strcmp(ev[i].user_id, ev[0].user_id) != 0 ||
            strcmp(ev[i].tracking_number, ev[0].tracking_number) != 0) {
            return DR_EINVAL;
        }
    }
    err = dr_db_begin(dr_store_db(st), &tx);
    if (err) {
        return err;
    }
    err = lock_or_create(tx, &ev[0], now, &out->created);
    if (!err) {
        err = load(tx, ev[0].user_id, ev[0].tracking_number, &w);
    }
    out->before = w.found && !out->created ? w.status : DR_SHIP_UNKNOWN;
    for (size_t i = 0; !err && i < n; i++) {
        err = record_one(tx, &ev[i], now, &w, out);
    }
    if (!err) {
        err = load(tx, ev[0].user_id, ev[0].tracking_number, &w);
    }
    if (err) {
        dr_db_rollback(tx);
        memset(out, 0, sizeof(*out));
        return err;
    }
    err = dr_db_commit(tx);
    if (err) {
        memset(out, 0, sizeof(*out));
        return err;
    }
    out->shipment_id = w.id;
    out->after = w.status;
    out->last_event_ms = w.has_last ? w.last_ms : 0;
    memcpy(out->carrier, w.carrier, sizeof(out->carrier));
    memcpy(out->merchant, w.merchant, sizeof(out->merchant));
    memcpy(out->order_id, w.order_id, sizeof(out->order_id));
    memcpy(out->status_detail, w.detail, sizeof(out->status_detail));
    memcpy(out->location, w.location, sizeof(out->location));
    return DR_OK;
}
