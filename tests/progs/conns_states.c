/* TCP connections in known states for the conns tests, against a peer
 * on 127.0.0.1:PORT that reads a command byte per connection:
 *
 *     conns_states PORT
 *
 * opens a listener of its own (LISTEN), then four connections to PORT:
 * 'k' kept open (ESTABLISHED), 'k' then shutdown(SHUT_WR) and kept,
 * read forever (FIN_WAIT2: the peer never closes), 'c' which the peer
 * closes (CLOSE_WAIT: this side never does), and 'e' closed here first
 * (TIME_WAIT once the peer closes on the EOF). Prints "ready P" (P: its
 * listener's port) and reads the half-closed one until a signal
 * (alarm() bounds it). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "loopback.h"

#define LIFETIME_S 120

/* A connection to PORT that told the peer CMD, or exit 1. */
static int dial(uint16_t port, char cmd)
{
	int fd = loopback_connect(port);

	if (fd < 0 || write(fd, &cmd, 1) != 1) {
		perror("conns_states: connect");
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	uint16_t port, lport;
	char buf[64];
	int l, half;

	if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
		fprintf(stderr, "usage: conns_states PORT\n");
		return 2;
	}
	port = (uint16_t)atoi(argv[1]);
	alarm(LIFETIME_S);
	l = loopback_listen(0, 4, &lport);
	if (l < 0) {
		perror("conns_states: listen");
		return 1;
	}
	(void)dial(port, 'k');
	half = dial(port, 'k');
	if (shutdown(half, SHUT_WR) < 0) {
		perror("conns_states: shutdown");
		return 1;
	}
	(void)dial(port, 'c');
	close(dial(port, 'e'));
	printf("ready %u\n", lport);
	fflush(stdout);
	/* The half-closed connection, read until the peer ends it: never. */
	while (read(half, buf, sizeof(buf)) > 0)
		;
	return 0;
}
