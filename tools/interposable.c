/* Reads just enough of an ELF file (program headers, section names) or a
 * script's "#!" line to tell whether LD_PRELOAD will reach it. The file
 * may be anything: every offset and count is checked before use, and a
 * malformed file is "cannot tell" (-ENOEXEC), never a crash. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interposable.h"

/* Caps that no real binary reaches; they bound what we read. */
#define MAX_SECTIONS 65536
#define MAX_SHSTRTAB (16u << 20)
/* The kernel reads at most this much of a "#!" line (BINPRM_BUF_SIZE). */
#define SHEBANG_MAX 256

/* The header fields we use, whatever the ELF class. */
struct elf_info {
	int is64;
	uint64_t phoff, shoff;
	uint32_t phnum, shnum, shstrndx;
	uint16_t phentsize, shentsize;
};

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n;

	if (off > (uint64_t)INT64_MAX)
		return -ENOEXEC;
	n = pread(fd, buf, len, (off_t)off);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -ENOEXEC; /* truncated file */
}

static int host_is_little(void)
{
	const uint16_t one = 1;

	return *(const uint8_t *)&one == 1;
}

/* Section 0 holds the real counts when they do not fit the header. */
static int read_section0(int fd, const struct elf_info *ei, uint64_t *size, uint32_t *link,
			 uint32_t *info)
{
	int rc;

	if (!ei->shoff)
		return -ENOEXEC;
	if (ei->is64) {
		Elf64_Shdr s;

		rc = read_at(fd, &s, sizeof(s), ei->shoff);
		if (rc)
			return rc;
		*size = s.sh_size;
		*link = s.sh_link;
		*info = s.sh_info;
	} else {
		Elf32_Shdr s;

		rc = read_at(fd, &s, sizeof(s), ei->shoff);
		if (rc)
			return rc;
		*size = s.sh_size;
		*link = s.sh_link;
		*info = s.sh_info;
	}
	return 0;
}

