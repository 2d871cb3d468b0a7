/* fork: the parent logs it with the child's pid; the child becomes a holder
 * of every socket it inherited. Works for fork() called through us and,
 * through pthread_atfork, for any other path that runs the fork handlers. */
#ifndef SOCKSHIM_FORK_H
#define SOCKSHIM_FORK_H

#include <sys/types.h>

/* Register the pthread_atfork handlers. 0 or an errno value. */
int fork_install(void);

/* In a new child CHILD of PARENT (fork or vfork): hold every tracked
 * socket in the ledger. USE_RESERVATIONS: the parent counted these
 * references before the fork (fork, not vfork). */
void fork_child_holds(pid_t parent, pid_t child, int use_reservations);

#endif
