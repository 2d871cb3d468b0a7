/* Kernel queries about a socket descriptor. Each function restores errno:
 * the wrapper that calls it must leave errno exactly as libc set it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/stat.h>

#include "sockinfo.h"

uint64_t sockinfo_inode(int fd)
{
	struct stat st;
	int saved = errno;
	uint64_t ino = 0;

	if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
		ino = st.st_ino;
	errno = saved;
	return ino;
}

void sockinfo_set_addr(struct fd_entry *e, int peer, const struct sockaddr *sa,
		       socklen_t len)
{
	uint8_t *ip = peer ? e->peer_ip : e->local_ip;
	uint16_t port;

	if (!sa || len < sizeof(sa_family_t))
		return;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		memset(ip, 0, 16);
		memcpy(ip, &in->sin_addr, 4);
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		memcpy(ip, &in6->sin6_addr, 16);
		port = ntohs(in6->sin6_port);
	} else {
		return;
	}
	if (!e->family)
		e->family = sa->sa_family;
	if (peer) {
		e->peer_port = port;
		e->flags |= SOCKSHIM_FLAG_PEER_KNOWN;
	} else {
		e->local_port = port;
		e->flags |= SOCKSHIM_FLAG_LOCAL_KNOWN;
	}
}

void sockinfo_query_addr(int fd, struct fd_entry *e, int peer)
{
	struct sockaddr_storage ss = {0}; /* what the kernel did not fill reads as AF_UNSPEC */
	socklen_t len = sizeof(ss);
	int saved = errno;
	int rc;

	/* Of other families (a Unix socket) no address is kept: why ask. */
	if (e->family && !sockinfo_family_addressed(e->family))
		return;
	rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		  : getsockname(fd, (struct sockaddr *)&ss, &len);
	if (rc == 0)
		sockinfo_set_addr(e, peer, (struct sockaddr *)&ss, len);
	errno = saved;
}

int sockinfo_describe(int fd, struct fd_entry *e)
{
	int saved = errno, val, rc = 0;
	socklen_t len = sizeof(val);

	memset(e, 0, sizeof(*e));
	e->inode = sockinfo_inode(fd);
	if (!e->inode) {
		rc = -ENOTSOCK;
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &val, &len) == 0)
		e->family = (uint16_t)val;
	len = sizeof(val);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &len) == 0)
		e->socktype = (uint16_t)val;
	len = sizeof(val);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) == 0 && val)
		e->flags |= SOCKSHIM_FLAG_LISTENER;
	val = fcntl(fd, F_GETFD);
	if (val > 0 && (val & FD_CLOEXEC))
		e->flags |= FDT_CLOEXEC;
	val = fcntl(fd, F_GETFL);
	if (val > 0 && (val & O_NONBLOCK))
		e->flags |= FDT_NONBLOCK;
	sockinfo_query_addr(fd, e, 0);
	if (!(e->flags & SOCKSHIM_FLAG_LISTENER))
		sockinfo_query_addr(fd, e, 1);
out:
	errno = saved;
	return rc;
}
