/* The /proc side of the reconciliation: socket descriptors of every
 * process we may look at, in one pass, indexed by inode (flatidx.c); and
 * process facts from /proc/PID/stat, read lazily so a scan over thousands
 * of sockets costs one stat read per distinct holder, not per socket.
 * The readlinks of a big fd directory are shared out in chunks to the
 * threads that help the scan (procfd_help). */
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
#include "flatidx.h"
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
};

/* Socket descriptors found, in the order found. */
struct ref_vec {
	struct procfd_ref *v;
	size_t n, cap;
};

struct procfd {
	struct ref_vec refs;
	struct procfd_proc *procv; /* the array; the hash points into it */
	size_t nproc, proc_cap;
	struct procfd_proc *procs;
	struct procfd_idx *idxv; /* the runs, by inode */
	struct flatidx by_inode;  /* positions in idxv */
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

static int add_ref(struct ref_vec *r, uint64_t inode, pid_t pid, int fd)
{
	if (grow((void **)&r->v, &r->cap, r->n + 1, sizeof(*r->v)))
		return -ENOMEM;
	r->v[r->n].inode = inode;
	r->v[r->n].pid = pid;
	r->v[r->n].fd = fd;
	r->n++;
	return 0;
}

/* FROM's references after TO's. 0 or -ENOMEM (TO as it was). */
static int append_refs(struct ref_vec *to, const struct ref_vec *from)
{
	if (!from->n)
		return 0;
	if (grow((void **)&to->v, &to->cap, to->n + from->n, sizeof(*to->v)))
		return -ENOMEM;
	memcpy(to->v + to->n, from->v, from->n * sizeof(*to->v));
	to->n += from->n;
	return 0;
}

/* FD in decimal, as /proc/PID/fd names it (snprintf cost a tenth of a
 * scan's instructions). */
static const char *fd_name(char buf[12], int fd)
{
	char *p = buf + 11;
	unsigned v = (unsigned)fd;

	*p = 0;
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return p;
}

/* Descriptor FD (>= 0) of process PID, whose /proc/PID/fd is DFD, into R
 * if it is a socket. Closed meanwhile, or a link too long to be a
 * socket's name: not one. 0 or -ENOMEM. */
static int read_one(int dfd, pid_t pid, int fd, struct ref_vec *r)
{
	char name[12], link[LINK_MAX_LEN];
	uint64_t inode;
	ssize_t n;

	n = readlinkat(dfd, fd_name(name, fd), link, sizeof(link));
	if (n <= 0 || (size_t)n >= sizeof(link))
		return 0;
	if (procfd_parse_socket_link(link, (size_t)n, &inode))
		return 0;
	return add_ref(r, inode, pid, fd);
}

/* ---- Sharing a big directory's readlinks (a system call each, most of
 * a scan's time: 10,000 take 35 ms, two threads 21 ms). The scan reads
 * a directory's first FDS_CHUNK descriptors itself; the next ones go to
 * the queue in chunks of FDS_CHUNK, which the scan and its helpers take;
 * the scan has read them all (or a helper is reading the last ones)
 * before it lists the next process. A chunk holds the directory open
 * (fd_dir.users): its descriptor numbers name that process's
 * descriptors, whoever reads them. ---- */

/* Descriptors a chunk: about a millisecond of readlinks. */
#define FDS_CHUNK 256

/* One /proc/PID/fd, open while the scan or a chunk needs it. */
struct fd_dir {
	int dfd;
	pid_t pid;
	unsigned users; /* the scan, while it lists, and each chunk */
};

struct fd_chunk {
	struct fd_chunk *next;
	struct fd_dir *dir;
	size_t n;
	int fd[FDS_CHUNK];
};

struct procfd_share {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* a chunk queued, the listing ended, a helper left */
	struct fd_chunk *queue;
	int listing_done; /* no chunk will be queued any more */
	int closed;       /* the scan took the helpers' findings: too late to help */
	unsigned helpers; /* in procfd_help */
	struct ref_vec found; /* what the helpers that left read */
	int rc;               /* a helper's -ENOMEM */
};

int procfd_share_new(struct procfd_share **out)
{
	struct procfd_share *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return -ENOMEM;
	if (pthread_mutex_init(&s->lock, NULL)) {
		free(s);
		return -ENOMEM;
	}
	if (pthread_cond_init(&s->changed, NULL)) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void procfd_share_free(struct procfd_share *s)
{
	if (!s)
		return;
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
	free(s->found.v);
	free(s);
}

/* Under S's lock. */
static void dir_put_locked(struct fd_dir *d)
{
	if (--d->users)
		return;
	close(d->dfd);
	free(d);
}

static void queue_chunk(struct procfd_share *s, struct fd_chunk *c)
{
	pthread_mutex_lock(&s->lock);
	c->dir->users++;
	c->next = s->queue;
	s->queue = c;
	pthread_cond_signal(&s->changed);
	pthread_mutex_unlock(&s->lock);
}

/* Read queued chunks into R until the queue is empty, and then, if WAIT,
 * until the listing has ended too. An error is S's. */
static void take_chunks(struct procfd_share *s, struct ref_vec *r, int wait)
{
	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct fd_chunk *c = s->queue;
		size_t i;
		int rc = 0;

		if (!c) {
			if (!wait || s->listing_done)
				break;
			pthread_cond_wait(&s->changed, &s->lock);
			continue;
		}
		s->queue = c->next;
		pthread_mutex_unlock(&s->lock);
		for (i = 0; i < c->n && !rc; i++)
			rc = read_one(c->dir->dfd, c->dir->pid, c->fd[i], r);
		pthread_mutex_lock(&s->lock);
		if (rc && !s->rc)
			s->rc = rc;
		dir_put_locked(c->dir);
		free(c);
	}
	pthread_mutex_unlock(&s->lock);
}

size_t procfd_help(struct procfd_share *s)
{
	struct ref_vec mine = {0};
	size_t n;

	pthread_mutex_lock(&s->lock);
	if (s->closed) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	s->helpers++;
	pthread_mutex_unlock(&s->lock);
	take_chunks(s, &mine, 1);
	pthread_mutex_lock(&s->lock);
	n = mine.n;
	if (!s->rc)
		s->rc = append_refs(&s->found, &mine);
	s->helpers--;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	free(mine.v);
	return n;
}

/* The listing has ended: read what is queued, wait for the helpers to
 * leave, and take what they read into R (NULL: drop it). 0 or -ENOMEM. */
static int share_close(struct procfd_share *s, struct ref_vec *r)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	s->listing_done = 1;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	if (r)
		take_chunks(s, r, 0); /* chunks an error left queued */
	pthread_mutex_lock(&s->lock);
	while (s->helpers)
		pthread_cond_wait(&s->changed, &s->lock);
	s->closed = 1;
	rc = s->rc;
	if (!rc && r)
		rc = append_refs(r, &s->found);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* The descriptor FD beyond the first FDS_CHUNK of PR, whose directory is
 * DFD: into *CHUNK, queued once full. Read here when memory for sharing
 * it cannot be had. 0 or -errno. */
static int share_fd(struct procfd *p, struct procfd_share *s, int dfd, struct procfd_proc *pr,
		    struct fd_dir **dir, struct fd_chunk **chunk, int fd)
{
	if (!*dir) {
		struct fd_dir *d = malloc(sizeof(*d));
		int copy = d ? fcntl(dfd, F_DUPFD_CLOEXEC, 0) : -1;

		if (copy < 0) {
			free(d);
			return read_one(dfd, pr->pid, fd, &p->refs);
		}
		d->dfd = copy;
		d->pid = pr->pid;
		d->users = 1;
		*dir = d;
	}
	if (!*chunk) {
		*chunk = malloc(sizeof(**chunk));
		if (!*chunk)
			return read_one(dfd, pr->pid, fd, &p->refs);
		(*chunk)->dir = *dir;
		(*chunk)->n = 0;
	}
	(*chunk)->fd[(*chunk)->n++] = fd;
	if ((*chunk)->n == FDS_CHUNK) {
		queue_chunk(s, *chunk);
		*chunk = NULL;
	}
	return 0;
}

/* ---- The scan ---- */

/* Read /proc/PID/fd through PROCDIR, its big directories shared through
 * S (NULL: alone). A process that exits meanwhile is simply gone; one we
 * may not look into is marked so, not an error. */
static int scan_fds(struct procfd *p, struct procfd_share *s, int procdir, struct procfd_proc *pr)
{
	struct fd_chunk *chunk = NULL;
	struct fd_dir *dir = NULL;
	char path[32];
	struct dirent *de;
	size_t count = 0;
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
		rc = errno;
		close(dfd);
		/* Exited since the open: fdopendir's fstat of the directory
		 * then says ENOENT. Gone, like one whose open failed, not a
		 * failed scan. */
		if (rc == ENOENT || rc == ESRCH) {
			pr->seen = PROCFD_GONE;
			return 0;
		}
		return -rc;
	}
	pr->seen = PROCFD_FDS_OK;
	while ((de = readdir(d))) {
		char *end;
		long fd;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		fd = strtol(de->d_name, &end, 10);
		if (*end || fd < 0 || fd > INT32_MAX)
			continue;
		if (!s || count++ < FDS_CHUNK)
			rc = read_one(dfd, pr->pid, (int)fd, &p->refs);
		else
			rc = share_fd(p, s, dfd, pr, &dir, &chunk, (int)fd);
		if (rc)
			break;
	}
	closedir(d);
	if (chunk)
		queue_chunk(s, chunk);
	if (dir) {
		take_chunks(s, &p->refs, 0);
		pthread_mutex_lock(&s->lock);
		dir_put_locked(dir);
		pthread_mutex_unlock(&s->lock);
	}
	if (!rc && s) {
		pthread_mutex_lock(&s->lock);
		rc = s->rc;
		pthread_mutex_unlock(&s->lock);
	}
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

