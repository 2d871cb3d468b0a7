/* The one output layer every command writes through: a string builder
 * (struct fmt_buf) and appenders for reports over thousands of sockets,
 * where one vsnprintf per field would cost more than all the system calls
 * together: strings, numbers, padded columns, addresses, times (the
 * calendar once per second), terminal and JSON escaping. Nothing here
 * knows the segment; tools/format.c builds event lines on top of it. */
#ifndef SOCKSHIM_OUTBUF_H
#define SOCKSHIM_OUTBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A small string builder: appends, truncates at LEN-1, stays terminated. */
struct fmt_buf {
	char *p;
	size_t len;
	size_t pos;
};

void fmt_buf_init(struct fmt_buf *b, char *p, size_t len);
/* printf into B: for the rare line; reports use the appenders below. */
void fmt_append(struct fmt_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The length of the valid UTF-8 sequence at S (at most N bytes), or 0.
 * Rejects overlong forms, surrogates and code points past U+10FFFF. */
size_t fmt_utf8_len(const unsigned char *s, size_t n);

/* N bytes of S (truncated at LEN-1). Inline: called some 80 times a
 * socket, mostly with literals, whose length and copy the compiler then
 * knows. */
static inline void ob_put(struct fmt_buf *b, const char *s, size_t n)
{
	size_t room;

	if (!b->len || b->pos + 1 >= b->len)
		return;
	room = b->len - 1 - b->pos;
	if (n > room)
		n = room;
	memcpy(b->p + b->pos, s, n);
	b->pos += n;
	b->p[b->pos] = 0;
}

static inline void ob_str(struct fmt_buf *b, const char *s)
{
	ob_put(b, s, strlen(s));
}

static inline void ob_char(struct fmt_buf *b, char c)
{
	if (!b->len || b->pos + 1 >= b->len)
		return;
	b->p[b->pos++] = c;
	b->p[b->pos] = 0;
}
void ob_u64(struct fmt_buf *b, uint64_t v);
void ob_i64(struct fmt_buf *b, int64_t v);
void ob_hex(struct fmt_buf *b, uint64_t v); /* "0x1f" */

/* Blanks up to column COL of the current line (at least one when MIN1). */
void ob_pad_to(struct fmt_buf *b, size_t col, int min1);
/* S right-aligned in WIDTH columns. */
void ob_rjust(struct fmt_buf *b, const char *s, size_t width);
/* V right-aligned in WIDTH columns. */
void ob_u64_rjust(struct fmt_buf *b, uint64_t v, size_t width);

/* S (at most N bytes, stops at NUL) for a terminal: control characters
 * (C1 included), backslash and bytes that are not UTF-8 as \xHH. */
void ob_printable(struct fmt_buf *b, const char *s, size_t n);
/* S (at most N bytes, stops at NUL) as a quoted JSON string: controls
 * escaped, invalid UTF-8 as U+FFFD, so the line stays valid JSON
 * whatever the bytes were. */
void ob_json_str(struct fmt_buf *b, const char *s, size_t n);

/* "1.2.3.4:80" or "[::1]:80". An IPv4-mapped IPv6 address
 * (::ffff:1.2.3.4, a dual-stack listener's IPv4 peer) is shown as the
 * IPv4 address it is, "1.2.3.4:80", by every command; JSON keeps the
 * socket's family apart. */
void ob_addr(struct fmt_buf *b, unsigned family, const uint8_t ip[16], unsigned port);

/* A wall-clock time in ns: local "HH:MM:SS.uuuuuu", or UTC ISO 8601
 * "2024-05-01T12:34:56.123456Z" ("?" for a year outside 0..9999). The
 * calendar conversion is done once per second and remembered. */
void ob_clock(struct fmt_buf *b, int64_t real_ns);
void ob_iso8601(struct fmt_buf *b, int64_t real_ns);
/* The ISO 8601 time as a JSON value: quoted, or null when it has none. */
void ob_json_time(struct fmt_buf *b, int64_t real_ns);

#endif
