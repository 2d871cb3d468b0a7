/* Unit tests of tools/ledger_read.c: snapshots of ledgers written into a
 * real session segment by the shim's own ledger code (shim/ledger.c:
 * placement, holders, history steps; a value a test wants wrong is then
 * written over by hand), with filters and reserved entries, what a
 * corrupt entry is turned into, and inheritance paths rebuilt from
 * history steps: the fork/dup/exec chain of the issue, SCM_RIGHTS, a
 * history that wrapped, a holder that is the creator itself. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ledger.h"
#include "ledger_read.h"
#include "vfork.h"

#define RING (1u << SOCKSHIM_RING_MIN_SHIFT)
#define LEDGER (1u << SOCKSHIM_LEDGER_MIN_SHIFT)
/* A monotonic time, 10 s: births are set to it; holders and steps the
 * shim's code stamps now, which is later. */
#define T0 10000000000ULL
#define MS 1000000ULL

/* emit.c (linked for the ledger) asks; never in a vfork child here. */
__thread int shim_vfork_pending; /* 0: shim_in_vfork_child() is false */

int shim_vfork_child_check(void)
{
	return 0;
}

struct fixture {
	char name[64];
	struct seg_map m;
};

static int setup(void **state)
{
	static unsigned serial;
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->name, sizeof(f->name), "ut-ledger-%d-%u", (int)getpid(), serial++);
	if (seg_create(f->name, RING, LEDGER, &f->m)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	seg_unmap(&f->m);
	seg_remove(f->name);
	free(f);
	return 0;
}

static char *path_of(const struct ledger_sock *s, pid_t pid, int fd)
{
	static char buf[1024];
	struct fmt_buf b;

	fmt_buf_init(&b, buf, sizeof(buf));
	ledger_path_str(&b, s, pid, fd);
	return buf;
}

/* The ledger entry of INODE, made by the shim's ledger_get: born BORN in
 * PID as FD at T0. Its reference in *REF (if not NULL). */
static struct sockshim_sock *plant(struct seg_map *m, uint64_t inode, unsigned born, int pid,
				   int fd, uint32_t *ref)
{
	struct fd_entry e;
	uint32_t r;
	int created;

	memset(&e, 0, sizeof(e));
	e.born = (uint16_t)born;
	e.born_ns = T0;
	e.family = 2; /* AF_INET */
	e.socktype = 1;
	r = ledger_get(m, inode, &e, pid, fd, &created);
	assert_int_not_equal(r, 0);
	assert_true(created);
	if (ref)
		*ref = r;
	return &seg_ledger(m)[r - 1];
}

/* A history step by process COMM, as the shim writes it. */
static struct sockshim_step *step(struct seg_map *m, uint32_t ref, unsigned op, int pid, int fd,
				  int arg, const char *comm)
{
	struct sockshim_sock *s = &seg_ledger(m)[ref - 1];
	uint32_t n = s->steps_next;

	assert_int_equal(prctl(PR_SET_NAME, comm, 0, 0, 0), 0);
	ledger_set_comm();
	ledger_step(m, ref, (int)op, pid, fd, arg, 0);
	return &s->steps[n % SOCKSHIM_STEPS];
}

/* PID holds the socket as FD, as the shim records it; its holder. */
static struct sockshim_holder *hold(struct seg_map *m, uint32_t ref, int pid, int fd,
				    unsigned how, int from_pid, int from_fd)
{
	struct sockshim_sock *s = &seg_ledger(m)[ref - 1];
	unsigned i;

	ledger_hold(m, ref, pid, fd, (int)how, from_pid, from_fd, 0);
	for (i = 0; i < SOCKSHIM_HOLDERS; i++)
		if (s->holders[i].state == SOCKSHIM_HOLDER_LIVE && s->holders[i].pid == pid &&
		    s->holders[i].fd == fd)
			return &s->holders[i];
	fail_msg("holder %d/%d not recorded", pid, fd);
	return NULL;
}

/* The example: accepted by 4101 fd 7, forked to 4120, dup2'ed onto
 * fd 0, exec'ed sh, which forked 4123, which exec'ed sleep. 4101 and sh
 * closed their copies; the closes had no effect. */
static struct sockshim_sock *plant_chain(struct seg_map *m, uint64_t inode)
{
	uint32_t r;
	struct sockshim_sock *s = plant(m, inode, SOCKSHIM_BORN_ACCEPT, 4101, 7, &r);

