/* Unit tests of shim/accept_token.c, the poll token's hand-off, on a
 * listener in a private mapping (private_seg.h): a dropper names and
 * rings the next marked row after its own, and only the thread named may
 * take the free token until the offer lapses (HANDOFF_NS); with no row
 * marked anyone may take it at once; a named waiter that declines passes
 * it on; a marked row whose thread is gone is skipped and unmarked;
 * take_or_wait marks a refused caller and unmarks one that gets the
 * token.
 * The main thread plays every thread: shim_gettid (stubbed here) answers
 * the tid of the actor it acts as, a parked thread of this process, so
 * that the keys name living threads to listeners_thread_gone. The clock
 * (emit_now_ns) is stepped by the test; doorbell_fd and doorbell_ring are
 * stubs that record which row was rung. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "accept_token.h"
#include "doorbell.h"
#include "emit.h"
#include "listeners.h"
#include "private_seg.h"
#include "real.h"

#define RING (1u << SOCKSHIM_RING_MIN_SHIFT)
#define LEDGER (1u << SOCKSHIM_LEDGER_MIN_SHIFT)
/* Actors 0 to 3 take worker rows 0 to 3, in order. */
#define ACTORS 4
#define MAX_RINGS 16
/* Any start: the clock only has to be far from 0. */
#define T0_NS (1000 * 1000000000ull)

/* What emit.c would define: the session (our private mapping), the
 * cached pid (0: getpid), the clock and the caller's tid. */
struct seg_map shim_seg;
pid_t shim_pid;

static uint64_t now_ns;   /* the clock the token code reads */
static pid_t acting_tid;  /* the thread the main thread plays; 0: itself */

uint64_t emit_now_ns(void)
{
	return now_ns;
}

pid_t shim_gettid(void)
{
	return acting_tid ? acting_tid : gettid();
}

/* stall.c looks at the listener's queue through the real poll. */
struct real_syms real = {.poll = poll};

/* The doorbells of this process: there (doorbell_fd answers a number)
 * unless a test takes them away; each ring recorded. */
static int have_bells;
static unsigned rung[MAX_RINGS]; /* the rows rung, in order */
static unsigned rings;

int doorbell_fd(uint32_t ref, unsigned row)
{
	(void)row;
	assert_int_equal(ref, 1);
	return have_bells ? 1000 : -1;
}

int doorbell_ring(uint32_t ref, unsigned row)
{
	assert_int_equal(ref, 1);
	if (!have_bells)
		return -1;
	assert_true(rings < MAX_RINGS);
	rung[rings++] = row;
	return 0;
}

/* A thread of this process that waits until it is let go: its tid is a
 * living thread's for as long as the test plays it. */
struct actor {
	pthread_t thread;
	pid_t tid;
	int up[2];   /* the thread writes its tid here */
	int down[2]; /* closed to let it go */
};

static void *actor_main(void *arg)
{
	struct actor *a = arg;
	pid_t tid = gettid();
	char c;

	if (write(a->up[1], &tid, sizeof(tid)) != (ssize_t)sizeof(tid))
		return NULL;
	while (read(a->down[0], &c, 1) < 0 && errno == EINTR) {
	}
	return NULL;
}

struct fixture {
	struct sockshim_listener *l;
	struct sockshim_worker *w[ACTORS];
	struct actor a[ACTORS];
	uint64_t key[ACTORS];
	/* An empty pipe's read end stands for the listener: no connection
	 * waits on it, so a held token is never taken as stuck. */
	int quiet[2];
};

static uint64_t key_of(pid_t pid, pid_t tid)
{
	return ((uint64_t)(uint32_t)pid << 32) | (uint32_t)tid;
}

static uint64_t bit(unsigned row)
{
	return UINT64_C(1) << row;
}

/* Play actor I from here on. */
static void as(struct fixture *f, unsigned i)
{
	acting_tid = f->a[i].tid;
}

/* One test at a time: the stubs above are as global as what they stand
 * for. */
static struct fixture fixture;

