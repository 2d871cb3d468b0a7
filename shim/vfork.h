/* Knowing when we run in a vfork() child, which shares the parent's memory
 * (and so our descriptor table) until it execs or exits. */
#ifndef SOCKSHIM_VFORK_H
#define SOCKSHIM_VFORK_H

#include "export.h"

/* Set by vfork() in the calling thread (vfork.c); the child runs on the
 * same thread-local storage. */
extern SHIM_INTERNAL __thread int shim_vfork_pending __attribute__((tls_model("initial-exec")));

/* The rest of shim_in_vfork_child, once this thread called vfork(). */
int shim_vfork_child_check(void);

/* True in a vfork() child: it may read the descriptor table, not change
 * it. Inline: a thread-local load and a branch on every hot path that
 * asks (several per socket); no system call unless this thread called
 * vfork() since. */
static inline int shim_in_vfork_child(void)
{
	if (__builtin_expect(!shim_vfork_pending, 1))
		return 0;
	return shim_vfork_child_check();
}

#endif
