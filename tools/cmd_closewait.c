/* `sockshim closewait`: why each TCP socket in CLOSE_WAIT is still there.
 * Joins one sock_diag dump, one /proc scan and one ledger snapshot by
 * inode (uthash), decides one verdict per socket, and prints the facts
 * with where each came from. No per-socket system call: it must answer
 * for 10,000 sockets in well under 100 ms. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <uthash.h>

#include "cli.h"
#include "format.h"
#include "ledger_read.h"
#include "procfd.h"
#include "reconcile.h"
#include "session.h"
#include "sockdiag.h"
#include "sockview.h"
#include "symbolize.h"

#define NS_PER_SEC 1000000000LL
#define NS_PER_MS 1000000LL

/* In the order they are decided: the first that applies wins. */
enum verdict {
	V_UNACCEPTED,
	V_HUNG_HOLDER,
	V_EOF_READ_NOT_CLOSED,
	V_INHERITED,
	V_EOF_NOT_READ,
	V_UNKNOWN,
	V_COUNT
};

static const char *const verdict_names[V_COUNT] = {
	[V_UNACCEPTED] = "UNACCEPTED",
	[V_HUNG_HOLDER] = "HUNG-HOLDER",
	[V_EOF_READ_NOT_CLOSED] = "EOF-READ-NOT-CLOSED",
	[V_INHERITED] = "INHERITED",
	[V_EOF_NOT_READ] = "EOF-NOT-READ",
	[V_UNKNOWN] = "UNKNOWN",
};

struct cw_opts {
	const char *session;
	int64_t min_age_ns;
	int json;
};

/* A kernel socket by inode, to find the ledger's sockets the kernel has
 * forgotten. */
struct kin {
	uint64_t inode;
	const struct sockdiag_sock *k;
	UT_hash_handle hh;
};

struct cw_item {
	const struct sockdiag_sock *k;
	const struct ledger_sock *ls;
	const struct sockdiag_sock *listener; /* UNACCEPTED: the listener, if found */
	enum verdict verdict;
	int64_t age_ns; /* -1: unknown */
	int age_est;    /* from tcp_info, not from the ledger's EOF time */
};

struct cw_ctx {
	const struct cw_opts *o;
	const char *session;
	struct ledger_snap snap;
	struct sockdiag_list kern;
	struct procfd *pf;
	struct symbolizer *sym;
	struct kin *kins;
	struct kin *by_inode;
	const struct sockdiag_sock **listeners;
	size_t nlisteners;
	int64_t now_ns;
	struct rec_sock rs; /* scratch: one socket at a time */
};

static void usage(FILE *f)
{
	fputs("Usage: sockshim closewait [--session NAME] [--min-age SECONDS] [--json]\n"
	      "\n"
	      "Explain every TCP socket in CLOSE_WAIT (the peer has closed, this side has\n"
	      "not): who holds it, how they got it, and one verdict. Joins the kernel's\n"
	      "sockets (sock_diag), the session's ledger and /proc/PID/fd.\n"
	      "\n"
	      "  -s, --session NAME     the session (default: $SOCKSHIM_SESSION, else \"default\")\n"
	      "  -m, --min-age SECONDS  only sockets in CLOSE_WAIT for at least this long\n"
	      "  -j, --json             one JSON object per line instead of a table\n"
	      "  -h, --help             this text\n"
	      "\n"
	      "Verdicts, decided in this order: UNACCEPTED, HUNG-HOLDER, EOF-READ-NOT-CLOSED,\n"
	      "INHERITED, EOF-NOT-READ, UNKNOWN (see sockshim(1)).\n",
	      f);
}

#define bad_usage(...) (cli_usage_error("closewait", usage, __VA_ARGS__), EXIT_USAGE)

