#!/usr/bin/env bash
# Local mode end to end: 10,000 messages across topics, priorities and ordering keys, with
# transient and permanent failures, a kill -9 in the middle, a restart, and dead-letter replay.
exec python3 "$(dirname "$0")/local_e2e.py"
