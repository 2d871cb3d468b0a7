/* Unit tests of the segment guard (shim/seg_guard.c): a watched mapping
 * whose file shrinks is replaced by zero pages on its first fault, the
 * access completes, the loss is reported once; an unwatched mapping's
 * fault is not ours; a mapping is watched by its exact base, and the
 * table of watched mappings is bounded. */
#include <errno.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sockshim/seg_guard.h"

#define PAGES 4
#define PAGE 4096

/* A shared mapping of a PAGES-page temporary file, and the file. */
static char *map_file(int *fd_out)
{
	char path[] = "/tmp/test_seg_guard.XXXXXX";
	int fd = mkstemp(path);
	char *p;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(ftruncate(fd, PAGES * PAGE), 0);
	p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	*fd_out = fd;
	return p;
}

static void test_shrunk_mapping_is_replaced(void **state)
{
	int fd;
	char *p = map_file(&fd);

	(void)state;
	/* Ours, not cmocka's crash handler, for this test. */
	assert_int_equal(seg_guard_install_default(), 0);
	memset(p, 'x', PAGES * PAGE);
	assert_int_equal(seg_guard_watch(p, PAGES * PAGE, "unit"), 0);
	assert_false(seg_guard_lost(p));
	assert_int_equal(ftruncate(fd, PAGE), 0);
	/* The first page is still the file's. */
	assert_int_equal(p[10], 'x');
	/* Past the end: the handler replaces the whole mapping, the store
	 * lands in zero pages, and so does a read of the first page now. */
	p[3 * PAGE + 5] = 'y';
	assert_int_equal(p[3 * PAGE + 5], 'y');
	assert_int_equal(p[10], 0);
	assert_true(seg_guard_lost(p));
	assert_true(seg_guard_lost(NULL));
	assert_true(seg_guard_any_lost());
	assert_string_equal(seg_guard_lost_name(), "unit");
	seg_guard_unwatch(p);
	assert_false(seg_guard_lost(p));
	/* The name stays for the message, after the unwatch. */
	assert_string_equal(seg_guard_lost_name(), "unit");
	munmap(p, PAGES * PAGE);
	close(fd);
}

static void unwatched_fault(void)
{
	int fd;
	char *p = map_file(&fd);

	assert_int_equal(ftruncate(fd, 0), 0);
	p[0] = 1; /* not watched: the default action */
	_exit(0);
}

static void test_unwatched_fault_is_not_ours(void **state)
{
	pid_t pid = fork();
	int status;

	(void)state;
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL);
		if (seg_guard_install_default() < 0)
			_exit(2);
		unwatched_fault();
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGBUS);
}

static void test_fault_outside_is_not_claimed(void **state)
{
	int fd;
	char *p = map_file(&fd);

	(void)state;
	assert_int_equal(seg_guard_watch(p, PAGE, "first-page"), 0);
	/* Beyond the watched size, before it, and at an unrelated address. */
	assert_int_equal(seg_guard_fault(p + PAGE, 0), 0);
	assert_int_equal(seg_guard_fault(p - 1, 0), 0);
	assert_int_equal(seg_guard_fault(&fd, 0), 0);
	/* Unwatching needs the exact base. */
	seg_guard_unwatch(p + 1);
	assert_int_equal(seg_guard_fault(p + 100, 0), 1);
	seg_guard_unwatch(p);
	assert_int_equal(seg_guard_fault(p + 100, 0), 0);
	munmap(p, PAGES * PAGE);
	close(fd);
}

static void test_table_is_bounded(void **state)
{
	static char blocks[SEG_GUARD_MAX + 1][64];
	unsigned i;

	(void)state;
	for (i = 0; i < SEG_GUARD_MAX; i++)
		assert_int_equal(seg_guard_watch(blocks[i], 64, "b"), 0);
	assert_int_equal(seg_guard_watch(blocks[SEG_GUARD_MAX], 64, "b"), -ENOSPC);
	seg_guard_unwatch(blocks[3]);
	assert_int_equal(seg_guard_watch(blocks[SEG_GUARD_MAX], 64, "b"), 0);
	for (i = 0; i <= SEG_GUARD_MAX; i++)
		seg_guard_unwatch(blocks[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* First: the first loss names the process's message. */
		cmocka_unit_test(test_shrunk_mapping_is_replaced),
		cmocka_unit_test(test_fault_outside_is_not_claimed),
		cmocka_unit_test(test_table_is_bounded),
		cmocka_unit_test(test_unwatched_fault_is_not_ours),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
