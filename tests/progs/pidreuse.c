/* Gets a given pid reused: starts children that exit at once until one of
 * them is born with pid TARGET, and that one execs CMD. The children are
 * made as posix_spawn makes them (clone with CLONE_VM | CLONE_VFORK, a
 * stack of their own): no page tables to copy, and no sanitizer runtime
 * turns each into a full fork, so 100,000 of them take seconds. For the test of a
 * holder whose pid now belongs to an unrelated process.
 *
 *     pidreuse TARGET CMD [ARGS...]
 *
 * Prints "got TARGET after N forks" once CMD runs as TARGET (our child, with
 * /dev/null as stdin, stdout and stderr), waits for it to end and exits 0;
 * exits 1 when TARGET did not come round
 * within MAX_CYCLES passes over pid_max (another process took it each
 * time), 2 on an error. alarm() bounds the search. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CYCLES 3
#define DEADLINE_S 100

static long pid_max(void)
{
	FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
	long v = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%ld", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

struct child_args {
	pid_t target;
	char **cmd;
};

/* Runs in the child, on its own stack, sharing our memory until it execs
 * or exits: system calls only. */
static int child_main(void *arg)
{
	const struct child_args *a = arg;
	int null;

	if ((pid_t)syscall(SYS_getpid) != a->target)
		_exit(0);
	/* Not our caller's pipes: it waits for their end, not CMD's. */
	null = open("/dev/null", O_RDWR);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		_exit(126);
	close(null);
	execvp(a->cmd[0], a->cmd);
	_exit(127);
}

int main(int argc, char **argv)
{
	static char stack[64 * 1024] __attribute__((aligned(16)));
	struct child_args args;
	long max = pid_max(), n;
	pid_t target;

	if (argc < 3 || (target = (pid_t)atol(argv[1])) <= 1 || max <= 0) {
		fprintf(stderr, "usage: pidreuse TARGET CMD [ARGS...]\n");
		return 2;
	}
	args.target = target;
	args.cmd = argv + 2;
	alarm(DEADLINE_S);
	for (n = 1; n <= MAX_CYCLES * max; n++) {
		/* We wait until the child has exited or exec'd (CLONE_VFORK). */
		pid_t pid = clone(child_main, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD,
				  &args);

		if (pid < 0) {
			fprintf(stderr, "pidreuse: clone: %s\n", strerror(errno));
			return 2;
		}
		if (pid == target) {
			/* Stay its parent, so that someone reaps it when it ends. */
			printf("got %d after %ld forks\n", (int)pid, n);
			fflush(stdout);
			alarm(0);
			return waitpid(pid, NULL, 0) == pid ? 0 : 2;
		}
		if (waitpid(pid, NULL, 0) != pid)
			return 2;
	}
	fprintf(stderr, "pidreuse: pid %d did not come round in %ld forks\n", (int)target, n - 1);
	return 1;
}
