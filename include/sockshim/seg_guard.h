/* Surviving a segment file that shrinks under its mapping: a fault on a
 * watched mapping replaces the whole mapping by zeroed private memory, so
 * the faulting access (and every later one) completes, and the mapping is
 * marked lost. Shared by the shim and the command; who installs the
 * SIGBUS handler that calls seg_guard_fault is up to each of them. */
#ifndef SOCKSHIM_SEG_GUARD_H
#define SOCKSHIM_SEG_GUARD_H

#include <stddef.h>

/* Mappings watched at once: a process maps one session, the command's
 * `sessions` one at a time. */
#define SEG_GUARD_MAX 8

/* Watch [BASE, BASE + SIZE). NAME (a session name, may be NULL) goes into
 * the one-line message seg_guard_fault writes when the mapping is lost.
 * 0, or -ENOSPC when every slot is taken (the mapping is then unguarded). */
int seg_guard_watch(void *base, size_t size, const char *name);

/* Stop watching the mapping at BASE (before unmapping it). */
void seg_guard_unwatch(const void *base);

/* For a SIGBUS handler: if ADDR lies in a watched mapping, replace that
 * mapping by zeroed anonymous memory, mark it lost, say so once on stderr
 * (when LOUD) and return 1; else 0. Async-signal-safe; errno kept. */
int seg_guard_fault(const void *addr, int loud);

/* Was the mapping at BASE lost? Any mapping, when BASE is NULL. */
int seg_guard_lost(const void *base);

/* Mappings lost so far in this process: one load, for hot paths. */
extern unsigned seg_guard_losses;

static inline int seg_guard_any_lost(void)
{
	return __atomic_load_n(&seg_guard_losses, __ATOMIC_ACQUIRE) != 0;
}

/* The name given to the first mapping lost (even once unwatched), or
 * NULL when none was. */
const char *seg_guard_lost_name(void);

/* For a process that owns its signals (the command): a SIGBUS handler
 * that repairs watched mappings silently and leaves every other SIGBUS
 * to the default action. 0 or -errno. */
int seg_guard_install_default(void);

#endif