	step(m, r, SOCKSHIM_STEP_BORN, 4101, 7, SOCKSHIM_BORN_ACCEPT, "socat");
	step(m, r, SOCKSHIM_STEP_FORK, 4101, 7, 4120, "socat");
	step(m, r, SOCKSHIM_STEP_CLOSE, 4101, 7, 2, "socat");
	step(m, r, SOCKSHIM_STEP_DUP, 4120, 7, 0, "socat");
	step(m, r, SOCKSHIM_STEP_EXEC, 4120, 0, 0, "sh");
	step(m, r, SOCKSHIM_STEP_EXEC, 4120, 7, 0, "sh");
	step(m, r, SOCKSHIM_STEP_FORK, 4120, 0, 4123, "sh");
	step(m, r, SOCKSHIM_STEP_FORK, 4120, 7, 4123, "sh");
	step(m, r, SOCKSHIM_STEP_EXEC, 4123, 0, 0, "sleep");
	step(m, r, SOCKSHIM_STEP_EXEC, 4123, 7, 0, "sleep");
	step(m, r, SOCKSHIM_STEP_EXIT, 4120, 0, 2, "sh");
	step(m, r, SOCKSHIM_STEP_EXIT, 4120, 7, 1, "sh");
	hold(m, r, 4123, 0, SOCKSHIM_HOW_EXEC, 4120, 0);
	hold(m, r, 4123, 7, SOCKSHIM_HOW_EXEC, 4120, 7);
	s->noeffect_closes = 3;
	return s;
}

static void test_snapshot_and_path(void **state)
{
	struct fixture *f = *state;
	const struct ledger_sock *ls;
	struct ledger_snap snap;

	plant_chain(&f->m, 555001);
	assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
	assert_int_equal(snap.n, 1);
	ls = ledger_find(&snap, 555001);
	assert_non_null(ls);
	assert_null(ledger_find(&snap, 555002));
	assert_int_equal(ls->born, SOCKSHIM_BORN_ACCEPT);
	assert_int_equal(ls->nholders, 2);
	assert_int_equal(ls->nsteps, 12);
	assert_false(ls->history_lost);
	assert_int_equal(ls->refs, 2);
	assert_string_equal(path_of(ls, 4123, 0), "accepted by 4101 fd 7 -> fork 4120 -> dup to "
						  "fd 0 -> exec sh -> fork 4123 -> exec sleep");
	/* fd 7 survived both execs without the dup. */
	assert_string_equal(path_of(ls, 4123, 7),
			    "accepted by 4101 fd 7 -> fork 4120 -> exec sh -> fork 4123 -> exec sleep");
	assert_string_equal(ledger_comm_of(ls, 4123), "sleep");
	assert_string_equal(ledger_comm_of(ls, 4101), "socat");
	assert_null(ledger_comm_of(ls, 9999));
	assert_non_null(ledger_holder_of(ls, 4123, 7));
	assert_null(ledger_holder_of(ls, 4123, 8));
	ledger_snap_free(&snap);
}

static void test_path_hops(void **state)
{
	struct fixture *f = *state;
	struct ledger_hop hops[SOCKSHIM_STEPS];
	const struct ledger_sock *ls;
	struct ledger_snap snap;
	int complete;
	size_t n;

	plant_chain(&f->m, 555003);
	assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
	ls = ledger_find(&snap, 555003);
	assert_non_null(ls);
	n = ledger_path(ls, 4123, 0, hops, SOCKSHIM_STEPS, &complete);
	assert_int_equal(n, 6);
	assert_true(complete);
	assert_int_equal(hops[0].op, SOCKSHIM_STEP_BORN);
	assert_int_equal(hops[1].op, SOCKSHIM_STEP_FORK);
	assert_int_equal(hops[1].arg, 4120);
	assert_int_equal(hops[2].op, SOCKSHIM_STEP_DUP);
	assert_int_equal(hops[5].op, SOCKSHIM_STEP_EXEC);
	/* Room for fewer hops: the newest ones, not complete. */
	n = ledger_path(ls, 4123, 0, hops, 2, &complete);
	assert_int_equal(n, 2);
	assert_false(complete);
	assert_int_equal(hops[1].op, SOCKSHIM_STEP_EXEC);
	ledger_snap_free(&snap);
}

