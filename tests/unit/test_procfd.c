/* Unit tests of tools/procfd.c and tools/reconcile.c: parsing of
 * socket:[N] links and /proc/PID/stat (names with blanks and parentheses),
 * a live scan that finds a child's socket descriptors and its state, and
 * the ledger reconciled with that scan: confirmed, gone, reused pid,
 * closed descriptor, and a holder only /proc knows; a scan whose big
 * directory another thread helps to read finds the same descriptors; a
 * process that exits between the scan's open of its /proc/PID/fd and the
 * listing is gone, not a failed scan. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "procfd.h"
#include "reconcile.h"

static void test_parse_link(void **state)
{
	static const char *const bad[] = {
		"socket:[]", "socket:[12", "socket:12]", "pipe:[12]", "socket:[1a]",
		"socket:[-1]", "socket:[99999999999999999999999]", "socket:[", "", "/dev/null",
	};
	uint64_t ino = 0;
	size_t i;

	(void)state;
	assert_int_equal(procfd_parse_socket_link("socket:[12345]", 14, &ino), 0);
	assert_int_equal(ino, 12345);
	assert_int_equal(procfd_parse_socket_link("socket:[18446744073709551615]", 29, &ino), 0);
	assert_true(ino == UINT64_MAX);
	/* Only LEN bytes count: no terminator needed. */
	assert_int_equal(procfd_parse_socket_link("socket:[7]trailing", 10, &ino), 0);
	assert_int_equal(ino, 7);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(procfd_parse_socket_link(bad[i], strlen(bad[i]), &ino), -EINVAL);
}

static void test_parse_stat(void **state)
{
	static const char normal[] =
		"4242 (nginx) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
		"987654 10000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
	static const char tricky[] =
		"77 (a) b) c (d) T 5 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 31337 0 0\n";
	static const char longname[] =
		"9 (a_name_longer_than_fifteen) D 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5 0\n";
	struct procfd_stat st;

#define PARSE(s) procfd_parse_stat((s), strlen(s), &st)
	(void)state;
	assert_int_equal(procfd_parse_stat(normal, sizeof(normal) - 1, &st), 0);
	assert_string_equal(st.comm, "nginx");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 1);
	assert_int_equal(st.start_ticks, 987654);
	assert_int_equal(procfd_parse_stat(tricky, sizeof(tricky) - 1, &st), 0);
	assert_string_equal(st.comm, "a) b) c (d");
	assert_int_equal(st.state, 'T');
	assert_int_equal(st.ppid, 5);
	assert_int_equal(st.start_ticks, 31337);
	assert_int_equal(procfd_parse_stat(longname, sizeof(longname) - 1, &st), 0);
	assert_int_equal(strlen(st.comm), 15);
	assert_int_equal(st.state, 'D');
	assert_int_equal(st.start_ticks, 5);
	/* Cut before field 22, no name, a state of two letters, junk. */
	assert_int_equal(procfd_parse_stat(normal, 60, &st), -EINVAL);
	assert_int_equal(PARSE("12 nginx S 1"), -EINVAL);
	assert_int_equal(PARSE("1 (x) SS 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"), -EINVAL);
	assert_int_equal(PARSE("1 (x) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 z"), -EINVAL);
	assert_int_equal(PARSE("1 (x) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 7"), 0);
	assert_int_equal(st.start_ticks, 7);
	assert_int_equal(PARSE("1 (x"), -EINVAL);
#undef PARSE
}

/* A child holding a socket of ours as fd TARGET, waiting on a pipe. */
struct child {
	pid_t pid;
	int release; /* write end: closing it ends the child */
	uint64_t inode;
};

static void start_child(struct child *c, int target)
{
	int sv[2], p[2];
	struct stat st;
	char ch;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fstat(sv[0], &st), 0);
	c->inode = (uint64_t)st.st_ino;
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		prctl(PR_SET_NAME, "ut child", 0, 0, 0);
		if (dup2(sv[0], target) < 0)
			_exit(1);
		close(sv[0]);
		close(p[1]);
		if (write(sv[1], "r", 1) != 1)
			_exit(1);
		if (read(p[0], &ch, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[0]);
	c->release = p[1];
	/* Ready once it has its descriptor in place. */
	assert_int_equal(read(sv[0], &ch, 1), 1);
	close(sv[0]);
	close(sv[1]);
}

static void end_child(struct child *c)
{
	int status;

	close(c->release);
	kill(c->pid, SIGCONT);
	waitpid(c->pid, &status, 0);
}

