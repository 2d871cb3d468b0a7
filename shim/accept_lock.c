/* The accept lock: a futex word in the listener entry, in the kernel's
 * robust futex format (include/sockshim/layout.h): 0 when free, else the
 * holder's thread id, taken by compare-and-swap. It holds no pointer and
 * no libc structure, so a word another process scribbled is only a value
 * to check. A waiter marks the word FUTEX_WAITERS and sleeps on it until
 * the holder's unlock wakes it, or the kernel does when the holder dies
 * (its robust list names the word: lock_robust.c), or a signal handler of
 * the program runs, or a second passes. Then it looks at the holder
 * (/proc) if connections wait, and does not wait on one that cannot make
 * progress: a dead holder's lock is taken over, a stopped or stalled
 * holder is bypassed (waiters accept without the lock while the lock
 * names it), a word that names no thread is reset.
 * To the program the wait is part of its blocking accept: a handler that
 * runs during it ends the accept with EINTR, or lets it go on under
 * SA_RESTART. The sleep keeps the program's signal mask; whether a handler
 * ran is known without a race from the thread's count of handlers run
 * (sigwatch.c), which the sleep waits on too: a handler that runs before
 * the sleep makes it return at once, one that runs on the way back from
 * it (woken by the unlock as the signal lands) is counted all the same.
 * Never used on a path the user did not ask to serialize. */
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
#include "emit.h"
#include "listeners.h"
#include "lock_robust.h"
#include "log.h"
#include "real.h"
#include "sigbus.h"
#include "sigwatch.h"
#include "stall.h"
#include "sockshim/thread_state.h"

/* How long an idle waiter sleeps before it looks at the holder: bounds
 * the time to notice a stopped holder or a scribbled word, and makes an
 * idle waiter wake once every 1.5 s (a dead holder and a signal wake it at
 * once). */
#define WATCH_NS (1500 * 1000000LL)
/* How long it sleeps while connections wait (the holder may be stalled:
 * stall.c's STALL_NS is measured in such slices), and at most without
 * futex_waitv (kernels before 5.16), where a handler that runs just
 * before the sleep is seen only at its end. */
#define SLICE_NS (20 * 1000000LL)

#define LOCK_TID(w) sockshim_lock_tid(w)

static uint32_t my_word(void)
{
	return (uint32_t)shim_gettid();
}