static void test_scm_path(void **state)
{
	struct fixture *f = *state;
	const struct ledger_sock *ls;
	struct ledger_snap snap;
	uint32_t r;

	plant(&f->m, 777, SOCKSHIM_BORN_SOCKETPAIR, 100, 3, &r);
	step(&f->m, r, SOCKSHIM_STEP_BORN, 100, 3, SOCKSHIM_BORN_SOCKETPAIR, "a");
	step(&f->m, r, SOCKSHIM_STEP_SCM, 200, 5, 100, "b");
	step(&f->m, r, SOCKSHIM_STEP_DUP, 200, 5, 9, "b");
	hold(&f->m, r, 200, 9, SOCKSHIM_HOW_DUP, 200, 5);
	/* Received from a sender the shim did not know. */
	plant(&f->m, 778, SOCKSHIM_BORN_SCM_RIGHTS, 300, 4, &r);
	step(&f->m, r, SOCKSHIM_STEP_SCM, 300, 4, 0, "c");
	hold(&f->m, r, 300, 4, SOCKSHIM_HOW_SCM, 0, -1);
	assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
	ls = ledger_find(&snap, 777);
	assert_non_null(ls);
	assert_string_equal(path_of(ls, 200, 9), "made by socketpair in 100 fd 3 -> SCM_RIGHTS to "
						 "200 fd 5 -> dup to fd 9");
	ls = ledger_find(&snap, 778);
	assert_non_null(ls);
	assert_string_equal(path_of(ls, 300, 4), "received over SCM_RIGHTS by 300 fd 4");
	ledger_snap_free(&snap);
}

static void test_history_wrapped(void **state)
{
	struct fixture *f = *state;
	const struct ledger_sock *ls;
	struct ledger_snap snap;
	uint32_t r;
	int i;

	plant(&f->m, 888, SOCKSHIM_BORN_ACCEPT, 10, 4, &r);
	step(&f->m, r, SOCKSHIM_STEP_BORN, 10, 4, SOCKSHIM_BORN_ACCEPT, "srv");
	step(&f->m, r, SOCKSHIM_STEP_FORK, 10, 4, 11, "srv");
	/* Twenty reads of EOF push the birth and the fork out of the ring. */
	for (i = 0; i < 20; i++)
		step(&f->m, r, SOCKSHIM_STEP_EOF, 10, 4, 0, "srv");
	hold(&f->m, r, 11, 4, SOCKSHIM_HOW_FORK, 10, 4);
	hold(&f->m, r, 10, 4, SOCKSHIM_HOW_CREATED, 10, 4);
	assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
	ls = ledger_find(&snap, 888);
	assert_non_null(ls);
	assert_int_equal(ls->nsteps, SOCKSHIM_STEPS);
	assert_true(ls->history_lost);
	assert_int_equal(ls->steps[0].seq, 22 - SOCKSHIM_STEPS + 1);
	/* Not in the history any more: what the entry and the holder say. */
	assert_string_equal(path_of(ls, 11, 4), "accepted by 10 fd 4 -> ... -> fork 11 (from 10)");
	/* The creator itself needs no history. */
	assert_string_equal(path_of(ls, 10, 4), "accepted by 10 fd 4");
	ledger_snap_free(&snap);
}

/* The creator is named when its steps have left the history: by the
 * name the entry keeps from the birth, cut as a step's is. */
static void test_creator_named(void **state)
{
	struct fixture *f = *state;
	const struct ledger_sock *ls;
	struct ledger_snap snap;
	uint32_t r;
	int i;

	assert_int_equal(prctl(PR_SET_NAME, "creator-process", 0, 0, 0), 0);
	ledger_set_comm();
	plant(&f->m, 889, SOCKSHIM_BORN_SOCKET, 10, 3, &r);
	step(&f->m, r, SOCKSHIM_STEP_BORN, 10, 3, SOCKSHIM_BORN_SOCKET, "creator-process");
	step(&f->m, r, SOCKSHIM_STEP_FORK, 10, 3, 11, "creator-process");
	for (i = 0; i < 20; i++)
		step(&f->m, r, SOCKSHIM_STEP_DUP, 11, 3, 20 + i, "child");
	assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
	ls = ledger_find(&snap, 889);
	assert_non_null(ls);
	assert_true(ls->history_lost);
	for (i = 0; i < (int)ls->nsteps; i++)
		assert_int_equal(ls->steps[i].pid, 11);
	assert_string_equal(ledger_comm_of(ls, 10), "creator-proc");
	assert_string_equal(ledger_comm_of(ls, 11), "child");
	assert_null(ledger_comm_of(ls, 12));
	ledger_snap_free(&snap);
}

/* Only the slots a step was written to are read: a step-like slot past
 * steps_next (no writer took its index) is not history. */
