/* A load client for acceptpool: N connections, C in flight at a time,
 * each reading the one line the worker answers ("PID TID SEQ") until the
 * server closes. It checks that every connection was accepted exactly
 * once: each worker's SEQs seen are consecutive (1..K for a fresh pool),
 * none twice and none missing.
 * Source addresses rotate over 127.0.1.0/24 so that the TIME_WAIT
 * sockets of earlier connections never collide with new ones.
 *
 *     loadclient PORT N C
 *
 * Prints "connections N answered A errors E duplicates D gaps G workers W"
 * and exits 0 only when A == N and E, D, G are 0. Bounded: a connection
 * that takes 10 s fails, the whole run gives up after 600 s. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONC 512
#define MAX_WORKERS 256
#define CONN_TIMEOUT_S 10
#define LIFETIME_S 600

struct conn {
	int fd;
	size_t got;
	time_t started;
	char buf[64];
};

struct worker {
	long pid, tid;
	uint64_t count, min_seq, max_seq;
	uint8_t *seen; /* bit per SEQ, 1..N */
};

static struct worker workers[MAX_WORKERS];
static int nworkers;
static long total, answered, errors, duplicates;
static unsigned next_src;

static struct worker *worker_of(long pid, long tid)
{
	int i;

	for (i = 0; i < nworkers; i++)
		if (workers[i].pid == pid && workers[i].tid == tid)
			return &workers[i];
	if (nworkers == MAX_WORKERS)
		return NULL;
	workers[nworkers].pid = pid;
	workers[nworkers].tid = tid;
	workers[nworkers].seen = calloc((size_t)total / 8 + 2, 1);
	return workers[nworkers].seen ? &workers[nworkers++] : NULL;
}

static void record(const char *line)
{
	long pid, tid;
	unsigned long long seq;
	struct worker *w;

	if (sscanf(line, "%ld %ld %llu", &pid, &tid, &seq) != 3 || !seq || seq > (unsigned long long)total ||
	    !(w = worker_of(pid, tid))) {
		errors++;
		return;
	}
	if (w->seen[seq / 8] & (1u << (seq % 8))) {
		duplicates++;
		return;
	}
	w->seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
	w->count++;
	if (seq > w->max_seq)
		w->max_seq = seq;
	if (!w->min_seq || seq < w->min_seq)
		w->min_seq = seq;
	answered++;
}

static int start(struct conn *c, int ep, int port)
{
	struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
	struct epoll_event ev = {.events = EPOLLIN};

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	src.sin_addr.s_addr = htonl(0x7f000100u | (1 + next_src++ % 254));
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	dst.sin_port = htons((uint16_t)port);
	if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS)) {
		close(c->fd);
		return -1;
	}
	c->got = 0;
	c->started = time(NULL);
	ev.data.ptr = c;
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void finish(struct conn *c, int ok)
{
	close(c->fd);
	c->fd = -1;
	if (!ok) {
		errors++;
		return;
	}
	c->buf[c->got] = 0;
	record(c->buf);
}

int main(int argc, char **argv)
{
	static struct conn conns[MAX_CONC];
	struct epoll_event evs[64];
	long started = 0, done = 0, gaps = 0;
	int port, conc, ep, i, n;
	time_t t0 = time(NULL);

	if (argc != 4 || (port = atoi(argv[1])) <= 0 || (total = atol(argv[2])) <= 0 ||
	    (conc = atoi(argv[3])) <= 0 || conc > MAX_CONC) {
		fprintf(stderr, "usage: loadclient PORT N C (C <= %d)\n", MAX_CONC);
		return 2;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return 1;
	for (i = 0; i < conc; i++)
		conns[i].fd = -1;
	while (done < total && time(NULL) - t0 < LIFETIME_S) {
		for (i = 0; i < conc && started < total; i++) {
			if (conns[i].fd >= 0)
				continue;
			started++;
			if (start(&conns[i], ep, port) < 0) {
				errors++;
				done++;
			}
		}
		n = epoll_wait(ep, evs, 64, 1000);
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			ssize_t r = read(c->fd, c->buf + c->got, sizeof(c->buf) - 1 - c->got);

			if (r > 0 && c->got + (size_t)r < sizeof(c->buf) - 1) {
				c->got += (size_t)r;
				continue;
			}
			if (r < 0 && errno == EAGAIN)
				continue;
			finish(c, r == 0 && c->got > 0);
			done++;
		}
		for (i = 0; i < conc; i++)
			if (conns[i].fd >= 0 && time(NULL) - conns[i].started > CONN_TIMEOUT_S) {
				finish(&conns[i], 0);
				done++;
			}
	}
	for (i = 0; i < nworkers; i++)
		gaps += (long)(workers[i].max_seq - workers[i].min_seq + 1 - workers[i].count);
	printf("connections %ld answered %ld errors %ld duplicates %ld gaps %ld workers %d\n", total,
	       answered, errors + (total - done), duplicates, gaps, nworkers);
	return answered == total && !errors && !duplicates && !gaps && done == total ? 0 : 1;
}
