/* Wrappers of the calls that wait for readiness: poll, ppoll, select,
 * pselect, epoll_ctl, epoll_wait, epoll_pwait. This is where the
 * thundering herd lives: every worker waiting for a listener wakes when a
 * connection arrives, and all but one find nothing to accept.
 * observe: count the wakeups that reported a listener (the next accept
 * tells spurious from real). serialize: poll/select wait for a listener
 * only in the worker holding its poll token; the others wait for their
 * other descriptors in slices and try for the token between slices. For
 * epoll, the kernel's EPOLLEXCLUSIVE does the same job (see below). A set
 * with no listener in it costs a scan and the real call. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>

#include "accept.h"
#include "accept_lock.h"
#include "calls.h"
#include "emit.h"
#include "export.h"
#include "listeners.h"
#include "real.h"

/* How long a worker without the token waits for its other descriptors
 * before it tries for the token again. */
#define SLICE_MS 50

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
		const sigset_t *mask, size_t fdslen);

static int counting(void)
{
	return accept_mode != SOCKSHIM_ACCEPT_OFF && !shim_inert && shim_seg_live();
}

static int has_listener(const struct pollfd *fds, nfds_t n)
{
	nfds_t i;

	for (i = 0; i < n; i++)
		if (fdtab_is_listener(fds[i].fd))
			return 1;
	return 0;
}

/* Milliseconds left until DEADLINE (ns), for poll; -1: none. */
static int ms_left(uint64_t deadline)
{
	uint64_t now;

	if (!deadline)
		return -1;
	now = emit_now_ns();
	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

static uint64_t deadline_of_ms(int timeout)
{
	return timeout < 0 ? 0 : emit_now_ns() + (uint64_t)timeout * 1000000u;
}

/* After a poll: count the listeners it reported readable; a listener
 * whose token we hold but which is not readable gives its token back. */
static void after_poll(struct pollfd *fds, nfds_t n, int ret)
{
	nfds_t i;

	for (i = 0; i < n; i++) {
		struct sockshim_listener *l;

		if (fds[i].fd < 0 || !fdtab_is_listener(fds[i].fd))
			continue;
		l = listeners_entry(accept_listener_of(fds[i].fd));
		if (l) /* a worker that waits and never wins still has a row */
			listeners_worker(l);
		if (ret > 0 && (fds[i].revents & (POLLIN | POLLPRI))) {
			accept_woken(fds[i].fd); /* the token stays ours until the accept */
			continue;
		}
		if (l && accept_mode == SOCKSHIM_ACCEPT_SERIALIZE)
			accept_token_drop(l);
	}
}

/* serialize: hide from this poll the listeners whose token another worker
 * holds (fd -1 is skipped by the kernel). Returns how many were hidden;
 * their fds go to SAVED. */
static nfds_t hide_listeners(struct pollfd *fds, nfds_t n, int *saved)
{
	nfds_t i, hidden = 0;

	for (i = 0; i < n; i++) {
		struct sockshim_listener *l;

		saved[i] = -1;
		if (!fdtab_is_listener(fds[i].fd))
			continue;
		l = listeners_entry(accept_listener_of(fds[i].fd));
		if (!l || accept_token_take(l, fds[i].fd))
			continue;
		saved[i] = fds[i].fd;
		fds[i].fd = -1;
		hidden++;
	}
	return hidden;
}

static void unhide_listeners(struct pollfd *fds, nfds_t n, const int *saved)
{
	nfds_t i;

	for (i = 0; i < n; i++) {
		if (saved[i] < 0)
			continue;
		fds[i].fd = saved[i];
		fds[i].revents = 0;
	}
}

/* The serialized poll: CALL(fds, n, ms) is poll or ppoll. */
static int poll_serialized(struct pollfd *fds, nfds_t n, uint64_t deadline,
			   int (*call)(struct pollfd *, nfds_t, int, const void *), const void *arg)
{
	int saved[64], ret;
	/* A big set: only listeners among its first 64 entries are
	 * serialized; the rest are passed through as they are. */
	nfds_t limit = n > 64 ? 64 : n;

	for (;;) {
		nfds_t hidden = hide_listeners(fds, limit, saved);
		int ms = ms_left(deadline);

		if (hidden && (ms < 0 || ms > SLICE_MS))
			ms = SLICE_MS; /* come back for the token */
		ret = call(fds, n, ms, arg);
		unhide_listeners(fds, limit, saved);
		after_poll(fds, n, ret);
		if (ret != 0 || !hidden || ms_left(deadline) == 0)
			return ret;
	}
}

static int call_poll(struct pollfd *fds, nfds_t n, int ms, const void *arg)
{
	(void)arg;
	return real.poll(fds, n, ms);
}

struct ppoll_args {
	const sigset_t *mask;
};

static int call_ppoll(struct pollfd *fds, nfds_t n, int ms, const void *arg)
{
	const struct ppoll_args *a = arg;
	struct timespec ts;

	if (ms < 0)
		return real.ppoll(fds, n, NULL, a->mask);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	return real.ppoll(fds, n, &ts, a->mask);
}

int shim_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	int ret, err;

	if (!counting() || !has_listener(fds, n))
		return real.poll(fds, n, timeout);
	if (accept_mode == SOCKSHIM_ACCEPT_SERIALIZE)
		ret = poll_serialized(fds, n, deadline_of_ms(timeout), call_poll, NULL);
	else {
		ret = real.poll(fds, n, timeout);
		err = errno;
		after_poll(fds, n, ret);
		errno = err;
	}
	return ret;
}

