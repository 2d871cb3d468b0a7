/* The one mark of an exported wrapper: everything else in the library is
 * hidden (-fvisibility=hidden), so the shim exports the wrapped libc names
 * and nothing else. */
#ifndef SOCKSHIM_EXPORT_H
#define SOCKSHIM_EXPORT_H

#define SHIM_EXPORT __attribute__((visibility("default")))

/* The mark of a variable one file of the library defines and others
 * declare. -fvisibility=hidden applies to definitions only: a declaration
 * without the mark makes the compiler reach the variable through the GOT
 * (an address load, which the linker relaxes to a lea, then the access),
 * one instruction more per access on every hot path. */
#define SHIM_INTERNAL __attribute__((visibility("hidden")))

#endif
