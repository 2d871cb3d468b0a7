/* vfork(): marks the calling thread, then jumps to libc's vfork with the
 * caller's stack untouched (a C wrapper's frame would be clobbered by the
 * child before the parent returns through it). The child runs on the same
 * thread-local storage, so it sees the mark; other threads do not. The
 * parent clears the mark the first time it asks, after it resumed. */
#include <unistd.h>

#include "emit.h"
#include "real.h"
#include "vfork.h"

static __thread int vfork_pending __attribute__((tls_model("initial-exec")));

int shim_in_vfork_child(void)
{
	if (__builtin_expect(!vfork_pending, 1))
		return 0;
	if (getpid() != shim_getpid())
		return 1;
	vfork_pending = 0; /* we are the parent, resumed */
	return 0;
}

#if defined(__x86_64__)
/* Called from the trampoline below: returns libc's vfork to jump to. */
void *shim_vfork_prepare(void);
void *shim_vfork_prepare(void)
{
	real_ensure();
	vfork_pending = 1;
	return (void *)real.vfork;
}

/* At entry the stack is 8 mod 16 (return address): one push re-aligns it
 * for the call; the pop restores the caller's exact stack for the jump. */
__asm__(".text\n"
	".globl vfork\n"
	".type vfork, @function\n"
	"vfork:\n"
	"	subq $8, %rsp\n"
	"	call shim_vfork_prepare\n"
	"	addq $8, %rsp\n"
	"	jmp *%rax\n"
	".size vfork, .-vfork\n");
#endif
