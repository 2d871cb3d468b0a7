/* Unit tests of tools/session_procs.c: which processes are a session's
 * (its segment's creator, if the process of that pid started by the
 * segment's creation, and every descendant), on process lists the test
 * gives; and a live read that finds this process and its child. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "session_procs.h"

#define TCK 100
#define SEC 1000000000LL

/* 1 (init) -> 10 (creator) -> 11, 12; 12 -> 13 -> 14; 20 unrelated;
 * 30's parent 30 (a loop /proc can show when pids are reused). Started at
 * 5 s after boot, all. */
static const struct session_proc_stat procs[] = {
	{1, 0, 0},     {10, 1, 500},  {11, 10, 500}, {12, 10, 500},
	{13, 12, 500}, {14, 13, 500}, {20, 1, 500},  {30, 30, 500},
};
#define N (sizeof(procs) / sizeof(procs[0]))

static void test_pick_tree(void **state)
{
	struct session_procs p;
	static const pid_t want[] = {10, 11, 12, 13, 14};
	unsigned i;

	(void)state;
	assert_int_equal(session_procs_pick(procs, N, 10, 6 * SEC, TCK, &p), 0);
	assert_int_equal(p.n, 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(p.pids[i], want[i]);
	assert_true(session_procs_has(&p, 13));
	assert_false(session_procs_has(&p, 20));
	assert_false(session_procs_has(&p, 1));
	session_procs_free(&p);
	/* A subtree's root: itself and below. */
	assert_int_equal(session_procs_pick(procs, N, 13, 6 * SEC, TCK, &p), 0);
	assert_int_equal(p.n, 2);
	session_procs_free(&p);
	/* A process that is its own parent is listed once. */
	assert_int_equal(session_procs_pick(procs, N, 30, 6 * SEC, TCK, &p), 0);
	assert_int_equal(p.n, 1);
	session_procs_free(&p);
}

static void test_pick_not_the_creator(void **state)
{
	struct session_procs p;

	(void)state;
	/* The segment was made at 4 s, before the process of pid 10 started
	 * (5 s): that pid is someone else's now. */
	assert_int_equal(session_procs_pick(procs, N, 10, 4 * SEC, TCK, &p), 0);
	assert_int_equal(p.n, 0);
	assert_false(session_procs_has(&p, 10));
	/* Within a tick of the start: the same process. */
	assert_int_equal(session_procs_pick(procs, N, 10, 5 * SEC - SEC / TCK, TCK, &p), 0);
	assert_int_equal(p.n, 5);
	session_procs_free(&p);
	/* Gone, no pid, no creation time. */
	assert_int_equal(session_procs_pick(procs, N, 99, 6 * SEC, TCK, &p), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(session_procs_pick(procs, N, 0, 6 * SEC, TCK, &p), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(session_procs_pick(procs, N, 10, 0, TCK, &p), 0);
	assert_int_equal(p.n, 0);
	session_procs_free(&p);
}

static void test_read_live(void **state)
{
	struct session_procs p;
	struct timespec ts;
	pid_t child = fork();
	int status;

	(void)state;
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	clock_gettime(CLOCK_BOOTTIME, &ts);
	assert_int_equal(session_procs_read(getpid(), (int64_t)ts.tv_sec * SEC + ts.tv_nsec, &p),
			 0);
	assert_true(session_procs_has(&p, getpid()));
	assert_true(session_procs_has(&p, child));
	assert_false(session_procs_has(&p, getppid()));
	session_procs_free(&p);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pick_tree),
		cmocka_unit_test(test_pick_not_the_creator),
		cmocka_unit_test(test_read_live),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
