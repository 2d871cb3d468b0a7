/* Unit tests of shim/ledger.c, the shim's reference ledger, run on a
 * private mapping (private_seg.h): where entries are placed (hash, linear
 * probing), what a full probe window does (counted, then the entry
 * released longest ago is reclaimed), holder and reference counts through
 * hold, reserve and release (the entry's own slots, then the pool, then
 * counted overflow), history steps, EOF, the ends of a process (close
 * records into the mapping's ring), and concurrent writers: threads that
 * claim the same inodes, and threads that hold and release one socket,
 * with exact final counts. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "emit.h"
#include "ledger.h"
#include "private_seg.h"
#include "ring_reader.h"
#include "vfork.h"

#define RING (1u << SOCKSHIM_RING_MIN_SHIFT)
#define LEDGER (1u << SOCKSHIM_LEDGER_MIN_SHIFT)
#define BIG_LEDGER 4096u
#define THREADS 4
#define OPS 10000

/* emit.c asks; the tests never run in a vfork child. */
__thread int shim_vfork_pending; /* 0: shim_in_vfork_child() is false */

int shim_vfork_child_check(void)
{
	return 0;
}

static int setup_with(void **state, uint32_t ledger)
{
	struct seg_map *m = calloc(1, sizeof(*m));

	if (!m || private_seg_map(m, RING, ledger)) {
		free(m);
		return -1;
	}
	*state = m;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, LEDGER);
}

static int setup_big(void **state)
{
	return setup_with(state, BIG_LEDGER);
}

static int teardown(void **state)
{
	private_seg_unmap(*state);
	free(*state);
	return 0;
}

static struct fd_entry sock_entry(uint16_t born)
{
	struct fd_entry e;

	memset(&e, 0, sizeof(e));
	e.family = 2; /* AF_INET */
	e.socktype = 1;
	e.born = born;
	e.born_ns = 12345;
	e.local_ip[0] = 127;
	e.local_ip[3] = 1;
	e.local_port = 8080;
	e.flags = SOCKSHIM_FLAG_LOCAL_KNOWN;
	return e;
}

static struct sockshim_sock *at(struct seg_map *m, uint32_t ref)
{
	assert_true(ref >= 1 && ref <= m->ledger_capacity);
	return &seg_ledger(m)[ref - 1];
}

/* The index key of entry S of M (its inode word and release time). */
#define KEY(m, s) (&seg_ledger_keys(m)[(s) - seg_ledger(m)])

static uint32_t slot_of(const struct seg_map *m, uint64_t inode)
{
	return sockshim_ledger_hash(inode) & (m->ledger_capacity - 1);
}

/* N inodes (from FROM on) whose hash slot is SLOT. */
static void same_slot(const struct seg_map *m, uint32_t slot, uint64_t from, uint64_t *out,
		      unsigned n)
{
	uint64_t ino;
	unsigned k = 0;

	for (ino = from; k < n; ino++)
		if (slot_of(m, ino) == slot)
			out[k++] = ino;
}

static uint32_t get(struct seg_map *m, uint64_t inode, int *created)
{
	struct fd_entry e = sock_entry(SOCKSHIM_BORN_ACCEPT);

	return ledger_get(m, inode, &e, 100, 7, created);
}

/* An entry sits at its hash slot, described from the fd entry; asked
 * again it is found, not created. */
static void test_get_places_at_hash(void **state)
{
	struct seg_map *m = *state;
	struct sockshim_sock *s;
	uint32_t ref;
	int created;

	ref = get(m, 4242, &created);
	assert_int_equal(ref, slot_of(m, 4242) + 1);
	assert_true(created);
	s = at(m, ref);
	assert_int_equal(KEY(m, s)->inode, 4242);
	assert_int_equal(s->born, SOCKSHIM_BORN_ACCEPT);
	assert_int_equal(s->born_pid, 100);
	assert_int_equal(s->born_fd, 7);
	assert_int_equal(s->born_ns, 12345);
	assert_int_equal(s->local_port, 8080);
	assert_int_equal(s->local_ip[0], 127);
	assert_int_equal(s->flags, SOCKSHIM_FLAG_LOCAL_KNOWN);
	assert_int_equal(s->refs, 0);
	assert_int_equal(get(m, 4242, &created), ref);
	assert_false(created);
	assert_int_equal(ledger_lookup(m, 4242), ref);
	assert_int_equal(ledger_inode(m, ref), 4242);
	assert_int_equal(ledger_lookup(m, 4243), 0);
	/* Inode 0 is "never used"; a key with the claiming bit is refused
	 * (socket inodes never have it). */
	assert_int_equal(get(m, 0, &created), 0);
	assert_false(created);
	assert_int_equal(get(m, UINT64_MAX, &created), 0);
	assert_int_equal(get(m, sockshim_inode_claiming(4244, 77), &created), 0);
	assert_false(created);
	/* An entry being filled in is no socket's yet. */
	KEY(m, at(m, ref))->inode = sockshim_inode_claiming(4242, 77);
	assert_int_equal(ledger_inode(m, ref), 0);
	assert_int_equal(ledger_lookup(m, 4242), 0);
	KEY(m, at(m, ref))->inode = 4242;
	assert_int_equal(ledger_inode(m, 0), 0);
	assert_int_equal(ledger_inode(m, m->ledger_capacity + 1), 0);
}

/* A claimer of 4242's entry, preempted for 30 ms mid-fill (six of
 * claim_wait's looks at it), then done: it fills born_pid 55. */
struct slow_claimer {
	struct seg_map *m;
	int claimed;
};

static void *claim_slowly(void *arg)
{
	struct slow_claimer *c = arg;
	struct sockshim_ledger_key *key = &seg_ledger_keys(c->m)[slot_of(c->m, 4242)];
	uint64_t free_word = 0;
	struct timespec ts = {0, 30 * 1000000L};

	if (!__atomic_compare_exchange_n(&key->inode, &free_word,
					 sockshim_inode_claiming(4242, gettid()), 0,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return NULL;
	__atomic_store_n(&c->claimed, 1, __ATOMIC_RELEASE);
	nanosleep(&ts, NULL);
	seg_ledger(c->m)[key - seg_ledger_keys(c->m)].born_pid = 55;
	__atomic_store_n(&key->inode, 4242, __ATOMIC_RELEASE);
	return NULL;
}

/* A second claimer of a socket waits for a claimer that is alive but
 * slow, however long it is preempted (within CLAIM_LIVE_WAIT_NS), and
 * gets its entry: one socket, one entry, nothing counted as lost. A
 * claimer that is dead is given up on: the socket is counted as not
 * recorded, and as a stalled claim. */
static void test_get_waits_for_a_live_claimer(void **state)
{
	static struct slow_claimer c; /* static: outlives a failed assertion */
	struct seg_map *m = *state;
	pthread_t thread;
	pid_t dead;
	int created, status;

	c.m = m;
	assert_int_equal(pthread_create(&thread, NULL, claim_slowly, &c), 0);
	while (!__atomic_load_n(&c.claimed, __ATOMIC_ACQUIRE))
		sched_yield();
	assert_int_equal(get(m, 4242, &created), slot_of(m, 4242) + 1);
	assert_false(created);
	assert_int_equal(at(m, slot_of(m, 4242) + 1)->born_pid, 55);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_int_equal(seg_header(m)->claims_stalled, 0);
	assert_int_equal(seg_header(m)->ledger_full, 0);

	dead = fork();
	assert_true(dead >= 0);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, &status, 0), dead);
	KEY(m, at(m, slot_of(m, 4243) + 1))->inode = sockshim_inode_claiming(4243, dead);
	assert_int_equal(get(m, 4243, &created), 0);
	assert_false(created);
	assert_int_equal(seg_header(m)->claims_stalled, 1);
	assert_int_equal(seg_header(m)->ledger_full, 1);
}

/* A socket inode wider than 32 bits (sockfs numbers never are) is no
 * key: not recorded, and counted so. */
static void test_wide_inode_counted(void **state)
{
	struct seg_map *m = *state;
	int created;

	assert_int_equal(get(m, UINT64_C(1) << 32, &created), 0);
	assert_false(created);
	assert_int_equal(seg_header(m)->ledger_full, 1);
	assert_int_equal(get(m, 0, &created), 0);
	assert_int_equal(seg_header(m)->ledger_full, 1);
}

