/* Ring consumer: seqlock reads in ticket order. Reads a mapping that any
 * process may scribble on, so it trusts only the geometry validated into
 * struct seg_map and checks every stamp it uses. */
#include <stddef.h>
#include <string.h>

#include "ring_reader.h"

/* Under -fsanitize=thread GCC warns that TSan does not model fences
 * (-Wtsan, fatal with -Werror). Every shared access here is atomic, so TSan
 * has no race to report either way: keep the fences, drop the warning. */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#define RECORD_WORDS (sizeof(struct sockshim_record) / sizeof(uint64_t))
/* The last ticket a stamp can name: 2t + 2 must not wrap. No writer gets
 * past it (2^63 events); a head beyond it is a scribble, and its tickets
 * would be delivered under the stamps of tickets 2^63 lower. */
#define TICKET_MAX ((UINT64_MAX - 2) / 2)

uint64_t ring_reader_head(const struct ring_reader *r)
{
	return __atomic_load_n(&seg_header(r->map)->ring_head, __ATOMIC_ACQUIRE);
}

void ring_reader_init(struct ring_reader *r, const struct seg_map *m, int from_oldest)
{
	uint64_t head;

	memset(r, 0, sizeof(*r));
	r->map = m;
	head = ring_reader_head(r);
	if (!from_oldest)
		r->cursor = head;
	else
		r->cursor = head > m->ring_capacity ? head - m->ring_capacity : 0;
	r->overwritten_before = from_oldest ? r->cursor : 0;
}

static int check_ok(const struct sockshim_record *rec, uint64_t ticket)
{
	return sockshim_record_check(rec, ticket) == rec->check;
}

static enum ring_status lose(struct ring_reader *r, uint64_t n, char kind,
			     uint64_t *lost, char *lost_kind)
{
	r->cursor += n;
	r->pending_since_ns = 0;
	if (kind == 'o')
		r->lost_overrun += n;
	else
		r->lost_torn += n;
	if (lost)
		*lost = n;
	if (lost_kind)
		*lost_kind = kind;
	return RING_LOST;
}

enum ring_status ring_reader_next(struct ring_reader *r, struct sockshim_record *out,
				  uint64_t *lost, char *lost_kind, int64_t now_ns)
{
	const uint64_t cap = r->map->ring_capacity;
	const struct sockshim_record *slot;
	const sockshim_word *src;
	sockshim_word *dst = (sockshim_word *)out;
	uint64_t head, ticket, s1, s2;
	size_t i;

	head = ring_reader_head(r);
	if (r->cursor >= head) {
		r->pending_since_ns = 0;
		return RING_EMPTY;
	}
	if (head - r->cursor > cap)
		return lose(r, head - cap - r->cursor, 'o', lost, lost_kind);

	ticket = r->cursor;
	if (ticket > TICKET_MAX)
		return lose(r, head - ticket, 't', lost, lost_kind);
	slot = seg_ring(r->map) + (ticket & (cap - 1));
	src = (const sockshim_word *)slot;
	s1 = __atomic_load_n(&slot->stamp, __ATOMIC_ACQUIRE);
	if (s1 == sockshim_stamp_published(ticket)) {
		for (i = 1; i < RECORD_WORDS; i++)
			dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&slot->stamp, __ATOMIC_RELAXED);
		if (s2 != s1) /* a writer of a later lap took the slot mid-copy */
			return lose(r, 1, 'o', lost, lost_kind);
		if (!check_ok(out, ticket)) /* spoiled by a writer lapped mid-record */
			return lose(r, 1, 't', lost, lost_kind);
		out->stamp = s1;
		r->cursor++;
		r->delivered++;
		r->pending_since_ns = 0;
		return RING_RECORD;
	}
	if (s1 > sockshim_stamp_published(ticket))
		return lose(r, 1, 'o', lost, lost_kind);

	/* Reserved but not published: in progress, or its writer died. */
	if (now_ns == INT64_MAX)
		return lose(r, 1, 't', lost, lost_kind);
	if (!r->pending_since_ns)
		r->pending_since_ns = now_ns ? now_ns : 1;
	else if (now_ns - r->pending_since_ns >= RING_TORN_TIMEOUT_NS)
		return lose(r, 1, 't', lost, lost_kind);
	return RING_PENDING;
}
