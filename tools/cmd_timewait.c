/* `sockshim timewait`: the host's TIME_WAIT sockets that the session's
 * processes left, grouped by cause (side, ends, call site) with the rate
 * of new connections, the ephemeral ports they take and a remedy. A
 * TIME_WAIT socket has no inode and no owner: it is matched to the
 * ledger by its four addresses (tw_model.c), which also does the
 * arithmetic; this file loads the evidence and prints. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "format.h"
#include "outbuf.h"
#include "session.h"
#include "sockview.h"
#include "symbolize.h"
#include "tw_model.h"
#include "sockshim/clock.h"

#define PORT_RANGE_PATH "/proc/sys/net/ipv4/ip_local_port_range"
/* Room for a process's command line as shown. */
#define CMDLINE_MAX 256

struct tw_opts {
	const char *session;
	int json;
	int all;
};

struct tw_ctx {
	const struct tw_opts *o;
	const char *session;
	struct ledger_snap snap;
	struct sockdiag_list kern; /* the host's TIME_WAIT sockets */
	struct tw_model model;
	struct symbolizer *sym;
	unsigned port_lo, port_hi;
	uint64_t now_ns;
	char line[VIEW_LINE_MAX];
};

static void usage(FILE *f)
{
	fputs("Usage: sockshim timewait [--session NAME] [--all] [--json]\n"
	      "\n"
	      "The host's TCP sockets in TIME_WAIT that the session's processes left (the side\n"
	      "that closes first keeps the connection's four addresses for 60 s), matched to\n"
	      "the session's ledger by their addresses and grouped by cause: the side (client:\n"
	      "born by connect, server: born by accept), the ends, the creators and the call\n"
	      "site. Per group: the new connections a second over the last minute, for a\n"
	      "client the share of the ephemeral port range in TIME_WAIT toward its\n"
	      "destination and the time until it is used up at that rate, and a remedy.\n"
	      "\n"
	      "  -s, --session NAME  the session (default: $SOCKSHIM_SESSION, else \"default\")\n"
	      "  -a, --all           also list the TIME_WAIT sockets the ledger cannot explain\n"
	      "                      (by default they are only counted)\n"
	      "  -j, --json          one JSON object per line instead of a table\n"
	      "  -h, --help          this text\n",
	      f);
}

