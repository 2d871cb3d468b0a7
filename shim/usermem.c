/* The program's memory without trusting it (usermem.h). */
#include "usermem.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static size_t total(const struct iovec *v, int n)
{
	size_t sum = 0;
	int i;

	for (i = 0; i < n; i++)
		sum += v[i].iov_len;
	return sum;
}

static int refused(int err)
{
	return err == ENOSYS || err == EPERM;
}

int usermem_readv(const struct iovec *local, const struct iovec *remote, int n)
{
	int saved = errno, rc = 0, i;
	ssize_t got = process_vm_readv(getpid(), /* a vfork child's: its parent's memory */
				    local, (unsigned long)n, remote, (unsigned long)n, 0);

	if (got < 0 && refused(errno)) {
		for (i = 0; i < n; i++)
			memcpy(local[i].iov_base, remote[i].iov_base, local[i].iov_len);
	} else if (got != (ssize_t)total(remote, n)) {
		rc = -1;
	}
	errno = saved;
	return rc;
}

int usermem_writev(const struct iovec *local, const struct iovec *remote, int n)
{
	int saved = errno, rc = 0, i;
	ssize_t put = process_vm_writev(getpid(), local, (unsigned long)n, remote, (unsigned long)n, 0);

	if (put < 0 && refused(errno)) {
		for (i = 0; i < n; i++)
			memcpy(remote[i].iov_base, local[i].iov_base, local[i].iov_len);
	} else if (put != (ssize_t)total(remote, n)) {
		rc = -1;
	}
	errno = saved;
	return rc;
}

int usermem_read(void *dst, const void *src, size_t len)
{
	struct iovec local = {dst, len}, remote = {(void *)src, len};

	return usermem_readv(&local, &remote, 1);
}

int usermem_write(void *dst, const void *src, size_t len)
{
	struct iovec local = {(void *)src, len}, remote = {dst, len};

	return usermem_writev(&local, &remote, 1);
}
