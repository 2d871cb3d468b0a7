/* The kernel's sockets by inode: one uthash over every list added, its
 * entries in one block per list, so that adding a list allocates once and
 * freeing costs one free per list. Never copies a socket. */
#include <errno.h>
#include <stdlib.h>
#include "uthash_int.h"

#include "kindex.h"

struct kin {
	uint64_t inode;
	const struct sockdiag_sock *k;
	UT_hash_handle hh;
};

struct kin_pool {
	struct kin_pool *next;
	struct kin v[]; /* as many as the list had sockets */
};

void kindex_init(struct kindex *x)
{
	x->by_inode = NULL;
	x->pools = NULL;
}

void kindex_free(struct kindex *x)
{
	struct kin_pool *p, *next;

	HASH_CLEAR(hh, x->by_inode);
	for (p = x->pools; p; p = next) {
		next = p->next;
		free(p);
	}
	x->pools = NULL;
}

const struct sockdiag_sock *kindex_find(const struct kindex *x, uint64_t inode)
{
	struct kin *e;

	HASH_FIND(hh, x->by_inode, &inode, sizeof(inode), e);
	return e ? e->k : NULL;
}

int kindex_add(struct kindex *x, const struct sockdiag_list *l)
{
	struct kin_pool *p;
	size_t i, n = 0;

	p = calloc(1, sizeof(*p) + (l->n ? l->n : 1) * sizeof(p->v[0]));
	if (!p)
		return -ENOMEM;
	p->next = x->pools;
	x->pools = p;
	for (i = 0; i < l->n; i++) {
		const struct sockdiag_sock *k = &l->v[i];
		struct kin *e;

		/* Inode 0: in an accept queue, or orphaned; nothing to join. */
		if (!k->inode || kindex_find(x, k->inode))
			continue;
		e = &p->v[n++];
		e->inode = k->inode;
		e->k = k;
		HASH_ADD(hh, x->by_inode, inode, sizeof(uint64_t), e);
	}
	return 0;
}
