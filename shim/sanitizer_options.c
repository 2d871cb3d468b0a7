/* The sanitizer options of a sanitized shim (make asan, make tsan; nothing
 * in a normal build). The runtime asks for them before it reads
 * ASAN_OPTIONS or TSAN_OPTIONS, so they hold in every process that loads
 * this shim, an image the shim followed through a scrubbed environment
 * included, and the environment's options still win.
 *
 * AddressSanitizer: no leak report (the servers under test do not free at
 * exit, and their exit status must stay theirs); the shim may come ahead of
 * the runtime in LD_PRELOAD (sockshim run puts it first). ThreadSanitizer:
 * stop at the first report; no report of a signal handler that calls
 * what is not async-signal-safe (the programs' own, not the shim's). */

#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);

const char *__asan_default_options(void)
{
	return "detect_leaks=0:abort_on_error=0:verify_asan_link_order=0";
}
#elif defined(__SANITIZE_THREAD__)
const char *__tsan_default_options(void);

const char *__tsan_default_options(void)
{
	return "halt_on_error=1:report_signal_unsafe=0";
}
#else
/* A translation unit needs a declaration. */
typedef int sanitizer_options_unused;
#endif
