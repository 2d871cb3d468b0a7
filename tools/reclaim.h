/* Reclaiming references the shim could not see go: a descriptor closed by
 * a raw system call (inline assembly, a static runtime) or by an image
 * without the shim stays in the ledger until a reader proves it gone from
 * the kernel and /proc. The commands that read the ledger run it before
 * reading, on the copies they take anyway; the releases themselves are
 * the shim's own (shim/ledger.c), with its claims. */
#ifndef SOCKSHIM_RECLAIM_H
#define SOCKSHIM_RECLAIM_H

#include <stddef.h>
#include <stdint.h>

#include "ledger_read.h"
#include "procfd.h"
#include "sockdiag.h"

/* What the command's own look at the kernel was. */
struct reclaim_kernel {
	/* CLOCK_MONOTONIC before the command copied the ledger, scanned
	 * /proc or dumped anything: only sockets born and holders recorded
	 * before it are judged (one made during the look is not in it). */
	uint64_t since_ns;
	/* The command's dumps (NULL entries are skipped). */
	const struct sockdiag_list *lists[3];
	/* Full looks at every state a socket with a descriptor can be in
	 * among LISTS: 2 for a settled dump, 1 for one dump, 0 for dumps of
	 * some states only (a socket changing state between them is in
	 * none). A socket is judged freed only when missing from two full
	 * looks: the missing ones are taken, only when a socket needs them. */
	unsigned looks;
};

/* Reclaim in session SESSION what the ledger copy SNAP holds and the
 * kernel (K) and the /proc scan PF, taken after K->since_ns, prove gone:
 * - a holder whose process is there with its descriptors read, and
 *   whose /proc/PID/fd/FD is not socket:[inode] any more, of any family;
 * - every reference to a TCP socket that is in no dump (two full looks)
 *   and that no descriptor in /proc refers to.
 * Each release is a close record and a history step via gone. And the
 * holders that did not fit (holder_overflow) are named once /proc proves
 * which they are and a slot is free. M is the command's (read-only)
 * mapping of the session. Returns the references released and holders
 * named (then the copy is stale: take it again), 0 when nothing was to
 * do (the segment is not even opened for writing), or -errno when the
 * kernel could not be asked again. */
int reclaim_run(const char *session, const struct seg_map *m, const struct ledger_snap *snap,
		struct procfd *pf, const struct reclaim_kernel *k);

#endif
