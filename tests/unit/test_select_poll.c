/* Unit tests of select's meaning in poll's terms (shim/select_poll.c):
 * the events asked for each set, and the answer for each kind of revents,
 * as the kernel's select reports them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "select_poll.h"

static void sets(fd_set want[3], int rd, int wr, int ex)
{
	FD_ZERO(&want[0]);
	FD_ZERO(&want[1]);
	FD_ZERO(&want[2]);
	if (rd >= 0)
		FD_SET(rd, &want[0]);
	if (wr >= 0)
		FD_SET(wr, &want[1]);
	if (ex >= 0)
		FD_SET(ex, &want[2]);
}

static void test_events_per_set(void **state)
{
	fd_set want[3];

	(void)state;
	sets(want, 3, 4, 5);
	assert_int_equal(select_poll_events(want, 3), POLLIN | POLLRDNORM | POLLRDBAND);
	assert_int_equal(select_poll_events(want, 4), POLLOUT | POLLWRNORM | POLLWRBAND);
	assert_int_equal(select_poll_events(want, 5), POLLPRI);
	assert_int_equal(select_poll_events(want, 6), 0);
	sets(want, 7, 7, 7);
	assert_int_equal(select_poll_events(want, 7), POLLIN | POLLRDNORM | POLLRDBAND | POLLOUT |
							     POLLWRNORM | POLLWRBAND | POLLPRI);
}

/* One descriptor asked for all three: each revents gives the sets the
 * kernel's select sets, and the count is the bits. */
static void test_answer_kinds(void **state)
{
	static const struct {
		short revents;
		int in, out, ex;
	} cases[] = {
		{POLLIN, 1, 0, 0},          {POLLRDNORM, 1, 0, 0}, {POLLRDBAND, 1, 0, 0},
		{POLLOUT, 0, 1, 0},         {POLLWRNORM, 0, 1, 0}, {POLLWRBAND, 0, 1, 0},
		{POLLPRI, 0, 0, 1},         {POLLHUP, 1, 0, 0},    {POLLERR, 1, 1, 0},
		{POLLIN | POLLOUT, 1, 1, 0}, {POLLIN | POLLPRI | POLLOUT, 1, 1, 1},
	};
	fd_set want[3], got[3];
	size_t i;

	(void)state;
	sets(want, 9, 9, 9);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pollfd pf = {.fd = 9, .events = select_poll_events(want, 9),
				    .revents = cases[i].revents};
		int n = select_poll_answer(&pf, 1, want, got);

		assert_int_equal(n, cases[i].in + cases[i].out + cases[i].ex);
		assert_int_equal(!!FD_ISSET(9, &got[0]), cases[i].in);
		assert_int_equal(!!FD_ISSET(9, &got[1]), cases[i].out);
		assert_int_equal(!!FD_ISSET(9, &got[2]), cases[i].ex);
		assert_int_equal(pf.fd, 9);
	}
}

/* Only what was asked is answered; a report select would not make (a
 * hangup of one asked for writing only, an error of one asked for
 * exceptions only) leaves the entry out, not counted. */
static void test_answer_only_asked(void **state)
{
	fd_set want[3], got[3];
	struct pollfd pf[3] = {{.fd = 3, .revents = POLLIN | POLLOUT},
			       {.fd = 4, .revents = POLLHUP},
			       {.fd = 5, .revents = POLLERR}};

	(void)state;
	sets(want, 3, 4, 5);
	assert_int_equal(select_poll_answer(pf, 3, want, got), 1);
	assert_true(FD_ISSET(3, &got[0]));
	assert_false(FD_ISSET(3, &got[1]));
	assert_false(FD_ISSET(4, &got[1]));
	assert_false(FD_ISSET(5, &got[2]));
	assert_int_equal(pf[0].fd, 3);
	assert_int_equal(pf[1].fd, -1);
	assert_int_equal(pf[2].fd, -1);
	/* Left out, it is skipped next time. */
	pf[1].revents = POLLHUP;
	assert_int_equal(select_poll_answer(pf, 3, want, got), 1);
}

/* A descriptor that is not open: EBADF, whatever the others said. */
static void test_answer_not_open(void **state)
{
	fd_set want[3], got[3];
	struct pollfd pf[2] = {{.fd = 3, .revents = POLLIN}, {.fd = 4, .revents = POLLNVAL}};

	(void)state;
	sets(want, 3, 4, -1);
	FD_SET(4, &want[0]);
	assert_int_equal(select_poll_answer(pf, 2, want, got), -1);
}

/* Nothing reported (a timeout): 0 and empty sets. */
static void test_answer_nothing(void **state)
{
	fd_set want[3], got[3];
	struct pollfd pf[2] = {{.fd = 3}, {.fd = -1, .revents = POLLIN}};

	(void)state;
	sets(want, 3, 3, 3);
	FD_SET(0, &got[0]);
	assert_int_equal(select_poll_answer(pf, 2, want, got), 0);
	assert_false(FD_ISSET(0, &got[0]));
	assert_false(FD_ISSET(3, &got[0]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_per_set),
		cmocka_unit_test(test_answer_kinds),
		cmocka_unit_test(test_answer_only_asked),
		cmocka_unit_test(test_answer_not_open),
		cmocka_unit_test(test_answer_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
