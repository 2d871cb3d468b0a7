/* The accept lock: a futex word in the listener entry, 0 when free, else
 * the holder's thread id, taken by compare-and-swap. It holds no pointer
 * and no libc structure, so a word another process scribbled is only a
 * value to check. Waiters sleep on the word in short slices; between
 * slices a waiter that finds connections waiting looks at the holder
 * (/proc) and does not wait on one that cannot make progress: a dead
 * holder's lock is taken over, a stopped or stalled holder is bypassed
 * (waiters accept without the lock while the lock keeps that value), a
 * word that names no thread is reset. To the program the wait is part of
 * its blocking accept, so a signal handler that runs during it must end
 * the accept with EINTR: signals (but SIGBUS) are blocked while we wait,
 * and let in only inside a zero-timeout ppoll between slices, where a
 * handler that runs is sure to be seen. Never used on a path the user did
 * not ask to serialize. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "accept_lock.h"
#include "doorbell.h"
#include "emit.h"
#include "listeners.h"
#include "log.h"
#include "real.h"
#include "sigbus.h"
#include "sockshim/thread_state.h"

/* How long a waiter sleeps before it looks again: bounds the time to
 * notice a dead holder and a signal (the tests ask for 100 and 50 ms). */
#define SLICE_NS (20 * 1000000LL)
/* How long connections may wait while the lock's (or token's) holder,
 * alive and not stopped, takes none of them, before the others stop
 * waiting for it. A holder with a connection ready returns from accept in
 * microseconds; this only catches one that does not run at all. */
#define STALL_NS (250 * 1000000LL)

static uint64_t mono_ns(void)
{
	return emit_now_ns();
}

static uint32_t my_word(void)
{
	return (uint32_t)shim_gettid();
}

static int futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	/* Shared, not private: the waiters are in many processes. */
	return (int)syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

enum signal_seen { SIGNAL_NONE, SIGNAL_INTERRUPTS, SIGNAL_RESTARTS };

/* Of the signals in PENDING that the thread's mask SAVED lets through:
 * -1 none, 1 one with a handler that would end a blocking accept with
 * EINTR (no SA_RESTART), else 0. Signals without a handler end nothing:
 * the default action either ignores them or ends the process. */
static int pending_interrupts(const sigset_t *pending, const sigset_t *saved)
{
	struct sigaction sa;
	int sig, any = -1;

	for (sig = 1; sig < NSIG; sig++) {
		if (!sigismember(pending, sig) || sigismember(saved, sig))
			continue;
		any = 0;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL &&
		    sa.sa_handler != SIG_IGN && !(sa.sa_flags & SA_RESTART))
			return 1;
	}
	return any;
}

/* Let pending signals in (their handlers run now): none ran, one ran and
 * the accept it interrupted would end with EINTR, or would be restarted.
 * Which signals they were is read first, so that the verdict is theirs,
 * not that of every handler installed (a sanitizer's SIGSEGV handler has
 * no SA_RESTART). */
static enum signal_seen signals_let_in(const sigset_t *saved)
{
	static const struct timespec zero = {0, 0};
	sigset_t pending;
	int interrupts;

	if (sigpending(&pending) < 0)
		sigfillset(&pending);
	interrupts = pending_interrupts(&pending, saved);
	if (interrupts < 0)
		return SIGNAL_NONE; /* nothing to let in: no call */
	if (real.ppoll(NULL, 0, &zero, saved) == 0 || errno != EINTR)
		return SIGNAL_NONE;
	return interrupts ? SIGNAL_INTERRUPTS : SIGNAL_RESTARTS;
}

/* The listener FD is no longer open (a handler closed it): the restarted
 * accept fails at once with EBADF, and so must ours, not wait for a lock. */
static int fd_gone(int fd)
{
	int saved = errno, gone = real.fcntl(fd, F_GETFD) < 0 && errno == EBADF;

	errno = saved;
	return gone;
}

