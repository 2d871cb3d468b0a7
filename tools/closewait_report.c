/* The closewait report: over the evidence closewait_load.c gathered, one
 * verdict per socket (closewait_verdict.c), oldest first, and the facts
 * printed with where each came from, as a table or JSON lines; then the
 * summary, the sockets the kernel forgot and those /proc alone knows.
 * Big reports are formatted by two threads, each into its own memory. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bigmem.h"
#include "cli.h"
#include "closewait.h"
#include "closewait_verdict.h"
#include "format.h"
#include "outbuf.h"
#include "reconcile.h"
#include "sockdiag.h"
#include "sockview.h"

#define NS_PER_SEC 1000000000LL
#define NS_PER_MS 1000000LL

struct cw_item {
	const struct sockdiag_sock *k;
	const struct ledger_sock *ls;
	const struct sockdiag_sock *listener; /* UNACCEPTED: the listener, if found */
	struct cw_decision d; /* by judge(), as it is printed */
	int64_t age_ns; /* -1: unknown */
	int age_est;    /* from tcp_info, not from the ledger's EOF time */
	int proc_only;  /* some holder is known to /proc alone */
};

/* Where one thread formats its sockets: its scratch and its output, a
 * stream or (OUT NULL) memory of its own. */
struct cw_writer {
	struct rec_sock rs; /* one socket at a time */
	char line[VIEW_LINE_MAX];
	FILE *out;
	char *mem;
	size_t mem_len, mem_cap;
	int mem_failed;
};

/* The formatted line to W's output. */
static void emit(struct cw_writer *w)
{
	size_t n;

	if (w->out) {
		fputs(w->line, w->out);
		return;
	}
	n = strlen(w->line);
	if (w->mem_failed)
		return;
	if (w->mem_len + n > w->mem_cap) {
		size_t cap = w->mem_cap ? w->mem_cap : (size_t)1 << 22;
		char *m;

		while (cap < w->mem_len + n)
			cap *= 2;
		m = big_realloc(w->mem, cap);
		if (!m) {
			w->mem_failed = 1;
			return;
		}
		w->mem = m;
		w->mem_cap = cap;
	}
	memcpy(w->mem + w->mem_len, w->line, n);
	w->mem_len += n;
}


static void kaddr(char *buf, size_t len, const struct sockdiag_sock *k, int peer)
{
	sockdiag_addr_str(buf, len, k->family, peer ? k->dst : k->src, peer ? k->dport : k->sport);
}

static void kaddr_append(struct fmt_buf *b, const struct sockdiag_sock *k, int peer)
{
	ob_addr(b, k->family, peer ? k->dst : k->src, peer ? k->dport : k->sport);
}

static void holder_name(struct fmt_buf *b, const struct rec_holder *h)
{
	if (h->comm[0])
		ob_printable(b, h->comm, sizeof(h->comm));
	else
		ob_char(b, '?');
	ob_char(b, ' ');
	ob_i64(b, h->pid);
	ob_put(b, " fd ", 4);
	ob_i64(b, h->fd);
}

/* The live holders, "sleep 4123 fd 6 (exec)", comma separated. */
static void live_holders(struct fmt_buf *b, const struct rec_sock *rs)
{
	unsigned i, n = 0;

	for (i = 0; i < rs->n; i++) {
		if (rs->h[i].stale)
			continue;
		if (n++)
			ob_put(b, ", ", 2);
		holder_name(b, &rs->h[i]);
		ob_put(b, " (", 2);
		ob_str(b, rs->h[i].shim == PROCFD_SHIM_WITHOUT && !(rs->h[i].source & REC_LEDGER)
				  ? REC_NOSHIM_WORDS
				  : rec_how_name(&rs->h[i]));
		if (rs->h[i].shim == PROCFD_SHIM_WITHOUT && (rs->h[i].source & REC_LEDGER))
			ob_str(b, ", " REC_NOSHIM_WORDS);
		ob_char(b, ')');
	}
	if (rs->proc_extra)
		fmt_append(b, "%sand %u more in /proc", n++ ? ", " : "", rs->proc_extra);
	if (!n)
		ob_str(b, "nobody we can see");
}

