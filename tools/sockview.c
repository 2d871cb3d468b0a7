/* Text and JSON for one socket's ledger facts and reconciled holders,
 * shared by `holders` and `closewait` so both say the same thing the same
 * way. Everything printed from the segment is escaped first. Hot: called
 * for every socket of a report, so it appends without printf. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "outbuf.h"
#include "shut_hits.h"
#include "sockview.h"

void view_clock_append(struct fmt_buf *b, const struct ledger_snap *snap, uint64_t ts)
{
	int64_t real;

	if (!ts || !snap || ledger_realtime(snap, ts, &real))
		ob_char(b, '-');
	else
		ob_clock(b, real);
}

void view_clock(char *buf, size_t len, const struct ledger_snap *snap, uint64_t ts)
{
	struct fmt_buf b;

	fmt_buf_init(&b, buf, len);
	view_clock_append(&b, snap, ts);
}

void view_json_time(struct fmt_buf *b, const char *key, const struct ledger_snap *snap,
		    uint64_t ts)
{
	int64_t real;

	ob_put(b, ",\"", 2);
	ob_str(b, key);
	if (!ts || !snap || ledger_realtime(snap, ts, &real)) {
		ob_put(b, "\":null", 6);
		return;
	}
	ob_put(b, "\":", 2);
	ob_json_time(b, real);
}

int view_ledger_addr_append(struct fmt_buf *b, const struct ledger_sock *ls, int peer)
{
	unsigned flag = peer ? SOCKSHIM_FLAG_PEER_KNOWN : SOCKSHIM_FLAG_LOCAL_KNOWN;

	if (!(ls->flags & flag) || (ls->family != AF_INET && ls->family != AF_INET6)) {
		ob_char(b, '-');
		return 0;
	}
	ob_addr(b, ls->family, peer ? ls->peer_ip : ls->local_ip,
		peer ? ls->peer_port : ls->local_port);
	return 1;
}

int view_ledger_addr(char *buf, size_t len, const struct ledger_sock *ls, int peer)
{
	struct fmt_buf b;

	fmt_buf_init(&b, buf, len);
	return view_ledger_addr_append(&b, ls, peer);
}

unsigned view_noeffect_steps(const struct ledger_sock *ls, const struct ledger_step **out,
			     unsigned max)
{
	unsigned k, n = 0;

	/* An exit drops the process's descriptors: a close as well. */
	for (k = 0; k < ls->nsteps && n < max; k++)
		if ((ls->steps[k].op == SOCKSHIM_STEP_CLOSE || ls->steps[k].op == SOCKSHIM_STEP_EXIT) &&
		    ls->steps[k].arg > 0)
			out[n++] = &ls->steps[k];
	return n;
}

static void append_comm(struct fmt_buf *b, const char *comm, size_t max)
{
	if (comm && comm[0])
		ob_printable(b, comm, max);
	else
		ob_char(b, '?');
}

static void pid_fd(struct fmt_buf *b, pid_t pid, int fd)
{
	ob_char(b, ' ');
	ob_i64(b, pid);
	ob_put(b, " fd ", 4);
	ob_i64(b, fd);
}

void view_born_text(struct fmt_buf *b, const char *indent, const struct ledger_snap *snap,
		    const struct ledger_sock *ls, struct symbolizer *sym)
{
	const struct sym_info *si;

	ob_str(b, indent);
	ob_put(b, "born: ", 6);
	ob_str(b, ledger_born_verb(ls->born));
	ob_char(b, ' ');
	append_comm(b, ledger_comm_of(ls, ls->born_pid), LEDGER_COMM_MAX);
	pid_fd(b, ls->born_pid, ls->born_fd);
	ob_put(b, " at ", 4);
	view_clock_append(b, snap, ls->born_ns);
	ob_char(b, '\n');
	if (!ls->callsite && !ls->callsite_offset)
		return;
	si = sym ? symbolize(sym, ls->callsite_module, ls->callsite_offset) : NULL;
	ob_str(b, indent);
	ob_put(b, "created at: ", 12);
	if (si)
		ob_str(b, si->text);
	else
		ob_hex(b, ls->callsite);
	ob_char(b, '\n');
}