/* Connections wait on listener FD. */
static int queue_waiting(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return real.poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static int take(struct sockshim_listener *l, uint32_t from, uint32_t me)
{
	return __atomic_compare_exchange_n(&l->lock, &from, me, 0, __ATOMIC_ACQ_REL,
					   __ATOMIC_RELAXED);
}

/* Stop waiting for lock word WORD while the lock keeps it. */
static void start_bypass(struct sockshim_listener *l, uint32_t word, enum sockshim_bypass why)
{
	uint32_t old = __atomic_load_n(&l->bypass_word, __ATOMIC_RELAXED);

	if (old == word)
		return;
	__atomic_store_n(&l->bypass_reason, (uint16_t)why, __ATOMIC_RELAXED);
	__atomic_store_n(&l->bypass_since_ns, mono_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&l->bypass_word, word, __ATOMIC_RELEASE);
	shim_warn("the accept lock of a listener (port %u) is held by thread %u, which %s; "
		  "workers accept without the lock until it is released",
		  (unsigned)l->local_port, (unsigned)word,
		  why == SOCKSHIM_BYPASS_STOPPED ? "is stopped" : "takes no connection");
}

/* A waiter's view of a holder that may not be making progress. */
struct stall {
	uint32_t word;      /* the lock word (or token holder) seen */
	uint64_t progress;  /* the listener's progress counter then */
	uint64_t since_ns;  /* when connections were first seen waiting */
};

/* Connections wait and the holder WORD has done nothing about it (no
 * acquisition, PROGRESS unchanged) for STALL_NS. */
static int stalled(struct stall *s, uint32_t word, uint64_t progress, uint64_t now)
{
	if (s->word != word || s->progress != progress || !s->since_ns) {
		s->word = word;
		s->progress = progress;
		s->since_ns = now;
		return 0;
	}
	return now - s->since_ns >= (uint64_t)STALL_NS;
}

enum wait_result { WAIT_LOCKED, WAIT_BYPASS, WAIT_EINTR, WAIT_TIMEOUT, WAIT_FD_GONE };

/* Lock word W is held while connections wait: take over a dead holder's
 * lock or a garbage word (1, ours), or decide to bypass (2), or wait on
 * (0). */
static int judge_holder(struct sockshim_listener *l, uint32_t w, uint32_t me, struct stall *s)
{
	int state;

	if (w >= SOCKSHIM_LOCK_TID_MAX) { /* names no thread: reset it to ours */
		if (!take(l, w, me))
			return 0;
		stat_add(&l->lock_bypassed[SOCKSHIM_BYPASS_INVALID], 1);
		shim_warn("the accept lock of a listener (port %u) held garbage (%#x); reset",
			  (unsigned)l->local_port, w);
		return 1;
	}
	/* Our own tid, while we wait: a dead holder's, reused for us. */
	state = w == me ? 0 : thread_state((pid_t)w);
	if (thread_state_dead(state)) {
		/* Killed in accept (or a word naming a thread that does not
		 * exist): the lock is nobody's. */
		if (!take(l, w, me))
			return 0;
		stat_add(&l->owner_died, 1);
		return 1;
	}
	if (thread_state_stopped(state)) {
		start_bypass(l, w, SOCKSHIM_BYPASS_STOPPED);
		return 2;
	}
	if (stalled(s, w, __atomic_load_n(&l->lock_acquisitions, __ATOMIC_RELAXED), mono_ns())) {
		start_bypass(l, w, SOCKSHIM_BYPASS_STALLED);
		return 2;
	}
	return 0;
}

/* The bit of worker row W in L's waiting word; 0 for a waiter without a
 * row (counted in waiters_unrowed instead). */
static uint64_t row_bit(const struct sockshim_listener *l, const struct sockshim_worker *w)
{
	return w ? UINT64_C(1) << (unsigned)(w - l->workers) : 0;
}

/* Does anyone wait for L's lock? A waiter killed while waiting may still
 * be counted: it costs a wake-up for nobody, never a missed one. */
static int anyone_waits(struct sockshim_listener *l)
{
	return __atomic_load_n(&l->waiting, __ATOMIC_SEQ_CST) ||
	       __atomic_load_n(&l->waiters_unrowed, __ATOMIC_SEQ_CST);
}

/* The waiters of L whose thread is alive, given its waiting word MASK
 * with our own BIT (0: we have no row) and UNROWED waiters without a row:
 * one tgkill per other row waiting. */
static uint32_t living_waiters(struct sockshim_listener *l, uint64_t mask, uint64_t bit,
			       uint32_t unrowed)
{
	uint32_t n = unrowed + (bit ? 1 : 0);
	unsigned i;

	mask &= ~bit;
	for (i = 0; mask && i < SOCKSHIM_WORKERS; i++, mask >>= 1) {
		uint64_t k;

		if (!(mask & 1))
			continue;
		k = __atomic_load_n(&l->workers[i].key, __ATOMIC_ACQUIRE);
		if (k && k != SOCKSHIM_WORKER_RECYCLING && !listeners_thread_gone(k))
			n++;
	}
	return n;
}

/* Count the caller among L's waiters: its row's BIT, or waiters_unrowed.
 * The high-water mark counts only the living, so the rows of waiters
 * killed while waiting are looked at, and only when the count is above
 * the mark. */
static void waiting_start(struct sockshim_listener *l, uint64_t bit)
{
	uint64_t mask;
	uint32_t unrowed, n;

	if (bit) {
		mask = __atomic_or_fetch(&l->waiting, bit, __ATOMIC_SEQ_CST);
		unrowed = __atomic_load_n(&l->waiters_unrowed, __ATOMIC_RELAXED);
	} else {
		unrowed = __atomic_add_fetch(&l->waiters_unrowed, 1, __ATOMIC_SEQ_CST);
		mask = __atomic_load_n(&l->waiting, __ATOMIC_RELAXED);
	}
	n = (uint32_t)__builtin_popcountll(mask) + unrowed;
	if (n > __atomic_load_n(&l->max_waiters, __ATOMIC_RELAXED))
		stat_max(&l->max_waiters, living_waiters(l, mask, bit, unrowed));
}

static void waiting_end(struct sockshim_listener *l, uint64_t bit)
{
	if (bit)
		__atomic_fetch_and(&l->waiting, ~bit, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_sub(&l->waiters_unrowed, 1, __ATOMIC_SEQ_CST);
}

struct wait_state {
	struct sockshim_listener *l;
	uint64_t bit;   /* our row's bit in l->waiting, 0 none */
	sigset_t saved; /* the thread's signal mask before the wait */
};

static void wait_cleanup(void *arg)
{
	struct wait_state *ws = arg;

	waiting_end(ws->l, ws->bit);
	real.pthread_sigmask(SIG_SETMASK, &ws->saved, NULL);
}

static void release(struct sockshim_listener *l, uint32_t me)
{
	if (!take(l, me, 0))
		return;
	if (anyone_waits(l))
		futex(&l->lock, FUTEX_WAKE, 1, NULL);
}

/* Sleep in slices until the lock is ours, the holder is to be bypassed,
 * the deadline passes or a signal handler ran that would end an accept;
 * meanwhile the caller's worker ROW (NULL: it has none) is marked waiting.
 * A cancellation point: cancelled, it leaves the waiters and the signal
 * mask as they were. */
static enum wait_result wait_for_lock(struct sockshim_listener *l, struct sockshim_worker *row,
				      int fd, uint64_t deadline_ns)
{
	struct wait_state ws = {.l = l, .bit = row_bit(l, row)};
	volatile enum wait_result ret = WAIT_LOCKED;
	const volatile uint64_t deadline = deadline_ns;
	struct stall s = {0, 0, 0};
	uint32_t me = my_word();
	sigset_t all;

	/* Not SIGBUS: the segment we touch meanwhile may shrink. */
	sigbus_fill_except(&all);
	real.pthread_sigmask(SIG_BLOCK, &all, &ws.saved);
	waiting_start(l, ws.bit);
	pthread_cleanup_push(wait_cleanup, &ws);
	for (;;) {
		uint32_t w = __atomic_load_n(&l->lock, __ATOMIC_SEQ_CST);
		uint64_t now;
		struct timespec slice;
		int verdict = 0;

		switch (signals_let_in(&ws.saved)) {
		case SIGNAL_INTERRUPTS:
			ret = WAIT_EINTR;
			break;
		case SIGNAL_RESTARTS:
			if (fd_gone(fd))
				ret = WAIT_FD_GONE;
			break;
		case SIGNAL_NONE:
			break;
		}
		if (ret != WAIT_LOCKED)
			break;
		if (w == 0 && take(l, 0, me))
			verdict = 1;
		else if (w && w == __atomic_load_n(&l->bypass_word, __ATOMIC_ACQUIRE))
			verdict = 2;
		else if (w && queue_waiting(fd))
			verdict = judge_holder(l, w, me, &s);
		else
			s.since_ns = 0; /* nothing waits: the holder is not late */
		if (verdict == 2) {
			ret = WAIT_BYPASS;
			break;
		}
		if (verdict == 1) {
			/* A signal that came while we took it would otherwise run
			 * only once the mask is back, and the accept after it
			 * would block: look once more, and give it back if so. */
			if (signals_let_in(&ws.saved) == SIGNAL_INTERRUPTS) {
				release(l, me);
				ret = WAIT_EINTR;
			}
			break;
		}
		if (w == 0)
			continue; /* freed under us: try again at once */
		now = mono_ns();
		if (deadline && now >= deadline) {
			ret = WAIT_TIMEOUT;
			break;
		}
		slice.tv_sec = 0;
		slice.tv_nsec = (deadline && deadline - now < (uint64_t)SLICE_NS) ? (long)(deadline - now)
										  : SLICE_NS;
		/* Woken by the unlock (the word changes); signals stay blocked:
		 * they wait for the check. */
		futex(&l->lock, FUTEX_WAIT, w, &slice);
		pthread_testcancel();
	}
	pthread_cleanup_pop(1);
	return ret;
}

int accept_lock(struct sockshim_listener *l, int fd, struct sockshim_worker *w,
		uint64_t timeout_ns, uint64_t *waited_ns)
{
	uint32_t me = my_word();
	uint64_t t0, now;

	t0 = mono_ns();
	if (!take(l, 0, me)) {
		stat_add(&l->lock_contended, 1);
		switch (wait_for_lock(l, w, fd, timeout_ns ? t0 + timeout_ns : 0)) {
		case WAIT_LOCKED:
			break;
		case WAIT_BYPASS:
			stat_add(&l->lock_bypassed[__atomic_load_n(&l->bypass_reason, __ATOMIC_RELAXED) %
						   SOCKSHIM_BYPASS_COUNT],
				 1);
			return ACCEPT_BYPASSED;
		case WAIT_FD_GONE:
			return ACCEPT_BYPASSED; /* the accept fails on its own */
		case WAIT_EINTR:
			return -EINTR;
		case WAIT_TIMEOUT:
			return -EAGAIN;
		}
	}
	now = mono_ns();
	__atomic_store_n(&l->holder_pid, shim_getpid(), __ATOMIC_RELAXED);
	__atomic_store_n(&l->holder_tid, (int32_t)me, __ATOMIC_RELAXED);
	__atomic_store_n(&l->held_since_ns, now, __ATOMIC_RELAXED);
	stat_add(&l->lock_acquisitions, 1);
	stat_hist(l->wait_hist, now - t0);
	if (w)
		stat_add(&w->lock_wait_ns, now - t0);
	*waited_ns = now - t0;
	return ACCEPT_LOCKED;
}

int accept_unlock(struct sockshim_listener *l)
{
	uint64_t since = __atomic_load_n(&l->held_since_ns, __ATOMIC_RELAXED);
	uint32_t me = my_word(), word = me;

	stat_hist(l->hold_hist, mono_ns() - since);
	__atomic_store_n(&l->holder_pid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->holder_tid, 0, __ATOMIC_RELAXED);
	/* A bypass of our word ends with it. */
	__atomic_compare_exchange_n(&l->bypass_word, &word, 0, 0, __ATOMIC_RELEASE,
				    __ATOMIC_RELAXED);
	if (!take(l, me, 0)) {
		stat_add(&l->unlock_errors, 1);
		shim_warn("the accept lock of a listener (port %u) was no longer ours at unlock "
			  "(it holds %#x); left as it is",
			  (unsigned)l->local_port, __atomic_load_n(&l->lock, __ATOMIC_RELAXED));
		return -EPERM;
	}
	if (anyone_waits(l))
		futex(&l->lock, FUTEX_WAKE, 1, NULL);
	return 0;
}

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
		    __atomic_load_n(&l->accepts, __ATOMIC_RELAXED), mono_ns()))
		return SOCKSHIM_BYPASS_STALLED;
	return -1;
}