static void wake_one(struct sockshim_listener *l)
{
	/* Shared, not private: the waiters are in many processes. */
	real.syscall(SYS_futex, &l->lock, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* The listener FD is no longer open (a handler closed it): the restarted
 * accept fails at once with EBADF, and so must ours, not wait for a lock. */
static int fd_gone(int fd)
{
	int saved = errno, gone = real.fcntl(fd, F_GETFD) < 0 && errno == EBADF;

	errno = saved;
	return gone;
}

static int take(struct sockshim_listener *l, uint32_t from, uint32_t me)
{
	return __atomic_compare_exchange_n(&l->lock, &from, me, 0, __ATOMIC_ACQ_REL,
					   __ATOMIC_RELAXED);
}

/* Stop waiting for the holder TID while the lock names it. */
static void start_bypass(struct sockshim_listener *l, uint32_t tid, enum sockshim_bypass why)
{
	uint32_t old = __atomic_load_n(&l->bypass_word, __ATOMIC_RELAXED);

	if (old == tid)
		return;
	__atomic_store_n(&l->bypass_reason, (uint16_t)why, __ATOMIC_RELAXED);
	__atomic_store_n(&l->bypass_since_ns, emit_now_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&l->bypass_word, tid, __ATOMIC_RELEASE);
	shim_warn("the accept lock of a listener (port %u) is held by thread %u, which %s; "
		  "workers accept without the lock until it is released",
		  (unsigned)l->local_port, (unsigned)tid,
		  why == SOCKSHIM_BYPASS_STOPPED ? "is stopped" : "takes no connection");
}

enum wait_result {
	WAIT_LOCKED,
	WAIT_LOCKED_MASKED, /* after a sleep: signals blocked, see wait_for_lock */
	WAIT_BYPASS,
	WAIT_EINTR,
	WAIT_TIMEOUT,
	WAIT_FD_GONE
};

/* Take lock word W over for ME, with FUTEX_WAITERS: others may sleep. */
static int take_over(struct sockshim_listener *l, uint32_t w, uint32_t me)
{
	return take(l, w, me | SOCKSHIM_LOCK_WAITERS);
}

/* Lock word W is held while connections wait: take over a dead holder's
 * lock or a garbage word (1, ours), or decide to bypass (2), or wait on
 * (0). */
static int judge_holder(struct sockshim_listener *l, uint32_t w, uint32_t me, struct stall *s)
{
	uint32_t tid = LOCK_TID(w);
	int state;

	if (!sockshim_lock_valid(w)) { /* names no thread: reset it to ours */
		if (!take_over(l, w, me))
			return 0;
		stat_add(&l->lock_bypassed[SOCKSHIM_BYPASS_INVALID], 1);
		shim_warn("the accept lock of a listener (port %u) held garbage (%#x); reset",
			  (unsigned)l->local_port, w);
		return 1;
	}
	/* Our own tid, while we wait: a dead holder's, reused for us. */
	state = tid == me ? 0 : thread_state((pid_t)tid);
	if (thread_state_dead(state)) {
		/* Killed in accept without the kernel's hand-over (no robust
		 * list), or a word naming a thread that does not exist: the
		 * lock is nobody's. */
		if (!take_over(l, w, me))
			return 0;
		stat_add(&l->owner_died, 1);
		return 1;
	}
	if (thread_state_stopped(state)) {
		start_bypass(l, tid, SOCKSHIM_BYPASS_STOPPED);
		return 2;
	}
	if (stalled(s, tid, __atomic_load_n(&l->lock_acquisitions, __ATOMIC_RELAXED), emit_now_ns())) {
		start_bypass(l, tid, SOCKSHIM_BYPASS_STALLED);
		return 2;
	}
	return 0;
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
	uint64_t bit;       /* our row's bit in l->waiting, 0 none */
	volatile int slept; /* we slept: an unlock's wake-up may have been ours */
	volatile int locked;
};

/* The end of a wait, also when the thread is cancelled in it. A waiter
 * that leaves without the lock after sleeping may have taken the one
 * wake-up an unlock gave: it passes it on. */
static void wait_cleanup(void *arg)
{
	struct wait_state *ws = arg;

	waiting_end(ws->l, ws->bit);
	if (ws->slept && !ws->locked && anyone_waits(ws->l))
		wake_one(ws->l);
}

/* Give back the lock ME holds: wake a sleeper if the word says some may
 * sleep. 0, or -EPERM when the word no longer names us. */
static int release(struct sockshim_listener *l, uint32_t me)
{
	uint32_t w = __atomic_load_n(&l->lock, __ATOMIC_RELAXED);

	do {
		if (LOCK_TID(w) != me || (w & SOCKSHIM_LOCK_OWNER_DIED))
			return -EPERM;
	} while (!__atomic_compare_exchange_n(&l->lock, &w, 0, 0, __ATOMIC_ACQ_REL,
					      __ATOMIC_RELAXED));
	lock_robust_release(&l->lock);
	if (w & SOCKSHIM_LOCK_WAITERS)
		wake_one(l);
	return 0;
}

static int have_waitv = 1; /* futex_waitv works here (Linux 5.16) */

/* Sleep while lock word W (with FUTEX_WAITERS) and this thread's count of
 * handlers run, SEQ, stay as they are, until UNTIL_NS (CLOCK_MONOTONIC).
 * An asynchronous cancellation point, as the accept it stands for (glibc
 * signals a deferred-mode thread's cancellation to nobody). -EINTR when a
 * handler ran that the kernel would not restart the call after. */
static int sleep_on(struct sockshim_listener *l, uint32_t w, uint32_t seq, uint64_t until_ns)
{
	int old, rc, err = 0;

	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
	if (__atomic_load_n(&have_waitv, __ATOMIC_RELAXED)) {
		struct futex_waitv v[2] = {
			{.val = w, .uaddr = (uintptr_t)&l->lock, .flags = FUTEX_32},
			{.val = seq,
			 .uaddr = (uintptr_t)sigwatch_counter(),
			 .flags = FUTEX_32 | FUTEX_PRIVATE_FLAG},
		};
		struct timespec ts = {.tv_sec = (time_t)(until_ns / 1000000000u),
				      .tv_nsec = (long)(until_ns % 1000000000u)};

		rc = (int)real.syscall(SYS_futex_waitv, v, 2, 0, &ts, CLOCK_MONOTONIC);
		err = rc < 0 ? errno : 0;
		if (err == ENOSYS)
			__atomic_store_n(&have_waitv, 0, __ATOMIC_RELAXED);
	}
	if (!__atomic_load_n(&have_waitv, __ATOMIC_RELAXED)) {
		uint64_t now = emit_now_ns(), ns = until_ns > now ? until_ns - now : 0;
		struct timespec rel;

		if (ns > (uint64_t)SLICE_NS)
			ns = SLICE_NS;
		rel.tv_sec = 0;
		rel.tv_nsec = (long)ns;
		rc = (int)real.syscall(SYS_futex, &l->lock, FUTEX_WAIT, w, &rel, NULL, 0);
		err = rc < 0 ? errno : 0;
		/* With a timeout, FUTEX_WAIT ends with EINTR after any handler,
		 * SA_RESTART or not (-ERESTART_RESTARTBLOCK: the kernel restarts
		 * it only when no handler ran). A handler of the program is
		 * counted: the caller's look at the count decides, as it would
		 * after futex_waitv. */
		if (err == EINTR && __atomic_load_n(sigwatch_counter(), __ATOMIC_ACQUIRE) != seq)
			err = 0;
	}
	pthread_setcanceltype(old, NULL);
	return err == EINTR ? -EINTR : 0;
}

/* Sleep until the lock is ours, the holder is to be bypassed, the
 * deadline passes or a signal handler ran that would end an accept;
 * meanwhile the caller's worker ROW (NULL: it has none) is marked waiting.
 * A cancellation point: cancelled, it leaves the waiters as they were. */
static enum wait_result wait_for_lock(struct sockshim_listener *l, struct sockshim_worker *row,
				      int fd, uint64_t deadline_ns, sigset_t *program_mask)
{
	struct wait_state ws = {.l = l, .bit = listeners_row_bit(l, row), .slept = 0, .locked = 0};
	volatile enum wait_result ret = WAIT_LOCKED;
	const volatile uint64_t deadline = deadline_ns;
	struct stall s = {0, 0, 0};
	uint32_t me = my_word();

	(void)sigwatch_begin();
	waiting_start(l, ws.bit);
	pthread_cleanup_push(wait_cleanup, &ws);
	for (;;) {
		/* The count first: a handler that runs after it makes the
		 * sleep below return at once. */
		uint32_t seq = __atomic_load_n(sigwatch_counter(), __ATOMIC_ACQUIRE);
		uint32_t w = __atomic_load_n(&l->lock, __ATOMIC_SEQ_CST);
		/* A thread that slept takes the lock marked: others may sleep. */
		uint32_t mine = ws.slept ? me | SOCKSHIM_LOCK_WAITERS : me;
		uint64_t now, until;
		int verdict = 0, waiting = 0, ran = sigwatch_consume();

		if (ran == 2) {
			ret = WAIT_EINTR;
			break;
		}
		if (ran == 1 && fd_gone(fd)) {
			ret = WAIT_FD_GONE;
			break;
		}
		if (w == 0) {
			if (!take(l, 0, mine))
				continue; /* taken under us: look again */
			verdict = 1;
		} else if ((w & ~SOCKSHIM_LOCK_WAITERS) == SOCKSHIM_LOCK_OWNER_DIED) {
			/* The kernel's mark: its holder died holding it. */
			if (!take_over(l, w, me))
				continue;
			stat_add(&l->owner_died, 1);
			verdict = 1;
		} else if (LOCK_TID(w) &&
			   LOCK_TID(w) == __atomic_load_n(&l->bypass_word, __ATOMIC_ACQUIRE)) {
			verdict = 2;
		} else if (!sockshim_lock_valid(w) || (waiting = queue_waiting(fd))) {
			/* A garbage word is reset at once: no thread of ours
			 * would ever wake us from it. */
			verdict = judge_holder(l, w, me, &s);
		} else {
			s.since_ns = 0; /* nothing waits: the holder is not late */
		}
		if (verdict == 2) {
			ret = WAIT_BYPASS;
			break;
		}
		if (verdict == 1) {
			ws.locked = 1;
			/* A handler that ran while we took it would otherwise
			 * leave the accept after it blocking: look once more,
			 * and give the lock back if so. After a sleep, signals
			 * stay blocked from here until accept_lock_await lets
			 * them in atomically with its wait (the moment an
			 * unlock wakes us is when a pool's shutdown signals
			 * land). */
			if (ws.slept) {
				sigset_t all;

				sigbus_fill_except(&all);
				real.pthread_sigmask(SIG_BLOCK, &all, program_mask);
				ret = WAIT_LOCKED_MASKED;
			}
			if (sigwatch_consume() == 2) {
				if (ws.slept)
					real.pthread_sigmask(SIG_SETMASK, program_mask, NULL);
				(void)release(l, me);
				ws.locked = 0;
				ret = WAIT_EINTR;
			}
			break;
		}
		now = emit_now_ns();
		if (deadline && now >= deadline) {
			ret = WAIT_TIMEOUT;
			break;
		}
		if (!(w & SOCKSHIM_LOCK_WAITERS)) {
			/* So that the unlock, or the kernel at the holder's
			 * death, wakes a sleeper. */
			if (!take(l, w, w | SOCKSHIM_LOCK_WAITERS))
				continue;
			w |= SOCKSHIM_LOCK_WAITERS;
		}
		until = now + (uint64_t)(waiting ? SLICE_NS : WATCH_NS);
		if (deadline && deadline < until)
			until = deadline;
		ws.slept = 1;
		if (sleep_on(l, w, seq, until) == -EINTR) {
			/* A handler ran that ends the call: not ours to restart. */
			(void)sigwatch_consume();
			ret = WAIT_EINTR;
			break;
		}
	}
	pthread_cleanup_pop(1);
	return ret;
}

int accept_lock(struct sockshim_listener *l, int fd, struct sockshim_worker *w,
		uint64_t timeout_ns, uint64_t *waited_ns, sigset_t *program_mask)
{
	uint32_t me = my_word();
	uint64_t t0, now;
	int locked = ACCEPT_LOCKED;

	t0 = emit_now_ns();
	/* Named in our robust list before we may hold it. */
	(void)lock_robust_hold(&l->lock);
	if (!take(l, 0, me)) {
		enum wait_result r;

		stat_add(&l->lock_contended, 1);
		r = wait_for_lock(l, w, fd, timeout_ns ? t0 + timeout_ns : 0, program_mask);
		if (r != WAIT_LOCKED && r != WAIT_LOCKED_MASKED)
			lock_robust_release(&l->lock);
		switch (r) {
		case WAIT_LOCKED:
			break;
		case WAIT_LOCKED_MASKED:
			locked = ACCEPT_LOCKED_MASKED;
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
	now = emit_now_ns();
	__atomic_store_n(&l->holder_pid, shim_getpid(), __ATOMIC_RELAXED);
	__atomic_store_n(&l->holder_tid, (int32_t)me, __ATOMIC_RELAXED);
	__atomic_store_n(&l->held_since_ns, now, __ATOMIC_RELAXED);
	stat_add(&l->lock_acquisitions, 1);
	stat_hist(l->wait_hist, now - t0);
	if (w)
		stat_add(&w->lock_wait_ns, now - t0);
	*waited_ns = now - t0;
	return locked;
}

static void restore_mask(void *mask)
{
	real.pthread_sigmask(SIG_SETMASK, mask, NULL);
}

int accept_lock_await(int fd, const sigset_t *program_mask, uint64_t left_ns)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	const volatile uint64_t deadline = left_ns ? emit_now_ns() + left_ns : 0;
	volatile int ret = 0;

	pthread_cleanup_push(restore_mask, (void *)(uintptr_t)program_mask); // NOLINT(performance-no-int-to-ptr): const dropped for the cleanup's argument, never written
	for (;;) {
		struct timespec left, *ts = NULL;
		int rc;

		if (deadline) {
			uint64_t now = emit_now_ns(), ns = deadline > now ? deadline - now : 0;

			left.tv_sec = (time_t)(ns / 1000000000u);
			left.tv_nsec = (long)(ns % 1000000000u);
			ts = &left;
		}
		/* The program's mask, atomically with the wait: a handler that
		 * was held back runs in here and ends the ppoll (never
		 * restarted), and its run is counted. */
		rc = real.ppoll(&p, 1, ts, program_mask);
		if (rc == 0) {
			ret = -EAGAIN;
			break;
		}
		if (rc > 0 || errno != EINTR)
			break; /* ready, or the accept says what is wrong */
		if (sigwatch_consume() == 2) {
			ret = -EINTR;
			break;
		}
		if (fd_gone(fd))
			break; /* a handler closed it: the accept fails, EBADF */
	}
	pthread_cleanup_pop(1);
	return ret;
}

int accept_unlock(struct sockshim_listener *l)
{
	uint64_t since = __atomic_load_n(&l->held_since_ns, __ATOMIC_RELAXED);
	uint32_t me = my_word(), tid = me;

	stat_hist(l->hold_hist, emit_now_ns() - since);
	__atomic_store_n(&l->holder_pid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->holder_tid, 0, __ATOMIC_RELAXED);
	/* A bypass of our word ends with it. */
	__atomic_compare_exchange_n(&l->bypass_word, &tid, 0, 0, __ATOMIC_RELEASE,
				    __ATOMIC_RELAXED);
	if (release(l, me) < 0) {
		lock_robust_release(&l->lock);
		/* Waiters sleep on a word that is gone: one looks at this one. */
		wake_one(l);
		stat_add(&l->unlock_errors, 1);
		shim_warn("the accept lock of a listener (port %u) was no longer ours at unlock "
			  "(it holds %#x); left as it is",
			  (unsigned)l->local_port, __atomic_load_n(&l->lock, __ATOMIC_RELAXED));
		return -EPERM;
	}
	return 0;
}
