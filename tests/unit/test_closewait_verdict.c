/* Unit tests of tools/closewait_verdict.c: every verdict closewait can
 * give, each from evidence built by hand (a kernel inode and Recv-Q, a
 * ledger entry or none, holders reconciled with /proc), with the reason
 * fields the printers render: the holder meant, why INHERITED, whether the
 * owner still holds it, what is known of the EOF. Also the order the
 * verdicts are tried in, where two could apply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "closewait_verdict.h"

#define OWNER 100 /* the process that created or accepted the socket */
#define READER 200 /* the process that read the peer's EOF */
#define OTHER 300
#define INODE 4242
#define EOF_NS 5000000000ULL

/* One socket's evidence, built up by each test. */
struct fixture {
	struct ledger_sock ls;
	struct rec_holder h[8];
	struct rec_sock rs;
	struct cw_evidence ev;
	struct cw_decision d;
};

/* A socket the kernel lists with INODE and only the FIN queued, in the
 * ledger (born of OWNER's accept, EOF not seen), with no holders yet. */
static void setup(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->ls.inode = INODE;
	f->ls.born_pid = OWNER;
	f->ls.born = SOCKSHIM_BORN_ACCEPT;
	f->ls.refs = 1;
	f->rs.h = f->h;
	f->rs.cap = sizeof(f->h) / sizeof(f->h[0]);
	f->ev.inode = INODE;
	f->ev.recv_q = 1;
	f->ev.ls = &f->ls;
	f->ev.rs = &f->rs;
}

/* A holder: PID, how it got the socket, where it was found, whether
 * /proc says it is gone, its process state. Returns its index. */
static int add_holder(struct fixture *f, pid_t pid, unsigned how, int source, int stale,
		      char state)
{
	struct rec_holder *h = &f->h[f->rs.n];

	assert_true(f->rs.n < f->rs.cap);
	h->pid = pid;
	h->fd = 3 + (int)f->rs.n;
	h->how = how;
	h->source = source;
	h->stale = stale;
	h->state = state;
	if (!stale)
		f->rs.live++;
	return (int)f->rs.n++;
}

/* A live holder found by both the ledger and /proc, running. */
static int add_live(struct fixture *f, pid_t pid, unsigned how)
{
	return add_holder(f, pid, how, REC_LEDGER | REC_PROC, 0, 'S');
}

/* Decide, into a decision filled with junk first: every field asserted
 * must have been written by cw_decide. */
static enum cw_verdict decide(struct fixture *f)
{
	enum cw_verdict v;

	memset(&f->d, 0x5a, sizeof(f->d));
	v = cw_decide(&f->ev, &f->d);
	assert_int_equal(v, f->d.verdict);
	return v;
}

static void assert_decision(const struct fixture *f, enum cw_verdict v, int holder,
			    enum cw_inherit inherit, int owner_holds, enum cw_eof eof)
{
	assert_string_equal(cw_verdict_name(f->d.verdict), cw_verdict_name(v));
	assert_int_equal(f->d.verdict, v);
	assert_int_equal(f->d.holder, holder);
	assert_int_equal(f->d.inherit, inherit);
	assert_int_equal(f->d.owner_holds, owner_holds);
	assert_int_equal(f->d.eof, eof);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(cw_verdict_name(CW_UNACCEPTED), "UNACCEPTED");
	assert_string_equal(cw_verdict_name(CW_HUNG_HOLDER), "HUNG-HOLDER");
	assert_string_equal(cw_verdict_name(CW_EOF_READ_NOT_CLOSED), "EOF-READ-NOT-CLOSED");
	assert_string_equal(cw_verdict_name(CW_INHERITED), "INHERITED");
	assert_string_equal(cw_verdict_name(CW_EOF_NOT_READ), "EOF-NOT-READ");
	assert_string_equal(cw_verdict_name(CW_UNKNOWN), "UNKNOWN");
	assert_null(cw_verdict_name(CW_VERDICT_COUNT));
	assert_null(cw_verdict_name((enum cw_verdict)-1));
}

/* Inode 0: nobody accepted it. Nothing else counts, not even a hung
 * holder or an EOF the ledger saw (an entry whose inode was reused). */
