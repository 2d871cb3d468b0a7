/* The Prometheus text exposition format, and `sockshim stats` in it. Every
 * family is written once (HELP, TYPE, then its samples for every listener),
 * as scrapers and promtool require; a family without samples is left out. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "prom.h"

#define NS_PER_SEC UINT64_C(1000000000)
/* The labels every listener sample carries, and room for two more. */
#define BASE_LABELS 3
#define MAX_LABELS (BASE_LABELS + 2)

static int name_char(int c, int first, int colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return 1;
	if (c == ':')
		return colon;
	return !first && c >= '0' && c <= '9';
}

int prom_metric_name_ok(const char *name)
{
	size_t i;

	for (i = 0; name[i]; i++)
		if (!name_char((unsigned char)name[i], i == 0, 1))
			return 0;
	return i > 0;
}

int prom_label_name_ok(const char *name)
{
	size_t i;

	/* Names starting with "__" are reserved for Prometheus itself. */
	if (name[0] == '_' && name[1] == '_')
		return 0;
	for (i = 0; name[i]; i++)
		if (!name_char((unsigned char)name[i], i == 0, 0))
			return 0;
	return i > 0;
}


void prom_put_label_value(FILE *f, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, k;

	fputc('"', f);
	while (i < n) {
		if (u[i] == '\\' || u[i] == '"') {
			fputc('\\', f);
			fputc(u[i++], f);
		} else if (u[i] == '\n') {
			fputs("\\n", f);
			i++;
		} else if ((k = fmt_utf8_len(u + i, n - i)) == 0) {
			fputs("\xef\xbf\xbd", f); /* U+FFFD: the format wants UTF-8 */
			i++;
		} else {
			fwrite(u + i, 1, k, f);
			i += k;
		}
	}
	fputc('"', f);
}

void prom_put_help(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

void prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s ", name);
	prom_put_help(f, help);
	fprintf(f, "\n# TYPE %s %s\n", name, type);
}

static void put_series(FILE *f, const char *name, const char *suffix,
		       const struct prom_label *l, size_t n)
{
	size_t i;

	fputs(name, f);
	fputs(suffix, f);
	if (!n)
		return;
	fputc('{', f);
	for (i = 0; i < n; i++) {
		fprintf(f, "%s%s=", i ? "," : "", l[i].name);
		prom_put_label_value(f, l[i].value);
	}
	fputc('}', f);
}

void prom_sample_u64(FILE *f, const char *name, const struct prom_label *l, size_t n, uint64_t v)
{
	put_series(f, name, "", l, n);
	fprintf(f, " %" PRIu64 "\n", v);
}

void prom_sample(FILE *f, const char *name, const struct prom_label *l, size_t n, double v)
{
	char num[40];

	stats_fmt_double(num, sizeof(num), v);
	put_series(f, name, "", l, n);
	fprintf(f, " %s\n", num);
}

void prom_seconds_str(char *buf, size_t len, uint64_t ns)
{
	char frac[16];
	int end;

	snprintf(frac, sizeof(frac), "%09" PRIu64, ns % NS_PER_SEC);
	for (end = 9; end > 0 && frac[end - 1] == '0'; end--) {
	}
	frac[end] = 0;
	snprintf(buf, len, "%" PRIu64 "%s%s", ns / NS_PER_SEC, end ? "." : "", frac);
}

void prom_log2_histogram(FILE *f, const char *name, const struct prom_label *l, size_t n,
			 const uint64_t *h, unsigned nb)
{
	struct prom_label ls[MAX_LABELS + 1];
	char le[32], sum[40];
	uint64_t cum = 0;
	unsigned i;

	if (n > MAX_LABELS)
		n = MAX_LABELS;
	if (n) /* L may be NULL then, and memcpy wants a pointer anyway */
		memcpy(ls, l, n * sizeof(*l));
	ls[n].name = "le";
	ls[n].value = le;
	for (i = 0; i < nb; i++) {
		if (__builtin_add_overflow(cum, h[i], &cum))
			cum = UINT64_MAX;
		if (i + 1 == nb)
			break; /* the open bucket: only +Inf bounds it */
		prom_seconds_str(le, sizeof(le), stats_bucket_high(i) + 1);
		put_series(f, name, "_bucket", ls, n + 1);
		fprintf(f, " %" PRIu64 "\n", cum);
	}
	snprintf(le, sizeof(le), "+Inf");
	put_series(f, name, "_bucket", ls, n + 1);
	fprintf(f, " %" PRIu64 "\n", cum);
	stats_fmt_double(sum, sizeof(sum), stats_hist_sum_ns(h, nb) / 1e9);
	put_series(f, name, "_sum", l, n);
	fprintf(f, " %s\n", sum);
	put_series(f, name, "_count", l, n);
	fprintf(f, " %" PRIu64 "\n", cum);
}

