#!/usr/bin/env bash
# Replay jobs at their edges: one the store fails ends failed with the reason; a 17th running
# job is refused with 429 until one ends.
exec python3 "$(dirname "$0")/dlq_replay_limits.py"
