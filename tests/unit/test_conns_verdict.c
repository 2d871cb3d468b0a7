/* Unit tests of tools/conns_verdict.c: who closed first from the kernel's
 * state or, where the state does not say, the ledger's times (a
 * shutdown's FIN, the release, the peer's EOF); the anomalies; the
 * --state names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "conns_verdict.h"
#include "sockdiag.h"

#define S 1000000000LL

/* The history of the entry under test (one at a time). */
static struct ledger_step steps[SOCKSHIM_STEPS];

static void entry(struct ledger_sock *ls, uint64_t released, uint64_t eof)
{
	memset(ls, 0, sizeof(*ls));
	ls->steps = steps;
	ls->born = SOCKSHIM_BORN_CONNECT;
	ls->born_ns = 1 * S;
	ls->released_ns = released;
	ls->eof_ns = eof;
}

static void add_step(struct ledger_sock *ls, unsigned op, int arg, uint64_t ts)
{
	struct ledger_step *st = &ls->steps[ls->nsteps++];

	st->op = op;
	st->arg = arg;
	st->ts_ns = ts;
}

static void test_closer_from_state(void **state)
{
	struct ledger_sock ls;

	(void)state;
	/* The kernel's state decides, whatever the ledger says. */
	entry(&ls, 0, 5 * S);
	assert_int_equal(conn_closer(SOCKDIAG_FIN_WAIT2, &ls), CONN_CLOSER_LOCAL);
	assert_int_equal(conn_closer(SOCKDIAG_FIN_WAIT1, NULL), CONN_CLOSER_LOCAL);
	assert_int_equal(conn_closer(SOCKDIAG_TIME_WAIT, NULL), CONN_CLOSER_LOCAL);
	entry(&ls, 2 * S, 0);
	assert_int_equal(conn_closer(SOCKDIAG_CLOSE_WAIT, &ls), CONN_CLOSER_PEER);
	assert_int_equal(conn_closer(SOCKDIAG_LAST_ACK, NULL), CONN_CLOSER_PEER);
	assert_int_equal(conn_closer(SOCKDIAG_CLOSING, &ls), CONN_CLOSER_BOTH);
	/* Open, nothing known. */
	assert_int_equal(conn_closer(SOCKDIAG_ESTABLISHED, NULL), CONN_CLOSER_UNKNOWN);
	entry(&ls, 0, 0);
	assert_int_equal(conn_closer(SOCKDIAG_ESTABLISHED, &ls), CONN_CLOSER_UNKNOWN);
	assert_int_equal(conn_closer(CONN_GONE, NULL), CONN_CLOSER_UNKNOWN);
}

static void test_closer_from_ledger(void **state)
{
	struct ledger_sock ls;

	(void)state;
	/* Released before the peer's EOF: local; EOF first: peer. */
	entry(&ls, 2 * S, 3 * S);
	assert_int_equal(conn_closer(CONN_GONE, &ls), CONN_CLOSER_LOCAL);
	entry(&ls, 3 * S, 2 * S);
	assert_int_equal(conn_closer(CONN_GONE, &ls), CONN_CLOSER_PEER);
	entry(&ls, 2 * S, 0);
	assert_int_equal(conn_closer(CONN_GONE, &ls), CONN_CLOSER_LOCAL);
	entry(&ls, 0, 2 * S);
	assert_int_equal(conn_closer(SOCKDIAG_ESTABLISHED, &ls), CONN_CLOSER_PEER);
	/* A shutdown(SHUT_WR) sent our FIN before the EOF came, though the
	 * release came after it. */
	entry(&ls, 4 * S, 3 * S);
	add_step(&ls, SOCKSHIM_STEP_SHUTDOWN, SHUT_WR, 2 * S);
	assert_int_equal(conn_local_close_ns(&ls), 2 * S);
	assert_int_equal(conn_closer(CONN_GONE, &ls), CONN_CLOSER_LOCAL);
	/* SHUT_RD sends nothing. */
	entry(&ls, 4 * S, 3 * S);
	add_step(&ls, SOCKSHIM_STEP_SHUTDOWN, SHUT_RD, 2 * S);
	assert_int_equal(conn_local_close_ns(&ls), 4 * S);
	assert_int_equal(conn_closer(CONN_GONE, &ls), CONN_CLOSER_PEER);
	/* The first SHUT_WR or SHUT_RDWR counts; a close step does not. */
	entry(&ls, 0, 0);
	add_step(&ls, SOCKSHIM_STEP_CLOSE, 1, 1 * S);
	add_step(&ls, SOCKSHIM_STEP_SHUTDOWN, SHUT_RDWR, 6 * S);
	add_step(&ls, SOCKSHIM_STEP_SHUTDOWN, SHUT_WR, 7 * S);
	assert_int_equal(conn_local_close_ns(&ls), 6 * S);
	assert_string_equal(conn_closer_name(CONN_CLOSER_LOCAL), "local");
	assert_string_equal(conn_closer_name(CONN_CLOSER_PEER), "peer");
	assert_string_equal(conn_closer_name(CONN_CLOSER_BOTH), "both");
	assert_string_equal(conn_closer_name(CONN_CLOSER_UNKNOWN), "unknown");
	assert_string_equal(conn_closer_name(CONN_CLOSER_ABORT), "abort");
}

