/* A writer of the Prometheus text exposition format (version 0.0.4): HELP
 * and TYPE lines, samples with escaped labels, log2 histograms turned into
 * Prometheus histograms, and the whole exposition of `sockshim stats`.
 * Output goes to a stdio stream; the caller checks it for errors. */
#ifndef SOCKSHIM_PROM_H
#define SOCKSHIM_PROM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "stats_model.h"

struct prom_label {
	const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
	const char *value; /* any bytes: escaped, invalid UTF-8 replaced */
};

/* 1 when NAME is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), else 0. */
int prom_metric_name_ok(const char *name);
/* 1 when NAME is a label name a user may set, else 0. */
int prom_label_name_ok(const char *name);

/* S as a label value between quotes: backslash, double quote and newline
 * escaped, bytes that are not UTF-8 replaced by U+FFFD. */
void prom_put_label_value(FILE *f, const char *s);
/* S as a HELP text: backslash and newline escaped, not UTF-8 replaced. */
void prom_put_help(FILE *f, const char *s);

/* "# HELP NAME HELP" and "# TYPE NAME TYPE" (counter, gauge, histogram,
 * summary, untyped). */
void prom_family(FILE *f, const char *name, const char *type, const char *help);

/* NAME{L[0]="...",...} V: an integer, or a float (NaN, +Inf, -Inf spelt as
 * the format wants). N may be 0 (no braces then). */
void prom_sample_u64(FILE *f, const char *name, const struct prom_label *l, size_t n, uint64_t v);
void prom_sample(FILE *f, const char *name, const struct prom_label *l, size_t n, double v);

/* The samples of a log2 histogram of nanoseconds H (NB buckets, see
 * stats_model.h) as the Prometheus histogram NAME in seconds: NAME_bucket
 * with cumulative counts for le = 2^(i+1) ns of every bucket i but the
 * open last one, then le="+Inf"; NAME_sum (approximate: each bucket's
 * midpoint, stats_hist_sum_ns); NAME_count. A value of exactly 2^(i+1) ns
 * was counted in the bucket above: bounds err on the high side. */
void prom_log2_histogram(FILE *f, const char *name, const struct prom_label *l, size_t n,
			 const uint64_t *h, unsigned nb);

/* "0.000131072": NS nanoseconds as exact decimal seconds. */
void prom_seconds_str(char *buf, size_t len, uint64_t ns);

/* The exposition of `sockshim stats --prometheus` for SESSION: the N
 * listeners of V (every metric family once, its samples over all
 * listeners), NOW_NS (CLOCK_MONOTONIC) for the age of the current lock
 * holder. Returns 0, or -EIO when the stream reports an error. */
int prom_write_stats(FILE *f, const char *session, const struct stats_entry *v, size_t n,
		     uint64_t now_ns);

#endif
