/* The model of sockets: keeps the per-process descriptor table and the
 * session's reference ledger true after each real call, and emits the
 * lifecycle event. Runs after the real call has returned; must never
 * change errno, block, or fail the host. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "accept_token.h"
#include "doorbell.h"
#include "emit.h"
#include "ledger.h"
#include "real.h"
#include "log.h"
#include "procs.h"
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
	if (seg_map_live(shim_session()))
		__atomic_fetch_add(&seg_header(shim_session())->fd_overflow, 1, __ATOMIC_RELAXED);
}

pid_t track_self(void)
{
	return shim_in_vfork_child() ? getpid() : shim_getpid();
}

/* Give E (FD's entry, inode known) its ledger entry if it has none yet:
 * created with this process as its first holder, or, if another process
 * made it, with this process added as a holder (it got the socket some
 * way we did not see). The creator's hold and the birth step share one
 * time: AT, when the caller read the clock in this very call (an accept:
 * its birth), else now. Not E's born_ns: a socket() made before a fork
 * and first used in the child would give the child a hold older than
 * the child, which readers take for a pid used again. */
static void ledger_attach_at(int fd, struct fd_entry *e, uint64_t at)
{
	struct seg_map *m = shim_session();
	pid_t self = track_self();
	int created;

	if (e->ledger || (e->flags & FDT_NO_LEDGER) || !seg_map_live(m))
		return;
	e->ledger = ledger_get(m, e->inode, e, self, fd, &created);
	if (!e->ledger) {
		e->flags |= FDT_NO_LEDGER; /* counted once, not at every call */
		return;
	}
	if (created) {
		uint64_t now = at ? at : emit_now_ns();

		ledger_hold_at(m, e->ledger, self, fd,
			       e->born == SOCKSHIM_BORN_INHERITED ? SOCKSHIM_HOW_INHERITED
								  : SOCKSHIM_HOW_CREATED,
			       self, fd, 0, now);
		ledger_step_at(m, e->ledger, SOCKSHIM_STEP_BORN, self, fd, e->born, 0, now);
	} else if (!ledger_holds(m, e->ledger, self, fd)) {
		ledger_hold(m, e->ledger, self, fd, SOCKSHIM_HOW_INHERITED, self, fd, 0);
	}
}

static void ledger_attach(int fd, struct fd_entry *e)
{
	ledger_attach_at(fd, e, 0);
}

int track_lookup_or_adopt(int fd, struct fd_entry *e)
{
	if (fdtab_get(fd, e)) {
		if (e->inode & FDT_INODE_UNKNOWN) {
			uint64_t ino = sockinfo_inode(fd);

			if (!ino) /* not a socket: the entry was stale */
				return 0;
			e->inode = ino;
		} else if (e->ledger || (e->flags & FDT_NO_LEDGER)) {
			return 1;
		}
		ledger_attach(fd, e);
		track_update(fd, e);
		return 1;
	}
	if (fd < 0 || sockinfo_describe(fd, e) < 0)
		return 0;
	/* A socket created where we could not see it (a raw syscall, libc's
	 * internal calls, or before we were loaded): adopt it now. */
	ledger_attach(fd, e);
	remember(fd, e);
	return 1;
}

void track_adopt_inherited(int fd, struct fd_entry *e)
{
	struct seg_map *m = shim_session();
	pid_t self = shim_getpid(), parent = getppid();
	uint32_t ref = ledger_lookup(m, e->inode);

	if (!ref || ledger_is_previous(m, ref, e)) {
		/* From outside the session (a service manager, a shell). */
		e->born = SOCKSHIM_BORN_INHERITED;
		ledger_attach(fd, e);
	} else if (ledger_holds(m, ref, self, fd)) {
		/* Ours before exec: it survived (no close-on-exec). */
		e->ledger = ref;
		ledger_hold(m, ref, self, fd, SOCKSHIM_HOW_EXEC, self, fd, 0);
		ledger_step(m, ref, SOCKSHIM_STEP_EXEC, self, fd, 0, 0);
	} else {
		/* Our parent had it and started us in a way we did not see
		 * (posix_spawn, a raw clone): say so as fork + exec. */
		e->ledger = ref;
		ledger_hold(m, ref, self, fd, SOCKSHIM_HOW_EXEC, parent, fd, 0);
		ledger_step(m, ref, SOCKSHIM_STEP_FORK, parent, fd, self, 0);
		ledger_step(m, ref, SOCKSHIM_STEP_EXEC, self, fd, 0, 0);
	}
	remember(fd, e);
}

