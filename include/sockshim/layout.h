/* The shared-memory layout of a sockshim session: the one source of truth
 * for the shim (writer) and the sockshim command (reader).
 * It holds no pointers: fixed-width fields, offsets and indices only. Every
 * reader bounds-checks what it reads here, since any process may write it. */
#ifndef SOCKSHIM_LAYOUT_H
#define SOCKSHIM_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* A 64-bit word that may alias any type: records and table entries are
 * copied word by word with atomic accesses, which must not fall foul of
 * the compiler's type-based alias analysis. */
typedef uint64_t __attribute__((may_alias)) sockshim_word;

/* "SOCKSHM1" read as a little-endian integer. */
#define SOCKSHIM_MAGIC UINT64_C(0x314d48534b434f53)
/* Bumped on any change of a structure below; readers refuse other versions. */
#define SOCKSHIM_LAYOUT_VERSION 15u

/* Segments live in /dev/shm as sockshim.<uid>.<session>. */
#define SOCKSHIM_SHM_DIR "/dev/shm"
#define SOCKSHIM_SHM_PREFIX "sockshim."
/* Session names: [A-Za-z0-9_.-], not starting with a dot, at most this long. */
#define SOCKSHIM_SESSION_MAX 48
#define SOCKSHIM_DEFAULT_SESSION "default"

/* Ring capacity in records: a power of two. The minimum keeps a writer that
 * is preempted mid-record from being lapped by the others in practice; the
 * maximum keeps a segment under 512 MiB. */
#define SOCKSHIM_RING_MIN_SHIFT 10
#define SOCKSHIM_RING_MAX_SHIFT 22
#define SOCKSHIM_RING_DEFAULT_SHIFT 16

enum sockshim_event_type {
	SOCKSHIM_EV_NONE = 0,
	SOCKSHIM_EV_SOCKET,   /* socket() or one end of socketpair() */
	SOCKSHIM_EV_BIND,
	SOCKSHIM_EV_LISTEN,
	SOCKSHIM_EV_ACCEPT,   /* fd/inode/addresses: the new connection */
	SOCKSHIM_EV_CONNECT,
	SOCKSHIM_EV_SHUTDOWN,
	SOCKSHIM_EV_CLOSE,
	SOCKSHIM_EV_PEER_EOF, /* a read returned 0 on a tracked stream socket */
	SOCKSHIM_EV_DUP,      /* dup, dup2, dup3, F_DUPFD, F_DUPFD_CLOEXEC */
	SOCKSHIM_EV_FORK,     /* written by the child; pid is the parent's */
	SOCKSHIM_EV_EXEC,     /* written before the image is replaced */
	SOCKSHIM_EV_EXIT,
	SOCKSHIM_EV_INHERIT,  /* a socket found open when the shim started */
	SOCKSHIM_EV_COUNT
};

/* Where the socket's call came from, for close: which wrapper dropped it. */
enum sockshim_close_via {
	SOCKSHIM_CLOSE_VIA_CLOSE = 0,
	SOCKSHIM_CLOSE_VIA_CLOSE_RANGE = 1,
	SOCKSHIM_CLOSE_VIA_DUP2 = 2, /* replaced by dup2/dup3 */
	SOCKSHIM_CLOSE_VIA_EXEC = 3, /* close-on-exec */
	SOCKSHIM_CLOSE_VIA_EXIT = 4, /* the process exited holding it */
	SOCKSHIM_CLOSE_VIA_DEATH = 5, /* the process died holding it (its reaper tells) */
	/* Gone from /proc: closed where the shim could not see (a raw system
	 * call, an image without the shim), found so by a reader that checked
	 * the kernel and the holder's /proc/PID/fd/FD, and reclaimed. */
	SOCKSHIM_CLOSE_VIA_GONE = 6,
	SOCKSHIM_CLOSE_VIA_COUNT
};

/* The name of a close's way (enum sockshim_close_via), NULL out of range:
 * the one table every reader prints from. */
static inline const char *sockshim_close_via_name(unsigned via)
{
	static const char *const names[SOCKSHIM_CLOSE_VIA_COUNT] = {
		"close", "close_range", "dup2", "exec", "exit", "death", "gone",
	};

	return via < SOCKSHIM_CLOSE_VIA_COUNT ? names[via] : NULL;
}

#define SOCKSHIM_EXEC_PATH_MAX 36

/* One lifecycle event: 128 bytes, two cache lines. 64 bytes cannot hold two
 * IPv6 addresses with their ports next to the identifying fields.
 * Addresses are in network byte order, ports in host byte order. */
struct sockshim_record {
	/* 0: never written; 2t+1: ticket t being written; 2t+2: t published. */
	uint64_t stamp;
	uint64_t ts_ns; /* CLOCK_MONOTONIC */
	int32_t pid;
	int32_t tid;
	int32_t fd;
	uint16_t type;   /* enum sockshim_event_type */
	uint16_t family; /* AF_INET, AF_INET6, AF_UNIX, or 0 when unknown */
	int32_t ret;     /* what the call returned */
	int32_t err;     /* errno when ret < 0, else 0 */
	uint64_t inode;  /* the socket's inode, 0 when unknown */
	uint8_t local_ip[16];
	uint8_t peer_ip[16];
	uint16_t local_port;
	uint16_t peer_port;
	uint16_t socktype; /* SOCK_STREAM, SOCK_DGRAM, ... */
	uint16_t flags;    /* SOCKSHIM_FLAG_* */
	uint32_t check;    /* sockshim_record_check() of this record, see there */
	union {
		/* 4-aligned, so the union can follow the 4-byte check. */
		struct __attribute__((packed, aligned(4))) {
			int32_t listen_fd;
			uint64_t listen_inode;
		} accept;
		struct {
			int32_t newfd;
			int32_t cloexec;
		} dup;
		struct {
			int32_t how;
		} shutdown;
		struct {
			int32_t child_pid;
		} fork;
		struct {
			int32_t via; /* enum sockshim_close_via */
			/* References to the socket in the session before and after
			 * this close (-1: not known). After 0: this close released
			 * the connection (FIN or RST sent); else it had no effect
			 * on the wire. */
			int32_t refs_before;
			int32_t refs_after;
		} close;
		struct {
			int32_t pair_fd; /* socketpair: the other end */
		} socket;
		char exec_path[SOCKSHIM_EXEC_PATH_MAX]; /* truncated, NUL-padded */
	} detail;
};

