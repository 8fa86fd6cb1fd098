/*
 * Shipments the router tracks, and where their carrier status comes from.
 *
 * Store (tables shipments and shipment_events, migrations 300-309): one shipment per user and
 * tracking number (carrier, status, merchant, order_id, last_event_at, created/updated), and its
 * tracking events, unique per (shipment, status, event time) so a replayed event changes nothing.
 * The shipment's status is that of its newest event: an event older than the newest one is kept
 * in the history but never moves the status back; an event with the newest time replaces the
 * status only when it is further along (see dr_shipment_status_rank()). A status derived from an
 * email never moves a delivered or returned shipment back into transit (a late "shipped" email),
 * carrier events may. "unknown" is recorded but never replaces a known status.
 * Every function blocks on the database (worker threads only) and is thread-safe.
 *
 * Carrier status (provider): an interface one HTTP provider implements today, an aggregator-style
 * JSON API: GET {url}/trackings/{tracking_number} with header X-Api-Key answering
 * {"status":"...","events":[{"status","time","location","detail"}]}. Calls are rate-limited by a
 * token bucket (rate_per_sec) and bounded by a timeout.
 */
#ifndef DR_SHIPMENT_STORE_H
#define DR_SHIPMENT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dr/shipment.h"

struct dr_store;

/* Applies the shipment migrations (idempotent). DR_OK or the dr_db_migrate() error. */
int dr_shipment_store_migrate(struct dr_store *st);

/* Order of progress: unknown 0, label_created 1, in_transit 2, out_for_delivery and exception
 * 3, delivered 4, returned 5. */
int dr_shipment_status_rank(enum dr_shipment_status s);

/* One tracking event to record. Strings may be NULL except user_id, tracking_number, source. */
struct dr_shipment_event {
    const char *user_id, *org_id, *tracking_number;
    const char *carrier, *merchant, *order_id; /* fill the shipment's when it has none */
    enum dr_shipment_status status;
    const char *status_detail, *location;
    const char *source; /* "email", "carrier_api", a webhook's name, ... */
    const char *email_id;
    int64_t event_ms;
    int verified; /* the number passed its format's check digit (or the carrier sent it) */
};

/* What recording one message's events did to its shipment. */
struct dr_shipment_change {
    int64_t shipment_id;
    int created;     /* the shipment row is new */
    size_t inserted; /* events not seen before */
    size_t duplicates;
    enum dr_shipment_status before, after; /* status before the first and after the last event */
    /* the shipment after the events (copied, NUL-terminated, cut at a UTF-8 character boundary
     * to fit; "" when NULL or not UTF-8) */
    char carrier[64], merchant[256], order_id[128], status_detail[256], location[256];
    int64_t last_event_ms;
};

/*
 * Records ev[0..n) (all for the same user and tracking number) in one transaction. DR_OK with
 * *out filled, DR_EINVAL for bad arguments, or the store's error (nothing recorded).
 */
int dr_shipment_store_record(struct dr_store *st, const struct dr_shipment_event *ev, size_t n,
                             struct dr_shipment_change *out);

/* ---- carrier status provider ---- */

struct dr_carrier_event {
    enum dr_shipment_status status;
    char *status_text; /* the provider's own wording, or NULL */
    int64_t time_ms;
    char *location, *detail; /* NULL if absent */
};

struct dr_carrier_status {
    enum dr_shipment_status status;
    struct dr_carrier_event *events;
    size_t n_events;
    int64_t retry_after_ms; /* set with DR_EUNAVAIL when the provider or the rate limit says */
};
void dr_carrier_status_cleanup(struct dr_carrier_status *s); /* NULL-safe */

struct dr_carrier_provider {
    const char *name;
    /*
     * Fetches the status of tracking_number (carrier may be NULL). DR_OK with *out filled (free
     * with dr_carrier_status_cleanup()); otherwise *out is empty and why says what happened:
     *   DR_ENOTFOUND  the provider does not know the number;
     *   DR_EUNAVAIL   429, 5xx, timeout or connection failure: count against the breaker;
     *   DR_EAUTH      the key was refused;  DR_EINVAL  the answer is not the documented JSON.
     * Called from worker threads, several at once.
     */
    int (*fetch)(struct dr_carrier_provider *p, const char *tracking_number, const char *carrier,
                 struct dr_carrier_status *out, char *why, size_t whysz);
    void (*destroy)(struct dr_carrier_provider *p);
};

/*
 * The provider processors.shipment.provider configures: {url, api_key (else env
 * DR_CARRIER_API_KEY), rate_per_sec (default 5), burst (default rate_per_sec), timeout_ms
 * (default 10000), max_wait_ms (default 1000: longer waits for a token answer DR_EUNAVAIL with
 * retry_after_ms instead)}. conf NULL or without url: DR_OK and *out NULL (no provider, the
 * default). Bad values: DR_EINVAL with err set.
 */
int dr_carrier_provider_from_config(const cJSON *conf, struct dr_carrier_provider **out, char *err,
                                    size_t errsz);

#endif
