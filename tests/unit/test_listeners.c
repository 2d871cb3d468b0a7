/* Unit tests of shim/listeners.c, the listener table, run on a private
 * mapping (private_seg.h): registering a listener (first free entry,
 * found again, backlog updates), the full table (counted), the entry
 * lookup's bounds, worker rows (one per thread, found again, recycled
 * from a thread that ended with its counts kept, counted when none is
 * free), the statistics helpers, and concurrent writers: threads that
 * register the same listeners, and threads that count accepts in their
 * rows, with exact final counts. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "emit.h"
#include "listeners.h"
#include "private_seg.h"
#include "vfork.h"

#define RING (1u << SOCKSHIM_RING_MIN_SHIFT)
#define LEDGER (1u << SOCKSHIM_LEDGER_MIN_SHIFT)
#define THREADS 4
#define OPS 10000

/* emit.c asks; the tests never run in a vfork child. */
__thread int shim_vfork_pending; /* 0: shim_in_vfork_child() is false */

int shim_vfork_child_check(void)
{
	return 0;
}

static int setup(void **state)
{
	struct seg_map *m = calloc(1, sizeof(*m));

	if (!m || private_seg_map(m, RING, LEDGER)) {
		free(m);
		return -1;
	}
	accept_mode = SOCKSHIM_ACCEPT_OBSERVE;
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	private_seg_unmap(*state);
	free(*state);
	return 0;
}

static struct fd_entry listener(uint16_t port)
{
	struct fd_entry e;

	memset(&e, 0, sizeof(e));
	e.family = 10; /* AF_INET6 */
	e.socktype = 1;
	e.local_port = port;
	e.local_ip[15] = 1;
	e.flags = SOCKSHIM_FLAG_LISTENER | SOCKSHIM_FLAG_LOCAL_KNOWN;
	return e;
}

static uint64_t key_of(pid_t pid, pid_t tid)
{
	return ((uint64_t)(uint32_t)pid << 32) | (uint32_t)tid;
}

static void test_get_and_entry(void **state)
{
	struct seg_map *m = *state;
	struct fd_entry e = listener(8080);
	struct sockshim_listener *l;
	uint32_t ref;

	ref = listeners_get(m, 5001, &e, 128);
	assert_int_equal(ref, 1);
	l = listeners_entry(m, ref);
	assert_ptr_equal(l, seg_listeners(m));
	assert_int_equal(l->inode, 5001);
	assert_int_equal(l->family, 10);
	assert_int_equal(l->local_port, 8080);
	assert_int_equal(l->local_ip[15], 1);
	assert_int_equal(l->backlog, 128);
	assert_int_equal(l->mode, SOCKSHIM_ACCEPT_OBSERVE);
	/* listen() again: the last backlog wins, -1 (PHP-FPM's) as any;
	 * an accept on it (backlog unknown) keeps it. */
	assert_int_equal(listeners_get(m, 5001, &e, 1024), 1);
	assert_int_equal(l->backlog, 1024);
	assert_int_equal(listeners_get(m, 5001, &e, SOCKSHIM_BACKLOG_UNKNOWN), 1);
	assert_int_equal(l->backlog, 1024);
	assert_int_equal(listeners_get(m, 5001, &e, -1), 1);
	assert_int_equal(l->backlog, -1);
	assert_int_equal(listeners_get(m, 5001, &e, SOCKSHIM_BACKLOG_UNKNOWN), 1);
	assert_int_equal(l->backlog, -1);
	/* The next listener takes the next entry, with the mode then. */
	accept_mode = SOCKSHIM_ACCEPT_SERIALIZE;
	assert_int_equal(listeners_get(m, 5002, &e, -1), 2);
	assert_int_equal(listeners_entry(m, 2)->mode, SOCKSHIM_ACCEPT_SERIALIZE);
	assert_int_equal(listeners_entry(m, 2)->backlog, -1);
	/* Off: nothing is registered. */
	accept_mode = SOCKSHIM_ACCEPT_OFF;
	assert_int_equal(listeners_get(m, 5003, &e, 5), 0);
	accept_mode = SOCKSHIM_ACCEPT_OBSERVE;
	assert_int_equal(listeners_get(m, 0, &e, 5), 0);
	assert_int_equal(listeners_get(m, UINT64_MAX, &e, 5), 0);
	assert_int_equal(listeners_get(m, sockshim_inode_claiming(5004, 77), &e, 5), 0);
	assert_null(listeners_entry(m, 0));
	assert_null(listeners_entry(m, SOCKSHIM_LISTENERS + 1));
	assert_non_null(listeners_entry(m, SOCKSHIM_LISTENERS));
	assert_int_equal(seg_header(m)->listeners_full, 0);
}

