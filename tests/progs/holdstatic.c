/* A program built static by the tests (no loader, so no shim): it holds
 * the descriptor it is given until told to close it.
 *
 *     holdstatic DIR FD
 *
 * Waits (at most WAIT_S seconds each) for DIR/close, closes FD, creates
 * DIR/closed, then waits for DIR/go and exits 0; 1 after saying what
 * failed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define WAIT_S 60

static void wait_for(const char *dir, const char *name)
{
	char path[4096];
	struct timespec tick = {0, 10 * 1000 * 1000};
	int i;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	for (i = 0; i < WAIT_S * 100; i++) {
		if (access(path, F_OK) == 0)
			return;
		nanosleep(&tick, NULL);
	}
	fprintf(stderr, "holdstatic: no %s within %d s\n", path, WAIT_S);
	exit(1);
}

int main(int argc, char **argv)
{
	char path[4096];
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: holdstatic DIR FD\n");
		return 2;
	}
	wait_for(argv[1], "close");
	if (close(atoi(argv[2])) < 0) {
		perror("holdstatic: close");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/closed", argv[1]);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror("holdstatic: open");
		return 1;
	}
	close(fd);
	wait_for(argv[1], "go");
	return 0;
}