static void test_live_scan(void **state)
{
	const struct procfd_ref *refs;
	const struct procfd_stat *st;
	struct procfd *p;
	struct child c;
	size_t n;

	(void)state;
	start_child(&c, 77);
	assert_int_equal(procfd_scan(&p), 0);
	refs = procfd_refs(p, c.inode, &n);
	assert_int_equal(n, 1);
	assert_int_equal(refs[0].pid, c.pid);
	assert_int_equal(refs[0].fd, 77);
	assert_int_equal(procfd_holds(p, c.pid, 77, c.inode), 1);
	assert_int_equal(procfd_holds(p, c.pid, 78, c.inode), 0);
	assert_int_equal(procfd_holds(p, c.pid, 77, c.inode + 1), 0);
	/* Ourselves: never listed (the command's own sockets are noise). */
	assert_int_equal(procfd_seen(p, getpid()), PROCFD_GONE);
	assert_int_equal(procfd_holds(p, getpid(), 0, c.inode), -ENOENT);
	assert_int_equal(procfd_seen(p, c.pid), PROCFD_FDS_OK);
	st = procfd_stat(p, c.pid);
	assert_non_null(st);
	assert_string_equal(st->comm, "ut child");
	assert_true(st->state == 'S' || st->state == 'R');
	assert_int_equal(st->ppid, getpid());
	assert_true(st->start_ticks > 0);
	assert_ptr_equal(procfd_stat(p, c.pid), st); /* read once */
	assert_null(procfd_refs(p, 1, &n));
	assert_int_equal(n, 0);
	procfd_all(p, &n);
	assert_true(n >= 1);
	procfd_free(p);

	/* Stopped: the state says so. */
	kill(c.pid, SIGSTOP);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(procfd_scan(&p), 0);
		st = procfd_stat(p, c.pid);
		if (st && st->state == 'T')
			break;
		procfd_free(p);
		p = NULL;
		usleep(5000);
	}
	assert_non_null(p);
	assert_int_equal(st->state, 'T');
	assert_true(rec_state_hung(st->state));
	procfd_free(p);
	end_child(&c);
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const struct rec_holder *holder(const struct rec_sock *rs, pid_t pid, int fd)
{
	unsigned i;

	for (i = 0; i < rs->n; i++)
		if (rs->h[i].pid == pid && rs->h[i].fd == fd)
			return &rs->h[i];
	return NULL;
}

