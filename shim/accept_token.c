/* The poll token of a listener (serialize only): one thread at a time
 * waits for a listener in poll, ppoll, select or pselect, so that one
 * worker, not the whole pool, wakes for a connection. The token is the
 * listener's poller word, the (pid << 32) | tid key of its holder, 0 when
 * free, taken by compare-and-swap; a holder that is gone, stopped, or
 * leaves connections waiting is taken over (stall.h). The others wait on
 * their doorbells (doorbell.c), marked in token_waiting. A thread that
 * gives the token back hands it to the next marked waiter: named in
 * token_offered_to and rung, that waiter alone may take the free token
 * for HANDOFF_NS, so that the connections go round the pool. The layout
 * is in include/sockshim/layout.h; docs/DESIGN.md tells the story. */
#include <stdint.h>
#include <sys/types.h>

#include "accept_token.h"
#include "doorbell.h"
#include "emit.h"
#include "listeners.h"
#include "stall.h"
#include "sockshim/thread_state.h"

static uint64_t me_key(void)
{
	return ((uint64_t)(uint32_t)shim_getpid() << 32) | (uint32_t)shim_gettid();
}

#define TOKEN_HOLDER_GONE SOCKSHIM_BYPASS_COUNT

/* The token's holder HOLDER (a key) while connections wait: the reason
 * to take the token from it (enum sockshim_bypass, or TOKEN_HOLDER_GONE),
 * or -1 to leave it. Per thread: the waiter's view of the one listener it
 * last looked at. */
static int token_stuck(struct sockshim_listener *l, int fd, uint64_t holder)
{
	static __thread struct stall s;
	static __thread const struct sockshim_listener *seen;
	int state;

	if (seen != l) {
		seen = l;
		s.since_ns = 0;
	}
	if (!queue_waiting(fd)) {
		s.since_ns = 0;
		return -1;
	}
	state = thread_state((pid_t)(uint32_t)holder);
	if (thread_state_dead(state))
		return TOKEN_HOLDER_GONE; /* a zombie: tgkill still finds it */
	if (thread_state_stopped(state))
		return SOCKSHIM_BYPASS_STOPPED;
	if (stalled(&s, (uint32_t)holder ^ (uint32_t)(holder >> 32),
		    __atomic_load_n(&l->accepts, __ATOMIC_RELAXED), emit_now_ns()))
		return SOCKSHIM_BYPASS_STALLED;
	return -1;
}

/* How long a thread waiting for the token on its doorbell sleeps at most
 * before it looks at the holder itself: nothing rings when a holder dies
 * or stops while connections wait. */
#define TOKEN_LOOK_NS (1500 * 1000000LL)

/* L's free token is offered to a thread other than SELF, since less than
 * HANDOFF_NS before NOW: not ours to take. */
static int offered_elsewhere(struct sockshim_listener *l, uint64_t self, uint64_t now)
{
	uint64_t to = __atomic_load_n(&l->token_offered_to, __ATOMIC_SEQ_CST);

	return to && to != self &&
	       now - __atomic_load_n(&l->token_offered_ns, __ATOMIC_RELAXED) < (uint64_t)HANDOFF_NS;
}

