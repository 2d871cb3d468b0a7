/* Unit tests of tools/sockdiag.c: parsing of hand-made netlink answers
 * (sockets, tcp_info of any length, errors, stray and truncated messages),
 * addresses and listener matching, and live dumps of real sockets on
 * loopback: one in CLOSE_WAIT with its EOF unread, one of each family in
 * one dump, one left in a listener's accept queue (no inode), and the
 * settled dump listing each socket once. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sockdiag.h"

/* A netlink answer being built. */
struct nlbuf {
	char b[8192] __attribute__((aligned(8)));
	size_t len;
};

static struct nlmsghdr *nl_add(struct nlbuf *nb, uint16_t type, uint32_t seq, size_t payload)
{
	struct nlmsghdr *h = (struct nlmsghdr *)(nb->b + nb->len);

	memset(h, 0, NLMSG_SPACE(payload));
	h->nlmsg_len = NLMSG_LENGTH(payload);
	h->nlmsg_type = type;
	h->nlmsg_seq = seq;
	nb->len += NLMSG_SPACE(payload);
	return h;
}

/* One socket message: v4 127.0.0.1:8080 -> 10.1.2.3:51234, INODE, in
 * STATE, with a tcp_info attribute of INFO_LEN bytes (0: none). */
static void add_sock(struct nlbuf *nb, uint32_t seq, uint32_t inode, uint8_t state,
		     size_t info_len)
{
	size_t attr = info_len ? RTA_SPACE(info_len) : 0;
	struct nlmsghdr *h = nl_add(nb, SOCK_DIAG_BY_FAMILY, seq,
				    NLMSG_ALIGN(sizeof(struct inet_diag_msg)) + attr);
	struct inet_diag_msg *m = NLMSG_DATA(h);

	m->idiag_family = AF_INET;
	m->idiag_state = state;
	m->idiag_inode = inode;
	m->idiag_rqueue = 1;
	m->idiag_wqueue = 7;
	m->idiag_uid = 1000;
	m->id.idiag_sport = htons(8080);
	m->id.idiag_dport = htons(51234);
	inet_pton(AF_INET, "127.0.0.1", m->id.idiag_src);
	inet_pton(AF_INET, "10.1.2.3", m->id.idiag_dst);
	if (info_len) {
		struct rtattr *a = (struct rtattr *)((char *)m + NLMSG_ALIGN(sizeof(*m)));
		struct tcp_info ti;

		a->rta_type = INET_DIAG_INFO;
		a->rta_len = (unsigned short)RTA_LENGTH(info_len);
		memset(&ti, 0, sizeof(ti));
		ti.tcpi_last_data_recv = 1234;
		ti.tcpi_last_ack_recv = 99;
		ti.tcpi_rtt = 42;
		memcpy(RTA_DATA(a), &ti, info_len < sizeof(ti) ? info_len : sizeof(ti));
	}
}

