/* Serializing accept across a worker pool: the listener's accept lock
 * (the lock-then-accept pool model; its poll token, for a pool that waits
 * in poll or select, is accept_token.h). It cannot stop a server: a holder
 * that is dead is taken over, one that is stopped or leaves connections
 * waiting is bypassed, a lock word that names no thread is reset. */
#ifndef SOCKSHIM_ACCEPT_LOCK_H
#define SOCKSHIM_ACCEPT_LOCK_H

#include <signal.h>
#include <stdint.h>

#include "sockshim/layout.h"

/* What accept_lock did. */
enum accept_lock_result {
	ACCEPT_LOCKED = 0,    /* ours: accept, then accept_unlock */
	ACCEPT_BYPASSED = 1,  /* its holder makes no progress: accept without it */
	/* Ours after sleeping for it, with the thread's signals blocked (the
	 * program's mask in *PROGRAM_MASK): wait with accept_lock_await,
	 * then accept, then accept_unlock. */
	ACCEPT_LOCKED_MASKED = 2,
};

/* Take L's accept lock (listener FD) for worker W (may be NULL), waiting
 * at most TIMEOUT_NS (0: forever). A signal handler that runs meanwhile
 * ends the wait as it would end a blocking accept: -EINTR, unless it
 * asked for SA_RESTART (then the wait goes on, or ends with
 * ACCEPT_BYPASSED when the handler closed FD: the accept fails with EBADF).
 * Returns ACCEPT_LOCKED or ACCEPT_LOCKED_MASKED (the time it waited in
 * *WAITED_NS), ACCEPT_BYPASSED, -EINTR or -EAGAIN (timed out). */
int accept_lock(struct sockshim_listener *l, int fd, struct sockshim_worker *w,
		uint64_t timeout_ns, uint64_t *waited_ns, sigset_t *program_mask);

/* After ACCEPT_LOCKED_MASKED: wait for a connection on FD (at most
 * LEFT_NS, 0: no limit) with the program's mask PROGRAM_MASK, which it
 * restores. A handler that ran since the lock was taken is seen here
 * without a race: it would otherwise run just before the accept, which
 * then blocks. 0 (accept now), -EINTR or -EAGAIN (LEFT_NS passed). A
 * cancellation point. */
int accept_lock_await(int fd, const sigset_t *program_mask, uint64_t left_ns);

/* Give L's accept lock back. 0, or -EPERM when the lock was no longer
 * ours (taken over, or overwritten): counted and said once. */
int accept_unlock(struct sockshim_listener *l);

#endif
