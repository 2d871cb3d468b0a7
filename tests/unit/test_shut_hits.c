/* Unit tests of tools/shut_hits.c: which later EPIPE writes and EOF reads
 * of other holders a shutdown explains, by direction, by process, by
 * order (a later shutdown takes over) and, for EOF, by the kernel's word
 * on the peer's FIN and an EOF read before the shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "shut_hits.h"
#include "sockdiag.h"

#define PARENT 100
#define CHILD 200

static void add_step(struct ledger_sock *ls, unsigned op, pid_t pid, int fd, int arg, uint64_t ts)
{
	struct ledger_step *st = &ls->steps[ls->nsteps++];

	memset(st, 0, sizeof(*st));
	st->seq = ls->nsteps;
	st->op = op;
	st->pid = pid;
	st->fd = fd;
	st->arg = arg;
	st->ts_ns = ts;
	strcpy(st->comm, pid == PARENT ? "parent" : "child");
}

/* The history of the entry under test (an entry's steps are kept apart
 * from it, as a snapshot keeps them). */
static struct ledger_step history[SOCKSHIM_STEPS];

/* Born, passed to the child, shut down by the parent (HOW) at 10, then
 * the child's EPIPE at 11 and EOF at 12, the parent's own EPIPE at 13. */
static void entry(struct ledger_sock *ls, int how)
{
	memset(ls, 0, sizeof(*ls));
	ls->steps = history;
	add_step(ls, SOCKSHIM_STEP_BORN, PARENT, 5, SOCKSHIM_BORN_ACCEPT, 1);
	add_step(ls, SOCKSHIM_STEP_SCM, CHILD, 3, PARENT, 2);
	add_step(ls, SOCKSHIM_STEP_SHUTDOWN, PARENT, 5, how, 10);
	add_step(ls, SOCKSHIM_STEP_EPIPE, CHILD, 3, 0, 11);
	add_step(ls, SOCKSHIM_STEP_EOF, CHILD, 3, 0, 12);
	add_step(ls, SOCKSHIM_STEP_EPIPE, PARENT, 5, 0, 13);
	ls->eof_ns = 12;
	ls->eof_pid = CHILD;
	ls->shut.ns = 10;
	ls->shut.pid = PARENT;
	ls->shut.fd = 5;
	ls->shut.how = how;
}

static void test_both_directions(void **state)
{
	struct ledger_sock ls;
	struct shut_hit h[8];

	(void)state;
	entry(&ls, SHUT_RDWR);
	assert_int_equal(shut_hits(&ls, 2, 1, h, 8), 2);
	assert_int_equal(h[0].pid, CHILD);
	assert_int_equal(h[0].fd, 3);
	assert_int_equal(h[0].what, SOCKSHIM_STEP_EPIPE);
	assert_int_equal(h[0].ts_ns, 11);
	assert_string_equal(h[0].comm, "child");
	assert_string_equal(shut_hit_name(h[0].what), "EPIPE");
	assert_int_equal(h[1].what, SOCKSHIM_STEP_EOF);
	assert_string_equal(shut_hit_name(h[1].what), "EOF");
	/* At most MAX. */
	assert_int_equal(shut_hits(&ls, 2, 1, h, 1), 1);
	/* Not a shutdown step, or out of range: nothing. */
	assert_int_equal(shut_hits(&ls, 1, 1, h, 8), 0);
	assert_int_equal(shut_hits(&ls, 9, 1, h, 8), 0);
}

static void test_direction(void **state)
{
	struct ledger_sock ls;
	struct shut_hit h[8];

	(void)state;
	entry(&ls, SHUT_WR);
	assert_int_equal(shut_hits(&ls, 2, 1, h, 8), 1);
	assert_int_equal(h[0].what, SOCKSHIM_STEP_EPIPE);
	entry(&ls, SHUT_RD);
	assert_int_equal(shut_hits(&ls, 2, 1, h, 8), 1);
	assert_int_equal(h[0].what, SOCKSHIM_STEP_EOF);
}

/* An EOF needs the kernel to show no FIN from the peer, and no EOF read
 * before the shutdown (that was the peer's FIN). */
