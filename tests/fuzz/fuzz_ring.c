/* libFuzzer harness of the ring reader (tools/ring_reader.c) and of the
 * event lines made from what it delivers (tools/format.c). The input is a
 * ring as writers left it: records, stamps and head, plus a script of
 * stores that "writers" make between two reads. Asserts: every record
 * delivered is the one in its slot, carries its ticket's stamp and passes
 * its check; losses are counted exactly (cursor = start + delivered +
 * lost) and never exceed what was produced; the reader always ends
 * (pending slots turn torn, no livelock); nothing is read outside the
 * segment; every table line and JSON line made of a record is terminated,
 * escaped, and (JSON) valid.
 *
 * Input: u64 head, u8 flags (bit 0: read from the oldest record; bit 1:
 * every writer is dead, the reader's clock is INT64_MAX; bits 2-7: the
 * clock's step between reads), u64 created realtime, u64 created
 * monotonic, u16 N, N records of 128 bytes for the tickets head-N .. head-1
 * (the reader starts at head-N unless bit 0), then stores of 12 bytes:
 * u16 at (read number), u16 where (word of the ring; 0xffff: the head),
 * u64 value. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "fuzz_util.h"
#include "ring_reader.h"

#define CAP (1u << SOCKSHIM_RING_MIN_SHIFT)
#define LEDGER_CAP (1u << SOCKSHIM_LEDGER_MIN_SHIFT)
#define RECORD_WORDS (sizeof(struct sockshim_record) / sizeof(uint64_t))
#define WHERE_HEAD 0xffffu
#define STORE_SIZE 12
/* The reader's clock: a start that is not 0, and the least step, so a
 * pending slot turns torn within a few reads. */
#define CLOCK_START 1000000000LL
#define STEP_MIN_NS (100 * 1000000LL)
#define STEP_UNIT_NS (10 * 1000000LL)

static struct seg_map map;
static size_t map_size;

static void setup(void)
{
	void *base;

	map_size = sockshim_segment_size(CAP, LEDGER_CAP);
	base = fuzz_map(map_size);
	FUZZ_CHECK(base, "cannot map %zu bytes", map_size);
	fuzz_seg_init(&map, base, map_size, CAP, LEDGER_CAP);
}

static uint64_t *head_word(void)
{
	return &seg_header(&map)->ring_head;
}

struct store {
	uint16_t at, where;
	uint64_t value;
};

static void apply(const struct store *s)
{
	uint64_t *ring = (uint64_t *)seg_ring(&map);

	if (s->where == WHERE_HEAD)
		*head_word() = s->value;
	else
		ring[s->where % (CAP * RECORD_WORDS)] = s->value;
}

static void check_lines(const struct sockshim_record *r, uint64_t ticket,
			const struct fmt_clockref *clock)
{
	char line[FMT_LINE_MAX];

	fmt_table_row(line, sizeof(line), r, clock);
	fuzz_check_terminal(line, sizeof(line), "events table row");
	/* cmd_events passes the ticket so, from the stamp. */
	fmt_json_record(line, sizeof(line), r, (r->stamp - 2) / 2, clock);
	fuzz_check_json(line, sizeof(line), "events JSON line");
	FUZZ_CHECK((r->stamp - 2) / 2 == ticket, "stamp %llu is not ticket %llu's",
		   (unsigned long long)r->stamp, (unsigned long long)ticket);
}

/* Losses in a row of one kind make one line, as cmd_events prints them. */
struct lost_run {
	uint64_t n;
	char kind;
};

static void flush_lost(struct lost_run *run)
{
	char line[FMT_LINE_MAX];

	if (!run->n)
		return;
	fmt_lost(line, sizeof(line), run->n, run->kind, 0);
	fuzz_check_terminal(line, sizeof(line), "lost line");
	fmt_lost(line, sizeof(line), run->n, run->kind, 1);
	fuzz_check_json(line, sizeof(line), "lost JSON line");
	run->n = 0;
}

