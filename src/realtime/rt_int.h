/*
 * Internals of the real-time module, shared by the files of src/realtime/ (not jwt/).
 *
 * Shape (nchan-like): a connection (struct rt_conn) is transport-neutral — rooms, resume state,
 * the bounded outbound queue, client commands — and reaches the wire through a table of
 * functions (struct rt_transport) that WebSocket and SSE each implement. The hub indexes
 * connections by room and by user and fans out on the loop thread. A broadcast is encoded once
 * per transport (struct rt_frame, reference-counted) and the same bytes are written to every
 * connection.
 */
#ifndef DR_RT_INT_H
#define DR_RT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "dr/buf.h"
#include "dr/ratelimit.h"
#include "dr/db.h"
#include "dr/jwt.h"
#include "dr/jwks_source.h"
#include "dr/realtime.h"

/* ---- configuration (the realtime: section) ---- */

struct rt_conf {
    unsigned max_connections; /* per instance */
    unsigned max_per_user;    /* authenticated connections per sub */
    unsigned max_rooms;       /* rooms per connection */
    size_t max_frame;         /* client message bytes (WebSocket close 1009 beyond) */
    size_t max_queue_bytes;   /* outbound bytes not yet taken by the kernel (4008 beyond) */
    unsigned max_buffered;    /* live events held per connection during catch-up */
    double rate;              /* client messages per second */
    double burst;             /* token bucket depth */
    int64_t heartbeat_ms;     /* WebSocket ping / SSE comment interval */
    int64_t idle_timeout_ms;  /* WebSocket: nothing received for this long closes */
    int64_t auth_timeout_ms;  /* WebSocket: first auth message deadline */
    int64_t close_timeout_ms; /* closing handshake deadline */
    int64_t sse_retry_ms;     /* retry: sent to EventSource clients */
    unsigned catchup_page;    /* rows per catch-up query */
    int send_buffer;          /* SO_SNDBUF for client sockets, 0 = system default */
    int leeway_s;             /* JWT exp/nbf leeway */
    char *issuer;
    char *audience;
};

/* ---- notifications and shared frames ---- */

enum rt_transport_id { RT_WS = 0, RT_SSE = 1, RT_NTRANSPORTS = 2 };

/* An encoded frame shared by every connection it is written to. Created and written on the
 * loop thread; the last reference may be dropped on any thread (with its notification). */
struct rt_frame {
    atomic_int refs;
    size_t len;
    char data[];
};
struct rt_frame *dr__rt_frame_create(size_t len);
void dr__rt_frame_unref(struct rt_frame *f); /* NULL-safe */

struct dr_notification {
    atomic_int refs;
    int64_t seq;
    char *id;
    char *user_id; /* NULL when absent */
    char *org_id;  /* NULL when absent */
    char *room;
    char *type;
    char *body; /* canonical JSON without seq/read: what the store keeps */
    size_t body_len;
    char *json; /* body plus seq (the bus form); built when seq is set */
    size_t json_len;
    uint64_t t0_ns; /* monotonic: when the router received it (latency metric); 0 = unknown */
    /* seq minus the resume point its event frame carries (0: the seq itself). Set on the loop
     * thread before the frames are encoded: see dr__hub_safe(). */
    int64_t behind;
    struct rt_frame *frames[RT_NTRANSPORTS]; /* lazily encoded, loop thread only */
    char strs[];                             /* id, user_id, org_id, room and type point here */
};
/* dr_notification_parse() on an object already parsed (o is not taken; no size check). The tree
 * no longer shows a U+0000 that cut a string short: the caller refuses the text first when
 * dr_json_text_problem() finds a problem in it. */
int dr__notification_from_json(const cJSON *o, const char *default_id, struct dr_notification **out,
                               char *err, size_t errsz);
/* The fast reader: the notification object at *pp (after whitespace), as dr_json_parse() and
 * dr__notification_from_json() would read it, into *out, *pp moved past it: RT_SCAN_OK. Or
 * RT_SCAN_NO, nothing made, for any text it leaves to them (escapes, unknown or repeated members,
 * deep data, a notification they would refuse: they give the error). A missing notification_id
 * is default_id, or with RT_SCAN_TIME_ID a new dr_time_id() (a null one then leaves it to them).
 * scratch: a buffer for data's text, reused between calls; the caller frees it. */
