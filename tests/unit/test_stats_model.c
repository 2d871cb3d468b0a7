/* Unit tests of tools/stats_model.c: copying listener entries (with the
 * corrupt values a hostile process can leave), log2 histogram percentiles,
 * Jain's fairness index, ratios and the text of durations and bounds. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "stats_model.h"

#define KEY(pid, tid) (((uint64_t)(pid) << 32) | (uint32_t)(tid))

static struct sockshim_listener *new_listener(uint64_t inode, const char *ip, unsigned port)
{
	struct sockshim_listener *l = calloc(1, sizeof(*l));

	assert_non_null(l);
	l->inode = inode;
	if (strchr(ip, ':')) {
		l->family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, l->local_ip), 1);
	} else {
		l->family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, l->local_ip), 1);
	}
	l->local_port = (uint16_t)port;
	return l;
}

static void test_mode_names(void **state)
{
	(void)state;
	assert_string_equal(stats_mode_name(SOCKSHIM_ACCEPT_OBSERVE), "observe");
	assert_string_equal(stats_mode_name(SOCKSHIM_ACCEPT_SERIALIZE), "serialize");
	assert_string_equal(stats_mode_name(SOCKSHIM_ACCEPT_OFF), "off");
	assert_null(stats_mode_name(3));
	assert_null(stats_mode_name(65535));
}

static void test_buckets(void **state)
{
	(void)state;
	assert_int_equal(stats_bucket_low(0), 0);
	assert_int_equal(stats_bucket_high(0), 1);
	assert_int_equal(stats_bucket_low(1), 2);
	assert_int_equal(stats_bucket_high(1), 3);
	assert_int_equal(stats_bucket_low(10), 1024);
	assert_int_equal(stats_bucket_high(10), 2047);
	assert_int_equal(stats_bucket_low(STATS_BUCKETS - 1), UINT64_C(1) << 31);
	assert_true(stats_bucket_high(STATS_BUCKETS - 1) == UINT64_MAX);
	assert_true(stats_bucket_high(200) == UINT64_MAX);
}

static void test_percentiles(void **state)
{
	uint64_t h[STATS_BUCKETS] = {0};
	struct stats_bound b;

	(void)state;
	/* Empty. */
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 500, &b), -1);
	assert_int_equal(b.bucket, -1);
	assert_int_equal(stats_hist_max(h, STATS_BUCKETS, &b), -1);
	assert_int_equal(stats_hist_total(h, STATS_BUCKETS), 0);

	/* 500 lock waits: 300 of 1-2 us, 150 of 4-8 us, 45 of 1-2 ms, 5 of
	 * 32-64 ms. */
	h[10] = 300;
	h[12] = 150;
	h[20] = 45;
	h[25] = 5;
	assert_int_equal(stats_hist_total(h, STATS_BUCKETS), 500);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 500, &b), 10);
	assert_int_equal(b.ns, 2048);
	assert_false(b.open);
	/* Rank 300 is the last of bucket 10, rank 301 the first of 12. */
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 600, &b), 10);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 601, &b), 12);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 900, &b), 12);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 990, &b), 20);
	assert_int_equal(b.ns, 2097152);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 991, &b), 25);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 1000, &b), 25);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 5000, &b), 25);
	assert_int_equal(stats_hist_max(h, STATS_BUCKETS, &b), 25);
	assert_int_equal(b.ns, UINT64_C(1) << 26);
	/* p0 is the smallest value, rank 1. */
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 0, &b), 10);

	/* One value. */
	memset(h, 0, sizeof(h));
	h[0] = 1;
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 500, &b), 0);
	assert_int_equal(b.ns, 2);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 990, &b), 0);

	/* Three values, one per bucket: the median is the second. */
	memset(h, 0, sizeof(h));
	h[0] = h[1] = h[2] = 1;
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 500, &b), 1);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 333, &b), 0);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 334, &b), 1);

	/* The last bucket has no upper bound: its lower one, marked open. */
	memset(h, 0, sizeof(h));
	h[STATS_BUCKETS - 1] = 7;
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 500, &b), STATS_BUCKETS - 1);
	assert_true(b.open);
	assert_int_equal(b.ns, UINT64_C(1) << 31);
	assert_int_equal(stats_hist_max(h, STATS_BUCKETS, &b), STATS_BUCKETS - 1);
	assert_true(b.open);

	/* Counts a corrupt segment can hold: the total saturates, the
	 * percentiles stay within the histogram. */
	memset(h, 0, sizeof(h));
	h[3] = UINT64_MAX;
	h[5] = UINT64_MAX;
	assert_true(stats_hist_total(h, STATS_BUCKETS) == UINT64_MAX);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 500, &b), 3);
	assert_int_equal(stats_hist_percentile(h, STATS_BUCKETS, 1000, &b), 3);
	assert_int_equal(stats_hist_max(h, STATS_BUCKETS, &b), 5);
}

