/* Serializing accept across a worker pool that waits in poll or select:
 * the listener's poll token (one waiter in poll/select at a time, the
 * others asleep on their doorbells until it is handed to them). It cannot
 * stop a server: a holder that is gone, stopped or leaves connections
 * waiting is taken over, and a hand-off its waiter does not take lapses. */
#ifndef SOCKSHIM_ACCEPT_TOKEN_H
#define SOCKSHIM_ACCEPT_TOKEN_H

#include <stdint.h>
#include <sys/types.h>

#include "sockshim/layout.h"

/* How long the waiter a dropper rang has the free token to itself: a
 * woken thread runs well within this on a loaded machine; one that does
 * not (killed since) costs this long, once. */
#define HANDOFF_NS (50 * 1000000LL)

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