enum { RT_SCAN_OK, RT_SCAN_NO };
#define RT_SCAN_TIME_ID 1
int dr__notification_scan(const char **pp, const char *end, const char *default_id, int flags,
                          struct dr_buf *scratch, struct dr_notification **out);
/* POST /api/v1/publish's body read into notifications: 0 with *ns (*n of them, 1 to 1000), or
 * -1 with the 400 answer's message in why. how: RT_READ_ANY (the fast reader, else a cJSON
 * tree), RT_READ_FAST (the fast reader only: -2 when it leaves the body to the tree),
 * RT_READ_TREE (the tree only). Free *ns with dr__rt_notifications_free(). */
enum { RT_READ_ANY, RT_READ_FAST, RT_READ_TREE };
int dr__rt_publish_read(const char *body, size_t len, int how, struct dr_notification ***ns,
                        size_t *n, char *why, size_t whysz);
/* Sets seq and builds the bus JSON. Only before the notification is shared. */
void dr__notification_set_seq(struct dr_notification *n, int64_t seq);
/* The seq of json in the bus form dr__notification_set_seq() writes (the body, then ,"seq":N before
 * its last brace), and in *body_len (when not NULL) the length of the body it was made from, its
 * closing brace included; 0 for any other text. */
int64_t dr__notification_bus_seq(const char *json, size_t len, size_t *body_len);
/* The notification whose canonical body (build()'s, what the store keeps) is exactly body, read
 * by the fast reader; NULL for any other text. No seq. */
struct dr_notification *dr__notification_canonical(const char *body, size_t len);
/* From a stored row: body is the canonical JSON. NULL when the row is unreadable. */
struct dr_notification *dr__notification_from_row(int64_t seq, const char *body, size_t len);
/* The JSON text of the server frame {"type":"event",...}, with "resume":resume when resume is
 * below its seq; caller frees. */
char *dr__notification_event_json(const struct dr_notification *n, int64_t resume, size_t *len);

/* ---- WebSocket protocol pieces (ws_proto.c) ---- */

#define RT_WS_ACCEPT_SIZE 29 /* 28 base64 characters + NUL */
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key; DR_EINVAL unless key is 16 bytes base64. */
int dr__ws_accept(const char *key, char out[RT_WS_ACCEPT_SIZE]);
/* 1 if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int dr__utf8_valid(const unsigned char *s, size_t len);
/* A complete unmasked server frame (FIN set) with the given opcode around payload. */
struct rt_frame *dr__ws_frame(int opcode, const void *payload, size_t len);
/* SSE: "id: <seq>\n" (when seq >= 0) and "data: <json>\n\n"; json must hold no newline. */
struct rt_frame *dr__sse_frame(int64_t seq, const char *json, size_t len);

/* ---- store (rt_store.c) ---- */

int dr__rt_migrate(struct dr_db *db);
/* Stores n (by notification_id: a second store of the same id returns the first seq and sets
 * *dup). Sets n's seq (not on failure). Stores commit in seq order, those of every instance on
 * one PostgreSQL included: a reader that sees a seq sees every lower one that gets stored. */
int dr__rt_store_put(struct dr_db *db, struct dr_notification *n, int *dup);
/* The same for v[0..n) in one transaction, in that order (so seqs ascend with i); dup[i] per
 * notification. On failure nothing is stored (seqs set meanwhile are void). */
int dr__rt_store_put_many(struct dr_db *db, struct dr_notification **v, size_t n, int *dup);
/* The same, with an outcome per notification: errs[i] is 0 when v[i] is stored (seq and dup[i]
 * set), else why not. When the store refuses the batch for good (dr_db_err_permanent: a
 * constraint, a trigger, a value it cannot hold), the notifications are stored again one at a
 * time, so only those it refuses fail; a failure worth retrying fails every notification not
 * stored yet, with that error. Returns how many are stored. */
size_t dr__rt_store_put_batch(struct dr_db *db, struct dr_notification **v, size_t n, int *dup,
                              int *errs);
/* Notifications in rooms with seq > since, in seq order, at most limit rows read. *out is an
 * array of references the caller releases with dr__rt_notifications_free; an unreadable row is
 * left out of it. *next (may be NULL) gets the since of the next page when limit rows were read
 * (there may be more), else -1. */
