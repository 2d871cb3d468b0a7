/* libFuzzer harness of the sock_diag parsers of tools/sockdiag.c:
 * sockdiag_parse on one batch of netlink messages (as one recv(2) returns
 * it, in a buffer of exactly its length) and sockdiag_sockstat_inuse on
 * /proc/net/sockstat text. Asserts: the parse ends with 1 (done), 0 (more
 * to come) or -errno; when it succeeds, the sockets it appended are
 * exactly the inet_diag messages of the dump (our sequence number, TCP
 * family, a whole header), in order, each with the message's inode,
 * ports and state, an IPv4 address in its first 4 bytes only; every
 * address printed is terminated and escaped; an "inuse" count comes from
 * a line that starts with the protocol's name.
 *
 * Input: u8 which (0: netlink batch, 1: sockstat text, others: both),
 * u32 the dump's sequence number, then the bytes. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_util.h"
#include "sockdiag.h"

/* A message the parser must turn into a socket, found independently. */
struct expect {
	uint64_t inode;
	uint16_t sport, dport;
	uint8_t family, state;
};

/* The inet_diag messages of sequence SEQ in BUF, up to the dump's end;
 * returns their number (at most MAX kept). */
static size_t expected(const void *buf, size_t len, uint32_t seq, struct expect *v, size_t max)
{
	const uint8_t *p = buf;
	size_t off = 0, n = 0;

	while (len - off >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		struct inet_diag_msg m;

		memcpy(&h, p + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len - off)
			break;
		if (h.nlmsg_seq == seq) {
			if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR)
				break;
			/* Answers to either request (sockdiag.c asks both families
			 * at once with the older TCPDIAG_GETSOCK). */
			if ((h.nlmsg_type == SOCK_DIAG_BY_FAMILY ||
			     h.nlmsg_type == TCPDIAG_GETSOCK) &&
			    h.nlmsg_len - NLMSG_HDRLEN >= sizeof(m)) {
				memcpy(&m, p + off + NLMSG_HDRLEN, sizeof(m));
				if ((m.idiag_family == AF_INET || m.idiag_family == AF_INET6) && n < max) {
					v[n].inode = m.idiag_inode;
					v[n].sport = ntohs(m.id.idiag_sport);
					v[n].dport = ntohs(m.id.idiag_dport);
					v[n].family = m.idiag_family;
					v[n].state = m.idiag_state;
					n++;
				}
			}
		}
		if (NLMSG_ALIGN(h.nlmsg_len) > len - off)
			break;
		off += NLMSG_ALIGN(h.nlmsg_len);
	}
	return n;
}

static void check_sock(const struct sockdiag_sock *s, const struct expect *e)
{
	char buf[64];
	static const uint8_t zero[16];

	FUZZ_CHECK(s->inode == e->inode && s->sport == e->sport && s->dport == e->dport &&
			   s->family == e->family && s->state == e->state,
		   "socket %llu:%u does not match its message (%llu:%u)",
		   (unsigned long long)s->inode, s->sport, (unsigned long long)e->inode, e->sport);
	if (s->family == AF_INET)
		FUZZ_CHECK(!memcmp(s->src + 4, zero, 12) && !memcmp(s->dst + 4, zero, 12),
			   "IPv4 address with bytes past the 4th");
	sockdiag_addr_str(buf, sizeof(buf), s->family, s->src, s->sport);
	fuzz_check_terminal(buf, sizeof(buf), "source address");
	sockdiag_addr_str(buf, sizeof(buf), s->family, s->dst, s->dport);
	fuzz_check_terminal(buf, sizeof(buf), "destination address");
	(void)sockdiag_state_name(s->state);
	(void)sockdiag_addr_covers(s->family, s->src, s->family, s->dst);
	(void)sockdiag_addr_covers(AF_INET6, s->src, s->family, s->dst);
}

static void fuzz_netlink(const uint8_t *data, size_t len, uint32_t seq)
{
	static struct expect want[4096];
	struct sockdiag_list l = {0};
	size_t nwant, i;
	void *buf;
	int rc;

	/* As recv leaves it: a heap buffer of exactly the batch's length. */
	buf = malloc(len ? len : 1);
	FUZZ_CHECK(buf, "out of memory");
	memcpy(buf, data, len);
	rc = sockdiag_parse(buf, len, seq, &l);
	FUZZ_CHECK(rc == 0 || rc == 1 || (rc < 0 && rc >= -4095), "parse returned %d", rc);
	FUZZ_CHECK(l.n <= len / NLMSG_HDRLEN, "%zu sockets from %zu bytes", l.n, len);
	if (rc >= 0) {
		nwant = expected(buf, len, seq, want, sizeof(want) / sizeof(want[0]));
		FUZZ_CHECK(l.n == nwant, "%zu sockets parsed, %zu messages", l.n, nwant);
		for (i = 0; i < l.n; i++)
			check_sock(&l.v[i], &want[i]);
	}
	sockdiag_list_free(&l);
	free(buf);
}

static void check_inuse(const char *text, const char *proto)
{
	size_t plen = strlen(proto);
	long v = sockdiag_sockstat_inuse(text, proto);
	const char *line;

	FUZZ_CHECK(v >= -1, "inuse %ld", v);
	if (v < 0)
		return;
	/* The count's line starts the text or follows a newline. */
	for (line = text; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
		if (!strncmp(line, proto, plen) && !strncmp(line + plen, ": inuse ", 8))
			break;
	FUZZ_CHECK(line, "inuse %ld of %s from no line of its own", v, proto);
	FUZZ_CHECK(strtol(line + plen + 8, NULL, 10) == v, "inuse %ld of %s", v, proto);
}

static void fuzz_sockstat(const uint8_t *data, size_t len)
{
	/* The command reads the file into a buffer and terminates it. */
	char *text = malloc(len + 1);

	FUZZ_CHECK(text, "out of memory");
	memcpy(text, data, len);
	text[len] = 0;
	check_inuse(text, "TCP");
	check_inuse(text, "TCP6");
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t which = fuzz_u8(&in);
	uint32_t seq = fuzz_u32(&in);

	if (which != 1)
		fuzz_netlink(in.p, in.n, seq);
	if (which != 0)
		fuzz_sockstat(in.p, in.n);
	return 0;
}
