/* Following a process into the images it executes: an exec whose
 * environment lacks the shim gets LD_PRELOAD and SOCKSHIM_* back
 * (SOCKSHIM_FOLLOW=0 turns that off), and an image the loader will not
 * preload into is named. */
#ifndef SOCKSHIM_FOLLOW_H
#define SOCKSHIM_FOLLOW_H

struct shim_config;

/* Follow the images this process executes, with the settings C has in
 * effect (the session always, the others C was given) and LIB, the
 * absolute path of libsockshim.so. Our constructor calls it at start-up
 * (the unit test directly); nothing else may, since exec reads what it
 * sets without a lock. 0, or -1 when LIB cannot go into LD_PRELOAD (then
 * nothing is put back). */
int follow_setup(const struct shim_config *c, const char *lib);

/* How an exec was followed, for whoever logs it. */
enum follow_verdict {
	FOLLOW_CARRIED,    /* the environment already carried the shim */
	FOLLOW_RESTORED,   /* the shim put its variables back */
	FOLLOW_OFF,        /* SOCKSHIM_FOLLOW=0, an inert shim, or our path unknown */
	FOLLOW_SECURE,     /* secure execution ignores LD_PRELOAD: nothing added */
	FOLLOW_STATIC,     /* no loader, no shim in that image; what it execs is followed */
	FOLLOW_UNREADABLE, /* a pointer exec will answer EFAULT for: passed as is */
	FOLLOW_TOO_LARGE,  /* too large to copy on the stack: passed as is, said */
};

/* The program an exec runs: PATH (looked up in $PATH, as execvp does,
 * when SEARCH and it has no slash), or the open file FD when PATH is NULL. */
struct follow_target {
	const char *path;
	int fd;
	int search;
};

/* The exec itself: ENV is the environment to pass. */
typedef int (*follow_call)(void *arg, char *const env[], enum follow_verdict v);

/* Calls CALL(ARG, ENV, V) once, for the exec of T with the environment
 * ENVP, and returns what it returns. ENV is ENVP itself unless the shim
 * must be put back; then it is a copy on this stack, alive until CALL
 * returns. Reads ENVP and T without faulting (exec answers a bad pointer
 * with EFAULT); writes nothing but its own stack, since a vfork child
 * that shares our memory may run it; leaves errno to CALL. */
int follow_exec(const struct follow_target *t, char *const envp[], follow_call call, void *arg);

#endif
