/* Wrapper of libc's syscall(): the numbers of the calls the shim wraps go
 * through the same logic as their exported wrappers (libuv closes every
 * descriptor with syscall(SYS_close, fd)); every other number goes to
 * libc's syscall() untouched, through a switch: no lock, no allocation.
 * Must never change what the caller sees: the same result and errno, the
 * same memory written, no new cancellation point, no fault on a pointer
 * the kernel would answer EFAULT to.
 *
 * A number is routed only while the libc function behind the logic makes
 * exactly that system call with exactly those arguments; where the kernel's
 * interface differs from libc's, the call is routed only for arguments on
 * which they agree, and passed through otherwise. Passed through on purpose:
 *   SYS_fork, SYS_vfork, SYS_clone, SYS_clone3: libc's fork runs the fork
 *     handlers and resets its locks, which a raw fork skips on purpose; a
 *     vfork child returning through a C function would wreck our stack.
 *   SYS_ppoll, SYS_pselect6: the kernel writes the time left back into the
 *     caller's timeout, which libc's ppoll and pselect never do; pselect6
 *     also takes its mask packed with its size.
 *   SYS_execveat: no wrapper takes a directory and a path (fexecve's form
 *     would need the path read first).
 *   SYS_exit: ends one thread, not the process (_exit is SYS_exit_group). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "calls.h"
#include "export.h"
#include "real.h"
#include "sigbus.h"
#include "usermem.h"

/* libc's syscall() is no cancellation point (libuv calls it for close for
 * that reason); the libc functions behind the logic of close, accept,
 * connect, the read and write families and the waits are. Cancellation stays off
 * around those; errno is the call's. */
#define NOCANCEL(call)                                                         \
	({                                                                     \
		int old_, err_;                                                \
		long r_;                                                       \
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_);         \
		r_ = (long)(call);                                             \
		err_ = errno;                                                  \
		pthread_setcancelstate(old_, NULL);                            \
		errno = err_;                                                  \
		r_;                                                            \
	})

/* A pointer argument: the kernel's arguments are registers, which libc's
 * syscall() hands over as longs. */
static inline void *ptr(long v)
{
	return (void *)v; // NOLINT(performance-no-int-to-ptr)
}

/* An argument the kernel takes as a long and libc as an int: the same
 * call only if libc's int, widened again, is the caller's long. */
static inline int fits_int(long v)
{
	return v == (long)(int)v;
}

/* ---- calls whose wrappers live in files of their own ------------------
 * exec, _exit and the waits are routed through their exported wrappers
 * (the next definition of the name: ours), so that whatever those
 * wrappers do (exec following, the reaper) holds here too. */

/* A thread that routed exit_group and comes back here with it (a wrapper
 * whose last resort is syscall(SYS_exit_group)) passes it through. Keyed
 * by pid: a vfork child shares this thread's memory with its parent. */
static __thread pid_t exiting __attribute__((tls_model("initial-exec")));

static __attribute__((noinline)) long sys_exit_group(const long a[6])
{
	pid_t me = getpid();

	if (exiting == me)
		return real.syscall(SYS_exit_group, a[0], a[1], a[2], a[3], a[4], a[5]);
	exiting = me;
	_exit((int)a[0]);
}

/* waitid: the kernel's fifth argument (resource usage) has no place in
 * libc's waitid, which passes NULL. */
static __attribute__((noinline)) long sys_waitid(const long a[6])
{
	if (a[4])
		return real.syscall(SYS_waitid, a[0], a[1], a[2], a[3], a[4], a[5]);
	return NOCANCEL(waitid((idtype_t)a[0], (id_t)a[1], ptr(a[2]), (int)a[3]));
}

/* fcntl: the commands the wrapper acts on, for which libc's fcntl makes
 * the call as it is (it rewrites F_GETOWN and friends, not these). */