/* Sockets of one hash slot take the slots after it, in order; each is
 * found where it went. */
static void test_collisions_probe(void **state)
{
	struct seg_map *m = *state;
	uint64_t ino[5];
	uint32_t slot = 17;
	unsigned i;
	int created;

	same_slot(m, slot, 1, ino, 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(get(m, ino[i], &created), slot + i + 1);
	for (i = 0; i < 5; i++)
		assert_int_equal(ledger_lookup(m, ino[i]), slot + i + 1);
}

/* The probe window wraps at the end of the table. */
static void test_probe_wraps(void **state)
{
	struct seg_map *m = *state;
	uint32_t last = m->ledger_capacity - 1;
	uint64_t ino[3];
	int created;

	same_slot(m, last, 1, ino, 3);
	assert_int_equal(get(m, ino[0], &created), last + 1);
	assert_int_equal(get(m, ino[1], &created), 1);
	assert_int_equal(get(m, ino[2], &created), 2);
	assert_int_equal(ledger_lookup(m, ino[2]), 2);
}

/* A lookup reads the ledger's index alone, never the entries (21 cache
 * lines each): with the entries of a whole probe window unreadable, a
 * socket in it is found and one not in it is not, without a fault. */
static void test_lookup_reads_only_the_index(void **state)
{
	struct seg_map *m = *state;
	uint64_t ino[SOCKSHIM_LEDGER_PROBE + 1];
	uint32_t slot = 40, ref;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), from, to;
	unsigned i;
	int created, before;

	same_slot(m, slot, 1, ino, SOCKSHIM_LEDGER_PROBE + 1);
	for (i = 0; i < SOCKSHIM_LEDGER_PROBE; i++) {
		ref = get(m, ino[i], &created);
		ledger_hold(m, ref, 100, (int)i, SOCKSHIM_HOW_CREATED, 100, (int)i, 0);
		assert_int_equal(ledger_release(m, ref, 100, (int)i, &before), 0);
	}
	/* Whole pages within the window's entries; the index is elsewhere. */
	from = ((uintptr_t)at(m, slot + 1) + page - 1) & ~(page - 1);
	to = (uintptr_t)at(m, slot + SOCKSHIM_LEDGER_PROBE) & ~(page - 1);
	assert_true(to > from + 8 * page);
	assert_true((uintptr_t)seg_ledger_keys(m) >= to ||
		    (uintptr_t)(seg_ledger_keys(m) + m->ledger_capacity) <= from);
	assert_int_equal(mprotect((void *)from, to - from, PROT_NONE), 0);
	for (i = 0; i < SOCKSHIM_LEDGER_PROBE; i++)
		assert_int_equal(ledger_lookup(m, ino[i]), slot + i + 1);
	assert_int_equal(ledger_lookup(m, ino[SOCKSHIM_LEDGER_PROBE]), 0);
	assert_int_equal(ledger_inode(m, slot + 9), ino[8]);
	assert_int_equal(mprotect((void *)from, to - from, PROT_READ | PROT_WRITE), 0);
	/* The window is full of released sockets: the oldest gives its entry. */
	assert_int_equal(get(m, ino[SOCKSHIM_LEDGER_PROBE], &created), slot + 1);
	assert_true(created);
}

/* The probe window from SLOT filled with INO[0..PROBE-1], each held by
 * process 100 as fd i, in probe order. */
static void fill_window_held(struct seg_map *m, uint32_t slot, const uint64_t *ino)
{
	unsigned i;
	int created;

	for (i = 0; i < SOCKSHIM_LEDGER_PROBE; i++) {
		uint32_t ref = get(m, ino[i], &created);

		assert_int_equal(ref, slot + i + 1);
		ledger_hold(m, ref, 100, (int)i, SOCKSHIM_HOW_CREATED, 100, (int)i, 0);
	}
}

/* A window of held sockets is full: the next one is not recorded, and
 * counted. Released ones are reclaimed, the one released longest ago
 * first; a held one never is. */
static void test_full_window_and_reclaim(void **state)
{
	struct seg_map *m = *state;
	struct sockshim_header *h = seg_header(m);
	uint64_t ino[SOCKSHIM_LEDGER_PROBE + 3];
	uint32_t slot = 40, ref, first, second;
	int created, before;

	same_slot(m, slot, 1, ino, SOCKSHIM_LEDGER_PROBE + 3);
	fill_window_held(m, slot, ino);
	assert_int_equal(get(m, ino[SOCKSHIM_LEDGER_PROBE], &created), 0);
	assert_false(created);
	assert_int_equal(h->ledger_full, 1);
	assert_int_equal(h->ledger_reclaimed, 0);

	/* Released: entries 5, then 3. */
	first = slot + 5 + 1;
	second = slot + 3 + 1;
	assert_int_equal(ledger_release(m, first, 100, 5, &before), 0);
	usleep(1000); /* released_ns must differ */
	assert_int_equal(ledger_release(m, second, 100, 3, &before), 0);
	assert_true(KEY(m, at(m, first))->released_ns < KEY(m, at(m, second))->released_ns);

	ref = get(m, ino[SOCKSHIM_LEDGER_PROBE], &created);
	assert_int_equal(ref, first);
	assert_true(created);
	assert_int_equal(h->ledger_reclaimed, 1);
	assert_int_equal(ledger_lookup(m, ino[5]), 0); /* its history went */
	assert_int_equal(KEY(m, at(m, ref))->released_ns, 0);
	assert_int_equal(at(m, ref)->refs, 0);
	assert_int_equal(at(m, ref)->holders[0].state, SOCKSHIM_HOLDER_FREE);

	ref = get(m, ino[SOCKSHIM_LEDGER_PROBE + 1], &created);
	assert_int_equal(ref, second);
	assert_int_equal(h->ledger_reclaimed, 2);
	/* Nothing released is left: full again. */
	assert_int_equal(get(m, ino[SOCKSHIM_LEDGER_PROBE + 2], &created), 0);
	assert_int_equal(h->ledger_full, 2);
}

/* The entry released longest ago, held again while its release time
 * still shows (a hold between a release's count and its time): the
 * first pass picks it by the keys, its count says no, and the careful
 * look takes the next one released; the held socket keeps its entry. */
static void test_reclaim_passes_over_a_held_entry(void **state)
{
	struct seg_map *m = *state;
	struct sockshim_header *h = seg_header(m);
	uint64_t ino[SOCKSHIM_LEDGER_PROBE + 1];
	uint32_t slot = 200, ref, stale, next;
	int created, before;

	same_slot(m, slot, 1, ino, SOCKSHIM_LEDGER_PROBE + 1);
	fill_window_held(m, slot, ino);
	stale = slot + 7 + 1;
	next = slot + 9 + 1;
	assert_int_equal(ledger_release(m, stale, 100, 7, &before), 0);
	usleep(1000);
	assert_int_equal(ledger_release(m, next, 100, 9, &before), 0);
	at(m, stale)->refs = 1; /* held again; its release time not yet cleared */
	assert_true(KEY(m, at(m, stale))->released_ns != 0);

	ref = get(m, ino[SOCKSHIM_LEDGER_PROBE], &created);
	assert_int_equal(ref, next);
	assert_true(created);
	assert_int_equal(h->ledger_reclaimed, 1);
	assert_int_equal(ledger_lookup(m, ino[7]), stale);
	assert_int_equal(ledger_lookup(m, ino[9]), 0);
	assert_int_equal(at(m, stale)->refs, 1);
}

/* A reclaimed entry keeps nothing of its old socket where a reader or a
 * lookup would take it for the new one's: holders (one left half-written
 * by a killed process too), shutdown, EOF, counts, the module path; its
 * history goes on from the old one's end (steps_base), and only the
 * cache lines a connection writes anyway are cleared: the steps' slots,
 * the holders no claim took and the shutdown's details are left as
 * they were. */
