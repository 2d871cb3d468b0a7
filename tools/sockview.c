/* Text and JSON for one socket's ledger facts and reconciled holders,
 * shared by `holders` and `closewait` so both say the same thing the same
 * way. Everything printed from the segment is escaped first. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "sockview.h"

void view_clock(char *buf, size_t len, const struct ledger_snap *snap, uint64_t ts)
{
	int64_t real;

	if (!ts || !snap || ledger_realtime(snap, ts, &real))
		snprintf(buf, len, "-");
	else
		fmt_clock(buf, len, real);
}

void view_json_time(struct fmt_buf *b, const char *key, const struct ledger_snap *snap,
		    uint64_t ts)
{
	char when[48];
	int64_t real;

	if (!ts || !snap || ledger_realtime(snap, ts, &real)) {
		fmt_append(b, ",\"%s\":null", key);
		return;
	}
	fmt_iso8601(when, sizeof(when), real);
	fmt_append(b, ",\"%s\":\"%s\"", key, when);
}

int view_ledger_addr(char *buf, size_t len, const struct ledger_sock *ls, int peer)
{
	unsigned flag = peer ? SOCKSHIM_SOCK_PEER_KNOWN : SOCKSHIM_SOCK_LOCAL_KNOWN;
	const uint8_t *ip = peer ? ls->peer_ip : ls->local_ip;
	unsigned port = peer ? ls->peer_port : ls->local_port;
	char a[INET6_ADDRSTRLEN];

	if ((ls->flags & flag) && ls->family == AF_INET && inet_ntop(AF_INET, ip, a, sizeof(a))) {
		snprintf(buf, len, "%s:%u", a, port);
		return 1;
	}
	if ((ls->flags & flag) && ls->family == AF_INET6 &&
	    inet_ntop(AF_INET6, ip, a, sizeof(a))) {
		snprintf(buf, len, "[%s]:%u", a, port);
		return 1;
	}
	snprintf(buf, len, "-");
	return 0;
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
		fmt_printable(b, comm, max);
	else
		fmt_append(b, "?");
}

void view_born_text(struct fmt_buf *b, const char *indent, const struct ledger_snap *snap,
		    const struct ledger_sock *ls, struct symbolizer *sym)
{
	const struct sym_info *si;
	char when[32];

	view_clock(when, sizeof(when), snap, ls->born_ns);
	fmt_append(b, "%sborn: %s ", indent, ledger_born_verb(ls->born));
	append_comm(b, ledger_comm_of(ls, ls->born_pid), LEDGER_COMM_MAX);
	fmt_append(b, " %d fd %d at %s\n", ls->born_pid, ls->born_fd, when);
	if (!ls->callsite && !ls->callsite_offset)
		return;
	si = sym ? symbolize(sym, ls->callsite_module, ls->callsite_offset) : NULL;
	fmt_append(b, "%screated at: ", indent);
	if (si)
		fmt_append(b, "%s", si->text);
	else
		fmt_append(b, "0x%llx", (unsigned long long)ls->callsite);
	fmt_append(b, "\n");
}

void view_noeffect_text(struct fmt_buf *b, const char *indent, const struct ledger_snap *snap,
			const struct ledger_sock *ls)
{
	const struct ledger_step *v[SOCKSHIM_STEPS];
	const char *via;
	unsigned n, i;
	char when[32];

	n = view_noeffect_steps(ls, v, SOCKSHIM_STEPS);
	if (!n && !ls->noeffect_closes)
		return;
	fmt_append(b, "%scloses without effect:", indent);
	for (i = 0; i < n; i++) {
		view_clock(when, sizeof(when), snap, v[i]->ts_ns);
		fmt_append(b, "%s ", i ? ";" : "");
		append_comm(b, v[i]->comm, LEDGER_COMM_MAX);
		fmt_append(b, " %d fd %d %s %s (refs left %d", v[i]->pid, v[i]->fd,
			   v[i]->op == SOCKSHIM_STEP_EXIT ? "exited at" : "at", when, v[i]->arg);
		via = ledger_via_name(v[i]->via);
		if (v[i]->op == SOCKSHIM_STEP_CLOSE && v[i]->via != SOCKSHIM_CLOSE_VIA_CLOSE)
			fmt_append(b, ", via %s", via ? via : "?");
		fmt_append(b, ")");
	}
	if (ls->noeffect_closes > n)
		fmt_append(b, "%s %u %s (%s)", n ? ";" : "", ls->noeffect_closes - n,
			   n ? "more" : "in all",
			   ls->history_lost ? "older history overwritten" : "not in the history");
	fmt_append(b, "\n");
}

void view_holders_inline(struct fmt_buf *b, const struct ledger_snap *snap,
			 const struct rec_sock *rs)
{
	const struct rec_holder *h;
	char when[32];
	unsigned i;

	if (!rs->n) {
		fmt_append(b, "none found");
		return;
	}
	for (i = 0; i < rs->n; i++) {
		h = &rs->h[i];
		if (i)
			fmt_append(b, "; ");
		append_comm(b, h->comm, sizeof(h->comm));
		fmt_append(b, " %d fd %d", h->pid, h->fd);
		if (h->state && h->state != 'S' && h->state != 'R')
			fmt_append(b, " state %c", h->state);
		if (h->source & REC_LEDGER) {
			view_clock(when, sizeof(when), snap, h->since_ns);
			fmt_append(b, " since %s (%s, %s)", when, rec_how_name(h),
				   h->unverified ? "ledger; /proc not readable"
						 : rec_source_name(h->source));
		} else {
			fmt_append(b, " (seen only in /proc)");
		}
		if (h->stale)
			fmt_append(b, " STALE, %s", h->why);
	}
	if (rs->proc_extra)
		fmt_append(b, "; and %u more in /proc", rs->proc_extra);
}

void view_path(struct fmt_buf *b, const struct ledger_sock *ls, const struct rec_holder *h)
{
	if (!ls || !(h->source & REC_LEDGER))
		fmt_append(b, "-");
	else
		ledger_path_str(b, ls, h->pid, h->fd);
}

static void json_callsite(struct fmt_buf *b, const struct ledger_sock *ls, struct symbolizer *sym)
{
	const struct sym_info *si;

	if (!ls->callsite && !ls->callsite_offset) {
		fmt_append(b, ",\"callsite\":null");
		return;
	}
	si = sym ? symbolize(sym, ls->callsite_module, ls->callsite_offset) : NULL;
	fmt_append(b, ",\"callsite\":{\"address\":\"0x%llx\",\"offset\":\"0x%llx\",\"module\":",
		   (unsigned long long)ls->callsite, (unsigned long long)ls->callsite_offset);
	if (ls->callsite_module[0])
		fmt_json_str(b, ls->callsite_module, sizeof(ls->callsite_module));
	else
		fmt_append(b, "null");
	fmt_append(b, ",\"function\":");
	if (si && si->have_func) {
		fmt_json_str(b, si->func, sizeof(si->func));
		fmt_append(b, ",\"function_offset\":%llu", (unsigned long long)si->func_off);
	} else {
		fmt_append(b, "null,\"function_offset\":null");
	}
	fmt_append(b, ",\"file\":");
	if (si && si->have_line) {
		fmt_json_str(b, si->file, sizeof(si->file));
		fmt_append(b, ",\"line\":%d", si->line);
	} else {
		fmt_append(b, "null,\"line\":null");
	}
	fmt_append(b, ",\"text\":");
	if (si)
		fmt_json_str(b, si->text, sizeof(si->text));
	else
		fmt_append(b, "null");
	fmt_append(b, "}");
}

static void json_comm(struct fmt_buf *b, const char *comm, size_t max)
{
	if (comm && comm[0])
		fmt_json_str(b, comm, max);
	else
		fmt_append(b, "null");
}

static void json_holders(struct fmt_buf *b, const struct ledger_snap *snap,
			 const struct ledger_sock *ls, const struct rec_sock *rs)
{
	const struct rec_holder *h;
	char path[2048];
	struct fmt_buf pb;
	unsigned i;

	fmt_append(b, ",\"holders\":[");
	for (i = 0; i < rs->n; i++) {
		h = &rs->h[i];
		fmt_append(b, "%s{\"pid\":%d,\"comm\":", i ? "," : "", h->pid);
		json_comm(b, h->comm, sizeof(h->comm));
		fmt_append(b, ",\"fd\":%d,\"how\":\"%s\"", h->fd,
			   h->source & REC_LEDGER ? rec_how_name(h) : "proc");
		view_json_time(b, "since", snap, h->since_ns);
		fmt_append(b, ",\"since_ns\":%llu,\"source\":\"%s\",\"verified\":%s",
			   (unsigned long long)h->since_ns, rec_source_name(h->source),
			   h->source & REC_PROC ? "true" : "false");
		fmt_append(b, ",\"stale\":%s,\"stale_reason\":", h->stale ? "true" : "false");
		if (h->stale)
			fmt_json_str(b, h->why, sizeof(h->why));
		else
			fmt_append(b, "null");
		if (h->state)
			fmt_append(b, ",\"state\":\"%c\"", h->state);
		else
			fmt_append(b, ",\"state\":null");
		if (h->lh)
			fmt_append(b, ",\"from_pid\":%d,\"from_fd\":%d", h->lh->from_pid,
				   h->lh->from_fd);
		fmt_append(b, ",\"path\":");
		if (ls && (h->source & REC_LEDGER)) {
			fmt_buf_init(&pb, path, sizeof(path));
			ledger_path_str(&pb, ls, h->pid, h->fd);
			fmt_json_str(b, path, sizeof(path));
		} else {
			fmt_append(b, "null");
		}
		fmt_append(b, "}");
	}
	fmt_append(b, "],\"holders_more\":%u", rs->proc_extra);
	/* The path of the first holder still there: the one people ask about. */
	fmt_append(b, ",\"path\":");
	for (i = 0; i < rs->n; i++) {
		h = &rs->h[i];
		if (!h->stale && ls && (h->source & REC_LEDGER)) {
			fmt_buf_init(&pb, path, sizeof(path));
			ledger_path_str(&pb, ls, h->pid, h->fd);
			fmt_json_str(b, path, sizeof(path));
			return;
		}
	}
	fmt_append(b, "null");
}