static __attribute__((noinline)) long sys_fcntl(const long a[6])
{
	switch ((int)a[1]) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
	case F_SETFD:
	case F_SETFL:
		real_ensure();
		return shim_fcntl(real.fcntl, (int)a[0], (int)a[1], ptr(a[2]));
	default:
		return real.syscall(SYS_fcntl, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
}

/* ---- signals: the SIGBUS guard (shim/sigbus.c) ------------------------
 * Only while the guard is on; before, the exported wrappers pass through
 * too. The kernel's structures are not libc's (a 64-bit mask, the
 * restorer before the mask), and its pointers may be bad: they are copied
 * through process_vm_readv/writev on ourselves, which fail where the
 * kernel would say EFAULT (shim/calls_exec.c reads exec paths so). */
#if defined(__x86_64__)
#define KERNEL_SIGSET_SIZE 8 /* _NSIG / 8: the only size the kernel takes */
/* glibc's own signals (SIGCANCEL, SIGSETXID): its sigaction refuses them
 * and its sigprocmask leaves them out, which the raw call does not. */
#define LIBC_SIGNAL_LO 32
#define LIBC_SIGNAL_HI 33
#define LIBC_SIGNALS \
	((UINT64_C(1) << (LIBC_SIGNAL_LO - 1)) | (UINT64_C(1) << (LIBC_SIGNAL_HI - 1)))

struct kernel_sigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static int copy_in(void *dst, const void *src, size_t len)
{
	return usermem_read(dst, src, len) == 0;
}

static int copy_out(void *dst, const void *src, size_t len)
{
	return usermem_write(dst, src, len) == 0;
}

#define PASS(n) real.syscall(n, a[0], a[1], a[2], a[3], a[4], a[5])

/* The kernel's order: read ACT, change the action, write OLD (EFAULT then,
 * with the action changed). libc puts its own restorer in, as for every
 * handler the program installs with sigaction. */
static __attribute__((noinline)) long sys_rt_sigaction(const long a[6])
{
	int sig = (int)a[0];
	struct kernel_sigaction kact, kold;
	struct sigaction act, old;

	if (!sigbus_guard_active() || (size_t)a[3] != KERNEL_SIGSET_SIZE || sig < 1 || sig > 64 ||
	    sig == LIBC_SIGNAL_LO || sig == LIBC_SIGNAL_HI)
		return PASS(SYS_rt_sigaction);
	if (a[1] && (!copy_in(&kact, ptr(a[1]), sizeof(kact)) || kact.flags >> 32))
		return PASS(SYS_rt_sigaction);
	memset(&act, 0, sizeof(act));
	memset(&old, 0, sizeof(old));
	if (a[1]) {
		act.sa_handler = (sighandler_t)kact.handler;
		act.sa_flags = (int)kact.flags;
		act.sa_restorer = (void (*)(void))kact.restorer;
		memcpy(&act.sa_mask, &kact.mask, sizeof(kact.mask));
	}
	if (shim_sigaction(sig, a[1] ? &act : NULL, a[2] ? &old : NULL) < 0)
		return -1;
	if (a[2]) {
		kold.handler = (void *)old.sa_handler;
		kold.flags = (unsigned long)(unsigned int)old.sa_flags;
		kold.restorer = (void *)old.sa_restorer;
		memcpy(&kold.mask, &old.sa_mask, sizeof(kold.mask));
		if (!copy_out(ptr(a[2]), &kold, sizeof(kold))) {
			errno = EFAULT;
			return -1;
		}
	}
	return 0;
}

/* The kernel's order: read SET, change the mask, write OLD. */
static __attribute__((noinline)) long sys_rt_sigprocmask(const long a[6])
{
	uint64_t kset = 0, kold;
	sigset_t set, old;

	if (!sigbus_guard_active() || (size_t)a[3] != KERNEL_SIGSET_SIZE)
		return PASS(SYS_rt_sigprocmask);
	if (a[1] && (!copy_in(&kset, ptr(a[1]), sizeof(kset)) || (kset & LIBC_SIGNALS)))
		return PASS(SYS_rt_sigprocmask);
	sigemptyset(&set);
	sigemptyset(&old);
	memcpy(&set, &kset, sizeof(kset));
	if (shim_sigmask((int)a[0], a[1] ? &set : NULL, a[2] ? &old : NULL, 0) < 0)
		return -1;
	if (a[2]) {
		memcpy(&kold, &old, sizeof(kold));
		if (!copy_out(ptr(a[2]), &kold, sizeof(kold))) {
			errno = EFAULT;
			return -1;
		}
	}
	return 0;
}
#undef PASS
#endif

/* ---- the router ---------------------------------------------------------
 * Arguments are converted as the kernel converts them (descriptors to
 * 32 bits) or as libc's prototype does where that loses nothing. */
#ifdef SYS_select
/* The select that syscall(SYS_select) makes: the kernel's, whose timeout
 * libc's select would read and write itself. */
static int sys_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *timeout)
{
	return (int)real.syscall(SYS_select, (long)nfds, rd, wr, ex, timeout);
}
#endif

