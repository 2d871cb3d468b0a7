/* Serializing accept across a worker pool: the listener's robust
 * process-shared mutex (the lock-then-accept pool model) and its poll
 * token (one waiter in poll/select/epoll at a time). */
#ifndef SOCKSHIM_ACCEPT_LOCK_H
#define SOCKSHIM_ACCEPT_LOCK_H

#include <stdint.h>

#include "sockshim/layout.h"

/* Take L's accept lock for worker W (may be NULL), waiting at most
 * TIMEOUT_NS (0: forever). A signal handler that runs meanwhile ends the
 * wait as it would end a blocking accept: -EINTR, unless every installed
 * handler asked for SA_RESTART. Returns 0 (the time it waited in
 * *WAITED_NS), -EINTR, -EAGAIN (timed out), or -ENOLCK when the lock is
 * unusable (the caller goes on unserialized). */
int accept_lock(struct sockshim_listener *l, struct sockshim_worker *w, uint64_t timeout_ns,
		uint64_t *waited_ns);

/* Give L's accept lock back. */
void accept_unlock(struct sockshim_listener *l);

/* Try to become (or stay) the one thread that waits for L in poll, select
 * or epoll. 1 if we have it. A token whose holder died is taken over. */
int accept_token_take(struct sockshim_listener *l);

/* Give L's poll token back, if we have it. */
void accept_token_drop(struct sockshim_listener *l);

#endif
