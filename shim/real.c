/* Binds the real libc symbols with dlsym(RTLD_NEXT) under pthread_once. A
 * name that resolves back into this library would recurse: it is reported
 * once, the shim goes inert, and libc's own definition is used instead. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"
#include "real.h"

int real_bound;
int shim_inert;

/* Bootstraps for the wrappers that call real.X unchecked (see real.h). */
static ssize_t boot_read(int fd, void *buf, size_t n)
{
	real_bind();
	return real.read(fd, buf, n);
}

static ssize_t boot_read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	real_bind();
	return real.read_chk(fd, buf, n, buflen);
}

static ssize_t boot_readv(int fd, const struct iovec *iov, int n)
{
	real_bind();
	return real.readv(fd, iov, n);
}

static ssize_t boot_recv(int fd, void *buf, size_t n, int flags)
{
	real_bind();
	return real.recv(fd, buf, n, flags);
}

static ssize_t boot_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	real_bind();
	return real.recv_chk(fd, buf, n, buflen, flags);
}

static ssize_t boot_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
			     socklen_t *len)
{
	real_bind();
	return real.recvfrom(fd, buf, n, flags, addr, len);
}

static ssize_t boot_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
				 struct sockaddr *addr, socklen_t *len)
{
	real_bind();
	return real.recvfrom_chk(fd, buf, n, buflen, flags, addr, len);
}

static ssize_t boot_recvmsg(int fd, struct msghdr *msg, int flags)
{
	real_bind();
	return real.recvmsg(fd, msg, flags);
}

static ssize_t boot_write(int fd, const void *buf, size_t n)
{
	real_bind();
	return real.write(fd, buf, n);
}

static ssize_t boot_writev(int fd, const struct iovec *iov, int n)
{
	real_bind();
	return real.writev(fd, iov, n);
}

static ssize_t boot_send(int fd, const void *buf, size_t n, int flags)
{
	real_bind();
	return real.send(fd, buf, n, flags);
}

static ssize_t boot_sendto(int fd, const void *buf, size_t n, int flags,
			   const struct sockaddr *addr, socklen_t len)
{
	real_bind();
	return real.sendto(fd, buf, n, flags, addr, len);
}

static ssize_t boot_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	real_bind();
	return real.sendmsg(fd, msg, flags);
}

static int boot_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	real_bind();
	return real.setsockopt(fd, level, name, val, len);
}

static int boot_close(int fd)
{
	real_bind();
	return real.close(fd);
}

static int boot_dup(int fd)
{
	real_bind();
	return real.dup(fd);
}

static int boot_dup2(int fd, int to)
{
	real_bind();
	return real.dup2(fd, to);
}

static int boot_dup3(int fd, int to, int flags)
{
	real_bind();
	return real.dup3(fd, to, flags);
}

/* fcntl's third argument, int or pointer, passed on as a pointer-sized
 * value (as libc reads it). */
static int boot_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	real_bind();
	return real.fcntl(fd, cmd, arg);
}

static int boot_fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	real_bind();
	return real.fcntl64(fd, cmd, arg);
}

/* libc's syscall() reads six arguments whatever the number; so do we. */
static long boot_syscall(long number, ...)
{
	va_list ap;
	long a1, a2, a3, a4, a5, a6;

	va_start(ap, number);
	a1 = va_arg(ap, long);
	a2 = va_arg(ap, long);
	a3 = va_arg(ap, long);
	a4 = va_arg(ap, long);
	a5 = va_arg(ap, long);
	a6 = va_arg(ap, long);
	va_end(ap);
	real_bind();
	return real.syscall(number, a1, a2, a3, a4, a5, a6);
}

struct real_syms real = {
	.read = boot_read,
	.read_chk = boot_read_chk,
	.readv = boot_readv,
	.recv = boot_recv,
	.recv_chk = boot_recv_chk,
	.recvfrom = boot_recvfrom,
	.recvfrom_chk = boot_recvfrom_chk,
	.recvmsg = boot_recvmsg,
	.write = boot_write,
	.writev = boot_writev,
	.send = boot_send,
	.sendto = boot_sendto,
	.sendmsg = boot_sendmsg,
	.setsockopt = boot_setsockopt,
	.close = boot_close,
	.dup = boot_dup,
	.dup2 = boot_dup2,
	.dup3 = boot_dup3,
	.fcntl = boot_fcntl,
	.fcntl64 = boot_fcntl64,
	.syscall = boot_syscall,
};

