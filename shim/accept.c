/* The accept policy. Statistics: calls, successes, and why an accept came
 * back empty-handed: woken for nothing (spurious) or tried without a
 * wakeup (empty). Serialize: a blocking accept takes the listener's lock
 * first, so only one worker at a time waits in accept (the lock-then-accept
 * pool model); a non-blocking listener never waits in the shim. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>

#include "accept.h"
#include "accept_lock.h"
#include "accept_token.h"
#include "emit.h"
#include "listeners.h"
#include "real.h"
#include "sockinfo.h"
#include "track.h"

/* The listener poll/select/epoll last reported readable to this thread. */
static __thread uint32_t woken_ref __attribute__((tls_model("initial-exec")));

uint32_t accept_listener_of(int fd)
{
	struct fd_entry e;
	uint32_t ref;

	if (accept_mode == SOCKSHIM_ACCEPT_OFF)
		return 0;
	ref = fdtab_listener_ref(fd); /* every accept's: no copy of the entry */
	if (ref)
		return ref;
	if (!fdtab_get(fd, &e) || !(e.flags & SOCKSHIM_FLAG_LISTENER))
		return 0;
	if (e.listener)
		return e.listener;
	/* A listener we did not see listen (inherited, adopted). */
	if (!track_lookup_or_adopt(fd, &e))
		return 0;
	e.listener = (uint16_t)listeners_get(shim_session(), e.inode, &e, SOCKSHIM_BACKLOG_UNKNOWN);
	if (e.listener)
		track_update(fd, &e);
	return e.listener;
}

void accept_woken(int fd)
{
	uint32_t ref = accept_listener_of(fd);
	struct sockshim_listener *l = listeners_entry(shim_session(), ref);

	if (!l)
		return;
	stat_add(&l->wakeups, 1);
	woken_ref = ref;
}

/* SO_RCVTIMEO of FD in ns, 0 for none: a blocking accept honours it, and
 * so does our wait for the lock in front of it. */
static uint64_t receive_timeout_ns(int fd)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) < 0)
		return 0;
	return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

static int blocking(int fd)
{
	int fl = real.fcntl(fd, F_GETFL);

	return fl >= 0 && !(fl & O_NONBLOCK);
}

static void unlock_on_cancel(void *arg)
{
	(void)accept_unlock(arg);
}

/* The real call. LEFT_NS, when not 0: what remains of the socket's
 * receive timeout after the wait for the lock; the kernel's accept would
 * end with EAGAIN then, not a whole timeout later, so we wait for a
 * connection that long first. (Another process's non-blocking accept may
 * still take it between the two: then the accept waits on, as a blocking
 * accept does.) MASK: the lock was taken after a sleep, with signals
 * blocked; the wait for a connection lets them in (accept_lock_await). */
static int accept_within(int fd, struct sockaddr *addr, socklen_t *len, int flags, int four,
			 uint64_t left_ns, const sigset_t *mask)
{
	if (mask) {
		int rc = accept_lock_await(fd, mask, left_ns);

		if (rc < 0) {
			errno = -rc;
			return -1;
		}
	} else if (left_ns) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int ret = real.poll(&p, 1, (int)((left_ns + 999999) / 1000000));

		if (ret <= 0) {
			if (ret == 0)
				errno = EAGAIN;
			return -1;
		}
	}
	return four ? real.accept4(fd, addr, len, flags) : real.accept(fd, addr, len);
}

/* The same with the lock given back if the thread is cancelled in it
 * (accept and poll are cancellation points). */
static int locked_accept(struct sockshim_listener *l, int fd, struct sockaddr *addr,
			 socklen_t *len, int flags, int four, uint64_t left_ns,
			 const sigset_t *mask)
{
	int ret;

	pthread_cleanup_push(unlock_on_cancel, l);
	ret = accept_within(fd, addr, len, flags, four, left_ns, mask);
	pthread_cleanup_pop(0);
	return ret;
}

/* Count the accept's outcome; *DONE_NS: the clock, read for a worker's
 * last activity, else left as it was. */
static void count(struct sockshim_listener *l, struct sockshim_worker *w, uint32_t ref,
		  int ret, int err, uint64_t *done_ns)
{
	int woken = woken_ref == ref;

	woken_ref = 0; /* a wakeup is used up by the first accept after it */
	if (w) {
		*done_ns = emit_now_ns();
		__atomic_store_n(&w->last_ns, *done_ns, __ATOMIC_RELAXED);
	}
	if (ret >= 0) {
		stat_add(&l->accepts, 1);
		if (w)
			stat_add(&w->accepts, 1);
		return;
	}
	switch (err) {
	case EAGAIN:
		stat_add(woken ? &l->spurious : &l->empty, 1);
		if (w)
			stat_add(woken ? &w->spurious : &w->empty, 1);
		break;
	case EINTR:
		stat_add(&l->eintr, 1);
		if (w)
			stat_add(&w->eintr, 1);
		break;
	case ECONNABORTED:
		stat_add(&l->econnaborted, 1);
		break;
	case EMFILE:
	case ENFILE:
		stat_add(&l->emfile, 1);
		break;
	default:
		break;
	}
}

int accept_run(int fd, struct sockaddr *addr, socklen_t *len, int flags, int four,
	       uint64_t *done_ns)
{
	uint32_t ref = shim_inert ? 0 : accept_listener_of(fd);
	struct sockshim_listener *l = listeners_entry(shim_session(), ref);
	struct sockshim_worker *w;
	uint64_t left_ns = 0;
	int ret, err, locked = 0, masked = 0;
	sigset_t program_mask;

	*done_ns = 0;
	if (!l)
		return four ? real.accept4(fd, addr, len, flags) : real.accept(fd, addr, len);
	w = listeners_worker(l);
	stat_add(&l->accept_calls, 1);
	if (w)
		stat_add(&w->calls, 1);
	if (accept_mode == SOCKSHIM_ACCEPT_SERIALIZE && blocking(fd)) {
		uint64_t timeout_ns = receive_timeout_ns(fd), waited = 0;
		int rc = accept_lock(l, fd, w, timeout_ns, &waited, &program_mask);

		if (rc == -EINTR || rc == -EAGAIN) {
			/* As the blocking accept would have ended. */
			count(l, w, ref, -1, -rc, done_ns);
			errno = -rc;
			return -1;
		}
		/* ACCEPT_BYPASSED: the holder cannot go on; nor do we wait. */
		locked = rc == ACCEPT_LOCKED || rc == ACCEPT_LOCKED_MASKED;
		masked = rc == ACCEPT_LOCKED_MASKED;
		/* A wait of a millisecond or more for the lock shortens the rest. */
		if (locked && timeout_ns && (waited >= 1000000 || masked))
			left_ns = waited < timeout_ns ? timeout_ns - waited : 1;
	}
	ret = locked ? locked_accept(l, fd, addr, len, flags, four, left_ns,
				     masked ? &program_mask : NULL)
		     : (four ? real.accept4(fd, addr, len, flags) : real.accept(fd, addr, len));
	err = errno;
	if (locked)
		(void)accept_unlock(l); /* an error is counted and said there */
	count(l, w, ref, ret, err, done_ns);
	if (accept_mode == SOCKSHIM_ACCEPT_SERIALIZE)
		accept_token_drop(l); /* the wakeup it waited for is used */
	errno = err;
	return ret;
}
