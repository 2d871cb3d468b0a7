/* Unit tests of tools/prom.c: names, label and HELP escaping (with bytes
 * that are not UTF-8), samples, log2 histograms as Prometheus histograms,
 * and the structure of the whole `sockshim stats` exposition: each family
 * once, before its samples, counters named _total. */
#include <arpa/inet.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "memstream.h"
#include "prom.h"

static void test_names(void **state)
{
	(void)state;
	assert_true(prom_metric_name_ok("sockshim_accepts_total"));
	assert_true(prom_metric_name_ok("a:b_c9"));
	assert_true(prom_metric_name_ok("_x"));
	assert_false(prom_metric_name_ok(""));
	assert_false(prom_metric_name_ok("9x"));
	assert_false(prom_metric_name_ok("a-b"));
	assert_false(prom_metric_name_ok("a b"));
	assert_true(prom_label_name_ok("listener"));
	assert_true(prom_label_name_ok("le"));
	assert_false(prom_label_name_ok("__name__"));
	assert_false(prom_label_name_ok("a:b"));
	assert_false(prom_label_name_ok("1a"));
	assert_false(prom_label_name_ok(""));
}

static void test_label_escaping(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"127.0.0.1:80", "\"127.0.0.1:80\""},
		{"a\\b\"c\nd", "\"a\\\\b\\\"c\\nd\""},
		{"tab\there", "\"tab\there\""},
		{"caf\xc3\xa9", "\"caf\xc3\xa9\""},            /* UTF-8 stays */
		{"\xe2\x82\xac", "\"\xe2\x82\xac\""},          /* euro sign */
		{"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},  /* 4 bytes */
		{"x\xffy", "\"x\xef\xbf\xbdy\""},              /* not UTF-8 */
		{"\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\""},  /* overlong '/' */
		{"\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* surrogate */
		{"\xe2\x82", "\"\xef\xbf\xbd\xef\xbf\xbd\""},  /* cut short */
		{"", "\"\""},
	};
	struct mem m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mem_open(&m);
		prom_put_label_value(m.f, cases[i].in);
		assert_string_equal(mem_text(&m), cases[i].out);
		mem_close(&m);
	}
	mem_open(&m);
	prom_put_help(m.f, "a \\ b\nc \"d\"");
	assert_string_equal(mem_text(&m), "a \\\\ b\\nc \"d\"");
	mem_close(&m);
}

static void test_samples(void **state)
{
	const struct prom_label l[] = {{"session", "web"}, {"listener", "[::1]:80"}};
	struct mem m;

	(void)state;
	mem_open(&m);
	prom_family(m.f, "x_total", "counter", "Things.\nMore \\ things.");
	prom_sample_u64(m.f, "x_total", l, 2, UINT64_MAX);
	prom_sample_u64(m.f, "x_total", NULL, 0, 0);
	prom_sample(m.f, "y", l, 1, 0.5);
	prom_sample(m.f, "y", l, 1, NAN);
	prom_sample(m.f, "y", l, 1, INFINITY);
	prom_sample(m.f, "y", l, 1, -INFINITY);
	prom_sample(m.f, "y", l, 1, 1e-9);
	assert_string_equal(mem_text(&m),
			    "# HELP x_total Things.\\nMore \\\\ things.\n"
			    "# TYPE x_total counter\n"
			    "x_total{session=\"web\",listener=\"[::1]:80\"} 18446744073709551615\n"
			    "x_total 0\n"
			    "y{session=\"web\"} 0.5\n"
			    "y{session=\"web\"} NaN\n"
			    "y{session=\"web\"} +Inf\n"
			    "y{session=\"web\"} -Inf\n"
			    "y{session=\"web\"} 1e-09\n");
	mem_close(&m);
}

static void test_seconds(void **state)
{
	static const struct {
		uint64_t ns;
		const char *s;
	} cases[] = {
		{0, "0"},
		{2, "0.000000002"},
		{131072, "0.000131072"},
		{1000000000, "1"},
		{1500000000, "1.5"},
		{UINT64_C(1) << 31, "2.147483648"},
		{UINT64_MAX, "18446744073.709551615"},
	};
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		prom_seconds_str(buf, sizeof(buf), cases[i].ns);
		assert_string_equal(buf, cases[i].s);
	}
}

