/* Which live processes use a session segment: those that map it writable
 * (the shim, sockshim run), from /proc/PID/maps. Read-only readers do not
 * count. Matched on device and inode, so a segment removed and re-created
 * under the same name is not confused with the old one. Sees the processes
 * whose maps this user may read (all of them for root). */
#ifndef SOCKSHIM_SHM_USERS_H
#define SOCKSHIM_SHM_USERS_H

#include <sys/types.h>

/* Pids remembered per segment, for messages; the count is exact. */
#define SHM_USERS_PIDS 8

struct shm_users;

/* Scan every process but ourselves once. 0 or -errno. */
int shm_users_scan(struct shm_users **out);

/* How many scanned processes map the file DEV/INO; up to SHM_USERS_PIDS
 * of their pids go to PIDS (may be NULL). */
int shm_users_count(const struct shm_users *u, dev_t dev, ino_t ino,
		    pid_t pids[SHM_USERS_PIDS]);

void shm_users_free(struct shm_users *u);

/* Scan for the one file at PATH: the number of processes mapping it, or
 * -errno (-ENOENT when PATH does not exist). */
int shm_users_of_path(const char *path, pid_t pids[SHM_USERS_PIDS]);

/* ---- Pure parser, for the tests. ---- */

/* One line of /proc/PID/maps (NUL-terminated): 1 when it maps a session
 * segment writable, with the file's device and inode in *DEV and *INO;
 * 0 for any other line. */
int shm_users_parse_maps_line(const char *line, dev_t *dev, ino_t *ino);

#endif
