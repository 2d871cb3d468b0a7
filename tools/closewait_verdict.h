/* closewait's verdict: why one TCP socket sits in CLOSE_WAIT, decided
 * from evidence the caller gathered (the kernel's view, the ledger's entry,
 * the holders reconciled with /proc). A pure function: no I/O, no globals,
 * no formatting; the text and JSON printers only render what it returns. */
#ifndef SOCKSHIM_CLOSEWAIT_VERDICT_H
#define SOCKSHIM_CLOSEWAIT_VERDICT_H

#include <stdint.h>

#include "ledger_read.h"
#include "reconcile.h"

/* In the order they are decided: the first that applies wins. */
enum cw_verdict {
	CW_UNACCEPTED,
	CW_HUNG_HOLDER,
	CW_EOF_READ_NOT_CLOSED,
	CW_INHERITED,
	CW_EOF_NOT_READ,
	CW_UNKNOWN,
	CW_VERDICT_COUNT
};

/* Why a socket is INHERITED, in the order checked. */
enum cw_inherit {
	CW_INH_NONE,            /* not INHERITED */
	CW_INH_NOEFFECT_CLOSES, /* the ledger counted closes that left references */
	CW_INH_NOEFFECT_STEPS,  /* its history holds such a close (or an exit) */
	CW_INH_HANDED_ON,       /* the owner holds no copy; others got it by fork,
				 * exec, SCM_RIGHTS or dup */
};

/* What an UNKNOWN verdict can still say about the peer's EOF. */
enum cw_eof {
	CW_EOF_UNSAID,       /* not UNKNOWN, or Recv-Q not empty: nothing to say */
	CW_EOF_READ_BY_GONE, /* Recv-Q 0, and the ledger saw a reader that holds it no more */
	CW_EOF_READ_UNSEEN,  /* Recv-Q 0, and the ledger did not see who read it */
};

/* The facts about one socket in CLOSE_WAIT. */
struct cw_evidence {
	uint64_t inode;          /* the kernel's; 0: no descriptor (never accepted) */
	uint32_t recv_q;         /* the kernel's Recv-Q: the peer's FIN counts as one */
	const struct ledger_sock *ls; /* the ledger's entry, or NULL */
	unsigned noeffect_steps; /* closes in LS's history that left references */
	const struct rec_sock *rs; /* its holders: the ledger's checked against /proc */
};

struct cw_decision {
	enum cw_verdict verdict;
	/* HUNG_HOLDER: the first live holder stopped or in uninterruptible
	 * sleep; EOF_READ_NOT_CLOSED: the first live holder that is the
	 * process which read the EOF. An index into rs->h, else -1. */
	int holder;
	enum cw_inherit inherit;
	int owner_holds; /* INHERITED: the process that created or accepted it
			  * still has a live copy */
	enum cw_eof eof;
};

/* Decide the verdict of the socket E describes into D; returns it. */
enum cw_verdict cw_decide(const struct cw_evidence *e, struct cw_decision *d);

/* "UNACCEPTED", "HUNG-HOLDER", ...; NULL when V is out of range. */
const char *cw_verdict_name(enum cw_verdict v);

#endif
