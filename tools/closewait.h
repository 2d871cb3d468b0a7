/* What the two files of `sockshim closewait` share: its options and the
 * evidence loaded for one report (closewait_load.c gathers and joins it,
 * cmd_closewait.c decides and prints). Not for other commands. */
#ifndef SOCKSHIM_CLOSEWAIT_H
#define SOCKSHIM_CLOSEWAIT_H

#include <stddef.h>
#include <stdint.h>

#include "kindex.h"
#include "ledger_read.h"
#include "procfd.h"
#include "session.h"
#include "sockdiag.h"
#include "symbolize.h"

struct cw_opts {
	const char *session;
	int64_t min_age_ns;
	int json;
	int all; /* also the sockets outside the session */
};

struct cw_ctx {
	const struct cw_opts *o;
	const char *session;
	struct ledger_snap snap;          /* the entries the ledger believes held */
	struct ledger_snap snap_released; /* released ones the kernel still lists */
	struct sockdiag_list kern;      /* CLOSE_WAIT and LISTEN, with tcp_info */
	struct sockdiag_list kern_more; /* the other states, only when needed */
	struct procfd *pf;
	struct symbolizer *sym;
	struct kindex kidx; /* KERN and KERN_MORE by inode: the sockets the
			     * kernel still lists */
	struct session_pid *pids, *pid_pool;
	const struct sockdiag_sock **listeners;
	size_t nlisteners;
	int64_t now_ns;
};

/* Load C's evidence from the session mapped at M: the kernel's sockets in
 * CLOSE_WAIT and the listeners, the ledger, /proc. 0, or -errno once the
 * error is said on stderr. cw_unload frees it, whatever cw_load returned. */
int cw_load(struct cw_ctx *c, struct seg_map *m);
void cw_unload(struct cw_ctx *c);
/* Print C's report (closewait_report.c) to stdout: EXIT_OK or EXIT_FAIL. */
int cw_report(struct cw_ctx *c);

/* The ledger's entry for INODE, held or released, or NULL. */
const struct ledger_sock *cw_ledger_find(const struct cw_ctx *c, uint64_t inode);
/* The ledger's entry for K, unless it is about another socket that once
 * had the same inode (its peer disagrees with the kernel's). */
const struct ledger_sock *cw_ledger_for(const struct cw_ctx *c, const struct sockdiag_sock *k);
/* The listener whose accept queue K (inode 0) waits in, or NULL. */
const struct sockdiag_sock *cw_find_listener(const struct cw_ctx *c, const struct sockdiag_sock *k);

/* A TCP socket the ledger believes held that no dump listed. */
int cw_kernel_forgot(const struct cw_ctx *c, const struct ledger_sock *ls);

/* Index the processes the ledger names as holders (the session's), for
 * cw_in_session. 0 or -ENOMEM. */
int cw_index_session_pids(struct cw_ctx *c);
/* Is the socket K (ledger entry LS, listener LISTENER when K has no
 * inode) the session's: in its ledger, queued on one of its listeners, or
 * held by one of its processes? */
int cw_in_session(const struct cw_ctx *c, const struct sockdiag_sock *k,
		  const struct ledger_sock *ls, const struct sockdiag_sock *listener);

#endif
