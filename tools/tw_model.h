/* `sockshim timewait`'s model: TIME_WAIT sockets (which have no inode and
 * no owner) matched to the ledger by their four addresses, grouped by
 * cause, and the arithmetic of each group: the rate of new connections,
 * the share of the ephemeral ports in TIME_WAIT and the time left until
 * they run out. Pure: no I/O, no clock, no printing; cmd_timewait.c loads
 * the evidence and renders what this returns. */
#ifndef SOCKSHIM_TW_MODEL_H
#define SOCKSHIM_TW_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "uthash_int.h"

#include "flatidx.h"
#include "ledger_read.h"
#include "sockdiag.h"

#define TW_NS_PER_SEC 1000000000ULL
/* Births counted for the rate: those of the last minute, the length of
 * TIME_WAIT on Linux (TCP_TIMEWAIT_LEN), so that rate x window is the
 * number of ports a steady rate keeps in TIME_WAIT. */
#define TW_WINDOW_NS (60 * TW_NS_PER_SEC)
#define TW_LEN_MS 60000u
/* A rate is never taken over less than this: one connection a moment
 * ago is not a rate of thousands a second. */
#define TW_MIN_SPAN_NS (TW_NS_PER_SEC)

/* Which side of the connection the session's socket was. */
enum tw_side {
	TW_CLIENT, /* born by connect(): its port is an ephemeral one */
	TW_SERVER, /* born by accept() */
	TW_OTHER,  /* found open, received, or of unknown birth */
};

enum tw_side tw_side_of(unsigned born);
/* "client", "server", "unknown" */
const char *tw_side_name(enum tw_side side);
/* One line: what makes this side close first less often, for people. */
const char *tw_remedy(enum tw_side side);

/* An address as an IPv6 one: IPv4 as ::ffff:a.b.c.d, so that a socket of
 * a dual-stack listener and its IPv4 peer compare equal. */
void tw_norm_ip(uint8_t out[16], unsigned family, const uint8_t ip[16]);

/* What a group is: the side, the fixed end of its connections (server:
 * the local address and port, client: the peer's), the other end's
 * address without its port, and where the sockets were created. */
struct tw_gkey {
	uint8_t lip[16], pip[16];
	uint16_t lport, pport; /* the varying end's is 0 */
	uint32_t side;
	uint64_t callsite; /* the offset in its module, else the address */
	char module[SOCKSHIM_MODULE_MAX + 8]; /* terminated; sized for no padding */
};

/* Hashed and compared whole: no padding may hide in it. */
_Static_assert(sizeof(struct tw_gkey) == 48 + SOCKSHIM_MODULE_MAX + 8, "tw_gkey has padding");

/* LS's group key into K (zeroed first: K is hashed whole). */
void tw_gkey_make(struct tw_gkey *k, const struct ledger_sock *ls);

/* New connections a second from BIRTHS births in the window, the first
 * at FIRST_NS: over the time from the first to NOW_NS (at least
 * TW_MIN_SPAN_NS, at most the window). 0 without births. */
double tw_rate(size_t births, uint64_t first_ns, uint64_t now_ns);

/* The share of a port range of RANGE ports that COUNT sockets take. */
double tw_port_share(size_t count, uint64_t range);

/* Seconds until the RANGE ephemeral ports toward one destination are all
 * in TIME_WAIT, when new connections come at RATE a second and each takes
 * a port for TW_LEN_MS, and the N sockets already there leave after
 * LEFT_MS[i] (ascending). -1: never at this rate (RATE x 60 s < RANGE). */
double tw_exhaustion_s(uint64_t range, double rate, const uint32_t *left_ms, size_t n);

/* /proc/sys/net/ipv4/ip_local_port_range's text ("32768\t60999\n") into
 * *LO and *HI. 0, or -EINVAL when it is not two ports, LO <= HI. */
int tw_parse_port_range(const char *text, unsigned *lo, unsigned *hi);

/* ---- Matching and grouping ---- */

/* One process among a group's creators. */
struct tw_pid {
	pid_t pid;
	size_t count;
	const struct ledger_sock *ls; /* one of its sockets: its name, call site */
};

/* The TIME_WAIT sockets toward one destination (local address, peer
 * address and port), whoever made them: the ports a client has left. */
struct tw_dest {
	uint8_t key[34]; /* local ip, peer ip, peer port */
	size_t count;
	uint32_t *left_ms; /* their timers, ascending once finished */
	size_t cap;
	struct tw_dest *next; /* every destination, for the walks and the free */
	UT_hash_handle hh;
};

struct tw_group {
	struct tw_gkey key;
	const struct ledger_sock *first; /* the group's first socket met */
	size_t count;                    /* its sockets in TIME_WAIT */
	struct tw_pid *pids;
	size_t npids, pids_cap;
	size_t births;        /* ledger entries of the group born in the window */
	uint64_t first_birth; /* the oldest of them */
	const struct tw_dest *dest; /* TW_CLIENT: its destination's */
	double rate, share, exhaustion_s; /* by tw_finish; share -1 unless TW_CLIENT */
	struct tw_group *next; /* every group, for the walks and the free */
	UT_hash_handle hh;
};

struct tw_tuple_ent;

struct tw_model {
	struct flatidx by_tuple;       /* the ledger's TCP entries by four addresses: */
	struct tw_tuple_ent *tuple_pool; /* their positions here */
	struct tw_group *groups;       /* by key */
	struct tw_group *group_list;   /* the same, as a list */
	struct tw_dest *dests;         /* by destination */
	struct tw_dest *dest_list;
	struct tw_group **sorted;      /* by tw_finish: most sockets first */
	size_t ngroups;
	size_t attributed, unattributed;
};

void tw_model_init(struct tw_model *t);
void tw_model_free(struct tw_model *t);

/* Index SNAP's TCP entries whose addresses are both known by their four
 * addresses; where several share them (a port used again), the one born
 * last. 0 or -ENOMEM. */
int tw_index(struct tw_model *t, const struct ledger_snap *snap);

/* The ledger's entry for the kernel's socket K, or NULL. */
const struct ledger_sock *tw_match(const struct tw_model *t, const struct sockdiag_sock *k);

/* Count the TIME_WAIT socket K, which LS (NULL: none) explains. 0 or
 * -ENOMEM. */
int tw_add(struct tw_model *t, const struct sockdiag_sock *k, const struct ledger_sock *ls);

/* Count the births of the last window of each group from SNAP, then each
 * group's rate, share of the RANGE ports and time to exhaustion at NOW_NS
 * (CLOCK_MONOTONIC), and sort them. 0 or -ENOMEM. */
int tw_finish(struct tw_model *t, const struct ledger_snap *snap, uint64_t range,
	      uint64_t now_ns);

#endif
