/* shutdown() acts on the connection, not on the descriptor: a parent that
 * accepted a connection and forked a child to serve it shuts it down
 * while the child still holds it.
 *
 *     shutfork
 *
 * listens on 127.0.0.1, prints "port P", accepts one connection, forks a
 * child that serves it; once the child says it is ready (a pipe), calls
 * shutdown(SHUT_RDWR) on it
 * (printing "shutdown PID LINE": its pid and the source line of the
 * call), then lets the child write: the child prints "child PID write
 * ERRNO-NAME" (EPIPE: the connection is shut for every holder). Both then
 * wait for a signal (alarm() bounds it), the child still holding it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loopback.h"

#define LIFETIME_S 120

/* One line of "WORD A B" (B left out when negative) on stdout, flushed. */
static void say(const char *word, long a, long b)
{
	if (b >= 0)
		printf("%s %ld %ld\n", word, a, b);
	else
		printf("%s %ld\n", word, a);
	fflush(stdout);
}

/* The child: say it is ready on READY, wait for the parent's word on GO,
 * write, say how it went. */
static void serve(int c, int ready, int go)
{
	char x = 'x';
	ssize_t n;

	if (write(ready, "r", 1) != 1 || read(go, &x, 1) != 1)
		_exit(1);
	n = write(c, "hello\n", 6);
	printf("child %ld write %s\n", (long)getpid(), n < 0 && errno == EPIPE ? "EPIPE"
						       : n < 0		   ? strerror(errno)
									   : "ok");
	fflush(stdout);
	pause();
	_exit(0);
}

int main(void)
{
	int l, c, go[2], ready[2], line;
	char x;
	uint16_t port;
	pid_t child;

	alarm(LIFETIME_S);
	signal(SIGPIPE, SIG_IGN);
	l = loopback_listen(0, 4, &port);
	if (l < 0 || pipe(go) < 0 || pipe(ready) < 0) {
		perror("shutfork: listen");
		return 1;
	}
	say("port", port, -1);
	c = accept(l, NULL, NULL);
	if (c < 0) {
		perror("shutfork: accept");
		return 1;
	}
	child = fork();
	if (child < 0) {
		perror("shutfork: fork");
		return 1;
	}
	if (child == 0)
		serve(c, ready[1], go[0]);
	if (read(ready[0], &x, 1) != 1)
		return 1;
	line = __LINE__ + 1;
	if (shutdown(c, SHUT_RDWR) < 0) {
		perror("shutfork: shutdown");
		return 1;
	}
	say("shutdown", getpid(), line);
	if (write(go[1], "g", 1) != 1)
		return 1;
	pause();
	kill(child, SIGTERM);
	waitpid(child, NULL, 0);
	return 0;
}
