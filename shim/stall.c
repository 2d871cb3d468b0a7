/* Stall detection for the accept lock's and the poll token's waiters
 * (stall.h): a look at the listener's queue and a clock, never a wait. */
#include <poll.h>

#include "real.h"
#include "stall.h"

/* How long connections may wait while the lock's (or token's) holder,
 * alive and not stopped, takes none of them, before the others stop
 * waiting for it. A holder with a connection ready returns from accept in
 * microseconds; this only catches one that does not run at all. */
#define STALL_NS (250 * 1000000LL)

int queue_waiting(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return real.poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

int stalled(struct stall *s, uint32_t word, uint64_t progress, uint64_t now)
{
	if (s->word != word || s->progress != progress || !s->since_ns) {
		s->word = word;
		s->progress = progress;
		s->since_ns = now;
		return 0;
	}
	return now - s->since_ns >= (uint64_t)STALL_NS;
}
