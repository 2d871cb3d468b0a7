/* SIGBUS, kept for two masters. The kernel's action is our dispatcher
 * while a segment is mapped: a fault inside a watched mapping is repaired
 * (shim/seg_guard.c) and the process goes on; any other SIGBUS goes to the
 * program's own action, which we keep aside, exactly as the program set
 * it. SIGBUS is kept out of every mask the kernel holds for the program,
 * since the kernel kills a process that faults with SIGBUS blocked; the
 * program still sees its own blocking in what sigprocmask reports. Never
 * locks: sigaction and sigprocmask are async-signal-safe, so are we. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "real.h"
#include "sigbus.h"
#include "sigwatch.h"
#include "sockshim/layout.h"
#include "sockshim/seg_guard.h"

int sigbus_guard_on;

/* The program's SIGBUS action: a few slots written in turn and published
 * by index, so that a reader (the dispatcher, in any thread) never sees a
 * half-written one without anybody taking a lock. */
#define ACTION_SLOTS 8
static struct sigaction program_actions[ACTION_SLOTS];
static unsigned action_written;
static unsigned action_current;

/* Bit S: the program's action for signal S blocks SIGBUS (sa_mask). */
static uint64_t masks_with_bus;

/* The program blocked SIGBUS in this thread (as far as it knows). */
static __thread int bus_blocked __attribute__((tls_model("initial-exec")));

#define WORDS (sizeof(struct sigaction) / sizeof(sockshim_word))
_Static_assert(sizeof(struct sigaction) % sizeof(sockshim_word) == 0, "whole words");

