/* Cuts a real session segment into seed inputs for the fuzz harnesses, in
 * each harness's input format (see the comment at the top of each): the
 * whole segment as chunks, records of the ring, ledger entries and
 * listener entries. Built with the harnesses, from the same layout.h and
 * seg_validate, so the seeds always match the layout being fuzzed.
 *
 *     seedcut SEGMENT_FILE OUTDIR TAG
 *
 * writes OUTDIR/{segment,ring,ledger,listeners}/TAG-*; exits 1 when the
 * file is not a valid segment. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sockshim/segment.h"

/* Must agree with the harnesses' input formats. */
#define RING_HARNESS_CAP (1u << SOCKSHIM_RING_MIN_SHIFT)
#define LEDGER_HARNESS_CAP (1u << SOCKSHIM_LEDGER_MIN_SHIFT)
#define CHUNK_MAX 0xffffu
/* Zero runs shorter than this stay inside a chunk: a chunk's own header
 * costs 6 bytes, and fewer chunks mutate better. */
#define CHUNK_GAP 64

struct out {
	uint8_t *p;
	size_t n, cap;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->n + n > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;

		while (cap < o->n + n)
			cap *= 2;
		o->p = realloc(o->p, cap);
		if (!o->p) {
			perror("seedcut");
			exit(2);
		}
		o->cap = cap;
	}
	memcpy(o->p + o->n, p, n);
	o->n += n;
}

static void put_u64(struct out *o, uint64_t v)
{
	uint8_t b[8];
	int i;

	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(o, b, 8);
}

static void put_u32(struct out *o, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	put(o, b, 4);
}

static void put_u16(struct out *o, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	put(o, b, 2);
}

static void put_u8(struct out *o, uint8_t v)
{
	put(o, &v, 1);
}

static const char *outdir, *tag;
static unsigned written;

/* Write O as OUTDIR/KIND/TAG-NAME and empty it. */
static void emit(struct out *o, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void emit(struct out *o, const char *kind, const char *fmt, ...)
{
	char name[128], path[4096];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", outdir, kind);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(2);
	}
	snprintf(path, sizeof(path), "%s/%s/%s-%s", outdir, kind, tag, name);
	f = fopen(path, "wb");
	if (!f || fwrite(o->p, 1, o->n, f) != o->n || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
	o->n = 0;
	written++;
}

static int zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return 0;
	return 1;
}

/* fuzz_segment: the file's size, the reason buffer's length, then the
 * non-zero runs of its first LEN bytes as chunks. */
static void segment_seed(struct out *o, const uint8_t *seg, size_t size, size_t len,
			 uint64_t claimed, const char *name)
{
	size_t i = 0, start, end;

	put_u64(o, claimed);
	put_u8(o, 200);
	while (i < len) {
		while (i < len && !seg[i])
			i++;
		if (i == len)
			break;
		start = i;
		end = i;
		/* Extend over short zero runs, up to a chunk's limit. */
		while (i < len && i - start < CHUNK_MAX) {
			if (seg[i]) {
				end = ++i;
			} else if (i + CHUNK_GAP <= len && zero(seg + i, CHUNK_GAP)) {
				break;
			} else {
				i++;
			}
		}
		if (end - start > CHUNK_MAX)
			end = start + CHUNK_MAX;
		put_u32(o, (uint32_t)start);
		put_u16(o, (uint16_t)(end - start));
		put(o, seg + start, end - start);
		i = end;
	}
	(void)size;
	emit(o, "segment", "%s", name);
}

/* fuzz_ring: the last N records before HEAD, read from the reader's
 * position (FLAGS bit 0 clear) or from the oldest (set). Stores may follow
 * before the caller emits it. */
static void ring_seed(struct out *o, const struct seg_map *m, uint64_t head, uint64_t n,
		      uint8_t flags)
{
	const struct sockshim_header *h = seg_header(m);
	uint64_t t;

	if (n > head)
		n = head;
	if (n > RING_HARNESS_CAP)
		n = RING_HARNESS_CAP;
	if (n > m->ring_capacity)
		n = m->ring_capacity;
	put_u64(o, head);
	put_u8(o, flags);
	put_u64(o, (uint64_t)h->created_realtime_ns);
	put_u64(o, (uint64_t)h->created_monotonic_ns);
	put_u16(o, (uint16_t)n);
	for (t = head - n; t < head; t++)
		put(o, seg_ring(m) + (t & (m->ring_capacity - 1)), sizeof(struct sockshim_record));
}

/* A store of fuzz_ring's script: before read AT, VALUE into word WHERE
 * of the ring (0xffff: the head). */
static void ring_store(struct out *o, uint16_t at, uint16_t where, uint64_t value)
{
	put_u16(o, at);
	put_u16(o, where);
	put_u64(o, value);
}

static void ledger_prefix(struct out *o, const struct sockshim_header *h, uint8_t flags)
{
	put_u64(o, (uint64_t)h->created_realtime_ns);
	put_u64(o, (uint64_t)h->created_monotonic_ns);
	put_u64(o, (uint64_t)h->created_boottime_ns);
	put_u64(o, h->ledger_full);
	put_u64(o, h->holder_overflow);
	put_u64(o, h->ledger_reclaimed);
	put_u8(o, flags);
}

