/* Wrappers of the calls that wait for readiness: poll, ppoll, select and
 * pselect (epoll: shim/calls_epoll.c). This is where the
 * thundering herd lives: every worker waiting for a listener wakes when a
 * connection arrives, and all but one find nothing to accept.
 * observe: count the wakeups that reported a listener (the next accept
 * tells spurious from real). serialize: poll/select wait for a listener
 * only in the worker holding its poll token; in the others the listener's
 * slot holds their doorbell (shim/doorbell.c) until the token is handed to
 * them, looking at the holder every 1.5 s meanwhile; a thread without a
 * doorbell waits in slices and tries for the token between them. select
 * and pselect wait in ppoll (a doorbell's number does not fit an fd_set)
 * and answer as select. A set with no listener in it costs a scan and the
 * real call.
 * The program's arrays and sets are the kernel's to judge: before the call
 * they are read and written only through usermem (a bad pointer gets
 * EFAULT, as without the shim, not a crash), and only as many bytes as
 * the kernel takes (an fd_set of NFDS bits may be smaller than fd_set). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "accept.h"
#include "accept_token.h"
#include "calls.h"
#include "doorbell.h"
#include "emit.h"
#include "export.h"
#include "listeners.h"
#include "real.h"
#include "select_poll.h"
#include "usermem.h"

/* How long a worker without the token waits for its other descriptors
 * before it tries for the token again. */
#define SLICE_MS 50

/* A big poll set: only listeners among its first entries are serialized;
 * the rest are passed through as they are. */
#define POLL_SERIALIZED 64

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
		const sigset_t *mask, size_t fdslen);

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

/* Nanoseconds left until DEADLINE, for select; -1: none. */
static int64_t ns_left(uint64_t deadline)
{
	uint64_t now;

	if (!deadline)
		return -1;
	now = emit_now_ns();
	return now >= deadline ? 0 : (int64_t)(deadline - now);
}

static uint64_t deadline_of(uint64_t sec, uint64_t ns)
{
	/* 1, not 0: a zero timeout is a deadline already passed. */
	uint64_t d = emit_now_ns() + sec * 1000000000u + ns;

	return d ? d : 1;
}

/* After a poll: count the listeners it reported readable; a listener
 * whose token we hold but which is not readable gives its token back. */
