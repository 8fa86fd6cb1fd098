#!/usr/bin/env bash
# A paced dead-letter replay job resumed after SIGKILL with PostgreSQL as the store, in a
# database of its own: the replay_jobs claim and cursor on the second engine.
set -euo pipefail
. "$(dirname "$0")/pg_database.sh"
pg_database dr_resume
DR_RESUME_DATABASE_URL="$url" python3 "$(dirname "$0")/dlq_replay_resume.py"
# the job really ran on PostgreSQL: its row is there, done
test "$(psql -tA "$url" -c "SELECT state FROM replay_jobs")" = "done"
echo "ok: replay job resumed on PostgreSQL"