static void test_hist_sum(void **state)
{
	uint64_t h[STATS_BUCKETS] = {0};

	(void)state;
	assert_true(stats_hist_sum_ns(h, STATS_BUCKETS) == 0);
	h[0] = 3;  /* 1 ns each */
	h[1] = 2;  /* 3 ns each */
	h[10] = 4; /* 1536 ns each */
	assert_true(stats_hist_sum_ns(h, STATS_BUCKETS) == 3 + 6 + 4 * 1536);
	memset(h, 0, sizeof(h));
	h[STATS_BUCKETS - 1] = 1; /* the open bucket counts at 1.5 x its low bound */
	assert_true(stats_hist_sum_ns(h, STATS_BUCKETS) == 1.5 * 2147483648.0);
}

static void test_jain(void **state)
{
	const uint64_t equal[] = {125, 125, 125, 125}, one[] = {40, 0, 0, 0};
	const uint64_t uneven[] = {200, 100, 100, 100}, zeros[] = {0, 0, 0};
	const uint64_t huge[] = {UINT64_MAX, UINT64_MAX};

	(void)state;
	assert_true(stats_jain(NULL, 0) == 1.0);
	assert_true(stats_jain(zeros, 3) == 1.0);
	assert_true(stats_jain(equal, 4) == 1.0);
	assert_true(stats_jain(one, 4) == 0.25);
	/* 500^2 / (4 * 70000) */
	assert_true(fabs(stats_jain(uneven, 4) - 250000.0 / 280000.0) < 1e-12);
	assert_true(fabs(stats_jain(huge, 2) - 1.0) < 1e-12);
	assert_true(stats_jain(one, 1) == 1.0);
}

static void test_max_min_and_ratios(void **state)
{
	const uint64_t uneven[] = {200, 100, 100, 100}, starved[] = {5, 0}, zeros[] = {0, 0};
	struct stats_listener s;

	(void)state;
	assert_true(stats_max_min(NULL, 0) == 1.0);
	assert_true(stats_max_min(zeros, 2) == 1.0);
	assert_true(stats_max_min(uneven, 4) == 2.0);
	assert_true(isinf(stats_max_min(starved, 2)));
	assert_true(isnan(stats_ratio(5, 0)));
	assert_true(stats_ratio(0, 4) == 0);
	assert_true(stats_ratio(1000, 500) == 2.0);

	memset(&s, 0, sizeof(s));
	assert_int_equal(stats_held_ns(&s, 1000), 0);
	s.holder_pid = 10;
	s.holder_tid = 11;
	s.held_since_ns = 400;
	assert_int_equal(stats_held_ns(&s, 1000), 600);
	/* A clock from the future (corrupt) is not a negative age. */
	assert_int_equal(stats_held_ns(&s, 300), 0);
}

