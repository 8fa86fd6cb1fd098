#!/usr/bin/env bash
# An edited dead-letter replay: data taken as the publish API takes it (padded or not, either
# alphabet), and an edit with both payload and data refused.
exec python3 "$(dirname "$0")/dlq_replay_edit.py"