static void test_history_past_steps_next(void **state)
{
	struct fixture *f = *state;
	const struct ledger_sock *ls;
	struct ledger_snap snap;
	struct sockshim_sock *s;
	uint32_t r;

	s = plant(&f->m, 889, SOCKSHIM_BORN_ACCEPT, 10, 4, &r);
	step(&f->m, r, SOCKSHIM_STEP_BORN, 10, 4, SOCKSHIM_BORN_ACCEPT, "srv");
	step(&f->m, r, SOCKSHIM_STEP_EOF, 10, 4, 0, "srv");
	/* A copy of the second step, in slot 5 with its seq: well formed. */
	s->steps[5] = s->steps[1];
	s->steps[5].seq = 6;
	s->steps[5].op = SOCKSHIM_STEP_CLOSE;
	assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
	ls = ledger_find(&snap, 889);
	assert_non_null(ls);
	assert_int_equal(ls->nsteps, 2);
	assert_int_equal(ls->steps[1].op, SOCKSHIM_STEP_EOF);
	assert_false(ls->history_lost);
	ledger_snap_free(&snap);
	/* Once a writer has taken those indices, it is. */
	s->steps_next = 6;
	assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
	ls = ledger_find(&snap, 889);
	assert_non_null(ls);
	assert_int_equal(ls->nsteps, 3);
	assert_int_equal(ls->steps[2].op, SOCKSHIM_STEP_CLOSE);
	ledger_snap_free(&snap);
}

/* A reclaimed entry's history goes on from its old socket's: the slots
 * still hold the old steps, well formed, and only those from steps_base
 * on are this socket's, counted from 1; so too after a restart from 0
 * (the old steps' indices then far above). */
static void test_history_after_reclaim(void **state)
{
	static const uint32_t bases[] = {5, SOCKSHIM_STEPS_RESTART - 2, 0};
	struct fixture *f = *state;
	const struct ledger_sock *ls;
	struct ledger_snap snap;
	struct sockshim_sock *s;
	unsigned b, i;
	uint32_t r;

	s = plant(&f->m, 890, SOCKSHIM_BORN_ACCEPT, 10, 4, &r);
	for (b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
		/* The old socket's steps, up to the base, in every slot. */
		for (i = 0; i < SOCKSHIM_STEPS; i++) {
			uint32_t n = (bases[b] ? bases[b] : SOCKSHIM_STEPS_RESTART) - SOCKSHIM_STEPS + i;

			s->steps[n % SOCKSHIM_STEPS] = (struct sockshim_step){
				.seq = n + 1, .op = SOCKSHIM_STEP_DUP, .ts_ns = T0 + 1,
				.pid = 99, .fd = 8, .arg = 9};
		}
		s->steps_base = s->steps_next = bases[b];
		assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
		ls = ledger_find(&snap, 890);
		assert_non_null(ls);
		assert_int_equal(ls->nsteps, 0);
		assert_int_equal(ls->steps_next, 0);
		assert_false(ls->history_lost);
		ledger_snap_free(&snap);

		step(&f->m, r, SOCKSHIM_STEP_BORN, 10, 4, SOCKSHIM_BORN_ACCEPT, "srv");
		step(&f->m, r, SOCKSHIM_STEP_EOF, 10, 4, 0, "srv");
		step(&f->m, r, SOCKSHIM_STEP_CLOSE, 10, 4, 0, "srv");
		assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
		ls = ledger_find(&snap, 890);
		assert_non_null(ls);
		assert_int_equal(ls->nsteps, 3);
		assert_int_equal(ls->steps_next, 3);
		for (i = 0; i < 3; i++) {
			assert_int_equal(ls->steps[i].seq, i + 1);
			assert_int_equal(ls->steps[i].pid, 10);
		}
		assert_int_equal(ls->steps[0].op, SOCKSHIM_STEP_BORN);
		assert_int_equal(ls->steps[2].op, SOCKSHIM_STEP_CLOSE);
		assert_false(ls->history_lost);
		ledger_snap_free(&snap);

		/* A writer took the next index and has not written it yet: its
		 * slot shows the old socket's step of one lap before. */
		s->steps_next++;
		assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
		ls = ledger_find(&snap, 890);
		assert_non_null(ls);
		assert_int_equal(ls->nsteps, 3);
		assert_int_equal(ls->steps[2].op, SOCKSHIM_STEP_CLOSE);
		ledger_snap_free(&snap);
	}
}

