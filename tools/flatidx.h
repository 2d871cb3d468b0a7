/* An index of array positions by a 64-bit hash of their keys: open
 * addressing in one flat array, sized once for the number of entries,
 * each slot the position and a part of its hash, so that a look-up reads
 * the entries whose hash matches only. For the tables of tens of
 * thousands of sockets the readers build once and search often (the
 * ledger by inode, by four addresses, the kernel's dumps), where uthash's
 * chains of up to ten entries, each a cache miss, were a fifth of
 * `timewait`'s time. Keys and their comparison stay the caller's. */
#ifndef SOCKSHIM_FLATIDX_H
#define SOCKSHIM_FLATIDX_H

#include <stddef.h>
#include <stdint.h>

#define FLATIDX_END UINT32_MAX

struct flatidx {
	uint64_t *slot; /* 0 empty, else (hash tag << 32) | (position + 1) */
	size_t mask;
};

/* A look-up under way: where it is, and what it looks for. */
struct flatidx_walk {
	size_t i;
	uint32_t tag;
};

/* Room for N entries. 0 or -ENOMEM. */
int flatidx_init(struct flatidx *x, size_t n);
void flatidx_free(struct flatidx *x);

/* Add position POS (< FLATIDX_END - 1) under HASH. At most the N given to
 * flatidx_init. */
void flatidx_put(struct flatidx *x, uint64_t hash, uint32_t pos);

/* The positions added under HASH (and perhaps some others: compare the
 * keys), one per call, then FLATIDX_END. */
uint32_t flatidx_first(const struct flatidx *x, uint64_t hash, struct flatidx_walk *w);
uint32_t flatidx_next(const struct flatidx *x, struct flatidx_walk *w);

/* Make the position the walk W last returned POS instead. */
void flatidx_replace(struct flatidx *x, const struct flatidx_walk *w, uint32_t pos);

/* Hashes of keys: of an integer, and of N bytes. */
uint64_t flatidx_hash_u64(uint64_t v);
uint64_t flatidx_hash_bytes(const void *p, size_t n);

#endif