static int setup(void **state)
{
	struct fixture *f = &fixture;
	struct fd_entry e;
	unsigned i;

	memset(f, 0, sizeof(*f));
	if (private_seg_map(&shim_seg, RING, LEDGER) || pipe(f->quiet))
		return -1;
	accept_mode = SOCKSHIM_ACCEPT_SERIALIZE;
	memset(&e, 0, sizeof(e));
	e.family = AF_INET;
	e.socktype = SOCK_STREAM;
	e.local_port = 8080;
	e.flags = SOCKSHIM_FLAG_LISTENER | SOCKSHIM_FLAG_LOCAL_KNOWN;
	f->l = listeners_entry(&shim_seg, listeners_get(&shim_seg, 7001, &e, 128));
	if (!f->l || listeners_ref(&shim_seg, f->l) != 1)
		return -1;
	for (i = 0; i < ACTORS; i++) {
		struct actor *a = &f->a[i];

		if (pipe(a->up) || pipe(a->down) ||
		    pthread_create(&a->thread, NULL, actor_main, a) ||
		    read(a->up[0], &a->tid, sizeof(a->tid)) != (ssize_t)sizeof(a->tid))
			return -1;
		f->key[i] = key_of(getpid(), a->tid);
		as(f, i);
		f->w[i] = listeners_worker(f->l);
		if (f->w[i] != &f->l->workers[i])
			return -1;
	}
	acting_tid = 0;
	now_ns = T0_NS;
	have_bells = 1;
	rings = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unsigned i;

	for (i = 0; i < ACTORS; i++) {
		struct actor *a = &f->a[i];

		close(a->down[1]);
		pthread_join(a->thread, NULL);
		close(a->down[0]);
		close(a->up[0]);
		close(a->up[1]);
	}
	close(f->quiet[0]);
	close(f->quiet[1]);
	private_seg_unmap(&shim_seg);
	acting_tid = 0;
	return 0;
}

/* Actor I takes the free token, unmarked. */
static void holder(struct fixture *f, unsigned i)
{
	as(f, i);
	assert_int_equal(accept_token_take(f->l, f->quiet[0]), 1);
	assert_true(f->l->poller == f->key[i]);
}

/* Actor I asks for the token held by another and is refused: marked. */
static void waits(struct fixture *f, unsigned i)
{
	as(f, i);
	assert_int_equal(accept_token_take_or_wait(f->l, f->quiet[0], f->w[i]), 0);
	assert_true(f->l->token_waiting & bit(i));
}

/* The holder (row 0) drops with rows 1 and 2 marked: row 1, the next
 * after its own, is named and rung. Neither a third thread nor the
 * dropper may take the free token; the one named does, and the name is
 * cleared. */
static void test_drop_names_next(void **state)
{
	struct fixture *f = *state;
	struct sockshim_listener *l = f->l;

	holder(f, 0);
	waits(f, 1);
	waits(f, 2);
	assert_true(l->token_waiting == (bit(1) | bit(2)));
	as(f, 0);
	accept_token_drop(l);
	assert_true(l->poller == 0);
	assert_true(l->token_offered_to == f->key[1]);
	assert_true(l->token_offered_ns == T0_NS);
	assert_true(l->token_waiting == (bit(1) | bit(2))); /* each waiter unmarks itself */
	assert_int_equal(l->token_handoffs, 1);
	assert_int_equal(rings, 1);
	assert_int_equal(rung[0], 1);

	now_ns += 1000000; /* 1 ms on: the rung waiter has not run yet */
	as(f, 3);
	assert_int_equal(accept_token_take(l, f->quiet[0]), 0);
	as(f, 0);
	assert_int_equal(accept_token_take(l, f->quiet[0]), 0);
	as(f, 2);
	assert_int_equal(accept_token_take_or_wait(l, f->quiet[0], f->w[2]), 0);
	assert_true(l->poller == 0);
	assert_true(l->token_offered_to == f->key[1]);

	as(f, 1);
	assert_int_equal(accept_token_take_or_wait(l, f->quiet[0], f->w[1]), 1);
	assert_true(l->poller == f->key[1]);
	assert_true(l->token_offered_to == 0);
	assert_true(l->token_waiting == bit(2));
	assert_int_equal(l->token_handoffs, 1);
	assert_int_equal(rings, 1);
}