/* What is known of a socket: the flags of records and of ledger
 * entries alike, and the low bits of the shim's own descriptor table, so
 * that each copies them from the other unchanged. */
#define SOCKSHIM_FLAG_PEER_KNOWN 0x1u  /* peer_ip/peer_port are meaningful */
#define SOCKSHIM_FLAG_LOCAL_KNOWN 0x2u /* local_ip/local_port are meaningful */
#define SOCKSHIM_FLAG_LISTENER 0x4u    /* the socket is a listener */
/* SO_LINGER {on, 0} is set: the last close resets the connection (RST,
 * unsent data lost, no TIME_WAIT). Set and cleared by setsockopt in the
 * ledger entry, whoever holds it; the address bits never touch it. */
#define SOCKSHIM_FLAG_LINGER_RESET 0x8u
#define SOCKSHIM_FLAGS_ADDR 0x7u /* what bind, listen and connect tell */
#define SOCKSHIM_FLAGS_ALL 0xfu

_Static_assert(sizeof(struct sockshim_record) == 128, "record is two cache lines");
_Static_assert(sizeof(((struct sockshim_record *)0)->detail) == 36, "detail size");
_Static_assert(__builtin_offsetof(struct sockshim_record, check) == 88, "check offset");
_Static_assert(__builtin_offsetof(struct sockshim_record, detail) +
		       sizeof(((struct sockshim_record *)0)->detail) == sizeof(struct sockshim_record),
	       "no padding after detail");

/* The word that holds the check, and the check's place in it. */
#define SOCKSHIM_CHECK_WORD (__builtin_offsetof(struct sockshim_record, check) / 8)
#define SOCKSHIM_CHECK_BYTE (__builtin_offsetof(struct sockshim_record, check) % 8)

/* The check word W with the check itself zeroed. */
static inline uint64_t sockshim_check_word_masked(uint64_t w)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return w & ~(UINT64_C(0xffffffff) << (8 * SOCKSHIM_CHECK_BYTE));
#else
	return w & ~(UINT64_C(0xffffffff) << (8 * (4 - SOCKSHIM_CHECK_BYTE)));
#endif
}

/* The check of record R published under TICKET, over every word but the
 * stamp, the check field counting as zero. A writer preempted for a whole
 * lap of the ring can store late words over a newer record, or publish an
 * older stamp over it; the check lets a reader refuse what it then finds
 * instead of delivering a mixed record. Fletcher-style: two add chains,
 * position-sensitive, a few cycles per word. */
static inline uint32_t sockshim_record_check(const struct sockshim_record *r, uint64_t ticket)
{
	const sockshim_word *w = (const sockshim_word *)r;
	uint64_t a = ticket, b = ~ticket, x;
	unsigned i;

#pragma GCC unroll 16
	for (i = 1; i < sizeof(*r) / sizeof(uint64_t); i++) {
		x = i == SOCKSHIM_CHECK_WORD ? sockshim_check_word_masked(w[i]) : w[i];
		a += x;
		b += a;
	}
	x = a ^ ((b << 29) | (b >> 35));
	return (uint32_t)(x ^ (x >> 32));
}

/* ---- The inode word of a ledger or listener entry ----
 * 0: never used. An inode: the entry of that socket. Being filled in:
 * SOCKSHIM_INODE_CLAIMING (bit 63), the claimer's thread id in bits 32-62
 * and the inode in bits 0-31; the claimer stores the inode alone when
 * done. Naming the inode lets a second claimer of the same socket wait
 * for that entry instead of taking another; naming the claimer lets it
 * tell a claimer that is only preempted (worth waiting for) from one that
 * is dead or stopped (not). Socket inodes are 32-bit (the kernel's sockfs
 * numbers them with get_next_ino, an unsigned int), thread ids below 2^31:
 * the shim refuses a key above SOCKSHIM_INODE_MAX. */
#define SOCKSHIM_INODE_CLAIMING (UINT64_C(1) << 63)
#define SOCKSHIM_INODE_MAX UINT64_C(0xffffffff)
#define SOCKSHIM_CLAIMER_SHIFT 32
#define SOCKSHIM_CLAIMER_MAX UINT64_C(0x7fffffff)

/* The inode word of an entry being filled in for INODE by thread TID. */
static inline uint64_t sockshim_inode_claiming(uint64_t inode, int32_t tid)
{
	return SOCKSHIM_INODE_CLAIMING |
	       ((uint64_t)(uint32_t)tid & SOCKSHIM_CLAIMER_MAX) << SOCKSHIM_CLAIMER_SHIFT |
	       (inode & SOCKSHIM_INODE_MAX);
}

/* Is W, an entry's inode word, an entry being filled in? */
static inline int sockshim_inode_is_claiming(uint64_t w)
{
	return (w & SOCKSHIM_INODE_CLAIMING) != 0;
}

/* The inode W is for, published or being filled in (0: never used). */
static inline uint64_t sockshim_inode_of(uint64_t w)
{
	return w & SOCKSHIM_INODE_MAX;
}

/* The thread filling in an entry whose inode word is W (claiming). */
static inline int32_t sockshim_inode_claimer(uint64_t w)
{
	return (int32_t)((w >> SOCKSHIM_CLAIMER_SHIFT) & SOCKSHIM_CLAIMER_MAX);
}

/* Is W INODE's entry being filled in, by anyone? */
static inline int sockshim_inode_claimed_for(uint64_t w, uint64_t inode)
{
	return sockshim_inode_is_claiming(w) && sockshim_inode_of(w) == inode;
}

/* Does W name a published entry (an inode, neither 0 nor claiming)?
 * Also what a key must be. */
static inline int sockshim_inode_in_use(uint64_t w)
{
	return w != 0 && w <= SOCKSHIM_INODE_MAX;
}