static void test_parse(void **state)
{
	struct sockdiag_list l = {0};
	struct nlbuf nb = {.len = 0};
	struct nlmsgerr *e;

	(void)state;
	add_sock(&nb, 5, 4242, SOCKDIAG_CLOSE_WAIT, sizeof(struct tcp_info));
	add_sock(&nb, 4, 1, SOCKDIAG_LISTEN, 0); /* another request's: ignored */
	add_sock(&nb, 5, 4343, SOCKDIAG_ESTABLISHED, 8); /* tcp_info too short */
	add_sock(&nb, 5, 4444, SOCKDIAG_ESTABLISHED, sizeof(struct tcp_info) + 64); /* newer */
	/* The answer to the older request (both families at once) is the
	 * same message under its own type; anything else is not a socket. */
	add_sock(&nb, 5, 4545, SOCKDIAG_TIME_WAIT, 0);
	((struct nlmsghdr *)(nb.b + nb.len - NLMSG_SPACE(sizeof(struct inet_diag_msg))))
		->nlmsg_type = TCPDIAG_GETSOCK;
	add_sock(&nb, 5, 4646, SOCKDIAG_TIME_WAIT, 0);
	((struct nlmsghdr *)(nb.b + nb.len - NLMSG_SPACE(sizeof(struct inet_diag_msg))))
		->nlmsg_type = RTM_NEWLINK;
	assert_int_equal(sockdiag_parse(nb.b, nb.len, 5, &l), 0);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.v[3].inode, 4545);
	assert_int_equal(l.v[3].state, SOCKDIAG_TIME_WAIT);
	l.n = 3;
	assert_int_equal(l.v[0].inode, 4242);
	assert_int_equal(l.v[0].state, SOCKDIAG_CLOSE_WAIT);
	assert_int_equal(l.v[0].family, AF_INET);
	assert_int_equal(l.v[0].sport, 8080);
	assert_int_equal(l.v[0].dport, 51234);
	assert_int_equal(l.v[0].rqueue, 1);
	assert_int_equal(l.v[0].wqueue, 7);
	assert_int_equal(l.v[0].uid, 1000);
	assert_true(l.v[0].has_info);
	assert_int_equal(l.v[0].last_data_recv_ms, 1234);
	assert_int_equal(l.v[0].last_ack_recv_ms, 99);
	assert_int_equal(l.v[0].rtt_us, 42);
	assert_false(l.v[1].has_info);
	assert_true(l.v[2].has_info);
	assert_int_equal(l.v[2].last_data_recv_ms, 1234);
	/* The end of the dump. */
	nb.len = 0;
	nl_add(&nb, NLMSG_DONE, 5, 4);
	assert_int_equal(sockdiag_parse(nb.b, nb.len, 5, &l), 1);
	assert_int_equal(l.n, 3);
	/* A kernel error ends it too. */
	nb.len = 0;
	e = NLMSG_DATA(nl_add(&nb, NLMSG_ERROR, 5, sizeof(*e)));
	e->error = -EPERM;
	assert_int_equal(sockdiag_parse(nb.b, nb.len, 5, &l), -EPERM);
	sockdiag_list_free(&l);
}

static void test_parse_malformed(void **state)
{
	struct sockdiag_list l = {0};
	struct nlbuf nb = {.len = 0};
	struct nlmsgerr *e;
	struct nlmsghdr *h;

	(void)state;
	/* A socket message too short for its struct. */
	nl_add(&nb, SOCK_DIAG_BY_FAMILY, 1, 8);
	assert_int_equal(sockdiag_parse(nb.b, nb.len, 1, &l), -EBADMSG);
	/* A message claiming more than the buffer holds. */
	nb.len = 0;
	h = nl_add(&nb, SOCK_DIAG_BY_FAMILY, 1, sizeof(struct inet_diag_msg));
	h->nlmsg_len = 100000;
	assert_int_equal(sockdiag_parse(nb.b, nb.len, 1, &l), -EBADMSG);
	/* A truncated error message. */
	nb.len = 0;
	nl_add(&nb, NLMSG_ERROR, 1, 2);
	assert_int_equal(sockdiag_parse(nb.b, nb.len, 1, &l), -EBADMSG);
	/* An attribute whose length runs past the message: ignored. */
	nb.len = 0;
	add_sock(&nb, 1, 77, SOCKDIAG_CLOSE_WAIT, 16);
	((struct rtattr *)(nb.b + NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct inet_diag_msg))))
		->rta_len = 4000;
	assert_int_equal(sockdiag_parse(nb.b, nb.len, 1, &l), 0);
	assert_int_equal(l.n, 1);
	assert_false(l.v[0].has_info);
	assert_int_equal(l.n, 1);
	/* An error code no errno has (found by tests/fuzz/fuzz_sockdiag):
	 * -EPROTO, never a number whose negation overflows in strerror(-rc). */
	nb.len = 0;
	e = NLMSG_DATA(nl_add(&nb, NLMSG_ERROR, 1, sizeof(*e)));
	e->error = INT_MIN;
	assert_int_equal(sockdiag_parse(nb.b, nb.len, 1, &l), -EPROTO);
	e->error = -4096;
	assert_int_equal(sockdiag_parse(nb.b, nb.len, 1, &l), -EPROTO);
	e->error = -4095;
	assert_int_equal(sockdiag_parse(nb.b, nb.len, 1, &l), -4095);
	sockdiag_list_free(&l);
}

