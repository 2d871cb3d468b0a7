/* A synthetic session for the `sockshim stats` tests: creates session NAME
 * and fills its listener table with known numbers, on real listening
 * sockets (so the kernel's accept queues are real too), then waits.
 *
 *     stats_fixture NAME [empty]
 *
 * Without "empty", three entries: A, a 127.0.0.1 listener (backlog 7, two
 * connections waiting in its accept queue) in serialize mode with every
 * counter set, four workers (this thread and the threads "fxw1".."fxw3"),
 * a corrupt worker row, two of them waiting for the lock, and a lock
 * holder of 1.5 s; B, a 127.0.0.1 listener (backlog 5) in observe mode
 * with nothing counted; C, a corrupt entry (no family, mode 9, an inode no
 * socket has) whose one row, marked waiting, is an ended thread's, and one
 * waiter without a row. With "empty", none.
 *
 * Prints "ready PID PORT_A INODE_A PORT_B INODE_B TID1 TID2 TID3", then
 * reads commands on stdin, answering "ok" to each:
 *     accepts N    set A's accepts counter to N
 *     holder-gone  make A's lock holder and poll token holder a thread
 *                  that has ended (answers "ok TID")
 * and exits at end of input. alarm() bounds its life. Exit status 2 when
 * something could not be set up. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sockshim/segment.h"

/* The test's own limit is 120 s. */
#define LIFETIME_S 150
#define THREADS 3
/* An inode no socket here has: the last of the 32-bit numbers the kernel
 * gives sockets, reached only after four billion inodes. (A wider one is
 * no key at all: layout.h, SOCKSHIM_INODE_MAX.) */
#define FAKE_INODE UINT64_C(0xffffffff)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int tids[THREADS], started, quitting;

static void die(const char *what)
{
	fprintf(stderr, "stats_fixture: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void *gone_thread(void *arg)
{
	*(int *)arg = gettid();
	return NULL;
}

static void *worker(void *arg)
{
	int i = (int)(long)arg;
	char name[16];

	snprintf(name, sizeof(name), "fxw%d", i + 1);
	pthread_setname_np(pthread_self(), name);
	pthread_mutex_lock(&lock);
	tids[i] = gettid();
	started++;
	pthread_cond_broadcast(&cond);
	while (!quitting)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return NULL;
}

/* Wait (at most 2 s) until thread TID sleeps: the tests expect its state
 * as it waits, not as it runs on its way to the wait. */
static void wait_sleeping(int tid)
{
	char path[64], buf[256], *p;
	int i, fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	for (i = 0; i < 2000; i++) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = 0;
			p = strrchr(buf, ')');
			if (p && p[1] == ' ' && p[2] == 'S')
				return;
		}
		usleep(1000);
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A listener on 127.0.0.1, ephemeral port. */
static int listen_on(int backlog, unsigned *port, uint64_t *inode)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	struct stat st;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0 || fstat(fd, &st) < 0)
		die("listener");
	*port = ntohs(a.sin_port);
	*inode = st.st_ino;
	return fd;
}

/* Connect N clients to PORT and wait until the kernel has queued them all
 * on LFD (a listener's tcpi_unacked is its accept queue). */
static void queue_clients(int lfd, unsigned port, int n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct tcp_info ti;
	socklen_t len;
	int i, fd;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < n; i++) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			die("connect");
	}
	for (i = 0; i < 2000; i++) {
		len = sizeof(ti);
		if (getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
			die("TCP_INFO");
		if ((int)ti.tcpi_unacked >= n)
			return;
		usleep(1000);
	}
	errno = ETIMEDOUT;
	die("accept queue");
}

static void set_ip4(struct sockshim_listener *l, unsigned port, uint64_t inode, int backlog)
{
	l->family = AF_INET;
	l->local_ip[0] = 127;
	l->local_ip[3] = 1;
	l->local_port = (uint16_t)port;
	l->backlog = backlog;
	__atomic_store_n(&l->inode, inode, __ATOMIC_RELEASE);
}

