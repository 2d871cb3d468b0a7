/* Which processes of a session run an image without the shim (set-user-ID,
 * static, an exec whose environment lost LD_PRELOAD): their holds stay in
 * the ledger under their pid, and only /proc can tell what they hold. */
#ifndef SOCKSHIM_NOSHIM_H
#define SOCKSHIM_NOSHIM_H

#include <stddef.h>
#include <sys/types.h>

#include "procfd.h"
#include "sockshim/segment.h"

/* Mark in PF (procfd_set_shim: PROCFD_SHIM_WITHOUT) each live process of M's process table
 * (session SESSION) whose image runs without the shim: the table says so
 * (the exec wrapper before the exec, or an earlier reader), or /proc names
 * it otherwise than the table (it exec'ed since without the shim
 * refreshing the name) and its /proc/PID/maps has no libsockshim.so; then
 * the table is told (SOCKSHIM_NOSHIM_PROC). A maps file is read only for
 * those. Only the process the entry was made for (its start time). The
 * number marked. */
unsigned noshim_mark(const char *session, const struct seg_map *m, struct procfd *pf);
/* (The others, the entry's own process with the shim, are marked
 * PROCFD_SHIM_WITH.) */

/* Does the text of a /proc/PID/maps file (LEN bytes) map libsockshim.so?
 * Pure, for the tests. */
int noshim_maps_have_shim(const char *text, size_t len);

#endif
