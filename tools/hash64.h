/* The hash the command's tables share: splitmix64's finalizer for an
 * integer, and words of a key folded through it for any other key. Every
 * input bit moves every output bit, so a table may take the low bits as
 * they are. Word by word: over timewait's 176-byte group keys, a quarter
 * of the instructions of Jenkins' hash, which uthash uses by default. */
#ifndef SOCKSHIM_HASH64_H
#define SOCKSHIM_HASH64_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t hash64_u64(uint64_t v)
{
	v ^= v >> 30;
	v *= UINT64_C(0xbf58476d1ce4e5b9);
	v ^= v >> 27;
	v *= UINT64_C(0x94d049bb133111eb);
	v ^= v >> 31;
	return v;
}

static inline uint64_t hash64_bytes(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = n, w;

	for (; n >= 8; b += 8, n -= 8) {
		memcpy(&w, b, 8);
		h = hash64_u64(h ^ w);
	}
	if (n) {
		w = 0;
		memcpy(&w, b, n);
		h = hash64_u64(h ^ w);
	}
	return h;
}

#endif