/* Whatever a buggy or hostile writer left is checked, not believed. */
static void test_corrupt_values(void **state)
{
	struct fixture *f = *state;
	struct sockshim_step *st;
	struct sockshim_holder *h;
	const struct ledger_sock *ls;
	struct ledger_snap snap;
	uint32_t r;
	struct sockshim_sock *s = plant(&f->m, 999, SOCKSHIM_BORN_SOCKET, 10, 4, &r);

	s->born = 77; /* born out of range */
	memset(s->callsite_module, 'x', sizeof(s->callsite_module)); /* not terminated */
	hold(&f->m, r, 10, 4, 200, 0, 0); /* how out of range */
	h = hold(&f->m, r, 11, 4, SOCKSHIM_HOW_FORK, 10, 4);
	h->state = SOCKSHIM_HOLDER_CLAIMED; /* being written */
	hold(&f->m, r, 0, 4, SOCKSHIM_HOW_FORK, 10, 4);   /* no pid */
	hold(&f->m, r, 12, -3, SOCKSHIM_HOW_FORK, 10, 4); /* no fd */
	h = hold(&f->m, r, 13, 4, SOCKSHIM_HOW_FORK, 10, 4);
	h->since_ns = T0 - 5000 * MS; /* from before the birth: a reclaimed entry's */
	step(&f->m, r, SOCKSHIM_STEP_BORN, 10, 4, 77, "a");
	step(&f->m, r, 99, 10, 4, 0, "a"); /* op out of range */
	st = step(&f->m, r, SOCKSHIM_STEP_EOF, 10, 4, 0, "a");
	st->seq = 9; /* not the seq of its slot */
	/* The kernel keeps 15 bytes of a name, the step 12, unterminated. */
	step(&f->m, r, SOCKSHIM_STEP_EOF, 10, 4, 0, "aaaaaaaaaaaaaaaa");
	s->eof_ns = T0;
	s->eof_pid = -4; /* nonsense: no EOF then */
	assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
	ls = ledger_find(&snap, 999);
	assert_non_null(ls);
	assert_int_equal(ls->born, SOCKSHIM_BORN_UNKNOWN);
	assert_int_equal(strlen(ls->callsite_module), SOCKSHIM_MODULE_MAX);
	assert_int_equal(ls->nholders, 1);
	assert_int_equal(ls->holders[0].pid, 10);
	assert_int_equal(ls->holders[0].how, SOCKSHIM_HOW_NONE);
	assert_int_equal(ls->nsteps, 2); /* the birth and the long-named EOF */
	assert_int_equal(ls->steps[1].op, SOCKSHIM_STEP_EOF);
	assert_int_equal(strlen(ls->steps[1].comm), LEDGER_COMM_MAX - 1);
	assert_true(ls->history_lost); /* seq 2 and 3 are missing */
	assert_int_equal(ls->eof_ns, 0);
	/* An unknown birth still reads as a sentence. */
	assert_string_equal(path_of(ls, 10, 4), "first seen in 10 fd 4");
	ledger_snap_free(&snap);
}

static void test_reserved_and_empty(void **state)
{
	struct fixture *f = *state;
	struct sockshim_sock raw, *s;
	struct sockshim_ledger_key key;
	struct ledger_sock out;
	struct ledger_sock_room room;
	struct ledger_snap snap;

	plant(&f->m, 4242, SOCKSHIM_BORN_SOCKET, 1, 3, NULL);
	/* The shim's "being initialised": an entry whose claimer has not
	 * published its inode yet. */
	s = plant(&f->m, 4243, SOCKSHIM_BORN_SOCKET, 1, 4, NULL);
	seg_ledger_keys(&f->m)[s - seg_ledger(&f->m)].inode = sockshim_inode_claiming(4243, 77);
	assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
	assert_int_equal(snap.n, 1);
	assert_non_null(ledger_find(&snap, 4242));
	ledger_snap_free(&snap);
	memset(&raw, 0, sizeof(raw));
	memset(&key, 0, sizeof(key));
	assert_int_equal(ledger_sock_load(&out, &room, &raw, &key), -EINVAL);
	key.inode = sockshim_inode_claiming(4243, 77);
	assert_int_equal(ledger_sock_load(&out, &room, &raw, &key), -EINVAL);
	key.inode = UINT64_MAX;
	assert_int_equal(ledger_sock_load(&out, &room, &raw, &key), -EINVAL);
}

static int keep_held(void *arg, uint64_t inode, int32_t refs)
{
	(void)arg;
	return refs > 0 || inode == 3;
}

