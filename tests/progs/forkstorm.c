/* Forks 10,000 times from one thread while three others create, copy and
 * close sockets, then stays up in a known state so the test can compare
 * the ledger with /proc. Children end at once or almost: by _exit(0) (the
 * shim never sees it), by exit(0), after a bound socket of their own, or after
 * holding what they inherited for a moment; up to OUTSTANDING of them run
 * at a time.
 *
 *     forkstorm [FORKS [MODES]]
 *
 * MODES picks the children's ends, fork i taking MODES[i % len]: '0'
 * _exit(0) at once, '1' exit(0), '2' a bound socket then exit(0), '3' hold
 * for 300 us then exit(0). Default "0123".
 *
 * Prints "forks N failures F iterations I threads-failed T", then, with
 * the listener, one connection (both ends) and a socketpair open in the
 * main process and LATE children that inherited them still running,
 * "ready MAINPID LATEPID...". On SIGUSR1 the late children are told to
 * exit (they exit(0)), the main process closes everything and exits 0.
 * alarm(DEADLINE_S) bounds the whole run: a deadlock ends in SIGALRM. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loopback.h"

#define FORKS_DEFAULT 10000
#define THREADS 3
#define OUTSTANDING 8
#define LATE 2
#define ITERS_PER_FORK 1
#define MAX_ITERS 12000
#define DEADLINE_S 110

static int forks_done;
static int stopping;
static long iterations;
static uint16_t port;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "forkstorm: %s:%d: %s failed: %s\n", __FILE__,   \
				__LINE__, #cond, strerror(errno));                       \
			return (void *)1;                                                \
		}                                                                        \
	} while (0)

/* Run while the forker is ahead of us; 0 when it is time to stop. */
static int pace(long i)
{
	while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
		if (i < (long)ITERS_PER_FORK * (__atomic_load_n(&forks_done, __ATOMIC_RELAXED) + 1))
			return i < MAX_ITERS;
		usleep(100);
	}
	return 0;
}

/* connect to the main listener, accept on it, close both. Only this
 * thread accepts on it until the end. */
static void *tcp_worker(void *arg)
{
	int l = *(int *)arg;
	long i;

	for (i = 0; pace(i); i++) {
		int cl = loopback_connect(port), sv;

		CHECK(cl >= 0);
		sv = accept(l, NULL, NULL);
		CHECK(sv >= 0);
		CHECK(close(cl) == 0);
		CHECK(close(sv) == 0);
	}
	__atomic_fetch_add(&iterations, i, __ATOMIC_RELAXED);
	return NULL;
}

/* socketpair, dup, dup2 over a tracked descriptor, close. */
static void *pair_worker(void *arg)
{
	long i;

	(void)arg;
	for (i = 0; pace(i); i++) {
		int sv[2], d;

		CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
		d = dup(sv[0]);
		CHECK(d >= 0);
		CHECK(dup2(sv[1], d) == d);
		CHECK(close(sv[0]) == 0 && close(sv[1]) == 0 && close(d) == 0);
	}
	__atomic_fetch_add(&iterations, i, __ATOMIC_RELAXED);
	return NULL;
}

/* A listener of its own, F_DUPFD_CLOEXEC, close. */
static void *mix_worker(void *arg)
{
	struct sockaddr_in a;
	long i;

	(void)arg;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; pace(i); i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), d;

		CHECK(s >= 0);
		CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
		d = fcntl(s, F_DUPFD_CLOEXEC, 0);
		CHECK(d >= 0);
		CHECK(close(s) == 0 && close(d) == 0);
	}
	__atomic_fetch_add(&iterations, i, __ATOMIC_RELAXED);
	return NULL;
}

static const char *modes = "0123";

static void child(int i)
{
	int s;

	switch (modes[i % strlen(modes)]) {
	case '0':
		_exit(0); /* unseen: the ledger keeps our holders */
	case '1':
		exit(0); /* the shim's atexit drops them */
	case '2': {
		/* A socket of our own (not connected: nobody would accept it). */
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

		s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || close(s) < 0)
			_exit(3);
		exit(0);
	}
	case '3':
		usleep(300); /* hold what we inherited for a moment */
		exit(0);
	default:
		_exit(5);
	}
}

