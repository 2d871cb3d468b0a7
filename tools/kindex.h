/* The kernel's sockets (sock_diag dumps) by inode, for the commands that
 * join them with the ledger and /proc (closewait, holders). Only an index:
 * the lists stay the caller's and must outlive it. */
#ifndef SOCKSHIM_KINDEX_H
#define SOCKSHIM_KINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "flatidx.h"
#include "sockdiag.h"

struct kindex {
	const struct sockdiag_sock **v; /* the sockets indexed, in the order added */
	size_t n, cap;
	struct flatidx by_inode; /* positions in v */
};

/* An empty index; free it with kindex_free. */
void kindex_init(struct kindex *x);
void kindex_free(struct kindex *x);

/* Index the sockets of L that have an inode and are not indexed yet: the
 * first list added wins. 0, or -ENOMEM (X keeps what it had). */
int kindex_add(struct kindex *x, const struct sockdiag_list *l);

/* The socket with INODE, or NULL when no list added holds it. */
const struct sockdiag_sock *kindex_find(const struct kindex *x, uint64_t inode);

#endif