static void test_reclaim_clears_what_the_old_socket_left(void **state)
{
	struct seg_map *m = *state;
	uint64_t ino[SOCKSHIM_LEDGER_PROBE + 1];
	uint32_t slot = 120, ref, old;
	struct sockshim_sock *s;
	int created, before;
	unsigned i;

	same_slot(m, slot, 1, ino, SOCKSHIM_LEDGER_PROBE + 1);
	fill_window_held(m, slot, ino);
	old = slot + 4 + 1;
	s = at(m, old);
	ledger_hold(m, old, 101, 9, SOCKSHIM_HOW_FORK, 100, 4, 0);
	ledger_hold(m, old, 102, 9, SOCKSHIM_HOW_FORK, 100, 4, 0);
	for (i = 0; i < 5; i++)
		ledger_step(m, old, SOCKSHIM_STEP_DUP, 100, 4, (int)i, 0);
	ledger_shutdown(m, old, 101, 9, SHUT_WR, 0x1234);
	ledger_eof(m, old, 100, 4, 0);
	memset(s->callsite_module, 'x', sizeof(s->callsite_module) - 1);
	assert_int_equal(s->holders_used, 7);
	assert_int_equal(ledger_release(m, old, 100, 4, &before), 2);
	assert_int_equal(ledger_release(m, old, 101, 9, &before), 1);
	/* 102's holder stays half-written (its process killed between its
	 * claim and its publication); its reference goes. */
	s->holders[2].state = SOCKSHIM_HOLDER_CLAIMED;
	ledger_reserve(m, old, -1);
	assert_true(KEY(m, s)->released_ns != 0);
	assert_int_equal(s->steps_next, 6); /* five dups and the EOF */

	ref = get(m, ino[SOCKSHIM_LEDGER_PROBE], &created);
	assert_int_equal(ref, old);
	assert_true(created);
	for (i = 0; i < SOCKSHIM_HOLDERS; i++)
		assert_int_equal(s->holders[i].state, SOCKSHIM_HOLDER_FREE);
	assert_int_equal(s->holders_used, 0);
	assert_int_equal(s->steps_base, 6);
	assert_int_equal(s->steps_next, 6);
	assert_int_equal(s->shut_ns, 0);
	assert_int_equal(s->eof_ns, 0);
	assert_int_equal(s->noeffect_closes, 0);
	assert_int_equal(s->pooled, 0);
	assert_int_equal(s->refs, 0);
	assert_int_equal(s->callsite_module[0], 0);
	assert_int_equal(s->born, SOCKSHIM_BORN_ACCEPT);
	assert_int_equal(s->born_ns, 12345);
	/* Left as they were: what seq, shut_ns and the NUL tell apart. */
	assert_int_equal(s->steps[4].seq, 5);
	assert_int_equal(s->shut_callsite, 0x1234);
	assert_int_equal(s->holders[1].pid, 101);
	assert_int_equal(s->callsite_module[1], 'x');

	/* The new socket's first holder and step. */
	ledger_hold(m, ref, 200, 3, SOCKSHIM_HOW_CREATED, 200, 3, 0);
	ledger_step(m, ref, SOCKSHIM_STEP_BORN, 200, 3, SOCKSHIM_BORN_ACCEPT, 0);
	assert_int_equal(s->holders[0].pid, 200);
	assert_int_equal(s->holders_used, 1);
	assert_int_equal(s->steps[6].seq, 7);
	assert_int_equal(s->steps_next, 7);
	assert_int_equal(s->refs, 1);

	/* An index near the top: the next claim starts again from 0. */
	assert_int_equal(ledger_release(m, ref, 200, 3, &before), 0);
	s->steps_next = SOCKSHIM_STEPS_RESTART + 3;
	assert_int_equal(get(m, ino[4], &created), ref);
	assert_true(created);
	assert_int_equal(s->steps_base, 0);
	assert_int_equal(s->steps_next, 0);
	ledger_step(m, ref, SOCKSHIM_STEP_BORN, 200, 3, SOCKSHIM_BORN_ACCEPT, 0);
	assert_int_equal(s->steps[0].seq, 1);
}

/* A connected TCP socket's entry (accepted from 10.0.0.1:PEER_PORT on
 * 127.0.0.1:8080). */
static struct fd_entry conn_entry(uint16_t peer_port, uint64_t born_ns)
{
	struct fd_entry e = sock_entry(SOCKSHIM_BORN_ACCEPT);

	e.peer_ip[0] = 10;
	e.peer_ip[3] = 1;
	e.peer_port = peer_port;
	e.flags |= SOCKSHIM_FLAG_PEER_KNOWN;
	e.born_ns = born_ns;
	return e;
}

/* sockfs's inode numbers wrap: an entry released long ago may carry the
 * inode of a socket created now. When the addresses prove it another
 * connection, the entry is taken over for the new socket (as a released
 * one is reclaimed), not found as its own; the same connection asked
 * again, a held entry, and entries whose addresses prove nothing are
 * found, as before. */
static void test_previous_socket_taken_over(void **state)
{
	struct seg_map *m = *state;
	struct sockshim_header *h = seg_header(m);
	struct fd_entry old = conn_entry(5000, 111), now = conn_entry(5001, 222);
	struct sockshim_sock *s;
	uint32_t ref;
	int created, before;

	ref = ledger_get(m, 777, &old, 100, 7, &created);
	assert_true(created);
	s = at(m, ref);
	ledger_hold(m, ref, 100, 7, SOCKSHIM_HOW_CREATED, 100, 7, 0);
	ledger_eof(m, ref, 100, 7, 0);
	/* Held: whatever the addresses say, a live holder's entry stays. */
	assert_false(ledger_is_previous(m, ref, &now));
	assert_int_equal(ledger_get(m, 777, &now, 200, 3, &created), ref);
	assert_false(created);
	assert_int_equal(s->peer_port, 5000);
	assert_int_equal(ledger_release(m, ref, 100, 7, &before), 0);
	assert_true(KEY(m, s)->released_ns != 0);

	/* The same connection (a receiver of it, a racing adopter): found. */
	assert_false(ledger_is_previous(m, ref, &old));
	assert_int_equal(ledger_get(m, 777, &old, 200, 3, &created), ref);
	assert_false(created);

	/* Another connection under the same inode: taken over. */
	assert_true(ledger_is_previous(m, ref, &now));
	assert_int_equal(ledger_get(m, 777, &now, 200, 3, &created), ref);
	assert_true(created);
	assert_int_equal(h->ledger_reclaimed, 1);
	assert_int_equal(h->ledger_full, 0);
	assert_int_equal(s->peer_port, 5001);
	assert_int_equal(s->born_ns, 222);
	assert_int_equal(s->born_pid, 200);
	assert_int_equal(s->eof_ns, 0);
	assert_int_equal(s->refs, 0);
	assert_int_equal(s->holders_used, 0);
	assert_int_equal(KEY(m, s)->released_ns, 0);
	assert_int_equal(KEY(m, s)->inode, 777);
	assert_int_equal(ledger_lookup(m, 777), ref);
	/* Asked again, it is the new socket's. */
	assert_int_equal(ledger_get(m, 777, &now, 200, 3, &created), ref);
	assert_false(created);
}

/* What proves another socket: a different family or type (known to
 * both), or, connected TCP, a different peer port or address or local
 * port. What does not: an entry or a socket without a peer (a socket
 * before connect, a listener), of the same family and type; a family or
 * type one side does not know; a local address one side does not know. */
