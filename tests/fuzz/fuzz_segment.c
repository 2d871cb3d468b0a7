/* libFuzzer harness of the segment header check, seg_validate() of
 * shim/segment.c, on a mapping of the size the input claims (as seg_open
 * maps a file of st_size bytes) holding the input's bytes, then of the
 * three readers on whatever it accepts: the ring (tools/ring_reader.c),
 * the ledger (tools/ledger_read.c) and the listener table
 * (tools/stats_model.c). Asserts: an accepted geometry is one the layout
 * allows and lies within the mapping, regions in order without overlap;
 * a refusal explains itself in a terminated, printable sentence cut to
 * its buffer; the header's strings print escaped; the readers then read
 * only inside the mapping, deliver records that pass their check, count
 * exactly what they lose, and end.
 *
 * Input: u64 the file's size (modulo 1 + 4 times the smallest segment's),
 * u8 the length of the reason buffer, then chunks: u32 offset, u16
 * length, the bytes to put there (cut to the file). A real segment's
 * non-zero runs make a seed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ledger_read.h"
#include "ring_reader.h"
#include "stats_model.h"

/* Files up to this size: room for a few geometries above the smallest;
 * larger ones fail the size check, which is enough. */
#define SIZE_MAX_FUZZ                                                               \
	((size_t)4 * sockshim_segment_size(1u << SOCKSHIM_RING_MIN_SHIFT,             \
					   1u << SOCKSHIM_LEDGER_MIN_SHIFT))
#define WHY_MAX 256

static int pow2_within(uint32_t v, unsigned min_shift, unsigned max_shift)
{
	return v >= (1u << min_shift) && v <= (1u << max_shift) && !(v & (v - 1));
}

static void check_geometry(const struct seg_map *m)
{
	uint64_t ring_end = m->ring_offset + (uint64_t)m->ring_capacity *
						     sizeof(struct sockshim_record);
	uint64_t ledger_end = m->ledger_offset + (uint64_t)m->ledger_capacity *
							 sizeof(struct sockshim_sock);
	uint64_t listeners_end = m->listeners_offset + (uint64_t)SOCKSHIM_LISTENERS *
							       sizeof(struct sockshim_listener);
	uint64_t keys_end = m->keys_offset + (uint64_t)m->ledger_capacity *
						     sizeof(struct sockshim_ledger_key);

	FUZZ_CHECK(pow2_within(m->ring_capacity, SOCKSHIM_RING_MIN_SHIFT, SOCKSHIM_RING_MAX_SHIFT),
		   "ring capacity %u accepted", m->ring_capacity);
	FUZZ_CHECK(pow2_within(m->ledger_capacity, SOCKSHIM_LEDGER_MIN_SHIFT,
			       SOCKSHIM_LEDGER_MAX_SHIFT),
		   "ledger capacity %u accepted", m->ledger_capacity);
	FUZZ_CHECK(m->ring_offset >= sizeof(struct sockshim_header) && m->ring_offset % 64 == 0 &&
			   m->ledger_offset % 64 == 0 && m->listeners_offset % 64 == 0,
		   "misplaced regions %llu %llu %llu", (unsigned long long)m->ring_offset,
		   (unsigned long long)m->ledger_offset, (unsigned long long)m->listeners_offset);
	FUZZ_CHECK(ring_end <= m->ledger_offset && ledger_end <= m->listeners_offset &&
			   listeners_end <= m->size && m->keys_offset % 64 == 0 &&
			   m->keys_offset >= listeners_end && keys_end <= m->size,
		   "regions overlap or pass the mapping's %zu bytes", m->size);
}

/* What `sockshim sessions` prints of an accepted header: the creator's
 * name, escaped for a terminal and for JSON, and the creation time. */
static void print_header(const struct seg_map *m)
{
	const struct sockshim_header *h = seg_header(m);
	char comm[sizeof(h->creator_comm) + 1], line[FMT_LINE_MAX], when[48];
	struct fmt_buf b;

	memcpy(comm, h->creator_comm, sizeof(h->creator_comm));
	comm[sizeof(h->creator_comm)] = 0;
	fmt_buf_init(&b, line, sizeof(line));
	fmt_append(&b, "%d/", h->creator_pid);
	ob_printable(&b, comm, sizeof(comm));
	fuzz_check_terminal(line, sizeof(line), "session creator");
	fmt_buf_init(&b, line, sizeof(line));
	fmt_append(&b, "{\"creator_comm\":");
	ob_json_str(&b, comm, sizeof(comm));
	fmt_append(&b, ",\"created\":");
	ob_json_time(&b, h->created_realtime_ns);
	fmt_append(&b, "}");
	fuzz_check_json(line, sizeof(line), "session JSON");
	fmt_buf_init(&b, when, sizeof(when));
	ob_clock(&b, h->created_realtime_ns);
	fuzz_check_terminal(when, sizeof(when), "creation time");
}

