/* Unit tests of tools/tw_model.c: the arithmetic of `sockshim timewait`
 * (the rate of new connections, the share of the port range, the time to
 * exhaustion as the ports in TIME_WAIT leave and new ones come), the
 * port range parser, the group keys, and the matching and grouping of
 * kernel sockets to ledger entries made up by hand. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tw_model.h"

#define S TW_NS_PER_SEC
#define NOW (1000 * S)

static void test_side_and_remedy(void **state)
{
	(void)state;
	assert_int_equal(tw_side_of(SOCKSHIM_BORN_CONNECT), TW_CLIENT);
	assert_int_equal(tw_side_of(SOCKSHIM_BORN_ACCEPT), TW_SERVER);
	assert_int_equal(tw_side_of(SOCKSHIM_BORN_INHERITED), TW_OTHER);
	assert_int_equal(tw_side_of(999), TW_OTHER);
	assert_string_equal(tw_side_name(TW_CLIENT), "client");
	assert_string_equal(tw_side_name(TW_SERVER), "server");
	assert_non_null(strstr(tw_remedy(TW_CLIENT), "tcp_tw_reuse"));
	assert_non_null(strstr(tw_remedy(TW_CLIENT), "pool"));
	assert_non_null(strstr(tw_remedy(TW_SERVER), "keep-alive"));
	assert_null(strstr(tw_remedy(TW_SERVER), "tcp_tw_reuse"));
}

static void test_rate(void **state)
{
	(void)state;
	assert_true(tw_rate(0, NOW - S, NOW) == 0);
	/* 100 births over the last 2 s: 50 a second. */
	assert_true(tw_rate(100, NOW - 2 * S, NOW) == 50);
	/* Over less than the minimum span: taken over one second. */
	assert_true(tw_rate(10, NOW - S / 100, NOW) == 10);
	assert_true(tw_rate(1, NOW + S, NOW) == 1);
	/* A first birth older than the window: the window. */
	assert_true(tw_rate(600, NOW - 120 * S, NOW) == 10);
	assert_true(tw_rate(600, NOW - 60 * S, NOW) == 10);
}

static void test_port_share(void **state)
{
	(void)state;
	assert_true(tw_port_share(0, 28232) == 0);
	assert_true(tw_port_share(1000, 28232) == 1000.0 / 28232);
	assert_true(tw_port_share(5, 0) == 0);
}

static void test_exhaustion(void **state)
{
	static const uint32_t at30[90] = {[0 ... 89] = 30000};
	static const uint32_t at1[50] = {[0 ... 49] = 1000};
	static const uint32_t spread[4] = {1000, 2000, 3000, 4000};

	(void)state;
	/* Nothing there yet: the range at the rate, if within the minute. */
	assert_true(tw_exhaustion_s(28232, 1000, NULL, 0) == 28.232);
	assert_true(tw_exhaustion_s(28232, 470, NULL, 0) == -1); /* 470 x 60 < 28232 */
	assert_true(tw_exhaustion_s(100, 0, NULL, 0) == -1);
	assert_true(tw_exhaustion_s(100, 0, at30, 90) == -1);
	/* Already used up. */
	assert_true(tw_exhaustion_s(90, 0, at30, 90) == 0);
	/* 90 of 100 taken for 30 s more, 2 new a second: 5 s. */
	assert_true(tw_exhaustion_s(100, 2, at30, 90) == 5);
	/* 50 of 100 leave after 1 s: then the new ones alone, 2 a second
	 * for 50 s; at 1.5 a second they never fill the range. */
	assert_true(tw_exhaustion_s(100, 2, at1, 50) == 50);
	assert_true(tw_exhaustion_s(100, 1.5, at1, 50) == -1);
	/* 4 of 6 leaving one a second, 1 new a second: 4 + t reaches 6 at
	 * t = 2 only if none left; they leave first: never within 60 s,
	 * except that after the last leaves, t >= 6 alone. */
	assert_true(tw_exhaustion_s(6, 1, spread, 4) == 6);
	assert_true(tw_exhaustion_s(6, 3, spread, 4) < 1.0);
}

