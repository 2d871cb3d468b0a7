/* libFuzzer harness of the /proc parsers: procfd_parse_socket_link (the
 * targets of /proc/PID/fd links) and procfd_parse_stat (/proc/PID/stat)
 * of tools/procfd.c, and shm_users_parse_maps_line (a /proc/PID/maps
 * line) of tools/shm_users.c. Each gets the input in a buffer of exactly
 * its length, as read(2) leaves it (unterminated, except for the maps
 * line, which getline terminates), so ASan sees any read past it.
 * Asserts: an accepted link is exactly "socket:[N]" with N its decimal
 * inode; an accepted stat has a terminated name of at most 15 bytes found
 * between the first '(' and the last ')', its one-letter state and
 * numeric fields; an accepted maps line is a writable mapping naming a
 * path under /dev/shm/sockshim.
 *
 * Input: u8 which (0: fd link, 1: stat, 2: maps line; others: all three
 * in turn), then the text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "procfd.h"
#include "shm_users.h"
#include "sockshim/layout.h"

#define SEG_PATH_PREFIX SOCKSHIM_SHM_DIR "/" SOCKSHIM_SHM_PREFIX

static void fuzz_link(const char *buf, size_t len)
{
	static const char pre[] = "socket:[";
	char again[32];
	uint64_t inode = 0;

	if (procfd_parse_socket_link(buf, len, &inode))
		return;
	snprintf(again, sizeof(again), "socket:[%llu]", (unsigned long long)inode);
	/* Leading zeros are the one spelling that does not read back. */
	if (len == strlen(again)) {
		FUZZ_CHECK(!memcmp(buf, again, len), "\"%.*s\" read as inode %llu", (int)len, buf,
			   (unsigned long long)inode);
	} else {
		size_t i;

		FUZZ_CHECK(len > sizeof(pre) && !memcmp(buf, pre, sizeof(pre) - 1) &&
				   buf[len - 1] == ']',
			   "\"%.*s\" accepted", (int)len, buf);
		for (i = sizeof(pre) - 1; i < len - 1; i++)
			FUZZ_CHECK(buf[i] >= '0' && buf[i] <= '9', "\"%.*s\" accepted", (int)len, buf);
	}
}

static void fuzz_stat(const char *buf, size_t len)
{
	struct procfd_stat st;
	const char *open, *close = NULL, *p;
	size_t n;

	if (procfd_parse_stat(buf, len, &st))
		return;
	open = memchr(buf, '(', len);
	FUZZ_CHECK(open, "stat without '(' accepted");
	for (p = open + 1; p < buf + len; p++)
		if (*p == ')')
			close = p;
	FUZZ_CHECK(close && close + 2 < buf + len && close[1] == ' ', "stat without ') ' accepted");
	/* The name's bytes (the kernel's never hold a NUL, these may), cut
	 * to what the kernel keeps, then the terminator. */
	n = (size_t)(close - open - 1);
	if (n > sizeof(st.comm) - 1)
		n = sizeof(st.comm) - 1;
	FUZZ_CHECK(!memcmp(st.comm, open + 1, n) && !st.comm[n],
		   "name not the %zu bytes between the parentheses", n);
	FUZZ_CHECK(st.state == close[2] && close[3] == ' ', "state '%c' of \"%.*s\"", st.state,
		   (int)len, buf);
}

static int blank(char c)
{
	return c && strchr(" \t\n\v\f\r", c);
}

static void fuzz_maps(const char *line)
{
	const char *p = line, *path;
	dev_t dev;
	ino_t ino;

	if (!shm_users_parse_maps_line(line, &dev, &ino))
		return;
	/* "ADDR PERMS OFFSET DEV INODE PATH": the permissions (the second
	 * field) are writable, and the segment prefix follows. (Where the
	 * path starts is the kernel's layout, which sscanf takes on trust.) */
	while (blank(*p))
		p++;
	while (*p && !blank(*p))
		p++;
	while (blank(*p))
		p++;
	FUZZ_CHECK(p[0] && p[1] == 'w', "read-only mapping accepted: \"%s\"", line);
	path = strstr(p, SEG_PATH_PREFIX);
	FUZZ_CHECK(path, "a mapping of no segment accepted: \"%s\"", line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t which;
	char *buf;
	size_t len;

	if (!size)
		return 0;
	which = data[0];
	len = size - 1;
	/* Exactly the text's bytes (malloc(0) is a valid, empty buffer). */
	buf = malloc(len ? len : 1);
	FUZZ_CHECK(buf, "out of memory");
	memcpy(buf, data + 1, len);
	if (which == 0 || which > 2)
		fuzz_link(buf, len);
	if (which == 1 || which > 2)
		fuzz_stat(buf, len);
	free(buf);
	if (which == 2 || which > 2) {
		/* getline's line: terminated, and may hold NULs of its own. */
		buf = malloc(len + 1);
		FUZZ_CHECK(buf, "out of memory");
		memcpy(buf, data + 1, len);
		buf[len] = 0;
		fuzz_maps(buf);
		free(buf);
	}
	return 0;
}
