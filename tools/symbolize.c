/* Symbolization with libdwfl: one offline Dwfl per module path (the file
 * is opened without following FIFOs or devices: the path comes from the
 * untrusted segment), a cache of answers keyed by (module, offset). The
 * module on disk may have been replaced since the call was recorded; we
 * cannot tell, and report what the file says now. */
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "uthash_int.h"

#include "format.h"
#include "symbolize.h"

struct sym_module {
	char path[SOCKSHIM_MODULE_MAX + 1];
	Dwfl *dwfl; /* NULL when the module could not be opened */
	Dwfl_Module *mod;
	int is_exec;         /* ET_EXEC: fixed addresses */
	uint64_t exec_base;  /* its lowest PT_LOAD address, page aligned */
	char why[96];
	UT_hash_handle hh;
};

struct sym_key {
	uint64_t offset;
	char module[SOCKSHIM_MODULE_MAX + 1];
};

struct sym_entry {
	struct sym_key key;
	struct sym_info info;
	UT_hash_handle hh;
};

struct symbolizer {
	struct sym_module *modules;
	struct sym_entry *entries;
	struct sym_entry *last; /* sockets come in runs from one call site */
	pthread_mutex_t lock;   /* several threads may format at once */
};

static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

int symbolizer_new(struct symbolizer **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	pthread_mutex_init(&(*out)->lock, NULL);
	return 0;
}

void symbolizer_free(struct symbolizer *s)
{
	struct sym_module *m;
	struct sym_entry *e;

	if (!s)
		return;
	/* The analyzer loses track of the list links inside HASH_DEL. */
	while ((m = s->modules)) {
		HASH_DEL(s->modules, m); // NOLINT(clang-analyzer-unix.Malloc)
		if (m->dwfl)
			dwfl_end(m->dwfl);
		free(m);
	}
	while ((e = s->entries)) {
		HASH_DEL(s->entries, e); // NOLINT(clang-analyzer-unix.Malloc)
		free(e->info.json);
		free(e);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* An ET_EXEC's call site may be recorded as an absolute address (its load
 * bias is 0) or relative to its first mapping: remember where that is. */
static void note_exec_base(struct sym_module *m)
{
	GElf_Addr bias;
	GElf_Ehdr eh;
	GElf_Phdr ph;
	uint64_t low = UINT64_MAX;
	size_t n, i;
	Elf *elf = dwfl_module_getelf(m->mod, &bias);

	if (!elf || !gelf_getehdr(elf, &eh) || eh.e_type != ET_EXEC)
		return;
	if (elf_getphdrnum(elf, &n))
		return;
	for (i = 0; i < n; i++)
		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_vaddr < low)
			low = ph.p_vaddr;
	if (low == UINT64_MAX)
		return;
	m->is_exec = 1;
	m->exec_base = low & ~(uint64_t)0xfff;
}

