/* Wrappers of the calls that set signal actions and masks: sigaction,
 * signal, bsd_signal, sysv_signal, sigprocmask, pthread_sigmask. Only
 * SIGBUS is ours (shim/sigbus.c); everything else passes through. */
#include <signal.h>
#include <string.h>

#include "export.h"
#include "real.h"
#include "sigbus.h"

/* Obsolete (POSIX.1-2001 only), so <signal.h> no longer declares it; libc
 * still exports it. */
sighandler_t bsd_signal(int sig, sighandler_t handler);

/* signal() for SIGBUS, through shim_sigaction, with the flags the libc
 * function would have used. */
static sighandler_t shim_signal_with(int sig, sighandler_t handler, int flags,
				     sighandler_t (*pass)(int, sighandler_t))
{
	struct sigaction act, old;

	if (sig != SIGBUS || !sigbus_guard_active())
		return pass(sig, handler);
	memset(&act, 0, sizeof(act));
	act.sa_handler = handler;
	act.sa_flags = flags;
	sigemptyset(&act.sa_mask);
	if (!(flags & SA_NODEFER))
		sigaddset(&act.sa_mask, sig);
	if (shim_sigaction(sig, &act, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

SHIM_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	return shim_sigaction(sig, act, old);
}

SHIM_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	real_ensure();
	return shim_signal_with(sig, handler, SA_RESTART, real.signal);
}

SHIM_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler)
{
	real_ensure();
	return shim_signal_with(sig, handler, SA_RESTART, real.bsd_signal);
}

SHIM_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler)
{
	real_ensure();
	return shim_signal_with(sig, handler, SA_RESETHAND | SA_NODEFER, real.sysv_signal);
}

SHIM_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	return shim_sigmask(how, set, old, 0);
}

SHIM_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	return shim_sigmask(how, set, old, 1);
}
