/* Wrappers of the calls that create, name and connect sockets: socket,
 * socketpair, bind, listen, accept, accept4, connect, shutdown, and
 * setsockopt (for SO_LINGER only).
 * Exported name -> static shim_* (logic) -> real.* (libc). errno after a
 * wrapper is exactly what the real call set. */
#include <errno.h>
#include <string.h>

#include "accept.h"
#include "calls.h"
#include "doorbell.h"
#include "emit.h"
#include "listeners.h"
#include "export.h"
#include "real.h"
#include "sockinfo.h"
#include "track.h"
#include "usermem.h"

/* Did a bind or connect that failed with ERR get as far as copying the
 * caller's address? If not (EFAULT: unreadable; EINVAL: possibly refused
 * for its length first; EBADF: checked before), we must not read it
 * either: the host never pays for our curiosity. */
static int kernel_read_addr(int err)
{
	return err != EFAULT && err != EINVAL && err != EBADF;
}

int shim_socket(int domain, int type, int protocol, void *caller)
{
	int fd = real.socket(domain, type, protocol);
	int err = errno;

	if (shim_inert)
		return fd;
	if (fd >= 0) {
		track_socket(fd, domain, type, -1, caller);
	} else {
		struct sockshim_record r;

		record_init(&r, SOCKSHIM_EV_SOCKET, -1, fd, err);
		r.family = (uint16_t)domain;
		r.socktype = (uint16_t)(type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC));
		r.detail.socket.pair_fd = -1;
		emit_record(&r);
	}
	errno = err;
	return fd;
}

int shim_socketpair(int domain, int type, int protocol, int sv[2], void *caller)
{
	int ret = real.socketpair(domain, type, protocol, sv);
	int err = errno;

	if (!shim_inert && ret == 0) {
		track_socket(sv[0], domain, type, sv[1], caller);
		track_socket(sv[1], domain, type, sv[0], caller);
	}
	errno = err;
	return ret;
}

int shim_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	int ret = real.bind(fd, addr, len);
	int err = errno;
	struct fd_entry e;

	if (shim_inert || !track_lookup_or_adopt(fd, &e))
		goto out;
	if (ret == 0) {
		sockinfo_set_addr(&e, 0, addr, len);
		/* Port 0 or an unknown family: ask the kernel what we got. */
		if (!(e.flags & SOCKSHIM_FLAG_LOCAL_KNOWN) || !e.local_port)
			sockinfo_query_addr(fd, &e, 0);
		track_addresses(fd, &e, 0);
		emit_simple(SOCKSHIM_EV_BIND, fd, &e, ret, err);
	} else {
		struct fd_entry want = e;

		if (kernel_read_addr(err))
			sockinfo_set_addr(&want, 0, addr, len);
		emit_simple(SOCKSHIM_EV_BIND, fd, &want, ret, err);
	}
out:
	errno = err;
	return ret;
}

int shim_listen(int fd, int backlog)
{
	int ret = real.listen(fd, backlog);
	int err = errno;
	struct fd_entry e;

	if (shim_inert || !track_lookup_or_adopt(fd, &e))
		goto out;
	if (ret == 0) {
		e.flags |= SOCKSHIM_FLAG_LISTENER;
		if (!(e.flags & SOCKSHIM_FLAG_LOCAL_KNOWN) || !e.local_port)
			sockinfo_query_addr(fd, &e, 0);
		/* Also for a listener already known: its backlog is the last. */
		e.listener = (uint16_t)listeners_get(shim_session(), e.inode, &e, backlog);
		track_addresses(fd, &e, 0);
		/* Before the program forks its workers: they share them. */
		if (accept_mode == SOCKSHIM_ACCEPT_SERIALIZE)
			doorbell_make(e.listener);
	}
	emit_simple(SOCKSHIM_EV_LISTEN, fd, &e, ret, err);
out:
	errno = err;
	return ret;
}

/* Does the shim record the peer of connections accepted on FD (a TCP or
 * other stream listener of AF_INET or AF_INET6 in the table)? Then, when
 * the caller wants no address, the kernel is handed the shim's own buffer:
 * for these families it cannot fail to name the peer (the name of an
 * accepted socket is its connection's), so the call ends as it would
 * have, and no getpeername follows. */
static int peer_from_accept(int fd)
{
	struct fd_entry l;

	return fdtab_get(fd, &l) && (l.family == AF_INET || l.family == AF_INET6) &&
	       l.socktype == SOCK_STREAM;
}