static void read_ring(const struct seg_map *m)
{
	struct sockshim_record rec;
	struct ring_reader rr;
	struct fmt_clockref clock = {0, 0};
	char line[FMT_LINE_MAX], kind;
	uint64_t lost, start, reads = 0;

	ring_reader_init(&rr, m, 1);
	start = rr.cursor;
	for (;;) {
		enum ring_status st = ring_reader_next(&rr, &rec, &lost, &kind, INT64_MAX);

		/* INT64_MAX: every pending slot is torn at once, so each read
		 * delivers or loses, and a lap of the ring ends it. */
		FUZZ_CHECK(++reads <= (uint64_t)m->ring_capacity + 2, "%llu reads, no end",
			   (unsigned long long)reads);
		if (st == RING_EMPTY)
			break;
		FUZZ_CHECK(st == RING_RECORD || st == RING_LOST, "status %d with a dead writer",
			   (int)st);
		if (st == RING_RECORD) {
			FUZZ_CHECK(sockshim_record_check(&rec, rr.cursor - 1) == rec.check,
				   "record %llu fails its check", (unsigned long long)(rr.cursor - 1));
			fmt_table_row(line, sizeof(line), &rec, &clock);
			fuzz_check_terminal(line, sizeof(line), "events row");
		}
	}
	FUZZ_CHECK(rr.delivered + rr.lost_overrun + rr.lost_torn == rr.cursor - start,
		   "accounting");
}

static void read_ledger(const struct seg_map *m)
{
	struct ledger_snap snap;
	size_t i;

	FUZZ_CHECK(ledger_snapshot(m, &snap) == 0, "ledger snapshot");
	FUZZ_CHECK(snap.n <= m->ledger_capacity && snap.unsettled == 0, "%zu entries, %zu unsettled",
		   snap.n, snap.unsettled);
	for (i = 0; i < snap.n; i++)
		FUZZ_CHECK(ledger_find(&snap, snap.v[i].inode), "inode not indexed");
	ledger_snap_free(&snap);
}

static void read_listeners(const struct seg_map *m)
{
	static struct stats_listener out[SOCKSHIM_LISTENERS];
	size_t n = 0;

	stats_read_table(seg_listeners(m), SOCKSHIM_LISTENERS, out, &n);
	FUZZ_CHECK(n <= SOCKSHIM_LISTENERS, "%zu listeners", n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	size_t file_size, whylen;
	struct seg_map m;
	char *why;
	void *base;
	int rc;

	file_size = (size_t)(fuzz_u64(&in) % (SIZE_MAX_FUZZ + 1));
	whylen = fuzz_u8(&in) % WHY_MAX;
	base = fuzz_map(file_size);
	FUZZ_CHECK(base, "cannot map %zu bytes", file_size);
	while (in.n > 6) {
		uint32_t off = fuzz_u32(&in);
		size_t len = fuzz_u16(&in);

		if (len > in.n)
			len = in.n;
		if (off < file_size)
			memcpy((char *)base + off, in.p,
			       len < file_size - off ? len : file_size - off);
		in.p += len;
		in.n -= len;
	}
	/* A reason buffer of exactly its length (none at all when 0). */
	why = whylen ? malloc(whylen) : NULL;
	FUZZ_CHECK(!whylen || why, "out of memory");
	if (why)
		memset(why, 'x', whylen);

	memset(&m, 0, sizeof(m));
	m.base = base;
	m.size = file_size;
	rc = seg_validate(&m, why, whylen);
	FUZZ_CHECK(rc == 0 || rc == -EPROTO, "seg_validate returned %d", rc);
	if (rc == 0) {
		FUZZ_CHECK(m.base == base && m.size == file_size, "the mapping changed");
		check_geometry(&m);
		print_header(&m);
		read_ring(&m);
		read_ledger(&m);
		read_listeners(&m);
	} else if (why) {
		fuzz_check_terminal(why, whylen, "refusal");
		FUZZ_CHECK(whylen == 1 || why[0], "refusal without a reason");
	}
	free(why);
	fuzz_unmap(base, file_size);
	return 0;
}
