/* Parses SOCKSHIM_SESSION, SOCKSHIM_RING_EVENTS, SOCKSHIM_MAX_SOCKETS,
 * SOCKSHIM_ACCEPT and SOCKSHIM_LOG. Pure: the caller passes the lookup, so the unit test needs
 * no environment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sockshim/segment.h"

static void note(char *warn, size_t len, const char *what)
{
	size_t used = strlen(warn);

	if (used + 3 >= len)
		return;
	snprintf(warn + used, len - used, "%s%s", used ? "; " : "", what);
}

/* A power of two in [2^MIN_SHIFT, 2^MAX_SHIFT], digits only. */
static int parse_pow2(const char *s, unsigned min_shift, unsigned max_shift, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end || v < (1ull << min_shift) || v > (1ull << max_shift) || (v & (v - 1)))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int config_parse(struct shim_config *c, const char *(*env)(const char *name), char *warn,
		 size_t warnlen)
{
	const char *session = env("SOCKSHIM_SESSION");
	const char *ring_events = env("SOCKSHIM_RING_EVENTS");
	const char *max_sockets = env("SOCKSHIM_MAX_SOCKETS");
	const char *log = env("SOCKSHIM_LOG");
	const char *accept = env("SOCKSHIM_ACCEPT");
	char msg[200];
	int bad = 0;

	memset(c, 0, sizeof(*c));
	if (warnlen)
		warn[0] = 0;
	snprintf(c->session, sizeof(c->session), "%s", SOCKSHIM_DEFAULT_SESSION);
	c->ring_capacity = 1u << SOCKSHIM_RING_DEFAULT_SHIFT;
	c->ledger_capacity = SOCKSHIM_LEDGER_DEFAULT;
	c->log_level = LOG_WARN;
	c->accept_mode = SOCKSHIM_ACCEPT_OBSERVE;

	if (log && log[0]) {
		if (!strcmp(log, "quiet"))
			c->log_level = LOG_QUIET;
		else if (!strcmp(log, "warn"))
			c->log_level = LOG_WARN;
		else if (!strcmp(log, "debug"))
			c->log_level = LOG_DEBUG;
		else {
			snprintf(msg, sizeof(msg),
				 "SOCKSHIM_LOG=\"%.40s\" is not quiet, warn or debug; using warn", log);
			note(warn, warnlen, msg);
			bad++;
		}
	}
	if (session && session[0]) {
		if (seg_name_check(session) == 0) {
			snprintf(c->session, sizeof(c->session), "%s", session);
		} else {
			snprintf(msg, sizeof(msg),
				 "SOCKSHIM_SESSION=\"%.40s\" is not a valid session name; using \"%s\"",
				 session, SOCKSHIM_DEFAULT_SESSION);
			note(warn, warnlen, msg);
			bad++;
		}
	}
	if (ring_events && ring_events[0] &&
	    parse_pow2(ring_events, SOCKSHIM_RING_MIN_SHIFT, SOCKSHIM_RING_MAX_SHIFT,
		       &c->ring_capacity)) {
		snprintf(msg, sizeof(msg),
			 "SOCKSHIM_RING_EVENTS=\"%.40s\" is not a power of two in [%u, %u]; using %u",
			 ring_events, 1u << SOCKSHIM_RING_MIN_SHIFT, 1u << SOCKSHIM_RING_MAX_SHIFT,
			 c->ring_capacity);
		note(warn, warnlen, msg);
		bad++;
	}
	if (max_sockets && max_sockets[0] &&
	    parse_pow2(max_sockets, SOCKSHIM_LEDGER_MIN_SHIFT, SOCKSHIM_LEDGER_MAX_SHIFT,
		       &c->ledger_capacity)) {
		snprintf(msg, sizeof(msg),
			 "SOCKSHIM_MAX_SOCKETS=\"%.40s\" is not a power of two in [%u, %u]; using %u",
			 max_sockets, 1u << SOCKSHIM_LEDGER_MIN_SHIFT, 1u << SOCKSHIM_LEDGER_MAX_SHIFT,
			 c->ledger_capacity);
		note(warn, warnlen, msg);
		bad++;
	}
	if (accept && accept[0]) {
		if (!strcmp(accept, "observe"))
			c->accept_mode = SOCKSHIM_ACCEPT_OBSERVE;
		else if (!strcmp(accept, "serialize"))
			c->accept_mode = SOCKSHIM_ACCEPT_SERIALIZE;
		else if (!strcmp(accept, "off"))
			c->accept_mode = SOCKSHIM_ACCEPT_OFF;
		else {
			snprintf(msg, sizeof(msg),
				 "SOCKSHIM_ACCEPT=\"%.40s\" is not observe, serialize or off; using observe",
				 accept);
			note(warn, warnlen, msg);
			bad++;
		}
	}
	return bad;
}