static void open_module(struct sym_module *m)
{
	struct stat st;
	int fd;

	if (m->path[0] != '/') {
		snprintf(m->why, sizeof(m->why), "module path not absolute");
		return;
	}
	/* O_NONBLOCK: a FIFO planted at the path must not hang us. */
	fd = open(m->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(m->why, sizeof(m->why), "cannot open module: %s", strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(m->why, sizeof(m->why), "module is not a regular file");
		close(fd);
		return;
	}
	m->dwfl = dwfl_begin(&callbacks);
	if (!m->dwfl) {
		snprintf(m->why, sizeof(m->why), "libdwfl: %s", dwfl_errmsg(-1));
		close(fd);
		return;
	}
	/* Placed at 0: module addresses are the file's own (p_vaddr). */
	m->mod = dwfl_report_elf(m->dwfl, m->path, m->path, fd, 0, false);
	if (!m->mod) {
		snprintf(m->why, sizeof(m->why), "not an ELF file we can read: %s",
			 dwfl_errmsg(-1));
		close(fd); /* only consumed on success */
		dwfl_end(m->dwfl);
		m->dwfl = NULL;
		return;
	}
	dwfl_report_end(m->dwfl, NULL, NULL);
	note_exec_base(m);
}

static struct sym_module *get_module(struct symbolizer *s, const char *path)
{
	struct sym_module *m;

	HASH_FIND_STR(s->modules, path, m);
	if (m)
		return m;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	snprintf(m->path, sizeof(m->path), "%s", path);
	open_module(m);
	HASH_ADD_STR(s->modules, path, m);
	return m;
}

static void resolve(struct sym_module *m, struct sym_info *in)
{
	GElf_Off off = 0;
	GElf_Sym sym;
	Dwarf_Addr addr = in->offset, la;
	Dwfl_Line *line;
	const char *name, *file;
	int lineno = 0;

	if (!m->dwfl) {
		snprintf(in->why, sizeof(in->why), "%s", m->why);
		return;
	}
	if (m->is_exec && addr < m->exec_base)
		addr += m->exec_base;
	name = dwfl_module_addrinfo(m->mod, addr, &off, &sym, NULL, NULL, NULL);
	if (name) {
		in->have_func = 1;
		snprintf(in->func, sizeof(in->func), "%s", name);
		in->func_off = off;
	}
	/* A return address points after the call: its line is the one of the
	 * byte before. */
	line = addr ? dwfl_module_getsrc(m->mod, addr - 1) : NULL;
	file = line ? dwfl_lineinfo(line, &la, &lineno, NULL, NULL, NULL) : NULL;
	if (file && lineno > 0) {
		in->have_line = 1;
		snprintf(in->file, sizeof(in->file), "%s", file);
		in->line = lineno;
	}
	if (!in->have_func && !in->have_line)
		snprintf(in->why, sizeof(in->why), "no symbol at this address (stripped?)");
}

static void make_text(struct sym_info *in)
{
	struct fmt_buf b;

	fmt_buf_init(&b, in->text, sizeof(in->text));
	if (in->have_func)
		fmt_append(&b, "%s+0x%llx", in->func, (unsigned long long)in->func_off);
	else
		fmt_append(&b, "0x%llx", (unsigned long long)in->offset);
	if (in->have_line)
		fmt_append(&b, " (%s:%d)", in->file, in->line);
	if (in->module[0]) {
		fmt_append(&b, " in ");
		ob_printable(&b, in->module, sizeof(in->module));
	}
	if (!in->have_func && !in->have_line && in->why[0])
		fmt_append(&b, " [%s]", in->why);
}

void sym_json_members(struct fmt_buf *b, const struct sym_info *si)
{
	ob_str(b, ",\"function\":");
	if (si->have_func) {
		ob_json_str(b, si->func, sizeof(si->func));
		ob_str(b, ",\"function_offset\":");
		ob_u64(b, si->func_off);
	} else {
		ob_str(b, "null,\"function_offset\":null");
	}
	ob_str(b, ",\"file\":");
	if (si->have_line) {
		ob_json_str(b, si->file, sizeof(si->file));
		ob_str(b, ",\"line\":");
		ob_i64(b, si->line);
	} else {
		ob_str(b, "null,\"line\":null");
	}
	ob_str(b, ",\"text\":");
	if (si->text[0])
		ob_json_str(b, si->text, sizeof(si->text));
	else
		ob_put(b, "null", 4);
}

/* Room for the members: each byte of the strings escaped (\u00XX at
 * most), and the names and numbers. */
#define JSON_ROOM (6 * (sizeof(((struct sym_info *)0)->func) +                 \
			 sizeof(((struct sym_info *)0)->file) +                 \
			 sizeof(((struct sym_info *)0)->text)) +                \
		   256)

static void make_json(struct sym_info *in)
{
	char *room = malloc(JSON_ROOM);
	struct fmt_buf b;

	if (!room)
		return;
	fmt_buf_init(&b, room, JSON_ROOM);
	sym_json_members(&b, in);
	in->json = strdup(room);
	free(room);
}

static const struct sym_info *symbolize_locked(struct symbolizer *s, const char *module,
					       uint64_t offset)
{
	struct sym_module *m;
	struct sym_entry *e;
	struct sym_key key;

	if (s->last && s->last->key.offset == offset &&
	    !strncmp(s->last->key.module, module, SOCKSHIM_MODULE_MAX))
		return &s->last->info;
	memset(&key, 0, sizeof(key)); /* the padding is part of the hash key */
	key.offset = offset;
	memcpy(key.module, module, strnlen(module, SOCKSHIM_MODULE_MAX));
	HASH_FIND(hh, s->entries, &key, sizeof(key), e);
	if (e) {
		s->last = e;
		return &e->info;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = key;
	memcpy(e->info.module, key.module, sizeof(e->info.module));
	e->info.offset = offset;
	if (!key.module[0]) {
		snprintf(e->info.why, sizeof(e->info.why), "module unknown");
	} else {
		m = get_module(s, key.module);
		if (!m) {
			free(e);
			return NULL;
		}
		resolve(m, &e->info);
	}
	make_text(&e->info);
	make_json(&e->info);
	HASH_ADD(hh, s->entries, key, sizeof(key), e);
	s->last = e;
	return &e->info;
}

const struct sym_info *symbolize(struct symbolizer *s, const char *module, uint64_t offset)
{
	const struct sym_info *si;

	pthread_mutex_lock(&s->lock);
	si = symbolize_locked(s, module, offset);
	pthread_mutex_unlock(&s->lock);
	return si;
}