int dr__rt_store_since(struct dr_db *db, char *const *rooms, size_t nrooms, int64_t since,
                       size_t limit, struct dr_notification ***out, size_t *n, int64_t *next);
void dr__rt_notifications_free(struct dr_notification **v, size_t n);
/* The newest stored seq (0: none) in *head. Stores commit in seq order, so no seq at or below
 * it is stored afterwards. Blocks (store): worker threads only. */
int dr__rt_store_head(struct dr_db *db, int64_t *head);

/* The user's inbox: notifications with user_id = sub or room user:{sub} or org:{org}. */
struct rt_inbox_q {
    const char *sub;
    const char *org; /* may be NULL */
    int unread_only;
    int64_t before; /* seq < before; 0 = no bound */
    size_t limit;
};
/* Appends {"notifications":[...],"next_before":N|null} to out (a JSON text the caller frees);
 * *count (may be NULL) gets the number of notifications in it. */
int dr__rt_inbox_list(struct dr_db *db, const struct rt_inbox_q *q, char **out, size_t *count);
int dr__rt_inbox_unread(struct dr_db *db, const char *sub, const char *org, int64_t *count);
/* Marks one notification (by id, or by seq when id is NULL) read for sub. DR_ENOTFOUND when
 * it is not in the user's inbox. *seq gets its seq, *id_out (may be NULL) its id (caller frees). */
int dr__rt_inbox_mark(struct dr_db *db, const char *sub, const char *org, const char *id,
                      int64_t *seq, char **id_out);
/* Marks everything up to the newest inbox notification read, in one transaction: on failure
 * nothing is stored. The mark never moves back; *upto gets the mark stored (0: none), which may
 * be above the newest notification left. */
int dr__rt_inbox_mark_all(struct dr_db *db, const char *sub, const char *org, int64_t *upto);

/*
 * The one permission rule for context rooms: 1 in *allowed when claims may join room.
 * user:/org: from the token, the token's rooms claim, admins anything; meeting:{poll_id} for the
 * poll's organizer or a participant (by the token's email claim); shipment:{tracking_number} for
 * the shipment's owner. Tables that do not exist yet deny. Blocks (store): worker threads only
 * when needs_store says so.
 */
int dr__rt_may_join_local(const struct dr_jwt_claims *c, const char *room, int *allowed);
int dr__rt_may_join(struct dr_db *db, const struct dr_jwt_claims *c, const char *room,
                    int *allowed);

/* ---- string-keyed map (map.c) ---- */

struct rt_map_entry {
    char *key;
    void *val;
    struct rt_map_entry *next;
};
struct rt_map {
    struct rt_map_entry **b;
    size_t nb;
    size_t n;
};
void dr__rt_map_init(struct rt_map *m);
void dr__rt_map_cleanup(struct rt_map *m); /* frees entries, not values */
void *dr__rt_map_get(const struct rt_map *m, const char *key);
void dr__rt_map_put(struct rt_map *m, const char *key, void *val); /* replaces */
void *dr__rt_map_del(struct rt_map *m, const char *key);           /* returns the value */

/* ---- connections ---- */

struct rt_conn;
struct rt_hub_room;
struct rt_join;

/* The table of functions a transport provides (nchan's subscriber_fn_t). */
struct rt_transport {
    enum rt_transport_id id;
    const char *name; /* metrics label */
    /* Encodes a JSON server frame; seq >= 0 gives SSE's id: line (events, a resync with reset),
     * -1 none. Refcount 1. */
    struct rt_frame *(*encode)(int64_t seq, const char *json, size_t len);
    /* Periodic keep-alive (WebSocket ping, SSE comment). */
    void (*heartbeat)(struct rt_conn *c);
    /* Starts a graceful close with code/reason (WebSocket close frame; SSE end of stream). */
    void (*close)(struct rt_conn *c, int code, const char *reason);
    /* Frees transport state when the connection is freed. */
    void (*cleanup)(struct rt_conn *c);
};

enum rt_sub_state { RT_SUB_LIVE, RT_SUB_CATCHUP };

