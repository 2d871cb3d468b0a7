/* Unit tests of following an exec (shim/follow.c): which environment the
 * exec gets (what is added, replaced in place, kept, respected), that an
 * environment carrying the shim passes as the very same array, that bad
 * pointers and arrays at a page's end are read without a fault, the
 * bounds, errno left to the exec, and how the target image is judged
 * (static, a script of a static interpreter, the loader itself). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sockshim/config.h"
#include "follow.h"
#include "log.h"
#include "real.h"
#include "vfork.h"

#define LIB "/opt/sockshim/libsockshim.so"
#define MISSING "/nonexistent/prog"

/* ---- what follow.c uses from the rest of the shim ---- */

struct real_syms real = {.close = close};
int shim_inert;
int real_bound = 1;
static char said[1024];
static int said_count;

void real_bind(void)
{
}

void shim_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(said, sizeof(said), fmt, ap);
	va_end(ap);
	said_count++;
}

void shim_debug(const char *fmt, ...)
{
	(void)fmt;
}

__thread int shim_vfork_pending; /* 0: shim_in_vfork_child() is false */

int shim_vfork_child_check(void)
{
	return 0;
}

/* ---- the exec follow_exec calls ---- */

struct seen {
	char *const *env;
	enum follow_verdict verdict;
	char entries[64][256];
	int n;
	int calls;
};

static struct seen seen;

/* Keeps what it was given, then fails as exec would, with E2BIG. */
static int fake_exec(void *arg, char *const env[], enum follow_verdict v)
{
	struct seen *s = arg;

	s->calls++;
	s->env = env;
	s->verdict = v;
	s->n = 0;
	if (v != FOLLOW_UNREADABLE)
		for (; env && env[s->n] && s->n < 64; s->n++)
			snprintf(s->entries[s->n], sizeof(s->entries[0]), "%s", env[s->n]);
	errno = E2BIG;
	return -1;
}

static int follow(const char *path, char *const envp[])
{
	struct follow_target t = {path, -1, 0};
	int rc;

	memset(&seen, 0, sizeof(seen));
	errno = 0;
	rc = follow_exec(&t, envp, fake_exec, &seen);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, E2BIG);
	assert_int_equal(seen.calls, 1);
	return rc;
}

/* The environment the exec got is exactly WANT (NULL-terminated). */
static void expect_env(const char *const *want)
{
	int i;

	for (i = 0; want[i]; i++) {
		if (i >= seen.n)
			fail_msg("entry %d: missing, expected %s", i, want[i]);
		assert_string_equal(seen.entries[i], want[i]);
	}
	assert_int_equal(seen.n, i);
}

/* Session "s1", SOCKSHIM_RING_EVENTS given (4096), the rest not. */
static void setup_follow(int follow_on)
{
	struct shim_config c;

	memset(&c, 0, sizeof(c));
	snprintf(c.session, sizeof(c.session), "s1");
	c.ring_capacity = 4096;
	c.ledger_capacity = 16384;
	c.log_level = LOG_WARN;
	c.accept_mode = SOCKSHIM_ACCEPT_OBSERVE;
	c.follow = follow_on;
	c.given = (1u << CONFIG_SESSION) | (1u << CONFIG_RING_EVENTS);
	assert_int_equal(follow_setup(&c, LIB), 0);
	shim_inert = 0;
	said_count = 0;
	said[0] = 0;
}

static int setup(void **state)
{
	(void)state;
	setup_follow(1);
	return 0;
}

/* ---- the environment ---- */

static void test_follow_empty_and_null(void **state)
{
	char *empty[] = {NULL};
	const char *want[] = {"LD_PRELOAD=" LIB, "SOCKSHIM_SESSION=s1", "SOCKSHIM_RING_EVENTS=4096",
			      NULL};

	(void)state;
	follow(MISSING, empty);
	assert_int_equal(seen.verdict, FOLLOW_RESTORED);
	expect_env(want);
	follow(MISSING, NULL);
	assert_int_equal(seen.verdict, FOLLOW_RESTORED);
	expect_env(want);
	assert_int_equal(said_count, 0);
}