static void set_worker(struct sockshim_worker *w, int pid, int tid, uint64_t calls,
		       uint64_t accepts, uint64_t spurious, uint64_t empty, uint64_t eintr,
		       uint64_t wait_ns)
{
	w->calls = calls;
	w->accepts = accepts;
	w->spurious = spurious;
	w->empty = empty;
	w->eintr = eintr;
	w->lock_wait_ns = wait_ns;
	w->last_ns = mono_ns();
	__atomic_store_n(&w->key, (uint64_t)(uint32_t)pid << 32 | (uint32_t)tid, __ATOMIC_RELEASE);
}

static void fill(struct seg_map *m, unsigned pa, uint64_t ia, unsigned pb, uint64_t ib)
{
	struct sockshim_listener *t = seg_listeners(m), *a = &t[5], *b = &t[2], *c = &t[0];
	int pid = getpid();

	a->mode = SOCKSHIM_ACCEPT_SERIALIZE;
	a->accept_calls = 1600;
	a->accepts = 500;
	a->spurious = 1000;
	a->empty = 12;
	a->eintr = 3;
	a->econnaborted = 1;
	a->emfile = 2;
	a->wakeups = 1400;
	a->lock_acquisitions = 500;
	a->lock_contended = 120;
	a->owner_died = 1;
	a->worker_overflow = 2;
	/* Waiting for the lock now: fxw2 (row 0) and fxw3 (row 7). The bits
	 * of a free row (30) and of the corrupt row (20) are no waiters. */
	a->waiting = UINT64_C(1) << 0 | UINT64_C(1) << 7 | UINT64_C(1) << 20 | UINT64_C(1) << 30;
	a->max_waiters = 3;
	/* Lock waits: 300 of 1-2 us, 150 of 4-8 us, 45 of 1-2 ms, 5 of 32-64 ms. */
	a->wait_hist[10] = 300;
	a->wait_hist[12] = 150;
	a->wait_hist[20] = 45;
	a->wait_hist[25] = 5;
	/* Holds: 400 of 8-16 us, 95 of 64-128 us, 5 beyond 2^31 ns. */
	a->hold_hist[13] = 400;
	a->hold_hist[16] = 95;
	a->hold_hist[SOCKSHIM_HIST_BUCKETS - 1] = 5;
	/* Connections released: 200 lived 8-16 ms, 290 64-128 ms, 10
	 * beyond 2^31 ns; 40 sat 8-16 ms in CLOSE_WAIT, 10 64-128 ms; 6
	 * were reset. */
	a->life_hist[23] = 200;
	a->life_hist[26] = 290;
	a->life_hist[SOCKSHIM_HIST_BUCKETS - 1] = 10;
	a->closewait_hist[23] = 40;
	a->closewait_hist[26] = 10;
	a->aborted = 6;
	a->holder_pid = pid;
	a->holder_tid = tids[0];
	a->held_since_ns = mono_ns() - 1500000000u;
	a->lock = (uint32_t)tids[0];
	/* Serialization gave way: 4 accepts past a stopped holder, 2 past
	 * one that took nothing, 1 garbage word reset; 3 tokens taken. */
	a->lock_bypassed[SOCKSHIM_BYPASS_STOPPED] = 4;
	a->lock_bypassed[SOCKSHIM_BYPASS_STALLED] = 2;
	a->lock_bypassed[SOCKSHIM_BYPASS_INVALID] = 1;
	a->token_taken[SOCKSHIM_BYPASS_STOPPED] = 3;
	a->unlock_errors = 1;
	/* Gated three ways: the lock (lock_acquisitions above), the poll
	 * token (handed to a waiting worker 37 times), EPOLLEXCLUSIVE. */
	a->token_waits = 40;
	a->token_handoffs = 37;
	a->epoll_exclusive = 2;
	/* Rows in no particular order: the reader sorts them. */
	set_worker(&a->workers[7], pid, tids[2], 320, 100, 200, 0, 1, 320);
	set_worker(&a->workers[3], pid, tids[0], 320, 100, 200, 0, 1, 3200000);
	set_worker(&a->workers[9], pid, pid, 640, 200, 400, 12, 0, 640000);
	set_worker(&a->workers[0], pid, tids[1], 320, 100, 200, 0, 1, 0);
	/* No pid: a corrupt row the reader must skip. */
	a->workers[20].key = 12345;
	/* Being recycled this moment: skipped, and not corrupt. */
	a->workers[21].key = SOCKSHIM_WORKER_RECYCLING;
	a->workers[21].accepts = 77;
	/* Three ended workers whose rows were recycled. */
	set_worker(&a->retired, 0, 0, 30, 20, 4, 5, 1, 0);
	a->retired.key = 3;
	set_ip4(a, pa, ia, 7);

	b->mode = SOCKSHIM_ACCEPT_OBSERVE;
	b->epoll_exclusive = 3; /* the program's own, in observe */
	set_ip4(b, pb, ib, 5);

	c->mode = 9;
	c->family = 0;
	c->backlog = SOCKSHIM_BACKLOG_UNKNOWN;
	c->accepts = 5;
	c->accept_calls = 5;
	/* A thread that has ended (no such tid): the reader retires its row.
	 * It was killed while waiting for the lock: no waiter now; one
	 * waiter without a row is. */
	set_worker(&c->workers[0], pid, 0x7fffffff, 5, 5, 0, 0, 0, 0);
	c->waiting = 1;
	c->waiters_unrowed = 1;
	c->max_waiters = 2;
	__atomic_store_n(&c->inode, FAKE_INODE, __ATOMIC_RELEASE);
}

