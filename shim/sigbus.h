/* The shim's SIGBUS dispatcher and the program's view of SIGBUS: while a
 * session is mapped, the kernel's SIGBUS action is ours (a fault on the
 * segment costs the mapping, not the process) and SIGBUS is never blocked
 * in the kernel's masks (a blocked fault kills outright). The program's
 * own action and blocking are kept aside and honoured for every SIGBUS
 * that is not ours. */
#ifndef SOCKSHIM_SIGBUS_H
#define SOCKSHIM_SIGBUS_H

#include <signal.h>

#include "export.h"

/* Take over SIGBUS before the segment is mapped. 0 or -errno. */
int sigbus_guard_install(void);

/* Give SIGBUS back to the program (no segment after all). */
void sigbus_guard_remove(void);

/* Set while our dispatcher is the kernel's SIGBUS action. */
extern SHIM_INTERNAL int sigbus_guard_on;

/* Is it? Inline: shim/calls_signal.c asks before anything of ours that a
 * sanitizer instruments may run. */
static inline int sigbus_guard_active(void)
{
	return __atomic_load_n(&sigbus_guard_on, __ATOMIC_ACQUIRE);
}

/* Around exec: the new image inherits the program's SIGBUS state (ignored,
 * blocked), not ours; after a failed exec, ours again. */
void sigbus_before_exec(void);
void sigbus_after_exec_failed(void);

/* SIGBUS taken out of SET: the shim's own waits block signals with it. */
void sigbus_fill_except(sigset_t *set);

/* The logic behind the exported sigaction, signal, bsd_signal,
 * sysv_signal, sigprocmask and pthread_sigmask (shim/calls_signal.c). */
int shim_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
int shim_sigmask(int how, const sigset_t *set, sigset_t *old, int as_pthread);

#endif