static void test_no_session(void **state)
{
	struct seg_map none, notable;
	struct fd_entry e = listener(80);

	memset(&none, 0, sizeof(none));
	assert_int_equal(listeners_get(&none, 7, &e, 1), 0);
	assert_null(listeners_entry(&none, 1));
	/* A mapping without a listener table. */
	notable = *(struct seg_map *)*state;
	notable.listeners_offset = 0;
	assert_int_equal(listeners_get(&notable, 7, &e, 1), 0);
	assert_null(listeners_entry(&notable, 1));
}

static void test_full_table(void **state)
{
	struct seg_map *m = *state;
	struct fd_entry e = listener(80);
	uint32_t i;

	for (i = 0; i < SOCKSHIM_LISTENERS; i++)
		assert_int_equal(listeners_get(m, 100 + i, &e, -1), i + 1);
	assert_int_equal(listeners_get(m, 999, &e, -1), 0);
	assert_int_equal(listeners_get(m, 998, &e, -1), 0);
	assert_int_equal(seg_header(m)->listeners_full, 2);
	/* The ones there are still found. */
	assert_int_equal(listeners_get(m, 100 + SOCKSHIM_LISTENERS - 1, &e, 7), SOCKSHIM_LISTENERS);
	assert_int_equal(seg_header(m)->listeners_full, 2);
}

/* Runs FN(ARG) on a thread of its own (fresh per-thread caches: its tid,
 * recycle_row's next try), and waits for it. */
static void on_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
}

struct row_probe {
	struct sockshim_listener *l;
	struct sockshim_worker *first, *again;
	uint64_t key;
};

static void *take_row(void *arg)
{
	struct row_probe *p = arg;

	p->key = key_of(getpid(), gettid());
	p->first = listeners_worker(p->l);
	p->again = listeners_worker(p->l);
	return NULL;
}

static void test_worker_rows(void **state)
{
	struct seg_map *m = *state;
	struct fd_entry e = listener(80);
	struct sockshim_listener *l = listeners_entry(m, listeners_get(m, 42, &e, -1));
	struct row_probe a = {.l = l}, b = {.l = l};

	assert_non_null(l);
	on_thread(take_row, &a);
	on_thread(take_row, &b);
	assert_ptr_equal(a.first, &l->workers[0]);
	assert_ptr_equal(a.again, a.first);
	assert_int_equal(l->workers[0].key, a.key);
	assert_ptr_equal(b.first, &l->workers[1]);
	assert_int_equal(l->workers[1].key, b.key);
	assert_int_equal(l->workers[2].key, 0);
	assert_int_equal(l->worker_overflow, 0);
}

/* Every row names a thread that has ended: one is recycled, its counts
 * moved to the retired row; its thread was killed while waiting for the
 * lock, and its row waits no more (the others' marks stay). */
static void test_worker_recycled(void **state)
{
	struct seg_map *m = *state;
	struct fd_entry e = listener(80);
	struct sockshim_listener *l = listeners_entry(m, listeners_get(m, 43, &e, -1));
	struct row_probe p = {.l = l};
	unsigned i;

	/* Thread ids that do not exist in this process (pid_max is at most
	 * 2^22). */
	for (i = 0; i < SOCKSHIM_WORKERS; i++) {
		l->workers[i].key = key_of(getpid(), (pid_t)((1u << 22) + 10 + i));
		l->workers[i].accepts = 10;
		l->workers[i].calls = 11;
		l->workers[i].last_ns = 1000 + i;
	}
	l->waiting = UINT64_C(1) << 0 | UINT64_C(1) << 5;
	on_thread(take_row, &p);
	assert_true(l->waiting == UINT64_C(1) << 5);
	assert_ptr_equal(p.first, &l->workers[0]);
	assert_ptr_equal(p.again, p.first);
	assert_int_equal(l->workers[0].key, p.key);
	assert_int_equal(l->workers[0].accepts, 0);
	assert_int_equal(l->workers[0].calls, 0);
	assert_int_equal(l->retired.key, 1); /* rows recycled */
	assert_int_equal(l->retired.accepts, 10);
	assert_int_equal(l->retired.calls, 11);
	assert_int_equal(l->retired.last_ns, 1000);
	assert_int_equal(l->workers[1].accepts, 10);
	assert_int_equal(l->worker_overflow, 0);
}

