/*
 * Real-time delivery (DESIGN §7): WebSocket (GET /ws) and Server-Sent Events (GET /events)
 * clients authenticated by JWT, rooms, notifications stored with a store-wide seq before they
 * are fanned out, resume without gap or duplicate, the inbox API (/api/v1/notifications...), and
 * the `realtime` processor that consumes the client-notifications topic.
 *
 * Threads: everything here runs on the event-loop thread except where a function says
 * otherwise. The processor stores on a worker thread and hands notifications to the loop through
 * a uv_async; the hub fans out on the loop.
 *
 * The wire protocol is documented in docs/realtime-protocol.md.
 */
#ifndef DR_REALTIME_H
#define DR_REALTIME_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dr/config.h"
#include "dr/http.h"
#include "dr/store.h"

struct dr_realtime;
struct dr_hub;
struct dr_notification;

/* ---- module ---- */

/*
 * Reads the `realtime:` section of cfg->root and the DR_JWT_SECRET, DR_JWT_HS_ALG, DR_JWKS,
 * DR_JWT_ISSUER and DR_JWT_AUDIENCE environment variables (the environment wins), loads the
 * keys, applies this module's migrations (versions 100+) to store, and creates the hub. Must be
 * created before the router (the `realtime` processor finds the hub through it) and destroyed
 * after it. On failure *out is NULL and err says which key and why. Blocks (migrations): call at
 * start-up only.
 */
int dr_realtime_create(uv_loop_t *loop, const struct dr_config *cfg, struct dr_store *store,
                       struct dr_realtime **out, char *err, size_t errsz);
/*
 * Whether url is a Redis URL the real-time bus can use (redis://[[user]:password@]host[:port]
 * [/db]), without connecting. DR_OK, or DR_EINVAL / DR_EUNSUPPORTED with the reason in why
 * (never the password or the URL itself). Any thread.
 */
int dr_redis_url_check(const char *url, char *why, size_t whysz);
/* Adds GET /ws, GET /events, /api/v1/notifications... and the admin API's /admin/connections...
 * to srv, which must run its handlers on the loop rt was created with: they read the hub's
 * connections directly. cfg (from dr_realtime_create) must outlive srv. */
void dr_realtime_register(struct dr_realtime *rt, struct dr_http_server *srv);
/*
 * Shutdown in two steps. dr_realtime_close_clients: refuses new clients and closes every
 * connection (WebSocket close 1001, SSE end of stream; clients resume elsewhere), while what is
 * under way goes on: notifications stored from now on still go out on the Redis bus, and publish
 * API requests are still answered. dr_realtime_busy says whether some of that is left: a
 * notification or an answer waiting for the loop, or a notification published on the bus whose
 * echo has not come back (Redis has not handed it to the other instances yet). Loop thread.
 * dr_realtime_stop: ends all of it (what is stored later is dropped here; clients get it when
 * they resume). Each is idempotent and NULL-safe; the loop must run afterwards so the handles
 * finish closing.
 */
void dr_realtime_close_clients(struct dr_realtime *rt);
int dr_realtime_busy(struct dr_realtime *rt);
void dr_realtime_stop(struct dr_realtime *rt);
/* Frees everything; call after dr_realtime_stop, the router's destruction and a final
 * uv_run of the loop. NULL-safe. */
void dr_realtime_destroy(struct dr_realtime *rt);
struct dr_hub *dr_realtime_hub(struct dr_realtime *rt);
/* Readiness of the Redis fan-out: -1 when none is configured, else 1 up / 0 down. Loop thread. */
int dr_realtime_bus_up(const struct dr_realtime *rt);

/* ---- notifications ---- */

/*
 * A validated ClientNotification (DESIGN §5), immutable and reference-counted; may be shared
 * between threads. Parse accepts the JSON a producer sends (no seq needed); seq is 0 until the
 * notification has been stored.
 *
 * Validation: a JSON object of at most DR_NOTIFICATION_MAX_BYTES; notification_id 1..128
 * printable characters (default_id is used when it is absent; DR_EINVAL when both are missing);
 * room a valid room name (else "user:{user_id}"); notification_type 1..64 of [A-Za-z0-9._-];
 * title/message strings; data an object or absent; timestamp RFC 3339 or absent (now); the text
 * valid UTF-8 with no U+0000 in it (raw or escaped). On failure *out is NULL and err (if not
 * NULL) names the field or the problem.
 */