void track_socket(int fd, int domain, int type, int pair_fd, void *caller)
{
	struct sockshim_record r;
	struct fd_entry e;

	memset(&e, 0, sizeof(e));
	e.inode = FDT_INODE_UNKNOWN;
	e.born = pair_fd >= 0 ? SOCKSHIM_BORN_SOCKETPAIR : SOCKSHIM_BORN_SOCKET;
	e.born_ns = emit_now_ns();
	e.callsite = (uint64_t)(uintptr_t)caller;
	/* A socketpair is often handed to a child unused (a pipe to a
	 * worker): ask its inode now, so the ledger has it from the start.
	 * socket()'s waits until the socket matters (bind, connect, ...). */
	e.family = (uint16_t)domain;
	e.socktype = (uint16_t)(type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC));
	if (type & SOCK_CLOEXEC)
		e.flags |= FDT_CLOEXEC;
	if (type & SOCK_NONBLOCK)
		e.flags |= FDT_NONBLOCK;
	if (pair_fd >= 0) {
		uint64_t ino = sockinfo_inode(fd);

		if (ino) {
			e.inode = ino;
			ledger_attach(fd, &e);
		}
	}
	remember(fd, &e);
	record_init(&r, SOCKSHIM_EV_SOCKET, fd, fd, 0);
	record_from_entry(&r, &e);
	r.ts_ns = e.born_ns; /* its birth is the event */
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

void track_accept(int listen_fd, int new_fd, int err, int flags, void *caller,
		  const struct sockaddr *peer, socklen_t peer_len, uint64_t at)
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
	e.born = SOCKSHIM_BORN_ACCEPT;
	/* One clock read for all the accept writes: birth, holder, step, record. */
	e.born_ns = at ? at : emit_now_ns();
	e.callsite = (uint64_t)(uintptr_t)caller;
	if (have_listener) {
		e.family = l.family;
		e.socktype = l.socktype;
	}
	if (flags & SOCK_CLOEXEC)
		e.flags |= FDT_CLOEXEC;
	if (flags & SOCK_NONBLOCK)
		e.flags |= FDT_NONBLOCK;
	if (peer)
		sockinfo_set_addr(&e, 1, peer, peer_len);
	else
		sockinfo_query_addr(new_fd, &e, 1);
	/* A listener bound to one address gives its connections that
	 * address; only a wildcard one needs the kernel's answer. */
	if (have_listener && (l.flags & SOCKSHIM_FLAG_LOCAL_KNOWN) && !is_wildcard(&l) &&
	    l.family == e.family) {
		memcpy(e.local_ip, l.local_ip, sizeof(e.local_ip));
		e.local_port = l.local_port;
		e.flags |= SOCKSHIM_FLAG_LOCAL_KNOWN;
	} else {
		sockinfo_query_addr(new_fd, &e, 0);
	}
	ledger_attach_at(new_fd, &e, e.born_ns);
	if (have_listener && l.listener)
		ledger_set_listener(shim_session(), e.ledger, l.listener, l.inode);
	remember(new_fd, &e);
	record_init(&r, SOCKSHIM_EV_ACCEPT, new_fd, new_fd, 0);
	record_from_entry(&r, &e);
	r.ts_ns = e.born_ns; /* its birth is the event */
	r.detail.accept.listen_fd = listen_fd;
	r.detail.accept.listen_inode = have_listener ? l.inode : 0;
	emit_record(&r);
}

