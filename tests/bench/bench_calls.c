/* Per-call cost of the wrapped calls, run with and without the preload by
 * bench.sh: read(), write(), close(), dup(), dup2(), dup3(), fcntl() (F_GETFL,
 * F_SETFD, F_DUPFD) and setsockopt() on untracked descriptors,
 * setsockopt(TCP_NODELAY) on a socket, the socket()+close() pair, and
 * accept()+close() of a loopback connection (its client made by raw
 * system calls, which the shim does not see).
 * Prints "name ns_per_call" lines. */
#include <arpa/inet.h>
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

#if defined(__x86_64__)
/* A system call made by the instruction itself, not through libc: the
 * shim wraps libc's functions and syscall(), and would add its own work
 * to the call measured (x86-64 only; elsewhere callers use libc). */
static long raw_syscall(long nr, long a, long b, long c, long d, long e)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return ret;
}
#endif

/* Closes FD with the system call itself, not through libc's close(): the
 * shim would add its close() to the call measured. */
static void raw_close(int fd)
{
#if defined(__x86_64__)
	if (raw_syscall(SYS_close, fd, 0, 0, 0, 0) != 0)
		abort();
#else
	if (close(fd) != 0) /* elsewhere the figure includes a close() */
		abort();
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

/* A client connected to TO on loopback, made behind the shim's back, that
 * resets its connection at its close (SO_LINGER {1, 0}): no TIME_WAIT
 * piles up over a million connections. */
static int raw_client(const struct sockaddr_in *to)
{
	struct linger lg = { 1, 0 };
#if defined(__x86_64__)
	long fd = raw_syscall(SYS_socket, AF_INET, SOCK_STREAM, 0, 0, 0);

	if (fd < 0 || raw_syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_LINGER, (long)&lg, sizeof(lg)) ||
	    raw_syscall(SYS_connect, fd, (long)to, sizeof(*to), 0, 0))
		abort();
	return (int)fd;
#else
	int fd = socket(AF_INET, SOCK_STREAM, 0); /* elsewhere the shim sees it */

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) ||
	    connect(fd, (const struct sockaddr *)to, sizeof(*to)))
		abort();
	return fd;
#endif
}

/* accept() of a loopback connection, with a buffer for the peer's address
 * as servers pass, and close() of it: what the shim adds to each
 * connection a server takes. The client's own calls are raw (the shim
 * adds nothing to them) and counted in both runs. */
static double bench_accept_close(long n)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	double t0;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 128) ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len))
		abort();
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		int client = raw_client(&sin);
		int conn = accept(lfd, (struct sockaddr *)&peer, &plen);

		if (conn < 0 || close(conn) != 0)
			abort();
		raw_close(client);
	}
	t0 = (now_ns() - t0) / n;
	close(lfd);
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
		printf("accept_close %.1f\n", bench_accept_close(n / 20 ? n / 20 : 1));
	return 0;
}