static void test_unaccepted(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f);
	f.ev.inode = 0;
	f.ev.ls = NULL;
	assert_int_equal(decide(&f), CW_UNACCEPTED);
	assert_decision(&f, CW_UNACCEPTED, -1, CW_INH_NONE, 0, CW_EOF_UNSAID);

	setup(&f);
	f.ev.inode = 0;
	f.ev.recv_q = 0;
	f.ls.eof_ns = EOF_NS;
	f.ls.eof_pid = READER;
	f.ls.noeffect_closes = 1;
	add_holder(&f, READER, SOCKSHIM_HOW_CREATED, REC_LEDGER | REC_PROC, 0, 'T');
	assert_int_equal(decide(&f), CW_UNACCEPTED);
	assert_decision(&f, CW_UNACCEPTED, -1, CW_INH_NONE, 0, CW_EOF_UNSAID);
}

/* The first live holder that is stopped (T), traced (t) or in
 * uninterruptible sleep (D); a stale one is no holder. */
static void test_hung_holder(void **state)
{
	static const char hung[] = {'T', 't', 'D'};
	struct fixture f;
	size_t i;
	int want;

	(void)state;
	for (i = 0; i < sizeof(hung); i++) {
		setup(&f);
		add_live(&f, OTHER, SOCKSHIM_HOW_FORK);
		add_holder(&f, OTHER + 1, SOCKSHIM_HOW_FORK, REC_LEDGER, 1, 'D');
		want = add_holder(&f, OWNER, SOCKSHIM_HOW_CREATED, REC_LEDGER | REC_PROC, 0,
				  hung[i]);
		add_holder(&f, OTHER + 2, SOCKSHIM_HOW_NONE, REC_PROC, 0, 'D');
		assert_int_equal(decide(&f), CW_HUNG_HOLDER);
		assert_decision(&f, CW_HUNG_HOLDER, want, CW_INH_NONE, 0, CW_EOF_UNSAID);
	}
	/* A holder only /proc knows, and no ledger at all. */
	setup(&f);
	f.ev.ls = NULL;
	want = add_holder(&f, OTHER, SOCKSHIM_HOW_NONE, REC_PROC, 0, 'D');
	assert_int_equal(decide(&f), CW_HUNG_HOLDER);
	assert_decision(&f, CW_HUNG_HOLDER, want, CW_INH_NONE, 0, CW_EOF_UNSAID);
}

/* Hung comes before the EOF reader and before inheritance. */
static void test_hung_before_others(void **state)
{
	struct fixture f;
	int want;

	(void)state;
	setup(&f);
	f.ls.eof_ns = EOF_NS;
	f.ls.eof_pid = READER;
	f.ls.noeffect_closes = 3;
	add_live(&f, READER, SOCKSHIM_HOW_FORK);
	want = add_holder(&f, OTHER, SOCKSHIM_HOW_EXEC, REC_LEDGER | REC_PROC, 0, 't');
	assert_int_equal(decide(&f), CW_HUNG_HOLDER);
	assert_decision(&f, CW_HUNG_HOLDER, want, CW_INH_NONE, 0, CW_EOF_UNSAID);
}

/* Only stale holders are hung: no HUNG-HOLDER; with the FIN queued and no
 * EOF seen, EOF-NOT-READ. */
static void test_hung_only_stale(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f);
	f.ev.ls = NULL;
	add_holder(&f, OTHER, SOCKSHIM_HOW_CREATED, REC_LEDGER, 1, 'T');
	add_holder(&f, OTHER + 1, SOCKSHIM_HOW_CREATED, REC_LEDGER, 1, 'D');
	assert_int_equal(decide(&f), CW_EOF_NOT_READ);
	assert_decision(&f, CW_EOF_NOT_READ, -1, CW_INH_NONE, 0, CW_EOF_UNSAID);
}

/* The reader of the EOF still holds it: the first live holder that is the
 * reader, whatever its stale entries and the other holders; before
 * INHERITED, even with closes that had no effect. */
static void test_eof_read_not_closed(void **state)
{
	struct fixture f;
	int want;

	(void)state;
	setup(&f);
	f.ev.recv_q = 0;
	f.ls.eof_ns = EOF_NS;
	f.ls.eof_pid = READER;
	f.ls.noeffect_closes = 1;
	add_holder(&f, READER, SOCKSHIM_HOW_CREATED, REC_LEDGER, 1, 0);
	add_live(&f, OTHER, SOCKSHIM_HOW_FORK);
	want = add_live(&f, READER, SOCKSHIM_HOW_FORK);
	add_live(&f, READER, SOCKSHIM_HOW_DUP);
	assert_int_equal(decide(&f), CW_EOF_READ_NOT_CLOSED);
	assert_decision(&f, CW_EOF_READ_NOT_CLOSED, want, CW_INH_NONE, 0, CW_EOF_UNSAID);

	/* The reader the owner itself, a holder /proc alone confirms. */
	setup(&f);
	f.ls.eof_ns = EOF_NS;
	f.ls.eof_pid = OWNER;
	want = add_holder(&f, OWNER, SOCKSHIM_HOW_NONE, REC_PROC, 0, 'R');
	assert_int_equal(decide(&f), CW_EOF_READ_NOT_CLOSED);
	assert_decision(&f, CW_EOF_READ_NOT_CLOSED, want, CW_INH_NONE, 0, CW_EOF_UNSAID);
}

