#!/usr/bin/env bash
# Malformed and hostile input: each answered with a clear error while the service keeps serving.
exec python3 "$(dirname "$0")/hostile_input.py"
