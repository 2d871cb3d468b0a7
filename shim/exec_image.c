/* What an exec is about to run, judged from the file before the kernel
 * does: an image no loader will start (static, or a script whose
 * interpreter is), one the kernel runs in secure-execution mode, and
 * where execvp would find a name. Called from follow.c on the exec path,
 * possibly in a vfork child: reads files and stats, allocates nothing,
 * writes only its own stack. */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "exec_image.h"
#include "real.h"

/* The start of a file read to judge it (an ELF header and, usually, its
 * program headers), and the program headers read at a time beyond it. */
#define PHDR_CHUNK 1024
/* The kernel reads no more of a "#!" line (BINPRM_BUF_SIZE). */
#define BINPRM_LINE 256
/* The search path execvp uses without PATH (glibc's _CS_PATH). */
#define DEFAULT_PATH "/bin:/usr/bin"

/* Is the file ST the dynamic loader itself (ld.so run as a program, which
 * has no PT_INTERP but preloads)? _dl_find_object reads the table of
 * loaded objects without a lock (dladdr takes the loader's, which a vfork
 * child shares with its parent). */
static int is_loader(const struct stat *st)
{
	/* The auxiliary vector gives the loader's base as an integer. */
	void *base = (void *)getauxval(AT_BASE); // NOLINT(performance-no-int-to-ptr)
	struct dl_find_object o;
	const struct link_map *lm;
	struct stat ld;

	if (!base || _dl_find_object(base, &o) != 0)
		return 0;
	lm = o.dlfo_link_map;
	if (!lm || !lm->l_name || stat(lm->l_name, &ld))
		return 0;
	return ld.st_dev == st->st_dev && ld.st_ino == st->st_ino;
}

/* The program headers of the ELF file FD (class CLS; HEAD holds its
 * first N bytes, where they usually are): 1 when none is PT_INTERP, 0 when
 * one is or we cannot tell. p_type is the first word of a program header
 * in both classes. */
static int elf_without_interp(int fd, const unsigned char *head, size_t n_head, int cls)
{
	unsigned char buf[PHDR_CHUNK];
	uint64_t phoff;
	unsigned phentsize, phnum, i, per;
	uint16_t type;

	if (cls == ELFCLASS64) {
		Elf64_Ehdr e;

		memcpy(&e, head, sizeof(e));
		type = e.e_type;
		phoff = e.e_phoff;
		phentsize = e.e_phentsize;
		phnum = e.e_phnum;
	} else {
		Elf32_Ehdr e;

		memcpy(&e, head, sizeof(e));
		type = e.e_type;
		phoff = e.e_phoff;
		phentsize = e.e_phentsize;
		phnum = e.e_phnum;
	}
	if ((type != ET_EXEC && type != ET_DYN) || phentsize < sizeof(uint32_t) ||
	    phentsize > sizeof(buf) || !phnum || phnum == PN_XNUM || phoff > INT64_MAX / 2)
		return 0;
	per = (unsigned)(sizeof(buf) / phentsize);
	for (i = 0; i < phnum; i += per) {
		unsigned k, n = phnum - i < per ? phnum - i : per;
		size_t want = (size_t)n * phentsize;
		uint64_t off = phoff + (uint64_t)i * phentsize;
		const unsigned char *ph = buf;

		if (off + want <= n_head)
			ph = head + off;
		else if (pread(fd, buf, want, (off_t)off) != (ssize_t)want)
			return 0;
		for (k = 0; k < n; k++) {
			uint32_t p_type;

			memcpy(&p_type, ph + (size_t)k * phentsize, sizeof(p_type));
			if (p_type == PT_INTERP)
				return 0;
		}
	}
	return 1;
}

static int file_static(int fd, const struct stat *st, int depth);

