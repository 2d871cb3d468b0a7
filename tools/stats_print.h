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

/* Listeners named one by one when none is in the table. */
#define STATS_UNRECORDED_MAX 8

/* A listening socket a process of the session holds that the table does
 * not have: the shim is not loaded in that process. */
struct stats_unrecorded {
	int pid, fd;
	char comm[16];
	char addr[STATS_ADDR_MAX];
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
	/* With no listener in the table (n 0): the session's processes'
	 * listening sockets all the same, how many and the first ones. */
	size_t nunrecorded;
	struct stats_unrecorded unrecorded[STATS_UNRECORDED_MAX];
};

/* The listener table: a block per listener, --watch's header, the note. */
void stats_draw_table(FILE *out, const struct stats_frame *f);
/* What the table says when the session has no listener: none yet, or
 * the listeners its processes hold that the shim did not record. */
void stats_no_listener(FILE *out, const struct stats_frame *f);
/* One JSON line for listener E. */
void stats_json_listener(FILE *out, const struct stats_frame *f, const struct stats_entry *e);

/* MODE's name, or "unknown(N)". */
void stats_mode_str(char *buf, size_t len, unsigned mode);
/* The name of thread TID of PID from /proc, or "" when it is gone. */
void stats_thread_comm(char *buf, size_t len, int pid, int tid);

#endif
