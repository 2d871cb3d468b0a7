/* conns' judgements: who closed first, when this side did, which states
 * are anomalies, and the --state names. Pure: the unit tests give it
 * made-up ledger entries and states. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "conns_verdict.h"
#include "sockdiag.h"

#define NS_PER_SEC 1000000000LL

uint64_t conn_local_close_ns(const struct ledger_sock *ls)
{
	uint64_t t = ls->released_ns;
	unsigned i;

	for (i = 0; i < ls->nsteps; i++) {
		const struct ledger_step *st = &ls->steps[i];

		/* Only a shutdown that stops sending sends our FIN. */
		if (st->op != SOCKSHIM_STEP_SHUTDOWN || (st->arg != SHUT_WR && st->arg != SHUT_RDWR))
			continue;
		if (st->ts_ns && (!t || st->ts_ns < t))
			t = st->ts_ns;
		break;
	}
	return t;
}

enum conn_closer conn_closer(unsigned state, const struct ledger_sock *ls)
{
	uint64_t local, eof;

	if (ls && ls->released_ns && (ls->flags & SOCKSHIM_FLAG_LINGER_RESET) &&
	    (state == CONN_GONE || state == SOCKDIAG_CLOSE))
		return CONN_CLOSER_ABORT;
	switch (state) {
	case SOCKDIAG_CLOSING:
		return CONN_CLOSER_BOTH;
	case SOCKDIAG_CLOSE_WAIT:
	case SOCKDIAG_LAST_ACK:
		return CONN_CLOSER_PEER;
	case SOCKDIAG_FIN_WAIT1:
	case SOCKDIAG_FIN_WAIT2:
	case SOCKDIAG_TIME_WAIT:
		return CONN_CLOSER_LOCAL;
	default:
		break;
	}
	if (!ls)
		return CONN_CLOSER_UNKNOWN;
	local = conn_local_close_ns(ls);
	eof = ls->eof_ns;
	if (local && (!eof || local < eof))
		return CONN_CLOSER_LOCAL;
	if (eof)
		return CONN_CLOSER_PEER;
	return CONN_CLOSER_UNKNOWN;
}

const char *conn_closer_name(enum conn_closer c)
{
	switch (c) {
	case CONN_CLOSER_LOCAL:
		return "local";
	case CONN_CLOSER_PEER:
		return "peer";
	case CONN_CLOSER_BOTH:
		return "both";
	case CONN_CLOSER_ABORT:
		return "abort";
	default:
		return "unknown";
	}
}

enum conn_anomaly conn_anomaly(const struct conn_facts *f)
{
	if (f->state == SOCKDIAG_CLOSE_WAIT)
		return CONN_ANOM_CLOSE_WAIT;
	if (f->state == SOCKDIAG_TIME_WAIT && f->server)
		return CONN_ANOM_SERVER_TIMEWAIT;
	if (f->state == SOCKDIAG_FIN_WAIT2 && f->fin_age_ns >= 0 && f->fin_timeout_s >= 0 &&
	    f->fin_age_ns > (int64_t)f->fin_timeout_s * NS_PER_SEC)
		return CONN_ANOM_OLD_FIN_WAIT2;
	if (f->shut_by_other && f->held)
		return CONN_ANOM_SHUT_BY_OTHER;
	if (f->state == SOCKDIAG_FIN_WAIT2 && f->held)
		return CONN_ANOM_HELD_FIN_WAIT2;
	if (f->state == SOCKDIAG_LAST_ACK && f->fin_age_ns > CONN_LAST_ACK_LINGER_NS)
		return CONN_ANOM_LINGERING_LAST_ACK;
	return CONN_OK;
}

const char *conn_anomaly_reason(enum conn_anomaly a)
{
	switch (a) {
	case CONN_ANOM_CLOSE_WAIT:
		return "the peer closed and no holder here did: see sockshim closewait";
	case CONN_ANOM_SERVER_TIMEWAIT:
		return "TIME_WAIT on the server side of a listener: the server closes first "
		       "(see sockshim timewait)";
	case CONN_ANOM_OLD_FIN_WAIT2:
		return "FIN_WAIT2 for longer than tcp_fin_timeout: this side shut down sending, "
		       "the peer never closed, and a descriptor keeps it from timing out";
	case CONN_ANOM_HELD_FIN_WAIT2:
		return "FIN_WAIT2 after shutdown for sending, still held: no timer ends it while "
		       "a descriptor holds it; fine while the peer still sends, a leak if it "
		       "never closes";
	case CONN_ANOM_LINGERING_LAST_ACK:
		return "LAST_ACK for over a second: this side's FIN is not acknowledged (a peer "
		       "gone, or data it does not read holding the FIN back)";
	case CONN_ANOM_SHUT_BY_OTHER:
		return "shut down by one process while others hold it: shutdown acts for every "
		       "holder (their writes fail with EPIPE, their reads return 0)";
	default:
		return "";
	}
}

const char *conn_state_name(unsigned state)
{
	return state == CONN_GONE ? "CLOSED" : sockdiag_state_name(state);
}

/* NAME (N bytes) compared with WANT ignoring case and '-' against '_'. */
static int name_is(const char *name, size_t n, const char *want)
{
	size_t i;

	if (strlen(want) != n)
		return 0;
	for (i = 0; i < n; i++) {
		char c = (char)toupper((unsigned char)name[i]);

		if (c == '-')
			c = '_';
		if (c != want[i])
			return 0;
	}
	return 1;
}

/* The state named NAME (N bytes), or -1. */
static int state_of(const char *name, size_t n)
{
	unsigned s;

	if (name_is(name, n, "ESTAB"))
		return SOCKDIAG_ESTABLISHED;
	if (name_is(name, n, "FIN_WAIT_1"))
		return SOCKDIAG_FIN_WAIT1;
	if (name_is(name, n, "FIN_WAIT_2"))
		return SOCKDIAG_FIN_WAIT2;
	if (name_is(name, n, "CLOSED") || name_is(name, n, "GONE"))
		return CONN_GONE;
	for (s = 1; s < SOCKDIAG_STATE_COUNT; s++)
		if (sockdiag_state_name(s) && name_is(name, n, sockdiag_state_name(s)))
			return (int)s;
	return -1;
}

int conn_parse_states(const char *list, uint64_t *mask)
{
	const char *p = list, *end;
	uint64_t m = 0;
	int s;

	for (;;) {
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		s = state_of(p, (size_t)(end - p));
		if (s < 0)
			return -EINVAL;
		m |= (uint64_t)1 << s;
		if (!*end)
			break;
		p = end + 1;
	}
	*mask = m;
	return 0;
}
