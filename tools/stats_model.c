/* The computations of `sockshim stats`, apart from any output: copying a
 * listener entry that other processes update, percentiles of log2
 * histograms, fairness. Everything read from the segment is a value to
 * check, never an index or a length to trust. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sockdiag.h"
#include "stats_model.h"

/* Tries at copying an entry whose owner changes under us: a listener
 * closed and another opened in the same slot, twice in a row, is news
 * the next snapshot will show. */
#define COPY_TRIES 2

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static const char *const mode_names[] = {
	[SOCKSHIM_ACCEPT_OBSERVE] = "observe",
	[SOCKSHIM_ACCEPT_SERIALIZE] = "serialize",
	[SOCKSHIM_ACCEPT_OFF] = "off",
};

const char *stats_mode_name(unsigned mode)
{
	return mode < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[mode] : NULL;
}

/* Copy one worker row, WAITING when its bit is set in the listener's
 * waiting word; 1 when it holds a worker, 0 when free, -1 when its key
 * names no thread (a corrupt row) or changed while copied. */
static int read_worker(const struct sockshim_worker *src, int waiting, struct stats_worker *w)
{
	uint64_t key = LOAD(&src->key), pid, tid;

	/* Free, or being recycled for a new worker this moment. */
	if (!key || key == SOCKSHIM_WORKER_RECYCLING)
		return 0;
	pid = key >> 32;
	tid = key & 0xffffffffu;
	if (!pid || pid > INT32_MAX || !tid || tid > INT32_MAX)
		return -1;
	w->pid = (int32_t)pid;
	w->tid = (int32_t)tid;
	w->calls = LOAD(&src->calls);
	w->accepts = LOAD(&src->accepts);
	w->spurious = LOAD(&src->spurious);
	w->empty = LOAD(&src->empty);
	w->eintr = LOAD(&src->eintr);
	w->lock_wait_ns = LOAD(&src->lock_wait_ns);
	w->last_ns = LOAD(&src->last_ns);
	w->waiting = waiting;
	return LOAD(&src->key) == key ? 1 : 0; /* recycled meanwhile: its counts moved */
}

/* Waiters now: the rows marked waiting, and the waiters without a row. */
static void count_waiters(struct stats_listener *s)
{
	unsigned i, n = s->nworkers < SOCKSHIM_WORKERS ? s->nworkers : SOCKSHIM_WORKERS;
	uint64_t total = s->waiters_unrowed;

	for (i = 0; i < n; i++)
		total += s->workers[i].waiting ? 1 : 0;
	s->waiters = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
}

static int by_thread(const void *a, const void *b)
{
	const struct stats_worker *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return (x->tid > y->tid) - (x->tid < y->tid);
}

/* Long (about 90 lines) for a plain reason: one load per field of the
 * listener, in the layout's order, then the rows; split, it would only
 * scatter the list a reader checks against layout.h. */
