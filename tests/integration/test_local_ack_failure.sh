#!/usr/bin/env bash
# Local mode: a completion the store fails to commit does not leave its message stuck until a
# restart; it runs again and completes once the store takes writes again.
exec python3 "$(dirname "$0")/local_ack_failure.py"
