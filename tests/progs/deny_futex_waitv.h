/* A kernel before 5.16, as the shim sees it: a seccomp filter that makes
 * futex_waitv fail with ENOSYS in this process and its threads and
 * children, so that the accept lock takes the path it takes there (one
 * FUTEX_WAIT on the lock word, in slices). valgrind does the same: it does
 * not implement futex_waitv. Everything else is allowed. */
#ifndef SOCKSHIM_TESTS_DENY_FUTEX_WAITV_H
#define SOCKSHIM_TESTS_DENY_FUTEX_WAITV_H

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449 /* the same number on every architecture */
#endif

#if defined(__x86_64__)
#define DENY_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define DENY_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* 0, or -1 with errno (an architecture this filter does not know: ENOSYS). */
static inline int deny_futex_waitv(void)
{
#ifdef DENY_AUDIT_ARCH
	struct sock_filter code[] = {
		/* Another calling convention's numbers mean other calls. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DENY_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex_waitv, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = (unsigned short)(sizeof(code) / sizeof(code[0])),
				  .filter = code};

	/* Without privilege, a filter needs no_new_privs. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
#else
	errno = ENOSYS;
	return -1;
#endif
}

#endif
