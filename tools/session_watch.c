/* Noticing that a session's file changed under a command that follows it:
 * removed (the session ended), replaced, or shrunk (truncated by someone:
 * our pages past its end are gone, and seg_guard turns them into zeros). */
#include <stdio.h>
#include <sys/stat.h>

#include "session.h"
#include "session_watch.h"

void session_watch_init(struct session_watch *w, const char *name, size_t mapped)
{
	struct stat st;

	session_path(w->path, sizeof(w->path), name);
	w->mapped = mapped;
	w->ino = lstat(w->path, &st) < 0 ? 0 : st.st_ino;
}

enum session_change session_watch_check(const struct session_watch *w)
{
	struct stat st;

	if (lstat(w->path, &st) < 0 || st.st_ino != w->ino)
		return SESSION_GONE;
	if ((size_t)st.st_size < w->mapped)
		return SESSION_SHRANK;
	return SESSION_SAME;
}

void session_say_shrunk(const char *name)
{
	static int said;

	if (said++)
		return;
	fprintf(stderr,
		"sockshim: session \"%s\": its segment file shrank while it was being read "
		"(truncated by another process, or /dev/shm full?); what was printed may be "
		"incomplete. Restart the programs of the session to record again\n",
		name);
}
