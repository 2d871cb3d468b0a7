/* What the two files of `sockshim conns` share: its options and the
 * connections joined for one report (conns_load.c gathers and joins them,
 * cmd_conns.c filters and prints). Not for other commands. */
#ifndef SOCKSHIM_CONNS_H
#define SOCKSHIM_CONNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conns_verdict.h"
#include "ledger_read.h"
#include "procfd.h"
#include "sockdiag.h"
#include "symbolize.h"
#include "tw_model.h"

/* The connections the kernel forgot are shown this long after their
 * release, all of them with --all. */
#define CONNS_RECENT_NS (60 * 1000000000ULL)

struct conns_opts {
	const char *session;
	uint64_t states; /* bit per state (conn_parse_states); 0: all */
	int port;        /* local or peer port; 0: any */
	pid_t pid;       /* creator or holder; 0: any */
	int all;
	int json;
};

/* One connection: a socket the kernel lists, or one the ledger remembers
 * that the kernel forgot. */
struct conn_item {
	const struct sockdiag_sock *k;      /* NULL: gone from the kernel */
	const struct ledger_sock *ls;       /* NULL: not in the ledger */
	const struct ledger_sock *listener; /* K waits in this listener's accept queue */
	unsigned state;                     /* SOCKDIAG_* or CONN_GONE */
	enum conn_closer closer;
	enum conn_anomaly anomaly;
	uint64_t local_close_ns; /* this side's FIN as the ledger saw it; 0 */
	int64_t fin_age_ns;      /* FIN_WAIT1/2: since this side's FIN; -1 */
	int64_t lifetime_ns;     /* birth to release (or now); -1 unknown */
};

struct conns_ctx {
	const struct conns_opts *o;
	const char *session;
	struct ledger_snap snap;
	struct sockdiag_list kern; /* every TCP socket of the host */
	struct tw_model tuples;    /* the ledger by four addresses */
	struct procfd *pf;
	struct symbolizer *sym;
	struct conn_item *items; /* the kernel's first, then the forgotten */
	size_t n, n_kernel;
	long fin_timeout_s;
	uint64_t now_ns; /* CLOCK_MONOTONIC */
};

/* Load the evidence from the session mapped at M and join it into
 * C->items. 0, or -errno once the error is said on stderr; conns_unload
 * frees it, whatever conns_load returned. */
int conns_load(struct conns_ctx *c, struct seg_map *m);
void conns_unload(struct conns_ctx *c);

#endif