/* A script (HEAD, N bytes, starts "#!"): is its interpreter static? */
static int script_static(const unsigned char *head, size_t n)
{
	char interp[BINPRM_LINE];
	size_t i = 2, len;
	struct stat st;
	int fd, rc;

	while (i < n && (head[i] == ' ' || head[i] == '\t'))
		i++;
	for (len = 0; i + len < n && len < sizeof(interp) - 1; len++) {
		unsigned char c = head[i + len];

		if (c == ' ' || c == '\t' || c == '\n' || !c)
			break;
	}
	if (!len || i + len >= n) /* empty, or cut: cannot tell */
		return 0;
	memcpy(interp, head + i, len);
	interp[len] = 0;
	if (stat(interp, &st) || !S_ISREG(st.st_mode))
		return 0;
	fd = open(interp, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return 0;
	rc = file_static(fd, &st, 1);
	real.close(fd);
	return rc;
}

/* Will the file FD (ST) run without a loader, so without the shim? 1 yes,
 * 0 no or cannot tell. DEPTH: scripts are judged by their interpreter,
 * one level, as the kernel goes. */
static int file_static(int fd, const struct stat *st, int depth)
{
	unsigned char head[PHDR_CHUNK];
	ssize_t n = pread(fd, head, sizeof(head), 0);

	if (n >= 2 && head[0] == '#' && head[1] == '!')
		return depth ? 0 : script_static(head, (size_t)n);
	if (n < (ssize_t)sizeof(Elf64_Ehdr) || memcmp(head, ELFMAG, SELFMAG) != 0)
		return 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (head[EI_DATA] != ELFDATA2LSB)
		return 0;
#else
	if (head[EI_DATA] != ELFDATA2MSB)
		return 0;
#endif
	if (head[EI_CLASS] != ELFCLASS64 && head[EI_CLASS] != ELFCLASS32)
		return 0;
	return elf_without_interp(fd, head, (size_t)n, head[EI_CLASS]) && !is_loader(st);
}

/* Does the file (PATH, else FD) carry file capabilities? */
static int has_file_caps(const char *path, int fd)
{
	ssize_t n = path ? getxattr(path, "security.capability", NULL, 0)
			 : fgetxattr(fd, "security.capability", NULL, 0);

	return n > 0;
}

/* Will the kernel run the file ST (PATH, else FD) in secure-execution
 * mode (AT_SECURE), where the loader ignores LD_PRELOAD paths with a
 * slash? It does when the exec leaves the effective ids unlike the real
 * ones (set-user-ID, set-group-ID, or ours already apart) or grants file
 * capabilities to a user other than root; not on a nosuid mount or under
 * no_new_privs. */
int image_runs_secure(const struct stat *st, const char *path, int fd)
{
	uid_t euid = geteuid();
	gid_t egid = getegid();
	int setuid = (st->st_mode & S_ISUID) != 0;
	int setgid = (st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP);
	int caps = getuid() != 0 && has_file_caps(path, fd);

	if (setuid || setgid || caps) {
		struct statvfs vfs;
		int nosuid = !(path ? statvfs(path, &vfs) : fstatvfs(fd, &vfs)) &&
			     (vfs.f_flag & ST_NOSUID);

		if (!nosuid && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
			if (caps)
				return 1;
			if (setuid)
				euid = st->st_uid;
			if (setgid)
				egid = st->st_gid;
		}
	}
	return euid != getuid() || egid != getgid();
}

/* Where execvp finds FILE: the first regular file in $PATH we may
 * execute, into OUT (LEN bytes). 0, or -1 when none. */
int image_search_path(const char *file, char *out, size_t len)
{
	const char *path = getenv("PATH"), *p, *end;
	size_t flen = strlen(file);
	struct stat st;

	for (p = path ? path : DEFAULT_PATH;; p = end + 1) {
		size_t dlen;

		end = strchrnul(p, ':');
		dlen = (size_t)(end - p);
		if (dlen + 1 + flen < len) {
			/* An empty entry is the current directory. */
			if (dlen) {
				memcpy(out, p, dlen);
				out[dlen++] = '/';
			}
			memcpy(out + dlen, file, flen + 1);
			if (!stat(out, &st) && S_ISREG(st.st_mode) &&
			    !faccessat(AT_FDCWD, out, X_OK, AT_EACCESS))
				return 0;
		}
		if (!*end)
			return -1;
	}
}

int image_static(int fd, const struct stat *st)
{
	return file_static(fd, st, 0);
}
