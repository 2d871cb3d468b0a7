/* The accept lock of a listener as it is now: its word in the segment
 * joined with what /proc says of the thread it names (process, name,
 * state), for `sockshim stats` to show. No printing here. */
#ifndef SOCKSHIM_LOCK_VIEW_H
#define SOCKSHIM_LOCK_VIEW_H

#include <stdint.h>

#include "stats_model.h"

enum lock_state {
	LOCK_FREE = 0,
	LOCK_HELD,
	LOCK_INVALID, /* the word names no thread: the next waiter resets it */
	LOCK_ABANDONED, /* the word names a thread that ended holding the lock:
			 * nobody holds it, the next waiter takes it over */
};

struct lock_view {
	enum lock_state state;
	uint32_t word;
	int pid;           /* the holder's (or, abandoned, last holder's) process; 0 unknown */
	int tid;           /* that thread (the word) */
	char comm[17];     /* its name, "" unknown */
	int thread_state;  /* /proc state letter, 0 no such thread, -1 unknown */
	uint64_t held_ns;  /* how long it has held the lock; 0 unknown */
	int bypassed;      /* waiters accept without waiting for this holder */
	uint16_t bypass_reason;
	uint64_t bypassed_ns; /* for how long, 0 unknown */
};

/* The lock of S at NOW_NS (CLOCK_MONOTONIC), looked up in /proc. */
void lock_view_read(struct lock_view *v, const struct stats_listener *s, uint64_t now_ns);

/* A word for a /proc state letter: "running", "sleeping", "stopped", ... */
const char *lock_view_state_name(int thread_state);

#endif
