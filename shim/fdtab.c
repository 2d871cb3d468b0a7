/* Descriptor table. The slot of an fd is written only by the thread that
 * just got the fd from the kernel or is closing it, so the kernel's fd
 * lifecycle serializes writers; readers use atomic word loads. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "fdtab.h"
#include "sockshim/layout.h"

#define ENTRY_WORDS (sizeof(struct fd_entry) / sizeof(uint64_t))

/* The table before fdtab_init: one entry, never written (fdtab_set and
 * the flag updates test fdtab_capacity, 0 until then). */
static struct fd_entry no_table[1];

struct fd_entry *fdtab = no_table;
uint32_t fdtab_capacity;
uint32_t fdtab_mask;
static uint32_t high;
static uint64_t overflow;

int fdtab_init(uint32_t capacity)
{
	void *p;

	if (fdtab_capacity)
		return 0;
	if (!capacity || (capacity & (capacity - 1)))
		return -EINVAL; /* fdtab_mask must be capacity - 1 */
	/* MAP_NORESERVE: untouched pages cost nothing; reads of untouched
	 * pages map the shared zero page. */
	p = mmap(NULL, (size_t)capacity * sizeof(struct fd_entry), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	__atomic_store_n(&fdtab, (struct fd_entry *)p, __ATOMIC_RELAXED);
	/* The table before its mask and capacity: see fdtab_maybe_inode. */
	__atomic_store_n(&fdtab_mask, capacity - 1, __ATOMIC_RELEASE);
	__atomic_store_n(&fdtab_capacity, capacity, __ATOMIC_RELEASE);
	return 0;
}

int fdtab_get(int fd, struct fd_entry *out)
{
	const sockshim_word *src;
	sockshim_word *dst = (sockshim_word *)out;
	size_t i;

	if ((unsigned)fd >= fdtab_capacity)
		return 0;
	src = (const sockshim_word *)&fdtab[fd];
	dst[0] = __atomic_load_n(&src[0], __ATOMIC_ACQUIRE);
	if (!dst[0] || dst[0] == FDT_INODE_SHIM_OWN)
		return 0;
	/* On every socket's path (socket, close, bind, connect...): unrolled,
	 * as ring_append's copy, two instructions a word instead of five. */
#pragma GCC unroll 16
	for (i = 1; i < ENTRY_WORDS; i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	return 1;
}

uint32_t fdtab_listeners;

static void note_listener(uint64_t flags)
{
	if ((flags & SOCKSHIM_FLAG_LISTENER) && !fdtab_listeners_seen())
		__atomic_store_n(&fdtab_listeners, 1, __ATOMIC_RELAXED);
}

int fdtab_set(int fd, const struct fd_entry *e)
{
	const sockshim_word *src = (const sockshim_word *)e;
	sockshim_word *dst;
	uint32_t h;
	size_t i;

	if ((unsigned)fd >= fdtab_capacity)
		return -EMFILE;
	note_listener(e->flags);
	dst = (sockshim_word *)&fdtab[fd];
#pragma GCC unroll 16 /* as in fdtab_get */
	for (i = 1; i < ENTRY_WORDS; i++)
		__atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED);
	__atomic_store_n(&dst[0], src[0], __ATOMIC_RELEASE);
	h = __atomic_load_n(&high, __ATOMIC_RELAXED);
	while ((uint32_t)fd >= h &&
	       !__atomic_compare_exchange_n(&high, &h, (uint32_t)fd + 1, 1, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED)) {
	}
	return 0;
}

int fdtab_set_own(int fd)
{
	struct fd_entry e;

	memset(&e, 0, sizeof(e));
	e.inode = FDT_INODE_SHIM_OWN;
	return fdtab_set(fd, &e);
}

int fdtab_take_own(int fd)
{
	uint64_t own = FDT_INODE_SHIM_OWN;

	if ((unsigned)fd >= fdtab_capacity)
		return 0;
	return __atomic_compare_exchange_n(&fdtab[fd].inode, &own, 0, 0, __ATOMIC_ACQ_REL,
					   __ATOMIC_RELAXED);
}

int fdtab_take(int fd, struct fd_entry *out)
{
	struct fd_entry tmp;

	if (!fdtab_get(fd, out ? out : &tmp))
		return 0;
	/* Only the thread that clears the inode reports the drop. */
	return __atomic_exchange_n(&fdtab[fd].inode, 0, __ATOMIC_ACQ_REL) != 0;
}

uint64_t fdtab_flags_or(int fd, uint64_t bits)
{
	if ((unsigned)fd >= fdtab_capacity)
		return 0;
	note_listener(bits);
	return __atomic_fetch_or(&fdtab[fd].flags, bits, __ATOMIC_RELAXED);
}

uint64_t fdtab_flags_and(int fd, uint64_t mask)
{
	if ((unsigned)fd >= fdtab_capacity)
		return 0;
	return __atomic_fetch_and(&fdtab[fd].flags, mask, __ATOMIC_RELAXED);
}

uint32_t fdtab_high(void)
{
	return __atomic_load_n(&high, __ATOMIC_RELAXED);
}

uint64_t fdtab_count_overflow(void)
{
	return __atomic_add_fetch(&overflow, 1, __ATOMIC_RELAXED);
}

uint64_t fdtab_overflow_count(void)
{
	return __atomic_load_n(&overflow, __ATOMIC_RELAXED);
}
