/* `sockshim closewait`'s evidence: one sock_diag dump, one /proc scan and
 * one ledger snapshot, loaded side by side and joined by inode (uthash).
 * Gathers and joins only: the verdict is closewait_verdict.c's, the
 * printing cmd_closewait.c's. No per-socket system call. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "uthash_int.h"

#include "closewait.h"
#include "noshim.h"
#include "reclaim.h"
#include "side_job.h"
#include "sockshim/clock.h"

/* A process the ledger knows as a holder: its sockets are the session's. */
struct session_pid {
	pid_t pid;
	UT_hash_handle hh;
};

const struct ledger_sock *cw_ledger_find(const struct cw_ctx *c, uint64_t inode)
{
	const struct ledger_sock *ls = ledger_find(&c->snap, inode);

	return ls ? ls : ledger_find(&c->snap_released, inode);
}

/* The ledger's entry for K, unless it is about another socket that once
 * had the same inode: then its peer disagrees with the kernel's. */
const struct ledger_sock *cw_ledger_for(const struct cw_ctx *c, const struct sockdiag_sock *k)
{
	const struct ledger_sock *ls;

	if (!k->inode)
		return NULL;
	ls = cw_ledger_find(c, k->inode);
	if (!ls)
		return NULL;
	return ledger_sock_is_peer(ls, k->family, k->dst, k->dport) ? ls : NULL;
}

const struct sockdiag_sock *cw_find_listener(const struct cw_ctx *c, const struct sockdiag_sock *k)
{
	const struct sockdiag_sock *best = NULL, *l;
	size_t i;

	for (i = 0; i < c->nlisteners; i++) {
		l = c->listeners[i];
		if (l->sport != k->sport || !sockdiag_addr_covers(l->family, l->src, k->family, k->src))
			continue;
		/* A listener on the exact address wins over a wildcard one. */
		if (!best || memcmp(l->src, best->src, 16) > 0)
			best = l;
	}
	return best;
}

static int is_tcp(const struct ledger_sock *ls)
{
	return ls->socktype == SOCK_STREAM && (ls->family == AF_INET || ls->family == AF_INET6);
}

/* Has a dump listed a socket with INODE? */
static int kernel_lists(const struct cw_ctx *c, uint64_t inode)
{
	return kindex_find(&c->kidx, inode) != NULL;
}

/* A TCP socket the ledger believes held that no dump listed. */
int cw_kernel_forgot(const struct cw_ctx *c, const struct ledger_sock *ls)
{
	return ls->refs > 0 && !ls->released_ns && is_tcp(ls) && !kernel_lists(c, ls->inode);
}

/* Index the sockets of L by inode, and remember the listeners of the
 * first list (the one with CLOSE_WAIT and LISTEN). */
static int index_kernel(struct cw_ctx *c, const struct sockdiag_list *l)
{
	size_t i;

	if (l == &c->kern) {
		c->listeners = calloc(l->n ? l->n : 1, sizeof(const struct sockdiag_sock *));
		if (!c->listeners)
			return -ENOMEM;
		for (i = 0; i < l->n; i++)
			if (l->v[i].state == SOCKDIAG_LISTEN)
				c->listeners[c->nlisteners++] = &l->v[i];
	}
	return kindex_add(&c->kidx, l);
}

/* The processes the ledger names as holders: the session's. */
int cw_index_session_pids(struct cw_ctx *c)
{
	size_t i, n = 0;
	unsigned k;

	for (i = 0; i < c->snap.n; i++)
		n += c->snap.v[i].nholders;
	c->pid_pool = calloc(n ? n : 1, sizeof(*c->pid_pool));
	if (!c->pid_pool)
		return -ENOMEM;
	n = 0;
	for (i = 0; i < c->snap.n; i++) {
		const struct ledger_sock *ls = &c->snap.v[i];

		for (k = 0; k < ls->nholders; k++) {
			struct session_pid *p;

			HASH_FIND(hh, c->pids, &ls->holders[k].pid, sizeof(pid_t), p);
			if (p)
				continue;
			p = &c->pid_pool[n++];
			p->pid = ls->holders[k].pid;
			HASH_ADD(hh, c->pids, pid, sizeof(pid_t), p);
		}
	}
	return 0;
}

static int held_by_session(const struct cw_ctx *c, uint64_t inode)
{
	const struct procfd_ref *refs;
	size_t n, i;

	refs = procfd_refs(c->pf, inode, &n);
	for (i = 0; i < n; i++) {
		struct session_pid *p;

		HASH_FIND(hh, c->pids, &refs[i].pid, sizeof(pid_t), p);
		if (p)
			return 1;
	}
	return 0;
}

/* In the ledger, queued on one of its listeners, or held by one of its
 * processes. */
int cw_in_session(const struct cw_ctx *c, const struct sockdiag_sock *k,
		  const struct ledger_sock *ls, const struct sockdiag_sock *listener)
{
	if (ls)
		return 1;
	if (!k->inode)
		return listener && (cw_ledger_find(c, listener->inode) ||
				    held_by_session(c, listener->inode));
	return held_by_session(c, k->inode);
}

