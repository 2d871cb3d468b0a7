/* Which signal handlers of the program ran in this thread: under
 * serialize, a thread waiting for the accept lock sleeps with its signals
 * open and must know, without a race, whether a handler ran meanwhile
 * (its accept then ends with EINTR, or goes on). Every handler the program
 * installs is installed as a trampoline of ours that counts, then calls
 * the program's handler with the same arguments; the program sees its own
 * action in every query. Never changes what a handler gets or does. */
#ifndef SOCKSHIM_SIGWATCH_H
#define SOCKSHIM_SIGWATCH_H

#include <signal.h>
#include <stdint.h>

#include "export.h"

/* Set once handlers are watched (serialize mode): from then on every
 * sigaction goes through sigwatch_sigaction. */
extern SHIM_INTERNAL int sigwatch_on;

static inline int sigwatch_active(void)
{
	return __atomic_load_n(&sigwatch_on, __ATOMIC_ACQUIRE);
}

/* Start watching: the handlers installed so far become trampolines. */
void sigwatch_start(void);

/* sigaction as the program sees it: the kernel holds a trampoline for
 * each of the program's handlers; OLD names the program's own. */
int sigwatch_sigaction(int sig, const struct sigaction *act, struct sigaction *old);

/* SIG's action was set by libc behind our back (signal(), sysv_signal()):
 * make its handler, if any, a trampoline. H is what libc returned as the
 * previous handler; returned as the program's. */
sighandler_t sigwatch_adopt(int sig, sighandler_t h);

/* The calling thread's count of handlers run: a futex word (private to
 * the process) that changes whenever one ran. */
const uint32_t *sigwatch_counter(void);

/* Forget the handlers run so far in this thread; returns the counter. */
uint32_t sigwatch_begin(void);

/* What ran since sigwatch_begin (or the last call): 0 nothing, 1 only
 * handlers with SA_RESTART (an accept would go on), 2 one without
 * SA_RESTART (an accept would end with EINTR). */
int sigwatch_consume(void);

#endif
