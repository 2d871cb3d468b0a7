/* Warnings from inside a host process: at most one per process image on
 * stderr (prefix "sockshim:"), more with SOCKSHIM_LOG=debug. */
#ifndef SOCKSHIM_LOG_H
#define SOCKSHIM_LOG_H

#include "sockshim/config.h" /* enum log_level */

void log_set_level(enum log_level level);

/* The first warning of the process image is printed; later ones only at
 * debug level. Uses write(2), never stdio. */
void shim_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void shim_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
