/* Listeners a session's processes hold without the shim. A process is the
 * session's when its parent chain in /proc reaches the session's creator
 * (still the process that created it: it started before the segment) or
 * a process of its process table. Costs one stat read per process asked
 * about and its ancestors, a few at most: only socket holders of LISTEN
 * sockets the ledger does not know are asked about. */
#include <stdlib.h>
#include <string.h>

#include "unseen.h"

/* Parents followed at most: a tree deeper than this is not ours. */
#define DEPTH_MAX 64
#define NS_PER_SEC 1000000000ULL

/* Is PID the session's creator, the process that made the segment? Its
 * pid may have been given to another since: that one started later. */
static int is_creator(const struct seg_map *m, struct procfd *pf, pid_t pid)
{
	const struct sockshim_header *h = seg_header(m);
	const struct procfd_stat *st;
	int64_t created = h->created_boottime_ns;
	long tck = procfd_clk_tck();

	if (pid != h->creator_pid || tck <= 0 || created <= 0)
		return 0;
	st = procfd_stat(pf, pid);
	return st && st->start_ticks <= UINT64_MAX / NS_PER_SEC &&
	       st->start_ticks * NS_PER_SEC / (uint64_t)tck <=
		       (uint64_t)created + NS_PER_SEC / (uint64_t)tck;
}

int session_proc_listed(const struct seg_map *m, pid_t pid)
{
	const struct sockshim_proc *t;
	uint32_t h = sockshim_proc_hash(pid), i;

	if (!m->procs_offset)
		return 0;
	t = seg_procs(m);
	for (i = 0; i < SOCKSHIM_PROC_PROBE; i++) {
		const struct sockshim_proc *e = &t[(h + i) & (SOCKSHIM_PROCS - 1)];

		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) == SOCKSHIM_PROC_LIVE &&
		    __atomic_load_n(&e->pid, __ATOMIC_RELAXED) == pid)
			return 1;
	}
	return 0;
}

static int of_session(const struct seg_map *m, struct procfd *pf, pid_t pid)
{
	const struct procfd_stat *st;
	unsigned depth;

	for (depth = 0; depth < DEPTH_MAX && pid > 1; depth++) {
		if (session_proc_listed(m, pid) || is_creator(m, pf, pid))
			return 1;
		st = procfd_stat(pf, pid);
		if (!st)
			return 0;
		pid = st->ppid;
	}
	return 0;
}

unsigned unseen_listeners(const struct seg_map *m, struct procfd *pf,
			  const struct sockdiag_list *kern, const struct ledger_snap *snap,
			  struct fmt_buf *b)
{
	unsigned n = 0;
	size_t i, j, nrefs;

	if (!pf || !kern)
		return 0;
	for (i = 0; i < kern->n; i++) {
		const struct sockdiag_sock *k = &kern->v[i];
		const struct procfd_ref *refs;

		if (k->state != SOCKDIAG_LISTEN || !k->inode ||
		    (snap && ledger_find(snap, k->inode)))
			continue;
		refs = procfd_refs(pf, k->inode, &nrefs);
		for (j = 0; j < nrefs; j++) {
			const struct procfd_stat *st;

			if (!of_session(m, pf, refs[j].pid))
				continue;
			st = procfd_stat(pf, refs[j].pid);
			if (n++)
				ob_put(b, ", ", 2);
			ob_printable(b, st ? st->comm : "?", st ? sizeof(st->comm) : 1);
			fmt_append(b, " %d fd %d on ", (int)refs[j].pid, refs[j].fd);
			ob_addr(b, k->family, k->src, k->sport);
			break; /* a listener once, by its first holder */
		}
	}
	return n;
}
