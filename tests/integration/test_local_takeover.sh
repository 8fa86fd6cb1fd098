#!/usr/bin/env bash
# Local mode, two instances on one store: the survivor takes over the rows of one killed with
# SIGKILL and runs each exactly once, though its backlog reads reach those rows too.
exec python3 "$(dirname "$0")/local_takeover.py"
