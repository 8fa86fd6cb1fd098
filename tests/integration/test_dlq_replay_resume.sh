#!/usr/bin/env bash
# Paced dead-letter replay jobs survive a restart: resumed after SIGKILL (taken over once the
# heartbeat is stale) and SIGTERM with their ids, each message once; cancelled after a restart.
exec python3 "$(dirname "$0")/dlq_replay_resume.py"
