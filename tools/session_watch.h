/* Noticing, while a command reads a session, that its segment file was
 * removed, replaced or shrunk under the mapping. Shared by the commands
 * that follow a session (events --follow, stats --watch). */
#ifndef SOCKSHIM_SESSION_WATCH_H
#define SOCKSHIM_SESSION_WATCH_H

#include <stddef.h>
#include <sys/types.h>

enum session_change {
	SESSION_SAME = 0,
	SESSION_GONE,   /* removed, or another segment now has its name */
	SESSION_SHRANK, /* the file is now smaller than our mapping */
};

struct session_watch {
	char path[256];
	ino_t ino;     /* 0: the file could not be looked at when we started */
	size_t mapped; /* bytes we mapped */
};

/* Remember session NAME's file as it is now, MAPPED bytes of it mapped. */
void session_watch_init(struct session_watch *w, const char *name, size_t mapped);

/* How the file compares with what we remembered. */
enum session_change session_watch_check(const struct session_watch *w);

/* Say, once per process, that session NAME's segment shrank while we read
 * it (what was printed may be incomplete). */
void session_say_shrunk(const char *name);

#endif
