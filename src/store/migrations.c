/*
 * The store's schema as versioned migrations, applied by dr_store_open() through
 * dr_db_migrate(). A module that needs tables appends one line to the array below with the next
 * version number and its DDL for both engines; an entry that has shipped is never edited.
 *
 * Conventions: times are epoch milliseconds in BIGINT/INTEGER columns; ids increase and are
 * never reused (AUTOINCREMENT / IDENTITY), so paging by "id > after_id" cannot skip a row that
 * took a deleted row's id.
 */
#include "dr/util.h"
#include "store/store_internal.h"

/* v1: local queue (read in id order through its primary key), dedup records, dead letters with
 * an index per admin filter (topic, processor, reason: each with id for paging) and by age. */
static const char v1_sqlite[] =
    "CREATE TABLE queue ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " message_id TEXT NOT NULL UNIQUE,"
    " topic TEXT NOT NULL,"
    " attrs_json TEXT NOT NULL DEFAULT '{}',"
    " data BLOB NOT NULL,"
    " ordering_key TEXT,"
    " publish_time_ms INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " not_before_ms INTEGER NOT NULL DEFAULT 0,"
    " first_failure_ms INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT);"
    "CREATE TABLE dedup (key TEXT PRIMARY KEY, seen_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX dedup_seen_ms ON dedup (seen_ms);"
    "CREATE TABLE dead_letters ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " message_id TEXT NOT NULL,"
    " topic TEXT NOT NULL,"
    " processor TEXT,"
    " reason TEXT NOT NULL,"
    " error TEXT,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " first_failure_ms INTEGER NOT NULL DEFAULT 0,"
    " last_failure_ms INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL,"
    " message_json TEXT NOT NULL);"
    "CREATE INDEX dead_letters_topic ON dead_letters (topic, id);"
    "CREATE INDEX dead_letters_processor ON dead_letters (processor, id);"
    "CREATE INDEX dead_letters_reason ON dead_letters (reason, id);"
    "CREATE INDEX dead_letters_created ON dead_letters (created_ms);"
    "CREATE INDEX dead_letters_message_id ON dead_letters (message_id);";

static const char v1_postgres[] =
    "CREATE TABLE queue ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " message_id TEXT NOT NULL UNIQUE,"
    " topic TEXT NOT NULL,"
    " attrs_json TEXT NOT NULL DEFAULT '{}',"
    " data BYTEA NOT NULL,"
    " ordering_key TEXT,"
    " publish_time_ms BIGINT NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " not_before_ms BIGINT NOT NULL DEFAULT 0,"
    " first_failure_ms BIGINT NOT NULL DEFAULT 0,"
    " last_error TEXT);"
    "CREATE TABLE dedup (key TEXT PRIMARY KEY, seen_ms BIGINT NOT NULL);"
    "CREATE INDEX dedup_seen_ms ON dedup (seen_ms);"
    "CREATE TABLE dead_letters ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " message_id TEXT NOT NULL,"
    " topic TEXT NOT NULL,"
    " processor TEXT,"
    " reason TEXT NOT NULL,"
    " error TEXT,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " first_failure_ms BIGINT NOT NULL DEFAULT 0,"
    " last_failure_ms BIGINT NOT NULL DEFAULT 0,"
    " created_ms BIGINT NOT NULL,"
    " message_json TEXT NOT NULL);"
    "CREATE INDEX dead_letters_topic ON dead_letters (topic, id);"
    "CREATE INDEX dead_letters_processor ON dead_letters (processor, id);"
    "CREATE INDEX dead_letters_reason ON dead_letters (reason, id);"
    "CREATE INDEX dead_letters_created ON dead_letters (created_ms);"
    "CREATE INDEX dead_letters_message_id ON dead_letters (message_id);";

/* v2: queue rows are claimed by one instance at a time (owner, lease_until), so several
 * instances sharing a database never run the same queued message concurrently; a dead
 * instance's rows are taken over once their lease has passed. */
static const char v2_sqlite[] =
    "ALTER TABLE queue ADD COLUMN owner TEXT;"
    "ALTER TABLE queue ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX queue_lease ON queue (lease_until);";
static const char v2_postgres[] = "ALTER TABLE queue ADD COLUMN owner TEXT;"
                                  "ALTER TABLE queue ADD COLUMN lease_until BIGINT NOT NULL "
                                  "DEFAULT 0;"
                                  "CREATE INDEX queue_lease ON queue (lease_until);";

