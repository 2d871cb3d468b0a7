/* The segment guard: a watched mapping whose file shrank (or whose pages
 * could not be allocated on a full /dev/shm) is replaced, on its first
 * fault, by zeroed private memory. The faulting access then completes and
 * the process goes on; the owner learns from seg_guard_lost that the
 * mapping no longer reaches the session. Runs inside SIGBUS handlers:
 * atomics, mmap and write only, never a lock or an allocation. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sockshim/seg_guard.h"
#include "sockshim/layout.h"
#include "sockshim/rawio.h"

/* "sockshim: session \"NAME\": ..." with room for the longest name. */
#define MSG_MAX (SOCKSHIM_SESSION_MAX + 160)

struct watched {
	char *base; /* NULL: free, CLAIMING: being filled; published last */
	size_t size;
	int lost;
	int said;
	char name[SOCKSHIM_SESSION_MAX + 1];
	char msg[MSG_MAX];
	size_t msg_len;
};

static struct watched watched[SEG_GUARD_MAX];
/* A slot being filled in: an address no mapping starts at. */
#define CLAIMING ((char *)watched)
unsigned seg_guard_losses;
/* The name of the first mapping lost, kept after it is unwatched. */
static char first_lost[SOCKSHIM_SESSION_MAX + 1];

int seg_guard_watch(void *base, size_t size, const char *name)
{
	unsigned i;

	for (i = 0; i < SEG_GUARD_MAX; i++) {
		struct watched *w = &watched[i];
		char *none = NULL;
		int n;

		if (!__atomic_compare_exchange_n(&w->base, &none, CLAIMING, 0, __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			continue;
		w->size = size;
		w->lost = 0;
		w->said = 0;
		strncpy(w->name, name ? name : "?", sizeof(w->name) - 1);
		w->name[sizeof(w->name) - 1] = 0;
		n = snprintf(w->msg, sizeof(w->msg),
			     "sockshim: session \"%s\": its segment file shrank or lost its pages "
			     "(truncated? /dev/shm full?); this process stops recording into it\n",
			     name ? name : "?");
		w->msg_len = n < 0 ? 0 : (size_t)n < sizeof(w->msg) ? (size_t)n : sizeof(w->msg) - 1;
		__atomic_store_n(&w->base, (char *)base, __ATOMIC_RELEASE);
		return 0;
	}
	return -ENOSPC;
}

static struct watched *find(const char *addr, int exact)
{
	unsigned i;

	for (i = 0; i < SEG_GUARD_MAX; i++) {
		struct watched *w = &watched[i];
		const char *base = __atomic_load_n(&w->base, __ATOMIC_ACQUIRE);

		if (!base || base == CLAIMING)
			continue;
		if (exact ? addr == base : (addr >= base && (size_t)(addr - base) < w->size))
			return w;
	}
	return NULL;
}

void seg_guard_unwatch(const void *base)
{
	struct watched *w = find(base, 1);

	if (w)
		__atomic_store_n(&w->base, NULL, __ATOMIC_RELEASE);
}

int seg_guard_fault(const void *addr, int loud)
{
	struct watched *w = find(addr, 0);
	int saved = errno;
	void *p;

	if (!w)
		return 0;
	/* Zero pages where the file's were: every later access succeeds and
	 * reads what an unused segment holds. Two threads faulting at once
	 * both map; the second mapping replaces the first, equally empty. */
	p = mmap(w->base, w->size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		errno = saved;
		return 0; /* nothing we can do: the fault takes its course */
	}
	if (!__atomic_exchange_n(&w->lost, 1, __ATOMIC_ACQ_REL)) {
		if (!__atomic_load_n(&seg_guard_losses, __ATOMIC_ACQUIRE))
			memcpy(first_lost, w->name, sizeof(first_lost));
		__atomic_fetch_add(&seg_guard_losses, 1, __ATOMIC_RELEASE);
	}
	if (loud && !__atomic_exchange_n(&w->said, 1, __ATOMIC_ACQ_REL) && w->msg_len) {
		if (rawio_write(STDERR_FILENO, w->msg, w->msg_len) < 0) {
			/* Nowhere to say it. */
		}
	}
	errno = saved;
	return 1;
}

int seg_guard_lost(const void *base)
{
	unsigned i;

	if (base) {
		struct watched *w = find(base, 1);

		return w && __atomic_load_n(&w->lost, __ATOMIC_ACQUIRE);
	}
	for (i = 0; i < SEG_GUARD_MAX; i++)
		if (__atomic_load_n(&watched[i].base, __ATOMIC_ACQUIRE) &&
		    __atomic_load_n(&watched[i].lost, __ATOMIC_ACQUIRE))
			return 1;
	return 0;
}

const char *seg_guard_lost_name(void)
{
	return seg_guard_any_lost() ? first_lost : NULL;
}

static void on_sigbus_default(int sig, siginfo_t *si, void *uc)
{
	struct sigaction dfl;

	(void)uc;
	if (si->si_code > 0 && seg_guard_fault(si->si_addr, 0))
		return;
	/* Not ours: the default action, as if we had never been here. A
	 * fault repeats when we return; a sent signal is sent again. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	if (si->si_code <= 0)
		raise(sig);
}

int seg_guard_install_default(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus_default;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}
