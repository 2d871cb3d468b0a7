/* Wrappers of the calls that drop or copy descriptors: close, close_range,
 * dup, dup2, dup3, and the logic of fcntl and fcntl64 (their exported
 * entries are in calls_fcntl.c). close on an untracked descriptor is a
 * hot path: three loads and a branch before the real call (fdtab.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdint.h>

#include "calls.h"
#include "emit.h"
#include "export.h"
#include "real.h"
#include "track.h"
#include "vfork.h"

static __attribute__((noinline)) int shim_close_slow(int fd)
{
	struct fd_entry e;
	int took, ret;

	real_ensure();
	took = track_forget(fd, &e);
	ret = real.close(fd);
	int err = errno;

	if (took)
		track_closed(fd, &e, SOCKSHIM_CLOSE_VIA_CLOSE, ret, err);
	errno = err;
	return ret;
}

/* The fast half: an untracked descriptor goes to libc as a tail call.
 * inline: so that GCC copies it into close() rather than jump to it. */
inline int shim_close(int fd)
{
	if (__builtin_expect(!fdtab_maybe_tracked(fd), 1))
		return real.close(fd);
	return shim_close_slow(fd);
}

int shim_close_range(unsigned first, unsigned last, int flags)
{
	unsigned fd, end;
	int ret, err;

	if (!real.close_range) {
		errno = ENOSYS;
		return -1;
	}
	ret = real.close_range(first, last, flags);
	err = errno;
	if (shim_inert || ret < 0)
		goto out;
	end = fdtab_high();
	if (last < end)
		end = last + 1;
	for (fd = first; fd < end; fd++) {
		struct fd_entry e;

		if (!fdtab_has_entry((int)fd))
			continue;
		if (flags & CLOSE_RANGE_CLOEXEC) {
			if (!shim_in_vfork_child())
				fdtab_flags_or((int)fd, FDT_CLOEXEC);
		} else if (track_forget((int)fd, &e)) {
			track_closed((int)fd, &e, SOCKSHIM_CLOSE_VIA_CLOSE_RANGE, ret, err);
		}
	}
out:
	errno = err;
	return ret;
}

int shim_dup(int old_fd)
{
	int ret = real.dup(old_fd);
	int err = errno;

	if (ret >= 0 && !shim_inert && fdtab_is_tracked(old_fd))
		track_dup(old_fd, ret, 0);
	errno = err;
	return ret;
}

/* dup2 and dup3: NEW_FD, if open, is closed by the kernel as part of the
 * call; forget it first so no other thread can see a stale entry. */
int shim_dup3(int old_fd, int new_fd, int flags, int three)
{
	struct fd_entry replaced;
	int took = 0, ret, err;

	if (!shim_inert && old_fd != new_fd && fdtab_has_entry(new_fd))
		took = track_forget(new_fd, &replaced);
	ret = three ? real.dup3(old_fd, new_fd, flags) : real.dup2(old_fd, new_fd);
	err = errno;
	if (took) {
		/* dup2 returns NEW_FD; its implicit close succeeded. */
		if (ret >= 0)
			track_closed(new_fd, &replaced, SOCKSHIM_CLOSE_VIA_DUP2, 0, 0);
		else
			track_update(new_fd, &replaced); /* the call failed: still open */
	}
	if (ret >= 0 && old_fd != new_fd && !shim_inert && fdtab_is_tracked(old_fd))
		track_dup(old_fd, ret, three && (flags & O_CLOEXEC));
	errno = err;
	return ret;
}

/* What fcntl did to a tracked descriptor. */
static void fcntl_after(int fd, int cmd, uintptr_t arg, int ret)
{
	if (ret < 0 || shim_inert || !fdtab_is_tracked(fd))
		return;
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		track_dup(fd, ret, cmd == F_DUPFD_CLOEXEC);
		break;
	case F_SETFD:
		if (shim_in_vfork_child())
			break;
		if (arg & FD_CLOEXEC)
			fdtab_flags_or(fd, FDT_CLOEXEC);
		else
			fdtab_flags_and(fd, ~(uint64_t)FDT_CLOEXEC);
		break;
	case F_SETFL:
		if (shim_in_vfork_child())
			break;
		if (arg & O_NONBLOCK)
			fdtab_flags_or(fd, FDT_NONBLOCK);
		else
			fdtab_flags_and(fd, ~(uint64_t)FDT_NONBLOCK);
		break;
	default:
		break;
	}
}

int shim_fcntl(int (*fn)(int, int, ...), int fd, int cmd, void *arg)
{
	int ret = fn(fd, cmd, arg);
	int err = errno;

	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC || cmd == F_SETFD || cmd == F_SETFL)
		fcntl_after(fd, cmd, (uintptr_t)arg, ret);
	errno = err;
	return ret;
}

SHIM_EXPORT int close(int fd)
{
	return shim_close(fd);
}

SHIM_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	real_ensure();
	return shim_close_range(first, last, flags);
}

/* The exported wrappers go straight to libc for descriptors the shim
 * does not track (a tracked socket's number is in the table before any
 * thread can learn it from socket() or accept()): a few instructions, as
 * read and close; real.X binds itself on first use (shim/real.c). */
SHIM_EXPORT int dup(int old_fd)
{
	if (__builtin_expect(!fdtab_maybe_tracked(old_fd), 1))
		return real.dup(old_fd);
	return shim_dup(old_fd);
}

SHIM_EXPORT int dup2(int old_fd, int new_fd)
{
	if (__builtin_expect(!fdtab_maybe_either(old_fd, new_fd), 1))
		return real.dup2(old_fd, new_fd);
	real_ensure();
	return shim_dup3(old_fd, new_fd, 0, 0);
}

SHIM_EXPORT int dup3(int old_fd, int new_fd, int flags)
{
	if (__builtin_expect(!fdtab_maybe_either(old_fd, new_fd), 1))
		return real.dup3(old_fd, new_fd, flags);
	real_ensure();
	return shim_dup3(old_fd, new_fd, flags, 1);
}
