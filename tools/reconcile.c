/* Reconciling the ledger with /proc, one socket at a time. Costs hash
 * lookups only: /proc was scanned once, and each process's stat is read
 * once by procfd whatever the number of sockets it holds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile.h"

#define NS_PER_SEC 1000000000ULL

const char *rec_source_name(int source)
{
	switch (source & (REC_LEDGER | REC_PROC)) {
	case REC_LEDGER:
		return "ledger";
	case REC_PROC:
		return "proc";
	default:
		return "ledger+proc";
	}
}

const char *rec_how_name(const struct rec_holder *h)
{
	const char *name;

	if (!(h->source & REC_LEDGER))
		return h->shim == PROCFD_SHIM_WITH ? REC_NOROOM_WORDS : "seen only in /proc";
	name = ledger_how_name(h->how);
	return name ? name : "unknown";
}

int rec_state_hung(char state)
{
	return state == 'T' || state == 't' || state == 'D';
}

static void set_comm(struct rec_holder *h, const char *comm, size_t max)
{
	size_t n = strnlen(comm, max);

	if (n >= sizeof(h->comm))
		n = sizeof(h->comm) - 1;
	memcpy(h->comm, comm, n);
	h->comm[n] = 0;
}

/* Did process PID (as /proc sees it now) start after SINCE_NS? Then the
 * pid was reused: the holder the ledger knew has gone. A process's start
 * time has clock-tick precision; allow one tick. */
int rec_started_after(const struct ledger_snap *snap, const struct procfd_stat *st,
		      uint64_t since_ns)
{
	long tck = procfd_clk_tck();
	int64_t since_boot;
	uint64_t start_ns;

	if (!snap || !since_ns || ledger_boottime(snap, since_ns, &since_boot) || since_boot < 0)
		return 0;
	if (st->start_ticks > UINT64_MAX / NS_PER_SEC)
		return 0;
	start_ns = st->start_ticks * NS_PER_SEC / (uint64_t)tck;
	return start_ns > (uint64_t)since_boot + NS_PER_SEC / (uint64_t)tck;
}

static void from_ledger(const struct ledger_snap *snap, const struct ledger_sock *ls,
			struct procfd *pf, uint64_t inode, const struct ledger_holder *lh,
			struct rec_holder *h)
{
	const struct procfd_stat *st = procfd_stat(pf, lh->pid);
	const char *comm;
	int held;

	memset(h, 0, sizeof(*h));
	h->pid = lh->pid;
	h->fd = lh->fd;
	h->how = lh->how;
	h->since_ns = lh->since_ns;
	h->source = REC_LEDGER;
	h->lh = lh;
	h->shim = procfd_shim(pf, lh->pid);
	held = procfd_holds(pf, lh->pid, lh->fd, inode);
	if (held == 1) {
		h->source |= REC_PROC;
	} else if (held == -EACCES) {
		h->unverified = 1;
	} else if (held == -ENOENT || !st) {
		h->stale = 1;
		snprintf(h->why, sizeof(h->why), "gone: process %d has exited", (int)lh->pid);
		st = NULL;
	} else if (rec_started_after(snap, st, lh->since_ns)) {
		h->stale = 1;
		snprintf(h->why, sizeof(h->why),
			 "gone: pid %d now belongs to another process (started after the "
			 "ledger's record)",
			 (int)lh->pid);
	} else {
		h->stale = 1;
		snprintf(h->why, sizeof(h->why), "gone: /proc/%d/fd/%d is not socket:[%llu]",
			 (int)lh->pid, lh->fd, (unsigned long long)inode);
	}
	/* A stale holder's name is the one it had: /proc names someone else. */
	if (st && !h->stale) {
		set_comm(h, st->comm, sizeof(st->comm));
		h->state = st->state;
	} else if ((comm = ledger_comm_of(ls, lh->pid))) {
		set_comm(h, comm, LEDGER_COMM_MAX);
	} else {
		snprintf(h->comm, sizeof(h->comm), "?");
	}
}

void rec_sock_init(struct rec_sock *rs)
{
	memset(rs, 0, sizeof(*rs));
}

void rec_sock_free(struct rec_sock *rs)
{
	free(rs->h);
	memset(rs, 0, sizeof(*rs));
}

/* Room for N holders in OUT; 0, or -ENOMEM (OUT keeps what it had). */
static int reserve(struct rec_sock *out, size_t n)
{
	struct rec_holder *h;

	if (n <= out->cap)
		return 0;
	h = realloc(out->h, n * sizeof(*h));
	if (!h)
		return -ENOMEM;
	out->h = h;
	out->cap = (unsigned)n;
	return 0;
}

void reconcile(const struct ledger_snap *snap, const struct ledger_sock *ls, struct procfd *pf,
	       uint64_t inode, struct rec_sock *out)
{
	const struct procfd_ref *refs;
	const struct procfd_stat *st;
	size_t nrefs, i;
	unsigned k;

	out->n = 0;
	out->live = 0;
	out->proc_extra = 0;
	/* Room for every holder either side knows (a listener of a big pool
	 * has hundreds); without memory, the ones left out are counted. */
	refs = procfd_refs(pf, inode, &nrefs);
	reserve(out, (ls ? ls->nholders : 0) + nrefs + REC_PROC_MAX);
	if (ls)
		for (k = 0; k < ls->nholders && out->n < out->cap; k++)
			from_ledger(snap, ls, pf, inode, &ls->holders[k], &out->h[out->n++]);
	for (i = 0; i < nrefs; i++) {
		struct rec_holder *h;

		if (ls && ledger_holder_of(ls, refs[i].pid, refs[i].fd))
			continue;
		if (out->n >= out->cap) {
			out->proc_extra++;
			continue;
		}
		h = &out->h[out->n++];
		memset(h, 0, sizeof(*h));
		h->pid = refs[i].pid;
		h->fd = refs[i].fd;
		h->how = SOCKSHIM_HOW_NONE;
		h->source = REC_PROC;
		h->shim = procfd_shim(pf, refs[i].pid);
		st = procfd_stat(pf, refs[i].pid);
		if (st) {
			set_comm(h, st->comm, sizeof(st->comm));
			h->state = st->state;
		} else {
			snprintf(h->comm, sizeof(h->comm), "?");
		}
	}
	for (k = 0; k < out->n; k++)
		if (!out->h[k].stale)
			out->live++;
	out->live += out->proc_extra;
}
