/* Per-call cost of the wrapped calls, run with and without the preload by
 * bench.sh: read(), write(), close(), dup(), dup2(), dup3(), fcntl() (F_GETFL,
 * F_SETFD, F_DUPFD) and setsockopt() on untracked descriptors,
 * setsockopt(TCP_NODELAY) on a socket, the socket()+close() pair, and a
 * server's accept()+close() and a client's socket()+connect()+close() of
 * one loopback connection (the other end made by raw system calls, which
 * the shim does not see, so that only one side's calls are measured).
 * Prints "name ns_per_call" lines. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../progs/loopback.h"

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double bench_read(long n)
{
	char c;
	int fd = open("/dev/zero", O_RDONLY);
	double t0 = now_ns();

	for (long i = 0; i < n; i++)
		if (read(fd, &c, 1) != 1)
			abort();
	t0 = (now_ns() - t0) / n;
	close(fd);
	return t0;
}

/* write() to /dev/null: the success path every write of a program takes
 * (the shim looks at the result only when it is an error). */
static double bench_write(long n)
{
	char c = 0;
	int fd = open("/dev/null", O_WRONLY);
	double t0 = now_ns();

	for (long i = 0; i < n; i++)
		if (write(fd, &c, 1) != 1)
			abort();
	t0 = (now_ns() - t0) / n;
	close(fd);
	return t0;
}

/* close() of a descriptor that is not open: the wrapper's full untracked
 * path plus the cheapest possible system call. */
static double bench_close(long n)
{
	double t0 = now_ns();

	for (long i = 0; i < n; i++)
		if (close(100000) != -1 || errno != EBADF)
			abort();
	return (now_ns() - t0) / n;
}

/* Closes FD with the system call itself, not through libc's close(): the
 * shim would add its close() to the call measured. */
static void raw_close(int fd)
{
#if defined(__x86_64__)
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"((long)SYS_close), "D"((long)fd)
			 : "rcx", "r11", "memory");
	if (ret != 0)
		abort();
#else
	if (close(fd) != 0) /* elsewhere the figure includes a close() */
		abort();
#endif
}

/* A system call by number, not through libc (whose syscall() the shim
 * wraps too): for the end of a connection the shim must not see. */
static long raw_syscall(long nr, long a, long b, long c, long d, long e)
{
#if defined(__x86_64__)
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return ret;
#else
	return syscall(nr, a, b, c, d, e); /* elsewhere the shim sees both ends */
#endif
}

/* dup() of an untracked descriptor, the copy closed behind the shim's
 * back: one wrapped call per iteration. */
static double bench_dup(long n)
{
	int fd = open("/dev/zero", O_RDONLY);
	double t0 = now_ns();

	for (long i = 0; i < n; i++) {
		int copy = dup(fd);

		if (copy < 0)
			abort();
		raw_close(copy);
	}
	t0 = (now_ns() - t0) / n;
	close(fd);
	return t0;
}

/* dup2() (or dup3()) of an untracked descriptor onto another untracked
 * one (the kernel closes and replaces it): one wrapped call per
 * iteration. */
static double bench_dup2(long n, int three)
{
	int fd = open("/dev/zero", O_RDONLY), to = fd + 1;
	double t0 = now_ns();

	for (long i = 0; i < n; i++)
		if ((three ? dup3(fd, to, O_CLOEXEC) : dup2(fd, to)) != to)
			abort();
	t0 = (now_ns() - t0) / n;
	close(to);
	close(fd);
	return t0;
}

/* fcntl(F_SETFD) on an untracked descriptor: a command the shim acts on
 * for sockets. */
static double bench_fcntl(long n)
{
	int fd = open("/dev/zero", O_RDONLY);
	double t0 = now_ns();

	for (long i = 0; i < n; i++)
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
			abort();
	t0 = (now_ns() - t0) / n;
	close(fd);
	return t0;
}

