/* Reads one letter from /proc/TID/stat. In the shim, only on slow paths
 * (a waiter that has already waited a slice), never on a connection's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "sockshim/rawio.h"
#include "sockshim/thread_state.h"

int thread_state(pid_t tid)
{
	char path[40], buf[256], *p;
	int saved = errno, fd, state = -1;
	ssize_t n;

	if (tid <= 0)
		return 0;
	/* /proc/TID works for any thread, not only a process's first one. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		state = errno == ENOENT || errno == ESRCH ? 0 : -1;
		goto out;
	}
	n = rawio_read(fd, buf, sizeof(buf) - 1);
	rawio_close(fd);
	if (n <= 0) {
		state = n == 0 || errno == ESRCH ? 0 : -1;
		goto out;
	}
	buf[n] = 0;
	/* "TID (NAME) S ...": the name may hold spaces and ')'. */
	p = strrchr(buf, ')');
	if (p && p[1] == ' ' && p[2])
		state = (unsigned char)p[2];
out:
	errno = saved;
	return state;
}
