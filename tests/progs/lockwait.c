/* Blocking accept on one listener from two threads at once, for the tests
 * of what serialize's accept lock must keep as the kernel does: a receive
 * timeout, and thread cancellation while holding or waiting for the lock.
 *
 *     lockwait rcvtimeo MS   SO_RCVTIMEO of MS ms on the listener; two
 *                            threads accept (the second 50 ms later), no
 *                            client comes: each must end with EAGAIN after
 *                            its own MS. Prints "thread I ret R errno NAME
 *                            ms T" for each.
 *     lockwait cancel        threads A and B accept (B 50 ms later); both
 *                            are cancelled (B first, waiting; then A, in
 *                            accept); then thread C accepts and one client
 *                            connects: C must get it. Prints "cancelled B",
 *                            "cancelled A", "C accepted", "port P", then
 *                            "cancel ms B T A T" (from pthread_cancel to
 *                            the end of pthread_join).
 *     lockwait sigclose      threads A and B accept (B 50 ms later); a
 *                            SIGUSR1 handler (SA_RESTART) that closes the
 *                            listener runs in B: B's accept, restarted
 *                            after it, must fail with EBADF as the
 *                            kernel's does, within a second. Prints
 *                            "B ret R errno NAME ms T".
 *     lockwait sigrace N     N rounds: threads A and B accept (under
 *                            serialize: A holds the lock, B sleeps for
 *                            it); once both sleep, SIGUSR1 (a handler
 *                            without SA_RESTART) goes to A, then, 0 to 99
 *                            microseconds later, to B: the moment A's
 *                            EINTR gives the lock back and wakes B, as
 *                            when a pool's workers are all stopped at
 *                            once. Both must end with EINTR, every round,
 *                            as in the kernel's accept. Prints "rounds N
 *                            A EINTR a B EINTR b", or the round where B
 *                            was left in accept.
 *     lockwait sigrestart    threads A and B accept (B 50 ms later: under
 *                            serialize it waits for the lock); a SIGUSR1
 *                            handler with SA_RESTART runs in B; then two
 *                            clients connect: both accepts must return a
 *                            connection (B's restarted as the kernel's
 *                            is, not ended). Prints "handled N A ret R B
 *                            ret R".
 *     lockwait forkheld      thread A accepts (under serialize: holds the
 *                            lock); the main thread forks; the child
 *                            accepts too (waits for A's lock). Prints
 *                            "port P"; the test connects twice and reads
 *                            "parent" and "child"; the child exits 0.
 *
 * With --no-futex-waitv first, futex_waitv fails with ENOSYS (a seccomp
 * filter: deny_futex_waitv.h), as on kernels before 5.16 and under
 * valgrind: the accept lock's waiters take their other path.
 *
 * alarm() bounds the run; exit 0 when every step went as said. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deny_futex_waitv.h"

#define LIFETIME_S 20
#define STAGGER_MS 50
#define SETTLE_MS 200

static int listener = -1;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

struct result {
	int ret;
	int err;
	uint64_t ms;
	pid_t tid; /* set by the thread itself, atomically */
};

static void *accept_once(void *arg)
{
	struct result *r = arg;
	uint64_t t0 = mono_ms();

	__atomic_store_n(&r->tid, gettid(), __ATOMIC_RELEASE);

	r->ret = accept(listener, NULL, NULL);
	r->err = r->ret < 0 ? errno : 0;
	r->ms = mono_ms() - t0;
	return NULL;
}

static int make_listener(long rcvtimeo_ms)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);

	listener = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(listener, 8) < 0 || getsockname(listener, (struct sockaddr *)&a, &len) < 0) {
		perror("lockwait: listener");
		return -1;
	}
	if (rcvtimeo_ms) {
		struct timeval tv = {rcvtimeo_ms / 1000, (rcvtimeo_ms % 1000) * 1000};

		if (setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
			perror("lockwait: SO_RCVTIMEO");
			return -1;
		}
	}
	return ntohs(a.sin_port);
}

static int run_rcvtimeo(long ms)
{
	struct result r[2];
	pthread_t t[2];
	int i;

	if (make_listener(ms) < 0)
		return 1;
	for (i = 0; i < 2; i++) {
		if (pthread_create(&t[i], NULL, accept_once, &r[i]))
			return 1;
		sleep_ms(STAGGER_MS);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		printf("thread %d ret %d errno %s ms %llu\n", i, r[i].ret,
		       r[i].err == EAGAIN ? "EAGAIN" : r[i].err ? strerror(r[i].err) : "0",
		       (unsigned long long)r[i].ms);
	}
	return 0;
}

