/* A listener that does nothing else: listens on 127.0.0.1 (an ephemeral
 * port), prints "FD PORT", and sleeps until killed or SECONDS (default 60)
 * pass. The tests link it statically, a program the shim cannot be loaded
 * in, to see what the commands say of sockets they have no record of.
 *
 *     listen_sleep [SECONDS]
 *
 * Exit status 2 when the listener cannot be made. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unsigned seconds = argc > 1 ? (unsigned)atoi(argv[1]) : 60;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		perror("listen_sleep");
		return 2;
	}
	printf("%d %u\n", fd, (unsigned)ntohs(a.sin_port));
	fflush(stdout);
	sleep(seconds);
	return 0;
}