static void test_snapshot_some(void **state)
{
	struct fixture *f = *state;
	struct ledger_snap snap;
	uint32_t r;
	uint64_t i;

	for (i = 1; i <= 100; i++) {
		plant(&f->m, i, SOCKSHIM_BORN_SOCKET, 1, (int)i, &r);
		if (i % 10 == 0)
			hold(&f->m, r, 1, (int)i, SOCKSHIM_HOW_CREATED, 1, (int)i);
	}
	assert_int_equal(ledger_snapshot_some(&f->m, &snap, keep_held, NULL), 0);
	assert_int_equal(snap.n, 11);
	assert_non_null(ledger_find(&snap, 3));
	assert_non_null(ledger_find(&snap, 50));
	assert_null(ledger_find(&snap, 51));
	ledger_snap_free(&snap);
	assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
	assert_int_equal(snap.n, 100);
	assert_int_equal(snap.capacity, LEDGER);
	ledger_snap_free(&snap);
}

static void test_clocks(void **state)
{
	struct fixture *f = *state;
	struct sockshim_header *h = seg_header(&f->m);
	struct ledger_snap snap;
	int64_t out;

	h->created_monotonic_ns = (int64_t)T0;
	h->created_realtime_ns = 1700000000000000000LL;
	h->created_boottime_ns = (int64_t)T0 + 5000;
	assert_int_equal(ledger_snapshot(&f->m, &snap), 0);
	assert_int_equal(ledger_realtime(&snap, T0 + 2000, &out), 0);
	assert_int_equal(out, 1700000000000002000LL);
	assert_int_equal(ledger_boottime(&snap, T0 + 2000, &out), 0);
	assert_int_equal(out, (int64_t)T0 + 7000);
	assert_int_equal(ledger_realtime(&snap, UINT64_MAX, &out), -ERANGE);
	ledger_snap_free(&snap);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(ledger_born_name(SOCKSHIM_BORN_ACCEPT), "accept");
	assert_null(ledger_born_name(SOCKSHIM_BORN_COUNT));
	assert_string_equal(ledger_born_verb(1000), "first seen in");
	assert_string_equal(ledger_how_name(SOCKSHIM_HOW_SCM), "scm_rights");
	assert_null(ledger_how_name(SOCKSHIM_HOW_COUNT));
	assert_string_equal(ledger_op_name(SOCKSHIM_STEP_EXIT), "exit");
	assert_null(ledger_op_name(SOCKSHIM_STEP_COUNT));
	assert_string_equal(sockshim_close_via_name(SOCKSHIM_CLOSE_VIA_DUP2), "dup2");
	assert_null(sockshim_close_via_name(17));
}

/* Whether an entry found under a kernel socket's inode is about it: its
 * known internet peer must be the kernel's (IPv4 and its mapped form
 * alike); an entry without a known peer, or not of the internet families,
 * proves nothing. */
static void test_is_peer(void **state)
{
	static const uint8_t v4[16] = {127, 0, 0, 1};
	static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
	static const uint8_t other[16] = {127, 0, 0, 2};
	struct ledger_sock ls;

	(void)state;
	memset(&ls, 0, sizeof(ls));
	ls.family = AF_INET;
	memcpy(ls.peer_ip, v4, 16);
	ls.peer_port = 5000;
	assert_true(ledger_sock_is_peer(&ls, AF_INET, other, 5001)); /* peer not known */
	ls.flags = SOCKSHIM_FLAG_PEER_KNOWN;
	assert_true(ledger_sock_is_peer(&ls, AF_INET, v4, 5000));
	assert_true(ledger_sock_is_peer(&ls, AF_INET6, mapped, 5000));
	assert_false(ledger_sock_is_peer(&ls, AF_INET, v4, 5001));
	assert_false(ledger_sock_is_peer(&ls, AF_INET, other, 5000));
	ls.family = AF_INET6;
	memcpy(ls.peer_ip, mapped, 16);
	assert_true(ledger_sock_is_peer(&ls, AF_INET, v4, 5000));
	assert_false(ledger_sock_is_peer(&ls, AF_INET, other, 5000));
	ls.family = AF_UNIX;
	assert_true(ledger_sock_is_peer(&ls, AF_INET, other, 1));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_snapshot_and_path),
		T(test_path_hops),
		T(test_scm_path),
		T(test_history_wrapped),
		T(test_creator_named),
		T(test_history_past_steps_next),
		T(test_history_after_reclaim),
		T(test_corrupt_values),
		T(test_reserved_and_empty),
		T(test_snapshot_some),
		T(test_clocks),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_is_peer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
