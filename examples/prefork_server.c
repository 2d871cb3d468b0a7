/* The demo's server: a classic pre-forking TCP server. The parent binds one
 * listener on 127.0.0.1, forks N workers that all wait for it, and each
 * worker answers one line per connection, then closes.
 * How the workers wait (-m): "block" in accept() (the default), where the
 * kernel wakes one waiter per connection; or, as event-driven servers do,
 * in "poll" (poll) or "epoll" (an epoll instance of its own) on the
 * listener made non-blocking, then accept(). Those wake every waiter per
 * connection, and an accept() that finds the connection already taken
 * fails with EAGAIN: the thundering herd the demo shows.
 * With -l (leak) the first connection a worker accepts is also handed, by
 * mistake, to a helper it starts (fork + exec of sleep, without
 * close-on-exec): the worker's close then has no effect on the wire, and
 * the connection sits in CLOSE_WAIT once the client hangs up.
 * With -r the parent prints at exit what the workers counted: accepts,
 * wakeups that found nothing (EAGAIN), and their CPU time (wait4's rusage).
 * Usage: prefork_server [-w WORKERS] [-p PORT] [-f PORTFILE] [-m block|poll|epoll]
 *                       [-l] [-r] */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 64

enum wait_mode { MODE_BLOCK, MODE_POLL, MODE_EPOLL };
static const char *const mode_names[] = { "block", "poll", "epoll" };

/* What one worker counted, in a page shared with the parent: each worker
 * writes only its own slot, the parent reads them once it has reaped it. */
struct tally {
	unsigned long accepts;
	unsigned long empty; /* woken (or not waiting), accept said EAGAIN */
};

static volatile sig_atomic_t stopping;
static int leak;
static enum wait_mode mode = MODE_BLOCK;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static void serve(int conn)
{
	char buf[512], reply[128];
	ssize_t n;
	int len;

	/* Read the request line (or up to EOF). */
	n = read(conn, buf, sizeof(buf));
	if (n > 0) {
		len = snprintf(reply, sizeof(reply), "hello from worker %d\n", (int)getpid());
		if (write(conn, reply, (size_t)len) < 0)
			perror("write");
		/* Wait for the client to finish: its FIN is the peer EOF. */
		while ((n = read(conn, buf, sizeof(buf))) > 0) {
		}
	}
	close(conn);
}

/* The bug -l plants: a helper started while the connection is open
 * inherits it (no close-on-exec) and outlives the request. */
static pid_t start_leaky_helper(int conn)
{
	pid_t pid = fork();

	if (pid == 0) {
		dup2(conn, 0); /* as a helper that reads stdin would get it */
		execlp("sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Wait until the listener is readable, in poll or in this worker's own
 * epoll instance. SIGTERM is blocked except inside the wait (MASK), so one
 * that comes after the caller looked at `stopping` still ends the wait
 * with EINTR instead of being lost until the next connection. */
static int wait_readable(int lfd, int epfd, const sigset_t *mask)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	struct epoll_event ev;

	if (mode == MODE_EPOLL)
		return epoll_pwait(epfd, &ev, 1, -1, mask);
	return ppoll(&pfd, 1, NULL, mask);
}

/* One epoll instance per worker, made after the fork, as nginx's workers
 * do: each is a waiter of its own on the listener, so each is woken. */
static int worker_epoll(int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		perror("epoll");
		_exit(1);
	}
	return epfd;
}

static void worker(int lfd, struct tally *me)
{
	struct sigaction sa;
	sigset_t term, open_mask;
	pid_t helper = 0;
	int epfd = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term; /* no SA_RESTART: accept returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (mode == MODE_EPOLL)
		epfd = worker_epoll(lfd);
	if (mode != MODE_BLOCK)
		sigprocmask(SIG_BLOCK, &term, &open_mask);
	while (!stopping) {
		int conn;

		if (mode != MODE_BLOCK && wait_readable(lfd, epfd, &open_mask) < 0) {
			if (errno == EINTR)
				continue;
			perror("wait");
			_exit(1);
		}
		conn = accept(lfd, NULL, NULL);
		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* Another worker woken for the same connection took it. */
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				me->empty++;
				continue;
			}
			perror("accept");
			_exit(1);
		}
		me->accepts++;
		if (leak && !helper)
			helper = start_leaky_helper(conn);
		/* A SIGTERM while serving still interrupts a client that
		 * never finishes, as in block mode. */
		if (mode != MODE_BLOCK)
			sigprocmask(SIG_SETMASK, &open_mask, NULL);
		serve(conn);
		if (mode != MODE_BLOCK)
			sigprocmask(SIG_BLOCK, &term, NULL);
	}
	if (helper > 0) /* the demo is over: end the leak too */
		kill(helper, SIGTERM);
	_exit(0);
}