/* ---- The reference ledger: one entry per socket, keyed by inode. ----
 * Open addressing: a socket lives within SOCKSHIM_LEDGER_PROBE entries of
 * slot (hash(inode) & (capacity - 1)). An entry is claimed by a CAS of its
 * inode word from 0 (or, for a released socket's entry, from the old
 * inode) to sockshim_inode_claiming(inode), then published as the inode;
 * never locked: holders are claimed slot by slot with CAS, history steps by
 * an atomic index. Readers (the command) get a snapshot that may be a
 * moment stale, and reconcile it with /proc and the kernel.
 * The inode words and release times live in an index of their own
 * (struct sockshim_ledger_key, layout 12), slot i for entry i: a lookup or
 * a claim reads its probe window there, 32 keys in 8 cache lines, and
 * touches a 21-line entry only once it is the socket's. */

#define SOCKSHIM_LEDGER_MIN_SHIFT 8
#define SOCKSHIM_LEDGER_MAX_SHIFT 20
#define SOCKSHIM_LEDGER_DEFAULT_SHIFT 14
#define SOCKSHIM_LEDGER_DEFAULT (1u << SOCKSHIM_LEDGER_DEFAULT_SHIFT)
#define SOCKSHIM_LEDGER_PROBE 32
#define SOCKSHIM_HOLDERS 8
#define SOCKSHIM_STEPS 16
#define SOCKSHIM_STEPS_RESTART (1u << 31) /* see struct sockshim_sock */
/* A module path's room (112: with born_comm, an entry stays 21 cache lines). */
#define SOCKSHIM_MODULE_MAX 112
/* Other holders a shutdown names (the count says if there were more). */
#define SOCKSHIM_SHUT_OTHERS 5

/* V is a power of two in [2^MIN_SHIFT, 2^MAX_SHIFT]: the ring's and the
 * ledger's capacities are (their indices are masks). */
static inline int sockshim_pow2_within(uint64_t v, unsigned min_shift, unsigned max_shift)
{
	return v >= (1ull << min_shift) && v <= (1ull << max_shift) && (v & (v - 1)) == 0;
}

static inline int sockshim_ring_capacity_ok(uint64_t v)
{
	return sockshim_pow2_within(v, SOCKSHIM_RING_MIN_SHIFT, SOCKSHIM_RING_MAX_SHIFT);
}

static inline int sockshim_ledger_capacity_ok(uint64_t v)
{
	return sockshim_pow2_within(v, SOCKSHIM_LEDGER_MIN_SHIFT, SOCKSHIM_LEDGER_MAX_SHIFT);
}

/* How a socket came into the session. */
enum sockshim_born {
	SOCKSHIM_BORN_UNKNOWN = 0,
	SOCKSHIM_BORN_SOCKET,     /* socket(); connect() turns it into _CONNECT */
	SOCKSHIM_BORN_ACCEPT,
	SOCKSHIM_BORN_CONNECT,
	SOCKSHIM_BORN_SOCKETPAIR,
	SOCKSHIM_BORN_SCM_RIGHTS, /* first seen arriving over SCM_RIGHTS */
	SOCKSHIM_BORN_INHERITED,  /* found open at start-up, from outside the session */
	SOCKSHIM_BORN_COUNT
};

/* How a holder got its descriptor. */
enum sockshim_how {
	SOCKSHIM_HOW_NONE = 0,
	SOCKSHIM_HOW_CREATED,   /* socket, accept, connect, socketpair */
	SOCKSHIM_HOW_DUP,       /* dup, dup2, dup3, F_DUPFD* */
	SOCKSHIM_HOW_FORK,      /* inherited by fork */
	SOCKSHIM_HOW_EXEC,      /* survived exec (no close-on-exec) */
	SOCKSHIM_HOW_SCM,       /* received over SCM_RIGHTS */
	SOCKSHIM_HOW_INHERITED, /* open at start-up, origin unknown */
	SOCKSHIM_HOW_COUNT
};

/* One step of a socket's history. */
enum sockshim_step_op {
	SOCKSHIM_STEP_NONE = 0,
	SOCKSHIM_STEP_BORN,     /* arg: enum sockshim_born */
	SOCKSHIM_STEP_DUP,      /* fd -> arg (new fd) */
	SOCKSHIM_STEP_FORK,     /* pid -> arg (child pid); fd as inherited */
	SOCKSHIM_STEP_EXEC,     /* pid exec'ed name, keeping fd */
	SOCKSHIM_STEP_SCM,      /* pid received it as fd; arg: sender pid if known */
	SOCKSHIM_STEP_CLOSE,    /* arg: references left; via: enum sockshim_close_via */
	SOCKSHIM_STEP_SHUTDOWN, /* arg: how */
	SOCKSHIM_STEP_EOF,      /* pid read the peer's EOF on fd */
	SOCKSHIM_STEP_EXIT,     /* pid exited holding fd */
	/* pid's write on fd failed with EPIPE: the connection was shut down
	 * for sending (by a shutdown, its own or another holder's, or a
	 * reset). Once per descriptor and process, as EOF. */
	SOCKSHIM_STEP_EPIPE,
	SOCKSHIM_STEP_COUNT
};

#define SOCKSHIM_HOLDER_FREE 0u
#define SOCKSHIM_HOLDER_CLAIMED 1u /* being written */
#define SOCKSHIM_HOLDER_LIVE 2u

struct sockshim_holder {
	uint32_t state;    /* SOCKSHIM_HOLDER_*; CAS FREE -> CLAIMED, then LIVE */
	int32_t pid;
	int32_t fd;
	uint16_t how;      /* enum sockshim_how */
	uint16_t pad;
	uint64_t since_ns; /* CLOCK_MONOTONIC */
	int32_t from_pid;  /* fork parent, SCM sender, or the pid itself */
	int32_t from_fd;   /* the fd it was dup'ed from, or as inherited */
};

_Static_assert(sizeof(struct sockshim_holder) == 32, "holder size");
_Static_assert(__builtin_offsetof(struct sockshim_holder, since_ns) ==
		       __builtin_offsetof(struct sockshim_holder, pad) + sizeof(uint16_t),
	       "pad makes since_ns 8-aligned, nothing else");