/* fcntl(F_GETFL) on an untracked descriptor: a command the shim never
 * acts on. */
static double bench_fcntl_getfl(long n)
{
	int fd = open("/dev/zero", O_RDONLY);
	double t0 = now_ns();

	for (long i = 0; i < n; i++)
		if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY)
			abort();
	t0 = (now_ns() - t0) / n;
	close(fd);
	return t0;
}

/* fcntl(F_DUPFD) of an untracked descriptor, the copy closed behind the
 * shim's back. */
static double bench_fcntl_dupfd(long n)
{
	int fd = open("/dev/zero", O_RDONLY);
	double t0 = now_ns();

	for (long i = 0; i < n; i++) {
		int copy = fcntl(fd, F_DUPFD, 0);

		if (copy < 0)
			abort();
		raw_close(copy);
	}
	t0 = (now_ns() - t0) / n;
	close(fd);
	return t0;
}

/* setsockopt() on an untracked descriptor (not a socket: ENOTSOCK, the
 * cheapest answer), with an option the shim passes by (SO_KEEPALIVE) or
 * the one it looks at (SO_LINGER: then the failed call returns at once). */
static double bench_setsockopt(long n, int name)
{
	struct linger lg = {1, 0};
	int fd = open("/dev/zero", O_RDONLY);
	double t0 = now_ns();

	for (long i = 0; i < n; i++)
		if (setsockopt(fd, SOL_SOCKET, name, &lg, sizeof(lg)) != -1 || errno != ENOTSOCK)
			abort();
	t0 = (now_ns() - t0) / n;
	close(fd);
	return t0;
}

/* setsockopt(TCP_NODELAY) on a socket: what a server does to each
 * connection it accepts; the shim passes it by. */
static double bench_nodelay(long n)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	double t0 = now_ns();

	for (long i = 0; i < n; i++)
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
			abort();
	t0 = (now_ns() - t0) / n;
	close(fd);
	return t0;
}

static double bench_socket_close(long n)
{
	double t0 = now_ns();

	for (long i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || close(fd) != 0)
			abort();
	}
	return (now_ns() - t0) / n;
}

/* A listener on 127.0.0.1 (through libc: the shim tracks it), by raw
 * system calls when RAW (the shim never sees it); its port in *PORT. */
static int listener(int raw, uint16_t *port)
{
	struct sockaddr_in a = loopback_addr(0);
	socklen_t len = sizeof(a);
	int fd;

	if (raw) {
		fd = (int)raw_syscall(SYS_socket, AF_INET, SOCK_STREAM, 0, 0, 0);
		if (fd < 0 || raw_syscall(SYS_bind, fd, (long)&a, sizeof(a), 0, 0) ||
		    raw_syscall(SYS_listen, fd, 4096, 0, 0, 0))
			abort();
	} else {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4096))
			abort();
	}
	if (getsockname(fd, (struct sockaddr *)&a, &len))
		abort();
	*port = ntohs(a.sin_port);
	return fd;
}

/* Closes raw FD with a reset (SO_LINGER {1, 0}): no TIME_WAIT is left on
 * either end, so a long run never runs out of ports. */
static void raw_reset_close(int fd)
{
	struct linger lg = {1, 0};

	if (raw_syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_LINGER, (long)&lg, sizeof(lg)) ||
	    raw_syscall(SYS_close, fd, 0, 0, 0, 0))
		abort();
}

/* The server's side of one connection per iteration: accept(NULL, NULL),
 * as nginx's accept4 with an address is below, and close(); the client
 * connects and resets by raw system calls. ADDR: accept4 with an address
 * buffer (what nginx passes). */
