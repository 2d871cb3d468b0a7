/* Wrappers of the exec family: log the exec (and its failure) before the
 * image is replaced, and let follow.c put the shim back into a scrubbed
 * environment. The new image's shim re-discovers the survivors. This may
 * run in a vfork child, which shares our memory: it writes only to the
 * ring and its own stack, and asks the kernel, not our cache, for its pid. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "emit.h"
#include "export.h"
#include "follow.h"
#include "procs.h"
#include "real.h"
#include "sigbus.h"
#include "vfork.h"

/* Copy the string at SRC without trusting it: exec is called with
 * whatever the program has, and libc answers a bad pointer with EFAULT,
 * so we may not fault on it. process_vm_readv on ourselves reads what is
 * readable and stops at the first unmapped byte. */
static void copy_user_string(char *dst, size_t len, const char *src)
{
	struct iovec local = {dst, len - 1}, remote = {(void *)src, len - 1};
	ssize_t n;

	memset(dst, 0, len);
	n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (n <= 0)
		snprintf(dst, len, "?");
}

static void emit_exec(const char *path, int fd, int ret, int err)
{
	struct sockshim_record r;

	if (shim_inert)
		return;
	/* A vfork child logs its fork the first time it asks; exec is
	 * often the first thing it does. */
	(void)shim_in_vfork_child();
	record_init(&r, SOCKSHIM_EV_EXEC, -1, ret, err);
	r.pid = getpid();
	r.tid = gettid();
	if (path)
		copy_user_string(r.detail.exec_path, sizeof(r.detail.exec_path), path);
	else
		snprintf(r.detail.exec_path, sizeof(r.detail.exec_path), "fd:%d", fd);
	emit_record(&r);
}

enum exec_kind { EXEC_VE, EXEC_V, EXEC_VP, EXEC_VPE, EXEC_FE };

/* One exec as the program asked for it; ENVP is environ for execv and
 * execvp. */
struct exec_args {
	enum exec_kind kind;
	const char *path; /* NULL for fexecve */
	int fd;
	char *const *argv;
	char *const *envp;
};

/* The real call A names, with ENV. When follow changed nothing, execv and
 * execvp stay themselves; else they are what libc makes of them anyway,
 * execve and execvpe with an environment. */
static int exec_real(const struct exec_args *a, char *const env[])
{
	int changed = env != a->envp;

	switch (a->kind) {
	case EXEC_V:
		return changed ? real.execve(a->path, a->argv, env) : real.execv(a->path, a->argv);
	case EXEC_VP:
		return changed ? real.execvpe(a->path, a->argv, env)
			       : real.execvp(a->path, a->argv);
	case EXEC_VPE:
		return real.execvpe(a->path, a->argv, env);
	case EXEC_FE:
		return real.fexecve(a->fd, a->argv, env);
	case EXEC_VE:
	default:
		return real.execve(a->path, a->argv, env);
	}
}

/* follow_exec's call: log, exec, log the failure, keep errno. The record
 * has no field for V yet (include/sockshim/layout.h); the process table
 * keeps whether the image runs without the shim. */
static int exec_logged(void *arg, char *const env[], enum follow_verdict v)
{
	const struct exec_args *a = arg;
	int ret, err, noshim = v == FOLLOW_SECURE || v == FOLLOW_STATIC;

	emit_exec(a->path, a->fd, 0, 0);
	/* The image will run without the shim: the process table says so
	 * before it does (by the pid the kernel gives: a vfork child's is
	 * not in the table, and nothing is written). */
	if (noshim && !shim_inert)
		procs_image_noshim(getpid(), 1);
	sigbus_before_exec();
	ret = exec_real(a, env);
	err = errno;
	sigbus_after_exec_failed();
	if (noshim && !shim_inert)
		procs_image_noshim(getpid(), 0);
	emit_exec(a->path, a->fd, ret, err);
	errno = err;
	return ret;
}

static int exec_followed(enum exec_kind kind, const char *path, int fd, char *const argv[],
			 char *const envp[])
{
	struct exec_args a = {kind, path, fd, argv, envp};
	struct follow_target t = {path, fd, kind == EXEC_VP || kind == EXEC_VPE};

	return follow_exec(&t, envp, exec_logged, &a);
}

static int shim_execve(const char *path, char *const argv[], char *const envp[])
{
	return exec_followed(EXEC_VE, path, -1, argv, envp);
}

static int shim_execv(const char *path, char *const argv[])
{
	return exec_followed(EXEC_V, path, -1, argv, environ);
}

static int shim_execvp(const char *file, char *const argv[])
{
	return exec_followed(EXEC_VP, file, -1, argv, environ);
}

static int shim_execvpe(const char *file, char *const argv[], char *const envp[])
{
	return exec_followed(EXEC_VPE, file, -1, argv, envp);
}

static int shim_fexecve(int fd, char *const argv[], char *const envp[])
{
	return exec_followed(EXEC_FE, NULL, fd, argv, envp);
}

/* Count the variadic arguments of execl*, up to the NULL. Like libc, no
 * limit of our own: the kernel answers E2BIG. */
/* The arguments after ARG0 up to the NULL that ends them: how many, with
 * ARG0 (0 when ARG0 is that NULL). */
static int count_args(const char *arg0, va_list ap)
{
	int n = 1;

	if (!arg0)
		return 0;
	while (va_arg(ap, char *))
		n++;
	return n;
}

static void collect_args(char **argv, const char *arg0, va_list ap, int n)
{
	int i;

	if (n)
		argv[0] = (char *)arg0;
	for (i = 1; i < n; i++)
		argv[i] = va_arg(ap, char *);
	if (n)
		(void)va_arg(ap, char *); /* the NULL */
	argv[n] = NULL;
}

enum exec_list_kind { LIST_PATH, LIST_SEARCH, LIST_ENV };

/* execl, execlp and execle: the list AP (after ARG0) into an argv on this
 * frame, which lives until the exec; execle's environment follows the
 * NULL that ends the list. */
static int exec_list(enum exec_list_kind kind, const char *file, const char *arg0, va_list ap)
{
	va_list count;
	int n;

	va_copy(count, ap);
	n = count_args(arg0, count);
	va_end(count);
	{
		char *argv[n + 1];
		char *const *envp = NULL;

		collect_args(argv, arg0, ap, n);
		if (kind == LIST_ENV)
			envp = va_arg(ap, char *const *);
		real_ensure();
		if (kind == LIST_SEARCH)
			return shim_execvp(file, argv);
		if (kind == LIST_ENV)
			return shim_execve(file, argv, envp);
		return shim_execv(file, argv);
	}
}

SHIM_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	real_ensure();
	return shim_execve(path, argv, envp);
}

SHIM_EXPORT int execv(const char *path, char *const argv[])
{
	real_ensure();
	return shim_execv(path, argv);
}

SHIM_EXPORT int execvp(const char *file, char *const argv[])
{
	real_ensure();
	return shim_execvp(file, argv);
}

SHIM_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	real_ensure();
	return shim_execvpe(file, argv, envp);
}

SHIM_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	real_ensure();
	return shim_fexecve(fd, argv, envp);
}

SHIM_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = exec_list(LIST_PATH, path, arg, ap);
	va_end(ap);
	return rc;
}

SHIM_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = exec_list(LIST_SEARCH, file, arg, ap);
	va_end(ap);
	return rc;
}

SHIM_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = exec_list(LIST_ENV, path, arg, ap);
	va_end(ap);
	return rc;
}
