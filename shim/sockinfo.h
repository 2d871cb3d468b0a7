/* Asking the kernel what a descriptor is: inode, family, type, addresses.
 * System calls, so only on paths that already made one (socket, accept,
 * connect, ...), never on read or close. All preserve errno. */
#ifndef SOCKSHIM_SOCKINFO_H
#define SOCKSHIM_SOCKINFO_H

#include <stdint.h>
#include <sys/socket.h>

#include "fdtab.h"

/* The inode of socket FD, or 0 if FD is not a socket. */
uint64_t sockinfo_inode(int fd);

/* Record address SA (LEN bytes) as E's local (PEER == 0) or peer address.
 * Families other than AF_INET/AF_INET6 leave it unknown. */
void sockinfo_set_addr(struct fd_entry *e, int peer, const struct sockaddr *sa,
		       socklen_t len);

/* Is FAMILY one whose addresses the model keeps? */
static inline int sockinfo_family_addressed(int family)
{
	return family == AF_INET || family == AF_INET6;
}

/* Ask getsockname (PEER == 0) or getpeername for E's address; not for a
 * family whose addresses are not kept (E's family known and another). */
void sockinfo_query_addr(int fd, struct fd_entry *e, int peer);

/* Describe FD completely from the kernel (used for sockets we did not see
 * created). 0 if FD is a socket, -ENOTSOCK or -errno otherwise. */
int sockinfo_describe(int fd, struct fd_entry *e);

#endif
