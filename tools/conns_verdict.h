/* `sockshim conns`' judgements on one connection: who closed first, when
 * this side closed, and whether its state is an anomaly worth a line.
 * Pure functions of evidence the caller gathered (the kernel's state, the
 * ledger's entry, the time now): no I/O, no globals, no formatting. */
#ifndef SOCKSHIM_CONNS_VERDICT_H
#define SOCKSHIM_CONNS_VERDICT_H

#include <stdint.h>

#include "ledger_read.h"

/* The state of a connection the kernel no longer lists but the ledger
 * remembers: past the kernel's numbers. */
#define CONN_GONE 32u

enum conn_closer {
	CONN_CLOSER_UNKNOWN, /* neither side closed yet, or nothing says which */
	CONN_CLOSER_LOCAL,   /* this side's FIN went first */
	CONN_CLOSER_PEER,    /* the peer's FIN came first */
	CONN_CLOSER_BOTH,    /* simultaneous close (CLOSING) */
	CONN_CLOSER_ABORT,   /* this side reset it: released with SO_LINGER {on, 0} */
};

enum conn_anomaly {
	CONN_OK,
	CONN_ANOM_CLOSE_WAIT,      /* the peer closed, nobody here did */
	CONN_ANOM_SERVER_TIMEWAIT, /* TIME_WAIT on the accepting side */
	CONN_ANOM_OLD_FIN_WAIT2,   /* FIN_WAIT_2 for longer than tcp_fin_timeout */
	CONN_ANOM_SHUT_BY_OTHER,   /* shut down by one process, still held by others */
	CONN_ANOM_HELD_FIN_WAIT2,  /* FIN_WAIT_2 after a shutdown, still held: no timer */
	CONN_ANOM_LINGERING_LAST_ACK, /* LAST_ACK a second after this side's FIN */
	CONN_ANOMALY_COUNT
};

/* How long a LAST_ACK may last before it lingers: the peer's ACK of our
 * FIN takes one round trip; a second is many. */
#define CONN_LAST_ACK_LINGER_NS 1000000000LL

/* What conn_anomaly judges a connection by. */
struct conn_facts {
	unsigned state;     /* the kernel's (SOCKDIAG_*) or CONN_GONE */
	int server;         /* born by accept */
	int held;           /* a descriptor refers to it (the kernel lists its inode) */
	int64_t fin_age_ns; /* since this side's FIN (FIN_WAIT1/2, LAST_ACK); -1 unknown */
	long fin_timeout_s; /* /proc/sys/net/ipv4/tcp_fin_timeout; -1 unknown */
	/* Its last shutdown was made while other processes held it (the
	 * ledger's shutdown names others), and it is still held. */
	int shut_by_other;
};

/* When this side sent its FIN, as the ledger saw it: its first
 * shutdown(SHUT_WR or SHUT_RDWR) that is still in the history, or the
 * release of its last reference, whichever came first; 0 when neither. */
uint64_t conn_local_close_ns(const struct ledger_sock *ls);

/* Who closed first. STATE: the kernel's (SOCKDIAG_*) or CONN_GONE; LS:
 * the ledger's entry, or NULL. The kernel's state decides where it can
 * (CLOSING: both; CLOSE_WAIT, LAST_ACK: the peer; FIN_WAIT1, FIN_WAIT2,
 * TIME_WAIT: this side), else the ledger's times: this side's close before
 * the peer's EOF is local, the EOF first is the peer. A connection this
 * side released with SO_LINGER {on, 0} set was reset (abort), whoever
 * sent a FIN before: its close sent an RST and lost unsent data. */
enum conn_closer conn_closer(unsigned state, const struct ledger_sock *ls);

/* "local", "peer", "both", "abort", "unknown" */
const char *conn_closer_name(enum conn_closer c);

/* Whether the connection F describes is an anomaly, and which (the first
 * that applies, in the enum's order). */
enum conn_anomaly conn_anomaly(const struct conn_facts *f);

/* One line for people: why the anomaly matters and where to look. */
const char *conn_anomaly_reason(enum conn_anomaly a);

/* The states of a comma-separated LIST ("established,time-wait",
 * "FIN_WAIT2", "closed" for the forgotten; case and '-'/'_' do not
 * matter, and ss's "estab" and "fin-wait-2" are taken too) into *MASK, a
 * bit per state number (CONN_GONE included). 0, or -EINVAL when a name
 * is not a state. */
int conn_parse_states(const char *list, uint64_t *mask);

/* The state's name: "FIN_WAIT2" as sock_diag names them, "CLOSED" for
 * CONN_GONE, NULL for a number neither uses. */
const char *conn_state_name(unsigned state);

#endif