void view_noeffect_text(struct fmt_buf *b, const char *indent, const struct ledger_snap *snap,
			const struct ledger_sock *ls)
{
	const struct ledger_step *v[SOCKSHIM_STEPS];
	const char *via;
	unsigned n, i;

	n = view_noeffect_steps(ls, v, SOCKSHIM_STEPS);
	if (!n && !ls->noeffect_closes)
		return;
	ob_str(b, indent);
	ob_put(b, "closes without effect:", 22);
	for (i = 0; i < n; i++) {
		ob_str(b, i ? "; " : " ");
		append_comm(b, v[i]->comm, LEDGER_COMM_MAX);
		pid_fd(b, v[i]->pid, v[i]->fd);
		ob_str(b, v[i]->op == SOCKSHIM_STEP_EXIT ? " exited at " : " at ");
		view_clock_append(b, snap, v[i]->ts_ns);
		ob_put(b, " (refs left ", 12);
		ob_i64(b, v[i]->arg);
		via = sockshim_close_via_name(v[i]->via);
		if (v[i]->op == SOCKSHIM_STEP_CLOSE && v[i]->via != SOCKSHIM_CLOSE_VIA_CLOSE) {
			ob_put(b, ", via ", 6);
			ob_str(b, via ? via : "?");
		}
		ob_char(b, ')');
	}
	if (ls->noeffect_closes > n)
		fmt_append(b, "%s %u %s (%s)", n ? ";" : "", ls->noeffect_closes - n,
			   n ? "more" : "in all",
			   ls->history_lost ? "older history overwritten" : "not in the history");
	ob_char(b, '\n');
}

void view_holders_inline(struct fmt_buf *b, const struct ledger_snap *snap,
			 const struct rec_sock *rs)
{
	const struct rec_holder *h;
	unsigned i;

	if (!rs->n) {
		ob_str(b, "none found");
		return;
	}
	for (i = 0; i < rs->n; i++) {
		h = &rs->h[i];
		if (i)
			ob_put(b, "; ", 2);
		append_comm(b, h->comm, sizeof(h->comm));
		pid_fd(b, h->pid, h->fd);
		if (h->state && h->state != 'S' && h->state != 'R') {
			ob_put(b, " state ", 7);
			ob_char(b, h->state);
		}
		if (h->source & REC_LEDGER) {
			ob_put(b, " since ", 7);
			view_clock_append(b, snap, h->since_ns);
			ob_put(b, " (", 2);
			ob_str(b, rec_how_name(h));
			ob_put(b, ", ", 2);
			ob_str(b, h->unverified ? "ledger; /proc not readable"
						: rec_source_name(h->source));
			if (h->shim == PROCFD_SHIM_WITHOUT)
				ob_str(b, "; " REC_NOSHIM_WORDS);
			ob_char(b, ')');
		} else {
			ob_str(b, h->shim == PROCFD_SHIM_WITHOUT ? " (" REC_NOSHIM_WORDS ")"
					    : h->shim == PROCFD_SHIM_WITH ? " (" REC_NOROOM_WORDS ")"
							 : " (seen only in /proc)");
		}
		if (h->stale) {
			ob_put(b, " STALE, ", 8);
			ob_str(b, h->why);
		}
	}
	if (rs->proc_extra)
		fmt_append(b, "; and %u more in /proc", rs->proc_extra);
}

void view_path(struct fmt_buf *b, const struct ledger_sock *ls, const struct rec_holder *h)
{
	if (!ls || !(h->source & REC_LEDGER))
		ob_char(b, '-');
	else
		ledger_path_str(b, ls, h->pid, h->fd);
}

static void json_null_or_str(struct fmt_buf *b, const char *s, size_t max)
{
	if (s && s[0])
		ob_json_str(b, s, max);
	else
		ob_put(b, "null", 4);
}

/* ,"callsite":{...} of ADDR, OFF in MODULE (MAX bytes at most). */
static void json_callsite_of(struct fmt_buf *b, uint64_t addr, uint64_t off, const char *module,
			     size_t max, struct symbolizer *sym)
{
	const struct sym_info *si;

	if (!addr && !off) {
		ob_str(b, ",\"callsite\":null");
		return;
	}
	si = sym && module[0] ? symbolize(sym, module, off) : NULL;
	ob_str(b, ",\"callsite\":{\"address\":\"");
	ob_hex(b, addr);
	ob_str(b, "\",\"offset\":\"");
	ob_hex(b, off);
	ob_str(b, "\",\"module\":");
	json_null_or_str(b, module, max);
	if (si && si->json)
		ob_str(b, si->json); /* rendered once per call site */
	else if (si)
		sym_json_members(b, si);
	else
		ob_str(b, ",\"function\":null,\"function_offset\":null,\"file\":null,\"line\":null,"
			  "\"text\":null");
	ob_char(b, '}');
}