struct rt_sub {
    char *room;
    uint64_t gen;     /* which joining of the room this is (a room left and joined again is new) */
    int64_t last_seq; /* newest seq sent in this room on this connection */
    enum rt_sub_state state;
    int announce; /* send "subscribed" when the catch-up ends */
    struct rt_hub_room *hroom;
};

struct rt_catchup {
    char **rooms;
    uint64_t *gens; /* the subscription each room's rows are for (rt_sub.gen) */
    size_t nrooms;
    int64_t since;
    int check_head; /* the first page of a resume: since may be above every stored seq */
    struct rt_catchup *next;
};

enum rt_conn_state { RT_CONN_AUTH, RT_CONN_OPEN, RT_CONN_CLOSING, RT_CONN_CLOSED };

/* The longest sub a token may have: user:{sub} must be a room name (dr_room_valid). */
#define RT_SUB_MAX 128

struct rt_conn {
    int refs; /* the tcp handle holds one; every job in flight holds one */
    uint64_t next_gen; /* rt_sub.gen of the next room joined */
    struct dr_hub *hub;
    const struct rt_transport *tp;
    void *tpdata;  /* transport state */
    uv_tcp_t *tcp; /* hijacked from the HTTP server; freed with free() */
    enum rt_conn_state state;
    uint64_t id;
    struct dr_jwt_claims *claims;
    struct rt_sub *subs;
    size_t nsubs;
    struct rt_join *joins; /* rooms whose permission the store is checking (conn.c), one each */
    /* live events that arrived for rooms still catching up */
    struct dr_notification **buffered;
    size_t nbuffered;
    struct rt_catchup *catchup_head, *catchup_tail;
    int catchup_running;
    int catchup_waiting;       /* the rest of the page waits for the queue to drain */
    struct rt_catchup *cu_job; /* the page being written */
    struct dr_notification **cu_rows;
    size_t cu_nrows, cu_pos;
    int64_t cu_next; /* since of the page after the one being written, -1: it is the last */
    int64_t since;   /* resume point for the rooms joined from the token (-1 = none) */
    /* the resume point this connection's frames gave the client last (-1: none); while it is
     * below the newest seq sent in its rooms, a {"type":"resume"} frame moves it up as the
     * hub's safe point moves (dr__rt_conn_mark) */
    int64_t told;
    /* rate limit and timers (monotonic ms) */
    struct dr_bucket rate; /* client messages (rt_conf rate, burst) */
    int64_t opened_ms;
    int64_t connected_ms; /* wall clock, for the admin API */
    int64_t last_rx_ms;
    int64_t last_tx_ms; /* loop time (uv_now) of the last write: free on the hot path */
    int64_t last_hb_ms;
    int64_t close_deadline_ms;
    uint64_t fanout_gen;
    /* frames held while the hub is corked, written as one uv_write */
    struct rt_frame **cork;
    size_t ncork, capcork, cork_bytes;
    struct rt_conn *cork_next; /* the hub's list of connections with corked frames */
    int corked;
    size_t queued_frames;          /* frames handed to uv_write and not yet written */
    struct rt_conn *prev, *next;   /* hub list */
    struct rt_conn *uprev, *unext; /* per-user list */
    char user_key[RT_SUB_MAX + 1]; /* the sub it is indexed under ("" before auth) */
};

/* Creates a connection on a hijacked stream (not yet authenticated). */
struct rt_conn *dr__rt_conn_create(struct dr_hub *hub, const struct rt_transport *tp,
                                   uv_tcp_t *tcp);
void dr__rt_conn_ref(struct rt_conn *c);
void dr__rt_conn_unref(struct rt_conn *c);
/* Authenticated: indexes it by user, joins the token's rooms (with catch-up from since >= 0)
 * and the extra rooms (checked), and sends welcome. Takes claims. DR_ETOOBIG when the user is
 * at the per-user limit (claims freed, nothing sent). */
int dr__rt_conn_authenticated(struct rt_conn *c, struct dr_jwt_claims *claims, int64_t since,
                              char *const *extra_rooms, size_t nextra);
/* A JSON text frame from the client (WebSocket). */
void dr__rt_conn_on_message(struct rt_conn *c, const char *data, size_t len);
/* Writes a frame (takes a reference of its own). Enforces the queue bound: a full queue closes
 * the connection with 4008. Returns 0 if queued. */
