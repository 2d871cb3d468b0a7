/* Unit tests of SOCKSHIM_* parsing (shim/config.c): defaults, valid values,
 * and for each invalid value the default (an invalid session name: its
 * mapped name), a warning that names the variable and shows the value with
 * no raw control byte, and the count of invalid values; which variables
 * were given, and each written back as it is in effect (config_entry). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sockshim/config.h"
#include "sockshim/segment.h"

#define DEFAULT_RING (1u << SOCKSHIM_RING_DEFAULT_SHIFT)

static void expect_defaults(const struct shim_config *c)
{
	assert_string_equal(c->session, SOCKSHIM_DEFAULT_SESSION);
	assert_int_equal(c->session_mapped, 0);
	assert_int_equal(c->ring_capacity, DEFAULT_RING);
	assert_int_equal(c->log_level, LOG_WARN);
}

/* The environment config_parse sees: set by parse(), read by lookup(). */
static const char *env_session, *env_ring, *env_log, *env_max_sockets, *env_accept,
	*env_follow;

static const char *lookup(const char *name)
{
	if (!strcmp(name, "SOCKSHIM_SESSION"))
		return env_session;
	if (!strcmp(name, "SOCKSHIM_RING_EVENTS"))
		return env_ring;
	if (!strcmp(name, "SOCKSHIM_LOG"))
		return env_log;
	if (!strcmp(name, "SOCKSHIM_MAX_SOCKETS"))
		return env_max_sockets;
	if (!strcmp(name, "SOCKSHIM_ACCEPT"))
		return env_accept;
	if (!strcmp(name, "SOCKSHIM_FOLLOW"))
		return env_follow;
	return NULL;
}

static int config_parse_strings(struct shim_config *c, const char *session, const char *ring,
				const char *log, char *warn, size_t len)
{
	env_session = session;
	env_ring = ring;
	env_log = log;
	env_max_sockets = NULL;
	env_accept = NULL;
	env_follow = NULL;
	return config_parse(c, lookup, warn, len);
}

/* Parse with a warning buffer that starts dirty, so "empty" means cleared. */
static int parse(struct shim_config *c, const char *session, const char *ring,
		 const char *log, char *warn, size_t len)
{
	memset(warn, 'x', len - 1);
	warn[len - 1] = 0;
	memset(c, 0xa5, sizeof(*c));
	return config_parse_strings(c, session, ring, log, warn, len);
}

/* One invalid value: the default, one warning naming VAR and quoting VALUE. */
static void expect_one_warning(const char *warn, const char *var, const char *value)
{
	char quoted[128];

	assert_true(warn[0] != 0);
	if (!strstr(warn, var))
		fail_msg("warning \"%s\" does not name %s", warn, var);
	snprintf(quoted, sizeof(quoted), "%s=\"%s\"", var, value);
	if (!strstr(warn, quoted))
		fail_msg("warning \"%s\" does not quote %s", warn, quoted);
	/* Exactly one: the variable is named once. */
	assert_null(strstr(strstr(warn, var) + 1, "SOCKSHIM_"));
	assert_null(strchr(warn, '\n'));
}

static void expect_bad_ring(const char *value)
{
	struct shim_config c;
	char warn[512];

	assert_int_equal(parse(&c, NULL, value, NULL, warn, sizeof(warn)), 1);
	expect_defaults(&c);
	expect_one_warning(warn, "SOCKSHIM_RING_EVENTS", value);
}

static void test_config_defaults_all_null(void **state)
{
	struct shim_config c;
	char warn[512];

	(void)state;
	assert_int_equal(parse(&c, NULL, NULL, NULL, warn, sizeof(warn)), 0);
	expect_defaults(&c);
	assert_string_equal(warn, "");
	assert_string_equal(SOCKSHIM_DEFAULT_SESSION, "default");
	assert_int_equal(DEFAULT_RING, 65536);
}

static void test_config_empty_is_unset(void **state)
{
	struct shim_config c;
	char warn[512];

	(void)state;
	assert_int_equal(parse(&c, "", "", "", warn, sizeof(warn)), 0);
	expect_defaults(&c);
	assert_string_equal(warn, "");
	assert_int_equal(parse(&c, NULL, "", NULL, warn, sizeof(warn)), 0);
	expect_defaults(&c);
	assert_string_equal(warn, "");
}

