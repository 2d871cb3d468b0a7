/* Forks 1,000 times (or N: forkstress [N], N <= 1,000) from one thread while
 * three others open, copy and close sockets, to show the shim's fork
 * handling neither deadlocks nor loses a fork. Each child either exits at once, or makes and closes a socket, or
 * closes everything it inherited, then _exit(0)s.
 * Prints "child PID" per fork, then "forks N failures F iterations I".
 * Exit status 0 only if every child exited 0 and every thread succeeded;
 * alarm(100) bounds the whole run. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loopback.h"

#define FORKS 1000
#define THREADS 3
/* Per thread: bounded, and paced to the forks so the ring (and the test's
 * exact count of fork events) is not flooded. */
#define MAX_ITERS 3000
#define ITERS_PER_FORK 3
#define DEADLINE_S 100

static int forks_done;
static int stopping;
static long iterations;

#define CHECK(cond)                                                                 \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "forkstress: %s:%d: %s failed: %s\n", __FILE__, \
				__LINE__, #cond, strerror(errno));                  \
			return (void *)1;                                           \
		}                                                                   \
	} while (0)

/* Wait until the forker is ahead of us; 0 when it is time to stop. */
static int pace(long i)
{
	while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
		if (i < (long)ITERS_PER_FORK * (__atomic_load_n(&forks_done, __ATOMIC_RELAXED) + 1))
			return i < MAX_ITERS;
		usleep(200);
	}
	return 0;
}

/* connect, accept, a byte each way, close. */
static void *tcp_worker(void *arg)
{
	uint16_t port;
	int l = loopback_listen(SOCK_CLOEXEC, 64, &port);
	long i;
	char c;

	(void)arg;
	CHECK(l >= 0);
	for (i = 0; pace(i); i++) {
		int cl = loopback_connect(port), sv;

		CHECK(cl >= 0);
		sv = accept(l, NULL, NULL);
		CHECK(sv >= 0);
		CHECK(write(cl, "p", 1) == 1);
		CHECK(read(sv, &c, 1) == 1);
		CHECK(close(cl) == 0);
		CHECK(read(sv, &c, 1) == 0);
		CHECK(close(sv) == 0);
	}
	CHECK(close(l) == 0);
	__atomic_fetch_add(&iterations, i, __ATOMIC_RELAXED);
	return NULL;
}

/* socketpair, dup, F_DUPFD_CLOEXEC, half-close, close. */
static void *pair_worker(void *arg)
{
	long i;
	char c;

	(void)arg;
	for (i = 0; pace(i); i++) {
		int sv[2], d, d2;

		CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
		d = dup(sv[0]);
		CHECK(d >= 0);
		d2 = fcntl(sv[1], F_DUPFD_CLOEXEC, 0);
		CHECK(d2 >= 0);
		CHECK(write(d, "q", 1) == 1);
		CHECK(recv(d2, &c, 1, 0) == 1);
		CHECK(shutdown(sv[0], SHUT_WR) == 0);
		CHECK(read(sv[1], &c, 1) == 0);
		CHECK(close(sv[0]) == 0 && close(sv[1]) == 0);
		CHECK(close(d) == 0 && close(d2) == 0);
	}
	__atomic_fetch_add(&iterations, i, __ATOMIC_RELAXED);
	return NULL;
}

/* UDP sockets, dup3 over one another, accept4, shutdown. */
static void *mix_worker(void *arg)
{
	uint16_t port;
	int l = loopback_listen(SOCK_CLOEXEC, 64, &port);
	long i;

	(void)arg;
	CHECK(l >= 0);
	for (i = 0; pace(i); i++) {
		int u = socket(AF_INET, SOCK_DGRAM, 0), v = socket(AF_INET, SOCK_DGRAM, 0);
		int cl, sv;

		CHECK(u >= 0 && v >= 0);
		CHECK(dup3(u, v, O_CLOEXEC) == v);
		CHECK(close(u) == 0 && close(v) == 0);
		cl = loopback_connect(port);
		CHECK(cl >= 0);
		sv = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		CHECK(sv >= 0);
		CHECK(shutdown(sv, SHUT_RDWR) == 0);
		CHECK(close(sv) == 0 && close(cl) == 0);
	}
	CHECK(close(l) == 0);
	__atomic_fetch_add(&iterations, i, __ATOMIC_RELAXED);
	return NULL;
}

static void child(int i)
{
	int s;

	switch (i % 3) {
	case 0:
		break;
	case 1:
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0)
			_exit(2);
		if (close(s) < 0)
			_exit(3);
		break;
	case 2:
		/* Whatever the threads had open when we forked. */
		if (close_range(3, ~0u, 0) < 0)
			_exit(4);
		break;
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	void *(*workers[THREADS])(void *) = {tcp_worker, pair_worker, mix_worker};
	pthread_t th[THREADS];
	static pid_t pids[FORKS];
	int i, failures = 0, bad_threads = 0, forks = FORKS;

	if (argc > 1)
		forks = atoi(argv[1]);
	if (argc > 2 || forks < 1 || forks > FORKS) {
		fprintf(stderr, "usage: forkstress [FORKS, 1 to %d]\n", FORKS);
		return 2;
	}
	alarm(DEADLINE_S);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < THREADS; i++)
		if (pthread_create(&th[i], NULL, workers[i], NULL)) {
			fprintf(stderr, "forkstress: pthread_create failed\n");
			return 1;
		}
	for (i = 0; i < forks; i++) {
		int st;
		pid_t pid = fork();

		if (pid == 0)
			child(i);
		if (pid < 0) {
			fprintf(stderr, "forkstress: fork %d: %s\n", i, strerror(errno));
			failures++;
			break;
		}
		pids[i] = pid;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "forkstress: child %d (fork %d) status %#x\n", (int)pid, i, st);
			failures++;
		}
		__atomic_store_n(&forks_done, i + 1, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
	for (i = 0; i < THREADS; i++) {
		void *ret = NULL;

		pthread_join(th[i], &ret);
		if (ret)
			bad_threads++;
	}
	for (i = 0; i < forks && pids[i]; i++)
		printf("child %d\n", (int)pids[i]);
	printf("forks %d failures %d iterations %ld threads-failed %d\n",
	       __atomic_load_n(&forks_done, __ATOMIC_RELAXED), failures,
	       __atomic_load_n(&iterations, __ATOMIC_RELAXED), bad_threads);
	return failures || bad_threads ? 1 : 0;
}