static void test_port_range(void **state)
{
	unsigned lo = 0, hi = 0;

	(void)state;
	assert_int_equal(tw_parse_port_range("32768\t60999\n", &lo, &hi), 0);
	assert_int_equal(lo, 32768);
	assert_int_equal(hi, 60999);
	assert_int_equal(tw_parse_port_range("1024 1024", &lo, &hi), 0);
	assert_int_equal(lo, 1024);
	assert_int_equal(hi, 1024);
	assert_int_equal(tw_parse_port_range("5 3\n", &lo, &hi), -EINVAL);
	assert_int_equal(tw_parse_port_range("", &lo, &hi), -EINVAL);
	assert_int_equal(tw_parse_port_range("abc def", &lo, &hi), -EINVAL);
	assert_int_equal(tw_parse_port_range("70000 70001", &lo, &hi), -EINVAL);
	assert_int_equal(tw_parse_port_range("1 2 3", &lo, &hi), -EINVAL);
}

/* A TCP ledger entry: 127.0.0.1:LPORT -> 127.0.0.X:PPORT, born HOW by
 * PID at BORN, created at offset CALLSITE of /bin/x. */
static void mk(struct ledger_sock *ls, unsigned how, pid_t pid, unsigned lport, uint8_t peer,
	       unsigned pport, uint64_t born, uint64_t callsite)
{
	static const uint8_t lo[4] = {127, 0, 0, 1};

	memset(ls, 0, sizeof(*ls));
	ls->inode = 1000 + lport + pport;
	ls->born = how;
	ls->born_pid = pid;
	ls->born_ns = born;
	ls->family = AF_INET;
	ls->socktype = SOCK_STREAM;
	ls->flags = SOCKSHIM_FLAG_LOCAL_KNOWN | SOCKSHIM_FLAG_PEER_KNOWN;
	memcpy(ls->local_ip, lo, 4);
	memcpy(ls->peer_ip, lo, 4);
	ls->peer_ip[3] = peer;
	ls->local_port = (uint16_t)lport;
	ls->peer_port = (uint16_t)pport;
	ls->callsite_offset = callsite;
	strcpy(ls->callsite_module, "/bin/x");
	ls->released_ns = born + S / 10;
}

/* The kernel's TIME_WAIT socket of the same addresses as LS, given as
 * IPv4 or as IPv4-mapped IPv6, with MS left. */
static void mk_k(struct sockdiag_sock *k, const struct ledger_sock *ls, int mapped, uint32_t ms)
{
	memset(k, 0, sizeof(*k));
	k->state = SOCKDIAG_TIME_WAIT;
	k->family = mapped ? AF_INET6 : AF_INET;
	tw_norm_ip(k->src, mapped ? AF_INET : 0, ls->local_ip);
	tw_norm_ip(k->dst, mapped ? AF_INET : 0, ls->peer_ip);
	k->sport = ls->local_port;
	k->dport = ls->peer_port;
	k->timer = 3;
	k->expires_ms = ms;
}

static void test_gkey(void **state)
{
	struct ledger_sock a, b;
	struct tw_gkey ka, kb;

	(void)state;
	/* Two accepted connections on one listener from two client ports:
	 * one group, the client port gone from the key. */
	mk(&a, SOCKSHIM_BORN_ACCEPT, 10, 80, 1, 50001, NOW, 0x10);
	mk(&b, SOCKSHIM_BORN_ACCEPT, 11, 80, 1, 50002, NOW, 0x10);
	tw_gkey_make(&ka, &a);
	tw_gkey_make(&kb, &b);
	assert_memory_equal(&ka, &kb, sizeof(ka));
	assert_int_equal(ka.lport, 80);
	assert_int_equal(ka.pport, 0);
	assert_int_equal(ka.side, TW_SERVER);
	/* The same as IPv4-mapped IPv6 (a dual-stack listener). */
	b.family = AF_INET6;
	tw_norm_ip(b.local_ip, AF_INET, a.local_ip);
	tw_norm_ip(b.peer_ip, AF_INET, a.peer_ip);
	tw_gkey_make(&kb, &b);
	assert_memory_equal(&ka, &kb, sizeof(ka));
	/* Another call site: another group. */
	b.callsite_offset = 0x20;
	tw_gkey_make(&kb, &b);
	assert_memory_not_equal(&ka, &kb, sizeof(ka));
	/* A client keeps the service's port, not its own. */
	mk(&a, SOCKSHIM_BORN_CONNECT, 20, 40001, 2, 6379, NOW, 0x30);
	tw_gkey_make(&ka, &a);
	assert_int_equal(ka.side, TW_CLIENT);
	assert_int_equal(ka.lport, 0);
	assert_int_equal(ka.pport, 6379);
}

