/* `sockshim stats` as a table: a block per listener with its counters,
 * lock and gating lines, a row per worker, histograms (--hist); and the
 * helpers the JSON shares (names of modes and threads, closed or not). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "format.h"
#include "lock_view.h"
#include "stats_print.h"
#include "unseen.h"

/* bcc's funclatency bars: 40 stars for the fullest bucket. */
#define HIST_STARS 40

void stats_mode_str(char *buf, size_t len, unsigned mode)
{
	const char *name = stats_mode_name(mode);

	if (name)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "unknown(%u)", mode);
}

static void u64_str(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%" PRIu64, v);
}
/* The name of thread TID of PID from /proc, or "" when it is gone. */
void stats_thread_comm(char *buf, size_t len, int pid, int tid)
{
	char path[64];
	ssize_t n;
	int fd;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
}

/* A row of label/value cells: labels left-aligned, values right-aligned. */
#define CELL_FMT "%-17s%9s"

static void cells(FILE *out, const char *l1, const char *v1, const char *l2, const char *v2,
		  const char *l3, const char *v3)
{
	fprintf(out, "  " CELL_FMT, l1, v1);
	if (l2)
		fprintf(out, "   " CELL_FMT, l2, v2);
	if (l3)
		fprintf(out, "   " CELL_FMT, l3, v3);
	fputc('\n', out);
}

/* One bcc-style log2 histogram, from its first non-empty bucket to its last. */
static void draw_hist(FILE *out, const char *title, const uint64_t *h)
{
	uint64_t max = 0;
	char lo[24], hi[24];
	int first = -1, last = -1, i, stars;

	for (i = 0; i < STATS_BUCKETS; i++) {
		if (!h[i])
			continue;
		if (first < 0)
			first = i;
		last = i;
		if (h[i] > max)
			max = h[i];
	}
	if (first < 0) {
		fprintf(out, "  %s: no samples\n", title);
		return;
	}
	fprintf(out, "  %s:\n", title);
	fprintf(out, "     %-19s : count    distribution\n", "nsecs");
	for (i = first; i <= last; i++) {
		u64_str(lo, sizeof(lo), stats_bucket_low((unsigned)i));
		if (i + 1 < STATS_BUCKETS)
			u64_str(hi, sizeof(hi), stats_bucket_high((unsigned)i));
		else
			snprintf(hi, sizeof(hi), "inf");
		/* long double: a count near 2^64 times 40 must not wrap. */
		stars = (int)((long double)h[i] * HIST_STARS / (long double)max);
		fprintf(out, "%10s -> %-10s : %-8" PRIu64 " |%.*s%*s|\n", lo, hi, h[i], stars,
			"****************************************", HIST_STARS - stars, "");
	}
}

static void fmt_fixed(char *buf, size_t len, double v, int decimals)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (isinf(v))
		snprintf(buf, len, "inf");
	else
		snprintf(buf, len, "%.*f", decimals, v);
}

static void table_workers(FILE *out, const struct stats_entry *e, uint64_t total)
{
	char comm[16], shown[80], share[16], mean[16];
	struct fmt_buf b;
	unsigned i;

	if (!e->s.nworkers) {
		fprintf(out, e->s.retired_workers ? "  no live worker accepts on it now\n"
						  : "  no worker has tried to accept on it yet\n");
		return;
	}
	fprintf(out, "  %8s %8s %-16s %9s %9s %6s %9s %8s %8s %9s\n", "PID", "TID", "COMM",
		"CALLS", "ACCEPTS", "SHARE", "SPURIOUS", "EMPTY", "EINTR", "MEAN WAIT");
	for (i = 0; i < e->s.nworkers && i < SOCKSHIM_WORKERS; i++) {
		const struct stats_worker *w = &e->s.workers[i];
		double m = stats_ratio(w->lock_wait_ns, w->calls);

		stats_thread_comm(comm, sizeof(comm), w->pid, w->tid);
		fmt_buf_init(&b, shown, sizeof(shown));
		ob_printable(&b, comm[0] ? comm : "-", sizeof(comm));
		if (total)
			snprintf(share, sizeof(share), "%.1f%%", 100.0 * (double)w->accepts /
								 (double)total);
		else
			snprintf(share, sizeof(share), "-");
		if (isnan(m))
			snprintf(mean, sizeof(mean), "-");
		else
			stats_fmt_ns(mean, sizeof(mean), (uint64_t)(m + 0.5));
		fprintf(out,
			"  %8d %8d %-16s %9" PRIu64 " %9" PRIu64 " %6s %9" PRIu64 " %8" PRIu64
			" %8" PRIu64 " %9s\n",
			(int)w->pid, (int)w->tid, shown, w->calls, w->accepts, share, w->spurious,
			w->empty, w->eintr, mean);
	}
}