static void action_copy(struct sigaction *dst, const struct sigaction *src)
{
	const sockshim_word *s = (const sockshim_word *)src;
	sockshim_word *d = (sockshim_word *)dst;
	unsigned i;

	for (i = 0; i < WORDS; i++)
		__atomic_store_n(&d[i], __atomic_load_n(&s[i], __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}

static void program_action_set(const struct sigaction *a)
{
	unsigned i = __atomic_add_fetch(&action_written, 1, __ATOMIC_RELAXED) % ACTION_SLOTS;

	action_copy(&program_actions[i], a);
	__atomic_store_n(&action_current, i, __ATOMIC_RELEASE);
}

static void program_action_get(struct sigaction *a)
{
	action_copy(a, &program_actions[__atomic_load_n(&action_current, __ATOMIC_ACQUIRE)]);
}

static void set_default(void)
{
	struct sigaction dfl;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	real.sigaction(SIGBUS, &dfl, NULL);
}

/* A SIGBUS that is not ours, handled as the program asked. */
static void chain(int sig, siginfo_t *si, void *uc)
{
	int fault = si->si_code > 0;
	struct sigaction a;
	sigset_t mask, saved;
	int was_blocked = bus_blocked;

	program_action_get(&a);
	if (a.sa_handler == SIG_IGN && !fault)
		return;
	if (a.sa_handler == SIG_DFL || a.sa_handler == SIG_IGN) {
		/* The kernel ignores nothing it raised for a fault: the default
		 * action, which the repeated fault (or the signal sent again)
		 * now gets, with the program's core dump. */
		set_default();
		if (!fault)
			raise(sig);
		return;
	}
	if (a.sa_flags & SA_RESETHAND) {
		struct sigaction dfl;

		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		program_action_set(&dfl);
	}
	mask = a.sa_mask;
	sigdelset(&mask, SIGBUS);
	real.pthread_sigmask(SIG_BLOCK, &mask, &saved);
	if (!(a.sa_flags & SA_NODEFER))
		bus_blocked = 1;
	if (a.sa_flags & SA_SIGINFO)
		a.sa_sigaction(sig, si, uc);
	else
		a.sa_handler(sig);
	bus_blocked = was_blocked;
	real.pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;

	if (!(si->si_code > 0 && seg_guard_fault(si->si_addr, 1)))
		chain(sig, si, uc);
	errno = saved;
}

static int install_ours_saving(struct sigaction *replaced)
{
	struct sigaction ours;

	memset(&ours, 0, sizeof(ours));
	ours.sa_sigaction = on_sigbus;
	/* NODEFER: a handler of the program's that we call, or that runs
	 * nested, may touch the segment too. ONSTACK: wherever the program
	 * keeps an alternate stack, a fault on a full stack still lands. */
	ours.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK | SA_RESTART;
	sigemptyset(&ours.sa_mask);
	return real.sigaction(SIGBUS, &ours, replaced);
}

static int install_ours(void)
{
	return install_ours_saving(NULL);
}

/* SIG_BLOCK or SIG_UNBLOCK SIGBUS in the kernel's mask of this thread. */
static void mask_bus(int how)
{
	sigset_t bus;

	sigemptyset(&bus);
	sigaddset(&bus, SIGBUS);
	real.pthread_sigmask(how, &bus, NULL);
}

static void unblock_bus(void)
{
	mask_bus(SIG_UNBLOCK);
}

int sigbus_guard_install(void)
{
	struct sigaction cur;
	sigset_t mask;

	real_ensure();
	if (real.sigaction(SIGBUS, NULL, &cur) < 0)
		return -errno;
	program_action_set(&cur);
	if (install_ours() < 0)
		return -errno;
	__atomic_store_n(&sigbus_guard_on, 1, __ATOMIC_RELEASE);
	/* An image exec'ed with SIGBUS blocked keeps it blocked, for the
	 * program's eyes only. */
	if (real.pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0 && sigismember(&mask, SIGBUS)) {
		bus_blocked = 1;
		unblock_bus();
	}
	return 0;
}

void sigbus_guard_remove(void)
{
	struct sigaction a;

	if (!__atomic_exchange_n(&sigbus_guard_on, 0, __ATOMIC_ACQ_REL))
		return;
	program_action_get(&a);
	real.sigaction(SIGBUS, &a, NULL);
	if (bus_blocked)
		mask_bus(SIG_BLOCK);
}

void sigbus_before_exec(void)
{
	struct sigaction a;

	if (!sigbus_guard_active())
		return;
	program_action_get(&a);
	/* Handlers do not survive exec; "ignored" and "blocked" do. */
	if (a.sa_handler == SIG_IGN)
		real.sigaction(SIGBUS, &a, NULL);
	if (bus_blocked)
		mask_bus(SIG_BLOCK);
}

void sigbus_after_exec_failed(void)
{
	if (!sigbus_guard_active())
		return;
	install_ours();
	if (bus_blocked)
		unblock_bus();
}

void sigbus_fill_except(sigset_t *set)
{
	sigfillset(set);
	sigdelset(set, SIGBUS);
}

static uint64_t bit_of(int sig)
{
	return sig > 0 && sig <= 64 ? UINT64_C(1) << (sig - 1) : 0;
}

/* SIGBUS itself: the kernel keeps our dispatcher, the program's action is
 * kept aside. The pointers are handed to the kernel first, so a bad one
 * fails with EFAULT as it would without us. */
static int program_sigbus(const struct sigaction *act, struct sigaction *old)
{
	struct sigaction prev;

	program_action_get(&prev);
	if (real.sigaction(SIGBUS, act, old) < 0)
		return -1;
	if (act) {
		struct sigaction kept;

		/* As the kernel holds it (libc adds its restorer): what a later
		 * sigaction reports, exactly as without us. */
		if (install_ours_saving(&kept) == 0)
			program_action_set(&kept);
		else
			program_action_set(act);
	}
	if (old)
		*old = prev;
	return 0;
}

int shim_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	uint64_t bit = bit_of(sig);
	int had_bus = (__atomic_load_n(&masks_with_bus, __ATOMIC_ACQUIRE) & bit) != 0;
	int saved;

	real_ensure();
	if (!sigbus_guard_active())
		return sigwatch_sigaction(sig, act, old);
	if (sig == SIGBUS)
		return program_sigbus(act, old);
	if (sigwatch_sigaction(sig, act, old) < 0)
		return -1;
	saved = errno;
	/* The kernel read ACT, so may we. A handler that blocks SIGBUS while
	 * it runs is installed again without it. */
	if (act && sigismember(&act->sa_mask, SIGBUS)) {
		struct sigaction copy = *act;

		sigdelset(&copy.sa_mask, SIGBUS);
		sigwatch_sigaction(sig, &copy, NULL);
		__atomic_fetch_or(&masks_with_bus, bit, __ATOMIC_RELEASE);
	} else if (act) {
		__atomic_fetch_and(&masks_with_bus, ~bit, __ATOMIC_RELEASE);
	}
	if (old && had_bus)
		sigaddset(&old->sa_mask, SIGBUS);
	errno = saved;
	return 0;
}

int shim_sigmask(int how, const sigset_t *set, sigset_t *old, int as_pthread)
{
	int was = bus_blocked, rc, saved;

	real_ensure();
	rc = as_pthread ? real.pthread_sigmask(how, set, old) : real.sigprocmask(how, set, old);
	if (rc != 0 || !sigbus_guard_active())
		return rc;
	saved = errno;
	/* The kernel read SET (and wrote OLD): both are good memory. */
	if (set) {
		int has = sigismember(set, SIGBUS) == 1;

		if (how == SIG_SETMASK)
			bus_blocked = has;
		else if (has)
			bus_blocked = how == SIG_BLOCK;
		if (has && how != SIG_UNBLOCK)
			unblock_bus();
	}
	if (old && was)
		sigaddset(old, SIGBUS);
	errno = saved;
	return 0;
}