static int reap(int *failures, int flags)
{
	int st;
	pid_t pid = waitpid(-1, &st, flags);

	if (pid <= 0)
		return 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "forkstorm: child %d status %#x\n", (int)pid, st);
		(*failures)++;
	}
	return 1;
}

int main(int argc, char **argv)
{
	void *(*workers[THREADS])(void *) = {tcp_worker, pair_worker, mix_worker};
	pthread_t th[THREADS];
	pid_t late[LATE];
	sigset_t usr1;
	int forks = argc > 1 ? atoi(argv[1]) : FORKS_DEFAULT;
	int i, l, c, a, sv[2], go[2], started[2], sig, failures = 0, bad_threads = 0, running = 0;

	if (argc > 2 && argv[2][0] && strspn(argv[2], "0123") == strlen(argv[2]))
		modes = argv[2];
	alarm(DEADLINE_S);
	signal(SIGPIPE, SIG_IGN);
	/* SIGUSR1 is waited for, by the main thread only. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	l = loopback_listen(0, 128, &port);
	c = loopback_connect(port);
	a = l >= 0 ? accept(l, NULL, NULL) : -1;
	if (l < 0 || c < 0 || a < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 ||
	    pipe2(go, O_CLOEXEC) < 0) {
		fprintf(stderr, "forkstorm: set-up: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < THREADS; i++)
		if (pthread_create(&th[i], NULL, workers[i], &l)) {
			fprintf(stderr, "forkstorm: pthread_create failed\n");
			return 1;
		}
	for (i = 0; i < forks; i++) {
		pid_t pid;

		while (running >= OUTSTANDING && reap(&failures, 0))
			running--;
		pid = fork();
		if (pid == 0)
			child(i);
		if (pid < 0) {
			fprintf(stderr, "forkstorm: fork %d: %s\n", i, strerror(errno));
			failures++;
			break;
		}
		running++;
		__atomic_store_n(&forks_done, i + 1, __ATOMIC_RELAXED);
	}
	while (running > 0 && reap(&failures, 0))
		running--;
	__atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
	for (i = 0; i < THREADS; i++) {
		void *ret = NULL;

		pthread_join(th[i], &ret);
		if (ret)
			bad_threads++;
	}
	printf("forks %d failures %d iterations %ld threads-failed %d\n",
	       __atomic_load_n(&forks_done, __ATOMIC_RELAXED), failures,
	       __atomic_load_n(&iterations, __ATOMIC_RELAXED), bad_threads);

	/* The known state: late children hold what we hold until we close
	 * the pipe's write end. Each says it runs (STARTED) once fork has
	 * returned in it, that is once the shim has recorded it as a holder
	 * of what it inherited: only then is the state known. */
	if (pipe2(started, O_CLOEXEC) < 0)
		return 1;
	for (i = 0; i < LATE; i++) {
		late[i] = fork();
		if (late[i] == 0) {
			char b = 'x';

			close(go[1]);
			close(started[0]);
			if (write(started[1], &b, 1) != 1)
				_exit(1);
			close(started[1]);
			while (read(go[0], &b, 1) < 0 && errno == EINTR) {
			}
			exit(0);
		}
		if (late[i] < 0)
			return 1;
	}
	close(started[1]);
	for (i = 0; i < LATE;) {
		char b[LATE];
		ssize_t n = read(started[0], b, sizeof(b));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 1;
		i += (int)n;
	}
	close(started[0]);
	close(go[0]);
	printf("ready %d", (int)getpid());
	for (i = 0; i < LATE; i++)
		printf(" %d", (int)late[i]);
	printf("\n");
	fflush(stdout);
	if (sigwait(&usr1, &sig))
		return 1;
	close(go[1]);
	for (i = 0; i < LATE; i++)
		if (waitpid(late[i], NULL, 0) != late[i])
			failures++;
	if (close(l) || close(c) || close(a) || close(sv[0]) || close(sv[1]))
		failures++;
	return failures || bad_threads ? 1 : 0;
}
