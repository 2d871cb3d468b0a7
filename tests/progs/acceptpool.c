/* A pool of workers blocking in accept() on one listener on 127.0.0.1, for
 * the accept tests: N threads of one process, or N pre-forked processes.
 * Each connection is answered with one line "PID TID SEQ" (SEQ: how many
 * connections that worker has accepted, this one included) and closed by
 * the server, which therefore holds the TIME_WAIT, not the client.
 *
 *     acceptpool [-m thread|fork] [-n N] [-p PORTFILE] [-P PORT] [-s MS] [-4]
 *
 *   -m  thread: N threads of one process; fork: N pre-forked processes
 *   -n  workers (1 to 64, default 8)
 *   -p  write the port to PORTFILE once listening (atomically: rename)
 *   -P  the port to listen on (default 0: any free one)
 *   -s  slow: wait MS milliseconds before answering each connection
 *   -4  accept4(SOCK_CLOEXEC) instead of accept
 *   -r  fork: recycle, each worker exits (0) after K connections and the
 *       parent starts a new one in its place, as Apache's
 *       MaxConnectionsPerChild or gunicorn's --max-requests do
 *   -t  fork: T threads accept in each worker process (default 1)
 *   -k  fork: a worker killed by a signal gets a successor, as nginx's and
 *       Apache's masters do
 *
 * Lines on stdout, one write each:
 *   port P                              listening
 *   start PID TID                       a worker about to accept
 *   exit PID TID T_NS                   a worker's accept returned EINTR
 *                                       after SIGTERM (T_NS: CLOCK_MONOTONIC)
 *   worker PID TID accepts N eintr E    a worker's totals, as it stops
 *   reaped PID exit S T_NS | reaped PID signal S T_NS   (fork: the parent)
 *
 * Stopping: SIGTERM or SIGINT. Threads: the main thread (the only one that
 * takes the signals) prints every worker's totals and exits 0. Pre-forked:
 * each worker catches SIGTERM without SA_RESTART, so its blocking accept,
 * or the shim's wait for the accept lock in front of it, ends with EINTR,
 * and it exits 0; the parent forwards SIGTERM (again each second, for a
 * worker that was between two accepts), reaps, and exits 0 if no worker
 * failed (killed by SIGKILL does not count: the tests do that). alarm()
 * bounds every process's life, and a worker dies with its parent. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64
/* Longer than any test that uses it. */
#define LIFETIME_S 300
/* Room for 10,000 connections in flight from a few client threads. */
#define BACKLOG 4096
/* How often the parent repeats SIGTERM to workers that are still there. */
#define RESIGNAL_S 1

/* A worker. Its fields are atomic: the main thread reads them at the end. */
struct slot {
	pid_t pid, tid;
	uint64_t accepts;
	uint64_t eintr;
};

static struct slot slots[MAX_WORKERS];
static int listener = -1;
static int use_accept4;
static long slow_ms;
static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* One line on stdout in one write(2): workers in several processes share
 * the descriptor, and stdio buffers would be lost by _exit. */
static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (len > 0 && write(STDOUT_FILENO, buf, (size_t)len) < 0)
		_exit(4);
}

static void answer(int fd, struct slot *s)
{
	uint64_t seq = __atomic_add_fetch(&s->accepts, 1, __ATOMIC_RELAXED);
	char line[64];
	int len;

	if (slow_ms) {
		struct timespec ts = {slow_ms / 1000, (slow_ms % 1000) * 1000000L};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
		}
	}
	len = snprintf(line, sizeof(line), "%d %d %llu\n", (int)s->pid, (int)s->tid,
		       (unsigned long long)seq);
	/* The client may be gone (it timed out): no SIGPIPE. */
	if (send(fd, line, (size_t)len, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET)
		fprintf(stderr, "acceptpool: send: %s\n", strerror(errno));
	close(fd);
}

/* -r: connections per worker process, 0 for no limit. */
static uint64_t recycle_after;
/* -t: accepting threads per worker process; -k: respawn the killed. */
static int threads_per_worker = 1;
static int respawn_killed;

/* Accept until stopped (or, with -r, done). Returns 0 when SIGTERM ended an
 * accept or the worker served its share, 1 on an unexpected error. */
