/* What the kernel says a thread is doing, from /proc: how the accept lock
 * tells a holder that is stopped or dead from one that is merely waiting,
 * and how `sockshim stats` shows it. Shared by the shim and the command. */
#ifndef SOCKSHIM_THREAD_STATE_H
#define SOCKSHIM_THREAD_STATE_H

#include <sys/types.h>

/* The state letter of thread TID (/proc/TID/stat: R, S, D, T, t, Z, X,
 * ...), 0 when there is no such thread, -1 when it cannot be told (no
 * /proc, no permission). errno is left as it was. */
int thread_state(pid_t tid);

/* A state letter that means the thread can run no code: dead, a zombie,
 * or no such thread at all. */
static inline int thread_state_dead(int state)
{
	return state == 0 || state == 'Z' || state == 'X';
}

/* Stopped by a signal or by a tracer. */
static inline int thread_state_stopped(int state)
{
	return state == 'T' || state == 't';
}

#endif
