/* The session's process table: which sockets each preloaded process holds,
 * so that its end (exit, death reaped by its parent, exec, its pid given
 * to another process) releases exactly its references without scanning
 * the ledger. Lock-free, allocation-free; no-ops without a session. */
#ifndef SOCKSHIM_PROCS_H
#define SOCKSHIM_PROCS_H

#include <stdint.h>
#include <sys/types.h>

#include "sockshim/segment.h"

/* This process's start time in clock ticks after boot (/proc/self/stat),
 * 0 if unknown. */
uint64_t procs_start_ticks(void);

/* Take this process's entry (start-up of an image, or a fork child:
 * FORKED). What an entry already there for our pid tells is acted on: our
 * own image before exec (the holds exec closed are released as closes
 * via exec: the caller's descriptors are checked against the kernel), or
 * a dead process whose pid we got (its holds released as its death).
 * Returns 1 when the image before exec held more sockets than its entry
 * lists: the caller then searches the ledger for the rest
 * (ledger_forget_stale), once its descriptor table is known. */
int procs_start(pid_t pid, uint64_t start_ticks, int forked);

/* Process PID holds ledger reference REF as FD now / no more (ours only:
 * holds of other pids are not listed here). */
void procs_held(uint32_t ref, pid_t pid, int fd);
void procs_dropped(uint32_t ref, pid_t pid, int fd);

/* Take PID's hold of ledger reference REF as FD off its entry in M's
 * process table, for a release from outside the process (a reader's
 * reclaim). 1: the caller releases it (taken off the list, or not
 * listed); 0: someone else took it first (the process's end is being
 * released) and releases it. */
int procs_take_hold(struct seg_map *m, pid_t pid, uint32_t ref, int fd);

/* Process PID is gone and was not seen going (its parent reaped it after
 * a signal, or after it ended without our exit): release every hold it
 * had, each with a close record VIA (death, or exit). */
void procs_gone(pid_t pid, int via);

/* Process PID is about to exec an image the shim cannot follow (NOSHIM:
 * set-user-ID or static), or that exec failed (NOSHIM 0): its entry
 * says so, for the readers (the holds it keeps across the exec are then
 * released when /proc shows them gone). */
void procs_image_noshim(pid_t pid, int noshim);

/* Process PID (ours) is exiting: its entry is free again (its holds were
 * released by the caller, descriptor by descriptor). */
void procs_exit(pid_t pid);

#endif
