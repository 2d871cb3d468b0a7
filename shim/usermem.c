/* The program's memory without trusting it (usermem.h). */
#include "usermem.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The stack pointer at the program's entry (ld.so's): every frame of the
 * main thread is below it. */
extern void *__libc_stack_end;

/* The depth of the main stack assumed when its limit is unlimited. The
 * kernel places the mmap area (threads' stacks, coroutines' stacks,
 * everything mapped) below the stack's limit and a gap of at least
 * 128 MiB, so a stack pointer this close under the top is the main
 * thread's own. */
#define MAIN_STACK_ROOM ((uintptr_t)128 << 20)

static uintptr_t main_top, main_low;

static size_t total(const struct iovec *v, int n)
{
	size_t sum = 0;
	int i;

	for (i = 0; i < n; i++)
		sum += v[i].iov_len;
	return sum;
}

static int refused(int err)
{
	return err == ENOSYS || err == EPERM;
}

/* Is every piece of REMOTE on the main thread's stack, above us? */
static int all_on_main_stack(const struct iovec *remote, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!usermem_on_main_stack(remote[i].iov_base, remote[i].iov_len))
			return 0;
	return 1;
}

int usermem_readv(const struct iovec *local, const struct iovec *remote, int n)
{
	int saved = errno, rc = 0, i;
	ssize_t got;

	/* In the program's frames on the main stack (an epoll_event, a
	 * pollfd array, a timeout): mapped while we run, read as it is. */
	if (all_on_main_stack(remote, n)) {
		for (i = 0; i < n; i++)
			memcpy(local[i].iov_base, remote[i].iov_base, local[i].iov_len);
		return 0;
	}
	got = process_vm_readv(getpid(), /* a vfork child's: its parent's memory */
			       local, (unsigned long)n, remote, (unsigned long)n, 0);

	if (got < 0 && refused(errno)) {
		for (i = 0; i < n; i++)
			memcpy(local[i].iov_base, remote[i].iov_base, local[i].iov_len);
	} else if (got != (ssize_t)total(remote, n)) {
		rc = -1;
	}
	errno = saved;
	return rc;
}

int usermem_writev(const struct iovec *local, const struct iovec *remote, int n)
{
	int saved = errno, rc = 0, i;
	ssize_t put = process_vm_writev(getpid(), local, (unsigned long)n, remote, (unsigned long)n, 0);

	if (put < 0 && refused(errno)) {
		for (i = 0; i < n; i++)
			memcpy(remote[i].iov_base, local[i].iov_base, local[i].iov_len);
	} else if (put != (ssize_t)total(remote, n)) {
		rc = -1;
	}
	errno = saved;
	return rc;
}

int usermem_read(void *dst, const void *src, size_t len)
{
	struct iovec local = {dst, len}, remote = {(void *)src, len};

	return usermem_readv(&local, &remote, 1);
}

int usermem_write(void *dst, const void *src, size_t len)
{
	struct iovec local = {(void *)src, len}, remote = {dst, len};

	return usermem_writev(&local, &remote, 1);
}

void usermem_start(void)
{
	struct rlimit rl;
	uintptr_t top = (uintptr_t)__libc_stack_end, room = MAIN_STACK_ROOM;

	if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < room)
		room = (uintptr_t)rl.rlim_cur;
	if (!top || top <= room)
		return;
	__atomic_store_n(&main_low, top - room, __ATOMIC_RELAXED);
	__atomic_store_n(&main_top, top, __ATOMIC_RELAXED);
}

int usermem_on_main_stack(const void *p, size_t n)
{
	uintptr_t top = __atomic_load_n(&main_top, __ATOMIC_RELAXED);
	uintptr_t low = __atomic_load_n(&main_low, __ATOMIC_RELAXED);
	uintptr_t here = (uintptr_t)__builtin_frame_address(0), a = (uintptr_t)p;

	/* Running on the main stack (above its lowest possible address),
	 * and P above this frame: everything between is the live stack. */
	return top && here >= low && here < top && a > here && a < top && n <= top - a;
}