static int parse_opts(int argc, char **argv, struct cw_opts *o)
{
	static const struct option longopts[] = {
		{"session", required_argument, NULL, 's'},
		{"min-age", required_argument, NULL, 'm'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	long v;
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":s:m:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->session = optarg;
			break;
		case 'm':
			/* Ten years: beyond it the nanoseconds would not fit. */
			if (cli_number(optarg, 0, 10L * 365 * 86400, &v))
				return bad_usage("--min-age needs a number of seconds, not '%s'",
						 optarg);
			o->min_age_ns = (int64_t)v * NS_PER_SEC;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			usage(stdout);
			return -1;
		case ':':
			return bad_usage("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt)
				return bad_usage("unknown option '-%c'", optopt);
			return bad_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	return 0;
}

static int64_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static void kaddr(char *buf, size_t len, const struct sockdiag_sock *k, int peer)
{
	sockdiag_addr_str(buf, len, k->family, peer ? k->dst : k->src, peer ? k->dport : k->sport);
}

/* The ledger's entry for K, unless it is about another socket that once
 * had the same inode: then its addresses disagree with the kernel's. */
static const struct ledger_sock *ledger_for(const struct cw_ctx *c, const struct sockdiag_sock *k)
{
	const struct ledger_sock *ls;
	char a[FMT_ADDR_MAX], b[FMT_ADDR_MAX];

	if (!k->inode)
		return NULL;
	ls = ledger_find(&c->snap, k->inode);
	if (!ls)
		return NULL;
	if (ls->flags & SOCKSHIM_SOCK_PEER_KNOWN) {
		view_ledger_addr(a, sizeof(a), ls, 1);
		kaddr(b, sizeof(b), k, 1);
		if (strcmp(a, b) && ls->family == k->family)
			return NULL;
	}
	return ls;
}

static const struct sockdiag_sock *find_listener(const struct cw_ctx *c,
						 const struct sockdiag_sock *k)
{
	const struct sockdiag_sock *best = NULL, *l;
	size_t i;

	for (i = 0; i < c->nlisteners; i++) {
		l = c->listeners[i];
		if (l->sport != k->sport || !sockdiag_addr_covers(l->family, l->src, k->family, k->src))
			continue;
		/* A listener on the exact address wins over a wildcard one. */
		if (!best || memcmp(l->src, best->src, 16) > 0)
			best = l;
	}
	return best;
}

static int live_holder_pid(const struct rec_sock *rs, pid_t pid)
{
	unsigned i;

	for (i = 0; i < rs->n; i++)
		if (!rs->h[i].stale && rs->h[i].pid == pid)
			return 1;
	return 0;
}

/* The owner closed its copy, or others now hold it by fork, exec, SCM
 * or dup. */
static int inherited(const struct ledger_sock *ls, const struct rec_sock *rs)
{
	const struct ledger_step *v[1];
	unsigned i, others = 0, got = 0;

	if (!ls)
		return 0;
	if (ls->noeffect_closes || view_noeffect_steps(ls, v, 1))
		return 1;
	for (i = 0; i < rs->n; i++) {
		const struct rec_holder *h = &rs->h[i];

		if (h->stale)
			continue;
		if (h->pid == ls->born_pid)
			return 0;
		others++;
		if ((h->source & REC_LEDGER) &&
		    (h->how == SOCKSHIM_HOW_FORK || h->how == SOCKSHIM_HOW_EXEC ||
		     h->how == SOCKSHIM_HOW_SCM || h->how == SOCKSHIM_HOW_DUP))
			got++;
	}
	return others && got;
}

static void holder_name(struct fmt_buf *b, const struct rec_holder *h)
{
	if (h->comm[0])
		fmt_printable(b, h->comm, sizeof(h->comm));
	else
		fmt_append(b, "?");
	fmt_append(b, " %d fd %d", h->pid, h->fd);
}

/* The live holders, "sleep 4123 fd 6 (exec)", comma separated. */
static void live_holders(struct fmt_buf *b, const struct rec_sock *rs)
{
	unsigned i, n = 0;

	for (i = 0; i < rs->n; i++) {
		if (rs->h[i].stale)
			continue;
		fmt_append(b, "%s", n++ ? ", " : "");
		holder_name(b, &rs->h[i]);
		fmt_append(b, " (%s)", rec_how_name(&rs->h[i]));
	}
	if (rs->proc_extra)
		fmt_append(b, "%sand %u more in /proc", n++ ? ", " : "", rs->proc_extra);
	if (!n)
		fmt_append(b, "nobody we can see");
}

/* Decide the verdict of IT, whose holders are RS; the reason goes to B
 * (NULL: not wanted). */
static enum verdict decide(const struct cw_ctx *c, struct cw_item *it, const struct rec_sock *rs,
			   struct fmt_buf *b)
{
	const struct ledger_sock *ls = it->ls;
	const struct sockdiag_sock *k = it->k;
	char when[32], addr[FMT_ADDR_MAX];
	unsigned i;

	if (!k->inode) {
		if (!b)
			return V_UNACCEPTED;
		if (it->listener) {
			kaddr(addr, sizeof(addr), it->listener, 0);
			fmt_append(b, "still in the accept queue of listener %s (inode %llu, %u queued, "
				      "backlog %u): nobody accepted it",
				   addr, (unsigned long long)it->listener->inode, it->listener->rqueue,
				   it->listener->wqueue);
		} else {
			fmt_append(b, "no descriptor (inode 0), and no listener on port %u was found",
				   k->sport);
		}
		return V_UNACCEPTED;
	}
	for (i = 0; i < rs->n; i++) {
		const struct rec_holder *h = &rs->h[i];

		if (h->stale || !rec_state_hung(h->state))
			continue;
		if (b) {
			holder_name(b, h);
			fmt_append(b, " holds it and is %s (state %c)",
				   h->state == 'D' ? "in uninterruptible sleep" : "stopped", h->state);
		}
		return V_HUNG_HOLDER;
	}
	if (ls && ls->eof_ns && live_holder_pid(rs, ls->eof_pid)) {
		if (b) {
			const char *comm = NULL;

			for (i = 0; i < rs->n && !comm; i++)
				if (!rs->h[i].stale && rs->h[i].pid == ls->eof_pid)
					comm = rs->h[i].comm;
			view_clock(when, sizeof(when), &c->snap, ls->eof_ns);
			fmt_printable(b, comm && comm[0] ? comm : "?", 16);
			fmt_append(b, " %d read the EOF on fd %d at %s and still holds it, but never "
				      "closed it",
				   ls->eof_pid, ls->eof_fd, when);
		}
		return V_EOF_READ_NOT_CLOSED;
	}
	if (inherited(ls, rs)) {
		if (b) {
			const char *comm = ledger_comm_of(ls, ls->born_pid);

			fmt_printable(b, comm ? comm : "?", LEDGER_COMM_MAX);
			fmt_append(b, " %d (which %s it) ", ls->born_pid,
				   ls->born == SOCKSHIM_BORN_ACCEPT ? "accepted" : "created");
			if (live_holder_pid(rs, ls->born_pid))
				fmt_append(b, "still has a copy, but other processes hold it too");
			else
				fmt_append(b, "closed its copy");
			if (ls->noeffect_closes)
				fmt_append(b, "; %u close%s had no effect", ls->noeffect_closes,
					   ls->noeffect_closes == 1 ? "" : "s");
			fmt_append(b, "; held now by ");
			live_holders(b, rs);
		}
		return V_INHERITED;
	}
	if (k->rqueue >= 1 && !(ls && ls->eof_ns)) {
		if (b) {
			fmt_append(b, "Recv-Q %u: nobody read the EOF (the FIN counts as one)", k->rqueue);
			fmt_append(b, "; held by ");
			live_holders(b, rs);
		}
		return V_EOF_NOT_READ;
	}
	if (b) {
		if (!ls)
			fmt_append(b, "not in the ledger (created outside the session, before the "
				      "shim, or the ledger was full)");
		else
			fmt_append(b, "in the ledger, refs %d", ls->refs);
		if (k->rqueue == 0)
			fmt_append(b, "; Recv-Q 0: the EOF was read, %s",
				   ls && ls->eof_ns ? "by a process that no longer holds it"
						    : "but the ledger did not see by whom");
		fmt_append(b, "; held by ");
		live_holders(b, rs);
	}
	return V_UNKNOWN;
}

static void set_age(const struct cw_ctx *c, struct cw_item *it)
{
	it->age_ns = -1;
	it->age_est = 0;
	if (it->ls && it->ls->eof_ns && (int64_t)it->ls->eof_ns <= c->now_ns) {
		it->age_ns = c->now_ns - (int64_t)it->ls->eof_ns;
	} else if (it->k->has_info) {
		it->age_ns = (int64_t)it->k->last_data_recv_ms * NS_PER_MS;
		it->age_est = 1;
	}
}

static int by_age(const void *a, const void *b)
{
	const struct cw_item *x = a, *y = b;

	if (x->age_ns != y->age_ns)
		return x->age_ns > y->age_ns ? -1 : 1; /* oldest first; unknown (-1) last */
	return (x->k->inode > y->k->inode) - (x->k->inode < y->k->inode);
}

static int index_kernel(struct cw_ctx *c)
{
	size_t i, n = 0;

	c->kins = calloc(c->kern.n ? c->kern.n : 1, sizeof(*c->kins));
	c->listeners = calloc(c->kern.n ? c->kern.n : 1, sizeof(*c->listeners));
	if (!c->kins || !c->listeners)
		return -ENOMEM;
	for (i = 0; i < c->kern.n; i++) {
		const struct sockdiag_sock *k = &c->kern.v[i];
		struct kin *x;

		if (k->state == SOCKDIAG_LISTEN)
			c->listeners[c->nlisteners++] = k;
		if (!k->inode)
			continue;
		HASH_FIND(hh, c->by_inode, &k->inode, sizeof(uint64_t), x);
		if (x)
			continue;
		x = &c->kins[n++];
		x->inode = k->inode;
		x->k = k;
		HASH_ADD(hh, c->by_inode, inode, sizeof(uint64_t), x);
	}
	return 0;
}

static void age_text(char *buf, size_t len, const struct cw_item *it)
{
	char a[32];

	if (it->age_ns < 0) {
		snprintf(buf, len, "?");
		return;
	}
	fmt_age(a, sizeof(a), it->age_ns / NS_PER_SEC);
	snprintf(buf, len, "%s%s", a, it->age_est ? " est." : "");
}

#define ROW_FMT "%-19s %-10s %6s %10s %-23s %s\n"

static void print_text(struct cw_ctx *c, struct cw_item *it, char *line, size_t len)
{
	char age[40], local[FMT_ADDR_MAX], peer[FMT_ADDR_MAX], inode[24], rq[16];
	const struct ledger_sock *ls = it->ls;
	struct fmt_buf b;
	unsigned i;

	reconcile(&c->snap, ls, c->pf, it->k->inode, &c->rs);
	fmt_buf_init(&b, line, len);
	age_text(age, sizeof(age), it);
	kaddr(local, sizeof(local), it->k, 0);
	kaddr(peer, sizeof(peer), it->k, 1);
	snprintf(inode, sizeof(inode), "%llu", (unsigned long long)it->k->inode);
	snprintf(rq, sizeof(rq), "%u", it->k->rqueue);
	fmt_append(&b, ROW_FMT, verdict_names[it->verdict], age, rq, inode, local, peer);
	fmt_append(&b, "    why: ");
	decide(c, it, &c->rs, &b);
	fmt_append(&b, "\n");
	if (it->verdict == V_UNACCEPTED && it->listener) {
		const struct ledger_sock *lls = ledger_find(&c->snap, it->listener->inode);

		reconcile(&c->snap, lls, c->pf, it->listener->inode, &c->rs);
		fmt_append(&b, "    listener owners: ");
		view_holders_inline(&b, &c->snap, &c->rs);
		fmt_append(&b, "\n");
		if (lls)
			view_born_text(&b, "    listener ", &c->snap, lls, c->sym);
		fputs(line, stdout);
		return;
	}
	if (it->k->inode) {
		fmt_append(&b, "    holders: ");
		view_holders_inline(&b, &c->snap, &c->rs);
		fmt_append(&b, "\n");
	}
	if (ls) {
		for (i = 0; i < c->rs.n; i++) {
			const struct rec_holder *h = &c->rs.h[i];

			if (h->stale || !(h->source & REC_LEDGER))
				continue;
			fmt_append(&b, "    path to %d fd %d: ", h->pid, h->fd);
			view_path(&b, ls, h);
			fmt_append(&b, "\n");
		}
		view_noeffect_text(&b, "    ", &c->snap, ls);
		view_born_text(&b, "    ", &c->snap, ls, c->sym);
	}
	fputs(line, stdout);
}

static void print_json(struct cw_ctx *c, struct cw_item *it, char *line, size_t len)
{
	char local[FMT_ADDR_MAX], peer[FMT_ADDR_MAX], reason[4096];
	struct fmt_buf b, rb;

	reconcile(&c->snap, it->ls, c->pf, it->k->inode, &c->rs);
	fmt_buf_init(&rb, reason, sizeof(reason));
	decide(c, it, &c->rs, &rb);
	fmt_buf_init(&b, line, len);
	kaddr(local, sizeof(local), it->k, 0);
	kaddr(peer, sizeof(peer), it->k, 1);
	fmt_append(&b, "{\"type\":\"socket\",\"verdict\":\"%s\",\"reason\":",
		   verdict_names[it->verdict]);
	fmt_json_str(&b, reason, sizeof(reason));
	fmt_append(&b, ",\"inode\":%llu,\"local\":\"%s\",\"peer\":\"%s\",\"state\":\"CLOSE_WAIT\"",
		   (unsigned long long)it->k->inode, local, peer);
	fmt_append(&b, ",\"recv_q\":%u,\"send_q\":%u", it->k->rqueue, it->k->wqueue);
	if (it->age_ns >= 0)
		fmt_append(&b, ",\"age_s\":%.3f,\"age_estimated\":%s",
			   (double)it->age_ns / (double)NS_PER_SEC, it->age_est ? "true" : "false");
	else
		fmt_append(&b, ",\"age_s\":null,\"age_estimated\":null");
	view_json_members(&b, &c->snap, it->ls, &c->rs, c->sym);
	if (it->verdict == V_UNACCEPTED && it->listener) {
		const struct ledger_sock *lls = ledger_find(&c->snap, it->listener->inode);
		unsigned i;

		kaddr(local, sizeof(local), it->listener, 0);
		reconcile(&c->snap, lls, c->pf, it->listener->inode, &c->rs);
		fmt_append(&b, ",\"listener\":{\"inode\":%llu,\"local\":\"%s\",\"queued\":%u,"
			       "\"backlog\":%u,\"owners\":[",
			   (unsigned long long)it->listener->inode, local, it->listener->rqueue,
			   it->listener->wqueue);
		for (i = 0; i < c->rs.n; i++) {
			const struct rec_holder *h = &c->rs.h[i];

			fmt_append(&b, "%s{\"pid\":%d,\"comm\":", i ? "," : "", h->pid);
			fmt_json_str(&b, h->comm, sizeof(h->comm));
			fmt_append(&b, ",\"fd\":%d,\"source\":\"%s\",\"stale\":%s}", h->fd,
				   rec_source_name(h->source), h->stale ? "true" : "false");
		}
		fmt_append(&b, "]}");
	} else {
		fmt_append(&b, ",\"listener\":null");
	}
	fmt_append(&b, "}\n");
	fputs(line, stdout);
}

/* The ledger believes these held; the kernel lists no such TCP socket. */
static unsigned print_forgotten(struct cw_ctx *c, char *line, size_t len)
{
	char local[FMT_ADDR_MAX], peer[FMT_ADDR_MAX];
	unsigned count = 0;
	struct fmt_buf b;
	size_t i;

	for (i = 0; i < c->snap.n; i++) {
		const struct ledger_sock *ls = &c->snap.v[i];
		struct kin *x;

		if (ls->refs <= 0 || ls->released_ns || ls->socktype != SOCK_STREAM ||
		    (ls->family != AF_INET && ls->family != AF_INET6) ||
		    (ls->flags & SOCKSHIM_SOCK_LISTENER))
			continue;
		HASH_FIND(hh, c->by_inode, &ls->inode, sizeof(uint64_t), x);
		if (x)
			continue;
		/* Also shown for sockets never connected: the kernel lists a
		 * TCP socket only once it is bound, connecting or listening. */
		reconcile(&c->snap, ls, c->pf, ls->inode, &c->rs);
		view_ledger_addr(local, sizeof(local), ls, 0);
		view_ledger_addr(peer, sizeof(peer), ls, 1);
		fmt_buf_init(&b, line, len);
		if (c->o->json) {
			fmt_append(&b, "{\"type\":\"ledger_only\",\"inode\":%llu,\"local\":",
				   (unsigned long long)ls->inode);
			if (strcmp(local, "-"))
				fmt_append(&b, "\"%s\"", local);
			else
				fmt_append(&b, "null");
			fmt_append(&b, ",\"peer\":");
			if (strcmp(peer, "-"))
				fmt_append(&b, "\"%s\"", peer);
			else
				fmt_append(&b, "null");
			fmt_append(&b, ",\"in_proc\":%s", c->rs.live ? "true" : "false");
			view_json_members(&b, &c->snap, ls, &c->rs, c->sym);
			fmt_append(&b, "}\n");
		} else {
			if (!count)
				printf("\nHeld according to the ledger, but the kernel lists no such TCP "
				       "socket (reset by the peer, never connected, or the ledger is "
				       "behind):\n");
			fmt_append(&b, "  inode %llu %s -> %s, refs %d: ", (unsigned long long)ls->inode,
				   local, peer, ls->refs);
			view_holders_inline(&b, &c->snap, &c->rs);
			fmt_append(&b, "\n");
		}
		fputs(line, stdout);
		count++;
	}
	return count;
}

/* Holders of the CLOSE_WAIT sockets that only /proc knows. */
static unsigned print_proc_only(struct cw_ctx *c, const struct cw_item *items, size_t n,
				char *line, size_t len)
{
	char local[FMT_ADDR_MAX], peer[FMT_ADDR_MAX];
	unsigned count = 0, i;
	struct fmt_buf b;
	size_t k;

	for (k = 0; k < n; k++) {
		if (!items[k].ls || items[k].verdict == V_UNACCEPTED)
			continue;
		reconcile(&c->snap, items[k].ls, c->pf, items[k].k->inode, &c->rs);
		for (i = 0; i < c->rs.n; i++) {
			const struct rec_holder *h = &c->rs.h[i];

			if (h->source != REC_PROC)
				continue;
			if (!count && !c->o->json)
				printf("\nHolders seen only in /proc (the ledger does not know how they "
				       "got the socket):\n");
			kaddr(local, sizeof(local), items[k].k, 0);
			kaddr(peer, sizeof(peer), items[k].k, 1);
			fmt_buf_init(&b, line, len);
			if (c->o->json) {
				fmt_append(&b, "{\"type\":\"proc_only_holder\",\"inode\":%llu,"
					       "\"local\":\"%s\",\"peer\":\"%s\",\"pid\":%d,\"comm\":",
					   (unsigned long long)items[k].k->inode, local, peer, h->pid);
				fmt_json_str(&b, h->comm, sizeof(h->comm));
				fmt_append(&b, ",\"fd\":%d}\n", h->fd);
			} else {
				fmt_append(&b, "  inode %llu %s -> %s: ",
					   (unsigned long long)items[k].k->inode, local, peer);
				holder_name(&b, h);
				fmt_append(&b, "\n");
			}
			fputs(line, stdout);
			count++;
		}
	}
	return count;
}

static void print_summary(struct cw_ctx *c, const unsigned counts[V_COUNT], size_t n,
			  size_t not_in_ledger)
{
	unsigned v, shown = 0;

	if (c->o->json) {
		printf("{\"type\":\"summary\",\"session\":\"%s\",\"close_wait\":%zu", c->session, n);
		for (v = 0; v < V_COUNT; v++)
			printf(",\"%s\":%u", verdict_names[v], counts[v]);
		printf(",\"not_in_ledger\":%zu,\"ledger_entries\":%zu,\"ledger_full\":%llu}\n",
		       not_in_ledger, c->snap.n, (unsigned long long)c->snap.ledger_full);
		return;
	}
	printf("\n%zu socket%s in CLOSE_WAIT", n, n == 1 ? "" : "s");
	for (v = 0; v < V_COUNT; v++)
		if (counts[v])
			printf("%s %u %s", shown++ ? "," : ":", counts[v], verdict_names[v]);
	printf("\n");
}

static int load(struct cw_ctx *c, struct seg_map *m)
{
	int rc;

	rc = ledger_snapshot(m, &c->snap);
	if (rc) {
		fprintf(stderr, "sockshim: cannot copy the ledger of session \"%s\": %s\n",
			c->session, strerror(-rc));
		return rc;
	}
	rc = sockdiag_dump(SOCKDIAG_WITH_INODE, 1, &c->kern);
	if (rc) {
		fprintf(stderr,
			"sockshim: cannot list the kernel's TCP sockets through NETLINK_SOCK_DIAG: "
			"%s; load the modules with modprobe inet_diag tcp_diag (as root)\n",
			strerror(-rc));
		return rc;
	}
	rc = procfd_scan(&c->pf);
	if (rc) {
		fprintf(stderr, "sockshim: cannot scan /proc for socket descriptors: %s; is /proc "
				"mounted?\n",
			strerror(-rc));
		return rc;
	}
	rc = symbolizer_new(&c->sym);
	if (!rc)
		rc = index_kernel(c);
	if (rc)
		fprintf(stderr, "sockshim: out of memory\n");
	return rc;
}

static void unload(struct cw_ctx *c)
{
	HASH_CLEAR(hh, c->by_inode);
	free(c->kins);
	free(c->listeners);
	symbolizer_free(c->sym);
	procfd_free(c->pf);
	sockdiag_list_free(&c->kern);
	ledger_snap_free(&c->snap);
}

static int report(struct cw_ctx *c)
{
	unsigned counts[V_COUNT] = {0};
	size_t n = 0, i, not_in_ledger = 0;
	struct cw_item *items;
	char *line;

	items = calloc(c->kern.n ? c->kern.n : 1, sizeof(*items));
	line = malloc(VIEW_LINE_MAX);
	if (!items || !line) {
		free(items);
		free(line);
		fprintf(stderr, "sockshim: out of memory\n");
		return EXIT_FAIL;
	}
	for (i = 0; i < c->kern.n; i++) {
		struct cw_item *it = &items[n];

		if (c->kern.v[i].state != SOCKDIAG_CLOSE_WAIT)
			continue;
		it->k = &c->kern.v[i];
		it->ls = ledger_for(c, it->k);
		set_age(c, it);
		if (c->o->min_age_ns && (it->age_ns < 0 || it->age_ns < c->o->min_age_ns))
			continue;
		if (!it->k->inode)
			it->listener = find_listener(c, it->k);
		else
			reconcile(&c->snap, it->ls, c->pf, it->k->inode, &c->rs);
		it->verdict = decide(c, it, &c->rs, NULL);
		counts[it->verdict]++;
		if (it->k->inode && !it->ls)
			not_in_ledger++;
		n++;
	}
	qsort(items, n, sizeof(*items), by_age);
	if (!c->o->json)
		printf(ROW_FMT, "VERDICT", "AGE", "RECV-Q", "INODE", "LOCAL", "PEER");
	for (i = 0; i < n; i++) {
		if (c->o->json)
			print_json(c, &items[i], line, VIEW_LINE_MAX);
		else
			print_text(c, &items[i], line, VIEW_LINE_MAX);
	}
	print_summary(c, counts, n, not_in_ledger);
	print_forgotten(c, line, VIEW_LINE_MAX);
	print_proc_only(c, items, n, line, VIEW_LINE_MAX);
	if (!c->o->json) {
		printf("\nSources: states, queues, addresses and ages marked est. from the kernel "
		       "(sock_diag); holders from the ledger of session \"%s\" checked against "
		       "/proc/PID/fd (ledger+proc), or from one of them alone; paths, EOF times, "
		       "closes and call sites from the ledger.\n",
		       c->session);
		if (not_in_ledger)
			printf("%zu of these sockets are not in the ledger: their holders come from "
			       "/proc only.\n",
			       not_in_ledger);
		if (c->snap.ledger_full)
			printf("The ledger was full %llu times: raise it with sockshim run "
			       "--max-sockets N.\n",
			       (unsigned long long)c->snap.ledger_full);
	}
	free(items);
	free(line);
	return EXIT_OK;
}

int cmd_closewait(int argc, char **argv)
{
	struct cw_opts o;
	struct cw_ctx c;
	struct seg_map m;
	int rc;

	rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	memset(&c, 0, sizeof(c));
	c.o = &o;
	c.session = session_choose(o.session);
	if (session_check_name(c.session))
		return EXIT_USAGE;
	if (session_open(c.session, &m))
		return EXIT_FAIL;
	signal(SIGPIPE, SIG_IGN);
	rc = load(&c, &m);
	c.now_ns = mono_now();
	if (!rc)
		rc = report(&c);
	else
		rc = EXIT_FAIL;
	if (fflush(stdout) == EOF && errno != EPIPE) {
		fprintf(stderr, "sockshim: cannot write the report: %s\n", strerror(errno));
		rc = EXIT_FAIL;
	}
	unload(&c);
	seg_unmap(&m);
	return rc;
}
