/* Formatting of events, addresses, times and sizes; JSON escaping. Pure:
 * no I/O, no global state. Every value here may come from a corrupt
 * segment, so nothing indexes a table without a range check. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "format.h"

/* Indexed by enum sockshim_event_type; NULL for SOCKSHIM_EV_NONE, which
 * no writer ever publishes. */
static const char *const event_names[SOCKSHIM_EV_COUNT] = {
	[SOCKSHIM_EV_SOCKET] = "socket",     [SOCKSHIM_EV_BIND] = "bind",
	[SOCKSHIM_EV_LISTEN] = "listen",     [SOCKSHIM_EV_ACCEPT] = "accept",
	[SOCKSHIM_EV_CONNECT] = "connect",   [SOCKSHIM_EV_SHUTDOWN] = "shutdown",
	[SOCKSHIM_EV_CLOSE] = "close",       [SOCKSHIM_EV_PEER_EOF] = "peer_eof",
	[SOCKSHIM_EV_DUP] = "dup",           [SOCKSHIM_EV_FORK] = "fork",
	[SOCKSHIM_EV_EXEC] = "exec",         [SOCKSHIM_EV_EXIT] = "exit",
	[SOCKSHIM_EV_INHERIT] = "inherit",
};



const char *fmt_event_name(unsigned type)
{
	return type < SOCKSHIM_EV_COUNT ? event_names[type] : NULL;
}

int fmt_event_parse(const char *name)
{
	unsigned t;

	for (t = 0; t < SOCKSHIM_EV_COUNT; t++)
		if (event_names[t] && !strcmp(event_names[t], name))
			return (int)t;
	return -EINVAL;
}

void fmt_event_list(char *buf, size_t len)
{
	struct fmt_buf b;
	unsigned t;

	fmt_buf_init(&b, buf, len);
	for (t = 0; t < SOCKSHIM_EV_COUNT; t++)
		if (event_names[t])
			fmt_append(&b, "%s%s", b.pos ? ", " : "", event_names[t]);
}

static void type_str(char *buf, size_t len, unsigned type)
{
	const char *name = fmt_event_name(type);

	if (name)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "unknown(%u)", type);
}

void fmt_errno_name(char *buf, size_t len, int err)
{
	const char *name = NULL;

#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
	name = strerrorname_np(err);
#endif
	if (name)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "unknown(%d)", err);
}

int fmt_realtime(int64_t *real_ns, uint64_t ts_ns, int64_t created_real_ns,
		 int64_t created_mono_ns)
{
	int64_t since;

	if (ts_ns > (uint64_t)INT64_MAX ||
	    __builtin_sub_overflow((int64_t)ts_ns, created_mono_ns, &since) ||
	    __builtin_add_overflow(created_real_ns, since, real_ns))
		return -ERANGE;
	return 0;
}

int fmt_addr(char *buf, size_t len, const struct sockshim_record *r, int peer)
{
	uint16_t flag = peer ? SOCKSHIM_FLAG_PEER_KNOWN : SOCKSHIM_FLAG_LOCAL_KNOWN;
	struct fmt_buf b;

	fmt_buf_init(&b, buf, len);
	if (!(r->flags & flag) || (r->family != AF_INET && r->family != AF_INET6)) {
		ob_char(&b, '-');
		return 0;
	}
	ob_addr(&b, r->family, peer ? r->peer_ip : r->local_ip, peer ? r->peer_port : r->local_port);
	return 1;
}

void fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGTPE";
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%uB", (unsigned)bytes);
		return;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(units) - 1) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f%c", v, units[u]);
}

/* N then UNIT, then R in two digits and RUNIT when RUNIT is set. */
static void age_parts(char *buf, size_t len, int64_t n, char unit, int64_t r, char runit)
{
	struct fmt_buf b;

	fmt_buf_init(&b, buf, len);
	ob_u64(&b, (uint64_t)n);
	ob_char(&b, unit);
	if (!runit)
		return;
	ob_char(&b, (char)('0' + r / 10));
	ob_char(&b, (char)('0' + r % 10));
	ob_char(&b, runit);
}

