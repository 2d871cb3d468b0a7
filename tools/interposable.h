/* Whether the preloaded shim can see a program's sockets. It cannot when
 * the program is statically linked (no dynamic loader reads LD_PRELOAD),
 * runs set-id (the loader ignores LD_PRELOAD in secure-execution mode), or
 * is a Go program (its runtime makes system calls without libc). A script
 * is judged by its interpreter. Only reads files; prints nothing. */
#ifndef SOCKSHIM_INTERPOSABLE_H
#define SOCKSHIM_INTERPOSABLE_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#define INTERP_STATIC 0x1 /* no PT_INTERP: nothing loads the shim */
#define INTERP_SETID 0x2  /* set-uid/gid to other ids: LD_PRELOAD ignored */
#define INTERP_GO 0x4     /* a .note.go.buildid or .go.buildinfo section */

/* execvp's search path when $PATH is unset (glibc's _CS_PATH). */
#define INTERP_DEFAULT_PATH "/bin:/usr/bin"

/* Examine the ELF file PATH for a process with real ids RUID/RGID (a
 * set-id bit matters only when it changes them). Sets *PROBLEMS to
 * INTERP_* bits. 0; -ENOEXEC when PATH is not an ELF file of this
 * machine's byte order, or is malformed; another -errno if unreadable. */
int interp_check_elf(const char *path, uid_t ruid, gid_t rgid, unsigned *problems);

/* Find CMD the way execvp does, searching PATHENV (NULL: the default
 * path) when CMD has no '/'. 0 with the file's path in OUT; -ENOENT,
 * -EACCES (found, not executable) or -ENAMETOOLONG. */
int interp_resolve(const char *cmd, const char *pathenv, char *out, size_t len);

/* The interpreter that runs script PATH, from its "#!" line, one level:
 * "#!/usr/bin/env [-S] prog" means prog searched in PATHENV. 0 with its
 * path in OUT; -ENOEXEC when PATH has no "#!" line; -ENOENT when the
 * interpreter does not exist (OUT then names it). */
int interp_script(const char *path, const char *pathenv, char *out, size_t len);

struct interp_report {
	char file[PATH_MAX];   /* CMD resolved */
	char interp[PATH_MAX]; /* its interpreter when it is a script, else "" */
	unsigned problems;     /* INTERP_* bits of the file that gets loaded */
};

/* Everything above for command CMD. 0 with *REP filled (problems may be
 * 0); -errno when CMD cannot be found or examined (exec will say why). */
int interp_check(const char *cmd, const char *pathenv, uid_t ruid, gid_t rgid,
		 struct interp_report *rep);

/* What one INTERP_* bit means for the user, as a predicate: "is
 * statically linked: ..., so its sockets will not be recorded". */
const char *interp_problem_text(unsigned bit);

#endif