static void test_previous_socket_needs_proof(void **state)
{
	struct seg_map *m = *state;
	struct fd_entry old = conn_entry(5000, 111), e;
	uint32_t ref;
	int created, before;

	ref = ledger_get(m, 888, &old, 100, 7, &created);
	assert_int_equal(ledger_release(m, ref, 100, 7, &before), -1); /* never held */
	ledger_hold(m, ref, 100, 7, SOCKSHIM_HOW_CREATED, 100, 7, 0);
	assert_int_equal(ledger_release(m, ref, 100, 7, &before), 0);

	e = old;
	e.peer_ip[3] = 2;
	assert_true(ledger_is_previous(m, ref, &e));
	e = old;
	e.local_port = 8081;
	assert_true(ledger_is_previous(m, ref, &e));
	e = old;
	e.flags &= ~(uint64_t)SOCKSHIM_FLAG_LOCAL_KNOWN;
	e.local_port = 8081; /* not known: proves nothing */
	assert_false(ledger_is_previous(m, ref, &e));
	e = conn_entry(5001, 0);
	e.flags &= ~(uint64_t)SOCKSHIM_FLAG_PEER_KNOWN;
	assert_false(ledger_is_previous(m, ref, &e));
	/* A socket before connect (socket(), then bind or connect): its
	 * family and type are all it has to tell. */
	memset(&e, 0, sizeof(e));
	e.family = AF_INET;
	e.socktype = SOCK_STREAM;
	assert_false(ledger_is_previous(m, ref, &e));
	e.socktype = SOCK_DGRAM;
	assert_true(ledger_is_previous(m, ref, &e));
	e.family = AF_INET6;
	e.socktype = SOCK_STREAM;
	assert_true(ledger_is_previous(m, ref, &e));
	e.family = AF_UNIX;
	assert_true(ledger_is_previous(m, ref, &e));
	e.socktype = 0; /* not known */
	assert_false(ledger_is_previous(m, ref, &e));
	/* An entry that never knew its peer (created at bind, say). */
	at(m, ref)->flags &= (uint16_t)~SOCKSHIM_FLAG_PEER_KNOWN;
	assert_false(ledger_is_previous(m, ref, &old));
	e = conn_entry(5001, 0);
	assert_false(ledger_is_previous(m, ref, &e));
	/* An entry whose family was never known. */
	e.family = AF_INET6;
	at(m, ref)->family = 0;
	assert_false(ledger_is_previous(m, ref, &e));
	at(m, ref)->family = AF_INET;
	e = conn_entry(5001, 0);
	assert_int_equal(ledger_get(m, 888, &e, 200, 3, &created), ref);
	assert_false(created);
	assert_false(ledger_is_previous(m, 0, &e));
}

/* References and holders through hold, hold again, release. */
static void test_hold_release_counts(void **state)
{
	struct seg_map *m = *state;
	struct sockshim_sock *s;
	uint32_t ref;
	int created, before, left;

	ref = get(m, 9001, &created);
	s = at(m, ref);
	ledger_hold(m, ref, 100, 7, SOCKSHIM_HOW_CREATED, 100, 7, 0);
	ledger_hold(m, ref, 100, 8, SOCKSHIM_HOW_DUP, 100, 7, 0);
	ledger_hold(m, ref, 200, 7, SOCKSHIM_HOW_FORK, 100, 7, 0);
	assert_int_equal(s->refs, 3);
	assert_int_equal(s->holders[1].state, SOCKSHIM_HOLDER_LIVE);
	assert_int_equal(s->holders[1].pid, 100);
	assert_int_equal(s->holders[1].fd, 8);
	assert_int_equal(s->holders[1].how, SOCKSHIM_HOW_DUP);
	assert_int_equal(s->holders[1].from_fd, 7);
	assert_int_equal(s->holders[2].from_pid, 100);
	assert_true(ledger_holds(m, ref, 200, 7));
	assert_false(ledger_holds(m, ref, 200, 8));
	/* Seen again (exec): how it holds it changes, the count does not. */
	ledger_hold(m, ref, 200, 7, SOCKSHIM_HOW_EXEC, 200, 7, 0);
	assert_int_equal(s->refs, 3);
	assert_int_equal(s->holders[2].how, SOCKSHIM_HOW_EXEC);

	left = ledger_release(m, ref, 100, 7, &before);
	assert_int_equal(before, 3);
	assert_int_equal(left, 2);
	assert_int_equal(s->noeffect_closes, 1);
	assert_int_equal(s->holders[0].state, SOCKSHIM_HOLDER_FREE);
	assert_false(ledger_holds(m, ref, 100, 7));
	assert_int_equal(KEY(m, s)->released_ns, 0);
	assert_int_equal(ledger_release(m, ref, 100, 8, &before), 1);
	assert_int_equal(ledger_release(m, ref, 200, 7, &before), 0);
	assert_int_equal(before, 1);
	assert_int_equal(s->noeffect_closes, 2);
	assert_true(KEY(m, s)->released_ns != 0);
	/* A holder never seen, when every reference is named, drops none:
	 * the count never goes negative, nor takes a named holder's. */
	assert_int_equal(ledger_release(m, ref, 300, 3, &before), -1);
	assert_int_equal(before, -1);
	assert_int_equal(s->refs, 0);
	/* A freed slot is taken again. */
	ledger_hold(m, ref, 300, 4, SOCKSHIM_HOW_SCM, 100, -1, 0);
	assert_int_equal(s->holders[0].pid, 300);
	assert_int_equal(s->refs, 1);
	assert_int_equal(KEY(m, s)->released_ns, 0);
	/* No entry: nothing happens. */
	assert_int_equal(ledger_release(m, 0, 300, 4, &before), -1);
	assert_int_equal(before, -1);
}

/* A fork's reservation counts the child's reference before it holds. */
static void test_reserve(void **state)
{
	struct seg_map *m = *state;
	struct sockshim_sock *s;
	uint32_t ref;
	int created, before;

	ref = get(m, 9002, &created);
	s = at(m, ref);
	ledger_hold(m, ref, 100, 7, SOCKSHIM_HOW_CREATED, 100, 7, 0);
	ledger_reserve(m, ref, 1);
	assert_int_equal(s->refs, 2);
	/* The parent closes before the child runs: not the last reference. */
	assert_int_equal(ledger_release(m, ref, 100, 7, &before), 1);
	assert_int_equal(KEY(m, s)->released_ns, 0);
	ledger_hold(m, ref, 101, 7, SOCKSHIM_HOW_FORK, 100, 7, 1);
	assert_int_equal(s->refs, 1);
	assert_true(ledger_holds(m, ref, 101, 7));
	/* A reservation for a holder already there is given back. */
	ledger_reserve(m, ref, 1);
	ledger_hold(m, ref, 101, 7, SOCKSHIM_HOW_FORK, 100, 7, 1);
	assert_int_equal(s->refs, 1);
	/* One given back unused, to zero: released. */
	assert_int_equal(ledger_release(m, ref, 101, 7, &before), 0);
	ledger_reserve(m, ref, 1);
	assert_int_equal(KEY(m, s)->released_ns, 0);
	ledger_reserve(m, ref, -1);
	assert_int_equal(s->refs, 0);
	assert_true(KEY(m, s)->released_ns != 0);
}

/* Holders beyond the entry's slots go to the pool, and are found, and
 * released, there; without a pool they are counted. */