/* Threads A and B in accept, B STAGGER_MS after A (under serialize: A
 * holds the lock, B waits for it), both settled. 0 or -1. */
static int start_two(pthread_t *ta, struct result *ra, pthread_t *tb, struct result *rb)
{
	if (pthread_create(ta, NULL, accept_once, ra))
		return -1;
	sleep_ms(STAGGER_MS);
	if (pthread_create(tb, NULL, accept_once, rb))
		return -1;
	sleep_ms(SETTLE_MS);
	return 0;
}

/* Cancel T and join it; *MS: how long that took. */
static int cancel_one(pthread_t t, const char *name, uint64_t *ms)
{
	uint64_t t0 = mono_ms();
	void *how;

	if (pthread_cancel(t) || pthread_join(t, &how))
		return 1;
	*ms = mono_ms() - t0;
	printf("cancelled %s %s\n", name, how == PTHREAD_CANCELED ? "yes" : "no");
	fflush(stdout);
	return how != PTHREAD_CANCELED;
}

static int run_cancel(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct result ra, rb, rc;
	pthread_t ta, tb, tc;
	int port, client, bad = 0;
	uint64_t ms_a = 0, ms_b = 0;

	port = make_listener(0);
	if (port < 0 || start_two(&ta, &ra, &tb, &rb) < 0)
		return 1;
	bad |= cancel_one(tb, "B", &ms_b); /* waiting: for the lock under serialize */
	bad |= cancel_one(ta, "A", &ms_a); /* in accept: holding the lock under serialize */
	if (pthread_create(&tc, NULL, accept_once, &rc))
		return 1;
	sleep_ms(STAGGER_MS);
	client = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (client < 0 || connect(client, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("lockwait: connect");
		return 1;
	}
	pthread_join(tc, NULL);
	if (rc.ret >= 0)
		printf("C accepted\n");
	else
		printf("C failed: %s\n", strerror(rc.err));
	printf("port %d\n", port);
	printf("cancel ms B %llu A %llu\n", (unsigned long long)ms_b, (unsigned long long)ms_a);
	close(client);
	return bad || rc.ret < 0;
}

static void close_listener(int sig)
{
	(void)sig;
	close(listener);
}

static int run_sigclose(void)
{
	struct sigaction sa;
	struct result ra, rb;
	pthread_t ta, tb;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = close_listener;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (make_listener(0) < 0 || sigaction(SIGUSR1, &sa, NULL) < 0 ||
	    start_two(&ta, &ra, &tb, &rb) < 0)
		return 1;
	pthread_kill(tb, SIGUSR1);
	pthread_join(tb, NULL);
	printf("B ret %d errno %s ms %llu\n", rb.ret, rb.err == EBADF ? "EBADF" : strerror(rb.err),
	       (unsigned long long)rb.ms);
	/* A stays in accept on the closed listener, as it would without us. */
	fflush(stdout);
	_exit(rb.ret == -1 && rb.err == EBADF ? 0 : 1);
}

static void note_signal(int sig)
{
	(void)sig;
}

/* Thread TID of ours sleeps (state S: in a blocking call). */
static int task_sleeps(pid_t tid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	if (!tid)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

static void spin_us(long us)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

/* Join T within MS ms. 0, or -1 if it still runs. */
static int join_within(pthread_t t, long ms)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += ms / 1000;
	dl.tv_nsec += (ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	return pthread_timedjoin_np(t, NULL, &dl) ? -1 : 0;
}

#define SIGRACE_STUCK_MS 2000
#define SIGRACE_SETTLE_MS 1000

static int run_sigrace(long rounds)
{
	struct sigaction sa;
	long r, a_eintr = 0, b_eintr = 0;
	int port;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = note_signal; /* no SA_RESTART: the accept ends, EINTR */
	sigemptyset(&sa.sa_mask);
	port = make_listener(0);
	if (port < 0 || sigaction(SIGUSR1, &sa, NULL) < 0)
		return 1;
	for (r = 0; r < rounds; r++) {
		struct result ra = {0}, rb = {0};
		pthread_t ta, tb;
		uint64_t t0;

		if (pthread_create(&ta, NULL, accept_once, &ra))
			return 1;
		t0 = mono_ms();
		while (!task_sleeps(__atomic_load_n(&ra.tid, __ATOMIC_ACQUIRE)) &&
		       mono_ms() - t0 < SIGRACE_SETTLE_MS)
			sleep_ms(1);
		if (pthread_create(&tb, NULL, accept_once, &rb))
			return 1;
		while (!task_sleeps(__atomic_load_n(&rb.tid, __ATOMIC_ACQUIRE)) &&
		       mono_ms() - t0 < SIGRACE_SETTLE_MS)
			sleep_ms(1);
		pthread_kill(ta, SIGUSR1);
		spin_us(r % 100);
		pthread_kill(tb, SIGUSR1);
		if (join_within(ta, SIGRACE_STUCK_MS) < 0 || join_within(tb, SIGRACE_STUCK_MS) < 0) {
			printf("round %ld delay %ld us: a thread still in accept %d ms after its "
			       "signal (A ret %d, B ret %d)\n",
			       r, r % 100, SIGRACE_STUCK_MS, ra.ret, rb.ret);
			_exit(1); /* the thread left in accept would hold us */
		}
		a_eintr += ra.ret == -1 && ra.err == EINTR;
		b_eintr += rb.ret == -1 && rb.err == EINTR;
	}
	printf("rounds %ld A EINTR %ld B EINTR %ld\n", rounds, a_eintr, b_eintr);
	printf("port %d\n", port);
	return a_eintr != rounds || b_eintr != rounds;
}

static volatile sig_atomic_t handled;

static void count_signal(int sig)
{
	(void)sig;
	handled++;
}

static int connect_to(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int c = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("lockwait: connect");
		return -1;
	}
	return c;
}

static int run_sigrestart(void)
{
	struct sigaction sa;
	struct result ra, rb;
	pthread_t ta, tb;
	int port, c1, c2;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = count_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	port = make_listener(0);
	if (port < 0 || sigaction(SIGUSR1, &sa, NULL) < 0 || start_two(&ta, &ra, &tb, &rb) < 0)
		return 1;
	pthread_kill(tb, SIGUSR1);
	sleep_ms(SETTLE_MS); /* the handler ran; B waits on */
	c1 = connect_to(port);
	c2 = connect_to(port);
	if (c1 < 0 || c2 < 0 || join_within(ta, SIGRACE_STUCK_MS) < 0 ||
	    join_within(tb, SIGRACE_STUCK_MS) < 0) {
		printf("a thread still in accept\n");
		_exit(1);
	}
	printf("handled %d A ret %s B ret %s\n", (int)handled, ra.ret >= 0 ? "fd" : strerror(ra.err),
	       rb.ret >= 0 ? "fd" : strerror(rb.err));
	return !(handled == 1 && ra.ret >= 0 && rb.ret >= 0);
}

/* Accept one connection and answer it with WHO. */
static int answer_one(const char *who)
{
	int fd = accept(listener, NULL, NULL);

	if (fd < 0)
		return -1;
	if (write(fd, who, strlen(who)) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void *accept_as_parent(void *arg)
{
	*(int *)arg = answer_one("parent\n");
	return NULL;
}

static int run_forkheld(void)
{
	pthread_t ta;
	int port, ra = -1, status;
	pid_t child;

	port = make_listener(0);
	if (port < 0 || pthread_create(&ta, NULL, accept_as_parent, &ra))
		return 1;
	sleep_ms(SETTLE_MS); /* A is in accept: under serialize, with the lock */
	child = fork();
	if (child < 0)
		return 1;
	if (child == 0)
		_exit(answer_one("child\n") ? 1 : 0);
	printf("port %d\n", port);
	pthread_join(ta, NULL);
	if (waitpid(child, &status, 0) != child)
		return 1;
	printf("parent %s child %d\n", ra ? "failed" : "answered",
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return ra || !WIFEXITED(status) || WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	alarm(LIFETIME_S);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "--no-futex-waitv")) {
		if (deny_futex_waitv() < 0) {
			perror("lockwait: a seccomp filter for futex_waitv");
			return 1;
		}
		argc--;
		argv++;
	}
	if (argc == 3 && !strcmp(argv[1], "rcvtimeo") && atol(argv[2]) > 0)
		return run_rcvtimeo(atol(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "cancel"))
		return run_cancel();
	if (argc == 2 && !strcmp(argv[1], "sigclose"))
		return run_sigclose();
	if (argc == 2 && !strcmp(argv[1], "forkheld"))
		return run_forkheld();
	if (argc == 3 && !strcmp(argv[1], "sigrace") && atol(argv[2]) > 0)
		return run_sigrace(atol(argv[2]));
	if (argc == 2 && !strcmp(argv[1], "sigrestart"))
		return run_sigrestart();
	fprintf(stderr, "usage: lockwait [--no-futex-waitv] rcvtimeo MS | cancel | sigclose | "
			"forkheld | sigrace N | sigrestart\n");
	return 2;
}
