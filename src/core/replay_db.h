/*
 * The replay_jobs table (store migration v4) behind dead-letter replay jobs (core/replay.c): a
 * job's row is what the API shows of it, the cursor it resumes from, and the instance running it
 * (owner) with its heartbeat. Every function blocks on the store: thread pool only. Errors are
 * the store's (dr/db.h).
 */
#ifndef DR_CORE_REPLAY_DB_H
#define DR_CORE_REPLAY_DB_H

#include <stddef.h>
#include <stdint.h>

#include "core/replay.h"

/* What the API shows of a job. fb.f.max_id is last_id (the set is fixed), fb.f.after_id the
 * cursor: the highest dead-letter id the job has passed. */
struct dr__replay_row {
    int64_t id;
    char state[16]; /* running, done, cancelled, failed */
    struct dr_dlq_filter_buf fb;
    double rate;
    int64_t limit, matched, replayed, skipped, errors;
    int64_t started_ms, finished_ms; /* finished 0 while running */
    char last_error[256];            /* "" when none */
};

/* 1 when r's state is "running". */
int dr__replay_row_running(const struct dr__replay_row *r);
/* Points r's filter strings at r's own buffers again, after r was copied as a whole. */
void dr__replay_row_relink(struct dr__replay_row *r);

/*
 * Inserts r (not running when r->state says so) owned by owner, with r->id set from the table.
 * DR_ETOOBIG, inserting nothing, when max_running rows (of every instance) are running already.
 * Finished rows beyond keep_finished, oldest first, are deleted.
 */
int dr__replay_db_insert(struct dr_store *st, struct dr__replay_row *r, const char *owner,
                         int max_running, int keep_finished);
/*
 * Writes r's cursor, counts, state, last_error and finished time, and a fresh heartbeat, if the
 * row is still running and owner's. *lost is 1 (nothing written) when it is not: cancelled
 * elsewhere, or taken over. A finished row trims the finished rows to keep_finished.
 */
int dr__replay_db_update(struct dr_store *st, const struct dr__replay_row *r, const char *owner,
                         int keep_finished, int *lost);
/* *ours is 1 when row id is running and owner's. */
int dr__replay_db_owned(struct dr_store *st, int64_t id, const char *owner, int *ours);
/* The row of job id into *r; DR_ENOTFOUND. */
int dr__replay_db_get(struct dr_store *st, int64_t id, struct dr__replay_row *r);
/* Every row, newest first, into *out (free() it; NULL when *n is 0). */
int dr__replay_db_list(struct dr_store *st, struct dr__replay_row **out, size_t *n);
/* Ends job id cancelled at now_ms if it is running, whoever runs it (*ended is 1 then); then
 * its row into *r. DR_ENOTFOUND. */
int dr__replay_db_cancel(struct dr_store *st, int64_t id, int64_t now_ms, int keep_finished,
                         struct dr__replay_row *r, int *ended);
/* Fresh heartbeat (now_ms) on every running row of owner; 0 releases them to the next taker. */
int dr__replay_db_heartbeat(struct dr_store *st, const char *owner, int64_t now_ms);
/*
 * Takes the running rows whose heartbeat is older than stale_ms and, when restart is set, those
 * of owner (its previous incarnation: nobody runs them now), at most max of them, each with one
 * UPDATE that checks again that it is still running and stale, so of two instances only one takes a
 * row. *out (free()) gets the rows taken, *n how many.
 */
int dr__replay_db_claim(struct dr_store *st, const char *owner, int restart, int64_t now_ms,
                        int64_t stale_ms, size_t max, struct dr__replay_row **out, size_t *n);

#endif
