/* Ring producer: one atomic ticket, a per-slot stamp (odd while writing,
 * even once published), payload copied with relaxed word stores between a
 * release fence and a release store: the seqlock pattern. Each record
 * carries a check of its words and ticket, so a writer lapped mid-record
 * (preempted for a whole turn of the ring) can spoil only records the
 * reader then refuses and counts as lost. Must never wait, allocate or
 * make a system call. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ring.h"

/* Under -fsanitize=thread GCC warns that TSan does not model fences
 * (-Wtsan, fatal with -Werror). Every shared access here is atomic, so TSan
 * has no race to report either way: keep the fences, drop the warning. */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#define RECORD_WORDS (sizeof(struct sockshim_record) / sizeof(uint64_t))

void ring_append(const struct seg_map *m, const struct sockshim_record *rec)
{
	struct sockshim_header *h = seg_header(m);
	const sockshim_word *src = (const sockshim_word *)rec;
	struct sockshim_record *slot;
	sockshim_word *dst;
	uint64_t ticket, word;
	uint32_t check;
	size_t i;

	ticket = __atomic_fetch_add(&h->ring_head, 1, __ATOMIC_RELAXED);
	slot = seg_ring(m) + (ticket & (m->ring_capacity - 1));
	dst = (sockshim_word *)slot;
	check = sockshim_record_check(rec, ticket);
	__atomic_store_n(&slot->stamp, sockshim_stamp_writing(ticket), __ATOMIC_RELAXED);
	/* Readers that see any payload word below also see the odd stamp. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
#pragma GCC unroll 16
	for (i = 1; i < RECORD_WORDS; i++) {
		word = src[i];
		if (i == SOCKSHIM_CHECK_WORD) {
			word = sockshim_check_word_masked(word);
			memcpy((char *)&word + SOCKSHIM_CHECK_BYTE, &check, sizeof(check));
		}
		__atomic_store_n(&dst[i], word, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&slot->stamp, sockshim_stamp_published(ticket), __ATOMIC_RELEASE);
}
