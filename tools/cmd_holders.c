/* `sockshim holders`: each socket of the session with the processes that
 * hold it now, how each got it (the inheritance path), and the closes that
 * had no effect. The ledger's holders are checked against /proc/PID/fd;
 * addresses and TCP states come from the kernel (sock_diag). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli.h"
#include "format.h"
#include "kindex.h"
#include "ledger_read.h"
#include "procfd.h"
#include "noshim.h"
#include "reclaim.h"
#include "reconcile.h"
#include "session.h"
#include "sockdiag.h"
#include "sockview.h"
#include "sockshim/clock.h"
#include "symbolize.h"
#include "unseen.h"

struct holders_opts {
	const char *session;
	int json;
	pid_t pid;        /* 0: any */
	uint64_t inode;   /* 0: any */
	int by_addr;      /* ADDR:PORT given */
	int any_addr;     /* "*:PORT" or ":PORT": the port alone */
	unsigned family;  /* of addr */
	uint8_t addr[16];
	unsigned port;
};

/* One socket to show: from the ledger, or (with a filter) from /proc. */
struct hitem {
	uint64_t inode;
	const struct ledger_sock *ls;
	const struct sockdiag_sock *k;
};

struct hctx {
	const struct holders_opts *o;
	const char *session;
	struct ledger_snap snap;
	struct sockdiag_list kern;
	struct procfd *pf;
	struct symbolizer *sym;
	struct kindex kidx; /* KERN by inode */
	struct rec_sock rs;
};

static void usage(FILE *f)
{
	fputs("Usage: sockshim holders [--session NAME] [INODE | ADDR:PORT | --pid PID] [--json]\n"
	      "\n"
	      "Show each socket of the session with the processes that hold it now, how\n"
	      "each got it (fork, dup, exec, SCM_RIGHTS) and the closes that had no effect.\n"
	      "The ledger's holders are checked against /proc/PID/fd.\n"
	      "\n"
	      "  INODE              only the socket with this inode (as in /proc/PID/fd, ss -e)\n"
	      "  ADDR:PORT          only sockets with this local or peer address: 10.0.0.1:80,\n"
	      "                     [::1]:8080, or *:80 for the port alone\n"
	      "  -p, --pid PID      only sockets that process PID holds\n"
	      "  -s, --session NAME the session (default: $SOCKSHIM_SESSION, else \"default\")\n"
	      "  -j, --json         one JSON object per socket and line\n"
	      "  -h, --help         this text\n",
	      f);
}

#define bad_usage(...) (cli_usage_error("holders", usage, __VA_ARGS__), EXIT_USAGE)

/* "1.2.3.4:80", "[::1]:80", "*:80", ":80". 0 or -EINVAL. */
static int parse_addr(const char *s, struct holders_opts *o)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	long port;
	size_t n;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - s - 1);
		colon = end + 1;
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, n);
		host[n] = 0;
		if (inet_pton(AF_INET6, host, o->addr) != 1)
			return -EINVAL;
		o->family = AF_INET6;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - s);
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = 0;
		if (!n || !strcmp(host, "*"))
			o->any_addr = 1;
		else if (inet_pton(AF_INET, host, o->addr) == 1)
			o->family = AF_INET;
		else
			return -EINVAL;
	}
	if (cli_number(colon + 1, 0, 65535, &port))
		return -EINVAL;
	o->port = (unsigned)port;
	o->by_addr = 1;
	return 0;
}

