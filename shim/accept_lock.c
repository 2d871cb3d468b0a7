/* The accept lock: a robust, process-shared pthread mutex in the listener
 * entry, taken with trylock. Waiters sleep on a futex word ("turn") that
 * each unlock bumps and wakes, in short slices; at a slice's end a waiter
 * tries the mutex again, which is how an owner that died (EOWNERDEAD) is
 * found within one slice. To the program the wait is part of its blocking
 * accept, so a signal handler that runs during it must end the accept with
 * EINTR: signals are blocked while we wait, and let in only inside a
 * zero-timeout ppoll between slices, where a handler that runs is sure to
 * be seen (ppoll returns EINTR). Never used on a path the user did not ask
 * to serialize. */
#include <errno.h>
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
#include "log.h"
#include "real.h"
#include "sigbus.h"

_Static_assert(sizeof(pthread_mutex_t) <= sizeof(((struct sockshim_listener *)0)->mutex.bytes),
	       "the listener's mutex field holds a pthread_mutex_t");

/* How long a waiter sleeps before it tries the mutex again. Bounds the
 * time to notice a dead owner (the issue asks for 100 ms). */
#define SLICE_NS (20 * 1000000LL)

#define MUTEX_UNINIT 0u
#define MUTEX_INITIALISING 1u
#define MUTEX_READY 2u

static pthread_mutex_t *mutex_of(struct sockshim_listener *l)
{
	return (pthread_mutex_t *)(void *)l->mutex.bytes;
}

static uint64_t mono_ns(void)
{
	return emit_now_ns();
}

/* Initialise L's mutex once, whoever comes first; the others wait (a
 * bounded spin: initialising takes a few instructions). */
static int mutex_ready(struct sockshim_listener *l)
{
	uint32_t state = __atomic_load_n(&l->mutex_ready, __ATOMIC_ACQUIRE);
	pthread_mutexattr_t attr;
	int i;

	if (state == MUTEX_READY)
		return 1;
	if (state == MUTEX_UNINIT &&
	    __atomic_compare_exchange_n(&l->mutex_ready, &state, MUTEX_INITIALISING, 0,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		if (pthread_mutexattr_init(&attr) || pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) ||
		    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) ||
		    pthread_mutex_init(mutex_of(l), &attr)) {
			shim_warn("cannot make a robust process-shared mutex; accept is not serialized");
			return 0; /* stays INITIALISING: nobody uses it */
		}
		pthread_mutexattr_destroy(&attr);
		__atomic_store_n(&l->mutex_ready, MUTEX_READY, __ATOMIC_RELEASE);
		return 1;
	}
	for (i = 0; i < 1000; i++) {
		if (__atomic_load_n(&l->mutex_ready, __ATOMIC_ACQUIRE) == MUTEX_READY)
			return 1;
		sched_yield();
	}
	return 0;
}

/* Would the kernel have restarted a blocking accept after this signal?
 * We do not know which signal it was: restart only if every handler
 * installed asked for SA_RESTART. */
static int signal_restarts(void)
{
	struct sigaction sa;
	int sig;

	for (sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) < 0)
			continue;
		if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN && !(sa.sa_flags & SA_RESTART))
			return 0;
	}
	return 1;
}

static int try_mutex(struct sockshim_listener *l)
{
	int rc = pthread_mutex_trylock(mutex_of(l));

	if (rc == EOWNERDEAD) {
		/* Its holder died with it (kill -9 in accept): take it over. */
		pthread_mutex_consistent(mutex_of(l));
		stat_add(&l->owner_died, 1);
		return 0;
	}
	return rc;
}

struct wait_state {
	struct sockshim_listener *l;
	sigset_t saved; /* the thread's signal mask before the wait */
};

static void wait_cleanup(void *arg)
{
	struct wait_state *ws = arg;

	__atomic_fetch_sub(&ws->l->waiters, 1, __ATOMIC_RELAXED);
	real.pthread_sigmask(SIG_SETMASK, &ws->saved, NULL);
}

/* Let pending signals in (their handlers run now). 1 if one ran and the
 * accept it interrupted would not have been restarted. */
static int signal_interrupts(const sigset_t *saved)
{
	static const struct timespec zero = {0, 0};

	if (ppoll(NULL, 0, &zero, saved) == 0 || errno != EINTR)
		return 0;
	return !signal_restarts();
}

/* Sleep in slices until the mutex is ours (0), the deadline passes
 * (-EAGAIN) or a signal handler ran that would end an accept (-EINTR).
 * A cancellation point: cancelled, it leaves the waiter count and the
 * signal mask as they were. */
