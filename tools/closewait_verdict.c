/* closewait's verdict, one socket at a time, from the evidence alone.
 * Must never read the system, the clock or a global, nor format text:
 * its unit test builds the evidence by hand (tests/unit/
 * test_closewait_verdict.c), and cmd_closewait.c renders the result. */
#include <stddef.h>

#include "closewait_verdict.h"

static const char *const verdict_names[CW_VERDICT_COUNT] = {
	[CW_UNACCEPTED] = "UNACCEPTED",
	[CW_HUNG_HOLDER] = "HUNG-HOLDER",
	[CW_EOF_READ_NOT_CLOSED] = "EOF-READ-NOT-CLOSED",
	[CW_INHERITED] = "INHERITED",
	[CW_EOF_NOT_READ] = "EOF-NOT-READ",
	[CW_UNKNOWN] = "UNKNOWN",
};

const char *cw_verdict_name(enum cw_verdict v)
{
	return (unsigned)v < CW_VERDICT_COUNT ? verdict_names[v] : NULL;
}

/* The first live holder of RS that is process PID, or -1. */
static int live_holder(const struct rec_sock *rs, pid_t pid)
{
	unsigned i;

	for (i = 0; i < rs->n; i++)
		if (!rs->h[i].stale && rs->h[i].pid == pid)
			return (int)i;
	return -1;
}

/* The first live holder that is stopped or in uninterruptible sleep: it
 * cannot close anything until it runs again. -1: none. */
static int hung_holder(const struct rec_sock *rs)
{
	unsigned i;

	for (i = 0; i < rs->n; i++)
		if (!rs->h[i].stale && rec_state_hung(rs->h[i].state))
			return (int)i;
	return -1;
}

/* Holders that came by one of these got a copy the owner's close does not
 * drop. */
static int handed_on(unsigned how)
{
	return how == SOCKSHIM_HOW_FORK || how == SOCKSHIM_HOW_EXEC || how == SOCKSHIM_HOW_SCM ||
	       how == SOCKSHIM_HOW_DUP;
}

/* The owner closed its copy, or others now hold it by fork, exec, SCM or
 * dup. Needs the ledger: without it nobody knows who the owner was. */
static enum cw_inherit inherited(const struct cw_evidence *e)
{
	const struct ledger_sock *ls = e->ls;
	unsigned i, others = 0, got = 0;

	if (!ls)
		return CW_INH_NONE;
	if (ls->noeffect_closes)
		return CW_INH_NOEFFECT_CLOSES;
	if (e->noeffect_steps)
		return CW_INH_NOEFFECT_STEPS;
	for (i = 0; i < e->rs->n; i++) {
		const struct rec_holder *h = &e->rs->h[i];

		if (h->stale)
			continue;
		/* The owner still holds it: whatever the others do, its
		 * own copy keeps the socket open. */
		if (h->pid == ls->born_pid)
			return CW_INH_NONE;
		others++;
		if ((h->source & REC_LEDGER) && handed_on(h->how))
			got++;
	}
	return others && got ? CW_INH_HANDED_ON : CW_INH_NONE;
}

/* What Recv-Q and the ledger still say about the EOF, for UNKNOWN: a
 * queue that is not empty holds at least the FIN, so says nothing. */
static enum cw_eof eof_story(const struct cw_evidence *e)
{
	if (e->recv_q != 0)
		return CW_EOF_UNSAID;
	return e->ls && e->ls->eof_ns ? CW_EOF_READ_BY_GONE : CW_EOF_READ_UNSEEN;
}

enum cw_verdict cw_decide(const struct cw_evidence *e, struct cw_decision *d)
{
	const struct ledger_sock *ls = e->ls;
	int eof_seen = ls && ls->eof_ns;

	d->holder = -1;
	d->inherit = CW_INH_NONE;
	d->owner_holds = 0;
	d->eof = CW_EOF_UNSAID;
	/* Without an inode the socket was never handed to a process. */
	if (!e->inode)
		return d->verdict = CW_UNACCEPTED;
	d->holder = hung_holder(e->rs);
	if (d->holder >= 0)
		return d->verdict = CW_HUNG_HOLDER;
	if (eof_seen) {
		d->holder = live_holder(e->rs, ls->eof_pid);
		if (d->holder >= 0)
			return d->verdict = CW_EOF_READ_NOT_CLOSED;
	}
	d->inherit = inherited(e);
	if (d->inherit != CW_INH_NONE) {
		d->owner_holds = live_holder(e->rs, ls->born_pid) >= 0;
		return d->verdict = CW_INHERITED;
	}
	/* The FIN sits in the queue (it counts as one byte) until read. */
	if (e->recv_q >= 1 && !eof_seen)
		return d->verdict = CW_EOF_NOT_READ;
	d->eof = eof_story(e);
	return d->verdict = CW_UNKNOWN;
}