struct sockshim_step {
	uint32_t seq;     /* index + 1 once written; 0 never */
	uint16_t op;      /* enum sockshim_step_op */
	uint16_t via;     /* close: enum sockshim_close_via */
	uint64_t ts_ns;   /* CLOCK_MONOTONIC */
	int32_t pid;
	int32_t fd;
	int32_t arg;
	char comm[12];    /* the process name (exec: the new image's) */
};

_Static_assert(sizeof(struct sockshim_step) == 40, "step size");

/* Entry i's key in the ledger's index. */
struct sockshim_ledger_key {
	uint64_t inode;       /* the key: see SOCKSHIM_INODE_CLAIMING */
	uint64_t released_ns; /* when the last reference went, 0 while held */
};

_Static_assert(sizeof(struct sockshim_ledger_key) == 16, "four keys a cache line");

/* A socket's entry. A claim for a new socket clears only what it must
 * (layout 13): lines 0-2 (the fields up to shut_callsite), the holder
 * slots holders_used names, and the callsite module's string. The shutdown
 * fields after them are published by shut_ns (line 2), the module strings
 * end at their NUL, and the history is told apart from the entry's earlier
 * sockets' by steps_base: a claim leaves steps_next as it was and starts
 * this socket's history there. So a reclaimed entry costs the cache lines
 * a connection writes anyway (lines 0-3, a holder, its steps), not 21. */
struct sockshim_sock {
	/* line 0 */
	uint64_t born_ns;
	int32_t born_pid;
	int32_t born_fd;
	uint16_t born;         /* enum sockshim_born */
	uint16_t family;
	uint16_t socktype;
	uint16_t flags;        /* SOCKSHIM_FLAG_* */
	uint8_t local_ip[16];
	uint8_t peer_ip[16];
	uint16_t local_port;
	uint16_t peer_port;
	int32_t refs;          /* live holders (descriptors) in the session */
	/* line 1 */
	uint64_t eof_ns;       /* when a read first returned 0, 0 never */
	int32_t eof_pid;
	int32_t eof_fd;
	uint64_t last_read_ns; /* coarse (CLOCK_MONOTONIC_COARSE) */
	uint64_t callsite;     /* return address of the creating call, in born_pid */
	uint64_t callsite_offset; /* the same, relative to its module's load base */
	/* born_pid's process name then, not NUL-terminated when 16 bytes:
	 * the creator is named when its steps have left the history. */
	char born_comm[16];
	/* The history: the step with index n (from 0, counted over every
	 * socket the entry has had) is in steps[n % SOCKSHIM_STEPS], its seq
	 * n + 1 once written. This socket's steps are those with an index in
	 * [steps_base, steps_next). A claim that finds steps_next at
	 * SOCKSHIM_STEPS_RESTART or more starts again from 0 (the slots then
	 * hold indices far above any the new socket reaches): seq never wraps
	 * to 0, which means a step not written. */
	uint32_t steps_next;   /* the next step's index (atomic) */
	uint32_t steps_base;   /* the index of this socket's first step */
	/* line 2 */
	uint32_t noeffect_closes; /* closes that left other references */
	uint32_t holder_overflow; /* holders in neither holders[] nor the pool */
	uint32_t pooled;       /* holders in the shared pool (holders[] full) */
	/* An accepted connection's listener entry (index + 1), whose
	 * lifetime histograms its release goes into: exchanged to 0 by the
	 * release that counts it, so it is counted once. listener_inode
	 * tells whether that entry is still the same listener's. */
	uint32_t listener;
	uint64_t listener_inode;
	/* The last shutdown (shutdown acts on the connection for every
	 * holder): written with shut_ns 0, published by shut_ns. */
	uint64_t shut_ns;        /* CLOCK_MONOTONIC; 0: none (or being written) */
	/* Bit i: holders[i] may have been taken since the entry's claim (set
	 * before the slot is): what the next claim clears. */
	uint32_t holders_used;
	int32_t shut_pid;
	int32_t shut_fd;
	int32_t shut_refs;       /* references in the session then */
	int16_t shut_how;        /* SHUT_RD, SHUT_WR, SHUT_RDWR */
	/* The others holding it then: every other process in the entry's
	 * slots (not only those listed), and each reference no slot names
	 * (a holder in the pool, a fork child not yet in its slot). */
	uint16_t shut_nothers;
	int32_t shut_others[SOCKSHIM_SHUT_OTHERS]; /* the first of those processes */
	/* line 3 on: not cleared by a claim */
	uint64_t shut_callsite;  /* return address of the shutdown call, in shut_pid */
	uint64_t shut_callsite_offset;
	char callsite_module[SOCKSHIM_MODULE_MAX]; /* callsite's module path */
	char shut_module[SOCKSHIM_MODULE_MAX];
	uint8_t reserved[8];
	struct sockshim_holder holders[SOCKSHIM_HOLDERS];
	struct sockshim_step steps[SOCKSHIM_STEPS];
};

/* What a claim clears: the entry up to here. */
#define SOCKSHIM_SOCK_CLEARED __builtin_offsetof(struct sockshim_sock, shut_callsite)

_Static_assert(__builtin_offsetof(struct sockshim_sock, eof_ns) == 64 &&
		       __builtin_offsetof(struct sockshim_sock, noeffect_closes) == 128 &&
		       SOCKSHIM_SOCK_CLEARED == 200,
	       "a claim clears lines 0-2 and one word of line 3");
_Static_assert(SOCKSHIM_HOLDERS <= 32, "holders_used has a bit per holder");

/* How many steps S's socket has had: [steps_base, steps_next) of a copy
 * (a reader's; the shim only adds to steps_next). */
static inline uint32_t sockshim_sock_steps(const struct sockshim_sock *s)
{
	return s->steps_next - s->steps_base;
}
_Static_assert(sizeof(struct sockshim_sock) == 21 * 64, "ledger entries are 21 cache lines");
_Static_assert(__builtin_offsetof(struct sockshim_sock, steps) +
		       sizeof(((struct sockshim_sock *)0)->steps) == sizeof(struct sockshim_sock),
	       "no hidden padding at the end of a ledger entry");

/* The multiplier of the segment's hashes (Fibonacci hashing: 2^64 / the
 * golden ratio; the hash is the product's high 32 bits). */