int main(int argc, char **argv)
{
	pthread_t th[THREADS];
	unsigned pa = 0, pb = 0;
	uint64_t ia = 0, ib = 0;
	struct seg_map m;
	char line[256];
	int empty, i, rc, la;

	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "empty") != 0)) {
		fprintf(stderr, "usage: stats_fixture NAME [empty]\n");
		return 2;
	}
	empty = argc == 3;
	alarm(LIFETIME_S);
	rc = seg_create(argv[1], 1u << SOCKSHIM_RING_MIN_SHIFT, 1u << SOCKSHIM_LEDGER_MIN_SHIFT,
			&m);
	if (rc) {
		errno = -rc;
		die("seg_create");
	}
	for (i = 0; i < THREADS; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			die("pthread_create");
	pthread_mutex_lock(&lock);
	while (started < THREADS)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < THREADS; i++)
		wait_sleeping(tids[i]);
	if (!empty) {
		la = listen_on(7, &pa, &ia);
		listen_on(5, &pb, &ib);
		queue_clients(la, pa, 2);
		fill(&m, pa, ia, pb, ib);
	}
	printf("ready %d %u %llu %u %llu %d %d %d\n", (int)getpid(), pa, (unsigned long long)ia,
	       pb, (unsigned long long)ib, tids[0], tids[1], tids[2]);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long long v;

		if (!empty && sscanf(line, "accepts %llu", &v) == 1) {
			__atomic_store_n(&seg_listeners(&m)[5].accepts, (uint64_t)v,
					 __ATOMIC_RELAXED);
			printf("ok\n");
		} else if (!empty && !strcmp(line, "holder-gone\n")) {
			struct sockshim_listener *a = &seg_listeners(&m)[5];
			pthread_t t;
			int tid = 0;

			if (pthread_create(&t, NULL, gone_thread, &tid) || pthread_join(t, NULL))
				die("pthread_create");
			__atomic_store_n(&a->holder_tid, tid, __ATOMIC_RELAXED);
			__atomic_store_n(&a->lock, (uint32_t)tid, __ATOMIC_RELEASE);
			__atomic_store_n(&a->poller, (uint64_t)(uint32_t)getpid() << 32 | (uint32_t)tid,
					 __ATOMIC_RELEASE);
			printf("ok %d\n", tid);
		} else {
			printf("err unknown command\n");
		}
		fflush(stdout);
	}
	pthread_mutex_lock(&lock);
	quitting = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	seg_remove(argv[1]);
	seg_unmap(&m);
	return 0;
}
