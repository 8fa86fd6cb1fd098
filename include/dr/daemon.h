/*
 * The service: wires config, store, router, sources, HTTP server and admin API on one libuv loop
 * and runs until SIGTERM/SIGINT, then shuts down gracefully (stop intake, finish or hand back
 * in-flight work within the configured deadline, flush, exit 0).
 */
#ifndef DR_DAEMON_H
#define DR_DAEMON_H

#include "dr/config.h"

/* Returns the process exit code: 0 after a clean shutdown, 1 on a runtime failure. */
int dr_daemon_run(struct dr_config *cfg);

#endif
