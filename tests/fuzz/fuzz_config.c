/* libFuzzer harness of the shim's configuration parser, config_parse() of
 * shim/config.c: an environment lookup whose SOCKSHIM_* values come from
 * the input, and a warning buffer of a length the input picks (exactly
 * that long, so ASan sees a write past it). Asserts: whatever the values,
 * the configuration is usable (a valid session name, capacities that are
 * powers of two within the layout's bounds, modes and levels within their
 * enums); a valid value is taken as given; an invalid one is counted and
 * explained; the warning is terminated within its buffer and carries no
 * byte that would drive a terminal (control characters, invalid UTF-8).
 *
 * Input: u16 warning buffer length (1 + value % 1024), then the values of
 * SOCKSHIM_SESSION, _RING_EVENTS, _MAX_SOCKETS, _LOG and _ACCEPT, each
 * ended by a NUL; a value the input does not reach is unset. */
#include <stdlib.h>
#include <string.h>

#include "sockshim/config.h"
#include "fuzz_util.h"
#include "sockshim/segment.h"

#define WARN_MAX 1024
/* A buffer with room for more than note()'s "; " and a NUL gets at least
 * the start of the first warning. */
#define WARN_ROOMY 4

static const char *const names[] = {
	"SOCKSHIM_SESSION", "SOCKSHIM_RING_EVENTS", "SOCKSHIM_MAX_SOCKETS",
	"SOCKSHIM_LOG",     "SOCKSHIM_ACCEPT",
};
#define NVARS (sizeof(names) / sizeof(names[0]))

static char *values[NVARS];

static const char *lookup(const char *name)
{
	size_t i;

	for (i = 0; i < NVARS; i++)
		if (!strcmp(name, names[i]))
			return values[i];
	return NULL; /* any other variable: unset */
}

/* S, a power of two within the bounds, spelt as config_parse takes it:
 * decimal digits only. 1 and its value in *V, else 0. */
static int plain_pow2(const char *s, unsigned min_shift, unsigned max_shift, uint32_t *v)
{
	unsigned long long x = 0;
	size_t i;

	if (!s || !s[0])
		return 0;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || x > (1ull << max_shift))
			return 0;
		x = x * 10 + (unsigned)(s[i] - '0');
	}
	if (x < (1ull << min_shift) || x > (1ull << max_shift) || (x & (x - 1)))
		return 0;
	*v = (uint32_t)x;
	return 1;
}

static int pow2_within(uint32_t v, unsigned min_shift, unsigned max_shift)
{
	return v >= (1u << min_shift) && v <= (1u << max_shift) && !(v & (v - 1));
}

