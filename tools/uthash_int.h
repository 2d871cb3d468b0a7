/* uthash with cheap hashes: for the integer keys the command uses (socket
 * inodes, pids) one multiply instead of Jenkins' mix, which was a tenth
 * of closewait's time over 10,000 sockets; for other keys (strings,
 * structs) hash64.h's word-at-a-time hash, a quarter of Jenkins'
 * instructions (timewait's group keys are 176 bytes). Include this
 * instead of <uthash.h>, everywhere a table is built or searched, so both
 * sides hash alike. */
#ifndef SOCKSHIM_UTHASH_INT_H
#define SOCKSHIM_UTHASH_INT_H

#include <stdint.h>
#include <string.h>

#include "hash64.h"

/* Fibonacci hashing: the high half of the product mixes every key bit. */
static inline unsigned uthash_int_hash(const void *key, unsigned len)
{
	uint64_t v = 0;

	memcpy(&v, key, len);
	return (unsigned)((v * UINT64_C(0x9E3779B97F4A7C15)) >> 32);
}

#define HASH_FUNCTION(keyptr, keylen, hashv)                                          \
	do {                                                                          \
		if ((keylen) == 8 || (keylen) == 4)                                   \
			(hashv) = uthash_int_hash((keyptr), (unsigned)(keylen));      \
		else                                                                  \
			(hashv) = (unsigned)hash64_bytes((keyptr), (size_t)(keylen)); \
	} while (0)

#include <uthash.h>

#endif
