/* Every way of asking accept for the peer's address, each on its own
 * loopback connection, so that a test can compare the results with and
 * without the shim and check the peer the shim recorded for each.
 *
 *     acceptaddr [CASE...]       (all cases when none is named)
 *
 * One line per case: "CASE RET ERRNO LEN CLIENT_PORT", RET "ok" or
 * "fail", ERRNO 0 or the errno's number, LEN the length the call left
 * (-1: none asked), CLIENT_PORT the local port of the client that
 * connected (what the accepted connection's peer port must be). Cases:
 *   null      accept(l, NULL, NULL)
 *   null4     accept4(l, NULL, NULL, SOCK_CLOEXEC)
 *   sys       syscall(SYS_accept4, l, NULL, NULL, 0)
 *   buf       accept(l, &storage, &len), len = sizeof(storage)
 *   short     accept(l, buf4, &len), len = 4: truncated, len says 16
 *   zero      accept(l, &storage, &len), len = 0
 *   heap      accept(l, heap, &len): a whole buffer, malloc'ed
 *   thread    accept(l, &storage, &len) in a thread of its own (its stack)
 *   efault    accept(l, bad, &len): EFAULT (the kernel drops the connection)
 *   lenfault  accept(l, &storage, bad): EFAULT
 *   null6     accept(l6, NULL, NULL) on an IPv6 listener (::1)
 *   buf6      accept(l6, &storage, &len) on it
 *   unix      accept(u, NULL, NULL) on a Unix listener (an abstract name)
 * Exit 0, or 1 after saying which set-up call failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "acceptaddr: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* An address no program may read (the first page is never mapped). */
static void *bad_ptr(void)
{
	volatile uintptr_t p = 8;

	return (void *)p;
}

static int listener(int family, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(family, SOCK_STREAM, 0);

	if (fd < 0)
		die("socket");
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		len = sizeof(*in6);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0)
		die("bind/listen");
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		die("getsockname");
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* A client connected to the listener of FAMILY at PORT; its local port in *MINE. */
static int client(int family, uint16_t port, uint16_t *mine)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(family, SOCK_STREAM, 0);

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		in->sin_port = htons(port);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		in6->sin6_port = htons(port);
		len = sizeof(*in6);
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
		die("connect");
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		die("getsockname");
	*mine = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* A Unix stream listener with an abstract name of this process's own,
 * and a client of it in *C. */
static int unix_pair(int *c)
{
	struct sockaddr_un a;
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	len += (socklen_t)snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "acceptaddr-%d",
				   (int)getpid());
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, 4) < 0)
		die("unix listener");
	*c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (*c < 0 || connect(*c, (struct sockaddr *)&a, len) < 0)
		die("unix connect");
	return fd;
}

static int argc_;
static char **argv_;

/* Is case NAME asked for? */
static int wanted(const char *name)
{
	int i;

	if (argc_ < 2)
		return 1;
	for (i = 1; i < argc_; i++)
		if (!strcmp(argv_[i], name))
			return 1;
	return 0;
}

static void report(const char *name, int ret, int err, long len, uint16_t mine, int c)
{
	printf("%s %s %d %ld %u\n", name, ret >= 0 ? "ok" : "fail", ret >= 0 ? 0 : err, len,
	       (unsigned)mine);
	if (ret >= 0)
		close(ret);
	close(c);
}

/* The "thread" case: accept with a whole buffer in a thread's frame. */
struct in_thread {
	int l, s, err;
	socklen_t len;
};

static void *accept_in_thread(void *arg)
{
	struct in_thread *t = arg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	t->s = accept(t->l, (struct sockaddr *)&ss, &len);
	t->err = errno;
	t->len = len;
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	uint16_t port, port6, mine;
	unsigned char *four = malloc(4);
	int l = listener(AF_INET, &port), l6 = listener(AF_INET6, &port6), c, s;

	argc_ = argc;
	argv_ = argv;
	if (!four)
		die("malloc");
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (wanted("null")) {
		c = client(AF_INET, port, &mine);
		s = accept(l, NULL, NULL);
		report("null", s, errno, -1, mine, c);
	}

	if (wanted("null4")) {
		c = client(AF_INET, port, &mine);
		s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		report("null4", s, errno, -1, mine, c);
	}

	if (wanted("sys")) {
		c = client(AF_INET, port, &mine);
		s = (int)syscall(SYS_accept4, l, NULL, NULL, 0);
		report("sys", s, errno, -1, mine, c);
	}

	if (wanted("buf")) {
		c = client(AF_INET, port, &mine);
		len = sizeof(ss);
		s = accept(l, (struct sockaddr *)&ss, &len);
		report("buf", s, errno, (long)len, mine, c);
	}

	if (wanted("short")) {
		c = client(AF_INET, port, &mine);
		len = 4;
		s = accept(l, (struct sockaddr *)four, &len);
		report("short", s, errno, (long)len, mine, c);
	}

	if (wanted("zero")) {
		c = client(AF_INET, port, &mine);
		len = 0;
		s = accept(l, (struct sockaddr *)&ss, &len);
		report("zero", s, errno, (long)len, mine, c);
	}

	if (wanted("heap")) {
		struct sockaddr_storage *heap = malloc(sizeof(*heap));

		if (!heap)
			die("malloc");
		c = client(AF_INET, port, &mine);
		len = sizeof(*heap);
		s = accept(l, (struct sockaddr *)heap, &len);
		report("heap", s, errno, (long)len, mine, c);
		free(heap);
	}

	if (wanted("thread")) {
		struct in_thread t = {l, -1, 0, 0};
		pthread_t th;

		c = client(AF_INET, port, &mine);
		if (pthread_create(&th, NULL, accept_in_thread, &t) || pthread_join(th, NULL))
			die("pthread");
		report("thread", t.s, t.err, (long)t.len, mine, c);
	}

	if (wanted("efault")) {
		c = client(AF_INET, port, &mine);
		len = sizeof(ss);
		s = accept(l, (struct sockaddr *)bad_ptr(), &len);
		report("efault", s, errno, (long)len, mine, c);
	}

	if (wanted("lenfault")) {
		c = client(AF_INET, port, &mine);
		s = accept(l, (struct sockaddr *)&ss, (socklen_t *)bad_ptr());
		report("lenfault", s, errno, -1, mine, c);
	}

	if (wanted("null6")) {
		c = client(AF_INET6, port6, &mine);
		s = accept(l6, NULL, NULL);
		report("null6", s, errno, -1, mine, c);
	}

	if (wanted("buf6")) {
		c = client(AF_INET6, port6, &mine);
		len = sizeof(ss);
		s = accept(l6, (struct sockaddr *)&ss, &len);
		report("buf6", s, errno, (long)len, mine, c);
	}

	if (wanted("unix")) {
		int u = unix_pair(&c);

		s = accept(u, NULL, NULL);
		report("unix", s, errno, -1, 0, c);
		close(u);
	}

	free(four);
	close(l);
	close(l6);
	return 0;
}
