/* Signal actions as the program sees them: installs handlers every way
 * libc offers (sigaction with and without SA_SIGINFO, SA_RESETHAND,
 * SA_NODEFER, SA_ONSTACK, masks; signal, bsd_signal, sysv_signal; SIG_IGN),
 * prints every query's answer (handler, flags, mask), raises each signal
 * and prints what its handler got (arguments, errno it leaves), and the
 * action after delivery (SA_RESETHAND). The output must be the same with
 * and without the shim; a vfork child's reset leaves its parent's handler
 * alone. Its last line says whether the kernel holds the
 * program's own SIGUSR1 handler, asked by a system call no wrapper sees:
 * under serialize it holds the shim's trampoline instead.
 *
 *     sigquery          prints the report, exits 0 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Obsolete; libc still exports it. */
sighandler_t bsd_signal(int sig, sighandler_t handler);

static volatile sig_atomic_t plain_calls, plain_sig;
static volatile sig_atomic_t info_calls, info_sig, info_signo, info_code, info_uc;

static void h_plain(int sig)
{
	plain_calls++;
	plain_sig = sig;
	errno = 77; /* what the program's handler leaves is what it sees */
}

static void h_other(int sig)
{
	(void)sig;
}

static void h_info(int sig, siginfo_t *si, void *uc)
{
	info_calls++;
	info_sig = sig;
	info_signo = si->si_signo;
	info_code = si->si_code;
	info_uc = uc != NULL;
}

static const char *name_of(const struct sigaction *a)
{
	if (a->sa_handler == SIG_DFL)
		return "SIG_DFL";
	if (a->sa_handler == SIG_IGN)
		return "SIG_IGN";
	if (a->sa_handler == h_plain)
		return "h_plain";
	if (a->sa_handler == h_other)
		return "h_other";
	if (a->sa_sigaction == h_info)
		return "h_info";
	return "unknown";
}

static const char *name_of_handler(sighandler_t h)
{
	struct sigaction a;

	memset(&a, 0, sizeof(a));
	a.sa_handler = h;
	return h == SIG_ERR ? "SIG_ERR" : name_of(&a);
}

static void show(const char *what, int sig)
{
	struct sigaction a;
	int i;

	memset(&a, 0xa5, sizeof(a));
	if (sigaction(sig, NULL, &a) < 0) {
		printf("%s: sig %d query failed errno %d\n", what, sig, errno);
		return;
	}
	printf("%s: sig %d handler %s flags %#x mask", what, sig, name_of(&a),
	       (unsigned)a.sa_flags);
	for (i = 1; i < NSIG; i++)
		if (sigismember(&a.sa_mask, i) == 1)
			printf(" %d", i);
	printf("\n");
}

static void install(int sig, void (*h)(int), void (*hi)(int, siginfo_t *, void *), int flags,
		    int masked)
{
	struct sigaction a, old;

	memset(&a, 0, sizeof(a));
	if (hi)
		a.sa_sigaction = hi;
	else
		a.sa_handler = h;
	a.sa_flags = flags;
	sigemptyset(&a.sa_mask);
	if (masked)
		sigaddset(&a.sa_mask, masked);
	memset(&old, 0x5a, sizeof(old));
	if (sigaction(sig, &a, &old) < 0) {
		printf("install sig %d failed errno %d\n", sig, errno);
		return;
	}
	printf("install sig %d: old handler %s flags %#x\n", sig, name_of(&old),
	       (unsigned)old.sa_flags);
}

static void deliver(int sig)
{
	int r;

	plain_calls = info_calls = 0;
	errno = 0;
	r = raise(sig);
	printf("raise %d: ret %d errno %d plain %d/%d info %d/%d signo %d code %d uc %d\n", sig, r,
	       errno, (int)plain_calls, (int)plain_sig, (int)info_calls, (int)info_sig,
	       (int)info_signo, (int)info_code, (int)info_uc);
}

/* The kernel's handler of SIG, asked with a system call instruction of
 * our own: no libc, no wrapper. */
