/* Reading the session's reference ledger: a validated snapshot of every
 * entry, an index by inode, and the inheritance path of a holder
 * rebuilt from the entry's history steps. The segment is untrusted: every
 * enum, index and count is checked here, and entries caught mid-update
 * are retried, then marked, never believed blindly. */
#ifndef SOCKSHIM_LEDGER_READ_H
#define SOCKSHIM_LEDGER_READ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "flatidx.h"
#include "format.h"
#include "sockshim/segment.h"

/* A step's process name: 12 bytes in the segment, terminated here. */
#define LEDGER_COMM_MAX 13

struct ledger_holder {
	pid_t pid;
	int fd;
	unsigned how;      /* enum sockshim_how, < SOCKSHIM_HOW_COUNT */
	uint64_t since_ns; /* CLOCK_MONOTONIC */
	pid_t from_pid;
	int from_fd;
};

struct ledger_step {
	uint32_t seq;
	unsigned op;  /* enum sockshim_step_op, < SOCKSHIM_STEP_COUNT */
	unsigned via; /* close: enum sockshim_close_via (may be out of range) */
	uint64_t ts_ns;
	pid_t pid;
	int fd;
	int arg;
	char comm[LEDGER_COMM_MAX];
};

/* The socket's last shutdown (shutdown acts on the connection for every
 * holder), with the other processes that held it then. ns 0: none. */
struct ledger_shutdown {
	uint64_t ns;
	pid_t pid;
	int fd;
	int how;           /* SHUT_RD, SHUT_WR, SHUT_RDWR */
	int32_t refs;      /* references in the session then */
	unsigned nothers;  /* other processes holding it then, and references unnamed */
	unsigned nlisted;  /* of which named in others[] */
	pid_t others[SOCKSHIM_SHUT_OTHERS];
	uint64_t callsite, callsite_offset;
	char module[SOCKSHIM_MODULE_MAX + 1];
};

struct ledger_sock {
	uint64_t inode;
	uint64_t born_ns;
	pid_t born_pid;
	int born_fd;
	unsigned born; /* enum sockshim_born; out-of-range values become UNKNOWN */
	unsigned family, socktype, flags;
	uint8_t local_ip[16], peer_ip[16];
	uint16_t local_port, peer_port;
	int32_t refs;
	uint64_t released_ns, eof_ns, last_read_ns;
	pid_t eof_pid;
	int eof_fd;
	uint64_t callsite, callsite_offset;
	char callsite_module[SOCKSHIM_MODULE_MAX + 1];
	char born_comm[LEDGER_COMM_MAX]; /* born_pid's name then, as a step's; "" unknown */
	uint32_t steps_next, noeffect_closes, holder_overflow;
	uint32_t slot;   /* its index in the ledger */
	uint32_t pooled; /* holders the entry said were in the shared pool */
	struct ledger_shutdown shut;
	/* Holders and history are kept apart from the entry, as many as
	 * there are (most sockets have one or two of each, room for 8 and 16
	 * in every entry was most of a snapshot's memory): in the
	 * snapshot's stores, or in the room given to ledger_sock_load. */
	unsigned nholders; /* live holders: the entry's in table order, then the pool's */
	struct ledger_holder *holders;
	unsigned nsteps; /* history, oldest first */
	struct ledger_step *steps;
	int history_lost; /* older steps were overwritten */
	int unsettled;    /* still changing after the retries: take with care */
};

struct ledger_snap {
	struct ledger_sock *v; /* the entries in use */
	size_t n;
	struct flatidx by_inode; /* positions in v */
	uint32_t capacity;
	int64_t created_real_ns, created_mono_ns, created_boot_ns;
	uint64_t ledger_full, holder_overflow, ledger_reclaimed;
	size_t unsettled; /* entries that kept changing while copied */
	size_t rejected;  /* entries whose contents could not be right */
	struct ledger_holder *pool_holders; /* the holders of entries with pooled ones */
	/* Every entry's holders and steps, one after another (sized for the
	 * worst case, only the part used is ever touched). */
	struct ledger_holder *holder_store;
	struct ledger_step *step_store;
};

