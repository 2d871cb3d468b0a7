/* See flatidx.h. Linear probing over a power-of-two array at most half
 * full; the slot index is the low bits of a well-mixed hash, the tag its
 * high half. Nothing is ever removed, so a walk ends at the first empty
 * slot. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "flatidx.h"
#include "hash64.h"

#define MIN_SLOTS 16

int flatidx_init(struct flatidx *x, size_t n)
{
	size_t size = MIN_SLOTS;

	while (size < 2 * n) {
		if (size > SIZE_MAX / 4)
			return -ENOMEM;
		size *= 2;
	}
	x->slot = calloc(size, sizeof(*x->slot));
	if (!x->slot)
		return -ENOMEM;
	x->mask = size - 1;
	return 0;
}

void flatidx_free(struct flatidx *x)
{
	free(x->slot);
	x->slot = NULL;
	x->mask = 0;
}

static uint64_t slot_of(uint32_t tag, uint32_t pos)
{
	return (uint64_t)tag << 32 | (uint64_t)(pos + 1);
}

void flatidx_put(struct flatidx *x, uint64_t hash, uint32_t pos)
{
	size_t i = (size_t)hash & x->mask;

	while (x->slot[i])
		i = (i + 1) & x->mask;
	x->slot[i] = slot_of((uint32_t)(hash >> 32), pos);
}

uint32_t flatidx_next(const struct flatidx *x, struct flatidx_walk *w)
{
	uint64_t s;

	if (!x->slot)
		return FLATIDX_END;
	while ((s = x->slot[w->i])) {
		w->i = (w->i + 1) & x->mask;
		if ((uint32_t)(s >> 32) == w->tag)
			return (uint32_t)s - 1;
	}
	return FLATIDX_END;
}

uint32_t flatidx_first(const struct flatidx *x, uint64_t hash, struct flatidx_walk *w)
{
	w->i = (size_t)hash & x->mask;
	w->tag = (uint32_t)(hash >> 32);
	return flatidx_next(x, w);
}

void flatidx_replace(struct flatidx *x, const struct flatidx_walk *w, uint32_t pos)
{
	x->slot[(w->i - 1) & x->mask] = slot_of(w->tag, pos);
}

uint64_t flatidx_hash_u64(uint64_t v)
{
	return hash64_u64(v);
}

uint64_t flatidx_hash_bytes(const void *p, size_t n)
{
	return hash64_bytes(p, n);
}
