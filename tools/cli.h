/* What the subcommands share: their entry points, called by main with
 * argv[0] the subcommand's name, and the exit statuses they return. */
#ifndef SOCKSHIM_CLI_H
#define SOCKSHIM_CLI_H

#include <stdio.h>

#define EXIT_OK 0
#define EXIT_FAIL 1  /* a runtime error: no such session, a refused segment */
#define EXIT_USAGE 2 /* a bad command line */

int cmd_run(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_sessions(int argc, char **argv);
int cmd_clean(int argc, char **argv);
int cmd_holders(int argc, char **argv);
int cmd_closewait(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_timewait(int argc, char **argv);
int cmd_conns(int argc, char **argv);

/* Report a bad command line of subcommand CMD: "sockshim CMD: MESSAGE",
 * then its usage, all on stderr. Returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, void (*usage)(FILE *), const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Report what getopt_long (with a leading ':' in its option string)
 * returned as C for an option it did not take: a missing value or an
 * unknown option. Returns EXIT_USAGE. */
int cli_bad_option(const char *cmd, void (*usage)(FILE *), int c, char **argv);

/* Before a report of thousands of lines: stdout, when it is no terminal,
 * written 64 KiB at a time instead of stdio's 4 KiB, a write system call
 * each. A terminal stays line-buffered. Before anything is printed. */
void cli_buffer_stdout(void);

/* Flush a report of WHAT ("report", "list") to stdout. A reader gone
 * (EPIPE: `| head`) is no error; any other is said. EXIT_OK or EXIT_FAIL. */
int cli_flush_stdout(const char *what);

/* Parse S as a whole decimal number in [MIN, MAX]. 0 or -EINVAL. */
int cli_number(const char *s, long min, long max, long *out);

#endif
