/* Closes that no shim can see: sockets made through libc (so the shim
 * records them), then closed with a raw `syscall` instruction (inline
 * assembly, as a static runtime or a JIT would).
 *
 *     rawclose DIR accept N   N connections accepted on a listener, each
 *                             closed raw as soon as accepted
 *     rawclose DIR inflight   one connection accepted, sent over
 *                             SCM_RIGHTS into a socketpair nobody reads,
 *                             then its descriptor closed raw
 *     rawclose DIR unshimmed  a bound TCP socket (the kernel's sock_diag
 *                             lists no such socket) kept by a child that
 *                             execs sleep(1) without the shim, then the
 *                             parent's descriptor closed raw
 *     rawclose DIR exec PROG  a listener kept by a child that executes
 *                             PROG DIR FD (a static program: no shim)
 *
 * Prints "listener PORT" (accept, inflight), one "conn I INODE FD" per
 * accepted connection, "inflight INODE", "bound INODE CHILD_PID",
 * "child PID FD", then
 * "ready"; waits (at most WAIT_S seconds) for the file DIR/go and exits
 * 0 (killing its child), or 1 after saying which call failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "waitfile.h"

#define WAIT_S 60

static long check(long ret, const char *what)
{
	if (ret < 0) {
		fprintf(stderr, "rawclose: %s: %s\n", what, strerror(errno));
		exit(1);
	}
	return ret;
}

/* close(FD) by the instruction itself: no libc, no syscall(). */
static long raw_close(long fd)
{
	long ret;

#if defined(__x86_64__)
	__asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_close), "D"(fd) : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = SYS_close;
	register long x0 __asm__("x0") = fd;

	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8) : "memory");
	ret = x0;
#else
// cppcheck-suppress preprocessorErrorDirective
#error "rawclose: no raw system call for this architecture"
#endif
	if (ret < 0) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

static unsigned long inode_of(int fd)
{
	struct stat st;

	check(fstat(fd, &st), "fstat");
	return (unsigned long)st.st_ino;
}

static int listener(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = (int)check(socket(AF_INET, SOCK_STREAM, 0), "socket");

	check(bind(fd, (struct sockaddr *)&a, sizeof(a)), "bind");
	check(listen(fd, 128), "listen");
	check(getsockname(fd, (struct sockaddr *)&a, &len), "getsockname");
	printf("listener %u\n", ntohs(a.sin_port));
	fflush(stdout);
	return fd;
}

static void accept_n(int n)
{
	int l = listener(), i;

	for (i = 0; i < n; i++) {
		int c = (int)check(accept(l, NULL, NULL), "accept");

		printf("conn %d %lu %d\n", i, inode_of(c), c);
		fflush(stdout);
		check(raw_close(c), "raw close");
	}
}

static void inflight(void)
{
	int l = listener(), sp[2], c;
	char byte = 'x', ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {&byte, 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl)};
	struct cmsghdr *cm;

	check(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), "socketpair");
	c = (int)check(accept(l, NULL, NULL), "accept");
	memset(ctl, 0, sizeof(ctl));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &c, sizeof(int));
	check(sendmsg(sp[0], &msg, 0), "sendmsg");
	printf("inflight %lu\n", inode_of(c));
	fflush(stdout);
	check(raw_close(c), "raw close");
}

static pid_t unshimmed(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = (int)check(socket(AF_INET, SOCK_STREAM, 0), "socket");
	char *argv[] = {"sleep", "60", NULL};
	char *envp[] = {"PATH=/usr/bin:/bin", NULL}; /* no LD_PRELOAD, no session */
	pid_t child;

	check(bind(fd, (struct sockaddr *)&a, sizeof(a)), "bind");
	child = (pid_t)check(fork(), "fork");
	if (child == 0) {
		execve("/bin/sleep", argv, envp);
		_exit(127);
	}
	printf("bound %lu %d\n", inode_of(fd), (int)child);
	fflush(stdout);
	check(raw_close(fd), "raw close");
	return child;
}

static pid_t exec_child(const char *dir, const char *prog)
{
	int l = listener();
	char fd[16];
	pid_t child;

	snprintf(fd, sizeof(fd), "%d", l);
	child = (pid_t)check(fork(), "fork");
	if (child == 0) {
		execl(prog, prog, dir, fd, (char *)NULL);
		_exit(127);
	}
	printf("child %d %d\n", (int)child, l);
	fflush(stdout);
	return child;
}

int main(int argc, char **argv)
{
	pid_t child = 0;

	if (argc == 4 && !strcmp(argv[2], "accept")) {
		accept_n(atoi(argv[3]));
	} else if (argc == 3 && !strcmp(argv[2], "inflight")) {
		inflight();
	} else if (argc == 3 && !strcmp(argv[2], "unshimmed")) {
		child = unshimmed();
	} else if (argc == 4 && !strcmp(argv[2], "exec")) {
		child = exec_child(argv[1], argv[3]);
	} else {
		fprintf(stderr, "usage: rawclose DIR accept N | inflight | unshimmed | exec PROG\n");
		return 2;
	}
	printf("ready\n");
	fflush(stdout);
	wait_file("rawclose", argv[1], "go", WAIT_S);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	return 0;
}
