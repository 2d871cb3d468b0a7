/* The event ring's producer side: lock-free, wait-free, no syscalls. */
#ifndef SOCKSHIM_RING_H
#define SOCKSHIM_RING_H

#include "sockshim/segment.h"

/* Append REC (its stamp is ignored) to the ring of segment M. Takes one
 * ticket with an atomic add, overwrites the oldest record, never blocks.
 * Async-signal-safe. */
void ring_append(const struct seg_map *m, const struct sockshim_record *rec);

#endif
