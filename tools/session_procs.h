/* The processes of a session, from /proc: the process that created its
 * segment (`sockshim run`, or the first preloaded program), if the process
 * with that pid now is the one that did, and all its descendants. The
 * readers name them when the segment knows nothing of sockets the kernel
 * shows them holding: the shim is not loaded in a static, set-user-ID or
 * Go program. A snapshot: processes come and go while it is read. */
#ifndef SOCKSHIM_SESSION_PROCS_H
#define SOCKSHIM_SESSION_PROCS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct session_procs {
	pid_t *pids; /* sorted */
	size_t n;
};

/* One process as /proc/PID/stat gives it, for session_procs_pick. */
struct session_proc_stat {
	pid_t pid, ppid;
	uint64_t start_ticks; /* clock ticks after boot */
};

/* The pids in V (N processes) of the session whose segment process
 * CREATOR made at CREATED_BOOT_NS (CLOCK_BOOTTIME): CREATOR, if the
 * process of that pid in V started by then (TCK ticks a second; the start
 * is known to a tick), and its descendants. Pure: the tests give V. 0 or
 * -ENOMEM. */
int session_procs_pick(const struct session_proc_stat *v, size_t n, pid_t creator,
		       int64_t created_boot_ns, long tck, struct session_procs *out);

/* The same from /proc. 0, or -errno (/proc not mounted, -ENOMEM). */
int session_procs_read(pid_t creator, int64_t created_boot_ns, struct session_procs *out);

/* Is PID one of P's? */
int session_procs_has(const struct session_procs *p, pid_t pid);

void session_procs_free(struct session_procs *p);

#endif
