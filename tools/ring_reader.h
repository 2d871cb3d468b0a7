/* The event ring's consumer side: reads records in ticket order from a
 * (read-only) mapping, counts exactly what it lost to overrun and to
 * writers that never finished a record. */
#ifndef SOCKSHIM_RING_READER_H
#define SOCKSHIM_RING_READER_H

#include <stdint.h>

#include "sockshim/segment.h"

/* A slot that stays half-written this long is declared torn: its writer
 * died or was stopped mid-record. Writers take well under a microsecond. */
#define RING_TORN_TIMEOUT_NS (250 * 1000000LL)

struct ring_reader {
	const struct seg_map *map;
	uint64_t cursor;     /* next ticket to read */
	uint64_t delivered;
	uint64_t lost_overrun; /* overwritten before we read them */
	uint64_t lost_torn;    /* never finished by their writer */
	uint64_t overwritten_before; /* from_oldest: records gone before we started */
	int64_t pending_since_ns; /* when the slot at cursor was first seen pending, or 0 */
};

enum ring_status {
	RING_RECORD,  /* *out holds the record of ticket cursor-1 */
	RING_LOST,    /* *lost records were lost (overrun or torn), cursor moved on */
	RING_EMPTY,   /* nothing more has been published yet */
	RING_PENDING, /* the next slot is still being written; try again later */
};

/* Start reading at the oldest record still in the ring (FROM_OLDEST) or
 * only at records published from now on. */
void ring_reader_init(struct ring_reader *r, const struct seg_map *m, int from_oldest);

/* NOW_NS is CLOCK_MONOTONIC, for torn detection; pass INT64_MAX to declare
 * every pending slot torn at once (a writer known to be dead). LOST_KIND,
 * when RING_LOST is returned, is 'o' (overrun) or 't' (torn). */
enum ring_status ring_reader_next(struct ring_reader *r, struct sockshim_record *out,
				  uint64_t *lost, char *lost_kind, int64_t now_ns);

/* The producers' head, as last published. */
uint64_t ring_reader_head(const struct ring_reader *r);

#endif