static void test_histogram(void **state)
{
	const struct prom_label l[] = {{"a", "b"}};
	const uint64_t h[4] = {1, 0, 2, 3};
	const uint64_t sat[3] = {UINT64_MAX, 5, 1};
	struct mem m;

	(void)state;
	mem_open(&m);
	prom_log2_histogram(m.f, "h_seconds", l, 1, h, 4);
	/* Sum: 1 x 1 ns + 2 x 6 ns + 3 x 12 ns = 49 ns. */
	assert_string_equal(mem_text(&m), "h_seconds_bucket{a=\"b\",le=\"0.000000002\"} 1\n"
					  "h_seconds_bucket{a=\"b\",le=\"0.000000004\"} 1\n"
					  "h_seconds_bucket{a=\"b\",le=\"0.000000008\"} 3\n"
					  "h_seconds_bucket{a=\"b\",le=\"+Inf\"} 6\n"
					  "h_seconds_sum{a=\"b\"} 4.9e-08\n"
					  "h_seconds_count{a=\"b\"} 6\n");
	mem_close(&m);

	/* Corrupt counts: cumulative counts saturate, never wrap. */
	mem_open(&m);
	prom_log2_histogram(m.f, "h", NULL, 0, sat, 3);
	assert_non_null(strstr(mem_text(&m), "h_bucket{le=\"0.000000004\"} 18446744073709551615\n"
					     "h_bucket{le=\"+Inf\"} 18446744073709551615\n"));
	mem_close(&m);
}

/* Checks the exposition TEXT line by line: comments are HELP or TYPE, each
 * family is described once, HELP right before TYPE, every sample belongs
 * to the family described last (histograms by their suffixes), counters
 * end in _total, names are valid. Returns the number of samples. */
static int check_structure(const char *text)
{
	char *copy = strdup(text), *line, *save = NULL, fam[128] = "", type[32] = "";
	char seen[64][128], help_of[128] = "";
	int nseen = 0, samples = 0, i;

	assert_non_null(copy);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128];
		size_t len;

		if (!strncmp(line, "# HELP ", 7)) {
			assert_int_equal(sscanf(line + 7, "%127s", help_of), 1);
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			assert_int_equal(sscanf(line + 7, "%127s %31s", fam, type), 2);
			assert_string_equal(fam, help_of);
			assert_true(prom_metric_name_ok(fam));
			for (i = 0; i < nseen; i++)
				assert_string_not_equal(seen[i], fam);
			assert_true(nseen < 64);
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", fam);
			if (!strcmp(type, "counter")) {
				len = strlen(fam);
				assert_true(len > 6 && !strcmp(fam + len - 6, "_total"));
			} else {
				assert_true(!strcmp(type, "gauge") || !strcmp(type, "histogram"));
			}
			continue;
		}
		assert_true(line[0] != '#');
		len = strcspn(line, "{ ");
		assert_true(len < sizeof(name));
		memcpy(name, line, len);
		name[len] = 0;
		assert_true(prom_metric_name_ok(name));
		if (!strcmp(type, "histogram")) {
			char b[160], s[160], c[160];

			snprintf(b, sizeof(b), "%s_bucket", fam);
			snprintf(s, sizeof(s), "%s_sum", fam);
			snprintf(c, sizeof(c), "%s_count", fam);
			assert_true(!strcmp(name, b) || !strcmp(name, s) || !strcmp(name, c));
		} else {
			assert_string_equal(name, fam);
		}
		samples++;
	}
	free(copy);
	return samples;
}

static void entry_init(struct stats_entry *e, uint64_t inode, unsigned port)
{
	memset(e, 0, sizeof(*e));
	e->s.inode = inode;
	e->s.family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", e->s.local_ip), 1);
	e->s.local_port = (uint16_t)port;
	stats_addr(e->addr, sizeof(e->addr), &e->s);
}