static void listener_prefix(struct out *o, const struct sockshim_header *h)
{
	/* "Now": a second after the segment was made. */
	put_u64(o, (uint64_t)h->created_monotonic_ns + 1000000000u);
	put_u64(o, UINT64_MAX); /* every listener has its kernel queue */
}

int main(int argc, char **argv)
{
	struct out o = {0}, all = {0};
	struct seg_map m;
	struct stat st;
	uint8_t *seg;
	uint64_t head;
	char why[200];
	size_t i, nused = 0;
	FILE *f;

	if (argc != 4) {
		fprintf(stderr, "usage: seedcut SEGMENT_FILE OUTDIR TAG\n");
		return 2;
	}
	outdir = argv[2];
	tag = argv[3];
	f = fopen(argv[1], "rb");
	if (!f || fstat(fileno(f), &st) < 0) {
		perror(argv[1]);
		return 2;
	}
	seg = malloc((size_t)st.st_size + 1);
	if (!seg || fread(seg, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		perror(argv[1]);
		return 2;
	}
	fclose(f);
	memset(&m, 0, sizeof(m));
	m.base = seg;
	m.size = (size_t)st.st_size;
	if (seg_validate(&m, why, sizeof(why))) {
		fprintf(stderr, "seedcut: %s: %s\n", argv[1], why);
		return 1;
	}
	head = seg_header(&m)->ring_head;

	/* The whole segment; its header alone; the file cut short. */
	segment_seed(&o, seg, m.size, m.size, m.size, "whole");
	segment_seed(&o, seg, m.size, sizeof(struct sockshim_header), m.size, "header");
	segment_seed(&o, seg, m.size, m.size, m.size - 1, "short");
	segment_seed(&o, seg, m.size, m.ledger_offset, m.ledger_offset, "ringonly");

	/* Records: a few from the reader's position, more with every writer
	 * dead, from the oldest; a script where writers go on: the head moves
	 * by one, a stamp goes to "being written", then the head jumps a lap. */
	ring_seed(&o, &m, head, 1, 0);
	emit(&o, "ring", "last1");
	ring_seed(&o, &m, head, 4, 0);
	emit(&o, "ring", "last4");
	ring_seed(&o, &m, head, 16, 0);
	emit(&o, "ring", "last16");
	ring_seed(&o, &m, head, 64, 2);
	emit(&o, "ring", "last64-dead");
	ring_seed(&o, &m, head, 16, 1);
	emit(&o, "ring", "oldest16");
	ring_seed(&o, &m, head, 8, 0);
	ring_store(&o, 2, 0xffff, head + 1);
	ring_store(&o, 3, (uint16_t)((head & (RING_HARNESS_CAP - 1)) * 16),
		   sockshim_stamp_writing(head));
	ring_store(&o, 9, 0xffff, head + RING_HARNESS_CAP + 3);
	emit(&o, "ring", "stores");

	/* Ledger entries one by one, then all at their slots. */
	ledger_prefix(&all, seg_header(&m), 0);
	for (i = 0; i < m.ledger_capacity; i++) {
		const struct sockshim_sock *e = seg_ledger(&m) + i;
		const struct sockshim_ledger_key *k = seg_ledger_keys(&m) + i;

		if (!k->inode)
			continue;
		if (nused < 8) {
			ledger_prefix(&o, seg_header(&m), 0);
			put_u16(&o, (uint16_t)(i % LEDGER_HARNESS_CAP));
			put(&o, k, sizeof(*k));
			put(&o, e, sizeof(*e));
			emit(&o, "ledger", "entry%zu", i);
		}
		put_u16(&all, (uint16_t)(i % LEDGER_HARNESS_CAP));
		put(&all, k, sizeof(*k));
		put(&all, e, sizeof(*e));
		nused++;
	}
	if (nused)
		emit(&all, "ledger", "all");

	/* Listener entries one by one, then all. */
	nused = 0;
	listener_prefix(&all, seg_header(&m));
	for (i = 0; i < SOCKSHIM_LISTENERS; i++) {
		const struct sockshim_listener *l = seg_listeners(&m) + i;

		if (!l->inode)
			continue;
		listener_prefix(&o, seg_header(&m));
		put_u8(&o, (uint8_t)i);
		put_u32(&o, 2);
		put_u32(&o, (uint32_t)(l->backlog > 0 ? l->backlog : 128));
		put(&o, l, sizeof(*l));
		emit(&o, "listeners", "entry%zu", i);
		put_u8(&all, (uint8_t)i);
		put_u32(&all, 0);
		put_u32(&all, 128);
		put(&all, l, sizeof(*l));
		nused++;
	}
	if (nused)
		emit(&all, "listeners", "all");
	printf("seedcut: %s: %u seeds (ring head %llu)\n", tag, written,
	       (unsigned long long)head);
	free(o.p);
	free(all.p);
	free(seg);
	return 0;
}
