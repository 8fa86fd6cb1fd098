#!/usr/bin/env bash
# Local mode: a message that kills the process is counted an attempt at each death and
# dead-lettered ("crashed") when they run out; nothing else is blamed.
exec python3 "$(dirname "$0")/local_crash.py"
