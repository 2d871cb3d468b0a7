/* libFuzzer harness of the ledger reader (tools/ledger_read.c): entries
 * from the input are laid into the ledger of a valid segment, then
 * snapshotted, indexed, and every holder's inheritance path is rebuilt
 * and printed. Asserts: every entry taken holds only checked values (a
 * real inode, enums in range, holders live and not older than the birth,
 * history in order within one window, names terminated); nothing stable
 * is called unsettled; every used slot is taken once at most; the index
 * finds each inode; paths stay within their bounds, complete ones start
 * at a birth; every line printed is terminated and escaped; nothing is
 * read outside the segment.
 *
 * Input: u64 created realtime, monotonic and boottime, ledger_full,
 * holder_overflow, ledger_reclaimed (the header's), u8 flags (bit 0:
 * ledger_snapshot_some keeping half the inodes), then entries: u16 slot,
 * then its raw struct sockshim_ledger_key (the index's), then the raw
 * struct sockshim_sock (cut short: zeros). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "fuzz_util.h"
#include "ledger_read.h"

#define RING_CAP (1u << SOCKSHIM_RING_MIN_SHIFT)
#define CAP (1u << SOCKSHIM_LEDGER_MIN_SHIFT)
/* As ledger_read.c: the slack before a birth within which holders and
 * steps still count. */
#define BIRTH_SLACK_NS 1000000ULL
/* A path line of `holders`: as long as a terminal line may be. */
#define PATH_LINE FMT_LINE_MAX

static struct seg_map map;
static size_t map_size;

static void setup(void)
{
	void *base;

	map_size = sockshim_segment_size(RING_CAP, CAP);
	base = fuzz_map(map_size);
	FUZZ_CHECK(base, "cannot map %zu bytes", map_size);
	fuzz_seg_init(&map, base, map_size, RING_CAP, CAP);
}

static int keep_odd(void *arg, uint64_t inode, int32_t refs)
{
	(void)arg;
	return (int)((inode ^ (uint64_t)refs) & 1);
}

static void check_path(const struct ledger_sock *s, pid_t pid, int fd)
{
	struct ledger_hop hops[SOCKSHIM_STEPS];
	char line[PATH_LINE];
	struct fmt_buf b;
	size_t max, n, i;
	int complete;

	for (max = 1; max <= SOCKSHIM_STEPS; max += 5) {
		n = ledger_path(s, pid, fd, hops, max, &complete);
		FUZZ_CHECK(n <= max, "path of %zu hops, room for %zu", n, max);
		FUZZ_CHECK(!complete || (n && hops[0].op == SOCKSHIM_STEP_BORN),
			   "complete path does not start at a birth");
		for (i = 0; i < n; i++) {
			unsigned op = hops[i].op;

			FUZZ_CHECK(op == SOCKSHIM_STEP_BORN || op == SOCKSHIM_STEP_DUP ||
					   op == SOCKSHIM_STEP_FORK || op == SOCKSHIM_STEP_EXEC ||
					   op == SOCKSHIM_STEP_SCM,
				   "hop %zu has op %u", i, op);
			FUZZ_CHECK(memchr(hops[i].comm, 0, sizeof(hops[i].comm)),
				   "hop name not terminated");
		}
	}
	fmt_buf_init(&b, line, sizeof(line));
	ledger_path_str(&b, s, pid, fd);
	fuzz_check_terminal(line, sizeof(line), "inheritance path");
}