static void test_fmt(void **state)
{
	static const struct {
		uint64_t ns;
		const char *text;
	} cases[] = {
		{0, "0ns"},           {999, "999ns"},        {1000, "1.0us"},
		{2048, "2.0us"},      {9949, "9.9us"},       {9950, "10us"},
		{16384, "16us"},      {131072, "131us"},     {999499, "999us"},
		{999500, "1.0ms"},    {2097152, "2.1ms"},    {67108864, "67ms"},
		{1500000000, "1.5s"}, {2147483648, "2.1s"},  {UINT64_MAX, "18446744074s"},
	};
	struct stats_bound b = {-1, 0, 0};
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		stats_fmt_ns(buf, sizeof(buf), cases[i].ns);
		assert_string_equal(buf, cases[i].text);
	}
	stats_fmt_bound(buf, sizeof(buf), &b);
	assert_string_equal(buf, "-");
	b = (struct stats_bound){10, 2048, 0};
	stats_fmt_bound(buf, sizeof(buf), &b);
	assert_string_equal(buf, "<=2.0us");
	b = (struct stats_bound){31, UINT64_C(1) << 31, 1};
	stats_fmt_bound(buf, sizeof(buf), &b);
	assert_string_equal(buf, ">=2.1s");

	stats_fmt_double(buf, sizeof(buf), 0.25);
	assert_string_equal(buf, "0.25");
	stats_fmt_double(buf, sizeof(buf), 1.0);
	assert_string_equal(buf, "1");
	stats_fmt_double(buf, sizeof(buf), 0.1);
	assert_string_equal(buf, "0.1");
	stats_fmt_double(buf, sizeof(buf), 1e-9);
	assert_string_equal(buf, "1e-09");
	/* Shortest round trip: 16 digits here, as Python's repr gives. */
	stats_fmt_double(buf, sizeof(buf), 250000.0 / 280000.0);
	assert_string_equal(buf, "0.8928571428571429");
	stats_fmt_double(buf, sizeof(buf), 0.1 + 0.2);
	assert_string_equal(buf, "0.30000000000000004");
	stats_fmt_double(buf, sizeof(buf), NAN);
	assert_string_equal(buf, "NaN");
	stats_fmt_double(buf, sizeof(buf), INFINITY);
	assert_string_equal(buf, "+Inf");
	stats_fmt_double(buf, sizeof(buf), -INFINITY);
	assert_string_equal(buf, "-Inf");
}

static void test_read_listener(void **state)
{
	struct sockshim_listener *l = new_listener(4242, "127.0.0.1", 8080);
	struct stats_listener *s = malloc(sizeof(*s));

	(void)state;
	assert_non_null(s);
	l->mode = SOCKSHIM_ACCEPT_SERIALIZE;
	l->backlog = 128;
	l->accept_calls = 1600;
	l->accepts = 500;
	l->spurious = 1000;
	l->empty = 12;
	l->eintr = 3;
	l->econnaborted = 1;
	l->emfile = 2;
	l->wakeups = 1400;
	l->lock_acquisitions = 500;
	l->lock_contended = 120;
	l->owner_died = 1;
	l->token_waits = 40;
	l->token_handoffs = 37; /* the last field of the entry before the rows */
	/* Waiting: rows 0 and 3, and the bits of a free row (1) and of a
	 * corrupt one (5), which are no waiters; one waiter without a row. */
	l->waiting = UINT64_C(1) << 0 | UINT64_C(1) << 1 | UINT64_C(1) << 3 | UINT64_C(1) << 5;
	l->waiters_unrowed = 1;
	l->max_waiters = 3;
	l->holder_pid = 77;
	l->holder_tid = 78;
	l->held_since_ns = 5000;
	l->wait_hist[10] = 300;
	l->hold_hist[STATS_BUCKETS - 1] = 9;
	/* Rows out of order, with free rows between and two corrupt keys. */
	l->workers[0].key = KEY(300, 301);
	l->workers[0].accepts = 3;
	l->workers[2].key = KEY(100, 102);
	l->workers[2].accepts = 2;
	l->workers[3].key = KEY(100, 101);
	l->workers[3].accepts = 1;
	l->workers[3].calls = 10;
	l->workers[3].lock_wait_ns = 99;
	l->workers[5].key = KEY(0, 5);                       /* no pid */
	l->workers[6].key = (UINT64_C(0x80000000) << 32) | 1; /* pid beyond int32 */
	l->workers[7].key = SOCKSHIM_WORKER_RECYCLING;       /* in flux: skipped, not bad */
	l->workers[7].accepts = 1000;
	l->workers[SOCKSHIM_WORKERS - 1].key = KEY(50, 50);
	l->retired.key = 7; /* seven ended workers' rows were recycled */
	l->retired.calls = 70;
	l->retired.accepts = 40;
	l->retired.spurious = 5;
	l->retired.empty = 6;
	l->retired.eintr = 2;
	l->retired.last_ns = 123;

	assert_int_equal(stats_read_listener(l, s), 0);
	assert_int_equal(s->inode, 4242);
	assert_int_equal(s->family, AF_INET);
	assert_int_equal(s->local_port, 8080);
	assert_memory_equal(s->local_ip, l->local_ip, 16);
	assert_int_equal(s->mode, SOCKSHIM_ACCEPT_SERIALIZE);
	assert_int_equal(s->listen_backlog, 128);
	assert_int_equal(s->accept_calls, 1600);
	assert_int_equal(s->accepts, 500);
	assert_int_equal(s->spurious, 1000);
	assert_int_equal(s->empty, 12);
	assert_int_equal(s->eintr, 3);
	assert_int_equal(s->econnaborted, 1);
	assert_int_equal(s->emfile, 2);
	assert_int_equal(s->wakeups, 1400);
	assert_int_equal(s->lock_acquisitions, 500);
	assert_int_equal(s->lock_contended, 120);
	assert_int_equal(s->owner_died, 1);
	assert_int_equal(s->token_waits, 40);
	assert_int_equal(s->token_handoffs, 37);
	assert_int_equal(s->waiters, 3);
	assert_int_equal(s->waiters_unrowed, 1);
	assert_int_equal(s->max_waiters, 3);
	assert_int_equal(s->holder_pid, 77);
	assert_int_equal(s->holder_tid, 78);
	assert_int_equal(s->held_since_ns, 5000);
	assert_int_equal(s->wait_hist[10], 300);
	assert_int_equal(s->hold_hist[STATS_BUCKETS - 1], 9);
	assert_int_equal(s->nworkers, 4);
	assert_int_equal(s->bad_workers, 2);
	assert_int_equal(s->workers[0].pid, 50);
	assert_int_equal(s->workers[1].pid, 100);
	assert_int_equal(s->workers[1].tid, 101);
	assert_int_equal(s->workers[1].accepts, 1);
	assert_int_equal(s->workers[1].calls, 10);
	assert_int_equal(s->workers[1].lock_wait_ns, 99);
	assert_int_equal(s->workers[2].tid, 102);
	assert_int_equal(s->workers[3].pid, 300);
	/* The waiting marks follow their rows through the sort. */
	assert_false(s->workers[0].waiting);
	assert_true(s->workers[1].waiting);
	assert_false(s->workers[2].waiting);
	assert_true(s->workers[3].waiting);
	assert_int_equal(s->retired_workers, 7);
	assert_int_equal(s->retired.calls, 70);
	assert_int_equal(s->retired.accepts, 40);
	assert_int_equal(s->retired.spurious, 5);
	assert_int_equal(s->retired.empty, 6);
	assert_int_equal(s->retired.eintr, 2);
	assert_int_equal(s->retired.last_ns, 123);

	/* A negative holder is no holder. */
	l->holder_pid = -5;
	assert_int_equal(stats_read_listener(l, s), 0);
	assert_int_equal(s->holder_pid, 0);
	assert_int_equal(s->held_since_ns, 0);

	/* An entry being claimed, for the inode it had or another. */
	l->inode = sockshim_inode_claiming(l->inode, 77);
	assert_int_equal(stats_read_listener(l, s), -ENOENT);
	l->inode = sockshim_inode_claiming(77, 77);
	assert_int_equal(stats_read_listener(l, s), -ENOENT);

	/* An unused entry. */
	l->inode = 0;
	assert_int_equal(stats_read_listener(l, s), -ENOENT);
	free(l);
	free(s);
}

