/* Wrappers of _exit and _Exit: a process that ends without exit() (dash,
 * os._exit, a child after a failed exec) still drops its references to
 * the ledger. Must never return, whatever happens to us. */
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "export.h"
#include "real.h"
#include "track.h"

static __attribute__((noreturn)) void shim_exit_now(void (*fn)(int), int status)
{
	track_process_exit();
	if (fn)
		fn(status);
	for (;;)
		syscall(SYS_exit_group, status);
}

SHIM_EXPORT void _exit(int status)
{
	real_ensure();
	shim_exit_now(real.exit_now, status);
}

SHIM_EXPORT void _Exit(int status)
{
	real_ensure();
	shim_exit_now(real.exit_now2, status);
}
