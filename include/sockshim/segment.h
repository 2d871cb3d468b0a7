/* Creating, opening and validating a session segment: the code the shim and
 * the sockshim command share. Validated geometry is copied into struct
 * seg_map so nobody re-reads it from memory another process may change. */
#ifndef SOCKSHIM_SEGMENT_H
#define SOCKSHIM_SEGMENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sockshim/layout.h"

struct seg_map {
	void *base;
	size_t size;              /* mapped bytes */
	uint32_t ring_capacity;   /* validated */
	uint64_t ring_offset;     /* validated */
	uint32_t ledger_capacity; /* validated */
	uint64_t ledger_offset;   /* validated */
	uint64_t listeners_offset; /* validated; SOCKSHIM_LISTENERS entries */
	uint64_t procs_offset;     /* validated; SOCKSHIM_PROCS entries */
	uint64_t pool_offset;      /* validated; ledger_capacity pooled holders */
	uint64_t keys_offset;      /* validated; ledger_capacity keys (the ledger's index) */
	int writable;
};

/* 0 when NAME is a valid session name, else -EINVAL. */
int seg_name_check(const char *name);

#define SEG_STR_(x) #x
#define SEG_STR(x) SEG_STR_(x)
/* What a valid session name is, for messages. */
#define SEG_NAME_RULE                                                          \
	"letters, digits, '_', '-', '.'; at most " SEG_STR(SOCKSHIM_SESSION_MAX)  \
	"; not starting with '.'"

/* Room for a session name and its NUL. */
#define SEG_NAME_BUF (SOCKSHIM_SESSION_MAX + 1)

/* The session RAW stands for, into OUT: RAW itself when valid (returns 0),
 * else (returns 1) a valid name made of RAW's valid characters (each run of
 * others, and a leading '.', becomes one '_'; at most 38 kept, at least
 * "_"), then "-x" and 8 hex digits of a hash of all of RAW's bytes.
 * So the shim and the command map a name the same way, a mapped name never
 * is "default" and only a name typed in that very form can meet it, and
 * two invalid names meet only if they agree on the kept characters and the
 * 32-bit hash. RAW NULL counts as "". */
int seg_name_map(const char *raw, char out[SEG_NAME_BUF]);

/* The file path of session NAME for UID. -ENAMETOOLONG if it does not fit. */
int seg_path(char *buf, size_t len, uid_t uid, const char *name);

/* Create session NAME with a ring of RING_CAPACITY records and a ledger of
 * LEDGER_CAPACITY sockets (powers of two within the layout's bounds). The
 * segment appears under its name fully initialised (O_EXCL under a
 * temporary name, then link). -EEXIST if it exists. On success *OUT is a
 * writable mapping. */
int seg_create(const char *name, uint32_t ring_capacity, uint32_t ledger_capacity,
	       struct seg_map *out);

/* Open an existing session, read-only unless WRITABLE. Refuses a segment
 * that is not a regular file, is owned by another user, has a mode other
 * than 0600, or whose header does not validate; WHY (if not NULL) gets a
 * sentence naming the reason. Returns 0, -ENOENT, -EPERM (owner/mode),
 * -EPROTO (bad header or layout version) or another -errno. */
int seg_open(const char *name, int writable, struct seg_map *out, char *why,
	     size_t whylen);

/* Write the header of a session NAME with those capacities into H, as a
 * new segment gets it (the creator's pid, name and clocks; the magic last,
 * so a reader of a torn copy never trusts it). */
void seg_header_init(struct sockshim_header *h, const char *name, uint32_t ring_capacity,
		     uint32_t ledger_capacity);

/* Check a mapped segment's header against its mapped size. 0 or -EPROTO
 * with a reason in WHY. Fills the validated geometry in *M. */
int seg_validate(struct seg_map *m, char *why, size_t whylen);

void seg_unmap(struct seg_map *m);

/* Remove session NAME's segment. 0 or -errno. */
int seg_remove(const char *name);

static inline struct sockshim_header *seg_header(const struct seg_map *m)
{
	return (struct sockshim_header *)m->base;
}

static inline struct sockshim_record *seg_ring(const struct seg_map *m)
{
	return (struct sockshim_record *)((char *)m->base + m->ring_offset);
}

static inline struct sockshim_sock *seg_ledger(const struct seg_map *m)
{
	return (struct sockshim_sock *)((char *)m->base + m->ledger_offset);
}

/* The ledger's index: entry i's inode word and release time at [i]. */
static inline struct sockshim_ledger_key *seg_ledger_keys(const struct seg_map *m)
{
	return (struct sockshim_ledger_key *)((char *)m->base + m->keys_offset);
}

static inline struct sockshim_listener *seg_listeners(const struct seg_map *m)
{
	return (struct sockshim_listener *)((char *)m->base + m->listeners_offset);
}

static inline struct sockshim_proc *seg_procs(const struct seg_map *m)
{
	return (struct sockshim_proc *)((char *)m->base + m->procs_offset);
}

static inline struct sockshim_pooled_holder *seg_pool(const struct seg_map *m)
{
	return (struct sockshim_pooled_holder *)((char *)m->base + m->pool_offset);
}

#endif
