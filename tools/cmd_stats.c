/* `sockshim stats`: the accept statistics of a session's listeners, as a
 * table per listener with a row per worker, as JSON lines, or in the
 * Prometheus text format; once, or redrawn every few seconds. The segment
 * is only read; queue depths come from the kernel (sock_diag) at each draw. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "lock_view.h"
#include "prom.h"
#include "session.h"
#include "session_watch.h"
#include "sockshim/seg_guard.h"
#include "sockshim/thread_state.h"
#include "sockdiag.h"
#include "stats_model.h"

/* --watch bounds: faster than 10 Hz is a busy loop for a terminal; a day
 * is the longest interval anyone means. */
#define WATCH_MIN_S 0.1
#define WATCH_MAX_S 86400.0
/* bcc's funclatency bars: 40 stars for the fullest bucket. */
#define HIST_STARS 40

enum stats_format { FMT_TABLE, FMT_JSON, FMT_PROM };

struct stats_opts {
	const char *session;
	enum stats_format format;
	int hist;
	double watch; /* seconds; 0: once */
};

/* What one draw needs: the snapshot and the clocks it was taken at. */
struct stats_frame {
	const char *session;
	const struct stats_opts *o;
	struct stats_entry *v;
	size_t n;
	uint64_t now_ns;   /* CLOCK_MONOTONIC, as the shim's timestamps */
	int64_t real_ns;   /* CLOCK_REALTIME, for --watch's headers */
	int diag_failed;   /* the kernel's view was not available */
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fputs("Usage: sockshim stats [--session NAME] [--json | --prometheus] [--watch SECONDS]\n"
	      "                      [--hist]\n"
	      "\n"
	      "Show the accept statistics of each listening socket of the session: accepts,\n"
	      "spurious wakeups, errors, the accept lock (SOCKSHIM_ACCEPT=serialize), the\n"
	      "spread of connections over the workers, and the accept queue now.\n"
	      "\n"
	      "  -s, --session NAME   the session (default: $SOCKSHIM_SESSION, else \"default\")\n"
	      "  -j, --json           one JSON object per listener and line\n"
	      "  -P, --prometheus     the Prometheus text exposition format\n"
	      "  -w, --watch SECONDS  redraw every SECONDS (0.1 to 86400) until interrupted\n"
	      "  -H, --hist           draw the lock wait and hold histograms (log2, in ns)\n"
	      "  -h, --help           this text\n",
	      f);
}

#define bad_usage(...) (cli_usage_error("stats", usage, __VA_ARGS__), EXIT_USAGE)

