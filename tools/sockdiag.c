/* NETLINK_SOCK_DIAG client for TCP: sends an inet_diag_req_v2 dump request
 * per family and parses the answers into a flat array. Any user may dump
 * every TCP socket of its network namespace; nothing here needs privileges.
 * The kernel's answers are checked for length like any other input. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bigmem.h"
#include "flatidx.h"
#include "sockdiag.h"

/* Error codes are -1 .. -MAX_ERRNO, as the kernel's IS_ERR_VALUE has it. */
#define MAX_ERRNO 4095

/* A dump answer is at most 32 KiB per message batch (the kernel's cap on
 * dump skbs); a larger buffer costs nothing and survives a future raise. */
#define RECV_BUF ((size_t)64 * 1024)

static const char *const state_names[SOCKDIAG_STATE_COUNT] = {
	[SOCKDIAG_ESTABLISHED] = "ESTABLISHED", [SOCKDIAG_SYN_SENT] = "SYN_SENT",
	[SOCKDIAG_SYN_RECV] = "SYN_RECV",       [SOCKDIAG_FIN_WAIT1] = "FIN_WAIT1",
	[SOCKDIAG_FIN_WAIT2] = "FIN_WAIT2",     [SOCKDIAG_TIME_WAIT] = "TIME_WAIT",
	[SOCKDIAG_CLOSE] = "CLOSE",             [SOCKDIAG_CLOSE_WAIT] = "CLOSE_WAIT",
	[SOCKDIAG_LAST_ACK] = "LAST_ACK",       [SOCKDIAG_LISTEN] = "LISTEN",
	[SOCKDIAG_CLOSING] = "CLOSING",         [SOCKDIAG_NEW_SYN_RECV] = "NEW_SYN_RECV",
};

const char *sockdiag_state_name(unsigned state)
{
	return state < SOCKDIAG_STATE_COUNT ? state_names[state] : NULL;
}

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void sockdiag_addr_str(char *buf, size_t len, unsigned family, const uint8_t ip[16],
		       unsigned port)
{
	char a[INET6_ADDRSTRLEN];

	int mapped = family == AF_INET6 && !memcmp(ip, v4mapped_prefix, sizeof(v4mapped_prefix));

	if ((mapped || family == AF_INET) && inet_ntop(AF_INET, mapped ? ip + 12 : ip, a, sizeof(a)))
		snprintf(buf, len, "%s:%u", a, port);
	else if (family == AF_INET6 && inet_ntop(AF_INET6, ip, a, sizeof(a)))
		snprintf(buf, len, "[%s]:%u", a, port);
	else
		snprintf(buf, len, "?:%u", port);
}

static int all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return 0;
	return 1;
}

int sockdiag_addr_covers(unsigned lfam, const uint8_t lip[16], unsigned fam, const uint8_t ip[16])
{
	const uint8_t *v4 = NULL;

	if (fam == AF_INET)
		v4 = ip;
	else if (fam == AF_INET6 && !memcmp(ip, v4mapped_prefix, sizeof(v4mapped_prefix)))
		v4 = ip + 12;
	if (lfam == AF_INET)
		return v4 && (all_zero(lip, 4) || !memcmp(lip, v4, 4));
	if (lfam != AF_INET6)
		return 0;
	if (all_zero(lip, 16))
		return 1; /* [::] takes IPv4 too unless IPV6_V6ONLY: we cannot tell */
	if (v4)
		return !memcmp(lip, v4mapped_prefix, 12) && !memcmp(lip + 12, v4, 4);
	return fam == AF_INET6 && !memcmp(lip, ip, 16);
}

static int push(struct sockdiag_list *l, const struct sockdiag_sock *s)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 256;
		struct sockdiag_sock *nv = big_realloc(l->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = *s;
	return 0;
}

