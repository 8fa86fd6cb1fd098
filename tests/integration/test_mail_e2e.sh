#!/usr/bin/env bash
# Email pipeline end to end in local mode: carrier emails published to email-backfill become
# stored shipments and notifications; malformed email is dead-lettered with its reason; the
# carrier status provider against a fake aggregator API; the `parse email` tool.
exec python3 "$(dirname "$0")/mail_e2e.py"