static void json_noeffect(struct fmt_buf *b, const struct ledger_snap *snap,
			  const struct ledger_sock *ls)
{
	const struct ledger_step *v[SOCKSHIM_STEPS];
	const char *via;
	unsigned n, i;

	n = view_noeffect_steps(ls, v, SOCKSHIM_STEPS);
	fmt_append(b, ",\"noeffect_closes\":[");
	for (i = 0; i < n; i++) {
		fmt_append(b, "%s{\"pid\":%d,\"comm\":", i ? "," : "", v[i]->pid);
		json_comm(b, v[i]->comm, LEDGER_COMM_MAX);
		fmt_append(b, ",\"fd\":%d", v[i]->fd);
		view_json_time(b, "time", snap, v[i]->ts_ns);
		fmt_append(b, ",\"ts_ns\":%llu,\"refs_left\":%d,\"via\":",
			   (unsigned long long)v[i]->ts_ns, v[i]->arg);
		via = v[i]->op == SOCKSHIM_STEP_EXIT ? "exit" : ledger_via_name(v[i]->via);
		if (via)
			fmt_append(b, "\"%s\"}", via);
		else
			fmt_append(b, "\"unknown(%u)\"}", v[i]->via);
	}
	fmt_append(b, "],\"noeffect_closes_total\":%u", ls->noeffect_closes > n ? ls->noeffect_closes : n);
}

