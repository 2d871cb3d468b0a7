/* Fast appenders into a struct fmt_buf for reports over thousands of
 * sockets, where one vsnprintf per field would cost more than all the
 * system calls together: strings, numbers, padded columns, addresses,
 * times (localtime once per second), terminal and JSON escaping. */
#ifndef SOCKSHIM_OUTBUF_H
#define SOCKSHIM_OUTBUF_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"

void ob_put(struct fmt_buf *b, const char *s, size_t n);
void ob_str(struct fmt_buf *b, const char *s);
void ob_char(struct fmt_buf *b, char c);
void ob_u64(struct fmt_buf *b, uint64_t v);
void ob_i64(struct fmt_buf *b, int64_t v);
void ob_hex(struct fmt_buf *b, uint64_t v); /* "0x1f" */

/* Blanks up to column COL of the current line (at least one when MIN1). */
void ob_pad_to(struct fmt_buf *b, size_t col, int min1);
/* S right-aligned in WIDTH columns. */
void ob_rjust(struct fmt_buf *b, const char *s, size_t width);
/* V right-aligned in WIDTH columns. */
void ob_u64_rjust(struct fmt_buf *b, uint64_t v, size_t width);

/* S (at most N bytes) for a terminal, as fmt_printable does. */
void ob_printable(struct fmt_buf *b, const char *s, size_t n);
/* S (at most N bytes) as a quoted JSON string, as fmt_json_str does. */
void ob_json_str(struct fmt_buf *b, const char *s, size_t n);

/* "1.2.3.4:80" or "[::1]:80"; an IPv4-mapped IPv6 address as IPv4. */
void ob_addr(struct fmt_buf *b, unsigned family, const uint8_t ip[16], unsigned port);

/* A wall-clock time in ns: local "HH:MM:SS.uuuuuu", or UTC ISO 8601
 * "2024-05-01T12:34:56.123456Z". The calendar conversion is done once
 * per second and remembered. */
void ob_clock(struct fmt_buf *b, int64_t real_ns);
void ob_iso8601(struct fmt_buf *b, int64_t real_ns);

#endif