/* An EOF time of 0 is "not seen", even when eof_pid names a holder. */
static void test_eof_pid_without_time(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f);
	f.ls.eof_pid = OWNER;
	add_live(&f, OWNER, SOCKSHIM_HOW_CREATED);
	assert_int_equal(decide(&f), CW_EOF_NOT_READ);
	assert_decision(&f, CW_EOF_NOT_READ, -1, CW_INH_NONE, 0, CW_EOF_UNSAID);
}

/* Closes the ledger counted as without effect: INHERITED, even with no
 * holder left at all, and even when the owner is the only holder. */
static void test_inherited_noeffect_closes(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f);
	f.ls.noeffect_closes = 2;
	assert_int_equal(decide(&f), CW_INHERITED);
	assert_decision(&f, CW_INHERITED, -1, CW_INH_NOEFFECT_CLOSES, 0, CW_EOF_UNSAID);

	setup(&f);
	f.ls.noeffect_closes = 1;
	f.ev.noeffect_steps = 1;
	add_holder(&f, OWNER, SOCKSHIM_HOW_CREATED, REC_LEDGER, 1, 0);
	add_live(&f, OTHER, SOCKSHIM_HOW_CREATED);
	add_live(&f, OWNER, SOCKSHIM_HOW_DUP);
	assert_int_equal(decide(&f), CW_INHERITED);
	assert_decision(&f, CW_INHERITED, -1, CW_INH_NOEFFECT_CLOSES, 1, CW_EOF_UNSAID);
}

/* No count, but such a close (or an exit) in the history kept. */
static void test_inherited_noeffect_steps(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f);
	f.ev.recv_q = 0;
	f.ev.noeffect_steps = 1;
	add_live(&f, OWNER, SOCKSHIM_HOW_CREATED);
	assert_int_equal(decide(&f), CW_INHERITED);
	assert_decision(&f, CW_INHERITED, -1, CW_INH_NOEFFECT_STEPS, 1, CW_EOF_UNSAID);

	/* Holders all gone. */
	setup(&f);
	f.ev.noeffect_steps = 4;
	add_holder(&f, OWNER, SOCKSHIM_HOW_CREATED, REC_LEDGER, 1, 0);
	assert_int_equal(decide(&f), CW_INHERITED);
	assert_decision(&f, CW_INHERITED, -1, CW_INH_NOEFFECT_STEPS, 0, CW_EOF_UNSAID);
}

/* The owner holds no live copy, and another holder got it by each of the
 * ways that hand a copy on. */
static void test_inherited_handed_on(void **state)
{
	static const unsigned ways[] = {SOCKSHIM_HOW_FORK, SOCKSHIM_HOW_EXEC, SOCKSHIM_HOW_SCM,
					SOCKSHIM_HOW_DUP};
	struct fixture f;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
		setup(&f);
		add_holder(&f, OWNER, SOCKSHIM_HOW_CREATED, REC_LEDGER, 1, 0);
		add_live(&f, OTHER, SOCKSHIM_HOW_CREATED);
		add_holder(&f, OTHER + 1, ways[i], REC_LEDGER, 0, 0); /* unverified */
		assert_int_equal(decide(&f), CW_INHERITED);
		assert_decision(&f, CW_INHERITED, -1, CW_INH_HANDED_ON, 0, CW_EOF_UNSAID);
	}
}

/* Not handed on: the owner holds a live copy (wherever in the list), or
 * the others came by creation, start-up or /proc alone, or there is no
 * ledger to say who the owner was. */