static void check_sock(const struct ledger_sock *s)
{
	const char *comm;
	unsigned i;

	FUZZ_CHECK(sockshim_inode_in_use(s->inode), "entry with inode %llu taken",
		   (unsigned long long)s->inode);
	FUZZ_CHECK(s->born < SOCKSHIM_BORN_COUNT, "born %u", s->born);
	FUZZ_CHECK(ledger_born_name(s->born) && ledger_born_verb(s->born), "no name for born");
	FUZZ_CHECK(memchr(s->callsite_module, 0, sizeof(s->callsite_module)),
		   "module name not terminated");
	FUZZ_CHECK((s->eof_ns == 0) == (s->eof_pid == 0) && (s->eof_ns == 0 || s->eof_pid > 0),
		   "eof %llu by pid %d", (unsigned long long)s->eof_ns, s->eof_pid);
	/* The last shutdown: believed whole or not at all. */
	FUZZ_CHECK(!s->shut.ns || (s->shut.pid > 0 && s->shut.how >= 0 && s->shut.how <= 2 &&
				   s->shut.nlisted <= SOCKSHIM_SHUT_OTHERS &&
				   s->shut.nlisted <= s->shut.nothers),
		   "shutdown by %d how %d, %u of %u others listed", s->shut.pid, s->shut.how,
		   s->shut.nlisted, s->shut.nothers);
	for (i = 0; s->shut.ns && i < s->shut.nlisted; i++)
		FUZZ_CHECK(s->shut.others[i] > 0, "other holder %d", s->shut.others[i]);
	FUZZ_CHECK(!s->shut.ns || memchr(s->shut.module, 0, sizeof(s->shut.module)),
		   "shutdown module not terminated");
	FUZZ_CHECK(s->nholders <= SOCKSHIM_HOLDERS, "%u holders", s->nholders);
	for (i = 0; i < s->nholders; i++) {
		const struct ledger_holder *h = &s->holders[i];

		FUZZ_CHECK(h->pid > 0 && h->fd >= 0, "holder %d fd %d", h->pid, h->fd);
		FUZZ_CHECK(h->how < SOCKSHIM_HOW_COUNT && ledger_how_name(h->how), "how %u", h->how);
		FUZZ_CHECK(s->born_ns <= BIRTH_SLACK_NS || h->since_ns >= s->born_ns - BIRTH_SLACK_NS,
			   "holder since %llu, socket born %llu", (unsigned long long)h->since_ns,
			   (unsigned long long)s->born_ns);
		FUZZ_CHECK(ledger_holder_of(s, h->pid, h->fd), "holder %d/%d not found", h->pid,
			   h->fd);
	}
	FUZZ_CHECK(s->nsteps <= SOCKSHIM_STEPS, "%u steps", s->nsteps);
	for (i = 0; i < s->nsteps; i++) {
		const struct ledger_step *st = &s->steps[i];

		FUZZ_CHECK(st->op > SOCKSHIM_STEP_NONE && st->op < SOCKSHIM_STEP_COUNT &&
				   ledger_op_name(st->op),
			   "step op %u", st->op);
		FUZZ_CHECK(memchr(st->comm, 0, sizeof(st->comm)), "step name not terminated");
		FUZZ_CHECK(!i || st->seq > s->steps[i - 1].seq, "steps out of order");
		FUZZ_CHECK(st->seq - s->steps[0].seq < SOCKSHIM_STEPS, "steps %u..%u in one window",
			   s->steps[0].seq, st->seq);
		(void)sockshim_close_via_name(st->via);
	}
	for (i = 0; i < s->nholders; i++) {
		check_path(s, s->holders[i].pid, s->holders[i].fd);
		comm = ledger_comm_of(s, s->holders[i].pid);
		FUZZ_CHECK(!comm || memchr(comm, 0, LEDGER_COMM_MAX), "comm not terminated");
	}
	/* Paths asked for processes the history names but that hold nothing,
	 * and for the creator. */
	for (i = 0; i < s->nsteps; i += 3)
		check_path(s, s->steps[i].pid, s->steps[i].fd);
	check_path(s, s->born_pid, s->born_fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct sockshim_header *h;
	struct sockshim_sock *table;
	struct sockshim_ledger_key *keys;
	struct ledger_snap snap;
	size_t used = 0, i, slot;
	uint8_t flags;
	int64_t t;
	int rc;

	if (!map.base)
		setup();
	h = seg_header(&map);
	table = seg_ledger(&map);
	keys = seg_ledger_keys(&map);
	memset(table, 0, (size_t)CAP * sizeof(*table));
	memset(keys, 0, (size_t)CAP * sizeof(*keys));
	h->created_realtime_ns = (int64_t)fuzz_u64(&in);
	h->created_monotonic_ns = (int64_t)fuzz_u64(&in);
	h->created_boottime_ns = (int64_t)fuzz_u64(&in);
	h->ledger_full = fuzz_u64(&in);
	h->holder_overflow = fuzz_u64(&in);
	h->ledger_reclaimed = fuzz_u64(&in);
	flags = fuzz_u8(&in);
	while (in.n > 2) {
		slot = fuzz_u16(&in) % CAP;
		fuzz_bytes(&in, &keys[slot], sizeof(keys[slot]));
		fuzz_bytes(&in, &table[slot], sizeof(table[slot]));
	}
	for (i = 0; i < CAP; i++)
		used += sockshim_inode_in_use(keys[i].inode);

	if (flags & 1)
		rc = ledger_snapshot_some(&map, &snap, keep_odd, NULL);
	else
		rc = ledger_snapshot(&map, &snap);
	FUZZ_CHECK(rc == 0, "snapshot failed: %d", rc);
	FUZZ_CHECK(snap.capacity == CAP, "capacity %u", snap.capacity);
	FUZZ_CHECK(snap.n + snap.unsettled <= used, "%zu entries from %zu used slots", snap.n,
		   used);
	/* Nothing changes under this reader: nothing may be unsettled. */
	FUZZ_CHECK(snap.unsettled == 0, "%zu entries unsettled in a still ledger", snap.unsettled);
	FUZZ_CHECK(snap.ledger_full == h->ledger_full && snap.holder_overflow == h->holder_overflow &&
			   snap.ledger_reclaimed == h->ledger_reclaimed,
		   "header counters not copied");
	for (i = 0; i < snap.n; i++) {
		const struct ledger_sock *s = &snap.v[i], *f = ledger_find(&snap, s->inode);
		size_t k;
		int found = 0;

		FUZZ_CHECK(f && f->inode == s->inode, "inode %llu not in the index",
			   (unsigned long long)s->inode);
		/* A duplicate inode: the index keeps the newer birth. */
		FUZZ_CHECK(f->born_ns >= s->born_ns, "the index keeps an older birth");
		for (k = 0; k < CAP && !found; k++)
			found = keys[k].inode == s->inode && table[k].born_ns == s->born_ns &&
				table[k].refs == s->refs && keys[k].released_ns == s->released_ns;
		FUZZ_CHECK(found, "entry %llu comes from no slot", (unsigned long long)s->inode);
		check_sock(s);
		(void)ledger_realtime(&snap, s->born_ns, &t);
		(void)ledger_boottime(&snap, s->born_ns, &t);
	}
	ledger_snap_free(&snap);
	return 0;
}
