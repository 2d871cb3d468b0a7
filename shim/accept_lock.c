/* The accept lock: a robust, process-shared pthread mutex in the listener
 * entry, taken with trylock. Waiters sleep on the mutex's own futex word,
 * with FUTEX_WAITERS set as glibc's lock does, so the holder's unlock
 * wakes one, and the kernel wakes one when the holder dies holding it
 * (its robust list): then trylock says EOWNERDEAD and we take it over.
 * To the program the wait is part of its blocking accept: signals stay
 * open, and the futex sleep ends after a handler exactly as accept's
 * sleep would (restarted under SA_RESTART, EINTR otherwise, always EINTR
 * with SO_RCVTIMEO); thread cancellation ends it as well. Never used on a
 * path the user did not ask to serialize. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "accept_lock.h"
#include "emit.h"
#include "listeners.h"
#include "log.h"

_Static_assert(sizeof(pthread_mutex_t) <= sizeof(((struct sockshim_listener *)0)->mutex.bytes),
	       "the listener's mutex field holds a pthread_mutex_t");

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

/* The mutex's futex word: glibc keeps a robust mutex's state in its first
 * int, in the kernel's robust-futex format (owner tid, FUTEX_WAITERS,
 * FUTEX_OWNER_DIED; Documentation/locking/robust-futex-ABI). */
static uint32_t *word_of(struct sockshim_listener *l)
{
	return (uint32_t *)(void *)l->mutex.bytes;
}

_Static_assert(offsetof(pthread_mutex_t, __data.__lock) == 0, "the futex word comes first");

static void wait_cleanup(void *arg)
{
	struct sockshim_listener *l = arg;

	__atomic_fetch_sub(&l->waiters, 1, __ATOMIC_RELAXED);
}

/* Sleep on the word while it is V, until DEADLINE (0: none). An
 * asynchronous cancellation point, as the accept it stands for. The
 * futex wait ends as the accept's own sleep would: restarted by the
 * kernel after a handler with SA_RESTART (no timeout), EINTR otherwise. */
static int sleep_on_word(struct sockshim_listener *l, uint32_t v, uint64_t deadline)
{
	struct timespec left, *ts = NULL;
	int old, rc;

	if (deadline) {
		uint64_t now = mono_ns(), ns = deadline > now ? deadline - now : 0;

		left.tv_sec = (time_t)(ns / 1000000000u);
		left.tv_nsec = (long)(ns % 1000000000u);
		ts = &left;
	}
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
	/* Shared (not private): the waiters are in many processes. */
	rc = (int)syscall(SYS_futex, word_of(l), FUTEX_WAIT, v, ts, NULL, 0);
	pthread_setcanceltype(old, NULL);
	return rc < 0 ? -errno : 0;
}

/* Sleep until the mutex is ours (0), the deadline passes (-EAGAIN) or a
 * signal handler ran that would end an accept (-EINTR). Waiters sleep on
 * the mutex's own futex word with FUTEX_WAITERS set, as glibc's own lock
 * does: the owner's unlock wakes one, and so does the kernel when the
 * owner dies holding it (robust list), so nothing wakes an idle pool. A
 * cancellation point: cancelled, it leaves the waiter count as it was. */
static int wait_for_mutex(struct sockshim_listener *l, uint64_t deadline_ns)
{
	volatile int ret = 0;
	const volatile uint64_t deadline = deadline_ns;
	uint32_t *word = word_of(l);

	stat_max(&l->max_waiters, __atomic_add_fetch(&l->waiters, 1, __ATOMIC_RELAXED));
	pthread_cleanup_push(wait_cleanup, l);
	for (;;) {
		uint32_t v;
		int rc = try_mutex(l);

		if (rc != EBUSY) {
			ret = rc ? -ENOLCK : 0;
			break;
		}
		if (deadline && mono_ns() >= deadline) {
			ret = -EAGAIN;
			break;
		}
		v = __atomic_load_n(word, __ATOMIC_ACQUIRE);
		if (!v || (v & FUTEX_OWNER_DIED))
			continue; /* free now, or its owner died: try again */
		if (!(v & FUTEX_WAITERS)) {
			if (!__atomic_compare_exchange_n(word, &v, v | FUTEX_WAITERS, 0,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				continue;
			v |= FUTEX_WAITERS;
		}
		rc = sleep_on_word(l, v, deadline);
		if (rc == -EINTR) {
			ret = -EINTR;
			break;
		}
	}
	pthread_cleanup_pop(1);
	/* trylock stored our tid alone: others may still sleep on the word,
	 * and glibc's unlock wakes one only if FUTEX_WAITERS is set. */
	if (!ret && __atomic_load_n(&l->waiters, __ATOMIC_RELAXED))
		__atomic_fetch_or(word, FUTEX_WAITERS, __ATOMIC_RELAXED);
	return ret;
}

int accept_lock(struct sockshim_listener *l, struct sockshim_worker *w, uint64_t timeout_ns)
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
	return 0;
}

void accept_unlock(struct sockshim_listener *l)
{
	uint64_t since = __atomic_load_n(&l->held_since_ns, __ATOMIC_RELAXED);

	stat_hist(l->hold_hist, mono_ns() - since);
	__atomic_store_n(&l->holder_pid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&l->holder_tid, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(mutex_of(l)); /* wakes a waiter: FUTEX_WAITERS */
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
