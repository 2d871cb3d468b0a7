/* `sockshim stats --json`: one object per listener and line, the same
 * facts as the table with numbers left whole. */
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
	static const char *const states[] = {
		[LOCK_FREE] = "free",
		[LOCK_HELD] = "held",
		[LOCK_INVALID] = "invalid",
		[LOCK_ABANDONED] = "abandoned",
	};
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
	} else if (v.state == LOCK_ABANDONED) {
		/* The thread the word names, which ended holding the lock. */
		fputs(",\"pid\":", out);
		if (v.pid)
			fprintf(out, "%d", v.pid);
		else
			fputs("null", out);
		fprintf(out, ",\"tid\":%d", v.tid);
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

		stats_thread_comm(comm, sizeof(comm), w->pid, w->tid);
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
		fprintf(out, ",\"waiting\":%s}", w->waiting ? "true" : "false");
	}
	fputc(']', out);
}

/* One object, key after key in the order of the man page (about 85
 * lines: the keys read top to bottom here). */
void stats_json_listener(FILE *out, const struct stats_frame *f, const struct stats_entry *e)
{
	const struct stats_listener *s = &e->s;
	uint64_t x[SOCKSHIM_WORKERS], total;
	char mode[32], when[48];
	struct fmt_buf w;
	size_t nw;

	stats_mode_str(mode, sizeof(mode), s->mode);
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
	if (s->listen_backlog != SOCKSHIM_BACKLOG_UNKNOWN)
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
		",\"poll_token_handoffs\":%" PRIu64 ",\"epoll_exclusive_registrations\":%" PRIu64,
		s->empty, s->wakeups, s->eintr, s->econnaborted, s->emfile, s->lock_acquisitions,
		s->lock_contended, s->owner_died, s->token_waits, s->token_handoffs,
		s->epoll_exclusive);
	json_hist(out, "lock_wait_ns", s->wait_hist, 1);
	json_hist(out, "lock_hold_ns", s->hold_hist, 0);
	fprintf(out, ",\"aborted\":%" PRIu64, s->aborted);
	json_hist(out, "lifetime_ns", s->life_hist, 1);
	json_hist(out, "close_wait_ns", s->closewait_hist, 1);
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
		fprintf(out, ",\"closed\":%s",
			e->closed < 0 ? "null" : e->closed ? "true" : "false");
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
