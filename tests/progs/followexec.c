/* A preloaded program that executes another with the shim's variables
 * gone from the environment, each way a program can, for
 * tests/integration/test_follow.py.
 *
 *     followexec MODE PROG [ARGS...]
 *
 * Opens a TCP listener on 127.0.0.1 (inherited across exec), prints
 * "port PORT" and "listen FD", then executes PROG ARGS, an ARG "{fd}"
 * replaced by the listener's descriptor. MODE:
 *   keep          execve with our environment as it is
 *   empty         execve, envp {NULL}
 *   null          execve, envp NULL
 *   execle        execle with PATH and LANG only (PROG, then ARGS up to 2)
 *   nginx         execve with TZ and NGINX only, as nginx's binary upgrade
 *   preload       execve with LD_PRELOAD=$FOLLOW_OTHER (a program's own)
 *   session       execve with SOCKSHIM_SESSION=$FOLLOW_OTHER (its choice)
 *   empty-values  execve with LD_PRELOAD= and SOCKSHIM_SESSION= (empty)
 *   execv         unsetenv LD_PRELOAD and SOCKSHIM_*, then execv
 *   execvp        the same, then execvp of PROG's base name, PATH its directory
 *   execlp        the same, then execlp (ARGS up to 2)
 *   fexecve       fexecve of PROG opened, envp {NULL}
 *   vfork         vfork, the child execve with envp {NULL}; the parent
 *                 checks its environment is as before and exits as the child
 *   fail          no exec that succeeds: the failures below, each with
 *                 errno exactly as without the shim and our environment
 *                 untouched; prints "fail ok" (exit 0) or what differed
 * alarm() bounds its life. Exit status 2 on a failure of its own. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loopback.h"

#define LIFETIME_S 100
#define MAX_ARGS 32

static char *const empty_env[] = {NULL};

static void scrub(void)
{
	unsetenv("LD_PRELOAD");
	unsetenv("SOCKSHIM_SESSION");
	unsetenv("SOCKSHIM_RING_EVENTS");
	unsetenv("SOCKSHIM_MAX_SOCKETS");
	unsetenv("SOCKSHIM_ACCEPT");
	unsetenv("SOCKSHIM_LOG");
}

/* One exec that must fail with WANT: errno exact, environ and ENVP's
 * array as they were. Returns 0, or 1 with a line on stderr. */
static int expect_fail(const char *what, int rc, int want, char **environ_before,
		       const char *preload_before)
{
	const char *preload = getenv("LD_PRELOAD");
	int err = errno;

	if (rc != -1 || err != want) {
		fprintf(stderr, "followexec: %s: returned %d errno %d (%s), expected -1 errno %d\n",
			what, rc, err, strerror(err), want);
		return 1;
	}
	if (environ != environ_before ||
	    (preload_before ? !preload || strcmp(preload, preload_before) : preload != NULL)) {
		fprintf(stderr, "followexec: %s: the environment changed (LD_PRELOAD %s)\n", what,
			preload ? preload : "unset");
		return 1;
	}
	return 0;
}

static int failures(void)
{
	/* An unmapped address, hidden from the compiler's checks. */
	volatile uintptr_t unmapped = 16;
	char *argv[] = {"nothing", NULL};
	char *bad[] = {"TZ=UTC", (char *)unmapped, NULL};
	char *mine[] = {"TZ=UTC", NULL};
	char **before = environ, *preload = getenv("LD_PRELOAD"), *keep = NULL;
	long page = sysconf(_SC_PAGESIZE);
	char **edge;
	int bad_count = 0;

	if (preload)
		keep = strdup(preload);
	if (mkfifo("followexec.fifo", 0700) < 0 && errno != EEXIST) {
		perror("followexec: mkfifo");
		return 2;
	}
	/* An envp array that ends on the last word of a page, the next
	 * page unmapped: the shim must not read past its NULL. */
	edge = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	if (edge == MAP_FAILED || munmap((char *)edge + page, (size_t)page) < 0) {
		perror("followexec: mmap");
		return 2;
	}
	edge = (char **)((char *)edge + page) - 1;
	*edge = NULL;

	bad_count += expect_fail("execve of a missing file", execve("/nonexistent/x", argv, mine),
				 ENOENT, before, keep);
	bad_count += expect_fail("execve of a missing file, envp {NULL}",
				 execve("/nonexistent/x", argv, empty_env), ENOENT, before, keep);
	bad_count += expect_fail("execve of a directory", execve("/", argv, empty_env), EACCES,
				 before, keep);
	bad_count += expect_fail("execve of a FIFO", execve("followexec.fifo", argv, empty_env),
				 EACCES, before, keep);
	bad_count += expect_fail("execve with an unmapped string in envp",
				 execve("/bin/true", argv, bad), EFAULT, before, keep);
	bad_count += expect_fail("execve with an unmapped envp",
				 execve("/bin/true", argv, (char **)unmapped), EFAULT, before, keep);
	bad_count += expect_fail("execve of a missing file, envp at a page's end",
				 execve("/nonexistent/x", argv, edge), ENOENT, before, keep);
	bad_count += expect_fail("execve of an unmapped path",
				 execve((char *)unmapped, argv, empty_env), EFAULT, before, keep);
	bad_count += expect_fail("execle of a missing file",
				 execle("/nonexistent/x", "x", (char *)NULL, empty_env), ENOENT,
				 before, keep);
	bad_count += expect_fail("fexecve of a bad descriptor", fexecve(-1, argv, empty_env),
				 EINVAL, before, keep);
	scrub();
	before = environ;
	bad_count += expect_fail("execv of a missing file, no LD_PRELOAD",
				 execv("/nonexistent/x", argv), ENOENT, before, NULL);
	bad_count += expect_fail("execvp of a missing file, no LD_PRELOAD",
				 execvp("nonexistent-followexec", argv), ENOENT, before, NULL);
	bad_count += expect_fail("execvpe of a missing file",
				 execvpe("nonexistent-followexec", argv, empty_env), ENOENT, before,
				 NULL);
	unlink("followexec.fifo");
	free(keep);
	if (bad_count)
		return 1;
	printf("fail ok\n");
	return 0;
}

