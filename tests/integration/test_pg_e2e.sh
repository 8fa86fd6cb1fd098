#!/usr/bin/env bash
# The local end-to-end run (kill -9, restart, retries, dead letters, replay) with PostgreSQL as
# the store, in a database of its own.
set -euo pipefail
. "$(dirname "$0")/pg_database.sh"
pg_database dr_e2e
DR_E2E_DATABASE_URL="$url" DR_E2E_MESSAGES=3000 python3 "$(dirname "$0")/local_e2e.py"
# the run really used PostgreSQL: the queue is empty (every segment and its per-message rows
# deleted once done) and the dead letters were replayed there
rows=$(psql -tA "$url" -c "SELECT (SELECT COUNT(*) FROM queue_seg) + (SELECT COUNT(*) FROM queue_body)
    + (SELECT COUNT(*) FROM queue_state) + (SELECT COUNT(*) FROM queue_mid)
    + (SELECT COUNT(*) FROM queue) + (SELECT COUNT(*) FROM dead_letters)")
test "$rows" = "0"
echo "ok: end to end on PostgreSQL"
