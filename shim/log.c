/* One warning per process image: a host's stderr is the user's, and a
 * server forking a thousand workers must not print a thousand lines. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "sockshim/rawio.h"

static int log_level = LOG_WARN;
static int warned;

void log_set_level(enum log_level level)
{
	log_level = level;
}

static void emit(const char *fmt, va_list ap)
{
	char buf[512];
	int saved = errno;
	int n = snprintf(buf, sizeof(buf), "sockshim: ");

	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (rawio_write(STDERR_FILENO, buf, (size_t)n) < 0) {
		/* Nowhere left to say it. */
	}
	errno = saved;
}

void shim_warn(const char *fmt, ...)
{
	va_list ap;

	if (log_level == LOG_QUIET)
		return;
	if (__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED) && log_level < LOG_DEBUG)
		return;
	va_start(ap, fmt);
	emit(fmt, ap);
	va_end(ap);
}

void shim_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_DEBUG)
		return;
	va_start(ap, fmt);
	emit(fmt, ap);
	va_end(ap);
}