static int parse_opts(int argc, char **argv, struct holders_opts *o)
{
	static const struct option longopts[] = {
		{"session", required_argument, NULL, 's'},
		{"pid", required_argument, NULL, 'p'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *what;
	char *end;
	long v;
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":s:p:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->session = optarg;
			break;
		case 'p':
			if (cli_number(optarg, 1, INT_MAX, &v))
				return bad_usage("--pid needs a process id, not '%s'", optarg);
			o->pid = (pid_t)v;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			cli_bad_option("holders", usage, c, argv);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 < argc)
		return bad_usage("unexpected argument '%s'", argv[optind + 1]);
	if (optind == argc)
		return 0;
	what = argv[optind];
	if (o->pid)
		return bad_usage("give INODE, ADDR:PORT or --pid, not two of them");
	if (isdigit((unsigned char)what[0]) && !strchr(what, ':') && !strchr(what, '.')) {
		unsigned long long ino;

		errno = 0;
		ino = strtoull(what, &end, 10);
		if (errno || *end || !ino)
			return bad_usage("'%s' is not a socket inode (a number above 0)", what);
		o->inode = ino;
		return 0;
	}
	if (parse_addr(what, o))
		return bad_usage("'%s' is neither an inode nor ADDR:PORT (1.2.3.4:80, [::1]:80, "
				 "*:80)",
				 what);
	return 0;
}

static const struct sockdiag_sock *kernel_of(const struct hctx *c, uint64_t inode)
{
	return kindex_find(&c->kidx, inode);
}

/* Is LS, the entry under the inode of the kernel's socket K (NULL: the
 * kernel does not list it), a previous socket's? sockfs's inode numbers
 * wrap: the kernel may have given its inode to another connection. */
static int previous_of(const struct ledger_sock *ls, const struct sockdiag_sock *k)
{
	return k && !ledger_sock_is_peer(ls, k->family, k->dst, k->dport);
}

static int addr_match(const struct holders_opts *o, unsigned family, const uint8_t *ip,
		      unsigned port)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (port != o->port)
		return 0;
	if (o->any_addr)
		return 1;
	if (family == o->family)
		return !memcmp(ip, o->addr, family == AF_INET ? 4 : 16);
	/* An IPv4 peer of a dual-stack socket shows as ::ffff:a.b.c.d. */
	return o->family == AF_INET && family == AF_INET6 && !memcmp(ip, mapped, 12) &&
	       !memcmp(ip + 12, o->addr, 4);
}

static int wanted(struct hctx *c, const struct hitem *it)
{
	const struct holders_opts *o = c->o;
	const struct ledger_sock *ls = it->ls;
	const struct sockdiag_sock *k = it->k;
	const struct procfd_ref *refs;
	size_t n, i;

	if (o->inode)
		return it->inode == o->inode;
	if (o->pid) {
		if (ls)
			for (i = 0; i < ls->nholders; i++)
				if (ls->holders[i].pid == o->pid)
					return 1;
		refs = procfd_refs(c->pf, it->inode, &n);
		for (i = 0; i < n; i++)
			if (refs[i].pid == o->pid)
				return 1;
		return 0;
	}
	if (o->by_addr) {
		if (ls && (ls->flags & SOCKSHIM_FLAG_LOCAL_KNOWN) &&
		    addr_match(o, ls->family, ls->local_ip, ls->local_port))
			return 1;
		if (ls && (ls->flags & SOCKSHIM_FLAG_PEER_KNOWN) &&
		    addr_match(o, ls->family, ls->peer_ip, ls->peer_port))
			return 1;
		return k && (addr_match(o, k->family, k->src, k->sport) ||
			     addr_match(o, k->family, k->dst, k->dport));
	}
	return 1;
}

/* Without a filter, the sockets held now; a named one is shown anyway. */
static int held_now(struct hctx *c, const struct ledger_sock *ls)
{
	size_t n;

	if (c->o->inode || ls->refs > 0 || ls->nholders)
		return 1;
	procfd_refs(c->pf, ls->inode, &n);
	return n > 0;
}

static const char *kind_name(unsigned family, unsigned socktype)
{
	if (family == AF_UNIX)
		return socktype == SOCK_DGRAM ? "unix-dgram" : "unix";
	if (family == AF_INET || family == AF_INET6) {
		if (socktype == SOCK_STREAM)
			return family == AF_INET ? "tcp" : "tcp6";
		if (socktype == SOCK_DGRAM)
			return family == AF_INET ? "udp" : "udp6";
		return family == AF_INET ? "ip" : "ip6";
	}
	return family ? "other" : "-";
}

static void addrs(const struct hitem *it, char *local, char *peer, size_t len)
{
	if (it->k) {
		sockdiag_addr_str(local, len, it->k->family, it->k->src, it->k->sport);
		/* A listener has no peer: the kernel says 0.0.0.0:0. */
		if (it->k->state == SOCKDIAG_LISTEN)
			snprintf(peer, len, "-");
		else
			sockdiag_addr_str(peer, len, it->k->family, it->k->dst, it->k->dport);
		return;
	}
	if (it->ls) {
		view_ledger_addr(local, len, it->ls, 0);
		view_ledger_addr(peer, len, it->ls, 1);
		return;
	}
	snprintf(local, len, "-");
	snprintf(peer, len, "-");
}

