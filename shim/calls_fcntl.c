/* The exported fcntl and fcntl64: on an untracked descriptor a tail call
 * to libc with the caller's arguments as they came; on a tracked one, the
 * logic in calls_fd.c. This file must not include <fcntl.h> (see below).
 *
 * libc declares both variadic, (int fd, int cmd, ...). A variadic
 * definition must spill its argument registers for va_start before it can
 * read the third argument: a stack frame and a dozen instructions on every
 * call, and no tail call. So they are defined here with the third argument
 * named, a pointer-sized value as libc's own fcntl reads it (int or
 * pointer, by command). That is sound on the ABIs listed below, where the
 * caller of a variadic function passes its integer and pointer arguments
 * exactly where a prototyped call passes them (registers, then stack
 * slots); a call without a third argument (F_GETFL) leaves a stale value
 * there, passed on unread, as libc's va_arg reads one. Elsewhere the build
 * stops rather than guess. */
#include <stdint.h>

#include "calls.h"
#include "export.h"
#include "fdtab.h"
#include "real.h"

#if !defined(__linux__) ||                                                            \
	!(defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) ||          \
	  defined(__riscv) || (defined(__powerpc64__) && _CALL_ELF == 2) || defined(__s390x__))
/* cppcheck-suppress preprocessorErrorDirective ; cppcheck knows no target */
#error "fcntl's entry takes its variadic argument as a named one: check this ABI passes them alike"
#endif

/* Not libc's declarations: ours, with the third argument named. */
int fcntl(int fd, int cmd, void *arg);
int fcntl64(int fd, int cmd, void *arg);

SHIM_EXPORT int fcntl(int fd, int cmd, void *arg)
{
	if (__builtin_expect(!fdtab_maybe_tracked(fd), 1))
		return real.fcntl(fd, cmd, arg);
	real_ensure();
	return shim_fcntl(real.fcntl, fd, cmd, arg);
}

SHIM_EXPORT int fcntl64(int fd, int cmd, void *arg)
{
	if (__builtin_expect(!fdtab_maybe_tracked(fd), 1))
		return real.fcntl64(fd, cmd, arg);
	real_ensure();
	return shim_fcntl(real.fcntl64, fd, cmd, arg);
}
