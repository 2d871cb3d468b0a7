/* The demo's client: opens N connections to 127.0.0.1:PORT one after the
 * other, sends a line, reads the answer, closes. Prints each answer.
 * Usage: demo_client -p PORT [-n CONNECTIONS] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int port = 0, n = 5, opt, i, failures = 0;

	while ((opt = getopt(argc, argv, "p:n:")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'n': n = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s -p PORT [-n CONNECTIONS]\n", argv[0]);
			return 2;
		}
	}
	if (port <= 0 || port > 65535 || n < 0) {
		fprintf(stderr, "demo_client: need -p PORT (1..65535) and -n >= 0\n");
		return 2;
	}
	for (i = 0; i < n; i++) {
		struct sockaddr_in sin;
		char buf[256];
		ssize_t got;
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			perror("connect");
			failures++;
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (write(fd, "hello\n", 6) != 6) {
			perror("write");
			failures++;
		}
		/* Half-close: the server sees our FIN as EOF, then closes. */
		shutdown(fd, SHUT_WR);
		got = read(fd, buf, sizeof(buf) - 1);
		if (got > 0) {
			buf[got] = 0;
			printf("connection %d: %s", i + 1, buf);
		} else {
			printf("connection %d: no answer\n", i + 1);
			failures++;
		}
		close(fd);
	}
	return failures ? 1 : 0;
}