static const char *state_of(const struct hitem *it)
{
	const char *s;

	if (it->k && (s = sockdiag_state_name(it->k->state)))
		return s;
	if (it->ls && it->ls->socktype == SOCK_STREAM &&
	    (it->ls->family == AF_INET || it->ls->family == AF_INET6))
		return NULL; /* TCP, yet not listed: closed or never connected */
	return "";
}

#define HROW_FMT "  %-7s %-15s %4s %-15s %-18s %-11s %s\n"

/* Both printers: 0 once the item is printed, -ENOSPC when it did not fit
 * in LINE (nothing printed: the caller grows it and asks again). */
static int print_text(struct hctx *c, const struct hitem *it, char *line, size_t len)
{
	char local[FMT_ADDR_MAX], peer[FMT_ADDR_MAX], when[32], pid[16], fd[16], comm[64];
	const struct ledger_sock *ls = it->ls;
	const char *state = state_of(it);
	struct fmt_buf b, cb;
	unsigned i;

	reconcile(&c->snap, ls, c->pf, it->inode, &c->rs);
	addrs(it, local, peer, sizeof(local));
	fmt_buf_init(&b, line, len);
	fmt_append(&b, "socket %llu  %s  %s -> %s", (unsigned long long)it->inode,
		   ls ? kind_name(ls->family, ls->socktype)
		      : it->k ? (it->k->family == AF_INET ? "tcp" : "tcp6") : "-",
		   local, peer);
	if (!state)
		fmt_append(&b, "  (the kernel lists no such TCP socket now)");
	else if (state[0])
		fmt_append(&b, "  %s", state);
	fmt_append(&b, "\n");
	if (ls) {
		view_born_text(&b, "  ", &c->snap, ls, c->sym);
		view_shutdown_text(&b, "  ", &c->snap, ls, it->k ? it->k->state : -1, c->sym);
		fmt_append(&b, "  refs: %d (ledger), %u holder%s found", ls->refs, c->rs.live,
			   c->rs.live == 1 ? "" : "s");
		if (ls->released_ns) {
			view_clock(when, sizeof(when), &c->snap, ls->released_ns);
			fmt_append(&b, "; released at %s", when);
		}
		if (ls->holder_overflow)
			fmt_append(&b, "; %u holders did not fit in the ledger", ls->holder_overflow);
		fmt_append(&b, "\n");
	} else {
		fmt_append(&b, "  not in the ledger of session \"%s\": holders from /proc only\n",
			   c->session);
	}
	if (c->rs.n)
		fmt_append(&b, HROW_FMT, "PID", "COMM", "FD", "SINCE", "HOW", "SOURCE", "PATH");
	for (i = 0; i < c->rs.n; i++) {
		const struct rec_holder *h = &c->rs.h[i];

		snprintf(pid, sizeof(pid), "%d", h->pid);
		snprintf(fd, sizeof(fd), "%d", h->fd);
		fmt_buf_init(&cb, comm, sizeof(comm));
		ob_printable(&cb, h->comm[0] ? h->comm : "?", sizeof(h->comm));
		view_clock(when, sizeof(when), &c->snap, h->since_ns);
		fmt_append(&b, "  %-7s %-15s %4s %-15s %-18s %-11s ", pid, comm, fd, when,
			   rec_how_name(h), rec_source_name(h->source));
		if (h->stale)
			fmt_append(&b, "STALE (%s)", h->why);
		else
			view_path(&b, ls, h);
		if (h->unverified)
			fmt_append(&b, " [its /proc/%d/fd is not readable]", h->pid);
		if (h->shim == PROCFD_SHIM_WITHOUT)
			fmt_append(&b, " [" REC_NOSHIM_WORDS "]");
		fmt_append(&b, "\n");
	}
	if (c->rs.proc_extra)
		fmt_append(&b, "  and %u more holders in /proc\n", c->rs.proc_extra);
	if (ls) {
		view_noeffect_text(&b, "  ", &c->snap, ls);
		if (ls->eof_ns) {
			view_clock(when, sizeof(when), &c->snap, ls->eof_ns);
			fmt_append(&b, "  peer's EOF read by %d fd %d at %s\n", ls->eof_pid, ls->eof_fd,
				   when);
		}
		if (ls->history_lost)
			fmt_append(&b, "  (older history overwritten: the ledger keeps the last %d "
				       "steps)\n",
				   SOCKSHIM_STEPS);
	}
	fmt_append(&b, "\n");
	if (b.pos + 1 >= b.len)
		return -ENOSPC;
	fputs(line, stdout);
	return 0;
}

