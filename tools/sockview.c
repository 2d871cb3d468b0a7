/* Text and JSON for one socket's ledger facts and reconciled holders,
 * shared by `holders` and `closewait` so both say the same thing the same
 * way. Everything printed from the segment is escaped first. Hot: called
 * for every socket of a report, so it appends without printf. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "outbuf.h"
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
			ob_char(b, ')');
		} else {
			ob_str(b, " (seen only in /proc)");
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

void view_json_callsite(struct fmt_buf *b, const struct ledger_sock *ls, struct symbolizer *sym)
{
	const struct sym_info *si;

	if (!ls->callsite && !ls->callsite_offset) {
		ob_str(b, ",\"callsite\":null");
		return;
	}
	si = sym ? symbolize(sym, ls->callsite_module, ls->callsite_offset) : NULL;
	ob_str(b, ",\"callsite\":{\"address\":\"");
	ob_hex(b, ls->callsite);
	ob_str(b, "\",\"offset\":\"");
	ob_hex(b, ls->callsite_offset);
	ob_str(b, "\",\"module\":");
	json_null_or_str(b, ls->callsite_module, sizeof(ls->callsite_module));
	ob_str(b, ",\"function\":");
	if (si && si->have_func) {
		ob_json_str(b, si->func, sizeof(si->func));
		ob_str(b, ",\"function_offset\":");
		ob_u64(b, si->func_off);
	} else {
		ob_str(b, "null,\"function_offset\":null");
	}
	ob_str(b, ",\"file\":");
	if (si && si->have_line) {
		ob_json_str(b, si->file, sizeof(si->file));
		ob_str(b, ",\"line\":");
		ob_i64(b, si->line);
	} else {
		ob_str(b, "null,\"line\":null");
	}
	ob_str(b, ",\"text\":");
	json_null_or_str(b, si ? si->text : NULL, si ? sizeof(si->text) : 0);
	ob_char(b, '}');
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
		       const struct ledger_sock *ls, const struct rec_sock *rs,
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
		ob_char(b, '}');
	} else {
		ob_str(b, ",\"eof\":null");
	}
	ob_str(b, ls->history_lost ? ",\"history_lost\":true" : ",\"history_lost\":false");
	ob_str(b, ",\"holder_overflow\":");
	ob_u64(b, ls->holder_overflow);
}
