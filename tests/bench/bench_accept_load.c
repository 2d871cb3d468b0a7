/* make bench (accept): a closed-loop load generator for the bundled
 * prefork_server, which speaks a line, not HTTP (so wrk cannot drive it).
 * C connections in flight for S seconds: each connects, sends a line,
 * reads the one-line reply, checks it and closes (the server waits for
 * that close), then the slot connects again. Source addresses rotate over
 * 127.0.1.0/24 so the client's TIME_WAIT sockets never run out of ports.
 * Prints "requests N errors N seconds S"; exits 1 if any request failed.
 * Usage: bench_accept_load PORT CONNECTIONS SECONDS */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define REPLY "hello from worker "
/* A request that takes this long is a failure (wrk's default timeout). */
#define STALL_NS (2 * 1000000000LL)

struct conn {
	int fd;
	int sent;
	size_t got;
	long long started;
	char buf[128];
};

static struct sockaddr_in server;
static unsigned next_src;
static long long requests, errors;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail(const char *what, int err)
{
	if (errors++ < 5)
		fprintf(stderr, "bench_accept_load: %s: %s\n", what, err ? strerror(err) : "bad reply");
}

static int start(int ep, struct conn *c)
{
	struct sockaddr_in src = {.sin_family = AF_INET};
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
	int one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	/* The port is chosen at connect, per destination: IP_BIND_ADDRESS_NO_PORT. */
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	src.sin_addr.s_addr = htonl(0x7f000100u | (1 + next_src++ % 254));
	if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    (connect(c->fd, (struct sockaddr *)&server, sizeof(server)) < 0 && errno != EINPROGRESS) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		int err = errno;

		close(c->fd);
		c->fd = -1;
		return -err;
	}
	c->started = now_ns();
	return 0;
}

/* Progress on C; 1 when its request is over (done or failed). */
static int step(struct conn *c, unsigned events)
{
	static const char line[] = "GET /\n";
	ssize_t n;

	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		fail("connect", err ? err : ECONNRESET);
		return 1;
	}
	if (!c->sent && (events & EPOLLOUT)) {
		n = write(c->fd, line, sizeof(line) - 1);
		if (n != (ssize_t)sizeof(line) - 1) {
			fail("write", n < 0 ? errno : EIO);
			return 1;
		}
		c->sent = 1;
	}
	if (!(events & EPOLLIN))
		return 0;
	n = read(c->fd, c->buf + c->got, sizeof(c->buf) - 1 - c->got);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0) {
		fail("read", n < 0 ? errno : ECONNRESET);
		return 1;
	}
	c->got += (size_t)n;
	c->buf[c->got] = 0;
	if (!strchr(c->buf, '\n') && c->got < sizeof(c->buf) - 1)
		return 0;
	if (strncmp(c->buf, REPLY, strlen(REPLY)) != 0)
		fail("reply", 0);
	else
		requests++;
	return 1;
}

int main(int argc, char **argv)
{
	static struct conn conns[MAX_CONNS];
	struct epoll_event evs[MAX_CONNS];
	long long t0, deadline, now, last_check;
	int port, nconns, ep, i, rc;
	double secs;

	if (argc != 4 || (port = atoi(argv[1])) <= 0 || (nconns = atoi(argv[2])) <= 0 ||
	    nconns > MAX_CONNS || (secs = atof(argv[3])) <= 0) {
		fprintf(stderr, "usage: bench_accept_load PORT CONNECTIONS(1..%d) SECONDS\n", MAX_CONNS);
		return 2;
	}
	server.sin_family = AF_INET;
	server.sin_port = htons((uint16_t)port);
	server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("epoll_create1");
		return 1;
	}
	for (i = 0; i < nconns; i++) {
		rc = start(ep, &conns[i]);
		if (rc < 0) {
			fail("connect", -rc);
			return 1;
		}
	}
	t0 = last_check = now_ns();
	deadline = t0 + (long long)(secs * 1e9);
	while ((now = now_ns()) < deadline) {
		int n = epoll_wait(ep, evs, MAX_CONNS, (int)((deadline - now) / 1000000) + 1);

		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return 1;
		}
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd < 0 || !step(c, evs[i].events))
				continue;
			close(c->fd);
			rc = start(ep, c);
			if (rc < 0)
				fail("connect", -rc);
		}
		now = now_ns();
		if (now - last_check < 100000000LL)
			continue;
		last_check = now;
		for (i = 0; i < nconns; i++) {
			if (conns[i].fd >= 0 && now - conns[i].started < STALL_NS)
				continue;
			if (conns[i].fd >= 0) {
				fail("request", ETIMEDOUT);
				close(conns[i].fd);
			}
			rc = start(ep, &conns[i]);
			if (rc < 0)
				fail("connect", -rc);
		}
	}
	printf("requests %lld errors %lld seconds %.3f\n", requests, errors,
	       (double)(now_ns() - t0) / 1e9);
	return errors ? 1 : 0;
}