static int parse_opts(int argc, char **argv, struct stats_opts *o)
{
	static const struct option longopts[] = {
		{"session", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"prometheus", no_argument, NULL, 'P'},
		{"watch", required_argument, NULL, 'w'},
		{"hist", no_argument, NULL, 'H'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, json = 0, prom = 0;
	char *end;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":s:jPw:Hh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->session = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'P':
			prom = 1;
			break;
		case 'w':
			errno = 0;
			o->watch = strtod(optarg, &end);
			/* The negated test also refuses NaN. */
			if (errno || end == optarg || *end ||
			    !(o->watch >= WATCH_MIN_S && o->watch <= WATCH_MAX_S))
				return bad_usage("--watch needs a number of seconds from %g to %g, "
						 "not '%s'",
						 WATCH_MIN_S, WATCH_MAX_S, optarg);
			break;
		case 'H':
			o->hist = 1;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			cli_bad_option("stats", usage, c, argv);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	if (json && prom)
		return bad_usage("give --json or --prometheus, not both");
	if (prom && o->watch > 0)
		return bad_usage("--watch does not combine with --prometheus: a scraper polls "
				 "by itself (serve the output of one run per scrape)");
	o->format = json ? FMT_JSON : prom ? FMT_PROM : FMT_TABLE;
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The name of thread TID of PID from /proc, or "" when it is gone. */
static void thread_comm(char *buf, size_t len, int pid, int tid)
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

/* Has thread TID of process PID ended? Its /proc entry is gone, or it is
 * dead; not when /proc cannot tell (no /proc, another pid namespace's
 * numbers are not ours to judge either way: kept). */
static int thread_ended(int32_t pid, int32_t tid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)pid, (int)tid);
	if (stat(path, &st) < 0)
		return errno == ENOENT && stat("/proc/self", &st) == 0;
	return thread_state_dead(thread_state((pid_t)tid));
}

/* Take a snapshot of the listener table into F->v, with the kernel's
 * accept queues; the rows of ended threads go to the retired row. 0 or
 * -ENOMEM. */
static int snapshot(const struct seg_map *m, struct stats_frame *f, struct stats_listener *tmp)
{
	struct sockdiag_list kern = {0};
	size_t i, j;
	int rc;

	stats_read_table(seg_listeners(m), SOCKSHIM_LISTENERS, tmp, &f->n);
	f->now_ns = clock_ns(CLOCK_MONOTONIC);
	f->real_ns = (int64_t)clock_ns(CLOCK_REALTIME);
	f->diag_failed = 0;
	rc = f->n ? sockdiag_dump(SOCKDIAG_F(SOCKDIAG_LISTEN), 0, &kern) : 0;
	if (rc == -ENOMEM)
		return rc;
	f->diag_failed = rc != 0;
	for (i = 0; i < f->n; i++) {
		struct stats_entry *e = &f->v[i];

		memcpy(&e->s, &tmp[i], sizeof(e->s));
		stats_retire_ended(&e->s, thread_ended);
		stats_addr(e->addr, sizeof(e->addr), &e->s);
		e->have_queue = 0;
		for (j = 0; j < kern.n; j++) {
			const struct sockdiag_sock *k = &kern.v[j];

			if (k->inode != e->s.inode || k->state != SOCKDIAG_LISTEN)
				continue;
			e->have_queue = 1;
			e->queue_len = k->rqueue;
			e->queue_backlog = k->wqueue;
			/* The kernel knows the address the shim has not recorded. */
			if (e->s.family != AF_INET && e->s.family != AF_INET6)
				sockdiag_addr_str(e->addr, sizeof(e->addr), k->family, k->src,
						  k->sport);
			break;
		}
	}
	sockdiag_list_free(&kern);
	return 0;
}

static void mode_str(char *buf, size_t len, unsigned mode)
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

/* ---- The table. ---- */

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

		thread_comm(comm, sizeof(comm), w->pid, w->tid);
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
 * with the poll token, epoll with EPOLLEXCLUSIVE (a server with
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
		fprintf(out, "%s the poll token (poll/select), %" PRIu64 " waits with it", sep,
			s->token_waits);
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

/* Is the listener closed? 1 when the kernel, asked just now, lists no
 * TCP listener of that inode (it was closed: a reload, a stopped server);
 * 0 when it lists it; -1 when it cannot tell (sock_diag failed, or not a
 * TCP listener, which sock_diag does not list). */
static int listener_closed(const struct stats_frame *f, const struct stats_entry *e)
{
	if (f->diag_failed || (e->s.family != AF_INET && e->s.family != AF_INET6))
		return -1;
	return !e->have_queue;
}

static void table_listener(FILE *out, const struct stats_frame *f, const struct stats_entry *e)
{
	const struct stats_listener *s = &e->s;
	char a[32], b[32], c[32], mode[32], held[32];
	uint64_t x[SOCKSHIM_WORKERS], total;
	struct stats_bound bd;
	size_t nw;

	mode_str(mode, sizeof(mode), s->mode);
	fprintf(out, "LISTENER %s  inode %" PRIu64 "  mode %s", e->addr, s->inode, mode);
	if (s->listen_backlog >= 0)
		fprintf(out, "  listen(backlog %d)", (int)s->listen_backlog);
	if (listener_closed(f, e) == 1)
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
	table_gating(out, s);

	table_lock(out, s, f->now_ns);
	if (s->poller) {
		uint64_t since = s->poller_since_ns && s->poller_since_ns <= f->now_ns
					 ? f->now_ns - s->poller_since_ns
					 : 0;

		stats_fmt_ns(held, sizeof(held), since);
		fprintf(out, "; poll token: pid %u tid %u for %s", (unsigned)(s->poller >> 32),
			(unsigned)(s->poller & 0xffffffffu), held);
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
	}
}

static void no_listener(FILE *out, const char *session)
{
	fprintf(out,
		"No listener in session \"%s\" yet: a listening socket appears here once a "
		"process of the session calls listen() on it, or accepts on one it inherited "
		"(none under SOCKSHIM_ACCEPT=off).\n",
		session);
}

static void draw_table(FILE *out, const struct stats_frame *f)
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
		no_listener(out, f->session);
		return;
	}
	for (i = 0; i < f->n; i++) {
		table_listener(out, f, &f->v[i]);
		fputc('\n', out);
	}
	fprintf(out, "Lock wait and hold times are upper bounds of log2 buckets (<=); "
		     "queue/backlog is the kernel's accept queue now (sock_diag)%s.\n",
		f->diag_failed ? ", not available: NETLINK_SOCK_DIAG failed" : "");
}

