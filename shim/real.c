/* Binds the real libc symbols with dlsym(RTLD_NEXT) under pthread_once. A
 * name that resolves back into this library would recurse: it is reported
 * once, the shim goes inert, and libc's own definition is used instead. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "real.h"

struct real_syms real;
int shim_inert;

static pthread_once_t bind_once = PTHREAD_ONCE_INIT;

static int in_this_library(void *p)
{
	Dl_info self, other;

	if (!dladdr((void *)&real_bind, &self) || !dladdr(p, &other))
		return 0;
	return self.dli_fbase == other.dli_fbase;
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

static void bind_all(void)
{
	struct real_syms bound;
	void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	void *close_fn;

	memset(&bound, 0, sizeof(bound));
	BIND(socket, "socket");
	BIND(socketpair, "socketpair");
	BIND(bind, "bind");
	BIND(listen, "listen");
	BIND(accept, "accept");
	BIND(accept4, "accept4");
	BIND(connect, "connect");
	BIND(shutdown, "shutdown");
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
	BIND(execve, "execve");
	BIND(execv, "execv");
	BIND(execvp, "execvp");
	BIND(execvpe, "execvpe");
	BIND(fexecve, "fexecve");
	close_fn = bind_one("close", libc);
	if (!bound.fcntl64)
		bound.fcntl64 = bound.fcntl;
	/* real.close is the "bound" flag: publish it last, with release. */
	memcpy(&real, &bound, sizeof(real));
	__atomic_store_n((void **)&real.close, close_fn, __ATOMIC_RELEASE);
	if (libc)
		dlclose(libc);
}

void real_bind(void)
{
	pthread_once(&bind_once, bind_all);
}
