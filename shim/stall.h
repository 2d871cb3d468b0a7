/* Whether the holder of a listener's accept lock (accept_lock.c) or poll
 * token (accept_token.c) leaves connections waiting: the waiters of both
 * judge a holder that is alive and not stopped the same way, and stop
 * waiting for one that takes no connection for a while. */
#ifndef SOCKSHIM_STALL_H
#define SOCKSHIM_STALL_H

#include <stdint.h>

/* Connections wait on listener FD. */
int queue_waiting(int fd);

/* A waiter's view of a holder that may not be making progress. */
struct stall {
	uint32_t word;      /* the lock word (or token holder) seen */
	uint64_t progress;  /* the listener's progress counter then */
	uint64_t since_ns;  /* when connections were first seen waiting */
};

/* Connections wait and the holder WORD has done nothing about it (no
 * acquisition, PROGRESS unchanged) for STALL_NS (stall.c) at NOW
 * (CLOCK_MONOTONIC ns). A waiter that sees no connection waiting sets
 * S's since_ns to 0: the holder is not late. */
int stalled(struct stall *s, uint32_t word, uint64_t progress, uint64_t now);

#endif
