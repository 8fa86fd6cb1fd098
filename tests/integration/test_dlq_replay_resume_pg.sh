#!/usr/bin/env bash
# A paced dead-letter replay job resumed after SIGKILL with PostgreSQL as the store, in a
# database of its own: the replay_jobs claim and cursor on the second engine.
set -euo pipefail
: "${DR_TEST_PG_URL:?DR_TEST_PG_URL is not set: run under scripts/test-env}"
db="dr_resume_$$_$RANDOM"
psql -q "$DR_TEST_PG_URL" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -q "$DR_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
url="${DR_TEST_PG_URL%/*}/$db"
DR_RESUME_DATABASE_URL="$url" python3 "$(dirname "$0")/dlq_replay_resume.py"
# the job really ran on PostgreSQL: its row is there, done
test "$(psql -tA "$url" -c "SELECT state FROM replay_jobs")" = "done"
echo "ok: replay job resumed on PostgreSQL"
