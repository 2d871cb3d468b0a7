/* `sockshim closewait`: why each TCP socket in CLOSE_WAIT is still there.
 * The command: options, the session, then the evidence (closewait_load.c)
 * and the report (closewait_report.c). No per-socket system call: it must
 * answer for 10,000 sockets in well under 100 ms. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "closewait.h"
#include "sockshim/clock.h"

#define NS_PER_SEC 1000000000LL

static void usage(FILE *f)
{
	fputs("Usage: sockshim closewait [--session NAME] [--min-age SECONDS] [--all] [--json]\n"
	      "\n"
	      "Explain every TCP socket of the session in CLOSE_WAIT (the peer has closed,\n"
	      "this side has not): who holds it, how they got it, and one verdict. Joins the\n"
	      "kernel's sockets (sock_diag), the session's ledger and /proc/PID/fd.\n"
	      "\n"
	      "  -s, --session NAME     the session (default: $SOCKSHIM_SESSION, else \"default\")\n"
	      "  -m, --min-age SECONDS  only sockets in CLOSE_WAIT for at least this long\n"
	      "  -a, --all              also the host's other sockets in CLOSE_WAIT (by default\n"
	      "                         only those in the session's ledger, queued on its\n"
	      "                         listeners, or held by its processes; the others are\n"
	      "                         counted)\n"
	      "  -j, --json             one JSON object per line instead of a table\n"
	      "  -h, --help             this text\n"
	      "\n"
	      "Verdicts, decided in this order: UNACCEPTED, HUNG-HOLDER, EOF-READ-NOT-CLOSED,\n"
	      "INHERITED, EOF-NOT-READ, UNKNOWN (see sockshim(1)).\n",
	      f);
}

#define bad_usage(...) (cli_usage_error("closewait", usage, __VA_ARGS__), EXIT_USAGE)

static int parse_opts(int argc, char **argv, struct cw_opts *o)
{
	static const struct option longopts[] = {
		{"session", required_argument, NULL, 's'},
		{"min-age", required_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'j'},
		{"all", no_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	long v;
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":s:m:jah", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->session = optarg;
			break;
		case 'm':
			/* Ten years: beyond it the nanoseconds would not fit. */
			if (cli_number(optarg, 0, 10L * 365 * 86400, &v))
				return bad_usage("--min-age needs a number of seconds, not '%s'",
						 optarg);
			o->min_age_ns = (int64_t)v * NS_PER_SEC;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'a':
			o->all = 1;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			cli_bad_option("closewait", usage, c, argv);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	return 0;
}
int cmd_closewait(int argc, char **argv)
{
	struct cw_opts o;
	struct cw_ctx c;
	struct seg_map m;
	int rc;

	rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	memset(&c, 0, sizeof(c));
	kindex_init(&c.kidx);
	c.o = &o;
	rc = session_open_chosen(o.session, &c.session, &m);
	if (rc)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	cli_buffer_stdout();
	rc = cw_load(&c, &m);
	c.now_ns = (int64_t)sockshim_clock_ns(CLOCK_MONOTONIC);
	if (!rc)
		rc = cw_report(&c);
	else
		rc = EXIT_FAIL;
	if (cli_flush_stdout("report"))
		rc = EXIT_FAIL;
	cw_unload(&c);
	seg_unmap(&m);
	return rc;
}
