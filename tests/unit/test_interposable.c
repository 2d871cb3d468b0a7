/* Unit tests of tools/interposable.c on real files: /bin/true, a static
 * binary and a fake Go binary built here with cc (skipped without cc or a
 * static libc), set-id copies, scripts, and malformed ELF files. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "interposable.h"

static char dir[] = "/tmp/sockshim-interp-XXXXXX";

/* Somebody other than the caller, for set-id checks. */
#define OTHER_ID 4242

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void write_file(const char *name, const void *data, size_t n, mode_t mode)
{
	char path[PATH_MAX];
	int fd;

	path_in(path, sizeof(path), name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void write_text(const char *name, const char *text, mode_t mode)
{
	write_file(name, text, strlen(text), mode);
}

/* Build NAME from C source SRC with extra FLAGS; 0 when cc succeeded. */
static int build(const char *name, const char *src, const char *flags)
{
	char cmd[3 * PATH_MAX], srcpath[PATH_MAX], out[PATH_MAX];

	write_text("src.c", src, 0644);
	path_in(srcpath, sizeof(srcpath), "src.c");
	path_in(out, sizeof(out), name);
	snprintf(cmd, sizeof(cmd), "cc %s -o %s %s >/dev/null 2>&1", flags, out, srcpath);
	return system(cmd);
}

static const char *true_path(void)
{
	return access("/bin/true", X_OK) == 0 ? "/bin/true" : "/usr/bin/true";
}

static void test_dynamic_binary_is_fine(void **state)
{
	unsigned problems = 99;

	(void)state;
	assert_int_equal(interp_check_elf(true_path(), getuid(), getgid(), &problems), 0);
	assert_int_equal(problems, 0);
}

static void test_static_binary(void **state)
{
	char path[PATH_MAX];
	unsigned problems = 0;

	(void)state;
	if (build("static", "int main(void) { return 0; }\n", "-static"))
		skip(); /* no cc, or no static libc */
	path_in(path, sizeof(path), "static");
	assert_int_equal(interp_check_elf(path, getuid(), getgid(), &problems), 0);
	assert_int_equal(problems, INTERP_STATIC);
}

static void test_go_sections(void **state)
{
	char path[PATH_MAX];
	unsigned problems = 0;

	(void)state;
	/* What the Go linker leaves even in a stripped binary. */
	if (build("gobuildinfo",
		  "const char b[] __attribute__((section(\".go.buildinfo\"), used)) = \"x\";\n"
		  "int main(void) { return 0; }\n",
		  ""))
		skip();
	path_in(path, sizeof(path), "gobuildinfo");
	assert_int_equal(interp_check_elf(path, getuid(), getgid(), &problems), 0);
	assert_int_equal(problems, INTERP_GO);

	if (build("gonote",
		  "const char n[] __attribute__((section(\".note.go.buildid\"), used)) = \"x\";\n"
		  "int main(void) { return 0; }\n",
		  ""))
		skip();
	path_in(path, sizeof(path), "gonote");
	assert_int_equal(interp_check_elf(path, getuid(), getgid(), &problems), 0);
	assert_int_equal(problems, INTERP_GO);
}

static void copy_true(const char *name, mode_t mode)
{
	static char buf[1 << 20];
	ssize_t n;
	int fd;

	fd = open(true_path(), O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(n > 0);
	write_file(name, buf, (size_t)n, mode);
}

static void test_setid(void **state)
{
	char path[PATH_MAX];
	unsigned problems = 0;
	struct stat st;

	(void)state;
	copy_true("setuid", 04755);
	path_in(path, sizeof(path), "setuid");
	assert_int_equal(stat(path, &st), 0);
	/* Run by its owner nothing changes; by anyone else it is secure mode. */
	assert_int_equal(interp_check_elf(path, st.st_uid, st.st_gid, &problems), 0);
	assert_int_equal(problems, 0);
	assert_int_equal(interp_check_elf(path, st.st_uid + OTHER_ID, st.st_gid, &problems), 0);
	assert_int_equal(problems, INTERP_SETID);

	copy_true("setgid", 02755);
	path_in(path, sizeof(path), "setgid");
	assert_int_equal(interp_check_elf(path, st.st_uid, st.st_gid + OTHER_ID, &problems), 0);
	assert_int_equal(problems, INTERP_SETID);
}

static void test_not_elf_and_malformed(void **state)
{
	char path[PATH_MAX], buf[4096];
	unsigned problems;
	ssize_t n;
	int fd;

	(void)state;
	write_text("text", "hello\n", 0755);
	path_in(path, sizeof(path), "text");
	assert_int_equal(interp_check_elf(path, 0, 0, &problems), -ENOEXEC);

	write_text("empty", "", 0755);
	path_in(path, sizeof(path), "empty");
	assert_int_equal(interp_check_elf(path, 0, 0, &problems), -ENOEXEC);

	/* A real header whose program headers are cut off. */
	fd = open(true_path(), O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(n >= 64);
	write_file("truncated", buf, 64, 0755);
	path_in(path, sizeof(path), "truncated");
	assert_int_equal(interp_check_elf(path, 0, 0, &problems), -ENOEXEC);

	/* Section headers pointing far past the end of the file. */
	memset(buf + 0x28, 0xff, 8); /* e_shoff */
	write_file("badshoff", buf, (size_t)n, 0755);
	path_in(path, sizeof(path), "badshoff");
	assert_true(interp_check_elf(path, 0, 0, &problems) <= 0);

	path_in(path, sizeof(path), "no-such-file");
	assert_int_equal(interp_check_elf(path, 0, 0, &problems), -ENOENT);
	assert_int_equal(interp_check_elf(dir, 0, 0, &problems), -ENOEXEC);
}

static void test_resolve(void **state)
{
	char out[PATH_MAX], pathenv[2 * PATH_MAX], cwd[PATH_MAX];

	(void)state;
	assert_int_equal(interp_resolve("true", "/nonexistent:/bin:/usr/bin", out, sizeof(out)), 0);
	assert_true(!strcmp(out, "/bin/true") || !strcmp(out, "/usr/bin/true"));
	assert_int_equal(interp_resolve("no-such-command-xyz", "/bin:/usr/bin", out, sizeof(out)),
			 -ENOENT);
	assert_int_equal(interp_resolve("", "/bin", out, sizeof(out)), -ENOENT);

	/* Found but not executable, and no executable one later on PATH. */
	write_text("noexec", "x", 0644);
	snprintf(pathenv, sizeof(pathenv), "%s:/bin", dir);
	assert_int_equal(interp_resolve("noexec", pathenv, out, sizeof(out)), -EACCES);

	/* An empty PATH entry is the current directory. */
	write_text("here", "#!/bin/sh\n", 0755);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(interp_resolve("here", "/nonexistent::", out, sizeof(out)), 0);
	assert_string_equal(out, "here");
	assert_int_equal(chdir(cwd), 0);

	/* A name with a slash is not searched. */
	snprintf(pathenv, sizeof(pathenv), "%s/here", dir);
	assert_int_equal(interp_resolve(pathenv, "/nonexistent", out, sizeof(out)), 0);
	assert_string_equal(out, pathenv);
}

static void test_scripts(void **state)
{
	char path[PATH_MAX], out[PATH_MAX];

	(void)state;
	write_text("sh.sh", "#!/bin/sh -e\necho hi\n", 0755);
	path_in(path, sizeof(path), "sh.sh");
	assert_int_equal(interp_script(path, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "/bin/sh");

	write_text("env.sh", "#! /usr/bin/env -S A=1 true --flag\n", 0755);
	path_in(path, sizeof(path), "env.sh");
	assert_int_equal(interp_script(path, "/bin:/usr/bin", out, sizeof(out)), 0);
	assert_true(!strcmp(out, "/bin/true") || !strcmp(out, "/usr/bin/true"));

	write_text("envnone.sh", "#!/usr/bin/env no-such-interp-xyz\n", 0755);
	path_in(path, sizeof(path), "envnone.sh");
	assert_int_equal(interp_script(path, "/bin", out, sizeof(out)), -ENOENT);
	assert_string_equal(out, "no-such-interp-xyz");

	write_text("missing.sh", "#!/no/such/interp\n", 0755);
	path_in(path, sizeof(path), "missing.sh");
	assert_int_equal(interp_script(path, NULL, out, sizeof(out)), -ENOENT);
	assert_string_equal(out, "/no/such/interp");

	write_text("blank.sh", "#!   \n", 0755);
	path_in(path, sizeof(path), "blank.sh");
	assert_int_equal(interp_script(path, NULL, out, sizeof(out)), -ENOEXEC);

	write_text("plain", "echo hi\n", 0755);
	path_in(path, sizeof(path), "plain");
	assert_int_equal(interp_script(path, NULL, out, sizeof(out)), -ENOEXEC);
}

static void test_check_follows_script(void **state)
{
	char path[PATH_MAX], line[PATH_MAX + 8];
	struct interp_report rep;

	(void)state;
	path_in(path, sizeof(path), "sh.sh");
	write_text("sh.sh", "#!/bin/sh\n", 0755);
	assert_int_equal(interp_check(path, NULL, getuid(), getgid(), &rep), 0);
	assert_string_equal(rep.interp, "/bin/sh");
	assert_int_equal(rep.problems, 0);

	/* A set-uid script is not special (the kernel ignores the bit). */
	write_text("suid.sh", "#!/bin/sh\n", 04755);
	path_in(path, sizeof(path), "suid.sh");
	assert_int_equal(interp_check(path, NULL, OTHER_ID, OTHER_ID, &rep), 0);
	assert_int_equal(rep.problems, 0);

	if (build("static", "int main(void) { return 0; }\n", "-static"))
		skip();
	path_in(path, sizeof(path), "static");
	snprintf(line, sizeof(line), "#!%s\n", path);
	write_text("static.sh", line, 0755);
	path_in(path, sizeof(path), "static.sh");
	assert_int_equal(interp_check(path, NULL, getuid(), getgid(), &rep), 0);
	assert_int_equal(rep.problems, INTERP_STATIC);
	assert_non_null(strstr(rep.interp, "/static"));

	assert_int_equal(interp_check("no-such-command-xyz", "/bin", 0, 0, &rep), -ENOENT);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dynamic_binary_is_fine),
		cmocka_unit_test(test_static_binary),
		cmocka_unit_test(test_go_sections),
		cmocka_unit_test(test_setid),
		cmocka_unit_test(test_not_elf_and_malformed),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_check_follows_script),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
