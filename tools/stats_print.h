/* What `sockshim stats` draws, apart from how it gets it (cmd_stats.c:
 * options, the snapshot, --watch): the table (stats_table.c) and the JSON
 * lines (stats_json.c); Prometheus is prom.c. */
#ifndef SOCKSHIM_STATS_PRINT_H
#define SOCKSHIM_STATS_PRINT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "stats_model.h"

enum stats_format { FMT_TABLE, FMT_JSON, FMT_PROM };

struct stats_opts {
	const char *session;
	enum stats_format format;
	int hist;
	double watch; /* seconds; 0: once */
};

/* What one draw needs: the snapshot and the clocks it was taken at. */
struct stats_frame {
	const char *session;
	const struct stats_opts *o;
	struct stats_entry *v;
	size_t n;
	uint64_t now_ns;   /* CLOCK_MONOTONIC, as the shim's timestamps */
	int64_t real_ns;   /* CLOCK_REALTIME, for --watch's headers */
	int diag_failed;   /* the kernel's view was not available */
	/* Without a listener in the table: the listeners the session's
	 * processes hold without the shim (unseen.h), how many and who. */
	unsigned unseen;
	char unseen_text[1024];
};

/* The listener table: a block per listener, --watch's header, the note. */
void stats_draw_table(FILE *out, const struct stats_frame *f);
/* What the table says when the session has no listener (F's unseen
 * ones named). */
void stats_no_listener(FILE *out, const struct stats_frame *f);
/* One JSON line for listener E. */
void stats_json_listener(FILE *out, const struct stats_frame *f, const struct stats_entry *e);

/* MODE's name, or "unknown(N)". */
void stats_mode_str(char *buf, size_t len, unsigned mode);
/* The name of thread TID of PID from /proc, or "" when it is gone. */
void stats_thread_comm(char *buf, size_t len, int pid, int tid);

#endif
