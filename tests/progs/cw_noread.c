/* A TCP server on 127.0.0.1 that never reads, for the closewait tests:
 * its connections sit in CLOSE_WAIT with the peer's FIN unread.
 *
 *     cw_noread accept N    accept N connections, never read them
 *     cw_noread noaccept    listen, never accept
 *     cw_noread vforkhang N accept N, then vfork a child that sleeps and
 *                           never execs: this process waits for it in
 *                           uninterruptible sleep (state D), holding them
 *
 * Prints "port P" once listening, then "accepted FD" per connection
 * ("vfork" before the vfork), and waits (until a signal; alarm() bounds
 * it). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LIFETIME_S 150
#define BACKLOG 16
/* Beyond this many connections, raise RLIMIT_NOFILE (with this to spare)
 * and make the backlog N, so that no connect waits for a retransmission. */
#define MANY 512
#define MANY_SPARE 64

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int l, n = 0, i;

	if (argc < 2 ||
	    (strcmp(argv[1], "accept") && strcmp(argv[1], "noaccept") &&
	     strcmp(argv[1], "vforkhang")) ||
	    (strcmp(argv[1], "noaccept") && (argc < 3 || (n = atoi(argv[2])) < 1))) {
		fprintf(stderr, "usage: cw_noread accept N | cw_noread noaccept | "
				"cw_noread vforkhang N\n");
		return 2;
	}
	alarm(LIFETIME_S);
	if (n > MANY) {
		struct rlimit rl;

		/* Room for N connections: up to the hard limit. */
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + MANY_SPARE) {
			rl.rlim_cur = rl.rlim_max < (rlim_t)n + MANY_SPARE ? rl.rlim_max
									   : (rlim_t)n + MANY_SPARE;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	l = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, n > MANY ? n : BACKLOG) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0) {
		fprintf(stderr, "cw_noread: listener: %s\n", strerror(errno));
		return 1;
	}
	printf("port %d\n", ntohs(a.sin_port));
	fflush(stdout);
	for (i = 0; i < n; i++) {
		int fd = accept(l, NULL, NULL);

		if (fd < 0) {
			fprintf(stderr, "cw_noread: accept: %s\n", strerror(errno));
			return 1;
		}
		printf("accepted %d\n", fd);
		fflush(stdout);
	}
	if (!strcmp(argv[1], "vforkhang")) {
		printf("vfork\n");
		fflush(stdout);
		/* The child shares our memory until it execs or exits: it may
		 * only make raw system calls. */
		if (vfork() == 0) {
			struct timespec ts = {LIFETIME_S, 0};

			/* Gone with us when a test's cleanup kills us. */
			syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			syscall(SYS_nanosleep, &ts, NULL);
			syscall(SYS_exit, 0);
		}
	}
	for (;;)
		pause();
}