static void test_config_valid_values(void **state)
{
	char longest[SOCKSHIM_SESSION_MAX + 1];
	struct shim_config c;
	char warn[512];

	(void)state;
	assert_int_equal(parse(&c, "web-1", "1024", "quiet", warn, sizeof(warn)), 0);
	assert_string_equal(c.session, "web-1");
	assert_int_equal(c.session_mapped, 0);
	assert_int_equal(c.ring_capacity, 1024);
	assert_int_equal(c.log_level, LOG_QUIET);
	assert_string_equal(warn, "");

	assert_int_equal(parse(&c, "a.b_C", "4194304", "debug", warn, sizeof(warn)), 0);
	assert_string_equal(c.session, "a.b_C");
	assert_int_equal(c.ring_capacity, 4194304);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_string_equal(warn, "");

	assert_int_equal(parse(&c, NULL, "131072", "warn", warn, sizeof(warn)), 0);
	assert_string_equal(c.session, "default");
	assert_int_equal(c.ring_capacity, 131072);
	assert_int_equal(c.log_level, LOG_WARN);
	assert_string_equal(warn, "");

	/* The longest session name is kept whole. */
	memset(longest, 'n', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = 0;
	assert_int_equal(parse(&c, longest, NULL, NULL, warn, sizeof(warn)), 0);
	assert_string_equal(c.session, longest);
}

static void test_config_ring_garbage(void **state)
{
	(void)state;
	expect_bad_ring("abc");
	expect_bad_ring("1024abc");
	expect_bad_ring("1024 ");
	expect_bad_ring("0x400");
	expect_bad_ring("1e3");
}

static void test_config_ring_not_power_of_two(void **state)
{
	(void)state;
	expect_bad_ring("1000");
	expect_bad_ring("1025");
	expect_bad_ring("65535");
}

static void test_config_ring_below_min(void **state)
{
	(void)state;
	expect_bad_ring("512");
	expect_bad_ring("1");
	expect_bad_ring("0");
}

static void test_config_ring_above_max(void **state)
{
	(void)state;
	expect_bad_ring("8388608");
	expect_bad_ring("2147483648");
	expect_bad_ring("4294967296"); /* would wrap to 0 in 32 bits */
	expect_bad_ring("18446744073709551616"); /* beyond unsigned long long */
}

static void test_config_ring_signed(void **state)
{
	(void)state;
	expect_bad_ring("-1");
	expect_bad_ring("-1024");
	expect_bad_ring("+1024");
}

static void test_config_log_invalid(void **state)
{
	struct shim_config c;
	char warn[512];

	(void)state;
	assert_int_equal(parse(&c, NULL, NULL, "loud", warn, sizeof(warn)), 1);
	expect_defaults(&c);
	expect_one_warning(warn, "SOCKSHIM_LOG", "loud");
	assert_int_equal(parse(&c, NULL, NULL, "DEBUG", warn, sizeof(warn)), 1);
	expect_defaults(&c);
	expect_one_warning(warn, "SOCKSHIM_LOG", "DEBUG");
}

/* The session an invalid name stands for, as the command maps it too. */
static void expect_mapped(const struct shim_config *c, const char *raw)
{
	char want[SEG_NAME_BUF];

	assert_int_equal(seg_name_map(raw, want), 1);
	assert_string_equal(c->session, want);
	assert_int_equal(c->session_mapped, 1);
	assert_string_not_equal(c->session, SOCKSHIM_DEFAULT_SESSION);
	assert_int_equal(c->ring_capacity, DEFAULT_RING);
	assert_int_equal(c->log_level, LOG_WARN);
}

static void test_config_session_invalid(void **state)
{
	const char *bad[] = { "../x", ".hidden", "a/b", "a b", "x;rm", "default " };
	char too_long[SOCKSHIM_SESSION_MAX + 2], using[SEG_NAME_BUF + 16];
	struct shim_config c;
	char warn[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&c, bad[i], NULL, NULL, warn, sizeof(warn)), 1);
		expect_mapped(&c, bad[i]);
		expect_one_warning(warn, "SOCKSHIM_SESSION", bad[i]);
		/* It says which name is used instead, and what a valid one is. */
		snprintf(using, sizeof(using), "using \"%s\"", c.session);
		if (!strstr(warn, using) || !strstr(warn, SEG_NAME_RULE))
			fail_msg("warning \"%s\" does not say %s and the rule", warn, using);
	}
	memset(too_long, 's', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = 0;
	assert_int_equal(parse(&c, too_long, NULL, NULL, warn, sizeof(warn)), 1);
	expect_mapped(&c, too_long);
	assert_non_null(strstr(warn, "SOCKSHIM_SESSION"));
}

