/* The image a followed exec starts, for tests/integration/test_follow.py:
 * says what environment it got, opens and closes a socket, accepts one
 * connection on an inherited listener, and may exec further.
 *
 *     followchild LISTEN_FD [--serve N] [--exec PROG ARGS...]
 *
 * Prints "child PID", then "env NAME=VALUE" for each LD_PRELOAD, TZ,
 * NGINX and SOCKSHIM_* entry; opens and closes a UDP socket; when
 * LISTEN_FD >= 0 accepts N connections (1 by default) on it, answering
 * each "hello PID\n", and prints "served N". Then execs PROG with its own
 * environment, if asked. Built dynamically by make, statically by the test
 * (so: libc only). alarm() bounds its life. Exit status 2 on a failure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The test's own limit is 120 s. */
#define LIFETIME_S 100

static int want(const char *entry)
{
	static const char *const prefixes[] = {"LD_PRELOAD=", "TZ=", "NGINX=", "SOCKSHIM_"};
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(entry, prefixes[i], strlen(prefixes[i])))
			return 1;
	return 0;
}

static int serve(int lfd, int n)
{
	char msg[64];
	int i, len = snprintf(msg, sizeof(msg), "hello %d\n", (int)getpid());

	for (i = 0; i < n; i++) {
		int c = accept(lfd, NULL, NULL);

		if (c < 0) {
			fprintf(stderr, "followchild: accept on %d: %s\n", lfd, strerror(errno));
			return -1;
		}
		if (write(c, msg, (size_t)len) != len)
			fprintf(stderr, "followchild: write: %s\n", strerror(errno));
		close(c);
	}
	printf("served %d\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	char **e;
	int lfd, n = 1, i = 2, u;

	alarm(LIFETIME_S);
	if (argc < 2) {
		fprintf(stderr, "usage: followchild LISTEN_FD [--serve N] [--exec PROG ARGS...]\n");
		return 2;
	}
	lfd = atoi(argv[1]);
	if (i + 1 < argc && !strcmp(argv[i], "--serve")) {
		n = atoi(argv[i + 1]);
		i += 2;
	}
	printf("child %d\n", (int)getpid());
	for (e = environ; e && *e; e++)
		if (want(*e))
			printf("env %s\n", *e);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	if (u < 0 || close(u) < 0) {
		fprintf(stderr, "followchild: UDP socket: %s\n", strerror(errno));
		return 2;
	}
	fflush(stdout);
	if (lfd >= 0 && serve(lfd, n) < 0)
		return 2;
	fflush(stdout);
	if (i + 1 < argc && !strcmp(argv[i], "--exec")) {
		execv(argv[i + 1], argv + i + 1);
		fprintf(stderr, "followchild: exec %s: %s\n", argv[i + 1], strerror(errno));
		return 2;
	}
	return 0;
}