static void test_pool_and_overflow(void **state)
{
	struct seg_map *m = *state, nopool;
	struct sockshim_sock *s;
	uint32_t ref;
	unsigned i, in_pool = 0;
	int created, before;

	ref = get(m, 9003, &created);
	s = at(m, ref);
	for (i = 0; i < SOCKSHIM_HOLDERS + 3; i++)
		ledger_hold(m, ref, 500 + (int)i, 3, SOCKSHIM_HOW_FORK, 100, 3, 0);
	assert_int_equal(s->refs, SOCKSHIM_HOLDERS + 3);
	assert_int_equal(s->pooled, 3);
	for (i = 0; i < m->ledger_capacity; i++)
		if (seg_pool(m)[i].h.state == SOCKSHIM_HOLDER_LIVE && seg_pool(m)[i].ref == ref)
			in_pool++;
	assert_int_equal(in_pool, 3);
	assert_true(ledger_holds(m, ref, 500 + SOCKSHIM_HOLDERS + 1, 3));
	/* Seen again in the pool: not counted twice. */
	ledger_hold(m, ref, 500 + SOCKSHIM_HOLDERS + 1, 3, SOCKSHIM_HOW_EXEC, 100, 3, 0);
	assert_int_equal(s->refs, SOCKSHIM_HOLDERS + 3);
	assert_int_equal(ledger_release(m, ref, 500 + SOCKSHIM_HOLDERS + 1, 3, &before),
			 SOCKSHIM_HOLDERS + 2);
	assert_int_equal(s->pooled, 2);
	assert_false(ledger_holds(m, ref, 500 + SOCKSHIM_HOLDERS + 1, 3));
	assert_int_equal(s->holder_overflow, 0);

	/* A segment without a pool: the reference is counted, its holder
	 * cannot be named. */
	nopool = *m;
	nopool.pool_offset = 0;
	ref = get(m, 9004, &created);
	s = at(m, ref);
	for (i = 0; i < SOCKSHIM_HOLDERS + 2; i++)
		ledger_hold(&nopool, ref, 600 + (int)i, 3, SOCKSHIM_HOW_FORK, 100, 3, 0);
	assert_int_equal(s->refs, SOCKSHIM_HOLDERS + 2);
	assert_int_equal(s->pooled, 0);
	assert_int_equal(s->holder_overflow, 2);
	assert_int_equal(seg_header(m)->holder_overflow, 2);
	assert_false(ledger_holds(&nopool, ref, 600 + SOCKSHIM_HOLDERS, 3));
	/* A holder that did not fit drops one of the references no slot
	 * names, and only those: a third finds none left to drop. */
	assert_int_equal(ledger_release(&nopool, ref, 600 + SOCKSHIM_HOLDERS, 3, &before),
			 SOCKSHIM_HOLDERS + 1);
	assert_int_equal(ledger_release(&nopool, ref, 600 + SOCKSHIM_HOLDERS + 1, 3, &before),
			 SOCKSHIM_HOLDERS);
	assert_int_equal(ledger_release(&nopool, ref, 999, 3, &before), -1);
	assert_int_equal(before, -1);
	assert_int_equal(s->refs, SOCKSHIM_HOLDERS);
	assert_int_equal(s->holder_overflow, 0); /* the count is of those there now */

	/* One that did not fit is named once a slot frees (a reader proved
	 * which it is): refs stays, the count goes down. */
	ledger_hold(&nopool, ref, 700, 3, SOCKSHIM_HOW_FORK, 100, 3, 0);
	assert_int_equal(s->holder_overflow, 1);
	assert_int_equal(ledger_name_unnamed(&nopool, ref, 700, 3), 0); /* no room */
	assert_int_equal(s->holder_overflow, 1);
	assert_int_equal(ledger_release(&nopool, ref, 600, 3, &before), SOCKSHIM_HOLDERS);
	assert_int_equal(ledger_name_unnamed(&nopool, ref, 700, 3), 1);
	assert_int_equal(s->holder_overflow, 0);
	assert_int_equal(s->refs, SOCKSHIM_HOLDERS);
	assert_true(ledger_holds(&nopool, ref, 700, 3));
	assert_int_equal(ledger_name_unnamed(&nopool, ref, 700, 3), 0); /* named already */
	assert_int_equal(ledger_name_unnamed(&nopool, ref, 701, 3), 0); /* none unnamed */
}

/* History steps: seq = index + 1, the process name, wrapping around. */
static void test_steps(void **state)
{
	struct seg_map *m = *state;
	struct sockshim_sock *s;
	uint32_t ref;
	unsigned i;
	int created;

	assert_int_equal(prctl(PR_SET_NAME, "stepper", 0, 0, 0), 0);
	ledger_set_comm();
	ref = get(m, 9005, &created);
	s = at(m, ref);
	ledger_step(m, ref, SOCKSHIM_STEP_BORN, 100, 7, SOCKSHIM_BORN_ACCEPT, 0);
	ledger_step(m, ref, SOCKSHIM_STEP_CLOSE, 100, 7, 2, SOCKSHIM_CLOSE_VIA_DUP2);
	assert_int_equal(s->steps_next, 2);
	assert_int_equal(s->steps[0].seq, 1);
	assert_int_equal(s->steps[0].op, SOCKSHIM_STEP_BORN);
	assert_int_equal(s->steps[0].arg, SOCKSHIM_BORN_ACCEPT);
	assert_memory_equal(s->steps[0].comm, "stepper", 8);
	assert_int_equal(s->steps[1].seq, 2);
	assert_int_equal(s->steps[1].via, SOCKSHIM_CLOSE_VIA_DUP2);
	assert_int_equal(s->steps[1].arg, 2);
	assert_true(s->steps[1].ts_ns >= s->steps[0].ts_ns);
	for (i = 2; i < SOCKSHIM_STEPS + 3; i++)
		ledger_step(m, ref, SOCKSHIM_STEP_DUP, 100, 7, (int)i, 0);
	assert_int_equal(s->steps_next, SOCKSHIM_STEPS + 3);
	assert_int_equal(s->steps[0].seq, SOCKSHIM_STEPS + 1);
	assert_int_equal(s->steps[2].seq, SOCKSHIM_STEPS + 3);
	assert_int_equal(s->steps[2].arg, SOCKSHIM_STEPS + 2);
	assert_int_equal(s->steps[3].seq, 4); /* not overwritten yet */
}

/* The first EOF is remembered; every one is a step, at the time given
 * (the caller's one clock read, also its record's), or the clock's. A read
 * stamps the entry. connect() turns a socket()-born entry into a CONNECT
 * one. */
static void test_eof_read_describe(void **state)
{
	struct seg_map *m = *state;
	struct fd_entry e = sock_entry(SOCKSHIM_BORN_SOCKET);
	struct sockshim_record r;
	struct sockshim_sock *s;
	uint32_t ref;
	int created;

	ref = ledger_get(m, 9006, &e, 100, 5, &created);
	s = at(m, ref);
	ledger_eof(m, ref, 100, 5, 777000111);
	ledger_eof(m, ref, 200, 6, 0);
	assert_int_equal(s->eof_ns, 777000111);
	assert_int_equal(s->eof_pid, 100);
	assert_int_equal(s->eof_fd, 5);
	assert_int_equal(s->steps_next, 2);
	assert_int_equal(s->steps[0].op, SOCKSHIM_STEP_EOF);
	assert_int_equal(s->steps[0].ts_ns, 777000111);
	assert_int_equal(s->steps[1].pid, 200);
	assert_true(s->steps[1].ts_ns > 777000111); /* the clock's: since boot, far later */
	assert_int_equal(s->last_read_ns, 0);
	ledger_read(m, ref);
	assert_true(s->last_read_ns != 0);

	e.born = SOCKSHIM_BORN_CONNECT;
	e.peer_port = 443;
	e.flags |= SOCKSHIM_FLAG_PEER_KNOWN;
	ledger_describe(m, ref, &e);
	assert_int_equal(s->born, SOCKSHIM_BORN_CONNECT);
	assert_int_equal(s->peer_port, 443);
	assert_int_equal(s->flags, SOCKSHIM_FLAG_LOCAL_KNOWN | SOCKSHIM_FLAG_PEER_KNOWN);
	memset(&r, 0, sizeof(r));
	ledger_describe_record(m, ref, &r);
	assert_int_equal(r.inode, 9006);
	assert_int_equal(r.peer_port, 443);
	assert_int_equal(r.flags, SOCKSHIM_FLAG_LOCAL_KNOWN | SOCKSHIM_FLAG_PEER_KNOWN);
}

/* The next record in M's ring (from READER). */
static void next_record(struct ring_reader *rd, struct sockshim_record *out)
{
	uint64_t lost = 0;
	char kind = 0;

	assert_int_equal(ring_reader_next(rd, out, &lost, &kind, INT64_MAX), RING_RECORD);
}

/* The next record is a close of PID's FD (socket INODE) via VIA, the
 * references going from BEFORE to AFTER. */
static void expect_close(struct ring_reader *rd, int pid, int fd, uint64_t inode, int via,
			 int before, int after)
{
	struct sockshim_record r;

	next_record(rd, &r);
	assert_int_equal(r.type, SOCKSHIM_EV_CLOSE);
	assert_int_equal(r.pid, pid);
	assert_int_equal(r.fd, fd);
	assert_int_equal(r.inode, inode);
	assert_int_equal(r.detail.close.via, via);
	assert_int_equal(r.detail.close.refs_before, before);
	assert_int_equal(r.detail.close.refs_after, after);
}

/* A process's end: its holds go, each with a step and a close record
 * in the mapping's own ring; other processes' holds stay. */
