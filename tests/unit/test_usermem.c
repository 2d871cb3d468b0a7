/* Unit tests of shim/usermem.c: the program's memory read and written
 * without a fault, errno untouched. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
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

/* Before usermem_start, nothing is known to be on the main stack. */
static void test_main_stack_unknown_before_start(void **state)
{
	int here = 0;

	(void)state;
	assert_false(usermem_on_main_stack(&here, sizeof(here)));
}

/* A caller's local on the main thread's stack is; a piece reaching past
 * the stack's top, the heap, a mapping and a static are not. */
static void test_main_stack_frames(void **state)
{
	char local[64];
	char *heap = malloc(64);
	char *m = two_pages();
	static char global[64];

	(void)state;
	usermem_start();
	memset(local, 1, sizeof(local));
	assert_true(usermem_on_main_stack(local, sizeof(local)));
	assert_true(usermem_on_main_stack(local + 8, 8));
	assert_false(usermem_on_main_stack(local, SIZE_MAX / 2));
	assert_false(usermem_on_main_stack(heap, 64));
	assert_false(usermem_on_main_stack(m, 64));
	assert_false(usermem_on_main_stack(global, sizeof(global)));
	free(heap);
	munmap(m, (size_t)page * 2);
}

static void *thread_look(void *arg)
{
	char local[64];
	int *on = arg;

	memset(local, 2, sizeof(local));
	on[0] = usermem_on_main_stack(local, sizeof(local));
	return NULL;
}

/* Another thread's own stack is not the main one. */
static void test_thread_stack_is_not(void **state)
{
	pthread_t t;
	int on[1] = {-1};

	(void)state;
	usermem_start();
	assert_int_equal(pthread_create(&t, NULL, thread_look, on), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(on[0], 0);
}

static int alt_on = -1;

static void on_alt_stack(int sig)
{
	char local[64];

	(void)sig;
	memset(local, 3, sizeof(local));
	alt_on = usermem_on_main_stack(local, sizeof(local));
}

/* A handler on an alternate signal stack is not on the main stack. */
static void test_alternate_stack_is_not(void **state)
{
	stack_t ss = {0}, old;
	struct sigaction sa = {0}, was;

	(void)state;
	usermem_start();
	ss.ss_size = 1 << 16;
	ss.ss_sp = malloc(ss.ss_size);
	assert_non_null(ss.ss_sp);
	assert_int_equal(sigaltstack(&ss, &old), 0);
	sa.sa_handler = on_alt_stack;
	sa.sa_flags = SA_ONSTACK;
	assert_int_equal(sigaction(SIGUSR1, &sa, &was), 0);
	raise(SIGUSR1);
	assert_int_equal(alt_on, 0);
	sigaction(SIGUSR1, &was, NULL);
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, NULL);
	free(ss.ss_sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_whole_or_nothing),
		cmocka_unit_test(test_readv_every_piece),
		cmocka_unit_test(test_write_needs_writable),
		cmocka_unit_test(test_main_stack_unknown_before_start),
		cmocka_unit_test(test_main_stack_frames),
		cmocka_unit_test(test_thread_stack_is_not),
		cmocka_unit_test(test_alternate_stack_is_not),
	};

	page = sysconf(_SC_PAGESIZE);
	return cmocka_run_group_tests_name("usermem", tests, NULL, NULL);
}