static int shim_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
		      const sigset_t *mask)
{
	struct ppoll_args a = {mask};
	uint64_t deadline = 0;
	int ret, err;

	if (!counting() || !has_listener(fds, n))
		return real.ppoll(fds, n, timeout, mask);
	if (accept_mode == SOCKSHIM_ACCEPT_SERIALIZE) {
		if (timeout)
			deadline = emit_now_ns() + (uint64_t)timeout->tv_sec * 1000000000u +
				   (uint64_t)timeout->tv_nsec;
		if (timeout && !deadline)
			deadline = 1;
		return poll_serialized(fds, n, deadline, call_ppoll, &a);
	}
	ret = real.ppoll(fds, n, timeout, mask);
	err = errno;
	after_poll(fds, n, ret);
	errno = err;
	return ret;
}

/* select: the same with fd_sets. Listeners matter only in READ. */
static int select_has_listener(int nfds, const fd_set *rd)
{
	int fd;

	if (!rd)
		return 0;
	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (FD_ISSET(fd, rd) && fdtab_is_listener(fd))
			return 1;
	return 0;
}

static void after_select(int nfds, const fd_set *asked, const fd_set *rd, int ret)
{
	int fd;

	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
		struct sockshim_listener *l;

		if (!FD_ISSET(fd, asked) || !fdtab_is_listener(fd))
			continue;
		l = listeners_entry(accept_listener_of(fd));
		if (l) /* a worker that waits and never wins still has a row */
			listeners_worker(l);
		if (ret > 0 && FD_ISSET(fd, rd)) {
			accept_woken(fd);
			continue;
		}
		if (l && accept_mode == SOCKSHIM_ACCEPT_SERIALIZE)
			accept_token_drop(l);
	}
}

/* CALL is select or pselect with the timeout in ns (-1 none). */
static int select_serialized(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, uint64_t deadline,
			     int (*call)(int, fd_set *, fd_set *, fd_set *, int64_t, const void *),
			     const void *arg)
{
	fd_set want_rd, want_wr, want_ex, asked;
	int fd, ret;

	want_rd = *rd;
	if (wr)
		want_wr = *wr;
	if (ex)
		want_ex = *ex;
	for (;;) {
		int hidden = 0;
		int64_t ns;

		*rd = want_rd;
		if (wr)
			*wr = want_wr;
		if (ex)
			*ex = want_ex;
		asked = want_rd;
		for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
			struct sockshim_listener *l;

			if (!FD_ISSET(fd, rd) || !fdtab_is_listener(fd))
				continue;
			l = listeners_entry(accept_listener_of(fd));
			if (!l || accept_token_take(l, fd))
				continue;
			listeners_worker(l); /* waits without the token: still a worker */
			FD_CLR(fd, rd);
			FD_CLR(fd, &asked);
			hidden++;
		}
		if (!deadline)
			ns = -1;
		else {
			uint64_t now = emit_now_ns();

			ns = now >= deadline ? 0 : (int64_t)(deadline - now);
		}
		if (hidden && (ns < 0 || ns > (int64_t)SLICE_MS * 1000000))
			ns = (int64_t)SLICE_MS * 1000000;
		ret = call(nfds, rd, wr, ex, ns, arg);
		after_select(nfds, &asked, rd, ret);
		if (ret != 0 || !hidden || (deadline && emit_now_ns() >= deadline))
			return ret;
	}
}