/* vfork, the child execs PROG with envp {NULL}; we check that our
 * environment is what it was, then exit as the child did. */
static int vfork_exec(const char *prog, char **argv)
{
	char **before = environ, *first = environ ? environ[0] : NULL;
	const char *preload = getenv("LD_PRELOAD");
	char *keep = preload ? strdup(preload) : NULL;
	int status;
	pid_t pid = vfork();

	if (pid == 0) {
		execve(prog, argv, empty_env);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		perror("followexec: vfork");
		return 2;
	}
	preload = getenv("LD_PRELOAD");
	if (environ != before || (environ && environ[0] != first) ||
	    (keep ? !preload || strcmp(preload, keep) : preload != NULL)) {
		fprintf(stderr, "followexec: the vfork child changed our environment\n");
		return 2;
	}
	printf("parent env ok\n");
	free(keep);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

int main(int argc, char **argv)
{
	char *args[MAX_ARGS + 1], fdstr[16], *base, dir[PATH_MAX];
	const char *mode, *prog, *other = getenv("FOLLOW_OTHER");
	uint16_t port;
	int lfd, i, n;

	alarm(LIFETIME_S);
	if (argc < 2) {
		fprintf(stderr, "usage: followexec MODE PROG [ARGS...]\n");
		return 2;
	}
	mode = argv[1];
	if (!strcmp(mode, "fail"))
		return failures();
	if (argc < 3 || argc - 2 > MAX_ARGS) {
		fprintf(stderr, "usage: followexec MODE PROG [ARGS...]\n");
		return 2;
	}
	prog = argv[2];
	lfd = loopback_listen(0, 128, &port);
	if (lfd < 0) {
		perror("followexec: listen");
		return 2;
	}
	snprintf(fdstr, sizeof(fdstr), "%d", lfd);
	for (n = 0, i = 2; i < argc; i++)
		args[n++] = strcmp(argv[i], "{fd}") ? argv[i] : fdstr;
	args[n] = NULL;
	printf("port %u\nlisten %d\n", (unsigned)port, lfd);
	fflush(stdout);

	if (!strcmp(mode, "keep")) {
		execve(prog, args, environ);
	} else if (!strcmp(mode, "empty")) {
		execve(prog, args, empty_env);
	} else if (!strcmp(mode, "null")) {
		execve(prog, args, NULL);
	} else if (!strcmp(mode, "execle")) {
		char *env[] = {"PATH=/usr/bin:/bin", "LANG=C", NULL};

		execle(prog, args[0], n > 1 ? args[1] : NULL, n > 2 ? args[2] : NULL,
		       n > 3 ? args[3] : NULL, (char *)NULL, env);
	} else if (!strcmp(mode, "nginx")) {
		char nginx[32], *env[] = {"TZ=UTC", nginx, NULL};

		snprintf(nginx, sizeof(nginx), "NGINX=%d;", lfd);
		execve(prog, args, env);
	} else if (!strcmp(mode, "preload") || !strcmp(mode, "session")) {
		char entry[PATH_MAX + 32], *env[] = {entry, NULL};

		snprintf(entry, sizeof(entry), "%s=%s",
			 mode[0] == 'p' ? "LD_PRELOAD" : "SOCKSHIM_SESSION", other ? other : "");
		execve(prog, args, env);
	} else if (!strcmp(mode, "empty-values")) {
		char *env[] = {"LD_PRELOAD=", "TZ=UTC", "SOCKSHIM_SESSION=", NULL};

		execve(prog, args, env);
	} else if (!strcmp(mode, "execv")) {
		scrub();
		execv(prog, args);
	} else if (!strcmp(mode, "execvp") || !strcmp(mode, "execlp")) {
		snprintf(dir, sizeof(dir), "%s", prog);
		base = basename(argv[2]);
		scrub();
		setenv("PATH", dirname(dir), 1);
		args[0] = base;
		if (mode[4] == 'v')
			execvp(base, args);
		else
			execlp(base, base, n > 1 ? args[1] : NULL, n > 2 ? args[2] : NULL,
			       n > 3 ? args[3] : NULL, (char *)NULL);
	} else if (!strcmp(mode, "fexecve")) {
		int fd = open(prog, O_RDONLY | O_CLOEXEC);

		if (fd >= 0)
			fexecve(fd, args, empty_env);
	} else if (!strcmp(mode, "vfork")) {
		return vfork_exec(prog, args);
	} else {
		fprintf(stderr, "followexec: unknown mode %s\n", mode);
		return 2;
	}
	fprintf(stderr, "followexec: exec %s (%s): %s\n", prog, mode, strerror(errno));
	return 2;
}
