/* Appenders without printf: closewait prints thousands of sockets, and a
 * vsnprintf per field was most of its time. Same truncation contract as
 * fmt_append: never past LEN-1, always terminated. Escaping follows
 * format.c's rules byte for byte. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "outbuf.h"

#define NS_PER_SEC 1000000000LL
#define NS_PER_USEC 1000LL

void fmt_buf_init(struct fmt_buf *b, char *p, size_t len)
{
	b->p = p;
	b->len = len;
	b->pos = 0;
	if (len)
		p[0] = 0;
}

void fmt_append(struct fmt_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->pos + 1 >= b->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->pos, b->len - b->pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	b->pos += (size_t)n;
	if (b->pos >= b->len)
		b->pos = b->len - 1;
}

size_t fmt_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

static void blanks(struct fmt_buf *b, size_t n);

/* V's digits, written backwards to END: where they start. Two digits a
 * division: a report prints some 24 numbers a socket. */
static char *u64_digits(char *end, uint64_t v)
{
	static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
				       "25262728293031323334353637383940414243444546474849"
				       "50515253545556575859606162636465666768697071727374"
				       "75767778798081828384858687888990919293949596979899";

	while (v >= 100) {
		unsigned r = (unsigned)(v % 100);

		v /= 100;
		end -= 2;
		memcpy(end, pairs + 2 * r, 2);
	}
	if (v >= 10) {
		end -= 2;
		memcpy(end, pairs + 2 * v, 2);
	} else {
		*--end = (char)('0' + v);
	}
	return end;
}

static size_t u64_width(uint64_t v)
{
	size_t n = 1;

	for (; v >= 10000; v /= 10000)
		n += 4;
	return n + (v >= 10) + (v >= 100) + (v >= 1000);
}

/* V right-aligned in WIDTH columns (0: as it is). */
void ob_u64_rjust(struct fmt_buf *b, uint64_t v, size_t width)
{
	size_t n = u64_width(v);
	char d[24];

	if (n < width)
		blanks(b, width - n);
	if (b->len && b->pos + n < b->len) { /* all of it fits: in place */
		u64_digits(b->p + b->pos + n, v);
		b->pos += n;
		b->p[b->pos] = 0;
		return;
	}
	ob_put(b, u64_digits(d + sizeof(d), v), n);
}

void ob_u64(struct fmt_buf *b, uint64_t v)
{
	ob_u64_rjust(b, v, 0);
}

void ob_i64(struct fmt_buf *b, int64_t v)
{
	if (v < 0) {
		ob_char(b, '-');
		ob_u64(b, (uint64_t)0 - (uint64_t)v);
	} else {
		ob_u64(b, (uint64_t)v);
	}
}

void ob_hex(struct fmt_buf *b, uint64_t v)
{
	static const char x[] = "0123456789abcdef";
	char d[20];
	size_t i = sizeof(d);

	do {
		d[--i] = x[v & 15];
		v >>= 4;
	} while (v);
	ob_put(b, "0x", 2);
	ob_put(b, d + i, sizeof(d) - i);
}

static void blanks(struct fmt_buf *b, size_t n)
{
	static const char sp[] = "                                                                ";

	while (n) {
		size_t k = n < sizeof(sp) - 1 ? n : sizeof(sp) - 1;

		ob_put(b, sp, k);
		n -= k;
	}
}

void ob_pad_to(struct fmt_buf *b, size_t col, int min1)
{
	const char *nl = b->pos ? memrchr(b->p, '\n', b->pos) : NULL;
	size_t start = nl ? (size_t)(nl - b->p) + 1 : 0, at = b->pos - start;

	if (at < col)
		blanks(b, col - at);
	else if (min1)
		blanks(b, 1);
}

void ob_rjust(struct fmt_buf *b, const char *s, size_t width)
{
	size_t n = strlen(s);

	if (n < width)
		blanks(b, width - n);
	ob_put(b, s, n);
}


static void hex_escape(struct fmt_buf *b, const char *pre, unsigned char c, int width)
{
	static const char x[] = "0123456789abcdef";
	char e[8];
	size_t n = 0;

	while (*pre)
		e[n++] = *pre++;
	if (width == 4) {
		e[n++] = '0';
		e[n++] = '0';
	}
	e[n++] = x[c >> 4];
	e[n++] = x[c & 15];
	ob_put(b, e, n);
}

/* Bytes copied as they are: printable ASCII but the backslash (PLAIN_TEXT),
 * and for JSON not the quote either (PLAIN_JSON). A table, because a
 * report over 10,000 sockets escapes megabytes. */
#define PLAIN_TEXT 0x1
#define PLAIN_JSON 0x2
#define PLAIN_RANGE(lo, hi) [lo... hi] = PLAIN_TEXT | PLAIN_JSON
static const uint8_t plain[256] = {
	PLAIN_RANGE(0x20, 0x21), ['"'] = PLAIN_TEXT, PLAIN_RANGE(0x23, 0x5b),
	PLAIN_RANGE(0x5d, 0x7e),
};

void ob_printable(struct fmt_buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run, k;

	n = strnlen(s, n);
	while (i < n) {
		for (run = i; run < n && (plain[u[run]] & PLAIN_TEXT); run++)
			;
		ob_put(b, s + i, run - i);
		i = run;
		if (i >= n)
			break;
		k = fmt_utf8_len(u + i, n - i);
		/* C1 controls (U+0080..U+009F) drive terminals as C0 ones do. */
		if (k <= 1 || (k == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0)) {
			hex_escape(b, "\\x", u[i], 2);
			i++;
		} else {
			ob_put(b, s + i, k);
			i += k;
		}
	}
}