/* ---- sockshim stats ---- */

/* A family whose HELP and TYPE lines are written before its first sample. */
struct fam {
	FILE *f;
	const char *name, *type, *help;
	int started;
};

static void fam_begin(struct fam *m, FILE *f, const char *name, const char *type,
		      const char *help)
{
	m->f = f;
	m->name = name;
	m->type = type;
	m->help = help;
	m->started = 0;
}

static void fam_head(struct fam *m)
{
	if (!m->started)
		prom_family(m->f, m->name, m->type, m->help);
	m->started = 1;
}

/* The labels naming listener E in SESSION; INODE is their buffer. */
static size_t listener_labels(struct prom_label *l, const char *session,
			      const struct stats_entry *e, char *inode, size_t len)
{
	snprintf(inode, len, "%" PRIu64, e->s.inode);
	l[0] = (struct prom_label){"session", session};
	l[1] = (struct prom_label){"listener", e->addr};
	l[2] = (struct prom_label){"inode", inode};
	return BASE_LABELS;
}

/* The listener counters, one family each. */
static const struct {
	const char *name, *help;
	size_t off;
} counters[] = {
	{"sockshim_accept_calls_total", "accept() and accept4() calls on the listener.",
	 offsetof(struct stats_listener, accept_calls)},
	{"sockshim_accepts_total", "Connections accepted from the listener.",
	 offsetof(struct stats_listener, accepts)},
	{"sockshim_spurious_wakeups_total",
	 "Workers woken for the listener (poll, select, epoll, or a blocking accept) whose "
	 "next accept found nothing.",
	 offsetof(struct stats_listener, spurious)},
	{"sockshim_empty_accepts_total",
	 "Accepts tried without a wakeup that found nothing (EAGAIN), counted apart from "
	 "spurious wakeups.",
	 offsetof(struct stats_listener, empty)},
	{"sockshim_listener_wakeups_total",
	 "poll, select and epoll returns that reported the listener ready.",
	 offsetof(struct stats_listener, wakeups)},
	{"sockshim_lock_acquisitions_total",
	 "Acquisitions of the listener's accept lock (SOCKSHIM_ACCEPT=serialize).",
	 offsetof(struct stats_listener, lock_acquisitions)},
	{"sockshim_lock_contended_total", "Acquisitions of the accept lock that had to wait.",
	 offsetof(struct stats_listener, lock_contended)},
	{"sockshim_lock_owner_died_total",
	 "Accept locks taken over from a holder that died holding them.",
	 offsetof(struct stats_listener, owner_died)},
	{"sockshim_poll_token_waits_total",
	 "poll and select waits for the listener that held its poll token "
	 "(SOCKSHIM_ACCEPT=serialize gates poll and select so).",
	 offsetof(struct stats_listener, token_waits)},
	{"sockshim_poll_token_handoffs_total",
	 "Times a worker giving the listener's poll token back (at its accept, when its poll "
	 "returned without the listener, or at its process's end) handed it to the next worker "
	 "waiting for it and woke that worker (SOCKSHIM_ACCEPT=serialize).",
	 offsetof(struct stats_listener, token_handoffs)},
	{"sockshim_epoll_exclusive_registrations_total",
	 "epoll registrations of the listener with EPOLLEXCLUSIVE, the shim's "
	 "(SOCKSHIM_ACCEPT=serialize) or the program's own.",
	 offsetof(struct stats_listener, epoll_exclusive)},
	{"sockshim_lock_unlock_errors_total",
	 "Unlocks that found the accept lock no longer the unlocker's (taken over or "
	 "overwritten).",
	 offsetof(struct stats_listener, unlock_errors)},
	{"sockshim_aborted_connections_total",
	 "Connections accepted from the listener whose release was a reset: SO_LINGER "
	 "{on, 0} was set, so the close sent an RST, lost unsent data and left no TIME_WAIT.",
	 offsetof(struct stats_listener, aborted)},
	{"sockshim_worker_overflow_total",
	 "Workers of the listener beyond the segment's table, counted in the listener's "
	 "totals but not per worker.",
	 offsetof(struct stats_listener, worker_overflow)},
	{"sockshim_retired_workers_total",
	 "Workers that ended and whose table rows went to new workers; their counts are in "
	 "sockshim_retired_worker_accepts_total.",
	 offsetof(struct stats_listener, retired_workers)},
	{"sockshim_retired_worker_accepts_total",
	 "Connections accepted by workers that ended and whose table rows went to new workers.",
	 offsetof(struct stats_listener, retired.accepts)},
};

