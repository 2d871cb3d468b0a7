/* The kernel's sockets by inode: an array of pointers into the lists
 * added and a flat index over it (flatidx.c), rebuilt whole when a list
 * is added (a command adds one or two): a look-up per socket of a report
 * reads one slot array, where uthash's chains cost a cache miss a link.
 * Never copies a socket. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kindex.h"

void kindex_init(struct kindex *x)
{
	memset(x, 0, sizeof(*x));
}

void kindex_free(struct kindex *x)
{
	flatidx_free(&x->by_inode);
	free(x->v);
	kindex_init(x);
}

static const struct sockdiag_sock *find_in(const struct flatidx *idx,
					   const struct sockdiag_sock *const *v, uint64_t inode)
{
	struct flatidx_walk w;
	uint32_t at;

	for (at = flatidx_first(idx, flatidx_hash_u64(inode), &w); at != FLATIDX_END;
	     at = flatidx_next(idx, &w))
		if (v[at]->inode == inode)
			return v[at];
	return NULL;
}

const struct sockdiag_sock *kindex_find(const struct kindex *x, uint64_t inode)
{
	return find_in(&x->by_inode, x->v, inode);
}

int kindex_add(struct kindex *x, const struct sockdiag_list *l)
{
	struct flatidx idx;
	size_t i, n = x->n;

	if (n + l->n > x->cap) {
		const struct sockdiag_sock **v = realloc(x->v, (n + l->n) * sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->v = v;
		x->cap = n + l->n;
	}
	if (flatidx_init(&idx, n + l->n))
		return -ENOMEM;
	for (i = 0; i < n; i++)
		flatidx_put(&idx, flatidx_hash_u64(x->v[i]->inode), (uint32_t)i);
	for (i = 0; i < l->n; i++) {
		const struct sockdiag_sock *k = &l->v[i];

		/* Inode 0: in an accept queue, or orphaned; nothing to join. */
		if (!k->inode || find_in(&idx, x->v, k->inode))
			continue;
		x->v[n] = k;
		flatidx_put(&idx, flatidx_hash_u64(k->inode), (uint32_t)n);
		n++;
	}
	flatidx_free(&x->by_inode);
	x->by_inode = idx;
	x->n = n;
	return 0;
}
