/* The one clock reading of the shim and the command: CLOCK_MONOTONIC for
 * the segment's timestamps, CLOCK_REALTIME for what people read. */
#ifndef SOCKSHIM_CLOCK_H
#define SOCKSHIM_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Clock ID now, in nanoseconds. */
static inline uint64_t sockshim_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