/* Three connections accepted by two workers, two made by a client (one
 * of whose ports an older connection used too), one more client birth
 * whose socket the kernel no longer lists, and a TIME_WAIT socket no
 * entry explains. */
static void test_match_and_group(void **state)
{
	struct ledger_sock v[7];
	struct ledger_snap snap;
	struct sockdiag_sock k[6];
	struct tw_model t;
	const struct tw_group *g;
	size_t i;

	(void)state;
	mk(&v[0], SOCKSHIM_BORN_ACCEPT, 10, 80, 1, 50001, NOW - 2 * S, 0x10);
	mk(&v[1], SOCKSHIM_BORN_ACCEPT, 11, 80, 1, 50002, NOW - S, 0x10);
	mk(&v[2], SOCKSHIM_BORN_ACCEPT, 10, 80, 1, 50003, NOW - S / 2, 0x10);
	mk(&v[3], SOCKSHIM_BORN_CONNECT, 20, 40001, 2, 6379, NOW - 4 * S, 0x30);
	mk(&v[4], SOCKSHIM_BORN_CONNECT, 20, 40002, 2, 6379, NOW - 3 * S, 0x30);
	/* The same four addresses as v[4], two minutes earlier: not it. */
	mk(&v[5], SOCKSHIM_BORN_CONNECT, 21, 40002, 2, 6379, NOW - 120 * S, 0x30);
	mk(&v[6], SOCKSHIM_BORN_CONNECT, 20, 40003, 2, 6379, NOW - 2 * S, 0x30);
	memset(&snap, 0, sizeof(snap));
	snap.v = v;
	snap.n = 7;
	for (i = 0; i < 5; i++)
		mk_k(&k[i], &v[i], i == 1, 50000 - (uint32_t)i * 1000);
	mk_k(&k[5], &v[0], 0, 1000);
	k[5].dport = 9; /* nobody's */

	tw_model_init(&t);
	assert_int_equal(tw_index(&t, &snap), 0);
	assert_ptr_equal(tw_match(&t, &k[4]), &v[4]);
	assert_ptr_equal(tw_match(&t, &k[1]), &v[1]);
	assert_null(tw_match(&t, &k[5]));
	for (i = 0; i < 6; i++)
		assert_int_equal(tw_add(&t, &k[i], tw_match(&t, &k[i])), 0);
	assert_int_equal(t.attributed, 5);
	assert_int_equal(t.unattributed, 1);
	assert_int_equal(t.ngroups, 2);
	assert_int_equal(tw_finish(&t, &snap, 100, NOW), 0);

	g = t.sorted[0];
	assert_int_equal(g->key.side, TW_SERVER);
	assert_int_equal(g->count, 3);
	assert_int_equal(g->npids, 2);
	assert_int_equal(g->pids[0].pid, 10);
	assert_int_equal(g->pids[0].count, 2);
	assert_int_equal(g->pids[1].pid, 11);
	assert_int_equal(g->pids[1].count, 1);
	assert_int_equal(g->births, 3);
	assert_true(g->rate == 1.5); /* 3 over 2 s */
	assert_true(g->share < 0);
	assert_true(g->exhaustion_s < 0);

	g = t.sorted[1];
	assert_int_equal(g->key.side, TW_CLIENT);
	assert_int_equal(g->count, 2);
	assert_int_equal(g->npids, 1);
	assert_int_equal(g->births, 3); /* v[5] is older than the window */
	assert_true(g->rate == 0.75);   /* 3 over 4 s */
	assert_non_null(g->dest);
	assert_int_equal(g->dest->count, 2);
	assert_int_equal(g->dest->left_ms[0], 46000);
	assert_int_equal(g->dest->left_ms[1], 47000);
	assert_true(g->share == 0.02);
	assert_true(g->exhaustion_s < 0); /* 0.75 x 60 < 100 */
	tw_model_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_side_and_remedy), cmocka_unit_test(test_rate),
		cmocka_unit_test(test_port_share),      cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_port_range),      cmocka_unit_test(test_gkey),
		cmocka_unit_test(test_match_and_group),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
