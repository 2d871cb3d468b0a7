/* Unit tests of tools/shm_users.c's /proc/PID/maps line parser: which
 * lines are writable mappings of a session segment, with the file's device
 * and inode; and a live count of this process's own mapping of a file
 * under the segment prefix. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm_users.h"

static void test_parse_maps_line(void **state)
{
	static const char *const no[] = {
		/* Read-only: a reader, not a user. */
		"7f3654ef5000-7f3654ff5000 r--s 00000000 00:1b 292   /dev/shm/sockshim.0.web\n",
		/* Another file. */
		"7f3654ef5000-7f3654ff5000 rw-s 00000000 00:1b 293   /dev/shm/other.0.web\n",
		"55d4dab67000-55d4dab6c000 r-xp 00002000 fe:00 248056 /usr/bin/sleep\n",
		/* Anonymous memory: no path at all. */
		"7f3654ef5000-7f3654ff5000 rw-p 00000000 00:00 0 \n",
		"7f3654ef5000-7f3654ff5000 rw-p 00000000 00:00 0\n",
		/* Garbage and cut lines. */
		"", "\n", "7f3654ef5000-7f3654ff5000 rw-s", "x rw-s 0 zz:1b 292 /dev/shm/sockshim.0.a\n",
	};
	dev_t dev = 0;
	ino_t ino = 0;
	size_t i;

	(void)state;
	assert_int_equal(shm_users_parse_maps_line("7f3654ef5000-7f3654ff5000 rw-s 00000000 00:1b "
						   "292                        "
						   "/dev/shm/sockshim.1000.web\n",
						   &dev, &ino),
			 1);
	assert_int_equal(major(dev), 0);
	assert_int_equal(minor(dev), 0x1b);
	assert_int_equal(ino, 292);
	/* Removed while mapped: still the same file, told apart by its inode. */
	assert_int_equal(shm_users_parse_maps_line("7f3654ef5000-7f3654ff5000 rw-s 00000000 fe:01 "
						   "18446744073709551615 "
						   "/dev/shm/sockshim.0.web (deleted)\n",
						   &dev, &ino),
			 1);
	assert_int_equal(major(dev), 0xfe);
	assert_int_equal(minor(dev), 1);
	assert_true(ino == (ino_t)UINT64_MAX);
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_int_equal(shm_users_parse_maps_line(no[i], &dev, &ino), 0);
}

/* A child maps a file named like a segment, writable; the scan counts it
 * once and names it. */
static void test_count_live(void **state)
{
	char path[64];
	pid_t pids[SHM_USERS_PIDS], child;
	int fds[2], fd, st;
	char c;

	(void)state;
	snprintf(path, sizeof(path), "/dev/shm/sockshim.ut-users-%d", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	assert_int_equal(pipe(fds), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		/* Twice: a process mapping it twice is still one user. */
		void *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		close(fds[0]);
		if (p == MAP_FAILED || q == MAP_FAILED || write(fds[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(shm_users_of_path(path, pids), 1);
	assert_int_equal(pids[0], child);
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
	assert_int_equal(shm_users_of_path(path, pids), 0);
	close(fds[0]);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_maps_line),
		cmocka_unit_test(test_count_live),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