static int read_ehdr(int fd, struct elf_info *ei)
{
	unsigned char ident[EI_NIDENT];
	uint64_t size0;
	uint32_t link0, info0;
	int rc;

	memset(ei, 0, sizeof(*ei));
	rc = read_at(fd, ident, sizeof(ident), 0);
	if (rc)
		return rc;
	if (memcmp(ident, ELFMAG, SELFMAG) != 0 ||
	    ident[EI_DATA] != (host_is_little() ? ELFDATA2LSB : ELFDATA2MSB))
		return -ENOEXEC;
	if (ident[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr h;

		rc = read_at(fd, &h, sizeof(h), 0);
		if (rc)
			return rc;
		ei->is64 = 1;
		ei->phoff = h.e_phoff;
		ei->shoff = h.e_shoff;
		ei->phnum = h.e_phnum;
		ei->shnum = h.e_shnum;
		ei->shstrndx = h.e_shstrndx;
		ei->phentsize = h.e_phentsize;
		ei->shentsize = h.e_shentsize;
		if (ei->phentsize != sizeof(Elf64_Phdr) ||
		    (ei->shoff && ei->shentsize != sizeof(Elf64_Shdr)))
			return -ENOEXEC;
	} else if (ident[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr h;

		rc = read_at(fd, &h, sizeof(h), 0);
		if (rc)
			return rc;
		ei->phoff = h.e_phoff;
		ei->shoff = h.e_shoff;
		ei->phnum = h.e_phnum;
		ei->shnum = h.e_shnum;
		ei->shstrndx = h.e_shstrndx;
		ei->phentsize = h.e_phentsize;
		ei->shentsize = h.e_shentsize;
		if (ei->phentsize != sizeof(Elf32_Phdr) ||
		    (ei->shoff && ei->shentsize != sizeof(Elf32_Shdr)))
			return -ENOEXEC;
	} else {
		return -ENOEXEC;
	}
	if (ei->phnum != PN_XNUM && ei->shnum && ei->shstrndx != SHN_XINDEX)
		return 0;
	/* Extended numbering: the counts live in section 0. */
	if (ei->shoff && read_section0(fd, ei, &size0, &link0, &info0) == 0) {
		if (ei->phnum == PN_XNUM)
			ei->phnum = info0;
		if (!ei->shnum)
			ei->shnum = size0 > MAX_SECTIONS ? MAX_SECTIONS + 1 : (uint32_t)size0;
		if (ei->shstrndx == SHN_XINDEX)
			ei->shstrndx = link0;
	} else if (ei->phnum == PN_XNUM) {
		return -ENOEXEC;
	}
	return 0;
}

/* 1 when a PT_INTERP program header exists, 0 if not, or -errno. */
static int has_interp(int fd, const struct elf_info *ei)
{
	uint32_t i;
	int rc;

	for (i = 0; i < ei->phnum; i++) {
		uint64_t off = ei->phoff + (uint64_t)i * ei->phentsize;
		uint32_t type;

		if (off < ei->phoff)
			return -ENOEXEC;
		if (ei->is64) {
			Elf64_Phdr p;

			rc = read_at(fd, &p, sizeof(p), off);
			type = rc ? 0 : p.p_type;
		} else {
			Elf32_Phdr p;

			rc = read_at(fd, &p, sizeof(p), off);
			type = rc ? 0 : p.p_type;
		}
		if (rc)
			return rc;
		if (type == PT_INTERP)
			return 1;
	}
	return 0;
}

/* Offset, size and name index of section I. */
static int section(int fd, const struct elf_info *ei, uint32_t i, uint64_t *off,
		   uint64_t *size, uint32_t *name)
{
	uint64_t at = ei->shoff + (uint64_t)i * ei->shentsize;
	int rc;

	if (ei->is64) {
		Elf64_Shdr s;

		rc = read_at(fd, &s, sizeof(s), at);
		if (rc)
			return rc;
		*off = s.sh_offset;
		*size = s.sh_size;
		*name = s.sh_name;
	} else {
		Elf32_Shdr s;

		rc = read_at(fd, &s, sizeof(s), at);
		if (rc)
			return rc;
		*off = s.sh_offset;
		*size = s.sh_size;
		*name = s.sh_name;
	}
	return 0;
}

static int name_is(const char *strtab, uint64_t tabsize, uint32_t name, const char *want)
{
	size_t n = strlen(want) + 1;

	return name < tabsize && tabsize - name >= n && !memcmp(strtab + name, want, n);
}

/* 1 when a section names the Go toolchain, 0 if not, or -errno. A binary
 * without section headers (stripped hard) simply tells us nothing. */
static int has_go_section(int fd, const struct elf_info *ei)
{
	uint64_t stroff, strsize, off, size;
	uint32_t i, name;
	char *strtab = NULL;
	int rc, found = 0;

	if (!ei->shoff || !ei->shnum || ei->shstrndx >= ei->shnum)
		return 0;
	if (ei->shnum > MAX_SECTIONS)
		return -ENOEXEC;
	rc = section(fd, ei, ei->shstrndx, &stroff, &strsize, &name);
	if (rc)
		return rc;
	if (!strsize || strsize > MAX_SHSTRTAB)
		return 0;
	strtab = malloc((size_t)strsize);
	if (!strtab)
		return -ENOMEM;
	rc = read_at(fd, strtab, (size_t)strsize, stroff);
	if (rc)
		goto out;
	for (i = 1; i < ei->shnum; i++) {
		rc = section(fd, ei, i, &off, &size, &name);
		if (rc)
			goto out;
		if (name_is(strtab, strsize, name, ".note.go.buildid") ||
		    name_is(strtab, strsize, name, ".go.buildinfo")) {
			found = 1;
			break;
		}
	}
out:
	free(strtab);
	return rc ? rc : found;
}

int interp_check_elf(const char *path, uid_t ruid, gid_t rgid, unsigned *problems)
{
	struct elf_info ei;
	struct stat st;
	int fd, rc;

	*problems = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -ENOEXEC;
		goto out;
	}
	rc = read_ehdr(fd, &ei);
	if (rc)
		goto out;
	rc = has_interp(fd, &ei);
	if (rc < 0)
		goto out;
	if (!rc)
		*problems |= INTERP_STATIC;
	rc = has_go_section(fd, &ei);
	if (rc < 0)
		goto out;
	if (rc)
		*problems |= INTERP_GO;
	rc = 0;
	/* The kernel enters secure-execution mode only when the exec changes
	 * the ids; a set-uid-root program run by root is not affected. */
	if (((st.st_mode & S_ISUID) && st.st_uid != ruid) ||
	    ((st.st_mode & S_ISGID) && st.st_gid != rgid))
		*problems |= INTERP_SETID;
out:
	close(fd);
	return rc;
}

/* 0 when PATH is a regular file we may execute; else -errno as exec. */
static int executable(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0 ? -errno : 0;
}

int interp_resolve(const char *cmd, const char *pathenv, char *out, size_t len)
{
	const char *dir, *end;
	int rc, saw_eacces = 0, n;

	if (!cmd[0])
		return -ENOENT;
	if (strchr(cmd, '/')) {
		n = snprintf(out, len, "%s", cmd);
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		return executable(out);
	}
	if (!pathenv)
		pathenv = INTERP_DEFAULT_PATH;
	for (dir = pathenv;; dir = end + 1) {
		size_t dlen;

		end = strchrnul(dir, ':');
		dlen = (size_t)(end - dir);
		/* An empty entry means the current directory, as for execvp. */
		if (dlen)
			n = snprintf(out, len, "%.*s/%s", (int)dlen, dir, cmd);
		else
			n = snprintf(out, len, "%s", cmd);
		if (n >= 0 && (size_t)n < len) {
			rc = executable(out);
			if (!rc)
				return 0;
			if (rc == -EACCES)
				saw_eacces = 1;
		}
		if (!*end)
			break;
	}
	return saw_eacces ? -EACCES : -ENOENT;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The first word of S after blanks into WORD; returns what follows. */
static const char *next_word(const char *s, char *word, size_t len)
{
	size_t n = 0;

	while (is_blank(*s))
		s++;
	while (*s && !is_blank(*s)) {
		if (n + 1 < len)
			word[n++] = *s;
		s++;
	}
	word[n] = 0;
	return s;
}

int interp_script(const char *path, const char *pathenv, char *out, size_t len)
{
	char line[SHEBANG_MAX + 1], word[SHEBANG_MAX + 1], prog[SHEBANG_MAX + 1];
	const char *rest, *base;
	ssize_t n;
	int fd, rc, ok;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, line, SHEBANG_MAX);
	rc = -errno;
	close(fd);
	if (n < 0)
		return rc;
	line[n] = 0;
	if (n < 2 || line[0] != '#' || line[1] != '!')
		return -ENOEXEC;
	line[strcspn(line, "\r\n")] = 0;
	rest = next_word(line + 2, word, sizeof(word));
	if (!word[0])
		return -ENOEXEC;
	base = strrchr(word, '/');
	base = base ? base + 1 : word;
	if (strcmp(base, "env") != 0) {
		if ((size_t)snprintf(out, len, "%s", word) >= len)
			return -ENAMETOOLONG;
		return access(out, F_OK) < 0 ? -errno : 0;
	}
	/* env's options (-S, -i, ...) and VAR=value come before the program. */
	do {
		rest = next_word(rest, prog, sizeof(prog));
		ok = prog[0] && prog[0] != '-' && !strchr(prog, '=');
	} while (prog[0] && !ok);
	if (!ok)
		return -ENOEXEC;
	rc = interp_resolve(prog, pathenv, out, len);
	if (rc)
		snprintf(out, len, "%s", prog); /* what was not found, for messages */
	return rc;
}

int interp_check(const char *cmd, const char *pathenv, uid_t ruid, gid_t rgid,
		 struct interp_report *rep)
{
	int rc;

	memset(rep, 0, sizeof(*rep));
	rc = interp_resolve(cmd, pathenv, rep->file, sizeof(rep->file));
	if (rc)
		return rc;
	rc = interp_check_elf(rep->file, ruid, rgid, &rep->problems);
	if (rc != -ENOEXEC)
		return rc;
	rc = interp_script(rep->file, pathenv, rep->interp, sizeof(rep->interp));
	/* execvp hands a file that is neither ELF nor "#!" to /bin/sh. */
	if (rc == -ENOEXEC)
		rc = snprintf(rep->interp, sizeof(rep->interp), "/bin/sh") < 0 ? -EIO : 0;
	if (rc)
		return rc;
	/* The kernel ignores set-id bits on scripts: only the interpreter's
	 * own bits count, and they are checked below. */
	rc = interp_check_elf(rep->interp, ruid, rgid, &rep->problems);
	return rc == -ENOEXEC ? 0 : rc; /* an interpreter that is a script: stop */
}

const char *interp_problem_text(unsigned bit)
{
	switch (bit) {
	case INTERP_STATIC:
		return "is statically linked: no dynamic loader will load the shim, so its "
		       "sockets will not be recorded";
	case INTERP_SETID:
		return "is set-user-ID or set-group-ID: the dynamic loader ignores "
		       "LD_PRELOAD for it, so its sockets will not be recorded";
	case INTERP_GO:
		return "is a Go program: its runtime makes socket system calls without "
		       "libc, so few or none of its sockets will be recorded";
	default:
		return "cannot be interposed";
	}
}
