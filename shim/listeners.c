/* Listener table: entries claimed by CAS of their inode word (0 ->
 * claiming(inode, tid) -> inode), worker rows by CAS of their (pid, tid) key.
 * A linear scan of 64 entries is cheaper than a hash at this size, and the
 * accept path caches its last answer per thread. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "claim.h"
#include "emit.h"
#include "listeners.h"

enum sockshim_accept_mode accept_mode = SOCKSHIM_ACCEPT_OBSERVE;

struct sockshim_listener *listeners_entry(struct seg_map *m, uint32_t ref)
{
	if (!ref || ref > SOCKSHIM_LISTENERS || !seg_map_live(m) || !m->listeners_offset)
		return NULL;
	return seg_listeners(m) + (ref - 1);
}

uint32_t listeners_ref(struct seg_map *m, const struct sockshim_listener *l)
{
	const struct sockshim_listener *t;

	if (!l || !seg_map_live(m) || !m->listeners_offset)
		return 0;
	t = seg_listeners(m);
	if (l < t || l >= t + SOCKSHIM_LISTENERS)
		return 0;
	return (uint32_t)(l - t) + 1;
}

uint32_t listeners_get(struct seg_map *m, uint64_t inode, const struct fd_entry *e, int backlog)
{
	uint64_t claiming;
	struct sockshim_listener *t;
	uint32_t i;

	if (!seg_map_live(m) || !m->listeners_offset || !sockshim_inode_in_use(inode) ||
	    accept_mode == SOCKSHIM_ACCEPT_OFF)
		return 0;
	claiming = sockshim_inode_claiming(inode, shim_gettid());
	t = seg_listeners(m);
	for (i = 0; i < SOCKSHIM_LISTENERS; i++)
		if (__atomic_load_n(&t[i].inode, __ATOMIC_ACQUIRE) == inode) {
			/* listen() again (Puma: 4096, then 1024): the last wins. */
			if (backlog != SOCKSHIM_BACKLOG_UNKNOWN)
				__atomic_store_n(&t[i].backlog, backlog, __ATOMIC_RELAXED);
			return i + 1;
		}
	/* Entries are taken in order and never freed, so two callers for
	 * one socket meet at the first free one: one CAS wins, the other
	 * finds its claim there and waits for it, a bounded time. */
	for (i = 0; i < SOCKSHIM_LISTENERS; i++) {
		uint64_t k = 0;

		if (!__atomic_compare_exchange_n(&t[i].inode, &k, claiming, 0, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE)) {
			if (sockshim_inode_claimed_for(k, inode))
				k = claim_wait(&t[i].inode, inode);
			if (k == inode)
				return i + 1;
			if (!sockshim_inode_claimed_for(k, inode))
				continue;
			/* Its claimer is not getting on (dead, stopped, or
			 * not done in CLAIM_LIVE_WAIT_NS): not recorded, as
			 * if full. */
			stat_add(&seg_header(m)->claims_stalled, 1);
			break;
		}
		t[i].family = e->family;
		t[i].mode = (uint16_t)accept_mode;
		t[i].local_port = e->local_port;
		memcpy(t[i].local_ip, e->local_ip, sizeof(t[i].local_ip));
		t[i].backlog = backlog;
		__atomic_store_n(&t[i].inode, inode, __ATOMIC_RELEASE);
		return i + 1;
	}
	stat_add(&seg_header(m)->listeners_full, 1);
	return 0;
}

int listeners_thread_gone(uint64_t k)
{
	int saved = errno, gone;

	gone = syscall(SYS_tgkill, (pid_t)(k >> 32), (pid_t)(uint32_t)k, 0) < 0 && errno == ESRCH;
	errno = saved;
	return gone;
}

static void move_count(uint64_t *from, uint64_t *to)
{
	stat_add(to, __atomic_exchange_n(from, 0, __ATOMIC_RELAXED));
}

/* Every row is taken: recycle the row of a thread that has ended for ME,
 * its counts added to the retired row so that no accept goes uncounted.
 * At most once a second per thread (the scan costs a syscall a row). */
static struct sockshim_worker *recycle_row(struct sockshim_listener *l, uint64_t me)
{
	static __thread uint64_t next_try_ns;
	uint64_t now = emit_now_ns();
	unsigned i;

	if (now < next_try_ns)
		return NULL;
	for (i = 0; i < SOCKSHIM_WORKERS; i++) {
		struct sockshim_worker *w = &l->workers[i];
		uint64_t k = __atomic_load_n(&w->key, __ATOMIC_ACQUIRE), last;

		if (k == 0 || k == SOCKSHIM_WORKER_RECYCLING || k == me || !listeners_thread_gone(k) ||
		    !__atomic_compare_exchange_n(&w->key, &k, SOCKSHIM_WORKER_RECYCLING, 0,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		/* Killed while waiting for the lock or the token: it waits no more. */
		__atomic_fetch_and(&l->waiting, ~(UINT64_C(1) << i), __ATOMIC_SEQ_CST);
		__atomic_fetch_and(&l->token_waiting, ~(UINT64_C(1) << i), __ATOMIC_SEQ_CST);
		move_count(&w->calls, &l->retired.calls);
		move_count(&w->accepts, &l->retired.accepts);
		move_count(&w->spurious, &l->retired.spurious);
		move_count(&w->empty, &l->retired.empty);
		move_count(&w->eintr, &l->retired.eintr);
		move_count(&w->lock_wait_ns, &l->retired.lock_wait_ns);
		last = __atomic_exchange_n(&w->last_ns, 0, __ATOMIC_RELAXED);
		stat_max64(&l->retired.last_ns, last);
		stat_add(&l->retired.key, 1);
		__atomic_store_n(&w->key, me, __ATOMIC_RELEASE);
		return w;
	}
	next_try_ns = now + 1000000000ull;
	return NULL;
}

struct sockshim_worker *listeners_worker(struct sockshim_listener *l)
{
	uint64_t me = ((uint64_t)(uint32_t)shim_getpid() << 32) | (uint32_t)shim_gettid();
	struct sockshim_worker *w;
	unsigned i;

	for (i = 0; i < SOCKSHIM_WORKERS; i++)
		if (__atomic_load_n(&l->workers[i].key, __ATOMIC_ACQUIRE) == me)
			return &l->workers[i];
	for (i = 0; i < SOCKSHIM_WORKERS; i++) {
		uint64_t k = 0;

		if (__atomic_compare_exchange_n(&l->workers[i].key, &k, me, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return &l->workers[i];
		if (k == me)
			return &l->workers[i];
	}
	w = recycle_row(l, me);
	if (!w)
		stat_add(&l->worker_overflow, 1);
	return w;
}

void stat_hist(uint64_t *hist, uint64_t ns)
{
	stat_add(&hist[sockshim_hist_bucket(ns)], 1);
}

void stat_max64(uint64_t *max, uint64_t v)
{
	uint64_t cur = __atomic_load_n(max, __ATOMIC_RELAXED);

	while (cur < v &&
	       !__atomic_compare_exchange_n(max, &cur, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
	}
}

void stat_max(uint32_t *max, uint32_t v)
{
	uint32_t cur = __atomic_load_n(max, __ATOMIC_RELAXED);

	while (cur < v &&
	       !__atomic_compare_exchange_n(max, &cur, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
	}
}