void view_json_callsite(struct fmt_buf *b, const struct ledger_sock *ls, struct symbolizer *sym)
{
	json_callsite_of(b, ls->callsite, ls->callsite_offset, ls->callsite_module,
			 sizeof(ls->callsite_module), sym);
}

const char *view_shut_how(int how)
{
	switch (how) {
	case SHUT_RD:
		return "reading";
	case SHUT_WR:
		return "writing";
	default:
		return "reading and writing";
	}
}

/* The JSON name of a shutdown's HOW. */
static const char *shut_how_json(int how)
{
	return how == SHUT_RD ? "SHUT_RD" : how == SHUT_WR ? "SHUT_WR" : "SHUT_RDWR";
}

/* The hits of the last shutdown SD of LS (see shut_hits.h), KSTATE the
 * kernel's state: its index in the history, or -1 when its step is gone. */
static size_t last_shutdown_hits(const struct ledger_sock *ls, int kstate, struct shut_hit *out,
				 size_t max);

/* Text: "it hit: sh 42 fd 5 (EPIPE at T), ..." on a line of its own. */
static void hits_text(struct fmt_buf *b, const char *indent, const struct ledger_snap *snap,
		      const struct shut_hit *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!i) {
			ob_str(b, indent);
			ob_str(b, "it hit: ");
		} else {
			ob_str(b, ", ");
		}
		append_comm(b, h[i].comm, LEDGER_COMM_MAX);
		pid_fd(b, h[i].pid, h[i].fd);
		ob_str(b, h[i].what == SOCKSHIM_STEP_EPIPE ? " (a write failed with EPIPE at "
							   : " (a read returned 0, EOF, at ");
		view_clock_append(b, snap, h[i].ts_ns);
		ob_char(b, ')');
	}
	if (n)
		ob_char(b, '\n');
}

void view_shutdown_text(struct fmt_buf *b, const char *indent, const struct ledger_snap *snap,
			const struct ledger_sock *ls, int kstate, struct symbolizer *sym)
{
	const struct ledger_shutdown *sd = &ls->shut;
	struct shut_hit hits[SOCKSHIM_STEPS];
	const struct sym_info *si;
	unsigned i;

	if (!sd->ns)
		return;
	ob_str(b, indent);
	ob_str(b, "shut down for ");
	ob_str(b, view_shut_how(sd->how));
	ob_str(b, " by ");
	append_comm(b, ledger_comm_of(ls, sd->pid), LEDGER_COMM_MAX);
	pid_fd(b, sd->pid, sd->fd);
	ob_put(b, " at ", 4);
	view_clock_append(b, snap, sd->ns);
	if (!sd->nothers)
		ob_str(b, ", held by no other process");
	for (i = 0; i < sd->nlisted; i++) {
		ob_str(b, i ? ", " : " while also held by ");
		append_comm(b, ledger_comm_of(ls, sd->others[i]), LEDGER_COMM_MAX);
		ob_char(b, ' ');
		ob_i64(b, sd->others[i]);
	}
	if (sd->nothers > sd->nlisted)
		fmt_append(b, "%s%u more (not named)", sd->nlisted ? " and " : " while also held by ",
			   sd->nothers - sd->nlisted);
	ob_str(b, sd->nothers ? " (it acts for every holder)\n" : "\n");
	hits_text(b, indent, snap, hits, last_shutdown_hits(ls, kstate, hits, SOCKSHIM_STEPS));
	if (!sd->callsite && !sd->callsite_offset)
		return;
	si = sym && sd->module[0] ? symbolize(sym, sd->module, sd->callsite_offset) : NULL;
	ob_str(b, indent);
	ob_str(b, "shut down at: ");
	if (si)
		ob_str(b, si->text);
	else
		ob_hex(b, sd->callsite);
	ob_char(b, '\n');
}

