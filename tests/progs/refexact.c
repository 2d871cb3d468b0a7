/* A process tree driven one command at a time, for the ledger exactness
 * test: every process ("actor") reads commands from the FIFO DIR/ID.cmd and
 * answers each with one line on DIR/ID.rep, so the test can compare the
 * ledger with /proc/PID/fd after every step.
 *
 *     refexact DIR ID
 *
 * Commands (answers "ok ..." or "err WHY"):
 *   listen                 ok FD PORT   (127.0.0.1, ephemeral port)
 *   connect PORT           ok FD
 *   socket                 ok FD        (TCP, not connected)
 *   connectfd FD PORT      connect FD to 127.0.0.1:PORT; ok
 *   accept LFD             ok FD
 *   socketpair             ok FD1 FD2   (AF_UNIX stream)
 *   file                   ok FD        (/dev/null: a descriptor no socket)
 *   dup FD | dup2 FD NEW | dup3 FD NEW (O_CLOEXEC) | dupfd FD MIN | dupfdc FD MIN
 *                          ok NEWFD
 *   tdup FD...             one thread per FD, started together: each does
 *                          dup(FD) and fcntl(FD, F_DUPFD_CLOEXEC, 40);
 *                          ok NEW... (two per FD, in order)
 *   tclose FD...           one thread per FD, started together, each closes it
 *   close FD               ok
 *   closerange LO HI       close_range(LO, HI, 0)
 *   closerangecx LO HI     close_range(LO, HI, CLOSE_RANGE_CLOEXEC)
 *   cloexec FD 0|1         fcntl F_SETFD
 *   fork ID                the child becomes actor ID (its FIFOs must exist)
 *                          and says "ready PID" on ID.rep; ok CHILDPID
 *   exec                   re-exec this program as the same actor, keeping
 *                          every descriptor without close-on-exec; the new
 *                          image says "ready PID"
 *   send SOCK FD...        sendmsg SCM_RIGHTS of FD... over SOCK; ok
 *   recv SOCK              recvmsg; ok FD...
 *   shutdown FD HOW        ok
 *   exit | _exit           ok, then exit(0) (atexit handlers run) or _exit(0)
 *
 * Children are reaped by the kernel (SIGCHLD ignored). alarm() bounds each
 * actor's life. Exit status 2 on a protocol failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "loopback.h"

/* No actor lives longer than this: the test's own limit is 120 s. */
#define LIFETIME_S 150
/* The FIFOs sit at or above this descriptor, out of the way of close_range
 * over the sockets (which the test keeps below it). */
#define FIFO_FD_MIN 200
#define MAX_ARGS 64
#define LINE_MAX_ 1024

static const char *dir;
static char self_path[PATH_MAX];
static int my_id;
static int cmd_fd = -1, rep_fd = -1;

static void reply(const char *fmt, ...)
{
	char buf[LINE_MAX_];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(rep_fd, buf, (size_t)n) != n)
		_exit(2);
}

static int open_fifo(int id, const char *kind)
{
	char path[PATH_MAX];
	int fd, hi;

	snprintf(path, sizeof(path), "%s/%d.%s", dir, id, kind);
	/* O_RDWR: never blocks on a FIFO (Linux), and keeps it open. */
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "refexact: %s: %s\n", path, strerror(errno));
		_exit(2);
	}
	hi = fcntl(fd, F_DUPFD_CLOEXEC, FIFO_FD_MIN);
	if (hi < 0)
		_exit(2);
	close(fd);
	return hi;
}

static void become(int id)
{
	if (cmd_fd >= 0)
		close(cmd_fd);
	if (rep_fd >= 0)
		close(rep_fd);
	my_id = id;
	cmd_fd = open_fifo(id, "cmd");
	rep_fd = open_fifo(id, "rep");
	alarm(LIFETIME_S);
	reply("ready %d", (int)getpid());
}

