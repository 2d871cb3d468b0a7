/* What every fuzz harness shares: invariant checks that abort (so libFuzzer
 * keeps the input as a crash), a segment mapped as a reader maps it but
 * with nothing readable past its end, and checks of the text the command
 * prints (terminal lines, JSON, Prometheus). Test code only: never linked
 * into the shim or the command. */
#ifndef SOCKSHIM_FUZZ_UTIL_H
#define SOCKSHIM_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "sockshim/segment.h"

/* An invariant of the code under test: on violation, say which and abort. */
#define FUZZ_CHECK(cond, ...)                                                       \
	do {                                                                        \
		if (!(cond))                                                        \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);          \
	} while (0)

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));

/* Anonymous memory of SIZE bytes, zeroed, ending where the reader's
 * mapping would end: the rest of the last page is poisoned for ASan and
 * the page after is PROT_NONE, so any read past SIZE is reported. NULL
 * when it cannot be mapped. */
void *fuzz_map(size_t size);
void fuzz_unmap(void *base, size_t size);

/* Write a valid header for a segment of the given capacities at BASE
 * (SIZE bytes mapped, at least the segment size), the one seg_create
 * writes, and validate it as the command does, filling *M. Aborts if
 * seg_validate refuses it. */
void fuzz_seg_init(struct seg_map *m, void *base, size_t size, uint32_t ring_capacity,
		   uint32_t ledger_capacity);

/* Reading the input: fixed-width little-endian fields, then the rest. A
 * field past the end reads as zero. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

uint64_t fuzz_u64(struct fuzz_in *in);
uint32_t fuzz_u32(struct fuzz_in *in);
uint16_t fuzz_u16(struct fuzz_in *in);
uint8_t fuzz_u8(struct fuzz_in *in);
/* Up to N bytes into DST (zero-filled past the input); returns how many
 * came from the input. */
size_t fuzz_bytes(struct fuzz_in *in, void *dst, size_t n);

/* S (of CAP bytes) is NUL-terminated within CAP, valid UTF-8, and holds
 * no terminal control character (C0, DEL, C1): what a line for a
 * terminal must be, whatever bytes the segment held. */
void fuzz_check_terminal(const char *s, size_t cap, const char *what);

/* S (of CAP bytes) is NUL-terminated within CAP and one valid JSON object
 * (RFC 8259, valid UTF-8), with nothing after it. */
void fuzz_check_json(const char *s, size_t cap, const char *what);

/* TEXT (LEN bytes) is a Prometheus text exposition: whole lines, each a
 * HELP or TYPE comment or a sample that parses, fit for a terminal; each
 * series once; a histogram's buckets never decrease and end at _count. */
void fuzz_check_prometheus(const char *text, size_t len, const char *what);

#endif