/* ,"hit":[{pid, comm, fd, what, time, ts_ns}] */
static void json_hits(struct fmt_buf *b, const struct ledger_snap *snap, const struct shut_hit *h,
		      size_t n)
{
	size_t i;

	ob_str(b, ",\"hit\":[");
	for (i = 0; i < n; i++) {
		fmt_append(b, "%s{\"pid\":%d,\"comm\":", i ? "," : "", (int)h[i].pid);
		if (h[i].comm[0])
			ob_json_str(b, h[i].comm, LEDGER_COMM_MAX);
		else
			ob_str(b, "null");
		fmt_append(b, ",\"fd\":%d,\"what\":\"%s\"", h[i].fd, shut_hit_name(h[i].what));
		view_json_time(b, "time", snap, h[i].ts_ns);
		ob_str(b, ",\"ts_ns\":");
		ob_u64(b, h[i].ts_ns);
		ob_char(b, '}');
	}
	ob_char(b, ']');
}

/* One member of "shutdowns": from the history step ST, with the last
 * shutdown's other holders and call site when SD is it, and the hits
 * HITS (N). */
static void json_one_shutdown(struct fmt_buf *b, const struct ledger_snap *snap,
			      const struct ledger_sock *ls, pid_t pid, int fd, int how, uint64_t ts,
			      const struct ledger_shutdown *sd, const struct shut_hit *hits,
			      size_t nhits, struct symbolizer *sym)
{
	const char *comm = ledger_comm_of(ls, pid);
	unsigned i;

	fmt_append(b, "{\"pid\":%d,\"fd\":%d,\"comm\":", (int)pid, fd);
	if (comm)
		ob_json_str(b, comm, LEDGER_COMM_MAX);
	else
		ob_str(b, "null");
	fmt_append(b, ",\"how\":\"%s\"", shut_how_json(how));
	view_json_time(b, "time", snap, ts);
	ob_str(b, ",\"ts_ns\":");
	ob_u64(b, ts);
	json_hits(b, snap, hits, nhits);
	if (!sd) {
		ob_str(b, ",\"other_holders\":null,\"other_holders_count\":null,\"callsite\":null}");
		return;
	}
	ob_str(b, ",\"other_holders\":[");
	for (i = 0; i < sd->nlisted; i++) {
		comm = ledger_comm_of(ls, sd->others[i]);
		fmt_append(b, "%s{\"pid\":%d,\"comm\":", i ? "," : "", (int)sd->others[i]);
		if (comm)
			ob_json_str(b, comm, LEDGER_COMM_MAX);
		else
			ob_str(b, "null");
		ob_char(b, '}');
	}
	fmt_append(b, "],\"other_holders_count\":%u", sd->nothers);
	json_callsite_of(b, sd->callsite, sd->callsite_offset, sd->module, sizeof(sd->module), sym);
	ob_char(b, '}');
}

/* Is history step ST the shutdown SD remembers (the last one's)? */
static int is_last_shutdown(const struct ledger_step *st, const struct ledger_shutdown *sd)
{
	return sd->ns && st->pid == sd->pid && st->fd == sd->fd && st->arg == sd->how &&
	       st->ts_ns <= sd->ns;
}

int view_eof_by_shutdown(const struct ledger_sock *ls, int kstate)
{
	return shut_explains_eof(ls, shut_hits_no_peer_fin(kstate));
}

void view_json_eof_cause(struct fmt_buf *b, const struct ledger_sock *ls, int kstate)
{
	ob_str(b, view_eof_by_shutdown(ls, kstate) ? ",\"by_shutdown\":true"
						   : ",\"by_shutdown\":false");
}

/* The index in LS's history of the step of its last shutdown, or -1. */
static int last_shutdown_step(const struct ledger_sock *ls)
{
	int last = -1;
	unsigned i;

	for (i = 0; i < ls->nsteps; i++)
		if (ls->steps[i].op == SOCKSHIM_STEP_SHUTDOWN)
			last = (int)i;
	if (last >= 0 && !is_last_shutdown(&ls->steps[last], &ls->shut))
		last = -1;
	return last;
}

