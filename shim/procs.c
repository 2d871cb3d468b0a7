/* The process table: an entry per preloaded process (pid and start time),
 * listing the sockets it holds as (ledger reference, fd) pairs. The
 * process writes its own list (threads by CAS on each slot); whoever
 * learns of its end releases what the list names: itself at exit, its
 * parent when it reaps it, the next image after exec, a new process that
 * got its pid, or the sweep (a few entries looked at by every process that
 * starts: a process gone with no reap seen, when its parent ignores
 * SIGCHLD or is not preloaded). Nothing here scans the ledger, but for a process that held
 * more than its list takes (then the count of the unlisted ones is exact,
 * and the ledger is searched for them once, at its end). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emit.h"
#include "ledger.h"
#include "procs.h"
#include "sockshim/rawio.h"

/* Entries a new process looks at for processes gone unseen: the whole
 * table after SOCKSHIM_PROCS / PROCS_SWEEP starts, some 16 kill(pid, 0)
 * (a few microseconds) a start. */
#define PROCS_SWEEP 16

/* Ours; read by every thread, cleared by the one that runs the exit. */
static struct sockshim_proc *self_entry;

static struct sockshim_proc *table(void)
{
	return shim_seg_live() && shim_seg.procs_offset ? seg_procs(&shim_seg) : NULL;
}

uint64_t procs_start_ticks(void)
{
	char buf[1024], *p;
	unsigned long long ticks = 0;
	ssize_t n;
	int fd, field;

	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = rawio_read(fd, buf, sizeof(buf) - 1);
	rawio_close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the name may hold spaces and ')' */
	/* Field 3 follows ") "; the start time is field 22. */
	for (field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
		return 0;
	return ticks;
}

/* PID's live entry, or NULL. Entries are freed in place, so the whole
 * probe window is looked at. */
static struct sockshim_proc *find(struct sockshim_proc *t, pid_t pid)
{
	uint32_t h = sockshim_proc_hash(pid), i;

	for (i = 0; i < SOCKSHIM_PROC_PROBE; i++) {
		struct sockshim_proc *e = &t[(h + i) & (SOCKSHIM_PROCS - 1)];

		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) == SOCKSHIM_PROC_LIVE &&
		    __atomic_load_n(&e->pid, __ATOMIC_RELAXED) == pid)
			return e;
	}
	return NULL;
}

static void set_comm(struct sockshim_proc *e)
{
	char name[17] = "";
	unsigned i;

	prctl(PR_GET_NAME, name, 0, 0, 0);
	for (i = 0; i < sizeof(e->comm); i++)
		__atomic_store_n(&e->comm[i], name[i], __ATOMIC_RELAXED);
}

static struct sockshim_proc *claim(struct sockshim_proc *t, pid_t pid, uint64_t ticks)
{
	uint32_t h = sockshim_proc_hash(pid), i, j;