void sockdiag_list_free(struct sockdiag_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The tcp_info fields we use, from an attribute that may be shorter
 * (older kernel) or longer (newer) than our struct. */
static void take_info(struct sockdiag_sock *s, const void *p, size_t len)
{
	struct tcp_info ti;

	memset(&ti, 0, sizeof(ti));
	memcpy(&ti, p, len < sizeof(ti) ? len : sizeof(ti));
	if (len < offsetof(struct tcp_info, tcpi_rtt) + sizeof(ti.tcpi_rtt))
		return;
	s->has_info = 1;
	s->last_data_recv_ms = ti.tcpi_last_data_recv;
	s->last_ack_recv_ms = ti.tcpi_last_ack_recv;
	s->rtt_us = ti.tcpi_rtt;
}

static int parse_one(const struct nlmsghdr *h, struct sockdiag_list *out)
{
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	size_t payload = h->nlmsg_len - NLMSG_HDRLEN;
	const struct rtattr *a;
	struct sockdiag_sock s;
	int alen;

	if (payload < sizeof(*m))
		return -EBADMSG;
	if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
		return 0;
	memset(&s, 0, sizeof(s));
	s.family = m->idiag_family;
	s.state = m->idiag_state;
	s.inode = m->idiag_inode;
	s.sport = ntohs(m->id.idiag_sport);
	s.dport = ntohs(m->id.idiag_dport);
	memcpy(s.src, m->id.idiag_src, m->idiag_family == AF_INET ? 4 : 16);
	memcpy(s.dst, m->id.idiag_dst, m->idiag_family == AF_INET ? 4 : 16);
	s.rqueue = m->idiag_rqueue;
	s.wqueue = m->idiag_wqueue;
	s.uid = m->idiag_uid;
	s.timer = m->idiag_timer;
	s.expires_ms = m->idiag_expires;
	alen = (int)(payload - NLMSG_ALIGN(sizeof(*m)));
	if (alen > 0) {
		a = (const struct rtattr *)((const char *)m + NLMSG_ALIGN(sizeof(*m)));
		for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen))
			if (a->rta_type == INET_DIAG_INFO)
				take_info(&s, RTA_DATA(a), RTA_PAYLOAD(a));
	}
	return push(out, &s);
}

int sockdiag_parse(const void *buf, size_t len, uint32_t seq, struct sockdiag_list *out)
{
	const struct nlmsghdr *h = buf;
	int left = len > INT32_MAX ? INT32_MAX : (int)len, rc;

	for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
		if (h->nlmsg_seq != seq)
			continue; /* a stray answer to an earlier request */
		if (h->nlmsg_type == NLMSG_DONE)
			return 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
				return -EBADMSG;
			/* An errno, or something no errno is: callers print
			 * strerror(-rc), which INT_MIN would overflow. */
			return e->error < 0 && e->error >= -MAX_ERRNO ? e->error : -EPROTO;
		}
		/* The answers to a request of either kind (dump_both). */
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY && h->nlmsg_type != TCPDIAG_GETSOCK)
			continue;
		rc = parse_one(h, out);
		if (rc)
			return rc;
	}
	return left == 0 ? 0 : -EBADMSG;
}

/* Read the answers to dump request SEQ into OUT, until its end. 0 or
 * -errno. */