/* Without printf's number formatting: closewait prints one per socket. */
void fmt_age(char *buf, size_t len, int64_t s)
{
	if (s < 0)
		snprintf(buf, len, "?"); /* a clock set back, or a corrupt header */
	else if (s < 60)
		age_parts(buf, len, s, 's', 0, 0);
	else if (s < 3600)
		age_parts(buf, len, s / 60, 'm', s % 60, 's');
	else if (s < 86400)
		age_parts(buf, len, s / 3600, 'h', s % 3600 / 60, 'm');
	else
		age_parts(buf, len, s / 86400, 'd', s % 86400 / 3600, 'h');
}


static const char *family_name(unsigned family)
{
	switch (family) {
	case AF_INET:
		return "inet";
	case AF_INET6:
		return "inet6";
	case AF_UNIX:
		return "unix";
	case AF_NETLINK:
		return "netlink";
	case AF_PACKET:
		return "packet";
	default:
		return NULL;
	}
}

static const char *socktype_name(unsigned socktype)
{
	switch (socktype) {
	case SOCK_STREAM:
		return "stream";
	case SOCK_DGRAM:
		return "dgram";
	case SOCK_RAW:
		return "raw";
	case SOCK_RDM:
		return "rdm";
	case SOCK_SEQPACKET:
		return "seqpacket";
	case SOCK_DCCP:
		return "dccp";
	case SOCK_PACKET:
		return "packet";
	default:
		return NULL;
	}
}

static const char *how_name(int how)
{
	switch (how) {
	case SHUT_RD:
		return "SHUT_RD";
	case SHUT_WR:
		return "SHUT_WR";
	case SHUT_RDWR:
		return "SHUT_RDWR";
	default:
		return NULL;
	}
}

/* Append NAME, or "unknown(V)" when NAME is NULL (a corrupt value). */
static void append_name(struct fmt_buf *b, const char *name, long long v)
{
	if (name)
		fmt_append(b, "%s", name);
	else
		fmt_append(b, "unknown(%lld)", v);
}

static void append_json_name(struct fmt_buf *b, const char *key, const char *name,
			     long long v)
{
	if (name)
		fmt_append(b, ",\"%s\":\"%s\"", key, name);
	else
		fmt_append(b, ",\"%s\":\"unknown(%lld)\"", key, v);
}

#define ROW_FMT "%-15s %7s %7s %-8s %4s %10s %-46s %s"

void fmt_table_header(char *buf, size_t len)
{
	snprintf(buf, len, ROW_FMT, "TIME", "PID", "TID", "EVENT", "FD", "INODE",
		 "LOCAL -> PEER", "DETAIL");
}

static void table_detail(struct fmt_buf *b, const struct sockshim_record *r)
{
	char err[64];

	switch (r->type) {
	case SOCKSHIM_EV_SOCKET:
	case SOCKSHIM_EV_INHERIT:
		if (r->socktype) {
			fmt_append(b, "type ");
			append_name(b, socktype_name(r->socktype), r->socktype);
		}
		if (r->type == SOCKSHIM_EV_SOCKET && r->detail.socket.pair_fd >= 0)
			fmt_append(b, "%spair fd %d", b->pos ? " " : "",
				   r->detail.socket.pair_fd);
		if (r->flags & SOCKSHIM_FLAG_LISTENER)
			fmt_append(b, "%slistener", b->pos ? " " : "");
		break;
	case SOCKSHIM_EV_ACCEPT:
		fmt_append(b, "listener fd %d inode %llu", r->detail.accept.listen_fd,
			   (unsigned long long)r->detail.accept.listen_inode);
		break;
	case SOCKSHIM_EV_DUP:
		fmt_append(b, "newfd %d%s", r->detail.dup.newfd,
			   r->detail.dup.cloexec ? " cloexec" : "");
		break;
	case SOCKSHIM_EV_SHUTDOWN:
		fmt_append(b, "how ");
		append_name(b, how_name(r->detail.shutdown.how), r->detail.shutdown.how);
		break;
	case SOCKSHIM_EV_CLOSE:
		fmt_append(b, "via ");
		append_name(b, sockshim_close_via_name((unsigned)r->detail.close.via), r->detail.close.via);
		/* refs_after 0: this close sent the FIN (or RST); more: it
		 * had no effect on the wire, another descriptor holds it. */
		if (r->detail.close.refs_before >= 0 && r->detail.close.refs_after >= 0)
			fmt_append(b, " refs %d->%d %s", r->detail.close.refs_before,
				   r->detail.close.refs_after,
				   r->detail.close.refs_after ? "no effect" : "released");
		break;
	case SOCKSHIM_EV_FORK:
		fmt_append(b, "child %d", r->detail.fork.child_pid);
		break;
	case SOCKSHIM_EV_EXEC:
		ob_printable(b, r->detail.exec_path, sizeof(r->detail.exec_path));
		break;
	default:
		break;
	}
	if (r->ret < 0 || r->err) {
		fmt_errno_name(err, sizeof(err), r->err);
		fmt_append(b, "%sret %d %s", b->pos ? " " : "", r->ret, err);
	}
}

