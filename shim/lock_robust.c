/* The accept lock in the thread's robust list (see lock_robust.h). The
 * kernel, when a thread exits or execs, looks at its list's pending entry
 * (list_op_pending) and at the futex word futex_offset bytes from it: if
 * the word's low 30 bits are the thread's id, it sets FUTEX_OWNER_DIED and
 * wakes one waiter if FUTEX_WAITERS is set (handle_futex_death in
 * kernel/futex/core.c); a word of another thread is left alone, and one of
 * no thread only costs a wake-up. So a pending entry left naming a lock we
 * no longer hold does no harm. libc only ever stores into the field, never
 * reads it (a robust mutex's lock and unlock set it and clear it): a
 * handler that takes a robust mutex while we hold the lock clears ours,
 * and that holder's death is then found by the waiters' look at /proc. */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lock_robust.h"
#include "real.h"

/* This thread's robust list head, as the kernel knows it (NULL: none),
 * once head_known. A fork child keeps both: libc registers the copy of
 * the same head, at the same address, in the child. */
static __thread struct robust_list_head *head __attribute__((tls_model("initial-exec")));
static __thread int head_known __attribute__((tls_model("initial-exec")));
/* The pending entry we replaced. */
static __thread struct robust_list *saved __attribute__((tls_model("initial-exec")));

static struct robust_list_head *my_head(void)
{
	if (!head_known) {
		struct robust_list_head *h = NULL;
		size_t len = 0;
		int err = errno;

		if (real.syscall(SYS_get_robust_list, 0, &h, &len) < 0 || len != sizeof(*h))
			h = NULL;
		errno = err;
		head = h;
		head_known = 1;
	}
	return head;
}

/* The entry whose futex word, at the list's futex_offset, is WORD. */
static struct robust_list *entry_of(const struct robust_list_head *h, uint32_t *word)
{
	return (struct robust_list *)(void *)((char *)word - h->futex_offset);
}

int lock_robust_hold(uint32_t *word)
{
	struct robust_list_head *h = my_head();
	struct robust_list *e;

	if (!h)
		return -ENOSYS;
	e = entry_of(h, word);
	/* Bit 0 of an entry marks a PI futex: a word of ours is 4-aligned and
	 * libc's offset keeps it so. */
	if ((uintptr_t)e & 1)
		return -ENOSYS;
	saved = __atomic_load_n(&h->list_op_pending, __ATOMIC_RELAXED);
	/* Before the compare-and-swap that takes the lock (a full barrier):
	 * a death between the two finds the entry already there. */
	__atomic_store_n(&h->list_op_pending, e, __ATOMIC_RELAXED);
	return 0;
}

void lock_robust_release(uint32_t *word)
{
	struct robust_list_head *h = my_head();

	if (h && __atomic_load_n(&h->list_op_pending, __ATOMIC_RELAXED) == entry_of(h, word))
		__atomic_store_n(&h->list_op_pending, saved, __ATOMIC_RELAXED);
}
