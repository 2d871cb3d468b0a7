/* The shim's life in a process: start-up (configuration, descriptor table,
 * session, inherited sockets, what exec left of our holders) and exit.
 * Any failure here degrades to pass-through with one warning; nothing here
 * may abort, exit or hang the host. */
#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "emit.h"
#include "fork.h"
#include "ledger.h"
#include "listeners.h"
#include "log.h"
#include "procs.h"
#include "real.h"
#include "sigbus.h"
#include "sigwatch.h"
#include "sockinfo.h"
#include "sockshim/config.h"
#include "track.h"
#include "usermem.h"

/* The descriptor table's size: a million (128 MiB of address space; only
 * touched pages cost memory), a power of two (fdtab_mask). */
#define FDTAB_MAX (1u << 20)
_Static_assert((FDTAB_MAX & (FDTAB_MAX - 1)) == 0, "fdtab_init takes a power of two");

/* getenv with the signature config_parse wants. */
static const char *env_lookup(const char *name)
{
	return getenv(name);
}


/* The table covers every descriptor the kernel can give (nr_open is 2^20
 * unless raised): a limit lowered before exec must not leave inherited
 * descriptors above it, untracked, or a listener's accepts uncounted.
 * Only the pages of descriptors in use are ever touched. */
static uint32_t fdtab_size(void)
{
	return FDTAB_MAX;
}

static void attach_session(const struct shim_config *c)
{
	struct seg_map m;
	char why[256] = "";
	int rc;

	/* Before the first access: a segment that shrinks (even while we
	 * read its header) must cost the mapping, never the process. */
	rc = sigbus_guard_install();
	if (rc < 0) {
		shim_warn("cannot take over SIGBUS (%s); running without an event log, "
			  "since a damaged segment could then kill this process", strerror(-rc));
		return;
	}
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
		sigbus_guard_remove();
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
	shim_seg.listeners_offset = m.listeners_offset;
	shim_seg.procs_offset = m.procs_offset;
	shim_seg.pool_offset = m.pool_offset;
	shim_seg.keys_offset = m.keys_offset;
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
		track_adopt_inherited((int)fd, &e);
		emit_simple(SOCKSHIM_EV_INHERIT, (int)fd, &e, 0, 0);
	}
	closedir(d);
}

/* A normal exit drops every reference we hold (the kernel closes them). */
static void on_exit_image(void)
{
	track_process_exit();
}

__attribute__((constructor)) static void on_start(void)
{
	struct shim_config c;
	char warn[512];
	int saved = errno, rc, search;

	real_bind();
	usermem_start();
	config_parse(&c, env_lookup, warn, sizeof(warn));
	log_set_level(c.log_level);
	accept_mode = c.accept_mode;
	if (warn[0])
		shim_warn("%s", warn);
	/* The images this one execs inherit the name in use, valid: they
	 * join the same session without saying the same warning again. */
	if (c.session_mapped)
		setenv("SOCKSHIM_SESSION", c.session, 1);
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
	/* The accept lock's waiters sleep with signals open and must know
	 * whether a handler of the program ran meanwhile. */
	if (accept_mode == SOCKSHIM_ACCEPT_SERIALIZE && shim_seg_live())
		sigwatch_start();
	rc = fork_install();
	if (rc)
		shim_warn("pthread_atfork failed (%s); forks are not logged", strerror(rc));
	ledger_set_comm();
	/* Our entry in the process table, in constant time: what the image
	 * before exec held and exec closed, or what a dead process with our
	 * pid left behind, is released from its list, not by a ledger scan. */
	search = procs_start(shim_getpid(), procs_start_ticks(), 0);
	discover_inherited();
	if (search) /* it held more than its entry lists */
		ledger_forget_stale(shim_session(), shim_getpid());
	atexit(on_exit_image);
out:
	errno = saved;
}
