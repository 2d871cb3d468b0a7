/* Unit tests of tools/kindex.c: the kernel's sockets found by inode, the
 * first list added winning, inode 0 never indexed, and an index that
 * grows over a second list as big as the first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kindex.h"

static struct sockdiag_sock *socks(size_t n, uint64_t first_inode)
{
	struct sockdiag_sock *v = calloc(n, sizeof(*v));
	size_t i;

	assert_non_null(v);
	for (i = 0; i < n; i++)
		v[i].inode = first_inode + i;
	return v;
}

static void test_find_and_first_wins(void **state)
{
	struct sockdiag_list a = {.n = 4}, b = {.n = 3};
	struct kindex x;

	(void)state;
	a.v = socks(a.n, 100); /* 100..103 */
	a.v[3].inode = 0;      /* in an accept queue */
	b.v = socks(b.n, 102); /* 102..104: 102 is a's */
	b.v[1].inode = 104;    /* twice in b: the first one */
	kindex_init(&x);
	assert_null(kindex_find(&x, 100));
	assert_int_equal(kindex_add(&x, &a), 0);
	assert_ptr_equal(kindex_find(&x, 100), &a.v[0]);
	assert_ptr_equal(kindex_find(&x, 102), &a.v[2]);
	assert_null(kindex_find(&x, 0));
	assert_null(kindex_find(&x, 104));
	assert_int_equal(kindex_add(&x, &b), 0);
	assert_ptr_equal(kindex_find(&x, 102), &a.v[2]);
	assert_ptr_equal(kindex_find(&x, 104), &b.v[1]);
	assert_ptr_equal(kindex_find(&x, 101), &a.v[1]);
	assert_null(kindex_find(&x, 0));
	assert_null(kindex_find(&x, 105));
	assert_int_equal(x.n, 4);
	kindex_free(&x);
	assert_null(kindex_find(&x, 100));
	free(a.v);
	free(b.v);
}

static void test_many(void **state)
{
	struct sockdiag_list a = {.n = 20000}, b = {.n = 20000};
	struct kindex x;
	size_t i;

	(void)state;
	a.v = socks(a.n, 1);
	b.v = socks(b.n, 10001); /* half of it a's */
	kindex_init(&x);
	assert_int_equal(kindex_add(&x, &a), 0);
	assert_int_equal(kindex_add(&x, &b), 0);
	assert_int_equal(x.n, 30000);
	for (i = 1; i <= 30000; i++)
		assert_ptr_equal(kindex_find(&x, i), i <= 20000 ? &a.v[i - 1] : &b.v[i - 10001]);
	assert_null(kindex_find(&x, 30001));
	kindex_free(&x);
	free(a.v);
	free(b.v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_and_first_wins),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