/* ---- JSON. ---- */

static void json_str(FILE *out, const char *s, size_t n)
{
	char buf[512];
	struct fmt_buf b;

	fmt_buf_init(&b, buf, sizeof(buf));
	ob_json_str(&b, s, n);
	fputs(buf, out);
}

static void json_double(FILE *out, double v)
{
	char buf[40];

	if (isnan(v) || isinf(v)) {
		fputs("null", out);
		return;
	}
	stats_fmt_double(buf, sizeof(buf), v);
	fputs(buf, out);
}

/* A percentile as {"ge":LOW,"lt":HIGH} in ns (HIGH null for the open last
 * bucket), or null when the histogram is empty. */
static void json_bound(FILE *out, const char *key, const struct stats_bound *b)
{
	fprintf(out, ",\"%s\":", key);
	if (b->bucket < 0) {
		fputs("null", out);
		return;
	}
	fprintf(out, "{\"ge\":%" PRIu64 ",\"lt\":", stats_bucket_low((unsigned)b->bucket));
	if (b->open)
		fputs("null}", out);
	else
		fprintf(out, "%" PRIu64 "}", b->ns);
}

static void json_reasons(FILE *out, const char *key, const uint64_t *v)
{
	unsigned r;

	fprintf(out, ",\"%s\":{", key);
	for (r = 0; r < SOCKSHIM_BYPASS_COUNT; r++)
		fprintf(out, "%s\"%s\":%" PRIu64, r ? "," : "", stats_bypass_name(r), v[r]);
	fputc('}', out);
}

/* ,"lock":{...},"lock_bypassed":{...},"token_taken":{...},"unlock_errors":N */
static void json_lock(FILE *out, const struct stats_listener *s, uint64_t now_ns)
{
	static const char *const states[] = {"free", "held", "invalid"};
	struct lock_view v;

	lock_view_read(&v, s, now_ns);
	fprintf(out, ",\"lock\":{\"state\":\"%s\",\"word\":%u", states[v.state],
		(unsigned)v.word);
	if (v.state == LOCK_HELD) {
		char st[2] = {(char)(v.thread_state > 0 ? v.thread_state : 0), 0};

		fprintf(out, ",\"pid\":");
		if (v.pid)
			fprintf(out, "%d", v.pid);
		else
			fputs("null", out);
		fprintf(out, ",\"tid\":%d,\"comm\":", v.tid);
		if (v.comm[0])
			json_str(out, v.comm, sizeof(v.comm));
		else
			fputs("null", out);
		fputs(",\"thread_state\":", out);
		if (v.thread_state > 0 && v.thread_state < 128)
			fprintf(out, "\"%s\"", st);
		else
			fputs("null", out);
		fprintf(out, ",\"state_text\":\"%s\",\"held_ns\":", lock_view_state_name(v.thread_state));
		if (v.held_ns)
			fprintf(out, "%" PRIu64, v.held_ns);
		else
			fputs("null", out);
	}
	fputs(",\"bypassed\":", out);
	if (v.bypassed)
		fprintf(out, "{\"reason\":\"%s\",\"for_ns\":%" PRIu64 "}",
			stats_bypass_name(v.bypass_reason), v.bypassed_ns);
	else
		fputs("null", out);
	fputc('}', out);
	json_reasons(out, "lock_bypassed", s->lock_bypassed);
	json_reasons(out, "token_taken", s->token_taken);
	fprintf(out, ",\"unlock_errors\":%" PRIu64, s->unlock_errors);
}