/* The entries the ledger believes held: copied while the kernel answers. */
static int keep_held(void *arg, uint64_t inode, int32_t refs)
{
	(void)arg;
	(void)inode;
	return refs > 0;
}

/* The released entries whose socket the kernel still lists (a holder the
 * shim did not see). */
static int keep_released_listed(void *arg, uint64_t inode, int32_t refs)
{
	return refs <= 0 && kernel_lists(arg, inode);
}

/* Does the ledger hold TCP sockets the first dump did not list? */
static int need_more(const struct cw_ctx *c)
{
	size_t i;

	for (i = 0; i < c->snap.n; i++)
		if (cw_kernel_forgot(c, &c->snap.v[i]))
			return 1;
	return 0;
}

struct copy_job {
	struct side_job side; /* first */
	const struct seg_map *m;
	struct ledger_snap *snap;
};

static void *copy_held(void *arg)
{
	struct copy_job *j = arg;

	j->side.rc = ledger_snapshot_some(j->m, j->snap, keep_held, NULL);
	return NULL;
}

static int copy_error(const struct cw_ctx *c, int rc)
{
	fprintf(stderr, "sockshim: cannot copy the ledger of session \"%s\": %s\n", c->session,
		strerror(-rc));
	return rc;
}

/* Three parts at once, none needing another: /proc is scanned (a readlink
 * per descriptor), the ledger's held entries are copied, and the kernel
 * lists the sockets in CLOSE_WAIT and the listeners (for UNACCEPTED),
 * with tcp_info. Then the released entries the kernel still lists, and
 * only if the ledger holds sockets the kernel did not list, the kernel's
 * other sockets, to tell which are gone. */
/* What the shim could not see closed is reclaimed (reclaim.c) from the
 * evidence loaded: the held entries, /proc, the dumps (of some states
 * each: the candidates are asked about again). Then the held entries
 * are copied again. */
static int reclaim_held(struct cw_ctx *c, struct seg_map *m, uint64_t since)
{
	struct reclaim_kernel look = {.since_ns = since, .lists = {&c->kern, &c->kern_more}};
	int rc;

	if (reclaim_run(c->session, m, &c->snap, c->pf, &look) <= 0)
		return 0;
	ledger_snap_free(&c->snap);
	rc = ledger_snapshot_some(m, &c->snap, keep_held, NULL);
	if (rc)
		copy_error(c, rc);
	return rc;
}

int cw_load(struct cw_ctx *c, struct seg_map *m)
{
	struct procfd_job scan;
	struct copy_job copy = {.m = m, .snap = &c->snap};
	uint64_t since = sockshim_clock_ns(CLOCK_MONOTONIC);
	int rc, scan_rc;

	procfd_job_start(&scan);
	side_start(&copy.side, copy_held);
	rc = sockdiag_dump(SOCKDIAG_F(SOCKDIAG_CLOSE_WAIT) | SOCKDIAG_F(SOCKDIAG_LISTEN), 1,
			   &c->kern);
	if (rc) {
		sockdiag_say_error(rc);
		goto out;
	}
	rc = index_kernel(c, &c->kern);
	if (rc)
		goto nomem;
	rc = ledger_snapshot_some(m, &c->snap_released, keep_released_listed, c);
	if (rc) {
		copy_error(c, rc);
		goto out;
	}
	side_finish(&copy.side);
	rc = copy.side.rc;
	if (rc) {
		copy_error(c, rc);
		goto out;
	}
	if (need_more(c)) {
		rc = sockdiag_dump(SOCKDIAG_WITH_INODE & ~(SOCKDIAG_F(SOCKDIAG_CLOSE_WAIT) |
							   SOCKDIAG_F(SOCKDIAG_LISTEN)),
				   0, &c->kern_more);
		if (rc) {
			sockdiag_say_error(rc);
			goto out;
		}
		rc = index_kernel(c, &c->kern_more);
		if (rc)
			goto nomem;
	}
	rc = symbolizer_new(&c->sym);
	if (rc)
		goto nomem;
	goto out;
nomem:
	fprintf(stderr, "sockshim: out of memory\n");
out:
	side_abandon(&copy.side);
	scan_rc = procfd_job_finish(&scan, &c->pf);
	if (!rc)
		rc = scan_rc;
	if (!rc) {
		noshim_mark(c->session, m, c->pf);
		rc = reclaim_held(c, m, since);
	}
	return rc;
}

void cw_unload(struct cw_ctx *c)
{
	kindex_free(&c->kidx);
	HASH_CLEAR(hh, c->pids);
	free(c->pid_pool);
	free(c->listeners);
	symbolizer_free(c->sym);
	procfd_free(c->pf);
	sockdiag_list_free(&c->kern);
	sockdiag_list_free(&c->kern_more);
	ledger_snap_free(&c->snap);
	ledger_snap_free(&c->snap_released);
}
