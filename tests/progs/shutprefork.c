/* shutdown() acts on the connection, not on the descriptor, with a
 * PRE-FORKED server: the parent forks a worker before any connection
 * arrives, accepts one, passes it to the worker over a Unix socket
 * (SCM_RIGHTS) and keeps its own descriptor; once the worker says it has
 * it, the parent calls shutdown(SHUT_RDWR) on it. The worker then writes
 * (EPIPE: the connection is shut for every holder) and reads (0: shut for
 * reading too, while the peer has sent nothing and not closed).
 *
 *     shutprefork ignore|nosignal|default
 *
 * The worker's SIGPIPE: "ignore" ignores it and writes with write();
 * "nosignal" keeps the default action and writes with send(MSG_NOSIGNAL);
 * "default" keeps the default action and writes with write(), which
 * SIGPIPE kills before the call returns.
 *
 * Prints "port P" (listening on 127.0.0.1), "shutdown PID LINE" (the
 * parent's pid and the source line of its shutdown call), then for
 * ignore and nosignal "child PID write EPIPE" and "child PID read 0", for
 * default "child PID killed SIGPIPE" (the parent reaped it). Both then
 * wait for a signal (alarm() bounds it), still holding the connection. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loopback.h"

#define LIFETIME_S 120

enum mode { IGNORE, NOSIGNAL, DEFAULT };

/* Send descriptor FD over the Unix socket U. */
static int send_fd(int u, int fd)
{
	char byte = 'f', ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&byte, 1};
	struct msghdr msg;
	struct cmsghdr *c;

	memset(&msg, 0, sizeof(msg));
	memset(ctl, 0, sizeof(ctl));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl;
	msg.msg_controllen = sizeof(ctl);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(u, &msg, 0) == 1 ? 0 : -1;
}

/* The descriptor received over the Unix socket U, or -1. */
static int recv_fd(int u)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&byte, 1};
	struct msghdr msg;
	struct cmsghdr *c;
	int fd;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl;
	msg.msg_controllen = sizeof(ctl);
	if (recvmsg(u, &msg, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* The worker: wait for the connection on U, say so, wait for the word,
 * write, read, say how each went. */
static void worker(int u, enum mode mode)
{
	char x = 'x', buf[16];
	ssize_t n;
	int c;

	if (mode == IGNORE)
		signal(SIGPIPE, SIG_IGN);
	c = recv_fd(u);
	if (c < 0 || write(u, "r", 1) != 1 || read(u, &x, 1) != 1)
		_exit(1);
	if (mode == NOSIGNAL)
		n = send(c, "hello\n", 6, MSG_NOSIGNAL);
	else
		n = write(c, "hello\n", 6);
	printf("child %ld write %s\n", (long)getpid(),
	       n < 0 && errno == EPIPE ? "EPIPE" : n < 0 ? strerror(errno) : "ok");
	fflush(stdout);
	n = read(c, buf, sizeof(buf));
	printf("child %ld read %s\n", (long)getpid(), n == 0 ? "0" : n < 0 ? strerror(errno) : "data");
	fflush(stdout);
	pause();
	_exit(0);
}

int main(int argc, char **argv)
{
	int l, c, u[2], line, status;
	enum mode mode;
	uint16_t port;
	pid_t child;
	char x;

	if (argc != 2 || (strcmp(argv[1], "ignore") && strcmp(argv[1], "nosignal") &&
			  strcmp(argv[1], "default"))) {
		fprintf(stderr, "usage: shutprefork ignore|nosignal|default\n");
		return 2;
	}
	mode = !strcmp(argv[1], "ignore") ? IGNORE : !strcmp(argv[1], "nosignal") ? NOSIGNAL : DEFAULT;
	alarm(LIFETIME_S);
	l = loopback_listen(0, 4, &port);
	if (l < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, u) < 0) {
		perror("shutprefork: listen");
		return 1;
	}
	child = fork();
	if (child < 0) {
		perror("shutprefork: fork");
		return 1;
	}
	if (child == 0) {
		close(u[0]);
		close(l);
		worker(u[1], mode);
	}
	close(u[1]);
	printf("port %u\n", port);
	fflush(stdout);
	c = accept(l, NULL, NULL);
	if (c < 0 || send_fd(u[0], c) < 0 || read(u[0], &x, 1) != 1) {
		perror("shutprefork: accept and pass");
		return 1;
	}
	line = __LINE__ + 1;
	if (shutdown(c, SHUT_RDWR) < 0) {
		perror("shutprefork: shutdown");
		return 1;
	}
	printf("shutdown %ld %d\n", (long)getpid(), line);
	fflush(stdout);
	if (write(u[0], "g", 1) != 1)
		return 1;
	if (mode == DEFAULT) {
		if (waitpid(child, &status, 0) != child)
			return 1;
		printf("child %ld %s %s\n", (long)child,
		       WIFSIGNALED(status) ? "killed" : "exited",
		       WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE ? "SIGPIPE" : "otherwise");
		fflush(stdout);
	}
	pause();
	kill(child, SIGTERM);
	waitpid(child, NULL, 0);
	return 0;
}