int accept_token_take(struct sockshim_listener *l, int fd)
{
	/* Sequentially consistent: a waiter marks itself, then loads this;
	 * a dropper frees this, then loads the marks (accept_token_drop). */
	uint64_t self = me_key(), cur = __atomic_load_n(&l->poller, __ATOMIC_SEQ_CST), to;
	int why = -1;

	if (cur == self) {
		stat_add(&l->token_waits, 1);
		return 1;
	}
	if (!cur && offered_elsewhere(l, self, emit_now_ns()))
		return 0;
	/* Held by a thread that is gone (its process killed): free. */
	if (cur && !listeners_thread_gone(cur)) {
		why = token_stuck(l, fd, cur);
		if (why < 0)
			return 0;
	}
	if (!__atomic_compare_exchange_n(&l->poller, &cur, self, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return 0;
	if (why >= 0 && why < SOCKSHIM_BYPASS_COUNT)
		stat_add(&l->token_taken[why], 1);
	/* The hand-off, if any, is done. */
	to = __atomic_load_n(&l->token_offered_to, __ATOMIC_RELAXED);
	if (to)
		__atomic_compare_exchange_n(&l->token_offered_to, &to, 0, 0, __ATOMIC_SEQ_CST,
					    __ATOMIC_RELAXED);
	__atomic_store_n(&l->poller_since_ns, emit_now_ns(), __ATOMIC_RELAXED);
	stat_add(&l->token_waits, 1);
	return 1;
}

int accept_token_take_or_wait(struct sockshim_listener *l, int fd, struct sockshim_worker *w)
{
	uint64_t bit = listeners_row_bit(l, w);

	__atomic_fetch_or(&l->token_waiting, bit, __ATOMIC_SEQ_CST);
	if (!accept_token_take(l, fd))
		return 0;
	__atomic_fetch_and(&l->token_waiting, ~bit, __ATOMIC_SEQ_CST);
	return 1;
}

void accept_token_unwait(struct sockshim_listener *l, struct sockshim_worker *w)
{
	__atomic_fetch_and(&l->token_waiting, ~listeners_row_bit(l, w), __ATOMIC_SEQ_CST);
}

uint64_t accept_token_look_ns(struct sockshim_listener *l)
{
	uint64_t now = emit_now_ns(), at;

	if (!offered_elsewhere(l, me_key(), now))
		return TOKEN_LOOK_NS;
	/* Until the offer lapses: the thread it names may never take it. */
	at = __atomic_load_n(&l->token_offered_ns, __ATOMIC_RELAXED);
	return at + HANDOFF_NS > now ? at + HANDOFF_NS - now : 1;
}

/* The row to hand L's token to: a row marked waiting other than ours
 * (MINE, -1: none), the first after ours in turn, whose thread lives.
 * Marks of ended threads are cleared on the way. -1: none. */
static int handoff_row(struct sockshim_listener *l, int mine)
{
	uint64_t mask = __atomic_load_n(&l->token_waiting, __ATOMIC_SEQ_CST);
	int k;

	for (k = 1; mask && k <= SOCKSHIM_WORKERS; k++) {
		int i = (mine + k + SOCKSHIM_WORKERS) % SOCKSHIM_WORKERS;
		uint64_t bit = UINT64_C(1) << i, key;

		if (!(mask & bit) || i == mine)
			continue;
		key = __atomic_load_n(&l->workers[i].key, __ATOMIC_ACQUIRE);
		if (key && key != SOCKSHIM_WORKER_RECYCLING && !listeners_thread_gone(key))
			return i;
		__atomic_fetch_and(&l->token_waiting, ~bit, __ATOMIC_SEQ_CST);
		mask &= ~bit;
	}
	return -1;
}

/* Ring row ROW's doorbell for L (entry REF): 1 if rung (a hand-off,
 * counted), 0 if not. */
static int ring_waiter(struct sockshim_listener *l, uint32_t ref, int row)
{
	if (doorbell_ring(ref, (unsigned)row) < 0)
		return 0;
	stat_add(&l->token_handoffs, 1);
	return 1;
}

/* L (entry REF)'s token is free and offered to us (SELF): offer it to
 * the next waiter after row MINE (-1: none) and ring its doorbell, if we
 * have the doorbells; else to anyone. 1: a waiter was rung. */
static int token_offer(struct sockshim_listener *l, uint32_t ref, uint64_t self, int mine)
{
	int row = doorbell_fd(ref, 0) >= 0 ? handoff_row(l, mine) : -1;
	uint64_t to = self;

	if (row >= 0) {
		uint64_t key = __atomic_load_n(&l->workers[row].key, __ATOMIC_ACQUIRE);

		/* Fails only if the offer lapsed and another took the token. */
		if (!__atomic_compare_exchange_n(&l->token_offered_to, &to, key, 0, __ATOMIC_SEQ_CST,
						 __ATOMIC_RELAXED))
			return 0;
		if (ring_waiter(l, ref, row))
			return 1;
		/* Not rung: the offer is nobody's. */
		__atomic_compare_exchange_n(&l->token_offered_to, &key, 0, 0, __ATOMIC_SEQ_CST,
					    __ATOMIC_RELAXED);
		return 0;
	}
	if (!__atomic_compare_exchange_n(&l->token_offered_to, &to, 0, 0, __ATOMIC_SEQ_CST,
					 __ATOMIC_RELAXED))
		return 0;
	/* A waiter that found the token offered to us marked itself before
	 * it looked (both sequentially consistent): seen now, it is rung
	 * rather than left asleep until the offer would have lapsed. */
	row = handoff_row(l, mine);
	return row >= 0 && !__atomic_load_n(&l->poller, __ATOMIC_SEQ_CST) && ring_waiter(l, ref, row);
}

/* Free L (entry REF)'s token, if it is still CUR, and hand it to a
 * waiter other than row MINE (-1: none). Named ours before it is free,
 * so that no thread that finds it free before the waiter is chosen takes
 * it from that waiter (the one taking it clears the name). */
static int token_hand_over(struct sockshim_listener *l, uint32_t ref, uint64_t cur, int mine)
{
	uint64_t self = me_key(), to = self;

	__atomic_store_n(&l->token_offered_ns, emit_now_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&l->token_offered_to, self, __ATOMIC_SEQ_CST);
	if (!__atomic_compare_exchange_n(&l->poller, &cur, 0, 0, __ATOMIC_SEQ_CST,
					 __ATOMIC_RELAXED)) {
		__atomic_compare_exchange_n(&l->token_offered_to, &to, 0, 0, __ATOMIC_SEQ_CST,
					    __ATOMIC_RELAXED);
		return 0;
	}
	return token_offer(l, ref, self, mine);
}

void accept_token_decline(struct sockshim_listener *l, uint32_t ref, struct sockshim_worker *w)
{
	uint64_t self = me_key();

	if (__atomic_load_n(&l->token_offered_to, __ATOMIC_SEQ_CST) != self ||
	    __atomic_load_n(&l->poller, __ATOMIC_SEQ_CST))
		return;
	__atomic_store_n(&l->token_offered_ns, emit_now_ns(), __ATOMIC_RELAXED);
	(void)token_offer(l, ref, self, w ? (int)(w - l->workers) : -1);
}

void accept_token_release_pid(pid_t pid)
{
	struct seg_map *m = shim_session();
	uint32_t ref;

	if (accept_mode != SOCKSHIM_ACCEPT_SERIALIZE || pid <= 0)
		return;
	for (ref = 1; ref <= SOCKSHIM_LISTENERS; ref++) {
		struct sockshim_listener *l = listeners_entry(m, ref);
		uint64_t cur;

		if (!l || !sockshim_inode_in_use(__atomic_load_n(&l->inode, __ATOMIC_ACQUIRE)))
			break; /* entries are taken in order */
		cur = __atomic_load_n(&l->poller, __ATOMIC_ACQUIRE);
		if (cur && (pid_t)(cur >> 32) == pid)
			(void)token_hand_over(l, ref, cur, -1);
	}
}

void accept_token_drop(struct sockshim_listener *l)
{
	uint64_t self = me_key();
	struct sockshim_worker *w;

	if (__atomic_load_n(&l->poller, __ATOMIC_RELAXED) != self)
		return;
	w = listeners_worker(l);
	(void)token_hand_over(l, listeners_ref(shim_session(), l), self,
			      w ? (int)(w - l->workers) : -1);
}