static void test_forget(void **state)
{
	struct seg_map *m = *state;
	struct sockshim_record r;
	struct ring_reader rd;
	uint32_t a, b;
	uint64_t lost = 0;
	unsigned i;
	char kind;
	int created;

	a = get(m, 9007, &created);
	b = get(m, 9008, &created);
	ledger_hold(m, a, 77, 4, SOCKSHIM_HOW_CREATED, 77, 4, 0);
	ledger_hold(m, a, 78, 4, SOCKSHIM_HOW_FORK, 77, 4, 0);
	ledger_hold(m, b, 77, 5, SOCKSHIM_HOW_CREATED, 77, 5, 0);
	/* b's slots full of others: 77's second hold of b is pooled. */
	for (i = 0; i < SOCKSHIM_HOLDERS - 1; i++)
		ledger_hold(m, b, 900 + (int)i, 5, SOCKSHIM_HOW_FORK, 77, 5, 0);
	ledger_hold(m, b, 77, 6, SOCKSHIM_HOW_DUP, 77, 5, 0);
	assert_int_equal(at(m, b)->pooled, 1);

	ring_reader_init(&rd, m, 1);
	ledger_forget_one(m, a, 77, 4, SOCKSHIM_CLOSE_VIA_EXIT);
	expect_close(&rd, 77, 4, 9007, SOCKSHIM_CLOSE_VIA_EXIT, 2, 1);
	assert_int_equal(at(m, a)->steps[0].op, SOCKSHIM_STEP_EXIT);
	/* The same hold again (released already, as a reader's reclaim
	 * does): the reference left is 78's, named; no record. */
	ledger_forget_one(m, a, 77, 4, SOCKSHIM_CLOSE_VIA_EXIT);
	assert_int_equal(at(m, a)->refs, 1);

	ledger_forget_pid(m, 77, SOCKSHIM_CLOSE_VIA_DEATH);
	assert_false(ledger_holds(m, b, 77, 5));
	assert_false(ledger_holds(m, b, 77, 6));
	assert_true(ledger_holds(m, b, 900, 5));
	assert_true(ledger_holds(m, a, 78, 4));
	assert_int_equal(at(m, b)->refs, SOCKSHIM_HOLDERS - 1);
	assert_int_equal(at(m, b)->pooled, 0);
	for (i = 0; i < 2; i++) {
		next_record(&rd, &r);
		assert_int_equal(r.pid, 77);
		assert_int_equal(r.inode, 9008);
		assert_int_equal(r.detail.close.via, SOCKSHIM_CLOSE_VIA_DEATH);
	}
	assert_int_equal(ring_reader_next(&rd, &r, &lost, &kind, INT64_MAX), RING_EMPTY);
}

/* A reader's reclaim: the entry claimed while it releases, each holder
 * once and only the one judged (its since_ns), with a close record via
 * gone naming the socket; the unnamed references only once no holder is
 * named; then the entry is its socket's again. */
static void test_reclaim(void **state)
{
	static const char name[16] = "rawclose";
	struct seg_map *m = *state;
	struct sockshim_record r;
	struct sockshim_sock *s;
	struct ring_reader rd;
	uint64_t since;
	uint32_t ref;
	int created;

	ref = get(m, 9100, &created);
	s = at(m, ref);
	ledger_hold(m, ref, 77, 4, SOCKSHIM_HOW_CREATED, 77, 4, 0);
	ledger_hold(m, ref, 78, 5, SOCKSHIM_HOW_FORK, 77, 4, 0);
	since = s->holders[0].since_ns;
	ring_reader_init(&rd, m, 1);

	assert_int_equal(ledger_reclaim_begin(m, ref, 9101), 0);
	assert_int_equal(ledger_reclaim_begin(m, ref, 9100), 1);
	assert_int_equal(ledger_reclaim_begin(m, ref, 9100), 0); /* another reclaim has it */
	assert_int_equal(ledger_lookup(m, 9100), 0);
	assert_int_equal(ledger_reclaim_holder(m, ref, 77, 4, since + 1, name), 0);
	assert_int_equal(ledger_reclaim_holder(m, ref, 77, 4, since, name), 1);
	assert_int_equal(ledger_reclaim_holder(m, ref, 77, 4, since, name), 0);
	assert_int_equal(s->refs, 1);
	expect_close(&rd, 77, 4, 9100, SOCKSHIM_CLOSE_VIA_GONE, 2, 1);
	assert_int_equal(s->steps[0].op, SOCKSHIM_STEP_CLOSE);
	assert_int_equal(s->steps[0].via, SOCKSHIM_CLOSE_VIA_GONE);
	assert_memory_equal(s->steps[0].comm, "rawclose", 8);
	/* 78 is named: its reference is not an unnamed one. */
	assert_int_equal(ledger_reclaim_unnamed(m, ref), 0);
	assert_int_equal(ledger_reclaim_holder(m, ref, 78, 5, s->holders[1].since_ns, name), 1);
	next_record(&rd, &r);
	assert_true(KEY(m, s)->released_ns != 0);
	/* A reference no holder names (one that did not fit). */
	s->refs = 1;
	KEY(m, s)->released_ns = 0;
	assert_int_equal(ledger_reclaim_unnamed(m, ref), 1);
	assert_int_equal(s->refs, 0);
	assert_true(KEY(m, s)->released_ns != 0);
	next_record(&rd, &r);
	assert_int_equal(r.detail.close.via, SOCKSHIM_CLOSE_VIA_GONE);
	assert_int_equal(r.detail.close.refs_before, 1);
	assert_int_equal(r.detail.close.refs_after, 0);
	assert_int_equal(r.inode, 9100);
	ledger_reclaim_end(m, ref, 9100);
	assert_int_equal(ledger_lookup(m, 9100), ref);
}

/* Without a mapping every function is a no-op. */
static void test_no_session(void **state)
{
	struct seg_map none;
	struct fd_entry e = sock_entry(SOCKSHIM_BORN_SOCKET);
	struct sockshim_record r;
	int created = 1, before = 7;

	(void)state;
	memset(&none, 0, sizeof(none));
	assert_int_equal(ledger_get(&none, 5, &e, 1, 1, &created), 0);
	assert_false(created);
	assert_int_equal(ledger_lookup(&none, 5), 0);
	ledger_hold(&none, 1, 1, 1, SOCKSHIM_HOW_CREATED, 1, 1, 0);
	ledger_reserve(&none, 1, 1);
	ledger_step(&none, 1, SOCKSHIM_STEP_DUP, 1, 1, 1, 0);
	ledger_eof(&none, 1, 1, 1, 0);
	ledger_read(&none, 1);
	ledger_describe(&none, 1, &e);
	assert_int_equal(ledger_release(&none, 1, 1, 1, &before), -1);
	assert_int_equal(before, -1);
	assert_false(ledger_holds(&none, 1, 1, 1));
	assert_int_equal(ledger_inode(&none, 1), 0);
	memset(&r, 0, sizeof(r));
	ledger_describe_record(&none, 1, &r);
	assert_int_equal(r.inode, 0);
	ledger_forget_one(&none, 1, 1, 1, SOCKSHIM_CLOSE_VIA_EXIT);
	ledger_forget_pid(&none, 1, SOCKSHIM_CLOSE_VIA_EXIT);
	ledger_forget_stale(&none, 1);
}

/* Records, ledger entries and the descriptor table share one flag set:
 * every combination goes from the fd entry to a record, to the ledger
 * entry and from it to a record unchanged, the fd table's private bits
 * left behind. */
static void test_flags_one_set(void **state)
{
	struct seg_map *m = *state;
	struct fd_entry e = sock_entry(SOCKSHIM_BORN_SOCKET);
	struct sockshim_record r;
	uint32_t ref;
	uint16_t f;
	int created;

	ref = get(m, 5151, &created);
	for (f = 0; f <= SOCKSHIM_FLAGS_ALL; f++) {
		e.flags = f | FDT_EOF_SEEN | FDT_CLOEXEC | FDT_NONBLOCK | FDT_NO_LEDGER;
		record_init(&r, SOCKSHIM_EV_LISTEN, 3, 0, 0);
		record_from_entry(&r, &e);
		assert_int_equal(r.flags, f);
		/* The reset bit is setsockopt's (ledger_linger_reset): an
		 * address update neither sets nor clears it. */
		ledger_linger_reset(m, ref, !!(f & SOCKSHIM_FLAG_LINGER_RESET));
		ledger_describe(m, ref, &e);
		assert_int_equal(at(m, ref)->flags, f);
		ledger_describe(m, ref, &e);
		assert_int_equal(at(m, ref)->flags, f);
		record_init(&r, SOCKSHIM_EV_CLOSE, 3, 0, 0);
		ledger_describe_record(m, ref, &r);
		assert_int_equal(r.flags, f);
	}
}

