/* The kernel's hand-over of the accept lock when its holder dies. While a
 * thread holds the lock, the pending entry of its robust list (the one
 * libc registered, Documentation/locking/robust-futex-ABI) names the lock
 * word; a thread that dies holding it (kill -9) then has the kernel mark
 * the word FUTEX_OWNER_DIED and wake one waiter, as for a robust mutex.
 * Costs no system call on the lock's path (one per thread, to find the
 * list), and never takes a libc lock. */
#ifndef SOCKSHIM_LOCK_ROBUST_H
#define SOCKSHIM_LOCK_ROBUST_H

#include <stdint.h>

/* Before trying to take the lock of WORD: name it as the thread's pending
 * robust entry. 0, or -ENOSYS when the thread has no robust list (then
 * only a waiter's look at /proc finds a dead holder). */
int lock_robust_hold(uint32_t *word);

/* After giving WORD back (or failing to take it): the pending entry is
 * what it was before lock_robust_hold. */
void lock_robust_release(uint32_t *word);

#endif
