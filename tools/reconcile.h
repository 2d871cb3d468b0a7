/* Who holds a socket now: the ledger's holders checked against /proc, and
 * the holders only /proc knows, each marked with where the fact came from.
 * The ledger cannot see kill -9, programs without the shim or raw system
 * calls; /proc cannot see how a descriptor got where it is. */
#ifndef SOCKSHIM_RECONCILE_H
#define SOCKSHIM_RECONCILE_H

#include <stdint.h>
#include <sys/types.h>

#include "ledger_read.h"
#include "procfd.h"

/* Where a holder was found. */
#define REC_LEDGER 0x1
#define REC_PROC 0x2

/* The room a rec_sock starts with, beyond what the ledger and /proc list
 * for the socket at hand. */
#define REC_PROC_MAX 24

struct rec_holder {
	pid_t pid;
	int fd;
	unsigned how;      /* enum sockshim_how; SOCKSHIM_HOW_NONE when proc-only */
	uint64_t since_ns; /* CLOCK_MONOTONIC, 0 when unknown */
	int source;        /* REC_LEDGER | REC_PROC */
	int stale;         /* the ledger says held, /proc says not */
	int unverified;    /* in the ledger, but its /proc/PID/fd is not ours to read */
	enum procfd_shim shim; /* whether its process runs with the shim (noshim.c) */
	char why[128];     /* stale: what /proc says instead */
	char comm[16];     /* raw bytes: escape them to print */
	char state;        /* from /proc/PID/stat; 0 when unknown */
	const struct ledger_holder *lh; /* its ledger record, or NULL */
};

struct rec_sock {
	unsigned n;
	struct rec_holder *h; /* grown to fit: a listener may have hundreds */
	unsigned cap;
	unsigned live;       /* holders that are not stale */
	unsigned proc_extra; /* proc-only holders not listed (or no memory) */
};

/* An empty one, before its first reconcile; free it with rec_sock_free. */
void rec_sock_init(struct rec_sock *rs);
void rec_sock_free(struct rec_sock *rs);

/* Join the ledger entry LS (NULL when the ledger does not know INODE)
 * with /proc for socket INODE. Ledger holders come first, in table order,
 * then proc-only ones. SNAP gives the clocks (may be NULL without LS). */
void reconcile(const struct ledger_snap *snap, const struct ledger_sock *ls, struct procfd *pf,
	       uint64_t inode, struct rec_sock *out);

/* "source" for JSON and tables: "ledger", "proc", "ledger+proc". */
const char *rec_source_name(int source);

/* The holder's "how" for people: "fork", or for one only /proc shows "seen only
 * in /proc" (REC_NOROOM_WORDS in a process the shim runs in). */
const char *rec_how_name(const struct rec_holder *h);

/* What a holder whose image runs without the shim is said to be. */
#define REC_NOSHIM_WORDS "runs without the shim: from /proc"
/* A holder only /proc shows, in a process the shim runs in: the ledger had
 * no room for it (see holder_overflow), the shim saw it. */
#define REC_NOROOM_WORDS "from /proc: the shim runs there, the ledger had no room"

/* Did the process /proc describes as ST start after SINCE_NS (CLOCK_MONOTONIC
 * through SNAP's clocks; one clock tick allowed)? Then its pid was given
 * again: it is not the process the ledger recorded then. */
int rec_started_after(const struct ledger_snap *snap, const struct procfd_stat *st,
		      uint64_t since_ns);

/* True when process state STATE is stopped (T, t) or in uninterruptible
 * sleep (D). */
int rec_state_hung(char state);

#endif
