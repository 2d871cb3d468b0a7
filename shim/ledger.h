/* The reference ledger in the session segment: who holds each socket, how
 * they got it, and what happened to it. Lock-free and allocation-free:
 * safe on the close and dup paths, in signal handlers and across fork.
 * Every function works on the ledger of mapping M (the shim passes
 * shim_session()), and is a no-op when M is not live (seg_map_live). */
#ifndef SOCKSHIM_LEDGER_H
#define SOCKSHIM_LEDGER_H

#include <stdint.h>
#include <sys/types.h>

#include "fdtab.h"
#include "sockshim/layout.h"
#include "sockshim/segment.h"

/* The index + 1 of INODE's entry, 0 if it has none. */
uint32_t ledger_lookup(struct seg_map *m, uint64_t inode);

/* Is entry REF, found under the inode of the socket E describes, a
 * previous socket's: released, and proven another socket by its family,
 * type or (connected TCP) addresses? sockfs's inode numbers wrap.
 * ledger_get takes such an entry over for the new socket. */
int ledger_is_previous(struct seg_map *m, uint32_t ref, const struct fd_entry *e);

/* The index + 1 of INODE's entry, created from E (born, addresses, call
 * site) if it has none; 0 when the ledger has no room near its slot
 * (counted), or INODE is no socket inode (0, or SOCKSHIM_INODE_CLAIMING
 * set). *CREATED tells whether this call created it. Another caller
 * creating the same entry is waited for, at most claim.h's CLAIM_WAIT_NS;
 * then 0, counted in ledger_full and claims_stalled. */
uint32_t ledger_get(struct seg_map *m, uint64_t inode, const struct fd_entry *e, pid_t born_pid,
		    int born_fd, int *created);

/* Refresh the entry's addresses, listener flag and birth (connect makes a
 * socket()-born socket a CONNECT one) from E. */
void ledger_describe(struct seg_map *m, uint32_t ref, const struct fd_entry *e);

/* PID now holds the socket as FD, got by HOW (enum sockshim_how) from
 * FROM_PID/FROM_FD. A holder already recorded for PID/FD is updated.
 * RESERVED: its reference was already counted by ledger_reserve(). */
void ledger_hold(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int how, pid_t from_pid,
		 int from_fd, int reserved);

/* The same, held since NOW (CLOCK_MONOTONIC ns, 0: the clock's): a call
 * that read the clock once for everything it writes. */
void ledger_hold_at(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int how, pid_t from_pid,
		    int from_fd, int reserved, uint64_t now);

/* Count a reference that a holder will claim soon (a fork child's, taken
 * before the fork so that the parent closing its copy meanwhile does not
 * look like the last reference going), or give it back (DELTA -1). */
void ledger_reserve(struct seg_map *m, uint32_t ref, int delta);

/* PID's FD no longer refers to the socket. Returns the references left
 * (>= 0), and the references before in *BEFORE. */
int ledger_release(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int *before);

/* The same at NOW (0: the clock's), the release time if it was the last. */
int ledger_release_at(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int *before,
		      uint64_t now);

/* Whether PID holds the socket as FD in the ledger. */
int ledger_holds(struct seg_map *m, uint32_t ref, pid_t pid, int fd);

/* Append a history step (enum sockshim_step_op). */
void ledger_step(struct seg_map *m, uint32_t ref, int op, pid_t pid, int fd, int arg, int via);

/* The same at NOW (0: the clock's). */
void ledger_step_at(struct seg_map *m, uint32_t ref, int op, pid_t pid, int fd, int arg, int via,
		    uint64_t now);

/* A read returned 0 at NOW (CLOCK_MONOTONIC ns; 0: read the clock): the
 * first one is remembered, and a step says so. */
void ledger_eof(struct seg_map *m, uint32_t ref, pid_t pid, int fd, uint64_t now);

/* A read happened now (coarse clock). */
void ledger_read(struct seg_map *m, uint32_t ref);

/* Drop every holder PID has in the ledger whose fd is not a socket of
 * ours any more: close-on-exec, for an image whose process held more than
 * its entry in the process table lists. A scan of the whole ledger: only
 * then. */
void ledger_forget_stale(struct seg_map *m, pid_t pid);

/* Drop every holder dead process PID has in the ledger, each with a close
 * record VIA: for a process whose entry could not list them all. A scan
 * of the whole ledger: only then. */
void ledger_forget_pid(struct seg_map *m, pid_t pid, int via);

/* Release PID's hold of REF as FD at its end VIA (exec, exit, death):
 * the history step and the close record (into M's ring) with the
 * references before and after. */
void ledger_forget_one(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int via);

/* ---- Reclaim: references to a socket closed where the shim could not
 * see (a raw system call, an image without the shim), released by a
 * reader that proved it from the kernel and /proc (tools/reclaim.c). ---- */

/* Take entry REF, INODE's, for a reclaim, as a new socket's entry is
 * claimed: until ledger_reclaim_end nobody gives it to another socket.
 * 0 when it is not INODE's (or another reclaim has it). */
int ledger_reclaim_begin(struct seg_map *m, uint32_t ref, uint64_t inode);
void ledger_reclaim_end(struct seg_map *m, uint32_t ref, uint64_t inode);

/* Release holder PID/FD of entry REF, recorded SINCE_NS, whose
 * descriptor is gone: taken off its process's list, its reference
 * dropped, a close step and record via gone in the name NAME (the
 * process's). 1 when released here; 0 when it is not there any more, or
 * someone else releases it. */
int ledger_reclaim_holder(struct seg_map *m, uint32_t ref, pid_t pid, int fd, uint64_t since_ns,
			  const char name[16]);

/* A socket the kernel has freed: drop the references no holder names
 * (holders that did not fit), once no holder is named, with one close
 * step (pid 0, fd -1) and record via gone (fd -1, in the name of the
 * process that reclaims: no holder is known). The references dropped. */
int ledger_reclaim_unnamed(struct seg_map *m, uint32_t ref);

/* PID's FD, found holding the socket of entry REF in /proc by a reader
 * that proved it is one of the holders that did not fit (holder_overflow):
 * named now that a slot is free, how unknown, the count one less. 1 when
 * named; 0 when no slot is free yet, none is unnamed, or it is named. */
int ledger_name_unnamed(struct seg_map *m, uint32_t ref, pid_t pid, int fd);

/* Entry REF, an accepted connection, came from listener entry LISTENER
 * (index + 1) of socket INODE: its release is counted there. */
void ledger_set_listener(struct seg_map *m, uint32_t ref, uint32_t listener, uint64_t inode);

/* SO_LINGER {on, 0} was set (ON) or changed (0) on the socket: its last
 * close resets the connection. */
void ledger_linger_reset(struct seg_map *m, uint32_t ref, int on);

/* PID shut the socket down (HOW) as FD, called from CALLER: remembered as
 * the entry's last shutdown with the other processes holding it now. */
void ledger_shutdown(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int how,
		     uint64_t caller);

/* The inode of entry REF, 0 if none. */
uint64_t ledger_inode(struct seg_map *m, uint32_t ref);

/* Fill R's socket identity (inode, family, addresses) from entry REF. */
void ledger_describe_record(struct seg_map *m, uint32_t ref, struct sockshim_record *r);

/* The process name recorded in history steps (refreshed after exec). */
void ledger_set_comm(void);

#endif