static void test_not_inherited(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f);
	add_live(&f, OTHER, SOCKSHIM_HOW_FORK);
	add_live(&f, OWNER, SOCKSHIM_HOW_CREATED);
	assert_int_equal(decide(&f), CW_EOF_NOT_READ);
	assert_decision(&f, CW_EOF_NOT_READ, -1, CW_INH_NONE, 0, CW_EOF_UNSAID);

	setup(&f);
	f.ev.recv_q = 0;
	add_live(&f, OTHER, SOCKSHIM_HOW_CREATED);
	add_live(&f, OTHER + 1, SOCKSHIM_HOW_INHERITED);
	add_holder(&f, OTHER + 2, SOCKSHIM_HOW_FORK, REC_PROC, 0, 'S');
	assert_int_equal(decide(&f), CW_UNKNOWN);
	assert_decision(&f, CW_UNKNOWN, -1, CW_INH_NONE, 0, CW_EOF_READ_UNSEEN);

	setup(&f);
	f.ev.ls = NULL;
	f.ev.noeffect_steps = 1;
	add_live(&f, OTHER, SOCKSHIM_HOW_FORK);
	assert_int_equal(decide(&f), CW_EOF_NOT_READ);
	assert_decision(&f, CW_EOF_NOT_READ, -1, CW_INH_NONE, 0, CW_EOF_UNSAID);
}

/* The FIN (at least) still queued and no EOF seen: nobody read it. */
static void test_eof_not_read(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f);
	f.ev.recv_q = 1;
	add_live(&f, OWNER, SOCKSHIM_HOW_CREATED);
	assert_int_equal(decide(&f), CW_EOF_NOT_READ);
	assert_decision(&f, CW_EOF_NOT_READ, -1, CW_INH_NONE, 0, CW_EOF_UNSAID);

	/* Data behind the FIN, no holder, not in the ledger. */
	setup(&f);
	f.ev.ls = NULL;
	f.ev.recv_q = 70000;
	assert_int_equal(decide(&f), CW_EOF_NOT_READ);
	assert_decision(&f, CW_EOF_NOT_READ, -1, CW_INH_NONE, 0, CW_EOF_UNSAID);
}

/* Nothing else applies. What is left to say of the EOF: read by a process
 * gone since, read by someone unseen, or nothing (queue not empty). */
static void test_unknown(void **state)
{
	struct fixture f;

	(void)state;
	/* The reader's entry is stale: it holds the socket no more. */
	setup(&f);
	f.ev.recv_q = 0;
	f.ls.eof_ns = EOF_NS;
	f.ls.eof_pid = READER;
	add_holder(&f, READER, SOCKSHIM_HOW_FORK, REC_LEDGER, 1, 0);
	add_live(&f, OWNER, SOCKSHIM_HOW_CREATED);
	assert_int_equal(decide(&f), CW_UNKNOWN);
	assert_decision(&f, CW_UNKNOWN, -1, CW_INH_NONE, 0, CW_EOF_READ_BY_GONE);

	/* The EOF seen, yet bytes queued again: Recv-Q says nothing. */
	setup(&f);
	f.ev.recv_q = 3;
	f.ls.eof_ns = EOF_NS;
	f.ls.eof_pid = READER;
	assert_int_equal(decide(&f), CW_UNKNOWN);
	assert_decision(&f, CW_UNKNOWN, -1, CW_INH_NONE, 0, CW_EOF_UNSAID);

	/* No ledger, no holder, the queue empty. */
	setup(&f);
	f.ev.ls = NULL;
	f.ev.recv_q = 0;
	assert_int_equal(decide(&f), CW_UNKNOWN);
	assert_decision(&f, CW_UNKNOWN, -1, CW_INH_NONE, 0, CW_EOF_READ_UNSEEN);

	/* In the ledger, its holders all gone, the queue empty. */
	setup(&f);
	f.ev.recv_q = 0;
	add_holder(&f, OWNER, SOCKSHIM_HOW_CREATED, REC_LEDGER, 1, 0);
	assert_int_equal(decide(&f), CW_UNKNOWN);
	assert_decision(&f, CW_UNKNOWN, -1, CW_INH_NONE, 0, CW_EOF_READ_UNSEEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_unaccepted),
		cmocka_unit_test(test_hung_holder),
		cmocka_unit_test(test_hung_before_others),
		cmocka_unit_test(test_hung_only_stale),
		cmocka_unit_test(test_eof_read_not_closed),
		cmocka_unit_test(test_eof_pid_without_time),
		cmocka_unit_test(test_inherited_noeffect_closes),
		cmocka_unit_test(test_inherited_noeffect_steps),
		cmocka_unit_test(test_inherited_handed_on),
		cmocka_unit_test(test_not_inherited),
		cmocka_unit_test(test_eof_not_read),
		cmocka_unit_test(test_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