static int accept_loop(struct slot *s)
{
	say("start %d %d\n", (int)s->pid, (int)s->tid);
	for (;;) {
		int fd;

		if (stopping)
			break;
		fd = use_accept4 ? accept4(listener, NULL, NULL, SOCK_CLOEXEC)
				 : accept(listener, NULL, NULL);
		if (fd >= 0) {
			answer(fd, s);
			if (recycle_after &&
			    __atomic_load_n(&s->accepts, __ATOMIC_RELAXED) >= recycle_after)
				break;
			continue;
		}
		if (errno == EINTR) {
			__atomic_add_fetch(&s->eintr, 1, __ATOMIC_RELAXED);
			if (stopping) {
				say("exit %d %d %llu\n", (int)s->pid, (int)s->tid,
				    (unsigned long long)mono_ns());
				break;
			}
			continue;
		}
		if (errno == ECONNABORTED)
			continue;
		fprintf(stderr, "acceptpool: worker %d/%d: accept: %s\n", (int)s->pid, (int)s->tid,
			strerror(errno));
		return 1;
	}
	return 0;
}

static void print_totals(const struct slot *s)
{
	say("worker %d %d accepts %llu eintr %llu\n",
	    (int)__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE),
	    (int)__atomic_load_n(&s->tid, __ATOMIC_ACQUIRE),
	    (unsigned long long)__atomic_load_n(&s->accepts, __ATOMIC_RELAXED),
	    (unsigned long long)__atomic_load_n(&s->eintr, __ATOMIC_RELAXED));
}

static void *thread_main(void *arg)
{
	struct slot *s = arg;

	__atomic_store_n(&s->pid, getpid(), __ATOMIC_RELEASE);
	__atomic_store_n(&s->tid, my_tid(), __ATOMIC_RELEASE);
	if (accept_loop(s))
		_exit(1);
	return NULL;
}

/* Threads: the signals stay blocked in every thread but sigwaitinfo's. */
static int run_threads(int n, const sigset_t *waitset)
{
	pthread_t th;
	int i, sig;

	for (i = 0; i < n; i++) {
		int rc = pthread_create(&th, NULL, thread_main, &slots[i]);

		if (rc) {
			fprintf(stderr, "acceptpool: pthread_create: %s\n", strerror(rc));
			return 1;
		}
		pthread_detach(th);
	}
	do
		sig = sigwaitinfo(waitset, NULL);
	while (sig == SIGCHLD || (sig < 0 && errno == EINTR));
	if (sig == SIGALRM) {
		fprintf(stderr, "acceptpool: still running after %d s\n", LIFETIME_S);
		return 3;
	}
	for (i = 0; i < n; i++)
		print_totals(&slots[i]);
	return 0;
}

/* -t: the worker process's threads accept (slots S[0..T-1]) with every
 * signal blocked; its main thread waits for SIGTERM, then prints their
 * totals and ends the process, as run_threads does for a whole pool. */
static int run_threads_in_worker(struct slot *s, const sigset_t *waitset)
{
	sigset_t stop;
	pthread_t th;
	int i, sig;

	for (i = 0; i < threads_per_worker; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		if (pthread_create(&th, NULL, thread_main, &s[i]))
			return 1;
		pthread_detach(th);
	}
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGALRM);
	(void)waitset;
	sigprocmask(SIG_BLOCK, &stop, NULL);
	do
		sig = sigwaitinfo(&stop, NULL);
	while (sig < 0 && errno == EINTR);
	for (i = 0; i < threads_per_worker; i++)
		print_totals(&s[i]);
	return sig == SIGALRM ? 3 : 0;
}

