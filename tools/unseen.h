/* Sockets a session's processes hold that the shim never saw: a Go
 * program, a static binary or a set-user-ID image started under `sockshim
 * run` holds its listener in /proc while the ledger is empty. A session's
 * processes, as /proc shows them: the descendants of its creator (the
 * `sockshim run` that made the segment) and of the processes in its
 * process table. Used for the words of `holders` and `stats`. */
#ifndef SOCKSHIM_UNSEEN_H
#define SOCKSHIM_UNSEEN_H

#include "ledger_read.h"
#include "outbuf.h"
#include "procfd.h"
#include "sockdiag.h"
#include "sockshim/segment.h"

/* The listeners (LISTEN sockets of KERN) that processes of the session
 * mapped at M hold in /proc (PF) and the ledger (SNAP; NULL: none) does
 * not know, as "NAME PID fd FD on ADDR", comma separated, into B. How
 * many there are. */
unsigned unseen_listeners(const struct seg_map *m, struct procfd *pf,
			  const struct sockdiag_list *kern, const struct ledger_snap *snap,
			  struct fmt_buf *b);

/* Is PID in the process table of the session mapped at M (a process with
 * the shim, or one whose image runs without it since an exec)? */
int session_proc_listed(const struct seg_map *m, pid_t pid);

/* The sentence `holders` and `stats` add when the ledger has nothing to
 * show and unseen_listeners found N (LIST): "...; /proc shows ...". */
#define UNSEEN_LISTENERS_FMT                                                                 \
	"its processes hold %u listener%s without the shim (a static, Go or set-user-ID "    \
	"image: from /proc only, no accept statistics): %s"

#endif
