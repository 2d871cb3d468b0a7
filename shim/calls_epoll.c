/* Wrappers of epoll_ctl, epoll_wait and epoll_pwait. Its events carry
 * the caller's data, not the fd: epoll_ctl remembers which data stands
 * for which listener, and a wait that reports one counts a wakeup (the
 * next accept tells spurious from real). In serialize mode a listener is
 * added with EPOLLEXCLUSIVE (Linux 4.5), so the kernel wakes one waiter
 * per connection: no cost in the wrapper, where a token would need slices
 * and wakeups of its own (make bench compares the modes). Edge-triggered
 * and one-shot registrations are left alone. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "accept.h"
#include "calls.h"
#include "emit.h"
#include "export.h"
#include "listeners.h"
#include "real.h"
#include "sockshim/rawio.h"
#include "usermem.h"

#define EPOLL_SLOTS 256

struct epoll_reg {
	int epfd; /* -1: free */
	int fd;
	uint64_t data;
	int exclusive; /* we added EPOLLEXCLUSIVE */
};

static struct epoll_reg regs[EPOLL_SLOTS] = {[0 ... EPOLL_SLOTS - 1] = {-1, -1, 0, 0}};
/* Slots in use: epoll_wait in a process with no listener registered (a
 * client, or a server's other epoll sets) looks no further. */
static int regs_live;
/* One past the highest slot ever claimed: slots are claimed lowest
 * first, so every look (each event of every epoll_wait) reads the few
 * slots a server's listeners took, not all EPOLL_SLOTS. */
static unsigned regs_high;

/* The slots to look at: those below the high-water mark. */
static unsigned reg_span(void)
{
	return __atomic_load_n(&regs_high, __ATOMIC_ACQUIRE);
}

static struct epoll_reg *reg_find(int epfd, int fd)
{
	unsigned i, n = reg_span();

	for (i = 0; i < n; i++)
		if (__atomic_load_n(&regs[i].epfd, __ATOMIC_ACQUIRE) == epfd &&
		    __atomic_load_n(&regs[i].fd, __ATOMIC_RELAXED) == fd)
			return &regs[i];
	return NULL;
}

/* Marks ALIVE[j] for every slot of EPFD the kernel still holds: its own
 * list, /proc/self/fdinfo/EPFD ("tfd: FD events: E data: D ..."). An
 * epoll set closed, or a listener closed, leaves no EPOLL_CTL_DEL for us
 * to see. Read in pieces, a line carried over; a closed EPFD has none. */
static void mark_in_kernel(int epfd, unsigned char *alive)
{
	char path[48], buf[1024];
	size_t have = 0;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return;
	for (;;) {
		ssize_t n = rawio_read(f, buf + have, sizeof(buf) - 1 - have);
		char *line = buf, *nl;

		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = 0;
		while ((nl = strchr(line, '\n'))) {
			int tfd;
			unsigned events, j;
			unsigned long long d;

			*nl = 0;
			if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &d) == 3)
				for (j = 0; j < EPOLL_SLOTS; j++)
					alive[j] |= __atomic_load_n(&regs[j].epfd, __ATOMIC_RELAXED) == epfd &&
						    __atomic_load_n(&regs[j].fd, __ATOMIC_RELAXED) == tfd &&
						    __atomic_load_n(&regs[j].data, __ATOMIC_RELAXED) == d;
			line = nl + 1;
		}
		have = (size_t)(buf + have - line);
		if (have == sizeof(buf) - 1)
			have = 0; /* no line is this long: not ours */
		memmove(buf, line, have);
	}
	rawio_close(f);
}

/* When every slot is taken: free those the kernel no longer holds, each
 * epoll set's list read once. */