/* -r: what the workers counted, and the CPU they used from their start to
 * their end (user + system, as the kernel accounts it to each reaped
 * worker), per accepted connection. */
static void report(int workers, const struct tally *tally, const struct rusage *ru)
{
	unsigned long accepts = 0, empty = 0;
	double cpu_ms;
	int i;

	for (i = 0; i < workers; i++) {
		accepts += tally[i].accepts;
		empty += tally[i].empty;
	}
	cpu_ms = (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1e3 +
		 (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e3;
	printf("prefork_server: %d workers (%s): %lu accepts, %lu accept calls found nothing "
	       "(EAGAIN; %.2f per accept); workers' CPU %.1f ms (%.1f us per accept)\n",
	       workers, mode_names[mode], accepts, empty,
	       accepts ? (double)empty / (double)accepts : 0.0, cpu_ms,
	       accepts ? cpu_ms * 1e3 / (double)accepts : 0.0);
	fflush(stdout);
}

static int parse_mode(const char *name)
{
	int i;

	for (i = 0; i < (int)(sizeof(mode_names) / sizeof(mode_names[0])); i++) {
		if (strcmp(name, mode_names[i]) == 0) {
			mode = (enum wait_mode)i;
			return 0;
		}
	}
	fprintf(stderr, "prefork_server: -m must be block, poll or epoll, not \"%s\"\n", name);
	return -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	pid_t pids[MAX_WORKERS];
	const char *portfile = NULL;
	struct sigaction sa;
	struct rusage ru, all;
	struct tally *tally;
	int workers = 3, port = 0, lfd, one = 1, i, opt, want_report = 0;

	while ((opt = getopt(argc, argv, "w:p:f:m:lr")) != -1) {
		switch (opt) {
		case 'l': leak = 1; break;
		case 'r': want_report = 1; break;
		case 'w': workers = atoi(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 'f': portfile = optarg; break;
		case 'm':
			if (parse_mode(optarg) < 0)
				return 2;
			break;
		default:
			fprintf(stderr, "usage: %s [-w WORKERS] [-p PORT] [-f PORTFILE] "
				"[-m block|poll|epoll] [-l] [-r]\n", argv[0]);
			return 2;
		}
	}
	if (workers < 1 || workers > MAX_WORKERS) {
		fprintf(stderr, "prefork_server: -w must be 1..%d\n", MAX_WORKERS);
		return 2;
	}
	tally = mmap(NULL, sizeof(*tally) * MAX_WORKERS, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (tally == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/* Waiting in poll or epoll, a worker must not block in an accept
	 * another worker won: the listener is non-blocking for them all. */
	lfd = socket(AF_INET, SOCK_STREAM | (mode == MODE_BLOCK ? 0 : SOCK_NONBLOCK), 0);
	if (lfd < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 128) < 0) {
		perror("bind/listen");
		return 1;
	}
	getsockname(lfd, (struct sockaddr *)&sin, &len);
	for (i = 0; i < workers; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("fork");
			return 1;
		}
		if (pids[i] == 0)
			worker(lfd, &tally[i]);
	}
	/* Announce the port only once every worker is there to accept. */
	if (portfile) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", portfile);
		f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", ntohs(sin.sin_port)) < 0 || fclose(f) != 0 ||
		    rename(tmp, portfile) < 0) {
			perror(portfile);
			return 1;
		}
	} else {
		printf("%d\n", ntohs(sin.sin_port));
		fflush(stdout);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!stopping)
		pause();
	for (i = 0; i < workers; i++)
		kill(pids[i], SIGTERM);
	memset(&all, 0, sizeof(all));
	for (i = 0; i < workers; i++) {
		if (wait4(pids[i], NULL, 0, &ru) < 0)
			continue;
		timeradd(&all.ru_utime, &ru.ru_utime, &all.ru_utime);
		timeradd(&all.ru_stime, &ru.ru_stime, &all.ru_stime);
	}
	if (want_report)
		report(workers, tally, &all);
	close(lfd);
	return 0;
}
