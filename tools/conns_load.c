/* `sockshim conns`' evidence: a sock_diag dump of every TCP state, one
 * ledger snapshot and one /proc scan (on a thread of its own), joined
 * into one item per connection: a socket with a descriptor by its inode,
 * one without (in TIME_WAIT, orphaned, or queued) by its four addresses
 * or its listener, then the ledger's connections the kernel forgot.
 * Gathers and joins only; cmd_conns.c prints. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bigmem.h"
#include "conns.h"
#include "noshim.h"
#include "reclaim.h"
#include "side_job.h"
#include "sockshim/clock.h"

#define FIN_TIMEOUT_PATH "/proc/sys/net/ipv4/tcp_fin_timeout"

static long read_fin_timeout(void)
{
	char text[32];
	long v = -1;
	ssize_t n;
	int fd;

	fd = open(FIN_TIMEOUT_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n > 0) {
		text[n] = 0;
		if (sscanf(text, "%ld", &v) != 1)
			v = -1;
	}
	return v;
}

static int is_tcp(const struct ledger_sock *ls)
{
	return ls->socktype == SOCK_STREAM && (ls->family == AF_INET || ls->family == AF_INET6);
}

/* The ledger's entry for K: by inode, unless it is about another socket
 * that once had that inode (its peer disagrees); without an inode, by the
 * four addresses. */
static const struct ledger_sock *entry_for(const struct conns_ctx *c, const struct sockdiag_sock *k)
{
	const struct ledger_sock *ls;

	if (!k->inode)
		return tw_match(&c->tuples, k);
	ls = ledger_find(&c->snap, k->inode);
	if (!ls || !is_tcp(ls))
		return NULL;
	return ledger_sock_is_peer(ls, k->family, k->dst, k->dport) ? ls : NULL;
}

/* The session's listener (held, in the ledger) whose accept queue the
 * socket K without an inode waits in, or NULL. */
static const struct ledger_sock *queued_on(const struct conns_ctx *c, const struct sockdiag_sock *k)
{
	size_t i;

	if (k->inode || (k->state != SOCKDIAG_ESTABLISHED && k->state != SOCKDIAG_CLOSE_WAIT &&
			 k->state != SOCKDIAG_SYN_RECV && k->state != SOCKDIAG_NEW_SYN_RECV))
		return NULL;
	for (i = 0; i < c->snap.n; i++) {
		const struct ledger_sock *l = &c->snap.v[i];

		if ((l->flags & SOCKSHIM_FLAG_LISTENER) && l->refs > 0 && is_tcp(l) &&
		    l->local_port == k->sport &&
		    sockdiag_addr_covers(l->family, l->local_ip, k->family, k->src))
			return l;
	}
	return NULL;
}

/* The judgements on IT, once its state and entry are known. */
static void judge(const struct conns_ctx *c, struct conn_item *it)
{
	const struct ledger_sock *ls = it->ls;
	struct conn_facts facts;
	uint64_t end;

	it->closer = conn_closer(it->state, ls);
	it->local_close_ns = ls ? conn_local_close_ns(ls) : 0;
	it->fin_age_ns = -1;
	if ((it->state == SOCKDIAG_FIN_WAIT1 || it->state == SOCKDIAG_FIN_WAIT2 ||
	     it->state == SOCKDIAG_LAST_ACK) &&
	    it->local_close_ns && it->local_close_ns <= c->now_ns)
		it->fin_age_ns = (int64_t)(c->now_ns - it->local_close_ns);
	facts.state = it->state;
	facts.server = ls && ls->born == SOCKSHIM_BORN_ACCEPT;
	facts.held = it->k && it->k->inode;
	facts.fin_age_ns = it->fin_age_ns;
	facts.fin_timeout_s = c->fin_timeout_s;
	facts.shut_by_other = ls && ls->shut.ns && ls->shut.nothers > 0 && ls->refs > 0;
	it->anomaly = conn_anomaly(&facts);
	it->lifetime_ns = -1;
	end = ls && ls->released_ns ? ls->released_ns : c->now_ns;
	if (ls && ls->born_ns && ls->born_ns <= end)
		it->lifetime_ns = (int64_t)(end - ls->born_ns);
}

