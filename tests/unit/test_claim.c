/* Unit tests of shim/claim.c, the wait for another claimer of the same
 * socket: the claiming inode word names its claimer, and the wait lasts
 * while that thread is alive and not stopped, up to CLAIM_LIVE_WAIT_NS.
 * The claimers are real: a thread of this process that sleeps through
 * the first looks (preempted, as on a loaded host) and then publishes; a
 * live thread that never does; a stopped child; a reaped child; our own
 * thread (a signal handler claiming the socket its thread was filling
 * in). shim_gettid (emit.c in the shim) is this thread's tid here. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "claim.h"
#include "emit.h"
#include "sockshim/clock.h"
#include "sockshim/layout.h"
#include "sockshim/thread_state.h"

#define INODE 4242u

pid_t shim_gettid(void)
{
	return gettid();
}

static uint64_t now_ns(void)
{
	return sockshim_clock_ns(CLOCK_MONOTONIC);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* A claimer thread: it claims WORD for INODE, says so, sleeps
 * SLEEP_NS (0: until told to go), then publishes INODE (or not). */
struct claimer {
	pthread_t thread;
	uint64_t word;
	uint64_t sleep_ns;
	int publish;
	int claimed; /* set by the claimer once WORD names it */
	int go;      /* set by the test: the claimer may end */
};

static void *claim_then_publish(void *arg)
{
	struct claimer *c = arg;

	__atomic_store_n(&c->word, sockshim_inode_claiming(INODE, gettid()), __ATOMIC_RELEASE);
	__atomic_store_n(&c->claimed, 1, __ATOMIC_RELEASE);
	if (c->sleep_ns)
		sleep_ns(c->sleep_ns);
	else
		while (!__atomic_load_n(&c->go, __ATOMIC_ACQUIRE))
			sleep_ns(1000000);
	if (c->publish)
		__atomic_store_n(&c->word, INODE, __ATOMIC_RELEASE);
	return NULL;
}

static void start_claimer(struct claimer *c)
{
	assert_int_equal(pthread_create(&c->thread, NULL, claim_then_publish, c), 0);
	while (!__atomic_load_n(&c->claimed, __ATOMIC_ACQUIRE))
		sched_yield();
}

/* A claimer that sleeps through six looks at it (30 ms), as a preempted
 * one would, is waited for: the wait sees its entry published. (Before
 * the word named its claimer, the wait gave up after 5 ms.) */
/* Static: a failed assertion leaves the test while its claimer runs. */
static struct claimer waited = {.sleep_ns = 6 * CLAIM_WAIT_NS, .publish = 1};
static struct claimer never = {.publish = 0};

static void test_live_claimer_waited_for(void **state)
{
	struct claimer *c = &waited;

	(void)state;
	start_claimer(c);
	errno = 1234;
	assert_int_equal(claim_wait(&c->word, INODE), INODE);
	assert_int_equal(errno, 1234);
	assert_int_equal(pthread_join(c->thread, NULL), 0);
}

/* A live claimer that never publishes is waited for CLAIM_LIVE_WAIT_NS,
 * then given up on: the word still names it. */
static void test_live_claimer_bounded(void **state)
{
	struct claimer *c = &never;
	uint64_t t0, claimed, left;

	(void)state;
	start_claimer(c);
	claimed = __atomic_load_n(&c->word, __ATOMIC_ACQUIRE);
	t0 = now_ns();
	left = claim_wait(&c->word, INODE);
	__atomic_store_n(&c->go, 1, __ATOMIC_RELEASE);
	assert_int_equal(left, claimed);
	assert_true(now_ns() - t0 >= CLAIM_LIVE_WAIT_NS);
	assert_int_equal(pthread_join(c->thread, NULL), 0);
}

/* A child that sleeps until killed, or until this test ends. */
static pid_t sleeping_child(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	return pid;
}

/* The wait for WORD (a claim of INODE) gives up, leaving WORD as it
 * was, in less than BOUND_NS. */
static void assert_given_up_within(uint64_t word, uint64_t bound_ns)
{
	uint64_t t0 = now_ns();

	assert_int_equal(claim_wait(&word, INODE), word);
	assert_true(now_ns() - t0 < bound_ns);
}

/* A claimer that is stopped, or dead, is given up on at the first look
 * (CLAIM_WAIT_NS), not waited for CLAIM_LIVE_WAIT_NS. */
static void test_stopped_claimer_given_up(void **state)
{
	pid_t pid = sleeping_child();
	int status;

	(void)state;
	assert_int_equal(kill(pid, SIGSTOP), 0);
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	assert_true(WIFSTOPPED(status));
	assert_given_up_within(sockshim_inode_claiming(INODE, pid), CLAIM_LIVE_WAIT_NS);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_dead_claimer_given_up(void **state)
{
	pid_t pid = sleeping_child();
	int status;

	(void)state;
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(thread_state(pid), 0);
	assert_given_up_within(sockshim_inode_claiming(INODE, pid), CLAIM_LIVE_WAIT_NS);
}

/* Our own thread's claim (a handler interrupting our fill): no wait. */
static void test_own_claim_not_waited_for(void **state)
{
	(void)state;
	assert_given_up_within(sockshim_inode_claiming(INODE, gettid()), CLAIM_WAIT_NS);
}

/* Anything but a claim of INODE ends the wait at once, as it reads. */
static void test_other_words_returned(void **state)
{
	uint64_t words[] = {0, INODE, INODE + 1, sockshim_inode_claiming(INODE + 1, 1)};
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		assert_int_equal(claim_wait(&words[i], INODE), words[i]);
}

/* The word's fields: the claiming bit, the claimer, the inode; a word
 * that is not a published inode is no key. */
static void test_word_fields(void **state)
{
	uint64_t w = sockshim_inode_claiming(UINT32_MAX, 4194304);

	(void)state;
	assert_true(sockshim_inode_is_claiming(w));
	assert_int_equal(sockshim_inode_claimer(w), 4194304);
	assert_int_equal(sockshim_inode_of(w), UINT32_MAX);
	assert_true(sockshim_inode_claimed_for(w, UINT32_MAX));
	assert_false(sockshim_inode_claimed_for(w, 7));
	assert_false(sockshim_inode_claimed_for(UINT32_MAX, UINT32_MAX));
	assert_false(sockshim_inode_in_use(w));
	assert_true(sockshim_inode_in_use(UINT32_MAX));
	assert_false(sockshim_inode_in_use(UINT64_C(1) << 32));
	assert_false(sockshim_inode_in_use(0));
	/* A claimer's tid is kept to 31 bits: the claiming bit stays its own. */
	assert_int_equal(sockshim_inode_claimer(sockshim_inode_claiming(1, -1)), INT32_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_claimer_waited_for),
		cmocka_unit_test(test_live_claimer_bounded),
		cmocka_unit_test(test_stopped_claimer_given_up),
		cmocka_unit_test(test_dead_claimer_given_up),
		cmocka_unit_test(test_own_claim_not_waited_for),
		cmocka_unit_test(test_other_words_returned),
		cmocka_unit_test(test_word_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
