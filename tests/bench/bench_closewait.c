/* make bench: how long `sockshim closewait` takes over N sockets in
 * CLOSE_WAIT. Makes them on loopback (a listener whose accepted sockets
 * are never closed, clients that close at once), then runs the command
 * several times and prints the best and median wall-clock times. Meant to
 * run under `sockshim run`, so the ledger holds every socket for real.
 * Usage: bench_closewait SOCKSHIM SESSION [N [HOLD_SECONDS]]; with HOLD, it
 * keeps the sockets that long afterwards, to look at them by hand. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNS 7
/* Headroom for the command's own descriptors and the listener. */
#define SPARE_FDS 256

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* N accepted sockets plus a client each at a time. */
static int raise_nofile(long n)
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

static int make_close_wait(long n, int **out)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int lfd, *fds, one = 1;
	long i;

	fds = calloc((size_t)n, sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 128) ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen))
		return -errno;
	for (i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)))
			return -errno;
		fds[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fds[i] < 0)
			return -errno;
		close(c); /* the client's FIN puts the accepted socket in CLOSE_WAIT */
	}
	close(lfd);
	*out = fds;
	return 0;
}

/* Run SOCKSHIM closewait once, without the shim in the command itself,
 * its output to OUT_PATH. The wall-clock time in ms, or -1. posix_spawn,
 * not fork: a fork under the shim makes the child a holder of all N
 * sockets, and the command, started without the shim, never says it
 * dropped them (the report would then show stale holders). */
static double run_once(const char *sockshim, const char *session, const char *out_path,
		       int json)
{
	char *argv[] = {(char *)sockshim, "closewait", "--session", (char *)session,
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

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The summary line of a --json run: how many in CLOSE_WAIT, and the
 * verdict counts, so the figure is known to be about the right sockets. */
static void show_summary(const char *path)
{
	char line[4096];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "\"type\":\"summary\""))
			printf("closewait_summary %s", line);
	fclose(f);
}

int main(int argc, char **argv)
{
	const char *sockshim, *session;
	double t[RUNS], tj[RUNS];
	char out_path[64];
	long n = 10000;
	int *fds, rc, i;

	if (argc < 3) {
		fprintf(stderr, "usage: bench_closewait SOCKSHIM SESSION [N [HOLD_SECONDS]]\n");
		return 2;
	}
	sockshim = argv[1];
	session = argv[2];
	if (argc > 3)
		n = strtol(argv[3], NULL, 10);
	rc = raise_nofile(n);
	if (rc) {
		fprintf(stderr, "bench_closewait: cannot raise RLIMIT_NOFILE to %ld: %s (run as root, "
				"or raise the hard limit: ulimit -Hn)\n",
			n + SPARE_FDS, strerror(-rc));
		return 1;
	}
	rc = make_close_wait(n, &fds);
	if (rc) {
		fprintf(stderr, "bench_closewait: cannot make %ld CLOSE_WAIT sockets: %s\n", n,
			strerror(-rc));
		return 1;
	}
	/* Let the last FINs land. */
	usleep(200 * 1000);
	snprintf(out_path, sizeof(out_path), "/tmp/bench_closewait.%d.out", (int)getpid());
	for (i = 0; i < RUNS; i++) {
		t[i] = run_once(sockshim, session, out_path, 0);
		tj[i] = run_once(sockshim, session, out_path, 1);
		if (t[i] < 0 || tj[i] < 0) {
			fprintf(stderr, "bench_closewait: %s closewait --session %s failed\n", sockshim,
				session);
			unlink(out_path);
			return 1;
		}
	}
	show_summary(out_path);
	unlink(out_path);
	qsort(t, RUNS, sizeof(t[0]), cmp_double);
	qsort(tj, RUNS, sizeof(tj[0]), cmp_double);
	printf("closewait_sockets %ld\n", n);
	printf("closewait_ms_best %.1f\n", t[0]);
	printf("closewait_ms_median %.1f\n", t[RUNS / 2]);
	printf("closewait_json_ms_best %.1f\n", tj[0]);
	printf("closewait_json_ms_median %.1f\n", tj[RUNS / 2]);
	if (argc > 4) {
		fflush(stdout);
		sleep((unsigned)strtoul(argv[4], NULL, 10));
	}
	return 0;
}