/* Does the ledger remember LS as a connection the kernel forgot, to be
 * shown? */
static int forgotten_shown(const struct conns_ctx *c, const struct ledger_sock *ls)
{
	if (!is_tcp(ls) || !(ls->flags & (SOCKSHIM_FLAG_PEER_KNOWN | SOCKSHIM_FLAG_LISTENER)))
		return 0;
	if (c->o->all || !ls->released_ns)
		return 1;
	return ls->released_ns <= c->now_ns && c->now_ns - ls->released_ns <= CONNS_RECENT_NS;
}

static int join(struct conns_ctx *c)
{
	unsigned char *seen;
	size_t i;

	c->items = big_calloc(c->kern.n + c->snap.n + 1, sizeof(*c->items));
	seen = calloc(c->snap.n + 1, 1);
	if (!c->items || !seen) {
		free(seen);
		return -ENOMEM;
	}
	/* An item slot may hold what a skipped socket left there: each is
	 * cleared before it is filled. */
	for (i = 0; i < c->kern.n; i++) {
		struct conn_item *it = &c->items[c->n];

		/* A slot a skipped socket wrote is the next one's: start clean. */
		memset(it, 0, sizeof(*it));
		it->k = &c->kern.v[i];
		it->ls = entry_for(c, it->k);
		if (!it->ls)
			it->listener = queued_on(c, it->k);
		if (!it->ls && !it->listener)
			continue;
		if (it->ls)
			seen[it->ls - c->snap.v] = 1;
		it->state = it->k->state;
		judge(c, it);
		c->n++;
	}
	c->n_kernel = c->n;
	for (i = 0; i < c->snap.n; i++) {
		struct conn_item *it = &c->items[c->n];

		if (seen[i] || !forgotten_shown(c, &c->snap.v[i]))
			continue;
		memset(it, 0, sizeof(*it));
		it->ls = &c->snap.v[i];
		it->state = CONN_GONE;
		judge(c, it);
		c->n++;
	}
	free(seen);
	return 0;
}

/* What the first dump (of every state but TIME_WAIT) leaves open, judged
 * by the ledger. */
struct first_dump {
	/* A connection of the ledger is not listed with its inode: it may be
	 * in TIME_WAIT (no inode, not dumped yet), orphaned, gone, or missed. */
	int unlisted_conn;
	/* The dump may have missed something of the session's: a connection
	 * or a held listener of the ledger is not listed, or a listener of
	 * the session has connections waiting in its queue (they have no
	 * inode, the ledger does not know them). Else a second dump could
	 * add only others' sockets, which conns does not show. */
	int unsettled;
};

static int check_first_dump(const struct conns_ctx *c, struct first_dump *f)
{
	unsigned char *listed = calloc(c->snap.n + 1, 1);
	int queued = 0, unlisted_listener = 0;
	size_t i;

	memset(f, 0, sizeof(*f));
	if (!listed)
		return -ENOMEM;
	for (i = 0; i < c->kern.n; i++) {
		const struct sockdiag_sock *k = &c->kern.v[i];
		const struct ledger_sock *ls;

		if (!k->inode) {
			queued |= queued_on(c, k) != NULL;
			continue;
		}
		ls = entry_for(c, k);
		if (!ls)
			continue;
		listed[ls - c->snap.v] = 1;
		queued |= k->state == SOCKDIAG_LISTEN && k->rqueue > 0;
	}
	for (i = 0; i < c->snap.n; i++) {
		const struct ledger_sock *ls = &c->snap.v[i];

		if (listed[i] || !is_tcp(ls))
			continue;
		if (ls->flags & SOCKSHIM_FLAG_PEER_KNOWN)
			f->unlisted_conn = 1;
		else if ((ls->flags & SOCKSHIM_FLAG_LISTENER) && ls->refs > 0)
			unlisted_listener = 1;
	}
	free(listed);
	f->unsettled = f->unlisted_conn || unlisted_listener || queued;
	return 0;
}

