/* libFuzzer harness of the listener table reader (tools/stats_model.c)
 * and of what `sockshim stats` computes and prints from it (tools/prom.c):
 * entries from the input are laid into the listener table of a valid
 * segment, read with stats_read_table, then summarised and written as a
 * Prometheus exposition. Asserts: every listener in use is read once
 * (nothing changes under this reader), however many entries name it;
 * workers are real threads, each once, sorted, within the table; a lock
 * holder is a real pid or none; the listeners come out sorted and each
 * series once; percentiles are ordered and within the histogram;
 * fairness within [1/n, 1]; retiring ended rows keeps every count and
 * the order; every string is terminated and escaped; the exposition
 * parses, its histogram buckets never decrease and end at _count;
 * nothing is read outside the segment.
 *
 * Input: u64 now (CLOCK_MONOTONIC), u64 have_queue (bit i: listener i has
 * its kernel queue), then entries: u8 slot, u32 queue length, u32 queue
 * backlog, then the raw struct sockshim_listener (cut short: zeros). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "prom.h"
#include "stats_model.h"

#define RING_CAP (1u << SOCKSHIM_RING_MIN_SHIFT)
#define LEDGER_CAP (1u << SOCKSHIM_LEDGER_MIN_SHIFT)

static struct seg_map map;
static size_t map_size;

static void setup(void)
{
	void *base;

	map_size = sockshim_segment_size(RING_CAP, LEDGER_CAP);
	base = fuzz_map(map_size);
	FUZZ_CHECK(base, "cannot map %zu bytes", map_size);
	fuzz_seg_init(&map, base, map_size, RING_CAP, LEDGER_CAP);
}

static int cmp_listeners(const struct stats_listener *x, const struct stats_listener *y)
{
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	c = memcmp(x->local_ip, y->local_ip, sizeof(x->local_ip));
	if (c)
		return c;
	if (x->local_port != y->local_port)
		return x->local_port < y->local_port ? -1 : 1;
	return (x->inode > y->inode) - (x->inode < y->inode);
}

static void check_hist(const uint64_t *h)
{
	static const unsigned permille[] = {0, 500, 900, 990, 999, 1000};
	struct stats_bound b, mx;
	char buf[64];
	int last = -1, bk;
	uint64_t total = stats_hist_total(h, STATS_BUCKETS);
	size_t i;

	bk = stats_hist_max(h, STATS_BUCKETS, &mx);
	FUZZ_CHECK(bk >= -1 && bk < STATS_BUCKETS, "max bucket %d", bk);
	FUZZ_CHECK((bk < 0) == (total == 0), "max bucket %d, total %llu", bk,
		   (unsigned long long)total);
	for (i = 0; i < sizeof(permille) / sizeof(permille[0]); i++) {
		bk = stats_hist_percentile(h, STATS_BUCKETS, permille[i], &b);
		FUZZ_CHECK(bk == b.bucket && bk >= -1 && bk < STATS_BUCKETS, "bucket %d", bk);
		FUZZ_CHECK((bk < 0) == (total == 0), "percentile bucket %d of total %llu", bk,
			   (unsigned long long)total);
		FUZZ_CHECK(bk >= last && bk <= mx.bucket, "p%u bucket %d after %d, max %d",
			   permille[i], bk, last, mx.bucket);
		FUZZ_CHECK(bk < 0 || h[bk], "percentile in the empty bucket %d", bk);
		last = bk;
		stats_fmt_bound(buf, sizeof(buf), &b);
		fuzz_check_terminal(buf, sizeof(buf), "bucket bound");
	}
	FUZZ_CHECK(stats_hist_sum_ns(h, STATS_BUCKETS) >= 0, "negative sum");
}

static void check_double(double v)
{
	char buf[40];

	stats_fmt_double(buf, sizeof(buf), v);
	fuzz_check_terminal(buf, sizeof(buf), "number");
	FUZZ_CHECK(isnan(v) || strtod(buf, NULL) == v, "%s does not read back as %.17g", buf, v);
}

/* Rows of odd threads end: retiring them keeps the living rows in order
 * and moves every count of the ended into the retired row. */
static int odd_thread_ended(int32_t pid, int32_t tid)
{
	(void)pid;
	return tid & 1;
}

static void check_retire(const struct stats_listener *s)
{
	static struct stats_listener r;
	uint64_t before = s->retired.accepts, want = s->retired_workers;
	size_t moved, i, n = s->nworkers < SOCKSHIM_WORKERS ? s->nworkers : SOCKSHIM_WORKERS;
	size_t odd = 0;

	r = *s;
	for (i = 0; i < n; i++) {
		odd += s->workers[i].tid & 1;
		if (s->workers[i].tid & 1 && __builtin_add_overflow(before, s->workers[i].accepts, &before))
			before = UINT64_MAX;
	}
	moved = stats_retire_ended(&r, odd_thread_ended);
	FUZZ_CHECK(moved == odd && r.nworkers == n - odd, "%zu of %zu rows retired, %zu odd", moved, n,
		   odd);
	if (__builtin_add_overflow(want, odd, &want))
		want = UINT64_MAX;
	FUZZ_CHECK(r.retired_workers == want, "retired workers %llu, want %llu",
		   (unsigned long long)r.retired_workers, (unsigned long long)want);
	FUZZ_CHECK(r.retired.accepts == before, "retired accepts %llu, want %llu",
		   (unsigned long long)r.retired.accepts, (unsigned long long)before);
	for (i = 0; i < r.nworkers; i++)
		FUZZ_CHECK(!(r.workers[i].tid & 1) &&
				   (!i || r.workers[i - 1].pid < r.workers[i].pid ||
				    (r.workers[i - 1].pid == r.workers[i].pid &&
				     r.workers[i - 1].tid < r.workers[i].tid)),
			   "row %zu (thread %d) after retirement", i, r.workers[i].tid);
}