static void json_hist(FILE *out, const char *key, const uint64_t *h, int with_max)
{
	struct stats_bound b;
	int i;

	fprintf(out, ",\"%s\":{\"count\":%" PRIu64, key, stats_hist_total(h, STATS_BUCKETS));
	stats_hist_percentile(h, STATS_BUCKETS, 500, &b);
	json_bound(out, "p50", &b);
	stats_hist_percentile(h, STATS_BUCKETS, 990, &b);
	json_bound(out, "p99", &b);
	if (with_max) {
		stats_hist_max(h, STATS_BUCKETS, &b);
		json_bound(out, "max", &b);
	}
	fputs(",\"log2_hist\":[", out);
	for (i = 0; i < STATS_BUCKETS; i++)
		fprintf(out, "%s%" PRIu64, i ? "," : "", h[i]);
	fputs("]}", out);
}

static void json_workers(FILE *out, const struct stats_entry *e, uint64_t total)
{
	char comm[16];
	unsigned i;

	fputs(",\"workers\":[", out);
	for (i = 0; i < e->s.nworkers && i < SOCKSHIM_WORKERS; i++) {
		const struct stats_worker *w = &e->s.workers[i];

		thread_comm(comm, sizeof(comm), w->pid, w->tid);
		fprintf(out, "%s{\"pid\":%d,\"tid\":%d,\"comm\":", i ? "," : "", (int)w->pid,
			(int)w->tid);
		if (comm[0])
			json_str(out, comm, sizeof(comm));
		else
			fputs("null", out);
		fprintf(out,
			",\"calls\":%" PRIu64 ",\"accepts\":%" PRIu64 ",\"share\":", w->calls,
			w->accepts);
		json_double(out, stats_ratio(w->accepts, total));
		fprintf(out,
			",\"spurious_wakeups\":%" PRIu64 ",\"empty_accepts\":%" PRIu64
			",\"eintr\":%" PRIu64 ",\"lock_wait_ns\":%" PRIu64 ",\"mean_lock_wait_ns\":",
			w->spurious, w->empty, w->eintr, w->lock_wait_ns);
		json_double(out, stats_ratio(w->lock_wait_ns, w->calls));
		fputc('}', out);
	}
	fputc(']', out);
}

