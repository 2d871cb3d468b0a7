/* The /proc side of the reconciliation: socket descriptors of every
 * process we may look at, in one pass, indexed by inode with uthash; and
 * process facts from /proc/PID/stat, read lazily so a scan over thousands
 * of sockets costs one stat read per distinct holder, not per socket. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "uthash_int.h"

#include "bigmem.h"
#include "procfd.h"

struct procfd_proc {
	pid_t pid;
	enum procfd_seen seen;
	int stat_read; /* 0: not yet; 1: st is valid; -1: gone when read */
	enum procfd_shim shim; /* noshim.c's finding */
	struct procfd_stat st;
	UT_hash_handle hh;
};

/* The run of refs[] with one inode. */
struct procfd_idx {
	uint64_t inode;
	size_t first, n;
	UT_hash_handle hh;
};

struct procfd {
	struct procfd_ref *refs;
	size_t nrefs, refs_cap;
	struct procfd_proc *procv; /* the array; the hash points into it */
	size_t nproc, proc_cap;
	struct procfd_proc *procs;
	struct procfd_idx *idxv;
	struct procfd_idx *idx;
	pthread_mutex_t stat_lock; /* the stat files are read on demand, by any thread */
};

/* "socket:[" and the longest inode, with room to spare: a longer link
 * target is some other file. */
#define LINK_MAX_LEN 64

