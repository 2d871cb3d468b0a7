/* accept under the pool policy: statistics in every mode but off, the
 * accept lock in serialize mode for blocking listeners. */
#ifndef SOCKSHIM_ACCEPT_H
#define SOCKSHIM_ACCEPT_H

#include <stdint.h>
#include <sys/socket.h>

#include "emit.h"
#include "listeners.h"
#include "real.h"

/* Listeners are counted: a mode but off, and a live segment. */
static inline int accept_counting(void)
{
	return accept_mode != SOCKSHIM_ACCEPT_OFF && !shim_inert && shim_seg_live();
}

/* The real accept (FOUR: accept4 with FLAGS) on listener FD, counted and,
 * if asked for, serialized. Returns what accept returns, errno set as the
 * kernel would; *DONE_NS: the clock when it returned if it was read (a
 * worker's last activity), else 0. */
int accept_run(int fd, struct sockaddr *addr, socklen_t *len, int flags, int four,
	       uint64_t *done_ns);

/* poll/select/epoll reported listener FD readable to this thread: its
 * next accept that finds nothing was woken for nothing (spurious). */
void accept_woken(int fd);

/* The listener entry (index + 1) of FD if it is a listener we count, else 0. */
uint32_t accept_listener_of(int fd);

#endif