/* SO_LINGER {on, 0} set by one holder stays through another holder's
 * address update (whose fd entry never had it), until it is cleared. */
static void test_linger_reset_sticks(void **state)
{
	struct seg_map *m = *state;
	struct fd_entry e = sock_entry(SOCKSHIM_BORN_ACCEPT);
	uint32_t ref;
	int created;

	ref = get(m, 5252, &created);
	ledger_linger_reset(m, ref, 1);
	e.flags = SOCKSHIM_FLAG_LOCAL_KNOWN | SOCKSHIM_FLAG_PEER_KNOWN;
	ledger_describe(m, ref, &e);
	assert_int_equal(at(m, ref)->flags, SOCKSHIM_FLAG_LOCAL_KNOWN | SOCKSHIM_FLAG_PEER_KNOWN |
						    SOCKSHIM_FLAG_LINGER_RESET);
	e.flags = SOCKSHIM_FLAG_LOCAL_KNOWN;
	ledger_describe(m, ref, &e);
	assert_int_equal(at(m, ref)->flags, SOCKSHIM_FLAG_LOCAL_KNOWN | SOCKSHIM_FLAG_LINGER_RESET);
	ledger_linger_reset(m, ref, 0);
	assert_int_equal(at(m, ref)->flags, SOCKSHIM_FLAG_LOCAL_KNOWN);
}

/* A shutdown remembers its process, way and the other processes holding
 * the socket then (each once, however many descriptors), not itself. */
static void test_shutdown_names_others(void **state)
{
	struct seg_map *m = *state;
	struct sockshim_sock *s;
	uint32_t ref;
	int created;

	ref = get(m, 5353, &created);
	ledger_hold(m, ref, 100, 7, SOCKSHIM_HOW_CREATED, 100, 7, 0);
	ledger_hold(m, ref, 100, 9, SOCKSHIM_HOW_DUP, 100, 7, 0);
	ledger_hold(m, ref, 200, 7, SOCKSHIM_HOW_FORK, 100, 7, 0);
	ledger_hold(m, ref, 200, 8, SOCKSHIM_HOW_DUP, 200, 7, 0);
	ledger_hold(m, ref, 300, 7, SOCKSHIM_HOW_FORK, 100, 7, 0);
	ledger_shutdown(m, ref, 100, 7, 2 /* SHUT_RDWR */, 0);
	s = at(m, ref);
	assert_true(s->shut_ns > 0);
	assert_int_equal(s->shut_pid, 100);
	assert_int_equal(s->shut_fd, 7);
	assert_int_equal(s->shut_how, 2);
	assert_int_equal(s->shut_refs, 5);
	assert_int_equal(s->shut_nothers, 2);
	assert_int_equal(s->shut_others[0], 200);
	assert_int_equal(s->shut_others[1], 300);
	assert_int_equal(s->shut_others[2], 0);
	assert_int_equal(s->shut_callsite, 0);
	/* Alone: nobody else hit. */
	ledger_release(m, ref, 200, 7, &created);
	ledger_release(m, ref, 200, 8, &created);
	ledger_release(m, ref, 300, 7, &created);
	ledger_shutdown(m, ref, 100, 9, 1 /* SHUT_WR */, 0);
	assert_int_equal(s->shut_nothers, 0);
	assert_int_equal(s->shut_others[0], 0);
	assert_int_equal(s->shut_fd, 9);
}

/* The release of an accepted connection's last reference counts its
 * lifetime, CLOSE_WAIT dwell and reset in its listener's entry, once;
 * a listener entry given to another socket since is left alone. */
static void test_release_counts_in_listener(void **state)
{
	struct seg_map *m = *state;
	struct sockshim_listener *l = &seg_listeners(m)[3];
	struct sockshim_sock *s;
	uint64_t life = 0, cw = 0;
	uint32_t ref, ref2;
	int before, created;
	unsigned i;

	l->inode = 777;
	ref = get(m, 5454, &created);
	s = at(m, ref);
	ledger_set_listener(m, ref, 4, 777);
	ledger_hold(m, ref, 100, 7, SOCKSHIM_HOW_CREATED, 100, 7, 0);
	ledger_hold(m, ref, 200, 7, SOCKSHIM_HOW_FORK, 100, 7, 0);
	ledger_eof(m, ref, 200, 7, 0);
	ledger_linger_reset(m, ref, 1);
	ledger_release(m, ref, 100, 7, &before);
	for (i = 0; i < SOCKSHIM_HIST_BUCKETS; i++)
		life += l->life_hist[i];
	assert_int_equal(life, 0); /* one reference left: not released */
	ledger_release(m, ref, 200, 7, &before);
	for (i = 0; i < SOCKSHIM_HIST_BUCKETS; i++) {
		life += l->life_hist[i];
		cw += l->closewait_hist[i];
	}
	assert_int_equal(life, 1);
	assert_int_equal(cw, 1);
	assert_int_equal(l->aborted, 1);
	/* born_ns 12345 (sock_entry): its lifetime is now - 12345. */
	assert_int_equal(l->life_hist[sockshim_hist_bucket(KEY(m, s)->released_ns - 12345)], 1);
	assert_int_equal(l->closewait_hist[sockshim_hist_bucket(KEY(m, s)->released_ns - s->eof_ns)], 1);
	assert_int_equal(s->listener, 0);
	/* Held and released again: not counted twice. */
	ledger_reserve(m, ref, 1);
	ledger_reserve(m, ref, -1);
	assert_int_equal(l->aborted, 1);
	/* A listener entry that changed hands: nothing counted there. */
	ref2 = get(m, 5455, &created);
	ledger_set_listener(m, ref2, 4, 778);
	ledger_hold(m, ref2, 100, 8, SOCKSHIM_HOW_CREATED, 100, 8, 0);
	ledger_release(m, ref2, 100, 8, &before);
	for (i = 0, life = 0; i < SOCKSHIM_HIST_BUCKETS; i++)
		life += l->life_hist[i];
	assert_int_equal(life, 1);
	/* Shut down for writing before the peer's EOF: that EOF ended
	 * FIN_WAIT2, no CLOSE_WAIT to count; its lifetime is counted. */
	ref2 = get(m, 5456, &created);
	ledger_set_listener(m, ref2, 4, 777);
	ledger_hold(m, ref2, 100, 9, SOCKSHIM_HOW_CREATED, 100, 9, 0);
	ledger_shutdown(m, ref2, 100, 9, 1 /* SHUT_WR */, 0);
	ledger_eof(m, ref2, 100, 9, 0);
	ledger_release(m, ref2, 100, 9, &before);
	for (i = 0, life = 0, cw = 0; i < SOCKSHIM_HIST_BUCKETS; i++) {
		life += l->life_hist[i];
		cw += l->closewait_hist[i];
	}
	assert_int_equal(life, 2);
	assert_int_equal(cw, 1);
}

/* ---- Concurrent writers ---- */

#define INODES 1000u

struct worker {
	pthread_t thread;
	struct seg_map *m;
	pthread_barrier_t *start;
	unsigned id;
	unsigned created;  /* entries this thread created */
	unsigned failures; /* answers that were wrong */
	unsigned zero;     /* answers of 0 */
	uint32_t ref_of[INODES];
};

/* THREADS x OPS ledger_get of the same INODES inodes, every thread in
 * the same order, so that the first claims of each inode race: each
 * inode must end with exactly one entry, created once, and every answer
 * must be that entry. No claimer gives up waiting for another to
 * publish the inode: the others are alive, so the wait (claim.c) lasts
 * until they do, however long the host preempts them (under 250 ms). */
static void *claim_many(void *arg)
{
	struct worker *w = arg;
	unsigned i;

	pthread_barrier_wait(w->start);
	for (i = 0; i < OPS; i++) {
		uint64_t ino = 1 + (i * 7u) % INODES;
		uint32_t ref;
		int created;

		ref = get(w->m, ino, &created);
		w->created += (unsigned)created;
		if (!ref) {
			w->zero++;
			continue;
		}
		/* No cmocka assertion off the main thread: counted instead. */
		if (ref > w->m->ledger_capacity ||
		    __atomic_load_n(&seg_ledger_keys(w->m)[ref - 1].inode, __ATOMIC_ACQUIRE) != ino ||
		    (w->ref_of[ino - 1] && w->ref_of[ino - 1] != ref))
			w->failures++;
		w->ref_of[ino - 1] = ref;
	}
	return NULL;
}