/* Every row names a live thread: no row, counted. */
static void test_worker_overflow(void **state)
{
	struct seg_map *m = *state;
	struct fd_entry e = listener(80);
	struct sockshim_listener *l = listeners_entry(m, listeners_get(m, 44, &e, -1));
	struct row_probe p = {.l = l};
	unsigned i;

	for (i = 0; i < SOCKSHIM_WORKERS; i++)
		l->workers[i].key = key_of(getpid(), gettid()); /* the main thread: alive */
	on_thread(take_row, &p);
	assert_null(p.first);
	assert_null(p.again);
	assert_int_equal(l->worker_overflow, 2);
	assert_int_equal(l->retired.key, 0);
}

static void test_thread_gone(void **state)
{
	(void)state;
	errno = 1234;
	assert_false(listeners_thread_gone(key_of(getpid(), gettid())));
	assert_true(listeners_thread_gone(key_of(getpid(), (pid_t)((1u << 22) + 5))));
	assert_int_equal(errno, 1234);
}

static void test_stats_helpers(void **state)
{
	uint64_t hist[SOCKSHIM_HIST_BUCKETS] = {0}, max64 = 5;
	uint32_t max = 5;

	(void)state;
	stat_hist(hist, 0);
	stat_hist(hist, 1);
	stat_hist(hist, 1023);
	stat_hist(hist, 1024);
	stat_hist(hist, UINT64_MAX);
	assert_int_equal(hist[0], 2);
	assert_int_equal(hist[9], 1);
	assert_int_equal(hist[10], 1);
	assert_int_equal(hist[SOCKSHIM_HIST_BUCKETS - 1], 1);
	stat_max(&max, 3);
	assert_int_equal(max, 5);
	stat_max(&max, 9);
	assert_int_equal(max, 9);
	stat_max64(&max64, UINT64_MAX - 1);
	assert_int_equal(max64, UINT64_MAX - 1);
}

/* ---- Concurrent writers ---- */

#define INODES 80u /* more than the table holds */

struct worker {
	pthread_t thread;
	struct seg_map *m;
	struct sockshim_listener *l;
	pthread_barrier_t *start;
	unsigned id;
	unsigned zero;     /* listeners_get answers of 0 */
	unsigned failures; /* answers that were wrong */
	uint32_t ref_of[INODES];
	uint64_t max_seen;
};

/* THREADS x OPS listeners_get of the same INODES listeners, every
 * thread in the same order, so that the first registrations of each race:
 * SOCKSHIM_LISTENERS of them get exactly one entry each, the others none,
 * every miss counted once. No caller gives up waiting for another to
 * publish an entry: the others are alive, and the wait (claim.c) lasts
 * until they do. */
static void *register_many(void *arg)
{
	struct worker *w = arg;
	struct fd_entry e = listener(80);
	unsigned i;

	pthread_barrier_wait(w->start);
	for (i = 0; i < OPS; i++) {
		uint64_t ino = 1000 + (i * 3u) % INODES;
		uint32_t ref = listeners_get(w->m, ino, &e, (int)i);
		struct sockshim_listener *l = listeners_entry(w->m, ref);

		if (!ref) {
			w->zero++;
			continue;
		}
		/* No cmocka assertion off the main thread: counted instead. */
		if (!l || __atomic_load_n(&l->inode, __ATOMIC_ACQUIRE) != ino ||
		    (w->ref_of[ino - 1000] && w->ref_of[ino - 1000] != ref))
			w->failures++;
		w->ref_of[ino - 1000] = ref;
	}
	return NULL;
}