static void test_read_table(void **state)
{
	struct sockshim_listener *t = calloc(4, sizeof(*t)), *x;
	struct stats_listener *out = calloc(4, sizeof(*out));
	char addr[STATS_ADDR_MAX];
	size_t n = 99, i;

	(void)state;
	assert_non_null(t);
	assert_non_null(out);
	stats_read_table(t, 4, out, &n);
	assert_int_equal(n, 0);

	x = new_listener(30, "::1", 80);
	t[0] = *x;
	free(x);
	x = new_listener(20, "127.0.0.1", 9000);
	t[1] = *x;
	free(x);
	/* t[2] unused */
	x = new_listener(10, "127.0.0.1", 80);
	t[3] = *x;
	free(x);
	stats_read_table(t, 4, out, &n);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].inode, 10);
	assert_int_equal(out[1].inode, 20);
	assert_int_equal(out[2].inode, 30);

	stats_addr(addr, sizeof(addr), &out[0]);
	assert_string_equal(addr, "127.0.0.1:80");
	stats_addr(addr, sizeof(addr), &out[2]);
	assert_string_equal(addr, "[::1]:80");
	/* A dual-stack listener's IPv4-mapped address reads as IPv4. */
	assert_int_equal(inet_pton(AF_INET6, "::ffff:10.0.0.1", out[2].local_ip), 1);
	stats_addr(addr, sizeof(addr), &out[2]);
	assert_string_equal(addr, "10.0.0.1:80");
	out[0].family = AF_UNIX;
	stats_addr(addr, sizeof(addr), &out[0]);
	assert_string_equal(addr, "unix");
	for (i = 0; i < 2; i++) {
		out[0].family = i ? 0 : 12345;
		stats_addr(addr, sizeof(addr), &out[0]);
		assert_string_equal(addr, "-");
	}
	free(t);
	free(out);
}

