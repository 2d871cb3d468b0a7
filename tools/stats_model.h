/* The numbers behind `sockshim stats`: a listener of the segment copied
 * into plain numbers, and what is computed from them (percentiles of log2
 * histograms, Jain's fairness index, ratios). Pure: no I/O, no clock; the
 * only shared memory touched is the entry handed to stats_read_listener. */
#ifndef SOCKSHIM_STATS_MODEL_H
#define SOCKSHIM_STATS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "sockshim/layout.h"

#define STATS_BUCKETS SOCKSHIM_HIST_BUCKETS
/* "[1111:2222:3333:4444:5555:6666:7777:8888]:65535" and its NUL. */
#define STATS_ADDR_MAX 64

/* One worker (thread) of a listener, as copied. */
struct stats_worker {
	int32_t pid;
	int32_t tid;
	uint64_t calls;
	uint64_t accepts;
	uint64_t spurious;
	uint64_t empty;
	uint64_t eintr;
	uint64_t lock_wait_ns;
	uint64_t last_ns;
	int waiting; /* its row's bit in the listener's waiting word */
};

/* One listener, as copied: the fields of struct sockshim_listener that
 * mean something to a reader, each read once. */
struct stats_listener {
	uint64_t inode;
	uint16_t family;
	uint16_t mode; /* raw: may be out of range, see stats_mode_name */
	uint16_t local_port;
	uint8_t local_ip[16];
	int32_t listen_backlog; /* as passed to listen(), SOCKSHIM_BACKLOG_UNKNOWN unknown */
	uint32_t lock_word;   /* the accept lock as it is: 0 free, else a thread id */
	uint32_t bypass_word; /* the lock word waiters do not wait for, 0 none */
	uint16_t bypass_reason; /* raw enum sockshim_bypass */
	uint64_t bypass_since_ns;
	/* Threads waiting for the lock now: the rows marked waiting whose
	 * thread lives (stats_retire_ended takes out the others) and the
	 * waiters without a row. */
	uint32_t waiters;
	uint32_t waiters_unrowed;
	uint32_t max_waiters;
	int32_t holder_pid; /* who took the lock last, 0 none (see lock_word) */
	int32_t holder_tid;
	uint64_t held_since_ns;
	/* A holder that ended holding the lock (stats_retire_holder), 0 none. */
	int32_t gone_holder_pid;
	int32_t gone_holder_tid;
	uint64_t poller; /* (pid << 32) | tid, 0 none */
	uint64_t poller_since_ns;
	uint64_t gone_poller; /* a poll token holder that ended holding it, 0 none */
	uint64_t accept_calls;
	uint64_t accepts;
	uint64_t spurious;
	uint64_t empty;
	uint64_t eintr;
	uint64_t econnaborted;
	uint64_t emfile;
	uint64_t wakeups;
	uint64_t lock_acquisitions;
	uint64_t lock_contended;
	uint64_t owner_died;
	uint64_t worker_overflow;
	uint64_t lock_bypassed[SOCKSHIM_BYPASS_COUNT];
	uint64_t token_taken[SOCKSHIM_BYPASS_COUNT];
	uint64_t unlock_errors;
	uint64_t token_waits;     /* poll/select waits that held the poll token */
	/* Times the poll token, given back by its holder, was handed to the
	 * next worker waiting for it, that worker woken (its doorbell rung). */
	uint64_t token_handoffs;
	uint64_t epoll_exclusive; /* epoll registrations with EPOLLEXCLUSIVE */
	uint64_t wait_hist[STATS_BUCKETS];
	uint64_t hold_hist[STATS_BUCKETS];
	/* Connections accepted here, at their release: reset (SO_LINGER
	 * {on, 0}), lifetime, CLOSE_WAIT dwell (peer EOF to release). */
	uint64_t aborted;
	uint64_t life_hist[STATS_BUCKETS];
	uint64_t closewait_hist[STATS_BUCKETS];
	unsigned nworkers;    /* valid rows in workers[], sorted by pid, tid */
	unsigned bad_workers; /* claimed rows whose key names no pid/tid, or a
			       * thread another row has: skipped */
	struct stats_worker workers[SOCKSHIM_WORKERS];
	/* Workers that ended and whose rows went to others: how many, and
	 * their counts summed (pid and tid 0). */
	uint64_t retired_workers;
	struct stats_worker retired;
};

/* A listener ready to show: its copy, its address as text, and what the
 * kernel said about it just now. */
struct stats_entry {
	struct stats_listener s;
	char addr[STATS_ADDR_MAX];
	int have_queue;         /* the kernel listed the listener (sock_diag) */
	uint32_t queue_len;     /* connections waiting in its accept queue */
	uint32_t queue_backlog; /* the kernel's limit of that queue */
	/* 1: the kernel, asked at the snapshot, lists no TCP listener of its
	 * inode (closed: a reload, a stopped server); 0: it does; -1: it
	 * cannot tell (sock_diag failed, or not a TCP listener, which
	 * sock_diag does not list). */
	int closed;
};

/* Copy SRC, an entry of the segment's listener table that other processes
 * update while we read: every field once, with relaxed atomic loads. 0;
 * -ENOENT when the entry is unused or still being claimed; -EAGAIN when it
 * changed owner (its inode) while being copied. */
int stats_read_listener(const struct sockshim_listener *src, struct stats_listener *dst);