/* Invalid values do not spoil the valid ones, and each is counted. */
static void test_config_mixed_and_all_invalid(void **state)
{
	struct shim_config c;
	char warn[512];

	(void)state;
	assert_int_equal(parse(&c, "good", "abc", "debug", warn, sizeof(warn)), 1);
	assert_string_equal(c.session, "good");
	assert_int_equal(c.ring_capacity, DEFAULT_RING);
	assert_int_equal(c.log_level, LOG_DEBUG);
	expect_one_warning(warn, "SOCKSHIM_RING_EVENTS", "abc");

	assert_int_equal(parse(&c, "../x", "1000", "loud", warn, sizeof(warn)), 3);
	expect_mapped(&c, "../x");
	assert_non_null(strstr(warn, "SOCKSHIM_SESSION=\"../x\""));
	assert_non_null(strstr(warn, "SOCKSHIM_RING_EVENTS=\"1000\""));
	assert_non_null(strstr(warn, "SOCKSHIM_LOG=\"loud\""));
	assert_null(strchr(warn, '\n')); /* one line */
}

/* A short warning buffer is filled, never overrun, always terminated;
 * the count does not depend on it. */
static void test_config_short_warning_buffer(void **state)
{
	const char *log_warning = "SOCKSHIM_LOG=\"loud\" is not quiet, warn or debug; using warn";
	char buf[64 + 16];
	struct shim_config c;
	size_t len;

	(void)state;
	for (len = 1; len <= 64; len++) {
		memset(buf, 0x5a, sizeof(buf));
		buf[0] = 0;
		memset(&c, 0, sizeof(c));
		assert_int_equal(config_parse_strings(&c, "../x", "abc", "loud", buf, len), 3);
		expect_mapped(&c, "../x");
		assert_true(strlen(buf) < len);
		assert_int_equal((unsigned char)buf[len], 0x5a);
		/* What fits of the first warning (nothing below 4 bytes). */
		if (len < 4)
			assert_string_equal(buf, "");
		else if (len - 1 <= strlen(log_warning))
			assert_int_equal(strncmp(buf, log_warning, len - 1), 0);
		else
			assert_int_equal(strncmp(buf, log_warning, strlen(log_warning)), 0);
	}
}

/* No byte of WARN is a control character, DEL or >= 0x80. */
static void expect_no_raw_bytes(const char *warn)
{
	const unsigned char *u;

	for (u = (const unsigned char *)warn; *u; u++)
		if (*u < 0x20 || *u >= 0x7f)
			fail_msg("warning \"%s\" holds the raw byte 0x%02x at %zu", warn, *u,
				 (size_t)(u - (const unsigned char *)warn));
}

/* Every variable's value is echoed escaped: newline, ESC, DEL, a byte
 * >= 0x80 and a backslash become \xHH; what is plain stays. */