void fmt_table_row(char *buf, size_t len, const struct sockshim_record *r,
		   const struct fmt_clockref *c)
{
	char when[32], pid[16], tid[16], type[32], fd[16], inode[24];
	char local[FMT_ADDR_MAX], peer[FMT_ADDR_MAX], addrs[2 * FMT_ADDR_MAX + 8];
	char detail[FMT_LINE_MAX / 2];
	struct fmt_buf d, w;
	int64_t real;
	int lk, pk;

	fmt_buf_init(&w, when, sizeof(when));
	if (fmt_realtime(&real, r->ts_ns, c->created_real_ns, c->created_mono_ns) == 0)
		ob_clock(&w, real);
	else
		ob_char(&w, '?');
	snprintf(pid, sizeof(pid), "%d", r->pid);
	snprintf(tid, sizeof(tid), "%d", r->tid);
	type_str(type, sizeof(type), r->type);
	if (r->fd >= 0)
		snprintf(fd, sizeof(fd), "%d", r->fd);
	else
		snprintf(fd, sizeof(fd), "-");
	if (r->inode)
		snprintf(inode, sizeof(inode), "%llu", (unsigned long long)r->inode);
	else
		snprintf(inode, sizeof(inode), "-");
	lk = fmt_addr(local, sizeof(local), r, 0);
	pk = fmt_addr(peer, sizeof(peer), r, 1);
	if (r->family == AF_UNIX)
		snprintf(addrs, sizeof(addrs), "unix");
	else if (!lk && !pk)
		snprintf(addrs, sizeof(addrs), "-");
	else
		snprintf(addrs, sizeof(addrs), "%-21s -> %s", local, peer);
	fmt_buf_init(&d, detail, sizeof(detail));
	table_detail(&d, r);
	snprintf(buf, len, ROW_FMT, when, pid, tid, type, fd, inode, addrs, detail);
	/* No trailing blanks when DETAIL is empty. */
	for (size_t n = strlen(buf); n && buf[n - 1] == ' '; n--)
		buf[n - 1] = 0;
}

static void json_addr(struct fmt_buf *b, const char *key, const struct sockshim_record *r,
		      int peer)
{
	char a[FMT_ADDR_MAX];

	if (fmt_addr(a, sizeof(a), r, peer))
		fmt_append(b, ",\"%s\":\"%s\"", key, a);
	else
		fmt_append(b, ",\"%s\":null", key);
}