static size_t last_shutdown_hits(const struct ledger_sock *ls, int kstate, struct shut_hit *out,
				 size_t max)
{
	return shut_hits(ls, last_shutdown_step(ls), shut_hits_no_peer_fin(kstate), out, max);
}

void view_json_shutdowns(struct fmt_buf *b, const struct ledger_snap *snap,
			 const struct ledger_sock *ls, int kstate, struct symbolizer *sym)
{
	const struct ledger_shutdown *sd = ls ? &ls->shut : NULL;
	struct shut_hit hits[SOCKSHIM_STEPS];
	int last, n = 0, no_fin = shut_hits_no_peer_fin(kstate);
	size_t nh;
	unsigned i;

	ob_str(b, ",\"shutdowns\":[");
	if (!ls) {
		ob_char(b, ']');
		return;
	}
	last = last_shutdown_step(ls);
	for (i = 0; i < ls->nsteps; i++) {
		const struct ledger_step *st = &ls->steps[i];

		if (st->op != SOCKSHIM_STEP_SHUTDOWN)
			continue;
		ob_str(b, n++ ? "," : "");
		nh = shut_hits(ls, (int)i, no_fin, hits, SOCKSHIM_STEPS);
		json_one_shutdown(b, snap, ls, st->pid, st->fd, st->arg,
				  (int)i == last ? sd->ns : st->ts_ns, (int)i == last ? sd : NULL,
				  hits, nh, sym);
	}
	/* Its step is gone from the history: the entry still has it. */
	if (last < 0 && sd->ns) {
		ob_str(b, n++ ? "," : "");
		nh = shut_hits(ls, -1, no_fin, hits, SOCKSHIM_STEPS);
		json_one_shutdown(b, snap, ls, sd->pid, sd->fd, sd->how, sd->ns, sd, hits, nh, sym);
	}
	ob_char(b, ']');
}

void view_json_holders(struct fmt_buf *b, const struct ledger_snap *snap,
		       const struct ledger_sock *ls, const struct rec_sock *rs)
{
	char path[2048], first[2048];
	const struct rec_holder *h;
	struct fmt_buf pb;
	unsigned i;

	first[0] = 0;
	ob_str(b, ",\"holders\":[");
	for (i = 0; i < rs->n; i++) {
		h = &rs->h[i];
		ob_str(b, i ? ",{\"pid\":" : "{\"pid\":");
		ob_i64(b, h->pid);
		ob_str(b, ",\"comm\":");
		json_null_or_str(b, h->comm, sizeof(h->comm));
		ob_str(b, ",\"fd\":");
		ob_i64(b, h->fd);
		ob_str(b, ",\"how\":\"");
		ob_str(b, h->source & REC_LEDGER ? rec_how_name(h) : "proc");
		ob_char(b, '"');
		view_json_time(b, "since", snap, h->since_ns);
		ob_str(b, ",\"since_ns\":");
		ob_u64(b, h->since_ns);
		ob_str(b, ",\"source\":\"");
		ob_str(b, rec_source_name(h->source));
		ob_str(b, h->source & REC_PROC ? "\",\"verified\":true" : "\",\"verified\":false");
		ob_str(b, h->shim == PROCFD_SHIM_WITHOUT ? ",\"noshim\":true" : ",\"noshim\":false");
		ob_str(b, h->stale ? ",\"stale\":true,\"stale_reason\":" : ",\"stale\":false,\"stale_reason\":");
		if (h->stale)
			ob_json_str(b, h->why, sizeof(h->why));
		else
			ob_put(b, "null", 4);
		if (h->state) {
			ob_str(b, ",\"state\":\"");
			ob_char(b, h->state);
			ob_char(b, '"');
		} else {
			ob_str(b, ",\"state\":null");
		}
		if (h->lh) {
			ob_str(b, ",\"from_pid\":");
			ob_i64(b, h->lh->from_pid);
			ob_str(b, ",\"from_fd\":");
			ob_i64(b, h->lh->from_fd);
		}
		ob_str(b, ",\"path\":");
		if (ls && (h->source & REC_LEDGER)) {
			fmt_buf_init(&pb, path, sizeof(path));
			ledger_path_str(&pb, ls, h->pid, h->fd);
			ob_json_str(b, path, sizeof(path));
			/* The path of the first holder still there: the one people
			 * ask about. */
			if (!first[0] && !h->stale)
				memcpy(first, path, pb.pos + 1);
		} else {
			ob_put(b, "null", 4);
		}
		ob_char(b, '}');
	}
	ob_str(b, "],\"holders_more\":");
	ob_u64(b, rs->proc_extra);
	ob_str(b, ",\"path\":");
	json_null_or_str(b, first, sizeof(first));
}

