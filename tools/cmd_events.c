/* `sockshim events`: prints a session's ring as a table or JSON lines,
 * once or following it, with losses reported where they happen. Writers
 * never signal readers, so following is polling with a short sleep. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "ring_reader.h"
#include "session.h"
#include "session_watch.h"
#include "sockshim/seg_guard.h"
#include "sockshim/clock.h"

/* Long enough to cost nothing while idle, short enough to feel live. */
#define FOLLOW_SLEEP_NS (20 * 1000000L)
/* A slot caught mid-write is normally published within microseconds. */
#define PENDING_SLEEP_NS (1 * 1000000L)
/* How often --follow checks that the session still exists: in polls. */
#define SESSION_CHECK_POLLS 50

struct events_opts {
	const char *session;
	int follow;
	int json;
	int pid;       /* 0: any */
	uint32_t types; /* bit per event type; 0: any */
	int port;      /* -1: any */
};

struct events_out {
	const struct events_opts *o;
	struct fmt_clockref clock;
	uint64_t lost_n; /* a loss not printed yet, merged with the next one */
	char lost_kind;
	int pipe_closed;
	int write_err; /* errno of a failed write to stdout, other than EPIPE */
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	char types[256];

	fmt_event_list(types, sizeof(types));
	fprintf(f,
		"Usage: sockshim events [--session NAME] [-f|--follow] [--json] [--pid PID]\n"
		"                       [--type LIST] [--port N]\n"
		"\n"
		"Print the socket events recorded in a session, oldest first.\n"
		"\n"
		"  -s, --session NAME  the session (default: $SOCKSHIM_SESSION, else \"default\")\n"
		"  -f, --follow        keep printing events as they arrive, until interrupted\n"
		"  -j, --json          one JSON object per line instead of a table\n"
		"  -p, --pid PID       only events of process PID\n"
		"  -t, --type LIST     only these event types, comma separated:\n"
		"                      %s\n"
		"  -P, --port N        only events whose local or peer port is N\n"
		"  -h, --help          this text\n",
		types);
}

#define bad_usage(...) (cli_usage_error("events", usage, __VA_ARGS__), EXIT_USAGE)

static int parse_types(const char *list, uint32_t *types)
{
	char *copy = strdup(list), *save = NULL, *tok;
	char valid[256];
	int rc = 0, t;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		t = fmt_event_parse(tok);
		if (t < 0) {
			fmt_event_list(valid, sizeof(valid));
			fprintf(stderr,
				"sockshim events: unknown event type '%s' in --type; valid "
				"types: %s\n",
				tok, valid);
			rc = -EINVAL;
			goto out;
		}
		*types |= 1u << t;
	}
	if (!*types) {
		fprintf(stderr, "sockshim events: --type needs at least one event type\n");
		rc = -EINVAL;
	}
out:
	free(copy);
	return rc;
}

