/* Unit tests of thread_state (shim/thread_state.c): the running thread,
 * a stopped child, a zombie, a thread that does not exist, errno kept. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sockshim/thread_state.h"

/* The state of PID once it is one of STATES (bounded wait). */
static int wait_state(pid_t pid, const char *states)
{
	int i, st = -1;

	for (i = 0; i < 500; i++) {
		struct timespec ts = {0, 10 * 1000000L};

		st = thread_state(pid);
		if (st > 0 && strchr(states, st))
			return st;
		nanosleep(&ts, NULL);
	}
	return st;
}

static void test_self_runs(void **state)
{
	(void)state;
	errno = 1234;
	assert_int_equal(thread_state(getpid()), 'R');
	assert_int_equal(errno, 1234);
	assert_false(thread_state_dead('R'));
	assert_false(thread_state_stopped('R'));
}

static void test_stopped_then_zombie(void **state)
{
	pid_t pid = fork();
	int status;

	(void)state;
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	assert_int_equal(wait_state(pid, "S"), 'S');
	kill(pid, SIGSTOP);
	assert_int_equal(wait_state(pid, "T"), 'T');
	assert_true(thread_state_stopped(thread_state(pid)));
	kill(pid, SIGKILL);
	assert_int_equal(wait_state(pid, "Z"), 'Z');
	assert_true(thread_state_dead(thread_state(pid)));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* Reaped: no such thread. */
	errno = 99;
	assert_int_equal(thread_state(pid), 0);
	assert_int_equal(errno, 99);
	assert_true(thread_state_dead(0));
}

static void test_no_such_thread(void **state)
{
	(void)state;
	assert_int_equal(thread_state(0), 0);
	assert_int_equal(thread_state(-5), 0);
	/* Above any pid_max the kernel allows. */
	assert_int_equal(thread_state(1 << 23), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_runs),
		cmocka_unit_test(test_stopped_then_zombie),
		cmocka_unit_test(test_no_such_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
