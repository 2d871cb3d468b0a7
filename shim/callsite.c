/* Module lookup for call sites, with a small per-thread cache: servers
 * create their sockets from a handful of places, so after the first few
 * lookups dl_iterate_phdr is rarely walked again. */
#include <errno.h>
#include <link.h>
#include <unistd.h>
#include <string.h>

#include "callsite.h"

#define CACHE_SLOTS 8

struct module_range {
	uint64_t start, end, base;
	char path[128];
};

/* Per thread: no lock and no race; a few entries are enough for one
 * thread's call sites. */
static __thread struct module_range cache[CACHE_SLOTS] __attribute__((tls_model("initial-exec")));
static __thread unsigned cache_next __attribute__((tls_model("initial-exec")));

struct search {
	uint64_t addr;
	struct module_range found;
	int hit;
};

static int visit(struct dl_phdr_info *info, size_t size, void *data)
{
	struct search *s = data;
	int i;

	(void)size;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t start = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type != PT_LOAD || s->addr < start || s->addr >= start + ph->p_memsz)
			continue;
		s->found.start = start;
		s->found.end = start + ph->p_memsz;
		s->found.base = info->dlpi_addr;
		/* The main program has an empty name: ask the kernel. */
		if (info->dlpi_name && info->dlpi_name[0]) {
			strncpy(s->found.path, info->dlpi_name, sizeof(s->found.path) - 1);
		} else {
			ssize_t n = readlink("/proc/self/exe", s->found.path, sizeof(s->found.path) - 1);
			s->found.path[n > 0 ? n : 0] = 0;
		}
		s->hit = 1;
		return 1;
	}
	return 0;
}

/* The tail of SRC that fits LEN bytes, NUL-terminated. Only the string's
 * bytes are written (readers stop at the NUL): a ledger entry's module
 * path costs the cache lines its path needs, not the buffer's. */
static void copy_tail(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (!len)
		return;
	if (n >= len) {
		src += n - (len - 1);
		n = len - 1;
	}
	memcpy(dst, src, n);
	dst[n] = 0;
}

int callsite_resolve(uint64_t addr, char *path, size_t len, uint64_t *offset)
{
	struct search s;
	unsigned i;

	for (i = 0; i < CACHE_SLOTS; i++) {
		if (addr >= cache[i].start && addr < cache[i].end) {
			copy_tail(path, len, cache[i].path);
			*offset = addr - cache[i].base;
			return 0;
		}
	}
	memset(&s, 0, sizeof(s));
	s.addr = addr;
	dl_iterate_phdr(visit, &s);
	if (!s.hit)
		return -ENOENT;
	cache[cache_next++ % CACHE_SLOTS] = s.found;
	copy_tail(path, len, s.found.path);
	*offset = addr - s.found.base;
	return 0;
}
