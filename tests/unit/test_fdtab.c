/* Unit tests of the descriptor table (shim/fdtab.c). fdtab_init keeps the
 * first capacity for the life of the process, so the "before init" group
 * runs first and the other group initialises once in its group setup.
 * Tests within the group run in order and share the table: each uses its
 * own fds and leaves them untracked, except where said. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fdtab.h"

#define CAP 4096u
#define NTHREADS 4
#define ROUNDS 2000

static struct fd_entry entry(uint64_t inode, uint64_t flags)
{
	struct fd_entry e;
	size_t i;

	memset(&e, 0, sizeof(e));
	e.inode = inode;
	e.flags = flags;
	e.family = 10;
	e.socktype = 1;
	e.local_port = (uint16_t)inode;
	e.peer_port = (uint16_t)(inode >> 16);
	for (i = 0; i < sizeof(e.local_ip); i++) {
		e.local_ip[i] = (uint8_t)(inode + i);
		e.peer_ip[i] = (uint8_t)(inode * 3 + i);
	}
	e.ledger = (uint32_t)inode * 7;
	e.born_ns = ~inode;
	e.callsite = inode << 3;
	for (i = 0; i < sizeof(e.spare) / sizeof(e.spare[0]); i++)
		e.spare[i] = inode + i;
	return e;
}

static void assert_entry_equal(const struct fd_entry *a, const struct fd_entry *b)
{
	assert_memory_equal(a, b, sizeof(*a));
}

/* Before fdtab_init: nothing is tracked and nothing crashes. */
static void test_fdtab_before_init(void **state)
{
	struct fd_entry e = entry(5, 0), out;
	uint64_t ov = fdtab_overflow_count();

	(void)state;
	assert_int_equal(fdtab_capacity, 0);
	assert_false(fdtab_is_tracked(0));
	assert_false(fdtab_is_tracked(-1));
	assert_int_equal(fdtab_get(0, &out), 0);
	assert_int_equal(fdtab_take(0, &out), 0);
	assert_int_equal(fdtab_set(0, &e), -EMFILE);
	assert_int_equal(fdtab_overflow_count(), ov); /* the caller counts */
	assert_int_equal(fdtab_flags_or(0, 1), 0);
	assert_int_equal(fdtab_flags_and(0, 0), 0);
	assert_int_equal(fdtab_high(), 0);
	/* The hot-path test reads the empty table before init, for any fd. */
	assert_false(fdtab_maybe_tracked(0));
	assert_false(fdtab_maybe_tracked(-1));
	assert_false(fdtab_maybe_tracked(INT32_MAX));
	assert_false(fdtab_maybe_either(INT32_MIN, 7));
	/* A capacity that is no power of two has no mask: refused. */
	assert_int_equal(fdtab_init(CAP - 1), -EINVAL);
	assert_int_equal(fdtab_init(0), -EINVAL);
	assert_int_equal(fdtab_capacity, 0);
	assert_int_equal(fdtab_mask, 0);
}

static int group_setup(void **state)
{
	(void)state;
	return fdtab_init(CAP);
}

/* No listener seen until one is tracked (by fdtab_set or a flag), for good. */
static void test_fdtab_listeners_seen(void **state)
{
	struct fd_entry e = entry(40, FDT_CLOEXEC), out;

	(void)state;
	assert_false(fdtab_listeners_seen());
	assert_int_equal(fdtab_set(40, &e), 0);
	fdtab_flags_or(40, FDT_NONBLOCK);
	assert_false(fdtab_listeners_seen());
	fdtab_flags_or(40, SOCKSHIM_FLAG_LISTENER);
	assert_true(fdtab_listeners_seen());
	assert_int_equal(fdtab_take(40, &out), 1);
	assert_true(fdtab_listeners_seen());
}

static void test_fdtab_init_keeps_first_capacity(void **state)
{
	(void)state;
	assert_int_equal(fdtab_capacity, CAP);
	assert_non_null(fdtab);
	assert_int_equal(fdtab_init(CAP * 2), 0);
	assert_int_equal(fdtab_capacity, CAP);
	assert_int_equal(fdtab_init(1), 0);
	assert_int_equal(fdtab_capacity, CAP);
	/* Untouched entries read as untracked. */
	assert_false(fdtab_is_tracked(0));
	assert_false(fdtab_is_tracked(CAP - 1));
}