static int one_of(const char *s, const char *const *words, size_t n)
{
	size_t i;

	for (i = 0; s && i < n; i++)
		if (!strcmp(s, words[i]))
			return (int)i;
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const levels[] = {"quiet", "warn", "debug"};
	static const enum log_level level_of[] = {LOG_QUIET, LOG_WARN, LOG_DEBUG};
	static const char *const modes[] = {"observe", "serialize", "off"};
	static const enum sockshim_accept_mode mode_of[] = {
		SOCKSHIM_ACCEPT_OBSERVE, SOCKSHIM_ACCEPT_SERIALIZE, SOCKSHIM_ACCEPT_OFF};
	struct fuzz_in in = {data, size};
	struct shim_config c;
	size_t warnlen, i, set = 0;
	const uint8_t *end;
	uint32_t v;
	char *warn;
	int bad, invalid = 0, k;

	warnlen = 1 + fuzz_u16(&in) % WARN_MAX;
	for (i = 0; i < NVARS; i++) {
		values[i] = NULL;
		if (!in.n)
			continue;
		end = memchr(in.p, 0, in.n);
		/* Exactly the value's bytes and its NUL, as getenv has them. */
		values[i] = strndup((const char *)in.p, end ? (size_t)(end - in.p) : in.n);
		FUZZ_CHECK(values[i], "out of memory");
		in.p += end ? (size_t)(end - in.p) + 1 : in.n;
		in.n = (size_t)(data + size - in.p);
		set += values[i][0] != 0;
	}
	warn = malloc(warnlen);
	FUZZ_CHECK(warn, "out of memory");
	memset(warn, 'x', warnlen);

	bad = config_parse(&c, lookup, warn, warnlen);

	/* Usable, whatever the environment said. */
	FUZZ_CHECK(seg_name_check(c.session) == 0, "session \"%s\" is not a valid name", c.session);
	FUZZ_CHECK(pow2_within(c.ring_capacity, SOCKSHIM_RING_MIN_SHIFT, SOCKSHIM_RING_MAX_SHIFT),
		   "ring capacity %u", c.ring_capacity);
	FUZZ_CHECK(pow2_within(c.ledger_capacity, SOCKSHIM_LEDGER_MIN_SHIFT,
			       SOCKSHIM_LEDGER_MAX_SHIFT),
		   "ledger capacity %u", c.ledger_capacity);
	FUZZ_CHECK(c.log_level == LOG_QUIET || c.log_level == LOG_WARN || c.log_level == LOG_DEBUG,
		   "log level %d", (int)c.log_level);
	FUZZ_CHECK(c.accept_mode == SOCKSHIM_ACCEPT_OBSERVE ||
			   c.accept_mode == SOCKSHIM_ACCEPT_SERIALIZE ||
			   c.accept_mode == SOCKSHIM_ACCEPT_OFF,
		   "accept mode %d", (int)c.accept_mode);

	/* Valid values taken as given; the others counted. */
	if (values[0] && values[0][0]) {
		if (seg_name_check(values[0]) == 0)
			FUZZ_CHECK(!strcmp(c.session, values[0]), "session \"%s\" became \"%s\"",
				   values[0], c.session);
		else
			invalid++;
	}
	if (values[1] && values[1][0]) {
		if (plain_pow2(values[1], SOCKSHIM_RING_MIN_SHIFT, SOCKSHIM_RING_MAX_SHIFT, &v))
			FUZZ_CHECK(c.ring_capacity == v, "ring %s became %u", values[1],
				   c.ring_capacity);
		else
			invalid++;
	}
	if (values[2] && values[2][0]) {
		if (plain_pow2(values[2], SOCKSHIM_LEDGER_MIN_SHIFT, SOCKSHIM_LEDGER_MAX_SHIFT, &v))
			FUZZ_CHECK(c.ledger_capacity == v, "max sockets %s became %u", values[2],
				   c.ledger_capacity);
		else
			invalid++;
	}
	if (values[3] && values[3][0]) {
		k = one_of(values[3], levels, 3);
		if (k >= 0)
			FUZZ_CHECK(c.log_level == level_of[k], "log %s became %d", values[3],
				   (int)c.log_level);
		else
			invalid++;
	}
	if (values[4] && values[4][0]) {
		k = one_of(values[4], modes, 3);
		if (k >= 0)
			FUZZ_CHECK(c.accept_mode == mode_of[k], "accept %s became %d", values[4],
				   (int)c.accept_mode);
		else
			invalid++;
	}
	FUZZ_CHECK(bad == invalid, "%d invalid values counted, %d given (of %zu set)", bad, invalid,
		   set);

	/* The warning: terminated in its buffer, fit for a terminal, and
	 * there exactly when something was invalid. */
	fuzz_check_terminal(warn, warnlen, "configuration warning");
	if (!bad)
		FUZZ_CHECK(!warn[0], "warning \"%s\" with nothing invalid", warn);
	else if (warnlen >= WARN_ROOMY)
		FUZZ_CHECK(warn[0], "%d invalid values and no warning", bad);

	free(warn);
	for (i = 0; i < NVARS; i++)
		free(values[i]);
	return 0;
}
