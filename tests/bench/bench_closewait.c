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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "command_timing.h"


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

int main(int argc, char **argv)
{
	const char *sockshim, *session;
	long n = 10000;
	int *fds, rc;

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
	printf("closewait_sockets %ld\n", n);
	if (time_command("bench_closewait", sockshim, "closewait", session))
		return 1;
	if (argc > 4) {
		fflush(stdout);
		sleep((unsigned)strtoul(argv[4], NULL, 10));
	}
	return 0;
}
