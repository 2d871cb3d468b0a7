/* Who holds which socket according to /proc: one pass over /proc/PID/fd
 * builds a table socket inode -> (pid, fd), and per-process facts (name,
 * state, start time) are read from /proc/PID/stat on demand, once each.
 * A snapshot: processes come and go while it is taken, and are skipped. */
#ifndef SOCKSHIM_PROCFD_H
#define SOCKSHIM_PROCFD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One descriptor that refers to a socket. */
struct procfd_ref {
	uint64_t inode;
	pid_t pid;
	int fd;
};

/* What /proc/PID/stat says about a process. */
struct procfd_stat {
	char comm[16];        /* at most 15 bytes, as the kernel keeps it */
	char state;           /* R S D T t Z X I ... */
	pid_t ppid;
	uint64_t start_ticks; /* field 22: clock ticks after boot */
};

/* Where a process stands in the scan. */
enum procfd_seen {
	PROCFD_GONE = 0,  /* not in /proc when scanned */
	PROCFD_FDS_OK,    /* its descriptors were all read */
	PROCFD_FDS_DENIED /* it exists, but its fd directory is not ours to read */
};

struct procfd;

/* Scan every process but ourselves. 0 or -errno (-ENOMEM, or /proc not
 * mounted). */
int procfd_scan(struct procfd **out);

void procfd_free(struct procfd *p);

/* Threads that help one scan: the readlinks of a big /proc/PID/fd (one
 * system call a descriptor, most of a scan's time) are shared out in
 * chunks to whoever calls procfd_help while it runs. */
struct procfd_share;

/* 0 or -ENOMEM. */
int procfd_share_new(struct procfd_share **out);
/* Once the scan has returned and no thread helps any more. */
void procfd_share_free(struct procfd_share *s);
/* procfd_scan, sharing its big directories through S (NULL: alone). The
 * same result, whoever read what. Lets every helper go before it
 * returns, also on failure. */
int procfd_scan_shared(struct procfd_share *s, struct procfd **out);
/* Read S's chunks until its scan no longer needs help: the descriptors
 * this thread read (at once 0 when the scan is over, or never queues a
 * chunk). Only while procfd_scan_shared(S) runs or will run: it is what
 * lets a helper go. */
size_t procfd_help(struct procfd_share *s);

/* The descriptors referring to socket INODE: *N of them at the result
 * (NULL and 0 when none), sorted by pid then fd. */
const struct procfd_ref *procfd_refs(const struct procfd *p, uint64_t inode, size_t *n);

/* Every socket descriptor found, sorted by inode, pid, fd. */
const struct procfd_ref *procfd_all(const struct procfd *p, size_t *n);

/* Whether process PID was seen, and whether its descriptors were read. */
enum procfd_seen procfd_seen(const struct procfd *p, pid_t pid);

/* 1 if /proc/PID/fd/FD was socket:[INODE] in the scan, 0 if not, -ENOENT
 * when PID was not there, -EACCES when its descriptors were unreadable. */
int procfd_holds(const struct procfd *p, pid_t pid, int fd, uint64_t inode);

/* /proc/PID/stat of PID, read the first time it is asked for. NULL when
 * the process is gone (or was never seen by the scan). */
const struct procfd_stat *procfd_stat(struct procfd *p, pid_t pid);

/* Whether a process (seen by the scan) runs with the shim, as
 * tools/noshim.c finds from the session's process table and /proc. */
enum procfd_shim {
	PROCFD_SHIM_UNKNOWN = 0, /* not its entry's process, or no entry */
	/* Its image runs without the shim: its descriptors are known from
	 * /proc only. */
	PROCFD_SHIM_WITHOUT,
	/* Its entry is its own (start time) and its image the one the shim
	 * named there: a holder of it that only /proc shows is one the
	 * ledger had no room for, not one the shim could not see. */
	PROCFD_SHIM_WITH,
};

void procfd_set_shim(struct procfd *p, pid_t pid, enum procfd_shim shim);
enum procfd_shim procfd_shim(const struct procfd *p, pid_t pid);

/* Clock ticks per second, for start_ticks. */
long procfd_clk_tck(void);

/* ---- Pure parsers, for the tests. ---- */

/* "socket:[12345]" -> 12345. 0, or -EINVAL for anything else. */
int procfd_parse_socket_link(const char *link, size_t len, uint64_t *inode);

/* The contents of /proc/PID/stat (LEN bytes, need not be terminated).
 * The name may hold blanks and parentheses: it ends at the last ')'.
 * 0 or -EINVAL. */
int procfd_parse_stat(const char *buf, size_t len, struct procfd_stat *st);

#endif