#define SOCKSHIM_HASH_MUL UINT64_C(0x9E3779B97F4A7C15)

static inline uint32_t sockshim_ledger_hash(uint64_t inode)
{
	uint64_t h = inode * SOCKSHIM_HASH_MUL;

	return (uint32_t)(h >> 32);
}

/* ---- Accept: one entry per listening socket, shared by every process
 * and thread that holds it. Counters are updated with relaxed atomics.
 * The accept lock is a plain futex word of our own: no pointer, no libc
 * structure, so whatever another process writes into it is only a value
 * to check. Its format is the kernel's robust futex word (layout 12), so
 * that the kernel hands it over when its holder dies. ---- */

#define SOCKSHIM_LISTENERS 64
#define SOCKSHIM_WORKERS 64 /* one bit each in a listener's waiting word */
/* A listener's backlog when no listen() was seen: listen() takes any int,
 * and PHP-FPM passes -1. */
#define SOCKSHIM_BACKLOG_UNKNOWN INT32_MIN
/* log2 histograms of nanoseconds: bucket i counts values in
 * [2^i, 2^(i+1)) ns (bucket 0 also counts 0); the last one everything
 * above 2^(SOCKSHIM_HIST_BUCKETS-1) ns (about 2 s). */
#define SOCKSHIM_HIST_BUCKETS 32

/* The bucket of NS in such a histogram. */
static inline unsigned sockshim_hist_bucket(uint64_t ns)
{
	unsigned b = ns ? 63u - (unsigned)__builtin_clzll(ns) : 0;

	return b < SOCKSHIM_HIST_BUCKETS ? b : SOCKSHIM_HIST_BUCKETS - 1;
}

enum sockshim_accept_mode {
	SOCKSHIM_ACCEPT_OBSERVE = 0,   /* behaviour unchanged; statistics */
	SOCKSHIM_ACCEPT_SERIALIZE = 1, /* one waiter per listener at a time */
	SOCKSHIM_ACCEPT_OFF = 2,       /* pass-through, no statistics */
};

/* Why serialization gave way: a waiter accepted without the lock (or took
 * the poll token from its holder) because the holder could make no
 * progress. */
enum sockshim_bypass {
	SOCKSHIM_BYPASS_STOPPED = 0, /* the holder is stopped (SIGSTOP, a debugger) */
	SOCKSHIM_BYPASS_STALLED = 1, /* connections waited, the holder took none */
	SOCKSHIM_BYPASS_INVALID = 2, /* the lock word names no thread (garbage) */
	SOCKSHIM_BYPASS_COUNT
};

/* The lock word (layout 12): 0 when free, else the holder's thread id in
 * the low 30 bits, with SOCKSHIM_LOCK_WAITERS while threads may sleep on
 * it (the holder's unlock, or the kernel at its death, wakes one), or
 * SOCKSHIM_LOCK_OWNER_DIED and no thread id: the kernel's mark of a holder
 * that died holding it (FUTEX_OWNER_DIED, from its robust list). Thread
 * ids are below SOCKSHIM_LOCK_TID_MAX (the kernel's PID_MAX_LIMIT); any
 * other word is garbage. */
#define SOCKSHIM_LOCK_TID_MAX (1u << 22)
#define SOCKSHIM_LOCK_TID_MASK 0x3fffffffu  /* FUTEX_TID_MASK */
#define SOCKSHIM_LOCK_OWNER_DIED 0x40000000u /* FUTEX_OWNER_DIED */
#define SOCKSHIM_LOCK_WAITERS 0x80000000u    /* FUTEX_WAITERS */

/* The thread lock word W names (0: none). */
static inline uint32_t sockshim_lock_tid(uint32_t w)
{
	return w & SOCKSHIM_LOCK_TID_MASK;
}

/* W is a word the protocol writes: free, held by a thread, or left by a
 * holder that died. */
static inline int sockshim_lock_valid(uint32_t w)
{
	uint32_t tid = sockshim_lock_tid(w);

	if (!w)
		return 1;
	if (w & SOCKSHIM_LOCK_OWNER_DIED)
		return tid == 0;
	return tid && tid < SOCKSHIM_LOCK_TID_MAX;
}

/* One worker (thread) that accepts on a listener: claimed by CAS of key.
 * When every row is taken, a worker recycles the row of a thread that has
 * ended: key becomes SOCKSHIM_WORKER_RECYCLING while its counts move to the
 * listener's retired row, then the new worker's key. */
struct sockshim_worker {
	uint64_t key;      /* (pid << 32) | tid; 0: free */
	uint64_t calls;    /* accept calls */
	uint64_t accepts;  /* connections accepted */
	uint64_t spurious; /* woken for the listener, then nothing to accept */
	uint64_t empty;    /* accept tried without a wakeup, nothing there */
	uint64_t eintr;
	uint64_t lock_wait_ns; /* total time waiting for the accept lock */
	uint64_t last_ns;      /* last accept call */
};

_Static_assert(sizeof(struct sockshim_worker) == 64, "worker size");

/* A worker row's key while its counts move to the retired row (pid 0 is
 * never a worker's). */
#define SOCKSHIM_WORKER_RECYCLING UINT64_C(1)

