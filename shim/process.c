/* The shim's life in a process: start-up (configuration, descriptor table,
 * session, inherited sockets), fork (through pthread_atfork) and exit.
 * Any failure here degrades to pass-through with one warning; nothing here
 * may abort, exit or hang the host. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/resource.h>

#include "config.h"
#include "emit.h"
#include "real.h"
#include "sockinfo.h"

/* Bounds of the descriptor table: at least the classic 1024, at most a
 * million (64 MiB of address space, only touched pages cost memory). */
#define FDTAB_MIN 1024u
#define FDTAB_MAX (1u << 20)

/* getenv with the signature config_parse wants. */
static const char *env_lookup(const char *name)
{
	return getenv(name);
}

static pid_t fork_parent_pid;
static pid_t fork_parent_tid;

static uint32_t fdtab_size(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
	    rl.rlim_max > FDTAB_MAX)
		return FDTAB_MAX;
	return rl.rlim_max < FDTAB_MIN ? FDTAB_MIN : (uint32_t)rl.rlim_max;
}

static void attach_session(const struct shim_config *c)
{
	struct seg_map m;
	char why[256] = "";
	int rc;

	rc = seg_open(c->session, 1, &m, why, sizeof(why));
	if (rc == -ENOENT) {
		rc = seg_create(c->session, c->ring_capacity, c->ledger_capacity, &m);
		if (rc == -EEXIST) /* another process won the race: join it */
			rc = seg_open(c->session, 1, &m, why, sizeof(why));
		else if (rc < 0)
			snprintf(why, sizeof(why), "cannot create " SOCKSHIM_SHM_DIR "/"
				 SOCKSHIM_SHM_PREFIX "%u.%s: %s", (unsigned)geteuid(),
				 c->session, strerror(-rc));
	}
	if (rc < 0) {
		shim_warn("session \"%s\" unusable: %s; running without an event log",
			  c->session, why);
		return;
	}
	__atomic_fetch_add(&seg_header(&m)->attaches, 1, __ATOMIC_RELAXED);
	shim_seg.size = m.size;
	shim_seg.ring_capacity = m.ring_capacity;
	shim_seg.ring_offset = m.ring_offset;
	shim_seg.ledger_capacity = m.ledger_capacity;
	shim_seg.ledger_offset = m.ledger_offset;
	shim_seg.writable = 1;
	__atomic_store_n(&shim_seg.base, m.base, __ATOMIC_RELEASE);
}

/* Sockets open before we were: inherited across exec, or passed by a
 * service manager (socket activation). */
static void discover_inherited(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int self;

	if (!d) {
		shim_debug("cannot list /proc/self/fd (%s); inherited sockets untracked",
			   strerror(errno));
		return;
	}
	self = dirfd(d);
	while ((de = readdir(d))) {
		struct fd_entry e;
		char *end;
		long fd = strtol(de->d_name, &end, 10);

		if (*end || end == de->d_name || fd == self || fd < 0 || fd > INT32_MAX)
			continue;
		if (sockinfo_describe((int)fd, &e) < 0)
			continue;
		fdtab_set((int)fd, &e);
		emit_simple(SOCKSHIM_EV_INHERIT, (int)fd, &e, 0, 0);
	}
	closedir(d);
}

static void before_fork(void)
{
	fork_parent_pid = shim_getpid();
	fork_parent_tid = shim_gettid();
}

/* The child's only thread: refresh the cached identity, log the fork. */
static void in_fork_child(void)
{
	struct sockshim_record r;
	pid_t child = getpid();

	__atomic_store_n(&shim_pid, child, __ATOMIC_RELAXED);
	shim_forget_tid();
	record_init(&r, SOCKSHIM_EV_FORK, -1, child, 0);
	r.pid = fork_parent_pid;
	r.tid = fork_parent_tid;
	r.detail.fork.child_pid = child;
	emit_record(&r);
}

static void on_exit_image(void)
{
	if (!shim_inert)
		emit_simple(SOCKSHIM_EV_EXIT, -1, NULL, 0, 0);
}

__attribute__((constructor)) static void on_start(void)
{
	struct shim_config c;
	char warn[512];
	int saved = errno, rc;

	real_bind();
	config_parse(&c, env_lookup, warn, sizeof(warn));
	log_set_level(c.log_level);
	if (warn[0])
		shim_warn("%s", warn);
	__atomic_store_n(&shim_pid, getpid(), __ATOMIC_RELAXED);
	if (shim_inert)
		goto out;
	rc = fdtab_init(fdtab_size());
	if (rc < 0) {
		shim_warn("cannot reserve the descriptor table: %s; passing every call through",
			  strerror(-rc));
		__atomic_store_n(&shim_inert, 1, __ATOMIC_RELAXED);
		goto out;
	}
	attach_session(&c);
	rc = pthread_atfork(before_fork, NULL, in_fork_child);
	if (rc)
		shim_warn("pthread_atfork failed (%s); forks are not logged", strerror(rc));
	discover_inherited();
	atexit(on_exit_image);
out:
	errno = saved;
}