static void test_config_warnings_escape_values(void **state)
{
	const char *value = "a\nb\x1b[2J\x7f\xff\\z";
	const char *shown = "a\\x0ab\\x1b[2J\\x7f\\xff\\x5cz";
	const char **vars[] = { &env_session, &env_ring, &env_log, &env_max_sockets,
				&env_accept };
	const char *names[] = { "SOCKSHIM_SESSION", "SOCKSHIM_RING_EVENTS", "SOCKSHIM_LOG",
				"SOCKSHIM_MAX_SOCKETS", "SOCKSHIM_ACCEPT" };
	struct shim_config c;
	char warn[512], quoted[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		env_session = env_ring = env_log = env_max_sockets = env_accept = NULL;
		*vars[i] = value;
		memset(warn, 'x', sizeof(warn) - 1);
		warn[sizeof(warn) - 1] = 0;
		assert_int_equal(config_parse(&c, lookup, warn, sizeof(warn)), 1);
		expect_no_raw_bytes(warn);
		snprintf(quoted, sizeof(quoted), "%s=\"%s\"", names[i], shown);
		if (!strstr(warn, quoted))
			fail_msg("warning \"%s\" does not show %s", warn, quoted);
	}
	/* All at once: one line still, nothing raw. */
	env_session = env_ring = env_log = env_max_sockets = env_accept = value;
	assert_int_equal(config_parse(&c, lookup, warn, sizeof(warn)), 5);
	expect_no_raw_bytes(warn);
}

static void test_config_printable(void **state)
{
	char out[CONFIG_SHOWN_MAX], big[1000], small[8];
	size_t len;

	(void)state;
	config_printable(out, sizeof(out), "plain text 1.0_-");
	assert_string_equal(out, "plain text 1.0_-");
	config_printable(out, sizeof(out), "\t\r\n\x1b\x7f\x80\xff\\");
	assert_string_equal(out, "\\x09\\x0d\\x0a\\x1b\\x7f\\x80\\xff\\x5c");
	config_printable(out, sizeof(out), "");
	assert_string_equal(out, "");
	/* A long value is cut to fit and says so. */
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	config_printable(out, sizeof(out), big);
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_string_equal(out + sizeof(out) - 1 - strlen(CONFIG_CUT_MARK), CONFIG_CUT_MARK);
	/* Never an escape cut in half, whatever the room. */
	memset(big, '\n', 30);
	big[30] = 0;
	for (len = 1; len <= sizeof(small); len++) {
		memset(small, 0x5a, sizeof(small));
		config_printable(small, len, big);
		assert_true(strlen(small) < len);
		expect_no_raw_bytes(small);
		assert_true(strlen(small) == 0 || !strcmp(small, "...") ||
			    !strncmp(small, "\\x0a", 4));
	}
	/* Exactly fitting: no cut mark. */
	config_printable(small, 5, "\n");
	assert_string_equal(small, "\\x0a");
	config_printable(small, 5, "abcd");
	assert_string_equal(small, "abcd");
	config_printable(small, 5, "abcde");
	assert_string_equal(small, "a...");
}

/* config_entry of V in C is WANT. */
static void expect_entry(const struct shim_config *c, enum config_var v, const char *want)
{
	char out[128];

	assert_int_equal(config_entry(c, v, out, sizeof(out)), (int)strlen(want));
	assert_string_equal(out, want);
}

static void test_config_follow(void **state)
{
	struct shim_config c;
	char warn[512];

	(void)state;
	assert_int_equal(parse(&c, NULL, NULL, NULL, warn, sizeof(warn)), 0);
	assert_int_equal(c.follow, 1);
	assert_int_equal(c.given, 0);

	env_follow = "0";
	assert_int_equal(config_parse(&c, lookup, warn, sizeof(warn)), 0);
	assert_int_equal(c.follow, 0);
	assert_int_equal(c.given, 1u << CONFIG_FOLLOW);
	assert_string_equal(warn, "");
	expect_entry(&c, CONFIG_FOLLOW, "SOCKSHIM_FOLLOW=0");

	env_follow = "1";
	assert_int_equal(config_parse(&c, lookup, warn, sizeof(warn)), 0);
	assert_int_equal(c.follow, 1);

	env_follow = "";
	assert_int_equal(config_parse(&c, lookup, warn, sizeof(warn)), 0);
	assert_int_equal(c.follow, 1);
	assert_int_equal(c.given, 0);

	env_follow = "no";
	assert_int_equal(config_parse(&c, lookup, warn, sizeof(warn)), 1);
	assert_int_equal(c.follow, 1);
	expect_one_warning(warn, "SOCKSHIM_FOLLOW", "no");
	env_follow = NULL;
}