static void test_fdtab_set_get_take(void **state)
{
	struct fd_entry e = entry(0x1122334455667788ull, SOCKSHIM_FLAG_LISTENER | FDT_CLOEXEC), out;
	struct fd_entry e2 = entry(77, 0);

	(void)state;
	assert_false(fdtab_is_tracked(3));
	assert_int_equal(fdtab_get(3, &out), 0);
	assert_int_equal(fdtab_set(3, &e), 0);
	assert_true(fdtab_is_tracked(3));
	assert_false(fdtab_is_tracked(2));
	assert_false(fdtab_is_tracked(4));
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(fdtab_get(3, &out), 1);
	assert_entry_equal(&out, &e);
	/* Replacing (dup2 onto a tracked fd) overwrites every word. */
	assert_int_equal(fdtab_set(3, &e2), 0);
	assert_int_equal(fdtab_get(3, &out), 1);
	assert_entry_equal(&out, &e2);

	/* take: once 1 with the entry, then 0. */
	memset(&out, 0, sizeof(out));
	assert_int_equal(fdtab_take(3, &out), 1);
	assert_entry_equal(&out, &e2);
	assert_false(fdtab_is_tracked(3));
	assert_int_equal(fdtab_get(3, &out), 0);
	assert_int_equal(fdtab_take(3, &out), 0);
	assert_int_equal(fdtab_take(3, NULL), 0);
	/* take with no output buffer. */
	assert_int_equal(fdtab_set(3, &e), 0);
	assert_int_equal(fdtab_take(3, NULL), 1);
	assert_int_equal(fdtab_take(3, NULL), 0);
}

/* fd >= capacity: fdtab_set refuses it with -EMFILE and leaves counting
 * to its caller (track.c), which counts with fdtab_count_overflow. */
static void test_fdtab_capacity_bound(void **state)
{
	struct fd_entry e = entry(9, 0), out;
	uint64_t ov = fdtab_overflow_count();

	(void)state;
	assert_int_equal(fdtab_set(CAP, &e), -EMFILE);
	assert_int_equal(fdtab_set(CAP + 1000, &e), -EMFILE);
	assert_int_equal(fdtab_set(INT32_MAX, &e), -EMFILE);
	assert_int_equal(fdtab_set(-1, &e), -EMFILE);
	assert_int_equal(fdtab_overflow_count(), ov);
	assert_int_equal(fdtab_count_overflow(), ov + 1);
	assert_int_equal(fdtab_overflow_count(), ov + 1);
	assert_int_equal(fdtab_count_overflow(), ov + 2);
	assert_int_equal(fdtab_overflow_count(), ov + 2);
	assert_false(fdtab_is_tracked(CAP));
	assert_int_equal(fdtab_get(CAP, &out), 0);
	assert_int_equal(fdtab_take(CAP, &out), 0);
	assert_int_equal(fdtab_flags_or(CAP, 1), 0);
	assert_int_equal(fdtab_flags_and(CAP, 0), 0);
	/* The last slot is inside. */
	assert_int_equal(fdtab_set(CAP - 1, &e), 0);
	assert_true(fdtab_is_tracked(CAP - 1));
	assert_int_equal(fdtab_overflow_count(), ov + 2);
	assert_int_equal(fdtab_take(CAP - 1, NULL), 1);
}

/* A socket whose inode was not asked for yet is tracked all the same. */
static void test_fdtab_inode_unknown_is_tracked(void **state)
{
	struct fd_entry e = entry(FDT_INODE_UNKNOWN, 0), out;

	(void)state;
	assert_int_equal(fdtab_set(40, &e), 0);
	assert_true(fdtab_is_tracked(40));
	assert_int_equal(fdtab_get(40, &out), 1);
	assert_int_equal(out.inode, FDT_INODE_UNKNOWN);
	/* Learning the inode later replaces it in place. */
	e.inode = 4242;
	assert_int_equal(fdtab_set(40, &e), 0);
	assert_int_equal(fdtab_take(40, &out), 1);
	assert_int_equal(out.inode, 4242);
}

static void test_fdtab_is_tracked_out_of_range(void **state)
{
	(void)state;
	assert_false(fdtab_is_tracked(-1));
	assert_false(fdtab_is_tracked(-2));
	assert_false(fdtab_is_tracked(INT32_MIN));
	assert_false(fdtab_is_tracked(CAP));
	assert_false(fdtab_is_tracked(CAP + 1));
	assert_false(fdtab_is_tracked(INT32_MAX));
}