/* Released with SO_LINGER {on, 0}: a reset, whoever closed first; still
 * held, or the kernel still lists it in a closing state: not (yet). */
static void test_closer_abort(void **state)
{
	struct ledger_sock ls;

	(void)state;
	entry(&ls, 3 * S, 2 * S);
	ls.flags = SOCKSHIM_FLAG_LINGER_RESET;
	assert_int_equal(conn_closer(CONN_GONE, &ls), CONN_CLOSER_ABORT);
	assert_int_equal(conn_closer(SOCKDIAG_CLOSE, &ls), CONN_CLOSER_ABORT);
	entry(&ls, 2 * S, 0);
	ls.flags = SOCKSHIM_FLAG_LINGER_RESET;
	assert_int_equal(conn_closer(CONN_GONE, &ls), CONN_CLOSER_ABORT);
	assert_int_equal(conn_closer(SOCKDIAG_TIME_WAIT, &ls), CONN_CLOSER_LOCAL);
	entry(&ls, 0, 2 * S);
	ls.flags = SOCKSHIM_FLAG_LINGER_RESET;
	assert_int_equal(conn_closer(SOCKDIAG_CLOSE_WAIT, &ls), CONN_CLOSER_PEER);
	assert_int_equal(conn_closer(CONN_GONE, &ls), CONN_CLOSER_PEER);
}

/* conn_anomaly of a connection in STATE, otherwise unremarkable. */
static enum conn_anomaly anomaly_of(unsigned state, int server, int64_t fin_age_ns,
				    long fin_timeout_s, int held, int shut_by_other)
{
	struct conn_facts f = {.state = state, .server = server, .held = held,
			       .fin_age_ns = fin_age_ns, .fin_timeout_s = fin_timeout_s,
			       .shut_by_other = shut_by_other};

	return conn_anomaly(&f);
}

