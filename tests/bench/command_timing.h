/* For the benchmarks that time a `sockshim` reader from spawn to exit
 * (bench_closewait.c, bench_tw_conns.c): the descriptor limit their
 * sockets need, one timed run, and the best and median of RUNS runs of
 * the table and of --json, printed as "WHAT_ms_best" ... lines. */
#ifndef SOCKSHIM_BENCH_COMMAND_TIMING_H
#define SOCKSHIM_BENCH_COMMAND_TIMING_H

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS 7
/* Headroom for the command's own descriptors and the listeners. */
#define SPARE_FDS 256

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* RLIMIT_NOFILE for N sockets and SPARE_FDS more. 0 or -errno. */
static inline int raise_nofile(long n)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)n + SPARE_FDS;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max < need)
		rl.rlim_max = need; /* only root may; the error says so */
	rl.rlim_cur = need;
	return setrlimit(RLIMIT_NOFILE, &rl) ? -errno : 0;
}

/* `SOCKSHIM WHAT --session SESSION [--json] > OUT_PATH`, spawn to exit:
 * milliseconds, or -1 if it failed. */
static inline double run_once(const char *sockshim, const char *what, const char *session,
			      const char *out_path, int json)
{
	char *argv[] = {(char *)sockshim, (char *)what, "--session", (char *)session,
			json ? "--json" : NULL, NULL};
	char *envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
	posix_spawn_file_actions_t fa;
	double t0 = now_ms();
	int status, rc;
	pid_t pid;

	if (posix_spawn_file_actions_init(&fa) ||
	    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path,
					     O_WRONLY | O_CREAT | O_TRUNC, 0600))
		return -1;
	rc = posix_spawn(&pid, sockshim, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -1;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	return now_ms() - t0;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The summary line of the last --json run in PATH, and how many lines
 * (objects) it had: the figure is known to be about the right sockets. */
static inline void show_summary(const char *what, const char *path)
{
	char line[8192];
	FILE *f = fopen(path, "r");
	long lines = 0;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		lines++;
		if (strstr(line, "\"type\":\"summary\""))
			printf("%s_summary %s", what, line);
	}
	fclose(f);
	printf("%s_json_lines %ld\n", what, lines);
}

/* RUNS runs each of `SOCKSHIM WHAT --session SESSION` and of its --json,
 * alternating; prints the summary, then best and median of each. PROG
 * names the benchmark in its error. 0, or -1 once said. */
static inline int time_command(const char *prog, const char *sockshim, const char *what,
			       const char *session)
{
	double t[RUNS], tj[RUNS];
	char out_path[64];
	int i;

	snprintf(out_path, sizeof(out_path), "/tmp/%s.%d.out", prog, (int)getpid());
	for (i = 0; i < RUNS; i++) {
		t[i] = run_once(sockshim, what, session, out_path, 0);
		tj[i] = run_once(sockshim, what, session, out_path, 1);
		if (t[i] < 0 || tj[i] < 0) {
			fprintf(stderr, "%s: %s %s --session %s failed\n", prog, sockshim, what,
				session);
			unlink(out_path);
			return -1;
		}
	}
	show_summary(what, out_path);
	unlink(out_path);
	qsort(t, RUNS, sizeof(t[0]), cmp_double);
	qsort(tj, RUNS, sizeof(tj[0]), cmp_double);
	printf("%s_ms_best %.1f\n", what, t[0]);
	printf("%s_ms_median %.1f\n", what, t[RUNS / 2]);
	printf("%s_json_ms_best %.1f\n", what, tj[0]);
	printf("%s_json_ms_median %.1f\n", what, tj[RUNS / 2]);
	return 0;
}

#endif