static void test_config_entries_in_effect(void **state)
{
	struct shim_config c;
	char warn[512], small[20];

	(void)state;
	/* Nothing given: the defaults, written back. */
	assert_int_equal(parse(&c, NULL, NULL, NULL, warn, sizeof(warn)), 0);
	expect_entry(&c, CONFIG_SESSION, "SOCKSHIM_SESSION=default");
	expect_entry(&c, CONFIG_RING_EVENTS, "SOCKSHIM_RING_EVENTS=65536");
	expect_entry(&c, CONFIG_LOG, "SOCKSHIM_LOG=warn");
	expect_entry(&c, CONFIG_ACCEPT, "SOCKSHIM_ACCEPT=observe");

	/* Each given, valid: as given. */
	env_session = "web-1";
	env_ring = "1024";
	env_log = "quiet";
	env_max_sockets = "512";
	env_accept = "serialize";
	env_follow = NULL;
	assert_int_equal(config_parse(&c, lookup, warn, sizeof(warn)), 0);
	assert_int_equal(c.given, (1u << CONFIG_SESSION) | (1u << CONFIG_RING_EVENTS) |
					  (1u << CONFIG_LOG) | (1u << CONFIG_MAX_SOCKETS) |
					  (1u << CONFIG_ACCEPT));
	expect_entry(&c, CONFIG_SESSION, "SOCKSHIM_SESSION=web-1");
	expect_entry(&c, CONFIG_RING_EVENTS, "SOCKSHIM_RING_EVENTS=1024");
	expect_entry(&c, CONFIG_MAX_SOCKETS, "SOCKSHIM_MAX_SOCKETS=512");
	expect_entry(&c, CONFIG_LOG, "SOCKSHIM_LOG=quiet");
	expect_entry(&c, CONFIG_ACCEPT, "SOCKSHIM_ACCEPT=serialize");
	expect_entry(&c, CONFIG_FOLLOW, "SOCKSHIM_FOLLOW=1");

	/* Given, invalid: what is in effect instead (an image reading it
	 * back says no warning again), and still given. */
	env_session = "bad name";
	env_ring = "1000";
	env_accept = "bogus";
	env_log = "loud";
	assert_int_equal(config_parse(&c, lookup, warn, sizeof(warn)), 4);
	assert_true(c.given & (1u << CONFIG_ACCEPT));
	assert_int_equal(strncmp(c.session, "bad_name", 8), 0);
	{
		char want[128];

		snprintf(want, sizeof(want), "SOCKSHIM_SESSION=%s", c.session);
		expect_entry(&c, CONFIG_SESSION, want);
	}
	expect_entry(&c, CONFIG_RING_EVENTS, "SOCKSHIM_RING_EVENTS=65536");
	expect_entry(&c, CONFIG_ACCEPT, "SOCKSHIM_ACCEPT=observe");
	expect_entry(&c, CONFIG_LOG, "SOCKSHIM_LOG=warn");

	/* Too small a buffer: -1, never a cut entry taken for whole. */
	assert_int_equal(config_entry(&c, CONFIG_ACCEPT, small, sizeof(small)), -1);
	assert_int_equal(config_entry(&c, CONFIG_VARS, small, sizeof(small)), -1);
	assert_string_equal(config_var_name[CONFIG_MAX_SOCKETS], "SOCKSHIM_MAX_SOCKETS");
	env_session = env_ring = env_log = env_max_sockets = env_accept = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults_all_null),
		cmocka_unit_test(test_config_empty_is_unset),
		cmocka_unit_test(test_config_valid_values),
		cmocka_unit_test(test_config_ring_garbage),
		cmocka_unit_test(test_config_ring_not_power_of_two),
		cmocka_unit_test(test_config_ring_below_min),
		cmocka_unit_test(test_config_ring_above_max),
		cmocka_unit_test(test_config_ring_signed),
		cmocka_unit_test(test_config_log_invalid),
		cmocka_unit_test(test_config_session_invalid),
		cmocka_unit_test(test_config_mixed_and_all_invalid),
		cmocka_unit_test(test_config_short_warning_buffer),
		cmocka_unit_test(test_config_warnings_escape_values),
		cmocka_unit_test(test_config_printable),
		cmocka_unit_test(test_config_follow),
		cmocka_unit_test(test_config_entries_in_effect),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