/* "  lock: ..." without its newline: the lock as it is, and how often
 * serialization gave way. */
static void table_lock(FILE *out, const struct stats_listener *s, uint64_t now_ns)
{
	struct lock_view v;
	char held[32];
	unsigned r;
	uint64_t any = s->unlock_errors;

	for (r = 0; r < SOCKSHIM_BYPASS_COUNT; r++)
		any |= s->lock_bypassed[r] | s->token_taken[r];
	if (any) {
		fprintf(out, "  lock bypassed: stopped %" PRIu64 ", stalled %" PRIu64
			     ", invalid word reset %" PRIu64 "; tokens taken: stopped %" PRIu64
			     ", stalled %" PRIu64 "; unlock errors %" PRIu64 "\n",
			s->lock_bypassed[SOCKSHIM_BYPASS_STOPPED],
			s->lock_bypassed[SOCKSHIM_BYPASS_STALLED],
			s->lock_bypassed[SOCKSHIM_BYPASS_INVALID],
			s->token_taken[SOCKSHIM_BYPASS_STOPPED],
			s->token_taken[SOCKSHIM_BYPASS_STALLED], s->unlock_errors);
	}
	lock_view_read(&v, s, now_ns);
	switch (v.state) {
	case LOCK_FREE:
		fprintf(out, "  lock holder: none");
		return;
	case LOCK_INVALID:
		fprintf(out, "  lock holder: none, the lock word is garbage (%#x; the next waiter "
			     "resets it)", (unsigned)v.word);
		return;
	case LOCK_ABANDONED:
		/* Its name went with it; the word stays until a waiter looks. */
		fputs("  lock holder: none (", out);
		if (v.pid)
			fprintf(out, "pid %d ", v.pid);
		fprintf(out, "tid %d ended holding the lock; the next waiter takes it over)", v.tid);
		return;
	case LOCK_HELD:
		break;
	}
	if (v.pid)
		fprintf(out, "  lock holder: pid %d tid %d", v.pid, v.tid);
	else
		fprintf(out, "  lock holder: tid %d", v.tid);
	{
		struct fmt_buf b;
		char shown[80]; /* 16 bytes of name, escaped */

		fmt_buf_init(&b, shown, sizeof(shown));
		ob_printable(&b, v.comm[0] ? v.comm : "?", sizeof(v.comm));
		fprintf(out, " (%s, %s)", shown, lock_view_state_name(v.thread_state));
	}
	if (v.held_ns) {
		stats_fmt_ns(held, sizeof(held), v.held_ns);
		fprintf(out, " for %s", held);
	}
	if (v.bypassed) {
		stats_fmt_ns(held, sizeof(held), v.bypassed_ns);
		fprintf(out, "; bypassed for %s (%s)", held, stats_bypass_name(v.bypass_reason));
	}
}

/* How the listener is gated, by mechanism and with that mechanism's own
 * count: serialize gates a blocking accept with the lock, poll and select
 * with the poll token (and how often a worker giving it back woke the
 * next waiting one for it), epoll with EPOLLEXCLUSIVE (a server with
 * non-blocking listeners takes the lock 0 times, rightly). In the other
 * modes, the program's own EPOLLEXCLUSIVE. */
static void table_gating(FILE *out, const struct stats_listener *s)
{
	const char *sep = "";

	if (s->mode != SOCKSHIM_ACCEPT_SERIALIZE) {
		if (s->epoll_exclusive)
			fprintf(out, "  epoll: EPOLLEXCLUSIVE of the program's own, %" PRIu64
				     " registration%s\n",
				s->epoll_exclusive, s->epoll_exclusive == 1 ? "" : "s");
		return;
	}
	fputs("  gated by:", out);
	if (s->lock_acquisitions) {
		fprintf(out, " the accept lock (blocking accept), %" PRIu64 " acquisitions",
			s->lock_acquisitions);
		sep = ";";
	}
	if (s->token_waits) {
		fprintf(out,
			"%s the poll token (poll/select), %" PRIu64 " waits with it, %" PRIu64
			" hand-offs to a waiting worker",
			sep, s->token_waits, s->token_handoffs);
		sep = ";";
	}
	if (s->epoll_exclusive) {
		fprintf(out, "%s EPOLLEXCLUSIVE (epoll), %" PRIu64 " registration%s", sep,
			s->epoll_exclusive, s->epoll_exclusive == 1 ? "" : "s");
		sep = ";";
	}
	if (!*sep)
		fputs(" nothing yet (no blocking accept, poll, select or epoll wait on it so far)",
		      out);
	fputc('\n', out);
}

