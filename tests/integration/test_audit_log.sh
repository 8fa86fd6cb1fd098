#!/usr/bin/env bash
# The audit log: admin requests and inbox accesses, one line each, nothing secret in the log.
exec python3 "$(dirname "$0")/audit_log.py"