static void test_names_and_addresses(void **state)
{
	uint8_t ip[16] = {0}, lip[16] = {0};
	char buf[64];

	(void)state;
	assert_string_equal(sockdiag_state_name(SOCKDIAG_CLOSE_WAIT), "CLOSE_WAIT");
	assert_string_equal(sockdiag_state_name(SOCKDIAG_LISTEN), "LISTEN");
	assert_null(sockdiag_state_name(0));
	assert_null(sockdiag_state_name(200));
	inet_pton(AF_INET, "10.0.0.1", ip);
	sockdiag_addr_str(buf, sizeof(buf), AF_INET, ip, 80);
	assert_string_equal(buf, "10.0.0.1:80");
	inet_pton(AF_INET6, "::1", ip);
	sockdiag_addr_str(buf, sizeof(buf), AF_INET6, ip, 8080);
	assert_string_equal(buf, "[::1]:8080");
	inet_pton(AF_INET6, "::ffff:192.168.1.2", ip);
	sockdiag_addr_str(buf, sizeof(buf), AF_INET6, ip, 443);
	assert_string_equal(buf, "192.168.1.2:443");
	sockdiag_addr_str(buf, sizeof(buf), 99, ip, 1);
	assert_string_equal(buf, "?:1");

	/* Listeners: exact, wildcard, dual stack. */
	inet_pton(AF_INET, "10.0.0.1", ip);
	memset(lip, 0, sizeof(lip));
	assert_true(sockdiag_addr_covers(AF_INET, lip, AF_INET, ip));
	assert_true(sockdiag_addr_covers(AF_INET6, lip, AF_INET, ip));
	inet_pton(AF_INET, "10.0.0.1", lip);
	assert_true(sockdiag_addr_covers(AF_INET, lip, AF_INET, ip));
	inet_pton(AF_INET, "10.0.0.2", lip);
	assert_false(sockdiag_addr_covers(AF_INET, lip, AF_INET, ip));
	inet_pton(AF_INET6, "::ffff:10.0.0.1", lip);
	assert_true(sockdiag_addr_covers(AF_INET6, lip, AF_INET, ip));
	inet_pton(AF_INET6, "::1", ip);
	memset(lip, 0, sizeof(lip));
	assert_false(sockdiag_addr_covers(AF_INET, lip, AF_INET6, ip));
	assert_true(sockdiag_addr_covers(AF_INET6, lip, AF_INET6, ip));
	inet_pton(AF_INET6, "::2", lip);
	assert_false(sockdiag_addr_covers(AF_INET6, lip, AF_INET6, ip));
}

static uint64_t inode_of(int fd)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	assert_int_equal(fstat(fd, &st), 0);
	return (uint64_t)st.st_ino;
}

static const struct sockdiag_sock *find(const struct sockdiag_list *l, uint64_t inode,
					unsigned port, unsigned state)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if ((inode ? l->v[i].inode == inode : l->v[i].inode == 0 && l->v[i].sport == port) &&
		    l->v[i].state == state)
			return &l->v[i];
	return NULL;
}

/* A listener on loopback (FAMILY), its port in *PORT. */
static int listener(int family, unsigned *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 8) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static int connect_to(int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int c;

	memset(&ss, 0, sizeof(ss));
	if (getsockname(lfd, (struct sockaddr *)&ss, &len))
		return -1;
	c = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c >= 0 && connect(c, (struct sockaddr *)&ss, len)) {
		close(c);
		return -1;
	}
	return c;
}

static void nap_ms(long ms)
{
	struct timespec ts = {0, ms * 1000000L};

	nanosleep(&ts, NULL);
}

/* The FIN may take a moment to be processed: dump until it shows. */
static const struct sockdiag_sock *dump_find(struct sockdiag_list *l, uint64_t inode,
					     unsigned port)
{
	const struct sockdiag_sock *k = NULL;
	int i;

	for (i = 0; i < 100 && !k; i++) {
		if (i)
			nap_ms(10);
		l->n = 0;
		assert_int_equal(sockdiag_dump(SOCKDIAG_F(SOCKDIAG_CLOSE_WAIT), 1, l), 0);
		k = find(l, inode, port, SOCKDIAG_CLOSE_WAIT);
	}
	return k;
}

