/* Parses SOCKSHIM_SESSION, SOCKSHIM_RING_EVENTS, SOCKSHIM_MAX_SOCKETS,
 * SOCKSHIM_ACCEPT, SOCKSHIM_LOG and SOCKSHIM_FOLLOW, and writes each back as
 * it is in effect (config_entry). Pure: the caller passes the lookup, so the unit test needs
 * no environment. A value it echoes goes through config_printable: the
 * environment may hold anything, the terminal must get none of it raw. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockshim/config.h"
#include "sockshim/segment.h"

const char *const config_var_name[CONFIG_VARS] = {
	[CONFIG_SESSION] = "SOCKSHIM_SESSION",
	[CONFIG_RING_EVENTS] = "SOCKSHIM_RING_EVENTS",
	[CONFIG_MAX_SOCKETS] = "SOCKSHIM_MAX_SOCKETS",
	[CONFIG_ACCEPT] = "SOCKSHIM_ACCEPT",
	[CONFIG_LOG] = "SOCKSHIM_LOG",
	[CONFIG_FOLLOW] = "SOCKSHIM_FOLLOW",
};

static const char *const log_names[] = {
	[LOG_QUIET] = "quiet", [LOG_WARN] = "warn", [LOG_DEBUG] = "debug"};
static const char *const accept_names[] = {
	[SOCKSHIM_ACCEPT_OBSERVE] = "observe",
	[SOCKSHIM_ACCEPT_SERIALIZE] = "serialize",
	[SOCKSHIM_ACCEPT_OFF] = "off",
};

static void note(char *warn, size_t len, const char *what)
{
	size_t used = strlen(warn);

	if (used + 3 >= len)
		return;
	snprintf(warn + used, len - used, "%s%s", used ? "; " : "", what);
}

void config_printable(char *out, size_t len, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const size_t mark = sizeof(CONFIG_CUT_MARK) - 1;
	size_t n = 0, cut = 0; /* cut: the last end of a piece the mark fits after */

	if (!len)
		return;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int plain = c >= 0x20 && c < 0x7f && c != '\\';

		if (n + (plain ? 1 : 4) > len - 1) {
			/* Does not fit: back to where the mark does. */
			n = cut;
			if (n + mark <= len - 1) {
				memcpy(out + n, CONFIG_CUT_MARK, mark);
				n += mark;
			}
			break;
		}
		if (plain) {
			out[n++] = (char)c;
		} else {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
		if (n + mark <= len - 1)
			cut = n;
	}
	out[n] = 0;
}

