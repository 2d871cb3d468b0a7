/* Doorbells of serialized listeners, one eventfd per worker row (modulo
 * DOORBELLS), per listener: a waiter sleeps on its row's doorbell in the
 * listener's slot of its own poll, and whoever hands it the token rings
 * that one. Not one eventfd per listener: a ring wakes every poll that
 * waits on it, and so does an eventfd in per-process epoll sets with
 * EPOLLEXCLUSIVE (the kernel wakes one exclusive waiter only among those
 * asleep in epoll_wait, not in a poll of the epoll descriptor): measured,
 * 4 wakeups a ring for 4 waiters either way.
 * The descriptors are the shim's in the program's table: made before the
 * program forks (listen), moved far above the numbers the program uses,
 * close-on-exec, marked in the descriptor table so that the program's
 * close, close_range, dup2 and dup3 on one of them tell doorbell_lost. A
 * number that may have become the program's is never read or written. */
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "doorbell.h"
#include "fdtab.h"
#include "real.h"
#include "vfork.h"

/* Serialized listeners a process keeps doorbells for. */
#define DOORBELL_SETS 8
/* The doorbells go at or above DOORBELL_TOP - DOORBELL_ROOM (or the
 * descriptor limit, if lower): above the numbers programs use, below
 * FD_SETSIZE, and low enough that the loops over the descriptor table
 * (fork, close_range) stay short whatever the limit is. */
#define DOORBELL_TOP 1024u
#define DOORBELL_ROOM 128u
/* A set's ref while its doorbells are being made. */
#define SET_FILLING UINT32_MAX

struct doorbell_set {
	uint32_t ref;  /* the listener entry + 1; 0 free */
	uint32_t lost; /* 1: one of its numbers is no longer ours */
	int fd[DOORBELLS];
};

/* Per process: copied by fork with the descriptors it names, and emptied
 * by exec, which closes them. */
static struct doorbell_set sets[DOORBELL_SETS];

static const struct doorbell_set *find(uint32_t ref)
{
	unsigned i;

	for (i = 0; i < DOORBELL_SETS; i++)
		if (__atomic_load_n(&sets[i].ref, __ATOMIC_ACQUIRE) == ref)
			return __atomic_load_n(&sets[i].lost, __ATOMIC_RELAXED) ? NULL : &sets[i];
	return NULL;
}

/* The lowest number a doorbell may take, or -1 when the limit leaves no
 * room above what programs use. */
static int doorbell_base(void)
{
	struct rlimit rl;
	rlim_t top = DOORBELL_TOP;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < top)
		top = rl.rlim_cur;
	return top >= (rlim_t)2 * DOORBELL_ROOM ? (int)(top - DOORBELL_ROOM) : -1;
}

/* One doorbell at BASE or above, marked ours: its number, or -1. */
static int make_one(int base)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), fd;

	if (efd < 0)
		return -1;
	fd = real.fcntl(efd, F_DUPFD_CLOEXEC, base);
	real.close(efd);
	if (fd < 0)
		return -1;
	if (fdtab_set_own(fd) < 0) {
		real.close(fd);
		return -1;
	}
	return fd;
}

void doorbell_make(uint32_t ref)
{
	int saved = errno, base = doorbell_base();
	struct doorbell_set *s = NULL;
	unsigned i, made;

	/* Not in a vfork child: it shares our memory, not our descriptors. */
	if (!ref || ref == SET_FILLING || base < 0 || shim_in_vfork_child())
		goto out;
	for (i = 0; i < DOORBELL_SETS; i++)
		if (__atomic_load_n(&sets[i].ref, __ATOMIC_ACQUIRE) == ref)
			goto out; /* listen() again (Puma): it has its doorbells */
	for (i = 0; i < DOORBELL_SETS && !s; i++) {
		uint32_t free = 0;

		if (__atomic_compare_exchange_n(&sets[i].ref, &free, SET_FILLING, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			s = &sets[i];
	}
	if (!s)
		goto out; /* more serialized listeners than sets: slices */
	for (made = 0; made < DOORBELLS; made++) {
		s->fd[made] = make_one(base);
		if (s->fd[made] < 0)
			break;
	}
	if (made < DOORBELLS) {
		/* Short of descriptors: none at all, and the set free again. */
		for (i = 0; i < made; i++)
			if (fdtab_take_own(s->fd[i]))
				real.close(s->fd[i]);
		__atomic_store_n(&s->ref, 0, __ATOMIC_RELEASE);
		goto out;
	}
	__atomic_store_n(&s->lost, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->ref, ref, __ATOMIC_RELEASE);
out:
	errno = saved;
}

int doorbell_fd(uint32_t ref, unsigned row)
{
	const struct doorbell_set *s = find(ref);

	return s ? s->fd[row % DOORBELLS] : -1;
}

int doorbell_ring(uint32_t ref, unsigned row)
{
	static const uint64_t one = 1;
	int saved = errno, fd = doorbell_fd(ref, row);

	/* Full (2^64 - 2 rings nobody took) is still rung. */
	if (fd >= 0)
		(void)real.write(fd, &one, sizeof(one));
	errno = saved;
	return fd >= 0 ? 0 : -1;
}

void doorbell_drain(uint32_t ref, int fd)
{
	const struct doorbell_set *s = find(ref);
	int saved = errno;
	uint64_t rings;
	unsigned i;

	if (!s)
		return;
	for (i = 0; i < DOORBELLS; i++)
		if (s->fd[i] == fd) {
			(void)real.read(fd, &rings, sizeof(rings)); /* EAGAIN: another took them */
			break;
		}
	errno = saved;
}

void doorbell_drop(uint32_t ref)
{
	int saved = errno;
	unsigned i, j;

	for (i = 0; i < DOORBELL_SETS; i++) {
		if (!ref || __atomic_load_n(&sets[i].ref, __ATOMIC_ACQUIRE) != ref)
			continue;
		for (j = 0; j < DOORBELLS; j++)
			if (fdtab_take_own(sets[i].fd[j])) /* else the program's now */
				real.close(sets[i].fd[j]);
		__atomic_store_n(&sets[i].ref, 0, __ATOMIC_RELEASE);
	}
	errno = saved;
}

void doorbell_lost(int fd)
{
	unsigned i, j;

	for (i = 0; i < DOORBELL_SETS; i++) {
		uint32_t ref = __atomic_load_n(&sets[i].ref, __ATOMIC_ACQUIRE);

		if (!ref || ref == SET_FILLING)
			continue;
		for (j = 0; j < DOORBELLS; j++)
			if (sets[i].fd[j] == fd)
				__atomic_store_n(&sets[i].lost, 1, __ATOMIC_RELEASE);
	}
}
