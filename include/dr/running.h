#ifndef DR_RUNNING_H
#define DR_RUNNING_H

/*
 * What each worker is processing, kept in a small file mapped shared, so that it outlives the
 * process: after a crash (a signal, an abort, the OOM killer) the next start reads which
 * messages were inside a processor when the process died. A message that keeps killing the
 * process is then counted an attempt each time, and dead-lettered once its attempts run out,
 * instead of being run again on every start for ever.
 *
 * A slot is one 64-bit word: the local queue id of the message its worker runs, 0 when idle.
 * Setting one is a store to memory (no system call): the kernel keeps the page and writes it to
 * the file whether or not the process lives on. Only a crash of the whole machine loses it.
 *
 * File: "DRRUN001", the slot count and the slots, 64 bits each in the machine's byte order. Opened
 * with an exclusive lock: a second process on the same file gets DR_EBUSY and runs without it.
 */

#include <stddef.h>
#include <stdint.h>

struct dr_running;

/*
 * Opens (creating it, mode 0600) the file at path with nslots slots. The ids its slots held
 * (what was running when the process that last had it stopped without clearing them; each once,
 * though a message fanned out to two processors may have held two slots) go to *left
 * (malloc'ed, NULL when *nleft is 0); then every slot is cleared.
 */
int dr_running_open(const char *path, size_t nslots, struct dr_running **out, int64_t **left,
                    size_t *nleft);
/* Slot i now holds id (0: idle). Any thread; i < nslots. NULL-safe. */
void dr_running_set(struct dr_running *r, size_t i, int64_t id);
size_t dr_running_slots(const struct dr_running *r);
/* Clears every slot, unmaps and closes. NULL-safe. */
void dr_running_close(struct dr_running *r);

/* The last_error of a message counted an attempt because the process died while it ran. */
#define DR_RUNNING_CRASH_ERROR "the process stopped while processing it (crash or kill)"

#endif