static void json_listener(FILE *out, const struct stats_frame *f, const struct stats_entry *e)
{
	const struct stats_listener *s = &e->s;
	uint64_t x[SOCKSHIM_WORKERS], total;
	char mode[32], when[48];
	struct fmt_buf w;
	size_t nw;

	mode_str(mode, sizeof(mode), s->mode);
	fputs("{", out);
	if (f->o->watch > 0) {
		fmt_buf_init(&w, when, sizeof(when));
		ob_json_time(&w, f->real_ns);
		fprintf(out, "\"time\":%s,", when);
	}
	fputs("\"session\":", out);
	json_str(out, f->session, SOCKSHIM_SESSION_MAX + 1);
	fputs(",\"local\":", out);
	if (strcmp(e->addr, "-") != 0)
		json_str(out, e->addr, sizeof(e->addr));
	else
		fputs("null", out);
	fprintf(out, ",\"inode\":%" PRIu64 ",\"mode\":\"%s\",\"listen_backlog\":", s->inode, mode);
	if (s->listen_backlog >= 0)
		fprintf(out, "%d", (int)s->listen_backlog);
	else
		fputs("null", out);
	fprintf(out,
		",\"accepts\":%" PRIu64 ",\"accept_calls\":%" PRIu64 ",\"spurious_wakeups\":%" PRIu64
		",\"spurious_per_accept\":",
		s->accepts, s->accept_calls, s->spurious);
	json_double(out, stats_ratio(s->spurious, s->accepts));
	fprintf(out,
		",\"empty_accepts\":%" PRIu64 ",\"poll_wakeups\":%" PRIu64 ",\"eintr\":%" PRIu64
		",\"econnaborted\":%" PRIu64 ",\"emfile_enfile\":%" PRIu64
		",\"lock_acquisitions\":%" PRIu64 ",\"lock_contended\":%" PRIu64
		",\"lock_owner_died\":%" PRIu64 ",\"poll_token_waits\":%" PRIu64
		",\"epoll_exclusive_registrations\":%" PRIu64,
		s->empty, s->wakeups, s->eintr, s->econnaborted, s->emfile, s->lock_acquisitions,
		s->lock_contended, s->owner_died, s->token_waits, s->epoll_exclusive);
	json_hist(out, "lock_wait_ns", s->wait_hist, 1);
	json_hist(out, "lock_hold_ns", s->hold_hist, 0);
	fprintf(out, ",\"waiters\":%u,\"max_waiters\":%u,\"holder\":", s->waiters, s->max_waiters);
	if (s->holder_pid)
		fprintf(out, "{\"pid\":%d,\"tid\":%d,\"held_ns\":%" PRIu64 "}", (int)s->holder_pid,
			(int)s->holder_tid, stats_held_ns(s, f->now_ns));
	else
		fputs("null", out);
	json_lock(out, s, f->now_ns);
	fputs(",\"poll_token\":", out);
	if (s->poller)
		fprintf(out, "{\"pid\":%u,\"tid\":%u,\"held_ns\":%" PRIu64 "}",
			(unsigned)(s->poller >> 32), (unsigned)(s->poller & 0xffffffffu),
			s->poller_since_ns && s->poller_since_ns <= f->now_ns
				? f->now_ns - s->poller_since_ns
				: 0);
	else
		fputs("null", out);
	nw = stats_worker_accepts(s, x, &total);
	fputs(",\"fairness_jain\":", out);
	json_double(out, stats_jain(x, nw));
	fputs(",\"max_min_ratio\":", out);
	json_double(out, stats_max_min(x, nw));
	if (e->have_queue)
		fprintf(out, ",\"queue_length\":%u,\"queue_backlog\":%u", e->queue_len,
			e->queue_backlog);
	else
		fputs(",\"queue_length\":null,\"queue_backlog\":null", out);
	{
		int closed = listener_closed(f, e);

		fprintf(out, ",\"closed\":%s", closed < 0 ? "null" : closed ? "true" : "false");
	}
	fprintf(out, ",\"worker_overflow\":%" PRIu64 ",\"bad_worker_rows\":%u", s->worker_overflow,
		s->bad_workers);
	fprintf(out,
		",\"retired_workers\":{\"count\":%" PRIu64 ",\"calls\":%" PRIu64
		",\"accepts\":%" PRIu64 ",\"spurious\":%" PRIu64 ",\"empty\":%" PRIu64
		",\"eintr\":%" PRIu64 "}",
		s->retired_workers, s->retired.calls, s->retired.accepts, s->retired.spurious,
		s->retired.empty, s->retired.eintr);
	json_workers(out, e, total);
	fputs("}\n", out);
}

/* ---- Drawing and writing. ---- */

static void draw(FILE *out, const struct stats_frame *f)
{
	size_t i;

	switch (f->o->format) {
	case FMT_TABLE:
		draw_table(out, f);
		break;
	case FMT_JSON:
		for (i = 0; i < f->n; i++)
			json_listener(out, f, &f->v[i]);
		break;
	case FMT_PROM:
		prom_write_stats(out, f->session, f->v, f->n, f->now_ns);
		break;
	}
}

/* Write LEN bytes of TEXT to stdout. For a terminal under --watch, over
 * the previous frame: cursor home, each line cleared to its end, the rest
 * of the screen cleared, so nothing flickers. 0, or -errno. */
static int put_frame(const char *text, size_t len, int in_place)
{
	size_t i, start = 0;

	if (in_place) {
		fputs("\033[H", stdout);
		for (i = 0; i < len; i++)
			if (text[i] == '\n') {
				fwrite(text + start, 1, i - start, stdout);
				fputs("\033[K\n", stdout);
				start = i + 1;
			}
		fwrite(text + start, 1, len - start, stdout);
		fputs("\033[J", stdout);
	} else {
		fwrite(text, 1, len, stdout);
	}
	if (fflush(stdout) == EOF || ferror(stdout))
		return errno ? -errno : -EIO;
	return 0;
}

