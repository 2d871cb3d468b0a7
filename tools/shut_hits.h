/* Whom a shutdown hit: the later writes that failed with EPIPE and the
 * reads that returned 0 by the socket's other holders, tied back to the
 * shutdown that explains them. A pure function of a ledger entry's
 * history and the kernel's state; it never guesses: an EOF is tied only
 * when the kernel shows the peer has not closed (no FIN from it). */
#ifndef SOCKSHIM_SHUT_HITS_H
#define SOCKSHIM_SHUT_HITS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ledger_read.h"

/* One hit: PID's FD got EPIPE on a write (SOCKSHIM_STEP_EPIPE) or 0 from
 * a read (SOCKSHIM_STEP_EOF) at TS_NS. */
struct shut_hit {
	pid_t pid;
	int fd;
	unsigned what;
	uint64_t ts_ns;
	char comm[LEDGER_COMM_MAX];
};

/* "EPIPE" or "EOF". */
const char *shut_hit_name(unsigned what);

/* Does the kernel state KSTATE (SOCKDIAG_*, or -1: the kernel lists no
 * such socket) say the peer's FIN has not arrived? 1 yes, 0 it has or
 * cannot be told. */
int shut_hits_no_peer_fin(int kstate);

/* The hits of the shutdown of history step SHUT of LS (an index of
 * ls->steps, or -1 for the entry's last shutdown ls->shut when its step
 * is gone from the history), at most MAX into OUT, oldest first; returns
 * how many. A step is a hit of that shutdown when it comes after it, is
 * another process's, its direction was shut by it (EPIPE: SHUT_WR or
 * SHUT_RDWR; EOF: SHUT_RD or SHUT_RDWR) and no later shutdown of that
 * direction comes between them (the hit is that one's). An EOF also needs
 * NO_PEER_FIN (shut_hits_no_peer_fin of the kernel's state) and no EOF
 * read before the shutdown (that one was the peer's FIN). */
size_t shut_hits(const struct ledger_sock *ls, int shut, int no_peer_fin, struct shut_hit *out,
		 size_t max);

/* Was LS's first EOF (eof_ns) a shutdown's, not the peer's: a shutdown
 * for reading (by any holder, the reader too) at or before it, and
 * NO_PEER_FIN? */
int shut_explains_eof(const struct ledger_sock *ls, int no_peer_fin);

#endif