static void test_follow_carried_is_the_same_array(void **state)
{
	/* A session and ring of the program's choosing, respected. */
	char *env[] = {"LD_PRELOAD=" LIB, "SOCKSHIM_SESSION=zz", "SOCKSHIM_RING_EVENTS=1", NULL};
	/* Another libsockshim.so, the program's choice, counts as ours. */
	char *other[] = {"SOCKSHIM_SESSION=zz", "SOCKSHIM_RING_EVENTS=1",
			 "LD_PRELOAD=/x.so /elsewhere/libsockshim.so:y.so", NULL};

	(void)state;
	follow(MISSING, env);
	assert_ptr_equal(seen.env, env);
	assert_int_equal(seen.verdict, FOLLOW_CARRIED);
	follow(MISSING, other);
	assert_ptr_equal(seen.env, other);
}

static void test_follow_keeps_program_preload(void **state)
{
	char *env[] = {"A=1", "LD_PRELOAD=/l/a.so /l/b.so", NULL};
	const char *want[] = {"A=1", "LD_PRELOAD=" LIB ":/l/a.so /l/b.so", "SOCKSHIM_SESSION=s1",
			      "SOCKSHIM_RING_EVENTS=4096", NULL};
	char *near[] = {"LD_PRELOAD=/x/libsockshim.so.bak", "SOCKSHIM_SESSION=s1",
			"SOCKSHIM_RING_EVENTS=8", NULL};
	const char *want_near[] = {"LD_PRELOAD=" LIB ":/x/libsockshim.so.bak",
				   "SOCKSHIM_SESSION=s1", "SOCKSHIM_RING_EVENTS=8", NULL};

	(void)state;
	follow(MISSING, env);
	assert_int_equal(seen.verdict, FOLLOW_RESTORED);
	expect_env(want);
	/* The array the program passed is as it was. */
	assert_string_equal(env[1], "LD_PRELOAD=/l/a.so /l/b.so");
	assert_null(env[2]);
	follow(MISSING, near);
	expect_env(want_near);
}

static void test_follow_empty_values_replaced_in_place(void **state)
{
	char *env[] = {"LD_PRELOAD=", "SOCKSHIM_SESSION=", "B=2", "SOCKSHIM_SESSIONX=1", NULL};
	const char *want[] = {"LD_PRELOAD=" LIB,    "SOCKSHIM_SESSION=s1",
			      "B=2",                "SOCKSHIM_SESSIONX=1",
			      "SOCKSHIM_RING_EVENTS=4096", NULL};

	(void)state;
	follow(MISSING, env);
	expect_env(want);
}

static void test_follow_last_preload_is_the_loaders(void **state)
{
	/* rtld takes the last LD_PRELOAD, getenv the first SOCKSHIM_*. */
	char *env[] = {"LD_PRELOAD=" LIB, "SOCKSHIM_SESSION=s9", "LD_PRELOAD=/other.so",
		       "SOCKSHIM_SESSION=", "SOCKSHIM_RING_EVENTS=2", NULL};
	const char *want[] = {"LD_PRELOAD=" LIB,      "SOCKSHIM_SESSION=s9",
			      "LD_PRELOAD=" LIB ":/other.so", "SOCKSHIM_SESSION=",
			      "SOCKSHIM_RING_EVENTS=2", NULL};

	(void)state;
	follow(MISSING, env);
	expect_env(want);
}

static void test_follow_off_and_inert(void **state)
{
	char *empty[] = {NULL};

	(void)state;
	setup_follow(0);
	follow(MISSING, empty);
	assert_ptr_equal(seen.env, empty);
	assert_int_equal(seen.verdict, FOLLOW_OFF);
	setup_follow(1);
	shim_inert = 1;
	follow(MISSING, empty);
	assert_int_equal(seen.verdict, FOLLOW_OFF);
	shim_inert = 0;
}

static void test_follow_setup_refuses_unfit_paths(void **state)
{
	struct shim_config c;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.follow = 1;
	assert_int_equal(follow_setup(&c, "build/libsockshim.so"), -1);
	assert_int_equal(follow_setup(&c, "/a b/libsockshim.so"), -1);
	assert_int_equal(follow_setup(&c, "/a:b/libsockshim.so"), -1);
	assert_int_equal(follow_setup(&c, ""), -1);
	c.follow = 0;
	assert_int_equal(follow_setup(&c, ""), 0);
	setup_follow(1);
}

/* ---- reading without a fault ---- */

/* Two pages, the second unmapped: the address of the first's end. */
static char *page_end(void)
{
	long page = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	assert_true(p != MAP_FAILED);
	assert_int_equal(munmap(p + page, (size_t)page), 0);
	return p + page;
}

