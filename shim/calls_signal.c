/* Wrappers of the calls that set signal actions and masks: sigaction,
 * signal, bsd_signal, sysv_signal, sigprocmask, pthread_sigmask. Only
 * SIGBUS is ours (shim/sigbus.c), and only while a session is mapped;
 * under serialize the program's handlers are counted (shim/sigwatch.c);
 * everything else passes through.
 * These run before anything else of ours can: a sanitizer's runtime sets
 * its signal handlers from its preinit, before its own state exists. So
 * this file is never instrumented (see the Makefile), and until the guard
 * is on it calls only libc, found with dlsym, not the shim's binding. */
#include <dlfcn.h>
#include <signal.h>
#include <string.h>

#include "export.h"
#include "sigbus.h"
#include "sigwatch.h"

/* Obsolete (POSIX.1-2001 only), so <signal.h> no longer declares it; libc
 * still exports it. */
sighandler_t bsd_signal(int sig, sighandler_t handler);

/* The next definition of NAME (libc's), looked up once. */
static void *next(void **slot, const char *name)
{
	void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

	if (!p) {
		p = dlsym(RTLD_NEXT, name);
		__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	}
	return p;
}

#define NEXT(type, name)                                     \
	({                                                   \
		static void *slot_;                          \
		(type)next(&slot_, name);                    \
	})

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef sighandler_t (*signal_fn)(int, sighandler_t);
typedef int (*sigmask_fn)(int, const sigset_t *, sigset_t *);

/* signal() for SIGBUS, through shim_sigaction, with the flags the libc
 * function would have used. */
static sighandler_t shim_signal_with(int sig, sighandler_t handler, int flags, signal_fn pass)
{
	struct sigaction act, old;

	if (sig != SIGBUS || !sigbus_guard_active())
		return sigwatch_adopt(sig, pass(sig, handler));
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
	if (!sigbus_guard_active() && !sigwatch_active())
		return NEXT(sigaction_fn, "sigaction")(sig, act, old);
	return shim_sigaction(sig, act, old);
}

SHIM_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	return shim_signal_with(sig, handler, SA_RESTART, NEXT(signal_fn, "signal"));
}

SHIM_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler)
{
	return shim_signal_with(sig, handler, SA_RESTART, NEXT(signal_fn, "bsd_signal"));
}

SHIM_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler)
{
	return shim_signal_with(sig, handler, SA_RESETHAND | SA_NODEFER,
				NEXT(signal_fn, "sysv_signal"));
}

SHIM_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	if (!sigbus_guard_active())
		return NEXT(sigmask_fn, "sigprocmask")(how, set, old);
	return shim_sigmask(how, set, old, 0);
}

SHIM_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	if (!sigbus_guard_active())
		return NEXT(sigmask_fn, "pthread_sigmask")(how, set, old);
	return shim_sigmask(how, set, old, 1);
}
