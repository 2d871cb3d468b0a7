/* The sockshim command's entry point: picks the subcommand, prints the
 * overall usage and the version. Each subcommand parses its own flags. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "session_watch.h"
#include "sockshim/layout.h"
#include "sockshim/seg_guard.h"

#ifndef SOCKSHIM_VERSION
#define SOCKSHIM_VERSION "0.1.0"
#endif

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static const struct subcommand subcommands[] = {
	{"run", cmd_run},
	{"events", cmd_events},
	{"sessions", cmd_sessions},
	{"clean", cmd_clean},
	{"holders", cmd_holders},
	{"closewait", cmd_closewait},
	{"stats", cmd_stats},
	{"timewait", cmd_timewait},
	{"conns", cmd_conns},
};

static void usage(FILE *f)
{
	fputs("Usage: sockshim COMMAND [OPTIONS]\n"
	      "\n"
	      "See the life of every socket in an unmodified program.\n"
	      "\n"
	      "Commands:\n"
	      "  run [--session NAME] [--ring-events N] [--keep] -- CMD [ARGS...]\n"
	      "        run CMD with the shim preloaded, recording into a session\n"
	      "  events [--session NAME] [-f|--follow] [--json] [--pid PID]\n"
	      "         [--type LIST] [--port N]\n"
	      "        print the session's socket events\n"
	      "  sessions [--json]\n"
	      "        list your sessions\n"
	      "  clean (--session NAME [--force] | --all)\n"
	      "        remove sessions no process uses any more\n"
	      "  holders [--session NAME] [INODE | ADDR:PORT | --pid PID] [--json]\n"
	      "        who holds each socket now, and how they got it\n"
	      "  closewait [--session NAME] [--min-age SECONDS] [--json]\n"
	      "        why each TCP socket in CLOSE_WAIT is still open\n"
	      "  stats [--session NAME] [--json | --prometheus] [--watch SECONDS] [--hist]\n"
	      "        accept statistics per listener: spurious wakeups, lock waits, fairness\n"
	      "  timewait [--session NAME] [--all] [--json]\n"
	      "        the session's TIME_WAIT sockets by cause, their rate and the ports left\n"
	      "  conns [--session NAME] [--state LIST] [--port N] [--pid PID] [--all] [--json]\n"
	      "        every TCP connection of the session: state now, birth, holders, closer\n"
	      "\n"
	      "Run 'sockshim COMMAND --help' for a command's options, and see sockshim(1).\n"
	      "Options: -h, --help  this text;  --version  the version.\n",
	      f);
}

int cli_usage_error(const char *cmd, void (*sub_usage)(FILE *), const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sockshim %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	sub_usage(stderr);
	return EXIT_USAGE;
}

int cli_bad_option(const char *cmd, void (*sub_usage)(FILE *), int c, char **argv)
{
	if (c == ':')
		return cli_usage_error(cmd, sub_usage, "option '%s' needs a value", argv[optind - 1]);
	if (optopt)
		return cli_usage_error(cmd, sub_usage, "unknown option '-%c'", optopt);
	return cli_usage_error(cmd, sub_usage, "unknown option '%s'", argv[optind - 1]);
}

void cli_buffer_stdout(void)
{
	static char buf[1 << 16];

	if (!isatty(STDOUT_FILENO))
		setvbuf(stdout, buf, _IOFBF, sizeof(buf));
}

int cli_flush_stdout(const char *what)
{
	if (fflush(stdout) == EOF && errno != EPIPE) {
		fprintf(stderr, "sockshim: cannot write the %s: %s\n", what, strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int cli_number(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A subcommand's status, unless a segment it read shrank meanwhile: what
 * it printed may then be incomplete, and it says so. */
static int lost_check(int status)
{
	const char *name = seg_guard_lost_name();

	if (!name)
		return status;
	session_say_shrunk(name);
	return status == EXIT_OK ? EXIT_FAIL : status;
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("sockshim %s (segment layout version %u)\n", SOCKSHIM_VERSION,
		       SOCKSHIM_LAYOUT_VERSION);
		return EXIT_OK;
	}
	/* A segment file that shrinks while we read it costs the reading
	 * (its pages read as zeros), never a death by SIGBUS. */
	if (seg_guard_install_default() < 0)
		fprintf(stderr, "sockshim: warning: cannot install a SIGBUS handler (%s); a "
				"segment truncated while it is read would end this command\n",
			strerror(errno));
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return lost_check(subcommands[i].fn(argc - 1, argv + 1));
	if (argv[1][0] == '-')
		fprintf(stderr, "sockshim: unknown option '%s'\n\n", argv[1]);
	else
		fprintf(stderr, "sockshim: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