static pthread_once_t bind_once = PTHREAD_ONCE_INIT;

/* Is P inside this library? _dl_find_object looks the address up in
 * glibc's sorted table of loaded objects; dladdr, which also searches the
 * object's symbols for a name, cost 48,000 instructions a call, some 4
 * million for the 41 lookups of every process's start. */
static int in_this_library(void *p)
{
	struct dl_find_object self, other;

	if (_dl_find_object((void *)&real_bind, &self) != 0 || _dl_find_object(p, &other) != 0)
		return 0;
	return self.dlfo_link_map == other.dlfo_link_map;
}

static void *bind_one(const char *name, void *libc)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p && !in_this_library(p))
		return p;
	if (p) {
		shim_warn("%s resolves to sockshim itself (loaded twice?); passing every call through", name);
		__atomic_store_n(&shim_inert, 1, __ATOMIC_RELAXED);
	}
	/* libc's own definition: never ours, whatever the preload order. */
	return libc ? dlsym(libc, name) : NULL;
}

#define BIND(field, name) *(void **)&bound.field = bind_one(name, libc)

/* libc's handle, for dlsym, without dlopen: binding may happen before
 * libc's own initialiser has run (a sanitizer's preinit calls sigaction,
 * which is ours), and a dlopen then would initialise libc with no
 * environment for good. _dl_find_object only reads the table of loaded
 * objects; the link map it returns is what dlopen would have returned. */
static void *libc_handle(void)
{
	struct dl_find_object libc;

	return _dl_find_object((void *)&getpid, &libc) == 0 ? libc.dlfo_link_map : NULL;
}

static void bind_all(void)
{
	struct real_syms bound;
	void *libc = libc_handle();

	memset(&bound, 0, sizeof(bound));
	BIND(socket, "socket");
	BIND(socketpair, "socketpair");
	BIND(bind, "bind");
	BIND(listen, "listen");
	BIND(accept, "accept");
	BIND(accept4, "accept4");
	BIND(connect, "connect");
	BIND(shutdown, "shutdown");
	BIND(setsockopt, "setsockopt");
	BIND(close_range, "close_range");
	BIND(dup, "dup");
	BIND(dup2, "dup2");
	BIND(dup3, "dup3");
	BIND(fcntl, "fcntl");
	BIND(fcntl64, "fcntl64");
	BIND(read, "read");
	BIND(readv, "readv");
	BIND(recv, "recv");
	BIND(recvfrom, "recvfrom");
	BIND(recvmsg, "recvmsg");
	BIND(read_chk, "__read_chk");
	BIND(recv_chk, "__recv_chk");
	BIND(recvfrom_chk, "__recvfrom_chk");
	BIND(write, "write");
	BIND(writev, "writev");
	BIND(send, "send");
	BIND(sendto, "sendto");
	BIND(sendmsg, "sendmsg");
	BIND(execve, "execve");
	BIND(execv, "execv");
	BIND(execvp, "execvp");
	BIND(execvpe, "execvpe");
	BIND(fexecve, "fexecve");
	BIND(vfork, "vfork");
	BIND(fork, "fork");
	BIND(exit_now, "_exit");
	BIND(exit_now2, "_Exit");
	BIND(poll, "poll");
	BIND(poll_chk, "__poll_chk");
	BIND(ppoll, "ppoll");
	BIND(ppoll_chk, "__ppoll_chk");
	BIND(select, "select");
	BIND(pselect, "pselect");
	BIND(epoll_ctl, "epoll_ctl");
	BIND(epoll_wait, "epoll_wait");
	BIND(epoll_pwait, "epoll_pwait");
	BIND(sigaction, "sigaction");
	BIND(signal, "signal");
	BIND(bsd_signal, "bsd_signal");
	BIND(sysv_signal, "sysv_signal");
	BIND(sigprocmask, "sigprocmask");
	BIND(pthread_sigmask, "pthread_sigmask");
	BIND(wait, "wait");
	BIND(waitpid, "waitpid");
	BIND(wait3, "wait3");
	BIND(wait4, "wait4");
	BIND(waitid, "waitid");
	BIND(syscall, "syscall");
	BIND(close, "close");
	if (!bound.fcntl64)
		bound.fcntl64 = bound.fcntl;
	memcpy(&real, &bound, sizeof(real));
	__atomic_store_n(&real_bound, 1, __ATOMIC_RELEASE);
}

void real_bind(void)
{
	pthread_once(&bind_once, bind_all);
}
