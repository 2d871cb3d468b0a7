/* Serializing accept across a worker pool: the listener's accept lock
 * (the lock-then-accept pool model) and its poll token (one waiter in
 * poll/select at a time). Neither can stop a server: a holder that is
 * dead is taken over, one that is stopped or leaves connections waiting
 * is bypassed, a lock word that names no thread is reset. */
#ifndef SOCKSHIM_ACCEPT_LOCK_H
#define SOCKSHIM_ACCEPT_LOCK_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

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

/* Try to become (or stay) the one thread that waits for L (listener FD)
 * in poll or select now. 1 if we have it. A token whose holder is gone,
 * stopped, or leaves connections waiting is taken over; a free one just
 * offered to another thread (the waiter a dropper rang) is left to it. */
int accept_token_take(struct sockshim_listener *l, int fd);

/* accept_token_take for a thread (worker row W, not NULL) that sleeps
 * on its doorbell when it does not get the token: marked among L's token
 * waiters first, so that a drop after its try rings it. 1: the token is
 * ours (not marked). 0: marked; sleep at most accept_token_look_ns, then
 * accept_token_unwait, then try again. */
int accept_token_take_or_wait(struct sockshim_listener *l, int fd, struct sockshim_worker *w);
void accept_token_unwait(struct sockshim_listener *l, struct sockshim_worker *w);

/* How long a waiter on its doorbell may sleep before it tries for L's
 * token again (ns): the rest of an offer of it to another thread, else
 * the period at which it looks at a holder that may be dead or stopped. */
uint64_t accept_token_look_ns(struct sockshim_listener *l);

/* A waiter (worker row W) leaves its poll without the token of L (entry
 * REF): if the token is free and offered to it, it is offered to the next
 * waiter instead (rung), or to anyone. */
void accept_token_decline(struct sockshim_listener *l, uint32_t ref, struct sockshim_worker *w);

/* Give L's poll token back, if we have it: offered to the next thread
 * waiting for it on its doorbell, if one lives (rung; no other thread
 * takes it for a moment), else to whoever tries first. */
void accept_token_drop(struct sockshim_listener *l);

/* Process PID has ended or is ending (its own exit, or its parent reaped
 * it): the poll tokens its threads hold are freed and each handed to a
 * waiter, if this process has the listener's doorbells. serialize only. */
void accept_token_release_pid(pid_t pid);

#endif