int stats_read_listener(const struct sockshim_listener *src, struct stats_listener *dst)
{
	const sockshim_word *ip = (const sockshim_word *)src->local_ip;
	uint64_t inode = LOAD(&src->inode), words[2], waiting;
	unsigned i, kept;
	int rc;

	memset(dst, 0, sizeof(*dst));
	/* Unused, or a claimer is still filling the entry in. */
	if (!sockshim_inode_in_use(inode))
		return -ENOENT;
	dst->inode = inode;
	dst->family = LOAD(&src->family);
	dst->mode = LOAD(&src->mode);
	dst->local_port = LOAD(&src->local_port);
	/* 8-aligned in the entry: two word loads, not a racing memcpy. */
	words[0] = LOAD(&ip[0]);
	words[1] = LOAD(&ip[1]);
	memcpy(dst->local_ip, words, sizeof(dst->local_ip));
	dst->listen_backlog = LOAD(&src->backlog);
	dst->lock_word = LOAD(&src->lock);
	dst->bypass_word = LOAD(&src->bypass_word);
	dst->bypass_reason = LOAD(&src->bypass_reason);
	dst->bypass_since_ns = LOAD(&src->bypass_since_ns);
	dst->waiters_unrowed = LOAD(&src->waiters_unrowed);
	waiting = LOAD(&src->waiting);
	dst->max_waiters = LOAD(&src->max_waiters);
	dst->holder_pid = LOAD(&src->holder_pid);
	dst->holder_tid = LOAD(&src->holder_tid);
	dst->held_since_ns = LOAD(&src->held_since_ns);
	dst->poller = LOAD(&src->poller);
	dst->poller_since_ns = LOAD(&src->poller_since_ns);
	dst->accept_calls = LOAD(&src->accept_calls);
	dst->accepts = LOAD(&src->accepts);
	dst->spurious = LOAD(&src->spurious);
	dst->empty = LOAD(&src->empty);
	dst->eintr = LOAD(&src->eintr);
	dst->econnaborted = LOAD(&src->econnaborted);
	dst->emfile = LOAD(&src->emfile);
	dst->wakeups = LOAD(&src->wakeups);
	dst->lock_acquisitions = LOAD(&src->lock_acquisitions);
	dst->lock_contended = LOAD(&src->lock_contended);
	dst->owner_died = LOAD(&src->owner_died);
	dst->worker_overflow = LOAD(&src->worker_overflow);
	dst->unlock_errors = LOAD(&src->unlock_errors);
	dst->token_waits = LOAD(&src->token_waits);
	dst->epoll_exclusive = LOAD(&src->epoll_exclusive);
	for (i = 0; i < SOCKSHIM_BYPASS_COUNT; i++) {
		dst->lock_bypassed[i] = LOAD(&src->lock_bypassed[i]);
		dst->token_taken[i] = LOAD(&src->token_taken[i]);
	}
	for (i = 0; i < STATS_BUCKETS; i++) {
		dst->wait_hist[i] = LOAD(&src->wait_hist[i]);
		dst->hold_hist[i] = LOAD(&src->hold_hist[i]);
		dst->life_hist[i] = LOAD(&src->life_hist[i]);
		dst->closewait_hist[i] = LOAD(&src->closewait_hist[i]);
	}
	dst->aborted = LOAD(&src->aborted);
	dst->token_handoffs = LOAD(&src->token_handoffs);
	/* A holder's pid is shown and looked up in /proc: a negative one is
	 * as meaningless as none. */
	if (dst->holder_pid <= 0 || dst->holder_tid < 0) {
		dst->holder_pid = 0;
		dst->holder_tid = 0;
		dst->held_since_ns = 0;
	}
	for (i = 0; i < SOCKSHIM_WORKERS; i++) {
		rc = read_worker(&src->workers[i], (int)((waiting >> i) & 1),
				 &dst->workers[dst->nworkers]);
		if (rc > 0)
			dst->nworkers++;
		else if (rc < 0)
			dst->bad_workers++;
	}
	qsort(dst->workers, dst->nworkers, sizeof(dst->workers[0]), by_thread);
	/* A thread claims one row, for itself: the same thread in another
	 * row is a scribble, counted as corrupt, not a second worker. */
	for (i = kept = 1; i < dst->nworkers; i++) {
		if (!by_thread(&dst->workers[i], &dst->workers[kept - 1]))
			dst->bad_workers++;
		else
			dst->workers[kept++] = dst->workers[i];
	}
	if (dst->nworkers)
		dst->nworkers = kept;
	count_waiters(dst);
	dst->retired_workers = LOAD(&src->retired.key);
	dst->retired.calls = LOAD(&src->retired.calls);
	dst->retired.accepts = LOAD(&src->retired.accepts);
	dst->retired.spurious = LOAD(&src->retired.spurious);
	dst->retired.empty = LOAD(&src->retired.empty);
	dst->retired.eintr = LOAD(&src->retired.eintr);
	dst->retired.lock_wait_ns = LOAD(&src->retired.lock_wait_ns);
	dst->retired.last_ns = LOAD(&src->retired.last_ns);
	return LOAD(&src->inode) == inode ? 0 : -EAGAIN;
}

static void add_sat(uint64_t *to, uint64_t v)
{
	if (__builtin_add_overflow(*to, v, to))
		*to = UINT64_MAX;
}

size_t stats_retire_ended(struct stats_listener *s, int (*ended)(int32_t pid, int32_t tid))
{
	size_t i, kept = 0, moved = 0;
	size_t n = s->nworkers < SOCKSHIM_WORKERS ? s->nworkers : SOCKSHIM_WORKERS;

	for (i = 0; i < n; i++) {
		const struct stats_worker *w = &s->workers[i];

		if (!ended(w->pid, w->tid)) {
			s->workers[kept++] = *w;
			continue;
		}
		add_sat(&s->retired.calls, w->calls);
		add_sat(&s->retired.accepts, w->accepts);
		add_sat(&s->retired.spurious, w->spurious);
		add_sat(&s->retired.empty, w->empty);
		add_sat(&s->retired.eintr, w->eintr);
		add_sat(&s->retired.lock_wait_ns, w->lock_wait_ns);
		if (w->last_ns > s->retired.last_ns)
			s->retired.last_ns = w->last_ns;
		add_sat(&s->retired_workers, 1);
		moved++;
	}
	s->nworkers = (unsigned)kept;
	count_waiters(s);
	return moved;
}