int shim_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags, int four,
		 void *caller)
{
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof(peer), asked = 0;
	uint64_t done_ns;
	int recorded = !shim_inert && peer_from_accept(fd);
	int own = recorded && !addr;
	/* The program's buffer in its frames on the main stack (nginx's,
	 * Python's socket.accept): memory that cannot be unmapped under us,
	 * read before the call (its length) and after (the peer, if the
	 * kernel did not cut it short) without a getpeername. */
	int framed = recorded && addr && len && usermem_on_main_stack(len, sizeof(*len));
	int ret, err;

	if (framed)
		asked = *len;
	ret = own ? accept_run(fd, (struct sockaddr *)&peer, &peer_len, flags, four, &done_ns)
		  : accept_run(fd, addr, len, flags, four, &done_ns);
	err = errno;
	if (framed && ret >= 0) {
		socklen_t got = *len;

		if (got <= asked && got <= sizeof(peer) && usermem_on_main_stack(addr, got)) {
			memcpy(&peer, addr, got);
			peer_len = got;
			own = 1;
		}
	}
	/* EAGAIN is a poll loop's normal answer, not a lifecycle event. The
	 * caller's ADDR and LEN are not read anywhere else: they may be
	 * anything libc would answer EFAULT to (after a successful accept,
	 * only another thread's munmap could make them so; we do not bet the
	 * host on it), and the kernel tells us the peer anyway: in our own
	 * buffer when the caller passed none, by getpeername otherwise. */
	if (!shim_inert && (ret >= 0 || (err != EAGAIN && err != EWOULDBLOCK)))
		track_accept(fd, ret, err, four ? flags : 0, caller,
			     own && ret >= 0 ? (struct sockaddr *)&peer : NULL, peer_len, done_ns);
	errno = err;
	return ret;
}

int shim_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int ret = real.connect(fd, addr, len);
	int err = errno;
	struct fd_entry e;

	if (shim_inert || !track_lookup_or_adopt(fd, &e))
		goto out;
	if (ret == 0 || kernel_read_addr(err))
		sockinfo_set_addr(&e, 1, addr, len);
	if (ret == 0 || err == EINPROGRESS || err == EALREADY || err == EISCONN) {
		/* The kernel chose our address before sending the SYN. */
		sockinfo_query_addr(fd, &e, 0);
		track_addresses(fd, &e,
				e.born == SOCKSHIM_BORN_SOCKET ? SOCKSHIM_BORN_CONNECT : 0);
	}
	emit_simple(SOCKSHIM_EV_CONNECT, fd, &e, ret, err);
out:
	errno = err;
	return ret;
}

int shim_shutdown(int fd, int how, void *caller)
{
	int ret = real.shutdown(fd, how);
	int err = errno;
	struct fd_entry e;

	if (!shim_inert && track_lookup_or_adopt(fd, &e))
		track_shutdown(fd, &e, how, ret, err, caller);
	errno = err;
	return ret;
}

/* setsockopt(SOL_SOCKET, SO_LINGER), the slow half: the value is read
 * after the kernel took it, and through usermem (another thread may unmap
 * it meanwhile). */
static __attribute__((noinline)) int setsockopt_linger(int fd, const void *val, socklen_t len)
{
	struct linger lg = {0, 0};
	int ret, err;

	real_ensure();
	ret = real.setsockopt(fd, SOL_SOCKET, SO_LINGER, val, len);
	if (ret != 0 || shim_inert || !fdtab_is_tracked(fd) || len < sizeof(lg))
		return ret;
	err = errno;
	if (usermem_read(&lg, val, sizeof(lg)) == 0)
		track_linger(fd, lg.l_onoff && !lg.l_linger);
	errno = err;
	return ret;
}

/* Only SO_LINGER on a tracked socket matters (an abortive close): every
 * other option goes to libc as a tail call after two compares, and
 * SO_LINGER on an untracked descriptor after the table's test too
 * (real.setsockopt needs no check, see real.h). inline: so that GCC
 * copies it into setsockopt() rather than jump to it. */
inline int shim_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	if (__builtin_expect(level != SOL_SOCKET || name != SO_LINGER, 1))
		return real.setsockopt(fd, level, name, val, len);
	if (!fdtab_maybe_tracked(fd))
		return real.setsockopt(fd, level, name, val, len);
	return setsockopt_linger(fd, val, len);
}

SHIM_EXPORT int socket(int domain, int type, int protocol)
{
	real_ensure();
	return shim_socket(domain, type, protocol, __builtin_return_address(0));
}

SHIM_EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
	real_ensure();
	return shim_socketpair(domain, type, protocol, sv, __builtin_return_address(0));
}

SHIM_EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	real_ensure();
	return shim_bind(fd, addr, len);
}

SHIM_EXPORT int listen(int fd, int backlog)
{
	real_ensure();
	return shim_listen(fd, backlog);
}

SHIM_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	real_ensure();
	return shim_accept4(fd, addr, len, 0, 0, __builtin_return_address(0));
}

SHIM_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	real_ensure();
	return shim_accept4(fd, addr, len, flags, 1, __builtin_return_address(0));
}

SHIM_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	real_ensure();
	return shim_connect(fd, addr, len);
}

SHIM_EXPORT int shutdown(int fd, int how)
{
	real_ensure();
	return shim_shutdown(fd, how, __builtin_return_address(0));
}

SHIM_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	return shim_setsockopt(fd, level, name, val, len);
}
