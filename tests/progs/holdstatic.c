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

#include "waitfile.h"

#define WAIT_S 60

int main(int argc, char **argv)
{
	char path[4096];
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: holdstatic DIR FD\n");
		return 2;
	}
	wait_file("holdstatic", argv[1], "close", WAIT_S);
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
	wait_file("holdstatic", argv[1], "go", WAIT_S);
	return 0;
}