static int read_dump(int nl, uint32_t seq, void *buf, struct sockdiag_list *out)
{
	ssize_t n;
	int rc;

	for (;;) {
		n = recv(nl, buf, RECV_BUF, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPROTO;
		rc = sockdiag_parse(buf, (size_t)n, seq, out);
		if (rc)
			return rc < 0 ? rc : 0;
	}
}

static int send_request(int nl, const void *req, size_t len)
{
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};

	if (sendto(nl, req, len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	return 0;
}

static int dump_family(int nl, uint8_t family, uint32_t states, int want_info, uint32_t seq,
		       void *buf, struct sockdiag_list *out)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req;
	int rc;

	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nlh.nlmsg_seq = seq;
	req.r.sdiag_family = family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = states;
	req.r.idiag_ext = want_info ? 1u << (INET_DIAG_INFO - 1) : 0;
	rc = send_request(nl, &req, sizeof(req));
	return rc ? rc : read_dump(nl, seq, buf, out);
}

/* Both families in one request: the kernel's first kind of request
 * (TCPDIAG_GETSOCK, struct inet_diag_req, still served) asks for every
 * family at once. Each dump walks the whole TCP hash table, which IPv4
 * and IPv6 share: one walk instead of two, a third of a dump's time with
 * 60,000 sockets. The same messages come back. 0 or -errno (OUT keeps
 * what the dump added: the caller drops it). */
static int dump_both(int nl, uint32_t states, int want_info, uint32_t seq, void *buf,
		     struct sockdiag_list *out)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req r;
	} req;
	int rc;

	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = TCPDIAG_GETSOCK;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nlh.nlmsg_seq = seq;
	req.r.idiag_states = states;
	req.r.idiag_ext = want_info ? 1u << (INET_DIAG_INFO - 1) : 0;
	rc = send_request(nl, &req, sizeof(req));
	return rc ? rc : read_dump(nl, seq, buf, out);
}

long sockdiag_sockstat_inuse(const char *text, const char *proto)
{
	size_t plen = strlen(proto);
	const char *line = text;
	char *end;
	long v;

	while (line && *line) {
		if (!strncmp(line, proto, plen) && !strncmp(line + plen, ": inuse ", 8)) {
			v = strtol(line + plen + 8, &end, 10);
			return end != line + plen + 8 && v >= 0 && (*end == ' ' || *end == '\n')
				       ? v
				       : -1;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -1;
}

/* Does FAMILY have no TCP socket that a dump for STATES could list?
 * Every dump walks the whole TCP hash, which IPv4 and IPv6 share: with
 * 50,000 sockets of the other family, an empty dump still costs some 6 ms.
 * Only the states of sockets that have a descriptor or are orphaned
 * (counted in "inuse"): time-wait and request sockets are not. */
static int family_idle(uint8_t family, uint32_t states)
{
	char text[1024];
	ssize_t n;
	int fd;

	if (states & ~SOCKDIAG_WITH_INODE)
		return 0;
	fd = open(family == AF_INET6 ? "/proc/net/sockstat6" : "/proc/net/sockstat",
		  O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = 0;
	return sockdiag_sockstat_inuse(text, family == AF_INET6 ? "TCP6" : "TCP") == 0;
}

/* Orders sockets by what makes them one: family and addresses (one
 * connection has them alone, whether it has an inode still or is in
 * TIME_WAIT already), and for listeners the inode (SO_REUSEPORT ones share
 * their addresses). */
static uint64_t identity_inode(const struct sockdiag_sock *s)
{
	return s->state == SOCKDIAG_LISTEN ? s->inode : 0;
}

static int by_identity(const void *a, const void *b)
{
	const struct sockdiag_sock *x = a, *y = b;
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->sport != y->sport)
		return x->sport < y->sport ? -1 : 1;
	if (x->dport != y->dport)
		return x->dport < y->dport ? -1 : 1;
	c = memcmp(x->src, y->src, sizeof(x->src));
	if (!c)
		c = memcmp(x->dst, y->dst, sizeof(x->dst));
	if (c)
		return c;
	return (identity_inode(x) > identity_inode(y)) - (identity_inode(x) < identity_inode(y));
}

void sockdiag_sort(struct sockdiag_list *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), by_identity);
}

/* A hash of what by_identity compares. */
static uint64_t identity_hash(const struct sockdiag_sock *s)
{
	uint8_t key[2 * 16 + 2 * 2 + 8 + 1];
	uint64_t ino = identity_inode(s);

	memcpy(key, s->src, 16);
	memcpy(key + 16, s->dst, 16);
	memcpy(key + 32, &s->sport, 2);
	memcpy(key + 34, &s->dport, 2);
	memcpy(key + 36, &ino, 8);
	key[44] = s->family;
	return flatidx_hash_bytes(key, sizeof(key));
}