static int wait_for_mutex(struct sockshim_listener *l, uint64_t deadline_ns)
{
	struct wait_state ws = {.l = l};
	volatile int ret = 0;
	const volatile uint64_t deadline = deadline_ns;
	sigset_t all;

	/* Not SIGBUS: the segment we touch meanwhile may shrink. */
	sigbus_fill_except(&all);
	real.pthread_sigmask(SIG_BLOCK, &all, &ws.saved);
	stat_max(&l->max_waiters, __atomic_add_fetch(&l->waiters, 1, __ATOMIC_RELAXED));
	pthread_cleanup_push(wait_cleanup, &ws);
	for (;;) {
		uint32_t turn = __atomic_load_n(&l->turn, __ATOMIC_ACQUIRE);
		uint64_t now;
		struct timespec slice;
		int rc;

		if (signal_interrupts(&ws.saved)) {
			ret = -EINTR;
			break;
		}
		rc = try_mutex(l);
		if (rc != EBUSY) {
			ret = rc ? -ENOLCK : 0;
			/* A signal that came while we took it would otherwise run
			 * only once the mask is back, and the accept after it would
			 * block: look once more, and give the lock back if so. */
			if (!ret && signal_interrupts(&ws.saved)) {
				pthread_mutex_unlock(mutex_of(l));
				__atomic_add_fetch(&l->turn, 1, __ATOMIC_RELEASE);
				syscall(SYS_futex, &l->turn, FUTEX_WAKE, 1, NULL, NULL, 0);
				ret = -EINTR;
			}
			break;
		}
		now = mono_ns();
		if (deadline && now >= deadline) {
			ret = -EAGAIN;
			break;
		}
		slice.tv_sec = 0;
		slice.tv_nsec = (deadline && deadline - now < (uint64_t)SLICE_NS) ? (long)(deadline - now)
										  : SLICE_NS;
		/* A shared (not private) futex: the waiters are in many
		 * processes. Signals stay blocked: they wait for the check. */
		syscall(SYS_futex, &l->turn, FUTEX_WAIT, turn, &slice, NULL, 0);
		pthread_testcancel();
	}
	pthread_cleanup_pop(1);
	return ret;
}

int accept_lock(struct sockshim_listener *l, struct sockshim_worker *w, uint64_t timeout_ns,
		uint64_t *waited_ns)
{
	uint64_t t0, now;
	int rc;

	if (!mutex_ready(l))
		return -ENOLCK;
	t0 = mono_ns();
	rc = try_mutex(l);
	if (rc == EBUSY) {
		stat_add(&l->lock_contended, 1);
		rc = wait_for_mutex(l, timeout_ns ? t0 + timeout_ns : 0);
		if (rc == -EINTR || rc == -EAGAIN)
			return rc;
	}
	if (rc) {
		shim_warn("accept lock failed (%d); accept is not serialized", rc);
		return -ENOLCK;
	}
	now = mono_ns();
	__atomic_store_n(&l->holder_pid, shim_getpid(), __ATOMIC_RELAXED);
	__atomic_store_n(&l->holder_tid, shim_gettid(), __ATOMIC_RELAXED);
	__atomic_store_n(&l->held_since_ns, now, __ATOMIC_RELAXED);
	stat_add(&l->lock_acquisitions, 1);
	stat_hist(l->wait_hist, now - t0);
	if (w)
		stat_add(&w->lock_wait_ns, now - t0);
	*waited_ns = now - t0;
	return 0;
}

void accept_unlock(struct sockshim_listener *l)
{
	uint64_t since = __atomic_load_n(&l->held_since_ns, __ATOMIC_RELAXED);

	stat_hist(l->hold_hist, mono_ns() - since);
	__atomic_store_n(&l->holder_pid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->holder_tid, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(mutex_of(l));
	__atomic_add_fetch(&l->turn, 1, __ATOMIC_RELEASE);
	if (__atomic_load_n(&l->waiters, __ATOMIC_RELAXED))
		syscall(SYS_futex, &l->turn, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static uint64_t me(void)
{
	return ((uint64_t)(uint32_t)shim_getpid() << 32) | (uint32_t)shim_gettid();
}

int accept_token_take(struct sockshim_listener *l)
{
	uint64_t self = me(), cur = __atomic_load_n(&l->poller, __ATOMIC_ACQUIRE);

	if (cur == self)
		return 1;
	/* Held by a thread that is gone (its process killed): free. */
	if (cur && !listeners_thread_gone(cur))
		return 0;
	if (!__atomic_compare_exchange_n(&l->poller, &cur, self, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return 0;
	__atomic_store_n(&l->poller_since_ns, mono_ns(), __ATOMIC_RELAXED);
	return 1;
}

void accept_token_drop(struct sockshim_listener *l)
{
	uint64_t self = me();

	__atomic_compare_exchange_n(&l->poller, &self, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}
