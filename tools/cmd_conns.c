/* `sockshim conns`: every TCP connection of the session, like ss -tanp
 * with a memory: the kernel's state, queues and timer now, and from the
 * ledger how, when and by whom it was born, who holds it, when the peer's
 * EOF came, when it was released, who closed first and how long it
 * lived. Options, the summary and the printing; conns_load.c gathers. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conns.h"
#include "format.h"
#include "outbuf.h"
#include "reconcile.h"
#include "session.h"
#include "sockview.h"

#define NS_PER_SEC 1000000000LL
#define NS_PER_MS 1000000LL

/* Where one report formats: the holders of one socket at a time. */
struct conns_out {
	struct conns_ctx *c;
	struct rec_sock rs;
	char line[VIEW_LINE_MAX];
};

static void usage(FILE *f)
{
	fputs("Usage: sockshim conns [--session NAME] [--state LIST] [--port N] [--pid PID]\n"
	      "                      [--all] [--json]\n"
	      "\n"
	      "Every TCP connection of the session, like ss -tanp with a memory: the kernel's\n"
	      "state, queues and timer now, and from the ledger how, when and by whom it was\n"
	      "born (with the call site), its holders now, the peer's EOF, its release, who\n"
	      "closed first and its lifetime. A summary first: the count per state and the\n"
	      "anomalies. Connections the kernel forgot are shown for a minute after their\n"
	      "release (CLOSED).\n"
	      "\n"
	      "  -s, --session NAME  the session (default: $SOCKSHIM_SESSION, else \"default\")\n"
	      "  -S, --state LIST    only these states, comma separated (established,\n"
	      "                      fin-wait-2, time-wait, close-wait, listen, closed, ...)\n"
	      "  -p, --port N        only connections with N as local or peer port\n"
	      "  -P, --pid PID       only connections PID created or holds\n"
	      "  -a, --all           every connection the ledger remembers, however long gone\n"
	      "  -j, --json          one JSON object per line instead of a table\n"
	      "  -h, --help          this text\n",
	      f);
}

