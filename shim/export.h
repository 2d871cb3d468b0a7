/* The one mark of an exported wrapper: everything else in the library is
 * hidden (-fvisibility=hidden), so the shim exports the wrapped libc names
 * and nothing else. */
#ifndef SOCKSHIM_EXPORT_H
#define SOCKSHIM_EXPORT_H

#define SHIM_EXPORT __attribute__((visibility("default")))

#endif
