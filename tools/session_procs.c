/* A session's processes: its segment's creator and the tree below it, by
 * the parent pids /proc gives. Reads /proc only; never trusts the header's
 * pid further than the start time confirms it. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procfd.h"
#include "session_procs.h"

static int by_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

int session_procs_pick(const struct session_proc_stat *v, size_t n, pid_t creator,
		       int64_t created_boot_ns, long tck, struct session_procs *out)
{
	size_t i, done, k = 0;
	int found = 0;

	out->pids = NULL;
	out->n = 0;
	if (creator <= 0 || tck <= 0 || created_boot_ns <= 0)
		return 0;
	for (i = 0; i < n; i++)
		if (v[i].pid == creator &&
		    (long double)v[i].start_ticks * 1e9L / (long double)tck <=
			    (long double)created_boot_ns + 1e9L / (long double)tck)
			found = 1;
	if (!found)
		return 0; /* gone, or its pid is another process's now */
	out->pids = malloc((n + 1) * sizeof(*out->pids));
	if (!out->pids)
		return -ENOMEM;
	out->pids[k++] = creator;
	/* Breadth first: each process's children once; a loop in what /proc
	 * gave (pids reused meanwhile) ends when nothing new is found. */
	for (done = 0; done < k; done++)
		for (i = 0; i < n; i++) {
			size_t j;
			int have = 0;

			if (v[i].ppid != out->pids[done] || v[i].pid <= 0)
				continue;
			for (j = 0; j < k && !have; j++)
				have = out->pids[j] == v[i].pid;
			if (!have && k <= n)
				out->pids[k++] = v[i].pid;
		}
	qsort(out->pids, k, sizeof(*out->pids), by_pid);
	out->n = k;
	return 0;
}

/* Every process's pid, parent and start, from /proc/PID/stat. */
static int read_all(struct session_proc_stat **out, size_t *nout)
{
	struct session_proc_stat *v = NULL, *bigger;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir("/proc");
	int rc = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[sizeof("/proc//stat") + sizeof(de->d_name)], buf[1024];
		struct procfd_stat st;
		ssize_t len;
		int fd;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone meanwhile */
		len = read(fd, buf, sizeof(buf));
		close(fd);
		if (len <= 0 || procfd_parse_stat(buf, (size_t)len, &st))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			bigger = realloc(v, cap * sizeof(*v));
			if (!bigger) {
				rc = -ENOMEM;
				break;
			}
			v = bigger;
		}
		v[n].pid = (pid_t)atoi(de->d_name);
		v[n].ppid = st.ppid;
		v[n].start_ticks = st.start_ticks;
		n++;
	}
	closedir(d);
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*nout = n;
	return 0;
}

int session_procs_read(pid_t creator, int64_t created_boot_ns, struct session_procs *out)
{
	struct session_proc_stat *v = NULL;
	size_t n = 0;
	int rc;

	out->pids = NULL;
	out->n = 0;
	rc = read_all(&v, &n);
	if (rc)
		return rc;
	rc = session_procs_pick(v, n, creator, created_boot_ns, procfd_clk_tck(), out);
	free(v);
	return rc;
}

int session_procs_has(const struct session_procs *p, pid_t pid)
{
	return p->n && bsearch(&pid, p->pids, p->n, sizeof(pid), by_pid) != NULL;
}

void session_procs_free(struct session_procs *p)
{
	free(p->pids);
	p->pids = NULL;
	p->n = 0;
}
