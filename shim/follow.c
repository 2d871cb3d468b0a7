/* Puts the shim back into the environment of an exec that lacks it, on the
 * caller's stack, and names the images the loader will not preload into.
 * After start-up nothing here writes anything but its own stack: a vfork
 * child, which shares our memory, runs it; nothing here may fault on what
 * the program passed to exec. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sockshim/config.h"
#include "exec_image.h"
#include "follow.h"
#include "log.h"
#include "real.h"
#include "vfork.h"
#include "sockshim/rawio.h"

/* What we copy onto the caller's stack is bounded (a thread's stack may be
 * small): an environment with more entries, or a longer LD_PRELOAD, passes
 * unchanged, and we say so. Real ones hold tens of entries. */
#define ENTRIES_MAX 1024
#define PRELOAD_MAX 4096
/* Enough of an entry to know its name: the longest we look for,
 * "SOCKSHIM_RING_EVENTS=", and the first byte of its value. */
#define NAME_PEEK 32
/* What valgrind's launcher gives the tool it executes. */
#define LAUNCHER_NAME "VALGRIND_LAUNCHER="
/* Environment entries read with one system call, and the most bytes
 * that call reads. */
#define SCAN_BATCH 64
#define SPAN_MAX 4096
#define PRELOAD_NAME "LD_PRELOAD="
#define PRELOAD_NAME_LEN (sizeof(PRELOAD_NAME) - 1)
/* The loader splits LD_PRELOAD at these (rtld's handle_preload_list). */
#define PRELOAD_SEPARATORS " :"
/* Any entry of this name in LD_PRELOAD is a sockshim the program chose. */
#define LIB_BASENAME "libsockshim.so"
/* "NAME=VALUE" of one setting; the longest value is a session name. */
#define ENTRY_MAX (32 + SOCKSHIM_SESSION_MAX)
/* How much of a path a message shows. */
#define SHOWN_MAX 80

/* Set once by follow_start, read-only after. */
static char lib_path[PATH_MAX];
static size_t lib_len;
static char entries[CONFIG_VARS][ENTRY_MAX]; /* "NAME=VALUE" as in effect */
static unsigned passed;                      /* bits (1u << var) of entries to pass */
static int follow_on;
static enum log_level say_level = LOG_WARN;

/* ---- reading what the program passed, without faulting ---- */

struct reader {
	pid_t pid;
	uintptr_t page;
};

static void reader_init(struct reader *r)
{
	r->pid = getpid();
	r->page = (uintptr_t)getpagesize();
}

/* The bytes from SRC to the end of its page, at most LEN: a piece that is
 * readable or not as a whole. */
static size_t to_page_end(const struct reader *r, const void *src, size_t len)
{
	size_t left = (size_t)(r->page - ((uintptr_t)src & (r->page - 1)));

	return left < len ? left : len;
}

/* Copy LEN bytes at SRC, all in one page, to DST: 0, or -1 if unmapped.
 * process_vm_readv on ourselves answers EFAULT where a load would crash;
 * where a sandbox forbids it, we read as libc's own execv would. */
static int peek_piece(const struct reader *r, void *dst, const void *src, size_t len)
{
	struct iovec local = {dst, len}, remote = {(void *)src, len};
	ssize_t n = process_vm_readv(r->pid, &local, 1, &remote, 1, 0);

	if (n == (ssize_t)len)
		return 0;
	if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
		memcpy(dst, src, len);
		return 0;
	}
	return -1;
}

/* Copy LEN bytes at SRC to DST, page by page: 0, or -1. */
static int peek_bytes(const struct reader *r, void *dst, const void *src, size_t len)
{
	size_t got = 0, n;

	for (; got < len; got += n) {
		n = to_page_end(r, (const char *)src + got, len - got);
		if (peek_piece(r, (char *)dst + got, (const char *)src + got, n) < 0)
			return -1;
	}
	return 0;
}

/* The string at SRC into DST (CAP + 1 bytes, always terminated): its
 * length; CAP when longer (DST then holds its first CAP bytes); -1 when
 * unreadable. Never reads past its NUL's page. */
static ssize_t peek_string(const struct reader *r, char *dst, const char *src, size_t cap)
{
	size_t got = 0, n;
	const char *nul;

	for (; got < cap; got += n) {
		n = to_page_end(r, src + got, cap - got);
		if (peek_piece(r, dst + got, src + got, n) < 0)
			return -1;
		nul = memchr(dst + got, 0, n);
		if (nul)
			return nul - dst;
	}
	dst[cap] = 0;
	return (ssize_t)cap;
}

