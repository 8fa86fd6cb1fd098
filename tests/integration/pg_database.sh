# Sourced by the integration tests that run on PostgreSQL: pg_database PREFIX creates a database
# of the test's own on the harness's server (scripts/test-env), drops it when the shell exits, and
# sets $url to it.
: "${DR_TEST_PG_URL:?DR_TEST_PG_URL is not set: run under scripts/test-env}"
pg_database() {
    local db="$1_$$_$RANDOM"
    psql -q "$DR_TEST_PG_URL" -c "CREATE DATABASE $db" >/dev/null
    # shellcheck disable=SC2064 # the name is fixed now
    trap "psql -q \"\$DR_TEST_PG_URL\" -c \"DROP DATABASE IF EXISTS $db WITH (FORCE)\" >/dev/null 2>&1 || true" EXIT
    url="${DR_TEST_PG_URL%/*}/$db"
}