static void json_detail(struct fmt_buf *b, const struct sockshim_record *r)
{
	switch (r->type) {
	case SOCKSHIM_EV_SOCKET:
		if (r->detail.socket.pair_fd >= 0)
			fmt_append(b, ",\"pair_fd\":%d", r->detail.socket.pair_fd);
		break;
	case SOCKSHIM_EV_ACCEPT:
		fmt_append(b, ",\"listen_fd\":%d,\"listen_inode\":%llu",
			   r->detail.accept.listen_fd,
			   (unsigned long long)r->detail.accept.listen_inode);
		break;
	case SOCKSHIM_EV_DUP:
		fmt_append(b, ",\"newfd\":%d,\"cloexec\":%s", r->detail.dup.newfd,
			   r->detail.dup.cloexec ? "true" : "false");
		break;
	case SOCKSHIM_EV_SHUTDOWN:
		append_json_name(b, "how", how_name(r->detail.shutdown.how),
				 r->detail.shutdown.how);
		break;
	case SOCKSHIM_EV_CLOSE:
		append_json_name(b, "via", sockshim_close_via_name((unsigned)r->detail.close.via), r->detail.close.via);
		if (r->detail.close.refs_before >= 0 && r->detail.close.refs_after >= 0)
			fmt_append(b, ",\"refs_before\":%d,\"refs_after\":%d,\"released\":%s",
				   r->detail.close.refs_before, r->detail.close.refs_after,
				   r->detail.close.refs_after ? "false" : "true");
		else
			fmt_append(b, ",\"refs_before\":null,\"refs_after\":null,\"released\":null");
		break;
	case SOCKSHIM_EV_FORK:
		fmt_append(b, ",\"child_pid\":%d", r->detail.fork.child_pid);
		break;
	case SOCKSHIM_EV_EXEC:
		fmt_append(b, ",\"path\":");
		ob_json_str(b, r->detail.exec_path, sizeof(r->detail.exec_path));
		break;
	default:
		break;
	}
}

void fmt_json_record(char *buf, size_t len, const struct sockshim_record *r,
		     uint64_t seq, const struct fmt_clockref *c)
{
	char type[32], err[64];
	const char *family = family_name(r->family), *st = socktype_name(r->socktype);
	struct fmt_buf b;
	int64_t real;

	fmt_buf_init(&b, buf, len);
	type_str(type, sizeof(type), r->type);
	fmt_append(&b, "{\"type\":\"%s\",\"seq\":%llu,\"ts\":%llu", type,
		   (unsigned long long)seq, (unsigned long long)r->ts_ns);
	ob_str(&b, ",\"time\":");
	if (fmt_realtime(&real, r->ts_ns, c->created_real_ns, c->created_mono_ns) == 0)
		ob_json_time(&b, real);
	else
		ob_put(&b, "null", 4);
	fmt_append(&b, ",\"pid\":%d,\"tid\":%d,\"fd\":%d,\"inode\":%llu", r->pid, r->tid,
		   r->fd, (unsigned long long)r->inode);
	if (family)
		fmt_append(&b, ",\"family\":\"%s\"", family);
	else if (r->family)
		fmt_append(&b, ",\"family\":\"unknown(%u)\"", r->family);
	else
		fmt_append(&b, ",\"family\":null");
	if (st)
		fmt_append(&b, ",\"socktype\":\"%s\"", st);
	else if (r->socktype)
		fmt_append(&b, ",\"socktype\":\"unknown(%u)\"", r->socktype);
	else
		fmt_append(&b, ",\"socktype\":null");
	json_addr(&b, "local", r, 0);
	json_addr(&b, "peer", r, 1);
	fmt_append(&b, ",\"listener\":%s,\"ret\":%d,\"errno\":%d",
		   (r->flags & SOCKSHIM_FLAG_LISTENER) ? "true" : "false", r->ret, r->err);
	if (r->err) {
		fmt_errno_name(err, sizeof(err), r->err);
		fmt_append(&b, ",\"errno_name\":\"%s\"", err);
	} else {
		fmt_append(&b, ",\"errno_name\":null");
	}
	json_detail(&b, r);
	fmt_append(&b, "}");
}

void fmt_lost(char *buf, size_t len, uint64_t n, char kind, int json)
{
	if (json)
		snprintf(buf, len, "{\"type\":\"lost\",\"count\":%llu,\"reason\":\"%s\"}",
			 (unsigned long long)n, kind == 'o' ? "overrun" : "torn");
	else
		snprintf(buf, len, "-- %llu events lost: %s", (unsigned long long)n,
			 kind == 'o' ? "ring overrun" : "torn record (writer died mid-write)");
}