static void live_close_wait(int family)
{
	struct sockdiag_list l = {0};
	const struct sockdiag_sock *k;
	unsigned port = 0;
	int lfd, c, a;

	lfd = listener(family, &port);
	if (lfd < 0 && family == AF_INET6) {
		print_message("no IPv6 loopback here: skipped\n");
		return;
	}
	assert_true(lfd >= 0);
	c = connect_to(lfd);
	assert_true(c >= 0);
	a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(a >= 0);
	close(c);
	k = dump_find(&l, inode_of(a), 0);
	assert_non_null(k);
	assert_int_equal(k->family, family);
	assert_int_equal(k->sport, port);
	assert_int_equal(k->rqueue, 1); /* the FIN, unread */
	assert_true(k->has_info);
	assert_true(k->last_data_recv_ms < 60000);
	sockdiag_list_free(&l);
	close(a);
	close(lfd);
}

static void test_live_close_wait_v4(void **state)
{
	(void)state;
	live_close_wait(AF_INET);
}

static void test_live_close_wait_v6(void **state)
{
	(void)state;
	live_close_wait(AF_INET6);
}

/* One dump lists both families, each with its tcp_info: a CLOSE_WAIT
 * socket on IPv4 and one on IPv6 (both families in use: one request for
 * both, or one each where the kernel refuses it). */
static void test_live_both_families(void **state)
{
	struct sockdiag_list l = {0};
	int lfd[2], c[2], a[2], fam[2] = {AF_INET, AF_INET6}, i, t, found;
	unsigned port[2] = {0, 0};
	size_t j;

	(void)state;
	for (i = 0; i < 2; i++) {
		lfd[i] = listener(fam[i], &port[i]);
		if (lfd[i] < 0 && fam[i] == AF_INET6) {
			print_message("no IPv6 loopback here: skipped\n");
			close(a[0]);
			close(lfd[0]);
			return;
		}
		assert_true(lfd[i] >= 0);
		c[i] = connect_to(lfd[i]);
		assert_true(c[i] >= 0);
		a[i] = accept4(lfd[i], NULL, NULL, SOCK_CLOEXEC);
		assert_true(a[i] >= 0);
		close(c[i]);
	}
	/* The FINs may take a moment: dump until both show. */
	for (t = 0, found = 0; t < 100 && found != 3; t++) {
		if (t)
			nap_ms(10);
		l.n = 0;
		found = 0;
		assert_int_equal(sockdiag_dump(SOCKDIAG_F(SOCKDIAG_CLOSE_WAIT), 1, &l), 0);
		for (j = 0; j < l.n; j++)
			for (i = 0; i < 2; i++)
				if (l.v[j].inode == inode_of(a[i]) && l.v[j].family == fam[i] &&
				    l.v[j].sport == port[i] && l.v[j].has_info)
					found |= 1 << i;
	}
	assert_int_equal(found, 3);
	sockdiag_list_free(&l);
	for (i = 0; i < 2; i++) {
		close(a[i]);
		close(lfd[i]);
	}
}

static size_t count_inode(const struct sockdiag_list *l, uint64_t inode)
{
	size_t i, n = 0;

	for (i = 0; i < l->n; i++)
		n += l->v[i].inode == inode;
	return n;
}

/* The settled dump lists each socket once, counting what the list held
 * before (a second settled dump, or one more joined, into the same list
 * adds none of them again), and sockdiag_sort orders them by family and
 * ports. */
