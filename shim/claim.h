/* Waiting for another claimer of the same socket to publish an entry of
 * the ledger or the listener table (the claiming inode word, layout.h).
 * The word names its claimer, so the wait lasts while that thread is
 * alive and not stopped (preempted on a loaded host: it will finish), and
 * ends soon when it is dead, stopped, or our own thread (a signal handler
 * claiming the socket its thread was filling in). Bounded either way: a
 * claimer must never stall the others. */
#ifndef SOCKSHIM_CLAIM_H
#define SOCKSHIM_CLAIM_H

#include <stdint.h>

/* A fill is a few hundred nanoseconds (a memset, a dladdr): spin this
 * many times first, then yield to the claimer (preempted, or on our own
 * CPU). After CLAIM_WAIT_NS, and again every CLAIM_WAIT_NS, look at the
 * claimer in /proc: give up on one that cannot run; wait for a live one
 * up to CLAIM_LIVE_WAIT_NS in all (as long as the accept lock gives a
 * live holder that takes no connection, stall.c). */
#define CLAIM_SPINS 128
#define CLAIM_WAIT_NS 5000000ull
#define CLAIM_LIVE_WAIT_NS 250000000ull

/* Wait while the inode word *WORD says INODE's entry is being filled in.
 * Its last value: still claimed for INODE means the caller gives up (and
 * counts it in claims_stalled). */
uint64_t claim_wait(const uint64_t *word, uint64_t inode);

#endif
