/* What `holders` and `closewait` both print about one socket: its birth,
 * call site, holders, inheritance paths and the closes that had no effect,
 * as text for people and as JSON members. Pure formatting into fmt_buf. */
#ifndef SOCKSHIM_SOCKVIEW_H
#define SOCKSHIM_SOCKVIEW_H

#include "format.h"
#include "ledger_read.h"
#include "reconcile.h"
#include "symbolize.h"

/* Room for one socket's JSON object or text block. */
#define VIEW_LINE_MAX 32768

/* A ledger time as local "HH:MM:SS.uuuuuu", or "-" when 0 or absurd. */
void view_clock(char *buf, size_t len, const struct ledger_snap *snap, uint64_t ts);
void view_clock_append(struct fmt_buf *b, const struct ledger_snap *snap, uint64_t ts);

/* An address of the ledger entry, "1.2.3.4:80" / "[::1]:80"; 0 and "-"
 * when it is unknown or not IP. */
int view_ledger_addr(char *buf, size_t len, const struct ledger_sock *ls, int peer);
int view_ledger_addr_append(struct fmt_buf *b, const struct ledger_sock *ls, int peer);

/* The closes that left other references: those in the history, oldest
 * first. Returns how many were found in the history. */
unsigned view_noeffect_steps(const struct ledger_sock *ls, const struct ledger_step **out,
			     unsigned max);

/* Text: "born:", "closes without effect:", "created at:" lines, each
 * starting with INDENT and ending with '\n'. */
void view_born_text(struct fmt_buf *b, const char *indent, const struct ledger_snap *snap,
		    const struct ledger_sock *ls, struct symbolizer *sym);
void view_noeffect_text(struct fmt_buf *b, const char *indent, const struct ledger_snap *snap,
			const struct ledger_sock *ls);
/* One "comm pid fd N (how, source)" item per holder, "; " between. */
void view_holders_inline(struct fmt_buf *b, const struct ledger_snap *snap,
			 const struct rec_sock *rs);
/* A holder's path, or "-" when there is no ledger entry. */
void view_path(struct fmt_buf *b, const struct ledger_sock *ls, const struct rec_holder *h);

/* JSON members, each starting with ',': "born", "callsite", "shutdowns",
 * "refs", "holders" (with their paths), "path" (the first live holder's),
 * "noeffect_closes", "noeffect_closes_total", "eof". LS may be NULL.
 * KSTATE: the kernel's state of the socket (SOCKDIAG_*, -1 when it lists
 * none), which says whether a read's 0 can be a shutdown's hit. */
void view_json_members(struct fmt_buf *b, const struct ledger_snap *snap,
		       const struct ledger_sock *ls, const struct rec_sock *rs, int kstate,
		       struct symbolizer *sym);
/* ,"holders":[{pid, comm, fd, how, since, source, verified, stale, state,
 * path...}],"holders_more":N,"path":... (the first live holder's). LS may
 * be NULL. */
void view_json_holders(struct fmt_buf *b, const struct ledger_snap *snap,
		       const struct ledger_sock *ls, const struct rec_sock *rs);
/* ,"callsite":{address, offset, module, function, function_offset, file,
 * line, text} or ,"callsite":null */
void view_json_callsite(struct fmt_buf *b, const struct ledger_sock *ls, struct symbolizer *sym);
/* A shutdown's HOW for people: "reading", "writing", "reading and writing". */
const char *view_shut_how(int how);

/* Text: the last shutdown, "shut down for writing by sh 41 fd 4 at T while
 * also held by worker 42 (it acts for every holder)", "it hit: worker 42
 * fd 5 (a write failed with EPIPE at T)" when it did, and "shut down at:"
 * its call site, each line starting with INDENT; nothing when none.
 * KSTATE as for view_json_members. */
void view_shutdown_text(struct fmt_buf *b, const char *indent, const struct ledger_snap *snap,
			const struct ledger_sock *ls, int kstate, struct symbolizer *sym);

/* ,"shutdowns":[{pid, fd, comm, how, time, ts_ns, hit:[{pid, comm, fd,
 * what ("EPIPE" or "EOF"), time, ts_ns}], other_holders:[{pid, comm}],
 * other_holders_count, callsite}]: the shutdowns in the history, oldest
 * first, each with the other holders' EPIPE writes and EOF reads it
 * explains (shut_hits.h); only the last one knows its other holders and
 * call site (null for the others). LS may be NULL. KSTATE as for
 * view_json_members. */
void view_json_shutdowns(struct fmt_buf *b, const struct ledger_snap *snap,
			 const struct ledger_sock *ls, int kstate, struct symbolizer *sym);

/* ,"by_shutdown":true when LS's first EOF was a shutdown's for reading,
 * not the peer's FIN (shut_explains_eof, KSTATE as for
 * view_json_members), else false: not shown to be a shutdown's. */
void view_json_eof_cause(struct fmt_buf *b, const struct ledger_sock *ls, int kstate);
/* Does KSTATE say LS's first EOF was a shutdown's (as view_json_eof_cause)? */
int view_eof_by_shutdown(const struct ledger_sock *ls, int kstate);

/* ,"KEY":"2024-...Z" or ,"KEY":null */
void view_json_time(struct fmt_buf *b, const char *key, const struct ledger_snap *snap,
		    uint64_t ts);

#endif
