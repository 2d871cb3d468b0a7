/* The per-process model of sockets: keeps the descriptor table true after
 * each real call and emits the lifecycle event. Runs after the real call
 * has returned; must never change errno, block, or fail the host. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>

#include "emit.h"
#include "log.h"
#include "sockinfo.h"
#include "track.h"
#include "vfork.h"

/* Start tracking FD. One beyond the table passes through untracked; it is
 * counted here and in the session, and said once. */
static void remember(int fd, const struct fd_entry *e)
{
	if (shim_in_vfork_child() || fdtab_set(fd, e) == 0)
		return;
	if (fdtab_count_overflow() == 1)
		shim_warn("descriptor %d is beyond the descriptor table (%u entries); "
			  "such sockets are not tracked", fd, fdtab_capacity);
	if (shim_seg.base)
		__atomic_fetch_add(&seg_header(&shim_seg)->fd_overflow, 1, __ATOMIC_RELAXED);
}

int track_lookup_or_adopt(int fd, struct fd_entry *e)
{
	if (fdtab_get(fd, e)) {
		if (e->inode & FDT_INODE_UNKNOWN) {
			uint64_t ino = sockinfo_inode(fd);

			if (!ino) /* not a socket: the entry was stale */
				return 0;
			e->inode = ino;
			if (!shim_in_vfork_child())
				fdtab_set(fd, e);
		}
		return 1;
	}
	if (fd < 0 || sockinfo_describe(fd, e) < 0)
		return 0;
	/* A socket created where we could not see it (a raw syscall, libc's
	 * internal calls, or before we were loaded): adopt it now. */
	remember(fd, e);
	return 1;
}

void track_socket(int fd, int domain, int type, int pair_fd)
{
	struct sockshim_record r;
	struct fd_entry e;

	memset(&e, 0, sizeof(e));
	e.inode = FDT_INODE_UNKNOWN;
	e.family = (uint16_t)domain;
	e.socktype = (uint16_t)(type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC));
	if (type & SOCK_CLOEXEC)
		e.flags |= FDT_CLOEXEC;
	if (type & SOCK_NONBLOCK)
		e.flags |= FDT_NONBLOCK;
	remember(fd, &e);
	record_init(&r, SOCKSHIM_EV_SOCKET, fd, fd, 0);
	record_from_entry(&r, &e);
	r.detail.socket.pair_fd = pair_fd;
	emit_record(&r);
}

static int is_wildcard(const struct fd_entry *e)
{
	static const uint8_t zero[16];
	static const uint8_t mapped_any[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (e->family == AF_INET)
		return !memcmp(e->local_ip, zero, 4);
	return !memcmp(e->local_ip, zero, 16) ||
	       (!memcmp(e->local_ip, mapped_any, 12) && !memcmp(e->local_ip + 12, zero, 4));
}

void track_accept(int listen_fd, int new_fd, int err, int flags)
{
	struct sockshim_record r;
	struct fd_entry l, e;
	int have_listener = track_lookup_or_adopt(listen_fd, &l);

	if (new_fd < 0) {
		record_init(&r, SOCKSHIM_EV_ACCEPT, -1, new_fd, err);
		if (have_listener) {
			r.family = l.family;
			r.socktype = l.socktype;
			r.detail.accept.listen_inode = l.inode;
		}
		r.detail.accept.listen_fd = listen_fd;
		emit_record(&r);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.inode = sockinfo_inode(new_fd);
	if (!e.inode)
		return;
	if (have_listener) {
		e.family = l.family;
		e.socktype = l.socktype;
	}
	if (flags & SOCK_CLOEXEC)
		e.flags |= FDT_CLOEXEC;
	if (flags & SOCK_NONBLOCK)
		e.flags |= FDT_NONBLOCK;
	sockinfo_query_addr(new_fd, &e, 1);
	/* A listener bound to one address gives its connections that
	 * address; only a wildcard one needs the kernel's answer. */
	if (have_listener && (l.flags & FDT_LOCAL_KNOWN) && !is_wildcard(&l) &&
	    l.family == e.family) {
		memcpy(e.local_ip, l.local_ip, sizeof(e.local_ip));
		e.local_port = l.local_port;
		e.flags |= FDT_LOCAL_KNOWN;
	} else {
		sockinfo_query_addr(new_fd, &e, 0);
	}
	remember(new_fd, &e);
	record_init(&r, SOCKSHIM_EV_ACCEPT, new_fd, new_fd, 0);
	record_from_entry(&r, &e);
	r.detail.accept.listen_fd = listen_fd;
	r.detail.accept.listen_inode = have_listener ? l.inode : 0;
	emit_record(&r);
}

void track_dup(int old_fd, int new_fd, int cloexec)
{
	struct sockshim_record r;
	struct fd_entry e;

	if (!fdtab_get(old_fd, &e))
		return;
	e.flags &= ~(uint64_t)FDT_CLOEXEC;
	if (cloexec)
		e.flags |= FDT_CLOEXEC;
	remember(new_fd, &e);
	record_init(&r, SOCKSHIM_EV_DUP, old_fd, new_fd, 0);
	record_from_entry(&r, &e);
	r.detail.dup.newfd = new_fd;
	r.detail.dup.cloexec = !!cloexec;
	emit_record(&r);
}

int track_forget(int fd, struct fd_entry *e)
{
	/* A vfork child shares our table: it may look, not touch. */
	if (shim_in_vfork_child())
		return fdtab_get(fd, e);
	return fdtab_take(fd, e);
}

void track_closed(int fd, const struct fd_entry *e, int via, int ret, int err)
{
	struct sockshim_record r;

	record_init(&r, SOCKSHIM_EV_CLOSE, fd, ret, err);
	record_from_entry(&r, e);
	r.detail.close.via = via;
	emit_record(&r);
}

void track_read_zero(int fd)
{
	struct fd_entry e;
	int saved = errno;

	if (!fdtab_get(fd, &e) || (e.flags & FDT_EOF_SEEN))
		goto out;
	if (e.socktype != SOCK_STREAM && e.socktype != SOCK_SEQPACKET)
		goto out;
	/* Rare path: make sure the entry is not stale (the fd closed behind
	 * our back and reused for a file). */
	if (!track_lookup_or_adopt(fd, &e) || sockinfo_inode(fd) != e.inode) {
		if (!shim_in_vfork_child())
			fdtab_take(fd, NULL);
		goto out;
	}
	if (fdtab_flags_or(fd, FDT_EOF_SEEN) & FDT_EOF_SEEN)
		goto out;
	emit_simple(SOCKSHIM_EV_PEER_EOF, fd, &e, 0, 0);
out:
	errno = saved;
}