static uint64_t field_u64(const struct stats_listener *s, size_t off)
{
	uint64_t v;

	memcpy(&v, (const char *)s + off, sizeof(v));
	return v;
}

/* The worker counters: a field of struct stats_worker each. */
static const struct {
	const char *name, *help;
	size_t off;
} worker_counters[] = {
	{"sockshim_worker_accept_calls_total", "accept() calls by one worker thread.",
	 offsetof(struct stats_worker, calls)},
	{"sockshim_worker_accepts_total", "Connections accepted by one worker thread.",
	 offsetof(struct stats_worker, accepts)},
	{"sockshim_worker_spurious_wakeups_total", "Spurious wakeups of one worker thread.",
	 offsetof(struct stats_worker, spurious)},
	{"sockshim_worker_empty_accepts_total", "Empty accepts of one worker thread.",
	 offsetof(struct stats_worker, empty)},
	{"sockshim_worker_eintr_total", "Accepts of one worker thread ended by a signal (EINTR).",
	 offsetof(struct stats_worker, eintr)},
};

static void write_workers(FILE *f, const char *session, const struct stats_entry *v, size_t n)
{
	struct prom_label l[MAX_LABELS];
	char inode[24], pid[16], tid[16];
	struct fam m;
	size_t k, i, j, nl;
	uint64_t x;

	for (k = 0; k <= sizeof(worker_counters) / sizeof(worker_counters[0]); k++) {
		if (k < sizeof(worker_counters) / sizeof(worker_counters[0]))
			fam_begin(&m, f, worker_counters[k].name, "counter", worker_counters[k].help);
		else
			fam_begin(&m, f, "sockshim_worker_lock_wait_seconds_total", "counter",
				  "Time one worker thread spent waiting for the accept lock.");
		for (i = 0; i < n; i++) {
			nl = listener_labels(l, session, &v[i], inode, sizeof(inode));
			l[nl] = (struct prom_label){"pid", pid};
			l[nl + 1] = (struct prom_label){"tid", tid};
			for (j = 0; j < v[i].s.nworkers && j < SOCKSHIM_WORKERS; j++) {
				const struct stats_worker *w = &v[i].s.workers[j];

				snprintf(pid, sizeof(pid), "%d", (int)w->pid);
				snprintf(tid, sizeof(tid), "%d", (int)w->tid);
				fam_head(&m);
				if (k < sizeof(worker_counters) / sizeof(worker_counters[0])) {
					memcpy(&x, (const char *)w + worker_counters[k].off,
					       sizeof(x));
					prom_sample_u64(f, m.name, l, nl + 2, x);
				} else {
					prom_sample(f, m.name, l, nl + 2,
						    (double)w->lock_wait_ns / 1e9);
				}
			}
		}
	}
}

/* The gauges of a listener: one value each, read by a function. */
static double g_waiters(const struct stats_entry *e, uint64_t now)
{
	(void)now;
	return (double)e->s.waiters;
}

static double g_max_waiters(const struct stats_entry *e, uint64_t now)
{
	(void)now;
	return (double)e->s.max_waiters;
}

static double g_held(const struct stats_entry *e, uint64_t now)
{
	return (double)stats_held_ns(&e->s, now) / 1e9;
}

static double g_queue(const struct stats_entry *e, uint64_t now)
{
	(void)now;
	return (double)e->queue_len;
}

static double g_backlog(const struct stats_entry *e, uint64_t now)
{
	(void)now;
	return (double)e->queue_backlog;
}

static double g_closed(const struct stats_entry *e, uint64_t now)
{
	(void)now;
	return (double)e->closed;
}

static double g_workers(const struct stats_entry *e, uint64_t now)
{
	(void)now;
	return (double)e->s.nworkers;
}

static double g_jain(const struct stats_entry *e, uint64_t now)
{
	uint64_t x[SOCKSHIM_WORKERS], sum;

	(void)now;
	return stats_jain(x, stats_worker_accepts(&e->s, x, &sum));
}

static double g_max_min(const struct stats_entry *e, uint64_t now)
{
	uint64_t x[SOCKSHIM_WORKERS], sum;

	(void)now;
	return stats_max_min(x, stats_worker_accepts(&e->s, x, &sum));
}

