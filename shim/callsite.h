/* Naming the code that created a socket: the module (executable or shared
 * library) holding a return address, and the offset in it, so that the
 * command can symbolize it later, after the process is gone. */
#ifndef SOCKSHIM_CALLSITE_H
#define SOCKSHIM_CALLSITE_H

#include <stddef.h>
#include <stdint.h>

/* Find the module that holds ADDR: its path into PATH (truncated to LEN,
 * keeping the end, which names the file) and ADDR's offset from its load
 * base into *OFFSET. 0, or -ENOENT. Takes the loader's lock
 * (dl_iterate_phdr) on a cache miss: not for signal handlers. */
int callsite_resolve(uint64_t addr, char *path, size_t len, uint64_t *offset);

#endif
