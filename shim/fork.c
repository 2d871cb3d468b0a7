/* fork. Before it, the parent counts one more reference to each socket it
 * has (the child's), so that the parent closing its copy right after the
 * fork is not taken for the last reference going. The list of those
 * reservations is kept in thread-local memory, which the child inherits
 * as it was at the fork, together with its copy of the descriptor table:
 * the child claims the reservations of the descriptors it has and gives
 * back the others (closed by another thread between the reservation and
 * the fork). Our fork() wrapper logs the fork in the parent, with the
 * child's pid, before anything else the parent does; a fork we did not
 * wrap is logged by the child. Nothing here writes the descriptor table:
 * another thread may be closing a descriptor meanwhile. */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "emit.h"
#include "export.h"
#include "fork.h"
#include "ledger.h"
#include "procs.h"
#include "real.h"
#include "sockinfo.h"
#include "track.h"

/* Descriptors whose child reference is reserved: beyond this many the
 * child counts its own (without the protection a reservation gives). */
#define RESERVED_MAX 512

struct reservation {
	int fd;
	uint32_t ledger;
};

static __thread struct reservation reserved[RESERVED_MAX]
	__attribute__((tls_model("initial-exec")));
static __thread unsigned n_reserved __attribute__((tls_model("initial-exec")));
static __thread pid_t parent_pid __attribute__((tls_model("initial-exec")));
static __thread pid_t parent_tid __attribute__((tls_model("initial-exec")));

/* Count the child's reference to each socket with a ledger entry. */
static void reserve_for_child(void)
{
	uint32_t fd, high = fdtab_high();

	n_reserved = 0;
	for (fd = 0; fd < high && n_reserved < RESERVED_MAX; fd++) {
		struct fd_entry e;

		/* A socket whose inode socket() left unknown has no entry yet;
		 * asking for it here would race another thread closing it.
		 * The child, alone in its process, asks for its own copy. */
		if (!fdtab_get((int)fd, &e) || !e.ledger)
			continue;
		ledger_reserve(shim_session(), e.ledger, 1);
		reserved[n_reserved].fd = (int)fd;
		reserved[n_reserved].ledger = e.ledger;
		n_reserved++;
	}
}

/* No child after all: give every reservation back. */
static void unreserve(void)
{
	unsigned i;

	for (i = 0; i < n_reserved; i++)
		ledger_reserve(shim_session(), reserved[i].ledger, -1);
	n_reserved = 0;
}

/* The ledger entry reserved for FD before the fork, 0 if none. */
static uint32_t reserved_for(int fd)
{
	unsigned i;

	for (i = 0; i < n_reserved; i++)
		if (reserved[i].fd == fd)
			return reserved[i].ledger;
	return 0;
}

void fork_child_holds(pid_t parent, pid_t child, int use_reservations)
{
	struct seg_map *m = shim_session();
	uint32_t fd, high = fdtab_high();
	unsigned i;

	for (fd = 0; fd < high; fd++) {
		struct fd_entry e;
		uint32_t r = use_reservations ? reserved_for((int)fd) : 0;

		if (!fdtab_get((int)fd, &e))
			continue;
		/* The table was copied while the parent's other threads were
		 * between a call and its bookkeeping (a dup2 onto a tracked
		 * descriptor, a close): what the kernel gave us is the truth.
		 * We are the child's only thread (fork): a descriptor that is
		 * not the socket the table says is dropped from it (its
		 * reservation goes back below), never held. Not in a vfork
		 * child, whose table is the parent's. */
		if (use_reservations && e.ledger && !(e.inode & FDT_INODE_UNKNOWN) &&
		    sockinfo_inode((int)fd) != e.inode) {
			fdtab_take((int)fd, NULL);
			continue;
		}
		/* Inode unknown: safe to resolve here (fork: our only thread;
		 * vfork: the parent is stopped). */
		if (!e.ledger && use_reservations && !track_lookup_or_adopt((int)fd, &e))
			continue;
		if (!e.ledger)
			continue;
		ledger_hold(m, e.ledger, child, (int)fd, SOCKSHIM_HOW_FORK, parent, (int)fd,
			    r && r == e.ledger);
		ledger_step(m, e.ledger, SOCKSHIM_STEP_FORK, parent, (int)fd, child, 0);
	}
	if (!use_reservations)
		return;
	/* Reserved for descriptors we do not have: closed in the parent by
	 * another thread before the fork. */
	for (i = 0; i < n_reserved; i++) {
		struct fd_entry e;

		if (!fdtab_get(reserved[i].fd, &e) || e.ledger != reserved[i].ledger)
			ledger_reserve(m, reserved[i].ledger, -1);
	}
	n_reserved = 0;
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
		reserve_for_child();
	errno = saved;
}

/* The child's only thread: refresh the cached identity, log the fork,
 * claim the references. The child logs it, before anything else it
 * does: its fork record precedes every record of its own (the parent,
 * logging after fork returned, could come after the child's first). */
static void in_fork_child(void)
{
	pid_t child = getpid();

	__atomic_store_n(&shim_pid, child, __ATOMIC_RELAXED);
	shim_forget_tid();
	if (shim_inert)
		return;
	log_fork(parent_pid, parent_tid, child);
	/* Our own entry first: the holds below are listed in it. */
	procs_start(child, procs_start_ticks(), 1);
	fork_child_holds(parent_pid, child, 1);
}

int fork_install(void)
{
	return pthread_atfork(before_fork, NULL, in_fork_child);
}

static pid_t shim_fork(void)
{
	pid_t pid;
	int err;

	pid = real.fork();
	err = errno;
	if (pid == 0)
		return 0; /* the child handler did the child's part */
	if (!shim_inert && pid < 0)
		unreserve(); /* no child: give its references back */
	n_reserved = 0;
	errno = err;
	return pid;
}

SHIM_EXPORT pid_t fork(void)
{
	real_ensure();
	return shim_fork();
}