/* One case per routed number, each a line or two: a single switch (over
 * 100 lines) reads as the table it is, and the compiler makes it a jump. */
static __attribute__((noinline)) long shim_syscall_slow(long n, const long a[6], void *caller)
{
	switch (n) {
	case SYS_close:
		return NOCANCEL(shim_close((int)a[0]));
	case SYS_close_range:
		real_ensure();
		if (!real.close_range)
			break;
		return shim_close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
	case SYS_dup:
		real_ensure();
		return shim_dup((int)a[0]);
#ifdef SYS_dup2
	case SYS_dup2:
		real_ensure();
		return shim_dup3((int)a[0], (int)a[1], 0, 0);
#endif
	case SYS_dup3:
		real_ensure();
		return shim_dup3((int)a[0], (int)a[1], (int)a[2], 1);
	case SYS_fcntl:
		return sys_fcntl(a);
	case SYS_socket:
		real_ensure();
		return shim_socket((int)a[0], (int)a[1], (int)a[2], caller);
	case SYS_socketpair:
		real_ensure();
		return shim_socketpair((int)a[0], (int)a[1], (int)a[2], ptr(a[3]), caller);
	case SYS_bind:
		real_ensure();
		return shim_bind((int)a[0], ptr(a[1]), (socklen_t)a[2]);
	case SYS_listen:
		real_ensure();
		return shim_listen((int)a[0], (int)a[1]);
	case SYS_accept:
		real_ensure();
		return NOCANCEL(
			shim_accept4((int)a[0], ptr(a[1]), ptr(a[2]), 0, 0, caller));
	case SYS_accept4:
		real_ensure();
		return NOCANCEL(shim_accept4((int)a[0], ptr(a[1]), ptr(a[2]),
					     (int)a[3], 1, caller));
	case SYS_connect:
		real_ensure();
		return NOCANCEL(shim_connect((int)a[0], ptr(a[1]), (socklen_t)a[2]));
	case SYS_shutdown:
		real_ensure();
		return shim_shutdown((int)a[0], (int)a[1], caller);
	case SYS_setsockopt:
		/* The length: the kernel's int and libc's socklen_t are the
		 * same low 32 bits of the register. */
		return shim_setsockopt((int)a[0], (int)a[1], (int)a[2], ptr(a[3]),
				       (socklen_t)a[4]);
	case SYS_read:
		return NOCANCEL(shim_read((int)a[0], ptr(a[1]), (size_t)a[2]));
	case SYS_readv:
		/* The kernel takes the count as an unsigned long, libc as an int. */
		if (!fits_int(a[2]))
			break;
		return NOCANCEL(shim_readv((int)a[0], ptr(a[1]), (int)a[2]));
	case SYS_recvfrom:
		return NOCANCEL(shim_recvfrom((int)a[0], ptr(a[1]), (size_t)a[2], (int)a[3],
					      ptr(a[4]), ptr(a[5])));
	case SYS_recvmsg:
		return NOCANCEL(shim_recvmsg((int)a[0], ptr(a[1]), (int)a[2]));
	case SYS_write:
		return NOCANCEL(shim_write((int)a[0], ptr(a[1]), (size_t)a[2]));
	case SYS_writev:
		/* The kernel takes the count as an unsigned long, libc as an int. */
		if (!fits_int(a[2]))
			break;
		return NOCANCEL(shim_writev((int)a[0], ptr(a[1]), (int)a[2]));
	case SYS_sendto:
		/* The length: as setsockopt's. */
		return NOCANCEL(shim_sendto((int)a[0], ptr(a[1]), (size_t)a[2], (int)a[3],
					    ptr(a[4]), (socklen_t)a[5]));
	case SYS_sendmsg:
		return NOCANCEL(shim_sendmsg((int)a[0], ptr(a[1]), (int)a[2]));
#ifdef SYS_poll
	case SYS_poll:
		/* The kernel counts in 32 bits; so does the logic then. */
		real_ensure();
		return NOCANCEL(shim_poll(ptr(a[0]), (nfds_t)(unsigned)a[1], (int)a[2]));
#endif
#ifdef SYS_select
	case SYS_select:
		real_ensure();
		return NOCANCEL(shim_select((int)a[0], ptr(a[1]), ptr(a[2]), ptr(a[3]),
					    ptr(a[4]), sys_select));
#endif
	case SYS_epoll_ctl:
		real_ensure();
		return shim_epoll_ctl((int)a[0], (int)a[1], (int)a[2], ptr(a[3]));
#ifdef SYS_epoll_wait
	case SYS_epoll_wait:
		real_ensure();
		return NOCANCEL(
			shim_epoll_wait((int)a[0], ptr(a[1]), (int)a[2], (int)a[3]));
#endif
	case SYS_epoll_pwait:
		/* libc passes the kernel's mask size; another is EINVAL there. */
		if (a[4] && (size_t)a[5] != _NSIG / 8)
			break;
		real_ensure();
		return NOCANCEL(shim_epoll_pwait((int)a[0], ptr(a[1]), (int)a[2],
						 (int)a[3], ptr(a[4])));
#if defined(__x86_64__)
	case SYS_rt_sigaction:
		return sys_rt_sigaction(a);
	case SYS_rt_sigprocmask:
		return sys_rt_sigprocmask(a);
#endif
	case SYS_execve:
		return execve(ptr(a[0]), ptr(a[1]), ptr(a[2]));
	case SYS_exit_group:
		return sys_exit_group(a);
	case SYS_wait4:
		return NOCANCEL(wait4((pid_t)a[0], ptr(a[1]), (int)a[2], ptr(a[3])));
	case SYS_waitid:
		return sys_waitid(a);
	default:
		break;
	}
	return real.syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* The numbers shim_syscall_slow routes: exactly its cases (the test
 * test_syscall_routes_every_wrapper compares the two lists). */
static inline int routed(long n)
{
	switch (n) {
	case SYS_close:
	case SYS_close_range:
	case SYS_dup:
#ifdef SYS_dup2
	case SYS_dup2:
#endif
	case SYS_dup3:
	case SYS_fcntl:
	case SYS_socket:
	case SYS_socketpair:
	case SYS_bind:
	case SYS_listen:
	case SYS_accept:
	case SYS_accept4:
	case SYS_connect:
	case SYS_shutdown:
	case SYS_setsockopt:
	case SYS_read:
	case SYS_readv:
	case SYS_recvfrom:
	case SYS_recvmsg:
	case SYS_write:
	case SYS_writev:
	case SYS_sendto:
	case SYS_sendmsg:
#ifdef SYS_poll
	case SYS_poll:
#endif
#ifdef SYS_select
	case SYS_select:
#endif
	case SYS_epoll_ctl:
#ifdef SYS_epoll_wait
	case SYS_epoll_wait:
#endif
	case SYS_epoll_pwait:
#if defined(__x86_64__)
	case SYS_rt_sigaction:
	case SYS_rt_sigprocmask:
#endif
	case SYS_execve:
	case SYS_exit_group:
	case SYS_wait4:
	case SYS_waitid:
		return 1;
	default:
		return 0;
	}
}

/* The fast half: a number we do not route goes to libc at once, with no
 * more than the six arguments in registers and on the stack. */
static inline long shim_syscall(long n, long a0, long a1, long a2, long a3, long a4, long a5,
				void *caller)
{
	if (__builtin_expect(!routed(n), 1))
		return real.syscall(n, a0, a1, a2, a3, a4, a5);
	{
		const long a[6] = {a0, a1, a2, a3, a4, a5};

		return shim_syscall_slow(n, a, caller);
	}
}

/* Six arguments, whatever the number, as libc's own syscall() reads them
 * (it cannot know how many the caller passed): forwarded exactly. Those
 * the caller did not pass are read from its stack frame, which ASan would
 * take for an overflow: not instrumented. */
SHIM_EXPORT __attribute__((no_sanitize_address)) long syscall(long number, ...)
{
	va_list ap;
	long a0, a1, a2, a3, a4, a5;

	va_start(ap, number);
	a0 = va_arg(ap, long);
	a1 = va_arg(ap, long);
	a2 = va_arg(ap, long);
	a3 = va_arg(ap, long);
	a4 = va_arg(ap, long);
	a5 = va_arg(ap, long);
	va_end(ap);
	return shim_syscall(number, a0, a1, a2, a3, a4, a5, __builtin_return_address(0));
}