/* Found by tests/fuzz/fuzz_listeners: the same thread in two worker rows,
 * or the same listener (inode) in two entries of the table, was read
 * twice: its accepts counted twice in the fairness figures, and the
 * Prometheus exposition repeated a series (which a scrape rejects). Two
 * processes taking their first accept on an inherited listener at once
 * can each claim an entry for it; a scribbled segment can do anything. */
static void test_read_duplicates(void **state)
{
	struct sockshim_listener *t = calloc(3, sizeof(*t)), *x;
	struct stats_listener *out = calloc(3, sizeof(*out));
	size_t n = 99;

	(void)state;
	assert_non_null(t);
	assert_non_null(out);
	x = new_listener(20, "127.0.0.1", 80);
	t[0] = *x;
	t[0].accepts = 5;
	t[0].workers[0].key = KEY(100, 101);
	t[0].workers[0].accepts = 3;
	t[0].workers[1].key = KEY(200, 201);
	t[0].workers[2].key = KEY(100, 101); /* the same thread again */
	t[0].workers[2].accepts = 3;
	t[1] = *x; /* the same listener again, in a later entry */
	t[1].accepts = 1;
	free(x);
	x = new_listener(10, "127.0.0.1", 80);
	t[2] = *x;
	free(x);

	stats_read_table(t, 3, out, &n);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].inode, 10);
	assert_int_equal(out[1].inode, 20);
	/* The entry lookups find, the first one, is the one kept. */
	assert_int_equal(out[1].accepts, 5);
	assert_int_equal(out[1].nworkers, 2);
	assert_int_equal(out[1].workers[0].pid, 100);
	assert_int_equal(out[1].workers[1].pid, 200);
	assert_int_equal(out[1].bad_workers, 1);
	free(t);
	free(out);
}

/* Ended threads for test_retire_ended: pid 20's, and tid 31. */
static int fake_ended(int32_t pid, int32_t tid)
{
	return pid == 20 || tid == 31;
}

static void test_retire_ended(void **state)
{
	struct stats_listener *s = calloc(1, sizeof(*s));

	(void)state;
	assert_non_null(s);
	s->nworkers = 4;
	s->workers[0] = (struct stats_worker){.pid = 10, .tid = 10, .calls = 5, .accepts = 4};
	s->workers[1] = (struct stats_worker){.pid = 20, .tid = 21, .calls = 7, .accepts = 6,
					      .spurious = 1, .empty = 2, .eintr = 3,
					      .lock_wait_ns = 100, .last_ns = 900};
	s->workers[2] = (struct stats_worker){.pid = 30, .tid = 31, .calls = 9, .accepts = 8,
					      .last_ns = 500, .waiting = 1};
	s->workers[3] = (struct stats_worker){.pid = 30, .tid = 32, .calls = 1, .accepts = 1,
					      .waiting = 1};
	s->retired_workers = 2;
	s->retired.accepts = 50;
	s->retired.last_ns = 700;
	s->waiters_unrowed = 2;
	s->waiters = 4;
	assert_int_equal(stats_retire_ended(s, fake_ended), 2);
	/* Killed while waiting (tid 31): a waiter no more. */
	assert_int_equal(s->waiters, 3);
	/* The living, in their order; the ended summed, none lost. */
	assert_int_equal(s->nworkers, 2);
	assert_int_equal(s->workers[0].tid, 10);
	assert_int_equal(s->workers[1].tid, 32);
	assert_int_equal(s->retired_workers, 4);
	assert_int_equal(s->retired.calls, 16);
	assert_int_equal(s->retired.accepts, 64);
	assert_int_equal(s->retired.spurious, 1);
	assert_int_equal(s->retired.empty, 2);
	assert_int_equal(s->retired.eintr, 3);
	assert_int_equal(s->retired.lock_wait_ns, 100);
	assert_int_equal(s->retired.last_ns, 900);
	/* Nothing more to retire; a count past the table is bounded. */
	assert_int_equal(stats_retire_ended(s, fake_ended), 0);
	s->retired.accepts = UINT64_MAX;
	for (unsigned i = 2; i < SOCKSHIM_WORKERS; i++)
		s->workers[i] = (struct stats_worker){.pid = 40, .tid = (int32_t)(40 + i)};
	s->nworkers = 1000;
	assert_int_equal(stats_retire_ended(s, fake_ended), 0);
	assert_int_equal(s->nworkers, SOCKSHIM_WORKERS);
	assert_true(s->retired.accepts == UINT64_MAX);
	free(s);
}