struct sockshim_listener {
	uint64_t inode;      /* the key: see SOCKSHIM_INODE_CLAIMING */
	uint16_t family;
	uint16_t mode;       /* enum sockshim_accept_mode of its first user */
	uint16_t local_port;
	uint16_t pad0;
	uint8_t local_ip[16];
	int32_t backlog;     /* as passed to the last listen() (a negative one asks
			      * for the kernel's maximum); SOCKSHIM_BACKLOG_UNKNOWN
			      * when no listen() was seen (an inherited listener) */
	/* The accept lock (serialize): the futex word (see above). */
	uint32_t lock;
	/* A lock holder found stuck (stopped or stalled): while the lock
	 * word still names this thread, waiters accept without it. 0: none. */
	uint32_t bypass_word;
	uint16_t bypass_reason;  /* enum sockshim_bypass of bypass_word */
	uint16_t pad1;
	uint64_t bypass_since_ns;
	/* Threads waiting for the lock now that have no worker row (more
	 * than SOCKSHIM_WORKERS of them); those with a row are in waiting. */
	uint32_t waiters_unrowed;
	uint32_t max_waiters;   /* the most threads seen waiting at once, alive */
	int32_t holder_pid;     /* who took the lock last (0: nobody holds it) */
	int32_t holder_tid;
	uint64_t held_since_ns;
	/* Bit i: the thread of workers[i] waits for the lock now. A waiter
	 * killed while waiting leaves its bit set: readers count only the
	 * bits of rows whose thread is alive, and recycling the row clears
	 * it. */
	uint64_t waiting;
	/* The poll token (serialize): who may wait for the listener in
	 * poll/select now. */
	uint64_t poller;        /* (pid << 32) | tid; 0 none */
	uint64_t poller_since_ns;
	/* Counters. */
	uint64_t accept_calls;
	uint64_t accepts;
	uint64_t spurious;      /* wakeups (poll/select/epoll or a blocking accept) for nothing */
	uint64_t empty;         /* accepts tried without a wakeup that found nothing */
	uint64_t eintr;
	uint64_t econnaborted;
	uint64_t emfile;        /* EMFILE or ENFILE */
	uint64_t wakeups;       /* poll/select/epoll returns that reported the listener */
	uint64_t lock_acquisitions;
	uint64_t lock_contended;
	uint64_t owner_died;    /* locks taken over from a holder that died */
	uint64_t worker_overflow; /* workers beyond SOCKSHIM_WORKERS */
	uint64_t lock_bypassed[SOCKSHIM_BYPASS_COUNT]; /* accepts made without the lock, by reason */
	uint64_t token_taken[SOCKSHIM_BYPASS_COUNT];   /* poll tokens taken from their holder */
	uint64_t unlock_errors; /* unlocks that found the lock not ours */
	/* How serialize gates the listener, by mechanism: a blocking accept
	 * takes the lock (lock_acquisitions); a poll or select waits for it
	 * only with the poll token (token_waits: waits that held it); an
	 * epoll registration has EPOLLEXCLUSIVE, from the shim or the program
	 * (epoll_exclusive: registrations, in every mode). */
	uint64_t token_waits;
	uint64_t epoll_exclusive;
	uint64_t wait_hist[SOCKSHIM_HIST_BUCKETS];
	uint64_t hold_hist[SOCKSHIM_HIST_BUCKETS];
	/* Connections accepted here, counted at the release of their last
	 * reference: their lifetime (accept to release), how long they sat
	 * in CLOSE_WAIT (peer EOF seen to release; only those that saw it
	 * before a shutdown for writing of theirs), and how many were reset
	 * (SOCKSHIM_FLAG_LINGER_RESET). */
	uint64_t aborted;
	uint64_t life_hist[SOCKSHIM_HIST_BUCKETS];
	uint64_t closewait_hist[SOCKSHIM_HIST_BUCKETS];
	/* The poll token's hand-off (layouts 12, 14). Bit i: the thread of
	 * workers[i] sleeps in poll/select waiting for the token, woken by
	 * its process's doorbell for row i (a thread without a doorbell waits
	 * in slices and sets no bit). A dropper names itself in
	 * token_offered_to (at token_offered_ns), leaves poller 0, and, if a
	 * bit is set, names that row's thread there instead and rings its
	 * doorbell; else it clears the name. For HANDOFF_NS (50 ms,
	 * shim/accept_token.c) after token_offered_ns only the thread named
	 * may take a free token, so a worker back from its connection does
	 * not take it from the one rung.
	 * A waiter killed while waiting leaves its bit: the dropper skips
	 * rows whose thread is gone and clears them. */
	uint64_t token_waiting;
	uint64_t token_offered_to; /* (pid << 32) | tid; 0: none */
	uint64_t token_offered_ns;
	uint64_t token_handoffs;   /* drops that rang a waiter's doorbell */
	/* Rows on cache lines of their own: the hot counters above are the
	 * listener's, these the workers'. */
	struct sockshim_worker workers[SOCKSHIM_WORKERS] __attribute__((aligned(64)));
	/* The summed counts of recycled rows (workers that ended); key: how
	 * many, last_ns: the latest of theirs. */
	struct sockshim_worker retired;
};

_Static_assert(SOCKSHIM_WORKERS <= 64, "a listener's waiting word has a bit per worker row");
_Static_assert(sizeof(struct sockshim_listener) % 64 == 0, "listener entries are cache-line sized");
_Static_assert(__builtin_offsetof(struct sockshim_listener, local_ip) ==
		       __builtin_offsetof(struct sockshim_listener, pad0) + sizeof(uint16_t) &&
	       __builtin_offsetof(struct sockshim_listener, local_ip) % 8 == 0,
	       "pad0 makes local_ip 8-aligned (readers load it as two words)");
_Static_assert(__builtin_offsetof(struct sockshim_listener, bypass_since_ns) ==
		       __builtin_offsetof(struct sockshim_listener, pad1) + sizeof(uint16_t) &&
	       __builtin_offsetof(struct sockshim_listener, bypass_since_ns) % 8 == 0,
	       "pad1 makes bypass_since_ns 8-aligned");
_Static_assert(__builtin_offsetof(struct sockshim_listener, workers) % 64 == 0 &&
	       __builtin_offsetof(struct sockshim_listener, retired) ==
		       __builtin_offsetof(struct sockshim_listener, workers) +
			       SOCKSHIM_WORKERS * sizeof(struct sockshim_worker) &&
	       sizeof(struct sockshim_listener) ==
		       __builtin_offsetof(struct sockshim_listener, retired) +
			       sizeof(struct sockshim_worker),
	       "worker rows on their own cache lines, nothing after the retired row");

/* ---- The holder pool: the holders of sockets whose SOCKSHIM_HOLDERS
 * slots are taken (a listener in every worker of a big pool). As many
 * entries as the ledger; a holder lives within SOCKSHIM_POOL_PROBE
 * entries of its hash slot, claimed by CAS of h.state as an entry's own
 * slots are. ---- */