/* UNACCEPTED: the accept queue it waits in, when its listener was found. */
static void why_unaccepted(struct fmt_buf *b, const struct cw_item *it)
{
	const struct sockdiag_sock *l = it->listener;
	char addr[FMT_ADDR_MAX];

	if (!l) {
		fmt_append(b, "no descriptor (inode 0), and no listener on port %u was found",
			   it->k->sport);
		return;
	}
	kaddr(addr, sizeof(addr), l, 0);
	fmt_append(b, "still in the accept queue of listener %s (inode %llu, %u queued, "
		      "backlog %u): nobody accepted it",
		   addr, (unsigned long long)l->inode, l->rqueue, l->wqueue);
}

static void why_hung(struct fmt_buf *b, const struct rec_holder *h)
{
	holder_name(b, h);
	fmt_append(b, " holds it and is %s (state %c)",
		   h->state == 'D' ? "in uninterruptible sleep" : "stopped", h->state);
}

/* EOF-READ-NOT-CLOSED: H is the holder that read the EOF. */
static void why_eof_read(const struct cw_ctx *c, struct fmt_buf *b, const struct ledger_sock *ls,
			 const struct rec_holder *h)
{
	char when[32];

	view_clock(when, sizeof(when), &c->snap, ls->eof_ns);
	ob_printable(b, h->comm[0] ? h->comm : "?", sizeof(h->comm));
	fmt_append(b, " %d read the EOF on fd %d at %s and still holds it, but never closed it",
		   ls->eof_pid, ls->eof_fd, when);
}

static void why_inherited(struct fmt_buf *b, const struct ledger_sock *ls,
			  const struct rec_sock *rs, const struct cw_decision *d)
{
	const char *comm = ledger_comm_of(ls, ls->born_pid);

	ob_printable(b, comm ? comm : "?", LEDGER_COMM_MAX);
	ob_char(b, ' ');
	ob_i64(b, ls->born_pid);
	ob_str(b, ls->born == SOCKSHIM_BORN_ACCEPT ? " (which accepted it) "
						   : " (which created it) ");
	if (d->owner_holds)
		ob_str(b, "still has a copy, but other processes hold it too");
	else
		ob_str(b, "closed its copy");
	if (ls->noeffect_closes)
		fmt_append(b, "; %u close%s had no effect", ls->noeffect_closes,
			   ls->noeffect_closes == 1 ? "" : "s");
	ob_str(b, "; held now by ");
	live_holders(b, rs);
}

static void why_unknown(struct fmt_buf *b, const struct cw_item *it, const struct rec_sock *rs)
{
	if (!it->ls)
		fmt_append(b, "not in the ledger (created outside the session, before the "
			      "shim, or the ledger was full)");
	else
		fmt_append(b, "in the ledger, refs %d", it->ls->refs);
	if (it->d.eof == CW_EOF_READ_BY_GONE)
		fmt_append(b, "; Recv-Q 0: the EOF was read, by a process that no longer holds it");
	else if (it->d.eof == CW_EOF_READ_UNSEEN)
		fmt_append(b, "; Recv-Q 0: the EOF was read, but the ledger did not see by whom");
	fmt_append(b, "; held by ");
	live_holders(b, rs);
}

/* Why IT has the verdict judge() gave it, whose holders are RS (as judge
 * left them), for people: the "why:" line and JSON's "reason". */
static void why_append(const struct cw_ctx *c, const struct cw_item *it,
		       const struct rec_sock *rs, struct fmt_buf *b)
{
	switch (it->d.verdict) {
	case CW_UNACCEPTED:
		why_unaccepted(b, it);
		break;
	case CW_HUNG_HOLDER:
		why_hung(b, &rs->h[it->d.holder]);
		break;
	case CW_EOF_READ_NOT_CLOSED:
		why_eof_read(c, b, it->ls, &rs->h[it->d.holder]);
		break;
	case CW_INHERITED:
		why_inherited(b, it->ls, rs, &it->d);
		break;
	case CW_EOF_NOT_READ:
		ob_str(b, "Recv-Q ");
		ob_u64(b, it->k->rqueue);
		ob_str(b, ": nobody read the EOF (the FIN counts as one); held by ");
		live_holders(b, rs);
		break;
	default:
		why_unknown(b, it, rs);
		break;
	}
}

static int has_proc_only(const struct rec_sock *rs)
{
	unsigned i;

	for (i = 0; i < rs->n; i++)
		if (rs->h[i].source == REC_PROC)
			return 1;
	return rs->proc_extra > 0;
}

