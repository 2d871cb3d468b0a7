/* select's meaning in poll's terms: what a serialized select asks poll
 * for, and what it answers for what poll said (shim/calls_poll.c waits in
 * ppoll for select and pselect). Pure functions. */
#ifndef SOCKSHIM_SELECT_POLL_H
#define SOCKSHIM_SELECT_POLL_H

#include <poll.h>
#include <sys/select.h>

/* The poll events for descriptor FD of select's sets WANT (read, write,
 * except): what select waits for; 0 when FD is in none. */
short select_poll_events(const fd_set want[3], int fd);

/* select's answer for poll's PF (N entries, asked with
 * select_poll_events) into GOT: the number of bits set, or -1 when a
 * descriptor is not open (EBADF). An entry that poll reported for what
 * select does not report (a hangup of one asked for writing only) is left
 * out of the rest of the call (its fd set to -1): select would sleep on,
 * where poll would return at once, again and again. */
int select_poll_answer(struct pollfd *pf, nfds_t n, const fd_set want[3], fd_set got[3]);

#endif
