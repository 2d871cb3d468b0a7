/* Writing ledger entries by hand for the tests of the command's ledger
 * reader: the placement the shim uses (hash, then linear probing), and
 * holders and history steps with the values a test chooses, consistent
 * or deliberately not. Single-threaded, plain stores. */
#ifndef SOCKSHIM_LEDGER_FAKE_H
#define SOCKSHIM_LEDGER_FAKE_H

#include <stdint.h>
#include <string.h>

#include "sockshim/segment.h"

/* The entry for INODE in M's ledger, claimed and cleared: the first free
 * slot from its hash on, as the shim's ledger_get takes it. */
static inline struct sockshim_sock *fake_entry(const struct seg_map *m, uint64_t inode)
{
	struct sockshim_sock *l = seg_ledger(m);
	uint32_t h = sockshim_ledger_hash(inode), i;

	for (i = 0; i < SOCKSHIM_LEDGER_PROBE; i++) {
		struct sockshim_sock *s = &l[(h + i) & (m->ledger_capacity - 1)];

		if (s->inode == inode || !s->inode) {
			memset(s, 0, sizeof(*s));
			s->inode = inode;
			return s;
		}
	}
	return NULL;
}

static inline void fake_born(struct sockshim_sock *s, unsigned born, int pid, int fd,
			     uint64_t ts)
{
	s->born = (uint16_t)born;
	s->born_pid = pid;
	s->born_fd = fd;
	s->born_ns = ts;
}

static inline struct sockshim_holder *fake_holder(struct sockshim_sock *s, int pid, int fd,
						  unsigned how, uint64_t since, int from_pid,
						  int from_fd)
{
	unsigned i;

	for (i = 0; i < SOCKSHIM_HOLDERS; i++) {
		struct sockshim_holder *h = &s->holders[i];

		if (h->state != SOCKSHIM_HOLDER_FREE)
			continue;
		h->state = SOCKSHIM_HOLDER_LIVE;
		h->pid = pid;
		h->fd = fd;
		h->how = (uint16_t)how;
		h->since_ns = since;
		h->from_pid = from_pid;
		h->from_fd = from_fd;
		s->refs++;
		return h;
	}
	return NULL;
}

/* Append a history step, as ledger_step does: slot index % SOCKSHIM_STEPS,
 * seq = index + 1. */
static inline struct sockshim_step *fake_step(struct sockshim_sock *s, unsigned op, int pid,
					      int fd, int arg, const char *comm, uint64_t ts)
{
	uint32_t n = s->steps_next++;
	struct sockshim_step *st = &s->steps[n % SOCKSHIM_STEPS];

	memset(st, 0, sizeof(*st));
	st->seq = n + 1;
	st->op = (uint16_t)op;
	st->ts_ns = ts;
	st->pid = pid;
	st->fd = fd;
	st->arg = arg;
	/* Like the shim: the first 12 bytes, terminated only if shorter. */
	if (comm) {
		size_t len = strlen(comm);

		memcpy(st->comm, comm, len < sizeof(st->comm) ? len : sizeof(st->comm));
	}
	return st;
}

#endif
