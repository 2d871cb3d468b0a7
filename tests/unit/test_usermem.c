/* Unit tests of shim/usermem.c: the program's memory read and written
 * without a fault, errno untouched. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "usermem.h"

static long page;

/* Two pages: the first read-write, the second PROT_NONE. */
static char *two_pages(void)
{
	char *m = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(m != MAP_FAILED);
	assert_int_equal(mprotect(m + page, (size_t)page, PROT_NONE), 0);
	return m;
}

static void test_read_whole_or_nothing(void **state)
{
	char *m = two_pages(), buf[16];
	void *bad = (void *)(uintptr_t)8;

	(void)state;
	memcpy(m + page - 8, "abcdefgh", 8);
	errno = 1234;
	assert_int_equal(usermem_read(buf, m + page - 8, 8), 0);
	assert_memory_equal(buf, "abcdefgh", 8);
	/* One byte past the page: the whole piece fails. */
	assert_int_equal(usermem_read(buf, m + page - 8, 9), -1);
	assert_int_equal(usermem_read(buf, bad, 4), -1);
	assert_int_equal(errno, 1234);
	assert_int_equal(usermem_read(buf, m, 0), 0);
	munmap(m, (size_t)page * 2);
}

static void test_readv_every_piece(void **state)
{
	char *m = two_pages(), a[4], b[4];
	struct iovec local[2] = {{a, 4}, {b, 4}}, remote[2] = {{m, 4}, {m + page - 4, 4}};

	(void)state;
	memcpy(m, "1234", 4);
	memcpy(m + page - 4, "wxyz", 4);
	assert_int_equal(usermem_readv(local, remote, 2), 0);
	assert_memory_equal(a, "1234", 4);
	assert_memory_equal(b, "wxyz", 4);
	remote[1].iov_base = m + page;
	assert_int_equal(usermem_readv(local, remote, 2), -1);
	munmap(m, (size_t)page * 2);
}

static void test_write_needs_writable(void **state)
{
	char *m = two_pages();

	(void)state;
	errno = 77;
	assert_int_equal(usermem_write(m + 10, "hi", 2), 0);
	assert_memory_equal(m + 10, "hi", 2);
	assert_int_equal(usermem_write(m + page - 1, "hi", 2), -1);
	assert_int_equal(mprotect(m, (size_t)page, PROT_READ), 0);
	assert_int_equal(usermem_write(m + 10, "HI", 2), -1);
	assert_memory_equal(m + 10, "hi", 2);
	assert_int_equal(errno, 77);
	munmap(m, (size_t)page * 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_whole_or_nothing),
		cmocka_unit_test(test_readv_every_piece),
		cmocka_unit_test(test_write_needs_writable),
	};

	page = sysconf(_SC_PAGESIZE);
	return cmocka_run_group_tests_name("usermem", tests, NULL, NULL);
}
