/* Unit tests of session segments (shim/segment.c): names, creation mode,
 * and every way seg_open must refuse a file it cannot trust. Corruptions
 * are written straight into the /dev/shm file. Runs as root (chown). */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "sockshim/segment.h"

#define CAP (1u << SOCKSHIM_RING_MIN_SHIFT)

struct fixture {
	char name[64];
	char path[256];
	char why[512];
	struct seg_map m;
};

static int setup(void **state)
{
	static unsigned serial;
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->name, sizeof(f->name), "ut-seg-%d-%u", (int)getpid(), serial++);
	if (seg_path(f->path, sizeof(f->path), geteuid(), f->name)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

/* Tests remove their session themselves when they can; whatever is left
 * (a refused segment, a symlink, a FIFO) goes here. */
static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	seg_unmap(&f->m);
	rc = seg_remove(f->name);
	free(f);
	return rc == 0 || rc == -ENOENT ? 0 : -1;
}

/* Create F's session and unmap it, leaving just the file. */
static void create_file(struct fixture *f)
{
	assert_int_equal(seg_create(f->name, CAP, SOCKSHIM_LEDGER_DEFAULT, &f->m), 0);
	seg_unmap(&f->m);
}

static void put(const char *path, off_t off, const void *val, size_t len)
{
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, val, len, off), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void put32(const char *path, size_t off, uint32_t v)
{
	put(path, (off_t)off, &v, sizeof(v));
}

static void put64(const char *path, size_t off, uint64_t v)
{
	put(path, (off_t)off, &v, sizeof(v));
}

/* seg_open (read-only and writable) refuses F with RC and a reason that
 * contains WANT. */
static void expect_refused(struct fixture *f, int rc, const char *want)
{
	int writable;

	for (writable = 0; writable <= 1; writable++) {
		memset(f->why, 0, sizeof(f->why));
		assert_int_equal(seg_open(f->name, writable, &f->m, f->why, sizeof(f->why)), rc);
		assert_null(f->m.base);
		assert_int_equal(f->m.size, 0);
		assert_true(f->why[0] != 0);
		if (!strstr(f->why, want))
			fail_msg("reason \"%s\" does not say \"%s\"", f->why, want);
	}
}

/* The permissions column of /proc/self/maps for the mapping at BASE. */
static void map_perms(const void *base, char perms[5])
{
	char line[512];
	unsigned long lo, hi;
	FILE *fp = fopen("/proc/self/maps", "re");

	assert_non_null(fp);
	strcpy(perms, "none");
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 &&
		    lo == (unsigned long)base)
			break;
		strcpy(perms, "none");
	}
	fclose(fp);
}

static size_t count_tmp_files(const struct fixture *f)
{
	char pat[300];
	glob_t g;
	size_t n;

	snprintf(pat, sizeof(pat), "%s.tmp.*", f->path);
	if (glob(pat, 0, NULL, &g) != 0)
		return 0;
	n = g.gl_pathc;
	globfree(&g);
	return n;
}