/* Where a gauge's value comes from. */
enum gauge_source {
	FROM_SHIM,   /* the segment: always a sample */
	FROM_QUEUE,  /* the kernel's accept queue: none when it did not list it */
	FROM_CLOSED, /* whether the kernel lists it: none when it cannot tell */
};

static const struct {
	const char *name;
	double (*get)(const struct stats_entry *e, uint64_t now);
	enum gauge_source source; /* no sample when it had no answer */
	const char *help;
} gauges[] = {
	{"sockshim_lock_waiters", g_waiters, FROM_SHIM, "Threads waiting for the accept lock now."},
	{"sockshim_lock_max_waiters", g_max_waiters, FROM_SHIM,
	 "The most threads ever seen waiting for the accept lock at once."},
	{"sockshim_lock_held_seconds", g_held, FROM_SHIM,
	 "How long the current holder of the accept lock has held it; 0 when free."},
	{"sockshim_accept_queue_length", g_queue, FROM_QUEUE,
	 "Connections waiting in the listener's accept queue, sampled from the kernel "
	 "(sock_diag) at the scrape."},
	{"sockshim_accept_backlog", g_backlog, FROM_QUEUE,
	 "The kernel's limit of the listener's accept queue (the listen() backlog as "
	 "capped by net.core.somaxconn), from sock_diag."},
	{"sockshim_listener_closed", g_closed, FROM_CLOSED,
	 "1 when the kernel lists the listener no more (closed by a reload or a stopped "
	 "server: its counts are history), 0 while it does; no sample when it cannot "
	 "tell (not TCP, or sock_diag failed)."},
	{"sockshim_workers", g_workers, FROM_SHIM,
	 "Worker threads recorded as accepting on the listener."},
	{"sockshim_fairness_jain", g_jain, FROM_SHIM,
	 "Jain's fairness index of the workers' accepted connections: 1 when all got "
	 "the same, 1/n when one got all; 1 before any connection."},
	{"sockshim_accepts_max_min_ratio", g_max_min, FROM_SHIM,
	 "The most connections one worker accepted over the fewest another did; +Inf "
	 "when a worker accepted none."},
};

static void write_info(FILE *f, const char *session, const struct stats_entry *v, size_t n)
{
	struct prom_label l[MAX_LABELS];
	char inode[24], mode[32];
	const char *name;
	struct fam m;
	size_t i, nl;

	prom_family(f, "sockshim_listeners", "gauge",
		    "Listening sockets recorded in the session's listener table.");
	l[0] = (struct prom_label){"session", session};
	prom_sample_u64(f, "sockshim_listeners", l, 1, n);

	fam_begin(&m, f, "sockshim_listener_info", "gauge",
		  "Always 1: a listener of the session, with its accept mode (observe, "
		  "serialize, off) as a label.");
	for (i = 0; i < n; i++) {
		nl = listener_labels(l, session, &v[i], inode, sizeof(inode));
		name = stats_mode_name(v[i].s.mode);
		if (name)
			snprintf(mode, sizeof(mode), "%s", name);
		else
			snprintf(mode, sizeof(mode), "unknown(%u)", (unsigned)v[i].s.mode);
		l[nl] = (struct prom_label){"mode", mode};
		fam_head(&m);
		prom_sample_u64(f, m.name, l, nl + 1, 1);
	}
}

