/*
 * Dead-letter replay for the admin API: one dead letter back into the local queue, and paced
 * replay jobs. A job works through the dead letters a filter matched when it started, a few at a
 * time on the libuv thread pool; one timer on the loop paces every job, so no thread waits for
 * the next message and a job holds nothing between its steps.
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
 * {attributes}; NULL = unchanged), and removes d, in one commit. DR_ENOTFOUND when d is gone
 * already (replayed or discarded meanwhile: nothing is queued); DR_EINVAL with err set when the
 * stored or edited message is unusable; another error with err set when the store failed. The
 * caller pokes the local source on the loop thread after a success. Blocks: thread pool.
 */
int dr__replay_one(struct dr_store *st, const struct dr_dead_letter *d, const cJSON *body,
                   char *err, size_t errsz);

struct dr_replay_jobs;

/* local is poked (loop thread) after each step that queued something. */
struct dr_replay_jobs *dr__replay_jobs_create(uv_loop_t *loop, struct dr_store *st,
                                              struct dr_local *local);
/*
 * Starts a job over the count dead letters fb matched, up to last_id (as
 * dr_store_dlq_count_matching() reported them; limit is what the client asked for), replaying
 * rate per second. On success *out is the job as the API shows it (the caller deletes it).
 * DR_EUNAVAIL while shutting down, DR_ETOOBIG when too many jobs are running. Loop thread.
 */
int dr__replay_jobs_start(struct dr_replay_jobs *rj, const struct dr_dlq_filter_buf *fb,
                          double rate, int64_t limit, int64_t count, int64_t last_id, cJSON **out);
/* {"jobs":[...newest first],"count":n}; the caller deletes it. Loop thread. */
cJSON *dr__replay_jobs_list(const struct dr_replay_jobs *rj);
/* The job as the API shows it into *out (the caller deletes it); DR_ENOTFOUND. Loop thread. */
int dr__replay_jobs_get(const struct dr_replay_jobs *rj, int64_t id, cJSON **out);
/*
 * Cancels job id and answers req with it (200) once no step of it is under way, so the counts
 * in the answer are final; a finished job is answered as it is, an unknown one with 404. Loop
 * thread; req is answered now or when the step lands.
 */
void dr__replay_jobs_cancel(struct dr_replay_jobs *rj, int64_t id, struct dr_http_req *req);
/*
 * Shutdown: running jobs stop and end cancelled (a step under way finishes first; what it
 * replayed stays replayed and is counted); new jobs are refused and the local source is not
 * poked any more (replayed rows wait in the queue table for the next start). Loop thread;
 * idempotent. Jobs are not kept across a restart.
 */
void dr__replay_jobs_stop(struct dr_replay_jobs *rj);
/* After stop, once the loop has run until the thread pool's work landed and the timer closed.
 * NULL-safe. */
void dr__replay_jobs_destroy(struct dr_replay_jobs *rj);

#endif
