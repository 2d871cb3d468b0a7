/* make bench: how long `sockshim timewait` takes over N sockets in
 * TIME_WAIT, and `sockshim conns` over N connections, of the session.
 * Makes them on loopback, then runs the command several times (spawn to
 * exit) and prints the best and median wall-clock times, of the table and
 * of --json. Meant to run under `sockshim run`, so the ledger holds every
 * socket for real (give it --max-sockets of at least 2N + 256).
 *
 * timewait: N connections to LISTENERS local listeners (spread over
 * several destinations: toward one, the ephemeral port range, 28,232
 * ports by default, would not hold 30,000, and the kernel reuses TIME_WAIT
 * ports on loopback once it comes round again); the client closes first, the
 * server reads the EOF and closes, so the client's side stays in TIME_WAIT
 * (60 s; the kernel ends them, nothing to clean up).
 * conns: N sockets of N/2 connections, both ends held open, a mix of
 * states: one in four with the client shut down for writing (client in
 * FIN_WAIT2, server in CLOSE_WAIT), the rest ESTABLISHED. Needs
 * RLIMIT_NOFILE >= N + 256 (raised when allowed).
 *
 * Usage: bench_tw_conns SOCKSHIM SESSION timewait|conns [N [HOLD_SECONDS]];
 * with HOLD, it keeps the sockets that long afterwards, to look at them
 * by hand. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "command_timing.h"

/* Destinations for the TIME_WAIT sockets: 1,500 each for 30,000. Not
 * fewer: since Linux 5.19 the port search toward one destination moves on
 * by a random 0-7 ports more each time (about 4.5 even ports a connection,
 * of the 14,116 even ones connect() takes first), and once it comes round
 * again, a TIME_WAIT older than a second on its way is reused on loopback
 * (tcp_tw_reuse = 2, the default): with 4 destinations of 7,500, some
 * 1,300 of the 30,000 were gone before the command ran. */
#ifndef LISTENERS
#define LISTENERS 20
#endif

static int listen_loopback(struct sockaddr_in *a)
{
	socklen_t alen = sizeof(*a);
	int lfd, one = 1;

	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)a, sizeof(*a)) || listen(lfd, 128) ||
	    getsockname(lfd, (struct sockaddr *)a, &alen))
		return -1;
	return lfd;
}

/* One connection to A: the client's end in *C, the accepted one in *S. */
static int connect_pair(int lfd, const struct sockaddr_in *a, int *c, int *s)
{
	*c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*c < 0 || connect(*c, (const struct sockaddr *)a, sizeof(*a)))
		return -errno;
	*s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return *s < 0 ? -errno : 0;
}

static int make_time_wait(long n)
{
	struct sockaddr_in a[LISTENERS];
	int lfd[LISTENERS], i;
	long k;

	for (i = 0; i < LISTENERS; i++) {
		lfd[i] = listen_loopback(&a[i]);
		if (lfd[i] < 0)
			return -errno;
	}
	for (k = 0; k < n; k++) {
		int c, s, rc = connect_pair(lfd[k % LISTENERS], &a[k % LISTENERS], &c, &s);
		char b;

		if (rc)
			return rc;
		close(c); /* the client closes first: its side ends in TIME_WAIT */
		if (read(s, &b, 1) < 0) /* its FIN is here: the server's close is the second */
			return -errno;
		close(s);
	}
	for (i = 0; i < LISTENERS; i++)
		close(lfd[i]);
	return 0;
}

static int make_conns(long n)
{
	struct sockaddr_in a;
	int lfd = listen_loopback(&a);
	long k;

	if (lfd < 0)
		return -errno;
	for (k = 0; k < n / 2; k++) {
		int c, s, rc = connect_pair(lfd, &a, &c, &s);

		if (rc)
			return rc;
		if (k % 4 == 3 && shutdown(c, SHUT_WR)) /* FIN_WAIT2 and CLOSE_WAIT */
			return -errno;
	}
	/* The listener stays: a LISTEN row too, as a server has. */
	return 0;
}

int main(int argc, char **argv)
{
	const char *sockshim, *session, *what;
	double t0;
	long n;
	int rc;

	if (argc < 4 || (strcmp(argv[3], "timewait") && strcmp(argv[3], "conns"))) {
		fprintf(stderr,
			"usage: bench_tw_conns SOCKSHIM SESSION timewait|conns [N [HOLD_SECONDS]]\n");
		return 2;
	}
	sockshim = argv[1];
	session = argv[2];
	what = argv[3];
	n = !strcmp(what, "timewait") ? 30000 : 10000;
	if (argc > 4)
		n = strtol(argv[4], NULL, 10);
	if (!strcmp(what, "conns")) {
		rc = raise_nofile(n);
		if (rc) {
			fprintf(stderr,
				"bench_tw_conns: cannot raise RLIMIT_NOFILE to %ld: %s (run as root, "
				"or raise the hard limit: ulimit -Hn)\n",
				n + SPARE_FDS, strerror(-rc));
			return 1;
		}
	}
	t0 = now_ms();
	rc = !strcmp(what, "timewait") ? make_time_wait(n) : make_conns(n);
	if (rc) {
		fprintf(stderr, "bench_tw_conns: cannot make %ld sockets for %s: %s\n", n, what,
			strerror(-rc));
		return 1;
	}
	printf("%s_make_ms %.0f\n", what, now_ms() - t0);
	/* Let the last FINs land. */
	usleep(200 * 1000);
	printf("%s_sockets %ld\n", what, n);
	if (time_command("bench_tw_conns", sockshim, what, session))
		return 1;
	if (argc > 5) {
		fflush(stdout);
		sleep((unsigned)strtoul(argv[5], NULL, 10));
	}
	return 0;
}
