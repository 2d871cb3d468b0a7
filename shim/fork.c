/* fork. Before it, the parent counts one more reference to each socket it
 * has (the child's), so that the parent closing its copy right after the
 * fork is not taken for the last reference going. In the child, the
 * handler claims those references as holders before the child's code
 * runs. Our fork() wrapper then logs the fork in the parent, with the
 * child's pid, before anything else the parent does; a fork we did not
 * wrap is logged by the child. */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "emit.h"
#include "export.h"
#include "fork.h"
#include "ledger.h"
#include "real.h"
#include "track.h"

static __thread int in_our_fork __attribute__((tls_model("initial-exec")));
static __thread pid_t parent_pid __attribute__((tls_model("initial-exec")));
static __thread pid_t parent_tid __attribute__((tls_model("initial-exec")));

/* Count (DELTA 1) or give back (-1) the child's reference to each socket. */
static void reserve_for_child(int delta)
{
	uint32_t fd, high = fdtab_high();

	for (fd = 0; fd < high; fd++) {
		struct fd_entry e;

		if (!fdtab_is_tracked((int)fd))
			continue;
		/* The ledger needs inodes: ask for those socket() left unknown. */
		if (delta > 0 ? !track_lookup_or_adopt((int)fd, &e) : !fdtab_get((int)fd, &e))
			continue;
		if (e.ledger)
			ledger_reserve(e.ledger, delta);
	}
}

void fork_child_holds(pid_t parent, pid_t child, int reserved)
{
	uint32_t fd, high = fdtab_high();

	for (fd = 0; fd < high; fd++) {
		struct fd_entry e;

		if (!fdtab_get((int)fd, &e) || !e.ledger)
			continue;
		ledger_hold(e.ledger, child, (int)fd, SOCKSHIM_HOW_FORK, parent, (int)fd, reserved);
		ledger_step(e.ledger, SOCKSHIM_STEP_FORK, parent, (int)fd, child, 0);
	}
}

static void log_fork(pid_t parent, pid_t tid, pid_t child)
{
	struct sockshim_record r;

	record_init(&r, SOCKSHIM_EV_FORK, -1, child, 0);
	r.pid = parent;
	r.tid = tid;
	r.detail.fork.child_pid = child;
	emit_record(&r);
}

static void before_fork(void)
{
	int saved = errno;

	parent_pid = shim_getpid();
	parent_tid = shim_gettid();
	if (!shim_inert)
		reserve_for_child(1);
	errno = saved;
}

/* The child's only thread: refresh the cached identity, claim the
 * references, and log the fork if no wrapper in the parent will. */
static void in_fork_child(void)
{
	pid_t child = getpid();

	__atomic_store_n(&shim_pid, child, __ATOMIC_RELAXED);
	shim_forget_tid();
	if (shim_inert)
		return;
	fork_child_holds(parent_pid, child, 1);
	if (!in_our_fork)
		log_fork(parent_pid, parent_tid, child);
	in_our_fork = 0;
}

int fork_install(void)
{
	return pthread_atfork(before_fork, NULL, in_fork_child);
}

static pid_t shim_fork(void)
{
	pid_t pid;
	int err;

	in_our_fork = 1;
	pid = real.fork();
	err = errno;
	if (pid == 0)
		return 0; /* the child handler did the child's part */
	in_our_fork = 0;
	if (!shim_inert) {
		if (pid > 0)
			log_fork(shim_getpid(), shim_gettid(), pid);
		else
			reserve_for_child(-1); /* no child: give its references back */
	}
	errno = err;
	return pid;
}

SHIM_EXPORT pid_t fork(void)
{
	real_ensure();
	return shim_fork();
}