static void test_follow_reads_without_fault(void **state)
{
	volatile uintptr_t unmapped = 16;
	char *end = page_end(), *s;
	char **arr;
	char *bad[] = {"A=1", (char *)unmapped, NULL};

	(void)state;
	/* An unmapped string: passed as is, for exec's EFAULT. */
	follow(MISSING, bad);
	assert_int_equal(seen.verdict, FOLLOW_UNREADABLE);
	assert_ptr_equal(seen.env, bad);
	follow(MISSING, (char **)unmapped);
	assert_int_equal(seen.verdict, FOLLOW_UNREADABLE);

	/* An array ending on a page's last word. */
	arr = (char **)end - 2;
	arr[0] = "Z=1";
	arr[1] = NULL;
	follow(MISSING, arr);
	assert_int_equal(seen.verdict, FOLLOW_RESTORED);
	assert_int_equal(seen.n, 4);

	/* Strings ending on a page's last byte; and one that runs into
	 * the unmapped page. */
	s = end - sizeof("LD_PRELOAD=/p.so");
	memcpy(s, "LD_PRELOAD=/p.so", sizeof("LD_PRELOAD=/p.so"));
	{
		char *env[] = {s, NULL};
		const char *want[] = {"LD_PRELOAD=" LIB ":/p.so", "SOCKSHIM_SESSION=s1",
				      "SOCKSHIM_RING_EVENTS=4096", NULL};

		follow(MISSING, env);
		expect_env(want);
	}
	s = end - 5;
	memcpy(s, "SOCKS", 5); /* no NUL before the unmapped page */
	{
		char *env[] = {s, NULL};

		follow(MISSING, env);
		assert_int_equal(seen.verdict, FOLLOW_UNREADABLE);
	}
	s = end - 8;
	memcpy(s, "LD_PRELO", 8);
	{
		char *env[] = {s, NULL};

		follow(MISSING, env);
		assert_int_equal(seen.verdict, FOLLOW_UNREADABLE);
	}
}

static void test_follow_name_across_pages(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	const char *entry = "SOCKSHIM_SESSION=across";
	char *s = p + page - 9; /* the name runs into the next page */

	(void)state;
	assert_true(p != MAP_FAILED);
	memcpy(s, entry, strlen(entry) + 1);
	/* Were the name missed, SOCKSHIM_SESSION=s1 would be added. */
	{
		char *env[] = {s, "SOCKSHIM_RING_EVENTS=1", "LD_PRELOAD=" LIB, NULL};

		follow(MISSING, env);
		assert_ptr_equal(seen.env, env);
	}
	munmap(p, (size_t)page * 2);
}

/* Entries scattered over four pages in no order, some across page
 * boundaries, more than one read takes: each still judged by its name. */
static void test_follow_scattered_entries(void **state)
{
	enum { N = 300 };
	long page = sysconf(_SC_PAGESIZE);
	char *buf = mmap(NULL, (size_t)page * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	static char *env[N + 4];
	const char *ours[] = {"SOCKSHIM_RING_EVENTS=9", "LD_PRELOAD=/a.so:" LIB,
			      "SOCKSHIM_SESSION=there"};
	size_t i, at;

	(void)state;
	assert_true(buf != MAP_FAILED);
	for (i = 0; i < N; i++) {
		/* Descending, 40 bytes apart, wrapping around the pages. */
		at = ((N - i) * 40 + (i % 7) * 3) % ((size_t)page * 4 - 64);
		snprintf(buf + at, 32, "K%zu=%zu", i, i);
		env[i] = buf + at;
	}
	/* Ours across page boundaries, far apart, between the others. */
	for (i = 0; i < 3; i++) {
		char *p = buf + (size_t)page * (i + 1) - 7;

		memcpy(p, ours[i], strlen(ours[i]) + 1);
		env[N - 1 - i * 100] = p;
	}
	env[N] = NULL;
	follow(MISSING, env);
	assert_int_equal(seen.verdict, FOLLOW_CARRIED);
	assert_ptr_equal(seen.env, env);

	/* Without the session: it is added, nothing else changes. */
	env[N - 1 - 2 * 100] = "K=gone";
	follow(MISSING, env);
	assert_int_equal(seen.verdict, FOLLOW_RESTORED);
	assert_int_equal(seen.n, 64); /* what struct seen keeps */
	munmap(buf, (size_t)page * 4);
}

static void test_follow_bounds(void **state)
{
	enum { MANY = 1025 };
	static char *many[MANY + 1];
	static char long_preload[6000];
	int i;

	(void)state;
	for (i = 0; i < MANY; i++)
		many[i] = "X=1";
	many[MANY] = NULL;
	follow(MISSING, many);
	assert_int_equal(seen.verdict, FOLLOW_TOO_LARGE);
	assert_ptr_equal(seen.env, many);
	assert_int_equal(said_count, 1);
	assert_non_null(strstr(said, "too large"));
	/* 1024 entries still fit. */
	many[1024] = NULL;
	follow(MISSING, many);
	assert_int_equal(seen.verdict, FOLLOW_RESTORED);

	memset(long_preload, 'a', sizeof(long_preload) - 1);
	memcpy(long_preload, "LD_PRELOAD=/", 12);
	{
		char *env[] = {long_preload, NULL};

		follow(MISSING, env);
		assert_int_equal(seen.verdict, FOLLOW_TOO_LARGE);
	}
}

/* ---- the image ---- */

static int is_static(const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "ldd %s 2>&1 | grep -q -e 'not a dynamic executable' -e 'statically linked'",
		 path);
	return access(path, X_OK) == 0 && system(cmd) == 0;
}

