/* Event records for people and for JSON: event names, a record's
 * addresses, whole event lines, sizes and ages; built on the output
 * layer (outbuf.h). Pure functions of their arguments (local time also
 * depends on TZ). Records come from memory any process may have scribbled
 * on: every enum is range-checked here. */
#ifndef SOCKSHIM_FORMAT_H
#define SOCKSHIM_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "outbuf.h"
#include "sockshim/layout.h"

/* Room for any line built below; longer output is cut, never overflows. */
#define FMT_LINE_MAX 2048
/* "[1111:2222:3333:4444:5555:6666:7777:8888]:65535" and its NUL. */
#define FMT_ADDR_MAX 64

/* The name of event TYPE ("accept"), or NULL when TYPE is out of range. */
const char *fmt_event_name(unsigned type);
/* The event type named NAME, or -EINVAL. */
int fmt_event_parse(const char *name);
/* The valid event names, comma separated, for error messages. */
void fmt_event_list(char *buf, size_t len);

/* The symbolic name of errno ERR ("ECONNREFUSED"), or "unknown(N)". */
void fmt_errno_name(char *buf, size_t len, int err);

/* Wall-clock time of a record: header's realtime + (TS - header's
 * monotonic). -ERANGE when the inputs (perhaps corrupt) overflow. */
int fmt_realtime(int64_t *real_ns, uint64_t ts_ns, int64_t created_real_ns,
		 int64_t created_mono_ns);
/* The local (PEER = 0) or peer address of R as ob_addr writes it.
 * Returns 1, or 0 with "-" in BUF when it is unknown or not an IP one. */
int fmt_addr(char *buf, size_t len, const struct sockshim_record *r, int peer);

/* Human sizes "512B", "8.0M"; ages "45s", "3m12s", "2h05m", "3d04h". */
void fmt_size(char *buf, size_t len, uint64_t bytes);
void fmt_age(char *buf, size_t len, int64_t seconds);

/* What the event lines need from the segment header, copied once. */
struct fmt_clockref {
	int64_t created_real_ns;
	int64_t created_mono_ns;
};

/* The table: a header line and one aligned line per record (no '\n'). */
void fmt_table_header(char *buf, size_t len);
void fmt_table_row(char *buf, size_t len, const struct sockshim_record *r,
		   const struct fmt_clockref *c);
/* One JSON object per record (no '\n'); SEQ is the record's ticket. */
void fmt_json_record(char *buf, size_t len, const struct sockshim_record *r,
		     uint64_t seq, const struct fmt_clockref *c);
/* A loss of N records: KIND 'o' (overrun) or 't' (torn), as a table
 * line or a JSON object. */
void fmt_lost(char *buf, size_t len, uint64_t n, char kind, int json);

#endif
