/* Call sites to names: module path + offset -> function+offset, and
 * file:line where the module (or its separate debug file) has DWARF line
 * information. Uses libdwfl from elfutils; each module is opened once and
 * each distinct call site resolved once, whatever the number of sockets. */
#ifndef SOCKSHIM_SYMBOLIZE_H
#define SOCKSHIM_SYMBOLIZE_H

#include <stdint.h>

#include "outbuf.h"
#include "sockshim/layout.h"

struct sym_info {
	char module[SOCKSHIM_MODULE_MAX + 1];
	uint64_t offset;   /* within the module, as the ledger recorded it */
	int have_func;
	char func[256];
	uint64_t func_off; /* from the function's start */
	int have_line;
	char file[512];
	int line;
	char why[128];     /* when nothing was found: the reason */
	char text[1024];   /* "handle_conn+0x1c (server.c:88) in /usr/bin/x" */
	/* The JSON members from "function" to "text" (sym_json_members),
	 * rendered once per call site: 10,000 sockets of one call site print
	 * the same. NULL only when there was no memory for it. */
	char *json;
};

struct symbolizer;

/* 0 or -ENOMEM. */
int symbolizer_new(struct symbolizer **out);
void symbolizer_free(struct symbolizer *s);

/* The call site at OFFSET (a return address relative to the module's load
 * base) in MODULE (a path, at most SOCKSHIM_MODULE_MAX bytes, need not be
 * terminated). Never NULL, except on ENOMEM: an unknown module or symbol
 * still gets a text naming what is known. The result lives as long as S.
 * Safe to call from several threads at once. */
const struct sym_info *symbolize(struct symbolizer *s, const char *module, uint64_t offset);

/* SI as JSON members: ,"function":..,"function_offset":..,"file":..,
 * "line":..,"text":.. (null where unknown). SI->json holds the same. */
void sym_json_members(struct fmt_buf *b, const struct sym_info *si);

#endif
