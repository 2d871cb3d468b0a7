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
#include "procfd.h"
#include "sockshim/seg_guard.h"
#include "sockshim/thread_state.h"
#include "sockdiag.h"
#include "stats_model.h"
#include "ledger_read.h"
#include "procfd.h"
#include "stats_print.h"
#include "unseen.h"
#include "sockshim/clock.h"

/* --watch bounds: faster than 10 Hz is a busy loop for a terminal; a day
 * is the longest interval anyone means. */
#define WATCH_MIN_S 0.1
#define WATCH_MAX_S 86400.0

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

/* Keep the ledger entries of the sockets in the list ARG. */
static int listed(void *arg, uint64_t inode, int32_t refs)
{
	const struct sockdiag_list *l = arg;
	size_t i;

	(void)refs;
	for (i = 0; i < l->n; i++)
		if (l->v[i].inode == inode)
			return 1;
	return 0;
}

/* No listener in the table: the listeners the session's processes hold
 * without the shim (a Go or static program), from /proc and the kernel,
 * into F. Only then: it scans /proc. */
static void find_unseen(const struct seg_map *m, struct stats_frame *f)
{
	struct sockdiag_list kern = {0};
	struct ledger_snap snap;
	struct procfd *pf = NULL;
	struct fmt_buf b;

	f->unseen = 0;
	memset(&snap, 0, sizeof(snap));
	fmt_buf_init(&b, f->unseen_text, sizeof(f->unseen_text));
	if (sockdiag_dump(SOCKDIAG_F(SOCKDIAG_LISTEN), 0, &kern) || !kern.n ||
	    procfd_scan(&pf) || ledger_snapshot_some(m, &snap, listed, &kern))
		goto out;
	f->unseen = unseen_listeners(m, pf, &kern, &snap, &b);
out:
	ledger_snap_free(&snap);
	procfd_free(pf);
	sockdiag_list_free(&kern);
}

/* Take a snapshot of the listener table into F->v, with the kernel's
 * accept queues; the rows of ended threads go to the retired row, and a
 * lock holder that ended holds nothing. 0 or -ENOMEM. */
static int snapshot(const struct seg_map *m, struct stats_frame *f, struct stats_listener *tmp)
{
	struct sockdiag_list kern = {0};
	size_t i, j;
	int rc;

	stats_read_table(seg_listeners(m), SOCKSHIM_LISTENERS, tmp, &f->n);
	f->now_ns = sockshim_clock_ns(CLOCK_MONOTONIC);
	f->real_ns = (int64_t)sockshim_clock_ns(CLOCK_REALTIME);
	f->diag_failed = 0;
	if (!f->n)
		find_unseen(m, f);
	rc = f->n ? sockdiag_dump(SOCKDIAG_F(SOCKDIAG_LISTEN), 0, &kern) : 0;
	if (rc == -ENOMEM)
		return rc;
	f->diag_failed = rc != 0;
	for (i = 0; i < f->n; i++) {
		struct stats_entry *e = &f->v[i];

		memcpy(&e->s, &tmp[i], sizeof(e->s));
		stats_retire_ended(&e->s, thread_ended);
		stats_retire_holder(&e->s, thread_ended);
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
		if (f->diag_failed || (e->s.family != AF_INET && e->s.family != AF_INET6))
			e->closed = -1;
		else
			e->closed = !e->have_queue;
	}
	sockdiag_list_free(&kern);
	return 0;
}




/* ---- Drawing and writing. ---- */

static void draw(FILE *out, const struct stats_frame *f)
{
	size_t i;

	switch (f->o->format) {
	case FMT_TABLE:
		stats_draw_table(out, f);
		break;
	case FMT_JSON:
		for (i = 0; i < f->n; i++)
			stats_json_listener(out, f, &f->v[i]);
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
			stats_no_listener(stderr, &f);
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