/* The next marked row after the dropper's own, round the table: row 2
 * drops with rows 1 and 3 marked, row 3 is rung; row 3 drops with row 1
 * marked, row 1 is rung. */
static void test_drop_in_turn(void **state)
{
	struct fixture *f = *state;
	struct sockshim_listener *l = f->l;

	holder(f, 2);
	waits(f, 1);
	waits(f, 3);
	as(f, 2);
	accept_token_drop(l);
	assert_true(l->token_offered_to == f->key[3]);
	as(f, 3);
	assert_int_equal(accept_token_take_or_wait(l, f->quiet[0], f->w[3]), 1);
	accept_token_drop(l);
	assert_true(l->token_offered_to == f->key[1]);
	assert_int_equal(rings, 2);
	assert_int_equal(rung[0], 3);
	assert_int_equal(rung[1], 1);
	assert_int_equal(l->token_handoffs, 2);
}

/* The rung waiter does not take the token: HANDOFF_NS after the drop the
 * offer has lapsed, and anyone may take it. Meanwhile a refused waiter is
 * told to look again when it lapses. */
static void test_offer_lapses(void **state)
{
	struct fixture *f = *state;
	struct sockshim_listener *l = f->l;

	holder(f, 0);
	waits(f, 1);
	as(f, 0);
	accept_token_drop(l);
	assert_true(l->token_offered_to == f->key[1]);

	now_ns = T0_NS + 10000000; /* 10 ms */
	as(f, 3);
	assert_true(accept_token_look_ns(l) == (uint64_t)HANDOFF_NS - 10000000);
	now_ns = T0_NS + HANDOFF_NS - 1;
	assert_int_equal(accept_token_take(l, f->quiet[0]), 0);
	assert_true(accept_token_look_ns(l) == 1);
	now_ns = T0_NS + HANDOFF_NS;
	assert_int_equal(accept_token_take(l, f->quiet[0]), 1);
	assert_true(l->poller == f->key[3]);
	assert_true(l->token_offered_to == 0);
	assert_true(l->token_waiting == bit(1));
	assert_int_equal(l->token_handoffs, 1);
	assert_int_equal(rings, 1);
}

/* Nobody marked: the dropper clears the name and rings nobody, and
 * anyone may take the token at once, the dropper too. */
static void test_drop_unmarked(void **state)
{
	struct fixture *f = *state;
	struct sockshim_listener *l = f->l;

	holder(f, 0);
	accept_token_drop(l);
	assert_true(l->poller == 0);
	assert_true(l->token_offered_to == 0);
	assert_true(l->token_waiting == 0);
	assert_int_equal(l->token_handoffs, 0);
	assert_int_equal(rings, 0);
	assert_int_equal(accept_token_take(l, f->quiet[0]), 1); /* the dropper, at once */
	assert_true(l->poller == f->key[0]);
	accept_token_drop(l);
	holder(f, 3); /* another, at once */
	assert_true(l->token_offered_to == 0);

	/* Without the doorbells (made by another process) a marked waiter
	 * cannot be rung: the name is cleared all the same. */
	waits(f, 1);
	have_bells = 0;
	as(f, 3);
	accept_token_drop(l);
	assert_true(l->poller == 0);
	assert_true(l->token_offered_to == 0);
	assert_true(l->token_waiting == bit(1));
	assert_int_equal(l->token_handoffs, 0);
	assert_int_equal(rings, 0);
	holder(f, 2);
}

/* The waiter named leaves its poll without the token: it is offered to
 * the next marked row (not the decliner's, still marked), rung; that one
 * declines with no other row marked: the name is cleared. A thread not
 * named, or a token not free, is left as it is. */