/* The counters: plain ones, those by bypass reason, errors by kind. */
static void write_counters(FILE *f, const char *session, const struct stats_entry *v, size_t n)
{
	static const char *const errs[] = {"EINTR", "ECONNABORTED", "EMFILE_ENFILE"};
	struct prom_label l[MAX_LABELS];
	char inode[24];
	struct fam m;
	size_t i, k, nl, r;

	for (k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
		fam_begin(&m, f, counters[k].name, "counter", counters[k].help);
		for (i = 0; i < n; i++) {
			nl = listener_labels(l, session, &v[i], inode, sizeof(inode));
			fam_head(&m);
			prom_sample_u64(f, m.name, l, nl, field_u64(&v[i].s, counters[k].off));
		}
	}
	for (k = 0; k < 2; k++) {
		fam_begin(&m, f, k ? "sockshim_token_taken_total" : "sockshim_lock_bypassed_total",
			  "counter",
			  k ? "Poll tokens taken from a holder that left connections waiting, by "
			      "reason: stopped (the holder is stopped), stalled (it took none)."
			    : "Accepts made without the accept lock because its holder could make "
			      "no progress, by reason: stopped (the holder is stopped), stalled "
			      "(connections waited, it took none), invalid (the lock word named no "
			      "thread and was reset).");
		for (i = 0; i < n; i++) {
			const uint64_t *val = k ? v[i].s.token_taken : v[i].s.lock_bypassed;

			nl = listener_labels(l, session, &v[i], inode, sizeof(inode));
			for (r = 0; r < SOCKSHIM_BYPASS_COUNT; r++) {
				l[nl] = (struct prom_label){"reason", stats_bypass_name(r)};
				fam_head(&m);
				prom_sample_u64(f, m.name, l, nl + 1, val[r]);
			}
		}
	}
	fam_begin(&m, f, "sockshim_accept_errors_total", "counter",
		  "Accepts that failed with EINTR, ECONNABORTED, or EMFILE or ENFILE (as one).");
	for (i = 0; i < n; i++) {
		const uint64_t val[] = {v[i].s.eintr, v[i].s.econnaborted, v[i].s.emfile};

		nl = listener_labels(l, session, &v[i], inode, sizeof(inode));
		for (k = 0; k < sizeof(errs) / sizeof(errs[0]); k++) {
			l[nl] = (struct prom_label){"error", errs[k]};
			fam_head(&m);
			prom_sample_u64(f, m.name, l, nl + 1, val[k]);
		}
	}
}

/* The listener's log2 histograms of nanoseconds, as Prometheus
 * histograms of seconds. */
static const struct {
	const char *name, *help;
	size_t off;
} histograms[] = {
	{"sockshim_lock_wait_seconds", "How long workers waited for the accept lock",
	 offsetof(struct stats_listener, wait_hist)},
	{"sockshim_lock_hold_seconds", "How long the accept lock was held",
	 offsetof(struct stats_listener, hold_hist)},
	{"sockshim_connection_lifetime_seconds",
	 "How long connections accepted from the listener lived, from accept to the release "
	 "of their last reference",
	 offsetof(struct stats_listener, life_hist)},
	{"sockshim_close_wait_seconds",
	 "How long connections accepted from the listener whose peer closed first sat in "
	 "CLOSE_WAIT, from the peer's EOF (a read returned 0) to their release",
	 offsetof(struct stats_listener, closewait_hist)},
};

static void write_histograms(FILE *f, const char *session, const struct stats_entry *v,
			     size_t n)
{
	struct prom_label l[MAX_LABELS];
	char inode[24], help[512];
	struct fam m;
	size_t i, k, nl;

	for (k = 0; k < sizeof(histograms) / sizeof(histograms[0]); k++) {
		snprintf(help, sizeof(help),
			 "%s, from a log2 histogram of nanoseconds (bucket bounds 2^i ns); _sum is "
			 "approximate (bucket midpoints).",
			 histograms[k].help);
		fam_begin(&m, f, histograms[k].name, "histogram", help);
		for (i = 0; i < n; i++) {
			nl = listener_labels(l, session, &v[i], inode, sizeof(inode));
			fam_head(&m);
			prom_log2_histogram(f, m.name, l, nl,
					    (const uint64_t *)((const char *)&v[i].s +
							       histograms[k].off),
					    STATS_BUCKETS);
		}
	}
}

static void write_gauges(FILE *f, const char *session, const struct stats_entry *v, size_t n,
			 uint64_t now_ns)
{
	struct prom_label l[MAX_LABELS];
	char inode[24];
	struct fam m;
	size_t i, k, nl;

	for (k = 0; k < sizeof(gauges) / sizeof(gauges[0]); k++) {
		fam_begin(&m, f, gauges[k].name, "gauge", gauges[k].help);
		for (i = 0; i < n; i++) {
			if ((gauges[k].source == FROM_QUEUE && !v[i].have_queue) ||
			    (gauges[k].source == FROM_CLOSED && v[i].closed < 0))
				continue;
			nl = listener_labels(l, session, &v[i], inode, sizeof(inode));
			fam_head(&m);
			prom_sample(f, m.name, l, nl, gauges[k].get(&v[i], now_ns));
		}
	}
}

int prom_write_stats(FILE *f, const char *session, const struct stats_entry *v, size_t n,
		     uint64_t now_ns)
{
	write_info(f, session, v, n);
	write_counters(f, session, v, n);
	write_histograms(f, session, v, n);
	write_gauges(f, session, v, n, now_ns);
	write_workers(f, session, v, n);
	return ferror(f) ? -EIO : 0;
}
