/* Loopback TCP for the test programs: a listener on 127.0.0.1 with any
 * free port, and a client connection to it. Header-only: each program in
 * tests/progs is built from its one .c file. */
#ifndef SOCKSHIM_TESTS_LOOPBACK_H
#define SOCKSHIM_TESTS_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* 127.0.0.1:PORT. */
static inline struct sockaddr_in loopback_addr(uint16_t port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	return a;
}

/* A TCP listener on 127.0.0.1 (socket() flags FLAGS, such as
 * SOCK_CLOEXEC, and BACKLOG), its port in *PORT. The fd, or -1 (errno). */
static inline int loopback_listen(int flags, int backlog, uint16_t *port)
{
	struct sockaddr_in a = loopback_addr(0);
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | flags, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* A connected client socket to 127.0.0.1:PORT, or -1 (errno). */
static inline int loopback_connect(uint16_t port)
{
	struct sockaddr_in a = loopback_addr(port);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

#endif