static void json_noeffect(struct fmt_buf *b, const struct ledger_snap *snap,
			  const struct ledger_sock *ls)
{
	const struct ledger_step *v[SOCKSHIM_STEPS];
	const char *via;
	unsigned n, i;

	n = view_noeffect_steps(ls, v, SOCKSHIM_STEPS);
	ob_str(b, ",\"noeffect_closes\":[");
	for (i = 0; i < n; i++) {
		ob_str(b, i ? ",{\"pid\":" : "{\"pid\":");
		ob_i64(b, v[i]->pid);
		ob_str(b, ",\"comm\":");
		json_null_or_str(b, v[i]->comm, LEDGER_COMM_MAX);
		ob_str(b, ",\"fd\":");
		ob_i64(b, v[i]->fd);
		view_json_time(b, "time", snap, v[i]->ts_ns);
		ob_str(b, ",\"ts_ns\":");
		ob_u64(b, v[i]->ts_ns);
		ob_str(b, ",\"refs_left\":");
		ob_i64(b, v[i]->arg);
		ob_str(b, ",\"via\":\"");
		via = v[i]->op == SOCKSHIM_STEP_EXIT ? "exit" : sockshim_close_via_name(v[i]->via);
		if (via)
			ob_str(b, via);
		else
			fmt_append(b, "unknown(%u)", v[i]->via);
		ob_str(b, "\"}");
	}
	ob_str(b, "],\"noeffect_closes_total\":");
	ob_u64(b, ls->noeffect_closes > n ? ls->noeffect_closes : n);
}

void view_json_members(struct fmt_buf *b, const struct ledger_snap *snap,
		       const struct ledger_sock *ls, const struct rec_sock *rs, int kstate,
		       struct symbolizer *sym)
{
	const char *born;

	if (!ls) {
		ob_str(b, ",\"in_ledger\":false,\"born\":null,\"callsite\":null,\"refs\":null");
		view_json_holders(b, snap, NULL, rs);
		ob_str(b, ",\"noeffect_closes\":[],\"noeffect_closes_total\":0,\"eof\":null");
		return;
	}
	born = ledger_born_name(ls->born);
	ob_str(b, ",\"in_ledger\":true,\"born\":{\"how\":\"");
	ob_str(b, born ? born : "unknown");
	ob_str(b, "\",\"pid\":");
	ob_i64(b, ls->born_pid);
	ob_str(b, ",\"fd\":");
	ob_i64(b, ls->born_fd);
	ob_str(b, ",\"comm\":");
	json_null_or_str(b, ledger_comm_of(ls, ls->born_pid), LEDGER_COMM_MAX);
	view_json_time(b, "time", snap, ls->born_ns);
	ob_str(b, ",\"ts_ns\":");
	ob_u64(b, ls->born_ns);
	ob_char(b, '}');
	view_json_callsite(b, ls, sym);
	view_json_shutdowns(b, snap, ls, kstate, sym);
	ob_str(b, ",\"refs\":");
	ob_i64(b, ls->refs);
	view_json_time(b, "released", snap, ls->released_ns);
	view_json_holders(b, snap, ls, rs);
	json_noeffect(b, snap, ls);
	if (ls->eof_ns) {
		ob_str(b, ",\"eof\":{\"pid\":");
		ob_i64(b, ls->eof_pid);
		ob_str(b, ",\"fd\":");
		ob_i64(b, ls->eof_fd);
		view_json_time(b, "time", snap, ls->eof_ns);
		ob_str(b, ",\"ts_ns\":");
		ob_u64(b, ls->eof_ns);
		view_json_eof_cause(b, ls, kstate);
		ob_char(b, '}');
	} else {
		ob_str(b, ",\"eof\":null");
	}
	ob_str(b, ls->history_lost ? ",\"history_lost\":true" : ",\"history_lost\":false");
	ob_str(b, ",\"holder_overflow\":");
	ob_u64(b, ls->holder_overflow);
}
