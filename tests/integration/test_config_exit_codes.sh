#!/usr/bin/env bash
# Configuration errors from the environment or the file exit 2 with one line; a Redis that is
# down is not one.
exec python3 "$(dirname "$0")/config_exit_codes.py"
