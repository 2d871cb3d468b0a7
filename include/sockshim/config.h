/* SOCKSHIM_* environment: parsed once at start-up into plain values, by
 * the shim and by `sockshim run` (which creates the segment the sizes
 * are for), so both read it the same way. */
#ifndef SOCKSHIM_CONFIG_H
#define SOCKSHIM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "sockshim/layout.h"

/* SOCKSHIM_LOG: quiet, warn (the default) or debug. */
enum log_level { LOG_QUIET = 0, LOG_WARN = 1, LOG_DEBUG = 2 };

/* The variables config_parse reads; bit (1u << V) of shim_config.given
 * says the environment set V (to a non-empty value). */
enum config_var {
	CONFIG_SESSION,
	CONFIG_RING_EVENTS,
	CONFIG_MAX_SOCKETS,
	CONFIG_ACCEPT,
	CONFIG_LOG,
	CONFIG_FOLLOW,
	CONFIG_VARS
};

/* The name of each: config_var_name[CONFIG_LOG] is "SOCKSHIM_LOG". */
extern const char *const config_var_name[CONFIG_VARS];

struct shim_config {
	char session[SOCKSHIM_SESSION_MAX + 1];
	int session_mapped; /* SOCKSHIM_SESSION was invalid: session is its seg_name_map */
	uint32_t ring_capacity;
	uint32_t ledger_capacity;
	enum log_level log_level;
	enum sockshim_accept_mode accept_mode;
	int follow; /* put the shim back into a scrubbed exec environment */
	unsigned given;
};

/* How much of an invalid value a warning shows, escaped, NUL included. */
#define CONFIG_SHOWN_MAX 80
/* Ends a value cut to fit. */
#define CONFIG_CUT_MARK "..."

/* S for a message, into OUT (LEN bytes): printable ASCII as is, backslash,
 * control characters (newline, ESC, DEL) and every byte >= 0x80 as \xHH, so
 * nothing from the environment reaches a terminal raw. Cut, ending in
 * CONFIG_CUT_MARK, to fit LEN; never an escape cut in half. */
void config_printable(char *out, size_t len, const char *s);

/* Parse the SOCKSHIM_* variables, read with ENV (getenv, or a test's
 * table; NULL or "" is unset). An invalid value takes the default (an
 * invalid session name: its seg_name_map) and leaves a one-line
 * explanation in WARN (empty when all is well), values escaped by
 * config_printable. Returns the number of invalid values. */
int config_parse(struct shim_config *c, const char *(*env)(const char *name), char *warn,
		 size_t warnlen);

/* S, digits only, as a power of two in [2^MIN_SHIFT, 2^MAX_SHIFT] into
 * OUT: 0, or -1 (OUT untouched). */
int config_parse_pow2(const char *s, unsigned min_shift, unsigned max_shift, uint32_t *out);

/* "NAME=VALUE" for V with the value C has in effect (after any default or
 * mapping, so that an image that reads it back gets the same setting
 * without the same warning), into OUT (LEN bytes). Its length, or -1 when
 * it does not fit. */
int config_entry(const struct shim_config *c, enum config_var v, char *out, size_t len);

#endif
