/*
 * Dead-letter replay for the admin API: one dead letter back into the local queue, and paced
 * replay jobs. A job works through the dead letters a filter matched when it started, a few at a
 * time on the libuv thread pool; one timer on the loop paces every job, so no thread waits for
 * the next message and a job holds nothing between its steps.
 *
 * Jobs are durable: each has a row in the store's replay_jobs table (core/replay_db.h) with its
 * filter, counts and cursor, which each step moves on after its replays. The instance running
 * a job (its owner) refreshes a heartbeat on the row; a restart, or another instance once the
 * heartbeat is stale, takes the job over and resumes it from its cursor with the same id. Only
 * a cancel ends a job cancelled; a shutdown leaves it running for the next start.
 */
#ifndef DR_CORE_REPLAY_H
#define DR_CORE_REPLAY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dr/http.h"
#include "dr/local.h"
#include "dr/store.h"

/* Paced replay: messages per second. Faster is a replay without a rate (at full speed). */
#define DR_REPLAY_RATE_MIN 0.001
#define DR_REPLAY_RATE_MAX 10000.0
/* The most dead letters one replay by filter takes. */
#define DR_REPLAY_MAX 100000

/* A dead-letter filter that owns its strings. */
struct dr_dlq_filter_buf {
    char topic[256], processor[128], reason[64], error[256];
    struct dr_dlq_filter f;
};

/*
 * Puts d's message back into the store's queue, edited by body ({payload} | {data} and/or
 * {attributes}; NULL = unchanged; data is base64 as the publish API takes it, padded or not),
 * and removes d, in one commit. DR_ENOTFOUND when d is gone already (replayed or discarded
 * meanwhile: nothing is queued); DR_EINVAL with err set when the stored or edited message is
 * unusable, or body has both payload and data; another error with err set when the store
 * failed. The caller pokes the local source on the loop thread after a success. Blocks: thread
 * pool.
 */
int dr__replay_one(struct dr_store *st, const struct dr_dead_letter *d, const cJSON *body,
                   char *err, size_t errsz);

struct dr_replay_jobs;

/*
 * local is poked (loop thread) after each step that queued something; NULL outside local mode,
 * where no job is resumed. owner names this instance in the table (copied): the local queue's
 * owner, so a restart on the same host and port takes its own jobs back at once. Running jobs
 * left by a previous run of owner, and those whose owner stopped sending heartbeats, are taken
 * and resumed from their cursor once the loop runs, and checked for again at every heartbeat.
 */
struct dr_replay_jobs *dr__replay_jobs_create(uv_loop_t *loop, struct dr_store *st,
                                              struct dr_local *local, const char *owner);
/*
 * Starts a job over the count dead letters fb matched, up to last_id (as
 * dr_store_dlq_count_matching() reported them; limit is what the client asked for), replaying
 * rate per second, and answers req: 202 with the job as the API shows it, 429 when too many
 * jobs (of every instance on the store) are running, 503 while shutting down or when the store
 * fails. Its id comes from the table. Loop thread; req is answered when the row is written.
 */
void dr__replay_jobs_start(struct dr_replay_jobs *rj, const struct dr_dlq_filter_buf *fb,
                           double rate, int64_t limit, int64_t count, int64_t last_id,
                           struct dr_http_req *req);
/* Answers req with {"jobs":[...newest first],"count":n} from the table. Loop thread. */
void dr__replay_jobs_list(struct dr_replay_jobs *rj, struct dr_http_req *req);
/* Answers req with job id as the API shows it (200) from the table, or 404. Loop thread. */
void dr__replay_jobs_get(struct dr_replay_jobs *rj, int64_t id, struct dr_http_req *req);
/*
 * Cancels job id and answers req with it (200). A job of this instance is answered once no step
 * of it is under way, so the counts in the answer are final; another instance's (or a stale
 * one's) is ended in the table, and its owner stops at its next step. A finished job is
 * answered as it is, an unknown one with 404. Loop thread; req is answered later.
 */
void dr__replay_jobs_cancel(struct dr_replay_jobs *rj, int64_t id, struct dr_http_req *req);
/*
 * Shutdown: no step starts any more (a step under way finishes and writes its cursor), new jobs
 * are refused and the local source is not poked any more (replayed rows wait in the queue table
 * for the next start). Running jobs stay running in the table, for the next start (of this or
 * another instance) to resume. Loop thread; idempotent.
 */
void dr__replay_jobs_stop(struct dr_replay_jobs *rj);
/* After stop, once the loop has run until the thread pool's work landed and the timers closed:
 * writes the ends the store did not take yet and hands the running jobs over (heartbeat 0, so
 * the next start takes them at once). Blocks on the store. NULL-safe. */
void dr__replay_jobs_destroy(struct dr_replay_jobs *rj);

#endif