static int print_json(struct hctx *c, const struct hitem *it, char *line, size_t len)
{
	char local[FMT_ADDR_MAX], peer[FMT_ADDR_MAX];
	const struct ledger_sock *ls = it->ls;
	const char *state = state_of(it);
	struct fmt_buf b;

	reconcile(&c->snap, ls, c->pf, it->inode, &c->rs);
	addrs(it, local, peer, sizeof(local));
	fmt_buf_init(&b, line, len);
	fmt_append(&b, "{\"inode\":%llu,\"kind\":\"%s\"", (unsigned long long)it->inode,
		   ls ? kind_name(ls->family, ls->socktype)
		      : it->k ? (it->k->family == AF_INET ? "tcp" : "tcp6") : "-");
	fmt_append(&b, strcmp(local, "-") ? ",\"local\":\"%s\"" : ",\"local\":null", local);
	fmt_append(&b, strcmp(peer, "-") ? ",\"peer\":\"%s\"" : ",\"peer\":null", peer);
	if (state && state[0])
		fmt_append(&b, ",\"state\":\"%s\",\"kernel_lists\":true", state);
	else
		fmt_append(&b, ",\"state\":null,\"kernel_lists\":%s", state ? "null" : "false");
	view_json_members(&b, &c->snap, ls, &c->rs, it->k ? it->k->state : -1, c->sym);
	fmt_append(&b, "}\n");
	if (b.pos + 1 >= b.len)
		return -ENOSPC;
	fputs(line, stdout);
	return 0;
}

static int by_birth(const void *a, const void *b)
{
	const struct hitem *x = a, *y = b;
	uint64_t bx = x->ls ? x->ls->born_ns : UINT64_MAX, by = y->ls ? y->ls->born_ns : UINT64_MAX;

	if (bx != by)
		return bx < by ? -1 : 1;
	return (x->inode > y->inode) - (x->inode < y->inode);
}

static int collect(struct hctx *c, struct hitem **out, size_t *nout)
{
	const struct procfd_ref *refs;
	struct hitem *v, it;
	size_t n = 0, cap, i, nrefs;

	refs = procfd_all(c->pf, &nrefs);
	cap = c->snap.n + nrefs + 1;
	v = calloc(cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < c->snap.n; i++) {
		const struct ledger_sock *ls = &c->snap.v[i];

		if (ledger_find(&c->snap, ls->inode) != ls)
			continue; /* a duplicate the snapshot set aside */
		it.inode = ls->inode;
		it.ls = ls;
		it.k = kernel_of(c, ls->inode);
		if (previous_of(ls, it.k))
			continue; /* its inode is another connection's now: below */
		if (held_now(c, ls) && wanted(c, &it))
			v[n++] = it;
	}
	/* With a filter, also the sockets only /proc knows (sorted by inode:
	 * one item per inode), and those whose inode a previous socket's
	 * entry still has. */
	if (c->o->inode || c->o->pid || c->o->by_addr)
		for (i = 0; i < nrefs; i++) {
			const struct ledger_sock *ls;

			if (i && refs[i].inode == refs[i - 1].inode)
				continue;
			it.k = kernel_of(c, refs[i].inode);
			ls = ledger_find(&c->snap, refs[i].inode);
			if (ls && !previous_of(ls, it.k))
				continue;
			it.inode = refs[i].inode;
			it.ls = NULL;
			if (wanted(c, &it))
				v[n++] = it;
		}
	qsort(v, n, sizeof(*v), by_birth);
	*out = v;
	*nout = n;
	return 0;
}