void track_dup(int old_fd, int new_fd, int cloexec)
{
	struct seg_map *m = shim_session();
	struct sockshim_record r;
	struct fd_entry e;
	pid_t self = track_self();

	/* The ledger needs the inode: a dup is a system call already. */
	if (!track_lookup_or_adopt(old_fd, &e))
		return;
	e.flags &= ~(uint64_t)FDT_CLOEXEC;
	if (cloexec)
		e.flags |= FDT_CLOEXEC;
	ledger_hold(m, e.ledger, self, new_fd, SOCKSHIM_HOW_DUP, self, old_fd, 0);
	ledger_step(m, e.ledger, SOCKSHIM_STEP_DUP, self, old_fd, new_fd, 0);
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
	/* One of the shim's own numbers: no longer ours, nothing to report. */
	if (fdtab_take_own(fd)) {
		doorbell_lost(fd);
		return 0;
	}
	return fdtab_take(fd, e);
}

/* Does this process still hold listener REF by a descriptor? (A scan of
 * the table: only when a listener is closed.) */
static int listener_held(uint32_t ref)
{
	uint32_t fd, high = fdtab_high();

	for (fd = 0; fd < high; fd++) {
		struct fd_entry e;

		if (fdtab_is_listener((int)fd) && fdtab_get((int)fd, &e) && e.listener == ref)
			return 1;
	}
	return 0;
}

void track_closed(int fd, const struct fd_entry *e, int via, int ret, int err)
{
	struct seg_map *m = shim_session();
	struct sockshim_record r;
	pid_t self = track_self();
	int before = -1, after = -1;
	uint64_t now = emit_now_ns(); /* one read: release, step and record */

	/* A close that failed (EBADF: the entry was stale) dropped nothing
	 * the kernel knew of; EINTR still closed it on Linux. */
	if (e->ledger && (ret == 0 || err == EINTR)) {
		after = ledger_release_at(m, e->ledger, self, fd, &before, now);
		if (after >= 0) /* else released already (a reader found it gone) */
			ledger_step_at(m, e->ledger, SOCKSHIM_STEP_CLOSE, self, fd, after, via,
				       now);
	}
	record_init(&r, SOCKSHIM_EV_CLOSE, fd, ret, err);
	record_from_entry(&r, e);
	r.ts_ns = now;
	r.detail.close.via = via;
	r.detail.close.refs_before = before;
	r.detail.close.refs_after = after;
	emit_record(&r);
	/* Its last descriptor here: its doorbells here go with it. Not in a
	 * vfork child, which shares our memory but not our descriptors. */
	if (e->listener && (ret == 0 || err == EINTR) && !shim_in_vfork_child() &&
	    !listener_held(e->listener))
		doorbell_drop(e->listener);
}

void track_shutdown(int fd, const struct fd_entry *e, int how, int ret, int err, void *caller)
{
	struct seg_map *m = shim_session();
	struct sockshim_record r;

	if (ret == 0) {
		ledger_step(m, e->ledger, SOCKSHIM_STEP_SHUTDOWN, track_self(), fd, how, 0);
		ledger_shutdown(m, e->ledger, track_self(), fd, how, (uint64_t)(uintptr_t)caller);
	}
	record_init(&r, SOCKSHIM_EV_SHUTDOWN, fd, ret, err);
	record_from_entry(&r, e);
	r.detail.shutdown.how = how;
	emit_record(&r);
}

void track_linger(int fd, int reset)
{
	struct fd_entry e;

	if (track_lookup_or_adopt(fd, &e))
		ledger_linger_reset(shim_session(), e.ledger, reset);
}

void track_addresses(int fd, struct fd_entry *e, int born)
{
	struct seg_map *m = shim_session();

	if (born)
		e->born = (uint16_t)born;
	ledger_describe(m, e->ledger, e);
	track_update(fd, e);
}

void track_update(int fd, const struct fd_entry *e)
{
	if (!shim_in_vfork_child())
		fdtab_set(fd, e);
}

void track_read(int fd)
{
	uint32_t ref = fdtab_ledger(fd);

	if (ref)
		ledger_read(shim_session(), ref);
}