/* How long a dropper that handed the token to a waiter leaves it to
 * that waiter before it may take it back: a woken thread runs well within
 * this on a loaded machine; one that does not (killed since) costs this
 * long, once. */
#define HANDOFF_NS (50 * 1000000LL)
/* How long a thread waiting for the token on its doorbell sleeps at most
 * before it looks at the holder itself: nothing rings when a holder dies
 * or stops while connections wait. */
#define TOKEN_LOOK_NS (1000 * 1000000LL)

/* We (SELF) handed L's token over less than HANDOFF_NS before NOW: it is
 * the rung waiter's to take. */
static int handed_over(struct sockshim_listener *l, uint64_t self, uint64_t now)
{
	return __atomic_load_n(&l->token_offered_by, __ATOMIC_RELAXED) == self &&
	       now - __atomic_load_n(&l->token_offered_ns, __ATOMIC_RELAXED) < (uint64_t)HANDOFF_NS;
}

int accept_token_take(struct sockshim_listener *l, int fd)
{
	/* Sequentially consistent: a waiter marks itself, then loads this;
	 * a dropper frees this, then loads the marks (accept_token_drop). */
	uint64_t self = me_key(), cur = __atomic_load_n(&l->poller, __ATOMIC_SEQ_CST), by;
	int why = -1;

	if (cur == self) {
		stat_add(&l->token_waits, 1);
		return 1;
	}
	if (!cur && handed_over(l, self, mono_ns()))
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
	by = __atomic_load_n(&l->token_offered_by, __ATOMIC_RELAXED);
	if (by)
		__atomic_compare_exchange_n(&l->token_offered_by, &by, 0, 0, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	__atomic_store_n(&l->poller_since_ns, mono_ns(), __ATOMIC_RELAXED);
	stat_add(&l->token_waits, 1);
	return 1;
}

int accept_token_take_or_wait(struct sockshim_listener *l, int fd, struct sockshim_worker *w)
{
	uint64_t bit = row_bit(l, w);

	__atomic_fetch_or(&l->token_waiting, bit, __ATOMIC_SEQ_CST);
	if (!accept_token_take(l, fd))
		return 0;
	__atomic_fetch_and(&l->token_waiting, ~bit, __ATOMIC_SEQ_CST);
	return 1;
}

void accept_token_unwait(struct sockshim_listener *l, struct sockshim_worker *w)
{
	__atomic_fetch_and(&l->token_waiting, ~row_bit(l, w), __ATOMIC_SEQ_CST);
}

uint64_t accept_token_look_ns(struct sockshim_listener *l)
{
	uint64_t now = mono_ns(), at;

	if (!handed_over(l, me_key(), now))
		return TOKEN_LOOK_NS;
	at = __atomic_load_n(&l->token_offered_ns, __ATOMIC_RELAXED);
	return at + HANDOFF_NS - now;
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

/* Free L (entry REF)'s token, if it is still CUR, and hand it to a
 * waiter other than row MINE (-1: none) if we have the doorbells. */
static int token_hand_over(struct sockshim_listener *l, uint32_t ref, uint64_t cur, int mine)
{
	int row = -1;

	if (!__atomic_compare_exchange_n(&l->poller, &cur, 0, 0, __ATOMIC_SEQ_CST,
					 __ATOMIC_RELAXED))
		return 0;
	if (doorbell_fd(ref, 0) >= 0)
		row = handoff_row(l, mine);
	if (row < 0 || doorbell_ring(ref, (unsigned)row) < 0)
		return 0;
	stat_add(&l->token_handoffs, 1);
	return 1;
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
	uint64_t self = me_key(), cur = self;
	struct sockshim_worker *w;
	uint32_t ref;

	if (__atomic_load_n(&l->poller, __ATOMIC_RELAXED) != self)
		return;
	/* Named before the token is free, so that a waiter that takes it
	 * at once also clears the name. */
	__atomic_store_n(&l->token_offered_ns, mono_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&l->token_offered_by, self, __ATOMIC_RELAXED);
	ref = listeners_ref(shim_session(), l);
	w = listeners_worker(l);
	if (token_hand_over(l, ref, cur, w ? (int)(w - l->workers) : -1))
		return;
	/* Nobody to hand it to: anyone may take it, we too. */
	cur = self;
	__atomic_compare_exchange_n(&l->token_offered_by, &cur, 0, 0, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
}