int stats_retire_holder(struct stats_listener *s, int (*ended)(int32_t pid, int32_t tid))
{
	uint64_t ppid = s->poller >> 32, ptid = s->poller & 0xffffffffu;
	int n = 0;

	if (s->holder_pid && s->holder_tid > 0 && ended(s->holder_pid, s->holder_tid)) {
		s->gone_holder_pid = s->holder_pid;
		s->gone_holder_tid = s->holder_tid;
		s->holder_pid = 0;
		s->holder_tid = 0;
		s->held_since_ns = 0;
		n++;
	}
	/* A key that names no thread is left as it is: shown, not judged. */
	if (ppid && ppid <= INT32_MAX && ptid && ptid <= INT32_MAX &&
	    ended((int32_t)ppid, (int32_t)ptid)) {
		s->gone_poller = s->poller;
		s->poller = 0;
		s->poller_since_ns = 0;
		n++;
	}
	return n;
}

static int by_address(const void *a, const void *b)
{
	const struct stats_listener *x = a, *y = b;
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	c = memcmp(x->local_ip, y->local_ip, sizeof(x->local_ip));
	if (c)
		return c;
	if (x->local_port != y->local_port)
		return x->local_port < y->local_port ? -1 : 1;
	return (x->inode > y->inode) - (x->inode < y->inode);
}

/* Is INODE among the K listeners of OUT already? */
static int have_inode(const struct stats_listener *out, size_t k, uint64_t inode)
{
	size_t i;

	for (i = 0; i < k; i++)
		if (out[i].inode == inode)
			return 1;
	return 0;
}

void stats_read_table(const struct sockshim_listener *table, size_t n, struct stats_listener *out,
		      size_t *nout)
{
	size_t i, k = 0;
	int t, rc;

	for (i = 0; i < n; i++) {
		rc = -EAGAIN;
		for (t = 0; t < COPY_TRIES && rc == -EAGAIN; t++)
			rc = stats_read_listener(&table[i], &out[k]);
		/* One listener in two entries (two processes claimed one for
		 * it at once, or a scribble): the first is the one the shim's
		 * lookups find and count into. */
		if (rc == 0 && !have_inode(out, k, out[k].inode))
			k++;
	}
	qsort(out, k, sizeof(out[0]), by_address);
	*nout = k;
}

void stats_addr(char *buf, size_t len, const struct stats_listener *s)
{
	if (s->family == AF_INET || s->family == AF_INET6)
		sockdiag_addr_str(buf, len, s->family, s->local_ip, s->local_port);
	else if (s->family == AF_UNIX)
		snprintf(buf, len, "unix");
	else
		snprintf(buf, len, "-");
}

/* ---- Histograms. ---- */

uint64_t stats_bucket_low(unsigned i)
{
	return i == 0 ? 0 : i < 64 ? UINT64_C(1) << i : UINT64_MAX;
}

uint64_t stats_bucket_high(unsigned i)
{
	if (i + 1 >= STATS_BUCKETS || i >= 63)
		return UINT64_MAX;
	return (UINT64_C(1) << (i + 1)) - 1;
}

uint64_t stats_hist_total(const uint64_t *h, unsigned n)
{
	uint64_t t = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		if (__builtin_add_overflow(t, h[i], &t))
			return UINT64_MAX;
	return t;
}

static void bound_of(unsigned i, unsigned n, struct stats_bound *b)
{
	b->bucket = (int)i;
	b->open = i + 1 >= n;
	/* The open bucket has no upper bound: say what it does know. */
	b->ns = b->open ? stats_bucket_low(i) : stats_bucket_high(i) + 1;
}

int stats_hist_percentile(const uint64_t *h, unsigned n, unsigned permille,
			  struct stats_bound *b)
{
	uint64_t total = stats_hist_total(h, n), rank, cum = 0;
	unsigned i;

	b->bucket = -1;
	b->ns = 0;
	b->open = 0;
	if (!total || n == 0)
		return -1;
	if (permille > 1000)
		permille = 1000;
	/* ceil(total * permille / 1000) without overflowing 64 bits. */
	rank = total / 1000 * permille + ((total % 1000) * permille + 999) / 1000;
	if (rank == 0)
		rank = 1;
	for (i = 0; i < n; i++) {
		if (__builtin_add_overflow(cum, h[i], &cum))
			cum = UINT64_MAX;
		if (cum >= rank)
			break;
	}
	if (i == n)
		i = n - 1; /* not reached: the total is the last cumulative count */
	bound_of(i, n, b);
	return b->bucket;
}