	qsort(p->refs.v, p->refs.n, sizeof(*p->refs.v), by_inode_pid_fd);
	for (i = 0; i < p->refs.n; i++)
		if (i == 0 || p->refs.v[i].inode != p->refs.v[i - 1].inode)
			runs++;
	if (runs) {
		p->idxv = big_calloc(runs, sizeof(*p->idxv));
		if (!p->idxv)
			return -ENOMEM;
	}
	runs = 0;
	for (i = 0; i < p->refs.n; i++) {
		struct procfd_idx *x;

		if (i && p->refs.v[i].inode == p->refs.v[i - 1].inode) {
			p->idxv[runs - 1].n++;
			continue;
		}
		x = &p->idxv[runs++];
		x->inode = p->refs.v[i].inode;
		x->first = i;
		x->n = 1;
	}
	/* Flat: a look-up per socket of a report, where uthash's chains
	 * cost a cache miss a link. */
	if (flatidx_init(&p->by_inode, runs))
		return -ENOMEM;
	for (i = 0; i < runs; i++)
		flatidx_put(&p->by_inode, flatidx_hash_u64(p->idxv[i].inode), (uint32_t)i);
	for (i = 0; i < p->nproc; i++)
		HASH_ADD(hh, p->procs, pid, sizeof(pid_t), &p->procv[i]);
	return 0;
}

