/* For the test programs a test drives through files: wait for one. */
#ifndef SOCKSHIM_TEST_WAITFILE_H
#define SOCKSHIM_TEST_WAITFILE_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Wait, at most WAIT_S seconds, for the file DIR/NAME the test creates;
 * without it PROG says so and exits 1. */
static inline void wait_file(const char *prog, const char *dir, const char *name, int wait_s)
{
	char path[4096];
	struct timespec tick = {0, 10 * 1000 * 1000};
	int i;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	for (i = 0; i < wait_s * 100; i++) {
		if (access(path, F_OK) == 0)
			return;
		nanosleep(&tick, NULL);
	}
	fprintf(stderr, "%s: no %s within %d s\n", prog, path, wait_s);
	exit(1);
}

#endif
