/* Finding the session's processes whose image runs without the shim: the
 * process table's word (written by the exec wrapper) first, then /proc for
 * a process whose name changed behind the table's back. Reads only; what
 * it finds is used by the readers (reconcile.c, reclaim.c), and what /proc
 * told is recorded in the table (SOCKSHIM_NOSHIM_PROC) for the next. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "noshim.h"

/* The shared object's file name, as the loader maps it. */
#define SHIM_NAME "libsockshim.so"
/* Read in pieces; a piece keeps the end of the one before, so a name cut
 * at a piece's end is still found. */
#define MAPS_PIECE 65536

int noshim_maps_have_shim(const char *text, size_t len)
{
	return memmem(text, len, SHIM_NAME, sizeof(SHIM_NAME) - 1) != NULL;
}

/* 1 when PID maps the shim, 0 when it does not, -errno when its maps
 * cannot be read (gone, or not ours). */
static int maps_have_shim(pid_t pid)
{
	static char buf[MAPS_PIECE + sizeof(SHIM_NAME)];
	char path[64];
	size_t keep = 0;
	ssize_t n;
	int fd, found = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (!found && (n = read(fd, buf + keep, MAPS_PIECE)) > 0) {
		size_t have = keep + (size_t)n;

		found = noshim_maps_have_shim(buf, have);
		keep = have < sizeof(SHIM_NAME) - 1 ? have : sizeof(SHIM_NAME) - 1;
		memmove(buf, buf + have - keep, keep);
	}
	close(fd);
	return n < 0 && !found ? -EIO : found;
}

/* Record in session SESSION's process table that entry I (process PID,
 * started at TICKS) runs without the shim, as found from /proc: the next
 * reader need not read its maps. Only if the entry is still that
 * process's and says nothing yet. */
static void record_found(const char *session, unsigned i, pid_t pid, uint64_t ticks)
{
	struct sockshim_proc *e;
	struct seg_map w;
	uint32_t no = SOCKSHIM_NOSHIM_NO;

	if (seg_open(session, 1, &w, NULL, 0))
		return;
	e = &seg_procs(&w)[i];
	if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) == SOCKSHIM_PROC_LIVE &&
	    __atomic_load_n(&e->pid, __ATOMIC_RELAXED) == pid &&
	    __atomic_load_n(&e->start_ticks, __ATOMIC_RELAXED) == ticks)
		__atomic_compare_exchange_n(&e->noshim, &no, SOCKSHIM_NOSHIM_PROC, 0,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
	seg_unmap(&w);
}

unsigned noshim_mark(const char *session, const struct seg_map *m, struct procfd *pf)
{
	const struct sockshim_proc *t;
	unsigned i, n = 0;

	if (!m->base || !m->procs_offset || !pf)
		return 0;
	t = seg_procs(m);
	for (i = 0; i < SOCKSHIM_PROCS; i++) {
		const struct sockshim_proc *e = &t[i];
		const struct procfd_stat *st;
		char comm[sizeof(e->comm)];
		uint32_t noshim;
		pid_t pid;
		unsigned k;

		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) != SOCKSHIM_PROC_LIVE)
			continue;
		pid = __atomic_load_n(&e->pid, __ATOMIC_RELAXED);
		noshim = __atomic_load_n(&e->noshim, __ATOMIC_RELAXED);
		if (pid <= 0 || procfd_seen(pf, pid) == PROCFD_GONE)
			continue;
		st = procfd_stat(pf, pid);
		/* The entry's process, not one that got its pid since (its
		 * start time, in clock ticks, is the process's for good). */
		if (!st || st->start_ticks != __atomic_load_n(&e->start_ticks, __ATOMIC_RELAXED))
			continue;
		if (noshim != SOCKSHIM_NOSHIM_NO) {
			procfd_set_shim(pf, pid, PROCFD_SHIM_WITHOUT);
			n++;
			continue;
		}
		for (k = 0; k < sizeof(comm); k++)
			comm[k] = __atomic_load_n(&e->comm[k], __ATOMIC_RELAXED);
		if (!strncmp(comm, st->comm, sizeof(comm))) {
			procfd_set_shim(pf, pid, PROCFD_SHIM_WITH);
			continue;
		}
		/* Renamed (prctl, or an exec the shim did not see): the
		 * maps tell whether the shim is in it. */
		switch (maps_have_shim(pid)) {
		case 0:
			procfd_set_shim(pf, pid, PROCFD_SHIM_WITHOUT);
			record_found(session, i, pid, st->start_ticks);
			n++;
			break;
		case 1:
			procfd_set_shim(pf, pid, PROCFD_SHIM_WITH);
			break;
		default:
			break;
		}
	}
	return n;
}