static void run_threads(struct worker *w, struct seg_map *m, void *(*fn)(void *))
{
	pthread_barrier_t start;
	unsigned t;

	assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
	for (t = 0; t < THREADS; t++) {
		w[t].m = m;
		w[t].start = &start;
		w[t].id = t;
		assert_int_equal(pthread_create(&w[t].thread, NULL, fn, &w[t]), 0);
	}
	for (t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(w[t].thread, NULL), 0);
	pthread_barrier_destroy(&start);
}

/* Exactly one entry per inode of 1..N in M, and every thread's answer
 * for it that entry. */
static void check_one_entry_each(struct seg_map *m, struct worker *w, unsigned n)
{
	unsigned t, i, *entries = calloc(n, sizeof(*entries)), zero = 0;

	assert_non_null(entries);
	for (t = 0; t < THREADS; t++) {
		assert_int_equal(w[t].failures, 0);
		zero += w[t].zero;
	}
	for (i = 0; i < m->ledger_capacity; i++) {
		uint64_t ino = seg_ledger_keys(m)[i].inode;

		assert_true(sockshim_inode_in_use(ino) || !ino);
		if (ino >= 1 && ino <= n)
			entries[ino - 1]++;
	}
	for (i = 0; i < n; i++) {
		uint32_t ref = ledger_lookup(m, i + 1);

		assert_int_equal(entries[i], 1);
		assert_true(ref != 0);
		for (t = 0; t < THREADS; t++)
			assert_true(!w[t].ref_of[i] || w[t].ref_of[i] == ref);
	}
	assert_int_equal(zero, 0);
	assert_int_equal(seg_header(m)->claims_stalled, 0);
	free(entries);
}

static void test_concurrent_claims(void **state)
{
	struct seg_map *m = *state;
	struct worker *w = calloc(THREADS, sizeof(*w));
	unsigned t, created = 0;

	assert_non_null(w);
	run_threads(w, m, claim_many);
	for (t = 0; t < THREADS; t++)
		created += w[t].created;
	assert_int_equal(created, INODES);
	check_one_entry_each(m, w, INODES);
	assert_int_equal(seg_header(m)->ledger_full, 0);
	assert_int_equal(seg_header(m)->ledger_reclaimed, 0);
	free(w);
}

#define RECLAIMED 100u

/* As claim_many, for RECLAIMED inodes in a ledger whose every entry is
 * a released socket's: each first claim reclaims one. */
static void *reclaim_many(void *arg)
{
	struct worker *w = arg;
	unsigned i;

	pthread_barrier_wait(w->start);
	for (i = 0; i < OPS; i++) {
		uint64_t ino = 1 + (i * 7u) % RECLAIMED;
		int created;
		uint32_t ref = get(w->m, ino, &created);

		w->created += (unsigned)created;
		if (!ref) {
			w->zero++;
			continue;
		}
		if (ref > w->m->ledger_capacity ||
		    __atomic_load_n(&seg_ledger_keys(w->m)[ref - 1].inode, __ATOMIC_ACQUIRE) != ino ||
		    (w->ref_of[ino - 1] && w->ref_of[ino - 1] != ref))
			w->failures++;
		w->ref_of[ino - 1] = ref;
	}
	return NULL;
}

/* Threads that race to reclaim entries for the same sockets (the
 * probe windows hold released sockets only) still make one entry each. */
static void test_concurrent_reclaims(void **state)
{
	struct seg_map *m = *state;
	struct worker *w = calloc(THREADS, sizeof(*w));
	unsigned t, created = 0;
	uint32_t slot, ref;
	uint64_t ino;
	int c;

	assert_non_null(w);
	for (slot = 0; slot < m->ledger_capacity; slot++) {
		same_slot(m, slot, 1u << 20, &ino, 1);
		ref = get(m, ino, &c);
		assert_int_equal(ref, slot + 1);
		ledger_reserve(m, ref, 1);
		ledger_reserve(m, ref, -1);
	}
	run_threads(w, m, reclaim_many);
	for (t = 0; t < THREADS; t++)
		created += w[t].created;
	assert_int_equal(created, RECLAIMED);
	check_one_entry_each(m, w, RECLAIMED);
	assert_int_equal(seg_header(m)->ledger_reclaimed, RECLAIMED);
	free(w);
}

#define HOLD_FDS 3

/* Each thread (its own pid) holds one socket as HOLD_FDS descriptors,
 * then releases them, OPS times: THREADS x HOLD_FDS live holders at the
 * peak, more than the entry's slots, so the pool is raced for too. */
static void *hold_release(void *arg)
{
	struct worker *w = arg;
	pid_t pid = 5000 + (pid_t)w->id;
	uint32_t ref = w->ref_of[0];
	unsigned i;
	int fd, before;

	pthread_barrier_wait(w->start);
	for (i = 0; i < OPS; i++) {
		for (fd = 0; fd < HOLD_FDS; fd++) {
			ledger_hold(w->m, ref, pid, fd, SOCKSHIM_HOW_DUP, pid, 0, 0);
			if (!ledger_holds(w->m, ref, pid, fd))
				w->failures++;
		}
		for (fd = 0; fd < HOLD_FDS; fd++) {
			int left = ledger_release(w->m, ref, pid, fd, &before);

			if (left < 0 || before < 1 || left != before - 1 ||
			    ledger_holds(w->m, ref, pid, fd))
				w->failures++;
			if (!left)
				w->created++; /* here: releases that left none */
		}
	}
	return NULL;
}

static void test_concurrent_hold_release(void **state)
{
	struct seg_map *m = *state;
	struct worker *w = calloc(THREADS, sizeof(*w));
	struct sockshim_sock *s;
	uint32_t ref;
	unsigned t, i, last = 0;
	int created;

	assert_non_null(w);
	ref = get(m, 777777, &created);
	s = at(m, ref);
	for (t = 0; t < THREADS; t++)
		w[t].ref_of[0] = ref;
	run_threads(w, m, hold_release);
	for (t = 0; t < THREADS; t++) {
		assert_int_equal(w[t].failures, 0);
		last += w[t].created;
	}
	assert_int_equal(s->refs, 0);
	assert_int_equal(s->pooled, 0);
	assert_int_equal(s->holder_overflow, 0);
	for (i = 0; i < SOCKSHIM_HOLDERS; i++)
		assert_int_equal(s->holders[i].state, SOCKSHIM_HOLDER_FREE);
	for (i = 0; i < m->ledger_capacity; i++)
		assert_int_equal(seg_pool(m)[i].h.state, SOCKSHIM_HOLDER_FREE);
	/* Every release but those that left none had no effect. */
	assert_true(last >= 1);
	assert_int_equal(s->noeffect_closes, THREADS * OPS * HOLD_FDS - last);
	assert_true(KEY(m, s)->released_ns != 0);
	free(w);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_get_places_at_hash),
		T(test_get_waits_for_a_live_claimer),
		T(test_wide_inode_counted),
		T(test_collisions_probe),
		T(test_probe_wraps),
		T(test_lookup_reads_only_the_index),
		T(test_full_window_and_reclaim),
		T(test_reclaim_passes_over_a_held_entry),
		T(test_reclaim_clears_what_the_old_socket_left),
		T(test_previous_socket_taken_over),
		T(test_previous_socket_needs_proof),
		T(test_hold_release_counts),
		T(test_reserve),
		T(test_pool_and_overflow),
		T(test_steps),
		T(test_eof_read_describe),
		T(test_forget),
		T(test_reclaim),
		T(test_flags_one_set),
		T(test_linger_reset_sticks),
		T(test_shutdown_names_others),
		T(test_release_counts_in_listener),
		cmocka_unit_test(test_no_session),
		cmocka_unit_test_setup_teardown(test_concurrent_claims, setup_big, teardown),
		T(test_concurrent_reclaims),
		cmocka_unit_test_setup_teardown(test_concurrent_hold_release, setup_big, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
