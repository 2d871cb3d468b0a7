/* Knowing when we run in a vfork() child, which shares the parent's memory
 * (and so our descriptor table) until it execs or exits. */
#ifndef SOCKSHIM_VFORK_H
#define SOCKSHIM_VFORK_H

/* True in a vfork() child: it may read the descriptor table, not change
 * it. No system call unless this thread called vfork() since. */
int shim_in_vfork_child(void);

#endif