static void test_reconcile(void **state)
{
	struct ledger_snap snap;
	struct ledger_sock ls;
	struct ledger_holder holders[SOCKSHIM_HOLDERS];
	const struct rec_holder *h;
	struct rec_sock rs = {0};
	struct procfd *p;
	struct child c, other;
	int64_t now = clock_ns(CLOCK_MONOTONIC);
	pid_t gone;
	int status;

	(void)state;
	/* A process that has exited: its pid is free. */
	gone = fork();
	if (gone == 0)
		_exit(0);
	waitpid(gone, &status, 0);
	start_child(&c, 40);
	start_child(&other, 41); /* holds another socket */

	memset(&snap, 0, sizeof(snap));
	snap.created_mono_ns = now;
	snap.created_boot_ns = clock_ns(CLOCK_BOOTTIME);
	snap.created_real_ns = clock_ns(CLOCK_REALTIME);
	memset(&ls, 0, sizeof(ls));
	ls.holders = holders;
	ls.inode = c.inode;
	ls.born = SOCKSHIM_BORN_SOCKETPAIR;
	ls.born_pid = getpid();
	ls.born_fd = 3;
	ls.born_ns = 1;
	/* Confirmed by /proc. */
	ls.holders[ls.nholders++] = (struct ledger_holder){c.pid, 40, SOCKSHIM_HOW_FORK,
							   (uint64_t)now, getpid(), 3};
	/* Exited without the shim seeing it. */
	ls.holders[ls.nholders++] = (struct ledger_holder){gone, 5, SOCKSHIM_HOW_FORK,
							   (uint64_t)now, getpid(), 3};
	/* The pid of a process started long after the record: reused. */
	ls.holders[ls.nholders++] = (struct ledger_holder){other.pid, 41, SOCKSHIM_HOW_FORK, 1000,
							   getpid(), 3};
	/* The right process, but its fd is now something else. */
	ls.holders[ls.nholders++] = (struct ledger_holder){c.pid, 9, SOCKSHIM_HOW_DUP,
							   (uint64_t)now, c.pid, 40};
	ls.refs = 4;
	assert_int_equal(procfd_scan(&p), 0);
	reconcile(&snap, &ls, p, c.inode, &rs);
	assert_int_equal(rs.n, 4);
	assert_int_equal(rs.live, 1);
	h = holder(&rs, c.pid, 40);
	assert_non_null(h);
	assert_int_equal(h->source, REC_LEDGER | REC_PROC);
	assert_false(h->stale);
	assert_string_equal(h->comm, "ut child");
	assert_string_equal(rec_source_name(h->source), "ledger+proc");
	assert_string_equal(rec_how_name(h), "fork");
	h = holder(&rs, gone, 5);
	assert_true(h->stale);
	assert_non_null(strstr(h->why, "has exited"));
	h = holder(&rs, other.pid, 41);
	assert_true(h->stale);
	assert_non_null(strstr(h->why, "another process"));
	h = holder(&rs, c.pid, 9);
	assert_true(h->stale);
	assert_non_null(strstr(h->why, "is not socket:["));

	/* Without the confirmed holder in the ledger, /proc alone knows it. */
	ls.nholders = 0;
	reconcile(&snap, &ls, p, c.inode, &rs);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.h[0].source, REC_PROC);
	assert_string_equal(rec_how_name(&rs.h[0]), "seen only in /proc");
	assert_int_equal(rs.live, 1);
	/* In a process the shim runs in, the ledger had no room for it. */
	procfd_set_shim(p, c.pid, PROCFD_SHIM_WITH);
	reconcile(&snap, &ls, p, c.inode, &rs);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.h[0].shim, PROCFD_SHIM_WITH);
	assert_string_equal(rec_how_name(&rs.h[0]), REC_NOROOM_WORDS);
	/* No ledger entry at all. */
	reconcile(NULL, NULL, p, c.inode, &rs);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.h[0].pid, c.pid);
	rec_sock_free(&rs);
	procfd_free(p);
	/* OTHER inherited C's pipe end: it goes first, or C never sees EOF. */
	end_child(&other);
	end_child(&c);
}

/* A child holding MANY_SOCKETS sockets, with a file between them, so
 * that its /proc/PID/fd is read in chunks (FDS_CHUNK in procfd.c is 256:
 * the first 256 by the scan, the next three chunks by whoever takes
 * them). */
#define MANY_SOCKETS 900
#define HELP_ROUNDS 50

struct many {
	pid_t pid;
	int release;
	int fd[MANY_SOCKETS];
	uint64_t inode[MANY_SOCKETS];
	int files[MANY_SOCKETS / 100 + 1];
	int nfiles;
};

