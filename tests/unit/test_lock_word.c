/* Unit tests of the accept lock word's format (include/sockshim/layout.h,
 * layout 12): the kernel's robust futex word. What the shim and the
 * readers take for a holder, a dead holder's mark, or garbage. */
#include <linux/futex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sockshim/layout.h"

static void test_bits_are_the_kernels(void **state)
{
	(void)state;
	assert_int_equal(SOCKSHIM_LOCK_TID_MASK, FUTEX_TID_MASK);
	assert_int_equal(SOCKSHIM_LOCK_OWNER_DIED, FUTEX_OWNER_DIED);
	assert_int_equal(SOCKSHIM_LOCK_WAITERS, FUTEX_WAITERS);
}

static void test_free_and_held(void **state)
{
	(void)state;
	assert_true(sockshim_lock_valid(0));
	assert_int_equal(sockshim_lock_tid(0), 0);
	assert_true(sockshim_lock_valid(4242));
	assert_int_equal(sockshim_lock_tid(4242), 4242);
	/* Waiters sleep on it: still that holder's. */
	assert_true(sockshim_lock_valid(4242 | SOCKSHIM_LOCK_WAITERS));
	assert_int_equal(sockshim_lock_tid(4242 | SOCKSHIM_LOCK_WAITERS), 4242);
	assert_true(sockshim_lock_valid(SOCKSHIM_LOCK_TID_MAX - 1));
}

static void test_owner_died(void **state)
{
	(void)state;
	/* As handle_futex_death leaves it: no thread, FUTEX_WAITERS kept. */
	assert_true(sockshim_lock_valid(SOCKSHIM_LOCK_OWNER_DIED));
	assert_true(sockshim_lock_valid(SOCKSHIM_LOCK_OWNER_DIED | SOCKSHIM_LOCK_WAITERS));
	assert_int_equal(sockshim_lock_tid(SOCKSHIM_LOCK_OWNER_DIED | SOCKSHIM_LOCK_WAITERS), 0);
	/* The kernel never leaves a thread beside the mark. */
	assert_false(sockshim_lock_valid(SOCKSHIM_LOCK_OWNER_DIED | 4242));
}

static void test_garbage(void **state)
{
	(void)state;
	assert_false(sockshim_lock_valid(SOCKSHIM_LOCK_TID_MAX));
	assert_false(sockshim_lock_valid(0x3fffffffu));
	assert_false(sockshim_lock_valid(0xdeadbeefu));
	/* Waiters but no holder: no step of the protocol writes it. */
	assert_false(sockshim_lock_valid(SOCKSHIM_LOCK_WAITERS));
	assert_false(sockshim_lock_valid(0xffffffffu));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bits_are_the_kernels),
		cmocka_unit_test(test_free_and_held),
		cmocka_unit_test(test_owner_died),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
