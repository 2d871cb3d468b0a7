/* Wrappers of the calls that read from a descriptor: read, readv, recv,
 * recvfrom, recvmsg and their _FORTIFY_SOURCE variants. Their only job is
 * to notice the peer's EOF (0 returned on a tracked stream socket); on an
 * untracked descriptor they cost two loads and a branch. */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

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

/* A 0 from a read that asked for something: the peer's FIN. */
#define AFTER_READ(fd, ret, asked)                                      \
	do {                                                            \
		if ((ret) == 0 && (asked) && fdtab_is_tracked(fd))      \
			track_read_zero(fd);                            \
	} while (0)

static inline ssize_t shim_read(int fd, void *buf, size_t n)
{
	ssize_t ret = real.read(fd, buf, n);

	AFTER_READ(fd, ret, n);
	return ret;
}

static inline ssize_t shim_read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	ssize_t ret = real.read_chk(fd, buf, n, buflen);

	AFTER_READ(fd, ret, n);
	return ret;
}

static inline ssize_t shim_readv(int fd, const struct iovec *iov, int n)
{
	ssize_t ret = real.readv(fd, iov, n);

	AFTER_READ(fd, ret, iov_nonempty(iov, n));
	return ret;
}

static inline ssize_t shim_recv(int fd, void *buf, size_t n, int flags)
{
	ssize_t ret = real.recv(fd, buf, n, flags);

	AFTER_READ(fd, ret, n);
	return ret;
}

static inline ssize_t shim_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	ssize_t ret = real.recv_chk(fd, buf, n, buflen, flags);

	AFTER_READ(fd, ret, n);
	return ret;
}

static inline ssize_t shim_recvfrom(int fd, void *buf, size_t n, int flags,
				    struct sockaddr *addr, socklen_t *len)
{
	ssize_t ret = real.recvfrom(fd, buf, n, flags, addr, len);

	AFTER_READ(fd, ret, n);
	return ret;
}

static inline ssize_t shim_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
					int flags, struct sockaddr *addr, socklen_t *len)
{
	ssize_t ret = real.recvfrom_chk(fd, buf, n, buflen, flags, addr, len);

	AFTER_READ(fd, ret, n);
	return ret;
}

static inline ssize_t shim_recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t ret = real.recvmsg(fd, msg, flags);

	AFTER_READ(fd, ret, msg && iov_nonempty(msg->msg_iov, (int)msg->msg_iovlen));
	return ret;
}

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	real_ensure();
	return shim_read(fd, buf, n);
}

SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	real_ensure();
	return shim_read_chk(fd, buf, n, buflen);
}

SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	real_ensure();
	return shim_readv(fd, iov, n);
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	real_ensure();
	return shim_recv(fd, buf, n, flags);
}

SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	real_ensure();
	return shim_recv_chk(fd, buf, n, buflen, flags);
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
			     socklen_t *len)
{
	real_ensure();
	return shim_recvfrom(fd, buf, n, flags, addr, len);
}

SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
				   struct sockaddr *addr, socklen_t *len)
{
	real_ensure();
	return shim_recvfrom_chk(fd, buf, n, buflen, flags, addr, len);
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	real_ensure();
	return shim_recvmsg(fd, msg, flags);
}
