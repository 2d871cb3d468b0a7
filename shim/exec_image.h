/* What an exec is about to run (shim/exec_image.c). */
#ifndef SOCKSHIM_EXEC_IMAGE_H
#define SOCKSHIM_EXEC_IMAGE_H

#include <stddef.h>
#include <sys/stat.h>

/* Will the file FD (ST) run without a loader, so without the shim (a
 * static ELF, or a script whose interpreter is one)? 1 yes, 0 no or
 * cannot tell. */
int image_static(int fd, const struct stat *st);

/* Will the kernel run the file ST (PATH, else FD) in secure-execution
 * mode (AT_SECURE), where the loader ignores LD_PRELOAD paths with a
 * slash? */
int image_runs_secure(const struct stat *st, const char *path, int fd);

/* Where execvp finds FILE: the first regular file in $PATH we may
 * execute, into OUT (LEN bytes). 0, or -1 when none. */
int image_search_path(const char *file, char *out, size_t len);

#endif