/* List /proc into P, sharing big directories through S (NULL: alone). */
static int scan_procs(struct procfd *p, struct procfd_share *s)
{
	struct dirent *de;
	pid_t self = getpid();
	int procdir, rc = 0;
	DIR *d;

	procdir = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procdir < 0)
		return -errno;
	d = fdopendir(procdir);
	if (!d) {
		rc = -errno;
		close(procdir);
		return rc;
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
		rc = scan_fds(p, s, procdir, pr);
		if (rc)
			break;
		if (pr->seen != PROCFD_GONE)
			p->nproc++;
	}
	closedir(d);
	return rc;
}

int procfd_scan_shared(struct procfd_share *s, struct procfd **out)
{
	struct procfd *p;
	int rc, share_rc = 0;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (p) {
		pthread_mutex_init(&p->stat_lock, NULL);
		rc = scan_procs(p, s);
	} else {
		rc = -ENOMEM;
	}
	/* Whatever happened, the helpers are let go. */
	if (s)
		share_rc = share_close(s, p ? &p->refs : NULL);
	if (!rc)
		rc = share_rc;
	if (!rc)
		rc = build_index(p);
	if (rc)
		procfd_free(p);
	else
		*out = p;
	return rc;
}

int procfd_scan(struct procfd **out)
{
	return procfd_scan_shared(NULL, out);
}

void procfd_free(struct procfd *p)
{
	if (!p)
		return;
	flatidx_free(&p->by_inode);
	HASH_CLEAR(hh, p->procs);
	free(p->idxv);
	free(p->procv);
	free(p->refs.v);
	pthread_mutex_destroy(&p->stat_lock);
	free(p);
}

const struct procfd_ref *procfd_refs(const struct procfd *p, uint64_t inode, size_t *n)
{
	struct flatidx_walk w;
	uint32_t at;

	for (at = flatidx_first(&p->by_inode, flatidx_hash_u64(inode), &w); at != FLATIDX_END;
	     at = flatidx_next(&p->by_inode, &w)) {
		if (p->idxv[at].inode == inode) {
			*n = p->idxv[at].n;
			return &p->refs.v[p->idxv[at].first];
		}
	}
	*n = 0;
	return NULL;
}

const struct procfd_ref *procfd_all(const struct procfd *p, size_t *n)
{
	*n = p->refs.n;
	return p->refs.v;
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