static int call_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, int64_t ns, const void *arg)
{
	struct timeval tv;

	(void)arg;
	if (ns < 0)
		return real.select(nfds, rd, wr, ex, NULL);
	tv.tv_sec = ns / 1000000000;
	tv.tv_usec = (ns % 1000000000) / 1000;
	return real.select(nfds, rd, wr, ex, &tv);
}

static int call_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, int64_t ns, const void *arg)
{
	struct timespec ts;

	if (ns < 0)
		return real.pselect(nfds, rd, wr, ex, NULL, arg);
	ts.tv_sec = ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	return real.pselect(nfds, rd, wr, ex, &ts, arg);
}

static uint64_t deadline_of(uint64_t sec, uint64_t ns)
{
	/* 1, not 0: a zero timeout is a deadline already passed. */
	uint64_t d = emit_now_ns() + sec * 1000000000u + ns;

	return d ? d : 1;
}

int shim_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *timeout)
{
	fd_set asked;
	uint64_t deadline = 0;
	int ret, err;

	if (!counting() || !select_has_listener(nfds, rd))
		return real.select(nfds, rd, wr, ex, timeout);
	asked = *rd;
	if (accept_mode != SOCKSHIM_ACCEPT_SERIALIZE) {
		ret = real.select(nfds, rd, wr, ex, timeout);
		err = errno;
		after_select(nfds, &asked, rd, ret);
		errno = err;
		return ret;
	}
	if (timeout)
		deadline = deadline_of((uint64_t)timeout->tv_sec, (uint64_t)timeout->tv_usec * 1000u);
	ret = select_serialized(nfds, rd, wr, ex, deadline, call_select, NULL);
	err = errno;
	if (timeout) { /* Linux tells how much of the timeout is left */
		uint64_t now = emit_now_ns(), left = now >= deadline ? 0 : deadline - now;

		timeout->tv_sec = (time_t)(left / 1000000000u);
		timeout->tv_usec = (suseconds_t)(left % 1000000000u / 1000u);
	}
	errno = err;
	return ret;
}

static int shim_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
			const struct timespec *timeout, const sigset_t *mask)
{
	fd_set asked;
	uint64_t deadline = 0;
	int ret, err;

	if (!counting() || !select_has_listener(nfds, rd))
		return real.pselect(nfds, rd, wr, ex, timeout, mask);
	asked = *rd;
	if (accept_mode != SOCKSHIM_ACCEPT_SERIALIZE) {
		ret = real.pselect(nfds, rd, wr, ex, timeout, mask);
		err = errno;
		after_select(nfds, &asked, rd, ret);
		errno = err;
		return ret;
	}
	if (timeout)
		deadline = deadline_of((uint64_t)timeout->tv_sec, (uint64_t)timeout->tv_nsec);
	return select_serialized(nfds, rd, wr, ex, deadline, call_pselect, mask);
}

/* epoll. Its events carry the caller's data, not the fd: epoll_ctl
 * remembers which data stands for which listener. In serialize mode a
 * listener is added with EPOLLEXCLUSIVE (Linux 4.5), so the kernel wakes
 * one waiter per connection: no cost in the wrapper, where a token would
 * need slices and wakeups of its own (make bench compares the modes).
 * Edge-triggered and one-shot registrations are left alone. */
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

static struct epoll_reg *reg_find(int epfd, int fd)
{
	unsigned i;