/* Copy the ledger of M. 0 or -ENOMEM. */
int ledger_snapshot(const struct seg_map *m, struct ledger_snap *out);

/* The same, copying only the entries for which KEEP(ARG, inode, refs)
 * says yes (refs as read before the copy): a report about a few sockets
 * need not copy a ledger of a million. */
int ledger_snapshot_some(const struct seg_map *m, struct ledger_snap *out,
			 int (*keep)(void *arg, uint64_t inode, int32_t refs), void *arg);
void ledger_snap_free(struct ledger_snap *s);

/* The entry of INODE, or NULL. */
const struct ledger_sock *ledger_find(const struct ledger_snap *s, uint64_t inode);

/* Is LS, the entry found under the inode of a kernel socket whose peer is
 * (FAMILY, IP, PORT), about that socket? Not when LS is an internet
 * entry whose known peer differs: it is a previous socket's that had the
 * inode (sockfs's inode numbers wrap). An IPv4 address and its
 * IPv4-mapped IPv6 form are the same peer. */
int ledger_sock_is_peer(const struct ledger_sock *ls, unsigned family, const uint8_t *ip,
			unsigned port);

/* Where ledger_sock_load puts one entry's holders and steps. */
struct ledger_sock_room {
	struct ledger_holder holders[SOCKSHIM_HOLDERS];
	struct ledger_step steps[SOCKSHIM_STEPS];
};

/* Copy and check one raw entry and its key in the ledger's index (the
 * part of the snapshot the tests drive directly), its holders and steps
 * into ROOM. 0, or -EINVAL when it is unused or cannot be right. Its
 * holders are its own slots' (the pool's are added by the snapshot). */
int ledger_sock_load(struct ledger_sock *out, struct ledger_sock_room *room,
		     const struct sockshim_sock *raw, const struct sockshim_ledger_key *key);

/* Names for people and JSON; "unknown(N)" is written by the callers. */
const char *ledger_born_name(unsigned born); /* "accept" */
const char *ledger_born_verb(unsigned born); /* "accepted by" */
const char *ledger_how_name(unsigned how);   /* "fork" */
const char *ledger_op_name(unsigned op);     /* "close" */

/* One hop of an inheritance path. */
struct ledger_hop {
	unsigned op; /* SOCKSHIM_STEP_BORN, _DUP, _FORK, _EXEC, _SCM */
	pid_t pid;   /* who did it (FORK: the parent; SCM: the receiver) */
	int fd;      /* the descriptor it acted on (DUP: the source) */
	int arg;     /* BORN: how; DUP: the new fd; FORK: the child; SCM: the sender */
	uint64_t ts_ns;
	char comm[LEDGER_COMM_MAX];
};

/* How PID came to hold the socket as FD: at most MAX hops, oldest first,
 * into HOPS. Returns their number; *COMPLETE is 1 when the path starts at
 * the socket's birth, 0 when older history is gone or does not connect. */
size_t ledger_path(const struct ledger_sock *s, pid_t pid, int fd, struct ledger_hop *hops,
		   size_t max, int *complete);

/* The path as one line: "accepted by 4101 fd 7 -> fork 4120 -> dup to fd 0
 * -> exec sh". A path that does not reach the birth starts with the birth
 * as the entry records it, then "...". */
void ledger_path_str(struct fmt_buf *b, const struct ledger_sock *s, pid_t pid, int fd);

/* The last name the history gives process PID; for the creator whose
 * steps have left the history, its name at the birth; else NULL. */
const char *ledger_comm_of(const struct ledger_sock *s, pid_t pid);

/* The live holder PID/FD in S, or NULL. */
const struct ledger_holder *ledger_holder_of(const struct ledger_sock *s, pid_t pid, int fd);

/* CLOCK_MONOTONIC TS to CLOCK_REALTIME and CLOCK_BOOTTIME through the
 * snapshot's header. -ERANGE on overflow. */
int ledger_realtime(const struct ledger_snap *s, uint64_t ts, int64_t *out);
int ledger_boottime(const struct ledger_snap *s, uint64_t ts, int64_t *out);

#endif
