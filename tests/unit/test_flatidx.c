/* Unit tests of tools/flatidx.c: every position added is found under its
 * hash, whatever the collisions (the same hash, the same slot, a probe
 * that wraps round the end of the array), positions of other hashes are
 * not returned, a replaced position is found instead of the old one, and
 * an empty or never-built index finds nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "flatidx.h"

#define N 5000

/* All the positions found under HASH, as a bitmap of N. */
static size_t found(const struct flatidx *x, uint64_t hash, unsigned char *seen)
{
	struct flatidx_walk w;
	size_t n = 0;
	uint32_t at;

	memset(seen, 0, N);
	for (at = flatidx_first(x, hash, &w); at != FLATIDX_END; at = flatidx_next(x, &w)) {
		assert_true(at < N);
		assert_false(seen[at]); /* each position once */
		seen[at] = 1;
		n++;
	}
	return n;
}

static void test_each_found_under_its_hash(void **state)
{
	static unsigned char seen[N];
	struct flatidx x;
	uint32_t i;

	(void)state;
	assert_int_equal(flatidx_init(&x, N), 0);
	for (i = 0; i < N; i++)
		flatidx_put(&x, flatidx_hash_u64(i), i);
	for (i = 0; i < N; i++) {
		assert_int_equal(found(&x, flatidx_hash_u64(i), seen), 1);
		assert_true(seen[i]);
	}
	assert_int_equal(found(&x, flatidx_hash_u64(N + 7), seen), 0);
	flatidx_free(&x);
}

static void test_collisions(void **state)
{
	static unsigned char seen[N];
	/* The same slot (low bits), other tags; then the very same hash. */
	const uint64_t slot = 5, other = (uint64_t)1 << 32 | 5, same = (uint64_t)7 << 32 | 5;
	struct flatidx x;

	(void)state;
	assert_int_equal(flatidx_init(&x, 8), 0);
	flatidx_put(&x, slot, 1);
	flatidx_put(&x, other, 2);
	flatidx_put(&x, same, 3);
	flatidx_put(&x, same, 4);
	assert_int_equal(found(&x, slot, seen), 1);
	assert_true(seen[1]);
	assert_int_equal(found(&x, other, seen), 1);
	assert_true(seen[2]);
	assert_int_equal(found(&x, same, seen), 2);
	assert_true(seen[3] && seen[4]);
	/* A probe from the last slot wraps round to the first. */
	flatidx_put(&x, x.mask, 10);
	flatidx_put(&x, x.mask, 11);
	assert_int_not_equal(x.slot[0], 0);
	assert_int_equal(found(&x, x.mask, seen), 2);
	assert_true(seen[10] && seen[11]);
	flatidx_free(&x);
}

static void test_replace(void **state)
{
	static unsigned char seen[N];
	struct flatidx_walk w;
	struct flatidx x;
	uint64_t h = flatidx_hash_bytes("key", 3);
	uint32_t at;

	(void)state;
	assert_int_equal(flatidx_init(&x, 4), 0);
	flatidx_put(&x, h, 1);
	flatidx_put(&x, h, 2);
	for (at = flatidx_first(&x, h, &w); at != 2; at = flatidx_next(&x, &w))
		assert_int_not_equal(at, FLATIDX_END);
	flatidx_replace(&x, &w, 3);
	assert_int_equal(found(&x, h, seen), 2);
	assert_true(seen[1] && seen[3] && !seen[2]);
	flatidx_free(&x);
}

static void test_empty(void **state)
{
	static unsigned char seen[N];
	struct flatidx x;

	(void)state;
	memset(&x, 0, sizeof(x)); /* never built: finds nothing */
	assert_int_equal(found(&x, 42, seen), 0);
	assert_int_equal(flatidx_init(&x, 0), 0);
	assert_int_equal(found(&x, 42, seen), 0);
	flatidx_free(&x);
}

static void test_hashes(void **state)
{
	const char a[] = "0123456789abcdef0123456789abcdef0123";
	const char b[] = "0123456789abcdef0123456789abcdef0124";

	(void)state;
	/* Every byte counts, the tail's too; the length counts. */
	assert_int_equal(flatidx_hash_bytes(a, 36), flatidx_hash_bytes(a, 36));
	assert_int_not_equal(flatidx_hash_bytes(a, 36), flatidx_hash_bytes(b, 36));
	assert_int_not_equal(flatidx_hash_bytes(a, 35), flatidx_hash_bytes(a, 36));
	assert_int_not_equal(flatidx_hash_u64(1), flatidx_hash_u64(2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_found_under_its_hash),
		cmocka_unit_test(test_collisions),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_hashes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