/* The length of the string at SRC: at most MAX + 1 (longer), -1 when
 * unreadable. */
static ssize_t peek_strlen(const struct reader *r, const char *src, size_t max)
{
	char piece[256];
	size_t got = 0, n;
	const char *nul;

	for (; got <= max; got += n) {
		n = to_page_end(r, src + got, sizeof(piece));
		if (peek_piece(r, piece, src + got, n) < 0)
			return -1;
		nul = memchr(piece, 0, n);
		if (nul)
			return (ssize_t)(got + (size_t)(nul - piece));
	}
	return (ssize_t)max + 1;
}

/* ---- saying what we could not do ---- */

/* One line on stderr, as shim_warn says it; but a vfork child writes
 * none of the state shim_warn keeps (the parent would see it). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (say_level == LOG_QUIET)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (!shim_in_vfork_child()) {
		shim_warn("%s", line);
		return;
	}
	{
		char out[sizeof(line) + 16];

		n = snprintf(out, sizeof(out), "sockshim: %s\n", line);
		if (n > (int)sizeof(out) - 1)
			n = (int)sizeof(out) - 1;
		if (n > 0 && rawio_write(STDERR_FILENO, out, (size_t)n) < 0) {
			/* Nowhere left to say it. */
		}
	}
}

/* The path of T, for a message: escaped, cut to fit. */
static void show_target(const struct reader *r, const struct follow_target *t, char *out,
			size_t len)
{
	char raw[SHOWN_MAX + 1];

	if (!t->path)
		snprintf(out, len, "descriptor %d", t->fd);
	else if (peek_string(r, raw, t->path, SHOWN_MAX) < 0)
		snprintf(out, len, "?");
	else
		config_printable(out, len, raw);
}

/* ---- the image an exec runs ---- */

/* What the exec of T will run: FOLLOW_SECURE, FOLLOW_STATIC, else
 * FOLLOW_CARRIED (a dynamic image, or one we cannot tell: exec will say).
 * Says so for a secure one (the caller, for a static one). Its own frame, apart from the
 * environment's copies: its path buffer is gone by the time exec runs. */
static __attribute__((noinline)) enum follow_verdict target_image(const struct reader *r,
								   const struct follow_target *t)
{
	char path[PATH_MAX], shown[SHOWN_MAX];
	const char *file = NULL;
	struct stat st;
	int fd, rc;

	if (t->path) {
		ssize_t len = peek_string(r, path, t->path, sizeof(path) - 1);

		if (len < 0 || len >= (ssize_t)sizeof(path) - 1)
			return FOLLOW_CARRIED;
		if (t->search && !strchr(path, '/')) {
			char name[NAME_MAX + 1];

			if (len > NAME_MAX)
				return FOLLOW_CARRIED;
			memcpy(name, path, (size_t)len + 1);
			if (image_search_path(name, path, sizeof(path)) < 0)
				return FOLLOW_CARRIED;
		}
		file = path;
		if (stat(file, &st) || !S_ISREG(st.st_mode))
			return FOLLOW_CARRIED;
	} else if (fstat(t->fd, &st) || !S_ISREG(st.st_mode)) {
		return FOLLOW_CARRIED;
	}
	if (image_runs_secure(&st, file, t->fd)) {
		show_target(r, t, shown, sizeof(shown));
		say("not following the exec of %s (pid %d): it runs set-user-ID, set-group-ID or "
		    "with file capabilities, where the loader ignores LD_PRELOAD; its sockets are "
		    "not recorded (holders sees them in /proc)",
		    shown, (int)getpid());
		return FOLLOW_SECURE;
	}
	if (file) {
		/* Non-blocking: the file may have become a FIFO since stat. */
		fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd < 0)
			return FOLLOW_CARRIED;
		rc = image_static(fd, &st);
		real.close(fd);
	} else {
		rc = image_static(t->fd, &st);
	}
	return rc ? FOLLOW_STATIC : FOLLOW_CARRIED;
}

/* Say that the exec of T runs a static image, unless that image loads a
 * program itself (a valgrind tool: its launcher passes VALGRIND_LAUNCHER),
 * whose loader runs the shim as usual. */
static void say_static(const struct reader *r, const struct follow_target *t, int loader)
{
	char shown[SHOWN_MAX];

	if (loader)
		return;
	show_target(r, t, shown, sizeof(shown));
	say("%s (exec by pid %d) is statically linked: no shim runs in it and its sockets are "
	    "not recorded (holders sees them in /proc); what it executes is followed",
	    shown, (int)getpid());
}

