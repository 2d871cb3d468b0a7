/* The reference ledger. Entries are claimed by CAS of their inode word in
 * the ledger's index (0 or a released socket's inode -> claiming(inode, tid) ->
 * inode; probes read the index alone, 16 bytes a slot), holders by
 * CAS of their state, history steps by an atomic index. Nothing here
 * allocates; the one wait is a bounded one for another claimer of the
 * same socket (claim.h). A process killed mid-update costs at most one
 * entry, holder slot or step. Readers (the command) reconcile what they
 * read with /proc. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#include "callsite.h"
#include "claim.h"
#include "emit.h"
#include "ledger.h"
#include "log.h"
#include "procs.h"
#include "sockshim/clock.h"

/* Lost races a claim retries before it gives up (counted as ledger_full). */
#define LEDGER_RETRIES 16

static char comm[16];


static struct sockshim_sock *entry(struct seg_map *m, uint32_t ref)
{
	if (!ref || !seg_map_live(m) || ref > m->ledger_capacity)
		return NULL;
	return seg_ledger(m) + (ref - 1);
}

/* The index key of entry REF, NULL as entry() is. */
static struct sockshim_ledger_key *key_of(struct seg_map *m, uint32_t ref)
{
	if (!ref || !seg_map_live(m) || ref > m->ledger_capacity)
		return NULL;
	return seg_ledger_keys(m) + (ref - 1);
}

/* The index key of entry S (one of M's). */
static struct sockshim_ledger_key *key_at(struct seg_map *m, const struct sockshim_sock *s)
{
	return seg_ledger_keys(m) + (s - seg_ledger(m));
}