/* The hot-path test: "no" is exact for every number, within the table or
 * not; "yes" for a tracked fd, and for a number beyond the table whose
 * masked index is a tracked fd's (the slow path then asks exactly). */
static void test_fdtab_maybe_tracked(void **state)
{
	struct fd_entry e = entry(55, 0), out;

	(void)state;
	assert_int_equal(fdtab_mask, CAP - 1);
	assert_false(fdtab_maybe_tracked(50));
	assert_false(fdtab_maybe_tracked(-1));
	assert_false(fdtab_maybe_tracked(CAP + 50));
	assert_false(fdtab_maybe_either(50, 51));
	assert_false(fdtab_maybe_either(-1, INT32_MAX));
	assert_int_equal(fdtab_set(50, &e), 0);
	assert_true(fdtab_maybe_tracked(50));
	assert_true(fdtab_maybe_either(50, 51));
	assert_true(fdtab_maybe_either(51, 50));
	assert_false(fdtab_maybe_either(51, 52));
	/* An alias: maybe, but not tracked. */
	assert_true(fdtab_maybe_tracked(CAP + 50));
	assert_false(fdtab_is_tracked(CAP + 50));
	assert_int_equal(fdtab_get(CAP + 50, &out), 0);
	assert_int_equal(fdtab_take(50, &out), 1);
	assert_false(fdtab_maybe_tracked(50));
	assert_false(fdtab_maybe_tracked(CAP + 50));
	assert_false(fdtab_maybe_either(50, 51));
}

/* A descriptor of the shim's own: the wrappers' fast test sends it to the
 * slow path (maybe tracked, has an entry), every socket question says no,
 * fdtab_take leaves it, and only one fdtab_take_own unmarks it. */
static void test_fdtab_shim_own(void **state)
{
	struct fd_entry e = entry(61, 0), out;

	(void)state;
	assert_int_equal(fdtab_take_own(60), 0); /* not ours */
	assert_int_equal(fdtab_set_own(60), 0);
	assert_true(fdtab_maybe_tracked(60));
	assert_true(fdtab_maybe_either(59, 60));
	assert_true(fdtab_has_entry(60));
	assert_false(fdtab_is_tracked(60));
	assert_false(fdtab_is_listener(60));
	assert_int_equal(fdtab_get(60, &out), 0);
	assert_int_equal(fdtab_take(60, &out), 0);
	assert_true(fdtab_has_entry(60)); /* fdtab_take left it */
	assert_int_equal(fdtab_ledger(60), 0);
	assert_int_equal(fdtab_take_own(60), 1);
	assert_int_equal(fdtab_take_own(60), 0);
	assert_false(fdtab_has_entry(60));
	assert_false(fdtab_maybe_tracked(60));
	/* A socket's entry is no own entry. */
	assert_int_equal(fdtab_set(61, &e), 0);
	assert_int_equal(fdtab_take_own(61), 0);
	assert_true(fdtab_is_tracked(61));
	assert_int_equal(fdtab_take(61, &out), 1);
	assert_int_equal(fdtab_set_own((int)CAP), -EMFILE);
	assert_int_equal(fdtab_take_own((int)CAP), 0);
}

static void test_fdtab_flags_return_previous(void **state)
{
	struct fd_entry e = entry(11, FDT_CLOEXEC), out;

	(void)state;
	assert_int_equal(fdtab_set(20, &e), 0);
	assert_int_equal(fdtab_flags_or(20, FDT_EOF_SEEN), FDT_CLOEXEC);
	assert_int_equal(fdtab_flags_or(20, FDT_EOF_SEEN), FDT_CLOEXEC | FDT_EOF_SEEN);
	assert_int_equal(fdtab_flags_or(20, FDT_NONBLOCK),
			 FDT_CLOEXEC | FDT_EOF_SEEN);
	assert_int_equal(fdtab_flags_and(20, ~(uint64_t)FDT_CLOEXEC),
			 FDT_CLOEXEC | FDT_EOF_SEEN | FDT_NONBLOCK);
	assert_int_equal(fdtab_flags_and(20, ~(uint64_t)FDT_CLOEXEC),
			 FDT_EOF_SEEN | FDT_NONBLOCK);
	assert_int_equal(fdtab_get(20, &out), 1);
	assert_int_equal(out.flags, FDT_EOF_SEEN | FDT_NONBLOCK);
	/* Flags do not touch the rest of the entry. */
	out.flags = e.flags;
	assert_entry_equal(&out, &e);
	assert_int_equal(fdtab_flags_and(20, 0), FDT_EOF_SEEN | FDT_NONBLOCK);
	assert_int_equal(fdtab_take(20, &out), 1);
	assert_int_equal(out.flags, 0);
	/* A new socket on the same fd starts from its own flags. */
	e = entry(12, SOCKSHIM_FLAG_LISTENER);
	assert_int_equal(fdtab_set(20, &e), 0);
	assert_int_equal(fdtab_flags_or(20, 0), SOCKSHIM_FLAG_LISTENER);
	assert_int_equal(fdtab_take(20, NULL), 1);
}

