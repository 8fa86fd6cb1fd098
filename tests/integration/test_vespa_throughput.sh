#!/usr/bin/env bash
# Throughput of the vespa processor against the fake Vespa with 1, 4 and 16 workers.
exec python3 "$(dirname "$0")/test_vespa_throughput.py"