/* One line from the command FIFO, without its newline. */
static int read_line(char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		char c;
		ssize_t r = read(cmd_fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = 0;
	return 0;
}

static int num(const char *s)
{
	return s ? atoi(s) : -1;
}

/* ---- threads ---- */

struct job {
	pthread_barrier_t *start;
	int fd;
	int close; /* else dup */
	int out[2];
	int err;
};

static void *job_run(void *arg)
{
	struct job *j = arg;

	pthread_barrier_wait(j->start);
	if (j->close) {
		j->err = close(j->fd) < 0 ? errno : 0;
		return NULL;
	}
	j->out[0] = dup(j->fd);
	j->out[1] = fcntl(j->fd, F_DUPFD_CLOEXEC, 40);
	j->err = (j->out[0] < 0 || j->out[1] < 0) ? errno : 0;
	return NULL;
}

static void threads(char **argv, int argc, int closing)
{
	pthread_barrier_t start;
	pthread_t tid[MAX_ARGS];
	struct job jobs[MAX_ARGS];
	char out[LINE_MAX_] = "ok";
	int i, n = argc - 1, bad = 0;

	if (n < 1) {
		reply("err no descriptors");
		return;
	}
	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (i = 0; i < n; i++) {
		jobs[i] = (struct job){.start = &start, .fd = num(argv[i + 1]), .close = closing,
				       .out = {-1, -1}};
		if (pthread_create(&tid[i], NULL, job_run, &jobs[i]))
			_exit(2); /* the barrier would wait for ever */
	}
	for (i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		if (jobs[i].err)
			bad = jobs[i].err;
		if (!closing)
			snprintf(out + strlen(out), sizeof(out) - strlen(out), " %d %d", jobs[i].out[0],
				 jobs[i].out[1]);
	}
	pthread_barrier_destroy(&start);
	if (bad)
		reply("err %s", strerror(bad));
	else
		reply("%s", out);
}

/* ---- SCM_RIGHTS ---- */

static void do_send(int sock, char **argv, int n)
{
	int fds[MAX_ARGS] = {0}, i;
	char data = 'x';
	struct iovec iov = {&data, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_ARGS)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf};
	struct cmsghdr *c;

	for (i = 0; i < n; i++)
		fds[i] = num(argv[i]);
	memset(&u, 0, sizeof(u));
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
	if (sendmsg(sock, &msg, 0) != 1)
		reply("err sendmsg: %s", strerror(errno));
	else
		reply("ok");
}

static void do_recv(int sock)
{
	char data, out[LINE_MAX_] = "ok";
	struct iovec iov = {&data, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int) * MAX_ARGS)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c;

	if (recvmsg(sock, &msg, 0) != 1) {
		reply("err recvmsg: %s", strerror(errno));
		return;
	}
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t k, n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < n; k++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			snprintf(out + strlen(out), sizeof(out) - strlen(out), " %d", fd);
		}
	}
	reply("%s", out);
}

/* ---- the loop ---- */

static void do_exec(void)
{
	char id[16];

	snprintf(id, sizeof(id), "%d", my_id);
	/* Our FIFOs are close-on-exec; the new image opens them again. */
	execl(self_path, self_path, dir, id, (char *)NULL);
	reply("err exec: %s", strerror(errno));
}

