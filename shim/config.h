/* SOCKSHIM_* environment: parsed once at start-up into plain values. */
#ifndef SOCKSHIM_CONFIG_H
#define SOCKSHIM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "sockshim/layout.h"

struct shim_config {
	char session[SOCKSHIM_SESSION_MAX + 1];
	uint32_t ring_capacity;
	uint32_t ledger_capacity;
	enum log_level log_level;
	enum sockshim_accept_mode accept_mode;
};

/* Parse the SOCKSHIM_* variables, read with ENV (getenv, or a test's
 * table; NULL or "" is unset). An invalid value takes the default and
 * leaves a one-line explanation in WARN (empty when all is well). Returns
 * the number of invalid values. */
int config_parse(struct shim_config *c, const char *(*env)(const char *name), char *warn,
		 size_t warnlen);

#endif