/* v3: the queue in segments (queue.c): a metadata row and a body per group of messages inserted
 * together; per-message state and repeatable message_ids in small rows of their own. Rows left
 * in the v1 table are moved over when the store opens (dr__queue_convert_legacy). */
static const char v3_sqlite[] =
    "CREATE TABLE queue_seg ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " n INTEGER NOT NULL,"
    " nmid INTEGER NOT NULL DEFAULT 0,"
    " owner TEXT,"
    " lease_until INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE queue_body (seg INTEGER PRIMARY KEY, body BLOB NOT NULL);"
    "CREATE TABLE queue_state ("
    " id INTEGER PRIMARY KEY,"
    " done INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " not_before_ms INTEGER NOT NULL DEFAULT 0,"
    " first_failure_ms INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT);"
    "CREATE TABLE queue_mid (message_id TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX queue_mid_id ON queue_mid (id);";
static const char v3_postgres[] =
    "CREATE TABLE queue_seg ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " n INTEGER NOT NULL,"
    " nmid INTEGER NOT NULL DEFAULT 0,"
    " owner TEXT,"
    " lease_until BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE queue_body (seg BIGINT PRIMARY KEY, body BYTEA NOT NULL);"
    "CREATE TABLE queue_state ("
    " id BIGINT PRIMARY KEY,"
    " done INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " not_before_ms BIGINT NOT NULL DEFAULT 0,"
    " first_failure_ms BIGINT NOT NULL DEFAULT 0,"
    " last_error TEXT);"
    "CREATE TABLE queue_mid (message_id TEXT PRIMARY KEY, id BIGINT NOT NULL);"
    "CREATE INDEX queue_mid_id ON queue_mid (id);";

/* v4: dead-letter replay jobs (core/replay.c), so a job outlives its process: what the API shows
 * of it, the cursor it resumes from, and which instance runs it (owner) with when it last said
 * so (heartbeat_ms): a running job whose heartbeat is stale is taken over. rate is text: the
 * store has no floating-point type, and the client's value must come back unchanged. */
static const char v4_sqlite[] =
    "CREATE TABLE replay_jobs ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " state TEXT NOT NULL,"
    " topic TEXT,"
    " processor TEXT,"
    " reason TEXT,"
    " error TEXT,"
    " since_ms INTEGER NOT NULL DEFAULT 0,"
    " until_ms INTEGER NOT NULL DEFAULT 0,"
    " rate TEXT NOT NULL,"
    " max_count INTEGER NOT NULL,"
    " matched INTEGER NOT NULL,"
    " last_id INTEGER NOT NULL,"
    " cursor_id INTEGER NOT NULL DEFAULT 0,"
    " replayed INTEGER NOT NULL DEFAULT 0,"
    " skipped INTEGER NOT NULL DEFAULT 0,"
    " errors INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " started_ms INTEGER NOT NULL,"
    " finished_ms INTEGER NOT NULL DEFAULT 0,"
    " owner TEXT,"
    " heartbeat_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX replay_jobs_state ON replay_jobs (state, heartbeat_ms);";
static const char v4_postgres[] =
    "CREATE TABLE replay_jobs ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " state TEXT NOT NULL,"
    " topic TEXT,"
    " processor TEXT,"
    " reason TEXT,"
    " error TEXT,"
    " since_ms BIGINT NOT NULL DEFAULT 0,"
    " until_ms BIGINT NOT NULL DEFAULT 0,"
    " rate TEXT NOT NULL,"
    " max_count BIGINT NOT NULL,"
    " matched BIGINT NOT NULL,"
    " last_id BIGINT NOT NULL,"
    " cursor_id BIGINT NOT NULL DEFAULT 0,"
    " replayed BIGINT NOT NULL DEFAULT 0,"
    " skipped BIGINT NOT NULL DEFAULT 0,"
    " errors BIGINT NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " started_ms BIGINT NOT NULL,"
    " finished_ms BIGINT NOT NULL DEFAULT 0,"
    " owner TEXT,"
    " heartbeat_ms BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX replay_jobs_state ON replay_jobs (state, heartbeat_ms);";

const struct dr_db_migration dr__store_migrations[] = {
    {1, "queue, dedup, dead_letters", v1_sqlite, v1_postgres},
    {2, "queue ownership", v2_sqlite, v2_postgres},
    {3, "queue segments", v3_sqlite, v3_postgres},
    {4, "replay jobs", v4_sqlite, v4_postgres},
};

const size_t dr__store_nmigrations = DR_ARRAY_LEN(dr__store_migrations);
