#!/usr/bin/env bash
# Paced dead-letter replay as a background job: 202 at once, progress, the thread pool free
# meanwhile, cancel, shutdown during a job, resumed after a restart, each message once.
exec python3 "$(dirname "$0")/dlq_replay.py"