struct sockshim_pooled_holder {
	uint32_t ref; /* the ledger entry (index + 1); set before h.state is LIVE */
	uint32_t pad;
	struct sockshim_holder h;
};

_Static_assert(sizeof(struct sockshim_pooled_holder) == 40, "pooled holder size");
_Static_assert(__builtin_offsetof(struct sockshim_pooled_holder, h) == 8,
	       "pad makes the holder 8-aligned");

#define SOCKSHIM_POOL_PROBE 64

static inline uint32_t sockshim_pool_hash(uint32_t ref, int32_t pid, int32_t fd)
{
	uint64_t k = ((uint64_t)ref << 32) ^ ((uint64_t)(uint32_t)pid << 12) ^ (uint32_t)fd;

	return (uint32_t)((k * SOCKSHIM_HASH_MUL) >> 32);
}

/* ---- The process table: one entry per preloaded process of the
 * session, keyed by pid and start time (a pid the kernel gave again is
 * another process). It lists the sockets the process holds, so that
 * whoever learns of its end (its own exit, the parent that reaps it, the
 * image that execs in its place, a new process with its pid) can release
 * exactly its references without scanning the ledger. ---- */

#define SOCKSHIM_PROCS 4096
/* Holds listed per process; more are counted in held_unlisted and found,
 * when needed, by scanning the ledger. */
#define SOCKSHIM_PROC_HELD 26

/* Whether a process's image runs without the shim: its holds stay in the
 * ledger under its pid (they survived exec), and only /proc can tell
 * when it closes them. Set once known, cleared by an image that starts
 * with the shim. */
enum sockshim_noshim {
	SOCKSHIM_NOSHIM_NO = 0,   /* the shim runs in it (or nothing says otherwise) */
	SOCKSHIM_NOSHIM_EXEC = 1, /* its exec wrapper knew: set-user-ID, static, or no LD_PRELOAD */
	SOCKSHIM_NOSHIM_PROC = 2, /* found alive without libsockshim in /proc/PID/maps */
};

#define SOCKSHIM_PROC_FREE 0u
#define SOCKSHIM_PROC_CLAIMED 1u /* being written by its claimer */
#define SOCKSHIM_PROC_LIVE 2u

struct sockshim_proc {
	uint32_t state;        /* SOCKSHIM_PROC_*; CAS FREE -> CLAIMED -> LIVE */
	int32_t pid;
	uint64_t start_ticks;  /* /proc/PID/stat field 22: clock ticks after boot */
	char comm[16];         /* the image's name, refreshed at exec */
	uint32_t held_unlisted; /* holds beyond held[] (an exact count) */
	uint32_t execs;        /* images exec'ed in this process so far */
	uint32_t noshim;       /* enum sockshim_noshim: its image runs without the shim */
	/* held[] slots at and above this one have not been used since the
	 * entry was claimed: the process's own scans stop there (raised
	 * before a slot is taken; others' scans read every slot). */
	uint32_t held_high;
	/* (ledger ref << 32) | fd of each socket held; 0: a free slot. */
	uint64_t held[SOCKSHIM_PROC_HELD];
};

_Static_assert(sizeof(struct sockshim_proc) == 256, "a process entry is four cache lines");
_Static_assert(__builtin_offsetof(struct sockshim_proc, held) ==
		       __builtin_offsetof(struct sockshim_proc, held_high) + sizeof(uint32_t) &&
	       sizeof(struct sockshim_proc) == __builtin_offsetof(struct sockshim_proc, held) +
						      SOCKSHIM_PROC_HELD * sizeof(uint64_t),
	       "held_high and SOCKSHIM_PROC_HELD fill the process entry exactly");

static inline uint32_t sockshim_proc_hash(int32_t pid)
{
	return (uint32_t)(((uint64_t)(uint32_t)pid * SOCKSHIM_HASH_MUL) >> 32);
}

/* A process lives within this many entries of its hash slot. */
#define SOCKSHIM_PROC_PROBE 64

/* The segment starts with this header; the ring follows at ring_offset.
 * The creator writes it completely before the segment gets its final name,
 * so an attacher never sees a half-written header. */
struct sockshim_header {
	uint64_t magic;
	uint32_t layout_version;
	uint32_t header_size; /* sizeof(struct sockshim_header) */
	uint64_t segment_size;
	uint64_t ring_offset;    /* bytes from the segment start, 64-aligned */
	uint32_t ring_capacity;  /* records, a power of two */
	uint32_t record_size;    /* sizeof(struct sockshim_record) */
	int32_t creator_pid;
	uint32_t creator_uid;
	int64_t created_realtime_ns; /* CLOCK_REALTIME at creation */
	int64_t created_monotonic_ns; /* CLOCK_MONOTONIC at the same moment */
	char session[SOCKSHIM_SESSION_MAX + 1];
	char creator_comm[16];
	uint8_t pad0[7];
	uint64_t ledger_offset;     /* bytes from the segment start, 64-aligned */
	uint32_t ledger_capacity;   /* sockets, a power of two */
	uint32_t ledger_entry_size; /* sizeof(struct sockshim_sock) */
	int64_t created_boottime_ns; /* CLOCK_BOOTTIME with the two above */
	uint64_t listeners_offset;     /* bytes from the segment start, 64-aligned */
	uint32_t listeners_capacity;   /* SOCKSHIM_LISTENERS */
	uint32_t listener_entry_size;  /* sizeof(struct sockshim_listener) */
	uint64_t procs_offset;         /* bytes from the segment start, 64-aligned */
	uint32_t procs_capacity;       /* SOCKSHIM_PROCS */
	uint32_t proc_entry_size;      /* sizeof(struct sockshim_proc) */
	uint64_t pool_offset;          /* bytes from the segment start, 64-aligned */
	uint32_t pool_capacity;        /* holders: ledger_capacity */
	uint32_t pooled_entry_size;    /* sizeof(struct sockshim_pooled_holder) */
	/* Claims of a ledger or listener entry that gave up waiting for
	 * another claimer of the same socket to publish it (killed or
	 * stopped mid-fill), the socket then not recorded there (counted in
	 * ledger_full or listeners_full too). Here, not with the producers'
	 * counters below: it moves only when something went wrong. */
	uint64_t claims_stalled;
	/* Where the next process to start sweeps the process table (an index
	 * taken by atomic add, masked by the reader): the starts go round the
	 * table together, so SOCKSHIM_PROCS / PROCS_SWEEP of them look at every
	 * entry, whichever pids they have. */
	uint64_t procs_sweep_next;
	uint64_t keys_offset;          /* the ledger's index: bytes from the start, 64-aligned */
	uint8_t reserved0[24];