static void test_follow_judges_images(void **state)
{
	char *empty[] = {NULL};
	char script[] = "/tmp/test_follow.XXXXXX";
	struct follow_target t = {"ldconfig", -1, 1};
	int fd;

	(void)state;
	if (!is_static("/sbin/ldconfig")) {
		skip();
		return;
	}
	follow("/bin/sh", empty);
	assert_int_equal(seen.verdict, FOLLOW_RESTORED);
	assert_int_equal(said_count, 0);

	follow("/sbin/ldconfig", empty);
	assert_int_equal(seen.verdict, FOLLOW_STATIC);
	assert_int_equal(seen.n, 3); /* passed on, for what it executes */
	assert_int_equal(said_count, 1);
	assert_non_null(strstr(said, "statically linked"));

	/* Found in PATH as execvp finds it; by descriptor as fexecve. */
	setenv("PATH", "/nonexistent:/sbin:/usr/sbin", 1);
	memset(&seen, 0, sizeof(seen));
	follow_exec(&t, empty, fake_exec, &seen);
	assert_int_equal(seen.verdict, FOLLOW_STATIC);
	t.path = NULL;
	t.fd = open("/sbin/ldconfig", O_RDONLY | O_CLOEXEC);
	assert_true(t.fd >= 0);
	follow_exec(&t, empty, fake_exec, &seen);
	assert_int_equal(seen.verdict, FOLLOW_STATIC);
	close(t.fd);

	/* A script: judged by its interpreter. */
	fd = mkstemp(script);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "#! /sbin/ldconfig -p\n", 21), 21);
	close(fd);
	follow(script, empty);
	assert_int_equal(seen.verdict, FOLLOW_STATIC);
	fd = open(script, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
	close(fd);
	follow(script, empty);
	assert_int_equal(seen.verdict, FOLLOW_RESTORED);
	unlink(script);

	/* The loader run as a program has no PT_INTERP, and preloads. */
	if (access("/lib64/ld-linux-x86-64.so.2", X_OK) == 0) {
		follow("/lib64/ld-linux-x86-64.so.2", empty);
		assert_int_equal(seen.verdict, FOLLOW_RESTORED);
	}
	/* A FIFO is never opened (that would block): exec says EACCES. */
	assert_int_equal(mkfifo("/tmp/test_follow.fifo", 0600) == 0 || errno == EEXIST, 1);
	follow("/tmp/test_follow.fifo", empty);
	assert_int_equal(seen.verdict, FOLLOW_RESTORED);
	unlink("/tmp/test_follow.fifo");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_follow_empty_and_null, setup),
		cmocka_unit_test_setup(test_follow_carried_is_the_same_array, setup),
		cmocka_unit_test_setup(test_follow_keeps_program_preload, setup),
		cmocka_unit_test_setup(test_follow_empty_values_replaced_in_place, setup),
		cmocka_unit_test_setup(test_follow_last_preload_is_the_loaders, setup),
		cmocka_unit_test_setup(test_follow_off_and_inert, setup),
		cmocka_unit_test_setup(test_follow_setup_refuses_unfit_paths, setup),
		cmocka_unit_test_setup(test_follow_reads_without_fault, setup),
		cmocka_unit_test_setup(test_follow_name_across_pages, setup),
		cmocka_unit_test_setup(test_follow_scattered_entries, setup),
		cmocka_unit_test_setup(test_follow_bounds, setup),
		cmocka_unit_test_setup(test_follow_judges_images, setup),
	};

	return cmocka_run_group_tests_name("follow", tests, NULL, NULL);
}
