/* The logic layer (shim_*) of the exported wrappers, declared for the one
 * other entry point that needs it: libc's syscall() (shim/calls_syscall.c),
 * which must route a wrapped call's number through the same logic. Nothing
 * here is exported; no logic lives here. */
#ifndef SOCKSHIM_CALLS_H
#define SOCKSHIM_CALLS_H

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* shim/calls_fd.c. THREE: dup3 (FLAGS apply), else dup2. FN: libc's fcntl
 * or fcntl64; ARG: the third argument as a pointer-sized value. */
int shim_close(int fd);
int shim_close_range(unsigned first, unsigned last, int flags);
int shim_dup(int old_fd);
int shim_dup3(int old_fd, int new_fd, int flags, int three);
int shim_fcntl(int (*fn)(int, int, ...), int fd, int cmd, void *arg);

/* shim/calls_socket.c. CALLER: the return address of the program's call,
 * recorded as the socket's (or the shutdown's) call site. FOUR: accept4 (FLAGS apply). */
int shim_socket(int domain, int type, int protocol, void *caller);
int shim_socketpair(int domain, int type, int protocol, int sv[2], void *caller);
int shim_bind(int fd, const struct sockaddr *addr, socklen_t len);
int shim_listen(int fd, int backlog);
int shim_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags, int four,
		 void *caller);
int shim_connect(int fd, const struct sockaddr *addr, socklen_t len);
int shim_shutdown(int fd, int how, void *caller);
int shim_setsockopt(int fd, int level, int name, const void *val, socklen_t len);

/* shim/calls_read.c */
ssize_t shim_read(int fd, void *buf, size_t n);
ssize_t shim_readv(int fd, const struct iovec *iov, int n);
ssize_t shim_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
		      socklen_t *len);
ssize_t shim_recvmsg(int fd, struct msghdr *msg, int flags);

/* shim/calls_write.c */
ssize_t shim_write(int fd, const void *buf, size_t n);
ssize_t shim_writev(int fd, const struct iovec *iov, int n);
ssize_t shim_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
		    socklen_t len);
ssize_t shim_sendmsg(int fd, const struct msghdr *msg, int flags);

/* shim/calls_poll.c */
int shim_poll(struct pollfd *fds, nfds_t n, int timeout);
/* CALL: libc's select (it reads and writes the timeout itself), or the
 * system call (the kernel's EFAULT, and a read-only timeout let be). */
typedef int (*select_call)(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *timeout);
int shim_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *timeout,
		select_call call);
/* shim/calls_epoll.c */
int shim_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int shim_epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout);
int shim_epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout,
		     const sigset_t *mask);

#endif