void view_json_members(struct fmt_buf *b, const struct ledger_snap *snap,
		       const struct ledger_sock *ls, const struct rec_sock *rs,
		       struct symbolizer *sym)
{
	const char *born;

	if (!ls) {
		fmt_append(b, ",\"in_ledger\":false,\"born\":null,\"callsite\":null,\"refs\":null");
		json_holders(b, snap, NULL, rs);
		fmt_append(b, ",\"noeffect_closes\":[],\"noeffect_closes_total\":0,\"eof\":null");
		return;
	}
	born = ledger_born_name(ls->born);
	fmt_append(b, ",\"in_ledger\":true,\"born\":{\"how\":\"%s\",\"pid\":%d,\"fd\":%d,\"comm\":",
		   born ? born : "unknown", ls->born_pid, ls->born_fd);
	json_comm(b, ledger_comm_of(ls, ls->born_pid), LEDGER_COMM_MAX);
	view_json_time(b, "time", snap, ls->born_ns);
	fmt_append(b, ",\"ts_ns\":%llu}", (unsigned long long)ls->born_ns);
	json_callsite(b, ls, sym);
	fmt_append(b, ",\"refs\":%d", ls->refs);
	view_json_time(b, "released", snap, ls->released_ns);
	json_holders(b, snap, ls, rs);
	json_noeffect(b, snap, ls);
	if (ls->eof_ns) {
		fmt_append(b, ",\"eof\":{\"pid\":%d,\"fd\":%d", ls->eof_pid, ls->eof_fd);
		view_json_time(b, "time", snap, ls->eof_ns);
		fmt_append(b, ",\"ts_ns\":%llu}", (unsigned long long)ls->eof_ns);
	} else {
		fmt_append(b, ",\"eof\":null");
	}
	fmt_append(b, ",\"history_lost\":%s,\"holder_overflow\":%u",
		   ls->history_lost ? "true" : "false", ls->holder_overflow);
}
