#!/usr/bin/env bash
# Meeting polls end to end in local mode: a poll, email / iCalendar / structured answers and a
# non-participant's reply through the real binary; plus the reply and iCalendar CLI tools.
exec python3 "$(dirname "$0")/poll_e2e.py"