void ob_json_str(struct fmt_buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run, k;

	n = strnlen(s, n);
	ob_char(b, '"');
	while (i < n) {
		for (run = i; run < n && (plain[u[run]] & PLAIN_JSON); run++)
			;
		ob_put(b, s + i, run - i);
		i = run;
		if (i >= n)
			break;
		if (u[i] == '"' || u[i] == '\\') {
			ob_char(b, '\\');
			ob_char(b, (char)u[i]);
			i++;
		} else if (u[i] == '\n') {
			ob_put(b, "\\n", 2);
			i++;
		} else if (u[i] == '\t') {
			ob_put(b, "\\t", 2);
			i++;
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			hex_escape(b, "\\u", u[i], 4);
			i++;
		} else if ((k = fmt_utf8_len(u + i, n - i)) == 0) {
			ob_put(b, "\\ufffd", 6);
			i++;
		} else {
			ob_put(b, s + i, k);
			i += k;
		}
	}
	ob_char(b, '"');
}

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void ipv4(struct fmt_buf *b, const uint8_t *ip)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (i)
			ob_char(b, '.');
		ob_u64(b, ip[i]);
	}
}

void ob_addr(struct fmt_buf *b, unsigned family, const uint8_t ip[16], unsigned port)
{
	char a[INET6_ADDRSTRLEN];

	if (family == AF_INET) {
		ipv4(b, ip);
	} else if (family == AF_INET6 && !memcmp(ip, v4mapped, sizeof(v4mapped))) {
		ipv4(b, ip + 12);
	} else if (family == AF_INET6 && inet_ntop(AF_INET6, ip, a, sizeof(a))) {
		ob_char(b, '[');
		ob_str(b, a);
		ob_char(b, ']');
	} else {
		ob_char(b, '?');
	}
	ob_char(b, ':');
	ob_u64(b, port);
}

static void split_ns(int64_t ns, time_t *sec, long *usec)
{
	int64_t s = ns / NS_PER_SEC, r = ns % NS_PER_SEC;

	if (r < 0) {
		r += NS_PER_SEC;
		s--;
	}
	*sec = (time_t)s;
	*usec = (long)(r / NS_PER_USEC);
}

static void two(char *p, int v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

static void micros(struct fmt_buf *b, long usec)
{
	char d[7];
	int i;

	d[0] = '.';
	for (i = 6; i >= 1; i--) {
		d[i] = (char)('0' + usec % 10);
		usec /= 10;
	}
	ob_put(b, d, sizeof(d));
}

void ob_clock(struct fmt_buf *b, int64_t real_ns)
{
	static __thread time_t last = -1;
	static __thread char hms[8];
	static __thread int ok;
	struct tm tm;
	time_t sec;
	long usec;

	split_ns(real_ns, &sec, &usec);
	if (sec != last) {
		last = sec;
		ok = localtime_r(&sec, &tm) != NULL;
		if (ok) {
			two(hms, tm.tm_hour);
			hms[2] = ':';
			two(hms + 3, tm.tm_min);
			hms[5] = ':';
			two(hms + 6, tm.tm_sec);
		}
	}
	if (!ok) {
		ob_char(b, '?');
		return;
	}
	ob_put(b, hms, sizeof(hms));
	micros(b, usec);
}

/* DATE (19 bytes, "2024-05-01T12:34:56") and the microseconds of REAL_NS
 * in UTC; 0 when the year is not one ISO 8601 writes in four digits. The
 * calendar conversion is done once per second and remembered. */
static int iso_parts(int64_t real_ns, const char **date_out, long *usec)
{
	static __thread time_t last = -1;
	static __thread char date[19];
	static __thread int ok;
	struct tm tm;
	time_t sec;

	split_ns(real_ns, &sec, usec);
	if (sec != last) {
		last = sec;
		ok = gmtime_r(&sec, &tm) != NULL && tm.tm_year + 1900 >= 0 &&
		     tm.tm_year + 1900 <= 9999;
		if (ok) {
			int y = tm.tm_year + 1900;

			two(date, y / 100);
			two(date + 2, y % 100);
			date[4] = '-';
			two(date + 5, tm.tm_mon + 1);
			date[7] = '-';
			two(date + 8, tm.tm_mday);
			date[10] = 'T';
			two(date + 11, tm.tm_hour);
			date[13] = ':';
			two(date + 14, tm.tm_min);
			date[16] = ':';
			two(date + 17, tm.tm_sec);
		}
	}
	*date_out = date;
	return ok;
}

void ob_iso8601(struct fmt_buf *b, int64_t real_ns)
{
	const char *date;
	long usec;

	if (!iso_parts(real_ns, &date, &usec)) {
		ob_char(b, '?');
		return;
	}
	ob_put(b, date, 19);
	micros(b, usec);
	ob_char(b, 'Z');
}

void ob_json_time(struct fmt_buf *b, int64_t real_ns)
{
	const char *date;
	long usec;

	if (!iso_parts(real_ns, &date, &usec)) {
		ob_put(b, "null", 4);
		return;
	}
	ob_char(b, '"');
	ob_put(b, date, 19);
	micros(b, usec);
	ob_put(b, "Z\"", 2);
}