int dr__rt_conn_write(struct rt_conn *c, struct rt_frame *f);
/* A delivery for the metrics; gathered while a fan-out runs (t0_ns 0: no latency). */
void dr__hub_count_delivery(struct dr_hub *hub, enum rt_transport_id tp, uint64_t t0_ns);
/* Between these (they nest), every connection gets what is written to it in one write, at the
 * end, and the delivery metrics are recorded once: for notifications that come one at a time
 * but close together (the Redis bus's, in one turn of the loop). Loop thread. */
void dr__hub_batch_begin(struct dr_hub *hub);
void dr__hub_batch_end(struct dr_hub *hub);
/* The notification a bus message carries (dr_hub_receive()'s reading: the bus form read without
 * a cJSON tree, any other JSON object with a "seq" above 0 through one), with its seq; NULL when
 * it is unreadable. The caller owns the reference. Any thread. */
struct dr_notification *dr__hub_read_bus(const char *json, size_t len);
/* Tells every connection live in room whose last seq there is seq or above to resync from since
 * ({"type":"resync","since":since}, since below seq): a notification numbered seq would be dropped
 * there as already seen. Returns how many were told. Loop thread. */
int dr__hub_resync_past(struct dr_hub *hub, const char *room, int64_t seq, int64_t since);
/* While the hub is corked (it is while it fans out a batch of notifications), frames written to
 * a connection are gathered and written with one uv_write (one system call) per connection when
 * the batch is done (this call); any other write to that connection first flushes what was
 * gathered, so order is kept. */
void dr__rt_conn_flush_cork(struct rt_conn *c);
/* Writes bytes that are not shared (handshakes, control frames), past max_queue_bytes too: a
 * close frame must go out. */
int dr__rt_conn_write_raw(struct rt_conn *c, const void *data, size_t len);
/* After answers written with dr__rt_conn_write_raw (pongs): closes c with 4008 when its
 * outbound queue is over max_queue_bytes, as a write of an event would. 1 when it closed c. */
int dr__rt_conn_bound_queue(struct rt_conn *c);
/* Sends a JSON frame built for this connection only. */
void dr__rt_conn_send_json(struct rt_conn *c, const cJSON *obj);
/* A frame of JSON text as it is (not read back through cJSON, whose numbers are doubles). */
void dr__rt_conn_send_text(struct rt_conn *c, const char *json, size_t len);
void dr__rt_conn_send_error(struct rt_conn *c, const char *code, const char *msg);
/* Graceful close through the transport; removes the connection from rooms at once. */
void dr__rt_conn_close(struct rt_conn *c, int code, const char *reason);
/* Drops the TCP connection now. */
void dr__rt_conn_abort(struct rt_conn *c);
/* A live event for sub (called by the hub). */
void dr__rt_conn_deliver(struct rt_conn *c, struct rt_sub *s, struct dr_notification *n);
/* Once no room of c is catching up: sends {"type":"resume","seq":N} (SSE: with id: N), N the
 * smaller of w and the newest seq sent, when N is above the resume point c's frames gave so far.
 * w is the hub's safe point (dr__hub_safe). */
void dr__rt_conn_mark(struct rt_conn *c, int64_t w);
/* 1 while c is open and the resume point its frames gave is below the newest seq it was sent. */
int dr__rt_conn_lagging(const struct rt_conn *c);
/* Token bucket: 1 if a client message may be handled now. */
int dr__rt_conn_rate_ok(struct rt_conn *c);

/* ---- hub ---- */

struct rt_hub_room {
    char *name;
    struct rt_conn **conns;
    size_t n, cap;
};

struct dr_realtime;

struct hub_call; /* hub.c */

