/* The listener table in the session: one entry per listening socket with
 * its accept statistics and lock, one row per accepting thread. Counters
 * are relaxed atomics: no locks, no allocation, fork-safe. */
#ifndef SOCKSHIM_LISTENERS_H
#define SOCKSHIM_LISTENERS_H

#include <stdint.h>

#include "export.h"
#include "fdtab.h"
#include "sockshim/layout.h"
#include "sockshim/segment.h"

/* This process's accept mode (SOCKSHIM_ACCEPT), set at start-up. */
extern SHIM_INTERNAL enum sockshim_accept_mode accept_mode;

/* The listener entry of socket INODE (index + 1) in M's table (the shim
 * passes shim_session()), registered from E with BACKLOG (as passed to
 * listen(), or SOCKSHIM_BACKLOG_UNKNOWN) if new, its backlog updated to a
 * known BACKLOG if not; 0 when M is not live
 * or has no room (counted). Another caller registering the same socket is
 * waited for, at most claim.h's CLAIM_WAIT_NS; then 0, counted in
 * listeners_full and claims_stalled. */
uint32_t listeners_get(struct seg_map *m, uint64_t inode, const struct fd_entry *e, int backlog);

/* The entry behind REF in M's table, or NULL. */
struct sockshim_listener *listeners_entry(struct seg_map *m, uint32_t ref);

/* L's reference (index + 1) in M's table, or 0 when L is not one of its
 * entries. */
uint32_t listeners_ref(struct seg_map *m, const struct sockshim_listener *l);

/* The calling thread's worker row on L (claimed on first use), or NULL
 * when the table of workers is full (counted). */
struct sockshim_worker *listeners_worker(struct sockshim_listener *l);

/* The bit of worker row W in L's masks of waiters (waiting for the
 * accept lock, token_waiting for the poll token); 0 for a waiter without
 * a row (the lock counts it in waiters_unrowed instead). */
static inline uint64_t listeners_row_bit(const struct sockshim_listener *l,
					 const struct sockshim_worker *w)
{
	return w ? UINT64_C(1) << (unsigned)(w - l->workers) : 0;
}

/* Add 1 (or N) to a counter. */
static inline void stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* Count NS in a log2 histogram. */
void stat_hist(uint64_t *hist, uint64_t ns);

/* Has the thread of KEY ((pid << 32) | tid) ended? Only a sure "no such
 * thread" counts: one we may not signal, or a reused pid, is alive. errno
 * is left as it was. */
int listeners_thread_gone(uint64_t key);

/* Raise *MAX to V if it is lower. */
void stat_max(uint32_t *max, uint32_t v);
void stat_max64(uint64_t *max, uint64_t v);

#endif