static void check_listener(const struct stats_listener *s, uint64_t now)
{
	uint64_t x[SOCKSHIM_WORKERS], sum = 0, want = 0;
	char buf[STATS_ADDR_MAX];
	size_t n, i, k;
	double j;

	FUZZ_CHECK(sockshim_inode_in_use(s->inode), "inode %llu read",
		   (unsigned long long)s->inode);
	FUZZ_CHECK(s->nworkers + s->bad_workers <= SOCKSHIM_WORKERS, "%u + %u workers",
		   s->nworkers, s->bad_workers);
	for (i = 0; i < s->nworkers; i++) {
		const struct stats_worker *w = &s->workers[i];

		FUZZ_CHECK(w->pid > 0 && w->tid > 0, "worker %d/%d", w->pid, w->tid);
		FUZZ_CHECK(!i || w[-1].pid < w->pid || (w[-1].pid == w->pid && w[-1].tid < w->tid),
			   "workers out of order, or one twice");
	}
	FUZZ_CHECK(s->holder_pid > 0 || (!s->holder_pid && !s->holder_tid && !s->held_since_ns),
		   "holder %d/%d since %llu", s->holder_pid, s->holder_tid,
		   (unsigned long long)s->held_since_ns);
	FUZZ_CHECK(stats_held_ns(s, now) <= now, "held longer than the clock");
	FUZZ_CHECK((stats_mode_name(s->mode) == NULL) == (s->mode > SOCKSHIM_ACCEPT_OFF),
		   "mode %u", s->mode);
	stats_addr(buf, sizeof(buf), s);
	fuzz_check_terminal(buf, sizeof(buf), "listener address");
	check_hist(s->wait_hist);
	check_hist(s->hold_hist);
	check_hist(s->life_hist);
	check_hist(s->closewait_hist);
	n = stats_worker_accepts(s, x, &sum);
	/* Fairness is among the rows listed, every one. */
	k = s->nworkers < SOCKSHIM_WORKERS ? s->nworkers : SOCKSHIM_WORKERS;
	FUZZ_CHECK(n == k, "%zu worker counts of %zu rows", n, k);
	for (i = 0; i < n; i++)
		if (__builtin_add_overflow(want, x[i], &want))
			want = UINT64_MAX;
	FUZZ_CHECK(sum == want, "sum %llu, want %llu", (unsigned long long)sum,
		   (unsigned long long)want);
	j = stats_jain(x, n);
	FUZZ_CHECK(j >= (n ? 1.0 / (double)n : 1.0) - 1e-9 && j <= 1.0 + 1e-9, "Jain %g of %zu", j,
		   n);
	FUZZ_CHECK(stats_max_min(x, n) >= 1.0, "max/min below 1");
	check_double(j);
	check_double(stats_ratio(s->spurious, s->accepts));
	check_double(stats_ratio(s->worker_overflow, s->accept_calls));
	check_double((double)s->lock_contended / 7.0);
	stats_fmt_ns(buf, sizeof(buf), s->held_since_ns);
	fuzz_check_terminal(buf, sizeof(buf), "duration");
	check_retire(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct stats_listener out[SOCKSHIM_LISTENERS];
	static struct stats_entry entries[SOCKSHIM_LISTENERS];
	struct fuzz_in in = {data, size};
	struct sockshim_listener *table;
	uint32_t qlen[SOCKSHIM_LISTENERS] = {0}, qmax[SOCKSHIM_LISTENERS] = {0};
	size_t n = 0, used = 0, i, slot, len = 0;
	uint64_t now, have_queue;
	char *text = NULL;
	FILE *f;

	if (!map.base)
		setup();
	table = seg_listeners(&map);
	memset(table, 0, SOCKSHIM_LISTENERS * sizeof(*table));
	now = fuzz_u64(&in);
	have_queue = fuzz_u64(&in);
	while (in.n > 9) {
		slot = fuzz_u8(&in) % SOCKSHIM_LISTENERS;
		qlen[slot] = fuzz_u32(&in);
		qmax[slot] = fuzz_u32(&in);
		fuzz_bytes(&in, &table[slot], sizeof(table[slot]));
	}
	/* The listeners in use: distinct inodes. */
	for (i = 0; i < SOCKSHIM_LISTENERS; i++) {
		size_t j;

		if (!sockshim_inode_in_use(table[i].inode))
			continue;
		for (j = 0; j < i && table[j].inode != table[i].inode; j++)
			;
		used += j == i;
	}

	stats_read_table(table, SOCKSHIM_LISTENERS, out, &n);
	/* Nothing changes under this reader: every listener is read, once. */
	FUZZ_CHECK(n == used, "%zu listeners read of %zu in use", n, used);
	for (i = 0; i < n; i++) {
		check_listener(&out[i], now);
		FUZZ_CHECK(!i || cmp_listeners(&out[i - 1], &out[i]) <= 0, "listeners out of order");
		memset(&entries[i], 0, sizeof(entries[i]));
		entries[i].s = out[i];
		stats_addr(entries[i].addr, sizeof(entries[i].addr), &out[i]);
		entries[i].have_queue = (int)((have_queue >> (i % 64)) & 1);
		entries[i].queue_len = qlen[i];
		entries[i].queue_backlog = qmax[i];
	}
	f = open_memstream(&text, &len);
	FUZZ_CHECK(f, "open_memstream");
	FUZZ_CHECK(prom_write_stats(f, "fuzz", entries, n, now) == 0, "exposition failed");
	FUZZ_CHECK(fclose(f) == 0, "exposition not written");
	fuzz_check_prometheus(text, len, "stats --prometheus");
	free(text);
	return 0;
}
