/* The bounded wait for another claimer of the same socket (claim.h). Only
 * on the slow path: a claim that finds its socket's entry being filled in. */
#include <errno.h>
#include <sched.h>

#include "claim.h"
#include "emit.h"
#include "sockshim/clock.h"
#include "sockshim/layout.h"
#include "sockshim/thread_state.h"

static void claim_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Can the claimer TID still finish its fill? Not if it is dead or
 * stopped, nor if it cannot be told (no /proc): then the wait must end. */
static int claimer_runs(int32_t tid)
{
	int state = thread_state((pid_t)tid);

	return state > 0 && !thread_state_dead(state) && !thread_state_stopped(state);
}

uint64_t claim_wait(const uint64_t *word, uint64_t inode)
{
	uint64_t k, start = 0, look = 0, now;
	unsigned spins = 0;
	int saved = errno;

	for (;;) {
		k = __atomic_load_n(word, __ATOMIC_ACQUIRE);
		if (!sockshim_inode_claimed_for(k, inode))
			break;
		/* Our own thread, interrupted mid-fill: it cannot finish
		 * while we wait. */
		if (sockshim_inode_claimer(k) == shim_gettid())
			break;
		if (++spins < CLAIM_SPINS) {
			claim_relax();
			continue;
		}
		now = sockshim_clock_ns(CLOCK_MONOTONIC);
		if (!start) {
			start = now;
			look = now + CLAIM_WAIT_NS;
		} else if (now >= look) {
			if (now - start >= CLAIM_LIVE_WAIT_NS ||
			    !claimer_runs(sockshim_inode_claimer(k))) {
				/* A claimer that ended may have published
				 * just before: the word as it is now. */
				k = __atomic_load_n(word, __ATOMIC_ACQUIRE);
				break;
			}
			look = now + CLAIM_WAIT_NS;
		}
		sched_yield();
	}
	errno = saved;
	return k;
}