	/* Written by producers; each on its own cache line. */
	uint64_t ring_head; /* next ticket; accessed atomically */
	uint8_t pad1[56];
	uint64_t fd_overflow;     /* descriptors beyond a process's fd table */
	uint64_t attaches;        /* processes that attached (exec'ed images count) */
	uint64_t ledger_full;     /* sockets not recorded: no free entry near their slot */
	uint64_t holder_overflow; /* holders not recorded: the socket's table was full */
	uint64_t ledger_reclaimed; /* entries of released sockets given to new ones */
	uint64_t listeners_full;   /* listeners not recorded: the table was full */
	uint64_t procs_full;       /* processes not recorded: no free entry near their slot */
	uint64_t procs_reaped;     /* processes whose holds their reaper released */
};

/* The header's padding, checked rather than computed: pad0 aligns
 * ledger_offset, reserved0 ends the creator's part at 256, pad1 gives
 * ring_head its cache line, the counters fill the last one. */
#define SOCKSHIM_HDR_OFF(f) __builtin_offsetof(struct sockshim_header, f)
#define SOCKSHIM_HDR_SIZE(f) sizeof(((struct sockshim_header *)0)->f)
_Static_assert(SOCKSHIM_HDR_OFF(ledger_offset) ==
		       SOCKSHIM_HDR_OFF(pad0) + SOCKSHIM_HDR_SIZE(pad0) &&
	       SOCKSHIM_HDR_OFF(pad0) == SOCKSHIM_HDR_OFF(creator_comm) +
						SOCKSHIM_HDR_SIZE(creator_comm) &&
	       SOCKSHIM_HDR_OFF(ledger_offset) % 8 == 0,
	       "pad0 makes ledger_offset 8-aligned, no more");
_Static_assert(SOCKSHIM_HDR_OFF(claims_stalled) % 8 == 0 &&
		       SOCKSHIM_HDR_OFF(procs_sweep_next) == SOCKSHIM_HDR_OFF(claims_stalled) + 8 &&
		       SOCKSHIM_HDR_OFF(keys_offset) == SOCKSHIM_HDR_OFF(procs_sweep_next) + 8 &&
		       SOCKSHIM_HDR_OFF(reserved0) == SOCKSHIM_HDR_OFF(keys_offset) + 8 &&
		       SOCKSHIM_HDR_OFF(reserved0) + SOCKSHIM_HDR_SIZE(reserved0) == 256 &&
		       SOCKSHIM_HDR_OFF(ring_head) == 256,
	       "reserved0 ends the creator's part at 256 bytes");
_Static_assert(SOCKSHIM_HDR_OFF(pad1) == SOCKSHIM_HDR_OFF(ring_head) + 8 &&
		       SOCKSHIM_HDR_OFF(fd_overflow) ==
			       SOCKSHIM_HDR_OFF(pad1) + SOCKSHIM_HDR_SIZE(pad1) &&
		       SOCKSHIM_HDR_OFF(fd_overflow) == SOCKSHIM_HDR_OFF(ring_head) + 64,
	       "ring_head alone on its cache line");
_Static_assert(sizeof(struct sockshim_header) == SOCKSHIM_HDR_OFF(procs_reaped) + 8 &&
		       sizeof(struct sockshim_header) == SOCKSHIM_HDR_OFF(fd_overflow) + 64 &&
		       sizeof(struct sockshim_header) == 384,
	       "the counters fill the header's last cache line exactly");
#undef SOCKSHIM_HDR_OFF
#undef SOCKSHIM_HDR_SIZE

/* Stamps: ticket t is being written, or published. */
static inline uint64_t sockshim_stamp_writing(uint64_t ticket) { return 2 * ticket + 1; }
static inline uint64_t sockshim_stamp_published(uint64_t ticket) { return 2 * ticket + 2; }

/* The ring follows the header; the ledger follows the ring. */
static inline uint64_t sockshim_ledger_offset(uint32_t ring_capacity)
{
	return sizeof(struct sockshim_header) +
	       (uint64_t)ring_capacity * sizeof(struct sockshim_record);
}

/* The listener table follows the ledger. */
static inline uint64_t sockshim_listeners_offset(uint32_t ring_capacity, uint32_t ledger_capacity)
{
	return sockshim_ledger_offset(ring_capacity) +
	       (uint64_t)ledger_capacity * sizeof(struct sockshim_sock);
}

/* The process table follows the listener table. */
static inline uint64_t sockshim_procs_offset(uint32_t ring_capacity, uint32_t ledger_capacity)
{
	return sockshim_listeners_offset(ring_capacity, ledger_capacity) +
	       (uint64_t)SOCKSHIM_LISTENERS * sizeof(struct sockshim_listener);
}

/* The holder pool follows the process table: as many as the ledger. */
static inline uint64_t sockshim_pool_offset(uint32_t ring_capacity, uint32_t ledger_capacity)
{
	return sockshim_procs_offset(ring_capacity, ledger_capacity) +
	       (uint64_t)SOCKSHIM_PROCS * sizeof(struct sockshim_proc);
}

/* The ledger's index follows the holder pool: one key per ledger entry. */
static inline uint64_t sockshim_keys_offset(uint32_t ring_capacity, uint32_t ledger_capacity)
{
	return sockshim_pool_offset(ring_capacity, ledger_capacity) +
	       (uint64_t)ledger_capacity * sizeof(struct sockshim_pooled_holder);
}

static inline uint64_t sockshim_segment_size(uint32_t ring_capacity, uint32_t ledger_capacity)
{
	return sockshim_keys_offset(ring_capacity, ledger_capacity) +
	       (uint64_t)ledger_capacity * sizeof(struct sockshim_ledger_key);
}

#endif
