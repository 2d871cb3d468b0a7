/* The kernel's view of TCP sockets through NETLINK_SOCK_DIAG (inet_diag):
 * one dump per address family, unprivileged, with tcp_info. What the
 * command trusts for state, queues and addresses; the ledger and /proc
 * say who holds the sockets. */
#ifndef SOCKSHIM_SOCKDIAG_H
#define SOCKSHIM_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>

/* TCP states as the kernel numbers them (include/net/tcp_states.h). */
enum {
	SOCKDIAG_ESTABLISHED = 1,
	SOCKDIAG_SYN_SENT,
	SOCKDIAG_SYN_RECV,
	SOCKDIAG_FIN_WAIT1,
	SOCKDIAG_FIN_WAIT2,
	SOCKDIAG_TIME_WAIT,
	SOCKDIAG_CLOSE,
	SOCKDIAG_CLOSE_WAIT,
	SOCKDIAG_LAST_ACK,
	SOCKDIAG_LISTEN,
	SOCKDIAG_CLOSING,
	SOCKDIAG_NEW_SYN_RECV,
	SOCKDIAG_STATE_COUNT
};

#define SOCKDIAG_F(state) (1u << (state))
/* Every state whose sockets can have a descriptor (an inode): not the
 * time-wait and request minisockets. */
#define SOCKDIAG_WITH_INODE                                                         \
	(((1u << SOCKDIAG_STATE_COUNT) - 1) &                                       \
	 ~(SOCKDIAG_F(SOCKDIAG_TIME_WAIT) | SOCKDIAG_F(SOCKDIAG_SYN_RECV) |          \
	   SOCKDIAG_F(SOCKDIAG_NEW_SYN_RECV)))

/* One socket as the kernel reports it. Addresses in network byte order
 * (IPv4 in the first 4 bytes), ports in host byte order. */
struct sockdiag_sock {
	uint64_t inode; /* 0: no descriptor (in an accept queue, or orphaned) */
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t state;  /* SOCKDIAG_* */
	uint16_t sport, dport;
	uint8_t src[16], dst[16];
	uint32_t rqueue; /* LISTEN: connections waiting in the accept queue */
	uint32_t wqueue; /* LISTEN: the backlog */
	uint32_t uid;
	uint8_t timer;       /* idiag_timer: 0 none, 1 retransmit, 2 keepalive,
			      * 3 TIME_WAIT, 4 zero window probe */
	uint32_t expires_ms; /* when TIMER is set: ms until it fires */
	int has_info;    /* the fields below came from INET_DIAG_INFO */
	uint32_t last_data_recv_ms; /* tcpi_last_data_recv: ms since data came in */
	uint32_t last_ack_recv_ms;
	uint32_t rtt_us;
};

struct sockdiag_list {
	struct sockdiag_sock *v;
	size_t n, cap;
};

/* Dump the TCP sockets (IPv4 and IPv6) in the states of STATES_MASK (bit
 * per SOCKDIAG_* state), with tcp_info when WANT_INFO, appending to OUT.
 * 0 or -errno; on failure OUT keeps what it had. */
int sockdiag_dump(uint32_t states_mask, int want_info, struct sockdiag_list *out);
/* The same, dumped twice and joined: a dump is read in chunks while the
 * kernel's hash table changes under it, and a socket inserted ahead of
 * where a chunk ended pushes one behind it out of the dump. On a host
 * making thousands of connections a second a single dump missed 1
 * TIME_WAIT socket in 100; a socket missed by both is far rarer. Appends
 * each socket once, counting those OUT had already: a connection by its
 * addresses (one that moved to TIME_WAIT since keeps its first state), a
 * listener by its inode too. In the kernel's order: sockdiag_sort. */
int sockdiag_dump_settled(uint32_t states_mask, int want_info, struct sockdiag_list *out);
/* One more dump joined into OUT as the settled dump joins its two: for a
 * caller that can tell whether its first dump may have missed something
 * (conns, by the ledger). */
int sockdiag_dump_join(uint32_t states_mask, int want_info, struct sockdiag_list *out);

void sockdiag_list_free(struct sockdiag_list *l);

/* Sort L by family, ports and addresses (and a listener's inode): the
 * order the reports list sockets in, whatever the kernel's. */
void sockdiag_sort(struct sockdiag_list *l);

/* The "inuse" count of protocol PROTO ("TCP", "TCP6") in TEXT, the
 * contents of /proc/net/sockstat or sockstat6; -1 when absent or garbled. */
long sockdiag_sockstat_inuse(const char *text, const char *proto);

/* "CLOSE_WAIT", or NULL for a number the kernel does not use. */
const char *sockdiag_state_name(unsigned state);

/* "1.2.3.4:80", "[::1]:80"; an IPv4-mapped IPv6 address is shown as IPv4. */
void sockdiag_addr_str(char *buf, size_t len, unsigned family, const uint8_t ip[16],
		       unsigned port);

/* True when a listener bound to LIP (family LFAM) would take connections
 * to IP (family FAM): the same address, a wildcard, or an IPv4 address on a
 * dual-stack IPv6 listener. */
int sockdiag_addr_covers(unsigned lfam, const uint8_t lip[16], unsigned fam, const uint8_t ip[16]);

/* Parse one batch of netlink messages (the answer of one recv) of the
 * dump with sequence number SEQ, appending sockets to OUT. Returns 1 when
 * the batch ended the dump, 0 when more is to come, -errno on a kernel
 * error or a malformed message. */
int sockdiag_parse(const void *buf, size_t len, uint32_t seq, struct sockdiag_list *out);

/* Say on stderr that the kernel's TCP sockets could not be listed (RC,
 * a -errno from a dump) and how to make them listable; returns RC. */
int sockdiag_say_error(int rc);

#endif