/* Sleep SECONDS, or less if a stop signal comes (they are blocked outside
 * ppoll, so none is lost between a check and the sleep) or the reader of
 * stdout goes away (a pipe's write end reports POLLERR). */
static void watch_sleep(double seconds, const sigset_t *unblocked)
{
	struct pollfd p = {.fd = STDOUT_FILENO, .events = 0};
	struct timespec ts;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	if (ppoll(&p, 1, &ts, unblocked) == 1 && (p.revents & (POLLERR | POLLHUP)))
		stop_requested = 1;
}

static void watch_signals(sigset_t *unblocked)
{
	struct sigaction sa;
	sigset_t stops;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	sigprocmask(SIG_BLOCK, &stops, unblocked);
	sigdelset(unblocked, SIGINT);
	sigdelset(unblocked, SIGTERM);
}

static int run(const struct stats_opts *o, const char *name, struct seg_map *m)
{
	struct stats_listener *tmp = calloc(SOCKSHIM_LISTENERS, sizeof(*tmp));
	struct stats_entry *v = calloc(SOCKSHIM_LISTENERS, sizeof(*v));
	int in_place = o->watch > 0 && isatty(STDOUT_FILENO), rc = EXIT_OK, frames = 0;
	struct session_watch watch;
	enum session_change change;
	char *text = NULL;
	struct stats_frame f;
	sigset_t unblocked;
	size_t len = 0;
	FILE *mem;

	if (!tmp || !v)
		goto out_nomem;
	/* Near-atomic with the open; only used to notice the session's end. */
	session_watch_init(&watch, name, m->size);
	signal(SIGPIPE, SIG_IGN);
	if (o->watch > 0)
		watch_signals(&unblocked);
	memset(&f, 0, sizeof(f));
	f.session = name;
	f.o = o;
	f.v = v;
	for (;;) {
		if (snapshot(m, &f, tmp))
			goto out_nomem;
		mem = open_memstream(&text, &len);
		if (!mem)
			goto out_nomem;
		/* Snapshots one after another, told apart by a blank line. */
		if (frames++ && !in_place && o->format == FMT_TABLE)
			fputc('\n', mem);
		draw(mem, &f);
		if (fclose(mem) == EOF)
			goto out_nomem;
		if (!f.n && o->format != FMT_TABLE && frames == 1)
			no_listener(stderr, name);
		if (f.diag_failed && frames == 1 && o->format != FMT_TABLE)
			fprintf(stderr, "sockshim: warning: cannot read the accept queues through "
					"NETLINK_SOCK_DIAG; queue figures are left out\n");
		rc = put_frame(text, len, in_place);
		free(text);
		text = NULL;
		if (rc == -EPIPE) {
			rc = EXIT_OK; /* the reader has gone: what it wanted is done */
			break;
		}
		if (rc) {
			fprintf(stderr, "sockshim: cannot write the statistics: %s\n", strerror(-rc));
			rc = EXIT_FAIL;
			break;
		}
		if (o->watch <= 0 || stop_requested || seg_guard_any_lost())
			break;
		watch_sleep(o->watch, &unblocked);
		if (stop_requested)
			break;
		change = session_watch_check(&watch);
		if (change == SESSION_GONE) {
			fprintf(stderr, "sockshim: session \"%s\" ended (its segment was removed)\n",
				name);
			break;
		}
		if (change == SESSION_SHRANK) {
			session_say_shrunk(name);
			rc = EXIT_FAIL;
			break;
		}
	}
	goto out;
out_nomem:
	fprintf(stderr, "sockshim: out of memory\n");
	rc = EXIT_FAIL;
out:
	free(text);
	free(tmp);
	free(v);
	return rc;
}

int cmd_stats(int argc, char **argv)
{
	struct stats_opts o;
	struct seg_map m;
	const char *name;
	int rc;

	rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	rc = session_open_chosen(o.session, &name, &m);
	if (rc)
		return rc;
	rc = run(&o, name, &m);
	seg_unmap(&m);
	return rc;
}
