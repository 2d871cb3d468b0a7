/* The per-process descriptor table: fd -> what we know of the socket.
 * A flat array indexed by fd, reserved with mmap so that only touched
 * pages cost memory. Lock-free; no allocation after fdtab_init(). */
#ifndef SOCKSHIM_FDTAB_H
#define SOCKSHIM_FDTAB_H

#include <stdint.h>

#include "export.h"
#include "sockshim/layout.h"

/* Flags of an entry: what is known of the socket in the protocol's own
 * bits (SOCKSHIM_FLAG_*, layout.h), copied into records and ledger
 * entries as they are; above them, this process's private ones. */
#define FDT_EOF_SEEN 0x100u  /* peer_eof already logged for this socket */
#define FDT_CLOEXEC 0x200u
#define FDT_NONBLOCK 0x400u
#define FDT_NO_LEDGER 0x800u /* the ledger had no room for it: do not ask again */

_Static_assert(((FDT_EOF_SEEN | FDT_CLOEXEC | FDT_NONBLOCK | FDT_NO_LEDGER) &
		SOCKSHIM_FLAGS_ALL) == 0,
	       "private flags clear of the protocol's");

/* In the inode word: tracked, but the inode was not asked for yet. socket()
 * does not pay an fstat() for it; the first call that makes the socket
 * matter (bind, listen, connect, shutdown, accept, EOF) asks. Real inode
 * numbers never have this bit. */
#define FDT_INODE_UNKNOWN (UINT64_C(1) << 63)

/* Two cache lines. inode != 0 marks a tracked descriptor and is published
 * last, so whoever sees it sees the rest. Every word is accessed
 * atomically: a thread may read an entry another is replacing. */
struct fd_entry {
	uint64_t inode;
	uint64_t flags;
	uint16_t family;
	uint16_t socktype;
	uint16_t local_port;
	uint16_t peer_port;
	uint8_t local_ip[16];
	uint8_t peer_ip[16];
	/* The socket's ledger entry + 1 (0: none yet, or no session). */
	uint32_t ledger;
	uint16_t born;     /* enum sockshim_born, as this process saw it */
	uint16_t listener; /* its listener entry + 1 (0: none, or not a listener) */
	uint64_t born_ns;  /* when it was created (CLOCK_MONOTONIC) */
	uint64_t callsite; /* return address of the call that created it */
	uint64_t spare[6];
};

_Static_assert(sizeof(struct fd_entry) == 128, "fd_entry is two cache lines");

extern SHIM_INTERNAL struct fd_entry *fdtab;
extern SHIM_INTERNAL uint32_t fdtab_capacity; /* 0 until fdtab_init succeeded */

/* Reserve room for CAPACITY descriptors. 0 or -errno. */
int fdtab_init(uint32_t capacity);

/* The hot-path test: is FD a tracked socket? Two loads, no call. */
static inline int fdtab_is_tracked(int fd)
{
	return (unsigned)fd < __atomic_load_n(&fdtab_capacity, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&fdtab[fd].inode, __ATOMIC_RELAXED) != 0;
}

/* Is A or B a tracked socket? The table's bounds and base read once: the
 * untracked path of dup2 and dup3. */
static inline int fdtab_either_tracked(int a, int b)
{
	uint32_t cap = __atomic_load_n(&fdtab_capacity, __ATOMIC_ACQUIRE);
	const struct fd_entry *t = fdtab;

	return ((unsigned)a < cap && __atomic_load_n(&t[a].inode, __ATOMIC_RELAXED) != 0) ||
	       ((unsigned)b < cap && __atomic_load_n(&t[b].inode, __ATOMIC_RELAXED) != 0);
}

/* Is FD a tracked listening socket? */
static inline int fdtab_is_listener(int fd)
{
	return fdtab_is_tracked(fd) &&
	       (__atomic_load_n(&fdtab[fd].flags, __ATOMIC_RELAXED) & SOCKSHIM_FLAG_LISTENER);
}

/* FD's ledger reference (0: none), one load. */
static inline uint32_t fdtab_ledger(int fd)
{
	if ((unsigned)fd >= __atomic_load_n(&fdtab_capacity, __ATOMIC_ACQUIRE))
		return 0;
	return __atomic_load_n(&fdtab[fd].ledger, __ATOMIC_RELAXED);
}

/* Has this process ever tracked a listener? Set for good by the first:
 * the calls that look for listeners in the program's arrays skip them
 * until then. */
extern SHIM_INTERNAL uint32_t fdtab_listeners;

static inline int fdtab_listeners_seen(void)
{
	return __atomic_load_n(&fdtab_listeners, __ATOMIC_RELAXED) != 0;
}

/* Copy FD's entry into *OUT. 1 if tracked, else 0. */
int fdtab_get(int fd, struct fd_entry *out);

/* Track FD as *E (E->inode must be non-zero). 0, or -EMFILE when FD is
 * beyond the table. */
int fdtab_set(int fd, const struct fd_entry *e);

/* Stop tracking FD; copy what it was into *OUT (may be NULL). 1 if it was
 * tracked. */
int fdtab_take(int fd, struct fd_entry *out);

/* Atomically set / clear flag bits; returns the flags before. */
uint64_t fdtab_flags_or(int fd, uint64_t bits);
uint64_t fdtab_flags_and(int fd, uint64_t mask);

/* One past the highest fd ever tracked: bounds loops over the table. */
uint32_t fdtab_high(void);

/* Descriptors that were beyond the table and passed through untracked:
 * count one more (returns the new count), or read the count. */
uint64_t fdtab_count_overflow(void);
uint64_t fdtab_overflow_count(void);

#endif