int stats_hist_max(const uint64_t *h, unsigned n, struct stats_bound *b)
{
	unsigned i;

	b->bucket = -1;
	b->ns = 0;
	b->open = 0;
	for (i = n; i-- > 0;)
		if (h[i]) {
			bound_of(i, n, b);
			break;
		}
	return b->bucket;
}

double stats_hist_sum_ns(const uint64_t *h, unsigned n)
{
	double sum = 0;
	unsigned i;

	for (i = 0; i < n && i < 64; i++)
		sum += (double)h[i] * (i == 0 ? 1.0 : 1.5 * (double)(UINT64_C(1) << i));
	return sum;
}

/* ---- Fairness. ---- */

double stats_jain(const uint64_t *x, size_t n)
{
	/* long double: the squares of 64-bit counts. */
	long double sum = 0, sq = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		sum += (long double)x[i];
		sq += (long double)x[i] * (long double)x[i];
	}
	if (n == 0 || sq == 0)
		return 1.0;
	return (double)(sum * sum / ((long double)n * sq));
}

double stats_max_min(const uint64_t *x, size_t n)
{
	uint64_t max = 0, min = UINT64_MAX;
	size_t i;

	for (i = 0; i < n; i++) {
		if (x[i] > max)
			max = x[i];
		if (x[i] < min)
			min = x[i];
	}
	if (n == 0 || max == 0)
		return 1.0;
	if (min == 0)
		return INFINITY;
	return (double)max / (double)min;
}

size_t stats_worker_accepts(const struct stats_listener *s, uint64_t *x, uint64_t *sum)
{
	size_t i, n = s->nworkers < SOCKSHIM_WORKERS ? s->nworkers : SOCKSHIM_WORKERS;
	size_t k = 0;

	*sum = 0;
	/* Every row: a thread has one only once it calls accept or waits for
	 * the listener (poll, select, the token), never for waiting on other
	 * descriptors; one that waits and never gets a connection (another
	 * worker always has the poll token first) is starved, not idle. */
	for (i = 0; i < n; i++) {
		x[k] = s->workers[i].accepts;
		if (__builtin_add_overflow(*sum, x[k], sum))
			*sum = UINT64_MAX;
		k++;
	}
	return k;
}

double stats_ratio(uint64_t num, uint64_t den)
{
	return den ? (double)num / (double)den : NAN;
}

uint64_t stats_held_ns(const struct stats_listener *s, uint64_t now_ns)
{
	if (!s->holder_pid || !s->held_since_ns || s->held_since_ns > now_ns)
		return 0;
	return now_ns - s->held_since_ns;
}

/* ---- Text. ---- */

void stats_fmt_ns(char *buf, size_t len, uint64_t ns)
{
	static const struct {
		double div;
		const char *unit;
	} units[] = {{1e3, "us"}, {1e6, "ms"}, {1e9, "s"}};
	double v = (double)ns;
	int i;

	if (ns < 1000) {
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
		return;
	}
	for (i = 0; i < 2 && v / units[i].div >= 999.5; i++) {
	}
	v /= units[i].div;
	snprintf(buf, len, v < 9.95 ? "%.1f%s" : "%.0f%s", v, units[i].unit);
}

void stats_fmt_bound(char *buf, size_t len, const struct stats_bound *b)
{
	char v[32];

	if (b->bucket < 0) {
		snprintf(buf, len, "-");
		return;
	}
	stats_fmt_ns(v, sizeof(v), b->ns);
	snprintf(buf, len, "%s%s", b->open ? ">=" : "<=", v);
}

void stats_fmt_double(char *buf, size_t len, double v)
{
	int prec;

	if (isnan(v)) {
		snprintf(buf, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* The fewest digits that read back exactly: 17 always do. */
	for (prec = 15; prec < 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
	snprintf(buf, len, "%.17g", v);
}

const char *stats_bypass_name(unsigned reason)
{
	static const char *const names[SOCKSHIM_BYPASS_COUNT] = {
		[SOCKSHIM_BYPASS_STOPPED] = "stopped",
		[SOCKSHIM_BYPASS_STALLED] = "stalled",
		[SOCKSHIM_BYPASS_INVALID] = "invalid",
	};

	return reason < SOCKSHIM_BYPASS_COUNT ? names[reason] : "unknown";
}