/* The connections accepted here and released: how long they lived, how
 * long those the peer closed first sat in CLOSE_WAIT, how many were reset. */
static void table_lifetimes(FILE *out, const struct stats_listener *s)
{
	char a[32], b[32], c[32];
	struct stats_bound bd;

	u64_str(a, sizeof(a), stats_hist_total(s->life_hist, STATS_BUCKETS));
	stats_hist_percentile(s->life_hist, STATS_BUCKETS, 500, &bd);
	stats_fmt_bound(b, sizeof(b), &bd);
	stats_hist_percentile(s->life_hist, STATS_BUCKETS, 990, &bd);
	stats_fmt_bound(c, sizeof(c), &bd);
	cells(out, "conns released", a, "lifetime p50", b, "lifetime p99", c);
	u64_str(a, sizeof(a), s->aborted);
	stats_hist_percentile(s->closewait_hist, STATS_BUCKETS, 500, &bd);
	stats_fmt_bound(b, sizeof(b), &bd);
	stats_hist_percentile(s->closewait_hist, STATS_BUCKETS, 990, &bd);
	stats_fmt_bound(c, sizeof(c), &bd);
	cells(out, "aborted (RST)", a, "CLOSE_WAIT p50", b, "CLOSE_WAIT p99", c);
}

/* The listener's block, row after row as the table shows them (about 85
 * lines: the layout of the output reads top to bottom here). */
