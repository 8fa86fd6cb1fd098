#!/usr/bin/env bash
# The vespa processor against a fake /document/v1: documents, breaker on outage, 429, 400, 404.
exec python3 "$(dirname "$0")/test_vespa.py"