static void on_lost(struct lost_run *run, uint64_t n, char kind)
{
	if (run->n && run->kind != kind)
		flush_lost(run);
	run->n += n;
	run->kind = kind;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	static struct store stores[4096];
	size_t nstores = 0, next_store = 0, i;
	struct sockshim_record *ring, rec;
	struct fmt_clockref clock;
	struct ring_reader rr;
	struct lost_run run = {0, 0};
	uint64_t head, nrec, start, max_head, lost, total_lost = 0, calls = 0, since_store = 0;
	int64_t now = CLOCK_START, step;
	unsigned pending = 0, pending_max;
	uint8_t flags;
	char kind;

	if (!map.base)
		setup();
	ring = seg_ring(&map);
	memset(ring, 0, (size_t)CAP * sizeof(*ring));

	head = fuzz_u64(&in);
	flags = fuzz_u8(&in);
	clock.created_real_ns = (int64_t)fuzz_u64(&in);
	clock.created_mono_ns = (int64_t)fuzz_u64(&in);
	nrec = fuzz_u16(&in);
	if (nrec > CAP)
		nrec = CAP;
	if (nrec > head)
		nrec = head;
	for (i = 0; i < nrec; i++)
		fuzz_bytes(&in, &ring[(head - nrec + i) & (CAP - 1)], sizeof(*ring));
	while (in.n >= STORE_SIZE && nstores < sizeof(stores) / sizeof(stores[0])) {
		stores[nstores].at = fuzz_u16(&in);
		stores[nstores].where = fuzz_u16(&in);
		stores[nstores].value = fuzz_u64(&in);
		nstores++;
	}
	step = STEP_MIN_NS + (int64_t)(flags >> 2) * STEP_UNIT_NS;
	/* Reads that may find the same slot pending before it must be torn. */
	pending_max = (unsigned)(RING_TORN_TIMEOUT_NS / step) + 2;

	/* The reader starts, then the last NREC records are published. */
	*head_word() = (flags & 1) ? head : head - nrec;
	ring_reader_init(&rr, &map, flags & 1);
	*head_word() = head;
	start = rr.cursor;
	max_head = head > start ? head : start;

	for (;;) {
		enum ring_status st;
		uint64_t before = rr.cursor, h;

		while (next_store < nstores && stores[next_store].at <= calls) {
			apply(&stores[next_store++]);
			since_store = 0;
		}
		h = *head_word();
		if (h > max_head)
			max_head = h;
		st = ring_reader_next(&rr, &rec, &lost, &kind, (flags & 2) ? INT64_MAX : now);
		calls++;
		since_store++;
		now += step;
		switch (st) {
		case RING_RECORD:
			FUZZ_CHECK(rr.cursor == before + 1, "a record moved the cursor %llu -> %llu",
				   (unsigned long long)before, (unsigned long long)rr.cursor);
			FUZZ_CHECK(rec.stamp == sockshim_stamp_published(before),
				   "record of ticket %llu has stamp %llu",
				   (unsigned long long)before, (unsigned long long)rec.stamp);
			FUZZ_CHECK(sockshim_record_check(&rec, before) == rec.check,
				   "record of ticket %llu fails its check", (unsigned long long)before);
			FUZZ_CHECK(!memcmp(&rec, &ring[before & (CAP - 1)], sizeof(rec)),
				   "record of ticket %llu is not its slot's",
				   (unsigned long long)before);
			flush_lost(&run);
			check_lines(&rec, before, &clock);
			pending = 0;
			break;
		case RING_LOST:
			FUZZ_CHECK(lost >= 1 && rr.cursor == before + lost,
				   "lost %llu moved the cursor %llu -> %llu", (unsigned long long)lost,
				   (unsigned long long)before, (unsigned long long)rr.cursor);
			FUZZ_CHECK(kind == 'o' || kind == 't', "loss kind %d", kind);
			total_lost += lost;
			on_lost(&run, lost, kind);
			pending = 0;
			break;
		case RING_PENDING:
			FUZZ_CHECK(rr.cursor == before && before < h, "pending moved the cursor");
			FUZZ_CHECK(++pending <= pending_max,
				   "slot of ticket %llu pending for %u reads, never torn",
				   (unsigned long long)before, pending);
			break;
		case RING_EMPTY:
			FUZZ_CHECK(rr.cursor == before && before >= h,
				   "empty with cursor %llu below head %llu", (unsigned long long)before,
				   (unsigned long long)h);
			pending = 0;
			break;
		default:
			FUZZ_CHECK(0, "status %d", (int)st);
		}
		/* Exact accounting, at every step. */
		FUZZ_CHECK(rr.delivered + rr.lost_overrun + rr.lost_torn == rr.cursor - start,
			   "delivered %llu + lost %llu + %llu != read %llu",
			   (unsigned long long)rr.delivered, (unsigned long long)rr.lost_overrun,
			   (unsigned long long)rr.lost_torn, (unsigned long long)(rr.cursor - start));
		FUZZ_CHECK(rr.lost_overrun + rr.lost_torn == total_lost, "losses told %llu, counted %llu",
			   (unsigned long long)total_lost,
			   (unsigned long long)(rr.lost_overrun + rr.lost_torn));
		FUZZ_CHECK(rr.cursor <= max_head, "read %llu tickets, only %llu were produced",
			   (unsigned long long)(rr.cursor - start),
			   (unsigned long long)(max_head - start));
		if (st == RING_EMPTY) {
			flush_lost(&run);
			if (next_store == nstores)
				break;
			/* Nothing to read until the next store: make it now. */
			calls = stores[next_store].at;
			continue;
		}
		/* After the last store, a bounded number of reads must end it:
		 * each slot is delivered, lost or torn within pending_max. */
		FUZZ_CHECK(since_store <= (uint64_t)(CAP + 2) * (pending_max + 1),
			   "%llu reads since the last store and no end",
			   (unsigned long long)since_store);
	}
	return 0;
}
