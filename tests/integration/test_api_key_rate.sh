#!/usr/bin/env bash
# Per-API-key rate limits: 429 with Retry-After after the burst, other keys unaffected.
exec python3 "$(dirname "$0")/api_key_rate.py"