struct dr_hub {
    uv_loop_t *loop;
    struct dr_realtime *rt;
    const struct dr_config *cfg; /* API keys of the admin routes; NULL in tests */
    struct rt_conf *conf;
    struct dr_db *db;
    struct dr_jwt_keys *keys;
    struct dr_jwks_source *jwks_src; /* JWKS from a URL, refetched on unknown kids; or NULL */
    struct rt_map rooms;             /* name -> struct rt_hub_room */
    struct rt_map users;             /* sub -> struct rt_conn * (head of the per-user list) */
    struct rt_conn *conns;           /* newest first: ids descend along the list */
    size_t nconns;
    size_t nconns_tp[RT_NTRANSPORTS];
    uint64_t next_id;
    uint64_t fanout_gen;
    int closing;            /* clients closed and refused: a shutdown drains what is under way */
    int stopping;           /* no more fan-out: the async and the timer are closed */
    int corking; /* > 0: writes are gathered per connection (see dr__rt_conn_flush_cork) */
    struct rt_conn *corked; /* connections holding gathered frames */
    /* delivery metrics gathered during one fan-out, recorded at its end (one lock) */
    int fanning_out;
    int fan_batch; /* fanning out several (drain(), a batch): recorded once, after the last */
    double fan_delivered[RT_NTRANSPORTS];
    double *fan_lat;
    size_t fan_nlat, fan_caplat;
    int64_t local_hi; /* seq of the newest notification this instance stored (drain) */
    int lagging;      /* some connection was sent events beyond its resume point (rt_conn.told) */
    /* worker -> loop hand-off */
    pthread_mutex_t mu;
    struct dr_notification **inq;
    size_t ninq, capinq;
    struct hub_call *calls, **calls_tail; /* dr__hub_call() */
    int async_closed;
    uv_async_t async;
    uv_timer_t tick;
    struct dr_hub_bus bus;
};

int dr__hub_init(struct dr_hub *hub, uv_loop_t *loop, struct rt_conf *conf, struct dr_db *db,
                 struct dr_jwt_keys *keys);
/* Shutdown, first step: closes every connection (1001) and refuses new ones; notifications
 * still fan out (to the bus) and dr__hub_call() still runs. */
void dr__hub_close_clients(struct dr_hub *hub);
/* 1 while notifications or calls wait for the loop (a publish API request waiting for its
 * answer is the HTTP server's: dr_http_server_busy). */
int dr__hub_busy(struct dr_hub *hub);
void dr__hub_stop(struct dr_hub *hub); /* closes connections, the async and the timer */
/* From any thread: fn(arg) runs on the loop after the notifications handed to dr_hub_publish()
 * before it have been fanned out. Once the hub has stopped, it runs in dr__hub_cleanup(). */
void dr__hub_call(struct dr_hub *hub, void (*fn)(void *arg), void *arg);
void dr__hub_cleanup(struct dr_hub *hub); /* after the loop ran the close callbacks */
void dr__hub_add_conn(struct dr_hub *hub, struct rt_conn *c);
void dr__hub_remove_conn(struct dr_hub *hub, struct rt_conn *c);
/* Leaves every room and the user index; the connection stays listed until removed. */
void dr__hub_detach(struct dr_hub *hub, struct rt_conn *c);
/* DR_ETOOBIG when the user has max_per_user connections already. */
int dr__hub_index_user(struct dr_hub *hub, struct rt_conn *c, const char *sub);
size_t dr__hub_user_count(struct dr_hub *hub, const char *sub);
void dr__hub_join(struct dr_hub *hub, struct rt_conn *c, struct rt_sub *s);
void dr__hub_leave(struct dr_hub *hub, struct rt_conn *c, struct rt_sub *s);
/* Sends {"type":"read",...} (json, text sent as it is) to every connection of sub except
 * skip. */
void dr__hub_tell_user(struct dr_hub *hub, const char *sub, const char *json, struct rt_conn *skip);
/*
 * The safe point: every notification with a seq up to it has been delivered here (to the
 * connections in its room) or the connections in its room were told to resync. A client may
 * resume from it and miss nothing, even when a resync frame sent to it was lost with its
 * connection. Without a bus it is every seq (INT64_MAX): one store thread hands notifications
 * over in seq order. With one, the bus says (dr_hub_bus.safe). Loop thread.
 */
int64_t dr__hub_safe(struct dr_hub *hub);
/* The bus's safe point moved: connections whose resume point lags get a resume frame. */
void dr__hub_safe_moved(struct dr_hub *hub);
/* The hub the processor hands notifications to (the newest created), or NULL. Any thread. */
struct dr_hub *dr__hub_current(void);
void dr__hub_set_current(struct dr_hub *hub);

/* ---- transports ---- */