/* Append the sockets of ADD that OUT (indexed in X) does not have. */
static int join(struct flatidx *x, struct sockdiag_list *out, const struct sockdiag_list *add)
{
	size_t i;
	int rc;

	for (i = 0; i < add->n; i++) {
		uint64_t hash = identity_hash(&add->v[i]);
		struct flatidx_walk w;
		uint32_t at;

		for (at = flatidx_first(x, hash, &w);
		     at != FLATIDX_END && by_identity(&out->v[at], &add->v[i]);
		     at = flatidx_next(x, &w))
			;
		if (at != FLATIDX_END)
			continue;
		rc = push(out, &add->v[i]);
		if (rc)
			return rc;
		flatidx_put(x, hash, (uint32_t)(out->n - 1));
	}
	return 0;
}

/* DUMPS dumps joined into OUT, each socket once (counting what OUT had). */
static int dumps_joined(uint32_t states_mask, int want_info, struct sockdiag_list *out,
			unsigned dumps)
{
	struct sockdiag_list got[2] = {{0}};
	struct flatidx x = {0};
	size_t keep = out->n, total = out->n, i;
	unsigned d;
	int rc = 0;

	for (d = 0; d < dumps && !rc; d++) {
		rc = sockdiag_dump(states_mask, want_info, &got[d]);
		total += got[d].n;
	}
	if (!rc)
		rc = flatidx_init(&x, total);
	for (i = 0; !rc && i < keep; i++)
		flatidx_put(&x, identity_hash(&out->v[i]), (uint32_t)i);
	for (d = 0; d < dumps && !rc; d++)
		rc = join(&x, out, &got[d]);
	if (rc)
		out->n = keep;
	flatidx_free(&x);
	for (d = 0; d < dumps; d++)
		sockdiag_list_free(&got[d]);
	return rc;
}

int sockdiag_dump_settled(uint32_t states_mask, int want_info, struct sockdiag_list *out)
{
	return dumps_joined(states_mask, want_info, out, 2);
}

int sockdiag_dump_join(uint32_t states_mask, int want_info, struct sockdiag_list *out)
{
	return dumps_joined(states_mask, want_info, out, 1);
}

int sockdiag_dump(uint32_t states_mask, int want_info, struct sockdiag_list *out)
{
	size_t keep = out->n;
	void *buf = NULL;
	int nl, rc, idle4, idle6;

	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -errno;
	buf = malloc(RECV_BUF);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	idle4 = family_idle(AF_INET, states_mask);
	idle6 = family_idle(AF_INET6, states_mask);
	if (!idle4 && !idle6) {
		rc = dump_both(nl, states_mask, want_info, 3, buf, out);
		if (!rc)
			goto out;
		/* Refused (a kernel without the old request): one per family,
		 * on a new socket (the old one may hold the end of an answer). */
		out->n = keep;
		close(nl);
		nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		if (nl < 0) {
			rc = -errno;
			goto out;
		}
	}
	rc = idle4 ? 0 : dump_family(nl, AF_INET, states_mask, want_info, 1, buf, out);
	/* A kernel without IPv6 answers ENOENT for the family: nothing to list. */
	if (!rc && !idle6) {
		rc = dump_family(nl, AF_INET6, states_mask, want_info, 2, buf, out);
		if (rc == -ENOENT)
			rc = 0;
	}
out:
	if (rc)
		out->n = keep;
	free(buf);
	if (nl >= 0)
		close(nl);
	return rc;
}

int sockdiag_say_error(int rc)
{
	fprintf(stderr, "sockshim: cannot list the kernel's TCP sockets through NETLINK_SOCK_DIAG: "
			"%s; load the modules with modprobe inet_diag tcp_diag (as root)\n",
		strerror(-rc));
	return rc;
}
