/* Unit tests of the event ring: producer (shim/ring.c) against consumer
 * (tools/ring_reader.c) on a real session segment. Checks ordering, exact
 * loss accounting, torn and overwritten slots. Must stay TSan-clean: every
 * access the test shares between threads is atomic or ordered by join. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ring.h"
#include "ring_reader.h"
#include "sockshim/segment.h"

#define CAP (1u << SOCKSHIM_RING_MIN_SHIFT)
/* The ring of the concurrent tests. A writer preempted mid-record and
 * lapped by the others can spoil a slot; the record's check makes the
 * reader count it as torn (test_ring_lapped_writer, test_ring_spoiled_record
 * _refused). A big ring keeps such laps rare, so most records arrive and
 * the order checks have something to check. */
#define BIG_CAP (1u << 16)
/* Records each writer thread produces in the concurrent tests: enough to
 * lap even the big ring many times. */
#define PER_WRITER 500000u
#define MAX_WRITERS 4
/* A concurrent test that has not finished by then is hung, not slow. */
#define DEADLINE_NS (120 * 1000000000LL)

struct fixture {
	char name[64];
	struct seg_map m;
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint32_t big_cap = BIG_CAP;

/* *STATE, when set (cmocka prestate), is the ring capacity wanted. */
static int setup(void **state)
{
	static unsigned serial;
	uint32_t cap = *state ? *(uint32_t *)*state : CAP;
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->name, sizeof(f->name), "ut-ring-%d-%u", (int)getpid(), serial++);
	if (seg_create(f->name, cap, SOCKSHIM_LEDGER_DEFAULT, &f->m) != 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	seg_unmap(&f->m);
	rc = seg_remove(f->name);
	free(f);
	return rc;
}

/* A record whose fields are all derived from (writer, seq), spread over
 * both cache lines, so a record mixed from two writes is detectable. */
static uint64_t mix(uint32_t writer, uint64_t seq)
{
	return seq * UINT64_C(0x9e3779b97f4a7c15) ^ writer;
}

static void make_rec(struct sockshim_record *r, uint32_t writer, uint64_t seq)
{
	memset(r, 0, sizeof(*r));
	r->stamp = UINT64_MAX; /* ignored by ring_append */
	r->ts_ns = mix(writer, seq);
	r->pid = (int32_t)writer;
	r->tid = (int32_t)writer;
	r->fd = (int32_t)seq;
	r->type = SOCKSHIM_EV_CLOSE;
	r->inode = seq;
	r->detail.accept.listen_inode = ~seq;
}

static int rec_consistent(const struct sockshim_record *r)
{
	return r->pid == r->tid && r->fd == (int32_t)r->inode &&
	       r->ts_ns == mix((uint32_t)r->pid, r->inode) &&
	       r->detail.accept.listen_inode == ~r->inode && r->type == SOCKSHIM_EV_CLOSE;
}

static void append(const struct seg_map *m, uint32_t writer, uint64_t seq)
{
	struct sockshim_record r;

	make_rec(&r, writer, seq);
	ring_append(m, &r);
}

static struct sockshim_record *slot_of(const struct seg_map *m, uint64_t ticket)
{
	return seg_ring(m) + (ticket & (m->ring_capacity - 1));
}

static void expect_record(struct ring_reader *r, uint64_t ticket, uint32_t writer, uint64_t seq)
{
	struct sockshim_record out;
	uint64_t lost = 0;
	char kind = 0;

	assert_int_equal(ring_reader_next(r, &out, &lost, &kind, mono_ns()), RING_RECORD);
	assert_int_equal(out.stamp, sockshim_stamp_published(ticket));
	assert_int_equal(out.pid, writer);
	assert_int_equal(out.inode, seq);
	assert_true(rec_consistent(&out));
	assert_int_equal(r->cursor, ticket + 1);
}

static void expect_lost(struct ring_reader *r, uint64_t n, char want_kind, int64_t now)
{
	struct sockshim_record out;
	uint64_t lost = 0;
	char kind = 0;

	assert_int_equal(ring_reader_next(r, &out, &lost, &kind, now), RING_LOST);
	assert_int_equal(lost, n);
	assert_int_equal(kind, want_kind);
}

static void expect_status(struct ring_reader *r, enum ring_status want, int64_t now)
{
	struct sockshim_record out;
	uint64_t lost = 0;
	char kind = 0;

	assert_int_equal(ring_reader_next(r, &out, &lost, &kind, now), want);
}

/* One writer writes three laps; the reader drains every N records and must
 * get every record, in order, with the right ticket in its stamp. */
static void test_ring_wrap_around(void **state)
{
	struct fixture *f = *state;
	const uint64_t total = 3 * (uint64_t)CAP, every = 100;
	struct ring_reader r, fresh;
	uint64_t seq, next = 0, t;

	ring_reader_init(&r, &f->m, 1);
	assert_int_equal(r.cursor, 0);
	expect_status(&r, RING_EMPTY, mono_ns());
	for (seq = 0; seq < total; seq++) {
		append(&f->m, 7, seq);
		if ((seq + 1) % every == 0 || seq + 1 == total) {
			for (; next <= seq; next++)
				expect_record(&r, next, 7, next);
			expect_status(&r, RING_EMPTY, mono_ns());
		}
	}
	assert_int_equal(next, total);
	assert_int_equal(r.delivered, total);
	assert_int_equal(r.lost_overrun, 0);
	assert_int_equal(r.lost_torn, 0);
	assert_int_equal(ring_reader_head(&r), total);
	assert_int_equal(__atomic_load_n(&seg_header(&f->m)->ring_head, __ATOMIC_RELAXED), total);

	/* After the wrap, "oldest" is exactly one ring back. */
	ring_reader_init(&fresh, &f->m, 1);
	assert_int_equal(fresh.cursor, total - CAP);
	for (t = total - CAP; t < total; t++)
		expect_record(&fresh, t, 7, t);
	expect_status(&fresh, RING_EMPTY, mono_ns());
	assert_int_equal(fresh.delivered, CAP);
	assert_int_equal(fresh.lost_overrun + fresh.lost_torn, 0);
}

/* A reader far behind loses exactly what was overwritten, in one report,
 * then reads the surviving ring in order. */
static void test_ring_overrun_counted_exactly(void **state)
{
	struct fixture *f = *state;
	const uint64_t total = 5 * (uint64_t)CAP + 7;
	struct ring_reader r;
	uint64_t seq;

	ring_reader_init(&r, &f->m, 1);
	for (seq = 0; seq < total; seq++)
		append(&f->m, 3, seq);
	expect_lost(&r, total - CAP, 'o', mono_ns());
	assert_int_equal(r.cursor, total - CAP);
	for (seq = total - CAP; seq < total; seq++)
		expect_record(&r, seq, 3, seq);
	expect_status(&r, RING_EMPTY, mono_ns());
	assert_int_equal(r.delivered + r.lost_overrun + r.lost_torn, total);
	assert_int_equal(r.lost_overrun, total - CAP);
	assert_int_equal(r.lost_torn, 0);
}

/* Concurrent writers against a reader that reads rarely. */
struct writer_ctx {
	const struct seg_map *m;
	uint32_t id;
	unsigned *done;
};

static void *writer_main(void *arg)
{
	struct writer_ctx *w = arg;
	uint64_t seq;

	for (seq = 0; seq < PER_WRITER; seq++)
		append(w->m, w->id, seq);
	__atomic_fetch_add(w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

struct tally {
	int64_t last_seq[MAX_WRITERS + 1];
	uint64_t delivered[MAX_WRITERS + 1];
	uint64_t records, lost_reports, lost_sum;
	char err[200]; /* the first check that failed, reported after join */
};

static int bad(struct tally *t, const struct sockshim_record *r, uint64_t ticket,
	       const char *what)
{
	snprintf(t->err, sizeof(t->err),
		 "ticket %llu: %s (stamp %llu pid %d tid %d fd %d inode %llu)",
		 (unsigned long long)ticket, what, (unsigned long long)r->stamp, r->pid, r->tid,
		 r->fd, (unsigned long long)r->inode);
	return -1;
}

/* Handle one reader result: 1 when the cursor moved, 0 when the reader has
 * nothing right now, -1 (T->err says why) on a wrong result. No assert
 * here: failing while writers still run would unmap the ring under them. */
static int consume(struct ring_reader *r, struct tally *t, unsigned nwriters, int64_t now)
{
	struct sockshim_record out;
	uint64_t lost = 0, ticket = r->cursor;
	char kind = 0;
	uint32_t w;

	switch (ring_reader_next(r, &out, &lost, &kind, now)) {
	case RING_RECORD:
		if (out.stamp != sockshim_stamp_published(ticket))
			return bad(t, &out, ticket, "stamp is not this ticket's");
		/* A record mixed from two writes must never be delivered. */
		if (!rec_consistent(&out))
			return bad(t, &out, ticket, "record mixed from two writes");
		w = (uint32_t)out.pid;
		if (w < 1 || w > nwriters || out.inode >= PER_WRITER)
			return bad(t, &out, ticket, "no such writer or sequence");
		/* Per writer, strictly increasing: no duplicate, no reorder. */
		if ((int64_t)out.inode <= t->last_seq[w])
			return bad(t, &out, ticket, "writer's sequence went backwards");
		t->last_seq[w] = (int64_t)out.inode;
		t->delivered[w]++;
		t->records++;
		return 1;
	case RING_LOST:
		if ((kind != 'o' && kind != 't') || lost < 1 || r->cursor != ticket + lost)
			return bad(t, &out, ticket, "bad loss report");
		t->lost_reports++;
		t->lost_sum += lost;
		return 1;
	case RING_EMPTY:
	case RING_PENDING:
		return 0;
	}
	return bad(t, &out, ticket, "unknown ring status");
}

static void run_writers(struct fixture *f, unsigned nwriters)
{
	const uint64_t produced = (uint64_t)nwriters * PER_WRITER;
	const uint64_t cap = f->m.ring_capacity;
	struct writer_ctx ctx[MAX_WRITERS];
	pthread_t th[MAX_WRITERS];
	struct tally t;
	struct ring_reader r;
	unsigned done = 0, i, started = 0;
	int64_t deadline = mono_ns() + DEADLINE_NS;
	uint64_t n, sum;
	int rc = 0;

	memset(&t, 0, sizeof(t));
	for (i = 0; i <= MAX_WRITERS; i++)
		t.last_seq[i] = -1;
	ring_reader_init(&r, &f->m, 1);
	assert_int_equal(r.cursor, 0);
	for (i = 0; i < nwriters; i++) {
		ctx[i] = (struct writer_ctx){ .m = &f->m, .id = i + 1, .done = &done };
		if (pthread_create(&th[i], NULL, writer_main, &ctx[i]) != 0)
			break;
		started++;
	}
	/* Read rarely: a burst of at most 64 records once the writers are
	 * more than a ring ahead, so each burst starts with an overrun and
	 * then reads the oldest slots, the ones being overwritten. */
	while (started == nwriters && __atomic_load_n(&done, __ATOMIC_ACQUIRE) < nwriters &&
	       rc >= 0) {
		if (mono_ns() > deadline) {
			snprintf(t.err, sizeof(t.err), "writers still running after the deadline");
			break;
		}
		if (ring_reader_head(&r) <= r.cursor + cap + 256) {
			sched_yield();
			continue;
		}
		for (n = 0; n < 64; n++) {
			rc = consume(&r, &t, nwriters, mono_ns());
			if (rc <= 0)
				break;
		}
	}
	for (i = 0; i < started; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(started, nwriters);
	if (t.err[0])
		fail_msg("%s", t.err);
	/* Drain. The writers are gone, so a slot still pending is torn:
	 * INT64_MAX says so. Each call moves the cursor or ends the drain. */
	for (n = 0; n <= produced + 1; n++) {
		rc = consume(&r, &t, nwriters, INT64_MAX);
		if (rc < 0)
			fail_msg("%s", t.err);
		if (rc == 0)
			break;
	}
	assert_true(n <= produced);
	expect_status(&r, RING_EMPTY, INT64_MAX);

	assert_int_equal(ring_reader_head(&r), produced);
	assert_int_equal(r.cursor, produced);
	assert_int_equal(r.delivered, t.records);
	assert_int_equal(r.lost_overrun + r.lost_torn, t.lost_sum);
	assert_int_equal(r.delivered + r.lost_overrun + r.lost_torn, produced);
	for (sum = 0, i = 1; i <= nwriters; i++) {
		assert_true(t.delivered[i] <= PER_WRITER);
		sum += t.delivered[i];
	}
	assert_int_equal(sum, r.delivered);
	/* The writers outpaced the reader; and the last ring survives, so
	 * at least a ring's worth was delivered. */
	assert_true(r.lost_overrun > 0);
	assert_true(r.delivered >= cap);
	print_message("  %u writers: produced %llu delivered %llu overrun %llu torn %llu "
		      "(%llu loss reports)\n",
		      nwriters, (unsigned long long)produced, (unsigned long long)r.delivered,
		      (unsigned long long)r.lost_overrun, (unsigned long long)r.lost_torn,
		      (unsigned long long)t.lost_reports);
}

static void test_ring_two_writers_outpace_reader(void **state)
{
	run_writers(*state, 2);
}

static void test_ring_four_writers_outpace_reader(void **state)
{
	run_writers(*state, 4);
}

/* A writer that died between taking its ticket and publishing: its slot
 * stays odd. Reported once as torn after the timeout, then reading goes on. */
static void test_ring_torn_slot_after_timeout(void **state)
{
	struct fixture *f = *state;
	struct sockshim_header *h = seg_header(&f->m);
	struct ring_reader r;
	const int64_t t0 = 1000000;
	uint64_t seq;

	for (seq = 0; seq < 3; seq++)
		append(&f->m, 1, seq);
	/* Ticket 3: stamped "being written", half a payload, never published. */
	__atomic_store_n(&slot_of(&f->m, 3)->stamp, sockshim_stamp_writing(3), __ATOMIC_RELAXED);
	__atomic_store_n(&slot_of(&f->m, 3)->pid, 99, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->ring_head, 1, __ATOMIC_RELEASE);
	append(&f->m, 1, 4);
	append(&f->m, 1, 5);

	ring_reader_init(&r, &f->m, 1);
	for (seq = 0; seq < 3; seq++)
		expect_record(&r, seq, 1, seq);
	expect_status(&r, RING_PENDING, t0);
	expect_status(&r, RING_PENDING, t0 + 1);
	expect_status(&r, RING_PENDING, t0 + RING_TORN_TIMEOUT_NS - 1);
	assert_int_equal(r.cursor, 3);
	expect_lost(&r, 1, 't', t0 + RING_TORN_TIMEOUT_NS);
	assert_int_equal(r.lost_torn, 1);
	assert_int_equal(r.cursor, 4);
	/* Once: the next results are the following records. */
	expect_record(&r, 4, 1, 4);
	expect_record(&r, 5, 1, 5);
	expect_status(&r, RING_EMPTY, t0 + RING_TORN_TIMEOUT_NS);
	assert_int_equal(r.delivered, 5);
	assert_int_equal(r.lost_torn, 1);
	assert_int_equal(r.lost_overrun, 0);
}

/* A writer that died right after its ticket, before even the odd stamp
 * (the slot still holds an older lap, here: never written). INT64_MAX
 * declares it torn at once. */
static void test_ring_torn_slot_dead_writer(void **state)
{
	struct fixture *f = *state;
	struct sockshim_header *h = seg_header(&f->m);
	struct ring_reader r;

	append(&f->m, 2, 0);
	__atomic_fetch_add(&h->ring_head, 1, __ATOMIC_RELEASE); /* ticket 1, stamp 0 */
	append(&f->m, 2, 2);
	assert_int_equal(__atomic_load_n(&slot_of(&f->m, 1)->stamp, __ATOMIC_RELAXED), 0);

	ring_reader_init(&r, &f->m, 1);
	expect_record(&r, 0, 2, 0);
	expect_status(&r, RING_PENDING, mono_ns());
	expect_lost(&r, 1, 't', INT64_MAX);
	expect_record(&r, 2, 2, 2);
	expect_status(&r, RING_EMPTY, INT64_MAX);
	assert_int_equal(r.delivered, 2);
	assert_int_equal(r.lost_torn, 1);
	assert_int_equal(r.lost_overrun, 0);
}

/* A pending slot whose writer finishes in time is delivered, not torn. */
static void test_ring_pending_then_published(void **state)
{
	struct fixture *f = *state;
	struct sockshim_header *h = seg_header(&f->m);
	struct sockshim_record rec;
	struct ring_reader r;
	const int64_t t0 = 5000;

	__atomic_fetch_add(&h->ring_head, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&slot_of(&f->m, 0)->stamp, sockshim_stamp_writing(0), __ATOMIC_RELEASE);
	ring_reader_init(&r, &f->m, 1);
	expect_status(&r, RING_PENDING, t0);
	/* The writer finishes the record it started. */
	make_rec(&rec, 4, 0);
	rec.check = 0;
	rec.check = sockshim_record_check(&rec, 0);
	memcpy((char *)slot_of(&f->m, 0) + 8, (char *)&rec + 8, sizeof(rec) - 8);
	__atomic_store_n(&slot_of(&f->m, 0)->stamp, sockshim_stamp_published(0), __ATOMIC_RELEASE);
	expect_record(&r, 0, 4, 0);
	assert_int_equal(r.pending_since_ns, 0);
	/* A new pending slot starts a new timeout, not the old one. */
	__atomic_fetch_add(&h->ring_head, 1, __ATOMIC_RELEASE);
	expect_status(&r, RING_PENDING, t0 + RING_TORN_TIMEOUT_NS);
	expect_status(&r, RING_PENDING, t0 + RING_TORN_TIMEOUT_NS + 1);
	assert_int_equal(r.lost_torn, 0);
}

/* The slot was overwritten by a later lap before the reader got to it. */
static void test_ring_overwritten_before_read(void **state)
{
	struct fixture *f = *state;
	struct ring_reader r;

	append(&f->m, 5, 0);
	append(&f->m, 5, 1);
	ring_reader_init(&r, &f->m, 1);
	/* As if ticket CAP had been written into slot 0 after the reader
	 * loaded the head. */
	__atomic_store_n(&slot_of(&f->m, 0)->stamp, sockshim_stamp_published(CAP),
			 __ATOMIC_RELEASE);
	expect_lost(&r, 1, 'o', mono_ns());
	expect_record(&r, 1, 5, 1);
	/* Same for a later writer caught mid-record. */
	append(&f->m, 5, 2);
	__atomic_store_n(&slot_of(&f->m, 2)->stamp, sockshim_stamp_writing(2 + CAP),
			 __ATOMIC_RELEASE);
	expect_lost(&r, 1, 'o', mono_ns());
	expect_status(&r, RING_EMPTY, mono_ns());
	assert_int_equal(r.delivered, 1);
	assert_int_equal(r.lost_overrun, 2);
	assert_int_equal(r.lost_torn, 0);
}

/* Overwritten during the reader's copy. The reader's output buffer
 * straddles a page boundary and its second page is read-only: the copy
 * faults halfway, and the SIGSEGV handler plays the later writer (it
 * restamps the slot) before letting the copy continue. This relies on the
 * reader copying into *out between its two stamp loads, as it does now;
 * a reader that copies elsewhere first needs another way in. */
static struct {
	uint64_t *stamp;  /* the slot to restamp, or NULL for the control run */
	uint64_t new_stamp;
	void *page;       /* the read-only page to open up */
	size_t pagesz;
	int faults;
} copy_fault;

static void on_copy_fault(int sig, siginfo_t *si, void *uc)
{
	char *a = si->si_addr, *p = copy_fault.page;

	(void)sig;
	(void)uc;
	if (a < p || a >= p + copy_fault.pagesz)
		abort(); /* a real crash, not ours */
	copy_fault.faults++;
	if (copy_fault.stamp)
		__atomic_store_n(copy_fault.stamp, copy_fault.new_stamp, __ATOMIC_RELEASE);
	mprotect(copy_fault.page, copy_fault.pagesz, PROT_READ | PROT_WRITE);
}

static enum ring_status read_with_fault(struct ring_reader *r, uint64_t *stamp, uint64_t new_stamp,
					uint64_t *lost, char *kind, struct sockshim_record *copy)
{
	size_t pagesz = (size_t)sysconf(_SC_PAGESIZE);
	struct sigaction sa, old;
	enum ring_status st;
	char *buf;

	buf = mmap(NULL, 2 * pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(buf != MAP_FAILED);
	copy_fault.stamp = stamp;
	copy_fault.new_stamp = new_stamp;
	copy_fault.page = buf + pagesz;
	copy_fault.pagesz = pagesz;
	copy_fault.faults = 0;
	assert_int_equal(mprotect(buf + pagesz, pagesz, PROT_READ), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_copy_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGSEGV, &sa, &old), 0);
	/* Words 0..7 on the first page, 8..15 on the read-only one. */
	st = ring_reader_next(r, (struct sockshim_record *)(buf + pagesz - 64), lost, kind,
			      mono_ns());
	assert_int_equal(sigaction(SIGSEGV, &old, NULL), 0);
	memcpy(copy, buf + pagesz - 64, sizeof(*copy));
	munmap(buf, 2 * pagesz);
	return st;
}

static void test_ring_overwritten_during_copy(void **state)
{
	struct fixture *f = *state;
	struct sockshim_record copy;
	struct ring_reader r;
	uint64_t lost = 0;
	char kind = 0;

	append(&f->m, 6, 0);
	append(&f->m, 6, 1);
	ring_reader_init(&r, &f->m, 1);

	/* Control: the fault alone, no writer, delivers the record intact. */
	assert_int_equal(read_with_fault(&r, NULL, 0, &lost, &kind, &copy), RING_RECORD);
	assert_int_equal(copy_fault.faults, 1);
	assert_int_equal(copy.stamp, sockshim_stamp_published(0));
	assert_true(rec_consistent(&copy));
	assert_int_equal(copy.inode, 0);

	/* A writer of the next lap takes slot 1 while the reader copies it. */
	assert_int_equal(read_with_fault(&r, &slot_of(&f->m, 1)->stamp,
					 sockshim_stamp_writing(1 + CAP), &lost, &kind, &copy),
			 RING_LOST);
	assert_int_equal(copy_fault.faults, 1);
	assert_int_equal(lost, 1);
	assert_int_equal(kind, 'o');
	assert_int_equal(r.cursor, 2);
	assert_int_equal(r.delivered, 1);
	assert_int_equal(r.lost_overrun, 1);
	assert_int_equal(r.lost_torn, 0);
	/* Reading goes on with the next ticket. */
	append(&f->m, 6, 2);
	expect_record(&r, 2, 6, 2);
	expect_status(&r, RING_EMPTY, mono_ns());
}

/* A writer lapped mid-record. Its source record straddles a page boundary
 * with the second page unreadable, so ring_append faults halfway through
 * the payload; the SIGSEGV handler (ring_append is async-signal-safe)
 * appends a whole ring of records, the last of which lands in the same
 * slot; then the interrupted append finishes over it. This is what a
 * writer preempted (or stopped) for a ring's worth of records does. The
 * mixed slot must be refused (its check fails) and the accounting must
 * stay exact. */
static struct {
	const struct seg_map *m;
	char *page;
	size_t pagesz;
	int faults;
} lap;

static void on_lap_fault(int sig, siginfo_t *si, void *uc)
{
	char *a = si->si_addr;
	uint64_t seq;

	(void)sig;
	(void)uc;
	if (a < lap.page || a >= lap.page + lap.pagesz)
		abort();
	lap.faults++;
	for (seq = 1; seq <= lap.m->ring_capacity; seq++)
		append(lap.m, 2, seq);
	mprotect(lap.page, lap.pagesz, PROT_READ | PROT_WRITE);
}

static void test_ring_lapped_writer(void **state)
{
	struct fixture *f = *state;
	size_t pagesz = (size_t)sysconf(_SC_PAGESIZE);
	struct sigaction sa, old;
	struct sockshim_record *src;
	struct ring_reader r;
	struct tally t;
	uint64_t stamp, n;
	char *buf;
	int rc;

	buf = mmap(NULL, 2 * pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(buf != MAP_FAILED);
	src = (struct sockshim_record *)(buf + pagesz - 64);
	make_rec(src, 1, 0);
	lap.m = &f->m;
	lap.page = buf + pagesz;
	lap.pagesz = pagesz;
	lap.faults = 0;
	assert_int_equal(mprotect(lap.page, pagesz, PROT_NONE), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_lap_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGSEGV, &sa, &old), 0);
	ring_append(&f->m, src); /* ticket 0, lapped by tickets 1..CAP */
	assert_int_equal(sigaction(SIGSEGV, &old, NULL), 0);
	munmap(buf, 2 * pagesz);
	assert_int_equal(lap.faults, 1);
	assert_int_equal(ring_reader_head(&(struct ring_reader){ .map = &f->m }), CAP + 1);

	/* The late writer may leave its own, older stamp on the slot (the claim
	 * and publish are plain stores, to keep an append cheap): then ticket
	 * CAP is never published and the reader counts it torn. Either way no
	 * record is delivered that is not exactly what one writer wrote. */
	stamp = __atomic_load_n(&slot_of(&f->m, 0)->stamp, __ATOMIC_ACQUIRE);
	assert_true(stamp == sockshim_stamp_published(0) || stamp == sockshim_stamp_published(CAP));
	/* No mixed record is delivered, and the accounting is exact. */
	memset(&t, 0, sizeof(t));
	for (n = 0; n <= MAX_WRITERS; n++)
		t.last_seq[n] = -1;
	ring_reader_init(&r, &f->m, 1);
	for (n = 0; n <= CAP + 1; n++) {
		rc = consume(&r, &t, 2, INT64_MAX);
		if (rc < 0)
			fail_msg("%s", t.err);
		if (rc == 0)
			break;
	}
	assert_int_equal(r.cursor, CAP + 1);
	assert_int_equal(r.delivered + r.lost_overrun + r.lost_torn, CAP);
}

/* A published record whose payload changed after its check was taken (a
 * lapped writer's late stores) is refused and counted as torn. */
static void test_ring_spoiled_record_refused(void **state)
{
	struct fixture *f = *state;
	struct ring_reader r;

	append(&f->m, 5, 0);
	append(&f->m, 5, 1);
	ring_reader_init(&r, &f->m, 1);
	__atomic_fetch_add(&slot_of(&f->m, 0)->fd, 1, __ATOMIC_RELAXED);
	expect_lost(&r, 1, 't', mono_ns());
	expect_record(&r, 1, 5, 1);
	assert_int_equal(r.lost_torn, 1);
	assert_int_equal(r.delivered, 1);
}

/* Found by tests/fuzz/fuzz_ring: a head scribbled past 2^63 makes the
 * stamp 2t + 2 wrap, so a slot of ticket 2^63 + 4 published as the writer
 * publishes it (stamp 10, check over the full ticket) was delivered with
 * the stamp of ticket 4, and `events` printed it as event 4. No writer
 * gets there (2^63 events): such tickets are lost, never delivered. */
static void test_ring_ticket_beyond_stamps(void **state)
{
	struct fixture *f = *state;
	const uint64_t t = (UINT64_C(1) << 63) + 4;
	struct ring_reader r;

	__atomic_store_n(&seg_header(&f->m)->ring_head, t, __ATOMIC_RELEASE);
	ring_reader_init(&r, &f->m, 0);
	append(&f->m, 9, 1); /* ticket t, as the shim would write it */
	append(&f->m, 9, 2);
	expect_lost(&r, 2, 't', mono_ns());
	expect_status(&r, RING_EMPTY, mono_ns());
	assert_int_equal(r.cursor, t + 2);
	assert_int_equal(r.delivered, 0);
	assert_int_equal(r.lost_torn, 2);
}

/* from_oldest = 0: only what is published after the reader started. */
static void test_ring_reader_from_now(void **state)
{
	struct fixture *f = *state;
	struct ring_reader r, old;
	uint64_t seq;

	ring_reader_init(&old, &f->m, 1);
	assert_int_equal(old.cursor, 0);
	for (seq = 0; seq < 10; seq++)
		append(&f->m, 8, seq);
	ring_reader_init(&r, &f->m, 0);
	assert_int_equal(r.cursor, 10);
	expect_status(&r, RING_EMPTY, mono_ns());
	for (seq = 10; seq < 13; seq++)
		append(&f->m, 8, seq);
	for (seq = 10; seq < 13; seq++)
		expect_record(&r, seq, 8, seq);
	expect_status(&r, RING_EMPTY, mono_ns());
	assert_int_equal(r.delivered, 3);
	assert_int_equal(r.lost_overrun + r.lost_torn, 0);
	/* A from-oldest reader started earlier sees all 13. */
	for (seq = 0; seq < 13; seq++)
		expect_record(&old, seq, 8, seq);
	expect_status(&old, RING_EMPTY, mono_ns());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ring_wrap_around, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_overrun_counted_exactly, setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(test_ring_two_writers_outpace_reader, setup,
							 teardown, &big_cap),
		cmocka_unit_test_prestate_setup_teardown(test_ring_four_writers_outpace_reader,
							 setup, teardown, &big_cap),
		cmocka_unit_test_setup_teardown(test_ring_torn_slot_after_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_torn_slot_dead_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_pending_then_published, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_overwritten_before_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_overwritten_during_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_reader_from_now, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_lapped_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_spoiled_record_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_ticket_beyond_stamps, setup, teardown),
	};

	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