/* ---- the environment ---- */

struct env_scan {
	size_t n;                 /* entries before the NULL */
	long preload;             /* the last LD_PRELOAD= (the loader takes the last), or -1 */
	size_t preload_len;       /* its value's length */
	long first[CONFIG_VARS];  /* the first NAME= of each (getenv takes the first), or -1 */
	unsigned valued;          /* bits: that first one has a value */
	int loader;               /* VALGRIND_LAUNCHER= is there: the image is a loader */
};

/* Note what the entry I, at E, is; HEAD holds its start, terminated. 0,
 * or -1 when unreadable. */
static int scan_entry(const struct reader *r, const char *head, const char *e, size_t i,
		      struct env_scan *s)
{
	int v;

	if (!strncmp(head, LAUNCHER_NAME, sizeof(LAUNCHER_NAME) - 1))
		s->loader = 1;
	if (!strncmp(head, PRELOAD_NAME, PRELOAD_NAME_LEN)) {
		ssize_t len = peek_strlen(r, e + PRELOAD_NAME_LEN, PRELOAD_MAX);

		if (len < 0)
			return -1;
		s->preload = (long)i;
		s->preload_len = (size_t)len;
		return 0;
	}
	for (v = 0; v < CONFIG_VARS; v++) {
		size_t nl = strlen(config_var_name[v]);

		if (s->first[v] < 0 && !strncmp(head, config_var_name[v], nl) && head[nl] == '=') {
			s->first[v] = (long)i;
			if (head[nl + 1])
				s->valued |= 1u << v;
		}
	}
	return 0;
}

/* The heads of the first of the N (at most SCAN_BATCH) entries at E into
 * HEADS, each terminated, with one system call: the kernel pins a page per
 * piece it reads, some 0.5 us each, so heads close together in one page
 * (as environment strings usually are) are read as one piece, within
 * SPAN_MAX bytes in all. A head a page's end cuts, and any after a
 * failure, is read again on its own. How many it read (at least one), or
 * -1 when one is unreadable. */
static ssize_t peek_heads(const struct reader *r, char *const *e, size_t n,
			  char heads[][NAME_PEEK + 1])
{
	struct iovec local[SCAN_BATCH], remote[SCAN_BATCH];
	char buf[SPAN_MAX];
	size_t at[SCAN_BATCH], len[SCAN_BATCH], k, pieces = 0, used = 0;
	ssize_t got;

	for (k = 0; k < n; k++) {
		const char *h = e[k];
		size_t cut = to_page_end(r, h, NAME_PEEK);

		len[k] = cut;
		if (pieces) {
			struct iovec *last = &remote[pieces - 1];
			const char *start = last->iov_base;
			size_t end = (size_t)(h - start) + cut;

			/* After the last piece's start, in its page, in the buffer. */
			if (h >= start && end <= to_page_end(r, start, SPAN_MAX) &&
			    used - last->iov_len + end <= sizeof(buf)) {
				at[k] = used - last->iov_len + (size_t)(h - start);
				if (end > last->iov_len) {
					used += end - last->iov_len;
					last->iov_len = local[pieces - 1].iov_len = end;
				}
				continue;
			}
		}
		if (used + cut > sizeof(buf))
			break; /* the rest, next time */
		at[k] = used;
		local[pieces].iov_base = buf + used;
		remote[pieces].iov_base = (void *)h;
		local[pieces].iov_len = remote[pieces].iov_len = cut;
		used += cut;
		pieces++;
	}
	n = k;
	got = process_vm_readv(r->pid, local, (unsigned long)pieces, remote, (unsigned long)pieces, 0);
	for (k = 0; k < n; k++) {
		const char *h = buf + at[k];
		int read = got == (ssize_t)used;

		if (read && (memchr(h, 0, len[k]) || len[k] == NAME_PEEK)) {
			memcpy(heads[k], h, len[k]);
			heads[k][len[k]] = 0;
		} else if (peek_string(r, heads[k], e[k], NAME_PEEK) < 0) {
			return -1;
		}
	}
	return (ssize_t)n;
}

/* Scan ENVP (NULL: empty), a page of pointers at a time (the array may end
 * just before an unmapped page). 0; -1 when unreadable; -2 when it holds
 * more than ENTRIES_MAX entries. Its own frame, gone before the copies. */
static __attribute__((noinline)) int env_scan(const struct reader *r, char *const envp[],
					      struct env_scan *s)
{
	char *chunk[SCAN_BATCH], heads[SCAN_BATCH][NAME_PEEK + 1];
	size_t i, k, n, m;
	ssize_t done;
	int v;