void track_received(int sock, const struct msghdr *msg)
{
	struct seg_map *m = shim_session();
	const struct cmsghdr *c;
	struct ucred peer;
	socklen_t len = sizeof(peer);
	pid_t self = track_self(), from = 0;
	int saved = errno;

	if (!msg || !msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr))
		goto out;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0)
		from = peer.pid;
	for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, (struct cmsghdr *)c)) {
		const int *fds = (const int *)CMSG_DATA(c);
		size_t n, i;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			struct fd_entry e;
			int fd = fds[i], created;

			if (sockinfo_describe(fd, &e) < 0)
				continue; /* not a socket */
			e.born = SOCKSHIM_BORN_SCM_RIGHTS;
			e.born_ns = emit_now_ns();
			e.ledger = ledger_get(m, e.inode, &e, self, fd, &created);
			ledger_hold(m, e.ledger, self, fd, SOCKSHIM_HOW_SCM, from ? from : self, -1, 0);
			ledger_step(m, e.ledger, SOCKSHIM_STEP_SCM, self, fd, from, 0);
			remember(fd, &e);
		}
	}
out:
	errno = saved;
}

/* Is FD, a tracked descriptor, a stream socket whose entry E is still
 * its own, seen for the first time here with FLAG (FDT_EOF_SEEN,
 * FDT_EPIPE_SEEN), which this sets? The rare paths of a read's EOF and a
 * write's EPIPE: each is told once per descriptor, and only of the socket
 * the entry names (not a descriptor closed behind our back and reused). */
static int first_on_stream(int fd, uint64_t flag, struct fd_entry *e)
{
	if (!fdtab_get(fd, e) || (e->flags & flag))
		return 0;
	if (e->socktype != SOCK_STREAM && e->socktype != SOCK_SEQPACKET)
		return 0;
	if (!track_lookup_or_adopt(fd, e) || sockinfo_inode(fd) != e->inode) {
		if (!shim_in_vfork_child())
			fdtab_take(fd, NULL);
		return 0;
	}
	return !(fdtab_flags_or(fd, flag) & flag);
}

void track_read_zero(int fd)
{
	struct fd_entry e;
	int saved = errno;

	if (first_on_stream(fd, FDT_EOF_SEEN, &e)) {
		struct sockshim_record r;

		/* One clock read: the entry's EOF time, its step, the record. */
		record_init(&r, SOCKSHIM_EV_PEER_EOF, fd, 0, 0);
		record_from_entry(&r, &e);
		r.ts_ns = emit_now_ns();
		ledger_eof(shim_session(), e.ledger, track_self(), fd, r.ts_ns);
		emit_record(&r);
	}
	errno = saved;
}

void track_write_epipe(int fd)
{
	struct fd_entry e;
	int saved = errno;

	if (first_on_stream(fd, FDT_EPIPE_SEEN, &e))
		ledger_step(shim_session(), e.ledger, SOCKSHIM_STEP_EPIPE, track_self(), fd, 0, 0);
	errno = saved;
}

void track_process_exit(void)
{
	static pid_t done; /* the pid that already did it (exit, then _exit) */
	struct seg_map *m = shim_session();
	pid_t self = track_self();
	uint32_t fd, high = fdtab_high();
	int saved = errno;

	if (shim_inert || __atomic_exchange_n(&done, self, __ATOMIC_RELAXED) == self)
		return;
	for (fd = 0; fd < high; fd++) {
		struct fd_entry e;

		if (!fdtab_get((int)fd, &e) || !e.ledger)
			continue;
		/* The kernel closes it: a close record like any other. */
		ledger_forget_one(m, e.ledger, self, (int)fd, SOCKSHIM_CLOSE_VIA_EXIT);
	}
	accept_token_release_pid(self); /* to a waiter now, not at its next look */
	emit_simple(SOCKSHIM_EV_EXIT, -1, NULL, 0, 0);
	procs_exit(self);
	errno = saved;
}