extern const struct rt_transport dr__rt_ws;
extern const struct rt_transport dr__rt_sse;
/* Upgrades req (already authenticated when claims is not NULL). Consumes req and claims. */
void dr__ws_start(struct dr_hub *hub, struct dr_http_req *req, struct dr_jwt_claims *claims,
                  int64_t since);
void dr__sse_start(struct dr_hub *hub, struct dr_http_req *req, struct dr_jwt_claims *claims,
                   int64_t since, char **rooms, size_t nrooms);
/* Handles bytes the WebSocket client sent. */
void dr__ws_feed(struct rt_conn *c, const char *data, size_t len);

/* ---- authentication (auth.c) ---- */

/* Verifies token with the hub's keys and conf, and that its sub (and org, or org_id, if any)
 * form room names user:{sub} and org:{org}. DR_EAUTH with why set on refusal (a dr_jwt_verify
 * reason, or missing_sub, invalid_sub, invalid_org). */
int dr__rt_verify(struct dr_hub *hub, const char *token, size_t len, struct dr_jwt_claims **out,
                  char *why, size_t whysz);
/* Finds the token of req (Authorization: Bearer, else access_token). DR_ENOTFOUND if none,
 * DR_ETOOBIG if the query parameter is over the limit. *token is malloc'ed. */
int dr__rt_request_token(struct dr_http_req *req, char **token);
/* Verifies the request's token; on refusal answers 401 (consuming req) and returns non-zero. */
int dr__rt_authenticate(struct dr_hub *hub, struct dr_http_req *req, struct dr_jwt_claims **out);

/* ---- inbox (inbox.c) ---- */
void dr__rt_inbox_route(struct dr_http_req *req, void *hub);
/* POST /api/v1/publish (publish.c). */
void dr__rt_publish_route(struct dr_http_req *req, void *hub);

/*
 * Stores notifications through the realtime processor's store thread, in the order given and
 * in seq order with the routed ones, and fans out the new ones. done(ctx, i, err, dup, seq) runs
 * on that thread once for each ns[i] (err a dr/db.h error, dup when it was stored before). The
 * notifications are referenced, not taken. DR_EUNAVAIL (and no call) when the processor is not
 * running.
 */
typedef void (*dr__rt_stored_cb)(void *ctx, size_t i, int err, int dup, int64_t seq);
int dr__rt_store_submit(struct dr_notification *const *ns, size_t n, dr__rt_stored_cb done,
                        void *ctx);

/* ---- the admin API's view of connections (connections.c) ---- */

/* The WebSocket close code (and SSE close record) of a connection an administrator closed. */
#define RT_CLOSE_ADMIN 4010

struct rt_conn_query {
    uint64_t after;   /* only ids above this */
    size_t limit;     /* page size, at least 1 */
    const char *user; /* only this sub; NULL: any */
    int transport;    /* only this enum rt_transport_id; -1: any */
};
/* {"totals":{...},"connections":[...],"count":N} plus "next_after" when more match: the page
 * of connections q selects, in id order. The caller owns the result. Loop thread. */
cJSON *dr__rt_connections_json(const struct dr_hub *hub, const struct rt_conn_query *q);
/* One connection as the admin API shows it. The caller owns the result. Loop thread. */
cJSON *dr__rt_connection_json(const struct dr_hub *hub, const struct rt_conn *c);
/* The listed connection with this id, or NULL. Loop thread. */
struct rt_conn *dr__hub_find_conn(const struct dr_hub *hub, uint64_t id);
/* GET /admin/connections[/{id}], DELETE /admin/connections/{id}; ctx is the hub. */
void dr__rt_connections_route(struct dr_http_req *req, void *hub);

/* ---- metrics names ---- */
#define RT_M_CONNS     "dr_realtime_connections"
#define RT_M_ROOMS     "dr_realtime_rooms"
#define RT_M_DELIVERED "dr_realtime_delivered_total"
#define RT_M_DROPPED   "dr_realtime_dropped_total"
#define RT_M_SLOW      "dr_realtime_slow_client_closes_total"
#define RT_M_LATENCY   "dr_realtime_event_latency_seconds"
#define RT_M_STORED    "dr_realtime_notifications_total"
#define RT_M_REFUSED   "dr_realtime_refused_total"

#endif
