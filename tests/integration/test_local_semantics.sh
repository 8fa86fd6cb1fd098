#!/usr/bin/env bash
# Local mode delivery semantics: idempotency keys (across a restart), emits with traceparent,
# graceful shutdown with work in flight.
exec python3 "$(dirname "$0")/local_semantics.py"
