/* Unit tests of tools/noshim.c's reading of /proc/PID/maps text: whether
 * a process maps libsockshim.so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "noshim.h"

static void test_maps_have_shim(void **state)
{
	static const char with[] =
		"55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 1234 /usr/bin/sleep\n"
		"7f00000000-7f00001000 r-xp 00001000 08:01 99 /work/build/libsockshim.so\n";
	static const char without[] =
		"55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 1234 /usr/bin/sleep\n"
		"7f00000000-7f00001000 r-xp 00001000 08:01 98 /lib/x86_64-linux-gnu/libc.so.6\n"
		"7f10000000-7f10001000 rw-s 00000000 00:1b 292 /dev/shm/sockshim.0.web\n";

	(void)state;
	assert_true(noshim_maps_have_shim(with, strlen(with)));
	assert_false(noshim_maps_have_shim(without, strlen(without)));
	/* Cut before the name ends: not there (the reader keeps the tail of
	 * a piece for the next one). */
	assert_false(noshim_maps_have_shim(with, strlen(with) - 4));
	assert_false(noshim_maps_have_shim("", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_maps_have_shim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
