/* See bigmem.h. malloc serves blocks this large with a mapping of their
 * own, so the advice covers this block alone; before the first touch, so
 * the faults that fill it take huge pages. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bigmem.h"

#define HUGE_SIZE (2UL << 20)

static void hint_huge(void *p, size_t size)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t head, len;

	if (!p || size < HUGE_SIZE || page <= 0)
		return;
	/* The whole pages inside the block. */
	head = (size_t)(-(uintptr_t)p % (uintptr_t)page);
	len = (size - head) / (size_t)page * (size_t)page;
	if (len)
		(void)madvise((char *)p + head, len, MADV_HUGEPAGE);
}

void *big_calloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p)
		hint_huge(p, n * size); /* calloc checked the product */
	return p;
}

void *big_realloc(void *p, size_t size)
{
	void *q = realloc(p, size);

	hint_huge(q, size);
	return q;
}
