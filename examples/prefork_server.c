/* The demo's server: a classic pre-forking TCP server. The parent binds one
 * listener on 127.0.0.1, forks N workers that all block in accept() on it,
 * and each worker answers one line per connection, then closes.
 * With -l (leak) the first connection a worker accepts is also handed, by
 * mistake, to a helper it starts (fork + exec of sleep, without
 * close-on-exec): the worker's close then has no effect on the wire, and
 * the connection sits in CLOSE_WAIT once the client hangs up.
 * Usage: prefork_server [-w WORKERS] [-p PORT] [-f PORTFILE] [-l] */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 64

static volatile sig_atomic_t stopping;
static int leak;

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

static void worker(int lfd)
{
	struct sigaction sa;
	pid_t helper = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term; /* no SA_RESTART: accept returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	while (!stopping) {
		int conn = accept(lfd, NULL, NULL);

		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("accept");
			_exit(1);
		}
		if (leak && !helper)
			helper = start_leaky_helper(conn);
		serve(conn);
	}
	if (helper > 0) /* the demo is over: end the leak too */
		kill(helper, SIGTERM);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	pid_t pids[MAX_WORKERS];
	const char *portfile = NULL;
	struct sigaction sa;
	int workers = 3, port = 0, lfd, one = 1, i, opt;

	while ((opt = getopt(argc, argv, "w:p:f:l")) != -1) {
		switch (opt) {
		case 'l': leak = 1; break;
		case 'w': workers = atoi(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 'f': portfile = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-w WORKERS] [-p PORT] [-f PORTFILE] [-l]\n", argv[0]);
			return 2;
		}
	}
	if (workers < 1 || workers > MAX_WORKERS) {
		fprintf(stderr, "prefork_server: -w must be 1..%d\n", MAX_WORKERS);
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
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
			worker(lfd);
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
	for (i = 0; i < workers; i++)
		waitpid(pids[i], NULL, 0);
	close(lfd);
	return 0;
}
