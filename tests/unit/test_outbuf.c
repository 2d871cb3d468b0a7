/* Unit tests of tools/outbuf.c (the output layer) and tools/bigmem.c:
 * every escaper agrees byte for byte with a plain reference escaper
 * written here from the rules (one byte at a time, printf) over every
 * single byte and a set of UTF-8 edge cases, numbers are right at their
 * limits, and nothing is written past the buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bigmem.h"
#include "format.h"
#include "outbuf.h"

/* Inputs where escaping rules meet: quotes, backslashes, controls, DEL,
 * C1 controls, overlong and truncated UTF-8, surrogates, the last code
 * point, bytes never valid in UTF-8. */
static const char *const edge[] = {
	"plain ascii, nothing to do",
	"\"quoted\" and \\back\\slashed\\",
	"tab\there\nnewline\rcr\x01\x1f\x7f",
	"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	"\xc2\x80\xc2\x9f\xc2\xa0",
	"\xc0\xaf \xe0\x80\xaf \xed\xa0\x80 \xf4\x90\x80\x80",
	"\xf4\x8f\xbf\xbf end",
	"cut \xe2\x82",
	"\xff\xfe\x80",
	"",
};

/* The rules, plainly: JSON escapes quote, backslash, \n, \t, other
 * controls and DEL as \u00XX, invalid UTF-8 as U+FFFD. */
static void ref_json_str(struct fmt_buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k;

	fmt_append(b, "\"");
	while (i < n && u[i]) {
		unsigned char c = u[i];

		if (c == '"' || c == '\\')
			fmt_append(b, "\\%c", c), i++;
		else if (c == '\n')
			fmt_append(b, "\\n"), i++;
		else if (c == '\t')
			fmt_append(b, "\\t"), i++;
		else if (c < 0x20 || c == 0x7f)
			fmt_append(b, "\\u%04x", c), i++;
		else if ((k = fmt_utf8_len(u + i, strnlen(s + i, n - i))) == 0)
			fmt_append(b, "\\ufffd"), i++;
		else
			fmt_append(b, "%.*s", (int)k, s + i), i += k;
	}
	fmt_append(b, "\"");
}

/* A terminal: controls, C1 controls, backslash and invalid UTF-8 as \xHH. */
static void ref_printable(struct fmt_buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n && u[i]) {
		k = fmt_utf8_len(u + i, strnlen(s + i, n - i));
		if (k == 0 || u[i] < 0x20 || u[i] == 0x7f || u[i] == '\\' ||
		    (k == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0))
			fmt_append(b, "\\x%02x", u[i]), i++;
		else
			fmt_append(b, "%.*s", (int)k, s + i), i += k;
	}
}

static void agree(const char *s, size_t n)
{
	char want[512], got[512];
	struct fmt_buf w, g;

	fmt_buf_init(&w, want, sizeof(want));
	ref_json_str(&w, s, n);
	fmt_buf_init(&g, got, sizeof(got));
	ob_json_str(&g, s, n);
	assert_string_equal(got, want);

	fmt_buf_init(&w, want, sizeof(want));
	ref_printable(&w, s, n);
	fmt_buf_init(&g, got, sizeof(got));
	ob_printable(&g, s, n);
	assert_string_equal(got, want);
}

static void test_escapers_agree_on_every_byte(void **state)
{
	char s[4];
	int c;

	(void)state;
	for (c = 1; c < 256; c++) {
		s[0] = 'a';
		s[1] = (char)c;
		s[2] = 'z';
		s[3] = 0;
		agree(s, sizeof(s));
	}
}

static void test_escapers_agree_on_utf8_edges(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
		agree(edge[i], strlen(edge[i]) + 1);
		agree(edge[i], strlen(edge[i]) / 2); /* cut inside */
	}
}

static void test_json_escapes_exactly(void **state)
{
	char buf[128];
	struct fmt_buf b;

	(void)state;
	fmt_buf_init(&b, buf, sizeof(buf));
	ob_json_str(&b, "a\"b\\c\n\x01\xff", 16);
	assert_string_equal(buf, "\"a\\\"b\\\\c\\n\\u0001\\ufffd\"");
}

static void test_numbers(void **state)
{
	char buf[128];
	struct fmt_buf b;

	(void)state;
	fmt_buf_init(&b, buf, sizeof(buf));
	ob_u64(&b, 0);
	ob_char(&b, ' ');
	ob_u64(&b, UINT64_MAX);
	ob_char(&b, ' ');
	ob_i64(&b, INT64_MIN);
	ob_char(&b, ' ');
	ob_hex(&b, 0x1f);
	ob_char(&b, '|');
	ob_u64_rjust(&b, 42, 6);
	ob_char(&b, '|');
	ob_u64_rjust(&b, 1234567, 3); /* wider than the column: all of it */
	ob_char(&b, '|');
	assert_string_equal(buf, "0 18446744073709551615 -9223372036854775808 0x1f|    42|1234567|");
}

static void test_never_past_the_end(void **state)
{
	char buf[8];
	struct fmt_buf b;

	(void)state;
	memset(buf, 'X', sizeof(buf));
	fmt_buf_init(&b, buf, 6);
	ob_str(&b, "abc");
	ob_u64_rjust(&b, 7, 4);
	ob_json_str(&b, "zzzz", 4);
	assert_string_equal(buf, "abc  ");
	assert_int_equal(buf[6], 'X');
	assert_int_equal(buf[7], 'X');
}

static void test_pad_and_addresses(void **state)
{
	static const uint8_t v4[16] = {127, 0, 0, 1};
	static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
	static const uint8_t v6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	char buf[128];
	struct fmt_buf b;

	(void)state;
	fmt_buf_init(&b, buf, sizeof(buf));
	ob_str(&b, "ab");
	ob_pad_to(&b, 5, 1);
	ob_addr(&b, 2 /* AF_INET */, v4, 80);
	ob_pad_to(&b, 10, 1); /* already past: one blank */
	ob_addr(&b, 10 /* AF_INET6 */, mapped, 443);
	ob_char(&b, ' ');
	ob_addr(&b, 10, v6, 8080);
	assert_string_equal(buf, "ab   127.0.0.1:80 10.1.2.3:443 [::1]:8080");
}

static void test_big_arrays(void **state)
{
	size_t n = (4u << 20) / sizeof(uint64_t), i;
	uint64_t *v = big_calloc(n, sizeof(*v));

	(void)state;
	assert_non_null(v);
	for (i = 0; i < n; i += 4096)
		assert_int_equal(v[i], 0);
	for (i = 0; i < n; i++)
		v[i] = i;
	v = big_realloc(v, 2 * n * sizeof(*v));
	assert_non_null(v);
	for (i = 0; i < n; i += 1000)
		assert_int_equal(v[i], i);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapers_agree_on_every_byte),
		cmocka_unit_test(test_escapers_agree_on_utf8_edges),
		cmocka_unit_test(test_json_escapes_exactly),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_never_past_the_end),
		cmocka_unit_test(test_pad_and_addresses),
		cmocka_unit_test(test_big_arrays),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