static int parse_opts(int argc, char **argv, struct conns_opts *o)
{
	static const struct option longopts[] = {
		{"session", required_argument, NULL, 's'}, {"state", required_argument, NULL, 'S'},
		{"port", required_argument, NULL, 'p'},    {"pid", required_argument, NULL, 'P'},
		{"all", no_argument, NULL, 'a'},           {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	long v;
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":s:S:p:P:ajh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->session = optarg;
			break;
		case 'S':
			if (conn_parse_states(optarg, &o->states))
				return cli_usage_error("conns", usage,
						       "--state takes state names such as "
						       "established,time-wait, not '%s'",
						       optarg);
			break;
		case 'p':
			if (cli_number(optarg, 1, 65535, &v))
				return cli_usage_error("conns", usage,
						       "--port needs a port (1-65535), not '%s'", optarg);
			o->port = (int)v;
			break;
		case 'P':
			if (cli_number(optarg, 1, 0x7fffffff, &v))
				return cli_usage_error("conns", usage, "--pid needs a pid, not '%s'",
						       optarg);
			o->pid = (pid_t)v;
			break;
		case 'a':
			o->all = 1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			return cli_bad_option("conns", usage, c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("conns", usage, "unexpected argument '%s'", argv[optind]);
	return 0;
}

/* An end of IT: the kernel's address, else the ledger's ("-" unknown). */
static void end_append(struct fmt_buf *b, const struct conn_item *it, int peer)
{
	const struct sockdiag_sock *k = it->k;

	if (k)
		ob_addr(b, k->family, peer ? k->dst : k->src, peer ? k->dport : k->sport);
	else
		view_ledger_addr_append(b, it->ls, peer);
}

static int has_port(const struct conn_item *it, int port)
{
	if (it->k)
		return it->k->sport == port || it->k->dport == port;
	return it->ls->local_port == port || it->ls->peer_port == port;
}

static int has_pid(const struct conns_ctx *c, const struct conn_item *it, pid_t pid)
{
	const struct procfd_ref *refs;
	size_t n, i;

	if (it->ls && it->ls->born_pid == pid)
		return 1;
	if (it->ls)
		for (i = 0; i < it->ls->nholders; i++)
			if (it->ls->holders[i].pid == pid)
				return 1;
	if (!it->k || !it->k->inode)
		return 0;
	refs = procfd_refs(c->pf, it->k->inode, &n);
	for (i = 0; i < n; i++)
		if (refs[i].pid == pid)
			return 1;
	return 0;
}

static int wanted(const struct conns_ctx *c, const struct conn_item *it)
{
	const struct conns_opts *o = c->o;

	if (o->states && !(o->states & ((uint64_t)1 << it->state)))
		return 0;
	if (o->port && !has_port(it, o->port))
		return 0;
	return !o->pid || has_pid(c, it, o->pid);
}

/* Seconds with milliseconds, "12.345". */
static void secs_append(struct fmt_buf *b, int64_t ns)
{
	int64_t ms = ns % NS_PER_SEC / NS_PER_MS;

	if (ns < 0) {
		fmt_append(b, "%lld.%03lld", (long long)(ns / NS_PER_SEC), (long long)ms);
		return;
	}
	/* Without printf: three of these a row, over 10,000 rows. */
	ob_i64(b, ns / NS_PER_SEC);
	ob_char(b, '.');
	ob_char(b, (char)('0' + ms / 100));
	ob_char(b, (char)('0' + ms / 10 % 10));
	ob_char(b, (char)('0' + ms % 10));
}

/* The kernel's timer: time left, for TIME_WAIT and the FIN states. */
static int timer_ms(const struct conn_item *it, uint32_t *ms)
{
	if (!it->k || !it->k->timer)
		return 0;
	*ms = it->k->expires_ms;
	return 1;
}

static void holders_of(struct conns_out *w, const struct conn_item *it)
{
	if (it->k && it->k->inode)
		reconcile(&w->c->snap, it->ls, w->c->pf, it->k->inode, &w->rs);
	else
		w->rs.n = w->rs.live = w->rs.proc_extra = 0;
}

/* The row and its lines under it. */
static void print_text(struct conns_out *w, const struct conn_item *it)
{
	const struct conns_ctx *c = w->c;
	const struct ledger_sock *ls = it->ls;
	struct fmt_buf b;
	uint32_t ms;

	holders_of(w, it);
	fmt_buf_init(&b, w->line, sizeof(w->line));
	ob_str(&b, conn_state_name(it->state));
	ob_pad_to(&b, 12, 1);
	ob_u64_rjust(&b, it->k ? it->k->rqueue : 0, 6);
	ob_char(&b, ' ');
	ob_u64_rjust(&b, it->k ? it->k->wqueue : 0, 6);
	ob_char(&b, ' ');
	end_append(&b, it, 0);
	ob_pad_to(&b, 50, 1);
	end_append(&b, it, 1);
	ob_pad_to(&b, 74, 1);
	if (timer_ms(it, &ms)) {
		secs_append(&b, (int64_t)ms * NS_PER_MS);
		ob_char(&b, 's');
	} else {
		ob_char(&b, '-');
	}
	ob_pad_to(&b, 85, 1);
	ob_str(&b, conn_closer_name(it->closer));
	ob_pad_to(&b, 94, 1);
	if (it->lifetime_ns >= 0) {
		secs_append(&b, it->lifetime_ns);
		ob_char(&b, 's');
	} else {
		ob_char(&b, '-');
	}
	ob_char(&b, '\n');
	if (it->listener) {
		ob_str(&b, "    in the accept queue of listener ");
		view_ledger_addr_append(&b, it->listener, 0);
		ob_str(&b, " (never accepted)\n");
	}
	if (ls) {
		if (it->fin_age_ns >= 0) {
			ob_str(&b, "    this side's FIN ");
			secs_append(&b, it->fin_age_ns);
			ob_str(&b, "s ago, at ");
			view_clock_append(&b, &c->snap, it->local_close_ns);
			ob_char(&b, '\n');
		}
		if (view_eof_by_shutdown(ls, it->k ? it->k->state : -1))
			ob_str(&b, "    EOF (from the shutdown for reading, not the peer): ");
		else
			ob_str(&b, "    peer EOF: ");
		view_clock_append(&b, &c->snap, ls->eof_ns);
		ob_str(&b, "; released: ");
		view_clock_append(&b, &c->snap, ls->released_ns);
		ob_char(&b, '\n');
		view_born_text(&b, "    ", &c->snap, ls, c->sym);
		view_shutdown_text(&b, "    ", &c->snap, ls, it->k ? it->k->state : -1, c->sym);
	}
	if (it->k && it->k->inode) {
		ob_str(&b, "    holders: ");
		view_holders_inline(&b, &c->snap, &w->rs);
		ob_char(&b, '\n');
	}
	fputs(w->line, stdout);
}

static void json_born(struct fmt_buf *b, const struct conns_ctx *c, const struct ledger_sock *ls)
{
	const char *comm, *how;

	if (!ls) {
		ob_str(b, ",\"born\":null");
		return;
	}
	how = ledger_born_name(ls->born);
	comm = ledger_comm_of(ls, ls->born_pid);
	ob_str(b, ",\"born\":{\"how\":\"");
	ob_str(b, how ? how : "unknown");
	ob_str(b, "\",\"pid\":");
	ob_i64(b, ls->born_pid);
	ob_str(b, ",\"fd\":");
	ob_i64(b, ls->born_fd);
	ob_str(b, ",\"comm\":");
	if (comm)
		ob_json_str(b, comm, LEDGER_COMM_MAX);
	else
		ob_str(b, "null");
	view_json_time(b, "time", &c->snap, ls->born_ns);
	view_json_callsite(b, ls, c->sym);
	ob_char(b, '}');
}

static void json_ns_or_null(struct fmt_buf *b, const char *key, int64_t ns)
{
	ob_str(b, ",\"");
	ob_str(b, key);
	ob_str(b, "\":");
	if (ns >= 0)
		secs_append(b, ns);
	else
		ob_str(b, "null");
}

static void print_json(struct conns_out *w, const struct conn_item *it)
{
	const struct conns_ctx *c = w->c;
	const struct ledger_sock *ls = it->ls;
	struct fmt_buf b;
	uint32_t ms;

	holders_of(w, it);
	fmt_buf_init(&b, w->line, sizeof(w->line));
	ob_str(&b, "{\"type\":\"conn\",\"state\":\"");
	ob_str(&b, conn_state_name(it->state));
	ob_str(&b, it->k ? "\",\"in_kernel\":true,\"local\":\"" : "\",\"in_kernel\":false,\"local\":\"");
	end_append(&b, it, 0);
	ob_str(&b, "\",\"peer\":\"");
	end_append(&b, it, 1);
	ob_str(&b, "\",\"inode\":");
	/* Without the kernel's socket, the ledger's entry is what there is. */
	ob_u64(&b, it->k ? it->k->inode : ls ? ls->inode : 0);
	if (it->k) {
		ob_str(&b, ",\"recv_q\":");
		ob_u64(&b, it->k->rqueue);
		ob_str(&b, ",\"send_q\":");
		ob_u64(&b, it->k->wqueue);
	} else
		ob_str(&b, ",\"recv_q\":null,\"send_q\":null");
	json_ns_or_null(&b, "timer_s", timer_ms(it, &ms) ? (int64_t)ms * NS_PER_MS : -1);
	ob_str(&b, ",\"closer\":\"");
	ob_str(&b, conn_closer_name(it->closer));
	ob_char(&b, '"');
	json_ns_or_null(&b, "fin_age_s", it->fin_age_ns);
	ob_str(&b, ",\"anomaly\":");
	if (it->anomaly != CONN_OK)
		ob_json_str(&b, conn_anomaly_reason(it->anomaly), 1024);
	else
		ob_str(&b, "null");
	ob_str(&b, ",\"queued_on\":");
	if (it->listener) {
		ob_char(&b, '"');
		view_ledger_addr_append(&b, it->listener, 0);
		ob_char(&b, '"');
	} else {
		ob_str(&b, "null");
	}
	json_born(&b, c, ls);
	view_json_shutdowns(&b, &c->snap, ls, it->k ? it->k->state : -1, c->sym);
	view_json_holders(&b, &c->snap, ls, &w->rs);
	if (ls && ls->eof_ns) {
		fmt_append(&b, ",\"eof\":{\"pid\":%d,\"fd\":%d", (int)ls->eof_pid, ls->eof_fd);
		view_json_time(&b, "time", &c->snap, ls->eof_ns);
		view_json_eof_cause(&b, ls, it->k ? it->k->state : -1);
		ob_char(&b, '}');
	} else {
		ob_str(&b, ",\"eof\":null");
	}
	view_json_time(&b, "released", &c->snap, ls ? ls->released_ns : 0);
	json_ns_or_null(&b, "lifetime_s", it->lifetime_ns);
	ob_str(&b, "}\n");
	fputs(w->line, stdout);
}

/* One line per kind of anomaly: how many, the first one as an example,
 * and why it matters (thousands of TIME_WAIT sockets are one line). */
static void print_anomalies(struct conns_out *w, const unsigned char *show)
{
	const struct conns_ctx *c = w->c;
	const struct conn_item *first[CONN_ANOMALY_COUNT] = {NULL};
	size_t count[CONN_ANOMALY_COUNT] = {0}, i;
	struct fmt_buf b;
	unsigned a;

	for (i = 0; i < c->n; i++) {
		a = c->items[i].anomaly;
		if (!show[i] || a == CONN_OK || a >= CONN_ANOMALY_COUNT)
			continue;
		if (!count[a]++)
			first[a] = &c->items[i];
	}
	for (a = CONN_OK + 1; a < CONN_ANOMALY_COUNT; a++) {
		if (!count[a] || !first[a]) /* a count has its first */
			continue;
		fmt_buf_init(&b, w->line, sizeof(w->line));
		fmt_append(&b, "  anomaly: %zu %s (", count[a], conn_state_name(first[a]->state));
		end_append(&b, first[a], 0);
		ob_str(&b, " -> ");
		end_append(&b, first[a], 1);
		if (count[a] > 1)
			fmt_append(&b, " and %zu more", count[a] - 1);
		ob_str(&b, "): ");
		ob_str(&b, conn_anomaly_reason(a));
		ob_char(&b, '\n');
		fputs(w->line, stdout);
	}
}

/* The counts per state and the anomalies, before the connections. */
static void print_summary(struct conns_out *w, const unsigned char *show)
{
	const struct conns_ctx *c = w->c;
	unsigned counts[CONN_GONE + 1] = {0}, s, shown = 0;
	size_t i, anomalies = 0;
	struct fmt_buf b;

	for (i = 0; i < c->n; i++) {
		if (!show[i])
			continue;
		counts[c->items[i].state]++;
		anomalies += c->items[i].anomaly != CONN_OK;
	}
	fmt_buf_init(&b, w->line, sizeof(w->line));
	if (c->o->json) {
		fmt_append(&b, "{\"type\":\"summary\",\"session\":\"%s\",\"states\":{", c->session);
		for (s = 1; s <= CONN_GONE; s++)
			if (counts[s])
				fmt_append(&b, "%s\"%s\":%u", shown++ ? "," : "", conn_state_name(s),
					   counts[s]);
		fmt_append(&b, "},\"anomalies\":%zu,\"fin_timeout_s\":%ld}\n", anomalies,
			   c->fin_timeout_s);
		fputs(w->line, stdout);
		return;
	}
	fmt_append(&b, "Session \"%s\":", c->session);
	for (s = 1; s <= CONN_GONE; s++)
		if (counts[s])
			fmt_append(&b, "%s %u %s", shown++ ? "," : "", counts[s], conn_state_name(s));
	if (!shown)
		ob_str(&b, " no TCP connection");
	ob_str(&b, counts[CONN_GONE] ? " (CLOSED: gone from the kernel, remembered by the ledger)\n"
				     : "\n");
	fputs(w->line, stdout);
	print_anomalies(w, show);
}

static int report(struct conns_ctx *c)
{
	struct conns_out *w = malloc(sizeof(*w));
	unsigned char *show = calloc(c->n + 1, 1);
	size_t i;

	if (!w || !show) {
		free(w);
		free(show);
		fprintf(stderr, "sockshim: out of memory\n");
		return EXIT_FAIL;
	}
	w->c = c;
	rec_sock_init(&w->rs);
	for (i = 0; i < c->n; i++)
		show[i] = (unsigned char)wanted(c, &c->items[i]);
	print_summary(w, show);
	if (!c->o->json)
		printf("\n%-11s %6s %6s %-23s %-23s %-10s %-8s %s\n", "STATE", "RECV-Q", "SEND-Q",
		       "LOCAL", "PEER", "TIMER", "CLOSER", "LIFETIME");
	for (i = 0; i < c->n; i++) {
		if (!show[i])
			continue;
		if (c->o->json)
			print_json(w, &c->items[i]);
		else
			print_text(w, &c->items[i]);
	}
	if (!c->o->json)
		printf("\nSources: states, queues, addresses and timers from the kernel (sock_diag); "
		       "births, call sites, EOF and release times from the ledger of session \"%s\"; "
		       "holders from the ledger checked against /proc/PID/fd.\n",
		       c->session);
	rec_sock_free(&w->rs);
	free(w);
	free(show);
	return EXIT_OK;
}

int cmd_conns(int argc, char **argv)
{
	struct conns_opts o;
	struct conns_ctx *c;
	struct seg_map m;
	int rc;

	rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	c = calloc(1, sizeof(*c));
	if (!c) {
		fprintf(stderr, "sockshim: out of memory\n");
		return EXIT_FAIL;
	}
	c->o = &o;
	tw_model_init(&c->tuples);
	rc = session_open_chosen(o.session, &c->session, &m);
	if (rc) {
		free(c);
		return rc;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = conns_load(c, &m) ? EXIT_FAIL : report(c);
	if (cli_flush_stdout("report"))
		rc = EXIT_FAIL;
	conns_unload(c);
	seg_unmap(&m);
	free(c);
	return rc;
}