static void reg_collect(void)
{
	unsigned char alive[EPOLL_SLOTS] = {0}, done[EPOLL_SLOTS] = {0};
	unsigned i, j;

	for (i = 0; i < EPOLL_SLOTS; i++) {
		int epfd = __atomic_load_n(&regs[i].epfd, __ATOMIC_ACQUIRE);

		if (epfd < 0 || done[i])
			continue;
		mark_in_kernel(epfd, alive);
		for (j = i; j < EPOLL_SLOTS; j++) {
			int was = epfd;

			if (__atomic_load_n(&regs[j].epfd, __ATOMIC_RELAXED) != epfd)
				continue;
			done[j] = 1;
			if (!alive[j] && __atomic_compare_exchange_n(&regs[j].epfd, &was, -1, 0,
								     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
				__atomic_fetch_sub(&regs_live, 1, __ATOMIC_RELAXED);
		}
	}
}

static struct epoll_reg *reg_claim(void)
{
	unsigned i;

	for (i = 0; i < EPOLL_SLOTS; i++) {
		int free_slot = -1;

		if (__atomic_compare_exchange_n(&regs[i].epfd, &free_slot, -2, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			unsigned high = reg_span();

			/* Raised before the slot is published (reg_put's
			 * release store of its epfd). */
			while (high < i + 1 &&
			       !__atomic_compare_exchange_n(&regs_high, &high, i + 1, 1, __ATOMIC_ACQ_REL,
							    __ATOMIC_ACQUIRE))
				;
			__atomic_fetch_add(&regs_live, 1, __ATOMIC_RELAXED);
			return &regs[i];
		}
	}
	return NULL;
}

static void reg_put(int epfd, int fd, uint64_t data, int exclusive)
{
	struct epoll_reg *r = reg_find(epfd, fd);

	if (!r)
		r = reg_claim();
	if (!r) {
		reg_collect();
		r = reg_claim();
	}
	if (!r)
		return; /* that many live: this listener's wakeups go uncounted */
	__atomic_store_n(&r->fd, fd, __ATOMIC_RELAXED);
	__atomic_store_n(&r->data, data, __ATOMIC_RELAXED);
	__atomic_store_n(&r->exclusive, exclusive, __ATOMIC_RELAXED);
	__atomic_store_n(&r->epfd, epfd, __ATOMIC_RELEASE);
}

static void reg_drop(int epfd, int fd)
{
	struct epoll_reg *r = reg_find(epfd, fd);

	if (r) {
		__atomic_store_n(&r->epfd, -1, __ATOMIC_RELEASE);
		__atomic_fetch_sub(&regs_live, 1, __ATOMIC_RELAXED);
	}
}

int shim_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct epoll_event mine;
	struct epoll_reg *r;
	int ret, err, exclusive = 0;

	if (!accept_counting() || !fdtab_is_listener(fd))
		return real.epoll_ctl(epfd, op, fd, ev);
	if (op == EPOLL_CTL_DEL) {
		ret = real.epoll_ctl(epfd, op, fd, ev);
		err = errno;
		if (ret == 0)
			reg_drop(epfd, fd);
		errno = err;
		return ret;
	}
	if (!ev || usermem_read(&mine, ev, sizeof(mine)) < 0)
		return real.epoll_ctl(epfd, op, fd, ev); /* the kernel's EFAULT */
	if (accept_mode == SOCKSHIM_ACCEPT_SERIALIZE && !(mine.events & (EPOLLET | EPOLLONESHOT))) {
		exclusive = !(mine.events & EPOLLEXCLUSIVE);
		mine.events |= EPOLLEXCLUSIVE;
	}
	r = reg_find(epfd, fd);
	if (op == EPOLL_CTL_MOD && r && r->exclusive) {
		/* EPOLLEXCLUSIVE cannot be modified: add it again. */
		real.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
		op = EPOLL_CTL_ADD;
	}
	ret = real.epoll_ctl(epfd, op, fd, &mine);
	if (ret < 0 && errno == EINVAL && exclusive) {
		/* An older kernel, or flags EPOLLEXCLUSIVE does not go with. */
		mine.events &= ~(uint32_t)EPOLLEXCLUSIVE;
		exclusive = 0;
		ret = real.epoll_ctl(epfd, op, fd, &mine);
	}
	err = errno;
	if (ret == 0) {
		struct sockshim_listener *l;

		reg_put(epfd, fd, mine.data.u64, exclusive);
		/* EPOLLEXCLUSIVE, ours or the program's (nginx's own). */
		if ((mine.events & EPOLLEXCLUSIVE) &&
		    (l = listeners_entry(shim_session(), accept_listener_of(fd))))
			stat_add(&l->epoll_exclusive, 1);
	}
	errno = err;
	return ret;
}

static void after_epoll(int epfd, const struct epoll_event *evs, int n)
{
	int i;
	unsigned j, span = reg_span();

	for (i = 0; i < n; i++) {
		if (!(evs[i].events & (EPOLLIN | EPOLLPRI)))
			continue;
		for (j = 0; j < span; j++)
			if (__atomic_load_n(&regs[j].epfd, __ATOMIC_ACQUIRE) == epfd &&
			    __atomic_load_n(&regs[j].data, __ATOMIC_RELAXED) == evs[i].data.u64) {
				accept_woken(__atomic_load_n(&regs[j].fd, __ATOMIC_RELAXED));
				break;
			}
	}
}

static int any_reg(int epfd)
{
	unsigned j, span = reg_span();

	if (!__atomic_load_n(&regs_live, __ATOMIC_RELAXED))
		return 0;
	for (j = 0; j < span; j++)
		if (__atomic_load_n(&regs[j].epfd, __ATOMIC_RELAXED) == epfd)
			return 1;
	return 0;
}

int shim_epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
	int ret = real.epoll_wait(epfd, evs, max, timeout);
	int err = errno;

	if (ret > 0 && accept_counting() && any_reg(epfd))
		after_epoll(epfd, evs, ret);
	errno = err;
	return ret;
}

int shim_epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout,
		     const sigset_t *mask)
{
	int ret = real.epoll_pwait(epfd, evs, max, timeout, mask);
	int err = errno;

	if (ret > 0 && accept_counting() && any_reg(epfd))
		after_epoll(epfd, evs, ret);
	errno = err;
	return ret;
}

SHIM_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	real_ensure();
	return shim_epoll_ctl(epfd, op, fd, ev);
}

SHIM_EXPORT int epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
	real_ensure();
	return shim_epoll_wait(epfd, evs, max, timeout);
}

SHIM_EXPORT int epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout,
			    const sigset_t *mask)
{
	real_ensure();
	return shim_epoll_pwait(epfd, evs, max, timeout, mask);
}