#define DR_NOTIFICATION_MAX_BYTES (256 * 1024)
int dr_notification_parse(const char *json, size_t len, const char *default_id,
                          struct dr_notification **out, char *err, size_t errsz);
struct dr_notification *dr_notification_ref(struct dr_notification *n);
void dr_notification_unref(struct dr_notification *n); /* NULL-safe; any thread */
int64_t dr_notification_seq(const struct dr_notification *n);
const char *dr_notification_room(const struct dr_notification *n);
const char *dr_notification_id(const struct dr_notification *n);
/* The notification as JSON including "seq" (what the bus carries). Owned by n. */
const char *dr_notification_json(const struct dr_notification *n, size_t *len);

/*
 * Retention: deletes the stored notifications created before before_ms (created_ms), oldest seq
 * first, at most chunk (0: 1) rows per transaction, and ends at the first one created at or
 * after before_ms; the newest one stays whatever its age (the store's newest seq never goes
 * down, which would read as a reset store); then the single reads (rt_reads) of the seqs deleted,
 * chunk rows at a time. Read marks stay. Seqs are never reused, so a client's since stays valid: a
 * catch-up from before the oldest notification left sends the ones left. *purged is the number of
 * notifications deleted, also on failure (the chunks committed before it stay deleted). Blocks:
 * call on a worker thread, with db the store's (dr_store_db).
 */
int dr_realtime_purge(struct dr_db *db, int64_t before_ms, size_t chunk, int64_t *purged);

/*
 * 1 if room is a well-formed room name: "user:", "org:", "meeting:" or "shipment:" followed by
 * 1..128 characters that are printable ASCII other than space.
 */
int dr_room_valid(const char *room);

/* ---- hub ---- */

/*
 * Delivers an already stored notification (seq > 0) to this instance's connections subscribed
 * to its room. Loop thread only. Takes no reference from the caller (it refs what it keeps).
 */
void dr_hub_publish_local(struct dr_hub *hub, struct dr_notification *n);

/*
 * Any thread: hands a stored notification to the loop, which delivers it locally and passes it
 * to the bus (if one is set). Calls made from one thread are delivered in call order. Takes a
 * reference of its own. After dr_realtime_stop the notification is dropped (it is stored: clients
 * get it when they resume).
 */
void dr_hub_publish(struct dr_hub *hub, struct dr_notification *n);
/* The same for n notifications at once (one lock, one wake-up of the loop). */
void dr_hub_publish_many(struct dr_hub *hub, struct dr_notification *const *ns, size_t n);

/*
 * A bus between instances (e.g. Redis pub/sub). publish runs on the loop thread for each
 * notification this instance stored (its JSON: dr_notification_json); the bus sends it to the
 * other instances and delivers it here with dr_hub_publish_local, in seq order with what it
 * receives from them (it takes a reference if it has to wait). What it receives it hands to
 * dr_hub_receive on the loop thread, never the echo of this instance's own.
 */
struct dr_hub_bus {
    void *ctx;
    void (*publish)(void *ctx, struct dr_notification *n);
    /* Every notification with a seq up to the value returned has been delivered here or its
     * room's connections told to resync (NULL: every seq delivered is). Loop thread. */
    int64_t (*safe)(void *ctx);
};
/* bus NULL removes it. The struct is copied. Loop thread. */
void dr_hub_set_bus(struct dr_hub *hub, const struct dr_hub_bus *bus);
/* Parses json (a notification with its seq) and delivers it locally. DR_EINVAL if bad. */
int dr_hub_receive(struct dr_hub *hub, const char *json, size_t len);

/* Counts for tests and the admin API. Loop thread. */
size_t dr_hub_connections(const struct dr_hub *hub);
size_t dr_hub_rooms(const struct dr_hub *hub);

#endif