static double bench_accept_close(long n, int addr)
{
	uint16_t port;
	int l = listener(0, &port);
	struct sockaddr_in to = loopback_addr(port);
	double t0 = now_ns();

	for (long i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int c = (int)raw_syscall(SYS_socket, AF_INET, SOCK_STREAM, 0, 0, 0), s;

		if (c < 0 || raw_syscall(SYS_connect, c, (long)&to, sizeof(to), 0, 0))
			abort();
		s = addr ? accept4(l, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK) : accept(l, NULL, NULL);
		if (s < 0)
			abort();
		raw_reset_close(c);
		if (close(s))
			abort();
	}
	t0 = (now_ns() - t0) / n;
	close(l);
	return t0;
}

/* The client's side: socket(), connect() and close() per iteration; the
 * server accepts and resets by raw system calls. */
static double bench_connect_close(long n)
{
	uint16_t port;
	int l = listener(1, &port);
	struct sockaddr_in to = loopback_addr(port);
	double t0 = now_ns();

	for (long i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0), s;

		if (c < 0 || connect(c, (struct sockaddr *)&to, sizeof(to)))
			abort();
		s = (int)raw_syscall(SYS_accept4, l, 0, 0, 0, 0);
		if (s < 0)
			abort();
		raw_reset_close(s);
		if (close(c))
			abort();
	}
	t0 = (now_ns() - t0) / n;
	raw_syscall(SYS_close, l, 0, 0, 0, 0);
	return t0;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "all";
	long n = argc > 2 ? atol(argv[2]) : 1000000;

	if (!strcmp(what, "read") || !strcmp(what, "all"))
		printf("read_untracked %.1f\n", bench_read(n));
	if (!strcmp(what, "write") || !strcmp(what, "all"))
		printf("write_untracked %.1f\n", bench_write(n));
	if (!strcmp(what, "close") || !strcmp(what, "all"))
		printf("close_untracked %.1f\n", bench_close(n));
	if (!strcmp(what, "dup") || !strcmp(what, "all"))
		printf("dup_untracked %.1f\n", bench_dup(n));
	if (!strcmp(what, "dup2") || !strcmp(what, "all"))
		printf("dup2_untracked %.1f\n", bench_dup2(n, 0));
	if (!strcmp(what, "dup3") || !strcmp(what, "all"))
		printf("dup3_untracked %.1f\n", bench_dup2(n, 1));
	if (!strcmp(what, "fcntl") || !strcmp(what, "all"))
		printf("fcntl_untracked %.1f\n", bench_fcntl(n));
	if (!strcmp(what, "fcntl_getfl") || !strcmp(what, "all"))
		printf("fcntl_getfl_untracked %.1f\n", bench_fcntl_getfl(n));
	if (!strcmp(what, "fcntl_dupfd") || !strcmp(what, "all"))
		printf("fcntl_dupfd_untracked %.1f\n", bench_fcntl_dupfd(n));
	if (!strcmp(what, "setsockopt") || !strcmp(what, "all"))
		printf("setsockopt_untracked %.1f\n", bench_setsockopt(n, SO_KEEPALIVE));
	if (!strcmp(what, "setsockopt_linger") || !strcmp(what, "all"))
		printf("setsockopt_linger_untracked %.1f\n", bench_setsockopt(n, SO_LINGER));
	if (!strcmp(what, "nodelay") || !strcmp(what, "all"))
		printf("setsockopt_nodelay %.1f\n", bench_nodelay(n));
	if (!strcmp(what, "socket") || !strcmp(what, "all"))
		printf("socket_close %.1f\n", bench_socket_close(n / 20 ? n / 20 : 1));
	if (!strcmp(what, "accept") || !strcmp(what, "all"))
		printf("accept_close %.1f\n", bench_accept_close(n / 20 ? n / 20 : 1, 0));
	if (!strcmp(what, "accept_addr") || !strcmp(what, "all"))
		printf("accept_addr_close %.1f\n", bench_accept_close(n / 20 ? n / 20 : 1, 1));
	if (!strcmp(what, "connect") || !strcmp(what, "all"))
		printf("connect_close %.1f\n", bench_connect_close(n / 20 ? n / 20 : 1));
	return 0;
}