/* The dump first, then the ledger: every socket the kernel lists was in
 * the ledger by then, if the session saw it at all. Without tcp_info:
 * nothing in the report comes from it. A second dump (sockdiag.h: a dump
 * of a changing table can miss a socket) only when the first may have
 * missed something of the session's (struct first_dump). The host's
 * TIME_WAIT sockets (tens of thousands on a busy one, most of them not
 * the session's) are dumped, twice, only when a connection of the ledger
 * may be one of them, after the ledger: a TIME_WAIT socket whose
 * connection the ledger does not hold yet is not the session's anyway.
 * /proc is scanned meanwhile. */
int conns_load(struct conns_ctx *c, struct seg_map *m)
{
	struct reclaim_kernel look = {.since_ns = sockshim_clock_ns(CLOCK_MONOTONIC),
				      .lists = {&c->kern}};
	const uint32_t not_tw = ((1u << SOCKDIAG_STATE_COUNT) - 2) & ~SOCKDIAG_F(SOCKDIAG_TIME_WAIT);
	struct procfd_job scan;
	struct first_dump first;
	int rc, scan_rc;

	procfd_job_start(&scan);
	rc = sockdiag_dump_join(not_tw, 0, &c->kern); /* one dump, each socket once */
	if (rc) {
		sockdiag_say_error(rc);
		goto out;
	}
	rc = ledger_snapshot(m, &c->snap);
	if (rc) {
		fprintf(stderr, "sockshim: cannot copy the ledger of session \"%s\": %s\n",
			c->session, strerror(-rc));
		goto out;
	}
	rc = check_first_dump(c, &first);
	if (rc) {
		fprintf(stderr, "sockshim: out of memory\n");
		goto out;
	}
	if (first.unsettled)
		rc = sockdiag_dump_join(not_tw, 0, &c->kern);
	if (!rc && first.unlisted_conn)
		rc = sockdiag_dump_settled(SOCKDIAG_F(SOCKDIAG_TIME_WAIT), 0, &c->kern);
	if (rc) {
		sockdiag_say_error(rc);
		goto out;
	}
	sockdiag_sort(&c->kern);
	/* What the shim could not see closed is released first (reclaim.c:
	 * it needs /proc, and two looks at every state a socket with a
	 * descriptor can be in: the second dump above, or its own), then the
	 * ledger copied again. */
	rc = procfd_job_finish(&scan, &c->pf);
	if (rc)
		goto out;
	noshim_mark(c->session, m, c->pf);
	look.looks = first.unsettled ? 2 : 1;
	if (reclaim_run(c->session, m, &c->snap, c->pf, &look) > 0) {
		ledger_snap_free(&c->snap);
		rc = ledger_snapshot(m, &c->snap);
		if (rc) {
			fprintf(stderr, "sockshim: cannot copy the ledger of session \"%s\": %s\n",
				c->session, strerror(-rc));
			goto out;
		}
	}
	c->now_ns = sockshim_clock_ns(CLOCK_MONOTONIC);
	c->fin_timeout_s = read_fin_timeout();
	rc = symbolizer_new(&c->sym);
	if (!rc)
		rc = tw_index(&c->tuples, &c->snap);
	if (!rc)
		rc = join(c);
	if (rc)
		fprintf(stderr, "sockshim: out of memory\n");
out:
	scan_rc = procfd_job_finish(&scan, &c->pf);
	return rc ? rc : scan_rc;
}

void conns_unload(struct conns_ctx *c)
{
	free(c->items);
	tw_model_free(&c->tuples);
	symbolizer_free(c->sym);
	procfd_free(c->pf);
	sockdiag_list_free(&c->kern);
	ledger_snap_free(&c->snap);
}
