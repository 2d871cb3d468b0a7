/* A listener the shim cannot see: the tests build this program static (no
 * loader, so no shim), as a Go program would be, and start it under
 * `sockshim run`.
 *
 *     listenstatic DIR
 *
 * Listens on 127.0.0.1 (a free port), prints "listener PORT", waits (at
 * most WAIT_S seconds) for DIR/go and exits 0; 1 after saying what
 * failed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAIT_S 60

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	struct timespec tick = {0, 10 * 1000 * 1000};
	char path[4096];
	int fd, i;

	if (argc != 2) {
		fprintf(stderr, "usage: listenstatic DIR\n");
		return 2;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		perror("listenstatic");
		return 1;
	}
	printf("listener %u\n", ntohs(a.sin_port));
	fflush(stdout);
	snprintf(path, sizeof(path), "%s/go", argv[1]);
	for (i = 0; i < WAIT_S * 100; i++) {
		if (access(path, F_OK) == 0)
			return 0;
		nanosleep(&tick, NULL);
	}
	fprintf(stderr, "listenstatic: no %s within %d s\n", path, WAIT_S);
	return 1;
}