static int load(struct hctx *c, struct seg_map *m)
{
	struct reclaim_kernel look = {.since_ns = sockshim_clock_ns(CLOCK_MONOTONIC)};
	int rc;

	rc = ledger_snapshot(m, &c->snap);
	if (rc) {
		fprintf(stderr, "sockshim: cannot copy the ledger of session \"%s\": %s\n",
			c->session, strerror(-rc));
		return rc;
	}
	rc = procfd_scan(&c->pf);
	if (rc) {
		fprintf(stderr, "sockshim: cannot scan /proc for socket descriptors: %s; is /proc "
				"mounted?\n",
			strerror(-rc));
		return rc;
	}
	noshim_mark(c->session, m, c->pf);
	/* Without the kernel's view we still know the holders: go on. */
	rc = sockdiag_dump(SOCKDIAG_WITH_INODE, 0, &c->kern);
	if (rc)
		fprintf(stderr,
			"sockshim: warning: cannot list the kernel's TCP sockets through "
			"NETLINK_SOCK_DIAG (%s): states and addresses come from the ledger only\n",
			strerror(-rc));
	else {
		/* Closed where the shim could not see: released before
		 * anything is shown, then the ledger copied again. */
		look.lists[0] = &c->kern;
		look.looks = 1;
		if (reclaim_run(c->session, m, &c->snap, c->pf, &look) > 0) {
			ledger_snap_free(&c->snap);
			rc = ledger_snapshot(m, &c->snap);
			if (rc)
				return rc;
		}
	}
	rc = symbolizer_new(&c->sym);
	if (rc)
		return rc;
	return kindex_add(&c->kidx, &c->kern);
}

/* Nothing held in the ledger: said so, unless /proc shows the session's
 * processes holding listeners the shim never saw (a Go or static program
 * started under `sockshim run`). */
static void say_none_held(struct hctx *c, const struct seg_map *m)
{
	char text[FMT_LINE_MAX];
	struct fmt_buf b;
	unsigned n;

	fmt_buf_init(&b, text, sizeof(text));
	n = unseen_listeners(m, c->pf, &c->kern, &c->snap, &b);
	if (!n) {
		printf("No socket is held now in session \"%s\".\n", c->session);
		return;
	}
	printf("No socket is held now in the ledger of session \"%s\", but " UNSEEN_LISTENERS_FMT
	       ".\n",
	       c->session, n, n == 1 ? "" : "s", text);
}

int cmd_holders(int argc, char **argv)
{
	struct holders_opts o;
	struct hitem *items = NULL;
	struct seg_map m;
	struct hctx c;
	size_t n = 0, i;
	char *line = NULL;
	size_t line_len;
	int rc;

	rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	memset(&c, 0, sizeof(c));
	rec_sock_init(&c.rs);
	kindex_init(&c.kidx);
	c.o = &o;
	rc = session_open_chosen(o.session, &c.session, &m);
	if (rc)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	rc = load(&c, &m);
	if (!rc)
		rc = collect(&c, &items, &n);
	line_len = VIEW_LINE_MAX;
	line = malloc(line_len);
	if (rc || !line) {
		if (rc == -ENOMEM || !line)
			fprintf(stderr, "sockshim: out of memory\n");
		rc = EXIT_FAIL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		/* A socket with hundreds of holders (a listener of a big pool)
		 * does not fit the usual line: grow it and write it again. */
		while ((o.json ? print_json : print_text)(&c, &items[i], line, line_len) == -ENOSPC) {
			char *bigger = line_len < (64u << 20) ? realloc(line, line_len * 2) : NULL;

			if (!bigger) {
				fprintf(stderr, "sockshim: out of memory\n");
				rc = EXIT_FAIL;
				goto out;
			}
			line = bigger;
			line_len *= 2;
		}
	}
	if (!o.json) {
		if (!n && !(o.inode || o.pid || o.by_addr))
			say_none_held(&c, &m);
		else if (!n)
			printf("No socket matches in session \"%s\".\n", c.session);
		else
			printf("Sources: HOW, SINCE, PATH and closes from the ledger of session "
			       "\"%s\"; SOURCE says whether /proc/PID/fd confirms the holder; "
			       "states and addresses from the kernel (sock_diag).\n",
			       c.session);
	}
	rc = EXIT_OK;
	if (cli_flush_stdout("list"))
		rc = EXIT_FAIL;
out:
	free(line);
	free(items);
	kindex_free(&c.kidx);
	symbolizer_free(c.sym);
	procfd_free(c.pf);
	sockdiag_list_free(&c.kern);
	ledger_snap_free(&c.snap);
	rec_sock_free(&c.rs);
	seg_unmap(&m);
	return rc;
}