static void test_anomaly(void **state)
{
	(void)state;
	assert_int_equal(anomaly_of(SOCKDIAG_CLOSE_WAIT, 0, -1, 60, 1, 0), CONN_ANOM_CLOSE_WAIT);
	assert_int_equal(anomaly_of(SOCKDIAG_TIME_WAIT, 1, -1, 60, 0, 0),
			 CONN_ANOM_SERVER_TIMEWAIT);
	assert_int_equal(anomaly_of(SOCKDIAG_TIME_WAIT, 0, -1, 60, 0, 0), CONN_OK);
	/* FIN_WAIT2: past tcp_fin_timeout first, else held after a shutdown;
	 * an orphaned one within the timeout is the kernel's to end. */
	assert_int_equal(anomaly_of(SOCKDIAG_FIN_WAIT2, 0, 61 * S, 60, 1, 0),
			 CONN_ANOM_OLD_FIN_WAIT2);
	assert_int_equal(anomaly_of(SOCKDIAG_FIN_WAIT2, 0, 60 * S, 60, 1, 0),
			 CONN_ANOM_HELD_FIN_WAIT2);
	assert_int_equal(anomaly_of(SOCKDIAG_FIN_WAIT2, 0, 60 * S, 60, 0, 0), CONN_OK);
	assert_int_equal(anomaly_of(SOCKDIAG_FIN_WAIT2, 0, -1, 60, 0, 0), CONN_OK);
	assert_int_equal(anomaly_of(SOCKDIAG_FIN_WAIT2, 0, 600 * S, -1, 0, 0), CONN_OK);
	/* LAST_ACK: a round trip is normal, a second lingers. */
	assert_int_equal(anomaly_of(SOCKDIAG_LAST_ACK, 0, S / 2, 60, 0, 0), CONN_OK);
	assert_int_equal(anomaly_of(SOCKDIAG_LAST_ACK, 0, -1, 60, 0, 0), CONN_OK);
	assert_int_equal(anomaly_of(SOCKDIAG_LAST_ACK, 1, S + 1, 60, 0, 0),
			 CONN_ANOM_LINGERING_LAST_ACK);
	/* Shut down by one holder while others hold it: while still held. */
	assert_int_equal(anomaly_of(SOCKDIAG_ESTABLISHED, 1, -1, 60, 1, 1),
			 CONN_ANOM_SHUT_BY_OTHER);
	assert_int_equal(anomaly_of(SOCKDIAG_TIME_WAIT, 0, -1, 60, 0, 1), CONN_OK);
	assert_int_equal(anomaly_of(SOCKDIAG_CLOSE_WAIT, 1, -1, 60, 1, 1), CONN_ANOM_CLOSE_WAIT);
	/* The other holders it hit say more than the FIN_WAIT2 it left. */
	assert_int_equal(anomaly_of(SOCKDIAG_FIN_WAIT2, 1, S, 60, 1, 1), CONN_ANOM_SHUT_BY_OTHER);
	assert_int_equal(anomaly_of(SOCKDIAG_ESTABLISHED, 1, -1, 60, 1, 0), CONN_OK);
	assert_non_null(strstr(conn_anomaly_reason(CONN_ANOM_CLOSE_WAIT), "closewait"));
	assert_non_null(strstr(conn_anomaly_reason(CONN_ANOM_OLD_FIN_WAIT2), "tcp_fin_timeout"));
	assert_non_null(strstr(conn_anomaly_reason(CONN_ANOM_HELD_FIN_WAIT2), "shutdown"));
	assert_non_null(strstr(conn_anomaly_reason(CONN_ANOM_LINGERING_LAST_ACK), "LAST_ACK"));
	assert_non_null(strstr(conn_anomaly_reason(CONN_ANOM_SHUT_BY_OTHER), "EPIPE"));
	assert_string_equal(conn_anomaly_reason(CONN_OK), "");
}

static void test_states(void **state)
{
	uint64_t m = 0;

	(void)state;
	assert_int_equal(conn_parse_states("established", &m), 0);
	assert_true(m == (1ull << SOCKDIAG_ESTABLISHED));
	assert_int_equal(conn_parse_states("ESTAB,fin-wait-2,Time_Wait,closed", &m), 0);
	assert_true(m == ((1ull << SOCKDIAG_ESTABLISHED) | (1ull << SOCKDIAG_FIN_WAIT2) |
			  (1ull << SOCKDIAG_TIME_WAIT) | (1ull << CONN_GONE)));
	assert_int_equal(conn_parse_states("FIN_WAIT2,close-wait,listen", &m), 0);
	assert_true(m == ((1ull << SOCKDIAG_FIN_WAIT2) | (1ull << SOCKDIAG_CLOSE_WAIT) |
			  (1ull << SOCKDIAG_LISTEN)));
	assert_int_equal(conn_parse_states("established,", &m), -EINVAL);
	assert_int_equal(conn_parse_states("", &m), -EINVAL);
	assert_int_equal(conn_parse_states("bogus", &m), -EINVAL);
	assert_string_equal(conn_state_name(CONN_GONE), "CLOSED");
	assert_string_equal(conn_state_name(SOCKDIAG_FIN_WAIT2), "FIN_WAIT2");
	assert_null(conn_state_name(99));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_closer_from_state),
		cmocka_unit_test(test_closer_from_ledger),
		cmocka_unit_test(test_closer_abort),
		cmocka_unit_test(test_anomaly),
		cmocka_unit_test(test_states),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
