/* Wrappers of the calls that reap children: wait, waitpid, wait3, wait4,
 * waitid. A child that died by a signal (or ended any way our exit hook
 * did not see) leaves its references in the ledger; the parent that
 * reaps it is the first to know for sure that it is gone, and releases
 * them (shim/procs.c). Only after the real call, only for a child really
 * reaped; errno and the status are the real call's. */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "accept_token.h"
#include "export.h"
#include "procs.h"
#include "real.h"
#include "sockshim/layout.h"

/* Child PID is gone (VIA: exit or death): its references, and the poll
 * tokens it held, handed to a waiter at once rather than at the waiter's
 * next look. */
static void child_gone(pid_t pid, int via)
{
	procs_gone(pid, via);
	accept_token_release_pid(pid);
}

/* A child PID was reaped with STATUS (waitpid's form): release what it
 * held. A report of a stop or a continue reaps nothing. */
static void reaped(pid_t pid, int status)
{
	int saved = errno;

	if (pid > 0 && !shim_inert && (WIFEXITED(status) || WIFSIGNALED(status)))
		child_gone(pid, WIFSIGNALED(status) ? SOCKSHIM_CLOSE_VIA_DEATH : SOCKSHIM_CLOSE_VIA_EXIT);
	errno = saved;
}

static pid_t shim_wait4(pid_t pid, int *status, int options, struct rusage *ru, int which)
{
	int mine = 0;
	int *st = status ? status : &mine;
	pid_t ret;

	switch (which) {
	case 0:
		ret = real.wait(st);
		break;
	case 1:
		ret = real.waitpid(pid, st, options);
		break;
	case 2:
		ret = real.wait3(st, options, ru);
		break;
	default:
		ret = real.wait4(pid, st, options, ru);
		break;
	}
	if (ret > 0)
		reaped(ret, *st);
	return ret;
}

static int shim_waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
	int ret = real.waitid(type, id, info, options), saved = errno;

	/* WNOWAIT leaves the child to be reaped later; WNOHANG with no child
	 * ready leaves si_pid 0. */
	if (ret == 0 && info && !(options & WNOWAIT) && info->si_pid > 0 &&
	    (info->si_code == CLD_EXITED || info->si_code == CLD_KILLED ||
	     info->si_code == CLD_DUMPED) && !shim_inert)
		child_gone(info->si_pid, info->si_code == CLD_EXITED ? SOCKSHIM_CLOSE_VIA_EXIT
								      : SOCKSHIM_CLOSE_VIA_DEATH);
	errno = saved;
	return ret;
}

SHIM_EXPORT pid_t wait(int *status)
{
	real_ensure();
	return shim_wait4(-1, status, 0, NULL, 0);
}

SHIM_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	real_ensure();
	return shim_wait4(pid, status, options, NULL, 1);
}

SHIM_EXPORT pid_t wait3(int *status, int options, struct rusage *ru)
{
	real_ensure();
	return shim_wait4(-1, status, options, ru, 2);
}

SHIM_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	real_ensure();
	return shim_wait4(pid, status, options, ru, 3);
}

SHIM_EXPORT int waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
	real_ensure();
	return shim_waitid(type, id, info, options);
}