	s->n = 0;
	s->preload = -1;
	s->preload_len = 0;
	s->valued = 0;
	s->loader = 0;
	for (v = 0; v < CONFIG_VARS; v++)
		s->first[v] = -1;
	if (!envp)
		return 0;
	for (i = 0;; i += n) {
		n = to_page_end(r, envp + i, sizeof(chunk)) / sizeof(char *);
		if (!n) /* a pointer across a page boundary */
			n = 1;
		if (peek_bytes(r, chunk, envp + i, n * sizeof(char *)) < 0)
			return -1;
		for (m = 0; m < n && chunk[m]; m++)
			;
		if (i + m > ENTRIES_MAX)
			return -2;
		for (k = 0; k < m; k += (size_t)done) {
			done = peek_heads(r, chunk + k, m - k, heads + k);
			if (done < 0)
				return -1;
		}
		for (k = 0; k < m; k++)
			if (scan_entry(r, heads[k], chunk[k], i + k, s) < 0)
				return -1;
		if (m < n) {
			s->n = i + m;
			return 0;
		}
	}
}

/* Does the LD_PRELOAD value LIST name a sockshim? Ours by its path, or
 * any libsockshim.so the program chose. */
static int lists_shim(const char *list)
{
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, PRELOAD_SEPARATORS);
		const char *base = p + len;

		while (base > p && base[-1] != '/')
			base--;
		if ((len == lib_len && !memcmp(p, lib_path, len)) ||
		    ((size_t)(p + len - base) == sizeof(LIB_BASENAME) - 1 &&
		     !memcmp(base, LIB_BASENAME, sizeof(LIB_BASENAME) - 1)))
			return 1;
		p += len;
		p += strspn(p, PRELOAD_SEPARATORS);
	}
	return 0;
}

/* ENV: ENVP's N entries (copied), then what is missing: the LD_PRELOAD
 * entry PRE (in the place of the loader's, or added) and the settings of
 * MISSING (in the place of an empty one, or added); NULL-terminated. */
static void env_build(char **env, const struct env_scan *s, char *pre, unsigned missing)
{
	size_t k = s->n;
	int v;

	if (pre) {
		if (s->preload >= 0)
			env[s->preload] = pre;
		else
			env[k++] = pre;
	}
	for (v = 0; v < CONFIG_VARS; v++) {
		if (!(missing & (1u << v)))
			continue;
		if (s->first[v] >= 0)
			env[s->first[v]] = entries[v];
		else
			env[k++] = entries[v];
	}
	env[k] = NULL;
}

int follow_exec(const struct follow_target *t, char *const envp[], follow_call call, void *arg)
{
	struct reader r;
	struct env_scan s;
	enum follow_verdict image;
	char shown[SHOWN_MAX];
	int rc;

	if (!follow_on || __atomic_load_n(&shim_inert, __ATOMIC_RELAXED))
		return call(arg, envp, FOLLOW_OFF);
	reader_init(&r);
	image = target_image(&r, t);
	if (image == FOLLOW_SECURE)
		return call(arg, envp, FOLLOW_SECURE);
	rc = env_scan(&r, envp, &s);
	if (image == FOLLOW_STATIC)
		say_static(&r, t, rc == 0 && s.loader);
	if (rc == -1)
		return call(arg, envp, FOLLOW_UNREADABLE);
	if (rc < 0 || s.preload_len > PRELOAD_MAX) {
		show_target(&r, t, shown, sizeof(shown));
		say("not following the exec of %s (pid %d): its environment is too large to "
		    "extend here (more than %d entries, or an LD_PRELOAD over %d bytes)",
		    shown, (int)getpid(), ENTRIES_MAX, PRELOAD_MAX);
		return call(arg, envp, FOLLOW_TOO_LARGE);
	}
	{
		/* "LD_PRELOAD=" ours ":" theirs */
		char pre[PRELOAD_NAME_LEN + lib_len + 1 + s.preload_len + 1];
		char *theirs = pre + PRELOAD_NAME_LEN + lib_len + 1, *entry;
		unsigned missing = passed & ~s.valued;
		int add_lib = 1;

		memcpy(pre, PRELOAD_NAME, PRELOAD_NAME_LEN);
		memcpy(pre + PRELOAD_NAME_LEN, lib_path, lib_len);
		pre[PRELOAD_NAME_LEN + lib_len] = 0;
		if (s.preload >= 0 && s.preload_len) {
			if (peek_bytes(&r, &entry, envp + s.preload, sizeof(entry)) < 0 ||
			    peek_bytes(&r, theirs, entry + PRELOAD_NAME_LEN, s.preload_len) < 0)
				return call(arg, envp, FOLLOW_UNREADABLE);
			theirs[s.preload_len] = 0;
			add_lib = !lists_shim(theirs);
			theirs[-1] = ':';
		}
		if (!add_lib && !missing)
			return call(arg, envp, image);
		{
			char *env[s.n + CONFIG_VARS + 2];

			if (s.n && peek_bytes(&r, env, envp, s.n * sizeof(char *)) < 0)
				return call(arg, envp, FOLLOW_UNREADABLE);
			env_build(env, &s, add_lib ? pre : NULL, missing);
			return call(arg, env, image == FOLLOW_STATIC ? FOLLOW_STATIC : FOLLOW_RESTORED);
		}
	}
}

