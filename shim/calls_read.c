/* Wrappers of the calls that read from a descriptor: read, readv, recv,
 * recvfrom, recvmsg and their _FORTIFY_SOURCE variants. Their only job is
 * to notice the peer's EOF (0 returned on a tracked stream socket); on an
 * untracked descriptor they cost three loads and a branch (fdtab.h). */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "calls.h"
#include "export.h"
#include "fdtab.h"
#include "real.h"
#include "track.h"

/* libc's _FORTIFY_SOURCE entry points, declared by its headers only when
 * fortification is on. */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
		       struct sockaddr *addr, socklen_t *len);

static inline int iov_nonempty(const struct iovec *iov, int n)
{
	int i;

	for (i = 0; iov && i < n; i++)
		if (iov[i].iov_len)
			return 1;
	return 0;
}

/* Every read wrapper has two halves. The inline fast half sends an
 * untracked descriptor straight to libc as a tail call, with no stack
 * frame: a few loads and branches (real.X needs no check, see real.h).
 * The out-of-line slow half, on a descriptor that may be tracked (see
 * fdtab_maybe_tracked: the track_ functions ask exactly), takes a 0 from
 * a read that asked for something as the peer's FIN. */
#define PASS_THROUGH(fd) __builtin_expect(!fdtab_maybe_tracked(fd), 1)

#define READ_SLOW(fd, call, asked)                  \
	do {                                        \
		ssize_t ret_;                       \
		real_ensure();                      \
		ret_ = call;                        \
		if (ret_ > 0)                       \
			track_read(fd);             \
		else if (ret_ == 0 && (asked))      \
			track_read_zero(fd);        \
		return ret_;                        \
	} while (0)

static __attribute__((noinline)) ssize_t shim_read_slow(int fd, void *buf, size_t n)
{
	READ_SLOW(fd, real.read(fd, buf, n), n);
}

static __attribute__((noinline)) ssize_t shim_read_chk_slow(int fd, void *buf, size_t n,
							    size_t buflen)
{
	READ_SLOW(fd, real.read_chk(fd, buf, n, buflen), n);
}

static __attribute__((noinline)) ssize_t shim_readv_slow(int fd, const struct iovec *iov, int n)
{
	READ_SLOW(fd, real.readv(fd, iov, n), iov_nonempty(iov, n));
}

static __attribute__((noinline)) ssize_t shim_recv_slow(int fd, void *buf, size_t n, int flags)
{
	READ_SLOW(fd, real.recv(fd, buf, n, flags), n);
}

static __attribute__((noinline)) ssize_t shim_recv_chk_slow(int fd, void *buf, size_t n,
							    size_t buflen, int flags)
{
	READ_SLOW(fd, real.recv_chk(fd, buf, n, buflen, flags), n);
}

static __attribute__((noinline)) ssize_t shim_recvfrom_slow(int fd, void *buf, size_t n,
							    int flags, struct sockaddr *addr,
							    socklen_t *len)
{
	READ_SLOW(fd, real.recvfrom(fd, buf, n, flags, addr, len), n);
}

static __attribute__((noinline)) ssize_t shim_recvfrom_chk_slow(int fd, void *buf, size_t n,
								size_t buflen, int flags,
								struct sockaddr *addr,
								socklen_t *len)
{
	READ_SLOW(fd, real.recvfrom_chk(fd, buf, n, buflen, flags, addr, len), n);
}

/* recvmsg also carries descriptors (SCM_RIGHTS): those that are sockets
 * join the ledger as the receiver's. */
static __attribute__((noinline)) ssize_t shim_recvmsg_slow(int fd, struct msghdr *msg,
							   int flags)
{
	ssize_t ret;
	int err;

	real_ensure();
	ret = real.recvmsg(fd, msg, flags);
	err = errno;
	if (ret >= 0 && msg && msg->msg_controllen && fdtab_is_tracked(fd))
		track_received(fd, msg);
	if (ret > 0)
		track_read(fd);
	else if (ret == 0 && msg && iov_nonempty(msg->msg_iov, (int)msg->msg_iovlen))
		track_read_zero(fd);
	errno = err;
	return ret;
}

ssize_t shim_read(int fd, void *buf, size_t n)
{
	if (PASS_THROUGH(fd))
		return real.read(fd, buf, n);
	return shim_read_slow(fd, buf, n);
}

static inline ssize_t shim_read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (PASS_THROUGH(fd))
		return real.read_chk(fd, buf, n, buflen);
	return shim_read_chk_slow(fd, buf, n, buflen);
}

ssize_t shim_readv(int fd, const struct iovec *iov, int n)
{
	if (PASS_THROUGH(fd))
		return real.readv(fd, iov, n);
	return shim_readv_slow(fd, iov, n);
}

static inline ssize_t shim_recv(int fd, void *buf, size_t n, int flags)
{
	if (PASS_THROUGH(fd))
		return real.recv(fd, buf, n, flags);
	return shim_recv_slow(fd, buf, n, flags);
}

static inline ssize_t shim_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (PASS_THROUGH(fd))
		return real.recv_chk(fd, buf, n, buflen, flags);
	return shim_recv_chk_slow(fd, buf, n, buflen, flags);
}

ssize_t shim_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
		      socklen_t *len)
{
	if (PASS_THROUGH(fd))
		return real.recvfrom(fd, buf, n, flags, addr, len);
	return shim_recvfrom_slow(fd, buf, n, flags, addr, len);
}

static inline ssize_t shim_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
					int flags, struct sockaddr *addr, socklen_t *len)
{
	if (PASS_THROUGH(fd))
		return real.recvfrom_chk(fd, buf, n, buflen, flags, addr, len);
	return shim_recvfrom_chk_slow(fd, buf, n, buflen, flags, addr, len);
}

ssize_t shim_recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (PASS_THROUGH(fd))
		return real.recvmsg(fd, msg, flags);
	return shim_recvmsg_slow(fd, msg, flags);
}

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	return shim_read(fd, buf, n);
}

SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	return shim_read_chk(fd, buf, n, buflen);
}

SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	return shim_readv(fd, iov, n);
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	return shim_recv(fd, buf, n, flags);
}

SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	return shim_recv_chk(fd, buf, n, buflen, flags);
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
			     socklen_t *len)
{
	return shim_recvfrom(fd, buf, n, flags, addr, len);
}

SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
				   struct sockaddr *addr, socklen_t *len)
{
	return shim_recvfrom_chk(fd, buf, n, buflen, flags, addr, len);
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	return shim_recvmsg(fd, msg, flags);
}