static void do_fork(int id)
{
	pid_t pid = fork();

	if (pid < 0) {
		reply("err fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		become(id);
		return;
	}
	reply("ok %d", (int)pid);
}

static void one(char *line)
{
	char *argv[MAX_ARGS + 2], *save = NULL, *tok;
	int argc = 0, fd, sv[2];
	const char *c;

	for (tok = strtok_r(line, " ", &save); tok && argc < MAX_ARGS + 1;
	     tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	if (!argc) {
		reply("err empty");
		return;
	}
	c = argv[0];
	if (!strcmp(c, "listen")) {
		uint16_t port;

		fd = loopback_listen(0, 64, &port);
		if (fd < 0)
			reply("err listen: %s", strerror(errno));
		else
			reply("ok %d %d", fd, port);
	} else if (!strcmp(c, "connect")) {
		fd = loopback_connect((uint16_t)num(argv[1]));
		if (fd < 0)
			reply("err connect: %s", strerror(errno));
		else
			reply("ok %d", fd);
	} else if (!strcmp(c, "socket")) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			reply("err socket: %s", strerror(errno));
		else
			reply("ok %d", fd);
	} else if (!strcmp(c, "connectfd")) {
		struct sockaddr_in a;

		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons((uint16_t)num(argv[2]));
		if (connect(num(argv[1]), (struct sockaddr *)&a, sizeof(a)) < 0)
			reply("err connectfd: %s", strerror(errno));
		else
			reply("ok");
	} else if (!strcmp(c, "accept")) {
		fd = accept(num(argv[1]), NULL, NULL);
		if (fd < 0)
			reply("err accept: %s", strerror(errno));
		else
			reply("ok %d", fd);
	} else if (!strcmp(c, "socketpair")) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			reply("err socketpair: %s", strerror(errno));
		else
			reply("ok %d %d", sv[0], sv[1]);
	} else if (!strcmp(c, "file")) {
		fd = open("/dev/null", O_RDWR);
		if (fd < 0)
			reply("err open: %s", strerror(errno));
		else
			reply("ok %d", fd);
	} else if (!strcmp(c, "dup") || !strcmp(c, "dup2") || !strcmp(c, "dup3") ||
		   !strcmp(c, "dupfd") || !strcmp(c, "dupfdc")) {
		int a = num(argv[1]), b = num(argv[2]);

		if (!strcmp(c, "dup"))
			fd = dup(a);
		else if (!strcmp(c, "dup2"))
			fd = dup2(a, b);
		else if (!strcmp(c, "dup3"))
			fd = dup3(a, b, O_CLOEXEC);
		else
			fd = fcntl(a, !strcmp(c, "dupfd") ? F_DUPFD : F_DUPFD_CLOEXEC, b);
		if (fd < 0)
			reply("err %s: %s", c, strerror(errno));
		else
			reply("ok %d", fd);
	} else if (!strcmp(c, "tdup") || !strcmp(c, "tclose")) {
		threads(argv, argc, !strcmp(c, "tclose"));
	} else if (!strcmp(c, "close")) {
		if (close(num(argv[1])) < 0)
			reply("err close: %s", strerror(errno));
		else
			reply("ok");
	} else if (!strcmp(c, "closerange") || !strcmp(c, "closerangecx")) {
		if (close_range((unsigned)num(argv[1]), (unsigned)num(argv[2]),
				!strcmp(c, "closerangecx") ? CLOSE_RANGE_CLOEXEC : 0) < 0)
			reply("err close_range: %s", strerror(errno));
		else
			reply("ok");
	} else if (!strcmp(c, "cloexec")) {
		if (fcntl(num(argv[1]), F_SETFD, num(argv[2]) ? FD_CLOEXEC : 0) < 0)
			reply("err fcntl: %s", strerror(errno));
		else
			reply("ok");
	} else if (!strcmp(c, "fork")) {
		do_fork(num(argv[1]));
	} else if (!strcmp(c, "exec")) {
		do_exec();
	} else if (!strcmp(c, "send") && argc >= 3) {
		do_send(num(argv[1]), argv + 2, argc - 2);
	} else if (!strcmp(c, "recv")) {
		do_recv(num(argv[1]));
	} else if (!strcmp(c, "shutdown")) {
		if (shutdown(num(argv[1]), num(argv[2])) < 0)
			reply("err shutdown: %s", strerror(errno));
		else
			reply("ok");
	} else if (!strcmp(c, "exit")) {
		reply("ok");
		exit(0);
	} else if (!strcmp(c, "_exit")) {
		reply("ok");
		_exit(0);
	} else {
		reply("err unknown command %s", c);
	}
}

int main(int argc, char **argv)
{
	char line[LINE_MAX_];

	if (argc != 3) {
		fprintf(stderr, "usage: refexact DIR ID\n");
		return 2;
	}
	dir = argv[1];
	/* exec by the real path, so the new image keeps our name (comm). */
	{
		ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);

		if (n <= 0)
			return 2;
		self_path[n] = 0;
	}
	signal(SIGCHLD, SIG_IGN);
	become(atoi(argv[2]));
	while (read_line(line, sizeof(line)) == 0)
		one(line);
	return 2;
}