/* ---- start-up ---- */

/* The file holding ADDR, into OUT (LEN bytes): the name of its link map,
 * as the loader opened it; made absolute when relative (an exec may
 * follow a chdir). 0, or -1 when unknown. */
static int find_object_path(void *addr, char *out, size_t len)
{
	struct dl_find_object o;
	const struct link_map *lm;
	char abs[PATH_MAX];
	const char *name;
	size_t n;

	if (_dl_find_object(addr, &o) != 0)
		return -1;
	lm = o.dlfo_link_map;
	if (!lm || !lm->l_name || !lm->l_name[0])
		return -1;
	name = lm->l_name;
	if (name[0] != '/') {
		if (!realpath(name, abs))
			return -1;
		name = abs;
	}
	n = strlen(name);
	if (n >= len)
		return -1;
	memcpy(out, name, n + 1);
	return 0;
}

/* A sanitized build (make asan, make tsan) loads its runtime first: a
 * followed image needs the runtime ahead of the shim too. */
#if defined(__SANITIZE_ADDRESS__)
extern void __asan_init(void);
#define SANITIZER_RUNTIME ((void *)&__asan_init)
#elif defined(__SANITIZE_THREAD__)
extern void __tsan_init(void);
#define SANITIZER_RUNTIME ((void *)&__tsan_init)
#endif

#ifdef SANITIZER_RUNTIME
/* Put the runtime's path RT (one entry) ahead of ours: "RT:ours". */
static void put_runtime_first(const char *rt)
{
	size_t n = strlen(rt);

	if (!follow_on || rt[0] != '/' || strpbrk(rt, PRELOAD_SEPARATORS) ||
	    n + 1 + lib_len >= sizeof(lib_path))
		return;
	memmove(lib_path + n + 1, lib_path, lib_len + 1);
	memcpy(lib_path, rt, n);
	lib_path[n] = ':';
	lib_len += n + 1;
}
#endif

int follow_setup(const struct shim_config *c, const char *lib)
{
	size_t len = strlen(lib);
	int v;

	follow_on = 0;
	passed = 0;
	say_level = c->log_level;
	if (!c->follow)
		return 0;
	if (lib[0] != '/' || len >= sizeof(lib_path) || strpbrk(lib, PRELOAD_SEPARATORS))
		return -1;
	memcpy(lib_path, lib, len + 1);
	lib_len = len;
	for (v = 0; v < CONFIG_VARS; v++) {
		if (v == CONFIG_FOLLOW || (v != CONFIG_SESSION && !(c->given & (1u << v))))
			continue;
		if (config_entry(c, (enum config_var)v, entries[v], sizeof(entries[v])) >= 0)
			passed |= 1u << v;
	}
	follow_on = 1;
	return 0;
}

static const char *env_lookup(const char *name)
{
	return getenv(name);
}

/* Our own constructor, so that process.c's start-up stays as it is; its
 * warnings about invalid values are process.c's to say. */
__attribute__((constructor)) static void follow_start(void)
{
	struct shim_config c;
	char warn[512], lib[PATH_MAX];
	int saved = errno;

	config_parse(&c, env_lookup, warn, sizeof(warn));
	if (!c.follow || find_object_path((void *)&follow_start, lib, sizeof(lib)) < 0)
		lib[0] = 0;
	if (follow_setup(&c, lib) < 0)
		shim_debug("cannot tell the path of " LIB_BASENAME " (or it holds a blank or a "
			   "colon); the images this process executes are followed only if their "
			   "environment carries LD_PRELOAD");
#ifdef SANITIZER_RUNTIME
	if (find_object_path(SANITIZER_RUNTIME, lib, sizeof(lib)) == 0)
		put_runtime_first(lib);
#endif
	errno = saved;
}