	for (i = 0; i < EPOLL_SLOTS; i++)
		if (__atomic_load_n(&regs[i].epfd, __ATOMIC_ACQUIRE) == epfd &&
		    __atomic_load_n(&regs[i].fd, __ATOMIC_RELAXED) == fd)
			return &regs[i];
	return NULL;
}

static void reg_put(int epfd, int fd, uint64_t data, int exclusive)
{
	struct epoll_reg *r = reg_find(epfd, fd);
	unsigned i;

	for (i = 0; !r && i < EPOLL_SLOTS; i++) {
		int free_slot = -1;

		if (__atomic_compare_exchange_n(&regs[i].epfd, &free_slot, -2, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			r = &regs[i];
			__atomic_fetch_add(&regs_live, 1, __ATOMIC_RELAXED);
		}
	}
	if (!r)
		return; /* too many: that listener's wakeups go uncounted */
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

	if (!counting() || !fdtab_is_listener(fd))
		return real.epoll_ctl(epfd, op, fd, ev);
	if (op == EPOLL_CTL_DEL) {
		ret = real.epoll_ctl(epfd, op, fd, ev);
		err = errno;
		if (ret == 0)
			reg_drop(epfd, fd);
		errno = err;
		return ret;
	}
	if (!ev)
		return real.epoll_ctl(epfd, op, fd, ev);
	mine = *ev;
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
	if (ret == 0)
		reg_put(epfd, fd, ev->data.u64, exclusive);
	errno = err;
	return ret;
}

static void after_epoll(int epfd, const struct epoll_event *evs, int n)
{
	int i;
	unsigned j;

	for (i = 0; i < n; i++) {
		if (!(evs[i].events & (EPOLLIN | EPOLLPRI)))
			continue;
		for (j = 0; j < EPOLL_SLOTS; j++)
			if (__atomic_load_n(&regs[j].epfd, __ATOMIC_ACQUIRE) == epfd &&
			    __atomic_load_n(&regs[j].data, __ATOMIC_RELAXED) == evs[i].data.u64) {
				accept_woken(__atomic_load_n(&regs[j].fd, __ATOMIC_RELAXED));
				break;
			}
	}
}

static int any_reg(int epfd)
{
	unsigned j;

	if (!__atomic_load_n(&regs_live, __ATOMIC_RELAXED))
		return 0;
	for (j = 0; j < EPOLL_SLOTS; j++)
		if (__atomic_load_n(&regs[j].epfd, __ATOMIC_RELAXED) == epfd)
			return 1;
	return 0;
}

int shim_epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
	int ret = real.epoll_wait(epfd, evs, max, timeout);
	int err = errno;

	if (ret > 0 && counting() && any_reg(epfd))
		after_epoll(epfd, evs, ret);
	errno = err;
	return ret;
}

int shim_epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout,
		     const sigset_t *mask)
{
	int ret = real.epoll_pwait(epfd, evs, max, timeout, mask);
	int err = errno;

	if (ret > 0 && counting() && any_reg(epfd))
		after_epoll(epfd, evs, ret);
	errno = err;
	return ret;
}

SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	real_ensure();
	return shim_poll(fds, n, timeout);
}

SHIM_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	real_ensure();
	if (fdslen / sizeof(*fds) < n)
		return real.poll_chk(fds, n, timeout, fdslen); /* libc reports the overflow */
	return shim_poll(fds, n, timeout);
}

SHIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
		      const sigset_t *mask)
{
	real_ensure();
	return shim_ppoll(fds, n, timeout, mask);
}

SHIM_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
			    const sigset_t *mask, size_t fdslen)
{
	real_ensure();
	if (fdslen / sizeof(*fds) < n)
		return real.ppoll_chk(fds, n, timeout, mask, fdslen);
	return shim_ppoll(fds, n, timeout, mask);
}

SHIM_EXPORT int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *timeout)
{
	real_ensure();
	return shim_select(nfds, rd, wr, ex, timeout);
}

SHIM_EXPORT int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
			const struct timespec *timeout, const sigset_t *mask)
{
	real_ensure();
	return shim_pselect(nfds, rd, wr, ex, timeout, mask);
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
