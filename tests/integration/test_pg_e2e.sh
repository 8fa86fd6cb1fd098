#!/usr/bin/env bash
# The local end-to-end run (kill -9, restart, retries, dead letters, replay) with PostgreSQL as
# the store, in a database of its own.
set -euo pipefail
: "${DR_TEST_PG_URL:?DR_TEST_PG_URL is not set: run under scripts/test-env}"
db="dr_e2e_$$_$RANDOM"
psql -q "$DR_TEST_PG_URL" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -q "$DR_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
url="${DR_TEST_PG_URL%/*}/$db"
DR_E2E_DATABASE_URL="$url" DR_E2E_MESSAGES=3000 python3 "$(dirname "$0")/local_e2e.py"
# the run really used PostgreSQL: the queue is empty (every segment and its per-message rows
# deleted once done) and the dead letters were replayed there
rows=$(psql -tA "$url" -c "SELECT (SELECT COUNT(*) FROM queue_seg) + (SELECT COUNT(*) FROM queue_body)
    + (SELECT COUNT(*) FROM queue_state) + (SELECT COUNT(*) FROM queue_mid)
    + (SELECT COUNT(*) FROM queue) + (SELECT COUNT(*) FROM dead_letters)")
test "$rows" = "0"
echo "ok: end to end on PostgreSQL"
