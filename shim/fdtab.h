/* The per-process descriptor table: fd -> what we know of the socket.
 * A flat array indexed by fd, reserved with mmap so that only touched
 * pages cost memory. Lock-free; no allocation after fdtab_init(). */
#ifndef SOCKSHIM_FDTAB_H
#define SOCKSHIM_FDTAB_H

#include <stddef.h>
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
#define FDT_EPIPE_SEEN 0x1000u /* a write's EPIPE already in the ledger */

_Static_assert(((FDT_EOF_SEEN | FDT_CLOEXEC | FDT_NONBLOCK | FDT_NO_LEDGER | FDT_EPIPE_SEEN) &
		SOCKSHIM_FLAGS_ALL) == 0,
	       "private flags clear of the protocol's");

/* In the inode word: tracked, but the inode was not asked for yet. socket()
 * does not pay an fstat() for it; the first call that makes the socket
 * matter (bind, listen, connect, shutdown, accept, EOF) asks. Real inode
 * numbers never have this bit. */
#define FDT_INODE_UNKNOWN (UINT64_C(1) << 63)

/* The inode word of a descriptor that is the shim's own, not the
 * program's (a doorbell: shim/doorbell.c). Its non-zero word sends the
 * program's close, close_range, dup2 and dup3 on that number to the slow
 * paths, where track_forget hears that the number is no longer ours; every
 * question about sockets (fdtab_is_tracked, fdtab_get) says it is none.
 * Socket inode numbers never have bit 62. */
#define FDT_INODE_SHIM_OWN (UINT64_C(1) << 62)

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

/* The table. Before fdtab_init it is one empty entry and fdtab_mask is 0,
 * so that the hot-path test below may read entry fd & fdtab_mask at any
 * time without a bounds test. */
extern SHIM_INTERNAL struct fd_entry *fdtab;
extern SHIM_INTERNAL uint32_t fdtab_capacity; /* 0 until fdtab_init succeeded */
extern SHIM_INTERNAL uint32_t fdtab_mask;     /* fdtab_capacity - 1, 0 until then */

/* Reserve room for CAPACITY descriptors, a power of two. 0 or -errno. */
int fdtab_init(uint32_t capacity);

/* The inode word of entry FD of table T (FD within it). Spelled as a
 * shifted byte offset from the base on purpose: GCC (12) then folds base +
 * offset into the address of the atomic load; from &t[fd].inode, or a
 * multiplication, it spends one add more on every hot path. */
#define FDTAB_ENTRY_SHIFT 7
_Static_assert(sizeof(struct fd_entry) == 1u << FDTAB_ENTRY_SHIFT, "the shift is the size");
_Static_assert(offsetof(struct fd_entry, inode) == 0, "the inode word opens the entry");

static inline const uint64_t *fdtab_inode_word(const struct fd_entry *t, unsigned fd)
{
	return (const uint64_t *)((const char *)t + ((uintptr_t)fd << FDTAB_ENTRY_SHIFT));
}

/* FD's inode word, 0 for a number beyond the table. */
static inline uint64_t fdtab_word(int fd)
{
	if ((unsigned)fd >= __atomic_load_n(&fdtab_capacity, __ATOMIC_ACQUIRE))
		return 0;
	return __atomic_load_n(fdtab_inode_word(fdtab, (unsigned)fd), __ATOMIC_RELAXED);
}

/* Is FD a tracked socket? Exact, for any number. */
static inline int fdtab_is_tracked(int fd)
{
	uint64_t w = fdtab_word(fd);

	return w != 0 && w != FDT_INODE_SHIM_OWN;
}

/* Has FD an entry: a tracked socket, or one of the shim's own numbers?
 * (What a close of FD must tell track_forget.) */
static inline int fdtab_has_entry(int fd)
{
	return fdtab_word(fd) != 0;
}

/* The hot-path test of the exported wrappers: might FD be a tracked
 * socket? It reads entry FD & fdtab_mask: no bounds test, one branch (the
 * caller's). "No" is exact: a number beyond the table (negative, or at or
 * above its capacity) is never tracked. "Yes" may name another
 * descriptor's entry for such a number, so the slow path that follows asks
 * exactly (fdtab_is_tracked, fdtab_get). The mask is read first (acquire,
 * released by fdtab_init after the table): a non-zero mask comes with its
 * table; a zero one indexes entry 0, there in the old table and the new. */
static inline uint64_t fdtab_maybe_inode(const struct fd_entry *t, uint32_t mask, int fd)
{
	return __atomic_load_n(fdtab_inode_word(t, (unsigned)fd & mask), __ATOMIC_RELAXED);
}

static inline int fdtab_maybe_tracked(int fd)
{
	uint32_t mask = __atomic_load_n(&fdtab_mask, __ATOMIC_ACQUIRE);

	return fdtab_maybe_inode(__atomic_load_n(&fdtab, __ATOMIC_RELAXED), mask, fd) != 0;
}

/* Might A or B be a tracked socket? (dup2, dup3: the table read once, both
 * entries tested with one branch.) */
static inline int fdtab_maybe_either(int a, int b)
{
	uint32_t mask = __atomic_load_n(&fdtab_mask, __ATOMIC_ACQUIRE);
	const struct fd_entry *t = __atomic_load_n(&fdtab, __ATOMIC_RELAXED);

	return (fdtab_maybe_inode(t, mask, a) | fdtab_maybe_inode(t, mask, b)) != 0;
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

/* FD's listener entry + 1 when FD is a tracked listening socket whose
 * entry is known; 0 otherwise (not one, or its entry not looked up yet:
 * then fdtab_get tells which). Two loads, no copy of the entry. */
static inline uint32_t fdtab_listener_ref(int fd)
{
	if (!fdtab_is_listener(fd))
		return 0;
	return __atomic_load_n(&fdtab[fd].listener, __ATOMIC_RELAXED);
}

/* Has this process ever tracked a listener? Set for good by the first:
 * the calls that look for listeners in the program's arrays skip them
 * until then. */
extern SHIM_INTERNAL uint32_t fdtab_listeners;

static inline int fdtab_listeners_seen(void)
{
	return __atomic_load_n(&fdtab_listeners, __ATOMIC_RELAXED) != 0;
}

/* Mark FD as the shim's own (FDT_INODE_SHIM_OWN). 0, or -EMFILE when FD
 * is beyond the table. */
int fdtab_set_own(int fd);

/* FD was the shim's own: unmark it. 1 if it was (only one caller sees 1). */
int fdtab_take_own(int fd);

/* Copy FD's entry into *OUT. 1 if a tracked socket, else 0. */
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