int config_parse_pow2(const char *s, unsigned min_shift, unsigned max_shift, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoull(s, &end, 10); /* out of range: ULLONG_MAX, no power of two */
	if (*end || !sockshim_pow2_within(v, min_shift, max_shift))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Note in WARN that VAR="VALUE" (VALUE shown escaped) is invalid: WHAT. */
static void note_bad(char *warn, size_t len, const char *var, const char *value,
		     const char *what)
{
	char shown[CONFIG_SHOWN_MAX], msg[CONFIG_SHOWN_MAX + 256];

	config_printable(shown, sizeof(shown), value);
	snprintf(msg, sizeof(msg), "%s=\"%s\" %s", var, shown, what);
	note(warn, len, msg);
}

/* One block per variable, in config_var order (about 90 lines): a reader
 * sees every variable's rule in one place. */
int config_parse(struct shim_config *c, const char *(*env)(const char *name), char *warn,
		 size_t warnlen)
{
	const char *session = env("SOCKSHIM_SESSION");
	const char *ring_events = env("SOCKSHIM_RING_EVENTS");
	const char *max_sockets = env("SOCKSHIM_MAX_SOCKETS");
	const char *log = env("SOCKSHIM_LOG");
	const char *accept = env("SOCKSHIM_ACCEPT");
	const char *follow = env("SOCKSHIM_FOLLOW");
	const char *values[CONFIG_VARS] = {session, ring_events, max_sockets, accept, log, follow};
	char what[200];
	int bad = 0, v;

	memset(c, 0, sizeof(*c));
	if (warnlen)
		warn[0] = 0;
	snprintf(c->session, sizeof(c->session), "%s", SOCKSHIM_DEFAULT_SESSION);
	c->ring_capacity = 1u << SOCKSHIM_RING_DEFAULT_SHIFT;
	c->ledger_capacity = SOCKSHIM_LEDGER_DEFAULT;
	c->log_level = LOG_WARN;
	c->accept_mode = SOCKSHIM_ACCEPT_OBSERVE;
	c->follow = 1;
	for (v = 0; v < CONFIG_VARS; v++)
		if (values[v] && values[v][0])
			c->given |= 1u << v;

	if (log && log[0]) {
		if (!strcmp(log, "quiet"))
			c->log_level = LOG_QUIET;
		else if (!strcmp(log, "warn"))
			c->log_level = LOG_WARN;
		else if (!strcmp(log, "debug"))
			c->log_level = LOG_DEBUG;
		else {
			note_bad(warn, warnlen, "SOCKSHIM_LOG", log,
				 "is not quiet, warn or debug; using warn");
			bad++;
		}
	}
	/* An invalid name is mapped, as the command maps it, so that both
	 * meet in the same session; the shared "default" would mix this
	 * program's events with every other hand-preloaded one's. */
	if (session && session[0] && seg_name_map(session, c->session)) {
		snprintf(what, sizeof(what),
			 "is not a valid session name (" SEG_NAME_RULE "); using \"%s\"",
			 c->session);
		note_bad(warn, warnlen, "SOCKSHIM_SESSION", session, what);
		c->session_mapped = 1;
		bad++;
	}
	if (ring_events && ring_events[0] &&
	    config_parse_pow2(ring_events, SOCKSHIM_RING_MIN_SHIFT, SOCKSHIM_RING_MAX_SHIFT,
		       &c->ring_capacity)) {
		snprintf(what, sizeof(what), "is not a power of two in [%u, %u]; using %u",
			 1u << SOCKSHIM_RING_MIN_SHIFT, 1u << SOCKSHIM_RING_MAX_SHIFT,
			 c->ring_capacity);
		note_bad(warn, warnlen, "SOCKSHIM_RING_EVENTS", ring_events, what);
		bad++;
	}
	if (max_sockets && max_sockets[0] &&
	    config_parse_pow2(max_sockets, SOCKSHIM_LEDGER_MIN_SHIFT, SOCKSHIM_LEDGER_MAX_SHIFT,
		       &c->ledger_capacity)) {
		snprintf(what, sizeof(what), "is not a power of two in [%u, %u]; using %u",
			 1u << SOCKSHIM_LEDGER_MIN_SHIFT, 1u << SOCKSHIM_LEDGER_MAX_SHIFT,
			 c->ledger_capacity);
		note_bad(warn, warnlen, "SOCKSHIM_MAX_SOCKETS", max_sockets, what);
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
			note_bad(warn, warnlen, "SOCKSHIM_ACCEPT", accept,
				 "is not observe, serialize or off; using observe");
			bad++;
		}
	}
	if (follow && follow[0]) {
		if (!strcmp(follow, "0"))
			c->follow = 0;
		else if (strcmp(follow, "1") != 0) {
			note_bad(warn, warnlen, "SOCKSHIM_FOLLOW", follow, "is not 0 or 1; using 1");
			bad++;
		}
	}
	return bad;
}

int config_entry(const struct shim_config *c, enum config_var v, char *out, size_t len)
{
	char num[16];
	const char *value = num;
	int n;

	switch (v) {
	case CONFIG_SESSION:
		value = c->session;
		break;
	case CONFIG_RING_EVENTS:
		snprintf(num, sizeof(num), "%u", (unsigned)c->ring_capacity);
		break;
	case CONFIG_MAX_SOCKETS:
		snprintf(num, sizeof(num), "%u", (unsigned)c->ledger_capacity);
		break;
	case CONFIG_ACCEPT:
		if ((unsigned)c->accept_mode >= sizeof(accept_names) / sizeof(accept_names[0]))
			return -1;
		value = accept_names[c->accept_mode];
		break;
	case CONFIG_LOG:
		if ((unsigned)c->log_level >= sizeof(log_names) / sizeof(log_names[0]))
			return -1;
		value = log_names[c->log_level];
		break;
	case CONFIG_FOLLOW:
		value = c->follow ? "1" : "0";
		break;
	default:
		return -1;
	}
	n = snprintf(out, len, "%s=%s", config_var_name[v], value);
	return n < 0 || (size_t)n >= len ? -1 : n;
}