static void table_listener(FILE *out, const struct stats_frame *f, const struct stats_entry *e)
{
	const struct stats_listener *s = &e->s;
	char a[32], b[32], c[32], mode[32], held[32];
	uint64_t x[SOCKSHIM_WORKERS], total;
	struct stats_bound bd;
	size_t nw;

	stats_mode_str(mode, sizeof(mode), s->mode);
	fprintf(out, "LISTENER %s  inode %" PRIu64 "  mode %s", e->addr, s->inode, mode);
	if (s->listen_backlog != SOCKSHIM_BACKLOG_UNKNOWN)
		fprintf(out, "  listen(backlog %d)", (int)s->listen_backlog);
	if (e->closed == 1)
		fputs("  CLOSED (the kernel lists it no more; its counts are history)", out);
	fputc('\n', out);

	u64_str(a, sizeof(a), s->accepts);
	u64_str(b, sizeof(b), s->accept_calls);
	u64_str(c, sizeof(c), s->spurious);
	cells(out, "accepts", a, "accept calls", b, "spurious wakeups", c);
	fmt_fixed(a, sizeof(a), stats_ratio(s->spurious, s->accepts), 2);
	u64_str(b, sizeof(b), s->empty);
	u64_str(c, sizeof(c), s->wakeups);
	cells(out, "spurious/accept", a, "empty accepts", b, "poll wakeups", c);
	u64_str(a, sizeof(a), s->eintr);
	u64_str(b, sizeof(b), s->econnaborted);
	u64_str(c, sizeof(c), s->emfile);
	cells(out, "EINTR", a, "ECONNABORTED", b, "EMFILE/ENFILE", c);
	u64_str(a, sizeof(a), s->lock_acquisitions);
	u64_str(b, sizeof(b), s->lock_contended);
	u64_str(c, sizeof(c), s->owner_died);
	cells(out, "lock acquired", a, "lock contended", b, "lock owner died", c);
	stats_hist_percentile(s->wait_hist, STATS_BUCKETS, 500, &bd);
	stats_fmt_bound(a, sizeof(a), &bd);
	stats_hist_percentile(s->wait_hist, STATS_BUCKETS, 990, &bd);
	stats_fmt_bound(b, sizeof(b), &bd);
	stats_hist_max(s->wait_hist, STATS_BUCKETS, &bd);
	stats_fmt_bound(c, sizeof(c), &bd);
	cells(out, "lock wait p50", a, "lock wait p99", b, "lock wait max", c);
	stats_hist_percentile(s->hold_hist, STATS_BUCKETS, 500, &bd);
	stats_fmt_bound(a, sizeof(a), &bd);
	stats_hist_percentile(s->hold_hist, STATS_BUCKETS, 990, &bd);
	stats_fmt_bound(b, sizeof(b), &bd);
	snprintf(c, sizeof(c), "%u/%u", s->waiters, s->max_waiters);
	cells(out, "lock hold p50", a, "lock hold p99", b, "waiters now/max", c);
	nw = stats_worker_accepts(s, x, &total);
	fmt_fixed(a, sizeof(a), stats_jain(x, nw), 3);
	fmt_fixed(b, sizeof(b), stats_max_min(x, nw), 2);
	if (e->have_queue)
		snprintf(c, sizeof(c), "%u/%u", e->queue_len, e->queue_backlog);
	else
		snprintf(c, sizeof(c), "-");
	cells(out, "fairness (Jain)", a, "max/min accepts", b, "queue/backlog", c);
	table_lifetimes(out, s);
	table_gating(out, s);

	table_lock(out, s, f->now_ns);
	if (s->poller) {
		uint64_t since = s->poller_since_ns && s->poller_since_ns <= f->now_ns
					 ? f->now_ns - s->poller_since_ns
					 : 0;

		stats_fmt_ns(held, sizeof(held), since);
		fprintf(out, "; poll token: pid %u tid %u for %s", (unsigned)(s->poller >> 32),
			(unsigned)(s->poller & 0xffffffffu), held);
	} else if (s->gone_poller) {
		fprintf(out, "; poll token: none (pid %u tid %u ended holding it; the next waiter "
			     "takes it over)",
			(unsigned)(s->gone_poller >> 32), (unsigned)(s->gone_poller & 0xffffffffu));
	}
	fputc('\n', out);
	table_workers(out, e, total);
	if (s->retired_workers)
		fprintf(out, "  and %" PRIu64 " worker%s that ended (rows retired): %" PRIu64
			     " accepts, %" PRIu64 " spurious, %" PRIu64 " empty (in the totals "
			     "above)\n",
			s->retired_workers, s->retired_workers == 1 ? "" : "s", s->retired.accepts,
			s->retired.spurious, s->retired.empty);
	if (s->worker_overflow)
		fprintf(out, "  and %" PRIu64 " more workers that did not fit in the table (in the "
			     "totals above)\n",
			s->worker_overflow);
	if (s->bad_workers)
		fprintf(out, "  %u worker rows skipped: their keys name no thread (corrupt)\n",
			s->bad_workers);
	if (f->o->hist) {
		draw_hist(out, "lock wait", s->wait_hist);
		draw_hist(out, "lock hold", s->hold_hist);
		draw_hist(out, "connection lifetime (accept to release)", s->life_hist);
		draw_hist(out, "CLOSE_WAIT (peer EOF to release)", s->closewait_hist);
	}
}

void stats_no_listener(FILE *out, const struct stats_frame *f)
{
	if (f->unseen) {
		fprintf(out, "No listener recorded in session \"%s\": " UNSEEN_LISTENERS_FMT ".\n",
			f->session, f->unseen, f->unseen == 1 ? "" : "s", f->unseen_text);
		return;
	}
	fprintf(out,
		"No listener in session \"%s\" yet: a listening socket appears here once a "
		"process of the session calls listen() on it, or accepts on one it inherited "
		"(none under SOCKSHIM_ACCEPT=off).\n",
		f->session);
}

void stats_draw_table(FILE *out, const struct stats_frame *f)
{
	char when[32];
	struct fmt_buf w;
	size_t i;

	if (f->o->watch > 0) {
		fmt_buf_init(&w, when, sizeof(when));
		ob_clock(&w, f->real_ns);
		fprintf(out, "sockshim stats: session \"%s\", every %gs, at %.8s\n\n", f->session,
			f->o->watch, when);
	}
	if (!f->n) {
		stats_no_listener(out, f);
		return;
	}
	for (i = 0; i < f->n; i++) {
		table_listener(out, f, &f->v[i]);
		fputc('\n', out);
	}
	fprintf(out, "Lock wait and hold times, lifetimes and CLOSE_WAIT times are upper bounds of "
		     "log2 buckets (<=); "
		     "queue/backlog is the kernel's accept queue now (sock_diag)%s.\n",
		f->diag_failed ? ", not available: NETLINK_SOCK_DIAG failed" : "");
}
