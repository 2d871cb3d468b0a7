/* Large arrays (a copy of 10,000 ledger entries, the kernel's socket
 * list, every socket descriptor of the host) on transparent huge pages
 * where the system offers them on request (THP "madvise" mode, Debian's
 * default): a 2 MiB page costs one page fault instead of 512, which was a
 * fifth of closewait's time over 10,000 sockets. Only a hint: when it is
 * refused the memory is ordinary. Free with free(). */
#ifndef SOCKSHIM_BIGMEM_H
#define SOCKSHIM_BIGMEM_H

#include <stddef.h>

void *big_calloc(size_t n, size_t size);
void *big_realloc(void *p, size_t size);

#endif
