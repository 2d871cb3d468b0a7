/* Wrappers of the calls that write to a descriptor: write, writev, send,
 * sendto and sendmsg. Their only job is to notice a write that failed
 * with EPIPE on a tracked stream socket: the connection was shut down for
 * sending (by a shutdown, this process's or another holder's, or a
 * reset), which the readers tie back to that shutdown. They call libc
 * first and look at nothing else when it succeeds: a test of the result
 * and a return. A write that SIGPIPE kills never returns here: the shim
 * cannot see it. */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "calls.h"
#include "export.h"
#include "fdtab.h"
#include "real.h"
#include "track.h"

/* The error half, out of line: only EPIPE on a tracked descriptor is
 * worth a look. track_write_epipe keeps errno. */
static __attribute__((noinline, cold)) void write_failed(int fd)
{
	if (errno == EPIPE && fdtab_is_tracked(fd))
		track_write_epipe(fd);
}

#define WRITE_CALL(fd, call)                              \
	do {                                              \
		ssize_t ret_ = call;                      \
		if (__builtin_expect(ret_ < 0, 0))        \
			write_failed(fd);                 \
		return ret_;                              \
	} while (0)

ssize_t shim_write(int fd, const void *buf, size_t n)
{
	WRITE_CALL(fd, real.write(fd, buf, n));
}

ssize_t shim_writev(int fd, const struct iovec *iov, int n)
{
	WRITE_CALL(fd, real.writev(fd, iov, n));
}

static inline ssize_t shim_send(int fd, const void *buf, size_t n, int flags)
{
	WRITE_CALL(fd, real.send(fd, buf, n, flags));
}

ssize_t shim_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
		    socklen_t len)
{
	WRITE_CALL(fd, real.sendto(fd, buf, n, flags, addr, len));
}

ssize_t shim_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	WRITE_CALL(fd, real.sendmsg(fd, msg, flags));
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	return shim_write(fd, buf, n);
}

SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	return shim_writev(fd, iov, n);
}

SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	return shim_send(fd, buf, n, flags);
}

SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			   const struct sockaddr *addr, socklen_t len)
{
	return shim_sendto(fd, buf, n, flags, addr, len);
}

SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return shim_sendmsg(fd, msg, flags);
}
