/* vfork(): marks the calling thread, then jumps to libc's vfork with the
 * caller's stack untouched (a C wrapper's frame would be clobbered by the
 * child before the parent returns through it). The child runs on the same
 * thread-local storage, so it sees the mark; other threads do not. The
 * child logs its fork the first time it asks (usually at exec); the parent
 * clears the mark the first time it asks, after it resumed. */
#include <unistd.h>

#include "emit.h"
#include "fork.h"
#include "real.h"
#include "vfork.h"

enum { VFORK_NONE, VFORK_CALLED, VFORK_CHILD_LOGGED };

__thread int shim_vfork_pending __attribute__((tls_model("initial-exec")));

/* In the child: the fork event pthread_atfork gives other children. The
 * caches still hold the parent's pid and tid, which is what we want. */
static void log_vfork_child(pid_t child)
{
	struct sockshim_record r;

	record_init(&r, SOCKSHIM_EV_FORK, -1, child, 0);
	r.pid = shim_getpid();
	r.tid = shim_gettid();
	r.detail.fork.child_pid = child;
	emit_record(&r);
	fork_child_holds(r.pid, child, 0);
}

int shim_vfork_child_check(void)
{
	pid_t me = getpid();

	if (me == shim_getpid()) {
		shim_vfork_pending = VFORK_NONE; /* we are the parent, resumed */
		return 0;
	}
	if (shim_vfork_pending == VFORK_CALLED) {
		shim_vfork_pending = VFORK_CHILD_LOGGED;
		log_vfork_child(me);
	}
	return 1;
}

#if defined(__x86_64__)
/* Called from the trampoline below: returns libc's vfork to jump to. */
void *shim_vfork_prepare(void);
void *shim_vfork_prepare(void)
{
	real_ensure();
	shim_vfork_pending = VFORK_CALLED;
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
