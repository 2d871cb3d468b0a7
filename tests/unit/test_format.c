/* Unit tests of tools/format.c: names, addresses, times, sizes, JSON and
 * terminal escaping, and whole event lines, including records with the
 * out-of-range values a corrupt segment can hold. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <cmocka.h>

#include "format.h"

/* 2023-11-14T22:13:20.123456789Z */
#define T0_NS 1700000000123456789LL
/* The header's clocks: realtime T0 when the monotonic clock read 1000 s. */
#define MONO0_NS 1000000000000LL

static const struct fmt_clockref clockref = {T0_NS, MONO0_NS};

static void rec_init(struct sockshim_record *r, int type)
{
	memset(r, 0, sizeof(*r));
	r->stamp = 2 * 41 + 2;
	r->ts_ns = (uint64_t)MONO0_NS + 1000; /* one microsecond after T0 */
	r->pid = 100;
	r->tid = 101;
	r->fd = 5;
	r->type = (uint16_t)type;
	r->inode = 12345;
}

static void rec_inet(struct sockshim_record *r)
{
	r->family = AF_INET;
	r->socktype = SOCK_STREAM;
	inet_pton(AF_INET, "127.0.0.1", r->local_ip);
	inet_pton(AF_INET, "10.1.2.3", r->peer_ip);
	r->local_port = 8080;
	r->peer_port = 51234;
	r->flags = SOCKSHIM_FLAG_LOCAL_KNOWN | SOCKSHIM_FLAG_PEER_KNOWN;
}

static void test_event_names(void **state)
{
	char list[256];

	(void)state;
	assert_string_equal(fmt_event_name(SOCKSHIM_EV_ACCEPT), "accept");
	assert_string_equal(fmt_event_name(SOCKSHIM_EV_PEER_EOF), "peer_eof");
	assert_string_equal(fmt_event_name(SOCKSHIM_EV_INHERIT), "inherit");
	assert_null(fmt_event_name(SOCKSHIM_EV_NONE));
	assert_null(fmt_event_name(SOCKSHIM_EV_COUNT));
	assert_null(fmt_event_name(65535));
	assert_int_equal(fmt_event_parse("close"), SOCKSHIM_EV_CLOSE);
	assert_int_equal(fmt_event_parse("nope"), -EINVAL);
	assert_int_equal(fmt_event_parse(""), -EINVAL);
	fmt_event_list(list, sizeof(list));
	assert_string_equal(list, "socket, bind, listen, accept, connect, shutdown, close, "
				  "peer_eof, dup, fork, exec, exit, inherit");
}

static void test_errno_name(void **state)
{
	char buf[64];

	(void)state;
	fmt_errno_name(buf, sizeof(buf), ECONNREFUSED);
	assert_string_equal(buf, "ECONNREFUSED");
	fmt_errno_name(buf, sizeof(buf), 100000);
	assert_string_equal(buf, "unknown(100000)");
}

