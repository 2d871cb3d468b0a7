/* A session segment on a private mapping, for unit tests of the shim's
 * modules that take their struct seg_map: anonymous shared memory (no
 * file in /dev/shm), its header written by segment.c's own seg_header_init, then
 * checked and measured by the real seg_validate. */
#ifndef SOCKSHIM_PRIVATE_SEG_H
#define SOCKSHIM_PRIVATE_SEG_H

#include <string.h>
#include <sys/mman.h>

#include "sockshim/segment.h"

/* Map a segment with a ring of RING and a ledger of LEDGER entries into
 * *M. 0, or -1 (mmap failed or the header did not validate). */
static inline int private_seg_map(struct seg_map *m, uint32_t ring, uint32_t ledger)
{
	uint64_t size = sockshim_segment_size(ring, ledger);
	struct sockshim_header *h;
	char why[256];

	memset(m, 0, sizeof(*m));
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		return -1;
	}
	m->size = size;
	h = m->base;
	seg_header_init(h, "private", ring, ledger);
	if (seg_validate(m, why, sizeof(why)) != 0) {
		munmap(m->base, size);
		m->base = NULL;
		return -1;
	}
	m->writable = 1;
	return 0;
}

static inline void private_seg_unmap(struct seg_map *m)
{
	if (m->base)
		munmap(m->base, m->size);
	memset(m, 0, sizeof(*m));
}

#endif
