#!/usr/bin/env bash
# Local mode: an orderly stop ends the queue's leases, so the next instance, with another
# owner, runs what was left at once.
exec python3 "$(dirname "$0")/local_handover.py"