static void test_retire_holder(void **state)
{
	struct stats_listener *s = calloc(1, sizeof(*s));

	(void)state;
	assert_non_null(s);
	/* Nobody holds it: nothing to do. */
	assert_int_equal(stats_retire_holder(s, fake_ended), 0);
	/* A living holder stays. */
	s->holder_pid = 10;
	s->holder_tid = 11;
	s->held_since_ns = 5;
	assert_int_equal(stats_retire_holder(s, fake_ended), 0);
	assert_int_equal(s->holder_pid, 10);
	assert_int_equal(s->gone_holder_pid, 0);
	/* One that ended holds nothing; whom the word names is kept aside. */
	s->holder_pid = 20;
	s->holder_tid = 21;
	assert_int_equal(stats_retire_holder(s, fake_ended), 1);
	assert_int_equal(s->holder_pid, 0);
	assert_int_equal(s->holder_tid, 0);
	assert_int_equal(s->held_since_ns, 0);
	assert_int_equal(s->gone_holder_pid, 20);
	assert_int_equal(s->gone_holder_tid, 21);
	/* The poll token's holder: kept alive, moved aside ended; a key that
	 * names no thread is not judged. */
	s->poller = (UINT64_C(30) << 32) | 32;
	assert_int_equal(stats_retire_holder(s, fake_ended), 0);
	assert_true(s->poller == ((UINT64_C(30) << 32) | 32));
	s->poller = (UINT64_C(30) << 32) | 31;
	s->poller_since_ns = 7;
	assert_int_equal(stats_retire_holder(s, fake_ended), 1);
	assert_true(s->poller == 0 && s->poller_since_ns == 0);
	assert_true(s->gone_poller == ((UINT64_C(30) << 32) | 31));
	s->poller = UINT64_C(20) << 32; /* tid 0 */
	assert_int_equal(stats_retire_holder(s, fake_ended), 0);
	assert_true(s->poller == UINT64_C(20) << 32);
	free(s);
}

static void test_worker_accepts(void **state)
{
	struct stats_listener *s = calloc(1, sizeof(*s));
	uint64_t x[SOCKSHIM_WORKERS], sum;

	(void)state;
	assert_non_null(s);
	assert_int_equal(stats_worker_accepts(s, x, &sum), 0);
	assert_int_equal(sum, 0);
	s->nworkers = 3;
	s->workers[0].accepts = 200;
	s->workers[1].accepts = 100;
	s->workers[2].accepts = UINT64_MAX;
	s->workers[0].calls = s->workers[1].calls = s->workers[2].calls = 1;
	assert_int_equal(stats_worker_accepts(s, x, &sum), 3);
	assert_true(sum == UINT64_MAX);
	assert_int_equal(x[1], 100);
	/* A thread that waited for the listener and never got to accept
	 * (starved: another always had the poll token) got nothing: in the
	 * fairness, as a zero. */
	s->workers[2].calls = 0;
	s->workers[2].accepts = 0;
	assert_int_equal(stats_worker_accepts(s, x, &sum), 3);
	assert_int_equal(sum, 300);
	assert_int_equal(x[2], 0);
	assert_true(stats_jain(x, 3) > 0.59 && stats_jain(x, 3) < 0.61);
	/* A count beyond the table (it cannot come from stats_read_listener,
	 * but the reader of a struct should not trust it either). */
	s->nworkers = 1000;
	for (unsigned i = 0; i < SOCKSHIM_WORKERS; i++)
		s->workers[i].calls = 1;
	assert_int_equal(stats_worker_accepts(s, x, &sum), SOCKSHIM_WORKERS);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_names),      cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_percentiles),     cmocka_unit_test(test_hist_sum),
		cmocka_unit_test(test_jain),            cmocka_unit_test(test_max_min_and_ratios),
		cmocka_unit_test(test_fmt),             cmocka_unit_test(test_read_listener),
		cmocka_unit_test(test_read_table),      cmocka_unit_test(test_worker_accepts),
		cmocka_unit_test(test_retire_ended),    cmocka_unit_test(test_retire_holder),
		cmocka_unit_test(test_read_duplicates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
