#!/usr/bin/env bash
# Against the Pub/Sub emulator: the router end to end through pull and through push, with
# dead letters, a subscription dead-letter policy, and a restart of the emulator mid-run.
exec python3 "$(dirname "$0")/pubsub_e2e.py"
