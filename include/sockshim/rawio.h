/* Reading, writing and closing the shim's own descriptors (/proc files, the
 * segment's file, stderr for its warnings) without going through the
 * shim's own wrappers: a fork child's descriptor table may still name that
 * number for a socket its parent's thread was closing, and the close
 * wrapper would then release that socket; a warning written while the
 * real symbols are being bound must not call a wrapper that binds them.
 * libc's internal names are exported and wrapped by nobody. */
#ifndef SOCKSHIM_RAWIO_H
#define SOCKSHIM_RAWIO_H

#include <sys/types.h>

int __close(int fd);
ssize_t __read(int fd, void *buf, size_t n);
ssize_t __write(int fd, const void *buf, size_t n);

static inline int rawio_close(int fd)
{
	return __close(fd);
}

static inline ssize_t rawio_read(int fd, void *buf, size_t n)
{
	return __read(fd, buf, n);
}

static inline ssize_t rawio_write(int fd, const void *buf, size_t n)
{
	return __write(fd, buf, n);
}

#endif
