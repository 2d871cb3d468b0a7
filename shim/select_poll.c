/* select's meaning in poll's terms, as the kernel's select reports it
 * (fs/select.c: a descriptor is readable for POLLIN_SET, writable for
 * POLLOUT_SET, exceptional for POLLEX_SET). Pure: no call, no state. */
#include "select_poll.h"

#define ASK_IN (POLLIN | POLLRDNORM | POLLRDBAND)
#define ASK_OUT (POLLOUT | POLLWRNORM | POLLWRBAND)
#define ASK_EX POLLPRI
#define SELECT_IN_SET (POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR)
#define SELECT_OUT_SET (POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR)
#define SELECT_EX_SET POLLPRI

short select_poll_events(const fd_set want[3], int fd)
{
	return (short)((FD_ISSET(fd, &want[0]) ? ASK_IN : 0) |
		       (FD_ISSET(fd, &want[1]) ? ASK_OUT : 0) | (FD_ISSET(fd, &want[2]) ? ASK_EX : 0));
}

int select_poll_answer(struct pollfd *pf, nfds_t n, const fd_set want[3], fd_set got[3])
{
	int count = 0;
	nfds_t i;

	FD_ZERO(&got[0]);
	FD_ZERO(&got[1]);
	FD_ZERO(&got[2]);
	for (i = 0; i < n; i++) {
		int fd = pf[i].fd, before = count;
		short r = pf[i].revents;

		if (fd < 0 || !r)
			continue;
		if (r & POLLNVAL)
			return -1;
		if ((r & SELECT_IN_SET) && FD_ISSET(fd, &want[0])) {
			FD_SET(fd, &got[0]);
			count++;
		}
		if ((r & SELECT_OUT_SET) && FD_ISSET(fd, &want[1])) {
			FD_SET(fd, &got[1]);
			count++;
		}
		if ((r & SELECT_EX_SET) && FD_ISSET(fd, &want[2])) {
			FD_SET(fd, &got[2]);
			count++;
		}
		if (count == before)
			pf[i].fd = -1;
	}
	return count;
}