static void test_stats_empty(void **state)
{
	struct mem m;

	(void)state;
	mem_open(&m);
	assert_int_equal(prom_write_stats(m.f, "web", NULL, 0, 0), 0);
	assert_string_equal(mem_text(&m),
			    "# HELP sockshim_listeners Listening sockets recorded in the session's "
			    "listener table.\n"
			    "# TYPE sockshim_listeners gauge\n"
			    "sockshim_listeners{session=\"web\"} 0\n");
	mem_close(&m);
}

static void test_stats_exposition(void **state)
{
	struct stats_entry *v = calloc(2, sizeof(*v));
	const char *t;
	struct mem m;

	(void)state;
	assert_non_null(v);
	entry_init(&v[0], 4242, 8080);
	v[0].s.mode = SOCKSHIM_ACCEPT_SERIALIZE;
	v[0].s.accepts = 500;
	v[0].s.accept_calls = 1600;
	v[0].s.spurious = 1000;
	v[0].s.eintr = 3;
	v[0].s.owner_died = 1;
	v[0].s.token_waits = 40;
	v[0].s.token_handoffs = 37;
	v[0].s.wait_hist[10] = 4;
	v[0].s.holder_pid = 9;
	v[0].s.holder_tid = 9;
	v[0].s.held_since_ns = 1000000000;
	v[0].have_queue = 1;
	v[0].queue_len = 2;
	v[0].queue_backlog = 7;
	v[0].s.nworkers = 2;
	v[0].s.workers[0] = (struct stats_worker){.pid = 10, .tid = 11, .accepts = 300,
						  .calls = 900, .lock_wait_ns = 1500000000};
	v[0].s.workers[1] = (struct stats_worker){.pid = 10, .tid = 12, .accepts = 200,
						  .calls = 700};
	entry_init(&v[1], 4343, 9090);
	v[1].s.mode = 9; /* corrupt */
	v[1].closed = 1; /* the kernel lists it no more */

	mem_open(&m);
	assert_int_equal(prom_write_stats(m.f, "web", v, 2, 3500000000), 0);
	t = mem_text(&m);
	assert_true(check_structure(t) > 100);
#define L0 "session=\"web\",listener=\"127.0.0.1:8080\",inode=\"4242\""
#define L1 "session=\"web\",listener=\"127.0.0.1:9090\",inode=\"4343\""
	assert_non_null(strstr(t, "sockshim_listeners{session=\"web\"} 2\n"));
	assert_non_null(strstr(t, "sockshim_listener_info{" L0 ",mode=\"serialize\"} 1\n"));
	assert_non_null(strstr(t, "sockshim_listener_info{" L1 ",mode=\"unknown(9)\"} 1\n"));
	assert_non_null(strstr(t, "sockshim_accepts_total{" L0 "} 500\n"
				  "sockshim_accepts_total{" L1 "} 0\n"));
	assert_non_null(strstr(t, "sockshim_accept_calls_total{" L0 "} 1600\n"));
	assert_non_null(strstr(t, "sockshim_spurious_wakeups_total{" L0 "} 1000\n"));
	assert_non_null(strstr(t, "sockshim_lock_owner_died_total{" L0 "} 1\n"));
	assert_non_null(strstr(t, "sockshim_poll_token_waits_total{" L0 "} 40\n"));
	/* The poll token's hand-offs: a counter of their own, with HELP and
	 * TYPE, 0 for a listener that has none. */
	assert_non_null(strstr(t, "# TYPE sockshim_poll_token_handoffs_total counter\n"
				  "sockshim_poll_token_handoffs_total{" L0 "} 37\n"
				  "sockshim_poll_token_handoffs_total{" L1 "} 0\n"));
	assert_non_null(strstr(t, "# HELP sockshim_poll_token_handoffs_total Times a worker "
				  "giving the listener's poll token back"));
	assert_non_null(strstr(t, "sockshim_accept_errors_total{" L0 ",error=\"EINTR\"} 3\n"));
	assert_non_null(strstr(t, "sockshim_lock_wait_seconds_bucket{" L0
				  ",le=\"0.000001024\"} 0\n"
				  "sockshim_lock_wait_seconds_bucket{" L0 ",le=\"0.000002048\"} 4\n"));
	assert_non_null(strstr(t, "sockshim_lock_wait_seconds_sum{" L0 "} 6.144e-06\n"));
	assert_non_null(strstr(t, "sockshim_lock_wait_seconds_count{" L0 "} 4\n"));
	assert_non_null(strstr(t, "sockshim_lock_held_seconds{" L0 "} 2.5\n"
				  "sockshim_lock_held_seconds{" L1 "} 0\n"));
	/* The queue of a listener the kernel did not list is left out. */
	assert_non_null(strstr(t, "sockshim_accept_queue_length{" L0 "} 2\n# HELP"));
	assert_non_null(strstr(t, "sockshim_accept_backlog{" L0 "} 7\n# HELP"));
	assert_non_null(strstr(t, "sockshim_listener_closed{" L0 "} 0\n"
				  "sockshim_listener_closed{" L1 "} 1\n# HELP"));
	assert_non_null(strstr(t, "sockshim_fairness_jain{" L0 "} 0.9615384615384616\n"));
	assert_non_null(strstr(t, "sockshim_fairness_jain{" L1 "} 1\n"));
	assert_non_null(strstr(t, "sockshim_accepts_max_min_ratio{" L0 "} 1.5\n"));
	assert_non_null(strstr(t, "sockshim_worker_accepts_total{" L0 ",pid=\"10\",tid=\"11\"} 300\n"
				  "sockshim_worker_accepts_total{" L0
				  ",pid=\"10\",tid=\"12\"} 200\n"));
	assert_non_null(strstr(t, "sockshim_worker_lock_wait_seconds_total{" L0
				  ",pid=\"10\",tid=\"11\"} 1.5\n"));
	mem_close(&m);

	/* A worker with no accepts next to one with some: max/min is +Inf. */
	v[0].s.workers[1].accepts = 0;
	mem_open(&m);
	assert_int_equal(prom_write_stats(m.f, "web", v, 1, 0), 0);
	t = mem_text(&m);
	check_structure(t);
	assert_non_null(strstr(t, "sockshim_accepts_max_min_ratio{" L0 "} +Inf\n"));
	/* Whether it is closed, when the kernel cannot tell: no sample. */
	v[0].closed = -1;
	mem_close(&m);
	mem_open(&m);
	assert_int_equal(prom_write_stats(m.f, "web", v, 1, 0), 0);
	t = mem_text(&m);
	check_structure(t);
	assert_null(strstr(t, "sockshim_listener_closed{"));
	assert_non_null(strstr(t, "sockshim_fairness_jain{" L0 "} 0.5\n"));
	/* No holder's age from a clock behind held_since. */
	assert_non_null(strstr(t, "sockshim_lock_held_seconds{" L0 "} 0\n"));
	mem_close(&m);

	/* A thread that waited for the listener and never called accept (it
	 * never had the poll token) is a worker that got nothing. */
	v[0].s.workers[1].calls = 0;
	mem_open(&m);
	assert_int_equal(prom_write_stats(m.f, "web", v, 1, 0), 0);
	t = mem_text(&m);
	check_structure(t);
	assert_non_null(strstr(t, "sockshim_fairness_jain{" L0 "} 0.5\n"));
	assert_non_null(strstr(t, "sockshim_accepts_max_min_ratio{" L0 "} +Inf\n"));
	assert_non_null(strstr(t, "sockshim_worker_accepts_total{" L0 ",pid=\"10\",tid=\"12\"} 0\n"));
	mem_close(&m);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),     cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_samples),   cmocka_unit_test(test_seconds),
		cmocka_unit_test(test_histogram), cmocka_unit_test(test_stats_empty),
		cmocka_unit_test(test_stats_exposition),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