static void child_main(struct slot *s, const sigset_t *waitset, pid_t parent)
{
	struct sigaction sa;
	int rc;

	/* A parent killed (a test's cleanup) takes its workers with it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sa.sa_flags = 0; /* no SA_RESTART: accept returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGCHLD, SIG_DFL);
	alarm(LIFETIME_S);
	if (threads_per_worker > 1)
		_exit(run_threads_in_worker(s, waitset));
	s->pid = getpid();
	s->tid = my_tid();
	sigprocmask(SIG_UNBLOCK, waitset, NULL);
	rc = accept_loop(s);
	print_totals(s);
	_exit(rc);
}

static void signal_all(const pid_t *pids, int n, int sig)
{
	int i;

	for (i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], sig);
}

/* Pre-forked: the parent only reaps and forwards. */
static int run_forked(int n, const sigset_t *waitset)
{
	pid_t pids[MAX_WORKERS], parent = getpid();
	int i, live = 0, bad = 0;

	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			fprintf(stderr, "acceptpool: fork: %s\n", strerror(errno));
			signal_all(pids, i, SIGKILL);
			return 1;
		}
		if (pid == 0)
			child_main(&slots[i * threads_per_worker], waitset, parent);
		pids[i] = pid;
		live++;
	}
	while (live > 0) {
		struct timespec resignal = {RESIGNAL_S, 0};
		siginfo_t info;
		int sig = sigtimedwait(waitset, &info, stopping ? &resignal : NULL);

		if (sig < 0) {
			if (errno == EAGAIN && stopping)
				signal_all(pids, n, SIGTERM);
			continue;
		}
		if (sig == SIGALRM) {
			fprintf(stderr, "acceptpool: still running after %d s\n", LIFETIME_S);
			signal_all(pids, n, SIGKILL);
			return 3;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			stopping = 1;
			signal_all(pids, n, SIGTERM);
			continue;
		}
		for (;;) { /* SIGCHLD: reap every child that is done */
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);

			if (pid <= 0)
				break;
			for (i = 0; i < n; i++)
				if (pids[i] == pid)
					pids[i] = 0;
			live--;
			/* -r: a worker that served its share gets a successor;
			 * -k: so does one that was killed. */
			if (!stopping && ((recycle_after && WIFEXITED(status) &&
					   WEXITSTATUS(status) == 0) ||
					  (respawn_killed && WIFSIGNALED(status)))) {
				if (WIFEXITED(status))
					say("reaped %d exit 0 %llu\n", (int)pid,
					    (unsigned long long)mono_ns());
				else
					say("reaped %d signal %d %llu\n", (int)pid, WTERMSIG(status),
					    (unsigned long long)mono_ns());
				for (i = 0; i < n && pids[i]; i++) {
				}
				memset(&slots[i * threads_per_worker], 0,
				       sizeof(slots[0]) * (size_t)threads_per_worker);
				pids[i] = fork();
				if (pids[i] == 0)
					child_main(&slots[i * threads_per_worker], waitset, parent);
				if (pids[i] < 0) {
					fprintf(stderr, "acceptpool: fork: %s\n", strerror(errno));
					pids[i] = 0;
					bad = 1;
				} else {
					live++;
				}
				continue;
			}
			if (WIFEXITED(status)) {
				say("reaped %d exit %d %llu\n", (int)pid, WEXITSTATUS(status),
				    (unsigned long long)mono_ns());
				bad |= WEXITSTATUS(status) != 0;
			} else if (WIFSIGNALED(status)) {
				say("reaped %d signal %d %llu\n", (int)pid, WTERMSIG(status),
				    (unsigned long long)mono_ns());
				bad |= WTERMSIG(status) != SIGKILL;
			}
		}
	}
	if (!stopping) {
		fprintf(stderr, "acceptpool: every worker is gone\n");
		return 1;
	}
	return bad;
}

static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
		fprintf(stderr, "acceptpool: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: acceptpool [-m thread|fork] [-n N] [-p PORTFILE] [-P PORT] "
			"[-s MS] [-4] [-r K] [-t T] [-k]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *portfile = NULL;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	sigset_t waitset;
	int c, n = 8, port = 0, forked = 0, one = 1;

	while ((c = getopt(argc, argv, "m:n:p:P:s:4r:t:k")) != -1) {
		switch (c) {
		case 'm':
			if (strcmp(optarg, "thread") && strcmp(optarg, "fork"))
				return usage();
			forked = !strcmp(optarg, "fork");
			break;
		case 'n':
			n = atoi(optarg);
			if (n < 1 || n > MAX_WORKERS)
				return usage();
			break;
		case 'p':
			portfile = optarg;
			break;
		case 'P':
			port = atoi(optarg);
			if (port < 0 || port > 65535)
				return usage();
			break;
		case 's':
			slow_ms = atol(optarg);
			if (slow_ms < 0 || slow_ms > 10000)
				return usage();
			break;
		case '4':
			use_accept4 = 1;
			break;
		case 'r':
			recycle_after = strtoull(optarg, NULL, 10);
			if (!recycle_after)
				return usage();
			break;
		case 't':
			threads_per_worker = atoi(optarg);
			if (threads_per_worker < 1 || threads_per_worker > MAX_WORKERS)
				return usage();
			break;
		case 'k':
			respawn_killed = 1;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc || n * threads_per_worker > MAX_WORKERS ||
	    (threads_per_worker > 1 && !forked))
		return usage();

	sigemptyset(&waitset);
	sigaddset(&waitset, SIGTERM);
	sigaddset(&waitset, SIGINT);
	sigaddset(&waitset, SIGCHLD);
	sigaddset(&waitset, SIGALRM);
	sigprocmask(SIG_BLOCK, &waitset, NULL);
	alarm(LIFETIME_S);

	listener = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(listener, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(listener, BACKLOG) < 0 ||
	    getsockname(listener, (struct sockaddr *)&a, &len) < 0) {
		fprintf(stderr, "acceptpool: listener: %s\n", strerror(errno));
		return 1;
	}
	say("port %d\n", ntohs(a.sin_port));
	if (portfile && write_port_file(portfile, ntohs(a.sin_port)) < 0)
		return 1;
	return forked ? run_forked(n, &waitset) : run_threads(n, &waitset);
}