int procfd_parse_socket_link(const char *link, size_t len, uint64_t *inode)
{
	static const char pre[] = "socket:[";
	uint64_t v = 0;
	size_t i = sizeof(pre) - 1;

	if (len < sizeof(pre) + 1 || memcmp(link, pre, sizeof(pre) - 1) != 0 || link[len - 1] != ']')
		return -EINVAL;
	for (; i < len - 1; i++) {
		unsigned d = (unsigned)(link[i] - '0');

		if (link[i] < '0' || link[i] > '9' || v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*inode = v;
	return 0;
}

int procfd_parse_stat(const char *buf, size_t len, struct procfd_stat *st)
{
	const char *open = memchr(buf, '(', len), *close = NULL, *p, *end = buf + len;
	unsigned long long v;
	size_t n;
	int field;

	memset(st, 0, sizeof(*st));
	if (!open)
		return -EINVAL;
	/* The name is anything, ')' included: it ends at the last one. */
	for (p = open + 1; p < end; p++)
		if (*p == ')')
			close = p;
	if (!close || close + 2 >= end || close[1] != ' ')
		return -EINVAL;
	n = (size_t)(close - open - 1);
	if (n >= sizeof(st->comm))
		n = sizeof(st->comm) - 1;
	memcpy(st->comm, open + 1, n);
	st->comm[n] = 0;
	/* Fields after the name: 3 is the state, 4 the parent, 22 the start. */
	p = close + 2;
	for (field = 3; field <= 22 && p < end; field++) {
		const char *tok = p;

		while (p < end && *p != ' ' && *p != '\n')
			p++;
		if (p == tok)
			return -EINVAL;
		if (field == 3) {
			if (p - tok != 1)
				return -EINVAL;
			st->state = tok[0];
		} else if (field == 4 || field == 22) {
			v = 0;
			for (; tok < p; tok++) {
				if (*tok < '0' || *tok > '9' || v > (~0ULL - 9) / 10)
					return -EINVAL;
				v = v * 10 + (unsigned long long)(*tok - '0');
			}
			if (field == 4)
				st->ppid = (pid_t)v;
			else
				st->start_ticks = v;
		}
		if (field == 22)
			return 0;
		if (p < end && *p == ' ')
			p++;
	}
	return -EINVAL;
}

long procfd_clk_tck(void)
{
	static long tck; /* any thread may ask: the same answer */
	long t = __atomic_load_n(&tck, __ATOMIC_RELAXED);

	if (!t) {
		t = sysconf(_SC_CLK_TCK);
		if (t <= 0)
			t = 100; /* what every Linux port has used */
		__atomic_store_n(&tck, t, __ATOMIC_RELAXED);
	}
	return t;
}

static int grow(void **v, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 256;
	void *nv;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	nv = big_realloc(*v, ncap * size);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

static int add_ref(struct procfd *p, uint64_t inode, pid_t pid, int fd)
{
	if (grow((void **)&p->refs, &p->refs_cap, p->nrefs + 1, sizeof(*p->refs)))
		return -ENOMEM;
	p->refs[p->nrefs].inode = inode;
	p->refs[p->nrefs].pid = pid;
	p->refs[p->nrefs].fd = fd;
	p->nrefs++;
	return 0;
}

/* Read /proc/PID/fd through PROCDIR. A process that exits meanwhile is
 * simply gone; one we may not look into is marked so, not an error. */
static int scan_fds(struct procfd *p, int procdir, struct procfd_proc *pr)
{
	char path[32], link[LINK_MAX_LEN];
	struct dirent *de;
	uint64_t inode;
	ssize_t n;
	DIR *d;
	int dfd, rc = 0;

	snprintf(path, sizeof(path), "%d/fd", (int)pr->pid);
	dfd = openat(procdir, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		pr->seen = errno == EACCES || errno == EPERM ? PROCFD_FDS_DENIED : PROCFD_GONE;
		return 0;
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	pr->seen = PROCFD_FDS_OK;
	while ((de = readdir(d))) {
		char *end;
		long fd;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		n = readlinkat(dfd, de->d_name, link, sizeof(link));
		/* Closed meanwhile, or too long to be a socket's name. */
		if (n <= 0 || (size_t)n >= sizeof(link))
			continue;
		if (procfd_parse_socket_link(link, (size_t)n, &inode))
			continue;
		fd = strtol(de->d_name, &end, 10);
		if (*end || fd < 0 || fd > INT32_MAX)
			continue;
		rc = add_ref(p, inode, pr->pid, (int)fd);
		if (rc)
			break;
	}
	closedir(d);
	return rc;
}

static int by_inode_pid_fd(const void *a, const void *b)
{
	const struct procfd_ref *x = a, *y = b;

	if (x->inode != y->inode)
		return x->inode < y->inode ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

/* Index refs[] (sorted) and the processes, now that neither array moves. */
static int build_index(struct procfd *p)
{
	size_t i, runs = 0;

	qsort(p->refs, p->nrefs, sizeof(*p->refs), by_inode_pid_fd);
	for (i = 0; i < p->nrefs; i++)
		if (i == 0 || p->refs[i].inode != p->refs[i - 1].inode)
			runs++;
	if (runs) {
		p->idxv = big_calloc(runs, sizeof(*p->idxv));
		if (!p->idxv)
			return -ENOMEM;
	}
	runs = 0;
	for (i = 0; i < p->nrefs; i++) {
		struct procfd_idx *x;

		if (i && p->refs[i].inode == p->refs[i - 1].inode) {
			p->idxv[runs - 1].n++;
			continue;
		}
		x = &p->idxv[runs++];
		x->inode = p->refs[i].inode;
		x->first = i;
		x->n = 1;
		HASH_ADD(hh, p->idx, inode, sizeof(x->inode), x);
	}
	for (i = 0; i < p->nproc; i++)
		HASH_ADD(hh, p->procs, pid, sizeof(pid_t), &p->procv[i]);
	return 0;
}

int procfd_scan(struct procfd **out)
{
	struct procfd *p;
	struct dirent *de;
	pid_t self = getpid();
	int procdir, rc = 0;
	DIR *d;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->stat_lock, NULL);
	procdir = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procdir < 0) {
		rc = -errno;
		goto out;
	}
	d = fdopendir(procdir);
	if (!d) {
		rc = -errno;
		close(procdir);
		goto out;
	}
	while ((de = readdir(d))) {
		struct procfd_proc *pr;
		char *end;
		long pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid > INT32_MAX || pid == self)
			continue;
		rc = grow((void **)&p->procv, &p->proc_cap, p->nproc + 1, sizeof(*p->procv));
		if (rc)
			break;
		pr = &p->procv[p->nproc];
		memset(pr, 0, sizeof(*pr));
		pr->pid = (pid_t)pid;
		rc = scan_fds(p, procdir, pr);
		if (rc)
			break;
		if (pr->seen != PROCFD_GONE)
			p->nproc++;
	}
	closedir(d);
	if (!rc)
		rc = build_index(p);
out:
	if (rc)
		procfd_free(p);
	else
		*out = p;
	return rc;
}

void procfd_free(struct procfd *p)
{
	if (!p)
		return;
	HASH_CLEAR(hh, p->idx);
	HASH_CLEAR(hh, p->procs);
	free(p->idxv);
	free(p->procv);
	free(p->refs);
	pthread_mutex_destroy(&p->stat_lock);
	free(p);
}

const struct procfd_ref *procfd_refs(const struct procfd *p, uint64_t inode, size_t *n)
{
	struct procfd_idx *x;

	HASH_FIND(hh, p->idx, &inode, sizeof(inode), x);
	if (!x) {
		*n = 0;
		return NULL;
	}
	*n = x->n;
	return &p->refs[x->first];
}

const struct procfd_ref *procfd_all(const struct procfd *p, size_t *n)
{
	*n = p->nrefs;
	return p->refs;
}

static struct procfd_proc *find_proc(const struct procfd *p, pid_t pid)
{
	struct procfd_proc *pr;

	HASH_FIND(hh, p->procs, &pid, sizeof(pid), pr);
	return pr;
}

enum procfd_seen procfd_seen(const struct procfd *p, pid_t pid)
{
	struct procfd_proc *pr = find_proc(p, pid);

	return pr ? pr->seen : PROCFD_GONE;
}

int procfd_holds(const struct procfd *p, pid_t pid, int fd, uint64_t inode)
{
	const struct procfd_ref *r;
	size_t n, i;

	switch (procfd_seen(p, pid)) {
	case PROCFD_GONE:
		return -ENOENT;
	case PROCFD_FDS_DENIED:
		return -EACCES;
	case PROCFD_FDS_OK:
		break;
	}
	r = procfd_refs(p, inode, &n);
	for (i = 0; i < n; i++)
		if (r[i].pid == pid && r[i].fd == fd)
			return 1;
	return 0;
}

static int read_stat(pid_t pid, struct procfd_stat *st)
{
	char path[32], buf[1024];
	ssize_t n;
	int fd, rc;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	rc = n < 0 ? -errno : procfd_parse_stat(buf, (size_t)n, st);
	close(fd);
	return rc;
}

const struct procfd_stat *procfd_stat(struct procfd *p, pid_t pid)
{
	struct procfd_proc *pr = find_proc(p, pid);

	int got;

	if (!pr)
		return NULL;
	pthread_mutex_lock(&p->stat_lock);
	if (!pr->stat_read)
		pr->stat_read = read_stat(pid, &pr->st) == 0 ? 1 : -1;
	got = pr->stat_read;
	pthread_mutex_unlock(&p->stat_lock);
	return got > 0 ? &pr->st : NULL;
}

void procfd_set_shim(struct procfd *p, pid_t pid, enum procfd_shim shim)
{
	struct procfd_proc *pr = find_proc(p, pid);

	if (pr)
		pr->shim = shim;
}

enum procfd_shim procfd_shim(const struct procfd *p, pid_t pid)
{
	const struct procfd_proc *pr = find_proc(p, pid);

	return pr ? pr->shim : PROCFD_SHIM_UNKNOWN;
}