	for (i = 0; i < SOCKSHIM_PROC_PROBE; i++) {
		struct sockshim_proc *e = &t[(h + i) & (SOCKSHIM_PROCS - 1)];
		uint32_t free_state = SOCKSHIM_PROC_FREE;

		if (!__atomic_compare_exchange_n(&e->state, &free_state, SOCKSHIM_PROC_CLAIMED, 0,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&e->pid, pid, __ATOMIC_RELAXED);
		__atomic_store_n(&e->start_ticks, ticks, __ATOMIC_RELAXED);
		__atomic_store_n(&e->held_unlisted, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&e->execs, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&e->noshim, SOCKSHIM_NOSHIM_NO, __ATOMIC_RELAXED);
		__atomic_store_n(&e->held_high, 0, __ATOMIC_RELAXED);
		for (j = 0; j < SOCKSHIM_PROC_HELD; j++)
			__atomic_store_n(&e->held[j], 0, __ATOMIC_RELAXED);
		set_comm(e);
		__atomic_store_n(&e->state, SOCKSHIM_PROC_LIVE, __ATOMIC_RELEASE);
		return e;
	}
	__atomic_fetch_add(&seg_header(&shim_seg)->procs_full, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void free_entry(struct sockshim_proc *e)
{
	__atomic_store_n(&e->state, SOCKSHIM_PROC_FREE, __ATOMIC_RELEASE);
}

/* Is our FD still the socket of ledger reference REF? */
static int still_ours(uint32_t ref, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
	       ledger_inode(shim_session(), ref) == st.st_ino;
}

/* Every hold E lists that KEEP does not keep is released VIA; 1 if E
 * also held sockets it could not list (the caller then searches the
 * ledger). KEEP may be NULL (nothing kept). */
static int release_listed(struct sockshim_proc *e, pid_t pid, int via, int (*keep)(uint32_t, int))
{
	unsigned i;

	for (i = 0; i < SOCKSHIM_PROC_HELD; i++) {
		uint64_t v = __atomic_load_n(&e->held[i], __ATOMIC_ACQUIRE);
		uint32_t ref = (uint32_t)(v >> 32);
		int fd = (int)(uint32_t)v;

		if (!v || (keep && keep(ref, fd)))
			continue;
		if (!__atomic_compare_exchange_n(&e->held[i], &v, 0, 0, __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			continue;
		ledger_forget_one(shim_session(), ref, pid, fd, via);
	}
	return __atomic_load_n(&e->held_unlisted, __ATOMIC_ACQUIRE) != 0;
}

/* The entry of our pid left by the image before exec: what exec closed
 * (close-on-exec) is released, the rest stays listed. 1 when it also had
 * unlisted holds: the caller searches the ledger for them. */
static int after_exec(struct sockshim_proc *e, pid_t pid)
{
	__atomic_fetch_add(&e->execs, 1, __ATOMIC_RELAXED);
	/* An image with the shim, whatever its exec wrapper expected. */
	__atomic_store_n(&e->noshim, SOCKSHIM_NOSHIM_NO, __ATOMIC_RELAXED);
	set_comm(e);
	return release_listed(e, pid, SOCKSHIM_CLOSE_VIA_EXEC, still_ours);
}

static void gone(struct sockshim_proc *e, pid_t pid, int via)
{
	if (release_listed(e, pid, via, NULL))
		ledger_forget_pid(shim_session(), pid, via);
	free_entry(e);
}

/* Is PID gone, not even a zombie? (A zombie's holds go when it is
 * reaped.) errno is left as it was. */
static int process_gone(pid_t pid)
{
	int saved = errno, gone = kill(pid, 0) < 0 && errno == ESRCH;

	errno = saved;
	return gone;
}

/* Look at the next N entries of the session's sweep (the header's
 * procs_sweep_next, shared by every process that starts, so that the
 * starts go round the whole table together): an entry whose process is
 * gone is released via death, taken first (LIVE -> CLAIMED) so that no one
 * else releases it twice. A kill(pid, 0) an entry. */
static void sweep(struct sockshim_proc *t, pid_t self, unsigned n)
{
	uint64_t cursor = __atomic_fetch_add(&seg_header(&shim_seg)->procs_sweep_next, n,
					     __ATOMIC_RELAXED);
	unsigned k;

	for (k = 0; k < n; k++) {
		struct sockshim_proc *e = &t[(cursor + k) & (SOCKSHIM_PROCS - 1)];
		uint32_t live = SOCKSHIM_PROC_LIVE;
		pid_t pid;

		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) != SOCKSHIM_PROC_LIVE)
			continue;
		pid = __atomic_load_n(&e->pid, __ATOMIC_RELAXED);
		if (pid <= 0 || pid == self || !process_gone(pid) ||
		    !__atomic_compare_exchange_n(&e->state, &live, SOCKSHIM_PROC_CLAIMED, 0,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			continue;
		/* Taken: its pid cannot change now (claim() needs it FREE). */
		if (__atomic_load_n(&e->pid, __ATOMIC_RELAXED) == pid)
			gone(e, pid, SOCKSHIM_CLOSE_VIA_DEATH);
		else
			free_entry(e);
		__atomic_fetch_add(&seg_header(&shim_seg)->procs_reaped, 1, __ATOMIC_RELAXED);
	}
}

int procs_start(pid_t pid, uint64_t ticks, int forked)
{
	struct sockshim_proc *t = table(), *e;
	int search = 0;

	__atomic_store_n(&self_entry, NULL, __ATOMIC_RELEASE);
	if (!t)
		return 0;
	e = find(t, pid);
	if (e && !forked) {
		uint64_t was = __atomic_load_n(&e->start_ticks, __ATOMIC_RELAXED);

		/* The same process, exec'ed: its pid and start time stay. */
		if (was == ticks || !was || !ticks) {
			if (!was)
				__atomic_store_n(&e->start_ticks, ticks, __ATOMIC_RELAXED);
			search = after_exec(e, pid);
			__atomic_store_n(&self_entry, e, __ATOMIC_RELEASE);
			return search;
		}
	}
	/* A process that had our pid died without its end being seen (its
	 * parent is not preloaded, or ignores SIGCHLD). */
	if (e)
		gone(e, pid, SOCKSHIM_CLOSE_VIA_DEATH);
	__atomic_store_n(&self_entry, claim(t, pid, ticks), __ATOMIC_RELEASE);
	sweep(t, pid, PROCS_SWEEP);
	return 0;
}

static struct sockshim_proc *mine(pid_t pid)
{
	struct sockshim_proc *e = __atomic_load_n(&self_entry, __ATOMIC_ACQUIRE);

	/* A vfork child runs on its parent's memory: its holds are not
	 * the parent's list's. */
	return e && __atomic_load_n(&e->pid, __ATOMIC_RELAXED) == pid && shim_seg_live() ? e : NULL;
}

/* How many of E's held[] slots our own scans look at: those below
 * held_high (a process holding a few sockets at a time scans a few, not
 * SOCKSHIM_PROC_HELD). Acquire: a hold listed in a slot is seen with
 * the bound that covers it, by whoever learned of the hold. */
static unsigned held_bound(struct sockshim_proc *e)
{
	uint32_t high = __atomic_load_n(&e->held_high, __ATOMIC_ACQUIRE);

	return high < SOCKSHIM_PROC_HELD ? high : SOCKSHIM_PROC_HELD;
}

/* Slot I of E is about to be used: held_high covers it from now on. */
static void raise_held_high(struct sockshim_proc *e, unsigned i)
{
	uint32_t high = __atomic_load_n(&e->held_high, __ATOMIC_RELAXED);

	while (high <= i && !__atomic_compare_exchange_n(&e->held_high, &high, i + 1, 1,
							 __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
	}
}

void procs_held(uint32_t ref, pid_t pid, int fd)
{
	struct sockshim_proc *e = mine(pid);
	uint64_t v = ((uint64_t)ref << 32) | (uint32_t)fd;
	unsigned i, high;

	if (!e || !ref)
		return;
	high = held_bound(e);
	/* Seen again (exec re-discovers what survived it): listed once. */
	for (i = 0; i < high; i++)
		if (__atomic_load_n(&e->held[i], __ATOMIC_RELAXED) == v)
			return;
	/* A CAS (a locked instruction) only where a slot reads free: another
	 * thread may take it first, then the next one. */
	for (i = 0; i < SOCKSHIM_PROC_HELD; i++) {
		uint64_t none = 0;

		if (__atomic_load_n(&e->held[i], __ATOMIC_RELAXED))
			continue;
		if (i >= high)
			raise_held_high(e, i);
		if (__atomic_compare_exchange_n(&e->held[i], &none, v, 0, __ATOMIC_RELEASE,
						__ATOMIC_RELAXED))
			return;
	}
	__atomic_fetch_add(&e->held_unlisted, 1, __ATOMIC_RELAXED);
}

void procs_dropped(uint32_t ref, pid_t pid, int fd)
{
	struct sockshim_proc *e = mine(pid);
	uint64_t v = ((uint64_t)ref << 32) | (uint32_t)fd;
	uint32_t n;
	unsigned i, high;

	if (!e || !ref)
		return;
	for (i = 0, high = held_bound(e); i < high; i++) {
		uint64_t want = v;

		/* A CAS (a locked instruction) only where the hold is listed. */
		if (__atomic_load_n(&e->held[i], __ATOMIC_RELAXED) == v &&
		    __atomic_compare_exchange_n(&e->held[i], &want, 0, 0, __ATOMIC_RELEASE,
						__ATOMIC_RELAXED))
			return;
	}
	/* Not listed: one of the unlisted ones. */
	n = __atomic_load_n(&e->held_unlisted, __ATOMIC_RELAXED);
	while (n && !__atomic_compare_exchange_n(&e->held_unlisted, &n, n - 1, 1, __ATOMIC_RELAXED,
						 __ATOMIC_RELAXED)) {
	}
}

int procs_take_hold(struct seg_map *m, pid_t pid, uint32_t ref, int fd)
{
	struct sockshim_proc *e;
	uint64_t v = ((uint64_t)ref << 32) | (uint32_t)fd;
	uint32_t n;
	unsigned i;

	if (!seg_map_live(m) || !m->procs_offset || pid <= 0)
		return 1;
	e = find(seg_procs(m), pid);
	if (!e)
		return 1; /* not listed anywhere (the table was full) */
	for (i = 0; i < SOCKSHIM_PROC_HELD; i++) {
		uint64_t want = v;

		if (__atomic_load_n(&e->held[i], __ATOMIC_ACQUIRE) != v)
			continue;
		return __atomic_compare_exchange_n(&e->held[i], &want, 0, 0, __ATOMIC_ACQ_REL,
						   __ATOMIC_RELAXED);
	}
	/* Not listed: one of the unlisted ones, whose count stays exact. */
	n = __atomic_load_n(&e->held_unlisted, __ATOMIC_RELAXED);
	while (n && !__atomic_compare_exchange_n(&e->held_unlisted, &n, n - 1, 1, __ATOMIC_RELAXED,
						 __ATOMIC_RELAXED)) {
	}
	return 1;
}

void procs_gone(pid_t pid, int via)
{
	struct sockshim_proc *t = table(), *e;

	if (!t || pid <= 0)
		return;
	e = find(t, pid);
	if (!e || e == __atomic_load_n(&self_entry, __ATOMIC_ACQUIRE))
		return;
	gone(e, pid, via);
	__atomic_fetch_add(&seg_header(&shim_seg)->procs_reaped, 1, __ATOMIC_RELAXED);
}

void procs_image_noshim(pid_t pid, int noshim)
{
	struct sockshim_proc *t = table(), *e;

	/* By pid, not our cached entry: a vfork child (another pid) finds
	 * none and touches nothing. */
	e = t && pid > 0 ? find(t, pid) : NULL;
	if (e)
		__atomic_store_n(&e->noshim, noshim ? SOCKSHIM_NOSHIM_EXEC : SOCKSHIM_NOSHIM_NO,
				 __ATOMIC_RELEASE);
}

void procs_exit(pid_t pid)
{
	/* A vfork child (PID not the entry's) touches nothing: its memory
	 * is its parent's. */
	struct sockshim_proc *e = mine(pid);

	if (!e)
		return;
	__atomic_store_n(&self_entry, NULL, __ATOMIC_RELEASE);
	free_entry(e);
}
