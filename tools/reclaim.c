/* Reclaiming what the shim could not see closed. The judging is here, on
 * the reader's copies (the ledger, /proc, the kernel's dumps); the
 * releases are the shim's (ledger_reclaim_*), with the same CAS claims,
 * so a reclaim is safe beside the shim's writers and another reclaim.
 * Nothing is released on a guess: a holder only when its process's
 * descriptor is readable and is something else, a whole socket only when
 * the kernel lists it in no dump and no descriptor in /proc refers to it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ledger.h"
#include "reclaim.h"
#include "reconcile.h"
#include "unseen.h"
#include "vfork.h"

/* The command never runs in a vfork child (emit.c asks, for the records
 * the releases write): never pending, so shim_in_vfork_child() is false. */
__thread int shim_vfork_pending;

int shim_vfork_child_check(void)
{
	return 0;
}

/* The inodes the kernel listed: an open-addressing set (0 is no inode).
 * Built and asked once per command over every socket of the host: a
 * multiply and a probe or two each, where a sort cost a tenth of the
 * command. */
struct inodes {
	uint64_t *v;
	size_t mask, n;
};

static size_t slot_of(const struct inodes *s, uint64_t inode)
{
	return (size_t)((inode * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & s->mask;
}

/* Room for N more inodes (at most half full). 0 or -ENOMEM. */
static int inodes_reserve(struct inodes *s, size_t n)
{
	size_t cap = 1024, i;
	uint64_t *old = s->v, *v;
	size_t old_cap = s->v ? s->mask + 1 : 0;

	while (cap < 2 * (s->n + n))
		cap *= 2;
	if (cap <= old_cap)
		return 0;
	v = calloc(cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->mask = cap - 1;
	for (i = 0; i < old_cap; i++) {
		size_t at;

		if (!old[i])
			continue;
		for (at = slot_of(s, old[i]); v[at]; at = (at + 1) & s->mask)
			;
		v[at] = old[i];
	}
	free(old);
	return 0;
}

static void inodes_put(struct inodes *s, uint64_t inode)
{
	size_t at;

	for (at = slot_of(s, inode); s->v[at]; at = (at + 1) & s->mask)
		if (s->v[at] == inode)
			return;
	s->v[at] = inode;
	s->n++;
}

static int inodes_add(struct inodes *s, const struct sockdiag_list *l)
{
	size_t i;
	int rc;

	if (!l || !l->n)
		return 0;
	rc = inodes_reserve(s, l->n);
	if (rc)
		return rc;
	for (i = 0; i < l->n; i++)
		if (l->v[i].inode)
			inodes_put(s, l->v[i].inode);
	return 0;
}

static int inodes_has(const struct inodes *s, uint64_t inode)
{
	size_t at;

	if (!s->v || !inode)
		return 0;
	for (at = slot_of(s, inode); s->v[at]; at = (at + 1) & s->mask)
		if (s->v[at] == inode)
			return 1;
	return 0;
}

/* The name the release's step is written under: the process's now, or
 * the last one its history gives. */
static void name_of(struct procfd *pf, const struct ledger_sock *ls, pid_t pid, char name[16])
{
	const struct procfd_stat *st = procfd_stat(pf, pid);
	const char *c = st ? st->comm : ledger_comm_of(ls, pid);

	memset(name, 0, 16);
	if (c)
		memcpy(name, c, strnlen(c, 15));
}

/* A TCP socket: the kind sock_diag lists. */
static int is_tcp(const struct ledger_sock *ls)
{
	return (ls->family == AF_INET || ls->family == AF_INET6) && ls->socktype == SOCK_STREAM;
}

/* Is holder H of LS gone from /proc: its process there, its descriptors
 * read, and its FD not the socket? Asked of the holders of a socket
 * sock_diag cannot list (not TCP), and of those whose process runs an
 * image without the shim (whatever the socket): a TCP socket the kernel
 * still has keeps the references of the shim's own processes (one in
 * flight over SCM_RIGHTS is held by no descriptor). */
static int holder_gone(const struct ledger_snap *snap, struct procfd *pf,
		       const struct ledger_sock *ls, const struct ledger_holder *h, uint64_t since)
{
	const struct procfd_stat *st;

	if (!h->since_ns || h->since_ns >= since ||
	    (is_tcp(ls) && procfd_shim(pf, h->pid) != PROCFD_SHIM_WITHOUT) ||
	    procfd_holds(pf, h->pid, h->fd, ls->inode) != 0)
		return 0;
	/* Its own process, not one that got its pid since: a dead one's
	 * holds are its end's to release (via death or exit). */
	st = procfd_stat(pf, h->pid);
	return st && !rec_started_after(snap, st, h->since_ns);
}

/* Is LS a TCP socket the kernel has freed, as far as the command's look
 * tells (KERNEL: the inodes its dumps listed)? Born before the look,
 * listed by none of the dumps, no descriptor in /proc refers to it, and
 * every holder's process was readable (or is gone). */
static int freed_by_look(struct procfd *pf, const struct ledger_sock *ls,
			 const struct inodes *kernel, uint64_t since)
{
	size_t nrefs;
	unsigned i;

	if (!is_tcp(ls) || !ls->born_ns || ls->born_ns >= since || inodes_has(kernel, ls->inode))
		return 0;
	procfd_refs(pf, ls->inode, &nrefs);
	if (nrefs)
		return 0;
	for (i = 0; i < ls->nholders; i++)
		if (procfd_seen(pf, ls->holders[i].pid) == PROCFD_FDS_DENIED ||
		    ls->holders[i].since_ns >= since)
			return 0;
	return 1;
}

/* What to do with each entry of the copy. */
enum verdict { KEEP = 0, SOME_HOLDERS, ALL_GONE, NAME_UNNAMED };

/* The descriptors /proc shows referring to LS's socket that the ledger
 * does not name, in processes of the session with the shim: into *N;
 * 1 when they are exactly the holders that did not fit (as many as its
 * holder_overflow counts: each is one of them, since the shim counts
 * every hold its processes take; a different number proves nothing). */
static int unnamed_are_overflow(const struct seg_map *m, struct procfd *pf,
				const struct ledger_sock *ls, size_t *n)
{
	const struct procfd_ref *refs;
	size_t nrefs, i;

	*n = 0;
	if (!ls->holder_overflow)
		return 0;
	refs = procfd_refs(pf, ls->inode, &nrefs);
	for (i = 0; i < nrefs; i++) {
		if (ledger_holder_of(ls, refs[i].pid, refs[i].fd))
			continue;
		if (!session_proc_listed(m, refs[i].pid) ||
		    procfd_shim(pf, refs[i].pid) == PROCFD_SHIM_WITHOUT)
			return 0; /* a holder the shim could not count */
		(*n)++;
	}
	return *n == ls->holder_overflow;
}

/* Name in W the holders of LS that did not fit, now that /proc proved
 * which they are (unnamed_are_overflow), as far as slots are free. */
static int name_unnamed(struct seg_map *w, struct procfd *pf, const struct ledger_sock *ls)
{
	const struct procfd_ref *refs;
	size_t nrefs, i;
	int n = 0;

	refs = procfd_refs(pf, ls->inode, &nrefs);
	for (i = 0; i < nrefs; i++)
		if (!ledger_holder_of(ls, refs[i].pid, refs[i].fd))
			n += ledger_name_unnamed(w, ls->slot + 1, refs[i].pid, refs[i].fd);
	return n;
}

static int open_writable(const char *session, struct seg_map *w)
{
	char why[256];
	int rc = seg_open(session, 1, w, why, sizeof(why));

	if (rc)
		fprintf(stderr, "sockshim: warning: cannot reclaim references gone from /proc in "
				"session \"%s\": %s\n",
			session, why[0] ? why : strerror(-rc));
	return rc;
}

/* Release what V says of LS in W. The references released. */
static int release(struct seg_map *w, const struct ledger_snap *snap, struct procfd *pf,
		   const struct ledger_sock *ls, enum verdict v, uint64_t since)
{
	uint32_t ref = ls->slot + 1;
	unsigned i;
	int n = 0;
	char name[16];

	if (!ledger_reclaim_begin(w, ref, ls->inode))
		return 0; /* given to another socket, or another reclaim has it */
	for (i = 0; i < ls->nholders; i++) {
		const struct ledger_holder *h = &ls->holders[i];

		if (v != ALL_GONE && !holder_gone(snap, pf, ls, h, since))
			continue;
		name_of(pf, ls, h->pid, name);
		n += ledger_reclaim_holder(w, ref, h->pid, h->fd, h->since_ns, name);
	}
	if (v == ALL_GONE)
		n += ledger_reclaim_unnamed(w, ref);
	ledger_reclaim_end(w, ref, ls->inode);
	return n;
}

int reclaim_run(const char *session, const struct seg_map *m, const struct ledger_snap *snap,
		struct procfd *pf, const struct reclaim_kernel *k)
{
	struct inodes kernel = {0}, again = {0};
	struct sockdiag_list more = {0};
	enum verdict *verdict = NULL;
	struct seg_map w;
	size_t i, nfreed = 0, nsome = 0, nunnamed = 0, n_overflow;
	unsigned j;
	int rc = 0, n = 0;

	if (!snap->n || !pf)
		return 0;
	for (j = 0; j < sizeof(k->lists) / sizeof(k->lists[0]) && !rc; j++)
		rc = inodes_add(&kernel, k->lists[j]);
	if (rc)
		goto out;
	verdict = calloc(snap->n, sizeof(*verdict));
	if (!verdict) {
		rc = -ENOMEM;
		goto out;
	}
	/* Hash lookups only: the common case, nothing to reclaim, costs no
	 * more than that. */
	for (i = 0; i < snap->n; i++) {
		const struct ledger_sock *ls = &snap->v[i];

		if (ls->refs <= 0 || ls->unsettled)
			continue;
		if (freed_by_look(pf, ls, &kernel, k->since_ns)) {
			verdict[i] = ALL_GONE;
			nfreed++;
			continue;
		}
		for (j = 0; j < ls->nholders; j++)
			if (holder_gone(snap, pf, ls, &ls->holders[j], k->since_ns)) {
				verdict[i] = SOME_HOLDERS;
				nsome++;
				break;
			}
		if (!verdict[i] && unnamed_are_overflow(m, pf, ls, &n_overflow)) {
			verdict[i] = NAME_UNNAMED;
			nunnamed++;
		}
	}
	if (nfreed && k->looks < 2) {
		/* Not two full looks yet: the kernel is asked again, all
		 * states with a descriptor, for these sockets only. */
		rc = k->looks ? sockdiag_dump(SOCKDIAG_WITH_INODE, 0, &more)
			      : sockdiag_dump_settled(SOCKDIAG_WITH_INODE, 0, &more);
		if (!rc)
			rc = inodes_add(&again, &more);
		if (rc)
			goto out;
		for (i = 0; i < snap->n; i++)
			if (verdict[i] == ALL_GONE && inodes_has(&again, snap->v[i].inode)) {
				verdict[i] = KEEP;
				nfreed--;
			}
	}
	if (!nfreed && !nsome && !nunnamed)
		goto out;
	rc = open_writable(session, &w);
	if (rc)
		goto out;
	for (i = 0; i < snap->n; i++)
		if (verdict[i] == NAME_UNNAMED)
			n += name_unnamed(&w, pf, &snap->v[i]);
		else if (verdict[i] != KEEP)
			n += release(&w, snap, pf, &snap->v[i], verdict[i], k->since_ns);
	seg_unmap(&w);
out:
	free(verdict);
	free(kernel.v);
	free(again.v);
	sockdiag_list_free(&more);
	return rc ? rc : n;
}
