/* Waiting, briefly, for another claimer of the same socket to publish an
 * entry of the ledger or the listener table (SOCKSHIM_INODE_CLAIMING in
 * layout.h). The wait is bounded: a claimer killed or stopped mid-fill
 * must cost the others a few milliseconds, never a hang. */
#ifndef SOCKSHIM_CLAIM_H
#define SOCKSHIM_CLAIM_H

#include <sched.h>
#include <stdint.h>
#include <time.h>

/* A fill is a few hundred nanoseconds (a memset, a dladdr): spin this
 * many times first, then yield to the claimer (preempted, or on our
 * own CPU) until CLAIM_WAIT_NS have gone by. Long enough that only a
 * claimer that is not running gets there (killed, stopped, or a signal
 * handler of its own thread claiming the socket it interrupted); short
 * enough to go unnoticed once per descriptor when that happens. */
#define CLAIM_SPINS 128
#define CLAIM_WAIT_NS 5000000ull

static inline void claim_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline uint64_t claim_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wait while the inode word *WORD reads CLAIMING (another claimer is
 * filling the entry in for our socket), for at most CLAIM_WAIT_NS. Its
 * last value: still CLAIMING means the claimer is stuck, and the caller
 * gives up (and counts it). */
static inline uint64_t claim_wait(const uint64_t *word, uint64_t claiming)
{
	uint64_t k, deadline = 0, now;
	unsigned spins = 0;

	for (;;) {
		k = __atomic_load_n(word, __ATOMIC_ACQUIRE);
		if (k != claiming)
			return k;
		if (++spins < CLAIM_SPINS) {
			claim_relax();
			continue;
		}
		now = claim_clock_ns();
		if (!deadline)
			deadline = now + CLAIM_WAIT_NS;
		else if (now >= deadline)
			return k;
		sched_yield();
	}
}

#endif