static void test_live_settled_each_once(void **state)
{
	const uint32_t mask = SOCKDIAG_F(SOCKDIAG_CLOSE_WAIT) | SOCKDIAG_F(SOCKDIAG_LISTEN);
	struct sockdiag_list l = {0};
	const struct sockdiag_sock *k;
	unsigned port = 0;
	int lfd, c, a, round;
	size_t i;

	(void)state;
	lfd = listener(AF_INET, &port);
	assert_true(lfd >= 0);
	c = connect_to(lfd);
	assert_true(c >= 0);
	a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(a >= 0);
	close(c);
	k = dump_find(&l, inode_of(a), 0); /* the FIN is in */
	assert_non_null(k);
	l.n = 0;
	for (round = 0; round < 3; round++) {
		if (round < 2)
			assert_int_equal(sockdiag_dump_settled(mask, 0, &l), 0);
		else
			assert_int_equal(sockdiag_dump_join(mask, 0, &l), 0);
		assert_int_equal(count_inode(&l, inode_of(a)), 1);
		assert_int_equal(count_inode(&l, inode_of(lfd)), 1);
	}
	sockdiag_sort(&l);
	for (i = 1; i < l.n; i++)
		assert_true(l.v[i - 1].family < l.v[i].family ||
			    (l.v[i - 1].family == l.v[i].family &&
			     l.v[i - 1].sport <= l.v[i].sport));
	sockdiag_list_free(&l);
	close(a);
	close(lfd);
}

/* Connected, never accepted, closed by the client: CLOSE_WAIT in the
 * listener's queue, with no inode. */
static void test_live_unaccepted(void **state)
{
	struct sockdiag_list l = {0};
	const struct sockdiag_sock *k;
	unsigned port = 0;
	size_t i;
	int lfd, c, listed = 0;

	(void)state;
	lfd = listener(AF_INET, &port);
	assert_true(lfd >= 0);
	c = connect_to(lfd);
	assert_true(c >= 0);
	close(c);
	k = dump_find(&l, 0, port);
	assert_non_null(k);
	assert_int_equal(k->inode, 0);
	l.n = 0;
	assert_int_equal(sockdiag_dump(SOCKDIAG_F(SOCKDIAG_LISTEN), 0, &l), 0);
	for (i = 0; i < l.n; i++)
		if (l.v[i].inode == inode_of(lfd)) {
			listed = 1;
			assert_int_equal(l.v[i].state, SOCKDIAG_LISTEN);
			assert_int_equal(l.v[i].rqueue, 1); /* one waiting in the queue */
			assert_int_equal(l.v[i].wqueue, 8); /* the backlog */
			assert_false(l.v[i].has_info);
		}
	assert_true(listed);
	sockdiag_list_free(&l);
	close(lfd);
}

static void test_sockstat(void **state)
{
	static const char v4[] = "sockets: used 10009\n"
				 "TCP: inuse 10001 orphan 0 tw 30211 alloc 10001 mem 10062\n"
				 "UDP: inuse 0 mem 0\n";
	static const char v6[] = "TCP6: inuse 0\nUDP6: inuse 3\n";

	(void)state;
	assert_int_equal(sockdiag_sockstat_inuse(v4, "TCP"), 10001);
	assert_int_equal(sockdiag_sockstat_inuse(v4, "UDP"), 0);
	assert_int_equal(sockdiag_sockstat_inuse(v6, "TCP6"), 0);
	assert_int_equal(sockdiag_sockstat_inuse(v6, "UDP6"), 3);
	/* "TCP" is not "TCP6", absent and garbled counts are -1. */
	assert_int_equal(sockdiag_sockstat_inuse(v6, "TCP"), -1);
	assert_int_equal(sockdiag_sockstat_inuse(v4, "RAW"), -1);
	assert_int_equal(sockdiag_sockstat_inuse("TCP: inuse x\n", "TCP"), -1);
	assert_int_equal(sockdiag_sockstat_inuse("TCP: inuse -4\n", "TCP"), -1);
	assert_int_equal(sockdiag_sockstat_inuse("TCP: inuse 12", "TCP"), -1);
	assert_int_equal(sockdiag_sockstat_inuse("", "TCP"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_names_and_addresses),
		cmocka_unit_test(test_live_close_wait_v4),
		cmocka_unit_test(test_live_close_wait_v6),
		cmocka_unit_test(test_live_unaccepted),
		cmocka_unit_test(test_live_both_families),
		cmocka_unit_test(test_live_settled_each_once),
		cmocka_unit_test(test_sockstat),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