static void test_addresses(void **state)
{
	struct sockshim_record r;
	char buf[FMT_ADDR_MAX];

	(void)state;
	rec_init(&r, SOCKSHIM_EV_ACCEPT);
	rec_inet(&r);
	assert_int_equal(fmt_addr(buf, sizeof(buf), &r, 0), 1);
	assert_string_equal(buf, "127.0.0.1:8080");
	assert_int_equal(fmt_addr(buf, sizeof(buf), &r, 1), 1);
	assert_string_equal(buf, "10.1.2.3:51234");

	r.family = AF_INET6;
	memset(r.local_ip, 0, 16);
	r.local_ip[15] = 1;
	r.local_port = 80;
	assert_int_equal(fmt_addr(buf, sizeof(buf), &r, 0), 1);
	assert_string_equal(buf, "[::1]:80");
	memset(r.peer_ip, 0xff, 16);
	r.peer_port = 65535;
	assert_int_equal(fmt_addr(buf, sizeof(buf), &r, 1), 1);
	assert_string_equal(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
	/* An IPv4-mapped address is the IPv4 address it is, as every
	 * command shows it. */
	memset(r.peer_ip, 0, 10);
	memcpy(r.peer_ip + 10, "\xff\xff\x7f\x00\x00\x01", 6);
	assert_int_equal(fmt_addr(buf, sizeof(buf), &r, 1), 1);
	assert_string_equal(buf, "127.0.0.1:65535");

	r.flags = SOCKSHIM_FLAG_LOCAL_KNOWN;
	assert_int_equal(fmt_addr(buf, sizeof(buf), &r, 1), 0);
	assert_string_equal(buf, "-");
	r.family = AF_UNIX;
	assert_int_equal(fmt_addr(buf, sizeof(buf), &r, 0), 0);
	r.family = 12345; /* corrupt */
	assert_int_equal(fmt_addr(buf, sizeof(buf), &r, 0), 0);
}

static void test_times(void **state)
{
	struct fmt_buf b;
	char buf[64];
	int64_t real;

	(void)state;
	assert_int_equal(fmt_realtime(&real, (uint64_t)MONO0_NS + 5, T0_NS, MONO0_NS), 0);
	assert_true(real == T0_NS + 5);
	/* A record stamped before the header (another process's clock). */
	assert_int_equal(fmt_realtime(&real, 0, T0_NS, MONO0_NS), 0);
	assert_true(real == T0_NS - MONO0_NS);
	assert_int_equal(fmt_realtime(&real, UINT64_MAX, T0_NS, MONO0_NS), -ERANGE);
	assert_int_equal(fmt_realtime(&real, (uint64_t)INT64_MAX, INT64_MAX, 0), -ERANGE);
	assert_int_equal(fmt_realtime(&real, 0, INT64_MIN, INT64_MAX), -ERANGE);

	fmt_buf_init(&b, buf, sizeof(buf));
	ob_iso8601(&b, T0_NS);
	assert_string_equal(buf, "2023-11-14T22:13:20.123456Z");
	fmt_buf_init(&b, buf, sizeof(buf));
	ob_iso8601(&b, 0);
	assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
	fmt_buf_init(&b, buf, sizeof(buf));
	ob_iso8601(&b, -1);
	assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
	/* JSON quoted; the ends of what 64-bit nanoseconds can say. */
	fmt_buf_init(&b, buf, sizeof(buf));
	ob_json_time(&b, T0_NS);
	assert_string_equal(buf, "\"2023-11-14T22:13:20.123456Z\"");
	fmt_buf_init(&b, buf, sizeof(buf));
	ob_json_time(&b, INT64_MAX);
	assert_string_equal(buf, "\"2262-04-11T23:47:16.854775Z\"");
	fmt_buf_init(&b, buf, sizeof(buf));
	ob_iso8601(&b, INT64_MIN);
	assert_string_equal(buf, "1677-09-21T00:12:43.145224Z");

	setenv("TZ", "UTC", 1);
	tzset();
	fmt_buf_init(&b, buf, sizeof(buf));
	ob_clock(&b, T0_NS);
	assert_string_equal(buf, "22:13:20.123456");
}

static void test_sizes_and_ages(void **state)
{
	char buf[32];

	(void)state;
	fmt_size(buf, sizeof(buf), 512);
	assert_string_equal(buf, "512B");
	fmt_size(buf, sizeof(buf), 1536);
	assert_string_equal(buf, "1.5K");
	fmt_size(buf, sizeof(buf), sockshim_ledger_offset(65536)); /* header + ring */
	assert_string_equal(buf, "8.0M");
	fmt_size(buf, sizeof(buf), UINT64_MAX);
	assert_string_equal(buf, "16.0E");

	fmt_age(buf, sizeof(buf), 45);
	assert_string_equal(buf, "45s");
	fmt_age(buf, sizeof(buf), 192);
	assert_string_equal(buf, "3m12s");
	fmt_age(buf, sizeof(buf), 2 * 3600 + 5 * 60 + 7);
	assert_string_equal(buf, "2h05m");
	fmt_age(buf, sizeof(buf), 3 * 86400 + 4 * 3600);
	assert_string_equal(buf, "3d04h");
	fmt_age(buf, sizeof(buf), -5);
	assert_string_equal(buf, "?");
}

static void json_of(char *out, size_t len, const char *s, size_t n)
{
	struct fmt_buf b;

	fmt_buf_init(&b, out, len);
	ob_json_str(&b, s, n);
}

static void test_json_escaping(void **state)
{
	char buf[256];

	(void)state;
	json_of(buf, sizeof(buf), "plain", 100);
	assert_string_equal(buf, "\"plain\"");
	json_of(buf, sizeof(buf), "a\"b\\c\nd\te\x01" "f\x7f", 100);
	assert_string_equal(buf, "\"a\\\"b\\\\c\\nd\\te\\u0001f\\u007f\"");
	/* Valid UTF-8 stays; stray, overlong and surrogate bytes do not. */
	json_of(buf, sizeof(buf), "caf\xc3\xa9 \xe2\x82\xac", 100);
	assert_string_equal(buf, "\"caf\xc3\xa9 \xe2\x82\xac\"");
	json_of(buf, sizeof(buf), "a\xff" "b\xc0\xaf" "c\xed\xa0\x80", 100);
	assert_string_equal(buf, "\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd\\ufffd\"");
	/* A sequence cut by the length limit is not valid either. */
	json_of(buf, sizeof(buf), "x\xc3\xa9", 2);
	assert_string_equal(buf, "\"x\\ufffd\"");
	/* No NUL within N: stops at N. */
	json_of(buf, sizeof(buf), "abcdef", 3);
	assert_string_equal(buf, "\"abc\"");
}

static void test_printable(void **state)
{
	struct fmt_buf b;
	char buf[128];

	(void)state;
	fmt_buf_init(&b, buf, sizeof(buf));
	ob_printable(&b, "/usr/bin/\x1b[31mred\\ caf\xc3\xa9 \xc2\x9b \xff", 100);
	assert_string_equal(buf, "/usr/bin/\\x1b[31mred\\x5c caf\xc3\xa9 \\xc2\\x9b \\xff");
}

static void test_buf_truncates(void **state)
{
	struct fmt_buf b;
	char buf[8];

	(void)state;
	fmt_buf_init(&b, buf, sizeof(buf));
	fmt_append(&b, "%s", "0123456789");
	assert_string_equal(buf, "0123456");
	fmt_append(&b, "%s", "more");
	assert_string_equal(buf, "0123456");
}

static void test_table_rows(void **state)
{
	struct sockshim_record r;
	char head[FMT_LINE_MAX], row[FMT_LINE_MAX];

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	fmt_table_header(head, sizeof(head));
	assert_true(!strncmp(head, "TIME ", 5));
	assert_non_null(strstr(head, "LOCAL -> PEER"));

	rec_init(&r, SOCKSHIM_EV_ACCEPT);
	rec_inet(&r);
	r.detail.accept.listen_fd = 3;
	r.detail.accept.listen_inode = 999;
	fmt_table_row(row, sizeof(row), &r, &clockref);
	assert_true(!strncmp(row, "22:13:20.123457 ", 16));
	assert_non_null(strstr(row, " accept "));
	assert_non_null(strstr(row, "127.0.0.1:8080        -> 10.1.2.3:51234"));
	assert_non_null(strstr(row, "listener fd 3 inode 999"));
	/* Columns line up with the header. */
	assert_int_equal(strstr(row, "100") + 3 - row, strstr(head, "PID") + 3 - head);
	assert_int_equal(strstr(row, "127.0.0.1") - row, strstr(head, "LOCAL") - head);

	rec_init(&r, SOCKSHIM_EV_CONNECT);
	rec_inet(&r);
	r.flags = SOCKSHIM_FLAG_LOCAL_KNOWN;
	r.ret = -1;
	r.err = ECONNREFUSED;
	fmt_table_row(row, sizeof(row), &r, &clockref);
	assert_non_null(strstr(row, "127.0.0.1:8080        -> -"));
	assert_non_null(strstr(row, "ret -1 ECONNREFUSED"));

	rec_init(&r, SOCKSHIM_EV_DUP);
	r.detail.dup.newfd = 9;
	r.detail.dup.cloexec = 1;
	fmt_table_row(row, sizeof(row), &r, &clockref);
	assert_non_null(strstr(row, "newfd 9 cloexec"));

	rec_init(&r, SOCKSHIM_EV_SHUTDOWN);
	r.detail.shutdown.how = SHUT_WR;
	fmt_table_row(row, sizeof(row), &r, &clockref);
	assert_non_null(strstr(row, "how SHUT_WR"));
	r.detail.shutdown.how = 77;
	fmt_table_row(row, sizeof(row), &r, &clockref);
	assert_non_null(strstr(row, "how unknown(77)"));

	rec_init(&r, SOCKSHIM_EV_CLOSE);
	r.detail.close.via = SOCKSHIM_CLOSE_VIA_CLOSE_RANGE;
	fmt_table_row(row, sizeof(row), &r, &clockref);
	assert_non_null(strstr(row, "via close_range"));
	r.detail.close.via = -3;
	fmt_table_row(row, sizeof(row), &r, &clockref);
	assert_non_null(strstr(row, "via unknown(-3)"));

	rec_init(&r, SOCKSHIM_EV_FORK);
	r.fd = -1;
	r.inode = 0;
	r.detail.fork.child_pid = 4123;
	fmt_table_row(row, sizeof(row), &r, &clockref);
	assert_non_null(strstr(row, "child 4123"));
	assert_non_null(strstr(row, "    - "));

	rec_init(&r, SOCKSHIM_EV_SOCKET);
	r.family = AF_UNIX;
	r.socktype = SOCK_STREAM;
	r.detail.socket.pair_fd = 6;
	fmt_table_row(row, sizeof(row), &r, &clockref);
	assert_non_null(strstr(row, " unix "));
	assert_non_null(strstr(row, "type stream pair fd 6"));
	r.detail.socket.pair_fd = -1;
	fmt_table_row(row, sizeof(row), &r, &clockref);
	assert_null(strstr(row, "pair"));

	rec_init(&r, SOCKSHIM_EV_EXEC);
	memset(r.detail.exec_path, 'a', sizeof(r.detail.exec_path)); /* no NUL */
	r.detail.exec_path[0] = '\x1b';
	fmt_table_row(row, sizeof(row), &r, &clockref);
	/* The whole field (SOCKSHIM_EXEC_PATH_MAX bytes), no more. */
	{
		const char *hit = strstr(row, "\\x1b" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");

		assert_non_null(hit);
		assert_int_not_equal(hit[4 + SOCKSHIM_EXEC_PATH_MAX - 1], 'a');
	}
	assert_null(strchr(row, '\x1b'));

	/* Corrupt type and time: printed, not trusted. */
	rec_init(&r, 999);
	r.ts_ns = UINT64_MAX;
	fmt_table_row(row, sizeof(row), &r, &clockref);
	assert_true(row[0] == '?');
	assert_non_null(strstr(row, "unknown(999)"));
	/* No trailing blanks. */
	assert_true(row[strlen(row) - 1] != ' ');
}

static void test_json_records(void **state)
{
	struct sockshim_record r;
	char line[FMT_LINE_MAX];

	(void)state;
	rec_init(&r, SOCKSHIM_EV_ACCEPT);
	rec_inet(&r);
	r.detail.accept.listen_fd = 3;
	r.detail.accept.listen_inode = 999;
	fmt_json_record(line, sizeof(line), &r, 41, &clockref);
	assert_string_equal(line,
			    "{\"type\":\"accept\",\"seq\":41,\"ts\":1000000001000,"
			    "\"time\":\"2023-11-14T22:13:20.123457Z\",\"pid\":100,\"tid\":101,"
			    "\"fd\":5,\"inode\":12345,\"family\":\"inet\",\"socktype\":\"stream\","
			    "\"local\":\"127.0.0.1:8080\",\"peer\":\"10.1.2.3:51234\","
			    "\"listener\":false,\"ret\":0,\"errno\":0,\"errno_name\":null,"
			    "\"listen_fd\":3,\"listen_inode\":999}");

	rec_init(&r, SOCKSHIM_EV_CONNECT);
	r.family = AF_INET6;
	r.ret = -1;
	r.err = ECONNREFUSED;
	fmt_json_record(line, sizeof(line), &r, 1, &clockref);
	assert_non_null(strstr(line, "\"family\":\"inet6\""));
	assert_non_null(strstr(line, "\"local\":null,\"peer\":null"));
	assert_non_null(strstr(line, "\"ret\":-1,\"errno\":111,\"errno_name\":\"ECONNREFUSED\""));

	rec_init(&r, SOCKSHIM_EV_DUP);
	r.detail.dup.newfd = 9;
	fmt_json_record(line, sizeof(line), &r, 1, &clockref);
	assert_non_null(strstr(line, "\"newfd\":9,\"cloexec\":false}"));

	rec_init(&r, SOCKSHIM_EV_SHUTDOWN);
	r.detail.shutdown.how = SHUT_RDWR;
	fmt_json_record(line, sizeof(line), &r, 1, &clockref);
	assert_non_null(strstr(line, "\"how\":\"SHUT_RDWR\"}"));

	rec_init(&r, SOCKSHIM_EV_CLOSE);
	r.detail.close.via = SOCKSHIM_CLOSE_VIA_EXEC;
	r.detail.close.refs_before = 2;
	r.detail.close.refs_after = 1;
	fmt_json_record(line, sizeof(line), &r, 1, &clockref);
	assert_non_null(strstr(line, "\"via\":\"exec\",\"refs_before\":2,\"refs_after\":1,"
				     "\"released\":false}"));
	fmt_table_row(line, sizeof(line), &r, &clockref);
	assert_non_null(strstr(line, "via exec refs 2->1 no effect"));
	r.detail.close.refs_before = 1;
	r.detail.close.refs_after = 0;
	fmt_table_row(line, sizeof(line), &r, &clockref);
	assert_non_null(strstr(line, "via exec refs 1->0 released"));
	r.detail.close.refs_before = -1;
	r.detail.close.refs_after = -1;
	fmt_json_record(line, sizeof(line), &r, 1, &clockref);
	assert_non_null(strstr(line, "\"refs_before\":null,\"refs_after\":null,\"released\":null}"));

	rec_init(&r, SOCKSHIM_EV_FORK);
	r.detail.fork.child_pid = 4123;
	fmt_json_record(line, sizeof(line), &r, 1, &clockref);
	assert_non_null(strstr(line, "\"child_pid\":4123}"));

	rec_init(&r, SOCKSHIM_EV_SOCKET);
	r.family = AF_UNIX;
	r.detail.socket.pair_fd = 6;
	fmt_json_record(line, sizeof(line), &r, 1, &clockref);
	assert_non_null(strstr(line, "\"family\":\"unix\""));
	assert_non_null(strstr(line, "\"pair_fd\":6}"));
	r.detail.socket.pair_fd = -1;
	fmt_json_record(line, sizeof(line), &r, 1, &clockref);
	assert_null(strstr(line, "pair_fd"));

	rec_init(&r, SOCKSHIM_EV_EXEC);
	snprintf(r.detail.exec_path, sizeof(r.detail.exec_path), "/bin/\"q\"\\\xff");
	fmt_json_record(line, sizeof(line), &r, 1, &clockref);
	assert_non_null(strstr(line, "\"path\":\"/bin/\\\"q\\\"\\\\\\ufffd\"}"));

	/* Corrupt values stay inside valid JSON. */
	rec_init(&r, 200);
	r.family = 99;
	r.socktype = 77;
	r.ts_ns = UINT64_MAX;
	fmt_json_record(line, sizeof(line), &r, 1, &clockref);
	assert_non_null(strstr(line, "\"type\":\"unknown(200)\""));
	assert_non_null(strstr(line, "\"time\":null"));
	assert_non_null(strstr(line, "\"family\":\"unknown(99)\""));
	assert_non_null(strstr(line, "\"socktype\":\"unknown(77)\""));
}

static void test_lost(void **state)
{
	char buf[128];

	(void)state;
	fmt_lost(buf, sizeof(buf), 12, 'o', 0);
	assert_string_equal(buf, "-- 12 events lost: ring overrun");
	fmt_lost(buf, sizeof(buf), 1, 't', 0);
	assert_string_equal(buf, "-- 1 events lost: torn record (writer died mid-write)");
	fmt_lost(buf, sizeof(buf), 12, 'o', 1);
	assert_string_equal(buf, "{\"type\":\"lost\",\"count\":12,\"reason\":\"overrun\"}");
	fmt_lost(buf, sizeof(buf), 3, 't', 1);
	assert_string_equal(buf, "{\"type\":\"lost\",\"count\":3,\"reason\":\"torn\"}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_names),    cmocka_unit_test(test_errno_name),
		cmocka_unit_test(test_addresses),      cmocka_unit_test(test_times),
		cmocka_unit_test(test_sizes_and_ages), cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_printable),      cmocka_unit_test(test_buf_truncates),
		cmocka_unit_test(test_table_rows),     cmocka_unit_test(test_json_records),
		cmocka_unit_test(test_lost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
