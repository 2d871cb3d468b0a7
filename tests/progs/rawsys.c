/* A socket lifecycle made only through libc's syscall(), as libuv makes
 * its closes: a listener on 127.0.0.1, N connections to it, each accepted
 * and its accepted end duplicated (dup, dup3, fcntl F_DUPFD in turn); then,
 * once the test says so, every descriptor closed, by number.
 *
 *     rawsys DIR N
 *
 * Prints "listener FD INODE PORT", one "conn I CLIENT_FD CLIENT_INODE
 * ACCEPTED_FD ACCEPTED_INODE DUP_FD" per connection and "ready"; waits (at
 * most WAIT_S seconds) for the file DIR/go; closes; prints "closed". Exit
 * status 0, or 1 after saying which call failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "waitfile.h"

#define MAX_CONNS 64
/* dup3's targets: DUP3_BASE + I, above anything the program opens. */
#define DUP3_BASE 200
/* How long the test may take to look before it says go. */
#define WAIT_S 60

struct conn {
	long client, accepted, dup;
};

static long check(long ret, const char *what)
{
	if (ret < 0) {
		fprintf(stderr, "rawsys: %s: %s\n", what, strerror(errno));
		exit(1);
	}
	return ret;
}

static unsigned long inode_of(long fd)
{
	struct stat st;

	check(fstat((int)fd, &st), "fstat");
	return (unsigned long)st.st_ino;
}

/* Connection I's accepted end, duplicated one of three ways. */
static long duplicate(int i, long fd)
{
	switch (i % 3) {
	case 0:
		return check(syscall(SYS_dup, fd), "SYS_dup");
	case 1: /* onto a number nothing else uses */
		return check(syscall(SYS_dup3, fd, DUP3_BASE + i, O_CLOEXEC), "SYS_dup3");
	default:
		return check(syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0), "SYS_fcntl F_DUPFD_CLOEXEC");
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	struct conn c[MAX_CONNS];
	long l;
	int n, i;

	if (argc != 3 || (n = atoi(argv[2])) < 1 || n > MAX_CONNS) {
		fprintf(stderr, "usage: rawsys DIR N (1..%d)\n", MAX_CONNS);
		return 2;
	}
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = check(syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "SYS_socket");
	check(syscall(SYS_bind, l, &a, sizeof(a)), "SYS_bind");
	check(syscall(SYS_listen, l, MAX_CONNS), "SYS_listen");
	check(getsockname((int)l, (struct sockaddr *)&a, &len), "getsockname");
	printf("listener %ld %lu %d\n", l, inode_of(l), ntohs(a.sin_port));
	for (i = 0; i < n; i++) {
		c[i].client =
			check(syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "SYS_socket");
		check(syscall(SYS_connect, c[i].client, &a, sizeof(a)), "SYS_connect");
		if (i % 2)
			c[i].accepted = check(syscall(SYS_accept, l, NULL, NULL), "SYS_accept");
		else
			c[i].accepted = check(syscall(SYS_accept4, l, NULL, NULL, SOCK_CLOEXEC),
					      "SYS_accept4");
		c[i].dup = duplicate(i, c[i].accepted);
		printf("conn %d %ld %lu %ld %lu %ld\n", i, c[i].client, inode_of(c[i].client),
		       c[i].accepted, inode_of(c[i].accepted), c[i].dup);
	}
	printf("ready\n");
	fflush(stdout);

	wait_file("rawsys", argv[1], "go", WAIT_S);
	for (i = 0; i < n; i++) {
		check(syscall(SYS_close, c[i].dup), "SYS_close (dup)");
		check(syscall(SYS_close, c[i].accepted), "SYS_close (accepted)");
		check(syscall(SYS_close, c[i].client), "SYS_close (client)");
	}
	check(syscall(SYS_close, l), "SYS_close (listener)");
	printf("closed\n");
	fflush(stdout);
	return 0;
}