/* Copy the used entries of TABLE (N entries) into OUT (room for N), sorted
 * by family, address, port and inode; *NOUT gets their number. An entry
 * that changes owner twice in a row while copied is left out, and so is
 * an entry whose inode an earlier one has: each listener comes out once. */
void stats_read_table(const struct sockshim_listener *table, size_t n, struct stats_listener *out,
		      size_t *nout);

/* Rows of threads that have ended, known to ENDED(pid, tid) (the reader
 * asks /proc), are moved into the retired row, as the shim itself recycles
 * them: the living are the rows, fairness is among them, and no count is
 * lost. A thread killed while waiting for the lock waits no more: waiters
 * counts the living. How many rows it moved. */
size_t stats_retire_ended(struct stats_listener *s, int (*ended)(int32_t pid, int32_t tid));

/* A lock holder whose thread has ended, known to ENDED(pid, tid), holds
 * nothing: the lock word names it until the next waiter takes the lock
 * over, but the lock is nobody's. Its pid and tid go to gone_holder_pid
 * and gone_holder_tid, holder_pid, holder_tid and held_since_ns to 0. The
 * same for the poll token's holder (poller to gone_poller). How many of
 * the two had ended. */
int stats_retire_holder(struct stats_listener *s, int (*ended)(int32_t pid, int32_t tid));

/* "observe", "serialize", "off", or NULL for a value outside the enum. */
const char *stats_mode_name(unsigned mode);

/* The listener's address: "127.0.0.1:8080", "[::1]:8080", "unix", or "-"
 * when the shim has not recorded it. */
void stats_addr(char *buf, size_t len, const struct stats_listener *s);

/* ---- log2 histograms: bucket i counts [2^i, 2^(i+1)) ns, bucket 0 also
 * 0, the last bucket everything from 2^(STATS_BUCKETS-1) up. ---- */

/* A value known only by its bucket. */
struct stats_bound {
	int bucket;  /* -1: the histogram is empty */
	uint64_t ns; /* the bucket's upper bound (exclusive); for the last
		      * bucket, which has none, its lower bound */
	int open;    /* the last bucket: the value is >= ns */
};

/* The smallest and the largest value bucket I holds (the last: UINT64_MAX). */
uint64_t stats_bucket_low(unsigned i);
uint64_t stats_bucket_high(unsigned i);

/* The number of values in H (N buckets), saturating at UINT64_MAX. */
uint64_t stats_hist_total(const uint64_t *h, unsigned n);

/* The PERMILLE-th percentile (500: the median, 990: p99) of H: the bucket
 * holding the value of rank ceil(total * permille / 1000), at least 1.
 * Returns the bucket, or -1 (and B->bucket -1) when H is empty. */
int stats_hist_percentile(const uint64_t *h, unsigned n, unsigned permille,
			  struct stats_bound *b);

/* The highest non-empty bucket, as for a percentile. */
int stats_hist_max(const uint64_t *h, unsigned n, struct stats_bound *b);

/* The sum of the values, approximated by each bucket's midpoint (1 ns for
 * bucket 0, 1.5 * 2^i ns for bucket i, the last one included): what a
 * Prometheus histogram's _sum needs and a log2 histogram cannot tell. */
double stats_hist_sum_ns(const uint64_t *h, unsigned n);

/* ---- Fairness over the workers' accepted connections. ---- */

/* Jain's fairness index (sum x)^2 / (n * sum x^2) of X[0..N): 1.0 when
 * every worker got the same, 1/n when one got everything. Defined as 1.0
 * for no workers, or when none accepted anything (nothing was unfair). */
double stats_jain(const uint64_t *x, size_t n);

/* max(X) / min(X): 1.0 for no workers or all zero; +inf when some worker
 * accepted nothing while another did. */
double stats_max_min(const uint64_t *x, size_t n);

/* The accepts of the workers listed (the living rows: threads that
 * accept or wait for the listener) in X (room for SOCKSHIM_WORKERS);
 * returns their number, and *SUM their sum (saturating). Fairness is
 * computed over these: a worker that waits for the listener and never gets
 * a connection is a worker that got nothing. */
size_t stats_worker_accepts(const struct stats_listener *s, uint64_t *x, uint64_t *sum);

/* NUM / DEN, NaN when DEN is 0 (spurious wakeups per accept, mean lock
 * wait per call: undefined before the first one). */
double stats_ratio(uint64_t num, uint64_t den);

/* How long the current holder has held the lock at NOW_NS (both
 * CLOCK_MONOTONIC); 0 when nobody does or the clock disagrees. */
uint64_t stats_held_ns(const struct stats_listener *s, uint64_t now_ns);

/* ---- Text. ---- */

/* "850ns", "4.1us", "16us", "131us", "2.1ms", "1.5s": two or three
 * significant digits. */
void stats_fmt_ns(char *buf, size_t len, uint64_t ns);

/* A bucket bound for people: "<=4.1us", ">=2.1s", or "-" when empty. */
void stats_fmt_bound(char *buf, size_t len, const struct stats_bound *b);

/* The shortest decimal that reads back as V ("0.25", "1e-09"); "NaN",
 * "+Inf", "-Inf" for the special values (Prometheus spells them so). */
void stats_fmt_double(char *buf, size_t len, double v);

/* The name of a reason the accept lock gave way (enum sockshim_bypass):
 * "stopped", "stalled", "invalid"; "unknown" out of range. */
const char *stats_bypass_name(unsigned reason);

#endif