/* Runs after the tests above (which used fds below 100 and CAP - 1). */
static void test_fdtab_high_tracks_highest(void **state)
{
	struct fd_entry e = entry(13, 0);

	(void)state;
	assert_int_equal(fdtab_high(), CAP); /* from test_fdtab_capacity_bound */
	assert_int_equal(fdtab_set(50, &e), 0);
	assert_int_equal(fdtab_high(), CAP); /* never lowers */
	assert_int_equal(fdtab_take(50, NULL), 1);
	assert_int_equal(fdtab_high(), CAP); /* "ever tracked" */
	assert_int_equal(fdtab_set(CAP, &e), -EMFILE);
	assert_int_equal(fdtab_high(), CAP); /* overflow is not tracked */
}

/* Threads own disjoint fds (fd % NTHREADS == thread), as the kernel makes
 * them, and set, check and take them round after round. */
struct worker {
	int id;
	int errors;
	pthread_barrier_t *start;
};

#define FDS_PER_THREAD 64
#define FD_BASE 1000

static int fd_of(int thread, int k)
{
	return FD_BASE + k * NTHREADS + thread;
}

static uint64_t inode_of(int fd, int round)
{
	return ((uint64_t)(round + 1) << 32) | (uint64_t)fd;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct fd_entry e, out;
	int round, k, fd;

	pthread_barrier_wait(w->start);
	for (round = 0; round < ROUNDS; round++) {
		for (k = 0; k < FDS_PER_THREAD; k++) {
			fd = fd_of(w->id, k);
			e = entry(inode_of(fd, round), (uint64_t)k);
			if (fdtab_set(fd, &e) != 0 || !fdtab_is_tracked(fd))
				w->errors++;
		}
		for (k = 0; k < FDS_PER_THREAD; k++) {
			fd = fd_of(w->id, k);
			e = entry(inode_of(fd, round), (uint64_t)k);
			if (fdtab_get(fd, &out) != 1 || memcmp(&out, &e, sizeof(e)))
				w->errors++;
			if (fdtab_flags_or(fd, 0x100) != (uint64_t)k)
				w->errors++;
			/* The last round leaves the even ones tracked. */
			if (round == ROUNDS - 1 && k % 2 == 0)
				continue;
			if (fdtab_take(fd, &out) != 1 || out.inode != e.inode ||
			    out.flags != ((uint64_t)k | 0x100) || fdtab_take(fd, NULL) != 0)
				w->errors++;
		}
	}
	return NULL;
}

static void test_fdtab_concurrent_distinct_fds(void **state)
{
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t start;
	struct fd_entry e, out;
	int i, k, fd, tracked = 0;

	(void)state;
	assert_int_equal(pthread_barrier_init(&start, NULL, NTHREADS), 0);
	for (i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .id = i, .start = &start };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].errors, 0);
	}
	pthread_barrier_destroy(&start);
	/* The table is exactly what the threads left. */
	for (fd = FD_BASE; fd < fd_of(NTHREADS - 1, FDS_PER_THREAD - 1) + 1; fd++) {
		k = (fd - FD_BASE) / NTHREADS;
		if (k % 2) {
			assert_false(fdtab_is_tracked(fd));
			continue;
		}
		e = entry(inode_of(fd, ROUNDS - 1), (uint64_t)k | 0x100);
		assert_int_equal(fdtab_get(fd, &out), 1);
		assert_entry_equal(&out, &e);
		tracked++;
		assert_int_equal(fdtab_take(fd, NULL), 1);
	}
	assert_int_equal(tracked, NTHREADS * FDS_PER_THREAD / 2);
	assert_int_equal(fdtab_high(), CAP);
}

