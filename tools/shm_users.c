/* Finds the processes that map sockshim segments by reading /proc/PID/maps.
 * One pass over /proc builds a table keyed by (device, inode); processes
 * that exit mid-scan are skipped, never reported as errors. Only writable
 * mappings count: readers (sockshim events) map read-only, and a reader
 * following a session must not keep it alive. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <uthash.h>

#include "shm_users.h"
#include "sockshim/layout.h"

struct seg_key {
	dev_t dev;
	ino_t ino;
};

struct seg_users {
	struct seg_key key;
	int count;
	pid_t last_pid; /* a process maps a segment several times: count it once */
	pid_t pids[SHM_USERS_PIDS];
	UT_hash_handle hh;
};

struct shm_users {
	struct seg_users *table;
};

/* Only lines naming a segment interest us; the kernel appends
 * " (deleted)" to a removed one, which the key still tells apart. */
#define SEG_PATH_PREFIX SOCKSHIM_SHM_DIR "/" SOCKSHIM_SHM_PREFIX

static int note(struct shm_users *u, pid_t pid, dev_t dev, ino_t ino)
{
	struct seg_users *s;
	struct seg_key key;

	memset(&key, 0, sizeof(key));
	key.dev = dev;
	key.ino = ino;
	HASH_FIND(hh, u->table, &key, sizeof(key), s);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->key = key;
		HASH_ADD(hh, u->table, key, sizeof(key), s);
	}
	if (s->last_pid == pid)
		return 0;
	if (s->count < SHM_USERS_PIDS)
		s->pids[s->count] = pid;
	s->count++;
	s->last_pid = pid;
	return 0;
}

int shm_users_parse_maps_line(const char *line, dev_t *dev, ino_t *ino)
{
	unsigned maj, min;
	unsigned long long inode;
	char perms[8];
	int pos = 0;

	if (sscanf(line, "%*s %7s %*s %x:%x %llu %n", perms, &maj, &min, &inode, &pos) < 4 ||
	    !pos || perms[1] != 'w')
		return 0;
	if (strncmp(line + pos, SEG_PATH_PREFIX, sizeof(SEG_PATH_PREFIX) - 1) != 0)
		return 0;
	*dev = makedev(maj, min);
	*ino = (ino_t)inode;
	return 1;
}

static int scan_pid(struct shm_users *u, pid_t pid)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	dev_t dev;
	ino_t ino;
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	/* Gone, or another user's: such a process cannot map our 0600
	 * segment unless it is root's, and root reads every maps file. */
	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		if (!shm_users_parse_maps_line(line, &dev, &ino))
			continue;
		rc = note(u, pid, dev, ino);
		if (rc)
			goto out;
	}
out:
	free(line);
	fclose(f);
	return rc;
}

int shm_users_scan(struct shm_users **out)
{
	struct shm_users *u;
	struct dirent *de;
	pid_t self = getpid();
	DIR *d;
	int rc = 0;

	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	d = opendir("/proc");
	if (!d) {
		rc = -errno;
		goto out;
	}
	while ((de = readdir(d))) {
		char *end;
		long pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == self)
			continue;
		rc = scan_pid(u, (pid_t)pid);
		if (rc)
			break;
	}
	closedir(d);
out:
	if (rc)
		shm_users_free(u);
	else
		*out = u;
	return rc;
}

int shm_users_count(const struct shm_users *u, dev_t dev, ino_t ino,
		    pid_t pids[SHM_USERS_PIDS])
{
	struct seg_users *s;
	struct seg_key key;

	memset(&key, 0, sizeof(key));
	key.dev = dev;
	key.ino = ino;
	HASH_FIND(hh, u->table, &key, sizeof(key), s);
	if (!s)
		return 0;
	if (pids)
		memcpy(pids, s->pids, sizeof(s->pids));
	return s->count;
}

void shm_users_free(struct shm_users *u)
{
	struct seg_users *s, *tmp;

	if (!u)
		return;
	HASH_ITER(hh, u->table, s, tmp)
	{
		/* uthash's documented way to empty a table; the analyzer
		 * loses track of the list links inside HASH_DEL. */
		HASH_DEL(u->table, s); // NOLINT(clang-analyzer-unix.Malloc)
		free(s);
	}
	free(u);
}

int shm_users_of_path(const char *path, pid_t pids[SHM_USERS_PIDS])
{
	struct shm_users *u;
	struct stat st;
	int rc;

	if (lstat(path, &st) < 0)
		return -errno;
	rc = shm_users_scan(&u);
	if (rc)
		return rc;
	rc = shm_users_count(u, st.st_dev, st.st_ino, pids);
	shm_users_free(u);
	return rc;
}