static void start_many(struct many *m)
{
	struct rlimit rl;
	struct stat st;
	int p[2], i;
	char ch;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < MANY_SOCKETS + 64) {
		rl.rlim_cur = rl.rlim_max;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if (rl.rlim_cur < MANY_SOCKETS + 64)
		skip();
	for (i = 0; i < MANY_SOCKETS; i++) {
		m->fd[i] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		assert_true(m->fd[i] >= 0);
		assert_int_equal(fstat(m->fd[i], &st), 0);
		m->inode[i] = (uint64_t)st.st_ino;
		if (i % 100 == 50) { /* not a socket: not listed */
			m->files[m->nfiles] = open("/dev/null", O_RDONLY | O_CLOEXEC);
			assert_true(m->files[m->nfiles++] >= 0);
		}
	}
	assert_int_equal(pipe(p), 0);
	m->pid = fork();
	assert_true(m->pid >= 0);
	if (m->pid == 0) {
		close(p[1]);
		if (read(p[0], &ch, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[0]);
	m->release = p[1];
	for (i = 0; i < MANY_SOCKETS; i++)
		close(m->fd[i]);
	for (i = 0; i < m->nfiles; i++)
		close(m->files[i]);
}

/* P lists each of M's sockets once, as its descriptor, and nothing else
 * of M's. */
static void check_many(const struct procfd *p, const struct many *m)
{
	const struct procfd_ref *refs;
	size_t n, i, mine = 0;
	int k;

	assert_int_equal(procfd_seen(p, m->pid), PROCFD_FDS_OK);
	for (k = 0; k < MANY_SOCKETS; k++) {
		refs = procfd_refs(p, m->inode[k], &n);
		assert_int_equal(n, 1);
		assert_int_equal(refs[0].pid, m->pid);
		assert_int_equal(refs[0].fd, m->fd[k]);
	}
	refs = procfd_all(p, &n);
	for (i = 0; i < n; i++)
		mine += refs[i].pid == m->pid;
	assert_int_equal(mine, MANY_SOCKETS);
}

/* Under valgrind (its preload is in the environment), which runs one
 * thread at a time: a helper may never get the CPU while a scan has
 * chunks to give. */
static int under_valgrind(void)
{
	const char *pre = getenv("LD_PRELOAD");

	return pre && strstr(pre, "vgpreload") != NULL;
}

static void *help_scan(void *arg)
{
	return (void *)procfd_help(arg);
}

static void test_shared_scan(void **state)
{
	struct procfd_share *s;
	struct procfd *p;
	struct many *m = calloc(1, sizeof(*m));
	size_t helped = 0;
	int round, status;

	(void)state;
	assert_non_null(m);
	start_many(m);
	/* Alone: the chunks are the scan's own. */
	assert_int_equal(procfd_scan(&p), 0);
	check_many(p, m);
	procfd_free(p);
	/* With a helper, until it has read some (it may come too late, or
	 * find the queue empty): the same descriptors, whoever read which. */
	for (round = 0; round < HELP_ROUNDS && !helped; round++) {
		pthread_t t;
		void *got;

		assert_int_equal(procfd_share_new(&s), 0);
		assert_int_equal(pthread_create(&t, NULL, help_scan, s), 0);
		assert_int_equal(procfd_scan_shared(s, &p), 0);
		assert_int_equal(pthread_join(t, &got), 0);
		helped = (size_t)got; /* of any big directory on the host */
		check_many(p, m);
		/* Over: a helper that comes now is let go at once. */
		assert_int_equal(procfd_help(s), 0);
		procfd_free(p);
		procfd_share_free(s);
	}
	if (!helped && under_valgrind())
		print_message("under valgrind the helper read no chunk in %d rounds (one thread "
			      "runs at a time); each scan still listed every descriptor once\n",
			      HELP_ROUNDS);
	else
		assert_true(helped > 0);
	close(m->release);
	waitpid(m->pid, &status, 0);
	free(m);
}

/* A process the scan meets (the victim): killed and reaped inside the
 * scan's fdopendir of its /proc/PID/fd, after the open, before the
 * listing. 0: none. */
static pid_t victim;
static int victim_killed;

/* The scan's fdopendir (this definition wins over libc's for procfd.c,
 * linked into this program): the victim dies first if DFD is its
 * directory, then libc's fdopendir runs. */
DIR *fdopendir(int dfd)
{
	DIR *(*real_fdopendir)(int) = (DIR * (*)(int)) dlsym(RTLD_NEXT, "fdopendir");
	char path[64], link[64], want[64];
	ssize_t n;
	int status;

	if (victim) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", dfd);
		snprintf(want, sizeof(want), "/proc/%d/fd", (int)victim);
		n = readlink(path, link, sizeof(link));
		if (n > 0 && (size_t)n == strlen(want) && memcmp(link, want, (size_t)n) == 0) {
			kill(victim, SIGKILL);
			waitpid(victim, &status, 0);
			victim = 0;
			victim_killed = 1;
		}
	}
	return real_fdopendir(dfd);
}

/* A child that exits while the scan opens its descriptors: the scan
 * succeeds, the child is not among the processes (gone), and a child
 * still running is listed with its socket. */
static void test_scan_process_exits(void **state)
{
	struct many *live = calloc(1, sizeof(*live));
	struct procfd *p;
	pid_t child;
	int status;

	(void)state;
	assert_non_null(live);
	start_many(live);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	victim = child;
	victim_killed = 0;
	assert_int_equal(procfd_scan(&p), 0);
	assert_int_equal(victim_killed, 1);
	assert_int_equal(procfd_seen(p, child), PROCFD_GONE);
	assert_int_equal(procfd_seen(p, live->pid), PROCFD_FDS_OK);
	check_many(p, live);
	procfd_free(p);
	close(live->release);
	waitpid(live->pid, &status, 0);
	free(live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_link),
		cmocka_unit_test(test_parse_stat),
		cmocka_unit_test(test_live_scan),
		cmocka_unit_test(test_reconcile),
		cmocka_unit_test(test_shared_scan),
		cmocka_unit_test(test_scan_process_exits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
