/* Counting the program's signal handlers, per thread, for the accept
 * lock's wait (see sigwatch.h). The kernel's action for a signal the
 * program handles is our trampoline, with the program's own flags (plus
 * SA_SIGINFO, to get what we pass on) and mask; the program's handler is
 * kept in a table of one word per signal, written before the trampoline
 * is installed and read by it at delivery. Every query is answered with
 * the program's handler and flags. Async-signal-safe: one atomic word per
 * signal, no lock. Never instrumented (see the Makefile): a sanitizer's
 * runtime sets handlers before its own state exists. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>

#include "real.h"
#include "sigwatch.h"
#include "vfork.h"

int sigwatch_on;

/* The program's handler of signal S: its address, with SIGINFO_BIT when
 * it asked for SA_SIGINFO; 0 when the program's action is no handler. */
#define SIGINFO_BIT (UINT64_C(1) << 63)
static uint64_t program_handlers[NSIG];

/* Handlers run in this thread: a count (the futex word) and which signals
 * (bit S-1) since the waiter last looked. */
static __thread uint32_t handled __attribute__((tls_model("initial-exec")));
static __thread uint64_t ran __attribute__((tls_model("initial-exec")));

typedef void (*info_handler)(int, siginfo_t *, void *);
typedef void (*plain_handler)(int);

static void trampoline(int sig, siginfo_t *si, void *uc)
{
	uint64_t h = sig > 0 && sig < NSIG ? __atomic_load_n(&program_handlers[sig], __ATOMIC_ACQUIRE)
					  : 0;

	/* Counted first: the handler may leave with siglongjmp. */
	__atomic_fetch_or(&ran, UINT64_C(1) << ((unsigned)(sig - 1) & 63u), __ATOMIC_RELAXED);
	__atomic_fetch_add(&handled, 1, __ATOMIC_RELEASE);
	if (!(h & ~SIGINFO_BIT))
		return; /* never installed without its handler; nothing to call */
	if (h & SIGINFO_BIT)
		((info_handler)(uintptr_t)(h & ~SIGINFO_BIT))(sig, si, uc); // NOLINT(performance-no-int-to-ptr): the handler is kept tagged in one atomic word
	else
		((plain_handler)(uintptr_t)h)(sig); // NOLINT(performance-no-int-to-ptr): see above
}

/* Signals whose handler may be ours. SIGBUS has its own dispatcher
 * (sigbus.c); SIGKILL and SIGSTOP take none. */
static int watchable(int sig)
{
	return sig > 0 && sig < NSIG && sig != SIGBUS && sig != SIGKILL && sig != SIGSTOP;
}

static int is_program_handler(const struct sigaction *a)
{
	return a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN && a->sa_sigaction != trampoline;
}

/* ACT (a program's handler, accepted by the kernel) becomes the kernel's
 * action as our trampoline. */
static void wrap(int sig, const struct sigaction *act)
{
	struct sigaction k = *act;
	uint64_t h = (uint64_t)(uintptr_t)act->sa_sigaction;

	if (act->sa_flags & SA_SIGINFO)
		h |= SIGINFO_BIT;
	__atomic_store_n(&program_handlers[sig], h, __ATOMIC_RELEASE);
	k.sa_sigaction = trampoline;
	k.sa_flags |= SA_SIGINFO;
	real.sigaction(sig, &k, NULL);
}

/* The kernel's action OLD as the program set it, PREV being the program's
 * handler then. SA_RESETHAND: the kernel put SIG_DFL back at delivery and
 * kept the flags, ours among them. */
static void to_program(struct sigaction *old, uint64_t prev)
{
	if (!prev)
		return;
	if (old->sa_sigaction == trampoline)
		old->sa_sigaction = (info_handler)(uintptr_t)(prev & ~SIGINFO_BIT); // NOLINT(performance-no-int-to-ptr): tagged word
	else if (old->sa_handler != SIG_DFL)
		return;
	if (!(prev & SIGINFO_BIT))
		old->sa_flags &= ~SA_SIGINFO;
}

int sigwatch_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	uint64_t prev;
	int saved;

	if (!sigwatch_active() || !watchable(sig))
		return real.sigaction(sig, act, old);
	prev = __atomic_load_n(&program_handlers[sig], __ATOMIC_ACQUIRE);
	/* The program's own action first: the kernel judges the pointers. */
	if (real.sigaction(sig, act, old) < 0)
		return -1;
	saved = errno;
	if (old)
		to_program(old, prev);
	/* A vfork child shares the table with its parent, not its actions:
	 * its handlers stay its own, held directly. */
	if (act && !shim_in_vfork_child()) {
		if (is_program_handler(act))
			wrap(sig, act);
		else
			__atomic_store_n(&program_handlers[sig], 0, __ATOMIC_RELEASE);
	}
	errno = saved;
	return 0;
}

sighandler_t sigwatch_adopt(int sig, sighandler_t h)
{
	struct sigaction cur, was;
	uint64_t prev;
	int saved = errno;

	if (!sigwatch_active() || !watchable(sig) || h == SIG_ERR)
		return h;
	prev = __atomic_load_n(&program_handlers[sig], __ATOMIC_ACQUIRE);
	if (!shim_in_vfork_child() && real.sigaction(sig, NULL, &cur) == 0) {
		if (is_program_handler(&cur))
			wrap(sig, &cur);
		else if (cur.sa_sigaction != trampoline)
			__atomic_store_n(&program_handlers[sig], 0, __ATOMIC_RELEASE);
	}
	was.sa_handler = h;
	was.sa_flags = 0;
	to_program(&was, prev);
	errno = saved;
	return was.sa_handler;
}

void sigwatch_start(void)
{
	int sig;

	__atomic_store_n(&sigwatch_on, 1, __ATOMIC_RELEASE);
	for (sig = 1; sig < NSIG; sig++) {
		struct sigaction cur;

		if (watchable(sig) && real.sigaction(sig, NULL, &cur) == 0 && is_program_handler(&cur))
			wrap(sig, &cur);
	}
}

const uint32_t *sigwatch_counter(void)
{
	return &handled;
}

uint32_t sigwatch_begin(void)
{
	__atomic_store_n(&ran, 0, __ATOMIC_RELAXED);
	return __atomic_load_n(&handled, __ATOMIC_ACQUIRE);
}

int sigwatch_consume(void)
{
	uint64_t m = __atomic_exchange_n(&ran, 0, __ATOMIC_ACQ_REL);
	int verdict = m ? 1 : 0;
	int sig;

	/* The flags as the kernel held them at delivery: SA_RESETHAND keeps
	 * them; only the program changing them since could mislead. */
	for (sig = 1; m && sig < NSIG; sig++, m >>= 1) {
		struct sigaction sa;

		if ((m & 1) && (real.sigaction(sig, NULL, &sa) < 0 || !(sa.sa_flags & SA_RESTART)))
			verdict = 2;
	}
	return verdict;
}