static int parse_opts(int argc, char **argv, struct events_opts *o)
{
	static const struct option longopts[] = {
		{"session", required_argument, NULL, 's'},
		{"follow", no_argument, NULL, 'f'},
		{"json", no_argument, NULL, 'j'},
		{"pid", required_argument, NULL, 'p'},
		{"type", required_argument, NULL, 't'},
		{"port", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	long v;
	int c;

	memset(o, 0, sizeof(*o));
	o->port = -1;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":s:fjp:t:P:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->session = optarg;
			break;
		case 'f':
			o->follow = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'p':
			if (cli_number(optarg, 1, INT_MAX, &v))
				return bad_usage("--pid needs a process id, not '%s'", optarg);
			o->pid = (int)v;
			break;
		case 't':
			if (parse_types(optarg, &o->types))
				return EXIT_USAGE;
			break;
		case 'P':
			if (cli_number(optarg, 0, 65535, &v))
				return bad_usage("--port needs a port number 0..65535, not '%s'",
						 optarg);
			o->port = (int)v;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			cli_bad_option("events", usage, c, argv);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	return 0;
}

static int wanted(const struct events_opts *o, const struct sockshim_record *r)
{
	if (o->pid && r->pid != o->pid)
		return 0;
	/* An out-of-range type has no bit: no --type list selects it. */
	if (o->types && (r->type >= SOCKSHIM_EV_COUNT || !(o->types & (1u << r->type))))
		return 0;
	if (o->port >= 0 &&
	    !((r->flags & SOCKSHIM_FLAG_LOCAL_KNOWN) && r->local_port == o->port) &&
	    !((r->flags & SOCKSHIM_FLAG_PEER_KNOWN) && r->peer_port == o->port))
		return 0;
	return 1;
}

static void put_line(struct events_out *out, const char *line)
{
	if (out->pipe_closed || out->write_err)
		return;
	if (fputs(line, stdout) == EOF || putchar('\n') == EOF) {
		if (errno == EPIPE)
			out->pipe_closed = 1;
		else
			out->write_err = errno ? errno : EIO;
	}
}

static void flush_out(struct events_out *out)
{
	if (out->pipe_closed || out->write_err)
		return;
	if (fflush(stdout) == EOF) {
		if (errno == EPIPE)
			out->pipe_closed = 1;
		else
			out->write_err = errno ? errno : EIO;
	}
}

static void flush_lost(struct events_out *out)
{
	char line[FMT_LINE_MAX];

	if (!out->lost_n)
		return;
	fmt_lost(line, sizeof(line), out->lost_n, out->lost_kind, out->o->json);
	put_line(out, line);
	out->lost_n = 0;
}

static void on_lost(struct events_out *out, uint64_t n, char kind)
{
	if (out->lost_n && out->lost_kind != kind)
		flush_lost(out);
	out->lost_n += n;
	out->lost_kind = kind;
}

static void on_record(struct events_out *out, const struct sockshim_record *r)
{
	char line[FMT_LINE_MAX];

	if (!wanted(out->o, r))
		return;
	flush_lost(out);
	if (out->o->json)
		fmt_json_record(line, sizeof(line), r, (r->stamp - 2) / 2, &out->clock);
	else
		fmt_table_row(line, sizeof(line), r, &out->clock);
	put_line(out, line);
}

static int64_t now_ns(void)
{
	return (int64_t)sockshim_clock_ns(CLOCK_MONOTONIC);
}

static void nap(long ns)
{
	struct timespec ts = {0, ns};

	nanosleep(&ts, NULL); /* a signal cuts it short: the caller checks */
}

/* True when stdout is a pipe or socket whose reader has gone: a follower
 * printing nothing would otherwise never notice. */
static int stdout_hung_up(void)
{
	struct pollfd p = {.fd = STDOUT_FILENO, .events = 0};

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

/* Tickets taken at least RING_TORN_TIMEOUT_NS ago: a live writer has
 * finished them, so one still pending is torn at once. Without this, a
 * ring full of unfinished slots (a corrupt head, writers killed en masse)
 * would cost the timeout once per slot. */
struct aging {
	uint64_t aged_head; /* every ticket below is old enough */
	uint64_t snap_head;
	int64_t snap_ns;
};

static void aging_init(struct aging *a, const struct ring_reader *rr)
{
	a->aged_head = 0;
	a->snap_head = ring_reader_head(rr);
	a->snap_ns = now_ns();
}

/* The clock to hand ring_reader_next for the slot at the cursor. */
static int64_t reader_clock(struct aging *a, const struct ring_reader *rr)
{
	int64_t now = now_ns();

	if (now - a->snap_ns >= RING_TORN_TIMEOUT_NS) {
		a->aged_head = a->snap_head;
		a->snap_head = ring_reader_head(rr);
		a->snap_ns = now;
	}
	return rr->cursor < a->aged_head ? INT64_MAX : now;
}

/* Read until the head seen at start (once) or until stopped (follow). */
static enum session_change read_loop(struct ring_reader *rr, struct events_out *out,
				      const struct session_watch *watch)
{
	const struct events_opts *o = out->o;
	uint64_t end = ring_reader_head(rr), lost;
	struct sockshim_record rec;
	struct aging age;
	int polls = 0;
	enum session_change change = SESSION_SAME;
	char kind;

	aging_init(&age, rr);
	while (!stop_requested && !out->pipe_closed && !out->write_err && !seg_guard_any_lost()) {
		if (!o->follow && rr->cursor >= end)
			break;
		switch (ring_reader_next(rr, &rec, &lost, &kind, reader_clock(&age, rr))) {
		case RING_RECORD:
			on_record(out, &rec);
			continue;
		case RING_LOST:
			on_lost(out, lost, kind);
			continue;
		case RING_PENDING:
			nap(o->follow ? FOLLOW_SLEEP_NS : PENDING_SLEEP_NS);
			continue;
		case RING_EMPTY:
			break;
		}
		if (!o->follow || change == SESSION_GONE)
			break; /* the head went backwards: nothing more to read */
		flush_lost(out);
		flush_out(out);
		if (stdout_hung_up()) {
			out->pipe_closed = 1;
			break;
		}
		/* Drain what the last writers left, then stop. */
		if (++polls % SESSION_CHECK_POLLS == 0) {
			change = session_watch_check(watch);
			if (change == SESSION_SHRANK)
				break; /* its writers stopped; main says so */
			if (change == SESSION_GONE)
				continue;
		}
		nap(FOLLOW_SLEEP_NS);
	}
	flush_lost(out);
	flush_out(out);
	if (change == SESSION_GONE)
		fprintf(stderr, "sockshim: session \"%s\" ended (its segment was removed)\n",
			session_choose(o->session));
	else if (change == SESSION_SHRANK)
		session_say_shrunk(session_choose(o->session));
	return change;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop; /* no SA_RESTART: the sleep must end */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A closed stdout must be an EPIPE we can act on, not a silent death
	 * that skips the loss summary. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int cmd_events(int argc, char **argv)
{
	char header[FMT_LINE_MAX];
	struct session_watch watch;
	struct events_opts o;
	struct events_out out;
	struct ring_reader rr;
	struct seg_map m;
	const char *name;
	uint64_t lost;
	int rc;

	rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	rc = session_open_chosen(o.session, &name, &m);
	if (rc)
		return rc;
	/* Near-atomic with the open; only used to notice the session's end. */
	session_watch_init(&watch, name, m.size);

	memset(&out, 0, sizeof(out));
	out.o = &o;
	out.clock.created_real_ns = seg_header(&m)->created_realtime_ns;
	out.clock.created_mono_ns = seg_header(&m)->created_monotonic_ns;
	install_signals();
	if (!o.json) {
		fmt_table_header(header, sizeof(header));
		put_line(&out, header);
	}
	ring_reader_init(&rr, &m, 1);
	rc = read_loop(&rr, &out, &watch) == SESSION_SHRANK ? EXIT_FAIL : EXIT_OK;
	if (out.write_err) {
		fprintf(stderr, "sockshim: cannot write events: %s\n", strerror(out.write_err));
		rc = EXIT_FAIL;
	}
	if (rr.overwritten_before)
		fprintf(stderr,
			"sockshim: %llu older events had been overwritten before this read began "
			"(the ring keeps the last %u; follow with -f, or a bigger --ring-events, "
			"to see them all)\n",
			(unsigned long long)rr.overwritten_before, m.ring_capacity);
	lost = rr.lost_overrun + rr.lost_torn;
	if (lost)
		fprintf(stderr, "sockshim: %llu events delivered, %llu lost (overrun %llu, torn %llu)\n",
			(unsigned long long)rr.delivered, (unsigned long long)lost,
			(unsigned long long)rr.lost_overrun, (unsigned long long)rr.lost_torn);
	seg_unmap(&m);
	return rc;
}
