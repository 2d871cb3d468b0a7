/* Whom a shutdown hit (see shut_hits.h): decisions only, no printing. */
#include <string.h>
#include <sys/socket.h>

#include "sockdiag.h"
#include "shut_hits.h"

const char *shut_hit_name(unsigned what)
{
	return what == SOCKSHIM_STEP_EPIPE ? "EPIPE" : "EOF";
}

int shut_hits_no_peer_fin(int kstate)
{
	/* Before the peer's FIN: open, or this side's FIN out and the peer's
	 * not in. CLOSE_WAIT, LAST_ACK, CLOSING and TIME_WAIT have had it;
	 * a socket the kernel no longer lists cannot tell. */
	return kstate == SOCKDIAG_ESTABLISHED || kstate == SOCKDIAG_FIN_WAIT1 ||
	       kstate == SOCKDIAG_FIN_WAIT2;
}

/* Does a shutdown HOW stop the direction of hit step OP? */
static int covers(int how, unsigned op)
{
	if (op == SOCKSHIM_STEP_EPIPE)
		return how == SHUT_WR || how == SHUT_RDWR;
	if (op == SOCKSHIM_STEP_EOF)
		return how == SHUT_RD || how == SHUT_RDWR;
	return 0;
}

/* Step J's hit, if it is one of a shutdown by PID, HOW at TS that no
 * step of LS between FROM and J took over. */
static int is_hit(const struct ledger_sock *ls, unsigned from, unsigned j, pid_t pid, int how,
		  uint64_t ts, int no_peer_fin)
{
	const struct ledger_step *st = &ls->steps[j];
	unsigned k;

	if (!covers(how, st->op) || st->pid == pid || st->ts_ns < ts)
		return 0;
	if (st->op == SOCKSHIM_STEP_EOF && (!no_peer_fin || (ls->eof_ns && ls->eof_ns < ts)))
		return 0;
	for (k = from; k < j; k++)
		if (ls->steps[k].op == SOCKSHIM_STEP_SHUTDOWN && covers(ls->steps[k].arg, st->op))
			return 0;
	return 1;
}

int shut_explains_eof(const struct ledger_sock *ls, int no_peer_fin)
{
	unsigned i;

	if (!ls->eof_ns || !no_peer_fin)
		return 0;
	if (ls->shut.ns && ls->shut.ns <= ls->eof_ns && covers(ls->shut.how, SOCKSHIM_STEP_EOF))
		return 1;
	for (i = 0; i < ls->nsteps; i++)
		if (ls->steps[i].op == SOCKSHIM_STEP_SHUTDOWN && ls->steps[i].ts_ns <= ls->eof_ns &&
		    covers(ls->steps[i].arg, SOCKSHIM_STEP_EOF))
			return 1;
	return 0;
}

size_t shut_hits(const struct ledger_sock *ls, int shut, int no_peer_fin, struct shut_hit *out,
		 size_t max)
{
	const struct ledger_shutdown *sd = &ls->shut;
	unsigned j, from;
	pid_t pid;
	uint64_t ts;
	int how;
	size_t n = 0;

	if (shut >= 0) {
		if ((unsigned)shut >= ls->nsteps || ls->steps[shut].op != SOCKSHIM_STEP_SHUTDOWN)
			return 0;
		pid = ls->steps[shut].pid;
		how = ls->steps[shut].arg;
		ts = ls->steps[shut].ts_ns;
		from = (unsigned)shut + 1;
	} else {
		if (!sd->ns)
			return 0;
		/* Its step is gone: every step left is later. */
		pid = sd->pid;
		how = sd->how;
		ts = sd->ns;
		from = 0;
	}
	for (j = from; j < ls->nsteps && n < max; j++) {
		const struct ledger_step *st = &ls->steps[j];

		if (!is_hit(ls, from, j, pid, how, ts, no_peer_fin))
			continue;
		out[n].pid = st->pid;
		out[n].fd = st->fd;
		out[n].what = st->op;
		out[n].ts_ns = st->ts_ns;
		memcpy(out[n].comm, st->comm, sizeof(out[n].comm));
		n++;
	}
	return n;
}