static void after_poll(const struct pollfd *fds, nfds_t n, int ret)
{
	nfds_t i;

	for (i = 0; i < n; i++) {
		struct sockshim_listener *l;

		if (fds[i].fd < 0 || !fdtab_is_listener(fds[i].fd))
			continue;
		l = listeners_entry(shim_session(), accept_listener_of(fds[i].fd));
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

/* A listener's slot in a serialized poll whose token another thread
 * holds: what the program had there, and what waits there instead. */
struct hidden {
	int fd;        /* the listener; -1: the slot is the program's as it was */
	short events;  /* the program's events for it */
	int bell;      /* our doorbell in the slot; -1: none, the slot is -1 (slices) */
	uint32_t ref;
	struct sockshim_listener *l;
	struct sockshim_worker *w;
};

/* The slot of a listener whose token we do not hold: our doorbell for
 * the row, or -1 (skipped by the kernel) for a thread without one. */
static struct pollfd stand_in(const struct hidden *h)
{
	struct pollfd p = {.fd = h->bell, .events = h->bell >= 0 ? POLLIN : 0, .revents = 0};

	return p;
}

/* serialize: hide from this poll the listeners whose token another worker
 * holds, each behind our doorbell or fd -1. Returns how many were hidden
 * (what they were in HID); *LOOK_MS: how long the poll may wait before we
 * try for the tokens again. FDS may be the program's own array only once
 * the kernel has taken it (a poll returned); before, the entries are read
 * from FIRST, a copy, and the slots written through usermem (EFAULT: -1). */
static long hide_listeners(struct pollfd *fds, const struct pollfd *first, nfds_t n,
			   struct hidden *hid, int *look_ms)
{
	nfds_t i;
	long hidden = 0;
	uint64_t look_ns = UINT64_MAX;

	for (i = 0; i < n; i++)
		hid[i].fd = -1;
	for (i = 0; i < n; i++) {
		struct hidden *h = &hid[i];
		struct pollfd p;
		int fd = first ? first[i].fd : fds[i].fd, taken;

		if (!fdtab_is_listener(fd))
			continue;
		h->ref = accept_listener_of(fd);
		h->l = listeners_entry(shim_session(), h->ref);
		if (!h->l)
			continue;
		h->w = listeners_worker(h->l);
		h->bell = h->w ? doorbell_fd(h->ref, (unsigned)(h->w - h->l->workers)) : -1;
		taken = h->bell >= 0 ? accept_token_take_or_wait(h->l, fd, h->w)
				     : accept_token_take(h->l, fd);
		if (taken)
			continue;
		h->fd = fd;
		h->events = (first ? first : fds)[i].events;
		hidden++;
		p = stand_in(h);
		if (!first)
			fds[i] = p;
		else if (usermem_write(&fds[i], &p, sizeof(p)) < 0) {
			/* Not writable: the kernel says EFAULT. Not ours to
			 * put back either. */
			if (h->bell >= 0)
				accept_token_unwait(h->l, h->w);
			h->fd = -1;
			return -1;
		}
		if (h->bell < 0)
			look_ns = (uint64_t)SLICE_MS * 1000000u;
		else if (accept_token_look_ns(h->l) < look_ns)
			look_ns = accept_token_look_ns(h->l);
	}
	*look_ms = look_ns == UINT64_MAX ? -1 : (int)((look_ns + 999999) / 1000000);
	return hidden;
}

/* After the poll (RET its result): the doorbells that rang are no events
 * of the program's (taken out of RET, and their rings taken), and the
 * slots are the program's again. Returns RET so corrected. */
static int unhide_listeners(struct pollfd *fds, nfds_t n, struct hidden *hid, int ret)
{
	nfds_t i;

	for (i = 0; i < n; i++) {
		struct hidden *h = &hid[i];

		if (h->fd < 0)
			continue;
		if (h->bell >= 0) {
			if (ret > 0 && fds[i].revents) {
				ret--;
				if (fds[i].revents & POLLIN)
					doorbell_drain(h->ref, h->bell);
			}
			accept_token_unwait(h->l, h->w);
		}
		fds[i].fd = h->fd;
		fds[i].events = h->events;
		fds[i].revents = 0;
	}
	return ret;
}

struct hiding {
	struct pollfd *fds;
	nfds_t n;
	struct hidden *hid;
};

/* The poll returns to the program: a token offered to us that we did not
 * take goes to the next waiter, not left to lapse. */
static void decline_tokens(const struct hidden *hid, nfds_t n)
{
	nfds_t i;

	for (i = 0; i < n; i++)
		if (hid[i].fd >= 0 && hid[i].bell >= 0)
			accept_token_decline(hid[i].l, hid[i].ref, hid[i].w);
}

/* The thread is cancelled in the poll (a cancellation point): the slots
 * are the program's again and it waits for no token. */
static void unhide_on_cancel(void *arg)
{
	const struct hiding *h = arg;

	(void)unhide_listeners(h->fds, h->n, h->hid, -1);
	decline_tokens(h->hid, h->n);
}

/* CALL(fds, n, ms, arg), with the slots H hides put back if the thread
 * is cancelled in it. */
static int call_hiding(int (*call)(struct pollfd *, nfds_t, int, const void *), struct pollfd *fds,
		       nfds_t n, int ms, const void *arg, struct hiding *h)
{
	int ret;

	pthread_cleanup_push(unhide_on_cancel, h);
	ret = call(fds, n, ms, arg);
	pthread_cleanup_pop(0);
	return ret;
}

/* The serialized poll: CALL(fds, n, ms) is poll or ppoll. FIRST is the
 * copy of the first LIMIT entries (serialize_limit) the caller read. */
static int poll_serialized(struct pollfd *fds, nfds_t n, const struct pollfd *first,
			   nfds_t limit, uint64_t deadline,
			   int (*call)(struct pollfd *, nfds_t, int, const void *), const void *arg)
{
	struct hidden hid[POLL_SERIALIZED];
	struct hiding hiding = {fds, limit, hid};
	int ret, err, entry = errno;

	for (;;) {
		int look = -1;
		long hidden = hide_listeners(fds, first, limit, hid, &look);
		int ms = ms_left(deadline);

		if (hidden < 0) {
			/* Not writable: the ones hidden so far (writable) back,
			 * the tokens taken back; the kernel says EFAULT. */
			unhide_listeners(fds, limit, hid, -1);
			after_poll(first, limit, -1);
			return call(fds, n, ms_left(deadline), arg);
		}
		first = NULL; /* the kernel takes the array from here on */
		if (hidden && (ms < 0 || ms > look))
			ms = look; /* come back for the token */
		ret = call_hiding(call, fds, n, ms, arg, &hiding);
		err = ret < 0 ? errno : entry;
		ret = unhide_listeners(fds, limit, hid, ret);
		if (ret >= 0 || err == EINTR)
			after_poll(fds, n, ret);
		if (ret != 0 || !hidden || ms_left(deadline) == 0) {
			decline_tokens(hid, limit);
			errno = err; /* the call's, whatever the count did */
			return ret;
		}
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

/* serialize: the first LIMIT entries of FDS (the ones serialized: a big
 * set's listeners past them are passed through as they are), copied into
 * FIRST without trusting FDS. 1 when one is a listener; 0 when none is,
 * or FDS is not readable (the kernel will say EFAULT). */
static int serialize_limit(const struct pollfd *fds, nfds_t n, struct pollfd *first,
			   nfds_t *limit)
{
	*limit = n > POLL_SERIALIZED ? POLL_SERIALIZED : n;
	return *limit && usermem_read(first, fds, *limit * sizeof(*fds)) == 0 &&
	       has_listener(first, *limit);
}

/* Not serialized: the call, then the count. The program's array is read
 * only once the kernel has read it (a result, or EINTR). */
static int poll_observed(struct pollfd *fds, nfds_t n, int ret)
{
	int err = errno;

	if (ret >= 0 || err == EINTR)
		after_poll(fds, n, ret);
	errno = err;
	return ret;
}

int shim_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	struct pollfd first[POLL_SERIALIZED];
	nfds_t limit;

	if (!accept_counting() || !fdtab_listeners_seen())
		return real.poll(fds, n, timeout);
	if (accept_mode == SOCKSHIM_ACCEPT_SERIALIZE && serialize_limit(fds, n, first, &limit))
		return poll_serialized(fds, n, first, limit, deadline_of_ms(timeout), call_poll,
				       NULL);
	return poll_observed(fds, n, real.poll(fds, n, timeout));
}

static int shim_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
		      const sigset_t *mask)
{
	struct ppoll_args a = {mask};
	struct pollfd first[POLL_SERIALIZED];
	struct timespec ts = {0, 0};
	uint64_t deadline = 0;
	nfds_t limit;

	if (!accept_counting() || !fdtab_listeners_seen())
		return real.ppoll(fds, n, timeout, mask);
	/* A timeout the kernel refuses (EINVAL) or cannot read (EFAULT) is
	 * the kernel's to answer: the slices would pass their own. */
	if (accept_mode == SOCKSHIM_ACCEPT_SERIALIZE && serialize_limit(fds, n, first, &limit) &&
	    (!timeout || (usermem_read(&ts, timeout, sizeof(ts)) == 0 && ts.tv_sec >= 0 &&
			  ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000))) {
		if (timeout)
			deadline = deadline_of((uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec);
		return poll_serialized(fds, n, first, limit, deadline, call_ppoll, &a);
	}
	return poll_observed(fds, n, real.ppoll(fds, n, timeout, mask));
}

/* select: the same with fd_sets. Listeners matter only in READ. */
static int select_has_listener(int nfds, const fd_set *rd)
{
	int fd;

	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (FD_ISSET(fd, rd) && fdtab_is_listener(fd))
			return 1;
	return 0;
}

/* The bytes of a set the kernel takes for NFDS (whole longs), at most an
 * fd_set: the shim looks at descriptors below FD_SETSIZE only. */
static size_t set_bytes(int nfds)
{
	int n = nfds < FD_SETSIZE ? nfds : FD_SETSIZE;

	return ((size_t)n + 63) / 64 * 8;
}

/* The sets a select waits on: READ's first bytes copied into *ASKED
 * (zeroed past them), without trusting READ. 1 when it names a listener;
 * 0 when not, or not readable (the kernel will say EFAULT). */
static int select_asked(int nfds, const fd_set *rd, fd_set *asked)
{
	if (!rd || nfds <= 0)
		return 0;
	FD_ZERO(asked);
	return usermem_read(asked, rd, set_bytes(nfds)) == 0 && select_has_listener(nfds, asked);
}

static void after_select(int nfds, const fd_set *asked, const fd_set *rd, int ret)
{
	int fd;

	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
		struct sockshim_listener *l;

		if (!FD_ISSET(fd, asked) || !fdtab_is_listener(fd))
			continue;
		l = listeners_entry(shim_session(), accept_listener_of(fd));
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

/* A serialized select waits in ppoll: a listener's doorbell has no small
 * number (it is far above what programs use, often past NFDS and
 * FD_SETSIZE), and poll takes it in the listener's slot. The answer is
 * select's (shim/select_poll.c); a descriptor that is not open is EBADF
 * with the sets untouched. */
/* The poll array for sets WANT of NFDS: the listeners asked for reading
 * first (at most POLL_SERIALIZED of them: *LISTENERS), then the rest. */
static nfds_t select_array(int nfds, const fd_set want[3], struct pollfd *pf, nfds_t *listeners)
{
	nfds_t n = 0;
	int pass, fd;

	*listeners = 0;
	for (pass = 0; pass < 2; pass++)
		for (fd = 0; fd < nfds; fd++) {
			short ev = select_poll_events(want, fd);
			int first = FD_ISSET(fd, &want[0]) && fdtab_is_listener(fd) &&
				    *listeners < POLL_SERIALIZED;

			if (!ev || first != !pass)
				continue;
			pf[n].fd = fd;
			pf[n].events = ev;
			pf[n].revents = 0;
			n++;
			if (!pass)
				(*listeners)++;
		}
	return n;
}

/* Write the answer GOT (the first B bytes of each set) into the
 * program's sets. 0, or -1 when one is not writable. */
static int select_put(fd_set *const user[3], const fd_set got[3], size_t b)
{
	struct iovec local[3], remote[3];
	int i, n = 0;

	for (i = 0; i < 3; i++) {
		if (!user[i])
			continue;
		local[n].iov_base = (void *)&got[i];
		remote[n].iov_base = user[i];
		local[n].iov_len = remote[n].iov_len = b;
		n++;
	}
	return n ? usermem_writev(local, remote, n) : 0;
}

struct select_args {
	select_call call;
};

/* The program's own select (ARG: struct select_args) or pselect (ARG:
 * the mask), timeout in ns (-1 none): what the kernel answers when the
 * sets cannot be read. */
static int call_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, int64_t ns, const void *arg)
{
	const struct select_args *a = arg;
	struct timeval tv;

	if (ns < 0)
		return a->call(nfds, rd, wr, ex, NULL);
	tv.tv_sec = ns / 1000000000;
	tv.tv_usec = (ns % 1000000000) / 1000;
	return a->call(nfds, rd, wr, ex, &tv);
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

/* The serialized select and pselect (MASK: pselect's, NULL for select).
 * ASKED is READ's copy (select_asked); only descriptors below FD_SETSIZE.
 * DEADLINE: 0 none. */
static int select_serialized(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const fd_set *asked,
			     uint64_t deadline, const sigset_t *mask,
			     int (*fallback)(int, fd_set *, fd_set *, fd_set *, int64_t, const void *),
			     const void *fallback_arg)
{
	fd_set *const user[3] = {rd, wr, ex};
	struct ppoll_args a = {mask};
	struct pollfd pf[FD_SETSIZE];
	fd_set want[3], got[3];
	size_t b = set_bytes(nfds);
	struct iovec local[2], remote[2];
	nfds_t n, listeners;
	int i, ret, n_io = 0;

	want[0] = *asked;
	FD_ZERO(&want[1]);
	FD_ZERO(&want[2]);
	for (i = 1; i < 3; i++) {
		if (!user[i])
			continue;
		local[n_io].iov_base = &want[i];
		remote[n_io].iov_base = user[i];
		local[n_io].iov_len = remote[n_io].iov_len = b;
		n_io++;
	}
	if (n_io && usermem_readv(local, remote, n_io) < 0) /* the kernel's EFAULT */
		return fallback(nfds, rd, wr, ex, ns_left(deadline), fallback_arg);
	n = select_array(nfds, want, pf, &listeners);
	for (;;) {
		ret = poll_serialized(pf, n, NULL, listeners, deadline, call_ppoll, &a);
		if (ret < 0)
			return ret;
		ret = select_poll_answer(pf, n, want, got);
		if (ret < 0) {
			errno = EBADF;
			return -1;
		}
		if (ret > 0 || ms_left(deadline) == 0)
			break;
		/* Only what select does not report: sleep on. */
	}
	if (select_put(user, got, b) < 0) {
		errno = EFAULT;
		return -1;
	}
	return ret;
}

/* Not serialized: the call, then the count (READ is read only once the
 * kernel has written it: a result). */
static int select_observed(int nfds, const fd_set *asked, const fd_set *rd, int ret)
{
	int err = errno;

	after_select(nfds, asked, rd, ret);
	errno = err;
	return ret;
}

int shim_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *timeout,
		select_call call)
{
	struct select_args a = {call};
	fd_set asked;
	struct timeval tv = {0, 0};
	uint64_t deadline = 0, now, left;
	int ret, err;

	if (!accept_counting() || !fdtab_listeners_seen() || !select_asked(nfds, rd, &asked))
		return call(nfds, rd, wr, ex, timeout);
	/* serialize, but not a set past FD_SETSIZE (its higher descriptors
	 * could not be put back between slices), nor a timeout the kernel
	 * refuses (EINVAL) or cannot read (EFAULT): the kernel answers. */
	if (accept_mode != SOCKSHIM_ACCEPT_SERIALIZE || nfds > FD_SETSIZE ||
	    (timeout && (usermem_read(&tv, timeout, sizeof(tv)) < 0 || tv.tv_sec < 0 ||
			 tv.tv_usec < 0)))
		return select_observed(nfds, &asked, rd, call(nfds, rd, wr, ex, timeout));
	if (timeout)
		deadline = deadline_of((uint64_t)tv.tv_sec, (uint64_t)tv.tv_usec * 1000u);
	ret = select_serialized(nfds, rd, wr, ex, &asked, deadline, NULL, call_select, &a);
	err = errno;
	if (timeout) {
		/* Linux tells how much of the timeout is left, and lets a
		 * timeval in read-only memory be. */
		now = emit_now_ns();
		left = now >= deadline ? 0 : deadline - now;
		tv.tv_sec = (time_t)(left / 1000000000u);
		tv.tv_usec = (suseconds_t)(left % 1000000000u / 1000u);
		(void)usermem_write(timeout, &tv, sizeof(tv));
	}
	errno = err;
	return ret;
}

static int shim_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
			const struct timespec *timeout, const sigset_t *mask)
{
	fd_set asked;
	struct timespec ts = {0, 0};
	uint64_t deadline = 0;

	if (!accept_counting() || !fdtab_listeners_seen() || !select_asked(nfds, rd, &asked))
		return real.pselect(nfds, rd, wr, ex, timeout, mask);
	if (accept_mode != SOCKSHIM_ACCEPT_SERIALIZE || nfds > FD_SETSIZE ||
	    (timeout && (usermem_read(&ts, timeout, sizeof(ts)) < 0 || ts.tv_sec < 0 ||
			 ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)))
		return select_observed(nfds, &asked, rd,
				       real.pselect(nfds, rd, wr, ex, timeout, mask));
	if (timeout)
		deadline = deadline_of((uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec);
	return select_serialized(nfds, rd, wr, ex, &asked, deadline, mask, call_pselect, mask);
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
	return shim_select(nfds, rd, wr, ex, timeout, real.select);
}

SHIM_EXPORT int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
			const struct timespec *timeout, const sigset_t *mask)
{
	real_ensure();
	return shim_pselect(nfds, rd, wr, ex, timeout, mask);
}