static void set_age(const struct cw_ctx *c, struct cw_item *it)
{
	it->age_ns = -1;
	it->age_est = 0;
	/* Compared unsigned: an EOF time of 2^63 or more (written by anyone)
	 * must not turn negative and overflow the subtraction. */
	if (it->ls && it->ls->eof_ns && c->now_ns >= 0 && it->ls->eof_ns <= (uint64_t)c->now_ns) {
		it->age_ns = (int64_t)((uint64_t)c->now_ns - it->ls->eof_ns);
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

static void age_append(struct fmt_buf *b, const struct cw_item *it)
{
	char a[32];

	if (it->age_ns < 0) {
		ob_char(b, '?');
		return;
	}
	fmt_age(a, sizeof(a), it->age_ns / NS_PER_SEC);
	ob_str(b, a);
	if (it->age_est)
		ob_str(b, " est.");
}

/* Columns of the table: where each starts. */
#define COL_AGE 20
#define COL_RECVQ 31
#define COL_INODE 38
#define COL_LOCAL 49
#define COL_PEER 73

/* The holders of IT into W->rs, and its verdict. */
static void judge(const struct cw_ctx *c, struct cw_writer *w, struct cw_item *it)
{
	const struct ledger_step *first[1];
	struct cw_evidence ev;

	if (it->k->inode) {
		reconcile(&c->snap, it->ls, c->pf, it->k->inode, &w->rs);
		it->proc_only = it->ls && has_proc_only(&w->rs);
	} else {
		w->rs.n = w->rs.live = w->rs.proc_extra = 0;
	}
	ev.inode = it->k->inode;
	ev.recv_q = it->k->rqueue;
	ev.ls = it->ls;
	ev.noeffect_steps = it->ls ? view_noeffect_steps(it->ls, first, 1) : 0;
	ev.rs = &w->rs;
	cw_decide(&ev, &it->d);
}

static void row_header(void)
{
	printf("%-19s %-10s %6s %10s %-23s %s\n", "VERDICT", "AGE", "RECV-Q", "INODE", "LOCAL",
	       "PEER");
}

static void print_text(struct cw_ctx *c, struct cw_writer *w, struct cw_item *it)
{
	const struct ledger_sock *ls = it->ls;
	struct fmt_buf b;
	unsigned i;

	judge(c, w, it);
	fmt_buf_init(&b, w->line, sizeof(w->line));
	ob_str(&b, cw_verdict_name(it->d.verdict));
	ob_pad_to(&b, COL_AGE, 1);
	age_append(&b, it);
	ob_pad_to(&b, COL_RECVQ, 1);
	ob_u64_rjust(&b, it->k->rqueue, 6);
	ob_pad_to(&b, COL_INODE, 1);
	ob_u64_rjust(&b, it->k->inode, 10);
	ob_pad_to(&b, COL_LOCAL, 1);
	kaddr_append(&b, it->k, 0);
	ob_pad_to(&b, COL_PEER, 1);
	kaddr_append(&b, it->k, 1);
	ob_str(&b, "\n    why: ");
	why_append(c, it, &w->rs, &b);
	ob_char(&b, '\n');
	if (it->d.verdict == CW_UNACCEPTED && it->listener) {
		const struct ledger_sock *lls = cw_ledger_find(c, it->listener->inode);

		reconcile(&c->snap, lls, c->pf, it->listener->inode, &w->rs);
		ob_str(&b, "    listener owners: ");
		view_holders_inline(&b, &c->snap, &w->rs);
		ob_char(&b, '\n');
		if (lls)
			view_born_text(&b, "    listener ", &c->snap, lls, c->sym);
		emit(w);
		return;
	}
	if (it->k->inode) {
		ob_str(&b, "    holders: ");
		view_holders_inline(&b, &c->snap, &w->rs);
		ob_char(&b, '\n');
	}
	if (ls) {
		for (i = 0; i < w->rs.n; i++) {
			const struct rec_holder *h = &w->rs.h[i];

			if (h->stale || !(h->source & REC_LEDGER))
				continue;
			ob_str(&b, "    path to ");
			ob_i64(&b, h->pid);
			ob_str(&b, " fd ");
			ob_i64(&b, h->fd);
			ob_str(&b, ": ");
			view_path(&b, ls, h);
			ob_char(&b, '\n');
		}
		view_noeffect_text(&b, "    ", &c->snap, ls);
		view_born_text(&b, "    ", &c->snap, ls, c->sym);
	}
	emit(w);
}

static void print_json(struct cw_ctx *c, struct cw_writer *w, struct cw_item *it)
{
	char reason[4096];
	struct fmt_buf b, rb;

	judge(c, w, it);
	fmt_buf_init(&rb, reason, sizeof(reason));
	why_append(c, it, &w->rs, &rb);
	fmt_buf_init(&b, w->line, sizeof(w->line));
	ob_str(&b, "{\"type\":\"socket\",\"verdict\":\"");
	ob_str(&b, cw_verdict_name(it->d.verdict));
	ob_str(&b, "\",\"reason\":");
	ob_json_str(&b, reason, sizeof(reason));
	ob_str(&b, ",\"inode\":");
	ob_u64(&b, it->k->inode);
	ob_str(&b, ",\"local\":\"");
	kaddr_append(&b, it->k, 0);
	ob_str(&b, "\",\"peer\":\"");
	kaddr_append(&b, it->k, 1);
	ob_str(&b, "\",\"state\":\"CLOSE_WAIT\",\"recv_q\":");
	ob_u64(&b, it->k->rqueue);
	ob_str(&b, ",\"send_q\":");
	ob_u64(&b, it->k->wqueue);
	if (it->age_ns >= 0) {
		int ms = (int)(it->age_ns % NS_PER_SEC / NS_PER_MS); /* 0..999 */
		char frac[3] = {(char)('0' + ms / 100), (char)('0' + ms / 10 % 10),
				(char)('0' + ms % 10)};

		ob_str(&b, ",\"age_s\":");
		ob_i64(&b, it->age_ns / NS_PER_SEC);
		ob_char(&b, '.');
		ob_put(&b, frac, sizeof(frac)); /* snprintf's %03d cost a tenth of the line */
		ob_str(&b, it->age_est ? ",\"age_estimated\":true" : ",\"age_estimated\":false");
	} else {
		ob_str(&b, ",\"age_s\":null,\"age_estimated\":null");
	}
	view_json_members(&b, &c->snap, it->ls, &w->rs, SOCKDIAG_CLOSE_WAIT, c->sym);
	if (it->d.verdict == CW_UNACCEPTED && it->listener) {
		const struct ledger_sock *lls = cw_ledger_find(c, it->listener->inode);
		unsigned i;

		reconcile(&c->snap, lls, c->pf, it->listener->inode, &w->rs);
		fmt_append(&b, ",\"listener\":{\"inode\":%llu,\"local\":\"",
			   (unsigned long long)it->listener->inode);
		kaddr_append(&b, it->listener, 0);
		fmt_append(&b, "\",\"queued\":%u,\"backlog\":%u,\"owners\":[", it->listener->rqueue,
			   it->listener->wqueue);
		for (i = 0; i < w->rs.n; i++) {
			const struct rec_holder *h = &w->rs.h[i];

			fmt_append(&b, "%s{\"pid\":%d,\"comm\":", i ? "," : "", h->pid);
			ob_json_str(&b, h->comm, sizeof(h->comm));
			fmt_append(&b, ",\"fd\":%d,\"source\":\"%s\",\"stale\":%s}", h->fd,
				   rec_source_name(h->source), h->stale ? "true" : "false");
		}
		ob_str(&b, "]}");
	} else {
		ob_str(&b, ",\"listener\":null");
	}
	ob_str(&b, "}\n");
	emit(w);
}

/* The ledger believes these held; the kernel lists no such TCP socket. */
static unsigned print_forgotten(struct cw_ctx *c, struct cw_writer *w)
{
	char local[FMT_ADDR_MAX], peer[FMT_ADDR_MAX];
	unsigned count = 0;
	struct fmt_buf b;
	size_t i;

	for (i = 0; i < c->snap.n; i++) {
		const struct ledger_sock *ls = &c->snap.v[i];

		if (!cw_kernel_forgot(c, ls))
			continue;
		/* Also shown for sockets never connected: the kernel lists a
		 * TCP socket only once it is bound, connecting or listening. */
		reconcile(&c->snap, ls, c->pf, ls->inode, &w->rs);
		view_ledger_addr(local, sizeof(local), ls, 0);
		view_ledger_addr(peer, sizeof(peer), ls, 1);
		fmt_buf_init(&b, w->line, sizeof(w->line));
		if (c->o->json) {
			fmt_append(&b, "{\"type\":\"ledger_only\",\"inode\":%llu,\"local\":",
				   (unsigned long long)ls->inode);
			if (strcmp(local, "-") != 0)
				fmt_append(&b, "\"%s\"", local);
			else
				fmt_append(&b, "null");
			fmt_append(&b, ",\"peer\":");
			if (strcmp(peer, "-") != 0)
				fmt_append(&b, "\"%s\"", peer);
			else
				fmt_append(&b, "null");
			fmt_append(&b, ",\"in_proc\":%s", w->rs.live ? "true" : "false");
			view_json_members(&b, &c->snap, ls, &w->rs, -1, c->sym);
			fmt_append(&b, "}\n");
		} else {
			if (!count)
				fprintf(w->out, "\nHeld according to the ledger, but the kernel lists no such TCP "
				       "socket (reset by the peer, never connected, or the ledger is "
				       "behind):\n");
			fmt_append(&b, "  inode %llu %s -> %s, refs %d: ", (unsigned long long)ls->inode,
				   local, peer, ls->refs);
			view_holders_inline(&b, &c->snap, &w->rs);
			fmt_append(&b, "\n");
		}
		emit(w);
		count++;
	}
	return count;
}

/* Holders of the CLOSE_WAIT sockets that only /proc knows. */
static unsigned print_proc_only(struct cw_ctx *c, struct cw_writer *w,
				const struct cw_item *items, size_t n)
{
	char local[FMT_ADDR_MAX], peer[FMT_ADDR_MAX];
	unsigned count = 0, i;
	struct fmt_buf b;
	size_t k;

	for (k = 0; k < n; k++) {
		if (!items[k].proc_only)
			continue;
		reconcile(&c->snap, items[k].ls, c->pf, items[k].k->inode, &w->rs);
		for (i = 0; i < w->rs.n; i++) {
			const struct rec_holder *h = &w->rs.h[i];

			if (h->source != REC_PROC)
				continue;
			if (!count && !c->o->json)
				fprintf(w->out, "\nHolders seen only in /proc (the ledger does not know how they "
				       "got the socket):\n");
			kaddr(local, sizeof(local), items[k].k, 0);
			kaddr(peer, sizeof(peer), items[k].k, 1);
			fmt_buf_init(&b, w->line, sizeof(w->line));
			if (c->o->json) {
				fmt_append(&b, "{\"type\":\"proc_only_holder\",\"inode\":%llu,"
					       "\"local\":\"%s\",\"peer\":\"%s\",\"pid\":%d,\"comm\":",
					   (unsigned long long)items[k].k->inode, local, peer, h->pid);
				ob_json_str(&b, h->comm, sizeof(h->comm));
				fmt_append(&b, ",\"fd\":%d}\n", h->fd);
			} else {
				fmt_append(&b, "  inode %llu %s -> %s: ",
					   (unsigned long long)items[k].k->inode, local, peer);
				holder_name(&b, h);
				fmt_append(&b, "\n");
			}
			emit(w);
			count++;
		}
	}
	return count;
}

static void print_summary(struct cw_ctx *c, const unsigned counts[CW_VERDICT_COUNT], size_t n,
			  size_t not_in_ledger, size_t outside)
{
	unsigned v, shown = 0;

	if (c->o->json) {
		printf("{\"type\":\"summary\",\"session\":\"%s\",\"close_wait\":%zu", c->session, n);
		for (v = 0; v < CW_VERDICT_COUNT; v++)
			printf(",\"%s\":%u", cw_verdict_name(v), counts[v]);
		printf(",\"not_in_ledger\":%zu,\"outside_session\":", not_in_ledger);
		if (c->o->all)
			printf("null");
		else
			printf("%zu", outside);
		printf(",\"ledger_entries\":%zu,\"ledger_full\":%llu}\n", c->snap.n + c->snap_released.n,
		       (unsigned long long)c->snap.ledger_full);
		return;
	}
	printf("\n%zu socket%s in CLOSE_WAIT", n, n == 1 ? "" : "s");
	for (v = 0; v < CW_VERDICT_COUNT; v++)
		if (counts[v])
			printf("%s %u %s", shown++ ? "," : ":", counts[v], cw_verdict_name(v));
	printf("\n");
	if (outside)
		printf("%zu more socket%s in CLOSE_WAIT on this host belong%s to no process of the "
		       "session: --all lists %s.\n",
		       outside, outside == 1 ? "" : "s", outside == 1 ? "s" : "",
		       outside == 1 ? "it" : "them");
}

/* Below this many sockets, one thread formats them all. */
#define CW_SPLIT_MIN 1024

/* Sockets FROM to TO of ITEMS, formatted by W. */
struct cw_part {
	struct cw_ctx *c;
	struct cw_writer *w;
	struct cw_item *items;
	size_t from, to;
};

static void print_part(const struct cw_part *p)
{
	size_t i;

	for (i = p->from; i < p->to; i++) {
		if (p->c->o->json)
			print_json(p->c, p->w, &p->items[i]);
		else
			print_text(p->c, p->w, &p->items[i]);
	}
}

static void *print_part_thread(void *arg)
{
	print_part(arg);
	return NULL;
}

/* The N sockets in order. Over thousands, the second half is formatted
 * into memory on a thread of its own while this one prints the first
 * half, then copied out: the formatting is most of the time left. */
static int print_items(struct cw_ctx *c, struct cw_writer *w0, struct cw_item *items, size_t n)
{
	struct cw_part first = {c, w0, items, 0, n}, second = {c, NULL, items, n, n};
	struct cw_writer *w1 = NULL;
	pthread_t t;
	int threaded = 0, rc = 0;

	if (n >= CW_SPLIT_MIN) {
		w1 = calloc(1, sizeof(*w1));
		if (w1) {
			rec_sock_init(&w1->rs);
			first.to = second.from = n / 2;
			second.w = w1;
			threaded = pthread_create(&t, NULL, print_part_thread, &second) == 0;
		}
	}
	print_part(&first);
	if (w1) {
		if (threaded)
			pthread_join(t, NULL);
		else
			print_part(&second);
		if (w1->mem_failed) {
			fprintf(stderr, "sockshim: out of memory\n");
			rc = -ENOMEM;
		} else {
			fwrite(w1->mem, 1, w1->mem_len, w0->out);
		}
		free(w1->mem);
		rec_sock_free(&w1->rs);
		free(w1);
	}
	return rc;
}

int cw_report(struct cw_ctx *c)
{
	unsigned counts[CW_VERDICT_COUNT] = {0};
	size_t n = 0, i, not_in_ledger = 0, outside = 0;
	struct cw_item *items;
	struct cw_writer *w;

	items = big_calloc(c->kern.n ? c->kern.n : 1, sizeof(*items));
	w = malloc(sizeof(*w));
	if (w)
		rec_sock_init(&w->rs);
	if (!items || !w || (!c->o->all && cw_index_session_pids(c))) {
		free(items);
		if (w)
			rec_sock_free(&w->rs);
		free(w);
		fprintf(stderr, "sockshim: out of memory\n");
		return EXIT_FAIL;
	}
	w->out = stdout;
	/* Which ones, then the oldest first, each joined with /proc once as
	 * it is printed. */
	for (i = 0; i < c->kern.n; i++) {
		struct cw_item *it = &items[n];

		if (c->kern.v[i].state != SOCKDIAG_CLOSE_WAIT)
			continue;
		it->k = &c->kern.v[i];
		it->ls = cw_ledger_for(c, it->k);
		set_age(c, it);
		if (c->o->min_age_ns && (it->age_ns < 0 || it->age_ns < c->o->min_age_ns))
			continue;
		if (!it->k->inode)
			it->listener = cw_find_listener(c, it->k);
		if (!c->o->all && !cw_in_session(c, it->k, it->ls, it->listener)) {
			outside++;
			continue;
		}
		if (it->k->inode && !it->ls)
			not_in_ledger++;
		n++;
	}
	qsort(items, n, sizeof(*items), by_age);
	if (!c->o->json && n)
		row_header();
	if (print_items(c, w, items, n)) {
		free(items);
		rec_sock_free(&w->rs);
		free(w);
		return EXIT_FAIL;
	}
	for (i = 0; i < n; i++)
		counts[items[i].d.verdict]++;
	print_summary(c, counts, n, not_in_ledger, outside);
	print_forgotten(c, w);
	print_proc_only(c, w, items, n);
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
	rec_sock_free(&w->rs);
	free(w);
	return EXIT_OK;
}
