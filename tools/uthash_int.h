/* uthash with a cheap hash for the integer keys the command uses (socket
 * inodes, pids): one multiply instead of Jenkins' mix, which was a tenth
 * of closewait's time over 10,000 sockets. Other key lengths (strings,
 * structs) keep Jenkins. Include this instead of <uthash.h>, everywhere
 * a table is built or searched, so both sides hash alike. */
#ifndef SOCKSHIM_UTHASH_INT_H
#define SOCKSHIM_UTHASH_INT_H

#include <stdint.h>
#include <string.h>

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
			HASH_JEN((keyptr), (keylen), (hashv));                        \
	} while (0)

#include <uthash.h>

#endif