static void test_decline(void **state)
{
	struct fixture *f = *state;
	struct sockshim_listener *l = f->l;

	holder(f, 0);
	waits(f, 1);
	waits(f, 2);
	as(f, 0);
	accept_token_drop(l);
	assert_true(l->token_offered_to == f->key[1]);

	now_ns = T0_NS + 5000000;
	as(f, 3); /* not named: nothing */
	accept_token_decline(l, 1, f->w[3]);
	assert_true(l->token_offered_to == f->key[1]);
	assert_true(l->token_offered_ns == T0_NS);
	as(f, 1);
	accept_token_decline(l, 1, f->w[1]);
	assert_true(l->poller == 0);
	assert_true(l->token_offered_to == f->key[2]);
	assert_true(l->token_offered_ns == T0_NS + 5000000); /* the offer starts again */
	assert_int_equal(l->token_handoffs, 2);
	assert_int_equal(rings, 2);
	assert_int_equal(rung[1], 2);

	as(f, 1);
	accept_token_unwait(l, f->w[1]);
	assert_true(l->token_waiting == bit(2));
	as(f, 2);
	accept_token_decline(l, 1, f->w[2]);
	assert_true(l->poller == 0);
	assert_true(l->token_offered_to == 0);
	assert_int_equal(l->token_handoffs, 2);
	assert_int_equal(rings, 2);

	/* Named, but the token was taken meanwhile: nothing. */
	holder(f, 3);
	l->token_offered_to = f->key[2];
	as(f, 2);
	accept_token_decline(l, 1, f->w[2]);
	assert_true(l->token_offered_to == f->key[2]);
	assert_true(l->poller == f->key[3]);
	assert_int_equal(rings, 2);
}

/* Row 1's thread ended while marked (killed waiting): the dropper skips
 * it and clears its mark, and rings row 2; with only such a row marked,
 * it rings nobody and clears the name. */
static void test_gone_row_skipped(void **state)
{
	struct fixture *f = *state;
	struct sockshim_listener *l = f->l;
	/* A thread id that exists in no process: pid_max is at most 2^22. */
	uint64_t gone = key_of(getpid(), (pid_t)((1u << 22) + 7));

	holder(f, 0);
	waits(f, 1);
	waits(f, 2);
	l->workers[1].key = gone;
	as(f, 0);
	accept_token_drop(l);
	assert_true(l->token_offered_to == f->key[2]);
	assert_true(l->token_waiting == bit(2));
	assert_int_equal(l->token_handoffs, 1);
	assert_int_equal(rings, 1);
	assert_int_equal(rung[0], 2);

	as(f, 2);
	assert_int_equal(accept_token_take_or_wait(l, f->quiet[0], f->w[2]), 1);
	__atomic_fetch_or(&l->token_waiting, bit(1), __ATOMIC_SEQ_CST); /* marked again */
	accept_token_drop(l);
	assert_true(l->poller == 0);
	assert_true(l->token_offered_to == 0);
	assert_true(l->token_waiting == 0);
	assert_int_equal(l->token_handoffs, 1);
	assert_int_equal(rings, 1);
}

/* take_or_wait marks a caller it refuses (token held, or offered to
 * another) and unmarks one that gets the token; unwait unmarks. */
static void test_take_or_wait_marks(void **state)
{
	struct fixture *f = *state;
	struct sockshim_listener *l = f->l;

	as(f, 1);
	assert_int_equal(accept_token_take_or_wait(l, f->quiet[0], f->w[1]), 1);
	assert_true(l->poller == f->key[1]);
	assert_true(l->token_waiting == 0);
	/* Ours already: ours still, unmarked. */
	assert_int_equal(accept_token_take_or_wait(l, f->quiet[0], f->w[1]), 1);
	assert_true(l->token_waiting == 0);

	as(f, 2);
	assert_int_equal(accept_token_take_or_wait(l, f->quiet[0], f->w[2]), 0);
	assert_true(l->token_waiting == bit(2));
	assert_true(l->poller == f->key[1]);

	as(f, 1);
	accept_token_drop(l); /* to row 2 */
	as(f, 3);
	assert_int_equal(accept_token_take_or_wait(l, f->quiet[0], f->w[3]), 0);
	assert_true(l->token_waiting == (bit(2) | bit(3)));
	accept_token_unwait(l, f->w[3]);
	assert_true(l->token_waiting == bit(2));

	as(f, 2);
	assert_int_equal(accept_token_take_or_wait(l, f->quiet[0], f->w[2]), 1);
	assert_true(l->token_waiting == 0);
	assert_true(l->poller == f->key[2]);
	assert_true(l->token_offered_to == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_drop_names_next, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_in_turn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offer_lapses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_unmarked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_row_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_take_or_wait_marks, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
