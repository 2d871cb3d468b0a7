/* Turning what a wrapper saw into ring records, and who "we" are: the
 * session mapping, the cached pid and tid. */
#ifndef SOCKSHIM_EMIT_H
#define SOCKSHIM_EMIT_H

#include <sys/socket.h>
#include <unistd.h>

#include "export.h"
#include "fdtab.h"
#include "sockshim/seg_guard.h"
#include "sockshim/segment.h"

/* The session; base is NULL when there is none (events are dropped). */
extern SHIM_INTERNAL struct seg_map shim_seg;

/* The session the shim writes to: the one place that says which segment
 * is current. The model's modules (ledger, listeners) take the mapping as
 * an argument, so that they run on any mapping (a test's private one). */
static inline struct seg_map *shim_session(void)
{
	return &shim_seg;
}

/* Is mapping M one to write to? A mapping, once lost to a file that
 * shrank (seg_guard), stays mapped (zero pages) for whoever is still
 * writing to it, but takes nothing new: the shim is inert for it. */
static inline int seg_map_live(const struct seg_map *m)
{
	return __atomic_load_n(&m->base, __ATOMIC_ACQUIRE) && !seg_guard_any_lost();
}

/* Is there a session to write to? */
static inline int shim_seg_live(void)
{
	return seg_map_live(&shim_seg);
}
/* Our pid, cached at start-up and in the fork child; 0 before start-up. */
extern SHIM_INTERNAL pid_t shim_pid;

/* Our pid, from the cache. */
static inline pid_t shim_getpid(void)
{
	return shim_pid ? shim_pid : getpid();
}

/* CLOCK_MONOTONIC in ns, the clock of every timestamp we write. */
uint64_t emit_now_ns(void);

/* The calling thread's tid, cached per thread. */
pid_t shim_gettid(void);

/* Forget the cached tid of this thread (the fork child's only thread). */
void shim_forget_tid(void);

/* A record of TYPE for FD with the call's result (errno when RET < 0). */
void record_init(struct sockshim_record *r, int type, int fd, int ret, int err);

/* Copy the socket's identity (inode, family, addresses) from E. */
void record_from_entry(struct sockshim_record *r, const struct fd_entry *e);

/* Stamp time, pid and tid, each unless R has it already (an event that
 * read the clock for itself gives its record that time: one clock read,
 * not two), and append to the ring. Wait-free; no syscall. */
void emit_record(struct sockshim_record *r);

/* The same into M's ring (no-op when M is not live). */
void emit_record_to(struct seg_map *m, struct sockshim_record *r);

/* Shorthand: emit TYPE for FD described by E (may be NULL). */
void emit_simple(int type, int fd, const struct fd_entry *e, int ret, int err);

#endif