static void test_segment_create_open_round_trip(void **state)
{
	struct fixture *f = *state;
	const struct sockshim_header *h;
	struct seg_map ro;
	struct stat st;

	assert_int_equal(seg_create(f->name, CAP, SOCKSHIM_LEDGER_DEFAULT, &f->m), 0);
	assert_non_null(f->m.base);
	assert_int_equal(f->m.size, sockshim_segment_size(CAP, SOCKSHIM_LEDGER_DEFAULT));
	assert_int_equal(f->m.ring_capacity, CAP);
	assert_int_equal(f->m.ring_offset, sizeof(struct sockshim_header));
	assert_int_equal(f->m.writable, 1);
	h = seg_header(&f->m);
	assert_int_equal(h->magic, SOCKSHIM_MAGIC);
	assert_int_equal(h->layout_version, SOCKSHIM_LAYOUT_VERSION);
	assert_int_equal(h->header_size, sizeof(struct sockshim_header));
	assert_int_equal(h->segment_size, sockshim_segment_size(CAP, SOCKSHIM_LEDGER_DEFAULT));
	assert_int_equal(h->ring_offset, sizeof(struct sockshim_header));
	assert_int_equal(h->ring_capacity, CAP);
	assert_int_equal(h->record_size, sizeof(struct sockshim_record));
	assert_int_equal(h->creator_pid, getpid());
	assert_int_equal(h->creator_uid, geteuid());
	assert_string_equal(h->session, f->name);
	assert_true(h->created_realtime_ns > 0 && h->created_monotonic_ns > 0);
	assert_int_equal(h->ring_head, 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, sockshim_segment_size(CAP, SOCKSHIM_LEDGER_DEFAULT));
	assert_int_equal(count_tmp_files(f), 0);

	/* The opened mapping is the same memory, geometry validated. */
	seg_header(&f->m)->attaches = 41;
	seg_ring(&f->m)[CAP - 1].pid = 1234;
	assert_int_equal(seg_open(f->name, 0, &ro, f->why, sizeof(f->why)), 0);
	assert_int_equal(ro.size, sockshim_segment_size(CAP, SOCKSHIM_LEDGER_DEFAULT));
	assert_int_equal(ro.ring_capacity, CAP);
	assert_int_equal(ro.ring_offset, sizeof(struct sockshim_header));
	assert_int_equal(ro.writable, 0);
	assert_int_equal(seg_header(&ro)->attaches, 41);
	assert_int_equal(seg_ring(&ro)[CAP - 1].pid, 1234);
	assert_string_equal(seg_header(&ro)->session, f->name);
	seg_unmap(&ro);
	assert_null(ro.base);

	seg_unmap(&f->m);
	assert_int_equal(seg_remove(f->name), 0);
	assert_int_equal(stat(f->path, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(seg_remove(f->name), -ENOENT);
	assert_int_equal(seg_open(f->name, 0, &f->m, f->why, sizeof(f->why)), -ENOENT);
	assert_non_null(strstr(f->why, f->path));
}

static void check_mode_under_umask(struct fixture *f, mode_t mask)
{
	struct stat st;
	mode_t old = umask(mask);
	int rc = seg_create(f->name, CAP, SOCKSHIM_LEDGER_DEFAULT, &f->m);

	umask(old);
	assert_int_equal(rc, 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	seg_unmap(&f->m);
	assert_int_equal(seg_remove(f->name), 0);
}

static void test_segment_mode_0600_with_umask_077(void **state)
{
	check_mode_under_umask(*state, 077);
}

static void test_segment_mode_0600_with_umask_0(void **state)
{
	check_mode_under_umask(*state, 0);
}

static void test_segment_create_existing_is_eexist(void **state)
{
	struct fixture *f = *state;
	struct seg_map again;
	struct stat before, after;

	create_file(f);
	assert_int_equal(stat(f->path, &before), 0);
	assert_int_equal(seg_create(f->name, CAP, SOCKSHIM_LEDGER_DEFAULT, &again), -EEXIST);
	assert_null(again.base);
	assert_int_equal(seg_create(f->name, 2 * CAP, SOCKSHIM_LEDGER_DEFAULT, &again), -EEXIST);
	/* The existing segment is untouched, no temporary file is left. */
	assert_int_equal(stat(f->path, &after), 0);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(after.st_size, sockshim_segment_size(CAP, SOCKSHIM_LEDGER_DEFAULT));
	assert_int_equal(count_tmp_files(f), 0);
	assert_int_equal(seg_open(f->name, 0, &f->m, f->why, sizeof(f->why)), 0);
	assert_int_equal(f->m.ring_capacity, CAP);
}

static void test_segment_invalid_names(void **state)
{
	struct fixture *f = *state;
	char longest[SOCKSHIM_SESSION_MAX + 1], too_long[SOCKSHIM_SESSION_MAX + 2];
	const char *bad[] = { "", ".", "..", ".hidden", "a/b", "/x", "../x", "a b", " a",
			      "a\tb", "tab\n", "na*me", "ü", too_long };
	struct seg_map m;
	size_t i;

	memset(too_long, 'x', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = 0;
	assert_int_equal(seg_name_check(NULL), -EINVAL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(seg_name_check(bad[i]), -EINVAL);
		assert_int_equal(seg_create(bad[i], CAP, SOCKSHIM_LEDGER_DEFAULT, &m), -EINVAL);
		assert_null(m.base);
		f->why[0] = 0;
		assert_int_equal(seg_open(bad[i], 0, &m, f->why, sizeof(f->why)), -EINVAL);
		assert_non_null(strstr(f->why, "not a valid session name"));
		assert_int_equal(seg_remove(bad[i]), -EINVAL);
	}
	/* The edges that are valid. */
	assert_int_equal(seg_name_check("a"), 0);
	assert_int_equal(seg_name_check("a.b-c_D9"), 0);
	assert_int_equal(seg_name_check("-x"), 0);
	assert_int_equal(seg_name_check("x."), 0);
	/* The longest name, SOCKSHIM_SESSION_MAX characters, works end to end. */
	snprintf(longest, sizeof(longest), "%.40s-", f->name);
	memset(longest + strlen(longest), 'y', sizeof(longest) - 1 - strlen(longest));
	longest[sizeof(longest) - 1] = 0;
	assert_int_equal(strlen(longest), SOCKSHIM_SESSION_MAX);
	assert_int_equal(seg_name_check(longest), 0);
	assert_int_equal(seg_create(longest, CAP, SOCKSHIM_LEDGER_DEFAULT, &m), 0);
	assert_string_equal(seg_header(&m)->session, longest);
	seg_unmap(&m);
	assert_int_equal(seg_open(longest, 0, &m, f->why, sizeof(f->why)), 0);
	seg_unmap(&m);
	assert_int_equal(seg_remove(longest), 0);
}

/* Valid names, "default" first, are their own session: mapped unchanged. */
static void test_segment_name_map_keeps_valid(void **state)
{
	char longest[SOCKSHIM_SESSION_MAX + 1], out[SEG_NAME_BUF];
	const char *good[] = { "default", "a", "web-1", "a.b-c_D9", "-x", "x.", "_",
			       "my_app-x71c67543", longest };
	size_t i;

	(void)state;
	memset(longest, 'L', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = 0;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(out, 0x5a, sizeof(out));
		assert_int_equal(seg_name_map(good[i], out), 0);
		assert_string_equal(out, good[i]);
	}
}

/* The tricky invalid names: each maps to a valid name of the form
 * PREFIX-xHHHHHHHH, the same every time, never "default", never one of
 * the valid names above, and no two of them alike. */
static void test_segment_name_map_invalid(void **state)
{
	char long49[SOCKSHIM_SESSION_MAX + 2], long49b[SOCKSHIM_SESSION_MAX + 2];
	char long200[201], dots38[40];
	const char *bad[] = {
		"",		/* empty: nothing to keep */
		"\xff\xfe\x80", /* all invalid bytes */
		"\x01",
		" ",
		"  ",		/* the same kept characters as " ", another hash */
		".",
		"..",
		".hidden",	/* a leading '.' */
		"_hidden",	/* valid: listed to show ".hidden" does not meet it */
		"my app",
		"my  app",	/* runs of invalid bytes become one '_' */
		"my\tapp",
		"my/app",
		"../x",
		"default ",	/* "default" with a bad byte appended */
		"default\xff",
		"default\n",
		" default",
		"\x1b[31mred\x1b[0m",
		"caf\xc3\xa9",	/* UTF-8 is not in the set either */
		long49,		/* longer than SOCKSHIM_SESSION_MAX */
		long49b,	/* the same first 38 characters, another end */
		long200,
		dots38,
	};
	const size_t n = sizeof(bad) / sizeof(bad[0]);
	char out[sizeof(bad) / sizeof(bad[0])][SEG_NAME_BUF], again[SEG_NAME_BUF];
	size_t i, j, len;

	(void)state;
	memset(long49, 'q', sizeof(long49) - 1);
	long49[sizeof(long49) - 1] = 0;
	memcpy(long49b, long49, sizeof(long49b));
	long49b[sizeof(long49b) - 2] = 'r';
	memset(long200, 'z', sizeof(long200) - 1);
	long200[sizeof(long200) - 1] = 0;
	memset(dots38, '.', sizeof(dots38) - 1);
	dots38[sizeof(dots38) - 1] = 0;
	for (i = 0; i < n; i++) {
		int expect = seg_name_check(bad[i]) ? 1 : 0;

		assert_int_equal(seg_name_map(bad[i], out[i]), expect);
		if (!expect)
			continue; /* "_hidden" */
		/* Valid, and marked: "-x" and 8 lower-case hex digits. */
		assert_int_equal(seg_name_check(out[i]), 0);
		len = strlen(out[i]);
		assert_true(len >= 11 && len <= SOCKSHIM_SESSION_MAX);
		assert_int_equal(strncmp(out[i] + len - 10, "-x", 2), 0);
		for (j = len - 8; j < len; j++)
			assert_non_null(strchr("0123456789abcdef", out[i][j]));
		assert_string_not_equal(out[i], SOCKSHIM_DEFAULT_SESSION);
		/* Deterministic, and a fixed point: the mapped name maps to itself. */
		assert_int_equal(seg_name_map(bad[i], again), 1);
		assert_string_equal(again, out[i]);
		assert_int_equal(seg_name_map(out[i], again), 0);
		assert_string_equal(again, out[i]);
	}
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (!strcmp(out[i], out[j]))
				fail_msg("\"%s\" and \"%s\" both map to %s", bad[i], bad[j], out[i]);
	/* The kept characters, as the header says. */
	assert_int_equal(strncmp(out[9], "my_app-x", 8), 0);
	assert_int_equal(strncmp(out[10], "my_app-x", 8), 0);
	assert_int_equal(strncmp(out[7], "_hidden-x", 9), 0);
	assert_int_equal(strncmp(out[0], "_-x", 3), 0);
	assert_int_equal(strncmp(out[1], "_-x", 3), 0);
	assert_int_equal(strncmp(out[14], "default_-x", 10), 0);
	assert_int_equal(strlen(out[20]), SOCKSHIM_SESSION_MAX);
	assert_int_equal(strncmp(out[20], long49, SOCKSHIM_SESSION_MAX - 10), 0);
	assert_int_equal(strncmp(out[23], "_..", 3), 0);
}

/* The mapping is part of the interface between a shim and a command of
 * another build: the same input must give the same name in every version.
 * A NUL ends a name (an environment variable or an argument cannot hold
 * one), and NULL counts as "". */
static void test_segment_name_map_stable(void **state)
{
	char out[SEG_NAME_BUF], empty[SEG_NAME_BUF];

	(void)state;
	assert_int_equal(seg_name_map("my app", out), 1);
	assert_string_equal(out, "my_app-x71c67543");
	assert_int_equal(seg_name_map("my app\0ignored", out), 1);
	assert_string_equal(out, "my_app-x71c67543");
	assert_int_equal(seg_name_map("", empty), 1);
	assert_int_equal(seg_name_map(NULL, out), 1);
	assert_string_equal(out, empty);
}

static void test_segment_invalid_capacity(void **state)
{
	struct fixture *f = *state;
	const uint32_t bad[] = { 0, 1, 1000, CAP / 2, CAP + 1, 3 * CAP,
				 1u << (SOCKSHIM_RING_MAX_SHIFT + 1), UINT32_MAX };
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(seg_create(f->name, bad[i], SOCKSHIM_LEDGER_DEFAULT, &f->m), -EINVAL);
		assert_null(f->m.base);
		assert_int_equal(stat(f->path, &st), -1);
	}
	assert_int_equal(count_tmp_files(f), 0);
}

static void test_segment_path(void **state)
{
	char buf[64], tiny[16];

	(void)state;
	assert_int_equal(seg_path(buf, sizeof(buf), 1000, "web"), 0);
	assert_string_equal(buf, "/dev/shm/sockshim.1000.web");
	assert_int_equal(seg_path(tiny, sizeof(tiny), 1000, "web"), -ENAMETOOLONG);
}

/* Headers another process may have scribbled on. */
static void test_segment_bad_magic(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	put64(f->path, offsetof(struct sockshim_header, magic), SOCKSHIM_MAGIC ^ 1);
	expect_refused(f, -EPROTO, "bad magic");
}

static void test_segment_other_layout_version(void **state)
{
	struct fixture *f = *state;
	char want[64];

	create_file(f);
	put32(f->path, offsetof(struct sockshim_header, layout_version),
	      SOCKSHIM_LAYOUT_VERSION + 1);
	snprintf(want, sizeof(want), "layout version is %u", SOCKSHIM_LAYOUT_VERSION + 1);
	expect_refused(f, -EPROTO, want);
}

static void test_segment_wrong_record_size(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	put32(f->path, offsetof(struct sockshim_header, record_size), 64);
	expect_refused(f, -EPROTO, "corrupt");
}

static void test_segment_wrong_header_size(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	put32(f->path, offsetof(struct sockshim_header, header_size), 256);
	expect_refused(f, -EPROTO, "corrupt");
}

static void test_segment_wrong_ring_offset(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	put64(f->path, offsetof(struct sockshim_header, ring_offset),
	      sizeof(struct sockshim_header) + 64);
	expect_refused(f, -EPROTO, "corrupt");
}

/* Not a power of two, with a segment_size that agrees with it, so only
 * the power-of-two check can refuse it. */
static void test_segment_capacity_not_power_of_two(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	put32(f->path, offsetof(struct sockshim_header, ring_capacity), CAP - 24);
	put64(f->path, offsetof(struct sockshim_header, segment_size),
	      sockshim_segment_size(CAP - 24, SOCKSHIM_LEDGER_DEFAULT));
	expect_refused(f, -EPROTO, "corrupt");
}

static void test_segment_capacity_out_of_range(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	put32(f->path, offsetof(struct sockshim_header, ring_capacity), CAP / 2);
	put64(f->path, offsetof(struct sockshim_header, segment_size),
	      sockshim_segment_size(CAP / 2, SOCKSHIM_LEDGER_DEFAULT));
	expect_refused(f, -EPROTO, "corrupt");
}

/* A consistent header for a ring twice the file's: only the comparison
 * with the mapped size can refuse it. */
static void test_segment_size_larger_than_file(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	put32(f->path, offsetof(struct sockshim_header, ring_capacity), 2 * CAP);
	put64(f->path, offsetof(struct sockshim_header, ledger_offset), sockshim_ledger_offset(2 * CAP));
	put64(f->path, offsetof(struct sockshim_header, segment_size),
	      sockshim_segment_size(2 * CAP, SOCKSHIM_LEDGER_DEFAULT));
	expect_refused(f, -EPROTO, "corrupt");
}

static void test_segment_size_inconsistent(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	put64(f->path, offsetof(struct sockshim_header, segment_size),
	      sockshim_segment_size(CAP, SOCKSHIM_LEDGER_DEFAULT) - 128);
	expect_refused(f, -EPROTO, "corrupt");
}

static void truncate_to(const struct fixture *f, off_t size)
{
	int fd = open(f->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	assert_int_equal(close(fd), 0);
}

static void test_segment_truncated_file(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	/* Header intact, last record cut off. */
	truncate_to(f, (off_t)sockshim_segment_size(CAP, SOCKSHIM_LEDGER_DEFAULT) - 1);
	expect_refused(f, -EPROTO, "truncated");
	/* Not even a header. */
	truncate_to(f, (off_t)sizeof(struct sockshim_header) - 1);
	expect_refused(f, -EPROTO, "impossible size");
	truncate_to(f, 0);
	expect_refused(f, -EPROTO, "impossible size");
}

static void test_segment_oversized_file(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	truncate_to(f, (off_t)sockshim_segment_size(1u << SOCKSHIM_RING_MAX_SHIFT,
						     1u << SOCKSHIM_LEDGER_MAX_SHIFT) + 1);
	expect_refused(f, -EPROTO, "impossible size");
}

/* seg_validate against the mapped size it is given. */
static void test_segment_validate_checks_mapped_size(void **state)
{
	struct fixture *f = *state;
	struct seg_map v;

	assert_int_equal(seg_create(f->name, CAP, SOCKSHIM_LEDGER_DEFAULT, &f->m), 0);
	v = f->m;
	v.ring_capacity = 0;
	v.ring_offset = 0;
	assert_int_equal(seg_validate(&v, f->why, sizeof(f->why)), 0);
	assert_int_equal(v.ring_capacity, CAP);
	assert_int_equal(v.ring_offset, sizeof(struct sockshim_header));
	v.size = f->m.size - 1;
	assert_int_equal(seg_validate(&v, f->why, sizeof(f->why)), -EPROTO);
	assert_non_null(strstr(f->why, "truncated"));
	v.size = sizeof(struct sockshim_header) - 1;
	assert_int_equal(seg_validate(&v, f->why, sizeof(f->why)), -EPROTO);
	assert_non_null(strstr(f->why, "smaller than a header"));
	/* No reason buffer is fine too. */
	assert_int_equal(seg_validate(&v, NULL, 0), -EPROTO);
}

static void test_segment_wrong_mode_is_eperm(void **state)
{
	struct fixture *f = *state;

	create_file(f);
	assert_int_equal(chmod(f->path, 0644), 0);
	expect_refused(f, -EPERM, "mode 0644");
	assert_int_equal(chmod(f->path, 0640), 0);
	expect_refused(f, -EPERM, "mode 0640");
	assert_int_equal(chmod(f->path, 0400), 0);
	expect_refused(f, -EPERM, "mode 0400");
	/* Back to 0600, it opens again: the refusal was the mode. */
	assert_int_equal(chmod(f->path, 0600), 0);
	assert_int_equal(seg_open(f->name, 0, &f->m, f->why, sizeof(f->why)), 0);
}

static void test_segment_other_owner_is_eperm(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(geteuid(), 0); /* chown needs root */
	create_file(f);
	assert_int_equal(chown(f->path, 65534, 65534), 0);
	expect_refused(f, -EPERM, "belongs to uid 65534");
	assert_int_equal(chown(f->path, 0, 0), 0);
	assert_int_equal(seg_open(f->name, 0, &f->m, f->why, sizeof(f->why)), 0);
}

static void test_segment_symlink_refused(void **state)
{
	struct fixture *f = *state;
	char target_name[64], target_path[256], dangling[256];
	struct seg_map t;
	struct stat st;

	/* A valid segment, and our session's name a symlink to it. */
	snprintf(target_name, sizeof(target_name), "%.40s-target", f->name);
	assert_int_equal(seg_create(target_name, CAP, SOCKSHIM_LEDGER_DEFAULT, &t), 0);
	seg_unmap(&t);
	assert_int_equal(seg_path(target_path, sizeof(target_path), geteuid(), target_name), 0);
	assert_int_equal(symlink(target_path, f->path), 0);
	memset(f->why, 0, sizeof(f->why));
	assert_int_equal(seg_open(f->name, 0, &f->m, f->why, sizeof(f->why)), -ELOOP);
	assert_null(f->m.base);
	assert_true(f->why[0] != 0);
	assert_int_equal(seg_open(f->name, 1, &f->m, f->why, sizeof(f->why)), -ELOOP);
	assert_int_equal(seg_remove(target_name), 0);

	/* A dangling symlink: seg_create must not create its target. */
	assert_int_equal(unlink(f->path), 0);
	snprintf(dangling, sizeof(dangling), "/tmp/ut-seg-%d-dangling", (int)getpid());
	unlink(dangling);
	assert_int_equal(symlink(dangling, f->path), 0);
	assert_int_equal(seg_create(f->name, CAP, SOCKSHIM_LEDGER_DEFAULT, &f->m), -EEXIST);
	assert_int_equal(lstat(dangling, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(count_tmp_files(f), 0);
	/* seg_remove removes the link itself. */
	assert_int_equal(seg_remove(f->name), 0);
	assert_int_equal(lstat(f->path, &st), -1);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* A FIFO in the session's place (anyone can make one in /dev/shm): a
 * read-only open must not block waiting for a writer. An alarm turns a
 * hang into a failure with -EINTR. */
static void test_segment_fifo_refused_without_blocking(void **state)
{
	struct fixture *f = *state;
	struct sigaction sa, old;
	int writable, rc;

	assert_int_equal(mkfifo(f->path, 0600), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: open fails with EINTR */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	for (writable = 0; writable <= 1; writable++) {
		alarm(2);
		rc = seg_open(f->name, writable, &f->m, f->why, sizeof(f->why));
		alarm(0);
		assert_int_equal(rc, -EPROTO);
		assert_non_null(strstr(f->why, "not a regular file"));
	}
	assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
}

static void test_segment_directory_refused(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(mkdir(f->path, 0700), 0);
	assert_int_equal(seg_open(f->name, 0, &f->m, f->why, sizeof(f->why)), -EPROTO);
	assert_non_null(strstr(f->why, "not a regular file"));
	assert_int_equal(seg_open(f->name, 1, &f->m, f->why, sizeof(f->why)), -EISDIR);
	assert_int_equal(rmdir(f->path), 0);
}

static void test_segment_read_only_mapping(void **state)
{
	struct fixture *f = *state;
	struct seg_map rw;
	char perms[5];

	create_file(f);
	assert_int_equal(seg_open(f->name, 0, &f->m, f->why, sizeof(f->why)), 0);
	assert_int_equal(f->m.writable, 0);
	map_perms(f->m.base, perms);
	assert_string_equal(perms, "r--s");
	assert_int_equal(seg_open(f->name, 1, &rw, f->why, sizeof(f->why)), 0);
	assert_int_equal(rw.writable, 1);
	map_perms(rw.base, perms);
	assert_string_equal(perms, "rw-s");
	seg_unmap(&rw);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_segment_create_open_round_trip),
		T(test_segment_mode_0600_with_umask_077),
		T(test_segment_mode_0600_with_umask_0),
		T(test_segment_create_existing_is_eexist),
		T(test_segment_invalid_names),
		T(test_segment_name_map_keeps_valid),
		T(test_segment_name_map_invalid),
		T(test_segment_name_map_stable),
		T(test_segment_invalid_capacity),
		T(test_segment_path),
		T(test_segment_bad_magic),
		T(test_segment_other_layout_version),
		T(test_segment_wrong_record_size),
		T(test_segment_wrong_header_size),
		T(test_segment_wrong_ring_offset),
		T(test_segment_capacity_not_power_of_two),
		T(test_segment_capacity_out_of_range),
		T(test_segment_size_larger_than_file),
		T(test_segment_size_inconsistent),
		T(test_segment_truncated_file),
		T(test_segment_oversized_file),
		T(test_segment_validate_checks_mapped_size),
		T(test_segment_wrong_mode_is_eperm),
		T(test_segment_other_owner_is_eperm),
		T(test_segment_symlink_refused),
		T(test_segment_fifo_refused_without_blocking),
		T(test_segment_directory_refused),
		T(test_segment_read_only_mapping),
	};
#undef T

	return cmocka_run_group_tests_name("segment", tests, NULL, NULL);
}
