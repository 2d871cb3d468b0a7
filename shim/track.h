/* The model: what the wrappers tell after a real call succeeded or failed.
 * Each function keeps the descriptor table true and emits the event. They
 * may change errno (the ledger asks the kernel, kill() included): the
 * wrappers keep the call's errno around them. */
#ifndef SOCKSHIM_TRACK_H
#define SOCKSHIM_TRACK_H

#include <stdint.h>
#include <sys/socket.h>

#include "fdtab.h"

/* The entry of FD; a socket we have not seen before is described from the
 * kernel and adopted. 1 if FD is a (now tracked) socket. */
int track_lookup_or_adopt(int fd, struct fd_entry *e);

/* Our pid: the cached one, or the kernel's in a vfork child. */
pid_t track_self(void);

/* A socket found open at start-up (inherited across exec or from outside
 * the session), described in *E: track it and tell the ledger. */
void track_adopt_inherited(int fd, struct fd_entry *e);

/* A new socket FD from socket()/socketpair() (PAIR_FD >= 0 for the other
 * end) with the caller's DOMAIN and TYPE (flags included), called from
 * CALLER. */
void track_socket(int fd, int domain, int type, int pair_fd, void *caller);

/* Accept on LISTEN_FD returned NEW_FD (or failed: NEW_FD < 0, ERR) with
 * accept4 FLAGS, called from CALLER. PEER (PEER_LEN bytes): the peer's
 * address as the accept returned it into the shim's own buffer, or NULL
 * (then the kernel is asked). AT: the clock when the accept returned, if
 * the caller read it, else 0. */
void track_accept(int listen_fd, int new_fd, int err, int flags, void *caller,
		  const struct sockaddr *peer, socklen_t peer_len, uint64_t at);

/* Descriptor NEW_FD now refers to what OLD_FD does (dup*, F_DUPFD*). */
void track_dup(int old_fd, int new_fd, int cloexec);

/* FD is about to be closed (or replaced by dup2/dup3): forget it, keep
 * what it was in *E. 1 if it was a tracked socket; 0 too when it was one
 * of the shim's own numbers, which the shim then stops using. */
int track_forget(int fd, struct fd_entry *e);

/* Emit the close of an entry forgotten with track_forget. */
void track_closed(int fd, const struct fd_entry *e, int via, int ret, int err);

/* A read on tracked FD returned 0. */
void track_read_zero(int fd);

/* A write on tracked FD failed with EPIPE (errno kept). */
void track_write_epipe(int fd);

/* A read on tracked FD returned data. */
void track_read(int fd);

/* shutdown(FD, HOW) on the socket described by E returned RET (ERR),
 * called from CALLER. */
void track_shutdown(int fd, const struct fd_entry *e, int how, int ret, int err, void *caller);

/* setsockopt(FD, SOL_SOCKET, SO_LINGER) succeeded: RESET, whether it set
 * {on, 0} (the last close resets the connection). */
void track_linger(int fd, int reset);

/* Stores E as FD's entry; not in a vfork child, whose descriptors are
 * its own while the table is its parent's. */
void track_update(int fd, const struct fd_entry *e);

/* E (FD's entry) got new addresses or flags (bind, listen, connect);
 * BORN, if not 0, is its new birth (connect). Stores it and tells the
 * ledger. */
void track_addresses(int fd, struct fd_entry *e, int born);

/* recvmsg on socket SOCK returned MSG: sockets received over SCM_RIGHTS
 * become ours. */
void track_received(int sock, const struct msghdr *msg);

/* The process is ending (exit, _exit): its references go with it. */
void track_process_exit(void);

#endif