static void test_eof_needs_no_peer_fin(void **state)
{
	struct ledger_sock ls;
	struct shut_hit h[8];

	(void)state;
	entry(&ls, SHUT_RDWR);
	assert_int_equal(shut_hits(&ls, 2, 0, h, 8), 1);
	assert_int_equal(h[0].what, SOCKSHIM_STEP_EPIPE);
	ls.eof_ns = 9; /* someone read the peer's FIN before the shutdown */
	assert_int_equal(shut_hits(&ls, 2, 1, h, 8), 1);
	assert_int_equal(h[0].what, SOCKSHIM_STEP_EPIPE);

	assert_true(shut_hits_no_peer_fin(SOCKDIAG_ESTABLISHED));
	assert_true(shut_hits_no_peer_fin(SOCKDIAG_FIN_WAIT1));
	assert_true(shut_hits_no_peer_fin(SOCKDIAG_FIN_WAIT2));
	assert_false(shut_hits_no_peer_fin(SOCKDIAG_CLOSE_WAIT));
	assert_false(shut_hits_no_peer_fin(SOCKDIAG_LAST_ACK));
	assert_false(shut_hits_no_peer_fin(SOCKDIAG_CLOSING));
	assert_false(shut_hits_no_peer_fin(SOCKDIAG_TIME_WAIT));
	assert_false(shut_hits_no_peer_fin(-1));
}

/* A later shutdown of the same direction takes the hits after it; the
 * shutter's own EPIPE is nobody's hit. */
static void test_later_shutdown_takes_over(void **state)
{
	struct ledger_sock ls;
	struct shut_hit h[8];

	(void)state;
	entry(&ls, SHUT_WR);
	/* Replace the child's EPIPE at 11 by a second shutdown, the child's. */
	ls.nsteps = 3;
	add_step(&ls, SOCKSHIM_STEP_SHUTDOWN, CHILD, 3, SHUT_WR, 11);
	add_step(&ls, SOCKSHIM_STEP_EPIPE, CHILD, 3, 0, 12);
	add_step(&ls, SOCKSHIM_STEP_EPIPE, PARENT, 5, 0, 13);
	assert_int_equal(shut_hits(&ls, 2, 1, h, 8), 0);
	assert_int_equal(shut_hits(&ls, 3, 1, h, 8), 1);
	assert_int_equal(h[0].pid, PARENT);
	assert_int_equal(h[0].ts_ns, 13);
	/* A later SHUT_RD does not take an EPIPE. */
	ls.steps[3].arg = SHUT_RD;
	assert_int_equal(shut_hits(&ls, 2, 1, h, 8), 1);
	assert_int_equal(h[0].pid, CHILD);
}

/* The last shutdown whose step is gone from the history: the steps left
 * after its time. */
static void test_step_gone(void **state)
{
	struct ledger_sock ls;
	struct shut_hit h[8];

	(void)state;
	entry(&ls, SHUT_RDWR);
	memmove(&ls.steps[0], &ls.steps[3], 3 * sizeof(ls.steps[0]));
	ls.nsteps = 3;
	assert_int_equal(shut_hits(&ls, -1, 1, h, 8), 2);
	ls.shut.ns = 12; /* later than the EPIPE: not its hit */
	assert_int_equal(shut_hits(&ls, -1, 1, h, 8), 1);
	assert_int_equal(h[0].what, SOCKSHIM_STEP_EOF);
	ls.shut.ns = 0;
	assert_int_equal(shut_hits(&ls, -1, 1, h, 8), 0);
}

/* The first EOF a shutdown's for reading, not the peer's: a shutdown of
 * that direction at or before it, while the kernel shows no FIN from the
 * peer. */
static void test_explains_eof(void **state)
{
	struct ledger_sock ls;

	(void)state;
	entry(&ls, SHUT_RDWR);
	assert_true(shut_explains_eof(&ls, 1));
	assert_false(shut_explains_eof(&ls, 0));
	entry(&ls, SHUT_WR);
	assert_false(shut_explains_eof(&ls, 1));
	/* Read before the shutdown: the peer's. */
	entry(&ls, SHUT_RDWR);
	ls.eof_ns = 9;
	assert_false(shut_explains_eof(&ls, 1));
	/* The entry's last shutdown is for writing, an earlier step in the
	 * history for reading. */
	entry(&ls, SHUT_RD);
	ls.shut.how = SHUT_WR;
	ls.shut.ns = 11;
	assert_true(shut_explains_eof(&ls, 1));
	ls.eof_ns = 0;
	assert_false(shut_explains_eof(&ls, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_both_directions),
		cmocka_unit_test(test_direction),
		cmocka_unit_test(test_eof_needs_no_peer_fin),
		cmocka_unit_test(test_later_shutdown_takes_over),
		cmocka_unit_test(test_step_gone),
		cmocka_unit_test(test_explains_eof),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