static void run_threads(struct worker *w, struct seg_map *m, struct sockshim_listener *l,
			void *(*fn)(void *))
{
	pthread_barrier_t start;
	unsigned t;

	assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
	for (t = 0; t < THREADS; t++) {
		w[t].m = m;
		w[t].l = l;
		w[t].start = &start;
		w[t].id = t;
		assert_int_equal(pthread_create(&w[t].thread, NULL, fn, &w[t]), 0);
	}
	for (t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(w[t].thread, NULL), 0);
	pthread_barrier_destroy(&start);
}

static void test_concurrent_register(void **state)
{
	struct seg_map *m = *state;
	struct worker *w = calloc(THREADS, sizeof(*w));
	uint64_t stalled = seg_header(m)->claims_stalled;
	unsigned t, i, j, zero = 0;

	assert_non_null(w);
	run_threads(w, m, NULL, register_many);
	for (t = 0; t < THREADS; t++) {
		assert_int_equal(w[t].failures, 0);
		zero += w[t].zero;
	}
	assert_int_equal(seg_header(m)->listeners_full, zero);
	/* Every entry taken, each by a different inode, each of those
	 * answered with that entry by every thread that got one. */
	for (i = 0; i < SOCKSHIM_LISTENERS; i++) {
		uint64_t ino = seg_listeners(m)[i].inode;

		assert_true(ino >= 1000 && ino < 1000 + INODES);
		for (j = 0; j < i; j++)
			assert_true(seg_listeners(m)[j].inode != ino);
		for (t = 0; t < THREADS; t++)
			assert_true(!w[t].ref_of[ino - 1000] || w[t].ref_of[ino - 1000] == i + 1);
	}
	/* Each thread asks each inode OPS / INODES times: those without an
	 * entry were refused every time. */
	assert_int_equal(seg_header(m)->claims_stalled - stalled, 0);
	assert_int_equal(zero, (INODES - SOCKSHIM_LISTENERS) * (OPS / INODES) * THREADS);
	free(w);
}

/* THREADS x OPS accepts counted in each thread's own row, the rows
 * claimed at the same moment. */
static void *count_accepts(void *arg)
{
	struct worker *w = arg;
	unsigned i;

	pthread_barrier_wait(w->start);
	for (i = 0; i < OPS; i++) {
		struct sockshim_worker *row = listeners_worker(w->l);

		if (!row || __atomic_load_n(&row->key, __ATOMIC_RELAXED) !=
				    key_of(getpid(), gettid())) {
			w->failures++;
			continue;
		}
		stat_add(&row->accepts, 1);
		stat_add(&w->l->accepts, 1);
		stat_max64(&w->l->retired.last_ns, (uint64_t)w->id * OPS + i);
	}
	return NULL;
}

static void test_concurrent_rows(void **state)
{
	struct seg_map *m = *state;
	struct fd_entry e = listener(80);
	struct sockshim_listener *l = listeners_entry(m, listeners_get(m, 77, &e, -1));
	struct worker *w = calloc(THREADS, sizeof(*w));
	unsigned t, i;

	assert_non_null(w);
	assert_non_null(l);
	run_threads(w, m, l, count_accepts);
	for (t = 0; t < THREADS; t++)
		assert_int_equal(w[t].failures, 0);
	for (i = 0; i < THREADS; i++) {
		assert_true(l->workers[i].key != 0);
		assert_int_equal(l->workers[i].accepts, OPS);
	}
	assert_int_equal(l->workers[THREADS].key, 0);
	assert_int_equal(l->accepts, THREADS * OPS);
	assert_int_equal(l->retired.last_ns, (uint64_t)(THREADS - 1) * OPS + OPS - 1);
	assert_int_equal(l->worker_overflow, 0);
	free(w);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_get_and_entry),
		T(test_no_session),
		T(test_full_table),
		T(test_worker_rows),
		T(test_worker_recycled),
		T(test_worker_overflow),
		cmocka_unit_test(test_thread_gone),
		cmocka_unit_test(test_stats_helpers),
		T(test_concurrent_register),
		T(test_concurrent_rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