static void *kernel_handler(int sig)
{
#if defined(__x86_64__)
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} k;
	long rc;
	register long r10 __asm__("r10") = 8;

	memset(&k, 0, sizeof(k));
	__asm__ volatile("syscall"
			 : "=a"(rc)
			 : "0"(13L /* rt_sigaction */), "D"((long)sig), "S"(0L), "d"(&k), "r"(r10)
			 : "rcx", "r11", "memory");
	return rc == 0 ? k.handler : (void *)-1;
#else
	(void)sig;
	return (void *)-1;
#endif
}

int main(void)
{
	alarm(20);
	install(SIGUSR1, h_plain, NULL, SA_RESTART, SIGUSR2);
	install(SIGUSR2, NULL, h_info, SA_SIGINFO | SA_NODEFER, 0);
	install(SIGHUP, h_plain, NULL, SA_RESETHAND, SIGINT);
	install(SIGPIPE, NULL, h_info, SA_SIGINFO | SA_RESETHAND | SA_RESTART, 0);
	install(SIGWINCH, h_plain, NULL, SA_ONSTACK | SA_RESTART, 0);
	install(SIGALRM, SIG_IGN, NULL, 0, 0);
	install(SIGRTMIN + 2, NULL, h_info, SA_SIGINFO, SIGRTMIN + 3);
	/* A second handler in place of the first: the old one is the first. */
	install(SIGUSR1, h_other, NULL, SA_RESTART, 0);
	install(SIGUSR1, h_plain, NULL, SA_RESTART, SIGUSR2);
	printf("signal INT: old %s\n", name_of_handler(signal(SIGINT, h_plain)));
	printf("signal INT again: old %s\n", name_of_handler(signal(SIGINT, h_other)));
	printf("signal INT back: old %s\n", name_of_handler(signal(SIGINT, h_plain)));
	printf("sysv_signal QUIT: old %s\n", name_of_handler(sysv_signal(SIGQUIT, h_plain)));
	printf("bsd_signal TERM: old %s\n", name_of_handler(bsd_signal(SIGTERM, h_plain)));
	printf("signal TERM: old %s\n", name_of_handler(signal(SIGTERM, h_plain)));
	printf("signal bad: %s errno %d\n", name_of_handler(signal(0, h_plain)), errno);
	show("query", SIGUSR1);
	show("query", SIGUSR2);
	show("query", SIGHUP);
	show("query", SIGPIPE);
	show("query", SIGWINCH);
	show("query", SIGALRM);
	show("query", SIGRTMIN + 2);
	show("query", SIGINT);
	show("query", SIGQUIT);
	show("query", SIGTERM);
	deliver(SIGUSR1);
	deliver(SIGUSR2);
	deliver(SIGINT);
	deliver(SIGTERM);
	deliver(SIGWINCH);
	deliver(SIGRTMIN + 2);
	/* Handled once, then SIG_DFL, flags as they were. */
	deliver(SIGHUP);
	show("after delivery", SIGHUP);
	deliver(SIGPIPE);
	show("after delivery", SIGPIPE);
	deliver(SIGQUIT);
	show("after delivery", SIGQUIT);
	/* The old action given back as it came: the same action again. */
	{
		struct sigaction a, b;
		int i, same;

		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		sigaction(SIGUSR2, NULL, &a);
		sigaction(SIGUSR2, &a, &b);
		same = a.sa_sigaction == b.sa_sigaction && a.sa_flags == b.sa_flags;
		for (i = 1; i < NSIG; i++)
			same &= sigismember(&a.sa_mask, i) == sigismember(&b.sa_mask, i);
		printf("given back: same %d\n", same);
		show("given back", SIGUSR2);
		deliver(SIGUSR2);
	}
	/* A vfork child that resets a handler before it would exec: its own
	 * action, not its parent's (they share memory, not actions). */
	{
		pid_t child = vfork();

		if (child == 0) {
			signal(SIGUSR1, SIG_DFL);
			_exit(0);
		}
		printf("vfork child: %s\n",
		       child > 0 && waitpid(child, NULL, 0) == child ? "reaped" : "failed");
		deliver(SIGUSR1);
	}
	printf("kernel holds the program's SIGUSR1 handler: %s\n",
	       kernel_handler(SIGUSR1) == (void *)h_plain ? "yes" : "no");
	return 0;
}