static void count(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

void ledger_set_comm(void)
{
	char name[17] = "";

	if (prctl(PR_GET_NAME, name, 0, 0, 0) == 0)
		memcpy(comm, name, sizeof(comm));
}

/* A probe window: SOCKSHIM_LEDGER_PROBE keys from INODE's hash slot on,
 * wrapping from the index's last key to its first. Walked by pointer
 * (probe_next): an index masked at every step cost 7 instructions a key
 * on the claim's pass over a full window. */
struct probe {
	struct sockshim_ledger_key *keys, *end; /* the index */
	struct sockshim_ledger_key *first;      /* the window's first key */
};

static struct probe probe_of(struct seg_map *m, uint64_t inode)
{
	struct probe p;

	p.keys = seg_ledger_keys(m);
	p.end = p.keys + m->ledger_capacity;
	p.first = p.keys + (sockshim_ledger_hash(inode) & (m->ledger_capacity - 1));
	return p;
}

static inline struct sockshim_ledger_key *probe_next(const struct probe *p,
						     struct sockshim_ledger_key *key)
{
	return key + 1 == p->end ? p->keys : key + 1;
}

/* The reference of the entry whose key is KEY. */
static inline uint32_t probe_ref(const struct probe *p, const struct sockshim_ledger_key *key)
{
	return (uint32_t)(key - p->keys) + 1;
}

uint32_t ledger_lookup(struct seg_map *m, uint64_t inode)
{
	struct sockshim_ledger_key *key;
	struct probe p;
	uint32_t i;

	if (!seg_map_live(m) || !inode)
		return 0;
	p = probe_of(m, inode);
	for (i = 0, key = p.first; i < SOCKSHIM_LEDGER_PROBE; i++, key = probe_next(&p, key)) {
		uint64_t k = __atomic_load_n(&key->inode, __ATOMIC_ACQUIRE);

		if (k == inode)
			return probe_ref(&p, key);
		if (!k)
			return 0;
	}
	return 0;
}

/* The address bits of E's flags, set and cleared one by one: the entry's
 * other bits (SOCKSHIM_FLAG_LINGER_RESET) are another holder's to change,
 * and a plain store could undo its setsockopt. */
static void addr_flags_from(struct sockshim_sock *s, const struct fd_entry *e)
{
	uint16_t set = (uint16_t)(e->flags & SOCKSHIM_FLAGS_ADDR);

	__atomic_fetch_or(&s->flags, set, __ATOMIC_RELAXED);
	__atomic_fetch_and(&s->flags, (uint16_t)~(SOCKSHIM_FLAGS_ADDR & ~set), __ATOMIC_RELAXED);
}

static void addresses_from(struct sockshim_sock *s, const struct fd_entry *e)
{
	s->family = e->family;
	s->socktype = e->socktype;
	memcpy(s->local_ip, e->local_ip, sizeof(s->local_ip));
	memcpy(s->peer_ip, e->peer_ip, sizeof(s->peer_ip));
	s->local_port = e->local_port;
	s->peer_port = e->peer_port;
	addr_flags_from(s, e);
}

/* The holder slots of S that may be taken: every other one is free
 * (a claim frees those it names and clears it; a slot's bit is set before
 * the slot is taken, so whoever can see the holder sees its bit). A
 * connection uses the first one or two: its other slots' cache lines are
 * not read. */
static uint32_t holders_used(struct sockshim_sock *s)
{
	return __atomic_load_n(&s->holders_used, __ATOMIC_RELAXED) &
	       ((1u << SOCKSHIM_HOLDERS) - 1);
}

/* Free the holder slots of S that holders_used says may have been
 * taken since its last claim (a holder stuck half-written by a killed
 * process, or one left by an unbalanced release, must not become the new
 * socket's). */
static void clear_used_holders(struct sockshim_sock *s)
{
	uint32_t used;

	for (used = holders_used(s); used; used &= used - 1) {
		struct sockshim_holder *hd = &s->holders[__builtin_ctz(used)];

		if (__atomic_load_n(&hd->state, __ATOMIC_RELAXED) != SOCKSHIM_HOLDER_FREE)
			__atomic_store_n(&hd->state, SOCKSHIM_HOLDER_FREE, __ATOMIC_RELAXED);
	}
}

/* Fill a claimed entry S (its key K's word sockshim_inode_claiming(INODE, us)),
 * then publish its inode. */
static void init_entry(struct sockshim_sock *s, struct sockshim_ledger_key *k, uint64_t inode,
		       const struct fd_entry *e, pid_t born_pid, int born_fd)
{
	/* A reclaimed entry: clear what the old socket left (nobody else
	 * writes it while it is claimed), only where a reader or a lookup
	 * would take it for the new socket's (layout.h, struct sockshim_sock).
	 * The history goes on from where the old one ended. */
	uint32_t next = __atomic_load_n(&s->steps_next, __ATOMIC_RELAXED);

	if (next >= SOCKSHIM_STEPS_RESTART)
		next = 0;
	clear_used_holders(s);
	memset(s, 0, SOCKSHIM_SOCK_CLEARED);
	s->steps_next = next;
	s->steps_base = next;
	__atomic_store_n(&k->released_ns, 0, __ATOMIC_RELAXED);
	s->born_ns = e->born_ns ? e->born_ns : sockshim_clock_ns(CLOCK_MONOTONIC);
	s->born_pid = born_pid;
	s->born_fd = born_fd;
	memcpy(s->born_comm, comm, sizeof(s->born_comm));
	s->born = e->born;
	addresses_from(s, e);
	s->callsite_module[0] = 0;
	if (e->callsite) {
		s->callsite = e->callsite;
		callsite_resolve(e->callsite, s->callsite_module, sizeof(s->callsite_module),
				 &s->callsite_offset);
	}
	__atomic_store_n(&k->inode, inode, __ATOMIC_RELEASE);
}

/* Does a key of INODE's probe window P other than MINE hold INODE,
 * published or being filled in? */
static int claimed_elsewhere(const struct probe *p, const struct sockshim_ledger_key *mine,
			     uint64_t inode)
{
	struct sockshim_ledger_key *key;
	uint32_t i;

	for (i = 0, key = p->first; i < SOCKSHIM_LEDGER_PROBE; i++, key = probe_next(p, key)) {
		uint64_t k = __atomic_load_n(&key->inode, __ATOMIC_SEQ_CST);

		if (sockshim_inode_of(k) == inode && key != mine)
			return 1;
	}
	return 0;
}

/* Is S, the entry found under the inode of the socket E describes, a
 * previous socket's? sockfs numbers sockets with a 32-bit counter that
 * wraps (get_next_ino), so an entry released long ago can carry the inode
 * of a socket created now. Said only where the facts prove it: a family
 * or type that differs (a socket never changes them), or, for connected
 * stream sockets of the internet families, addresses that differ (a
 * connection never changes them). Anything else is taken for the same
 * socket, as before. */
static int previous_socket(const struct sockshim_sock *s, const struct fd_entry *e)
{
	uint16_t flags = __atomic_load_n(&s->flags, __ATOMIC_RELAXED);
	size_t ip = e->family == AF_INET ? 4 : 16;

	if (!e->family || !e->socktype || !s->family || !s->socktype)
		return 0;
	if (s->family != e->family || s->socktype != e->socktype)
		return 1;
	if (e->socktype != SOCK_STREAM || (e->family != AF_INET && e->family != AF_INET6) ||
	    !(e->flags & SOCKSHIM_FLAG_PEER_KNOWN) || !(flags & SOCKSHIM_FLAG_PEER_KNOWN))
		return 0;
	if (s->peer_port != e->peer_port || memcmp(s->peer_ip, e->peer_ip, ip) != 0)
		return 1;
	return (flags & SOCKSHIM_FLAG_LOCAL_KNOWN) && (e->flags & SOCKSHIM_FLAG_LOCAL_KNOWN) &&
	       (s->local_port != e->local_port || memcmp(s->local_ip, e->local_ip, ip) != 0);
}

/* Is entry S, whose key is KEY, released (no holder, a release time) and
 * a previous socket's for E? */
static int released_previous(struct sockshim_sock *s, struct sockshim_ledger_key *key,
			     const struct fd_entry *e)
{
	if (__builtin_expect(__atomic_load_n(&s->refs, __ATOMIC_ACQUIRE) > 0, 1))
		return 0;
	return __atomic_load_n(&key->released_ns, __ATOMIC_ACQUIRE) && previous_socket(s, e);
}

int ledger_is_previous(struct seg_map *m, uint32_t ref, const struct fd_entry *e)
{
	struct sockshim_sock *s = entry(m, ref);

	return s && released_previous(s, key_of(m, ref), e);
}

/* How a claim of an entry for a socket ended. */
enum claim {
	CLAIM_DONE,    /* the socket's entry: found, or claimed (*created) */
	CLAIM_NONE,    /* no free slot near its hash */
	CLAIM_FULL,    /* out of tries against other claimers */
	CLAIM_STALLED, /* its claimer is not getting on (dead or stopped mid-fill) */
	CLAIM_AGAIN,   /* the window changed under the claim: look again */
};

/* The entry released longest ago that a pass over the window saw (KEY
 * NULL: none), chosen by the keys alone: its reference count is read
 * once, for it only, before it is taken (take_released). */
struct released_pick {
	struct sockshim_ledger_key *key;
	uint64_t inode;
	uint64_t released_ns;
};

static enum claim take_released(struct seg_map *m, const struct released_pick *pick,
				uint64_t inode, const struct fd_entry *e, pid_t born_pid,
				int born_fd, uint32_t *ref, int *created);

/* KEY holds INODE: the entry of the socket E describes, found (CLAIM_DONE,
 * *REF), unless it is a released entry of a previous socket with that
 * inode (previous_socket). That one is taken as any released entry is
 * (take_released: claimed, checked still released, filled in for the new
 * socket, *CREATED); if it was not taken, it was held again (given back:
 * found), or another claimer of the same socket took it first (waited
 * for, as at a free slot), or it went to another socket (look again). */
static enum claim found_or_previous(struct seg_map *m, const struct probe *p,
				    struct sockshim_ledger_key *key, uint64_t inode,
				    const struct fd_entry *e, pid_t born_pid, int born_fd, uint32_t *ref,
				    int *created)
{
	struct released_pick pick = {.key = key, .inode = inode};
	uint64_t k;

	*ref = probe_ref(p, key);
	if (!released_previous(seg_ledger(m) + (key - p->keys), key, e) ||
	    take_released(m, &pick, inode, e, born_pid, born_fd, ref, created) == CLAIM_DONE)
		return CLAIM_DONE;
	k = __atomic_load_n(&key->inode, __ATOMIC_ACQUIRE);
	if (sockshim_inode_claimed_for(k, inode))
		k = claim_wait(&key->inode, inode);
	if (k == inode)
		return CLAIM_DONE;
	return sockshim_inode_claimed_for(k, inode) ? CLAIM_STALLED : CLAIM_AGAIN;
}

/* A free slot. Slots are taken in probe order and never freed, so two
 * claimers of one inode meet at the first free one: one CAS wins, the
 * other finds its claim there and waits for it. Races with other claimers
 * are retried a bounded number of times: a table another process keeps
 * rewriting must not hold us. When the window has no free slot, PICK is
 * the entry to take instead (one pass over the keys finds both). The
 * pass reads each key with relaxed loads into locals (an acquire load
 * per key kept the loop's state in memory: 35 instructions a key); the
 * key that decides (ours, or free) is read again with acquire. */
static enum claim claim_free(struct seg_map *m, uint64_t inode, const struct fd_entry *e,
			     pid_t born_pid, int born_fd, uint32_t *ref, int *created,
			     struct released_pick *pick)
{
	struct probe p = probe_of(m, inode);
	struct sockshim_ledger_key *key;
	unsigned tries = 0;
	uint32_t i;

again:
	pick->key = NULL;
	{
		struct sockshim_ledger_key *best = NULL;
		/* The best release time less one: a released key's time less
		 * one is below it (0, never released, wraps to the top). */
		uint64_t best_inode = 0, best_released_less1 = UINT64_MAX - 1;

		for (i = 0, key = p.first; i < SOCKSHIM_LEDGER_PROBE;
		     i++, key = probe_next(&p, key)) {
			uint64_t k = __atomic_load_n(&key->inode, __ATOMIC_RELAXED), released;

			/* Free, or ours (published or being filled in). */
			if (__builtin_expect(sockshim_inode_of(k) == inode || !k, 0))
				break;
			if (sockshim_inode_is_claiming(k))
				continue; /* another socket's claim */
			released = __atomic_load_n(&key->released_ns, __ATOMIC_RELAXED) - 1;
			/* Released (not 0), and before the best so far. */
			if (released < best_released_less1) {
				best = key;
				best_inode = k;
				best_released_less1 = released;
			}
		}
		if (i == SOCKSHIM_LEDGER_PROBE) {
			pick->key = best;
			pick->inode = best_inode;
			pick->released_ns = best_released_less1 + 1;
			return CLAIM_NONE;
		}
	}
	{
		uint64_t k = __atomic_load_n(&key->inode, __ATOMIC_ACQUIRE);

		if (sockshim_inode_claimed_for(k, inode))
			k = claim_wait(&key->inode, inode);
		if (k == inode) {
			enum claim r = found_or_previous(m, &p, key, inode, e, born_pid, born_fd,
							 ref, created);

			if (r != CLAIM_AGAIN)
				return r;
			goto retry;
		}
		if (sockshim_inode_claimed_for(k, inode))
			return CLAIM_STALLED;
		if (k) /* changed since the pass: look again */
			goto retry;
		if (__atomic_compare_exchange_n(&key->inode, &k,
						sockshim_inode_claiming(inode, shim_gettid()), 0,
						__ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE)) {
			init_entry(seg_ledger(m) + (key - p.keys), key, inode, e, born_pid, born_fd);
			*created = 1;
			*ref = probe_ref(&p, key);
			return CLAIM_DONE;
		}
		/* Someone took the slot: look again, it may be ours. Out of
		 * tries, the window may still have a free slot: not one to
		 * reclaim from under a claimer that found it (see below). */
	}
retry:
	if (++tries < LEDGER_RETRIES)
		goto again;
	pick->key = NULL;
	return CLAIM_FULL;
}

/* Take PICK (chosen from a look at the keys) for INODE, if it is still
 * the released entry it was chosen as: CLAIM_DONE, or CLAIM_NONE with
 * the entry given back untouched. */
static enum claim take_released(struct seg_map *m, const struct released_pick *pick,
				uint64_t inode, const struct fd_entry *e, pid_t born_pid,
				int born_fd, uint32_t *ref, int *created)
{
	uint64_t k = pick->inode;
	struct probe p = probe_of(m, inode);
	struct sockshim_ledger_key *keys = p.keys, *best = pick->key;
	struct sockshim_sock *l = seg_ledger(m);

	if (!__atomic_compare_exchange_n(&best->inode, &k,
					 sockshim_inode_claiming(inode, shim_gettid()), 0,
					 __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE))
		return CLAIM_NONE; /* someone else took it */
	/* Held again since we looked (its socket passed on by a process
	 * that had not touched it yet)? Or another claimer of this inode
	 * picked another released entry at the same moment? Claims and
	 * these loads are sequentially consistent, so of two such claimers
	 * at least one sees the other's: whoever does gives its entry back,
	 * untouched, to its old socket, and looks again. */
	if (__atomic_load_n(&l[best - keys].refs, __ATOMIC_SEQ_CST) > 0 ||
	    !__atomic_load_n(&best->released_ns, __ATOMIC_SEQ_CST) ||
	    claimed_elsewhere(&p, best, inode)) {
		__atomic_store_n(&best->inode, pick->inode, __ATOMIC_RELEASE);
		return CLAIM_NONE;
	}
	count(&seg_header(m)->ledger_reclaimed);
	init_entry(&l[best - keys], best, inode, e, born_pid, born_fd);
	*created = 1;
	*ref = probe_ref(&p, best);
	return CLAIM_DONE;
}

/* No free slot near ours, and the first pass's pick taken by another or
 * held again: take the one released longest ago (its history goes; a
 * socket still held never loses its entry). The choice reads the keys,
 * and an entry's reference count for each key that would be the best so
 * far (a few of the window's 32), so a held entry with a stale release
 * time is passed over. */
static enum claim claim_released(struct seg_map *m, uint64_t inode, const struct fd_entry *e,
				 pid_t born_pid, int born_fd, uint32_t *ref, int *created)
{
	struct probe p = probe_of(m, inode);
	struct sockshim_sock *l = seg_ledger(m);
	struct released_pick pick;
	unsigned tries;
	uint32_t i;

	for (tries = 0; tries < LEDGER_RETRIES; tries++) {
		struct sockshim_ledger_key *best = NULL, *key;
		uint64_t best_released = UINT64_MAX, best_k = 0, k;

		for (i = 0, key = p.first; i < SOCKSHIM_LEDGER_PROBE;
		     i++, key = probe_next(&p, key)) {
			uint64_t released;

			/* The inode first: what is read after it is that
			 * socket's (its claimer cleared the rest before
			 * publishing it). */
			k = __atomic_load_n(&key->inode, __ATOMIC_ACQUIRE);
			if (sockshim_inode_claimed_for(k, inode))
				k = claim_wait(&key->inode, inode);
			if (k == inode) {
				enum claim r = found_or_previous(m, &p, key, inode, e, born_pid,
								 born_fd, ref, created);

				if (r != CLAIM_AGAIN)
					return r;
				goto next_try;
			}
			if (sockshim_inode_claimed_for(k, inode))
				return CLAIM_STALLED;
			released = __atomic_load_n(&key->released_ns, __ATOMIC_ACQUIRE);
			if (!sockshim_inode_in_use(k) || !released || released >= best_released ||
			    __atomic_load_n(&l[key - p.keys].refs, __ATOMIC_ACQUIRE) > 0)
				continue;
			best = key;
			best_k = k;
			best_released = released;
		}
		if (!best)
			break;
		/* From the socket it was chosen as: not from one given the
		 * entry since. */
		pick.key = best;
		pick.inode = best_k;
		pick.released_ns = best_released;
		if (take_released(m, &pick, inode, e, born_pid, born_fd, ref, created) == CLAIM_DONE)
			return CLAIM_DONE;
next_try:;
	}
	return CLAIM_FULL;
}

uint32_t ledger_get(struct seg_map *m, uint64_t inode, const struct fd_entry *e, pid_t born_pid,
		    int born_fd, int *created)
{
	uint32_t ref = 0;
	struct released_pick pick;
	enum claim r;

	*created = 0;
	if (!seg_map_live(m))
		return 0;
	if (__builtin_expect(!sockshim_inode_in_use(inode), 0)) {
		/* A socket inode wider than the 32 bits sockfs gives them
		 * (layout.h): said once, counted as not recorded. */
		if (inode > SOCKSHIM_INODE_MAX) {
			shim_warn("socket inode %llu is wider than 32 bits: not recorded",
				  (unsigned long long)inode);
			count(&seg_header(m)->ledger_full);
		}
		return 0;
	}
	/* Found on the way, as a lookup would (one pass over the keys), or
	 * the window's free slot; a full window's entry released longest
	 * ago is picked on the way, and taken if nobody holds it (one
	 * entry's count read); else the careful look (claim_released). */
	r = claim_free(m, inode, e, born_pid, born_fd, &ref, created, &pick);
	if (r == CLAIM_NONE && pick.key &&
	    __atomic_load_n(&seg_ledger(m)[pick.key - seg_ledger_keys(m)].refs, __ATOMIC_ACQUIRE) <= 0)
		r = take_released(m, &pick, inode, e, born_pid, born_fd, &ref, created);
	if (r == CLAIM_NONE)
		r = claim_released(m, inode, e, born_pid, born_fd, &ref, created);
	if (r == CLAIM_DONE)
		return ref;
	/* A claimer not getting on: not recorded, as if full. */
	if (r == CLAIM_STALLED)
		count(&seg_header(m)->claims_stalled);
	count(&seg_header(m)->ledger_full);
	return 0;
}

void ledger_describe(struct seg_map *m, uint32_t ref, const struct fd_entry *e)
{
	struct sockshim_sock *s = entry(m, ref);

	if (!s)
		return;
	addresses_from(s, e);
	if (e->born == SOCKSHIM_BORN_CONNECT && s->born == SOCKSHIM_BORN_SOCKET)
		__atomic_store_n(&s->born, (uint16_t)SOCKSHIM_BORN_CONNECT, __ATOMIC_RELAXED);
}

static int holder_is(struct sockshim_holder *hd, pid_t pid, int fd)
{
	return __atomic_load_n(&hd->state, __ATOMIC_ACQUIRE) == SOCKSHIM_HOLDER_LIVE &&
	       __atomic_load_n(&hd->pid, __ATOMIC_RELAXED) == pid &&
	       __atomic_load_n(&hd->fd, __ATOMIC_RELAXED) == fd;
}

/* The pool slot I of the probe window of (REF, PID, FD). */
static struct sockshim_pooled_holder *pool_slot(struct seg_map *m, uint32_t ref, pid_t pid, int fd,
					       unsigned i)
{
	uint32_t cap = m->ledger_capacity;

	return seg_pool(m) + ((sockshim_pool_hash(ref, pid, fd) + i) & (cap - 1));
}

/* PID's holder of entry REF as FD in the pool, if S has any there. */
static struct sockshim_holder *pooled_of(struct seg_map *m, uint32_t ref, struct sockshim_sock *s,
					 pid_t pid, int fd)
{
	unsigned i;

	if (!__atomic_load_n(&s->pooled, __ATOMIC_ACQUIRE) || !m->pool_offset)
		return NULL;
	for (i = 0; i < SOCKSHIM_POOL_PROBE; i++) {
		struct sockshim_pooled_holder *p = pool_slot(m, ref, pid, fd, i);

		if (holder_is(&p->h, pid, fd) && __atomic_load_n(&p->ref, __ATOMIC_RELAXED) == ref)
			return &p->h;
	}
	return NULL;
}

/* PID's holder of entry REF (S) as FD, in the entry or the pool; *POOLED
 * says which. */
static struct sockshim_holder *holder_of(struct seg_map *m, uint32_t ref, struct sockshim_sock *s,
					 pid_t pid, int fd, int *pooled)
{
	uint32_t used;
	unsigned i;

	*pooled = 0;
	for (used = holders_used(s); used; used &= used - 1) {
		i = (unsigned)__builtin_ctz(used);
		if (holder_is(&s->holders[i], pid, fd))
			return &s->holders[i];
	}
	*pooled = 1;
	return pooled_of(m, ref, s, pid, fd);
}

int ledger_holds(struct seg_map *m, uint32_t ref, pid_t pid, int fd)
{
	struct sockshim_sock *s = entry(m, ref);
	int pooled;

	return s && holder_of(m, ref, s, pid, fd, &pooled) != NULL;
}

static int claim_holder(struct sockshim_sock *s, pid_t pid, int fd, int how, pid_t from_pid,
			int from_fd, uint64_t now);
static void released(struct seg_map *m, struct sockshim_sock *s, uint64_t now);
static int claim_pooled(struct seg_map *m, uint32_t ref, struct sockshim_sock *s, pid_t pid,
			int fd, int how, pid_t from_pid, int from_fd, uint64_t now);

/* NOW, or the clock when NOW is 0 (the caller did not read it). */
static uint64_t now_or_clock(uint64_t now)
{
	return now ? now : sockshim_clock_ns(CLOCK_MONOTONIC);
}

void ledger_reserve(struct seg_map *m, uint32_t ref, int delta)
{
	struct sockshim_sock *s = entry(m, ref);
	int32_t refs;

	if (!s)
		return;
	refs = __atomic_add_fetch(&s->refs, delta, __ATOMIC_ACQ_REL);
	if (delta > 0)
		__atomic_store_n(&key_at(m, s)->released_ns, 0, __ATOMIC_RELEASE);
	else if (refs <= 0)
		released(m, s, sockshim_clock_ns(CLOCK_MONOTONIC));
}

void ledger_hold(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int how, pid_t from_pid,
		 int from_fd, int reserved)
{
	ledger_hold_at(m, ref, pid, fd, how, from_pid, from_fd, reserved, 0);
}

void ledger_hold_at(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int how, pid_t from_pid,
		    int from_fd, int reserved, uint64_t now)
{
	struct sockshim_sock *s = entry(m, ref);
	struct sockshim_holder *hd;
	int pooled;

	if (!s)
		return;
	hd = holder_of(m, ref, s, pid, fd, &pooled);
	if (hd) { /* seen again (exec, re-discovery): how it holds it now */
		__atomic_store_n(&hd->how, (uint16_t)how, __ATOMIC_RELAXED);
		if (reserved)
			ledger_reserve(m, ref, -1);
		procs_held(ref, pid, fd); /* listed by this image too */
		return;
	}
	if (!reserved)
		ledger_reserve(m, ref, 1);
	procs_held(ref, pid, fd);
	if (!claim_holder(s, pid, fd, how, from_pid, from_fd, now) &&
	    !claim_pooled(m, ref, s, pid, fd, how, from_pid, from_fd, now)) {
		/* The reference is counted even when its holder cannot be named. */
		__atomic_fetch_add(&s->holder_overflow, 1, __ATOMIC_RELAXED);
		count(&seg_header(m)->holder_overflow);
	}
}

/* Take HD if it is free, fill it in (REF first, if given: a pooled
 * holder's; held since NOW, 0: the clock's) and publish it. */
static int take_holder(struct sockshim_holder *hd, uint32_t *ref_slot, uint32_t ref, pid_t pid,
		       int fd, int how, pid_t from_pid, int from_fd, uint64_t now)
{
	uint32_t free_state = SOCKSHIM_HOLDER_FREE;

	if (!__atomic_compare_exchange_n(&hd->state, &free_state, SOCKSHIM_HOLDER_CLAIMED, 0,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return 0;
	if (ref_slot)
		__atomic_store_n(ref_slot, ref, __ATOMIC_RELAXED);
	__atomic_store_n(&hd->pid, pid, __ATOMIC_RELAXED);
	__atomic_store_n(&hd->fd, fd, __ATOMIC_RELAXED);
	__atomic_store_n(&hd->how, (uint16_t)how, __ATOMIC_RELAXED);
	__atomic_store_n(&hd->since_ns, now_or_clock(now), __ATOMIC_RELAXED);
	__atomic_store_n(&hd->from_pid, from_pid, __ATOMIC_RELAXED);
	__atomic_store_n(&hd->from_fd, from_fd, __ATOMIC_RELAXED);
	__atomic_store_n(&hd->state, SOCKSHIM_HOLDER_LIVE, __ATOMIC_RELEASE);
	return 1;
}

static int claim_holder(struct sockshim_sock *s, pid_t pid, int fd, int how, pid_t from_pid,
			int from_fd, uint64_t now)
{
	unsigned i;

	for (i = 0; i < SOCKSHIM_HOLDERS; i++) {
		uint32_t bit = 1u << i;

		if (__atomic_load_n(&s->holders[i].state, __ATOMIC_RELAXED) != SOCKSHIM_HOLDER_FREE)
			continue;
		/* Marked before it is taken: the next claim of the entry frees it. */
		if (!(__atomic_load_n(&s->holders_used, __ATOMIC_RELAXED) & bit))
			__atomic_fetch_or(&s->holders_used, bit, __ATOMIC_RELAXED);
		if (take_holder(&s->holders[i], NULL, 0, pid, fd, how, from_pid, from_fd, now))
			return 1;
	}
	return 0;
}

/* The entry's own slots are taken: one in the pool. */
static int claim_pooled(struct seg_map *m, uint32_t ref, struct sockshim_sock *s, pid_t pid,
			int fd, int how, pid_t from_pid, int from_fd, uint64_t now)
{
	unsigned i;

	if (!m->pool_offset)
		return 0;
	/* Counted first: a reader or a lookup that sees the holder also
	 * knows to look in the pool. */
	__atomic_fetch_add(&s->pooled, 1, __ATOMIC_ACQ_REL);
	for (i = 0; i < SOCKSHIM_POOL_PROBE; i++) {
		struct sockshim_pooled_holder *p = pool_slot(m, ref, pid, fd, i);

		if (take_holder(&p->h, &p->ref, ref, pid, fd, how, from_pid, from_fd, now))
			return 1;
	}
	__atomic_fetch_sub(&s->pooled, 1, __ATOMIC_ACQ_REL);
	return 0;
}

/* Take one from the count *N unless it is 0. 1 when taken. */
static int take_one(uint32_t *n)
{
	uint32_t v = __atomic_load_n(n, __ATOMIC_ACQUIRE);

	do {
		if (!v)
			return 0;
	} while (!__atomic_compare_exchange_n(n, &v, v - 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	return 1;
}

/* Live holders S names: its own slots' and the pool's. */
static int32_t named_holders(struct sockshim_sock *s)
{
	int32_t n = (int32_t)__atomic_load_n(&s->pooled, __ATOMIC_ACQUIRE);
	uint32_t used;

	for (used = holders_used(s); used; used &= used - 1)
		n += __atomic_load_n(&s->holders[__builtin_ctz(used)].state, __ATOMIC_ACQUIRE) ==
		     SOCKSHIM_HOLDER_LIVE;
	return n;
}

/* Free holder HD of S (a pooled one: POOLED), or, HD NULL, a reference no
 * holder names, and drop its reference. The references left (>= 0) and
 * before in *BEFORE; -1 when there is nothing of ours to drop: another
 * freed HD first (a reader's reclaim), or S counts no reference beyond
 * its named holders (one released already as gone from /proc). */
static int drop_holder(struct seg_map *m, struct sockshim_sock *s, struct sockshim_holder *hd,
		       int pooled, int *before, uint64_t now)
{
	uint32_t live = SOCKSHIM_HOLDER_LIVE;
	int32_t refs, left;

	if (hd) {
		if (!__atomic_compare_exchange_n(&hd->state, &live, SOCKSHIM_HOLDER_FREE, 0,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return -1;
		if (pooled)
			__atomic_fetch_sub(&s->pooled, 1, __ATOMIC_ACQ_REL);
	}
	/* Never below zero, nor, for a holder not named, below the named
	 * ones: a holder we never saw (kill -9 elsewhere) or one already
	 * reclaimed does not take another's reference. */
	refs = __atomic_load_n(&s->refs, __ATOMIC_ACQUIRE);
	do {
		if (!hd && refs <= named_holders(s))
			return -1;
		left = refs > 0 ? refs - 1 : 0;
	} while (!__atomic_compare_exchange_n(&s->refs, &refs, left, 1, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	/* A holder that did not fit has gone: the count of those stays the
	 * number there are now. */
	if (!hd)
		take_one(&s->holder_overflow);
	*before = refs;
	if (!left)
		released(m, s, now_or_clock(now));
	else
		__atomic_fetch_add(&s->noeffect_closes, 1, __ATOMIC_RELAXED);
	return left;
}

int ledger_release(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int *before)
{
	return ledger_release_at(m, ref, pid, fd, before, 0);
}

int ledger_release_at(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int *before,
		      uint64_t now)
{
	struct sockshim_sock *s = entry(m, ref);
	struct sockshim_holder *hd;
	int pooled;

	*before = -1;
	if (!s)
		return -1;
	procs_dropped(ref, pid, fd);
	hd = holder_of(m, ref, s, pid, fd, &pooled);
	return drop_holder(m, s, hd, pooled, before, now);
}

/* A 32-bit word that may alias a step's name bytes. */
typedef uint32_t __attribute__((may_alias)) step_word;

/* Store NAME (12 bytes) as ST's name: three word stores, not twelve byte
 * stores (a reader copies the step between two reads of its seq). */
static void step_comm(struct sockshim_step *st, const char *name)
{
	step_word w[sizeof(st->comm) / sizeof(step_word)];
	step_word *to = (step_word *)st->comm;
	unsigned i;

	_Static_assert(sizeof(st->comm) % sizeof(step_word) == 0 &&
			       __builtin_offsetof(struct sockshim_step, comm) % sizeof(step_word) == 0,
		       "a step's name is whole, aligned words");
	memcpy(w, name, sizeof(w));
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		__atomic_store_n(&to[i], w[i], __ATOMIC_RELAXED);
}

/* A history step at NOW (0: the clock's) written in the name of process
 * NAME (12 bytes). */
static void step_as(struct seg_map *m, uint32_t ref, int op, pid_t pid, int fd, int arg, int via,
		    const char *name, uint64_t now)
{
	struct sockshim_sock *s = entry(m, ref);
	struct sockshim_step *st;
	uint32_t n;

	if (!s)
		return;
	n = __atomic_fetch_add(&s->steps_next, 1, __ATOMIC_RELAXED);
	st = &s->steps[n % SOCKSHIM_STEPS];
	__atomic_store_n(&st->seq, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&st->op, (uint16_t)op, __ATOMIC_RELAXED);
	__atomic_store_n(&st->via, (uint16_t)via, __ATOMIC_RELAXED);
	__atomic_store_n(&st->ts_ns, now_or_clock(now), __ATOMIC_RELAXED);
	__atomic_store_n(&st->pid, pid, __ATOMIC_RELAXED);
	__atomic_store_n(&st->fd, fd, __ATOMIC_RELAXED);
	__atomic_store_n(&st->arg, arg, __ATOMIC_RELAXED);
	step_comm(st, name);
	__atomic_store_n(&st->seq, n + 1, __ATOMIC_RELEASE);
}

void ledger_step(struct seg_map *m, uint32_t ref, int op, pid_t pid, int fd, int arg, int via)
{
	step_as(m, ref, op, pid, fd, arg, via, comm, 0);
}

void ledger_step_at(struct seg_map *m, uint32_t ref, int op, pid_t pid, int fd, int arg, int via,
		    uint64_t now)
{
	step_as(m, ref, op, pid, fd, arg, via, comm, now);
}

void ledger_eof(struct seg_map *m, uint32_t ref, pid_t pid, int fd, uint64_t now)
{
	struct sockshim_sock *s = entry(m, ref);
	uint64_t none = 0;

	if (!s)
		return;
	now = now_or_clock(now); /* one time for the entry and its step */
	/* The first EOF wins; later ones are the same FIN seen again. */
	if (__atomic_compare_exchange_n(&s->eof_ns, &none, now, 0, __ATOMIC_RELEASE,
					__ATOMIC_RELAXED)) {
		__atomic_store_n(&s->eof_pid, pid, __ATOMIC_RELAXED);
		__atomic_store_n(&s->eof_fd, fd, __ATOMIC_RELAXED);
	}
	step_as(m, ref, SOCKSHIM_STEP_EOF, pid, fd, 0, 0, comm, now);
}

void ledger_read(struct seg_map *m, uint32_t ref)
{
	struct sockshim_sock *s = entry(m, ref);

	if (s)
		__atomic_store_n(&s->last_read_ns, sockshim_clock_ns(CLOCK_MONOTONIC_COARSE), __ATOMIC_RELAXED);
}

uint64_t ledger_inode(struct seg_map *m, uint32_t ref)
{
	struct sockshim_ledger_key *k = key_of(m, ref);
	uint64_t inode = k ? __atomic_load_n(&k->inode, __ATOMIC_ACQUIRE) : 0;

	return sockshim_inode_in_use(inode) ? inode : 0;
}

/* The inode entry REF is claimed for, 0 if it is not being claimed. */
static uint64_t ledger_claimed_inode(struct seg_map *m, uint32_t ref)
{
	struct sockshim_ledger_key *key = key_of(m, ref);
	uint64_t k = key ? __atomic_load_n(&key->inode, __ATOMIC_ACQUIRE) : 0;

	return sockshim_inode_is_claiming(k) ? sockshim_inode_of(k) : 0;
}

void ledger_describe_record(struct seg_map *m, uint32_t ref, struct sockshim_record *r)
{
	const struct sockshim_sock *s = entry(m, ref);

	if (!s)
		return;
	r->inode = ledger_inode(m, ref);
	r->family = s->family;
	r->socktype = s->socktype;
	memcpy(r->local_ip, s->local_ip, sizeof(r->local_ip));
	memcpy(r->peer_ip, s->peer_ip, sizeof(r->peer_ip));
	r->local_port = s->local_port;
	r->peer_port = s->peer_port;
	r->flags |= __atomic_load_n(&s->flags, __ATOMIC_RELAXED) & SOCKSHIM_FLAGS_ALL;
}

/* The close record of PID's FD, released VIA with BEFORE and LEFT
 * references. */
static void log_close(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int via, int before,
		      int left)
{
	struct sockshim_record r;

	record_init(&r, SOCKSHIM_EV_CLOSE, fd, 0, 0);
	r.pid = pid;
	r.tid = pid;
	ledger_describe_record(m, ref, &r);
	/* An entry claimed for a reclaim (ledger_reclaim_begin) is still
	 * its socket's: its inode word names it, claiming. */
	if (!r.inode && via == SOCKSHIM_CLOSE_VIA_GONE)
		r.inode = ledger_claimed_inode(m, ref);
	r.detail.close.via = via;
	r.detail.close.refs_before = before;
	r.detail.close.refs_after = left;
	emit_record_to(m, &r);
}

void ledger_forget_one(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int via)
{
	int before, left = ledger_release(m, ref, pid, fd, &before);

	if (left < 0)
		return;
	ledger_step(m, ref,
		    via == SOCKSHIM_CLOSE_VIA_EXEC ? SOCKSHIM_STEP_CLOSE : SOCKSHIM_STEP_EXIT, pid, fd,
		    left, via);
	log_close(m, ref, pid, fd, via, before, left);
}

int ledger_reclaim_begin(struct seg_map *m, uint32_t ref, uint64_t inode)
{
	struct sockshim_ledger_key *key = key_of(m, ref);
	uint64_t k = inode;

	/* Claimed as a new socket's entry is: nobody gives it to another
	 * socket, or fills it in, until ledger_reclaim_end. */
	return key && sockshim_inode_in_use(inode) &&
	       __atomic_compare_exchange_n(&key->inode, &k,
					   sockshim_inode_claiming(inode, shim_gettid()), 0,
					   __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE);
}

void ledger_reclaim_end(struct seg_map *m, uint32_t ref, uint64_t inode)
{
	struct sockshim_ledger_key *key = key_of(m, ref);

	if (key)
		__atomic_store_n(&key->inode, inode, __ATOMIC_RELEASE);
}

int ledger_reclaim_holder(struct seg_map *m, uint32_t ref, pid_t pid, int fd, uint64_t since_ns,
			  const char name[16])
{
	struct sockshim_sock *s = entry(m, ref);
	struct sockshim_holder *hd;
	int pooled, before, left;

	if (!s)
		return 0;
	hd = holder_of(m, ref, s, pid, fd, &pooled);
	/* The holder the reader judged, not one that took its place since. */
	if (!hd || __atomic_load_n(&hd->since_ns, __ATOMIC_RELAXED) != since_ns)
		return 0;
	/* Off its process's list first: whoever releases the process's
	 * holds at its end (exit, reap, exec, sweep) takes the list's slot
	 * too, and one of us releases it, once. */
	if (!procs_take_hold(m, pid, ref, fd))
		return 0;
	left = drop_holder(m, s, hd, pooled, &before, 0);
	if (left < 0)
		return 0;
	step_as(m, ref, SOCKSHIM_STEP_CLOSE, pid, fd, left, SOCKSHIM_CLOSE_VIA_GONE, name, 0);
	log_close(m, ref, pid, fd, SOCKSHIM_CLOSE_VIA_GONE, before, left);
	return 1;
}

int ledger_reclaim_unnamed(struct seg_map *m, uint32_t ref)
{
	static const char none[16];
	struct sockshim_sock *s = entry(m, ref);
	int32_t refs;

	if (!s || named_holders(s))
		return 0;
	refs = __atomic_load_n(&s->refs, __ATOMIC_ACQUIRE);
	do {
		if (refs <= 0)
			return 0;
	} while (!__atomic_compare_exchange_n(&s->refs, &refs, 0, 1, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	__atomic_store_n(&s->holder_overflow, 0, __ATOMIC_RELAXED);
	released(m, s, sockshim_clock_ns(CLOCK_MONOTONIC));
	step_as(m, ref, SOCKSHIM_STEP_CLOSE, 0, -1, 0, SOCKSHIM_CLOSE_VIA_GONE, none, 0);
	log_close(m, ref, 0, -1, SOCKSHIM_CLOSE_VIA_GONE, refs, 0);
	return refs;
}

int ledger_name_unnamed(struct seg_map *m, uint32_t ref, pid_t pid, int fd)
{
	struct sockshim_sock *s = entry(m, ref);
	int pooled;

	if (!s || holder_of(m, ref, s, pid, fd, &pooled))
		return 0;
	/* One of the holders that did not fit becomes this one: its
	 * reference was counted then, so refs stays. */
	if (!take_one(&s->holder_overflow))
		return 0;
	if (claim_holder(s, pid, fd, SOCKSHIM_HOW_NONE, pid, fd, 0) ||
	    claim_pooled(m, ref, s, pid, fd, SOCKSHIM_HOW_NONE, pid, fd, 0))
		return 1;
	__atomic_fetch_add(&s->holder_overflow, 1, __ATOMIC_ACQ_REL); /* still no room */
	return 0;
}

/* Every live holder PID has (whose descriptor, when STILL_OURS, is not
 * the socket any more) is released VIA. The one whole-ledger scan of the
 * shim: only for a process that held more than its entry in the process
 * table could list. */
static void forget(struct seg_map *m, pid_t pid, int still_ours, int via)
{
	struct sockshim_sock *l;
	struct sockshim_ledger_key *keys;
	uint32_t i, j;

	if (!seg_map_live(m))
		return;
	l = seg_ledger(m);
	keys = seg_ledger_keys(m);
	for (i = 0; i < m->ledger_capacity; i++) {
		uint64_t inode = __atomic_load_n(&keys[i].inode, __ATOMIC_ACQUIRE);

		if (!sockshim_inode_in_use(inode) || !__atomic_load_n(&l[i].refs, __ATOMIC_RELAXED))
			continue;
		for (j = 0; j < SOCKSHIM_HOLDERS; j++) {
			struct sockshim_holder *hd = &l[i].holders[j];
			struct fd_entry e;
			int fd;

			if (__atomic_load_n(&hd->state, __ATOMIC_ACQUIRE) != SOCKSHIM_HOLDER_LIVE ||
			    __atomic_load_n(&hd->pid, __ATOMIC_RELAXED) != pid)
				continue;
			fd = __atomic_load_n(&hd->fd, __ATOMIC_RELAXED);
			if (still_ours && fdtab_get(fd, &e) && e.inode == inode)
				continue; /* it survived exec */
			ledger_forget_one(m, i + 1, pid, fd, via);
		}
	}
	if (!m->pool_offset)
		return;
	for (i = 0; i < m->ledger_capacity; i++) {
		struct sockshim_pooled_holder *p = &seg_pool(m)[i];
		uint32_t ref = __atomic_load_n(&p->ref, __ATOMIC_RELAXED);
		struct fd_entry e;
		int fd;

		if (__atomic_load_n(&p->h.state, __ATOMIC_ACQUIRE) != SOCKSHIM_HOLDER_LIVE ||
		    __atomic_load_n(&p->h.pid, __ATOMIC_RELAXED) != pid || !ref ||
		    ref > m->ledger_capacity)
			continue;
		fd = __atomic_load_n(&p->h.fd, __ATOMIC_RELAXED);
		if (still_ours && fdtab_get(fd, &e) && e.inode == ledger_inode(m, ref))
			continue;
		ledger_forget_one(m, ref, pid, fd, via);
	}
}

void ledger_forget_stale(struct seg_map *m, pid_t pid)
{
	forget(m, pid, 1, SOCKSHIM_CLOSE_VIA_EXEC);
}

void ledger_forget_pid(struct seg_map *m, pid_t pid, int via)
{
	forget(m, pid, 0, via);
}

void ledger_set_listener(struct seg_map *m, uint32_t ref, uint32_t listener, uint64_t inode)
{
	struct sockshim_sock *s = entry(m, ref);

	if (!s || !listener)
		return;
	__atomic_store_n(&s->listener_inode, inode, __ATOMIC_RELAXED);
	__atomic_store_n(&s->listener, listener, __ATOMIC_RELEASE);
}

/* Did this side send its FIN (its last shutdown, for writing) before the
 * peer's EOF came at EOF? Then the EOF ended FIN_WAIT, not a CLOSE_WAIT. */
static int fin_before(struct sockshim_sock *s, uint64_t eof)
{
	uint64_t shut = __atomic_load_n(&s->shut_ns, __ATOMIC_ACQUIRE);

	return shut && shut <= eof && __atomic_load_n(&s->shut_how, __ATOMIC_RELAXED) != SHUT_RD;
}

/* The last reference of S went at NOW: its release time, and, for an
 * accepted connection, its lifetime (and CLOSE_WAIT dwell, reset) in its
 * listener's histograms. The exchange counts it once, however many
 * releases it sees (a reference reserved for a fork child given back). */
static void released(struct seg_map *m, struct sockshim_sock *s, uint64_t now)
{
	struct sockshim_listener *l;
	uint64_t born, eof;
	uint32_t lref;

	__atomic_store_n(&key_at(m, s)->released_ns, now, __ATOMIC_RELEASE);
	if (!__atomic_load_n(&s->listener, __ATOMIC_RELAXED))
		return; /* the common case for all but accepted connections */
	lref = __atomic_exchange_n(&s->listener, 0, __ATOMIC_ACQ_REL);
	if (!lref || lref > SOCKSHIM_LISTENERS || !m->listeners_offset)
		return;
	l = seg_listeners(m) + (lref - 1);
	/* The listener's entry given to another since: not its numbers. */
	if (__atomic_load_n(&l->inode, __ATOMIC_ACQUIRE) !=
	    __atomic_load_n(&s->listener_inode, __ATOMIC_RELAXED))
		return;
	born = __atomic_load_n(&s->born_ns, __ATOMIC_RELAXED);
	eof = __atomic_load_n(&s->eof_ns, __ATOMIC_RELAXED);
	count(&l->life_hist[sockshim_hist_bucket(now > born ? now - born : 0)]);
	if (eof && !fin_before(s, eof))
		count(&l->closewait_hist[sockshim_hist_bucket(now > eof ? now - eof : 0)]);
	if (__atomic_load_n(&s->flags, __ATOMIC_RELAXED) & SOCKSHIM_FLAG_LINGER_RESET)
		count(&l->aborted);
}

void ledger_linger_reset(struct seg_map *m, uint32_t ref, int on)
{
	struct sockshim_sock *s = entry(m, ref);

	if (!s)
		return;
	if (on)
		__atomic_fetch_or(&s->flags, (uint16_t)SOCKSHIM_FLAG_LINGER_RESET, __ATOMIC_RELAXED);
	else
		__atomic_fetch_and(&s->flags, (uint16_t)~SOCKSHIM_FLAG_LINGER_RESET,
				   __ATOMIC_RELAXED);
}

/* The others holding S when PID shuts it down: the first
 * SOCKSHIM_SHUT_OTHERS other processes of its slots into shut_others,
 * and in shut_nothers all of them plus the references nobody is named
 * for (holders in the pool, a fork child not yet in its slot). */
static void shut_others(struct sockshim_sock *s, pid_t pid, int32_t refs)
{
	unsigned i, j, n = 0, mine = 0, slots = 0;
	int32_t seen[SOCKSHIM_HOLDERS] = {0};

	for (i = 0; i < SOCKSHIM_HOLDERS; i++) {
		struct sockshim_holder *hd = &s->holders[i];
		int32_t p;

		if (__atomic_load_n(&hd->state, __ATOMIC_ACQUIRE) != SOCKSHIM_HOLDER_LIVE)
			continue;
		p = __atomic_load_n(&hd->pid, __ATOMIC_RELAXED);
		slots++;
		mine += p == pid;
		for (j = 0; j < n && seen[j] != p; j++)
			;
		if (p == pid || j < n)
			continue;
		seen[n] = p;
		if (n < SOCKSHIM_SHUT_OTHERS)
			__atomic_store_n(&s->shut_others[n], p, __ATOMIC_RELAXED);
		n++;
	}
	for (i = n; i < SOCKSHIM_SHUT_OTHERS; i++)
		__atomic_store_n(&s->shut_others[i], 0, __ATOMIC_RELAXED);
	if (refs > (int32_t)slots)
		n += (unsigned)refs - slots;
	__atomic_store_n(&s->shut_nothers, (uint16_t)(n < UINT16_MAX ? n : UINT16_MAX),
			 __ATOMIC_RELAXED);
}

void ledger_shutdown(struct seg_map *m, uint32_t ref, pid_t pid, int fd, int how,
		     uint64_t caller)
{
	struct sockshim_sock *s = entry(m, ref);
	int32_t refs;

	if (!s)
		return;
	/* Unpublished while written: a reader that sees shut_ns 0, or a
	 * different one after its copy, takes none of it. */
	__atomic_store_n(&s->shut_ns, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	refs = __atomic_load_n(&s->refs, __ATOMIC_ACQUIRE);
	__atomic_store_n(&s->shut_pid, pid, __ATOMIC_RELAXED);
	__atomic_store_n(&s->shut_fd, fd, __ATOMIC_RELAXED);
	__atomic_store_n(&s->shut_how, (int16_t)how, __ATOMIC_RELAXED);
	__atomic_store_n(&s->shut_refs, refs, __ATOMIC_RELAXED);
	shut_others(s, pid, refs);
	__atomic_store_n(&s->shut_callsite, caller, __ATOMIC_RELAXED);
	__atomic_store_n(&s->shut_callsite_offset, 0, __ATOMIC_RELAXED);
	s->shut_module[0] = 0;
	if (caller)
		callsite_resolve(caller, s->shut_module, sizeof(s->shut_module),
				 &s->shut_callsite_offset);
	__atomic_store_n(&s->shut_ns, sockshim_clock_ns(CLOCK_MONOTONIC), __ATOMIC_RELEASE);
}