/* Many threads close the same fd at once (close racing close_range, or
 * two threads of a buggy program): exactly one reports the drop. */
struct racer {
	pthread_barrier_t *go, *done;
	int wins;
};

#define RACE_FD 2000

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	int round;

	for (round = 0; round < ROUNDS; round++) {
		pthread_barrier_wait(r->go);
		r->wins += fdtab_take(RACE_FD, NULL);
		pthread_barrier_wait(r->done);
	}
	return NULL;
}

static void test_fdtab_concurrent_take_once(void **state)
{
	struct racer r[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t go, done;
	struct fd_entry e;
	int i, round, wins;

	(void)state;
	assert_int_equal(pthread_barrier_init(&go, NULL, NTHREADS + 1), 0);
	assert_int_equal(pthread_barrier_init(&done, NULL, NTHREADS + 1), 0);
	for (i = 0; i < NTHREADS; i++) {
		r[i] = (struct racer){ .go = &go, .done = &done };
		assert_int_equal(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
	}
	for (round = 0; round < ROUNDS; round++) {
		e = entry(inode_of(RACE_FD, round), 0);
		assert_int_equal(fdtab_set(RACE_FD, &e), 0);
		pthread_barrier_wait(&go);
		pthread_barrier_wait(&done);
		assert_false(fdtab_is_tracked(RACE_FD));
	}
	for (wins = 0, i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		wins += r[i].wins;
	}
	pthread_barrier_destroy(&go);
	pthread_barrier_destroy(&done);
	assert_int_equal(wins, ROUNDS);
}

/* Threads set distinct flag bits on one shared fd: none is lost. */
static void *flagger_main(void *arg)
{
	uint64_t bit = 1ull << (8 + (int)(intptr_t)arg);
	int i;

	for (i = 0; i < ROUNDS; i++) {
		fdtab_flags_or(30, bit);
		fdtab_flags_and(30, ~bit);
	}
	fdtab_flags_or(30, bit);
	return NULL;
}

static void *counter_main(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < ROUNDS; i++)
		fdtab_count_overflow();
	return NULL;
}

static void test_fdtab_concurrent_overflow_count(void **state)
{
	pthread_t th[NTHREADS];
	uint64_t ov = fdtab_overflow_count();
	int i;

	(void)state;
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, counter_main, NULL), 0);
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(fdtab_overflow_count(), ov + NTHREADS * ROUNDS);
}

static void test_fdtab_concurrent_flags(void **state)
{
	struct fd_entry e = entry(31, SOCKSHIM_FLAG_LISTENER), out;
	pthread_t th[NTHREADS];
	uint64_t want = SOCKSHIM_FLAG_LISTENER;
	int i;

	(void)state;
	assert_int_equal(fdtab_set(30, &e), 0);
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_create(&th[i], NULL, flagger_main, (void *)(intptr_t)i),
				 0);
		want |= 1ull << (8 + i);
	}
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(fdtab_take(30, &out), 1);
	assert_int_equal(out.flags, want);
}

int main(void)
{
	const struct CMUnitTest before[] = {
		cmocka_unit_test(test_fdtab_before_init),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fdtab_listeners_seen), /* first: none seen yet */
		cmocka_unit_test(test_fdtab_init_keeps_first_capacity),
		cmocka_unit_test(test_fdtab_set_get_take),
		cmocka_unit_test(test_fdtab_capacity_bound),
		cmocka_unit_test(test_fdtab_inode_unknown_is_tracked),
		cmocka_unit_test(test_fdtab_is_tracked_out_of_range),
		cmocka_unit_test(test_fdtab_maybe_tracked),
		cmocka_unit_test(test_fdtab_shim_own),
		cmocka_unit_test(test_fdtab_flags_return_previous),
		cmocka_unit_test(test_fdtab_high_tracks_highest),
		cmocka_unit_test(test_fdtab_concurrent_distinct_fds),
		cmocka_unit_test(test_fdtab_concurrent_take_once),
		cmocka_unit_test(test_fdtab_concurrent_flags),
		cmocka_unit_test(test_fdtab_concurrent_overflow_count),
	};
	int failed;

	failed = cmocka_run_group_tests_name("fdtab before init", before, NULL, NULL);
	failed += cmocka_run_group_tests_name("fdtab", tests, group_setup, NULL);
	return failed;
}
