/* Builds records and appends them to the session ring. Called on hot
 * paths: no locks, no allocation, no system calls (the clock is vDSO). */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "emit.h"
#include "ring.h"
#include "vfork.h"
#include "sockshim/clock.h"

struct seg_map shim_seg;
pid_t shim_pid;

static __thread pid_t tls_tid __attribute__((tls_model("initial-exec")));

pid_t shim_gettid(void)
{
	if (__builtin_expect(!tls_tid, 0))
		tls_tid = gettid();
	return tls_tid;
}

void shim_forget_tid(void)
{
	tls_tid = 0;
}

void record_init(struct sockshim_record *r, int type, int fd, int ret, int err)
{
	memset(r, 0, sizeof(*r));
	r->type = (uint16_t)type;
	r->fd = fd;
	r->ret = ret;
	r->err = ret < 0 ? err : 0;
}

void record_from_entry(struct sockshim_record *r, const struct fd_entry *e)
{
	r->inode = (e->inode & FDT_INODE_UNKNOWN) ? 0 : e->inode;
	r->family = e->family;
	r->socktype = e->socktype;
	r->local_port = e->local_port;
	r->peer_port = e->peer_port;
	memcpy(r->local_ip, e->local_ip, sizeof(r->local_ip));
	memcpy(r->peer_ip, e->peer_ip, sizeof(r->peer_ip));
	r->flags = (uint16_t)(e->flags & SOCKSHIM_FLAGS_ALL);
}

uint64_t emit_now_ns(void)
{
	return sockshim_clock_ns(CLOCK_MONOTONIC);
}

/* Inlined into both callers: emit_record, on every hot path, pays
 * nothing for the mapping being an argument. */
static inline __attribute__((always_inline)) void stamp_append(struct seg_map *m,
							       struct sockshim_record *r)
{
	if (!seg_map_live(m))
		return;
	if (!r->ts_ns)
		r->ts_ns = emit_now_ns();
	if ((!r->pid || !r->tid) && __builtin_expect(shim_in_vfork_child(), 0)) {
		/* Our caches hold the parent's identity. */
		r->pid = getpid();
		r->tid = gettid();
	}
	if (!r->pid)
		r->pid = shim_getpid();
	if (!r->tid)
		r->tid = shim_gettid();
	ring_append(m, r);
}

void emit_record_to(struct seg_map *m, struct sockshim_record *r)
{
	stamp_append(m, r);
}

void emit_record(struct sockshim_record *r)
{
	stamp_append(&shim_seg, r);
}

void emit_simple(int type, int fd, const struct fd_entry *e, int ret, int err)
{
	struct sockshim_record r;

	record_init(&r, type, fd, ret, err);
	if (e)
		record_from_entry(&r, e);
	emit_record(&r);
}
