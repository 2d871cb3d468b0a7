/* The program's memory, read and written without trusting it: where the
 * kernel would answer a bad pointer with EFAULT, a load or store of ours
 * would crash the program. process_vm_readv/writev on ourselves fail
 * where the kernel would. errno is left as it was. */
#ifndef SOCKSHIM_USERMEM_H
#define SOCKSHIM_USERMEM_H

#include <stddef.h>
#include <sys/uio.h>

/* Copy N pieces: REMOTE[i] (the program's) into LOCAL[i] (ours), the same
 * lengths. 0, or -1 when one is not readable as a whole. Where a sandbox
 * refuses the calls (ENOSYS, EPERM), copied as libc itself would read. */
int usermem_readv(const struct iovec *local, const struct iovec *remote, int n);

/* Copy N pieces: LOCAL[i] into REMOTE[i]. 0, or -1 when one is not
 * writable as a whole (some may have been written). Refused by a sandbox:
 * copied as plain stores. */
int usermem_writev(const struct iovec *local, const struct iovec *remote, int n);

/* One piece each way. */
int usermem_read(void *dst, const void *src, size_t len);
int usermem_write(void *dst, const void *src, size_t len);

/* The main thread's stack, learnt once at start-up (its top, and the
 * stack limit then): see usermem_on_main_stack. */
void usermem_start(void);

/* Is [P, P + N) on the main thread's stack, between the caller's own
 * frame and the stack's top, with the caller running on that stack? Then
 * it is mapped, and stays so while the caller runs: a plain load cannot
 * fault (what a caller's caller keeps in its frames, an accept's address
 * buffer, is read there without a system call). 0 on any other stack (a
 * thread's, an alternate signal stack, a coroutine's), and before
 * usermem_start. */
int usermem_on_main_stack(const void *p, size_t n);

#endif