static int parse_opts(int argc, char **argv, struct tw_opts *o)
{
	static const struct option longopts[] = {
		{"session", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"all", no_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":s:jah", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->session = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'a':
			o->all = 1;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			return cli_bad_option("timewait", usage, c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("timewait", usage, "unexpected argument '%s'", argv[optind]);
	return 0;
}

/* The ephemeral port range; the kernel's default when it cannot be read. */
static void read_port_range(struct tw_ctx *c)
{
	char text[64];
	ssize_t n;
	int fd;

	c->port_lo = 32768;
	c->port_hi = 60999;
	fd = open(PORT_RANGE_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return;
	text[n] = 0;
	if (tw_parse_port_range(text, &c->port_lo, &c->port_hi))
		fprintf(stderr, "sockshim: %s is not two ports; taking 32768-60999\n",
			PORT_RANGE_PATH);
}

/* PID's command line, arguments separated by blanks, or "" when it is gone. */
static void read_cmdline(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n, i;
	int fd;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return;
	while (n > 0 && !buf[n - 1])
		n--;
	for (i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = ' ';
	buf[n] = 0;
}

static int load(struct tw_ctx *c, struct seg_map *m)
{
	int rc;

	rc = sockdiag_dump_settled(SOCKDIAG_F(SOCKDIAG_TIME_WAIT), 0, &c->kern);
	if (rc)
		return sockdiag_say_error(rc);
	sockdiag_sort(&c->kern);
	rc = ledger_snapshot(m, &c->snap);
	if (rc) {
		fprintf(stderr, "sockshim: cannot copy the ledger of session \"%s\": %s\n",
			c->session, strerror(-rc));
		return rc;
	}
	c->now_ns = sockshim_clock_ns(CLOCK_MONOTONIC);
	read_port_range(c);
	rc = symbolizer_new(&c->sym);
	if (!rc)
		rc = tw_index(&c->model, &c->snap);
	if (rc)
		fprintf(stderr, "sockshim: out of memory\n");
	return rc;
}

/* An end of group G: its address, and its port or '*' where it varies. */
static void group_end(struct fmt_buf *b, const struct tw_group *g, int peer)
{
	unsigned port = peer ? g->key.pport : g->key.lport;

	ob_addr(b, AF_INET6, peer ? g->key.pip : g->key.lip, port);
	if (!port && b->pos && b->p[b->pos - 1] == '0') {
		b->p[--b->pos] = 0;
		ob_char(b, '*');
	}
}

/* "never", or a time in seconds. */
static void exhaustion_text(struct fmt_buf *b, double s)
{
	if (s < 0)
		ob_str(b, "never");
	else
		fmt_append(b, "%.1fs", s);
}

static const char *comm_of(const struct tw_pid *p)
{
	const char *comm = ledger_comm_of(p->ls, p->pid);

	return comm ? comm : "?";
}

static void print_group_text(struct tw_ctx *c, const struct tw_group *g)
{
	char cmdline[CMDLINE_MAX];
	struct fmt_buf b;
	size_t i;

	fmt_buf_init(&b, c->line, sizeof(c->line));
	ob_u64_rjust(&b, g->count, 9);
	ob_pad_to(&b, 11, 1);
	ob_str(&b, tw_side_name(g->key.side));
	ob_pad_to(&b, 19, 1);
	group_end(&b, g, 0);
	ob_pad_to(&b, 43, 1);
	group_end(&b, g, 1);
	ob_pad_to(&b, 67, 1);
	fmt_append(&b, "%8.1f", g->rate);
	ob_pad_to(&b, 77, 1);
	if (g->share >= 0)
		fmt_append(&b, "%6.2f%%  ", 100 * g->share);
	else
		ob_str(&b, "     -   ");
	if (g->key.side == TW_CLIENT)
		exhaustion_text(&b, g->exhaustion_s);
	else
		ob_char(&b, '-');
	ob_str(&b, "\n    closer: local (this side closed first); born by ");
	ob_str(&b, ledger_born_name(g->first->born));
	if (g->key.side == TW_SERVER) {
		ob_str(&b, " on listener ");
		group_end(&b, g, 0);
	}
	ob_str(&b, "\n    created by:");
	for (i = 0; i < g->npids; i++) {
		ob_str(&b, i ? ", " : " ");
		ob_printable(&b, comm_of(&g->pids[i]), LEDGER_COMM_MAX);
		ob_char(&b, ' ');
		ob_i64(&b, g->pids[i].pid);
		fmt_append(&b, " (%zu)", g->pids[i].count);
	}
	ob_char(&b, '\n');
	for (i = 0; i < g->npids && i < 4; i++) {
		read_cmdline(g->pids[i].pid, cmdline, sizeof(cmdline));
		if (!cmdline[0])
			continue;
		fmt_append(&b, "    command of %d: ", (int)g->pids[i].pid);
		ob_printable(&b, cmdline, sizeof(cmdline));
		ob_char(&b, '\n');
	}
	view_born_text(&b, "    ", &c->snap, g->first, c->sym);
	if (g->key.side == TW_CLIENT)
		fmt_append(&b, "    ports: %zu of %u (%u-%u) toward it in TIME_WAIT\n",
			   g->dest ? g->dest->count : 0, c->port_hi - c->port_lo + 1, c->port_lo,
			   c->port_hi);
	ob_str(&b, "    remedy: ");
	ob_str(&b, tw_remedy(g->key.side));
	ob_str(&b, "\n");
	fputs(c->line, stdout);
}

static void json_double_or_null(struct fmt_buf *b, const char *key, double v, int have)
{
	if (have)
		fmt_append(b, ",\"%s\":%.9g", key, v);
	else
		fmt_append(b, ",\"%s\":null", key);
}

static void print_group_json(struct tw_ctx *c, const struct tw_group *g)
{
	char cmdline[CMDLINE_MAX];
	struct fmt_buf b;
	size_t i;

	fmt_buf_init(&b, c->line, sizeof(c->line));
	ob_str(&b, "{\"type\":\"group\",\"side\":\"");
	ob_str(&b, tw_side_name(g->key.side));
	ob_str(&b, "\",\"closer\":\"local\",\"born\":\"");
	ob_str(&b, ledger_born_name(g->first->born));
	ob_str(&b, "\",\"local\":\"");
	group_end(&b, g, 0);
	ob_str(&b, "\",\"peer\":\"");
	group_end(&b, g, 1);
	ob_str(&b, "\",\"listener\":");
	if (g->key.side == TW_SERVER) {
		ob_char(&b, '"');
		group_end(&b, g, 0);
		ob_char(&b, '"');
	} else {
		ob_str(&b, "null");
	}
	fmt_append(&b, ",\"count\":%zu,\"pids\":[", g->count);
	for (i = 0; i < g->npids; i++) {
		fmt_append(&b, "%s{\"pid\":%d,\"comm\":", i ? "," : "", (int)g->pids[i].pid);
		ob_json_str(&b, comm_of(&g->pids[i]), LEDGER_COMM_MAX);
		fmt_append(&b, ",\"count\":%zu,\"cmdline\":", g->pids[i].count);
		read_cmdline(g->pids[i].pid, cmdline, sizeof(cmdline));
		if (cmdline[0])
			ob_json_str(&b, cmdline, sizeof(cmdline));
		else
			ob_str(&b, "null");
		ob_char(&b, '}');
	}
	ob_char(&b, ']');
	view_json_callsite(&b, g->first, c->sym);
	fmt_append(&b, ",\"births_60s\":%zu,\"rate_per_s\":%.9g", g->births, g->rate);
	fmt_append(&b, ",\"port_range\":[%u,%u]", c->port_lo, c->port_hi);
	json_double_or_null(&b, "port_share", g->share, g->share >= 0);
	fmt_append(&b, ",\"dest_time_wait\":");
	if (g->dest)
		ob_u64(&b, g->dest->count);
	else
		ob_str(&b, "null");
	json_double_or_null(&b, "exhaustion_s", g->exhaustion_s, g->exhaustion_s >= 0);
	ob_str(&b, ",\"remedy\":");
	ob_json_str(&b, tw_remedy(g->key.side), 1024);
	ob_str(&b, "}\n");
	fputs(c->line, stdout);
}

/* The TIME_WAIT sockets no ledger entry explains, one line each. */
static void print_unattributed(struct tw_ctx *c)
{
	struct fmt_buf b;
	size_t i, n = 0;

	for (i = 0; i < c->kern.n; i++) {
		const struct sockdiag_sock *k = &c->kern.v[i];

		if (tw_match(&c->model, k))
			continue;
		fmt_buf_init(&b, c->line, sizeof(c->line));
		if (c->o->json) {
			ob_str(&b, "{\"type\":\"unattributed\",\"local\":\"");
			ob_addr(&b, k->family, k->src, k->sport);
			ob_str(&b, "\",\"peer\":\"");
			ob_addr(&b, k->family, k->dst, k->dport);
			fmt_append(&b, "\",\"expires_s\":%.3f}\n", k->expires_ms / 1000.0);
		} else {
			if (!n++)
				fputs("\nNot the session's (no ledger entry has their addresses):\n",
				      stdout);
			ob_str(&b, "  ");
			ob_addr(&b, k->family, k->src, k->sport);
			ob_pad_to(&b, 26, 1);
			ob_addr(&b, k->family, k->dst, k->dport);
			ob_pad_to(&b, 50, 1);
			fmt_append(&b, "%.1fs left\n", k->expires_ms / 1000.0);
		}
		fputs(c->line, stdout);
	}
}

static void print_summary(const struct tw_ctx *c)
{
	const struct tw_model *t = &c->model;

	if (c->o->json) {
		printf("{\"type\":\"summary\",\"session\":\"%s\",\"time_wait\":%zu,\"attributed\":%zu,"
		       "\"unattributed\":%zu,\"groups\":%zu,\"port_range\":[%u,%u]}\n",
		       c->session, c->kern.n, t->attributed, t->unattributed, t->ngroups,
		       c->port_lo, c->port_hi);
		return;
	}
	printf("\n%zu TIME_WAIT socket%s of session \"%s\" in %zu group%s (closer: local for "
	       "all: TIME_WAIT is the state of the side that closed first).\n",
	       t->attributed, t->attributed == 1 ? "" : "s", c->session, t->ngroups,
	       t->ngroups == 1 ? "" : "s");
	if (t->unattributed && !c->o->all)
		printf("%zu more TIME_WAIT socket%s on this host %s not the session's: --all lists "
		       "%s.\n",
		       t->unattributed, t->unattributed == 1 ? "" : "s",
		       t->unattributed == 1 ? "is" : "are", t->unattributed == 1 ? "it" : "them");
	else if (t->unattributed)
		printf("%zu more TIME_WAIT socket%s on this host %s not the session's.\n",
		       t->unattributed, t->unattributed == 1 ? "" : "s",
		       t->unattributed == 1 ? "is" : "are");
	printf("Sources: states, addresses and timers from the kernel (sock_diag); creators, "
	       "births and call sites from the ledger, matched by the four addresses; the port "
	       "range from %s. Rates count the ledger's births of the last 60 s.\n",
	       PORT_RANGE_PATH);
}

static int report(struct tw_ctx *c)
{
	size_t i;
	int rc;

	for (i = 0; i < c->kern.n; i++) {
		const struct sockdiag_sock *k = &c->kern.v[i];

		rc = tw_add(&c->model, k, tw_match(&c->model, k));
		if (rc)
			goto nomem;
	}
	rc = tw_finish(&c->model, &c->snap, (uint64_t)c->port_hi - c->port_lo + 1, c->now_ns);
	if (rc)
		goto nomem;
	if (!c->o->json && c->model.ngroups)
		printf("%9s  %-7s %-23s %-23s %8s  %7s  %s\n", "TIME_WAIT", "SIDE", "LOCAL", "PEER",
		       "RATE/S", "PORTS", "EXHAUSTION");
	for (i = 0; i < c->model.ngroups; i++) {
		if (c->o->json)
			print_group_json(c, c->model.sorted[i]);
		else
			print_group_text(c, c->model.sorted[i]);
	}
	if (c->o->json)
		print_summary(c);
	if (c->o->all)
		print_unattributed(c);
	if (!c->o->json)
		print_summary(c);
	return EXIT_OK;
nomem:
	fprintf(stderr, "sockshim: out of memory\n");
	return EXIT_FAIL;
}

int cmd_timewait(int argc, char **argv)
{
	struct tw_opts o;
	struct tw_ctx *c;
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
	tw_model_init(&c->model);
	rc = session_open_chosen(o.session, &c->session, &m);
	if (rc) {
		free(c);
		return rc;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = load(c, &m) ? EXIT_FAIL : report(c);
	if (cli_flush_stdout("report"))
		rc = EXIT_FAIL;
	tw_model_free(&c->model);
	symbolizer_free(c->sym);
	sockdiag_list_free(&c->kern);
	ledger_snap_free(&c->snap);
	seg_unmap(&m);
	free(c);
	return rc;
}
